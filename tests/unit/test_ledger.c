/*
 * test_ledger.c -- the ledger rules of contract sections 5 and 9.4
 * (core/ledger.c, core/types/): spending order, expiry, purchase,
 * allocation and rollover; holds, captures, releases, give-backs to lots no
 * longer usable, refunds, revocations, grants and cancellations; the balance
 * split and every rejection's message; and the section 5 invariants over a
 * long pseudo-random run of jobs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "case_filter.h"
#include "core/ledger.h"

#define NOW INT64_C(1700000000000000) /* 2023-11-14, in microseconds */
#define DAY LEDGER_US_PER_DAY
#define NONE LEDGER_NO_EXPIRY
#define JOB_INDEX 7
#define LOTS_MAX 6
#define ENTRIES_MAX 8
#define TESTS_MAX 192
#define US_PER_S INT64_C(1000000)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------------------
 * Fixture and helpers
 * ------------------------------------------------------------------------- */

struct fx {
    struct account account;
    struct entry_list entries;
    struct job job;
    struct ledger_input input;
    struct result result;
    const void *tcase; /* the table row, for table-driven tests */
};

static int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->tcase = *state;
    ledger_account_init(&fx->account, "user-1");
    strcpy(fx->job.id, "job-1");
    strcpy(fx->job.user, "user-1");
    fx->input.now_us = NOW;
    fx->input.job_index = JOB_INDEX;
    fx->input.new_lot_id = 100;
    *state = fx;
    return 0;
}

/* Makes the fixture's job one of `type`, with that type's usual fields. */
static void fx_set_type(struct fx *fx, enum job_type type)
{
    fx->job.type = type;
    switch (type) {
    case JOB_CONSUME:
        memset(&fx->job.consume, 0, sizeof fx->job.consume);
        break;
    case JOB_PURCHASE:
        strcpy(fx->job.purchase.pack, "small");
        strcpy(fx->job.purchase.payment_ref, "pay-1");
        break;
    case JOB_ALLOCATE:
        strcpy(fx->job.allocate.plan, "pro");
        strcpy(fx->job.allocate.period, "2024-05");
        break;
    case JOB_HOLD:
        memset(&fx->job.hold, 0, sizeof fx->job.hold);
        break;
    case JOB_CAPTURE:
        memset(&fx->job.capture, 0, sizeof fx->job.capture);
        strcpy(fx->job.capture.hold, "hold-1");
        break;
    case JOB_RELEASE:
        strcpy(fx->job.release.hold, "hold-1");
        break;
    case JOB_REFUND:
        memset(&fx->job.refund, 0, sizeof fx->job.refund);
        strcpy(fx->job.refund.charge, "charge-1");
        break;
    case JOB_REVOKE:
        strcpy(fx->job.revoke.payment_ref, "pay-1");
        break;
    case JOB_GRANT:
        memset(&fx->job.grant, 0, sizeof fx->job.grant);
        break;
    case JOB_CANCEL:
        memset(&fx->job.cancel, 0, sizeof fx->job.cancel);
        break;
    }
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    ledger_account_free(&fx->account);
    ledger_entries_free(&fx->entries);
    free(fx);
    return 0;
}

static void apply(struct fx *fx)
{
    ledger_apply(&fx->account, &fx->job, &fx->input, &fx->entries, &fx->result);
}

/* A lot as a table row; a row with id 0 ends a list. */
struct lot_spec {
    int64_t id;
    enum lot_kind kind;
    int64_t granted;
    int64_t remaining;
    int64_t granted_at_us;
    int64_t expires_at_us;
    const char *period;
    bool revoked;
};

#define PACK(id, granted, remaining, expires_at)                                                   \
    {                                                                                              \
        (id), LOT_PACK, (granted), (remaining), (expires_at)-90 * DAY, (expires_at), "", false     \
    }
#define MONTHLY(id, remaining, granted_at, period)                                                 \
    {                                                                                              \
        (id), LOT_MONTHLY, 1000, (remaining), (granted_at), NONE, (period), false                  \
    }
/* A grant lot; expires_at NONE: it never expires. */
#define GRANT(id, remaining, granted_at, expires_at)                                               \
    {                                                                                              \
        (id), LOT_GRANT, 1000, (remaining), (granted_at), (expires_at), "", false                  \
    }
/* A pack whose payment was revoked: it holds nothing. */
#define REVOKED_PACK(id, granted, expires_at)                                                      \
    {                                                                                              \
        (id), LOT_PACK, (granted), 0, (expires_at)-90 * DAY, (expires_at), "", true                \
    }

struct entry_spec {
    int64_t lot_id;
    enum entry_kind kind;
    int64_t delta;
};

static struct lot lot_from_spec(const struct lot_spec *spec)
{
    struct lot lot = {
        .lot_id = spec->id,
        .kind = spec->kind,
        .granted = spec->granted,
        .remaining = spec->remaining,
        .granted_at_us = spec->granted_at_us,
        .expires_at_us = spec->expires_at_us,
        .revoked = spec->revoked,
    };
    snprintf(lot.period, sizeof lot.period, "%s", spec->period);
    return lot;
}

static size_t add_lots(struct account *account, const struct lot_spec *specs, size_t max)
{
    size_t n = 0;
    while (n < max && specs[n].id != 0) {
        struct lot lot = lot_from_spec(&specs[n]);
        ledger_account_add_lot(account, &lot);
        n++;
    }
    return n;
}

static size_t entry_spec_count(const struct entry_spec *specs)
{
    size_t n = 0;
    while (n < ENTRIES_MAX && specs[n].lot_id != 0)
        n++;
    return n;
}

/* The batch's entries are exactly `want`, in order, all for JOB_INDEX. */
static void assert_entries(const struct entry_list *entries, const struct entry_spec *want)
{
    size_t n = entry_spec_count(want);
    assert_int_equal(entries->count, n);
    for (size_t i = 0; i < n; i++) {
        const struct entry *e = &entries->items[i];
        assert_int_equal(e->lot_id, want[i].lot_id);
        assert_string_equal(ledger_entry_kind_name(e->kind), ledger_entry_kind_name(want[i].kind));
        assert_int_equal(e->delta, want[i].delta);
        assert_int_equal(e->job_index, JOB_INDEX);
    }
}

/* The first `n` lots are the specs, in their order, each moved by exactly the
 * entries on it and marked changed exactly when moved. */
static void assert_lots_follow_entries(const struct account *account, const struct lot_spec *specs,
                                       size_t n, const struct entry_list *entries)
{
    assert_true(account->lot_count >= n);
    for (size_t i = 0; i < n; i++) {
        const struct lot *lot = &account->lots[i];
        assert_int_equal(lot->lot_id, specs[i].id);
        int64_t moved = 0;
        bool touched = false;
        for (size_t k = 0; k < entries->count; k++) {
            if (entries->items[k].lot_id != lot->lot_id)
                continue;
            moved += entries->items[k].delta;
            touched = true;
        }
        assert_int_equal(lot->remaining, specs[i].remaining + moved);
        assert_int_equal(lot->changed, touched);
        assert_false(lot->is_new);
        assert_int_equal(lot->granted, specs[i].granted);
    }
}

/* The usable credits split by kind, total = pack + monthly + grant, and
 * the credits in open holds apart. */
static void assert_balance_of(const struct balance *got, int64_t pack, int64_t monthly,
                              int64_t grant, int64_t held)
{
    assert_int_equal(got->pack, pack);
    assert_int_equal(got->monthly, monthly);
    assert_int_equal(got->grant, grant);
    assert_int_equal(got->total, pack + monthly + grant);
    assert_int_equal(got->held, held);
}

static void assert_balance(const struct balance *got, int64_t pack, int64_t monthly)
{
    assert_balance_of(got, pack, monthly, 0, 0);
}

/* ---------------------------------------------------------------------------
 * consume: a table
 * ------------------------------------------------------------------------- */

struct consume_case {
    const char *name;
    struct lot_spec lots[LOTS_MAX];
    int64_t amount;
    enum job_error error;
    struct entry_spec entries[ENTRIES_MAX];
    int64_t pack_after, monthly_after, grant_after;
    const char *message; /* NULL: not checked */
};

static struct consume_case consume_cases[] = {
    {
        .name = "consume_spends_packs_before_monthly",
        .lots = {MONTHLY(1, 50, NOW - 60 * DAY, "2023-09"), PACK(2, 100, 30, NOW + DAY)},
        .amount = 40,
        .entries = {{2, ENTRY_CONSUME, -30}, {1, ENTRY_CONSUME, -10}},
        .pack_after = 0,
        .monthly_after = 40,
    },
    {
        .name = "consume_orders_packs_by_expiry_then_lot_id",
        .lots = {PACK(5, 10, 10, NOW + 3 * DAY), PACK(3, 10, 10, NOW + 5 * DAY),
                 PACK(4, 10, 10, NOW + 3 * DAY), PACK(6, 10, 10, NOW + DAY)},
        .amount = 35,
        .entries = {{6, ENTRY_CONSUME, -10},
                    {4, ENTRY_CONSUME, -10},
                    {5, ENTRY_CONSUME, -10},
                    {3, ENTRY_CONSUME, -5}},
        .pack_after = 5,
        .monthly_after = 0,
    },
    {
        .name = "consume_orders_monthly_by_granted_at_then_lot_id",
        .lots = {MONTHLY(8, 10, NOW - DAY, "2023-12"), MONTHLY(7, 10, NOW - DAY, "2023-11"),
                 MONTHLY(9, 10, NOW - 2 * DAY, "2023-10")},
        .amount = 25,
        .entries = {{9, ENTRY_CONSUME, -10}, {7, ENTRY_CONSUME, -10}, {8, ENTRY_CONSUME, -5}},
        .pack_after = 0,
        .monthly_after = 5,
    },
    {
        .name = "consume_of_exact_balance_succeeds_and_leaves_zero",
        .lots = {PACK(1, 20, 10, NOW + DAY), MONTHLY(2, 5, NOW - DAY, "2023-11")},
        .amount = 15,
        .entries = {{1, ENTRY_CONSUME, -10}, {2, ENTRY_CONSUME, -5}},
        .pack_after = 0,
        .monthly_after = 0,
    },
    {
        .name = "consume_one_short_is_insufficient_and_changes_nothing",
        .lots = {PACK(1, 20, 10, NOW + DAY), MONTHLY(2, 5, NOW - DAY, "2023-11")},
        .amount = 16,
        .error = JOB_ERR_INSUFFICIENT_CREDITS,
        .entries = {{0}},
        .pack_after = 10,
        .monthly_after = 5,
        .message = "usable balance 15 is below amount 16",
    },
    {
        .name = "consume_never_spends_or_counts_expired_lots",
        .lots = {PACK(1, 100, 100, NOW - DAY), PACK(2, 10, 10, NOW + DAY),
                 MONTHLY(3, 5, NOW - DAY, "2023-11")},
        .amount = 15,
        .entries = {{1, ENTRY_EXPIRE, -100}, {2, ENTRY_CONSUME, -10}, {3, ENTRY_CONSUME, -5}},
        .pack_after = 0,
        .monthly_after = 0,
    },
    {
        .name = "consume_treats_lot_expiring_exactly_now_as_expired",
        .lots = {PACK(1, 10, 10, NOW), PACK(2, 10, 10, NOW + 1)},
        .amount = 10,
        .entries = {{1, ENTRY_EXPIRE, -10}, {2, ENTRY_CONSUME, -10}},
        .pack_after = 0,
        .monthly_after = 0,
    },
    {
        .name = "consume_rejected_still_writes_expire_entries",
        .lots = {PACK(1, 10, 10, NOW), MONTHLY(2, 5, NOW - DAY, "2023-11"),
                 PACK(3, 50, 50, NOW - 30 * DAY)},
        .amount = 10,
        .error = JOB_ERR_INSUFFICIENT_CREDITS,
        .entries = {{1, ENTRY_EXPIRE, -10}, {3, ENTRY_EXPIRE, -50}},
        .pack_after = 0,
        .monthly_after = 5,
        .message = "usable balance 5 is below amount 10",
    },
    {
        .name = "consume_touching_several_lots_writes_one_entry_each",
        .lots = {MONTHLY(4, 6, NOW - DAY, "2023-11"), PACK(2, 4, 4, NOW + 2 * DAY),
                 MONTHLY(3, 5, NOW - 2 * DAY, "2023-10"), PACK(1, 3, 3, NOW + DAY)},
        .amount = 16,
        .entries = {{1, ENTRY_CONSUME, -3},
                    {2, ENTRY_CONSUME, -4},
                    {3, ENTRY_CONSUME, -5},
                    {4, ENTRY_CONSUME, -4}},
        .pack_after = 0,
        .monthly_after = 2,
    },
    {
        .name = "consume_skips_empty_lots_without_entries",
        .lots = {PACK(1, 10, 0, NOW + DAY), MONTHLY(2, 0, NOW - 2 * DAY, "2023-10"),
                 MONTHLY(3, 5, NOW - DAY, "2023-11")},
        .amount = 5,
        .entries = {{3, ENTRY_CONSUME, -5}},
        .pack_after = 0,
        .monthly_after = 0,
    },
    {
        .name = "consume_writes_no_expire_entry_for_empty_expired_lot",
        .lots = {PACK(1, 10, 0, NOW - DAY), MONTHLY(2, 5, NOW - DAY, "2023-11")},
        .amount = 1,
        .entries = {{2, ENTRY_CONSUME, -1}},
        .pack_after = 0,
        .monthly_after = 4,
    },
    {
        .name = "consume_from_empty_account_is_insufficient",
        .lots = {{0}},
        .amount = 1,
        .error = JOB_ERR_INSUFFICIENT_CREDITS,
        .entries = {{0}},
        .pack_after = 0,
        .monthly_after = 0,
        .message = "usable balance 0 is below amount 1",
    },
    {
        /* Contract 9.4: the lots that expire first, by expires_at then
         * lot_id, whatever their kind. */
        .name = "consume_orders_expiring_grants_among_packs_by_expiry_then_lot_id",
        .lots = {PACK(5, 10, 10, NOW + 3 * DAY), GRANT(3, 10, NOW - DAY, NOW + 3 * DAY),
                 GRANT(4, 10, NOW - 2 * DAY, NOW + DAY), PACK(6, 10, 10, NOW + 5 * DAY),
                 MONTHLY(1, 10, NOW - 90 * DAY, "2023-08")},
        .amount = 35,
        .entries = {{4, ENTRY_CONSUME, -10},
                    {3, ENTRY_CONSUME, -10},
                    {5, ENTRY_CONSUME, -10},
                    {6, ENTRY_CONSUME, -5}},
        .pack_after = 5,
        .monthly_after = 10,
        .grant_after = 0,
    },
    {
        /* Then the lots that never expire, by granted_at then lot_id:
         * grants without expiry among the monthly lots. */
        .name = "consume_orders_never_expiring_grants_among_monthly_by_granted_at",
        .lots = {MONTHLY(1, 10, NOW - 20 * DAY, "2023-10"), GRANT(2, 10, NOW - 30 * DAY, NONE),
                 MONTHLY(3, 10, NOW - 10 * DAY, "2023-11"), GRANT(4, 10, NOW - 10 * DAY, NONE),
                 PACK(5, 10, 10, NOW + 90 * DAY)},
        .amount = 45,
        .entries = {{5, ENTRY_CONSUME, -10},
                    {2, ENTRY_CONSUME, -10},
                    {1, ENTRY_CONSUME, -10},
                    {3, ENTRY_CONSUME, -10},
                    {4, ENTRY_CONSUME, -5}},
        .pack_after = 0,
        .monthly_after = 0,
        .grant_after = 5,
    },
    {
        .name = "consume_never_spends_or_counts_revoked_or_expired_grant_lots",
        .lots = {REVOKED_PACK(1, 100, NOW + DAY), GRANT(2, 10, NOW - DAY, NOW),
                 GRANT(3, 4, NOW - DAY, NONE)},
        .amount = 5,
        .error = JOB_ERR_INSUFFICIENT_CREDITS,
        .entries = {{2, ENTRY_EXPIRE, -10}},
        .pack_after = 0,
        .monthly_after = 0,
        .grant_after = 4,
        .message = "usable balance 4 is below amount 5",
    },
};

static void run_consume_case(void **state)
{
    struct fx *fx = *state;
    const struct consume_case *c = fx->tcase;
    size_t n = add_lots(&fx->account, c->lots, LOTS_MAX);
    fx_set_type(fx, JOB_CONSUME);
    fx->job.consume.amount = c->amount;

    apply(fx);

    assert_int_equal(fx->result.error, c->error);
    assert_entries(&fx->entries, c->entries);
    assert_int_equal(fx->account.lot_count, n);
    assert_lots_follow_entries(&fx->account, c->lots, n, &fx->entries);
    assert_balance_of(&fx->result.balance, c->pack_after, c->monthly_after, c->grant_after, 0);
    assert_int_equal(fx->result.amounts[RESULT_CHARGED], c->error == JOB_OK ? c->amount : 0);
    if (c->message)
        assert_string_equal(fx->result.message, c->message);
    if (c->error == JOB_OK)
        assert_string_equal(fx->result.message, "");
}

/* ---------------------------------------------------------------------------
 * purchase
 * ------------------------------------------------------------------------- */

static void purchase_creates_pack_lot_expiring_valid_days_later(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {MONTHLY(1, 5, NOW - DAY, "2023-11"),
                                    PACK(2, 10, 10, NOW + DAY)};
    add_lots(&fx->account, lots, 2);
    const struct pack_info pack = {.credits = 500, .valid_days = 30};
    fx_set_type(fx, JOB_PURCHASE);
    fx->input.pack = &pack;
    fx->input.new_lot_id = 42;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    assert_string_equal(fx->result.message, "");
    assert_int_equal(fx->account.lot_count, 3);
    const struct lot *lot = &fx->account.lots[2];
    assert_int_equal(lot->lot_id, 42);
    assert_int_equal(lot->kind, LOT_PACK);
    assert_int_equal(lot->granted, 500);
    assert_int_equal(lot->remaining, 500);
    assert_int_equal(lot->granted_at_us, NOW);
    assert_int_equal(lot->expires_at_us, NOW + 30 * DAY);
    assert_string_equal(lot->period, "");
    assert_true(lot->is_new);
    assert_int_equal(lot->job_index, JOB_INDEX);
    const struct entry_spec want[] = {{42, ENTRY_PURCHASE, 500}, {0}};
    assert_entries(&fx->entries, want);
    assert_lots_follow_entries(&fx->account, lots, 2, &fx->entries);

    assert_int_equal(fx->result.amounts[RESULT_GRANTED], 500);
    assert_int_equal(fx->result.amounts[RESULT_EXPIRES_AT], (NOW + 30 * DAY) / 1000);
    assert_int_equal(fx->result.amounts[RESULT_CHARGED], 0);
    assert_int_equal(fx->result.amounts[RESULT_FORFEITED], 0);
    assert_balance(&fx->result.balance, 510, 5);
    assert_false(fx->account.plan_changed);
}

struct purchase_case {
    const char *name;
    bool pack_known;
    bool payment_ref_used;
    enum job_error error;
    const char *message;
};

static struct purchase_case purchase_cases[] = {
    {"purchase_of_unknown_pack_is_rejected", false, false, JOB_ERR_UNKNOWN_PACK,
     "pack \"small\" is not in the catalog"},
    {"purchase_with_used_payment_ref_is_duplicate_payment", true, true, JOB_ERR_DUPLICATE_PAYMENT,
     "payment_ref \"pay-1\" already granted credits under another job ID"},
    {"purchase_unknown_pack_wins_over_duplicate_payment", false, true, JOB_ERR_UNKNOWN_PACK,
     "pack \"small\" is not in the catalog"},
};

/* A rejected purchase adds no lot and no entry but the expiry of lot 1. */
static void run_purchase_case(void **state)
{
    struct fx *fx = *state;
    const struct purchase_case *c = fx->tcase;
    const struct lot_spec lots[] = {PACK(1, 10, 10, NOW - 1), PACK(2, 10, 8, NOW + DAY)};
    add_lots(&fx->account, lots, 2);
    const struct pack_info pack = {.credits = 500, .valid_days = 30};
    fx_set_type(fx, JOB_PURCHASE);
    fx->input.pack = c->pack_known ? &pack : NULL;
    fx->input.payment_ref_used = c->payment_ref_used;

    apply(fx);

    assert_int_equal(fx->result.error, c->error);
    assert_string_equal(fx->result.message, c->message);
    assert_int_equal(fx->account.lot_count, 2);
    const struct entry_spec want[] = {{1, ENTRY_EXPIRE, -10}, {0}};
    assert_entries(&fx->entries, want);
    assert_lots_follow_entries(&fx->account, lots, 2, &fx->entries);
    assert_int_equal(fx->result.amounts[RESULT_GRANTED], 0);
    assert_int_equal(fx->result.amounts[RESULT_EXPIRES_AT], 0);
    assert_balance(&fx->result.balance, 8, 0);
}

/* ---------------------------------------------------------------------------
 * allocate
 * ------------------------------------------------------------------------- */

static void allocate_first_creates_monthly_lot_and_sets_plan(void **state)
{
    struct fx *fx = *state;
    const struct plan_info plan = {.monthly_credits = 100, .rollover_cap = 200};
    fx_set_type(fx, JOB_ALLOCATE);
    fx->input.plan = &plan;
    fx->input.new_lot_id = 9;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    assert_int_equal(fx->account.lot_count, 1);
    const struct lot *lot = &fx->account.lots[0];
    assert_int_equal(lot->lot_id, 9);
    assert_int_equal(lot->kind, LOT_MONTHLY);
    assert_int_equal(lot->granted, 100);
    assert_int_equal(lot->remaining, 100);
    assert_int_equal(lot->granted_at_us, NOW);
    assert_int_equal(lot->expires_at_us, NONE);
    assert_string_equal(lot->period, "2024-05");
    assert_true(lot->is_new);
    assert_int_equal(lot->job_index, JOB_INDEX);
    const struct entry_spec want[] = {{9, ENTRY_ALLOCATE, 100}, {0}};
    assert_entries(&fx->entries, want);

    assert_true(fx->account.has_plan);
    assert_true(fx->account.plan_changed);
    assert_string_equal(fx->account.plan, "pro");
    assert_int_equal(fx->result.amounts[RESULT_GRANTED], 100);
    assert_int_equal(fx->result.amounts[RESULT_FORFEITED], 0);
    assert_int_equal(fx->result.amounts[RESULT_CHARGED], 0);
    assert_int_equal(fx->result.amounts[RESULT_EXPIRES_AT], 0);
    assert_balance(&fx->result.balance, 0, 100);
}

static void allocate_rollover_below_cap_forfeits_nothing(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {MONTHLY(1, 50, NOW - 30 * DAY, "2024-04")};
    add_lots(&fx->account, lots, 1);
    fx->account.has_plan = true;
    strcpy(fx->account.plan, "basic");
    const struct plan_info plan = {.monthly_credits = 100, .rollover_cap = 200};
    fx_set_type(fx, JOB_ALLOCATE);
    fx->input.plan = &plan;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_spec want[] = {{100, ENTRY_ALLOCATE, 100}, {0}};
    assert_entries(&fx->entries, want);
    assert_lots_follow_entries(&fx->account, lots, 1, &fx->entries);
    assert_int_equal(fx->result.amounts[RESULT_FORFEITED], 0);
    assert_balance(&fx->result.balance, 0, 150);
    assert_string_equal(fx->account.plan, "pro");
}

static void allocate_over_cap_forfeits_oldest_monthly_first(void **state)
{
    struct fx *fx = *state;
    /* Lots 1 and 2 share granted_at: lot_id breaks the tie. Lot 5 expires
     * now, so its expiry comes first; the live pack is never forfeited. */
    const struct lot_spec lots[] = {
        MONTHLY(3, 40, NOW - 30 * DAY, "2024-04"),
        MONTHLY(2, 50, NOW - 60 * DAY, "2024-03"),
        PACK(4, 500, 500, NOW + DAY),
        MONTHLY(1, 30, NOW - 60 * DAY, "2024-02"),
        PACK(5, 10, 10, NOW),
    };
    add_lots(&fx->account, lots, 5);
    const struct plan_info plan = {.monthly_credits = 100, .rollover_cap = 150};
    fx_set_type(fx, JOB_ALLOCATE);
    fx->input.plan = &plan;
    fx->input.new_lot_id = 10;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_spec want[] = {{5, ENTRY_EXPIRE, -10},
                                      {1, ENTRY_FORFEIT, -30},
                                      {2, ENTRY_FORFEIT, -40},
                                      {10, ENTRY_ALLOCATE, 100},
                                      {0}};
    assert_entries(&fx->entries, want);
    assert_lots_follow_entries(&fx->account, lots, 5, &fx->entries);
    assert_int_equal(fx->result.amounts[RESULT_FORFEITED], 70);
    assert_int_equal(fx->result.amounts[RESULT_GRANTED], 100);
    assert_balance(&fx->result.balance, 500, 150);
}

static void allocate_with_cap_equal_to_monthly_forfeits_all_old_monthly(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {MONTHLY(1, 30, NOW - 60 * DAY, "2024-03"),
                                    MONTHLY(2, 50, NOW - 30 * DAY, "2024-04")};
    add_lots(&fx->account, lots, 2);
    const struct plan_info plan = {.monthly_credits = 100, .rollover_cap = 100};
    fx_set_type(fx, JOB_ALLOCATE);
    fx->input.plan = &plan;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_spec want[] = {
        {1, ENTRY_FORFEIT, -30}, {2, ENTRY_FORFEIT, -50}, {100, ENTRY_ALLOCATE, 100}, {0}};
    assert_entries(&fx->entries, want);
    assert_lots_follow_entries(&fx->account, lots, 2, &fx->entries);
    assert_int_equal(fx->result.amounts[RESULT_FORFEITED], 80);
    assert_balance(&fx->result.balance, 0, 100);
}

struct allocate_reject_case {
    const char *name;
    bool plan_known;
    struct lot_spec lots[LOTS_MAX];
    const char *period;
    enum job_error error;
    const char *message;
};

static struct allocate_reject_case allocate_reject_cases[] = {
    {"allocate_same_period_is_already_allocated",
     true,
     {MONTHLY(1, 40, NOW - DAY, "2024-05")},
     "2024-05",
     JOB_ERR_ALREADY_ALLOCATED,
     "period 2024-05 is already allocated"},
    {"allocate_period_held_at_zero_is_already_allocated",
     true,
     {MONTHLY(1, 0, NOW - DAY, "2024-05")},
     "2024-05",
     JOB_ERR_ALREADY_ALLOCATED,
     "period 2024-05 is already allocated"},
    {"allocate_earlier_period_is_stale",
     true,
     {MONTHLY(1, 40, NOW - DAY, "2024-05")},
     "2024-04",
     JOB_ERR_STALE_PERIOD,
     "period 2024-04 is before allocated period 2024-05"},
    {"allocate_period_of_earlier_year_is_stale",
     true,
     {MONTHLY(1, 0, NOW - 2 * DAY, "2023-11"), MONTHLY(2, 40, NOW - DAY, "2024-01")},
     "2023-12",
     JOB_ERR_STALE_PERIOD,
     "period 2023-12 is before allocated period 2024-01"},
    {"allocate_already_allocated_wins_over_stale",
     true,
     {MONTHLY(2, 40, NOW - DAY, "2024-06"), MONTHLY(1, 40, NOW - 2 * DAY, "2024-05")},
     "2024-05",
     JOB_ERR_ALREADY_ALLOCATED,
     "period 2024-05 is already allocated"},
    {"allocate_unknown_plan_is_checked_first",
     false,
     {MONTHLY(2, 40, NOW - DAY, "2024-06"), MONTHLY(1, 40, NOW - 2 * DAY, "2024-05")},
     "2024-05",
     JOB_ERR_UNKNOWN_PLAN,
     "plan \"pro\" is not in the catalog"},
    {"allocate_unknown_plan_on_empty_account",
     false,
     {{0}},
     "2024-05",
     JOB_ERR_UNKNOWN_PLAN,
     "plan \"pro\" is not in the catalog"},
};

/* A rejected allocate adds no lot, forfeits nothing, leaves the plan alone,
 * and writes only the expiry of the pack at the end. */
static void run_allocate_reject_case(void **state)
{
    struct fx *fx = *state;
    const struct allocate_reject_case *c = fx->tcase;
    struct lot_spec lots[LOTS_MAX + 1] = {{0}};
    size_t n = 0;
    while (n < LOTS_MAX && c->lots[n].id != 0) {
        lots[n] = c->lots[n];
        n++;
    }
    lots[n++] = (struct lot_spec)PACK(50, 10, 10, NOW - DAY);
    add_lots(&fx->account, lots, n);
    const struct plan_info plan = {.monthly_credits = 30, .rollover_cap = 30};
    fx_set_type(fx, JOB_ALLOCATE);
    snprintf(fx->job.allocate.period, sizeof fx->job.allocate.period, "%s", c->period);
    fx->input.plan = c->plan_known ? &plan : NULL;

    apply(fx);

    assert_int_equal(fx->result.error, c->error);
    assert_string_equal(fx->result.message, c->message);
    assert_int_equal(fx->account.lot_count, n);
    const struct entry_spec want[] = {{50, ENTRY_EXPIRE, -10}, {0}};
    assert_entries(&fx->entries, want);
    assert_lots_follow_entries(&fx->account, lots, n, &fx->entries);
    assert_false(fx->account.has_plan);
    assert_false(fx->account.plan_changed);
    assert_int_equal(fx->result.amounts[RESULT_GRANTED], 0);
    assert_int_equal(fx->result.amounts[RESULT_FORFEITED], 0);
}

struct rollover_row {
    int64_t m, c, cap;
};

/* Monthly credits after an allocate are min(M + C, cap), the forfeit is
 * max(0, M + C - cap), and packs are never touched; M is spread over three
 * lots. */
static void allocate_leaves_min_of_m_plus_c_and_cap(void **state)
{
    (void)state;
    static const struct rollover_row rows[] = {
        {0, 100, 200},
        {50, 100, 200},
        {100, 100, 200},
        {101, 100, 200},
        {150, 100, 200},
        {200, 100, 200},
        {300, 100, 200},
        {0, 100, 100},
        {100, 100, 100},
        {1, 1, 1},
        {0, 1, 1},
        {2, 1, 3},
        {3, 1, 3},
        {7, 5, 11},
        {999, 1000, 1999},
        {1000, 1000, 1999},
        {1999, 1000, 1999},
        {INT64_C(1000000000000), INT64_C(1000000000000), INT64_C(10000000000000)},
        {INT64_C(10000000000000), INT64_C(1000000000000), INT64_C(10000000000000)},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const struct rollover_row *row = &rows[r];
        struct account account;
        ledger_account_init(&account, "user-1");
        struct entry_list entries = {0};
        int64_t parts[3] = {row->m / 3, row->m / 3, row->m - 2 * (row->m / 3)};
        static const char *const periods[3] = {"2024-01", "2024-02", "2024-03"};
        for (int i = 0; i < 3; i++) {
            struct lot_spec spec = MONTHLY(i + 1, parts[i], NOW - (3 - i) * 30 * DAY, periods[i]);
            spec.granted = parts[i] > 0 ? parts[i] : 1;
            struct lot lot = lot_from_spec(&spec);
            ledger_account_add_lot(&account, &lot);
        }
        struct lot pack = lot_from_spec(&(struct lot_spec)PACK(4, 70, 70, NOW + DAY));
        ledger_account_add_lot(&account, &pack);
        struct job job = {.type = JOB_ALLOCATE,
                          .user = "user-1",
                          .allocate = {.plan = "pro", .period = "2024-04"}};
        const struct plan_info plan = {.monthly_credits = row->c, .rollover_cap = row->cap};
        const struct ledger_input input = {.now_us = NOW, .plan = &plan, .new_lot_id = 5};
        struct result result = {0};

        ledger_apply(&account, &job, &input, &entries, &result);

        int64_t want_forfeit = row->m + row->c > row->cap ? row->m + row->c - row->cap : 0;
        int64_t want_monthly = row->m + row->c < row->cap ? row->m + row->c : row->cap;
        if (result.error != JOB_OK || result.amounts[RESULT_FORFEITED] != want_forfeit ||
            result.balance.monthly != want_monthly)
            print_message("row %zu: M=%" PRId64 " C=%" PRId64 " cap=%" PRId64 "\n", r, row->m,
                          row->c, row->cap);
        assert_int_equal(result.error, JOB_OK);
        assert_int_equal(result.amounts[RESULT_FORFEITED], want_forfeit);
        assert_int_equal(result.amounts[RESULT_GRANTED], row->c);
        assert_balance(&result.balance, 70, want_monthly);
        int64_t forfeit_sum = 0;
        for (size_t k = 0; k < entries.count; k++) {
            assert_int_not_equal(entries.items[k].lot_id, 4);
            if (entries.items[k].kind == ENTRY_FORFEIT)
                forfeit_sum -= entries.items[k].delta;
        }
        assert_int_equal(forfeit_sum, want_forfeit);
        ledger_account_free(&account);
        ledger_entries_free(&entries);
    }
}

/* ---------------------------------------------------------------------------
 * balance, names, accounts, results
 * ------------------------------------------------------------------------- */

static void balance_splits_usable_credits_by_kind(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {
        PACK(1, 10, 7, NOW + 1),
        PACK(2, 10, 10, NOW),
        PACK(3, 10, 4, NOW - 1),
        MONTHLY(4, 20, NOW - DAY, "2023-10"),
        MONTHLY(5, 0, NOW - DAY, "2023-11"),
    };
    add_lots(&fx->account, lots, 5);
    struct balance b;

    ledger_balance(&fx->account, NOW, &b);
    assert_balance(&b, 7, 20);
    ledger_balance(&fx->account, NOW - 1, &b);
    assert_balance(&b, 17, 20);
    ledger_balance(&fx->account, NOW + 1, &b);
    assert_balance(&b, 0, 20);
    assert_int_equal(fx->account.lots[2].remaining, 4); /* counting never expires */
    assert_false(fx->account.lots[2].changed);
}

static void balance_of_empty_account_is_zero(void **state)
{
    struct fx *fx = *state;
    struct balance b = {1, 1, 1, 1, 1};
    ledger_balance(&fx->account, NOW, &b);
    assert_balance(&b, 0, 0);
}

static void lot_kind_names_round_trip(void **state)
{
    (void)state;
    assert_string_equal(ledger_lot_kind_name(LOT_PACK), "pack");
    assert_string_equal(ledger_lot_kind_name(LOT_MONTHLY), "monthly");
    enum lot_kind kind = LOT_MONTHLY;
    assert_true(ledger_lot_kind_parse("pack", &kind));
    assert_int_equal(kind, LOT_PACK);
    assert_true(ledger_lot_kind_parse("monthly", &kind));
    assert_int_equal(kind, LOT_MONTHLY);
    static const char *const bad[] = {"", "Pack", "packs", "monthly ", "month", "consume"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kind = LOT_PACK;
        assert_false(ledger_lot_kind_parse(bad[i], &kind));
        assert_int_equal(kind, LOT_PACK);
    }
}

static void entry_kind_names_match_the_schema(void **state)
{
    (void)state;
    assert_string_equal(ledger_entry_kind_name(ENTRY_CONSUME), "consume");
    assert_string_equal(ledger_entry_kind_name(ENTRY_PURCHASE), "purchase");
    assert_string_equal(ledger_entry_kind_name(ENTRY_ALLOCATE), "allocate");
    assert_string_equal(ledger_entry_kind_name(ENTRY_FORFEIT), "forfeit");
    assert_string_equal(ledger_entry_kind_name(ENTRY_EXPIRE), "expire");
}

static void account_add_lot_copies_and_keeps_order(void **state)
{
    struct fx *fx = *state;
    for (int64_t id = 1; id <= 100; id++) {
        struct lot lot = lot_from_spec(&(struct lot_spec)PACK(101 - id, 10, id % 11, NOW + id));
        struct lot *copy = ledger_account_add_lot(&fx->account, &lot);
        assert_ptr_equal(copy, &fx->account.lots[fx->account.lot_count - 1]);
        lot.remaining = 0; /* the account holds a copy */
        assert_int_equal(copy->remaining, id % 11);
    }
    assert_int_equal(fx->account.lot_count, 100);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(fx->account.lots[i].lot_id, 100 - (int64_t)i);
}

static void apply_leaves_result_identity_alone(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 10, 10, NOW + DAY)};
    add_lots(&fx->account, lots, 1);
    const struct pack_info pack = {.credits = 5, .valid_days = 1};
    const enum job_type types[] = {JOB_CONSUME, JOB_PURCHASE, JOB_CONSUME};
    for (size_t i = 0; i < 3; i++) {
        struct result *r = &fx->result;
        memset(r, 0, sizeof *r);
        r->has_id = r->has_type = r->has_user = true;
        strcpy(r->id, "job-1");
        r->type = JOB_ALLOCATE;
        strcpy(r->user, "someone");
        r->done_at_ms = 123;
        r->replayed = true;
        for (unsigned a = 0; a < RESULT_AMOUNT_COUNT; a++)
            result_set_amount(r, (enum result_amount)a, 999);
        strcpy(r->message, "stale");
        fx_set_type(fx, types[i]);
        snprintf(fx->job.id, sizeof fx->job.id, "job-%zu", i); /* each ID is decided once */
        if (types[i] == JOB_CONSUME)
            fx->job.consume.amount = 4;
        fx->input.pack = &pack;
        fx->input.new_lot_id = 100 + (int64_t)i;

        apply(fx);

        assert_int_equal(r->error, JOB_OK);
        assert_true(r->has_id && r->has_type && r->has_user);
        assert_string_equal(r->id, "job-1");
        assert_int_equal(r->type, JOB_ALLOCATE);
        assert_string_equal(r->user, "someone");
        assert_int_equal(r->done_at_ms, 123);
        assert_true(r->replayed);
        assert_string_equal(r->message, "");
        assert_int_equal(r->amounts[RESULT_FORFEITED], 0);
        assert_int_equal(r->amounts[RESULT_CHARGED], types[i] == JOB_CONSUME ? 4 : 0);
        assert_int_equal(r->amounts[RESULT_GRANTED], types[i] == JOB_PURCHASE ? 5 : 0);
    }
}

/* Messages quote pack, payment_ref and plan whole, even at their limits and
 * in multi-byte UTF-8. */
static void rejection_messages_fit_longest_fields(void **state)
{
    struct fx *fx = *state;
    const struct pack_info pack = {.credits = 5, .valid_days = 1};
    struct {
        enum job_type type;
        const struct pack_info *pack;
        enum job_error error;
    } rows[] = {
        {JOB_PURCHASE, NULL, JOB_ERR_UNKNOWN_PACK},
        {JOB_PURCHASE, &pack, JOB_ERR_DUPLICATE_PAYMENT},
        {JOB_ALLOCATE, NULL, JOB_ERR_UNKNOWN_PLAN},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        fx_set_type(fx, rows[i].type);
        const char *quoted;
        if (rows[i].type == JOB_PURCHASE) {
            memset(fx->job.purchase.pack, 'k', JOB_PACK_BYTES_MAX);
            for (size_t k = 0; k < JOB_PAYMENT_REF_BYTES_MAX; k += 2)
                memcpy(&fx->job.purchase.payment_ref[k], "\xc3\xa9", 2); /* U+00E9 */
            quoted = rows[i].error == JOB_ERR_UNKNOWN_PACK ? fx->job.purchase.pack
                                                           : fx->job.purchase.payment_ref;
        } else {
            memset(fx->job.allocate.plan, 'p', JOB_PLAN_BYTES_MAX);
            quoted = fx->job.allocate.plan;
        }
        fx->input.pack = rows[i].pack;
        fx->input.payment_ref_used = true;
        fx->input.plan = NULL;

        apply(fx);

        assert_int_equal(fx->result.error, rows[i].error);
        assert_non_null(strstr(fx->result.message, quoted));
        assert_true(strlen(fx->result.message) <= RESULT_MESSAGE_BYTES_MAX);
    }
}

/* ---------------------------------------------------------------------------
 * Revision 2 (contract 9.4): helpers
 * ------------------------------------------------------------------------- */

/* An entry with what a give-back adds: the job it is written under (NULL:
 * the job's own ID) and what it gives back (NULL: nothing). */
struct entry_want {
    int64_t lot_id;
    enum entry_kind kind;
    int64_t delta;
    const char *job_id;
    const char *origin;
};

static void assert_same_str(const char *got, const char *want)
{
    if (want == NULL) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
}

/* entries[first..] are exactly want[0..n), in order, all written in
 * JOB_INDEX's transaction; only the entries of a hold, a consume and a grant
 * carry a tool or a ref. */
static void assert_entries_from(const struct entry_list *entries, size_t first,
                                const struct entry_want *want, size_t n)
{
    assert_true(entries->count >= first);
    assert_int_equal(entries->count - first, n);
    for (size_t i = 0; i < n; i++) {
        const struct entry *e = &entries->items[first + i];
        assert_int_equal(e->lot_id, want[i].lot_id);
        assert_string_equal(ledger_entry_kind_name(e->kind), ledger_entry_kind_name(want[i].kind));
        assert_int_equal(e->delta, want[i].delta);
        assert_int_equal(e->job_index, JOB_INDEX);
        assert_same_str(e->job_id, want[i].job_id);
        assert_same_str(e->origin, want[i].origin);
        if (e->kind != ENTRY_HOLD && e->kind != ENTRY_CONSUME && e->kind != ENTRY_GRANT) {
            assert_null(e->tool);
            assert_null(e->ref);
        }
    }
}

/* The lot shares are exactly want[0..n), in the order taken. */
static void assert_takes(const struct take_list *takes, const struct take *want, size_t n)
{
    assert_int_equal(takes->count, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(takes->items[i].lot_id, want[i].lot_id);
        assert_int_equal(takes->items[i].amount, want[i].amount);
    }
}

/* A hold as the store loads it; `takes` are what each lot still holds for
 * it (loaded for open holds only). */
static struct hold *add_hold(struct account *account, const char *id, int64_t amount,
                             enum hold_status status, int64_t expires_at_us,
                             const struct take *takes, size_t n)
{
    struct hold *hold = ledger_account_add_hold(account, id);
    hold->amount = amount;
    hold->status = status;
    hold->expires_at_us = expires_at_us;
    for (size_t i = 0; i < n; i++)
        ledger_takes_add(&hold->takes, takes[i].lot_id, takes[i].amount);
    return hold;
}

/* An applied consume or capture as the store loads it for its refunds:
 * what is still refundable in each lot, in the order taken. */
static struct charge *add_charge(struct account *account, const char *id, const struct take *takes,
                                 size_t n)
{
    struct charge *charge = ledger_account_add_charge(account, id);
    for (size_t i = 0; i < n; i++)
        ledger_takes_add(&charge->takes, takes[i].lot_id, takes[i].amount);
    return charge;
}

/* The fixture's job becomes a new one of `type` with ID `id`. */
static void fx_next_job(struct fx *fx, enum job_type type, const char *id)
{
    fx_set_type(fx, type);
    snprintf(fx->job.id, sizeof fx->job.id, "%s", id);
}

static void assert_rejected_with(const struct result *r, enum job_error error, const char *message)
{
    assert_string_equal(job_error_name(r->error), job_error_name(error));
    assert_string_equal(r->message, message);
    assert_int_equal(r->amounts_present, 0);
}

#define AMOUNT(a) RESULT_AMOUNT_BIT(RESULT_##a)

/* ---------------------------------------------------------------------------
 * hold
 * ------------------------------------------------------------------------- */

static void hold_takes_in_spending_order_one_hold_entry_per_lot(void **state)
{
    struct fx *fx = *state;
    /* The lots that expire by expires_at (a grant among them), then those
     * that never do by granted_at (a grant among the monthly lots). */
    const struct lot_spec lots[] = {
        MONTHLY(1, 10, NOW - 20 * DAY, "2023-10"),
        GRANT(2, 10, NOW - 30 * DAY, NONE),
        PACK(3, 10, 10, NOW + 5 * DAY),
        GRANT(4, 10, NOW - DAY, NOW + 2 * DAY),
        MONTHLY(5, 10, NOW - 10 * DAY, "2023-11"),
    };
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    fx_set_type(fx, JOB_HOLD);
    fx->job.hold.amount = 45;
    fx->job.hold.has_ttl = true;
    fx->job.hold.ttl = 600;
    fx->job.hold.has_tool = fx->job.hold.has_ref = true;
    strcpy(fx->job.hold.tool, "render");
    strcpy(fx->job.hold.ref, "video-9");

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    assert_string_equal(fx->result.message, "");
    const struct entry_want want[] = {
        {4, ENTRY_HOLD, -10, NULL, NULL}, {3, ENTRY_HOLD, -10, NULL, NULL},
        {2, ENTRY_HOLD, -10, NULL, NULL}, {1, ENTRY_HOLD, -10, NULL, NULL},
        {5, ENTRY_HOLD, -5, NULL, NULL},
    };
    assert_entries_from(&fx->entries, 0, want, ARRAY_LEN(want));
    for (size_t i = 0; i < fx->entries.count; i++) {
        assert_same_str(fx->entries.items[i].tool, "render");
        assert_same_str(fx->entries.items[i].ref, "video-9");
    }
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);

    assert_int_equal(fx->account.hold_count, 1);
    const struct hold *hold = ledger_account_hold(&fx->account, "job-1");
    assert_non_null(hold);
    assert_int_equal(hold->amount, 45);
    assert_int_equal(hold->status, HOLD_OPEN);
    assert_int_equal(hold->created_at_us, NOW);
    assert_int_equal(hold->expires_at_us, NOW + 600 * US_PER_S);
    assert_null(hold->closed_by);
    assert_true(hold->is_new);
    assert_false(hold->changed);
    assert_int_equal(hold->job_index, JOB_INDEX);
    const struct take takes[] = {{4, 10}, {3, 10}, {2, 10}, {1, 10}, {5, 5}};
    assert_takes(&hold->takes, takes, ARRAY_LEN(takes));
    assert_int_equal(fx->account.charge_count, 0); /* a hold charges nothing yet */

    assert_int_equal(fx->result.amounts_present, AMOUNT(HELD) | AMOUNT(HOLD_EXPIRES_AT));
    assert_int_equal(fx->result.amounts[RESULT_HELD], 45);
    assert_int_equal(fx->result.amounts[RESULT_HOLD_EXPIRES_AT], (NOW + 600 * US_PER_S) / 1000);
    assert_balance_of(&fx->result.balance, 0, 5, 0, 45);
}

static void hold_without_ttl_lives_an_hour_and_without_tool_or_ref_has_none(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 10, 10, NOW + DAY)};
    add_lots(&fx->account, lots, 1);
    fx_set_type(fx, JOB_HOLD);
    fx->job.hold.amount = 10;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want[] = {{1, ENTRY_HOLD, -10, NULL, NULL}};
    assert_entries_from(&fx->entries, 0, want, 1);
    assert_null(fx->entries.items[0].tool);
    assert_null(fx->entries.items[0].ref);
    const struct hold *hold = ledger_account_hold(&fx->account, "job-1");
    assert_non_null(hold);
    assert_int_equal(hold->expires_at_us, NOW + 3600 * US_PER_S);
    assert_int_equal(fx->result.amounts[RESULT_HOLD_EXPIRES_AT], NOW / 1000 + 3600 * 1000);
    assert_balance_of(&fx->result.balance, 0, 0, 0, 10);
}

/* Held credits are not usable: a hold of 20 elsewhere does not help. */
static void hold_above_usable_balance_is_insufficient_and_stores_nothing(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 20, 10, NOW + DAY), MONTHLY(2, 5, NOW - DAY, "2023-11"),
                                    PACK(3, 20, 0, NOW + DAY)};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    const struct take held[] = {{3, 20}};
    add_hold(&fx->account, "hold-0", 20, HOLD_OPEN, NOW + DAY, held, 1);
    fx_set_type(fx, JOB_HOLD);
    fx->job.hold.amount = 16;

    apply(fx);

    assert_rejected_with(&fx->result, JOB_ERR_INSUFFICIENT_CREDITS,
                         "usable balance 15 is below amount 16");
    assert_int_equal(fx->entries.count, 0);
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);
    assert_int_equal(fx->account.hold_count, 1);
    assert_null(ledger_account_hold(&fx->account, "job-1"));
    assert_int_equal(fx->account.charge_count, 0);
    assert_balance_of(&fx->result.balance, 10, 5, 0, 20);
}

static void held_credits_count_as_held_and_no_job_can_spend_them(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 100, 100, NOW + DAY)};
    add_lots(&fx->account, lots, 1);

    fx_next_job(fx, JOB_HOLD, "hold-a");
    fx->job.hold.amount = 60;
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    assert_balance_of(&fx->result.balance, 40, 0, 0, 60);

    fx_next_job(fx, JOB_CONSUME, "consume-1");
    fx->job.consume.amount = 41;
    apply(fx);
    assert_rejected_with(&fx->result, JOB_ERR_INSUFFICIENT_CREDITS,
                         "usable balance 40 is below amount 41");

    fx_next_job(fx, JOB_HOLD, "hold-b");
    fx->job.hold.amount = 41;
    apply(fx);
    assert_rejected_with(&fx->result, JOB_ERR_INSUFFICIENT_CREDITS,
                         "usable balance 40 is below amount 41");
    assert_null(ledger_account_hold(&fx->account, "hold-b"));

    fx_next_job(fx, JOB_HOLD, "hold-c");
    fx->job.hold.amount = 40;
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    assert_balance_of(&fx->result.balance, 0, 0, 0, 100);
    struct balance b;
    ledger_balance(&fx->account, NOW, &b);
    assert_balance_of(&b, 0, 0, 0, 100);
    assert_int_equal(fx->account.lots[0].remaining, 0);
    assert_int_equal(fx->entries.count, 2);
}

/* ---------------------------------------------------------------------------
 * capture and release: the checks, in their order (a table)
 * ------------------------------------------------------------------------- */

struct hold_check_case {
    const char *name;
    enum job_type type;      /* capture or release */
    bool has_hold;           /* the user has hold-1 (30 credits of lot 1) */
    enum hold_status status; /* as loaded */
    int64_t expires_in_us;   /* its expires_at - NOW */
    int64_t amount;          /* capture: the amount */
    enum job_error error;
    const char *message;
    bool expires_now; /* this very transaction releases it */
};

#define EXPIRED_MESSAGE "hold hold-1 expired and was released"

static struct hold_check_case hold_check_cases[] = {
    {"capture_of_no_hold_is_unknown_hold", JOB_CAPTURE, false, HOLD_OPEN, DAY, 10,
     JOB_ERR_UNKNOWN_HOLD, "this user has no hold hold-1", false},
    {"capture_of_captured_hold_is_hold_closed", JOB_CAPTURE, true, HOLD_CAPTURED, DAY, 10,
     JOB_ERR_HOLD_CLOSED, "hold hold-1 was captured already", false},
    {"capture_of_released_hold_is_hold_closed", JOB_CAPTURE, true, HOLD_RELEASED, DAY, 10,
     JOB_ERR_HOLD_CLOSED, "hold hold-1 was released already", false},
    {"capture_of_closed_hold_past_its_expiry_is_hold_closed", JOB_CAPTURE, true, HOLD_CAPTURED,
     -DAY, 10, JOB_ERR_HOLD_CLOSED, "hold hold-1 was captured already", false},
    {"capture_closed_is_checked_before_the_amount", JOB_CAPTURE, true, HOLD_RELEASED, DAY, 31,
     JOB_ERR_HOLD_CLOSED, "hold hold-1 was released already", false},
    {"capture_of_hold_its_expiry_released_is_hold_expired", JOB_CAPTURE, true, HOLD_EXPIRED, -DAY,
     10, JOB_ERR_HOLD_EXPIRED, EXPIRED_MESSAGE, false},
    {"capture_at_expires_at_is_hold_expired_and_releases_it", JOB_CAPTURE, true, HOLD_OPEN, 0, 10,
     JOB_ERR_HOLD_EXPIRED, EXPIRED_MESSAGE, true},
    {"capture_after_expires_at_is_hold_expired_and_releases_it", JOB_CAPTURE, true, HOLD_OPEN, -1,
     10, JOB_ERR_HOLD_EXPIRED, EXPIRED_MESSAGE, true},
    {"capture_expired_is_checked_before_the_amount", JOB_CAPTURE, true, HOLD_OPEN, 0, 31,
     JOB_ERR_HOLD_EXPIRED, EXPIRED_MESSAGE, true},
    {"capture_above_the_hold_is_capture_exceeds_hold", JOB_CAPTURE, true, HOLD_OPEN, DAY, 31,
     JOB_ERR_CAPTURE_EXCEEDS_HOLD, "amount 31 is above the hold's 30", false},
    {"capture_just_before_expires_at_is_applied", JOB_CAPTURE, true, HOLD_OPEN, 1, 30, JOB_OK, "",
     false},
    {"release_of_no_hold_is_unknown_hold", JOB_RELEASE, false, HOLD_OPEN, DAY, 0,
     JOB_ERR_UNKNOWN_HOLD, "this user has no hold hold-1", false},
    {"release_of_captured_hold_is_hold_closed", JOB_RELEASE, true, HOLD_CAPTURED, DAY, 0,
     JOB_ERR_HOLD_CLOSED, "hold hold-1 was captured already", false},
    {"release_of_released_hold_is_hold_closed", JOB_RELEASE, true, HOLD_RELEASED, DAY, 0,
     JOB_ERR_HOLD_CLOSED, "hold hold-1 was released already", false},
    {"release_of_closed_hold_past_its_expiry_is_hold_closed", JOB_RELEASE, true, HOLD_RELEASED,
     -DAY, 0, JOB_ERR_HOLD_CLOSED, "hold hold-1 was released already", false},
    {"release_of_hold_its_expiry_released_is_hold_expired", JOB_RELEASE, true, HOLD_EXPIRED, -DAY,
     0, JOB_ERR_HOLD_EXPIRED, EXPIRED_MESSAGE, false},
    {"release_at_expires_at_is_hold_expired_and_releases_it", JOB_RELEASE, true, HOLD_OPEN, 0, 0,
     JOB_ERR_HOLD_EXPIRED, EXPIRED_MESSAGE, true},
    {"release_just_before_expires_at_is_applied", JOB_RELEASE, true, HOLD_OPEN, 1, 0, JOB_OK, "",
     false},
};

static void run_hold_check_case(void **state)
{
    struct fx *fx = *state;
    const struct hold_check_case *c = fx->tcase;
    const struct lot_spec lots[] = {PACK(1, 100, 70, NOW + 30 * DAY)};
    add_lots(&fx->account, lots, 1);
    struct hold *hold = NULL;
    if (c->has_hold) {
        const struct take took[] = {{1, 30}};
        bool open = c->status == HOLD_OPEN;
        hold = add_hold(&fx->account, "hold-1", 30, c->status, NOW + c->expires_in_us, took,
                        open ? 1 : 0);
        hold->captured = c->status == HOLD_CAPTURED ? 12 : 0;
    }
    fx_set_type(fx, c->type);
    if (c->type == JOB_CAPTURE)
        fx->job.capture.amount = c->amount;

    apply(fx);

    assert_string_equal(job_error_name(fx->result.error), job_error_name(c->error));
    assert_string_equal(fx->result.message, c->message);
    if (c->expires_now) {
        /* Released under the hold's own ID, closed by no job. */
        const struct entry_want want[] = {{1, ENTRY_RELEASE, 30, "hold-1", "hold-1"}};
        assert_entries_from(&fx->entries, 0, want, 1);
        assert_int_equal(hold->status, HOLD_EXPIRED);
        assert_null(hold->closed_by);
        assert_true(hold->changed);
        assert_int_equal(ledger_takes_total(&hold->takes), 0);
        assert_balance_of(&fx->result.balance, 100, 0, 0, 0);
    } else if (c->error != JOB_OK) {
        assert_int_equal(fx->entries.count, 0);
        if (hold != NULL) {
            assert_int_equal(hold->status, c->status);
            assert_false(hold->changed);
            assert_null(hold->closed_by);
        }
        bool open = hold != NULL && c->status == HOLD_OPEN;
        assert_balance_of(&fx->result.balance, 70, 0, 0, open ? 30 : 0);
    } else if (c->type == JOB_CAPTURE) {
        assert_int_equal(fx->entries.count, 0); /* all charged, nothing back */
        assert_int_equal(hold->status, HOLD_CAPTURED);
        assert_int_equal(hold->captured, 30);
        assert_same_str(hold->closed_by, "job-1");
        assert_balance_of(&fx->result.balance, 70, 0, 0, 0);
    } else {
        const struct entry_want want[] = {{1, ENTRY_RELEASE, 30, NULL, "hold-1"}};
        assert_entries_from(&fx->entries, 0, want, 1);
        assert_int_equal(hold->status, HOLD_RELEASED);
        assert_same_str(hold->closed_by, "job-1");
        assert_balance_of(&fx->result.balance, 100, 0, 0, 0);
    }
    if (c->error != JOB_OK) {
        assert_int_equal(fx->result.amounts_present, 0);
        assert_int_equal(fx->account.charge_count, 0);
    }
    assert_lots_follow_entries(&fx->account, lots, 1, &fx->entries);
}

/* Another user's hold counts as none: the rule looks in the job's account
 * only, and leaves the other account alone. */
static void capture_or_release_of_another_users_hold_is_unknown_hold(void **state)
{
    struct fx *fx = *state;
    struct account other;
    ledger_account_init(&other, "user-2");
    struct lot theirs = lot_from_spec(&(struct lot_spec)PACK(1, 100, 70, NOW + DAY));
    ledger_account_add_lot(&other, &theirs);
    const struct take took[] = {{1, 30}};
    struct hold *hold = add_hold(&other, "hold-1", 30, HOLD_OPEN, NOW + DAY, took, 1);
    const struct lot_spec lots[] = {PACK(2, 100, 100, NOW + DAY)};
    add_lots(&fx->account, lots, 1);
    const enum job_type types[] = {JOB_CAPTURE, JOB_RELEASE};
    for (size_t i = 0; i < ARRAY_LEN(types); i++) {
        fx_next_job(fx, types[i], i == 0 ? "capture-1" : "release-1");
        if (types[i] == JOB_CAPTURE)
            fx->job.capture.amount = 10;

        apply(fx);

        assert_rejected_with(&fx->result, JOB_ERR_UNKNOWN_HOLD, "this user has no hold hold-1");
        assert_int_equal(fx->entries.count, 0);
        assert_balance_of(&fx->result.balance, 100, 0, 0, 0);
    }
    assert_int_equal(hold->status, HOLD_OPEN);
    assert_false(hold->changed);
    assert_int_equal(ledger_takes_total(&hold->takes), 30);
    assert_int_equal(other.lots[0].remaining, 70);
    assert_int_equal(fx->account.hold_count, 0);
    ledger_account_free(&other);
}

/* ---------------------------------------------------------------------------
 * capture applied: charge, and give the rest back last taken first (a table)
 * ------------------------------------------------------------------------- */

struct capture_case {
    const char *name;
    int64_t amount;
    struct entry_want entries[4];
    size_t entry_count;
    struct take charge[3]; /* what the capture keeps, refundable */
    size_t charge_count;
    int64_t pack_after, monthly_after;
};

/* hold-1 took 30 from lot 1 (expires soonest), then 10 from lot 2 and 10
 * from lot 3 (monthly). */
static struct capture_case capture_cases[] = {
    {"capture_partial_releases_the_rest_last_taken_first_keeping_the_soonest_expiring",
     25,
     {{3, ENTRY_RELEASE, 10, NULL, "hold-1"},
      {2, ENTRY_RELEASE, 10, NULL, "hold-1"},
      {1, ENTRY_RELEASE, 5, NULL, "hold-1"}},
     3,
     {{1, 25}},
     1,
     105,
     90},
    {"capture_of_zero_charges_nothing_and_releases_everything",
     0,
     {{3, ENTRY_RELEASE, 10, NULL, "hold-1"},
      {2, ENTRY_RELEASE, 10, NULL, "hold-1"},
      {1, ENTRY_RELEASE, 30, NULL, "hold-1"}},
     3,
     {{0, 0}},
     0,
     130,
     90},
    {"capture_of_the_full_amount_releases_nothing",
     50,
     {{0, ENTRY_RELEASE, 0, NULL, NULL}},
     0,
     {{1, 30}, {2, 10}, {3, 10}},
     3,
     90,
     80},
};

static void run_capture_case(void **state)
{
    struct fx *fx = *state;
    const struct capture_case *c = fx->tcase;
    const struct lot_spec lots[] = {PACK(1, 100, 0, NOW + DAY), PACK(2, 100, 90, NOW + 2 * DAY),
                                    MONTHLY(3, 80, NOW - DAY, "2023-11")};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    const struct take took[] = {{1, 30}, {2, 10}, {3, 10}};
    struct hold *hold =
        add_hold(&fx->account, "hold-1", 50, HOLD_OPEN, NOW + DAY, took, ARRAY_LEN(took));
    fx_set_type(fx, JOB_CAPTURE);
    fx->job.capture.amount = c->amount;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    assert_string_equal(fx->result.message, "");
    assert_entries_from(&fx->entries, 0, c->entries, c->entry_count);
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);
    assert_int_equal(hold->status, HOLD_CAPTURED);
    assert_int_equal(hold->captured, c->amount);
    assert_same_str(hold->closed_by, "job-1");
    assert_true(hold->changed);
    assert_false(hold->is_new);
    /* The capture is a charge of its own ID: what the hold kept. */
    const struct charge *charge = ledger_account_charge(&fx->account, "job-1");
    assert_non_null(charge);
    assert_takes(&charge->takes, c->charge, c->charge_count);
    assert_int_equal(ledger_takes_total(&charge->takes), c->amount);
    assert_int_equal(fx->result.amounts_present, AMOUNT(CHARGED) | AMOUNT(RELEASED));
    assert_int_equal(fx->result.amounts[RESULT_CHARGED], c->amount);
    assert_int_equal(fx->result.amounts[RESULT_RELEASED], 50 - c->amount);
    assert_balance_of(&fx->result.balance, c->pack_after, c->monthly_after, 0, 0);
}

/* ---------------------------------------------------------------------------
 * release, and give-backs to lots no longer usable
 * ------------------------------------------------------------------------- */

static void release_gives_everything_back_last_taken_first(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 100, 0, NOW + DAY), PACK(2, 100, 90, NOW + 2 * DAY),
                                    GRANT(3, 80, NOW - DAY, NONE)};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    const struct take took[] = {{1, 30}, {2, 10}, {3, 10}};
    struct hold *hold =
        add_hold(&fx->account, "hold-1", 50, HOLD_OPEN, NOW + DAY, took, ARRAY_LEN(took));
    fx_set_type(fx, JOB_RELEASE);

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want[] = {{3, ENTRY_RELEASE, 10, NULL, "hold-1"},
                                      {2, ENTRY_RELEASE, 10, NULL, "hold-1"},
                                      {1, ENTRY_RELEASE, 30, NULL, "hold-1"}};
    assert_entries_from(&fx->entries, 0, want, ARRAY_LEN(want));
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);
    assert_int_equal(hold->status, HOLD_RELEASED);
    assert_same_str(hold->closed_by, "job-1");
    assert_true(hold->changed);
    assert_int_equal(ledger_takes_total(&hold->takes), 0);
    assert_int_equal(fx->account.charge_count, 0); /* a release charges nothing */
    assert_int_equal(fx->result.amounts_present, AMOUNT(RELEASED));
    assert_int_equal(fx->result.amounts[RESULT_RELEASED], 50);
    assert_balance_of(&fx->result.balance, 130, 0, 90, 0);
}

/* Many small lots (a user who bought thousands of one-credit packs):
 * MANY_LOTS packs of 1 credit, their expiries and lot IDs in a scrambled
 * order (three share each expiry, so lot_id breaks ties), every tenth
 * already spent and every seventh revoked, and 20 monthly lots after them.
 * A hold over all but 5 usable credits takes them one by one in spending
 * order; its release gives each its credit back, the one taken last first. */
#define MANY_LOTS 3000
#define MANY_MONTHLY 20

static int64_t scrambled(int64_t i, int64_t n)
{
    return (i * 1031) % n; /* 1031 is prime and does not divide n: a permutation */
}

static void many_lots_add(struct account *account)
{
    for (int64_t i = 0; i < MANY_LOTS; i++) {
        int64_t id = 1 + scrambled(i, MANY_LOTS);
        struct lot_spec spec = PACK(id, 1, i % 10 == 0 ? 0 : 1, NOW + (1 + i / 3) * DAY);
        spec.revoked = i % 7 == 0;
        if (spec.revoked)
            spec.remaining = 0;
        struct lot lot = lot_from_spec(&spec);
        ledger_account_add_lot(account, &lot);
    }
    for (int64_t i = 0; i < MANY_MONTHLY; i++) {
        struct lot_spec spec = MONTHLY(MANY_LOTS + 1 + i, 1000, NOW - (i + 1) * DAY, "2023-10");
        struct lot lot = lot_from_spec(&spec);
        ledger_account_add_lot(account, &lot);
    }
}

struct lot_key {
    int64_t expires_at_us;
    int64_t lot_id;
};

static int compare_lot_keys(const void *a, const void *b)
{
    const struct lot_key *x = a, *y = b;
    if (x->expires_at_us != y->expires_at_us)
        return x->expires_at_us < y->expires_at_us ? -1 : 1;
    return (x->lot_id > y->lot_id) - (x->lot_id < y->lot_id);
}

/* The lot IDs of the usable lots of many_lots_add() in the contract's
 * spending order: packs by expiry then lot_id, then monthly oldest first. */
static size_t many_lots_order(const struct account *account, int64_t *ids)
{
    struct lot_key *keys = calloc(MANY_LOTS, sizeof *keys);
    assert_non_null(keys);
    size_t n = 0;
    for (size_t i = 0; i < MANY_LOTS; i++)
        if (account->lots[i].remaining > 0)
            keys[n++] = (struct lot_key){account->lots[i].expires_at_us, account->lots[i].lot_id};
    qsort(keys, n, sizeof *keys, compare_lot_keys);
    for (size_t i = 0; i < n; i++)
        ids[i] = keys[i].lot_id;
    free(keys);
    for (int64_t i = MANY_MONTHLY; i-- > 0;)
        ids[n++] = MANY_LOTS + 1 + i;
    return n;
}

static void hold_over_thousands_of_lots_takes_and_gives_back_in_spending_order(void **state)
{
    struct fx *fx = *state;
    many_lots_add(&fx->account);
    int64_t *order = calloc(MANY_LOTS + MANY_MONTHLY, sizeof *order);
    assert_non_null(order);
    size_t packs = many_lots_order(&fx->account, order) - MANY_MONTHLY;
    fx_set_type(fx, JOB_HOLD);
    fx->job.hold.amount = (int64_t)packs + MANY_MONTHLY * 1000 - 5;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    assert_int_equal(fx->entries.count, packs + MANY_MONTHLY);
    for (size_t i = 0; i < fx->entries.count; i++) {
        const struct entry *e = &fx->entries.items[i];
        assert_int_equal(e->lot_id, order[i]);
        assert_int_equal(e->kind, ENTRY_HOLD);
        assert_int_equal(e->delta, i < packs ? -1 : i + 1 < fx->entries.count ? -1000 : -995);
    }
    assert_int_equal(fx->result.balance.total, 5);

    size_t held = fx->entries.count;
    fx_next_job(fx, JOB_RELEASE, "release-1");
    strcpy(fx->job.release.hold, "job-1");
    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    assert_int_equal(fx->entries.count, 2 * held);
    for (size_t i = 0; i < held; i++) {
        const struct entry *e = &fx->entries.items[held + i];
        const struct entry *took = &fx->entries.items[held - 1 - i];
        assert_int_equal(e->lot_id, took->lot_id);
        assert_int_equal(e->kind, ENTRY_RELEASE);
        assert_int_equal(e->delta, -took->delta);
    }
    assert_int_equal(fx->result.balance.total, (int64_t)packs + MANY_MONTHLY * 1000);
    for (size_t i = 0; i < fx->account.lot_count; i++)
        assert_false(fx->account.lots[i].remaining < 0);
    free(order);
}

/* Credits held past their lot's expiry are not lost while the hold is
 * open; given back, they expire at once, and `released` counts them. */
static void release_to_an_expired_lot_writes_release_then_expire(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 100, 0, NOW - DAY), PACK(2, 100, 80, NOW + DAY)};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    const struct take took[] = {{1, 20}, {2, 20}};
    add_hold(&fx->account, "hold-1", 40, HOLD_OPEN, NOW + DAY, took, ARRAY_LEN(took));
    fx_set_type(fx, JOB_RELEASE);

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want[] = {{2, ENTRY_RELEASE, 20, NULL, "hold-1"},
                                      {1, ENTRY_RELEASE, 20, NULL, "hold-1"},
                                      {1, ENTRY_EXPIRE, -20, NULL, "hold-1"}};
    assert_entries_from(&fx->entries, 0, want, ARRAY_LEN(want));
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);
    assert_int_equal(fx->account.lots[0].remaining, 0);
    assert_int_equal(fx->result.amounts[RESULT_RELEASED], 40);
    assert_balance_of(&fx->result.balance, 100, 0, 0, 0);
}

static void capture_giving_back_to_an_expired_lot_expires_that_share(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 100, 0, NOW - DAY), PACK(2, 100, 80, NOW + DAY)};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    const struct take took[] = {{1, 20}, {2, 20}};
    add_hold(&fx->account, "hold-1", 40, HOLD_OPEN, NOW + DAY, took, ARRAY_LEN(took));
    fx_set_type(fx, JOB_CAPTURE);
    fx->job.capture.amount = 10;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want[] = {{2, ENTRY_RELEASE, 20, NULL, "hold-1"},
                                      {1, ENTRY_RELEASE, 10, NULL, "hold-1"},
                                      {1, ENTRY_EXPIRE, -10, NULL, "hold-1"}};
    assert_entries_from(&fx->entries, 0, want, ARRAY_LEN(want));
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);
    assert_int_equal(fx->result.amounts[RESULT_CHARGED], 10);
    assert_int_equal(fx->result.amounts[RESULT_RELEASED], 30);
    const struct take kept[] = {{1, 10}};
    assert_takes(&ledger_account_charge(&fx->account, "job-1")->takes, kept, 1);
    assert_balance_of(&fx->result.balance, 100, 0, 0, 0);
}

static void release_to_a_revoked_lot_writes_release_then_revoke(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {REVOKED_PACK(1, 100, NOW + DAY), PACK(2, 100, 80, NOW + DAY)};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    const struct take took[] = {{1, 20}, {2, 20}};
    add_hold(&fx->account, "hold-1", 40, HOLD_OPEN, NOW + DAY, took, ARRAY_LEN(took));
    fx_set_type(fx, JOB_RELEASE);

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want[] = {{2, ENTRY_RELEASE, 20, NULL, "hold-1"},
                                      {1, ENTRY_RELEASE, 20, NULL, "hold-1"},
                                      {1, ENTRY_REVOKE, -20, NULL, "hold-1"}};
    assert_entries_from(&fx->entries, 0, want, ARRAY_LEN(want));
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);
    assert_true(fx->account.lots[0].revoked);
    assert_int_equal(fx->account.lots[0].remaining, 0);
    assert_int_equal(fx->result.amounts[RESULT_RELEASED], 40);
    assert_balance_of(&fx->result.balance, 100, 0, 0, 0);
}

/* An open hold past its expires_at is released by the transaction of any
 * job of its user, before the job's rule, even a job that is rejected: under
 * the hold's ID, status expired, closed by no job. A share of a lot that
 * expired meanwhile expires at once. */
static void hold_past_its_expiry_is_released_by_any_job_of_its_user(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 100, 65, NOW + DAY), PACK(2, 100, 0, NOW - 1)};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    const struct take took[] = {{1, 30}, {2, 10}};
    struct hold *overdue =
        add_hold(&fx->account, "hold-1", 40, HOLD_OPEN, NOW - 1, took, ARRAY_LEN(took));
    const struct take other_took[] = {{1, 5}};
    struct hold *live = add_hold(&fx->account, "hold-2", 5, HOLD_OPEN, NOW + 1, other_took, 1);
    fx_next_job(fx, JOB_CONSUME, "consume-1");
    fx->job.consume.amount = 1000;

    apply(fx);

    assert_rejected_with(&fx->result, JOB_ERR_INSUFFICIENT_CREDITS,
                         "usable balance 95 is below amount 1000");
    const struct entry_want want[] = {{2, ENTRY_RELEASE, 10, "hold-1", "hold-1"},
                                      {2, ENTRY_EXPIRE, -10, "hold-1", "hold-1"},
                                      {1, ENTRY_RELEASE, 30, "hold-1", "hold-1"}};
    assert_entries_from(&fx->entries, 0, want, ARRAY_LEN(want));
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);
    assert_int_equal(overdue->status, HOLD_EXPIRED);
    assert_null(overdue->closed_by);
    assert_true(overdue->changed);
    assert_int_equal(live->status, HOLD_OPEN);
    assert_false(live->changed);
    assert_balance_of(&fx->result.balance, 95, 0, 0, 5);
}

/* ---------------------------------------------------------------------------
 * refund
 * ------------------------------------------------------------------------- */

struct refund_reject_case {
    const char *name;
    bool has_charge; /* the user has an applied consume charge-1 */
    int64_t left;    /* what is still refundable of it (in lot 1) */
    bool hold_named; /* charge-1 is the ID of the user's hold instead */
    bool has_amount;
    int64_t amount;
    enum job_error error;
    const char *message;
};

#define NOT_A_CHARGE "charge-1 is not an applied consume or capture of this user"

static struct refund_reject_case refund_reject_cases[] = {
    {"refund_of_no_charge_is_unknown_charge", false, 0, false, true, 5, JOB_ERR_UNKNOWN_CHARGE,
     NOT_A_CHARGE},
    {"refund_naming_a_hold_is_unknown_charge", false, 0, true, false, 0, JOB_ERR_UNKNOWN_CHARGE,
     NOT_A_CHARGE},
    {"refund_above_what_is_left_is_refund_exceeds_charge", true, 30, false, true, 31,
     JOB_ERR_REFUND_EXCEEDS_CHARGE, "30 credits are left to refund of charge charge-1"},
    {"refund_without_amount_when_nothing_is_left_is_refund_exceeds_charge", true, 0, false, false,
     0, JOB_ERR_REFUND_EXCEEDS_CHARGE, "0 credits are left to refund of charge charge-1"},
    {"refund_of_an_amount_when_nothing_is_left_is_refund_exceeds_charge", true, 0, false, true, 1,
     JOB_ERR_REFUND_EXCEEDS_CHARGE, "0 credits are left to refund of charge charge-1"},
};

static void run_refund_reject_case(void **state)
{
    struct fx *fx = *state;
    const struct refund_reject_case *c = fx->tcase;
    const struct lot_spec lots[] = {PACK(1, 100, 40, NOW + DAY)};
    add_lots(&fx->account, lots, 1);
    const struct take took[] = {{1, c->left > 0 ? c->left : 30}};
    struct charge *charge = NULL;
    if (c->has_charge)
        charge = add_charge(&fx->account, "charge-1", took, c->left > 0 ? 1 : 0);
    if (c->hold_named)
        add_hold(&fx->account, "charge-1", 30, HOLD_OPEN, NOW + DAY, took, 1);
    fx_set_type(fx, JOB_REFUND);
    fx->job.refund.has_amount = c->has_amount;
    fx->job.refund.amount = c->amount;

    apply(fx);

    assert_rejected_with(&fx->result, c->error, c->message);
    assert_int_equal(fx->entries.count, 0);
    assert_lots_follow_entries(&fx->account, lots, 1, &fx->entries);
    if (charge != NULL)
        assert_int_equal(ledger_takes_total(&charge->takes), c->left);
    assert_balance_of(&fx->result.balance, 40, 0, 0, c->hold_named ? 30 : 0);
}

static void refund_of_another_users_charge_is_unknown_charge(void **state)
{
    struct fx *fx = *state;
    struct account other;
    ledger_account_init(&other, "user-2");
    struct lot theirs = lot_from_spec(&(struct lot_spec)PACK(1, 100, 70, NOW + DAY));
    ledger_account_add_lot(&other, &theirs);
    const struct take took[] = {{1, 30}};
    struct charge *charge = add_charge(&other, "charge-1", took, 1);
    fx_set_type(fx, JOB_REFUND);

    apply(fx);

    assert_rejected_with(&fx->result, JOB_ERR_UNKNOWN_CHARGE, NOT_A_CHARGE);
    assert_int_equal(fx->entries.count, 0);
    assert_int_equal(ledger_takes_total(&charge->takes), 30);
    assert_int_equal(other.lots[0].remaining, 70);
    ledger_account_free(&other);
}

/* Several partial refunds of one charge, each under its own ID; without an
 * amount, all that is left; then nothing is. Each gives back to the lot
 * the consume took from last, first. */
static void refunds_of_a_consume_give_back_the_lot_taken_last_first(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 100, 100, NOW + DAY), PACK(2, 100, 100, NOW + 2 * DAY),
                                    MONTHLY(3, 50, NOW - DAY, "2023-11")};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    fx_next_job(fx, JOB_CONSUME, "charge-1");
    fx->job.consume.amount = 230;
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    const struct take took[] = {{1, 100}, {2, 100}, {3, 30}};
    assert_takes(&ledger_account_charge(&fx->account, "charge-1")->takes, took, ARRAY_LEN(took));

    size_t first = fx->entries.count;
    fx_next_job(fx, JOB_REFUND, "refund-1");
    fx->job.refund.has_amount = true;
    fx->job.refund.amount = 40;
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    assert_string_equal(fx->result.message, "");
    const struct entry_want want1[] = {{3, ENTRY_REFUND, 30, NULL, "charge-1"},
                                       {2, ENTRY_REFUND, 10, NULL, "charge-1"}};
    assert_entries_from(&fx->entries, first, want1, ARRAY_LEN(want1));
    assert_int_equal(fx->result.amounts_present, AMOUNT(REFUNDED));
    assert_int_equal(fx->result.amounts[RESULT_REFUNDED], 40);
    assert_balance_of(&fx->result.balance, 10, 50, 0, 0);

    first = fx->entries.count;
    fx_next_job(fx, JOB_REFUND, "refund-2");
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want2[] = {{2, ENTRY_REFUND, 90, NULL, "charge-1"},
                                       {1, ENTRY_REFUND, 100, NULL, "charge-1"}};
    assert_entries_from(&fx->entries, first, want2, ARRAY_LEN(want2));
    assert_int_equal(fx->result.amounts[RESULT_REFUNDED], 190);
    assert_balance_of(&fx->result.balance, 200, 50, 0, 0);

    first = fx->entries.count;
    fx_next_job(fx, JOB_REFUND, "refund-3");
    apply(fx);
    assert_rejected_with(&fx->result, JOB_ERR_REFUND_EXCEEDS_CHARGE,
                         "0 credits are left to refund of charge charge-1");
    assert_int_equal(fx->entries.count, first);
    /* Every lot is back where it started, moved by exactly its entries. */
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);
    for (size_t i = 0; i < ARRAY_LEN(lots); i++)
        assert_int_equal(fx->account.lots[i].remaining, lots[i].remaining);
}

/* A capture's refund gives back what its hold took and did not give back:
 * the credits the hold took first. */
static void refund_of_a_capture_gives_back_what_its_hold_kept(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 100, 20, NOW + DAY), PACK(2, 100, 100, NOW + 2 * DAY)};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    fx_next_job(fx, JOB_HOLD, "hold-1");
    fx->job.hold.amount = 50;
    apply(fx);
    fx_next_job(fx, JOB_CAPTURE, "capture-1");
    strcpy(fx->job.capture.hold, "hold-1");
    fx->job.capture.amount = 30;
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    const struct take kept[] = {{1, 20}, {2, 10}};
    assert_takes(&ledger_account_charge(&fx->account, "capture-1")->takes, kept, ARRAY_LEN(kept));

    size_t first = fx->entries.count;
    fx_next_job(fx, JOB_REFUND, "refund-1");
    strcpy(fx->job.refund.charge, "capture-1");
    fx->job.refund.has_amount = true;
    fx->job.refund.amount = 15;
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want1[] = {{2, ENTRY_REFUND, 10, NULL, "capture-1"},
                                       {1, ENTRY_REFUND, 5, NULL, "capture-1"}};
    assert_entries_from(&fx->entries, first, want1, ARRAY_LEN(want1));
    assert_int_equal(fx->result.amounts[RESULT_REFUNDED], 15);

    first = fx->entries.count;
    fx_next_job(fx, JOB_REFUND, "refund-2");
    strcpy(fx->job.refund.charge, "capture-1");
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want2[] = {{1, ENTRY_REFUND, 15, NULL, "capture-1"}};
    assert_entries_from(&fx->entries, first, want2, 1);
    assert_int_equal(fx->result.amounts[RESULT_REFUNDED], 15);
    assert_balance_of(&fx->result.balance, 120, 0, 0, 0);

    /* A hold is not a charge. */
    fx_next_job(fx, JOB_REFUND, "refund-3");
    strcpy(fx->job.refund.charge, "hold-1");
    apply(fx);
    assert_rejected_with(&fx->result, JOB_ERR_UNKNOWN_CHARGE,
                         "hold-1 is not an applied consume or capture of this user");
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);
}

static void refund_to_an_expired_lot_writes_refund_then_expire(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 100, 0, NOW - 1), PACK(2, 100, 90, NOW + DAY)};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    const struct take took[] = {{1, 20}, {2, 10}};
    add_charge(&fx->account, "charge-1", took, ARRAY_LEN(took));
    fx_set_type(fx, JOB_REFUND);

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want[] = {{2, ENTRY_REFUND, 10, NULL, "charge-1"},
                                      {1, ENTRY_REFUND, 20, NULL, "charge-1"},
                                      {1, ENTRY_EXPIRE, -20, NULL, "charge-1"}};
    assert_entries_from(&fx->entries, 0, want, ARRAY_LEN(want));
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);
    assert_int_equal(fx->result.amounts[RESULT_REFUNDED], 30); /* every credit given back */
    assert_balance_of(&fx->result.balance, 100, 0, 0, 0);
}

/* ---------------------------------------------------------------------------
 * revoke
 * ------------------------------------------------------------------------- */

/* What is left of the pack leaves with a revoke entry; what was spent stays
 * spent; a refund to it later leaves it again. */
static void revoke_takes_what_is_left_and_a_later_refund_to_it_leaves_again(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 100, 60, NOW + DAY),
                                    MONTHLY(2, 50, NOW - DAY, "2023-11")};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    const struct take spent[] = {{1, 40}};
    add_charge(&fx->account, "charge-1", spent, 1);
    fx_set_type(fx, JOB_REVOKE);
    fx->input.payment_lot_id = 1;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    assert_string_equal(fx->result.message, "");
    const struct entry_want want[] = {{1, ENTRY_REVOKE, -60, NULL, NULL}};
    assert_entries_from(&fx->entries, 0, want, 1);
    const struct lot *lot = &fx->account.lots[0];
    assert_true(lot->revoked);
    assert_true(lot->revoked_now);
    assert_true(lot->changed);
    assert_int_equal(lot->remaining, 0);
    assert_int_equal(fx->result.amounts_present, AMOUNT(REVOKED));
    assert_int_equal(fx->result.amounts[RESULT_REVOKED], 60);
    assert_balance_of(&fx->result.balance, 0, 50, 0, 0);

    /* Never spent again. */
    size_t first = fx->entries.count;
    fx_next_job(fx, JOB_CONSUME, "consume-2");
    fx->job.consume.amount = 10;
    fx->input.payment_lot_id = 0;
    apply(fx);
    const struct entry_want spend[] = {{2, ENTRY_CONSUME, -10, NULL, NULL}};
    assert_entries_from(&fx->entries, first, spend, 1);

    first = fx->entries.count;
    fx_next_job(fx, JOB_REFUND, "refund-1");
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want back[] = {{1, ENTRY_REFUND, 40, NULL, "charge-1"},
                                      {1, ENTRY_REVOKE, -40, NULL, "charge-1"}};
    assert_entries_from(&fx->entries, first, back, ARRAY_LEN(back));
    assert_int_equal(fx->result.amounts[RESULT_REFUNDED], 40);
    assert_int_equal(lot->remaining, 0);
    assert_balance_of(&fx->result.balance, 0, 40, 0, 0);
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);

    fx_next_job(fx, JOB_REVOKE, "revoke-2");
    fx->input.payment_lot_id = 1;
    apply(fx);
    assert_rejected_with(&fx->result, JOB_ERR_ALREADY_REVOKED,
                         "the pack of payment_ref \"pay-1\" is revoked already");
}

static void revoke_of_a_revoked_pack_is_already_revoked_and_changes_nothing(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {REVOKED_PACK(1, 100, NOW + DAY)};
    add_lots(&fx->account, lots, 1);
    fx_set_type(fx, JOB_REVOKE);
    fx->input.payment_lot_id = 1;

    apply(fx);

    assert_rejected_with(&fx->result, JOB_ERR_ALREADY_REVOKED,
                         "the pack of payment_ref \"pay-1\" is revoked already");
    assert_int_equal(fx->entries.count, 0);
    assert_false(fx->account.lots[0].revoked_now);
    assert_false(fx->account.lots[0].changed);
}

static void revoke_without_a_pack_of_that_payment_is_unknown_payment(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 100, 60, NOW + DAY)};
    add_lots(&fx->account, lots, 1);
    fx_set_type(fx, JOB_REVOKE);
    fx->input.payment_lot_id = 0; /* none of this user's */
    fx->input.payment_ref_used = true;

    apply(fx);

    assert_rejected_with(&fx->result, JOB_ERR_UNKNOWN_PAYMENT,
                         "this user has no pack bought with payment_ref \"pay-1\"");
    assert_int_equal(fx->entries.count, 0);
    assert_false(fx->account.lots[0].revoked);
    assert_balance_of(&fx->result.balance, 60, 0, 0, 0);
}

/* A spent pack is revoked all the same (0 credits, no entry); an expired
 * one expires first. */
static void revoke_of_a_spent_or_expired_pack_revokes_zero(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 100, 0, NOW + DAY), PACK(2, 100, 60, NOW + 1)};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    fx_next_job(fx, JOB_REVOKE, "revoke-1");
    fx->input.payment_lot_id = 1;
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    assert_int_equal(fx->entries.count, 0);
    assert_int_equal(fx->result.amounts_present, AMOUNT(REVOKED));
    assert_int_equal(fx->result.amounts[RESULT_REVOKED], 0);
    assert_true(fx->account.lots[0].revoked && fx->account.lots[0].revoked_now);
    assert_false(fx->account.lots[0].changed);

    fx_next_job(fx, JOB_REVOKE, "revoke-2");
    fx->input.payment_lot_id = 2;
    fx->input.now_us = NOW + 1;
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want[] = {{2, ENTRY_EXPIRE, -60, NULL, NULL}};
    assert_entries_from(&fx->entries, 0, want, 1);
    assert_int_equal(fx->result.amounts[RESULT_REVOKED], 0);
    assert_true(fx->account.lots[1].revoked);
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);
}

/* Credits of the pack in an open hold stay held (balance.held counts them)
 * and are revoked when the hold gives them back. */
static void revoke_leaves_held_credits_held_until_the_hold_gives_them_back(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {PACK(1, 100, 60, NOW + DAY), PACK(2, 100, 100, NOW + 2 * DAY)};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    const struct take took[] = {{1, 40}};
    add_hold(&fx->account, "hold-1", 40, HOLD_OPEN, NOW + DAY, took, 1);
    fx_next_job(fx, JOB_REVOKE, "revoke-1");
    fx->input.payment_lot_id = 1;
    apply(fx);
    assert_int_equal(fx->result.amounts[RESULT_REVOKED], 60);
    assert_balance_of(&fx->result.balance, 100, 0, 0, 40);

    size_t first = fx->entries.count;
    fx_next_job(fx, JOB_CAPTURE, "capture-1");
    fx->job.capture.amount = 15;
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want[] = {{1, ENTRY_RELEASE, 25, NULL, "hold-1"},
                                      {1, ENTRY_REVOKE, -25, NULL, "hold-1"}};
    assert_entries_from(&fx->entries, first, want, ARRAY_LEN(want));
    assert_int_equal(fx->result.amounts[RESULT_CHARGED], 15);
    assert_int_equal(fx->result.amounts[RESULT_RELEASED], 25);
    assert_int_equal(fx->account.lots[0].remaining, 0);
    assert_balance_of(&fx->result.balance, 100, 0, 0, 0);
}

/* ---------------------------------------------------------------------------
 * grant
 * ------------------------------------------------------------------------- */

static void grant_without_valid_days_never_expires_and_keeps_its_reason(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {MONTHLY(1, 5, NOW - DAY, "2023-11")};
    add_lots(&fx->account, lots, 1);
    fx_set_type(fx, JOB_GRANT);
    fx->job.grant.amount = 250;
    fx->job.grant.has_reason = true;
    strcpy(fx->job.grant.reason, "welcome bonus");
    fx->input.new_lot_id = 42;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    assert_string_equal(fx->result.message, "");
    assert_int_equal(fx->account.lot_count, 2);
    const struct lot *lot = &fx->account.lots[1];
    assert_int_equal(lot->lot_id, 42);
    assert_int_equal(lot->kind, LOT_GRANT);
    assert_int_equal(lot->granted, 250);
    assert_int_equal(lot->remaining, 250);
    assert_int_equal(lot->granted_at_us, NOW);
    assert_int_equal(lot->expires_at_us, NONE);
    assert_string_equal(lot->period, "");
    assert_true(lot->is_new);
    assert_int_equal(lot->job_index, JOB_INDEX);
    assert_null(lot->pack_id);
    assert_null(lot->payment_ref);
    assert_null(lot->plan_id);
    const struct entry_want want[] = {{42, ENTRY_GRANT, 250, NULL, NULL}};
    assert_entries_from(&fx->entries, 0, want, 1);
    assert_null(fx->entries.items[0].tool);
    assert_same_str(fx->entries.items[0].ref, "welcome bonus");
    assert_int_equal(fx->result.amounts_present, AMOUNT(GRANTED));
    assert_int_equal(fx->result.amounts[RESULT_GRANTED], 250);
    assert_balance_of(&fx->result.balance, 0, 5, 250, 0);
    assert_false(fx->account.plan_changed);
}

static void grant_with_valid_days_expires_that_many_days_later(void **state)
{
    struct fx *fx = *state;
    fx_set_type(fx, JOB_GRANT);
    fx->job.grant.amount = 30;
    fx->job.grant.has_valid_days = true;
    fx->job.grant.valid_days = 14;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    const struct lot *lot = &fx->account.lots[0];
    assert_int_equal(lot->kind, LOT_GRANT);
    assert_int_equal(lot->expires_at_us, NOW + 14 * DAY);
    const struct entry_want want[] = {{100, ENTRY_GRANT, 30, NULL, NULL}};
    assert_entries_from(&fx->entries, 0, want, 1);
    assert_null(fx->entries.items[0].ref);
    assert_int_equal(fx->result.amounts_present, AMOUNT(GRANTED) | AMOUNT(EXPIRES_AT));
    assert_int_equal(fx->result.amounts[RESULT_EXPIRES_AT], (NOW + 14 * DAY) / 1000);
    assert_balance_of(&fx->result.balance, 0, 0, 30, 0);
    struct balance b;
    ledger_balance(&fx->account, NOW + 14 * DAY, &b);
    assert_balance_of(&b, 0, 0, 0, 0);
}

/* ---------------------------------------------------------------------------
 * cancel
 * ------------------------------------------------------------------------- */

static void cancel_without_a_plan_is_no_plan(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {MONTHLY(1, 40, NOW - DAY, "2023-11")};
    add_lots(&fx->account, lots, 1);
    fx_set_type(fx, JOB_CANCEL);
    fx->job.cancel.has_forfeit = fx->job.cancel.forfeit = true;

    apply(fx);

    assert_rejected_with(&fx->result, JOB_ERR_NO_PLAN, "this user has no plan to cancel");
    assert_int_equal(fx->entries.count, 0);
    assert_false(fx->account.has_plan);
    assert_false(fx->account.plan_changed);
    assert_balance_of(&fx->result.balance, 0, 40, 0, 0);
}

/* Without forfeit (absent or false) the plan ends and the credits stay. */
static void cancel_ends_the_plan_and_keeps_the_credits(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {MONTHLY(1, 40, NOW - DAY, "2023-11")};
    add_lots(&fx->account, lots, 1);
    for (int explicit_false = 0; explicit_false < 2; explicit_false++) {
        fx->account.has_plan = true;
        strcpy(fx->account.plan, "pro");
        fx->account.plan_changed = false;
        fx_next_job(fx, JOB_CANCEL, explicit_false ? "cancel-2" : "cancel-1");
        fx->job.cancel.has_forfeit = explicit_false;
        fx->job.cancel.forfeit = false;

        apply(fx);

        assert_int_equal(fx->result.error, JOB_OK);
        assert_int_equal(fx->entries.count, 0);
        assert_false(fx->account.has_plan);
        assert_string_equal(fx->account.plan, "");
        assert_true(fx->account.plan_changed);
        assert_int_equal(fx->result.amounts_present, AMOUNT(FORFEITED));
        assert_int_equal(fx->result.amounts[RESULT_FORFEITED], 0);
        assert_balance_of(&fx->result.balance, 0, 40, 0, 0);
    }
}

/* With forfeit: the usable monthly credits, oldest first; packs and grants
 * (even those that never expire) stay. */
static void cancel_with_forfeit_forfeits_the_usable_monthly_credits(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {MONTHLY(2, 30, NOW - 30 * DAY, "2023-10"),
                                    MONTHLY(1, 20, NOW - 60 * DAY, "2023-09"),
                                    PACK(3, 10, 10, NOW + DAY), GRANT(4, 7, NOW - 90 * DAY, NONE)};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    fx->account.has_plan = true;
    strcpy(fx->account.plan, "pro");
    fx_set_type(fx, JOB_CANCEL);
    fx->job.cancel.has_forfeit = fx->job.cancel.forfeit = true;

    apply(fx);

    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want[] = {{1, ENTRY_FORFEIT, -20, NULL, NULL},
                                      {2, ENTRY_FORFEIT, -30, NULL, NULL}};
    assert_entries_from(&fx->entries, 0, want, ARRAY_LEN(want));
    assert_lots_follow_entries(&fx->account, lots, ARRAY_LEN(lots), &fx->entries);
    assert_false(fx->account.has_plan);
    assert_true(fx->account.plan_changed);
    assert_int_equal(fx->result.amounts[RESULT_FORFEITED], 50);
    assert_balance_of(&fx->result.balance, 10, 0, 7, 0);
}

/* Monthly credits in an open hold are not usable at the cancel: they are
 * not forfeited, and are usable again once given back. */
static void cancel_forfeit_spares_held_monthly_credits_which_come_back_usable(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {MONTHLY(1, 30, NOW - DAY, "2023-11")};
    add_lots(&fx->account, lots, 1);
    const struct take took[] = {{1, 20}};
    add_hold(&fx->account, "hold-1", 20, HOLD_OPEN, NOW + DAY, took, 1);
    fx->account.has_plan = true;
    strcpy(fx->account.plan, "pro");
    fx_next_job(fx, JOB_CANCEL, "cancel-1");
    fx->job.cancel.has_forfeit = fx->job.cancel.forfeit = true;
    apply(fx);
    assert_int_equal(fx->result.amounts[RESULT_FORFEITED], 30);
    assert_balance_of(&fx->result.balance, 0, 0, 0, 20);

    size_t first = fx->entries.count;
    fx_next_job(fx, JOB_RELEASE, "release-1");
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    const struct entry_want want[] = {{1, ENTRY_RELEASE, 20, NULL, "hold-1"}};
    assert_entries_from(&fx->entries, first, want, 1);
    assert_balance_of(&fx->result.balance, 0, 20, 0, 0);
}

/* A later allocate subscribes again, under the rules of section 5: a
 * period allocated before the cancel is still allocated. */
static void allocate_after_cancel_subscribes_again(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {MONTHLY(1, 40, NOW - DAY, "2024-04")};
    add_lots(&fx->account, lots, 1);
    fx->account.has_plan = true;
    strcpy(fx->account.plan, "basic");
    fx_next_job(fx, JOB_CANCEL, "cancel-1");
    apply(fx);
    assert_false(fx->account.has_plan);

    const struct plan_info plan = {.monthly_credits = 100, .rollover_cap = 200};
    fx_next_job(fx, JOB_ALLOCATE, "alloc-1");
    strcpy(fx->job.allocate.period, "2024-04");
    fx->input.plan = &plan;
    apply(fx);
    assert_rejected_with(&fx->result, JOB_ERR_ALREADY_ALLOCATED,
                         "period 2024-04 is already allocated");
    assert_false(fx->account.has_plan);

    fx_next_job(fx, JOB_ALLOCATE, "alloc-2");
    apply(fx);
    assert_int_equal(fx->result.error, JOB_OK);
    assert_true(fx->account.has_plan);
    assert_string_equal(fx->account.plan, "pro");
    assert_balance_of(&fx->result.balance, 0, 140, 0, 0);
}

/* ---------------------------------------------------------------------------
 * the balance of revision 2, names, messages
 * ------------------------------------------------------------------------- */

static void balance_total_is_pack_plus_monthly_plus_grant_and_held_is_apart(void **state)
{
    struct fx *fx = *state;
    const struct lot_spec lots[] = {
        PACK(1, 10, 7, NOW + 1),
        GRANT(2, 5, NOW - DAY, NOW + DAY),
        GRANT(3, 6, NOW - DAY, NONE),
        GRANT(4, 9, NOW - DAY, NOW),
        MONTHLY(5, 20, NOW - DAY, "2023-11"),
        REVOKED_PACK(6, 50, NOW + DAY),
    };
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    const struct take none[] = {{1, 1}};
    add_hold(&fx->account, "open-1", 11, HOLD_OPEN, NOW + DAY, none, 0);
    add_hold(&fx->account, "open-2", 4, HOLD_OPEN, NOW + DAY, none, 0);
    add_hold(&fx->account, "captured", 3, HOLD_CAPTURED, NOW + DAY, none, 0);
    add_hold(&fx->account, "released", 8, HOLD_RELEASED, NOW + DAY, none, 0);
    add_hold(&fx->account, "expired", 2, HOLD_EXPIRED, NOW - DAY, none, 0);
    struct balance b;

    ledger_balance(&fx->account, NOW, &b);
    assert_balance_of(&b, 7, 20, 11, 15);
    ledger_balance(&fx->account, NOW - 1, &b);
    assert_balance_of(&b, 7, 20, 20, 15);
    ledger_balance(&fx->account, NOW + DAY, &b);
    assert_balance_of(&b, 0, 20, 6, 15);
    assert_int_equal(fx->account.lots[3].remaining, 9); /* counting never expires */
}

static void revision_2_names_round_trip(void **state)
{
    (void)state;
    assert_string_equal(ledger_lot_kind_name(LOT_GRANT), "grant");
    enum lot_kind lot_kind = LOT_PACK;
    assert_true(ledger_lot_kind_parse("grant", &lot_kind));
    assert_int_equal(lot_kind, LOT_GRANT);
    static const struct {
        enum entry_kind kind;
        const char *name;
    } kinds[] = {{ENTRY_HOLD, "hold"},
                 {ENTRY_RELEASE, "release"},
                 {ENTRY_REFUND, "refund"},
                 {ENTRY_REVOKE, "revoke"},
                 {ENTRY_GRANT, "grant"}};
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        assert_string_equal(ledger_entry_kind_name(kinds[i].kind), kinds[i].name);
        enum entry_kind kind = ENTRY_CONSUME;
        assert_true(ledger_entry_kind_parse(kinds[i].name, &kind));
        assert_int_equal(kind, kinds[i].kind);
    }
    static const struct {
        enum hold_status status;
        const char *name;
    } statuses[] = {{HOLD_OPEN, "open"},
                    {HOLD_CAPTURED, "captured"},
                    {HOLD_RELEASED, "released"},
                    {HOLD_EXPIRED, "expired"}};
    for (size_t i = 0; i < ARRAY_LEN(statuses); i++) {
        assert_string_equal(ledger_hold_status_name(statuses[i].status), statuses[i].name);
        enum hold_status status = HOLD_EXPIRED;
        assert_true(ledger_hold_status_parse(statuses[i].name, &status));
        assert_int_equal(status, statuses[i].status);
    }
    static const char *const bad[] = {"", "Open", "closed", "capture", "released "};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        enum hold_status status = HOLD_CAPTURED;
        assert_false(ledger_hold_status_parse(bad[i], &status));
        assert_int_equal(status, HOLD_CAPTURED);
    }
}

/* The new rejections quote hold and charge IDs and payment references
 * whole, even at their limits, and numbers at theirs. */
static void revision_2_rejection_messages_fit_the_longest_fields(void **state)
{
    struct fx *fx = *state;
    char hold_id[JOB_ID_BYTES_MAX + 1], charge_id[JOB_ID_BYTES_MAX + 1];
    char ref[JOB_PAYMENT_REF_BYTES_MAX + 1];
    memset(hold_id, 'h', JOB_ID_BYTES_MAX);
    hold_id[JOB_ID_BYTES_MAX] = '\0';
    memset(charge_id, 'c', JOB_ID_BYTES_MAX);
    charge_id[JOB_ID_BYTES_MAX] = '\0';
    for (size_t k = 0; k < JOB_PAYMENT_REF_BYTES_MAX; k += 2)
        memcpy(&ref[k], "\xc3\xa9", 2); /* U+00E9 */
    ref[JOB_PAYMENT_REF_BYTES_MAX] = '\0';
    const struct lot_spec lots[] = {REVOKED_PACK(1, 100, NOW + DAY),
                                    PACK(2, JOB_AMOUNT_MAX, 0, NOW + DAY)};
    add_lots(&fx->account, lots, ARRAY_LEN(lots));
    const struct take all[] = {{2, JOB_AMOUNT_MAX - 1}};
    struct {
        enum job_type type;
        const char *setup; /* what the account holds: a hold, a charge, a revoked lot */
        enum job_error error;
        const char *quoted;
    } rows[] = {
        {JOB_CAPTURE, "", JOB_ERR_UNKNOWN_HOLD, hold_id},
        {JOB_RELEASE, "", JOB_ERR_UNKNOWN_HOLD, hold_id},
        {JOB_CAPTURE, "closed", JOB_ERR_HOLD_CLOSED, hold_id},
        {JOB_RELEASE, "expired", JOB_ERR_HOLD_EXPIRED, hold_id},
        {JOB_CAPTURE, "open", JOB_ERR_CAPTURE_EXCEEDS_HOLD, "1000000000"},
        {JOB_REFUND, "", JOB_ERR_UNKNOWN_CHARGE, charge_id},
        {JOB_REFUND, "charge", JOB_ERR_REFUND_EXCEEDS_CHARGE, charge_id},
        {JOB_REVOKE, "", JOB_ERR_UNKNOWN_PAYMENT, ref},
        {JOB_REVOKE, "lot", JOB_ERR_ALREADY_REVOKED, ref},
        {JOB_CANCEL, "", JOB_ERR_NO_PLAN, "no plan"},
    };
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        ledger_account_free(&fx->account);
        add_lots(&fx->account, lots, ARRAY_LEN(lots));
        const char *setup = rows[i].setup;
        if (strcmp(setup, "closed") == 0)
            add_hold(&fx->account, hold_id, 5, HOLD_CAPTURED, NOW + DAY, all, 0);
        if (strcmp(setup, "expired") == 0)
            add_hold(&fx->account, hold_id, 5, HOLD_EXPIRED, NOW - DAY, all, 0);
        if (strcmp(setup, "open") == 0)
            add_hold(&fx->account, hold_id, JOB_AMOUNT_MAX - 1, HOLD_OPEN, NOW + DAY, all, 1);
        if (strcmp(setup, "charge") == 0)
            add_charge(&fx->account, charge_id, all, 1);
        snprintf(fx->job.id, sizeof fx->job.id, "job-%zu", i);
        fx_set_type(fx, rows[i].type);
        if (rows[i].type == JOB_CAPTURE) {
            strcpy(fx->job.capture.hold, hold_id);
            fx->job.capture.amount = JOB_AMOUNT_MAX;
        }
        if (rows[i].type == JOB_RELEASE)
            strcpy(fx->job.release.hold, hold_id);
        if (rows[i].type == JOB_REFUND) {
            strcpy(fx->job.refund.charge, charge_id);
            fx->job.refund.has_amount = true;
            fx->job.refund.amount = JOB_AMOUNT_MAX;
        }
        if (rows[i].type == JOB_REVOKE)
            strcpy(fx->job.revoke.payment_ref, ref);
        fx->input.payment_lot_id = strcmp(setup, "lot") == 0 ? 1 : 0;

        apply(fx);

        assert_string_equal(job_error_name(fx->result.error), job_error_name(rows[i].error));
        assert_non_null(strstr(fx->result.message, rows[i].quoted));
        assert_true(strlen(fx->result.message) <= RESULT_MESSAGE_BYTES_MAX);
    }
}

/* ---------------------------------------------------------------------------
 * Invariants over a long pseudo-random run
 * ------------------------------------------------------------------------- */

#define RUN_STEPS 3000

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: a fixed sequence on every platform. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static int64_t rng_range(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

struct run {
    uint64_t seed;
    struct account account;
    struct entry_list entries;
    int64_t now_us;
    int64_t latest_month; /* months since 2020-01 of the latest allocation */
    int64_t next_lot_id;
    int64_t *start; /* remaining of each lot before the step */
    int64_t *sum;   /* sum of every entry of each lot so far */
    size_t outcomes[JOB_TYPE_COUNT][JOB_ERROR_COUNT];
};

static const struct pack_info run_packs[] = {{100, 1}, {500, 30}, {2000, 90}, {7, 2}};
static const struct plan_info run_plans[] = {{100, 200, 0}, {300, 300, 0}, {1000, 5000, 0}, {50, 51, 0}};

/* Draws the step's job and input; the job's user is the account's. */
static void run_draw(struct run *run, size_t step, struct job *job, struct ledger_input *in,
                     int64_t *month)
{
    uint64_t *s = &run->seed;
    memset(in, 0, sizeof *in);
    run->now_us += rng_range(s, 0, 3) == 0 ? 0 : rng_range(s, 1, 2 * DAY);
    in->now_us = run->now_us;
    in->job_index = step;
    in->new_lot_id = run->next_lot_id;
    int64_t type = rng_range(s, 0, 3); /* consume twice as often */
    job->type = type == 0 ? JOB_PURCHASE : type == 1 ? JOB_ALLOCATE : JOB_CONSUME;
    int64_t amount = rng_range(s, 1, 1200);
    if (rng_range(s, 0, 9) != 0)
        in->pack = &run_packs[rng_range(s, 0, 3)];
    in->payment_ref_used = rng_range(s, 0, 9) == 0;
    if (rng_range(s, 0, 9) != 0)
        in->plan = &run_plans[rng_range(s, 0, 3)];
    /* Mostly the next period (skipping some months, so that earlier periods
     * are both held and not), sometimes the latest again or an earlier one. */
    int64_t pick = rng_range(s, 0, 19);
    if (pick < 14)
        *month = run->latest_month + rng_range(s, 1, 3);
    else if (pick < 17)
        *month = run->latest_month;
    else
        *month = run->latest_month - rng_range(s, 1, 30);
    char period[32];
    snprintf(period, sizeof period, "%04d-%02d", (int)(2020 + *month / 12), (int)(1 + *month % 12));
    assert_int_equal(strlen(period), JOB_PERIOD_BYTES);
    if (job->type == JOB_CONSUME) {
        job->consume.amount = amount;
    } else if (job->type == JOB_PURCHASE) {
        strcpy(job->purchase.pack, "small");
        strcpy(job->purchase.payment_ref, "p");
    } else {
        assert_int_equal(job->type, JOB_ALLOCATE);
        strcpy(job->allocate.plan, "pro");
        memcpy(job->allocate.period, period, sizeof job->allocate.period);
    }
}

static int64_t run_usable(const struct account *account, int64_t now_us, enum lot_kind kind)
{
    int64_t sum = 0;
    for (size_t i = 0; i < account->lot_count; i++) {
        const struct lot *lot = &account->lots[i];
        bool usable = lot->expires_at_us == NONE || lot->expires_at_us > now_us;
        if (usable && lot->kind == kind)
            sum += lot->remaining;
    }
    return sum;
}

/* Each new entry is the step's, on a known lot, of a kind the outcome allows,
 * with the right sign; adds it to the lot's running sum. */
static void run_check_entries(struct run *run, size_t first, size_t step, const struct job *job,
                              enum job_error error)
{
    for (size_t k = first; k < run->entries.count; k++) {
        const struct entry *e = &run->entries.items[k];
        assert_int_equal(e->job_index, step);
        assert_true(e->lot_id >= 1 && (size_t)e->lot_id <= run->account.lot_count);
        bool positive = e->kind == ENTRY_PURCHASE || e->kind == ENTRY_ALLOCATE;
        assert_true(positive ? e->delta > 0 : e->delta < 0);
        if (e->kind != ENTRY_EXPIRE) {
            assert_int_equal(error, JOB_OK);
            enum job_type owner = e->kind == ENTRY_CONSUME    ? JOB_CONSUME
                                  : e->kind == ENTRY_PURCHASE ? JOB_PURCHASE
                                                              : JOB_ALLOCATE;
            assert_int_equal(owner, job->type);
        }
        run->sum[e->lot_id - 1] += e->delta;
    }
}

/* Per lot: within 0..granted, moved by exactly its entries, flagged exactly
 * when moved; expired lots hold nothing. */
static void run_check_lots(struct run *run, size_t lots_before, size_t first, size_t step)
{
    const struct account *account = &run->account;
    for (size_t i = 0; i < account->lot_count; i++) {
        const struct lot *lot = &account->lots[i];
        assert_int_equal(lot->lot_id, (int64_t)i + 1);
        assert_true(lot->remaining >= 0);
        assert_true(lot->remaining <= lot->granted);
        assert_int_equal(run->sum[i], lot->remaining);
        int64_t moved = 0;
        for (size_t k = first; k < run->entries.count; k++)
            if (run->entries.items[k].lot_id == lot->lot_id)
                moved += run->entries.items[k].delta;
        int64_t start = i < lots_before ? run->start[i] : 0;
        assert_int_equal(moved, lot->remaining - start);
        if (i < lots_before) {
            assert_false(lot->is_new);
            assert_int_equal(lot->changed, lot->remaining != start);
        } else {
            assert_true(lot->is_new);
            assert_int_equal(lot->job_index, step);
            assert_int_equal(lot->remaining, lot->granted);
        }
        if (lot->expires_at_us != NONE && lot->expires_at_us <= run->now_us)
            assert_int_equal(lot->remaining, 0);
    }
}

/* The rule-specific outcome, given usable credits before the step. */
static void run_check_result(const struct run *run, const struct job *job,
                             const struct ledger_input *in, const struct result *r,
                             int64_t pack_before, int64_t monthly_before)
{
    int64_t pack_after = run_usable(&run->account, in->now_us, LOT_PACK);
    int64_t monthly_after = run_usable(&run->account, in->now_us, LOT_MONTHLY);
    assert_balance(&r->balance, pack_after, monthly_after);
    int64_t before = pack_before + monthly_before;
    if (r->error != JOB_OK) {
        assert_int_equal(r->balance.total, before);
        assert_true(r->message[0] != '\0');
        return;
    }
    switch (job->type) {
    case JOB_CONSUME:
        assert_int_equal(r->amounts[RESULT_CHARGED], job->consume.amount);
        assert_int_equal(r->balance.total, before - job->consume.amount);
        break;
    case JOB_PURCHASE:
        assert_int_equal(r->amounts[RESULT_GRANTED], in->pack->credits);
        assert_int_equal(r->amounts[RESULT_EXPIRES_AT],
                         (in->now_us + in->pack->valid_days * DAY) / 1000);
        assert_int_equal(r->balance.total, before + in->pack->credits);
        break;
    case JOB_ALLOCATE: {
        int64_t total = monthly_before + in->plan->monthly_credits;
        int64_t cap = in->plan->rollover_cap;
        assert_int_equal(r->amounts[RESULT_FORFEITED], total > cap ? total - cap : 0);
        assert_int_equal(monthly_after, total < cap ? total : cap);
        assert_int_equal(pack_after, pack_before);
        break;
    }
    case JOB_HOLD:
    case JOB_CAPTURE:
    case JOB_RELEASE:
    case JOB_REFUND:
    case JOB_REVOKE:
    case JOB_GRANT:
    case JOB_CANCEL:
        /* run_draw() draws the types of section 5; revision 2's have their
         * own runs (test_batch, fuzz_ledger). */
        fail_msg("the run drew a %s job", job_type_name(job->type));
    }
}

static void run_step(struct run *run, size_t step)
{
    struct job job = {.user = "user-1"};
    snprintf(job.id, sizeof job.id, "job-%zu", step); /* each ID is decided once */
    struct ledger_input in;
    int64_t month;
    run_draw(run, step, &job, &in, &month);
    struct account *account = &run->account;
    size_t lots_before = account->lot_count;
    for (size_t i = 0; i < lots_before; i++)
        run->start[i] = account->lots[i].remaining;
    size_t first = run->entries.count;
    int64_t pack_before = run_usable(account, in.now_us, LOT_PACK);
    int64_t monthly_before = run_usable(account, in.now_us, LOT_MONTHLY);
    struct result r = {0};

    ledger_apply(account, &job, &in, &run->entries, &r);

    run->outcomes[job.type][r.error]++;
    bool adds_lot = r.error == JOB_OK && job.type != JOB_CONSUME;
    assert_int_equal(account->lot_count, lots_before + (adds_lot ? 1 : 0));
    if (adds_lot)
        run->next_lot_id++;
    if (r.error == JOB_OK && job.type == JOB_ALLOCATE)
        run->latest_month = month;
    run_check_entries(run, first, step, &job, r.error);
    run_check_lots(run, lots_before, first, step);
    run_check_result(run, &job, &in, &r, pack_before, monthly_before);
    /* What the store does at commit. */
    for (size_t i = 0; i < account->lot_count; i++)
        account->lots[i].is_new = account->lots[i].changed = false;
    account->plan_changed = false;
}

static void invariants_hold_over_random_jobs(void **state)
{
    (void)state;
    struct run run = {.seed = UINT64_C(0x9e3779b97f4a7c15),
                      .now_us = NOW,
                      .latest_month = 40 /* 2023-05 */,
                      .next_lot_id = 1};
    ledger_account_init(&run.account, "user-1");
    run.start = calloc(RUN_STEPS, sizeof *run.start);
    run.sum = calloc(RUN_STEPS + 1, sizeof *run.sum);
    assert_non_null(run.start);
    assert_non_null(run.sum);

    for (size_t step = 0; step < RUN_STEPS; step++)
        run_step(&run, step);

    /* The run reached every rule and every rejection. */
    assert_true(run.outcomes[JOB_CONSUME][JOB_OK] > 100);
    assert_true(run.outcomes[JOB_CONSUME][JOB_ERR_INSUFFICIENT_CREDITS] > 10);
    assert_true(run.outcomes[JOB_PURCHASE][JOB_OK] > 100);
    assert_true(run.outcomes[JOB_PURCHASE][JOB_ERR_UNKNOWN_PACK] > 10);
    assert_true(run.outcomes[JOB_PURCHASE][JOB_ERR_DUPLICATE_PAYMENT] > 10);
    assert_true(run.outcomes[JOB_ALLOCATE][JOB_OK] > 100);
    assert_true(run.outcomes[JOB_ALLOCATE][JOB_ERR_UNKNOWN_PLAN] > 10);
    assert_true(run.outcomes[JOB_ALLOCATE][JOB_ERR_ALREADY_ALLOCATED] > 10);
    assert_true(run.outcomes[JOB_ALLOCATE][JOB_ERR_STALE_PERIOD] > 10);
    size_t kinds[ENTRY_EXPIRE + 1] = {0};
    for (size_t k = 0; k < run.entries.count; k++)
        kinds[run.entries.items[k].kind]++;
    for (size_t i = 0; i <= ENTRY_EXPIRE; i++)
        assert_true(kinds[i] > 10);

    free(run.start);
    free(run.sum);
    ledger_account_free(&run.account);
    ledger_entries_free(&run.entries);
}

/* ---------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------- */

#define FX_TEST(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

static void add_table(struct CMUnitTest *tests, size_t *n, void *rows, size_t row_size,
                      size_t count, CMUnitTestFunction run)
{
    for (size_t i = 0; i < count; i++) {
        void *row = (char *)rows + i * row_size;
        assert_true(*n < TESTS_MAX);
        /* Every table row starts with its name. */
        tests[(*n)++] = (struct CMUnitTest){*(const char **)row, run, fx_setup, fx_teardown, row};
    }
}

int main(int argc, char **argv)
{
    static const struct CMUnitTest fixed[] = {
        FX_TEST(purchase_creates_pack_lot_expiring_valid_days_later),
        FX_TEST(allocate_first_creates_monthly_lot_and_sets_plan),
        FX_TEST(allocate_rollover_below_cap_forfeits_nothing),
        FX_TEST(allocate_over_cap_forfeits_oldest_monthly_first),
        FX_TEST(allocate_with_cap_equal_to_monthly_forfeits_all_old_monthly),
        cmocka_unit_test(allocate_leaves_min_of_m_plus_c_and_cap),
        FX_TEST(balance_splits_usable_credits_by_kind),
        FX_TEST(balance_of_empty_account_is_zero),
        cmocka_unit_test(lot_kind_names_round_trip),
        cmocka_unit_test(entry_kind_names_match_the_schema),
        FX_TEST(account_add_lot_copies_and_keeps_order),
        FX_TEST(apply_leaves_result_identity_alone),
        FX_TEST(rejection_messages_fit_longest_fields),
        FX_TEST(hold_takes_in_spending_order_one_hold_entry_per_lot),
        FX_TEST(hold_without_ttl_lives_an_hour_and_without_tool_or_ref_has_none),
        FX_TEST(hold_above_usable_balance_is_insufficient_and_stores_nothing),
        FX_TEST(held_credits_count_as_held_and_no_job_can_spend_them),
        FX_TEST(capture_or_release_of_another_users_hold_is_unknown_hold),
        FX_TEST(release_gives_everything_back_last_taken_first),
        FX_TEST(hold_over_thousands_of_lots_takes_and_gives_back_in_spending_order),
        FX_TEST(release_to_an_expired_lot_writes_release_then_expire),
        FX_TEST(capture_giving_back_to_an_expired_lot_expires_that_share),
        FX_TEST(release_to_a_revoked_lot_writes_release_then_revoke),
        FX_TEST(hold_past_its_expiry_is_released_by_any_job_of_its_user),
        FX_TEST(refund_of_another_users_charge_is_unknown_charge),
        FX_TEST(refunds_of_a_consume_give_back_the_lot_taken_last_first),
        FX_TEST(refund_of_a_capture_gives_back_what_its_hold_kept),
        FX_TEST(refund_to_an_expired_lot_writes_refund_then_expire),
        FX_TEST(revoke_takes_what_is_left_and_a_later_refund_to_it_leaves_again),
        FX_TEST(revoke_of_a_revoked_pack_is_already_revoked_and_changes_nothing),
        FX_TEST(revoke_without_a_pack_of_that_payment_is_unknown_payment),
        FX_TEST(revoke_of_a_spent_or_expired_pack_revokes_zero),
        FX_TEST(revoke_leaves_held_credits_held_until_the_hold_gives_them_back),
        FX_TEST(grant_without_valid_days_never_expires_and_keeps_its_reason),
        FX_TEST(grant_with_valid_days_expires_that_many_days_later),
        FX_TEST(cancel_without_a_plan_is_no_plan),
        FX_TEST(cancel_ends_the_plan_and_keeps_the_credits),
        FX_TEST(cancel_with_forfeit_forfeits_the_usable_monthly_credits),
        FX_TEST(cancel_forfeit_spares_held_monthly_credits_which_come_back_usable),
        FX_TEST(allocate_after_cancel_subscribes_again),
        FX_TEST(balance_total_is_pack_plus_monthly_plus_grant_and_held_is_apart),
        cmocka_unit_test(revision_2_names_round_trip),
        FX_TEST(revision_2_rejection_messages_fit_the_longest_fields),
        cmocka_unit_test(invariants_hold_over_random_jobs),
    };
    struct CMUnitTest tests[TESTS_MAX];
    size_t n = 0;
    add_table(tests, &n, consume_cases, sizeof consume_cases[0], ARRAY_LEN(consume_cases),
              run_consume_case);
    add_table(tests, &n, purchase_cases, sizeof purchase_cases[0], ARRAY_LEN(purchase_cases),
              run_purchase_case);
    add_table(tests, &n, allocate_reject_cases, sizeof allocate_reject_cases[0],
              ARRAY_LEN(allocate_reject_cases), run_allocate_reject_case);
    add_table(tests, &n, hold_check_cases, sizeof hold_check_cases[0], ARRAY_LEN(hold_check_cases),
              run_hold_check_case);
    add_table(tests, &n, capture_cases, sizeof capture_cases[0], ARRAY_LEN(capture_cases),
              run_capture_case);
    add_table(tests, &n, refund_reject_cases, sizeof refund_reject_cases[0],
              ARRAY_LEN(refund_reject_cases), run_refund_reject_case);
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++) {
        assert_true(n < TESTS_MAX);
        tests[n++] = fixed[i];
    }
    return case_filter_run("ledger", tests, n, NULL, NULL, argc, argv);
}
