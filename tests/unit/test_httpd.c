/*
 * test_httpd.c -- the request parsing of the shared HTTP server
 * (worker/common/httpd.c): request lines that are and are not HTTP/1.x,
 * methods, paths and query strings at and past their bounds, header fields
 * found case-insensitively, trimmed, and counted when given twice; and heads
 * of every byte value and length parsed without a crash.
 */
#include "case_filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/common/httpd.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------------------
 * Request lines
 * ------------------------------------------------------------------------- */

struct line_case {
    const char *name;
    const char *head;
    int status; /* 0 or 400 */
    enum httpd_method method;
    const char *path;
    const char *query;
    bool query_too_long;
};

static const struct line_case line_cases[] = {
    {"line_get", "GET /metrics HTTP/1.1", 0, HTTPD_GET, "/metrics", "", false},
    {"line_head_http10", "HEAD /healthz HTTP/1.0", 0, HTTPD_HEAD, "/healthz", "", false},
    {"line_post_with_query", "POST /api/dead/retry?id=1-0&force=1 HTTP/1.1", 0, HTTPD_POST,
     "/api/dead/retry", "id=1-0&force=1", false},
    {"line_other_method", "DELETE /x HTTP/1.1", 0, HTTPD_OTHER, "/x", "", false},
    {"line_lowercase_method_is_other", "get /x HTTP/1.1", 0, HTTPD_OTHER, "/x", "", false},
    {"line_empty_query", "GET /x? HTTP/1.1", 0, HTTPD_GET, "/x", "", false},
    {"line_with_headers", "GET /x HTTP/1.1\r\nHost: a", 0, HTTPD_GET, "/x", "", false},
    {"line_bare_lf", "GET /x HTTP/1.1\nHost: a", 0, HTTPD_GET, "/x", "", false},
    {"line_no_version", "GET /x", 400, HTTPD_GET, NULL, NULL, false},
    {"line_http2", "GET /x HTTP/2.0", 400, HTTPD_GET, NULL, NULL, false},
    {"line_version_too_long", "GET /x HTTP/1.11", 400, HTTPD_GET, NULL, NULL, false},
    {"line_target_not_a_path", "GET http://a/x HTTP/1.1", 400, HTTPD_GET, NULL, NULL, false},
    {"line_no_method", " /x HTTP/1.1", 400, HTTPD_GET, NULL, NULL, false},
    {"line_two_spaces", "GET  /x HTTP/1.1", 400, HTTPD_GET, NULL, NULL, false},
    {"line_empty", "", 400, HTTPD_GET, NULL, NULL, false},
    {"line_garbage", "\x16\x03\x01\x02\x00", 400, HTTPD_GET, NULL, NULL, false},
};

static void run_line_case(void **state)
{
    const struct line_case *c = *state;
    struct httpd_request req;
    assert_int_equal(httpd_parse_head(c->head, strlen(c->head), &req), c->status);
    if (c->status != 0)
        return;
    assert_int_equal(req.method, c->method);
    assert_string_equal(req.path, c->path);
    assert_string_equal(req.query, c->query);
    assert_int_equal(req.query_too_long, c->query_too_long);
    assert_int_equal(req.body_len, 0);
}

/* A target of `path_len` bytes of path and `query_len` of query. */
static char *target_line(size_t path_len, size_t query_len)
{
    char *line = malloc(path_len + query_len + 32);
    assert_non_null(line);
    size_t n = (size_t)sprintf(line, "GET /");
    memset(line + n, 'p', path_len - 1);
    n += path_len - 1;
    if (query_len > 0) {
        line[n++] = '?';
        memset(line + n, 'q', query_len);
        n += query_len;
    }
    strcpy(line + n, " HTTP/1.1");
    return line;
}

static void test_path_at_its_bound_is_kept_and_past_it_is_empty(void **state)
{
    (void)state;
    struct httpd_request req;
    char *line = target_line(HTTPD_PATH_BYTES_MAX, 0);
    assert_int_equal(httpd_parse_head(line, strlen(line), &req), 0);
    assert_int_equal(strlen(req.path), HTTPD_PATH_BYTES_MAX);
    free(line);
    line = target_line(HTTPD_PATH_BYTES_MAX + 1, 0);
    assert_int_equal(httpd_parse_head(line, strlen(line), &req), 0);
    assert_string_equal(req.path, ""); /* served by no route: 404 */
    free(line);
}

static void test_query_at_its_bound_is_kept_and_past_it_is_flagged(void **state)
{
    (void)state;
    struct httpd_request req;
    char *line = target_line(4, HTTPD_QUERY_BYTES_MAX);
    assert_int_equal(httpd_parse_head(line, strlen(line), &req), 0);
    assert_int_equal(strlen(req.query), HTTPD_QUERY_BYTES_MAX);
    assert_false(req.query_too_long);
    free(line);
    line = target_line(4, HTTPD_QUERY_BYTES_MAX + 1);
    assert_int_equal(httpd_parse_head(line, strlen(line), &req), 0);
    assert_string_equal(req.query, "");
    assert_true(req.query_too_long);
    assert_string_equal(req.path, "/ppp");
    free(line);
}

/* ---------------------------------------------------------------------------
 * Header fields
 * ------------------------------------------------------------------------- */

static const char fields_head[] = "POST /api/x HTTP/1.1\r\n"
                                  "Host: 127.0.0.1:9465\r\n"
                                  "origin:   http://127.0.0.1:9465  \r\n"
                                  "X-Console-Token:\tsecret\r\n"
                                  "not a field\r\n"
                                  "X-Twice: one\r\n"
                                  "X-TWICE: two\r\n"
                                  "Empty:\r\n"
                                  "Hostile: a: b";

static struct httpd_request parsed_fields(void)
{
    struct httpd_request req;
    assert_int_equal(httpd_parse_head(fields_head, strlen(fields_head), &req), 0);
    return req;
}

/* The one value of `name`, as a string. */
static void expect_field(const struct httpd_request *req, const char *name,
                         enum httpd_field_count count, const char *value)
{
    const char *v = NULL;
    size_t len = 0;
    assert_int_equal(httpd_field(req, name, &v, &len), count);
    if (count == HTTPD_FIELD_ABSENT)
        return;
    assert_int_equal(len, strlen(value));
    assert_memory_equal(v, value, len);
}

static void test_fields_are_found_case_insensitively_and_trimmed(void **state)
{
    (void)state;
    struct httpd_request req = parsed_fields();
    expect_field(&req, "Host", HTTPD_FIELD_ONE, "127.0.0.1:9465");
    expect_field(&req, "HOST", HTTPD_FIELD_ONE, "127.0.0.1:9465");
    expect_field(&req, "Origin", HTTPD_FIELD_ONE, "http://127.0.0.1:9465");
    expect_field(&req, "x-console-token", HTTPD_FIELD_ONE, "secret");
    expect_field(&req, "Empty", HTTPD_FIELD_ONE, "");
    expect_field(&req, "Hostile", HTTPD_FIELD_ONE, "a: b");
}

static void test_a_field_given_twice_counts_as_many_with_the_first_value(void **state)
{
    (void)state;
    struct httpd_request req = parsed_fields();
    expect_field(&req, "X-Twice", HTTPD_FIELD_MANY, "one");
}

static void test_absent_fields_and_prefixes_of_names_are_not_found(void **state)
{
    (void)state;
    struct httpd_request req = parsed_fields();
    expect_field(&req, "Content-Length", HTTPD_FIELD_ABSENT, NULL);
    expect_field(&req, "Hos", HTTPD_FIELD_ABSENT, NULL);
    expect_field(&req, "Host:", HTTPD_FIELD_ABSENT, NULL);
    expect_field(&req, "not a field", HTTPD_FIELD_ABSENT, NULL);
    /* Counting alone, without asking for the value. */
    assert_int_equal(httpd_field(&req, "X-Twice", NULL, NULL), HTTPD_FIELD_MANY);
}

static void test_reason_phrases(void **state)
{
    (void)state;
    assert_string_equal(httpd_reason(200), "OK");
    assert_string_equal(httpd_reason(403), "Forbidden");
    assert_string_equal(httpd_reason(431), "Request Header Fields Too Large");
    assert_string_equal(httpd_reason(299), "Unknown");
}

/* ---------------------------------------------------------------------------
 * Any bytes
 * ------------------------------------------------------------------------- */

/* Every prefix of a request, and every single byte changed to each value:
 * parsed (0 or 400) within its bounds, its fields looked up safely. Run
 * under the sanitizers, any read past the bytes fails. */
static void test_any_bytes_parse_without_a_crash(void **state)
{
    (void)state;
    const char *base = fields_head;
    size_t len = strlen(base);
    int parsed = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        char *copy = malloc(cut ? cut : 1); /* exactly cut bytes: no terminator to lean on */
        assert_non_null(copy);
        memcpy(copy, base, cut);
        struct httpd_request req;
        int rc = httpd_parse_head(copy, cut, &req);
        assert_true(rc == 0 || rc == 400);
        if (rc == 0) {
            parsed++;
            (void)httpd_field(&req, "Host", NULL, NULL);
            (void)httpd_field(&req, "X-Twice", NULL, NULL);
        }
        free(copy);
    }
    for (size_t at = 0; at < 24; at++) {
        for (unsigned b = 0; b <= 0xFF; b++) {
            char *copy = malloc(len);
            assert_non_null(copy);
            memcpy(copy, base, len);
            copy[at] = (char)b;
            struct httpd_request req;
            int rc = httpd_parse_head(copy, len, &req);
            assert_true(rc == 0 || rc == 400);
            if (rc == 0)
                (void)httpd_field(&req, "Origin", NULL, NULL);
            free(copy);
        }
    }
    /* The cuts after the request line's version parse. */
    assert_true(parsed > 0);
}

#define CASES_MAX (ARRAY_LEN(fixed) + ARRAY_LEN(line_cases))

int main(int argc, char **argv)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_path_at_its_bound_is_kept_and_past_it_is_empty),
        cmocka_unit_test(test_query_at_its_bound_is_kept_and_past_it_is_flagged),
        cmocka_unit_test(test_fields_are_found_case_insensitively_and_trimmed),
        cmocka_unit_test(test_a_field_given_twice_counts_as_many_with_the_first_value),
        cmocka_unit_test(test_absent_fields_and_prefixes_of_names_are_not_found),
        cmocka_unit_test(test_reason_phrases),
        cmocka_unit_test(test_any_bytes_parse_without_a_crash),
    };
    struct CMUnitTest tests[CASES_MAX];
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < ARRAY_LEN(line_cases); i++)
        tests[n++] = (struct CMUnitTest){line_cases[i].name, run_line_case, NULL, NULL,
                                         (void *)&line_cases[i]};
    return case_filter_run("httpd", tests, n, NULL, NULL, argc, argv);
}
