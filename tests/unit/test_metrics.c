/*
 * test_metrics.c -- worker/daemon/metrics.c rendered into memory: every
 * series present from the start, counters after increments, histograms
 * cumulative with +Inf, _sum and _count, gauges, and label values escaped.
 * Every rendering is also read back by a checker of the exposition format
 * (HELP and TYPE before a family's samples, no series twice, valid labels).
 */
#include "case_filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/daemon/metrics.h"

#define SAMPLES_MAX 512
#define SERIES_BYTES_MAX 200
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------------------
 * Reading the text back
 * ------------------------------------------------------------------------- */

struct sample {
    char series[SERIES_BYTES_MAX]; /* as written: name{labels} */
    char family[SERIES_BYTES_MAX]; /* the TYPE line it falls under */
    double value;
};

struct exposition {
    struct sample samples[SAMPLES_MAX];
    size_t count;
};

static bool is_name_char(char c, bool first)
{
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    return alpha || (!first && c >= '0' && c <= '9');
}

/* A metric or label name at *p; moves past it. */
static void check_name(const char **p)
{
    assert_true(is_name_char(**p, true));
    while (is_name_char(**p, false))
        (*p)++;
}

/* {name="value",...}: only \\, \" and \n escapes inside a value. */
static void check_labels(const char **p)
{
    assert_int_equal(**p, '{');
    do {
        (*p)++;
        check_name(p);
        assert_int_equal(*(*p)++, '=');
        assert_int_equal(*(*p)++, '"');
        while (**p != '"') {
            assert_true(**p != '\0' && **p != '\n');
            if (*(*p)++ == '\\')
                assert_non_null(strchr("\\\"n", *(*p)++));
        }
        (*p)++;
    } while (**p == ',');
    assert_int_equal(*(*p)++, '}');
}

/* Whether a sample named `name` belongs to the family `family`. */
static bool in_family(const char *name, size_t len, const char *family)
{
    static const char *const suffixes[] = {"", "_bucket", "_sum", "_count"};
    size_t flen = strlen(family);
    if (len < flen || strncmp(name, family, flen) != 0)
        return false;
    for (size_t i = 0; i < ARRAY_LEN(suffixes); i++)
        if (len - flen == strlen(suffixes[i]) && strncmp(name + flen, suffixes[i], len - flen) == 0)
            return true;
    return false;
}

static void read_sample(struct exposition *e, const char *line, const char *family)
{
    const char *p = line;
    check_name(&p);
    assert_true(family[0] != '\0'); /* a TYPE line came first */
    if (!in_family(line, (size_t)(p - line), family))
        fail_msg("sample \"%s\" outside its family (under %s)", line, family);
    if (*p == '{')
        check_labels(&p);
    assert_int_equal(*p, ' ');
    assert_true(e->count < SAMPLES_MAX);
    struct sample *s = &e->samples[e->count++];
    size_t len = (size_t)(p - line);
    assert_true(len < sizeof s->series);
    memcpy(s->series, line, len);
    s->series[len] = '\0';
    snprintf(s->family, sizeof s->family, "%s", family);
    char *end = NULL;
    s->value = strtod(p + 1, &end);
    assert_true(end != p + 1 && *end == '\0');
    for (size_t i = 0; i + 1 < e->count; i++)
        if (strcmp(e->samples[i].series, s->series) == 0)
            fail_msg("series %s written twice", s->series);
}

/* Each line a "# HELP name text", then "# TYPE name type", or a sample of
 * the last TYPE's family. */
static void read_exposition(char *text, struct exposition *e)
{
    char family[SERIES_BYTES_MAX] = "", helped[SERIES_BYTES_MAX] = "";
    e->count = 0;
    size_t len = strlen(text);
    assert_true(len > 0 && text[len - 1] == '\n');
    for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        char name[SERIES_BYTES_MAX], rest[SERIES_BYTES_MAX];
        if (sscanf(line, "# HELP %199s %199[^\n]", name, rest) == 2) {
            snprintf(helped, sizeof helped, "%s", name);
        } else if (sscanf(line, "# TYPE %199s %199s", name, rest) == 2) {
            assert_string_equal(name, helped);
            assert_true(strcmp(rest, "counter") == 0 || strcmp(rest, "gauge") == 0 ||
                        strcmp(rest, "histogram") == 0);
            snprintf(family, sizeof family, "%s", name);
        } else {
            read_sample(e, line, family);
        }
    }
}

/* Renders `m` and reads it back into `e`. */
static void render(const struct metrics *m, struct exposition *e)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    metrics_render(m, out);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(strlen(text), len);
    read_exposition(text, e);
    free(text);
}

static const struct sample *find(const struct exposition *e, const char *series)
{
    for (size_t i = 0; i < e->count; i++)
        if (strcmp(e->samples[i].series, series) == 0)
            return &e->samples[i];
    fail_msg("no series %s", series);
    return NULL;
}

static void assert_value(const struct exposition *e, const char *series, double value)
{
    const struct sample *s = find(e, series);
    if (s->value != value)
        fail_msg("%s is %g, not %g", series, s->value, value);
}

/* For a sum of fractions, printed with 6 decimals. */
static void assert_value_near(const struct exposition *e, const char *series, double value)
{
    const struct sample *s = find(e, series);
    if (s->value < value - 1e-6 || s->value > value + 1e-6)
        fail_msg("%s is %.9f, not %.9f", series, s->value, value);
}

/* Every sample but the `except` ones (NULL-terminated) is 0. */
static void assert_rest_zero(const struct exposition *e, const char *const *except)
{
    for (size_t i = 0; i < e->count; i++) {
        bool listed = false;
        for (size_t k = 0; except[k] != NULL && !listed; k++)
            listed = strcmp(e->samples[i].series, except[k]) == 0;
        if (!listed && e->samples[i].value != 0)
            fail_msg("%s is %g, not 0", e->samples[i].series, e->samples[i].value);
    }
}

/* ---------------------------------------------------------------------------
 * The series
 * ------------------------------------------------------------------------- */

static size_t count_family(const struct exposition *e, const char *family)
{
    size_t n = 0;
    for (size_t i = 0; i < e->count; i++)
        n += strcmp(e->samples[i].family, family) == 0;
    return n;
}

static void test_every_series_is_present_from_the_start(void **state)
{
    (void)state;
    static struct metrics m;
    static struct exposition e;
    render(&m, &e);
    char series[SERIES_BYTES_MAX];
    for (int t = 0; t <= JOB_TYPE_COUNT; t++) {
        const char *type = t == JOB_TYPE_COUNT ? "unknown" : job_type_name((enum job_type)t);
        for (int err = 0; err < JOB_ERROR_COUNT; err++) {
            snprintf(series, sizeof series,
                     "credits_jobs_total{type=\"%s\",status=\"%s\",error=\"%s\"}", type,
                     err == JOB_OK ? "applied" : "rejected",
                     err == JOB_OK ? "none" : job_error_name((enum job_error)err));
            assert_value(&e, series, 0);
        }
    }
    size_t unstored = 0;
    for (int err = 1; err < JOB_ERROR_COUNT; err++) {
        if (job_error_is_stored((enum job_error)err))
            continue;
        unstored++;
        snprintf(series, sizeof series, "credits_dead_letters_total{reason=\"%s\"}",
                 job_error_name((enum job_error)err));
        assert_value(&e, series, 0);
    }
    assert_true(unstored > 0);
    assert_value(&e, "credits_dead_letters_total{reason=\"database_error\"}", 0);
    assert_value(&e, "credits_dead_letters_total{reason=\"max_deliveries\"}", 0);
    for (int s = 0; s < JOB_STREAM_COUNT; s++) {
        snprintf(series, sizeof series, "credits_pending_entries{stream=\"%s\"}",
                 job_stream_name((enum job_stream)s));
        assert_value(&e, series, 0);
    }
    struct family_size {
        const char *family;
        size_t samples;
    } sizes[] = {
        {"credits_jobs_total", (JOB_TYPE_COUNT + 1) * JOB_ERROR_COUNT},
        {"credits_replays_total", 1},
        {"credits_dead_letters_total", unstored + 2},
        {"credits_batch_jobs", METRICS_BATCH_BUCKETS + 3},
        {"credits_job_latency_seconds", METRICS_LATENCY_BUCKETS + 3},
        {"credits_pending_entries", JOB_STREAM_COUNT},
        {"credits_oldest_pending_age_seconds", JOB_STREAM_COUNT},
        {"credits_reconnects_total", 2},
        {"credits_db_errors_total", METRICS_DB_ERROR_KINDS},
        {"credits_inflight_jobs", 1},
        {"credits_up", 2},
        {"credits_ready", 1},
        {"credits_database_durable", 1},
        {"credits_sweep_runs_total", METRICS_SWEEP_OUTCOMES},
        {"credits_sweep_rows_total", METRICS_SWEEP_ROW_KINDS},
        {"credits_sweep_duration_seconds", 1},
        {"credits_sweep_lag_seconds", 1},
        {"credits_events_published_total", 1},
        {"credits_events_publish_failures_total", 1},
        {"credits_event_marks_pending", 1},
    };
    size_t total = 0;
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        assert_int_equal(count_family(&e, sizes[i].family), sizes[i].samples);
        total += sizes[i].samples;
    }
    assert_int_equal(e.count, total);
    const char *const none[] = {NULL};
    assert_rest_zero(&e, none);
}

static void test_counters_count_each_decision_under_its_labels(void **state)
{
    (void)state;
    static struct metrics m;
    static struct exposition e;
    metrics_count_job(&m, true, JOB_CONSUME, JOB_OK, false);
    metrics_count_job(&m, true, JOB_CONSUME, JOB_OK, true);
    metrics_count_job(&m, true, JOB_PURCHASE, JOB_ERR_UNKNOWN_PACK, true);
    metrics_count_job(&m, false, JOB_ALLOCATE, JOB_ERR_INVALID_JOB, false);
    metrics_count_dead_letter(&m, JOB_OK);
    metrics_count_dead_letter(&m, METRICS_DEAD_MAX_DELIVERIES);
    metrics_count_dead_letter(&m, METRICS_DEAD_MAX_DELIVERIES);
    metrics_count_dead_letter(&m, JOB_ERR_WRONG_STREAM);
    render(&m, &e);
    const char *const counted[] = {
        "credits_jobs_total{type=\"consume\",status=\"applied\",error=\"none\"}",
        "credits_jobs_total{type=\"purchase\",status=\"rejected\",error=\"unknown_pack\"}",
        "credits_jobs_total{type=\"unknown\",status=\"rejected\",error=\"invalid_job\"}",
        "credits_replays_total",
        "credits_dead_letters_total{reason=\"database_error\"}",
        "credits_dead_letters_total{reason=\"max_deliveries\"}",
        "credits_dead_letters_total{reason=\"wrong_stream\"}",
        NULL,
    };
    const double values[] = {2, 1, 1, 2, 1, 2, 1};
    for (size_t i = 0; i < ARRAY_LEN(values); i++)
        assert_value(&e, counted[i], values[i]);
    assert_rest_zero(&e, counted);
}

/* Bucket values in the order written, each one's `le` checked. */
static void assert_buckets(const struct exposition *e, const char *bucket, const char *const *le,
                           const double *cumulative, size_t count)
{
    char series[SERIES_BYTES_MAX];
    double last = 0;
    for (size_t b = 0; b < count; b++) {
        snprintf(series, sizeof series, "%s{le=\"%s\"}", bucket, le[b]);
        assert_value(e, series, cumulative[b]);
        assert_true(cumulative[b] >= last); /* the table itself is cumulative */
        last = cumulative[b];
    }
}

static void test_batch_histogram_is_cumulative_with_inf_sum_and_count(void **state)
{
    (void)state;
    static struct metrics m;
    static struct exposition e;
    const uint64_t jobs[] = {1, 2, 3, 4096, 5000};
    for (size_t i = 0; i < ARRAY_LEN(jobs); i++)
        metrics_observe_batch(&m, jobs[i]);
    render(&m, &e);
    const char *const le[] = {"1",   "2",   "4",   "8",    "16",   "32",   "64",
                              "128", "256", "512", "1024", "2048", "4096", "+Inf"};
    const double cumulative[] = {1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 5};
    _Static_assert(ARRAY_LEN(le) == METRICS_BATCH_BUCKETS + 1, "every bound");
    assert_buckets(&e, "credits_batch_jobs_bucket", le, cumulative, ARRAY_LEN(le));
    assert_value(&e, "credits_batch_jobs_sum", 1 + 2 + 3 + 4096 + 5000);
    assert_value(&e, "credits_batch_jobs_count", 5);
}

static void test_latency_histogram_is_cumulative_with_inf_sum_and_count(void **state)
{
    (void)state;
    static struct metrics m;
    static struct exposition e;
    /* Below 0 (clocks differ) counts as 0; a bound is in its own bucket. */
    const double seconds[] = {-1, 0.001, 0.0015, 0.3, 60, 61};
    for (size_t i = 0; i < ARRAY_LEN(seconds); i++)
        metrics_observe_latency(&m, seconds[i]);
    render(&m, &e);
    const char *const le[] = {"0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2",
                              "0.5",   "1",     "2",     "5",    "10",   "60",   "+Inf"};
    const double cumulative[] = {2, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 5, 6};
    _Static_assert(ARRAY_LEN(le) == METRICS_LATENCY_BUCKETS + 1, "every bound");
    assert_buckets(&e, "credits_job_latency_seconds_bucket", le, cumulative, ARRAY_LEN(le));
    assert_value_near(&e, "credits_job_latency_seconds_sum", 0 + 0.001 + 0.0015 + 0.3 + 60 + 61);
    assert_value(&e, "credits_job_latency_seconds_count", 6);
}

static void test_gauges_show_their_current_values(void **state)
{
    (void)state;
    static struct metrics m;
    static struct exposition e;
    m.pending[JOB_PURCHASE] = 5;
    m.oldest_pending_age_s[JOB_ALLOCATE] = 1.25;
    m.reconnects[METRICS_POSTGRES] = 2;
    m.db_errors[METRICS_DB_LOST] = 4;
    m.inflight_jobs = 17;
    m.up[METRICS_REDIS] = true;
    m.ready = true;
    m.database_durable = true;
    render(&m, &e);
    const char *const set[] = {
        "credits_pending_entries{stream=\"purchase\"}",
        "credits_oldest_pending_age_seconds{stream=\"allocate\"}",
        "credits_reconnects_total{peer=\"postgres\"}",
        "credits_db_errors_total{kind=\"lost\"}",
        "credits_inflight_jobs",
        "credits_up{peer=\"redis\"}",
        "credits_ready",
        "credits_database_durable",
        NULL,
    };
    const double values[] = {5, 1.25, 2, 4, 17, 1, 1, 1};
    for (size_t i = 0; i < ARRAY_LEN(values); i++)
        assert_value(&e, set[i], values[i]);
    assert_rest_zero(&e, set);
}

static void test_sweep_and_events_series_carry_their_values(void **state)
{
    (void)state;
    static struct metrics m;
    static struct exposition e;
    m.sweep_runs[METRICS_SWEEP_SKIPPED] = 3;
    m.sweep_rows[METRICS_SWEEP_LOTS_EXPIRED] = 7;
    m.sweep_rows[METRICS_SWEEP_EVENTS_RECOVERED] = 2;
    m.sweep_duration_s = 0.5;
    m.sweep_lag_s = 12.25;
    m.events_published = 9;
    m.events_publish_failures = 1;
    m.event_marks_pending = 4;
    render(&m, &e);
    const char *const set[] = {
        "credits_sweep_runs_total{outcome=\"skipped\"}",
        "credits_sweep_rows_total{kind=\"lots_expired\"}",
        "credits_sweep_rows_total{kind=\"events_recovered\"}",
        "credits_sweep_duration_seconds",
        "credits_sweep_lag_seconds",
        "credits_events_published_total",
        "credits_events_publish_failures_total",
        "credits_event_marks_pending",
        NULL,
    };
    const double values[] = {3, 7, 2, 0.5, 12.25, 9, 1, 4};
    for (size_t i = 0; i < ARRAY_LEN(values); i++)
        assert_value(&e, set[i], values[i]);
    assert_rest_zero(&e, set);
}

/* ---------------------------------------------------------------------------
 * Label values
 * ------------------------------------------------------------------------- */

struct escape_case {
    const char *name;
    const char *value;
    const char *written;
};

static const struct escape_case escape_cases[] = {
    {"label_plain_value_is_written_as_is", "consume", "consume"},
    {"label_empty_value", "", ""},
    {"label_backslash_is_escaped", "a\\b", "a\\\\b"},
    {"label_double_quote_is_escaped", "say \"hi\"", "say \\\"hi\\\""},
    {"label_line_feed_is_escaped", "two\nlines", "two\\nlines"},
    {"label_escapes_together", "\\\"\n", "\\\\\\\"\\n"},
    {"label_other_bytes_are_kept", "tab\there \xc3\xa9 \r", "tab\there \xc3\xa9 \r"},
};

static void run_escape_case(void **state)
{
    const struct escape_case *c = *state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    metrics_write_label_value(c->value, out);
    assert_int_equal(fclose(out), 0);
    assert_string_equal(text, c->written);
    /* What the checker reads back as one label value. */
    char series[SERIES_BYTES_MAX];
    snprintf(series, sizeof series, "x{l=\"%s\"}", text);
    const char *p = series + 1;
    check_labels(&p);
    assert_int_equal(*p, '\0');
    free(text);
}

int main(int argc, char **argv)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_every_series_is_present_from_the_start),
        cmocka_unit_test(test_counters_count_each_decision_under_its_labels),
        cmocka_unit_test(test_batch_histogram_is_cumulative_with_inf_sum_and_count),
        cmocka_unit_test(test_latency_histogram_is_cumulative_with_inf_sum_and_count),
        cmocka_unit_test(test_gauges_show_their_current_values),
        cmocka_unit_test(test_sweep_and_events_series_carry_their_values),
    };
    struct CMUnitTest tests[ARRAY_LEN(fixed) + ARRAY_LEN(escape_cases)];
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < ARRAY_LEN(escape_cases); i++)
        tests[n++] = (struct CMUnitTest){escape_cases[i].name, run_escape_case, NULL, NULL,
                                         (void *)&escape_cases[i]};
    return case_filter_run("metrics", tests, n, NULL, NULL, argc, argv);
}
