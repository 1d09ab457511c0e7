/*
 * refund.c -- the refund job (contract 9.4): give back part or all of what
 * an applied consume or capture of the same user spent, to the lots it
 * came from, the lot taken last first. Several partial refunds of one
 * charge are allowed, never more than it spent.
 */
#include <inttypes.h>

#include "core/job_type.h"

static const struct job_field refund_fields[] = {
    JOB_FIELD_STR(refund, charge, JOB_STR_ID, 1, JOB_ID_BYTES_MAX,
                  "the job ID of an applied consume or capture of the user"),
    JOB_FIELD_INT_OPTIONAL(refund, amount, JOB_AMOUNT_MIN, JOB_AMOUNT_MAX,
                           "credits to give back (default: all that is still refundable)"),
};

static void refund_needs(const struct job *job, struct job_needs *needs)
{
    ASSERT(job->type == JOB_REFUND);
    needs->key[NEED_CHARGE] = job->refund.charge;
}

static void refund_apply(struct account *account, const struct job *job,
                         const struct ledger_input *input, struct entry_list *entries,
                         struct result *result)
{
    const struct job_refund *r = &job->refund;
    struct charge *charge = ledger_account_charge(account, r->charge);
    if (charge == NULL) {
        ledger_reject(result, JOB_ERR_UNKNOWN_CHARGE,
                      "%s is not an applied consume or capture of this user", r->charge);
        return;
    }
    int64_t left = ledger_takes_total(&charge->takes);
    int64_t amount = r->has_amount ? r->amount : left;
    if (amount > left || amount == 0) {
        ledger_reject(result, JOB_ERR_REFUND_EXCEEDS_CHARGE,
                      "%" PRId64 " credits are left to refund of charge %s", left, r->charge);
        return;
    }
    struct entry like = {.kind = ENTRY_REFUND, .job_index = input->job_index, .origin = r->charge};
    ledger_give_back(account, input->now_us, &charge->takes, amount, &like, entries);
    result_set_amount(result, RESULT_REFUNDED, amount);
}

const struct job_type_ops job_type_refund = {
    .type = JOB_REFUND,
    .name = "refund",
    .stream = JOB_STREAM_CONSUME,
    .summary = "give back credits a consume or capture spent",
    .fields = refund_fields,
    .field_count = sizeof refund_fields / sizeof refund_fields[0],
    .needs = refund_needs,
    .apply = refund_apply,
    .result_amounts = RESULT_AMOUNT_BIT(RESULT_REFUNDED),
};
