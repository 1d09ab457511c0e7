/*
 * events.c -- creditsctl events [--user U] [--limit N] [--follow] [--json],
 * on the stream {prefix}:events, whose entries carry the field `event`
 * (msgpack, as codec_encode_event() writes it; contract 9.8). The newest
 * entries are read back in pages and printed oldest first; --follow then
 * reads on from the newest one listed. Each entry is shown by event_view.c.
 */
#include "worker/ctl/events.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "worker/ctl/event_view.h"
#include "worker/ctl/json_out.h"
#include "worker/ctl/table.h"

/* Entries one XREVRANGE reads when --user filters them (without it, just
 * the --limit wanted): a few hundred KB of reply at most. */
#define EVENTS_PAGE_ENTRIES 500
/* The most entries one listing reads back looking for a user's events: the
 * whole stream at its default length (CREDITS_EVENTS_MAXLEN), so that only
 * a stream kept longer is searched in part (and the listing says so). */
#define EVENTS_SCAN_ENTRIES_MAX 100000
/* --follow waits at most this long in each XREAD: a signal does not cut a
 * blocking hiredis read short (it reads on after EINTR), so this bounds
 * how long SIGINT or SIGTERM waits for the exit. Well under the socket's
 * CTL_REDIS_TIMEOUT_S, so a live server always answers first. */
#define EVENTS_FOLLOW_BLOCK_MS 1000
/* Entries one XREAD of --follow returns at most. */
#define EVENTS_FOLLOW_COUNT 100

_Static_assert(EVENTS_FOLLOW_BLOCK_MS < CTL_REDIS_TIMEOUT_S * 1000,
               "the socket outwaits a blocked XREAD");
_Static_assert(EVENTS_LIMIT_MAX <= EVENTS_SCAN_ENTRIES_MAX, "a listing without --user fits");
_Static_assert(EVENTS_FOLLOW_COUNT <= EVENTS_LIMIT_MAX, "a batch of --follow is a table too");

/* What the command was asked. */
struct events_query {
    const char *user; /* NULL: every entry */
    int64_t limit;
    bool follow;
    bool json;
};

/* The listing: the entries shown, newest first, and where the stream was. */
struct listing {
    struct event_view *views; /* `limit` of them; caller frees */
    size_t count;
    size_t scanned;                      /* entries read */
    bool scan_cut;                       /* stopped at EVENTS_SCAN_ENTRIES_MAX, short of limit */
    char newest[EVENT_VIEW_ENTRY_BYTES]; /* the stream's newest entry; "0-0" when empty */
};

/* ------------------------------------------------------------------------ */
/* Reading the stream                                                       */
/* ------------------------------------------------------------------------ */

static void events_key(const struct ctl *ctl, char key[CTL_KEY_BYTES])
{
    keys_events(ctl->config.prefix, key, CTL_KEY_BYTES);
}

/* One entry of an XRANGE or XREAD reply, [id, [field, value, ...]], into
 * `view`; false when the reply has not that shape. */
static bool read_entry(const redisReply *e, struct event_view *view)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len == 0 ||
        e->element[0]->len >= EVENT_VIEW_ENTRY_BYTES)
        return false;
    const redisReply *id = e->element[0], *fields = e->element[1];
    const redisReply *value = NULL;
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements && !value;
         i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && k->len == 5 && memcmp(k->str, "event", 5) == 0 &&
            v->type == REDIS_REPLY_STRING)
            value = v;
    }
    event_view_read(view, id->str, id->len, value ? value->str : NULL, value ? value->len : 0,
                    value != NULL);
    return true;
}

/* XREVRANGE of the stream from `end` back, at most `count` entries: the
 * reply (caller frees), or NULL after a message. */
static redisReply *read_back(const struct ctl *ctl, redisContext *redis, const char *end,
                             size_t count)
{
    char key[CTL_KEY_BYTES], count_text[24];
    events_key(ctl, key);
    snprintf(count_text, sizeof count_text, "%zu", count);
    const char *argv[6] = {"XREVRANGE", key, end, "-", "COUNT", count_text};
    redisReply *reply = ctl_redis_run(ctl, redis, "reading the events", 6, argv, NULL);
    if (reply && reply->type != REDIS_REPLY_ARRAY) {
        ctl_failure(ctl, "%s is not a stream (Redis reply type %d)", key, reply->type);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* Reads one page back into the listing; *more false once the stream's
 * oldest entry is read. `end` moves past the page. */
static int scan_page(const struct ctl *ctl, redisContext *redis, const struct events_query *q,
                     struct listing *l, char end[EVENT_VIEW_ENTRY_BYTES + 1], bool *more)
{
    size_t want = q->user ? EVENTS_PAGE_ENTRIES : (size_t)q->limit - l->count;
    if (want > EVENTS_SCAN_ENTRIES_MAX - l->scanned)
        want = EVENTS_SCAN_ENTRIES_MAX - l->scanned;
    ASSERT(want > 0 && l->count < (size_t)q->limit);
    redisReply *reply = read_back(ctl, redis, end, want);
    if (!reply)
        return CTL_FAIL;
    int rc = CTL_OK;
    for (size_t i = 0; i < reply->elements && l->count < (size_t)q->limit; i++) {
        struct event_view *slot = &l->views[l->count]; /* kept only if it matches */
        if (!read_entry(reply->element[i], slot)) {
            rc = ctl_failure(ctl, "reading the events: an entry of an unexpected shape");
            break;
        }
        if (l->scanned++ == 0)
            snprintf(l->newest, sizeof l->newest, "%s", slot->entry);
        snprintf(end, EVENT_VIEW_ENTRY_BYTES + 1, "(%s", slot->entry);
        if (event_view_matches(slot, q->user))
            l->count++;
    }
    *more = reply->elements == want;
    freeReplyObject(reply);
    return rc;
}

/* The newest `limit` entries that match, newest first, reading back at
 * most EVENTS_SCAN_ENTRIES_MAX. */
static int scan_back(const struct ctl *ctl, redisContext *redis, const struct events_query *q,
                     struct listing *l)
{
    ASSERT(q->limit >= 1 && q->limit <= EVENTS_LIMIT_MAX);
    char end[EVENT_VIEW_ENTRY_BYTES + 1] = "+";
    bool more = true;
    snprintf(l->newest, sizeof l->newest, "0-0");
    while (more && l->count < (size_t)q->limit && l->scanned < EVENTS_SCAN_ENTRIES_MAX) {
        int rc = scan_page(ctl, redis, q, l, end, &more);
        if (rc != CTL_OK)
            return rc;
    }
    l->scan_cut = more && l->count < (size_t)q->limit;
    return CTL_OK;
}

/* ------------------------------------------------------------------------ */
/* Printing                                                                 */
/* ------------------------------------------------------------------------ */

/* Rows of a table, as event_view makes them. */
struct rows {
    const struct event_view_row *rows;
    int count;
};

static const char *row_cell(const void *ctx, int row, int col)
{
    const struct rows *r = ctx;
    ASSERT(row >= -1 && row < r->count && col >= 0 && col < EVENT_VIEW_COLS);
    return row < 0 ? event_view_header[col] : r->rows[row].cells[col];
}

/* Prints views[0..count) as table lines in that order, under the header
 * when `header`, keeping the columns' widths in `widths`. */
static void print_table_lines(const struct event_view *const *views, size_t count, bool header,
                              struct table_widths *widths)
{
    ASSERT(count <= EVENTS_LIMIT_MAX);
    struct event_view_row *rows = calloc(count ? count : 1, sizeof *rows);
    ASSERT(rows != NULL);
    for (size_t i = 0; i < count; i++)
        event_view_row(views[i], &rows[i]);
    struct rows r = {rows, (int)count};
    struct table t = {(int)count, EVENT_VIEW_COLS, row_cell, &r, event_view_right, NULL};
    table_print_continued(stdout, &t, header, widths);
    free(rows);
}

static void print_json_line(const struct event_view *view)
{
    struct json j;
    json_init(&j, stdout);
    event_view_json(&j, NULL, view);
    json_finish(&j);
}

/* The listing, oldest first: a table (and a word when it is empty or the
 * scan was cut), one JSON document, or with --follow --json one JSON line
 * per entry. *header_done: whether the table's header was printed. */
static void print_listing(const struct ctl *ctl, const struct events_query *q,
                          const struct listing *l, struct table_widths *widths, bool *header_done)
{
    const struct event_view **oldest_first = calloc(l->count ? l->count : 1, sizeof *oldest_first);
    ASSERT(oldest_first != NULL);
    for (size_t i = 0; i < l->count; i++)
        oldest_first[i] = &l->views[l->count - 1 - i];
    char key[CTL_KEY_BYTES];
    events_key(ctl, key);
    if (q->json && q->follow) {
        for (size_t i = 0; i < l->count; i++)
            print_json_line(oldest_first[i]);
    } else if (q->json) {
        struct json j;
        json_init(&j, stdout);
        json_object_begin(&j, NULL);
        json_array_begin(&j, "events");
        for (size_t i = 0; i < l->count; i++)
            event_view_json(&j, NULL, oldest_first[i]);
        json_array_end(&j);
        json_bool(&j, "scan_cut", l->scan_cut);
        json_object_end(&j);
        json_finish(&j);
    } else if (l->count > 0) {
        print_table_lines(oldest_first, l->count, true, widths);
        *header_done = true;
    } else {
        fputs(q->user ? "(no events of this user)\n" : "(no events)\n", stdout);
    }
    if (!q->json && l->scan_cut)
        printf("(only the newest %d entries of %s were read)\n", EVENTS_SCAN_ENTRIES_MAX, key);
    free(oldest_first);
}

/* ------------------------------------------------------------------------ */
/* --follow                                                                 */
/* ------------------------------------------------------------------------ */

/* Set by SIGINT and SIGTERM during --follow. A signal handler can reach
 * nothing else: the one piece of state outside struct ctl. */
static volatile sig_atomic_t follow_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    follow_stop = 1;
}

static int catch_stop_signals(const struct ctl *ctl)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return ctl_failure(ctl, "cannot catch SIGINT and SIGTERM: %s", strerror(errno));
    return CTL_OK;
}

/* The entries of one XREAD reply ([[key, [entry...]]]; nil: none came)
 * that match, printed; `last` moves to the newest entry read. */
static int print_new(const struct ctl *ctl, const struct events_query *q, const redisReply *reply,
                     char last[EVENT_VIEW_ENTRY_BYTES], struct table_widths *widths,
                     bool *header_done)
{
    if (reply->type == REDIS_REPLY_NIL)
        return CTL_OK;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY || reply->element[0]->elements != 2 ||
        reply->element[0]->element[1]->type != REDIS_REPLY_ARRAY)
        return ctl_failure(ctl, "following the events: unexpected reply (type %d)", reply->type);
    const redisReply *entries = reply->element[0]->element[1];
    ASSERT(entries->elements <= EVENTS_FOLLOW_COUNT);
    struct event_view *views = calloc(entries->elements ? entries->elements : 1, sizeof *views);
    const struct event_view **shown =
        calloc(entries->elements ? entries->elements : 1, sizeof *shown);
    ASSERT(views != NULL && shown != NULL);
    size_t count = 0;
    int rc = CTL_OK;
    for (size_t i = 0; i < entries->elements; i++) {
        if (!read_entry(entries->element[i], &views[i])) {
            rc = ctl_failure(ctl, "following the events: an entry of an unexpected shape");
            break;
        }
        snprintf(last, EVENT_VIEW_ENTRY_BYTES, "%s", views[i].entry);
        if (event_view_matches(&views[i], q->user))
            shown[count++] = &views[i];
    }
    for (size_t i = 0; q->json && i < count; i++)
        print_json_line(shown[i]);
    if (!q->json && count > 0) {
        print_table_lines(shown, count, !*header_done, widths);
        *header_done = true;
    }
    free(shown);
    free(views);
    return rc;
}

/* XREAD BLOCK from `last` on, printing what comes, until a stop signal. */
static int follow(const struct ctl *ctl, redisContext *redis, const struct events_query *q,
                  const char *newest, struct table_widths *widths, bool header_done)
{
    char key[CTL_KEY_BYTES], last[EVENT_VIEW_ENTRY_BYTES], block[24], count[24];
    events_key(ctl, key);
    snprintf(last, sizeof last, "%s", newest);
    snprintf(block, sizeof block, "%d", EVENTS_FOLLOW_BLOCK_MS);
    snprintf(count, sizeof count, "%d", EVENTS_FOLLOW_COUNT);
    while (!follow_stop) {
        const char *argv[8] = {"XREAD", "COUNT", count, "BLOCK", block, "STREAMS", key, last};
        redisReply *reply = ctl_redis_run(ctl, redis, "following the events", 8, argv, NULL);
        if (!reply)
            return CTL_FAIL;
        int rc = print_new(ctl, q, reply, last, widths, &header_done);
        freeReplyObject(reply);
        if (rc != CTL_OK)
            return rc;
        if (fflush(stdout) != 0)
            return ctl_failure(ctl, "cannot write the output: %s", strerror(errno));
    }
    return CTL_OK;
}

/* ------------------------------------------------------------------------ */
/* The command                                                              */
/* ------------------------------------------------------------------------ */

static int run_events(struct ctl *ctl, redisContext *redis, const struct events_query *q)
{
    struct listing l;
    memset(&l, 0, sizeof l);
    l.views = calloc((size_t)q->limit, sizeof *l.views);
    ASSERT(l.views != NULL);
    /* Caught before the listing, so that a signal while it is read ends
     * --follow cleanly rather than killing it halfway through a line. */
    int rc = q->follow ? catch_stop_signals(ctl) : CTL_OK;
    if (rc == CTL_OK)
        rc = scan_back(ctl, redis, q, &l);
    struct table_widths widths;
    memset(&widths, 0, sizeof widths);
    bool header_done = false;
    if (rc == CTL_OK)
        print_listing(ctl, q, &l, &widths, &header_done);
    if (rc == CTL_OK && q->follow && fflush(stdout) != 0)
        rc = ctl_failure(ctl, "cannot write the output: %s", strerror(errno));
    if (rc == CTL_OK && q->follow)
        rc = follow(ctl, redis, q, l.newest, &widths, header_done);
    free(l.views);
    return rc;
}

/* events [--user U] [--limit N] [--follow] [--json] */
static int cmd_events(struct ctl *ctl, int argc, char **argv)
{
    struct events_query q = {NULL, EVENTS_LIMIT_DEFAULT, false, false};
    const char *limit_text = NULL;
    const struct opt opts[] = {{"user", &q.user, NULL, false},
                               {"limit", &limit_text, NULL, false},
                               {"follow", NULL, &q.follow, false},
                               CTL_OPT_JSON(q.json),
                               CTL_OPT_END};
    const char *const names[] = {NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    if (limit_text &&
        ctl_flag_int64(ctl, "--limit", limit_text, 1, EVENTS_LIMIT_MAX, &q.limit) != CTL_OK)
        return CTL_USAGE;
    if (q.user && ctl_check_user(ctl, q.user) != CTL_OK)
        return CTL_USAGE;
    redisContext *redis = NULL;
    rc = ctl_redis_open(ctl, &redis);
    if (rc == CTL_OK)
        rc = run_events(ctl, redis, &q);
    redisFree(redis);
    return rc;
}

/* Help texts keep their own layout. */
/* clang-format off */
const struct command events_command = {
    "events", "print the events the web app is told, and follow new ones",
    "events [--user U] [--limit N] [--follow] [--json]",
    "Prints the newest events of {prefix}:events (contract 9.8: balance_low,\n"
    "balance_depleted, balance_recovered, credits_expiring, credits_expired,\n"
    "hold_expired), oldest first, decoded with the worker's own codec: one line\n"
    "each with its event_id, time (UTC), type, user, the job that caused it, the\n"
    "type's own keys (threshold; lot, credits, expires_at; hold, released) and\n"
    "the balance after it (total, held). An entry whose bytes are no event is\n"
    "listed as '(not an event)' with its entry ID, length and first bytes in hex.\n"
    "The stream is read back at most 100000 entries deep (the listing says so\n"
    "when that was not enough to find N).\n\n"
    "  --user U      only the events of user U (entries that are no event are\n"
    "                then left out)\n"
    "  --limit N     how many, 1 to 1000 (default 20)\n"
    "  --follow      then wait for new events and print each as it comes, until\n"
    "                SIGINT (Ctrl-C) or SIGTERM; exit status 0 then\n"
    "  --json        print one JSON document, {\"events\": [...], \"scan_cut\": B}:\n"
    "                each event an object with its stream \"entry\" ID and every\n"
    "                key of the event (\"at\" and \"expires_at\" in Unix ms); an\n"
    "                entry that is no event has \"error\", \"bytes\" and \"hex\"\n"
    "                instead; scan_cut is true when the search stopped at its\n"
    "                depth. With --follow: one JSON object per line per event\n"
    "                instead, the listed ones first, then each new one\n",
    cmd_events};
/* clang-format on */
