/*
 * main.c -- credits-worker: settings from the environment and flags, then
 * the event loop (worker.c). Bad settings: a message and exit status 2.
 */
#include <stdio.h>
#include <string.h>

#include "worker/config.h"
#include "worker/log.h"
#include "worker/worker.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: credits-worker [--check-config] [--OPTION VALUE ...]\n"
            "\n"
            "Applies credit jobs from Redis Streams to the PostgreSQL ledger, each exactly\n"
            "once, and publishes their results. Stops cleanly on SIGTERM or SIGINT.\n"
            "\n"
            "  --help                 show this help\n"
            "  --version              show the version\n"
            "  --check-config         print the effective settings (secrets hidden) and exit\n"
            "\n"
            "Settings (flag, environment variable; a flag overrides the variable):\n");
    config_print_help(out);
}

int main(int argc, char **argv)
{
    struct config config;
    char errstr[512];
    if (config_load_env(&config, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "credits-worker: %s\n", errstr);
        return 2;
    }
    bool check_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("credits-worker %s (contract v1)\n", CREDITS_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--check-config") == 0) {
            check_only = true;
            continue;
        }
        if (i + 1 >= argc || strncmp(argv[i], "--", 2) != 0) {
            fprintf(stderr, "credits-worker: unexpected argument %s (see --help)\n", argv[i]);
            return 2;
        }
        if (config_set_flag(&config, argv[i], argv[i + 1], errstr, sizeof errstr) != 0) {
            fprintf(stderr, "credits-worker: %s (see --help)\n", errstr);
            return 2;
        }
        i++;
    }
    if (check_only) {
        config_print(&config, stdout);
        return 0;
    }
    if (redis_url_resolve(&config.redis, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "credits-worker: %s\n", errstr);
        return 2;
    }
    log_set_level(config.log_level);
    return worker_run(&config);
}
