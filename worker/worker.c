/*
 * worker.c -- the event loop of credits-worker (worker.h).
 *
 * One read brings a set of entries ("held" until acknowledged). Each entry
 * becomes a message: a valid job for the store, or an unstored rejection
 * decided here. Jobs are applied in batches of at most CREDITS_BATCH_MAX,
 * each one transaction; then every message's result is published, and only
 * then are the entries acknowledged. A failure anywhere leaves the entries
 * pending in Redis: they are read again and the job-ID dedupe makes the
 * second delivery a replay.
 */
#include "worker/worker.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "core/batch.h"
#include "core/codec.h"
#include "queue/queue.h"
#include "worker/log.h"
#include "worker/store.h"

#define DEAD_REASON_BYTES_MAX 400

enum worker_state {
    WORKER_WAITING,    /* nothing in flight: the next step is scheduled or awaited */
    WORKER_READING,    /* XREADGROUP in flight */
    WORKER_APPLYING,   /* a batch transaction in flight */
    WORKER_PUBLISHING, /* result writes in flight */
    WORKER_ACKING,     /* XACK in flight */
};

enum held_stage {
    HELD_NONE,    /* nothing held: read next */
    HELD_APPLY,   /* jobs from apply_from on are still to be decided */
    HELD_PUBLISH, /* every message decided: publish */
    HELD_ACK,     /* published: acknowledge */
};

/* One entry read, and what to publish for it. */
struct message {
    struct queue_entry *entry;
    bool is_job;      /* a valid job: jobs[job_index] */
    size_t job_index;
    bool decided;
    bool has_id;
    char id[JOB_ID_BYTES_MAX + 1];
    bool reply;
    msgpack_sbuffer result; /* empty: no result (a job the database refused) */
    enum queue_result_key key_mode;
    char dead_reason[DEAD_REASON_BYTES_MAX + 1]; /* "" when not dead-lettered */
};

/* The entries of one read, until acknowledged. */
struct held {
    enum held_stage stage;
    struct queue_entry *entries;
    size_t count;
    struct message *messages;
    struct batch_job *jobs;
    size_t job_count;
    size_t *job_message; /* job index -> message index */
    size_t apply_from;   /* first job not yet committed */
    bool isolating;      /* a batch failed for good: apply one job at a time */
    int attempts;        /* transient failures of the batch in flight */
    struct batch batch;
    bool batch_live;
};

struct worker {
    const struct config *config;
    struct event_base *base;
    struct queue *queue;
    struct store *store;
    enum worker_state state;
    struct held held;
    bool needs_pending; /* read this consumer's pending entries before new ones */
    char pending_after[QUEUE_STREAM_COUNT][QUEUE_ENTRY_ID_BYTES_MAX + 1];
    bool stopping;
    bool torn_down;
    int64_t queue_backoff_ms;
    int64_t store_backoff_ms;
    struct event *step_event;
    struct event *retry_timer;
    struct event *queue_timer;
    struct event *store_timer;
    struct event *shutdown_timer;
    struct event *signal_events[2];
};

static void schedule_step(struct worker *w)
{
    if (!w->torn_down)
        event_active(w->step_event, EV_TIMEOUT, 0);
}

static int64_t wall_clock_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Exponential backoff with jitter: a random delay in [delay/2, delay]. */
static struct timeval jittered(int64_t delay_ms)
{
    int64_t ms = delay_ms / 2 + (int64_t)(rand() % (int)(delay_ms / 2 + 1));
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
}

static int64_t next_backoff(int64_t current_ms)
{
    int64_t next = current_ms * 2;
    return next > WORKER_BACKOFF_MAX_MS ? WORKER_BACKOFF_MAX_MS : next;
}

/* ---------------------------------------------------------------------------
 * Held entries
 * ------------------------------------------------------------------------- */

static void held_free(struct held *h)
{
    if (h->batch_live)
        batch_free(&h->batch);
    for (size_t i = 0; i < h->count; i++)
        msgpack_sbuffer_destroy(&h->messages[i].result);
    queue_entries_free(h->entries, h->count);
    free(h->messages);
    free(h->jobs);
    free(h->job_message);
    memset(h, 0, sizeof *h);
}

/* Stream entry IDs are "<ms>-<seq>" from one Redis clock: their order across
 * the three streams is the order in which producers added them. */
static int compare_entry_ids(const struct queue_entry *a, const struct queue_entry *b)
{
    unsigned long long ams = 0, aseq = 0, bms = 0, bseq = 0;
    sscanf(a->id, "%llu-%llu", &ams, &aseq);
    sscanf(b->id, "%llu-%llu", &bms, &bseq);
    if (ams != bms)
        return ams < bms ? -1 : 1;
    if (aseq != bseq)
        return aseq < bseq ? -1 : 1;
    return (int)a->stream - (int)b->stream;
}

static int compare_entries(const void *a, const void *b)
{
    return compare_entry_ids(a, b);
}

static void set_message_result(struct message *m, const struct result *r)
{
    msgpack_sbuffer_destroy(&m->result);
    msgpack_sbuffer_init(&m->result);
    int rc = codec_encode_result(r, &m->result);
    ASSERT(rc == 0);
    m->decided = true;
}

/* An unstored rejection, decided without the database. */
static void reject_message(struct message *m, struct result *r)
{
    ASSERT(r->error != JOB_OK && !job_error_is_stored(r->error));
    r->done_at_ms = wall_clock_ms();
    m->has_id = r->has_id;
    if (r->has_id)
        strcpy(m->id, r->id);
    m->key_mode = r->has_id ? QUEUE_KEY_SET_NX : QUEUE_KEY_NONE;
    m->reply = m->reply && r->has_id;
    snprintf(m->dead_reason, sizeof m->dead_reason, "%s", job_error_name(r->error));
    set_message_result(m, r);
    char id[160], message[RESULT_MESSAGE_BYTES_MAX + 8];
    log_event(LOG_INFO, "job_rejected", "entry=%s id=%s error=%s message=%s", m->entry->id,
              r->has_id ? log_quote(r->id, id, sizeof id) : "-", job_error_name(r->error),
              log_quote(r->message, message, sizeof message));
}

static void classify_entry(struct held *h, size_t index)
{
    struct message *m = &h->messages[index];
    const struct queue_entry *entry = m->entry;
    struct result reject = {0};
    struct job job;
    if (!entry->has_job) {
        reject.error = JOB_ERR_INVALID_JOB;
        snprintf(reject.message, sizeof reject.message,
                 "the stream entry has no 'job' field (or was deleted before it was decided)");
        reject_message(m, &reject);
        return;
    }
    enum job_error error = codec_decode_job(entry->job, entry->job_len, &job, &reject);
    if (error != JOB_OK) {
        reject_message(m, &reject);
        return;
    }
    m->reply = job.reply;
    if (job.type != entry->stream) {
        result_init_for_job(&reject, &job);
        reject.error = JOB_ERR_WRONG_STREAM;
        snprintf(reject.message, sizeof reject.message, "a %s job does not belong on the %s stream",
                 job_type_name(job.type), job_type_name(entry->stream));
        reject_message(m, &reject);
        return;
    }
    m->is_job = true;
    m->has_id = true;
    strcpy(m->id, job.id);
    m->job_index = h->job_count;
    h->job_message[h->job_count] = index;
    h->jobs[h->job_count++].job = job;
}

/* Takes ownership of entries[0..count). */
static void hold(struct worker *w, struct queue_entry *entries, size_t count)
{
    struct held *h = &w->held;
    ASSERT(h->stage == HELD_NONE && count > 0);
    qsort(entries, count, sizeof *entries, compare_entries);
    h->entries = entries;
    h->count = count;
    h->messages = calloc(count, sizeof *h->messages);
    h->jobs = calloc(count, sizeof *h->jobs);
    h->job_message = calloc(count, sizeof *h->job_message);
    ASSERT(h->messages && h->jobs && h->job_message);
    for (size_t i = 0; i < count; i++) {
        h->messages[i].entry = &entries[i];
        msgpack_sbuffer_init(&h->messages[i].result);
        classify_entry(h, i);
    }
    h->stage = h->job_count > 0 ? HELD_APPLY : HELD_PUBLISH;
}

/* ---------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------- */

static void on_read(void *arg, int status, struct queue_entry *entries, size_t count)
{
    struct worker *w = arg;
    ASSERT(w->state == WORKER_READING);
    w->state = WORKER_WAITING;
    if (status != 0 || w->torn_down) {
        queue_entries_free(entries, count);
        schedule_step(w);
        return;
    }
    if (w->needs_pending) {
        if (count == 0)
            w->needs_pending = false; /* this consumer's backlog is done */
        for (size_t i = 0; i < count; i++)
            strcpy(w->pending_after[entries[i].stream], entries[i].id);
    }
    if (count > 0) {
        log_event(LOG_DEBUG, "read", "entries=%zu pending=%d", count, w->needs_pending);
        hold(w, entries, count);
    } else {
        queue_entries_free(entries, count);
    }
    schedule_step(w);
}

static void start_read(struct worker *w)
{
    const char *after[QUEUE_STREAM_COUNT];
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++)
        after[s] = w->pending_after[s];
    size_t count = (size_t)w->config->batch_jobs_max;
    if (queue_read(w->queue, count, w->needs_pending, after, on_read, w) == 0)
        w->state = WORKER_READING;
}

/* ---------------------------------------------------------------------------
 * Applying
 * ------------------------------------------------------------------------- */

static void take_decisions(struct worker *w)
{
    struct held *h = &w->held;
    struct batch *batch = &h->batch;
    for (size_t i = 0; i < batch->job_count; i++) {
        const struct batch_job *bj = &batch->jobs[i];
        struct message *m = &h->messages[h->job_message[h->apply_from + i]];
        ASSERT(bj->outcome != BATCH_UNDECIDED && !m->decided);
        bool conflict = bj->outcome == BATCH_CONFLICT;
        msgpack_sbuffer_destroy(&m->result);
        msgpack_sbuffer_init(&m->result);
        int rc = msgpack_sbuffer_write(&m->result, bj->encoded.data, bj->encoded.size);
        ASSERT(rc == 0);
        m->decided = true;
        /* id_conflict: the result key keeps the original job's result. */
        m->key_mode = conflict ? QUEUE_KEY_NONE : QUEUE_KEY_SET;
        m->reply = m->reply && !conflict;
        if (conflict)
            snprintf(m->dead_reason, sizeof m->dead_reason, "id_conflict");
        char id[160];
        log_event(LOG_DEBUG, "job_decided", "id=%s outcome=%d error=%s replayed=%d",
                  log_quote(bj->job.id, id, sizeof id), (int)bj->outcome,
                  bj->result.error == JOB_OK ? "-" : job_error_name(bj->result.error),
                  bj->result.replayed);
    }
}

static void batch_done(struct worker *w)
{
    struct held *h = &w->held;
    size_t n = h->batch.job_count;
    batch_free(&h->batch);
    h->batch_live = false;
    h->apply_from += n;
    h->attempts = 0;
    if (h->apply_from == h->job_count)
        h->stage = HELD_PUBLISH;
}

/* A job the database refuses even alone: dead-letter it with the error. */
static void dead_letter_job(struct worker *w)
{
    struct held *h = &w->held;
    struct message *m = &h->messages[h->job_message[h->apply_from]];
    snprintf(m->dead_reason, sizeof m->dead_reason, "database error: %s",
             store_errstr(w->store));
    m->key_mode = QUEUE_KEY_NONE;
    m->reply = false;
    m->decided = true;
    char id[160], reason[DEAD_REASON_BYTES_MAX + 8];
    log_event(LOG_ERROR, "job_dead_lettered", "id=%s reason=%s", log_quote(m->id, id, sizeof id),
              log_quote(m->dead_reason, reason, sizeof reason));
    batch_done(w);
}

static void on_failed(struct worker *w)
{
    struct held *h = &w->held;
    char why[STORE_ERRSTR_BYTES + 8];
    log_event(LOG_ERROR, "batch_failed", "jobs=%zu error=%s", h->batch.job_count,
              log_quote(store_errstr(w->store), why, sizeof why));
    if (h->batch.job_count > 1) {
        /* Find the job that fails: the others must not wait behind it. */
        batch_free(&h->batch);
        h->batch_live = false;
        h->isolating = true;
        h->attempts = 0;
        return;
    }
    dead_letter_job(w);
}

static void on_applied(void *arg, enum store_status status)
{
    struct worker *w = arg;
    struct held *h = &w->held;
    ASSERT(w->state == WORKER_APPLYING && h->batch_live);
    w->state = WORKER_WAITING;
    if (w->torn_down)
        return;
    if (status == STORE_OK) {
        log_event(LOG_DEBUG, "batch_committed", "jobs=%zu", h->batch.job_count);
        take_decisions(w);
        batch_done(w);
    } else if (status == STORE_RETRY && h->attempts < WORKER_RETRIES_MAX) {
        h->attempts++;
        char why[STORE_ERRSTR_BYTES + 8];
        log_event(LOG_WARN, "batch_retry", "jobs=%zu attempt=%d error=%s", h->batch.job_count,
                  h->attempts, log_quote(store_errstr(w->store), why, sizeof why));
        batch_free(&h->batch);
        h->batch_live = false;
        struct timeval delay = jittered(WORKER_BACKOFF_MIN_MS << h->attempts);
        evtimer_add(w->retry_timer, &delay);
        return;
    } else if (status == STORE_LOST) {
        /* Unknown outcome: let Redis deliver the entries again; the job-ID
         * dedupe turns whatever did commit into replays. */
        log_event(LOG_WARN, "batch_outcome_unknown", "jobs=%zu", h->batch.job_count);
        held_free(h);
        w->needs_pending = true;
    } else {
        on_failed(w);
    }
    schedule_step(w);
}

static void start_apply(struct worker *w)
{
    struct held *h = &w->held;
    ASSERT(!h->batch_live && h->apply_from < h->job_count);
    size_t left = h->job_count - h->apply_from;
    size_t max = h->isolating ? 1 : (size_t)w->config->batch_jobs_max;
    batch_init(&h->batch, h->jobs + h->apply_from, left < max ? left : max);
    h->batch_live = true;
    if (store_apply(w->store, &h->batch, on_applied, w) != 0) {
        batch_free(&h->batch);
        h->batch_live = false;
        return;
    }
    if (h->batch_live)
        w->state = WORKER_APPLYING;
}

/* ---------------------------------------------------------------------------
 * Publishing and acknowledging
 * ------------------------------------------------------------------------- */

static void on_acked(void *arg, int status)
{
    struct worker *w = arg;
    ASSERT(w->state == WORKER_ACKING);
    w->state = WORKER_WAITING;
    if (w->torn_down)
        return;
    if (status == 0)
        held_free(&w->held);
    else
        log_event(LOG_WARN, "ack_failed", "error=%s", queue_errstr(w->queue));
    schedule_step(w);
}

static void start_ack(struct worker *w)
{
    struct held *h = &w->held;
    const struct queue_entry **entries = calloc(h->count, sizeof *entries);
    ASSERT(entries != NULL);
    for (size_t i = 0; i < h->count; i++)
        entries[i] = &h->entries[i];
    if (queue_ack(w->queue, entries, h->count, on_acked, w) == 0)
        w->state = WORKER_ACKING;
    free(entries);
}

static void on_published(void *arg, int status)
{
    struct worker *w = arg;
    ASSERT(w->state == WORKER_PUBLISHING);
    w->state = WORKER_WAITING;
    if (w->torn_down)
        return;
    if (status == 0) {
        w->held.stage = HELD_ACK;
        schedule_step(w);
        return;
    }
    /* Not acknowledged: publish again once Redis answers. */
    log_event(LOG_WARN, "publish_failed", "error=%s", queue_errstr(w->queue));
    struct timeval delay = jittered(WORKER_BACKOFF_MIN_MS * 8);
    evtimer_add(w->retry_timer, &delay);
}

static void start_publish(struct worker *w)
{
    struct held *h = &w->held;
    struct queue_publish *items = calloc(h->count, sizeof *items);
    ASSERT(items != NULL);
    for (size_t i = 0; i < h->count; i++) {
        const struct message *m = &h->messages[i];
        ASSERT(m->decided);
        items[i] = (struct queue_publish){
            .entry = m->entry,
            .result = m->result.size ? m->result.data : NULL,
            .result_len = m->result.size,
            .job_id = m->has_id ? m->id : NULL,
            .key_mode = m->result.size ? m->key_mode : QUEUE_KEY_NONE,
            .reply = m->reply && m->result.size > 0,
            .dead_reason = m->dead_reason[0] ? m->dead_reason : NULL,
        };
    }
    if (queue_publish(w->queue, items, h->count, on_published, w) == 0)
        w->state = WORKER_PUBLISHING;
    free(items);
}

/* ---------------------------------------------------------------------------
 * The step: what to do next
 * ------------------------------------------------------------------------- */

static void step(struct worker *w)
{
    if (w->state != WORKER_WAITING || evtimer_pending(w->retry_timer, NULL))
        return;
    struct held *h = &w->held;
    bool redis = queue_is_ready(w->queue), postgres = store_is_ready(w->store);
    switch (h->stage) {
    case HELD_NONE:
        if (w->stopping) {
            log_event(LOG_INFO, "stopped", "clean=1");
            event_base_loopbreak(w->base);
        } else if (redis && postgres) {
            start_read(w);
        }
        break;
    case HELD_APPLY:
        if (postgres)
            start_apply(w);
        break;
    case HELD_PUBLISH:
        if (redis)
            start_publish(w);
        break;
    case HELD_ACK:
        if (redis)
            start_ack(w);
        break;
    default:
        UNREACHABLE();
    }
}

static void on_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    step(arg);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    step(arg);
}

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

static void on_queue_ready(void *arg)
{
    struct worker *w = arg;
    log_event(LOG_INFO, "redis_ready", "consumer=%s", w->config->consumer);
    w->queue_backoff_ms = WORKER_BACKOFF_MIN_MS;
    /* Whatever this consumer was given before is read again first. */
    w->needs_pending = true;
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++)
        strcpy(w->pending_after[s], "0");
    schedule_step(w);
}

static void on_queue_lost(void *arg)
{
    struct worker *w = arg;
    char why[300];
    log_event(LOG_WARN, "redis_lost", "error=%s retry_ms=%lld",
              log_quote(queue_errstr(w->queue), why, sizeof why),
              (long long)w->queue_backoff_ms);
    struct timeval delay = jittered(w->queue_backoff_ms);
    w->queue_backoff_ms = next_backoff(w->queue_backoff_ms);
    if (!w->torn_down)
        evtimer_add(w->queue_timer, &delay);
}

static void on_queue_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    if (queue_connect(w->queue) != 0)
        on_queue_lost(w);
}

static void on_store_ready(void *arg)
{
    struct worker *w = arg;
    log_event(LOG_INFO, "postgres_ready", "application_name=credits-worker");
    w->store_backoff_ms = WORKER_BACKOFF_MIN_MS;
    schedule_step(w);
}

static void on_store_lost(void *arg)
{
    struct worker *w = arg;
    char why[STORE_ERRSTR_BYTES + 8];
    log_event(LOG_WARN, "postgres_lost", "error=%s retry_ms=%lld",
              log_quote(store_errstr(w->store), why, sizeof why),
              (long long)w->store_backoff_ms);
    struct timeval delay = jittered(w->store_backoff_ms);
    w->store_backoff_ms = next_backoff(w->store_backoff_ms);
    if (!w->torn_down)
        evtimer_add(w->store_timer, &delay);
}

static void on_store_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    if (store_connect(w->store) != 0)
        on_store_lost(w);
}

/* ---------------------------------------------------------------------------
 * Stopping
 * ------------------------------------------------------------------------- */

static void on_signal(evutil_socket_t signum, short what, void *arg)
{
    (void)what;
    struct worker *w = arg;
    if (w->stopping)
        return;
    w->stopping = true;
    log_event(LOG_INFO, "stopping", "signal=%d held=%zu", (int)signum, w->held.count);
    int64_t ms = w->config->shutdown_timeout_ms;
    struct timeval timeout = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(w->shutdown_timer, &timeout);
    schedule_step(w);
}

static void on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    log_event(LOG_WARN, "stopped_unfinished",
              "held=%zu note=\"left pending in Redis for the next worker\"", w->held.count);
    event_base_loopbreak(w->base);
}

/* ---------------------------------------------------------------------------
 * Set-up and tear-down
 * ------------------------------------------------------------------------- */

static void queue_config_from(const struct config *config, struct queue_config *qc)
{
    memset(qc, 0, sizeof *qc);
    qc->redis = config->redis;
    snprintf(qc->prefix, sizeof qc->prefix, "%s", config->prefix);
    snprintf(qc->group, sizeof qc->group, "%s", config->group);
    snprintf(qc->consumer, sizeof qc->consumer, "%s", config->consumer);
    qc->result_ttl_s = config->result_ttl_s;
    qc->results_maxlen = config->results_maxlen;
    qc->block_ms = config->block_ms;
}

static void make_events(struct worker *w)
{
    w->step_event = event_new(w->base, -1, 0, on_step, w);
    w->retry_timer = evtimer_new(w->base, on_retry, w);
    w->queue_timer = evtimer_new(w->base, on_queue_timer, w);
    w->store_timer = evtimer_new(w->base, on_store_timer, w);
    w->shutdown_timer = evtimer_new(w->base, on_shutdown_timeout, w);
    w->signal_events[0] = evsignal_new(w->base, SIGTERM, on_signal, w);
    w->signal_events[1] = evsignal_new(w->base, SIGINT, on_signal, w);
    ASSERT(w->step_event && w->retry_timer && w->queue_timer && w->store_timer &&
           w->shutdown_timer && w->signal_events[0] && w->signal_events[1]);
    event_add(w->signal_events[0], NULL);
    event_add(w->signal_events[1], NULL);
}

static void free_events(struct worker *w)
{
    struct event *events[] = {w->step_event,     w->retry_timer,      w->queue_timer,
                              w->store_timer,    w->shutdown_timer,   w->signal_events[0],
                              w->signal_events[1]};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        event_free(events[i]);
}

int worker_run(const struct config *config)
{
    struct worker w = {.config = config,
                       .queue_backoff_ms = WORKER_BACKOFF_MIN_MS,
                       .store_backoff_ms = WORKER_BACKOFF_MIN_MS};
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)wall_clock_ms());
    w.base = event_base_new();
    if (!w.base) {
        log_event(LOG_ERROR, "start_failed", "error=\"cannot create the event loop\"");
        return 1;
    }
    make_events(&w);
    struct queue_config qc;
    queue_config_from(config, &qc);
    w.queue = queue_new(w.base, &qc, on_queue_ready, on_queue_lost, &w);
    w.store = store_new(w.base, config->database_url, on_store_ready, on_store_lost, &w);
    char url[600];
    redis_url_redacted(&config->redis, url, sizeof url);
    log_event(LOG_INFO, "started", "version=%s consumer=%s group=%s prefix=%s redis=%s batch_max=%lld",
              CREDITS_VERSION, config->consumer, config->group, config->prefix, url,
              (long long)config->batch_jobs_max);
    if (queue_connect(w.queue) != 0)
        on_queue_lost(&w);
    if (store_connect(w.store) != 0)
        on_store_lost(&w);

    event_base_dispatch(w.base);

    w.torn_down = true;
    queue_free(w.queue);
    store_free(w.store);
    held_free(&w.held);
    free_events(&w);
    event_base_free(w.base);
    return 0;
}
