/*
 * http.c -- /metrics, /healthz and /readyz (http.h) on the shared server of
 * worker/common/httpd.h: the routes and their answers.
 */
#include "worker/daemon/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "worker/common/httpd.h"

#define HTTP_WHY_BYTES 200

struct http {
    struct http_endpoints endpoints;
    struct httpd *httpd;
};

static void respond_text(struct httpd_reply *reply, int code, const char *text)
{
    httpd_respond(reply, code, "text/plain; charset=utf-8", NULL, text, strlen(text));
}

static void answer_metrics(const struct http *http, struct httpd_reply *reply)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        respond_text(reply, 500, "out of memory\n");
        return;
    }
    metrics_render(http->endpoints.metrics, out);
    fclose(out);
    httpd_respond(reply, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text, len);
    free(text);
}

static void answer_check(const struct http *http, http_check_fn *check, struct httpd_reply *reply)
{
    char why[HTTP_WHY_BYTES] = "";
    bool ok = check(http->endpoints.arg, why, sizeof why);
    char body[HTTP_WHY_BYTES + 16];
    int n = snprintf(body, sizeof body, "%s%s%s\n", ok ? "ok" : "not ok", why[0] ? ": " : "", why);
    ASSERT(n > 0);
    respond_text(reply, ok ? 200 : 503, body);
}

static void route(void *arg, const struct httpd_request *req, struct httpd_reply *reply)
{
    const struct http *http = arg;
    if (req->method != HTTPD_GET && req->method != HTTPD_HEAD)
        respond_text(reply, 501, "only GET and HEAD\n");
    else if (strcmp(req->path, "/metrics") == 0)
        answer_metrics(http, reply);
    else if (strcmp(req->path, "/healthz") == 0)
        answer_check(http, http->endpoints.live, reply);
    else if (strcmp(req->path, "/readyz") == 0)
        answer_check(http, http->endpoints.ready, reply);
    else
        respond_text(reply, 404, "try /metrics, /healthz or /readyz\n");
}

struct http *http_start(struct event_base *base, const char *addr, size_t connections_max,
                        const struct http_endpoints *endpoints, char *errstr, size_t errstr_len)
{
    ASSERT(base && addr && endpoints && endpoints->metrics && endpoints->live && endpoints->ready);
    struct http *http = calloc(1, sizeof *http);
    ASSERT(http != NULL);
    http->endpoints = *endpoints;
    const struct httpd_config config = {
        .addr = addr,
        .addr_setting = "CREDITS_HTTP_ADDR",
        .connections_max = connections_max,
        .deadline_ms = HTTP_DEADLINE_MS,
        .body_bytes_max = 0, /* no route takes a body */
        .headers = NULL,
        .handle = route,
        .arg = http,
    };
    http->httpd = httpd_start(base, &config, errstr, errstr_len);
    if (!http->httpd) {
        free(http);
        return NULL;
    }
    return http;
}

void http_free(struct http *http)
{
    if (!http)
        return;
    httpd_free(http->httpd);
    free(http);
}
