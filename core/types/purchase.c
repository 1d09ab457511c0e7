/*
 * purchase.c -- the purchase job (contract sections 2 and 5): a new pack lot
 * of the pack's credits, expiring valid_days after it was applied, granted
 * once per payment reference.
 */
#include "core/job_type.h"

static const struct job_field purchase_fields[] = {
    JOB_FIELD_STR(purchase, pack, JOB_STR_TEXT, 1, JOB_PACK_BYTES_MAX,
                  "a pack ID from the catalog (credits.packs)"),
    JOB_FIELD_STR(purchase, payment_ref, JOB_STR_TEXT, 1, JOB_PAYMENT_REF_BYTES_MAX,
                  "the payment provider's capture or order ID: one payment grants once"),
};

static void purchase_needs(const struct job *job, struct job_needs *needs)
{
    ASSERT(job->type == JOB_PURCHASE);
    needs->key[NEED_PACK] = job->purchase.pack;
    needs->key[NEED_PAYMENT_REF] = job->purchase.payment_ref;
    needs->new_lots = 1;
}

static void purchase_apply(struct account *account, const struct job *job,
                           const struct ledger_input *input, struct entry_list *entries,
                           struct result *result)
{
    const struct job_purchase *purchase = &job->purchase;
    const struct pack_info *pack = input->pack;
    if (pack == NULL) {
        ledger_reject(result, JOB_ERR_UNKNOWN_PACK, "pack \"%s\" is not in the catalog",
                      purchase->pack);
        return;
    }
    if (input->payment_ref_used) {
        ledger_reject(result, JOB_ERR_DUPLICATE_PAYMENT,
                      "payment_ref \"%s\" already granted credits under another job ID",
                      purchase->payment_ref);
        return;
    }
    ASSERT(pack->credits > 0);
    ASSERT(pack->valid_days > 0);
    struct lot lot = {
        .lot_id = input->new_lot_id,
        .kind = LOT_PACK,
        .granted = pack->credits,
        .remaining = pack->credits,
        .granted_at_us = input->now_us,
        .expires_at_us = ledger_expiry_after_days(input->now_us, pack->valid_days),
        .period = "",
        .is_new = true,
        .job_index = input->job_index,
        .pack_id = purchase->pack,
        .payment_ref = purchase->payment_ref,
    };
    ledger_account_add_lot(account, &lot);
    struct entry entry = {.lot_id = lot.lot_id,
                          .kind = ENTRY_PURCHASE,
                          .delta = lot.granted,
                          .job_index = input->job_index};
    ledger_entry_add(entries, &entry);
    result_set_amount(result, RESULT_GRANTED, pack->credits);
    result_set_amount(result, RESULT_EXPIRES_AT, lot.expires_at_us / 1000);
}

const struct job_type_ops job_type_purchase = {
    .type = JOB_PURCHASE,
    .name = "purchase",
    .stream = JOB_STREAM_PURCHASE,
    .summary = "grant a credit pack bought with a payment",
    .fields = purchase_fields,
    .field_count = sizeof purchase_fields / sizeof purchase_fields[0],
    .needs = purchase_needs,
    .apply = purchase_apply,
    .result_amounts = RESULT_AMOUNT_BIT(RESULT_GRANTED) | RESULT_AMOUNT_BIT(RESULT_EXPIRES_AT),
};
