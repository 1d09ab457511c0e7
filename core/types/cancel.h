/*
 * cancel.h -- the fields of a cancel job (contract 9.3): the subscription
 * ends; with `forfeit`, the usable monthly credits go too. The rule is in
 * cancel.c.
 */
#ifndef CREDITS_CORE_TYPES_CANCEL_H
#define CREDITS_CORE_TYPES_CANCEL_H

#include <stdbool.h>

struct job_cancel {
    bool has_forfeit;
    bool forfeit;
};

#endif
