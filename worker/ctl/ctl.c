/*
 * ctl.c -- creditsctl's shared machinery: messages and exit codes, --help,
 * subcommand dispatch, and the Postgres and Redis connections a command
 * opens from the settings. The argument grammar itself is opt.c's.
 */
#include "worker/ctl/ctl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core/assert.h"
#include "worker/ctl/admin.h"

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

/* What follows the message of every usage error. */
static int usage_tail(const struct ctl *ctl)
{
    ASSERT(ctl != NULL && ctl->command != NULL);
    fprintf(stderr, "\nusage: creditsctl %s\n(see 'creditsctl %s --help')\n", ctl->command->usage,
            ctl->name);
    return CTL_USAGE;
}

int ctl_usage_error(const struct ctl *ctl, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    fprintf(stderr, "creditsctl %s: ", ctl->name);
    vfprintf(stderr, format, ap);
    va_end(ap);
    return usage_tail(ctl);
}

/* ctl_usage_error() with the message of an opt_error. */
static int usage_error_from(const struct ctl *ctl, const struct opt_error *error)
{
    ASSERT(error != NULL && error->problem != OPT_NONE);
    fprintf(stderr, "creditsctl %s: ", ctl->name);
    opt_error_print(error, stderr);
    return usage_tail(ctl);
}

int ctl_failure(const struct ctl *ctl, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    fprintf(stderr, "creditsctl %s: ", ctl->name);
    vfprintf(stderr, format, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CTL_FAIL;
}

/* ------------------------------------------------------------------------ */
/* Arguments                                                                */
/* ------------------------------------------------------------------------ */

bool ctl_is_help(const char *arg)
{
    return opt_is_help(arg);
}

void ctl_print_help(const struct command *cmd, FILE *out)
{
    fprintf(out, "usage: creditsctl %s\n\n%s", cmd->usage, cmd->help);
}

int ctl_parse_args(struct ctl *ctl, int argc, char **argv, const struct opt *opts,
                   const char *const *names, const char **positional)
{
    ASSERT(ctl != NULL && ctl->command != NULL);
    struct opt_error error;
    switch (opt_parse(argc, argv, opts, names, positional, &error)) {
    case OPT_PARSED:
        return CTL_CONTINUE;
    case OPT_HELP:
        ctl_print_help(ctl->command, stdout);
        return CTL_OK;
    case OPT_BAD:
        return usage_error_from(ctl, &error);
    }
    UNREACHABLE();
}

int ctl_flag_int64(const struct ctl *ctl, const char *flag, const char *text, int64_t min,
                   int64_t max, int64_t *out)
{
    ASSERT(ctl != NULL);
    struct opt_error error;
    if (opt_int64(flag, text, min, max, out, &error))
        return CTL_OK;
    return usage_error_from(ctl, &error);
}

int ctl_check_user(const struct ctl *ctl, const char *user)
{
    ASSERT(ctl != NULL && user != NULL);
    if (job_id_is_valid(user, strlen(user)))
        return CTL_OK;
    return ctl_usage_error(ctl, "a user ID is 1 to 128 printable ASCII characters, no spaces");
}

int ctl_run_subcommand(struct ctl *ctl, const struct command *subs, size_t count, int argc,
                       char **argv)
{
    if (argc >= 1 && ctl_is_help(argv[0])) {
        ctl_print_help(ctl->command, stdout);
        return CTL_OK;
    }
    if (argc < 1)
        return ctl_usage_error(ctl, "missing the subcommand");
    for (size_t i = 0; i < count; i++) {
        if (strcmp(subs[i].name, argv[0]) != 0)
            continue;
        snprintf(ctl->name, sizeof ctl->name, "%s %s", ctl->command->name, subs[i].name);
        ctl->command = &subs[i];
        return subs[i].run(ctl, argc - 1, argv + 1);
    }
    return ctl_usage_error(ctl, "unknown subcommand '%s'", argv[0]);
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

/* A bad setting is the caller's mistake, like a bad flag: exit status 2, as
 * for credits-worker. */
int ctl_load_config(struct ctl *ctl)
{
    if (config_load_env(&ctl->config, ctl->errstr, sizeof ctl->errstr) != 0) {
        ctl_failure(ctl, "%s", ctl->errstr);
        return CTL_USAGE;
    }
    return CTL_OK;
}

int ctl_pg_open(struct ctl *ctl, bool statement_timeout, PGconn **conn)
{
    int rc = ctl_load_config(ctl);
    if (rc != CTL_OK)
        return rc;
    *conn =
        admin_connect(ctl->config.database_url, statement_timeout, ctl->errstr, sizeof ctl->errstr);
    return *conn ? CTL_OK : ctl_failure(ctl, "%s", ctl->errstr);
}

int ctl_pg_done(struct ctl *ctl, PGconn *conn, int query_rc)
{
    PQfinish(conn);
    return query_rc == 0 ? CTL_OK : ctl_failure(ctl, "%s", ctl->errstr);
}

/* NULL with a message for a missing or error reply; the reply otherwise. */
static redisReply *checked_reply(const struct ctl *ctl, redisContext *redis, const char *what,
                                 redisReply *reply)
{
    if (!reply) {
        ctl_failure(ctl, "%s: Redis: %s", what,
                    redis->errstr[0] ? redis->errstr : "connection lost");
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        ctl_failure(ctl, "%s: Redis: %s", what, reply->str);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

redisReply *ctl_redis_run(const struct ctl *ctl, redisContext *redis, const char *what, int argc,
                          const char **argv, const size_t *lens)
{
    ASSERT(argc >= 1 && argv);
    return checked_reply(ctl, redis, what, redisCommandArgv(redis, argc, argv, lens));
}

redisReply *ctl_redis_get_reply(const struct ctl *ctl, redisContext *redis, const char *what)
{
    void *reply = NULL;
    if (redisGetReply(redis, &reply) != REDIS_OK)
        reply = NULL;
    return checked_reply(ctl, redis, what, reply);
}

/* Runs a command whose reply only matters for success. */
static int redis_simple(const struct ctl *ctl, redisContext *redis, const char *what, int argc,
                        const char **argv)
{
    redisReply *reply = ctl_redis_run(ctl, redis, what, argc, argv, NULL);
    freeReplyObject(reply);
    return reply ? CTL_OK : CTL_FAIL;
}

/* AUTH (when the URL has a password) and SELECT (when it has a db). */
static int redis_login(const struct ctl *ctl, redisContext *redis)
{
    const struct redis_url *url = &ctl->config.redis;
    if (url->has_password) {
        /* AUTH [user] password: the user only when the URL names one. */
        const char *with_user[3] = {"AUTH", url->user, url->password};
        const char *without_user[2] = {"AUTH", url->password};
        int rc = url->has_user ? redis_simple(ctl, redis, "AUTH", 3, with_user)
                               : redis_simple(ctl, redis, "AUTH", 2, without_user);
        if (rc != CTL_OK)
            return rc;
    }
    if (url->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", url->db);
        const char *argv[2] = {"SELECT", db};
        return redis_simple(ctl, redis, "SELECT", 2, argv);
    }
    return CTL_OK;
}

int ctl_redis_open(struct ctl *ctl, redisContext **redis)
{
    int rc = ctl_load_config(ctl);
    if (rc != CTL_OK)
        return rc;
    const struct redis_url *url = &ctl->config.redis;
    struct timeval connect_tv = {CTL_REDIS_CONNECT_TIMEOUT_S, 0};
    struct timeval reply_tv = {CTL_REDIS_TIMEOUT_S, 0};
    redisContext *c = url->is_unix ? redisConnectUnixWithTimeout(url->socket_path, connect_tv)
                                   : redisConnectWithTimeout(url->host, url->port, connect_tv);
    if (!c || c->err) {
        char where[REDIS_URL_HOST_BYTES_MAX + 16];
        if (url->is_unix)
            snprintf(where, sizeof where, "%s", url->socket_path);
        else
            snprintf(where, sizeof where, "%s:%d", url->host, url->port);
        ctl_failure(ctl, "cannot connect to Redis at %s: %s", where,
                    c ? c->errstr : "out of memory");
        redisFree(c);
        return CTL_FAIL;
    }
    if (redisSetTimeout(c, reply_tv) != REDIS_OK) {
        ctl_failure(ctl, "cannot set the Redis timeout: %s", c->errstr);
        redisFree(c);
        return CTL_FAIL;
    }
    if (redis_login(ctl, c) != CTL_OK) {
        redisFree(c);
        return CTL_FAIL;
    }
    *redis = c;
    return CTL_OK;
}
