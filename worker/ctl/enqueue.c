/*
 * enqueue.c -- creditsctl consume | purchase | allocate | result: builds a
 * job from the flags, checks it with the worker's own codec, XADDs it to its
 * stream, optionally waits for the reply (BLPOP), and prints results as the
 * contract's JSON.
 */
#include "worker/ctl/enqueue.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>

#include "core/assert.h"
#include "core/codec.h"
#include "worker/ctl/json_out.h"

#define CTL_WAIT_DEFAULT_S 10
#define CTL_WAIT_MAX_S 3600
/* Random bytes in a generated job ID: "cli-" + 32 hex digits. */
#define CTL_ID_RANDOM_BYTES 16

_Static_assert(4 + 2 * CTL_ID_RANDOM_BYTES <= JOB_ID_BYTES_MAX, "generated IDs obey the ID rule");

/* ------------------------------------------------------------------------ */
/* Results as JSON                                                          */
/* ------------------------------------------------------------------------ */

void enqueue_result_json(struct json *j, const char *key, const struct result *r)
{
    ASSERT(j && r);
    json_object_begin(j, key);
    json_int(j, "v", JOB_VERSION);
    if (r->has_id)
        json_str(j, "id", r->id);
    if (r->has_type)
        json_str(j, "type", job_type_name(r->type));
    if (r->has_user)
        json_str(j, "user", r->user);
    json_str(j, "status", r->error == JOB_OK ? "applied" : "rejected");
    if (r->error != JOB_OK)
        json_str(j, "error", job_error_name(r->error));
    if (r->message[0])
        json_str(j, "message", r->message);
    if (result_has_balance(r)) {
        json_object_begin(j, "balance");
        json_int(j, "total", r->balance.total);
        json_int(j, "pack", r->balance.pack);
        json_int(j, "monthly", r->balance.monthly);
        json_int(j, "grant", r->balance.grant);
        json_int(j, "held", r->balance.held);
        json_object_end(j);
    }
    for (unsigned a = 0; a < RESULT_AMOUNT_COUNT; a++) {
        if (result_has_amount(r, (enum result_amount)a))
            json_int(j, result_amount_key((enum result_amount)a), r->amounts[a]);
    }
    json_int(j, "done_at", r->done_at_ms);
    json_bool(j, "replayed", r->replayed);
    json_object_end(j);
}

void enqueue_print_result_json(FILE *out, const struct result *r)
{
    struct json j;
    json_init(&j, out);
    enqueue_result_json(&j, NULL, r);
    json_finish(&j);
}

/* Decodes the msgpack result of job `id` (borrowed) and prints it. */
static int print_result_bytes(const struct ctl *ctl, const char *id, const char *bytes, size_t len)
{
    struct result result;
    if (codec_decode_result(bytes, len, &result) != 0)
        return ctl_failure(ctl, "the result stored for job %s is not a valid result (%zu bytes)",
                           id, len);
    enqueue_print_result_json(stdout, &result);
    return CTL_OK;
}

/* ------------------------------------------------------------------------ */
/* Enqueueing                                                               */
/* ------------------------------------------------------------------------ */

/* The options every job command shares. */
struct job_opts {
    const char *id;
    const char *timeout;
    bool wait;
    bool json;
};

/* clang-format off */
#define JOB_OPTS(o)                                                                                \
    {"id", &(o).id, NULL, false},                                                                  \
    {"wait", NULL, &(o).wait, false},                                                              \
    {"timeout", &(o).timeout, NULL, false},                                                        \
    CTL_OPT_JSON((o).json),                                                                        \
    CTL_OPT_END
/* clang-format on */

#define JOB_OPTS_HELP                                                                              \
    "  --id ID       the job ID, the dedupe key: 1 to 128 printable ASCII characters\n"            \
    "                (default: \"cli-\" and 32 random hex digits)\n"                               \
    "  --wait        ask for the result, wait for it and print it as one JSON line\n"              \
    "                (without --wait, the job ID is printed)\n"                                    \
    "  --timeout S   with --wait: seconds to wait, 1 to 3600 (default 10)\n"                       \
    "  --json        without --wait: print {\"id\", \"type\", \"stream\", \"entry\"} as JSON\n"

/* Copies a flag's value into a job field of `size` bytes. */
static bool copy_field(const struct ctl *ctl, const char *flag, const char *value, char *field,
                       size_t size)
{
    size_t len = strlen(value);
    if (len >= size) {
        ctl_usage_error(ctl, "%s is %zu bytes; the limit is %zu", flag, len, size - 1);
        return false;
    }
    memcpy(field, value, len + 1);
    return true;
}

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
        return ctl_failure(ctl, "cannot read /dev/urandom for a job ID: %s", strerror(errno));
    memcpy(out, "cli-", 4);
    for (size_t i = 0; i < sizeof bytes; i++)
        snprintf(out + 4 + 2 * i, 3, "%02x", bytes[i]);
    return CTL_OK;
}

void enqueue_stream_key(const struct ctl *ctl, enum job_stream stream, char key[CTL_KEY_BYTES])
{
    keys_stream(ctl->config.prefix, stream, key, CTL_KEY_BYTES);
}

int enqueue_encode_checked(const struct ctl *ctl, const struct job *job, msgpack_sbuffer *buf,
                           bool quiet)
{
    if (codec_encode_job(job, buf) != 0)
        return ctl_failure(ctl, "cannot encode the job (out of memory)");
    struct job decoded;
    struct result reject;
    enum job_error error = codec_decode_job(buf->data, buf->size, &decoded, &reject);
    if (error != JOB_OK)
        return quiet ? CTL_USAGE
                     : ctl_usage_error(ctl, "the worker would reject this job (%s): %s",
                                       job_error_name(error), reject.message);
    ASSERT(decoded.type == job->type);
    ASSERT(strcmp(decoded.id, job->id) == 0);
    ASSERT(decoded.reply == job->reply);
    return CTL_OK;
}

/* XADD {prefix}:jobs:{type} * job <bytes>; the new entry's ID into `entry`. */
static int xadd_job(struct ctl *ctl, redisContext *redis, const struct job *job,
                    const msgpack_sbuffer *buf, char entry[CTL_KEY_BYTES])
{
    char key[CTL_KEY_BYTES];
    enqueue_stream_key(ctl, job_type_ops(job->type)->stream, key);
    const char *argv[5] = {"XADD", key, "*", "job", buf->data};
    size_t lens[5] = {4, strlen(key), 1, 3, buf->size};
    redisReply *reply = ctl_redis_run(ctl, redis, "enqueueing the job", 5, argv, lens);
    if (!reply)
        return CTL_FAIL;
    snprintf(entry, CTL_KEY_BYTES, "%s", reply->type == REDIS_REPLY_STRING ? reply->str : "");
    freeReplyObject(reply);
    return CTL_OK;
}

/* No reply came. When a result is stored under the ID already, the job
 * most likely reused the ID of another with other fields: an id_conflict
 * gets no reply (it goes to P:results and P:dead only), so say so rather
 * than blame the worker. */
static int no_reply(struct ctl *ctl, redisContext *redis, const char *id, int64_t wait_s)
{
    char key[CTL_KEY_BYTES];
    keys_result(ctl->config.prefix, id, key, sizeof key);
    const char *argv[2] = {"EXISTS", key};
    redisReply *reply = ctl_redis_run(ctl, redis, "looking for a stored result", 2, argv, NULL);
    bool stored = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    freeReplyObject(reply);
    if (stored)
        return ctl_failure(ctl,
                           "no reply for job %s within %" PRId64 " s, but a result is stored under "
                           "this ID: if a job with other fields used it first, this one is an "
                           "id_conflict (see 'creditsctl result %s' and 'creditsctl dead list')",
                           id, wait_s, id);
    return ctl_failure(
        ctl, "no result for job %s within %" PRId64 " s (is credits-worker running?)", id, wait_s);
}

/* BLPOP {prefix}:reply:{id} for up to wait_s seconds; prints the result. */
static int wait_result(struct ctl *ctl, redisContext *redis, const char *id, int64_t wait_s)
{
    ASSERT(wait_s >= 1 && wait_s <= CTL_WAIT_MAX_S);
    char key[CTL_KEY_BYTES];
    char timeout[24];
    keys_reply(ctl->config.prefix, id, key, sizeof key);
    snprintf(timeout, sizeof timeout, "%" PRId64, wait_s);
    /* The socket waits longer than BLPOP, so a live server always answers. */
    struct timeval tv = {(time_t)(wait_s + CTL_REDIS_TIMEOUT_S), 0};
    if (redisSetTimeout(redis, tv) != REDIS_OK)
        return ctl_failure(ctl, "cannot set the Redis timeout");
    const char *argv[3] = {"BLPOP", key, timeout};
    redisReply *reply = ctl_redis_run(ctl, redis, "waiting for the result", 3, argv, NULL);
    if (!reply)
        return CTL_FAIL;
    int rc;
    if (reply->type == REDIS_REPLY_NIL)
        rc = no_reply(ctl, redis, id, wait_s);
    else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
             reply->element[1]->type == REDIS_REPLY_STRING)
        rc = print_result_bytes(ctl, id, reply->element[1]->str, reply->element[1]->len);
    else
        rc = ctl_failure(ctl, "unexpected reply to BLPOP (type %d)", reply->type);
    freeReplyObject(reply);
    return rc;
}

/* Without --wait: the job ID, or {"id","type","stream","entry"} as JSON. */
static void print_enqueued(const struct ctl *ctl, const struct job *job, const char *entry,
                           bool json)
{
    if (!json) {
        printf("%s\n", job->id);
        return;
    }
    char key[CTL_KEY_BYTES];
    enqueue_stream_key(ctl, job_type_ops(job->type)->stream, key);
    struct json j;
    json_init(&j, stdout);
    json_object_begin(&j, NULL);
    json_str(&j, "id", job->id);
    json_str(&j, "type", job_type_name(job->type));
    json_str(&j, "stream", key);
    json_str(&j, "entry", entry);
    json_object_end(&j);
    json_finish(&j);
}

static int enqueue(struct ctl *ctl, const struct job *job, const msgpack_sbuffer *buf,
                   int64_t wait_s, bool json)
{
    redisContext *redis = NULL;
    char entry[CTL_KEY_BYTES] = "";
    int rc = ctl_redis_open(ctl, &redis);
    if (rc == CTL_OK)
        rc = xadd_job(ctl, redis, job, buf, entry);
    if (rc == CTL_OK && !job->reply)
        print_enqueued(ctl, job, entry, json);
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
        return ctl_usage_error(ctl, "--timeout applies only with --wait");
    if (o->timeout &&
        ctl_flag_int64(ctl, "--timeout", o->timeout, 1, CTL_WAIT_MAX_S, &wait_s) != CTL_OK)
        return CTL_USAGE;
    if (o->id && !copy_field(ctl, "--id", o->id, job->id, sizeof job->id))
        return CTL_USAGE;
    if (!o->id && random_job_id(ctl, job->id, sizeof job->id) != CTL_OK)
        return CTL_FAIL;
    job->reply = o->wait;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    int rc = enqueue_encode_checked(ctl, job, &buf, false);
    if (rc == CTL_OK)
        rc = enqueue(ctl, job, &buf, wait_s, o->json);
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The job commands: one per job type, built from its field table           */
/* ------------------------------------------------------------------------ */

/* "payment_ref" -> "--payment-ref" */
static void flag_of(const struct job_field *field, char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "--%s", field->name);
    ASSERT(n > 2 && (size_t)n < out_len);
    for (char *p = out + 2; *p; p++)
        if (*p == '_')
            *p = '-';
}

/* "PAYMENT_REF": what a field's value is called in usage lines. */
static void metavar_of(const struct job_field *field, char *out, size_t out_len)
{
    bool period = field->kind == JOB_FIELD_STR && field->rule == JOB_STR_PERIOD;
    int n = snprintf(out, out_len, "%s", period ? "YYYY-MM" : field->name);
    ASSERT(n > 0 && (size_t)n < out_len);
    for (char *p = out; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
}

/* The worker's own words for a value it would refuse. */
static int reject_field(const struct ctl *ctl, const struct job_field *field)
{
    char message[RESULT_MESSAGE_BYTES_MAX + 1];
    job_field_rule_message(field, message, sizeof message);
    return ctl_usage_error(ctl, "the worker would reject this job (%s): %s",
                           job_error_name(JOB_ERR_INVALID_JOB), message);
}

/* Sets one field of `job` from its flag's text; CTL_USAGE after a message
 * naming the flag or the rule it breaks. */
static int set_field_from_flag(const struct ctl *ctl, struct job *job,
                               const struct job_field *field, const char *text, bool given)
{
    if (field->kind == JOB_FIELD_BOOL) {
        if (given)
            job_field_set_bool(job, field, true);
        return CTL_OK;
    }
    if (text == NULL)
        return CTL_OK; /* an optional field not given (required ones are checked) */
    if (field->kind == JOB_FIELD_INT) {
        char flag[CTL_NAME_BYTES + 4];
        flag_of(field, flag, sizeof flag);
        int64_t value;
        if (ctl_flag_int64(ctl, flag, text, INT64_MIN, INT64_MAX, &value) != CTL_OK)
            return CTL_USAGE;
        if (!job_field_int_is_valid(field, value))
            return reject_field(ctl, field);
        job_field_set_int(job, field, value);
        return CTL_OK;
    }
    ASSERT(field->kind == JOB_FIELD_STR);
    if (!job_field_str_is_valid(field, text, strlen(text)))
        return reject_field(ctl, field);
    job_field_set_str(job, field, text, strlen(text));
    return CTL_OK;
}

/* TYPE --user U <one flag per field> [job options] */
static int cmd_job(struct ctl *ctl, int argc, char **argv)
{
    enum job_type type;
    bool is_job_command = job_type_parse(ctl->command->name, strlen(ctl->command->name), &type);
    ASSERT(is_job_command); /* enqueue_job_command_init() named the command after its type */
    const struct job_type_ops *ops = job_type_ops(type);
    ASSERT(ops->field_count <= JOB_FIELDS_MAX);
    _Static_assert(1 + JOB_FIELDS_MAX + 5 <= OPT_COUNT_MAX, "a job command's options fit");
    const char *user = NULL;
    const char *values[JOB_FIELDS_MAX] = {NULL};
    bool given[JOB_FIELDS_MAX] = {false};
    char flags[JOB_FIELDS_MAX][CTL_NAME_BYTES + 4];
    struct job_opts o = {NULL, NULL, false, false};
    struct opt opts[OPT_COUNT_MAX];
    size_t n = 0;
    opts[n++] = (struct opt){"user", &user, NULL, true};
    for (size_t i = 0; i < ops->field_count; i++) {
        const struct job_field *field = &ops->fields[i];
        flag_of(field, flags[i], sizeof flags[i]);
        bool is_flag = field->kind == JOB_FIELD_BOOL;
        opts[n++] = (struct opt){flags[i] + 2, is_flag ? NULL : &values[i],
                                 is_flag ? &given[i] : NULL, !field->optional};
    }
    const struct opt job_opts[] = {JOB_OPTS(o)};
    memcpy(&opts[n], job_opts, sizeof job_opts);
    const char *const names[] = {NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    struct job job;
    memset(&job, 0, sizeof job);
    job.type = ops->type;
    if (!copy_field(ctl, "--user", user, job.user, sizeof job.user))
        return CTL_USAGE;
    for (size_t i = 0; i < ops->field_count; i++) {
        if (set_field_from_flag(ctl, &job, &ops->fields[i], values[i], given[i]) != CTL_OK)
            return CTL_USAGE;
    }
    return submit_job(ctl, &job, &o);
}

static void append(char *out, size_t out_len, size_t *used, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *out, size_t out_len, size_t *used, const char *format, ...)
{
    ASSERT(*used < out_len);
    va_list args;
    va_start(args, format);
    int n = vsnprintf(out + *used, out_len - *used, format, args);
    va_end(args);
    ASSERT(n >= 0 && (size_t)n < out_len - *used); /* the buffers hold the longest type */
    *used += (size_t)n;
}

/* "consume --user U --amount AMOUNT [--tool TOOL] ... [job options]" */
static void build_usage(const struct job_type_ops *ops, char *out, size_t out_len)
{
    size_t used = 0;
    append(out, out_len, &used, "%s --user U", ops->name);
    for (size_t i = 0; i < ops->field_count; i++) {
        const struct job_field *field = &ops->fields[i];
        char flag[CTL_NAME_BYTES + 4], metavar[CTL_NAME_BYTES];
        flag_of(field, flag, sizeof flag);
        metavar_of(field, metavar, sizeof metavar);
        if (field->kind == JOB_FIELD_BOOL)
            append(out, out_len, &used, " [%s]", flag);
        else if (field->optional)
            append(out, out_len, &used, " [%s %s]", flag, metavar);
        else
            append(out, out_len, &used, " %s %s", flag, metavar);
    }
    append(out, out_len, &used, "\n                  [--id ID] [--wait] [--timeout S] [--json]");
}

static void build_help(const struct job_type_ops *ops, char *out, size_t out_len)
{
    size_t used = 0;
    append(out, out_len, &used, "Enqueues a %s job on {prefix}:jobs:%s: %s.\n\n", ops->name,
           job_stream_name(ops->stream), ops->summary);
    append(out, out_len, &used,
           "  --user U      the user ID: 1 to 128 printable ASCII characters\n");
    for (size_t i = 0; i < ops->field_count; i++) {
        const struct job_field *field = &ops->fields[i];
        char flag[CTL_NAME_BYTES + 4], expected[120];
        flag_of(field, flag, sizeof flag);
        job_field_expected(field, expected, sizeof expected);
        append(out, out_len, &used, "  %-13s %s%s: %s\n", flag, field->optional ? "optional, " : "",
               field->help, expected);
    }
    append(out, out_len, &used, "%s", JOB_OPTS_HELP);
}

void enqueue_job_command_init(struct enqueue_job_command *jc, enum job_type type)
{
    ASSERT(jc != NULL);
    const struct job_type_ops *ops = job_type_ops(type);
    build_usage(ops, jc->usage, sizeof jc->usage);
    build_help(ops, jc->help, sizeof jc->help);
    jc->command = (struct command){
        .name = ops->name,
        .summary = ops->summary,
        .usage = jc->usage,
        .help = jc->help,
        .run = cmd_job,
    };
}

/* GET {prefix}:result:{id} and print it. */
static int read_result(struct ctl *ctl, redisContext *redis, const char *id)
{
    char key[CTL_KEY_BYTES];
    keys_result(ctl->config.prefix, id, key, sizeof key);
    const char *argv[2] = {"GET", key};
    redisReply *reply = ctl_redis_run(ctl, redis, "reading the result", 2, argv, NULL);
    int rc;
    if (!reply)
        rc = CTL_FAIL;
    else if (reply->type == REDIS_REPLY_NIL)
        rc = ctl_failure(ctl, "no result for job %s (not decided yet, or expired)", id);
    else if (reply->type == REDIS_REPLY_STRING)
        rc = print_result_bytes(ctl, id, reply->str, reply->len);
    else
        rc = ctl_failure(ctl, "%s is not a string (Redis type %d)", key, reply->type);
    freeReplyObject(reply);
    return rc;
}

/* result ID [--json] */
static int cmd_result(struct ctl *ctl, int argc, char **argv)
{
    bool json = false; /* accepted for uniformity: a result is always JSON */
    const struct opt opts[] = {CTL_OPT_JSON(json), CTL_OPT_END};
    const char *const names[] = {"ID", NULL};
    const char *id = NULL;
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, &id);
    if (rc != CTL_CONTINUE)
        return rc;
    if (!job_id_is_valid(id, strlen(id)))
        return ctl_usage_error(ctl, "a job ID is 1 to 128 printable ASCII characters, no spaces");
    redisContext *redis = NULL;
    rc = ctl_redis_open(ctl, &redis);
    if (rc != CTL_OK)
        return rc;
    rc = read_result(ctl, redis, id);
    redisFree(redis);
    return rc;
}

/* Help texts keep their own layout. */
/* clang-format off */
const struct command enqueue_result_command = {
    "result", "print the stored result of a job as JSON", "result ID [--json]",
    "Prints the result stored under {prefix}:result:ID as one JSON line. Fails when\n"
    "there is none: the job is not decided yet, or its result expired.\n\n"
    "  --json   accepted for uniformity: a result is always printed as JSON\n",
    cmd_result};
/* clang-format on */
