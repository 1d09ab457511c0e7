/*
 * keys.c -- the Redis key names (keys.h).
 */
#include "queue/keys.h"

#include <stdio.h>
#include <string.h>

static size_t key_format(char *out, size_t out_len, const char *prefix, const char *kind,
                         const char *suffix)
{
    ASSERT(out != NULL && out_len >= KEYS_BYTES_MAX);
    ASSERT(prefix != NULL && strlen(prefix) <= KEYS_PREFIX_BYTES_MAX);
    ASSERT(suffix == NULL || strlen(suffix) <= JOB_ID_BYTES_MAX);
    int n = suffix ? snprintf(out, out_len, "%s:%s:%s", prefix, kind, suffix)
                   : snprintf(out, out_len, "%s:%s", prefix, kind);
    ASSERT(n > 0 && (size_t)n < out_len);
    return (size_t)n;
}

size_t keys_stream(const char *prefix, enum job_stream stream, char *out, size_t out_len)
{
    return key_format(out, out_len, prefix, "jobs", job_stream_name(stream));
}

size_t keys_result(const char *prefix, const char *job_id, char *out, size_t out_len)
{
    ASSERT(job_id != NULL);
    return key_format(out, out_len, prefix, "result", job_id);
}

size_t keys_reply(const char *prefix, const char *job_id, char *out, size_t out_len)
{
    ASSERT(job_id != NULL);
    return key_format(out, out_len, prefix, "reply", job_id);
}

size_t keys_results(const char *prefix, char *out, size_t out_len)
{
    return key_format(out, out_len, prefix, "results", NULL);
}

size_t keys_events(const char *prefix, char *out, size_t out_len)
{
    return key_format(out, out_len, prefix, "events", NULL);
}

size_t keys_dead(const char *prefix, char *out, size_t out_len)
{
    return key_format(out, out_len, prefix, "dead", NULL);
}

size_t keys_dead_seen(const char *prefix, enum job_stream stream, const char *entry_id, char *out,
                      size_t out_len)
{
    ASSERT(entry_id != NULL && strlen(entry_id) <= 47);
    char suffix[JOB_ID_BYTES_MAX + 1];
    int n = snprintf(suffix, sizeof suffix, "seen:%s:%s", job_stream_name(stream), entry_id);
    ASSERT(n > 0 && (size_t)n < sizeof suffix);
    return key_format(out, out_len, prefix, "dead", suffix);
}

bool keys_stream_parse(const char *prefix, const char *key, size_t len, enum job_stream *stream)
{
    ASSERT(key != NULL || len == 0);
    ASSERT(stream != NULL);
    for (unsigned s = 0; s < JOB_STREAM_COUNT; s++) {
        char candidate[KEYS_BYTES_MAX];
        size_t n = keys_stream(prefix, (enum job_stream)s, candidate, sizeof candidate);
        if (n == len && memcmp(candidate, key, len) == 0) {
            *stream = (enum job_stream)s;
            return true;
        }
    }
    return false;
}
