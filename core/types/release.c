/*
 * release.c -- the release job (contract 9.4): give all of an open hold's
 * credits back to its lots (a render that failed).
 */
#include "core/job_type.h"

static const struct job_field release_fields[] = {
    JOB_FIELD_STR(release, hold, JOB_STR_ID, 1, JOB_ID_BYTES_MAX, "the job ID of the hold"),
};

static void release_needs(const struct job *job, struct job_needs *needs)
{
    ASSERT(job->type == JOB_RELEASE);
    needs->key[NEED_HOLD] = job->release.hold;
}

static void release_apply(struct account *account, const struct job *job,
                          const struct ledger_input *input, struct entry_list *entries,
                          struct result *result)
{
    struct hold *hold = ledger_open_hold(account, job->release.hold, input->now_us, result);
    if (hold == NULL)
        return;
    int64_t amount = hold->amount;
    struct entry like = {.kind = ENTRY_RELEASE, .job_index = input->job_index};
    ledger_close_hold(account, input->now_us, hold, HOLD_RELEASED, &like, entries);
    hold->closed_by = job->id;
    result_set_amount(result, RESULT_RELEASED, amount);
}

const struct job_type_ops job_type_release = {
    .type = JOB_RELEASE,
    .name = "release",
    .stream = JOB_STREAM_CONSUME,
    .summary = "give all of a hold's credits back",
    .fields = release_fields,
    .field_count = sizeof release_fields / sizeof release_fields[0],
    .needs = release_needs,
    .apply = release_apply,
    .result_amounts = RESULT_AMOUNT_BIT(RESULT_RELEASED),
};
