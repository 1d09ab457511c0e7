/*
 * job.c -- names of types, streams, error codes and result amounts, the byte
 * rules of IDs, periods and stored text, and the result helpers.
 *
 * Owns the wire names and byte-level rules. Does not read or write msgpack
 * (codec.c) or know what a type's fields are (job_type.c, core/types/).
 */
#include "core/job.h"

#include <string.h>

#include "core/job_type.h"

static const char *const job_stream_names[JOB_STREAM_COUNT] = {
#define JOB_STREAM_NAME(value, name) [value] = name,
    JOB_STREAMS(JOB_STREAM_NAME)
#undef JOB_STREAM_NAME
};

static const char *const job_error_names[JOB_ERROR_COUNT] = {
#define JOB_ERROR_NAME(value, name, stored) [value] = name,
    JOB_ERRORS(JOB_ERROR_NAME)
#undef JOB_ERROR_NAME
};

static const bool job_error_stored[JOB_ERROR_COUNT] = {
#define JOB_ERROR_STORED(value, name, stored) [value] = stored,
    JOB_ERRORS(JOB_ERROR_STORED)
#undef JOB_ERROR_STORED
};

static const char *const result_amount_keys[RESULT_AMOUNT_COUNT] = {
#define RESULT_AMOUNT_KEY(value, key) [value] = key,
    RESULT_AMOUNTS(RESULT_AMOUNT_KEY)
#undef RESULT_AMOUNT_KEY
};

/* Enums are compared as unsigned so that a negative garbage value fails the
 * bound check instead of indexing before a table. */
#define JOB_TYPE_IN_RANGE(type) ((unsigned)(type) < JOB_TYPE_COUNT)
#define JOB_ERROR_IN_RANGE(error) ((unsigned)(error) < JOB_ERROR_COUNT)

const char *job_type_name(enum job_type type)
{
    ASSERT(JOB_TYPE_IN_RANGE(type));
    const char *name = job_type_ops(type)->name;
    ASSERT(name != NULL && name[0] != '\0');
    return name;
}

const char *job_stream_name(enum job_stream stream)
{
    ASSERT((unsigned)stream < JOB_STREAM_COUNT);
    const char *name = job_stream_names[stream];
    ASSERT(name != NULL);
    return name;
}

const char *job_error_name(enum job_error error)
{
    ASSERT(JOB_ERROR_IN_RANGE(error));
    const char *name = job_error_names[error];
    ASSERT(name != NULL);
    return name;
}

const char *result_amount_key(enum result_amount amount)
{
    ASSERT((unsigned)amount < RESULT_AMOUNT_COUNT);
    const char *key = result_amount_keys[amount];
    ASSERT(key != NULL);
    return key;
}

static bool name_equals(const char *name, size_t len, const char *expected)
{
    ASSERT(expected != NULL);
    size_t expected_len = strlen(expected);
    return len == expected_len && memcmp(name, expected, len) == 0;
}

bool job_type_parse(const char *name, size_t len, enum job_type *type)
{
    ASSERT(name != NULL || len == 0);
    ASSERT(type != NULL);
    for (unsigned i = 0; i < JOB_TYPE_COUNT; i++) {
        if (name_equals(name, len, job_type_name((enum job_type)i))) {
            *type = (enum job_type)i;
            return true;
        }
    }
    return false;
}

/* Only the codes that travel on the wire parse: "" (JOB_OK's name) does
 * not, because an applied result carries no `error` key at all. */
bool job_error_parse(const char *name, size_t len, enum job_error *error)
{
    ASSERT(name != NULL || len == 0);
    ASSERT(error != NULL);
    for (unsigned i = JOB_ERR_INVALID_JOB; i < JOB_ERROR_COUNT; i++) {
        if (name_equals(name, len, job_error_names[i])) {
            *error = (enum job_error)i;
            return true;
        }
    }
    return false;
}

/* JOB_OK is not a rejection, so it is not a "stored rejection": false. (An
 * applied result is stored too; callers that decide what to store test
 * `error == JOB_OK || job_error_is_stored(error)`.) */
bool job_error_is_stored(enum job_error error)
{
    ASSERT(JOB_ERROR_IN_RANGE(error));
    ASSERT(!job_error_stored[JOB_OK]);
    return job_error_stored[error];
}

bool job_id_is_valid(const char *bytes, size_t len)
{
    _Static_assert(JOB_ID_BYTES_MAX == JOB_USER_BYTES_MAX, "id and user share one rule");
    if (len == 0 || len > JOB_ID_BYTES_MAX)
        return false;
    ASSERT(bytes != NULL);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)bytes[i];
        if (c < 0x21 || c > 0x7E)
            return false;
    }
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool job_period_is_valid(const char *bytes, size_t len)
{
    _Static_assert(JOB_PERIOD_BYTES == sizeof "YYYY-MM" - 1, "the rule reads YYYY-MM");
    if (len != JOB_PERIOD_BYTES)
        return false;
    ASSERT(bytes != NULL);
    for (size_t i = 0; i < 4; i++) {
        if (!is_digit(bytes[i]))
            return false;
    }
    if (bytes[4] != '-' || !is_digit(bytes[5]) || !is_digit(bytes[6]))
        return false;
    int month = (bytes[5] - '0') * 10 + (bytes[6] - '0');
    ASSERT(month >= 0 && month <= 99);
    return month >= 1 && month <= 12;
}

static bool is_continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/*
 * The length of the well-formed UTF-8 sequence at `s` (`left` bytes
 * available, at least 1), or 0 when there is none. The second byte's range
 * depends on the lead byte (RFC 3629, table 3-7 of Unicode): that is what
 * excludes overlong forms, the surrogates D800..DFFF and code points above
 * U+10FFFF.
 */
static size_t utf8_sequence_len(const unsigned char *s, size_t left)
{
    ASSERT(left > 0);
    unsigned char lead = s[0];
    if (lead < 0x80)
        return 1;
    size_t len;
    unsigned char second_min = 0x80, second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        len = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        len = 3;
        if (lead == 0xE0)
            second_min = 0xA0; /* below: overlong */
        if (lead == 0xED)
            second_max = 0x9F; /* above: surrogates */
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        len = 4;
        if (lead == 0xF0)
            second_min = 0x90; /* below: overlong */
        if (lead == 0xF4)
            second_max = 0x8F; /* above: beyond U+10FFFF */
    } else {
        return 0; /* 0x80..0xC1 (continuation or overlong lead), 0xF5..0xFF */
    }
    ASSERT(len >= 2 && len <= 4);
    ASSERT(second_min <= second_max);
    if (left < len || s[1] < second_min || s[1] > second_max)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (!is_continuation(s[i]))
            return 0;
    }
    return len;
}

bool job_text_is_valid(const char *bytes, size_t len)
{
    ASSERT(bytes != NULL || len == 0);
    const unsigned char *s = (const unsigned char *)bytes;
    size_t off = 0;
    while (off < len) {
        if (s[off] == 0)
            return false;
        size_t n = utf8_sequence_len(s + off, len - off);
        if (n == 0)
            return false;
        ASSERT(n <= len - off);
        off += n;
    }
    ASSERT(off == len);
    return true;
}

bool result_has_balance(const struct result *r)
{
    ASSERT(r != NULL);
    ASSERT(JOB_ERROR_IN_RANGE(r->error));
    return r->has_type && (r->error == JOB_OK || r->error == JOB_ERR_INSUFFICIENT_CREDITS);
}

uint32_t result_amounts_carried(const struct result *r)
{
    ASSERT(r != NULL);
    if (!r->has_type || r->error != JOB_OK)
        return 0;
    const struct job_type_ops *ops = job_type_ops(r->type);
    return r->amounts_present & (ops->result_amounts | ops->result_amounts_optional);
}

void result_set_amount(struct result *r, enum result_amount amount, int64_t value)
{
    ASSERT(r != NULL);
    ASSERT((unsigned)amount < RESULT_AMOUNT_COUNT);
    r->amounts[amount] = value;
    r->amounts_present |= RESULT_AMOUNT_BIT(amount);
}

bool result_has_amount(const struct result *r, enum result_amount amount)
{
    ASSERT(r != NULL);
    ASSERT((unsigned)amount < RESULT_AMOUNT_COUNT);
    return (r->amounts_present & RESULT_AMOUNT_BIT(amount)) != 0;
}

int64_t result_amount(const struct result *r, enum result_amount amount)
{
    ASSERT(result_has_amount(r, amount));
    return r->amounts[amount];
}

void result_init_for_job(struct result *r, const struct job *job)
{
    ASSERT(r != NULL);
    ASSERT(job != NULL);
    ASSERT(JOB_TYPE_IN_RANGE(job->type));
    ASSERT(memchr(job->id, '\0', sizeof job->id) != NULL);
    ASSERT(memchr(job->user, '\0', sizeof job->user) != NULL);
    memset(r, 0, sizeof *r);
    r->has_id = true;
    r->has_type = true;
    r->has_user = true;
    memcpy(r->id, job->id, sizeof r->id);
    r->type = job->type;
    memcpy(r->user, job->user, sizeof r->user);
    r->error = JOB_OK;
}
