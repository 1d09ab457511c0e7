/*
 * release.h -- the fields of a release job (contract 9.3): give all of an
 * open hold's credits back. The rule is in release.c.
 */
#ifndef CREDITS_CORE_TYPES_RELEASE_H
#define CREDITS_CORE_TYPES_RELEASE_H

#include "core/limits.h"

struct job_release {
    char hold[JOB_ID_BYTES_MAX + 1]; /* the hold's job ID */
};

#endif
