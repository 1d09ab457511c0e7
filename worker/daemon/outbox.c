/*
 * outbox.c -- publishing the stored events (outbox.h).
 */
#include "worker/daemon/outbox.h"

#include <stdlib.h>

#include "core/assert.h"
#include "core/codec.h"
#include "worker/common/log.h"

/* What the publication's callback needs: the IDs to mark, whom to tell. */
struct publication {
    struct store *store;
    struct metrics *metrics;
    outbox_done_cb *done;
    void *done_arg;
    size_t count;
    int64_t ids[];
};

static void on_published(void *arg, int status)
{
    struct publication *p = arg;
    if (status == 0) {
        store_mark_published(p->store, p->ids, p->count);
        p->metrics->events_published += p->count;
    } else {
        /* Unmarked, so published again by the sweep's worker. */
        p->metrics->events_publish_failures++;
        log_event(LOG_WARN, "events_publish_failed", "events=%zu", p->count);
    }
    if (p->done)
        p->done(p->done_arg, status);
    free(p);
}

int outbox_publish(struct queue *queue, struct store *store, struct metrics *metrics,
                   const struct event_list *stored, outbox_done_cb *done, void *done_arg)
{
    ASSERT(queue && store && metrics && stored);
    if (stored->count == 0)
        return 0;
    struct publication *p = malloc(sizeof *p + stored->count * sizeof p->ids[0]);
    struct queue_event *events = calloc(stored->count, sizeof *events);
    msgpack_sbuffer *bytes = calloc(stored->count, sizeof *bytes);
    ASSERT(p && events && bytes);
    *p = (struct publication){store, metrics, done, done_arg, stored->count};
    for (size_t i = 0; i < stored->count; i++) {
        p->ids[i] = stored->items[i].event_id;
        msgpack_sbuffer_init(&bytes[i]);
        int rc = codec_encode_event(&stored->items[i], &bytes[i]);
        ASSERT(rc == 0);
        events[i] = (struct queue_event){bytes[i].data, bytes[i].size};
    }
    /* The queue copies the commands before it returns. */
    int rc = queue_publish_events(queue, events, stored->count, on_published, p);
    for (size_t i = 0; i < stored->count; i++)
        msgpack_sbuffer_destroy(&bytes[i]);
    free(bytes);
    free(events);
    if (rc != 0)
        free(p);
    return rc;
}
