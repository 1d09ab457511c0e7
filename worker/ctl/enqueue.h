/*
 * enqueue.h -- creditsctl's job commands: `consume`, `purchase` and
 * `allocate` enqueue a job (optionally waiting for its result), `result`
 * reads a stored one. Results are printed as the contract's JSON.
 *
 * Owns building, checking and enqueueing one job from the command line. The
 * job rules are core/'s (the same ones the worker applies); the machinery
 * of arguments and connections is ctl.h's.
 */
#ifndef CREDITS_WORKER_CTL_ENQUEUE_H
#define CREDITS_WORKER_CTL_ENQUEUE_H

#include <msgpack.h>
#include <stdio.h>

#include "core/job.h"
#include "worker/ctl/ctl.h"
#include "worker/ctl/json_out.h"

extern const struct command enqueue_result_command;

#define ENQUEUE_USAGE_BYTES 512
#define ENQUEUE_HELP_BYTES 2048

/* The command that enqueues one job type (`creditsctl consume ...`), its
 * flags, usage and help built from the type's field table. */
struct enqueue_job_command {
    struct command command;
    char usage[ENQUEUE_USAGE_BYTES];
    char help[ENQUEUE_HELP_BYTES];
};

void enqueue_job_command_init(struct enqueue_job_command *jc, enum job_type type);

/* "{prefix}:jobs:{stream}" into `key` (CTL_KEY_BYTES). */
void enqueue_stream_key(const struct ctl *ctl, enum job_stream stream, char key[CTL_KEY_BYTES]);

/*
 * Encodes `job` and reads it back with the worker's own rules, so that a job
 * the worker would reject as invalid is never enqueued. CTL_OK with the bytes
 * appended to `buf`; CTL_USAGE after printing why the job is invalid (quiet
 * true: no message); CTL_FAIL when out of memory.
 */
int enqueue_encode_checked(const struct ctl *ctl, const struct job *job, msgpack_sbuffer *buf,
                           bool quiet) __attribute__((warn_unused_result));

/* Prints a result as one JSON line, keys in the contract's order. */
void enqueue_print_result_json(FILE *out, const struct result *r);

/* Writes the same object as the value of `key` (NULL at the top or in an
 * array). */
void enqueue_result_json(struct json *j, const char *key, const struct result *r);

#endif
