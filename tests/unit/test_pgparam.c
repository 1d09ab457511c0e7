/*
 * test_pgparam.c -- unit tests of worker/daemon/pgparam.c: the exact bytes
 * of PostgreSQL's binary array format (what array_recv() reads) and of text
 * scalars.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "worker/daemon/pgparam.h"

#include "case_filter.h"

static void expect_bytes(const struct pgparam *p, const char *want, size_t want_len)
{
    assert_int_equal(p->format, 1);
    assert_int_equal(p->len, want_len);
    assert_memory_equal(p->data, want, want_len);
}

static void test_text_scalar_is_a_c_string_in_text_format(void **state)
{
    (void)state;
    struct pgparam p = {0};
    pgparam_text(&p, "9999-99");
    assert_int_equal(p.format, 0);
    assert_int_equal(p.len, 7);
    assert_string_equal(p.data, "9999-99");
    pgparam_text(&p, ""); /* reused: the old value is gone */
    assert_int_equal(p.len, 0);
    assert_string_equal(p.data, "");
    pgparam_free(&p);
    assert_null(p.data);
}

static void test_empty_array_has_no_dimensions(void **state)
{
    (void)state;
    struct pgparam p = {0};
    pgparam_array_begin(&p, PGPARAM_OID_TEXT);
    pgparam_array_end(&p);
    static const char want[] = "\0\0\0\0" /* dimensions */
                               "\0\0\0\0" /* no nulls */
                               "\0\0\0\x19";
    expect_bytes(&p, want, sizeof want - 1);
    pgparam_free(&p);
}

static void test_int8_array_is_big_endian_with_header(void **state)
{
    (void)state;
    struct pgparam p = {0};
    pgparam_array_begin(&p, PGPARAM_OID_INT8);
    pgparam_array_int(&p, 1);
    pgparam_array_int(&p, -2);
    pgparam_array_end(&p);
    static const char want[] = "\0\0\0\x01"                                  /* one dimension */
                               "\0\0\0\0"                                    /* no nulls */
                               "\0\0\0\x14"                                  /* int8 */
                               "\0\0\0\x02"                                  /* two elements */
                               "\0\0\0\x01"                                  /* lower bound 1 */
                               "\0\0\0\x08\0\0\0\0\0\0\0\x01"                /* 1 */
                               "\0\0\0\x08\xff\xff\xff\xff\xff\xff\xff\xfe"; /* -2 */
    expect_bytes(&p, want, sizeof want - 1);
    pgparam_free(&p);
}

static void test_null_element_sets_the_flag_and_length_minus_one(void **state)
{
    (void)state;
    struct pgparam p = {0};
    pgparam_array_begin(&p, PGPARAM_OID_TEXT);
    pgparam_array_text(&p, "ab");
    pgparam_array_text(&p, NULL);
    pgparam_array_end(&p);
    static const char want[] = "\0\0\0\x01"
                               "\0\0\0\x01" /* has nulls */
                               "\0\0\0\x19"
                               "\0\0\0\x02"
                               "\0\0\0\x01"
                               "\0\0\0\x02"
                               "ab"
                               "\xff\xff\xff\xff";
    expect_bytes(&p, want, sizeof want - 1);
    /* Reused for another array: the flag does not stick. */
    pgparam_array_begin(&p, PGPARAM_OID_TEXT);
    pgparam_array_text(&p, "c");
    pgparam_array_end(&p);
    assert_memory_equal(p.data + 4, "\0\0\0\0", 4);
    pgparam_free(&p);
}

static void test_bytea_elements_go_as_they_are(void **state)
{
    (void)state;
    struct pgparam p = {0};
    pgparam_array_begin(&p, PGPARAM_OID_BYTEA);
    pgparam_array_bytes(&p, "\0\xc1\n", 3);
    pgparam_array_bytes(&p, "", 0);
    pgparam_array_end(&p);
    static const char want[] = "\0\0\0\x01"
                               "\0\0\0\0"
                               "\0\0\0\x11" /* bytea */
                               "\0\0\0\x02"
                               "\0\0\0\x01"
                               "\0\0\0\x03\0\xc1\n"
                               "\0\0\0\0";
    expect_bytes(&p, want, sizeof want - 1);
    pgparam_free(&p);
}

static void test_timestamp_counts_from_2000(void **state)
{
    (void)state;
    struct pgparam p = {0};
    pgparam_array_begin(&p, PGPARAM_OID_TIMESTAMPTZ);
    pgparam_array_timestamp(&p, PGPARAM_EPOCH_OFFSET_US); /* 2000-01-01 */
    pgparam_array_timestamp(&p, 0);                       /* 1970-01-01 */
    pgparam_array_end(&p);
    static const char want[] = "\0\0\0\x01"
                               "\0\0\0\0"
                               "\0\0\x04\xa0" /* timestamptz, OID 1184 */
                               "\0\0\0\x02"
                               "\0\0\0\x01"
                               "\0\0\0\x08\0\0\0\0\0\0\0\0"
                               "\0\0\0\x08\xff\xfc\xa2\xfe\xc4\xc8\x20\x00";
    expect_bytes(&p, want, sizeof want - 1);
    pgparam_free(&p);
}

static void test_text_array_of_many_strings_grows(void **state)
{
    (void)state;
    enum { N = 3000 };
    static char names[N][8];
    const char *ptrs[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "u%d", i);
        ptrs[i] = names[i];
    }
    struct pgparam p = {0};
    pgparam_text_array(&p, ptrs, N);
    assert_true(p.cap >= p.len);
    /* Element count at offset 12, big-endian. */
    assert_memory_equal(p.data + 12, "\0\0\x0b\xb8", 4);
    /* The last element: length 5, "u2999". */
    assert_memory_equal(p.data + p.len - 9, "\0\0\0\x05u2999", 9);
    pgparam_free(&p);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_scalar_is_a_c_string_in_text_format),
        cmocka_unit_test(test_empty_array_has_no_dimensions),
        cmocka_unit_test(test_int8_array_is_big_endian_with_header),
        cmocka_unit_test(test_null_element_sets_the_flag_and_length_minus_one),
        cmocka_unit_test(test_bytea_elements_go_as_they_are),
        cmocka_unit_test(test_timestamp_counts_from_2000),
        cmocka_unit_test(test_text_array_of_many_strings_grows),
    };
    return case_filter_run("pgparam", tests, sizeof tests / sizeof tests[0], NULL, NULL, argc,
                           argv);
}
