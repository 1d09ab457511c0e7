/*
 * capture.c -- the capture job (contract 9.4): charge the real cost of an
 * open hold and give the rest back to its lots, the lot taken last first,
 * so that what is charged stays with the credits that expire soonest. What
 * it charged is refundable (refund.c).
 */
#include <inttypes.h>

#include "core/job_type.h"

static const struct job_field capture_fields[] = {
    JOB_FIELD_STR(capture, hold, JOB_STR_ID, 1, JOB_ID_BYTES_MAX, "the job ID of the hold"),
    JOB_FIELD_INT(capture, amount, 0, JOB_AMOUNT_MAX, "the real cost, at most the hold's amount"),
};

static void capture_needs(const struct job *job, struct job_needs *needs)
{
    ASSERT(job->type == JOB_CAPTURE);
    needs->key[NEED_HOLD] = job->capture.hold;
}

static void capture_apply(struct account *account, const struct job *job,
                          const struct ledger_input *input, struct entry_list *entries,
                          struct result *result)
{
    const struct job_capture *c = &job->capture;
    struct hold *hold = ledger_open_hold(account, c->hold, input->now_us, result);
    if (hold == NULL)
        return;
    if (c->amount > hold->amount) {
        ledger_reject(result, JOB_ERR_CAPTURE_EXCEEDS_HOLD,
                      "amount %" PRId64 " is above the hold's %" PRId64, c->amount, hold->amount);
        return;
    }
    int64_t rest = hold->amount - c->amount;
    struct entry release = {.kind = ENTRY_RELEASE, .job_index = input->job_index, .origin = hold->id};
    ledger_give_back(account, input->now_us, &hold->takes, rest, &release, entries);
    hold->status = HOLD_CAPTURED;
    hold->captured = c->amount;
    hold->closed_by = job->id;
    hold->changed = true;
    /* What the hold still took is what was charged: a refund gives it back. */
    struct charge *charge = ledger_account_add_charge(account, job->id);
    for (size_t i = 0; i < hold->takes.count; i++)
        if (hold->takes.items[i].amount > 0)
            ledger_takes_add(&charge->takes, hold->takes.items[i].lot_id,
                             hold->takes.items[i].amount);
    result_set_amount(result, RESULT_CHARGED, c->amount);
    result_set_amount(result, RESULT_RELEASED, rest);
}

const struct job_type_ops job_type_capture = {
    .type = JOB_CAPTURE,
    .name = "capture",
    .stream = JOB_STREAM_CONSUME,
    .summary = "charge a hold's real cost and give the rest back",
    .fields = capture_fields,
    .field_count = sizeof capture_fields / sizeof capture_fields[0],
    .needs = capture_needs,
    .apply = capture_apply,
    .result_amounts = RESULT_AMOUNT_BIT(RESULT_CHARGED) | RESULT_AMOUNT_BIT(RESULT_RELEASED),
};
