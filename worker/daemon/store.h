/*
 * store.h -- the PostgreSQL ledger store: one non-blocking libpq connection
 * in pipeline mode on the event loop, running one batch transaction at a
 * time.
 *
 * Owns every SQL statement the worker runs and the connection. A batch's
 * transaction takes two round trips: (1) BEGIN, lock the users' accounts in
 * user order, read now(), stored decisions, lots, catalog rows, used
 * payment references and reserved lot IDs; then the batch is decided in
 * memory (core/batch.h); (2) write jobs, lots, entries, accounts and events
 * set-wise from arrays, and COMMIT. A sweep batch (batch_init_sweep()) runs
 * the same two round trips over the accounts it names. Besides batches, it
 * runs the sweep's and the events' own statements (store_run()), one round
 * trip each.
 *
 * Never reconnects by itself: it reports a lost connection and the caller
 * calls store_connect() again when it sees fit.
 */
#ifndef CREDITS_WORKER_DAEMON_STORE_H
#define CREDITS_WORKER_DAEMON_STORE_H

#include <event2/event.h>
#include <stdbool.h>

#include "core/batch.h"
#include "worker/daemon/rows.h"

#define STORE_CONNECT_TIMEOUT_MS 10000
/* No statement of the worker waits forever (on a lock an operator holds,
 * say): a timed-out batch is rolled back and retried. */
#define STORE_SESSION_OPTIONS "-c statement_timeout=30s"
#define STORE_ERRSTR_BYTES 512

enum store_status {
    STORE_OK = 0,      /* committed */
    STORE_RETRY,       /* a transient conflict (serialization, deadlock, a racing
                        * worker's unique key): rolled back, run the batch again */
    STORE_FAILED,      /* the statements failed for good: rolled back; the detail
                        * is in store_errstr() */
    STORE_UNAVAILABLE, /* the database cannot decide any batch now (it returned
                        * rows this worker cannot read, say): rolled back; the
                        * same batch may succeed later, and no job is to blame */
    STORE_LOST,        /* the connection was lost: nothing is known of the outcome
                        * (it may have committed); redelivery and the job-ID dedupe
                        * settle it */
};

struct store;

typedef void store_event_cb(void *arg);
/* Called exactly once per store_apply() that returned 0, always from the
 * event loop (never before store_apply() returns). */
typedef void store_apply_cb(void *arg, enum store_status status);

/* A store for `conninfo` (copied). on_ready: a connect succeeded; on_lost: a
 * connect failed or the connection was lost (from the event loop, after the
 * apply in flight, if any, got STORE_LOST). */
struct store *store_new(struct event_base *base, const char *conninfo, store_event_cb *on_ready,
                        store_event_cb *on_lost, void *arg);

/* Closes at once and frees; an apply in flight gets STORE_LOST first. */
void store_free(struct store *store);

int store_connect(struct store *store) __attribute__((warn_unused_result));

/* Closes the connection; an apply in flight gets STORE_LOST; on_lost follows. */
void store_disconnect(struct store *store);

/* Connected, with the statements prepared (an apply may be in flight). */
bool store_is_connected(const struct store *store);

/* Connected and with no apply in flight: store_apply() may be called. */
bool store_is_idle(const struct store *store);

/* The server's crash safety as read at the last connect (valid from
 * on_ready on): a commit survives a crash of the server only with both on.
 * The worker's own session always commits with synchronous_commit = on,
 * whatever the server's default, so that no result is published for a
 * commit an asynchronous commit could still lose. */
struct store_durability {
    bool fsync;
    bool full_page_writes;
};
struct store_durability store_durability(const struct store *store);

/* What went wrong last, for people ("" if nothing). */
const char *store_errstr(const struct store *store);

/*
 * Runs the transaction of `batch` (borrowed until the callback): loads its
 * state, calls batch_decide(), writes and commits. When the callback gets
 * STORE_OK every job of the batch is decided and committed.
 */
int store_apply(struct store *store, struct batch *batch, store_apply_cb *cb, void *arg)
    __attribute__((warn_unused_result));

/*
 * Events published to Redis, to be marked published (credits.events.
 * published_at). The IDs are copied and written in bulk, once they are
 * due: STORE_MARKS_BATCH of them pending, or the oldest pending for
 * STORE_MARKS_DELAY_MS. A batch's transaction writes the due marks with
 * its own; STORE_OP_MARK_PUBLISHED writes all that are pending, in a
 * transaction of its own that does not wait for its commit's flush. Marks
 * whose transaction does not commit are kept for the next. Until they are
 * written another worker may publish their events again (events are at
 * least once): the delay is well under SWEEPER_UNPUBLISHED_AGE_S.
 *
 * Marking one event per transaction cost a statement and an index-changing
 * update per transaction: at one job per batch, with an event each, that
 * was most of what the events cost.
 */
#define STORE_MARKS_BATCH 512
#define STORE_MARKS_DELAY_MS 250
void store_mark_published(struct store *store, const int64_t *event_ids, size_t count);
size_t store_marks_pending(const struct store *store);
bool store_marks_due(const struct store *store);
/* In how many ms the pending marks are due: 0 now, -1 with none pending. */
int64_t store_marks_due_in_ms(const struct store *store);

/* The statements of the sweep and of the events (contract 9.7, 9.8). */
enum store_op_kind {
    STORE_OP_SWEEP_LOCK,     /* try the sweep's advisory lock (session): op->locked */
    STORE_OP_SWEEP_UNLOCK,   /* release it */
    STORE_OP_DUE,            /* the users the sweep is due to visit: op->due */
    STORE_OP_UNPUBLISHED,    /* events unpublished for op->age_s, after op->after_id, in
                              * event_id order: op->events */
    STORE_OP_MARK_PUBLISHED, /* write the pending marks (store_mark_published()) */
    STORE_OP_PRUNE,          /* delete events published op->days ago: op->affected */
};

struct store_op {
    enum store_op_kind kind;
    /* In. */
    int64_t limit;    /* DUE (rows per kind), UNPUBLISHED, PRUNE */
    int64_t days;     /* DUE: the notice days; PRUNE: the retention */
    double age_s;     /* UNPUBLISHED */
    int64_t after_id; /* UNPUBLISHED: events after this event_id */
    /* Out. */
    bool locked;              /* SWEEP_LOCK */
    struct rows_due due;      /* DUE: the caller sets users and user_cap */
    struct event_list events; /* UNPUBLISHED (the caller frees it) */
    int64_t affected;         /* PRUNE, MARK_PUBLISHED */
};

/* Runs `op` (borrowed until the callback) when the store is idle; the
 * callback as for store_apply() (STORE_OK or why not). */
int store_run(struct store *store, struct store_op *op, store_apply_cb *cb, void *arg)
    __attribute__((warn_unused_result));

#endif
