/*
 * ledger.h -- the ledger rules of contract section 5, as pure functions over
 * one account's lots held in memory.
 *
 * Owns: spending order, rollover cap and forfeit, expiry, the balance split.
 * Does not own: where lots come from or go to (the store), job IDs and
 * replays (batch.h). Time is always an argument, in microseconds since the
 * Unix epoch, so that the database's clock is the only clock.
 */
#ifndef CREDITS_CORE_LEDGER_H
#define CREDITS_CORE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/job.h"

#define LEDGER_NO_EXPIRY INT64_MAX
#define LEDGER_US_PER_DAY INT64_C(86400000000)

enum lot_kind {
    LOT_PACK = 0,
    LOT_MONTHLY = 1,
};

struct lot {
    int64_t lot_id;
    enum lot_kind kind;
    int64_t granted;
    int64_t remaining;
    int64_t granted_at_us;
    int64_t expires_at_us;             /* LEDGER_NO_EXPIRY when none */
    char period[JOB_PERIOD_BYTES + 1]; /* monthly lots; "" for packs */
    /* What the store must write back. */
    bool is_new;      /* created in memory: INSERT it */
    bool changed;     /* remaining changed: UPDATE it (ignored when is_new) */
    size_t job_index; /* when is_new: the job that created it */
};

/* One account's state. Owns `lots` (ledger_account_free()). */
struct account {
    char user[JOB_USER_BYTES_MAX + 1];
    bool has_plan;
    char plan[JOB_PLAN_BYTES_MAX + 1];
    bool plan_changed; /* plan set by an allocate: UPDATE the account */
    struct lot *lots;
    size_t lot_count;
    size_t lot_cap;
};

enum entry_kind {
    ENTRY_CONSUME = 0,
    ENTRY_PURCHASE,
    ENTRY_ALLOCATE,
    ENTRY_FORFEIT,
    ENTRY_EXPIRE,
};

/* One ledger entry: `delta` credits on `lot_id`, written for job `job_index`
 * of the batch (the caller's numbering). */
struct entry {
    int64_t lot_id;
    enum entry_kind kind;
    int64_t delta;
    size_t job_index;
};

/* A growable list of entries. Owns `items` (ledger_entries_free()). */
struct entry_list {
    struct entry *items;
    size_t count;
    size_t cap;
};

/* Catalog rows, as loaded for a batch. */
struct pack_info {
    int64_t credits;
    int32_t valid_days;
};

struct plan_info {
    int64_t monthly_credits;
    int64_t rollover_cap;
};

/* What the caller knows that the account does not. */
struct ledger_input {
    int64_t now_us;
    size_t job_index;
    const struct pack_info *pack; /* purchase: NULL when not in the catalog */
    const struct plan_info *plan; /* allocate: NULL when not in the catalog */
    bool payment_ref_used;        /* purchase: granted under another job ID */
    int64_t new_lot_id;           /* purchase/allocate: the ID for a new lot */
};

/* Names stored in the database ("pack", "monthly"; "consume", ...). */
const char *ledger_lot_kind_name(enum lot_kind kind);
const char *ledger_entry_kind_name(enum entry_kind kind);
bool ledger_lot_kind_parse(const char *name, enum lot_kind *kind)
    __attribute__((warn_unused_result));

void ledger_account_init(struct account *account, const char *user);
void ledger_account_free(struct account *account);

/* Appends a copy of `lot`; allocation failure aborts (nothing is lost: the
 * worker acknowledges nothing it has not committed). Returns the copy. */
struct lot *ledger_account_add_lot(struct account *account, const struct lot *lot);

void ledger_entries_free(struct entry_list *entries);

/* Usable credits at `now_us`: lots with no expiry or expires_at > now. */
void ledger_balance(const struct account *account, int64_t now_us, struct balance *out);

/*
 * Applies one valid job to its user's account (account->user == job->user).
 * First writes `expire` entries for lots expired at now with credits left,
 * then the job's rule. Fills in `result`: error (JOB_OK when applied),
 * message, balance, charged / granted / forfeited / expires_at_ms. Does not
 * touch id, type, user, done_at or replayed. Appends entries to `entries`.
 * A rejection changes no lot (expiry aside).
 */
void ledger_apply(struct account *account, const struct job *job, const struct ledger_input *input,
                  struct entry_list *entries, struct result *result);

#endif
