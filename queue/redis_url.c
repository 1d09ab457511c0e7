/*
 * redis_url.c -- redis://[[user]:password@]host[:port][/db] and
 * unix://[[user]:password@]/path[?db=N] into their parts.
 *
 * Owns the grammar and percent-decoding. Never writes the password into an
 * error message.
 */
#include "queue/redis_url.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/assert.h"

#define REDIS_URL_SCHEME "redis://"
#define REDIS_URL_UNIX_SCHEME "unix://"
#define REDIS_URL_DB_PARAM "db="
#define REDIS_URL_DB_MAX 15

_Static_assert(REDIS_URL_SOCKET_PATH_BYTES_MAX < sizeof(((struct sockaddr_un *)0)->sun_path),
               "a socket path that parses fits in sun_path");

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [text, text + len) into out (NUL-terminated). */
static int percent_decode(const char *text, size_t len, char *out, size_t out_len)
{
    ASSERT(out_len > 0);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0' || n + 1 >= out_len)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

static int parse_int(const char *text, size_t len, int min, int max, int *out)
{
    if (len == 0 || len > 9)
        return -1;
    int value = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (text[i] - '0');
    }
    if (value < min || value > max)
        return -1;
    *out = value;
    return 0;
}

static int parse_userinfo(const char *text, size_t len, struct redis_url *url, char *errstr,
                          size_t errstr_len)
{
    const char *colon = memchr(text, ':', len);
    size_t user_len = colon ? (size_t)(colon - text) : len;
    if (user_len > 0) {
        url->has_user = true;
        if (percent_decode(text, user_len, url->user, sizeof url->user) != 0) {
            snprintf(errstr, errstr_len, "bad user name in the Redis URL");
            return -1;
        }
    }
    if (colon) {
        size_t pass_len = len - user_len - 1;
        url->has_password = true;
        if (percent_decode(colon + 1, pass_len, url->password, sizeof url->password) != 0) {
            snprintf(errstr, errstr_len, "bad password in the Redis URL (percent-encoding?)");
            return -1;
        }
    }
    return 0;
}

/* host[:port] or [v6]:port */
static int parse_hostport(const char *text, size_t len, struct redis_url *url, char *errstr,
                          size_t errstr_len)
{
    const char *host = text, *port = NULL;
    size_t host_len = len;
    if (len > 0 && text[0] == '[') {
        const char *close = memchr(text, ']', len);
        if (!close)
            goto bad;
        host = text + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < text + len) {
            if (close[1] != ':')
                goto bad;
            port = close + 2;
        }
    } else {
        const char *colon = memchr(text, ':', len);
        if (colon) {
            host_len = (size_t)(colon - text);
            port = colon + 1;
        }
    }
    if (host_len == 0 || host_len > REDIS_URL_HOST_BYTES_MAX)
        goto bad;
    memcpy(url->host, host, host_len);
    url->host[host_len] = '\0';
    if (port && parse_int(port, (size_t)(text + len - port), 1, 65535, &url->port) != 0) {
        snprintf(errstr, errstr_len, "bad port in the Redis URL");
        return -1;
    }
    return 0;
bad:
    snprintf(errstr, errstr_len, "bad host in the Redis URL");
    return -1;
}

/* The user info ends at the last '@' before `end`: a password may itself
 * contain '@'. Returns where the rest (host or path) starts. */
static const char *parse_userinfo_before(const char *rest, const char *end, struct redis_url *url,
                                         char *errstr, size_t errstr_len)
{
    const char *at = NULL;
    for (const char *p = rest; p < end; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return rest;
    if (parse_userinfo(rest, (size_t)(at - rest), url, errstr, errstr_len) != 0)
        return NULL;
    return at + 1;
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_tcp(const char *rest, struct redis_url *url, char *errstr, size_t errstr_len)
{
    const char *slash = strchr(rest, '/');
    const char *end = slash ? slash : rest + strlen(rest);
    const char *hostport = parse_userinfo_before(rest, end, url, errstr, errstr_len);
    if (!hostport)
        return -1;
    if (parse_hostport(hostport, (size_t)(end - hostport), url, errstr, errstr_len) != 0)
        return -1;
    if (slash && slash[1] != '\0' &&
        parse_int(slash + 1, strlen(slash + 1), 0, REDIS_URL_DB_MAX, &url->db) != 0) {
        snprintf(errstr, errstr_len, "bad database number in the Redis URL (0..%d)",
                 REDIS_URL_DB_MAX);
        return -1;
    }
    return 0;
}

/* unix://[[user]:password@]/path[?db=N]: the path starts at the first '/'
 * (a '/' in a password is written %2F). */
static int parse_unix(const char *rest, struct redis_url *url, char *errstr, size_t errstr_len)
{
    url->is_unix = true;
    const char *slash = strchr(rest, '/');
    if (!slash) {
        snprintf(errstr, errstr_len, "the Redis socket path must be absolute (unix:///path)");
        return -1;
    }
    const char *path = parse_userinfo_before(rest, slash, url, errstr, errstr_len);
    if (!path)
        return -1;
    if (path != slash) {
        snprintf(errstr, errstr_len, "the Redis socket path must be absolute (unix:///path)");
        return -1;
    }
    const char *query = strchr(path, '?');
    size_t path_len = query ? (size_t)(query - path) : strlen(path);
    if (path_len > REDIS_URL_SOCKET_PATH_BYTES_MAX) {
        snprintf(errstr, errstr_len, "the Redis socket path is longer than %d bytes",
                 REDIS_URL_SOCKET_PATH_BYTES_MAX);
        return -1;
    }
    memcpy(url->socket_path, path, path_len);
    url->socket_path[path_len] = '\0';
    size_t param_len = strlen(REDIS_URL_DB_PARAM);
    if (query && (strncmp(query + 1, REDIS_URL_DB_PARAM, param_len) != 0 ||
                  parse_int(query + 1 + param_len, strlen(query + 1 + param_len), 0,
                            REDIS_URL_DB_MAX, &url->db) != 0)) {
        snprintf(errstr, errstr_len, "bad query in the Redis URL: only ?db=N (0..%d)",
                 REDIS_URL_DB_MAX);
        return -1;
    }
    return 0;
}

int redis_url_parse(const char *text, struct redis_url *url, char *errstr, size_t errstr_len)
{
    ASSERT(text && url && errstr);
    memset(url, 0, sizeof *url);
    url->port = 6379;
    if (strncmp(text, REDIS_URL_SCHEME, strlen(REDIS_URL_SCHEME)) == 0)
        return parse_tcp(text + strlen(REDIS_URL_SCHEME), url, errstr, errstr_len);
    if (strncmp(text, REDIS_URL_UNIX_SCHEME, strlen(REDIS_URL_UNIX_SCHEME)) == 0)
        return parse_unix(text + strlen(REDIS_URL_UNIX_SCHEME), url, errstr, errstr_len);
    snprintf(errstr, errstr_len, "the Redis URL must start with redis:// or unix://");
    return -1;
}

/* The first address of `family` for the host, numeric, into out. */
static int resolve_family(const char *host, int family, char *out, size_t out_len)
{
    struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &found);
    if (rc != 0)
        return rc;
    rc = getnameinfo(found->ai_addr, found->ai_addrlen, out, (socklen_t)out_len, NULL, 0,
                     NI_NUMERICHOST);
    freeaddrinfo(found);
    return rc;
}

int redis_url_resolve(struct redis_url *url, char *errstr, size_t errstr_len)
{
    ASSERT(url);
    if (url->is_unix)
        return 0;
    ASSERT(url->host[0] != '\0');
    /* IPv4 first: "localhost" often resolves to ::1 first while Redis listens
     * on 127.0.0.1 only (its default for many installs). */
    char numeric[REDIS_URL_HOST_BYTES_MAX + 1];
    int rc = resolve_family(url->host, AF_INET, numeric, sizeof numeric);
    if (rc != 0)
        rc = resolve_family(url->host, AF_INET6, numeric, sizeof numeric);
    if (rc != 0) {
        snprintf(errstr, errstr_len, "cannot resolve Redis host %s: %s", url->host,
                 gai_strerror(rc));
        return -1;
    }
    ASSERT(strlen(numeric) < sizeof url->host);
    strcpy(url->host, numeric);
    return 0;
}

void redis_url_redacted(const struct redis_url *url, char *out, size_t out_len)
{
    ASSERT(url && out && out_len > 0);
    const char *user = url->has_user ? url->user : "";
    const char *password = url->has_password ? ":***" : "";
    const char *at = (url->has_user || url->has_password) ? "@" : "";
    if (url->is_unix) {
        snprintf(out, out_len, "unix://%s%s%s%s?db=%d", user, password, at, url->socket_path,
                 url->db);
        return;
    }
    bool v6 = strchr(url->host, ':') != NULL;
    snprintf(out, out_len, "redis://%s%s%s%s%s%s:%d/%d", user, password, at, v6 ? "[" : "",
             url->host, v6 ? "]" : "", url->port, url->db);
}
