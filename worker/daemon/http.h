/*
 * http.h -- the worker's HTTP endpoint: /metrics in Prometheus text format,
 * /healthz (liveness), /readyz (readiness). One request per connection.
 *
 * Owns the routes and what they answer; the connections and their bounds
 * (at most a fixed number at once, each closed HTTP_DEADLINE_MS after it
 * was accepted whatever the client sends, a listener that pauses instead of
 * spinning when no descriptor is left) are worker/common/httpd.h's. Asks the
 * worker, through the callbacks below, what to say; never changes the
 * worker.
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
