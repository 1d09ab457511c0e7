/*
 * queue.h -- Redis Streams for the worker (contract sections 1, 3, 7): the
 * consumer group, reading job entries, publishing results and dead letters,
 * acknowledging. hiredis async on a libevent loop, one connection.
 *
 * Owns the Redis connection and every Redis key name. Does not decide
 * anything about jobs, and never reconnects by itself: it reports a lost
 * connection and the caller decides when to call queue_connect() again.
 *
 * Callbacks: a function that takes a callback and fails returns -1 and never
 * calls it; otherwise the callback is called exactly once, with status 0 on
 * success or -1 (the connection was lost or Redis answered an error),
 * possibly from inside hiredis: callbacks must not call back into the queue
 * (defer the next step to the event loop).
 */
#ifndef CREDITS_QUEUE_QUEUE_H
#define CREDITS_QUEUE_QUEUE_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/job.h"
#include "queue/redis_url.h"
#include "queue/sha256.h"

#define QUEUE_STREAM_COUNT JOB_STREAM_COUNT
#define QUEUE_ENTRY_ID_BYTES_MAX 47 /* "<ms>-<seq>": two u64 and a dash */
#define QUEUE_REPLY_TTL_S 300
#define QUEUE_CONNECT_TIMEOUT_MS 5000
#define QUEUE_READ_MARGIN_MS 5000      /* a blocked read may take BLOCK + this */
#define QUEUE_COMMAND_TIMEOUT_MS 10000 /* any other command unanswered this long: reconnect */

#define QUEUE_NAME_BYTES_MAX 128

/* What the queue needs to know, filled from the worker's settings. */
struct queue_config {
    struct redis_url redis; /* host already numeric (redis_url_resolve) */
    char prefix[QUEUE_NAME_BYTES_MAX + 1];
    char group[QUEUE_NAME_BYTES_MAX + 1];
    char consumer[QUEUE_NAME_BYTES_MAX + 1];
    int64_t result_ttl_s;
    int64_t results_maxlen;
    int64_t dead_maxlen;   /* P:dead is trimmed to about this many entries */
    int64_t events_maxlen; /* P:events, likewise */
    int64_t block_ms;
};

/* Bytes of an entry's `job` field kept in memory: one more than a job may
 * have, so that the decoder sees an over-long job as one (and can still
 * read its `id` from the start), and no field of any size costs more. */
#define QUEUE_JOB_KEPT_BYTES_MAX (JOB_BYTES_MAX + 1)
/* Bytes of the original kept in a dead letter's `job` (contract 9.9). */
#define QUEUE_DEAD_JOB_BYTES_MAX JOB_BYTES_MAX

#define QUEUE_CLAIM_COUNT 1000 /* entries claimed per stream per call */

/* One entry read from a job stream. */
struct queue_entry {
    enum job_stream stream;
    char id[QUEUE_ENTRY_ID_BYTES_MAX + 1];
    uint64_t id_ms;     /* the ID's time part: when the producer added it */
    uint64_t id_seq;    /* the ID's sequence part */
    int64_t deliveries; /* times delivered, when read as pending; 0 when not known */
    bool has_job;       /* false: no `job` field, or the entry was deleted */
    uint8_t *job;       /* the first bytes of the `job` field; owned (queue_entries_free) */
    size_t job_len;     /* bytes in job: at most QUEUE_JOB_KEPT_BYTES_MAX */
    size_t job_bytes;   /* the field's whole length (job_len < job_bytes: cut) */
    uint8_t job_sha256[SHA256_DIGEST_BYTES]; /* of the whole field, when cut */
};

enum queue_result_key {
    QUEUE_KEY_NONE,   /* no result key (no readable ID, or id_conflict) */
    QUEUE_KEY_SET,    /* SET result:{id} ... EX ttl */
    QUEUE_KEY_SET_NX, /* SET ... EX ttl NX: unstored rejections never replace */
};

/* What to publish for one decided entry. Pointers borrowed until return.
 * An entry set aside undecided has no result (result_len 0): only its dead
 * letter is written. */
struct queue_publish {
    const struct queue_entry *entry;
    const void *result; /* msgpack result */
    size_t result_len;
    const char *job_id; /* NULL when the message had no readable ID */
    enum queue_result_key key_mode;
    bool reply;              /* RPUSH reply:{id} (needs job_id) */
    const char *dead_reason; /* non-NULL: add to the dead-letter stream */
};

struct queue;

typedef void queue_event_cb(void *arg);
typedef void queue_done_cb(void *arg, int status);
/* `entries` (count of them) is handed to the callee, who frees it with
 * queue_entries_free(); NULL with count 0 on a timeout or failure. */
typedef void queue_read_cb(void *arg, int status, struct queue_entry *entries, size_t count);

/* A queue for `config` (copied). on_ready is called
 * when a connect finished its set-up; on_lost when a connect failed or an
 * established connection was lost. */
struct queue *queue_new(struct event_base *base, const struct queue_config *config,
                        queue_event_cb *on_ready, queue_event_cb *on_lost, void *arg);

/* Closes at once (pending callbacks get -1) and frees. */
void queue_free(struct queue *queue);

/* Starts connecting: AUTH, SELECT, then the consumer group on each stream
 * (XGROUP CREATE ... 0 MKSTREAM; an existing group is fine). */
int queue_connect(struct queue *queue) __attribute__((warn_unused_result));

/* Drops the connection at once; pending callbacks get -1; on_lost follows. */
void queue_disconnect(struct queue *queue);

bool queue_is_ready(const struct queue *queue);

/* The reason the last connection failed or was lost ("" if none). */
const char *queue_errstr(const struct queue *queue);

enum queue_read_mode {
    QUEUE_READ_NEW_BLOCKING, /* new entries (">"), waiting up to CREDITS_BLOCK_MS */
    QUEUE_READ_NEW,          /* new entries, answered at once (a prefetch) */
    QUEUE_READ_OWN_PENDING,  /* this consumer's pending entries after after_ids[] */
};

/* Reads up to count_max entries per stream. after_ids is used only with
 * QUEUE_READ_OWN_PENDING, which also fills each entry's delivery count. */
int queue_read(struct queue *queue, size_t count_max, enum queue_read_mode mode,
               const char *const after_ids[QUEUE_STREAM_COUNT], queue_read_cb *cb, void *arg)
    __attribute__((warn_unused_result));

void queue_entries_free(struct queue_entry *entries, size_t count);

/* Publishes results and dead letters, pipelined. Status 0 only when Redis
 * accepted every write. A dead letter is written once per entry: a publish
 * repeated (after a lost connection, or by the next worker after a crash
 * before the XACK) finds the entry's guard key ({prefix}:dead:seen:...,
 * set in the same script, living CREDITS_RESULT_TTL seconds) and adds
 * nothing. */
int queue_publish(struct queue *queue, const struct queue_publish *items, size_t count,
                  queue_done_cb *cb, void *arg) __attribute__((warn_unused_result));

/* One event to publish: its msgpack (codec_encode_event()), borrowed. */
struct queue_event {
    const void *event;
    size_t len;
};

/* XADDs the events to P:events (field `event`, MAXLEN ~ events_maxlen),
 * pipelined, in order. Status 0 only when Redis accepted every one. */
int queue_publish_events(struct queue *queue, const struct queue_event *events, size_t count,
                         queue_done_cb *cb, void *arg) __attribute__((warn_unused_result));

/* XACKs the entries (one XACK per stream). */
int queue_ack(struct queue *queue, const struct queue_entry *const *entries, size_t count,
              queue_done_cb *cb, void *arg) __attribute__((warn_unused_result));

/* Moves to this consumer the entries of other consumers idle for at least
 * min_idle_ms (XAUTOCLAIM ... JUSTID: their delivery counts do not change);
 * `claimed` is how many. They are then read as this consumer's own pending
 * entries. */
typedef void queue_claim_cb(void *arg, int status, int64_t claimed);
int queue_claim_idle(struct queue *queue, int64_t min_idle_ms, queue_claim_cb *cb, void *arg)
    __attribute__((warn_unused_result));

/* The oldest entry pending for this consumer, over the three streams. */
struct queue_oldest {
    bool found;
    enum job_stream stream;
    char id[QUEUE_ENTRY_ID_BYTES_MAX + 1];
    int64_t deliveries;
};

typedef void queue_oldest_cb(void *arg, int status, const struct queue_oldest *oldest);

/* Finds this consumer's oldest pending entry (XPENDING key group - + 1
 * consumer, per stream): it delivers nothing, so no delivery count
 * changes. `oldest` is borrowed for the callback. */
int queue_oldest_pending(struct queue *queue, queue_oldest_cb *cb, void *arg)
    __attribute__((warn_unused_result));

/* Reads one pending entry of this consumer by claiming it anew (XCLAIM to
 * itself): its delivery count goes up by one, and no other entry's does,
 * so that a count counts the attempts at this entry alone. The callback
 * gets 0 entries (it was deleted) or 1, whose deliveries is the count
 * after the claim. */
int queue_claim_entry(struct queue *queue, const struct queue_oldest *entry, queue_read_cb *cb,
                      void *arg) __attribute__((warn_unused_result));

/* The group's position on one stream (XPENDING summary, XINFO GROUPS). */
struct queue_pending {
    int64_t count;
    uint64_t oldest_ms; /* time part of the oldest pending entry's ID; 0 when none */
    /* Every entry before this ID is delivered and acknowledged: it may be
     * trimmed. "" when not known. */
    char trim_before[QUEUE_ENTRY_ID_BYTES_MAX + 1];
};

typedef void queue_pending_cb(void *arg, int status,
                              const struct queue_pending pending[QUEUE_STREAM_COUNT]);

/* Reads the group's position on the three streams (for metrics and trimming). */
int queue_pending_summary(struct queue *queue, queue_pending_cb *cb, void *arg)
    __attribute__((warn_unused_result));

/* Trims each job stream before pending[s].trim_before (XTRIM MINID ~): only
 * entries the group has acknowledged go. */
int queue_trim_acknowledged(struct queue *queue,
                            const struct queue_pending pending[QUEUE_STREAM_COUNT],
                            queue_done_cb *cb, void *arg) __attribute__((warn_unused_result));

/* The key of a job stream, e.g. "credits:jobs:consume". */
const char *queue_stream_key(const struct queue *queue, enum job_stream stream);

#endif
