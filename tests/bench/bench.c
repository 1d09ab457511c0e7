/*
 * bench.c -- the benchmark of credits-worker: drain throughput of a
 * backlog at several batch sizes, the same for one hot user, and latency from
 * XADD to a readable result at a steady offered load. All figures of one run
 * go into one table, with the machine they came from.
 *
 * Owns the load generator (jobs encoded with core/codec.h, enqueued with
 * pipelined XADD over blocking hiredis), starting and stopping the worker
 * processes it measures (fork/exec, SIGTERM, by PID), the timing, the cheap
 * correctness checks of each run (a result for every job, nothing pending)
 * and the report. It does not own the servers or the catalog: run.sh starts
 * throwaway servers and creates plan "bench" and pack "bench".
 *
 * Every wait has a deadline: a worker that dies or stalls ends the benchmark
 * with a message and exit status 1, never a hang. Nothing here asserts a
 * time; the figures are for people.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/codec.h"
#include "core/job.h"
#include "core/job_type.h"

extern char **environ;

/* ------------------------------------------------------------------------ */
/* Limits and defaults                                                      */
/* ------------------------------------------------------------------------ */

#define NS_PER_S INT64_C(1000000000)
#define NS_PER_MS INT64_C(1000000)

#define DEFAULT_JOBS 100000
#define DEFAULT_JOBS_B1 4000
#define DEFAULT_USERS 10000
#define DEFAULT_SECONDS 10
#define DEFAULT_RATES "5000,20000"
#define DEFAULT_BATCHES "1,64,default,1024"
#define DEFAULT_MIXES "mix,render"
#define DEFAULT_ROUNDS_AB 2   /* rounds when two workers are compared */
#define DEFAULT_SWEEP_LOTS 100000
#define DEFAULT_MANY_LOTS "5000,20000"
#define BATCH_DEFAULT_TOKEN 0 /* "default" in --batch: the worker's own default */

#define LIST_MAX 8
#define JOBS_MAX 5000000
#define USERS_MAX 1000000
#define RATE_MAX 200000
#define SECONDS_MAX 600
#define ROUNDS_MAX 10
#define SWEEP_LOTS_MAX 1000000
#define MANY_LOTS_MIN 2000 /* more than the MANY_LOTS_LEFT the big consume leaves */
#define MANY_LOTS_MAX 200000
#define SIDES_MAX 2 /* --worker (A) and --worker-b (B) */

#define XADD_CHUNK 1000   /* XADDs per pipelined round trip */
#define XRANGE_CHUNK 5000 /* results read per XRANGE */
#define XREAD_COUNT 1000
#define XREAD_BLOCK_MS 100
#define REDIS_TIMEOUT_S 30 /* every Redis reply */
#define PG_CONNECT_TIMEOUT "10"
#define POLL_NS (2 * NS_PER_MS)  /* drain progress poll */
#define STALL_NS (30 * NS_PER_S) /* no result for this long: the worker stalled */
#define DRAIN_MAX_NS (600 * NS_PER_S)
#define STOP_WAIT_NS (30 * NS_PER_S) /* SIGTERM to exit */
#define WARMUP_WAIT_NS (30 * NS_PER_S)
#define LATENCY_TAIL_MAX_NS (300 * NS_PER_S) /* after the producer ends, for the last results */
#define TICK_NS NS_PER_MS                    /* producer burst period */

#define PLAN_ID "bench"
#define PACK_ID "bench"
#define FIRST_YEAR 2030             /* period index 0 = 2030-01 (the seeding allocation) */
#define RESULTS_MAXLEN "1000000000" /* keep every result in the stream */

#define NAME_BYTES 160
#define KEY_BYTES 256
#define LINE_BYTES 512

/* ------------------------------------------------------------------------ */
/* Errors and time                                                          */
/* ------------------------------------------------------------------------ */

#define WORKERS_MAX 4 /* the scale-out drain runs 1, 2 and 4 workers */

/* The worker processes being measured, killed if the benchmark dies. */
static volatile sig_atomic_t g_worker_pids[WORKERS_MAX];

static void kill_workers(void)
{
    for (int i = 0; i < WORKERS_MAX; i++)
        if (g_worker_pids[i] > 0)
            kill((pid_t)g_worker_pids[i], SIGKILL);
}

static void die(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    fputs("bench: ", stderr);
    vfprintf(stderr, format, ap);
    va_end(ap);
    fputc('\n', stderr);
    kill_workers();
    exit(1);
}

static void fmt(char *out, size_t len, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* snprintf that dies rather than truncate. */
static void fmt(char *out, size_t len, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(out, len, format, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len)
        die("internal: a formatted name does not fit (%s)", format);
}

/* SIGINT/SIGTERM to the benchmark: take the worker down with it. */
static void on_signal(int sig)
{
    kill_workers();
    _exit(128 + sig);
}

static void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size);
    if (!p)
        die("out of memory (%zu x %zu bytes)", count, size);
    return p;
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * NS_PER_S + t.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec t = {(time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* Sleeps until the CLOCK_MONOTONIC time `deadline_ns` (absolute). */
static void sleep_until_ns(int64_t deadline_ns)
{
    struct timespec t = {(time_t)(deadline_ns / NS_PER_S), (long)(deadline_ns % NS_PER_S)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
    }
}

static double seconds_of(int64_t ns)
{
    return (double)ns / (double)NS_PER_S;
}

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

/* The mixes of the batch-size rows (--mixes); the consume, hot-user,
 * scale-out and latency runs have their own jobs. */
enum mix {
    MIX_CONSUME_HEAVY, /* "mix": 90% consume, 7% purchase, 3% allocate of a new period */
    MIX_RENDER,        /* "render": holds closed later by a capture or a release (see README) */
    MIX_HOT,           /* one user: 93% consume, 7% purchase (see README) */
    MIX_CONSUME_ONLY,  /* consumes alone: the consume drain and the latency load */
};
#define BATCH_MIXES 2 /* MIX_CONSUME_HEAVY and MIX_RENDER: the ones --mixes names */

static const char *const g_batch_mix_names[BATCH_MIXES] = {"mix", "render"};

struct options {
    /* [0]: --worker (A); [1]: --worker-b (B), when side_count is 2. */
    const char *worker_paths[SIDES_MAX];
    size_t side_count;
    int64_t rounds; /* runs of each row per worker, A B A B ... */
    bool batch_mix[BATCH_MIXES];
    const char *worker_log; /* NULL: the worker's stderr is ours */
    const char *redis_url;
    const char *database_url;
    const char *group;
    uint64_t jobs;    /* backlog of a batched drain */
    uint64_t jobs_b1; /* backlog of a batch-size-1 drain */
    uint64_t users;
    int64_t rates[LIST_MAX];
    size_t rate_count;
    int64_t seconds;
    int64_t batches[LIST_MAX]; /* BATCH_DEFAULT_TOKEN: the worker's default */
    size_t batch_count;
    bool hot;
    bool scale; /* the scale-out drains (--no-scale: none) */
    uint64_t sweep_lots;       /* expired lots of the sweep run (A only); 0: no sweep run */
    int64_t many_lots[LIST_MAX]; /* unspent one-credit lots of the many-lots rows */
    size_t many_lots_count;
    const char *latency_trace; /* NULL: no per-job latency file */
    pid_t pg_pid;              /* 0: unknown (no PostgreSQL CPU figure) */
    pid_t redis_pid;           /* 0: unknown */
    int64_t default_batch;     /* read from A's --check-config; the rows' "default" */
    int64_t side_default_batch[SIDES_MAX];
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench --worker PATH [options]\n"
            "\n"
            "Measures credits-worker against the Redis and PostgreSQL named by\n"
            "CREDITS_REDIS_URL and CREDITS_DATABASE_URL (catalog: plan \"" PLAN_ID
            "\", pack \"" PACK_ID "\").\n"
            "\n"
            "  --worker PATH      the credits-worker binary (required); A when comparing\n"
            "  --worker-b PATH    a second credits-worker binary (B): every run is made for A\n"
            "                     and B alternately, and B's figures over A's are printed\n"
            "  --rounds N         runs of each row per worker (default 1, with --worker-b %d)\n"
            "  --mixes LIST       mixes of the batch-size rows: mix, render (default %s)\n"
            "  --worker-log FILE  append the workers' stderr to FILE\n"
            "  --jobs N           backlog of a batched drain (default %d)\n"
            "  --jobs-b1 N        backlog of a batch-size-1 drain (default %d)\n"
            "  --users N          users of the mixed backlog and of the latency load (default %d)\n"
            "  --batch LIST       batch sizes of the mixed drain, 'default' = the worker's\n"
            "                     default (default %s)\n"
            "  --rate LIST        offered loads of the latency runs, jobs/s (default %s)\n"
            "  --seconds S        length of each latency run (default %d)\n"
            "  --no-hot           skip the hot-user drains\n"
            "  --no-scale         skip the scale-out drains (1, 2 and 4 workers)\n"
            "  --many-lots LIST   unspent one-credit lots of the user whose one consume spends\n"
            "                     all but 1000 of them (default %s; 0: no such rows)\n"
            "  --sweep-lots N     lots past their expiry written off by one sweep of worker A\n"
            "                     (default %d; 0: no sweep run)\n"
            "  --latency-trace F  write each latency job's send time and latency (ms) to F\n"
            "  --pg-pid PID       PostgreSQL postmaster, for its CPU share (optional)\n"
            "  --redis-pid PID    redis-server, for its CPU share (optional)\n",
            DEFAULT_ROUNDS_AB, DEFAULT_MIXES, DEFAULT_JOBS, DEFAULT_JOBS_B1, DEFAULT_USERS,
            DEFAULT_BATCHES, DEFAULT_RATES, DEFAULT_SECONDS, DEFAULT_MANY_LOTS, DEFAULT_SWEEP_LOTS);
}

static int64_t parse_int(const char *flag, const char *text, int64_t min, int64_t max)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "bench: %s wants a whole number in %" PRId64 "..%" PRId64 " (got \"%s\")\n",
                flag, min, max, text);
        exit(2);
    }
    return (int64_t)v;
}

/* "a,b,c" into out[]; the word "default" (when allowed) becomes BATCH_DEFAULT_TOKEN. */
static size_t parse_list(const char *flag, const char *text, int64_t min, int64_t max,
                         bool allow_default, int64_t *out)
{
    char buf[LINE_BYTES];
    if (strlen(text) >= sizeof buf) {
        fprintf(stderr, "bench: %s list too long\n", flag);
        exit(2);
    }
    strcpy(buf, text);
    size_t count = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (count == LIST_MAX) {
            fprintf(stderr, "bench: %s takes at most %d values\n", flag, LIST_MAX);
            exit(2);
        }
        if (allow_default && strcmp(tok, "default") == 0)
            out[count++] = BATCH_DEFAULT_TOKEN;
        else
            out[count++] = parse_int(flag, tok, min, max);
    }
    if (count == 0) {
        fprintf(stderr, "bench: %s needs at least one value\n", flag);
        exit(2);
    }
    return count;
}

/* "mix,render" into o->batch_mix[]. */
static void parse_mixes(const char *text, struct options *o)
{
    char buf[LINE_BYTES];
    if (strlen(text) >= sizeof buf) {
        fprintf(stderr, "bench: --mixes list too long\n");
        exit(2);
    }
    strcpy(buf, text);
    memset(o->batch_mix, 0, sizeof o->batch_mix);
    size_t count = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t m = 0;
        while (m < BATCH_MIXES && strcmp(tok, g_batch_mix_names[m]) != 0)
            m++;
        if (m == BATCH_MIXES) {
            fprintf(stderr, "bench: --mixes knows mix and render (got \"%s\")\n", tok);
            exit(2);
        }
        o->batch_mix[m] = true;
        count++;
    }
    if (count == 0) {
        fprintf(stderr, "bench: --mixes needs at least one mix\n");
        exit(2);
    }
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){
        .jobs = DEFAULT_JOBS,
        .jobs_b1 = DEFAULT_JOBS_B1,
        .users = DEFAULT_USERS,
        .seconds = DEFAULT_SECONDS,
        .hot = true,
        .scale = true,
        .sweep_lots = DEFAULT_SWEEP_LOTS,
        .redis_url = env_or("CREDITS_REDIS_URL", "redis://127.0.0.1:6379"),
        .database_url = env_or("CREDITS_DATABASE_URL", ""),
        .group = env_or("CREDITS_GROUP", "credits-worker"),
    };
    o->rate_count = parse_list("--rate", DEFAULT_RATES, 1, RATE_MAX, false, o->rates);
    o->many_lots_count =
        parse_list("--many-lots", DEFAULT_MANY_LOTS, MANY_LOTS_MIN, MANY_LOTS_MAX, false, o->many_lots);
    o->batch_count = parse_list("--batch", DEFAULT_BATCHES, 1, 4096, true, o->batches);
    parse_mixes(DEFAULT_MIXES, o);
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(flag, "--no-hot") == 0) {
            o->hot = false;
            continue;
        }
        if (strcmp(flag, "--no-scale") == 0) {
            o->scale = false;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench: unknown or incomplete option %s (see --help)\n", flag);
            exit(2);
        }
        const char *v = argv[++i];
        if (strcmp(flag, "--worker") == 0)
            o->worker_paths[0] = v;
        else if (strcmp(flag, "--worker-b") == 0)
            o->worker_paths[1] = v;
        else if (strcmp(flag, "--rounds") == 0)
            o->rounds = parse_int(flag, v, 1, ROUNDS_MAX);
        else if (strcmp(flag, "--mixes") == 0)
            parse_mixes(v, o);
        else if (strcmp(flag, "--worker-log") == 0)
            o->worker_log = v;
        else if (strcmp(flag, "--jobs") == 0)
            o->jobs = (uint64_t)parse_int(flag, v, 1, JOBS_MAX);
        else if (strcmp(flag, "--jobs-b1") == 0)
            o->jobs_b1 = (uint64_t)parse_int(flag, v, 1, JOBS_MAX);
        else if (strcmp(flag, "--users") == 0)
            o->users = (uint64_t)parse_int(flag, v, 1, USERS_MAX);
        else if (strcmp(flag, "--seconds") == 0)
            o->seconds = parse_int(flag, v, 1, SECONDS_MAX);
        else if (strcmp(flag, "--rate") == 0)
            o->rate_count = parse_list(flag, v, 1, RATE_MAX, false, o->rates);
        else if (strcmp(flag, "--batch") == 0)
            o->batch_count = parse_list(flag, v, 1, 4096, true, o->batches);
        else if (strcmp(flag, "--many-lots") == 0)
            o->many_lots_count = strcmp(v, "0") == 0 ? 0
                                 : parse_list(flag, v, MANY_LOTS_MIN, MANY_LOTS_MAX, false,
                                              o->many_lots);
        else if (strcmp(flag, "--sweep-lots") == 0)
            o->sweep_lots = (uint64_t)parse_int(flag, v, 0, SWEEP_LOTS_MAX);
        else if (strcmp(flag, "--latency-trace") == 0)
            o->latency_trace = v;
        else if (strcmp(flag, "--pg-pid") == 0)
            o->pg_pid = (pid_t)parse_int(flag, v, 1, INT32_MAX);
        else if (strcmp(flag, "--redis-pid") == 0)
            o->redis_pid = (pid_t)parse_int(flag, v, 1, INT32_MAX);
        else {
            fprintf(stderr, "bench: unknown option %s (see --help)\n", flag);
            exit(2);
        }
    }
    if (!o->worker_paths[0]) {
        fprintf(stderr, "bench: --worker PATH is required (see --help)\n");
        exit(2);
    }
    o->side_count = o->worker_paths[1] ? 2 : 1;
    if (o->rounds == 0)
        o->rounds = o->side_count == 2 ? DEFAULT_ROUNDS_AB : 1;
}

/* ------------------------------------------------------------------------ */
/* Redis                                                                    */
/* ------------------------------------------------------------------------ */

struct redis_addr {
    char host[NAME_BYTES];
    int port;
    char user[NAME_BYTES];
    char password[NAME_BYTES];
    int db;
};

/* redis://[[user]:password@]host[:port][/db] (no percent-decoding). */
static void parse_redis_url(const char *url, struct redis_addr *a)
{
    *a = (struct redis_addr){.port = 6379};
    const char *scheme = "redis://";
    if (strncmp(url, scheme, strlen(scheme)) != 0)
        die("CREDITS_REDIS_URL must start with redis:// (got \"%s\")", url);
    const char *p = url + strlen(scheme);
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || (size_t)(at - colon) > sizeof a->password ||
            (size_t)(colon - p) >= sizeof a->user)
            die("cannot read the credentials of CREDITS_REDIS_URL");
        memcpy(a->user, p, (size_t)(colon - p));
        memcpy(a->password, colon + 1, (size_t)(at - colon - 1));
        p = at + 1;
    }
    size_t host_len = strcspn(p, ":/");
    if (host_len == 0 || host_len >= sizeof a->host)
        die("cannot read the host of CREDITS_REDIS_URL");
    memcpy(a->host, p, host_len);
    p += host_len;
    if (*p == ':') {
        a->port = (int)strtol(p + 1, (char **)&p, 10);
        if (a->port <= 0 || a->port > 65535)
            die("bad port in CREDITS_REDIS_URL");
    }
    if (*p == '/' && p[1])
        a->db = (int)strtol(p + 1, NULL, 10);
}

static redisReply *redis_check(redisContext *c, redisReply *r, const char *what)
{
    if (!r)
        die("redis %s: %s", what, c->errstr[0] ? c->errstr : "no reply");
    if (r->type == REDIS_REPLY_ERROR)
        die("redis %s: %s", what, r->str);
    return r;
}

static redisReply *redis_cmd(redisContext *c, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    redisReply *r = redisvCommand(c, format, ap);
    va_end(ap);
    return redis_check(c, r, format);
}

static void redis_do(redisContext *c, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    redisReply *r = redisvCommand(c, format, ap);
    va_end(ap);
    freeReplyObject(redis_check(c, r, format));
}

static redisContext *redis_open(const struct redis_addr *a)
{
    struct timeval timeout = {REDIS_TIMEOUT_S, 0};
    redisContext *c = redisConnectWithTimeout(a->host, a->port, timeout);
    if (!c || c->err)
        die("cannot connect to redis at %s:%d: %s", a->host, a->port,
            c ? c->errstr : "out of memory");
    if (redisSetTimeout(c, timeout) != REDIS_OK)
        die("cannot set the redis timeout");
    if (a->password[0]) {
        if (a->user[0])
            redis_do(c, "AUTH %s %s", a->user, a->password);
        else
            redis_do(c, "AUTH %s", a->password);
    }
    if (a->db)
        redis_do(c, "SELECT %d", a->db);
    return c;
}

static long long redis_int(redisContext *c, const char *format, const char *arg)
{
    redisReply *r = redis_cmd(c, format, arg);
    if (r->type != REDIS_REPLY_INTEGER)
        die("redis %s: expected an integer", format);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Reads `n` pipelined replies, each expected to be a bulk string (XADD's ID). */
static void redis_drain_replies(redisContext *c, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        void *reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK)
            die("redis %s: %s", what, c->errstr);
        redisReply *r = redis_check(c, reply, what);
        freeReplyObject(r);
    }
}

/* UNLINKs every key under "{prefix}:" (untimed clean-up between runs). */
static void redis_delete_prefix(redisContext *c, const char *prefix)
{
    char pattern[KEY_BYTES];
    fmt(pattern, sizeof pattern, "%s:*", prefix);
    char cursor[32] = "0";
    for (int rounds = 0; rounds < 1000000; rounds++) {
        redisReply *r = redis_cmd(c, "SCAN %s MATCH %s COUNT 5000", cursor, pattern);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            die("redis SCAN: unexpected reply");
        fmt(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        if (keys->elements > 0) {
            const char **argv = xcalloc(keys->elements + 1, sizeof *argv);
            size_t *lens = xcalloc(keys->elements + 1, sizeof *lens);
            argv[0] = "UNLINK";
            lens[0] = 6;
            for (size_t i = 0; i < keys->elements; i++) {
                argv[i + 1] = keys->element[i]->str;
                lens[i + 1] = keys->element[i]->len;
            }
            freeReplyObject(
                redis_check(c, redisCommandArgv(c, (int)keys->elements + 1, argv, lens), "UNLINK"));
            free(argv);
            free(lens);
        }
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0)
            return;
    }
    die("SCAN did not finish");
}

/* ------------------------------------------------------------------------ */
/* Jobs                                                                     */
/* ------------------------------------------------------------------------ */

/* Names of one run: prefix, job IDs "<tag>-<n>", users "<tag>u<i>". */
struct run_names {
    char prefix[NAME_BYTES];
    char tag[NAME_BYTES];
};

/* What the render mix remembers of one user: the hold a capture or a
 * release is still to close, and the last consume not yet refunded. */
struct render_user {
    uint64_t hold_seq; /* the hold's job ID is "<tag>-<hold_seq>" */
    int64_t hold_amount;
    uint64_t charge_seq; /* a consume's */
    int64_t charge_amount;
    bool hold_open;
    bool charge_open;
};

/* Generates the jobs of one run, deterministically. */
struct gen {
    uint64_t rng;
    const struct run_names *names;
    uint64_t users;
    uint32_t *period_index;     /* per user: the last period allocated */
    struct render_user *render; /* per user; MIX_RENDER only */
    uint64_t seq;
    uint64_t type_count[JOB_TYPE_COUNT]; /* jobs generated, by type */
    msgpack_sbuffer buf;
};

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static void user_name(const struct run_names *n, uint64_t i, char *out, size_t len)
{
    fmt(out, len, "%su%" PRIu64, n->tag, i);
}

static void period_name(uint32_t index, char *out, size_t len)
{
    fmt(out, len, "%04u-%02u", (unsigned)(FIRST_YEAR + index / 12), (unsigned)(index % 12 + 1));
}

static void gen_init(struct gen *g, const struct run_names *names, uint64_t users, uint64_t seed)
{
    *g = (struct gen){.rng = seed | 1, .names = names, .users = users};
    g->period_index = xcalloc(users, sizeof *g->period_index);
    g->render = xcalloc(users, sizeof *g->render);
    msgpack_sbuffer_init(&g->buf);
}

static void gen_free(struct gen *g)
{
    free(g->period_index);
    free(g->render);
    msgpack_sbuffer_destroy(&g->buf);
}

static void set_consume(struct gen *g, struct job *j)
{
    j->type = JOB_CONSUME;
    j->consume.amount = 1 + (int64_t)(rng_next(&g->rng) % 10);
    j->consume.has_tool = true;
    fmt(j->consume.tool, sizeof j->consume.tool, "bench");
}

/* Closes the user's open hold: a quarter are released, the rest captured
 * for 0 (a tenth of the captures), all of it (a fifth) or a part. */
static void set_render_close(struct gen *g, struct render_user *u, struct job *j)
{
    unsigned roll = (unsigned)(rng_next(&g->rng) % 100);
    ASSERT(u->hold_open);
    ASSERT(u->hold_amount >= 20);
    u->hold_open = false;
    if (roll < 25) {
        j->type = JOB_RELEASE;
        fmt(j->release.hold, sizeof j->release.hold, "%s-%" PRIu64, g->names->tag, u->hold_seq);
        return;
    }
    j->type = JOB_CAPTURE;
    fmt(j->capture.hold, sizeof j->capture.hold, "%s-%" PRIu64, g->names->tag, u->hold_seq);
    if (roll < 33)
        j->capture.amount = 0;
    else if (roll < 48)
        j->capture.amount = u->hold_amount;
    else
        j->capture.amount = 1 + (int64_t)(rng_next(&g->rng) % (uint64_t)(u->hold_amount - 1));
}

/* The render mix, per user: a hold of 20..100, closed by a capture or a
 * release at the user's next turn (never the very next job), consumes
 * between them, now and then a refund of the last consume (all of it or a
 * part) and a grant. Each job is one nothing rejects: the seed's allocation
 * is far above any spending, and every capture, release and refund names
 * an applied hold or consume of its own user, once. */
static void gen_render_job(struct gen *g, uint64_t user, uint64_t seq, unsigned roll, struct job *j)
{
    struct render_user *u = &g->render[user];
    ASSERT(user < g->users);
    if (u->hold_open && seq > u->hold_seq + 1 && roll < 70) {
        set_render_close(g, u, j);
    } else if (!u->hold_open && roll < 50) {
        j->type = JOB_HOLD;
        j->hold.amount = 20 + (int64_t)(rng_next(&g->rng) % 81);
        j->hold.has_tool = true;
        fmt(j->hold.tool, sizeof j->hold.tool, "render");
        u->hold_open = true;
        u->hold_seq = seq;
        u->hold_amount = j->hold.amount;
    } else if (roll >= 90 && roll < 95 && u->charge_open) {
        j->type = JOB_REFUND;
        fmt(j->refund.charge, sizeof j->refund.charge, "%s-%" PRIu64, g->names->tag, u->charge_seq);
        j->refund.has_amount = u->charge_amount > 1 && (rng_next(&g->rng) & 1) != 0;
        if (j->refund.has_amount)
            j->refund.amount = 1 + (int64_t)(rng_next(&g->rng) % (uint64_t)(u->charge_amount - 1));
        u->charge_open = false;
    } else if (roll >= 95) {
        j->type = JOB_GRANT;
        j->grant.amount = 1 + (int64_t)(rng_next(&g->rng) % 100);
        j->grant.has_reason = true;
        fmt(j->grant.reason, sizeof j->grant.reason, "bench");
    } else {
        set_consume(g, j);
        u->charge_open = true;
        u->charge_seq = seq;
        u->charge_amount = j->consume.amount;
    }
}

/* Builds the next job of `mix` into j (its ID: "<tag>-<seq>"). */
static void gen_job(struct gen *g, enum mix mix, struct job *j)
{
    memset(j, 0, sizeof *j);
    uint64_t seq = g->seq++;
    uint64_t user = rng_next(&g->rng) % g->users;
    unsigned roll = (unsigned)(rng_next(&g->rng) % 100);
    fmt(j->id, sizeof j->id, "%s-%" PRIu64, g->names->tag, seq);
    user_name(g->names, user, j->user, sizeof j->user);
    if (mix == MIX_RENDER) {
        gen_render_job(g, user, seq, roll, j);
        g->type_count[j->type]++;
        return;
    }
    bool purchase =
        (mix == MIX_CONSUME_HEAVY && roll >= 90 && roll < 97) || (mix == MIX_HOT && roll >= 93);
    bool allocate = mix == MIX_CONSUME_HEAVY && roll >= 97;
    if (purchase) {
        j->type = JOB_PURCHASE;
        fmt(j->purchase.pack, sizeof j->purchase.pack, "%s", PACK_ID);
        fmt(j->purchase.payment_ref, sizeof j->purchase.payment_ref, "%s-p%" PRIu64, g->names->tag, seq);
    } else if (allocate) {
        j->type = JOB_ALLOCATE;
        fmt(j->allocate.plan, sizeof j->allocate.plan, "%s", PLAN_ID);
        period_name(++g->period_index[user], j->allocate.period, sizeof j->allocate.period);
    } else {
        set_consume(g, j);
    }
    g->type_count[j->type]++;
}

/* Appends "XADD {prefix}:jobs:{type} * job <msgpack>" to the pipeline. */
static void append_xadd(redisContext *c, const char *prefix, const struct job *j,
                        msgpack_sbuffer *buf)
{
    char key[KEY_BYTES];
    fmt(key, sizeof key, "%s:jobs:%s", prefix, job_stream_name(job_type_ops(j->type)->stream));
    msgpack_sbuffer_clear(buf);
    if (codec_encode_job(j, buf) != 0)
        die("cannot encode job %s", j->id);
    const char *argv[] = {"XADD", key, "*", "job", buf->data};
    size_t lens[] = {4, strlen(key), 1, 3, buf->size};
    if (redisAppendCommandArgv(c, 5, argv, lens) != REDIS_OK)
        die("redis: cannot queue XADD");
}

/* Enqueues `count` jobs of `mix` in pipelined chunks; returns jobs/s of the enqueue. */
static double enqueue_backlog(redisContext *c, struct gen *g, enum mix mix, uint64_t count)
{
    struct job j;
    int64_t t0 = now_ns();
    for (uint64_t done = 0; done < count;) {
        size_t chunk = count - done < XADD_CHUNK ? (size_t)(count - done) : XADD_CHUNK;
        for (size_t i = 0; i < chunk; i++) {
            gen_job(g, mix, &j);
            append_xadd(c, g->names->prefix, &j, &g->buf);
        }
        redis_drain_replies(c, chunk, "XADD");
        done += chunk;
    }
    return (double)count / seconds_of(now_ns() - t0);
}

/* One allocate of period index 0 per user, IDs "<tag>s-<i>" (not timed). */
static void enqueue_seed(redisContext *c, struct gen *g)
{
    struct job j;
    for (uint64_t done = 0; done < g->users;) {
        size_t chunk = g->users - done < XADD_CHUNK ? (size_t)(g->users - done) : XADD_CHUNK;
        for (size_t i = 0; i < chunk; i++) {
            memset(&j, 0, sizeof j);
            j.type = JOB_ALLOCATE;
            fmt(j.id, sizeof j.id, "%ss-%" PRIu64, g->names->tag, done + i);
            user_name(g->names, done + i, j.user, sizeof j.user);
            fmt(j.allocate.plan, sizeof j.allocate.plan, "%s", PLAN_ID);
            period_name(0, j.allocate.period, sizeof j.allocate.period);
            append_xadd(c, g->names->prefix, &j, &g->buf);
        }
        redis_drain_replies(c, chunk, "XADD");
        done += chunk;
    }
}

/* ------------------------------------------------------------------------ */
/* The worker process                                                       */
/* ------------------------------------------------------------------------ */

/* Variables the benchmark sets for each worker; the rest are inherited.
 * CREDITS_HTTP_ADDR is emptied (no metrics endpoint), so that no port can
 * clash with another worker on the machine. */
static const char *const g_worker_vars[] = {"CREDITS_PREFIX",         "CREDITS_CONSUMER",
                                            "CREDITS_BATCH_MAX",      "CREDITS_LOG_LEVEL",
                                            "CREDITS_RESULTS_MAXLEN", "CREDITS_HTTP_ADDR",
                                            "CREDITS_SWEEP_INTERVAL_MS"};
#define WORKER_VAR_COUNT (sizeof g_worker_vars / sizeof g_worker_vars[0])

static bool is_worker_var(const char *entry)
{
    for (size_t i = 0; i < WORKER_VAR_COUNT; i++) {
        size_t n = strlen(g_worker_vars[i]);
        if (strncmp(entry, g_worker_vars[i], n) == 0 && entry[n] == '=')
            return true;
    }
    return false;
}

/* environ without our variables, plus `extra` (NULL-terminated). Freed by the caller. */
static char **worker_env(char *const *extra)
{
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    size_t extra_count = 0;
    while (extra[extra_count])
        extra_count++;
    char **env = xcalloc(n + extra_count + 1, sizeof *env);
    for (size_t i = 0; i < n; i++)
        if (!is_worker_var(environ[i]))
            env[k++] = environ[i];
    for (size_t i = 0; i < extra_count; i++)
        env[k++] = extra[i];
    env[k] = NULL;
    return env;
}

/* Starts worker number `index` (0..WORKERS_MAX-1; each its own consumer),
 * the binary `path`, on `prefix`; batch 0 leaves CREDITS_BATCH_MAX unset;
 * `sweep_var` ("CREDITS_SWEEP_INTERVAL_MS=N") or NULL for the default. */
static pid_t worker_start_nth(const struct options *o, const char *path, const char *prefix,
                              int64_t batch, int index, const char *sweep_var)
{
    char v_prefix[KEY_BYTES], v_consumer[KEY_BYTES], v_batch[64];
    fmt(v_prefix, sizeof v_prefix, "CREDITS_PREFIX=%s", prefix);
    fmt(v_consumer, sizeof v_consumer, "CREDITS_CONSUMER=bench-%ld-%d", (long)getpid(), index);
    fmt(v_batch, sizeof v_batch, "CREDITS_BATCH_MAX=%" PRId64, batch);
    char *extra[8];
    size_t n = 0;
    extra[n++] = v_prefix;
    extra[n++] = v_consumer;
    extra[n++] = "CREDITS_LOG_LEVEL=warn";
    extra[n++] = "CREDITS_RESULTS_MAXLEN=" RESULTS_MAXLEN;
    extra[n++] = "CREDITS_HTTP_ADDR=";
    if (batch)
        extra[n++] = v_batch;
    if (sweep_var)
        extra[n++] = (char *)sweep_var;
    extra[n] = NULL;
    char **env = worker_env(extra);
    int log_fd = -1;
    if (o->worker_log) {
        log_fd = open(o->worker_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0)
            die("cannot open %s: %s", o->worker_log, strerror(errno));
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (log_fd >= 0)
            dup2(log_fd, STDERR_FILENO);
        char *argv[] = {(char *)path, NULL};
        execve(path, argv, env);
        _exit(127);
    }
    if (log_fd >= 0)
        close(log_fd);
    free(env);
    g_worker_pids[index] = pid;
    return pid;
}

static void describe_status(int status, char *out, size_t len)
{
    if (WIFEXITED(status))
        fmt(out, len, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        fmt(out, len, "killed by signal %d", WTERMSIG(status));
    else
        fmt(out, len, "wait status %d", status);
}

/* A worker that has exited need not be killed if the benchmark dies. */
static void forget_worker(pid_t pid)
{
    for (int i = 0; i < WORKERS_MAX; i++)
        if (g_worker_pids[i] == pid)
            g_worker_pids[i] = 0;
}

/* Dies if the worker has exited. */
static void worker_check_alive(pid_t pid)
{
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == 0)
        return;
    forget_worker(pid);
    char what[64];
    describe_status(status, what, sizeof what);
    die("the worker (pid %ld) ended on its own: %s%s", (long)pid, what,
        r < 0 ? " (waitpid failed)" : "");
}

/* SIGTERM, then waits (bounded) for exit status 0. */
static void worker_stop(pid_t pid)
{
    if (kill(pid, SIGTERM) != 0)
        die("kill(%ld, SIGTERM): %s", (long)pid, strerror(errno));
    int64_t deadline = now_ns() + STOP_WAIT_NS;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0)
            die("waitpid(%ld): %s", (long)pid, strerror(errno));
        if (now_ns() > deadline)
            die("the worker (pid %ld) did not exit within %d s of SIGTERM", (long)pid,
                (int)(STOP_WAIT_NS / NS_PER_S));
        sleep_ns(5 * NS_PER_MS);
    }
    forget_worker(pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char what[64];
        describe_status(status, what, sizeof what);
        die("the worker (pid %ld) stopped on SIGTERM with %s, not exit status 0", (long)pid, what);
    }
}

/* VmHWM of a live process, in MB; -1 if unreadable. */
static double peak_rss_mb(pid_t pid)
{
    char path[64], line[LINE_BYTES];
    fmt(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    double mb = -1;
    while (fgets(line, sizeof line, f)) {
        long kb = 0;
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) {
            mb = (double)kb / 1024.0;
            break;
        }
    }
    fclose(f);
    return mb;
}

/* The worker's default CREDITS_BATCH_MAX, from its --check-config. */
static int64_t worker_default_batch(const char *worker_path)
{
    char cmd[LINE_BYTES + 64], line[LINE_BYTES];
    fmt(cmd, sizeof cmd, "env -u CREDITS_BATCH_MAX '%s' --check-config", worker_path);
    if (strchr(worker_path, '\''))
        die("the worker path may not contain a quote");
    FILE *p = popen(cmd, "r");
    if (!p)
        die("cannot run %s --check-config", worker_path);
    long long batch = 0;
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "CREDITS_BATCH_MAX=%lld", &batch) == 1)
            break;
    while (fgets(line, sizeof line, p)) {
    }
    int status = pclose(p);
    if (batch <= 0 || status != 0)
        die("cannot read CREDITS_BATCH_MAX from '%s --check-config'", worker_path);
    return (int64_t)batch;
}

/* ------------------------------------------------------------------------ */
/* CPU accounting (where the time goes)                                     */
/* ------------------------------------------------------------------------ */

/* utime+stime in clock ticks of one process, and its parent; false if gone. */
static bool proc_cpu(pid_t pid, long long *ticks, pid_t *ppid)
{
    char path[64], buf[1024];
    fmt(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p)
        return false;
    /* after ")": state(3) ppid(4) ... utime(14) stime(15) */
    char state = 0;
    long pp = 0;
    unsigned long long skip[9], ut = 0, st = 0;
    int got = sscanf(p + 1, " %c %ld %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
                     &state, &pp, &skip[0], &skip[1], &skip[2], &skip[3], &skip[4], &skip[5],
                     &skip[6], &skip[7], &skip[8], &ut, &st);
    if (got != 13)
        return false;
    *ticks = (long long)(ut + st);
    if (ppid)
        *ppid = (pid_t)pp;
    return true;
}

/* CPU ticks of `root` and of each of its direct children (PostgreSQL's
 * backends), by PID: a backend that starts in the window counts from 0, one
 * that ends in it is left out. */
#define TREE_PIDS_MAX 512

struct tree_cpu {
    size_t count;
    pid_t pid[TREE_PIDS_MAX];
    long long ticks[TREE_PIDS_MAX];
};

static void tree_add(struct tree_cpu *t, pid_t pid, long long ticks)
{
    if (t->count < TREE_PIDS_MAX) {
        t->pid[t->count] = pid;
        t->ticks[t->count++] = ticks;
    }
}

static void tree_cpu_read(pid_t root, struct tree_cpu *t)
{
    t->count = 0;
    long long ticks = 0;
    if (root <= 0)
        return;
    if (proc_cpu(root, &ticks, NULL))
        tree_add(t, root, ticks);
    DIR *d = opendir("/proc");
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)atol(e->d_name);
        pid_t ppid = 0;
        if (pid != root && proc_cpu(pid, &ticks, &ppid) && ppid == root)
            tree_add(t, pid, ticks);
    }
    closedir(d);
}

static long long tree_cpu_delta(const struct tree_cpu *a, const struct tree_cpu *b)
{
    long long total = 0;
    for (size_t i = 0; i < b->count; i++) {
        long long before = 0;
        for (size_t k = 0; k < a->count; k++)
            if (a->pid[k] == b->pid[i])
                before = a->ticks[k];
        total += b->ticks[i] - before;
    }
    return total;
}

/* Busy ticks of the whole machine (all but idle and iowait; niced
 * processes count), from /proc/stat. */
static long long machine_busy(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    unsigned long long v[8] = {0};
    long long busy = 0;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) == 8)
        busy = (long long)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
    fclose(f);
    return busy;
}

struct cpu_snap {
    long long worker, redis, bench, busy;
    struct tree_cpu pg;
};

static void cpu_snap(const struct options *o, pid_t worker, struct cpu_snap *s)
{
    s->worker = s->redis = s->bench = 0;
    if (worker > 0)
        proc_cpu(worker, &s->worker, NULL);
    tree_cpu_read(o->pg_pid, &s->pg);
    if (o->redis_pid > 0)
        proc_cpu(o->redis_pid, &s->redis, NULL);
    proc_cpu(getpid(), &s->bench, NULL);
    s->busy = machine_busy();
}

/* CPU use between two snapshots, each in % of one core. `other`: the rest
 * of the machine (processes outside this benchmark, the kernel). */
struct cpu_use {
    double worker, pg, redis, bench, other;
};

static void cpu_use(const struct cpu_snap *a, const struct cpu_snap *b, double seconds,
                    struct cpu_use *u)
{
    double k = 100.0 / ((double)sysconf(_SC_CLK_TCK) * seconds);
    long long worker = b->worker - a->worker, pg = tree_cpu_delta(&a->pg, &b->pg);
    long long redis = b->redis - a->redis, bench = b->bench - a->bench;
    long long other = (b->busy - a->busy) - worker - pg - redis - bench;
    u->worker = (double)worker * k;
    u->pg = (double)pg * k;
    u->redis = (double)redis * k;
    u->bench = (double)bench * k;
    u->other = other > 0 ? (double)other * k : 0;
}

/* ------------------------------------------------------------------------ */
/* PostgreSQL counters (what the database did for a run)                    */
/* ------------------------------------------------------------------------ */

#define BACKEND_GONE_WAIT_NS (10 * NS_PER_S)

struct pg_counters {
    bool ok;
    long long syncs; /* pg_stat_wal.wal_sync: WAL flushes to disk */
    long long wal_bytes;
    long long checkpoints; /* timed and requested, begun */
};

/* pg_open() prepares it; wait_sample() runs it. */
#define WAIT_SAMPLE_STATEMENT "wait_sample"

static PGconn *pg_open(const char *conninfo)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *values[] = {conninfo, PG_CONNECT_TIMEOUT, "credits-bench", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (PQstatus(conn) != CONNECTION_OK)
        die("cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
    PGresult *r = PQexec(conn, "SET statement_timeout = '30s'");
    PQclear(r);
    /* Prepared once: planning the view each time cost PostgreSQL about
     * 0.45 ms per sample, more than running it (0.3 ms), every 10 ms of a
     * timed run. */
    r = PQprepare(conn, WAIT_SAMPLE_STATEMENT,
                  "SELECT state, coalesce(wait_event_type, ''), coalesce(wait_event, '') "
                  "FROM pg_stat_activity "
                  "WHERE application_name = 'credits-worker' AND state IS NOT NULL",
                  0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("cannot prepare the wait sample: %s", PQerrorMessage(conn));
    PQclear(r);
    return conn;
}

/* A one-row, one-column query as an integer; -1 if it failed. */
static long long pg_int(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* Waits (bounded) until no worker backend is left: a backend flushes its
 * statistics when it exits. */
static void pg_wait_workers_gone(PGconn *conn)
{
    int64_t deadline = now_ns() + BACKEND_GONE_WAIT_NS;
    while (pg_int(conn, "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'credits-worker'") > 0) {
        if (now_ns() > deadline)
            die("a credits-worker backend is still connected %d s after its worker stopped",
                (int)(BACKEND_GONE_WAIT_NS / NS_PER_S));
        sleep_ns(10 * NS_PER_MS);
    }
}

static void pg_counters_read(PGconn *conn, struct pg_counters *c)
{
    pg_wait_workers_gone(conn);
    PGresult *r = PQexec(conn, "SELECT wal_sync, wal_bytes FROM pg_stat_wal");
    c->ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (c->ok) {
        c->syncs = atoll(PQgetvalue(r, 0, 0));
        c->wal_bytes = atoll(PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    c->checkpoints = pg_int(conn, "SELECT checkpoints_timed + checkpoints_req "
                                  "FROM pg_stat_bgwriter");
    if (c->checkpoints < 0) /* PostgreSQL 17 and later */
        c->checkpoints = pg_int(conn, "SELECT num_timed + num_requested "
                                      "FROM pg_stat_checkpointer");
}

static void pg_counters_delta(const struct pg_counters *a, const struct pg_counters *b,
                              struct pg_counters *d)
{
    d->ok = a->ok && b->ok;
    d->syncs = b->syncs - a->syncs;
    d->wal_bytes = b->wal_bytes - a->wal_bytes;
    d->checkpoints =
        a->checkpoints >= 0 && b->checkpoints >= 0 ? b->checkpoints - a->checkpoints : -1;
}

/* Where the worker's database sessions spend their time: pg_stat_activity
 * sampled every SAMPLE_NS while a run is timed. */
#define SAMPLE_NS (10 * NS_PER_MS)

enum wait_kind {
    WAIT_CPU,    /* active, no wait event: executing */
    WAIT_WAL,    /* writing or flushing WAL (commit fsync) */
    WAIT_IN_TXN, /* idle in transaction: waiting for the worker's next statement */
    WAIT_IDLE,   /* idle between transactions: the worker is elsewhere */
    WAIT_LOCK,   /* heavyweight lock (row or relation) */
    WAIT_OTHER,  /* any other wait (data file I/O, buffer locks, ...) */
};
#define WAIT_KINDS 6

struct wait_profile {
    uint64_t samples;
    uint64_t count[WAIT_KINDS];
    int64_t next_ns;
};

static enum wait_kind wait_kind_of(const char *state, const char *type, const char *event)
{
    if (strcmp(state, "idle") == 0)
        return WAIT_IDLE;
    if (strncmp(state, "idle in transaction", 19) == 0)
        return WAIT_IN_TXN;
    if (!*type)
        return WAIT_CPU;
    if (strcmp(event, "WALSync") == 0 || strcmp(event, "WALWrite") == 0 ||
        strcmp(event, "WALInsert") == 0 || strcmp(event, "WALBufMapping") == 0)
        return WAIT_WAL;
    if (strcmp(type, "Client") == 0)
        return WAIT_IN_TXN;
    if (strcmp(type, "Lock") == 0)
        return WAIT_LOCK;
    return WAIT_OTHER;
}

/* Takes a sample when one is due. */
static void wait_sample(PGconn *conn, struct wait_profile *p)
{
    int64_t t = now_ns();
    if (!p || t < p->next_ns)
        return;
    p->next_ns = t + SAMPLE_NS;
    PGresult *r = PQexecPrepared(conn, WAIT_SAMPLE_STATEMENT, 0, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        for (int i = 0; i < PQntuples(r); i++) {
            p->samples++;
            p->count[wait_kind_of(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2))]++;
        }
    }
    PQclear(r);
}

/* ------------------------------------------------------------------------ */
/* Checks after a run                                                       */
/* ------------------------------------------------------------------------ */

struct tally {
    uint64_t results;
    uint64_t applied;
    uint64_t rejected;
    uint64_t duplicates;
    uint64_t missing;
    uint64_t foreign; /* results of IDs not in the backlog */
    uint64_t errors[JOB_ERROR_COUNT];
};

/* The n of "<tag>-<n>", or false. */
static bool parse_seq(const char *id, const char *tag, uint64_t *seq)
{
    size_t n = strlen(tag);
    if (strncmp(id, tag, n) != 0 || id[n] != '-' || !isdigit((unsigned char)id[n + 1]))
        return false;
    char *end = NULL;
    unsigned long long v = strtoull(id + n + 1, &end, 10);
    if (*end != '\0' && *end != '-')
        return false;
    *seq = (uint64_t)v;
    return true;
}

/* The msgpack "result" field of one stream entry ([id, [field, value, ...]]). */
static const redisReply *entry_result(const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
        die("unexpected stream entry shape");
    const redisReply *fields = entry->element[1];
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, "result") == 0)
            return fields->element[i + 1];
    die("a results entry without a result field");
}

static void tally_one(const redisReply *value, const char *tag, uint64_t jobs, uint8_t *seen,
                      struct tally *t)
{
    struct result r;
    if (codec_decode_result(value->str, value->len, &r) != 0)
        die("a result that does not decode");
    t->results++;
    uint64_t seq = 0;
    if (!r.has_id || !parse_seq(r.id, tag, &seq) || seq >= jobs) {
        t->foreign++;
        return;
    }
    if (seen[seq]++) {
        t->duplicates++;
        return;
    }
    if (r.error == JOB_OK)
        t->applied++;
    else
        t->rejected++;
    if ((unsigned)r.error < JOB_ERROR_COUNT)
        t->errors[r.error]++;
}

/* Reads the whole results stream and counts outcomes per job of the backlog. */
static void tally_results(redisContext *c, const char *key, const char *tag, uint64_t jobs,
                          struct tally *t)
{
    *t = (struct tally){0};
    uint8_t *seen = xcalloc(jobs, 1);
    char start[64] = "-";
    for (uint64_t rounds = 0; rounds < jobs / XRANGE_CHUNK + 1000; rounds++) {
        redisReply *r = redis_cmd(c, "XRANGE %s %s + COUNT %d", key, start, XRANGE_CHUNK);
        if (r->type != REDIS_REPLY_ARRAY)
            die("XRANGE: unexpected reply");
        size_t n = r->elements;
        for (size_t i = 0; i < n; i++)
            tally_one(entry_result(r->element[i]), tag, jobs, seen, t);
        if (n > 0)
            fmt(start, sizeof start, "(%s", r->element[n - 1]->element[0]->str);
        freeReplyObject(r);
        if (n < XRANGE_CHUNK) {
            for (uint64_t i = 0; i < jobs; i++)
                t->missing += seen[i] == 0;
            free(seen);
            return;
        }
    }
    die("XRANGE of %s did not end", key);
}

/* Entries delivered but not acknowledged, over the three job streams. */
static long long pending_total(redisContext *c, const char *prefix, const char *group)
{
    long long total = 0;
    for (int s = 0; s < JOB_STREAM_COUNT; s++) {
        char key[KEY_BYTES];
        fmt(key, sizeof key, "%s:jobs:%s", prefix, job_stream_name((enum job_stream)s));
        if (redis_int(c, "EXISTS %s", key) == 0)
            continue;
        redisReply *r = redis_cmd(c, "XPENDING %s %s", key, group);
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
            r->element[0]->type != REDIS_REPLY_INTEGER)
            die("XPENDING %s: unexpected reply", key);
        total += r->element[0]->integer;
        freeReplyObject(r);
    }
    return total;
}

/* Dies unless every job has exactly one result and nothing is pending or dead. */
static void check_run(redisContext *c, const char *prefix, const char *group, const char *what,
                      const struct tally *t)
{
    char key[KEY_BYTES];
    fmt(key, sizeof key, "%s:dead", prefix);
    long long dead = redis_int(c, "XLEN %s", key);
    long long pending = pending_total(c, prefix, group);
    if (t->missing || t->duplicates || t->foreign || dead || pending)
        die("%s: %" PRIu64 " jobs without a result, %" PRIu64 " duplicate and %" PRIu64
            " unknown results, %lld dead letters, %lld entries pending",
            what, t->missing, t->duplicates, t->foreign, dead, pending);
}

/* ------------------------------------------------------------------------ */
/* Waiting for results                                                      */
/* ------------------------------------------------------------------------ */

/* Polls XLEN of the results stream until it reaches `expect`; returns the
 * time it was seen there. Dies if the worker exits, or makes no progress for
 * STALL_NS, or the whole wait exceeds `max_ns`. */
static int64_t wait_results(redisContext *c, const char *key, long long expect, pid_t worker,
                            int64_t max_ns, const char *what, PGconn *pg,
                            struct wait_profile *profile)
{
    int64_t start = now_ns(), last_progress = start;
    long long last = -1;
    for (;;) {
        long long n = redis_int(c, "XLEN %s", key);
        int64_t t = now_ns();
        if (n >= expect)
            return t;
        if (n != last) {
            last = n;
            last_progress = t;
        }
        worker_check_alive(worker);
        wait_sample(pg, profile);
        if (t - last_progress > STALL_NS)
            die("%s: the worker made no progress for %d s (%lld of %lld results)", what,
                (int)(STALL_NS / NS_PER_S), n, expect);
        if (t - start > max_ns)
            die("%s: not done after %d s (%lld of %lld results)", what, (int)(max_ns / NS_PER_S), n,
                expect);
        sleep_ns(POLL_NS);
    }
}

/* ------------------------------------------------------------------------ */
/* Runs                                                                     */
/* ------------------------------------------------------------------------ */

struct bench {
    struct options opt;
    struct redis_addr redis;
    redisContext *rc;
    PGconn *pg;
    char nonce[16];
    int run_count;
    size_t side;       /* the worker being measured: 0 (A) or 1 (B) */
    int64_t round;     /* 1..rounds */
    uint64_t row_seed; /* the jobs' PRNG seed: the same for every run of one row */
};

/* Several runs of each row (two workers, or more than one round): the
 * tables label each run with its worker and round, "A1", "B1", "A2"... */
static bool bench_labels_runs(const struct options *o)
{
    return o->side_count > 1 || o->rounds > 1;
}

/* Starts worker `index` of the side being measured. */
static pid_t bench_worker_start_nth(const struct bench *b, const char *prefix, int64_t batch,
                                    int index)
{
    ASSERT(b->side < b->opt.side_count);
    return worker_start_nth(&b->opt, b->opt.worker_paths[b->side], prefix, batch, index, NULL);
}

static pid_t bench_worker_start(const struct bench *b, const char *prefix, int64_t batch)
{
    return bench_worker_start_nth(b, prefix, batch, 0);
}

static void run_names_init(struct bench *b, const char *kind, struct run_names *n)
{
    int k = ++b->run_count;
    fmt(n->prefix, sizeof n->prefix, "bench-%s-%d-%s", b->nonce, k, kind);
    fmt(n->tag, sizeof n->tag, "%s%d", b->nonce, k);
}

static void results_key(const struct run_names *n, char *out, size_t len)
{
    fmt(out, len, "%s:results", n->prefix);
}

/* Seeds `users` accounts with a huge monthly allocation through the worker
 * (default batch), checks them, then empties the results stream. */
static void seed_users(struct bench *b, struct gen *g)
{
    char key[KEY_BYTES];
    results_key(g->names, key, sizeof key);
    enqueue_seed(b->rc, g);
    pid_t pid = bench_worker_start(b, g->names->prefix, 0);
    wait_results(b->rc, key, (long long)g->users, pid, DRAIN_MAX_NS, "seeding", NULL, NULL);
    worker_stop(pid);
    char tag[NAME_BYTES + 2];
    fmt(tag, sizeof tag, "%ss", g->names->tag);
    struct tally t;
    tally_results(b->rc, key, tag, g->users, &t);
    check_run(b->rc, g->names->prefix, b->opt.group, "seeding", &t);
    if (t.applied != g->users)
        die("seeding: %" PRIu64 " of %" PRIu64 " allocations applied (is plan \"" PLAN_ID
            "\" in the catalog?)",
            t.applied, g->users);
    redis_do(b->rc, "DEL %s", key);
}

static char side_letter(size_t side)
{
    ASSERT(side < SIDES_MAX);
    return (char)('A' + side);
}

/* "12 hold, 10 capture, ..." of the jobs generated so far. */
static void type_counts_text(const struct gen *g, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int t = 0; t < JOB_TYPE_COUNT; t++) {
        if (g->type_count[t] == 0)
            continue;
        int n = snprintf(out + used, len - used, "%s%" PRIu64 " %s", used ? ", " : "",
                         g->type_count[t], job_type_name((enum job_type)t));
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

/* Dies unless every job of the backlog was applied: the mixes are built so
 * that nothing is rejected, so a rejection is a fault of the mix or the
 * worker. Names the error codes seen. */
static void check_all_applied(const char *what, const struct tally *t, uint64_t jobs)
{
    ASSERT(t->applied + t->rejected <= jobs);
    if (t->rejected == 0 && t->applied == jobs)
        return;
    char codes[LINE_BYTES];
    size_t used = 0;
    codes[0] = '\0';
    for (int e = 1; e < JOB_ERROR_COUNT; e++) {
        if (t->errors[e] == 0)
            continue;
        int n = snprintf(codes + used, sizeof codes - used, " %s x%" PRIu64,
                         job_error_name((enum job_error)e), t->errors[e]);
        if (n < 0 || (size_t)n >= sizeof codes - used)
            break;
        used += (size_t)n;
    }
    die("%s: %" PRIu64 " of %" PRIu64 " jobs applied, %" PRIu64 " rejected:%s", what, t->applied,
        jobs, t->rejected, codes);
}

struct drain_row {
    const char *scenario;
    int64_t batch;
    bool is_default;
    uint64_t jobs;
    double seconds;
    double jobs_per_s;
    double enqueue_per_s;
    double rss_mb;
    struct cpu_use cpu;
    struct pg_counters pg;
    struct wait_profile waits;
    struct tally tally;
};

/* Scale-out: the same consume backlog drained by `workers` workers at the
 * default batch size, sharing the consumer group. Returns jobs/s. */
static double run_scale(struct bench *b, int workers, uint64_t jobs)
{
    if (workers < 1 || workers > WORKERS_MAX)
        die("internal: %d workers", workers);
    char scenario[32];
    fmt(scenario, sizeof scenario, "scale-%d", workers);
    struct run_names names;
    run_names_init(b, scenario, &names);
    struct gen g;
    gen_init(&g, &names, b->opt.users, UINT64_C(0x9E3779B97F4A7C15) ^ b->row_seed);
    seed_users(b, &g);
    enqueue_backlog(b->rc, &g, MIX_CONSUME_ONLY, jobs);
    char key[KEY_BYTES];
    results_key(&names, key, sizeof key);
    struct wait_profile waits = {0};
    pid_t pids[WORKERS_MAX];
    int64_t t0 = now_ns();
    for (int i = 0; i < workers; i++)
        pids[i] = bench_worker_start_nth(b, names.prefix, 0, i);
    int64_t t1 =
        wait_results(b->rc, key, (long long)jobs, pids[0], DRAIN_MAX_NS, scenario, b->pg, &waits);
    for (int i = 0; i < workers; i++)
        worker_stop(pids[i]);
    double per_s = (double)jobs / seconds_of(t1 - t0);
    redis_delete_prefix(b->rc, names.prefix);
    gen_free(&g);
    fprintf(stderr, "bench: %c %s: %.0f jobs/s\n", side_letter(b->side), scenario, per_s);
    return per_s;
}

/* One drain: seed, enqueue the backlog with no worker running, then time a
 * worker from its start until every job has a result. */
static void run_drain(struct bench *b, const char *scenario, enum mix mix, uint64_t users,
                      int64_t batch, uint64_t jobs, struct drain_row *row)
{
    struct run_names names;
    run_names_init(b, scenario, &names);
    struct gen g;
    gen_init(&g, &names, users, UINT64_C(0x9E3779B97F4A7C15) ^ b->row_seed);
    seed_users(b, &g);
    *row = (struct drain_row){.scenario = scenario,
                              .batch = batch,
                              .jobs = jobs,
                              .is_default = batch == b->opt.default_batch};
    row->enqueue_per_s = enqueue_backlog(b->rc, &g, mix, jobs);

    char key[KEY_BYTES];
    results_key(&names, key, sizeof key);
    struct cpu_snap before, after;
    struct pg_counters pg_before, pg_after;
    pg_counters_read(b->pg, &pg_before);
    cpu_snap(&b->opt, 0, &before);
    int64_t t0 = now_ns();
    pid_t pid = bench_worker_start(b, names.prefix, batch);
    int64_t t1 =
        wait_results(b->rc, key, (long long)jobs, pid, DRAIN_MAX_NS, scenario, b->pg, &row->waits);
    cpu_snap(&b->opt, pid, &after);
    row->seconds = seconds_of(t1 - t0);
    row->jobs_per_s = (double)jobs / row->seconds;
    row->rss_mb = peak_rss_mb(pid);
    cpu_use(&before, &after, row->seconds, &row->cpu);
    worker_stop(pid);
    pg_counters_read(b->pg, &pg_after);
    pg_counters_delta(&pg_before, &pg_after, &row->pg);

    tally_results(b->rc, key, names.tag, jobs, &row->tally);
    check_run(b->rc, names.prefix, b->opt.group, scenario, &row->tally);
    check_all_applied(scenario, &row->tally, jobs);
    redis_delete_prefix(b->rc, names.prefix);
    char types[LINE_BYTES];
    type_counts_text(&g, types, sizeof types);
    gen_free(&g);
    fprintf(stderr,
            "bench: %c %-9s batch %4" PRId64 ": %7" PRIu64 " jobs in %6.2f s = %6.0f jobs/s "
            "(enqueued at %.0f/s; %s)\n",
            side_letter(b->side), scenario, batch, jobs, row->seconds, row->jobs_per_s,
            row->enqueue_per_s, types);
}

/* Whether the side being measured knows every job type of `mix`: one job
 * of each type the mix sends (and no others), on a fresh prefix with no
 * seeding, so most are rejected by the ledger (no credits, no such hold).
 * A worker that does not know a type answers invalid_job (contract section
 * 2); its message goes into `why`. Not timed. */
static bool worker_knows_mix(struct bench *b, enum mix mix, char *why, size_t why_len)
{
    static const enum job_type render_types[] = {JOB_CONSUME, JOB_HOLD,   JOB_CAPTURE,
                                                 JOB_RELEASE, JOB_REFUND, JOB_GRANT};
    ASSERT(why_len > 0);
    why[0] = '\0';
    if (mix != MIX_RENDER)
        return true;
    const size_t count = sizeof render_types / sizeof render_types[0];
    struct run_names names;
    run_names_init(b, "probe", &names);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    for (size_t i = 0; i < count; i++) {
        struct job j;
        memset(&j, 0, sizeof j);
        j.type = render_types[i];
        fmt(j.id, sizeof j.id, "%s-%zu", names.tag, i);
        fmt(j.user, sizeof j.user, "%su0", names.tag);
        if (j.type == JOB_CONSUME)
            j.consume.amount = 1;
        else if (j.type == JOB_HOLD)
            j.hold.amount = 20;
        else if (j.type == JOB_CAPTURE)
            fmt(j.capture.hold, sizeof j.capture.hold, "%s-h", names.tag);
        else if (j.type == JOB_RELEASE)
            fmt(j.release.hold, sizeof j.release.hold, "%s-h", names.tag);
        else if (j.type == JOB_REFUND)
            fmt(j.refund.charge, sizeof j.refund.charge, "%s-c", names.tag);
        else if (j.type == JOB_GRANT)
            j.grant.amount = 1;
        append_xadd(b->rc, names.prefix, &j, &buf);
    }
    redis_drain_replies(b->rc, count, "XADD");
    msgpack_sbuffer_destroy(&buf);
    char key[KEY_BYTES];
    results_key(&names, key, sizeof key);
    pid_t pid = bench_worker_start(b, names.prefix, 0);
    wait_results(b->rc, key, (long long)count, pid, WARMUP_WAIT_NS, "probe", NULL, NULL);
    worker_stop(pid);
    struct tally t;
    tally_results(b->rc, key, names.tag, count, &t);
    if (t.missing || t.duplicates || t.foreign)
        die("probe of %s: %" PRIu64 " of %zu jobs answered once", g_batch_mix_names[mix],
            count - t.missing - t.duplicates, count);
    bool known = t.errors[JOB_ERR_INVALID_JOB] == 0;
    if (!known)
        fmt(why, why_len, "%" PRIu64 " of its %zu job types answered invalid_job",
            t.errors[JOB_ERR_INVALID_JOB], count);
    redis_delete_prefix(b->rc, names.prefix);
    return known;
}

/* --- latency --- */

struct latency_shared {
    const struct redis_addr *redis;
    const struct run_names *names;
    uint64_t users;
    double rate;
    uint64_t total; /* jobs the producer is to send */
    _Atomic uint64_t sent;
    atomic_bool producer_done;
    atomic_bool reader_done;
    int64_t first_send_ns;
    int64_t last_send_ns;
    char start_id[64];   /* results after this stream ID are ours */
    int64_t *latency_ns; /* [total] */
    int64_t *sent_ns;    /* [total], send time of latency_ns[i] */
    uint64_t received;
    uint64_t foreign;
};

/* XADDs consume jobs at `rate`, in bursts every TICK_NS (paced to absolute
 * deadlines), each job's ID carrying its send time: "<tag>-<seq>-<ns>". */
static void *producer_main(void *arg)
{
    struct latency_shared *s = arg;
    redisContext *c = redis_open(s->redis);
    struct gen g;
    gen_init(&g, s->names, s->users, UINT64_C(0xD1B54A32D192ED03));
    struct job j;
    int64_t start = now_ns();
    uint64_t sent = 0;
    for (uint64_t tick = 1; sent < s->total; tick++) {
        int64_t deadline = start + (int64_t)tick * TICK_NS;
        sleep_until_ns(deadline);
        double due_f = s->rate * seconds_of(deadline - start);
        uint64_t due = due_f >= (double)s->total ? s->total : (uint64_t)due_f;
        size_t burst = 0;
        for (; sent < due; sent++, burst++) {
            gen_job(&g, MIX_CONSUME_ONLY, &j);
            int64_t t = now_ns();
            if (sent == 0)
                s->first_send_ns = t;
            fmt(j.id, sizeof j.id, "%s-%" PRIu64 "-%" PRId64, s->names->tag, sent, t);
            append_xadd(c, s->names->prefix, &j, &g.buf);
            s->last_send_ns = t;
        }
        if (burst) {
            redis_drain_replies(c, burst, "XADD");
            atomic_store(&s->sent, sent);
        }
    }
    atomic_store(&s->producer_done, true);
    gen_free(&g);
    redisFree(c);
    return NULL;
}

/* The send time in "<tag>-<seq>-<ns>", or -1. */
static int64_t send_time_of(const struct result *r, const char *tag, uint64_t total)
{
    uint64_t seq = 0;
    if (!r->has_id || !parse_seq(r->id, tag, &seq) || seq >= total)
        return -1;
    const char *dash = strrchr(r->id, '-');
    return dash ? (int64_t)strtoll(dash + 1, NULL, 10) : -1;
}

/* Records arrival - send for each result of one XREAD reply. */
static void record_latencies(struct latency_shared *s, const redisReply *entries, int64_t arrival)
{
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *value = entry_result(entries->element[i]);
        struct result res;
        if (codec_decode_result(value->str, value->len, &res) != 0)
            die("latency: a result that does not decode");
        int64_t sent_at = send_time_of(&res, s->names->tag, s->total);
        if (sent_at < 0 || s->received >= s->total)
            s->foreign++;
        else {
            s->sent_ns[s->received] = sent_at;
            s->latency_ns[s->received++] = arrival - sent_at;
        }
    }
}

/* XREADs (BLOCK) the results stream until every job sent has its result.
 * Ends the benchmark if results stop coming for STALL_NS after the producer
 * is done, or LATENCY_TAIL_MAX_NS pass after it. */
static void *reader_main(void *arg)
{
    struct latency_shared *s = arg;
    redisContext *c = redis_open(s->redis);
    char key[KEY_BYTES], last[64];
    results_key(s->names, key, sizeof key);
    fmt(last, sizeof last, "%s", s->start_id);
    int64_t done_at = 0, progress_at = 0;
    for (;;) {
        if (atomic_load(&s->producer_done)) {
            int64_t t = now_ns();
            if (s->received + s->foreign >= atomic_load(&s->sent))
                break;
            if (!done_at)
                done_at = progress_at = t;
            if (t - progress_at > STALL_NS || t - done_at > LATENCY_TAIL_MAX_NS)
                die("latency: %" PRIu64 " of %" PRIu64 " results arrived; none for %.0f s",
                    s->received, atomic_load(&s->sent), seconds_of(t - progress_at));
        }
        redisReply *r = redis_cmd(c, "XREAD COUNT %d BLOCK %d STREAMS %s %s", XREAD_COUNT,
                                  XREAD_BLOCK_MS, key, last);
        int64_t arrival = now_ns();
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            const redisReply *entries = r->element[0]->element[1];
            record_latencies(s, entries, arrival);
            if (entries->elements > 0) {
                fmt(last, sizeof last, "%s",
                    entries->element[entries->elements - 1]->element[0]->str);
                progress_at = arrival;
            }
        }
        freeReplyObject(r);
    }
    redisFree(c);
    atomic_store(&s->reader_done, true);
    return NULL;
}

struct latency_row {
    double rate;
    double achieved;
    uint64_t jobs;
    double seconds; /* first send to last result */
    double p50_ms, p99_ms, p999_ms, max_ms;
    double rss_mb;
    struct cpu_use cpu;
    struct pg_counters pg;
    struct wait_profile waits;
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in ms. */
static double percentile_ms(const int64_t *sorted, uint64_t n, double q)
{
    if (n == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / (double)NS_PER_MS;
}

/* Sends one job and waits for its result: the worker is up and connected. */
static void warm_up(struct bench *b, const struct run_names *names, pid_t pid)
{
    struct job j = {.type = JOB_CONSUME, .consume = {.amount = 1}};
    fmt(j.id, sizeof j.id, "%sw", names->tag);
    fmt(j.user, sizeof j.user, "%su0", names->tag);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    append_xadd(b->rc, names->prefix, &j, &buf);
    redis_drain_replies(b->rc, 1, "XADD");
    msgpack_sbuffer_destroy(&buf);
    char key[KEY_BYTES];
    results_key(names, key, sizeof key);
    wait_results(b->rc, key, 1, pid, WARMUP_WAIT_NS, "latency warm-up", NULL, NULL);
}

/* The ID of the last entry of a stream, "0-0" when empty. */
static void last_entry_id(redisContext *c, const char *key, char *out, size_t len)
{
    redisReply *r = redis_cmd(c, "XREVRANGE %s + - COUNT 1", key);
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1)
        fmt(out, len, "%s", r->element[0]->element[0]->str);
    else
        fmt(out, len, "0-0");
    freeReplyObject(r);
}

/* Runs the producer and the reader; meanwhile watches that the worker lives
 * and samples its database sessions. */
static void run_load(struct latency_shared *s, pid_t worker, PGconn *pg, struct wait_profile *waits)
{
    pthread_t producer, reader;
    if (pthread_create(&reader, NULL, reader_main, s) != 0 ||
        pthread_create(&producer, NULL, producer_main, s) != 0)
        die("cannot start the latency threads");
    /* The reader ends on its own deadline (or ends the process). */
    while (!atomic_load(&s->reader_done)) {
        worker_check_alive(worker);
        wait_sample(pg, waits);
        sleep_ns(2 * NS_PER_MS);
    }
    pthread_join(producer, NULL);
    pthread_join(reader, NULL);
}

static void latency_figures(struct latency_shared *s, struct latency_row *row)
{
    row->jobs = s->received;
    double span = seconds_of(s->last_send_ns - s->first_send_ns);
    row->achieved = span > 0 ? (double)(s->total - 1) / span : 0;
    qsort(s->latency_ns, s->received, sizeof *s->latency_ns, cmp_i64);
    row->p50_ms = percentile_ms(s->latency_ns, s->received, 0.50);
    row->p99_ms = percentile_ms(s->latency_ns, s->received, 0.99);
    row->p999_ms = percentile_ms(s->latency_ns, s->received, 0.999);
    row->max_ms = s->received ? (double)s->latency_ns[s->received - 1] / (double)NS_PER_MS : 0;
}

/* Flushes what the runs before left behind: a CHECKPOINT writes and fsyncs
 * every buffer the drains dirtied. Otherwise the latency run would measure
 * the disk writing back the drains before it (their writes queue ahead of
 * each commit's fsync) and the full-page images of a checkpoint they set
 * off. */
static void settle_writes(PGconn *pg)
{
    int64_t t0 = now_ns();
    PQclear(PQexec(pg, "SET statement_timeout = '300s'"));
    PGresult *r = PQexec(pg, "CHECKPOINT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "bench: warning: CHECKPOINT failed: %s", PQerrorMessage(pg));
    PQclear(r);
    PQclear(PQexec(pg, "SET statement_timeout = '30s'"));
    fprintf(stderr, "bench: checkpoint before the latency run: %.2f s\n",
            seconds_of(now_ns() - t0));
}

/* Appends "rate send_ms latency_ms" per job (send time from the first send),
 * in arrival order: where in a run the slow results fall. With several runs
 * of each rate, each line starts with the run's label ("A1 5000 ..."). */
static void write_latency_trace(const struct bench *b, int64_t rate, const struct latency_shared *s)
{
    FILE *f = fopen(b->opt.latency_trace, "a");
    if (!f)
        die("cannot open %s: %s", b->opt.latency_trace, strerror(errno));
    char label[32] = "";
    if (bench_labels_runs(&b->opt))
        fmt(label, sizeof label, "%c%" PRId64 " ", side_letter(b->side), b->round);
    for (uint64_t i = 0; i < s->received; i++)
        fprintf(f, "%s%" PRId64 " %.3f %.3f\n", label, rate,
                (double)(s->sent_ns[i] - s->first_send_ns) / (double)NS_PER_MS,
                (double)s->latency_ns[i] / (double)NS_PER_MS);
    if (fclose(f) != 0)
        die("cannot write %s", b->opt.latency_trace);
}

/* One latency run: seed, start the worker (default batch), offer `rate`
 * consume jobs/s for --seconds, and measure each job's XADD-to-result time. */
static void run_latency(struct bench *b, int64_t rate, struct latency_row *row)
{
    struct run_names names;
    run_names_init(b, "latency", &names);
    settle_writes(b->pg);
    struct gen g;
    gen_init(&g, &names, b->opt.users, UINT64_C(0xA0761D6478BD642F) ^ b->row_seed);
    seed_users(b, &g);
    gen_free(&g);
    *row = (struct latency_row){.rate = (double)rate};

    struct pg_counters pg_before, pg_after;
    pg_counters_read(b->pg, &pg_before);
    pid_t pid = bench_worker_start(b, names.prefix, 0);
    warm_up(b, &names, pid);
    struct latency_shared s = {.redis = &b->redis,
                               .names = &names,
                               .users = b->opt.users,
                               .rate = (double)rate,
                               .total = (uint64_t)rate * (uint64_t)b->opt.seconds};
    char key[KEY_BYTES];
    results_key(&names, key, sizeof key);
    last_entry_id(b->rc, key, s.start_id, sizeof s.start_id);
    s.latency_ns = xcalloc(s.total, sizeof *s.latency_ns);
    s.sent_ns = xcalloc(s.total, sizeof *s.sent_ns);

    struct cpu_snap before, after;
    cpu_snap(&b->opt, pid, &before);
    int64_t t0 = now_ns();
    run_load(&s, pid, b->pg, &row->waits);
    cpu_snap(&b->opt, pid, &after);
    row->seconds = seconds_of(now_ns() - t0);
    row->rss_mb = peak_rss_mb(pid);
    cpu_use(&before, &after, row->seconds, &row->cpu);
    worker_stop(pid);
    pg_counters_read(b->pg, &pg_after);
    pg_counters_delta(&pg_before, &pg_after, &row->pg);
    long long pending = pending_total(b->rc, names.prefix, b->opt.group);
    if (pending)
        die("latency: %lld entries still pending after the worker stopped", pending);

    if (b->opt.latency_trace)
        write_latency_trace(b, rate, &s);
    latency_figures(&s, row);
    free(s.latency_ns);
    free(s.sent_ns);
    redis_delete_prefix(b->rc, names.prefix);
    fprintf(stderr, "bench: %c latency at %" PRId64 "/s: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
            side_letter(b->side), rate, row->p50_ms, row->p99_ms, row->max_ms);
}

/* `count` purchases of `pack` over `users` users (job IDs "<id_tag>-<n>",
 * payment refs "<id_tag>-pay<n>"), applied by a worker at the default batch
 * and checked; then the results stream is emptied (not timed). */
static void seed_purchases(struct bench *b, const struct run_names *names, const char *id_tag,
                           uint64_t count, uint64_t users, const char *pack)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    struct job j;
    for (uint64_t done = 0; done < count;) {
        size_t chunk = count - done < XADD_CHUNK ? (size_t)(count - done) : XADD_CHUNK;
        for (size_t i = 0; i < chunk; i++) {
            uint64_t seq = done + i;
            memset(&j, 0, sizeof j);
            j.type = JOB_PURCHASE;
            fmt(j.id, sizeof j.id, "%s-%" PRIu64, id_tag, seq);
            user_name(names, seq % users, j.user, sizeof j.user);
            fmt(j.purchase.pack, sizeof j.purchase.pack, "%s", pack);
            fmt(j.purchase.payment_ref, sizeof j.purchase.payment_ref, "%s-pay%" PRIu64, id_tag,
                seq);
            append_xadd(b->rc, names->prefix, &j, &buf);
        }
        redis_drain_replies(b->rc, chunk, "XADD");
        done += chunk;
    }
    msgpack_sbuffer_destroy(&buf);
    char key[KEY_BYTES];
    results_key(names, key, sizeof key);
    pid_t pid = bench_worker_start(b, names->prefix, 0);
    wait_results(b->rc, key, (long long)count, pid, DRAIN_MAX_NS, "seeding purchases", NULL,
                 NULL);
    worker_stop(pid);
    struct tally t;
    tally_results(b->rc, key, id_tag, count, &t);
    check_run(b->rc, names->prefix, b->opt.group, "seeding purchases", &t);
    check_all_applied("seeding purchases", &t, count);
    redis_do(b->rc, "DEL %s", key);
}

/* ------------------------------------------------------------------------ */
/* The same-run SQL limit                                                   */
/* ------------------------------------------------------------------------ */

/* What PostgreSQL alone does for the consume drain: the writes and the
 * locks of a worker's batch of consumes and nothing else, one transaction
 * per batch with a durable commit and nothing between them: lock the
 * accounts in user order; insert the jobs (request and result bytes of
 * the worker's sizes); take the credits from the lots, whose IDs the bench
 * looked up before the clock started; insert the entries. A worker must
 * also read the lots and stored decisions, decide, publish and acknowledge:
 * its drain over this is how much of PostgreSQL's capacity it turns into
 * decided jobs. Every statement reads its own arrays, so each is planned
 * as the worker's are (index lookups by key), whatever the tables' size. */
static const char sql_limit_lock[] =
    "SELECT count(*) FROM (SELECT 1 FROM credits.accounts WHERE user_id = ANY($1::text[])\n"
    "                      ORDER BY user_id COLLATE \"C\" FOR NO KEY UPDATE) AS locked";

static const char sql_limit_writes[] =
    "WITH ins AS (INSERT INTO credits.jobs (job_id, type, user_id, status, error, result,\n"
    "                                       request, created_at)\n"
    "             SELECT j.job_id, 'consume', j.user_id, 'applied', NULL, $5::bytea, $6::bytea,\n"
    "                    now()\n"
    "             FROM unnest($1::text[], $2::text[]) AS j(job_id, user_id)),\n"
    "upd AS (UPDATE credits.lots l SET remaining = l.remaining - v.amount\n"
    "        FROM unnest($4::bigint[], $3::bigint[]) AS v(lot_id, amount)\n"
    "        WHERE l.lot_id = v.lot_id)\n"
    "INSERT INTO credits.entries (user_id, job_id, lot_id, kind, delta, tool, ref, origin)\n"
    "SELECT e.user_id, e.job_id, e.lot_id, 'consume', -e.amount, 'bench', NULL, NULL\n"
    "FROM unnest($2::text[], $1::text[], $4::bigint[], $3::bigint[])\n"
    "     AS e(user_id, job_id, lot_id, amount)";

/* Runs one statement of a batch; dies unless it returned `want` (a
 * command's rows, or a query's result status). */
static void sql_limit_exec(PGconn *pg, const char *sql, int nparams, const char *const *params,
                           ExecStatusType want)
{
    PGresult *r = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != want)
        die("sql-limit: %s", PQerrorMessage(pg));
    PQclear(r);
}

/* The lot of each seeded user of `names` (seed_users gives each one). */
static int64_t *sql_limit_lots(PGconn *pg, const struct run_names *names, uint64_t users)
{
    char pattern[NAME_BYTES + 4];
    fmt(pattern, sizeof pattern, "%su%%", names->tag);
    const char *params[] = {pattern};
    PGresult *r = PQexecParams(pg,
                               "SELECT substr(user_id, length($1))::bigint, lot_id"
                               " FROM credits.lots WHERE user_id LIKE $1",
                               1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || (uint64_t)PQntuples(r) != users)
        die("sql-limit: %d lots for %" PRIu64 " seeded users: %s", PQntuples(r), users,
            PQerrorMessage(pg));
    int64_t *lots = xcalloc(users, sizeof *lots);
    for (int i = 0; i < PQntuples(r); i++) {
        long long user = atoll(PQgetvalue(r, i, 0));
        if (user < 0 || (uint64_t)user >= users)
            die("sql-limit: user index %lld out of range", user);
        lots[user] = atoll(PQgetvalue(r, i, 1));
    }
    PQclear(r);
    return lots;
}

/* The average request and result bytes of the consumes stored so far (the
 * consume drains run before), as bytea text of that many zero bytes. */
static char *sql_limit_bytes(PGconn *pg, int column)
{
    long long n = pg_int(pg, column == 0
                                 ? "SELECT avg(octet_length(request))::bigint FROM (SELECT request"
                                   " FROM credits.jobs WHERE type = 'consume' LIMIT 1000) s"
                                 : "SELECT avg(octet_length(result))::bigint FROM (SELECT result"
                                   " FROM credits.jobs WHERE type = 'consume' LIMIT 1000) s");
    if (n <= 0)
        die("sql-limit: no consume stored to take the sizes of its request and result from");
    char *hex = xcalloc(3 + 2 * (size_t)n, 1);
    memcpy(hex, "\\x", 2);
    memset(hex + 2, '0', 2 * (size_t)n);
    return hex;
}

/* Appends `item` and a separator to an array literal being built in `out`. */
static size_t array_put(char *out, size_t used, size_t cap, const char *item, bool last)
{
    int n = snprintf(out + used, cap - used, "%s%s", item, last ? "}" : ",");
    if (n < 0 || (size_t)n >= cap - used)
        die("sql-limit: array literal too long");
    return used + (size_t)n;
}

/* One batch of `count` consumes from job `first` on (user = job % users,
 * 1..10 credits) in one transaction; dies unless it wrote `count` entries. */
static void sql_limit_one(struct bench *b, const struct run_names *names, uint64_t first,
                          uint64_t count, uint64_t users, const int64_t *lot_of,
                          const char *request, const char *result)
{
    size_t cap = (size_t)count * (NAME_BYTES + 2) + 2;
    char *ids = xcalloc(cap, 1), *who = xcalloc(cap, 1), *amounts = xcalloc(cap, 1);
    char *lots = xcalloc(cap, 1);
    size_t ui = 1, uu = 1, ua = 1, ul = 1;
    ids[0] = who[0] = amounts[0] = lots[0] = '{';
    for (uint64_t i = first; i < first + count; i++) {
        char id[NAME_BYTES + 16], user[NAME_BYTES + 16], amount[8], lot[24];
        bool last = i + 1 == first + count;
        fmt(id, sizeof id, "%sq-%" PRIu64, names->tag, i);
        user_name(names, i % users, user, sizeof user);
        fmt(amount, sizeof amount, "%d", (int)(1 + i % 10));
        fmt(lot, sizeof lot, "%" PRId64, lot_of[i % users]);
        ui = array_put(ids, ui, cap, id, last);
        uu = array_put(who, uu, cap, user, last);
        ua = array_put(amounts, ua, cap, amount, last);
        ul = array_put(lots, ul, cap, lot, last);
    }
    const char *params[] = {ids, who, amounts, lots, result, request};
    sql_limit_exec(b->pg, "BEGIN", 0, NULL, PGRES_COMMAND_OK);
    sql_limit_exec(b->pg, sql_limit_lock, 1, params + 1, PGRES_TUPLES_OK);
    PGresult *r = PQexecParams(b->pg, sql_limit_writes, 6, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK || atoll(PQcmdTuples(r)) != (long long)count)
        die("sql-limit: a batch wrote %s entries of %" PRIu64 ": %s", PQcmdTuples(r), count,
            PQerrorMessage(b->pg));
    PQclear(r);
    sql_limit_exec(b->pg, "COMMIT", 0, NULL, PGRES_COMMAND_OK);
    free(ids);
    free(who);
    free(amounts);
    free(lots);
}

/* The consume drain's `jobs` over --users seeded users, applied by
 * sql_limit_writes in batches of `batch`, timed like a drain. */
static void run_sql_limit(struct bench *b, int64_t batch, uint64_t jobs, struct drain_row *row)
{
    if ((uint64_t)batch > b->opt.users)
        die("sql-limit: --users (%" PRIu64 ") must be at least the batch (%" PRId64 ")",
            b->opt.users, batch);
    struct run_names names;
    run_names_init(b, "sql", &names);
    struct gen g;
    gen_init(&g, &names, b->opt.users, UINT64_C(0x9E3779B97F4A7C15) ^ b->row_seed);
    seed_users(b, &g);
    gen_free(&g);
    char *request = sql_limit_bytes(b->pg, 0), *result = sql_limit_bytes(b->pg, 1);
    int64_t *lot_of = sql_limit_lots(b->pg, &names, b->opt.users);
    *row = (struct drain_row){.scenario = "sql-limit", .batch = batch, .jobs = jobs,
                              .is_default = batch == b->opt.default_batch};
    struct cpu_snap before, after;
    struct pg_counters pg_before, pg_after;
    pg_counters_read(b->pg, &pg_before);
    cpu_snap(&b->opt, 0, &before);
    int64_t t0 = now_ns();
    for (uint64_t done = 0; done < jobs; done += (uint64_t)batch) {
        uint64_t n = jobs - done < (uint64_t)batch ? jobs - done : (uint64_t)batch;
        sql_limit_one(b, &names, done, n, b->opt.users, lot_of, request, result);
    }
    int64_t t1 = now_ns();
    cpu_snap(&b->opt, 0, &after);
    row->seconds = seconds_of(t1 - t0);
    row->jobs_per_s = (double)jobs / row->seconds;
    cpu_use(&before, &after, row->seconds, &row->cpu);
    pg_counters_read(b->pg, &pg_after);
    pg_counters_delta(&pg_before, &pg_after, &row->pg);
    row->tally.applied = jobs;
    free(request);
    free(result);
    free(lot_of);
    redis_delete_prefix(b->rc, names.prefix);
    fprintf(stderr, "bench: %c sql-limit batch %" PRId64 ": %" PRIu64 " jobs in %.2f s = %.0f/s\n",
            side_letter(b->side), batch, jobs, row->seconds, row->jobs_per_s);
}

/* ------------------------------------------------------------------------ */
/* Many small lots: one consume that spends thousands of them               */
/* ------------------------------------------------------------------------ */

#define ONE_CREDIT_PACK_ID "one" /* --credits 1 (run.sh) */
#define MANY_LOTS_OTHERS 2000    /* other users' consumes around the big one */
#define MANY_LOTS_LEFT 1000      /* lots the big consume leaves unspent */

struct many_lots_row {
    uint64_t lots;
    double with_ms;    /* the drain with the big consume in the middle */
    double without_ms; /* the same drain with a one-credit consume in its place */
    double extra_ms;   /* with - without: how long the big consume held up the others */
};

/* MANY_LOTS_OTHERS + 1 consumes of one credit, IDs "<id_tag>-<n>", over
 * users 1.. of `names`; number MANY_LOTS_OTHERS / 2 is user 0's, of
 * `middle_amount` credits. */
static void enqueue_around(struct bench *b, const struct run_names *names, const char *id_tag,
                           uint64_t others_users, int64_t middle_amount)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    struct job j;
    for (uint64_t seq = 0; seq <= MANY_LOTS_OTHERS; seq++) {
        bool middle = seq == MANY_LOTS_OTHERS / 2;
        memset(&j, 0, sizeof j);
        j.type = JOB_CONSUME;
        fmt(j.id, sizeof j.id, "%s-%" PRIu64, id_tag, seq);
        user_name(names, middle ? 0 : 1 + seq % others_users, j.user, sizeof j.user);
        j.consume.amount = middle ? middle_amount : 1;
        append_xadd(b->rc, names->prefix, &j, &buf);
    }
    redis_drain_replies(b->rc, MANY_LOTS_OTHERS + 1, "XADD");
    msgpack_sbuffer_destroy(&buf);
}

/* Times a worker (default batch) from its start to the last result of the
 * backlog enqueue_around() left; checks every job was applied. */
static double drain_around(struct bench *b, const struct run_names *names, const char *id_tag)
{
    char key[KEY_BYTES];
    results_key(names, key, sizeof key);
    int64_t t0 = now_ns();
    pid_t pid = bench_worker_start(b, names->prefix, 0);
    int64_t t1 = wait_results(b->rc, key, MANY_LOTS_OTHERS + 1, pid, DRAIN_MAX_NS, "many-lots",
                              NULL, NULL);
    worker_stop(pid);
    struct tally t;
    tally_results(b->rc, key, id_tag, MANY_LOTS_OTHERS + 1, &t);
    check_run(b->rc, names->prefix, b->opt.group, "many-lots", &t);
    check_all_applied("many-lots", &t, MANY_LOTS_OTHERS + 1);
    redis_do(b->rc, "DEL %s", key);
    return (double)(t1 - t0) / (double)NS_PER_MS;
}

/* User 0 buys `lots` one-credit packs; then two drains of other users'
 * one-credit consumes with user 0's job in the middle: first a consume of
 * one credit, then one of all but MANY_LOTS_LEFT of its lots. The
 * difference is what spending them cost everyone else in the stream. */
static void run_many_lots(struct bench *b, uint64_t lots, struct many_lots_row *row)
{
    struct run_names names;
    run_names_init(b, "lots", &names);
    struct gen g;
    uint64_t users = MANY_LOTS_OTHERS / 4 + 1;
    gen_init(&g, &names, users, UINT64_C(0x9E3779B97F4A7C15) ^ b->row_seed);
    seed_users(b, &g);
    gen_free(&g);
    char tag_packs[NAME_BYTES + 2], tag_without[NAME_BYTES + 2];
    fmt(tag_packs, sizeof tag_packs, "%sp", names.tag);
    fmt(tag_without, sizeof tag_without, "%sc", names.tag);
    seed_purchases(b, &names, tag_packs, lots, 1, ONE_CREDIT_PACK_ID);
    *row = (struct many_lots_row){.lots = lots};
    enqueue_around(b, &names, tag_without, users - 1, 1);
    row->without_ms = drain_around(b, &names, tag_without);
    enqueue_around(b, &names, names.tag, users - 1, (int64_t)(lots - MANY_LOTS_LEFT));
    row->with_ms = drain_around(b, &names, names.tag);
    row->extra_ms = row->with_ms - row->without_ms;
    redis_delete_prefix(b->rc, names.prefix);
    fprintf(stderr,
            "bench: %c many-lots %" PRIu64 ": %.1f ms with the big consume, %.1f ms without\n",
            side_letter(b->side), lots, row->with_ms, row->without_ms);
}

/* ------------------------------------------------------------------------ */
/* The sweep over expired lots (contract 9.7)                               */
/* ------------------------------------------------------------------------ */

#define SWEEP_LOTS_PER_USER 10
/* The sweep's first run starts this soon after the worker: the timed span
 * is the sweep's work, not a wait for its timer. */
#define SWEEP_INTERVAL_VAR "CREDITS_SWEEP_INTERVAL_MS=100"
#define SWEEP_POLL_NS (20 * NS_PER_MS)
#define SWEEP_MAX_NS (600 * NS_PER_S)

struct sweep_row {
    uint64_t lots;
    uint64_t users;
    double seconds;           /* the worker's start to the last lot written off */
    double publish_seconds;   /* from then to the last of their events published */
    long long events;         /* events the sweep wrote for these users */
    long long expire_entries; /* must be `lots` */
    struct cpu_use cpu;
    struct pg_counters pg;
    double rss_mb;
};

/* One bigint of a query whose only parameter is a LIKE pattern; dies on error. */
static long long pg_count_like(PGconn *conn, const char *sql, const char *pattern)
{
    const char *params[] = {pattern};
    PGresult *r = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        die("sweep: %s: %s", sql, PQerrorMessage(conn));
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* Polls `sql` (a count over the run's users) until it is 0; returns the time. */
static int64_t sweep_wait_zero(struct bench *b, pid_t pid, const char *sql, const char *pattern,
                               const char *what)
{
    int64_t deadline = now_ns() + SWEEP_MAX_NS;
    for (;;) {
        if (pg_count_like(b->pg, sql, pattern) == 0)
            return now_ns();
        worker_check_alive(pid);
        if (now_ns() > deadline)
            die("sweep: %s not done after %d s", what, (int)(SWEEP_MAX_NS / NS_PER_S));
        sleep_ns(SWEEP_POLL_NS);
    }
}

/* Moves every lot of the run's users past its expiry (as if 91 days had
 * gone by since the purchases). */
static void sweep_age_lots(struct bench *b, const char *pattern, uint64_t lots)
{
    long long aged = pg_count_like(
        b->pg,
        "WITH aged AS (UPDATE credits.lots SET granted_at = now() - interval '91 days',"
        " expires_at = now() - interval '1 day' WHERE user_id LIKE $1 RETURNING 1)"
        " SELECT count(*) FROM aged",
        pattern);
    if (aged != (long long)lots)
        die("sweep: %lld of %" PRIu64 " lots moved past their expiry", aged, lots);
}

/* One sweep: `lots` pack lots with credits left, SWEEP_LOTS_PER_USER per
 * user, all past their expiry; a worker (A, default batch) starts with a
 * short sweep interval and the clock runs until every lot is written off,
 * then until their events are published. Nothing else is on the streams. */
static void run_sweep(struct bench *b, uint64_t lots, struct sweep_row *row)
{
    struct run_names names;
    run_names_init(b, "sweep", &names);
    uint64_t users = lots / SWEEP_LOTS_PER_USER ? lots / SWEEP_LOTS_PER_USER : 1;
    *row = (struct sweep_row){.lots = lots, .users = users};
    seed_purchases(b, &names, names.tag, lots, users, PACK_ID);
    char pattern[NAME_BYTES + 4];
    fmt(pattern, sizeof pattern, "%su%%", names.tag);
    sweep_age_lots(b, pattern, lots);
    settle_writes(b->pg);

    struct cpu_snap before, after;
    struct pg_counters pg_before, pg_after;
    pg_counters_read(b->pg, &pg_before);
    cpu_snap(&b->opt, 0, &before);
    int64_t t0 = now_ns();
    pid_t pid = worker_start_nth(&b->opt, b->opt.worker_paths[0], names.prefix, 0, 0,
                                 SWEEP_INTERVAL_VAR);
    int64_t t1 = sweep_wait_zero(b, pid,
                                 "SELECT count(*) FROM credits.lots WHERE NOT spent"
                                 " AND expires_at IS NOT NULL AND expires_at <= now()"
                                 " AND user_id LIKE $1",
                                 pattern, "writing off the lots");
    int64_t t2 = sweep_wait_zero(b, pid,
                                 "SELECT count(*) FROM credits.events"
                                 " WHERE published_at IS NULL AND user_id LIKE $1",
                                 pattern, "publishing the events");
    cpu_snap(&b->opt, pid, &after);
    row->seconds = seconds_of(t1 - t0);
    row->publish_seconds = seconds_of(t2 - t1);
    row->rss_mb = peak_rss_mb(pid);
    cpu_use(&before, &after, seconds_of(t2 - t0), &row->cpu);
    worker_stop(pid);
    pg_counters_read(b->pg, &pg_after);
    pg_counters_delta(&pg_before, &pg_after, &row->pg);

    row->expire_entries = pg_count_like(
        b->pg, "SELECT count(*) FROM credits.entries WHERE kind = 'expire' AND user_id LIKE $1",
        pattern);
    row->events = pg_count_like(
        b->pg, "SELECT count(*) FROM credits.events WHERE user_id LIKE $1", pattern);
    if (row->expire_entries != (long long)lots)
        die("sweep: %lld expire entries for %" PRIu64 " lots", row->expire_entries, lots);
    redis_delete_prefix(b->rc, names.prefix);
    fprintf(stderr, "bench: A sweep: %" PRIu64 " lots written off in %.2f s = %.0f lots/s\n", lots,
            row->seconds, (double)lots / row->seconds);
}

/* ------------------------------------------------------------------------ */
/* Machine facts and the report                                             */
/* ------------------------------------------------------------------------ */

static void read_field(const char *path, const char *name, char *out, size_t len)
{
    fmt(out, len, "?");
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[LINE_BYTES];
    size_t n = strlen(name);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, name, n) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (!v)
            continue;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        fmt(out, len, "%s", v);
        out[strcspn(out, "\n")] = '\0';
        break;
    }
    fclose(f);
}

static void pg_show(PGconn *conn, const char *setting, char *out, size_t len)
{
    char sql[128];
    fmt(sql, sizeof sql, "SHOW %s", setting);
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        fmt(out, len, "%s", PQgetvalue(r, 0, 0));
    else
        fmt(out, len, "?");
    PQclear(r);
}

static void print_machine(PGconn *conn, redisContext *rc)
{
    char cpu[LINE_BYTES], mem[LINE_BYTES];
    read_field("/proc/cpuinfo", "model name", cpu, sizeof cpu);
    read_field("/proc/meminfo", "MemTotal", mem, sizeof mem);
    printf("machine: %ld cores online (nproc), CPU \"%s\", memory %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), cpu, mem);
    char version[LINE_BYTES], fsync[64], sync_commit[64], fpw[64], buffers[64], method[64];
    pg_show(conn, "server_version", version, sizeof version);
    pg_show(conn, "fsync", fsync, sizeof fsync);
    pg_show(conn, "synchronous_commit", sync_commit, sizeof sync_commit);
    pg_show(conn, "full_page_writes", fpw, sizeof fpw);
    pg_show(conn, "wal_sync_method", method, sizeof method);
    pg_show(conn, "shared_buffers", buffers, sizeof buffers);
    printf("postgresql %s: fsync=%s synchronous_commit=%s full_page_writes=%s "
           "wal_sync_method=%s shared_buffers=%s\n",
           version, fsync, sync_commit, fpw, method, buffers);
    redisReply *r = redis_cmd(rc, "INFO server");
    const char *v = r->type == REDIS_REPLY_STRING ? strstr(r->str, "redis_version:") : NULL;
    printf("redis %.*s\n", v ? (int)strcspn(v + 14, "\r\n") : 1, v ? v + 14 : "?");
    freeReplyObject(r);
}

/* "12%" or "-" when the process was not given (--pg-pid, --redis-pid). */
static const char *cpu_cell(double v, bool known, char *out, size_t len)
{
    if (known)
        fmt(out, len, "%.0f", v);
    else
        fmt(out, len, "-");
    return out;
}

/* CPU columns and database columns shared by both tables. */
static void print_cpu_cells(const struct options *o, const struct cpu_use *u)
{
    char a[16], b[16], c[16], d[16], e[16];
    printf(" %6s %5s %5s %5s %5s", cpu_cell(u->worker, true, a, sizeof a),
           cpu_cell(u->pg, o->pg_pid > 0, b, sizeof b),
           cpu_cell(u->redis, o->redis_pid > 0, c, sizeof c), cpu_cell(u->bench, true, d, sizeof d),
           cpu_cell(u->other, true, e, sizeof e));
}

static void print_pg_cells(const struct pg_counters *pg, uint64_t jobs)
{
    if (!pg->ok || jobs == 0) {
        printf(" %7s %9s %4s", "-", "-", "-");
        return;
    }
    printf(" %7lld %9.0f %4lld", pg->syncs, (double)pg->wal_bytes / (double)jobs, pg->checkpoints);
}

/* ------------------------------------------------------------------------ */
/* Rows and their runs                                                      */
/* ------------------------------------------------------------------------ */

enum row_kind {
    ROW_DRAIN,   /* run_drain() */
    ROW_SCALE,   /* run_scale() */
    ROW_LATENCY, /* run_latency() */
    ROW_MANY_LOTS, /* run_many_lots() */
    ROW_SQL_LIMIT, /* run_sql_limit(): in the drain table */
};

/* One row of the report: what is measured, once per worker and round. */
struct row {
    enum row_kind kind;
    const char *scenario; /* "mix", "render", "consume", "hot-user"; scale: "scale" */
    enum mix mix;
    uint64_t users;
    int64_t batch;
    uint64_t jobs;
    int workers;  /* ROW_SCALE */
    int64_t rate; /* ROW_LATENCY */
    uint64_t lots; /* ROW_MANY_LOTS */
};

/* The batch-size rows of every mix, consume and hot user twice each, the
 * scale-out and the latency runs. */
#define ROWS_MAX (BATCH_MIXES * LIST_MAX + 4 + 3 + LIST_MAX + LIST_MAX)

/* What one run measured (the member of its row's kind). */
struct run_result {
    struct drain_row drain;
    double scale_per_s;
    struct latency_row latency;
    struct many_lots_row many_lots;
};

struct report {
    struct row rows[ROWS_MAX];
    size_t row_count;
    struct run_result *runs;               /* [row][round][side]: see report_run() */
    char skipped[BATCH_MIXES][LINE_BYTES]; /* why a mix was not run; "" if it was */
};

static void report_add(struct report *r, struct row row)
{
    ASSERT(r->row_count < ROWS_MAX);
    ASSERT(row.jobs > 0 || row.kind == ROW_LATENCY || row.kind == ROW_MANY_LOTS);
    r->rows[r->row_count++] = row;
}

/* The run of `row` in round `round` (0-based) by `side`. */
static struct run_result *report_run(const struct report *r, const struct options *o, size_t row,
                                     int64_t round, size_t side)
{
    ASSERT(row < r->row_count);
    ASSERT(round >= 0 && round < o->rounds && side < o->side_count);
    return &r->runs[(row * (size_t)o->rounds + (size_t)round) * o->side_count + side];
}

/* "A1" for side 0, round 0 when runs are labelled, else "". */
static void run_label(const struct options *o, int64_t round, size_t side, char *out, size_t len)
{
    if (bench_labels_runs(o))
        fmt(out, len, "%c%" PRId64, side_letter(side), round + 1);
    else
        fmt(out, len, "%s", "");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median, min and max of v[0..n-1] (reordered); the median of an even
 * count is the mean of the middle two. */
static void spread(double *v, size_t n, double *median, double *min, double *max)
{
    ASSERT(n > 0 && n <= ROUNDS_MAX);
    qsort(v, n, sizeof *v, cmp_double);
    *median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    *min = v[0];
    *max = v[n - 1];
}

/* One figure of a run, for the medians and the ratios. */
enum figure {
    FIG_JOBS_PER_S, /* drain or scale-out */
    FIG_P50_MS,
    FIG_P99_MS,
    FIG_EXTRA_MS, /* many-lots: what the big consume cost the others */
};

static double run_figure(const struct row *row, const struct run_result *run, enum figure f)
{
    switch (f) {
    case FIG_JOBS_PER_S:
        ASSERT(row->kind == ROW_DRAIN || row->kind == ROW_SCALE || row->kind == ROW_SQL_LIMIT);
        return row->kind == ROW_SCALE ? run->scale_per_s : run->drain.jobs_per_s;
    case FIG_P50_MS:
        ASSERT(row->kind == ROW_LATENCY);
        return run->latency.p50_ms;
    case FIG_P99_MS:
        ASSERT(row->kind == ROW_LATENCY);
        return run->latency.p99_ms;
    case FIG_EXTRA_MS:
        ASSERT(row->kind == ROW_MANY_LOTS);
        return run->many_lots.extra_ms;
    }
    ASSERT(!"unknown figure");
    return 0;
}

/* The median over rounds of one side's figure of row `i`. */
static double side_median(const struct report *r, const struct options *o, size_t i, size_t side,
                          enum figure f)
{
    double v[ROUNDS_MAX], median, min, max;
    for (int64_t k = 0; k < o->rounds; k++)
        v[k] = run_figure(&r->rows[i], report_run(r, o, i, k, side), f);
    spread(v, (size_t)o->rounds, &median, &min, &max);
    return median;
}

/* ------------------------------------------------------------------------ */
/* The tables                                                               */
/* ------------------------------------------------------------------------ */

/* What follows a drain run's scenario, batch and run label in a table. */
typedef void drain_cells_fn(const struct options *o, const struct drain_row *d);

/* One line per drain run (and SQL-limit run), in row, round, side order. */
static void print_drain_runs(const struct options *o, const struct report *r, drain_cells_fn *cells)
{
    bool labels = bench_labels_runs(o);
    for (size_t i = 0; i < r->row_count; i++) {
        if (r->rows[i].kind != ROW_DRAIN && r->rows[i].kind != ROW_SQL_LIMIT)
            continue;
        for (int64_t k = 0; k < o->rounds; k++) {
            for (size_t side = 0; side < o->side_count; side++) {
                const struct drain_row *d = &report_run(r, o, i, k, side)->drain;
                char batch[16], label[16], run[24];
                fmt(batch, sizeof batch, "%" PRId64 "%s", d->batch, d->is_default ? "*" : "");
                run_label(o, k, side, label, sizeof label);
                fmt(run, sizeof run, "%s%3s", labels ? " " : "", label);
                printf("%-9s %6s%s", d->scenario, batch, labels ? run : "");
                cells(o, d);
            }
        }
    }
}

static void drain_cells(const struct options *o, const struct drain_row *d)
{
    printf(" %7" PRIu64 " %7.2f %8.0f %6.1f |", d->jobs, d->seconds, d->jobs_per_s, d->rss_mb);
    print_cpu_cells(o, &d->cpu);
    printf(" |");
    print_pg_cells(&d->pg, d->jobs);
    printf(" | %8" PRIu64 " %8" PRIu64 "\n", d->tally.applied, d->tally.rejected);
}

static void print_drain_table(const struct options *o, const struct report *r)
{
    bool labels = bench_labels_runs(o);
    printf("\ndrain: backlog enqueued with no worker running; timed from the worker's start "
           "until every job has a result\n");
    printf("%-9s %6s%s %7s %7s %8s %6s | %6s %5s %5s %5s %5s | %7s %9s %4s | %8s %8s\n", "scenario",
           "batch", labels ? " run" : "", "jobs", "seconds", "jobs/s", "RSS MB", "worker", "pg",
           "redis", "bench", "other", "fsyncs", "WAL B/job", "ckpt", "applied", "rejected");
    print_drain_runs(o, r, drain_cells);
}

/* The CPU of a drain over its jobs: microseconds per job of one process
 * (or the postmaster's tree), from its share of one core over the span. */
static const char *cpu_per_job_cell(double pct, bool known, const struct drain_row *d, char *out,
                                    size_t len)
{
    if (!known || d->jobs == 0)
        return cpu_cell(0, false, out, len);
    fmt(out, len, "%.1f", pct / 100.0 * d->seconds / (double)d->jobs * 1e6);
    return out;
}

static void cpu_per_job_cells(const struct options *o, const struct drain_row *d)
{
    char w[16], pg[16], rd[16];
    printf(" %8s %8s %8s\n", cpu_per_job_cell(d->cpu.worker, true, d, w, sizeof w),
           cpu_per_job_cell(d->cpu.pg, o->pg_pid > 0, d, pg, sizeof pg),
           cpu_per_job_cell(d->cpu.redis, o->redis_pid > 0, d, rd, sizeof rd));
}

static void print_cpu_per_job(const struct options *o, const struct report *r)
{
    bool labels = bench_labels_runs(o);
    printf("\ncpu per job: each drain's CPU time over its jobs, microseconds (worker, the "
           "PostgreSQL server, Redis)\n");
    printf("%-9s %6s%s %8s %8s %8s\n", "scenario", "batch", labels ? " run" : "", "worker", "pg",
           "redis");
    print_drain_runs(o, r, cpu_per_job_cells);
}

/* Each drain at the default batch over the same run's SQL limit. */
static void print_sql_ratios(const struct options *o, const struct report *r)
{
    size_t limit = r->row_count;
    for (size_t i = 0; i < r->row_count; i++)
        if (r->rows[i].kind == ROW_SQL_LIMIT)
            limit = i;
    if (limit == r->row_count)
        return;
    for (size_t i = 0; i < r->row_count; i++) {
        const struct row *def = &r->rows[i];
        if (def->kind != ROW_DRAIN || def->batch != o->default_batch)
            continue;
        for (size_t side = 0; side < o->side_count; side++) {
            double a = side_median(r, o, i, side, FIG_JOBS_PER_S);
            double c = side_median(r, o, limit, side, FIG_JOBS_PER_S);
            char who[8] = "";
            if (o->side_count > 1)
                fmt(who, sizeof who, " (%c)", side_letter(side));
            printf("ratio to the SQL limit, %-9s%s %5.0f%%  (%.0f vs %.0f jobs/s%s)\n",
                   def->scenario, who, 100.0 * a / c, a, c, o->rounds > 1 ? ", medians" : "");
        }
    }
}

static void print_ratios(const struct options *o, const struct report *r)
{
    printf("\n");
    for (size_t i = 0; i < r->row_count; i++) {
        const struct row *def = &r->rows[i];
        if (def->kind != ROW_DRAIN || def->batch != o->default_batch)
            continue;
        for (size_t k = 0; k < r->row_count; k++) {
            const struct row *one = &r->rows[k];
            if (one->kind != ROW_DRAIN || one->batch != 1 || strcmp(one->scenario, def->scenario))
                continue;
            for (size_t side = 0; side < o->side_count; side++) {
                double a = side_median(r, o, i, side, FIG_JOBS_PER_S);
                double c = side_median(r, o, k, side, FIG_JOBS_PER_S);
                char who[8] = "";
                if (o->side_count > 1)
                    fmt(who, sizeof who, " (%c)", side_letter(side));
                printf("ratio default/batch-1, %-9s%s %6.1fx  (%.0f vs %.0f jobs/s%s)\n",
                       def->scenario, who, a / c, a, c, o->rounds > 1 ? ", medians" : "");
            }
        }
    }
}

static void print_scale(const struct options *o, const struct report *r)
{
    size_t first = r->row_count;
    for (size_t i = 0; i < r->row_count && first == r->row_count; i++)
        if (r->rows[i].kind == ROW_SCALE)
            first = i;
    if (first == r->row_count)
        return;
    printf("\nscale-out: %" PRIu64 " consumes over %" PRIu64
           " users, default batch, workers sharing the group\n",
           r->rows[first].jobs, r->rows[first].users);
    for (size_t i = first; i < r->row_count; i++) {
        if (r->rows[i].kind != ROW_SCALE)
            continue;
        for (int64_t k = 0; k < o->rounds; k++) {
            for (size_t side = 0; side < o->side_count; side++) {
                char label[16];
                run_label(o, k, side, label, sizeof label);
                double per_s = report_run(r, o, i, k, side)->scale_per_s;
                double one = report_run(r, o, first, k, side)->scale_per_s;
                printf("workers %d %3s %8.0f jobs/s  (%.2fx one worker)\n", r->rows[i].workers,
                       label, per_s, per_s / one);
            }
        }
    }
}

static void print_latency(const struct options *o, const struct report *r)
{
    bool labels = bench_labels_runs(o);
    printf("\nlatency: XADD to the result readable on {prefix}:results; default batch, %" PRId64
           " s of consume jobs over %" PRIu64 " users at each offered rate\n",
           o->seconds, o->users);
    printf("%7s%s %8s %7s %7s %7s %7s %8s %7s %6s | %6s %5s %5s %5s %5s | %7s %9s %4s\n", "offered",
           labels ? " run" : "", "achieved", "jobs", "seconds", "p50 ms", "p99 ms", "p99.9 ms",
           "max ms", "RSS MB", "worker", "pg", "redis", "bench", "other", "fsyncs", "WAL B/job",
           "ckpt");
    for (size_t i = 0; i < r->row_count; i++) {
        if (r->rows[i].kind != ROW_LATENCY)
            continue;
        for (int64_t k = 0; k < o->rounds; k++) {
            for (size_t side = 0; side < o->side_count; side++) {
                const struct latency_row *l = &report_run(r, o, i, k, side)->latency;
                char label[16], run[24];
                run_label(o, k, side, label, sizeof label);
                fmt(run, sizeof run, " %3s", label);
                printf("%7.0f%s %8.0f %7" PRIu64 " %7.2f %7.2f %7.2f %8.2f %7.2f %6.1f |", l->rate,
                       labels ? run : "", l->achieved, l->jobs, l->seconds, l->p50_ms, l->p99_ms,
                       l->p999_ms, l->max_ms, l->rss_mb);
                print_cpu_cells(o, &l->cpu);
                printf(" |");
                print_pg_cells(&l->pg, l->jobs);
                printf("\n");
            }
        }
    }
}

static void print_wait_row(const char *label, const struct wait_profile *p)
{
    printf("%-24s %7" PRIu64 " |", label, p->samples);
    for (int k = 0; k < WAIT_KINDS; k++)
        printf(" %9.0f", p->samples ? 100.0 * (double)p->count[k] / (double)p->samples : 0.0);
    printf("\n");
}

static void print_waits(const struct options *o, const struct report *r)
{
    printf("\nwhere the worker's PostgreSQL sessions spend the timed span (pg_stat_activity "
           "every %d ms, %% of samples)\n",
           (int)(SAMPLE_NS / NS_PER_MS));
    printf("%-24s %7s | %9s %9s %9s %9s %9s %9s\n", "run", "samples", "pg CPU", "WAL/fsync",
           "idle-txn", "idle", "lock", "other");
    for (size_t i = 0; i < r->row_count; i++) {
        const struct row *row = &r->rows[i];
        /* Sampled: the drains and the latency runs (a sql-limit row has no
         * worker; the scale-out and many-lots rows are not sampled). */
        if (row->kind != ROW_DRAIN && row->kind != ROW_LATENCY)
            continue;
        for (int64_t k = 0; k < o->rounds; k++) {
            for (size_t side = 0; side < o->side_count; side++) {
                const struct run_result *run = report_run(r, o, i, k, side);
                char label[64], who[16];
                run_label(o, k, side, who, sizeof who);
                if (row->kind == ROW_DRAIN)
                    fmt(label, sizeof label, "%s batch %" PRId64 " %s", row->scenario, row->batch,
                        who);
                else
                    fmt(label, sizeof label, "latency %" PRId64 "/s %s", row->rate, who);
                print_wait_row(label,
                               row->kind == ROW_DRAIN ? &run->drain.waits : &run->latency.waits);
            }
        }
    }
}

/* One line of the A/B table: the medians of A and B, and B over A per
 * round (the two runs of a round are side by side on the same servers). */
static void print_many_lots(const struct options *o, const struct report *r)
{
    bool any = false;
    for (size_t i = 0; i < r->row_count; i++) {
        if (r->rows[i].kind != ROW_MANY_LOTS)
            continue;
        if (!any)
            printf("\nmany small lots: one user with N unspent one-credit packs; its consume of "
                   "N-%d credits in the middle of %d\none-credit consumes of other users (default "
                   "batch), against a one-credit consume in its place\n"
                   "%8s %3s %10s %12s %10s %8s\n",
                   MANY_LOTS_LEFT, MANY_LOTS_OTHERS, "lots N", "run", "drain ms", "without ms",
                   "extra ms", "us/lot");
        any = true;
        for (int64_t k = 0; k < o->rounds; k++)
            for (size_t side = 0; side < o->side_count; side++) {
                char label[16];
                run_label(o, k, side, label, sizeof label);
                const struct many_lots_row *m = &report_run(r, o, i, k, side)->many_lots;
                printf("%8" PRIu64 " %3s %10.1f %12.1f %10.1f %8.2f\n", m->lots, label, m->with_ms,
                       m->without_ms, m->extra_ms,
                       1000.0 * m->extra_ms / (double)(m->lots - MANY_LOTS_LEFT));
            }
    }
}

static void print_ab_line(const struct options *o, const struct report *r, size_t i,
                          const char *label, enum figure f)
{
    double ratio[ROUNDS_MAX], median, min, max;
    for (int64_t k = 0; k < o->rounds; k++) {
        double a = run_figure(&r->rows[i], report_run(r, o, i, k, 0), f);
        double bv = run_figure(&r->rows[i], report_run(r, o, i, k, 1), f);
        ratio[k] = a > 0 ? bv / a : 0;
    }
    spread(ratio, (size_t)o->rounds, &median, &min, &max);
    int decimals = f == FIG_JOBS_PER_S ? 0 : 2;
    printf("%-26s %10.*f %10.*f %7.3f %7.3f-%.3f\n", label, decimals, side_median(r, o, i, 0, f),
           decimals, side_median(r, o, i, 1, f), median, min, max);
}

static void print_ab(const struct options *o, const struct report *r)
{
    if (o->side_count != 2)
        return;
    printf("\nB over A, from the runs of each round side by side on the same servers (A ran "
           "first)\n"
           "A: %s\nB: %s\n",
           o->worker_paths[0], o->worker_paths[1]);
    if (o->side_default_batch[1] != o->side_default_batch[0])
        printf("(B's own default batch is %" PRId64 "; the batch rows ran both at %" PRId64 ")\n",
               o->side_default_batch[1], o->side_default_batch[0]);
    printf("A, B: medians over %" PRId64 " rounds; B/A: the median over rounds of B's figure "
           "over A's in that round\n",
           o->rounds);
    printf("%-26s %10s %10s %7s %13s\n", "row", "A", "B", "B/A", "B/A min-max");
    char label[64];
    for (size_t i = 0; i < r->row_count; i++) {
        const struct row *row = &r->rows[i];
        switch (row->kind) {
        case ROW_DRAIN:
            fmt(label, sizeof label, "%s batch %" PRId64 " jobs/s", row->scenario, row->batch);
            print_ab_line(o, r, i, label, FIG_JOBS_PER_S);
            break;
        case ROW_SCALE:
            fmt(label, sizeof label, "scale-out %d worker%s jobs/s", row->workers,
                row->workers > 1 ? "s" : "");
            print_ab_line(o, r, i, label, FIG_JOBS_PER_S);
            break;
        case ROW_LATENCY:
            fmt(label, sizeof label, "latency %" PRId64 "/s p50 ms", row->rate);
            print_ab_line(o, r, i, label, FIG_P50_MS);
            fmt(label, sizeof label, "latency %" PRId64 "/s p99 ms", row->rate);
            print_ab_line(o, r, i, label, FIG_P99_MS);
            break;
        case ROW_MANY_LOTS:
            fmt(label, sizeof label, "many-lots %" PRIu64 " extra ms", row->lots);
            print_ab_line(o, r, i, label, FIG_EXTRA_MS);
            break;
        case ROW_SQL_LIMIT:
            fmt(label, sizeof label, "sql-limit batch %" PRId64 " jobs/s", row->batch);
            print_ab_line(o, r, i, label, FIG_JOBS_PER_S);
            break;
        }
    }
}

static void print_sweep(const struct options *o, const struct sweep_row *row)
{
    if (row->lots == 0)
        return;
    printf("\nSweep (worker A, %s): %" PRIu64 " pack lots of %" PRIu64
           " users, all past their expiry,\nwritten off by one sweep run\n",
           SWEEP_INTERVAL_VAR, row->lots, row->users);
    printf("%9s %9s %10s %8s %9s %6s %5s %5s %6s\n", "lots", "seconds", "lots/s", "events",
           "publish s", "worker", "pg", "redis", "RSS MB");
    char a[16], c[16];
    printf("%9" PRIu64 " %9.2f %10.0f %8lld %9.2f %6.0f %5s %5s %6.1f\n", row->lots,
           row->seconds, (double)row->lots / row->seconds, row->events, row->publish_seconds,
           row->cpu.worker, cpu_cell(row->cpu.pg, o->pg_pid > 0, a, sizeof a),
           cpu_cell(row->cpu.redis, o->redis_pid > 0, c, sizeof c), row->rss_mb);
    if (row->pg.ok)
        printf("WAL %.0f B/lot, %lld fsyncs, %lld checkpoints begun; %lld expire entries\n",
               (double)row->pg.wal_bytes / (double)row->lots, row->pg.syncs, row->pg.checkpoints,
               row->expire_entries);
}

static void print_legend(void)
{
    printf("\n* = the worker's default batch size. RSS MB: the worker's peak resident memory "
           "(VmHWM).\n"
           "worker/pg/redis/bench/other: CPU in %% of one core over the timed span (pg: the "
           "postmaster and all its\n"
           "processes; other: everything else on the machine). fsyncs (pg_stat_wal.wal_sync), "
           "WAL B/job and ckpt\n"
           "(checkpoints begun): the whole PostgreSQL cluster over the run.\n"
           "pg CPU: executing; WAL/fsync: writing or flushing WAL (mostly the commit's fsync); "
           "idle-txn: inside a\n"
           "transaction, waiting for the worker's next statement (round trips); idle: between "
           "transactions (the\n"
           "worker is reading, publishing or acknowledging in Redis, or has nothing to do).\n");
}

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */

/* --batch with "default" resolved and repeats dropped (order kept). */
static void resolve_batches(struct options *o)
{
    size_t k = 0;
    for (size_t i = 0; i < o->batch_count; i++) {
        int64_t v = o->batches[i] == BATCH_DEFAULT_TOKEN ? o->default_batch : o->batches[i];
        bool dup = false;
        for (size_t j = 0; j < k; j++)
            dup = dup || o->batches[j] == v;
        if (!dup)
            o->batches[k++] = v;
    }
    o->batch_count = k;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Users of a render backlog: at most --users, and few enough that each has
 * RENDER_JOBS_PER_USER jobs on average, so that its holds get closed (a
 * batch-size-1 backlog of 4,000 jobs over 10,000 users would be holds and
 * little else). */
#define RENDER_JOBS_PER_USER 10

static uint64_t render_users(uint64_t users, uint64_t jobs)
{
    uint64_t fit = jobs / RENDER_JOBS_PER_USER;
    ASSERT(users >= 1);
    return fit < 1 ? 1 : fit < users ? fit : users;
}

/* The rows of this benchmark, in the order they run; a batch mix that a
 * worker does not know (worker_knows_mix) is left out, with the reason in
 * r->skipped. */
static void plan_rows(struct bench *b, struct report *r)
{
    const struct options *o = &b->opt;
    static const enum mix batch_mix[BATCH_MIXES] = {MIX_CONSUME_HEAVY, MIX_RENDER};
    for (size_t m = 0; m < BATCH_MIXES; m++) {
        if (!o->batch_mix[m])
            continue;
        char why[LINE_BYTES];
        bool known = true;
        for (size_t side = 0; side < o->side_count && known; side++) {
            b->side = side;
            known = worker_knows_mix(b, batch_mix[m], why, sizeof why);
            if (!known)
                fmt(r->skipped[m], sizeof r->skipped[m], "worker %c (%s) does not know it: %s",
                    side_letter(side), o->worker_paths[side], why);
        }
        if (!known) {
            fprintf(stderr, "bench: mix %s left out: %s\n", g_batch_mix_names[m], r->skipped[m]);
            continue;
        }
        for (size_t i = 0; i < o->batch_count; i++) {
            uint64_t jobs = o->batches[i] == 1 ? o->jobs_b1 : o->jobs;
            report_add(r, (struct row){.kind = ROW_DRAIN,
                                       .scenario = g_batch_mix_names[m],
                                       .mix = batch_mix[m],
                                       .users = batch_mix[m] == MIX_RENDER
                                                    ? render_users(o->users, jobs)
                                                    : o->users,
                                       .batch = o->batches[i],
                                       .jobs = jobs});
        }
    }
    /* Consumes alone over the same users: what the web app sends most. */
    struct row consume = {.kind = ROW_DRAIN,
                          .scenario = "consume",
                          .mix = MIX_CONSUME_ONLY,
                          .users = o->users,
                          .batch = 1,
                          .jobs = o->jobs_b1};
    report_add(r, consume);
    consume.batch = o->default_batch;
    consume.jobs = o->jobs;
    report_add(r, consume);
    consume.kind = ROW_SQL_LIMIT;
    consume.scenario = "sql-limit";
    report_add(r, consume);
    if (o->hot) {
        struct row hot = {
            .kind = ROW_DRAIN, .scenario = "hot-user", .mix = MIX_HOT, .users = 1, .batch = 1};
        hot.jobs = o->jobs_b1;
        report_add(r, hot);
        hot.batch = o->default_batch;
        hot.jobs = o->jobs;
        report_add(r, hot);
    }
    static const int scale_workers[] = {1, 2, 4};
    for (size_t i = 0; i < (o->scale ? 3 : 0); i++)
        report_add(r, (struct row){.kind = ROW_SCALE,
                                   .scenario = "scale",
                                   .users = o->users,
                                   .jobs = o->jobs,
                                   .workers = scale_workers[i]});
    for (size_t i = 0; i < o->many_lots_count; i++)
        report_add(r, (struct row){.kind = ROW_MANY_LOTS,
                                   .scenario = "many-lots",
                                   .lots = (uint64_t)o->many_lots[i]});
    for (size_t i = 0; i < o->rate_count; i++)
        report_add(r, (struct row){.kind = ROW_LATENCY, .users = o->users, .rate = o->rates[i]});
}

/* Every row, each round, each worker: A B A B ... for one row, then the
 * next row. */
static void run_rows(struct bench *b, struct report *r)
{
    const struct options *o = &b->opt;
    for (size_t i = 0; i < r->row_count; i++) {
        const struct row *row = &r->rows[i];
        b->row_seed = (uint64_t)i;
        for (int64_t k = 0; k < o->rounds; k++) {
            for (size_t side = 0; side < o->side_count; side++) {
                b->side = side;
                b->round = k + 1;
                struct run_result *run = report_run(r, o, i, k, side);
                switch (row->kind) {
                case ROW_DRAIN:
                    run_drain(b, row->scenario, row->mix, row->users, row->batch, row->jobs,
                              &run->drain);
                    break;
                case ROW_SCALE:
                    run->scale_per_s = run_scale(b, row->workers, row->jobs);
                    break;
                case ROW_LATENCY:
                    run_latency(b, row->rate, &run->latency);
                    break;
                case ROW_MANY_LOTS:
                    run_many_lots(b, row->lots, &run->many_lots);
                    break;
                case ROW_SQL_LIMIT:
                    run_sql_limit(b, row->batch, row->jobs, &run->drain);
                    break;
                }
            }
        }
    }
}

int main(int argc, char **argv)
{
    struct bench b = {0};
    parse_options(argc, argv, &b.opt);
    install_signals();
    for (size_t side = 0; side < b.opt.side_count; side++)
        b.opt.side_default_batch[side] = worker_default_batch(b.opt.worker_paths[side]);
    b.opt.default_batch = b.opt.side_default_batch[0];
    if (b.opt.side_count == 2 && b.opt.side_default_batch[1] != b.opt.default_batch)
        fprintf(stderr,
                "bench: warning: B's default batch is %" PRId64 ", A's %" PRId64
                "; the batch rows run both at A's\n",
                b.opt.side_default_batch[1], b.opt.default_batch);
    resolve_batches(&b.opt);
    parse_redis_url(b.opt.redis_url, &b.redis);
    b.rc = redis_open(&b.redis);
    b.pg = pg_open(b.opt.database_url);
    fmt(b.nonce, sizeof b.nonce, "%lx",
        (unsigned long)(((uint64_t)time(NULL) << 16) ^ (uint64_t)getpid()) & 0xFFFFFFUL);
    int64_t started = now_ns();

    struct report *r = xcalloc(1, sizeof *r);
    plan_rows(&b, r);
    r->runs = xcalloc(r->row_count * (size_t)b.opt.rounds * b.opt.side_count, sizeof *r->runs);
    run_rows(&b, r);
    struct sweep_row sweep = {0};
    if (b.opt.sweep_lots > 0)
        run_sweep(&b, b.opt.sweep_lots, &sweep);

    printf("\n== credits-worker benchmark (%.0f s in all) ==\n", seconds_of(now_ns() - started));
    print_machine(b.pg, b.rc);
    for (size_t side = 0; side < b.opt.side_count; side++)
        printf("worker%s%s: %s\n", b.opt.side_count > 1 ? " " : "",
               b.opt.side_count > 1 ? (side ? "B" : "A") : "", b.opt.worker_paths[side]);
    if (bench_labels_runs(&b.opt))
        printf("runs: %" PRId64 " round%s of each row, %s; each with fresh prefixes\n",
               b.opt.rounds, b.opt.rounds > 1 ? "s" : "",
               b.opt.side_count > 1 ? "A then B in each round" : "one worker");
    for (size_t m = 0; m < BATCH_MIXES; m++)
        if (r->skipped[m][0])
            printf("mix %s not run: %s\n", g_batch_mix_names[m], r->skipped[m]);
    print_drain_table(&b.opt, r);
    print_cpu_per_job(&b.opt, r);
    print_ratios(&b.opt, r);
    print_sql_ratios(&b.opt, r);
    print_scale(&b.opt, r);
    print_latency(&b.opt, r);
    print_many_lots(&b.opt, r);
    print_waits(&b.opt, r);
    print_ab(&b.opt, r);
    print_sweep(&b.opt, &sweep);
    print_legend();
    free(r->runs);
    free(r);
    PQfinish(b.pg);
    redisFree(b.rc);
    return 0;
}
