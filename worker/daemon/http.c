/*
 * http.c -- /metrics, /healthz and /readyz (http.h): a small HTTP/1.1 server
 * on libevent's listener and bufferevents.
 *
 * Owns the connections and their bounds. Not evhttp: in libevent 2.1 its
 * timeout restarts on every byte received (a slow client holds a connection
 * for ever), it cannot cap the number of connections, and its listener
 * retries a failing accept() at once, spinning a core and logging each try.
 */
#include "worker/daemon/http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "core/assert.h"
#include "worker/common/log.h"

#define HTTP_WHY_BYTES 200
#define HTTP_HOST_BYTES_MAX 255
#define HTTP_PATH_BYTES_MAX 64 /* longer than any path served */

/* One client, from accept to close. */
struct http_conn {
    struct http *http;
    struct bufferevent *bev;
    struct event *deadline;
    struct http_conn *prev; /* the server's list of open connections */
    struct http_conn *next;
    bool answered; /* the answer is queued: close once it is written */
};

struct http {
    struct event_base *base;
    struct http_endpoints endpoints;
    struct evconnlistener *listener;
    struct event *resume_timer; /* ends a pause of the listener */
    struct http_conn *conns;
    size_t conn_count;
    size_t conn_max;
    bool paused;    /* accept() failed; resume_timer is pending */
    int64_t pauses; /* since the last accept that succeeded; only the first is logged */
};

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

/* The listener takes new connections only while there is room. */
static void update_listener(struct http *http)
{
    if (http->paused)
        return; /* resume_timer decides */
    if (http->conn_count < http->conn_max)
        evconnlistener_enable(http->listener);
    else
        evconnlistener_disable(http->listener);
}

static void conn_close(struct http_conn *conn)
{
    struct http *http = conn->http;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        http->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    event_free(conn->deadline);
    bufferevent_free(conn->bev); /* closes the socket */
    free(conn);
    ASSERT(http->conn_count > 0);
    http->conn_count--;
    update_listener(http);
}

/* Queues a whole answer; the connection closes once it is written. */
static void respond(struct http_conn *conn, int code, const char *reason, const char *type,
                    const char *body, size_t len, bool head_only)
{
    ASSERT(!conn->answered);
    struct evbuffer *out = bufferevent_get_output(conn->bev);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                        code, reason, type, len);
    if (!head_only)
        evbuffer_add(out, body, len);
    conn->answered = true;
    bufferevent_disable(conn->bev, EV_READ);
    bufferevent_enable(conn->bev, EV_WRITE);
}

static void respond_text(struct http_conn *conn, int code, const char *reason, const char *text,
                         bool head_only)
{
    respond(conn, code, reason, "text/plain; charset=utf-8", text, strlen(text), head_only);
}

/* ---------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------- */

static void answer_metrics(struct http_conn *conn, bool head_only)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        respond_text(conn, 500, "Internal Server Error", "out of memory\n", head_only);
        return;
    }
    metrics_render(conn->http->endpoints.metrics, out);
    fclose(out);
    respond(conn, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text, len, head_only);
    free(text);
}

static void answer_check(struct http_conn *conn, http_check_fn *check, bool head_only)
{
    char why[HTTP_WHY_BYTES] = "";
    bool ok = check(conn->http->endpoints.arg, why, sizeof why);
    char body[HTTP_WHY_BYTES + 16];
    int n = snprintf(body, sizeof body, "%s%s%s\n", ok ? "ok" : "not ok", why[0] ? ": " : "", why);
    ASSERT(n > 0);
    respond_text(conn, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", body, head_only);
}

/* "METHOD SP PATH[?QUERY] SP HTTP/1.x": 0, or -1 when it is not that. */
static int parse_request_line(const char *line, size_t len, bool *head, bool *other_method,
                              char path[HTTP_PATH_BYTES_MAX + 1])
{
    const char *sp1 = memchr(line, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || sp1[1] != '/')
        return -1;
    size_t version_len = len - (size_t)(sp2 + 1 - line);
    if (version_len != strlen("HTTP/1.1") || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return -1;
    size_t method_len = (size_t)(sp1 - line);
    *head = method_len == 4 && memcmp(line, "HEAD", 4) == 0;
    *other_method = !*head && !(method_len == 3 && memcmp(line, "GET", 3) == 0);
    const char *target = sp1 + 1;
    const char *query = memchr(target, '?', (size_t)(sp2 - target));
    size_t path_len = (size_t)((query ? query : sp2) - target);
    if (path_len > HTTP_PATH_BYTES_MAX)
        path_len = 0; /* served by no route: 404 */
    memcpy(path, target, path_len);
    path[path_len] = '\0';
    return 0;
}

static void route(struct http_conn *conn, const char *line, size_t len)
{
    bool head = false, other_method = false;
    char path[HTTP_PATH_BYTES_MAX + 1];
    if (parse_request_line(line, len, &head, &other_method, path) != 0) {
        respond_text(conn, 400, "Bad Request", "not an HTTP/1.x request line\n", false);
        return;
    }
    const struct http_endpoints *e = &conn->http->endpoints;
    if (other_method)
        respond_text(conn, 501, "Not Implemented", "only GET and HEAD\n", false);
    else if (strcmp(path, "/metrics") == 0)
        answer_metrics(conn, head);
    else if (strcmp(path, "/healthz") == 0)
        answer_check(conn, e->live, head);
    else if (strcmp(path, "/readyz") == 0)
        answer_check(conn, e->ready, head);
    else
        respond_text(conn, 404, "Not Found", "try /metrics, /healthz or /readyz\n", head);
}

/* Answers once the whole head (up to the blank line) is in: closing a socket
 * with unread input makes the kernel reset the connection, and the client
 * might lose the answer. */
static void on_conn_read(struct bufferevent *bev, void *arg)
{
    struct http_conn *conn = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        end = evbuffer_search(in, "\n\n", 2, NULL);
    if (end.pos < 0) {
        if (evbuffer_get_length(in) >= HTTP_HEAD_BYTES_MAX)
            respond_text(conn, 431, "Request Header Fields Too Large", "request head too large\n",
                         false);
        return;
    }
    /* The request line ends at the first '\n', at most two bytes past the
     * blank line's start: the bytes up to there are in the buffer. */
    size_t head_len = (size_t)end.pos + 2;
    const char *head = (const char *)evbuffer_pullup(in, (ev_ssize_t)head_len);
    const char *eol = memchr(head, '\n', head_len);
    size_t line_len = eol ? (size_t)(eol - head) : (size_t)end.pos;
    if (line_len > 0 && head[line_len - 1] == '\r')
        line_len--;
    route(conn, head, line_len);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void on_conn_written(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct http_conn *conn = arg;
    if (conn->answered)
        conn_close(conn);
}

static void on_conn_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_close(arg);
}

static void on_conn_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_close(arg);
}

/* ---------------------------------------------------------------------------
 * Accepting
 * ------------------------------------------------------------------------- */

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
                      int addr_len, void *arg)
{
    (void)listener;
    (void)addr;
    (void)addr_len;
    struct http *http = arg;
    if (http->pauses > 0) {
        log_event(LOG_INFO, "http_accept_resumed", "pauses=%lld", (long long)http->pauses);
        http->pauses = 0;
    }
    struct http_conn *conn = calloc(1, sizeof *conn);
    ASSERT(conn != NULL);
    conn->http = http;
    conn->bev = bufferevent_socket_new(http->base, fd, BEV_OPT_CLOSE_ON_FREE);
    conn->deadline = evtimer_new(http->base, on_conn_deadline, conn);
    ASSERT(conn->bev && conn->deadline);
    bufferevent_setcb(conn->bev, on_conn_read, on_conn_written, on_conn_event, conn);
    bufferevent_setwatermark(conn->bev, EV_READ, 0, HTTP_HEAD_BYTES_MAX);
    bufferevent_enable(conn->bev, EV_READ);
    struct timeval deadline = {HTTP_DEADLINE_MS / 1000, (HTTP_DEADLINE_MS % 1000) * 1000};
    evtimer_add(conn->deadline, &deadline);
    conn->next = http->conns;
    if (http->conns)
        http->conns->prev = conn;
    http->conns = conn;
    http->conn_count++;
    update_listener(http);
}

/* accept() failed for another reason than a client that went away (libevent
 * retries those itself): most often no descriptor or memory is left. Trying
 * again at once would fail again, at once, for ever: rest, and say so once
 * until an accept succeeds. */
static void on_accept_error(struct evconnlistener *listener, void *arg)
{
    struct http *http = arg;
    int err = EVUTIL_SOCKET_ERROR();
    evconnlistener_disable(listener);
    http->paused = true;
    struct timeval pause = {HTTP_ACCEPT_PAUSE_MS / 1000, (HTTP_ACCEPT_PAUSE_MS % 1000) * 1000};
    evtimer_add(http->resume_timer, &pause);
    if (http->pauses++ == 0)
        log_event(LOG_WARN, "http_accept_paused", "error=\"%s\" connections=%zu pause_ms=%d",
                  strerror(err), http->conn_count, HTTP_ACCEPT_PAUSE_MS);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http *http = arg;
    http->paused = false;
    update_listener(http);
}

/* ---------------------------------------------------------------------------
 * Start and stop
 * ------------------------------------------------------------------------- */

/* "host:port" or "[v6]:port" into host and port. */
static int split_addr(const char *addr, char *host, size_t host_len, char port[8])
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
    snprintf(port, 8, "%lu", p);
    return 0;
}

static struct evconnlistener *listen_on(struct http *http, const char *addr, char *errstr,
                                        size_t errstr_len)
{
    char host[HTTP_HOST_BYTES_MAX + 1], port[8];
    if (split_addr(addr, host, sizeof host, port) != 0) {
        snprintf(errstr, errstr_len, "CREDITS_HTTP_ADDR must be host:port (got \"%s\")", addr);
        return NULL;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(host, port, &hints, &found);
    if (rc != 0) {
        snprintf(errstr, errstr_len, "cannot listen on %s for HTTP: %s", addr, gai_strerror(rc));
        return NULL;
    }
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
    struct evconnlistener *listener = evconnlistener_new_bind(
        http->base, on_accept, http, flags, -1, found->ai_addr, (int)found->ai_addrlen);
    int err = errno;
    freeaddrinfo(found);
    if (!listener)
        snprintf(errstr, errstr_len, "cannot listen on %s for HTTP: %s", addr, strerror(err));
    return listener;
}

/* The configured bound, lowered to leave HTTP_FD_RESERVE descriptors for
 * everything else; 0 when the limit leaves none. */
static size_t connections_allowed(size_t configured)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
        return configured;
    if (limit.rlim_cur <= HTTP_FD_RESERVE)
        return 0;
    rlim_t room = limit.rlim_cur - HTTP_FD_RESERVE;
    size_t allowed = room < (rlim_t)configured ? (size_t)room : configured;
    if (allowed < configured)
        log_event(LOG_WARN, "http_connections_limited",
                  "connections_max=%zu configured=%zu rlimit_nofile=%llu reserve=%d", allowed,
                  configured, (unsigned long long)limit.rlim_cur, HTTP_FD_RESERVE);
    return allowed;
}

struct http *http_start(struct event_base *base, const char *addr, size_t connections_max,
                        const struct http_endpoints *endpoints, char *errstr, size_t errstr_len)
{
    ASSERT(base && addr && endpoints && endpoints->metrics && endpoints->live && endpoints->ready);
    ASSERT(connections_max > 0);
    size_t allowed = connections_allowed(connections_max);
    if (allowed == 0) {
        snprintf(errstr, errstr_len,
                 "RLIMIT_NOFILE leaves no descriptor for HTTP after the %d kept for Redis, "
                 "PostgreSQL and the event loop (raise ulimit -n or LimitNOFILE=)",
                 HTTP_FD_RESERVE);
        return NULL;
    }
    struct http *http = calloc(1, sizeof *http);
    ASSERT(http != NULL);
    http->base = base;
    http->endpoints = *endpoints;
    http->conn_max = allowed;
    http->resume_timer = evtimer_new(base, on_resume, http);
    ASSERT(http->resume_timer != NULL);
    http->listener = listen_on(http, addr, errstr, errstr_len);
    if (!http->listener) {
        http_free(http);
        return NULL;
    }
    evconnlistener_set_error_cb(http->listener, on_accept_error);
    return http;
}

void http_free(struct http *http)
{
    if (!http)
        return;
    http->paused = true; /* closing connections must not re-enable the listener */
    while (http->conns)
        conn_close(http->conns);
    if (http->listener)
        evconnlistener_free(http->listener);
    event_free(http->resume_timer);
    free(http);
}
