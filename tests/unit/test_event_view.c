/*
 * test_event_view.c -- how creditsctl shows an entry of {prefix}:events
 * (worker/ctl/event_view.c): each of the six event types, encoded by the
 * worker's codec, as table cells and as JSON with every key; bytes that are
 * no event (garbage, another message, none at all) shown as such with their
 * hex; the --user filter; times in UTC at the calendar's edges.
 */
#include "case_filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "worker/ctl/event_view.h"
#include "worker/ctl/json_out.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* 2026-01-02T03:04:05.678Z */
#define AT_MS INT64_C(1767323045678)

/* An event of `type` as the worker stores it, its type's keys set. */
static struct event make_event(enum event_type type)
{
    struct event e;
    memset(&e, 0, sizeof e);
    e.event_id = 42;
    e.type = type;
    snprintf(e.user, sizeof e.user, "alice");
    snprintf(e.job, sizeof e.job, "job-7");
    e.at_ms = AT_MS;
    e.balance = (struct balance){.total = 90, .pack = 50, .monthly = 30, .grant = 10, .held = 5};
    switch (type) {
    case EVENT_BALANCE_LOW:
    case EVENT_BALANCE_RECOVERED:
        e.threshold = 100;
        break;
    case EVENT_BALANCE_DEPLETED:
        break;
    case EVENT_CREDITS_EXPIRING:
        e.lot = 12;
        e.credits = 250;
        e.expires_at_ms = INT64_C(1767916800000); /* 2026-01-09T00:00:00Z */
        break;
    case EVENT_CREDITS_EXPIRED:
        e.lot = 12;
        e.credits = 250;
        break;
    case EVENT_HOLD_EXPIRED:
        snprintf(e.hold, sizeof e.hold, "hold-3");
        e.released = 60;
        break;
    }
    return e;
}

/* The entry `entry` holding `e` as codec_encode_event() writes it. */
static void read_encoded(struct event_view *v, const char *entry, const struct event *e)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(codec_encode_event(e, &buf), 0);
    event_view_read(v, entry, strlen(entry), buf.data, buf.size, true);
    msgpack_sbuffer_destroy(&buf);
}

/* The entry as JSON (one document); the caller frees it. */
static char *json_text(const struct event_view *v)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    struct json j;
    json_init(&j, out);
    event_view_json(&j, NULL, v);
    json_finish(&j);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(strlen(text), len);
    /* A copy of its own: GCC (-Wdangling-pointer) takes the buffer for the
     * local whose address open_memstream() was given. */
    char *copy = strdup(text);
    assert_non_null(copy);
    free(text);
    return copy;
}

/* The row's cells joined by '|', a NULL cell as "-". */
static void row_text(const struct event_view *v, char *out, size_t out_len)
{
    struct event_view_row row;
    event_view_row(v, &row);
    size_t used = 0;
    out[0] = '\0';
    for (int c = 0; c < EVENT_VIEW_COLS; c++) {
        int n = snprintf(out + used, out_len - used, "%s%s", c ? "|" : "",
                         row.cells[c] ? row.cells[c] : "-");
        assert_true(n > 0 && (size_t)n < out_len - used);
        used += (size_t)n;
    }
}

/* ---------------------------------------------------------------------------
 * Each event type
 * ------------------------------------------------------------------------- */

#define COMMON_JSON                                                                                \
    "{\"entry\":\"1767323045678-0\",\"v\":1,\"event_id\":42,\"type\":\"%s\",\"user\":\"alice\","   \
    "\"at\":1767323045678,\"balance\":{\"total\":90,\"pack\":50,\"monthly\":30,\"grant\":10,"      \
    "\"held\":5},\"job\":\"job-7\""

struct type_case {
    const char *name;
    enum event_type type;
    const char *details; /* the table's details cell */
    const char *keys;    /* the JSON after the common keys */
};

static const struct type_case type_cases[] = {
    {"type_balance_low", EVENT_BALANCE_LOW, "threshold=100", ",\"threshold\":100}"},
    {"type_balance_depleted", EVENT_BALANCE_DEPLETED, "-", "}"},
    {"type_balance_recovered", EVENT_BALANCE_RECOVERED, "threshold=100", ",\"threshold\":100}"},
    {"type_credits_expiring", EVENT_CREDITS_EXPIRING,
     "lot=12 credits=250 expires_at=2026-01-09T00:00:00Z",
     ",\"lot\":12,\"credits\":250,\"expires_at\":1767916800000}"},
    {"type_credits_expired", EVENT_CREDITS_EXPIRED, "lot=12 credits=250",
     ",\"lot\":12,\"credits\":250}"},
    {"type_hold_expired", EVENT_HOLD_EXPIRED, "hold=hold-3 released=60",
     ",\"hold\":\"hold-3\",\"released\":60}"},
};

static void run_type_case(void **state)
{
    const struct type_case *c = *state;
    struct event e = make_event(c->type);
    struct event_view v;
    read_encoded(&v, "1767323045678-0", &e);
    assert_true(v.is_event);
    assert_string_equal(v.entry, "1767323045678-0");

    char want[1024], got[2048];
    snprintf(want, sizeof want, "42|2026-01-02T03:04:05Z|%s|alice|job-7|%s|90|5",
             event_type_name(c->type), c->details);
    row_text(&v, got, sizeof got);
    assert_string_equal(got, want);

    char *json = json_text(&v);
    snprintf(want, sizeof want, COMMON_JSON "%s\n", event_type_name(c->type), c->keys);
    assert_string_equal(json, want);
    free(json);
}

static void test_the_header_and_its_numbers_to_the_right(void **state)
{
    (void)state;
    const char *names[EVENT_VIEW_COLS] = {"event_id", "time",    "type",  "user",
                                          "job",      "details", "total", "held"};
    const bool right[EVENT_VIEW_COLS] = {true, false, false, false, false, false, true, true};
    for (int c = 0; c < EVENT_VIEW_COLS; c++) {
        assert_string_equal(event_view_header[c], names[c]);
        assert_int_equal(event_view_right[c], right[c]);
    }
}

/* The user's bytes reach the table raw (the table makes them safe) and
 * JSON escaped. */
static void test_a_user_with_control_bytes_is_escaped_in_json(void **state)
{
    (void)state;
    struct event e = make_event(EVENT_BALANCE_DEPLETED);
    snprintf(e.user, sizeof e.user, "a\"b\x1b[31m");
    struct event_view v;
    read_encoded(&v, "5-1", &e);
    assert_true(v.is_event);
    struct event_view_row row;
    event_view_row(&v, &row);
    assert_string_equal(row.cells[3], "a\"b\x1b[31m");
    char *json = json_text(&v);
    assert_non_null(strstr(json, "\"user\":\"a\\\"b\\u001b[31m\""));
    free(json);
}

/* ---------------------------------------------------------------------------
 * Entries that are not events
 * ------------------------------------------------------------------------- */

static void test_garbage_is_not_an_event_with_its_hex(void **state)
{
    (void)state;
    struct event_view v;
    event_view_read(&v, "9-0", 3, "garbage!", 8, true);
    assert_false(v.is_event);
    assert_int_equal(v.bytes, 8);
    char got[1024];
    row_text(&v, got, sizeof got);
    assert_string_equal(got, "-|-|(not an event)|-|-|entry 9-0: 8 bytes 6761726261676521|-|-");
    char *json = json_text(&v);
    assert_string_equal(json, "{\"entry\":\"9-0\",\"error\":\"not an event\",\"bytes\":8,"
                              "\"hex\":\"6761726261676521\"}\n");
    free(json);
}

static void test_long_garbage_shows_its_first_bytes(void **state)
{
    (void)state;
    unsigned char bytes[1000];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)i;
    struct event_view v;
    event_view_read(&v, "9-1", 3, bytes, sizeof bytes, true);
    assert_false(v.is_event);
    assert_int_equal(v.bytes, 1000);
    assert_int_equal(v.head_len, EVENT_VIEW_HEAD_BYTES);
    char got[1024];
    row_text(&v, got, sizeof got);
    assert_string_equal(
        got,
        "-|-|(not an event)|-|-|entry 9-1: 1000 bytes 000102030405060708090a0b0c0d0e0f...|-|-");
    char *json = json_text(&v);
    assert_non_null(strstr(json, "\"bytes\":1000,\"hex\":\"00010203"));
    const char *hex = strstr(json, "\"hex\":\"") + 7;
    assert_int_equal(strchr(hex, '"') - hex, 2 * EVENT_VIEW_HEAD_BYTES);
    free(json);
}

static void test_an_entry_without_the_event_field(void **state)
{
    (void)state;
    struct event_view v;
    event_view_read(&v, "9-2", 3, NULL, 0, false);
    assert_false(v.is_event);
    char got[1024];
    row_text(&v, got, sizeof got);
    assert_string_equal(got, "-|-|(not an event)|-|-|entry 9-2: no event field|-|-");
    char *json = json_text(&v);
    assert_string_equal(
        json, "{\"entry\":\"9-2\",\"error\":\"no event field\",\"bytes\":0,\"hex\":\"\"}\n");
    free(json);
}

/* Valid msgpack that is another message (a job's result) is no event. */
static void test_a_result_is_not_an_event(void **state)
{
    (void)state;
    struct result r;
    memset(&r, 0, sizeof r);
    r.has_id = r.has_type = r.has_user = true;
    snprintf(r.id, sizeof r.id, "job-1");
    r.type = JOB_CONSUME;
    snprintf(r.user, sizeof r.user, "alice");
    r.error = JOB_OK;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(codec_encode_result(&r, &buf), 0);
    struct event_view v;
    event_view_read(&v, "9-3", 3, buf.data, buf.size, true);
    assert_false(v.is_event);
    assert_int_equal(v.bytes, buf.size);
    msgpack_sbuffer_destroy(&buf);
    assert_false(event_view_matches(&v, "alice"));
}

static void test_an_event_cut_short_is_not_an_event(void **state)
{
    (void)state;
    struct event e = make_event(EVENT_HOLD_EXPIRED);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(codec_encode_event(&e, &buf), 0);
    struct event_view v;
    for (size_t len = 0; len < buf.size; len++) {
        event_view_read(&v, "9-4", 3, buf.data, len, true);
        assert_false(v.is_event);
        assert_int_equal(v.bytes, len);
    }
    event_view_read(&v, "9-4", 3, buf.data, buf.size, true);
    assert_true(v.is_event);
    msgpack_sbuffer_destroy(&buf);
}

static void test_an_entry_id_too_long_is_cut(void **state)
{
    (void)state;
    char id[100];
    memset(id, '7', sizeof id);
    struct event_view v;
    event_view_read(&v, id, sizeof id, "x", 1, true);
    assert_int_equal(strlen(v.entry), EVENT_VIEW_ENTRY_BYTES - 1);
}

/* ---------------------------------------------------------------------------
 * --user
 * ------------------------------------------------------------------------- */

static void test_user_filter_picks_that_users_events_only(void **state)
{
    (void)state;
    struct event e = make_event(EVENT_BALANCE_LOW);
    struct event_view v, garbage;
    read_encoded(&v, "1-0", &e);
    event_view_read(&garbage, "2-0", 3, "\xc1", 1, true);
    assert_true(event_view_matches(&v, NULL));
    assert_true(event_view_matches(&garbage, NULL));
    assert_true(event_view_matches(&v, "alice"));
    assert_false(event_view_matches(&v, "alic"));
    assert_false(event_view_matches(&v, "alice2"));
    assert_false(event_view_matches(&v, "Alice"));
    assert_false(event_view_matches(&garbage, "alice"));
}

/* ---------------------------------------------------------------------------
 * Times
 * ------------------------------------------------------------------------- */

struct time_case {
    int64_t ms;
    const char *text;
};

static void test_times_are_utc_to_the_second(void **state)
{
    (void)state;
    static const struct time_case cases[] = {
        {0, "1970-01-01T00:00:00Z"},
        {999, "1970-01-01T00:00:00Z"},
        {-1, "1969-12-31T23:59:59Z"},
        {-1000, "1969-12-31T23:59:59Z"},
        {-1001, "1969-12-31T23:59:58Z"},
        {AT_MS, "2026-01-02T03:04:05Z"},
        {INT64_C(1709208000000), "2024-02-29T12:00:00Z"},
        {INT64_C(253402300799999), "9999-12-31T23:59:59Z"},
        {INT64_C(253402300800000), "253402300800000 ms"},
        {INT64_C(-62167219200000), "0000-01-01T00:00:00Z"},
        {INT64_C(-62167219200001), "-62167219200001 ms"},
        {INT64_MAX, "9223372036854775807 ms"},
        {INT64_MIN, "-9223372036854775808 ms"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char out[EVENT_VIEW_TIME_BYTES];
        event_view_time(cases[i].ms, out);
        assert_string_equal(out, cases[i].text);
    }
}

int main(int argc, char **argv)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_the_header_and_its_numbers_to_the_right),
        cmocka_unit_test(test_a_user_with_control_bytes_is_escaped_in_json),
        cmocka_unit_test(test_garbage_is_not_an_event_with_its_hex),
        cmocka_unit_test(test_long_garbage_shows_its_first_bytes),
        cmocka_unit_test(test_an_entry_without_the_event_field),
        cmocka_unit_test(test_a_result_is_not_an_event),
        cmocka_unit_test(test_an_event_cut_short_is_not_an_event),
        cmocka_unit_test(test_an_entry_id_too_long_is_cut),
        cmocka_unit_test(test_user_filter_picks_that_users_events_only),
        cmocka_unit_test(test_times_are_utc_to_the_second),
    };
    struct CMUnitTest tests[ARRAY_LEN(fixed) + ARRAY_LEN(type_cases)];
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(type_cases); i++)
        tests[n++] = (struct CMUnitTest){type_cases[i].name, run_type_case, NULL, NULL,
                                         (void *)&type_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        tests[n++] = fixed[i];
    return case_filter_run("event_view", tests, n, NULL, NULL, argc, argv);
}
