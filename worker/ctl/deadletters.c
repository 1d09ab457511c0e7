/*
 * deadletters.c -- creditsctl dead list | show | retry | drop, on the
 * dead-letter stream {prefix}:dead. An entry there has the fields `stream`
 * (the job stream the message came from), `entry` (its ID there), `reason`
 * and, when the message had one, `job_bytes` and `job_sha256` (the
 * original's length and digest) and `job` (at most its first 4096 bytes),
 * as the worker writes them (contract sections 7 and 9.9). `job` is decoded
 * with the worker's own codec; bytes that are no job are shown as hex.
 */
#include "worker/ctl/deadletters.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/codec.h"
#include "worker/ctl/enqueue.h"
#include "worker/ctl/json_out.h"
#include "worker/ctl/table.h"

/* Bytes of an undecodable job shown as hex by `list` (show: all of them). */
#define DEAD_LIST_HEX_BYTES 16
/* Bytes `show` dumps for people (--json has them all). */
#define DEAD_SHOW_HEX_BYTES 512
#define DEAD_TEXT_BYTES 1024

/* What the worker's codec makes of the `job` field. */
struct decoded {
    enum job_error error; /* JOB_OK: `job` is valid */
    struct job job;
    struct result reject; /* otherwise: what was readable, and why not */
};

/* ------------------------------------------------------------------------ */
/* Reading dead letters                                                     */
/* ------------------------------------------------------------------------ */

static bool digits(const char *s, size_t len)
{
    if (len == 0 || len > 20)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool dead_entry_id_is_valid(const char *s)
{
    ASSERT(s != NULL);
    const char *dash = strchr(s, '-');
    if (!dash)
        return digits(s, strlen(s));
    return digits(s, (size_t)(dash - s)) && digits(dash + 1, strlen(dash + 1));
}

static void dead_key(const char *prefix, char key[CTL_KEY_BYTES])
{
    keys_dead(prefix, key, CTL_KEY_BYTES);
}

static struct dead_field *field_named(struct dead_letter *d, const char *name, size_t len)
{
    static const char *const names[] = {"stream", "entry",     "reason",
                                        "job",    "job_bytes", "job_sha256"};
    struct dead_field *slots[] = {&d->stream, &d->entry,     &d->reason,
                                  &d->job,    &d->job_bytes, &d->job_sha256};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return slots[i];
    return NULL;
}

bool dead_letter_parse(const redisReply *e, struct dead_letter *d)
{
    ASSERT(e != NULL && d != NULL);
    memset(d, 0, sizeof *d);
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return false;
    snprintf(d->id, sizeof d->id, "%.*s", (int)e->element[0]->len, e->element[0]->str);
    const redisReply *fields = e->element[1];
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        struct dead_field *slot = field_named(d, k->str, k->len);
        if (slot)
            *slot = (struct dead_field){v->str, v->len, true};
    }
    return true;
}

/* The original job's length: job_bytes, or the bytes kept when a letter
 * older than job_bytes has none. */
static size_t original_bytes(const struct dead_letter *d)
{
    char text[24];
    if (!d->job_bytes.present || d->job_bytes.len >= sizeof text)
        return d->job.len;
    memcpy(text, d->job_bytes.bytes, d->job_bytes.len);
    text[d->job_bytes.len] = '\0';
    char *end = NULL;
    unsigned long long n = strtoull(text, &end, 10);
    return end != text && *end == '\0' && n >= d->job.len ? (size_t)n : d->job.len;
}

/* The worker kept only the first bytes of the job. */
static bool job_was_cut(const struct dead_letter *d)
{
    return d->job.present && original_bytes(d) > d->job.len;
}

static void decode_letter(const struct dead_letter *d, struct decoded *dec)
{
    memset(dec, 0, sizeof *dec);
    if (!d->job.present) {
        dec->error = JOB_ERR_INVALID_JOB;
        snprintf(dec->reject.message, sizeof dec->reject.message, "the entry had no job field");
        return;
    }
    dec->error = codec_decode_job(d->job.bytes, d->job.len, &dec->job, &dec->reject);
}

redisReply *dead_read_range(redisContext *redis, const char *prefix, bool newest_first,
                            const char *first, const char *last, int64_t count, char *errstr,
                            size_t errstr_len)
{
    ASSERT(redis && prefix && first && last && count > 0);
    char key[CTL_KEY_BYTES];
    char count_text[24];
    dead_key(prefix, key);
    snprintf(count_text, sizeof count_text, "%lld", (long long)count);
    const char *argv[6] = {
        newest_first ? "XREVRANGE" : "XRANGE", key, first, last, "COUNT", count_text};
    redisReply *reply =
        ctl_redis_query(redis, "reading the dead letters", 6, argv, NULL, errstr, errstr_len);
    if (reply && reply->type != REDIS_REPLY_ARRAY) {
        snprintf(errstr, errstr_len, "%s is not a stream (Redis reply type %d)", key, reply->type);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

int dead_read_one(redisContext *redis, const char *prefix, const char *id, redisReply **reply,
                  struct dead_letter *d, char *errstr, size_t errstr_len)
{
    ASSERT(dead_entry_id_is_valid(id));
    char key[CTL_KEY_BYTES];
    dead_key(prefix, key);
    *reply = dead_read_range(redis, prefix, false, id, id, 1, errstr, errstr_len);
    if (!*reply)
        return -1;
    if ((*reply)->elements == 1 && dead_letter_parse((*reply)->element[0], d))
        return 0;
    freeReplyObject(*reply);
    *reply = NULL;
    snprintf(errstr, errstr_len, "no dead letter %s in %s", id, key);
    return -1;
}

int dead_count(redisContext *redis, const char *prefix, long long *total, char *errstr,
               size_t errstr_len)
{
    char key[CTL_KEY_BYTES];
    dead_key(prefix, key);
    const char *argv[2] = {"XLEN", key};
    redisReply *reply =
        ctl_redis_query(redis, "counting the dead letters", 2, argv, NULL, errstr, errstr_len);
    if (!reply)
        return -1;
    *total = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    freeReplyObject(reply);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Text for people                                                          */
/* ------------------------------------------------------------------------ */

/* A field as text into `out` (bytes after a NUL dropped; "-" when absent).
 * Returns `out`. */
static const char *field_text(const struct dead_field *f, char *out, size_t out_len)
{
    if (!f->present)
        snprintf(out, out_len, "-");
    else
        snprintf(out, out_len, "%.*s", (int)(f->len < out_len ? f->len : out_len - 1), f->bytes);
    return out;
}

/* The first `max` bytes in hex ("91c1..."), "..." when there are more. */
static void hex_prefix(const struct dead_field *f, size_t max, char *out, size_t out_len)
{
    ASSERT(out_len >= 2 * max + 4);
    size_t n = f->len < max ? f->len : max;
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", (unsigned char)f->bytes[i]);
    snprintf(out + 2 * n, 4, "%s", f->len > max ? "..." : "");
}

/* "consume id=... user=... amount=5 tool=veo": a valid job on one line,
 * its fields in its type's order (absent optional ones left out). */
static void job_text(const struct job *job, char *out, size_t out_len)
{
    int n =
        snprintf(out, out_len, "%s id=%s user=%s", job_type_name(job->type), job->id, job->user);
    ASSERT(n > 0 && (size_t)n < out_len);
    size_t used = (size_t)n;
    const struct job_type_ops *ops = job_type_ops(job->type);
    for (size_t i = 0; i < ops->field_count && used < out_len; i++) {
        const struct job_field *field = &ops->fields[i];
        if (!job_field_present(job, field))
            continue;
        switch (field->kind) {
        case JOB_FIELD_INT:
            n = snprintf(out + used, out_len - used, " %s=%lld", field->name,
                         (long long)job_field_int(job, field));
            break;
        case JOB_FIELD_STR:
            n = snprintf(out + used, out_len - used, " %s=%s", field->name,
                         job_field_str(job, field));
            break;
        case JOB_FIELD_BOOL:
            n = snprintf(out + used, out_len - used, " %s=%s", field->name,
                         job_field_bool(job, field) ? "true" : "false");
            break;
        }
        ASSERT(n > 0);
        used += (size_t)n; /* a cut line stops the loop: the column is a summary */
    }
}

/* The `job` column of `dead list`. */
static void job_summary(const struct dead_letter *d, const struct decoded *dec, char *out,
                        size_t out_len)
{
    if (!d->job.present) {
        snprintf(out, out_len, "(no job bytes)");
        return;
    }
    if (dec->error == JOB_OK) {
        job_text(&dec->job, out, out_len);
        return;
    }
    char hex[2 * DEAD_LIST_HEX_BYTES + 4], cut[64] = "";
    hex_prefix(&d->job, DEAD_LIST_HEX_BYTES, hex, sizeof hex);
    if (job_was_cut(d))
        snprintf(cut, sizeof cut, " (cut: %zu kept)", d->job.len);
    snprintf(out, out_len, "not a job (%s): %zu bytes%s %s%s%s", job_error_name(dec->error),
             original_bytes(d), cut, hex, dec->reject.has_id ? " id=" : "",
             dec->reject.has_id ? dec->reject.id : "");
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                     */
/* ------------------------------------------------------------------------ */

static void json_field(struct json *j, const char *key, const struct dead_field *f)
{
    if (f->present)
        json_strn(j, key, f->bytes, f->len);
    else
        json_null(j, key);
}

static void json_hex(struct json *j, const char *key, const struct dead_field *f, size_t max)
{
    size_t n = f->len < max ? f->len : max;
    char *hex = malloc(2 * n + 1);
    if (!hex) {
        json_null(j, key);
        return;
    }
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)f->bytes[i]);
    hex[2 * n] = '\0';
    json_str(j, key, hex);
    free(hex);
}

/* The job's fields in its type's order; an absent optional field is null. */
static void json_job(struct json *j, const char *key, const struct job *job)
{
    json_object_begin(j, key);
    json_str(j, "id", job->id);
    json_str(j, "type", job_type_name(job->type));
    json_str(j, "user", job->user);
    json_bool(j, "reply", job->reply);
    const struct job_type_ops *ops = job_type_ops(job->type);
    for (size_t i = 0; i < ops->field_count; i++) {
        const struct job_field *field = &ops->fields[i];
        if (!job_field_present(job, field)) {
            json_null(j, field->name);
            continue;
        }
        switch (field->kind) {
        case JOB_FIELD_INT:
            json_int(j, field->name, job_field_int(job, field));
            break;
        case JOB_FIELD_STR:
            json_str(j, field->name, job_field_str(job, field));
            break;
        case JOB_FIELD_BOOL:
            json_bool(j, field->name, job_field_bool(job, field));
            break;
        }
    }
    json_object_end(j);
}

void dead_letter_json(struct json *j, const char *key, const struct dead_letter *d, size_t hex_max)
{
    ASSERT(j && d);
    struct decoded dec;
    decode_letter(d, &dec);
    json_object_begin(j, key);
    json_str(j, "id", d->id);
    json_field(j, "stream", &d->stream);
    json_field(j, "entry", &d->entry);
    json_field(j, "reason", &d->reason);
    if (d->job.present) {
        json_int(j, "job_bytes", (int64_t)original_bytes(d));
        json_int(j, "job_kept_bytes", (int64_t)d->job.len);
        json_bool(j, "job_cut", job_was_cut(d));
        json_field(j, "job_sha256", &d->job_sha256);
        json_hex(j, "job_hex", &d->job, hex_max);
    } else {
        json_null(j, "job_bytes");
        json_null(j, "job_kept_bytes");
        json_null(j, "job_cut");
        json_null(j, "job_sha256");
        json_null(j, "job_hex");
    }
    if (dec.error == JOB_OK) {
        json_job(j, "job", &dec.job);
        json_null(j, "job_error");
        json_null(j, "job_message");
    } else {
        json_null(j, "job");
        json_str(j, "job_error", job_error_name(dec.error));
        json_str(j, "job_message", dec.reject.message);
    }
    json_object_end(j);
}

/* ------------------------------------------------------------------------ */
/* dead list                                                                */
/* ------------------------------------------------------------------------ */

#define LIST_COLS 5

/* The cells of `dead list`, one row per letter. */
struct list_rows {
    int rows;
    char (*cells)[LIST_COLS][DEAD_TEXT_BYTES];
};

static const char *list_cell(const void *ctx, int row, int col)
{
    static const char *const header[LIST_COLS] = {"dead entry", "stream", "entry", "reason", "job"};
    const struct list_rows *t = ctx;
    return row < 0 ? header[col] : t->cells[row][col];
}

static void print_list_table(const redisReply *reply, long long total)
{
    struct list_rows t = {0, calloc(reply->elements ? reply->elements : 1, sizeof *t.cells)};
    ASSERT(t.cells);
    for (size_t i = 0; i < reply->elements; i++) {
        struct dead_letter d;
        struct decoded dec;
        if (!dead_letter_parse(reply->element[i], &d))
            continue;
        decode_letter(&d, &dec);
        char(*row)[DEAD_TEXT_BYTES] = t.cells[t.rows++];
        snprintf(row[0], DEAD_TEXT_BYTES, "%s", d.id);
        field_text(&d.stream, row[1], DEAD_TEXT_BYTES);
        field_text(&d.entry, row[2], DEAD_TEXT_BYTES);
        field_text(&d.reason, row[3], DEAD_TEXT_BYTES);
        job_summary(&d, &dec, row[4], DEAD_TEXT_BYTES);
    }
    if (t.rows == 0) {
        puts("(no dead letters)");
    } else {
        struct table table = {t.rows, LIST_COLS, list_cell, &t, NULL, NULL};
        table_print(stdout, &table);
        if (total > t.rows)
            printf("(the newest %d of %lld dead letters)\n", t.rows, total);
    }
    free(t.cells);
}

static void print_list_json(const redisReply *reply, long long total)
{
    struct json j;
    json_init(&j, stdout);
    json_object_begin(&j, NULL);
    json_int(&j, "total", total);
    json_array_begin(&j, "dead");
    for (size_t i = 0; i < reply->elements; i++) {
        struct dead_letter d;
        if (dead_letter_parse(reply->element[i], &d))
            dead_letter_json(&j, NULL, &d, JOB_BYTES_MAX);
    }
    json_array_end(&j);
    json_object_end(&j);
    json_finish(&j);
}

/* dead list [--limit N] [--json] */
static int dead_list(struct ctl *ctl, int argc, char **argv)
{
    const char *limit_text = NULL;
    bool json = false;
    const struct opt opts[] = {
        {"limit", &limit_text, NULL, false}, CTL_OPT_JSON(json), CTL_OPT_END};
    const char *const names[] = {NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    int64_t limit = DEAD_LIST_LIMIT_DEFAULT;
    if (limit_text &&
        ctl_flag_int64(ctl, "--limit", limit_text, 1, DEAD_LIST_LIMIT_MAX, &limit) != CTL_OK)
        return CTL_USAGE;
    redisContext *redis = NULL;
    rc = ctl_redis_open(ctl, &redis);
    long long total = 0;
    const char *prefix = ctl->config.prefix;
    char *errstr = ctl->errstr;
    size_t errstr_len = sizeof ctl->errstr;
    redisReply *reply = NULL;
    if (rc == CTL_OK && dead_count(redis, prefix, &total, errstr, errstr_len) == 0)
        reply = dead_read_range(redis, prefix, true, "+", "-", limit, errstr, errstr_len);
    if (reply && json)
        print_list_json(reply, total);
    else if (reply)
        print_list_table(reply, total);
    else if (rc == CTL_OK)
        rc = ctl_failure(ctl, "%s", errstr);
    freeReplyObject(reply);
    redisFree(redis);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* dead show                                                                */
/* ------------------------------------------------------------------------ */

static void print_kv(const char *key, const char *value)
{
    char cell[TABLE_CELL_BUF_BYTES];
    table_safe_cell(value, cell);
    printf("%-12s %s\n", key, cell);
}

/* 16 bytes a line: offset, hex. */
static void print_hexdump(const struct dead_field *f)
{
    size_t n = f->len < DEAD_SHOW_HEX_BYTES ? f->len : DEAD_SHOW_HEX_BYTES;
    for (size_t off = 0; off < n; off += 16) {
        printf("  %04zx ", off);
        for (size_t i = off; i < off + 16 && i < n; i++)
            printf(" %02x", (unsigned char)f->bytes[i]);
        putchar('\n');
    }
    if (f->len > n)
        printf("  (%zu more bytes: see --json)\n", f->len - n);
}

static void print_letter(const struct dead_letter *d)
{
    char text[DEAD_TEXT_BYTES];
    struct decoded dec;
    decode_letter(d, &dec);
    print_kv("dead entry", d->id);
    print_kv("stream", field_text(&d->stream, text, sizeof text));
    print_kv("entry", field_text(&d->entry, text, sizeof text));
    print_kv("reason", field_text(&d->reason, text, sizeof text));
    if (dec.error == JOB_OK) {
        job_text(&dec.job, text, sizeof text);
        print_kv("job", text);
    } else {
        snprintf(text, sizeof text, "not a valid job (%s): %s", job_error_name(dec.error),
                 dec.reject.message);
        print_kv("job", text);
    }
    if (!d->job.present)
        return;
    if (d->job_sha256.present)
        print_kv("job sha256", field_text(&d->job_sha256, text, sizeof text));
    if (job_was_cut(d))
        snprintf(text, sizeof text, "%zu (cut: the first %zu kept)", original_bytes(d), d->job.len);
    else
        snprintf(text, sizeof text, "%zu", d->job.len);
    print_kv("job bytes", text);
    print_hexdump(&d->job);
}

/* The ENTRY_ID positional of show, retry and drop. */
static int parse_entry_arg(struct ctl *ctl, int argc, char **argv, const struct opt *opts,
                           const char **id)
{
    const char *const names[] = {"ENTRY_ID", NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, id);
    if (rc != CTL_CONTINUE)
        return rc;
    if (!dead_entry_id_is_valid(*id))
        return ctl_usage_error(ctl, "'%s' is not a stream entry ID (like 1764000000000-0)", *id);
    return CTL_CONTINUE;
}

/* dead show ENTRY_ID [--json] */
static int dead_show(struct ctl *ctl, int argc, char **argv)
{
    bool json = false;
    const struct opt opts[] = {CTL_OPT_JSON(json), CTL_OPT_END};
    const char *id = NULL;
    int rc = parse_entry_arg(ctl, argc, argv, opts, &id);
    if (rc != CTL_CONTINUE)
        return rc;
    redisContext *redis = NULL;
    redisReply *reply = NULL;
    struct dead_letter d;
    rc = ctl_redis_open(ctl, &redis);
    if (rc == CTL_OK && dead_read_one(redis, ctl->config.prefix, id, &reply, &d, ctl->errstr,
                                      sizeof ctl->errstr) != 0)
        rc = ctl_failure(ctl, "%s", ctl->errstr);
    if (rc == CTL_OK && json) {
        struct json j;
        json_init(&j, stdout);
        dead_letter_json(&j, NULL, &d, SIZE_MAX);
        json_finish(&j);
    } else if (rc == CTL_OK) {
        print_letter(&d);
    }
    freeReplyObject(reply);
    redisFree(redis);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* dead retry, dead drop                                                    */
/* ------------------------------------------------------------------------ */

/* The job stream named `stream` under `prefix`. */
static bool stream_of(const char *prefix, const struct dead_field *stream, enum job_stream *out)
{
    return stream->present && keys_stream_parse(prefix, stream->bytes, stream->len, out);
}

/* Why the letter must not be retried (in errstr, -1), or 0. */
static int check_retry(const char *prefix, const struct dead_letter *d, bool force,
                       enum job_stream *stream, char *errstr, size_t errstr_len)
{
    if (!stream_of(prefix, &d->stream, stream)) {
        char text[DEAD_TEXT_BYTES];
        snprintf(errstr, errstr_len,
                 "dead letter %s came from '%s', which is not one of this prefix's job "
                 "streams (%s:jobs:consume|purchase|allocate): not retried",
                 d->id, field_text(&d->stream, text, sizeof text), prefix);
        return -1;
    }
    if (!d->job.present) {
        snprintf(errstr, errstr_len, "dead letter %s holds no job bytes: nothing to retry", d->id);
        return -1;
    }
    if (job_was_cut(d)) {
        snprintf(errstr, errstr_len,
                 "dead letter %s holds only the first %zu of the job's %zu bytes: the "
                 "job cannot be re-enqueued (its producer must send it again)",
                 d->id, d->job.len, original_bytes(d));
        return -1;
    }
    if (force)
        return 0;
    struct decoded dec;
    decode_letter(d, &dec);
    if (dec.error != JOB_OK) {
        snprintf(errstr, errstr_len,
                 "dead letter %s would be rejected again (%s: %s); --force "
                 "re-enqueues it anyway",
                 d->id, job_error_name(dec.error), dec.reject.message);
        return -1;
    }
    if (job_type_ops(dec.job.type)->stream != *stream) {
        snprintf(errstr, errstr_len,
                 "dead letter %s holds a %s job, which the %s stream rejects "
                 "(wrong_stream); --force re-enqueues it anyway",
                 d->id, job_type_name(dec.job.type), job_stream_name(*stream));
        return -1;
    }
    return 0;
}

/*
 * Re-adds the dead letter's job to the job stream and deletes the dead
 * letter, atomically, in Redis: the bytes are taken from the dead letter
 * itself, nothing is deleted unless the XADD succeeded, and of two retries
 * of one letter at the same time only one re-enqueues it (the other finds
 * it gone and returns nil).
 * KEYS[1]: the dead stream, KEYS[2]: the job stream; ARGV[1]: the entry ID.
 */
/* clang-format off */
static const char lua_requeue[] =
    "local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1]\n"
    "if not e then return false end\n"
    "local job\n"
    "for i = 1, #e[2], 2 do\n"
    "  if e[2][i] == 'job' then job = e[2][i + 1] end\n"
    "end\n"
    "if not job then return false end\n"
    "local id = redis.call('XADD', KEYS[2], '*', 'job', job)\n"
    "redis.call('XDEL', KEYS[1], ARGV[1])\n"
    "return id\n";
/* clang-format on */

/* Runs lua_requeue; the new entry's ID into `entry`. 0 or -1. */
static int requeue(redisContext *redis, const char *prefix, const struct dead_letter *d,
                   const char *stream, char entry[CTL_KEY_BYTES], char *errstr, size_t errstr_len)
{
    char dead[CTL_KEY_BYTES];
    dead_key(prefix, dead);
    const char *argv[6] = {"EVAL", lua_requeue, "2", dead, stream, d->id};
    redisReply *reply =
        ctl_redis_query(redis, "re-enqueueing the job", 6, argv, NULL, errstr, errstr_len);
    if (!reply)
        return -1;
    int rc = 0;
    if (reply->type == REDIS_REPLY_NIL) {
        snprintf(errstr, errstr_len, "dead letter %s is gone (retried or dropped meanwhile?)",
                 d->id);
        rc = -1;
    } else if (reply->type != REDIS_REPLY_STRING) {
        snprintf(errstr, errstr_len, "re-enqueueing the job: unexpected reply (type %d)",
                 reply->type);
        rc = -1;
    } else {
        snprintf(entry, CTL_KEY_BYTES, "%s", reply->str);
    }
    freeReplyObject(reply);
    return rc;
}

int dead_retry(redisContext *redis, const char *prefix, const struct dead_letter *d, bool force,
               struct dead_retried *retried, char *errstr, size_t errstr_len)
{
    ASSERT(redis && prefix && d && retried && errstr);
    memset(retried, 0, sizeof *retried);
    enum job_stream stream_id = JOB_STREAM_CONSUME;
    if (check_retry(prefix, d, force, &stream_id, errstr, errstr_len) != 0)
        return -1;
    keys_stream(prefix, stream_id, retried->stream, sizeof retried->stream);
    if (requeue(redis, prefix, d, retried->stream, retried->entry, errstr, errstr_len) != 0)
        return -1;
    struct decoded dec;
    decode_letter(d, &dec);
    if (dec.error == JOB_OK)
        snprintf(retried->job_id, sizeof retried->job_id, "%s", dec.job.id);
    return 0;
}

int dead_drop(redisContext *redis, const char *prefix, const char *id, char *errstr,
              size_t errstr_len)
{
    ASSERT(redis && prefix && dead_entry_id_is_valid(id));
    char key[CTL_KEY_BYTES];
    dead_key(prefix, key);
    const char *xdel[3] = {"XDEL", key, id};
    redisReply *reply =
        ctl_redis_query(redis, "deleting the dead letter", 3, xdel, NULL, errstr, errstr_len);
    if (!reply)
        return -1;
    int rc = 0;
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        snprintf(errstr, errstr_len, "no dead letter %s in %s", id, key);
        rc = -1;
    }
    freeReplyObject(reply);
    return rc;
}

/* NULL (every letter) matches every letter. */
static bool reason_matches(const struct dead_letter *d, const char *reason)
{
    if (reason == NULL)
        return true;
    size_t n = strlen(reason);
    return d->reason.present && d->reason.len >= n && memcmp(d->reason.bytes, reason, n) == 0;
}

/* The newest dead letter's ID into `last` ("" when there is none): a run
 * stops there, so that letters the worker adds meanwhile (a retried job
 * refused again) are not retried twice in one run. */
static int newest_letter(redisContext *redis, const char *prefix, char last[DEAD_ID_BYTES],
                         char *errstr, size_t errstr_len)
{
    last[0] = '\0';
    redisReply *reply = dead_read_range(redis, prefix, true, "+", "-", 1, errstr, errstr_len);
    if (!reply)
        return -1;
    struct dead_letter d;
    if (reply->elements == 1 && dead_letter_parse(reply->element[0], &d))
        snprintf(last, DEAD_ID_BYTES, "%s", d.id);
    freeReplyObject(reply);
    return 0;
}

int dead_retry_matching(redisContext *redis, const char *prefix, const char *reason, bool force,
                        dead_retry_each_fn *each, void *arg, long long counts[2], char *errstr,
                        size_t errstr_len)
{
    ASSERT(redis && prefix && each && counts && errstr);
    ASSERT(reason == NULL || reason[0] != '\0');
    counts[0] = counts[1] = 0;
    char last[DEAD_ID_BYTES];
    if (newest_letter(redis, prefix, last, errstr, errstr_len) != 0)
        return -1;
    if (last[0] == '\0')
        return 0;
    /* Pages through P:dead oldest first up to `last`, retrying what matches. */
    char from[DEAD_ID_BYTES + 1] = "-";
    for (;;) {
        redisReply *reply = dead_read_range(redis, prefix, false, from, last,
                                            DEAD_RETRY_PAGE_LETTERS, errstr, errstr_len);
        if (!reply)
            return -1;
        size_t n = reply->elements;
        for (size_t i = 0; i < n; i++) {
            struct dead_letter d;
            if (!dead_letter_parse(reply->element[i], &d))
                continue;
            snprintf(from, sizeof from, "(%s", d.id);
            if (!reason_matches(&d, reason))
                continue;
            struct dead_retried retried;
            char why[CTL_ERRSTR_BYTES];
            bool ok = dead_retry(redis, prefix, &d, force, &retried, why, sizeof why) == 0;
            counts[ok ? 0 : 1]++;
            if (!each(arg, &d, ok ? &retried : NULL, ok ? NULL : why)) {
                freeReplyObject(reply);
                return 0;
            }
        }
        freeReplyObject(reply);
        if (n < DEAD_RETRY_PAGE_LETTERS)
            return 0;
    }
}

/* ------------------------------------------------------------------------ */
/* The subcommands retry and drop                                           */
/* ------------------------------------------------------------------------ */

static void print_retried(const struct dead_letter *d, const struct dead_retried *r, bool json)
{
    const char *job_id = r->job_id[0] ? r->job_id : NULL;
    if (json) {
        struct json j;
        json_init(&j, stdout);
        json_object_begin(&j, NULL);
        json_str(&j, "retried", d->id);
        json_str(&j, "job", job_id);
        json_str(&j, "stream", r->stream);
        json_str(&j, "entry", r->entry);
        json_object_end(&j);
        json_finish(&j);
        return;
    }
    char safe[TABLE_CELL_BUF_BYTES];
    table_safe_cell(job_id ? job_id : "(undecodable)", safe);
    printf("retried dead letter %s: job %s re-enqueued on %s as entry %s; dead letter "
           "deleted\n",
           d->id, safe, r->stream, r->entry);
}

/* What `dead retry` retries: one entry, or many (--reason, --all). */
struct retry_selection {
    const char *id;     /* one: its ID */
    const char *reason; /* many: letters whose reason starts with it; NULL with --all */
    bool all;
    bool force;
    bool json;
};

/* Whether the arguments ask for many letters (--all, --reason) rather
 * than one ENTRY_ID: the positional is required only for one. */
static bool selects_many(int argc, char **argv)
{
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--all") == 0 || strncmp(argv[i], "--reason", 8) == 0)
            return true;
    return false;
}

/* What a many-letter run prints for each letter it tried. */
struct retry_printer {
    const struct ctl *ctl;
    struct json *j; /* --json: the entries array is open */
};

static bool print_each_retry(void *arg, const struct dead_letter *d,
                             const struct dead_retried *retried, const char *why)
{
    struct retry_printer *p = arg;
    if (!retried) {
        ctl_failure(p->ctl, "%s", why);
        return true;
    }
    if (!p->j)
        return true;
    json_object_begin(p->j, NULL);
    json_str(p->j, "retried", d->id);
    json_str(p->j, "job", retried->job_id[0] ? retried->job_id : NULL);
    json_str(p->j, "stream", retried->stream);
    json_str(p->j, "entry", retried->entry);
    json_object_end(p->j);
    return true;
}

/* dead retry --reason TEXT | --all: every letter selected, with a summary;
 * exit 1 when any of them was refused (each refusal says why on stderr). */
static int retry_many(struct ctl *ctl, redisContext *redis, const struct retry_selection *sel)
{
    const char *prefix = ctl->config.prefix;
    char last[DEAD_ID_BYTES];
    long long counts[2] = {0, 0}; /* retried, refused */
    if (newest_letter(redis, prefix, last, ctl->errstr, sizeof ctl->errstr) != 0)
        return ctl_failure(ctl, "%s", ctl->errstr);
    if (last[0] == '\0') {
        puts(sel->json ? "{\"retried\":0,\"refused\":0,\"entries\":[]}"
                       : "no dead letters: nothing to retry");
        return CTL_OK;
    }
    struct json j;
    if (sel->json) {
        json_init(&j, stdout);
        json_object_begin(&j, NULL);
        json_array_begin(&j, "entries");
    }
    struct retry_printer printer = {ctl, sel->json ? &j : NULL};
    int rc = CTL_OK;
    if (dead_retry_matching(redis, prefix, sel->all ? NULL : sel->reason, sel->force,
                            print_each_retry, &printer, counts, ctl->errstr,
                            sizeof ctl->errstr) != 0)
        rc = ctl_failure(ctl, "%s", ctl->errstr);
    if (sel->json) {
        json_array_end(&j);
        json_int(&j, "retried", counts[0]);
        json_int(&j, "refused", counts[1]);
        json_object_end(&j);
        json_finish(&j);
    } else {
        char safe[TABLE_CELL_BUF_BYTES];
        table_safe_cell(sel->all ? "" : sel->reason, safe);
        printf("retried %lld dead letter%s%s%s%s; %lld refused%s\n", counts[0],
               counts[0] == 1 ? "" : "s", sel->all ? "" : " whose reason starts with '",
               sel->all ? "" : safe, sel->all ? "" : "'", counts[1],
               counts[1] > 0 ? " (each says why above)" : "");
    }
    return rc != CTL_OK || counts[1] > 0 ? CTL_FAIL : CTL_OK;
}

static int retry_one(struct ctl *ctl, redisContext *redis, const struct retry_selection *sel)
{
    redisReply *reply = NULL;
    struct dead_letter d;
    struct dead_retried retried;
    const char *prefix = ctl->config.prefix;
    if (dead_read_one(redis, prefix, sel->id, &reply, &d, ctl->errstr, sizeof ctl->errstr) != 0)
        return ctl_failure(ctl, "%s", ctl->errstr);
    int rc = CTL_OK;
    if (dead_retry(redis, prefix, &d, sel->force, &retried, ctl->errstr, sizeof ctl->errstr) != 0)
        rc = ctl_failure(ctl, "%s", ctl->errstr);
    else
        print_retried(&d, &retried, sel->json);
    freeReplyObject(reply);
    return rc;
}

/* dead retry ENTRY_ID | --reason TEXT | --all [--force] [--json] */
static int cmd_dead_retry(struct ctl *ctl, int argc, char **argv)
{
    struct retry_selection sel = {0};
    const struct opt opts[] = {{"force", NULL, &sel.force, false},
                               {"all", NULL, &sel.all, false},
                               {"reason", &sel.reason, NULL, false},
                               CTL_OPT_JSON(sel.json),
                               CTL_OPT_END};
    bool many = selects_many(argc, argv);
    const char *const none[] = {NULL};
    int rc = many ? ctl_parse_args(ctl, argc, argv, opts, none, NULL)
                  : parse_entry_arg(ctl, argc, argv, opts, &sel.id);
    if (rc != CTL_CONTINUE)
        return rc;
    if (sel.all && sel.reason)
        return ctl_usage_error(ctl, "--all and --reason select differently: give one");
    if (sel.reason && sel.reason[0] == '\0')
        return ctl_usage_error(ctl, "--reason needs the text a reason starts with (or --all)");
    redisContext *redis = NULL;
    rc = ctl_redis_open(ctl, &redis);
    if (rc == CTL_OK)
        rc = many ? retry_many(ctl, redis, &sel) : retry_one(ctl, redis, &sel);
    redisFree(redis);
    return rc;
}

/* dead drop ENTRY_ID [--json] */
static int cmd_dead_drop(struct ctl *ctl, int argc, char **argv)
{
    bool json = false;
    const struct opt opts[] = {CTL_OPT_JSON(json), CTL_OPT_END};
    const char *id = NULL;
    int rc = parse_entry_arg(ctl, argc, argv, opts, &id);
    if (rc != CTL_CONTINUE)
        return rc;
    redisContext *redis = NULL;
    rc = ctl_redis_open(ctl, &redis);
    if (rc != CTL_OK)
        return rc;
    if (dead_drop(redis, ctl->config.prefix, id, ctl->errstr, sizeof ctl->errstr) != 0)
        rc = ctl_failure(ctl, "%s", ctl->errstr);
    else if (json)
        printf("{\"dropped\":\"%s\"}\n", id); /* an entry ID: digits and '-' */
    else
        printf("dropped dead letter %s\n", id);
    redisFree(redis);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The command                                                              */
/* ------------------------------------------------------------------------ */

/* Help texts keep their own layout. */
/* clang-format off */
static const struct command dead_subcommands[] = {
    {"list", "list dead letters, newest first", "dead list [--limit N] [--json]",
     "Lists the newest dead letters of {prefix}:dead: their entry ID, the stream\n"
     "and entry the message came from, the reason, and the job decoded with the\n"
     "worker's own rules (or, when the bytes are no valid job, why not, their\n"
     "length and the hex of the first bytes).\n\n"
     "  --limit N     how many, 1 to 1000 (default 50)\n" CTL_JSON_HELP,
     dead_list},
    {"show", "print one dead letter in full", "dead show ENTRY_ID [--json]",
     "Prints one dead letter: its fields, the decoded job, and its bytes in hex.\n"
     "Exit 1 when there is no such entry.\n\n" CTL_JSON_HELP,
     dead_show},
    {"retry", "re-enqueue dead letters' jobs on their streams, then delete them",
     "dead retry ENTRY_ID | --reason TEXT | --all [--force] [--json]",
     "Adds the dead letter's original job bytes to the stream it came from (one of\n"
     "{prefix}:jobs:consume|purchase|allocate; any other is refused) and deletes\n"
     "the dead letter, atomically (one Lua script in Redis: the dead letter is\n"
     "deleted only when its job was added). The job gets a new stream entry ID;\n"
     "its job ID is unchanged, so a job that was decided after all is a replay.\n"
     "Refused (exit 1) when the worker would reject the bytes again (not a valid\n"
     "job, or a job of another stream's type) unless --force, and always when the\n"
     "dead letter holds only the first 4096 bytes of a longer job.\n\n"
     "With --reason or --all, every dead letter selected, oldest first, up to the\n"
     "newest one when the run started; each refused one says why on stderr, a\n"
     "summary follows, and the exit status is 1 when any was refused.\n\n"
     "  --reason TEXT every dead letter whose reason starts with TEXT\n"
     "                (e.g. 'database error 42501', 'invalid_job', 'delivered')\n"
     "  --all         every dead letter\n"
     "  --force       re-enqueue bytes the worker would reject again\n" CTL_JSON_HELP,
     cmd_dead_retry},
    {"drop", "delete a dead letter", "dead drop ENTRY_ID [--json]",
     "Deletes one dead letter (XDEL). Exit 1 when there is no such entry.\n\n" CTL_JSON_HELP,
     cmd_dead_drop},
};
/* clang-format on */

static int cmd_dead(struct ctl *ctl, int argc, char **argv)
{
    return ctl_run_subcommand(ctl, dead_subcommands,
                              sizeof dead_subcommands / sizeof dead_subcommands[0], argc, argv);
}

/* clang-format off */
const struct command dead_command = {
    "dead", "list, show, retry or drop dead letters",
    "dead list [--limit N] [--json]\n"
    "       creditsctl dead show ENTRY_ID [--json]\n"
    "       creditsctl dead retry ENTRY_ID | --reason TEXT | --all [--force] [--json]\n"
    "       creditsctl dead drop ENTRY_ID [--json]",
    "The dead-letter stream {prefix}:dead holds the messages the worker could not\n"
    "decide (not a job, id_conflict, wrong_stream, a job the database refused).\n\n"
    "  list    list them, newest first, jobs decoded\n"
    "  show    print one in full\n"
    "  retry   re-enqueue one (or many) on the job stream it came from, and delete it\n"
    "  drop    delete one\n\n"
    "'creditsctl dead SUBCOMMAND --help' describes each.\n",
    cmd_dead};
/* clang-format on */
