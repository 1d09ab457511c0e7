/*
 * job_type.c -- the table of job types (job_type.h) and reading and writing
 * a job's fields through their descriptors.
 *
 * Owns the table, built from the list in core/types/types.h. Each row is
 * filled in by its type's own file; nothing here knows any one type.
 */
#include "core/job_type.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const struct job_type_ops *const job_types[JOB_TYPE_COUNT] = {
#define JOB_TYPE_ROW(value, name) [value] = &job_type_##name,
    JOB_TYPES(JOB_TYPE_ROW)
#undef JOB_TYPE_ROW
};

const struct job_type_ops *job_type_ops(enum job_type type)
{
    ASSERT((unsigned)type < JOB_TYPE_COUNT);
    const struct job_type_ops *ops = job_types[type];
    ASSERT(ops != NULL && ops->type == type); /* the row sits at its own value */
    ASSERT(ops->field_count <= JOB_FIELDS_MAX);
    return ops;
}

const struct job_field *job_type_field(enum job_type type, const char *name, size_t len)
{
    const struct job_type_ops *ops = job_type_ops(type);
    ASSERT(name != NULL || len == 0);
    for (size_t i = 0; i < ops->field_count; i++) {
        const struct job_field *field = &ops->fields[i];
        if (strlen(field->name) == len && memcmp(field->name, name, len) == 0)
            return field;
    }
    return NULL;
}

void job_type_names_list(char *out, size_t out_len)
{
    ASSERT(out != NULL && out_len > 0);
    size_t used = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < JOB_TYPE_COUNT; i++) {
        int n = snprintf(out + used, out_len - used, "%s%s", i > 0 ? ", " : "",
                         job_type_ops((enum job_type)i)->name);
        ASSERT(n > 0 && (size_t)n < out_len - used); /* callers size for every name */
        used += (size_t)n;
    }
}

/* ---------------------------------------------------------------------------
 * Fields
 * ------------------------------------------------------------------------- */

static const void *field_at(const struct job *job, size_t offset)
{
    ASSERT(job != NULL);
    ASSERT(offset < sizeof *job);
    return (const char *)job + offset;
}

static void *field_at_mut(struct job *job, size_t offset)
{
    ASSERT(job != NULL);
    ASSERT(offset < sizeof *job);
    return (char *)job + offset;
}

bool job_field_present(const struct job *job, const struct job_field *field)
{
    ASSERT(field != NULL);
    if (!field->optional)
        return true;
    return *(const bool *)field_at(job, field->present_offset);
}

int64_t job_field_int(const struct job *job, const struct job_field *field)
{
    ASSERT(field->kind == JOB_FIELD_INT);
    int64_t value;
    memcpy(&value, field_at(job, field->offset), sizeof value);
    return value;
}

const char *job_field_str(const struct job *job, const struct job_field *field)
{
    ASSERT(field->kind == JOB_FIELD_STR);
    const char *value = field_at(job, field->offset);
    ASSERT(memchr(value, '\0', field->size) != NULL);
    return value;
}

bool job_field_bool(const struct job *job, const struct job_field *field)
{
    ASSERT(field->kind == JOB_FIELD_BOOL);
    return *(const bool *)field_at(job, field->offset);
}

bool job_field_int_is_valid(const struct job_field *field, int64_t value)
{
    ASSERT(field->kind == JOB_FIELD_INT);
    ASSERT(field->min <= field->max);
    return value >= field->min && value <= field->max;
}

bool job_field_str_is_valid(const struct job_field *field, const char *bytes, size_t len)
{
    ASSERT(field->kind == JOB_FIELD_STR);
    ASSERT(field->min >= 0 && field->min <= field->max && (size_t)field->max < field->size);
    if (len < (size_t)field->min || len > (size_t)field->max)
        return false;
    switch (field->rule) {
    case JOB_STR_ID:
        return job_id_is_valid(bytes, len);
    case JOB_STR_TEXT:
        return job_text_is_valid(bytes, len);
    case JOB_STR_PERIOD:
        return job_period_is_valid(bytes, len);
    }
    UNREACHABLE();
}

static void mark_present(struct job *job, const struct job_field *field)
{
    if (field->optional)
        *(bool *)field_at_mut(job, field->present_offset) = true;
}

void job_field_set_int(struct job *job, const struct job_field *field, int64_t value)
{
    ASSERT(job_field_int_is_valid(field, value));
    memcpy(field_at_mut(job, field->offset), &value, sizeof value);
    mark_present(job, field);
}

void job_field_set_str(struct job *job, const struct job_field *field, const char *bytes,
                       size_t len)
{
    ASSERT(job_field_str_is_valid(field, bytes, len));
    char *out = field_at_mut(job, field->offset);
    if (len > 0)
        memcpy(out, bytes, len);
    out[len] = '\0';
    mark_present(job, field);
}

void job_field_set_bool(struct job *job, const struct job_field *field, bool value)
{
    ASSERT(field->kind == JOB_FIELD_BOOL);
    *(bool *)field_at_mut(job, field->offset) = value;
    mark_present(job, field);
}

static void str_expected(const struct job_field *field, char *out, size_t out_len)
{
    switch (field->rule) {
    case JOB_STR_ID:
        snprintf(out, out_len,
                 "a string of %" PRId64 " to %" PRId64 " printable ASCII characters (0x21 to 0x7e)",
                 field->min, field->max);
        return;
    case JOB_STR_TEXT:
        if (field->min == 0)
            snprintf(out, out_len, "a UTF-8 string of at most %" PRId64 " bytes without NUL",
                     field->max);
        else
            snprintf(out, out_len, "a UTF-8 string of %" PRId64 " to %" PRId64 " bytes without NUL",
                     field->min, field->max);
        return;
    case JOB_STR_PERIOD:
        snprintf(out, out_len, "a string YYYY-MM with month 01 to 12");
        return;
    }
    UNREACHABLE();
}

void job_field_expected(const struct job_field *field, char *out, size_t out_len)
{
    ASSERT(field != NULL);
    ASSERT(out != NULL && out_len > 0);
    switch (field->kind) {
    case JOB_FIELD_INT:
        snprintf(out, out_len, "an integer from %" PRId64 " to %" PRId64, field->min, field->max);
        return;
    case JOB_FIELD_STR:
        str_expected(field, out, out_len);
        return;
    case JOB_FIELD_BOOL:
        snprintf(out, out_len, "true or false");
        return;
    }
    UNREACHABLE();
}

void job_field_rule_message(const struct job_field *field, char *out, size_t out_len)
{
    ASSERT(field != NULL && out != NULL);
    char expected[120];
    job_field_expected(field, expected, sizeof expected);
    /* Truncation is harmless: the message is ASCII. */
    (void)snprintf(out, out_len, "field '%s' must be %s", field->name, expected);
}
