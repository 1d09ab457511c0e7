/*
 * fuzz_util.h -- what the fuzz targets share: a CHECK that aborts with the
 * failed condition (libFuzzer saves the input), and a bounded byte reader
 * that turns the fuzzer's input into decisions (reads past the end give 0).
 */
#ifndef CREDITS_FUZZ_UTIL_H
#define CREDITS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: the input that got here is a finding. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct fuzz_bytes {
    const uint8_t *data;
    size_t size;
    size_t off;
};

static inline int fuzz_empty(const struct fuzz_bytes *in)
{
    return in->off >= in->size;
}

static inline uint8_t fuzz_u8(struct fuzz_bytes *in)
{
    return in->off < in->size ? in->data[in->off++] : 0;
}

/* n (<= 8) bytes, little-endian. */
static inline uint64_t fuzz_un(struct fuzz_bytes *in, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n && i < 8; i++)
        v |= (uint64_t)fuzz_u8(in) << (8 * i);
    return v;
}

#endif
