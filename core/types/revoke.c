/*
 * revoke.c -- the revoke job (contract 9.4): a pack whose payment was
 * refunded or charged back is revoked; what is left of it goes (a `revoke`
 * entry). Credits of it already spent stay spent; credits of it in open
 * holds are revoked when the hold gives them back.
 */
#include <inttypes.h>

#include "core/job_type.h"

static const struct job_field revoke_fields[] = {
    JOB_FIELD_STR(revoke, payment_ref, JOB_STR_TEXT, 1, JOB_PAYMENT_REF_BYTES_MAX,
                  "the payment_ref of a purchase of the user"),
};

static void revoke_needs(const struct job *job, struct job_needs *needs)
{
    ASSERT(job->type == JOB_REVOKE);
    needs->key[NEED_PAYMENT_REF] = job->revoke.payment_ref;
}

static void revoke_apply(struct account *account, const struct job *job,
                         const struct ledger_input *input, struct entry_list *entries,
                         struct result *result)
{
    const struct job_revoke *r = &job->revoke;
    struct lot *lot =
        input->payment_lot_id > 0 ? ledger_account_lot(account, input->payment_lot_id) : NULL;
    if (lot == NULL) {
        ledger_reject(result, JOB_ERR_UNKNOWN_PAYMENT,
                      "this user has no pack bought with payment_ref \"%s\"", r->payment_ref);
        return;
    }
    ASSERT(lot->kind == LOT_PACK);
    if (lot->revoked) {
        ledger_reject(result, JOB_ERR_ALREADY_REVOKED,
                      "the pack of payment_ref \"%s\" is revoked already", r->payment_ref);
        return;
    }
    int64_t revoked = lot->remaining;
    if (revoked > 0) {
        struct entry entry = {.lot_id = lot->lot_id,
                              .kind = ENTRY_REVOKE,
                              .delta = -revoked,
                              .job_index = input->job_index};
        ledger_entry_add(entries, &entry);
        lot->remaining = 0;
        lot->changed = true;
    }
    lot->revoked = true;
    lot->revoked_now = true;
    result_set_amount(result, RESULT_REVOKED, revoked);
}

const struct job_type_ops job_type_revoke = {
    .type = JOB_REVOKE,
    .name = "revoke",
    .stream = JOB_STREAM_PURCHASE,
    .summary = "take back a pack whose payment was refunded",
    .fields = revoke_fields,
    .field_count = sizeof revoke_fields / sizeof revoke_fields[0],
    .needs = revoke_needs,
    .apply = revoke_apply,
    .result_amounts = RESULT_AMOUNT_BIT(RESULT_REVOKED),
};
