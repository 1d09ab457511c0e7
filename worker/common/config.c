/*
 * config.c -- the settings table: every setting's variable, default, bounds
 * and meaning in one place. Parsing and validation; no I/O but getenv.
 */
#include "worker/common/config.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/assert.h"

enum setting_kind {
    SETTING_INT,         /* int64_t within [min, max] */
    SETTING_NAME,        /* a key-safe name: 1..max printable ASCII bytes, no ':' */
    SETTING_TEXT,        /* any text up to max bytes, may be empty */
    SETTING_CONNINFO,    /* a libpq connection string, URI or database name; may be empty */
    SETTING_REDIS_URL,   /* struct redis_url */
    SETTING_LOG_LEVEL,   /* enum log_level */
    SETTING_LOG_FORMAT,  /* enum log_format */
    SETTING_ID_PREFIXES, /* stream=prefix,... into config->id_prefixes */
};

struct setting {
    const char *name;
    enum setting_kind kind;
    size_t offset;
    const char *default_value; /* NULL: computed (CREDITS_CONSUMER) */
    int64_t min;
    int64_t max;
    bool secret;
    const char *help;
};

#define FIELD(f) offsetof(struct config, f)

static const struct setting settings[] = {
    {"CREDITS_REDIS_URL", SETTING_REDIS_URL, FIELD(redis), "redis://127.0.0.1:6379", 0, 0, true,
     "Redis: redis://[[user]:password@]host[:port][/db] or unix://[[user]:password@]/path[?db=N]"},
    {"CREDITS_DATABASE_URL", SETTING_CONNINFO, FIELD(database_url), "", 0,
     CONFIG_CONNINFO_BYTES_MAX, true,
     "PostgreSQL conninfo or URI; empty: libpq defaults and PG* variables"},
    {"CREDITS_PREFIX", SETTING_NAME, FIELD(prefix), "credits", 1, CONFIG_NAME_BYTES_MAX, false,
     "prefix of every Redis key"},
    {"CREDITS_GROUP", SETTING_NAME, FIELD(group), "credits-worker", 1, CONFIG_NAME_BYTES_MAX, false,
     "consumer group on the job streams"},
    {"CREDITS_CONSUMER", SETTING_NAME, FIELD(consumer), NULL, 1, CONFIG_CONSUMER_BYTES_MAX, false,
     "consumer name in the group; unique per worker"},
    {"CREDITS_RESULT_TTL", SETTING_INT, FIELD(result_ttl_s), "86400", 1, INT64_C(315360000), false,
     "seconds a result key lives"},
    {"CREDITS_RESULTS_MAXLEN", SETTING_INT, FIELD(results_maxlen), "100000", 1, INT64_C(1000000000),
     false, "approximate length kept of the results stream"},
    {"CREDITS_DEAD_MAXLEN", SETTING_INT, FIELD(dead_maxlen), "100000", 1, INT64_C(1000000000),
     false, "approximate length kept of the dead-letter stream"},
    {"CREDITS_BATCH_MAX", SETTING_INT, FIELD(batch_jobs_max), "1024", 1, 4096, false,
     "most jobs read and applied in one database transaction (1: one job per transaction)"},
    {"CREDITS_BLOCK_MS", SETTING_INT, FIELD(block_ms), "1000", 1, 60000, false,
     "how long one read waits for new jobs"},
    {"CREDITS_SHUTDOWN_TIMEOUT_MS", SETTING_INT, FIELD(shutdown_timeout_ms), "10000", 100,
     INT64_C(3600000), false, "on SIGTERM, how long to finish the work in flight"},
    {"CREDITS_CLAIM_IDLE_MS", SETTING_INT, FIELD(claim_idle_ms), "60000", 1000, INT64_C(86400000),
     false, "entries pending this long with another consumer are taken over (a dead worker's)"},
    {"CREDITS_MAX_DELIVERIES", SETTING_INT, FIELD(max_deliveries), "10", 1, 1000, false,
     "deliveries of one entry without a decision before it is dead-lettered"},
    {"CREDITS_LOG_LEVEL", SETTING_LOG_LEVEL, FIELD(log_level), "info", 0, 0, false,
     "debug, info, warn or error"},
    {"CREDITS_LOG_FORMAT", SETTING_LOG_FORMAT, FIELD(log_format), "logfmt", 0, 0, false,
     "logfmt or json: one line per event on stderr"},
    {"CREDITS_HTTP_ADDR", SETTING_TEXT, FIELD(http_addr), "127.0.0.1:9464", 0,
     CONFIG_NAME_BYTES_MAX, false, "host:port of /metrics, /healthz and /readyz; empty: off"},
    {"CREDITS_HTTP_CONNECTIONS_MAX", SETTING_INT, FIELD(http_connections_max), "64", 1, 1024, false,
     "most HTTP connections open at once (each closed 5 s after it was accepted)"},
    {"CREDITS_ID_PREFIXES", SETTING_ID_PREFIXES, FIELD(id_prefixes), "", 0, 0, false,
     "job ID namespaces per stream, e.g. consume=web:,purchase=pay:,allocate=alloc:; empty: none"},
    {"CREDITS_SWEEP_INTERVAL_MS", SETTING_INT, FIELD(sweep_interval_ms), "10000", 0,
     INT64_C(86400000), false,
     "how often the sweep releases expired holds, writes off expired lots and announces expiring "
     "ones (one worker at a time); 0: off"},
    {"CREDITS_EXPIRY_NOTICE_DAYS", SETTING_INT, FIELD(expiry_notice_days), "7", 0, 3650, false,
     "credits_expiring comes this many days before a lot expires; 0: never"},
    {"CREDITS_EVENTS_MAXLEN", SETTING_INT, FIELD(events_maxlen), "100000", 1, INT64_C(1000000000),
     false, "approximate length kept of the events stream"},
    {"CREDITS_EVENTS_RETENTION_DAYS", SETTING_INT, FIELD(events_retention_days), "30", 1, 36500,
     false, "published events are deleted from credits.events after this many days"},
};

#define SETTING_COUNT (sizeof settings / sizeof settings[0])

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};
static const char *const log_format_names[] = {"logfmt", "json"};

static int set_int(const struct setting *s, void *field, const char *value, char *errstr,
                   size_t errstr_len)
{
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || parsed < s->min || parsed > s->max) {
        snprintf(errstr, errstr_len, "%s must be a whole number from %lld to %lld (got \"%s\")",
                 s->name, (long long)s->min, (long long)s->max, value);
        return -1;
    }
    *(int64_t *)field = parsed;
    return 0;
}

static int set_text(const struct setting *s, char *field, const char *value, char *errstr,
                    size_t errstr_len)
{
    size_t len = strlen(value);
    if (len > (size_t)s->max) {
        snprintf(errstr, errstr_len, "%s is %zu bytes; the limit is %lld", s->name, len,
                 (long long)s->max);
        return -1;
    }
    if (s->kind == SETTING_NAME) {
        bool ok = len >= (size_t)s->min;
        for (size_t i = 0; ok && i < len; i++)
            ok = value[i] > 0x20 && value[i] < 0x7f && value[i] != ':';
        if (!ok) {
            snprintf(errstr, errstr_len,
                     "%s must be 1 to %lld printable ASCII characters without spaces or ':' "
                     "(got \"%s\")",
                     s->name, (long long)s->max, value);
            return -1;
        }
    }
    memcpy(field, value, len + 1);
    return 0;
}

/* libpq's own rule (expand_dbname): a value holding '=' or starting with a
 * postgresql:// or postgres:// URI is a connection string, anything else a
 * database name. */
static bool conninfo_is_valid(const char *value)
{
    bool is_uri = strncmp(value, "postgresql://", strlen("postgresql://")) == 0 ||
                  strncmp(value, "postgres://", strlen("postgres://")) == 0;
    if (!is_uri && !strchr(value, '='))
        return true;
    char *reason = NULL;
    PQconninfoOption *options = PQconninfoParse(value, &reason);
    /* libpq's reason quotes the token it could not parse, which may be the
     * password: it is never shown. */
    PQfreemem(reason);
    if (!options)
        return false;
    PQconninfoFree(options);
    return true;
}

/* Checked at start-up, so that a malformed value is refused once, without
 * echoing it, instead of failing (and being quoted by libpq) at every
 * connect. */
static int set_conninfo(const struct setting *s, char *field, const char *value, char *errstr,
                        size_t errstr_len)
{
    if (!conninfo_is_valid(value)) {
        snprintf(errstr, errstr_len, "%s is not a valid connection string", s->name);
        return -1;
    }
    return set_text(s, field, value, errstr, errstr_len);
}

static int set_log_level(const struct setting *s, enum log_level *field, const char *value,
                         char *errstr, size_t errstr_len)
{
    for (size_t i = 0; i < sizeof log_level_names / sizeof log_level_names[0]; i++) {
        if (strcmp(value, log_level_names[i]) == 0) {
            *field = (enum log_level)i;
            return 0;
        }
    }
    snprintf(errstr, errstr_len, "%s must be debug, info, warn or error (got \"%s\")", s->name,
             value);
    return -1;
}

static int set_log_format(const struct setting *s, enum log_format *field, const char *value,
                          char *errstr, size_t errstr_len)
{
    for (size_t i = 0; i < sizeof log_format_names / sizeof log_format_names[0]; i++) {
        if (strcmp(value, log_format_names[i]) == 0) {
            *field = (enum log_format)i;
            return 0;
        }
    }
    snprintf(errstr, errstr_len, "%s must be logfmt or json (got \"%s\")", s->name, value);
    return -1;
}

typedef char id_prefix_table[JOB_STREAM_COUNT][CONFIG_ID_PREFIX_BYTES_MAX + 1];

/* One "stream=prefix" of CREDITS_ID_PREFIXES (`len` bytes, no NUL). */
static int set_id_prefix(const struct setting *s, id_prefix_table prefixes, const char *pair,
                         size_t len, char *errstr, size_t errstr_len)
{
    const char *eq = memchr(pair, '=', len);
    enum job_stream stream = JOB_STREAM_CONSUME;
    bool known = false;
    for (int i = 0; eq && i < JOB_STREAM_COUNT && !known; i++) {
        const char *name = job_stream_name((enum job_stream)i);
        known = strlen(name) == (size_t)(eq - pair) && memcmp(pair, name, strlen(name)) == 0;
        stream = (enum job_stream)i;
    }
    if (!known) {
        snprintf(errstr, errstr_len,
                 "%s: \"%.*s\" is not stream=prefix with a stream of consume, "
                 "purchase or allocate",
                 s->name, (int)len, pair);
        return -1;
    }
    const char *prefix = eq + 1;
    size_t n = len - (size_t)(prefix - pair);
    bool ok = n >= 1 && n <= CONFIG_ID_PREFIX_BYTES_MAX && prefixes[stream][0] == '\0';
    for (size_t i = 0; ok && i < n; i++)
        ok = prefix[i] >= 0x21 && prefix[i] <= 0x7e;
    if (!ok || strncmp(prefix, CONFIG_RESERVED_ID_PREFIX, strlen(CONFIG_RESERVED_ID_PREFIX)) == 0) {
        snprintf(errstr, errstr_len,
                 "%s: the prefix of %s must be given once, 1 to %d printable "
                 "ASCII characters without spaces, and not start with the reserved '%s' "
                 "(got \"%.*s\")",
                 s->name, job_stream_name(stream), CONFIG_ID_PREFIX_BYTES_MAX,
                 CONFIG_RESERVED_ID_PREFIX, (int)len, pair);
        return -1;
    }
    memcpy(prefixes[stream], prefix, n);
    prefixes[stream][n] = '\0';
    return 0;
}

/* "consume=web:,purchase=pay:": comma-separated, each stream at most once;
 * "" for none. Nothing is changed when the value is refused. */
static int set_id_prefixes(const struct setting *s, id_prefix_table field, const char *value,
                           char *errstr, size_t errstr_len)
{
    id_prefix_table prefixes;
    memset(prefixes, 0, sizeof prefixes);
    const char *at = value;
    while (value[0] != '\0') {
        const char *comma = strchr(at, ',');
        size_t len = comma ? (size_t)(comma - at) : strlen(at);
        if (set_id_prefix(s, prefixes, at, len, errstr, errstr_len) != 0)
            return -1;
        if (!comma)
            break;
        at = comma + 1;
    }
    memcpy(field, prefixes, sizeof prefixes);
    return 0;
}

static int apply_setting(struct config *config, const struct setting *s, const char *value,
                         char *errstr, size_t errstr_len)
{
    void *field = (char *)config + s->offset;
    switch (s->kind) {
    case SETTING_INT:
        return set_int(s, field, value, errstr, errstr_len);
    case SETTING_NAME:
    case SETTING_TEXT:
        return set_text(s, field, value, errstr, errstr_len);
    case SETTING_CONNINFO:
        return set_conninfo(s, field, value, errstr, errstr_len);
    case SETTING_REDIS_URL: {
        char reason[160];
        if (redis_url_parse(value, field, reason, sizeof reason) != 0) {
            snprintf(errstr, errstr_len, "%s: %s", s->name, reason);
            return -1;
        }
        return 0;
    }
    case SETTING_LOG_LEVEL:
        return set_log_level(s, field, value, errstr, errstr_len);
    case SETTING_LOG_FORMAT:
        return set_log_format(s, field, value, errstr, errstr_len);
    case SETTING_ID_PREFIXES:
        return set_id_prefixes(s, field, value, errstr, errstr_len);
    }
    UNREACHABLE();
}

static const struct setting *find_setting(const char *name)
{
    for (size_t i = 0; i < SETTING_COUNT; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

int config_set(struct config *config, const char *name, const char *value, char *errstr,
               size_t errstr_len)
{
    ASSERT(config && name && value);
    const struct setting *s = find_setting(name);
    ASSERT(s != NULL);
    return apply_setting(config, s, value, errstr, errstr_len);
}

/* "--redis-url" <-> "CREDITS_REDIS_URL": the flag of every setting. */
static void flag_of(const struct setting *s, char *out, size_t out_len)
{
    const char *rest = s->name + strlen("CREDITS_");
    size_t n = (size_t)snprintf(out, out_len, "--");
    for (; *rest != '\0' && n + 1 < out_len; rest++)
        out[n++] = *rest == '_' ? '-' : (char)tolower((unsigned char)*rest);
    out[n] = '\0';
}

int config_set_flag(struct config *config, const char *flag, const char *value, char *errstr,
                    size_t errstr_len)
{
    ASSERT(config && flag && value);
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        char name[CONFIG_NAME_BYTES_MAX];
        flag_of(&settings[i], name, sizeof name);
        if (strcmp(name, flag) == 0)
            return apply_setting(config, &settings[i], value, errstr, errstr_len);
    }
    snprintf(errstr, errstr_len, "unknown option %s", flag);
    return -2;
}

static void default_consumer(char *out, size_t out_len)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
        strcpy(host, "worker");
    /* Keep only characters a consumer name may hold. */
    size_t n = 0;
    for (size_t i = 0; host[i] != '\0' && n + 1 < out_len; i++)
        if (host[i] > 0x20 && host[i] < 0x7f && host[i] != ':')
            out[n++] = host[i];
    out[n] = '\0';
    if (n == 0)
        snprintf(out, out_len, "worker");
}

static void set_defaults(struct config *config)
{
    memset(config, 0, sizeof *config);
    char errstr[256];
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const struct setting *s = &settings[i];
        if (!s->default_value) {
            ASSERT(s->offset == FIELD(consumer));
            default_consumer(config->consumer, sizeof config->consumer);
            continue;
        }
        int rc = apply_setting(config, s, s->default_value, errstr, sizeof errstr);
        ASSERT(rc == 0);
    }
}

/* One "NAME=VALUE" line of a settings file; blank lines and '#' comments
 * are skipped. Quotes are not special: the value is the rest of the line. */
static int apply_file_line(struct config *config, char *line, const char *path, int lineno,
                           char *errstr, size_t errstr_len)
{
    line[strcspn(line, "\r\n")] = '\0';
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    char *eq = strchr(p, '=');
    if (!eq) {
        snprintf(errstr, errstr_len, "%s:%d: expected NAME=VALUE", path, lineno);
        return -1;
    }
    *eq = '\0';
    const struct setting *s = find_setting(p);
    if (!s) {
        snprintf(errstr, errstr_len, "%s:%d: unknown setting %s", path, lineno, p);
        return -1;
    }
    char reason[512];
    if (apply_setting(config, s, eq + 1, reason, sizeof reason) != 0) {
        snprintf(errstr, errstr_len, "%s:%d: %s", path, lineno, reason);
        return -1;
    }
    return 0;
}

static int load_file(struct config *config, const char *path, char *errstr, size_t errstr_len)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        snprintf(errstr, errstr_len, "cannot read the settings file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[CONFIG_CONNINFO_BYTES_MAX + 64];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, in))
        rc = apply_file_line(config, line, path, ++lineno, errstr, errstr_len);
    fclose(in);
    return rc;
}

int config_load(struct config *config, const char *path, char *errstr, size_t errstr_len)
{
    ASSERT(config && errstr);
    set_defaults(config);
    if (path && load_file(config, path, errstr, errstr_len) != 0)
        return -1;
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const struct setting *s = &settings[i];
        const char *value = getenv(s->name);
        bool may_be_empty = s->kind == SETTING_TEXT || s->kind == SETTING_CONNINFO ||
                            s->kind == SETTING_ID_PREFIXES;
        if (!value || (value[0] == '\0' && !may_be_empty))
            continue;
        if (apply_setting(config, s, value, errstr, errstr_len) != 0)
            return -1;
    }
    return 0;
}

int config_load_env(struct config *config, char *errstr, size_t errstr_len)
{
    return config_load(config, NULL, errstr, errstr_len);
}

static void print_value(const struct config *config, const struct setting *s, FILE *out)
{
    const void *field = (const char *)config + s->offset;
    switch (s->kind) {
    case SETTING_INT:
        fprintf(out, "%lld", (long long)*(const int64_t *)field);
        return;
    case SETTING_NAME:
        fputs((const char *)field, out);
        return;
    case SETTING_TEXT:
    case SETTING_CONNINFO:
        /* A conninfo may carry a password anywhere in it: show only whether it is set. */
        if (s->secret)
            fputs(((const char *)field)[0] ? "(set, not shown)" : "", out);
        else
            fputs((const char *)field, out);
        return;
    case SETTING_REDIS_URL: {
        char redacted[600];
        redis_url_redacted(field, redacted, sizeof redacted);
        fputs(redacted, out);
        return;
    }
    case SETTING_LOG_LEVEL:
        fputs(log_level_names[*(const enum log_level *)field], out);
        return;
    case SETTING_LOG_FORMAT:
        fputs(log_format_names[*(const enum log_format *)field], out);
        return;
    case SETTING_ID_PREFIXES: {
        const char(*prefixes)[CONFIG_ID_PREFIX_BYTES_MAX + 1] = field;
        const char *sep = "";
        for (int i = 0; i < JOB_STREAM_COUNT; i++) {
            if (prefixes[i][0] == '\0')
                continue;
            fprintf(out, "%s%s=%s", sep, job_stream_name((enum job_stream)i), prefixes[i]);
            sep = ",";
        }
        return;
    }
    }
    UNREACHABLE();
}

void config_print(const struct config *config, FILE *out)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        fprintf(out, "%s=", settings[i].name);
        print_value(config, &settings[i], out);
        fputc('\n', out);
    }
}

void config_print_help(FILE *out)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const struct setting *s = &settings[i];
        char flag[CONFIG_NAME_BYTES_MAX];
        flag_of(s, flag, sizeof flag);
        fprintf(out, "  %-22s %-28s %s (default: %s)\n", flag, s->name, s->help,
                s->default_value ? (s->default_value[0] ? s->default_value : "empty")
                                 : "the host name");
    }
}
