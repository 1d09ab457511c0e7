/*
 * hold.h -- the fields of a hold job (contract 9.3): reserve `amount`
 * credits for `ttl` seconds, until a capture or a release closes the hold.
 * The rule is in hold.c.
 */
#ifndef CREDITS_CORE_TYPES_HOLD_H
#define CREDITS_CORE_TYPES_HOLD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/limits.h"

struct job_hold {
    int64_t amount;
    bool has_ttl;
    bool has_tool;
    bool has_ref;
    int64_t ttl; /* seconds; HOLD_TTL_DEFAULT_S when absent */
    char tool[JOB_TOOL_BYTES_MAX + 1];
    char ref[JOB_REF_BYTES_MAX + 1];
};

#endif
