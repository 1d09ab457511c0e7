/*
 * hold.c -- the hold job (contract 9.4): reserve `amount` credits from the
 * usable lots in the spending order (`hold` entries), or reject the whole
 * job with insufficient_credits; the hold stays open until a capture, a
 * release or its expiry closes it.
 */
#include <inttypes.h>

#include "core/job_type.h"

/* A hold lives an hour unless the job says otherwise. */
#define HOLD_TTL_DEFAULT_S 3600
#define HOLD_TTL_MAX_S 604800 /* a week */
#define US_PER_S INT64_C(1000000)

static const struct job_field hold_fields[] = {
    JOB_FIELD_INT(hold, amount, JOB_AMOUNT_MIN, JOB_AMOUNT_MAX, "credits to reserve"),
    JOB_FIELD_INT_OPTIONAL(hold, ttl, 1, HOLD_TTL_MAX_S,
                           "seconds the hold lives (default 3600)"),
    JOB_FIELD_STR_OPTIONAL(hold, tool, JOB_STR_TEXT, 0, JOB_TOOL_BYTES_MAX,
                           "which AI tool the credits are for (kept for history)"),
    JOB_FIELD_STR_OPTIONAL(hold, ref, JOB_STR_TEXT, 0, JOB_REF_BYTES_MAX,
                           "the caller's reference, e.g. a render ID (kept for history)"),
};

static void hold_needs(const struct job *job, struct job_needs *needs)
{
    ASSERT(job->type == JOB_HOLD);
    ASSERT(needs->new_lots == 0);
}

static void hold_apply(struct account *account, const struct job *job,
                       const struct ledger_input *input, struct entry_list *entries,
                       struct result *result)
{
    const struct job_hold *h = &job->hold;
    ASSERT(h->amount >= JOB_AMOUNT_MIN && h->amount <= JOB_AMOUNT_MAX);
    struct balance before;
    ledger_balance(account, input->now_us, &before);
    if (before.total < h->amount) {
        ledger_reject(result, JOB_ERR_INSUFFICIENT_CREDITS,
                      "usable balance %" PRId64 " is below amount %" PRId64, before.total,
                      h->amount);
        return;
    }
    struct entry like = {.kind = ENTRY_HOLD,
                         .job_index = input->job_index,
                         .tool = h->has_tool ? h->tool : NULL,
                         .ref = h->has_ref ? h->ref : NULL};
    size_t first = entries->count;
    ledger_take(account, input->now_us, LEDGER_FROM_USABLE, h->amount, &like, entries);
    int64_t ttl_s = h->has_ttl ? h->ttl : HOLD_TTL_DEFAULT_S;
    ASSERT(ttl_s >= 1 && ttl_s <= HOLD_TTL_MAX_S);
    struct hold *hold = ledger_account_add_hold(account, job->id);
    hold->amount = h->amount;
    hold->status = HOLD_OPEN;
    hold->created_at_us = input->now_us;
    hold->expires_at_us = input->now_us + ttl_s * US_PER_S;
    hold->is_new = true;
    hold->job_index = input->job_index;
    ledger_takes_of(entries, first, &hold->takes);
    result_set_amount(result, RESULT_HELD, h->amount);
    result_set_amount(result, RESULT_HOLD_EXPIRES_AT, hold->expires_at_us / 1000);
}

const struct job_type_ops job_type_hold = {
    .type = JOB_HOLD,
    .name = "hold",
    .stream = JOB_STREAM_CONSUME,
    .summary = "reserve credits for a long tool run",
    .fields = hold_fields,
    .field_count = sizeof hold_fields / sizeof hold_fields[0],
    .needs = hold_needs,
    .apply = hold_apply,
    .result_amounts = RESULT_AMOUNT_BIT(RESULT_HELD) | RESULT_AMOUNT_BIT(RESULT_HOLD_EXPIRES_AT),
};
