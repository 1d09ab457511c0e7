/*
 * store_model.h -- an in-memory database that loads a batch and writes it
 * back the way the store does (worker/daemon/store.c and rows.c), for the
 * tests of core/batch.c: tests/unit/test_batch.c and tests/fuzz/fuzz_batch.c.
 *
 * Owns the model only: what a batch loads (stored decisions, the accounts'
 * plans, the users' lots, their open holds and the holds the jobs name with
 * what the open ones hold, the charges refunds name with what is still
 * refundable, the lots of payment references, the catalog rows named, lot
 * IDs) and what it writes (job rows, new, changed and revoked lots, entries
 * with their job and origin, plans, new and closed holds), and the checks of
 * contract 5 and 9.4 over it. The includer defines MODEL_CHECK(cond), its
 * assertion, before including this file.
 */
#ifndef CREDITS_TESTS_STORE_MODEL_H
#define CREDITS_TESTS_STORE_MODEL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"

#ifndef MODEL_CHECK
#error "define MODEL_CHECK(cond) before including store_model.h"
#endif

/* $2 of the store's lots query when no job asks for spent monthly lots. */
#define MODEL_NO_PERIOD "9999-99"

/* A row of credits.jobs. Strings are the model's (model_free()). */
struct model_job {
    char *id;
    char *user;
    enum job_type type;
    bool applied;
    msgpack_sbuffer request;
    msgpack_sbuffer result;
};

/* A row of credits.lots; `lot` has its write-back flags cleared. */
struct model_lot {
    char *user;
    char *payment_ref; /* NULL: none */
    struct lot lot;
    int64_t entries_sum;
};

/* A row of credits.entries; NULL strings are SQL NULLs. `writer` is not a
 * column: the job whose transaction wrote it, for comparing runs. */
struct model_entry {
    int64_t entry_id;
    char *user;
    char *job_id;
    int64_t lot_id;
    enum entry_kind kind;
    int64_t delta;
    char *tool;
    char *ref;
    char *origin;
    char *writer;
};

/* A row of credits.holds. */
struct model_hold {
    char *id;
    char *user;
    int64_t amount;
    enum hold_status status;
    int64_t captured;
    int64_t expires_at_us;
    char *closed_by;
    char *tool;
    char *ref;
};

/* A row of credits.accounts with a plan (no row: no plan). */
struct model_account {
    char *user;
    char *plan; /* NULL: none */
};

struct model {
    struct model_job *jobs;
    size_t job_count, job_cap;
    struct model_lot *lots;
    size_t lot_count, lot_cap;
    struct model_entry *entries;
    size_t entry_count, entry_cap;
    struct model_hold *holds;
    size_t hold_count, hold_cap;
    struct model_account *accounts;
    size_t account_count, account_cap;
    int64_t next_lot_id;
    int64_t next_entry_id;
    const struct batch_pack *packs; /* the catalog, borrowed */
    size_t pack_count;
    const struct batch_plan *plans;
    size_t plan_count;
};

/* ---------------------------------------------------------------------------
 * Rows
 * ------------------------------------------------------------------------- */

/* Room for one more item in a growable array of `size`-byte items. */
static inline void *model_grow(void *items, size_t count, size_t *cap, size_t size)
{
    if (count < *cap)
        return items;
    size_t next = *cap == 0 ? 16 : 2 * *cap;
    void *grown = realloc(items, next * size);
    MODEL_CHECK(grown != NULL);
    *cap = next;
    return grown;
}

#define MODEL_APPEND(m, items, count, cap)                                                         \
    ((m)->items = model_grow((m)->items, (m)->count, &(m)->cap, sizeof *(m)->items),               \
     memset(&(m)->items[(m)->count], 0, sizeof *(m)->items), &(m)->items[(m)->count++])

static inline char *model_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    char *copy = strdup(s);
    MODEL_CHECK(copy != NULL);
    return copy;
}

/* Both NULL, or equal strings. */
static inline bool model_same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static inline bool model_in(const char *const *keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return true;
    return false;
}

static inline void model_init(struct model *m, const struct batch_pack *packs, size_t pack_count,
                              const struct batch_plan *plans, size_t plan_count)
{
    memset(m, 0, sizeof *m);
    m->next_lot_id = 1;
    m->next_entry_id = 1;
    m->packs = packs;
    m->pack_count = pack_count;
    m->plans = plans;
    m->plan_count = plan_count;
}

static inline void model_free(struct model *m)
{
    for (size_t i = 0; i < m->job_count; i++) {
        free(m->jobs[i].id);
        free(m->jobs[i].user);
        msgpack_sbuffer_destroy(&m->jobs[i].request);
        msgpack_sbuffer_destroy(&m->jobs[i].result);
    }
    for (size_t i = 0; i < m->lot_count; i++) {
        free(m->lots[i].user);
        free(m->lots[i].payment_ref);
    }
    for (size_t i = 0; i < m->entry_count; i++) {
        struct model_entry *e = &m->entries[i];
        char *strings[] = {e->user, e->job_id, e->tool, e->ref, e->origin, e->writer};
        for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++)
            free(strings[k]);
    }
    for (size_t i = 0; i < m->hold_count; i++) {
        struct model_hold *h = &m->holds[i];
        char *strings[] = {h->id, h->user, h->closed_by, h->tool, h->ref};
        for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++)
            free(strings[k]);
    }
    for (size_t i = 0; i < m->account_count; i++) {
        free(m->accounts[i].user);
        free(m->accounts[i].plan);
    }
    free(m->jobs);
    free(m->lots);
    free(m->entries);
    free(m->holds);
    free(m->accounts);
    const struct batch_pack *packs = m->packs;
    const struct batch_plan *plans = m->plans;
    size_t pack_count = m->pack_count, plan_count = m->plan_count;
    model_init(m, packs, pack_count, plans, plan_count);
}

static inline struct model_job *model_find_job(struct model *m, const char *id)
{
    for (size_t i = 0; i < m->job_count; i++)
        if (strcmp(m->jobs[i].id, id) == 0)
            return &m->jobs[i];
    return NULL;
}

static inline struct model_lot *model_find_lot(struct model *m, int64_t lot_id)
{
    for (size_t i = 0; i < m->lot_count; i++)
        if (m->lots[i].lot.lot_id == lot_id)
            return &m->lots[i];
    return NULL;
}

static inline struct model_hold *model_find_hold(struct model *m, const char *id)
{
    for (size_t i = 0; i < m->hold_count; i++)
        if (strcmp(m->holds[i].id, id) == 0)
            return &m->holds[i];
    return NULL;
}

static inline struct model_account *model_find_account(struct model *m, const char *user)
{
    for (size_t i = 0; i < m->account_count; i++)
        if (strcmp(m->accounts[i].user, user) == 0)
            return &m->accounts[i];
    return NULL;
}

/* The credits in `user`'s open holds: what balance.held counts. */
static inline int64_t model_held(const struct model *m, const char *user)
{
    int64_t held = 0;
    for (size_t i = 0; i < m->hold_count; i++)
        if (m->holds[i].status == HOLD_OPEN && strcmp(m->holds[i].user, user) == 0)
            held += m->holds[i].amount;
    return held;
}

/* ---------------------------------------------------------------------------
 * Loading a batch (round trip 1 of the store)
 * ------------------------------------------------------------------------- */

/* sql_lots: the users' lots with credits left, and their spent monthly lots
 * from the earliest period an allocate of the batch asks for. */
static inline void model_load_lots(struct model *m, struct batch *b, const char *const *users,
                                   size_t user_count)
{
    const char *from = batch_monthly_from_period(b);
    if (from == NULL)
        from = MODEL_NO_PERIOD;
    for (size_t i = 0; i < m->lot_count; i++) {
        const struct model_lot *ml = &m->lots[i];
        if (!model_in(users, user_count, ml->user))
            continue;
        bool spent_monthly = ml->lot.kind == LOT_MONTHLY && strcmp(ml->lot.period, from) >= 0;
        if (ml->lot.remaining > 0 || spent_monthly)
            MODEL_CHECK(batch_add_lot(b, ml->user, &ml->lot));
    }
}

/* sql_holds and sql_hold_takes: the users' open holds and the holds the
 * jobs name, of whichever user (another user's go nowhere); then what each
 * lot holds for the open ones, with the lot, in the order taken. */
static inline void model_load_holds(struct model *m, struct batch *b, const char *const *users,
                                    size_t user_count, const char **named)
{
    size_t named_count = batch_need_keys(b, NEED_HOLD, named);
    for (size_t i = 0; i < m->hold_count; i++) {
        const struct model_hold *mh = &m->holds[i];
        bool wanted = (mh->status == HOLD_OPEN && model_in(users, user_count, mh->user)) ||
                      model_in(named, named_count, mh->id);
        if (!wanted)
            continue;
        struct hold *hold = batch_add_hold(b, mh->user, mh->id);
        if (hold == NULL)
            continue; /* another user's hold, named by a job: it finds none */
        hold->amount = mh->amount;
        hold->status = mh->status;
        hold->captured = mh->captured;
        hold->expires_at_us = mh->expires_at_us;
    }
    for (size_t i = 0; i < m->entry_count; i++) {
        const struct model_entry *e = &m->entries[i];
        if (e->kind != ENTRY_HOLD)
            continue;
        const struct model_hold *mh = model_find_hold(m, e->job_id);
        MODEL_CHECK(mh != NULL);
        bool wanted = model_in(users, user_count, mh->user) || model_in(named, named_count, mh->id);
        if (mh->status != HOLD_OPEN || !wanted)
            continue;
        const struct model_lot *ml = model_find_lot(m, e->lot_id);
        MODEL_CHECK(ml != NULL);
        if (!batch_add_lot_once(b, ml->user, &ml->lot))
            continue; /* the rows.c rule: another user's hold is none of the batch's */
        struct hold *hold = ledger_account_hold(batch_account(b, ml->user), mh->id);
        MODEL_CHECK(hold != NULL && hold->status == HOLD_OPEN);
        ledger_takes_add(&hold->takes, e->lot_id, -e->delta);
    }
}

/* One row of sql_charges: a charge's refundable credits in one lot. */
struct model_share {
    int64_t lot_id;
    int64_t amount;
    int64_t taken; /* the entry that took it */
};

/* Adds `amount` to the share of `lot_id` in shares[0..*n) (a new share when
 * `taken` > 0, the lot's take). */
static inline void model_share_add(struct model_share *shares, size_t *n, size_t max,
                                   int64_t lot_id, int64_t amount, int64_t taken)
{
    for (size_t i = 0; i < *n; i++) {
        if (shares[i].lot_id == lot_id) {
            shares[i].amount += amount;
            return;
        }
    }
    MODEL_CHECK(taken > 0 && *n < max); /* a give-back goes to a lot it took from */
    shares[(*n)++] = (struct model_share){lot_id, amount, taken};
}

/* sql_charges: the applied consumes and captures refunds name, with what is
 * still refundable per lot (taken, less what a capture gave back, less
 * earlier refunds), in the order taken; a charge with nothing left is still
 * known. */
static inline void model_load_charges(struct model *m, struct batch *b, const char **keys)
{
    size_t n = batch_need_keys(b, NEED_CHARGE, keys);
    /* One share per lot at most. */
    size_t shares_max = m->lot_count + 1;
    struct model_share *shares = calloc(shares_max, sizeof *shares);
    MODEL_CHECK(shares != NULL);
    for (size_t k = 0; k < n; k++) {
        const struct model_job *mj = model_find_job(m, keys[k]);
        if (mj == NULL || !mj->applied || (mj->type != JOB_CONSUME && mj->type != JOB_CAPTURE))
            continue;
        const char *taker = mj->id;
        if (mj->type == JOB_CAPTURE) {
            taker = NULL;
            for (size_t h = 0; h < m->hold_count && taker == NULL; h++)
                if (model_same_str(m->holds[h].closed_by, mj->id))
                    taker = m->holds[h].id;
            MODEL_CHECK(taker != NULL);
        }
        size_t count = 0;
        for (size_t i = 0; i < m->entry_count; i++) {
            const struct model_entry *e = &m->entries[i];
            if ((e->kind == ENTRY_CONSUME || e->kind == ENTRY_HOLD) &&
                strcmp(e->job_id, taker) == 0)
                model_share_add(shares, &count, shares_max, e->lot_id, -e->delta, e->entry_id);
        }
        for (size_t i = 0; i < m->entry_count; i++) {
            const struct model_entry *e = &m->entries[i];
            bool released = e->kind == ENTRY_RELEASE && strcmp(taker, mj->id) != 0 &&
                            model_same_str(e->origin, taker);
            bool refunded = e->kind == ENTRY_REFUND && model_same_str(e->origin, mj->id);
            if (released || refunded)
                model_share_add(shares, &count, shares_max, e->lot_id, -e->delta, 0);
        }
        for (size_t i = 0; i < count; i++) {
            const struct model_lot *ml = model_find_lot(m, shares[i].lot_id);
            MODEL_CHECK(ml != NULL && shares[i].amount >= 0);
            if (!batch_add_lot_once(b, ml->user, &ml->lot))
                continue; /* another user's charge, named by a refund: it finds none */
            struct charge *charge = batch_add_charge(b, ml->user, mj->id);
            MODEL_CHECK(charge != NULL);
            if (shares[i].amount > 0)
                ledger_takes_add(&charge->takes, shares[i].lot_id, shares[i].amount);
        }
    }
    free(shares);
}

/* sql_payment_lots, sql_packs, sql_plans: by the keys the jobs name. */
static inline void model_load_named(struct model *m, struct batch *b, const char **keys)
{
    size_t n = batch_need_keys(b, NEED_PAYMENT_REF, keys);
    for (size_t i = 0; i < m->lot_count; i++) {
        const struct model_lot *ml = &m->lots[i];
        if (ml->payment_ref == NULL || !model_in(keys, n, ml->payment_ref))
            continue;
        MODEL_CHECK(ml->lot.kind == LOT_PACK);
        batch_add_payment(b, ml->payment_ref, ml->user, ml->lot.lot_id);
        if (!batch_add_lot_once(b, ml->user, &ml->lot))
            continue; /* another user's pack: only "used" matters to this batch */
    }
    n = batch_need_keys(b, NEED_PACK, keys);
    for (size_t i = 0; i < m->pack_count; i++)
        if (model_in(keys, n, m->packs[i].id))
            batch_add_pack(b, m->packs[i].id, &m->packs[i].info);
    n = batch_need_keys(b, NEED_PLAN, keys);
    for (size_t i = 0; i < m->plan_count; i++)
        if (model_in(keys, n, m->plans[i].id))
            batch_add_plan(b, m->plans[i].id, &m->plans[i].info);
}

/* Everything the store loads for `b`, in the order it loads it, at the
 * database time `now_us`. */
static inline void model_load(struct model *m, struct batch *b, int64_t now_us)
{
    b->now_us = now_us;
    size_t room = b->job_count > 0 ? b->job_count : 1;
    const char **users = calloc(room, sizeof *users);
    const char **keys = calloc(room, sizeof *keys);
    MODEL_CHECK(users != NULL && keys != NULL);
    size_t user_count = batch_users(b, users);
    for (size_t i = 0; i < m->account_count; i++) {
        const struct model_account *ma = &m->accounts[i];
        if (ma->plan != NULL && model_in(users, user_count, ma->user))
            MODEL_CHECK(batch_set_account_plan(b, ma->user, ma->plan));
    }
    for (size_t i = 0; i < m->job_count; i++) {
        const struct model_job *mj = &m->jobs[i];
        bool wanted = false;
        for (size_t k = 0; k < b->job_count && !wanted; k++)
            wanted = strcmp(b->jobs[k].job.id, mj->id) == 0;
        if (wanted)
            MODEL_CHECK(batch_set_stored(b, mj->id, mj->request.data, mj->request.size,
                                         mj->result.data, mj->result.size));
    }
    model_load_lots(m, b, users, user_count);
    model_load_holds(m, b, users, user_count, keys);
    model_load_named(m, b, keys);
    model_load_charges(m, b, keys);
    for (size_t i = 0; i < batch_new_lot_count(b); i++)
        batch_add_lot_id(b, m->next_lot_id++);
    free(users);
    free(keys);
}

/* ---------------------------------------------------------------------------
 * Checks of the model's rows (contract 5 and 9.4)
 * ------------------------------------------------------------------------- */

/* Sum of the deltas of entries of `kind` whose `job_id` (origin when
 * by_origin) is `id`. */
static inline int64_t model_entries_sum(const struct model *m, enum entry_kind kind, const char *id,
                                        bool by_origin)
{
    int64_t sum = 0;
    for (size_t i = 0; i < m->entry_count; i++) {
        const struct model_entry *e = &m->entries[i];
        const char *key = by_origin ? e->origin : e->job_id;
        if (e->kind == kind && key != NULL && strcmp(key, id) == 0)
            sum += e->delta;
    }
    return sum;
}

/* Every lot within 0..granted and equal to its entries, a revoked lot a
 * pack holding nothing; every hold's entries took its amount, a closed
 * hold's amount is what it charged plus what it gave back and an open one
 * gave nothing back; no charge refunded above what it spent; each entry of
 * its kind's sign, with an origin exactly where the schema wants one. */
static inline void model_check(const struct model *m)
{
    for (size_t i = 0; i < m->lot_count; i++) {
        const struct model_lot *ml = &m->lots[i];
        MODEL_CHECK(0 <= ml->lot.remaining && ml->lot.remaining <= ml->lot.granted);
        MODEL_CHECK(ml->lot.remaining == ml->entries_sum);
        MODEL_CHECK(!ml->lot.revoked || (ml->lot.kind == LOT_PACK && ml->lot.remaining == 0));
    }
    for (size_t i = 0; i < m->hold_count; i++) {
        const struct model_hold *h = &m->holds[i];
        MODEL_CHECK(-model_entries_sum(m, ENTRY_HOLD, h->id, false) == h->amount);
        int64_t released = model_entries_sum(m, ENTRY_RELEASE, h->id, true);
        int64_t charged = h->status == HOLD_CAPTURED ? h->captured : 0;
        MODEL_CHECK(h->status == HOLD_OPEN ? released == 0 : charged + released == h->amount);
        MODEL_CHECK(0 <= h->captured && h->captured <= h->amount);
        bool by_job = h->status == HOLD_CAPTURED || h->status == HOLD_RELEASED;
        MODEL_CHECK(by_job == (h->closed_by != NULL));
        if (by_job) {
            /* closed_by is the applied capture or release of its user that
             * closed it. */
            const struct model_job *closer = NULL;
            for (size_t k = 0; k < m->job_count && closer == NULL; k++)
                if (strcmp(m->jobs[k].id, h->closed_by) == 0)
                    closer = &m->jobs[k];
            MODEL_CHECK(closer != NULL && closer->applied && strcmp(closer->user, h->user) == 0);
            MODEL_CHECK(closer->type == (h->status == HOLD_CAPTURED ? JOB_CAPTURE : JOB_RELEASE));
        }
    }
    for (size_t i = 0; i < m->job_count; i++) {
        const struct model_job *j = &m->jobs[i];
        if (!j->applied || (j->type != JOB_CONSUME && j->type != JOB_CAPTURE))
            continue;
        int64_t spent = -model_entries_sum(m, ENTRY_CONSUME, j->id, false);
        for (size_t h = 0; j->type == JOB_CAPTURE && h < m->hold_count; h++)
            if (model_same_str(m->holds[h].closed_by, j->id))
                spent = m->holds[h].captured;
        MODEL_CHECK(model_entries_sum(m, ENTRY_REFUND, j->id, true) <= spent);
    }
    for (size_t i = 0; i < m->entry_count; i++) {
        const struct model_entry *e = &m->entries[i];
        bool positive = e->kind == ENTRY_PURCHASE || e->kind == ENTRY_ALLOCATE ||
                        e->kind == ENTRY_RELEASE || e->kind == ENTRY_REFUND ||
                        e->kind == ENTRY_GRANT;
        MODEL_CHECK(positive ? e->delta > 0 : e->delta < 0);
        bool gives_back = e->kind == ENTRY_RELEASE || e->kind == ENTRY_REFUND;
        bool may_follow = e->kind == ENTRY_EXPIRE || e->kind == ENTRY_REVOKE;
        MODEL_CHECK(gives_back ? e->origin != NULL : may_follow || e->origin == NULL);
    }
}

/* The usable credits of `user` in the model at `now_us`, by kind, and
 * held: what a result of the user's last job in a batch reports. */
static inline struct balance model_balance(const struct model *m, const char *user, int64_t now_us)
{
    struct balance b = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < m->lot_count; i++) {
        const struct model_lot *ml = &m->lots[i];
        const struct lot *lot = &ml->lot;
        bool usable = !lot->revoked &&
                      (lot->expires_at_us == LEDGER_NO_EXPIRY || lot->expires_at_us > now_us);
        if (!usable || strcmp(ml->user, user) != 0)
            continue;
        int64_t *kind = lot->kind == LOT_PACK      ? &b.pack
                        : lot->kind == LOT_MONTHLY ? &b.monthly
                                                   : &b.grant;
        *kind += lot->remaining;
    }
    b.total = b.pack + b.monthly + b.grant;
    b.held = model_held(m, user);
    return b;
}

/* After a batch: the last job each user had decided in it reports the
 * balance the model now holds for the user (its transaction released the
 * user's overdue holds and wrote the expiries). */
static inline void model_check_last_balances(const struct model *m, const struct batch *b)
{
    for (size_t a = 0; a < b->account_count; a++) {
        const char *user = b->accounts[a].user;
        const struct batch_job *last = NULL;
        for (size_t i = 0; i < b->job_count; i++)
            if (b->jobs[i].outcome == BATCH_DECIDED && strcmp(b->jobs[i].job.user, user) == 0)
                last = &b->jobs[i];
        if (last == NULL)
            continue;
        struct balance want = model_balance(m, user, b->now_us);
        const struct balance *got = &last->result.balance;
        MODEL_CHECK(got->total == want.total && got->pack == want.pack);
        MODEL_CHECK(got->monthly == want.monthly && got->grant == want.grant);
        MODEL_CHECK(got->held == want.held);
    }
}

/* ---------------------------------------------------------------------------
 * Writing a decided batch back (round trip 2 of the store)
 * ------------------------------------------------------------------------- */

static inline void model_write_jobs(struct model *m, const struct batch *b)
{
    for (size_t i = 0; i < b->job_count; i++) {
        const struct batch_job *bj = &b->jobs[i];
        if (bj->outcome != BATCH_DECIDED)
            continue;
        MODEL_CHECK(model_find_job(m, bj->job.id) == NULL); /* decided once */
        struct model_job *mj = MODEL_APPEND(m, jobs, job_count, job_cap);
        mj->id = model_strdup(bj->job.id);
        mj->user = model_strdup(bj->job.user);
        mj->type = bj->job.type;
        mj->applied = bj->result.error == JOB_OK;
        msgpack_sbuffer_init(&mj->request);
        msgpack_sbuffer_init(&mj->result);
        MODEL_CHECK(msgpack_sbuffer_write(&mj->request, bj->request.data, bj->request.size) == 0);
        MODEL_CHECK(msgpack_sbuffer_write(&mj->result, bj->encoded.data, bj->encoded.size) == 0);
    }
}

/* Lots inserted, updated and revoked; the account's plan. */
static inline void model_write_account_lots(struct model *m, const struct batch *b,
                                            const struct account *account)
{
    for (size_t l = 0; l < account->lot_count; l++) {
        const struct lot *lot = &account->lots[l];
        struct model_lot *ml;
        if (lot->is_new) {
            MODEL_CHECK(lot->job_index < b->job_count);
            const struct batch_job *maker = &b->jobs[lot->job_index];
            MODEL_CHECK(maker->outcome == BATCH_DECIDED && maker->result.error == JOB_OK);
            MODEL_CHECK(strcmp(maker->job.user, account->user) == 0);
            MODEL_CHECK(model_find_lot(m, lot->lot_id) == NULL);
            ml = MODEL_APPEND(m, lots, lot_count, lot_cap);
            ml->user = model_strdup(account->user);
            ml->payment_ref = model_strdup(lot->payment_ref);
            ml->lot = *lot;
            ml->lot.is_new = ml->lot.changed = ml->lot.revoked_now = false;
            ml->lot.pack_id = ml->lot.payment_ref = ml->lot.plan_id = NULL;
            ml->lot.revoked = false; /* revoked_at is set after the insert */
        } else {
            ml = model_find_lot(m, lot->lot_id);
            MODEL_CHECK(ml != NULL && strcmp(ml->user, account->user) == 0);
            if (lot->changed)
                ml->lot.remaining = lot->remaining;
            else
                MODEL_CHECK(ml->lot.remaining == lot->remaining);
        }
        if (lot->revoked_now) {
            MODEL_CHECK(lot->revoked && !ml->lot.revoked);
            ml->lot.revoked = true;
        }
        MODEL_CHECK(ml->lot.revoked == lot->revoked);
    }
    if (account->plan_changed) {
        struct model_account *ma = model_find_account(m, account->user);
        if (ma == NULL) {
            ma = MODEL_APPEND(m, accounts, account_count, account_cap);
            ma->user = model_strdup(account->user);
        }
        free(ma->plan);
        ma->plan = account->has_plan ? model_strdup(account->plan) : NULL;
    }
}

/* Holds inserted as they are at the batch's end, and holds closed. */
static inline void model_write_account_holds(struct model *m, const struct batch *b,
                                             const struct account *account)
{
    for (size_t h = 0; h < account->hold_count; h++) {
        const struct hold *hold = account->holds[h];
        struct model_hold *mh;
        if (hold->is_new) {
            const struct job *job = &b->jobs[hold->job_index].job;
            MODEL_CHECK(job->type == JOB_HOLD && strcmp(job->id, hold->id) == 0);
            MODEL_CHECK(model_find_hold(m, hold->id) == NULL);
            mh = MODEL_APPEND(m, holds, hold_count, hold_cap);
            mh->id = model_strdup(hold->id);
            mh->user = model_strdup(account->user);
            mh->amount = hold->amount;
            mh->expires_at_us = hold->expires_at_us;
            MODEL_CHECK(hold->expires_at_us > hold->created_at_us);
            mh->tool = model_strdup(job->hold.has_tool ? job->hold.tool : NULL);
            mh->ref = model_strdup(job->hold.has_ref ? job->hold.ref : NULL);
        } else if (hold->changed) {
            mh = model_find_hold(m, hold->id);
            MODEL_CHECK(mh != NULL && mh->status == HOLD_OPEN && hold->status != HOLD_OPEN);
        } else {
            continue;
        }
        mh->status = hold->status;
        mh->captured = hold->status == HOLD_CAPTURED ? hold->captured : 0;
        free(mh->closed_by);
        mh->closed_by = model_strdup(hold->closed_by);
    }
}

static inline void model_write_entries(struct model *m, const struct batch *b)
{
    for (size_t i = 0; i < b->entries.count; i++) {
        const struct entry *e = &b->entries.items[i];
        MODEL_CHECK(e->job_index < b->job_count);
        const struct batch_job *bj = &b->jobs[e->job_index];
        MODEL_CHECK(bj->outcome == BATCH_DECIDED); /* no entry for replays, conflicts */
        struct model_lot *ml = model_find_lot(m, e->lot_id);
        MODEL_CHECK(ml != NULL && strcmp(ml->user, bj->job.user) == 0);
        ml->entries_sum += e->delta;
        struct model_entry *me = MODEL_APPEND(m, entries, entry_count, entry_cap);
        me->entry_id = m->next_entry_id++;
        me->user = model_strdup(bj->job.user);
        me->job_id = model_strdup(e->job_id != NULL ? e->job_id : bj->job.id);
        me->lot_id = e->lot_id;
        me->kind = e->kind;
        me->delta = e->delta;
        me->tool = model_strdup(e->tool);
        me->ref = model_strdup(e->ref);
        me->origin = model_strdup(e->origin);
        me->writer = model_strdup(bj->job.id);
    }
}

/* What the store writes after batch_decide(), in its order; then the lots'
 * checks (model_check() does them all, at a cost of rows squared: the
 * caller says when). */
static inline void model_write(struct model *m, const struct batch *b)
{
    model_write_jobs(m, b);
    for (size_t a = 0; a < b->account_count; a++)
        model_write_account_lots(m, b, &b->accounts[a]);
    model_write_entries(m, b);
    for (size_t a = 0; a < b->account_count; a++)
        model_write_account_holds(m, b, &b->accounts[a]);
    for (size_t i = 0; i < m->lot_count; i++) {
        const struct model_lot *ml = &m->lots[i];
        MODEL_CHECK(0 <= ml->lot.remaining && ml->lot.remaining <= ml->lot.granted);
        MODEL_CHECK(ml->lot.remaining == ml->entries_sum);
    }
}

/* ---------------------------------------------------------------------------
 * Comparing two runs of the same jobs
 * ------------------------------------------------------------------------- */

/* The index of the lot `lot_id` among the lots of its user, in creation
 * order: lot IDs differ between runs (each batch reserves its own), these
 * indexes do not. */
static inline size_t model_user_lot_index(const struct model *m, int64_t lot_id)
{
    const struct model_lot *target = NULL;
    for (size_t i = 0; i < m->lot_count && target == NULL; i++)
        if (m->lots[i].lot.lot_id == lot_id)
            target = &m->lots[i];
    MODEL_CHECK(target != NULL);
    size_t index = 0;
    for (const struct model_lot *ml = m->lots; ml != target; ml++)
        index += strcmp(ml->user, target->user) == 0;
    return index;
}

static inline void model_check_same_lot(const struct model_lot *x, const struct model_lot *y)
{
    MODEL_CHECK(strcmp(x->user, y->user) == 0);
    MODEL_CHECK(x->lot.kind == y->lot.kind && x->lot.granted == y->lot.granted);
    MODEL_CHECK(x->lot.remaining == y->lot.remaining && x->lot.revoked == y->lot.revoked);
    MODEL_CHECK(x->lot.granted_at_us == y->lot.granted_at_us);
    MODEL_CHECK(x->lot.expires_at_us == y->lot.expires_at_us);
    MODEL_CHECK(strcmp(x->lot.period, y->lot.period) == 0);
    MODEL_CHECK(model_same_str(x->payment_ref, y->payment_ref));
}

static inline void model_check_same_entry(const struct model *a, const struct model_entry *x,
                                          const struct model *b, const struct model_entry *y)
{
    MODEL_CHECK(strcmp(x->user, y->user) == 0);
    MODEL_CHECK(x->kind == y->kind && x->delta == y->delta);
    MODEL_CHECK(model_user_lot_index(a, x->lot_id) == model_user_lot_index(b, y->lot_id));
    MODEL_CHECK(strcmp(x->job_id, y->job_id) == 0 && strcmp(x->writer, y->writer) == 0);
    MODEL_CHECK(model_same_str(x->tool, y->tool) && model_same_str(x->ref, y->ref));
    MODEL_CHECK(model_same_str(x->origin, y->origin));
}

static inline void model_check_same_hold(const struct model_hold *x, const struct model_hold *y)
{
    MODEL_CHECK(strcmp(x->id, y->id) == 0 && strcmp(x->user, y->user) == 0);
    MODEL_CHECK(x->amount == y->amount);
    MODEL_CHECK(x->status == y->status && x->captured == y->captured);
    MODEL_CHECK(x->expires_at_us == y->expires_at_us);
    MODEL_CHECK(model_same_str(x->closed_by, y->closed_by));
    MODEL_CHECK(model_same_str(x->tool, y->tool) && model_same_str(x->ref, y->ref));
}

/* Per-user cursors over a second run's rows: row i of the first run's is
 * matched with the next row of the same user in the second's. */
#define MODEL_USERS_MAX 64
struct model_cursors {
    const char *users[MODEL_USERS_MAX];
    size_t next[MODEL_USERS_MAX];
    size_t count;
};

/* The cursor of `user` (a new one at 0 the first time). */
static inline size_t *model_cursor(struct model_cursors *c, const char *user)
{
    for (size_t u = 0; u < c->count; u++)
        if (strcmp(c->users[u], user) == 0)
            return &c->next[u];
    MODEL_CHECK(c->count < MODEL_USERS_MAX);
    c->users[c->count] = user;
    c->next[c->count] = 0;
    return &c->next[c->count++];
}

/* The two runs hold the same ledger: the same job rows (bytes and all) in
 * the same order; the same plans; and for each user the same lots, entries
 * and holds in the same order (rows of different users may interleave
 * differently: a batch writes account by account). Lots are matched by
 * their index among their user's (model_user_lot_index()). */
static inline void model_check_same(const struct model *a, const struct model *b)
{
    MODEL_CHECK(a->job_count == b->job_count);
    for (size_t i = 0; i < a->job_count; i++) {
        const struct model_job *x = &a->jobs[i], *y = &b->jobs[i];
        MODEL_CHECK(strcmp(x->id, y->id) == 0 && strcmp(x->user, y->user) == 0);
        MODEL_CHECK(x->type == y->type && x->applied == y->applied);
        MODEL_CHECK(x->request.size == y->request.size &&
                    memcmp(x->request.data, y->request.data, x->request.size) == 0);
        MODEL_CHECK(x->result.size == y->result.size &&
                    memcmp(x->result.data, y->result.data, x->result.size) == 0);
    }
    MODEL_CHECK(a->lot_count == b->lot_count && a->entry_count == b->entry_count);
    MODEL_CHECK(a->hold_count == b->hold_count);
    struct model_cursors lots = {.count = 0}, entries = {.count = 0}, holds = {.count = 0};
    for (size_t i = 0; i < a->lot_count; i++) {
        size_t *k = model_cursor(&lots, a->lots[i].user);
        while (*k < b->lot_count && strcmp(b->lots[*k].user, a->lots[i].user) != 0)
            (*k)++;
        MODEL_CHECK(*k < b->lot_count);
        model_check_same_lot(&a->lots[i], &b->lots[(*k)++]);
    }
    for (size_t i = 0; i < a->entry_count; i++) {
        size_t *k = model_cursor(&entries, a->entries[i].user);
        while (*k < b->entry_count && strcmp(b->entries[*k].user, a->entries[i].user) != 0)
            (*k)++;
        MODEL_CHECK(*k < b->entry_count);
        model_check_same_entry(a, &a->entries[i], b, &b->entries[(*k)++]);
    }
    for (size_t i = 0; i < a->hold_count; i++) {
        size_t *k = model_cursor(&holds, a->holds[i].user);
        while (*k < b->hold_count && strcmp(b->holds[*k].user, a->holds[i].user) != 0)
            (*k)++;
        MODEL_CHECK(*k < b->hold_count);
        model_check_same_hold(&a->holds[i], &b->holds[(*k)++]);
    }
    MODEL_CHECK(a->account_count == b->account_count);
    for (size_t i = 0; i < a->account_count; i++) {
        const struct model_account *x = &a->accounts[i];
        const struct model_account *y = NULL;
        for (size_t k = 0; k < b->account_count && y == NULL; k++)
            if (strcmp(b->accounts[k].user, x->user) == 0)
                y = &b->accounts[k];
        MODEL_CHECK(y != NULL && model_same_str(x->plan, y->plan));
    }
}

#endif
