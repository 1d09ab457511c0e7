/*
 * console_probe.h -- what the console asks each worker given with
 * --worker URL: its /readyz and /metrics, over one blocking HTTP/1.1
 * request each, within CONSOLE_PROBE_TIMEOUT_MS and CONSOLE_PROBE_BYTES_MAX.
 *
 * Owns the worker URLs, the requests and reading their answers (the
 * parsing pure, unit-tested). Does not own what the worker serves
 * (worker/daemon/http.c) or how the console shows it.
 */
#ifndef CREDITS_WORKER_CTL_CONSOLE_PROBE_H
#define CREDITS_WORKER_CTL_CONSOLE_PROBE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* --worker may be given this often. */
#define CONSOLE_WORKERS_MAX 8
#define CONSOLE_WORKER_URL_BYTES_MAX 96
/* Each request, from connect to the last byte: a worker answers its own
 * endpoint in microseconds, and the console waits for it. */
#define CONSOLE_PROBE_TIMEOUT_MS 1000
/* A worker's /metrics is a few kilobytes. */
#define CONSOLE_PROBE_BYTES_MAX (256 * 1024)
/* Samples of one worker shown. */
#define CONSOLE_METRICS_MAX 200
#define CONSOLE_METRIC_NAME_BYTES_MAX 96
#define CONSOLE_METRIC_LABELS_BYTES_MAX 256
#define CONSOLE_METRIC_VALUE_BYTES_MAX 40

/* A worker's HTTP endpoint: http://ADDRESS:PORT, ADDRESS an IPv4 address,
 * [IPv6] or localhost (nothing to look up). */
struct console_worker {
    char url[CONSOLE_WORKER_URL_BYTES_MAX + 1];       /* as given, without a trailing '/' */
    char authority[CONSOLE_WORKER_URL_BYTES_MAX + 1]; /* for the Host header */
    struct sockaddr_storage addr;
    socklen_t addr_len;
};

/* Parses a --worker URL. 0, or -1 with a message in errstr. Pure. */
int console_worker_parse(const char *url, struct console_worker *w, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* One answer of a worker. */
struct console_answer {
    int status; /* the HTTP status; 0 when no answer was read */
    char *body; /* NUL-terminated; caller frees with free() */
    size_t body_len;
};

/*
 * GETs `path` ("/readyz") of the worker, blocking at most
 * CONSOLE_PROBE_TIMEOUT_MS. 0 with *answer filled, or -1 with why in errstr
 * (refused, timed out, too long, not HTTP) and nothing to free.
 */
int console_probe_get(const struct console_worker *w, const char *path,
                      struct console_answer *answer, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Reads a whole HTTP/1.x answer (`len` bytes, the connection closed after
 * it): *status and where the body starts. 0, or -1 when it is not one.
 * Pure. */
int console_response_parse(const char *text, size_t len, int *status, size_t *body_offset)
    __attribute__((warn_unused_result));

/* One sample of the Prometheus text format. */
struct console_metric {
    char name[CONSOLE_METRIC_NAME_BYTES_MAX + 1];
    char labels[CONSOLE_METRIC_LABELS_BYTES_MAX + 1]; /* `a="x",b="y"`, "" when none */
    char value[CONSOLE_METRIC_VALUE_BYTES_MAX + 1];
};

/* Parses one line `name{labels} value` (`len` bytes, no newline) into *m
 * when it is a sample of a credits_ metric worth showing (not a comment,
 * not a histogram bucket, not a counter at 0). Pure. */
bool console_metric_parse(const char *line, size_t len, struct console_metric *m);

#endif
