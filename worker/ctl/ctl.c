/*
 * ctl.c -- creditsctl's shared machinery: messages and exit codes, argument
 * parsing and --help, subcommand dispatch, and the Postgres and Redis
 * connections a command opens from the settings.
 */
#include "worker/ctl/ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core/assert.h"
#include "worker/ctl/admin.h"

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

int ctl_usage_error(const struct ctl *ctl, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    fprintf(stderr, "creditsctl %s: ", ctl->name);
    vfprintf(stderr, format, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: creditsctl %s\n(see 'creditsctl %s --help')\n", ctl->command->usage,
            ctl->name);
    return CTL_USAGE;
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
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

void ctl_print_help(const struct command *cmd, FILE *out)
{
    fprintf(out, "usage: creditsctl %s\n\n%s", cmd->usage, cmd->help);
}

/* One option at argv[*i]: records it, consuming its value. CTL_CONTINUE or
 * CTL_USAGE. */
static int parse_option(struct ctl *ctl, const struct opt *opts, bool *seen, int argc, char **argv,
                        int *i)
{
    const char *arg = argv[*i];
    if (arg[1] != '-')
        return ctl_usage_error(ctl, "unknown option '%s'", arg);
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    size_t k = 0;
    while (opts[k].name && (strlen(opts[k].name) != len || strncmp(opts[k].name, name, len)))
        k++;
    if (!opts[k].name)
        return ctl_usage_error(ctl, "unknown option '--%.*s'", (int)len, name);
    if (seen[k])
        return ctl_usage_error(ctl, "--%s given twice", opts[k].name);
    seen[k] = true;
    if (!opts[k].value) {
        if (eq)
            return ctl_usage_error(ctl, "--%s takes no value", opts[k].name);
        *opts[k].flag = true;
        return CTL_CONTINUE;
    }
    if (!eq && *i + 1 >= argc)
        return ctl_usage_error(ctl, "--%s needs a value", opts[k].name);
    *opts[k].value = eq ? eq + 1 : argv[++*i];
    return CTL_CONTINUE;
}

int ctl_parse_args(struct ctl *ctl, int argc, char **argv, const struct opt *opts,
                   const char *const *names, const char **positional)
{
    size_t opt_count = 0;
    while (opts[opt_count].name)
        opt_count++;
    ASSERT(opt_count <= CTL_OPTS_MAX);
    size_t wanted = 0;
    while (names[wanted])
        wanted++;
    bool seen[CTL_OPTS_MAX] = {false};
    bool options_done = false;
    size_t got = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && ctl_is_help(arg)) {
            ctl_print_help(ctl->command, stdout);
            return CTL_OK;
        }
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (options_done || arg[0] != '-' || arg[1] == '\0') {
            if (got == wanted)
                return ctl_usage_error(ctl, "unexpected argument '%s'", arg);
            positional[got++] = arg;
        } else {
            int rc = parse_option(ctl, opts, seen, argc, argv, &i);
            if (rc != CTL_CONTINUE)
                return rc;
        }
    }
    if (got < wanted)
        return ctl_usage_error(ctl, "missing %s", names[got]);
    for (size_t k = 0; k < opt_count; k++)
        if (opts[k].required && !seen[k])
            return ctl_usage_error(ctl, "missing --%s", opts[k].name);
    return CTL_CONTINUE;
}

/* A whole number in decimal and nothing else (no spaces, no '+'). */
static bool ctl_parse_int64(const char *text, int64_t min, int64_t max, int64_t *out)
{
    const char *digits = text[0] == '-' ? text + 1 : text;
    if (digits[0] < '0' || digits[0] > '9')
        return false;
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < min || value > max)
        return false;
    *out = value;
    return true;
}

int ctl_flag_int64(const struct ctl *ctl, const char *flag, const char *text, int64_t min,
                   int64_t max, int64_t *out)
{
    if (ctl_parse_int64(text, min, max, out))
        return CTL_OK;
    if (min == INT64_MIN && max == INT64_MAX)
        return ctl_usage_error(ctl, "%s must be a whole number (got \"%s\")", flag, text);
    return ctl_usage_error(ctl, "%s must be a whole number from %lld to %lld (got \"%s\")", flag,
                           (long long)min, (long long)max, text);
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
