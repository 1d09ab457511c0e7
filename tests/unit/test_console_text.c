/*
 * test_console_text.c -- the console's text in and out
 * (worker/ctl/console_text.c): every byte escaped for HTML or kept, the
 * page's template filled in (and refused when a marker or the boot JSON is
 * wrong), query strings checked and decoded, and msgpack of every kind
 * written as JSON, with every prefix of a value, lying counts and nesting
 * past the bound refused having written nothing.
 */
#include "case_filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/ctl/console_text.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BYTES(lit) lit, sizeof lit - 1 /* a literal and its length, NULs included */

/* Output into memory. */
struct capture {
    char *text;
    size_t len;
    FILE *out;
};

static void capture_begin(struct capture *c)
{
    memset(c, 0, sizeof *c);
    c->out = open_memstream(&c->text, &c->len);
    assert_non_null(c->out);
}

/* The text written; the caller frees it. */
static char *capture_end(struct capture *c)
{
    assert_int_equal(fclose(c->out), 0);
    return c->text;
}

/* ---------------------------------------------------------------------------
 * HTML
 * ------------------------------------------------------------------------- */

static char *escaped(const char *s, size_t len)
{
    struct capture c;
    capture_begin(&c);
    console_html_escape(c.out, s, len);
    return capture_end(&c);
}

static void test_html_escapes_markup_and_quotes(void **state)
{
    (void)state;
    char *got = escaped(BYTES("<script>alert(1)</script>"));
    assert_string_equal(got, "&lt;script&gt;alert(1)&lt;/script&gt;");
    free(got);
    got = escaped(BYTES("a\"b'c&d"));
    assert_string_equal(got, "a&quot;b&#39;c&amp;d");
    free(got);
    got = escaped(BYTES("caf\xc3\xa9 \xe2\x9c\x93\t\n"));
    assert_string_equal(got, "caf\xc3\xa9 \xe2\x9c\x93\t\n");
    free(got);
}

static void test_html_replaces_control_bytes_and_invalid_utf8(void **state)
{
    (void)state;
    char *got = escaped(BYTES("a\x01"
                              "b\x7f"
                              "c\0d\x1b[31m"));
    assert_string_equal(got, "a&#xFFFD;b&#xFFFD;c&#xFFFD;d&#xFFFD;[31m");
    free(got);
    /* Not UTF-8: every byte above 0x7F goes, the ASCII stays. */
    got = escaped(BYTES("caf\xc3\xa9\xff<"));
    assert_string_equal(got, "caf&#xFFFD;&#xFFFD;&#xFFFD;&lt;");
    free(got);
}

static void test_html_every_byte_alone(void **state)
{
    (void)state;
    for (unsigned b = 0; b <= 0xFF; b++) {
        char byte = (char)b;
        char *got = escaped(&byte, 1);
        const char *want_special = b == '&'    ? "&amp;"
                                   : b == '<'  ? "&lt;"
                                   : b == '>'  ? "&gt;"
                                   : b == '"'  ? "&quot;"
                                   : b == '\'' ? "&#39;"
                                               : NULL;
        if (want_special)
            assert_string_equal(got, want_special);
        else if (b == '\t' || b == '\n' || b == '\r' || (b >= 0x20 && b < 0x7F))
            assert_true(strlen(got) == 1 && (unsigned char)got[0] == b);
        else
            assert_string_equal(got, "&#xFFFD;");
        free(got);
    }
}

/* ---------------------------------------------------------------------------
 * The page's template
 * ------------------------------------------------------------------------- */

static const char tpl[] = "<title>{{title}}</title>\n<script type=\"application/json\">{{boot}}"
                          "</script>\n";

/* The rendering, or NULL when refused (then nothing was written). */
static char *rendered(const char *t, const char *title, const char *boot)
{
    struct capture c;
    capture_begin(&c);
    bool ok = console_render_page(c.out, t, strlen(t), title, boot);
    char *text = capture_end(&c);
    if (ok)
        return text;
    assert_int_equal(strlen(text), 0);
    free(text);
    return NULL;
}

static void test_page_title_is_escaped_and_boot_inserted(void **state)
{
    (void)state;
    char *got = rendered(tpl, "credits <&> console", "{\"prefix\":\"\\u003cx\\u003e\"}");
    assert_string_equal(got, "<title>credits &lt;&amp;&gt; console</title>\n"
                             "<script type=\"application/json\">{\"prefix\":\"\\u003cx\\u003e\"}"
                             "</script>\n");
    free(got);
    /* The markers in the other order. */
    got = rendered("{{boot}}|{{title}}", "t", "{}");
    assert_string_equal(got, "{}|t");
    free(got);
}

static void test_page_refuses_wrong_markers_and_unsafe_boot(void **state)
{
    (void)state;
    assert_null(rendered("<title>{{title}}</title>", "t", "{}"));
    assert_null(rendered("{{boot}}", "t", "{}"));
    assert_null(rendered("{{title}}{{title}}{{boot}}", "t", "{}"));
    assert_null(rendered("{{title}}{{boot}}{{boot}}", "t", "{}"));
    /* Boot JSON that could end its <script> element. */
    assert_null(rendered(tpl, "t", "{\"x\":\"</script><script>alert(1)</script>\"}"));
}

/* ---------------------------------------------------------------------------
 * Query strings
 * ------------------------------------------------------------------------- */

static void test_queries_that_are_well_formed(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "",
        "user=alice",
        "a=1&b=2",
        "user=alice%40example.com",
        "reason=database+error",
        "flag",
        "empty=",
        "before=1796164819976-0&limit=25",
        "a_b=%3Cscript%3E",
        "abcdefghijklmnop=1",                                              /* a name of 16 */
        "a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1&l=1&m=1&n=1&o=1&p=1", /* 16 */
    };
    for (size_t i = 0; i < ARRAY_LEN(valid); i++)
        if (!console_query_is_valid(valid[i]))
            fail_msg("refused: %s", valid[i]);
}

static void test_queries_that_are_refused(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        "A=1",
        "a-b=1",
        "a=1&a=2",
        "a=%zz",
        "a=%4",
        "a=%",
        "a=%00",
        "&a=1",
        "a=1&",
        "=1",
        "&",
        "a=1&&b=2",
        "abcdefghijklmnopq=1",                                                 /* a name of 17 */
        "a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1&l=1&m=1&n=1&o=1&p=1&q=1", /* 17 */
        "user=a&user=",
        "na\xffme=1",
    };
    for (size_t i = 0; i < ARRAY_LEN(invalid); i++)
        if (console_query_is_valid(invalid[i]))
            fail_msg("accepted: %s", invalid[i]);
}

static void test_query_params_are_decoded(void **state)
{
    (void)state;
    const char *q = "user=al%69ce&reason=database+error+23514%3A&tool=%3Cscript%3E&flag&e=";
    assert_true(console_query_is_valid(q));
    char out[64];
    assert_int_equal(console_query_param(q, "user", out, sizeof out), 1);
    assert_string_equal(out, "alice");
    assert_int_equal(console_query_param(q, "reason", out, sizeof out), 1);
    assert_string_equal(out, "database error 23514:");
    assert_int_equal(console_query_param(q, "tool", out, sizeof out), 1);
    assert_string_equal(out, "<script>");
    assert_int_equal(console_query_param(q, "flag", out, sizeof out), 1);
    assert_string_equal(out, "");
    assert_int_equal(console_query_param(q, "e", out, sizeof out), 1);
    assert_int_equal(console_query_param(q, "missing", out, sizeof out), 0);
    assert_string_equal(out, "");
    /* A name that is a prefix of another is not it. */
    assert_int_equal(console_query_param(q, "use", out, sizeof out), 0);
    /* A value that does not fit: refused, not cut. */
    char small[5];
    assert_int_equal(console_query_param(q, "user", small, sizeof small), -1);
    char exact[6];
    assert_int_equal(console_query_param(q, "user", exact, sizeof exact), 1);
    assert_string_equal(exact, "alice");
}

/* ---------------------------------------------------------------------------
 * msgpack as JSON
 * ------------------------------------------------------------------------- */

/* The JSON of `len` bytes of msgpack under key "e" of an object, or NULL
 * when refused (then only the object's braces were written). */
static char *msgpack_document(const void *bytes, size_t len)
{
    struct capture c;
    capture_begin(&c);
    struct json j;
    json_init_script_safe(&j, c.out);
    json_object_begin(&j, NULL);
    bool ok = console_msgpack_json(&j, "e", bytes, len);
    json_object_end(&j);
    json_finish(&j);
    char *text = capture_end(&c);
    if (ok)
        return text;
    assert_string_equal(text, "{}\n");
    free(text);
    return NULL;
}

struct msgpack_case {
    const char *name;
    const char *bytes;
    size_t len;
    const char *json; /* the value under "e"; NULL: refused */
};

static const struct msgpack_case msgpack_cases[] = {
    {"mp_event",
     BYTES("\x86\xa1v\x01\xa4type\xab"
           "balance_low\xa4user\xa2u1\xa9threshold\x64\xa7"
           "balance\x82\xa5total\x05\xa4held\x00\xa2"
           "at\xcf\x00\x00\x01\x9a\xd7\x7b\x63\x40"),
     "{\"v\":1,\"type\":\"balance_low\",\"user\":\"u1\",\"threshold\":100,"
     "\"balance\":{\"total\":5,\"held\":0},\"at\":1764551779136}"},
    {"mp_scalars",
     BYTES("\x9d\xc0\xc3\xc2\xcc\xc8\xcd\x01\x00\xce\xff\xff\xff\xff\xd0\x9c\xd1\xfe\xd4"
           "\xff\xe0\x7f\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00\xca\x3f\x00\x00\x00"),
     "[null,true,false,200,256,4294967295,-100,-300,-1,-32,127,1.5,0.5]"},
    {"mp_int64_bounds",
     BYTES("\x92\xcf\xff\xff\xff\xff\xff\xff\xff\xff\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
     "[18446744073709551615,-9223372036854775808]"},
    {"mp_int32", BYTES("\x92\xd2\xff\xff\xff\xfe\xd2\x7f\xff\xff\xff"), "[-2,2147483647]"},
    {"mp_nan_is_null", BYTES("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"), "null"},
    {"mp_infinity_is_null", BYTES("\xca\x7f\x80\x00\x00"), "null"},
    {"mp_strings",
     BYTES("\x93\xd9\x03"
           "abc\xda\x00\x01z\xa0"),
     "[\"abc\",\"z\",\"\"]"},
    {"mp_str_escaped", BYTES("\xa8<b>&\"\\\n\x01"),
     "\"\\u003cb\\u003e\\u0026\\\"\\\\\\u000a\\u0001\""},
    {"mp_str_not_utf8", BYTES("\xa2\xc3\x28"), "\"\\ufffd(\""},
    {"mp_bin_as_hex", BYTES("\xc4\x03\x00\x01\xff"), "\"0001ff\""},
    {"mp_ext_is_null", BYTES("\x92\xd4\x01\x00\xc7\x02\x05\xab\xcd"), "[null,null]"},
    {"mp_array16_map16", BYTES("\xdc\x00\x01\xde\x00\x01\xa1k\xa1v"), "[{\"k\":\"v\"}]"},
    {"mp_depth_four", BYTES("\x91\x91\x91\x91\x01"), "[[[[1]]]]"},
    {"mp_empty_containers", BYTES("\x92\x80\x90"), "[{},[]]"},
    {"mp_depth_five", BYTES("\x91\x91\x91\x91\x91\x01"), NULL},
    {"mp_nothing", "", 0, NULL},
    {"mp_trailing_byte", BYTES("\x01\x02"), NULL},
    {"mp_never_used_byte", BYTES("\xc1"), NULL},
    {"mp_int_key", BYTES("\x81\x01\x02"), NULL},
    {"mp_key_with_nul", BYTES("\x81\xa2k\x00\x01"), NULL},
    {"mp_array_count_lies", BYTES("\xdd\xff\xff\xff\xff\x01"), NULL},
    {"mp_map_count_lies", BYTES("\xdf\x00\x00\x00\x02\xa1k\x01"), NULL},
    {"mp_str_past_end",
     BYTES("\xd9\x05"
           "abc"),
     NULL},
    {"mp_bin32_past_end", BYTES("\xc6\xff\xff\xff\xff\x00"), NULL},
    {"mp_ext_past_end", BYTES("\xc9\x00\x00\x00\x10\x01\x00"), NULL},
};

static void run_msgpack_case(void **state)
{
    const struct msgpack_case *c = *state;
    char *got = msgpack_document(c->bytes, c->len);
    if (!c->json) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    char want[512];
    snprintf(want, sizeof want, "{\"e\":%s}\n", c->json);
    assert_string_equal(got, want);
    free(got);
}

/* Every proper prefix of every valid case is refused, having written
 * nothing; each is copied to a buffer of exactly its length, so that a read
 * past it shows under the sanitizers. */
static void test_msgpack_every_prefix_is_refused(void **state)
{
    (void)state;
    int tried = 0;
    for (size_t i = 0; i < ARRAY_LEN(msgpack_cases); i++) {
        const struct msgpack_case *c = &msgpack_cases[i];
        if (!c->json)
            continue;
        for (size_t n = 0; n < c->len; n++) {
            char *copy = malloc(n ? n : 1);
            assert_non_null(copy);
            memcpy(copy, c->bytes, n);
            char *got = msgpack_document(copy, n);
            if (got)
                fail_msg("%s: a prefix of %zu bytes was accepted: %s", c->name, n, got);
            free(copy);
            tried++;
        }
    }
    assert_true(tried > 100);
}

static void test_msgpack_over_the_size_bound_is_refused(void **state)
{
    (void)state;
    /* A str32 holding exactly CONSOLE_MSGPACK_BYTES_MAX - 5 bytes fits;
     * one byte more does not. */
    size_t body = CONSOLE_MSGPACK_BYTES_MAX - 5;
    unsigned char *buf = malloc(CONSOLE_MSGPACK_BYTES_MAX + 1);
    assert_non_null(buf);
    buf[0] = 0xdb;
    for (int k = 0; k < 4; k++)
        buf[1 + k] = (unsigned char)(body >> (24 - 8 * k));
    memset(buf + 5, 'x', body + 1);
    char *got = msgpack_document(buf, body + 5);
    assert_non_null(got);
    free(got);
    body++;
    for (int k = 0; k < 4; k++)
        buf[1 + k] = (unsigned char)(body >> (24 - 8 * k));
    assert_null(msgpack_document(buf, body + 5));
    free(buf);
}

static void test_msgpack_str_finds_a_top_level_string(void **state)
{
    (void)state;
    static const char event[] = "\x84\xa4type\xa3low\xa7"
                                "balance\x81\xa4user\xa3"
                                "bad"
                                "\xa4user\xa2u1\xa4note\x01";
    char out[16];
    /* The nested map's "user" is skipped: the top map's is found. */
    assert_true(console_msgpack_str(event, sizeof event - 1, "user", out, sizeof out));
    assert_string_equal(out, "u1");
    assert_true(console_msgpack_str(event, sizeof event - 1, "type", out, sizeof out));
    assert_string_equal(out, "low");
    assert_false(console_msgpack_str(event, sizeof event - 1, "note", out, sizeof out));
    assert_false(console_msgpack_str(event, sizeof event - 1, "missing", out, sizeof out));
    char tiny[2];
    assert_false(console_msgpack_str(event, sizeof event - 1, "user", tiny, sizeof tiny));
    assert_false(console_msgpack_str("\x91\xa1u", 3, "u", out, sizeof out));
    assert_false(console_msgpack_str("", 0, "user", out, sizeof out));
    /* Any prefix: found only once the bytes reach the value. */
    for (size_t n = 0; n < sizeof event - 1; n++)
        (void)console_msgpack_str(event, n, "user", out, sizeof out);
}

#define CASES_MAX (ARRAY_LEN(fixed) + ARRAY_LEN(msgpack_cases))

int main(int argc, char **argv)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_html_escapes_markup_and_quotes),
        cmocka_unit_test(test_html_replaces_control_bytes_and_invalid_utf8),
        cmocka_unit_test(test_html_every_byte_alone),
        cmocka_unit_test(test_page_title_is_escaped_and_boot_inserted),
        cmocka_unit_test(test_page_refuses_wrong_markers_and_unsafe_boot),
        cmocka_unit_test(test_queries_that_are_well_formed),
        cmocka_unit_test(test_queries_that_are_refused),
        cmocka_unit_test(test_query_params_are_decoded),
        cmocka_unit_test(test_msgpack_every_prefix_is_refused),
        cmocka_unit_test(test_msgpack_over_the_size_bound_is_refused),
        cmocka_unit_test(test_msgpack_str_finds_a_top_level_string),
    };
    struct CMUnitTest tests[CASES_MAX];
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < ARRAY_LEN(msgpack_cases); i++)
        tests[n++] = (struct CMUnitTest){msgpack_cases[i].name, run_msgpack_case, NULL, NULL,
                                         (void *)&msgpack_cases[i]};
    return case_filter_run("console_text", tests, n, NULL, NULL, argc, argv);
}
