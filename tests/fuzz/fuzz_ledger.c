/*
 * fuzz_ledger.c -- libFuzzer target for the ledger rules (core/ledger.c,
 * core/types/).
 *
 * The input is a small catalog followed by a program of operations on a few
 * accounts: the ten job types (consume, purchase, allocate, hold, capture,
 * release, refund, revoke, grant, cancel; those that name a hold, a charge
 * or a pack name one of their user's, another user's or none), time moves
 * (some landing exactly on a lot's or a hold's expiry), lots loaded as if
 * from the store, and store round-trips (flags cleared, spent lots dropped
 * unless a hold or a charge has a share in them, lots reordered). Each job
 * goes through ledger_apply() and through a reference model written here
 * from contract sections 5 and 9.4 (plain selection instead of sorting, one
 * pass per rule). After every step the two must agree on the error, the
 * entries (in order, with their job, origin, tool and ref), every lot, hold
 * and charge, and the result; and the invariants are checked on the ledger's
 * own state whatever the model says: 0 <= remaining <= granted, each lot
 * equals its entries, a revoked lot holds nothing, the balance is the usable
 * lots by kind with `held` the open holds, every hold's entries took its
 * amount and a closed hold's amount is what it charged plus what it gave
 * back, no charge refunded above what it spent.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ledger.h"
#include "fuzz_util.h"

#define USERS 3
#define LOTS_MAX 96 /* per account: keeps the O(n^2) reference cheap */
#define HOLDS_MAX 48
#define CHARGES_MAX 96
#define OPS_MAX 400
#define PACKS 3 /* catalog entries; index PACKS means "not in the catalog" */
#define PLANS 3
#define CREDITS_MAX INT64_C(1000000000000) /* the catalog's bound per lot */
#define NOW_START INT64_C(1790000000000000)
#define US_PER_S INT64_C(1000000)
#define US_PER_HOUR (3600 * US_PER_S)
#define HOLD_TTL_DEFAULT_S 3600
#define HOLD_TTL_MAX_S 604800
#define GRANT_VALID_DAYS_MAX 36500

/* ------------------------------------------------------------------------ */
/* The reference model                                                      */
/* ------------------------------------------------------------------------ */

/* One lot as the contract sees it, plus what the checks need. Kept in the
 * same order as account->lots. */
struct mlot {
    int64_t lot_id;
    enum lot_kind kind;
    int64_t granted;
    int64_t remaining;
    int64_t granted_at_us;
    int64_t expires_at_us;
    char period[JOB_PERIOD_BYTES + 1];
    bool revoked;
    int64_t start;       /* remaining when it appeared (loaded or created: 0) */
    int64_t entries_sum; /* deltas of the entries ledger_apply wrote for it */
    bool is_new;
    bool changed;
    bool revoked_now;
    size_t job_index;
};

/* A hold: its credits, lot by lot in the order taken (open holds only). */
struct mhold {
    char id[JOB_ID_BYTES_MAX + 1];
    int64_t amount;
    enum hold_status status;
    int64_t captured;
    int64_t expires_at_us;
    const char *closed_by; /* the closing job's ID (s->jobs), NULL: none */
    bool is_new;
    bool changed;
    size_t job_index;
    struct take_list takes;
};

/* An applied consume or capture: what is still refundable, lot by lot. */
struct mcharge {
    char id[JOB_ID_BYTES_MAX + 1];
    struct take_list takes;
};

struct maccount {
    struct mlot lots[LOTS_MAX];
    size_t count;
    struct mhold holds[HOLDS_MAX];
    size_t hold_count;
    struct mcharge charges[CHARGES_MAX];
    size_t charge_count;
    bool has_plan;
    char plan[JOB_PLAN_BYTES_MAX + 1];
};

struct expected {
    enum job_error error;
    struct entry *entries; /* growable; the strings are borrowed */
    size_t entry_count;
    size_t entry_cap;
    uint32_t present; /* RESULT_AMOUNT_BIT()s */
    int64_t amounts[RESULT_AMOUNT_COUNT];
};

/* What the entries of each job so far did to it, by job index (every ID
 * here is "job-<index>"): a hold's takes and give-backs, a charge's spending
 * and refunds. */
struct track {
    int64_t took;     /* hold entries under its ID */
    int64_t released; /* release entries with it as origin */
    int64_t spent;    /* a consume's entries, a capture's charged amount */
    int64_t refunded; /* refund entries with it as origin */
};

struct fuzz_state {
    struct account accounts[USERS];
    struct maccount model[USERS];
    struct pack_info packs[PACKS];
    struct plan_info plans[PLANS];
    int64_t now_us;
    int64_t next_lot_id;
    size_t job_index;
    struct entry_list entries;
    struct job jobs[OPS_MAX]; /* every job of the run: entries and holds borrow from them */
    struct track track[OPS_MAX];
    struct expected x;
};

static bool m_expired(const struct mlot *l, int64_t now_us)
{
    return l->expires_at_us != LEDGER_NO_EXPIRY && l->expires_at_us <= now_us;
}

static bool m_usable(const struct mlot *l, int64_t now_us)
{
    return !l->revoked && !m_expired(l, now_us);
}

static void m_balance(const struct maccount *m, int64_t now_us, struct balance *b)
{
    memset(b, 0, sizeof *b);
    for (size_t i = 0; i < m->count; i++) {
        const struct mlot *l = &m->lots[i];
        if (!m_usable(l, now_us))
            continue;
        if (l->kind == LOT_PACK)
            b->pack += l->remaining;
        else if (l->kind == LOT_MONTHLY)
            b->monthly += l->remaining;
        else
            b->grant += l->remaining;
    }
    b->total = b->pack + b->monthly + b->grant;
    for (size_t i = 0; i < m->hold_count; i++)
        if (m->holds[i].status == HOLD_OPEN)
            b->held += m->holds[i].amount;
}

/* a before b in spending order (contract 9.4): the lots that expire by
 * expires_at, then those that never do by granted_at; lot_id breaks ties. */
static bool m_before(const struct mlot *a, const struct mlot *b)
{
    bool a_never = a->expires_at_us == LEDGER_NO_EXPIRY;
    bool b_never = b->expires_at_us == LEDGER_NO_EXPIRY;
    if (a_never != b_never)
        return b_never;
    int64_t ka = a_never ? a->granted_at_us : a->expires_at_us;
    int64_t kb = b_never ? b->granted_at_us : b->expires_at_us;
    if (ka != kb)
        return ka < kb;
    return a->lot_id < b->lot_id;
}

static void m_set(struct expected *x, enum result_amount amount, int64_t value)
{
    x->present |= RESULT_AMOUNT_BIT(amount);
    x->amounts[amount] = value;
}

static void m_reject(struct expected *x, enum job_error error)
{
    x->error = error;
}

/* The entry written under `job_id` (NULL: the job's own), with `origin`,
 * tool and ref as given. */
static void m_entry(struct expected *x, struct mlot *l, enum entry_kind kind, int64_t delta,
                    size_t job_index, const char *job_id, const char *origin, const char *tool,
                    const char *ref)
{
    if (x->entry_count == x->entry_cap) {
        x->entry_cap = x->entry_cap == 0 ? 64 : 2 * x->entry_cap;
        x->entries = realloc(x->entries, x->entry_cap * sizeof *x->entries);
        CHECK(x->entries != NULL);
    }
    x->entries[x->entry_count++] = (struct entry){.lot_id = l->lot_id,
                                                  .kind = kind,
                                                  .delta = delta,
                                                  .job_index = job_index,
                                                  .job_id = job_id,
                                                  .tool = tool,
                                                  .ref = ref,
                                                  .origin = origin};
    l->remaining += delta;
    l->changed = true;
}

static struct mlot *m_find(struct maccount *m, int64_t lot_id)
{
    for (size_t i = 0; i < m->count; i++)
        if (m->lots[i].lot_id == lot_id)
            return &m->lots[i];
    return NULL;
}

/* Takes `amount` from the usable lots (monthly ones only when asked), the
 * next lot always chosen by a fresh scan for the first in spending order;
 * each take goes to `takes` when given. */
static void m_take(struct maccount *m, int64_t now_us, bool monthly_only, int64_t amount,
                   enum entry_kind kind, size_t job_index, const char *tool, const char *ref,
                   struct expected *x, struct take_list *takes)
{
    while (amount > 0) {
        struct mlot *next = NULL;
        for (size_t i = 0; i < m->count; i++) {
            struct mlot *l = &m->lots[i];
            if (!m_usable(l, now_us) || l->remaining == 0)
                continue;
            if (monthly_only && l->kind != LOT_MONTHLY)
                continue;
            if (next == NULL || m_before(l, next))
                next = l;
        }
        CHECK(next != NULL);
        int64_t take = next->remaining < amount ? next->remaining : amount;
        m_entry(x, next, kind, -take, job_index, NULL, NULL, tool, ref);
        if (takes != NULL)
            ledger_takes_add(takes, next->lot_id, take);
        amount -= take;
    }
}

/* Gives `amount` back to the lots of `takes`, the lot taken last first; a
 * share that returns to a lot no longer usable leaves it again at once. */
static void m_give_back(struct maccount *m, int64_t now_us, struct take_list *takes, int64_t amount,
                        enum entry_kind kind, size_t job_index, const char *job_id,
                        const char *origin, struct expected *x)
{
    for (size_t k = takes->count; k-- > 0 && amount > 0;) {
        struct take *t = &takes->items[k];
        int64_t give = t->amount < amount ? t->amount : amount;
        if (give == 0)
            continue;
        struct mlot *l = m_find(m, t->lot_id);
        CHECK(l != NULL);
        m_entry(x, l, kind, give, job_index, job_id, origin, NULL, NULL);
        if (!m_usable(l, now_us))
            m_entry(x, l, l->revoked ? ENTRY_REVOKE : ENTRY_EXPIRE, -give, job_index, job_id,
                    origin, NULL, NULL);
        t->amount -= give;
        amount -= give;
    }
    CHECK(amount == 0);
}

static int64_t m_takes_total(const struct take_list *takes)
{
    int64_t sum = 0;
    for (size_t i = 0; i < takes->count; i++)
        sum += takes->items[i].amount;
    return sum;
}

static struct mlot *m_add(struct maccount *m, const struct lot *lot)
{
    CHECK(m->count < LOTS_MAX);
    struct mlot *l = &m->lots[m->count++];
    memset(l, 0, sizeof *l);
    l->lot_id = lot->lot_id;
    l->kind = lot->kind;
    l->granted = lot->granted;
    l->remaining = lot->remaining;
    l->granted_at_us = lot->granted_at_us;
    l->expires_at_us = lot->expires_at_us;
    memcpy(l->period, lot->period, sizeof l->period);
    l->revoked = lot->revoked;
    l->start = lot->is_new ? 0 : lot->remaining;
    l->is_new = lot->is_new;
    l->job_index = lot->job_index;
    return l;
}

static struct mhold *m_hold(struct maccount *m, const char *id)
{
    for (size_t i = 0; i < m->hold_count; i++)
        if (strcmp(m->holds[i].id, id) == 0)
            return &m->holds[i];
    return NULL;
}

static struct mcharge *m_charge(struct maccount *m, const char *id)
{
    for (size_t i = 0; i < m->charge_count; i++)
        if (strcmp(m->charges[i].id, id) == 0)
            return &m->charges[i];
    return NULL;
}

static struct mcharge *m_new_charge(struct maccount *m, const char *id)
{
    CHECK(m->charge_count < CHARGES_MAX);
    struct mcharge *c = &m->charges[m->charge_count++];
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    return c;
}

/* The open hold a capture or release names, or NULL with the rejection. */
static struct mhold *m_open_hold(struct maccount *m, const char *id, struct expected *x)
{
    struct mhold *h = m_hold(m, id);
    if (h == NULL)
        m_reject(x, JOB_ERR_UNKNOWN_HOLD);
    else if (h->status == HOLD_CAPTURED || h->status == HOLD_RELEASED)
        m_reject(x, JOB_ERR_HOLD_CLOSED);
    else if (h->status == HOLD_EXPIRED)
        m_reject(x, JOB_ERR_HOLD_EXPIRED); /* released when the job began, if not before */
    return x->error == JOB_OK ? h : NULL;
}

static void m_new_lot(struct maccount *m, const struct ledger_input *in, enum lot_kind kind,
                      int64_t granted, int64_t expires_at_us, const char *period,
                      enum entry_kind entry, const char *ref, struct expected *x)
{
    struct lot lot = {.lot_id = in->new_lot_id,
                      .kind = kind,
                      .granted = granted,
                      .remaining = 0,
                      .granted_at_us = in->now_us,
                      .expires_at_us = expires_at_us,
                      .is_new = true,
                      .job_index = in->job_index};
    snprintf(lot.period, sizeof lot.period, "%s", period);
    struct mlot *l = m_add(m, &lot);
    m_entry(x, l, entry, granted, in->job_index, NULL, NULL, NULL, ref);
}

static void m_allocate(struct maccount *m, const struct job *job, const struct ledger_input *in,
                       const struct balance *b, struct expected *x)
{
    if (in->plan == NULL) {
        m_reject(x, JOB_ERR_UNKNOWN_PLAN);
        return;
    }
    bool same = false, later = false;
    for (size_t i = 0; i < m->count; i++) {
        if (m->lots[i].kind != LOT_MONTHLY)
            continue;
        int cmp = strcmp(m->lots[i].period, job->allocate.period);
        same = same || cmp == 0;
        later = later || cmp > 0;
    }
    if (same || later) {
        m_reject(x, same ? JOB_ERR_ALREADY_ALLOCATED : JOB_ERR_STALE_PERIOD);
        return;
    }
    int64_t c = in->plan->monthly_credits, cap = in->plan->rollover_cap;
    int64_t forfeit = b->monthly + c > cap ? b->monthly + c - cap : 0;
    m_take(m, in->now_us, true, forfeit, ENTRY_FORFEIT, in->job_index, NULL, NULL, x, NULL);
    m_new_lot(m, in, LOT_MONTHLY, c, LEDGER_NO_EXPIRY, job->allocate.period, ENTRY_ALLOCATE, NULL,
              x);
    m->has_plan = true;
    memcpy(m->plan, job->allocate.plan, sizeof m->plan);
    m_set(x, RESULT_GRANTED, c);
    m_set(x, RESULT_FORFEITED, forfeit);
}

static void m_hold_job(struct maccount *m, const struct job *job, const struct ledger_input *in,
                       const struct balance *b, struct expected *x)
{
    const struct job_hold *h = &job->hold;
    if (b->total < h->amount) {
        m_reject(x, JOB_ERR_INSUFFICIENT_CREDITS);
        return;
    }
    CHECK(m->hold_count < HOLDS_MAX);
    struct mhold *mh = &m->holds[m->hold_count++];
    memset(mh, 0, sizeof *mh);
    snprintf(mh->id, sizeof mh->id, "%s", job->id);
    mh->amount = h->amount;
    mh->status = HOLD_OPEN;
    mh->expires_at_us = in->now_us + (h->has_ttl ? h->ttl : HOLD_TTL_DEFAULT_S) * US_PER_S;
    mh->is_new = true;
    mh->job_index = in->job_index;
    m_take(m, in->now_us, false, h->amount, ENTRY_HOLD, in->job_index, h->has_tool ? h->tool : NULL,
           h->has_ref ? h->ref : NULL, x, &mh->takes);
    m_set(x, RESULT_HELD, h->amount);
    m_set(x, RESULT_HOLD_EXPIRES_AT, mh->expires_at_us / 1000);
}

static void m_capture(struct maccount *m, const struct job *job, const struct ledger_input *in,
                      struct expected *x)
{
    struct mhold *h = m_open_hold(m, job->capture.hold, x);
    if (h == NULL)
        return;
    if (job->capture.amount > h->amount) {
        m_reject(x, JOB_ERR_CAPTURE_EXCEEDS_HOLD);
        return;
    }
    int64_t rest = h->amount - job->capture.amount;
    m_give_back(m, in->now_us, &h->takes, rest, ENTRY_RELEASE, in->job_index, NULL, h->id, x);
    h->status = HOLD_CAPTURED;
    h->captured = job->capture.amount;
    h->closed_by = job->id;
    h->changed = true;
    struct mcharge *c = m_new_charge(m, job->id);
    for (size_t i = 0; i < h->takes.count; i++)
        if (h->takes.items[i].amount > 0)
            ledger_takes_add(&c->takes, h->takes.items[i].lot_id, h->takes.items[i].amount);
    m_set(x, RESULT_CHARGED, job->capture.amount);
    m_set(x, RESULT_RELEASED, rest);
}

static void m_release(struct maccount *m, const struct job *job, const struct ledger_input *in,
                      struct expected *x)
{
    struct mhold *h = m_open_hold(m, job->release.hold, x);
    if (h == NULL)
        return;
    m_give_back(m, in->now_us, &h->takes, h->amount, ENTRY_RELEASE, in->job_index, NULL, h->id, x);
    h->status = HOLD_RELEASED;
    h->closed_by = job->id;
    h->changed = true;
    m_set(x, RESULT_RELEASED, h->amount);
}

static void m_refund(struct maccount *m, const struct job *job, const struct ledger_input *in,
                     struct expected *x)
{
    struct mcharge *c = m_charge(m, job->refund.charge);
    if (c == NULL) {
        m_reject(x, JOB_ERR_UNKNOWN_CHARGE);
        return;
    }
    int64_t left = m_takes_total(&c->takes);
    int64_t amount = job->refund.has_amount ? job->refund.amount : left;
    if (amount > left || amount == 0) {
        m_reject(x, JOB_ERR_REFUND_EXCEEDS_CHARGE);
        return;
    }
    m_give_back(m, in->now_us, &c->takes, amount, ENTRY_REFUND, in->job_index, NULL, c->id, x);
    m_set(x, RESULT_REFUNDED, amount);
}

static void m_revoke(struct maccount *m, const struct ledger_input *in, struct expected *x)
{
    struct mlot *l = in->payment_lot_id > 0 ? m_find(m, in->payment_lot_id) : NULL;
    if (l == NULL) {
        m_reject(x, JOB_ERR_UNKNOWN_PAYMENT);
        return;
    }
    CHECK(l->kind == LOT_PACK); /* the program names packs only */
    if (l->revoked) {
        m_reject(x, JOB_ERR_ALREADY_REVOKED);
        return;
    }
    int64_t revoked = l->remaining;
    if (revoked > 0)
        m_entry(x, l, ENTRY_REVOKE, -revoked, in->job_index, NULL, NULL, NULL, NULL);
    l->revoked = true;
    l->revoked_now = true;
    m_set(x, RESULT_REVOKED, revoked);
}

static void m_cancel(struct maccount *m, const struct job *job, const struct ledger_input *in,
                     const struct balance *b, struct expected *x)
{
    if (!m->has_plan) {
        m_reject(x, JOB_ERR_NO_PLAN);
        return;
    }
    int64_t forfeit = job->cancel.has_forfeit && job->cancel.forfeit ? b->monthly : 0;
    m_take(m, in->now_us, true, forfeit, ENTRY_FORFEIT, in->job_index, NULL, NULL, x, NULL);
    m->has_plan = false;
    m->plan[0] = '\0';
    m_set(x, RESULT_FORFEITED, forfeit);
}

/* What the contract says `job` does to the model account: overdue holds
 * released, expired lots written off, then the type's rule. */
static void m_apply(struct maccount *m, const struct job *job, const struct ledger_input *in,
                    struct expected *x)
{
    x->error = JOB_OK;
    x->entry_count = 0;
    x->present = 0;
    memset(x->amounts, 0, sizeof x->amounts);
    int64_t now = in->now_us;
    for (size_t i = 0; i < m->hold_count; i++) {
        struct mhold *h = &m->holds[i];
        if (h->status != HOLD_OPEN || h->expires_at_us > now)
            continue;
        m_give_back(m, now, &h->takes, h->amount, ENTRY_RELEASE, in->job_index, h->id, h->id, x);
        h->status = HOLD_EXPIRED;
        h->closed_by = NULL;
        h->changed = true;
    }
    for (size_t i = 0; i < m->count; i++) {
        struct mlot *l = &m->lots[i];
        if (m_expired(l, now) && l->remaining > 0)
            m_entry(x, l, ENTRY_EXPIRE, -l->remaining, in->job_index, NULL, NULL, NULL, NULL);
    }
    struct balance b;
    m_balance(m, now, &b);
    switch (job->type) {
    case JOB_CONSUME:
        if (b.total < job->consume.amount) {
            m_reject(x, JOB_ERR_INSUFFICIENT_CREDITS);
            return;
        }
        m_take(m, now, false, job->consume.amount, ENTRY_CONSUME, in->job_index,
               job->consume.has_tool ? job->consume.tool : NULL,
               job->consume.has_ref ? job->consume.ref : NULL, x, &m_new_charge(m, job->id)->takes);
        m_set(x, RESULT_CHARGED, job->consume.amount);
        return;
    case JOB_PURCHASE:
        if (in->pack == NULL) {
            m_reject(x, JOB_ERR_UNKNOWN_PACK);
            return;
        }
        if (in->payment_ref_used) {
            m_reject(x, JOB_ERR_DUPLICATE_PAYMENT);
            return;
        }
        m_new_lot(m, in, LOT_PACK, in->pack->credits,
                  now + in->pack->valid_days * LEDGER_US_PER_DAY, "", ENTRY_PURCHASE, NULL, x);
        m_set(x, RESULT_GRANTED, in->pack->credits);
        m_set(x, RESULT_EXPIRES_AT, (now + in->pack->valid_days * LEDGER_US_PER_DAY) / 1000);
        return;
    case JOB_ALLOCATE:
        m_allocate(m, job, in, &b, x);
        return;
    case JOB_HOLD:
        m_hold_job(m, job, in, &b, x);
        return;
    case JOB_CAPTURE:
        m_capture(m, job, in, x);
        return;
    case JOB_RELEASE:
        m_release(m, job, in, x);
        return;
    case JOB_REFUND:
        m_refund(m, job, in, x);
        return;
    case JOB_REVOKE:
        m_revoke(m, in, x);
        return;
    case JOB_GRANT: {
        const struct job_grant *g = &job->grant;
        int64_t expires =
            g->has_valid_days ? now + g->valid_days * LEDGER_US_PER_DAY : LEDGER_NO_EXPIRY;
        m_new_lot(m, in, LOT_GRANT, g->amount, expires, "", ENTRY_GRANT,
                  g->has_reason ? g->reason : NULL, x);
        m_set(x, RESULT_GRANTED, g->amount);
        if (g->has_valid_days)
            m_set(x, RESULT_EXPIRES_AT, expires / 1000);
        return;
    }
    case JOB_CANCEL:
        m_cancel(m, job, in, &b, x);
        return;
    }
    abort();
}

/* ------------------------------------------------------------------------ */
/* Checks after every step                                                  */
/* ------------------------------------------------------------------------ */

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool same_takes(const struct take_list *a, const struct take_list *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (a->items[i].lot_id != b->items[i].lot_id || a->items[i].amount != b->items[i].amount)
            return false;
    return true;
}

/* The index of job "job-<index>", or OPS_MAX for any other ID. */
static size_t id_index(const char *id)
{
    if (id == NULL || strncmp(id, "job-", 4) != 0)
        return OPS_MAX;
    size_t index = (size_t)strtoul(id + 4, NULL, 10);
    return index < OPS_MAX ? index : OPS_MAX;
}

/* The holds and charges of the account, against the model's, and the
 * invariants of 9.4 over what their entries did. */
static void check_holds_and_charges(const struct fuzz_state *s, const struct account *a,
                                    const struct maccount *m)
{
    CHECK(a->hold_count == m->hold_count);
    for (size_t i = 0; i < a->hold_count; i++) {
        const struct hold *h = a->holds[i];
        const struct mhold *mh = &m->holds[i];
        CHECK(strcmp(h->id, mh->id) == 0 && h->amount == mh->amount);
        CHECK(h->status == mh->status && h->expires_at_us == mh->expires_at_us);
        CHECK(h->is_new == mh->is_new && h->changed == mh->changed);
        CHECK(!h->is_new || h->job_index == mh->job_index);
        CHECK(same_str(h->closed_by, mh->closed_by));
        CHECK(same_takes(&h->takes, &mh->takes));
        size_t k = id_index(h->id);
        CHECK(k < OPS_MAX); /* every hold here was opened by a job of the run */
        const struct track *t = &s->track[k];
        CHECK(t->took == h->amount); /* its hold entries took exactly its amount */
        switch (h->status) {
        case HOLD_OPEN:
            CHECK(t->released == 0 && ledger_takes_total(&h->takes) == h->amount);
            CHECK(h->closed_by == NULL);
            break;
        case HOLD_CAPTURED:
            CHECK(h->captured == mh->captured);
            CHECK(0 <= h->captured && h->captured + t->released == h->amount);
            break;
        case HOLD_RELEASED:
        case HOLD_EXPIRED:
            CHECK(t->released == h->amount);
            break;
        }
        CHECK((h->status == HOLD_EXPIRED || h->status == HOLD_OPEN) == (h->closed_by == NULL) ||
              !h->changed);
    }
    CHECK(a->charge_count == m->charge_count);
    for (size_t i = 0; i < a->charge_count; i++) {
        const struct charge *c = a->charges[i];
        CHECK(strcmp(c->id, m->charges[i].id) == 0);
        CHECK(same_takes(&c->takes, &m->charges[i].takes));
        size_t k = id_index(c->id);
        CHECK(k < OPS_MAX);
        const struct track *t = &s->track[k];
        CHECK(t->refunded <= t->spent); /* never refunded above what it spent */
        CHECK(ledger_takes_total(&c->takes) == t->spent - t->refunded);
    }
}

/* Contract 5 and 9.4 on the ledger's own state, and lot by lot against the
 * model (same order, same fields, same flags). */
static void check_account(const struct fuzz_state *s, const struct account *a,
                          const struct maccount *m, int64_t now_us)
{
    CHECK(a->lot_count == m->count);
    CHECK(a->lots != NULL || a->lot_count == 0);
    struct balance sum = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < a->lot_count; i++) {
        const struct lot *lot = &a->lots[i];
        const struct mlot *l = &m->lots[i];
        CHECK(lot->granted > 0);
        CHECK(0 <= lot->remaining && lot->remaining <= lot->granted);
        CHECK(lot->remaining == l->start + l->entries_sum); /* lot == its entries */
        CHECK(!lot->revoked || lot->remaining == 0);        /* nothing left in a revoked lot */
        CHECK(lot->lot_id == l->lot_id && lot->kind == l->kind);
        CHECK(lot->granted == l->granted && lot->remaining == l->remaining);
        CHECK(lot->granted_at_us == l->granted_at_us && lot->expires_at_us == l->expires_at_us);
        CHECK(lot->revoked == l->revoked && lot->revoked_now == l->revoked_now);
        CHECK(memchr(lot->period, '\0', sizeof lot->period) != NULL);
        CHECK(strcmp(lot->period, l->period) == 0);
        CHECK(lot->is_new == l->is_new);
        CHECK(!lot->is_new || lot->job_index == l->job_index);
        CHECK(lot->is_new || lot->changed == l->changed);
        bool usable = !lot->revoked &&
                      (lot->expires_at_us == LEDGER_NO_EXPIRY || lot->expires_at_us > now_us);
        if (!usable)
            continue;
        if (lot->kind == LOT_PACK)
            sum.pack += lot->remaining;
        else if (lot->kind == LOT_MONTHLY)
            sum.monthly += lot->remaining;
        else
            sum.grant += lot->remaining;
    }
    for (size_t i = 0; i < a->hold_count; i++)
        if (a->holds[i]->status == HOLD_OPEN)
            sum.held += a->holds[i]->amount;
    struct balance b;
    ledger_balance(a, now_us, &b);
    CHECK(b.pack == sum.pack && b.monthly == sum.monthly && b.grant == sum.grant);
    CHECK(b.total == sum.pack + sum.monthly + sum.grant);
    CHECK(b.held == sum.held); /* held = the open holds */
    CHECK(a->has_plan == m->has_plan);
    CHECK(!a->has_plan || strcmp(a->plan, m->plan) == 0);
    check_holds_and_charges(s, a, m);
}

static bool kind_is_positive(enum entry_kind kind)
{
    return kind == ENTRY_PURCHASE || kind == ENTRY_ALLOCATE || kind == ENTRY_RELEASE ||
           kind == ENTRY_REFUND || kind == ENTRY_GRANT;
}

/* The entries ledger_apply() wrote, against the model's, in order; then
 * what they did is added to the lots' sums and the jobs' tracks. */
static void check_entries(struct fuzz_state *s, size_t from, const struct job *job,
                          struct maccount *m)
{
    const struct entry_list *list = &s->entries;
    const struct expected *x = &s->x;
    CHECK(list->count >= from);
    CHECK(list->count - from == x->entry_count);
    int64_t consumed = 0;
    for (size_t k = 0; k < x->entry_count; k++) {
        const struct entry *got = &list->items[from + k];
        const struct entry *want = &x->entries[k];
        CHECK(got->lot_id == want->lot_id && got->kind == want->kind);
        CHECK(got->delta == want->delta && got->job_index == want->job_index);
        CHECK(same_str(got->job_id, want->job_id) && same_str(got->origin, want->origin));
        CHECK(same_str(got->tool, want->tool) && same_str(got->ref, want->ref));
        CHECK(got->delta != 0);
        CHECK((got->delta > 0) == kind_is_positive(got->kind));
        /* A give-back names what it gives back; a taking names nothing. */
        bool gives_back = got->kind == ENTRY_RELEASE || got->kind == ENTRY_REFUND;
        bool may_follow = got->kind == ENTRY_EXPIRE || got->kind == ENTRY_REVOKE;
        CHECK(gives_back ? got->origin != NULL : may_follow || got->origin == NULL);
        /* A rejection writes nothing but expiries and what the overdue holds
         * gave back (under their own IDs). */
        CHECK(x->error == JOB_OK || got->kind == ENTRY_EXPIRE || got->job_id != NULL);
        if (got->kind == ENTRY_CONSUME)
            consumed -= got->delta;
        struct mlot *l = m_find(m, got->lot_id);
        CHECK(l != NULL);
        l->entries_sum += got->delta;
        const char *writer = got->job_id != NULL ? got->job_id : job->id;
        size_t w = id_index(writer), o = id_index(got->origin);
        if (got->kind == ENTRY_HOLD && w < OPS_MAX)
            s->track[w].took -= got->delta;
        if (got->kind == ENTRY_CONSUME && w < OPS_MAX)
            s->track[w].spent -= got->delta;
        if (got->kind == ENTRY_RELEASE && o < OPS_MAX)
            s->track[o].released += got->delta;
        if (got->kind == ENTRY_REFUND && o < OPS_MAX)
            s->track[o].refunded += got->delta;
    }
    CHECK(consumed == (job->type == JOB_CONSUME ? x->amounts[RESULT_CHARGED] : 0));
}

static void check_result(const struct result *r, const struct expected *x,
                         const struct balance *want)
{
    CHECK(r->error == x->error);
    CHECK(memchr(r->message, '\0', sizeof r->message) != NULL);
    CHECK((r->error == JOB_OK) == (r->message[0] == '\0'));
    CHECK(strlen(r->message) <= RESULT_MESSAGE_BYTES_MAX);
    CHECK(r->amounts_present == x->present);
    for (unsigned a = 0; a < RESULT_AMOUNT_COUNT; a++)
        CHECK(r->amounts[a] == x->amounts[a]);
    CHECK(r->balance.total == want->total && r->balance.pack == want->pack &&
          r->balance.monthly == want->monthly && r->balance.grant == want->grant &&
          r->balance.held == want->held);
}

/* ------------------------------------------------------------------------ */
/* Turning bytes into a program                                             */
/* ------------------------------------------------------------------------ */

/* Credits of a catalog entry or a loaded lot: small ones mostly, up to the
 * catalog's 10^12 sometimes. */
static int64_t read_credits(struct fuzz_bytes *in)
{
    uint8_t mode = fuzz_u8(in);
    switch (mode & 3) {
    case 0:
        return 1 + (mode >> 2);
    case 1:
        return 1 + (int64_t)fuzz_un(in, 2);
    case 2:
        return 1 + (int64_t)(fuzz_un(in, 5) % (uint64_t)CREDITS_MAX);
    default:
        return (mode >> 2) & 1 ? CREDITS_MAX : 1000000000;
    }
}

static int64_t read_amount(struct fuzz_bytes *in)
{
    uint8_t mode = fuzz_u8(in);
    switch (mode & 3) {
    case 0:
        return 1 + (mode >> 2);
    case 1:
        return 1 + (int64_t)fuzz_un(in, 2);
    case 2:
        return 1 + (int64_t)(fuzz_un(in, 4) % JOB_AMOUNT_MAX);
    default:
        return JOB_AMOUNT_MAX;
    }
}

static void read_catalog(struct fuzz_state *s, struct fuzz_bytes *in)
{
    for (int k = 0; k < PACKS; k++) {
        s->packs[k].credits = read_credits(in);
        s->packs[k].valid_days = (int32_t)(1 + fuzz_un(in, 2) % 3650);
    }
    for (int k = 0; k < PLANS; k++) {
        int64_t c = read_credits(in);
        uint8_t mode = fuzz_u8(in);
        int64_t extra = (mode & 3) == 0 ? 0 : (mode & 3) == 1 ? c : read_credits(in);
        s->plans[k] = (struct plan_info){c, c + extra, 0};
    }
}

static void read_period(struct fuzz_bytes *in, char *out)
{
    unsigned idx = fuzz_u8(in) % 48;
    snprintf(out, JOB_PERIOD_BYTES + 1, "%04u-%02u", 2025 + idx / 12, idx % 12 + 1);
}

static void fill(char *out, char c, size_t n)
{
    memset(out, c, n);
    out[n] = '\0';
}

static bool account_full(const struct fuzz_state *s, int user)
{
    return s->model[user].count >= LOTS_MAX;
}

/* The step's job, kept for the run (holds and entries borrow its strings). */
static struct job *new_job(struct fuzz_state *s, enum job_type type)
{
    if (s->job_index >= OPS_MAX)
        return NULL;
    struct job *job = &s->jobs[s->job_index];
    memset(job, 0, sizeof *job);
    job->type = type;
    return job;
}

/* One job through ledger_apply() and the model, then every check. */
static void run_job(struct fuzz_state *s, int user, struct job *job, struct ledger_input *in)
{
    struct account *a = &s->accounts[user];
    struct maccount *m = &s->model[user];
    CHECK(job == &s->jobs[s->job_index]);
    snprintf(job->id, sizeof job->id, "job-%zu", s->job_index);
    memcpy(job->user, a->user, sizeof job->user);
    in->now_us = s->now_us;
    in->job_index = s->job_index++;
    in->new_lot_id = s->next_lot_id++;

    struct balance before;
    m_balance(m, s->now_us, &before);
    m_apply(m, job, in, &s->x);

    size_t from = s->entries.count;
    struct result r;
    result_init_for_job(&r, job);
    ledger_apply(a, job, in, &s->entries, &r);

#ifdef FUZZ_LEDGER_TRACE /* triage: cc -DFUZZ_LEDGER_TRACE, see README.md */
    fprintf(stderr,
            "t=%lld job %zu user %d %s -> %s (%s) entries=%zu balance=%lld/%lld/%lld/%lld "
            "held=%lld\n",
            (long long)s->now_us, in->job_index, user, job_type_name(job->type),
            r.error == JOB_OK ? "applied" : job_error_name(r.error), r.message,
            s->entries.count - from, (long long)r.balance.total, (long long)r.balance.pack,
            (long long)r.balance.monthly, (long long)r.balance.grant, (long long)r.balance.held);
#endif
    check_entries(s, from, job, m);
    if (job->type == JOB_CAPTURE && r.error == JOB_OK)
        s->track[in->job_index].spent = r.amounts[RESULT_CHARGED];
    struct balance after;
    m_balance(m, s->now_us, &after);
    check_result(&r, &s->x, &after);
    check_account(s, a, m, s->now_us);
    /* The identity fields are the caller's. */
    CHECK(strcmp(r.id, job->id) == 0 && strcmp(r.user, job->user) == 0 && r.type == job->type);
    if (job->type == JOB_ALLOCATE && r.error == JOB_OK && before.held == 0) {
        /* Monthly lots never expire nor are revoked, and no hold gave any
         * back: M is before.monthly. */
        int64_t cap = in->plan->rollover_cap, c = in->plan->monthly_credits;
        int64_t want = before.monthly + c < cap ? before.monthly + c : cap;
        CHECK(after.monthly == want);
        CHECK(a->plan_changed);
    }
    if (r.error != JOB_OK)
        CHECK(after.total <= before.total + before.held); /* only expiries and overdue holds */
}

static void op_consume(struct fuzz_state *s, struct fuzz_bytes *in, int user, bool boundary)
{
    struct job *job = new_job(s, JOB_CONSUME);
    if (job == NULL || s->model[user].charge_count >= CHARGES_MAX)
        return;
    if (boundary) {
        /* Exactly the balance, or one more. */
        struct balance b;
        m_balance(&s->model[user], s->now_us, &b);
        job->consume.amount = b.total + (fuzz_u8(in) & 1);
        if (job->consume.amount < JOB_AMOUNT_MIN || job->consume.amount > JOB_AMOUNT_MAX)
            return;
    } else {
        job->consume.amount = read_amount(in);
    }
    uint8_t f = fuzz_u8(in);
    job->consume.has_tool = f & 1;
    job->consume.has_ref = f & 2;
    if (f & 4)
        fill(job->consume.tool, 't', JOB_TOOL_BYTES_MAX);
    struct ledger_input input = {0};
    run_job(s, user, job, &input);
}

static void op_purchase(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    struct job *job = new_job(s, JOB_PURCHASE);
    if (job == NULL || account_full(s, user))
        return;
    uint8_t b = fuzz_u8(in);
    struct ledger_input input = {0};
    int pack = b % (PACKS + 1);
    input.pack = pack < PACKS ? &s->packs[pack] : NULL;
    input.payment_ref_used = ((b >> 2) & 3) == 3;
    if (b & 0x10) { /* the longest names: messages must still fit */
        fill(job->purchase.pack, 'p', JOB_PACK_BYTES_MAX);
        fill(job->purchase.payment_ref, 'r', JOB_PAYMENT_REF_BYTES_MAX);
    } else {
        snprintf(job->purchase.pack, sizeof job->purchase.pack, "pack%d", pack);
        snprintf(job->purchase.payment_ref, sizeof job->purchase.payment_ref, "pay-%zu",
                 s->job_index);
    }
    run_job(s, user, job, &input);
}

static void op_allocate(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    struct job *job = new_job(s, JOB_ALLOCATE);
    if (job == NULL || account_full(s, user))
        return;
    uint8_t b = fuzz_u8(in);
    struct ledger_input input = {0};
    int plan = b % (PLANS + 1);
    input.plan = plan < PLANS ? &s->plans[plan] : NULL;
    if (b & 0x10)
        fill(job->allocate.plan, 'q', JOB_PLAN_BYTES_MAX);
    else
        snprintf(job->allocate.plan, sizeof job->allocate.plan, "plan%d", plan);
    read_period(in, job->allocate.period);
    run_job(s, user, job, &input);
}

static void op_hold(struct fuzz_state *s, struct fuzz_bytes *in, int user, bool boundary)
{
    struct job *job = new_job(s, JOB_HOLD);
    if (job == NULL || s->model[user].hold_count >= HOLDS_MAX)
        return;
    if (boundary) {
        struct balance b;
        m_balance(&s->model[user], s->now_us, &b);
        job->hold.amount = b.total + (fuzz_u8(in) & 1);
        if (job->hold.amount < JOB_AMOUNT_MIN || job->hold.amount > JOB_AMOUNT_MAX)
            return;
    } else {
        job->hold.amount = read_amount(in);
    }
    uint8_t f = fuzz_u8(in);
    switch (f & 3) {
    case 0:
        break; /* the default hour */
    case 1:
        job->hold.has_ttl = true;
        job->hold.ttl = 1 + (f >> 2);
        break;
    case 2:
        job->hold.has_ttl = true;
        job->hold.ttl = 1 + (int64_t)(fuzz_un(in, 3) % HOLD_TTL_MAX_S);
        break;
    default:
        job->hold.has_ttl = true;
        job->hold.ttl = HOLD_TTL_MAX_S;
        break;
    }
    job->hold.has_tool = f & 4;
    job->hold.has_ref = f & 8;
    if (f & 16) {
        fill(job->hold.tool, 't', JOB_TOOL_BYTES_MAX);
        fill(job->hold.ref, 'r', JOB_REF_BYTES_MAX);
    } else {
        strcpy(job->hold.tool, "render");
    }
    struct ledger_input input = {0};
    run_job(s, user, job, &input);
}

/* A hold ID to name: one of the user's (b & 3 < 2), another user's, or none. */
static void pick_hold(struct fuzz_state *s, struct fuzz_bytes *in, int user, char *out,
                      size_t out_size, const struct mhold **picked)
{
    uint8_t b = fuzz_u8(in);
    int owner = (b & 3) < 2 ? user : (b & 3) == 2 ? (user + 1 + ((b >> 2) & 1)) % USERS : -1;
    *picked = NULL;
    if (owner >= 0 && s->model[owner].hold_count > 0) {
        const struct maccount *m = &s->model[owner];
        size_t i = (b & 3) == 1 ? m->hold_count - 1 : fuzz_u8(in) % m->hold_count;
        *picked = &m->holds[i];
        snprintf(out, out_size, "%s", m->holds[i].id);
        return;
    }
    if (b & 0x80)
        fill(out, 'h', JOB_ID_BYTES_MAX);
    else
        snprintf(out, out_size, "no-hold-%u", b >> 5);
}

static void op_capture(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    struct job *job = new_job(s, JOB_CAPTURE);
    if (job == NULL || s->model[user].charge_count >= CHARGES_MAX)
        return;
    const struct mhold *h;
    pick_hold(s, in, user, job->capture.hold, sizeof job->capture.hold, &h);
    uint8_t mode = fuzz_u8(in);
    int64_t amount = h != NULL ? h->amount : 10;
    switch (mode & 7) {
    case 0:
        job->capture.amount = amount;
        break;
    case 1:
        job->capture.amount = amount + 1 <= JOB_AMOUNT_MAX ? amount + 1 : amount;
        break;
    case 2:
        job->capture.amount = 0;
        break;
    case 3:
        job->capture.amount = JOB_AMOUNT_MAX;
        break;
    default:
        job->capture.amount = (int64_t)(fuzz_un(in, 4) % (uint64_t)(amount + 1));
        break;
    }
    struct ledger_input input = {0};
    run_job(s, user, job, &input);
}

static void op_release(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    struct job *job = new_job(s, JOB_RELEASE);
    if (job == NULL)
        return;
    const struct mhold *h;
    pick_hold(s, in, user, job->release.hold, sizeof job->release.hold, &h);
    struct ledger_input input = {0};
    run_job(s, user, job, &input);
}

static void op_refund(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    struct job *job = new_job(s, JOB_REFUND);
    if (job == NULL)
        return;
    uint8_t b = fuzz_u8(in);
    int owner = (b & 3) < 2 ? user : (b & 3) == 2 ? (user + 1) % USERS : -1;
    const struct mcharge *c = NULL;
    if (owner >= 0 && s->model[owner].charge_count > 0) {
        const struct maccount *m = &s->model[owner];
        c = &m->charges[(b & 3) == 1 ? m->charge_count - 1 : fuzz_u8(in) % m->charge_count];
        snprintf(job->refund.charge, sizeof job->refund.charge, "%s", c->id);
    } else if (owner == user && s->model[user].hold_count > 0) {
        /* A hold is not a charge. */
        snprintf(job->refund.charge, sizeof job->refund.charge, "%s", s->model[user].holds[0].id);
    } else if (b & 0x80) {
        fill(job->refund.charge, 'c', JOB_ID_BYTES_MAX);
    } else {
        snprintf(job->refund.charge, sizeof job->refund.charge, "no-charge-%u", b >> 5);
    }
    int64_t left = c != NULL ? m_takes_total(&c->takes) : 0;
    uint8_t mode = fuzz_u8(in);
    switch (mode & 7) {
    case 0:
    case 1:
        break; /* absent: all that is left */
    case 2:
        job->refund.has_amount = left >= 1;
        job->refund.amount = left;
        break;
    case 3:
        job->refund.has_amount = left + 1 <= JOB_AMOUNT_MAX;
        job->refund.amount = left + 1;
        break;
    case 4:
        job->refund.has_amount = true;
        job->refund.amount = read_amount(in);
        break;
    default:
        job->refund.has_amount = left >= 1 && left <= JOB_AMOUNT_MAX;
        job->refund.amount = left >= 1 ? 1 + (int64_t)(fuzz_un(in, 4) % (uint64_t)left) : 1;
        break;
    }
    struct ledger_input input = {0};
    run_job(s, user, job, &input);
}

static void op_revoke(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    struct job *job = new_job(s, JOB_REVOKE);
    if (job == NULL)
        return;
    uint8_t b = fuzz_u8(in);
    struct ledger_input input = {0};
    /* A pack of the user's, or a lot that is not in the account (another
     * user's, or none): the store finds the user's pack lot or nothing. */
    const struct maccount *m = &s->model[user];
    size_t packs = 0;
    for (size_t i = 0; i < m->count; i++)
        packs += m->lots[i].kind == LOT_PACK;
    if ((b & 3) != 3 && packs > 0) {
        size_t want = fuzz_u8(in) % packs;
        for (size_t i = 0; i < m->count; i++)
            if (m->lots[i].kind == LOT_PACK && want-- == 0)
                input.payment_lot_id = m->lots[i].lot_id;
    } else if (b & 4) {
        const struct maccount *other = &s->model[(user + 1) % USERS];
        if (other->count > 0)
            input.payment_lot_id = other->lots[fuzz_u8(in) % other->count].lot_id;
    }
    input.payment_ref_used = input.payment_lot_id > 0 || (b & 8);
    if (b & 0x10)
        fill(job->revoke.payment_ref, 'r', JOB_PAYMENT_REF_BYTES_MAX);
    else
        snprintf(job->revoke.payment_ref, sizeof job->revoke.payment_ref, "pay-%u", b >> 5);
    run_job(s, user, job, &input);
}

static void op_grant(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    struct job *job = new_job(s, JOB_GRANT);
    if (job == NULL || account_full(s, user))
        return;
    job->grant.amount = read_amount(in);
    uint8_t f = fuzz_u8(in);
    if (f & 1) {
        job->grant.has_valid_days = true;
        job->grant.valid_days = (f & 2) ? GRANT_VALID_DAYS_MAX : 1 + (int64_t)(fuzz_un(in, 2) % 60);
    }
    job->grant.has_reason = f & 4;
    if (f & 8)
        fill(job->grant.reason, 'w', JOB_REASON_BYTES_MAX);
    struct ledger_input input = {0};
    run_job(s, user, job, &input);
}

static void op_cancel(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    struct job *job = new_job(s, JOB_CANCEL);
    if (job == NULL)
        return;
    uint8_t f = fuzz_u8(in);
    job->cancel.has_forfeit = f & 1;
    job->cancel.forfeit = f & 2;
    struct ledger_input input = {0};
    run_job(s, user, job, &input);
}

/* Time moves on: a little, a lot, or to the edge of a lot's or a hold's
 * expiry. */
static void op_time(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    uint8_t b = fuzz_u8(in);
    const struct maccount *m = &s->model[user];
    switch (b & 7) {
    case 0:
        s->now_us += 1 + (b >> 3);
        break;
    case 1:
        s->now_us += (int64_t)(1 + (b >> 3)) * US_PER_HOUR;
        break;
    case 2:
        s->now_us += (int64_t)(1 + fuzz_u8(in)) * LEDGER_US_PER_DAY;
        break;
    case 3: {
        /* Onto an open hold's expiry (it expires), or just before it. */
        if (m->hold_count == 0)
            break;
        const struct mhold *h = &m->holds[fuzz_u8(in) % m->hold_count];
        if (h->status == HOLD_OPEN && h->expires_at_us > s->now_us)
            s->now_us = h->expires_at_us - ((b >> 3) & 1);
        break;
    }
    case 4:
    case 5: {
        /* Onto a lot's expiry (it stops being usable), or just before it. */
        if (m->count == 0)
            break;
        const struct mlot *l = &m->lots[fuzz_u8(in) % m->count];
        if (l->expires_at_us != LEDGER_NO_EXPIRY && l->expires_at_us > s->now_us)
            s->now_us = l->expires_at_us - ((b & 7) == 5);
        break;
    }
    case 6:
        s->now_us -= 1 + (b >> 3); /* clocks of two transactions, out of order */
        break;
    default:
        break;
    }
}

/* A lot as the store would load it: any remaining, any expiry for packs and
 * grants, a pack revoked (holding nothing) now and then. */
static void op_load_lot(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    if (account_full(s, user))
        return;
    uint8_t b = fuzz_u8(in);
    static const enum lot_kind kinds[4] = {LOT_PACK, LOT_MONTHLY, LOT_GRANT, LOT_PACK};
    struct lot lot = {.lot_id = s->next_lot_id++, .kind = kinds[b & 3]};
    lot.granted = read_credits(in);
    uint8_t spent = fuzz_u8(in);
    lot.remaining = spent == 0 ? 0 : spent >= 128 ? lot.granted : lot.granted * spent / 128;
    lot.granted_at_us = s->now_us - (int64_t)fuzz_un(in, 2) * US_PER_HOUR;
    lot.expires_at_us = LEDGER_NO_EXPIRY;
    if (lot.kind == LOT_MONTHLY) {
        read_period(in, lot.period);
        const struct maccount *m = &s->model[user];
        for (size_t i = 0; i < m->count; i++) /* one monthly lot per period */
            if (m->lots[i].kind == LOT_MONTHLY && strcmp(m->lots[i].period, lot.period) == 0)
                return;
    } else if (lot.kind == LOT_PACK || (b & 0x40)) {
        lot.expires_at_us =
            s->now_us + ((int64_t)(int8_t)fuzz_u8(in)) * LEDGER_US_PER_DAY + ((b >> 2) & 3) - 1;
    }
    lot.revoked = lot.kind == LOT_PACK && lot.remaining == 0 && (b & 0x80);
    struct lot *copy = ledger_account_add_lot(&s->accounts[user], &lot);
    CHECK(copy->lot_id == lot.lot_id && copy->remaining == lot.remaining);
    m_add(&s->model[user], &lot);
    check_account(s, &s->accounts[user], &s->model[user], s->now_us);
}

/* Whether a hold or a charge of the model still has a share in `lot_id`:
 * the store then loads the lot even when spent. */
static bool m_has_share(const struct maccount *m, int64_t lot_id)
{
    for (size_t i = 0; i < m->hold_count; i++)
        for (size_t k = 0; m->holds[i].status == HOLD_OPEN && k < m->holds[i].takes.count; k++)
            if (m->holds[i].takes.items[k].lot_id == lot_id)
                return true;
    for (size_t i = 0; i < m->charge_count; i++)
        for (size_t k = 0; k < m->charges[i].takes.count; k++)
            if (m->charges[i].takes.items[k].lot_id == lot_id &&
                m->charges[i].takes.items[k].amount > 0)
                return true;
    return false;
}

/* The shares that are left, in the order taken (the store reads no row of
 * nothing, and no takes of a closed hold). */
static void m_reload_takes(struct take_list *takes, bool keep)
{
    size_t kept = 0;
    for (size_t k = 0; k < takes->count; k++)
        if (keep && takes->items[k].amount > 0)
            takes->items[kept++] = takes->items[k];
    takes->count = kept;
}

/* Commit and load again: what the store writes back and reads next time
 * (spent packs and grants are not loaded unless a hold or charge has a share
 * in them; monthly lots always are; holds and charges as named), lots in
 * another order. */
static void op_reload(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    struct maccount *m = &s->model[user];
    struct account *a = &s->accounts[user];
    for (size_t i = 0; i < m->hold_count; i++) {
        struct mhold *h = &m->holds[i];
        m_reload_takes(&h->takes, h->status == HOLD_OPEN);
        h->is_new = h->changed = false;
        h->closed_by = NULL; /* not a column the store reads */
        if (h->status != HOLD_CAPTURED)
            h->captured = 0;
    }
    for (size_t i = 0; i < m->charge_count; i++)
        m_reload_takes(&m->charges[i].takes, true);
    size_t kept = 0;
    for (size_t i = 0; i < m->count; i++) {
        struct mlot l = m->lots[i];
        if (l.kind != LOT_MONTHLY && l.remaining == 0 && !m_has_share(m, l.lot_id))
            continue;
        l.is_new = l.changed = l.revoked_now = false;
        l.start = l.remaining;
        l.entries_sum = 0;
        m->lots[kept++] = l;
    }
    m->count = kept;
    for (size_t i = kept; i > 1; i--) {
        size_t j = fuzz_u8(in) % i;
        struct mlot t = m->lots[i - 1];
        m->lots[i - 1] = m->lots[j];
        m->lots[j] = t;
    }
    struct account fresh;
    ledger_account_init(&fresh, a->user);
    fresh.has_plan = m->has_plan;
    memcpy(fresh.plan, m->plan, sizeof fresh.plan);
    for (size_t i = 0; i < m->count; i++) {
        const struct mlot *l = &m->lots[i];
        struct lot lot = {.lot_id = l->lot_id,
                          .kind = l->kind,
                          .granted = l->granted,
                          .remaining = l->remaining,
                          .granted_at_us = l->granted_at_us,
                          .expires_at_us = l->expires_at_us,
                          .revoked = l->revoked};
        memcpy(lot.period, l->period, sizeof lot.period);
        ledger_account_add_lot(&fresh, &lot);
    }
    for (size_t i = 0; i < m->hold_count; i++) {
        const struct mhold *mh = &m->holds[i];
        struct hold *h = ledger_account_add_hold(&fresh, mh->id);
        h->amount = mh->amount;
        h->status = mh->status;
        h->captured = mh->captured;
        h->expires_at_us = mh->expires_at_us;
        for (size_t k = 0; k < mh->takes.count; k++)
            ledger_takes_add(&h->takes, mh->takes.items[k].lot_id, mh->takes.items[k].amount);
    }
    for (size_t i = 0; i < m->charge_count; i++) {
        const struct mcharge *mc = &m->charges[i];
        struct charge *c = ledger_account_add_charge(&fresh, mc->id);
        for (size_t k = 0; k < mc->takes.count; k++)
            ledger_takes_add(&c->takes, mc->takes.items[k].lot_id, mc->takes.items[k].amount);
    }
    ledger_account_free(a);
    *a = fresh;
    check_account(s, a, m, s->now_us);
}

static void free_model(struct maccount *m)
{
    for (size_t i = 0; i < m->hold_count; i++)
        ledger_takes_free(&m->holds[i].takes);
    for (size_t i = 0; i < m->charge_count; i++)
        ledger_takes_free(&m->charges[i].takes);
    m->hold_count = m->charge_count = m->count = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_state s;
    struct entry *expected_entries = s.x.entries;
    size_t expected_cap = s.x.entry_cap;
    memset(s.accounts, 0, sizeof s.accounts);
    memset(s.model, 0, sizeof s.model);
    memset(s.track, 0, sizeof s.track);
    memset(&s.entries, 0, sizeof s.entries);
    memset(&s.x, 0, sizeof s.x);
    s.x.entries = expected_entries; /* kept from run to run */
    s.x.entry_cap = expected_cap;
    s.job_index = 0;
    struct fuzz_bytes in = {data, size, 0};
    /* One user ID of the longest length allowed. */
    char users[USERS][JOB_USER_BYTES_MAX + 1] = {"u0", "u1", ""};
    fill(users[2], 'u', JOB_USER_BYTES_MAX);
    for (int u = 0; u < USERS; u++)
        ledger_account_init(&s.accounts[u], users[u]);
    s.now_us = NOW_START;
    s.next_lot_id = 1;
    read_catalog(&s, &in);

    for (int op = 0; op < OPS_MAX && !fuzz_empty(&in); op++) {
        uint8_t b = fuzz_u8(&in);
        int user = (b >> 4) % USERS;
        switch (b & 15) {
        case 0:
            op_consume(&s, &in, user, false);
            break;
        case 1:
            op_consume(&s, &in, user, true);
            break;
        case 2:
            op_purchase(&s, &in, user);
            break;
        case 3:
            op_allocate(&s, &in, user);
            break;
        case 4:
            op_time(&s, &in, user);
            break;
        case 5:
            op_load_lot(&s, &in, user);
            break;
        case 6:
            op_reload(&s, &in, user);
            break;
        case 7:
            /* An entry list that starts empty again (the next batch). */
            ledger_entries_free(&s.entries);
            break;
        case 8:
            op_hold(&s, &in, user, (b >> 6) & 1);
            break;
        case 9:
            op_capture(&s, &in, user);
            break;
        case 10:
            op_release(&s, &in, user);
            break;
        case 11:
            op_refund(&s, &in, user);
            break;
        case 12:
            op_revoke(&s, &in, user);
            break;
        case 13:
            op_grant(&s, &in, user);
            break;
        case 14:
            op_cancel(&s, &in, user);
            break;
        default:
            op_hold(&s, &in, user, false);
            break;
        }
    }
    for (int u = 0; u < USERS; u++) {
        ledger_account_free(&s.accounts[u]);
        free_model(&s.model[u]);
    }
    ledger_entries_free(&s.entries);
    return 0;
}
