/*
 * grant.c -- the grant job (contract 9.4): a new `grant` lot of `amount`
 * credits, expiring `valid_days` after it was applied when given, never
 * when not. Never rejected for a reason of the ledger.
 */
#include "core/job_type.h"

#define GRANT_VALID_DAYS_MAX 36500

static const struct job_field grant_fields[] = {
    JOB_FIELD_INT(grant, amount, JOB_AMOUNT_MIN, JOB_AMOUNT_MAX, "credits given"),
    JOB_FIELD_INT_OPTIONAL(grant, valid_days, 1, GRANT_VALID_DAYS_MAX,
                           "days until they expire (default: never)"),
    JOB_FIELD_STR_OPTIONAL(grant, reason, JOB_STR_TEXT, 0, JOB_REASON_BYTES_MAX,
                           "why, for people (kept in the entry's ref)"),
};

static void grant_needs(const struct job *job, struct job_needs *needs)
{
    ASSERT(job->type == JOB_GRANT);
    needs->new_lots = 1;
}

static void grant_apply(struct account *account, const struct job *job,
                        const struct ledger_input *input, struct entry_list *entries,
                        struct result *result)
{
    const struct job_grant *g = &job->grant;
    ASSERT(g->amount >= JOB_AMOUNT_MIN && g->amount <= JOB_AMOUNT_MAX);
    struct lot lot = {
        .lot_id = input->new_lot_id,
        .kind = LOT_GRANT,
        .granted = g->amount,
        .remaining = g->amount,
        .granted_at_us = input->now_us,
        .expires_at_us = g->has_valid_days
                             ? ledger_expiry_after_days(input->now_us, g->valid_days)
                             : LEDGER_NO_EXPIRY,
        .period = "",
        .is_new = true,
        .job_index = input->job_index,
    };
    ledger_account_add_lot(account, &lot);
    struct entry entry = {.lot_id = lot.lot_id,
                          .kind = ENTRY_GRANT,
                          .delta = lot.granted,
                          .job_index = input->job_index,
                          .ref = g->has_reason ? g->reason : NULL};
    ledger_entry_add(entries, &entry);
    result_set_amount(result, RESULT_GRANTED, g->amount);
    if (g->has_valid_days)
        result_set_amount(result, RESULT_EXPIRES_AT, lot.expires_at_us / 1000);
}

const struct job_type_ops job_type_grant = {
    .type = JOB_GRANT,
    .name = "grant",
    .stream = JOB_STREAM_ALLOCATE,
    .summary = "give credits by hand (support, a bonus, an upgrade)",
    .fields = grant_fields,
    .field_count = sizeof grant_fields / sizeof grant_fields[0],
    .needs = grant_needs,
    .apply = grant_apply,
    .result_amounts = RESULT_AMOUNT_BIT(RESULT_GRANTED),
    .result_amounts_optional = RESULT_AMOUNT_BIT(RESULT_EXPIRES_AT),
};
