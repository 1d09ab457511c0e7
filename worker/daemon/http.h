/*
 * http.h -- the worker's HTTP endpoint (libevent evhttp): /metrics in
 * Prometheus text format, /healthz (liveness), /readyz (readiness).
 *
 * Owns the listening socket and the answers. Asks the worker, through the
 * callbacks below, what to say; never changes the worker.
 */
#ifndef CREDITS_WORKER_DAEMON_HTTP_H
#define CREDITS_WORKER_DAEMON_HTTP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "worker/daemon/metrics.h"

/* Fills `why` and returns false when the answer is "no". */
typedef bool http_check_fn(void *arg, char *why, size_t why_len);

struct http_endpoints {
    const struct metrics *metrics; /* borrowed for the endpoint's life */
    http_check_fn *live;
    http_check_fn *ready;
    void *arg;
};

struct http;

/* Listens on `addr` ("host:port", "[v6]:port"). NULL with errstr on failure. */
struct http *http_start(struct event_base *base, const char *addr,
                        const struct http_endpoints *endpoints, char *errstr, size_t errstr_len);

void http_free(struct http *http);

#endif
