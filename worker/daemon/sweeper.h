/*
 * sweeper.h -- the sweep and the events' upkeep (contract 9.7, 9.8), run by
 * one worker at a time on the store's connection between batches.
 *
 * Every CREDITS_SWEEP_INTERVAL_MS a run starts: take the sweep's advisory
 * lock (another worker holding it: skip the run); then, while anything is
 * due, a bounded sweep transaction over the users it is due for (their
 * overdue holds, their lots past expiry, their lots to announce; locked
 * and loaded as a batch's, core/sweep.h), its events published; then the
 * events left unpublished by a worker that stopped between its commit and
 * its publication are published; published events past their retention
 * are deleted in small batches; the lock is let go. With the interval at
 * 0 the sweep is off, and a run every default interval does the events'
 * part alone (their recovery must not depend on the sweep).
 *
 * Each step is one round trip on the store, started only when the store is
 * idle and no batch waits for it (the worker calls sweeper_step() then):
 * batches go first, and the event loop is never blocked. Published events
 * are marked published in bulk once due (store_mark_published()): with a
 * batch, or alone when the store has nothing else to do.
 */
#ifndef CREDITS_WORKER_DAEMON_SWEEPER_H
#define CREDITS_WORKER_DAEMON_SWEEPER_H

#include <event2/event.h>
#include <stdbool.h>

#include "queue/queue.h"
#include "worker/common/config.h"
#include "worker/daemon/metrics.h"
#include "worker/daemon/store.h"

/* Users per sweep transaction, per kind of due row (sweep_due in store.c):
 * at most 3 * SWEEPER_USERS_PER_KIND users. */
#define SWEEPER_USERS_PER_KIND 100
/* Events published or pruned per round trip. */
#define SWEEPER_EVENTS_PER_STEP 1000
/* An event unpublished this long was left by a worker that stopped (one
 * alive marks its events within milliseconds). */
#define SWEEPER_UNPUBLISHED_AGE_S 5.0
/* The run's interval when the sweep is off: the events' part still runs. */
#define SWEEPER_EVENTS_INTERVAL_MS 10000

struct sweeper;

/* Called when the sweeper has a step to take (the worker then calls
 * sweeper_step() once the store is free). */
typedef void sweeper_wake_cb(void *arg);

/* All borrowed for the sweeper's life. */
struct sweeper *sweeper_new(struct event_base *base, const struct config *config,
                            struct store *store, struct queue *queue, struct metrics *metrics,
                            sweeper_wake_cb *wake, void *arg);
void sweeper_free(struct sweeper *sweeper);

/* The store is idle and no batch waits: starts the next step, if any. */
void sweeper_step(struct sweeper *sweeper);

/* Writes every pending mark now, if the store is idle: true when that
 * round trip started (the worker does this before it stops). */
bool sweeper_flush_marks(struct sweeper *sweeper);

/* A step is in flight on the store, or recovered events on Redis (the
 * worker waits for it before it stops). */
bool sweeper_busy(const struct sweeper *sweeper);

#endif
