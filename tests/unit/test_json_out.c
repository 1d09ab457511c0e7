/*
 * test_json_out.c -- creditsctl's JSON writer (worker/ctl/json_out.c) into
 * memory: every byte 0x00-0xFF escaped or kept, invalid UTF-8 replaced with
 * U+FFFD, commas and keys, numbers, nesting to JSON_DEPTH_MAX and the
 * aborts past it, and the script-safe documents of the console. Every string written is checked to
 * be a valid JSON string.
 */
#include "case_filter.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/job.h"
#include "worker/ctl/json_out.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RESP(lit) lit, sizeof lit - 1 /* a literal and its length, NULs included */

/* A writer into memory. */
struct capture {
    char *text;
    size_t len;
    FILE *out;
    struct json j;
};

static void capture_begin(struct capture *c)
{
    memset(c, 0, sizeof *c);
    c->out = open_memstream(&c->text, &c->len);
    assert_non_null(c->out);
    json_init(&c->j, c->out);
}

/* Ends the document; the caller frees c->text. */
static const char *capture_end(struct capture *c)
{
    json_finish(&c->j);
    assert_int_equal(fclose(c->out), 0);
    assert_int_equal(strlen(c->text), c->len);
    return c->text;
}

/* JSON's string grammar, read independently of the writer: no raw control
 * byte, only the defined escapes, the text valid UTF-8. Returns the end. */
static const char *check_json_string(const char *s)
{
    assert_int_equal(*s, '"');
    const char *start = ++s;
    while (*s != '"') {
        assert_true((unsigned char)*s >= 0x20);
        if (*s++ != '\\')
            continue;
        if (*s == 'u') {
            for (int i = 1; i <= 4; i++)
                assert_non_null(strchr("0123456789abcdefABCDEF", s[i]));
            s += 5;
        } else {
            assert_true(*s != '\0' && strchr("\"\\/bfnrt", *s) != NULL);
            s++;
        }
    }
    assert_true(job_text_is_valid(start, (size_t)(s - start)));
    return s + 1;
}

/* `len` bytes written as one string value: the document it makes. */
static char *string_document(const char *bytes, size_t len)
{
    struct capture c;
    capture_begin(&c);
    json_strn(&c.j, NULL, bytes, len);
    capture_end(&c);
    const char *end = check_json_string(c.text);
    assert_string_equal(end, "\n");
    return c.text;
}

/* ---------------------------------------------------------------------------
 * Strings
 * ------------------------------------------------------------------------- */

/* What the writer promises for one byte written alone. */
static void expected_for_byte(unsigned b, char *out, size_t len)
{
    if (b == '"' || b == '\\')
        snprintf(out, len, "\"\\%c\"\n", (char)b);
    else if (b < 0x20 || b == 0x7F)
        snprintf(out, len, "\"\\u%04x\"\n", b);
    else if (b >= 0x80) /* alone, never valid UTF-8 */
        snprintf(out, len, "\"\\ufffd\"\n");
    else
        snprintf(out, len, "\"%c\"\n", (char)b);
}

static void test_every_byte_alone_is_escaped_or_kept(void **state)
{
    (void)state;
    for (unsigned b = 0; b <= 0xFF; b++) {
        char byte = (char)b, want[16];
        expected_for_byte(b, want, sizeof want);
        char *got = string_document(&byte, 1);
        if (strcmp(got, want) != 0)
            fail_msg("byte 0x%02x: got %s, want %s", b, got, want);
        free(got);
    }
}

struct string_case {
    const char *name;
    const char *bytes;
    size_t len;
    const char *document;
};

static const struct string_case string_cases[] = {
    {"string_nul", RESP("\0"), "\"\\u0000\"\n"},
    {"string_line_feed_and_tab", RESP("a\nb\tc"), "\"a\\u000ab\\u0009c\"\n"},
    {"string_escape_sequence_of_a_terminal", RESP("\x1b[31m"), "\"\\u001b[31m\"\n"},
    {"string_delete", RESP("\x7f"), "\"\\u007f\"\n"},
    {"string_quote_and_backslash", RESP("say \"a\\b\""), "\"say \\\"a\\\\b\\\"\"\n"},
    {"string_slash_is_kept", RESP("a/b"), "\"a/b\"\n"},
    {"string_empty", RESP(""), "\"\"\n"},
    {"string_two_byte_utf8_kept", RESP("caf\xc3\xa9"), "\"caf\xc3\xa9\"\n"},
    {"string_three_byte_utf8_kept", RESP("\xe2\x82\xac 5"), "\"\xe2\x82\xac 5\"\n"},
    {"string_four_byte_utf8_kept", RESP("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"\n"},
    {"string_nul_inside_utf8_keeps_it", RESP("\xc3\xa9\0\xc3\xa9"),
     "\"\xc3\xa9\\u0000\xc3\xa9\"\n"},
    {"string_c1_control_in_utf8_is_kept", RESP("\xc2\x85"), "\"\xc2\x85\"\n"},
    {"string_truncated_sequence", RESP("a\xc3"), "\"a\\ufffd\"\n"},
    {"string_lone_continuation_byte", RESP("\x80x"), "\"\\ufffdx\"\n"},
    {"string_overlong_slash", RESP("\xc0\xaf"), "\"\\ufffd\\ufffd\"\n"},
    {"string_surrogate", RESP("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"\n"},
    {"string_beyond_u10ffff", RESP("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"\n"},
    {"string_one_bad_byte_replaces_every_non_ascii_byte", RESP("\xc3\xa9-\xff"),
     "\"\\ufffd\\ufffd-\\ufffd\"\n"},
    {"string_bad_utf8_still_escapes_ascii", RESP("\xff\"\n"), "\"\\ufffd\\\"\\u000a\"\n"},
};

static void run_string_case(void **state)
{
    const struct string_case *c = *state;
    char *got = string_document(c->bytes, c->len);
    assert_string_equal(got, c->document);
    free(got);
}

static void test_str_of_null_writes_null(void **state)
{
    (void)state;
    struct capture c;
    capture_begin(&c);
    json_array_begin(&c.j, NULL);
    json_str(&c.j, NULL, NULL);
    json_str(&c.j, NULL, "x");
    json_array_end(&c.j);
    assert_string_equal(capture_end(&c), "[null,\"x\"]\n");
    free(c.text);
}

/* ---------------------------------------------------------------------------
 * Members, commas, numbers
 * ------------------------------------------------------------------------- */

static void test_members_of_every_kind_are_separated_by_commas(void **state)
{
    (void)state;
    struct capture c;
    capture_begin(&c);
    json_object_begin(&c.j, NULL);
    json_str(&c.j, "s", "x");
    json_int(&c.j, "n", -1);
    json_bool(&c.j, "t", true);
    json_bool(&c.j, "f", false);
    json_null(&c.j, "z");
    json_array_begin(&c.j, "a");
    json_int(&c.j, NULL, 1);
    json_array_begin(&c.j, NULL);
    json_array_end(&c.j);
    json_object_begin(&c.j, NULL);
    json_object_end(&c.j);
    json_array_end(&c.j);
    json_object_begin(&c.j, "o");
    json_number_text(&c.j, "k", "2.5");
    json_object_end(&c.j);
    json_object_end(&c.j);
    assert_string_equal(capture_end(&c), "{\"s\":\"x\",\"n\":-1,\"t\":true,\"f\":false,\"z\":null,"
                                         "\"a\":[1,[],{}],\"o\":{\"k\":2.5}}\n");
    free(c.text);
}

static void test_keys_are_escaped_like_values(void **state)
{
    (void)state;
    struct capture c;
    capture_begin(&c);
    json_object_begin(&c.j, NULL);
    json_int(&c.j, "a\"b\n", 1);
    json_int(&c.j, "\xff", 2);
    json_object_end(&c.j);
    assert_string_equal(capture_end(&c), "{\"a\\\"b\\u000a\":1,\"\\ufffd\":2}\n");
    free(c.text);
}

static void test_integers_at_the_int64_limits(void **state)
{
    (void)state;
    struct capture c;
    capture_begin(&c);
    json_array_begin(&c.j, NULL);
    json_int(&c.j, NULL, INT64_MIN);
    json_int(&c.j, NULL, INT64_MAX);
    json_int(&c.j, NULL, 0);
    json_array_end(&c.j);
    assert_string_equal(capture_end(&c), "[-9223372036854775808,9223372036854775807,0]\n");
    free(c.text);
}

static void test_documents_in_a_row_start_without_a_comma(void **state)
{
    (void)state;
    struct capture c;
    capture_begin(&c);
    json_object_begin(&c.j, NULL);
    json_object_end(&c.j);
    json_finish(&c.j);
    json_int(&c.j, NULL, 5);
    json_finish(&c.j);
    json_object_begin(&c.j, NULL);
    json_int(&c.j, "a", 1);
    json_object_end(&c.j);
    assert_string_equal(capture_end(&c), "{}\n5\n{\"a\":1}\n");
    free(c.text);
}

struct number_case {
    const char *name;
    const char *text;
    const char *document; /* a number as is, else a string */
};

static const struct number_case number_cases[] = {
    {"number_zero", "0", "0\n"},
    {"number_minus_zero", "-0", "-0\n"},
    {"number_whole", "-12", "-12\n"},
    {"number_fraction", "3.50", "3.50\n"},
    {"number_exponent", "1e10", "1e10\n"},
    {"number_signed_exponent", "-0.5E-3", "-0.5E-3\n"},
    {"number_plus_exponent", "2e+2", "2e+2\n"},
    {"number_leading_zero_is_a_string", "01", "\"01\"\n"},
    {"number_trailing_dot_is_a_string", "1.", "\"1.\"\n"},
    {"number_leading_dot_is_a_string", ".5", "\".5\"\n"},
    {"number_plus_sign_is_a_string", "+1", "\"+1\"\n"},
    {"number_bare_exponent_is_a_string", "1e", "\"1e\"\n"},
    {"number_empty_is_a_string", "", "\"\"\n"},
    {"number_minus_alone_is_a_string", "-", "\"-\"\n"},
    {"number_space_is_a_string", "1 ", "\"1 \"\n"},
    {"number_hexadecimal_is_a_string", "0x10", "\"0x10\"\n"},
    {"number_infinity_is_a_string", "inf", "\"inf\"\n"},
    {"number_nan_is_a_string", "NaN", "\"NaN\"\n"},
};

static void run_number_case(void **state)
{
    const struct number_case *c = *state;
    struct capture cap;
    capture_begin(&cap);
    json_number_text(&cap.j, NULL, c->text);
    assert_string_equal(capture_end(&cap), c->document);
    free(cap.text);
}

/* ---------------------------------------------------------------------------
 * Nesting
 * ------------------------------------------------------------------------- */

static void test_nesting_to_the_depth_limit(void **state)
{
    (void)state;
    struct capture c;
    capture_begin(&c);
    for (int d = 0; d < JSON_DEPTH_MAX; d++) {
        /* Arrays at even depths (inside an object under "k"), objects at
         * odd ones; each level holds its depth first. */
        if (d % 2 == 0)
            json_array_begin(&c.j, d == 0 ? NULL : "k");
        else
            json_object_begin(&c.j, NULL);
        json_int(&c.j, d % 2 == 0 ? NULL : "d", d);
    }
    for (int d = JSON_DEPTH_MAX - 1; d >= 0; d--) {
        if (d % 2 == 0)
            json_array_end(&c.j);
        else
            json_object_end(&c.j);
    }
    _Static_assert(JSON_DEPTH_MAX == 8, "the document below has eight levels");
    assert_string_equal(capture_end(&c), "[0,{\"d\":1,\"k\":[2,{\"d\":3,\"k\":[4,{\"d\":5,\"k\":[6,"
                                         "{\"d\":7}]}]}]}]\n");
    free(c.text);
}

/* Runs `misuse` in a child, which must abort (an ASSERT). */
static void assert_aborts(void (*misuse)(struct json *j))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDERR_FILENO); /* the assertion's message */
        FILE *out = fopen("/dev/null", "w");
        struct json j;
        if (out != NULL) {
            json_init(&j, out);
            misuse(&j);
        }
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void nest_one_too_deep(struct json *j)
{
    for (int d = 0; d <= JSON_DEPTH_MAX; d++)
        json_array_begin(j, NULL);
}

static void end_at_the_top(struct json *j)
{
    json_object_end(j);
}

static void finish_inside_an_array(struct json *j)
{
    json_array_begin(j, NULL);
    json_finish(j);
}

static void test_misuse_of_the_nesting_aborts(void **state)
{
    (void)state;
    assert_aborts(nest_one_too_deep);
    assert_aborts(end_at_the_top);
    assert_aborts(finish_inside_an_array);
}

/* ---------------------------------------------------------------------------
 * Script-safe documents (json_init_script_safe)
 * ------------------------------------------------------------------------- */

/* `len` bytes as one string member of a script-safe document. */
static char *script_safe_document(const char *key, const char *bytes, size_t len)
{
    struct capture c;
    memset(&c, 0, sizeof c);
    c.out = open_memstream(&c.text, &c.len);
    assert_non_null(c.out);
    json_init_script_safe(&c.j, c.out);
    json_object_begin(&c.j, NULL);
    json_strn(&c.j, key, bytes, len);
    json_object_end(&c.j);
    return (char *)capture_end(&c);
}

static void test_script_safe_escapes_what_ends_a_script_element(void **state)
{
    (void)state;
    static const char tool[] = "<script>alert(1)</script>&</SCRIPT ><!--";
    char *doc = script_safe_document("tool", tool, strlen(tool));
    assert_string_equal(doc, "{\"tool\":\"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"
                             "\\u0026\\u003c/SCRIPT \\u003e\\u003c!--\"}\n");
    assert_null(strchr(doc, '<'));
    assert_null(strchr(doc, '>'));
    assert_null(strchr(doc, '&'));
    free(doc);
    /* Keys are escaped the same way. */
    doc = script_safe_document("<k>", "v", 1);
    assert_string_equal(doc, "{\"\\u003ck\\u003e\":\"v\"}\n");
    free(doc);
}

static void test_script_safe_escapes_the_line_separators(void **state)
{
    (void)state;
    /* U+2028, U+2029 and, as a neighbour that stays, U+2027. */
    static const char text[] = "a\xe2\x80\xa8"
                               "b\xe2\x80\xa9"
                               "c\xe2\x80\xa7";
    char *doc = script_safe_document("t", text, strlen(text));
    assert_string_equal(doc, "{\"t\":\"a\\u2028b\\u2029c\xe2\x80\xa7\"}\n");
    free(doc);
    /* A cut separator is invalid UTF-8: replaced, never half-escaped. */
    doc = script_safe_document("t", "x\xe2\x80", 3);
    assert_string_equal(doc, "{\"t\":\"x\\ufffd\\ufffd\"}\n");
    free(doc);
}

static void test_plain_documents_keep_angle_brackets(void **state)
{
    (void)state;
    /* The CLI's --json output is unchanged: only the console asks for it. */
    char *got = string_document("<a&b>", 5);
    assert_string_equal(got, "\"<a&b>\"\n");
    free(got);
}

/* ---------------------------------------------------------------------------
 * The cases, table rows each their own
 * ------------------------------------------------------------------------- */

#define CASES_MAX (ARRAY_LEN(fixed) + ARRAY_LEN(string_cases) + ARRAY_LEN(number_cases))

int main(int argc, char **argv)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_every_byte_alone_is_escaped_or_kept),
        cmocka_unit_test(test_str_of_null_writes_null),
        cmocka_unit_test(test_members_of_every_kind_are_separated_by_commas),
        cmocka_unit_test(test_keys_are_escaped_like_values),
        cmocka_unit_test(test_integers_at_the_int64_limits),
        cmocka_unit_test(test_documents_in_a_row_start_without_a_comma),
        cmocka_unit_test(test_nesting_to_the_depth_limit),
        cmocka_unit_test(test_misuse_of_the_nesting_aborts),
        cmocka_unit_test(test_script_safe_escapes_what_ends_a_script_element),
        cmocka_unit_test(test_script_safe_escapes_the_line_separators),
        cmocka_unit_test(test_plain_documents_keep_angle_brackets),
    };
    struct CMUnitTest tests[CASES_MAX];
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < ARRAY_LEN(string_cases); i++)
        tests[n++] = (struct CMUnitTest){string_cases[i].name, run_string_case, NULL, NULL,
                                         (void *)&string_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(number_cases); i++)
        tests[n++] = (struct CMUnitTest){number_cases[i].name, run_number_case, NULL, NULL,
                                         (void *)&number_cases[i]};
    return case_filter_run("json_out", tests, n, NULL, NULL, argc, argv);
}
