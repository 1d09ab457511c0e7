/*
 * enqueue.c -- creditsctl consume | purchase | allocate | result: builds a
 * job from the flags, checks it with the worker's own codec, XADDs it to its
 * stream, optionally waits for the reply (BLPOP), and prints results as the
 * contract's JSON.
 */
#include "worker/ctl/enqueue.h"

#include <errno.h>
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

void enqueue_print_result_json(FILE *out, const struct result *r)
{
    struct json j;
    json_init(&j, out);
    json_object_begin(&j, NULL);
    json_int(&j, "v", JOB_VERSION);
    if (r->has_id)
        json_str(&j, "id", r->id);
    if (r->has_type)
        json_str(&j, "type", job_type_name(r->type));
    if (r->has_user)
        json_str(&j, "user", r->user);
    json_str(&j, "status", r->error == JOB_OK ? "applied" : "rejected");
    if (r->error != JOB_OK)
        json_str(&j, "error", job_error_name(r->error));
    if (r->message[0])
        json_str(&j, "message", r->message);
    if (result_has_balance(r)) {
        json_object_begin(&j, "balance");
        json_int(&j, "total", r->balance.total);
        json_int(&j, "pack", r->balance.pack);
        json_int(&j, "monthly", r->balance.monthly);
        json_object_end(&j);
    }
    if (result_has_charged(r))
        json_int(&j, "charged", r->charged);
    if (result_has_granted(r))
        json_int(&j, "granted", r->granted);
    if (result_has_forfeited(r))
        json_int(&j, "forfeited", r->forfeited);
    if (result_has_expires_at(r))
        json_int(&j, "expires_at", r->expires_at_ms);
    json_int(&j, "done_at", r->done_at_ms);
    json_bool(&j, "replayed", r->replayed);
    json_object_end(&j);
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

void enqueue_stream_key(const struct ctl *ctl, enum job_type type, char key[CTL_KEY_BYTES])
{
    char suffix[32];
    snprintf(suffix, sizeof suffix, "jobs:%s", job_type_name(type));
    config_key(&ctl->config, suffix, key, CTL_KEY_BYTES);
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
    enqueue_stream_key(ctl, job->type, key);
    const char *argv[5] = {"XADD", key, "*", "job", buf->data};
    size_t lens[5] = {4, strlen(key), 1, 3, buf->size};
    redisReply *reply = ctl_redis_run(ctl, redis, "enqueueing the job", 5, argv, lens);
    if (!reply)
        return CTL_FAIL;
    snprintf(entry, CTL_KEY_BYTES, "%s", reply->type == REDIS_REPLY_STRING ? reply->str : "");
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
        return ctl_failure(ctl, "cannot set the Redis timeout");
    const char *argv[3] = {"BLPOP", key, timeout};
    redisReply *reply = ctl_redis_run(ctl, redis, "waiting for the result", 3, argv, NULL);
    if (!reply)
        return CTL_FAIL;
    int rc;
    if (reply->type == REDIS_REPLY_NIL)
        rc = ctl_failure(ctl,
                         "no result for job %s within %" PRId64 " s (is credits-worker running?)",
                         id, wait_s);
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
    enqueue_stream_key(ctl, job->type, key);
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

static void job_start(struct job *job, enum job_type type)
{
    memset(job, 0, sizeof *job);
    job->type = type;
}

/* ------------------------------------------------------------------------ */
/* The commands                                                             */
/* ------------------------------------------------------------------------ */

/* consume --user U --amount N [--tool T] [--ref R] [job options] */
static int cmd_consume(struct ctl *ctl, int argc, char **argv)
{
    const char *user = NULL, *amount = NULL, *tool = NULL, *ref = NULL;
    struct job_opts o = {NULL, NULL, false, false};
    const struct opt opts[] = {{"user", &user, NULL, true},
                               {"amount", &amount, NULL, true},
                               {"tool", &tool, NULL, false},
                               {"ref", &ref, NULL, false},
                               JOB_OPTS(o)};
    const char *const names[] = {NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    struct job job;
    job_start(&job, JOB_CONSUME);
    if (ctl_flag_int64(ctl, "--amount", amount, INT64_MIN, INT64_MAX, &job.amount) != CTL_OK)
        return CTL_USAGE;
    job.has_tool = tool != NULL;
    job.has_ref = ref != NULL;
    if (!copy_field(ctl, "--user", user, job.user, sizeof job.user) ||
        (tool && !copy_field(ctl, "--tool", tool, job.tool, sizeof job.tool)) ||
        (ref && !copy_field(ctl, "--ref", ref, job.ref, sizeof job.ref)))
        return CTL_USAGE;
    return submit_job(ctl, &job, &o);
}

/* purchase --user U --pack P --payment-ref R [job options] */
static int cmd_purchase(struct ctl *ctl, int argc, char **argv)
{
    const char *user = NULL, *pack = NULL, *payment_ref = NULL;
    struct job_opts o = {NULL, NULL, false, false};
    const struct opt opts[] = {{"user", &user, NULL, true},
                               {"pack", &pack, NULL, true},
                               {"payment-ref", &payment_ref, NULL, true},
                               JOB_OPTS(o)};
    const char *const names[] = {NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, NULL);
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

/* allocate --user U --plan P --period YYYY-MM [job options] */
static int cmd_allocate(struct ctl *ctl, int argc, char **argv)
{
    const char *user = NULL, *plan = NULL, *period = NULL;
    struct job_opts o = {NULL, NULL, false, false};
    const struct opt opts[] = {{"user", &user, NULL, true},
                               {"plan", &plan, NULL, true},
                               {"period", &period, NULL, true},
                               JOB_OPTS(o)};
    const char *const names[] = {NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    struct job job;
    job_start(&job, JOB_ALLOCATE);
    if (strlen(period) != JOB_PERIOD_BYTES)
        return ctl_usage_error(ctl, "--period must be YYYY-MM (got \"%s\")", period);
    if (!copy_field(ctl, "--user", user, job.user, sizeof job.user) ||
        !copy_field(ctl, "--plan", plan, job.plan, sizeof job.plan) ||
        !copy_field(ctl, "--period", period, job.period, sizeof job.period))
        return CTL_USAGE;
    return submit_job(ctl, &job, &o);
}

/* GET {prefix}:result:{id} and print it. */
static int read_result(struct ctl *ctl, redisContext *redis, const char *id)
{
    char suffix[CTL_KEY_BYTES];
    char key[CTL_KEY_BYTES];
    snprintf(suffix, sizeof suffix, "result:%s", id);
    config_key(&ctl->config, suffix, key, sizeof key);
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
const struct command enqueue_consume_command = {
    "consume", "enqueue a consume job (spend credits)",
    "consume --user U --amount N [--tool T] [--ref R] [--id ID] [--wait] [--timeout S]\n"
    "                  [--json]",
    "Enqueues a consume job on {prefix}:jobs:consume.\n\n"
    "  --user U      the user ID: 1 to 128 printable ASCII characters\n"
    "  --amount N    credits to spend, 1 to 1000000000\n"
    "  --tool T      which tool spent them, at most 64 bytes (kept for history)\n"
    "  --ref R       the caller's reference, at most 128 bytes (kept for history)\n" JOB_OPTS_HELP,
    cmd_consume};

const struct command enqueue_purchase_command = {
    "purchase", "enqueue a purchase job (grant a pack)",
    "purchase --user U --pack P --payment-ref R [--id ID] [--wait] [--timeout S]\n"
    "                  [--json]",
    "Enqueues a purchase job on {prefix}:jobs:purchase.\n\n"
    "  --user U          the user ID\n"
    "  --pack P          a pack ID from the catalog (see 'creditsctl pack list')\n"
    "  --payment-ref R   the payment's capture/order ID; one payment grants once\n" JOB_OPTS_HELP,
    cmd_purchase};

const struct command enqueue_allocate_command = {
    "allocate", "enqueue an allocate job (a plan's monthly credits)",
    "allocate --user U --plan P --period YYYY-MM [--id ID] [--wait] [--timeout S]\n"
    "                  [--json]",
    "Enqueues an allocate job on {prefix}:jobs:allocate. To allocate the month of\n"
    "every account with a plan, see 'creditsctl schedule'.\n\n"
    "  --user U            the user ID\n"
    "  --plan P            a plan ID from the catalog (see 'creditsctl plan list')\n"
    "  --period YYYY-MM    the billing month\n" JOB_OPTS_HELP,
    cmd_allocate};

const struct command enqueue_result_command = {
    "result", "print the stored result of a job as JSON", "result ID [--json]",
    "Prints the result stored under {prefix}:result:ID as one JSON line. Fails when\n"
    "there is none: the job is not decided yet, or its result expired.\n\n"
    "  --json   accepted for uniformity: a result is always printed as JSON\n",
    cmd_result};
/* clang-format on */
