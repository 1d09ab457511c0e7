/*
 * reply.h -- the replies the queue reads from Redis, turned into plain
 * structs without a network: XREADGROUP entries, XPENDING (the summary and
 * the delivery counts of its extended form), XINFO GROUPS, XAUTOCLAIM, error
 * replies, and stream entry IDs.
 *
 * Owns the shape of each of those replies: type and element count are
 * checked at every level before anything is read, and a reply that is not
 * what Redis 7 sends is a -1 with a reason, never an assertion. Does not own
 * the connection, the commands or what the queue does with a failure
 * (queue.c). Every function borrows the reply until it returns.
 */
#ifndef CREDITS_QUEUE_REPLY_H
#define CREDITS_QUEUE_REPLY_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/job.h"
#include "queue/queue.h"

/* Room for a reason: the command, what was wrong and where. */
#define REPLY_ERRSTR_BYTES 160

/* ---------------------------------------------------------------------------
 * Entry IDs and error replies
 * ------------------------------------------------------------------------- */

/* `len` bytes of `text` (no NUL needed) as "<ms>-<seq>": both decimal
 * digits only (no sign, no space), each at most UINT64_MAX, at most
 * QUEUE_ENTRY_ID_BYTES_MAX bytes in all. */
bool reply_entry_id_parse(const char *text, size_t len, uint64_t *ms, uint64_t *seq)
    __attribute__((warn_unused_result));

/* Replaces `id` by the smallest entry ID greater than it; by "" when `id`
 * is not an entry ID or none is greater. */
void reply_entry_id_next(char id[QUEUE_ENTRY_ID_BYTES_MAX + 1]);

/* Whether `reply` is an error reply; then errstr gets "Redis error: " and
 * its text (cut to fit). errstr is left alone otherwise. */
bool reply_is_error(const redisReply *reply, char *errstr, size_t errstr_len);

/* Whether `reply` is XGROUP CREATE's answer that the group exists already
 * (an error reply whose first word is BUSYGROUP). */
bool reply_is_busygroup(const redisReply *reply);

/* ---------------------------------------------------------------------------
 * The replies the queue reads
 * ------------------------------------------------------------------------- */

/*
 * XREADGROUP ... STREAMS key... id...: nil when a BLOCK timed out, else
 * [[key, [[id, [field, value, ...] | nil], ...]], ...] where key is one of
 * `keys` (the job streams by job type). A nil field list is an entry
 * deleted after its delivery (has_job false); so is an entry without a `job`
 * field; the first `job` field is taken.
 *
 * On 0, *entries holds *count entries in reply order (NULL when there are
 * none), deliveries 0; the caller frees them with queue_entries_free(). On
 * -1, *entries is NULL, *count 0 and errstr says why.
 */
int reply_read(const redisReply *reply, const char *const keys[QUEUE_STREAM_COUNT],
               struct queue_entry **entries, size_t *count, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/*
 * XPENDING key group start end count consumer:
 * [[id, consumer, idle_ms, deliveries], ...]. Sets the delivery count of
 * each of entries[0..count) read from `stream` whose ID is listed; leaves
 * the others alone. On -1 (errstr says why) no entry is changed.
 */
int reply_deliveries(const redisReply *reply, enum job_stream stream, struct queue_entry *entries,
                     size_t count, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/*
 * XPENDING key group - + 1 consumer: [] or [[id, consumer, idle_ms,
 * deliveries]]: the consumer's oldest pending entry of one stream. Returns
 * 1 with its ID and delivery count, 0 when there is none, -1 (errstr says
 * why) when the reply is not that.
 */
int reply_pending_oldest(const redisReply *reply, char id[QUEUE_ENTRY_ID_BYTES_MAX + 1],
                         int64_t *deliveries, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/*
 * XCLAIM key group consumer min-idle id: [[id, [field, value, ...]]], or []
 * when the entry was deleted (Redis 7 then drops it from the pending list;
 * 6.2 answers [nil]). As reply_read() for one stream: *entries holds *count
 * (0 or 1) entries, deliveries 0, for the caller to free.
 */
int reply_claimed(const redisReply *reply, enum job_stream stream, struct queue_entry **entries,
                  size_t *count, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/*
 * XINFO GROUPS key: [[name, value, name, value, ...], ...], one flat list of
 * pairs per group. Copies the last-delivered-id of `group` into
 * last_delivered; "" when `group` is not listed, and on -1 (errstr says why).
 */
int reply_groups_last_delivered(const redisReply *reply, const char *group,
                                char last_delivered[QUEUE_ENTRY_ID_BYTES_MAX + 1], char *errstr,
                                size_t errstr_len) __attribute__((warn_unused_result));

/*
 * XPENDING key group: [count, min-id, max-id, [[consumer, count], ...]],
 * with nils in place of the last three when count is 0. Sets
 * pending->count; when count > 0 also oldest_ms (min-id's time part) and
 * trim_before (min-id: a trim never goes past the oldest pending entry),
 * which are left alone when it is 0. On -1 (errstr says why) *pending is
 * unchanged.
 */
int reply_pending_summary(const redisReply *reply, struct queue_pending *pending, char *errstr,
                          size_t errstr_len) __attribute__((warn_unused_result));

/*
 * XAUTOCLAIM key group consumer min-idle start ... JUSTID:
 * [next-cursor, [claimed-id, ...], [deleted-id, ...]] (Redis 7; 6.2 sends
 * the first two). *claimed is how many IDs were claimed. On -1 (errstr says
 * why) *claimed is unchanged.
 */
int reply_claim(const redisReply *reply, int64_t *claimed, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

#endif
