/*
 * redis_url.h -- parses CREDITS_REDIS_URL, either form:
 *   redis://[[user]:password@]host[:port][/db]     TCP
 *   unix://[[user]:password@]/path/to/socket[?db=N]  a Unix socket
 *
 * Owns the URL grammar and percent-decoding of user and password (the
 * socket path is taken as written; it cannot hold '?'). Does not connect;
 * resolving a host name (which blocks) is redis_url_resolve().
 */
#ifndef CREDITS_QUEUE_REDIS_URL_H
#define CREDITS_QUEUE_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

#define REDIS_URL_HOST_BYTES_MAX 255
#define REDIS_URL_SECRET_BYTES_MAX 255
/* sun_path holds 108 bytes on Linux, the terminating NUL included. */
#define REDIS_URL_SOCKET_PATH_BYTES_MAX 107

struct redis_url {
    bool is_unix;                                          /* unix://: socket_path, no host */
    char socket_path[REDIS_URL_SOCKET_PATH_BYTES_MAX + 1]; /* absolute */
    char host[REDIS_URL_HOST_BYTES_MAX + 1];               /* name or IP literal, no brackets */
    int port;                                              /* default 6379 */
    int db;                                                /* default 0 */
    bool has_user;
    bool has_password;
    char user[REDIS_URL_SECRET_BYTES_MAX + 1];
    char password[REDIS_URL_SECRET_BYTES_MAX + 1];
};

/* 0, or -1 with a reason for people in errstr (which never holds the password). */
int redis_url_parse(const char *text, struct redis_url *url, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Replaces url->host with a numeric IP address (getaddrinfo: blocks; call at
 * start-up only); nothing to do for a socket. 0, or -1 with a reason in
 * errstr. */
int redis_url_resolve(struct redis_url *url, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Writes the URL with the password replaced by "***", for logs. */
void redis_url_redacted(const struct redis_url *url, char *out, size_t out_len);

#endif
