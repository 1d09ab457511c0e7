/*
 * codec.h -- msgpack wire format of jobs, results (contract sections 2, 3) and
 * events (9.8).
 *
 * Owns encoding and decoding. Decoding reads untrusted bytes with a bounded
 * reader of its own: it allocates nothing, so no declared container size can
 * make it reserve memory (msgpack-c's unpacker allocates declared sizes up
 * front). Encoding uses msgpack-c's packer.
 */
#ifndef CREDITS_CORE_CODEC_H
#define CREDITS_CORE_CODEC_H

#include <msgpack.h>
#include <stddef.h>

#include "core/event.h"
#include "core/job.h"

/*
 * Decodes and validates one job from `len` untrusted bytes (any bytes, any
 * length; borrowed until return). Returns JOB_OK and fills `job`, or returns
 * JOB_ERR_INVALID_JOB or JOB_ERR_UNSUPPORTED_VERSION and fills `reject`
 * with that error, a message naming the problem, and the id, type and user
 * that were readable (has_id/has_type/has_user), done_at_ms left 0. On a
 * rejection `job` is zeroed except job->reply, set when `reply` was a
 * readable bool: the caller can still answer a producer waiting for it.
 */
enum job_error codec_decode_job(const void *buf, size_t len, struct job *job, struct result *reject)
    __attribute__((warn_unused_result));

/*
 * The id, type and user of a job, best-effort, from `len` bytes that may
 * break any rule (any length, the first bytes of a longer job, a key twice,
 * a bad entry after the `id`; borrowed until return), so that a producer
 * waiting on a rejected job still gets its result (contract 9.9). The
 * entries of the top map are read in order until the bytes end or stop
 * being msgpack; a key read once whose value passes its rule is readable,
 * and so is one read several times with the same value bytes. Sets has_id,
 * id, has_type, type, has_user and user of `identity` (nothing else) and
 * *reply from a readable `reply`. Allocates nothing.
 */
void codec_decode_identity(const void *buf, size_t len, struct result *identity, bool *reply);

/* Appends the msgpack job (as a producer sends it) to `out`. 0 or -1. */
int codec_encode_job(const struct job *job, msgpack_sbuffer *out)
    __attribute__((warn_unused_result));

/* Appends the canonical encoding of the fields compared for id_conflict
 * (type, user, amount, tool, ref, pack, payment_ref, plan, period): two jobs
 * are "the same job" exactly when these bytes are equal. 0 or -1. */
int codec_encode_request(const struct job *job, msgpack_sbuffer *out)
    __attribute__((warn_unused_result));

/* Appends the msgpack result to `out`. 0 or -1. */
int codec_encode_result(const struct result *result, msgpack_sbuffer *out)
    __attribute__((warn_unused_result));

/* The credits.jobs row of a lot the sweep wrote off (contract 9.7): its
 * result ({v, id, type "expire", user, status applied, balance, expired,
 * done_at, replayed}) and its canonical request, appended to `result` and
 * `request`. It is never published: an `expire:` ID is the worker's own.
 * 0 or -1. */
int codec_encode_expiry(const char *id, const char *user, int64_t lot_id, int64_t credits,
                        const struct balance *balance, int64_t done_at_ms, msgpack_sbuffer *result,
                        msgpack_sbuffer *request) __attribute__((warn_unused_result));

/* Appends the msgpack event (contract 9.8: v, event_id, type, user, at,
 * balance, job, then its type's keys) to `out`; the event is stored (its
 * event_id set). 0 or -1. */
int codec_encode_event(const struct event *event, msgpack_sbuffer *out)
    __attribute__((warn_unused_result));

/* Decodes an event (as encoded above; keys it does not know are ignored).
 * 0, or -1 when the bytes are not one. */
int codec_decode_event(const void *buf, size_t len, struct event *event)
    __attribute__((warn_unused_result));

/* Decodes a result (as encoded above). 0, or -1 when the bytes are not one. */
int codec_decode_result(const void *buf, size_t len, struct result *result)
    __attribute__((warn_unused_result));

#endif
