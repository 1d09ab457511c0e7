/*
 * allocate.h -- the fields of an allocate job (contract section 2): a plan's
 * monthly credits for one billing month. The rule is in allocate.c.
 */
#ifndef CREDITS_CORE_TYPES_ALLOCATE_H
#define CREDITS_CORE_TYPES_ALLOCATE_H

#include "core/limits.h"

struct job_allocate {
    char plan[JOB_PLAN_BYTES_MAX + 1];
    char period[JOB_PERIOD_BYTES + 1];
};

#endif
