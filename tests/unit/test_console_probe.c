/*
 * test_console_probe.c -- what the console reads of the workers
 * (worker/ctl/console_probe.c), without a network: --worker URLs (addresses
 * and localhost only, a port always), HTTP answers whole and not, and the
 * Prometheus samples worth showing (credits_ metrics; no comments, buckets
 * or counters at 0), with labels holding quotes, braces and spaces.
 */
#include "case_filter.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "worker/ctl/console_probe.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_worker_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        const char *shown; /* NULL: refused */
        const char *authority;
        int family;
        int port;
    } cases[] = {
        {"http://127.0.0.1:9464", "http://127.0.0.1:9464", "127.0.0.1:9464", AF_INET, 9464},
        {"http://127.0.0.1:9464/", "http://127.0.0.1:9464", "127.0.0.1:9464", AF_INET, 9464},
        {"http://localhost:9464", "http://localhost:9464", "localhost:9464", AF_INET, 9464},
        {"http://[::1]:9464", "http://[::1]:9464", "[::1]:9464", AF_INET6, 9464},
        {"http://10.0.0.5:1", "http://10.0.0.5:1", "10.0.0.5:1", AF_INET, 1},
        {"http://127.0.0.1", NULL, NULL, 0, 0},
        {"http://127.0.0.1:0", NULL, NULL, 0, 0},
        {"http://127.0.0.1:65536", NULL, NULL, 0, 0},
        {"https://127.0.0.1:9464", NULL, NULL, 0, 0},
        {"http://worker.internal:9464", NULL, NULL, 0, 0},
        {"http://127.0.0.1:9464/metrics", NULL, NULL, 0, 0},
        {"http://[::1]9464", NULL, NULL, 0, 0},
        {"http://[::1:9464", NULL, NULL, 0, 0},
        {"http://", NULL, NULL, 0, 0},
        {"127.0.0.1:9464", NULL, NULL, 0, 0},
        {"", NULL, NULL, 0, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct console_worker w;
        char errstr[256] = "";
        int rc = console_worker_parse(cases[i].url, &w, errstr, sizeof errstr);
        if (!cases[i].shown) {
            if (rc != -1)
                fail_msg("accepted: %s", cases[i].url);
            assert_non_null(strstr(errstr, "--worker"));
            continue;
        }
        if (rc != 0)
            fail_msg("refused: %s (%s)", cases[i].url, errstr);
        assert_string_equal(w.url, cases[i].shown);
        assert_string_equal(w.authority, cases[i].authority);
        assert_int_equal(w.addr.ss_family, cases[i].family);
        int port = cases[i].family == AF_INET ? ntohs(((struct sockaddr_in *)&w.addr)->sin_port)
                                              : ntohs(((struct sockaddr_in6 *)&w.addr)->sin6_port);
        assert_int_equal(port, cases[i].port);
    }
}

static void test_http_answers(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int status; /* -1: refused */
        const char *body;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok\n", 200, "ok\n"},
        {"HTTP/1.0 503 Service Unavailable\r\n\r\nnot ok: postgres\n", 503, "not ok: postgres\n"},
        {"HTTP/1.1 204\r\n\r\n", 204, ""},
        {"HTTP/1.1 200 OK\n\nbare", 200, "bare"},
        {"HTTP/1.1 200 OK\r\nX: y\r\n", -1, NULL},
        {"HTTP/2 200 OK\r\n\r\n", -1, NULL},
        {"HTTP/1.1 2x0 OK\r\n\r\n", -1, NULL},
        {"HTTP/1.1 2000 OK\r\n\r\n", -1, NULL},
        {"SSH-2.0-OpenSSH\r\n\r\n", -1, NULL},
        {"", -1, NULL},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int status = 0;
        size_t body = 0;
        int rc = console_response_parse(cases[i].text, strlen(cases[i].text), &status, &body);
        if (cases[i].status < 0) {
            if (rc != -1)
                fail_msg("accepted: %s", cases[i].text);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(status, cases[i].status);
        assert_string_equal(cases[i].text + body, cases[i].body);
    }
}

static void test_metric_samples(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *name; /* NULL: not shown */
        const char *labels;
        const char *value;
    } cases[] = {
        {"credits_ready 1", "credits_ready", "", "1"},
        {"credits_ready 0", "credits_ready", "", "0"}, /* a gauge at 0 says something */
        {"credits_up{peer=\"redis\"} 1", "credits_up", "peer=\"redis\"", "1"},
        {"credits_jobs_total{type=\"consume\",status=\"applied\",error=\"none\"} 201",
         "credits_jobs_total", "type=\"consume\",status=\"applied\",error=\"none\"", "201"},
        {"credits_oldest_pending_age_seconds{stream=\"consume\"} 12.345",
         "credits_oldest_pending_age_seconds", "stream=\"consume\"", "12.345"},
        {"credits_x{reason=\"a } b\\\" c\"} 3", "credits_x", "reason=\"a } b\\\" c\"", "3"},
        {"credits_job_latency_seconds_sum 0.5 1764000000000", "credits_job_latency_seconds_sum", "",
         "0.5"},
        {"credits_jobs_total{type=\"grant\",status=\"applied\",error=\"none\"} 0", NULL, NULL,
         NULL},
        {"credits_batch_jobs_bucket{le=\"1\"} 4", NULL, NULL, NULL},
        {"# HELP credits_ready 1 while /readyz answers 200.", NULL, NULL, NULL},
        {"# TYPE credits_ready gauge", NULL, NULL, NULL},
        {"process_cpu_seconds_total 3", NULL, NULL, NULL},
        {"credits_ 1", NULL, NULL, NULL},
        {"credits_x{a=\"unclosed} 1", NULL, NULL, NULL},
        {"credits_x", NULL, NULL, NULL},
        {"credits_x ", NULL, NULL, NULL},
        {"", NULL, NULL, NULL},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct console_metric m;
        bool shown = console_metric_parse(cases[i].line, strlen(cases[i].line), &m);
        if (shown != (cases[i].name != NULL))
            fail_msg("%s: shown %d", cases[i].line, shown);
        if (!shown)
            continue;
        assert_string_equal(m.name, cases[i].name);
        assert_string_equal(m.labels, cases[i].labels);
        assert_string_equal(m.value, cases[i].value);
    }
}

static void test_metric_lines_past_their_bounds_are_not_shown(void **state)
{
    (void)state;
    char line[CONSOLE_METRIC_LABELS_BYTES_MAX + 64];
    int n = snprintf(line, sizeof line, "credits_x{a=\"");
    memset(line + n, 'v', CONSOLE_METRIC_LABELS_BYTES_MAX);
    snprintf(line + n + CONSOLE_METRIC_LABELS_BYTES_MAX,
             sizeof line - (size_t)n - CONSOLE_METRIC_LABELS_BYTES_MAX, "\"} 1");
    struct console_metric m;
    assert_false(console_metric_parse(line, strlen(line), &m));
    /* Every prefix of a good line is parsed without reading past it. */
    static const char good[] = "credits_up{peer=\"postgres\"} 1";
    for (size_t cut = 0; cut <= sizeof good - 1; cut++)
        (void)console_metric_parse(good, cut, &m);
    assert_true(console_metric_parse(good, sizeof good - 1, &m));
}

int main(int argc, char **argv)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_urls),
        cmocka_unit_test(test_http_answers),
        cmocka_unit_test(test_metric_samples),
        cmocka_unit_test(test_metric_lines_past_their_bounds_are_not_shown),
    };
    return case_filter_run("console_probe", tests, ARRAY_LEN(tests), NULL, NULL, argc, argv);
}
