/*
 * schedule.c -- creditsctl schedule: reads the accounts with a plan page by
 * page (keyset pagination on user_id, so no query holds the whole table),
 * builds an allocate job alloc:{user}:{period} for each with the worker's
 * own codec, and XADDs a page's jobs to {prefix}:jobs:allocate in one
 * pipeline. A progress bar on stderr when it is a terminal; a summary on
 * stdout at the end.
 */
#include "worker/ctl/schedule.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/codec.h"
#include "worker/ctl/admin.h"
#include "worker/ctl/enqueue.h"
#include "worker/ctl/json_out.h"
#include "worker/ctl/table.h"

#define PROGRESS_WIDTH 30

/* SQL keeps its own layout. */
/* clang-format off */

/* For the progress bar only: accounts may change while we page. */
static const char sql_count_accounts[] =
    "SELECT count(*)\n"
    "  FROM credits.accounts\n"
    " WHERE plan_id IS NOT NULL";

static const char sql_first_page[] =
    "SELECT user_id, plan_id\n"
    "  FROM credits.accounts\n"
    " WHERE plan_id IS NOT NULL\n"
    " ORDER BY user_id\n"
    " LIMIT $1";

/* $2: the last user_id of the previous page. */
static const char sql_next_page[] =
    "SELECT user_id, plan_id\n"
    "  FROM credits.accounts\n"
    " WHERE plan_id IS NOT NULL\n"
    "   AND user_id > $2\n"
    " ORDER BY user_id\n"
    " LIMIT $1";

/* clang-format on */

/* One run. */
struct schedule {
    struct ctl *ctl;
    PGconn *conn;
    redisContext *redis; /* NULL on a dry run */
    const char *period;
    char stream[CTL_KEY_BYTES];
    bool progress;    /* stderr is a terminal */
    int64_t expected; /* accounts counted up front (progress only) */
    char *last_user;  /* keyset: the last user_id read; NULL before */
    int64_t accounts; /* read */
    int64_t jobs;     /* valid jobs built (enqueued unless a dry run) */
    int64_t enqueued; /* XADDs Redis acknowledged */
    int64_t skipped;  /* users whose job would break the rules */
};

/* ------------------------------------------------------------------------ */
/* Jobs                                                                     */
/* ------------------------------------------------------------------------ */

static void report_skip(struct schedule *s, const char *user, const char *why)
{
    s->skipped++;
    if (s->skipped > SCHEDULE_SKIPS_SHOWN)
        return;
    char safe[TABLE_CELL_BUF_BYTES];
    table_safe_cell(user, safe);
    fprintf(stderr, "%screditsctl schedule: skipped user '%s': %s\n", s->progress ? "\n" : "", safe,
            why);
    if (s->skipped == SCHEDULE_SKIPS_SHOWN)
        fprintf(stderr, "creditsctl schedule: (further skipped users are only counted)\n");
}

/* The allocate job alloc:{user}:{period} into `buf`; false (counted as
 * skipped) when the user, plan or job ID breaks the contract's rules. */
static bool build_job(struct schedule *s, const char *user, const char *plan, msgpack_sbuffer *buf)
{
    struct job job;
    memset(&job, 0, sizeof job);
    job.type = JOB_ALLOCATE;
    if (!job_id_is_valid(user, strlen(user))) {
        report_skip(s, user, "the user ID breaks the ID rule (1 to 128 bytes 0x21..0x7E)");
        return false;
    }
    int n = snprintf(job.id, sizeof job.id, "alloc:%s:%s", user, s->period);
    if (n < 0 || (size_t)n >= sizeof job.id) {
        report_skip(s, user, "the job ID alloc:{user}:{period} would be over 128 bytes");
        return false;
    }
    if (strlen(plan) >= sizeof job.allocate.plan) {
        report_skip(s, user, "the account's plan ID is over 64 bytes");
        return false;
    }
    snprintf(job.user, sizeof job.user, "%s", user);
    snprintf(job.allocate.plan, sizeof job.allocate.plan, "%s", plan);
    snprintf(job.allocate.period, sizeof job.allocate.period, "%s", s->period);
    msgpack_sbuffer_clear(buf);
    if (enqueue_encode_checked(s->ctl, &job, buf, true) != CTL_OK) {
        report_skip(s, user, "the job would be invalid (the account's plan ID?)");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Pages                                                                    */
/* ------------------------------------------------------------------------ */

static void show_progress(const struct schedule *s, bool done)
{
    if (!s->progress)
        return;
    int64_t total = s->expected > s->accounts ? s->expected : s->accounts;
    int filled = total > 0 ? (int)(PROGRESS_WIDTH * s->accounts / total) : PROGRESS_WIDTH;
    int percent = total > 0 ? (int)(100 * s->accounts / total) : 100;
    fprintf(stderr, "\r[%.*s%*s] %3d%%  %" PRId64 "/%" PRId64 " accounts", filled,
            "##############################", PROGRESS_WIDTH - filled, "", percent, s->accounts,
            total);
    if (done)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Reads the replies of `count` pipelined XADDs. */
static int read_replies(struct schedule *s, int count)
{
    int rc = CTL_OK;
    for (int i = 0; i < count; i++) {
        redisReply *reply = ctl_redis_get_reply(s->ctl, s->redis, "enqueueing the jobs");
        if (!reply)
            return CTL_FAIL; /* the connection is unusable now, or told why */
        if (reply->type == REDIS_REPLY_STRING)
            s->enqueued++;
        else
            rc = CTL_FAIL;
        freeReplyObject(reply);
    }
    return rc;
}

/* Builds the page's jobs and, unless a dry run, XADDs them in one pipeline. */
static int enqueue_page(struct schedule *s, const PGresult *page)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    int queued = 0;
    for (int r = 0; r < PQntuples(page); r++) {
        s->accounts++;
        if (!build_job(s, PQgetvalue(page, r, 0), PQgetvalue(page, r, 1), &buf))
            continue;
        s->jobs++;
        if (!s->redis)
            continue;
        const char *argv[5] = {"XADD", s->stream, "*", "job", buf.data};
        size_t lens[5] = {4, strlen(s->stream), 1, 3, buf.size};
        if (redisAppendCommandArgv(s->redis, 5, argv, lens) != REDIS_OK) {
            msgpack_sbuffer_destroy(&buf);
            return ctl_failure(s->ctl, "enqueueing the jobs: out of memory");
        }
        queued++;
    }
    msgpack_sbuffer_destroy(&buf);
    return queued > 0 ? read_replies(s, queued) : CTL_OK;
}

/* Reads the next page of accounts with a plan. NULL after a message. */
static PGresult *next_page(struct schedule *s)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", SCHEDULE_PAGE_ROWS);
    const char *params[2] = {limit, s->last_user};
    const char *sql = s->last_user ? sql_next_page : sql_first_page;
    int nparams = s->last_user ? 2 : 1;
    PGresult *page = admin_query(s->conn, "reading the accounts", sql, nparams, params,
                                 s->ctl->errstr, sizeof s->ctl->errstr);
    if (!page)
        ctl_failure(s->ctl, "%s", s->ctl->errstr);
    return page;
}

static int run_pages(struct schedule *s)
{
    for (;;) {
        PGresult *page = next_page(s);
        if (!page)
            return CTL_FAIL;
        int rows = PQntuples(page);
        int rc = enqueue_page(s, page);
        if (rows > 0) {
            free(s->last_user);
            s->last_user = strdup(PQgetvalue(page, rows - 1, 0));
            ASSERT(s->last_user);
        }
        PQclear(page);
        show_progress(s, false);
        if (rc != CTL_OK)
            return rc;
        if (rows < SCHEDULE_PAGE_ROWS)
            return CTL_OK;
    }
}

/* ------------------------------------------------------------------------ */
/* The command                                                              */
/* ------------------------------------------------------------------------ */

static int count_accounts(struct schedule *s)
{
    PGresult *res = admin_query(s->conn, "counting the accounts", sql_count_accounts, 0, NULL,
                                s->ctl->errstr, sizeof s->ctl->errstr);
    if (!res)
        return ctl_failure(s->ctl, "%s", s->ctl->errstr);
    s->expected = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return CTL_OK;
}

static void print_summary(const struct schedule *s, bool dry_run, bool json)
{
    if (json) {
        struct json j;
        json_init(&j, stdout);
        json_object_begin(&j, NULL);
        json_str(&j, "period", s->period);
        json_str(&j, "stream", s->stream);
        json_bool(&j, "dry_run", dry_run);
        json_int(&j, "accounts", s->accounts);
        json_int(&j, "jobs", s->jobs);
        json_int(&j, "enqueued", s->enqueued);
        json_int(&j, "skipped", s->skipped);
        json_object_end(&j);
        json_finish(&j);
        return;
    }
    printf("schedule %s: %" PRId64 " accounts with a plan, ", s->period, s->accounts);
    if (dry_run)
        printf("%" PRId64 " jobs would be enqueued (dry run)", s->jobs);
    else
        printf("%" PRId64 " jobs enqueued on %s", s->enqueued, s->stream);
    printf(", %" PRId64 " skipped\n", s->skipped);
}

/* Connects, pages, enqueues; the summary on success. */
static int schedule_run(struct schedule *s, bool dry_run, bool json)
{
    int rc = ctl_pg_open(s->ctl, true, &s->conn);
    if (rc == CTL_OK && !dry_run)
        rc = ctl_redis_open(s->ctl, &s->redis);
    if (rc != CTL_OK)
        return rc;
    enqueue_stream_key(s->ctl, job_type_ops(JOB_ALLOCATE)->stream, s->stream);
    if (s->progress)
        rc = count_accounts(s);
    if (rc == CTL_OK)
        rc = run_pages(s);
    show_progress(s, true);
    if (rc == CTL_OK)
        print_summary(s, dry_run, json);
    else if (!dry_run)
        fprintf(stderr,
                "creditsctl schedule: stopped after %" PRId64 " jobs enqueued; running it "
                "again for %s is harmless\n",
                s->enqueued, s->period);
    return rc;
}

/* schedule --period YYYY-MM [--dry-run] [--json] */
static int cmd_schedule(struct ctl *ctl, int argc, char **argv)
{
    const char *period = NULL;
    bool dry_run = false, json = false;
    const struct opt opts[] = {{"period", &period, NULL, true},
                               {"dry-run", NULL, &dry_run, false},
                               CTL_OPT_JSON(json),
                               CTL_OPT_END};
    const char *const names[] = {NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    if (!job_period_is_valid(period, strlen(period)))
        return ctl_usage_error(ctl, "--period must be YYYY-MM with month 01..12 (got \"%s\")",
                               period);
    struct schedule s;
    memset(&s, 0, sizeof s);
    s.ctl = ctl;
    s.period = period;
    s.progress = isatty(STDERR_FILENO) == 1;
    rc = schedule_run(&s, dry_run, json);
    free(s.last_user);
    redisFree(s.redis);
    PQfinish(s.conn);
    return rc;
}

/* clang-format off */
const struct command schedule_command = {
    "schedule", "enqueue the month's allocation of every account with a plan",
    "schedule --period YYYY-MM [--dry-run] [--json]",
    "Enqueues an allocate job on {prefix}:jobs:allocate for every account in\n"
    "credits.accounts with a plan (its current plan), with the job ID\n"
    "alloc:{user}:{period}. Running it again for the same period is harmless: the\n"
    "same IDs are replays, and an account already allocated for the period under\n"
    "another ID is rejected as already_allocated. Accounts whose job would break\n"
    "the contract's rules (a user ID too long for the job ID) are skipped and\n"
    "counted. Shows a progress bar when stderr is a terminal; prints a summary.\n"
    "Does not wait for the worker: see 'creditsctl result alloc:{user}:{period}'.\n\n"
    "  --period YYYY-MM   the billing month\n"
    "  --dry-run          read the accounts and build the jobs, enqueue nothing\n"
    "  --json             print the summary as JSON\n",
    cmd_schedule};
/* clang-format on */
