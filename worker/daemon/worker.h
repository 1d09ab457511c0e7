/*
 * worker.h -- the credits worker's event loop: read jobs from Redis, decide
 * them in one PostgreSQL transaction per batch, publish the results,
 * acknowledge.
 *
 * Owns the order of those steps (commit before publish, publish before
 * XACK, dead letter before XACK), reconnecting with backoff, retrying
 * transient failures, isolating a job that fails its batch, and stopping
 * cleanly on SIGTERM/SIGINT. Does not own Redis (queue/) or SQL (store.c).
 */
#ifndef CREDITS_WORKER_DAEMON_WORKER_H
#define CREDITS_WORKER_DAEMON_WORKER_H

#include "worker/common/config.h"

#define WORKER_RETRIES_MAX 8 /* transient failures of one batch before splitting it */
#define WORKER_BACKOFF_MIN_MS 50
#define WORKER_BACKOFF_MAX_MS 10000
/* Jobs in a row that fail alone with the same SQLSTATE before the worker
 * stops blaming jobs: three different jobs refused for the same reason say
 * more about the database than about them (a misclassified error, a
 * trigger refusing everything). */
#define WORKER_BREAKER_FAILURES 3

/* Runs until stopped by SIGTERM/SIGINT. Returns the process exit status:
 * 0 after a clean stop, 1 when it could not start. */
int worker_run(const struct config *config);

#endif
