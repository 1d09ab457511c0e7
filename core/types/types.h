/*
 * types.h -- the list of job types: one row per type, in wire-enum order.
 *
 * Owns the list only. Each row names the type's enum value and its file
 * under core/types/ (`consume` is core/types/consume.h with struct
 * job_consume, and consume.c with job_type_consume). job.h builds the enum
 * and the tagged union from this list; job_type.c builds the table.
 * core/types/README.md says how to add a type.
 */
#ifndef CREDITS_CORE_TYPES_TYPES_H
#define CREDITS_CORE_TYPES_TYPES_H

#include "core/types/allocate.h"
#include "core/types/cancel.h"
#include "core/types/capture.h"
#include "core/types/consume.h"
#include "core/types/grant.h"
#include "core/types/hold.h"
#include "core/types/purchase.h"
#include "core/types/refund.h"
#include "core/types/release.h"
#include "core/types/revoke.h"

/* X(enum value, name): the enum value's number is its row. */
#define JOB_TYPES(X)                                                                               \
    X(JOB_CONSUME, consume)                                                                        \
    X(JOB_PURCHASE, purchase)                                                                      \
    X(JOB_ALLOCATE, allocate)                                                                      \
    X(JOB_HOLD, hold)                                                                              \
    X(JOB_CAPTURE, capture)                                                                        \
    X(JOB_RELEASE, release)                                                                        \
    X(JOB_REFUND, refund)                                                                          \
    X(JOB_REVOKE, revoke)                                                                          \
    X(JOB_GRANT, grant)                                                                            \
    X(JOB_CANCEL, cancel)

#endif
