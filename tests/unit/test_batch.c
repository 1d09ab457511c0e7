/*
 * test_batch.c -- the batch planner: replays, id_conflict, in-batch
 * dedupe, payment references and lot IDs, and the rule that cutting the
 * same jobs into batches of any size gives the same results and ledger,
 * for all ten job types: holds with their captures, releases and expiry,
 * refunds of consumes and captures, revocations, grants and cancellations.
 *
 * The database is an in-memory model that loads and writes back what the
 * store does (store_model.h, after worker/daemon/store.c and rows.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "case_filter.h"
#include "core/batch.h"
#include "core/codec.h"

#define MODEL_CHECK(cond) assert_true(cond)
#include "store_model.h"

#define NOW_US INT64_C(1790000000000000)
#define US_PER_S INT64_C(1000000)
#define US_PER_HOUR (3600 * US_PER_S)
#define US_PER_DAY LEDGER_US_PER_DAY
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct batch_pack catalog_packs[] = {{"small", {100, 90}}, {"big", {1000, 30}}};
static const struct batch_plan catalog_plans[] = {{"basic", {50, 100, 0}}, {"pro", {300, 600, 0}}};

static void model_start(struct model *m)
{
    model_init(m, catalog_packs, ARRAY_LEN(catalog_packs), catalog_plans, ARRAY_LEN(catalog_plans));
}

/* ---------------------------------------------------------------------------
 * Running jobs through the model
 * ------------------------------------------------------------------------- */

/* Runs jobs[0..n) through the model in batches of at most `size` jobs, a
 * batch never spanning two times (times[i]: the database time of job i,
 * nondecreasing; NULL: all at NOW_US); collects each job's published bytes
 * into results[i] (the caller frees them). The model's full checks run
 * every `check_every` batches and at the end. */
static void run_batches_at(struct model *m, const struct job *jobs, const int64_t *times, size_t n,
                           size_t size, msgpack_sbuffer *results, size_t check_every)
{
    struct batch_job *bjs = calloc(size, sizeof *bjs);
    assert_non_null(bjs);
    size_t batches = 0;
    for (size_t start = 0; start < n;) {
        int64_t now = times != NULL ? times[start] : NOW_US;
        size_t count = 0;
        while (count < size && start + count < n &&
               (times == NULL || times[start + count] == now)) {
            bjs[count].job = jobs[start + count];
            count++;
        }
        struct batch b;
        batch_init(&b, bjs, count);
        model_load(m, &b, now);
        assert_int_equal(batch_decide(&b), 0);
        model_write(m, &b);
        model_check_last_balances(m, &b);
        if (++batches % check_every == 0)
            model_check(m);
        for (size_t i = 0; i < count; i++) {
            msgpack_sbuffer_init(&results[start + i]);
            msgpack_sbuffer_write(&results[start + i], bjs[i].encoded.data, bjs[i].encoded.size);
        }
        batch_free(&b);
        start += count;
    }
    model_check(m);
    free(bjs);
}

static void run_batches(struct model *m, const struct job *jobs, size_t n, size_t size,
                        msgpack_sbuffer *results)
{
    run_batches_at(m, jobs, NULL, n, size, results, 1);
}

static void free_results(msgpack_sbuffer *results, size_t n)
{
    for (size_t i = 0; i < n; i++)
        msgpack_sbuffer_destroy(&results[i]);
}

/* The key rule: jobs[0..n) cut into batches of each size of sizes[] give
 * the bytes and the ledger of batches of one. Leaves the run of one in
 * `one`, its published bytes in results. */
static void assert_cuts_change_nothing(const struct job *jobs, const int64_t *times, size_t n,
                                       const size_t *sizes, size_t size_count, struct model *one,
                                       msgpack_sbuffer *results, size_t check_every)
{
    model_start(one);
    run_batches_at(one, jobs, times, n, 1, results, check_every);
    msgpack_sbuffer *many = calloc(n, sizeof *many);
    assert_non_null(many);
    for (size_t s = 0; s < size_count; s++) {
        struct model cut;
        model_start(&cut);
        run_batches_at(&cut, jobs, times, n, sizes[s], many, check_every);
        for (size_t i = 0; i < n; i++) {
            if (results[i].size != many[i].size ||
                memcmp(results[i].data, many[i].data, results[i].size) != 0)
                print_message("batch size %zu: job %zu (%s) differs\n", sizes[s], i, jobs[i].id);
            assert_int_equal(results[i].size, many[i].size);
            assert_memory_equal(results[i].data, many[i].data, results[i].size);
        }
        model_check_same(one, &cut);
        free_results(many, n);
        model_free(&cut);
    }
    free(many);
}

/* Every size from 1 to n. */
static void assert_every_cut_changes_nothing(const struct job *jobs, const int64_t *times, size_t n,
                                             struct model *one, msgpack_sbuffer *results)
{
    size_t *sizes = calloc(n, sizeof *sizes);
    assert_non_null(sizes);
    for (size_t i = 0; i < n; i++)
        sizes[i] = i + 1;
    assert_cuts_change_nothing(jobs, times, n, sizes, n, one, results, 1);
    free(sizes);
}

/* ---------------------------------------------------------------------------
 * Jobs
 * ------------------------------------------------------------------------- */

static struct job job_of(enum job_type type, const char *id, const char *user)
{
    struct job j;
    memset(&j, 0, sizeof j);
    j.type = type;
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.user, sizeof j.user, "%s", user);
    return j;
}

static struct job consume(const char *id, const char *user, int64_t amount)
{
    struct job j = job_of(JOB_CONSUME, id, user);
    j.consume.amount = amount;
    return j;
}

static struct job purchase(const char *id, const char *user, const char *pack, const char *ref)
{
    struct job j = job_of(JOB_PURCHASE, id, user);
    snprintf(j.purchase.pack, sizeof j.purchase.pack, "%s", pack);
    snprintf(j.purchase.payment_ref, sizeof j.purchase.payment_ref, "%s", ref);
    return j;
}

static struct job allocate(const char *id, const char *user, const char *plan, const char *period)
{
    struct job j = job_of(JOB_ALLOCATE, id, user);
    snprintf(j.allocate.plan, sizeof j.allocate.plan, "%s", plan);
    assert_int_equal(strlen(period), JOB_PERIOD_BYTES);
    memcpy(j.allocate.period, period, JOB_PERIOD_BYTES + 1);
    return j;
}

static struct job hold(const char *id, const char *user, int64_t amount)
{
    struct job j = job_of(JOB_HOLD, id, user);
    j.hold.amount = amount;
    return j;
}

static struct job capture(const char *id, const char *user, const char *hold_id, int64_t amount)
{
    struct job j = job_of(JOB_CAPTURE, id, user);
    snprintf(j.capture.hold, sizeof j.capture.hold, "%s", hold_id);
    j.capture.amount = amount;
    return j;
}

static struct job release(const char *id, const char *user, const char *hold_id)
{
    struct job j = job_of(JOB_RELEASE, id, user);
    snprintf(j.release.hold, sizeof j.release.hold, "%s", hold_id);
    return j;
}

/* amount < 0: absent (all that is left). */
static struct job refund(const char *id, const char *user, const char *charge, int64_t amount)
{
    struct job j = job_of(JOB_REFUND, id, user);
    snprintf(j.refund.charge, sizeof j.refund.charge, "%s", charge);
    j.refund.has_amount = amount >= 0;
    j.refund.amount = amount >= 0 ? amount : 0;
    return j;
}

static struct job revoke(const char *id, const char *user, const char *ref)
{
    struct job j = job_of(JOB_REVOKE, id, user);
    snprintf(j.revoke.payment_ref, sizeof j.revoke.payment_ref, "%s", ref);
    return j;
}

static struct job grant(const char *id, const char *user, int64_t amount)
{
    struct job j = job_of(JOB_GRANT, id, user);
    j.grant.amount = amount;
    return j;
}

static struct job cancel(const char *id, const char *user, bool forfeit)
{
    struct job j = job_of(JOB_CANCEL, id, user);
    j.cancel.has_forfeit = forfeit;
    j.cancel.forfeit = forfeit;
    return j;
}

static struct result decode(const msgpack_sbuffer *bytes)
{
    struct result r;
    assert_int_equal(codec_decode_result(bytes->data, bytes->size, &r), 0);
    return r;
}

static void assert_error(const msgpack_sbuffer *bytes, enum job_error error)
{
    struct result r = decode(bytes);
    assert_string_equal(job_error_name(r.error), job_error_name(error));
}

static int64_t amount_of(const msgpack_sbuffer *bytes, enum result_amount amount)
{
    struct result r = decode(bytes);
    assert_int_equal(r.error, JOB_OK);
    return result_amount(&r, amount);
}

/* ---------------------------------------------------------------------------
 * Tests: replays, conflicts, bookkeeping
 * ------------------------------------------------------------------------- */

static void test_same_job_delivered_again_is_replayed_with_the_stored_result(void **state)
{
    (void)state;
    static struct model m;
    model_start(&m);
    struct job jobs[] = {purchase("p1", "u1", "small", "pay-1"), consume("c1", "u1", 30),
                         consume("c1", "u1", 30)};
    msgpack_sbuffer results[3];
    run_batches(&m, jobs, 1, 1, &results[0]);
    run_batches(&m, jobs + 1, 1, 1, &results[1]);
    run_batches(&m, jobs + 2, 1, 1, &results[2]);
    struct result first = decode(&results[1]), again = decode(&results[2]);
    assert_false(first.replayed);
    assert_true(again.replayed);
    assert_int_equal(again.error, JOB_OK);
    assert_int_equal(again.amounts[RESULT_CHARGED], 30);
    assert_int_equal(again.balance.total, 70);
    assert_int_equal(again.done_at_ms, first.done_at_ms);
    /* Nothing was spent twice. */
    assert_int_equal(m.lots[0].lot.remaining, 70);
    assert_int_equal(m.job_count, 2);
    free_results(results, 3);
    model_free(&m);
}

static void test_same_id_with_other_fields_is_id_conflict_and_stores_nothing(void **state)
{
    (void)state;
    static struct model m;
    model_start(&m);
    struct job jobs[] = {purchase("p1", "u1", "small", "pay-1"), consume("c1", "u1", 30),
                         consume("c1", "u1", 31), consume("c1", "u2", 30)};
    msgpack_sbuffer results[4];
    run_batches(&m, jobs, 4, 1, results);
    assert_int_equal(decode(&results[2]).error, JOB_ERR_ID_CONFLICT);
    assert_int_equal(decode(&results[3]).error, JOB_ERR_ID_CONFLICT);
    assert_int_equal(m.job_count, 2);
    assert_int_equal(m.lots[0].lot.remaining, 70);
    free_results(results, 4);
    model_free(&m);
}

static void test_reply_and_unknown_keys_do_not_make_a_conflict(void **state)
{
    (void)state;
    static struct model m;
    model_start(&m);
    struct job jobs[] = {consume("c1", "u1", 5), consume("c1", "u1", 5)};
    jobs[1].reply = true;
    msgpack_sbuffer results[2];
    run_batches(&m, jobs, 2, 1, results);
    struct result again = decode(&results[1]);
    assert_true(again.replayed);
    assert_int_equal(again.error, JOB_ERR_INSUFFICIENT_CREDITS);
    free_results(results, 2);
    model_free(&m);
}

static void test_duplicates_inside_one_batch_behave_as_if_committed_between(void **state)
{
    (void)state;
    static struct model m;
    model_start(&m);
    struct job jobs[] = {
        purchase("p1", "u1", "small", "pay-1"), purchase("p1", "u1", "small", "pay-1"),
        purchase("p2", "u1", "small", "pay-1"), consume("c1", "u1", 10), consume("c1", "u1", 11)};
    msgpack_sbuffer results[5];
    run_batches(&m, jobs, 5, 5, results);
    assert_true(decode(&results[1]).replayed);
    assert_int_equal(decode(&results[1]).amounts[RESULT_GRANTED], 100);
    assert_int_equal(decode(&results[2]).error, JOB_ERR_DUPLICATE_PAYMENT);
    assert_int_equal(decode(&results[3]).amounts[RESULT_CHARGED], 10);
    assert_int_equal(decode(&results[4]).error, JOB_ERR_ID_CONFLICT);
    assert_int_equal(m.lot_count, 1);
    assert_int_equal(m.lots[0].lot.remaining, 90);
    assert_int_equal(m.job_count, 3);
    free_results(results, 5);
    model_free(&m);
}

static void test_lot_ids_are_used_in_job_order_and_only_by_new_lots(void **state)
{
    (void)state;
    static struct model m;
    model_start(&m);
    struct job jobs[] = {purchase("p1", "u1", "nope", "pay-1"),
                         allocate("a1", "u1", "pro", "2026-01"), grant("g1", "u1", 5),
                         purchase("p2", "u2", "big", "pay-2")};
    msgpack_sbuffer results[4];
    run_batches(&m, jobs, 4, 4, results);
    assert_int_equal(decode(&results[0]).error, JOB_ERR_UNKNOWN_PACK);
    assert_int_equal(m.lot_count, 3);
    assert_int_equal(m.lots[0].lot.lot_id, 1);
    assert_int_equal(m.lots[0].lot.kind, LOT_MONTHLY);
    assert_int_equal(m.lots[1].lot.lot_id, 2);
    assert_int_equal(m.lots[1].lot.kind, LOT_GRANT);
    assert_int_equal(m.lots[2].lot.lot_id, 3);
    free_results(results, 4);
    model_free(&m);
}

static void test_a_stored_result_that_cannot_be_decoded_fails_the_batch(void **state)
{
    (void)state;
    struct batch_job bj = {.job = consume("c1", "u1", 1)};
    struct batch b;
    batch_init(&b, &bj, 1);
    b.now_us = NOW_US;
    msgpack_sbuffer request;
    msgpack_sbuffer_init(&request);
    assert_int_equal(codec_encode_request(&bj.job, &request), 0);
    assert_true(batch_set_stored(&b, "c1", request.data, request.size, "\xc1", 1));
    assert_int_equal(batch_decide(&b), -1);
    msgpack_sbuffer_destroy(&request);
    batch_free(&b);
}

/* What the batch asks the store for covers the new types' keys: the holds
 * captures and releases name, the charges refunds name, the payment
 * references revokes name; new lots for grants. */
static void test_the_new_types_ask_for_their_holds_charges_and_payments(void **state)
{
    (void)state;
    struct batch_job bjs[] = {
        {.job = capture("c1", "u1", "h2", 5)}, {.job = release("r1", "u2", "h1")},
        {.job = refund("f1", "u1", "k1", -1)}, {.job = revoke("v1", "u3", "pay-9")},
        {.job = grant("g1", "u1", 5)},         {.job = cancel("x1", "u1", true)},
        {.job = hold("h3", "u1", 5)},          {.job = purchase("p1", "u1", "small", "pay-1")},
    };
    struct batch b;
    batch_init(&b, bjs, ARRAY_LEN(bjs));
    const char *keys[ARRAY_LEN(bjs)];
    assert_int_equal(batch_need_keys(&b, NEED_HOLD, keys), 2);
    assert_string_equal(keys[0], "h1");
    assert_string_equal(keys[1], "h2");
    assert_int_equal(batch_need_keys(&b, NEED_CHARGE, keys), 1);
    assert_string_equal(keys[0], "k1");
    assert_int_equal(batch_need_keys(&b, NEED_PAYMENT_REF, keys), 2);
    assert_string_equal(keys[0], "pay-1");
    assert_string_equal(keys[1], "pay-9");
    assert_int_equal(batch_new_lot_count(&b), 2); /* the grant and the purchase */
    assert_int_equal(batch_users(&b, keys), 3);
    batch_free(&b);
}

/* Spent monthly lots are read only for the users of the allocates, from
 * the earliest period they ask for. */
static void test_spent_monthly_lots_are_asked_for_the_allocating_users_only(void **state)
{
    (void)state;
    struct batch_job bjs[] = {
        {.job = consume("c1", "u1", 1)},           {.job = allocate("a1", "u3", "pro", "2024-06")},
        {.job = consume("c2", "u2", 1)},           {.job = allocate("a2", "u1", "pro", "2024-05")},
        {.job = allocate("a3", "u3", "pro", "2024-07")},
    };
    struct batch b;
    batch_init(&b, bjs, ARRAY_LEN(bjs));
    const char *keys[ARRAY_LEN(bjs)];
    assert_string_equal(batch_monthly_from_period(&b), "2024-05");
    assert_int_equal(batch_monthly_users(&b, keys), 2);
    assert_string_equal(keys[0], "u1");
    assert_string_equal(keys[1], "u3");
    batch_free(&b);

    batch_init(&b, bjs, 1); /* a consume alone */
    assert_null(batch_monthly_from_period(&b));
    assert_int_equal(batch_monthly_users(&b, keys), 0);
    batch_free(&b);
}

/* ---------------------------------------------------------------------------
 * Tests: the new types, cut every way
 * ------------------------------------------------------------------------- */

static void test_hold_then_capture_is_the_same_in_every_cut(void **state)
{
    (void)state;
    static struct model m;
    struct job jobs[] = {
        purchase("p1", "u1", "small", "pay-1"),
        hold("h1", "u1", 60),
        consume("x1", "u1", 41),
        capture("c1", "u1", "h1", 25),
        consume("x2", "u1", 70),
        capture("c2", "u1", "h1", 1),
    };
    msgpack_sbuffer results[ARRAY_LEN(jobs)];
    assert_every_cut_changes_nothing(jobs, NULL, ARRAY_LEN(jobs), &m, results);
    assert_int_equal(amount_of(&results[1], RESULT_HELD), 60);
    assert_error(&results[2], JOB_ERR_INSUFFICIENT_CREDITS); /* held credits are not usable */
    assert_int_equal(amount_of(&results[3], RESULT_CHARGED), 25);
    assert_int_equal(amount_of(&results[3], RESULT_RELEASED), 35);
    struct result spent = decode(&results[4]);
    assert_int_equal(spent.error, JOB_OK);
    assert_int_equal(spent.balance.total, 5);
    assert_int_equal(spent.balance.held, 0);
    assert_error(&results[5], JOB_ERR_HOLD_CLOSED);
    const struct model_hold *h = model_find_hold(&m, "h1");
    assert_non_null(h);
    assert_int_equal(h->status, HOLD_CAPTURED);
    assert_int_equal(h->captured, 25);
    assert_string_equal(h->closed_by, "c1");
    free_results(results, ARRAY_LEN(jobs));
    model_free(&m);
}

static void test_consume_then_refunds_are_the_same_in_every_cut(void **state)
{
    (void)state;
    static struct model m;
    struct job jobs[] = {
        purchase("p1", "u1", "small", "pay-1"),
        allocate("a1", "u1", "basic", "2026-01"),
        consume("c1", "u1", 120),
        refund("r1", "u1", "c1", 30),
        refund("r2", "u1", "c1", -1),
        refund("r3", "u1", "c1", -1),
        refund("r4", "u1", "c1", 1),
        consume("c2", "u1", 150),
        refund("r5", "u1", "c2", 200),
    };
    msgpack_sbuffer results[ARRAY_LEN(jobs)];
    assert_every_cut_changes_nothing(jobs, NULL, ARRAY_LEN(jobs), &m, results);
    assert_int_equal(amount_of(&results[3], RESULT_REFUNDED), 30);
    assert_int_equal(amount_of(&results[4], RESULT_REFUNDED), 90); /* all that is left */
    assert_error(&results[5], JOB_ERR_REFUND_EXCEEDS_CHARGE);
    assert_error(&results[6], JOB_ERR_REFUND_EXCEEDS_CHARGE);
    assert_int_equal(decode(&results[7]).balance.total, 0);
    assert_error(&results[8], JOB_ERR_REFUND_EXCEEDS_CHARGE);
    /* The consume took the pack (100) then the monthly lot (20); the first
     * refund gave the monthly lot its 20 and the pack 10. */
    assert_int_equal(model_entries_sum(&m, ENTRY_REFUND, "c1", true), 120);
    free_results(results, ARRAY_LEN(jobs));
    model_free(&m);
}

static void test_purchase_then_revoke_is_the_same_in_every_cut(void **state)
{
    (void)state;
    static struct model m;
    struct job jobs[] = {
        purchase("p1", "u1", "small", "pay-1"),
        consume("c1", "u1", 30),
        revoke("v1", "u1", "pay-1"),
        revoke("v2", "u1", "pay-1"),
        revoke("v3", "u2", "pay-1"),
        revoke("v4", "u1", "pay-7"),
        refund("r1", "u1", "c1", -1),
        purchase("p2", "u1", "small", "pay-1"),
        grant("g1", "u1", 10),
        consume("c2", "u1", 11),
    };
    msgpack_sbuffer results[ARRAY_LEN(jobs)];
    assert_every_cut_changes_nothing(jobs, NULL, ARRAY_LEN(jobs), &m, results);
    assert_int_equal(amount_of(&results[2], RESULT_REVOKED), 70);
    assert_error(&results[3], JOB_ERR_ALREADY_REVOKED);
    assert_error(&results[4], JOB_ERR_UNKNOWN_PAYMENT); /* another user's pack */
    assert_error(&results[5], JOB_ERR_UNKNOWN_PAYMENT);
    struct result back = decode(&results[6]);
    assert_int_equal(back.amounts[RESULT_REFUNDED], 30); /* back, and revoked at once */
    assert_int_equal(back.balance.total, 0);
    assert_error(&results[7], JOB_ERR_DUPLICATE_PAYMENT); /* a payment grants once */
    assert_error(&results[9], JOB_ERR_INSUFFICIENT_CREDITS);
    assert_true(m.lots[0].lot.revoked);
    assert_int_equal(m.lots[0].lot.remaining, 0);
    assert_int_equal(model_entries_sum(&m, ENTRY_REVOKE, "r1", false), -30);
    free_results(results, ARRAY_LEN(jobs));
    model_free(&m);
}

/* Hold, capture, release and a refund of the capture in one batch or any
 * other cut. */
static void test_hold_release_and_refund_of_the_capture_are_the_same_in_every_cut(void **state)
{
    (void)state;
    static struct model m;
    struct job jobs[] = {
        purchase("p1", "u1", "small", "pay-1"),
        hold("h1", "u1", 50),
        capture("c1", "u1", "h1", 20),
        hold("h2", "u1", 10),
        release("l1", "u1", "h2"),
        refund("r1", "u1", "c1", -1),
        release("l2", "u1", "h1"),
        capture("c2", "u1", "h2", 0),
        refund("r2", "u1", "h1", -1),
        refund("r3", "u1", "l1", -1),
        capture("c3", "u1", "h9", 0),
    };
    msgpack_sbuffer results[ARRAY_LEN(jobs)];
    assert_every_cut_changes_nothing(jobs, NULL, ARRAY_LEN(jobs), &m, results);
    assert_int_equal(amount_of(&results[2], RESULT_CHARGED), 20);
    assert_int_equal(amount_of(&results[2], RESULT_RELEASED), 30);
    assert_int_equal(amount_of(&results[4], RESULT_RELEASED), 10);
    struct result r1 = decode(&results[5]);
    assert_int_equal(r1.amounts[RESULT_REFUNDED], 20);
    assert_int_equal(r1.balance.total, 100);
    assert_error(&results[6], JOB_ERR_HOLD_CLOSED);
    assert_error(&results[7], JOB_ERR_HOLD_CLOSED);
    assert_error(&results[8], JOB_ERR_UNKNOWN_CHARGE); /* a hold is not a charge */
    assert_error(&results[9], JOB_ERR_UNKNOWN_CHARGE); /* nor a release */
    assert_error(&results[10], JOB_ERR_UNKNOWN_HOLD);
    const struct model_hold *h2 = model_find_hold(&m, "h2");
    assert_int_equal(h2->status, HOLD_RELEASED);
    assert_string_equal(h2->closed_by, "l1");
    free_results(results, ARRAY_LEN(jobs));
    model_free(&m);
}

/* A hold expires by the database's time: the next job of its user (or its
 * own capture) releases it, under the hold's ID, closed by no job. */
static void test_hold_expiry_is_the_same_in_every_cut(void **state)
{
    (void)state;
    static struct model m;
    struct job jobs[] = {
        purchase("p1", "u1", "small", "pay-1"),
        hold("h1", "u1", 60),
        hold("h2", "u1", 30),
        consume("x1", "u2", 1), /* another user's job releases nothing of u1's */
        capture("c1", "u1", "h1", 10),
        release("l1", "u1", "h2"),
        consume("x2", "u1", 100),
    };
    jobs[1].hold.has_ttl = true;
    jobs[1].hold.ttl = 60;
    jobs[2].hold.has_ttl = true;
    jobs[2].hold.ttl = 61;
    const int64_t t0 = NOW_US, t1 = NOW_US + 60 * US_PER_S;
    const int64_t times[] = {t0, t0, t0, t1, t1, t1, t1};
    msgpack_sbuffer results[ARRAY_LEN(jobs)];
    assert_every_cut_changes_nothing(jobs, times, ARRAY_LEN(jobs), &m, results);
    assert_int_equal(amount_of(&results[1], RESULT_HOLD_EXPIRES_AT), t1 / 1000);
    struct result late = decode(&results[4]);
    assert_int_equal(late.error, JOB_ERR_HOLD_EXPIRED); /* now >= expires_at */
    assert_int_equal(amount_of(&results[5], RESULT_RELEASED), 30);
    assert_int_equal(decode(&results[6]).balance.total, 0);
    const struct model_hold *h1 = model_find_hold(&m, "h1");
    assert_int_equal(h1->status, HOLD_EXPIRED);
    assert_null(h1->closed_by);
    /* Its release entries are written under its own ID, in c1's transaction. */
    assert_int_equal(model_entries_sum(&m, ENTRY_RELEASE, "h1", false), 60);
    for (size_t i = 0; i < m.entry_count; i++)
        if (m.entries[i].kind == ENTRY_RELEASE && strcmp(m.entries[i].job_id, "h1") == 0)
            assert_string_equal(m.entries[i].writer, "c1");
    free_results(results, ARRAY_LEN(jobs));
    model_free(&m);
}

/* Another user's hold and charge count as none, whether that user is in
 * the batch or not (the store loads what a job names, of whichever user). */
static void test_another_users_hold_and_charge_count_as_none_in_every_cut(void **state)
{
    (void)state;
    static struct model m;
    struct job jobs[] = {
        purchase("p1", "u1", "small", "pay-1"),
        hold("h1", "u1", 40),
        consume("c1", "u1", 10),
        capture("x1", "u2", "h1", 5),
        release("x2", "u2", "h1"),
        refund("x3", "u2", "c1", -1),
        capture("x4", "u1", "h1", 40),
        refund("x5", "u2", "x4", 1),
        refund("x6", "u1", "x4", 1),
    };
    msgpack_sbuffer results[ARRAY_LEN(jobs)];
    assert_every_cut_changes_nothing(jobs, NULL, ARRAY_LEN(jobs), &m, results);
    assert_error(&results[3], JOB_ERR_UNKNOWN_HOLD);
    assert_error(&results[4], JOB_ERR_UNKNOWN_HOLD);
    assert_error(&results[5], JOB_ERR_UNKNOWN_CHARGE);
    assert_int_equal(amount_of(&results[6], RESULT_CHARGED), 40);
    assert_error(&results[7], JOB_ERR_UNKNOWN_CHARGE);
    assert_int_equal(amount_of(&results[8], RESULT_REFUNDED), 1);
    free_results(results, ARRAY_LEN(jobs));
    model_free(&m);
}

static void test_grant_and_cancel_are_the_same_in_every_cut(void **state)
{
    (void)state;
    static struct model m;
    struct job jobs[] = {
        cancel("k0", "u1", false),
        allocate("a1", "u1", "basic", "2026-01"),
        grant("g1", "u1", 30),
        grant("g2", "u1", 20),
        cancel("k1", "u1", true),
        cancel("k2", "u1", false),
        allocate("a2", "u1", "basic", "2026-01"),
        allocate("a3", "u1", "pro", "2026-02"),
        consume("c1", "u1", 330),
    };
    jobs[2].grant.has_reason = true;
    strcpy(jobs[2].grant.reason, "support");
    jobs[3].grant.has_valid_days = true;
    jobs[3].grant.valid_days = 2;
    const int64_t t0 = NOW_US, t1 = NOW_US + 2 * US_PER_DAY;
    const int64_t times[] = {t0, t0, t0, t0, t0, t0, t0, t0, t1};
    msgpack_sbuffer results[ARRAY_LEN(jobs)];
    assert_every_cut_changes_nothing(jobs, times, ARRAY_LEN(jobs), &m, results);
    assert_error(&results[0], JOB_ERR_NO_PLAN);
    assert_int_equal(amount_of(&results[3], RESULT_EXPIRES_AT), (t0 + 2 * US_PER_DAY) / 1000);
    struct result k1 = decode(&results[4]);
    assert_int_equal(k1.amounts[RESULT_FORFEITED], 50);
    assert_int_equal(k1.balance.monthly, 0);
    assert_int_equal(k1.balance.grant, 50);
    assert_error(&results[5], JOB_ERR_NO_PLAN);
    assert_error(&results[6], JOB_ERR_ALREADY_ALLOCATED);
    /* Subscribed again; the expiring grant is gone two days later. */
    struct result c1 = decode(&results[8]);
    assert_int_equal(c1.error, JOB_OK);
    assert_int_equal(c1.balance.total, 0);
    assert_string_equal(m.accounts[0].plan, "pro");
    for (size_t i = 0; i < m.entry_count; i++)
        if (m.entries[i].kind == ENTRY_GRANT && strcmp(m.entries[i].job_id, "g1") == 0)
            assert_string_equal(m.entries[i].ref, "support");
    free_results(results, ARRAY_LEN(jobs));
    model_free(&m);
}

/* For each new type: the same job again is a replay of the stored result
 * (nothing decided twice), another job under its ID an id_conflict, an
 * absent optional key against a present one included. */
static void test_replays_and_conflicts_of_the_new_types_in_every_cut(void **state)
{
    (void)state;
    static struct model m;
    struct job jobs[] = {
        purchase("p1", "u1", "small", "pay-1"),
        hold("h1", "u1", 20),
        hold("h1", "u1", 20),
        hold("h1", "u1", 20),
        capture("c1", "u1", "h1", 5),
        capture("c1", "u1", "h1", 5),
        capture("c1", "u1", "h1", 6),
        hold("h2", "u1", 5),
        release("l1", "u1", "h2"),
        release("l1", "u1", "h2"),
        release("l1", "u1", "h1"),
        refund("r1", "u1", "c1", -1),
        refund("r1", "u1", "c1", -1),
        refund("r1", "u1", "c1", 5),
        revoke("v1", "u1", "pay-1"),
        revoke("v1", "u1", "pay-1"),
        revoke("v1", "u2", "pay-1"),
        grant("g1", "u1", 7),
        grant("g1", "u1", 7),
        grant("g1", "u1", 7),
        cancel("k1", "u1", false),
        cancel("k1", "u1", false),
        cancel("k1", "u1", false),
    };
    jobs[3].hold.has_ttl = true; /* the default ttl, present: another job */
    jobs[3].hold.ttl = 3600;
    jobs[19].grant.has_reason = true; /* "" is not absent */
    jobs[22].cancel.has_forfeit = true;
    jobs[9].reply = true; /* reply is not compared */
    msgpack_sbuffer results[ARRAY_LEN(jobs)];
    assert_every_cut_changes_nothing(jobs, NULL, ARRAY_LEN(jobs), &m, results);
    static const size_t replays[] = {2, 5, 9, 12, 15, 18, 21};
    static const size_t conflicts[] = {3, 6, 10, 13, 16, 19, 22};
    for (size_t i = 0; i < ARRAY_LEN(replays); i++) {
        struct result again = decode(&results[replays[i]]),
                      first = decode(&results[replays[i] - 1]);
        assert_true(again.replayed);
        assert_false(first.replayed);
        again.replayed = false;
        msgpack_sbuffer bytes;
        msgpack_sbuffer_init(&bytes);
        assert_int_equal(codec_encode_result(&again, &bytes), 0);
        assert_int_equal(bytes.size, results[replays[i] - 1].size);
        assert_memory_equal(bytes.data, results[replays[i] - 1].data, bytes.size);
        msgpack_sbuffer_destroy(&bytes);
        assert_error(&results[conflicts[i]], JOB_ERR_ID_CONFLICT);
    }
    assert_int_equal(m.job_count, 9); /* p1 h1 c1 h2 l1 r1 v1 g1 k1 */
    assert_int_equal(model_entries_sum(&m, ENTRY_HOLD, "h1", false), -20);
    assert_int_equal(model_entries_sum(&m, ENTRY_REFUND, "c1", true), 5);
    free_results(results, ARRAY_LEN(jobs));
    model_free(&m);
}

/* ---------------------------------------------------------------------------
 * Tests: long random mixes of every type
 * ------------------------------------------------------------------------- */

/* The index of a random earlier job of `type` (of `user`'s, mostly), or
 * SIZE_MAX for none. */
static size_t pick_earlier(const struct job *jobs, size_t i, enum job_type type, const char *user)
{
    size_t candidates[32], n = 0;
    bool same_user = rand() % 5 != 0;
    for (size_t k = i; k-- > 0 && n < ARRAY_LEN(candidates);)
        if (jobs[k].type == type && (!same_user || strcmp(jobs[k].user, user) == 0))
            candidates[n++] = k;
    if (n == 0 || rand() % 15 == 0)
        return SIZE_MAX;
    return candidates[rand() % n];
}

/* An ID of an earlier job of `type`, or one that names nothing. */
static void earlier_id(const struct job *jobs, size_t i, enum job_type type, const char *user,
                       char *out, size_t out_size, size_t *index)
{
    *index = pick_earlier(jobs, i, type, user);
    if (*index == SIZE_MAX)
        snprintf(out, out_size, "none-%d", rand() % 4);
    else
        snprintf(out, out_size, "%s", jobs[*index].id);
}

/* Changes one field the contract compares for id_conflict. */
static void change_a_field(struct job *j)
{
    switch (j->type) {
    case JOB_CONSUME:
        j->consume.amount += 1;
        break;
    case JOB_PURCHASE:
        j->purchase.pack[0] ^= 1;
        break;
    case JOB_ALLOCATE:
        j->allocate.period[6] = j->allocate.period[6] == '1' ? '2' : '1';
        break;
    case JOB_HOLD:
        j->hold.has_ttl = !j->hold.has_ttl;
        j->hold.ttl = 3600;
        break;
    case JOB_CAPTURE:
        j->capture.amount += 1;
        break;
    case JOB_RELEASE:
        j->release.hold[0] ^= 1;
        break;
    case JOB_REFUND:
        j->refund.has_amount = !j->refund.has_amount;
        j->refund.amount = 1;
        break;
    case JOB_REVOKE:
        j->revoke.payment_ref[0] ^= 1;
        break;
    case JOB_GRANT:
        j->grant.has_reason = !j->grant.has_reason;
        j->grant.reason[0] = '\0';
        break;
    case JOB_CANCEL:
        j->cancel.has_forfeit = !j->cancel.has_forfeit;
        j->cancel.forfeit = false;
        break;
    }
}

/* A new job of a random type for job i; earlier jobs give the names. */
static struct job random_job(const struct job *jobs, size_t i, const char *id, const char *user)
{
    static const char *packs[] = {"small", "big", "gone"};
    static const char *plans[] = {"basic", "pro", "gone"};
    static const int64_t ttls[] = {60, 600, 7200, 86400};
    char name[JOB_ID_BYTES_MAX + 1];
    size_t at;
    int kind = rand() % 20;
    if (kind < 5)
        return consume(id, user, 1 + rand() % 120);
    if (kind < 7) {
        snprintf(name, sizeof name, "pay-%d", rand() % 40);
        return purchase(id, user, packs[rand() % 3], name);
    }
    if (kind < 8) {
        snprintf(name, sizeof name, "2026-%02d", 1 + rand() % 12);
        return allocate(id, user, plans[rand() % 3], name);
    }
    if (kind < 10) {
        struct job j = hold(id, user, 1 + rand() % 150);
        j.hold.has_ttl = rand() % 3 != 0;
        j.hold.ttl = ttls[rand() % 4];
        j.hold.has_tool = rand() % 2;
        strcpy(j.hold.tool, "render");
        return j;
    }
    if (kind < 12) {
        earlier_id(jobs, i, JOB_HOLD, user, name, sizeof name, &at);
        int64_t most = at == SIZE_MAX ? 100 : jobs[at].hold.amount + 2;
        return capture(id, user, name, rand() % (most + 1));
    }
    if (kind < 13) {
        earlier_id(jobs, i, JOB_HOLD, user, name, sizeof name, &at);
        return release(id, user, name);
    }
    if (kind < 15) {
        earlier_id(jobs, i, rand() % 3 == 0 ? JOB_CAPTURE : JOB_CONSUME, user, name, sizeof name,
                   &at);
        return refund(id, user, name, rand() % 3 == 0 ? -1 : 1 + rand() % 60);
    }
    if (kind < 16) {
        snprintf(name, sizeof name, "pay-%d", rand() % 40);
        return revoke(id, user, name);
    }
    if (kind < 18) {
        struct job j = grant(id, user, 1 + rand() % 200);
        j.grant.has_valid_days = rand() % 2;
        j.grant.valid_days = 1 + rand() % 20;
        j.grant.has_reason = rand() % 2;
        strcpy(j.grant.reason, "bonus");
        return j;
    }
    return cancel(id, user, rand() % 2);
}

/* A random mix of all ten types: several users (one hot), replays and
 * conflicts, unknown catalog entries and names, reused payment references;
 * the clock moves on now and then (times[]; NULL: it never does). */
static void random_jobs(struct job *jobs, int64_t *times, size_t n, unsigned seed, int move_one_in)
{
    srand(seed);
    static const char *users[] = {"hot", "hot", "hot", "u1", "u2", "u3", "u4"};
    int64_t now = NOW_US;
    for (size_t i = 0; i < n; i++) {
        if (times != NULL) {
            if (rand() % move_one_in == 0)
                now += rand() % 4 == 0 ? (1 + rand() % 10) * US_PER_DAY
                                       : (1 + rand() % 120) * 60 * US_PER_S;
            times[i] = now;
        }
        char id[32];
        snprintf(id, sizeof id, "job-%zu", i);
        const char *user = users[rand() % 7];
        if (i > 0 && rand() % 8 == 0) {
            jobs[i] = jobs[rand() % i]; /* a replay */
            if (rand() % 3 == 0)
                change_a_field(&jobs[i]); /* an id_conflict */
            continue;
        }
        jobs[i] = random_job(jobs, i, id, user);
    }
}

/* How often each outcome of each type came up. */
static void count_outcomes(const msgpack_sbuffer *results, const struct job *jobs, size_t n,
                           size_t counts[JOB_TYPE_COUNT][JOB_ERROR_COUNT], size_t *replays)
{
    memset(counts, 0, sizeof(size_t) * JOB_TYPE_COUNT * JOB_ERROR_COUNT);
    *replays = 0;
    for (size_t i = 0; i < n; i++) {
        struct result r = decode(&results[i]);
        *replays += r.replayed;
        counts[jobs[i].type][r.error]++;
    }
}

static void test_batch_size_does_not_change_any_result_or_the_ledger(void **state)
{
    (void)state;
    enum { N = 1500 };
    static struct job jobs[N];
    static msgpack_sbuffer one[N];
    static struct model m1;
    static const size_t sizes[] = {2, 3, 7, 64, 256, N};
    random_jobs(jobs, NULL, N, 20261124, 1);
    assert_cuts_change_nothing(jobs, NULL, N, sizes, ARRAY_LEN(sizes), &m1, one, 100);
    /* The mix exercised what it should. */
    size_t c[JOB_TYPE_COUNT][JOB_ERROR_COUNT], replays;
    count_outcomes(one, jobs, N, c, &replays);
    assert_true(replays > 50);
    size_t conflicts = 0;
    for (size_t t = 0; t < JOB_TYPE_COUNT; t++) {
        assert_true(c[t][JOB_OK] > 5);
        conflicts += c[t][JOB_ERR_ID_CONFLICT];
    }
    assert_true(conflicts > 10);
    assert_true(c[JOB_CONSUME][JOB_ERR_INSUFFICIENT_CREDITS] > 20);
    assert_true(c[JOB_HOLD][JOB_ERR_INSUFFICIENT_CREDITS] > 5);
    assert_true(c[JOB_PURCHASE][JOB_ERR_DUPLICATE_PAYMENT] > 10);
    assert_true(c[JOB_CAPTURE][JOB_ERR_UNKNOWN_HOLD] > 5);
    assert_true(c[JOB_CAPTURE][JOB_ERR_HOLD_CLOSED] > 5);
    assert_true(c[JOB_CAPTURE][JOB_ERR_CAPTURE_EXCEEDS_HOLD] > 0);
    assert_true(c[JOB_RELEASE][JOB_ERR_HOLD_CLOSED] > 0);
    assert_true(c[JOB_REFUND][JOB_ERR_UNKNOWN_CHARGE] > 5);
    assert_true(c[JOB_REFUND][JOB_ERR_REFUND_EXCEEDS_CHARGE] > 5);
    assert_true(c[JOB_REVOKE][JOB_ERR_UNKNOWN_PAYMENT] > 5);
    assert_true(c[JOB_REVOKE][JOB_ERR_ALREADY_REVOKED] > 0);
    assert_true(c[JOB_CANCEL][JOB_ERR_NO_PLAN] > 5);
    free_results(one, N);
    model_free(&m1);
}

/* The same with the clock moving: holds and lots expire between batches
 * (a batch never spans two times). */
static void test_batch_size_changes_nothing_while_holds_and_lots_expire(void **state)
{
    (void)state;
    enum { N = 1200 };
    static struct job jobs[N];
    static int64_t times[N];
    static msgpack_sbuffer one[N];
    static struct model m1;
    static const size_t sizes[] = {2, 5, 16, 100, N};
    random_jobs(jobs, times, N, 7, 40);
    assert_cuts_change_nothing(jobs, times, N, sizes, ARRAY_LEN(sizes), &m1, one, 100);
    size_t c[JOB_TYPE_COUNT][JOB_ERROR_COUNT], replays;
    count_outcomes(one, jobs, N, c, &replays);
    assert_true(c[JOB_CAPTURE][JOB_ERR_HOLD_EXPIRED] + c[JOB_RELEASE][JOB_ERR_HOLD_EXPIRED] > 5);
    size_t expired_holds = 0, expiries = 0, give_backs_left = 0;
    for (size_t i = 0; i < m1.hold_count; i++)
        expired_holds += m1.holds[i].status == HOLD_EXPIRED;
    for (size_t i = 0; i < m1.entry_count; i++) {
        const struct model_entry *e = &m1.entries[i];
        expiries += e->kind == ENTRY_EXPIRE && e->origin == NULL;
        give_backs_left += (e->kind == ENTRY_EXPIRE || e->kind == ENTRY_REVOKE) && e->origin;
    }
    assert_true(expired_holds > 10 && expiries > 10 && give_backs_left > 5);
    free_results(one, N);
    model_free(&m1);
}

/* Every batch size from 1 to all, on a shorter mix. */
static void test_every_batch_size_gives_the_same_on_a_short_mix(void **state)
{
    (void)state;
    enum { N = 120 };
    static struct job jobs[N];
    static int64_t times[N];
    static msgpack_sbuffer one[N];
    static struct model m1;
    random_jobs(jobs, times, N, 99, 30);
    assert_every_cut_changes_nothing(jobs, times, N, &m1, one);
    free_results(one, N);
    model_free(&m1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_job_delivered_again_is_replayed_with_the_stored_result),
        cmocka_unit_test(test_same_id_with_other_fields_is_id_conflict_and_stores_nothing),
        cmocka_unit_test(test_reply_and_unknown_keys_do_not_make_a_conflict),
        cmocka_unit_test(test_duplicates_inside_one_batch_behave_as_if_committed_between),
        cmocka_unit_test(test_lot_ids_are_used_in_job_order_and_only_by_new_lots),
        cmocka_unit_test(test_a_stored_result_that_cannot_be_decoded_fails_the_batch),
        cmocka_unit_test(test_the_new_types_ask_for_their_holds_charges_and_payments),
        cmocka_unit_test(test_spent_monthly_lots_are_asked_for_the_allocating_users_only),
        cmocka_unit_test(test_hold_then_capture_is_the_same_in_every_cut),
        cmocka_unit_test(test_consume_then_refunds_are_the_same_in_every_cut),
        cmocka_unit_test(test_purchase_then_revoke_is_the_same_in_every_cut),
        cmocka_unit_test(test_hold_release_and_refund_of_the_capture_are_the_same_in_every_cut),
        cmocka_unit_test(test_hold_expiry_is_the_same_in_every_cut),
        cmocka_unit_test(test_another_users_hold_and_charge_count_as_none_in_every_cut),
        cmocka_unit_test(test_grant_and_cancel_are_the_same_in_every_cut),
        cmocka_unit_test(test_replays_and_conflicts_of_the_new_types_in_every_cut),
        cmocka_unit_test(test_batch_size_does_not_change_any_result_or_the_ledger),
        cmocka_unit_test(test_batch_size_changes_nothing_while_holds_and_lots_expire),
        cmocka_unit_test(test_every_batch_size_gives_the_same_on_a_short_mix),
    };
    return case_filter_run("batch", tests, sizeof tests / sizeof tests[0], NULL, NULL, argc, argv);
}
