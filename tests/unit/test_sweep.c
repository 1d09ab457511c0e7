/*
 * test_sweep.c -- unit tests of core/sweep.c: the sweep's work on one
 * account (contract 9.7): overdue holds released under their own ID, lots
 * past their expiry written off each under expire:{lot_id} with its job
 * row, one notice per lot within the notice days, and the events of each
 * change.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <msgpack.h>
#include <string.h>

#include "case_filter.h"
#include "core/sweep.h"

#define NOW INT64_C(1800000000000000)
#define DAY LEDGER_US_PER_DAY

struct fx {
    struct account account;
    struct entry_list entries;
    struct event_list events;
    struct sweep_expiry expiries[8];
    size_t expiry_count;
    struct sweep_input input;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    ledger_account_init(&fx->account, "u1");
    fx->input = (struct sweep_input){.now_us = NOW,
                                     .notice_until_us = NOW + 7 * DAY,
                                     .account_index = 3,
                                     .threshold = {true, 100}};
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    for (size_t i = 0; i < fx->expiry_count; i++)
        sweep_expiry_free(&fx->expiries[i]);
    ledger_account_free(&fx->account);
    ledger_entries_free(&fx->entries);
    event_list_free(&fx->events);
    free(fx);
    return 0;
}

static struct lot *add_lot(struct fx *fx, int64_t id, enum lot_kind kind, int64_t granted,
                           int64_t remaining, int64_t expires_at_us)
{
    struct lot lot = {.lot_id = id,
                      .kind = kind,
                      .granted = granted,
                      .remaining = remaining,
                      .granted_at_us = NOW - 30 * DAY,
                      .expires_at_us = expires_at_us};
    return ledger_account_add_lot(&fx->account, &lot);
}

static struct hold *add_hold(struct fx *fx, const char *id, int64_t lot_id, int64_t amount,
                             int64_t expires_at_us)
{
    struct hold *hold = ledger_account_add_hold(&fx->account, id);
    hold->amount = amount;
    hold->status = HOLD_OPEN;
    hold->expires_at_us = expires_at_us;
    ledger_takes_add(&hold->takes, lot_id, amount);
    return hold;
}

static void sweep(struct fx *fx)
{
    assert_true(sweep_expiries_max(&fx->account, fx->input.now_us) <=
                sizeof fx->expiries / sizeof fx->expiries[0]);
    sweep_account(&fx->account, &fx->input, &fx->entries, &fx->events, fx->expiries,
                  &fx->expiry_count);
}

static void test_an_overdue_hold_is_released_under_its_own_id(void **state)
{
    struct fx *fx = *state;
    add_lot(fx, 1, LOT_GRANT, 100, 70, LEDGER_NO_EXPIRY);
    struct hold *hold = add_hold(fx, "render-1", 1, 30, NOW);
    struct hold *later = add_hold(fx, "render-2", 1, 10, NOW + 1);
    fx->account.lots[0].remaining = 60; /* both holds took from it */
    fx->input.threshold = (struct event_threshold){true, 90};
    sweep(fx);
    assert_int_equal(hold->status, HOLD_EXPIRED);
    assert_true(hold->changed);
    assert_null(hold->closed_by);
    assert_int_equal(later->status, HOLD_OPEN); /* due at NOW + 1 us, not yet */
    assert_int_equal(fx->account.lots[0].remaining, 90);
    assert_int_equal(fx->entries.count, 1);
    const struct entry *e = &fx->entries.items[0];
    assert_int_equal(e->kind, ENTRY_RELEASE);
    assert_int_equal(e->delta, 30);
    assert_string_equal(e->job_id, "render-1");
    assert_string_equal(e->origin, "render-1");
    assert_int_equal(e->job_index, 3);
    assert_int_equal(fx->expiry_count, 0);
    /* hold_expired, then the crossing back to the threshold, both under the
     * hold's ID, with the balance after the change. */
    assert_int_equal(fx->events.count, 2);
    assert_int_equal(fx->events.items[0].type, EVENT_HOLD_EXPIRED);
    assert_int_equal(fx->events.items[0].released, 30);
    assert_int_equal(fx->events.items[1].type, EVENT_BALANCE_RECOVERED);
    assert_int_equal(fx->events.items[1].threshold, 90);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(fx->events.items[i].job, "render-1");
        assert_int_equal(fx->events.items[i].balance.total, 90);
        assert_int_equal(fx->events.items[i].balance.held, 10);
        assert_int_equal(fx->events.items[i].at_ms, NOW / 1000);
    }
}

/* Reads the top map of a job row's result into key -> value checks. */
static void assert_expiry_result(const msgpack_sbuffer *result, const char *id, int64_t expired)
{
    msgpack_unpacked msg;
    msgpack_unpacked_init(&msg);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&msg, result->data, result->size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, result->size);
    assert_int_equal(msg.data.type, MSGPACK_OBJECT_MAP);
    bool saw_id = false, saw_type = false, saw_status = false, saw_expired = false;
    for (uint32_t i = 0; i < msg.data.via.map.size; i++) {
        const msgpack_object_kv *kv = &msg.data.via.map.ptr[i];
        const msgpack_object_str *k = &kv->key.via.str;
        const msgpack_object *v = &kv->val;
        if (k->size == 2 && memcmp(k->ptr, "id", 2) == 0)
            saw_id = v->via.str.size == strlen(id) && memcmp(v->via.str.ptr, id, strlen(id)) == 0;
        else if (k->size == 4 && memcmp(k->ptr, "type", 4) == 0)
            saw_type = v->via.str.size == 6 && memcmp(v->via.str.ptr, "expire", 6) == 0;
        else if (k->size == 6 && memcmp(k->ptr, "status", 6) == 0)
            saw_status = v->via.str.size == 7 && memcmp(v->via.str.ptr, "applied", 7) == 0;
        else if (k->size == 7 && memcmp(k->ptr, "expired", 7) == 0)
            saw_expired = (int64_t)v->via.u64 == expired;
    }
    assert_true(saw_id && saw_type && saw_status && saw_expired);
    msgpack_unpacked_destroy(&msg);
}

static void test_an_expired_lot_is_written_off_under_a_job_of_its_own(void **state)
{
    struct fx *fx = *state;
    add_lot(fx, 41, LOT_PACK, 100, 60, NOW);      /* expires_at == now: expired */
    add_lot(fx, 42, LOT_PACK, 100, 0, NOW - DAY); /* spent: nothing to write off */
    add_lot(fx, 43, LOT_MONTHLY, 300, 80, LEDGER_NO_EXPIRY);
    assert_int_equal(sweep_expiries_max(&fx->account, NOW), 1);
    sweep(fx);
    assert_int_equal(fx->expiry_count, 1);
    const struct sweep_expiry *x = &fx->expiries[0];
    assert_string_equal(x->id, "expire:41");
    assert_int_equal(x->lot_id, 41);
    assert_int_equal(x->credits, 60);
    assert_int_equal(x->account, 3);
    assert_expiry_result(&x->result, "expire:41", 60);
    assert_true(x->request.size > 0);
    assert_int_equal(fx->account.lots[0].remaining, 0);
    assert_true(fx->account.lots[0].changed);
    assert_int_equal(fx->entries.count, 1);
    assert_int_equal(fx->entries.items[0].kind, ENTRY_EXPIRE);
    assert_int_equal(fx->entries.items[0].delta, -60);
    /* The entry points at the expiry's ID, which must not move. */
    assert_ptr_equal(fx->entries.items[0].job_id, x->id);
    /* 140 -> 80 credits with a threshold of 100: credits_expired, balance_low. */
    assert_int_equal(fx->events.count, 2);
    assert_int_equal(fx->events.items[0].type, EVENT_CREDITS_EXPIRED);
    assert_int_equal(fx->events.items[0].lot, 41);
    assert_int_equal(fx->events.items[0].credits, 60);
    assert_int_equal(fx->events.items[1].type, EVENT_BALANCE_LOW);
    assert_string_equal(fx->events.items[0].job, "expire:41");
    assert_string_equal(fx->events.items[1].job, "expire:41");
    assert_int_equal(fx->events.items[1].balance.total, 80);
}

/* A hold's share that goes back to a lot past its expiry leaves it again
 * with the release, under the hold's ID: the lot has nothing left for a
 * write-off of its own. */
static void test_a_held_share_of_an_expired_lot_expires_with_the_release(void **state)
{
    struct fx *fx = *state;
    add_lot(fx, 5, LOT_PACK, 50, 0, NOW - DAY);
    add_hold(fx, "render-3", 5, 50, NOW - 1);
    fx->input.threshold = (struct event_threshold){false, 0};
    assert_int_equal(sweep_expiries_max(&fx->account, NOW), 0);
    sweep(fx);
    assert_int_equal(fx->expiry_count, 0);
    assert_int_equal(fx->entries.count, 2);
    assert_int_equal(fx->entries.items[0].kind, ENTRY_RELEASE);
    assert_int_equal(fx->entries.items[1].kind, ENTRY_EXPIRE);
    assert_string_equal(fx->entries.items[1].job_id, "render-3");
    assert_int_equal(fx->events.count, 2);
    assert_int_equal(fx->events.items[0].type, EVENT_HOLD_EXPIRED);
    assert_int_equal(fx->events.items[0].released, 50);
    assert_int_equal(fx->events.items[1].type, EVENT_CREDITS_EXPIRED);
    assert_string_equal(fx->events.items[1].job, "render-3");
}

static void test_a_lot_is_announced_once_within_the_notice_days(void **state)
{
    struct fx *fx = *state;
    add_lot(fx, 11, LOT_PACK, 100, 25, NOW + 7 * DAY);     /* the last moment announced */
    add_lot(fx, 12, LOT_PACK, 100, 25, NOW + 7 * DAY + 1); /* just outside */
    add_lot(fx, 13, LOT_PACK, 100, 0, NOW + DAY);          /* spent */
    add_lot(fx, 14, LOT_GRANT, 100, 5, LEDGER_NO_EXPIRY);  /* never expires */
    struct lot *noticed = add_lot(fx, 15, LOT_GRANT, 100, 5, NOW + DAY);
    noticed->noticed = true; /* announced by an earlier sweep */
    sweep(fx);
    assert_int_equal(fx->events.count, 1);
    const struct event *e = &fx->events.items[0];
    assert_int_equal(e->type, EVENT_CREDITS_EXPIRING);
    assert_int_equal(e->lot, 11);
    assert_int_equal(e->credits, 25);
    assert_int_equal(e->expires_at_ms, (NOW + 7 * DAY) / 1000);
    assert_string_equal(e->job, "expire:11");
    assert_int_equal(e->balance.total, 60);
    assert_true(fx->account.lots[0].noticed && fx->account.lots[0].noticed_now);
    assert_false(fx->account.lots[1].noticed_now);
    assert_false(fx->account.lots[4].noticed_now);
    assert_int_equal(fx->entries.count, 0);
    /* Again: nothing new. */
    sweep(fx);
    assert_int_equal(fx->events.count, 1);
}

static void test_no_notice_when_the_notice_days_are_zero(void **state)
{
    struct fx *fx = *state;
    add_lot(fx, 21, LOT_PACK, 100, 25, NOW + 1);
    fx->input.notice_until_us = NOW;
    sweep(fx);
    assert_int_equal(fx->events.count, 0);
    assert_false(fx->account.lots[0].noticed_now);
}

static void test_an_account_with_nothing_due_is_left_alone(void **state)
{
    struct fx *fx = *state;
    add_lot(fx, 31, LOT_MONTHLY, 300, 300, LEDGER_NO_EXPIRY);
    add_hold(fx, "render-4", 31, 10, NOW + DAY);
    sweep(fx);
    assert_int_equal(fx->entries.count, 0);
    assert_int_equal(fx->events.count, 0);
    assert_int_equal(fx->expiry_count, 0);
    assert_false(fx->account.lots[0].changed);
}

static void test_expire_ids(void **state)
{
    (void)state;
    char id[SWEEP_EXPIRE_ID_BYTES_MAX];
    sweep_expire_id(1, id);
    assert_string_equal(id, "expire:1");
    sweep_expire_id(INT64_MAX, id);
    assert_string_equal(id, "expire:9223372036854775807");
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        TEST(test_an_overdue_hold_is_released_under_its_own_id),
        TEST(test_an_expired_lot_is_written_off_under_a_job_of_its_own),
        TEST(test_a_held_share_of_an_expired_lot_expires_with_the_release),
        TEST(test_a_lot_is_announced_once_within_the_notice_days),
        TEST(test_no_notice_when_the_notice_days_are_zero),
        TEST(test_an_account_with_nothing_due_is_left_alone),
        TEST(test_expire_ids),
    };
    return case_filter_run("sweep", tests, sizeof tests / sizeof tests[0], NULL, NULL, argc, argv);
}
