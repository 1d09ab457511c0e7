/*
 * allocate.c -- the allocate job (contract sections 2 and 5): a plan's
 * monthly credits for one period, with the rollover cap forfeiting the
 * oldest monthly credits above it, and the account's plan set.
 */
#include <string.h>

#include "core/job_type.h"

static const struct job_field allocate_fields[] = {
    JOB_FIELD_STR(allocate, plan, JOB_STR_TEXT, 1, JOB_PLAN_BYTES_MAX,
                  "a plan ID from the catalog (credits.plans)"),
    JOB_FIELD_STR(allocate, period, JOB_STR_PERIOD, JOB_PERIOD_BYTES, JOB_PERIOD_BYTES,
                  "the billing month, YYYY-MM"),
};

static void allocate_needs(const struct job *job, struct job_needs *needs)
{
    ASSERT(job->type == JOB_ALLOCATE);
    needs->key[NEED_PLAN] = job->allocate.plan;
    needs->monthly_from_period = job->allocate.period;
    needs->new_lots = 1;
}

/* The allocate rejections, in the contract's order; JOB_OK when none. The
 * account holds every monthly lot of the user from the job's period on
 * (those at 0 too: monthly_from_period), so a period held is always seen. */
static enum job_error check_allocate(const struct account *account, const struct job *job,
                                     const struct ledger_input *input, struct result *result)
{
    const struct job_allocate *allocate = &job->allocate;
    if (input->plan == NULL) {
        ledger_reject(result, JOB_ERR_UNKNOWN_PLAN, "plan \"%s\" is not in the catalog",
                      allocate->plan);
        return result->error;
    }
    const char *later = NULL;
    for (size_t i = 0; i < account->lot_count; i++) {
        const struct lot *lot = &account->lots[i];
        if (lot->kind != LOT_MONTHLY)
            continue;
        int cmp = strcmp(lot->period, allocate->period); /* YYYY-MM sorts as text */
        if (cmp == 0) {
            ledger_reject(result, JOB_ERR_ALREADY_ALLOCATED, "period %s is already allocated",
                          allocate->period);
            return result->error;
        }
        if (cmp > 0 && (later == NULL || strcmp(lot->period, later) > 0))
            later = lot->period;
    }
    if (later != NULL) {
        ledger_reject(result, JOB_ERR_STALE_PERIOD, "period %s is before allocated period %s",
                      allocate->period, later);
        return result->error;
    }
    return JOB_OK;
}

static void allocate_apply(struct account *account, const struct job *job,
                           const struct ledger_input *input, struct entry_list *entries,
                           struct result *result)
{
    const struct job_allocate *allocate = &job->allocate;
    ASSERT(strlen(allocate->period) == JOB_PERIOD_BYTES);
    if (check_allocate(account, job, input, result) != JOB_OK)
        return;
    const struct plan_info *plan = input->plan;
    ASSERT(plan->monthly_credits > 0);
    ASSERT(plan->rollover_cap >= plan->monthly_credits); /* so forfeit <= M */

    struct balance before;
    ledger_balance(account, input->now_us, &before);
    int64_t total = ledger_credits_add(before.monthly, plan->monthly_credits);
    int64_t forfeit = total > plan->rollover_cap ? total - plan->rollover_cap : 0;
    ASSERT(forfeit <= before.monthly);
    struct entry forfeited = {.kind = ENTRY_FORFEIT, .job_index = input->job_index};
    ledger_take(account, input->now_us, LEDGER_FROM_MONTHLY, forfeit, &forfeited, entries);

    struct lot lot = {
        .lot_id = input->new_lot_id,
        .kind = LOT_MONTHLY,
        .granted = plan->monthly_credits,
        .remaining = plan->monthly_credits,
        .granted_at_us = input->now_us,
        .expires_at_us = LEDGER_NO_EXPIRY,
        .is_new = true,
        .job_index = input->job_index,
        .plan_id = allocate->plan,
    };
    memcpy(lot.period, allocate->period, sizeof lot.period);
    ledger_account_add_lot(account, &lot);
    struct entry entry = {.lot_id = lot.lot_id,
                          .kind = ENTRY_ALLOCATE,
                          .delta = lot.granted,
                          .job_index = input->job_index};
    ledger_entry_add(entries, &entry);

    _Static_assert(sizeof account->plan == sizeof allocate->plan, "plan buffers match");
    memcpy(account->plan, allocate->plan, sizeof account->plan);
    account->has_plan = true;
    account->plan_changed = true;
    result_set_amount(result, RESULT_GRANTED, plan->monthly_credits);
    result_set_amount(result, RESULT_FORFEITED, forfeit);
}

const struct job_type_ops job_type_allocate = {
    .type = JOB_ALLOCATE,
    .name = "allocate",
    .stream = JOB_STREAM_ALLOCATE,
    .summary = "allocate a plan's monthly credits for one period",
    .fields = allocate_fields,
    .field_count = sizeof allocate_fields / sizeof allocate_fields[0],
    .needs = allocate_needs,
    .apply = allocate_apply,
    .result_amounts = RESULT_AMOUNT_BIT(RESULT_GRANTED) | RESULT_AMOUNT_BIT(RESULT_FORFEITED),
};
