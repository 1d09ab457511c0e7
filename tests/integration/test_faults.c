/*
 * test_faults.c -- fault injection against the real credits-worker, Redis
 * and PostgreSQL (run by run_c_test.sh, which starts the servers through
 * deploy/servers.sh and migrates the schema).
 *
 * Each scenario sends a workload of valid jobs the way producers do, breaks
 * something while the worker drains it, lets it finish, and then proves that
 * nothing was lost and nothing was done twice:
 *
 *   - every distinct job ID has its result (P:result:{id}: applied or a
 *     stored rejection, one the job could get), and every copy sent got a
 *     result on P:results, each of them that one decision, at most one of
 *     them marked as the first (replayed: false) unless Redis went away in
 *     the middle of a publish;
 *   - credits.jobs holds exactly one row per ID, agreeing with the result,
 *     and the ledger rows of each job are its decision, once;
 *   - the ledger invariants of contract section 5 hold, and each user's
 *     usable balance is what the published decisions add up to (and, for
 *     users the test can compute a priori, that number);
 *   - nothing is pending on any job stream, and no valid job was
 *     dead-lettered;
 *   - `creditsctl audit` is clean, when the build has it.
 *
 * The faults: kill -9 of a worker mid-batch, again and again; an immediate
 * PostgreSQL restart and a Redis restart (AOF on) under load, with producers
 * still sending; two workers racing on one hot user; every job sent three
 * times; a worker started under a new consumer name while the old one's
 * entries are pending.
 *
 * Random choices come from one seed, printed at the start; FAULT_SEED=N
 * repeats a run's choices (the timing of the faults still varies).
 * FAULT_ONLY=text runs only the scenarios whose name contains it.
 */
#include "harness.h"

#include "../unit/case_filter.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define DRAIN_MS 90000     /* the longest a worker may take to finish after the faults */
#define PROGRESS_MS 20000  /* the longest a worker may take to publish something */
#define RESTART_MS 90000   /* the longest servers.sh may take to restart a server */
#define RECONNECT_MS 30000 /* the longest the test waits for a restarted server */
#define CHUNK 200          /* XADDs per pipeline */
#define KILLS 8            /* kill -9 mid-drain, scenario 1 */

/* The catalog of harness_group_setup(). */
#define P100_CREDITS 100
#define P1K_CREDITS 1000
#define BASIC_CREDITS 100
#define PRO_CREDITS 1000

static uint64_t SEED, RNG;
static char SERVERS_DIR[256]; /* deploy/servers.sh's DIR of the running servers */
static char SERVERS_SH[512];
static bool HAVE_AUDIT;
static int AUDIT_SEQ;

/* ---------------------------------------------------------------------------
 * Randomness (xorshift64*, one seed per run)
 * ------------------------------------------------------------------------- */

static uint64_t rnd(void)
{
    RNG ^= RNG >> 12;
    RNG ^= RNG << 25;
    RNG ^= RNG >> 27;
    return RNG * UINT64_C(2685821657736338717);
}

/* Uniform in lo..hi (inclusive). */
static int64_t rnd_in(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* ---------------------------------------------------------------------------
 * Workloads: the distinct jobs of a scenario, and the order their copies
 * are sent in
 * ------------------------------------------------------------------------- */

#define ALLOW(e) (1u << (unsigned)(e))
#define USERS_MAX 32

struct fjob {
    struct job job;
    unsigned allowed; /* ALLOW(error) of every decision it may get */
    int user;         /* index in workload.users */
    int copies;       /* stream entries Redis acknowledged */
    /* What the checks found. */
    struct result r;
    int published;       /* results of it on P:results */
    int first_decisions; /* of them, replayed: false */
    bool in_sql;
};

struct fuser {
    char id[64];
    bool exact;      /* funded first, then only consumes that fit: all must apply */
    int64_t funded;  /* credits its funding jobs grant */
    int64_t planned; /* exact users: the sum of its consumes after funding */
};

struct workload {
    char prefix[64];
    char tag[16];
    struct fjob *jobs;
    size_t n, cap;
    struct fuser users[USERS_MAX];
    int user_count;
    size_t *plan; /* job indices, in send order (a job may appear more than once) */
    size_t plan_n, plan_cap;
    size_t sent; /* plan[0..sent) are in Redis */
    int payment_seq;
    size_t *by_id; /* job indices sorted by ID */
};

static struct workload *wl_new(const char *prefix, const char *tag)
{
    struct workload *w = calloc(1, sizeof *w);
    CHECK(w != NULL, "out of memory");
    snprintf(w->prefix, sizeof w->prefix, "%s", prefix);
    snprintf(w->tag, sizeof w->tag, "%s", tag);
    return w;
}

static void wl_free(struct workload *w)
{
    if (w == NULL)
        return;
    free(w->jobs);
    free(w->plan);
    free(w->by_id);
    free(w);
}

static int wl_user(struct workload *w, const char *name, bool exact)
{
    CHECK(w->user_count < USERS_MAX, "too many users");
    struct fuser *u = &w->users[w->user_count];
    memset(u, 0, sizeof *u);
    snprintf(u->id, sizeof u->id, "%s-%s", w->tag, name);
    u->exact = exact;
    return w->user_count++;
}

static size_t wl_add(struct workload *w, struct job j, unsigned allowed, int user)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 1024;
        w->jobs = realloc(w->jobs, w->cap * sizeof *w->jobs);
        CHECK(w->jobs != NULL, "out of memory");
    }
    struct fjob *f = &w->jobs[w->n];
    memset(f, 0, sizeof *f);
    f->job = j;
    f->allowed = allowed;
    f->user = user;
    return w->n++;
}

static void plan_push(struct workload *w, size_t job)
{
    if (w->plan_n == w->plan_cap) {
        w->plan_cap = w->plan_cap ? w->plan_cap * 2 : 1024;
        w->plan = realloc(w->plan, w->plan_cap * sizeof *w->plan);
        CHECK(w->plan != NULL, "out of memory");
    }
    w->plan[w->plan_n++] = job;
}

static const char *next_id(struct workload *w)
{
    return fmt("%s-%06zu", w->tag, w->n);
}

/* A consume: an exact user's must apply (it was planned to fit). */
static size_t add_consume(struct workload *w, int user, int64_t amount)
{
    struct fuser *u = &w->users[user];
    unsigned allowed = ALLOW(JOB_OK);
    if (u->exact)
        u->planned += amount;
    else
        allowed |= ALLOW(JOB_ERR_INSUFFICIENT_CREDITS);
    /* tool and ref on some, so the compared fields vary. */
    const char *tool = rnd() % 2 ? "video" : NULL;
    const char *ref = rnd() % 3 == 0 ? fmt("ref-%zu", w->n) : NULL;
    return wl_add(w, consume_job(next_id(w), u->id, amount, tool, ref), allowed, user);
}

/* A purchase with a new payment_ref (shared: a payment_ref used before). */
static size_t add_purchase(struct workload *w, int user, const char *pack, const char *shared)
{
    const char *ref = shared ? shared : fmt("%s-pay-%d", w->tag, ++w->payment_seq);
    unsigned allowed;
    if (strcmp(pack, "p100") != 0 && strcmp(pack, "p1k") != 0)
        allowed = ALLOW(JOB_ERR_UNKNOWN_PACK);
    else if (shared != NULL)
        allowed = ALLOW(JOB_OK) | ALLOW(JOB_ERR_DUPLICATE_PAYMENT);
    else
        allowed = ALLOW(JOB_OK);
    return wl_add(w, purchase_job(next_id(w), w->users[user].id, pack, ref), allowed, user);
}

static size_t add_allocate(struct workload *w, int user, const char *plan, const char *period,
                           unsigned allowed)
{
    return wl_add(w, allocate_job(next_id(w), w->users[user].id, plan, period), allowed, user);
}

/* The funding of an exact or short user: sent and decided before the rest. */
static void fund(struct workload *w, int user, const char *pack, const char *plan)
{
    if (pack != NULL) {
        plan_push(w, add_purchase(w, user, pack, NULL));
        w->users[user].funded += strcmp(pack, "p1k") == 0 ? P1K_CREDITS : P100_CREDITS;
    }
    if (plan != NULL) {
        plan_push(w, add_allocate(w, user, plan, "2026-01", ALLOW(JOB_OK)));
        w->users[user].funded += strcmp(plan, "pro") == 0 ? PRO_CREDITS : BASIC_CREDITS;
    }
}

/* Consumes of 1..max_amount for an exact user, as many as fit in its funds
 * less `margin`, at most `count`. Returns the job indices via out. */
static size_t exact_consumes(struct workload *w, int user, int count, int max_amount,
                             int64_t margin, size_t *out)
{
    size_t k = 0;
    struct fuser *u = &w->users[user];
    for (int i = 0; i < count; i++) {
        int64_t amount = rnd_in(1, max_amount);
        if (u->planned + amount > u->funded - margin)
            break;
        out[k++] = add_consume(w, user, amount);
    }
    return k;
}

static void shuffle(size_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rnd() % i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

struct keyed {
    uint64_t key;
    size_t job;
};

static int compare_keyed(const void *pa, const void *pb)
{
    const struct keyed *a = pa, *b = pb;
    return a->key < b->key ? -1 : a->key > b->key;
}

/* Appends `jobs` to the plan in their order, plus `extra` more copies of
 * dup_percent % of them: a copy lands right behind the first one (the same
 * read, often the same batch), a little later (while the first one may be
 * in flight), or much later (a replay of a decided job), equally often. */
static void plan_with_copies(struct workload *w, const size_t *jobs, size_t n, int dup_percent,
                             int extra)
{
    size_t cap = n * (size_t)(1 + extra);
    struct keyed *k = calloc(cap, sizeof *k);
    CHECK(k != NULL, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        k[m++] = (struct keyed){(uint64_t)i * 16, jobs[i]};
        if ((int)rnd_in(1, 100) > dup_percent)
            continue;
        for (int c = 1; c <= extra; c++) {
            uint64_t at;
            switch (rnd() % 3) {
            case 0:
                at = (uint64_t)i * 16 + (uint64_t)c;
                break;
            case 1:
                at = ((uint64_t)i + (uint64_t)rnd_in(1, 30)) * 16 + (uint64_t)c;
                break;
            default:
                at = ((uint64_t)i + (uint64_t)rnd_in(100, 800)) * 16 + (uint64_t)c;
                break;
            }
            k[m++] = (struct keyed){at, jobs[i]};
        }
    }
    qsort(k, m, sizeof *k, compare_keyed);
    for (size_t i = 0; i < m; i++)
        plan_push(w, k[i].job);
    free(k);
}

/* The shape of a mixed workload (scenarios 1 to 3). */
struct mix {
    int exact_users; /* funded p1k + pro (2000), then consumes that fit */
    int short_users; /* funded basic (100), then far more consumes than that */
    int mixed_users; /* unfunded: purchases, allocations and consumes, any order */
    int consumes;    /* per user */
    int purchases;   /* per mixed user */
    int allocations; /* per mixed user: periods 2026-02 on */
    int dup_percent; /* of the jobs sent twice */
};

/* Funding first (plan[0..return)), then the mixed jobs, shuffled. */
static size_t gen_mixed(struct workload *w, const struct mix *m)
{
    int exact[USERS_MAX], shorts[USERS_MAX], mixed[USERS_MAX];
    for (int i = 0; i < m->exact_users; i++) {
        exact[i] = wl_user(w, fmt("e%d", i), true);
        fund(w, exact[i], "p1k", "pro");
    }
    for (int i = 0; i < m->short_users; i++) {
        shorts[i] = wl_user(w, fmt("s%d", i), false);
        fund(w, shorts[i], NULL, "basic");
    }
    for (int i = 0; i < m->mixed_users; i++)
        mixed[i] = wl_user(w, fmt("m%d", i), false);
    size_t funding = w->plan_n;

    size_t cap = (size_t)(m->exact_users + m->short_users + m->mixed_users) *
                     (size_t)(m->consumes + m->purchases + m->allocations + 2) +
                 16;
    size_t *jobs = calloc(cap, sizeof *jobs);
    CHECK(jobs != NULL, "out of memory");
    size_t n = 0;
    for (int i = 0; i < m->exact_users; i++)
        n += exact_consumes(w, exact[i], m->consumes, 9, 50, jobs + n);
    for (int i = 0; i < m->short_users; i++)
        for (int c = 0; c < m->consumes; c++)
            jobs[n++] = add_consume(w, shorts[i], rnd_in(1, 9));
    for (int i = 0; i < m->mixed_users; i++) {
        int u = mixed[i];
        size_t first = 0;
        for (int p = 0; p < m->purchases; p++) {
            if (p > 0 && p % 10 == 0) {
                /* The same payment under other job IDs: one of them
                 * applies, whichever is decided first. */
                char ref[JOB_PAYMENT_REF_BYTES_MAX + 1];
                snprintf(ref, sizeof ref, "%s", w->jobs[first].job.purchase.payment_ref);
                w->jobs[first].allowed |= ALLOW(JOB_ERR_DUPLICATE_PAYMENT);
                jobs[n++] = add_purchase(w, u, "p100", ref);
                continue;
            }
            size_t j = add_purchase(w, u, rnd() % 4 ? "p100" : "p1k", NULL);
            if (p == 0)
                first = j;
            jobs[n++] = j;
        }
        jobs[n++] = add_purchase(w, u, "no-such-pack", NULL);
        for (int a = 0; a < m->allocations; a++)
            jobs[n++] = add_allocate(w, u, a % 2 ? "pro" : "basic", fmt("2026-%02d", 2 + a),
                                     ALLOW(JOB_OK) | ALLOW(JOB_ERR_STALE_PERIOD));
        for (int c = 0; c < m->consumes; c++)
            jobs[n++] = add_consume(w, u, rnd_in(1, 60));
    }
    CHECK(n <= cap, "workload overflow");
    shuffle(jobs, n);
    plan_with_copies(w, jobs, n, m->dup_percent, 1);
    free(jobs);
    return funding;
}

/* ---------------------------------------------------------------------------
 * Sending
 * ------------------------------------------------------------------------- */

/* Sends plan[sent..sent+count) in pipelines of CHUNK. With survive set, a
 * connection lost on the way (a Redis restart) is waited out and the chunk
 * sent again: a job whose XADD may or may not have been taken goes twice,
 * which the job-ID dedupe absorbs. Only acknowledged chunks count copies. */
static void send_some(struct workload *w, size_t count, bool survive)
{
    static struct job chunk[CHUNK];
    size_t end = w->sent + count;
    if (end > w->plan_n)
        end = w->plan_n;
    while (w->sent < end) {
        size_t k = end - w->sent < CHUNK ? end - w->sent : CHUNK;
        for (size_t i = 0; i < k; i++)
            chunk[i] = w->jobs[w->plan[w->sent + i]].job;
        int64_t deadline = mono_ms() + RECONNECT_MS;
        while (enqueue_pipelined(w->prefix, chunk, k) != 0) {
            CHECK(survive, "XADD failed: %s", R->errstr);
            CHECK(mono_ms() < deadline, "could not send a chunk for %d ms", RECONNECT_MS);
            redis_reconnect(RECONNECT_MS);
        }
        for (size_t i = 0; i < k; i++)
            w->jobs[w->plan[w->sent + i]].copies++;
        w->sent += k;
    }
}

static void send_rest(struct workload *w, bool survive)
{
    send_some(w, w->plan_n - w->sent, survive);
}

/* How many lines of `path` contain `needle`. */
static int log_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static const char *consumer_env(const char *name)
{
    return fmt("CREDITS_CONSUMER=%s", name);
}

static pid_t start_worker(struct workload *w, const char *consumer, const char *more1,
                          const char *more2)
{
    const char *given[8];
    int n = 0;
    given[n++] = fmt("CREDITS_PREFIX=%s", w->prefix);
    given[n++] = consumer_env(consumer);
    given[n++] = "CREDITS_BLOCK_MS=200";
    if (more1 != NULL)
        given[n++] = more1;
    if (more2 != NULL)
        given[n++] = more2;
    pid_t pid = worker_spawn(consumer, given, n, NULL);
    /* Its signal handlers are in place once it logs `started`: a SIGTERM
     * before that would kill it, not stop it. */
    const char *log = worker_last_log();
    int64_t deadline = mono_ms() + WAIT_MS;
    while (log_count(log, "event=started") == 0) {
        CHECK(worker_alive(pid), "the worker exited at start-up (log %s)", log);
        CHECK(mono_ms() < deadline, "the worker did not start in %d ms (log %s)", WAIT_MS, log);
        sleep_ms(2);
    }
    return pid;
}

/* Sends the funding jobs plan[0..funding) and lets a worker decide them
 * before anything else is sent. */
static void fund_phase(struct workload *w, size_t funding)
{
    step("%s: funding (%zu jobs)", w->tag, funding);
    CHECK(w->sent == 0, "funding must go first");
    send_some(w, funding, false);
    pid_t pid = start_worker(w, fmt("%s-fund", w->tag), NULL, NULL);
    wait_drained(w->prefix);
    stop_clean(pid);
}

static long long results_count(const struct workload *w)
{
    return xlen(key(w->prefix, "results"));
}

/* Waits until P:results has more than `than` entries: the worker is
 * deciding (or replaying) jobs. */
static void wait_progress(const struct workload *w, long long than)
{
    int64_t deadline = mono_ms() + PROGRESS_MS;
    while (results_count(w) <= than) {
        CHECK(mono_ms() < deadline, "the worker published nothing for %d ms", PROGRESS_MS);
        sleep_ms(2);
    }
}

/* Sends up to `count` more jobs and waits until the worker publishes
 * something, so that what follows happens under load. The count is taken
 * before sending (the worker may decide them all at once), and there is
 * nothing to wait for once the plan is sent: the restarts before may have
 * sent it all. */
static void send_and_see_progress(struct workload *w, size_t count)
{
    long long before = results_count(w);
    size_t sent_before = w->sent;
    send_some(w, count, false);
    if (w->sent > sent_before)
        wait_progress(w, before);
}

/* ---------------------------------------------------------------------------
 * The servers: deploy/servers.sh of the running pair
 * ------------------------------------------------------------------------- */

/* The servers' directory: Redis runs with --dir DIR/redis. */
static void find_servers(void)
{
    redisReply *reply = redis_cmd("CONFIG", "GET", "dir", NULL);
    CHECK(reply->type == REDIS_REPLY_ARRAY && reply->elements == 2, "CONFIG GET dir");
    snprintf(SERVERS_DIR, sizeof SERVERS_DIR, "%s", reply->element[1]->str);
    freeReplyObject(reply);
    char *slash = strrchr(SERVERS_DIR, '/');
    CHECK(slash != NULL && strcmp(slash, "/redis") == 0,
          "Redis's dir %s is not DIR/redis of deploy/servers.sh", SERVERS_DIR);
    *slash = '\0';
    CHECK(access(fmt("%s/redis/pid", SERVERS_DIR), R_OK) == 0 &&
              access(fmt("%s/pg/pid", SERVERS_DIR), R_OK) == 0,
          "%s holds no servers of deploy/servers.sh", SERVERS_DIR);
    const char *src = getenv("CREDITS_SOURCE_DIR");
    if (src != NULL && src[0] != '\0') {
        snprintf(SERVERS_SH, sizeof SERVERS_SH, "%s/deploy/servers.sh", src);
    } else {
        /* tests/integration/test_faults.c -> the source tree */
        char here[400];
        snprintf(here, sizeof here, "%s", __FILE__);
        char *cut = strstr(here, "/tests/integration/");
        CHECK(cut != NULL, "set CREDITS_SOURCE_DIR");
        *cut = '\0';
        snprintf(SERVERS_SH, sizeof SERVERS_SH, "%s/deploy/servers.sh", here);
    }
    CHECK(access(SERVERS_SH, X_OK) == 0 || access(SERVERS_SH, R_OK) == 0, "no %s", SERVERS_SH);
}

/* Starts `servers.sh <what> DIR [opts...]` (NULL-terminated, may be NULL)
 * in the background. */
static pid_t servers_spawn(const char *what, const char *const *opts)
{
    const char *argv[16] = {"bash", SERVERS_SH, what, SERVERS_DIR};
    int argc = 4;
    for (int i = 0; opts != NULL && opts[i] != NULL && argc < 15; i++)
        argv[argc++] = opts[i];
    argv[argc] = NULL;
    return command_spawn(argv, fmt("%s/servers.log", LOG_DIR));
}

/* Keeps the producers going (chunks of `chunk` jobs every ~20 ms) while
 * servers.sh restarts a server; returns when it is done. */
static void restart_under_load(struct workload *w, const char *what, const char *const *opts,
                               size_t chunk, bool redis)
{
    int64_t start = mono_ms();
    pid_t pid = servers_spawn(what, opts);
    int status = -1;
    size_t before = w->sent;
    while (!command_done(pid, &status)) {
        CHECK(mono_ms() - start < RESTART_MS, "servers.sh %s took over %d ms", what, RESTART_MS);
        if (w->sent < w->plan_n)
            send_some(w, chunk, redis);
        sleep_ms(20);
    }
    CHECK(status == 0, "servers.sh %s %s failed (exit %d): see %s/servers.log", what, SERVERS_DIR,
          status, LOG_DIR);
    print_message("%s: %s took %" PRId64 " ms; %zu jobs sent meanwhile\n", w->tag, what,
                  mono_ms() - start, w->sent - before);
}

/* ---------------------------------------------------------------------------
 * The checks after a scenario
 * ------------------------------------------------------------------------- */

static const struct workload *SORT_W;

static int compare_by_id(const void *pa, const void *pb)
{
    const size_t *a = pa, *b = pb;
    return strcmp(SORT_W->jobs[*a].job.id, SORT_W->jobs[*b].job.id);
}

static void index_ids(struct workload *w)
{
    free(w->by_id);
    w->by_id = calloc(w->n + 1, sizeof *w->by_id);
    CHECK(w->by_id != NULL, "out of memory");
    for (size_t i = 0; i < w->n; i++)
        w->by_id[i] = i;
    SORT_W = w;
    qsort(w->by_id, w->n, sizeof *w->by_id, compare_by_id);
}

static struct fjob *find_job(struct workload *w, const char *id)
{
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(w->jobs[w->by_id[mid]].job.id, id);
        if (c == 0)
            return &w->jobs[w->by_id[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The decision itself: everything but `replayed`. */
static bool same_decision(const struct result *a, const struct result *b)
{
    return a->error == b->error && same_amounts(a, b) && a->done_at_ms == b->done_at_ms &&
           a->balance.total == b->balance.total && a->balance.pack == b->balance.pack &&
           a->balance.monthly == b->balance.monthly && a->has_id == b->has_id &&
           strcmp(a->id, b->id) == 0 && a->type == b->type && strcmp(a->user, b->user) == 0;
}

static const char *describe(const struct result *r)
{
    return fmt("{%s%s charged %" PRId64 " granted %" PRId64 " forfeited %" PRId64
               " balance %" PRId64 " done_at %" PRId64 "}",
               err_name(r->error), r->replayed ? " replayed" : "", r->amounts[RESULT_CHARGED],
               r->amounts[RESULT_GRANTED], r->amounts[RESULT_FORFEITED], r->balance.total,
               r->done_at_ms);
}

static int64_t pack_credits(const char *pack)
{
    return strcmp(pack, "p1k") == 0 ? P1K_CREDITS : P100_CREDITS;
}

static int64_t plan_credits(const char *plan)
{
    return strcmp(plan, "pro") == 0 ? PRO_CREDITS : BASIC_CREDITS;
}

/* P:result:{id} of every job, pipelined; each a decision the job may get. */
static void check_result_keys(struct workload *w)
{
    step("%s: every job has its result key", w->tag);
    size_t missing = 0;
    char first_missing[JOB_ID_BYTES_MAX + 1] = "";
    for (size_t base = 0; base < w->n; base += CHUNK) {
        size_t k = w->n - base < CHUNK ? w->n - base : CHUNK;
        for (size_t i = 0; i < k; i++) {
            const char *rk = key(w->prefix, fmt("result:%s", w->jobs[base + i].job.id));
            const char *argv[2] = {"GET", rk};
            size_t lens[2] = {3, strlen(rk)};
            CHECK(redisAppendCommandArgv(R, 2, argv, lens) == REDIS_OK, "GET pipeline");
        }
        for (size_t i = 0; i < k; i++) {
            struct fjob *f = &w->jobs[base + i];
            void *reply_ptr = NULL;
            CHECK(redisGetReply(R, &reply_ptr) == REDIS_OK && reply_ptr != NULL, "GET: %s",
                  R->errstr);
            redisReply *reply = reply_ptr;
            if (reply->type == REDIS_REPLY_STRING) {
                decode_result(fmt("result:%s", f->job.id), reply->str, reply->len, &f->r);
            } else {
                CHECK(reply->type == REDIS_REPLY_NIL, "GET result:%s: type %d", f->job.id,
                      reply->type);
                if (missing++ == 0)
                    snprintf(first_missing, sizeof first_missing, "%s", f->job.id);
                f->r.has_id = false;
            }
            freeReplyObject(reply);
        }
    }
    CHECK(missing == 0, "%zu of %zu jobs have no %s:result:{id} (the first: %s)", missing, w->n,
          w->prefix, first_missing);
    for (size_t i = 0; i < w->n; i++) {
        struct fjob *f = &w->jobs[i];
        const struct job *j = &f->job;
        const struct result *r = &f->r;
        CHECK(r->has_id && strcmp(r->id, j->id) == 0, "result:%s holds the result of %s", j->id,
              r->has_id ? r->id : "(no id)");
        expect_identity(r, j->type, j->user);
        CHECK(r->error == JOB_OK || job_error_is_stored(r->error),
              "%s: %s is not a decision against the ledger (message: %s)", j->id,
              err_name(r->error), r->message);
        CHECK(f->allowed & ALLOW(r->error), "%s (%s of user %s): decided %s, which it cannot be",
              j->id, job_type_name(j->type), j->user, describe(r));
        if (r->error != JOB_OK) {
            if (r->error == JOB_ERR_INSUFFICIENT_CREDITS)
                CHECK(r->balance.total < j->consume.amount,
                      "%s: insufficient_credits for %" PRId64 " with a balance of %" PRId64, j->id,
                      j->consume.amount, r->balance.total);
            continue;
        }
        switch (j->type) {
        case JOB_CONSUME:
            CHECK(r->amounts[RESULT_CHARGED] == j->consume.amount,
                  "%s: charged %" PRId64 " for a consume of %" PRId64, j->id,
                  r->amounts[RESULT_CHARGED], j->consume.amount);
            break;
        case JOB_PURCHASE:
            CHECK(r->amounts[RESULT_GRANTED] == pack_credits(j->purchase.pack),
                  "%s: %s granted %" PRId64, j->id, j->purchase.pack, r->amounts[RESULT_GRANTED]);
            break;
        case JOB_ALLOCATE:
            CHECK(r->amounts[RESULT_GRANTED] == plan_credits(j->allocate.plan),
                  "%s: %s granted %" PRId64, j->id, j->allocate.plan, r->amounts[RESULT_GRANTED]);
            break;
        case JOB_HOLD:
        case JOB_CAPTURE:
        case JOB_RELEASE:
        case JOB_REFUND:
        case JOB_REVOKE:
        case JOB_GRANT:
        case JOB_CANCEL:
            CHECK(false, "%s: the fault workloads send consume, purchase and allocate only", j->id);
        }
        CHECK(r->balance.total >= 0 && r->balance.total == r->balance.pack + r->balance.monthly,
              "%s: balance %s", j->id, describe(r));
    }
}

/* credits.jobs: one row per ID, agreeing with the result; the ledger rows of
 * each job are its decision, once. */
static void check_job_rows(struct workload *w)
{
    step("%s: one credits.jobs row per job, and its ledger rows", w->tag);
    PGresult *res = pg_query(
        "SELECT j.job_id, j.status, coalesce(j.error, ''), j.result, "
        "  (SELECT coalesce(sum(delta), 0) FROM credits.entries e "
        "     WHERE e.job_id = j.job_id AND e.kind = 'consume'), "
        "  (SELECT count(*) FROM credits.lots l WHERE l.job_id = j.job_id), "
        "  (SELECT coalesce(sum(granted), 0) FROM credits.lots l WHERE l.job_id = j.job_id), "
        "  (SELECT coalesce(sum(delta), 0) FROM credits.entries e "
        "     WHERE e.job_id = j.job_id AND e.kind = 'forfeit'), "
        "  (SELECT count(*) FROM credits.entries e "
        "     WHERE e.job_id = j.job_id AND e.kind IN ('purchase', 'allocate')) "
        "FROM credits.jobs j WHERE starts_with(j.job_id, $1) ORDER BY j.job_id",
        fmt("%s-", w->tag), NULL);
    int rows = PQntuples(res);
    for (size_t i = 0; i < w->n; i++)
        w->jobs[i].in_sql = false;
    for (int row = 0; row < rows; row++) {
        char id[JOB_ID_BYTES_MAX + 1];
        snprintf(id, sizeof id, "%s", PQgetvalue(res, row, 0));
        struct fjob *f = find_job(w, id);
        if (f == NULL)
            PQclear(res);
        CHECK(f != NULL, "credits.jobs has a row for %s, a job never sent", id);
        CHECK(!f->in_sql, "two credits.jobs rows for %s", id);
        f->in_sql = true;
        const struct result *r = &f->r;
        const char *status = PQgetvalue(res, row, 1);
        const char *error = PQgetvalue(res, row, 2);
        bool applied = r->error == JOB_OK;
        CHECK(strcmp(status, applied ? "applied" : "rejected") == 0 &&
                  strcmp(error, applied ? "" : job_error_name(r->error)) == 0,
              "credits.jobs row of %s says %s/%s, its result %s", id, status, error, describe(r));
        size_t len = 0;
        unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, 3), &len);
        CHECK(raw != NULL, "cannot unescape credits.jobs.result of %s", id);
        struct result stored;
        int rc = codec_decode_result(raw, len, &stored);
        PQfreemem(raw);
        CHECK(rc == 0, "credits.jobs.result of %s is not a msgpack result", id);
        CHECK(same_decision(&stored, r), "%s: stored decision %s, P:result %s", id,
              describe(&stored), describe(r));
        int64_t consumed = strtoll(PQgetvalue(res, row, 4), NULL, 10);
        int64_t lots = strtoll(PQgetvalue(res, row, 5), NULL, 10);
        int64_t granted = strtoll(PQgetvalue(res, row, 6), NULL, 10);
        int64_t forfeited = strtoll(PQgetvalue(res, row, 7), NULL, 10);
        int64_t grants = strtoll(PQgetvalue(res, row, 8), NULL, 10);
        const struct job *j = &f->job;
        if (j->type == JOB_CONSUME) {
            CHECK(consumed == (applied ? -j->consume.amount : 0) && lots == 0,
                  "%s (%s consume of %" PRId64 "): consume entries sum to %" PRId64 ", %" PRId64
                  " lots",
                  id, err_name(r->error), j->consume.amount, consumed, lots);
        } else {
            CHECK(lots == (applied ? 1 : 0) &&
                      granted == (applied ? r->amounts[RESULT_GRANTED] : 0) && grants == lots &&
                      consumed == 0,
                  "%s (%s %s): %" PRId64 " lots granting %" PRId64 ", %" PRId64
                  " grant entries, expected %d lot of %" PRId64,
                  id, err_name(r->error), job_type_name(j->type), lots, granted, grants,
                  applied ? 1 : 0, applied ? r->amounts[RESULT_GRANTED] : 0);
        }
        CHECK(forfeited == -(applied && j->type == JOB_ALLOCATE ? r->amounts[RESULT_FORFEITED] : 0),
              "%s: forfeit entries sum to %" PRId64 ", the result says forfeited %" PRId64, id,
              forfeited, r->amounts[RESULT_FORFEITED]);
    }
    PQclear(res);
    size_t missing = 0;
    char first[JOB_ID_BYTES_MAX + 1] = "";
    for (size_t i = 0; i < w->n; i++)
        if (!w->jobs[i].in_sql && missing++ == 0)
            snprintf(first, sizeof first, "%s", w->jobs[i].job.id);
    CHECK(missing == 0, "%zu jobs have a result but no credits.jobs row (the first: %s)", missing,
          first);
    CHECK((size_t)rows == w->n, "%d credits.jobs rows for %zu jobs", rows, w->n);
}

static int compare_payment_ref(const void *pa, const void *pb)
{
    const size_t *a = pa, *b = pb;
    return strcmp(SORT_W->jobs[*a].job.purchase.payment_ref,
                  SORT_W->jobs[*b].job.purchase.payment_ref);
}

/* One payment grants credits once: of the purchases of a known pack that
 * share a payment_ref, exactly one applied. */
static void check_payments(struct workload *w)
{
    step("%s: each payment_ref granted once", w->tag);
    size_t *p = calloc(w->n + 1, sizeof *p);
    CHECK(p != NULL, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->jobs[i].job.type == JOB_PURCHASE &&
            !(w->jobs[i].allowed & ALLOW(JOB_ERR_UNKNOWN_PACK)))
            p[n++] = i;
    SORT_W = w;
    qsort(p, n, sizeof *p, compare_payment_ref);
    char bad[JOB_PAYMENT_REF_BYTES_MAX + 1] = "";
    int bad_applied = 0;
    for (size_t i = 0; i < n && bad[0] == '\0';) {
        size_t end = i;
        int applied = 0;
        const char *ref = w->jobs[p[i]].job.purchase.payment_ref;
        while (end < n && strcmp(w->jobs[p[end]].job.purchase.payment_ref, ref) == 0)
            applied += w->jobs[p[end++]].r.error == JOB_OK;
        if (applied != 1) {
            snprintf(bad, sizeof bad, "%s", ref);
            bad_applied = applied;
        }
        i = end;
    }
    free(p);
    CHECK(bad[0] == '\0', "payment_ref %s: %d purchases applied, expected exactly 1", bad,
          bad_applied);
}

/* Every user's usable balance is what its applied decisions add up to; an
 * exact user's is its funds less its planned consumes, all applied. */
static void check_balances(struct workload *w)
{
    step("%s: balances", w->tag);
    for (int u = 0; u < w->user_count; u++) {
        const struct fuser *user = &w->users[u];
        int64_t sum = 0, consumes = 0, applied_consumes = 0;
        for (size_t i = 0; i < w->n; i++) {
            const struct fjob *f = &w->jobs[i];
            if (f->user != u)
                continue;
            if (f->job.type == JOB_CONSUME)
                consumes++;
            if (f->r.error != JOB_OK)
                continue;
            sum += f->r.amounts[RESULT_GRANTED] - f->r.amounts[RESULT_CHARGED] -
                   f->r.amounts[RESULT_FORFEITED];
            applied_consumes += f->job.type == JOB_CONSUME;
        }
        int64_t total, pack, monthly;
        sql_balance(user->id, &total, &pack, &monthly);
        CHECK(total == sum,
              "user %s: the ledger's usable balance is %" PRId64
              ", its published decisions add up to %" PRId64,
              user->id, total, sum);
        if (user->exact) {
            CHECK(applied_consumes == consumes,
                  "user %s: %" PRId64 " of its %" PRId64 " consumes applied, all fit", user->id,
                  applied_consumes, consumes);
            CHECK(total == user->funded - user->planned,
                  "user %s: balance %" PRId64 ", expected %" PRId64 " - %" PRId64 " = %" PRId64,
                  user->id, total, user->funded, user->planned, user->funded - user->planned);
        }
    }
}

/* What P:results may hold besides one result per copy sent. */
enum results_mode {
    /* No fault, no redelivery: exactly one result per copy, one of them the
     * first decision (replayed: false), the others replays. */
    RESULTS_EXACT,
    /* Entries delivered again (a killed worker, a commit of unknown
     * outcome): more replays; still at most one first decision. */
    RESULTS_REDELIVERED,
    /* Redis lost in the middle of a publish: the worker publishes the same
     * results again, so P:results may hold the same first decision twice
     * (the same bytes: a stream append is at-least-once). */
    RESULTS_REPUBLISHED,
};

/* P:results: every copy sent got a result, and every result of an ID is its
 * one decision (the same done_at and figures as the stored one); then what
 * `mode` says. */
static void check_results_stream(struct workload *w, enum results_mode mode)
{
    step("%s: P:results", w->tag);
    size_t n;
    struct published *pub = read_results(w->prefix, &n);
    for (size_t i = 0; i < w->n; i++)
        w->jobs[i].published = w->jobs[i].first_decisions = 0;
    const char *problem = NULL;
    for (size_t i = 0; i < n && problem == NULL; i++) {
        const struct result *r = &pub[i].r;
        if (!r->has_id) {
            problem = fmt("a result without an ID (entry %s)", pub[i].entry);
            break;
        }
        struct fjob *f = find_job(w, r->id);
        if (f == NULL) {
            problem = fmt("a result for %s, never sent", r->id);
            break;
        }
        f->published++;
        f->first_decisions += !r->replayed;
        if (!same_decision(r, &f->r))
            problem = fmt("%s: published %s (entry %s), its decision is %s", r->id, describe(r),
                          pub[i].entry, describe(&f->r));
    }
    free(pub);
    CHECK(problem == NULL, "%s", problem);
    size_t replays = 0, republished = 0;
    for (size_t i = 0; i < w->n; i++) {
        const struct fjob *f = &w->jobs[i];
        CHECK(f->published >= f->copies, "%s: sent %d times, %d results", f->job.id, f->copies,
              f->published);
        if (mode != RESULTS_REPUBLISHED)
            CHECK(f->first_decisions <= 1, "%s was decided %d times (replayed: false)", f->job.id,
                  f->first_decisions);
        if (mode == RESULTS_EXACT)
            CHECK(f->published == f->copies && f->first_decisions == 1,
                  "%s: sent %d times, %d results of which %d first decisions", f->job.id, f->copies,
                  f->published, f->first_decisions);
        republished += f->first_decisions > 1;
        replays += (size_t)(f->published - f->first_decisions);
    }
    print_message("%s: %zu jobs, %zu sent, %zu results published (%zu replays, %zu first "
                  "decisions published twice)\n",
                  w->tag, w->n, w->sent, n, replays, republished);
}

/* `creditsctl audit`, when the build has it: exit 0. */
static void run_audit(const struct workload *w)
{
    if (!HAVE_AUDIT)
        return;
    step("%s: creditsctl audit", w->tag);
    const char *log = fmt("%s/audit-%02d-%s.log", LOG_DIR, ++AUDIT_SEQ, w->tag);
    const char *argv[] = {fmt("%s/creditsctl", BUILD_DIR), "audit", NULL};
    int status = command_run(argv, log, 60000);
    CHECK(status == 0, "creditsctl audit exited %d: see %s", status, log);
}

/* Everything the brief requires after a scenario; the workers must be done
 * (the streams drained). */
static void verify(struct workload *w, const char *group, enum results_mode mode)
{
    CHECK(w->sent == w->plan_n, "%zu of %zu planned copies were sent", w->sent, w->plan_n);
    index_ids(w);
    step("%s: nothing pending", w->tag);
    long long each[3];
    pending_count_each(w->prefix, group, each);
    CHECK(each[0] == 0 && each[1] == 0 && each[2] == 0,
          "XPENDING consume %lld purchase %lld "
          "allocate %lld",
          each[0], each[1], each[2]);
    step("%s: no dead letter (every job is valid)", w->tag);
    long long dead = xlen(key(w->prefix, "dead"));
    if (dead > 0) {
        size_t n;
        struct dead *d = read_dead(w->prefix, &n);
        for (size_t i = 0; i < n && i < 5; i++)
            print_error("dead letter %s: stream %s entry %s reason %s\n", d[i].entry_id,
                        d[i].stream, d[i].entry, d[i].reason);
        free(d);
    }
    CHECK(dead == 0, "%lld valid jobs were dead-lettered", dead);
    check_result_keys(w);
    check_job_rows(w);
    step("%s: the ledger invariants", w->tag);
    check_invariants();
    check_payments(w);
    check_balances(w);
    check_results_stream(w, mode);
    run_audit(w);
}

/* ---------------------------------------------------------------------------
 * 1. kill -9 mid-batch, again and again, under the same consumer name
 * ------------------------------------------------------------------------- */

/* Whether a worker's database session has a transaction open. */
static bool worker_in_transaction(void)
{
    return pg_int("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                  "'credits-worker' AND xact_start IS NOT NULL",
                  NULL) > 0;
}

static void test_kill_9_mid_batch_repeatedly_loses_and_doubles_nothing(void **state)
{
    struct workload *w = *state = wl_new("f_kill", "f1");
    const struct mix m = {.exact_users = 3,
                          .short_users = 3,
                          .mixed_users = 4,
                          .consumes = 400,
                          .purchases = 30,
                          .allocations = 6,
                          .dup_percent = 12};
    size_t funding = gen_mixed(w, &m);
    fund_phase(w, funding);

    size_t rest = w->plan_n - w->sent;
    size_t backlog = rest / 2, per_kill = rest / 2 / KILLS + 1;
    step("f1: a backlog of %zu entries", backlog);
    send_some(w, backlog, false);
    const char *consumer = "f1-worker";
    int spender = 0; /* a short user: more consumes whenever the plan runs out */
    while (w->users[spender].exact)
        spender++;
    int mid_drain = 0, cycles = 0, in_transactions = 0;
    for (; mid_drain < KILLS && cycles < 3 * KILLS; cycles++) {
        step("f1: kill -9 number %d (%d mid-drain so far)", cycles + 1, mid_drain);
        if (w->sent == w->plan_n)
            for (int i = 0; i < 300; i++)
                plan_push(w, add_consume(w, spender, rnd_in(1, 9)));
        /* A random moment: after 1 to 300 more results, or as soon as
         * the worker has drained what there is. */
        long long target = results_count(w) + rnd_in(1, 300);
        /* Batches of every size, the default (256) most often. */
        static const char *const batch[] = {"CREDITS_BATCH_MAX=4", "CREDITS_BATCH_MAX=32",
                                            "CREDITS_BATCH_MAX=256", "CREDITS_BATCH_MAX=256"};
        pid_t pid = start_worker(w, consumer, batch[rnd() % 4], NULL);
        int64_t deadline = mono_ms() + PROGRESS_MS;
        bool was_drained = false;
        while (results_count(w) < target && !(was_drained = drained(w->prefix, DEFAULT_GROUP))) {
            CHECK(mono_ms() < deadline, "the worker published nothing for %d ms", PROGRESS_MS);
            CHECK(worker_alive(pid), "the worker died (log %s)", worker_last_log());
        }
        /* Every other time, wait (up to 2 s) for the worker to be inside
         * a transaction: the kill lands between BEGIN and COMMIT. */
        bool in_transaction = false;
        int64_t until = mono_ms() + 2000;
        while (cycles % 2 == 1 && !was_drained && !in_transaction && mono_ms() < until)
            in_transaction = worker_in_transaction();
        worker_kill(pid);
        long long pending = pending_total(w->prefix, DEFAULT_GROUP);
        mid_drain += !was_drained;
        in_transactions += in_transaction;
        print_message("f1: kill %d%s: %lld results so far, %lld entries left pending\n", cycles + 1,
                      in_transaction ? " inside a transaction" : "", results_count(w), pending);
        /* More work arrives while the worker is down. */
        send_some(w, per_kill, false);
    }

    step("f1: the last start under the same name finishes the work");
    send_rest(w, false);
    pid_t pid = start_worker(w, consumer, NULL, NULL);
    wait_drained_within(w->prefix, DEFAULT_GROUP, DRAIN_MS);
    stop_clean(pid);
    verify(w, DEFAULT_GROUP, RESULTS_REDELIVERED);
    print_message("f1: %d kills, %d before the streams were drained, %d inside a transaction\n",
                  cycles, mid_drain, in_transactions);
    /* Checked last: a worker that loses jobs fails the checks above. */
    CHECK(mid_drain >= KILLS,
          "only %d of %d kills landed before the worker had drained the streams", mid_drain,
          cycles);
    CHECK(in_transactions >= 1, "no kill landed while the worker had a transaction open");
}

/* ---------------------------------------------------------------------------
 * 2. PostgreSQL immediate restart under load
 * ------------------------------------------------------------------------- */

static void test_postgres_immediate_restart_under_load_is_survived_by_reconnecting(void **state)
{
    struct workload *w = *state = wl_new("f_pg", "f2");
    const struct mix m = {.exact_users = 3,
                          .short_users = 2,
                          .mixed_users = 3,
                          .consumes = 400,
                          .purchases = 30,
                          .allocations = 6,
                          .dup_percent = 5};
    step("f2: the workers' sessions commit synchronously");
    CHECK(strcmp(pg_text("SHOW synchronous_commit", NULL), "on") == 0,
          "synchronous_commit is %s: an acknowledged commit could be lost by the restart",
          pg_text("SHOW synchronous_commit", NULL));
    size_t funding = gen_mixed(w, &m);
    fund_phase(w, funding);
    size_t rest = w->plan_n - w->sent;
    send_some(w, rest / 3, false);
    /* Small batches: many commits, so that one is likely in flight. */
    pid_t pid = start_worker(w, "f2-worker", "CREDITS_BATCH_MAX=16", NULL);
    for (int restart = 1; restart <= 3; restart++) {
        step("f2: PostgreSQL immediate restart %d under load", restart);
        /* Each restart finds the worker connected again after the one
         * before: two restarts during one reconnect would be one reconnect. */
        int64_t reconnected_by = mono_ms() + 15000;
        while (log_count(worker_last_log(), "postgres_ready") < restart &&
               mono_ms() < reconnected_by)
            sleep_ms(50);
        send_and_see_progress(w, 200);
        restart_under_load(w, "restart-postgres", NULL, 40, false);
        pg_reconnect(RECONNECT_MS);
        CHECK(worker_alive(pid), "the worker died on the PostgreSQL restart (log %s)",
              worker_last_log());
    }
    step("f2: the worker reconnects by itself and finishes");
    send_rest(w, false);
    wait_drained_within(w->prefix, DEFAULT_GROUP, DRAIN_MS);
    CHECK(worker_alive(pid), "the worker died (log %s)", worker_last_log());
    const char *log = worker_last_log();
    /* With nothing left to apply the drain can end before the reconnect's
     * backoff timer fires (up to 10 s after the last failed attempt). */
    int64_t deadline = mono_ms() + 15000;
    while (log_count(log, "postgres_ready") < 4 && mono_ms() < deadline)
        sleep_ms(100);
    int lost = log_count(log, "postgres_lost"), ready = log_count(log, "postgres_ready");
    int unknown = log_count(log, "batch_outcome_unknown");
    print_message("f2: worker log: postgres_lost %d, postgres_ready %d, batch_outcome_unknown %d\n",
                  lost, ready, unknown);
    CHECK(ready >= 4, "the worker did not reconnect after each restart: %d postgres_ready in %s",
          ready, log);
    stop_clean(pid);
    verify(w, DEFAULT_GROUP, RESULTS_REDELIVERED);
}

/* ---------------------------------------------------------------------------
 * 3. Redis restart with AOF on, under load
 * ------------------------------------------------------------------------- */

static bool info_has(const char *text, const char *field)
{
    const char *p = strstr(text, field);
    return p != NULL && (p == text || p[-1] == '\n');
}

/* Turns the append-only file on in the running Redis (everything written so
 * far goes into its first rewrite) and waits until it is in use. */
static void enable_aof(void)
{
    redis_ok(redis_cmd("CONFIG", "SET", "appendfsync", "always", NULL));
    redis_ok(redis_cmd("CONFIG", "SET", "appendonly", "yes", NULL));
    int64_t deadline = mono_ms() + WAIT_MS;
    for (;;) {
        redisReply *info = redis_cmd("INFO", "persistence", NULL);
        CHECK(info->type == REDIS_REPLY_STRING, "INFO");
        bool done = info_has(info->str, "aof_enabled:1") &&
                    info_has(info->str, "aof_rewrite_in_progress:0") &&
                    info_has(info->str, "aof_rewrite_scheduled:0") &&
                    info_has(info->str, "aof_last_bgrewrite_status:ok");
        freeReplyObject(info);
        if (done)
            return;
        CHECK(mono_ms() < deadline, "Redis did not turn its AOF on");
        sleep_ms(20);
    }
}

static void disable_aof(void)
{
    redis_ok(redis_cmd("CONFIG", "SET", "appendonly", "no", NULL));
}

static void test_redis_restart_with_aof_under_load_loses_no_acknowledged_job(void **state)
{
    struct workload *w = *state = wl_new("f_redis", "f3");
    const struct mix m = {.exact_users = 3,
                          .short_users = 2,
                          .mixed_users = 3,
                          .consumes = 400,
                          .purchases = 30,
                          .allocations = 6,
                          .dup_percent = 5};
    size_t funding = gen_mixed(w, &m);
    step("f3: AOF on (appendfsync always)");
    enable_aof();
    fund_phase(w, funding);
    size_t rest = w->plan_n - w->sent;
    send_some(w, rest / 3, false);
    pid_t pid = start_worker(w, "f3-worker", "CREDITS_BATCH_MAX=16", NULL);
    /* A clean stop, a crash, a crash and a second without Redis. */
    static const char *const how[3][5] = {
        {"--aof", NULL}, {"--aof", "--kill", NULL}, {"--aof", "--kill", "--down", "1", NULL}};
    static const char *const what[3] = {"SIGINT", "kill -9", "kill -9, 1 s down"};
    for (int restart = 1; restart <= 3; restart++) {
        step("f3: Redis restart %d (%s) under load", restart, what[restart - 1]);
        send_and_see_progress(w, 200);
        restart_under_load(w, "restart-redis", how[restart - 1], 40, true);
        redis_reconnect(RECONNECT_MS);
        CHECK(worker_alive(pid), "the worker died on the Redis restart (log %s)",
              worker_last_log());
    }
    step("f3: the worker reconnects by itself and finishes");
    send_rest(w, true);
    wait_drained_within(w->prefix, DEFAULT_GROUP, DRAIN_MS);
    CHECK(worker_alive(pid), "the worker died (log %s)", worker_last_log());
    const char *log = worker_last_log();
    int lost = log_count(log, "redis_lost"), ready = log_count(log, "redis_ready");
    print_message("f3: worker log: redis_lost %d, redis_ready %d\n", lost, ready);
    CHECK(ready >= 4, "the worker did not reconnect after each restart: %d redis_ready in %s",
          ready, log);
    stop_clean(pid);
    verify(w, DEFAULT_GROUP, RESULTS_REPUBLISHED);
    disable_aof();
}

/* ---------------------------------------------------------------------------
 * 4. two workers racing over a hot user and a few cold ones
 * ------------------------------------------------------------------------- */

static void test_two_workers_racing_decide_each_job_once_without_double_spending(void **state)
{
    struct workload *w = *state = wl_new("f_race", "f4");
    int hot = wl_user(w, "hot", false);
    plan_push(w, add_purchase(w, hot, "p1k", NULL));
    plan_push(w, add_purchase(w, hot, "p1k", NULL));
    plan_push(w, add_allocate(w, hot, "pro", "2026-01", ALLOW(JOB_OK)));
    int64_t hot_funds = 2 * P1K_CREDITS + PRO_CREDITS;
    int cold[4];
    for (int i = 0; i < 4; i++) {
        cold[i] = wl_user(w, fmt("cold%d", i), true);
        fund(w, cold[i], "p100", "basic");
    }
    size_t funding = w->plan_n;
    fund_phase(w, funding);

    size_t jobs[2000];
    size_t n = 0;
    int64_t hot_demand = 0;
    for (int i = 0; i < 1400; i++) {
        int64_t amount = rnd_in(1, 5);
        hot_demand += amount;
        jobs[n++] = add_consume(w, hot, amount);
    }
    for (int i = 0; i < 10; i++) /* more credits for the hot user, mid-race */
        jobs[n++] = add_purchase(w, hot, "p100", NULL);
    for (int i = 0; i < 4; i++)
        n += exact_consumes(w, cold[i], 60, 4, 10, jobs + n);
    shuffle(jobs, n);
    plan_with_copies(w, jobs, n, 0, 0);
    step("f4: two workers, then %zu jobs (hot user: %" PRId64 " credits, %" PRId64 " asked for)", n,
         hot_funds + 10 * P100_CREDITS, hot_demand);
    pid_t a = start_worker(w, "f4-a", "CREDITS_BATCH_MAX=16", NULL);
    pid_t b = start_worker(w, "f4-b", "CREDITS_BATCH_MAX=16", NULL);
    wait_consumer(w->prefix, DEFAULT_GROUP, "f4-a");
    wait_consumer(w->prefix, DEFAULT_GROUP, "f4-b");
    while (w->sent < w->plan_n) {
        send_some(w, 50, false);
        sleep_ms(3);
    }
    wait_drained_within(w->prefix, DEFAULT_GROUP, DRAIN_MS);
    stop_clean(a);
    stop_clean(b);
    verify(w, DEFAULT_GROUP, RESULTS_EXACT);

    step("f4: the hot user spent at most what it had, and each credit once");
    int64_t charged = 0, granted = 0, rejected = 0;
    for (size_t i = 0; i < w->n; i++) {
        const struct fjob *f = &w->jobs[i];
        if (f->user != hot || f->r.error != JOB_OK) {
            rejected += f->user == hot && f->r.error != JOB_OK;
            continue;
        }
        charged += f->r.amounts[RESULT_CHARGED];
        granted += f->r.amounts[RESULT_GRANTED];
    }
    CHECK(granted == hot_funds + 10 * P100_CREDITS, "hot user granted %" PRId64, granted);
    CHECK(charged <= granted, "hot user charged %" PRId64 " of %" PRId64, charged, granted);
    CHECK(rejected > 0, "the hot user was never short: the race did not test the limit");
    print_message("f4: hot user: %" PRId64 " granted, %" PRId64 " charged, %" PRId64
                  " consumes rejected\n",
                  granted, charged, rejected);
}

/* ---------------------------------------------------------------------------
 * 5. producers sending every job three times
 * ------------------------------------------------------------------------- */

static void test_every_job_sent_three_times_is_decided_once_and_replayed_twice(void **state)
{
    struct workload *w = *state = wl_new("f_dup", "f5");
    int exact[3], shorts[2], mixed[2];
    for (int i = 0; i < 3; i++) {
        exact[i] = wl_user(w, fmt("e%d", i), true);
        fund(w, exact[i], "p1k", "pro");
    }
    for (int i = 0; i < 2; i++) {
        shorts[i] = wl_user(w, fmt("s%d", i), false);
        fund(w, shorts[i], NULL, "basic");
    }
    for (int i = 0; i < 2; i++)
        mixed[i] = wl_user(w, fmt("m%d", i), false);
    fund_phase(w, w->plan_n);

    size_t jobs[1200];
    size_t n = 0;
    for (int i = 0; i < 3; i++)
        n += exact_consumes(w, exact[i], 120, 9, 20, jobs + n);
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < 80; c++)
            jobs[n++] = add_consume(w, shorts[i], rnd_in(1, 9));
    for (int i = 0; i < 2; i++) {
        for (int p = 0; p < 20; p++)
            jobs[n++] = add_purchase(w, mixed[i], "p100", NULL);
        for (int a = 0; a < 4; a++)
            jobs[n++] = add_allocate(w, mixed[i], "basic", fmt("2026-%02d", 2 + a),
                                     ALLOW(JOB_OK) | ALLOW(JOB_ERR_STALE_PERIOD));
        for (int c = 0; c < 60; c++)
            jobs[n++] = add_consume(w, mixed[i], rnd_in(1, 40));
    }
    shuffle(jobs, n);
    /* Every tenth job asks for a reply: each copy pushes one. */
    for (size_t i = 0; i < n; i += 10)
        w->jobs[jobs[i]].job.reply = true;
    plan_with_copies(w, jobs, n, 100, 2);

    step("f5: two workers; %zu jobs, each sent 3 times (%zu entries)", n, w->plan_n - w->sent);
    pid_t a = start_worker(w, "f5-a", "CREDITS_BATCH_MAX=32", NULL);
    pid_t b = start_worker(w, "f5-b", "CREDITS_BATCH_MAX=32", NULL);
    wait_consumer(w->prefix, DEFAULT_GROUP, "f5-a");
    wait_consumer(w->prefix, DEFAULT_GROUP, "f5-b");
    while (w->sent < w->plan_n) {
        send_some(w, 30, false);
        sleep_ms(5);
    }
    wait_drained_within(w->prefix, DEFAULT_GROUP, DRAIN_MS);
    stop_clean(a);
    stop_clean(b);
    verify(w, DEFAULT_GROUP, RESULTS_EXACT);

    step("f5: three copies each, and three replies where asked");
    for (size_t i = 0; i < n; i++) {
        const struct fjob *f = &w->jobs[jobs[i]];
        CHECK(f->copies == 3 && f->published == 3 && f->first_decisions == 1,
              "%s: %d copies, %d results, %d first decisions", f->job.id, f->copies, f->published,
              f->first_decisions);
        if (f->job.reply) {
            long long len =
                redis_int(redis_cmd("LLEN", key(w->prefix, fmt("reply:%s", f->job.id)), NULL));
            CHECK(len == 3, "%s asked for replies and was sent 3 times: %lld replies", f->job.id,
                  len);
        }
    }
}

/* ---------------------------------------------------------------------------
 * 6. a new consumer name takes over the old one's pending entries
 * ------------------------------------------------------------------------- */

/* Pending entries of `consumer` over the three streams. */
static long long consumer_pending(const char *prefix, const char *consumer)
{
    long long total = 0;
    for (int s = 0; s < 3; s++) {
        redisReply *reply =
            redis_cmd("XINFO", "CONSUMERS", stream_key(prefix, STREAMS[s]), DEFAULT_GROUP, NULL);
        if (reply->type == REDIS_REPLY_ARRAY)
            for (size_t i = 0; i < reply->elements; i++) {
                const redisReply *name = kv_get(reply->element[i], "name");
                const redisReply *pending = kv_get(reply->element[i], "pending");
                if (name != NULL && pending != NULL && strcmp(name->str, consumer) == 0)
                    total += pending->integer;
            }
        freeReplyObject(reply);
    }
    return total;
}

/* XREADGROUP of every new entry of the three streams as `consumer`. */
static long long read_all_as(const char *prefix, const char *consumer)
{
    char k[3][128];
    for (int s = 0; s < 3; s++)
        snprintf(k[s], sizeof k[s], "%s", stream_key(prefix, STREAMS[s]));
    redisReply *reply = redis_cmd("XREADGROUP", "GROUP", DEFAULT_GROUP, consumer, "COUNT", "100000",
                                  "STREAMS", k[0], k[1], k[2], ">", ">", ">", NULL);
    CHECK(reply->type == REDIS_REPLY_ARRAY, "XREADGROUP as %s", consumer);
    long long n = 0;
    for (size_t i = 0; i < reply->elements; i++)
        n += (long long)reply->element[i]->element[1]->elements;
    freeReplyObject(reply);
    return n;
}

#define CLAIM_IDLE_MS 2000

static void test_new_consumer_takes_over_entries_pending_for_a_dead_one(void **state)
{
    struct workload *w = *state = wl_new("f_claim", "f6");
    int exact[2], mixed;
    for (int i = 0; i < 2; i++) {
        exact[i] = wl_user(w, fmt("e%d", i), true);
        fund(w, exact[i], "p1k", "pro");
    }
    mixed = wl_user(w, "m0", false);
    fund_phase(w, w->plan_n);

    size_t jobs[1500];
    size_t n = 0;
    for (int i = 0; i < 2; i++)
        n += exact_consumes(w, exact[i], 300, 9, 20, jobs + n);
    for (int p = 0; p < 20; p++)
        jobs[n++] = add_purchase(w, mixed, "p100", NULL);
    for (int c = 0; c < 300; c++)
        jobs[n++] = add_consume(w, mixed, rnd_in(1, 30));
    shuffle(jobs, n);
    plan_with_copies(w, jobs, n, 0, 0);

    step("f6: entries read by consumer f6-old and never acknowledged");
    size_t held = (w->plan_n - w->sent) / 2;
    send_some(w, held, false);
    long long read = read_all_as(w->prefix, "f6-old");
    int64_t read_at = wall_ms();
    CHECK(read == (long long)held && consumer_pending(w->prefix, "f6-old") == read,
          "f6-old holds %lld of %zu", consumer_pending(w->prefix, "f6-old"), held);
    size_t held_from = w->sent - held;
    step("f6: more entries nobody read; a worker under the new name f6-new");
    send_some(w, (w->plan_n - w->sent) / 2, false);
    pid_t pid = start_worker(w, "f6-new", fmt("CREDITS_CLAIM_IDLE_MS=%d", CLAIM_IDLE_MS), NULL);
    wait_drained_within(w->prefix, DEFAULT_GROUP, DRAIN_MS);
    CHECK(consumer_pending(w->prefix, "f6-old") == 0, "f6-old still holds entries");
    stop_clean(pid);
    step("f6: the old consumer's entries were decided, after they were idle long enough");
    for (size_t i = held_from; i < held_from + held; i++) {
        struct result r;
        const struct fjob *f = &w->jobs[w->plan[i]];
        result_must(w->prefix, f->job.id, &r);
        CHECK(r.done_at_ms >= read_at + CLAIM_IDLE_MS - 100,
              "%s, pending for f6-old, was decided %" PRId64 " ms after it was read, before "
              "CREDITS_CLAIM_IDLE_MS=%d",
              f->job.id, r.done_at_ms - read_at, CLAIM_IDLE_MS);
    }

    step("f6: a worker killed -9 with entries pending under its name");
    long long left = 0;
    for (int attempt = 1; attempt <= 5 && left == 0; attempt++) {
        send_some(w, (w->plan_n - w->sent) / 2 + 1, false);
        long long target = results_count(w) + rnd_in(1, 40);
        pid = start_worker(w, "f6-killed", fmt("CREDITS_CLAIM_IDLE_MS=%d", CLAIM_IDLE_MS),
                           "CREDITS_BATCH_MAX=16");
        int64_t deadline = mono_ms() + PROGRESS_MS;
        while (results_count(w) < target && !drained(w->prefix, DEFAULT_GROUP)) {
            CHECK(mono_ms() < deadline, "the worker published nothing for %d ms", PROGRESS_MS);
            CHECK(worker_alive(pid), "the worker died (log %s)", worker_last_log());
        }
        worker_kill(pid);
        left = consumer_pending(w->prefix, "f6-killed");
        print_message("f6: kill attempt %d: %lld entries left pending for f6-killed\n", attempt,
                      left);
    }
    CHECK(left > 0, "could not kill f6-killed while it held entries");
    send_rest(w, false);
    step("f6: a worker under another new name, f6-successor, takes them over");
    pid = start_worker(w, "f6-successor", fmt("CREDITS_CLAIM_IDLE_MS=%d", CLAIM_IDLE_MS), NULL);
    wait_drained_within(w->prefix, DEFAULT_GROUP, DRAIN_MS);
    CHECK(consumer_pending(w->prefix, "f6-killed") == 0, "f6-killed still holds entries");
    stop_clean(pid);
    verify(w, DEFAULT_GROUP, RESULTS_REDELIVERED);
}

/* ---------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    if (harness_group_setup("test_faults") != 0)
        return -1;
    const char *seed = getenv("FAULT_SEED");
    SEED = seed != NULL && seed[0] ? strtoull(seed, NULL, 10) : (uint64_t)wall_ms();
    RNG = SEED ? SEED : 1;
    fprintf(stderr, "FAULT_SEED=%" PRIu64 "\n", SEED);
    /* A commit that PostgreSQL acknowledged must survive its immediate
     * restart: servers.sh runs tests with synchronous_commit off, which
     * loses the last commits on a crash. New sessions (the workers') get
     * it on; fsync stays off, which only an OS crash would notice. */
    PGresult *res = PQexec(PG, "ALTER DATABASE postgres SET synchronous_commit = on");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "cannot turn synchronous_commit on: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    const char *argv[] = {fmt("%s/creditsctl", BUILD_DIR), "audit", "--help", NULL};
    HAVE_AUDIT = command_run(argv, NULL, 30000) == 0;
    fprintf(stderr, "creditsctl audit: %s\n", HAVE_AUDIT ? "run after each scenario" : "absent");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return harness_group_teardown();
}

static int test_setup(void **state)
{
    *state = NULL;
    harness_test_setup();
    pg_reconnect(RECONNECT_MS); /* the session gets synchronous_commit on, too */
    find_servers();
    return 0;
}

static int test_teardown(void **state)
{
    harness_test_teardown();
    wl_free(*state);
    *state = NULL;
    return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_kill_9_mid_batch_repeatedly_loses_and_doubles_nothing),
        T(test_postgres_immediate_restart_under_load_is_survived_by_reconnecting),
        T(test_redis_restart_with_aof_under_load_loses_no_acknowledged_job),
        T(test_two_workers_racing_decide_each_job_once_without_double_spending),
        T(test_every_job_sent_three_times_is_decided_once_and_replayed_twice),
        T(test_new_consumer_takes_over_entries_pending_for_a_dead_one),
    };
    /* FAULT_ONLY=text runs the scenarios whose name contains it; the case
     * filter (case_filter.h) then applies to those. */
    const char *only = getenv("FAULT_ONLY");
    struct CMUnitTest chosen[sizeof tests / sizeof tests[0]];
    size_t n = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (only == NULL || strstr(tests[i].name, only) != NULL)
            chosen[n++] = tests[i];
    int failed = case_filter_run("test_faults", chosen, n, group_setup, group_teardown, argc, argv);
    harness_finish(failed);
    return failed;
}
