/*
 * main.c -- credits-worker: settings from the defaults, an optional settings
 * file, the environment and flags (each overriding the one before), then the
 * event loop (worker.c). Bad settings: a message and exit status 2.
 */
#include <stdio.h>
#include <string.h>

#include "worker/common/config.h"
#include "worker/common/log.h"
#include "worker/daemon/worker.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: credits-worker [--config FILE] [--check-config] [--OPTION VALUE ...]\n"
                 "\n"
                 "Applies credit jobs from Redis Streams to the PostgreSQL ledger, each exactly\n"
                 "once, and publishes their results. Stops cleanly on SIGTERM or SIGINT.\n"
                 "\n"
                 "  --help                 show this help\n"
                 "  --version              show the version\n"
                 "  --config FILE          read settings from FILE (NAME=VALUE lines, # comments)\n"
                 "  --check-config         print the effective settings (secrets hidden) and exit\n"
                 "\n"
                 "Settings: the defaults, then FILE, then the environment, then flags, each\n"
                 "overriding the one before. Flag, variable, meaning:\n");
    config_print_help(out);
}

/* The value of --config, or NULL; -1 when --config has no value. */
static int find_config_file(int argc, char **argv, const char **path)
{
    *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") != 0)
            continue;
        if (i + 1 >= argc)
            return -1;
        *path = argv[i + 1];
    }
    return 0;
}

/* Applies the flags; returns -1 to exit with `status`. */
static int apply_flags(struct config *config, int argc, char **argv, bool *check_only, int *status)
{
    char errstr[512];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            *status = 0;
            return -1;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("credits-worker %s (contract v1)\n", CREDITS_VERSION);
            *status = 0;
            return -1;
        }
        if (strcmp(argv[i], "--check-config") == 0) {
            *check_only = true;
            continue;
        }
        if (i + 1 >= argc || strncmp(argv[i], "--", 2) != 0) {
            fprintf(stderr, "credits-worker: unexpected argument %s (see --help)\n", argv[i]);
            *status = 2;
            return -1;
        }
        if (strcmp(argv[i], "--config") != 0 &&
            config_set_flag(config, argv[i], argv[i + 1], errstr, sizeof errstr) != 0) {
            fprintf(stderr, "credits-worker: %s (see --help)\n", errstr);
            *status = 2;
            return -1;
        }
        i++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct config config;
    char errstr[512];
    const char *path = NULL;
    if (find_config_file(argc, argv, &path) != 0) {
        fprintf(stderr, "credits-worker: --config needs a file name (see --help)\n");
        return 2;
    }
    if (config_load(&config, path, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "credits-worker: %s\n", errstr);
        return 2;
    }
    bool check_only = false;
    int status = 0;
    if (apply_flags(&config, argc, argv, &check_only, &status) != 0)
        return status;
    if (check_only) {
        config_print(&config, stdout);
        return 0;
    }
    if (redis_url_resolve(&config.redis, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "credits-worker: %s\n", errstr);
        return 2;
    }
    log_set_level(config.log_level);
    log_set_format(config.log_format);
    return worker_run(&config);
}
