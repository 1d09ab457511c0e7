/*
 * job.h -- the job and result types of the contract, their limits and names.
 *
 * Owns the in-memory shape of a job (a tagged union over the types listed in
 * core/types/types.h) and of a result, the wire names of streams and error
 * codes, and the byte rules of single fields. Does not own what each type
 * means (core/types/, job_type.h), the wire encoding (codec.h) or the rules
 * that decide jobs (ledger.h, batch.h).
 */
#ifndef CREDITS_CORE_JOB_H
#define CREDITS_CORE_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/assert.h"
#include "core/limits.h"
#include "core/types/types.h"

/* Counts an X-macro list: 0 X(...) X(...) ... -> 0 +1 +1 ... */
#define JOB_LIST_COUNT_ONE(...) +1

enum job_type {
#define JOB_TYPE_ENUM(value, name) value,
    JOB_TYPES(JOB_TYPE_ENUM)
#undef JOB_TYPE_ENUM
};
enum { JOB_TYPE_COUNT = 0 JOB_TYPES(JOB_LIST_COUNT_ONE) };

/* The job streams (contract sections 1 and 9.2). Each job type belongs to
 * exactly one (job_type.h); any other pairing is wrong_stream. */
#define JOB_STREAMS(X)                                                                             \
    X(JOB_STREAM_CONSUME, "consume")                                                               \
    X(JOB_STREAM_PURCHASE, "purchase")                                                             \
    X(JOB_STREAM_ALLOCATE, "allocate")

enum job_stream {
#define JOB_STREAM_ENUM(value, name) value,
    JOB_STREAMS(JOB_STREAM_ENUM)
#undef JOB_STREAM_ENUM
};
enum { JOB_STREAM_COUNT = 0 JOB_STREAMS(JOB_LIST_COUNT_ONE) };

/* Error codes (contract sections 3 and 9.4): X(value, wire name, stored).
 * Stored rejections are decided against the ledger or the catalog and kept
 * with the job ID forever; unstored ones are about the message itself.
 * JOB_OK means "applied": its name is "" (an applied result has no error). */
#define JOB_ERRORS(X)                                                                              \
    X(JOB_OK, "", false)                                                                           \
    X(JOB_ERR_INVALID_JOB, "invalid_job", false)                                                   \
    X(JOB_ERR_UNSUPPORTED_VERSION, "unsupported_version", false)                                   \
    X(JOB_ERR_WRONG_STREAM, "wrong_stream", false)                                                 \
    X(JOB_ERR_ID_CONFLICT, "id_conflict", false)                                                   \
    X(JOB_ERR_INSUFFICIENT_CREDITS, "insufficient_credits", true)                                  \
    X(JOB_ERR_UNKNOWN_PACK, "unknown_pack", true)                                                  \
    X(JOB_ERR_UNKNOWN_PLAN, "unknown_plan", true)                                                  \
    X(JOB_ERR_DUPLICATE_PAYMENT, "duplicate_payment", true)                                        \
    X(JOB_ERR_ALREADY_ALLOCATED, "already_allocated", true)                                        \
    X(JOB_ERR_STALE_PERIOD, "stale_period", true)                                                 \
    X(JOB_ERR_UNKNOWN_HOLD, "unknown_hold", true)                                                 \
    X(JOB_ERR_HOLD_CLOSED, "hold_closed", true)                                                   \
    X(JOB_ERR_HOLD_EXPIRED, "hold_expired", true)                                                 \
    X(JOB_ERR_CAPTURE_EXCEEDS_HOLD, "capture_exceeds_hold", true)                                 \
    X(JOB_ERR_UNKNOWN_CHARGE, "unknown_charge", true)                                             \
    X(JOB_ERR_REFUND_EXCEEDS_CHARGE, "refund_exceeds_charge", true)                               \
    X(JOB_ERR_UNKNOWN_PAYMENT, "unknown_payment", true)                                           \
    X(JOB_ERR_ALREADY_REVOKED, "already_revoked", true)                                           \
    X(JOB_ERR_NO_PLAN, "no_plan", true)

enum job_error {
#define JOB_ERROR_ENUM(value, name, stored) value,
    JOB_ERRORS(JOB_ERROR_ENUM)
#undef JOB_ERROR_ENUM
};
enum { JOB_ERROR_COUNT = 0 JOB_ERRORS(JOB_LIST_COUNT_ONE) };

/* A decoded, valid job: the common fields, then the fields of its type in
 * the member named after it (job->consume.amount). Every string is
 * NUL-terminated and within its limit. */
struct job {
    enum job_type type;
    bool reply;
    char id[JOB_ID_BYTES_MAX + 1];
    char user[JOB_USER_BYTES_MAX + 1];
    union {
#define JOB_TYPE_MEMBER(value, name) struct job_##name name;
        JOB_TYPES(JOB_TYPE_MEMBER)
#undef JOB_TYPE_MEMBER
    };
};

/* The usable credits of a user, split by lot kind: total == pack + monthly
 * + grant. `held` counts the credits in open holds, not part of total. */
struct balance {
    int64_t total;
    int64_t pack;
    int64_t monthly;
    int64_t grant;
    int64_t held;
};

/* The amounts a result may carry besides its balance (contract sections 3
 * and 9.5), X(value, wire key), in the order they are encoded. Which ones an
 * applied result of each type carries is the type's (job_type.h). */
#define RESULT_AMOUNTS(X)                                                                          \
    X(RESULT_CHARGED, "charged")                                                                   \
    X(RESULT_GRANTED, "granted")                                                                   \
    X(RESULT_FORFEITED, "forfeited")                                                               \
    X(RESULT_EXPIRES_AT, "expires_at")                                                             \
    X(RESULT_HELD, "held")                                                                         \
    X(RESULT_HOLD_EXPIRES_AT, "hold_expires_at")                                                   \
    X(RESULT_RELEASED, "released")                                                                 \
    X(RESULT_REFUNDED, "refunded")                                                                 \
    X(RESULT_REVOKED, "revoked")

enum result_amount {
#define RESULT_AMOUNT_ENUM(value, key) value,
    RESULT_AMOUNTS(RESULT_AMOUNT_ENUM)
#undef RESULT_AMOUNT_ENUM
};
enum { RESULT_AMOUNT_COUNT = 0 RESULT_AMOUNTS(JOB_LIST_COUNT_ONE) };
_Static_assert(RESULT_AMOUNT_COUNT <= 32, "result.amounts_present has a bit for each amount");

#define RESULT_AMOUNT_BIT(amount) (UINT32_C(1) << (amount))

/* A decision about one message (contract section 3). */
struct result {
    bool has_id; /* false when the message had no readable id */
    bool has_type;
    bool has_user;
    char id[JOB_ID_BYTES_MAX + 1];
    enum job_type type;
    char user[JOB_USER_BYTES_MAX + 1];
    enum job_error error;                       /* JOB_OK: status "applied" */
    char message[RESULT_MESSAGE_BYTES_MAX + 1]; /* "" when none */
    struct balance balance;                     /* sent when result_has_balance() */
    uint32_t amounts_present;                   /* RESULT_AMOUNT_BIT()s */
    int64_t amounts[RESULT_AMOUNT_COUNT];       /* expires_at, hold_expires_at: Unix ms */
    int64_t done_at_ms;
    bool replayed;
};

/* Names on the wire. Each aborts on a value outside its enum;
 * job_error_name(JOB_OK) is "" (no error). */
const char *job_type_name(enum job_type type);
const char *job_stream_name(enum job_stream stream);
const char *job_error_name(enum job_error error);
const char *result_amount_key(enum result_amount amount);

/* Parses a type name of `len` bytes (not NUL-terminated). */
bool job_type_parse(const char *name, size_t len, enum job_type *type)
    __attribute__((warn_unused_result));

/* Parses an error code name; used when reading stored results back. */
bool job_error_parse(const char *name, size_t len, enum job_error *error)
    __attribute__((warn_unused_result));

/* Whether a rejection with `error` is stored (see JOB_ERRORS). */
bool job_error_is_stored(enum job_error error);

/* The ID rule for `id` and `user`: 1..128 bytes, each 0x21..0x7E. */
bool job_id_is_valid(const char *bytes, size_t len);

/* "YYYY-MM" with month 01..12. */
bool job_period_is_valid(const char *bytes, size_t len);

/* Text kept in Postgres (tool, ref, pack, payment_ref, plan): valid UTF-8
 * with no NUL byte, so the database can never refuse it. */
bool job_text_is_valid(const char *bytes, size_t len);

/* The balance goes with every applied result and with insufficient_credits. */
bool result_has_balance(const struct result *r);

/* The amounts the result carries on the wire: those set that its type
 * carries when applied (job_type.h); none for a rejection. */
uint32_t result_amounts_carried(const struct result *r);

/* Sets or reads one amount of a result; result_amount() asserts presence. */
void result_set_amount(struct result *r, enum result_amount amount, int64_t value);
bool result_has_amount(const struct result *r, enum result_amount amount);
int64_t result_amount(const struct result *r, enum result_amount amount);

/* Starts a result for `job` with its id, type and user copied. */
void result_init_for_job(struct result *r, const struct job *job);

#endif
