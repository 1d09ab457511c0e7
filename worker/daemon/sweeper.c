/*
 * sweeper.c -- the sweep and the events' upkeep (sweeper.h).
 */
#include "worker/daemon/sweeper.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "core/batch.h"
#include "worker/common/clock.h"
#include "worker/common/log.h"
#include "worker/daemon/outbox.h"

#define SWEEPER_USERS_MAX (3 * SWEEPER_USERS_PER_KIND)
#define SWEEPER_PRUNE_STEPS_MAX 10 /* per run: the rest waits for the next */

/* The steps of a run, in order; SWEEPER_IDLE: no run. */
enum sweeper_next {
    SWEEPER_IDLE,
    SWEEPER_LOCK,
    SWEEPER_DUE,
    SWEEPER_SWEEP,
    SWEEPER_RECOVER,
    SWEEPER_PRUNE,
    SWEEPER_UNLOCK,
};

struct sweeper {
    struct event_base *base;
    const struct config *config;
    struct store *store;
    struct queue *queue;
    struct metrics *metrics;
    sweeper_wake_cb *wake;
    void *arg;
    struct event *timer;
    struct event *marks_timer; /* when the pending marks fall due */
    enum sweeper_next next;
    bool in_flight;  /* a round trip of ours is on the store */
    bool marking;    /* that round trip writes marks only */
    bool publishing; /* recovered events wait for Redis's answer */
    bool sweep_on;   /* CREDITS_SWEEP_INTERVAL_MS > 0 */
    bool failed;     /* the run in progress met an error */
    int64_t started_ms;
    int prune_steps;
    bool marked_before_recovery; /* this run wrote the pending marks first */
    struct store_op op;
    char (*users)[JOB_USER_BYTES_MAX + 1];
    const char *user_names[SWEEPER_USERS_MAX];
    struct batch batch;
    bool batch_live;
};

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sweeper *s = arg;
    if (s->next != SWEEPER_IDLE)
        return; /* the last run is still going: this one is folded into it */
    s->next = SWEEPER_LOCK;
    s->failed = false;
    s->wake(s->arg);
}

static void on_marks_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sweeper *s = arg;
    s->wake(s->arg);
}

struct sweeper *sweeper_new(struct event_base *base, const struct config *config,
                            struct store *store, struct queue *queue, struct metrics *metrics,
                            sweeper_wake_cb *wake, void *arg)
{
    struct sweeper *s = calloc(1, sizeof *s);
    ASSERT(s != NULL);
    *s = (struct sweeper){.base = base,
                          .config = config,
                          .store = store,
                          .queue = queue,
                          .metrics = metrics,
                          .wake = wake,
                          .arg = arg,
                          .sweep_on = config->sweep_interval_ms > 0};
    s->users = calloc(SWEEPER_USERS_MAX, sizeof *s->users);
    s->timer = event_new(base, -1, EV_PERSIST, on_timer, s);
    s->marks_timer = evtimer_new(base, on_marks_timer, s);
    ASSERT(s->users && s->timer && s->marks_timer);
    int64_t ms = s->sweep_on ? config->sweep_interval_ms : SWEEPER_EVENTS_INTERVAL_MS;
    struct timeval every = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(s->timer, &every);
    return s;
}

void sweeper_free(struct sweeper *s)
{
    if (!s)
        return;
    if (s->batch_live)
        batch_free(&s->batch);
    event_list_free(&s->op.events);
    event_free(s->timer);
    event_free(s->marks_timer);
    free(s->users);
    free(s);
}

bool sweeper_busy(const struct sweeper *s)
{
    return s->in_flight || s->publishing;
}

/* ---------------------------------------------------------------------------
 * The end of a run
 * ------------------------------------------------------------------------- */

static void run_over(struct sweeper *s, enum metrics_sweep_outcome outcome)
{
    s->metrics->sweep_runs[outcome]++;
    if (outcome == METRICS_SWEEP_DONE)
        s->metrics->sweep_duration_s = (double)(clock_monotonic_ms() - s->started_ms) / 1000.0;
    s->next = SWEEPER_IDLE;
}

/* A step failed. With the connection gone the lock went with it; else the
 * run lets go of the lock and ends. */
static void step_failed(struct sweeper *s, const char *step, enum store_status status)
{
    log_event(LOG_WARN, "sweep_failed", "step=%s error=\"%s\"", step, store_errstr(s->store));
    s->failed = true;
    if (status == STORE_LOST)
        run_over(s, METRICS_SWEEP_FAILED);
    else
        s->next = SWEEPER_UNLOCK;
}

/* ---------------------------------------------------------------------------
 * The steps' answers
 * ------------------------------------------------------------------------- */

static void after_lock(struct sweeper *s)
{
    if (!s->op.locked) {
        run_over(s, METRICS_SWEEP_SKIPPED);
        return;
    }
    s->started_ms = clock_monotonic_ms();
    s->prune_steps = 0;
    s->marked_before_recovery = false;
    s->op.after_id = 0;
    s->next = s->sweep_on ? SWEEPER_DUE : SWEEPER_RECOVER;
}

static void after_due(struct sweeper *s)
{
    s->metrics->sweep_lag_s = (double)s->op.due.lag_ms / 1000.0;
    size_t n = s->op.due.user_count;
    if (n == 0) {
        s->next = SWEEPER_RECOVER;
        return;
    }
    for (size_t i = 0; i < n; i++)
        s->user_names[i] = s->users[i];
    batch_init_sweep(&s->batch, s->user_names, n, s->config->expiry_notice_days);
    s->batch_live = true;
    s->next = SWEEPER_SWEEP;
}

/* What the sweep transaction did: counted, its events published. Another
 * look follows while one changes something: the due rows are read a
 * bounded number at a time. */
static void after_sweep(struct sweeper *s)
{
    size_t holds = 0, announced = 0;
    for (size_t a = 0; a < s->batch.account_count; a++) {
        const struct account *account = &s->batch.accounts[a];
        for (size_t h = 0; h < account->hold_count; h++)
            holds += account->holds[h]->changed && account->holds[h]->status == HOLD_EXPIRED;
        for (size_t l = 0; l < account->lot_count; l++)
            announced += account->lots[l].noticed_now;
    }
    s->metrics->sweep_rows[METRICS_SWEEP_HOLDS_RELEASED] += holds;
    s->metrics->sweep_rows[METRICS_SWEEP_LOTS_EXPIRED] += s->batch.expiry_count;
    s->metrics->sweep_rows[METRICS_SWEEP_LOTS_ANNOUNCED] += announced;
    bool changed = holds + s->batch.expiry_count + announced > 0;
    if (outbox_publish(s->queue, s->store, s->metrics, &s->batch.stored_events, NULL, NULL) != 0)
        log_event(LOG_WARN, "events_unpublished", "events=%zu note=\"published by a later sweep\"",
                  s->batch.stored_events.count);
    log_event(LOG_DEBUG, "swept", "users=%zu holds=%zu lots=%zu announced=%zu events=%zu",
              s->batch.account_count, holds, s->batch.expiry_count, announced,
              s->batch.stored_events.count);
    batch_free(&s->batch);
    s->batch_live = false;
    s->next = changed ? SWEEPER_DUE : SWEEPER_RECOVER;
}

/* The recovered events are in Redis and their marks pending (or Redis
 * refused them): the run goes on. Until then it waits, or its next look
 * would find them unmarked and publish them again. */
static void on_recovered_published(void *arg, int status)
{
    (void)status;
    struct sweeper *s = arg;
    s->publishing = false;
    s->wake(s->arg);
}

static void after_recover(struct sweeper *s)
{
    struct event_list *found = &s->op.events;
    if (found->count > 0) {
        s->op.after_id = found->items[found->count - 1].event_id;
        s->metrics->sweep_rows[METRICS_SWEEP_EVENTS_RECOVERED] += found->count;
        log_event(LOG_INFO, "events_recovered", "events=%zu", found->count);
        if (outbox_publish(s->queue, s->store, s->metrics, found, on_recovered_published, s) == 0)
            s->publishing = true;
        else
            log_event(LOG_WARN, "events_unpublished", "events=%zu", found->count);
    }
    bool more = found->count == SWEEPER_EVENTS_PER_STEP;
    event_list_free(found);
    s->next = more ? SWEEPER_RECOVER : SWEEPER_PRUNE;
}

static void after_prune(struct sweeper *s)
{
    s->metrics->sweep_rows[METRICS_SWEEP_EVENTS_PRUNED] += (uint64_t)s->op.affected;
    bool more = s->op.affected == SWEEPER_EVENTS_PER_STEP;
    s->next = more && ++s->prune_steps < SWEEPER_PRUNE_STEPS_MAX ? SWEEPER_PRUNE : SWEEPER_UNLOCK;
}

static const char *step_name(enum sweeper_next next)
{
    switch (next) {
    case SWEEPER_IDLE:
        return "idle";
    case SWEEPER_LOCK:
        return "lock";
    case SWEEPER_DUE:
        return "due";
    case SWEEPER_SWEEP:
        return "sweep";
    case SWEEPER_RECOVER:
        return "recover";
    case SWEEPER_PRUNE:
        return "prune";
    case SWEEPER_UNLOCK:
        return "unlock";
    }
    UNREACHABLE();
}

static void on_done(void *arg, enum store_status status)
{
    struct sweeper *s = arg;
    ASSERT(s->in_flight);
    s->in_flight = false;
    if (s->marking) {
        s->marking = false;
        s->metrics->event_marks_pending = (int64_t)store_marks_pending(s->store);
        if (status != STORE_OK)
            log_event(LOG_WARN, "events_mark_failed", "error=\"%s\"", store_errstr(s->store));
        s->wake(s->arg);
        return;
    }
    enum sweeper_next step = s->next;
    if (status != STORE_OK) {
        if (s->batch_live) {
            batch_free(&s->batch);
            s->batch_live = false;
        }
        event_list_free(&s->op.events);
        if (step == SWEEPER_LOCK || step == SWEEPER_UNLOCK)
            run_over(s, METRICS_SWEEP_FAILED);
        else
            step_failed(s, step_name(step), status);
        s->wake(s->arg);
        return;
    }
    switch (step) {
    case SWEEPER_LOCK:
        after_lock(s);
        break;
    case SWEEPER_DUE:
        after_due(s);
        break;
    case SWEEPER_SWEEP:
        after_sweep(s);
        break;
    case SWEEPER_RECOVER:
        after_recover(s);
        break;
    case SWEEPER_PRUNE:
        after_prune(s);
        break;
    case SWEEPER_UNLOCK:
        run_over(s, s->failed ? METRICS_SWEEP_FAILED : METRICS_SWEEP_DONE);
        break;
    case SWEEPER_IDLE:
        UNREACHABLE();
    }
    s->wake(s->arg);
}

/* ---------------------------------------------------------------------------
 * Taking a step
 * ------------------------------------------------------------------------- */

static void run_op(struct sweeper *s, enum store_op_kind kind)
{
    s->op.kind = kind;
    switch (kind) {
    case STORE_OP_DUE:
        s->op.limit = SWEEPER_USERS_PER_KIND;
        s->op.days = s->config->expiry_notice_days;
        s->op.due = (struct rows_due){.users = s->users, .user_cap = SWEEPER_USERS_MAX};
        break;
    case STORE_OP_UNPUBLISHED:
        s->op.limit = SWEEPER_EVENTS_PER_STEP;
        s->op.age_s = SWEEPER_UNPUBLISHED_AGE_S;
        break;
    case STORE_OP_PRUNE:
        s->op.limit = SWEEPER_EVENTS_PER_STEP;
        s->op.days = s->config->events_retention_days;
        break;
    case STORE_OP_SWEEP_LOCK:
    case STORE_OP_SWEEP_UNLOCK:
    case STORE_OP_MARK_PUBLISHED:
        break;
    }
    s->in_flight = store_run(s->store, &s->op, on_done, s) == 0;
}

bool sweeper_flush_marks(struct sweeper *s)
{
    if (s->in_flight || !store_is_idle(s->store) || store_marks_pending(s->store) == 0)
        return false;
    s->marking = true;
    run_op(s, STORE_OP_MARK_PUBLISHED);
    if (!s->in_flight)
        s->marking = false;
    return s->in_flight;
}

/* Marks not yet due wake the sweeper when they are: batches may not come
 * to write them. */
static void arm_marks_timer(struct sweeper *s, int64_t due_in_ms)
{
    if (due_in_ms <= 0 || evtimer_pending(s->marks_timer, NULL))
        return;
    struct timeval in = {(time_t)(due_in_ms / 1000), (suseconds_t)((due_in_ms % 1000) * 1000)};
    evtimer_add(s->marks_timer, &in);
}

void sweeper_step(struct sweeper *s)
{
    if (s->in_flight || s->publishing || !store_is_idle(s->store))
        return;
    s->metrics->event_marks_pending = (int64_t)store_marks_pending(s->store);
    int64_t marks_due_in = store_marks_due_in_ms(s->store);
    if (marks_due_in == 0 && sweeper_flush_marks(s))
        return;
    arm_marks_timer(s, marks_due_in);
    switch (s->next) {
    case SWEEPER_IDLE:
        return;
    case SWEEPER_LOCK:
        run_op(s, STORE_OP_SWEEP_LOCK);
        return;
    case SWEEPER_DUE:
        run_op(s, STORE_OP_DUE);
        return;
    case SWEEPER_SWEEP:
        s->in_flight = store_apply(s->store, &s->batch, on_done, s) == 0;
        return;
    case SWEEPER_RECOVER:
        /* This worker's pending marks first, once a run: else the events
         * the last run recovered, published but not yet marked, are found
         * and published again. */
        if (!s->marked_before_recovery) {
            s->marked_before_recovery = true;
            if (sweeper_flush_marks(s))
                return;
        }
        run_op(s, STORE_OP_UNPUBLISHED);
        return;
    case SWEEPER_PRUNE:
        run_op(s, STORE_OP_PRUNE);
        return;
    case SWEEPER_UNLOCK:
        run_op(s, STORE_OP_SWEEP_UNLOCK);
        return;
    }
    UNREACHABLE();
}
