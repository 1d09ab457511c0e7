/*
 * http.c -- /metrics, /healthz and /readyz over evhttp (http.h).
 */
#include "worker/daemon/http.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

#define HTTP_TIMEOUT_S 5
#define HTTP_BODY_BYTES_MAX 1024
#define HTTP_WHY_BYTES 200

struct http {
    struct evhttp *server;
    struct http_endpoints endpoints;
};

static void reply_text(struct evhttp_request *req, int code, const char *reason,
                       const char *content_type, const char *body, size_t len)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", content_type);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    struct evbuffer *buf = evbuffer_new();
    ASSERT(buf != NULL);
    evbuffer_add(buf, body, len);
    evhttp_send_reply(req, code, reason, buf);
    evbuffer_free(buf);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    struct http *http = arg;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    metrics_render(http->endpoints.metrics, out);
    fclose(out);
    reply_text(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

static void answer_check(struct evhttp_request *req, http_check_fn *check, void *arg)
{
    char why[HTTP_WHY_BYTES] = "";
    bool ok = check(arg, why, sizeof why);
    char body[HTTP_WHY_BYTES + 16];
    int n = snprintf(body, sizeof body, "%s%s%s\n", ok ? "ok" : "not ok", why[0] ? ": " : "", why);
    ASSERT(n > 0);
    reply_text(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", "text/plain; charset=utf-8",
               body, strlen(body));
}

static void on_healthz(struct evhttp_request *req, void *arg)
{
    struct http *http = arg;
    answer_check(req, http->endpoints.live, http->endpoints.arg);
}

static void on_readyz(struct evhttp_request *req, void *arg)
{
    struct http *http = arg;
    answer_check(req, http->endpoints.ready, http->endpoints.arg);
}

static void on_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_send_error(req, 404, "try /metrics, /healthz or /readyz");
}

/* "host:port" or "[v6]:port" into host and port. */
static int split_addr(const char *addr, char *host, size_t host_len, unsigned *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return -1;
    const char *start = addr, *end = colon;
    if (addr[0] == '[') {
        if (colon[-1] != ']')
            return -1;
        start = addr + 1;
        end = colon - 1;
    }
    size_t n = (size_t)(end - start);
    char *rest = NULL;
    unsigned long p = strtoul(colon + 1, &rest, 10);
    if (n == 0 || n >= host_len || *rest != '\0' || colon[1] == '\0' || p == 0 || p > 65535)
        return -1;
    memcpy(host, start, n);
    host[n] = '\0';
    *port = (unsigned)p;
    return 0;
}

struct http *http_start(struct event_base *base, const char *addr,
                        const struct http_endpoints *endpoints, char *errstr, size_t errstr_len)
{
    ASSERT(base && addr && endpoints && endpoints->metrics && endpoints->live && endpoints->ready);
    char host[256];
    unsigned port = 0;
    if (split_addr(addr, host, sizeof host, &port) != 0) {
        snprintf(errstr, errstr_len, "CREDITS_HTTP_ADDR must be host:port (got \"%s\")", addr);
        return NULL;
    }
    struct http *http = calloc(1, sizeof *http);
    ASSERT(http != NULL);
    http->endpoints = *endpoints;
    http->server = evhttp_new(base);
    ASSERT(http->server != NULL);
    evhttp_set_allowed_methods(http->server, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_timeout(http->server, HTTP_TIMEOUT_S);
    evhttp_set_max_body_size(http->server, HTTP_BODY_BYTES_MAX);
    evhttp_set_max_headers_size(http->server, 8192);
    evhttp_set_cb(http->server, "/metrics", on_metrics, http);
    evhttp_set_cb(http->server, "/healthz", on_healthz, http);
    evhttp_set_cb(http->server, "/readyz", on_readyz, http);
    evhttp_set_gencb(http->server, on_other, http);
    if (!evhttp_bind_socket_with_handle(http->server, host, (ev_uint16_t)port)) {
        snprintf(errstr, errstr_len, "cannot listen on %s for HTTP (in use, or not an address)",
                 addr);
        http_free(http);
        return NULL;
    }
    return http;
}

void http_free(struct http *http)
{
    if (!http)
        return;
    evhttp_free(http->server);
    free(http);
}
