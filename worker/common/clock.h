/*
 * clock.h -- the monotonic clock in milliseconds: for intervals, stalls and
 * deadlines, immune to the wall clock being set or stepped.
 */
#ifndef CREDITS_WORKER_COMMON_CLOCK_H
#define CREDITS_WORKER_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

#endif
