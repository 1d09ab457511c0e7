/*
 * test_batch.c -- the batch planner: replays, id_conflict, in-batch
 * dedupe, payment references and lot IDs, and the rule that cutting the
 * same jobs into batches of any size gives the same results and ledger.
 *
 * The database is an in-memory model that loads and writes back exactly
 * what the store does (worker/daemon/store.c).
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

#define NOW_US INT64_C(1790000000000000)
#define MODEL_JOBS_MAX 4096
#define MODEL_LOTS_MAX 4096

/* ---------------------------------------------------------------------------
 * The model database
 * ------------------------------------------------------------------------- */

struct model_job {
    char id[JOB_ID_BYTES_MAX + 1];
    msgpack_sbuffer request;
    msgpack_sbuffer result;
};

struct model_lot {
    char user[JOB_USER_BYTES_MAX + 1];
    struct lot lot;
    char payment_ref[JOB_PAYMENT_REF_BYTES_MAX + 1];
    int64_t entries_sum;
};

struct model {
    struct model_job jobs[MODEL_JOBS_MAX];
    size_t job_count;
    struct model_lot lots[MODEL_LOTS_MAX];
    size_t lot_count;
    int64_t next_lot_id;
};

static const struct batch_pack catalog_packs[] = {{"small", {100, 90}}, {"big", {1000, 30}}};
static const struct batch_plan catalog_plans[] = {{"basic", {50, 100}}, {"pro", {300, 600}}};

static void model_init(struct model *m)
{
    memset(m, 0, sizeof *m);
    m->next_lot_id = 1;
}

static void model_free(struct model *m)
{
    for (size_t i = 0; i < m->job_count; i++) {
        msgpack_sbuffer_destroy(&m->jobs[i].request);
        msgpack_sbuffer_destroy(&m->jobs[i].result);
    }
}

static void model_load(struct model *m, struct batch *b)
{
    b->now_us = NOW_US;
    for (size_t i = 0; i < m->job_count; i++) {
        const struct model_job *mj = &m->jobs[i];
        for (size_t k = 0; k < b->job_count; k++) {
            if (strcmp(b->jobs[k].job.id, mj->id) == 0) {
                assert_true(batch_set_stored(b, mj->id, mj->request.data, mj->request.size,
                                             mj->result.data, mj->result.size));
                break;
            }
        }
    }
    for (size_t i = 0; i < m->lot_count; i++) {
        const struct model_lot *ml = &m->lots[i];
        bool wanted = ml->lot.remaining > 0 || ml->lot.kind == LOT_MONTHLY;
        if (wanted && batch_account(b, ml->user))
            assert_true(batch_add_lot(b, ml->user, &ml->lot));
        if (ml->lot.kind == LOT_PACK)
            batch_add_payment(b, ml->payment_ref, ml->user, ml->lot.lot_id);
    }
    for (size_t i = 0; i < 2; i++) {
        batch_add_pack(b, catalog_packs[i].id, &catalog_packs[i].info);
        batch_add_plan(b, catalog_plans[i].id, &catalog_plans[i].info);
    }
    for (size_t i = 0; i < batch_new_lot_count(b); i++)
        batch_add_lot_id(b, m->next_lot_id++);
}

static struct model_lot *model_find_lot(struct model *m, int64_t lot_id)
{
    for (size_t i = 0; i < m->lot_count; i++)
        if (m->lots[i].lot.lot_id == lot_id)
            return &m->lots[i];
    return NULL;
}

static void model_write(struct model *m, const struct batch *b)
{
    for (size_t i = 0; i < b->job_count; i++) {
        const struct batch_job *bj = &b->jobs[i];
        if (bj->outcome != BATCH_DECIDED)
            continue;
        assert_true(m->job_count < MODEL_JOBS_MAX);
        struct model_job *mj = &m->jobs[m->job_count++];
        strcpy(mj->id, bj->job.id);
        msgpack_sbuffer_init(&mj->request);
        msgpack_sbuffer_init(&mj->result);
        msgpack_sbuffer_write(&mj->request, bj->request.data, bj->request.size);
        msgpack_sbuffer_write(&mj->result, bj->encoded.data, bj->encoded.size);
    }
    for (size_t a = 0; a < b->account_count; a++) {
        const struct account *account = &b->accounts[a];
        for (size_t l = 0; l < account->lot_count; l++) {
            const struct lot *lot = &account->lots[l];
            if (lot->is_new) {
                assert_true(m->lot_count < MODEL_LOTS_MAX);
                struct model_lot *ml = &m->lots[m->lot_count++];
                memset(ml, 0, sizeof *ml);
                strcpy(ml->user, account->user);
                ml->lot = *lot;
                ml->lot.is_new = ml->lot.changed = false;
                strcpy(ml->payment_ref, b->jobs[lot->job_index].job.purchase.payment_ref);
            } else if (lot->changed) {
                struct model_lot *ml = model_find_lot(m, lot->lot_id);
                assert_non_null(ml);
                ml->lot.remaining = lot->remaining;
            }
        }
    }
    for (size_t e = 0; e < b->entries.count; e++) {
        struct model_lot *ml = model_find_lot(m, b->entries.items[e].lot_id);
        assert_non_null(ml);
        ml->entries_sum += b->entries.items[e].delta;
    }
}

/* Runs jobs[0..n) through the model in batches of `size`; collects each
 * job's published result bytes into results[i]. */
static void run_batches(struct model *m, const struct job *jobs, size_t n, size_t size,
                        msgpack_sbuffer *results)
{
    struct batch_job *bjs = calloc(size, sizeof *bjs);
    assert_non_null(bjs);
    for (size_t start = 0; start < n; start += size) {
        size_t count = n - start < size ? n - start : size;
        for (size_t i = 0; i < count; i++)
            bjs[i].job = jobs[start + i];
        struct batch b;
        batch_init(&b, bjs, count);
        model_load(m, &b);
        assert_int_equal(batch_decide(&b), 0);
        model_write(m, &b);
        for (size_t i = 0; i < count; i++) {
            msgpack_sbuffer_init(&results[start + i]);
            msgpack_sbuffer_write(&results[start + i], bjs[i].encoded.data, bjs[i].encoded.size);
        }
        batch_free(&b);
    }
    free(bjs);
}

/* ---------------------------------------------------------------------------
 * Jobs
 * ------------------------------------------------------------------------- */

static struct job consume(const char *id, const char *user, int64_t amount)
{
    struct job j = {.type = JOB_CONSUME, .consume = {.amount = amount}};
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.user, sizeof j.user, "%s", user);
    return j;
}

static struct job purchase(const char *id, const char *user, const char *pack, const char *ref)
{
    struct job j = {.type = JOB_PURCHASE};
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.user, sizeof j.user, "%s", user);
    snprintf(j.purchase.pack, sizeof j.purchase.pack, "%s", pack);
    snprintf(j.purchase.payment_ref, sizeof j.purchase.payment_ref, "%s", ref);
    return j;
}

static struct job allocate(const char *id, const char *user, const char *plan, const char *period)
{
    struct job j = {.type = JOB_ALLOCATE};
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.user, sizeof j.user, "%s", user);
    snprintf(j.allocate.plan, sizeof j.allocate.plan, "%s", plan);
    assert_int_equal(strlen(period), JOB_PERIOD_BYTES);
    memcpy(j.allocate.period, period, JOB_PERIOD_BYTES + 1);
    return j;
}

static struct result decode(const msgpack_sbuffer *bytes)
{
    struct result r;
    assert_int_equal(codec_decode_result(bytes->data, bytes->size, &r), 0);
    return r;
}

static void free_results(msgpack_sbuffer *results, size_t n)
{
    for (size_t i = 0; i < n; i++)
        msgpack_sbuffer_destroy(&results[i]);
}

/* ---------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------- */

static void test_same_job_delivered_again_is_replayed_with_the_stored_result(void **state)
{
    (void)state;
    static struct model m;
    model_init(&m);
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
    model_init(&m);
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
    model_init(&m);
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
    model_init(&m);
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
    model_init(&m);
    struct job jobs[] = {purchase("p1", "u1", "nope", "pay-1"),
                         allocate("a1", "u1", "pro", "2026-01"),
                         purchase("p2", "u2", "big", "pay-2")};
    msgpack_sbuffer results[3];
    run_batches(&m, jobs, 3, 3, results);
    assert_int_equal(decode(&results[0]).error, JOB_ERR_UNKNOWN_PACK);
    assert_int_equal(m.lot_count, 2);
    assert_int_equal(m.lots[0].lot.lot_id, 1);
    assert_int_equal(m.lots[0].lot.kind, LOT_MONTHLY);
    assert_int_equal(m.lots[1].lot.lot_id, 2);
    free_results(results, 3);
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

/* A random mix: several users (one hot), all job types, replays, conflicts,
 * unknown catalog entries, reused payment references. */
static size_t random_jobs(struct job *jobs, size_t n, unsigned seed)
{
    srand(seed);
    static const char *users[] = {"hot", "hot", "hot", "u1", "u2", "u3", "u4"};
    static const char *packs[] = {"small", "big", "gone"};
    static const char *plans[] = {"basic", "pro", "gone"};
    for (size_t i = 0; i < n; i++) {
        char id[32], ref[32], period[16];
        snprintf(id, sizeof id, "job-%zu", i);
        const char *user = users[rand() % 7];
        int kind = rand() % 10;
        if (i > 0 && rand() % 8 == 0) {
            jobs[i] = jobs[rand() % i]; /* a replay */
            if (rand() % 3 == 0)
                if (jobs[i].type == JOB_CONSUME)
                    jobs[i].consume.amount += 1; /* an id_conflict */
            continue;
        }
        if (kind < 6) {
            jobs[i] = consume(id, user, 1 + rand() % 120);
        } else if (kind < 8) {
            snprintf(ref, sizeof ref, "pay-%d", rand() % 40);
            jobs[i] = purchase(id, user, packs[rand() % 3], ref);
        } else {
            snprintf(period, sizeof period, "2026-%02d", 1 + rand() % 12);
            jobs[i] = allocate(id, user, plans[rand() % 3], period);
        }
    }
    return n;
}

static void assert_same_lots_per_user(const struct model *a, const struct model *b)
{
    static const char *users[] = {"hot", "u1", "u2", "u3", "u4"};
    for (size_t u = 0; u < 5; u++) {
        size_t j = 0;
        for (size_t i = 0; i < a->lot_count; i++) {
            if (strcmp(a->lots[i].user, users[u]) != 0)
                continue;
            while (j < b->lot_count && strcmp(b->lots[j].user, users[u]) != 0)
                j++;
            assert_true(j < b->lot_count);
            assert_int_equal(a->lots[i].lot.kind, b->lots[j].lot.kind);
            assert_int_equal(a->lots[i].lot.granted, b->lots[j].lot.granted);
            assert_int_equal(a->lots[i].lot.remaining, b->lots[j].lot.remaining);
            assert_int_equal(b->lots[j].entries_sum, b->lots[j].lot.remaining);
            j++;
        }
    }
}

static void test_batch_size_does_not_change_any_result_or_the_ledger(void **state)
{
    (void)state;
    enum { N = 1500 };
    static struct job jobs[N];
    static msgpack_sbuffer one[N], many[N];
    static struct model m1, mn;
    static const size_t sizes[] = {2, 7, 64, 256, 1500};
    random_jobs(jobs, N, 20261124);
    model_init(&m1);
    run_batches(&m1, jobs, N, 1, one);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        model_init(&mn);
        run_batches(&mn, jobs, N, sizes[s], many);
        for (size_t i = 0; i < N; i++) {
            assert_int_equal(one[i].size, many[i].size);
            assert_memory_equal(one[i].data, many[i].data, one[i].size);
        }
        /* Each user has the same lots in the same order (IDs may differ). */
        assert_int_equal(m1.lot_count, mn.lot_count);
        assert_same_lots_per_user(&m1, &mn);
        assert_int_equal(m1.job_count, mn.job_count);
        free_results(many, N);
        model_free(&mn);
    }
    /* The mix exercised what it should. */
    size_t replays = 0, conflicts = 0, insufficient = 0, duplicates = 0;
    for (size_t i = 0; i < N; i++) {
        struct result r = decode(&one[i]);
        replays += r.replayed;
        conflicts += r.error == JOB_ERR_ID_CONFLICT;
        insufficient += r.error == JOB_ERR_INSUFFICIENT_CREDITS;
        duplicates += r.error == JOB_ERR_DUPLICATE_PAYMENT;
    }
    assert_true(replays > 50 && conflicts > 10 && insufficient > 50 && duplicates > 10);
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
        cmocka_unit_test(test_batch_size_does_not_change_any_result_or_the_ledger),
    };
    return case_filter_run("batch", tests, sizeof tests / sizeof tests[0], NULL, NULL, argc, argv);
}
