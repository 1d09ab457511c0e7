/*
 * job.h -- the job and result types of contract v1, their limits and names.
 *
 * Owns the in-memory shape of a job and of a result. Does not own their wire
 * encoding (codec.h) or the rules that decide them (ledger.h, batch.h).
 */
#ifndef CREDITS_CORE_JOB_H
#define CREDITS_CORE_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/assert.h"

#define JOB_VERSION 1

/* Limits of contract section 2. Each string buffer below has room for the
 * limit plus a terminating NUL (strings are NUL-free by validation). */
#define JOB_BYTES_MAX 4096
#define JOB_ID_BYTES_MAX 128
#define JOB_USER_BYTES_MAX 128
#define JOB_TOOL_BYTES_MAX 64
#define JOB_REF_BYTES_MAX 128
#define JOB_PACK_BYTES_MAX 64
#define JOB_PAYMENT_REF_BYTES_MAX 128
#define JOB_PLAN_BYTES_MAX 64
#define JOB_PERIOD_BYTES 7 /* "YYYY-MM" */
#define JOB_AMOUNT_MIN 1
#define JOB_AMOUNT_MAX 1000000000
#define RESULT_MESSAGE_BYTES_MAX 200

enum job_type {
    JOB_CONSUME = 0,
    JOB_PURCHASE = 1,
    JOB_ALLOCATE = 2,
};
#define JOB_TYPE_COUNT 3

/* Error codes of contract section 3. JOB_OK means "applied". */
enum job_error {
    JOB_OK = 0,
    JOB_ERR_INVALID_JOB,
    JOB_ERR_UNSUPPORTED_VERSION,
    JOB_ERR_WRONG_STREAM,
    JOB_ERR_ID_CONFLICT,
    JOB_ERR_INSUFFICIENT_CREDITS,
    JOB_ERR_UNKNOWN_PACK,
    JOB_ERR_UNKNOWN_PLAN,
    JOB_ERR_DUPLICATE_PAYMENT,
    JOB_ERR_ALREADY_ALLOCATED,
    JOB_ERR_STALE_PERIOD,
};
#define JOB_ERROR_COUNT 11

/* A decoded, valid job. Every string is NUL-terminated and within its limit. */
struct job {
    enum job_type type;
    bool reply;
    char id[JOB_ID_BYTES_MAX + 1];
    char user[JOB_USER_BYTES_MAX + 1];
    /* consume */
    int64_t amount;
    bool has_tool;
    bool has_ref;
    char tool[JOB_TOOL_BYTES_MAX + 1];
    char ref[JOB_REF_BYTES_MAX + 1];
    /* purchase */
    char pack[JOB_PACK_BYTES_MAX + 1];
    char payment_ref[JOB_PAYMENT_REF_BYTES_MAX + 1];
    /* allocate */
    char plan[JOB_PLAN_BYTES_MAX + 1];
    char period[JOB_PERIOD_BYTES + 1];
};

/* The usable credits of a user, split by lot kind. total == pack + monthly. */
struct balance {
    int64_t total;
    int64_t pack;
    int64_t monthly;
};

/*
 * A decision about one message. Which optional fields are present follows
 * contract section 3 and is derived from type, status and error by the codec
 * (result_has_*() below); the flags here cover what cannot be derived.
 */
struct result {
    bool has_id; /* false when the message had no readable id */
    bool has_type;
    bool has_user;
    char id[JOB_ID_BYTES_MAX + 1];
    enum job_type type;
    char user[JOB_USER_BYTES_MAX + 1];
    enum job_error error;                       /* JOB_OK: status "applied" */
    char message[RESULT_MESSAGE_BYTES_MAX + 1]; /* "" when none */
    struct balance balance;
    int64_t charged;
    int64_t granted;
    int64_t forfeited;
    int64_t expires_at_ms;
    int64_t done_at_ms;
    bool replayed;
};

/* Names on the wire. job_type_name() and job_error_name() abort on a value
 * outside the enum; job_error_name(JOB_OK) is "" (no error). */
const char *job_type_name(enum job_type type);
const char *job_error_name(enum job_error error);

/* Parses a type name of `len` bytes (not NUL-terminated). */
bool job_type_parse(const char *name, size_t len, enum job_type *type)
    __attribute__((warn_unused_result));

/* Parses an error code name; used when reading stored results back. */
bool job_error_parse(const char *name, size_t len, enum job_error *error)
    __attribute__((warn_unused_result));

/* Stored rejections are decided against the ledger or catalog and kept with
 * the job ID forever; unstored ones are about the message itself. */
bool job_error_is_stored(enum job_error error);

/* The ID rule for `id` and `user`: 1..128 bytes, each 0x21..0x7E. */
bool job_id_is_valid(const char *bytes, size_t len);

/* "YYYY-MM" with month 01..12. */
bool job_period_is_valid(const char *bytes, size_t len);

/* Text kept in Postgres (tool, ref, pack, payment_ref, plan): valid UTF-8
 * with no NUL byte, so the database can never refuse it. */
bool job_text_is_valid(const char *bytes, size_t len);

/* Which optional result fields apply (contract section 3). */
bool result_has_balance(const struct result *r);
bool result_has_charged(const struct result *r);
bool result_has_granted(const struct result *r);
bool result_has_forfeited(const struct result *r);
bool result_has_expires_at(const struct result *r);

/* Starts a result for `job` with its id, type and user copied. */
void result_init_for_job(struct result *r, const struct job *job);

#endif
