/*
 * ctl.h -- the machinery every creditsctl command shares: the command and
 * option tables, argument parsing, --help, exit codes and messages, and the
 * connections (blocking libpq and hiredis) built from the settings.
 *
 * Owns how a command reads its arguments and reports failures. Does not own
 * what any command does (creditsctl.c, audit.c, deadletters.c, schedule.c),
 * the grammar of the arguments (opt.h) or the settings themselves (config.h).
 */
#ifndef CREDITS_WORKER_CTL_CTL_H
#define CREDITS_WORKER_CTL_CTL_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/job.h"
#include "core/job_type.h"
#include "queue/keys.h"
#include "worker/common/config.h"
#include "worker/ctl/opt.h"

/* Exit status: 0 done, 1 failed (connection, database, timeout, a check
 * found something), 2 usage or a bad setting. */
enum ctl_exit {
    CTL_OK = 0,
    CTL_FAIL = 1,
    CTL_USAGE = 2,
};

/* ctl_parse_args() found nothing wrong: the command goes on. */
#define CTL_CONTINUE (-1)

#define CTL_ERRSTR_BYTES 1024
#define CTL_NAME_BYTES 32
/* Any Redis key of the contract (queue/keys.h). */
#define CTL_KEY_BYTES KEYS_BYTES_MAX
#define CTL_REDIS_CONNECT_TIMEOUT_S 5
/* Every Redis reply but a blocking one's. */
#define CTL_REDIS_TIMEOUT_S 10

struct ctl;

/* A command, or a subcommand of a group (`dead list`). */
struct command {
    const char *name;    /* "balance"; a subcommand's own word ("list") */
    const char *summary; /* one line, for the command list */
    const char *usage;   /* after "usage: creditsctl " */
    const char *help;    /* what it does, its options */
    int (*run)(struct ctl *ctl, int argc, char **argv);
};

/* One run of the program: the command, its settings, room for errors. */
struct ctl {
    const struct command *command;
    char name[CTL_NAME_BYTES]; /* "consume", "dead list": prefixes messages */
    struct config config;
    char errstr[CTL_ERRSTR_BYTES];
};

/* Option tables are lists of struct opt (opt.h). */
/* clang-format off */
#define CTL_OPT_END {NULL, NULL, NULL, false}
#define CTL_OPT_JSON(flag) {"json", NULL, &(flag), false}
/* clang-format on */
#define CTL_JSON_HELP "  --json        print JSON (one document, one line) instead of a table\n"

/* Print "creditsctl NAME: message" on stderr. ctl_usage_error() adds the
 * command's usage and returns CTL_USAGE; ctl_failure() returns CTL_FAIL. */
int ctl_usage_error(const struct ctl *ctl, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
int ctl_failure(const struct ctl *ctl, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

bool ctl_is_help(const char *arg);
void ctl_print_help(const struct command *cmd, FILE *out);

/*
 * Parses a command's arguments (opt_parse()): options into `opts`
 * (CTL_OPT_END-terminated), and exactly as many positionals as `names` holds
 * (NULL-terminated; all required) into `positional`. Returns CTL_CONTINUE,
 * CTL_OK after printing --help, or CTL_USAGE after a usage message.
 */
int ctl_parse_args(struct ctl *ctl, int argc, char **argv, const struct opt *opts,
                   const char *const *names, const char **positional)
    __attribute__((warn_unused_result));

/* The value of `flag` ("--limit") as a whole number within [min, max] into
 * out: CTL_OK, or CTL_USAGE after a usage error naming the flag, its bounds
 * (unless they are the whole int64 range) and the text given. */
int ctl_flag_int64(const struct ctl *ctl, const char *flag, const char *text, int64_t min,
                   int64_t max, int64_t *out) __attribute__((warn_unused_result));

/* A user ID given on the command line (USER, --user) keeps the contract's
 * ID rule (job_id_is_valid()): CTL_OK, or CTL_USAGE after a usage error. */
int ctl_check_user(const struct ctl *ctl, const char *user) __attribute__((warn_unused_result));

/*
 * Runs the subcommand of a group named by argv[0] (`dead list ...`): sets
 * ctl->command to it and ctl->name to "group sub". With no argument or
 * --help, prints the group's help (CTL_USAGE / CTL_OK).
 */
int ctl_run_subcommand(struct ctl *ctl, const struct command *subs, size_t count, int argc,
                       char **argv);

/* Loads the settings from the environment. CTL_OK, or CTL_USAGE after a
 * message naming the bad setting. */
int ctl_load_config(struct ctl *ctl);

/* Loads the settings and connects to Postgres; *conn: PQfinish() it. */
int ctl_pg_open(struct ctl *ctl, bool statement_timeout, PGconn **conn);

/* Closes `conn` (takes ownership) and turns a 0/-1 return of the query
 * modules (errstr holding the reason) into an exit code. */
int ctl_pg_done(struct ctl *ctl, PGconn *conn, int query_rc);

/* Loads the settings and connects to Redis (blocking, with timeouts, AUTH
 * and SELECT as the URL says); *redis: redisFree() it. */
int ctl_redis_open(struct ctl *ctl, redisContext **redis);

/* Runs one Redis command. Returns the reply (caller frees with
 * freeReplyObject()), or NULL after printing why (lost connection, timeout,
 * error reply). `lens` NULL: every argument is a C string. */
redisReply *ctl_redis_run(const struct ctl *ctl, redisContext *redis, const char *what, int argc,
                          const char **argv, const size_t *lens);

/* Reads one reply of a pipeline (see ctl_redis_run()). */
redisReply *ctl_redis_get_reply(const struct ctl *ctl, redisContext *redis, const char *what);

#endif
