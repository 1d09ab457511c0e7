/*
 * httpd.c -- the small HTTP/1.1 server of httpd.h, on libevent's listener
 * and bufferevents.
 *
 * Owns the connections and their bounds. Not evhttp: in libevent 2.1 its
 * timeout restarts on every byte received (a slow client holds a connection
 * for ever), it cannot cap the number of connections, and its listener
 * retries a failing accept() at once, spinning a core and logging each try.
 */
#include "worker/common/httpd.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "core/assert.h"
#include "worker/common/log.h"

#define HTTPD_HOST_BYTES_MAX 255
/* Digits of a Content-Length we read at all (10^9 > any body bound). */
#define HTTPD_LENGTH_DIGITS_MAX 9

/* One client, from accept to close. */
struct httpd_reply {
    struct httpd *httpd;
    struct bufferevent *bev;
    struct event *deadline;
    struct httpd_reply *prev; /* the server's list of open connections */
    struct httpd_reply *next;
    char peer[HTTPD_PEER_BYTES];
    bool head_only; /* the request was HEAD: the answer has no body */
    bool answered;  /* the answer is queued: close once it is written */
    /* Answered before the request was all in (too large, malformed): once
     * the answer is written, stop sending and read what the client still
     * sends until it closes (or the deadline), so that closing with input
     * unread does not reset the connection before the client reads the
     * answer. */
    bool linger;
};

struct httpd {
    struct event_base *base;
    struct httpd_config config;
    struct evconnlistener *listener;
    struct event *resume_timer; /* ends a pause of the listener */
    struct httpd_reply *conns;
    size_t conn_count;
    size_t conn_max;
    bool paused;    /* accept() failed; resume_timer is pending */
    int64_t pauses; /* since the last accept that succeeded; only the first is logged */
};

/* ---------------------------------------------------------------------------
 * Parsing (pure)
 * ------------------------------------------------------------------------- */

const char *httpd_reason(int code)
{
    static const struct {
        int code;
        const char *reason;
    } reasons[] = {
        {200, "OK"},
        {400, "Bad Request"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {409, "Conflict"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
    };
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].code == code)
            return reasons[i].reason;
    return "Unknown";
}

static enum httpd_method method_of(const char *s, size_t len)
{
    if (len == 3 && memcmp(s, "GET", 3) == 0)
        return HTTPD_GET;
    if (len == 4 && memcmp(s, "HEAD", 4) == 0)
        return HTTPD_HEAD;
    if (len == 4 && memcmp(s, "POST", 4) == 0)
        return HTTPD_POST;
    return HTTPD_OTHER;
}

/* "METHOD SP PATH[?QUERY] SP HTTP/1.x": 0, or -1 when it is not that. */
static int parse_request_line(const char *line, size_t len, struct httpd_request *req)
{
    const char *sp1 = memchr(line, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || sp1[1] != '/')
        return -1;
    size_t version_len = len - (size_t)(sp2 + 1 - line);
    if (version_len != strlen("HTTP/1.1") || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return -1;
    req->method = method_of(line, (size_t)(sp1 - line));
    const char *target = sp1 + 1;
    const char *query = memchr(target, '?', (size_t)(sp2 - target));
    size_t path_len = (size_t)((query ? query : sp2) - target);
    if (path_len > HTTPD_PATH_BYTES_MAX)
        path_len = 0; /* served by no route: 404 */
    memcpy(req->path, target, path_len);
    req->path[path_len] = '\0';
    size_t query_len = query ? (size_t)(sp2 - query - 1) : 0;
    if (query_len > HTTPD_QUERY_BYTES_MAX) {
        req->query_too_long = true;
        query_len = 0;
    }
    if (query_len > 0)
        memcpy(req->query, query + 1, query_len);
    req->query[query_len] = '\0';
    return 0;
}

int httpd_parse_head(const char *head, size_t len, struct httpd_request *req)
{
    ASSERT(head != NULL && req != NULL);
    memset(req, 0, sizeof *req);
    const char *eol = memchr(head, '\n', len);
    size_t line_len = eol ? (size_t)(eol - head) : len;
    size_t next = eol ? line_len + 1 : len;
    if (line_len > 0 && head[line_len - 1] == '\r')
        line_len--;
    if (parse_request_line(head, line_len, req) != 0)
        return 400;
    req->fields = head + next;
    req->fields_len = len - next;
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

enum httpd_field_count httpd_field(const struct httpd_request *req, const char *name,
                                   const char **value, size_t *value_len)
{
    ASSERT(req != NULL && name != NULL);
    size_t name_len = strlen(name);
    enum httpd_field_count count = HTTPD_FIELD_ABSENT;
    const char *p = req->fields, *end = req->fields + req->fields_len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon && (size_t)(colon - p) == name_len && strncasecmp(p, name, name_len) == 0) {
            const char *v = colon + 1, *v_end = line_end;
            while (v < v_end && is_space(*v))
                v++;
            while (v_end > v && (is_space(v_end[-1]) || v_end[-1] == '\r'))
                v_end--;
            if (count == HTTPD_FIELD_ABSENT && value && value_len) {
                *value = v;
                *value_len = (size_t)(v_end - v);
            }
            count = count == HTTPD_FIELD_ABSENT ? HTTPD_FIELD_ONE : HTTPD_FIELD_MANY;
        }
        p = eol ? eol + 1 : end;
    }
    return count;
}

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

/* The listener takes new connections only while there is room. */
static void update_listener(struct httpd *httpd)
{
    if (httpd->paused)
        return; /* resume_timer decides */
    if (httpd->conn_count < httpd->conn_max)
        evconnlistener_enable(httpd->listener);
    else
        evconnlistener_disable(httpd->listener);
}

static void conn_close(struct httpd_reply *conn)
{
    struct httpd *httpd = conn->httpd;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        httpd->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    event_free(conn->deadline);
    bufferevent_free(conn->bev); /* closes the socket */
    free(conn);
    ASSERT(httpd->conn_count > 0);
    httpd->conn_count--;
    update_listener(httpd);
}

void httpd_respond(struct httpd_reply *conn, int code, const char *type, const char *headers,
                   const char *body, size_t len)
{
    ASSERT(conn != NULL && !conn->answered);
    ASSERT(code >= 100 && code <= 599 && type != NULL && (body != NULL || len == 0));
    struct evbuffer *out = bufferevent_get_output(conn->bev);
    const char *own = conn->httpd->config.headers;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\nConnection: close\r\n%s%s\r\n",
                        code, httpd_reason(code), type, len, own ? own : "",
                        headers ? headers : "");
    if (!conn->head_only && len > 0)
        evbuffer_add(out, body, len);
    conn->answered = true;
    bufferevent_disable(conn->bev, EV_READ);
    bufferevent_enable(conn->bev, EV_WRITE);
}

static void respond_text(struct httpd_reply *conn, int code, const char *text)
{
    httpd_respond(conn, code, "text/plain; charset=utf-8", NULL, text, strlen(text));
}

/* An answer to a request refused before it was all read. */
static void refuse(struct httpd_reply *conn, int code, const char *text)
{
    conn->linger = true;
    respond_text(conn, code, text);
}

/* ---------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------- */

/* Where the head ends: the first blank line, "\r\n\r\n" or "\n\n". -1 when
 * it is not in yet; *sep_len the blank line's bytes. */
static ev_ssize_t head_end(struct evbuffer *in, size_t *sep_len)
{
    struct evbuffer_ptr crlf = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    struct evbuffer_ptr lf = evbuffer_search(in, "\n\n", 2, NULL);
    if (crlf.pos >= 0 && (lf.pos < 0 || crlf.pos < lf.pos)) {
        *sep_len = 4;
        return crlf.pos;
    }
    *sep_len = 2;
    return lf.pos;
}

/* The body's length from Content-Length: 0 when it is not given; else the
 * status that refuses the request (400, 413, 501). */
static int body_length(const struct httpd *httpd, const struct httpd_request *req, size_t *len)
{
    const char *value = NULL;
    size_t value_len = 0;
    *len = 0;
    if (httpd_field(req, "Transfer-Encoding", &value, &value_len) != HTTPD_FIELD_ABSENT)
        return 501;
    enum httpd_field_count n = httpd_field(req, "Content-Length", &value, &value_len);
    if (n == HTTPD_FIELD_ABSENT)
        return 0;
    if (n == HTTPD_FIELD_MANY || value_len == 0)
        return 400;
    for (size_t i = 0; i < value_len; i++)
        if (value[i] < '0' || value[i] > '9')
            return 400;
    if (value_len > HTTPD_LENGTH_DIGITS_MAX)
        return 413;
    size_t n_bytes = 0;
    for (size_t i = 0; i < value_len; i++)
        n_bytes = n_bytes * 10 + (size_t)(value[i] - '0');
    if (n_bytes > httpd->config.body_bytes_max)
        return 413;
    *len = n_bytes;
    return 0;
}

/* Answers once the whole head (up to the blank line) and the body are in:
 * closing a socket with unread input makes the kernel reset the
 * connection, and the client might lose the answer. */
static void on_conn_read(struct bufferevent *bev, void *arg)
{
    struct httpd_reply *conn = arg;
    struct httpd *httpd = conn->httpd;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (conn->answered) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    size_t sep_len = 0;
    ev_ssize_t end = head_end(in, &sep_len);
    if (end < 0 || (size_t)end + sep_len > HTTPD_HEAD_BYTES_MAX) {
        if (end >= 0 || evbuffer_get_length(in) >= HTTPD_HEAD_BYTES_MAX)
            refuse(conn, 431, "request head too large\n");
        return;
    }
    size_t head_len = (size_t)end + sep_len;
    const char *head = (const char *)evbuffer_pullup(in, (ev_ssize_t)head_len);
    struct httpd_request req;
    int status = httpd_parse_head(head, (size_t)end, &req);
    if (status != 0) {
        refuse(conn, status, "not an HTTP/1.x request line\n");
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    size_t body_len = 0;
    if (httpd->config.body_bytes_max > 0) {
        status = body_length(httpd, &req, &body_len);
        if (status != 0) {
            refuse(conn, status,
                   status == 501   ? "chunked bodies are not accepted\n"
                   : status == 413 ? "request body too large\n"
                                   : "bad Content-Length\n");
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        }
        if (evbuffer_get_length(in) < head_len + body_len)
            return; /* the rest of the body is on its way */
        head = (const char *)evbuffer_pullup(in, (ev_ssize_t)(head_len + body_len));
        /* The pull-up may have moved the head: parse it again where it is. */
        status = httpd_parse_head(head, (size_t)end, &req);
        ASSERT(status == 0);
        req.body = head + head_len;
        req.body_len = body_len;
    }
    memcpy(req.peer, conn->peer, sizeof req.peer);
    conn->head_only = req.method == HTTPD_HEAD;
    httpd->config.handle(httpd->config.arg, &req, conn);
    ASSERT(conn->answered);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void on_conn_written(struct bufferevent *bev, void *arg)
{
    struct httpd_reply *conn = arg;
    if (!conn->answered)
        return;
    if (!conn->linger || shutdown(bufferevent_getfd(bev), SHUT_WR) != 0) {
        conn_close(conn);
        return;
    }
    /* Drained by on_conn_read until the client closes or the deadline. */
    bufferevent_enable(bev, EV_READ);
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

/* The client's address as numbers ("127.0.0.1:5000", "[::1]:5000"). */
static void format_peer(const struct sockaddr *addr, int addr_len, char out[HTTPD_PEER_BYTES])
{
    char host[INET6_ADDRSTRLEN], port[8];
    if (getnameinfo(addr, (socklen_t)addr_len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, HTTPD_PEER_BYTES, "unknown");
        return;
    }
    if (addr->sa_family == AF_INET6)
        snprintf(out, HTTPD_PEER_BYTES, "[%s]:%s", host, port);
    else
        snprintf(out, HTTPD_PEER_BYTES, "%s:%s", host, port);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
                      int addr_len, void *arg)
{
    (void)listener;
    struct httpd *httpd = arg;
    if (httpd->pauses > 0) {
        log_event(LOG_INFO, "http_accept_resumed", "pauses=%lld", (long long)httpd->pauses);
        httpd->pauses = 0;
    }
    struct httpd_reply *conn = calloc(1, sizeof *conn);
    ASSERT(conn != NULL);
    conn->httpd = httpd;
    format_peer(addr, addr_len, conn->peer);
    conn->bev = bufferevent_socket_new(httpd->base, fd, BEV_OPT_CLOSE_ON_FREE);
    conn->deadline = evtimer_new(httpd->base, on_conn_deadline, conn);
    ASSERT(conn->bev && conn->deadline);
    bufferevent_setcb(conn->bev, on_conn_read, on_conn_written, on_conn_event, conn);
    bufferevent_setwatermark(conn->bev, EV_READ, 0,
                             HTTPD_HEAD_BYTES_MAX + httpd->config.body_bytes_max);
    bufferevent_enable(conn->bev, EV_READ);
    int ms = httpd->config.deadline_ms;
    struct timeval deadline = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(conn->deadline, &deadline);
    conn->next = httpd->conns;
    if (httpd->conns)
        httpd->conns->prev = conn;
    httpd->conns = conn;
    httpd->conn_count++;
    update_listener(httpd);
}

/* accept() failed for another reason than a client that went away (libevent
 * retries those itself): most often no descriptor or memory is left. Trying
 * again at once would fail again, at once, for ever: rest, and say so once
 * until an accept succeeds. */
static void on_accept_error(struct evconnlistener *listener, void *arg)
{
    struct httpd *httpd = arg;
    int err = EVUTIL_SOCKET_ERROR();
    evconnlistener_disable(listener);
    httpd->paused = true;
    struct timeval pause = {HTTPD_ACCEPT_PAUSE_MS / 1000, (HTTPD_ACCEPT_PAUSE_MS % 1000) * 1000};
    evtimer_add(httpd->resume_timer, &pause);
    if (httpd->pauses++ == 0)
        log_event(LOG_WARN, "http_accept_paused", "error=\"%s\" connections=%zu pause_ms=%d",
                  strerror(err), httpd->conn_count, HTTPD_ACCEPT_PAUSE_MS);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct httpd *httpd = arg;
    httpd->paused = false;
    update_listener(httpd);
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

static struct evconnlistener *listen_on(struct httpd *httpd, char *errstr, size_t errstr_len)
{
    const char *addr = httpd->config.addr;
    char host[HTTPD_HOST_BYTES_MAX + 1], port[8];
    if (split_addr(addr, host, sizeof host, port) != 0) {
        snprintf(errstr, errstr_len, "%s must be host:port (got \"%s\")",
                 httpd->config.addr_setting, addr);
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
        httpd->base, on_accept, httpd, flags, -1, found->ai_addr, (int)found->ai_addrlen);
    int err = errno;
    freeaddrinfo(found);
    if (!listener)
        snprintf(errstr, errstr_len, "cannot listen on %s for HTTP: %s", addr, strerror(err));
    return listener;
}

/* The configured bound, lowered to leave HTTPD_FD_RESERVE descriptors for
 * everything else; 0 when the limit leaves none. */
static size_t connections_allowed(size_t configured)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
        return configured;
    if (limit.rlim_cur <= HTTPD_FD_RESERVE)
        return 0;
    rlim_t room = limit.rlim_cur - HTTPD_FD_RESERVE;
    size_t allowed = room < (rlim_t)configured ? (size_t)room : configured;
    if (allowed < configured)
        log_event(LOG_WARN, "http_connections_limited",
                  "connections_max=%zu configured=%zu rlimit_nofile=%llu reserve=%d", allowed,
                  configured, (unsigned long long)limit.rlim_cur, HTTPD_FD_RESERVE);
    return allowed;
}

struct httpd *httpd_start(struct event_base *base, const struct httpd_config *config, char *errstr,
                          size_t errstr_len)
{
    ASSERT(base && config && config->addr && config->addr_setting && config->handle);
    ASSERT(config->connections_max > 0 && config->deadline_ms > 0);
    size_t allowed = connections_allowed(config->connections_max);
    if (allowed == 0) {
        snprintf(errstr, errstr_len,
                 "RLIMIT_NOFILE leaves no descriptor for HTTP after the %d kept for Redis, "
                 "PostgreSQL and the event loop (raise ulimit -n or LimitNOFILE=)",
                 HTTPD_FD_RESERVE);
        return NULL;
    }
    struct httpd *httpd = calloc(1, sizeof *httpd);
    ASSERT(httpd != NULL);
    httpd->base = base;
    httpd->config = *config;
    httpd->conn_max = allowed;
    httpd->resume_timer = evtimer_new(base, on_resume, httpd);
    ASSERT(httpd->resume_timer != NULL);
    httpd->listener = listen_on(httpd, errstr, errstr_len);
    if (!httpd->listener) {
        httpd_free(httpd);
        return NULL;
    }
    evconnlistener_set_error_cb(httpd->listener, on_accept_error);
    return httpd;
}

void httpd_free(struct httpd *httpd)
{
    if (!httpd)
        return;
    httpd->paused = true; /* closing connections must not re-enable the listener */
    while (httpd->conns)
        conn_close(httpd->conns);
    if (httpd->listener)
        evconnlistener_free(httpd->listener);
    event_free(httpd->resume_timer);
    free(httpd);
}
