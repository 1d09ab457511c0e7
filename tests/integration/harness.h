/*
 * harness.h -- what the C integration suites (test_worker.c, test_faults.c)
 * share: the real credits-worker started with fork/execve and stopped by PID,
 * one Redis and one PostgreSQL connection to the throwaway servers that
 * run_c_test.sh started, jobs encoded and sent the way a producer sends them,
 * bounded waits for results and drained streams, and the ledger's SQL
 * invariants (contract section 5).
 *
 * Every helper fails the running cmocka test (CHECK) instead of returning an
 * error; the failure message names the test's current step (step()) and the
 * log of the last worker started.
 */
#ifndef CREDITS_TESTS_HARNESS_H
#define CREDITS_TESTS_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <msgpack.h>

#include "core/codec.h"
#include "core/job.h"

#define WAIT_MS 15000      /* the longest a condition is polled for */
#define POLL_MS 10         /* between two polls */
#define STOP_WAIT_MS 15000 /* the longest a worker may take to stop on SIGTERM */
#define WORKERS_MAX 8
#define DAY_MS INT64_C(86400000)
#define DEFAULT_GROUP "credits-worker"

extern redisContext *R; /* the test's own Redis connection */
extern PGconn *PG;      /* the test's own PostgreSQL connection */
extern const char *BUILD_DIR;
extern char LOG_DIR[64];
extern char LAST_LOG[256];
extern char STEP[300]; /* what the test is doing: printed with a failed check */

extern const char *const STREAMS[3]; /* "consume", "purchase", "allocate" */

/* ---------------------------------------------------------------------------
 * Checks and small things
 * ------------------------------------------------------------------------- */

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("%s:%d: check failed: %s\n  step: %s\n  ", __FILE__, __LINE__, #cond,      \
                        STEP);                                                                     \
            print_error(__VA_ARGS__);                                                              \
            print_error("\n  last worker log: %s\n", LAST_LOG);                                    \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

void step(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* A formatted string in one of a ring of buffers (valid for the next 31 calls). */
const char *fmt(const char *format, ...) __attribute__((format(printf, 1, 2)));

int64_t mono_ms(void);
int64_t wall_ms(void);
void sleep_ms(int ms);

/* "applied" for JOB_OK, else the error code. */
const char *err_name(enum job_error e);

/* Stream entry IDs "ms-seq" in their order: <0, 0, >0. */
int compare_entry_ids(const char *a, const char *b);

/* ---------------------------------------------------------------------------
 * Redis
 * ------------------------------------------------------------------------- */

redisReply *redis_argv(int argc, const char **argv, const size_t *lens);

/* A command of NUL-terminated arguments, NULL-terminated list. */
redisReply *redis_cmd(const char *arg0, ...) __attribute__((sentinel));

void redis_ok(redisReply *reply);
long long redis_int(redisReply *reply);

/* Connects R again (after a Redis restart), retrying until timeout_ms. */
void redis_reconnect(int timeout_ms);

const char *key(const char *prefix, const char *suffix);
const char *stream_key(const char *prefix, const char *stream);

/* The value of `name` in a flat [name, value, ...] reply, or NULL. */
const redisReply *kv_get(const redisReply *arr, const char *name);

void xadd_raw(const char *prefix, const char *stream, const char *field, const void *data,
              size_t len, char *entry_out);

void pending_count_each(const char *prefix, const char *group, long long out[3]);
long long pending_total(const char *prefix, const char *group);

/* Whether the group has delivered every entry of the stream and none is
 * pending: then every result of it has been published (ack comes after). */
bool stream_drained(const char *prefix, const char *stream, const char *group);
bool drained(const char *prefix, const char *group);

/* Waits until every entry of the three job streams was delivered to the
 * group and acknowledged. */
void wait_drained_group(const char *prefix, const char *group);
void wait_drained(const char *prefix);
/* The same with its own deadline. */
void wait_drained_within(const char *prefix, const char *group, int timeout_ms);

bool group_exists(const char *prefix, const char *stream, const char *group);

/* Waits until `consumer` has read the consume stream once (it is then inside
 * its event loop, with its signal handlers installed). */
void wait_consumer(const char *prefix, const char *group, const char *consumer);

/* Creates the default group on the three streams (at 0, MKSTREAM). */
void create_groups(const char *prefix);

/* Delivers the new entries of the consume stream to `consumer` (not acked). */
void read_as(const char *prefix, const char *consumer);

long long xlen(const char *k);
bool key_exists(const char *k);

/* ---------------------------------------------------------------------------
 * Results and dead letters
 * ------------------------------------------------------------------------- */

void decode_result(const char *what, const void *data, size_t len, struct result *r);

/* GET P:result:{id}: false when there is no such key. */
bool result_get(const char *prefix, const char *id, struct result *r);
void result_must(const char *prefix, const char *id, struct result *r);

#define EXPECT(r, id_, err_, replayed_) expect_result(__LINE__, (r), (id_), (err_), (replayed_))
void expect_result(int line, const struct result *r, const char *id, enum job_error err,
                   bool replayed);

#define EXPECT_BALANCE(r, t, p, m) expect_balance(__LINE__, (r), (t), (p), (m))
void expect_balance(int line, const struct result *r, int64_t total, int64_t pack, int64_t monthly);

void expect_identity(const struct result *r, enum job_type type, const char *user);
/* The amounts the two results carry are the same keys with the same values. */
bool same_amounts(const struct result *a, const struct result *b);

void expect_same_decision(const struct result *a, const struct result *b);

struct published {
    char entry[64];
    int field_count; /* fields of the stream entry (names and values) */
    char field[32];  /* the first field's name */
    unsigned char raw[2048];
    size_t raw_len;
    struct result r;
};

/* Every entry of P:results, oldest first (malloc'd, *count of them). */
struct published *read_results(const char *prefix, size_t *count);
size_t count_results(const struct published *pub, size_t n, const char *id, enum job_error err);

struct dead {
    char entry_id[64]; /* of the P:dead entry */
    char stream[256];
    char entry[64];
    char reason[512];
    bool has_job;
    unsigned char job[8192];
    size_t job_len;
    long long job_bytes; /* the original's length; -1 when absent */
    char job_sha256[80]; /* lowercase hex of the original; "" when absent */
    int field_count;
};

struct dead *read_dead(const char *prefix, size_t *count);

/* The dead letter of entry `entry` of the job stream `stream` ("consume"...):
 * entry IDs are per stream, two streams may hold the same one. */
const struct dead *find_dead(const char *prefix, const struct dead *d, size_t n, const char *stream,
                             const char *entry);

/* The dead letter of the entry `entry` of `stream`: its four fields. */
void expect_dead(const char *prefix, const char *stream, const char *entry, const char *reason,
                 const void *job, size_t job_len);

/* ---------------------------------------------------------------------------
 * Jobs
 * ------------------------------------------------------------------------- */

struct job job_base(enum job_type type, const char *id, const char *user);
struct job consume_job(const char *id, const char *user, int64_t amount, const char *tool,
                       const char *ref);
struct job purchase_job(const char *id, const char *user, const char *pack,
                        const char *payment_ref);
struct job allocate_job(const char *id, const char *user, const char *plan, const char *period);

struct bytes {
    unsigned char data[8192];
    size_t len;
};

void job_bytes(const struct job *j, struct bytes *out);

/* Enqueues `j` on `stream` (NULL: its own). */
void enqueue_on(const char *prefix, const char *stream, struct job j, char *entry_out);
void enqueue(const char *prefix, struct job j);

/* Enqueues, waits until the worker acknowledged it, reads P:result:{id}. */
void submit(const char *prefix, struct job j, struct result *r);

/* XADDs jobs[0..count) each on its own stream in one pipeline. Returns 0
 * when every XADD was acknowledged, -1 when the connection failed on the
 * way (R is then broken: redis_reconnect(); some of them may have been
 * added). Any other failure fails the test. */
int enqueue_pipelined(const char *prefix, const struct job *jobs, size_t count);

/* A hand-built msgpack value. */
struct mp {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

void mp_init(struct mp *m);
void mp_str(struct mp *m, const char *s);
void mp_kstr(struct mp *m, const char *k, const char *v);
void mp_kint(struct mp *m, const char *k, int64_t v);
/* map header + v:1, id, type, user: 4 of the `entries`. */
void mp_head(struct mp *m, size_t entries, const char *id, const char *type, const char *user);

/* ---------------------------------------------------------------------------
 * PostgreSQL
 * ------------------------------------------------------------------------- */

PGresult *pg_query(const char *sql, ...) __attribute__((sentinel));
/* The first cell as an integer (INT64_MIN for NULL). */
int64_t pg_int(const char *sql, ...) __attribute__((sentinel));
/* The first cell as text ("(null)" for NULL, "(no row)" without a row). */
const char *pg_text(const char *sql, ...) __attribute__((sentinel));
void pg_exec(const char *sql);

/* Connects PG again (after a PostgreSQL restart), retrying until timeout_ms. */
void pg_reconnect(int timeout_ms);

/* The contract's invariants (section 5), over the whole ledger. */
void check_invariants(void);

struct digest {
    char hex[40];
};

struct digest digest_of(const char *text);
bool same(struct digest a, struct digest b);
/* A digest of the whole ledger: jobs, lots, entries, the accounts' plans. */
struct digest ledger_fp(void);
/* A digest of one user's credits: lots, entries, plan. */
struct digest user_fp(const char *user);

/* The user's usable credits by the ledger's own rows. */
void sql_balance(const char *user, int64_t *total, int64_t *pack, int64_t *monthly);

#define EXPECT_SQL_BALANCE(user, t, p, m) expect_sql_balance(__LINE__, (user), (t), (p), (m))
void expect_sql_balance(int line, const char *user, int64_t total, int64_t pack, int64_t monthly);

int64_t job_rows(const char *id);
/* The credits.jobs row of a decided job: status and error as decided. */
void expect_job_row(const char *id, const char *type, const char *user, enum job_error err);

/* ---------------------------------------------------------------------------
 * Workers and other processes
 * ------------------------------------------------------------------------- */

/* Starts credits-worker with the environment changed by `given` ("K=V"
 * sets K; a bare "K" removes it) and the command-line `args` (NULL-terminated,
 * may be NULL); stderr to LOG_DIR/NN-<name>.log. CREDITS_HTTP_ADDR is empty
 * (the endpoint off) unless given. */
pid_t worker_spawn(const char *name, const char *const *given, int given_count,
                   const char *const *args);

/* Starts credits-worker with CREDITS_PREFIX=prefix and the given "K=V"
 * settings (NULL-terminated) over the environment. */
pid_t worker_start(const char *prefix, ...) __attribute__((sentinel));

/* The path of the log of the last worker started (LAST_LOG). */
const char *worker_last_log(void);

/* Sends signum, then waits up to timeout_ms. Returns the wait status, or -1
 * if it did not stop (then it is killed). *elapsed_ms: how long it took. */
int worker_signal_stop(pid_t pid, int signum, int timeout_ms, int64_t *elapsed_ms);
int worker_stop(pid_t pid, int timeout_ms, int64_t *elapsed_ms);
/* SIGTERM: it must exit 0 within STOP_WAIT_MS. */
void stop_clean(pid_t pid);
/* SIGKILL, and reaps it. */
void worker_kill(pid_t pid);
bool worker_alive(pid_t pid);
void kill_workers(void);

/* Runs argv (argv[0] searched in PATH) with stdout and stderr appended to
 * `log_path` (NULL: /dev/null); returns its pid. */
pid_t command_spawn(const char *const *argv, const char *log_path);
/* Waits for a command_spawn()ed process up to timeout_ms (then kills it
 * and returns -1). Returns its exit status (128+N for a signal). */
int command_wait(pid_t pid, int timeout_ms);
/* Whether a command_spawn()ed process has exited; then *exit_status is set
 * as command_wait() returns it. */
bool command_done(pid_t pid, int *exit_status);
/* command_spawn + command_wait. */
int command_run(const char *const *argv, const char *log_path, int timeout_ms);

/* ---------------------------------------------------------------------------
 * Fixtures: a suite calls these from its cmocka group and test fixtures.
 * ------------------------------------------------------------------------- */

/* Connects to the servers of run_c_test.sh, seeds the catalog (plans basic
 * 100/200, pro 1000/1500, nocap 50/NULL; packs p100 100/90d, p1k 1000/30d,
 * pdefault 10) and makes LOG_DIR /tmp/<name>.XXXXXX. 0 or -1. */
int harness_group_setup(const char *name);
int harness_group_teardown(void);
void harness_test_setup(void);
void harness_test_teardown(void);
/* At the end of main: removes LOG_DIR when every test passed (and
 * KEEP_TEST_DIR is not 1), else says where it is. */
void harness_finish(int failed);

#endif
