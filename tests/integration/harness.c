/*
 * harness.c -- the shared helpers of the C integration suites (harness.h).
 *
 * Moved out of test_worker.c so that test_worker.c and test_faults.c use one
 * copy: worker processes (fork/execve, stopped by PID), the Redis and
 * PostgreSQL connections, job encoding and sending, bounded waits, and the
 * SQL invariant checks.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

redisContext *R;
PGconn *PG;
const char *BUILD_DIR;
char LOG_DIR[64];
char LAST_LOG[256];
char STEP[300];

const char *const STREAMS[3] = {"consume", "purchase", "allocate"};

static int LOG_SEQ;
static pid_t WORKERS[WORKERS_MAX];
static int REDIS_PORT;

/* ---------------------------------------------------------------------------
 * Checks and small things
 * ------------------------------------------------------------------------- */

void step(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    vsnprintf(STEP, sizeof STEP, format, ap);
    va_end(ap);
}

/* A formatted string in one of a ring of buffers (valid for the next 31 calls). */
const char *fmt(const char *format, ...)
{
    static char ring[32][512];
    static unsigned next;
    char *out = ring[next++ % 32];
    va_list ap;
    va_start(ap, format);
    vsnprintf(out, sizeof ring[0], format, ap);
    va_end(ap);
    return out;
}

int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

const char *err_name(enum job_error e)
{
    return e == JOB_OK ? "applied" : job_error_name(e);
}

int compare_entry_ids(const char *a, const char *b)
{
    unsigned long long ams = 0, aseq = 0, bms = 0, bseq = 0;
    sscanf(a, "%llu-%llu", &ams, &aseq);
    sscanf(b, "%llu-%llu", &bms, &bseq);
    if (ams != bms)
        return ams < bms ? -1 : 1;
    return aseq < bseq ? -1 : aseq > bseq;
}

/* ---------------------------------------------------------------------------
 * Redis
 * ------------------------------------------------------------------------- */

redisReply *redis_argv(int argc, const char **argv, const size_t *lens)
{
    redisReply *reply = redisCommandArgv(R, argc, argv, lens);
    CHECK(reply != NULL, "redis %s: %s", argv[0], R->errstr);
    return reply;
}

/* A command of NUL-terminated arguments, NULL-terminated list. */
redisReply *redis_cmd(const char *arg0, ...)
{
    const char *argv[32];
    size_t lens[32];
    int argc = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a != NULL && argc < 32; a = va_arg(ap, const char *)) {
        argv[argc] = a;
        lens[argc++] = strlen(a);
    }
    va_end(ap);
    return redis_argv(argc, argv, lens);
}

void redis_ok(redisReply *reply)
{
    CHECK(reply->type != REDIS_REPLY_ERROR, "redis error: %s", reply->str);
    freeReplyObject(reply);
}

long long redis_int(redisReply *reply)
{
    CHECK(reply->type == REDIS_REPLY_INTEGER, "expected an integer reply, got type %d (%s)",
          reply->type, reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    long long v = reply->integer;
    freeReplyObject(reply);
    return v;
}

const char *key(const char *prefix, const char *suffix)
{
    return fmt("%s:%s", prefix, suffix);
}

const char *stream_key(const char *prefix, const char *stream)
{
    return fmt("%s:jobs:%s", prefix, stream);
}

/* The value of `name` in a flat [name, value, ...] reply, or NULL. */
const redisReply *kv_get(const redisReply *arr, const char *name)
{
    if (arr == NULL || arr->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < arr->elements; i += 2) {
        const redisReply *k = arr->element[i];
        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) &&
            strcmp(k->str, name) == 0)
            return arr->element[i + 1];
    }
    return NULL;
}

void xadd_raw(const char *prefix, const char *stream, const char *field, const void *data,
              size_t len, char *entry_out)
{
    const char *argv[5] = {"XADD", stream_key(prefix, stream), "*", field, data};
    size_t lens[5] = {4, strlen(argv[1]), 1, strlen(field), len};
    redisReply *reply = redis_argv(5, argv, lens);
    CHECK(reply->type == REDIS_REPLY_STRING, "XADD failed: %s",
          reply->type == REDIS_REPLY_ERROR ? reply->str : "?");
    if (entry_out != NULL)
        snprintf(entry_out, 64, "%s", reply->str);
    freeReplyObject(reply);
}

void pending_count_each(const char *prefix, const char *group, long long out[3])
{
    for (int s = 0; s < 3; s++) {
        redisReply *reply = redis_cmd("XPENDING", stream_key(prefix, STREAMS[s]), group, NULL);
        CHECK(reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                  reply->element[0]->type == REDIS_REPLY_INTEGER,
              "XPENDING %s: unexpected reply (type %d, %s)", STREAMS[s], reply->type,
              reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        out[s] = reply->element[0]->integer;
        freeReplyObject(reply);
    }
}

long long pending_total(const char *prefix, const char *group)
{
    long long each[3];
    pending_count_each(prefix, group, each);
    return each[0] + each[1] + each[2];
}

/* Whether the group has delivered every entry of the stream and none is
 * pending: then every result of it has been published (ack comes after). */
bool stream_drained(const char *prefix, const char *stream, const char *group)
{
    const char *sk = stream_key(prefix, stream);
    redisReply *info = redis_cmd("XINFO", "STREAM", sk, NULL);
    bool ok = false;
    char last_generated[64] = "";
    const redisReply *lg = kv_get(info, "last-generated-id");
    if (info->type == REDIS_REPLY_ARRAY && lg != NULL && lg->type == REDIS_REPLY_STRING)
        snprintf(last_generated, sizeof last_generated, "%s", lg->str);
    freeReplyObject(info);
    if (last_generated[0] == '\0')
        return false;
    redisReply *groups = redis_cmd("XINFO", "GROUPS", sk, NULL);
    if (groups->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < groups->elements; i++) {
            const redisReply *g = groups->element[i];
            const redisReply *name = kv_get(g, "name");
            const redisReply *delivered = kv_get(g, "last-delivered-id");
            const redisReply *pending = kv_get(g, "pending");
            if (name == NULL || delivered == NULL || pending == NULL ||
                strcmp(name->str, group) != 0)
                continue;
            ok = strcmp(delivered->str, last_generated) == 0 && pending->integer == 0;
        }
    }
    freeReplyObject(groups);
    return ok;
}

bool drained(const char *prefix, const char *group)
{
    for (int s = 0; s < 3; s++)
        if (!stream_drained(prefix, STREAMS[s], group))
            return false;
    return true;
}

/* Waits until every entry of the three job streams was delivered to the
 * group and acknowledged. */
void wait_drained_within(const char *prefix, const char *group, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (!drained(prefix, group)) {
        CHECK(mono_ms() < deadline, "the worker did not drain %s:jobs:* (group %s) in %d ms",
              prefix, group, timeout_ms);
        sleep_ms(POLL_MS);
    }
}

void wait_drained_group(const char *prefix, const char *group)
{
    wait_drained_within(prefix, group, WAIT_MS);
}

void wait_drained(const char *prefix)
{
    wait_drained_group(prefix, DEFAULT_GROUP);
}

bool group_exists(const char *prefix, const char *stream, const char *group)
{
    redisReply *groups = redis_cmd("XINFO", "GROUPS", stream_key(prefix, stream), NULL);
    bool found = false;
    if (groups->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < groups->elements; i++) {
            const redisReply *name = kv_get(groups->element[i], "name");
            if (name != NULL && strcmp(name->str, group) == 0)
                found = true;
        }
    freeReplyObject(groups);
    return found;
}

/* Waits until `consumer` has read the consume stream once (it is then inside
 * its event loop, with its signal handlers installed). */
void wait_consumer(const char *prefix, const char *group, const char *consumer)
{
    int64_t deadline = mono_ms() + WAIT_MS;
    for (;;) {
        bool found = false;
        redisReply *reply =
            redis_cmd("XINFO", "CONSUMERS", stream_key(prefix, "consume"), group, NULL);
        if (reply->type == REDIS_REPLY_ARRAY)
            for (size_t i = 0; i < reply->elements; i++) {
                const redisReply *name = kv_get(reply->element[i], "name");
                if (name != NULL && strcmp(name->str, consumer) == 0)
                    found = true;
            }
        freeReplyObject(reply);
        if (found)
            return;
        CHECK(mono_ms() < deadline, "consumer %s never read %s:jobs:consume", consumer, prefix);
        sleep_ms(POLL_MS);
    }
}

void create_groups(const char *P)
{
    for (int s = 0; s < 3; s++)
        redis_ok(redis_cmd("XGROUP", "CREATE", stream_key(P, STREAMS[s]), DEFAULT_GROUP, "0",
                           "MKSTREAM", NULL));
}

/* Delivers the new entries of the consume stream to `consumer` (not acked). */
void read_as(const char *P, const char *consumer)
{
    redisReply *reply = redis_cmd("XREADGROUP", "GROUP", DEFAULT_GROUP, consumer, "COUNT", "100",
                                  "STREAMS", stream_key(P, "consume"), ">", NULL);
    CHECK(reply->type == REDIS_REPLY_ARRAY, "XREADGROUP as %s", consumer);
    freeReplyObject(reply);
}

/* ---------------------------------------------------------------------------
 * Results and dead letters
 * ------------------------------------------------------------------------- */

void decode_result(const char *what, const void *data, size_t len, struct result *r)
{
    CHECK(codec_decode_result(data, len, r) == 0, "%s: %zu bytes are not a contract result", what,
          len);
}

/* GET P:result:{id}: false when there is no such key. */
bool result_get(const char *prefix, const char *id, struct result *r)
{
    redisReply *reply = redis_cmd("GET", key(prefix, fmt("result:%s", id)), NULL);
    if (reply->type == REDIS_REPLY_NIL) {
        freeReplyObject(reply);
        return false;
    }
    CHECK(reply->type == REDIS_REPLY_STRING, "GET result:%s: type %d", id, reply->type);
    decode_result(fmt("result:%s", id), reply->str, reply->len, r);
    freeReplyObject(reply);
    return true;
}

void result_must(const char *prefix, const char *id, struct result *r)
{
    CHECK(result_get(prefix, id, r), "no result key %s:result:%s", prefix, id);
}

bool key_exists(const char *k)
{
    return redis_int(redis_cmd("EXISTS", k, NULL)) == 1;
}

void expect_result(int line, const struct result *r, const char *id, enum job_error err,
                   bool replayed)
{
    CHECK(r->has_id && strcmp(r->id, id) == 0, "(line %d) result id: expected %s, got %s", line, id,
          r->has_id ? r->id : "(none)");
    CHECK(r->error == err, "(line %d) result of %s: expected %s, got %s (message: %s)", line, id,
          err_name(err), err_name(r->error), r->message);
    CHECK(r->replayed == replayed, "(line %d) result of %s: replayed expected %d, got %d", line, id,
          replayed, r->replayed);
    CHECK(r->done_at_ms > wall_ms() - 3600 * 1000 && r->done_at_ms <= wall_ms() + 60 * 1000,
          "(line %d) result of %s: done_at %" PRId64 " is not a recent time in ms", line, id,
          r->done_at_ms);
}

void expect_balance(int line, const struct result *r, int64_t total, int64_t pack, int64_t monthly)
{
    CHECK(r->balance.total == total && r->balance.pack == pack && r->balance.monthly == monthly,
          "(line %d) balance of %s: expected {%" PRId64 ",%" PRId64 ",%" PRId64 "}, got {%" PRId64
          ",%" PRId64 ",%" PRId64 "}",
          line, r->id, total, pack, monthly, r->balance.total, r->balance.pack, r->balance.monthly);
}

void expect_identity(const struct result *r, enum job_type type, const char *user)
{
    CHECK(r->has_type && r->type == type, "result of %s: type expected %s", r->id,
          job_type_name(type));
    CHECK(r->has_user && strcmp(r->user, user) == 0, "result of %s: user expected %s, got %s",
          r->id, user, r->has_user ? r->user : "(none)");
}

bool same_amounts(const struct result *a, const struct result *b)
{
    uint32_t carried = result_amounts_carried(a);
    if (carried != result_amounts_carried(b))
        return false;
    for (unsigned i = 0; i < RESULT_AMOUNT_COUNT; i++)
        if ((carried & RESULT_AMOUNT_BIT(i)) != 0 && a->amounts[i] != b->amounts[i])
            return false;
    return true;
}

void expect_same_decision(const struct result *a, const struct result *b)
{
    CHECK(a->error == b->error && same_amounts(a, b) && a->done_at_ms == b->done_at_ms &&
              a->balance.total == b->balance.total && a->balance.pack == b->balance.pack &&
              a->balance.monthly == b->balance.monthly && strcmp(a->id, b->id) == 0 &&
              strcmp(a->user, b->user) == 0 && a->type == b->type,
          "the replayed result of %s differs from the original decision", a->id);
}

/* Every entry of P:results, oldest first (malloc'd, *count of them). */
struct published *read_results(const char *prefix, size_t *count)
{
    redisReply *reply = redis_cmd("XRANGE", key(prefix, "results"), "-", "+", NULL);
    CHECK(reply->type == REDIS_REPLY_ARRAY, "XRANGE results: type %d", reply->type);
    struct published *out = calloc(reply->elements + 1, sizeof *out);
    CHECK(out != NULL, "out of memory");
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        CHECK(e->type == REDIS_REPLY_ARRAY && e->elements == 2, "malformed results entry");
        snprintf(out[i].entry, sizeof out[i].entry, "%s", e->element[0]->str);
        const redisReply *fields = e->element[1];
        out[i].field_count = (int)fields->elements;
        CHECK(fields->elements >= 2, "results entry %s has no field", out[i].entry);
        snprintf(out[i].field, sizeof out[i].field, "%s", fields->element[0]->str);
        const redisReply *value = kv_get(fields, "result");
        CHECK(value != NULL && value->type == REDIS_REPLY_STRING,
              "results entry %s has no field `result`", out[i].entry);
        CHECK(value->len <= sizeof out[i].raw, "result too long");
        memcpy(out[i].raw, value->str, value->len);
        out[i].raw_len = value->len;
        decode_result(fmt("results entry %s", out[i].entry), value->str, value->len, &out[i].r);
    }
    *count = reply->elements;
    freeReplyObject(reply);
    return out;
}

size_t count_results(const struct published *pub, size_t n, const char *id, enum job_error err)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += pub[i].r.has_id && strcmp(pub[i].r.id, id) == 0 && pub[i].r.error == err;
    return count;
}

long long xlen(const char *k)
{
    return redis_int(redis_cmd("XLEN", k, NULL));
}

struct dead *read_dead(const char *prefix, size_t *count)
{
    redisReply *reply = redis_cmd("XRANGE", key(prefix, "dead"), "-", "+", NULL);
    CHECK(reply->type == REDIS_REPLY_ARRAY, "XRANGE dead: type %d", reply->type);
    struct dead *out = calloc(reply->elements + 1, sizeof *out);
    CHECK(out != NULL, "out of memory");
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        CHECK(e->type == REDIS_REPLY_ARRAY && e->elements == 2, "malformed dead entry");
        struct dead *d = &out[i];
        snprintf(d->entry_id, sizeof d->entry_id, "%s", e->element[0]->str);
        const redisReply *f = e->element[1];
        d->field_count = (int)f->elements / 2;
        const redisReply *v;
        if ((v = kv_get(f, "stream")) != NULL)
            snprintf(d->stream, sizeof d->stream, "%s", v->str);
        if ((v = kv_get(f, "entry")) != NULL)
            snprintf(d->entry, sizeof d->entry, "%s", v->str);
        if ((v = kv_get(f, "reason")) != NULL)
            snprintf(d->reason, sizeof d->reason, "%s", v->str);
        d->job_bytes = -1;
        if ((v = kv_get(f, "job_bytes")) != NULL)
            d->job_bytes = strtoll(v->str, NULL, 10);
        if ((v = kv_get(f, "job_sha256")) != NULL)
            snprintf(d->job_sha256, sizeof d->job_sha256, "%s", v->str);
        if ((v = kv_get(f, "job")) != NULL) {
            d->has_job = true;
            CHECK(v->len <= sizeof d->job, "dead job too long");
            memcpy(d->job, v->str, v->len);
            d->job_len = v->len;
        }
    }
    *count = reply->elements;
    freeReplyObject(reply);
    return out;
}

/* The dead letter of entry `entry` of the job stream `stream` ("consume"...):
 * entry IDs are per stream, two streams may hold the same one. */
const struct dead *find_dead(const char *prefix, const struct dead *d, size_t n, const char *stream,
                             const char *entry)
{
    const char *full = stream_key(prefix, stream);
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].entry, entry) == 0 &&
            (strcmp(d[i].stream, full) == 0 || strcmp(d[i].stream, stream) == 0))
            return &d[i];
    return NULL;
}

/* The dead letter of the entry `entry` of `stream`: its four fields. */
void expect_dead(const char *prefix, const char *stream, const char *entry, const char *reason,
                 const void *job, size_t job_len)
{
    size_t n;
    struct dead *dead = read_dead(prefix, &n);
    const struct dead *d = find_dead(prefix, dead, n, stream, entry);
    CHECK(d != NULL, "no dead letter with stream %s (or '%s') and entry %s (%zu dead letters)",
          stream_key(prefix, stream), stream, entry, n);
    CHECK(d->reason[0] != '\0' && strstr(d->reason, reason) != NULL,
          "dead letter of %s: reason '%s' does not name %s", entry, d->reason, reason);
    if (job != NULL) {
        CHECK(d->has_job && d->job_len == job_len && memcmp(d->job, job, job_len) == 0,
              "dead letter of %s: field `job` is not the original %zu bytes (has %d, %zu bytes)",
              entry, job_len, d->has_job, d->job_len);
    }
    free(dead);
}

/* ---------------------------------------------------------------------------
 * Jobs
 * ------------------------------------------------------------------------- */

struct job job_base(enum job_type type, const char *id, const char *user)
{
    struct job j;
    memset(&j, 0, sizeof j);
    j.type = type;
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.user, sizeof j.user, "%s", user);
    return j;
}

struct job consume_job(const char *id, const char *user, int64_t amount, const char *tool,
                       const char *ref)
{
    struct job j = job_base(JOB_CONSUME, id, user);
    j.consume.amount = amount;
    if (tool != NULL) {
        j.consume.has_tool = true;
        snprintf(j.consume.tool, sizeof j.consume.tool, "%s", tool);
    }
    if (ref != NULL) {
        j.consume.has_ref = true;
        snprintf(j.consume.ref, sizeof j.consume.ref, "%s", ref);
    }
    return j;
}

struct job purchase_job(const char *id, const char *user, const char *pack, const char *payment_ref)
{
    struct job j = job_base(JOB_PURCHASE, id, user);
    snprintf(j.purchase.pack, sizeof j.purchase.pack, "%s", pack);
    snprintf(j.purchase.payment_ref, sizeof j.purchase.payment_ref, "%s", payment_ref);
    return j;
}

struct job allocate_job(const char *id, const char *user, const char *plan, const char *period)
{
    struct job j = job_base(JOB_ALLOCATE, id, user);
    snprintf(j.allocate.plan, sizeof j.allocate.plan, "%s", plan);
    snprintf(j.allocate.period, sizeof j.allocate.period, "%s", period);
    return j;
}

void job_bytes(const struct job *j, struct bytes *out)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK(codec_encode_job(j, &sb) == 0, "codec_encode_job failed for %s", j->id);
    CHECK(sb.size <= sizeof out->data, "job too long");
    memcpy(out->data, sb.data, sb.size);
    out->len = sb.size;
    msgpack_sbuffer_destroy(&sb);
}

/* Enqueues `j` on `stream` (NULL: its own). */
void enqueue_on(const char *prefix, const char *stream, struct job j, char *entry_out)
{
    struct bytes b;
    job_bytes(&j, &b);
    xadd_raw(prefix, stream ? stream : job_type_name(j.type), "job", b.data, b.len, entry_out);
}

void enqueue(const char *prefix, struct job j)
{
    enqueue_on(prefix, NULL, j, NULL);
}

/* Enqueues, waits until the worker acknowledged it, reads P:result:{id}. */
void submit(const char *prefix, struct job j, struct result *r)
{
    enqueue(prefix, j);
    wait_drained(prefix);
    result_must(prefix, j.id, r);
}

/* A hand-built msgpack value (struct mp). */
void mp_init(struct mp *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

void mp_str(struct mp *m, const char *s)
{
    msgpack_pack_str_with_body(&m->pk, s, strlen(s));
}

void mp_kstr(struct mp *m, const char *k, const char *v)
{
    mp_str(m, k);
    mp_str(m, v);
}

void mp_kint(struct mp *m, const char *k, int64_t v)
{
    mp_str(m, k);
    msgpack_pack_int64(&m->pk, v);
}

/* map header + v:1, id, type, user: 4 of the `entries`. */
void mp_head(struct mp *m, size_t entries, const char *id, const char *type, const char *user)
{
    mp_init(m);
    msgpack_pack_map(&m->pk, entries);
    mp_kint(m, "v", 1);
    mp_kstr(m, "id", id);
    mp_kstr(m, "type", type);
    mp_kstr(m, "user", user);
}

/* ---------------------------------------------------------------------------
 * PostgreSQL
 * ------------------------------------------------------------------------- */

static PGresult *pg_queryv(const char *sql, va_list ap)
{
    const char *params[16];
    int n = 0;
    for (const char *p = va_arg(ap, const char *); p != NULL; p = va_arg(ap, const char *)) {
        CHECK(n < 16, "too many parameters");
        params[n++] = p;
    }
    PGresult *res = PQexecParams(PG, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    CHECK(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "SQL failed: %s\n  %s",
          PQresultErrorMessage(res), sql);
    return res;
}

PGresult *pg_query(const char *sql, ...)
{
    va_list ap;
    va_start(ap, sql);
    PGresult *res = pg_queryv(sql, ap);
    va_end(ap);
    return res;
}

/* The first cell as an integer (INT64_MIN for NULL). */
int64_t pg_int(const char *sql, ...)
{
    va_list ap;
    va_start(ap, sql);
    PGresult *res = pg_queryv(sql, ap);
    va_end(ap);
    CHECK(PQntuples(res) >= 1 && PQnfields(res) >= 1, "no row from: %s", sql);
    int64_t v = PQgetisnull(res, 0, 0) ? INT64_MIN : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* The first cell as text ("(null)" for NULL, "(no row)" without a row). */
const char *pg_text(const char *sql, ...)
{
    static char ring[8][4096];
    static unsigned next;
    char *out = ring[next++ % 8];
    va_list ap;
    va_start(ap, sql);
    PGresult *res = pg_queryv(sql, ap);
    va_end(ap);
    if (PQntuples(res) < 1)
        snprintf(out, sizeof ring[0], "(no row)");
    else if (PQgetisnull(res, 0, 0))
        snprintf(out, sizeof ring[0], "(null)");
    else
        snprintf(out, sizeof ring[0], "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

void pg_exec(const char *sql)
{
    PGresult *res = PQexec(PG, sql);
    ExecStatusType st = PQresultStatus(res);
    CHECK(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "SQL failed: %s\n  %s",
          PQresultErrorMessage(res), sql);
    PQclear(res);
}

/* The contract's invariants (section 5), over the whole ledger. */
void check_invariants(void)
{
    int64_t n;
    n = pg_int("SELECT count(*) FROM credits.lots WHERE remaining < 0 OR remaining > granted",
               NULL);
    CHECK(n == 0, "%" PRId64 " lots outside 0 <= remaining <= granted", n);
    n = pg_int(
        "SELECT count(*) FROM credits.lots l WHERE l.remaining <> "
        "(SELECT coalesce(sum(e.delta), 0) FROM credits.entries e WHERE e.lot_id = l.lot_id)",
        NULL);
    CHECK(n == 0, "%" PRId64 " lots whose remaining differs from the sum of their entries", n);
    n = pg_int(
        "SELECT count(*) FROM "
        "(SELECT user_id, sum(delta) AS s FROM credits.entries GROUP BY user_id) e "
        "FULL JOIN (SELECT user_id, sum(remaining) AS r FROM credits.lots GROUP BY user_id) l "
        "USING (user_id) WHERE coalesce(e.s, 0) <> coalesce(l.r, 0)",
        NULL);
    CHECK(n == 0, "%" PRId64 " users whose entries do not sum to their lots' remaining", n);
    n = pg_int("SELECT count(*) FROM credits.entries e JOIN credits.lots l USING (lot_id) "
               "WHERE e.user_id <> l.user_id",
               NULL);
    CHECK(n == 0, "%" PRId64 " entries on another user's lot", n);
    n = pg_int("SELECT count(*) FROM credits.lots l WHERE (SELECT count(*) FROM credits.entries e "
               "WHERE e.lot_id = l.lot_id AND e.kind IN ('purchase', 'allocate') "
               "AND e.delta = l.granted) <> 1",
               NULL);
    CHECK(n == 0, "%" PRId64 " lots without exactly one granting entry of `granted`", n);
    n = pg_int("SELECT count(*) FROM credits.entries e JOIN credits.lots l USING (lot_id) WHERE "
               "(e.kind = 'purchase' AND l.kind <> 'pack') OR (e.kind = 'allocate' AND "
               "l.kind <> 'monthly') OR (e.kind = 'forfeit' AND l.kind <> 'monthly')",
               NULL);
    CHECK(n == 0, "%" PRId64 " entries of a kind that does not fit their lot", n);
}

struct digest digest_of(const char *text)
{
    struct digest d;
    snprintf(d.hex, sizeof d.hex, "%s", text);
    return d;
}

bool same(struct digest a, struct digest b)
{
    return strcmp(a.hex, b.hex) == 0;
}

/* A digest of the whole ledger: jobs, lots, entries, the accounts' plans.
 * (An account row without a plan is only "a user the worker has seen": the
 * worker may add one for any user it locks, even for a rejected job.) */
struct digest ledger_fp(void)
{
    return digest_of(
        pg_text("SELECT md5("
                "(SELECT coalesce(string_agg(job_id || ':' || status, ',' ORDER BY job_id), '') "
                "   FROM credits.jobs) || '|' ||"
                "(SELECT coalesce(string_agg(lot_id || ':' || remaining, ',' ORDER BY lot_id), '') "
                "   FROM credits.lots) || '|' ||"
                "(SELECT count(*)::text FROM credits.entries) || '|' ||"
                "(SELECT coalesce(string_agg(user_id || ':' || coalesce(plan_id, '-'), ',' "
                "   ORDER BY user_id), '') FROM credits.accounts WHERE plan_id IS NOT NULL))",
                NULL));
}

/* A digest of one user's credits: lots, entries, plan. */
struct digest user_fp(const char *user)
{
    return digest_of(
        pg_text("SELECT md5("
                "(SELECT coalesce(string_agg(lot_id || ':' || remaining || ':' || "
                "   coalesce(expires_at::text, '-'), ',' ORDER BY lot_id), '') "
                "   FROM credits.lots WHERE user_id = $1) || '|' ||"
                "(SELECT count(*) || ':' || coalesce(sum(delta), 0) FROM credits.entries "
                "   WHERE user_id = $1) || '|' ||"
                "coalesce((SELECT plan_id FROM credits.accounts WHERE user_id = $1), '-'))",
                user, NULL));
}

/* The user's usable credits by the ledger's own rows. */
void sql_balance(const char *user, int64_t *total, int64_t *pack, int64_t *monthly)
{
    PGresult *res = pg_query(
        "SELECT coalesce(sum(remaining) FILTER (WHERE kind = 'pack'), 0), "
        "       coalesce(sum(remaining) FILTER (WHERE kind = 'monthly'), 0) "
        "  FROM credits.lots WHERE user_id = $1 AND (expires_at IS NULL OR expires_at > now())",
        user, NULL);
    *pack = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    *monthly = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    *total = *pack + *monthly;
    PQclear(res);
}

void expect_sql_balance(int line, const char *user, int64_t total, int64_t pack, int64_t monthly)
{
    int64_t t, p, m;
    sql_balance(user, &t, &p, &m);
    CHECK(t == total && p == pack && m == monthly,
          "(line %d) ledger balance of %s: expected {%" PRId64 ",%" PRId64 ",%" PRId64
          "}, got {%" PRId64 ",%" PRId64 ",%" PRId64 "}",
          line, user, total, pack, monthly, t, p, m);
}

int64_t job_rows(const char *id)
{
    return pg_int("SELECT count(*) FROM credits.jobs WHERE job_id = $1", id, NULL);
}

/* The credits.jobs row of a decided job: status and error as decided. */
void expect_job_row(const char *id, const char *type, const char *user, enum job_error err)
{
    const char *row = pg_text("SELECT type || '/' || user_id || '/' || status || '/' || "
                              "coalesce(error, '-') FROM credits.jobs WHERE job_id = $1",
                              id, NULL);
    const char *want = fmt("%s/%s/%s/%s", type, user, err == JOB_OK ? "applied" : "rejected",
                           err == JOB_OK ? "-" : job_error_name(err));
    CHECK(strcmp(row, want) == 0, "credits.jobs row of %s: expected %s, got %s", id, want, row);
}

/* ---------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------- */

static void register_worker(pid_t pid)
{
    for (int i = 0; i < WORKERS_MAX; i++)
        if (WORKERS[i] == 0) {
            WORKERS[i] = pid;
            return;
        }
    CHECK(false, "too many workers");
}

static void forget_worker(pid_t pid)
{
    for (int i = 0; i < WORKERS_MAX; i++)
        if (WORKERS[i] == pid)
            WORKERS[i] = 0;
}

void kill_workers(void)
{
    for (int i = 0; i < WORKERS_MAX; i++)
        if (WORKERS[i] > 0) {
            kill(WORKERS[i], SIGKILL);
            waitpid(WORKERS[i], NULL, 0);
            WORKERS[i] = 0;
        }
}

static bool env_overridden(const char *entry, const char *const *overrides, int count)
{
    for (int i = 0; i < count; i++) {
        size_t klen = strcspn(overrides[i], "="); /* "K=V" or a bare "K" */
        if (strncmp(entry, overrides[i], klen) == 0 && entry[klen] == '=')
            return true;
    }
    return false;
}

/* Starts credits-worker with the environment changed by `overrides` ("K=V"
 * sets K; a bare "K" removes it) and the command-line `args` (NULL-terminated,
 * may be NULL); stderr to LOG_DIR/NN-<name>.log. */
pid_t worker_spawn(const char *name, const char *const *given, int given_count,
                   const char *const *args)
{
    /* The HTTP endpoint is off unless a test asks for it: two workers (or
     * two test programs) must not compete for its default port. */
    const char *overrides[32];
    int n = 0;
    CHECK(given_count < 31, "too many settings");
    if (!env_overridden("CREDITS_HTTP_ADDR=", given, given_count))
        overrides[n++] = "CREDITS_HTTP_ADDR=";
    for (int i = 0; i < given_count; i++)
        overrides[n++] = given[i];
    size_t env_count = 0;
    while (environ[env_count] != NULL)
        env_count++;
    char **envp = calloc(env_count + (size_t)n + 1, sizeof *envp);
    CHECK(envp != NULL, "out of memory");
    size_t e = 0;
    for (size_t i = 0; i < env_count; i++)
        if (!env_overridden(environ[i], overrides, n))
            envp[e++] = environ[i];
    for (int i = 0; i < n; i++)
        if (strchr(overrides[i], '=') != NULL)
            envp[e++] = (char *)overrides[i];
    envp[e] = NULL;
    char *argv[16];
    int argc = 0;
    char path[512], log_path[256];
    snprintf(path, sizeof path, "%s/credits-worker", BUILD_DIR);
    argv[argc++] = path;
    for (int i = 0; args != NULL && args[i] != NULL && argc < 15; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    snprintf(log_path, sizeof log_path, "%s/%02d-%s.log", LOG_DIR, ++LOG_SEQ, name);
    snprintf(LAST_LOG, sizeof LAST_LOG, "%s", log_path);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* The worker dies with this program, whatever happens to it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        execve(path, argv, envp);
        _exit(127);
    }
    free(envp);
    register_worker(pid);
    return pid;
}

/* Starts credits-worker with CREDITS_PREFIX=prefix and the given "K=V"
 * settings (NULL-terminated) over the environment. */
pid_t worker_start(const char *prefix, ...)
{
    const char *overrides[24];
    int n = 0;
    overrides[n++] = fmt("CREDITS_PREFIX=%s", prefix);
    va_list ap;
    va_start(ap, prefix);
    for (const char *s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *)) {
        CHECK(n < 24, "too many settings");
        overrides[n++] = s;
    }
    va_end(ap);
    return worker_spawn(prefix, overrides, n, NULL);
}

/* SIGTERM, then waits up to timeout_ms. Returns the wait status, or -1 if it
 * did not stop (then it is killed). *elapsed_ms: how long it took. */
int worker_signal_stop(pid_t pid, int signum, int timeout_ms, int64_t *elapsed_ms)
{
    int64_t start = mono_ms();
    kill(pid, signum);
    int status = 0;
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            break;
        if (mono_ms() - start > timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            status = -1;
            break;
        }
        sleep_ms(5);
    }
    forget_worker(pid);
    if (elapsed_ms != NULL)
        *elapsed_ms = mono_ms() - start;
    return status;
}

int worker_stop(pid_t pid, int timeout_ms, int64_t *elapsed_ms)
{
    return worker_signal_stop(pid, SIGTERM, timeout_ms, elapsed_ms);
}

void stop_clean(pid_t pid)
{
    int64_t ms;
    int status = worker_stop(pid, STOP_WAIT_MS, &ms);
    CHECK(status != -1, "worker %d did not stop within %d ms of SIGTERM", (int)pid, STOP_WAIT_MS);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "worker %d did not exit 0 on SIGTERM (exited %d status %d, signal %d)", (int)pid,
          WIFEXITED(status), WIFEXITED(status) ? WEXITSTATUS(status) : -1,
          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

bool worker_alive(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

/* Removes the worker logs (all tests passed). */
static void remove_log_dir(void)
{
    DIR *dir = opendir(LOG_DIR);
    if (dir == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", LOG_DIR, e->d_name);
        unlink(path);
    }
    closedir(dir);
    rmdir(LOG_DIR);
}

/* ---------------------------------------------------------------------------
 * Reconnecting and pipelining (the servers may restart under a test)
 * ------------------------------------------------------------------------- */

static redisContext *redis_connect_once(void)
{
    struct timeval connect_timeout = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", REDIS_PORT, connect_timeout);
    if (c == NULL)
        return NULL;
    if (c->err) {
        redisFree(c);
        return NULL;
    }
    struct timeval tv = {30, 0};
    redisSetTimeout(c, tv);
    redisReply *pong = redisCommand(c, "PING");
    bool ok = pong != NULL && pong->type == REDIS_REPLY_STATUS;
    if (pong != NULL)
        freeReplyObject(pong);
    if (!ok) { /* LOADING: the server is still reading its AOF */
        redisFree(c);
        return NULL;
    }
    return c;
}

void redis_reconnect(int timeout_ms)
{
    if (R != NULL)
        redisFree(R);
    R = NULL;
    int64_t deadline = mono_ms() + timeout_ms;
    while ((R = redis_connect_once()) == NULL) {
        CHECK(mono_ms() < deadline, "cannot reconnect to Redis on port %d within %d ms", REDIS_PORT,
              timeout_ms);
        sleep_ms(50);
    }
}

int enqueue_pipelined(const char *prefix, const struct job *jobs, size_t count)
{
    static struct bytes b;
    char keys[3][256];
    for (int s = 0; s < 3; s++)
        snprintf(keys[s], sizeof keys[s], "%s", stream_key(prefix, STREAMS[s]));
    for (size_t i = 0; i < count; i++) {
        job_bytes(&jobs[i], &b);
        const char *k = keys[jobs[i].type];
        const char *argv[5] = {"XADD", k, "*", "job", (const char *)b.data};
        size_t lens[5] = {4, strlen(k), 1, 3, b.len};
        if (redisAppendCommandArgv(R, 5, argv, lens) != REDIS_OK)
            return -1;
    }
    for (size_t i = 0; i < count; i++) {
        void *reply = NULL;
        if (redisGetReply(R, &reply) != REDIS_OK || reply == NULL)
            return -1;
        redisReply *x = reply;
        bool ok = x->type == REDIS_REPLY_STRING;
        const char *why = fmt("%s", x->type == REDIS_REPLY_ERROR ? x->str : "?");
        freeReplyObject(x);
        if (!ok && strncmp(why, "LOADING", 7) == 0)
            return -1; /* a restarted server still reading its AOF: send again */
        CHECK(ok, "XADD of %s failed: %s", jobs[i].id, why);
    }
    return 0;
}

static PGconn *pg_connect_once(void)
{
    const char *db = getenv("CREDITS_DATABASE_URL");
    PGconn *c = PQconnectdb(db != NULL ? db : "");
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return NULL;
    }
    PGresult *res = PQexec(c, "SET client_min_messages = warning");
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

void pg_reconnect(int timeout_ms)
{
    if (PG != NULL)
        PQfinish(PG);
    PG = NULL;
    int64_t deadline = mono_ms() + timeout_ms;
    while ((PG = pg_connect_once()) == NULL) {
        CHECK(mono_ms() < deadline, "cannot reconnect to PostgreSQL within %d ms", timeout_ms);
        sleep_ms(50);
    }
}

/* ---------------------------------------------------------------------------
 * Workers and other processes
 * ------------------------------------------------------------------------- */

const char *worker_last_log(void)
{
    return LAST_LOG;
}

void worker_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    forget_worker(pid);
}

pid_t command_spawn(const char *const *argv, const char *log_path)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        int fd =
            open(log_path != NULL ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, 0);
            close(devnull);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int command_wait(pid_t pid, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            break;
        if (got < 0 && errno != EINTR)
            return -1;
        if (mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
        sleep_ms(5);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool command_done(pid_t pid, int *exit_status)
{
    int status = 0;
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == 0 || (got < 0 && errno == EINTR))
        return false;
    if (got < 0)
        *exit_status = -1;
    else
        *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
}

int command_run(const char *const *argv, const char *log_path, int timeout_ms)
{
    return command_wait(command_spawn(argv, log_path), timeout_ms);
}

/* ---------------------------------------------------------------------------
 * Fixtures
 * ------------------------------------------------------------------------- */

int harness_group_setup(const char *name)
{
    BUILD_DIR = getenv("BUILD_DIR");
    const char *port = getenv("CREDITS_TEST_REDIS_PORT");
    const char *db = getenv("CREDITS_DATABASE_URL");
    if (BUILD_DIR == NULL || port == NULL || db == NULL) {
        fprintf(stderr, "BUILD_DIR, CREDITS_TEST_REDIS_PORT and CREDITS_DATABASE_URL must be set "
                        "(run through tests/integration/run_c_test.sh)\n");
        return -1;
    }
    REDIS_PORT = atoi(port);
    R = redisConnect("127.0.0.1", REDIS_PORT);
    if (R == NULL || R->err) {
        fprintf(stderr, "cannot connect to Redis on port %s\n", port);
        return -1;
    }
    struct timeval tv = {30, 0};
    redisSetTimeout(R, tv);
    PG = PQconnectdb(db);
    if (PQstatus(PG) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to PostgreSQL: %s", PQerrorMessage(PG));
        return -1;
    }
    PGresult *res =
        PQexec(PG, "SET client_min_messages = warning;"
                   "INSERT INTO credits.plans (plan_id, monthly_credits, rollover_cap) "
                   "VALUES ('basic', 100, 200), ('pro', 1000, 1500), ('nocap', 50, NULL) "
                   "ON CONFLICT (plan_id) DO UPDATE SET "
                   "monthly_credits = excluded.monthly_credits, "
                   "rollover_cap = excluded.rollover_cap;"
                   "INSERT INTO credits.packs (pack_id, credits, valid_days) "
                   "VALUES ('p100', 100, 90), ('p1k', 1000, 30) "
                   "ON CONFLICT (pack_id) DO UPDATE SET credits = excluded.credits, "
                   "valid_days = excluded.valid_days;"
                   "INSERT INTO credits.packs (pack_id, credits) VALUES ('pdefault', 10) "
                   "ON CONFLICT (pack_id) DO UPDATE SET credits = excluded.credits, "
                   "valid_days = excluded.valid_days;");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "cannot seed the catalog: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    snprintf(LOG_DIR, sizeof LOG_DIR, "/tmp/%s.XXXXXX", name);
    if (mkdtemp(LOG_DIR) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    fprintf(stderr, "worker logs: %s\n", LOG_DIR);
    return 0;
}

int harness_group_teardown(void)
{
    kill_workers();
    if (R != NULL)
        redisFree(R);
    R = NULL;
    if (PG != NULL)
        PQfinish(PG);
    PG = NULL;
    return 0;
}

void harness_test_setup(void)
{
    kill_workers(); /* a failed test's leftovers */
    STEP[0] = '\0';
    LAST_LOG[0] = '\0';
}

void harness_test_teardown(void)
{
    kill_workers();
}

void harness_finish(int failed)
{
    const char *keep = getenv("KEEP_TEST_DIR");
    if (failed == 0 && LOG_DIR[0] != '\0' && !(keep != NULL && strcmp(keep, "1") == 0))
        remove_log_dir();
    else if (LOG_DIR[0] != '\0')
        fprintf(stderr, "worker logs kept in %s\n", LOG_DIR);
}
