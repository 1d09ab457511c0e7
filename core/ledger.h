/*
 * ledger.h -- the ledger of contract section 5 as pure functions over one
 * account's lots held in memory: lots and entries, the balance, expiry, the
 * spending order, and the toolkit every job type's rule (core/types/) is
 * written with.
 *
 * Owns: lot and entry kinds, the spending order, expiry, the balance split,
 * running a job's rule (ledger_apply). Does not own what each job type does
 * (core/types/), where lots come from or go to (the store), job IDs and
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

/* X(value, name stored in credits.lots.kind) */
#define LOT_KINDS(X)                                                                               \
    X(LOT_PACK, "pack")                                                                            \
    X(LOT_MONTHLY, "monthly")

enum lot_kind {
#define LOT_KIND_ENUM(value, name) value,
    LOT_KINDS(LOT_KIND_ENUM)
#undef LOT_KIND_ENUM
};
enum { LOT_KIND_COUNT = 0 LOT_KINDS(JOB_LIST_COUNT_ONE) };

/* X(value, name stored in credits.entries.kind, sign of its delta) */
#define ENTRY_KINDS(X)                                                                             \
    X(ENTRY_CONSUME, "consume", -1)                                                                \
    X(ENTRY_PURCHASE, "purchase", +1)                                                              \
    X(ENTRY_ALLOCATE, "allocate", +1)                                                              \
    X(ENTRY_FORFEIT, "forfeit", -1)                                                                \
    X(ENTRY_EXPIRE, "expire", -1)

enum entry_kind {
#define ENTRY_KIND_ENUM(value, name, sign) value,
    ENTRY_KINDS(ENTRY_KIND_ENUM)
#undef ENTRY_KIND_ENUM
};
enum { ENTRY_KIND_COUNT = 0 ENTRY_KINDS(JOB_LIST_COUNT_ONE) };

struct lot {
    int64_t lot_id;
    enum lot_kind kind;
    int64_t granted;
    int64_t remaining;
    int64_t granted_at_us;
    int64_t expires_at_us;             /* LEDGER_NO_EXPIRY when none */
    char period[JOB_PERIOD_BYTES + 1]; /* monthly lots; "" for others */
    /* What the store must write back. */
    bool is_new;      /* created in memory: INSERT it */
    bool changed;     /* remaining changed: UPDATE it (ignored when is_new) */
    size_t job_index; /* when is_new: the job that created it */
    /* When is_new: the catalog and payment columns of the new row, borrowed
     * from the job that created it (NULL: the column is NULL). */
    const char *pack_id;
    const char *payment_ref;
    const char *plan_id;
};

/* One account's state. Owns `lots` (ledger_account_free()). */
struct account {
    char user[JOB_USER_BYTES_MAX + 1];
    bool has_plan;
    char plan[JOB_PLAN_BYTES_MAX + 1];
    bool plan_changed; /* UPDATE the account's plan_id (NULL when !has_plan) */
    struct lot *lots;
    size_t lot_count;
    size_t lot_cap;
};

/* One ledger entry: `delta` credits on `lot_id`, written for job `job_index`
 * of the batch (the caller's numbering). `tool` and `ref` are borrowed from
 * that job (NULL: none). */
struct entry {
    int64_t lot_id;
    enum entry_kind kind;
    int64_t delta;
    size_t job_index;
    const char *tool;
    const char *ref;
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

/* What the caller knows that the account does not: the job's needs
 * (job_type.h) resolved against the loaded state. */
struct ledger_input {
    int64_t now_us;
    size_t job_index;
    const struct pack_info *pack; /* NEED_PACK: NULL when not in the catalog */
    const struct plan_info *plan; /* NEED_PLAN: NULL when not in the catalog */
    bool payment_ref_used;        /* NEED_PAYMENT_REF: granted under another job ID */
    int64_t new_lot_id;           /* the ID for a new lot, when the type creates one */
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
 * then the job type's rule. Fills in `result`: error (JOB_OK when applied),
 * message, balance and the type's amounts. Does not touch id, type, user,
 * done_at or replayed. Appends entries to `entries`. A rejection changes no
 * lot (expiry aside).
 */
void ledger_apply(struct account *account, const struct job *job, const struct ledger_input *input,
                  struct entry_list *entries, struct result *result);

/* ---------------------------------------------------------------------------
 * The toolkit of the job types' rules (core/types/)
 * ------------------------------------------------------------------------- */

/* A job type's rule: see ledger_apply(). */
typedef void ledger_rule_fn(struct account *account, const struct job *job,
                            const struct ledger_input *input, struct entry_list *entries,
                            struct result *result);

/* Marks `result` rejected with `error` and a message for people; the field
 * limits keep every message within RESULT_MESSAGE_BYTES_MAX (asserted). */
void ledger_reject(struct result *result, enum job_error error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends an entry; its delta's sign must be its kind's. */
void ledger_entry_add(struct entry_list *entries, const struct entry *entry);

/* a + b for credit sums; the catalog's bounds make overflow a bug. */
int64_t ledger_credits_add(int64_t a, int64_t b);

/* now + days, as an expiry time; asserts it fits. */
int64_t ledger_expiry_after_days(int64_t now_us, int64_t days);

/* Which lots ledger_take() spends from. */
enum ledger_take_from {
    LEDGER_FROM_USABLE,  /* every usable lot, in the spending order */
    LEDGER_FROM_MONTHLY, /* the usable monthly lots, oldest first */
};

/* Takes `amount` from the usable lots in spending order (section 5: the
 * lots that expire by expires_at, then the others by granted_at; lot_id
 * breaks ties), one entry per lot touched, each a copy of `like` (its kind,
 * job and tool/ref) with that lot and delta. The caller has checked that
 * they hold enough. */
void ledger_take(struct account *account, int64_t now_us, enum ledger_take_from from,
                 int64_t amount, const struct entry *like, struct entry_list *entries);

#endif
