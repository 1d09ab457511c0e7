/*
 * queue.c -- Redis Streams over hiredis async on libevent (queue.h).
 *
 * Owns the hiredis context, its watchdog timers (hiredis 0.14 has none) and
 * which reply of a pipeline goes where. Does not own the shape of a reply:
 * reply.c checks and copies each one out; none is kept.
 */
#include "queue/queue.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "queue/keys.h"
#include "queue/reply.h"

#define QUEUE_ERRSTR_BYTES 256
/* The longest command: XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS, then
 * a key and an ID per stream. */
#define QUEUE_ARGS_MAX 16
_Static_assert(9 + 2 * QUEUE_STREAM_COUNT <= QUEUE_ARGS_MAX, "XREADGROUP's arguments fit");

enum queue_state {
    QUEUE_DISCONNECTED, /* no context */
    QUEUE_CONNECTING,   /* context made, set-up commands in flight */
    QUEUE_READY,        /* set-up done */
};

/* One request of several pipelined commands, done when all have answered. */
struct queue_op {
    struct queue *queue;
    struct queue_op *prev; /* the queue's list of ops in flight, oldest first */
    struct queue_op *next;
    struct timespec sent;
    size_t replies_left;
    int status;
    bool is_read; /* an XREADGROUP, then (own pending) one XPENDING per stream */
    int read_replies_seen;
    queue_done_cb *done;
    queue_read_cb *read_done;
    void *arg;
    struct queue_entry *entries;
    size_t entry_count;
    /* An XPENDING summary op: one reply per stream, in stream order. */
    queue_pending_cb *pending_done;
    queue_claim_cb *claim_done;
    int64_t claimed;
    struct queue_pending pending[QUEUE_STREAM_COUNT];
    int pending_seen;
    /* An oldest-pending op: one XPENDING reply per stream, in stream order. */
    queue_oldest_cb *oldest_done;
    struct queue_oldest oldest;
    int oldest_seen;
    /* A claim of one entry (queue_claim_entry): read_done gets it. */
    bool claim_one;
    struct queue_oldest claimed_entry;
};

struct queue {
    struct event_base *base;
    struct queue_config config;
    queue_event_cb *on_ready;
    queue_event_cb *on_lost;
    void *arg;
    enum queue_state state;
    redisAsyncContext *ac;
    struct event *connect_timer; /* fires when a connect takes too long */
    struct event *read_timer;    /* fires when a blocked read never returns */
    struct event *op_timer;      /* checks that no other command waits too long */
    struct queue_op *ops_head;   /* ops in flight (reads excluded), oldest first */
    struct queue_op *ops_tail;
    char stream_keys[QUEUE_STREAM_COUNT][KEYS_BYTES_MAX];
    char errstr[QUEUE_ERRSTR_BYTES];
};

static void set_errstr(struct queue *queue, const char *what, const char *detail)
{
    snprintf(queue->errstr, sizeof queue->errstr, "%s%s%s", what, detail ? ": " : "",
             detail ? detail : "");
}

/* ---------------------------------------------------------------------------
 * Operations: a countdown over the replies of pipelined commands
 * ------------------------------------------------------------------------- */

static struct queue_op *op_new(struct queue *queue, queue_done_cb *done, void *arg)
{
    struct queue_op *op = calloc(1, sizeof *op);
    ASSERT(op != NULL);
    op->queue = queue;
    op->done = done;
    op->arg = arg;
    clock_gettime(CLOCK_MONOTONIC, &op->sent);
    /* Linked in now, unlinked when done: the watchdog sees every op. */
    op->prev = queue->ops_tail;
    if (queue->ops_tail)
        queue->ops_tail->next = op;
    else
        queue->ops_head = op;
    queue->ops_tail = op;
    return op;
}

static void op_free(struct queue_op *op)
{
    struct queue *queue = op->queue;
    if (op->prev)
        op->prev->next = op->next;
    else
        queue->ops_head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        queue->ops_tail = op->prev;
    free(op);
}

static void op_finish(struct queue_op *op)
{
    ASSERT(op->replies_left == 0);
    if (op->pending_done) {
        op->pending_done(op->arg, op->status, op->pending);
    } else if (op->claim_done) {
        op->claim_done(op->arg, op->status, op->claimed);
    } else if (op->oldest_done) {
        op->oldest_done(op->arg, op->status, &op->oldest);
    } else if (op->claim_one) {
        if (op->status != 0) {
            queue_entries_free(op->entries, op->entry_count);
            op->entries = NULL;
            op->entry_count = 0;
        }
        op->read_done(op->arg, op->status, op->entries, op->entry_count);
    } else if (op->is_read) {
        evtimer_del(op->queue->read_timer);
        if (op->status != 0) {
            queue_entries_free(op->entries, op->entry_count);
            op->entries = NULL;
            op->entry_count = 0;
        }
        op->read_done(op->arg, op->status, op->entries, op->entry_count);
    } else if (op->done) {
        op->done(op->arg, op->status);
    }
    op_free(op);
}

/* NULL (the connection went) or an error reply: the reason into errstr.
 * An op keeps the text of its first error: after a refused AUTH, the
 * set-up's later commands answer NOAUTH, which says nothing of why. */
static bool reply_failed(struct queue *queue, const redisReply *reply, bool first_error)
{
    ASSERT(queue != NULL);
    if (reply == NULL) {
        if (queue->errstr[0] == '\0')
            set_errstr(queue, "connection lost", NULL);
        return true;
    }
    char later[QUEUE_ERRSTR_BYTES];
    if (!first_error)
        return reply_is_error(reply, later, sizeof later);
    return reply_is_error(reply, queue->errstr, sizeof queue->errstr);
}

/* A reply reply.c refused: the op fails with its reason. */
static void op_refuse(struct queue_op *op, const char *why)
{
    ASSERT(op != NULL && why != NULL);
    ASSERT(why[0] != '\0'); /* reply.c gives a reason with every refusal */
    set_errstr(op->queue, why, NULL);
    op->status = -1;
}

static void parse_read_reply(struct queue_op *op, const redisReply *reply);
static void parse_pending_reply(struct queue_op *op, const redisReply *reply);
static void parse_deliveries_reply(struct queue_op *op, const redisReply *reply);
static void parse_claim_reply(struct queue_op *op, const redisReply *reply);
static void parse_oldest_reply(struct queue_op *op, const redisReply *reply);
static void parse_claim_one_reply(struct queue_op *op, const redisReply *reply);

static void on_reply(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    (void)ac;
    struct queue_op *op = privdata;
    const redisReply *reply = reply_ptr;
    ASSERT(op && op->replies_left > 0);
    if (reply_failed(op->queue, reply, op->status == 0)) {
        op->status = -1;
        /* Keep later replies aligned with their streams. */
        if (op->pending_done) {
            struct queue_pending *p = &op->pending[op->pending_seen / 2];
            p->trim_before[0] = '\0'; /* unknown: do not trim this stream */
            op->pending_seen++;
        }
        op->read_replies_seen += op->is_read;
        op->oldest_seen += op->oldest_done != NULL;
    } else if (op->is_read) {
        if (op->read_replies_seen++ == 0)
            parse_read_reply(op, reply);
        else
            parse_deliveries_reply(op, reply);
    } else if (op->pending_done) {
        parse_pending_reply(op, reply);
    } else if (op->claim_done) {
        parse_claim_reply(op, reply);
    } else if (op->oldest_done) {
        parse_oldest_reply(op, reply);
    } else if (op->claim_one) {
        parse_claim_one_reply(op, reply);
    }
    op->replies_left--;
    if (op->replies_left == 0)
        op_finish(op);
}

/* Sends one command of `op`. On failure to queue it, marks the op failed. */
static void op_send(struct queue_op *op, int argc, const char **argv, const size_t *lens)
{
    ASSERT(argc > 0 && argv[0] != NULL);
    struct queue *queue = op->queue;
    op->replies_left++;
    if (!queue->ac ||
        redisAsyncCommandArgv(queue->ac, on_reply, op, argc, argv, lens) != REDIS_OK) {
        op->replies_left--;
        op->status = -1;
        set_errstr(queue, "cannot send a command", NULL);
    }
}

/* Called after all commands of `op` were sent: an op none of whose commands
 * went out is finished here (its callback then runs before return). */
static int op_sent(struct queue_op *op)
{
    if (op->replies_left == 0) {
        op_free(op);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Connection
 * ------------------------------------------------------------------------- */

static void lost(struct queue *queue)
{
    queue->state = QUEUE_DISCONNECTED;
    queue->ac = NULL;
    evtimer_del(queue->connect_timer);
    evtimer_del(queue->read_timer);
    if (queue->on_lost)
        queue->on_lost(queue->arg);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct queue *queue = ac->data;
    if (!queue)
        return; /* queue_free() is tearing down */
    if (status != REDIS_OK) {
        set_errstr(queue, "cannot connect to Redis", ac->errstr[0] ? ac->errstr : NULL);
        /* hiredis frees the context after this returns; no disconnect
         * callback follows. */
        lost(queue);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct queue *queue = ac->data;
    if (!queue)
        return; /* queue_free() is tearing down */
    if (status != REDIS_OK && queue->errstr[0] == '\0')
        set_errstr(queue, "Redis connection lost", ac->errstr[0] ? ac->errstr : NULL);
    lost(queue);
}

static void on_setup_done(void *arg, int status)
{
    struct queue *queue = arg;
    if (status != 0) {
        /* AUTH refused, say: the connection is of no use. */
        if (queue->ac)
            redisAsyncDisconnect(queue->ac);
        return;
    }
    evtimer_del(queue->connect_timer);
    queue->state = QUEUE_READY;
    queue->errstr[0] = '\0';
    queue->on_ready(queue->arg);
}

/* XGROUP CREATE answers BUSYGROUP when the group exists: not an error here. */
static void on_group_reply(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    redisReply *reply = reply_ptr;
    if (reply && reply_is_busygroup(reply))
        reply->type = REDIS_REPLY_STATUS;
    on_reply(ac, reply, privdata);
}

static void send_setup(struct queue *queue)
{
    struct queue_op *op = op_new(queue, on_setup_done, queue);
    const struct redis_url *url = &queue->config.redis;
    if (url->has_password) {
        const char *argv[3] = {"AUTH", url->user, url->password};
        int argc = url->has_user ? 3 : 2;
        if (!url->has_user)
            argv[1] = url->password;
        op_send(op, argc, argv, NULL);
    }
    if (url->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", url->db);
        const char *argv[2] = {"SELECT", db};
        op_send(op, 2, argv, NULL);
    }
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++) {
        const char *argv[6] = {"XGROUP", "CREATE",  queue->stream_keys[s], queue->config.group,
                               "0",      "MKSTREAM"};
        op->replies_left++;
        if (redisAsyncCommandArgv(queue->ac, on_group_reply, op, 6, argv, NULL) != REDIS_OK) {
            op->replies_left--;
            op->status = -1;
        }
        /* The consumer exists from the start (XINFO CONSUMERS lists it):
         * its first read may find only pending entries, which it reads
         * without XREADGROUP. */
        const char *consumer[5] = {"XGROUP", "CREATECONSUMER", queue->stream_keys[s],
                                   queue->config.group, queue->config.consumer};
        op_send(op, 5, consumer, NULL);
    }
    if (op_sent(op) != 0)
        redisAsyncDisconnect(queue->ac);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct queue *queue = arg;
    set_errstr(queue, "Redis connect timed out", NULL);
    queue_disconnect(queue);
}

static int64_t elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Redis answers in order: if the oldest command in flight (a blocked read
 * aside, which has its own timer) waits too long, the connection is dead. */
static void on_op_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct queue *queue = arg;
    const struct queue_op *oldest = queue->ops_head;
    while (oldest && oldest->is_read)
        oldest = oldest->next;
    if (oldest && elapsed_ms(&oldest->sent) > QUEUE_COMMAND_TIMEOUT_MS) {
        set_errstr(queue, "Redis did not answer in time", NULL);
        queue_disconnect(queue);
    }
}

static void on_read_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct queue *queue = arg;
    set_errstr(queue, "a blocked read did not return in time", NULL);
    queue_disconnect(queue);
}

int queue_connect(struct queue *queue)
{
    ASSERT(queue->state == QUEUE_DISCONNECTED && queue->ac == NULL);
    queue->errstr[0] = '\0';
    const struct redis_url *url = &queue->config.redis;
    redisAsyncContext *ac = url->is_unix ? redisAsyncConnectUnix(url->socket_path)
                                         : redisAsyncConnect(url->host, url->port);
    if (!ac)
        return -1;
    if (ac->err) {
        set_errstr(queue, "cannot connect to Redis", ac->errstr);
        redisAsyncFree(ac);
        return -1;
    }
    ac->data = queue;
    if (redisLibeventAttach(ac, queue->base) != REDIS_OK) {
        redisAsyncFree(ac);
        return -1;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    queue->ac = ac;
    queue->state = QUEUE_CONNECTING;
    struct timeval timeout = {QUEUE_CONNECT_TIMEOUT_MS / 1000, 0};
    evtimer_add(queue->connect_timer, &timeout);
    send_setup(queue);
    return 0;
}

void queue_disconnect(struct queue *queue)
{
    redisAsyncContext *ac = queue->ac;
    queue->ac = NULL; /* no callback below may send on it */
    if (ac)
        redisAsyncFree(ac); /* pending callbacks get NULL; then on_disconnect if connected */
    if (queue->state != QUEUE_DISCONNECTED)
        lost(queue);
}

struct queue *queue_new(struct event_base *base, const struct queue_config *config,
                        queue_event_cb *on_ready, queue_event_cb *on_lost, void *arg)
{
    ASSERT(base && config && on_ready && on_lost);
    struct queue *queue = calloc(1, sizeof *queue);
    ASSERT(queue != NULL);
    queue->base = base;
    queue->config = *config;
    queue->on_ready = on_ready;
    queue->on_lost = on_lost;
    queue->arg = arg;
    queue->connect_timer = evtimer_new(base, on_connect_timeout, queue);
    queue->read_timer = evtimer_new(base, on_read_timeout, queue);
    queue->op_timer = event_new(base, -1, EV_PERSIST, on_op_timer, queue);
    ASSERT(queue->connect_timer && queue->read_timer && queue->op_timer);
    struct timeval every = {1, 0};
    event_add(queue->op_timer, &every);
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++)
        keys_stream(config->prefix, (enum job_stream)s, queue->stream_keys[s],
                    sizeof queue->stream_keys[s]);
    return queue;
}

void queue_free(struct queue *queue)
{
    if (!queue)
        return;
    /* No callback of the owner may run while it tears down. */
    queue->on_lost = NULL;
    if (queue->ac) {
        redisAsyncContext *ac = queue->ac;
        queue->ac = NULL;
        ac->data = NULL; /* hiredis cannot unset callbacks: they check data */
        redisAsyncFree(ac);
    }
    ASSERT(queue->ops_head == NULL); /* every op was finished by the free above */
    event_free(queue->connect_timer);
    event_free(queue->read_timer);
    event_free(queue->op_timer);
    free(queue);
}

bool queue_is_ready(const struct queue *queue)
{
    return queue->state == QUEUE_READY;
}

const char *queue_errstr(const struct queue *queue)
{
    return queue->errstr;
}

const char *queue_stream_key(const struct queue *queue, enum job_stream stream)
{
    ASSERT((int)stream >= 0 && (int)stream < QUEUE_STREAM_COUNT);
    return queue->stream_keys[stream];
}

/* ---------------------------------------------------------------------------
 * Reading: XREADGROUP over the three streams
 * ------------------------------------------------------------------------- */

static void parse_read_reply(struct queue_op *op, const redisReply *reply)
{
    const char *keys[QUEUE_STREAM_COUNT];
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++)
        keys[s] = op->queue->stream_keys[s];
    char why[REPLY_ERRSTR_BYTES];
    ASSERT(op->entries == NULL && op->entry_count == 0);
    if (reply_read(reply, keys, &op->entries, &op->entry_count, why, sizeof why) != 0)
        op_refuse(op, why);
    ASSERT((op->entries == NULL) == (op->entry_count == 0));
}

/* After an own-pending XREADGROUP, the delivery counts of the same entries:
 * XPENDING key group (after + count consumer, one per stream. */
static void send_deliveries(struct queue_op *op, const char *count,
                            const char *const after_ids[QUEUE_STREAM_COUNT])
{
    struct queue *queue = op->queue;
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++) {
        char start[QUEUE_ENTRY_ID_BYTES_MAX + 2];
        if (strcmp(after_ids[s], "0") == 0)
            snprintf(start, sizeof start, "-");
        else
            snprintf(start, sizeof start, "(%s", after_ids[s]);
        const char *argv[7] = {"XPENDING", queue->stream_keys[s], queue->config.group, start, "+",
                               count,      queue->config.consumer};
        op_send(op, 7, argv, NULL);
    }
}

/* The delivery counts of stream number read_replies_seen - 2. */
static void parse_deliveries_reply(struct queue_op *op, const redisReply *reply)
{
    int stream = op->read_replies_seen - 2;
    ASSERT(stream >= 0 && stream < QUEUE_STREAM_COUNT);
    char why[REPLY_ERRSTR_BYTES];
    if (reply_deliveries(reply, (enum job_stream)stream, op->entries, op->entry_count, why,
                         sizeof why) != 0)
        op_refuse(op, why);
}

int queue_read(struct queue *queue, size_t count_max, enum queue_read_mode mode,
               const char *const after_ids[QUEUE_STREAM_COUNT], queue_read_cb *cb, void *arg)
{
    bool own_pending = mode == QUEUE_READ_OWN_PENDING;
    bool block = mode == QUEUE_READ_NEW_BLOCKING;
    ASSERT(count_max > 0 && cb);
    if (queue->state != QUEUE_READY)
        return -1;
    char count[24], block_ms[24];
    snprintf(count, sizeof count, "%zu", count_max);
    snprintf(block_ms, sizeof block_ms, "%lld", (long long)queue->config.block_ms);
    const char *argv[QUEUE_ARGS_MAX];
    int argc = 0;
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = queue->config.group;
    argv[argc++] = queue->config.consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    if (block) {
        argv[argc++] = "BLOCK";
        argv[argc++] = block_ms;
    }
    argv[argc++] = "STREAMS";
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++)
        argv[argc++] = queue->stream_keys[s];
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++)
        argv[argc++] = own_pending ? after_ids[s] : ">";

    struct queue_op *op = op_new(queue, NULL, arg);
    op->is_read = true;
    op->read_done = cb;
    op_send(op, argc, argv, NULL);
    if (own_pending)
        send_deliveries(op, count, after_ids);
    if (op_sent(op) != 0)
        return -1;
    int64_t wait_ms = (block ? queue->config.block_ms : 0) + QUEUE_READ_MARGIN_MS;
    struct timeval timeout = {(time_t)(wait_ms / 1000), (suseconds_t)(wait_ms % 1000) * 1000};
    evtimer_add(queue->read_timer, &timeout);
    return 0;
}

void queue_entries_free(struct queue_entry *entries, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(entries[i].job);
    free(entries);
}

/* ---------------------------------------------------------------------------
 * Pending summary (XPENDING key group): [count, min-id, max-id, consumers]
 * ------------------------------------------------------------------------- */

/* Replies come in pairs per stream: XINFO GROUPS (every entry up to the
 * group's last delivered one may go), then XPENDING (but never past the
 * oldest pending one). */
static void parse_pending_reply(struct queue_op *op, const redisReply *reply)
{
    ASSERT(op->pending_seen < 2 * QUEUE_STREAM_COUNT);
    struct queue_pending *p = &op->pending[op->pending_seen / 2];
    char why[REPLY_ERRSTR_BYTES];
    int rc = 0;
    if (op->pending_seen++ % 2 == 0) {
        rc = reply_groups_last_delivered(reply, op->queue->config.group, p->trim_before, why,
                                         sizeof why);
        reply_entry_id_next(p->trim_before);
    } else {
        rc = reply_pending_summary(reply, p, why, sizeof why);
    }
    if (rc != 0)
        op_refuse(op, why);
}

static void parse_claim_reply(struct queue_op *op, const redisReply *reply)
{
    ASSERT(op->claim_done != NULL);
    int64_t claimed = 0;
    char why[REPLY_ERRSTR_BYTES];
    if (reply_claim(reply, &claimed, why, sizeof why) != 0) {
        op_refuse(op, why);
        return;
    }
    ASSERT(claimed >= 0);
    op->claimed += claimed;
}

int queue_claim_idle(struct queue *queue, int64_t min_idle_ms, queue_claim_cb *cb, void *arg)
{
    ASSERT(cb && min_idle_ms > 0);
    if (queue->state != QUEUE_READY)
        return -1;
    char idle[24], count[24];
    snprintf(idle, sizeof idle, "%lld", (long long)min_idle_ms);
    snprintf(count, sizeof count, "%d", QUEUE_CLAIM_COUNT);
    struct queue_op *op = op_new(queue, NULL, arg);
    op->claim_done = cb;
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++) {
        const char *argv[9] = {"XAUTOCLAIM",
                               queue->stream_keys[s],
                               queue->config.group,
                               queue->config.consumer,
                               idle,
                               "0-0",
                               "COUNT",
                               count,
                               "JUSTID"};
        op_send(op, 9, argv, NULL);
    }
    return op_sent(op);
}

/* ---------------------------------------------------------------------------
 * One pending entry at a time: the oldest, claimed anew
 * ------------------------------------------------------------------------- */

/* The XPENDING reply of stream number oldest_seen: kept when older than the
 * oldest so far (stream entry IDs share one clock). */
static void parse_oldest_reply(struct queue_op *op, const redisReply *reply)
{
    int stream = op->oldest_seen++;
    ASSERT(stream >= 0 && stream < QUEUE_STREAM_COUNT);
    char id[QUEUE_ENTRY_ID_BYTES_MAX + 1], why[REPLY_ERRSTR_BYTES];
    int64_t deliveries = 0;
    int found = reply_pending_oldest(reply, id, &deliveries, why, sizeof why);
    if (found < 0) {
        op_refuse(op, why);
        return;
    }
    uint64_t ms = 0, seq = 0, old_ms = 0, old_seq = 0;
    if (found == 0 || !reply_entry_id_parse(id, strlen(id), &ms, &seq))
        return;
    struct queue_oldest *o = &op->oldest;
    bool parsed = !o->found || reply_entry_id_parse(o->id, strlen(o->id), &old_ms, &old_seq);
    ASSERT(parsed);
    if (o->found && (ms > old_ms || (ms == old_ms && seq > old_seq)))
        return;
    *o = (struct queue_oldest){true, (enum job_stream)stream, "", deliveries};
    snprintf(o->id, sizeof o->id, "%s", id);
}

int queue_oldest_pending(struct queue *queue, queue_oldest_cb *cb, void *arg)
{
    ASSERT(cb);
    if (queue->state != QUEUE_READY)
        return -1;
    struct queue_op *op = op_new(queue, NULL, arg);
    op->oldest_done = cb;
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++) {
        const char *argv[7] = {"XPENDING", queue->stream_keys[s], queue->config.group, "-", "+",
                               "1",        queue->config.consumer};
        op_send(op, 7, argv, NULL);
    }
    return op_sent(op);
}

static void parse_claim_one_reply(struct queue_op *op, const redisReply *reply)
{
    char why[REPLY_ERRSTR_BYTES];
    ASSERT(op->entries == NULL && op->entry_count == 0);
    if (reply_claimed(reply, op->claimed_entry.stream, &op->entries, &op->entry_count, why,
                      sizeof why) != 0) {
        op_refuse(op, why);
        return;
    }
    /* XCLAIM counted one more delivery of this entry, and of no other. */
    if (op->entry_count == 1)
        op->entries[0].deliveries = op->claimed_entry.deliveries + 1;
}

int queue_claim_entry(struct queue *queue, const struct queue_oldest *entry, queue_read_cb *cb,
                      void *arg)
{
    ASSERT(cb && entry && entry->found);
    if (queue->state != QUEUE_READY)
        return -1;
    struct queue_op *op = op_new(queue, NULL, arg);
    op->claim_one = true;
    op->claimed_entry = *entry;
    op->read_done = cb;
    const char *argv[6] = {"XCLAIM",
                           queue->stream_keys[entry->stream],
                           queue->config.group,
                           queue->config.consumer,
                           "0",
                           entry->id};
    op_send(op, 6, argv, NULL);
    return op_sent(op);
}

int queue_pending_summary(struct queue *queue, queue_pending_cb *cb, void *arg)
{
    ASSERT(cb);
    if (queue->state != QUEUE_READY)
        return -1;
    struct queue_op *op = op_new(queue, NULL, arg);
    op->pending_done = cb;
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++) {
        const char *groups[3] = {"XINFO", "GROUPS", queue->stream_keys[s]};
        op_send(op, 3, groups, NULL);
        const char *argv[3] = {"XPENDING", queue->stream_keys[s], queue->config.group};
        op_send(op, 3, argv, NULL);
    }
    return op_sent(op);
}

int queue_trim_acknowledged(struct queue *queue,
                            const struct queue_pending pending[QUEUE_STREAM_COUNT],
                            queue_done_cb *cb, void *arg)
{
    ASSERT(cb && pending);
    if (queue->state != QUEUE_READY)
        return -1;
    struct queue_op *op = op_new(queue, cb, arg);
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++) {
        if (pending[s].trim_before[0] == '\0')
            continue;
        const char *argv[5] = {"XTRIM", queue->stream_keys[s], "MINID", "~",
                               pending[s].trim_before};
        op_send(op, 5, argv, NULL);
    }
    return op_sent(op);
}

/* ---------------------------------------------------------------------------
 * Publishing and acknowledging
 * ------------------------------------------------------------------------- */

static void send_result_key(struct queue_op *op, const struct queue_publish *item)
{
    char key[KEYS_BYTES_MAX], ttl[24];
    keys_result(op->queue->config.prefix, item->job_id, key, sizeof key);
    snprintf(ttl, sizeof ttl, "%lld", (long long)op->queue->config.result_ttl_s);
    const char *argv[6] = {"SET", key, item->result, "EX", ttl, "NX"};
    size_t lens[6] = {3, strlen(key), item->result_len, 2, strlen(ttl), 2};
    op_send(op, item->key_mode == QUEUE_KEY_SET_NX ? 6 : 5, argv, lens);
}

static void send_results_stream(struct queue_op *op, const struct queue_publish *item)
{
    char key[KEYS_BYTES_MAX], maxlen[24];
    keys_results(op->queue->config.prefix, key, sizeof key);
    snprintf(maxlen, sizeof maxlen, "%lld", (long long)op->queue->config.results_maxlen);
    const char *argv[7] = {"XADD", key, "MAXLEN", "~", maxlen, "*", "result"};
    const char *full[8];
    size_t lens[8];
    for (int i = 0; i < 7; i++) {
        full[i] = argv[i];
        lens[i] = strlen(argv[i]);
    }
    full[7] = item->result;
    lens[7] = item->result_len;
    op_send(op, 8, full, lens);
}

static void send_reply(struct queue_op *op, const struct queue_publish *item)
{
    char key[KEYS_BYTES_MAX], ttl[24];
    keys_reply(op->queue->config.prefix, item->job_id, key, sizeof key);
    snprintf(ttl, sizeof ttl, "%d", QUEUE_REPLY_TTL_S);
    const char *push[3] = {"RPUSH", key, item->result};
    size_t push_lens[3] = {5, strlen(key), item->result_len};
    op_send(op, 3, push, push_lens);
    const char *expire[3] = {"EXPIRE", key, ttl};
    op_send(op, 3, expire, NULL);
}

/*
 * One dead letter per entry, whatever repeats its publication: the guard key
 * and the XADD are one script, so Redis either has both or neither. (An
 * explicit XADD ID derived from the entry's would not do: entries from
 * three streams are dead-lettered out of their ID order, and a stream
 * refuses an ID below its last.) The guard lives as long as a result key:
 * an entry still pending after that is rare enough to be dead-lettered
 * again. KEYS[1]: P:dead, KEYS[2]: the guard; ARGV[1]: MAXLEN, ARGV[2]: the
 * guard's TTL; ARGV[3..]: the dead letter's fields and values.
 */
/* clang-format off */
static const char lua_dead_letter[] =
    "if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then\n"
    "  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))\n"
    "end\n"
    "return false\n";
/* clang-format on */

#define DEAD_LETTER_ARGS 19 /* EVAL script 2 keys... maxlen ttl and 6 fields */

static void send_dead_letter(struct queue_op *op, const struct queue_publish *item)
{
    const struct queue_config *config = &op->queue->config;
    const struct queue_entry *entry = item->entry;
    char dead[KEYS_BYTES_MAX], seen[KEYS_BYTES_MAX], maxlen[24], ttl[24], bytes[24];
    char digest[SHA256_HEX_BYTES + 1];
    keys_dead(config->prefix, dead, sizeof dead);
    keys_dead_seen(config->prefix, entry->stream, entry->id, seen, sizeof seen);
    snprintf(maxlen, sizeof maxlen, "%lld", (long long)config->dead_maxlen);
    snprintf(ttl, sizeof ttl, "%lld", (long long)config->result_ttl_s);
    snprintf(bytes, sizeof bytes, "%zu", entry->job_bytes);
    uint8_t whole[SHA256_DIGEST_BYTES] = {0};
    if (entry->job_len < entry->job_bytes)
        memcpy(whole, entry->job_sha256, sizeof whole);
    else if (entry->has_job)
        sha256_digest(entry->job, entry->job_len, whole);
    sha256_hex(whole, digest);
    const char *argv[DEAD_LETTER_ARGS] = {"EVAL",
                                          lua_dead_letter,
                                          "2",
                                          dead,
                                          seen,
                                          maxlen,
                                          ttl,
                                          "stream",
                                          op->queue->stream_keys[entry->stream],
                                          "entry",
                                          entry->id,
                                          "reason",
                                          item->dead_reason,
                                          "job_bytes",
                                          bytes,
                                          "job_sha256",
                                          digest,
                                          "job",
                                          (const char *)entry->job};
    size_t lens[DEAD_LETTER_ARGS];
    for (int i = 0; i < DEAD_LETTER_ARGS - 1; i++)
        lens[i] = strlen(argv[i]);
    /* The first bytes of the original, never more (contract 9.9). */
    lens[DEAD_LETTER_ARGS - 1] =
        entry->job_len < QUEUE_DEAD_JOB_BYTES_MAX ? entry->job_len : QUEUE_DEAD_JOB_BYTES_MAX;
    /* Without a `job` field, none of the job's fields are written. */
    op_send(op, entry->has_job ? DEAD_LETTER_ARGS : DEAD_LETTER_ARGS - 6, argv, lens);
}

int queue_publish(struct queue *queue, const struct queue_publish *items, size_t count,
                  queue_done_cb *cb, void *arg)
{
    ASSERT(cb && (items || count == 0));
    if (queue->state != QUEUE_READY || count == 0)
        return -1;
    struct queue_op *op = op_new(queue, cb, arg);
    for (size_t i = 0; i < count; i++) {
        const struct queue_publish *item = &items[i];
        ASSERT(item->job_id || (item->key_mode == QUEUE_KEY_NONE && !item->reply));
        ASSERT(item->result_len > 0 || (item->key_mode == QUEUE_KEY_NONE && !item->reply));
        if (item->key_mode != QUEUE_KEY_NONE)
            send_result_key(op, item);
        if (item->result_len > 0)
            send_results_stream(op, item);
        if (item->reply)
            send_reply(op, item);
        if (item->dead_reason)
            send_dead_letter(op, item);
    }
    return op_sent(op);
}

int queue_publish_events(struct queue *queue, const struct queue_event *events, size_t count,
                         queue_done_cb *cb, void *arg)
{
    ASSERT(cb && events && count > 0);
    if (queue->state != QUEUE_READY)
        return -1;
    struct queue_op *op = op_new(queue, cb, arg);
    char key[KEYS_BYTES_MAX], maxlen[24];
    keys_events(queue->config.prefix, key, sizeof key);
    snprintf(maxlen, sizeof maxlen, "%lld", (long long)queue->config.events_maxlen);
    for (size_t i = 0; i < count; i++) {
        ASSERT(events[i].len > 0);
        const char *argv[8] = {"XADD", key, "MAXLEN", "~", maxlen, "*", "event", events[i].event};
        size_t lens[8] = {4, strlen(key), 6, 1, strlen(maxlen), 1, 5, events[i].len};
        op_send(op, 8, argv, lens);
    }
    return op_sent(op);
}

/* One XACK key group id... for the entries of one stream. */
static void send_acks(struct queue_op *op, enum job_stream stream,
                      const struct queue_entry *const *entries, size_t count)
{
    const char **argv = calloc(count + 3, sizeof *argv);
    ASSERT(argv != NULL);
    argv[0] = "XACK";
    argv[1] = op->queue->stream_keys[stream];
    argv[2] = op->queue->config.group;
    size_t argc = 3;
    for (size_t i = 0; i < count; i++)
        if (entries[i]->stream == stream)
            argv[argc++] = entries[i]->id;
    if (argc > 3)
        op_send(op, (int)argc, argv, NULL);
    free(argv);
}

int queue_ack(struct queue *queue, const struct queue_entry *const *entries, size_t count,
              queue_done_cb *cb, void *arg)
{
    ASSERT(cb && (entries || count == 0));
    if (queue->state != QUEUE_READY || count == 0)
        return -1;
    struct queue_op *op = op_new(queue, cb, arg);
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++)
        send_acks(op, (enum job_stream)s, entries, count);
    return op_sent(op);
}
