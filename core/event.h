/*
 * event.h -- what the web app is told (contract 9.8): a balance crossing
 * the user's threshold or reaching 0, credits about to expire or expired,
 * a hold expired. Pure.
 *
 * Owns: the event types, the event record, and the rule of the threshold
 * events (event_crossings()). Events are made by core/batch.c (for jobs)
 * and core/sweep.c (for the sweep), stored by the store in credits.events
 * (which gives each its event_id), encoded by codec_encode_event().
 */
#ifndef CREDITS_CORE_EVENT_H
#define CREDITS_CORE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/job.h"
#include "core/ledger.h"

/* X(value, name in the event and in credits.events.type) */
#define EVENT_TYPES(X)                                                                             \
    X(EVENT_BALANCE_LOW, "balance_low")                                                            \
    X(EVENT_BALANCE_DEPLETED, "balance_depleted")                                                  \
    X(EVENT_BALANCE_RECOVERED, "balance_recovered")                                                \
    X(EVENT_CREDITS_EXPIRING, "credits_expiring")                                                  \
    X(EVENT_CREDITS_EXPIRED, "credits_expired")                                                    \
    X(EVENT_HOLD_EXPIRED, "hold_expired")

enum event_type {
#define EVENT_TYPE_ENUM(value, name) value,
    EVENT_TYPES(EVENT_TYPE_ENUM)
#undef EVENT_TYPE_ENUM
};
enum { EVENT_TYPE_COUNT = 0 EVENT_TYPES(JOB_LIST_COUNT_ONE) };

#define EVENT_VERSION 1

/* One event. The keys of its type are set; the others are 0 or "". */
struct event {
    int64_t event_id; /* given by credits.events; 0 until stored */
    enum event_type type;
    char user[JOB_USER_BYTES_MAX + 1];
    char job[JOB_ID_BYTES_MAX + 1];  /* the job whose entries caused it */
    int64_t at_ms;                   /* the database's time of the change */
    struct balance balance;          /* after the change */
    int64_t threshold;               /* balance_low, balance_recovered */
    int64_t lot;                     /* credits_expiring, credits_expired */
    int64_t credits;                 /* credits_expiring, credits_expired */
    int64_t expires_at_ms;           /* credits_expiring */
    char hold[JOB_ID_BYTES_MAX + 1]; /* hold_expired */
    int64_t released;                /* hold_expired */
};

/* A growable list of events. Owns `items` (event_list_free()). */
struct event_list {
    struct event *items;
    size_t count;
    size_t cap;
};

const char *event_type_name(enum event_type type);
bool event_type_parse(const char *name, enum event_type *type) __attribute__((warn_unused_result));

/* Appends a zeroed event of `type` for `user`, caused by job `job` at
 * `at_ms` with `balance` after it, and returns it for the type's keys.
 * Allocation failure aborts. */
struct event *event_list_add(struct event_list *list, enum event_type type, const char *user,
                             const char *job, int64_t at_ms, const struct balance *balance);
void event_list_free(struct event_list *list);

/* The user's threshold of the low-balance events: the account's own when
 * set, else its plan's, else none. */
struct event_threshold {
    bool set;
    int64_t credits;
};

/*
 * The threshold events of one change of the usable balance from `before`
 * to `after` (contract 9.8): balance_low when it goes from at least the
 * threshold to below it, balance_recovered from below to at least it,
 * balance_depleted from above 0 to 0. Writes them to `out` in that order
 * of checks and returns how many (0 to 2: low and depleted together).
 */
size_t event_crossings(int64_t before, int64_t after, struct event_threshold threshold,
                       enum event_type out[2]);

/* The events of one change of `user`'s account, caused by `job` at `at_ms`
 * and leaving `balance`: first those of its entries entries[first...]
 * (credits_expired for each `expire` entry, hold_expired for each hold its
 * expiry released, each under the entry's own job when it has one), then
 * the threshold events of its lots going from `before` to `after` credits
 * (ledger_lots_remaining()). */
void event_list_add_change(struct event_list *list, const struct entry_list *entries, size_t first,
                           const char *user, const char *job, int64_t at_ms,
                           const struct balance *balance, int64_t before, int64_t after,
                           struct event_threshold threshold);

#endif
