/*
 * console_api.c -- the console's JSON API (console_api.h). Each handler
 * checks its parameters, reads what it shows through the CLI's own
 * functions (admin.h for PostgreSQL, deadletters.h for dead letters, the
 * codec for results) and writes one document; an error replaces the
 * document with {"error": "..."}.
 */
#include "worker/ctl/console_api.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/codec.h"
#include "queue/keys.h"
#include "worker/ctl/admin.h"
#include "worker/ctl/console_text.h"
#include "worker/ctl/deadletters.h"
#include "worker/ctl/enqueue.h"
#include "worker/ctl/event_view.h"
#include "worker/ctl/json_out.h"

#ifndef CREDITS_VERSION
#define CREDITS_VERSION "dev"
#endif

/* A reason as typed into the filter, a job ID, an entry ID. */
#define PARAM_TEXT_BYTES_MAX 256
/* Dead letters one XREVRANGE of a page's scan reads: a page of 25 found
 * in one round trip when most match, a reply of at most ~1 MiB (4 KiB jobs). */
#define DEAD_SCAN_STEP 200
/* Bytes of a readiness answer shown ("not ok: postgres not connected"). */
#define READY_TEXT_BYTES_MAX 200

/* One call being answered. */
struct console_call {
    struct console_api *api;
    const char *query;
    struct console_outcome *outcome;
    FILE *out; /* the document, into text/len */
    char *text;
    size_t len;
    struct json j;
    char *errstr; /* outcome->error */
    size_t errstr_len;
};

/* ------------------------------------------------------------------------ */
/* Answers                                                                  */
/* ------------------------------------------------------------------------ */

/* Fails the call: `status` with a message for people. Returns status. */
__attribute__((format(printf, 3, 4))) static int fail(struct console_call *c, int status,
                                                      const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    vsnprintf(c->errstr, c->errstr_len, format, ap);
    va_end(ap);
    return status;
}

static void open_document(struct console_call *c)
{
    c->text = NULL;
    c->len = 0;
    c->out = open_memstream(&c->text, &c->len);
    ASSERT(c->out != NULL);
    json_init_script_safe(&c->j, c->out);
}

/* Closes the document into the outcome. */
static void close_document(struct console_call *c)
{
    ASSERT(fclose(c->out) == 0);
    c->outcome->body = c->text;
    c->outcome->body_len = c->len;
}

static void set_what(struct console_call *c, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static void set_what(struct console_call *c, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    vsnprintf(c->outcome->what, sizeof c->outcome->what, format, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                               */
/* ------------------------------------------------------------------------ */

/* Text without control bytes (a reason, a pack ID): what a filter or an ID
 * may hold. */
static bool is_plain_text(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7F)
            return false;
    return true;
}

/* Parameter `name` into out: 1 present, 0 absent, or an error status. */
static int param_text(struct console_call *c, const char *name, char *out, size_t out_len)
{
    int rc = console_query_param(c->query, name, out, out_len);
    if (rc < 0)
        return fail(c, 400, "the parameter %s is longer than %zu bytes", name, out_len - 1);
    if (rc == 1 && (!is_plain_text(out) || !job_text_is_valid(out, strlen(out))))
        return fail(c, 400, "the parameter %s must be text without control characters", name);
    return rc;
}

/* A required ID (the contract's ID rule: a user, a job). 0 or a status. */
static int param_id(struct console_call *c, const char *name, char out[JOB_ID_BYTES_MAX + 1])
{
    char text[PARAM_TEXT_BYTES_MAX + 1];
    int rc = param_text(c, name, text, sizeof text);
    if (rc > 1)
        return rc;
    if (rc == 0)
        return fail(c, 400, "the parameter %s is missing", name);
    if (!job_id_is_valid(text, strlen(text)))
        return fail(c, 400,
                    "the parameter %s must be 1 to 128 printable ASCII characters, no spaces",
                    name);
    memcpy(out, text, strlen(text) + 1);
    return 0;
}

/* An optional whole number in [min, max]: *present says whether given. */
static int param_int(struct console_call *c, const char *name, int64_t min, int64_t max,
                     int64_t *out, bool *present)
{
    char text[24];
    int rc = console_query_param(c->query, name, text, sizeof text);
    *present = rc == 1 && text[0] != '\0';
    if (rc < 0 || (*present && !opt_int64(name, text, min, max, out, &(struct opt_error){0})))
        return fail(c, 400, "the parameter %s must be a whole number from %" PRId64 " to %" PRId64,
                    name, min, max);
    return 0;
}

/* An optional flag: "1" or "true" (anything else, or absent, is false). */
static bool param_flag(struct console_call *c, const char *name)
{
    char text[8];
    return console_query_param(c->query, name, text, sizeof text) == 1 &&
           (strcmp(text, "1") == 0 || strcmp(text, "true") == 0);
}

/* A required dead-letter entry ID. */
static int param_entry(struct console_call *c, const char *name, char out[DEAD_ID_BYTES])
{
    char text[DEAD_ID_BYTES];
    int rc = console_query_param(c->query, name, text, sizeof text);
    if (rc != 1 || !dead_entry_id_is_valid(text))
        return fail(c, 400, "the parameter %s must be a stream entry ID like 1764000000000-0",
                    name);
    memcpy(out, text, strlen(text) + 1);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

static redisContext *redis_of(struct console_call *c)
{
    struct console_api *api = c->api;
    if (!api->redis)
        api->redis = ctl_redis_connect(&api->config->redis, c->errstr, c->errstr_len);
    return api->redis;
}

/* A command whose error reply is a failure: the reply, or NULL (errstr). */
static redisReply *run(struct console_call *c, const char *what, int argc, const char **argv)
{
    redisContext *redis = redis_of(c);
    return redis ? ctl_redis_query(redis, what, argc, argv, NULL, c->errstr, c->errstr_len) : NULL;
}

/* A command whose error reply the caller reads (a missing key, NOGROUP):
 * NULL only when there is no connection (errstr). */
static redisReply *run_raw(struct console_call *c, const char *what, int argc, const char **argv)
{
    redisContext *redis = redis_of(c);
    if (!redis)
        return NULL;
    redisReply *reply = redisCommandArgv(redis, argc, argv, NULL);
    if (!reply)
        snprintf(c->errstr, c->errstr_len, "%s: Redis: %s", what,
                 redis->errstr[0] ? redis->errstr : "connection lost");
    return reply;
}

static PGconn *pg_of(struct console_call *c)
{
    struct console_api *api = c->api;
    if (api->pg)
        return api->pg;
    api->pg = admin_connect(api->config->database_url, true, c->errstr, c->errstr_len);
    /* Read-only unless actions are on: a bug here cannot write either. */
    if (api->pg && !api->actions &&
        admin_command(api->pg, "SET default_transaction_read_only = on", c->errstr,
                      c->errstr_len) != 0) {
        PQfinish(api->pg);
        api->pg = NULL;
    }
    return api->pg;
}

/* ------------------------------------------------------------------------ */
/* Redis replies                                                            */
/* ------------------------------------------------------------------------ */

/* The value after `name` in a flat [name, value, ...] array; NULL if none. */
static const redisReply *flat_get(const redisReply *r, const char *name)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0)
            return r->element[i + 1];
    }
    return NULL;
}

/* An integer reply, or a string of digits; `fallback` otherwise. */
static int64_t int_of(const redisReply *r, int64_t fallback)
{
    if (r && r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r && r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < 20) {
        char *end = NULL;
        long long v = strtoll(r->str, &end, 10);
        if (*end == '\0')
            return v;
    }
    return fallback;
}

static void json_reply_str(struct json *j, const char *key, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_STRING)
        json_strn(j, key, r->str, r->len);
    else
        json_null(j, key);
}

/* The milliseconds of an entry ID "ms-seq"; -1 when it is not one. */
static int64_t entry_ms(const char *id, size_t len)
{
    int64_t ms = 0;
    size_t i = 0;
    for (; i < len && id[i] != '-'; i++) {
        if (id[i] < '0' || id[i] > '9' || i >= 18)
            return -1;
        ms = ms * 10 + (id[i] - '0');
    }
    return i > 0 ? ms : -1;
}

/* Redis's clock in Unix ms (the clock of the entry IDs). */
static int redis_now_ms(struct console_call *c, int64_t *now_ms)
{
    const char *argv[1] = {"TIME"};
    redisReply *r = run(c, "reading the time", 1, argv);
    if (!r)
        return 502;
    bool ok = r->type == REDIS_REPLY_ARRAY && r->elements == 2;
    *now_ms = ok ? int_of(r->element[0], 0) * 1000 + int_of(r->element[1], 0) / 1000 : 0;
    freeReplyObject(r);
    return ok ? 0 : fail(c, 502, "TIME: an unexpected reply");
}

/* The value of field `name` of a stream entry [id, [f, v, ...]]. */
static const redisReply *entry_field(const redisReply *e, const char *name)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
        return NULL;
    const redisReply *v = flat_get(e->element[1], name);
    return v && v->type == REDIS_REPLY_STRING ? v : NULL;
}

static bool entry_id_of(const redisReply *e, const redisReply **id)
{
    *id = e->type == REDIS_REPLY_ARRAY && e->elements == 2 ? e->element[0] : NULL;
    return *id && (*id)->type == REDIS_REPLY_STRING;
}

/* XREVRANGE key + - COUNT n: the reply (an array), or NULL (errstr). */
static redisReply *newest_entries(struct console_call *c, const char *key, int n)
{
    char count[16];
    snprintf(count, sizeof count, "%d", n);
    const char *argv[6] = {"XREVRANGE", key, "+", "-", "COUNT", count};
    redisReply *r = run(c, "reading a stream", 6, argv);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        fail(c, 502, "%s is not a stream", key);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Whether `key` is a stream (false when it does not exist). */
static int key_is_stream(struct console_call *c, const char *key, bool *is_stream)
{
    const char *argv[2] = {"TYPE", key};
    redisReply *r = run(c, "reading a key's type", 2, argv);
    if (!r)
        return 502;
    *is_stream = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "stream") == 0;
    freeReplyObject(r);
    return 0;
}

static int stream_length(struct console_call *c, const char *key, int64_t *len)
{
    const char *argv[2] = {"XLEN", key};
    redisReply *r = run(c, "reading a stream's length", 2, argv);
    if (!r)
        return 502;
    *len = int_of(r, 0);
    freeReplyObject(r);
    return 0;
}

/* A result entry's `result` decoded, or its bytes in hex. */
static void json_result_entry(struct json *j, const redisReply *e)
{
    const redisReply *id = NULL;
    if (!entry_id_of(e, &id))
        return;
    const redisReply *bytes = entry_field(e, "result");
    struct result r;
    json_object_begin(j, NULL);
    json_strn(j, "entry", id->str, id->len);
    if (bytes && codec_decode_result(bytes->str, bytes->len, &r) == 0) {
        enqueue_result_json(j, "result", &r);
    } else {
        json_null(j, "result");
        json_int(j, "bytes", bytes ? (int64_t)bytes->len : 0);
    }
    json_object_end(j);
}

/* An entry of P:events as `creditsctl events --json` writes it: the event
 * decoded with the worker's codec, or said to be none, with its bytes in
 * hex. */
static void json_event_entry(struct json *j, const redisReply *e)
{
    const redisReply *id = NULL;
    if (!entry_id_of(e, &id))
        return;
    const redisReply *bytes = entry_field(e, "event");
    struct event_view view;
    event_view_read(&view, id->str, id->len, bytes ? bytes->str : NULL, bytes ? bytes->len : 0,
                    bytes != NULL);
    event_view_json(j, NULL, &view);
}

/* ------------------------------------------------------------------------ */
/* GET /api/overview                                                        */
/* ------------------------------------------------------------------------ */

static void json_consumers(struct json *j, const redisReply *r)
{
    json_array_begin(j, "consumers");
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        if (i == CONSOLE_CONSUMERS_MAX)
            break;
        const redisReply *c = r->element[i];
        json_object_begin(j, NULL);
        json_reply_str(j, "name", flat_get(c, "name"));
        json_int(j, "pending", int_of(flat_get(c, "pending"), 0));
        json_int(j, "idle_ms", int_of(flat_get(c, "idle"), 0));
        json_object_end(j);
    }
    json_array_end(j);
    json_bool(j, "consumers_truncated",
              r && r->type == REDIS_REPLY_ARRAY && r->elements > CONSOLE_CONSUMERS_MAX);
}

/* The group's part of a job stream: pending entries (XPENDING's count),
 * the oldest one and its age, the consumers and their idle time. */
static int json_group(struct console_call *c, const char *key, int64_t now_ms)
{
    const char *group = c->api->config->group;
    const char *pending_argv[3] = {"XPENDING", key, group};
    redisReply *p = run_raw(c, "reading the pending entries", 3, pending_argv);
    if (!p)
        return 502;
    if (p->type == REDIS_REPLY_ERROR) {
        /* NOGROUP: no worker ever read the stream. */
        bool no_group = strncmp(p->str, "NOGROUP", 7) == 0;
        if (no_group)
            json_bool(&c->j, "group", false);
        else
            fail(c, 502, "reading the pending entries: Redis: %s", p->str);
        freeReplyObject(p);
        return no_group ? 0 : 502;
    }
    const char *consumers_argv[4] = {"XINFO", "CONSUMERS", key, group};
    redisReply *cons = run(c, "reading the consumers", 4, consumers_argv);
    if (!cons) {
        freeReplyObject(p);
        return 502;
    }
    bool summary = p->type == REDIS_REPLY_ARRAY && p->elements == 4;
    const redisReply *oldest = summary ? p->element[1] : NULL;
    int64_t oldest_ms =
        oldest && oldest->type == REDIS_REPLY_STRING ? entry_ms(oldest->str, oldest->len) : -1;
    json_bool(&c->j, "group", true);
    json_int(&c->j, "pending", summary ? int_of(p->element[0], 0) : 0);
    json_reply_str(&c->j, "oldest_pending", oldest);
    if (oldest_ms >= 0)
        json_int(&c->j, "oldest_pending_age_ms", now_ms > oldest_ms ? now_ms - oldest_ms : 0);
    else
        json_null(&c->j, "oldest_pending_age_ms");
    json_consumers(&c->j, cons->type == REDIS_REPLY_ARRAY ? cons : NULL);
    freeReplyObject(p);
    freeReplyObject(cons);
    return 0;
}

static int json_job_stream(struct console_call *c, enum job_stream s, int64_t now_ms)
{
    char key[KEYS_BYTES_MAX];
    keys_stream(c->api->config->prefix, s, key, sizeof key);
    bool exists = false;
    int64_t len = 0;
    int rc = key_is_stream(c, key, &exists);
    if (rc == 0 && exists)
        rc = stream_length(c, key, &len);
    if (rc != 0)
        return rc;
    json_object_begin(&c->j, NULL);
    json_str(&c->j, "name", job_stream_name(s));
    json_str(&c->j, "key", key);
    json_bool(&c->j, "exists", exists);
    json_int(&c->j, "length", len);
    if (exists)
        rc = json_group(c, key, now_ms);
    json_object_end(&c->j);
    return rc;
}

/* Dead letters counted by reason among the newest CONSOLE_SCAN_MAX. */
struct reason_count {
    const char *reason; /* borrowed from the reply */
    size_t len;
    int64_t count;
    const char *newest; /* the newest letter's ID */
};

static void json_dead_reasons(struct json *j, const redisReply *letters)
{
    struct reason_count counts[CONSOLE_REASONS_MAX];
    size_t n = 0;
    int64_t other = 0;
    for (size_t i = 0; i < letters->elements; i++) {
        struct dead_letter d;
        if (!dead_letter_parse(letters->element[i], &d))
            continue;
        const char *reason = d.reason.present ? d.reason.bytes : "";
        size_t len = d.reason.present ? d.reason.len : 0;
        size_t k = 0;
        while (k < n && !(counts[k].len == len && memcmp(counts[k].reason, reason, len) == 0))
            k++;
        if (k == n && n == CONSOLE_REASONS_MAX) {
            other++;
            continue;
        }
        if (k == n)
            counts[n++] =
                (struct reason_count){reason, len, 0, letters->element[i]->element[0]->str};
        counts[k].count++;
    }
    json_array_begin(j, "reasons");
    for (size_t k = 0; k < n; k++) {
        json_object_begin(j, NULL);
        json_strn(j, "reason", counts[k].reason, counts[k].len);
        json_int(j, "count", counts[k].count);
        json_str(j, "newest", counts[k].newest);
        json_object_end(j);
    }
    json_array_end(j);
    json_int(j, "other_reasons", other);
}

static int json_dead_summary(struct console_call *c)
{
    char key[KEYS_BYTES_MAX];
    keys_dead(c->api->config->prefix, key, sizeof key);
    int64_t len = 0;
    if (stream_length(c, key, &len) != 0)
        return 502;
    redisReply *letters = newest_entries(c, key, CONSOLE_SCAN_MAX);
    if (!letters)
        return 502;
    json_object_begin(&c->j, "dead");
    json_str(&c->j, "key", key);
    json_int(&c->j, "length", len);
    json_int(&c->j, "scanned", (int64_t)letters->elements);
    json_dead_reasons(&c->j, letters);
    json_object_end(&c->j);
    freeReplyObject(letters);
    return 0;
}

static int json_recent_results(struct console_call *c)
{
    char key[KEYS_BYTES_MAX];
    keys_results(c->api->config->prefix, key, sizeof key);
    int64_t len = 0;
    if (stream_length(c, key, &len) != 0)
        return 502;
    redisReply *r = newest_entries(c, key, CONSOLE_RECENT_MAX);
    if (!r)
        return 502;
    json_object_begin(&c->j, "results");
    json_str(&c->j, "key", key);
    json_int(&c->j, "length", len);
    json_array_begin(&c->j, "newest");
    for (size_t i = 0; i < r->elements; i++)
        json_result_entry(&c->j, r->element[i]);
    json_array_end(&c->j);
    json_object_end(&c->j);
    freeReplyObject(r);
    return 0;
}

/* P:events, when the worker writes it (contract 9.8): absent before. */
static int json_recent_events(struct console_call *c)
{
    char key[KEYS_BYTES_MAX];
    keys_events(c->api->config->prefix, key, sizeof key);
    bool exists = false;
    int64_t len = 0;
    if (key_is_stream(c, key, &exists) != 0 || (exists && stream_length(c, key, &len) != 0))
        return 502;
    redisReply *r = exists ? newest_entries(c, key, CONSOLE_RECENT_MAX) : NULL;
    if (exists && !r)
        return 502;
    json_object_begin(&c->j, "events");
    json_str(&c->j, "key", key);
    json_bool(&c->j, "exists", exists);
    json_int(&c->j, "length", len);
    json_array_begin(&c->j, "newest");
    for (size_t i = 0; r && i < r->elements; i++)
        json_event_entry(&c->j, r->element[i]);
    json_array_end(&c->j);
    json_object_end(&c->j);
    freeReplyObject(r);
    return 0;
}

static int api_overview(struct console_call *c)
{
    int64_t now_ms = 0;
    int rc = redis_now_ms(c, &now_ms);
    if (rc != 0)
        return rc;
    json_object_begin(&c->j, NULL);
    json_str(&c->j, "prefix", c->api->config->prefix);
    json_str(&c->j, "group", c->api->config->group);
    json_int(&c->j, "now_ms", now_ms);
    json_array_begin(&c->j, "streams");
    for (unsigned s = 0; s < JOB_STREAM_COUNT && rc == 0; s++)
        rc = json_job_stream(c, (enum job_stream)s, now_ms);
    json_array_end(&c->j);
    if (rc == 0)
        rc = json_dead_summary(c);
    if (rc == 0)
        rc = json_recent_results(c);
    if (rc == 0)
        rc = json_recent_events(c);
    json_object_end(&c->j);
    return rc == 0 ? 200 : rc;
}

/* ------------------------------------------------------------------------ */
/* GET /api/workers                                                         */
/* ------------------------------------------------------------------------ */

static void json_ready(struct json *j, const struct console_worker *w)
{
    struct console_answer a;
    char errstr[CTL_ERRSTR_BYTES];
    json_object_begin(j, "ready");
    if (console_probe_get(w, "/readyz", &a, errstr, sizeof errstr) != 0) {
        json_str(j, "error", errstr);
    } else {
        size_t n = a.body_len;
        while (n > 0 && (a.body[n - 1] == '\n' || a.body[n - 1] == '\r'))
            n--;
        json_int(j, "status", a.status);
        json_bool(j, "ready", a.status == 200);
        json_strn(j, "text", a.body, n < READY_TEXT_BYTES_MAX ? n : READY_TEXT_BYTES_MAX);
        free(a.body);
    }
    json_object_end(j);
}

static void json_metrics(struct json *j, const struct console_worker *w)
{
    struct console_answer a;
    char errstr[CTL_ERRSTR_BYTES];
    if (console_probe_get(w, "/metrics", &a, errstr, sizeof errstr) != 0) {
        json_str(j, "metrics_error", errstr);
        return;
    }
    if (a.status != 200) {
        json_str(j, "metrics_error", "/metrics did not answer 200");
        free(a.body);
        return;
    }
    json_array_begin(j, "metrics");
    int shown = 0;
    for (const char *line = a.body; *line && shown < CONSOLE_METRICS_MAX;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        struct console_metric m;
        if (console_metric_parse(line, len, &m)) {
            json_object_begin(j, NULL);
            json_str(j, "name", m.name);
            json_str(j, "labels", m.labels);
            json_str(j, "value", m.value);
            json_object_end(j);
            shown++;
        }
        line = eol ? eol + 1 : line + len;
    }
    json_array_end(j);
    free(a.body);
}

static int api_workers(struct console_call *c)
{
    json_object_begin(&c->j, NULL);
    json_array_begin(&c->j, "workers");
    for (size_t i = 0; i < c->api->worker_count; i++) {
        const struct console_worker *w = &c->api->workers[i];
        json_object_begin(&c->j, NULL);
        json_str(&c->j, "url", w->url);
        json_ready(&c->j, w);
        json_metrics(&c->j, w);
        json_object_end(&c->j);
    }
    json_array_end(&c->j);
    json_object_end(&c->j);
    return 200;
}

/* ------------------------------------------------------------------------ */
/* GET /api/dead, /api/dead/one                                             */
/* ------------------------------------------------------------------------ */

/* What a page of dead letters shows. */
struct dead_filter {
    char stream[KEYS_BYTES_MAX]; /* the full key; "" for every stream */
    char reason[PARAM_TEXT_BYTES_MAX + 1];
    char end[DEAD_ID_BYTES + 2];   /* XREVRANGE's first bound: "+", "(id" or "ms" */
    char start[DEAD_ID_BYTES + 2]; /* its last: "-" or "ms" */
    int64_t limit;
};

static int dead_filter_read(struct console_call *c, struct dead_filter *f)
{
    memset(f, 0, sizeof *f);
    char name[16];
    int rc = param_text(c, "stream", name, sizeof name);
    if (rc > 1)
        return rc;
    if (rc == 1 && name[0]) {
        bool known = false;
        for (unsigned s = 0; s < JOB_STREAM_COUNT; s++) {
            if (strcmp(name, job_stream_name((enum job_stream)s)) == 0) {
                keys_stream(c->api->config->prefix, (enum job_stream)s, f->stream,
                            sizeof f->stream);
                known = true;
            }
        }
        if (!known)
            return fail(c, 400, "the parameter stream must be consume, purchase or allocate");
    }
    rc = param_text(c, "reason", f->reason, sizeof f->reason);
    if (rc > 1)
        return rc;
    int64_t from = 0, to = 0;
    bool has_from = false, has_to = false, has_limit = false;
    if ((rc = param_int(c, "from", 0, INT64_MAX / 2, &from, &has_from)) != 0 ||
        (rc = param_int(c, "to", 0, INT64_MAX / 2, &to, &has_to)) != 0 ||
        (rc = param_int(c, "limit", 1, CONSOLE_PAGE_MAX, &f->limit, &has_limit)) != 0)
        return rc;
    if (!has_limit)
        f->limit = CONSOLE_DEAD_PAGE_DEFAULT;
    char before[DEAD_ID_BYTES] = "";
    rc = console_query_param(c->query, "before", before, sizeof before);
    if (rc < 0 || (rc == 1 && before[0] && !dead_entry_id_is_valid(before)))
        return fail(c, 400, "the parameter before must be a stream entry ID like 1764000000000-0");
    if (before[0])
        snprintf(f->end, sizeof f->end, "(%s", before);
    else if (has_to)
        snprintf(f->end, sizeof f->end, "%" PRId64, to);
    else
        snprintf(f->end, sizeof f->end, "+");
    if (has_from)
        snprintf(f->start, sizeof f->start, "%" PRId64, from);
    else
        snprintf(f->start, sizeof f->start, "-");
    return 0;
}

static bool letter_matches(const struct dead_letter *d, const struct dead_filter *f)
{
    size_t sn = strlen(f->stream), rn = strlen(f->reason);
    if (sn &&
        !(d->stream.present && d->stream.len == sn && memcmp(d->stream.bytes, f->stream, sn) == 0))
        return false;
    return !rn || (d->reason.present && d->reason.len >= rn &&
                   memcmp(d->reason.bytes, f->reason, rn) == 0);
}

/* Pages through the dead letters newest first from the filter's bounds,
 * writing those that match, until `limit` are written or
 * CONSOLE_SCAN_MAX were read. */
static int write_dead_page(struct console_call *c, const struct dead_filter *f, redisContext *redis)
{
    const char *prefix = c->api->config->prefix;
    char end[DEAD_ID_BYTES + 2];
    memcpy(end, f->end, sizeof end);
    int64_t shown = 0, scanned = 0;
    char next[DEAD_ID_BYTES] = "";
    bool exhausted = false;
    json_array_begin(&c->j, "letters");
    while (shown < f->limit && scanned < CONSOLE_SCAN_MAX && !exhausted) {
        int64_t left = CONSOLE_SCAN_MAX - scanned;
        int64_t want = left < DEAD_SCAN_STEP ? left : DEAD_SCAN_STEP;
        redisReply *r =
            dead_read_range(redis, prefix, true, end, f->start, want, c->errstr, c->errstr_len);
        if (!r) {
            json_array_end(&c->j);
            return 502;
        }
        exhausted = (int64_t)r->elements < want;
        size_t i = 0;
        for (; i < r->elements && shown < f->limit; i++) {
            struct dead_letter d;
            scanned++;
            if (!dead_letter_parse(r->element[i], &d))
                continue;
            snprintf(next, sizeof next, "%s", d.id);
            snprintf(end, sizeof end, "(%s", d.id);
            if (!letter_matches(&d, f))
                continue;
            dead_letter_json(&c->j, NULL, &d, JOB_BYTES_MAX);
            shown++;
        }
        /* Letters left unread in this reply: the next page starts after the last shown. */
        if (i < r->elements)
            exhausted = false;
        freeReplyObject(r);
    }
    json_array_end(&c->j);
    json_int(&c->j, "scanned", scanned);
    if (exhausted || !next[0])
        json_null(&c->j, "next");
    else
        json_str(&c->j, "next", next);
    return 0;
}

static int api_dead(struct console_call *c)
{
    struct dead_filter f;
    int rc = dead_filter_read(c, &f);
    if (rc != 0)
        return rc;
    redisContext *redis = redis_of(c);
    long long total = 0;
    if (!redis || dead_count(redis, c->api->config->prefix, &total, c->errstr, c->errstr_len) != 0)
        return 502;
    json_object_begin(&c->j, NULL);
    json_int(&c->j, "total", total);
    rc = write_dead_page(c, &f, redis);
    json_object_end(&c->j);
    return rc == 0 ? 200 : rc;
}

/* The letter `id`: 0 with *reply to free, or a status (404 when none). */
static int read_letter(struct console_call *c, const char *id, redisReply **reply,
                       struct dead_letter *d)
{
    redisContext *redis = redis_of(c);
    if (!redis)
        return 502;
    if (dead_read_one(redis, c->api->config->prefix, id, reply, d, c->errstr, c->errstr_len) == 0)
        return 0;
    return redis->err ? 502 : 404;
}

static int api_dead_one(struct console_call *c)
{
    char id[DEAD_ID_BYTES];
    redisReply *reply = NULL;
    struct dead_letter d;
    int rc = param_entry(c, "id", id);
    if (rc == 0)
        rc = read_letter(c, id, &reply, &d);
    if (rc != 0)
        return rc;
    json_object_begin(&c->j, NULL);
    dead_letter_json(&c->j, "letter", &d, JOB_BYTES_MAX);
    json_object_end(&c->j);
    freeReplyObject(reply);
    return 200;
}

/* ------------------------------------------------------------------------ */
/* POST /api/dead/retry, /api/dead/drop, /api/dead/retry-reason             */
/* ------------------------------------------------------------------------ */

static void json_retried(struct json *j, const struct dead_letter *d, const struct dead_retried *r)
{
    json_str(j, "retried", d->id);
    json_str(j, "job", r->job_id[0] ? r->job_id : NULL);
    json_str(j, "stream", r->stream);
    json_str(j, "entry", r->entry);
}

static int api_dead_retry(struct console_call *c)
{
    char id[DEAD_ID_BYTES];
    int rc = param_entry(c, "id", id);
    if (rc != 0)
        return rc;
    bool force = param_flag(c, "force");
    set_what(c, "dead letter %s%s", id, force ? " (forced)" : "");
    redisReply *reply = NULL;
    struct dead_letter d;
    if ((rc = read_letter(c, id, &reply, &d)) != 0)
        return rc;
    struct dead_retried retried;
    if (dead_retry(c->api->redis, c->api->config->prefix, &d, force, &retried, c->errstr,
                   c->errstr_len) != 0) {
        freeReplyObject(reply);
        return c->api->redis->err ? 502 : 409;
    }
    json_object_begin(&c->j, NULL);
    json_retried(&c->j, &d, &retried);
    json_object_end(&c->j);
    set_what(c, "dead letter %s%s: job %s re-enqueued as %s", id, force ? " (forced)" : "",
             retried.job_id[0] ? retried.job_id : "(undecodable)", retried.entry);
    freeReplyObject(reply);
    return 200;
}

static int api_dead_drop(struct console_call *c)
{
    char id[DEAD_ID_BYTES];
    int rc = param_entry(c, "id", id);
    if (rc != 0)
        return rc;
    set_what(c, "dead letter %s", id);
    redisContext *redis = redis_of(c);
    if (!redis)
        return 502;
    if (dead_drop(redis, c->api->config->prefix, id, c->errstr, c->errstr_len) != 0)
        return redis->err ? 502 : 404;
    json_object_begin(&c->j, NULL);
    json_str(&c->j, "dropped", id);
    json_object_end(&c->j);
    return 200;
}

/* A many-letter retry's listing. */
struct retry_listing {
    struct json *j;
    long long tried;
    long long listed;
    bool stopped; /* CONSOLE_RETRY_MANY_MAX reached */
};

static bool list_each_retry(void *arg, const struct dead_letter *d,
                            const struct dead_retried *retried, const char *why)
{
    struct retry_listing *l = arg;
    if (l->listed < CONSOLE_RETRY_LISTED_MAX) {
        json_object_begin(l->j, NULL);
        json_str(l->j, "id", d->id);
        json_bool(l->j, "ok", retried != NULL);
        if (retried)
            json_retried(l->j, d, retried);
        else
            json_str(l->j, "why", why);
        json_object_end(l->j);
        l->listed++;
    }
    l->stopped = ++l->tried >= CONSOLE_RETRY_MANY_MAX;
    return !l->stopped;
}

static int api_dead_retry_reason(struct console_call *c)
{
    char reason[PARAM_TEXT_BYTES_MAX + 1];
    int rc = param_text(c, "reason", reason, sizeof reason);
    if (rc > 1)
        return rc;
    if (rc == 0 || reason[0] == '\0')
        return fail(c, 400, "the parameter reason is missing: the text the reasons start with");
    set_what(c, "dead letters whose reason starts with '%s'", reason);
    redisContext *redis = redis_of(c);
    if (!redis)
        return 502;
    long long counts[2] = {0, 0};
    json_object_begin(&c->j, NULL);
    json_str(&c->j, "reason", reason);
    json_array_begin(&c->j, "entries");
    struct retry_listing listing = {&c->j, 0, 0, false};
    rc = dead_retry_matching(redis, c->api->config->prefix, reason, false, list_each_retry,
                             &listing, counts, c->errstr, c->errstr_len);
    json_array_end(&c->j);
    json_int(&c->j, "retried", counts[0]);
    json_int(&c->j, "refused", counts[1]);
    json_bool(&c->j, "stopped", listing.stopped);
    json_object_end(&c->j);
    set_what(c, "dead letters whose reason starts with '%s': %lld retried, %lld refused%s", reason,
             counts[0], counts[1], listing.stopped ? ", more left" : "");
    return rc == 0 ? 200 : 502;
}

/* ------------------------------------------------------------------------ */
/* GET /api/user, /api/history                                              */
/* ------------------------------------------------------------------------ */

static int api_user(struct console_call *c)
{
    char user[JOB_ID_BYTES_MAX + 1];
    int rc = param_id(c, "user", user);
    if (rc != 0)
        return rc;
    PGconn *pg = pg_of(c);
    struct admin_balance b;
    if (!pg || admin_balance_read(pg, user, &b, c->errstr, c->errstr_len) != 0)
        return 503;
    json_object_begin(&c->j, NULL);
    admin_balance_json(&c->j, "balance", user, &b);
    admin_balance_free(&b);
    json_object_end(&c->j);
    return 200;
}

/* The parameters of a page of a user's rows: user, limit, before. */
struct user_page {
    char user[JOB_ID_BYTES_MAX + 1];
    int64_t limit;
    int64_t before; /* INT64_MAX: from the newest */
};

static int user_page_read(struct console_call *c, int64_t limit_default, struct user_page *p)
{
    bool has_limit = false, has_before = false;
    p->limit = limit_default;
    p->before = INT64_MAX;
    int rc = param_id(c, "user", p->user);
    if (rc == 0)
        rc = param_int(c, "limit", 1, CONSOLE_PAGE_MAX, &p->limit, &has_limit);
    if (rc == 0)
        rc = param_int(c, "before", 1, INT64_MAX, &p->before, &has_before);
    if (rc == 0 && !has_limit)
        p->limit = limit_default;
    return rc;
}

/* The rows of a page read with one row more than `limit` (res, freed
 * here): at most `limit` under `key`; then "next", the cursor (column 0)
 * of the last one shown when there are more, or null. */
static void json_page(struct console_call *c, const char *key, PGresult *res, int64_t limit)
{
    int rows = PQntuples(res), shown = rows > limit ? (int)limit : rows;
    json_array_begin(&c->j, key);
    for (int r = 0; r < shown; r++) {
        json_object_begin(&c->j, NULL);
        admin_json_members(&c->j, res, r, 0);
        json_object_end(&c->j);
    }
    json_array_end(&c->j);
    if (rows > shown)
        json_number_text(&c->j, "next", PQgetvalue(res, shown - 1, 0));
    else
        json_null(&c->j, "next");
    PQclear(res);
}

static int api_history(struct console_call *c)
{
    struct user_page p;
    int rc = user_page_read(c, CONSOLE_HISTORY_PAGE_DEFAULT, &p);
    if (rc != 0)
        return rc;
    bool per_lot = param_flag(c, "per_lot");
    PGconn *pg = pg_of(c);
    /* One line more than shown says whether there is a next page. */
    PGresult *res = pg ? admin_history_read(pg, p.user, (int)p.limit + 1, per_lot, p.before,
                                            c->errstr, c->errstr_len)
                       : NULL;
    if (!res)
        return 503;
    json_object_begin(&c->j, NULL);
    json_str(&c->j, "user", p.user);
    json_bool(&c->j, "per_lot", per_lot);
    json_page(c, "lines", res, p.limit);
    json_object_end(&c->j);
    return 200;
}

/* GET /api/events?user=U[&limit=N][&before=EVENT_ID]: a page of the
 * user's events in credits.events, newest first. */
static int api_events(struct console_call *c)
{
    struct user_page p;
    int rc = user_page_read(c, CONSOLE_EVENTS_PAGE_DEFAULT, &p);
    if (rc != 0)
        return rc;
    PGconn *pg = pg_of(c);
    PGresult *res =
        pg ? admin_events_read(pg, p.user, (int)p.limit + 1, p.before, c->errstr, c->errstr_len)
           : NULL;
    if (!res)
        return 503;
    json_object_begin(&c->j, NULL);
    json_str(&c->j, "user", p.user);
    json_page(c, "events", res, p.limit);
    json_object_end(&c->j);
    return 200;
}

/* ------------------------------------------------------------------------ */
/* GET /api/job                                                             */
/* ------------------------------------------------------------------------ */

/* The stored decision: its row, and its result decoded. */
static void json_decision(struct json *j, const PGresult *decision)
{
    if (PQntuples(decision) != 1) {
        json_null(j, "decision");
        return;
    }
    json_object_begin(j, "decision");
    admin_json_members(j, decision, 0, 1);
    size_t len = 0;
    unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(decision, 0, 0), &len);
    struct result r;
    if (bytes && codec_decode_result(bytes, len, &r) == 0)
        enqueue_result_json(j, "result", &r);
    else
        json_null(j, "result");
    PQfreemem(bytes);
    json_object_end(j);
}

/* A key's remaining life in ms: -2 when it does not exist, -1 forever. */
static int key_ttl(struct console_call *c, const char *key, int64_t *ttl_ms)
{
    const char *argv[2] = {"PTTL", key};
    redisReply *r = run(c, "reading a key's time to live", 2, argv);
    if (!r)
        return 502;
    *ttl_ms = int_of(r, -2);
    freeReplyObject(r);
    return 0;
}

/* P:result:{id} and P:reply:{id}. */
static int json_result_keys(struct console_call *c, const char *id)
{
    const char *prefix = c->api->config->prefix;
    char result_key[KEYS_BYTES_MAX], reply_key[KEYS_BYTES_MAX];
    keys_result(prefix, id, result_key, sizeof result_key);
    keys_reply(prefix, id, reply_key, sizeof reply_key);
    const char *get[2] = {"GET", result_key}, *llen[2] = {"LLEN", reply_key};
    int64_t result_ttl = -2, reply_ttl = -2;
    redisReply *value = run(c, "reading the result", 2, get);
    redisReply *waiting = value ? run(c, "reading the reply list", 2, llen) : NULL;
    int rc = waiting ? key_ttl(c, result_key, &result_ttl) : 502;
    if (rc == 0)
        rc = key_ttl(c, reply_key, &reply_ttl);
    if (rc == 0) {
        struct result r;
        json_str(&c->j, "result_key", result_key);
        if (value->type == REDIS_REPLY_STRING &&
            codec_decode_result(value->str, value->len, &r) == 0)
            enqueue_result_json(&c->j, "result", &r);
        else
            json_null(&c->j, "result");
        json_int(&c->j, "result_ttl_ms", result_ttl);
        json_str(&c->j, "reply_key", reply_key);
        json_int(&c->j, "reply_waiting", int_of(waiting, 0));
        json_int(&c->j, "reply_ttl_ms", reply_ttl);
    }
    freeReplyObject(value);
    freeReplyObject(waiting);
    return rc;
}

/* Where the job's result went in P:results: the entries of it among the
 * newest CONSOLE_SCAN_MAX, and how many were replays. */
static int json_results_seen(struct console_call *c, const char *id)
{
    char key[KEYS_BYTES_MAX];
    keys_results(c->api->config->prefix, key, sizeof key);
    redisReply *r = newest_entries(c, key, CONSOLE_SCAN_MAX);
    if (!r)
        return 502;
    int64_t seen = 0, replays = 0;
    json_str(&c->j, "results_key", key);
    json_int(&c->j, "results_scanned", (int64_t)r->elements);
    json_array_begin(&c->j, "results_entries");
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *entry = NULL, *bytes = entry_field(r->element[i], "result");
        struct result res;
        if (!bytes || !entry_id_of(r->element[i], &entry) ||
            codec_decode_result(bytes->str, bytes->len, &res) != 0 || !res.has_id ||
            strcmp(res.id, id) != 0)
            continue;
        if (seen++ < CONSOLE_RECENT_MAX) {
            json_object_begin(&c->j, NULL);
            json_strn(&c->j, "entry", entry->str, entry->len);
            json_str(&c->j, "status", res.error == JOB_OK ? "applied" : "rejected");
            json_bool(&c->j, "replayed", res.replayed);
            json_object_end(&c->j);
        }
        replays += res.replayed;
    }
    json_array_end(&c->j);
    json_int(&c->j, "results_seen", seen);
    json_int(&c->j, "replays_seen", replays);
    freeReplyObject(r);
    return 0;
}

/* The dead letters of the job among the newest CONSOLE_SCAN_MAX. */
static int json_dead_seen(struct console_call *c, const char *id)
{
    char key[KEYS_BYTES_MAX];
    keys_dead(c->api->config->prefix, key, sizeof key);
    redisReply *r = newest_entries(c, key, CONSOLE_SCAN_MAX);
    if (!r)
        return 502;
    json_str(&c->j, "dead_key", key);
    json_int(&c->j, "dead_scanned", (int64_t)r->elements);
    json_array_begin(&c->j, "dead_letters");
    int shown = 0;
    for (size_t i = 0; i < r->elements && shown < CONSOLE_RECENT_MAX; i++) {
        struct dead_letter d;
        struct result identity;
        bool reply = false;
        if (!dead_letter_parse(r->element[i], &d) || !d.job.present)
            continue;
        memset(&identity, 0, sizeof identity);
        codec_decode_identity(d.job.bytes, d.job.len, &identity, &reply);
        if (!identity.has_id || strcmp(identity.id, id) != 0)
            continue;
        json_object_begin(&c->j, NULL);
        json_str(&c->j, "id", d.id);
        if (d.reason.present)
            json_strn(&c->j, "reason", d.reason.bytes, d.reason.len);
        else
            json_null(&c->j, "reason");
        json_object_end(&c->j);
        shown++;
    }
    json_array_end(&c->j);
    freeReplyObject(r);
    return 0;
}

static int api_job(struct console_call *c)
{
    char id[JOB_ID_BYTES_MAX + 1];
    int rc = param_id(c, "id", id);
    if (rc != 0)
        return rc;
    PGconn *pg = pg_of(c);
    struct admin_job job;
    if (!pg || admin_job_read(pg, id, &job, c->errstr, c->errstr_len) != 0)
        return 503;
    json_object_begin(&c->j, NULL);
    json_str(&c->j, "id", id);
    json_bool(&c->j, "stored", PQntuples(job.decision) == 1);
    json_decision(&c->j, job.decision);
    admin_json_rows(&c->j, "entries", job.entries, 0);
    admin_json_rows(&c->j, "given_back", job.given_back, 0);
    admin_json_rows(&c->j, "lots", job.lots, 0);
    admin_json_rows(&c->j, "holds", job.holds, 0);
    admin_json_rows(&c->j, "events", job.events, 0);
    admin_job_free(&job);
    json_object_begin(&c->j, "redis");
    rc = json_result_keys(c, id);
    if (rc == 0)
        rc = json_results_seen(c, id);
    if (rc == 0)
        rc = json_dead_seen(c, id);
    json_object_end(&c->j);
    json_object_end(&c->j);
    return rc == 0 ? 200 : rc;
}

/* ------------------------------------------------------------------------ */
/* GET /api/catalog, POST /api/plan, /api/pack                              */
/* ------------------------------------------------------------------------ */

static int api_catalog(struct console_call *c)
{
    PGconn *pg = pg_of(c);
    PGresult *plans = pg ? admin_catalog_read(pg, true, c->errstr, c->errstr_len) : NULL;
    PGresult *packs = plans ? admin_catalog_read(pg, false, c->errstr, c->errstr_len) : NULL;
    if (packs) {
        json_object_begin(&c->j, NULL);
        admin_json_rows(&c->j, "plans", plans, 0);
        admin_json_rows(&c->j, "packs", packs, 0);
        json_bool(&c->j, "truncated",
                  PQntuples(plans) >= ADMIN_ROWS_MAX || PQntuples(packs) >= ADMIN_ROWS_MAX);
        json_object_end(&c->j);
    }
    PQclear(plans);
    PQclear(packs);
    return packs ? 200 : 503;
}

/* The catalog ID parameter `name`: 1 to 64 bytes of plain text. */
static int param_catalog_id(struct console_call *c, const char *name, char out[65])
{
    int rc = param_text(c, name, out, 65);
    if (rc > 1)
        return rc;
    return rc == 1 && out[0] ? 0 : fail(c, 400, "the parameter %s is missing", name);
}

/* An upsert's answer: its row under `key`, or the database's refusal
 * (409: a constraint or a privilege; 503: no database). */
static int answer_upsert(struct console_call *c, PGconn *pg, PGresult *row, const char *key)
{
    if (!row)
        return pg && PQstatus(pg) == CONNECTION_OK ? 409 : 503;
    json_object_begin(&c->j, NULL);
    json_object_begin(&c->j, key);
    admin_json_members(&c->j, row, 0, 0);
    json_object_end(&c->j);
    json_object_end(&c->j);
    PQclear(row);
    return 200;
}

/* POST /api/plan?plan=ID&monthly=N[&cap=N][&low_balance=N]: the whole
 * plan, as `plan set` writes it (no low_balance: no threshold). */
static int api_plan_set(struct console_call *c)
{
    char id[65];
    struct admin_plan plan = {0};
    bool has_monthly = false;
    int rc = param_catalog_id(c, "plan", id);
    if (rc == 0)
        rc = param_int(c, "monthly", INT64_MIN, INT64_MAX, &plan.monthly, &has_monthly);
    if (rc == 0)
        rc = param_int(c, "cap", INT64_MIN, INT64_MAX, &plan.cap, &plan.has_cap);
    if (rc == 0)
        rc = param_int(c, "low_balance", 1, ADMIN_LOW_BALANCE_MAX, &plan.low_balance,
                       &plan.has_low_balance);
    if (rc == 0 && !has_monthly)
        rc = fail(c, 400, "the parameter monthly is missing");
    if (rc != 0)
        return rc;
    char cap[32] = "", low[40] = "";
    if (plan.has_cap)
        snprintf(cap, sizeof cap, " cap=%" PRId64, plan.cap);
    if (plan.has_low_balance)
        snprintf(low, sizeof low, " low_balance=%" PRId64, plan.low_balance);
    set_what(c, "plan %s monthly=%" PRId64 "%s%s", id, plan.monthly, cap, low);
    PGconn *pg = pg_of(c);
    PGresult *row = pg ? admin_plan_upsert(pg, id, &plan, c->errstr, c->errstr_len) : NULL;
    return answer_upsert(c, pg, row, "plan");
}

static int api_pack_set(struct console_call *c)
{
    char pack[65];
    int64_t credits = 0, days = ADMIN_PACK_VALID_DAYS_DEFAULT;
    bool has_credits = false, has_days = false;
    int rc = param_catalog_id(c, "pack", pack);
    if (rc == 0)
        rc = param_int(c, "credits", INT64_MIN, INT64_MAX, &credits, &has_credits);
    if (rc == 0)
        rc = param_int(c, "valid_days", INT64_MIN, INT64_MAX, &days, &has_days);
    if (rc == 0 && !has_credits)
        rc = fail(c, 400, "the parameter credits is missing");
    if (rc != 0)
        return rc;
    if (!has_days)
        days = ADMIN_PACK_VALID_DAYS_DEFAULT;
    set_what(c, "pack %s credits=%" PRId64 " valid_days=%" PRId64, pack, credits, days);
    PGconn *pg = pg_of(c);
    PGresult *row =
        pg ? admin_pack_upsert(pg, pack, credits, days, c->errstr, c->errstr_len) : NULL;
    return answer_upsert(c, pg, row, "pack");
}

/* ------------------------------------------------------------------------ */
/* GET /api/config                                                          */
/* ------------------------------------------------------------------------ */

static void write_boot(const struct console_api *api, struct json *j)
{
    json_object_begin(j, NULL);
    json_str(j, "prefix", api->config->prefix);
    json_str(j, "group", api->config->group);
    json_bool(j, "actions", api->actions);
    json_bool(j, "token_for_reads", api->token_for_reads);
    json_str(j, "listen", api->listen);
    json_str(j, "version", CREDITS_VERSION);
    json_int(j, "scan_max", CONSOLE_SCAN_MAX);
    json_int(j, "page_max", CONSOLE_PAGE_MAX);
    json_array_begin(j, "workers");
    for (size_t i = 0; i < api->worker_count; i++)
        json_str(j, NULL, api->workers[i].url);
    json_array_end(j);
    json_object_end(j);
}

static int api_config(struct console_call *c)
{
    write_boot(c->api, &c->j);
    return 200;
}

void console_api_boot_json(const struct console_api *api, FILE *out)
{
    ASSERT(api && out);
    struct json j;
    json_init_script_safe(&j, out);
    write_boot(api, &j);
}

/* ------------------------------------------------------------------------ */
/* Routes                                                                   */
/* ------------------------------------------------------------------------ */

static const struct console_route routes[] = {
    {"/api/config", CONSOLE_ROUTE_READ, "config", api_config},
    {"/api/overview", CONSOLE_ROUTE_READ, "overview", api_overview},
    {"/api/workers", CONSOLE_ROUTE_READ, "workers", api_workers},
    {"/api/dead", CONSOLE_ROUTE_READ, "dead", api_dead},
    {"/api/dead/one", CONSOLE_ROUTE_READ, "dead_one", api_dead_one},
    {"/api/dead/retry", CONSOLE_ROUTE_ACTION, "dead_retry", api_dead_retry},
    {"/api/dead/drop", CONSOLE_ROUTE_ACTION, "dead_drop", api_dead_drop},
    {"/api/dead/retry-reason", CONSOLE_ROUTE_ACTION, "dead_retry_reason", api_dead_retry_reason},
    {"/api/user", CONSOLE_ROUTE_READ, "user", api_user},
    {"/api/history", CONSOLE_ROUTE_READ, "history", api_history},
    {"/api/events", CONSOLE_ROUTE_READ, "events", api_events},
    {"/api/job", CONSOLE_ROUTE_READ, "job", api_job},
    {"/api/catalog", CONSOLE_ROUTE_READ, "catalog", api_catalog},
    {"/api/plan", CONSOLE_ROUTE_ACTION, "plan_set", api_plan_set},
    {"/api/pack", CONSOLE_ROUTE_ACTION, "pack_set", api_pack_set},
};

const struct console_route *console_api_route(const char *path)
{
    ASSERT(path != NULL);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(routes[i].path, path) == 0)
            return &routes[i];
    return NULL;
}

/* Drops a connection that broke during the call: the next one reconnects. */
static void drop_broken(struct console_api *api)
{
    if (api->redis && api->redis->err) {
        redisFree(api->redis);
        api->redis = NULL;
    }
    if (api->pg && PQstatus(api->pg) != CONNECTION_OK) {
        PQfinish(api->pg);
        api->pg = NULL;
    }
}

void console_api_call(struct console_api *api, const struct console_route *route, const char *query,
                      struct console_outcome *outcome)
{
    ASSERT(api && route && query && outcome);
    memset(outcome, 0, sizeof *outcome);
    struct console_call c = {.api = api,
                             .query = query,
                             .outcome = outcome,
                             .errstr = outcome->error,
                             .errstr_len = sizeof outcome->error};
    open_document(&c);
    int status = console_query_is_valid(query)
                     ? route->handle(&c)
                     : fail(&c, 400,
                            "the query string is malformed (name=value pairs, names of "
                            "a-z and _, each once, values percent-encoded)");
    drop_broken(api);
    if (status != 200) {
        /* The partial document is dropped for the error's. */
        fclose(c.out);
        free(c.text);
        if (!outcome->error[0])
            snprintf(outcome->error, sizeof outcome->error, "failed (status %d)", status);
        open_document(&c);
        json_object_begin(&c.j, NULL);
        json_str(&c.j, "error", outcome->error);
        json_object_end(&c.j);
    } else {
        outcome->error[0] = '\0';
    }
    json_finish(&c.j);
    outcome->status = status;
    close_document(&c);
}

void console_api_close(struct console_api *api)
{
    redisFree(api->redis);
    api->redis = NULL;
    PQfinish(api->pg);
    api->pg = NULL;
}
