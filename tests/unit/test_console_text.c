/*
 * test_console_text.c -- the console's text in and out
 * (worker/ctl/console_text.c): every byte escaped for HTML or kept, the
 * page's template filled in (and refused when a marker or the boot JSON is
 * wrong), query strings checked and decoded.
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

int main(int argc, char **argv)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html_escapes_markup_and_quotes),
        cmocka_unit_test(test_html_replaces_control_bytes_and_invalid_utf8),
        cmocka_unit_test(test_html_every_byte_alone),
        cmocka_unit_test(test_page_title_is_escaped_and_boot_inserted),
        cmocka_unit_test(test_page_refuses_wrong_markers_and_unsafe_boot),
        cmocka_unit_test(test_queries_that_are_well_formed),
        cmocka_unit_test(test_queries_that_are_refused),
        cmocka_unit_test(test_query_params_are_decoded),
    };
    return case_filter_run("console_text", tests, ARRAY_LEN(tests), NULL, NULL, argc, argv);
}
