/*
 * job_type.h -- the table of job types: what each type is, in one place.
 *
 * Owns the shape of a type's description (struct job_type_ops): its name and
 * stream, its fields and their rules (from which the codec decodes, encodes
 * and builds the request bytes compared for id_conflict, and creditsctl
 * builds its flags and prints jobs), what it needs loaded from the database,
 * its ledger rule and its result amounts. Each type fills one in its own
 * file under core/types/; job_type.c holds the table. Does not own the wire
 * format (codec.c) or the ledger toolkit (ledger.h).
 */
#ifndef CREDITS_CORE_JOB_TYPE_H
#define CREDITS_CORE_JOB_TYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/job.h"
#include "core/ledger.h"

/* ---------------------------------------------------------------------------
 * Fields
 * ------------------------------------------------------------------------- */

enum job_field_kind {
    JOB_FIELD_INT,  /* int64_t; msgpack int */
    JOB_FIELD_STR,  /* char[size]; msgpack str */
    JOB_FIELD_BOOL, /* bool; msgpack bool */
};

/* The byte rule of a str field. */
enum job_str_rule {
    JOB_STR_ID,     /* the ID rule: printable ASCII 0x21..0x7e (job_id_is_valid) */
    JOB_STR_TEXT,   /* UTF-8 without NUL (job_text_is_valid) */
    JOB_STR_PERIOD, /* YYYY-MM (job_period_is_valid) */
};

/* One field of a job type, as the contract's tables give it. */
struct job_field {
    const char *name; /* the msgpack key, and creditsctl's flag (with '-' for '_') */
    enum job_field_kind kind;
    bool optional;         /* absent is allowed; `present_offset` says which */
    size_t offset;         /* of the value in struct job */
    size_t present_offset; /* optional fields: of their bool "present" flag */
    size_t size;           /* str: the buffer's bytes (max + 1, asserted) */
    int64_t min;           /* int: the smallest value; str: the fewest bytes */
    int64_t max;           /* int: the largest value; str: the most bytes */
    enum job_str_rule rule;
    const char *help; /* for people: what the field means */
};

/* Field table rows: `type` is the union member (consume), `f` the field;
 * an optional field `f` has its "present" flag in `has_f`. */
#define JOB_FIELD_INT(type, f, lo, hi, text)                                                       \
    {                                                                                              \
        .name = #f, .kind = JOB_FIELD_INT, .offset = offsetof(struct job, type.f), .min = (lo),    \
        .max = (hi), .help = (text)                                                                \
    }
#define JOB_FIELD_INT_OPTIONAL(type, f, lo, hi, text)                                              \
    {                                                                                              \
        .name = #f, .kind = JOB_FIELD_INT, .optional = true,                                       \
        .offset = offsetof(struct job, type.f),                                                    \
        .present_offset = offsetof(struct job, type.has_##f), .min = (lo), .max = (hi),            \
        .help = (text)                                                                             \
    }
#define JOB_FIELD_STR(type, f, rule_, lo, hi, text)                                                \
    {                                                                                              \
        .name = #f, .kind = JOB_FIELD_STR, .offset = offsetof(struct job, type.f),                 \
        .size = sizeof(((struct job *)0)->type.f), .min = (lo), .max = (hi), .rule = (rule_),      \
        .help = (text)                                                                             \
    }
#define JOB_FIELD_STR_OPTIONAL(type, f, rule_, lo, hi, text)                                       \
    {                                                                                              \
        .name = #f, .kind = JOB_FIELD_STR, .optional = true,                                       \
        .offset = offsetof(struct job, type.f),                                                    \
        .present_offset = offsetof(struct job, type.has_##f),                                      \
        .size = sizeof(((struct job *)0)->type.f), .min = (lo), .max = (hi), .rule = (rule_),      \
        .help = (text)                                                                             \
    }
#define JOB_FIELD_BOOL_OPTIONAL(type, f, text)                                                     \
    {                                                                                              \
        .name = #f, .kind = JOB_FIELD_BOOL, .optional = true,                                      \
        .offset = offsetof(struct job, type.f),                                                    \
        .present_offset = offsetof(struct job, type.has_##f), .min = 0, .max = 1, .help = (text)   \
    }

/* The most fields one type has (a bound for callers' arrays). */
#define JOB_FIELDS_MAX 6

/* Reading and writing a field of `job` through its descriptor. The getters
 * assert the kind; job_field_present() is true for a required field. */
bool job_field_present(const struct job *job, const struct job_field *field);
int64_t job_field_int(const struct job *job, const struct job_field *field);
const char *job_field_str(const struct job *job, const struct job_field *field);
bool job_field_bool(const struct job *job, const struct job_field *field);

/* Checks a value against the field's rule (range, length, bytes). */
bool job_field_int_is_valid(const struct job_field *field, int64_t value);
bool job_field_str_is_valid(const struct job_field *field, const char *bytes, size_t len);

/* Sets a value (already checked) and marks an optional field present. */
void job_field_set_int(struct job *job, const struct job_field *field, int64_t value);
void job_field_set_str(struct job *job, const struct job_field *field, const char *bytes,
                       size_t len);
void job_field_set_bool(struct job *job, const struct job_field *field, bool value);

/* What a valid value looks like, for messages: "an integer from 1 to
 * 1000000000", "a UTF-8 string of at most 64 bytes without NUL", ... */
void job_field_expected(const struct job_field *field, char *out, size_t out_len);

/* The rejection message of a value that breaks the field's rule: "field
 * 'amount' must be an integer from 1 to 1000000000". */
void job_field_rule_message(const struct job_field *field, char *out, size_t out_len);

/* ---------------------------------------------------------------------------
 * Needs: what a job asks the store to load before it is decided
 * ------------------------------------------------------------------------- */

/* A kind of key looked up for a batch; the store has one query per kind. */
enum job_need {
    NEED_PACK,        /* the catalog row of a pack */
    NEED_PLAN,        /* the catalog row of a plan */
    NEED_PAYMENT_REF, /* the pack lot a payment reference granted, if any */
    NEED_HOLD,        /* a hold, with what its lots hold for it */
    NEED_CHARGE,      /* an applied consume or capture, with what is refundable */
};
enum { JOB_NEED_COUNT = NEED_CHARGE + 1 };

struct job_needs {
    const char *key[JOB_NEED_COUNT]; /* borrowed from the job; NULL: not needed */
    size_t new_lots;                 /* lots the job may create (IDs reserved) */
    /* The spent monthly lots of the user from this period on (allocate's
     * rules look at the periods held); NULL: none. */
    const char *monthly_from_period;
};

/* ---------------------------------------------------------------------------
 * The type
 * ------------------------------------------------------------------------- */

struct job_type_ops {
    enum job_type type;
    const char *name; /* on the wire */
    enum job_stream stream;
    const char *summary; /* one line for people (creditsctl's help) */
    const struct job_field *fields;
    size_t field_count;
    /* Fills `needs` (zeroed by the caller) for `job`. */
    void (*needs)(const struct job *job, struct job_needs *needs);
    ledger_rule_fn *apply;
    /* The amounts an applied result always carries, and those it may carry
     * (RESULT_AMOUNT_BIT()s). A rejection carries none. */
    uint32_t result_amounts;
    uint32_t result_amounts_optional;
};

/* Each type's description, defined in its file under core/types/. */
#define JOB_TYPE_DECLARE(value, name) extern const struct job_type_ops job_type_##name;
JOB_TYPES(JOB_TYPE_DECLARE)
#undef JOB_TYPE_DECLARE

/* The type's description; aborts on a value outside the enum. */
const struct job_type_ops *job_type_ops(enum job_type type);

/* The field of `type` named `name` (len bytes), or NULL. */
const struct job_field *job_type_field(enum job_type type, const char *name, size_t len);

/* "consume, purchase, allocate": every type's name, for messages. */
void job_type_names_list(char *out, size_t out_len);

#endif
