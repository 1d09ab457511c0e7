/*
 * deadletters.h -- the dead-letter stream {prefix}:dead (contract sections
 * 7 and 9.9): `creditsctl dead list|show|retry|drop`, and the functions
 * behind them that the console uses too.
 *
 * Owns reading dead letters (decoding their `job` bytes with the worker's
 * codec where possible), re-enqueueing one, or every one whose reason
 * starts with a text, on its job stream, and deleting one. Blocking
 * hiredis; no Postgres. The functions below print nothing: a failure is a
 * sentence in errstr.
 */
#ifndef CREDITS_WORKER_CTL_DEADLETTERS_H
#define CREDITS_WORKER_CTL_DEADLETTERS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/job.h"
#include "worker/ctl/ctl.h"
#include "worker/ctl/json_out.h"

#define DEAD_LIST_LIMIT_DEFAULT 50
#define DEAD_LIST_LIMIT_MAX 1000
/* A stream entry ID: "ms-seq", each part at most 20 digits. */
#define DEAD_ID_BYTES 48
/* Letters read per XRANGE while retrying many. */
#define DEAD_RETRY_PAGE_LETTERS 100

extern const struct command dead_command;

/* One field of a dead letter, borrowed from the Redis reply. */
struct dead_field {
    const char *bytes;
    size_t len;
    bool present;
};

/* One dead letter, borrowing from the reply it was parsed from. */
struct dead_letter {
    char id[DEAD_ID_BYTES];
    struct dead_field stream; /* the full key the message came from */
    struct dead_field entry;  /* its entry ID there */
    struct dead_field reason;
    struct dead_field job;        /* at most the first 4096 bytes of the original */
    struct dead_field job_bytes;  /* the original's length (absent in older letters) */
    struct dead_field job_sha256; /* lowercase hex of the original */
};

/* A re-enqueued letter: where its job went. */
struct dead_retried {
    char stream[CTL_KEY_BYTES];        /* the job stream's key */
    char entry[CTL_KEY_BYTES];         /* the new entry's ID there */
    char job_id[JOB_ID_BYTES_MAX + 1]; /* "" when the bytes are no valid job */
};

/* "ms" or "ms-seq", each part 1 to 20 digits. */
bool dead_entry_id_is_valid(const char *s);

/* One entry of an XRANGE reply ([id, [field, value, ...]]) into *d, which
 * borrows from `entry`. false when it is not one. */
bool dead_letter_parse(const redisReply *entry, struct dead_letter *d);

/* Writes the letter as an object under `key` (NULL in an array): id,
 * stream, entry, reason, job_bytes, job_kept_bytes, job_cut, job_sha256,
 * job_hex (the first `hex_max` bytes), then the job decoded with the
 * worker's rules (`job`, its fields in its type's order) or why not
 * (`job_error`, `job_message`). */
void dead_letter_json(struct json *j, const char *key, const struct dead_letter *d, size_t hex_max);

/* XRANGE (or XREVRANGE when newest_first) of {prefix}:dead from `first` to
 * `last` (in the command's own order; "(" excludes), at most `count`
 * letters. The reply (caller frees with freeReplyObject()), or NULL with
 * errstr. */
redisReply *dead_read_range(redisContext *redis, const char *prefix, bool newest_first,
                            const char *first, const char *last, int64_t count, char *errstr,
                            size_t errstr_len) __attribute__((warn_unused_result));

/* The letter `id` (a valid entry ID): 0 with *reply (caller frees) and *d
 * borrowing from it; -1 with errstr ("no dead letter ...") otherwise. */
int dead_read_one(redisContext *redis, const char *prefix, const char *id, redisReply **reply,
                  struct dead_letter *d, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* XLEN of {prefix}:dead into *total. 0 or -1. */
int dead_count(redisContext *redis, const char *prefix, long long *total, char *errstr,
               size_t errstr_len) __attribute__((warn_unused_result));

/*
 * Re-enqueues the letter's job on the job stream it came from and deletes
 * the letter, atomically (one script in Redis). Refused (-1, errstr says
 * why) when it came from no job stream of `prefix`, holds no job or only
 * the first bytes of a longer one, and, unless `force`, when the worker
 * would reject its bytes again (not a valid job, a job of another stream).
 * 0 with *retried filled.
 */
int dead_retry(redisContext *redis, const char *prefix, const struct dead_letter *d, bool force,
               struct dead_retried *retried, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* XDEL of the letter `id` (a valid entry ID). 0, or -1 with errstr ("no
 * dead letter ..." when there is none). */
int dead_drop(redisContext *redis, const char *prefix, const char *id, char *errstr,
              size_t errstr_len) __attribute__((warn_unused_result));

/* Called for each letter a many-letter retry tried: `retried` NULL and
 * `why` set when it was refused. Everything is borrowed until return.
 * Returns false to stop the run there. */
typedef bool dead_retry_each_fn(void *arg, const struct dead_letter *d,
                                const struct dead_retried *retried, const char *why);

/*
 * dead_retry() of every letter whose reason starts with `reason` (NULL:
 * every letter), oldest first, up to the newest one when the run started
 * (letters added meanwhile, a retried job refused again, are left for the
 * next run). counts[0] the letters retried, counts[1] those refused; each()
 * is called for every one, and may stop the run. 0, or -1 with errstr when
 * Redis failed (the counts say how far it got).
 */
int dead_retry_matching(redisContext *redis, const char *prefix, const char *reason, bool force,
                        dead_retry_each_fn *each, void *arg, long long counts[2], char *errstr,
                        size_t errstr_len) __attribute__((warn_unused_result));

#endif
