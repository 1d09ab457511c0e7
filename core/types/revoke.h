/*
 * revoke.h -- the fields of a revoke job (contract 9.3): take back what is
 * left of a pack whose payment was refunded or charged back. The rule is in
 * revoke.c.
 */
#ifndef CREDITS_CORE_TYPES_REVOKE_H
#define CREDITS_CORE_TYPES_REVOKE_H

#include "core/limits.h"

struct job_revoke {
    char payment_ref[JOB_PAYMENT_REF_BYTES_MAX + 1];
};

#endif
