/*
 * test_console_guard.c -- who may use the console (worker/ctl/console_guard.c):
 * listen addresses (addresses only, loopback told apart), Host values (an
 * address or localhost, never another name: DNS rebinding), the token (its
 * rules, the constant-time match, the fingerprint), and the verdict on a
 * request, as a table: the page, reads and actions, with and without
 * --allow-actions and the token for reads, each header right, wrong,
 * missing and twice.
 */
#include "case_filter.h"

#include <stdio.h>
#include <string.h>

#include "worker/ctl/console_guard.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TOKEN "s3cret-token-0123456789"

/* ---------------------------------------------------------------------------
 * Listen addresses
 * ------------------------------------------------------------------------- */

static void test_listen_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        bool ok;
        bool loopback;
        const char *host;
        int port;
    } cases[] = {
        {"127.0.0.1:9465", true, true, "127.0.0.1", 9465},
        {"127.1.2.3:1", true, true, "127.1.2.3", 1},
        {"[::1]:9465", true, true, "::1", 9465},
        {"0.0.0.0:9465", true, false, "0.0.0.0", 9465},
        {"10.0.0.5:65535", true, false, "10.0.0.5", 65535},
        {"[::]:9465", true, false, "::", 9465},
        {"localhost:9465", false, false, NULL,
         0}, /* a name: what is bound must be what was checked */
        {"127.0.0.1", false, false, NULL, 0},
        {"127.0.0.1:0", false, false, NULL, 0},
        {"127.0.0.1:65536", false, false, NULL, 0},
        {"127.0.0.1:94a5", false, false, NULL, 0},
        {"::1:9465", false, false, NULL, 0},
        {"[::1]9465", false, false, NULL, 0},
        {"[::1:9465", false, false, NULL, 0},
        {":9465", false, false, NULL, 0},
        {"", false, false, NULL, 0},
        {"127.0.0.1:9465:1", false, false, NULL, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct console_listen l;
        char errstr[256] = "";
        int rc = console_listen_parse(cases[i].addr, &l, errstr, sizeof errstr);
        if (rc != (cases[i].ok ? 0 : -1))
            fail_msg("%s: got %d", cases[i].addr, rc);
        if (!cases[i].ok) {
            assert_non_null(strstr(errstr, "--listen"));
            continue;
        }
        assert_string_equal(l.addr, cases[i].addr);
        assert_string_equal(l.host, cases[i].host);
        assert_int_equal(l.port, cases[i].port);
        if (l.loopback != cases[i].loopback)
            fail_msg("%s: loopback %d", cases[i].addr, l.loopback);
    }
}

static void test_host_values(void **state)
{
    (void)state;
    static const struct {
        const char *host;
        bool ok;
    } cases[] = {
        {"127.0.0.1:9465", true},
        {"127.0.0.1", true},
        {"localhost:9465", true},
        {"LocalHost", true},
        {"[::1]:9465", true},
        {"[::1]", true},
        {"10.0.0.5:80", true},
        {"evil.example:9465", false},
        {"localhost.evil:9465", false},
        {"127.0.0.1.nip.io", false},
        {"", false},
        {"[::1", false},
        {"[::1]x", false},
        {"127.0.0.1:", false},
        {"127.0.0.1:0", false},
        {"127.0.0.1:99999", false},
        {"1", false},
        {"::1", false},
        {"127.0.0.1:9465 ", false},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        if (console_host_is_address(cases[i].host, strlen(cases[i].host)) != cases[i].ok)
            fail_msg("Host: %s", cases[i].host);
}

/* ---------------------------------------------------------------------------
 * The token
 * ------------------------------------------------------------------------- */

static void test_token_rules(void **state)
{
    (void)state;
    struct console_token t;
    char errstr[256];
    assert_int_equal(console_token_init(&t, "short", errstr, sizeof errstr), -1);
    assert_non_null(strstr(errstr, "CREDITS_CONSOLE_TOKEN"));
    assert_false(t.set);
    assert_int_equal(console_token_init(&t, "with a space 0123456789", errstr, sizeof errstr), -1);
    assert_int_equal(console_token_init(&t, "tab\tin-it-0123456789", errstr, sizeof errstr), -1);
    char longest[CONSOLE_TOKEN_BYTES_MAX + 2];
    memset(longest, 'a', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    assert_int_equal(console_token_init(&t, longest, errstr, sizeof errstr), -1);
    longest[CONSOLE_TOKEN_BYTES_MAX] = '\0';
    assert_int_equal(console_token_init(&t, longest, errstr, sizeof errstr), 0);
    assert_int_equal(console_token_init(&t, "0123456789abcdef", errstr, sizeof errstr), 0);
    assert_true(t.set);
}

static void test_token_matches_only_itself(void **state)
{
    (void)state;
    struct console_token t;
    char errstr[256];
    assert_int_equal(console_token_init(&t, TOKEN, errstr, sizeof errstr), 0);
    assert_true(console_token_matches(&t, TOKEN, strlen(TOKEN)));
    /* Every proper prefix, every one-byte change, and longer ones fail. */
    for (size_t n = 0; n < strlen(TOKEN); n++)
        assert_false(console_token_matches(&t, TOKEN, n));
    for (size_t i = 0; i < strlen(TOKEN); i++) {
        char wrong[sizeof TOKEN];
        memcpy(wrong, TOKEN, sizeof TOKEN);
        wrong[i] ^= 1;
        assert_false(console_token_matches(&t, wrong, strlen(wrong)));
    }
    assert_false(console_token_matches(&t, TOKEN "x", strlen(TOKEN) + 1));
    struct console_token unset = {0};
    assert_false(console_token_matches(&unset, TOKEN, strlen(TOKEN)));
}

static void test_fingerprints_tell_tokens_apart_and_hide_them(void **state)
{
    (void)state;
    char a[CONSOLE_FINGERPRINT_BYTES], b[CONSOLE_FINGERPRINT_BYTES],
        none[CONSOLE_FINGERPRINT_BYTES];
    console_token_fingerprint(TOKEN, strlen(TOKEN), a);
    console_token_fingerprint("other-token-0123456789", 22, b);
    console_token_fingerprint(NULL, 0, none);
    assert_int_equal(strlen(a), CONSOLE_FINGERPRINT_HEX);
    assert_string_not_equal(a, b);
    assert_string_equal(none, "none");
    assert_null(strstr(TOKEN, a));
    /* SHA-256("s3cret-token-0123456789"), its first 12 hex digits, as
     * sha256sum computes them: an operator can match a log line to a token
     * without the console. */
    assert_string_equal(a, "706b9b78de6d");
    struct console_token t;
    char errstr[256];
    assert_int_equal(console_token_init(&t, TOKEN, errstr, sizeof errstr), 0);
    assert_string_equal(t.fingerprint, a);
}

/* ---------------------------------------------------------------------------
 * Verdicts
 * ------------------------------------------------------------------------- */

#define F(text)                                                                                    \
    {                                                                                              \
        1, text, sizeof text - 1                                                                   \
    }
#define ABSENT                                                                                     \
    {                                                                                              \
        0, NULL, 0                                                                                 \
    }
#define TWICE(text)                                                                                \
    {                                                                                              \
        2, text, sizeof text - 1                                                                   \
    }

struct verdict_case {
    const char *name;
    bool actions;
    bool token_for_reads;
    enum console_request_kind kind;
    struct console_field host, origin, fetch_site, token;
    enum console_verdict verdict;
};

static const struct verdict_case verdict_cases[] = {
    {"page_on_loopback", false, false, CONSOLE_REQUEST_PAGE, F("127.0.0.1:9465"), ABSENT, ABSENT,
     ABSENT, CONSOLE_ALLOWED},
    {"page_by_localhost", false, false, CONSOLE_REQUEST_PAGE, F("localhost:9465"), ABSENT, ABSENT,
     ABSENT, CONSOLE_ALLOWED},
    {"page_rebound_name", false, false, CONSOLE_REQUEST_PAGE, F("evil.example:9465"), ABSENT,
     ABSENT, ABSENT, CONSOLE_BAD_HOST},
    {"page_without_host", false, false, CONSOLE_REQUEST_PAGE, ABSENT, ABSENT, ABSENT, ABSENT,
     CONSOLE_BAD_HOST},
    {"page_host_twice", false, false, CONSOLE_REQUEST_PAGE, TWICE("127.0.0.1:9465"), ABSENT, ABSENT,
     ABSENT, CONSOLE_BAD_HOST},
    {"page_needs_no_token_for_reads", true, true, CONSOLE_REQUEST_PAGE, F("10.0.0.5:9465"), ABSENT,
     ABSENT, ABSENT, CONSOLE_ALLOWED},
    {"read_without_token", false, false, CONSOLE_REQUEST_READ, F("127.0.0.1:9465"), ABSENT, ABSENT,
     ABSENT, CONSOLE_ALLOWED},
    {"read_from_another_site_by_address", false, false, CONSOLE_REQUEST_READ, F("127.0.0.1:9465"),
     F("http://evil.example"), F("cross-site"), ABSENT, CONSOLE_ALLOWED},
    {"read_rebound_name", false, false, CONSOLE_REQUEST_READ, F("evil.example:9465"), ABSENT,
     ABSENT, ABSENT, CONSOLE_BAD_HOST},
    {"read_remote_without_token", true, true, CONSOLE_REQUEST_READ, F("10.0.0.5:9465"), ABSENT,
     ABSENT, ABSENT, CONSOLE_NO_TOKEN},
    {"read_remote_wrong_token", true, true, CONSOLE_REQUEST_READ, F("10.0.0.5:9465"), ABSENT,
     ABSENT, F("nope-nope-nope-nope"), CONSOLE_WRONG_TOKEN},
    {"read_remote_token", true, true, CONSOLE_REQUEST_READ, F("10.0.0.5:9465"), ABSENT, ABSENT,
     F(TOKEN), CONSOLE_ALLOWED},
    {"action_allowed", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     F("http://127.0.0.1:9465"), F("same-origin"), F(TOKEN), CONSOLE_ALLOWED},
    {"action_without_fetch_site", true, false, CONSOLE_REQUEST_ACTION, F("localhost:9465"),
     F("http://localhost:9465"), ABSENT, F(TOKEN), CONSOLE_ALLOWED},
    {"action_origin_case_differs", true, false, CONSOLE_REQUEST_ACTION, F("localhost:9465"),
     F("HTTP://LOCALHOST:9465"), ABSENT, F(TOKEN), CONSOLE_ALLOWED},
    {"action_actions_off", false, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     F("http://127.0.0.1:9465"), F("same-origin"), F(TOKEN), CONSOLE_ACTIONS_OFF},
    {"action_without_token", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     F("http://127.0.0.1:9465"), F("same-origin"), ABSENT, CONSOLE_NO_TOKEN},
    {"action_empty_token", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     F("http://127.0.0.1:9465"), F("same-origin"), F(""), CONSOLE_NO_TOKEN},
    {"action_token_twice", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     F("http://127.0.0.1:9465"), F("same-origin"), TWICE(TOKEN), CONSOLE_NO_TOKEN},
    {"action_wrong_token", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     F("http://127.0.0.1:9465"), F("same-origin"), F(TOKEN "x"), CONSOLE_WRONG_TOKEN},
    {"action_other_origin", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     F("http://evil.example"), F("cross-site"), F(TOKEN), CONSOLE_BAD_ORIGIN},
    {"action_other_port_origin", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     F("http://127.0.0.1:8080"), ABSENT, F(TOKEN), CONSOLE_BAD_ORIGIN},
    {"action_https_origin", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     F("https://127.0.0.1:9465"), ABSENT, F(TOKEN), CONSOLE_BAD_ORIGIN},
    {"action_null_origin", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"), F("null"),
     ABSENT, F(TOKEN), CONSOLE_BAD_ORIGIN},
    {"action_without_origin", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"), ABSENT,
     ABSENT, F(TOKEN), CONSOLE_BAD_ORIGIN},
    {"action_origin_twice", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     TWICE("http://127.0.0.1:9465"), ABSENT, F(TOKEN), CONSOLE_BAD_ORIGIN},
    {"action_origin_longer", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     F("http://127.0.0.1:94651"), ABSENT, F(TOKEN), CONSOLE_BAD_ORIGIN},
    {"action_same_site_fetch", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     F("http://127.0.0.1:9465"), F("same-site"), F(TOKEN), CONSOLE_CROSS_SITE},
    {"action_fetch_site_twice", true, false, CONSOLE_REQUEST_ACTION, F("127.0.0.1:9465"),
     F("http://127.0.0.1:9465"), TWICE("same-origin"), F(TOKEN), CONSOLE_CROSS_SITE},
    {"action_rebound_name_same_origin", true, false, CONSOLE_REQUEST_ACTION, F("evil.example:9465"),
     F("http://evil.example:9465"), F("same-origin"), F(TOKEN), CONSOLE_BAD_HOST},
};

static void run_verdict_case(void **state)
{
    const struct verdict_case *c = *state;
    struct console_guard g = {c->actions, c->token_for_reads, {0}};
    char errstr[256];
    assert_int_equal(console_token_init(&g.token, TOKEN, errstr, sizeof errstr), 0);
    struct console_facts f = {c->kind, c->host, c->origin, c->fetch_site, c->token};
    enum console_verdict got = console_guard_check(&g, &f);
    if (got != c->verdict)
        fail_msg("got %s, want %s", console_verdict_name(got), console_verdict_name(c->verdict));
    /* Every refusal says why in words for people. */
    if (got != CONSOLE_ALLOWED)
        assert_true(strlen(console_verdict_text(got)) > 10);
}

#define CASES_MAX (ARRAY_LEN(fixed) + ARRAY_LEN(verdict_cases))

int main(int argc, char **argv)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_listen_addresses),
        cmocka_unit_test(test_host_values),
        cmocka_unit_test(test_token_rules),
        cmocka_unit_test(test_token_matches_only_itself),
        cmocka_unit_test(test_fingerprints_tell_tokens_apart_and_hide_them),
    };
    struct CMUnitTest tests[CASES_MAX];
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < ARRAY_LEN(verdict_cases); i++)
        tests[n++] = (struct CMUnitTest){verdict_cases[i].name, run_verdict_case, NULL, NULL,
                                         (void *)&verdict_cases[i]};
    return case_filter_run("console_guard", tests, n, NULL, NULL, argc, argv);
}
