/*
 * console_probe.c -- the console's requests to the workers' HTTP endpoints
 * (console_probe.h): URLs, one blocking GET within a deadline, and the
 * answers read (pure).
 */
#include "worker/ctl/console_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/assert.h"

/* ------------------------------------------------------------------------ */
/* URLs                                                                     */
/* ------------------------------------------------------------------------ */

static int parse_port(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return -1;
    int port = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}

/* The address `host` (host_len bytes: an IPv4 address, an IPv6 one without
 * brackets, or localhost) and port into w->addr. */
static bool set_address(struct console_worker *w, const char *host, size_t host_len, bool v6,
                        int port)
{
    char text[INET6_ADDRSTRLEN + 1];
    if (host_len == 0 || host_len >= sizeof text)
        return false;
    memcpy(text, host, host_len);
    text[host_len] = '\0';
    memset(&w->addr, 0, sizeof w->addr);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&w->addr;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        w->addr_len = sizeof *a;
        return inet_pton(AF_INET6, text, &a->sin6_addr) == 1;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)&w->addr;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    w->addr_len = sizeof *a;
    if (strcmp(text, "localhost") == 0)
        snprintf(text, sizeof text, "127.0.0.1");
    return inet_pton(AF_INET, text, &a->sin_addr) == 1;
}

int console_worker_parse(const char *url, struct console_worker *w, char *errstr, size_t errstr_len)
{
    ASSERT(url && w && errstr);
    static const char scheme[] = "http://";
    memset(w, 0, sizeof *w);
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    const char *auth = url + sizeof scheme - 1;
    size_t auth_len = len >= sizeof scheme - 1 ? len - (sizeof scheme - 1) : 0;
    bool ok = len <= CONSOLE_WORKER_URL_BYTES_MAX && strncmp(url, scheme, sizeof scheme - 1) == 0 &&
              auth_len > 0 && !memchr(auth, '/', auth_len);
    if (ok) {
        bool v6 = auth[0] == '[';
        const char *close = v6 ? memchr(auth, ']', auth_len) : NULL;
        const char *colon =
            v6 ? (close && close + 1 < auth + auth_len && close[1] == ':' ? close + 1 : NULL)
               : memchr(auth, ':', auth_len);
        int port = colon ? parse_port(colon + 1, auth_len - (size_t)(colon + 1 - auth)) : -1;
        const char *host = v6 ? auth + 1 : auth;
        size_t host_len = colon ? (size_t)((v6 ? close : colon) - host) : 0;
        ok = port > 0 && set_address(w, host, host_len, v6, port);
    }
    if (!ok) {
        snprintf(errstr, errstr_len,
                 "--worker takes the URL of a worker's HTTP endpoint, http://ADDRESS:PORT with "
                 "an IP address or localhost (got \"%.*s\")",
                 CONSOLE_WORKER_URL_BYTES_MAX, url);
        return -1;
    }
    memcpy(w->url, url, len);
    w->url[len] = '\0';
    memcpy(w->authority, auth, auth_len);
    w->authority[auth_len] = '\0';
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Answers                                                                  */
/* ------------------------------------------------------------------------ */

int console_response_parse(const char *text, size_t len, int *status, size_t *body_offset)
{
    ASSERT(text && status && body_offset);
    static const char version[] = "HTTP/1.";
    size_t n = sizeof version - 1;
    if (len < n + 5 || memcmp(text, version, n) != 0 || (text[n] != '0' && text[n] != '1') ||
        text[n + 1] != ' ')
        return -1;
    const char *code = text + n + 2;
    for (int i = 0; i < 3; i++)
        if (code[i] < '0' || code[i] > '9')
            return -1;
    if (len > n + 5 && code[3] != ' ' && code[3] != '\r' && code[3] != '\n')
        return -1;
    size_t off = 0;
    for (size_t i = 0; i + 1 < len && off == 0; i++) {
        if (text[i] == '\n' && text[i + 1] == '\n')
            off = i + 2;
        else if (i + 3 < len && memcmp(text + i, "\r\n\r\n", 4) == 0)
            off = i + 4;
    }
    if (off == 0)
        return -1;
    *status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    *body_offset = off;
    return 0;
}

static bool is_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

bool console_metric_parse(const char *line, size_t len, struct console_metric *m)
{
    ASSERT(line && m);
    static const char prefix[] = "credits_", bucket[] = "_bucket";
    memset(m, 0, sizeof *m);
    size_t i = 0;
    while (i < len && is_name_char(line[i], i == 0))
        i++;
    size_t name_len = i;
    if (name_len < sizeof prefix || name_len > CONSOLE_METRIC_NAME_BYTES_MAX ||
        memcmp(line, prefix, sizeof prefix - 1) != 0)
        return false;
    if (name_len >= sizeof bucket - 1 &&
        memcmp(line + name_len - (sizeof bucket - 1), bucket, sizeof bucket - 1) == 0)
        return false;
    size_t labels_start = 0, labels_len = 0;
    if (i < len && line[i] == '{') {
        labels_start = ++i;
        bool quoted = false;
        for (; i < len && (quoted || line[i] != '}'); i++) {
            if (quoted && line[i] == '\\')
                i++;
            else if (line[i] == '"')
                quoted = !quoted;
        }
        if (i >= len)
            return false;
        labels_len = i - labels_start;
        i++; /* '}' */
    }
    if (labels_len > CONSOLE_METRIC_LABELS_BYTES_MAX || i >= len || line[i] != ' ')
        return false;
    size_t value_start = ++i;
    while (i < len && line[i] != ' ')
        i++;
    size_t value_len = i - value_start;
    if (value_len == 0 || value_len > CONSOLE_METRIC_VALUE_BYTES_MAX)
        return false;
    /* A counter that never counted says nothing: the worker exports one
     * per type and code. */
    static const char total[] = "_total";
    if (value_len == 1 && line[value_start] == '0' && name_len >= sizeof total - 1 &&
        memcmp(line + name_len - (sizeof total - 1), total, sizeof total - 1) == 0)
        return false;
    memcpy(m->name, line, name_len);
    memcpy(m->labels, line + labels_start, labels_len);
    memcpy(m->value, line + value_start, value_len);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline: 1 ready, 0 timed out, -1. */
static int wait_for(int fd, short events, long long deadline_ms)
{
    for (;;) {
        long long left = deadline_ms - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, events, 0};
        int rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        return rc < 0 ? -1 : rc;
    }
}

static int connect_by(const struct console_worker *w, long long deadline_ms, char *errstr,
                      size_t errstr_len)
{
    int fd = socket(w->addr.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        snprintf(errstr, errstr_len, "%s: %s", w->url, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int err = 0;
    if (connect(fd, (const struct sockaddr *)&w->addr, w->addr_len) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            socklen_t err_len = sizeof err;
            int ready = wait_for(fd, POLLOUT, deadline_ms);
            err = ready == 0 ? ETIMEDOUT
                  : ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 ? errno
                                                                                           : err;
        }
    }
    if (err != 0) {
        snprintf(errstr, errstr_len, "%s: cannot connect: %s", w->url, strerror(err));
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *s, size_t len, long long deadline_ms)
{
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_for(fd, POLLOUT, deadline_ms) <= 0)
                return -1;
            continue;
        }
        if (n <= 0)
            return -1;
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads until the worker closes: the bytes (caller frees), or NULL. */
static char *read_all(int fd, long long deadline_ms, size_t *len, char *errstr, size_t errstr_len,
                      const char *url)
{
    size_t cap = 4096;
    char *buf = malloc(cap + 1);
    ASSERT(buf != NULL);
    *len = 0;
    for (;;) {
        if (*len == cap) {
            if (cap >= CONSOLE_PROBE_BYTES_MAX) {
                snprintf(errstr, errstr_len, "%s: the answer is over %d bytes", url,
                         CONSOLE_PROBE_BYTES_MAX);
                free(buf);
                return NULL;
            }
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ASSERT(buf != NULL);
        }
        ssize_t n = read(fd, buf + *len, cap - *len);
        if (n > 0) {
            *len += (size_t)n;
            continue;
        }
        if (n == 0)
            break;
        int ready = errno == EAGAIN || errno == EINTR ? wait_for(fd, POLLIN, deadline_ms) : -1;
        if (ready <= 0) {
            snprintf(errstr, errstr_len, "%s: %s", url,
                     ready == 0 ? "no answer in time" : strerror(errno));
            free(buf);
            return NULL;
        }
    }
    buf[*len] = '\0';
    return buf;
}

int console_probe_get(const struct console_worker *w, const char *path,
                      struct console_answer *answer, char *errstr, size_t errstr_len)
{
    ASSERT(w && path && path[0] == '/' && answer && errstr);
    memset(answer, 0, sizeof *answer);
    long long deadline = now_ms() + CONSOLE_PROBE_TIMEOUT_MS;
    int fd = connect_by(w, deadline, errstr, errstr_len);
    if (fd < 0)
        return -1;
    char request[256];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: creditsctl-console\r\n"
                     "Connection: close\r\n\r\n",
                     path, w->authority);
    ASSERT(n > 0 && (size_t)n < sizeof request);
    size_t len = 0;
    char *text = NULL;
    if (send_all(fd, request, (size_t)n, deadline) != 0)
        snprintf(errstr, errstr_len, "%s: cannot send the request", w->url);
    else
        text = read_all(fd, deadline, &len, errstr, errstr_len, w->url);
    close(fd);
    if (!text)
        return -1;
    size_t body = 0;
    if (console_response_parse(text, len, &answer->status, &body) != 0) {
        snprintf(errstr, errstr_len, "%s: the answer is not HTTP", w->url);
        free(text);
        return -1;
    }
    memmove(text, text + body, len - body + 1);
    answer->body = text;
    answer->body_len = len - body;
    return 0;
}
