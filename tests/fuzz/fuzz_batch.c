/*
 * fuzz_batch.c -- libFuzzer target for the batch planner (core/batch.c).
 *
 * The input is a list of jobs of all ten types drawn from small pools (IDs,
 * users, payment references, catalog names; the holds captures and releases
 * name and the charges refunds name come from the same pool of IDs), so that
 * replays, id_conflicts, duplicate payments, in-batch repeats and references
 * to earlier jobs are common, and where to cut it into batches, with the
 * clock moving between batches. The jobs run twice against an in-memory
 * database that loads and writes back what the store does
 * (tests/unit/store_model.h, shared with tests/unit/test_batch.c): cut as the
 * input says, and one job per batch at the same times. Checked:
 *   - both runs publish the same bytes for every job, and end with the same
 *     ledger (job rows, lots, entries, holds, plans);
 *   - each job ID is decided once; a later job with that ID is a replay of
 *     the stored result when its fields are the same, else an id_conflict,
 *     and neither writes an entry or a lot;
 *   - what an oracle kept from the run says of the outcome: a payment
 *     reference grants credits once in all; a capture or release naming no
 *     applied hold of its user is unknown_hold, a refund naming no applied
 *     consume or capture of its user unknown_charge, a revoke naming no
 *     purchase of its user unknown_payment, a cancel without a plan no_plan;
 *     applied results carry the amounts their jobs ask for;
 *   - after every batch, the database's rules of contract 5 and 9.4: every
 *     lot 0 <= remaining <= granted and equal to its entries, a revoked lot
 *     empty, a hold's entries took its amount and a closed hold's amount is
 *     what it charged plus what it gave back, no charge refunded above what
 *     it spent; each user's last decided job reports the balance the database
 *     then holds, `held` the user's open holds;
 *   - batch_reset() and deciding again gives the same bytes and entries;
 *   - batch_users() and friends return sorted, distinct keys covering the jobs.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/codec.h"
#include "fuzz_util.h"

#define MODEL_CHECK(cond) CHECK(cond)
#include "../unit/store_model.h"

#define JOBS_MAX 48
#define IDS 12
#define NOW_START INT64_C(1790000000000000)
#define US_PER_S INT64_C(1000000)
#define US_PER_HOUR (3600 * US_PER_S)

static const struct batch_pack catalog_packs[] = {{"small", {100, 1}}, {"big", {1000, 30}}};
static const struct batch_plan catalog_plans[] = {{"basic", {50, 100, 0}}, {"pro", {300, 600, 0}}};
static const char *const pack_names[] = {"small", "big", "gone"};
static const char *const plan_names[] = {"basic", "pro", "gone"};
static const char *const user_names[] = {"hot", "u1", "u2"};

static void model_start(struct model *m)
{
    model_init(m, catalog_packs, 2, catalog_plans, 2);
}

/* ------------------------------------------------------------------------ */
/* What the batch asks the store for                                        */
/* ------------------------------------------------------------------------ */

/* Checks that keys[0..n) are sorted, distinct, and hold `field` of every job
 * of `type` (all jobs when type < 0). */
static void check_keys(const struct batch *b, const char **keys, size_t n, int type, size_t offset)
{
    for (size_t k = 1; k < n; k++)
        CHECK(strcmp(keys[k - 1], keys[k]) < 0);
    for (size_t i = 0; i < b->job_count; i++) {
        const struct job *job = &b->jobs[i].job;
        if (type >= 0 && (int)job->type != type)
            continue;
        const char *want = (const char *)job + offset;
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
            found = strcmp(keys[k], want) == 0;
        CHECK(found);
    }
}

static void check_need_keys(const struct batch *b)
{
    const char *keys[JOBS_MAX];
    size_t n = batch_users(b, keys);
    CHECK(n == b->account_count);
    check_keys(b, keys, n, -1, offsetof(struct job, user));
    for (size_t i = 0; i < n; i++)
        CHECK(strcmp(b->accounts[i].user, keys[i]) == 0);
    static const struct {
        enum job_need need;
        enum job_type type;
        size_t offset;
    } fields[] = {
        {NEED_PAYMENT_REF, JOB_PURCHASE, offsetof(struct job, purchase.payment_ref)},
        {NEED_PAYMENT_REF, JOB_REVOKE, offsetof(struct job, revoke.payment_ref)},
        {NEED_PACK, JOB_PURCHASE, offsetof(struct job, purchase.pack)},
        {NEED_PLAN, JOB_ALLOCATE, offsetof(struct job, allocate.plan)},
        {NEED_HOLD, JOB_CAPTURE, offsetof(struct job, capture.hold)},
        {NEED_HOLD, JOB_RELEASE, offsetof(struct job, release.hold)},
        {NEED_CHARGE, JOB_REFUND, offsetof(struct job, refund.charge)},
    };
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        n = batch_need_keys(b, fields[f].need, keys);
        check_keys(b, keys, n, (int)fields[f].type, fields[f].offset);
    }
}

/* ------------------------------------------------------------------------ */
/* The oracle: what the contract says of each job's outcome                 */
/* ------------------------------------------------------------------------ */

struct decided {
    struct job job;
    enum job_error error;
    msgpack_sbuffer result; /* as first published */
};

struct oracle {
    struct decided first[JOBS_MAX];
    size_t count;
    bool has_plan[3]; /* by user_names[] */
};

static bool opt_str_same(bool has_a, const char *a, bool has_b, const char *b)
{
    return has_a == has_b && (!has_a || strcmp(a, b) == 0);
}

static bool opt_int_same(bool has_a, int64_t a, bool has_b, int64_t b)
{
    return has_a == has_b && (!has_a || a == b);
}

/* "The same job" (contract 4 and 9.3): type, user and the type's own keys,
 * an absent optional key and a present one differing. */
static bool same_request(const struct job *a, const struct job *b)
{
    if (a->type != b->type || strcmp(a->user, b->user) != 0)
        return false;
    switch (a->type) {
    case JOB_CONSUME:
        return a->consume.amount == b->consume.amount &&
               opt_str_same(a->consume.has_tool, a->consume.tool, b->consume.has_tool,
                            b->consume.tool) &&
               opt_str_same(a->consume.has_ref, a->consume.ref, b->consume.has_ref, b->consume.ref);
    case JOB_PURCHASE:
        return strcmp(a->purchase.pack, b->purchase.pack) == 0 &&
               strcmp(a->purchase.payment_ref, b->purchase.payment_ref) == 0;
    case JOB_ALLOCATE:
        return strcmp(a->allocate.plan, b->allocate.plan) == 0 &&
               strcmp(a->allocate.period, b->allocate.period) == 0;
    case JOB_HOLD:
        return a->hold.amount == b->hold.amount &&
               opt_int_same(a->hold.has_ttl, a->hold.ttl, b->hold.has_ttl, b->hold.ttl) &&
               opt_str_same(a->hold.has_tool, a->hold.tool, b->hold.has_tool, b->hold.tool) &&
               opt_str_same(a->hold.has_ref, a->hold.ref, b->hold.has_ref, b->hold.ref);
    case JOB_CAPTURE:
        return strcmp(a->capture.hold, b->capture.hold) == 0 &&
               a->capture.amount == b->capture.amount;
    case JOB_RELEASE:
        return strcmp(a->release.hold, b->release.hold) == 0;
    case JOB_REFUND:
        return strcmp(a->refund.charge, b->refund.charge) == 0 &&
               opt_int_same(a->refund.has_amount, a->refund.amount, b->refund.has_amount,
                            b->refund.amount);
    case JOB_REVOKE:
        return strcmp(a->revoke.payment_ref, b->revoke.payment_ref) == 0;
    case JOB_GRANT:
        return a->grant.amount == b->grant.amount &&
               opt_int_same(a->grant.has_valid_days, a->grant.valid_days, b->grant.has_valid_days,
                            b->grant.valid_days) &&
               opt_str_same(a->grant.has_reason, a->grant.reason, b->grant.has_reason,
                            b->grant.reason);
    case JOB_CANCEL:
        return opt_int_same(a->cancel.has_forfeit, a->cancel.forfeit, b->cancel.has_forfeit,
                            b->cancel.forfeit);
    }
    abort();
}

static struct result decode(const msgpack_sbuffer *bytes)
{
    struct result r;
    CHECK(codec_decode_result(bytes->data, bytes->size, &r) == 0);
    return r;
}

/* The first applied job with this ID of `type` and `user`, or NULL. */
static const struct decided *applied(const struct oracle *o, const char *id, enum job_type type,
                                     const char *user)
{
    for (size_t i = 0; i < o->count; i++) {
        const struct decided *d = &o->first[i];
        if (strcmp(d->job.id, id) == 0)
            return d->error == JOB_OK && d->job.type == type && strcmp(d->job.user, user) == 0
                       ? d
                       : NULL;
    }
    return NULL;
}

/* An applied purchase of `user` with this payment reference (any user's
 * when user is NULL). */
static bool ref_granted(const struct oracle *o, const char *ref, const char *user)
{
    for (size_t i = 0; i < o->count; i++) {
        const struct decided *d = &o->first[i];
        if (d->error == JOB_OK && d->job.type == JOB_PURCHASE &&
            strcmp(d->job.purchase.payment_ref, ref) == 0 &&
            (user == NULL || strcmp(d->job.user, user) == 0))
            return true;
    }
    return false;
}

static size_t user_index(const char *user)
{
    for (size_t u = 0; u < 3; u++)
        if (strcmp(user_names[u], user) == 0)
            return u;
    abort();
}

/* The sum of the deltas of entries of `kind` job `index` wrote. */
static int64_t entries_of(const struct batch *b, size_t index, enum entry_kind kind)
{
    int64_t sum = 0;
    for (size_t e = 0; e < b->entries.count; e++) {
        const struct entry *en = &b->entries.items[e];
        if (en->job_index == index && en->kind == kind && en->job_id == NULL)
            sum += en->delta;
    }
    return sum;
}

/* A new decision, against what came before it in the run. */
static void oracle_check_new(struct oracle *o, const struct batch *b, size_t index,
                             const struct result *r)
{
    const struct job *job = &b->jobs[index].job;
    size_t u = user_index(job->user);
    switch (job->type) {
    case JOB_CONSUME:
        if (r->error == JOB_OK)
            CHECK(-entries_of(b, index, ENTRY_CONSUME) == job->consume.amount);
        break;
    case JOB_PURCHASE: {
        bool known = strcmp(job->purchase.pack, "gone") != 0;
        bool used = ref_granted(o, job->purchase.payment_ref, NULL);
        CHECK(r->error == (!known ? JOB_ERR_UNKNOWN_PACK
                           : used ? JOB_ERR_DUPLICATE_PAYMENT
                                  : JOB_OK));
        break;
    }
    case JOB_ALLOCATE:
        if (strcmp(job->allocate.plan, "gone") == 0)
            CHECK(r->error == JOB_ERR_UNKNOWN_PLAN);
        if (r->error == JOB_OK)
            o->has_plan[u] = true;
        break;
    case JOB_HOLD:
        if (r->error == JOB_OK)
            CHECK(-entries_of(b, index, ENTRY_HOLD) == job->hold.amount);
        break;
    case JOB_CAPTURE: {
        const struct decided *h = applied(o, job->capture.hold, JOB_HOLD, job->user);
        if (h == NULL)
            CHECK(r->error == JOB_ERR_UNKNOWN_HOLD);
        if (r->error == JOB_OK)
            CHECK(r->amounts[RESULT_CHARGED] + r->amounts[RESULT_RELEASED] == h->job.hold.amount);
        break;
    }
    case JOB_RELEASE: {
        const struct decided *h = applied(o, job->release.hold, JOB_HOLD, job->user);
        if (h == NULL)
            CHECK(r->error == JOB_ERR_UNKNOWN_HOLD);
        if (r->error == JOB_OK)
            CHECK(r->amounts[RESULT_RELEASED] == h->job.hold.amount);
        break;
    }
    case JOB_REFUND:
        if (applied(o, job->refund.charge, JOB_CONSUME, job->user) == NULL &&
            applied(o, job->refund.charge, JOB_CAPTURE, job->user) == NULL)
            CHECK(r->error == JOB_ERR_UNKNOWN_CHARGE);
        if (r->error == JOB_OK && job->refund.has_amount)
            CHECK(r->amounts[RESULT_REFUNDED] == job->refund.amount);
        break;
    case JOB_REVOKE:
        if (!ref_granted(o, job->revoke.payment_ref, job->user))
            CHECK(r->error == JOB_ERR_UNKNOWN_PAYMENT);
        break;
    case JOB_GRANT:
        CHECK(r->error == JOB_OK); /* never rejected for a reason of the ledger */
        CHECK(r->amounts[RESULT_GRANTED] == job->grant.amount);
        CHECK(result_has_amount(r, RESULT_EXPIRES_AT) == job->grant.has_valid_days);
        break;
    case JOB_CANCEL:
        CHECK((r->error == JOB_ERR_NO_PLAN) == !o->has_plan[u]);
        if (r->error == JOB_OK) {
            o->has_plan[u] = false;
            if (!job->cancel.has_forfeit || !job->cancel.forfeit)
                CHECK(r->amounts[RESULT_FORFEITED] == 0);
        }
        break;
    }
}

/* The job's outcome and result against what came before it in the run. */
static void oracle_check(struct oracle *o, const struct batch *b, size_t index)
{
    const struct batch_job *bj = &b->jobs[index];
    struct result r = decode(&bj->encoded);
#ifdef FUZZ_BATCH_TRACE /* triage: cc -DFUZZ_BATCH_TRACE, see README.md */
    static const char *const outcomes[] = {"undecided", "decided", "replay", "conflict"};
    fprintf(stderr, "t=%lld %s %s %s -> %s %s (%s) balance=%lld held=%lld\n", (long long)b->now_us,
            bj->job.id, job_type_name(bj->job.type), bj->job.user, outcomes[bj->outcome],
            r.error == JOB_OK ? "applied" : job_error_name(r.error), r.message,
            (long long)r.balance.total, (long long)r.balance.held);
#endif
    CHECK(r.has_id && strcmp(r.id, bj->job.id) == 0);
    const struct decided *d = NULL;
    for (size_t i = 0; i < o->count && d == NULL; i++)
        if (strcmp(o->first[i].job.id, bj->job.id) == 0)
            d = &o->first[i];
    if (d != NULL && !same_request(&d->job, &bj->job)) {
        CHECK(bj->outcome == BATCH_CONFLICT);
        CHECK(r.error == JOB_ERR_ID_CONFLICT && !r.replayed);
        CHECK(r.has_type && r.type == bj->job.type && r.has_user &&
              strcmp(r.user, bj->job.user) == 0);
        CHECK(r.done_at_ms == b->now_us / 1000);
        return;
    }
    if (d != NULL) {
        /* The stored result again, byte for byte but for `replayed`. */
        CHECK(bj->outcome == BATCH_REPLAY);
        CHECK(r.replayed);
        r.replayed = false;
        msgpack_sbuffer again;
        msgpack_sbuffer_init(&again);
        CHECK(codec_encode_result(&r, &again) == 0);
        CHECK(again.size == d->result.size && memcmp(again.data, d->result.data, again.size) == 0);
        msgpack_sbuffer_destroy(&again);
        return;
    }
    CHECK(bj->outcome == BATCH_DECIDED);
    CHECK(!r.replayed && r.done_at_ms == b->now_us / 1000);
    CHECK(r.error == JOB_OK || job_error_is_stored(r.error));
    oracle_check_new(o, b, index, &r);
    CHECK(o->count < JOBS_MAX);
    struct decided *nd = &o->first[o->count++];
    nd->job = bj->job;
    nd->error = r.error;
    msgpack_sbuffer_init(&nd->result);
    CHECK(msgpack_sbuffer_write(&nd->result, bj->encoded.data, bj->encoded.size) == 0);
}

static void oracle_free(struct oracle *o)
{
    for (size_t i = 0; i < o->count; i++)
        msgpack_sbuffer_destroy(&o->first[i].result);
    memset(o, 0, sizeof *o);
}

/* ------------------------------------------------------------------------ */
/* Runs                                                                     */
/* ------------------------------------------------------------------------ */

struct plan {
    struct job jobs[JOBS_MAX];
    size_t count;
    bool cut_after[JOBS_MAX];
    int64_t now_us[JOBS_MAX]; /* the time of the batch each job is in */
    bool retry[JOBS_MAX];     /* batch_reset() and decide again (first job) */
};

/* The fields of a new job of `job->type`; `f` and `g` are its bytes. */
static void read_fields(struct job *job, uint8_t f, uint8_t g)
{
    static const int64_t ttls[] = {60, 3600, 86400};
    char id[8];
    snprintf(id, sizeof id, "j%u", g % IDS); /* an ID of the pool: maybe an earlier job */
    switch (job->type) {
    case JOB_CONSUME:
        job->consume.amount = 1 + g % 160;
        job->consume.has_tool = f & 1;
        job->consume.has_ref = f & 2;
        if (job->consume.has_tool && (f & 4))
            strcpy(job->consume.tool, "gen");
        if (job->consume.has_ref && (f & 8))
            strcpy(job->consume.ref, "r1");
        break;
    case JOB_PURCHASE:
        strcpy(job->purchase.pack, pack_names[f % 3]);
        snprintf(job->purchase.payment_ref, sizeof job->purchase.payment_ref, "pay%u",
                 (f >> 2) % 5);
        break;
    case JOB_ALLOCATE:
        strcpy(job->allocate.plan, plan_names[f % 3]);
        snprintf(job->allocate.period, sizeof job->allocate.period, "2026-%02u", 1 + (f >> 2) % 8);
        break;
    case JOB_HOLD:
        job->hold.amount = 1 + g % 120;
        job->hold.has_ttl = (f & 3) != 0;
        job->hold.ttl = ttls[(f & 3) % 3];
        job->hold.has_tool = f & 4;
        strcpy(job->hold.tool, "render");
        break;
    case JOB_CAPTURE:
        strcpy(job->capture.hold, id);
        job->capture.amount = f % 80;
        break;
    case JOB_RELEASE:
        strcpy(job->release.hold, id);
        break;
    case JOB_REFUND:
        strcpy(job->refund.charge, id);
        job->refund.has_amount = f & 1;
        job->refund.amount = 1 + (f >> 1) % 60;
        break;
    case JOB_REVOKE:
        snprintf(job->revoke.payment_ref, sizeof job->revoke.payment_ref, "pay%u", (f >> 2) % 5);
        break;
    case JOB_GRANT:
        job->grant.amount = 1 + g % 200;
        job->grant.has_valid_days = f & 1;
        job->grant.valid_days = 1 + (f >> 1) % 3;
        job->grant.has_reason = f & 0x10;
        break;
    case JOB_CANCEL:
        job->cancel.has_forfeit = f & 1;
        job->cancel.forfeit = f & 2;
        break;
    }
}

static void read_job(struct fuzz_bytes *in, struct plan *p, struct job *job)
{
    uint8_t b = fuzz_u8(in);
    if ((b & 0xc0) == 0xc0 && p->count > 0) {
        *job = p->jobs[fuzz_u8(in) % p->count]; /* the same job again */
        job->reply = b & 1;
        return;
    }
    memset(job, 0, sizeof *job);
    job->type = (enum job_type)((b & 0x3f) % JOB_TYPE_COUNT);
    uint8_t w = fuzz_u8(in);
    snprintf(job->user, sizeof job->user, "%s", user_names[(w >> 4) % 3]);
    snprintf(job->id, sizeof job->id, "j%u", (w & 15) % IDS);
    job->reply = (w >> 6) & 1;
    uint8_t f = fuzz_u8(in), g = fuzz_u8(in);
    read_fields(job, f, g);
}

static void read_plan(struct fuzz_bytes *in, struct plan *p)
{
    memset(p, 0, sizeof *p);
    int64_t now = NOW_START;
    while (p->count < JOBS_MAX && !fuzz_empty(in)) {
        read_job(in, p, &p->jobs[p->count]);
        uint8_t c = fuzz_u8(in);
        p->now_us[p->count] = now;
        p->cut_after[p->count] = c & 1;
        p->retry[p->count] = (c & 0x30) == 0x30;
        if (c & 1) { /* the next batch is later: 0 to 35 hours, or a minute */
            if (c & 0x40)
                now += (1 + ((c >> 1) & 1)) * 30 * US_PER_S;
            else
                now += ((c >> 1) % 8) * 5 * US_PER_HOUR + (c >> 7);
        }
        p->count++;
    }
    if (p->count > 0)
        p->cut_after[p->count - 1] = true;
}

/* Decides jobs[start, start + n) as one batch at `now_us`; publishes each
 * job's bytes into out[]. */
static void run_batch(struct model *m, struct oracle *o, const struct plan *p, size_t start,
                      size_t n, bool retry, msgpack_sbuffer *out)
{
    static struct batch_job bjs[JOBS_MAX];
    memset(bjs, 0, sizeof bjs);
    for (size_t i = 0; i < n; i++)
        bjs[i].job = p->jobs[start + i];
    struct batch b;
    batch_init(&b, bjs, n);
    check_need_keys(&b);
    model_load(m, &b, p->now_us[start]);
    CHECK(batch_decide(&b) == 0);
    if (retry) {
        /* A retry of the same jobs decides the same. */
        static msgpack_sbuffer before[JOBS_MAX];
        for (size_t i = 0; i < n; i++) {
            msgpack_sbuffer_init(&before[i]);
            CHECK(msgpack_sbuffer_write(&before[i], bjs[i].encoded.data, bjs[i].encoded.size) == 0);
        }
        size_t entry_count = b.entries.count;
        int64_t reserved = m->next_lot_id;
        batch_reset(&b);
        m->next_lot_id -= (int64_t)batch_new_lot_count(&b); /* the same IDs again */
        model_load(m, &b, p->now_us[start]);
        CHECK(m->next_lot_id == reserved);
        CHECK(batch_decide(&b) == 0);
        CHECK(b.entries.count == entry_count);
        for (size_t i = 0; i < n; i++) {
            CHECK(before[i].size == bjs[i].encoded.size &&
                  memcmp(before[i].data, bjs[i].encoded.data, before[i].size) == 0);
            msgpack_sbuffer_destroy(&before[i]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        CHECK(bjs[i].outcome != BATCH_UNDECIDED);
        if (o != NULL)
            oracle_check(o, &b, i);
        msgpack_sbuffer_init(&out[start + i]);
        CHECK(msgpack_sbuffer_write(&out[start + i], bjs[i].encoded.data, bjs[i].encoded.size) ==
              0);
    }
    model_write(m, &b);
    model_check(m);
    model_check_last_balances(m, &b);
    batch_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct plan p;
    static struct model cut, one;
    static struct oracle o;
    static msgpack_sbuffer out_cut[JOBS_MAX], out_one[JOBS_MAX];
    struct fuzz_bytes in = {data, size, 0};
    read_plan(&in, &p);

    model_start(&cut);
    model_start(&one);
    memset(&o, 0, sizeof o);
    for (size_t start = 0; start < p.count;) {
        size_t n = 1;
        while (!p.cut_after[start + n - 1])
            n++;
        run_batch(&cut, &o, &p, start, n, p.retry[start], out_cut);
        start += n;
    }
    for (size_t i = 0; i < p.count; i++)
        run_batch(&one, NULL, &p, i, 1, false, out_one);

    for (size_t i = 0; i < p.count; i++) {
        CHECK(out_cut[i].size == out_one[i].size &&
              memcmp(out_cut[i].data, out_one[i].data, out_cut[i].size) == 0);
        msgpack_sbuffer_destroy(&out_cut[i]);
        msgpack_sbuffer_destroy(&out_one[i]);
    }
    model_check_same(&cut, &one);
    CHECK(cut.job_count == one.job_count && cut.job_count == o.count);
    oracle_free(&o);
    model_free(&cut);
    model_free(&one);
    return 0;
}
