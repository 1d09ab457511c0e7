/*
 * reply.c -- Redis replies into the queue's plain structs (reply.h).
 *
 * Owns the shape checks: each reply is checked whole before anything is
 * copied out of it, so a copy never fails halfway. Does not own the
 * connection or the commands (queue.c), and never asserts on what Redis sent.
 */
#include "queue/reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

#define READ_WHAT "unexpected XREADGROUP reply"
#define ENTRY_WHAT "malformed stream entry in XREADGROUP reply"
#define PENDING_WHAT "unexpected XPENDING reply"
#define GROUPS_WHAT "unexpected XINFO GROUPS reply"
#define CLAIM_WHAT "unexpected XAUTOCLAIM reply"
#define XCLAIM_WHAT "unexpected XCLAIM reply"

/* An XPENDING extended-form item: [id, consumer, idle_ms, deliveries]. */
#define DELIVERY_ITEM_ELEMENTS 4
/* The summary: [count, min-id, max-id, consumers]. */
#define SUMMARY_ELEMENTS 4

/* Writes "<what>: <detail>" into errstr (cut to fit); returns -1. */
static int fail(char *errstr, size_t errstr_len, const char *what, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *errstr, size_t errstr_len, const char *what, const char *format, ...)
{
    ASSERT(errstr != NULL && errstr_len > 0);
    ASSERT(what != NULL && format != NULL);
    int n = snprintf(errstr, errstr_len, "%s: ", what);
    if (n > 0 && (size_t)n < errstr_len) {
        va_list ap;
        va_start(ap, format);
        vsnprintf(errstr + n, errstr_len - (size_t)n, format, ap);
        va_end(ap);
    }
    return -1;
}

/* hiredis's reply types are plain ints, not an enum: a default is due. */
static const char *type_name(int type)
{
    switch (type) {
    case REDIS_REPLY_STRING:
        return "a string";
    case REDIS_REPLY_ARRAY:
        return "an array";
    case REDIS_REPLY_INTEGER:
        return "an integer";
    case REDIS_REPLY_NIL:
        return "nil";
    case REDIS_REPLY_STATUS:
        return "a status";
    case REDIS_REPLY_ERROR:
        return "an error";
    default:
        return "of an unknown type";
    }
}

static bool is_array_of(const redisReply *r, size_t elements)
{
    ASSERT(r != NULL);
    ASSERT(r->type != REDIS_REPLY_ARRAY || r->elements == 0 || r->element != NULL);
    return r->type == REDIS_REPLY_ARRAY && r->elements == elements;
}

static bool is_entry_id(const redisReply *r)
{
    ASSERT(r != NULL);
    uint64_t ms = 0, seq = 0;
    if (r->type != REDIS_REPLY_STRING)
        return false;
    ASSERT(r->str != NULL);
    return reply_entry_id_parse(r->str, r->len, &ms, &seq);
}

/* A string (or status) reply holding exactly `text`. */
static bool text_is(const redisReply *r, const char *text)
{
    ASSERT(r != NULL && text != NULL);
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)
        return false;
    ASSERT(r->str != NULL);
    return r->len == strlen(text) && memcmp(r->str, text, r->len) == 0;
}

/* ---------------------------------------------------------------------------
 * Entry IDs and error replies
 * ------------------------------------------------------------------------- */

/* Decimal digits from text[*at], at least one, no overflow. */
static bool parse_u64(const char *text, size_t len, size_t *at, uint64_t *out)
{
    ASSERT(text != NULL && at != NULL && out != NULL);
    ASSERT(*at <= len);
    size_t start = *at;
    uint64_t value = 0;
    while (*at < len && text[*at] >= '0' && text[*at] <= '9') {
        unsigned digit = (unsigned)(text[*at] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return false;
        value = value * 10 + digit;
        (*at)++;
    }
    *out = value;
    return *at > start;
}

bool reply_entry_id_parse(const char *text, size_t len, uint64_t *ms, uint64_t *seq)
{
    ASSERT(text != NULL || len == 0);
    ASSERT(ms != NULL && seq != NULL);
    if (len == 0 || len > QUEUE_ENTRY_ID_BYTES_MAX)
        return false;
    size_t at = 0;
    if (!parse_u64(text, len, &at, ms) || at == len || text[at] != '-')
        return false;
    at++;
    return parse_u64(text, len, &at, seq) && at == len;
}

void reply_entry_id_next(char id[QUEUE_ENTRY_ID_BYTES_MAX + 1])
{
    ASSERT(id != NULL);
    uint64_t ms = 0, seq = 0;
    size_t len = strnlen(id, QUEUE_ENTRY_ID_BYTES_MAX + 1);
    if (!reply_entry_id_parse(id, len, &ms, &seq) || (ms == UINT64_MAX && seq == UINT64_MAX)) {
        id[0] = '\0';
        return;
    }
    if (seq == UINT64_MAX) {
        ms++;
        seq = 0;
    } else {
        seq++;
    }
    int n = snprintf(id, QUEUE_ENTRY_ID_BYTES_MAX + 1, "%llu-%llu", (unsigned long long)ms,
                     (unsigned long long)seq);
    ASSERT(n > 0 && n <= QUEUE_ENTRY_ID_BYTES_MAX);
}

bool reply_is_error(const redisReply *reply, char *errstr, size_t errstr_len)
{
    ASSERT(reply != NULL);
    ASSERT(errstr != NULL && errstr_len > 0);
    if (reply->type != REDIS_REPLY_ERROR)
        return false;
    snprintf(errstr, errstr_len, "Redis error: %s", reply->str ? reply->str : "");
    return true;
}

bool reply_is_busygroup(const redisReply *reply)
{
    static const char code[] = "BUSYGROUP";
    const size_t code_len = sizeof code - 1;
    ASSERT(reply != NULL);
    if (reply->type != REDIS_REPLY_ERROR || reply->len < code_len)
        return false;
    ASSERT(reply->str != NULL);
    return memcmp(reply->str, code, code_len) == 0 &&
           (reply->len == code_len || reply->str[code_len] == ' ');
}

/* ---------------------------------------------------------------------------
 * XREADGROUP: checked whole, then copied
 * ------------------------------------------------------------------------- */

/* [key, [entry, ...]] of one of the job streams: its number (entries into
 * *items), or -1. */
static int check_stream(const redisReply *pair, size_t k, const char *const keys[],
                        const redisReply **items, char *errstr, size_t errstr_len)
{
    ASSERT(pair != NULL && keys != NULL && items != NULL);
    if (!is_array_of(pair, 2))
        return fail(errstr, errstr_len, READ_WHAT, "stream %zu is not [key, entries]", k);
    int stream = -1;
    for (int s = 0; s < QUEUE_STREAM_COUNT && stream < 0; s++)
        if (text_is(pair->element[0], keys[s]))
            stream = s;
    if (stream < 0)
        return fail(errstr, errstr_len, READ_WHAT, "stream %zu is not a job stream's key", k);
    if (pair->element[1]->type != REDIS_REPLY_ARRAY)
        return fail(errstr, errstr_len, READ_WHAT, "the entries of stream %zu are %s", k,
                    type_name(pair->element[1]->type));
    *items = pair->element[1];
    return stream;
}

/* [field, value, ...]: every name and value a string. */
static int check_fields(const redisReply *fields, size_t i, char *errstr, size_t errstr_len)
{
    ASSERT(fields != NULL && fields->type == REDIS_REPLY_ARRAY);
    if (fields->elements % 2 != 0)
        return fail(errstr, errstr_len, ENTRY_WHAT, "entry %zu has %zu field names and values", i,
                    fields->elements);
    for (size_t f = 0; f < fields->elements; f++) {
        const redisReply *text = fields->element[f];
        if (text->type != REDIS_REPLY_STRING)
            return fail(errstr, errstr_len, ENTRY_WHAT, "field %s %zu of entry %zu is %s",
                        f % 2 == 0 ? "name" : "value", f / 2, i, type_name(text->type));
    }
    return 0;
}

/* {id, [field, value, ...] | nil}. */
static int check_entry(const redisReply *item, size_t i, char *errstr, size_t errstr_len)
{
    ASSERT(item != NULL);
    if (!is_array_of(item, 2))
        return fail(errstr, errstr_len, ENTRY_WHAT, "entry %zu is not [id, fields]", i);
    if (!is_entry_id(item->element[0]))
        return fail(errstr, errstr_len, ENTRY_WHAT, "the ID of entry %zu is not <ms>-<seq>", i);
    const redisReply *fields = item->element[1];
    if (fields->type == REDIS_REPLY_NIL)
        return 0;
    if (fields->type != REDIS_REPLY_ARRAY)
        return fail(errstr, errstr_len, ENTRY_WHAT, "the fields of entry %zu are %s", i,
                    type_name(fields->type));
    return check_fields(fields, i, errstr, errstr_len);
}

/* The entries the reply holds, every level checked; or -1. */
static int check_read(const redisReply *reply, const char *const keys[], size_t *total,
                      char *errstr, size_t errstr_len)
{
    ASSERT(reply != NULL && reply->type == REDIS_REPLY_ARRAY);
    ASSERT(total != NULL);
    *total = 0;
    for (size_t k = 0; k < reply->elements; k++) {
        const redisReply *items = NULL;
        if (check_stream(reply->element[k], k, keys, &items, errstr, errstr_len) < 0)
            return -1;
        for (size_t i = 0; i < items->elements; i++)
            if (check_entry(items->element[i], *total + i, errstr, errstr_len) != 0)
                return -1;
        *total += items->elements;
    }
    return 0;
}

/* Copies an entry check_entry() accepted. */
static void copy_entry(const redisReply *item, enum job_stream stream, struct queue_entry *out)
{
    const redisReply *id = item->element[0], *fields = item->element[1];
    ASSERT(id->len <= QUEUE_ENTRY_ID_BYTES_MAX);
    out->stream = stream;
    memcpy(out->id, id->str, id->len);
    out->id[id->len] = '\0';
    bool parsed = reply_entry_id_parse(out->id, id->len, &out->id_ms, &out->id_seq);
    ASSERT(parsed);
    if (fields->type == REDIS_REPLY_NIL)
        return; /* deleted after delivery: no bytes left */
    for (size_t f = 0; f + 1 < fields->elements && !out->has_job; f += 2) {
        const redisReply *name = fields->element[f], *value = fields->element[f + 1];
        if (name->len != 3 || memcmp(name->str, "job", 3) != 0)
            continue;
        /* The first bytes only in memory: a field of any size costs
         * QUEUE_JOB_KEPT_BYTES_MAX at most. The digest of a cut field is
         * taken now, while the whole field is here; that of a whole one
         * only if it is dead-lettered (queue.c), since most jobs never are
         * and hashing each one cost a tenth of the worker's CPU. */
        size_t kept = value->len < QUEUE_JOB_KEPT_BYTES_MAX ? value->len : QUEUE_JOB_KEPT_BYTES_MAX;
        out->job = malloc(kept ? kept : 1);
        ASSERT(out->job != NULL);
        memcpy(out->job, value->str, kept);
        out->job_len = kept;
        out->job_bytes = value->len;
        if (kept < value->len)
            sha256_digest(value->str, value->len, out->job_sha256);
        out->has_job = true;
    }
}

int reply_read(const redisReply *reply, const char *const keys[QUEUE_STREAM_COUNT],
               struct queue_entry **entries, size_t *count, char *errstr, size_t errstr_len)
{
    ASSERT(reply != NULL && keys != NULL);
    ASSERT(entries != NULL && count != NULL);
    *entries = NULL;
    *count = 0;
    if (reply->type == REDIS_REPLY_NIL)
        return 0; /* BLOCK timed out: no entries */
    if (reply->type != REDIS_REPLY_ARRAY)
        return fail(errstr, errstr_len, READ_WHAT, "it is %s, not an array or nil",
                    type_name(reply->type));
    size_t total = 0;
    if (check_read(reply, keys, &total, errstr, errstr_len) != 0)
        return -1;
    if (total == 0)
        return 0;
    struct queue_entry *out = calloc(total, sizeof *out);
    ASSERT(out != NULL);
    size_t n = 0;
    for (size_t k = 0; k < reply->elements; k++) {
        const redisReply *items = NULL;
        int stream = check_stream(reply->element[k], k, keys, &items, errstr, errstr_len);
        ASSERT(stream >= 0);
        for (size_t i = 0; i < items->elements; i++)
            copy_entry(items->element[i], (enum job_stream)stream, &out[n++]);
    }
    ASSERT(n == total);
    *entries = out;
    *count = n;
    return 0;
}

/* ---------------------------------------------------------------------------
 * XPENDING, extended form: delivery counts
 * ------------------------------------------------------------------------- */

static int check_delivery(const redisReply *item, size_t i, char *errstr, size_t errstr_len)
{
    ASSERT(item != NULL);
    if (!is_array_of(item, DELIVERY_ITEM_ELEMENTS))
        return fail(errstr, errstr_len, PENDING_WHAT,
                    "item %zu is not [id, consumer, idle, deliveries]", i);
    const redisReply *const *e = (const redisReply *const *)item->element;
    if (!is_entry_id(e[0]))
        return fail(errstr, errstr_len, PENDING_WHAT, "the ID of item %zu is not <ms>-<seq>", i);
    if (e[1]->type != REDIS_REPLY_STRING)
        return fail(errstr, errstr_len, PENDING_WHAT, "the consumer of item %zu is %s", i,
                    type_name(e[1]->type));
    if (e[2]->type != REDIS_REPLY_INTEGER || e[3]->type != REDIS_REPLY_INTEGER)
        return fail(errstr, errstr_len, PENDING_WHAT, "item %zu's idle time or count is %s", i,
                    type_name(e[2]->type != REDIS_REPLY_INTEGER ? e[2]->type : e[3]->type));
    if (e[3]->integer < 0)
        return fail(errstr, errstr_len, PENDING_WHAT, "item %zu's delivery count is negative", i);
    return 0;
}

int reply_deliveries(const redisReply *reply, enum job_stream stream, struct queue_entry *entries,
                     size_t count, char *errstr, size_t errstr_len)
{
    ASSERT(reply != NULL && (entries != NULL || count == 0));
    ASSERT((int)stream >= 0 && (int)stream < QUEUE_STREAM_COUNT);
    if (reply->type != REDIS_REPLY_ARRAY)
        return fail(errstr, errstr_len, PENDING_WHAT, "it is %s, not an array",
                    type_name(reply->type));
    for (size_t i = 0; i < reply->elements; i++)
        if (check_delivery(reply->element[i], i, errstr, errstr_len) != 0)
            return -1;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *id = reply->element[i]->element[0];
        for (size_t e = 0; e < count; e++) {
            struct queue_entry *entry = &entries[e];
            if (entry->stream == stream && strlen(entry->id) == id->len &&
                memcmp(entry->id, id->str, id->len) == 0) {
                entry->deliveries = reply->element[i]->element[3]->integer;
                break;
            }
        }
    }
    return 0;
}

int reply_pending_oldest(const redisReply *reply, char id[QUEUE_ENTRY_ID_BYTES_MAX + 1],
                         int64_t *deliveries, char *errstr, size_t errstr_len)
{
    ASSERT(reply != NULL && id != NULL && deliveries != NULL);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements > 1)
        return fail(errstr, errstr_len, PENDING_WHAT, "it is %s of %zu, not one item or none",
                    type_name(reply->type), reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0);
    if (reply->elements == 0)
        return 0;
    if (check_delivery(reply->element[0], 0, errstr, errstr_len) != 0)
        return -1;
    const redisReply *const *e = (const redisReply *const *)reply->element[0]->element;
    memcpy(id, e[0]->str, e[0]->len);
    id[e[0]->len] = '\0';
    *deliveries = e[3]->integer;
    return 1;
}

int reply_claimed(const redisReply *reply, enum job_stream stream, struct queue_entry **entries,
                  size_t *count, char *errstr, size_t errstr_len)
{
    ASSERT(reply != NULL && entries != NULL && count != NULL);
    ASSERT((int)stream >= 0 && (int)stream < QUEUE_STREAM_COUNT);
    *entries = NULL;
    *count = 0;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements > 1)
        return fail(errstr, errstr_len, XCLAIM_WHAT, "it is %s of %zu, not one entry or none",
                    type_name(reply->type), reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0);
    if (reply->elements == 0 || reply->element[0]->type == REDIS_REPLY_NIL)
        return 0; /* deleted: nothing is left to decide */
    if (check_entry(reply->element[0], 0, errstr, errstr_len) != 0)
        return -1;
    struct queue_entry *out = calloc(1, sizeof *out);
    ASSERT(out != NULL);
    copy_entry(reply->element[0], stream, out);
    *entries = out;
    *count = 1;
    return 0;
}

/* ---------------------------------------------------------------------------
 * XINFO GROUPS and the XPENDING summary
 * ------------------------------------------------------------------------- */

/* One group: a flat list of pairs whose names are strings. */
static int check_group(const redisReply *group, size_t g, char *errstr, size_t errstr_len)
{
    ASSERT(group != NULL);
    if (group->type != REDIS_REPLY_ARRAY || group->elements % 2 != 0)
        return fail(errstr, errstr_len, GROUPS_WHAT, "group %zu is not a list of pairs", g);
    for (size_t k = 0; k < group->elements; k += 2)
        if (group->element[k]->type != REDIS_REPLY_STRING)
            return fail(errstr, errstr_len, GROUPS_WHAT, "name %zu of group %zu is %s", k / 2, g,
                        type_name(group->element[k]->type));
    return 0;
}

/* The value named `name` in a group check_group() accepted, or NULL. */
static const redisReply *group_value(const redisReply *group, const char *name)
{
    ASSERT(group != NULL && group->type == REDIS_REPLY_ARRAY);
    ASSERT(name != NULL);
    for (size_t k = 0; k + 1 < group->elements; k += 2)
        if (text_is(group->element[k], name))
            return group->element[k + 1];
    return NULL;
}

int reply_groups_last_delivered(const redisReply *reply, const char *group,
                                char last_delivered[QUEUE_ENTRY_ID_BYTES_MAX + 1], char *errstr,
                                size_t errstr_len)
{
    ASSERT(reply != NULL && group != NULL);
    ASSERT(last_delivered != NULL);
    last_delivered[0] = '\0';
    if (reply->type != REDIS_REPLY_ARRAY)
        return fail(errstr, errstr_len, GROUPS_WHAT, "it is %s, not an array",
                    type_name(reply->type));
    for (size_t g = 0; g < reply->elements; g++)
        if (check_group(reply->element[g], g, errstr, errstr_len) != 0)
            return -1;
    for (size_t g = 0; g < reply->elements; g++) {
        const redisReply *name = group_value(reply->element[g], "name");
        if (name == NULL || name->type != REDIS_REPLY_STRING)
            return fail(errstr, errstr_len, GROUPS_WHAT, "group %zu has no name", g);
        if (!text_is(name, group))
            continue;
        const redisReply *id = group_value(reply->element[g], "last-delivered-id");
        if (id == NULL || !is_entry_id(id))
            return fail(errstr, errstr_len, GROUPS_WHAT,
                        "group %zu's last-delivered-id is missing or not <ms>-<seq>", g);
        memcpy(last_delivered, id->str, id->len);
        last_delivered[id->len] = '\0';
        return 0;
    }
    return 0;
}

/* The summary's min-id, max-id and consumers: nils when nothing is
 * pending, else two IDs and a list. */
static int check_summary_rest(const redisReply *const *e, int64_t count, char *errstr,
                              size_t errstr_len)
{
    ASSERT(e != NULL && count >= 0);
    bool none = count == 0;
    if (none && (e[1]->type != REDIS_REPLY_NIL || e[2]->type != REDIS_REPLY_NIL))
        return fail(errstr, errstr_len, PENDING_WHAT, "nothing is pending but an ID is given");
    if (!none && (!is_entry_id(e[1]) || !is_entry_id(e[2])))
        return fail(errstr, errstr_len, PENDING_WHAT, "the oldest or newest ID is not <ms>-<seq>");
    bool list_ok = e[3]->type == REDIS_REPLY_ARRAY || (none && e[3]->type == REDIS_REPLY_NIL);
    if (!list_ok)
        return fail(errstr, errstr_len, PENDING_WHAT, "the consumers are %s",
                    type_name(e[3]->type));
    return 0;
}

int reply_pending_summary(const redisReply *reply, struct queue_pending *pending, char *errstr,
                          size_t errstr_len)
{
    ASSERT(reply != NULL && pending != NULL);
    if (!is_array_of(reply, SUMMARY_ELEMENTS))
        return fail(errstr, errstr_len, PENDING_WHAT, "it is not [count, min, max, consumers]");
    const redisReply *const *e = (const redisReply *const *)reply->element;
    if (e[0]->type != REDIS_REPLY_INTEGER || e[0]->integer < 0)
        return fail(errstr, errstr_len, PENDING_WHAT, "the count is %s",
                    e[0]->type == REDIS_REPLY_INTEGER ? "negative" : type_name(e[0]->type));
    int64_t count = e[0]->integer;
    if (check_summary_rest(e, count, errstr, errstr_len) != 0)
        return -1;
    pending->count = count;
    if (count == 0)
        return 0;
    uint64_t seq = 0;
    bool parsed = reply_entry_id_parse(e[1]->str, e[1]->len, &pending->oldest_ms, &seq);
    ASSERT(parsed);
    memcpy(pending->trim_before, e[1]->str, e[1]->len);
    pending->trim_before[e[1]->len] = '\0';
    return 0;
}

/* ---------------------------------------------------------------------------
 * XAUTOCLAIM ... JUSTID
 * ------------------------------------------------------------------------- */

/* A list of entry IDs: the claimed ones or the deleted ones. */
static int check_id_list(const redisReply *list, const char *which, char *errstr, size_t errstr_len)
{
    ASSERT(list != NULL && which != NULL);
    if (list->type != REDIS_REPLY_ARRAY)
        return fail(errstr, errstr_len, CLAIM_WHAT, "the %s IDs are %s", which,
                    type_name(list->type));
    for (size_t i = 0; i < list->elements; i++)
        if (!is_entry_id(list->element[i]))
            return fail(errstr, errstr_len, CLAIM_WHAT, "%s ID %zu is not <ms>-<seq>", which, i);
    return 0;
}

int reply_claim(const redisReply *reply, int64_t *claimed, char *errstr, size_t errstr_len)
{
    ASSERT(reply != NULL && claimed != NULL);
    ASSERT(errstr != NULL);
    if (!is_array_of(reply, 2) && !is_array_of(reply, 3))
        return fail(errstr, errstr_len, CLAIM_WHAT, "it is not [cursor, claimed, deleted]");
    if (!is_entry_id(reply->element[0]))
        return fail(errstr, errstr_len, CLAIM_WHAT, "the cursor is not <ms>-<seq>");
    if (check_id_list(reply->element[1], "claimed", errstr, errstr_len) != 0)
        return -1;
    if (reply->elements == 3 && check_id_list(reply->element[2], "deleted", errstr, errstr_len))
        return -1;
    *claimed = (int64_t)reply->element[1]->elements;
    return 0;
}
