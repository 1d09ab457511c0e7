/*
 * limits.h -- the byte and value limits of the contract's jobs (sections 2
 * and 9.3), in one place for job.h and every type of core/types/.
 *
 * Owns the numbers only. Each string buffer sized from them has room for
 * the limit plus a terminating NUL (strings are NUL-free by validation).
 */
#ifndef CREDITS_CORE_LIMITS_H
#define CREDITS_CORE_LIMITS_H

#define JOB_VERSION 1

#define JOB_BYTES_MAX 4096
#define JOB_ID_BYTES_MAX 128
#define JOB_USER_BYTES_MAX 128
#define JOB_TOOL_BYTES_MAX 64
#define JOB_REF_BYTES_MAX 128
#define JOB_PACK_BYTES_MAX 64
#define JOB_PAYMENT_REF_BYTES_MAX 128
#define JOB_PLAN_BYTES_MAX 64
#define JOB_PERIOD_BYTES 7 /* "YYYY-MM" */
#define JOB_AMOUNT_MIN 1
#define JOB_AMOUNT_MAX 1000000000
#define RESULT_MESSAGE_BYTES_MAX 200

#endif
