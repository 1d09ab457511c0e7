/*
 * keys.h -- every Redis key name of the contract (sections 1 and 9.8),
 * built from the prefix: the one place that spells them, for the daemon
 * (queue.c) and for creditsctl alike.
 *
 * Owns the names only; pure (no I/O). A prefix is at most
 * KEYS_PREFIX_BYTES_MAX bytes (the settings enforce it), so every key fits
 * in KEYS_BYTES_MAX.
 */
#ifndef CREDITS_QUEUE_KEYS_H
#define CREDITS_QUEUE_KEYS_H

#include <stddef.h>

#include "core/job.h"

#define KEYS_PREFIX_BYTES_MAX 64
/* "{prefix}:result:{id}": the longest key ("{prefix}:dead:seen:purchase:"
 * and an entry ID, at most 47 bytes, are shorter). */
#define KEYS_BYTES_MAX 256
_Static_assert(KEYS_PREFIX_BYTES_MAX + sizeof ":result:" + JOB_ID_BYTES_MAX < KEYS_BYTES_MAX,
               "every key fits");

/* Each writes the key into `out` (`out_len` >= KEYS_BYTES_MAX) and returns
 * its length. The prefix and the ID are borrowed until return. */
size_t keys_stream(const char *prefix, enum job_stream stream, char *out, size_t out_len);
size_t keys_result(const char *prefix, const char *job_id, char *out, size_t out_len);
size_t keys_reply(const char *prefix, const char *job_id, char *out, size_t out_len);
size_t keys_results(const char *prefix, char *out, size_t out_len);
size_t keys_events(const char *prefix, char *out, size_t out_len);
size_t keys_dead(const char *prefix, char *out, size_t out_len);
/* "{prefix}:dead:seen:{stream}:{entry}": the guard that keeps a dead letter
 * from being written twice for one entry of one job stream. */
size_t keys_dead_seen(const char *prefix, enum job_stream stream, const char *entry_id, char *out,
                      size_t out_len);

/* The stream whose key is `key` (len bytes) under `prefix`; false if none. */
bool keys_stream_parse(const char *prefix, const char *key, size_t len, enum job_stream *stream)
    __attribute__((warn_unused_result));

#endif
