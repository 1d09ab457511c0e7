/*
 * http.h -- the worker's HTTP endpoint: /metrics in Prometheus text format,
 * /healthz (liveness), /readyz (readiness). One request per connection.
 *
 * Owns the listening socket, the client connections and their bounds: at
 * most a fixed number at once (below RLIMIT_NOFILE minus HTTP_FD_RESERVE),
 * each closed HTTP_DEADLINE_MS after it was accepted whatever the client
 * sends, and a listener that pauses instead of spinning when no descriptor
 * is left. Asks the worker, through the callbacks below, what to say; never
 * changes the worker.
 */
#ifndef CREDITS_WORKER_DAEMON_HTTP_H
#define CREDITS_WORKER_DAEMON_HTTP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "worker/daemon/metrics.h"

/* From accept to the answer's last byte: a client that sends a byte at a
 * time (slowloris) cannot hold a connection longer. */
#define HTTP_DEADLINE_MS 5000
/* The request line and headers; a scrape's are a few hundred bytes. */
#define HTTP_HEAD_BYTES_MAX 8192
/* Descriptors HTTP never takes, so that the Redis and PostgreSQL reconnects
 * always find one: stdio, the event loop's own (epoll, the signal pipe),
 * the listener, Redis, PostgreSQL, and the files libpq opens while it
 * connects (certificates, .pgpass, a service file), with room to spare. */
#define HTTP_FD_RESERVE 32
/* How long the listener rests after accept() failed for want of a
 * descriptor (EMFILE, ENFILE) or memory, before it tries again. */
#define HTTP_ACCEPT_PAUSE_MS 1000

/* Fills `why` and returns false when the answer is "no". */
typedef bool http_check_fn(void *arg, char *why, size_t why_len);

struct http_endpoints {
    const struct metrics *metrics; /* borrowed for the endpoint's life */
    http_check_fn *live;
    http_check_fn *ready;
    void *arg;
};

struct http;

/* Listens on `addr` ("host:port", "[v6]:port") for at most connections_max
 * clients at once (fewer when RLIMIT_NOFILE leaves less room; the log says
 * so). NULL with errstr on failure. */
struct http *http_start(struct event_base *base, const char *addr, size_t connections_max,
                        const struct http_endpoints *endpoints, char *errstr, size_t errstr_len);

/* Closes the listener and every connection; frees. NULL is fine. */
void http_free(struct http *http);

#endif
