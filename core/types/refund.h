/*
 * refund.h -- the fields of a refund job (contract 9.3): give back `amount`
 * (absent: all that is left) of what an applied consume or capture spent.
 * The rule is in refund.c.
 */
#ifndef CREDITS_CORE_TYPES_REFUND_H
#define CREDITS_CORE_TYPES_REFUND_H

#include <stdbool.h>
#include <stdint.h>

#include "core/limits.h"

struct job_refund {
    char charge[JOB_ID_BYTES_MAX + 1]; /* the consume's or capture's job ID */
    bool has_amount;
    int64_t amount;
};

#endif
