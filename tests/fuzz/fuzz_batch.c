/*
 * fuzz_batch.c -- libFuzzer target for the batch planner (core/batch.c).
 *
 * The input is a list of jobs drawn from small pools (IDs, users, payment
 * references, catalog names), so that replays, id_conflicts, duplicate
 * payments and in-batch repeats are common, and where to cut it into
 * batches, with the clock moving between batches. The jobs run twice
 * against an in-memory database that loads and writes back what the store
 * does (as tests/unit/test_batch.c): cut as the input says, and one job per
 * batch at the same times. Checked:
 *   - both runs publish the same bytes for every job, and end with the same
 *     lots (a job's outcome does not depend on the batching);
 *   - each job ID is decided once; a later job with that ID is a replay of
 *     the stored result when its fields are the same, else an id_conflict,
 *     and neither writes an entry or a lot;
 *   - a payment reference grants credits once in all;
 *   - every lot stays 0 <= remaining <= granted and equals its entries;
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

#define JOBS_MAX 48
#define LOTS_MAX JOBS_MAX
#define NOW_START INT64_C(1790000000000000)
#define US_PER_HOUR INT64_C(3600000000)

static const struct batch_pack catalog_packs[] = {{"small", {100, 1}}, {"big", {1000, 30}}};
static const struct batch_plan catalog_plans[] = {{"basic", {50, 100}}, {"pro", {300, 600}}};
static const char *const pack_names[] = {"small", "big", "gone"};
static const char *const plan_names[] = {"basic", "pro", "gone"};
static const char *const user_names[] = {"hot", "u1", "u2"};

/* ------------------------------------------------------------------------ */
/* The model database                                                       */
/* ------------------------------------------------------------------------ */

struct model_job {
    char id[JOB_ID_BYTES_MAX + 1];
    msgpack_sbuffer request;
    msgpack_sbuffer result;
};

struct model_lot {
    char user[JOB_USER_BYTES_MAX + 1];
    struct lot lot;
    char payment_ref[JOB_PAYMENT_REF_BYTES_MAX + 1];
    int64_t entries_sum;
};

struct model {
    struct model_job jobs[JOBS_MAX];
    size_t job_count;
    struct model_lot lots[LOTS_MAX];
    size_t lot_count;
    int64_t next_lot_id;
};

static void model_free(struct model *m)
{
    for (size_t i = 0; i < m->job_count; i++) {
        msgpack_sbuffer_destroy(&m->jobs[i].request);
        msgpack_sbuffer_destroy(&m->jobs[i].result);
    }
    m->job_count = 0;
}

/* Checks that what batch_users() and friends returned is sorted, distinct,
 * and holds `field` of every job of `type` (all jobs when type < 0). */
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

/* What the store loads for a batch: stored decisions of its IDs, its users'
 * lots (packs with credits left, every monthly lot), the payment references
 * already granted, the catalog rows it names, and reserved lot IDs. */
static void model_load(struct model *m, struct batch *b, int64_t now_us)
{
    b->now_us = now_us;
    const char *keys[JOBS_MAX];
    size_t n = batch_users(b, keys);
    CHECK(n == b->account_count);
    check_keys(b, keys, n, -1, offsetof(struct job, user));
    for (size_t i = 0; i < n; i++)
        CHECK(strcmp(b->accounts[i].user, keys[i]) == 0);

    for (size_t i = 0; i < m->job_count; i++) {
        const struct model_job *mj = &m->jobs[i];
        bool wanted = false;
        for (size_t k = 0; k < b->job_count; k++)
            wanted = wanted || strcmp(b->jobs[k].job.id, mj->id) == 0;
        if (wanted)
            CHECK(batch_set_stored(b, mj->id, mj->request.data, mj->request.size, mj->result.data,
                                   mj->result.size));
    }
    for (size_t i = 0; i < m->lot_count; i++) {
        const struct model_lot *ml = &m->lots[i];
        bool wanted = ml->lot.remaining > 0 || ml->lot.kind == LOT_MONTHLY;
        if (wanted && batch_account(b, ml->user))
            CHECK(batch_add_lot(b, ml->user, &ml->lot));
    }
    n = batch_need_keys(b, NEED_PAYMENT_REF, keys);
    check_keys(b, keys, n, JOB_PURCHASE, offsetof(struct job, purchase.payment_ref));
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < m->lot_count; i++)
            if (m->lots[i].lot.kind == LOT_PACK && strcmp(m->lots[i].payment_ref, keys[k]) == 0)
                batch_add_used_ref(b, keys[k]);
    n = batch_need_keys(b, NEED_PACK, keys);
    check_keys(b, keys, n, JOB_PURCHASE, offsetof(struct job, purchase.pack));
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < 2; i++)
            if (strcmp(keys[k], catalog_packs[i].id) == 0)
                batch_add_pack(b, catalog_packs[i].id, &catalog_packs[i].info);
    n = batch_need_keys(b, NEED_PLAN, keys);
    check_keys(b, keys, n, JOB_ALLOCATE, offsetof(struct job, allocate.plan));
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < 2; i++)
            if (strcmp(keys[k], catalog_plans[i].id) == 0)
                batch_add_plan(b, catalog_plans[i].id, &catalog_plans[i].info);
    for (size_t i = 0; i < batch_new_lot_count(b); i++)
        batch_add_lot_id(b, m->next_lot_id++);
}

static struct model_lot *model_find_lot(struct model *m, int64_t lot_id)
{
    for (size_t i = 0; i < m->lot_count; i++)
        if (m->lots[i].lot.lot_id == lot_id)
            return &m->lots[i];
    return NULL;
}

/* What the store writes back after batch_decide(). */
static void model_write(struct model *m, const struct batch *b)
{
    for (size_t i = 0; i < b->job_count; i++) {
        const struct batch_job *bj = &b->jobs[i];
        if (bj->outcome != BATCH_DECIDED)
            continue;
        for (size_t k = 0; k < m->job_count; k++)
            CHECK(strcmp(m->jobs[k].id, bj->job.id) != 0); /* decided once */
        CHECK(m->job_count < JOBS_MAX);
        struct model_job *mj = &m->jobs[m->job_count++];
        strcpy(mj->id, bj->job.id);
        msgpack_sbuffer_init(&mj->request);
        msgpack_sbuffer_init(&mj->result);
        CHECK(msgpack_sbuffer_write(&mj->request, bj->request.data, bj->request.size) == 0);
        CHECK(msgpack_sbuffer_write(&mj->result, bj->encoded.data, bj->encoded.size) == 0);
    }
    for (size_t a = 0; a < b->account_count; a++) {
        const struct account *account = &b->accounts[a];
        for (size_t l = 0; l < account->lot_count; l++) {
            const struct lot *lot = &account->lots[l];
            if (lot->is_new) {
                CHECK(lot->job_index < b->job_count);
                const struct batch_job *maker = &b->jobs[lot->job_index];
                CHECK(maker->outcome == BATCH_DECIDED && maker->result.error == JOB_OK);
                CHECK(strcmp(maker->job.user, account->user) == 0);
                CHECK(m->lot_count < LOTS_MAX);
                CHECK(model_find_lot(m, lot->lot_id) == NULL);
                struct model_lot *ml = &m->lots[m->lot_count++];
                memset(ml, 0, sizeof *ml);
                strcpy(ml->user, account->user);
                ml->lot = *lot;
                ml->lot.is_new = ml->lot.changed = false;
                strcpy(ml->payment_ref, maker->job.purchase.payment_ref);
            } else if (lot->changed) {
                struct model_lot *ml = model_find_lot(m, lot->lot_id);
                CHECK(ml != NULL);
                ml->lot.remaining = lot->remaining;
            }
        }
    }
    for (size_t e = 0; e < b->entries.count; e++) {
        const struct entry *en = &b->entries.items[e];
        CHECK(en->job_index < b->job_count);
        const struct batch_job *bj = &b->jobs[en->job_index];
        CHECK(bj->outcome == BATCH_DECIDED); /* no entry for replays, conflicts */
        struct model_lot *ml = model_find_lot(m, en->lot_id);
        CHECK(ml != NULL);
        CHECK(strcmp(ml->user, bj->job.user) == 0);
        ml->entries_sum += en->delta;
    }
    for (size_t i = 0; i < m->lot_count; i++) {
        const struct lot *lot = &m->lots[i].lot;
        CHECK(0 <= lot->remaining && lot->remaining <= lot->granted);
        CHECK(lot->remaining == m->lots[i].entries_sum);
    }
}

/* ------------------------------------------------------------------------ */
/* The oracle: what the contract says each job's outcome is                 */
/* ------------------------------------------------------------------------ */

struct decided {
    struct job job;
    msgpack_sbuffer result; /* as first published */
};

struct oracle {
    struct decided first[JOBS_MAX];
    size_t count;
    char granted_refs[JOBS_MAX][JOB_PAYMENT_REF_BYTES_MAX + 1];
    size_t granted_ref_count;
};

/* "The same job" (contract section 3): type, user and the type's fields. */
static bool same_request(const struct job *a, const struct job *b)
{
    if (a->type != b->type || strcmp(a->user, b->user) != 0)
        return false;
    switch (a->type) {
    case JOB_CONSUME:
        return a->consume.amount == b->consume.amount &&
               a->consume.has_tool == b->consume.has_tool &&
               (!a->consume.has_tool || strcmp(a->consume.tool, b->consume.tool) == 0) &&
               a->consume.has_ref == b->consume.has_ref &&
               (!a->consume.has_ref || strcmp(a->consume.ref, b->consume.ref) == 0);
    case JOB_PURCHASE:
        return strcmp(a->purchase.pack, b->purchase.pack) == 0 &&
               strcmp(a->purchase.payment_ref, b->purchase.payment_ref) == 0;
    case JOB_ALLOCATE:
        return strcmp(a->allocate.plan, b->allocate.plan) == 0 &&
               strcmp(a->allocate.period, b->allocate.period) == 0;
    }
    abort();
}

static struct result decode(const msgpack_sbuffer *bytes)
{
    struct result r;
    CHECK(codec_decode_result(bytes->data, bytes->size, &r) == 0);
    return r;
}

static bool ref_granted(const struct oracle *o, const char *ref)
{
    for (size_t i = 0; i < o->granted_ref_count; i++)
        if (strcmp(o->granted_refs[i], ref) == 0)
            return true;
    return false;
}

/* The job's outcome and result against what came before it in the run. */
static void oracle_check(struct oracle *o, const struct batch *b, size_t index)
{
    const struct batch_job *bj = &b->jobs[index];
    struct result r = decode(&bj->encoded);
#ifdef FUZZ_BATCH_TRACE /* triage: cc -DFUZZ_BATCH_TRACE, see README.md */
    static const char *const outcomes[] = {"undecided", "decided", "replay", "conflict"};
    fprintf(stderr, "t=%lld %s %s %s -> %s %s balance=%lld\n", (long long)b->now_us, bj->job.id,
            job_type_name(bj->job.type), bj->job.user, outcomes[bj->outcome],
            r.error == JOB_OK ? "applied" : job_error_name(r.error), (long long)r.balance.total);
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
    if (bj->job.type == JOB_PURCHASE) {
        bool known = strcmp(bj->job.purchase.pack, "gone") != 0;
        bool used = ref_granted(o, bj->job.purchase.payment_ref);
        CHECK(r.error == (!known ? JOB_ERR_UNKNOWN_PACK
                          : used ? JOB_ERR_DUPLICATE_PAYMENT
                                 : JOB_OK));
        if (r.error == JOB_OK) {
            CHECK(o->granted_ref_count < JOBS_MAX);
            strcpy(o->granted_refs[o->granted_ref_count++], bj->job.purchase.payment_ref);
        }
    }
    if (bj->job.type == JOB_ALLOCATE && strcmp(bj->job.allocate.plan, "gone") == 0)
        CHECK(r.error == JOB_ERR_UNKNOWN_PLAN);
    if (bj->job.type == JOB_CONSUME && r.error == JOB_OK) {
        CHECK(r.amounts[RESULT_CHARGED] == bj->job.consume.amount);
        int64_t spent = 0;
        for (size_t e = 0; e < b->entries.count; e++) {
            const struct entry *en = &b->entries.items[e];
            if (en->job_index == index && en->kind == ENTRY_CONSUME)
                spent -= en->delta;
        }
        CHECK(spent == bj->job.consume.amount);
    }
    CHECK(o->count < JOBS_MAX);
    struct decided *nd = &o->first[o->count++];
    nd->job = bj->job;
    msgpack_sbuffer_init(&nd->result);
    CHECK(msgpack_sbuffer_write(&nd->result, bj->encoded.data, bj->encoded.size) == 0);
}

static void oracle_free(struct oracle *o)
{
    for (size_t i = 0; i < o->count; i++)
        msgpack_sbuffer_destroy(&o->first[i].result);
    o->count = 0;
    o->granted_ref_count = 0;
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

static void read_job(struct fuzz_bytes *in, struct plan *p, struct job *job)
{
    uint8_t b = fuzz_u8(in);
    if ((b & 0xc0) == 0xc0 && p->count > 0) {
        *job = p->jobs[fuzz_u8(in) % p->count]; /* the same job again */
        job->reply = b & 1;
        return;
    }
    memset(job, 0, sizeof *job);
    job->type = (enum job_type)(b % 3);
    snprintf(job->user, sizeof job->user, "%s", user_names[(b >> 2) % 3]);
    snprintf(job->id, sizeof job->id, "j%u", fuzz_u8(in) % 12);
    job->reply = (b >> 4) & 1;
    uint8_t f = fuzz_u8(in);
    switch (job->type) {
    case JOB_CONSUME:
        job->consume.amount = 1 + fuzz_u8(in) % 160;
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
    }
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
        if (c & 1) /* the next batch is later: 0 to 35 hours */
            now += ((c >> 1) % 8) * 5 * US_PER_HOUR + (c >> 7);
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
    batch_free(&b);
}

/* The lots of `user`, in creation order, agree between the two runs (their
 * IDs may differ: each batch reserves its own). */
static void check_same_lots(const struct model *a, const struct model *b)
{
    CHECK(a->lot_count == b->lot_count);
    for (size_t u = 0; u < 3; u++) {
        size_t j = 0;
        for (size_t i = 0; i < a->lot_count; i++) {
            if (strcmp(a->lots[i].user, user_names[u]) != 0)
                continue;
            while (j < b->lot_count && strcmp(b->lots[j].user, user_names[u]) != 0)
                j++;
            CHECK(j < b->lot_count);
            const struct lot *x = &a->lots[i].lot, *y = &b->lots[j].lot;
            CHECK(x->kind == y->kind && x->granted == y->granted && x->remaining == y->remaining);
            CHECK(x->granted_at_us == y->granted_at_us && x->expires_at_us == y->expires_at_us);
            CHECK(strcmp(x->period, y->period) == 0);
            CHECK(strcmp(a->lots[i].payment_ref, b->lots[j].payment_ref) == 0);
            j++;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct plan p;
    static struct model cut, one;
    static struct oracle o;
    static msgpack_sbuffer out_cut[JOBS_MAX], out_one[JOBS_MAX];
    struct fuzz_bytes in = {data, size, 0};
    read_plan(&in, &p);

    memset(&cut, 0, sizeof cut);
    memset(&one, 0, sizeof one);
    memset(&o, 0, sizeof o);
    cut.next_lot_id = one.next_lot_id = 1;
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
    check_same_lots(&cut, &one);
    CHECK(cut.job_count == one.job_count && cut.job_count == o.count);
    oracle_free(&o);
    model_free(&cut);
    model_free(&one);
    return 0;
}
