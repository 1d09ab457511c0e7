/*
 * worker.c -- the event loop of credits-worker (worker.h).
 *
 * One read brings a set of entries, held in a slot until acknowledged. Each
 * entry becomes a message: a valid job for the store, or an unstored
 * rejection decided here. Jobs are applied in batches of at most
 * CREDITS_BATCH_MAX, each one transaction; then every message's result is
 * published, and only then are the entries acknowledged. A failure anywhere
 * leaves the entries pending in Redis: they are read again, and the job-ID
 * dedupe makes the second delivery a replay.
 *
 * Two slots make a pipeline: while one slot's batch commits in PostgreSQL,
 * the other is read, published or acknowledged in Redis. Slots are applied
 * and published in the order they were read (FIFO), so a job's decision
 * never depends on how the work overlapped.
 */
#include "worker/daemon/worker.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "core/batch.h"
#include "core/codec.h"
#include "core/job_type.h"
#include "queue/queue.h"
#include "worker/daemon/http.h"
#include "worker/common/clock.h"
#include "worker/common/log.h"
#include "worker/daemon/metrics.h"
#include "worker/daemon/outbox.h"
#include "worker/daemon/store.h"
#include "worker/daemon/sweeper.h"

#define DEAD_REASON_BYTES_MAX 400
#define WORKER_SLOTS 2
#define WORKER_STATS_INTERVAL_MS 1000 /* pending gauges refreshed, job streams trimmed */
#define WORKER_STALL_MS 60000         /* held work with no progress this long: not live */

/* Where the entries of one read are; every move goes through held_move(),
 * which refuses a move the pipeline never makes. */
enum held_stage {
    HELD_NONE,    /* empty: may be read into */
    HELD_APPLY,   /* jobs from apply_from on are still to be decided */
    HELD_PUBLISH, /* every message decided: publish */
    HELD_ACK,     /* published: acknowledge */
};

/* What became of one entry; it says what is published for it. */
enum message_outcome {
    MESSAGE_PENDING,   /* a valid job, waiting for its batch */
    MESSAGE_REJECTED,  /* an unstored rejection decided here: result (SET NX when
                        * the ID is readable), dead letter */
    MESSAGE_DECIDED,   /* a new decision: result (SET) */
    MESSAGE_REPLAYED,  /* the stored decision again: result (SET), replayed */
    MESSAGE_CONFLICT,  /* id_conflict: result on P:results only, dead letter */
    MESSAGE_SET_ASIDE, /* delivered too often without a decision: dead letter only */
    MESSAGE_REFUSED,   /* the database refused the job alone: dead letter only */
};

/* One entry read, and what to publish for it. */
struct message {
    struct queue_entry *entry;
    enum message_outcome outcome;
    size_t job_index;              /* a job (not MESSAGE_REJECTED/SET_ASIDE): jobs[job_index] */
    char id[JOB_ID_BYTES_MAX + 1]; /* "" when no ID was readable */
    bool reply;                    /* the job asked for P:reply:{id} */
    msgpack_sbuffer result;        /* empty: no result */
    /* What was decided, for the metrics. */
    bool has_type;
    enum job_type type;
    enum job_error error;
    char dead_reason[DEAD_REASON_BYTES_MAX + 1]; /* dead-lettered: why */
};

struct worker;

/* One connection the worker keeps up (Redis through the queue, PostgreSQL
 * through the store): both are reconnected the same way, by the functions
 * under "Connections" below. */
#define WORKER_PEERS 2

struct peer {
    struct worker *worker;
    enum metrics_peer id;
    const char *name;                 /* "redis", "postgres": the log events' prefix */
    int (*connect)(struct worker *w); /* 0: started (ready or lost follows) */
    const char *(*errstr)(const struct worker *w);
    int64_t backoff_ms;
    struct event *timer;
    bool was_ready; /* ready before: the next ready is a reconnect */
};

/* The entries of one read, until acknowledged. The arrays are allocated
 * once, for the most one read can bring, and reused. */
struct held {
    struct worker *worker;
    enum held_stage stage;
    bool busy;                   /* an apply, publish or ack of this slot is in flight */
    uint64_t seq;                /* read order: lower is older */
    struct queue_entry *entries; /* from the queue; owned while held */
    size_t count;
    size_t capacity;
    struct message *messages;
    struct batch_job *jobs;
    size_t job_count;
    size_t *job_message; /* job index -> message index */
    size_t apply_from;   /* first job not yet committed */
    bool suspect;        /* one entry read alone after a worker died (suspect_pass) */
    bool isolating;      /* a batch failed for good: apply one job at a time */
    size_t isolate_from; /* isolating: the jobs [isolate_from, isolate_end) of the */
    size_t isolate_end;  /* batch that failed */
    int attempts;        /* transient failures of the batch in flight */
    struct batch batch;
    bool batch_live;
};

struct worker {
    const struct config *config;
    struct event_base *base;
    struct queue *queue;
    struct store *store;
    struct sweeper *sweeper;
    struct held slots[WORKER_SLOTS];
    uint64_t next_seq;
    struct held *read_slot; /* the slot a read in flight fills; NULL when none */
    bool prefetch_dry;      /* a non-blocking read found nothing: wait for progress */
    bool needs_pending;     /* read this consumer's pending entries before new ones */
    /* The pending entries of a worker that died (this consumer's at start,
     * or another's once claimed) may hold the job that killed it: they are
     * read and decided one at a time, each claimed anew (its delivery count
     * alone goes up), and one delivered more than CREDITS_MAX_DELIVERIES
     * times that way is set aside. */
    bool suspect_pass;
    bool suspect_lookup;         /* finding the oldest pending entry */
    bool suspect_read;           /* the read in flight claims one */
    struct queue_oldest suspect; /* found: the next one to claim */
    char pending_after[QUEUE_STREAM_COUNT][QUEUE_ENTRY_ID_BYTES_MAX + 1];
    bool stopping;
    bool marks_flushed; /* stopping: the pending marks were sent */
    bool torn_down;
    bool reset_redis;                /* a read failed on a live connection: reconnect */
    struct peer peers[WORKER_PEERS]; /* [METRICS_REDIS], [METRICS_POSTGRES] */
    /* The database could not decide a batch (STORE_UNAVAILABLE): the held
     * entries wait, the worker is not ready, and the batch is tried again
     * after db_backoff_ms (capped); cleared by the next commit. */
    bool db_unavailable;
    int64_t db_backoff_ms;
    /* The breaker: jobs in a row that failed alone with the same SQLSTATE
     * (lone_code), since the last commit. */
    int lone_failures;
    char lone_code[8];
    struct event *step_event;
    struct event *retry_timer;
    struct event *shutdown_timer;
    struct event *signal_events[2];
    struct event *stats_timer;
    struct event *claim_timer;
    struct metrics metrics;
    struct http *http;
    int64_t last_progress_ms;
};

static void schedule_step(struct worker *w)
{
    if (!w->torn_down)
        event_active(w->step_event, EV_TIMEOUT, 0);
}

/* Reads this consumer's pending entries from the start before new ones. */
static void read_own_pending_again(struct worker *w)
{
    w->needs_pending = true;
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++)
        strcpy(w->pending_after[s], "0");
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

static void held_init(struct held *h, struct worker *w, size_t capacity)
{
    memset(h, 0, sizeof *h);
    h->worker = w;
    h->capacity = capacity;
    h->messages = calloc(capacity, sizeof *h->messages);
    h->jobs = calloc(capacity, sizeof *h->jobs);
    h->job_message = calloc(capacity, sizeof *h->job_message);
    ASSERT(h->messages && h->jobs && h->job_message);
    for (size_t i = 0; i < capacity; i++)
        msgpack_sbuffer_init(&h->messages[i].result);
}

/* The only place a slot's stage changes. */
static void held_move(struct held *h, enum held_stage to)
{
    bool allowed = false;
    switch (h->stage) {
    case HELD_NONE:
        allowed = to == HELD_APPLY || to == HELD_PUBLISH;
        break;
    case HELD_APPLY:
        allowed = to == HELD_PUBLISH || to == HELD_NONE; /* decided, or dropped uncommitted */
        break;
    case HELD_PUBLISH:
        allowed = to == HELD_ACK;
        break;
    case HELD_ACK:
        allowed = to == HELD_NONE;
        break;
    }
    ASSERT(allowed);
    h->stage = to;
}

/* Empties the slot (the entries stay pending in Redis unless acknowledged). */
static void held_clear(struct held *h)
{
    ASSERT(!h->busy);
    if (h->batch_live)
        batch_free(&h->batch);
    h->batch_live = false;
    for (size_t i = 0; i < h->count; i++) {
        struct message *m = &h->messages[i];
        msgpack_sbuffer result = m->result;
        result.size = 0; /* keep the buffer for the next read */
        memset(m, 0, sizeof *m);
        m->result = result;
    }
    queue_entries_free(h->entries, h->count);
    h->worker->metrics.inflight_jobs -= (int64_t)h->count;
    h->entries = NULL;
    h->count = 0;
    h->job_count = 0;
    h->apply_from = 0;
    h->suspect = false;
    h->isolating = false;
    h->isolate_from = 0;
    h->isolate_end = 0;
    h->attempts = 0;
    if (h->stage != HELD_NONE)
        held_move(h, HELD_NONE);
}

static void held_free(struct held *h)
{
    h->busy = false;
    held_clear(h);
    for (size_t i = 0; i < h->capacity; i++)
        msgpack_sbuffer_destroy(&h->messages[i].result);
    free(h->messages);
    free(h->jobs);
    free(h->job_message);
}

/* Stream entry IDs come from one Redis clock: their order across the three
 * streams is the order in which producers added the entries. */
static int compare_entries(const void *pa, const void *pb)
{
    const struct queue_entry *a = pa, *b = pb;
    if (a->id_ms != b->id_ms)
        return a->id_ms < b->id_ms ? -1 : 1;
    if (a->id_seq != b->id_seq)
        return a->id_seq < b->id_seq ? -1 : 1;
    return (int)a->stream - (int)b->stream;
}

static void set_message_result(struct message *m, const void *bytes, size_t len)
{
    m->result.size = 0;
    int rc = msgpack_sbuffer_write(&m->result, bytes, len);
    ASSERT(rc == 0);
}

/* An unstored rejection, decided without the database. */
static void reject_message(struct message *m, struct result *r)
{
    ASSERT(m->outcome == MESSAGE_PENDING);
    ASSERT(r->error != JOB_OK && !job_error_is_stored(r->error));
    r->done_at_ms = wall_clock_ms();
    m->outcome = MESSAGE_REJECTED;
    if (r->has_id)
        strcpy(m->id, r->id);
    m->reply = m->reply && r->has_id;
    m->has_type = r->has_type;
    m->type = r->type;
    m->error = r->error;
    snprintf(m->dead_reason, sizeof m->dead_reason, "%s", job_error_name(r->error));
    m->result.size = 0;
    int rc = codec_encode_result(r, &m->result);
    ASSERT(rc == 0);
    char id[160], message[RESULT_MESSAGE_BYTES_MAX + 8];
    log_event(LOG_INFO, "job_rejected", "entry=%s id=%s error=%s message=%s", m->entry->id,
              r->has_id ? log_quote(r->id, id, sizeof id) : "-", job_error_name(r->error),
              log_quote(r->message, message, sizeof message));
}

/* An entry read alone after a worker died, again and again without a
 * decision (it crashed the worker each time, say), is set aside so that it
 * cannot stop the stream. Entries read again for other reasons (a lost
 * connection) are not suspected of anything. */
static bool set_aside(const struct worker *w, const struct held *h, struct message *m)
{
    const struct queue_entry *entry = m->entry;
    if (!h->suspect || entry->deliveries <= w->config->max_deliveries)
        return false;
    snprintf(m->dead_reason, sizeof m->dead_reason,
             "delivered %lld times without a decision (CREDITS_MAX_DELIVERIES=%lld)",
             (long long)entry->deliveries, (long long)w->config->max_deliveries);
    m->outcome = MESSAGE_SET_ASIDE;
    log_event(LOG_ERROR, "entry_dead_lettered", "entry=%s stream=%s deliveries=%lld", entry->id,
              job_stream_name(entry->stream), (long long)entry->deliveries);
    return true;
}

/* A job the codec refused: its id, type and user read best-effort from
 * whatever the bytes allow (contract 9.9), so that the result reaches
 * P:result:{id} and a waiting producer; an entry the queue cut is named by
 * its whole length. */
static void reject_unreadable(const struct queue_entry *entry, struct result *reject, bool *reply)
{
    struct result identity;
    bool identity_reply = false;
    codec_decode_identity(entry->job, entry->job_len, &identity, &identity_reply);
    if (!reject->has_id && identity.has_id) {
        reject->has_id = true;
        memcpy(reject->id, identity.id, sizeof reject->id);
    }
    if (!reject->has_type && identity.has_type) {
        reject->has_type = true;
        reject->type = identity.type;
    }
    if (!reject->has_user && identity.has_user) {
        reject->has_user = true;
        memcpy(reject->user, identity.user, sizeof reject->user);
    }
    *reply = *reply || identity_reply;
    if (entry->job_len < entry->job_bytes)
        snprintf(reject->message, sizeof reject->message, "job is %zu bytes; the limit is %d",
                 entry->job_bytes, JOB_BYTES_MAX);
}

/* The IDs a job may have (contracts 9.7, 9.9): `expire:` is the worker's
 * own, and a stream with a namespace (CREDITS_ID_PREFIXES) takes IDs in it
 * only, so that a producer cannot take an ID of another's, such as the
 * scheduler's predictable alloc:{user}:{period}. */
static bool id_in_namespace(const struct config *config, const struct job *job,
                            enum job_stream stream, struct result *reject)
{
    const char *prefix = config->id_prefixes[stream];
    bool reserved =
        strncmp(job->id, CONFIG_RESERVED_ID_PREFIX, strlen(CONFIG_RESERVED_ID_PREFIX)) == 0;
    bool outside = prefix[0] != '\0' && strncmp(job->id, prefix, strlen(prefix)) != 0;
    if (!reserved && !outside)
        return true;
    result_init_for_job(reject, job);
    reject->error = JOB_ERR_INVALID_JOB;
    if (reserved)
        snprintf(reject->message, sizeof reject->message,
                 "job IDs starting with '%s' are reserved for the worker's own jobs",
                 CONFIG_RESERVED_ID_PREFIX);
    else
        snprintf(reject->message, sizeof reject->message,
                 "a job ID on the %s stream must start with '%s' (CREDITS_ID_PREFIXES)",
                 job_stream_name(stream), prefix);
    return false;
}

static void classify_entry(struct held *h, size_t index)
{
    struct message *m = &h->messages[index];
    const struct queue_entry *entry = m->entry;
    struct result reject = {0};
    struct job job;
    m->outcome = MESSAGE_PENDING;
    if (set_aside(h->worker, h, m))
        return;
    if (!entry->has_job) {
        reject.error = JOB_ERR_INVALID_JOB;
        snprintf(reject.message, sizeof reject.message,
                 "the stream entry has no 'job' field (or was deleted before it was decided)");
        reject_message(m, &reject);
        return;
    }
    enum job_error error = codec_decode_job(entry->job, entry->job_len, &job, &reject);
    m->reply = job.reply;
    if (error != JOB_OK) {
        reject_unreadable(entry, &reject, &m->reply);
        reject_message(m, &reject);
        return;
    }
    if (job_type_ops(job.type)->stream != entry->stream) {
        result_init_for_job(&reject, &job);
        reject.error = JOB_ERR_WRONG_STREAM;
        snprintf(reject.message, sizeof reject.message, "a %s job does not belong on the %s stream",
                 job_type_name(job.type), job_stream_name(entry->stream));
        reject_message(m, &reject);
        return;
    }
    if (!id_in_namespace(h->worker->config, &job, entry->stream, &reject)) {
        reject_message(m, &reject);
        return;
    }
    strcpy(m->id, job.id);
    m->job_index = h->job_count;
    h->job_message[h->job_count] = index;
    h->jobs[h->job_count++].job = job;
}

/* Takes ownership of entries[0..count). */
static void hold(struct worker *w, struct held *h, struct queue_entry *entries, size_t count)
{
    ASSERT(h->stage == HELD_NONE && count > 0 && count <= h->capacity);
    qsort(entries, count, sizeof *entries, compare_entries);
    h->entries = entries;
    h->count = count;
    h->seq = w->next_seq++;
    h->suspect = w->suspect_read;
    w->metrics.inflight_jobs += (int64_t)count;
    for (size_t i = 0; i < count; i++) {
        h->messages[i].entry = &entries[i];
        classify_entry(h, i);
    }
    held_move(h, h->job_count > 0 ? HELD_APPLY : HELD_PUBLISH);
}

/* A slot moved on: a dry prefetch may find something now. */
static void progressed(struct worker *w)
{
    w->last_progress_ms = clock_monotonic_ms();
    w->prefetch_dry = false;
    schedule_step(w);
}

/* ---------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------- */

static void on_read(void *arg, int status, struct queue_entry *entries, size_t count)
{
    struct worker *w = arg;
    struct held *h = w->read_slot;
    ASSERT(h != NULL);
    w->read_slot = NULL;
    if (status != 0 || w->torn_down) {
        w->suspect_read = false;
        queue_entries_free(entries, count);
        if (status != 0 && !w->torn_down && queue_is_ready(w->queue)) {
            /* Redis answered the read with an error (NOGROUP: a stream was
             * deleted, say): reading again at once would spin. Reconnect,
             * with backoff; the connection's set-up creates the group anew. */
            char why[300];
            log_event(LOG_WARN, "read_failed", "error=%s",
                      log_quote(queue_errstr(w->queue), why, sizeof why));
            w->reset_redis = true;
        }
        schedule_step(w);
        return;
    }
    bool own_pending = w->needs_pending && !w->suspect_read;
    bool suspect = w->suspect_read;
    if (own_pending) {
        if (count == 0)
            w->needs_pending = false; /* this consumer's backlog is done */
        for (size_t i = 0; i < count; i++)
            strcpy(w->pending_after[entries[i].stream], entries[i].id);
    }
    if (count > 0) {
        log_event(LOG_DEBUG, "read", "entries=%zu pending=%d", count, w->needs_pending);
        w->prefetch_dry = false;
        hold(w, h, entries, count);
    } else {
        queue_entries_free(entries, count);
        /* Only a read of new entries says that none are waiting. */
        if (!own_pending && !suspect)
            w->prefetch_dry = true;
    }
    w->suspect_read = false;
    schedule_step(w);
}

static bool slot_is_empty(const struct held *h)
{
    return h->stage == HELD_NONE;
}

/* Reads into an empty slot. A read blocks only when nothing else is held:
 * a blocked read holds up every other command on the Redis connection. */
static void on_oldest(void *arg, int status, const struct queue_oldest *oldest)
{
    struct worker *w = arg;
    w->suspect_lookup = false;
    if (w->torn_down)
        return;
    if (status != 0) {
        if (queue_is_ready(w->queue)) {
            char why[300];
            log_event(LOG_WARN, "read_failed", "error=%s",
                      log_quote(queue_errstr(w->queue), why, sizeof why));
            w->reset_redis = true; /* as for a failed read: reconnect, with backoff */
        }
    } else if (oldest->found) {
        w->suspect = *oldest;
    } else {
        /* Every entry a worker left is decided: back to batches. */
        log_event(LOG_INFO, "recovered", "note=\"every entry left pending was decided alone\"");
        w->suspect_pass = false;
        w->needs_pending = false;
    }
    schedule_step(w);
}

/* After a worker died: the oldest entry it left, claimed anew, alone. */
static void start_suspect_read(struct worker *w, struct held *h)
{
    if (!w->suspect.found) {
        w->suspect_lookup = queue_oldest_pending(w->queue, on_oldest, w) == 0;
        return;
    }
    if (queue_claim_entry(w->queue, &w->suspect, on_read, w) == 0) {
        log_event(LOG_INFO, "entry_read_alone", "entry=%s stream=%s deliveries=%lld", w->suspect.id,
                  job_stream_name(w->suspect.stream), (long long)w->suspect.deliveries + 1);
        w->read_slot = h;
        w->suspect_read = true;
        w->suspect.found = false;
    }
}

static void start_read(struct worker *w, struct held *h, bool others_held)
{
    ASSERT(w->read_slot == NULL && slot_is_empty(h));
    if (w->suspect_pass) {
        ASSERT(!others_held);
        start_suspect_read(w, h);
        return;
    }
    const char *after[QUEUE_STREAM_COUNT];
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++)
        after[s] = w->pending_after[s];
    size_t count = (size_t)w->config->batch_jobs_max;
    enum queue_read_mode mode = w->needs_pending ? QUEUE_READ_OWN_PENDING
                                : others_held    ? QUEUE_READ_NEW
                                                 : QUEUE_READ_NEW_BLOCKING;
    if (queue_read(w->queue, count, mode, after, on_read, w) == 0) {
        w->read_slot = h;
    }
}

/* ---------------------------------------------------------------------------
 * Applying
 * ------------------------------------------------------------------------- */

/* Rejections decided against the ledger are logged at info, as the ones
 * decided without it are (reject_message()); replays and id_conflicts at
 * debug (the first decision was logged). */
static void log_decision(const struct message *m, const struct batch_job *bj)
{
    const struct result *r = &bj->result;
    char id[160], message[RESULT_MESSAGE_BYTES_MAX + 8];
    if (bj->outcome == BATCH_DECIDED && r->error != JOB_OK)
        log_event(LOG_INFO, "job_rejected", "entry=%s id=%s error=%s message=%s", m->entry->id,
                  log_quote(bj->job.id, id, sizeof id), job_error_name(r->error),
                  log_quote(r->message, message, sizeof message));
    else if (r->error != JOB_OK || r->replayed)
        log_event(LOG_DEBUG, "job_decided", "id=%s error=%s replayed=%d",
                  log_quote(bj->job.id, id, sizeof id),
                  r->error == JOB_OK ? "-" : job_error_name(r->error), r->replayed);
}

static void take_decisions(struct held *h)
{
    struct batch *batch = &h->batch;
    for (size_t i = 0; i < batch->job_count; i++) {
        const struct batch_job *bj = &batch->jobs[i];
        struct message *m = &h->messages[h->job_message[h->apply_from + i]];
        ASSERT(bj->outcome != BATCH_UNDECIDED && m->outcome == MESSAGE_PENDING);
        set_message_result(m, bj->encoded.data, bj->encoded.size);
        m->has_type = true;
        m->type = bj->job.type;
        m->error = bj->result.error;
        switch (bj->outcome) {
        case BATCH_DECIDED:
            m->outcome = MESSAGE_DECIDED;
            break;
        case BATCH_REPLAY:
            m->outcome = MESSAGE_REPLAYED;
            break;
        case BATCH_CONFLICT:
            /* The result key keeps the original job's result. */
            m->outcome = MESSAGE_CONFLICT;
            snprintf(m->dead_reason, sizeof m->dead_reason, "id_conflict");
            break;
        case BATCH_UNDECIDED:
            UNREACHABLE();
        }
        log_decision(m, bj);
    }
}

static void batch_done(struct held *h)
{
    size_t n = h->batch.job_count;
    batch_free(&h->batch);
    h->batch_live = false;
    h->apply_from += n;
    h->attempts = 0;
    if (h->apply_from == h->job_count)
        held_move(h, HELD_PUBLISH);
}

/* A job the database refuses even alone: dead-letter it with the error. */
static void dead_letter_job(struct worker *w, struct held *h)
{
    struct message *m = &h->messages[h->job_message[h->apply_from]];
    ASSERT(m->outcome == MESSAGE_PENDING);
    snprintf(m->dead_reason, sizeof m->dead_reason, "database error: %s", store_errstr(w->store));
    m->outcome = MESSAGE_REFUSED; /* logged once published: the breaker may take it back */
    char id[160];
    log_event(LOG_WARN, "job_refused_alone", "id=%s", log_quote(m->id, id, sizeof id));
    batch_done(h);
}

/* The SQLSTATE of the store's last error ("database error XXXXX: ...", as
 * store.c words it); "" for an error without one. */
static void failure_code(const char *errstr, char code[8])
{
    static const char lead[] = "database error ";
    code[0] = '\0';
    if (strncmp(errstr, lead, sizeof lead - 1) == 0)
        snprintf(code, 8, "%.5s", errstr + sizeof lead - 1);
}

static void on_unavailable(struct worker *w, struct held *h);

/* The breaker trips: the refusals of this run still held in the slot are
 * taken back (they are undecided again, nothing of them was published),
 * and the batch waits for the database as when it is unavailable. */
static void trip_breaker(struct worker *w, struct held *h)
{
    int taken_back = 0;
    while (h->apply_from > 0 && taken_back < w->lone_failures - 1) {
        struct message *m = &h->messages[h->job_message[h->apply_from - 1]];
        if (m->outcome != MESSAGE_REFUSED)
            break;
        m->outcome = MESSAGE_PENDING;
        m->dead_reason[0] = '\0';
        h->apply_from--;
        taken_back++;
    }
    log_event(LOG_ERROR, "isolation_stopped",
              "failures=%d sqlstate=%s taken_back=%d note=\"jobs in a row refused alone for the "
              "same reason: the database is at fault, not the jobs\"",
              w->lone_failures, w->lone_code[0] ? w->lone_code : "-", taken_back);
    w->lone_failures = 0;
    h->isolating = false;
    w->metrics.db_errors[METRICS_DB_UNAVAILABLE]++;
    on_unavailable(w, h);
}

/* A job failed alone. It is to blame only while its batch-mates commit:
 * the same SQLSTATE for WORKER_BREAKER_FAILURES jobs in a row, or for every
 * job of the batch being isolated, trips the breaker instead. */
static void on_failed_alone(struct worker *w, struct held *h)
{
    char code[8];
    failure_code(store_errstr(w->store), code);
    if (w->lone_failures > 0 && strcmp(code, w->lone_code) == 0) {
        w->lone_failures++;
    } else {
        w->lone_failures = 1;
        snprintf(w->lone_code, sizeof w->lone_code, "%s", code);
    }
    size_t isolated = h->isolating ? h->isolate_end - h->isolate_from : 1;
    bool whole_batch = h->isolating && isolated >= 2 && h->apply_from + 1 == h->isolate_end &&
                       (size_t)w->lone_failures >= isolated;
    if (w->lone_failures >= WORKER_BREAKER_FAILURES || whole_batch) {
        trip_breaker(w, h);
        return;
    }
    dead_letter_job(w, h);
}

static void on_failed(struct worker *w, struct held *h)
{
    char why[STORE_ERRSTR_BYTES + 8];
    log_event(LOG_ERROR, "batch_failed", "jobs=%zu error=%s", h->batch.job_count,
              log_quote(store_errstr(w->store), why, sizeof why));
    if (h->batch.job_count > 1) {
        /* Find the job that fails: the others must not wait behind it. */
        h->isolate_from = h->apply_from;
        h->isolate_end = h->apply_from + h->batch.job_count;
        batch_free(&h->batch);
        h->batch_live = false;
        h->isolating = true;
        h->attempts = 0;
        return;
    }
    on_failed_alone(w, h);
}

/* The store lost its connection: the outcome of the batch in flight is
 * unknown, and nothing not yet committed may go on. Redis delivers those
 * entries again; the job-ID dedupe turns whatever did commit into replays. */
static void drop_uncommitted(struct worker *w)
{
    for (int i = 0; i < WORKER_SLOTS; i++) {
        struct held *h = &w->slots[i];
        if (h->stage == HELD_APPLY && !h->busy)
            held_clear(h);
    }
    read_own_pending_again(w);
}

static void on_committed(struct worker *w, struct held *h)
{
    log_event(LOG_DEBUG, "batch_committed", "jobs=%zu", h->batch.job_count);
    metrics_observe_batch(&w->metrics, h->batch.job_count);
    if (w->db_unavailable)
        log_event(LOG_INFO, "database_available", "jobs=%zu", h->batch.job_count);
    w->db_unavailable = false;
    w->db_backoff_ms = WORKER_BACKOFF_MIN_MS;
    w->lone_failures = 0;
    take_decisions(h);
    /* The batch's events are the database's from the commit on: published
     * now, or later by the sweep's worker when Redis does not take them. */
    if (outbox_publish(w->queue, w->store, &w->metrics, &h->batch.stored_events, NULL, NULL) != 0)
        log_event(LOG_WARN, "events_unpublished", "events=%zu note=\"published by a later sweep\"",
                  h->batch.stored_events.count);
    batch_done(h);
}

/* The same batch again after `delay_ms` (jittered): nothing was committed. */
static void retry_batch_later(struct worker *w, struct held *h, int64_t delay_ms)
{
    batch_free(&h->batch);
    h->batch_live = false;
    struct timeval delay = jittered(delay_ms);
    evtimer_add(w->retry_timer, &delay);
}

/* No job is to blame: the entries stay held (pending in Redis), the worker
 * says it is not ready, and the batch is tried again with a capped backoff
 * until the database decides it. */
static void on_unavailable(struct worker *w, struct held *h)
{
    char why[STORE_ERRSTR_BYTES + 8];
    log_event(LOG_ERROR, "database_unavailable", "jobs=%zu retry_ms=%lld error=%s",
              h->batch.job_count, (long long)w->db_backoff_ms,
              log_quote(store_errstr(w->store), why, sizeof why));
    w->db_unavailable = true;
    retry_batch_later(w, h, w->db_backoff_ms);
    w->db_backoff_ms = next_backoff(w->db_backoff_ms);
}

static enum metrics_db_error db_error_kind(enum store_status status)
{
    switch (status) {
    case STORE_RETRY:
        return METRICS_DB_RETRY;
    case STORE_FAILED:
        return METRICS_DB_FAILED;
    case STORE_UNAVAILABLE:
        return METRICS_DB_UNAVAILABLE;
    case STORE_LOST:
        return METRICS_DB_LOST;
    case STORE_OK:
        break;
    }
    UNREACHABLE();
}

static void on_applied(void *arg, enum store_status status)
{
    struct held *h = arg;
    struct worker *w = h->worker;
    ASSERT(h->busy && h->batch_live);
    h->busy = false;
    if (w->torn_down)
        return;
    if (status != STORE_OK)
        w->metrics.db_errors[db_error_kind(status)]++;
    switch (status) {
    case STORE_OK:
        on_committed(w, h);
        break;
    case STORE_RETRY:
        if (h->attempts < WORKER_RETRIES_MAX) {
            h->attempts++;
            char why[STORE_ERRSTR_BYTES + 8];
            log_event(LOG_WARN, "batch_retry", "jobs=%zu attempt=%d error=%s", h->batch.job_count,
                      h->attempts, log_quote(store_errstr(w->store), why, sizeof why));
            retry_batch_later(w, h, WORKER_BACKOFF_MIN_MS << h->attempts);
            return;
        }
        on_failed(w, h);
        break;
    case STORE_FAILED:
        on_failed(w, h);
        break;
    case STORE_UNAVAILABLE:
        on_unavailable(w, h);
        return;
    case STORE_LOST:
        log_event(LOG_WARN, "batch_outcome_unknown", "jobs=%zu", h->batch.job_count);
        drop_uncommitted(w);
        break;
    }
    progressed(w);
}

static void start_apply(struct worker *w, struct held *h)
{
    ASSERT(!h->batch_live && !h->busy && h->apply_from < h->job_count);
    size_t left = h->job_count - h->apply_from;
    size_t max = h->isolating ? 1 : (size_t)w->config->batch_jobs_max;
    batch_init(&h->batch, h->jobs + h->apply_from, left < max ? left : max);
    h->batch_live = true;
    h->busy = true;
    if (store_apply(w->store, &h->batch, on_applied, h) != 0) {
        h->busy = false;
        batch_free(&h->batch);
        h->batch_live = false;
    }
}

/* ---------------------------------------------------------------------------
 * Publishing and acknowledging
 * ------------------------------------------------------------------------- */

static void on_acked(void *arg, int status)
{
    struct held *h = arg;
    struct worker *w = h->worker;
    ASSERT(h->busy && h->stage == HELD_ACK);
    h->busy = false;
    if (w->torn_down)
        return;
    if (status == 0)
        held_clear(h);
    else
        log_event(LOG_WARN, "ack_failed", "error=%s", queue_errstr(w->queue));
    progressed(w);
}

static void start_ack(struct worker *w, struct held *h)
{
    const struct queue_entry **entries = calloc(h->count, sizeof *entries);
    ASSERT(entries != NULL);
    for (size_t i = 0; i < h->count; i++)
        entries[i] = &h->entries[i];
    h->busy = queue_ack(w->queue, entries, h->count, on_acked, h) == 0;
    free(entries);
}

/* What the outcome publishes: a result (and under which key), a dead letter. */
static bool outcome_has_result(enum message_outcome outcome)
{
    switch (outcome) {
    case MESSAGE_REJECTED:
    case MESSAGE_DECIDED:
    case MESSAGE_REPLAYED:
    case MESSAGE_CONFLICT:
        return true;
    case MESSAGE_SET_ASIDE:
    case MESSAGE_REFUSED:
        return false;
    case MESSAGE_PENDING:
        break;
    }
    UNREACHABLE();
}

static enum queue_result_key outcome_key_mode(const struct message *m)
{
    switch (m->outcome) {
    case MESSAGE_REJECTED:
        /* Unstored rejections never replace a stored result. */
        return m->id[0] != '\0' ? QUEUE_KEY_SET_NX : QUEUE_KEY_NONE;
    case MESSAGE_DECIDED:
    case MESSAGE_REPLAYED:
        return QUEUE_KEY_SET;
    case MESSAGE_CONFLICT: /* the key keeps the original job's result */
    case MESSAGE_SET_ASIDE:
    case MESSAGE_REFUSED:
        return QUEUE_KEY_NONE;
    case MESSAGE_PENDING:
        break;
    }
    UNREACHABLE();
}

static bool outcome_is_dead_lettered(enum message_outcome outcome)
{
    switch (outcome) {
    case MESSAGE_REJECTED:
    case MESSAGE_CONFLICT:
    case MESSAGE_SET_ASIDE:
    case MESSAGE_REFUSED:
        return true;
    case MESSAGE_DECIDED:
    case MESSAGE_REPLAYED:
        return false;
    case MESSAGE_PENDING:
        break;
    }
    UNREACHABLE();
}

/* The slot's results are out: count its decisions and their latency. */
static void count_published(struct worker *w, const struct held *h)
{
    int64_t now_ms = wall_clock_ms();
    for (size_t i = 0; i < h->count; i++) {
        const struct message *m = &h->messages[i];
        if (outcome_has_result(m->outcome)) {
            metrics_count_job(&w->metrics, m->has_type, m->type, m->error,
                              m->outcome == MESSAGE_REPLAYED);
            metrics_observe_latency(&w->metrics,
                                    (double)(now_ms - (int64_t)m->entry->id_ms) / 1000.0);
        }
        if (m->outcome == MESSAGE_REFUSED) {
            char id[160], reason[DEAD_REASON_BYTES_MAX + 8];
            log_event(LOG_ERROR, "job_dead_lettered", "id=%s reason=%s",
                      log_quote(m->id, id, sizeof id),
                      log_quote(m->dead_reason, reason, sizeof reason));
        }
        if (outcome_is_dead_lettered(m->outcome))
            metrics_count_dead_letter(&w->metrics, m->outcome == MESSAGE_SET_ASIDE
                                                       ? METRICS_DEAD_MAX_DELIVERIES
                                                       : (int)m->error);
    }
}

static void on_published(void *arg, int status)
{
    struct held *h = arg;
    struct worker *w = h->worker;
    ASSERT(h->busy && h->stage == HELD_PUBLISH);
    h->busy = false;
    if (w->torn_down)
        return;
    if (status == 0) {
        count_published(w, h);
        held_move(h, HELD_ACK);
        progressed(w);
        return;
    }
    /* Not acknowledged: publish again once Redis answers. */
    log_event(LOG_WARN, "publish_failed", "error=%s", queue_errstr(w->queue));
    struct timeval delay = jittered(WORKER_BACKOFF_MIN_MS * 8);
    evtimer_add(w->retry_timer, &delay);
}

static void start_publish(struct worker *w, struct held *h)
{
    struct queue_publish *items = calloc(h->count, sizeof *items);
    ASSERT(items != NULL);
    for (size_t i = 0; i < h->count; i++) {
        const struct message *m = &h->messages[i];
        bool has_result = outcome_has_result(m->outcome);
        enum queue_result_key key_mode = outcome_key_mode(m);
        ASSERT(!has_result || m->result.size > 0);
        items[i] = (struct queue_publish){
            .entry = m->entry,
            .result = has_result ? m->result.data : NULL,
            .result_len = has_result ? m->result.size : 0,
            .job_id = m->id[0] != '\0' ? m->id : NULL,
            .key_mode = key_mode,
            /* A reply goes with a result key: never for id_conflict. */
            .reply = m->reply && key_mode != QUEUE_KEY_NONE,
            .dead_reason = outcome_is_dead_lettered(m->outcome) ? m->dead_reason : NULL,
        };
    }
    h->busy = queue_publish(w->queue, items, h->count, on_published, h) == 0;
    free(items);
}

/* ---------------------------------------------------------------------------
 * The step: what to do next
 * ------------------------------------------------------------------------- */

/* Slots in read order, oldest first. */
static void slots_in_order(struct worker *w, struct held *order[WORKER_SLOTS])
{
    for (int i = 0; i < WORKER_SLOTS; i++)
        order[i] = &w->slots[i];
    if (order[1]->stage != HELD_NONE &&
        (order[0]->stage == HELD_NONE || order[1]->seq < order[0]->seq)) {
        struct held *t = order[0];
        order[0] = order[1];
        order[1] = t;
    }
}

/* Starts what the held slots can do now. Applies go in read order, one at a
 * time (one database connection): a slot applies once every older slot is
 * applied. Publishes go in read order too: a slot publishes once every older
 * slot is published. Acks need no order. The apply is started first: the
 * database is the bottleneck, and it should not wait while a publish is
 * being formatted. */
static void advance_slots(struct worker *w, struct held *order[WORKER_SLOTS])
{
    if (store_is_idle(w->store)) {
        for (int i = 0; i < WORKER_SLOTS; i++) {
            struct held *h = order[i];
            if (h->stage != HELD_APPLY)
                continue;
            if (!h->busy)
                start_apply(w, h);
            break;
        }
    }
    if (!queue_is_ready(w->queue))
        return;
    bool older_unpublished = false;
    for (int i = 0; i < WORKER_SLOTS; i++) {
        struct held *h = order[i];
        if (!h->busy && h->stage == HELD_PUBLISH && !older_unpublished)
            start_publish(w, h);
        else if (!h->busy && h->stage == HELD_ACK)
            start_ack(w, h);
        older_unpublished = older_unpublished || h->stage == HELD_APPLY || h->stage == HELD_PUBLISH;
    }
}

/* The sweep's and the events' round trips take the store only when no
 * slot has a batch for it. */
static void step_sweeper(struct worker *w, struct held *order[WORKER_SLOTS])
{
    for (int i = 0; i < WORKER_SLOTS; i++)
        if (order[i]->stage == HELD_APPLY)
            return;
    if (!w->stopping && !w->db_unavailable)
        sweeper_step(w->sweeper);
}

static void step(struct worker *w)
{
    if (w->torn_down)
        return;
    if (w->reset_redis) {
        /* Not from inside the read's callback: hiredis is still in it. */
        w->reset_redis = false;
        queue_disconnect(w->queue);
    }
    struct held *order[WORKER_SLOTS];
    slots_in_order(w, order);
    if (!evtimer_pending(w->retry_timer, NULL))
        advance_slots(w, order);
    step_sweeper(w, order);

    bool any_held = !slot_is_empty(order[0]) || !slot_is_empty(order[1]);
    if (w->stopping) {
        /* The events published last are marked before the worker goes: else
         * a later worker publishes them again. */
        bool idle = !any_held && w->read_slot == NULL;
        if (idle && !w->marks_flushed && !sweeper_busy(w->sweeper) && !w->db_unavailable)
            w->marks_flushed = sweeper_flush_marks(w->sweeper); /* tried once */
        if (idle && !sweeper_busy(w->sweeper)) {
            log_event(LOG_INFO, "stopped", "clean=1");
            event_base_loopbreak(w->base);
        }
        return;
    }
    /* Reads go on while a batch is being applied: that is the pipeline. */
    bool ready = queue_is_ready(w->queue) && store_is_connected(w->store);
    struct held *empty = slot_is_empty(order[1]) ? order[1] : NULL;
    if (slot_is_empty(order[0]))
        empty = order[0];
    /* Own pending entries are read only with nothing held: they may include
     * entries held right now, not yet acknowledged. */
    bool wait_drain = (w->needs_pending || w->suspect_pass) && any_held;
    if (ready && w->read_slot == NULL && !w->suspect_lookup && empty && !wait_drain &&
        !(any_held && w->prefetch_dry))
        start_read(w, empty, any_held);
}

static void on_sweeper_wake(void *arg)
{
    schedule_step(arg);
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

static void peer_ready(struct peer *p)
{
    struct worker *w = p->worker;
    w->metrics.reconnects[p->id] += p->was_ready;
    p->was_ready = true;
    w->metrics.up[p->id] = true;
    p->backoff_ms = WORKER_BACKOFF_MIN_MS;
    schedule_step(w);
}

/* A connect failed or the connection was lost: try again after a jittered,
 * doubling, capped delay. */
static void peer_lost(struct peer *p)
{
    struct worker *w = p->worker;
    w->metrics.up[p->id] = false;
    char event[32], why[STORE_ERRSTR_BYTES + 8];
    snprintf(event, sizeof event, "%s_lost", p->name);
    log_event(LOG_WARN, event, "error=%s retry_ms=%lld", log_quote(p->errstr(w), why, sizeof why),
              (long long)p->backoff_ms);
    struct timeval delay = jittered(p->backoff_ms);
    p->backoff_ms = next_backoff(p->backoff_ms);
    if (!w->torn_down)
        evtimer_add(p->timer, &delay);
}

static void on_peer_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct peer *p = arg;
    if (p->connect(p->worker) != 0)
        peer_lost(p);
}

static int queue_connect_peer(struct worker *w)
{
    return queue_connect(w->queue);
}

static const char *queue_errstr_peer(const struct worker *w)
{
    return queue_errstr(w->queue);
}

static int store_connect_peer(struct worker *w)
{
    return store_connect(w->store);
}

static const char *store_errstr_peer(const struct worker *w)
{
    return store_errstr(w->store);
}

static void on_queue_ready(void *arg)
{
    struct worker *w = arg;
    log_event(LOG_INFO, "redis_ready", "consumer=%s", w->config->consumer);
    /* Whatever this consumer was given before is read again first: at
     * start, one entry at a time (the worker before may have died of one). */
    read_own_pending_again(w);
    if (!w->peers[METRICS_REDIS].was_ready)
        w->suspect_pass = true;
    w->suspect.found = false; /* found on the connection before: look again */
    peer_ready(&w->peers[METRICS_REDIS]);
}

static void on_queue_lost(void *arg)
{
    struct worker *w = arg;
    peer_lost(&w->peers[METRICS_REDIS]);
}

static void on_store_ready(void *arg)
{
    struct worker *w = arg;
    struct store_durability d = store_durability(w->store);
    w->metrics.database_durable = d.fsync && d.full_page_writes;
    log_event(LOG_INFO, "postgres_ready", "application_name=credits-worker synchronous_commit=on");
    if (!w->metrics.database_durable)
        log_event(LOG_WARN, "database_not_durable",
                  "fsync=%s full_page_writes=%s note=\"a commit may not survive a crash of the "
                  "database server: turn both on\"",
                  d.fsync ? "on" : "off", d.full_page_writes ? "on" : "off");
    peer_ready(&w->peers[METRICS_POSTGRES]);
}

static void on_store_lost(void *arg)
{
    struct worker *w = arg;
    peer_lost(&w->peers[METRICS_POSTGRES]);
}

static void peers_init(struct worker *w)
{
    static const struct {
        const char *name;
        int (*connect)(struct worker *w);
        const char *(*errstr)(const struct worker *w);
    } kinds[WORKER_PEERS] = {
        [METRICS_REDIS] = {"redis", queue_connect_peer, queue_errstr_peer},
        [METRICS_POSTGRES] = {"postgres", store_connect_peer, store_errstr_peer},
    };
    for (int i = 0; i < WORKER_PEERS; i++) {
        struct peer *p = &w->peers[i];
        *p = (struct peer){.worker = w,
                           .id = (enum metrics_peer)i,
                           .name = kinds[i].name,
                           .connect = kinds[i].connect,
                           .errstr = kinds[i].errstr,
                           .backoff_ms = WORKER_BACKOFF_MIN_MS};
        p->timer = evtimer_new(w->base, on_peer_timer, p);
        ASSERT(p->timer != NULL);
    }
}

/* ---------------------------------------------------------------------------
 * Stopping
 * ------------------------------------------------------------------------- */

static size_t held_entries(const struct worker *w)
{
    size_t n = 0;
    for (int i = 0; i < WORKER_SLOTS; i++)
        n += w->slots[i].count;
    return n;
}

static void on_signal(evutil_socket_t signum, short what, void *arg)
{
    (void)what;
    struct worker *w = arg;
    if (w->stopping)
        return;
    w->stopping = true;
    log_event(LOG_INFO, "stopping", "signal=%d held=%zu", (int)signum, held_entries(w));
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
              "held=%zu note=\"left pending in Redis for the next worker\"", held_entries(w));
    event_base_loopbreak(w->base);
}

/* ---------------------------------------------------------------------------
 * Health and the pending gauges
 * ------------------------------------------------------------------------- */

/* Ready: both connections up, the database deciding batches, not stopping.
 * Keeps the gauge current. */
static bool ready_now(struct worker *w)
{
    w->metrics.ready = queue_is_ready(w->queue) && store_is_connected(w->store) &&
                       !w->db_unavailable && !w->stopping;
    return w->metrics.ready;
}

static bool is_ready(void *arg, char *why, size_t why_len)
{
    struct worker *w = arg;
    if (ready_now(w))
        return true;
    snprintf(why, why_len, "%s%s%s%s", queue_is_ready(w->queue) ? "" : "redis not connected; ",
             store_is_connected(w->store) ? "" : "postgres not connected; ",
             w->db_unavailable ? "postgres cannot decide batches; " : "",
             w->stopping ? "stopping" : "");
    return false;
}

/* Live while the loop answers and held work keeps moving: a batch stuck
 * for WORKER_STALL_MS (a hung statement, say) makes the worker unhealthy,
 * so that a supervisor restarts it; its entries stay pending in Redis. A
 * worker waiting for the database to decide batches again is alive (a
 * restart would not help): /readyz says why it is not ready. */
static bool is_live(void *arg, char *why, size_t why_len)
{
    struct worker *w = arg;
    bool held = w->metrics.inflight_jobs > 0 && !w->db_unavailable;
    int64_t idle_ms = clock_monotonic_ms() - w->last_progress_ms;
    if (held && idle_ms > WORKER_STALL_MS) {
        snprintf(why, why_len, "held work has not moved for %lld ms", (long long)idle_ms);
        return false;
    }
    return true;
}

static void on_trimmed(void *arg, int status)
{
    struct worker *w = arg;
    if (status != 0 && !w->torn_down)
        log_event(LOG_WARN, "trim_failed", "error=%s", queue_errstr(w->queue));
}

static void on_pending_summary(void *arg, int status,
                               const struct queue_pending pending[QUEUE_STREAM_COUNT])
{
    struct worker *w = arg;
    if (status != 0 || w->torn_down)
        return;
    /* Job streams keep only what the group has not acknowledged. */
    if (queue_trim_acknowledged(w->queue, pending, on_trimmed, w) != 0)
        log_event(LOG_DEBUG, "trim_skipped", "error=redis");
    int64_t now_ms = wall_clock_ms();
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++) {
        w->metrics.pending[s] = pending[s].count;
        w->metrics.oldest_pending_age_s[s] =
            pending[s].count > 0 && now_ms > (int64_t)pending[s].oldest_ms
                ? (double)(now_ms - (int64_t)pending[s].oldest_ms) / 1000.0
                : 0.0;
    }
}

static void on_stats_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    ready_now(w);
    if (queue_is_ready(w->queue) && queue_pending_summary(w->queue, on_pending_summary, w) != 0)
        log_event(LOG_DEBUG, "stats_skipped", "error=redis");
}

static void on_claimed(void *arg, int status, int64_t claimed)
{
    struct worker *w = arg;
    if (status != 0 || w->torn_down || claimed == 0)
        return;
    log_event(LOG_WARN, "entries_claimed", "count=%lld idle_ms=%lld", (long long)claimed,
              (long long)w->config->claim_idle_ms);
    /* The consumer that left them may have died of one: one at a time. */
    read_own_pending_again(w);
    w->suspect_pass = true;
    schedule_step(w);
}

/* Takes over the entries of consumers that stopped (crashed, or were
 * replaced under another name) once they have been idle long enough. */
static void on_claim_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    if (!w->stopping && queue_is_ready(w->queue) &&
        queue_claim_idle(w->queue, w->config->claim_idle_ms, on_claimed, w) != 0)
        log_event(LOG_DEBUG, "claim_skipped", "error=redis");
}

/* The endpoint is an aid, not the job: when its address cannot be bound
 * (another worker on this host has the default port, say) the worker runs
 * without it and says so, rather than stopping credits from being applied. */
static void start_http(struct worker *w)
{
    if (w->config->http_addr[0] == '\0')
        return;
    struct http_endpoints endpoints = {&w->metrics, is_live, is_ready, w};
    char errstr[300], quoted[320];
    w->http = http_start(w->base, w->config->http_addr, (size_t)w->config->http_connections_max,
                         &endpoints, errstr, sizeof errstr);
    if (w->http)
        log_event(LOG_INFO, "http_listening", "addr=%s", w->config->http_addr);
    else
        log_event(LOG_ERROR, "http_disabled", "error=%s", log_quote(errstr, quoted, sizeof quoted));
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
    qc->dead_maxlen = config->dead_maxlen;
    qc->events_maxlen = config->events_maxlen;
    qc->block_ms = config->block_ms;
}

static void make_events(struct worker *w)
{
    w->step_event = event_new(w->base, -1, 0, on_step, w);
    w->retry_timer = evtimer_new(w->base, on_retry, w);
    w->shutdown_timer = evtimer_new(w->base, on_shutdown_timeout, w);
    w->signal_events[0] = evsignal_new(w->base, SIGTERM, on_signal, w);
    w->signal_events[1] = evsignal_new(w->base, SIGINT, on_signal, w);
    w->stats_timer = event_new(w->base, -1, EV_PERSIST, on_stats_timer, w);
    w->claim_timer = event_new(w->base, -1, EV_PERSIST, on_claim_timer, w);
    ASSERT(w->step_event && w->retry_timer && w->shutdown_timer && w->signal_events[0] &&
           w->signal_events[1] && w->stats_timer && w->claim_timer);
    struct timeval every = {WORKER_STATS_INTERVAL_MS / 1000, 0};
    event_add(w->stats_timer, &every);
    /* Claim at half the idle bound: an entry waits at most 1.5x the bound. */
    int64_t claim_ms = w->config->claim_idle_ms / 2;
    struct timeval claim_every = {(time_t)(claim_ms / 1000), (suseconds_t)(claim_ms % 1000) * 1000};
    event_add(w->claim_timer, &claim_every);
    event_add(w->signal_events[0], NULL);
    event_add(w->signal_events[1], NULL);
}

static void free_events(struct worker *w)
{
    struct event *events[] = {w->step_event,       w->retry_timer,    w->peers[0].timer,
                              w->peers[1].timer,   w->shutdown_timer, w->signal_events[0],
                              w->signal_events[1], w->stats_timer,    w->claim_timer};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        event_free(events[i]);
}

int worker_run(const struct config *config)
{
    struct worker w = {.config = config, .db_backoff_ms = WORKER_BACKOFF_MIN_MS};
    w.metrics.database_durable = true; /* until a connect reads otherwise */
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)wall_clock_ms());
    w.base = event_base_new();
    if (!w.base) {
        log_event(LOG_ERROR, "start_failed", "error=\"cannot create the event loop\"");
        return 1;
    }
    make_events(&w);
    peers_init(&w);
    /* One read brings up to CREDITS_BATCH_MAX entries from each stream. */
    for (int i = 0; i < WORKER_SLOTS; i++)
        held_init(&w.slots[i], &w, (size_t)config->batch_jobs_max * QUEUE_STREAM_COUNT);
    w.last_progress_ms = clock_monotonic_ms();
    start_http(&w);
    struct queue_config qc;
    queue_config_from(config, &qc);
    w.queue = queue_new(w.base, &qc, on_queue_ready, on_queue_lost, &w);
    w.store = store_new(w.base, config->database_url, on_store_ready, on_store_lost, &w);
    w.sweeper = sweeper_new(w.base, config, w.store, w.queue, &w.metrics, on_sweeper_wake, &w);
    char url[600];
    redis_url_redacted(&config->redis, url, sizeof url);
    log_event(LOG_INFO, "started",
              "version=%s consumer=%s group=%s prefix=%s redis=%s batch_max=%lld", CREDITS_VERSION,
              config->consumer, config->group, config->prefix, url,
              (long long)config->batch_jobs_max);
    for (int i = 0; i < WORKER_PEERS; i++)
        if (w.peers[i].connect(&w) != 0)
            peer_lost(&w.peers[i]);

    event_base_dispatch(w.base);

    w.torn_down = true;
    http_free(w.http);
    queue_free(w.queue);
    store_free(w.store); /* a sweep step in flight hears STORE_LOST: free the sweeper after */
    sweeper_free(w.sweeper);
    for (int i = 0; i < WORKER_SLOTS; i++)
        held_free(&w.slots[i]);
    free_events(&w);
    event_base_free(w.base);
    return 0;
}
