/*
 * store.c -- the batch transaction on PostgreSQL (store.h): libpq
 * non-blocking, pipeline mode, on libevent.
 *
 * Owns the SQL, the connection and its socket events, and the phases of a
 * batch's transaction. Values always travel as parameters (binary arrays for
 * the set-wise statements, pgparam.h), never inside the SQL text; rows are
 * read by rows.c.
 */
#include "worker/daemon/store.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "worker/common/clock.h"
#include "worker/daemon/pgparam.h"
#include "worker/daemon/rows.h"
#include "worker/daemon/user_set.h"

/* ---------------------------------------------------------------------------
 * SQL
 * ------------------------------------------------------------------------- */

/* Creates missing accounts, in user order so that two workers inserting the
 * same new users cannot deadlock. Sent for the users of the batch whose
 * account the store has not seen committed (known_accounts): an insert
 * that finds every row there still costs an index probe and a speculative
 * check per user, a tenth of PostgreSQL's time in a consume drain. */
static const char sql_create_accounts[] =
    "INSERT INTO credits.accounts (user_id)\n"
    "SELECT u FROM unnest($1::text[]) AS u ORDER BY u COLLATE \"C\"\n"
    "ON CONFLICT (user_id) DO NOTHING";

/* Locks the batch's accounts in user order: the lock that keeps two workers
 * from spending the same credits. Everything read after it is current.
 * It must find every user's row (else nothing locks that user: see
 * check_locked()).
 * With the thresholds of the low-balance events: the account's, its plan's. */
static const char sql_lock_accounts[] =
    "SELECT a.user_id, a.plan_id, coalesce(a.low_balance, 0), coalesce(p.low_balance, 0)\n"
    "FROM credits.accounts a LEFT JOIN credits.plans p ON p.plan_id = a.plan_id\n"
    "WHERE a.user_id = ANY($1::text[])\n"
    "ORDER BY a.user_id COLLATE \"C\"\n"
    "FOR NO KEY UPDATE OF a";

static const char sql_now[] = "SELECT (extract(epoch FROM now()) * 1000000)::bigint";

static const char sql_stored_jobs[] =
    "SELECT job_id, request, result FROM credits.jobs WHERE job_id = ANY($1::text[])";

/* The columns of a lot as rows.c reads them (ROWS_LOTS and the lot part of
 * the take rows): user, lot, kind, granted, remaining, granted_at and
 * expires_at in Unix microseconds, period ('' when none), revoked,
 * announced (credits_expiring sent). */
#define SQL_LOT_COLUMNS(l)                                                                         \
    l ".user_id, " l ".lot_id, " l ".kind, " l ".granted, " l ".remaining,\n"                      \
      "       (extract(epoch FROM " l ".granted_at) * 1000000)::bigint,\n"                         \
      "       (extract(epoch FROM " l ".expires_at) * 1000000)::bigint,\n"                         \
      "       coalesce(" l ".period, ''), " l ".revoked_at IS NOT NULL,\n"                         \
      "       " l ".expiry_noticed_at IS NOT NULL"

/* Lots with credits left (usable, or expired and still to be written off),
 * and the spent monthly lots from $2 on of the users $3 of the allocates:
 * the earliest period an allocate of the batch asks for ('9999-99' when
 * none does). The allocate rules look only at their own user's periods from
 * the job's own on, so other spent lots never matter (reading them for every
 * user of the batch was 3 index pages per user, as many as the unspent lots
 * took, for rows that a consume never uses).
 * `NOT spent` (remaining > 0) matches the predicate of lots_user_unspent, so
 * a user's spent lots are never read (schemas/005_unspent_lots.sql); the
 * spent lots a hold or a charge gives back to come with their takes. */
static const char sql_lots[] = "SELECT " SQL_LOT_COLUMNS(
    "l") "\n"
         "FROM credits.lots l\n"
         "WHERE l.user_id = ANY($1::text[]) AND NOT l.spent\n"
         "UNION ALL\n"
         "SELECT " SQL_LOT_COLUMNS(
             "l") "\n"
                  "FROM credits.lots l\n"
                  "WHERE l.user_id = ANY($3::text[]) AND l.kind = 'monthly' AND l.remaining = 0\n"
                  "  AND l.period >= $2::text";

/* The holds a batch needs: the open ones of its users (any job of theirs
 * releases one past its expiry), and those its captures and releases name
 * ($2), open or closed, of whichever user. */
static const char sql_holds[] =
    "SELECT hold_id, user_id, amount, status, coalesce(captured, 0),\n"
    "       (extract(epoch FROM expires_at) * 1000000)::bigint\n"
    "FROM credits.holds WHERE user_id = ANY($1::text[]) AND status = 'open'\n"
    "UNION\n"
    "SELECT hold_id, user_id, amount, status, coalesce(captured, 0),\n"
    "       (extract(epoch FROM expires_at) * 1000000)::bigint\n"
    "FROM credits.holds WHERE hold_id = ANY($2::text[])";

/* What each lot holds for those holds that are open, in the order taken,
 * with the lot (it may be spent by now). */
static const char sql_hold_takes[] = "SELECT e.job_id, -e.delta, " SQL_LOT_COLUMNS(
    "l") "\n"
         "FROM credits.entries e JOIN credits.lots l ON l.lot_id = e.lot_id\n"
         "WHERE e.kind = 'hold' AND e.job_id IN (\n"
         "    SELECT hold_id FROM credits.holds WHERE user_id = ANY($1::text[]) AND status = "
         "'open'\n"
         "    UNION\n"
         "    SELECT hold_id FROM credits.holds WHERE hold_id = ANY($2::text[]) AND status = "
         "'open')\n"
         "ORDER BY e.entry_id";

/* The charges refunds name: applied consumes and captures, and per lot what
 * is still refundable: what the consume (or the capture's hold) took, less
 * what the capture gave back, less earlier refunds; in the order taken,
 * with the lot. A charge whose lots have nothing left still has its rows
 * (of 0), so that it is known. */
static const char sql_charges[] =
    "WITH c AS (\n"
    "    SELECT j.job_id AS charge,\n"
    "           CASE j.type WHEN 'consume' THEN j.job_id ELSE h.hold_id END AS taker\n"
    "    FROM credits.jobs j\n"
    "    LEFT JOIN credits.holds h ON j.type = 'capture' AND h.closed_by = j.job_id\n"
    "    WHERE j.job_id = ANY($1::text[]) AND j.status = 'applied'\n"
    "      AND j.type IN ('consume', 'capture')),\n"
    "s AS (\n"
    "    SELECT c.charge, e.lot_id, -e.delta AS amount, e.entry_id AS taken\n"
    "    FROM c JOIN credits.entries e ON e.job_id = c.taker AND e.kind IN ('consume', 'hold')\n"
    "    UNION ALL\n"
    "    SELECT c.charge, e.lot_id, -e.delta, NULL\n"
    "    FROM c JOIN credits.entries e ON e.origin = c.taker AND e.kind = 'release'\n"
    "    WHERE c.taker <> c.charge\n"
    "    UNION ALL\n"
    "    SELECT c.charge, e.lot_id, -e.delta, NULL\n"
    "    FROM c JOIN credits.entries e ON e.origin = c.charge AND e.kind = 'refund'),\n"
    "t AS (\n"
    "    SELECT charge, lot_id, sum(amount)::bigint AS amount, min(taken) AS taken\n"
    "    FROM s GROUP BY charge, lot_id)\n"
    "SELECT t.charge, t.amount, " SQL_LOT_COLUMNS(
        "l") "\n"
             "FROM t JOIN credits.lots l ON l.lot_id = t.lot_id\n"
             "ORDER BY t.charge, t.taken";

static const char sql_packs[] =
    "SELECT pack_id, credits, valid_days FROM credits.packs WHERE pack_id = ANY($1::text[])";

static const char sql_plans[] =
    "SELECT plan_id, monthly_credits, rollover_cap, coalesce(low_balance, 0)\n"
    "FROM credits.plans WHERE plan_id = ANY($1::text[])";

/* The pack lots payment references granted (of any user: a reference grants
 * once), with the lot (a revoke takes what is left of it). */
static const char sql_payment_lots[] = "SELECT l.payment_ref, " SQL_LOT_COLUMNS(
    "l") "\n"
         "FROM credits.lots l WHERE l.payment_ref = ANY($1::text[])";

static const char sql_reserve_lot_ids[] =
    "SELECT nextval('credits.lot_id_seq') FROM generate_series(1, $1::integer)";

static const char sql_insert_jobs[] =
    "INSERT INTO credits.jobs (job_id, type, user_id, status, error, result, request,\n"
    "                          created_at)\n"
    "SELECT j.job_id, j.type, j.user_id, j.status, j.error, j.result, j.request, now()\n"
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[],\n"
    "            $7::bytea[]) AS j(job_id, type, user_id, status, error, result, request)";

static const char sql_insert_lots[] =
    "INSERT INTO credits.lots (lot_id, user_id, kind, granted, remaining, granted_at,\n"
    "                          expires_at, job_id, pack_id, payment_ref, plan_id, period)\n"
    "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],\n"
    "                     $6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[],\n"
    "                     $10::text[], $11::text[], $12::text[])";

static const char sql_update_lots[] =
    "UPDATE credits.lots AS l SET remaining = v.remaining\n"
    "FROM unnest($1::bigint[], $2::bigint[]) AS v(lot_id, remaining)\n"
    "WHERE l.lot_id = v.lot_id";

/* After sql_update_lots took them to 0 (lots_revoked). */
static const char sql_revoke_lots[] =
    "UPDATE credits.lots SET revoked_at = now() WHERE lot_id = ANY($1::bigint[])";

static const char sql_insert_entries[] =
    "INSERT INTO credits.entries (user_id, job_id, lot_id, kind, delta, tool, ref, origin)\n"
    "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[],\n"
    "                     $6::text[], $7::text[], $8::text[])";

static const char sql_update_plans[] =
    "UPDATE credits.accounts AS a SET plan_id = v.plan_id\n"
    "FROM unnest($1::text[], $2::text[]) AS v(user_id, plan_id)\n"
    "WHERE a.user_id = v.user_id";

/* Holds opened in the batch, as they are at its end (one may be closed by
 * then: created_at and closed_at are both the transaction's time). */
static const char sql_insert_holds[] =
    "INSERT INTO credits.holds (hold_id, user_id, amount, status, captured, created_at,\n"
    "                           expires_at, closed_at, closed_by, tool, ref)\n"
    "SELECT h.hold_id, h.user_id, h.amount, h.status, h.captured, now(), h.expires_at,\n"
    "       CASE WHEN h.status = 'open' THEN NULL ELSE now() END, h.closed_by, h.tool, h.ref\n"
    "FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[],\n"
    "            $6::timestamptz[], $7::text[], $8::text[], $9::text[])\n"
    "     AS h(hold_id, user_id, amount, status, captured, expires_at, closed_by, tool, ref)";

/* Lots announced (credits_expiring) in the batch. */
static const char sql_update_noticed[] =
    "UPDATE credits.lots SET expiry_noticed_at = now() WHERE lot_id = ANY($1::bigint[])";

/* The columns of an event as rows.c reads them (rows_read_events()). */
#define SQL_EVENT_COLUMNS                                                                          \
    "event_id, user_id, type, job_id, floor(extract(epoch FROM at) * 1000)::bigint,\n"             \
    "       total, pack, monthly, \"grant\", held, coalesce(threshold, 0),\n"                      \
    "       coalesce(lot_id, 0), coalesce(credits, 0),\n"                                          \
    "       coalesce(floor(extract(epoch FROM expires_at) * 1000)::bigint, 0),\n"                  \
    "       coalesce(hold_id, ''), coalesce(released, 0)"

/* The batch's events, in the order decided (event_id follows it). Only
 * the IDs come back: what is published is the batch's own copy of what
 * the rows hold (stage_stored_events()), since reading every column back
 * cost a fifth more than the insert alone. */
static const char sql_insert_events[] =
    "INSERT INTO credits.events (user_id, type, job_id, at, total, pack, monthly, \"grant\",\n"
    "                            held, threshold, lot_id, credits, expires_at, hold_id,\n"
    "                            released)\n"
    "SELECT e.user_id, e.type, e.job_id, now(), e.total, e.pack, e.monthly, e.g, e.held,\n"
    "       e.threshold, e.lot_id, e.credits, e.expires_at, e.hold_id, e.released\n"
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],\n"
    "            $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],\n"
    "            $11::bigint[], $12::timestamptz[], $13::text[], $14::bigint[])\n"
    "     WITH ORDINALITY AS e(user_id, type, job_id, total, pack, monthly, g, held, threshold,\n"
    "                          lot_id, credits, expires_at, hold_id, released, n)\n"
    "ORDER BY e.n\n"
    "RETURNING event_id";

/* A transaction of marks alone does not wait for its commit to be flushed:
 * a mark lost in a crash only has its event published again. */
static const char sql_marks_async[] = "SET LOCAL synchronous_commit = off";

static const char sql_mark_published[] =
    "UPDATE credits.events SET published_at = now()\n"
    "WHERE event_id = ANY($1::bigint[]) AND published_at IS NULL";

/* The sweep's advisory lock (session): "credswp1" as a big-endian 64-bit
 * integer, beside migrate's "credmig1". */
static const char sql_sweep_lock[] = "SELECT pg_try_advisory_lock(7165901439208222769)";
static const char sql_sweep_unlock[] = "SELECT pg_advisory_unlock(7165901439208222769)";

/* The users the sweep is due to visit, oldest due first, at most $2 rows of
 * each kind (so that the query stays bounded however much is due): overdue
 * open holds, lots past their expiry with credits left, lots to announce
 * ($1 notice days). Each row's lag: how long it has been due. */
static const char sql_due[] =
    "(SELECT user_id, floor(extract(epoch FROM now() - expires_at) * 1000)::bigint\n"
    " FROM credits.holds WHERE status = 'open' AND expires_at <= now()\n"
    " ORDER BY expires_at LIMIT $2)\n"
    "UNION ALL\n"
    "(SELECT user_id, floor(extract(epoch FROM now() - expires_at) * 1000)::bigint\n"
    " FROM credits.lots WHERE NOT spent AND expires_at IS NOT NULL AND expires_at <= now()\n"
    " ORDER BY expires_at LIMIT $2)\n"
    "UNION ALL\n"
    "(SELECT user_id, 0::bigint\n"
    " FROM credits.lots WHERE NOT spent AND expires_at IS NOT NULL AND expires_at > now()\n"
    "   AND expires_at <= now() + make_interval(days => $1::integer)\n"
    "   AND expiry_noticed_at IS NULL AND revoked_at IS NULL\n"
    " ORDER BY expires_at LIMIT $2)";

/* Events a worker wrote and did not mark published $1 seconds on (it
 * crashed between its commit and its publication, or lost Redis). */
static const char sql_unpublished[] =
    "SELECT " SQL_EVENT_COLUMNS "\n"
    "FROM credits.events\n"
    "WHERE published_at IS NULL AND at < now() - make_interval(secs => $1::float8)\n"
    "  AND event_id > $3::bigint\n"
    "ORDER BY event_id LIMIT $2";

/* Of the $2 oldest events, those published more than the retention ($1
 * days) ago. The window is taken first so that a step reads $2 rows at
 * most: filtering first walked the whole table, in event_id order, each
 * time nothing was due (0.55 s over 440,000 events, with every batch
 * waiting). An event published late keeps one place in the window until it
 * is due itself; it holds the younger ones back only once $2 such events
 * are the oldest. */
static const char sql_prune_events[] =
    "DELETE FROM credits.events WHERE event_id IN (\n"
    "    SELECT event_id FROM (\n"
    "        SELECT event_id, published_at FROM credits.events ORDER BY event_id LIMIT $2\n"
    "    ) AS oldest\n"
    "    WHERE published_at < now() - make_interval(days => $1::integer))";

static const char sql_close_holds[] =
    "UPDATE credits.holds AS h\n"
    "SET status = v.status, captured = v.captured, closed_at = now(), closed_by = v.closed_by\n"
    "FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])\n"
    "     AS v(hold_id, status, captured, closed_by)\n"
    "WHERE h.hold_id = v.hold_id";

/* Every statement is prepared once per connection: a batch then costs no
 * parsing or planning beyond the first executions. */
enum statement_id {
    STMT_DISCARD_PLANS,
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_CREATE_ACCOUNTS,
    STMT_LOCK_ACCOUNTS,
    STMT_NOW,
    STMT_STORED_JOBS,
    STMT_LOTS,
    STMT_HOLDS,
    STMT_HOLD_TAKES,
    STMT_CHARGES,
    STMT_PACKS,
    STMT_PLANS,
    STMT_PAYMENT_LOTS,
    STMT_RESERVE_LOT_IDS,
    STMT_INSERT_JOBS,
    STMT_INSERT_LOTS,
    STMT_UPDATE_LOTS,
    STMT_REVOKE_LOTS,
    STMT_INSERT_ENTRIES,
    STMT_UPDATE_PLANS,
    STMT_INSERT_HOLDS,
    STMT_CLOSE_HOLDS,
    STMT_UPDATE_NOTICED,
    STMT_INSERT_EVENTS,
    STMT_MARKS_ASYNC,
    STMT_MARK_PUBLISHED,
    STMT_SWEEP_LOCK,
    STMT_SWEEP_UNLOCK,
    STMT_DUE,
    STMT_UNPUBLISHED,
    STMT_PRUNE_EVENTS,
    STMT_COUNT,
};

struct statement {
    const char *name;
    const char *sql;
};

static const struct statement statements[STMT_COUNT] = {
    [STMT_DISCARD_PLANS] = {"credits_discard_plans", "DISCARD PLANS"},
    [STMT_BEGIN] = {"credits_begin", "BEGIN"},
    [STMT_COMMIT] = {"credits_commit", "COMMIT"},
    [STMT_ROLLBACK] = {"credits_rollback", "ROLLBACK"},
    [STMT_CREATE_ACCOUNTS] = {"credits_create_accounts", sql_create_accounts},
    [STMT_LOCK_ACCOUNTS] = {"credits_lock_accounts", sql_lock_accounts},
    [STMT_NOW] = {"credits_now", sql_now},
    [STMT_STORED_JOBS] = {"credits_stored_jobs", sql_stored_jobs},
    [STMT_LOTS] = {"credits_lots", sql_lots},
    [STMT_HOLDS] = {"credits_holds", sql_holds},
    [STMT_HOLD_TAKES] = {"credits_hold_takes", sql_hold_takes},
    [STMT_CHARGES] = {"credits_charges", sql_charges},
    [STMT_PACKS] = {"credits_packs", sql_packs},
    [STMT_PLANS] = {"credits_plans", sql_plans},
    [STMT_PAYMENT_LOTS] = {"credits_payment_lots", sql_payment_lots},
    [STMT_RESERVE_LOT_IDS] = {"credits_reserve_lot_ids", sql_reserve_lot_ids},
    [STMT_INSERT_JOBS] = {"credits_insert_jobs", sql_insert_jobs},
    [STMT_INSERT_LOTS] = {"credits_insert_lots", sql_insert_lots},
    [STMT_UPDATE_LOTS] = {"credits_update_lots", sql_update_lots},
    [STMT_REVOKE_LOTS] = {"credits_revoke_lots", sql_revoke_lots},
    [STMT_INSERT_ENTRIES] = {"credits_insert_entries", sql_insert_entries},
    [STMT_UPDATE_PLANS] = {"credits_update_plans", sql_update_plans},
    [STMT_INSERT_HOLDS] = {"credits_insert_holds", sql_insert_holds},
    [STMT_CLOSE_HOLDS] = {"credits_close_holds", sql_close_holds},
    [STMT_UPDATE_NOTICED] = {"credits_update_noticed", sql_update_noticed},
    [STMT_INSERT_EVENTS] = {"credits_insert_events", sql_insert_events},
    [STMT_MARKS_ASYNC] = {"credits_marks_async", sql_marks_async},
    [STMT_MARK_PUBLISHED] = {"credits_mark_published", sql_mark_published},
    [STMT_SWEEP_LOCK] = {"credits_sweep_lock", sql_sweep_lock},
    [STMT_SWEEP_UNLOCK] = {"credits_sweep_unlock", sql_sweep_unlock},
    [STMT_DUE] = {"credits_due", sql_due},
    [STMT_UNPUBLISHED] = {"credits_unpublished", sql_unpublished},
    [STMT_PRUNE_EVENTS] = {"credits_prune_events", sql_prune_events},
};

/* ---------------------------------------------------------------------------
 * State
 * ------------------------------------------------------------------------- */

enum store_state {
    STORE_DISCONNECTED, /* no connection */
    STORE_CONNECTING,   /* PQconnectPoll in progress */
    STORE_PREPARING,    /* preparing the statements on a new connection */
    /* From here on the connection is up (store_is_connected()). */
    STORE_IDLE,         /* connected, no transaction */
    STORE_LOADING,      /* round trip 1 in flight */
    STORE_WRITING,      /* round trip 2 (ending in COMMIT) in flight */
    STORE_ROLLING_BACK, /* ROLLBACK in flight after an error */
    STORE_RUNNING,      /* an op's round trip in flight (store_run()) */
};

/* A generic plan is made once, for the tables' sizes of that moment, and
 * kept until an ANALYZE of a table it reads: a plan made while
 * credits.holds was empty scanned every open hold (through the partial
 * index of their expiries) for the holds a batch names, 2.6 ms a batch
 * once there were thousands. The plans are made again this often. */
#define STORE_REPLAN_MS 10000
/* 32,768 users at most (about 1.5 MB), then forgotten at once. */
#define STORE_KNOWN_ACCOUNTS_SLOTS 65536
/* The durable commits, the plans' three settings, the server's durability. */
#define STORE_SETUP_QUERIES 5
#define STORE_PHASE_QUERIES_MAX (STMT_COUNT + STORE_SETUP_QUERIES)
#define STORE_PARAMS_MAX 16

struct store {
    struct event_base *base;
    char *conninfo;
    store_event_cb *on_ready;
    store_event_cb *on_lost;
    void *arg;
    enum store_state state;
    PGconn *conn;
    struct event *read_event;  /* persistent, while connected */
    struct event *write_event; /* one-shot, while output is pending */
    struct event *connect_event;
    struct event *connect_timer;
    /* The batch or op in flight. */
    struct batch *batch;
    struct store_op *op;
    store_apply_cb *cb;
    void *cb_arg;
    enum rows_kind kinds[STORE_PHASE_QUERIES_MAX];
    size_t query_count;
    size_t results_seen;
    bool awaiting_null; /* PQgetResult's NULL that ends a statement's results */
    enum store_status phase_status;
    struct pgparam params[STORE_PARAMS_MAX];
    /* A lost connection is reported from the loop, never from inside a call
     * of the owner's (store_apply() and the rest return first). */
    struct event *lost_event;
    bool lost_pending;
    /* Read by the set-up statements of each connection (send_setup()). */
    size_t durability_query; /* its index among the set-up phase's queries */
    struct store_durability durability;
    /* Events published, to mark (store_mark_published()): the first
     * marks_sent are in the transaction in flight; pending since
     * marks_since_ms (the monotonic clock) when mark_count > 0. */
    int64_t *marks;
    size_t mark_count;
    size_t mark_cap;
    size_t marks_sent;
    int64_t marks_since_ms;
    int64_t planned_ms; /* when the cached plans were last discarded */
    /* Users whose account row a committed transaction saw or created. */
    struct user_set *known_accounts;
    char errstr[STORE_ERRSTR_BYTES];
};

static void lose_connection(struct store *store, const char *why);
static void read_durability(struct store *store, const PGresult *r);

static void set_errstr(struct store *store, const char *what, const char *detail)
{
    snprintf(store->errstr, sizeof store->errstr, "%s%s%s", what, detail ? ": " : "",
             detail ? detail : "");
    /* libpq messages end in a newline: keep log lines whole. */
    size_t len = strlen(store->errstr);
    while (len > 0 && (store->errstr[len - 1] == '\n' || store->errstr[len - 1] == ' '))
        store->errstr[--len] = '\0';
}

/* ---------------------------------------------------------------------------
 * Sending a phase: statements, then a pipeline sync
 * ------------------------------------------------------------------------- */

static void flush_output(struct store *store)
{
    int rc = PQflush(store->conn);
    if (rc < 0)
        lose_connection(store, PQerrorMessage(store->conn));
    else if (rc > 0)
        event_add(store->write_event, NULL);
}

static void phase_begin(struct store *store, enum store_state state)
{
    store->state = state;
    store->query_count = 0;
    store->results_seen = 0;
    store->awaiting_null = false;
    store->phase_status = STORE_OK;
}

/* Queues one statement; params[0..nparams) are the store's parameters. */
static bool send_query(struct store *store, enum rows_kind kind, enum statement_id id, int nparams,
                       int result_format)
{
    ASSERT(store->query_count < STORE_PHASE_QUERIES_MAX && nparams <= STORE_PARAMS_MAX);
    const char *values[STORE_PARAMS_MAX] = {0};
    int lengths[STORE_PARAMS_MAX] = {0}, formats[STORE_PARAMS_MAX] = {0};
    for (int i = 0; i < nparams; i++) {
        const struct pgparam *p = &store->params[i];
        ASSERT(p->len <= INT32_MAX);
        values[i] = p->data;
        lengths[i] = (int)p->len;
        formats[i] = p->format;
    }
    if (!PQsendQueryPrepared(store->conn, statements[id].name, nparams, values, lengths, formats,
                             result_format)) {
        lose_connection(store, PQerrorMessage(store->conn));
        return false;
    }
    store->kinds[store->query_count++] = kind;
    return true;
}

static bool send_sync(struct store *store)
{
    if (!PQpipelineSync(store->conn)) {
        lose_connection(store, PQerrorMessage(store->conn));
        return false;
    }
    flush_output(store);
    return store->state != STORE_DISCONNECTED;
}

/* An ID list parameter: $1 of the batch's users, packs, plans or refs. */
static bool send_id_query(struct store *store, enum rows_kind kind, enum statement_id id,
                          const char **ids, size_t count, int result_format)
{
    if (count == 0)
        return true;
    pgparam_text_array(&store->params[0], ids, count);
    return send_query(store, kind, id, 1, result_format);
}

/* The query that looks up the keys of one need (job_type.h); false when
 * the need has none of its own (the holds are always loaded, with the
 * users' open ones). */
static bool need_query(enum job_need need, enum rows_kind *kind, enum statement_id *id)
{
    switch (need) {
    case NEED_PACK:
        *kind = ROWS_PACKS;
        *id = STMT_PACKS;
        return true;
    case NEED_PLAN:
        *kind = ROWS_PLANS;
        *id = STMT_PLANS;
        return true;
    case NEED_PAYMENT_REF:
        *kind = ROWS_PAYMENT_LOTS;
        *id = STMT_PAYMENT_LOTS;
        return true;
    case NEED_CHARGE:
        *kind = ROWS_CHARGES;
        *id = STMT_CHARGES;
        return true;
    case NEED_HOLD:
        return false;
    }
    UNREACHABLE();
}

static bool send_load_needs(struct store *store, const char **ids)
{
    struct batch *batch = store->batch;
    for (unsigned need = 0; need < JOB_NEED_COUNT; need++) {
        enum rows_kind kind;
        enum statement_id id;
        if (!need_query((enum job_need)need, &kind, &id))
            continue;
        size_t n = batch_need_keys(batch, (enum job_need)need, ids);
        if (!send_id_query(store, kind, id, ids, n, 0))
            return false;
    }
    size_t lots = batch_new_lot_count(batch);
    if (lots == 0)
        return true;
    char count[24];
    snprintf(count, sizeof count, "%zu", lots);
    pgparam_text(&store->params[0], count);
    return send_query(store, ROWS_LOT_IDS, STMT_RESERVE_LOT_IDS, 1, 0);
}

/* $2 of the lots query: spent monthly lots from this period on are read
 * too; a period after every real one when no job asks for them. */
#define STORE_NO_PERIOD "9999-99"

static bool send_lots_query(struct store *store, const char **ids)
{
    size_t users = batch_users(store->batch, ids);
    pgparam_text_array(&store->params[0], ids, users);
    const char *period = batch_monthly_from_period(store->batch);
    pgparam_text(&store->params[1], period != NULL ? period : STORE_NO_PERIOD);
    size_t allocating = batch_monthly_users(store->batch, ids);
    pgparam_text_array(&store->params[2], ids, allocating);
    return send_query(store, ROWS_LOTS, STMT_LOTS, 3, 0);
}

/* The users' open holds and the holds the jobs name, then what they hold. */
static bool send_holds_queries(struct store *store, const char **ids)
{
    size_t users = batch_users(store->batch, ids);
    pgparam_text_array(&store->params[0], ids, users);
    size_t named = batch_need_keys(store->batch, NEED_HOLD, ids);
    pgparam_text_array(&store->params[1], ids, named);
    return send_query(store, ROWS_HOLDS, STMT_HOLDS, 2, 0) &&
           send_query(store, ROWS_HOLD_TAKES, STMT_HOLD_TAKES, 2, 0);
}

/* The users of the batch not in known_accounts, in user order, into ids. */
static size_t unknown_users(const struct store *store, const char **ids)
{
    size_t users = batch_users(store->batch, ids), unknown = 0;
    for (size_t i = 0; i < users; i++)
        if (!user_set_has(store->known_accounts, ids[i]))
            ids[unknown++] = ids[i];
    return unknown;
}

static bool send_load(struct store *store)
{
    struct batch *batch = store->batch;
    const char **ids = calloc(batch_key_room(batch), sizeof *ids);
    ASSERT(ids != NULL);
    phase_begin(store, STORE_LOADING);
    bool ok = true;
    int64_t now = clock_monotonic_ms();
    if (now - store->planned_ms >= STORE_REPLAN_MS) {
        ok = send_query(store, ROWS_NONE, STMT_DISCARD_PLANS, 0, 0);
        store->planned_ms = now;
    }
    ok = ok && send_query(store, ROWS_NONE, STMT_BEGIN, 0, 0);
    size_t unknown = unknown_users(store, ids);
    ok = ok && send_id_query(store, ROWS_NONE, STMT_CREATE_ACCOUNTS, ids, unknown, 0);
    size_t users = batch_users(batch, ids);
    ok = ok && send_id_query(store, ROWS_ACCOUNTS, STMT_LOCK_ACCOUNTS, ids, users, 0) &&
         send_query(store, ROWS_NOW, STMT_NOW, 0, 0);
    for (size_t i = 0; ok && i < batch->job_count; i++)
        ids[i] = batch->jobs[i].job.id;
    /* Binary results: job_id and the bytea columns arrive as raw bytes. */
    ok = ok && send_id_query(store, ROWS_STORED, STMT_STORED_JOBS, ids, batch->job_count, 1);
    ok = ok && send_lots_query(store, ids) && send_holds_queries(store, ids);
    ok = ok && send_load_needs(store, ids) && send_sync(store);
    free(ids);
    return ok;
}

/* ---------------------------------------------------------------------------
 * Writing the decided batch
 * ------------------------------------------------------------------------- */

static bool send_insert_jobs(struct store *store)
{
    struct batch *batch = store->batch;
    struct pgparam *p = store->params;
    for (int i = 0; i < 5; i++)
        pgparam_array_begin(&p[i], PGPARAM_OID_TEXT);
    pgparam_array_begin(&p[5], PGPARAM_OID_BYTEA);
    pgparam_array_begin(&p[6], PGPARAM_OID_BYTEA);
    size_t rows = 0;
    for (size_t i = 0; i < batch->job_count; i++) {
        const struct batch_job *bj = &batch->jobs[i];
        if (bj->outcome != BATCH_DECIDED)
            continue;
        rows++;
        bool applied = bj->result.error == JOB_OK;
        pgparam_array_text(&p[0], bj->job.id);
        pgparam_array_text(&p[1], job_type_name(bj->job.type));
        pgparam_array_text(&p[2], bj->job.user);
        pgparam_array_text(&p[3], applied ? "applied" : "rejected");
        pgparam_array_text(&p[4], applied ? NULL : job_error_name(bj->result.error));
        pgparam_array_bytes(&p[5], bj->encoded.data, bj->encoded.size);
        pgparam_array_bytes(&p[6], bj->request.data, bj->request.size);
    }
    /* The sweep's expiries: each decided under a job of its own. */
    for (size_t i = 0; i < batch->expiry_count; i++) {
        const struct sweep_expiry *x = &batch->expiries[i];
        rows++;
        pgparam_array_text(&p[0], x->id);
        pgparam_array_text(&p[1], "expire");
        pgparam_array_text(&p[2], batch->accounts[x->account].user);
        pgparam_array_text(&p[3], "applied");
        pgparam_array_text(&p[4], NULL);
        pgparam_array_bytes(&p[5], x->result.data, x->result.size);
        pgparam_array_bytes(&p[6], x->request.data, x->request.size);
    }
    for (int i = 0; i < 7; i++)
        pgparam_array_end(&p[i]);
    return rows == 0 || send_query(store, ROWS_NONE, STMT_INSERT_JOBS, 7, 0);
}

static void put_new_lot(struct pgparam *p, const struct batch *batch, const struct lot *lot)
{
    const struct job *job = &batch->jobs[lot->job_index].job;
    pgparam_array_int(&p[0], lot->lot_id);
    pgparam_array_text(&p[1], job->user);
    pgparam_array_text(&p[2], ledger_lot_kind_name(lot->kind));
    pgparam_array_int(&p[3], lot->granted);
    pgparam_array_int(&p[4], lot->remaining);
    pgparam_array_timestamp(&p[5], lot->granted_at_us);
    if (lot->expires_at_us != LEDGER_NO_EXPIRY)
        pgparam_array_timestamp(&p[6], lot->expires_at_us);
    else
        pgparam_array_null(&p[6]);
    pgparam_array_text(&p[7], job->id);
    pgparam_array_text(&p[8], lot->pack_id);
    pgparam_array_text(&p[9], lot->payment_ref);
    pgparam_array_text(&p[10], lot->plan_id);
    pgparam_array_text(&p[11], lot->period[0] != '\0' ? lot->period : NULL);
}

/* The lots flagged in the batch, by their IDs: revoked (after their
 * remaining went to 0), or announced. */
static bool send_lot_flags(struct store *store, enum statement_id id)
{
    ASSERT(id == STMT_REVOKE_LOTS || id == STMT_UPDATE_NOTICED);
    struct batch *batch = store->batch;
    struct pgparam *p = store->params;
    pgparam_array_begin(&p[0], PGPARAM_OID_INT8);
    size_t flagged = 0;
    for (size_t a = 0; a < batch->account_count; a++) {
        const struct account *account = &batch->accounts[a];
        for (size_t l = 0; l < account->lot_count; l++) {
            const struct lot *lot = &account->lots[l];
            if (id == STMT_REVOKE_LOTS ? lot->revoked_now : lot->noticed_now) {
                pgparam_array_int(&p[0], lot->lot_id);
                flagged++;
            }
        }
    }
    pgparam_array_end(&p[0]);
    return flagged == 0 || send_query(store, ROWS_NONE, id, 1, 0);
}

static bool send_lot_writes(struct store *store)
{
    struct batch *batch = store->batch;
    struct pgparam *p = store->params;
    static const uint32_t lot_columns[12] = {
        PGPARAM_OID_INT8, PGPARAM_OID_TEXT,        PGPARAM_OID_TEXT,        PGPARAM_OID_INT8,
        PGPARAM_OID_INT8, PGPARAM_OID_TIMESTAMPTZ, PGPARAM_OID_TIMESTAMPTZ, PGPARAM_OID_TEXT,
        PGPARAM_OID_TEXT, PGPARAM_OID_TEXT,        PGPARAM_OID_TEXT,        PGPARAM_OID_TEXT};
    for (int i = 0; i < 12; i++)
        pgparam_array_begin(&p[i], lot_columns[i]);
    size_t inserts = 0;
    for (size_t a = 0; a < batch->account_count; a++) {
        const struct account *account = &batch->accounts[a];
        for (size_t l = 0; l < account->lot_count; l++) {
            if (account->lots[l].is_new) {
                put_new_lot(p, batch, &account->lots[l]);
                inserts++;
            }
        }
    }
    for (int i = 0; i < 12; i++)
        pgparam_array_end(&p[i]);
    if (inserts > 0 && !send_query(store, ROWS_NONE, STMT_INSERT_LOTS, 12, 0))
        return false;

    pgparam_array_begin(&p[0], PGPARAM_OID_INT8);
    pgparam_array_begin(&p[1], PGPARAM_OID_INT8);
    size_t updates = 0;
    for (size_t a = 0; a < batch->account_count; a++) {
        const struct account *account = &batch->accounts[a];
        for (size_t l = 0; l < account->lot_count; l++) {
            const struct lot *lot = &account->lots[l];
            if (lot->changed && !lot->is_new) {
                pgparam_array_int(&p[0], lot->lot_id);
                pgparam_array_int(&p[1], lot->remaining);
                updates++;
            }
        }
    }
    pgparam_array_end(&p[0]);
    pgparam_array_end(&p[1]);
    return (updates == 0 || send_query(store, ROWS_NONE, STMT_UPDATE_LOTS, 2, 0)) &&
           send_lot_flags(store, STMT_REVOKE_LOTS) && send_lot_flags(store, STMT_UPDATE_NOTICED);
}

static bool send_insert_entries(struct store *store)
{
    struct batch *batch = store->batch;
    struct pgparam *p = store->params;
    if (batch->entries.count == 0)
        return true;
    static const uint32_t entry_columns[8] = {PGPARAM_OID_TEXT, PGPARAM_OID_TEXT, PGPARAM_OID_INT8,
                                              PGPARAM_OID_TEXT, PGPARAM_OID_INT8, PGPARAM_OID_TEXT,
                                              PGPARAM_OID_TEXT, PGPARAM_OID_TEXT};
    for (int i = 0; i < 8; i++)
        pgparam_array_begin(&p[i], entry_columns[i]);
    for (size_t e = 0; e < batch->entries.count; e++) {
        const struct entry *entry = &batch->entries.items[e];
        pgparam_array_text(&p[0], batch_entry_user(batch, entry));
        pgparam_array_text(&p[1], batch_entry_job_id(batch, entry));
        pgparam_array_int(&p[2], entry->lot_id);
        pgparam_array_text(&p[3], ledger_entry_kind_name(entry->kind));
        pgparam_array_int(&p[4], entry->delta);
        pgparam_array_text(&p[5], entry->tool);
        pgparam_array_text(&p[6], entry->ref);
        pgparam_array_text(&p[7], entry->origin);
    }
    for (int i = 0; i < 8; i++)
        pgparam_array_end(&p[i]);
    return send_query(store, ROWS_NONE, STMT_INSERT_ENTRIES, 8, 0);
}

/* A new hold as it is at the end of the batch. */
static void put_new_hold(struct pgparam *p, const struct batch *batch, const char *user,
                         const struct hold *hold)
{
    const struct job *job = &batch->jobs[hold->job_index].job;
    ASSERT(job->type == JOB_HOLD && strcmp(job->id, hold->id) == 0);
    pgparam_array_text(&p[0], hold->id);
    pgparam_array_text(&p[1], user);
    pgparam_array_int(&p[2], hold->amount);
    pgparam_array_text(&p[3], ledger_hold_status_name(hold->status));
    if (hold->status == HOLD_CAPTURED)
        pgparam_array_int(&p[4], hold->captured);
    else
        pgparam_array_null(&p[4]);
    pgparam_array_timestamp(&p[5], hold->expires_at_us);
    pgparam_array_text(&p[6], hold->closed_by);
    pgparam_array_text(&p[7], job->hold.has_tool ? job->hold.tool : NULL);
    pgparam_array_text(&p[8], job->hold.has_ref ? job->hold.ref : NULL);
}

static bool send_insert_holds(struct store *store)
{
    struct batch *batch = store->batch;
    struct pgparam *p = store->params;
    static const uint32_t hold_columns[9] = {
        PGPARAM_OID_TEXT, PGPARAM_OID_TEXT, PGPARAM_OID_INT8,
        PGPARAM_OID_TEXT, PGPARAM_OID_INT8, PGPARAM_OID_TIMESTAMPTZ,
        PGPARAM_OID_TEXT, PGPARAM_OID_TEXT, PGPARAM_OID_TEXT};
    for (int i = 0; i < 9; i++)
        pgparam_array_begin(&p[i], hold_columns[i]);
    size_t rows = 0;
    for (size_t a = 0; a < batch->account_count; a++) {
        const struct account *account = &batch->accounts[a];
        for (size_t h = 0; h < account->hold_count; h++) {
            if (account->holds[h]->is_new) {
                put_new_hold(p, batch, account->user, account->holds[h]);
                rows++;
            }
        }
    }
    for (int i = 0; i < 9; i++)
        pgparam_array_end(&p[i]);
    return rows == 0 || send_query(store, ROWS_NONE, STMT_INSERT_HOLDS, 9, 0);
}

/* Holds loaded open and closed in the batch (by a job, or by expiry). */
static bool send_close_holds(struct store *store)
{
    struct batch *batch = store->batch;
    struct pgparam *p = store->params;
    static const uint32_t columns[4] = {PGPARAM_OID_TEXT, PGPARAM_OID_TEXT, PGPARAM_OID_INT8,
                                        PGPARAM_OID_TEXT};
    for (int i = 0; i < 4; i++)
        pgparam_array_begin(&p[i], columns[i]);
    size_t rows = 0;
    for (size_t a = 0; a < batch->account_count; a++) {
        const struct account *account = &batch->accounts[a];
        for (size_t h = 0; h < account->hold_count; h++) {
            const struct hold *hold = account->holds[h];
            if (hold->is_new || !hold->changed)
                continue;
            ASSERT(hold->status != HOLD_OPEN);
            pgparam_array_text(&p[0], hold->id);
            pgparam_array_text(&p[1], ledger_hold_status_name(hold->status));
            if (hold->status == HOLD_CAPTURED)
                pgparam_array_int(&p[2], hold->captured);
            else
                pgparam_array_null(&p[2]);
            pgparam_array_text(&p[3], hold->closed_by);
            rows++;
        }
    }
    for (int i = 0; i < 4; i++)
        pgparam_array_end(&p[i]);
    return rows == 0 || send_query(store, ROWS_NONE, STMT_CLOSE_HOLDS, 4, 0);
}

static bool send_update_plans(struct store *store)
{
    struct batch *batch = store->batch;
    struct pgparam *p = store->params;
    pgparam_array_begin(&p[0], PGPARAM_OID_TEXT);
    pgparam_array_begin(&p[1], PGPARAM_OID_TEXT);
    size_t rows = 0;
    for (size_t a = 0; a < batch->account_count; a++) {
        const struct account *account = &batch->accounts[a];
        if (account->plan_changed) {
            pgparam_array_text(&p[0], account->user);
            pgparam_array_text(&p[1], account->has_plan ? account->plan : NULL);
            rows++;
        }
    }
    pgparam_array_end(&p[0]);
    pgparam_array_end(&p[1]);
    return rows == 0 || send_query(store, ROWS_NONE, STMT_UPDATE_PLANS, 2, 0);
}

/* The events to publish once committed: copies of the batch's, which the
 * insert's IDs fill in (rows.c, ROWS_EVENT_IDS). An event holds 0 or ''
 * but for its type's keys (event_list_add()), as its row holds null and
 * SQL_EVENT_COLUMNS reads it back. */
static void stage_stored_events(struct batch *batch)
{
    event_list_free(&batch->stored_events);
    for (size_t i = 0; i < batch->events.count; i++) {
        const struct event *e = &batch->events.items[i];
        *event_list_add(&batch->stored_events, e->type, e->user, e->job, e->at_ms, &e->balance) =
            *e;
    }
}

static bool send_insert_events(struct store *store)
{
    const struct event_list *events = &store->batch->events;
    if (events->count == 0)
        return true;
    stage_stored_events(store->batch);
    struct pgparam *p = store->params;
    static const uint32_t columns[14] = {
        PGPARAM_OID_TEXT, PGPARAM_OID_TEXT, PGPARAM_OID_TEXT, PGPARAM_OID_INT8,
        PGPARAM_OID_INT8, PGPARAM_OID_INT8, PGPARAM_OID_INT8, PGPARAM_OID_INT8,
        PGPARAM_OID_INT8, PGPARAM_OID_INT8, PGPARAM_OID_INT8, PGPARAM_OID_TIMESTAMPTZ,
        PGPARAM_OID_TEXT, PGPARAM_OID_INT8};
    for (int i = 0; i < 14; i++)
        pgparam_array_begin(&p[i], columns[i]);
    for (size_t i = 0; i < events->count; i++) {
        const struct event *e = &events->items[i];
        bool has_threshold = e->type == EVENT_BALANCE_LOW || e->type == EVENT_BALANCE_RECOVERED;
        bool has_lot = e->type == EVENT_CREDITS_EXPIRING || e->type == EVENT_CREDITS_EXPIRED;
        bool has_hold = e->type == EVENT_HOLD_EXPIRED;
        pgparam_array_text(&p[0], e->user);
        pgparam_array_text(&p[1], event_type_name(e->type));
        pgparam_array_text(&p[2], e->job);
        pgparam_array_int(&p[3], e->balance.total);
        pgparam_array_int(&p[4], e->balance.pack);
        pgparam_array_int(&p[5], e->balance.monthly);
        pgparam_array_int(&p[6], e->balance.grant);
        pgparam_array_int(&p[7], e->balance.held);
        if (has_threshold)
            pgparam_array_int(&p[8], e->threshold);
        else
            pgparam_array_null(&p[8]);
        if (has_lot) {
            pgparam_array_int(&p[9], e->lot);
            pgparam_array_int(&p[10], e->credits);
        } else {
            pgparam_array_null(&p[9]);
            pgparam_array_null(&p[10]);
        }
        if (e->type == EVENT_CREDITS_EXPIRING)
            pgparam_array_timestamp(&p[11], e->expires_at_ms * 1000);
        else
            pgparam_array_null(&p[11]);
        pgparam_array_text(&p[12], has_hold ? e->hold : NULL);
        if (has_hold)
            pgparam_array_int(&p[13], e->released);
        else
            pgparam_array_null(&p[13]);
    }
    for (int i = 0; i < 14; i++)
        pgparam_array_end(&p[i]);
    return send_query(store, ROWS_EVENT_IDS, STMT_INSERT_EVENTS, 14, 0);
}

/* All the pending marks, in the transaction being sent: marks_sent. */
static bool send_marks(struct store *store)
{
    store->marks_sent = store->mark_count;
    if (store->mark_count == 0)
        return true;
    struct pgparam *p = store->params;
    pgparam_array_begin(&p[0], PGPARAM_OID_INT8);
    for (size_t i = 0; i < store->mark_count; i++)
        pgparam_array_int(&p[0], store->marks[i]);
    pgparam_array_end(&p[0]);
    return send_query(store, ROWS_NONE, STMT_MARK_PUBLISHED, 1, 0);
}

static bool send_writes(struct store *store)
{
    phase_begin(store, STORE_WRITING);
    /* Order matters: lots and entries reference jobs, entries reference lots. */
    return send_insert_jobs(store) && send_lot_writes(store) && send_insert_entries(store) &&
           send_update_plans(store) && send_insert_holds(store) && send_close_holds(store) &&
           send_insert_events(store) && (!store_marks_due(store) || send_marks(store)) &&
           send_query(store, ROWS_NONE, STMT_COMMIT, 0, 0) && send_sync(store);
}

static bool send_rollback(struct store *store, enum store_status status)
{
    phase_begin(store, STORE_ROLLING_BACK);
    store->phase_status = status;
    return send_query(store, ROWS_NONE, STMT_ROLLBACK, 0, 0) && send_sync(store);
}

/* ---------------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------------- */

/* SQLSTATE classes that speak of the data a statement was given: with the
 * worker's fixed statements, only a job's values can cause them, so the
 * batch is split to find the job (a job that fails alone while its
 * batch-mates commit is dead-lettered). Cardinality, data exceptions,
 * integrity constraints (23505 is a race, retried), triggered data changes,
 * WITH CHECK OPTION, routine and PL/pgSQL exceptions (a trigger raising for
 * a row), and program limits a large value can hit. */
static const char *const job_data_classes[] = {"21", "22", "23", "27", "2F",
                                               "38", "39", "44", "54", "P0"};

static bool is_job_data_error(const char *state)
{
    for (size_t i = 0; i < sizeof job_data_classes / sizeof job_data_classes[0]; i++)
        if (strncmp(state, job_data_classes[i], 2) == 0)
            return true;
    /* A deferred constraint failing at COMMIT: the same, one step later. */
    return strcmp(state, "40002") == 0;
}

/*
 * What an error says, and so what the worker does with the batch:
 * - a transient conflict (serialization failure, deadlock, a racing
 *   worker's unique key, a lock or statement timeout): STORE_RETRY;
 * - the connection is going (08xxx, 57P01 admin shutdown and the other
 *   57Pxx terminations: the outcome of a COMMIT in flight is unknown):
 *   STORE_LOST;
 * - about a job's data (the classes above): STORE_FAILED, and the batch is
 *   split to find the job;
 * - anything else says something about the database, not a job: read-only
 *   (25006: a failover to a standby), privileges and the schema (42xxx:
 *   42501 a revoked grant, 42P01 a missing table), resources (53xxx: disk
 *   full, out of memory), the system (58xxx), internal errors (XXxxx), a
 *   feature or setting of the server (0Axxx, 55xxx). Every batch would fail
 *   the same way: STORE_UNAVAILABLE, no job is blamed and nothing is
 *   dead-lettered; the batch waits until the database accepts it.
 * An error without a SQLSTATE comes from libpq itself, not from a job.
 */
static enum store_status classify(const PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!state || strlen(state) != 5)
        return STORE_UNAVAILABLE;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "23505") == 0 ||
        strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0)
        return STORE_RETRY;
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
        return STORE_LOST;
    if (is_job_data_error(state))
        return STORE_FAILED;
    return STORE_UNAVAILABLE;
}

/* The transaction that carried marks_sent marks ended: committed, they are
 * written; otherwise they wait for the next one. */
static void settle_marks(struct store *store, enum store_status status)
{
    ASSERT(store->marks_sent <= store->mark_count);
    if (status == STORE_OK && store->marks_sent > 0) {
        store->mark_count -= store->marks_sent;
        memmove(store->marks, store->marks + store->marks_sent,
                store->mark_count * sizeof *store->marks);
    }
    store->marks_sent = 0;
}

/* After a commit every user of the batch has an account row. */
static void remember_accounts(struct store *store)
{
    const struct batch *batch = store->batch;
    for (size_t i = 0; i < batch->account_count; i++)
        user_set_add(store->known_accounts, batch->accounts[i].user);
}

/* The lock query found fewer rows than users: an account row known to the
 * store was deleted since (by hand: the worker deletes none). Those users
 * would go unlocked, so the batch is rolled back and retried with the
 * store's knowledge forgotten, which creates their rows again. */
static void check_locked(struct store *store, const PGresult *r)
{
    size_t locked = (size_t)PQntuples(r), users = store->batch->account_count;
    if (locked == users)
        return;
    user_set_clear(store->known_accounts);
    char detail[96];
    snprintf(detail, sizeof detail, "%zu of %zu users have an account row", locked, users);
    set_errstr(store, "accounts missing (deleted by hand?): retried with their rows created",
               detail);
    store->phase_status = STORE_RETRY;
}

static void finish_apply(struct store *store, enum store_status status)
{
    store_apply_cb *cb = store->cb;
    void *arg = store->cb_arg;
    settle_marks(store, status);
    if (status == STORE_OK && store->batch != NULL)
        remember_accounts(store);
    store->batch = NULL;
    store->op = NULL;
    store->cb = NULL;
    store->state = STORE_IDLE;
    cb(arg, status);
}

/* The sync that ends a phase has arrived. */
static void phase_done(struct store *store)
{
    enum store_status status = store->phase_status;
    switch (store->state) {
    case STORE_LOADING:
        if (status != STORE_OK) {
            send_rollback(store, status);
        } else if (batch_decide(store->batch) != 0) {
            set_errstr(store, "a stored result in credits.jobs cannot be decoded", NULL);
            send_rollback(store, STORE_FAILED);
        } else {
            send_writes(store);
        }
        break;
    case STORE_WRITING:
        if (status != STORE_OK)
            send_rollback(store, status);
        else
            finish_apply(store, STORE_OK);
        break;
    case STORE_RUNNING:
        /* The marks' op is a transaction block: a failure in it leaves the
         * block open (aborted) until a rollback. */
        if (status != STORE_OK && store->op->kind == STORE_OP_MARK_PUBLISHED)
            send_rollback(store, status);
        else
            finish_apply(store, status);
        break;
    case STORE_ROLLING_BACK:
        finish_apply(store, status);
        break;
    case STORE_PREPARING:
        if (status != STORE_OK) {
            /* The schema is missing or older than this worker, most likely. */
            char why[STORE_ERRSTR_BYTES + 64];
            snprintf(why, sizeof why, "%s (has 'creditsctl migrate' been run?)", store->errstr);
            lose_connection(store, why);
            break;
        }
        store->state = STORE_IDLE;
        store->on_ready(store->arg);
        break;
    case STORE_DISCONNECTED:
    case STORE_CONNECTING:
    case STORE_IDLE:
        UNREACHABLE(); /* a sync arrives only in a phase (in_phase()) */
    }
}

/* An op's one statement answered: its rows into the op. */
static bool read_op_result(struct store *store, const PGresult *r)
{
    struct store_op *op = store->op;
    switch (op->kind) {
    case STORE_OP_SWEEP_LOCK:
        op->locked = PQntuples(r) == 1 && PQnfields(r) == 1 && !PQgetisnull(r, 0, 0) &&
                     strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        return true;
    case STORE_OP_DUE:
        return rows_read_due(r, &op->due, store->errstr, sizeof store->errstr);
    case STORE_OP_UNPUBLISHED:
        return rows_read_events(r, &op->events, store->errstr, sizeof store->errstr);
    case STORE_OP_SWEEP_UNLOCK:
    case STORE_OP_MARK_PUBLISHED:
    case STORE_OP_PRUNE:
        /* Summed: BEGIN, SET and COMMIT have no rows. */
        op->affected += strtoll(PQcmdTuples((PGresult *)r), NULL, 10);
        return true;
    }
    UNREACHABLE();
}

static void statement_result(struct store *store, PGresult *r)
{
    ASSERT(store->results_seen < store->query_count);
    enum rows_kind kind = store->kinds[store->results_seen];
    ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        if (store->state == STORE_PREPARING && store->results_seen == store->durability_query)
            read_durability(store, r);
        bool read = true;
        if (store->phase_status == STORE_OK && kind == ROWS_ACCOUNTS)
            check_locked(store, r);
        if (store->phase_status == STORE_OK && store->state == STORE_RUNNING)
            read = read_op_result(store, r);
        else if (store->phase_status == STORE_OK && kind != ROWS_NONE)
            read = rows_read(kind, store->batch, r, store->errstr, sizeof store->errstr);
        if (!read)
            store->phase_status = STORE_UNAVAILABLE; /* not this batch's fault: see rows.h */
    } else if (status == PGRES_FATAL_ERROR) {
        if (store->phase_status == STORE_OK) {
            store->phase_status = classify(r);
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
            char what[32];
            snprintf(what, sizeof what, "database error %s", state ? state : "");
            set_errstr(store, what, primary ? primary : PQresultErrorMessage(r));
        }
    } else {
        /* PGRES_PIPELINE_ABORTED: a statement after the failed one. */
        ASSERT(status == PGRES_PIPELINE_ABORTED);
        ASSERT(store->phase_status != STORE_OK);
    }
    store->awaiting_null = true;
}

static bool in_phase(const struct store *store)
{
    return store->state == STORE_LOADING || store->state == STORE_WRITING ||
           store->state == STORE_ROLLING_BACK || store->state == STORE_PREPARING ||
           store->state == STORE_RUNNING;
}

static void read_results(struct store *store)
{
    while (in_phase(store) && !PQisBusy(store->conn)) {
        PGresult *r = PQgetResult(store->conn);
        if (r == NULL) {
            if (!store->awaiting_null)
                break;
            store->awaiting_null = false;
            store->results_seen++;
            continue;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            ASSERT(store->results_seen == store->query_count);
            if (store->phase_status == STORE_LOST) {
                lose_connection(store, NULL);
                return;
            }
            phase_done(store);
            continue;
        }
        statement_result(store, r);
        PQclear(r);
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct store *store = arg;
    if (!PQconsumeInput(store->conn)) {
        lose_connection(store, PQerrorMessage(store->conn));
        return;
    }
    if (!in_phase(store)) {
        /* Nothing asked: a notice, or the server closing the connection. */
        if (PQstatus(store->conn) == CONNECTION_BAD)
            lose_connection(store, PQerrorMessage(store->conn));
        return;
    }
    read_results(store);
    if (store->state != STORE_DISCONNECTED && PQisnonblocking(store->conn))
        flush_output(store);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_output(arg);
}

/* ---------------------------------------------------------------------------
 * Connection
 * ------------------------------------------------------------------------- */

static void close_events(struct store *store)
{
    struct event **events[] = {&store->read_event, &store->write_event, &store->connect_event};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        if (*events[i]) {
            event_free(*events[i]);
            *events[i] = NULL;
        }
    }
    evtimer_del(store->connect_timer);
}

/* Drops the connection at once; the apply in flight (if any) and the owner
 * hear of it from the event loop (report_lost()), so that no call of the
 * owner's ever sees its own callback run before it returns. */
static void lose_connection(struct store *store, const char *why)
{
    if (store->state == STORE_DISCONNECTED)
        return;
    if (why)
        set_errstr(store, "PostgreSQL connection lost", why);
    close_events(store);
    PQfinish(store->conn);
    store->conn = NULL;
    store->state = STORE_DISCONNECTED;
    store->lost_pending = true;
    event_active(store->lost_event, EV_TIMEOUT, 0);
}

/* The apply in flight gets STORE_LOST, then the owner's on_lost. */
static void report_lost(struct store *store)
{
    if (!store->lost_pending)
        return;
    ASSERT(store->state == STORE_DISCONNECTED);
    store->lost_pending = false;
    if (store->batch != NULL || store->op != NULL) {
        store_apply_cb *cb = store->cb;
        store->marks_sent = 0; /* unknown: marked again, harmless */
        store->batch = NULL;
        store->op = NULL;
        store->cb = NULL;
        cb(store->cb_arg, STORE_LOST);
    }
    if (store->on_lost)
        store->on_lost(store->arg);
}

static void on_lost_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    report_lost(arg);
}

/* The session's own settings, set whatever the server's or the role's
 * defaults and whatever `options` the operator's conninfo carries: a
 * commit is durable before its result is published. */
static const char sql_session_durable[] = "SET synchronous_commit = on";
/* Every statement's array parameters hold a batch's keys, and each key is
 * looked up by an index whatever their number: one generic plan per
 * statement serves every batch. Left to choose, PostgreSQL planned most
 * executions again (a custom plan each time, about 0.3 ms of a batch of
 * one job's 1.7 ms) for the same plan. */
static const char sql_session_generic_plans[] = "SET plan_cache_mode = force_generic_plan";
/* ... and a plan made without the keys, on the statistics of the moment,
 * may still judge a scan of a whole table cheaper: made after two drains
 * of 100,000 consume-heavy jobs, the refunds' charges were read by a parallel scan of
 * credits.entries, 4 ms a batch and growing with the ledger. Every
 * statement here has an index for its keys: the session takes the index
 * (a table with no index for a query is still scanned). */
static const char sql_session_index_paths[] = "SET enable_seqscan = off";
static const char sql_session_serial[] = "SET max_parallel_workers_per_gather = 0";
/* The server settings without which a commit does not survive a crash. */
static const char sql_server_durability[] =
    "SELECT current_setting('fsync') = 'on', current_setting('full_page_writes') = 'on'";

static bool send_setup_query(struct store *store, const char *sql)
{
    ASSERT(store->query_count < STORE_PHASE_QUERIES_MAX);
    if (!PQsendQueryParams(store->conn, sql, 0, NULL, NULL, NULL, NULL, 0)) {
        lose_connection(store, PQerrorMessage(store->conn));
        return false;
    }
    store->kinds[store->query_count++] = ROWS_NONE;
    return true;
}

/* The row of sql_server_durability: two booleans, as text. */
static void read_durability(struct store *store, const PGresult *r)
{
    bool shape = PQntuples(r) == 1 && PQnfields(r) == 2;
    store->durability.fsync = shape && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    store->durability.full_page_writes = shape && strcmp(PQgetvalue(r, 0, 1), "t") == 0;
}

/* Sets the session up and prepares every statement, pipelined; the sync's
 * arrival makes the store ready (phase_done). */
static bool send_prepare(struct store *store)
{
    phase_begin(store, STORE_PREPARING);
    store->durability = (struct store_durability){false, false};
    if (!send_setup_query(store, sql_session_durable) ||
        !send_setup_query(store, sql_session_generic_plans) ||
        !send_setup_query(store, sql_session_index_paths) ||
        !send_setup_query(store, sql_session_serial))
        return false;
    store->durability_query = store->query_count;
    if (!send_setup_query(store, sql_server_durability))
        return false;
    for (int id = 0; id < STMT_COUNT; id++) {
        if (!PQsendPrepare(store->conn, statements[id].name, statements[id].sql, 0, NULL)) {
            lose_connection(store, PQerrorMessage(store->conn));
            return false;
        }
        store->kinds[store->query_count++] = ROWS_NONE;
    }
    return send_sync(store);
}

static bool connected(struct store *store)
{
    close_events(store);
    if (PQsetnonblocking(store->conn, 1) != 0 || !PQenterPipelineMode(store->conn)) {
        lose_connection(store, PQerrorMessage(store->conn));
        return false;
    }
    int fd = PQsocket(store->conn);
    store->read_event = event_new(store->base, fd, EV_READ | EV_PERSIST, on_readable, store);
    store->write_event = event_new(store->base, fd, EV_WRITE, on_writable, store);
    ASSERT(store->read_event && store->write_event);
    event_add(store->read_event, NULL);
    store->errstr[0] = '\0';
    /* Perhaps another database behind the same address now. */
    user_set_clear(store->known_accounts);
    store->planned_ms = clock_monotonic_ms(); /* a new session plans afresh */
    return send_prepare(store);
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg);

/* Drives PQconnectPoll; the socket can change between polls. */
static void poll_connect(struct store *store, PostgresPollingStatusType polled)
{
    if (polled == PGRES_POLLING_OK) {
        connected(store);
        return;
    }
    if (polled == PGRES_POLLING_FAILED) {
        char why[STORE_ERRSTR_BYTES];
        snprintf(why, sizeof why, "%s", PQerrorMessage(store->conn));
        lose_connection(store, why);
        return;
    }
    if (store->connect_event)
        event_free(store->connect_event);
    short events = polled == PGRES_POLLING_READING ? EV_READ : EV_WRITE;
    store->connect_event =
        event_new(store->base, PQsocket(store->conn), events, on_connect_io, store);
    ASSERT(store->connect_event != NULL);
    event_add(store->connect_event, NULL);
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct store *store = arg;
    poll_connect(store, PQconnectPoll(store->conn));
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lose_connection(arg, "connect timed out");
}

int store_connect(struct store *store)
{
    ASSERT(store->state == STORE_DISCONNECTED && store->conn == NULL);
    /* Ours come first: whatever the operator's conninfo says overrides them. */
    const char *keys[] = {"application_name", "options", "dbname", NULL};
    const char *values[] = {"credits-worker", STORE_SESSION_OPTIONS, store->conninfo, NULL};
    store->conn = PQconnectStartParams(keys, values, 1);
    if (!store->conn)
        return -1;
    if (PQstatus(store->conn) == CONNECTION_BAD) {
        set_errstr(store, "cannot connect to PostgreSQL", PQerrorMessage(store->conn));
        PQfinish(store->conn);
        store->conn = NULL;
        return -1;
    }
    store->state = STORE_CONNECTING;
    struct timeval timeout = {STORE_CONNECT_TIMEOUT_MS / 1000, 0};
    evtimer_add(store->connect_timer, &timeout);
    poll_connect(store, PGRES_POLLING_WRITING);
    return 0;
}

struct store *store_new(struct event_base *base, const char *conninfo, store_event_cb *on_ready,
                        store_event_cb *on_lost, void *arg)
{
    ASSERT(base && conninfo && on_ready && on_lost);
    struct store *store = calloc(1, sizeof *store);
    ASSERT(store != NULL);
    store->base = base;
    store->conninfo = strdup(conninfo);
    ASSERT(store->conninfo != NULL);
    store->on_ready = on_ready;
    store->on_lost = on_lost;
    store->arg = arg;
    store->connect_timer = evtimer_new(base, on_connect_timeout, store);
    store->lost_event = event_new(base, -1, 0, on_lost_event, store);
    store->known_accounts = user_set_new(STORE_KNOWN_ACCOUNTS_SLOTS);
    ASSERT(store->connect_timer != NULL && store->lost_event != NULL);
    return store;
}

void store_disconnect(struct store *store)
{
    lose_connection(store, "closed by the worker");
}

void store_free(struct store *store)
{
    if (!store)
        return;
    store->on_lost = NULL;
    lose_connection(store, "closed by the worker");
    report_lost(store); /* now: the store is going away */
    event_free(store->lost_event);
    event_free(store->connect_timer);
    for (int i = 0; i < STORE_PARAMS_MAX; i++)
        pgparam_free(&store->params[i]);
    free(store->marks);
    user_set_free(store->known_accounts);
    free(store->conninfo);
    free(store);
}

bool store_is_connected(const struct store *store)
{
    return store->state >= STORE_IDLE;
}

bool store_is_idle(const struct store *store)
{
    return store->state == STORE_IDLE;
}

struct store_durability store_durability(const struct store *store)
{
    return store->durability;
}

const char *store_errstr(const struct store *store)
{
    return store->errstr;
}

int store_apply(struct store *store, struct batch *batch, store_apply_cb *cb, void *arg)
{
    ASSERT(batch && cb && (batch->job_count > 0 || (batch->sweep && batch->account_count > 0)));
    if (store->state != STORE_IDLE)
        return -1;
    ASSERT(store->batch == NULL);
    store->batch = batch;
    store->cb = cb;
    store->cb_arg = arg;
    store->errstr[0] = '\0';
    /* On a send failure the connection is dropped; the callback gets
     * STORE_LOST from the event loop, after this returns. */
    send_load(store);
    return 0;
}

void store_mark_published(struct store *store, const int64_t *event_ids, size_t count)
{
    ASSERT(event_ids != NULL || count == 0);
    if (store->mark_count + count > store->mark_cap) {
        size_t cap = store->mark_cap ? store->mark_cap : 64;
        while (cap < store->mark_count + count)
            cap *= 2;
        int64_t *marks = realloc(store->marks, cap * sizeof *marks);
        ASSERT(marks != NULL);
        store->marks = marks;
        store->mark_cap = cap;
    }
    if (store->mark_count == 0 && count > 0)
        store->marks_since_ms = clock_monotonic_ms();
    memcpy(store->marks + store->mark_count, event_ids, count * sizeof *event_ids);
    store->mark_count += count;
}

int64_t store_marks_due_in_ms(const struct store *store)
{
    if (store->mark_count == 0)
        return -1;
    if (store->mark_count >= STORE_MARKS_BATCH)
        return 0;
    int64_t waited = clock_monotonic_ms() - store->marks_since_ms;
    return waited >= STORE_MARKS_DELAY_MS ? 0 : STORE_MARKS_DELAY_MS - waited;
}

bool store_marks_due(const struct store *store)
{
    return store_marks_due_in_ms(store) == 0;
}

size_t store_marks_pending(const struct store *store)
{
    return store->mark_count;
}

static void send_op(struct store *store)
{
    struct store_op *op = store->op;
    struct pgparam *p = store->params;
    char limit[24], days[24], age[40], after[24];
    snprintf(limit, sizeof limit, "%lld", (long long)op->limit);
    snprintf(days, sizeof days, "%lld", (long long)op->days);
    snprintf(age, sizeof age, "%.3f", op->age_s);
    phase_begin(store, STORE_RUNNING);
    op->affected = 0;
    bool ok = false;
    switch (op->kind) {
    case STORE_OP_SWEEP_LOCK:
        ok = send_query(store, ROWS_NONE, STMT_SWEEP_LOCK, 0, 0);
        break;
    case STORE_OP_SWEEP_UNLOCK:
        ok = send_query(store, ROWS_NONE, STMT_SWEEP_UNLOCK, 0, 0);
        break;
    case STORE_OP_DUE:
        ASSERT(op->due.users != NULL && op->due.user_cap >= 3 * (size_t)op->limit);
        pgparam_text(&p[0], days);
        pgparam_text(&p[1], limit);
        ok = send_query(store, ROWS_NONE, STMT_DUE, 2, 0);
        break;
    case STORE_OP_UNPUBLISHED:
        snprintf(after, sizeof after, "%lld", (long long)op->after_id);
        pgparam_text(&p[0], age);
        pgparam_text(&p[1], limit);
        pgparam_text(&p[2], after);
        ok = send_query(store, ROWS_NONE, STMT_UNPUBLISHED, 3, 0);
        break;
    case STORE_OP_MARK_PUBLISHED:
        ASSERT(store->mark_count > 0);
        ok = send_query(store, ROWS_NONE, STMT_BEGIN, 0, 0) &&
             send_query(store, ROWS_NONE, STMT_MARKS_ASYNC, 0, 0) && send_marks(store) &&
             send_query(store, ROWS_NONE, STMT_COMMIT, 0, 0);
        break;
    case STORE_OP_PRUNE:
        pgparam_text(&p[0], days);
        pgparam_text(&p[1], limit);
        ok = send_query(store, ROWS_NONE, STMT_PRUNE_EVENTS, 2, 0);
        break;
    }
    if (ok)
        send_sync(store);
}

int store_run(struct store *store, struct store_op *op, store_apply_cb *cb, void *arg)
{
    ASSERT(op && cb);
    if (store->state != STORE_IDLE)
        return -1;
    ASSERT(store->batch == NULL && store->op == NULL);
    store->op = op;
    store->cb = cb;
    store->cb_arg = arg;
    store->errstr[0] = '\0';
    /* As for store_apply(): a send failure is reported from the loop. */
    send_op(store);
    return 0;
}
