/*
 * config.h -- the settings of credits-worker and creditsctl (contract
 * section 8): one table of name, environment variable, default and bounds.
 *
 * Owns parsing and validation. Flags override the environment; the caller
 * maps its flags to setting names with config_set().
 */
#ifndef CREDITS_WORKER_COMMON_CONFIG_H
#define CREDITS_WORKER_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "queue/keys.h"
#include "queue/redis_url.h"

#define CONFIG_NAME_BYTES_MAX 64
_Static_assert(CONFIG_NAME_BYTES_MAX <= KEYS_PREFIX_BYTES_MAX, "every key of a prefix fits");
#define CONFIG_CONSUMER_BYTES_MAX 128
#define CONFIG_CONNINFO_BYTES_MAX 1024
/* An ID namespace: short enough to leave an ID room for its own part. */
#define CONFIG_ID_PREFIX_BYTES_MAX 64
_Static_assert(CONFIG_ID_PREFIX_BYTES_MAX < JOB_ID_BYTES_MAX, "an ID longer than its prefix fits");
/* The job ID prefix the worker keeps for its own jobs (contract 9.7). */
#define CONFIG_RESERVED_ID_PREFIX "expire:"

enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR,
};

enum log_format {
    LOG_FORMAT_LOGFMT = 0,
    LOG_FORMAT_JSON,
};

struct config {
    struct redis_url redis;                           /* CREDITS_REDIS_URL */
    char database_url[CONFIG_CONNINFO_BYTES_MAX + 1]; /* CREDITS_DATABASE_URL */
    char prefix[CONFIG_NAME_BYTES_MAX + 1];           /* CREDITS_PREFIX */
    char group[CONFIG_NAME_BYTES_MAX + 1];            /* CREDITS_GROUP */
    char consumer[CONFIG_CONSUMER_BYTES_MAX + 1];     /* CREDITS_CONSUMER */
    int64_t result_ttl_s;                             /* CREDITS_RESULT_TTL */
    int64_t results_maxlen;                           /* CREDITS_RESULTS_MAXLEN */
    int64_t dead_maxlen;                              /* CREDITS_DEAD_MAXLEN */
    int64_t batch_jobs_max;                           /* CREDITS_BATCH_MAX */
    int64_t block_ms;                                 /* CREDITS_BLOCK_MS */
    int64_t shutdown_timeout_ms;                      /* CREDITS_SHUTDOWN_TIMEOUT_MS */
    int64_t claim_idle_ms;                            /* CREDITS_CLAIM_IDLE_MS */
    int64_t max_deliveries;                           /* CREDITS_MAX_DELIVERIES */
    int64_t sweep_interval_ms;                        /* CREDITS_SWEEP_INTERVAL_MS */
    int64_t expiry_notice_days;                       /* CREDITS_EXPIRY_NOTICE_DAYS */
    int64_t events_maxlen;                            /* CREDITS_EVENTS_MAXLEN */
    int64_t events_retention_days;                    /* CREDITS_EVENTS_RETENTION_DAYS */
    enum log_level log_level;                         /* CREDITS_LOG_LEVEL */
    enum log_format log_format;                       /* CREDITS_LOG_FORMAT */
    char http_addr[CONFIG_NAME_BYTES_MAX + 1];        /* CREDITS_HTTP_ADDR; "" disables */
    int64_t http_connections_max;                     /* CREDITS_HTTP_CONNECTIONS_MAX */
    /* CREDITS_ID_PREFIXES: the prefix every job ID of each stream must
     * have; "" for no check (the default). */
    char id_prefixes[JOB_STREAM_COUNT][CONFIG_ID_PREFIX_BYTES_MAX + 1];
};

/* Fills every setting with its default, then applies the settings file
 * `path` (NULL: none; lines NAME=VALUE, '#' comments), then the environment.
 * 0, or -1 with a message for people in errstr (naming the setting). */
int config_load(struct config *config, const char *path, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* config_load() without a settings file: defaults, then the environment. */
int config_load_env(struct config *config, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Sets one setting by its variable name (e.g. "CREDITS_PREFIX") from text,
 * with the same checks as the environment. 0, or -1 with errstr. */
int config_set(struct config *config, const char *name, const char *value, char *errstr,
               size_t errstr_len) __attribute__((warn_unused_result));

/* Sets one setting by its flag ("--redis-url" for CREDITS_REDIS_URL).
 * 0; -1 for a bad value; -2 for an unknown flag; errstr says which. */
int config_set_flag(struct config *config, const char *flag, const char *value, char *errstr,
                    size_t errstr_len) __attribute__((warn_unused_result));

/* Prints "NAME=value" lines of the effective settings, secrets redacted. */
void config_print(const struct config *config, FILE *out);

/* Prints the settings table (variable, default, meaning) for --help. */
void config_print_help(FILE *out);

#endif
