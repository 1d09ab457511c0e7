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

/* The spending order of compare_spending_order() (ledger.c) as an SQL
 * ORDER BY over credits.lots' columns, for readers that list lots in the
 * order they are spent. Change the two together. */
#define LEDGER_SPENDING_ORDER_SQL "expires_at IS NULL, coalesce(expires_at, granted_at), lot_id"

/* X(value, name stored in credits.lots.kind) */
#define LOT_KINDS(X)                                                                               \
    X(LOT_PACK, "pack")                                                                            \
    X(LOT_MONTHLY, "monthly")                                                                      \
    X(LOT_GRANT, "grant")

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
    X(ENTRY_EXPIRE, "expire", -1)                                                                  \
    X(ENTRY_HOLD, "hold", -1)                                                                      \
    X(ENTRY_RELEASE, "release", +1)                                                                \
    X(ENTRY_REFUND, "refund", +1)                                                                  \
    X(ENTRY_REVOKE, "revoke", -1)                                                                  \
    X(ENTRY_GRANT, "grant", +1)

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
    bool revoked;                      /* revoked_at is set: never usable again */
    bool noticed;                      /* its expiry was announced (credits_expiring) */
    /* What the store must write back. */
    bool is_new;      /* created in memory: INSERT it */
    bool changed;     /* remaining changed: UPDATE it (ignored when is_new) */
    bool revoked_now; /* revoked in this batch: set revoked_at */
    bool noticed_now; /* announced in this batch: set expiry_noticed_at */
    size_t job_index; /* when is_new: the job that created it */
    /* When is_new: the catalog and payment columns of the new row, borrowed
     * from the job that created it (NULL: the column is NULL). */
    const char *pack_id;
    const char *payment_ref;
    const char *plan_id;
};

/* What one lot gave a hold or a charge, in the order taken. */
struct take {
    int64_t lot_id;
    int64_t amount; /* still held, or still refundable */
};

/* A growable list of takes. Owns `items` (ledger_takes_free()). */
struct take_list {
    struct take *items;
    size_t count;
    size_t cap;
};

/* X(value, name stored in credits.holds.status) */
#define HOLD_STATUSES(X)                                                                           \
    X(HOLD_OPEN, "open")                                                                           \
    X(HOLD_CAPTURED, "captured")                                                                   \
    X(HOLD_RELEASED, "released")                                                                   \
    X(HOLD_EXPIRED, "expired")

enum hold_status {
#define HOLD_STATUS_ENUM(value, name) value,
    HOLD_STATUSES(HOLD_STATUS_ENUM)
#undef HOLD_STATUS_ENUM
};
enum { HOLD_STATUS_COUNT = 0 HOLD_STATUSES(JOB_LIST_COUNT_ONE) };

/* A hold (contract 9.4): its credits have left their lots (`takes`) until
 * a capture charges part and gives the rest back, or a release or the
 * hold's expiry gives all back. Owns `takes`. */
struct hold {
    char id[JOB_ID_BYTES_MAX + 1]; /* the hold job's ID */
    int64_t amount;
    enum hold_status status;
    int64_t captured;      /* HOLD_CAPTURED */
    int64_t created_at_us; /* is_new */
    int64_t expires_at_us;
    const char *closed_by;  /* closed in this batch by a job: its ID (borrowed) */
    struct take_list takes; /* open: what each lot holds for it */
    bool is_new;            /* opened in this batch: INSERT it */
    bool changed;           /* closed in this batch: UPDATE it */
    size_t job_index;       /* is_new: the hold job (its tool and ref) */
};

/* An applied consume or capture, for its refunds: what each lot gave it,
 * net of what was given back already. Owns `takes`. */
struct charge {
    char id[JOB_ID_BYTES_MAX + 1];
    struct take_list takes;
};

/* One account's state. Owns `lots`, `holds` and `charges`
 * (ledger_account_free()); each hold and charge is allocated on its own, so
 * that a pointer to one stays good while others are added. */
struct account {
    char user[JOB_USER_BYTES_MAX + 1];
    bool has_plan;
    char plan[JOB_PLAN_BYTES_MAX + 1];
    bool plan_changed; /* UPDATE the account's plan_id (NULL when !has_plan) */
    /* The low-balance thresholds (contract 9.8), as loaded: the account's
     * own, and its plan's when it was loaded (0: none). */
    int64_t low_balance;
    int64_t plan_low_balance;
    struct lot *lots;
    size_t lot_count;
    size_t lot_cap;
    struct hold **holds;
    size_t hold_count;
    size_t hold_cap;
    struct charge **charges;
    size_t charge_count;
    size_t charge_cap;
};

/* One ledger entry: `delta` credits on `lot_id`, written in the
 * transaction of job `job_index` of the batch (the caller's numbering): its
 * user's, and under its ID unless `job_id` says otherwise (a hold's expiry
 * is written under the hold's ID). `origin` links a give-back to what it
 * gives back (contract 9.4). The strings are borrowed for the batch's life
 * (NULL: none). */
struct entry {
    int64_t lot_id;
    enum entry_kind kind;
    int64_t delta;
    size_t job_index;
    const char *job_id;
    const char *tool;
    const char *ref;
    const char *origin;
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
    int64_t low_balance; /* the plan's threshold of the low-balance events; 0: none */
};

/* What the caller knows that the account does not: the job's needs
 * (job_type.h) resolved against the loaded state. */
struct ledger_input {
    int64_t now_us;
    size_t job_index;
    const struct pack_info *pack; /* NEED_PACK: NULL when not in the catalog */
    const struct plan_info *plan; /* NEED_PLAN: NULL when not in the catalog */
    bool payment_ref_used;        /* NEED_PAYMENT_REF: granted credits under some job ID */
    int64_t payment_lot_id;       /* NEED_PAYMENT_REF: the user's pack lot with it; 0: none */
    int64_t new_lot_id;           /* the ID for a new lot, when the type creates one */
};

/* Names stored in the database ("pack", "monthly"; "consume", ...). */
const char *ledger_lot_kind_name(enum lot_kind kind);
const char *ledger_entry_kind_name(enum entry_kind kind);
const char *ledger_hold_status_name(enum hold_status status);
bool ledger_lot_kind_parse(const char *name, enum lot_kind *kind)
    __attribute__((warn_unused_result));
bool ledger_entry_kind_parse(const char *name, enum entry_kind *kind)
    __attribute__((warn_unused_result));
bool ledger_hold_status_parse(const char *name, enum hold_status *status)
    __attribute__((warn_unused_result));

void ledger_account_init(struct account *account, const char *user);
void ledger_account_free(struct account *account);

/* Appends a copy of `lot`; allocation failure aborts (nothing is lost: the
 * worker acknowledges nothing it has not committed). Returns the copy. */
struct lot *ledger_account_add_lot(struct account *account, const struct lot *lot);

void ledger_entries_free(struct entry_list *entries);

/* The lot `lot_id` of the account, or NULL. */
struct lot *ledger_account_lot(struct account *account, int64_t lot_id);

/* A new hold or charge of the account (zeroed, id set): the caller fills
 * it in. Allocation failure aborts. */
struct hold *ledger_account_add_hold(struct account *account, const char *id);
struct charge *ledger_account_add_charge(struct account *account, const char *id);

/* The account's hold or charge with this ID, or NULL. */
struct hold *ledger_account_hold(struct account *account, const char *id);
struct charge *ledger_account_charge(struct account *account, const char *id);

/* Appends a take (a lot's share); allocation failure aborts. */
void ledger_takes_add(struct take_list *takes, int64_t lot_id, int64_t amount);
int64_t ledger_takes_total(const struct take_list *takes);
void ledger_takes_free(struct take_list *takes);

/* The credits the account's lots hold, usable or not yet written off: the
 * balance an event's change is measured by (contract 9.8). */
int64_t ledger_lots_remaining(const struct account *account);

/* Past its expires_at at `now_us` (whether or not written off yet). */
bool ledger_lot_is_expired(const struct lot *lot, int64_t now_us)
    __attribute__((warn_unused_result));

/* Takes an expired lot's credits to 0 with one `expire` entry under job
 * `job_index`, and under `job_id` when not NULL (the sweep's expire:{lot}). */
void ledger_expire_lot(struct lot *lot, size_t job_index, const char *job_id,
                       struct entry_list *entries);

/* An open hold whose expires_at has passed at `now_us`. */
bool ledger_hold_is_overdue(const struct hold *hold, int64_t now_us)
    __attribute__((warn_unused_result));

/* Releases an overdue hold (status expired, closed by no job): its entries
 * are `release` entries under the hold's ID as job and origin. */
void ledger_expire_hold(struct account *account, int64_t now_us, struct hold *hold,
                        size_t job_index, struct entry_list *entries);

/* Usable credits at `now_us`: lots not revoked with no expiry or
 * expires_at > now; `held`: the open holds. */
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

/* Gives `amount` back to the lots of `takes` (which it reduces), the lot
 * taken last first, one entry per lot touched, each a copy of `like` (a
 * positive kind: release or refund) with that lot and delta. A share that
 * returns to a lot no longer usable leaves it again at once (an `expire` or
 * `revoke` entry with the same job and origin). The takes hold at least
 * `amount`. */
void ledger_give_back(struct account *account, int64_t now_us, struct take_list *takes,
                      int64_t amount, const struct entry *like, struct entry_list *entries);

/* The hold a capture or release (`job`, of the account's user) names, open
 * and not expired; or NULL after rejecting `result` with the first of
 * unknown_hold (none of this user's), hold_closed (closed by a job),
 * hold_expired (now >= expires_at, released already or not). */
struct hold *ledger_open_hold(struct account *account, const char *hold_id, int64_t now_us,
                              struct result *result);

/* Takes everything a hold still holds back to its lots and closes it with
 * `status`; the entries are `release` entries under `like`'s job, with the
 * hold's ID as origin. */
void ledger_close_hold(struct account *account, int64_t now_us, struct hold *hold,
                       enum hold_status status, const struct entry *like,
                       struct entry_list *entries);

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

/* The takes of entries[first..] (what ledger_take() just wrote), as a list
 * of lot shares in the order taken. */
void ledger_takes_of(const struct entry_list *entries, size_t first, struct take_list *out);

#endif
