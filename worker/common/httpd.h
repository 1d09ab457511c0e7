/*
 * httpd.h -- a small HTTP/1.1 server on libevent's listener and
 * bufferevents, shared by the worker's /metrics endpoint (worker/daemon/
 * http.c) and creditsctl's console (worker/ctl/console.c). One request per
 * connection, answered by one handler call.
 *
 * Owns the listening socket, the client connections and their bounds: at
 * most a fixed number at once (below RLIMIT_NOFILE minus HTTPD_FD_RESERVE),
 * each closed deadline_ms after it was accepted whatever the client sends,
 * a request head of at most HTTPD_HEAD_BYTES_MAX and a body of at most
 * body_bytes_max, and a listener that pauses instead of spinning when no
 * descriptor is left. Does not own what any path means (the handler's).
 */
#ifndef CREDITS_WORKER_COMMON_HTTPD_H
#define CREDITS_WORKER_COMMON_HTTPD_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

/* The request line and headers; a scrape's or a browser's are a few
 * hundred bytes. */
#define HTTPD_HEAD_BYTES_MAX 8192
/* Descriptors the server never takes, so that the program's own
 * connections (Redis, PostgreSQL, the files libpq opens while it connects)
 * always find one: stdio, the event loop's own, the listener, with room to
 * spare. */
#define HTTPD_FD_RESERVE 32
/* How long the listener rests after accept() failed for want of a
 * descriptor (EMFILE, ENFILE) or memory, before it tries again. */
#define HTTPD_ACCEPT_PAUSE_MS 1000
/* Longer than any path served: a longer one reaches the handler as "". */
#define HTTPD_PATH_BYTES_MAX 64
/* The query string (after '?'); a longer one sets query_too_long. */
#define HTTPD_QUERY_BYTES_MAX 2048
/* "[v6 address]:port" */
#define HTTPD_PEER_BYTES 64

enum httpd_method {
    HTTPD_GET,
    HTTPD_HEAD,
    HTTPD_POST,
    HTTPD_OTHER,
};

/* One request, borrowed by the handler for the duration of its call. */
struct httpd_request {
    enum httpd_method method;
    char path[HTTPD_PATH_BYTES_MAX + 1];   /* "" when longer than the bound */
    char query[HTTPD_QUERY_BYTES_MAX + 1]; /* raw, after '?'; "" when none */
    bool query_too_long;                   /* query is "" then */
    const char *fields;                    /* the header lines, raw */
    size_t fields_len;
    const char *body; /* body_len bytes (0 when the server reads no body) */
    size_t body_len;
    char peer[HTTPD_PEER_BYTES]; /* the client's address and port, numeric */
};

/* How often a header field occurs in a request. */
enum httpd_field_count {
    HTTPD_FIELD_ABSENT,
    HTTPD_FIELD_ONE,
    HTTPD_FIELD_MANY,
};

/*
 * Parses a request head (`len` bytes: the request line, the header lines,
 * up to and without the blank line; borrowed, and kept by req->fields):
 * "METHOD SP /PATH[?QUERY] SP HTTP/1.x" then "Name: value" lines. Returns
 * 0, or 400 when the request line is not that. Pure.
 */
int httpd_parse_head(const char *head, size_t len, struct httpd_request *req)
    __attribute__((warn_unused_result));

/* Finds header field `name` (case-insensitive) in req->fields: its value,
 * without the whitespace around it, in *value / *value_len (the first one
 * when there are many). Lines without ':' are skipped. Pure. */
enum httpd_field_count httpd_field(const struct httpd_request *req, const char *name,
                                   const char **value, size_t *value_len);

/* The connection a handler answers on. */
struct httpd_reply;

/*
 * Queues the whole answer (status line, Content-Type, Content-Length, the
 * server's own header lines, `headers` when not NULL: more lines, each
 * ending in "\r\n"; then the body, left out for HEAD); the connection
 * closes once it is written. Called exactly once per handler call. `body`
 * is copied.
 */
void httpd_respond(struct httpd_reply *reply, int code, const char *type, const char *headers,
                   const char *body, size_t len);

/* Answers the request `req` on `reply`: calls httpd_respond() once before
 * returning. */
typedef void httpd_handler_fn(void *arg, const struct httpd_request *req,
                              struct httpd_reply *reply);

struct httpd_config {
    const char *addr;         /* "host:port" or "[v6]:port" */
    const char *addr_setting; /* how the address is named in messages ("CREDITS_HTTP_ADDR") */
    size_t connections_max;   /* lowered when RLIMIT_NOFILE leaves less room */
    int deadline_ms;          /* from accept to the answer's last byte */
    /* The most body bytes a request may send (Content-Length; chunked
     * bodies are refused); 0: no body is read, and none is refused. */
    size_t body_bytes_max;
    const char *headers; /* lines added to every answer ("X: y\r\n"...); NULL: none */
    httpd_handler_fn *handle;
    void *arg; /* handle()'s */
};

struct httpd;

/* Listens as `config` says (copied; its strings borrowed for the server's
 * life). NULL with errstr on failure. */
struct httpd *httpd_start(struct event_base *base, const struct httpd_config *config, char *errstr,
                          size_t errstr_len) __attribute__((warn_unused_result));

/* Closes the listener and every connection; frees. NULL is fine. */
void httpd_free(struct httpd *httpd);

/* The reason phrase of a status code ("Not Found"); "Unknown" for others. */
const char *httpd_reason(int code);

#endif
