/*
 * sha256.h -- SHA-256 (FIPS 180-4), incremental: the digest a dead letter
 * carries of the original job bytes (`job_sha256`), computed while the
 * queue copies the first bytes out of a reply.
 *
 * Owns the hash and its lowercase hex form; pure (no I/O, no allocation).
 * Not for secrets: nothing here is constant-time or wiped after use.
 */
#ifndef CREDITS_QUEUE_SHA256_H
#define CREDITS_QUEUE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_BYTES 32
#define SHA256_HEX_BYTES (2 * SHA256_DIGEST_BYTES) /* without the NUL */
#define SHA256_BLOCK_BYTES 64

struct sha256 {
    uint32_t state[8];
    uint64_t total_bytes;
    uint8_t block[SHA256_BLOCK_BYTES];
    size_t block_len; /* bytes waiting in block, < SHA256_BLOCK_BYTES */
};

void sha256_init(struct sha256 *ctx);

/* Hashes len more bytes (borrowed until return). */
void sha256_update(struct sha256 *ctx, const void *bytes, size_t len);

/* Pads, writes the digest; ctx must be initialised again before reuse. */
void sha256_final(struct sha256 *ctx, uint8_t digest[SHA256_DIGEST_BYTES]);

/* The digest of `len` bytes in one call. */
void sha256_digest(const void *bytes, size_t len, uint8_t digest[SHA256_DIGEST_BYTES]);

/* Lowercase hex of a digest, NUL-terminated. */
void sha256_hex(const uint8_t digest[SHA256_DIGEST_BYTES], char hex[SHA256_HEX_BYTES + 1]);

#endif
