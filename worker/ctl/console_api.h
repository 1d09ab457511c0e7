/*
 * console_api.h -- the JSON API of `creditsctl console`: one handler per
 * path under /api/, reading Redis (the job streams and their consumer
 * group, dead letters, results, events) and PostgreSQL (balances, history,
 * events, one job, the catalog) through admin.h and deadletters.h, and, for the
 * actions, retrying or dropping dead letters and editing the catalog.
 *
 * Owns the routes, their parameters (checked: any bytes give an answer,
 * never a crash), their bounds (every page and scan has a limit) and the
 * documents they answer. Does not own who may call them (console_guard.h)
 * or the HTTP around them (console.c). Blocking: one call at a time.
 */
#ifndef CREDITS_WORKER_CTL_CONSOLE_API_H
#define CREDITS_WORKER_CTL_CONSOLE_API_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "worker/common/config.h"
#include "worker/ctl/console_probe.h"
#include "worker/ctl/ctl.h"

/* What a page of dead letters or history holds at most, and by default. */
#define CONSOLE_PAGE_MAX 100
#define CONSOLE_DEAD_PAGE_DEFAULT 25
#define CONSOLE_HISTORY_PAGE_DEFAULT 20
#define CONSOLE_EVENTS_PAGE_DEFAULT 20
/* Entries of a stream one request reads at most while it looks for what
 * it shows (dead letters matching a filter, a job's results, a user's
 * events): bounded work whatever the streams hold. */
#define CONSOLE_SCAN_MAX 1000
/* Results and events shown on the overview. */
#define CONSOLE_RECENT_MAX 20
/* Consumers listed per stream, reasons of dead letters told apart. */
#define CONSOLE_CONSUMERS_MAX 32
#define CONSOLE_REASONS_MAX 32
/* Dead letters one "retry all of a reason" tries, and lists. */
#define CONSOLE_RETRY_MANY_MAX 1000
#define CONSOLE_RETRY_LISTED_MAX 100
/* What an action acted on, for the audit log. */
#define CONSOLE_WHAT_BYTES 320

/* The connections and settings the handlers share. */
struct console_api {
    const struct config *config;          /* prefix, group, URLs; borrowed for the API's life */
    const struct console_worker *workers; /* --worker, borrowed */
    size_t worker_count;
    bool actions;         /* --allow-actions: the database session may write */
    bool token_for_reads; /* told to the page */
    const char *listen;   /* told to the page */
    PGconn *pg;           /* NULL until needed, and again after a loss */
    redisContext *redis;  /* likewise */
};

enum console_route_kind {
    CONSOLE_ROUTE_READ,   /* GET */
    CONSOLE_ROUTE_ACTION, /* POST: checked, logged */
};

struct console_call;

struct console_route {
    const char *path; /* "/api/dead" */
    enum console_route_kind kind;
    const char *name; /* "dead_retry": the action in the audit log */
    int (*handle)(struct console_call *call);
};

/* The route of `path`, or NULL when there is none. Pure. */
const struct console_route *console_api_route(const char *path);

/* The answer to one call. */
struct console_outcome {
    int status; /* 200, or the error's: 400 bad parameters, 404, 409 refused, 502, 503 */
    char *body; /* one JSON document (script-safe); caller frees with free() */
    size_t body_len;
    char what[CONSOLE_WHAT_BYTES]; /* what an action acted on ("dead letter 1-0") */
    char error[CTL_ERRSTR_BYTES];  /* "" when status is 200 */
};

/* Runs `route` with the raw query string `query` (borrowed until return).
 * Connects to Redis or PostgreSQL when the route needs it and they are not
 * connected; a connection found broken afterwards is closed, to be made
 * again by the next call. */
void console_api_call(struct console_api *api, const struct console_route *route, const char *query,
                      struct console_outcome *outcome);

/* Writes what the page needs to know before its first call (prefix,
 * group, actions, token_for_reads, listen, version, workers) as one
 * script-safe JSON object into `out`. */
void console_api_boot_json(const struct console_api *api, FILE *out);

/* Closes the connections. */
void console_api_close(struct console_api *api);

#endif
