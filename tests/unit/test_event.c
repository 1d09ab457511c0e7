/*
 * test_event.c -- unit tests of core/event.c and the events' wire format
 * (codec_encode_event, codec_decode_event): the threshold rule of contract
 * 9.8 at its boundaries, the events of one change's entries, and the event
 * map's keys, their order, and their decoding.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "case_filter.h"
#include "core/codec.h"
#include "core/event.h"

static const struct event_threshold threshold_100 = {true, 100};
static const struct event_threshold no_threshold = {false, 0};

static size_t crossings(int64_t before, int64_t after, struct event_threshold t,
                        enum event_type out[2])
{
    memset(out, 0xff, 2 * sizeof *out);
    return event_crossings(before, after, t, out);
}

static void test_low_exactly_when_crossing_below_the_threshold(void **state)
{
    (void)state;
    enum event_type out[2];
    assert_int_equal(crossings(100, 99, threshold_100, out), 1);
    assert_int_equal(out[0], EVENT_BALANCE_LOW);
    assert_int_equal(crossings(250, 10, threshold_100, out), 1);
    assert_int_equal(out[0], EVENT_BALANCE_LOW);
    /* Staying on one side, or landing on the threshold, is no crossing. */
    assert_int_equal(crossings(150, 100, threshold_100, out), 0);
    assert_int_equal(crossings(99, 50, threshold_100, out), 0);
    assert_int_equal(crossings(100, 100, threshold_100, out), 0);
}

static void test_recovered_exactly_when_reaching_the_threshold(void **state)
{
    (void)state;
    enum event_type out[2];
    assert_int_equal(crossings(99, 100, threshold_100, out), 1);
    assert_int_equal(out[0], EVENT_BALANCE_RECOVERED);
    assert_int_equal(crossings(0, 300, threshold_100, out), 1);
    assert_int_equal(out[0], EVENT_BALANCE_RECOVERED);
    assert_int_equal(crossings(100, 300, threshold_100, out), 0);
    assert_int_equal(crossings(10, 99, threshold_100, out), 0);
}

static void test_depleted_from_above_zero_to_zero_with_or_without_threshold(void **state)
{
    (void)state;
    enum event_type out[2];
    /* From at least the threshold to 0: both, low first. */
    assert_int_equal(crossings(100, 0, threshold_100, out), 2);
    assert_int_equal(out[0], EVENT_BALANCE_LOW);
    assert_int_equal(out[1], EVENT_BALANCE_DEPLETED);
    /* From below it: depleted alone. */
    assert_int_equal(crossings(40, 0, threshold_100, out), 1);
    assert_int_equal(out[0], EVENT_BALANCE_DEPLETED);
    /* Without a threshold only depleted is ever sent. */
    assert_int_equal(crossings(500, 0, no_threshold, out), 1);
    assert_int_equal(out[0], EVENT_BALANCE_DEPLETED);
    assert_int_equal(crossings(500, 1, no_threshold, out), 0);
    assert_int_equal(crossings(0, 500, no_threshold, out), 0);
    assert_int_equal(crossings(0, 0, no_threshold, out), 0);
}

static const struct balance some_balance = {40, 10, 20, 10, 5};

static void test_change_events_of_expiries_then_crossings(void **state)
{
    (void)state;
    struct entry_list entries = {0};
    /* An entry before the change: not this change's. */
    ledger_entry_add(&entries, &(struct entry){.lot_id = 1, .kind = ENTRY_EXPIRE, .delta = -3});
    size_t first = entries.count;
    /* A hold's expiry gives back to two lots (one past its expiry, which
     * loses the share again), then the job's own consume. */
    const char *hold = "render-1";
    ledger_entry_add(
        &entries,
        &(struct entry){
            .lot_id = 7, .kind = ENTRY_RELEASE, .delta = 20, .job_id = hold, .origin = hold});
    ledger_entry_add(
        &entries,
        &(struct entry){
            .lot_id = 7, .kind = ENTRY_EXPIRE, .delta = -20, .job_id = hold, .origin = hold});
    ledger_entry_add(
        &entries,
        &(struct entry){
            .lot_id = 8, .kind = ENTRY_RELEASE, .delta = 10, .job_id = hold, .origin = hold});
    ledger_entry_add(&entries, &(struct entry){.lot_id = 9, .kind = ENTRY_EXPIRE, .delta = -5});
    /* A capture's release names the hold as origin but is the job's own. */
    ledger_entry_add(
        &entries, &(struct entry){.lot_id = 8, .kind = ENTRY_RELEASE, .delta = 4, .origin = hold});
    ledger_entry_add(&entries, &(struct entry){.lot_id = 8, .kind = ENTRY_CONSUME, .delta = -90});
    struct event_list list = {0};
    event_list_add_change(&list, &entries, first, "u1", "job-9", 1234, &some_balance, 130, 40,
                          threshold_100);
    assert_int_equal(list.count, 4);
    assert_int_equal(list.items[0].type, EVENT_HOLD_EXPIRED);
    assert_string_equal(list.items[0].hold, hold);
    assert_string_equal(list.items[0].job, hold);
    assert_int_equal(list.items[0].released, 30); /* every credit given back */
    assert_int_equal(list.items[1].type, EVENT_CREDITS_EXPIRED);
    assert_int_equal(list.items[1].lot, 7);
    assert_int_equal(list.items[1].credits, 20);
    assert_string_equal(list.items[1].job, hold);
    assert_int_equal(list.items[2].type, EVENT_CREDITS_EXPIRED);
    assert_int_equal(list.items[2].lot, 9);
    assert_int_equal(list.items[2].credits, 5);
    assert_string_equal(list.items[2].job, "job-9");
    assert_int_equal(list.items[3].type, EVENT_BALANCE_LOW);
    assert_int_equal(list.items[3].threshold, 100);
    assert_string_equal(list.items[3].job, "job-9");
    for (size_t i = 0; i < list.count; i++) {
        assert_string_equal(list.items[i].user, "u1");
        assert_int_equal(list.items[i].at_ms, 1234);
        assert_memory_equal(&list.items[i].balance, &some_balance, sizeof some_balance);
        assert_int_equal(list.items[i].event_id, 0);
    }
    event_list_free(&list);
    ledger_entries_free(&entries);
}

static void test_type_names_round_trip(void **state)
{
    (void)state;
    static const char *const names[EVENT_TYPE_COUNT] = {"balance_low",       "balance_depleted",
                                                        "balance_recovered", "credits_expiring",
                                                        "credits_expired",   "hold_expired"};
    for (unsigned t = 0; t < EVENT_TYPE_COUNT; t++) {
        assert_string_equal(event_type_name((enum event_type)t), names[t]);
        enum event_type parsed;
        assert_true(event_type_parse(names[t], &parsed));
        assert_int_equal(parsed, t);
    }
    enum event_type parsed;
    assert_false(event_type_parse("balance", &parsed));
    assert_false(event_type_parse("", &parsed));
}

/* One event of each type, as the store reads them back. */
static void sample(enum event_type type, struct event *e)
{
    memset(e, 0, sizeof *e);
    e->event_id = 42;
    e->type = type;
    strcpy(e->user, "u1");
    strcpy(e->job, "expire:7");
    e->at_ms = INT64_C(1796000000123);
    e->balance = some_balance;
    switch (type) {
    case EVENT_BALANCE_LOW:
    case EVENT_BALANCE_RECOVERED:
        e->threshold = 100;
        break;
    case EVENT_BALANCE_DEPLETED:
        break;
    case EVENT_CREDITS_EXPIRING:
        e->expires_at_ms = INT64_C(1796600000000);
        e->lot = 7;
        e->credits = 50;
        break;
    case EVENT_CREDITS_EXPIRED:
        e->lot = 7;
        e->credits = 50;
        break;
    case EVENT_HOLD_EXPIRED:
        strcpy(e->hold, "render-1");
        e->released = 30;
        break;
    }
}

static void test_every_type_round_trips_through_the_codec(void **state)
{
    (void)state;
    for (unsigned t = 0; t < EVENT_TYPE_COUNT; t++) {
        struct event in, out;
        sample((enum event_type)t, &in);
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        assert_int_equal(codec_encode_event(&in, &buf), 0);
        assert_int_equal(codec_decode_event(buf.data, buf.size, &out), 0);
        assert_memory_equal(&in, &out, sizeof in);
        msgpack_sbuffer_destroy(&buf);
    }
}

/* The key order of contract 9.8, pinned by bytes: a hold_expired. */
static void test_hold_expired_bytes(void **state)
{
    (void)state;
    struct event e;
    sample(EVENT_HOLD_EXPIRED, &e);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(codec_encode_event(&e, &buf), 0);
    static const char want[] =
        "\x89\xa1v\x01\xa8"
        "event_id*\xa4type\xachold_expired\xa4user\xa2u1\xa2"
        "at\xcf\x00\x00\x01\xa2\x29\xf1\x28\x7b\xa7"
        "balance\x85\xa5total(\xa4pack\x0a\xa7monthly\x14\xa5grant\x0a\xa4held\x05\xa3"
        "job\xa8"
        "expire:7\xa4hold\xa8render-1\xa8released\x1e";
    assert_int_equal(buf.size, sizeof want - 1);
    assert_memory_equal(buf.data, want, sizeof want - 1);
    msgpack_sbuffer_destroy(&buf);
}

static void test_decode_refuses_what_is_not_an_event(void **state)
{
    (void)state;
    struct event e;
    sample(EVENT_CREDITS_EXPIRED, &e);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(codec_encode_event(&e, &buf), 0);
    struct event out;
    /* Truncated, or a byte after the map. */
    assert_int_equal(codec_decode_event(buf.data, buf.size - 1, &out), -1);
    msgpack_sbuffer_write(&buf, "\xc0", 1);
    assert_int_equal(codec_decode_event(buf.data, buf.size, &out), -1);
    /* A result is not an event; nor is garbage or nothing. */
    assert_int_equal(codec_decode_event("\x81\xa1v\x01", 4, &out), -1);
    assert_int_equal(codec_decode_event("\xc1", 1, &out), -1);
    assert_int_equal(codec_decode_event("", 0, &out), -1);
    /* An unknown type, and a type without its own keys. */
    static const char unknown[] = "\x87\xa1v\x01\xa8"
                                  "event_id\x01\xa4type\xa3"
                                  "odd\xa4user\xa2u1\xa2"
                                  "at\x01\xa7"
                                  "balance\x85\xa5total\x00\xa4pack\x00\xa7monthly\x00\xa5grant\x00"
                                  "\xa4held\x00\xa3job\xa1j";
    assert_int_equal(codec_decode_event(unknown, sizeof unknown - 1, &out), -1);
    static const char bare_low[] = "\x87\xa1v\x01\xa8"
                                   "event_id\x01\xa4type\xab"
                                   "balance_low\xa4user\xa2u1\xa2"
                                   "at\x01\xa7"
                                   "balance\x85\xa5total\x00\xa4pack\x00\xa7monthly\x00\xa5grant"
                                   "\x00\xa4held\x00\xa3job\xa1j";
    assert_int_equal(codec_decode_event(bare_low, sizeof bare_low - 1, &out), -1);
    /* Every field zeroed after a refusal. */
    struct event zero = {0};
    assert_memory_equal(&out, &zero, sizeof zero);
    msgpack_sbuffer_destroy(&buf);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_low_exactly_when_crossing_below_the_threshold),
        cmocka_unit_test(test_recovered_exactly_when_reaching_the_threshold),
        cmocka_unit_test(test_depleted_from_above_zero_to_zero_with_or_without_threshold),
        cmocka_unit_test(test_change_events_of_expiries_then_crossings),
        cmocka_unit_test(test_type_names_round_trip),
        cmocka_unit_test(test_every_type_round_trips_through_the_codec),
        cmocka_unit_test(test_hold_expired_bytes),
        cmocka_unit_test(test_decode_refuses_what_is_not_an_event),
    };
    return case_filter_run("event", tests, sizeof tests / sizeof tests[0], NULL, NULL, argc, argv);
}
