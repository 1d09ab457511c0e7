/*
 * queue.c -- Redis Streams over hiredis async on libevent (queue.h).
 *
 * Owns the hiredis context, its watchdog timers (hiredis 0.14 has none) and
 * the parsing of stream replies. Every reply is checked for type and size
 * at each level before it is read; replies are copied out, never kept.
 */
#include "queue/queue.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"

#define QUEUE_KEY_BYTES_MAX (QUEUE_NAME_BYTES_MAX + JOB_ID_BYTES_MAX + 16)
#define QUEUE_ERRSTR_BYTES 256
#define QUEUE_ARGS_MAX 16

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
    char stream_keys[QUEUE_STREAM_COUNT][QUEUE_KEY_BYTES_MAX];
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

/* An op keeps the text of its first error: after a refused AUTH, the
 * set-up's later commands answer NOAUTH, which says nothing of why. */
static bool reply_is_error(struct queue *queue, const redisReply *reply, bool first_error)
{
    if (reply == NULL) {
        if (queue->errstr[0] == '\0')
            set_errstr(queue, "connection lost", NULL);
        return true;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (first_error)
            set_errstr(queue, "Redis error", reply->str);
        return true;
    }
    return false;
}

static void parse_read_reply(struct queue_op *op, const redisReply *reply);
static void parse_pending_reply(struct queue_op *op, const redisReply *reply);
static void parse_deliveries_reply(struct queue_op *op, const redisReply *reply);
static void parse_claim_reply(struct queue_op *op, const redisReply *reply);

static void on_reply(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    (void)ac;
    struct queue_op *op = privdata;
    const redisReply *reply = reply_ptr;
    ASSERT(op && op->replies_left > 0);
    if (reply_is_error(op->queue, reply, op->status == 0)) {
        op->status = -1;
        /* Keep later replies aligned with their streams. */
        if (op->pending_done) {
            struct queue_pending *p = &op->pending[op->pending_seen / 2];
            p->trim_before[0] = '\0'; /* unknown: do not trim this stream */
            op->pending_seen++;
        }
        op->read_replies_seen += op->is_read;
    } else if (op->is_read) {
        if (op->read_replies_seen++ == 0)
            parse_read_reply(op, reply);
        else
            parse_deliveries_reply(op, reply);
    } else if (op->pending_done) {
        parse_pending_reply(op, reply);
    } else if (op->claim_done) {
        parse_claim_reply(op, reply);
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
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) == 0)
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
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++) {
        int n = snprintf(queue->stream_keys[s], sizeof queue->stream_keys[s], "%s:jobs:%s",
                         config->prefix, job_type_name((enum job_type)s));
        ASSERT(n > 0 && (size_t)n < sizeof queue->stream_keys[s]);
    }
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

const char *queue_stream_key(const struct queue *queue, enum job_type stream)
{
    ASSERT((int)stream >= 0 && (int)stream < QUEUE_STREAM_COUNT);
    return queue->stream_keys[stream];
}

/* ---------------------------------------------------------------------------
 * Reading: XREADGROUP over the three streams
 * ------------------------------------------------------------------------- */

static int stream_index(const struct queue *queue, const redisReply *key)
{
    if (key->type != REDIS_REPLY_STRING && key->type != REDIS_REPLY_STATUS)
        return -1;
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++)
        if (key->len == strlen(queue->stream_keys[s]) &&
            memcmp(key->str, queue->stream_keys[s], key->len) == 0)
            return s;
    return -1;
}

/* "<ms>-<seq>", both decimal u64. */
static bool parse_entry_id(const char *id, uint64_t *ms, uint64_t *seq)
{
    char *end = NULL;
    errno = 0;
    *ms = strtoull(id, &end, 10);
    if (errno != 0 || end == id || *end != '-')
        return false;
    const char *rest = end + 1;
    *seq = strtoull(rest, &end, 10);
    return errno == 0 && end != rest && *end == '\0';
}

/* Copies one {id, [field, value, ...] | nil} entry; false if malformed. */
static bool copy_entry(const redisReply *item, enum job_type stream, struct queue_entry *out)
{
    if (item->type != REDIS_REPLY_ARRAY || item->elements != 2)
        return false;
    const redisReply *id = item->element[0], *fields = item->element[1];
    if (id->type != REDIS_REPLY_STRING || id->len == 0 || id->len > QUEUE_ENTRY_ID_BYTES_MAX)
        return false;
    memset(out, 0, sizeof *out);
    out->stream = stream;
    memcpy(out->id, id->str, id->len);
    if (!parse_entry_id(out->id, &out->id_ms, &out->id_seq))
        return false;
    if (fields->type == REDIS_REPLY_NIL)
        return true; /* deleted after delivery: no bytes left */
    if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2 != 0)
        return false;
    for (size_t f = 0; f + 1 < fields->elements; f += 2) {
        const redisReply *name = fields->element[f], *value = fields->element[f + 1];
        if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING)
            return false;
        if (name->len == 3 && memcmp(name->str, "job", 3) == 0 && !out->has_job) {
            out->job = malloc(value->len ? value->len : 1);
            ASSERT(out->job != NULL);
            memcpy(out->job, value->str, value->len);
            out->job_len = value->len;
            out->has_job = true;
        }
    }
    return true;
}

static size_t count_entries(const redisReply *reply)
{
    size_t total = 0;
    for (size_t k = 0; k < reply->elements; k++) {
        const redisReply *pair = reply->element[k];
        if (pair->type == REDIS_REPLY_ARRAY && pair->elements == 2 &&
            pair->element[1]->type == REDIS_REPLY_ARRAY)
            total += pair->element[1]->elements;
    }
    return total;
}

static void parse_read_reply(struct queue_op *op, const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_NIL)
        return; /* BLOCK timed out: no entries */
    if (reply->type != REDIS_REPLY_ARRAY) {
        set_errstr(op->queue, "unexpected XREADGROUP reply", NULL);
        op->status = -1;
        return;
    }
    size_t total = count_entries(reply);
    op->entries = calloc(total ? total : 1, sizeof *op->entries);
    ASSERT(op->entries != NULL);
    for (size_t k = 0; k < reply->elements; k++) {
        const redisReply *pair = reply->element[k];
        int s = pair->type == REDIS_REPLY_ARRAY && pair->elements == 2
                    ? stream_index(op->queue, pair->element[0])
                    : -1;
        if (s < 0 || pair->element[1]->type != REDIS_REPLY_ARRAY) {
            set_errstr(op->queue, "unexpected XREADGROUP reply", NULL);
            op->status = -1;
            return;
        }
        const redisReply *items = pair->element[1];
        for (size_t i = 0; i < items->elements; i++) {
            ASSERT(op->entry_count < total);
            if (!copy_entry(items->element[i], (enum job_type)s, &op->entries[op->entry_count])) {
                set_errstr(op->queue, "malformed stream entry in XREADGROUP reply", NULL);
                op->status = -1;
                return;
            }
            op->entry_count++;
        }
    }
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

/* [[id, consumer, idle, deliveries], ...] for stream number read_replies_seen - 2. */
static void parse_deliveries_reply(struct queue_op *op, const redisReply *reply)
{
    int stream = op->read_replies_seen - 2;
    ASSERT(stream >= 0 && stream < QUEUE_STREAM_COUNT);
    if (reply->type != REDIS_REPLY_ARRAY) {
        op->status = -1;
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *item = reply->element[i];
        if (item->type != REDIS_REPLY_ARRAY || item->elements != 4 ||
            item->element[0]->type != REDIS_REPLY_STRING ||
            item->element[3]->type != REDIS_REPLY_INTEGER)
            continue;
        for (size_t e = 0; e < op->entry_count; e++) {
            struct queue_entry *entry = &op->entries[e];
            if ((int)entry->stream == stream && strcmp(entry->id, item->element[0]->str) == 0) {
                entry->deliveries = item->element[3]->integer;
                break;
            }
        }
    }
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

/* XINFO GROUPS: for our group, [name, ..., last-delivered-id, ID, ...]. */
static void parse_groups_reply(struct queue_op *op, struct queue_pending *p,
                               const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t g = 0; g < reply->elements; g++) {
        const redisReply *group = reply->element[g];
        if (group->type != REDIS_REPLY_ARRAY || group->elements % 2 != 0 || group->elements < 2 ||
            group->element[1]->type != REDIS_REPLY_STRING ||
            strcmp(group->element[1]->str, op->queue->config.group) != 0)
            continue;
        for (size_t k = 0; k + 1 < group->elements; k += 2) {
            const redisReply *key = group->element[k], *value = group->element[k + 1];
            if (key->type == REDIS_REPLY_STRING && strcmp(key->str, "last-delivered-id") == 0 &&
                value->type == REDIS_REPLY_STRING && value->len <= QUEUE_ENTRY_ID_BYTES_MAX)
                snprintf(p->trim_before, sizeof p->trim_before, "%s", value->str);
        }
    }
}

/* Just past `id`: the smallest ID greater than it. */
static void next_entry_id(char *id, size_t len)
{
    uint64_t ms = 0, seq = 0;
    if (!parse_entry_id(id, &ms, &seq)) {
        id[0] = '\0';
        return;
    }
    if (seq == UINT64_MAX)
        snprintf(id, len, "%llu-0", (unsigned long long)ms + 1);
    else
        snprintf(id, len, "%llu-%llu", (unsigned long long)ms, (unsigned long long)seq + 1);
}

/* Replies come in pairs per stream: XINFO GROUPS, then XPENDING. */
static void parse_pending_reply(struct queue_op *op, const redisReply *reply)
{
    ASSERT(op->pending_seen < 2 * QUEUE_STREAM_COUNT);
    struct queue_pending *p = &op->pending[op->pending_seen / 2];
    if (op->pending_seen++ % 2 == 0) {
        parse_groups_reply(op, p, reply);
        next_entry_id(p->trim_before, sizeof p->trim_before);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        set_errstr(op->queue, "unexpected XPENDING reply", NULL);
        op->status = -1;
        return;
    }
    p->count = reply->element[0]->integer;
    const redisReply *min_id = reply->element[1];
    uint64_t seq = 0;
    if (p->count == 0)
        return;
    if (min_id->type != REDIS_REPLY_STRING || min_id->len > QUEUE_ENTRY_ID_BYTES_MAX ||
        !parse_entry_id(min_id->str, &p->oldest_ms, &seq)) {
        op->status = -1;
        return;
    }
    /* Never past the oldest pending entry. */
    snprintf(p->trim_before, sizeof p->trim_before, "%s", min_id->str);
}

/* XAUTOCLAIM (Redis 7): [next cursor, [claimed ids], [deleted ids]]. */
static void parse_claim_reply(struct queue_op *op, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        set_errstr(op->queue, "unexpected XAUTOCLAIM reply", NULL);
        op->status = -1;
        return;
    }
    op->claimed += (int64_t)reply->element[1]->elements;
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

static void key_for(const struct queue *queue, const char *kind, const char *id, char *out)
{
    int n = snprintf(out, QUEUE_KEY_BYTES_MAX, "%s:%s:%s", queue->config.prefix, kind, id);
    ASSERT(n > 0 && n < QUEUE_KEY_BYTES_MAX);
}

static void send_result_key(struct queue_op *op, const struct queue_publish *item)
{
    char key[QUEUE_KEY_BYTES_MAX], ttl[24];
    key_for(op->queue, "result", item->job_id, key);
    snprintf(ttl, sizeof ttl, "%lld", (long long)op->queue->config.result_ttl_s);
    const char *argv[6] = {"SET", key, item->result, "EX", ttl, "NX"};
    size_t lens[6] = {3, strlen(key), item->result_len, 2, strlen(ttl), 2};
    op_send(op, item->key_mode == QUEUE_KEY_SET_NX ? 6 : 5, argv, lens);
}

static void send_results_stream(struct queue_op *op, const struct queue_publish *item)
{
    char key[QUEUE_KEY_BYTES_MAX], maxlen[24];
    int n = snprintf(key, sizeof key, "%s:results", op->queue->config.prefix);
    ASSERT(n > 0 && (size_t)n < sizeof key);
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
    char key[QUEUE_KEY_BYTES_MAX], ttl[24];
    key_for(op->queue, "reply", item->job_id, key);
    snprintf(ttl, sizeof ttl, "%d", QUEUE_REPLY_TTL_S);
    const char *push[3] = {"RPUSH", key, item->result};
    size_t push_lens[3] = {5, strlen(key), item->result_len};
    op_send(op, 3, push, push_lens);
    const char *expire[3] = {"EXPIRE", key, ttl};
    op_send(op, 3, expire, NULL);
}

static void send_dead_letter(struct queue_op *op, const struct queue_publish *item)
{
    char key[QUEUE_KEY_BYTES_MAX];
    int n = snprintf(key, sizeof key, "%s:dead", op->queue->config.prefix);
    ASSERT(n > 0 && (size_t)n < sizeof key);
    const struct queue_entry *entry = item->entry;
    const char *argv[11] = {"XADD",
                            key,
                            "*",
                            "stream",
                            op->queue->stream_keys[entry->stream],
                            "entry",
                            entry->id,
                            "reason",
                            item->dead_reason,
                            "job",
                            (const char *)entry->job};
    size_t lens[11];
    for (int i = 0; i < 10; i++)
        lens[i] = strlen(argv[i]);
    lens[10] = entry->job_len;
    op_send(op, entry->has_job ? 11 : 9, argv, lens);
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

/* One XACK key group id... for the entries of one stream. */
static void send_acks(struct queue_op *op, enum job_type stream,
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
        send_acks(op, (enum job_type)s, entries, count);
    return op_sent(op);
}
