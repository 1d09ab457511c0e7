/*
 * test_worker.c -- end-to-end tests of credits-worker against a real Redis and
 * a real PostgreSQL (started by run_c_test.sh through lib.sh).
 *
 * Every test starts its own worker (fork/execve of $BUILD_DIR/credits-worker)
 * with its own key prefix, user IDs and job IDs, enqueues jobs the way a
 * producer does (XADD P:jobs:TYPE * job <msgpack>), waits with bounded
 * polling until the worker has delivered and acknowledged every entry, and
 * then checks the results in Redis and the rows in Postgres against the
 * contract (/work/shared/design/CONTRACT.md, kept as schemas/ in the project).
 *
 * The catalog is seeded once: plan basic 100/200, plan pro 1000/1500, pack
 * p100 (100 credits, 90 days), pack p1k (1000 credits, 30 days).
 */
#include "harness.h"
#include "queue/sha256.h"

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

/* ---------------------------------------------------------------------------
 * Fixtures (the helpers are in harness.c, shared with test_faults.c)
 * ------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    return harness_group_setup("test_worker");
}

static int group_teardown(void **state)
{
    (void)state;
    return harness_group_teardown();
}

static int test_setup(void **state)
{
    (void)state;
    harness_test_setup();
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    harness_test_teardown();
    return 0;
}

/* ---------------------------------------------------------------------------
 * 1. purchase
 * ------------------------------------------------------------------------- */

static void
test_purchase_grants_a_pack_lot_expiring_valid_days_later_once_per_payment_ref(void **state)
{
    (void)state;
    const char *P = "t_purchase";
    pid_t w = worker_start(P, NULL);
    struct result r, r2;

    step("purchase p100 (100 credits, 90 days)");
    submit(P, purchase_job("t1-pur-1", "t1-u", "p100", "t1-pay-1"), &r);
    EXPECT(&r, "t1-pur-1", JOB_OK, false);
    expect_identity(&r, JOB_PURCHASE, "t1-u");
    CHECK(r.amounts[RESULT_GRANTED] == 100, "granted %" PRId64, r.amounts[RESULT_GRANTED]);
    EXPECT_BALANCE(&r, 100, 100, 0);
    CHECK(r.amounts[RESULT_EXPIRES_AT] == r.done_at_ms + 90 * DAY_MS,
          "expires_at %" PRId64 " is not done_at %" PRId64 " + 90 days (diff %" PRId64 " ms)",
          r.amounts[RESULT_EXPIRES_AT], r.done_at_ms, r.amounts[RESULT_EXPIRES_AT] - r.done_at_ms);
    CHECK(pg_int("SELECT count(*) FROM credits.lots WHERE job_id = 't1-pur-1' AND kind = 'pack' "
                 "AND user_id = 't1-u' AND granted = 100 AND remaining = 100 "
                 "AND pack_id = 'p100' AND payment_ref = 't1-pay-1' AND plan_id IS NULL "
                 "AND period IS NULL",
                 NULL) == 1,
          "no pack lot of 100 for t1-pur-1");
    int64_t lot_expires = pg_int("SELECT floor(extract(epoch FROM expires_at) * 1000)::bigint "
                                 "FROM credits.lots WHERE job_id = 't1-pur-1'",
                                 NULL);
    CHECK(lot_expires == r.amounts[RESULT_EXPIRES_AT],
          "lot expires_at %" PRId64 " != result %" PRId64, lot_expires,
          r.amounts[RESULT_EXPIRES_AT]);
    CHECK(pg_int("SELECT count(*) FROM credits.lots WHERE job_id = 't1-pur-1' "
                 "AND expires_at = granted_at + interval '90 days'",
                 NULL) == 1,
          "the lot does not expire 90 days after it was granted: %s",
          pg_text("SELECT granted_at || ' -> ' || expires_at FROM credits.lots "
                  "WHERE job_id = 't1-pur-1'",
                  NULL));
    CHECK(strcmp(pg_text("SELECT string_agg(e.kind || ':' || e.delta || ':' || e.user_id || ':' "
                         "|| (e.lot_id = l.lot_id), ',') FROM credits.entries e, credits.lots l "
                         "WHERE e.job_id = 't1-pur-1' AND l.job_id = 't1-pur-1'",
                         NULL),
                 "purchase:100:t1-u:true") == 0,
          "entries of t1-pur-1: expected one purchase entry of 100 on its lot");
    expect_job_row("t1-pur-1", "purchase", "t1-u", JOB_OK);
    /* credits.jobs.result is the msgpack result. */
    {
        PGresult *res = pg_query("SELECT result FROM credits.jobs WHERE job_id = 't1-pur-1'", NULL);
        size_t len = 0;
        unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &len);
        PQclear(res);
        CHECK(raw != NULL, "cannot unescape credits.jobs.result");
        struct result stored;
        int rc = codec_decode_result(raw, len, &stored);
        PQfreemem(raw);
        CHECK(rc == 0, "credits.jobs.result of t1-pur-1 is not a msgpack result");
        CHECK(stored.error == JOB_OK && stored.amounts[RESULT_GRANTED] == 100 &&
                  stored.done_at_ms == r.done_at_ms &&
                  stored.amounts[RESULT_EXPIRES_AT] == r.amounts[RESULT_EXPIRES_AT],
              "credits.jobs.result of t1-pur-1 differs from the published result");
    }

    step("purchase p1k (1000 credits, 30 days)");
    submit(P, purchase_job("t1-pur-2", "t1-u", "p1k", "t1-pay-2"), &r2);
    EXPECT(&r2, "t1-pur-2", JOB_OK, false);
    CHECK(r2.amounts[RESULT_GRANTED] == 1000, "granted %" PRId64, r2.amounts[RESULT_GRANTED]);
    EXPECT_BALANCE(&r2, 1100, 1100, 0);
    CHECK(r2.amounts[RESULT_EXPIRES_AT] == r2.done_at_ms + 30 * DAY_MS,
          "p1k expires_at is not done_at + 30 days (diff %" PRId64 " ms)",
          r2.amounts[RESULT_EXPIRES_AT] - r2.done_at_ms);

    step("a pack without valid_days in the catalog: the default, 90 days");
    submit(P, purchase_job("t1-pur-5", "t1-w", "pdefault", "t1-pay-5"), &r2);
    EXPECT(&r2, "t1-pur-5", JOB_OK, false);
    CHECK(r2.amounts[RESULT_GRANTED] == 10, "granted %" PRId64, r2.amounts[RESULT_GRANTED]);
    CHECK(r2.amounts[RESULT_EXPIRES_AT] == r2.done_at_ms + 90 * DAY_MS,
          "pdefault expires_at is not done_at + 90 days (diff %" PRId64 " ms)",
          r2.amounts[RESULT_EXPIRES_AT] - r2.done_at_ms);
    struct digest fp = user_fp("t1-u");

    step("a second job with the same payment_ref");
    struct result dup;
    submit(P, purchase_job("t1-pur-3", "t1-u", "p100", "t1-pay-1"), &dup);
    EXPECT(&dup, "t1-pur-3", JOB_ERR_DUPLICATE_PAYMENT, false);
    expect_identity(&dup, JOB_PURCHASE, "t1-u");
    expect_job_row("t1-pur-3", "purchase", "t1-u", JOB_ERR_DUPLICATE_PAYMENT);
    CHECK(pg_int("SELECT count(*) FROM credits.lots WHERE job_id = 't1-pur-3'", NULL) == 0,
          "duplicate payment made a lot");
    CHECK(pg_int("SELECT count(*) FROM credits.entries WHERE job_id = 't1-pur-3'", NULL) == 0,
          "duplicate payment made entries");
    CHECK(same(fp, user_fp("t1-u")), "duplicate payment changed the user's credits");
    EXPECT_SQL_BALANCE("t1-u", 1100, 1100, 0);

    step("the same payment_ref for another user");
    submit(P, purchase_job("t1-pur-4", "t1-v", "p1k", "t1-pay-1"), &r);
    EXPECT(&r, "t1-pur-4", JOB_ERR_DUPLICATE_PAYMENT, false);
    EXPECT_SQL_BALANCE("t1-v", 0, 0, 0);

    step("re-sending the duplicate replays duplicate_payment");
    struct result again;
    submit(P, purchase_job("t1-pur-3", "t1-u", "p100", "t1-pay-1"), &again);
    EXPECT(&again, "t1-pur-3", JOB_ERR_DUPLICATE_PAYMENT, true);
    expect_same_decision(&again, &dup);
    CHECK(same(fp, user_fp("t1-u")), "the replay changed the user's credits");
    CHECK(pg_int("SELECT count(*) FROM credits.lots WHERE payment_ref = 't1-pay-1'", NULL) == 1,
          "payment t1-pay-1 granted more than once");
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 2. allocate
 * ------------------------------------------------------------------------- */

static const char *forfeits_of(const char *job_id)
{
    return pg_text("SELECT coalesce(string_agg(l.job_id || ':' || e.delta, ',' "
                   "ORDER BY l.lot_id), '') FROM credits.entries e JOIN credits.lots l "
                   "USING (lot_id) WHERE e.job_id = $1 AND e.kind = 'forfeit'",
                   job_id, NULL);
}

static void
test_allocate_grants_monthly_credits_and_forfeits_above_the_rollover_cap_oldest_first(void **state)
{
    (void)state;
    const char *P = "t_allocate";
    const char *U = "t2-u";
    pid_t w = worker_start(P, NULL);
    struct result r;

    step("first allocation: basic 2026-01");
    submit(P, allocate_job("alloc:t2-u:2026-01", U, "basic", "2026-01"), &r);
    EXPECT(&r, "alloc:t2-u:2026-01", JOB_OK, false);
    expect_identity(&r, JOB_ALLOCATE, U);
    CHECK(r.amounts[RESULT_GRANTED] == 100 && r.amounts[RESULT_FORFEITED] == 0,
          "granted %" PRId64 " forfeited %" PRId64, r.amounts[RESULT_GRANTED],
          r.amounts[RESULT_FORFEITED]);
    EXPECT_BALANCE(&r, 100, 0, 100);
    CHECK(pg_int("SELECT count(*) FROM credits.lots WHERE job_id = 'alloc:t2-u:2026-01' "
                 "AND kind = 'monthly' AND user_id = 't2-u' AND granted = 100 AND remaining = 100 "
                 "AND expires_at IS NULL AND plan_id = 'basic' AND period = '2026-01' "
                 "AND pack_id IS NULL AND payment_ref IS NULL",
                 NULL) == 1,
          "no monthly lot for alloc:t2-u:2026-01");
    CHECK(pg_int("SELECT count(*) FROM credits.entries WHERE job_id = 'alloc:t2-u:2026-01' "
                 "AND kind = 'allocate' AND delta = 100",
                 NULL) == 1,
          "no allocate entry");
    CHECK(strcmp(pg_text("SELECT plan_id FROM credits.accounts WHERE user_id = 't2-u'", NULL),
                 "basic") == 0,
          "account plan is not basic");
    expect_job_row("alloc:t2-u:2026-01", "allocate", U, JOB_OK);

    step("2026-02: M + C = cap, nothing forfeited");
    submit(P, allocate_job("alloc:t2-u:2026-02", U, "basic", "2026-02"), &r);
    EXPECT(&r, "alloc:t2-u:2026-02", JOB_OK, false);
    CHECK(r.amounts[RESULT_GRANTED] == 100 && r.amounts[RESULT_FORFEITED] == 0,
          "forfeited %" PRId64, r.amounts[RESULT_FORFEITED]);
    EXPECT_BALANCE(&r, 200, 0, 200);

    step("consume 30 (from the oldest monthly lot)");
    submit(P, consume_job("t2-c1", U, 30, NULL, NULL), &r);
    EXPECT(&r, "t2-c1", JOB_OK, false);
    EXPECT_BALANCE(&r, 170, 0, 170);

    step("2026-03: M 170 + C 100 > cap 200: forfeit 70 from the oldest lot");
    submit(P, allocate_job("alloc:t2-u:2026-03", U, "basic", "2026-03"), &r);
    EXPECT(&r, "alloc:t2-u:2026-03", JOB_OK, false);
    CHECK(r.amounts[RESULT_GRANTED] == 100 && r.amounts[RESULT_FORFEITED] == 70,
          "granted %" PRId64 " forfeited %" PRId64, r.amounts[RESULT_GRANTED],
          r.amounts[RESULT_FORFEITED]);
    EXPECT_BALANCE(&r, 200, 0, 200);
    CHECK(strcmp(forfeits_of("alloc:t2-u:2026-03"), "alloc:t2-u:2026-01:-70") == 0,
          "forfeit entries: %s", forfeits_of("alloc:t2-u:2026-03"));

    step("2026-04 on pro (1000/1500): 200 + 1000 <= 1500");
    submit(P, allocate_job("alloc:t2-u:2026-04", U, "pro", "2026-04"), &r);
    EXPECT(&r, "alloc:t2-u:2026-04", JOB_OK, false);
    CHECK(r.amounts[RESULT_GRANTED] == 1000 && r.amounts[RESULT_FORFEITED] == 0,
          "granted %" PRId64 " forfeited %" PRId64, r.amounts[RESULT_GRANTED],
          r.amounts[RESULT_FORFEITED]);
    EXPECT_BALANCE(&r, 1200, 0, 1200);
    CHECK(strcmp(pg_text("SELECT plan_id FROM credits.accounts WHERE user_id = 't2-u'", NULL),
                 "pro") == 0,
          "account plan is not pro after a pro allocation");

    step("2026-05 on pro: 1200 + 1000 - 1500 = 700 forfeited across three lots");
    submit(P, allocate_job("alloc:t2-u:2026-05", U, "pro", "2026-05"), &r);
    EXPECT(&r, "alloc:t2-u:2026-05", JOB_OK, false);
    CHECK(r.amounts[RESULT_GRANTED] == 1000 && r.amounts[RESULT_FORFEITED] == 700,
          "granted %" PRId64 " forfeited %" PRId64, r.amounts[RESULT_GRANTED],
          r.amounts[RESULT_FORFEITED]);
    EXPECT_BALANCE(&r, 1500, 0, 1500);
    CHECK(strcmp(forfeits_of("alloc:t2-u:2026-05"),
                 "alloc:t2-u:2026-02:-100,alloc:t2-u:2026-03:-100,alloc:t2-u:2026-04:-500") == 0,
          "forfeit entries (oldest first): %s", forfeits_of("alloc:t2-u:2026-05"));
    EXPECT_SQL_BALANCE(U, 1500, 0, 1500);
    struct digest fp = user_fp(U);

    step("the same period under another ID");
    struct result dup, stale, unknown;
    submit(P, allocate_job("t2-again-05", U, "pro", "2026-05"), &dup);
    EXPECT(&dup, "t2-again-05", JOB_ERR_ALREADY_ALLOCATED, false);
    expect_job_row("t2-again-05", "allocate", U, JOB_ERR_ALREADY_ALLOCATED);
    step("an earlier period (no lot for it)");
    submit(P, allocate_job("t2-stale", U, "pro", "2025-12"), &stale);
    EXPECT(&stale, "t2-stale", JOB_ERR_STALE_PERIOD, false);
    expect_job_row("t2-stale", "allocate", U, JOB_ERR_STALE_PERIOD);
    step("an unknown plan");
    submit(P, allocate_job("t2-unknown", U, "no-such-plan", "2026-06"), &unknown);
    EXPECT(&unknown, "t2-unknown", JOB_ERR_UNKNOWN_PLAN, false);
    expect_job_row("t2-unknown", "allocate", U, JOB_ERR_UNKNOWN_PLAN);
    CHECK(same(fp, user_fp(U)), "a rejected allocation changed the user's credits");
    CHECK(strcmp(pg_text("SELECT plan_id FROM credits.accounts WHERE user_id = 't2-u'", NULL),
                 "pro") == 0,
          "a rejected allocation changed the account's plan");

    step("stored rejections are replayed on redelivery");
    struct result rr;
    submit(P, allocate_job("t2-again-05", U, "pro", "2026-05"), &rr);
    EXPECT(&rr, "t2-again-05", JOB_ERR_ALREADY_ALLOCATED, true);
    CHECK(rr.done_at_ms == dup.done_at_ms, "replayed done_at differs");
    submit(P, allocate_job("t2-stale", U, "pro", "2025-12"), &rr);
    EXPECT(&rr, "t2-stale", JOB_ERR_STALE_PERIOD, true);
    submit(P, allocate_job("t2-unknown", U, "no-such-plan", "2026-06"), &rr);
    EXPECT(&rr, "t2-unknown", JOB_ERR_UNKNOWN_PLAN, true);
    CHECK(same(fp, user_fp(U)), "replays changed the user's credits");

    step("replaying an unknown plan stays unknown_plan after the plan appears");
    pg_exec("INSERT INTO credits.plans (plan_id, monthly_credits, rollover_cap) "
            "VALUES ('no-such-plan', 5, 10) ON CONFLICT DO NOTHING");
    submit(P, allocate_job("t2-unknown", U, "no-such-plan", "2026-06"), &rr);
    EXPECT(&rr, "t2-unknown", JOB_ERR_UNKNOWN_PLAN, true);
    pg_exec("DELETE FROM credits.plans WHERE plan_id = 'no-such-plan'");
    CHECK(same(fp, user_fp(U)), "the replay changed the user's credits");

    step("a plan without rollover_cap: the default cap, 2 * monthly_credits");
    submit(P, allocate_job("t2-n1", "t2-w", "nocap", "2026-01"), &r);
    EXPECT(&r, "t2-n1", JOB_OK, false);
    submit(P, allocate_job("t2-n2", "t2-w", "nocap", "2026-02"), &r);
    EXPECT(&r, "t2-n2", JOB_OK, false);
    CHECK(r.amounts[RESULT_FORFEITED] == 0, "forfeited %" PRId64 " at M + C = 2 * C",
          r.amounts[RESULT_FORFEITED]);
    submit(P, allocate_job("t2-n3", "t2-w", "nocap", "2026-03"), &r);
    EXPECT(&r, "t2-n3", JOB_OK, false);
    CHECK(r.amounts[RESULT_GRANTED] == 50 && r.amounts[RESULT_FORFEITED] == 50,
          "granted %" PRId64 " forfeited %" PRId64, r.amounts[RESULT_GRANTED],
          r.amounts[RESULT_FORFEITED]);
    EXPECT_BALANCE(&r, 100, 0, 100);
    CHECK(strcmp(forfeits_of("t2-n3"), "t2-n1:-50") == 0, "forfeits: %s", forfeits_of("t2-n3"));
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 3. consume
 * ------------------------------------------------------------------------- */

static const char *consumes_of(const char *job_id)
{
    return pg_text("SELECT coalesce(string_agg(l.job_id || ':' || e.delta || ':' || "
                   "coalesce(e.tool, '~') || ':' || coalesce(e.ref, '~') || ':' || e.user_id, "
                   "',' ORDER BY l.lot_id), '') FROM credits.entries e JOIN credits.lots l "
                   "USING (lot_id) WHERE e.job_id = $1 AND e.kind = 'consume'",
                   job_id, NULL);
}

static void
test_consume_spends_packs_by_soonest_expiry_then_monthly_and_rejects_when_short(void **state)
{
    (void)state;
    const char *P = "t_consume";
    const char *U = "t3-u";
    pid_t w = worker_start(P, NULL);
    struct result r;

    step("credits: p100 (expires in 90 days), then p1k (30 days), then basic monthly");
    submit(P, purchase_job("t3-pB", U, "p100", "t3-pay-B"), &r);
    EXPECT(&r, "t3-pB", JOB_OK, false);
    submit(P, purchase_job("t3-pA", U, "p1k", "t3-pay-A"), &r);
    EXPECT(&r, "t3-pA", JOB_OK, false);
    submit(P, allocate_job("t3-m", U, "basic", "2026-01"), &r);
    EXPECT(&r, "t3-m", JOB_OK, false);
    EXPECT_BALANCE(&r, 1200, 1100, 100);

    step("consume 1050: the 30-day pack first, then the 90-day pack");
    submit(P, consume_job("t3-c1", U, 1050, "video-gen", "vid-1"), &r);
    EXPECT(&r, "t3-c1", JOB_OK, false);
    expect_identity(&r, JOB_CONSUME, U);
    CHECK(r.amounts[RESULT_CHARGED] == 1050, "charged %" PRId64, r.amounts[RESULT_CHARGED]);
    EXPECT_BALANCE(&r, 150, 50, 100);
    CHECK(strcmp(consumes_of("t3-c1"),
                 "t3-pB:-50:video-gen:vid-1:t3-u,t3-pA:-1000:video-gen:vid-1:t3-u") == 0,
          "consume entries of t3-c1: %s", consumes_of("t3-c1"));
    expect_job_row("t3-c1", "consume", U, JOB_OK);

    step("consume 100: the rest of the pack, then monthly");
    submit(P, consume_job("t3-c2", U, 100, NULL, NULL), &r);
    EXPECT(&r, "t3-c2", JOB_OK, false);
    CHECK(r.amounts[RESULT_CHARGED] == 100, "charged %" PRId64, r.amounts[RESULT_CHARGED]);
    EXPECT_BALANCE(&r, 50, 0, 50);
    CHECK(strcmp(consumes_of("t3-c2"), "t3-pB:-50:~:~:t3-u,t3-m:-50:~:~:t3-u") == 0,
          "consume entries of t3-c2: %s", consumes_of("t3-c2"));
    EXPECT_SQL_BALANCE(U, 50, 0, 50);

    step("consume 51 with 50 left: insufficient_credits, nothing spent");
    struct digest fp = user_fp(U);
    submit(P, consume_job("t3-c3", U, 51, "video-gen", "vid-3"), &r);
    EXPECT(&r, "t3-c3", JOB_ERR_INSUFFICIENT_CREDITS, false);
    expect_identity(&r, JOB_CONSUME, U);
    EXPECT_BALANCE(&r, 50, 0, 50);
    expect_job_row("t3-c3", "consume", U, JOB_ERR_INSUFFICIENT_CREDITS);
    CHECK(pg_int("SELECT count(*) FROM credits.entries WHERE job_id = 't3-c3'", NULL) == 0,
          "insufficient_credits wrote entries");
    CHECK(same(fp, user_fp(U)), "insufficient_credits changed the user's credits");

    step("consume exactly the balance");
    submit(P, consume_job("t3-c4", U, 50, NULL, "vid-4"), &r);
    EXPECT(&r, "t3-c4", JOB_OK, false);
    EXPECT_BALANCE(&r, 0, 0, 0);
    CHECK(strcmp(consumes_of("t3-c4"), "t3-m:-50:~:vid-4:t3-u") == 0, "entries of t3-c4: %s",
          consumes_of("t3-c4"));

    step("the monthly lot spent to 0 still holds its period: 2026-01 again is already_allocated, "
         "2025-12 stale_period");
    submit(P, allocate_job("t3-m2", U, "basic", "2026-01"), &r);
    EXPECT(&r, "t3-m2", JOB_ERR_ALREADY_ALLOCATED, false);
    submit(P, allocate_job("t3-m3", U, "basic", "2025-12"), &r);
    EXPECT(&r, "t3-m3", JOB_ERR_STALE_PERIOD, false);
    EXPECT_BALANCE(&r, 0, 0, 0);

    step("a user the ledger has never seen");
    submit(P, consume_job("t3-c5", "t3-nobody", 1, NULL, NULL), &r);
    EXPECT(&r, "t3-c5", JOB_ERR_INSUFFICIENT_CREDITS, false);
    EXPECT_BALANCE(&r, 0, 0, 0);
    CHECK(pg_int("SELECT count(*) FROM credits.lots WHERE user_id = 't3-nobody'", NULL) == 0,
          "lots for t3-nobody");

    step("unknown pack");
    struct result up;
    submit(P, purchase_job("t3-p-unknown", U, "no-such-pack", "t3-pay-U"), &up);
    EXPECT(&up, "t3-p-unknown", JOB_ERR_UNKNOWN_PACK, false);
    expect_identity(&up, JOB_PURCHASE, U);
    expect_job_row("t3-p-unknown", "purchase", U, JOB_ERR_UNKNOWN_PACK);
    EXPECT_SQL_BALANCE(U, 0, 0, 0);
    submit(P, purchase_job("t3-p-unknown", U, "no-such-pack", "t3-pay-U"), &r);
    EXPECT(&r, "t3-p-unknown", JOB_ERR_UNKNOWN_PACK, true);
    CHECK(r.done_at_ms == up.done_at_ms, "replayed done_at differs");
    step("the payment_ref of an unknown_pack rejection can still grant");
    submit(P, purchase_job("t3-p-fixed", U, "p100", "t3-pay-U"), &r);
    EXPECT(&r, "t3-p-fixed", JOB_OK, false);
    EXPECT_BALANCE(&r, 100, 100, 0);
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 4. expiry
 * ------------------------------------------------------------------------- */

static void
test_expired_pack_credits_are_neither_spent_nor_counted_and_get_an_expire_entry(void **state)
{
    (void)state;
    const char *P = "t_expire";
    const char *U = "t4-u";
    pid_t w = worker_start(P, NULL);
    struct result r;

    step("p100 and basic, then spend 10 of the pack");
    submit(P, purchase_job("t4-p", U, "p100", "t4-pay"), &r);
    EXPECT(&r, "t4-p", JOB_OK, false);
    submit(P, allocate_job("t4-m", U, "basic", "2026-01"), &r);
    EXPECT(&r, "t4-m", JOB_OK, false);
    submit(P, consume_job("t4-c0", U, 10, NULL, NULL), &r);
    EXPECT(&r, "t4-c0", JOB_OK, false);
    EXPECT_BALANCE(&r, 190, 90, 100);

    step("the pack lot expires (SQL)");
    pg_exec("UPDATE credits.lots SET expires_at = now() - interval '1 minute' "
            "WHERE job_id = 't4-p'");
    EXPECT_SQL_BALANCE(U, 100, 0, 100);

    step("consume 50: from monthly only");
    submit(P, consume_job("t4-c1", U, 50, NULL, NULL), &r);
    EXPECT(&r, "t4-c1", JOB_OK, false);
    CHECK(r.amounts[RESULT_CHARGED] == 50, "charged %" PRId64, r.amounts[RESULT_CHARGED]);
    EXPECT_BALANCE(&r, 50, 0, 50);
    CHECK(strcmp(consumes_of("t4-c1"), "t4-m:-50:~:~:t4-u") == 0,
          "consume entries of t4-c1: %s (expired credits must not be spent)", consumes_of("t4-c1"));
    CHECK(pg_int("SELECT remaining FROM credits.lots WHERE job_id = 't4-p'", NULL) == 0,
          "the expired lot still has %" PRId64 " credits",
          pg_int("SELECT remaining FROM credits.lots WHERE job_id = 't4-p'", NULL));
    CHECK(strcmp(pg_text("SELECT coalesce(string_agg(e.kind || ':' || e.delta, ','), '') "
                         "FROM credits.entries e JOIN credits.lots l USING (lot_id) "
                         "WHERE l.job_id = 't4-p' AND e.kind = 'expire'",
                         NULL),
                 "expire:-90") == 0,
          "expire entries of the expired lot: %s",
          pg_text("SELECT coalesce(string_agg(e.kind || ':' || e.delta, ','), '') "
                  "FROM credits.entries e JOIN credits.lots l USING (lot_id) "
                  "WHERE l.job_id = 't4-p' AND e.kind = 'expire'",
                  NULL));
    check_invariants();

    step("consume 60 with 50 usable (90 expired): insufficient");
    submit(P, consume_job("t4-c2", U, 60, NULL, NULL), &r);
    EXPECT(&r, "t4-c2", JOB_ERR_INSUFFICIENT_CREDITS, false);
    EXPECT_BALANCE(&r, 50, 0, 50);

    step("a second expired lot with a balance-only job (purchase) on top");
    submit(P, purchase_job("t4-p2", U, "p100", "t4-pay-2"), &r);
    EXPECT(&r, "t4-p2", JOB_OK, false);
    EXPECT_BALANCE(&r, 150, 100, 50);
    pg_exec("UPDATE credits.lots SET expires_at = now() - interval '1 second' "
            "WHERE job_id = 't4-p2'");
    submit(P, consume_job("t4-c3", U, 50, NULL, NULL), &r);
    EXPECT(&r, "t4-c3", JOB_OK, false);
    EXPECT_BALANCE(&r, 0, 0, 0);
    CHECK(pg_int("SELECT coalesce(sum(e.delta), 0) FROM credits.entries e JOIN credits.lots l "
                 "USING (lot_id) WHERE l.job_id = 't4-p2' AND e.kind = 'expire'",
                 NULL) == -100,
          "no expire entry of -100 for the second expired lot");
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 5. replay and reply
 * ------------------------------------------------------------------------- */

static void test_same_job_again_replays_the_stored_result_and_changes_nothing(void **state)
{
    (void)state;
    const char *P = "t_replay";
    const char *U = "t5-u";
    pid_t w = worker_start(P, NULL);
    struct result first, r;

    step("purchase, then the very same job again");
    submit(P, purchase_job("t5-p", U, "p100", "t5-pay"), &first);
    EXPECT(&first, "t5-p", JOB_OK, false);
    struct digest ledger = ledger_fp();
    submit(P, purchase_job("t5-p", U, "p100", "t5-pay"), &r);
    EXPECT(&r, "t5-p", JOB_OK, true);
    expect_same_decision(&r, &first);
    CHECK(same(ledger, ledger_fp()), "the replay changed the ledger");
    CHECK(xlen(key(P, "results")) == 2, "P:results has %lld entries, expected 2",
          xlen(key(P, "results")));

    step("the result key is written again by a replay");
    redis_ok(redis_cmd("DEL", key(P, "result:t5-p"), NULL));
    submit(P, purchase_job("t5-p", U, "p100", "t5-pay"), &r);
    EXPECT(&r, "t5-p", JOB_OK, true);
    expect_same_decision(&r, &first);

    step("replay with reply:true and an unknown key: pushed to P:reply:{id}");
    {
        struct mp m;
        mp_head(&m, 8, "t5-p", "purchase", U);
        mp_kstr(&m, "pack", "p100");
        mp_kstr(&m, "payment_ref", "t5-pay");
        mp_str(&m, "reply");
        msgpack_pack_true(&m.pk);
        mp_kint(&m, "x-trace", 42);
        xadd_raw(P, "purchase", "job", m.sb.data, m.sb.size, NULL);
        msgpack_sbuffer_destroy(&m.sb);
    }
    wait_drained(P);
    char reply_key[128];
    snprintf(reply_key, sizeof reply_key, "%s", key(P, "reply:t5-p"));
    long long ttl = redis_int(redis_cmd("TTL", reply_key, NULL));
    CHECK(ttl > 0 && ttl <= 300, "TTL of %s is %lld, expected 1..300", reply_key, ttl);
    CHECK(redis_int(redis_cmd("LLEN", reply_key, NULL)) == 1, "%s holds %lld results", reply_key,
          redis_int(redis_cmd("LLEN", reply_key, NULL)));
    redisReply *pop = redis_cmd("BLPOP", reply_key, "5", NULL);
    CHECK(pop->type == REDIS_REPLY_ARRAY && pop->elements == 2, "BLPOP %s got nothing", reply_key);
    decode_result("reply", pop->element[1]->str, pop->element[1]->len, &r);
    freeReplyObject(pop);
    EXPECT(&r, "t5-p", JOB_OK, true);
    expect_same_decision(&r, &first);
    CHECK(same(ledger, ledger_fp()), "the replays changed the ledger");

    step("a fresh consume with reply:true: BLPOP gets the first decision");
    struct job c = consume_job("t5-c", U, 10, "tool-x", "ref-x");
    c.reply = true;
    enqueue(P, c);
    pop = redis_cmd("BLPOP", key(P, "reply:t5-c"), "10", NULL);
    CHECK(pop->type == REDIS_REPLY_ARRAY && pop->elements == 2, "BLPOP reply:t5-c timed out");
    decode_result("reply", pop->element[1]->str, pop->element[1]->len, &first);
    freeReplyObject(pop);
    EXPECT(&first, "t5-c", JOB_OK, false);
    CHECK(job_rows("t5-c") == 1 &&
              pg_int("SELECT count(*) FROM credits.entries WHERE job_id = 't5-c'", NULL) == 1,
          "the result was published before the ledger change was committed");
    CHECK(first.amounts[RESULT_CHARGED] == 10, "charged %" PRId64, first.amounts[RESULT_CHARGED]);
    EXPECT_BALANCE(&first, 90, 90, 0);
    wait_drained(P);
    ledger = ledger_fp();

    step("the consume again, without reply: replayed, nothing spent twice");
    submit(P, consume_job("t5-c", U, 10, "tool-x", "ref-x"), &r);
    EXPECT(&r, "t5-c", JOB_OK, true);
    expect_same_decision(&r, &first);
    CHECK(!key_exists(key(P, "reply:t5-c")), "a replay without reply:true pushed a reply");
    CHECK(same(ledger, ledger_fp()), "the replay changed the ledger");
    CHECK(pg_int("SELECT count(*) FROM credits.entries WHERE job_id = 't5-c'", NULL) == 1,
          "t5-c has more than one entry");
    EXPECT_SQL_BALANCE(U, 90, 90, 0);

    step("the same consume twice in one read");
    enqueue(P, consume_job("t5-c2", U, 5, NULL, NULL));
    enqueue(P, consume_job("t5-c2", U, 5, NULL, NULL));
    wait_drained(P);
    size_t n;
    struct published *pub = read_results(P, &n);
    CHECK(n >= 2, "results");
    EXPECT(&pub[n - 2].r, "t5-c2", JOB_OK, false);
    EXPECT(&pub[n - 1].r, "t5-c2", JOB_OK, true);
    expect_same_decision(&pub[n - 1].r, &pub[n - 2].r);
    free(pub);
    EXPECT_SQL_BALANCE(U, 85, 85, 0);
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 6. id_conflict
 * ------------------------------------------------------------------------- */

static void expect_conflict(const char *P, const char *stream, struct job j,
                            const struct result *original, struct digest ledger)
{
    struct bytes b;
    job_bytes(&j, &b);
    char entry[64];
    long long results_before = xlen(key(P, "results"));
    xadd_raw(P, stream, "job", b.data, b.len, entry);
    wait_drained(P);
    size_t n;
    struct published *pub = read_results(P, &n);
    CHECK((long long)n == results_before + 1, "expected one new result, got %lld",
          (long long)n - results_before);
    EXPECT(&pub[n - 1].r, j.id, JOB_ERR_ID_CONFLICT, false);
    expect_identity(&pub[n - 1].r, j.type, j.user);
    free(pub);
    expect_dead(P, stream, entry, "id_conflict", b.data, b.len);
    struct result now;
    result_must(P, j.id, &now);
    EXPECT(&now, original->id, original->error, false);
    expect_same_decision(&now, original);
    CHECK(same(ledger, ledger_fp()), "an id_conflict changed the ledger");
    CHECK(!key_exists(key(P, fmt("reply:%s", j.id))), "an id_conflict pushed a reply");
}

static void test_same_id_with_different_fields_is_an_id_conflict_dead_lettered(void **state)
{
    (void)state;
    const char *P = "t_conflict";
    const char *U = "t6-u";
    pid_t w = worker_start(P, NULL);
    struct result r, original;

    submit(P, purchase_job("t6-p", U, "p100", "t6-pay"), &r);
    EXPECT(&r, "t6-p", JOB_OK, false);
    submit(P, consume_job("t6-c", U, 5, "tool", "ref"), &original);
    EXPECT(&original, "t6-c", JOB_OK, false);
    struct digest ledger = ledger_fp();

    step("same ID, different amount");
    expect_conflict(P, "consume", consume_job("t6-c", U, 6, "tool", "ref"), &original, ledger);
    step("same ID, different user");
    expect_conflict(P, "consume", consume_job("t6-c", "t6-other", 5, "tool", "ref"), &original,
                    ledger);
    step("same ID, different tool");
    expect_conflict(P, "consume", consume_job("t6-c", U, 5, "other", "ref"), &original, ledger);
    step("same ID, ref left out");
    expect_conflict(P, "consume", consume_job("t6-c", U, 5, "tool", NULL), &original, ledger);
    step("same ID, different type on its own stream");
    struct job reply_conflict = purchase_job("t6-c", U, "p100", "t6-pay-new");
    reply_conflict.reply = true;
    expect_conflict(P, "purchase", reply_conflict, &original, ledger);
    CHECK(pg_int("SELECT count(*) FROM credits.lots WHERE payment_ref = 't6-pay-new'", NULL) == 0,
          "the conflicting purchase granted credits");
    step("same ID, different payment_ref on a purchase");
    struct result porig;
    result_must(P, "t6-p", &porig);
    expect_conflict(P, "purchase", purchase_job("t6-p", U, "p100", "t6-pay-2"), &porig, ledger);
    step("same ID, different pack on a purchase");
    expect_conflict(P, "purchase", purchase_job("t6-p", U, "p1k", "t6-pay"), &porig, ledger);
    step("same ID as an allocate with another period");
    submit(P, allocate_job("t6-a", U, "basic", "2026-01"), &r);
    EXPECT(&r, "t6-a", JOB_OK, false);
    ledger = ledger_fp();
    expect_conflict(P, "allocate", allocate_job("t6-a", U, "basic", "2026-02"), &r, ledger);
    expect_conflict(P, "allocate", allocate_job("t6-a", U, "pro", "2026-01"), &r, ledger);

    step("the original job again is still a replay");
    submit(P, consume_job("t6-c", U, 5, "tool", "ref"), &r);
    EXPECT(&r, "t6-c", JOB_OK, true);
    expect_same_decision(&r, &original);
    CHECK(same(ledger, ledger_fp()), "the replay changed the ledger");
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 7. wrong_stream
 * ------------------------------------------------------------------------- */

static void
test_job_on_another_types_stream_is_wrong_stream_dead_lettered_and_not_applied(void **state)
{
    (void)state;
    const char *P = "t_wrong";
    const char *U = "t7-u";
    pid_t w = worker_start(P, NULL);
    struct result r;
    struct digest ledger = ledger_fp();

    step("a valid purchase on the consume stream");
    struct bytes b;
    struct job pj = purchase_job("t7-w", U, "p100", "t7-pay");
    job_bytes(&pj, &b);
    char entry[64];
    xadd_raw(P, "consume", "job", b.data, b.len, entry);
    wait_drained(P);
    result_must(P, "t7-w", &r);
    EXPECT(&r, "t7-w", JOB_ERR_WRONG_STREAM, false);
    expect_identity(&r, JOB_PURCHASE, U);
    long long ttl = redis_int(redis_cmd("TTL", key(P, "result:t7-w"), NULL));
    CHECK(ttl > 86000 && ttl <= 86400, "TTL of the wrong_stream result is %lld", ttl);
    expect_dead(P, "consume", entry, "wrong_stream", b.data, b.len);
    {
        size_t n;
        struct dead *d = read_dead(P, &n);
        CHECK(n == 1 && d[0].field_count == 6,
              "expected one dead letter with the 6 fields stream, entry, reason, job_bytes, "
              "job_sha256, job; got %zu with %d fields",
              n, n ? d[0].field_count : 0);
        free(d);
    }
    CHECK(same(ledger, ledger_fp()), "wrong_stream changed the ledger");
    CHECK(job_rows("t7-w") == 0, "wrong_stream was stored in credits.jobs");
    EXPECT_SQL_BALANCE(U, 0, 0, 0);

    step("an allocate and a consume on the purchase stream");
    xadd_raw(P, "purchase", "job", "", 0, NULL); /* empty job: invalid_job, ignored here */
    struct job aj = allocate_job("t7-a", U, "basic", "2026-01");
    job_bytes(&aj, &b);
    xadd_raw(P, "purchase", "job", b.data, b.len, entry);
    wait_drained(P);
    result_must(P, "t7-a", &r);
    EXPECT(&r, "t7-a", JOB_ERR_WRONG_STREAM, false);
    expect_dead(P, "purchase", entry, "wrong_stream", b.data, b.len);
    struct job cj = consume_job("t7-c", U, 1, NULL, NULL);
    job_bytes(&cj, &b);
    xadd_raw(P, "allocate", "job", b.data, b.len, entry);
    wait_drained(P);
    result_must(P, "t7-c", &r);
    EXPECT(&r, "t7-c", JOB_ERR_WRONG_STREAM, false);
    expect_dead(P, "allocate", entry, "wrong_stream", b.data, b.len);
    CHECK(same(ledger, ledger_fp()), "wrong_stream changed the ledger");

    step("wrong_stream is not stored: the same job on its own stream is applied");
    submit(P, purchase_job("t7-w", U, "p100", "t7-pay"), &r);
    EXPECT(&r, "t7-w", JOB_OK, false);
    EXPECT_BALANCE(&r, 100, 100, 0);
    struct result applied = r;

    step("wrong_stream of an applied job leaves its result key alone (SET NX)");
    job_bytes(&pj, &b);
    xadd_raw(P, "allocate", "job", b.data, b.len, entry);
    wait_drained(P);
    expect_dead(P, "allocate", entry, "wrong_stream", b.data, b.len);
    result_must(P, "t7-w", &r);
    EXPECT(&r, "t7-w", JOB_OK, false);
    expect_same_decision(&r, &applied);
    size_t n;
    struct published *pub = read_results(P, &n);
    EXPECT(&pub[n - 1].r, "t7-w", JOB_ERR_WRONG_STREAM, false);
    free(pub);
    EXPECT_SQL_BALANCE(U, 100, 100, 0);
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 8. invalid input
 * ------------------------------------------------------------------------- */

enum key_rule {
    KEY_NONE,     /* the id is not readable: no result key */
    KEY_REQUIRED, /* the id is readable, best-effort (contract 9.9): P:result:{id}
                   * holds invalid_job */
};

struct bad {
    const char *what;
    const char *stream;
    const char *id; /* the id that must (or must not) get a key; NULL: none to check */
    enum key_rule rule;
    bool no_job_field;
    bool version_ok; /* unsupported_version is accepted as well as invalid_job */
    unsigned char *data;
    size_t len;
    char entry[64];
};

#define BADS_MAX 80

struct bads {
    struct bad b[BADS_MAX];
    size_t n;
};

static struct bad *bad_add(struct bads *list, const char *what, const char *stream, const char *id,
                           enum key_rule rule, const void *data, size_t len)
{
    CHECK(list->n < BADS_MAX, "too many cases");
    struct bad *b = &list->b[list->n++];
    memset(b, 0, sizeof *b);
    b->what = what;
    b->stream = stream;
    b->id = id;
    b->rule = rule;
    b->data = malloc(len + 1);
    CHECK(b->data != NULL, "out of memory");
    if (len)
        memcpy(b->data, data, len);
    b->len = len;
    return b;
}

static struct bad *bad_mp(struct bads *list, const char *what, const char *stream, const char *id,
                          enum key_rule rule, struct mp *m)
{
    struct bad *b = bad_add(list, what, stream, id, rule, m->sb.data, m->sb.size);
    msgpack_sbuffer_destroy(&m->sb);
    return b;
}

/* A consume job with one field replaced: `field` gets the value packed by
 * the caller after this returns (the map has 5 entries). */
static void consume_with(struct mp *m, const char *id, const char *field)
{
    mp_head(m, 5, id, "consume", "t8-u");
    mp_str(m, field);
}

static char *repeat_char(char c, size_t n)
{
    static char ring[8][8192];
    static unsigned next;
    char *out = ring[next++ % 8];
    memset(out, c, n);
    out[n] = '\0';
    return out;
}

static void build_bad_messages(struct bads *L)
{
    struct mp m;
    static const unsigned char not_msgpack[] = {0xc1, 0xc1, 0xc1};
    static const unsigned char array3[] = {0x93, 0x01, 0x02, 0x03};
    static const unsigned char str_hello[] = {0xa5, 'h', 'e', 'l', 'l', 'o'};
    static const unsigned char array32_huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char map32_huge[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char str32_huge[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    static const unsigned char bin32_huge[] = {0xc6, 0x7f, 0xff, 0xff, 0xff};

    bad_add(L, "not msgpack", "consume", NULL, KEY_NONE, not_msgpack, sizeof not_msgpack);
    bad_add(L, "empty job field", "consume", NULL, KEY_NONE, "", 0);
    bad_add(L, "msgpack array", "consume", NULL, KEY_NONE, array3, sizeof array3);
    bad_add(L, "msgpack string", "consume", NULL, KEY_NONE, str_hello, sizeof str_hello);
    bad_add(L, "array32 header claiming 4G elements", "consume", NULL, KEY_NONE, array32_huge,
            sizeof array32_huge);
    bad_add(L, "map32 header claiming 4G entries", "consume", NULL, KEY_NONE, map32_huge,
            sizeof map32_huge);
    bad_add(L, "str32 header claiming 4 GiB", "consume", NULL, KEY_NONE, str32_huge,
            sizeof str32_huge);
    bad_add(L, "bin32 header claiming 2 GiB", "consume", NULL, KEY_NONE, bin32_huge,
            sizeof bin32_huge);
    {
        unsigned char deep[3001];
        memset(deep, 0x91, 3000); /* [[[[...1...]]]] 3000 deep */
        deep[3000] = 0x01;
        bad_add(L, "3000 nested arrays", "consume", NULL, KEY_NONE, deep, sizeof deep);
        unsigned char deep_maps[3001];
        for (size_t i = 0; i + 2 < 3000; i += 3) {
            deep_maps[i] = 0x81; /* {"a": {"a": ...}} */
            deep_maps[i + 1] = 0xa1;
            deep_maps[i + 2] = 'a';
        }
        deep_maps[2999] = 0x01;
        bad_add(L, "1000 nested maps", "consume", NULL, KEY_NONE, deep_maps, 3000);
    }
    /* Hostile values inside an otherwise valid job. */
    mp_head(&m, 6, "t8-hostile-inner", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    mp_str(&m, "x");
    msgpack_sbuffer_write(&m.sb, (const char *)map32_huge, sizeof map32_huge);
    bad_mp(L, "map32 huge header as an unknown key's value", "consume", "t8-hostile-inner",
           KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-deep-inner", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    mp_str(&m, "x");
    {
        unsigned char deep[2001];
        memset(deep, 0x91, 2000);
        deep[2000] = 0x01;
        msgpack_sbuffer_write(&m.sb, (const char *)deep, sizeof deep);
    }
    bad_mp(L, "2000 nested arrays as an unknown key's value", "consume", "t8-deep-inner",
           KEY_REQUIRED, &m);

    /* Missing fields. */
    mp_head(&m, 4, "t8-no-amount", "consume", "t8-u");
    bad_mp(L, "consume without amount", "consume", "t8-no-amount", KEY_REQUIRED, &m);
    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_kint(&m, "v", 1);
    mp_kstr(&m, "id", "t8-no-type");
    mp_kstr(&m, "user", "t8-u");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "no type", "consume", "t8-no-type", KEY_REQUIRED, &m);
    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_kint(&m, "v", 1);
    mp_kstr(&m, "id", "t8-no-user");
    mp_kstr(&m, "type", "consume");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "no user", "consume", "t8-no-user", KEY_REQUIRED, &m);
    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_kstr(&m, "id", "t8-no-v");
    mp_kstr(&m, "type", "consume");
    mp_kstr(&m, "user", "t8-u");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "no v", "consume", "t8-no-v", KEY_REQUIRED, &m)->version_ok = true;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_kint(&m, "v", 1);
    mp_kstr(&m, "type", "consume");
    mp_kstr(&m, "user", "t8-u");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "no id", "consume", NULL, KEY_NONE, &m);
    mp_head(&m, 5, "t8-no-payref", "purchase", "t8-u");
    mp_kstr(&m, "pack", "p100");
    bad_mp(L, "purchase without payment_ref", "purchase", "t8-no-payref", KEY_REQUIRED, &m);
    mp_head(&m, 5, "t8-no-pack", "purchase", "t8-u");
    mp_kstr(&m, "payment_ref", "t8-pay");
    bad_mp(L, "purchase without pack", "purchase", "t8-no-pack", KEY_REQUIRED, &m);
    mp_head(&m, 5, "t8-no-period", "allocate", "t8-u");
    mp_kstr(&m, "plan", "basic");
    bad_mp(L, "allocate without period", "allocate", "t8-no-period", KEY_REQUIRED, &m);
    mp_head(&m, 5, "t8-no-plan", "allocate", "t8-u");
    mp_kstr(&m, "period", "2026-01");
    bad_mp(L, "allocate without plan", "allocate", "t8-no-plan", KEY_REQUIRED, &m);

    /* Amounts. */
    consume_with(&m, "t8-amount-0", "amount");
    msgpack_pack_int64(&m.pk, 0);
    bad_mp(L, "amount 0", "consume", "t8-amount-0", KEY_REQUIRED, &m);
    consume_with(&m, "t8-amount-big", "amount");
    msgpack_pack_int64(&m.pk, 1000000001);
    bad_mp(L, "amount 1000000001", "consume", "t8-amount-big", KEY_REQUIRED, &m);
    consume_with(&m, "t8-amount-neg", "amount");
    msgpack_pack_int64(&m.pk, -5);
    bad_mp(L, "amount -5", "consume", "t8-amount-neg", KEY_REQUIRED, &m);
    consume_with(&m, "t8-amount-u64", "amount");
    msgpack_pack_uint64(&m.pk, UINT64_MAX);
    bad_mp(L, "amount 2^64-1", "consume", "t8-amount-u64", KEY_REQUIRED, &m);
    consume_with(&m, "t8-amount-str", "amount");
    mp_str(&m, "5");
    bad_mp(L, "amount as a string", "consume", "t8-amount-str", KEY_REQUIRED, &m);
    consume_with(&m, "t8-amount-float", "amount");
    msgpack_pack_double(&m.pk, 5.0);
    bad_mp(L, "amount as a float", "consume", "t8-amount-float", KEY_REQUIRED, &m);
    consume_with(&m, "t8-amount-nil", "amount");
    msgpack_pack_nil(&m.pk);
    bad_mp(L, "amount nil", "consume", "t8-amount-nil", KEY_REQUIRED, &m);

    /* IDs. */
    mp_head(&m, 5, "t8 space", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "id with a space", "consume", "t8 space", KEY_NONE, &m);
    {
        char id129[130];
        snprintf(id129, sizeof id129, "t8-129-%s", repeat_char('x', 122));
        mp_head(&m, 5, id129, "consume", "t8-u");
        mp_kint(&m, "amount", 1);
        static char id129_copy[130];
        memcpy(id129_copy, id129, sizeof id129);
        bad_mp(L, "id of 129 bytes", "consume", id129_copy, KEY_NONE, &m);
    }
    mp_head(&m, 5, "", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "empty id", "consume", NULL, KEY_NONE, &m);
    mp_head(&m, 5, "t8-del\x7f", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "id with 0x7f", "consume", "t8-del\x7f", KEY_NONE, &m);
    mp_head(&m, 5, "t8-nl\n", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "id with a newline", "consume", "t8-nl\n", KEY_NONE, &m);
    mp_init(&m);
    msgpack_pack_map(&m.pk, 5);
    mp_kint(&m, "v", 1);
    mp_kint(&m, "id", 12345);
    mp_kstr(&m, "type", "consume");
    mp_kstr(&m, "user", "t8-u");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "id as an integer", "consume", "12345", KEY_NONE, &m);
    mp_init(&m);
    msgpack_pack_map(&m.pk, 5);
    mp_kint(&m, "v", 1);
    mp_str(&m, "id");
    msgpack_pack_bin_with_body(&m.pk, "t8-bin-id", 9);
    mp_kstr(&m, "type", "consume");
    mp_kstr(&m, "user", "t8-u");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "id as msgpack bin", "consume", "t8-bin-id", KEY_NONE, &m);
    mp_head(&m, 5, "t8-user-space", "consume", "t8 u");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "user with a space", "consume", "t8-user-space", KEY_REQUIRED, &m);
    mp_head(&m, 5, "t8-user-129", "consume", repeat_char('u', 129));
    mp_kint(&m, "amount", 1);
    bad_mp(L, "user of 129 bytes", "consume", "t8-user-129", KEY_REQUIRED, &m);
    mp_head(&m, 5, "t8-user-empty", "consume", "");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "empty user", "consume", "t8-user-empty", KEY_REQUIRED, &m);

    /* Other fields. */
    mp_head(&m, 5, "t8-type-refund", "refund", "t8-u");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "unknown type", "consume", "t8-type-refund", KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-reply-str", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    mp_kstr(&m, "reply", "yes");
    bad_mp(L, "reply as a string", "consume", "t8-reply-str", KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-tool-65", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    mp_kstr(&m, "tool", repeat_char('t', 65));
    bad_mp(L, "tool of 65 bytes", "consume", "t8-tool-65", KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-ref-129", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    mp_kstr(&m, "ref", repeat_char('r', 129));
    bad_mp(L, "ref of 129 bytes", "consume", "t8-ref-129", KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-tool-int", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    mp_kint(&m, "tool", 7);
    bad_mp(L, "tool as an integer", "consume", "t8-tool-int", KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-pack-65", "purchase", "t8-u");
    mp_kstr(&m, "pack", repeat_char('p', 65));
    mp_kstr(&m, "payment_ref", "t8-pay-65");
    bad_mp(L, "pack of 65 bytes", "purchase", "t8-pack-65", KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-pack-empty", "purchase", "t8-u");
    mp_kstr(&m, "pack", "");
    mp_kstr(&m, "payment_ref", "t8-pay-e");
    bad_mp(L, "empty pack", "purchase", "t8-pack-empty", KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-payref-empty", "purchase", "t8-u");
    mp_kstr(&m, "pack", "p100");
    mp_kstr(&m, "payment_ref", "");
    bad_mp(L, "empty payment_ref", "purchase", "t8-payref-empty", KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-payref-129", "purchase", "t8-u");
    mp_kstr(&m, "pack", "p100");
    mp_kstr(&m, "payment_ref", repeat_char('q', 129));
    bad_mp(L, "payment_ref of 129 bytes", "purchase", "t8-payref-129", KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-plan-empty", "allocate", "t8-u");
    mp_kstr(&m, "plan", "");
    mp_kstr(&m, "period", "2026-01");
    bad_mp(L, "empty plan", "allocate", "t8-plan-empty", KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-plan-65", "allocate", "t8-u");
    mp_kstr(&m, "plan", repeat_char('b', 65));
    mp_kstr(&m, "period", "2026-01");
    bad_mp(L, "plan of 65 bytes", "allocate", "t8-plan-65", KEY_REQUIRED, &m);
    static const char *const bad_periods[] = {"2026-13", "2026-00",  "2026-1",  "26-01",
                                              "2026/01", "2026-011", "abcd-01", ""};
    static const char *const period_ids[] = {"t8-period-13",   "t8-period-00",    "t8-period-1",
                                             "t8-period-yy",   "t8-period-slash", "t8-period-long",
                                             "t8-period-abcd", "t8-period-empty"};
    static char period_whats[8][40];
    for (size_t i = 0; i < sizeof bad_periods / sizeof bad_periods[0]; i++) {
        mp_head(&m, 6, period_ids[i], "allocate", "t8-u");
        mp_kstr(&m, "plan", "basic");
        mp_kstr(&m, "period", bad_periods[i]);
        snprintf(period_whats[i], sizeof period_whats[i], "period '%s'", bad_periods[i]);
        bad_mp(L, period_whats[i], "allocate", period_ids[i], KEY_REQUIRED, &m);
    }
    mp_init(&m);
    msgpack_pack_map(&m.pk, 5);
    mp_kstr(&m, "v", "1");
    mp_kstr(&m, "id", "t8-v-str");
    mp_kstr(&m, "type", "consume");
    mp_kstr(&m, "user", "t8-u");
    mp_kint(&m, "amount", 1);
    bad_mp(L, "v as a string", "consume", "t8-v-str", KEY_REQUIRED, &m)->version_ok = true;

    /* Structure. */
    mp_head(&m, 6, "t8-dup-amount", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    mp_kint(&m, "amount", 1);
    bad_mp(L, "amount given twice (same value)", "consume", "t8-dup-amount", KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-dup-id", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    mp_kstr(&m, "id", "t8-dup-id");
    bad_mp(L, "id given twice", "consume", "t8-dup-id", KEY_REQUIRED, &m);
    mp_head(&m, 7, "t8-dup-unknown", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    mp_kint(&m, "x-extra", 1);
    mp_kint(&m, "x-extra", 2);
    bad_mp(L, "an unknown key given twice", "consume", "t8-dup-unknown", KEY_REQUIRED, &m);
    mp_head(&m, 6, "t8-int-key", "consume", "t8-u");
    mp_kint(&m, "amount", 1);
    msgpack_pack_int64(&m.pk, 1);
    msgpack_pack_int64(&m.pk, 2);
    bad_mp(L, "an integer map key", "consume", "t8-int-key", KEY_REQUIRED, &m);
    {
        struct bytes b;
        struct job j = consume_job("t8-trailing", "t8-u", 1, NULL, NULL);
        job_bytes(&j, &b);
        b.data[b.len++] = 0xc0;
        bad_add(L, "trailing byte after the map", "consume", "t8-trailing", KEY_REQUIRED, b.data,
                b.len);
        j = consume_job("t8-truncated", "t8-u", 1, NULL, NULL);
        job_bytes(&j, &b);
        bad_add(L, "truncated map", "consume", "t8-truncated", KEY_REQUIRED, b.data, b.len - 1);
    }
    /* Too large: 5000 bytes, and 4097 bytes (the limit is 4096). */
    {
        const size_t sizes[2] = {5000, 4097};
        const char *ids[2] = {"t8-5000", "t8-4097"};
        for (int k = 0; k < 2; k++) {
            size_t pad = 4000;
            for (int tries = 0; tries < 2; tries++) {
                mp_head(&m, 6, ids[k], "consume", "t8-u");
                mp_kint(&m, "amount", 1);
                mp_kstr(&m, "pad", repeat_char('z', pad));
                if (m.sb.size == sizes[k])
                    break;
                pad += sizes[k] - m.sb.size;
                msgpack_sbuffer_destroy(&m.sb);
            }
            CHECK(m.sb.size == sizes[k], "could not build a %zu-byte job", sizes[k]);
            bad_mp(L, sizes[k] == 5000 ? "5000-byte job" : "4097-byte job", "consume", ids[k],
                   KEY_REQUIRED, &m);
        }
    }
    struct bad *nf = bad_add(L, "entry without a job field", "consume", NULL, KEY_NONE, "x", 1);
    nf->no_job_field = true;
}

static void
test_invalid_messages_are_invalid_job_dead_lettered_and_the_worker_keeps_serving(void **state)
{
    (void)state;
    const char *P = "t_invalid";
    static struct bads L;
    memset(&L, 0, sizeof L);
    build_bad_messages(&L);
    pid_t w = worker_start(P, NULL);
    struct digest ledger = ledger_fp();

    step("enqueue %zu invalid messages", L.n);
    for (size_t i = 0; i < L.n; i++) {
        struct bad *b = &L.b[i];
        xadd_raw(P, b->stream, b->no_job_field ? "not-job" : "job", b->data, b->len, b->entry);
    }
    wait_drained(P);
    CHECK(worker_alive(w), "the worker died on the invalid messages");

    size_t ndead;
    struct dead *dead = read_dead(P, &ndead);
    for (size_t i = 0; i < L.n; i++) {
        const struct bad *b = &L.b[i];
        step("invalid message: %s", b->what);
        const struct dead *d = find_dead(P, dead, ndead, b->stream, b->entry);
        CHECK(d != NULL, "no dead letter with stream %s and entry %s for '%s'",
              stream_key(P, b->stream), b->entry, b->what);
        bool reason_ok = strstr(d->reason, "invalid_job") != NULL ||
                         (b->version_ok && strstr(d->reason, "unsupported_version") != NULL);
        CHECK(reason_ok, "dead letter reason '%s'", d->reason);
        if (b->no_job_field) {
            CHECK(!d->has_job || d->job_len == 0, "a job field in the dead letter of an entry "
                                                  "without one");
        } else {
            /* At most the first 4096 bytes, the whole length and digest
             * beside them (contract 9.9). */
            size_t kept = b->len < JOB_BYTES_MAX ? b->len : JOB_BYTES_MAX;
            CHECK(d->has_job && d->job_len == kept && memcmp(d->job, b->data, kept) == 0,
                  "dead letter `job` is not the first %zu bytes of the original (got %zu)", kept,
                  d->job_len);
            CHECK(d->job_bytes == (long long)b->len, "dead letter job_bytes %lld, not %zu",
                  d->job_bytes, b->len);
            uint8_t digest[SHA256_DIGEST_BYTES];
            char hex[SHA256_HEX_BYTES + 1];
            sha256_digest(b->data, b->len, digest);
            sha256_hex(digest, hex);
            CHECK(strcmp(d->job_sha256, hex) == 0, "dead letter job_sha256 %s, not %s",
                  d->job_sha256, hex);
        }
        if (b->id == NULL)
            continue;
        struct result r;
        bool has_key = result_get(P, b->id, &r);
        switch (b->rule) {
        case KEY_NONE:
            CHECK(!has_key, "a result key for the unreadable id '%s'", b->id);
            break;
        case KEY_REQUIRED:
            CHECK(has_key, "no result key for the readable id %s", b->id);
            break;
        }
        if (has_key) {
            bool code_ok = r.error == JOB_ERR_INVALID_JOB ||
                           (b->version_ok && r.error == JOB_ERR_UNSUPPORTED_VERSION);
            CHECK(code_ok && r.has_id && strcmp(r.id, b->id) == 0 && !r.replayed,
                  "result key of %s: %s (%s)", b->id, err_name(r.error), r.message);
            long long ttl = redis_int(redis_cmd("TTL", key(P, fmt("result:%s", b->id)), NULL));
            CHECK(ttl > 0 && ttl <= 86400, "TTL of the invalid_job result: %lld", ttl);
        }
    }
    free(dead);
    step("every message published one result");
    {
        size_t n;
        struct published *pub = read_results(P, &n);
        CHECK(n == L.n, "P:results has %zu entries for %zu messages", n, L.n);
        size_t without_id = 0;
        for (size_t i = 0; i < n; i++) {
            CHECK(pub[i].r.error == JOB_ERR_INVALID_JOB ||
                      pub[i].r.error == JOB_ERR_UNSUPPORTED_VERSION,
                  "result %zu is %s", i, err_name(pub[i].r.error));
            without_id += !pub[i].r.has_id;
        }
        CHECK(without_id >= 10, "only %zu results without an id", without_id);
        free(pub);
    }
    CHECK(same(ledger, ledger_fp()), "invalid messages changed the ledger");
    CHECK(pg_int("SELECT count(*) FROM credits.jobs WHERE job_id LIKE 't8-%'", NULL) == 0,
          "an invalid message was stored in credits.jobs");
    CHECK(!key_exists(key(P, "result:")), "a result key for an empty id");

    step("a valid job after them is applied");
    struct result r;
    submit(P, allocate_job("t8-ok", "t8-u", "basic", "2026-01"), &r);
    EXPECT(&r, "t8-ok", JOB_OK, false);
    EXPECT_BALANCE(&r, 100, 0, 100);
    step("ids of invalid jobs were not burnt");
    submit(P, consume_job("t8-amount-0", "t8-u", 1, NULL, NULL), &r);
    EXPECT(&r, "t8-amount-0", JOB_OK, false);
    EXPECT_BALANCE(&r, 99, 0, 99);
    for (size_t i = 0; i < L.n; i++)
        free(L.b[i].data);
    check_invariants();
    stop_clean(w);
}

/* Valid jobs at the edges of the rules: each is decided (not invalid_job). */
static void test_valid_jobs_at_the_limits_and_any_integer_encoding_are_decided(void **state)
{
    (void)state;
    const char *P = "t_limits";
    pid_t w = worker_start(P, NULL);
    struct result r;
    struct mp m;

    step("id and user of 128 printable bytes (0x21..0x7e)");
    {
        char id[129], user[129];
        for (int i = 0; i < 128; i++) {
            id[i] = (char)(0x21 + i % 94);
            user[i] = (char)(0x7e - i % 94);
        }
        id[128] = user[128] = '\0';
        memcpy(id, "t9l-", 4);
        memcpy(user, "t9u-", 4);
        submit(P, allocate_job(id, user, "basic", "2026-12"), &r);
        EXPECT(&r, id, JOB_OK, false);
        expect_identity(&r, JOB_ALLOCATE, user);
        CHECK(pg_int("SELECT count(*) FROM credits.lots WHERE job_id = $1 AND user_id = $2", id,
                     user, NULL) == 1,
              "no lot for the 128-byte id and user");
    }

    step("integers in other encodings: v int64, amount uint64 / int8 / uint32");
    submit(P, purchase_job("t9l-p", "t9l-u", "p1k", "t9l-pay"), &r);
    EXPECT(&r, "t9l-p", JOB_OK, false);
    mp_init(&m);
    msgpack_pack_map(&m.pk, 5);
    mp_str(&m, "v");
    msgpack_pack_fix_int64(&m.pk, 1);
    mp_kstr(&m, "id", "t9l-c-u64");
    mp_kstr(&m, "type", "consume");
    mp_kstr(&m, "user", "t9l-u");
    mp_str(&m, "amount");
    msgpack_pack_fix_uint64(&m.pk, 3);
    xadd_raw(P, "consume", "job", m.sb.data, m.sb.size, NULL);
    msgpack_sbuffer_destroy(&m.sb);
    mp_init(&m);
    msgpack_pack_map(&m.pk, 5);
    mp_str(&m, "v");
    msgpack_pack_fix_uint8(&m.pk, 1);
    mp_kstr(&m, "id", "t9l-c-i8");
    mp_kstr(&m, "type", "consume");
    mp_kstr(&m, "user", "t9l-u");
    mp_str(&m, "amount");
    msgpack_pack_fix_int8(&m.pk, 4);
    xadd_raw(P, "consume", "job", m.sb.data, m.sb.size, NULL);
    msgpack_sbuffer_destroy(&m.sb);
    wait_drained(P);
    result_must(P, "t9l-c-u64", &r);
    EXPECT(&r, "t9l-c-u64", JOB_OK, false);
    CHECK(r.amounts[RESULT_CHARGED] == 3, "charged %" PRId64, r.amounts[RESULT_CHARGED]);
    result_must(P, "t9l-c-i8", &r);
    EXPECT(&r, "t9l-c-i8", JOB_OK, false);
    EXPECT_BALANCE(&r, 993, 993, 0);

    step("amount 1000000000 (the maximum) as uint32");
    mp_head(&m, 5, "t9l-c-max", "consume", "t9l-u");
    mp_str(&m, "amount");
    msgpack_pack_fix_uint32(&m.pk, 1000000000);
    xadd_raw(P, "consume", "job", m.sb.data, m.sb.size, NULL);
    msgpack_sbuffer_destroy(&m.sb);
    wait_drained(P);
    result_must(P, "t9l-c-max", &r);
    EXPECT(&r, "t9l-c-max", JOB_ERR_INSUFFICIENT_CREDITS, false);
    EXPECT_BALANCE(&r, 993, 993, 0);

    step("tool of 64 bytes, ref of 128 bytes, reply false, unknown keys of any shape");
    mp_head(&m, 11, "t9l-c-edges", "consume", "t9l-u");
    mp_kint(&m, "amount", 1);
    mp_kstr(&m, "tool", repeat_char('T', 64));
    mp_kstr(&m, "ref", repeat_char('R', 128));
    mp_str(&m, "reply");
    msgpack_pack_false(&m.pk);
    mp_str(&m, "x-map");
    msgpack_pack_map(&m.pk, 1);
    mp_kint(&m, "k", 1);
    mp_str(&m, "x-array");
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_nil(&m.pk);
    msgpack_pack_double(&m.pk, 1.5);
    mp_str(&m, "x-bin");
    msgpack_pack_bin_with_body(&m.pk, "\0\1\2", 3);
    xadd_raw(P, "consume", "job", m.sb.data, m.sb.size, NULL);
    msgpack_sbuffer_destroy(&m.sb);
    wait_drained(P);
    result_must(P, "t9l-c-edges", &r);
    EXPECT(&r, "t9l-c-edges", JOB_OK, false);
    CHECK(!key_exists(key(P, "reply:t9l-c-edges")), "reply:false pushed a reply");
    CHECK(strcmp(pg_text("SELECT length(tool) || '/' || length(ref) FROM credits.entries "
                         "WHERE job_id = 't9l-c-edges'",
                         NULL),
                 "64/128") == 0,
          "tool/ref not kept in full");

    step("pack of 64 bytes, plan of 64 bytes: valid, not in the catalog");
    submit(P, purchase_job("t9l-pack64", "t9l-u", repeat_char('k', 64), repeat_char('q', 128)), &r);
    EXPECT(&r, "t9l-pack64", JOB_ERR_UNKNOWN_PACK, false);
    submit(P, allocate_job("t9l-plan64", "t9l-u", repeat_char('n', 64), "2026-01"), &r);
    EXPECT(&r, "t9l-plan64", JOB_ERR_UNKNOWN_PLAN, false);
    step("payment_ref of 128 bytes");
    submit(P, purchase_job("t9l-pay128", "t9l-w", "p100", repeat_char('Q', 128)), &r);
    EXPECT(&r, "t9l-pay128", JOB_OK, false);
    CHECK(pg_int("SELECT length(payment_ref) FROM credits.lots WHERE job_id = 't9l-pay128'",
                 NULL) == 128,
          "payment_ref not kept in full");

    step("a job of exactly 4096 bytes");
    {
        size_t pad = 3900;
        for (int tries = 0; tries < 2; tries++) {
            mp_head(&m, 6, "t9l-4096", "consume", "t9l-u");
            mp_kint(&m, "amount", 1);
            mp_kstr(&m, "pad", repeat_char('z', pad));
            if (m.sb.size == 4096)
                break;
            pad += 4096 - m.sb.size;
            msgpack_sbuffer_destroy(&m.sb);
        }
        CHECK(m.sb.size == 4096, "could not build a 4096-byte job");
        xadd_raw(P, "consume", "job", m.sb.data, m.sb.size, NULL);
        msgpack_sbuffer_destroy(&m.sb);
    }
    wait_drained(P);
    result_must(P, "t9l-4096", &r);
    EXPECT(&r, "t9l-4096", JOB_OK, false);

    step("other fields of the stream entry are ignored");
    {
        struct bytes b;
        struct job j = consume_job("t9l-fields", "t9l-u", 1, NULL, NULL);
        job_bytes(&j, &b);
        const char *argv[9] = {"XADD", stream_key(P, "consume"), "*",   "trace", "abc",
                               "job",  (const char *)b.data,     "zzz", "1"};
        size_t lens[9] = {4, strlen(argv[1]), 1, 5, 3, 3, b.len, 3, 1};
        redis_ok(redis_argv(9, argv, lens));
    }
    wait_drained(P);
    result_must(P, "t9l-fields", &r);
    EXPECT(&r, "t9l-fields", JOB_OK, false);
    EXPECT_BALANCE(&r, 990, 990, 0);
    CHECK(xlen(key(P, "dead")) == 0, "valid jobs were dead-lettered");
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 9. unsupported_version
 * ------------------------------------------------------------------------- */

static void test_version_other_than_1_is_unsupported_version_dead_lettered(void **state)
{
    (void)state;
    const char *P = "t_version";
    pid_t w = worker_start(P, NULL);
    struct digest ledger = ledger_fp();
    const int64_t versions[3] = {2, 0, -1};
    const char *ids[3] = {"t9-v2", "t9-v0", "t9-vneg"};
    char entries[3][64];
    struct mp m[3];
    for (int i = 0; i < 3; i++) {
        mp_init(&m[i]);
        msgpack_pack_map(&m[i].pk, 5);
        mp_kint(&m[i], "v", versions[i]);
        mp_kstr(&m[i], "id", ids[i]);
        mp_kstr(&m[i], "type", "allocate");
        mp_kstr(&m[i], "user", "t9-u");
        mp_kstr(&m[i], "plan", "basic");
        /* no period: a v2 job may look different; the version decides first */
        xadd_raw(P, "allocate", "job", m[i].sb.data, m[i].sb.size, entries[i]);
    }
    wait_drained(P);
    for (int i = 0; i < 3; i++) {
        step("v = %" PRId64, versions[i]);
        struct result r;
        result_must(P, ids[i], &r);
        EXPECT(&r, ids[i], JOB_ERR_UNSUPPORTED_VERSION, false);
        expect_dead(P, "allocate", entries[i], "unsupported_version", m[i].sb.data, m[i].sb.size);
        msgpack_sbuffer_destroy(&m[i].sb);
    }
    CHECK(same(ledger, ledger_fp()), "unsupported_version changed the ledger");
    CHECK(job_rows("t9-v2") == 0, "unsupported_version stored in credits.jobs");

    step("the ID is not burnt: the v1 job is applied");
    struct result r;
    submit(P, allocate_job("t9-v2", "t9-u", "basic", "2026-01"), &r);
    EXPECT(&r, "t9-v2", JOB_OK, false);
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 10. an unstored rejection never replaces a stored result
 * ------------------------------------------------------------------------- */

static void test_unstored_rejection_never_replaces_a_stored_result(void **state)
{
    (void)state;
    const char *P = "t_nx";
    pid_t w = worker_start(P, NULL);
    struct result applied, insufficient, r;

    submit(P, allocate_job("t10-x", "t10-u", "basic", "2026-01"), &applied);
    EXPECT(&applied, "t10-x", JOB_OK, false);
    submit(P, consume_job("t10-y", "t10-u", 500, NULL, NULL), &insufficient);
    EXPECT(&insufficient, "t10-y", JOB_ERR_INSUFFICIENT_CREDITS, false);
    struct digest ledger = ledger_fp();
    struct mp m;

    step("an invalid job with the ID of an applied job");
    mp_head(&m, 6, "t10-x", "allocate", "t10-u");
    mp_kstr(&m, "plan", "basic");
    mp_kstr(&m, "period", "2026-13");
    xadd_raw(P, "allocate", "job", m.sb.data, m.sb.size, NULL);
    msgpack_sbuffer_destroy(&m.sb);
    step("a v2 job with the ID of an applied job");
    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_kint(&m, "v", 2);
    mp_kstr(&m, "id", "t10-x");
    mp_kstr(&m, "type", "allocate");
    mp_kstr(&m, "user", "t10-u");
    xadd_raw(P, "allocate", "job", m.sb.data, m.sb.size, NULL);
    msgpack_sbuffer_destroy(&m.sb);
    step("an invalid job with the ID of a stored rejection");
    mp_head(&m, 5, "t10-y", "consume", "t10-u");
    mp_kint(&m, "amount", 0);
    xadd_raw(P, "consume", "job", m.sb.data, m.sb.size, NULL);
    msgpack_sbuffer_destroy(&m.sb);
    step("the applied job on the wrong stream");
    enqueue_on(P, "purchase", allocate_job("t10-x", "t10-u", "basic", "2026-01"), NULL);
    wait_drained(P);

    size_t n;
    struct published *pub = read_results(P, &n);
    CHECK(n == 6, "P:results has %zu entries, expected 6", n);
    CHECK(count_results(pub, n, "t10-x", JOB_ERR_INVALID_JOB) == 1, "no invalid_job for t10-x");
    CHECK(count_results(pub, n, "t10-x", JOB_ERR_UNSUPPORTED_VERSION) == 1,
          "no unsupported_version for t10-x");
    CHECK(count_results(pub, n, "t10-y", JOB_ERR_INVALID_JOB) == 1, "no invalid_job for t10-y");
    CHECK(count_results(pub, n, "t10-x", JOB_ERR_WRONG_STREAM) == 1, "no wrong_stream for t10-x");
    free(pub);
    CHECK(xlen(key(P, "dead")) == 4, "P:dead has %lld entries, expected 4", xlen(key(P, "dead")));
    step("the result keys still hold the stored decisions");
    result_must(P, "t10-x", &r);
    EXPECT(&r, "t10-x", JOB_OK, false);
    expect_same_decision(&r, &applied);
    result_must(P, "t10-y", &r);
    EXPECT(&r, "t10-y", JOB_ERR_INSUFFICIENT_CREDITS, false);
    expect_same_decision(&r, &insufficient);
    CHECK(same(ledger, ledger_fp()), "the rejections changed the ledger");
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 11. jobs enqueued before any worker ever ran
 * ------------------------------------------------------------------------- */

static void test_jobs_enqueued_before_the_first_worker_start_are_processed(void **state)
{
    (void)state;
    const char *P = "t_before";
    for (int s = 0; s < 3; s++)
        CHECK(!key_exists(stream_key(P, STREAMS[s])), "stream exists before the test");
    step("enqueue on streams without a group");
    enqueue(P, allocate_job("t11-a", "t11-ua", "basic", "2026-01"));
    enqueue(P, purchase_job("t11-p", "t11-ub", "p100", "t11-pay"));
    enqueue(P, consume_job("t11-c", "t11-uc", 7, NULL, NULL));
    step("start the worker");
    pid_t w = worker_start(P, NULL);
    wait_drained(P);
    for (int s = 0; s < 3; s++)
        CHECK(group_exists(P, STREAMS[s], DEFAULT_GROUP), "no group %s on %s", DEFAULT_GROUP,
              STREAMS[s]);
    struct result r;
    result_must(P, "t11-a", &r);
    EXPECT(&r, "t11-a", JOB_OK, false);
    EXPECT_BALANCE(&r, 100, 0, 100);
    result_must(P, "t11-p", &r);
    EXPECT(&r, "t11-p", JOB_OK, false);
    EXPECT_BALANCE(&r, 100, 100, 0);
    result_must(P, "t11-c", &r);
    EXPECT(&r, "t11-c", JOB_ERR_INSUFFICIENT_CREDITS, false);
    EXPECT_BALANCE(&r, 0, 0, 0);
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 12. this consumer's pending entries at start-up
 * ------------------------------------------------------------------------- */

static void test_entries_pending_for_this_consumer_at_start_up_are_processed_and_acked(void **state)
{
    (void)state;
    const char *P = "t_pending";
    const char *C = "t12-consumer";
    const char *U = "t12-u";
    struct result r;
    step("a first run gives the user 100 pack credits");
    pid_t w = worker_start(P, fmt("CREDITS_CONSUMER=%s", C), NULL);
    submit(P, purchase_job("t12-p0", U, "p100", "t12-pay0"), &r);
    EXPECT(&r, "t12-p0", JOB_OK, false);
    stop_clean(w);

    step("entries read under the worker's consumer name, not acknowledged");
    enqueue(P, allocate_job("t12-a", "t12-ua", "basic", "2026-01"));
    enqueue(P, purchase_job("t12-p", "t12-ub", "p100", "t12-pay"));
    enqueue(P, consume_job("t12-c1", U, 30, NULL, NULL));
    {
        char k1[128], k2[128], k3[128];
        snprintf(k1, sizeof k1, "%s", stream_key(P, "consume"));
        snprintf(k2, sizeof k2, "%s", stream_key(P, "purchase"));
        snprintf(k3, sizeof k3, "%s", stream_key(P, "allocate"));
        redisReply *reply = redis_cmd("XREADGROUP", "GROUP", DEFAULT_GROUP, C, "COUNT", "10",
                                      "STREAMS", k1, k2, k3, ">", ">", ">", NULL);
        CHECK(reply->type == REDIS_REPLY_ARRAY && reply->elements == 3,
              "XREADGROUP read %zu streams", reply->elements);
        freeReplyObject(reply);
    }
    CHECK(pending_total(P, DEFAULT_GROUP) == 3, "expected 3 pending entries");
    enqueue(P, consume_job("t12-c2", U, 40, NULL, NULL));
    enqueue(P, consume_job("t12-c3", U, 40, NULL, NULL));

    step("the worker starts again under that consumer name");
    w = worker_start(P, fmt("CREDITS_CONSUMER=%s", C), NULL);
    wait_drained(P);
    long long each[3];
    pending_count_each(P, DEFAULT_GROUP, each);
    CHECK(each[0] == 0 && each[1] == 0 && each[2] == 0, "XPENDING %lld/%lld/%lld", each[0], each[1],
          each[2]);
    result_must(P, "t12-a", &r);
    EXPECT(&r, "t12-a", JOB_OK, false);
    EXPECT_BALANCE(&r, 100, 0, 100);
    result_must(P, "t12-p", &r);
    EXPECT(&r, "t12-p", JOB_OK, false);
    EXPECT_BALANCE(&r, 100, 100, 0);
    result_must(P, "t12-c1", &r);
    EXPECT(&r, "t12-c1", JOB_OK, false);
    EXPECT_BALANCE(&r, 70, 70, 0);
    result_must(P, "t12-c2", &r);
    EXPECT(&r, "t12-c2", JOB_OK, false);
    EXPECT_BALANCE(&r, 30, 30, 0);
    result_must(P, "t12-c3", &r);
    EXPECT(&r, "t12-c3", JOB_ERR_INSUFFICIENT_CREDITS, false);
    EXPECT_BALANCE(&r, 30, 30, 0);
    CHECK(xlen(key(P, "results")) == 6, "P:results has %lld entries, expected 6",
          xlen(key(P, "results")));
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 13. CREDITS_BATCH_MAX=1 decides like the default
 * ------------------------------------------------------------------------- */

struct want {
    const char *id; /* suffix; the ID is "<tag>-<suffix>" */
    enum job_error err;
    bool replayed;
    int64_t amount; /* charged or granted */
    bool has_balance;
    int64_t total, pack, monthly;
};

/* The results published for one ID, in order, must be `want`s with that ID. */
static void expect_sequence(const struct published *pub, size_t n, const char *tag,
                            const struct want *want, size_t nwant)
{
    size_t seen = 0;
    /* Walk each distinct ID of `want` and compare its subsequence. */
    for (size_t a = 0; a < nwant; a++) {
        bool first = true;
        for (size_t b = 0; b < a; b++)
            if (strcmp(want[a].id, want[b].id) == 0)
                first = false;
        if (!first)
            continue;
        char id[64];
        snprintf(id, sizeof id, "%s-%s", tag, want[a].id);
        size_t k = a;
        for (size_t i = 0; i < n; i++) {
            if (!pub[i].r.has_id || strcmp(pub[i].r.id, id) != 0)
                continue;
            while (k < nwant && strcmp(want[k].id, want[a].id) != 0)
                k++;
            CHECK(k < nwant, "%s: more results than expected", id);
            const struct result *r = &pub[i].r;
            const struct want *x = &want[k];
            CHECK(r->error == x->err && r->replayed == x->replayed,
                  "%s (result %zu): expected %s replayed=%d, got %s replayed=%d (%s)", id, i,
                  err_name(x->err), x->replayed, err_name(r->error), r->replayed, r->message);
            if (x->err == JOB_OK)
                CHECK(r->amounts[RESULT_CHARGED] == x->amount ||
                          r->amounts[RESULT_GRANTED] == x->amount,
                      "%s: amount %" PRId64 "/%" PRId64 ", expected %" PRId64, id,
                      r->amounts[RESULT_CHARGED], r->amounts[RESULT_GRANTED], x->amount);
            if (x->has_balance)
                CHECK(r->balance.total == x->total && r->balance.pack == x->pack &&
                          r->balance.monthly == x->monthly,
                      "%s: balance {%" PRId64 ",%" PRId64 ",%" PRId64 "}, expected {%" PRId64
                      ",%" PRId64 ",%" PRId64 "}",
                      id, r->balance.total, r->balance.pack, r->balance.monthly, x->total, x->pack,
                      x->monthly);
            seen++;
            k++;
        }
        while (k < nwant && strcmp(want[k].id, want[a].id) != 0)
            k++;
        CHECK(k >= nwant, "%s: fewer results than expected", id);
    }
    CHECK(seen == nwant, "%zu results matched, expected %zu", seen, nwant);
}

/* Stream order is kept within a stream; the order across streams is not part
 * of the contract, so the jobs on the purchase and allocate streams below
 * are decided the same whichever comes first. */
static void run_mixed_sequence(const char *P, const char *tag, const char *batch_max)
{
    char u[64], v[64];
    snprintf(u, sizeof u, "%s-u", tag);
    snprintf(v, sizeof v, "%s-v", tag);
#define ID(s) fmt("%s-%s", tag, s)
    step("%s: set-up, one job at a time", tag);
    pid_t w = batch_max ? worker_start(P, batch_max, NULL) : worker_start(P, NULL);
    enqueue(P, allocate_job(ID("a1"), u, "basic", "2026-01"));
    wait_drained(P);
    enqueue(P, purchase_job(ID("p1"), u, "p100", ID("pay1")));
    wait_drained(P);
    stop_clean(w);
    step("%s: the sequence, all enqueued before the worker starts", tag);
    enqueue(P, consume_job(ID("c1"), u, 30, "t", NULL));
    enqueue(P, consume_job(ID("c1"), u, 30, "t", NULL));
    enqueue(P, consume_job(ID("c2"), u, 250, NULL, NULL));
    enqueue(P, purchase_job(ID("p2"), u, "p100", ID("pay1")));
    enqueue(P, consume_job(ID("c1"), u, 31, "t", NULL));
    enqueue(P, consume_job(ID("c3"), u, 100, NULL, NULL));
    enqueue(P, purchase_job(ID("p3"), u, "nope", ID("pay3")));
    enqueue(P, consume_job(ID("c4"), v, 70, NULL, NULL));
    enqueue(P, allocate_job(ID("a2"), u, "basic", "2026-01"));
    enqueue(P, consume_job(ID("c2"), u, 250, NULL, NULL));
    enqueue(P, consume_job(ID("c5"), u, 70, NULL, NULL));
    enqueue(P, consume_job(ID("c6"), u, 1, NULL, NULL));
    enqueue(P, allocate_job(ID("a1"), u, "basic", "2026-01"));
    enqueue(P, purchase_job(ID("p1"), u, "p100", ID("pay1")));
    enqueue(P, consume_job(ID("c5"), u, 70, NULL, NULL));
#undef ID
    w = batch_max ? worker_start(P, batch_max, NULL) : worker_start(P, NULL);
    wait_drained(P);
    const struct want want[] = {
        {"a1", JOB_OK, false, 100, true, 100, 0, 100},
        {"p1", JOB_OK, false, 100, true, 200, 100, 100},
        {"c1", JOB_OK, false, 30, true, 170, 70, 100},
        {"c1", JOB_OK, true, 30, true, 170, 70, 100},
        {"c2", JOB_ERR_INSUFFICIENT_CREDITS, false, 0, true, 170, 70, 100},
        {"p2", JOB_ERR_DUPLICATE_PAYMENT, false, 0, false, 0, 0, 0},
        {"c1", JOB_ERR_ID_CONFLICT, false, 0, false, 0, 0, 0},
        {"c3", JOB_OK, false, 100, true, 70, 0, 70},
        {"p3", JOB_ERR_UNKNOWN_PACK, false, 0, false, 0, 0, 0},
        {"c4", JOB_ERR_INSUFFICIENT_CREDITS, false, 0, true, 0, 0, 0},
        {"a2", JOB_ERR_ALREADY_ALLOCATED, false, 0, false, 0, 0, 0},
        {"c2", JOB_ERR_INSUFFICIENT_CREDITS, true, 0, true, 170, 70, 100},
        {"c5", JOB_OK, false, 70, true, 0, 0, 0},
        {"c6", JOB_ERR_INSUFFICIENT_CREDITS, false, 0, true, 0, 0, 0},
        {"a1", JOB_OK, true, 100, true, 100, 0, 100},
        {"p1", JOB_OK, true, 100, true, 200, 100, 100},
        {"c5", JOB_OK, true, 70, true, 0, 0, 0},
    };
    size_t n;
    struct published *pub = read_results(P, &n);
    CHECK(n == sizeof want / sizeof want[0], "%zu results for %zu jobs", n,
          sizeof want / sizeof want[0]);
    expect_sequence(pub, n, tag, want, sizeof want / sizeof want[0]);
    free(pub);
    EXPECT_SQL_BALANCE(u, 0, 0, 0);
    CHECK(xlen(key(P, "dead")) == 1, "expected one dead letter (the id_conflict)");
    CHECK(pg_int("SELECT count(*) FROM credits.jobs WHERE job_id LIKE $1", fmt("%s-%%", tag),
                 NULL) == 11,
          "expected 11 decided job IDs");
    check_invariants();
    stop_clean(w);
}

static void test_batch_max_1_decides_a_mixed_sequence_like_the_default(void **state)
{
    (void)state;
    step("CREDITS_BATCH_MAX=1");
    run_mixed_sequence("t_batch1", "t13b1", "CREDITS_BATCH_MAX=1");
    step("default CREDITS_BATCH_MAX");
    run_mixed_sequence("t_batchn", "t13bn", NULL);
    step("ledgers of both users match");
    CHECK(strcmp(pg_text("SELECT string_agg(kind || ':' || delta, ',' ORDER BY entry_id) "
                         "FROM credits.entries WHERE user_id = 't13b1-u'",
                         NULL),
                 pg_text("SELECT string_agg(kind || ':' || delta, ',' ORDER BY entry_id) "
                         "FROM credits.entries WHERE user_id = 't13bn-u'",
                         NULL)) == 0,
          "the entries differ between the two modes");
}

/* ---------------------------------------------------------------------------
 * 14. SIGTERM
 * ------------------------------------------------------------------------- */

static void test_sigterm_while_idle_exits_0_promptly(void **state)
{
    (void)state;
    const char *P = "t_idle";
    pid_t w = worker_start(P, "CREDITS_CONSUMER=t14-idle", NULL);
    wait_consumer(P, DEFAULT_GROUP, "t14-idle");
    for (int s = 0; s < 3; s++)
        CHECK(group_exists(P, STREAMS[s], DEFAULT_GROUP),
              "the worker did not create the group on %s (MKSTREAM)", STREAMS[s]);
    int64_t ms;
    int status = worker_stop(w, STOP_WAIT_MS, &ms);
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "idle worker did not exit 0 on SIGTERM (status %d)", status);
    CHECK(ms < 3000, "idle worker took %" PRId64 " ms to stop", ms);
}

#define T14_JOBS 200

static void test_sigterm_under_load_exits_0_and_loses_no_job(void **state)
{
    (void)state;
    const char *P = "t_sigterm";
    const char *U = "t14-u";
    const char *C = "t14-consumer";
    pid_t w = worker_start(P, fmt("CREDITS_CONSUMER=%s", C), "CREDITS_BATCH_MAX=16", NULL);
    struct result r;
    submit(P, purchase_job("t14-p", U, "p100", "t14-pay"), &r);
    EXPECT(&r, "t14-p", JOB_OK, false);
    wait_consumer(P, DEFAULT_GROUP, C);

    step("enqueue %d consumes of 1 (pipelined), then SIGTERM", T14_JOBS);
    static char ids[T14_JOBS][32];
    static char entries[T14_JOBS][64];
    static struct bytes b[T14_JOBS];
    char sk[128];
    snprintf(sk, sizeof sk, "%s", stream_key(P, "consume"));
    for (int i = 0; i < T14_JOBS; i++) {
        snprintf(ids[i], sizeof ids[i], "t14-c%03d", i);
        struct job j = consume_job(ids[i], U, 1, NULL, NULL);
        job_bytes(&j, &b[i]);
        const char *argv[5] = {"XADD", sk, "*", "job", (const char *)b[i].data};
        size_t lens[5] = {4, strlen(sk), 1, 3, b[i].len};
        redisAppendCommandArgv(R, 5, argv, lens);
    }
    for (int i = 0; i < T14_JOBS; i++) {
        void *reply = NULL;
        CHECK(redisGetReply(R, &reply) == REDIS_OK && reply != NULL, "pipelined XADD failed");
        redisReply *x = reply;
        CHECK(x->type == REDIS_REPLY_STRING, "XADD reply type %d", x->type);
        snprintf(entries[i], sizeof entries[i], "%s", x->str);
        freeReplyObject(x);
    }
    /* SIGTERM while the worker is in the middle of them. */
    {
        int64_t deadline = mono_ms() + WAIT_MS;
        while (!key_exists(key(P, fmt("result:%s", ids[0])))) {
            CHECK(mono_ms() < deadline, "the worker never decided %s", ids[0]);
            sleep_ms(1);
        }
    }
    stop_clean(w);

    step("after the stop: each job has a result, is pending, or was never delivered");
    char delivered[64] = "0-0";
    {
        redisReply *groups = redis_cmd("XINFO", "GROUPS", sk, NULL);
        CHECK(groups->type == REDIS_REPLY_ARRAY && groups->elements == 1, "XINFO GROUPS");
        snprintf(delivered, sizeof delivered, "%s",
                 kv_get(groups->element[0], "last-delivered-id")->str);
        freeReplyObject(groups);
    }
    static bool pending[T14_JOBS];
    memset(pending, 0, sizeof pending);
    {
        redisReply *reply = redis_cmd("XPENDING", sk, DEFAULT_GROUP, "-", "+", "1000", NULL);
        CHECK(reply->type == REDIS_REPLY_ARRAY, "XPENDING");
        for (size_t k = 0; k < reply->elements; k++)
            for (int i = 0; i < T14_JOBS; i++)
                if (strcmp(reply->element[k]->element[0]->str, entries[i]) == 0)
                    pending[i] = true;
        freeReplyObject(reply);
    }
    int with_result = 0, n_pending = 0, undelivered = 0;
    for (int i = 0; i < T14_JOBS; i++) {
        bool has = key_exists(key(P, fmt("result:%s", ids[i])));
        bool was_delivered = compare_entry_ids(entries[i], delivered) <= 0;
        CHECK(!(has && pending[i]), "%s has a result but is still pending after a clean stop",
              ids[i]);
        CHECK(has || pending[i] || !was_delivered,
              "%s was delivered, is not pending and has no result: lost", ids[i]);
        with_result += has;
        n_pending += pending[i];
        undelivered += !has && !pending[i] && !was_delivered;
    }
    print_message("after SIGTERM: %d results, %d pending, %d not yet delivered\n", with_result,
                  n_pending, undelivered);
    CHECK(with_result + n_pending + undelivered == T14_JOBS, "%d + %d + %d != %d", with_result,
          n_pending, undelivered, T14_JOBS);

    step("restart: every job gets its result");
    w = worker_start(P, fmt("CREDITS_CONSUMER=%s", C), "CREDITS_BATCH_MAX=16", NULL);
    wait_drained(P);
    CHECK(pending_total(P, DEFAULT_GROUP) == 0, "entries still pending");
    for (int i = 0; i < T14_JOBS; i++) {
        result_must(P, ids[i], &r);
        CHECK(r.has_id && strcmp(r.id, ids[i]) == 0, "id");
        if (i < 100) {
            CHECK(r.error == JOB_OK && r.amounts[RESULT_CHARGED] == 1,
                  "%s: expected applied (the first 100 consumes fit), got %s", ids[i],
                  err_name(r.error));
        } else {
            CHECK(r.error == JOB_ERR_INSUFFICIENT_CREDITS, "%s: expected insufficient, got %s",
                  ids[i], err_name(r.error));
        }
    }
    EXPECT_SQL_BALANCE(U, 0, 0, 0);
    CHECK(pg_int("SELECT count(*) FROM credits.jobs WHERE job_id LIKE 't14-c%'", NULL) == T14_JOBS,
          "not every job decided once");
    CHECK(pg_int("SELECT coalesce(sum(delta), 0) FROM credits.entries WHERE job_id LIKE 't14-c%' "
                 "AND kind = 'consume'",
                 NULL) == -100,
          "consume entries do not sum to -100");
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 15. the results stream and the result TTL
 * ------------------------------------------------------------------------- */

static void
test_results_stream_carries_msgpack_results_and_keys_expire_after_result_ttl(void **state)
{
    (void)state;
    const char *P = "t_results";
    pid_t w = worker_start(P, "CREDITS_RESULT_TTL=1234", "CREDITS_RESULTS_MAXLEN=10", NULL);
    struct result r;
    submit(P, purchase_job("t15-p", "t15-u", "p100", "t15-pay"), &r);
    EXPECT(&r, "t15-p", JOB_OK, false);
    long long ttl = redis_int(redis_cmd("TTL", key(P, "result:t15-p"), NULL));
    CHECK(ttl > 1200 && ttl <= 1234, "TTL of the result key is %lld, expected about 1234", ttl);

    step("the results stream entry: one field `result`, the same bytes as the key");
    size_t n;
    struct published *pub = read_results(P, &n);
    CHECK(n == 1, "%zu results", n);
    CHECK(pub[0].field_count == 2 && strcmp(pub[0].field, "result") == 0,
          "results entry fields: %d, first '%s'", pub[0].field_count, pub[0].field);
    redisReply *raw = redis_cmd("GET", key(P, "result:t15-p"), NULL);
    CHECK(raw->type == REDIS_REPLY_STRING && raw->len == pub[0].raw_len &&
              memcmp(raw->str, pub[0].raw, raw->len) == 0,
          "the stream's result differs from the key's");
    freeReplyObject(raw);
    EXPECT(&pub[0].r, "t15-p", JOB_OK, false);
    free(pub);

    step("a replay refreshes the TTL; a rejection's key has the TTL too");
    redis_ok(redis_cmd("EXPIRE", key(P, "result:t15-p"), "100", NULL));
    submit(P, purchase_job("t15-p", "t15-u", "p100", "t15-pay"), &r);
    EXPECT(&r, "t15-p", JOB_OK, true);
    ttl = redis_int(redis_cmd("TTL", key(P, "result:t15-p"), NULL));
    CHECK(ttl > 1200 && ttl <= 1234, "TTL after a replay is %lld", ttl);
    submit(P, consume_job("t15-c", "t15-nobody", 5, NULL, NULL), &r);
    EXPECT(&r, "t15-c", JOB_ERR_INSUFFICIENT_CREDITS, false);
    ttl = redis_int(redis_cmd("TTL", key(P, "result:t15-c"), NULL));
    CHECK(ttl > 1200 && ttl <= 1234, "TTL of a stored rejection's key is %lld", ttl);

    step("CREDITS_RESULTS_MAXLEN=10 trims the results stream approximately");
    char sk[128];
    snprintf(sk, sizeof sk, "%s", stream_key(P, "consume"));
    for (int i = 0; i < 300; i++) {
        struct bytes b;
        struct job j = consume_job(fmt("t15-x%03d", i), "t15-nobody", 1, NULL, NULL);
        job_bytes(&j, &b);
        const char *argv[5] = {"XADD", sk, "*", "job", (const char *)b.data};
        size_t lens[5] = {4, strlen(sk), 1, 3, b.len};
        redisAppendCommandArgv(R, 5, argv, lens);
    }
    for (int i = 0; i < 300; i++) {
        void *reply = NULL;
        CHECK(redisGetReply(R, &reply) == REDIS_OK && reply != NULL, "pipelined XADD failed");
        freeReplyObject(reply);
    }
    wait_drained(P);
    long long len = xlen(key(P, "results"));
    CHECK(len >= 10 && len <= 110, "P:results has %lld entries after 303 results, MAXLEN ~ 10",
          len);
    result_must(P, "t15-x299", &r);
    EXPECT(&r, "t15-x299", JOB_ERR_INSUFFICIENT_CREDITS, false);
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * 16. two workers racing on one user
 * ------------------------------------------------------------------------- */

#define T16_JOBS 300

static void test_two_workers_on_one_hot_user_spend_each_credit_exactly_once(void **state)
{
    (void)state;
    const char *P = "t_race";
    const char *G = "t16-group";
    const char *U = "t16-hot";
    pid_t a = worker_start(P, "CREDITS_CONSUMER=t16-a", fmt("CREDITS_GROUP=%s", G),
                           "CREDITS_BATCH_MAX=16", NULL);
    step("150 credits: p100 + basic 100 - 50");
    /* One at a time: the order across streams is not part of the contract. */
    enqueue(P, purchase_job("t16-p", U, "p100", "t16-pay"));
    wait_drained_group(P, G);
    enqueue(P, allocate_job("t16-m", U, "basic", "2026-01"));
    wait_drained_group(P, G);
    enqueue(P, consume_job("t16-c-setup", U, 50, NULL, NULL));
    wait_drained_group(P, G);
    struct result r;
    result_must(P, "t16-c-setup", &r);
    EXPECT(&r, "t16-c-setup", JOB_OK, false);
    EXPECT_BALANCE(&r, 150, 50, 100);
    pid_t b = worker_start(P, "CREDITS_CONSUMER=t16-b", fmt("CREDITS_GROUP=%s", G),
                           "CREDITS_BATCH_MAX=16", NULL);
    wait_consumer(P, G, "t16-a");
    wait_consumer(P, G, "t16-b");
    CHECK(!group_exists(P, "consume", DEFAULT_GROUP), "the default group was created too");

    step("%d consumes of 1, pipelined", T16_JOBS);
    char sk[128];
    snprintf(sk, sizeof sk, "%s", stream_key(P, "consume"));
    for (int i = 0; i < T16_JOBS; i++) {
        struct bytes jb;
        struct job j = consume_job(fmt("t16-c%03d", i), U, 1, "race", NULL);
        job_bytes(&j, &jb);
        const char *argv[5] = {"XADD", sk, "*", "job", (const char *)jb.data};
        size_t lens[5] = {4, strlen(sk), 1, 3, jb.len};
        redisAppendCommandArgv(R, 5, argv, lens);
    }
    for (int i = 0; i < T16_JOBS; i++) {
        void *reply = NULL;
        CHECK(redisGetReply(R, &reply) == REDIS_OK && reply != NULL, "pipelined XADD failed");
        freeReplyObject(reply);
    }
    wait_drained_group(P, G);

    step("exactly 150 applied");
    int applied = 0, insufficient = 0;
    for (int i = 0; i < T16_JOBS; i++) {
        const char *id = fmt("t16-c%03d", i);
        result_must(P, id, &r);
        CHECK(!r.replayed, "%s replayed", id);
        if (r.error == JOB_OK) {
            applied++;
            CHECK(r.amounts[RESULT_CHARGED] == 1, "charged");
        } else {
            CHECK(r.error == JOB_ERR_INSUFFICIENT_CREDITS, "%s: %s", id, err_name(r.error));
            insufficient++;
        }
    }
    CHECK(applied == 150 && insufficient == 150, "%d applied, %d insufficient", applied,
          insufficient);
    EXPECT_SQL_BALANCE(U, 0, 0, 0);
    CHECK(pg_int("SELECT count(*) FROM credits.jobs WHERE job_id ~ '^t16-c[0-9]{3}$'", NULL) ==
              T16_JOBS,
          "not every job decided once");
    CHECK(pg_int("SELECT count(*) FROM credits.jobs WHERE status = 'applied' AND "
                 "job_id ~ '^t16-c[0-9]{3}$'",
                 NULL) == 150,
          "applied rows");
    CHECK(pg_int("SELECT coalesce(sum(delta), 0) FROM credits.entries WHERE "
                 "job_id ~ '^t16-c[0-9]{3}$'",
                 NULL) == -150,
          "entries of the race do not sum to -150");
    CHECK(pg_int("SELECT coalesce(sum(delta), 0) FROM credits.entries WHERE user_id = 't16-hot'",
                 NULL) == 0,
          "the hot user's entries do not sum to 0");
    CHECK(xlen(key(P, "results")) == 3 + T16_JOBS, "P:results has %lld entries, expected %d",
          xlen(key(P, "results")), 3 + T16_JOBS);
    check_invariants();
    stop_clean(a);
    stop_clean(b);
}

/* ---------------------------------------------------------------------------
 * reply:true for every kind of decision
 * ------------------------------------------------------------------------- */

/* The one result pushed on P:reply:{id}: exactly one, expiring within 300 s. */
static void pop_reply(const char *P, const char *id, struct result *r)
{
    char k[256];
    snprintf(k, sizeof k, "%s", key(P, fmt("reply:%s", id)));
    long long len = redis_int(redis_cmd("LLEN", k, NULL));
    CHECK(len == 1, "%s holds %lld results, expected exactly 1", k, len);
    long long ttl = redis_int(redis_cmd("TTL", k, NULL));
    CHECK(ttl > 0 && ttl <= 300, "TTL of %s is %lld, expected 1..300", k, ttl);
    redisReply *pop = redis_cmd("BLPOP", k, "5", NULL);
    CHECK(pop->type == REDIS_REPLY_ARRAY && pop->elements == 2, "BLPOP %s got nothing", k);
    decode_result(k, pop->element[1]->str, pop->element[1]->len, r);
    freeReplyObject(pop);
}

static void test_reply_true_pushes_every_decision_with_a_readable_id_once(void **state)
{
    (void)state;
    const char *P = "t_reply";
    const char *U = "tr-u";
    pid_t w = worker_start(P, NULL);
    struct result r;

    step("enqueue: an allocate, a consume too big, a purchase on the consume stream, "
         "an invalid consume (amount 0), each with reply:true");
    struct job a = allocate_job("tr-a", U, "basic", "2026-01");
    a.reply = true;
    enqueue(P, a);
    wait_drained(P);
    struct job c = consume_job("tr-c", U, 500, NULL, NULL);
    c.reply = true;
    enqueue(P, c);
    struct job ws = purchase_job("tr-ws", U, "p100", "tr-pay");
    ws.reply = true;
    enqueue_on(P, "consume", ws, NULL);
    struct mp m;
    mp_head(&m, 6, "tr-inv", "consume", U);
    mp_kint(&m, "amount", 0);
    mp_str(&m, "reply");
    msgpack_pack_true(&m.pk);
    xadd_raw(P, "consume", "job", m.sb.data, m.sb.size, NULL);
    msgpack_sbuffer_destroy(&m.sb);
    wait_drained(P);

    step("applied");
    pop_reply(P, "tr-a", &r);
    EXPECT(&r, "tr-a", JOB_OK, false);
    EXPECT_BALANCE(&r, 100, 0, 100);
    step("insufficient_credits (stored)");
    pop_reply(P, "tr-c", &r);
    EXPECT(&r, "tr-c", JOB_ERR_INSUFFICIENT_CREDITS, false);
    EXPECT_BALANCE(&r, 100, 0, 100);
    step("wrong_stream (unstored)");
    pop_reply(P, "tr-ws", &r);
    EXPECT(&r, "tr-ws", JOB_ERR_WRONG_STREAM, false);

    step("id_conflict with reply:true: P:results and P:dead only, no reply");
    struct job conflict = consume_job("tr-c", U, 501, NULL, NULL);
    conflict.reply = true;
    enqueue(P, conflict);
    wait_drained(P);
    CHECK(!key_exists(key(P, "reply:tr-c")), "an id_conflict was pushed to P:reply");
    result_must(P, "tr-c", &r);
    EXPECT(&r, "tr-c", JOB_ERR_INSUFFICIENT_CREDITS, false);

    step("invalid_job with a readable id and reply:true (amount 0)");
    pop_reply(P, "tr-inv", &r);
    EXPECT(&r, "tr-inv", JOB_ERR_INVALID_JOB, false);
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * spending order: ties and granted_at
 * ------------------------------------------------------------------------- */

static void
test_spending_order_breaks_ties_by_lot_id_and_ranks_monthly_lots_by_granted_at(void **state)
{
    (void)state;
    const char *P = "t_order";
    const char *U = "to-u";
    pid_t w = worker_start(P, NULL);
    struct result r;
    submit(P, purchase_job("to-p1", U, "p100", "to-pay1"), &r);
    EXPECT(&r, "to-p1", JOB_OK, false);
    submit(P, purchase_job("to-p2", U, "p100", "to-pay2"), &r);
    EXPECT(&r, "to-p2", JOB_OK, false);
    step("both pack lots expire at the same instant (SQL)");
    pg_exec("UPDATE credits.lots SET expires_at = date_trunc('second', now()) + "
            "interval '10 days' WHERE job_id IN ('to-p1', 'to-p2')");
    submit(P, consume_job("to-c1", U, 60, NULL, NULL), &r);
    EXPECT(&r, "to-c1", JOB_OK, false);
    CHECK(strcmp(consumes_of("to-c1"), "to-p1:-60:~:~:to-u") == 0,
          "equal expiry: the lower lot_id goes first; entries: %s", consumes_of("to-c1"));

    step("two monthly lots, the later one granted earlier (SQL)");
    submit(P, allocate_job("to-m1", U, "basic", "2026-01"), &r);
    EXPECT(&r, "to-m1", JOB_OK, false);
    submit(P, allocate_job("to-m2", U, "basic", "2026-02"), &r);
    EXPECT(&r, "to-m2", JOB_OK, false);
    pg_exec("UPDATE credits.lots SET granted_at = (SELECT granted_at FROM credits.lots "
            "WHERE job_id = 'to-m1') - interval '1 day' WHERE job_id = 'to-m2'");
    submit(P, consume_job("to-c2", U, 240, NULL, NULL), &r);
    EXPECT(&r, "to-c2", JOB_OK, false);
    EXPECT_BALANCE(&r, 100, 0, 100);
    CHECK(strcmp(consumes_of("to-c2"),
                 "to-p1:-40:~:~:to-u,to-p2:-100:~:~:to-u,to-m2:-100:~:~:to-u") == 0,
          "packs, then the monthly lot granted first; entries: %s", consumes_of("to-c2"));
    CHECK(pg_int("SELECT remaining FROM credits.lots WHERE job_id = 'to-m1'", NULL) == 100,
          "to-m1 was touched");
    check_invariants();
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * database constraints (contract section 6)
 * ------------------------------------------------------------------------- */

static void expect_sql_refused(const char *sql)
{
    PGresult *res = PQexec(PG, sql);
    ExecStatusType st = PQresultStatus(res);
    PQclear(res);
    CHECK(st == PGRES_FATAL_ERROR, "the database accepted: %s", sql);
}

static void test_database_constraints_refuse_rows_that_break_the_invariants(void **state)
{
    (void)state;
    const char *P = "t_constraints";
    pid_t w = worker_start(P, NULL);
    struct result r;
    submit(P, purchase_job("tk-p", "tk-u", "p100", "tk-pay"), &r);
    EXPECT(&r, "tk-p", JOB_OK, false);
    submit(P, allocate_job("tk-m", "tk-u", "basic", "2026-01"), &r);
    EXPECT(&r, "tk-m", JOB_OK, false);
    stop_clean(w);
    struct digest ledger = ledger_fp();
    expect_sql_refused("UPDATE credits.lots SET remaining = granted + 1 WHERE job_id = 'tk-p'");
    expect_sql_refused("UPDATE credits.lots SET remaining = -1 WHERE job_id = 'tk-p'");
    expect_sql_refused("INSERT INTO credits.lots (user_id, kind, granted, remaining, granted_at, "
                       "expires_at, job_id, pack_id, payment_ref) VALUES ('tk-u', 'pack', 5, 5, "
                       "now(), now() + interval '1 day', 'tk-p', 'p100', 'tk-pay')");
    expect_sql_refused("INSERT INTO credits.lots (user_id, kind, granted, remaining, granted_at, "
                       "job_id, plan_id, period) VALUES ('tk-u', 'monthly', 5, 5, now(), "
                       "'tk-m', 'basic', '2026-01')");
    expect_sql_refused("INSERT INTO credits.lots (user_id, kind, granted, remaining, granted_at, "
                       "job_id) VALUES ('tk-u', 'gift', 5, 5, now(), 'tk-p')");
    expect_sql_refused("INSERT INTO credits.entries (user_id, job_id, lot_id, kind, delta) "
                       "SELECT 'tk-u', 'tk-p', lot_id, 'bonus', 1 FROM credits.lots "
                       "WHERE job_id = 'tk-p'");
    expect_sql_refused("INSERT INTO credits.jobs (job_id, type, user_id, status, result, "
                       "request) VALUES ('tk-x', 'consume', 'tk-u', 'maybe', '\\x80', '\\x80')");
    expect_sql_refused("INSERT INTO credits.jobs (job_id, type, user_id, status, result, "
                       "request) VALUES ('tk-p', 'purchase', 'tk-u', 'applied', '\\x80', "
                       "'\\x80')");
    CHECK(same(ledger, ledger_fp()), "a refused statement changed the ledger");
    check_invariants();
}

/* ---------------------------------------------------------------------------
 * running it: URLs, flags, the default consumer name, SIGINT
 * ------------------------------------------------------------------------- */

static void
test_redis_url_with_user_password_and_db_uri_database_url_and_flags_are_honoured(void **state)
{
    (void)state;
    const char *P = "t_flags";
    const char *port = getenv("CREDITS_TEST_REDIS_PORT");
    const char *pg_port = getenv("CREDITS_TEST_PG_PORT");
    CHECK(pg_port != NULL, "CREDITS_TEST_PG_PORT is not set");
    redis_ok(redis_cmd("ACL", "SETUSER", "tw-user", "reset", "on", ">tw-secret", "~*", "&*",
                       "+@all", NULL));
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const char *overrides[] = {
        "CREDITS_PREFIX=t_env_prefix",
        fmt("CREDITS_REDIS_URL=redis://tw-user:tw-secret@127.0.0.1:%s/2", port),
        fmt("CREDITS_DATABASE_URL=postgresql://postgres@127.0.0.1:%s/postgres", pg_port),
        "CREDITS_CONSUMER",
    };
    const char *args[] = {"--prefix", P, NULL};
    pid_t w = worker_spawn(P, overrides, 4, args);

    redisContext *db0 = R;
    redisContext *db2 = redisConnect("127.0.0.1", atoi(port));
    CHECK(db2 != NULL && !db2->err, "cannot connect to Redis");
    R = db2;
    redisReply *sel = redis_cmd("SELECT", "2", NULL);
    bool selected = sel->type == REDIS_REPLY_STATUS;
    freeReplyObject(sel);
    if (!selected) {
        R = db0;
        redisFree(db2);
        CHECK(false, "SELECT 2 failed");
    }
    step("a job in Redis database 2 under the --prefix of the flag");
    struct result r;
    enqueue(P, allocate_job("tf-a", "tf-u", "basic", "2026-01"));
    int64_t deadline = mono_ms() + WAIT_MS;
    while (!drained(P, DEFAULT_GROUP) && mono_ms() < deadline)
        sleep_ms(POLL_MS);
    bool ok = drained(P, DEFAULT_GROUP) && result_get(P, "tf-a", &r);
    bool consumer_named = false;
    redisReply *consumers =
        redis_cmd("XINFO", "CONSUMERS", stream_key(P, "allocate"), DEFAULT_GROUP, NULL);
    if (consumers->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < consumers->elements; i++) {
            const redisReply *name = kv_get(consumers->element[i], "name");
            if (name != NULL && strcmp(name->str, host) == 0)
                consumer_named = true;
        }
    freeReplyObject(consumers);
    bool env_prefix_used = redis_int(redis_cmd("EXISTS", "t_env_prefix:jobs:allocate", NULL)) > 0;
    R = db0;
    redisFree(db2);
    CHECK(ok,
          "the worker did not decide tf-a in database 2 with redis://user:password@host:port/2");
    EXPECT(&r, "tf-a", JOB_OK, false);
    CHECK(!env_prefix_used, "the worker used CREDITS_PREFIX although --prefix overrides it");
    CHECK(!key_exists(key(P, "result:tf-a")), "the result went to database 0");
    CHECK(consumer_named, "the default consumer name is not the host name '%s'", host);
    CHECK(job_rows("tf-a") == 1, "not in Postgres");

    step("SIGINT stops it cleanly");
    int64_t ms;
    int status = worker_signal_stop(w, SIGINT, STOP_WAIT_MS, &ms);
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the worker did not exit 0 on SIGINT (status %d)", status);
    CHECK(ms < 3000, "the worker took %" PRId64 " ms to stop on SIGINT", ms);
    redis_ok(redis_cmd("ACL", "DELUSER", "tw-user", NULL));
}

/* ---------------------------------------------------------------------------
 * entries delivered too often, entries of a dead consumer
 * ------------------------------------------------------------------------- */

static void test_entry_delivered_more_than_max_deliveries_is_dead_lettered_undecided(void **state)
{
    (void)state;
    const char *P = "t_deliveries";
    const char *C = "td-consumer";
    create_groups(P);
    struct bytes poison, fine;
    struct job pj = consume_job("td-poison", "td-u", 1, NULL, NULL);
    struct job fj = consume_job("td-fine", "td-u", 1, NULL, NULL);
    job_bytes(&pj, &poison);
    job_bytes(&fj, &fine);
    char poison_entry[64], fine_entry[64];
    xadd_raw(P, "consume", "job", poison.data, poison.len, poison_entry);
    xadd_raw(P, "consume", "job", fine.data, fine.len, fine_entry);
    read_as(P, C);
    step("the poison entry already delivered 6 times, the other twice");
    redis_ok(redis_cmd("XCLAIM", stream_key(P, "consume"), DEFAULT_GROUP, C, "0", poison_entry,
                       "RETRYCOUNT", "6", NULL));
    redis_ok(redis_cmd("XCLAIM", stream_key(P, "consume"), DEFAULT_GROUP, C, "0", fine_entry,
                       "RETRYCOUNT", "2", NULL));
    pid_t w = worker_start(P, fmt("CREDITS_CONSUMER=%s", C), "CREDITS_MAX_DELIVERIES=3", NULL);
    wait_drained(P);

    step("the poison entry: dead-lettered, acknowledged, not decided");
    expect_dead(P, "consume", poison_entry, "", poison.data, poison.len);
    CHECK(!key_exists(key(P, "result:td-poison")), "a result key for an undecided entry");
    CHECK(job_rows("td-poison") == 0, "the entry set aside was decided");
    CHECK(pending_total(P, DEFAULT_GROUP) == 0, "entries still pending");
    step("the entry under the limit: decided as usual");
    struct result r;
    result_must(P, "td-fine", &r);
    EXPECT(&r, "td-fine", JOB_ERR_INSUFFICIENT_CREDITS, false);
    CHECK(job_rows("td-fine") == 1, "td-fine not decided");
    CHECK(xlen(key(P, "dead")) == 1, "%lld dead letters, expected 1", xlen(key(P, "dead")));
    CHECK(pg_int("SELECT count(*) FROM credits.entries WHERE user_id = 'td-u'", NULL) == 0,
          "the set-aside entry changed the ledger");

    step("the job sent again is decided: its ID was never used");
    submit(P, consume_job("td-poison", "td-u", 1, NULL, NULL), &r);
    EXPECT(&r, "td-poison", JOB_ERR_INSUFFICIENT_CREDITS, false);
    stop_clean(w);
}

static void test_entries_left_pending_by_a_dead_consumer_are_taken_over(void **state)
{
    (void)state;
    const char *P = "t_claim";
    create_groups(P);
    enqueue(P, consume_job("tc-1", "tc-u", 1, NULL, NULL));
    enqueue(P, consume_job("tc-2", "tc-u", 2, NULL, NULL));
    read_as(P, "tc-dead-worker");
    CHECK(pending_total(P, DEFAULT_GROUP) == 2, "expected 2 pending entries");
    pid_t w = worker_start(P, "CREDITS_CONSUMER=tc-live", "CREDITS_CLAIM_IDLE_MS=1000", NULL);
    wait_drained(P);
    struct result r;
    result_must(P, "tc-1", &r);
    EXPECT(&r, "tc-1", JOB_ERR_INSUFFICIENT_CREDITS, false);
    result_must(P, "tc-2", &r);
    EXPECT(&r, "tc-2", JOB_ERR_INSUFFICIENT_CREDITS, false);
    stop_clean(w);
}

/* ---------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_purchase_grants_a_pack_lot_expiring_valid_days_later_once_per_payment_ref),
        T(test_allocate_grants_monthly_credits_and_forfeits_above_the_rollover_cap_oldest_first),
        T(test_consume_spends_packs_by_soonest_expiry_then_monthly_and_rejects_when_short),
        T(test_expired_pack_credits_are_neither_spent_nor_counted_and_get_an_expire_entry),
        T(test_same_job_again_replays_the_stored_result_and_changes_nothing),
        T(test_same_id_with_different_fields_is_an_id_conflict_dead_lettered),
        T(test_job_on_another_types_stream_is_wrong_stream_dead_lettered_and_not_applied),
        T(test_invalid_messages_are_invalid_job_dead_lettered_and_the_worker_keeps_serving),
        T(test_valid_jobs_at_the_limits_and_any_integer_encoding_are_decided),
        T(test_version_other_than_1_is_unsupported_version_dead_lettered),
        T(test_unstored_rejection_never_replaces_a_stored_result),
        T(test_jobs_enqueued_before_the_first_worker_start_are_processed),
        T(test_entries_pending_for_this_consumer_at_start_up_are_processed_and_acked),
        T(test_batch_max_1_decides_a_mixed_sequence_like_the_default),
        T(test_sigterm_while_idle_exits_0_promptly),
        T(test_sigterm_under_load_exits_0_and_loses_no_job),
        T(test_results_stream_carries_msgpack_results_and_keys_expire_after_result_ttl),
        T(test_two_workers_on_one_hot_user_spend_each_credit_exactly_once),
        T(test_reply_true_pushes_every_decision_with_a_readable_id_once),
        T(test_spending_order_breaks_ties_by_lot_id_and_ranks_monthly_lots_by_granted_at),
        T(test_database_constraints_refuse_rows_that_break_the_invariants),
        T(test_redis_url_with_user_password_and_db_uri_database_url_and_flags_are_honoured),
        T(test_entry_delivered_more_than_max_deliveries_is_dead_lettered_undecided),
        T(test_entries_left_pending_by_a_dead_consumer_are_taken_over),
    };
    int failed = case_filter_run("worker", tests, sizeof tests / sizeof tests[0], group_setup,
                                 group_teardown, argc, argv);
    harness_finish(failed);
    return failed;
}
