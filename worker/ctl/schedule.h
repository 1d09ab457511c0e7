/*
 * schedule.h -- `creditsctl schedule --period YYYY-MM`: the monthly
 * scheduler. Enqueues an allocate job for every account with a plan, with
 * the job ID alloc:{user}:{period}, so that a re-run for the same period is
 * harmless (the same IDs are replays).
 *
 * Owns paging through credits.accounts and pipelining the XADDs. The job
 * rules are core/'s; deciding the jobs is the worker's.
 */
#ifndef CREDITS_WORKER_CTL_SCHEDULE_H
#define CREDITS_WORKER_CTL_SCHEDULE_H

#include "worker/ctl/ctl.h"

/* Accounts read per page (keyset pagination) and XADDs per pipeline. */
#define SCHEDULE_PAGE_ROWS 1000
/* Skipped users named on stderr; the rest are only counted. */
#define SCHEDULE_SKIPS_SHOWN 10

extern const struct command schedule_command;

#endif
