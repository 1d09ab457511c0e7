/*
 * ledger.c -- the ledger of contract section 5 over one account's lots:
 * expiry, the spending order, the balance, and running a job type's rule
 * (the rules themselves are in core/types/). Pure: no I/O, no clock (time
 * is an argument); the store loads and saves.
 */
#include "core/ledger.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/job_type.h"

/*
 * Allocation failure aborts (ASSERT) everywhere in this file. Nothing is lost
 * by it: the worker acknowledges a job only after its batch is committed, so
 * an aborted batch is delivered again to the next worker.
 */

static const char *const lot_kind_names[LOT_KIND_COUNT] = {
#define LOT_KIND_NAME(value, name) [value] = name,
    LOT_KINDS(LOT_KIND_NAME)
#undef LOT_KIND_NAME
};

static const char *const entry_kind_names[ENTRY_KIND_COUNT] = {
#define ENTRY_KIND_NAME(value, name, sign) [value] = name,
    ENTRY_KINDS(ENTRY_KIND_NAME)
#undef ENTRY_KIND_NAME
};

static const char *const hold_status_names[HOLD_STATUS_COUNT] = {
#define HOLD_STATUS_NAME(value, name) [value] = name,
    HOLD_STATUSES(HOLD_STATUS_NAME)
#undef HOLD_STATUS_NAME
};

static const int entry_kind_signs[ENTRY_KIND_COUNT] = {
#define ENTRY_KIND_SIGN(value, name, sign) [value] = sign,
    ENTRY_KINDS(ENTRY_KIND_SIGN)
#undef ENTRY_KIND_SIGN
};

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

const char *ledger_hold_status_name(enum hold_status status)
{
    ASSERT((size_t)status < HOLD_STATUS_COUNT);
    return hold_status_names[status];
}

/* The index of `name` in names[0..count), or count. */
static size_t name_index(const char *const *names, size_t count, const char *name)
{
    ASSERT(name != NULL);
    for (size_t i = 0; i < count; i++) {
        ASSERT(names[i] != NULL);
        if (strcmp(name, names[i]) == 0)
            return i;
    }
    return count;
}

bool ledger_lot_kind_parse(const char *name, enum lot_kind *kind)
{
    ASSERT(kind != NULL);
    size_t i = name_index(lot_kind_names, LOT_KIND_COUNT, name);
    if (i == LOT_KIND_COUNT)
        return false;
    *kind = (enum lot_kind)i;
    return true;
}

bool ledger_entry_kind_parse(const char *name, enum entry_kind *kind)
{
    ASSERT(kind != NULL);
    size_t i = name_index(entry_kind_names, ENTRY_KIND_COUNT, name);
    if (i == ENTRY_KIND_COUNT)
        return false;
    *kind = (enum entry_kind)i;
    return true;
}

bool ledger_hold_status_parse(const char *name, enum hold_status *status)
{
    ASSERT(status != NULL);
    size_t i = name_index(hold_status_names, HOLD_STATUS_COUNT, name);
    if (i == HOLD_STATUS_COUNT)
        return false;
    *status = (enum hold_status)i;
    return true;
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
    for (size_t i = 0; i < account->hold_count; i++) {
        ledger_takes_free(&account->holds[i]->takes);
        free(account->holds[i]);
    }
    free(account->holds);
    for (size_t i = 0; i < account->charge_count; i++) {
        ledger_takes_free(&account->charges[i]->takes);
        free(account->charges[i]);
    }
    free(account->charges);
    char user[JOB_USER_BYTES_MAX + 1];
    memcpy(user, account->user, sizeof user);
    memset(account, 0, sizeof *account);
    memcpy(account->user, user, sizeof user);
}

static void assert_lot_valid(const struct lot *lot)
{
    ASSERT((size_t)lot->kind < LOT_KIND_COUNT);
    ASSERT(!lot->revoked || lot->remaining == 0);
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

struct lot *ledger_account_lot(struct account *account, int64_t lot_id)
{
    ASSERT(account != NULL && lot_id > 0);
    for (size_t i = 0; i < account->lot_count; i++)
        if (account->lots[i].lot_id == lot_id)
            return &account->lots[i];
    return NULL;
}

/* Appends `item` to a growable array of pointers. */
static void push_pointer(void ***items, size_t *count, size_t *cap, void *item)
{
    if (*count == *cap) {
        size_t next = grown_cap(*cap, *count, 4, sizeof **items);
        void **grown = realloc(*items, next * sizeof *grown);
        ASSERT(grown != NULL); /* see the allocation note at the top */
        *items = grown;
        *cap = next;
    }
    (*items)[(*count)++] = item;
}

struct hold *ledger_account_add_hold(struct account *account, const char *id)
{
    ASSERT(account != NULL && id != NULL && strlen(id) <= JOB_ID_BYTES_MAX);
    ASSERT(ledger_account_hold(account, id) == NULL);
    struct hold *hold = calloc(1, sizeof *hold);
    ASSERT(hold != NULL); /* see the allocation note at the top */
    strcpy(hold->id, id);
    push_pointer((void ***)&account->holds, &account->hold_count, &account->hold_cap, hold);
    return hold;
}

struct charge *ledger_account_add_charge(struct account *account, const char *id)
{
    ASSERT(account != NULL && id != NULL && strlen(id) <= JOB_ID_BYTES_MAX);
    ASSERT(ledger_account_charge(account, id) == NULL);
    struct charge *charge = calloc(1, sizeof *charge);
    ASSERT(charge != NULL); /* see the allocation note at the top */
    strcpy(charge->id, id);
    push_pointer((void ***)&account->charges, &account->charge_count, &account->charge_cap, charge);
    return charge;
}

struct hold *ledger_account_hold(struct account *account, const char *id)
{
    ASSERT(account != NULL && id != NULL);
    for (size_t i = 0; i < account->hold_count; i++)
        if (strcmp(account->holds[i]->id, id) == 0)
            return account->holds[i];
    return NULL;
}

struct charge *ledger_account_charge(struct account *account, const char *id)
{
    ASSERT(account != NULL && id != NULL);
    for (size_t i = 0; i < account->charge_count; i++)
        if (strcmp(account->charges[i]->id, id) == 0)
            return account->charges[i];
    return NULL;
}

void ledger_takes_add(struct take_list *takes, int64_t lot_id, int64_t amount)
{
    ASSERT(takes != NULL && lot_id > 0 && amount > 0);
    if (takes->count == takes->cap) {
        size_t cap = grown_cap(takes->cap, takes->count, 4, sizeof *takes->items);
        struct take *items = realloc(takes->items, cap * sizeof *items);
        ASSERT(items != NULL); /* see the allocation note at the top */
        takes->items = items;
        takes->cap = cap;
    }
    takes->items[takes->count++] = (struct take){lot_id, amount};
}

int64_t ledger_takes_total(const struct take_list *takes)
{
    ASSERT(takes != NULL);
    int64_t total = 0;
    for (size_t i = 0; i < takes->count; i++) {
        ASSERT(takes->items[i].amount >= 0);
        total = ledger_credits_add(total, takes->items[i].amount);
    }
    return total;
}

void ledger_takes_free(struct take_list *takes)
{
    ASSERT(takes != NULL);
    free(takes->items);
    memset(takes, 0, sizeof *takes);
}

void ledger_entry_add(struct entry_list *entries, const struct entry *entry)
{
    ASSERT(entries != NULL && entry != NULL);
    ASSERT((size_t)entry->kind < ENTRY_KIND_COUNT);
    ASSERT(entry->delta != 0);
    ASSERT((entry->delta > 0) == (entry_kind_signs[entry->kind] > 0));
    if (entries->count == entries->cap) {
        size_t cap = grown_cap(entries->cap, entries->count, 16, sizeof *entries->items);
        struct entry *items = realloc(entries->items, cap * sizeof *items);
        ASSERT(items != NULL); /* see the allocation note at the top */
        entries->items = items;
        entries->cap = cap;
    }
    entries->items[entries->count++] = *entry;
}

/* ---------------------------------------------------------------------------
 * Balance and expiry
 * ------------------------------------------------------------------------- */

static bool lot_is_expired(const struct lot *lot, int64_t now_us)
{
    return lot->expires_at_us != LEDGER_NO_EXPIRY && lot->expires_at_us <= now_us;
}

/* Usable at `now_us` (contract 9.4): neither expired nor revoked. */
static bool lot_is_usable(const struct lot *lot, int64_t now_us)
{
    return !lot->revoked && !lot_is_expired(lot, now_us);
}

int64_t ledger_credits_add(int64_t a, int64_t b)
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
    struct balance b = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < account->lot_count; i++) {
        const struct lot *lot = &account->lots[i];
        if (!lot_is_usable(lot, now_us))
            continue;
        switch (lot->kind) {
        case LOT_PACK:
            b.pack = ledger_credits_add(b.pack, lot->remaining);
            break;
        case LOT_MONTHLY:
            b.monthly = ledger_credits_add(b.monthly, lot->remaining);
            break;
        case LOT_GRANT:
            b.grant = ledger_credits_add(b.grant, lot->remaining);
            break;
        }
    }
    b.total = ledger_credits_add(ledger_credits_add(b.pack, b.monthly), b.grant);
    for (size_t i = 0; i < account->hold_count; i++) {
        const struct hold *hold = account->holds[i];
        if (hold->status == HOLD_OPEN)
            b.held = ledger_credits_add(b.held, hold->amount);
    }
    *out = b;
}

int64_t ledger_lots_remaining(const struct account *account)
{
    int64_t sum = 0;
    for (size_t i = 0; i < account->lot_count; i++)
        sum = ledger_credits_add(sum, account->lots[i].remaining);
    return sum;
}

bool ledger_lot_is_expired(const struct lot *lot, int64_t now_us)
{
    return lot_is_expired(lot, now_us);
}

void ledger_expire_lot(struct lot *lot, size_t job_index, const char *job_id,
                       struct entry_list *entries)
{
    ASSERT(lot->remaining > 0 && !lot->revoked); /* a revoked lot holds nothing */
    struct entry expire = {.lot_id = lot->lot_id,
                           .kind = ENTRY_EXPIRE,
                           .delta = -lot->remaining,
                           .job_index = job_index,
                           .job_id = job_id};
    ledger_entry_add(entries, &expire);
    lot->remaining = 0;
    lot->changed = true;
}

/* Takes every expired lot with credits left to 0, with an `expire` entry
 * under the job that finds it. */
static void expire_lots(struct account *account, int64_t now_us, size_t job_index,
                        struct entry_list *entries)
{
    for (size_t i = 0; i < account->lot_count; i++) {
        struct lot *lot = &account->lots[i];
        if (lot_is_expired(lot, now_us) && lot->remaining > 0)
            ledger_expire_lot(lot, job_index, NULL, entries);
    }
}

/* ---------------------------------------------------------------------------
 * Giving credits back: releases and refunds
 * ------------------------------------------------------------------------- */

/* A share given back to a lot no longer usable leaves it again at once. */
static void leave_again(struct lot *lot, int64_t amount, const struct entry *like,
                        struct entry_list *entries)
{
    ASSERT(amount > 0 && lot->remaining >= amount);
    struct entry leave = *like;
    leave.lot_id = lot->lot_id;
    leave.kind = lot->revoked ? ENTRY_REVOKE : ENTRY_EXPIRE;
    leave.delta = -amount;
    leave.tool = leave.ref = NULL;
    ledger_entry_add(entries, &leave);
    lot->remaining -= amount;
}

static int compare_int64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

/* A give-back over more takes than this finds their lots in an index by
 * lot_id, not by a scan per take (O(n^2) for a hold over thousands of lots). */
#define LEDGER_SCANNED_TAKES_MAX 8

static int compare_lot_ids(const void *a, const void *b)
{
    return compare_int64((*(struct lot *const *)a)->lot_id, (*(struct lot *const *)b)->lot_id);
}

/* The account's lots sorted by lot_id (freed by the caller). */
static struct lot **lots_by_id(struct account *account)
{
    struct lot **index = malloc((account->lot_count ? account->lot_count : 1) * sizeof *index);
    ASSERT(index != NULL);
    for (size_t i = 0; i < account->lot_count; i++)
        index[i] = &account->lots[i];
    qsort(index, account->lot_count, sizeof *index, compare_lot_ids);
    return index;
}

/* Lot `lot_id` through `index` (lots_by_id), or by a scan when it is NULL. */
static struct lot *find_lot(struct account *account, struct lot **index, int64_t lot_id)
{
    if (index == NULL)
        return ledger_account_lot(account, lot_id);
    size_t low = 0, high = account->lot_count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (index[mid]->lot_id < lot_id)
            low = mid + 1;
        else
            high = mid;
    }
    return low < account->lot_count && index[low]->lot_id == lot_id ? index[low] : NULL;
}

void ledger_give_back(struct account *account, int64_t now_us, struct take_list *takes,
                      int64_t amount, const struct entry *like, struct entry_list *entries)
{
    ASSERT(account != NULL && takes != NULL && like != NULL);
    ASSERT(entry_kind_signs[like->kind] > 0);
    ASSERT(amount >= 0 && amount <= ledger_takes_total(takes));
    struct lot **index = takes->count > LEDGER_SCANNED_TAKES_MAX ? lots_by_id(account) : NULL;
    for (size_t i = takes->count; i-- > 0 && amount > 0;) {
        struct take *take = &takes->items[i];
        int64_t give = take->amount < amount ? take->amount : amount;
        if (give == 0)
            continue;
        struct lot *lot = find_lot(account, index, take->lot_id);
        ASSERT(lot != NULL); /* the store loads every lot a hold or charge took from */
        lot->remaining += give;
        ASSERT(lot->remaining <= lot->granted);
        lot->changed = true;
        struct entry entry = *like;
        entry.lot_id = lot->lot_id;
        entry.delta = give;
        ledger_entry_add(entries, &entry);
        if (!lot_is_usable(lot, now_us))
            leave_again(lot, give, like, entries);
        take->amount -= give;
        amount -= give;
    }
    free(index);
    ASSERT(amount == 0);
}

void ledger_close_hold(struct account *account, int64_t now_us, struct hold *hold,
                       enum hold_status status, const struct entry *like,
                       struct entry_list *entries)
{
    ASSERT(hold != NULL && hold->status == HOLD_OPEN && status != HOLD_OPEN);
    struct entry release = *like;
    release.kind = ENTRY_RELEASE;
    release.origin = hold->id;
    release.tool = release.ref = NULL;
    ledger_give_back(account, now_us, &hold->takes, ledger_takes_total(&hold->takes), &release,
                     entries);
    hold->status = status;
    hold->changed = true;
}

struct hold *ledger_open_hold(struct account *account, const char *hold_id, int64_t now_us,
                              struct result *result)
{
    ASSERT(account != NULL && hold_id != NULL && result != NULL);
    struct hold *hold = ledger_account_hold(account, hold_id);
    if (hold == NULL) {
        ledger_reject(result, JOB_ERR_UNKNOWN_HOLD, "this user has no hold %s", hold_id);
        return NULL;
    }
    switch (hold->status) {
    case HOLD_OPEN:
        break;
    case HOLD_CAPTURED:
    case HOLD_RELEASED:
        ledger_reject(result, JOB_ERR_HOLD_CLOSED, "hold %s was %s already", hold_id,
                      ledger_hold_status_name(hold->status));
        return NULL;
    case HOLD_EXPIRED:
        ledger_reject(result, JOB_ERR_HOLD_EXPIRED, "hold %s expired and was released", hold_id);
        return NULL;
    }
    /* An open hold past its expiry was released when the job began. */
    ASSERT(hold->expires_at_us > now_us);
    return hold;
}

void ledger_takes_of(const struct entry_list *entries, size_t first, struct take_list *out)
{
    ASSERT(entries != NULL && out != NULL && first <= entries->count);
    for (size_t i = first; i < entries->count; i++) {
        const struct entry *e = &entries->items[i];
        ASSERT(e->delta < 0);
        ledger_takes_add(out, e->lot_id, -e->delta);
    }
}

/* A hold whose expiry has passed is released (status expired) by the
 * transaction of any job of its user (contract 9.4); its entries carry the
 * hold's ID as their job and origin. */
static void release_expired_holds(struct account *account, int64_t now_us, size_t job_index,
                                  struct entry_list *entries)
{
    for (size_t i = 0; i < account->hold_count; i++) {
        struct hold *hold = account->holds[i];
        if (ledger_hold_is_overdue(hold, now_us))
            ledger_expire_hold(account, now_us, hold, job_index, entries);
    }
}

bool ledger_hold_is_overdue(const struct hold *hold, int64_t now_us)
{
    return hold->status == HOLD_OPEN && hold->expires_at_us <= now_us;
}

void ledger_expire_hold(struct account *account, int64_t now_us, struct hold *hold,
                        size_t job_index, struct entry_list *entries)
{
    ASSERT(ledger_hold_is_overdue(hold, now_us));
    struct entry like = {.kind = ENTRY_RELEASE, .job_index = job_index, .job_id = hold->id};
    ledger_close_hold(account, now_us, hold, HOLD_EXPIRED, &like, entries);
    hold->closed_by = NULL;
}

/* ---------------------------------------------------------------------------
 * Spending order
 *
 * Lots arrive in any order, and account->lots keeps the order the caller
 * gave (new lots are appended). A consume or forfeit touches one lot, or a
 * few, so the first LEDGER_SCANNED_LOTS_MAX are each found by a scan for the
 * first in spending order: O(lots) per lot touched, with no sort and no
 * allocation (sorting every lot for each consume cost O(n log n) per job:
 * with thousands of packs unspent, a batch for that user took most of a
 * second). A take that goes on past them sorts the lots left once, so that
 * spending n lots costs O(n log n), not a scan per lot: O(n^2), 1.3 s for a
 * consume over 20,000 one-credit lots.
 * ------------------------------------------------------------------------- */

#define LEDGER_SCANNED_LOTS_MAX 4

/* The contract's order: the lots that expire, by expires_at; then the lots
 * that never expire, by granted_at; lot_id breaks ties. (For packs and
 * monthly lots: packs by expiry, then monthly lots oldest first.) Readers
 * list lots in it with LEDGER_SPENDING_ORDER_SQL. */
static int compare_spending_order(const struct lot *a, const struct lot *b)
{
    bool a_expires = a->expires_at_us != LEDGER_NO_EXPIRY;
    bool b_expires = b->expires_at_us != LEDGER_NO_EXPIRY;
    if (a_expires != b_expires)
        return a_expires ? -1 : 1;
    int64_t a_key = a_expires ? a->expires_at_us : a->granted_at_us;
    int64_t b_key = b_expires ? b->expires_at_us : b->granted_at_us;
    if (a_key != b_key)
        return compare_int64(a_key, b_key);
    return compare_int64(a->lot_id, b->lot_id);
}

static bool lot_is_takeable(const struct lot *lot, int64_t now_us, enum ledger_take_from from)
{
    if (!lot_is_usable(lot, now_us) || lot->remaining == 0)
        return false;
    switch (from) {
    case LEDGER_FROM_USABLE:
        return true;
    case LEDGER_FROM_MONTHLY:
        return lot->kind == LOT_MONTHLY;
    }
    UNREACHABLE();
}

/* The first lot in spending order among the lots `from` allows with credits
 * left; NULL if there is none. */
static struct lot *next_to_spend(struct account *account, int64_t now_us,
                                 enum ledger_take_from from)
{
    struct lot *next = NULL;
    for (size_t i = 0; i < account->lot_count; i++) {
        struct lot *lot = &account->lots[i];
        if (!lot_is_takeable(lot, now_us, from))
            continue;
        if (next == NULL || compare_spending_order(lot, next) < 0)
            next = lot;
    }
    return next;
}

/* Takes what `lot` has, up to `amount`, with one entry; returns it. */
static int64_t take_from_lot(struct lot *lot, int64_t amount, const struct entry *like,
                             struct entry_list *entries)
{
    int64_t take = lot->remaining < amount ? lot->remaining : amount;
    ASSERT(take > 0);
    lot->remaining -= take;
    lot->changed = true;
    ASSERT(lot->remaining >= 0);
    ASSERT(lot->remaining <= lot->granted);
    struct entry entry = *like;
    entry.lot_id = lot->lot_id;
    entry.delta = -take;
    ledger_entry_add(entries, &entry);
    return take;
}

static int compare_lots_spending(const void *a, const void *b)
{
    return compare_spending_order(*(struct lot *const *)a, *(struct lot *const *)b);
}

/* Every lot `from` allows with credits left, in spending order (freed by
 * the caller). */
static struct lot **takeable_in_order(struct account *account, int64_t now_us,
                                      enum ledger_take_from from, size_t *count)
{
    struct lot **order = malloc((account->lot_count ? account->lot_count : 1) * sizeof *order);
    ASSERT(order != NULL);
    size_t n = 0;
    for (size_t i = 0; i < account->lot_count; i++)
        if (lot_is_takeable(&account->lots[i], now_us, from))
            order[n++] = &account->lots[i];
    qsort(order, n, sizeof *order, compare_lots_spending);
    *count = n;
    return order;
}

void ledger_take(struct account *account, int64_t now_us, enum ledger_take_from from,
                 int64_t amount, const struct entry *like, struct entry_list *entries)
{
    ASSERT(account != NULL && like != NULL);
    ASSERT(amount >= 0);
    ASSERT(entry_kind_signs[like->kind] < 0);
    for (int scanned = 0; amount > 0 && scanned < LEDGER_SCANNED_LOTS_MAX; scanned++) {
        struct lot *lot = next_to_spend(account, now_us, from);
        ASSERT(lot != NULL);
        amount -= take_from_lot(lot, amount, like, entries);
    }
    if (amount == 0)
        return;
    /* The lots taken so far are empty, so the sorted rest goes on from the
     * next in spending order. */
    size_t count;
    struct lot **order = takeable_in_order(account, now_us, from, &count);
    for (size_t i = 0; i < count && amount > 0; i++)
        amount -= take_from_lot(order[i], amount, like, entries);
    free(order);
    ASSERT(amount == 0);
}

/* ---------------------------------------------------------------------------
 * Running a job type's rule
 * ------------------------------------------------------------------------- */

void ledger_reject(struct result *result, enum job_error error, const char *fmt, ...)
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

int64_t ledger_expiry_after_days(int64_t now_us, int64_t days)
{
    ASSERT(days > 0);
    int64_t valid_us, expires_at_us;
    bool overflow = __builtin_mul_overflow(days, LEDGER_US_PER_DAY, &valid_us);
    ASSERT(!overflow);
    overflow = __builtin_add_overflow(now_us, valid_us, &expires_at_us);
    ASSERT(!overflow);
    ASSERT(expires_at_us != LEDGER_NO_EXPIRY);
    return expires_at_us;
}

/* An applied result carries exactly its type's amounts; a rejection none. */
static void assert_amounts(const struct job_type_ops *ops, const struct result *result)
{
    uint32_t present = result->amounts_present;
    if (result->error != JOB_OK) {
        ASSERT(present == 0);
        return;
    }
    ASSERT((present & ops->result_amounts) == ops->result_amounts);
    ASSERT((present & ~(ops->result_amounts | ops->result_amounts_optional)) == 0);
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
    result->amounts_present = 0;
    memset(result->amounts, 0, sizeof result->amounts);

    release_expired_holds(account, input->now_us, input->job_index, entries);
    expire_lots(account, input->now_us, input->job_index, entries);
    const struct job_type_ops *ops = job_type_ops(job->type);
    ops->apply(account, job, input, entries, result);
    assert_amounts(ops, result);
    /* Every outcome reports the balance; the codec decides when it is sent. */
    ledger_balance(account, input->now_us, &result->balance);
}
