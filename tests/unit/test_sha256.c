/*
 * test_sha256.c -- queue/sha256.c against the test vectors of FIPS 180-2
 * (appendix B: one block, two blocks, a million 'a's), the empty message,
 * lengths around the padding's boundaries fed in every split, and the hex
 * form. No network.
 */
#include "case_filter.h"

#include <stdlib.h>
#include <string.h>

#include "queue/sha256.h"

static void expect_hex(const void *bytes, size_t len, const char *hex)
{
    uint8_t digest[SHA256_DIGEST_BYTES];
    char text[SHA256_HEX_BYTES + 1];
    sha256_digest(bytes, len, digest);
    sha256_hex(digest, text);
    assert_string_equal(text, hex);
}

/* FIPS 180-2 appendix B.1: "abc", one block. */
static void test_fips_one_block(void **state)
{
    (void)state;
    expect_hex("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* Appendix B.2: 448 bits, so the padding takes a second block. */
static void test_fips_two_blocks(void **state)
{
    (void)state;
    static const char m[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect_hex(m, sizeof m - 1, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* Appendix B.3: one million 'a's, fed in uneven pieces. */
static void test_fips_million_a(void **state)
{
    (void)state;
    static const size_t total = 1000000;
    char *a = malloc(total);
    assert_non_null(a);
    memset(a, 'a', total);
    expect_hex(a, total, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    struct sha256 ctx;
    sha256_init(&ctx);
    for (size_t done = 0, piece = 1; done < total; piece = piece * 3 % 1000 + 1) {
        size_t n = piece < total - done ? piece : total - done;
        sha256_update(&ctx, a + done, n);
        done += n;
    }
    uint8_t digest[SHA256_DIGEST_BYTES];
    char hex[SHA256_HEX_BYTES + 1];
    sha256_final(&ctx, digest);
    sha256_hex(digest, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

static void test_empty_message(void **state)
{
    (void)state;
    expect_hex("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Every length from 0 to 200 (the padding's edges at 55, 56, 64, 119, 120)
 * gives the same digest whole and split at every point. */
static void test_splits_agree(void **state)
{
    (void)state;
    uint8_t bytes[200];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 7 + 1);
    for (size_t len = 0; len <= sizeof bytes; len++) {
        uint8_t whole[SHA256_DIGEST_BYTES];
        sha256_digest(bytes, len, whole);
        for (size_t cut = 0; cut <= len; cut++) {
            struct sha256 ctx;
            uint8_t split[SHA256_DIGEST_BYTES];
            sha256_init(&ctx);
            sha256_update(&ctx, bytes, cut);
            sha256_update(&ctx, bytes + cut, len - cut);
            sha256_final(&ctx, split);
            assert_memory_equal(whole, split, sizeof whole);
        }
    }
    /* 55 bytes: the last length whose padding fits in one block. */
    expect_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnop", 55,
               "aa353e009edbaebfc6e494c8d847696896cb8b398e0173a4b5c1b636292d87c7");
}

static void test_hex_is_lowercase(void **state)
{
    (void)state;
    uint8_t digest[SHA256_DIGEST_BYTES];
    for (int i = 0; i < SHA256_DIGEST_BYTES; i++)
        digest[i] = (uint8_t)(i * 8 + 0x0f);
    char hex[SHA256_HEX_BYTES + 1];
    sha256_hex(digest, hex);
    assert_int_equal(strlen(hex), SHA256_HEX_BYTES);
    assert_string_equal(hex, "0f171f272f373f474f575f676f777f878f979fa7afb7bfc7cfd7dfe7eff7ff07");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_one_block), cmocka_unit_test(test_fips_two_blocks),
        cmocka_unit_test(test_fips_million_a), cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_splits_agree),   cmocka_unit_test(test_hex_is_lowercase),
    };
    return case_filter_run("sha256", tests, sizeof tests / sizeof tests[0], NULL, NULL, argc, argv);
}
