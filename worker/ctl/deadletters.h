/*
 * deadletters.h -- `creditsctl dead list|show|retry|drop`: the operator's
 * view of the dead-letter stream {prefix}:dead (contract section 7).
 *
 * Owns reading dead letters (decoding their `job` bytes with the worker's
 * codec where possible), re-enqueueing one, or every one whose reason
 * starts with a text, on its job stream, and deleting one. Blocking
 * hiredis; no Postgres.
 */
#ifndef CREDITS_WORKER_CTL_DEADLETTERS_H
#define CREDITS_WORKER_CTL_DEADLETTERS_H

#include "worker/ctl/ctl.h"

#define DEAD_LIST_LIMIT_DEFAULT 50
#define DEAD_LIST_LIMIT_MAX 1000

extern const struct command dead_command;

#endif
