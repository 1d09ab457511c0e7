/*
 * purchase.h -- the fields of a purchase job (contract section 2): a pack
 * from the catalog, paid once under `payment_ref`. The rule is in purchase.c.
 */
#ifndef CREDITS_CORE_TYPES_PURCHASE_H
#define CREDITS_CORE_TYPES_PURCHASE_H

#include "core/limits.h"

struct job_purchase {
    char pack[JOB_PACK_BYTES_MAX + 1];
    char payment_ref[JOB_PAYMENT_REF_BYTES_MAX + 1];
};

#endif
