/*
 * grant.h -- the fields of a grant job (contract 9.3): credits given by
 * hand (support, a bonus, an upgrade's difference), expiring after
 * `valid_days` when given. The rule is in grant.c.
 */
#ifndef CREDITS_CORE_TYPES_GRANT_H
#define CREDITS_CORE_TYPES_GRANT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/limits.h"

#define JOB_REASON_BYTES_MAX 128

struct job_grant {
    int64_t amount;
    bool has_valid_days;
    bool has_reason;
    int64_t valid_days;
    char reason[JOB_REASON_BYTES_MAX + 1];
};

#endif
