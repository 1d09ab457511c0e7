/*
 * fuzz_ledger.c -- libFuzzer target for the ledger rules (core/ledger.c).
 *
 * The input is a small catalog followed by a program of operations on a few
 * accounts: consume, purchase, allocate, time advances (some landing exactly
 * on a lot's expiry), lots loaded as if from the store, and store round-trips
 * (flags cleared, spent packs dropped, lots reordered). Each job goes through
 * ledger_apply() and through a reference model written here from contract
 * section 5 (plain selection instead of sorting, one pass per rule). After
 * every step the two must agree on the error, the entries (in order), every
 * lot and the result; and the section 5 invariants are checked on the
 * ledger's own state whatever the model says.
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
#define OPS_MAX 400
#define PACKS 3 /* catalog entries; index PACKS means "not in the catalog" */
#define PLANS 3
#define CREDITS_MAX INT64_C(1000000000000) /* the catalog's bound per lot */
#define NOW_START INT64_C(1790000000000000)
#define US_PER_HOUR INT64_C(3600000000)

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
    int64_t start;       /* remaining when it appeared (loaded or created: 0) */
    int64_t entries_sum; /* deltas of the entries ledger_apply wrote for it */
    bool is_new;
    bool changed;
    size_t job_index;
};

struct maccount {
    struct mlot lots[LOTS_MAX];
    size_t count;
    bool has_plan;
    char plan[JOB_PLAN_BYTES_MAX + 1];
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
};

static bool m_usable(const struct mlot *l, int64_t now_us)
{
    return l->expires_at_us == LEDGER_NO_EXPIRY || l->expires_at_us > now_us;
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
        else
            b->monthly += l->remaining;
    }
    b->total = b->pack + b->monthly;
}

/* a before b in spending order (contract section 5). */
static bool m_before(const struct mlot *a, const struct mlot *b)
{
    if (a->kind != b->kind)
        return a->kind == LOT_PACK;
    int64_t ka = a->kind == LOT_PACK ? a->expires_at_us : a->granted_at_us;
    int64_t kb = b->kind == LOT_PACK ? b->expires_at_us : b->granted_at_us;
    if (ka != kb)
        return ka < kb;
    return a->lot_id < b->lot_id;
}

struct expected {
    enum job_error error;
    struct entry entries[2 * LOTS_MAX + 2];
    size_t entry_count;
    int64_t charged, granted, forfeited, expires_at_ms;
};

static void m_entry(struct expected *x, struct mlot *l, enum entry_kind kind, int64_t delta,
                    size_t job_index)
{
    CHECK(x->entry_count < sizeof x->entries / sizeof x->entries[0]);
    x->entries[x->entry_count++] =
        (struct entry){.lot_id = l->lot_id, .kind = kind, .delta = delta, .job_index = job_index};
    l->remaining += delta;
    l->changed = true;
}

/* Takes `amount` from the usable lots (monthly ones only when asked), the
 * next lot always chosen by a fresh scan for the first in spending order. */
static void m_take(struct maccount *m, int64_t now_us, bool monthly_only, int64_t amount,
                   enum entry_kind kind, size_t job_index, struct expected *x)
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
        m_entry(x, next, kind, -take, job_index);
        amount -= take;
    }
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
    l->start = lot->is_new ? 0 : lot->remaining;
    l->is_new = lot->is_new;
    l->job_index = lot->job_index;
    return l;
}

/* What the contract says `job` does to the model account. */
static void m_apply(struct maccount *m, const struct job *job, const struct ledger_input *in,
                    struct expected *x)
{
    memset(x, 0, sizeof *x);
    int64_t now = in->now_us;
    for (size_t i = 0; i < m->count; i++) {
        struct mlot *l = &m->lots[i];
        if (!m_usable(l, now) && l->remaining > 0)
            m_entry(x, l, ENTRY_EXPIRE, -l->remaining, in->job_index);
    }
    struct balance b;
    m_balance(m, now, &b);
    switch (job->type) {
    case JOB_CONSUME:
        if (b.total < job->consume.amount) {
            x->error = JOB_ERR_INSUFFICIENT_CREDITS;
            return;
        }
        m_take(m, now, false, job->consume.amount, ENTRY_CONSUME, in->job_index, x);
        x->charged = job->consume.amount;
        return;
    case JOB_PURCHASE: {
        if (in->pack == NULL) {
            x->error = JOB_ERR_UNKNOWN_PACK;
            return;
        }
        if (in->payment_ref_used) {
            x->error = JOB_ERR_DUPLICATE_PAYMENT;
            return;
        }
        struct lot lot = {.lot_id = in->new_lot_id,
                          .kind = LOT_PACK,
                          .granted = in->pack->credits,
                          .remaining = 0,
                          .granted_at_us = now,
                          .expires_at_us = now + in->pack->valid_days * LEDGER_US_PER_DAY,
                          .is_new = true,
                          .job_index = in->job_index};
        struct mlot *l = m_add(m, &lot);
        m_entry(x, l, ENTRY_PURCHASE, lot.granted, in->job_index);
        x->granted = lot.granted;
        x->expires_at_ms = lot.expires_at_us / 1000;
        return;
    }
    case JOB_ALLOCATE: {
        if (in->plan == NULL) {
            x->error = JOB_ERR_UNKNOWN_PLAN;
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
            x->error = same ? JOB_ERR_ALREADY_ALLOCATED : JOB_ERR_STALE_PERIOD;
            return;
        }
        int64_t c = in->plan->monthly_credits, cap = in->plan->rollover_cap;
        int64_t forfeit = b.monthly + c > cap ? b.monthly + c - cap : 0;
        m_take(m, now, true, forfeit, ENTRY_FORFEIT, in->job_index, x);
        struct lot lot = {.lot_id = in->new_lot_id,
                          .kind = LOT_MONTHLY,
                          .granted = c,
                          .granted_at_us = now,
                          .expires_at_us = LEDGER_NO_EXPIRY,
                          .is_new = true,
                          .job_index = in->job_index};
        memcpy(lot.period, job->allocate.period, sizeof lot.period);
        struct mlot *l = m_add(m, &lot);
        m_entry(x, l, ENTRY_ALLOCATE, c, in->job_index);
        m->has_plan = true;
        memcpy(m->plan, job->allocate.plan, sizeof m->plan);
        x->granted = c;
        x->forfeited = forfeit;
        return;
    }
    }
    abort();
}

/* ------------------------------------------------------------------------ */
/* Checks after every step                                                  */
/* ------------------------------------------------------------------------ */

/* Contract section 5 on the ledger's own state, and lot by lot against the
 * model (same order, same fields, same flags). */
static void check_account(const struct account *a, const struct maccount *m, int64_t now_us)
{
    CHECK(a->lot_count == m->count);
    CHECK(a->lots != NULL || a->lot_count == 0);
    struct balance sum = {0, 0, 0};
    for (size_t i = 0; i < a->lot_count; i++) {
        const struct lot *lot = &a->lots[i];
        const struct mlot *l = &m->lots[i];
        CHECK(lot->granted > 0);
        CHECK(0 <= lot->remaining && lot->remaining <= lot->granted);
        CHECK(lot->remaining == l->start + l->entries_sum); /* lot == its entries */
        CHECK(lot->lot_id == l->lot_id && lot->kind == l->kind);
        CHECK(lot->granted == l->granted && lot->remaining == l->remaining);
        CHECK(lot->granted_at_us == l->granted_at_us && lot->expires_at_us == l->expires_at_us);
        CHECK(memchr(lot->period, '\0', sizeof lot->period) != NULL);
        CHECK(strcmp(lot->period, l->period) == 0);
        CHECK(lot->is_new == l->is_new);
        CHECK(!lot->is_new || lot->job_index == l->job_index);
        CHECK(lot->is_new || lot->changed == l->changed);
        bool usable = lot->expires_at_us == LEDGER_NO_EXPIRY || lot->expires_at_us > now_us;
        if (usable && lot->kind == LOT_PACK)
            sum.pack += lot->remaining;
        else if (usable)
            sum.monthly += lot->remaining;
    }
    struct balance b;
    ledger_balance(a, now_us, &b);
    CHECK(b.pack == sum.pack && b.monthly == sum.monthly && b.total == sum.pack + sum.monthly);
    CHECK(a->has_plan == m->has_plan);
    CHECK(!a->has_plan || strcmp(a->plan, m->plan) == 0);
}

static struct mlot *m_find(struct maccount *m, int64_t lot_id)
{
    for (size_t i = 0; i < m->count; i++)
        if (m->lots[i].lot_id == lot_id)
            return &m->lots[i];
    return NULL;
}

/* The entries ledger_apply() wrote, against the model's, in order. */
static void check_entries(const struct entry_list *list, size_t from, const struct expected *x,
                          struct maccount *m)
{
    CHECK(list->count >= from);
    CHECK(list->count - from == x->entry_count);
    int64_t consumed = 0;
    for (size_t k = 0; k < x->entry_count; k++) {
        const struct entry *got = &list->items[from + k];
        const struct entry *want = &x->entries[k];
        CHECK(got->lot_id == want->lot_id && got->kind == want->kind);
        CHECK(got->delta == want->delta && got->job_index == want->job_index);
        CHECK(got->delta != 0);
        CHECK((got->delta > 0) == (got->kind == ENTRY_PURCHASE || got->kind == ENTRY_ALLOCATE));
        /* A rejection writes nothing but expire entries. */
        CHECK(x->error == JOB_OK || got->kind == ENTRY_EXPIRE);
        /* Only a consume's own entries carry its tool and ref. */
        CHECK((got->tool == NULL && got->ref == NULL) || got->kind == ENTRY_CONSUME);
        if (got->kind == ENTRY_CONSUME)
            consumed -= got->delta;
        struct mlot *l = m_find(m, got->lot_id);
        CHECK(l != NULL);
        l->entries_sum += got->delta;
    }
    CHECK(consumed == x->charged);
}

static void check_result(const struct result *r, const struct expected *x,
                         const struct balance *want)
{
    CHECK(r->error == x->error);
    CHECK(memchr(r->message, '\0', sizeof r->message) != NULL);
    CHECK((r->error == JOB_OK) == (r->message[0] == '\0'));
    CHECK(r->amounts[RESULT_CHARGED] == x->charged && r->amounts[RESULT_GRANTED] == x->granted);
    CHECK(r->amounts[RESULT_FORFEITED] == x->forfeited &&
          r->amounts[RESULT_EXPIRES_AT] == x->expires_at_ms);
    CHECK(r->balance.total == want->total && r->balance.pack == want->pack &&
          r->balance.monthly == want->monthly);
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
        s->plans[k] = (struct plan_info){c, c + extra};
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

/* One job through ledger_apply() and the model, then every check. */
static void run_job(struct fuzz_state *s, int user, struct job *job, struct ledger_input *in)
{
    struct account *a = &s->accounts[user];
    struct maccount *m = &s->model[user];
    snprintf(job->id, sizeof job->id, "job-%zu", s->job_index);
    memcpy(job->user, a->user, sizeof job->user);
    in->now_us = s->now_us;
    in->job_index = s->job_index++;
    if (job->type != JOB_CONSUME)
        in->new_lot_id = s->next_lot_id++;

    struct balance before;
    m_balance(m, s->now_us, &before);
    static struct expected x;
    m_apply(m, job, in, &x);

    size_t from = s->entries.count;
    struct result r;
    result_init_for_job(&r, job);
    ledger_apply(a, job, in, &s->entries, &r);

#ifdef FUZZ_LEDGER_TRACE /* triage: cc -DFUZZ_LEDGER_TRACE, see README.md */
    fprintf(stderr,
            "t=%lld job %zu user %d %s amount=%lld pack=%.8s plan=%.8s period=%s -> %s "
            "entries=%zu balance=%lld/%lld/%lld\n",
            (long long)s->now_us, in->job_index, user, job_type_name(job->type),
            (long long)job->consume.amount, job->purchase.pack, job->allocate.plan,
            job->allocate.period, r.error == JOB_OK ? "applied" : job_error_name(r.error),
            s->entries.count - from, (long long)r.balance.total, (long long)r.balance.pack,
            (long long)r.balance.monthly);
#endif
    check_entries(&s->entries, from, &x, m);
    struct balance after;
    m_balance(m, s->now_us, &after);
    check_result(&r, &x, &after);
    check_account(a, m, s->now_us);
    /* The identity fields are the caller's. */
    CHECK(strcmp(r.id, job->id) == 0 && strcmp(r.user, job->user) == 0 && r.type == job->type);
    if (job->type == JOB_ALLOCATE && r.error == JOB_OK) {
        /* Monthly lots never expire, so M is before.monthly. */
        int64_t cap = in->plan->rollover_cap, c = in->plan->monthly_credits;
        int64_t mc = before.monthly;
        int64_t want = mc + c < cap ? mc + c : cap;
        CHECK(after.monthly == want);
        CHECK(a->plan_changed);
    }
    if (r.error != JOB_OK)
        CHECK(after.total <= before.total); /* only expiry moved */
}

static void op_consume(struct fuzz_state *s, struct fuzz_bytes *in, int user, bool boundary)
{
    struct job job = {.type = JOB_CONSUME};
    if (boundary) {
        /* Exactly the balance, or one more. */
        struct balance b;
        m_balance(&s->model[user], s->now_us, &b);
        job.consume.amount = b.total + (fuzz_u8(in) & 1);
        if (job.consume.amount < JOB_AMOUNT_MIN || job.consume.amount > JOB_AMOUNT_MAX)
            return;
    } else {
        job.consume.amount = read_amount(in);
    }
    struct ledger_input input = {0};
    run_job(s, user, &job, &input);
}

static void op_purchase(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    if (account_full(s, user))
        return;
    uint8_t b = fuzz_u8(in);
    struct job job = {.type = JOB_PURCHASE};
    struct ledger_input input = {0};
    int pack = b % (PACKS + 1);
    input.pack = pack < PACKS ? &s->packs[pack] : NULL;
    input.payment_ref_used = ((b >> 2) & 3) == 3;
    if (b & 0x10) { /* the longest names: messages must still fit */
        fill(job.purchase.pack, 'p', JOB_PACK_BYTES_MAX);
        fill(job.purchase.payment_ref, 'r', JOB_PAYMENT_REF_BYTES_MAX);
    } else {
        snprintf(job.purchase.pack, sizeof job.purchase.pack, "pack%d", pack);
        snprintf(job.purchase.payment_ref, sizeof job.purchase.payment_ref, "pay-%zu",
                 s->job_index);
    }
    run_job(s, user, &job, &input);
}

static void op_allocate(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    if (account_full(s, user))
        return;
    uint8_t b = fuzz_u8(in);
    struct job job = {.type = JOB_ALLOCATE};
    struct ledger_input input = {0};
    int plan = b % (PLANS + 1);
    input.plan = plan < PLANS ? &s->plans[plan] : NULL;
    if (b & 0x10)
        fill(job.allocate.plan, 'q', JOB_PLAN_BYTES_MAX);
    else
        snprintf(job.allocate.plan, sizeof job.allocate.plan, "plan%d", plan);
    read_period(in, job.allocate.period);
    run_job(s, user, &job, &input);
}

/* Time moves on: a little, a lot, or to the edge of a lot's expiry. */
static void op_time(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    uint8_t b = fuzz_u8(in);
    switch (b & 7) {
    case 0:
        s->now_us += 1 + (b >> 3);
        break;
    case 1:
        s->now_us += (int64_t)(1 + (b >> 3)) * US_PER_HOUR;
        break;
    case 2:
    case 3:
        s->now_us += (int64_t)(1 + fuzz_u8(in)) * LEDGER_US_PER_DAY;
        break;
    case 4:
    case 5: {
        /* Onto a pack's expiry (it stops being usable), or just before it. */
        const struct maccount *m = &s->model[user];
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

/* A lot as the store would load it: any remaining, any expiry for packs. */
static void op_load_lot(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    if (account_full(s, user))
        return;
    uint8_t b = fuzz_u8(in);
    struct lot lot = {.lot_id = s->next_lot_id++, .kind = (b & 1) ? LOT_MONTHLY : LOT_PACK};
    lot.granted = read_credits(in);
    uint8_t spent = fuzz_u8(in);
    lot.remaining = spent == 0 ? 0 : spent >= 128 ? lot.granted : lot.granted * spent / 128;
    lot.granted_at_us = s->now_us - (int64_t)fuzz_un(in, 2) * US_PER_HOUR;
    if (lot.kind == LOT_PACK) {
        lot.expires_at_us =
            s->now_us + ((int64_t)(int8_t)fuzz_u8(in)) * LEDGER_US_PER_DAY + ((b >> 1) & 3) - 1;
    } else {
        lot.expires_at_us = LEDGER_NO_EXPIRY;
        read_period(in, lot.period);
        const struct maccount *m = &s->model[user];
        for (size_t i = 0; i < m->count; i++) /* one monthly lot per period */
            if (m->lots[i].kind == LOT_MONTHLY && strcmp(m->lots[i].period, lot.period) == 0)
                return;
    }
    struct lot *copy = ledger_account_add_lot(&s->accounts[user], &lot);
    CHECK(copy->lot_id == lot.lot_id && copy->remaining == lot.remaining);
    m_add(&s->model[user], &lot);
    check_account(&s->accounts[user], &s->model[user], s->now_us);
}

/* Commit and load again: what the store writes back and reads next time
 * (spent packs are not loaded; monthly lots always are), in another order. */
static void op_reload(struct fuzz_state *s, struct fuzz_bytes *in, int user)
{
    struct maccount *m = &s->model[user];
    struct account *a = &s->accounts[user];
    size_t kept = 0;
    for (size_t i = 0; i < m->count; i++) {
        struct mlot l = m->lots[i];
        if (l.kind == LOT_PACK && l.remaining == 0)
            continue;
        l.is_new = false;
        l.changed = false;
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
                          .expires_at_us = l->expires_at_us};
        memcpy(lot.period, l->period, sizeof lot.period);
        ledger_account_add_lot(&fresh, &lot);
    }
    ledger_account_free(a);
    *a = fresh;
    check_account(a, m, s->now_us);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_state s;
    memset(&s, 0, sizeof s);
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
        int user = (b >> 3) % USERS;
        switch (b & 7) {
        case 0:
            op_consume(&s, &in, user, false);
            break;
        case 1:
            op_consume(&s, &in, user, (b >> 5) & 1);
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
        default:
            /* An entry list that starts empty again (the next batch). */
            ledger_entries_free(&s.entries);
            break;
        }
    }
    for (int u = 0; u < USERS; u++)
        ledger_account_free(&s.accounts[u]);
    ledger_entries_free(&s.entries);
    return 0;
}
