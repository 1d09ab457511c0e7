/*
 * sha256.c -- SHA-256 as FIPS 180-4 section 6.2 describes it (sha256.h).
 *
 * Owns the compression function and the padding; nothing else. Written
 * from the standard's text: the constants are its K (the first 32 bits of
 * the fractional parts of the cube roots of the first 64 primes) and H(0)
 * (those of the square roots of the first 8 primes).
 */
#include "queue/sha256.h"

#include <string.h>

#include "core/assert.h"

static const uint32_t k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n)
{
    ASSERT(n > 0 && n < 32);
    return (x >> n) | (x << (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The message schedule W0..W63 of one block (6.2.2 step 1). */
static void schedule(const uint8_t block[SHA256_BLOCK_BYTES], uint32_t w[64])
{
    for (int t = 0; t < 16; t++)
        w[t] = load_be32(block + 4 * t);
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
}

/* Steps 2 to 4 of 6.2.2: one block into the state. */
static void compress(uint32_t state[8], const uint8_t block[SHA256_BLOCK_BYTES])
{
    uint32_t w[64], v[8];
    schedule(block, w);
    memcpy(v, state, sizeof v);
    for (int t = 0; t < 64; t++) {
        uint32_t e = v[4], a = v[0];
        uint32_t ch = (e & v[5]) ^ (~e & v[6]);
        uint32_t maj = (a & v[1]) ^ (a & v[2]) ^ (v[1] & v[2]);
        uint32_t t1 = v[7] + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ch + k[t] + w[t];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + maj;
        memmove(v + 1, v, 7 * sizeof v[0]);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        state[i] += v[i];
}

void sha256_init(struct sha256 *ctx)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    ASSERT(ctx != NULL);
    memcpy(ctx->state, h0, sizeof h0);
    ctx->total_bytes = 0;
    ctx->block_len = 0;
}

void sha256_update(struct sha256 *ctx, const void *bytes, size_t len)
{
    ASSERT(ctx != NULL && ctx->block_len < SHA256_BLOCK_BYTES);
    ASSERT(bytes != NULL || len == 0);
    const uint8_t *p = bytes;
    ctx->total_bytes += len;
    while (len > 0) {
        size_t take = SHA256_BLOCK_BYTES - ctx->block_len;
        if (take > len)
            take = len;
        memcpy(ctx->block + ctx->block_len, p, take);
        ctx->block_len += take;
        p += take;
        len -= take;
        if (ctx->block_len == SHA256_BLOCK_BYTES) {
            compress(ctx->state, ctx->block);
            ctx->block_len = 0;
        }
    }
}

/* 5.1.1: a 1 bit, zeros, and the length in bits as 64 bits big-endian. */
void sha256_final(struct sha256 *ctx, uint8_t digest[SHA256_DIGEST_BYTES])
{
    ASSERT(ctx != NULL && digest != NULL);
    uint64_t bits = ctx->total_bytes * 8;
    static const uint8_t one = 0x80, zero = 0;
    sha256_update(ctx, &one, 1);
    while (ctx->block_len != SHA256_BLOCK_BYTES - 8)
        sha256_update(ctx, &zero, 1);
    uint8_t length[8];
    for (int i = 0; i < 8; i++)
        length[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(ctx, length, sizeof length);
    ASSERT(ctx->block_len == 0);
    for (int i = 0; i < 8; i++)
        for (int b = 0; b < 4; b++)
            digest[4 * i + b] = (uint8_t)(ctx->state[i] >> (24 - 8 * b));
}

void sha256_digest(const void *bytes, size_t len, uint8_t digest[SHA256_DIGEST_BYTES])
{
    struct sha256 ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, bytes, len);
    sha256_final(&ctx, digest);
}

void sha256_hex(const uint8_t digest[SHA256_DIGEST_BYTES], char hex[SHA256_HEX_BYTES + 1])
{
    static const char digits[] = "0123456789abcdef";
    ASSERT(digest != NULL && hex != NULL);
    for (int i = 0; i < SHA256_DIGEST_BYTES; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 0x0f];
    }
    hex[SHA256_HEX_BYTES] = '\0';
}
