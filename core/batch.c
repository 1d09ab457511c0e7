/*
 * batch.c -- decides a batch of valid jobs against loaded state (batch.h).
 *
 * Owns replay and id_conflict detection and the in-batch bookkeeping that
 * makes a batch of N behave exactly like N batches of one.
 */
#include "core/batch.h"

#include <stdlib.h>
#include <string.h>

#include "core/codec.h"

/* Allocation failure aborts: nothing has been acknowledged before commit,
 * so the jobs are delivered again to a worker that has memory. */
static void *checked_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size);
    ASSERT(p != NULL);
    return p;
}

static void *checked_realloc(void *p, size_t count, size_t size)
{
    ASSERT(count > 0 && size > 0 && count <= SIZE_MAX / size);
    p = realloc(p, count * size);
    ASSERT(p != NULL);
    return p;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts out[0..n) and drops repeats; returns the distinct count. */
static size_t sort_distinct(const char **out, size_t n)
{
    if (n == 0)
        return 0;
    qsort(out, n, sizeof *out, compare_strings);
    size_t kept = 1;
    for (size_t i = 1; i < n; i++)
        if (strcmp(out[i], out[kept - 1]) != 0)
            out[kept++] = out[i];
    return kept;
}

static void sbuffer_reset(msgpack_sbuffer *buf)
{
    msgpack_sbuffer_destroy(buf);
    msgpack_sbuffer_init(buf);
}

static void sbuffer_copy(msgpack_sbuffer *buf, const void *data, size_t len)
{
    sbuffer_reset(buf);
    int rc = msgpack_sbuffer_write(buf, data, len);
    ASSERT(rc == 0);
}

/* One account per distinct user of users[0..n) (sorted in place). */
static void init_accounts(struct batch *batch, const char **users, size_t n)
{
    size_t count = sort_distinct(users, n);
    batch->accounts = checked_calloc(count, sizeof *batch->accounts);
    for (size_t i = 0; i < count; i++)
        ledger_account_init(&batch->accounts[i], users[i]);
    batch->account_count = count;
}

void batch_init(struct batch *batch, struct batch_job *jobs, size_t job_count)
{
    ASSERT(batch && (jobs || job_count == 0));
    memset(batch, 0, sizeof *batch);
    batch->jobs = jobs;
    batch->job_count = job_count;
    for (size_t i = 0; i < job_count; i++) {
        struct batch_job *bj = &jobs[i];
        bj->outcome = BATCH_UNDECIDED;
        msgpack_sbuffer_init(&bj->encoded);
        msgpack_sbuffer_init(&bj->request);
        msgpack_sbuffer_init(&bj->stored_request);
        msgpack_sbuffer_init(&bj->stored_result);
        bj->stored_found = false;
    }
    const char **users = checked_calloc(job_count, sizeof *users);
    for (size_t i = 0; i < job_count; i++)
        users[i] = jobs[i].job.user;
    init_accounts(batch, users, job_count);
    free(users);
}

void batch_init_sweep(struct batch *batch, const char *const *users, size_t count,
                      int64_t notice_days)
{
    ASSERT(batch && (users || count == 0) && notice_days >= 0);
    memset(batch, 0, sizeof *batch);
    batch->sweep = true;
    batch->notice_days = notice_days;
    const char **copy = checked_calloc(count, sizeof *copy);
    for (size_t i = 0; i < count; i++)
        copy[i] = users[i];
    init_accounts(batch, copy, count); /* ledger_account_init copies each name */
    free(copy);
}

const char *batch_entry_user(const struct batch *batch, const struct entry *entry)
{
    if (batch->sweep) {
        ASSERT(entry->job_index < batch->account_count);
        return batch->accounts[entry->job_index].user;
    }
    ASSERT(entry->job_index < batch->job_count);
    return batch->jobs[entry->job_index].job.user;
}

const char *batch_entry_job_id(const struct batch *batch, const struct entry *entry)
{
    if (entry->job_id != NULL)
        return entry->job_id;
    ASSERT(!batch->sweep && entry->job_index < batch->job_count);
    return batch->jobs[entry->job_index].job.id;
}

struct event_threshold batch_threshold(const struct batch *batch, const struct account *account)
{
    if (account->low_balance > 0)
        return (struct event_threshold){true, account->low_balance};
    if (!account->has_plan)
        return (struct event_threshold){false, 0};
    int64_t plan = account->plan_low_balance;
    for (size_t i = 0; i < batch->plan_count; i++)
        if (strcmp(batch->plans[i].id, account->plan) == 0)
            plan = batch->plans[i].info.low_balance;
    return (struct event_threshold){plan > 0, plan};
}

static void free_loaded_state(struct batch *batch)
{
    for (size_t i = 0; i < batch->account_count; i++)
        ledger_account_free(&batch->accounts[i]);
    free(batch->accounts);
    free(batch->packs);
    free(batch->plans);
    free(batch->payments);
    free(batch->lot_ids);
    ledger_entries_free(&batch->entries);
    event_list_free(&batch->events);
    event_list_free(&batch->stored_events);
    for (size_t i = 0; i < batch->expiry_count; i++)
        sweep_expiry_free(&batch->expiries[i]);
    free(batch->expiries);
}

void batch_reset(struct batch *batch)
{
    ASSERT(batch);
    struct batch_job *jobs = batch->jobs;
    size_t job_count = batch->job_count;
    for (size_t i = 0; i < job_count; i++) {
        msgpack_sbuffer_destroy(&jobs[i].encoded);
        msgpack_sbuffer_destroy(&jobs[i].request);
        msgpack_sbuffer_destroy(&jobs[i].stored_request);
        msgpack_sbuffer_destroy(&jobs[i].stored_result);
    }
    free_loaded_state(batch);
    batch_init(batch, jobs, job_count);
}

void batch_free(struct batch *batch)
{
    ASSERT(batch);
    for (size_t i = 0; i < batch->job_count; i++) {
        msgpack_sbuffer_destroy(&batch->jobs[i].encoded);
        msgpack_sbuffer_destroy(&batch->jobs[i].request);
        msgpack_sbuffer_destroy(&batch->jobs[i].stored_request);
        msgpack_sbuffer_destroy(&batch->jobs[i].stored_result);
    }
    free_loaded_state(batch);
    memset(batch, 0, sizeof *batch);
}

/* ---------------------------------------------------------------------------
 * What to load
 * ------------------------------------------------------------------------- */

size_t batch_key_room(const struct batch *batch)
{
    size_t n = batch->job_count > batch->account_count ? batch->job_count : batch->account_count;
    return n > 0 ? n : 1;
}

size_t batch_users(const struct batch *batch, const char **out)
{
    ASSERT(batch && out);
    /* The accounts are the distinct users, sorted (init_accounts()). */
    for (size_t i = 0; i < batch->account_count; i++)
        out[i] = batch->accounts[i].user;
    return batch->account_count;
}

static void job_needs_of(const struct job *job, struct job_needs *needs)
{
    memset(needs, 0, sizeof *needs);
    job_type_ops(job->type)->needs(job, needs);
}

size_t batch_need_keys(const struct batch *batch, enum job_need need, const char **out)
{
    ASSERT(batch && out);
    ASSERT((unsigned)need < JOB_NEED_COUNT);
    size_t n = 0;
    for (size_t i = 0; i < batch->job_count; i++) {
        struct job_needs needs;
        job_needs_of(&batch->jobs[i].job, &needs);
        if (needs.key[need] != NULL)
            out[n++] = needs.key[need];
    }
    return sort_distinct(out, n);
}

const char *batch_monthly_from_period(const struct batch *batch)
{
    ASSERT(batch);
    const char *earliest = NULL;
    for (size_t i = 0; i < batch->job_count; i++) {
        struct job_needs needs;
        job_needs_of(&batch->jobs[i].job, &needs);
        const char *period = needs.monthly_from_period;
        if (period != NULL && (earliest == NULL || strcmp(period, earliest) < 0))
            earliest = period;
    }
    return earliest;
}

size_t batch_monthly_users(const struct batch *batch, const char **out)
{
    ASSERT(batch && out);
    size_t n = 0;
    for (size_t i = 0; i < batch->job_count; i++) {
        struct job_needs needs;
        job_needs_of(&batch->jobs[i].job, &needs);
        if (needs.monthly_from_period != NULL)
            out[n++] = batch->jobs[i].job.user;
    }
    return sort_distinct(out, n);
}

size_t batch_new_lot_count(const struct batch *batch)
{
    ASSERT(batch);
    size_t n = 0;
    for (size_t i = 0; i < batch->job_count; i++) {
        struct job_needs needs;
        job_needs_of(&batch->jobs[i].job, &needs);
        n += needs.new_lots;
    }
    return n;
}

/* ---------------------------------------------------------------------------
 * Loaded state
 * ------------------------------------------------------------------------- */

struct account *batch_account(struct batch *batch, const char *user)
{
    size_t lo = 0, hi = batch->account_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(batch->accounts[mid].user, user);
        if (cmp == 0)
            return &batch->accounts[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool batch_set_stored(struct batch *batch, const char *job_id, const void *request,
                      size_t request_len, const void *result, size_t result_len)
{
    bool found = false;
    for (size_t i = 0; i < batch->job_count; i++) {
        struct batch_job *bj = &batch->jobs[i];
        if (strcmp(bj->job.id, job_id) != 0)
            continue;
        bj->stored_found = true;
        sbuffer_copy(&bj->stored_request, request, request_len);
        sbuffer_copy(&bj->stored_result, result, result_len);
        found = true;
    }
    return found;
}

bool batch_add_lot(struct batch *batch, const char *user, const struct lot *lot)
{
    struct account *account = batch_account(batch, user);
    if (!account)
        return false;
    ledger_account_add_lot(account, lot);
    return true;
}

bool batch_set_account_plan(struct batch *batch, const char *user, const char *plan)
{
    struct account *account = batch_account(batch, user);
    if (!account)
        return false;
    ASSERT(strlen(plan) < sizeof account->plan);
    account->has_plan = true;
    strcpy(account->plan, plan);
    return true;
}

bool batch_set_account_thresholds(struct batch *batch, const char *user, int64_t low_balance,
                                  int64_t plan_low_balance)
{
    struct account *account = batch_account(batch, user);
    if (!account)
        return false;
    ASSERT(low_balance >= 0 && plan_low_balance >= 0);
    account->low_balance = low_balance;
    account->plan_low_balance = plan_low_balance;
    return true;
}

void batch_add_pack(struct batch *batch, const char *pack_id, const struct pack_info *info)
{
    ASSERT(strlen(pack_id) <= JOB_PACK_BYTES_MAX);
    batch->packs = checked_realloc(batch->packs, batch->pack_count + 1, sizeof *batch->packs);
    struct batch_pack *p = &batch->packs[batch->pack_count++];
    strcpy(p->id, pack_id);
    p->info = *info;
}

void batch_add_plan(struct batch *batch, const char *plan_id, const struct plan_info *info)
{
    ASSERT(strlen(plan_id) <= JOB_PLAN_BYTES_MAX);
    batch->plans = checked_realloc(batch->plans, batch->plan_count + 1, sizeof *batch->plans);
    struct batch_plan *p = &batch->plans[batch->plan_count++];
    strcpy(p->id, plan_id);
    p->info = *info;
}

void batch_add_payment(struct batch *batch, const char *payment_ref, const char *user,
                       int64_t lot_id)
{
    ASSERT(strlen(payment_ref) <= JOB_PAYMENT_REF_BYTES_MAX);
    ASSERT(strlen(user) <= JOB_USER_BYTES_MAX && lot_id > 0);
    if (batch->payment_count == batch->payment_cap) {
        batch->payment_cap = batch->payment_cap ? 2 * batch->payment_cap : 8;
        batch->payments =
            checked_realloc(batch->payments, batch->payment_cap, sizeof *batch->payments);
    }
    struct batch_payment *p = &batch->payments[batch->payment_count++];
    strcpy(p->payment_ref, payment_ref);
    strcpy(p->user, user);
    p->lot_id = lot_id;
}

bool batch_add_lot_once(struct batch *batch, const char *user, const struct lot *lot)
{
    struct account *account = batch_account(batch, user);
    if (!account)
        return false;
    if (ledger_account_lot(account, lot->lot_id) == NULL)
        ledger_account_add_lot(account, lot);
    return true;
}

struct hold *batch_add_hold(struct batch *batch, const char *user, const char *hold_id)
{
    struct account *account = batch_account(batch, user);
    if (!account)
        return NULL;
    struct hold *hold = ledger_account_hold(account, hold_id);
    return hold != NULL ? hold : ledger_account_add_hold(account, hold_id);
}

struct charge *batch_add_charge(struct batch *batch, const char *user, const char *charge_id)
{
    struct account *account = batch_account(batch, user);
    if (!account)
        return NULL;
    struct charge *charge = ledger_account_charge(account, charge_id);
    return charge != NULL ? charge : ledger_account_add_charge(account, charge_id);
}

void batch_add_lot_id(struct batch *batch, int64_t lot_id)
{
    ASSERT(lot_id > 0);
    batch->lot_ids =
        checked_realloc(batch->lot_ids, batch->lot_id_count + 1, sizeof *batch->lot_ids);
    batch->lot_ids[batch->lot_id_count++] = lot_id;
}

/* ---------------------------------------------------------------------------
 * Deciding
 * ------------------------------------------------------------------------- */

static const struct pack_info *find_pack(const struct batch *batch, const char *id)
{
    for (size_t i = 0; i < batch->pack_count; i++)
        if (strcmp(batch->packs[i].id, id) == 0)
            return &batch->packs[i].info;
    return NULL;
}

static const struct plan_info *find_plan(const struct batch *batch, const char *id)
{
    for (size_t i = 0; i < batch->plan_count; i++)
        if (strcmp(batch->plans[i].id, id) == 0)
            return &batch->plans[i].info;
    return NULL;
}

/* What NEED_PAYMENT_REF asks: whether the reference granted credits, and
 * the pack lot of `user`'s it granted (0 when not theirs). */
static void find_payment(const struct batch *batch, const char *payment_ref, const char *user,
                         struct ledger_input *input)
{
    for (size_t i = 0; i < batch->payment_count; i++) {
        const struct batch_payment *p = &batch->payments[i];
        if (strcmp(p->payment_ref, payment_ref) != 0)
            continue;
        input->payment_ref_used = true;
        if (strcmp(p->user, user) == 0)
            input->payment_lot_id = p->lot_id;
    }
}

static bool same_bytes(const msgpack_sbuffer *a, const msgpack_sbuffer *b)
{
    return a->size == b->size && (a->size == 0 || memcmp(a->data, b->data, a->size) == 0);
}

static void encode_result(struct batch_job *bj)
{
    sbuffer_reset(&bj->encoded);
    int rc = codec_encode_result(&bj->result, &bj->encoded);
    ASSERT(rc == 0);
}

static void decide_conflict(struct batch *batch, struct batch_job *bj)
{
    bj->outcome = BATCH_CONFLICT;
    result_init_for_job(&bj->result, &bj->job);
    bj->result.error = JOB_ERR_ID_CONFLICT;
    snprintf(bj->result.message, sizeof bj->result.message,
             "job ID %s was already used by a job with different fields", bj->job.id);
    bj->result.done_at_ms = batch->now_us / 1000;
    encode_result(bj);
}

/* Publishes `stored` (a result this worker encoded) again, marked replayed. */
static int decide_replay(struct batch_job *bj, const msgpack_sbuffer *stored)
{
    if (codec_decode_result(stored->data, stored->size, &bj->result) != 0)
        return -1;
    bj->outcome = BATCH_REPLAY;
    bj->result.replayed = true;
    encode_result(bj);
    return 0;
}

/* The job's needs, answered from the loaded state and the batch so far. */
static void resolve_needs(const struct batch *batch, const struct job *job,
                          const struct job_needs *needs, struct ledger_input *input)
{
    for (unsigned n = 0; n < JOB_NEED_COUNT; n++) {
        const char *key = needs->key[n];
        if (key == NULL)
            continue;
        switch ((enum job_need)n) {
        case NEED_PACK:
            input->pack = find_pack(batch, key);
            break;
        case NEED_PLAN:
            input->plan = find_plan(batch, key);
            break;
        case NEED_PAYMENT_REF:
            find_payment(batch, key, job->user, input);
            break;
        case NEED_HOLD:
        case NEED_CHARGE:
            break; /* loaded into the user's account: its rule looks them up */
        }
    }
    if (needs->new_lots > 0) {
        ASSERT(batch->lot_id_next + needs->new_lots <= batch->lot_id_count);
        input->new_lot_id = batch->lot_ids[batch->lot_id_next];
    }
}

/* What the job did to the batch's bookkeeping: reserved lot IDs it used,
 * payment references its new lots now hold. */
static void account_for_new_lots(struct batch *batch, const struct account *account,
                                 size_t lots_before)
{
    ASSERT(account->lot_count >= lots_before);
    for (size_t i = lots_before; i < account->lot_count; i++) {
        const struct lot *lot = &account->lots[i];
        ASSERT(lot->is_new && lot->lot_id == batch->lot_ids[batch->lot_id_next]);
        batch->lot_id_next++;
        if (lot->payment_ref != NULL)
            batch_add_payment(batch, lot->payment_ref, account->user, lot->lot_id);
    }
}

static void decide_new(struct batch *batch, size_t index)
{
    struct batch_job *bj = &batch->jobs[index];
    const struct job *job = &bj->job;
    struct account *account = batch_account(batch, job->user);
    ASSERT(account != NULL);

    struct job_needs needs;
    job_needs_of(job, &needs);
    struct ledger_input input = {.now_us = batch->now_us, .job_index = index};
    resolve_needs(batch, job, &needs, &input);

    result_init_for_job(&bj->result, job);
    size_t lots_before = account->lot_count;
    size_t first_entry = batch->entries.count;
    int64_t credits_before = ledger_lots_remaining(account);
    ledger_apply(account, job, &input, &batch->entries, &bj->result);
    ASSERT(account->lot_count - lots_before <= needs.new_lots);
    account_for_new_lots(batch, account, lots_before);

    bj->result.done_at_ms = batch->now_us / 1000;
    bj->outcome = BATCH_DECIDED;
    encode_result(bj);
    /* The job's change, expiries on its way included, is one change. */
    event_list_add_change(&batch->events, &batch->entries, first_entry, job->user, job->id,
                          bj->result.done_at_ms, &bj->result.balance, credits_before,
                          ledger_lots_remaining(account), batch_threshold(batch, account));
}

struct id_position {
    const char *id;
    size_t index;
};

static int compare_id_positions(const void *a, const void *b)
{
    const struct id_position *pa = a, *pb = b;
    int cmp = strcmp(pa->id, pb->id);
    if (cmp != 0)
        return cmp;
    return pa->index < pb->index ? -1 : pa->index > pb->index;
}

/* first[i] = the index of the first job of the batch with jobs[i]'s ID. */
static void find_first_with_id(const struct batch *batch, size_t *first)
{
    size_t n = batch->job_count;
    struct id_position *order = checked_calloc(n, sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = (struct id_position){batch->jobs[i].job.id, i};
    qsort(order, n, sizeof *order, compare_id_positions);
    for (size_t k = 0; k < n; k++) {
        bool starts_group = k == 0 || strcmp(order[k].id, order[k - 1].id) != 0;
        first[order[k].index] = starts_group ? order[k].index : first[order[k - 1].index];
    }
    free(order);
}

static int decide_one(struct batch *batch, size_t index, size_t first)
{
    struct batch_job *bj = &batch->jobs[index];
    int rc = codec_encode_request(&bj->job, &bj->request);
    ASSERT(rc == 0);

    if (bj->stored_found) {
        if (!same_bytes(&bj->request, &bj->stored_request)) {
            decide_conflict(batch, bj);
            return 0;
        }
        return decide_replay(bj, &bj->stored_result);
    }
    if (first == index) {
        decide_new(batch, index);
        return 0;
    }
    /* Same ID earlier in this batch: as if that one had been committed. */
    const struct batch_job *earlier = &batch->jobs[first];
    ASSERT(earlier->outcome == BATCH_DECIDED);
    if (!same_bytes(&bj->request, &earlier->request)) {
        decide_conflict(batch, bj);
        return 0;
    }
    return decide_replay(bj, &earlier->encoded);
}

static void decide_sweep(struct batch *batch)
{
    size_t room = 0;
    for (size_t a = 0; a < batch->account_count; a++)
        room += sweep_expiries_max(&batch->accounts[a], batch->now_us);
    batch->expiries = checked_calloc(room, sizeof *batch->expiries);
    for (size_t a = 0; a < batch->account_count; a++) {
        struct account *account = &batch->accounts[a];
        struct sweep_input input = {
            .now_us = batch->now_us,
            .notice_until_us = batch->notice_days > 0
                                   ? ledger_expiry_after_days(batch->now_us, batch->notice_days)
                                   : batch->now_us, /* no notices */
            .account_index = a,
            .threshold = batch_threshold(batch, account)};
        sweep_account(account, &input, &batch->entries, &batch->events, batch->expiries,
                      &batch->expiry_count);
    }
    ASSERT(batch->expiry_count <= room);
}

int batch_decide(struct batch *batch)
{
    ASSERT(batch && batch->now_us > 0);
    if (batch->sweep) {
        decide_sweep(batch);
        return 0;
    }
    size_t *first = checked_calloc(batch->job_count, sizeof *first);
    find_first_with_id(batch, first);
    int rc = 0;
    for (size_t i = 0; i < batch->job_count && rc == 0; i++) {
        ASSERT(batch->jobs[i].outcome == BATCH_UNDECIDED);
        ASSERT(first[i] <= i);
        rc = decide_one(batch, i, first[i]);
    }
    free(first);
    return rc;
}
