/*
 * assert.h -- ASSERT, on in every build (release included).
 *
 * For programmer errors only: bad input and operating errors are handled,
 * never asserted. The condition must have no side effects.
 */
#ifndef CREDITS_CORE_ASSERT_H
#define CREDITS_CORE_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "assertion failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define UNREACHABLE() ASSERT(0 && "unreachable")

#endif
