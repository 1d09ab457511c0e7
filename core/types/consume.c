/*
 * consume.c -- the consume job (contract sections 2 and 5): spend `amount`
 * credits from the usable lots in the spending order, or reject the whole
 * job with insufficient_credits and change nothing. What it spent is
 * refundable (refund.c).
 */
#include <inttypes.h>

#include "core/job_type.h"

static const struct job_field consume_fields[] = {
    JOB_FIELD_INT(consume, amount, JOB_AMOUNT_MIN, JOB_AMOUNT_MAX, "credits to spend"),
    JOB_FIELD_STR_OPTIONAL(consume, tool, JOB_STR_TEXT, 0, JOB_TOOL_BYTES_MAX,
                           "which AI tool spent them (kept for history)"),
    JOB_FIELD_STR_OPTIONAL(consume, ref, JOB_STR_TEXT, 0, JOB_REF_BYTES_MAX,
                           "the caller's reference, e.g. a video ID (kept for history)"),
};

static void consume_needs(const struct job *job, struct job_needs *needs)
{
    ASSERT(job->type == JOB_CONSUME);
    ASSERT(needs->new_lots == 0);
}

static void consume_apply(struct account *account, const struct job *job,
                          const struct ledger_input *input, struct entry_list *entries,
                          struct result *result)
{
    const struct job_consume *consume = &job->consume;
    ASSERT(consume->amount >= JOB_AMOUNT_MIN && consume->amount <= JOB_AMOUNT_MAX);
    struct balance before;
    ledger_balance(account, input->now_us, &before);
    if (before.total < consume->amount) {
        ledger_reject(result, JOB_ERR_INSUFFICIENT_CREDITS,
                      "usable balance %" PRId64 " is below amount %" PRId64, before.total,
                      consume->amount);
        return;
    }
    struct entry like = {.kind = ENTRY_CONSUME,
                         .job_index = input->job_index,
                         .tool = consume->has_tool ? consume->tool : NULL,
                         .ref = consume->has_ref ? consume->ref : NULL};
    size_t first = entries->count;
    ledger_take(account, input->now_us, LEDGER_FROM_USABLE, consume->amount, &like, entries);
    /* A refund later in the batch gives back to these lots. */
    ledger_takes_of(entries, first, &ledger_account_add_charge(account, job->id)->takes);
    result_set_amount(result, RESULT_CHARGED, consume->amount);
}

const struct job_type_ops job_type_consume = {
    .type = JOB_CONSUME,
    .name = "consume",
    .stream = JOB_STREAM_CONSUME,
    .summary = "spend credits on a tool run",
    .fields = consume_fields,
    .field_count = sizeof consume_fields / sizeof consume_fields[0],
    .needs = consume_needs,
    .apply = consume_apply,
    .result_amounts = RESULT_AMOUNT_BIT(RESULT_CHARGED),
};
