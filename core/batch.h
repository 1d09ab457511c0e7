/*
 * batch.h -- decides a batch of valid jobs, in stream order, against ledger
 * state loaded from the database. Pure: no I/O, time is loaded state.
 *
 * Owns: replay and id_conflict detection (against stored decisions and
 * within the batch), the in-batch payment_ref and lot ID bookkeeping, and
 * running each new job through ledger_apply(). Does not own loading or
 * writing (the store) or publishing (the queue).
 *
 * A job's outcome does not depend on how jobs are cut into batches: a batch
 * of one and a batch of many give the same decisions and the same ledger.
 *
 * Use: batch_init(); read what to load from batch_users() and
 * batch_need_keys(); feed
 * the loaded state with batch_set_*() / batch_add_*(); batch_decide(); write
 * what changed; batch_reset() to retry the same jobs; batch_free().
 */
#ifndef CREDITS_CORE_BATCH_H
#define CREDITS_CORE_BATCH_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "core/job.h"
#include "core/job_type.h"
#include "core/ledger.h"
#include "core/sweep.h"

enum batch_outcome {
    BATCH_UNDECIDED = 0,
    BATCH_DECIDED,  /* new decision: store it (jobs row) and publish it */
    BATCH_REPLAY,   /* decided before: publish the stored result, replayed */
    BATCH_CONFLICT, /* same ID, other fields: publish id_conflict, store nothing */
};

struct batch_job {
    struct job job; /* input, set by the caller */
    enum batch_outcome outcome;
    struct result result;
    /* The msgpack result to publish; for BATCH_DECIDED also the bytes stored
     * in credits.jobs.result. */
    msgpack_sbuffer encoded;
    /* The canonical request (codec_encode_request), stored in credits.jobs. */
    msgpack_sbuffer request;
    /* The stored decision for this job's ID, when the database had one. */
    bool stored_found;
    msgpack_sbuffer stored_request;
    msgpack_sbuffer stored_result;
};

/* A catalog row or used payment reference, keyed by its ID. */
struct batch_pack {
    char id[JOB_PACK_BYTES_MAX + 1];
    struct pack_info info;
};

struct batch_plan {
    char id[JOB_PLAN_BYTES_MAX + 1];
    struct plan_info info;
};

/* A payment reference that granted credits: the pack lot, and whose. */
struct batch_payment {
    char payment_ref[JOB_PAYMENT_REF_BYTES_MAX + 1];
    char user[JOB_USER_BYTES_MAX + 1];
    int64_t lot_id;
};

struct batch {
    struct batch_job *jobs; /* borrowed from the caller for the batch's life */
    size_t job_count;
    int64_t now_us;
    /* One account per distinct user of the batch, sorted by user (the order
     * the store locks them in). */
    struct account *accounts;
    size_t account_count;
    struct batch_pack *packs;
    size_t pack_count;
    struct batch_plan *plans;
    size_t plan_count;
    struct batch_payment *payments; /* the payment references that granted credits */
    size_t payment_count;
    size_t payment_cap;
    int64_t *lot_ids; /* reserved IDs for new lots, used in job order */
    size_t lot_id_count;
    size_t lot_id_next;
    struct entry_list entries;
    /* The events of the batch's changes (contract 9.8), as decided; and as
     * credits.events stored them (each with its event_id), read back by the
     * store at commit: those are what is published. */
    struct event_list events;
    struct event_list stored_events;
    /* A sweep batch (batch_init_sweep()) decides no jobs: it sweeps each of
     * its accounts (core/sweep.h). Its entries' job_index is the account's
     * index, and every entry names its job (a hold's ID, or an expiry's). */
    bool sweep;
    int64_t notice_days;
    struct sweep_expiry *expiries; /* the lots it wrote off, each a job row */
    size_t expiry_count;
};

/* Starts a batch over jobs[0..job_count) (borrowed; job fields set). */
void batch_init(struct batch *batch, struct batch_job *jobs, size_t job_count);

/* Starts a sweep batch over the accounts of users[0..count) (copied),
 * announcing lots that expire within `notice_days` (contract 9.7). */
void batch_init_sweep(struct batch *batch, const char *const *users, size_t count,
                      int64_t notice_days);

/* Whose an entry of the batch is, and the job it is written under. */
const char *batch_entry_user(const struct batch *batch, const struct entry *entry);
const char *batch_entry_job_id(const struct batch *batch, const struct entry *entry);

/* The user's threshold of the low-balance events, as the batch leaves the
 * account: its own, else its plan's (a plan an allocate of the batch set
 * is one the batch loaded), else none. */
struct event_threshold batch_threshold(const struct batch *batch, const struct account *account);

/* Drops all loaded state and decisions, keeping the jobs: for a retry. */
void batch_reset(struct batch *batch);

void batch_free(struct batch *batch);

/* What to load. Each fills `out` with pointers into the batch's jobs (borrowed
 * until batch_free), sorted and distinct, and returns the count; `out` must
 * have room for batch_key_room() entries. */
size_t batch_key_room(const struct batch *batch);
size_t batch_users(const struct batch *batch, const char **out);

/* The keys of one kind the batch's jobs need looked up (job_type.h). */
size_t batch_need_keys(const struct batch *batch, enum job_need need, const char **out);

/* The earliest period from which a job of the batch needs the users' spent
 * monthly lots too, or NULL when none does. */
const char *batch_monthly_from_period(const struct batch *batch);

/* The users of those jobs: only their spent monthly lots are read (a rule
 * that needs them looks at its own user's lots). */
size_t batch_monthly_users(const struct batch *batch, const char **out);

/* How many lot IDs to reserve: an upper bound on the lots the batch creates. */
size_t batch_new_lot_count(const struct batch *batch);

/* Loaded state. Each returns false when the key is not part of the batch
 * (the store asked for keys the batch gave it, so that is a bug: callers
 * ASSERT on it). Copies what it keeps. */
bool batch_set_stored(struct batch *batch, const char *job_id, const void *request,
                      size_t request_len, const void *result, size_t result_len)
    __attribute__((warn_unused_result));
bool batch_add_lot(struct batch *batch, const char *user, const struct lot *lot)
    __attribute__((warn_unused_result));
bool batch_set_account_plan(struct batch *batch, const char *user, const char *plan)
    __attribute__((warn_unused_result));
void batch_add_pack(struct batch *batch, const char *pack_id, const struct pack_info *info);
void batch_add_plan(struct batch *batch, const char *plan_id, const struct plan_info *info);
/* A pack lot bought with `payment_ref` (by any user). */
void batch_add_payment(struct batch *batch, const char *payment_ref, const char *user,
                       int64_t lot_id);

/* A lot a hold, a charge or a payment points at, when `user` is in the
 * batch and the lot is not loaded yet (it may be spent or revoked). True
 * when the user is in the batch. */
bool batch_add_lot_once(struct batch *batch, const char *user, const struct lot *lot)
    __attribute__((warn_unused_result));

/* A hold of `user` as loaded; NULL when the user is not in the batch (a
 * job named another user's hold: it finds none). */
struct hold *batch_add_hold(struct batch *batch, const char *user, const char *hold_id);

/* An applied consume or capture of `user`, for its refunds; NULL when the
 * user is not in the batch. Loading it twice gives the same charge. */
struct charge *batch_add_charge(struct batch *batch, const char *user, const char *charge_id);
void batch_add_lot_id(struct batch *batch, int64_t lot_id);

/* The account of `user`, or NULL when the user is not in the batch. */
struct account *batch_account(struct batch *batch, const char *user);

/* The thresholds of the account of `user` as loaded (0: none); false when
 * the user is not in the batch. */
bool batch_set_account_thresholds(struct batch *batch, const char *user, int64_t low_balance,
                                  int64_t plan_low_balance) __attribute__((warn_unused_result));

/*
 * Decides every job in order. After it each job has an outcome, a result and
 * its encoded bytes; accounts hold the new lot states (is_new / changed);
 * batch->entries the new entries. Returns 0, or -1 when a stored result
 * cannot be decoded (the database holds something this worker did not
 * write: an operating error the caller reports).
 */
int batch_decide(struct batch *batch) __attribute__((warn_unused_result));

#endif
