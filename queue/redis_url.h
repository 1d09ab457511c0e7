/*
 * redis_url.h -- parses CREDITS_REDIS_URL:
 * redis://[[user]:password@]host[:port][/db]
 *
 * Owns the URL grammar and percent-decoding of user and password. Does not
 * connect; resolving a host name (which blocks) is redis_url_resolve().
 */
#ifndef CREDITS_QUEUE_REDIS_URL_H
#define CREDITS_QUEUE_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

#define REDIS_URL_HOST_BYTES_MAX 255
#define REDIS_URL_SECRET_BYTES_MAX 255

struct redis_url {
    char host[REDIS_URL_HOST_BYTES_MAX + 1]; /* name or IP literal, no brackets */
    int port;                                /* default 6379 */
    int db;                                  /* default 0 */
    bool has_user;
    bool has_password;
    char user[REDIS_URL_SECRET_BYTES_MAX + 1];
    char password[REDIS_URL_SECRET_BYTES_MAX + 1];
};

/* 0, or -1 with a reason for people in errstr (which never holds the password). */
int redis_url_parse(const char *text, struct redis_url *url, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Replaces url->host with a numeric IP address (getaddrinfo: blocks; call at
 * start-up only). 0, or -1 with a reason in errstr. */
int redis_url_resolve(struct redis_url *url, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Writes the URL with the password replaced by "***", for logs. */
void redis_url_redacted(const struct redis_url *url, char *out, size_t out_len);

#endif
