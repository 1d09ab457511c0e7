/*
 * cancel.c -- the cancel job (contract 9.4): the user's subscription ends,
 * so the scheduler allocates nothing more; with `forfeit`, the usable
 * monthly credits are forfeited too. A later allocate subscribes again.
 */
#include "core/job_type.h"

static const struct job_field cancel_fields[] = {
    JOB_FIELD_BOOL_OPTIONAL(cancel, forfeit, "also forfeit the usable monthly credits"),
};

static void cancel_needs(const struct job *job, struct job_needs *needs)
{
    ASSERT(job->type == JOB_CANCEL);
    ASSERT(needs->new_lots == 0);
}

static void cancel_apply(struct account *account, const struct job *job,
                         const struct ledger_input *input, struct entry_list *entries,
                         struct result *result)
{
    if (!account->has_plan) {
        ledger_reject(result, JOB_ERR_NO_PLAN, "this user has no plan to cancel");
        return;
    }
    int64_t forfeit = 0;
    if (job->cancel.has_forfeit && job->cancel.forfeit) {
        struct balance before;
        ledger_balance(account, input->now_us, &before);
        forfeit = before.monthly;
        struct entry like = {.kind = ENTRY_FORFEIT, .job_index = input->job_index};
        ledger_take(account, input->now_us, LEDGER_FROM_MONTHLY, forfeit, &like, entries);
    }
    account->has_plan = false;
    account->plan[0] = '\0';
    account->plan_changed = true;
    result_set_amount(result, RESULT_FORFEITED, forfeit);
}

const struct job_type_ops job_type_cancel = {
    .type = JOB_CANCEL,
    .name = "cancel",
    .stream = JOB_STREAM_ALLOCATE,
    .summary = "end a subscription (optionally forfeiting its monthly credits)",
    .fields = cancel_fields,
    .field_count = sizeof cancel_fields / sizeof cancel_fields[0],
    .needs = cancel_needs,
    .apply = cancel_apply,
    .result_amounts = RESULT_AMOUNT_BIT(RESULT_FORFEITED),
};
