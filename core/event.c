/*
 * event.c -- the events of contract 9.8 (event.h).
 */
#include "core/event.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

static const char *const event_type_names[EVENT_TYPE_COUNT] = {
#define EVENT_TYPE_NAME(value, name) [value] = name,
    EVENT_TYPES(EVENT_TYPE_NAME)
#undef EVENT_TYPE_NAME
};

const char *event_type_name(enum event_type type)
{
    ASSERT((unsigned)type < EVENT_TYPE_COUNT);
    return event_type_names[type];
}

bool event_type_parse(const char *name, enum event_type *type)
{
    for (unsigned t = 0; t < EVENT_TYPE_COUNT; t++) {
        if (strcmp(name, event_type_names[t]) == 0) {
            *type = (enum event_type)t;
            return true;
        }
    }
    return false;
}

static void copy_id(char *dst, size_t size, const char *src)
{
    size_t len = strlen(src);
    ASSERT(len < size);
    memcpy(dst, src, len + 1);
}

struct event *event_list_add(struct event_list *list, enum event_type type, const char *user,
                             const char *job, int64_t at_ms, const struct balance *balance)
{
    ASSERT(list && user && job && balance && (unsigned)type < EVENT_TYPE_COUNT);
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 8;
        struct event *items = realloc(list->items, cap * sizeof *items);
        ASSERT(items != NULL); /* nothing is lost: see ledger.c's allocation note */
        list->items = items;
        list->cap = cap;
    }
    struct event *e = &list->items[list->count++];
    memset(e, 0, sizeof *e);
    e->type = type;
    copy_id(e->user, sizeof e->user, user);
    copy_id(e->job, sizeof e->job, job);
    e->at_ms = at_ms;
    e->balance = *balance;
    return e;
}

void event_list_free(struct event_list *list)
{
    free(list->items);
    memset(list, 0, sizeof *list);
}

size_t event_crossings(int64_t before, int64_t after, struct event_threshold threshold,
                       enum event_type out[2])
{
    ASSERT(before >= 0 && after >= 0);
    size_t n = 0;
    if (threshold.set && before >= threshold.credits && after < threshold.credits)
        out[n++] = EVENT_BALANCE_LOW;
    if (threshold.set && before < threshold.credits && after >= threshold.credits)
        out[n++] = EVENT_BALANCE_RECOVERED;
    if (before > 0 && after == 0)
        out[n++] = EVENT_BALANCE_DEPLETED;
    return n;
}

/* The events of the expiries among a change's entries. A hold's expiry
 * writes its release entries together (and an `expire` after each one that
 * went back to an expired lot): one hold_expired per hold, its credits
 * summed. */
static void add_expiry_events(struct event_list *list, const struct entry_list *entries,
                              size_t first, const char *user, const char *job, int64_t at_ms,
                              const struct balance *balance)
{
    size_t hold_event = SIZE_MAX; /* index of the hold_expired being summed */
    for (size_t i = first; i < entries->count; i++) {
        const struct entry *e = &entries->items[i];
        const char *own = e->job_id != NULL ? e->job_id : job;
        if (e->kind == ENTRY_EXPIRE) {
            struct event *ev =
                event_list_add(list, EVENT_CREDITS_EXPIRED, user, own, at_ms, balance);
            ev->lot = e->lot_id;
            ev->credits = -e->delta;
        } else if (e->kind == ENTRY_RELEASE && e->job_id != NULL &&
                   strcmp(e->job_id, e->origin) == 0) {
            /* Released by the hold's expiry (its own ID as job and origin). */
            bool same =
                hold_event != SIZE_MAX && strcmp(list->items[hold_event].hold, e->origin) == 0;
            if (!same) {
                struct event *ev =
                    event_list_add(list, EVENT_HOLD_EXPIRED, user, own, at_ms, balance);
                copy_id(ev->hold, sizeof ev->hold, e->origin);
                hold_event = list->count - 1;
            }
            list->items[hold_event].released += e->delta;
        }
    }
}

void event_list_add_change(struct event_list *list, const struct entry_list *entries, size_t first,
                           const char *user, const char *job, int64_t at_ms,
                           const struct balance *balance, int64_t before, int64_t after,
                           struct event_threshold threshold)
{
    ASSERT(list && entries && user && job && balance && first <= entries->count);
    add_expiry_events(list, entries, first, user, job, at_ms, balance);
    enum event_type crossed[2];
    size_t n = event_crossings(before, after, threshold, crossed);
    for (size_t i = 0; i < n; i++) {
        struct event *ev = event_list_add(list, crossed[i], user, job, at_ms, balance);
        if (crossed[i] != EVENT_BALANCE_DEPLETED)
            ev->threshold = threshold.credits;
    }
}
