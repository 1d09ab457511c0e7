/*
 * outbox.h -- publishing the events the database stored (contract 9.8).
 *
 * An event is in credits.events from the commit that caused it; it reaches
 * P:events after the commit, and is marked published once Redis has it.
 * A publication cut by a crash or a lost connection leaves it unmarked, and
 * the sweep's worker publishes it again later (at least once: readers key
 * events by event_id).
 */
#ifndef CREDITS_WORKER_DAEMON_OUTBOX_H
#define CREDITS_WORKER_DAEMON_OUTBOX_H

#include "core/event.h"
#include "queue/queue.h"
#include "worker/daemon/metrics.h"
#include "worker/daemon/store.h"

/* Told Redis's answer to a publication, after the marks were handed over:
 * status 0 when Redis has every event. */
typedef void outbox_done_cb(void *arg, int status);

/* Publishes `stored` (events with their event_id; borrowed until return),
 * and once Redis has them all, hands their IDs to store_mark_published();
 * then calls `done` (when not NULL). 0 when sent; -1 when Redis is not
 * ready (they stay unpublished, and `done` is not called). */
int outbox_publish(struct queue *queue, struct store *store, struct metrics *metrics,
                   const struct event_list *stored, outbox_done_cb *done, void *done_arg);

#endif
