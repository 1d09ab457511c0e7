/*
 * capture.h -- the fields of a capture job (contract 9.3): charge the real
 * cost `amount` of an open hold and give the rest back. The rule is in
 * capture.c.
 */
#ifndef CREDITS_CORE_TYPES_CAPTURE_H
#define CREDITS_CORE_TYPES_CAPTURE_H

#include <stdint.h>

#include "core/limits.h"

struct job_capture {
    char hold[JOB_ID_BYTES_MAX + 1]; /* the hold's job ID */
    int64_t amount;
};

#endif
