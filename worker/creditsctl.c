/*
 * creditsctl.c -- the operator's and developer's CLI of credits-worker:
 * migrate the schema, enqueue jobs and wait for their results, read stored
 * results, balances and history, and edit the catalog (plans and packs).
 *
 * Owns argument parsing, help texts, exit codes, the Redis side (blocking
 * hiredis) and printing results as JSON. The SQL lives in admin.c and
 * migrate.c; the job rules in core/ (the same ones the worker applies).
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core/assert.h"
#include "core/codec.h"
#include "core/job.h"
#include "worker/admin.h"
#include "worker/config.h"
#include "worker/migrate.h"

#ifndef CREDITS_VERSION
#define CREDITS_VERSION "dev"
#endif

/* Exit status: 0 done, 1 failed (connection, database, timeout), 2 usage. */
enum ctl_exit {
    CTL_OK = 0,
    CTL_FAIL = 1,
    CTL_USAGE = 2,
};

/* parse_args() found nothing wrong: the command goes on. */
#define CTL_CONTINUE (-1)

#define CTL_OPTS_MAX 12
#define CTL_ERRSTR_BYTES 1024
#define CTL_NAME_BYTES 32
/* "{prefix}:reply:{id}": prefix <= 64, id <= 128. */
#define CTL_KEY_BYTES 256
#define CTL_WAIT_DEFAULT_S 10
#define CTL_WAIT_MAX_S 3600
#define CTL_REDIS_CONNECT_TIMEOUT_S 5
/* Every Redis reply but BLPOP's; BLPOP gets its own wait plus this. */
#define CTL_REDIS_TIMEOUT_S 10
/* Random bytes in a generated job ID: "cli-" + 32 hex digits. */
#define CTL_ID_RANDOM_BYTES 16

_Static_assert(4 + 2 * CTL_ID_RANDOM_BYTES <= JOB_ID_BYTES_MAX, "generated IDs obey the ID rule");
_Static_assert(CONFIG_NAME_BYTES_MAX + sizeof ":reply:" + JOB_ID_BYTES_MAX < CTL_KEY_BYTES,
               "every key fits");

struct ctl;

struct command {
    const char *name;
    const char *summary; /* one line, for the command list */
    const char *usage;   /* after "usage: creditsctl " */
    const char *help;    /* what it does, its options */
    int (*run)(struct ctl *ctl, int argc, char **argv);
};

/* One run of the program: the command, its settings, room for errors. */
struct ctl {
    const struct command *command;
    char name[CTL_NAME_BYTES]; /* "consume", "plan set": prefixes messages */
    struct config config;
    char errstr[CTL_ERRSTR_BYTES];
};

/* A long option: --name VALUE, --name=VALUE, or a flag --name. */
struct opt {
    const char *name;   /* without the leading "--"; NULL ends a list */
    const char **value; /* receives the value (borrowed from argv); NULL: a flag */
    bool *flag;         /* a flag: set to true when given */
    bool required;
};

/* ------------------------------------------------------------------------ */
/* Messages and exit codes                                                  */
/* ------------------------------------------------------------------------ */

static int usage_error(const struct ctl *ctl, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static int failure(const struct ctl *ctl, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "creditsctl CMD: message", the command's usage; returns CTL_USAGE. */
static int usage_error(const struct ctl *ctl, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    fprintf(stderr, "creditsctl %s: ", ctl->name);
    vfprintf(stderr, format, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: creditsctl %s\n(see 'creditsctl %s --help')\n", ctl->command->usage,
            ctl->command->name);
    return CTL_USAGE;
}

/* Prints "creditsctl CMD: message"; returns CTL_FAIL. */
static int failure(const struct ctl *ctl, const char *format, ...)
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

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static void print_command_help(const struct command *cmd, FILE *out)
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
        return usage_error(ctl, "unknown option '%s'", arg);
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    size_t k = 0;
    while (opts[k].name && (strlen(opts[k].name) != len || strncmp(opts[k].name, name, len)))
        k++;
    if (!opts[k].name)
        return usage_error(ctl, "unknown option '--%.*s'", (int)len, name);
    if (seen[k])
        return usage_error(ctl, "--%s given twice", opts[k].name);
    seen[k] = true;
    if (!opts[k].value) {
        if (eq)
            return usage_error(ctl, "--%s takes no value", opts[k].name);
        *opts[k].flag = true;
        return CTL_CONTINUE;
    }
    if (!eq && *i + 1 >= argc)
        return usage_error(ctl, "--%s needs a value", opts[k].name);
    *opts[k].value = eq ? eq + 1 : argv[++*i];
    return CTL_CONTINUE;
}

/*
 * Parses a command's arguments: options into `opts` (NULL-name-terminated),
 * and exactly as many positionals as `names` holds (NULL-terminated; all
 * required) into `positional`. Returns CTL_CONTINUE, CTL_OK after printing
 * --help, or CTL_USAGE after a usage message.
 */
static int parse_args(struct ctl *ctl, int argc, char **argv, const struct opt *opts,
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
        if (!options_done && is_help(arg)) {
            print_command_help(ctl->command, stdout);
            return CTL_OK;
        }
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (options_done || arg[0] != '-' || arg[1] == '\0') {
            if (got == wanted)
                return usage_error(ctl, "unexpected argument '%s'", arg);
            positional[got++] = arg;
        } else {
            int rc = parse_option(ctl, opts, seen, argc, argv, &i);
            if (rc != CTL_CONTINUE)
                return rc;
        }
    }
    if (got < wanted)
        return usage_error(ctl, "missing %s", names[got]);
    for (size_t k = 0; k < opt_count; k++)
        if (opts[k].required && !seen[k])
            return usage_error(ctl, "missing --%s", opts[k].name);
    return CTL_CONTINUE;
}

/* A whole number in decimal and nothing else (no spaces, no '+'). */
static bool parse_int64(const char *text, int64_t min, int64_t max, int64_t *out)
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

/* Copies a flag's value into a job field of `size` bytes. */
static bool copy_field(const struct ctl *ctl, const char *flag, const char *value, char *field,
                       size_t size)
{
    size_t len = strlen(value);
    if (len >= size) {
        usage_error(ctl, "%s is %zu bytes; the limit is %zu", flag, len, size - 1);
        return false;
    }
    memcpy(field, value, len + 1);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

static int load_config(struct ctl *ctl)
{
    if (config_load_env(&ctl->config, ctl->errstr, sizeof ctl->errstr) != 0)
        return failure(ctl, "%s", ctl->errstr);
    return CTL_OK;
}

/* Loads the settings and connects to Postgres; *conn: PQfinish() it. */
static int pg_open(struct ctl *ctl, bool statement_timeout, PGconn **conn)
{
    int rc = load_config(ctl);
    if (rc != CTL_OK)
        return rc;
    *conn =
        admin_connect(ctl->config.database_url, statement_timeout, ctl->errstr, sizeof ctl->errstr);
    return *conn ? CTL_OK : failure(ctl, "%s", ctl->errstr);
}

/* Closes `conn` (takes ownership) and turns an admin_*() return into an exit
 * code. */
static int pg_done(struct ctl *ctl, PGconn *conn, int admin_rc)
{
    PQfinish(conn);
    return admin_rc == 0 ? CTL_OK : failure(ctl, "%s", ctl->errstr);
}

/* Runs one Redis command. Returns the reply (caller frees with
 * freeReplyObject()), or NULL after printing why (lost connection, timeout,
 * error reply). */
static redisReply *redis_run(const struct ctl *ctl, redisContext *redis, const char *what, int argc,
                             const char **argv, const size_t *lens)
{
    ASSERT(argc >= 1 && argv && lens);
    redisReply *reply = redisCommandArgv(redis, argc, argv, lens);
    if (!reply) {
        failure(ctl, "%s: Redis: %s", what, redis->errstr[0] ? redis->errstr : "connection lost");
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        failure(ctl, "%s: Redis: %s", what, reply->str);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* AUTH (when the URL has a password) and SELECT (when it has a db). */
static int redis_login(const struct ctl *ctl, redisContext *redis)
{
    const struct redis_url *url = &ctl->config.redis;
    redisReply *reply = NULL;
    if (url->has_password) {
        /* AUTH [user] password: the user only when the URL names one. */
        int argc = url->has_user ? 3 : 2;
        const char *argv[3] = {"AUTH", url->user, url->password};
        size_t lens[3] = {4, strlen(url->user), strlen(url->password)};
        if (!url->has_user) {
            argv[1] = url->password;
            lens[1] = lens[2];
        }
        reply = redis_run(ctl, redis, "AUTH", argc, argv, lens);
        if (!reply)
            return CTL_FAIL;
        freeReplyObject(reply);
    }
    if (url->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", url->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        reply = redis_run(ctl, redis, "SELECT", 2, argv, lens);
        if (!reply)
            return CTL_FAIL;
        freeReplyObject(reply);
    }
    return CTL_OK;
}

/* Connects to Redis (blocking, with timeouts); *redis: redisFree() it. */
static int redis_open(struct ctl *ctl, redisContext **redis)
{
    const struct redis_url *url = &ctl->config.redis;
    struct timeval connect_tv = {CTL_REDIS_CONNECT_TIMEOUT_S, 0};
    struct timeval reply_tv = {CTL_REDIS_TIMEOUT_S, 0};
    redisContext *c = redisConnectWithTimeout(url->host, url->port, connect_tv);
    if (!c || c->err) {
        failure(ctl, "cannot connect to Redis at %s:%d: %s", url->host, url->port,
                c ? c->errstr : "out of memory");
        redisFree(c);
        return CTL_FAIL;
    }
    if (redisSetTimeout(c, reply_tv) != REDIS_OK) {
        failure(ctl, "cannot set the Redis timeout: %s", c->errstr);
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

/* ------------------------------------------------------------------------ */
/* Results as JSON                                                          */
/* ------------------------------------------------------------------------ */

/* A JSON string: quotes, backslashes and control bytes escaped; text that
 * is not valid UTF-8 keeps its ASCII and has U+FFFD for every other byte. */
static void json_string(FILE *out, const char *s)
{
    bool utf8 = job_text_is_valid(s, strlen(s));
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7F)
            fprintf(out, "\\u%04x", *p);
        else if (*p >= 0x80 && !utf8)
            fputs("\\ufffd", out);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void json_key_string(FILE *out, const char *key, const char *value)
{
    fprintf(out, ",\"%s\":", key);
    json_string(out, value);
}

static void json_key_int(FILE *out, const char *key, int64_t value)
{
    fprintf(out, ",\"%s\":%" PRId64, key, value);
}

/* One line, the keys in the contract's order (section 3). */
static void print_result_json(FILE *out, const struct result *r)
{
    fprintf(out, "{\"v\":%d", JOB_VERSION);
    if (r->has_id)
        json_key_string(out, "id", r->id);
    if (r->has_type)
        json_key_string(out, "type", job_type_name(r->type));
    if (r->has_user)
        json_key_string(out, "user", r->user);
    json_key_string(out, "status", r->error == JOB_OK ? "applied" : "rejected");
    if (r->error != JOB_OK)
        json_key_string(out, "error", job_error_name(r->error));
    if (r->message[0])
        json_key_string(out, "message", r->message);
    if (result_has_balance(r))
        fprintf(out,
                ",\"balance\":{\"total\":%" PRId64 ",\"pack\":%" PRId64 ",\"monthly\":%" PRId64 "}",
                r->balance.total, r->balance.pack, r->balance.monthly);
    if (result_has_charged(r))
        json_key_int(out, "charged", r->charged);
    if (result_has_granted(r))
        json_key_int(out, "granted", r->granted);
    if (result_has_forfeited(r))
        json_key_int(out, "forfeited", r->forfeited);
    if (result_has_expires_at(r))
        json_key_int(out, "expires_at", r->expires_at_ms);
    json_key_int(out, "done_at", r->done_at_ms);
    fprintf(out, ",\"replayed\":%s}\n", r->replayed ? "true" : "false");
}

/* Decodes the msgpack result of job `id` (borrowed) and prints it. */
static int print_result_bytes(const struct ctl *ctl, const char *id, const char *bytes, size_t len)
{
    struct result result;
    if (codec_decode_result(bytes, len, &result) != 0)
        return failure(ctl, "the result stored for job %s is not a valid result (%zu bytes)", id,
                       len);
    print_result_json(stdout, &result);
    return CTL_OK;
}

/* ------------------------------------------------------------------------ */
/* consume, purchase, allocate                                              */
/* ------------------------------------------------------------------------ */

/* The options every job command shares. */
struct job_opts {
    const char *id;
    const char *timeout;
    bool wait;
};

/* clang-format off */
#define JOB_OPTS(o)                                                                                \
    {"id", &(o).id, NULL, false},                                                                  \
    {"wait", NULL, &(o).wait, false},                                                              \
    {"timeout", &(o).timeout, NULL, false},                                                        \
    {NULL, NULL, NULL, false}
/* clang-format on */

#define JOB_OPTS_HELP                                                                              \
    "  --id ID       the job ID, the dedupe key: 1 to 128 printable ASCII characters\n"            \
    "                (default: \"cli-\" and 32 random hex digits)\n"                               \
    "  --wait        ask for the result, wait for it and print it as one JSON line\n"              \
    "                (without --wait, the job ID is printed)\n"                                    \
    "  --timeout S   with --wait: seconds to wait, 1 to 3600 (default 10)\n"

/* "cli-" and CTL_ID_RANDOM_BYTES random bytes in hex. */
static int random_job_id(const struct ctl *ctl, char *out, size_t out_len)
{
    ASSERT(out_len > 4 + 2 * CTL_ID_RANDOM_BYTES);
    unsigned char bytes[CTL_ID_RANDOM_BYTES];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = 0;
    if (f) {
        setvbuf(f, NULL, _IONBF, 0);
        got = fread(bytes, 1, sizeof bytes, f);
        fclose(f);
    }
    if (got != sizeof bytes)
        return failure(ctl, "cannot read /dev/urandom for a job ID: %s", strerror(errno));
    memcpy(out, "cli-", 4);
    for (size_t i = 0; i < sizeof bytes; i++)
        snprintf(out + 4 + 2 * i, 3, "%02x", bytes[i]);
    return CTL_OK;
}

/* Encodes the job and reads it back with the worker's own rules, so that a
 * job the worker would reject as invalid is never enqueued. */
static int encode_checked(const struct ctl *ctl, const struct job *job, msgpack_sbuffer *buf)
{
    if (codec_encode_job(job, buf) != 0)
        return failure(ctl, "cannot encode the job (out of memory)");
    struct job decoded;
    struct result reject;
    enum job_error error = codec_decode_job(buf->data, buf->size, &decoded, &reject);
    if (error != JOB_OK)
        return usage_error(ctl, "the worker would reject this job (%s): %s", job_error_name(error),
                           reject.message);
    ASSERT(decoded.type == job->type);
    ASSERT(strcmp(decoded.id, job->id) == 0);
    ASSERT(decoded.reply == job->reply);
    return CTL_OK;
}

/* XADD {prefix}:jobs:{type} * job <bytes>. */
static int xadd_job(struct ctl *ctl, redisContext *redis, const struct job *job,
                    const msgpack_sbuffer *buf)
{
    char suffix[32];
    char key[CTL_KEY_BYTES];
    snprintf(suffix, sizeof suffix, "jobs:%s", job_type_name(job->type));
    config_key(&ctl->config, suffix, key, sizeof key);
    const char *argv[5] = {"XADD", key, "*", "job", buf->data};
    size_t lens[5] = {4, strlen(key), 1, 3, buf->size};
    redisReply *reply = redis_run(ctl, redis, "enqueueing the job", 5, argv, lens);
    if (!reply)
        return CTL_FAIL;
    freeReplyObject(reply);
    return CTL_OK;
}

/* BLPOP {prefix}:reply:{id} for up to wait_s seconds; prints the result. */
static int wait_result(struct ctl *ctl, redisContext *redis, const char *id, int64_t wait_s)
{
    ASSERT(wait_s >= 1 && wait_s <= CTL_WAIT_MAX_S);
    char suffix[CTL_KEY_BYTES];
    char key[CTL_KEY_BYTES];
    char timeout[24];
    snprintf(suffix, sizeof suffix, "reply:%s", id);
    config_key(&ctl->config, suffix, key, sizeof key);
    snprintf(timeout, sizeof timeout, "%" PRId64, wait_s);
    /* The socket waits longer than BLPOP, so a live server always answers. */
    struct timeval tv = {(time_t)(wait_s + CTL_REDIS_TIMEOUT_S), 0};
    if (redisSetTimeout(redis, tv) != REDIS_OK)
        return failure(ctl, "cannot set the Redis timeout");
    const char *argv[3] = {"BLPOP", key, timeout};
    size_t lens[3] = {5, strlen(key), strlen(timeout)};
    redisReply *reply = redis_run(ctl, redis, "waiting for the result", 3, argv, lens);
    if (!reply)
        return CTL_FAIL;
    int rc;
    if (reply->type == REDIS_REPLY_NIL)
        rc = failure(ctl, "no result for job %s within %" PRId64 " s (is credits-worker running?)",
                     id, wait_s);
    else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
             reply->element[1]->type == REDIS_REPLY_STRING)
        rc = print_result_bytes(ctl, id, reply->element[1]->str, reply->element[1]->len);
    else
        rc = failure(ctl, "unexpected reply to BLPOP (type %d)", reply->type);
    freeReplyObject(reply);
    return rc;
}

static int enqueue(struct ctl *ctl, const struct job *job, const msgpack_sbuffer *buf,
                   int64_t wait_s)
{
    redisContext *redis = NULL;
    int rc = load_config(ctl);
    if (rc == CTL_OK)
        rc = redis_open(ctl, &redis);
    if (rc == CTL_OK)
        rc = xadd_job(ctl, redis, job, buf);
    if (rc == CTL_OK && !job->reply)
        printf("%s\n", job->id);
    if (rc == CTL_OK && job->reply)
        rc = wait_result(ctl, redis, job->id, wait_s);
    redisFree(redis);
    return rc;
}

/* The shared tail of the job commands: ID, reply, check, enqueue, wait. */
static int submit_job(struct ctl *ctl, struct job *job, const struct job_opts *o)
{
    int64_t wait_s = CTL_WAIT_DEFAULT_S;
    if (o->timeout && !o->wait)
        return usage_error(ctl, "--timeout applies only with --wait");
    if (o->timeout && !parse_int64(o->timeout, 1, CTL_WAIT_MAX_S, &wait_s))
        return usage_error(ctl, "--timeout must be a whole number of seconds from 1 to %d",
                           CTL_WAIT_MAX_S);
    if (o->id && !copy_field(ctl, "--id", o->id, job->id, sizeof job->id))
        return CTL_USAGE;
    if (!o->id && random_job_id(ctl, job->id, sizeof job->id) != CTL_OK)
        return CTL_FAIL;
    job->reply = o->wait;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    int rc = encode_checked(ctl, job, &buf);
    if (rc == CTL_OK)
        rc = enqueue(ctl, job, &buf, wait_s);
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

static void job_start(struct job *job, enum job_type type)
{
    memset(job, 0, sizeof *job);
    job->type = type;
}

/* consume --user U --amount N [--tool T] [--ref R] [--id ID] [--wait] [--timeout S] */
static int cmd_consume(struct ctl *ctl, int argc, char **argv)
{
    const char *user = NULL, *amount = NULL, *tool = NULL, *ref = NULL;
    struct job_opts o = {NULL, NULL, false};
    const struct opt opts[] = {{"user", &user, NULL, true},
                               {"amount", &amount, NULL, true},
                               {"tool", &tool, NULL, false},
                               {"ref", &ref, NULL, false},
                               JOB_OPTS(o)};
    const char *const names[] = {NULL};
    int rc = parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    struct job job;
    job_start(&job, JOB_CONSUME);
    if (!parse_int64(amount, INT64_MIN, INT64_MAX, &job.amount))
        return usage_error(ctl, "--amount must be a whole number (got \"%s\")", amount);
    job.has_tool = tool != NULL;
    job.has_ref = ref != NULL;
    if (!copy_field(ctl, "--user", user, job.user, sizeof job.user) ||
        (tool && !copy_field(ctl, "--tool", tool, job.tool, sizeof job.tool)) ||
        (ref && !copy_field(ctl, "--ref", ref, job.ref, sizeof job.ref)))
        return CTL_USAGE;
    return submit_job(ctl, &job, &o);
}

/* purchase --user U --pack P --payment-ref R [--id ID] [--wait] [--timeout S] */
static int cmd_purchase(struct ctl *ctl, int argc, char **argv)
{
    const char *user = NULL, *pack = NULL, *payment_ref = NULL;
    struct job_opts o = {NULL, NULL, false};
    const struct opt opts[] = {{"user", &user, NULL, true},
                               {"pack", &pack, NULL, true},
                               {"payment-ref", &payment_ref, NULL, true},
                               JOB_OPTS(o)};
    const char *const names[] = {NULL};
    int rc = parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    struct job job;
    job_start(&job, JOB_PURCHASE);
    if (!copy_field(ctl, "--user", user, job.user, sizeof job.user) ||
        !copy_field(ctl, "--pack", pack, job.pack, sizeof job.pack) ||
        !copy_field(ctl, "--payment-ref", payment_ref, job.payment_ref, sizeof job.payment_ref))
        return CTL_USAGE;
    return submit_job(ctl, &job, &o);
}

/* allocate --user U --plan P --period YYYY-MM [--id ID] [--wait] [--timeout S] */
static int cmd_allocate(struct ctl *ctl, int argc, char **argv)
{
    const char *user = NULL, *plan = NULL, *period = NULL;
    struct job_opts o = {NULL, NULL, false};
    const struct opt opts[] = {{"user", &user, NULL, true},
                               {"plan", &plan, NULL, true},
                               {"period", &period, NULL, true},
                               JOB_OPTS(o)};
    const char *const names[] = {NULL};
    int rc = parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    struct job job;
    job_start(&job, JOB_ALLOCATE);
    if (strlen(period) != JOB_PERIOD_BYTES)
        return usage_error(ctl, "--period must be YYYY-MM (got \"%s\")", period);
    if (!copy_field(ctl, "--user", user, job.user, sizeof job.user) ||
        !copy_field(ctl, "--plan", plan, job.plan, sizeof job.plan) ||
        !copy_field(ctl, "--period", period, job.period, sizeof job.period))
        return CTL_USAGE;
    return submit_job(ctl, &job, &o);
}

/* ------------------------------------------------------------------------ */
/* result                                                                   */
/* ------------------------------------------------------------------------ */

/* result ID */
static int cmd_result(struct ctl *ctl, int argc, char **argv)
{
    const struct opt opts[] = {{NULL, NULL, NULL, false}};
    const char *const names[] = {"ID", NULL};
    const char *id = NULL;
    int rc = parse_args(ctl, argc, argv, opts, names, &id);
    if (rc != CTL_CONTINUE)
        return rc;
    if (!job_id_is_valid(id, strlen(id)))
        return usage_error(ctl, "a job ID is 1 to 128 printable ASCII characters, no spaces");
    redisContext *redis = NULL;
    rc = load_config(ctl);
    if (rc == CTL_OK)
        rc = redis_open(ctl, &redis);
    if (rc != CTL_OK)
        return rc;
    char suffix[CTL_KEY_BYTES];
    char key[CTL_KEY_BYTES];
    snprintf(suffix, sizeof suffix, "result:%s", id);
    config_key(&ctl->config, suffix, key, sizeof key);
    const char *cmd_argv[2] = {"GET", key};
    size_t lens[2] = {3, strlen(key)};
    redisReply *reply = redis_run(ctl, redis, "reading the result", 2, cmd_argv, lens);
    if (!reply)
        rc = CTL_FAIL;
    else if (reply->type == REDIS_REPLY_NIL)
        rc = failure(ctl, "no result for job %s (not decided yet, or expired)", id);
    else if (reply->type == REDIS_REPLY_STRING)
        rc = print_result_bytes(ctl, id, reply->str, reply->len);
    else
        rc = failure(ctl, "%s is not a string (Redis type %d)", key, reply->type);
    freeReplyObject(reply);
    redisFree(redis);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* migrate, balance, history                                                */
/* ------------------------------------------------------------------------ */

/* migrate */
static int cmd_migrate(struct ctl *ctl, int argc, char **argv)
{
    const struct opt opts[] = {{NULL, NULL, NULL, false}};
    const char *const names[] = {NULL};
    int rc = parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    PGconn *conn = NULL;
    /* No statement timeout: a migration may rightly take long. */
    rc = pg_open(ctl, false, &conn);
    if (rc != CTL_OK)
        return rc;
    return pg_done(ctl, conn, migrate_run(conn, stdout, ctl->errstr, sizeof ctl->errstr));
}

static bool user_is_valid(const struct ctl *ctl, const char *user)
{
    if (job_id_is_valid(user, strlen(user)))
        return true;
    usage_error(ctl, "a user ID is 1 to 128 printable ASCII characters, no spaces");
    return false;
}

/* balance USER */
static int cmd_balance(struct ctl *ctl, int argc, char **argv)
{
    const struct opt opts[] = {{NULL, NULL, NULL, false}};
    const char *const names[] = {"USER", NULL};
    const char *user = NULL;
    int rc = parse_args(ctl, argc, argv, opts, names, &user);
    if (rc != CTL_CONTINUE)
        return rc;
    if (!user_is_valid(ctl, user))
        return CTL_USAGE;
    PGconn *conn = NULL;
    rc = pg_open(ctl, true, &conn);
    if (rc != CTL_OK)
        return rc;
    return pg_done(ctl, conn, admin_balance(conn, user, stdout, ctl->errstr, sizeof ctl->errstr));
}

/* history USER [--limit N] */
static int cmd_history(struct ctl *ctl, int argc, char **argv)
{
    const char *limit_text = NULL;
    const struct opt opts[] = {{"limit", &limit_text, NULL, false}, {NULL, NULL, NULL, false}};
    const char *const names[] = {"USER", NULL};
    const char *user = NULL;
    int rc = parse_args(ctl, argc, argv, opts, names, &user);
    if (rc != CTL_CONTINUE)
        return rc;
    int64_t limit = ADMIN_HISTORY_LIMIT_DEFAULT;
    if (limit_text && !parse_int64(limit_text, 1, ADMIN_HISTORY_LIMIT_MAX, &limit))
        return usage_error(ctl, "--limit must be a whole number from 1 to %d",
                           ADMIN_HISTORY_LIMIT_MAX);
    if (!user_is_valid(ctl, user))
        return CTL_USAGE;
    PGconn *conn = NULL;
    rc = pg_open(ctl, true, &conn);
    if (rc != CTL_OK)
        return rc;
    return pg_done(ctl, conn,
                   admin_history(conn, user, (int)limit, stdout, ctl->errstr, sizeof ctl->errstr));
}

/* ------------------------------------------------------------------------ */
/* plan, pack                                                               */
/* ------------------------------------------------------------------------ */

/* plan set ID --monthly N [--cap N] */
static int plan_set(struct ctl *ctl, int argc, char **argv)
{
    const char *monthly_text = NULL, *cap_text = NULL;
    const struct opt opts[] = {{"monthly", &monthly_text, NULL, true},
                               {"cap", &cap_text, NULL, false},
                               {NULL, NULL, NULL, false}};
    const char *const names[] = {"ID", NULL};
    const char *id = NULL;
    int rc = parse_args(ctl, argc, argv, opts, names, &id);
    if (rc != CTL_CONTINUE)
        return rc;
    int64_t monthly = 0, cap = 0;
    if (!parse_int64(monthly_text, INT64_MIN, INT64_MAX, &monthly))
        return usage_error(ctl, "--monthly must be a whole number (got \"%s\")", monthly_text);
    if (cap_text && !parse_int64(cap_text, INT64_MIN, INT64_MAX, &cap))
        return usage_error(ctl, "--cap must be a whole number (got \"%s\")", cap_text);
    PGconn *conn = NULL;
    rc = pg_open(ctl, true, &conn);
    if (rc != CTL_OK)
        return rc;
    return pg_done(ctl, conn,
                   admin_plan_set(conn, id, monthly, cap_text != NULL, cap, stdout, ctl->errstr,
                                  sizeof ctl->errstr));
}

/* pack set ID --credits N [--valid-days D] */
static int pack_set(struct ctl *ctl, int argc, char **argv)
{
    const char *credits_text = NULL, *days_text = NULL;
    const struct opt opts[] = {{"credits", &credits_text, NULL, true},
                               {"valid-days", &days_text, NULL, false},
                               {NULL, NULL, NULL, false}};
    const char *const names[] = {"ID", NULL};
    const char *id = NULL;
    int rc = parse_args(ctl, argc, argv, opts, names, &id);
    if (rc != CTL_CONTINUE)
        return rc;
    int64_t credits = 0, days = ADMIN_PACK_VALID_DAYS_DEFAULT;
    if (!parse_int64(credits_text, INT64_MIN, INT64_MAX, &credits))
        return usage_error(ctl, "--credits must be a whole number (got \"%s\")", credits_text);
    if (days_text && !parse_int64(days_text, INT64_MIN, INT64_MAX, &days))
        return usage_error(ctl, "--valid-days must be a whole number (got \"%s\")", days_text);
    PGconn *conn = NULL;
    rc = pg_open(ctl, true, &conn);
    if (rc != CTL_OK)
        return rc;
    return pg_done(
        ctl, conn,
        admin_pack_set(conn, id, credits, days, stdout, ctl->errstr, sizeof ctl->errstr));
}

/* plan list, pack list */
static int catalog_list(struct ctl *ctl, int argc, char **argv, bool plans)
{
    const struct opt opts[] = {{NULL, NULL, NULL, false}};
    const char *const names[] = {NULL};
    int rc = parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    PGconn *conn = NULL;
    rc = pg_open(ctl, true, &conn);
    if (rc != CTL_OK)
        return rc;
    int admin_rc = plans ? admin_plan_list(conn, stdout, ctl->errstr, sizeof ctl->errstr)
                         : admin_pack_list(conn, stdout, ctl->errstr, sizeof ctl->errstr);
    return pg_done(ctl, conn, admin_rc);
}

/* plan set|list ..., pack set|list ... */
static int catalog_command(struct ctl *ctl, int argc, char **argv, bool plans)
{
    if (argc >= 1 && is_help(argv[0])) {
        print_command_help(ctl->command, stdout);
        return CTL_OK;
    }
    if (argc < 1)
        return usage_error(ctl, "missing the subcommand: set or list");
    bool set = strcmp(argv[0], "set") == 0;
    if (!set && strcmp(argv[0], "list") != 0)
        return usage_error(ctl, "unknown subcommand '%s' (set or list)", argv[0]);
    snprintf(ctl->name, sizeof ctl->name, "%s %s", ctl->command->name, argv[0]);
    if (set)
        return plans ? plan_set(ctl, argc - 1, argv + 1) : pack_set(ctl, argc - 1, argv + 1);
    return catalog_list(ctl, argc - 1, argv + 1, plans);
}

static int cmd_plan(struct ctl *ctl, int argc, char **argv)
{
    return catalog_command(ctl, argc, argv, true);
}

static int cmd_pack(struct ctl *ctl, int argc, char **argv)
{
    return catalog_command(ctl, argc, argv, false);
}

/* ------------------------------------------------------------------------ */
/* The command table, help, main                                            */
/* ------------------------------------------------------------------------ */

/* Help texts keep their own layout. */
/* clang-format off */
static const struct command commands[] = {
    {"migrate", "create or upgrade the credits schema in Postgres", "migrate",
     "Applies the migrations built into this creditsctl (schemas/NNN_name.sql), each\n"
     "once and in its own transaction, recording them in credits.schema_migrations.\n"
     "Safe to run again, and concurrently (runs take turns).\n",
     cmd_migrate},
    {"consume", "enqueue a consume job (spend credits)",
     "consume --user U --amount N [--tool T] [--ref R] [--id ID] [--wait] [--timeout S]",
     "Enqueues a consume job on {prefix}:jobs:consume.\n\n"
     "  --user U      the user ID: 1 to 128 printable ASCII characters\n"
     "  --amount N    credits to spend, 1 to 1000000000\n"
     "  --tool T      which tool spent them, at most 64 bytes (kept for history)\n"
     "  --ref R       the caller's reference, at most 128 bytes (kept for history)\n" JOB_OPTS_HELP,
     cmd_consume},
    {"purchase", "enqueue a purchase job (grant a pack)",
     "purchase --user U --pack P --payment-ref R [--id ID] [--wait] [--timeout S]",
     "Enqueues a purchase job on {prefix}:jobs:purchase.\n\n"
     "  --user U          the user ID\n"
     "  --pack P          a pack ID from the catalog (see 'creditsctl pack list')\n"
     "  --payment-ref R   the payment's capture/order ID; one payment grants once\n" JOB_OPTS_HELP,
     cmd_purchase},
    {"allocate", "enqueue an allocate job (a plan's monthly credits)",
     "allocate --user U --plan P --period YYYY-MM [--id ID] [--wait] [--timeout S]",
     "Enqueues an allocate job on {prefix}:jobs:allocate.\n\n"
     "  --user U            the user ID\n"
     "  --plan P            a plan ID from the catalog (see 'creditsctl plan list')\n"
     "  --period YYYY-MM    the billing month\n" JOB_OPTS_HELP,
     cmd_allocate},
    {"result", "print the stored result of a job as JSON", "result ID",
     "Prints the result stored under {prefix}:result:ID as one JSON line. Fails when\n"
     "there is none: the job is not decided yet, or its result expired.\n",
     cmd_result},
    {"balance", "print a user's usable credits and lots", "balance USER",
     "Prints the user's usable credits (total, pack, monthly) and the usable lots\n"
     "with credits left, in the order they are spent. Read from Postgres.\n",
     cmd_balance},
    {"history", "print a user's ledger entries, newest first", "history USER [--limit N]",
     "Prints the user's ledger entries, newest first. Read from Postgres.\n\n"
     "  --limit N   how many, 1 to 1000 (default 20)\n",
     cmd_history},
    {"plan", "set or list the plans of the catalog",
     "plan set ID --monthly N [--cap N]\n       creditsctl plan list",
     "'plan set' creates or replaces a plan; 'plan list' prints them all.\n\n"
     "  --monthly N   credits allocated each month\n"
     "  --cap N       the rollover cap: most monthly credits a user can hold\n"
     "                (default: 2 * monthly)\n",
     cmd_plan},
    {"pack", "set or list the packs of the catalog",
     "pack set ID --credits N [--valid-days D]\n       creditsctl pack list",
     "'pack set' creates or replaces a pack; 'pack list' prints them all.\n\n"
     "  --credits N      credits a purchase of the pack grants\n"
     "  --valid-days D   days until they expire (default 90)\n",
     cmd_pack},
};
/* clang-format on */

static const size_t command_count = sizeof commands / sizeof commands[0];

static void print_command_list(FILE *out)
{
    fputs("Commands:\n", out);
    for (size_t i = 0; i < command_count; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

static void print_main_help(FILE *out)
{
    fputs("usage: creditsctl COMMAND [OPTIONS]\n"
          "       creditsctl --help | --version\n\n"
          "The operator's tool of credits-worker (contract v1).\n\n",
          out);
    print_command_list(out);
    fputs("\n'creditsctl COMMAND --help' describes a command.\n\n"
          "Settings, from the environment (creditsctl reads CREDITS_REDIS_URL,\n"
          "CREDITS_DATABASE_URL and CREDITS_PREFIX):\n",
          out);
    config_print_help(out);
    fputs("\nExit status: 0 done; 1 failed (cannot connect, database error, timeout);\n"
          "2 usage error.\n",
          out);
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < command_count; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: creditsctl COMMAND [OPTIONS]\n\n", stderr);
        print_command_list(stderr);
        return CTL_USAGE;
    }
    if (is_help(argv[1])) {
        print_main_help(stdout);
        return CTL_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("creditsctl %s (contract v%d)\n", CREDITS_VERSION, JOB_VERSION);
        return CTL_OK;
    }
    const struct command *command = find_command(argv[1]);
    if (!command) {
        fprintf(stderr, "creditsctl: unknown command '%s'\n\n", argv[1]);
        print_command_list(stderr);
        return CTL_USAGE;
    }
    struct ctl ctl;
    memset(&ctl, 0, sizeof ctl);
    ctl.command = command;
    snprintf(ctl.name, sizeof ctl.name, "%s", command->name);
    int rc = command->run(&ctl, argc - 2, argv + 2);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "creditsctl: cannot write the output: %s\n", strerror(errno));
        return CTL_FAIL;
    }
    return rc;
}
