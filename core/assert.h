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

/* Marks a branch that a correct program never takes (a switch's default on
 * an enum, say); taking it aborts. */
#define UNREACHABLE() assert_unreachable(__FILE__, __LINE__)

static inline _Noreturn void assert_unreachable(const char *file, int line)
{
    fprintf(stderr, "unreachable code reached (%s:%d)\n", file, line);
    abort();
}

#endif
