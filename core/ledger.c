/*
 * ledger.c -- the ledger rules of contract section 5 over one account's lots:
 * expiry, spending order, purchase, allocation with rollover cap and forfeit.
 * Pure: no I/O, no clock (time is an argument); the store loads and saves.
 */
#include "core/ledger.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Allocation failure aborts (ASSERT) everywhere in this file. Nothing is lost
 * by it: the worker acknowledges a job only after its batch is committed, so
 * an aborted batch is delivered again to the next worker.
 */

static const char *const lot_kind_names[] = {
    [LOT_PACK] = "pack",
    [LOT_MONTHLY] = "monthly",
};

static const char *const entry_kind_names[] = {
    [ENTRY_CONSUME] = "consume", [ENTRY_PURCHASE] = "purchase", [ENTRY_ALLOCATE] = "allocate",
    [ENTRY_FORFEIT] = "forfeit", [ENTRY_EXPIRE] = "expire",
};

#define LOT_KIND_COUNT (sizeof lot_kind_names / sizeof lot_kind_names[0])
#define ENTRY_KIND_COUNT (sizeof entry_kind_names / sizeof entry_kind_names[0])
_Static_assert(LOT_KIND_COUNT == LOT_MONTHLY + 1, "a name for every lot kind");
_Static_assert(ENTRY_KIND_COUNT == ENTRY_EXPIRE + 1, "a name for every entry kind");

const char *ledger_lot_kind_name(enum lot_kind kind)
{
    ASSERT((size_t)kind < LOT_KIND_COUNT);
    return lot_kind_names[kind];
}

const char *ledger_entry_kind_name(enum entry_kind kind)
{
    ASSERT((size_t)kind < ENTRY_KIND_COUNT);
    return entry_kind_names[kind];
}

bool ledger_lot_kind_parse(const char *name, enum lot_kind *kind)
{
    ASSERT(name != NULL);
    ASSERT(kind != NULL);
    for (size_t i = 0; i < LOT_KIND_COUNT; i++) {
        if (strcmp(name, lot_kind_names[i]) == 0) {
            *kind = (enum lot_kind)i;
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------------------
 * Accounts and entry lists
 * ------------------------------------------------------------------------- */

void ledger_account_init(struct account *account, const char *user)
{
    ASSERT(account != NULL);
    ASSERT(user != NULL);
    size_t len = strlen(user);
    ASSERT(len >= 1);
    ASSERT(len <= JOB_USER_BYTES_MAX);
    memset(account, 0, sizeof *account);
    memcpy(account->user, user, len + 1);
}

void ledger_account_free(struct account *account)
{
    ASSERT(account != NULL);
    free(account->lots);
    account->lots = NULL;
    account->lot_count = 0;
    account->lot_cap = 0;
}

static void assert_lot_valid(const struct lot *lot)
{
    ASSERT(lot->kind == LOT_PACK || lot->kind == LOT_MONTHLY);
    ASSERT(lot->granted > 0);
    ASSERT(lot->remaining >= 0);
    ASSERT(lot->remaining <= lot->granted);
    ASSERT(memchr(lot->period, '\0', sizeof lot->period) != NULL);
}

/* Doubles `*cap` (from `initial`) until it exceeds `count`; asserts the byte
 * size of `*cap` items of `item_size` still fits in a size_t. */
static size_t grown_cap(size_t cap, size_t count, size_t initial, size_t item_size)
{
    size_t next = cap == 0 ? initial : cap;
    while (next <= count) {
        bool overflow = __builtin_mul_overflow(next, (size_t)2, &next);
        ASSERT(!overflow);
    }
    size_t bytes;
    bool overflow = __builtin_mul_overflow(next, item_size, &bytes);
    ASSERT(!overflow);
    return next;
}

struct lot *ledger_account_add_lot(struct account *account, const struct lot *lot)
{
    ASSERT(account != NULL);
    ASSERT(lot != NULL);
    assert_lot_valid(lot);
    if (account->lot_count == account->lot_cap) {
        size_t cap = grown_cap(account->lot_cap, account->lot_count, 8, sizeof *account->lots);
        struct lot *lots = realloc(account->lots, cap * sizeof *lots);
        ASSERT(lots != NULL); /* see the allocation note at the top */
        account->lots = lots;
        account->lot_cap = cap;
    }
    struct lot *copy = &account->lots[account->lot_count++];
    *copy = *lot;
    return copy;
}

void ledger_entries_free(struct entry_list *entries)
{
    ASSERT(entries != NULL);
    free(entries->items);
    entries->items = NULL;
    entries->count = 0;
    entries->cap = 0;
}

static void entries_push(struct entry_list *entries, int64_t lot_id, enum entry_kind kind,
                         int64_t delta, size_t job_index)
{
    ASSERT(delta != 0);
    ASSERT((delta > 0) == (kind == ENTRY_PURCHASE || kind == ENTRY_ALLOCATE));
    if (entries->count == entries->cap) {
        size_t cap = grown_cap(entries->cap, entries->count, 16, sizeof *entries->items);
        struct entry *items = realloc(entries->items, cap * sizeof *items);
        ASSERT(items != NULL); /* see the allocation note at the top */
        entries->items = items;
        entries->cap = cap;
    }
    entries->items[entries->count++] = (struct entry){
        .lot_id = lot_id,
        .kind = kind,
        .delta = delta,
        .job_index = job_index,
    };
}

/* ---------------------------------------------------------------------------
 * Balance and expiry
 * ------------------------------------------------------------------------- */

static bool lot_is_usable(const struct lot *lot, int64_t now_us)
{
    return lot->expires_at_us == LEDGER_NO_EXPIRY || lot->expires_at_us > now_us;
}

static int64_t checked_add(int64_t a, int64_t b)
{
    int64_t sum;
    bool overflow = __builtin_add_overflow(a, b, &sum);
    ASSERT(!overflow); /* the catalog bounds credits at 1e12 per lot */
    return sum;
}

void ledger_balance(const struct account *account, int64_t now_us, struct balance *out)
{
    ASSERT(account != NULL);
    ASSERT(out != NULL);
    ASSERT(account->lots != NULL || account->lot_count == 0);
    struct balance b = {0, 0, 0};
    for (size_t i = 0; i < account->lot_count; i++) {
        const struct lot *lot = &account->lots[i];
        if (!lot_is_usable(lot, now_us))
            continue;
        if (lot->kind == LOT_PACK)
            b.pack = checked_add(b.pack, lot->remaining);
        else
            b.monthly = checked_add(b.monthly, lot->remaining);
    }
    b.total = checked_add(b.pack, b.monthly);
    *out = b;
}

/* Takes every expired lot with credits left to 0, with an `expire` entry. */
static void expire_lots(struct account *account, int64_t now_us, size_t job_index,
                        struct entry_list *entries)
{
    for (size_t i = 0; i < account->lot_count; i++) {
        struct lot *lot = &account->lots[i];
        if (lot_is_usable(lot, now_us) || lot->remaining == 0)
            continue;
        entries_push(entries, lot->lot_id, ENTRY_EXPIRE, -lot->remaining, job_index);
        lot->remaining = 0;
        lot->changed = true;
    }
}

/* ---------------------------------------------------------------------------
 * Spending order
 *
 * Lots arrive in any order, and account->lots keeps the order the caller
 * gave (new lots are appended). A consume or forfeit touches one lot, or a
 * few, so each is found by a scan for the first in spending order: O(lots)
 * per lot touched, with no sort and no allocation. Sorting every lot for
 * each consume cost O(n log n) per job: with thousands of packs unspent, a
 * batch for that user took most of a second.
 * ------------------------------------------------------------------------- */

static int compare_int64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

/* The contract's order: packs by expires_at, then monthly lots by
 * granted_at; lot_id breaks ties. */
static int compare_spending_order(const struct lot *a, const struct lot *b)
{
    bool a_pack = a->kind == LOT_PACK, b_pack = b->kind == LOT_PACK;
    if (a_pack != b_pack)
        return a_pack ? -1 : 1;
    int64_t a_key = a_pack ? a->expires_at_us : a->granted_at_us;
    int64_t b_key = b_pack ? b->expires_at_us : b->granted_at_us;
    if (a_key != b_key)
        return compare_int64(a_key, b_key);
    return compare_int64(a->lot_id, b->lot_id);
}

/* The first lot in spending order among the usable lots with credits left
 * (only monthly ones when `monthly_only`); NULL if there is none. */
static struct lot *next_to_spend(struct account *account, int64_t now_us, bool monthly_only)
{
    struct lot *next = NULL;
    for (size_t i = 0; i < account->lot_count; i++) {
        struct lot *lot = &account->lots[i];
        if (!lot_is_usable(lot, now_us) || lot->remaining == 0)
            continue;
        if (monthly_only && lot->kind != LOT_MONTHLY)
            continue;
        if (next == NULL || compare_spending_order(lot, next) < 0)
            next = lot;
    }
    return next;
}

/* Takes `amount` from the usable lots (only monthly ones when
 * `monthly_only`) in spending order, one entry of `kind` per lot touched.
 * The caller has checked that they hold enough. */
static void take_in_order(struct account *account, int64_t now_us, bool monthly_only,
                          int64_t amount, enum entry_kind kind, size_t job_index,
                          struct entry_list *entries)
{
    ASSERT(amount >= 0);
    while (amount > 0) {
        struct lot *lot = next_to_spend(account, now_us, monthly_only);
        ASSERT(lot != NULL);
        int64_t take = lot->remaining < amount ? lot->remaining : amount;
        ASSERT(take > 0);
        lot->remaining -= take;
        lot->changed = true;
        amount -= take;
        ASSERT(lot->remaining >= 0);
        ASSERT(lot->remaining <= lot->granted);
        entries_push(entries, lot->lot_id, kind, -take, job_index);
    }
}

/* ---------------------------------------------------------------------------
 * The job rules
 * ------------------------------------------------------------------------- */

static void reject(struct result *result, enum job_error error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Marks `result` rejected with `error` and a message for people. */
static void reject(struct result *result, enum job_error error, const char *fmt, ...)
{
    ASSERT(error != JOB_OK);
    result->error = error;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(result->message, sizeof result->message, fmt, ap);
    va_end(ap);
    ASSERT(n >= 0);
    /* The field limits keep every message below RESULT_MESSAGE_BYTES_MAX, so
     * a message is never cut (which could split a UTF-8 character). */
    ASSERT((size_t)n < sizeof result->message);
}

static void apply_consume(struct account *account, const struct job *job,
                          const struct ledger_input *input, struct entry_list *entries,
                          struct result *result)
{
    ASSERT(job->amount >= JOB_AMOUNT_MIN && job->amount <= JOB_AMOUNT_MAX);
    struct balance before;
    ledger_balance(account, input->now_us, &before);
    if (before.total < job->amount) {
        reject(result, JOB_ERR_INSUFFICIENT_CREDITS,
               "usable balance %" PRId64 " is below amount %" PRId64, before.total, job->amount);
        return;
    }
    take_in_order(account, input->now_us, false, job->amount, ENTRY_CONSUME, input->job_index,
                  entries);
    result->charged = job->amount;
}

static void apply_purchase(struct account *account, const struct job *job,
                           const struct ledger_input *input, struct entry_list *entries,
                           struct result *result)
{
    const struct pack_info *pack = input->pack;
    if (pack == NULL) {
        reject(result, JOB_ERR_UNKNOWN_PACK, "pack \"%s\" is not in the catalog", job->pack);
        return;
    }
    if (input->payment_ref_used) {
        reject(result, JOB_ERR_DUPLICATE_PAYMENT,
               "payment_ref \"%s\" already granted credits under another job ID", job->payment_ref);
        return;
    }
    ASSERT(pack->credits > 0);
    ASSERT(pack->valid_days > 0);
    int64_t valid_us, expires_at_us;
    bool overflow = __builtin_mul_overflow((int64_t)pack->valid_days, LEDGER_US_PER_DAY, &valid_us);
    ASSERT(!overflow);
    overflow = __builtin_add_overflow(input->now_us, valid_us, &expires_at_us);
    ASSERT(!overflow);
    ASSERT(expires_at_us != LEDGER_NO_EXPIRY);

    struct lot lot = {
        .lot_id = input->new_lot_id,
        .kind = LOT_PACK,
        .granted = pack->credits,
        .remaining = pack->credits,
        .granted_at_us = input->now_us,
        .expires_at_us = expires_at_us,
        .period = "",
        .is_new = true,
        .job_index = input->job_index,
    };
    ledger_account_add_lot(account, &lot);
    entries_push(entries, lot.lot_id, ENTRY_PURCHASE, lot.granted, input->job_index);
    result->granted = pack->credits;
    result->expires_at_ms = expires_at_us / 1000;
}

/* The allocate rejections, in the contract's order; JOB_OK when none. The
 * account holds every monthly lot of the user (those at 0 too), so a period
 * held is always seen. */
static enum job_error check_allocate(const struct account *account, const struct job *job,
                                     const struct ledger_input *input, struct result *result)
{
    if (input->plan == NULL) {
        reject(result, JOB_ERR_UNKNOWN_PLAN, "plan \"%s\" is not in the catalog", job->plan);
        return result->error;
    }
    const char *later = NULL;
    for (size_t i = 0; i < account->lot_count; i++) {
        const struct lot *lot = &account->lots[i];
        if (lot->kind != LOT_MONTHLY)
            continue;
        int cmp = strcmp(lot->period, job->period); /* YYYY-MM sorts as text */
        if (cmp == 0) {
            reject(result, JOB_ERR_ALREADY_ALLOCATED, "period %s is already allocated",
                   job->period);
            return result->error;
        }
        if (cmp > 0 && (later == NULL || strcmp(lot->period, later) > 0))
            later = lot->period;
    }
    if (later != NULL) {
        reject(result, JOB_ERR_STALE_PERIOD, "period %s is before allocated period %s", job->period,
               later);
        return result->error;
    }
    return JOB_OK;
}

static void apply_allocate(struct account *account, const struct job *job,
                           const struct ledger_input *input, struct entry_list *entries,
                           struct result *result)
{
    ASSERT(strlen(job->period) == JOB_PERIOD_BYTES);
    if (check_allocate(account, job, input, result) != JOB_OK)
        return;
    const struct plan_info *plan = input->plan;
    ASSERT(plan->monthly_credits > 0);
    ASSERT(plan->rollover_cap >= plan->monthly_credits); /* so forfeit <= M */

    struct balance before;
    ledger_balance(account, input->now_us, &before);
    int64_t total = checked_add(before.monthly, plan->monthly_credits);
    int64_t forfeit = total > plan->rollover_cap ? total - plan->rollover_cap : 0;
    ASSERT(forfeit <= before.monthly);
    take_in_order(account, input->now_us, true, forfeit, ENTRY_FORFEIT, input->job_index, entries);

    struct lot lot = {
        .lot_id = input->new_lot_id,
        .kind = LOT_MONTHLY,
        .granted = plan->monthly_credits,
        .remaining = plan->monthly_credits,
        .granted_at_us = input->now_us,
        .expires_at_us = LEDGER_NO_EXPIRY,
        .is_new = true,
        .job_index = input->job_index,
    };
    memcpy(lot.period, job->period, sizeof lot.period);
    ledger_account_add_lot(account, &lot);
    entries_push(entries, lot.lot_id, ENTRY_ALLOCATE, lot.granted, input->job_index);

    _Static_assert(sizeof account->plan == sizeof job->plan, "plan buffers match");
    memcpy(account->plan, job->plan, sizeof account->plan);
    account->has_plan = true;
    account->plan_changed = true;
    result->granted = plan->monthly_credits;
    result->forfeited = forfeit;
}

void ledger_apply(struct account *account, const struct job *job, const struct ledger_input *input,
                  struct entry_list *entries, struct result *result)
{
    ASSERT(account != NULL);
    ASSERT(job != NULL);
    ASSERT(input != NULL);
    ASSERT(entries != NULL);
    ASSERT(result != NULL);
    ASSERT(strcmp(account->user, job->user) == 0);
    ASSERT(account->lots != NULL || account->lot_count == 0);

    result->error = JOB_OK;
    result->message[0] = '\0';
    result->charged = 0;
    result->granted = 0;
    result->forfeited = 0;
    result->expires_at_ms = 0;

    expire_lots(account, input->now_us, input->job_index, entries);
    switch (job->type) {
    case JOB_CONSUME:
        apply_consume(account, job, input, entries, result);
        break;
    case JOB_PURCHASE:
        apply_purchase(account, job, input, entries, result);
        break;
    case JOB_ALLOCATE:
        apply_allocate(account, job, input, entries, result);
        break;
    default:
        UNREACHABLE();
    }
    /* Every outcome reports the balance; the codec decides when it is sent. */
    ledger_balance(account, input->now_us, &result->balance);
}
