/*
 * consume.h -- the fields of a consume job (contract section 2): spend
 * `amount` credits, with the tool and the caller's reference kept for history.
 * The rule is in consume.c.
 */
#ifndef CREDITS_CORE_TYPES_CONSUME_H
#define CREDITS_CORE_TYPES_CONSUME_H

#include <stdbool.h>
#include <stdint.h>

#include "core/limits.h"

struct job_consume {
    int64_t amount;
    bool has_tool;
    bool has_ref;
    char tool[JOB_TOOL_BYTES_MAX + 1];
    char ref[JOB_REF_BYTES_MAX + 1];
};

#endif
