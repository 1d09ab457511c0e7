/*
 * test_job.c -- unit tests of core/job.c: wire names, the byte rules of IDs,
 * periods and stored text, and which optional result fields apply.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "case_filter.h"
#include "core/job.h"
#include "core/job_type.h"

static void test_type_names_round_trip(void **state)
{
    (void)state;
    static const char *const expected[JOB_TYPE_COUNT] = {
        "consume", "purchase", "allocate", "hold", "capture",
        "release", "refund",   "revoke",   "grant", "cancel",
    };
    for (int i = 0; i < JOB_TYPE_COUNT; i++) {
        const char *name = job_type_name((enum job_type)i);
        assert_string_equal(name, expected[i]);
        enum job_type parsed = JOB_ALLOCATE;
        assert_true(job_type_parse(name, strlen(name), &parsed));
        assert_int_equal(parsed, i);
    }
}

static void test_type_parse_refuses_other_names(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "consum", "consumes", "Consume", "transfer", "CONSUME",
                                      "expire"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum job_type parsed = JOB_CONSUME;
        assert_false(job_type_parse(bad[i], strlen(bad[i]), &parsed));
    }
    /* The length decides, not a NUL: "consume" followed by more bytes. */
    enum job_type parsed;
    assert_false(job_type_parse("consumeX", 8, &parsed));
    assert_true(job_type_parse("consumeX", 7, &parsed));
    assert_int_equal(parsed, JOB_CONSUME);
}

static void test_error_names_round_trip(void **state)
{
    (void)state;
    static const char *const expected[JOB_ERROR_COUNT] = {
        "",
        "invalid_job",
        "unsupported_version",
        "wrong_stream",
        "id_conflict",
        "insufficient_credits",
        "unknown_pack",
        "unknown_plan",
        "duplicate_payment",
        "already_allocated",
        "stale_period",
        "unknown_hold",
        "hold_closed",
        "hold_expired",
        "capture_exceeds_hold",
        "unknown_charge",
        "refund_exceeds_charge",
        "unknown_payment",
        "already_revoked",
        "no_plan",
    };
    for (int i = 0; i < JOB_ERROR_COUNT; i++)
        assert_string_equal(job_error_name((enum job_error)i), expected[i]);
    for (int i = JOB_ERR_INVALID_JOB; i < JOB_ERROR_COUNT; i++) {
        enum job_error parsed = JOB_OK;
        assert_true(job_error_parse(expected[i], strlen(expected[i]), &parsed));
        assert_int_equal(parsed, i);
    }
}

static void test_error_parse_refuses_empty_and_unknown(void **state)
{
    (void)state;
    enum job_error parsed = JOB_ERR_STALE_PERIOD;
    assert_false(job_error_parse("", 0, &parsed));
    assert_false(job_error_parse("applied", 7, &parsed));
    assert_false(job_error_parse("invalid_jo", 10, &parsed));
    assert_false(job_error_parse("invalid_jobs", 12, &parsed));
    assert_int_equal(parsed, JOB_ERR_STALE_PERIOD);
}

static void test_error_is_stored_only_for_ledger_decisions(void **state)
{
    (void)state;
    assert_false(job_error_is_stored(JOB_OK));
    assert_false(job_error_is_stored(JOB_ERR_INVALID_JOB));
    assert_false(job_error_is_stored(JOB_ERR_UNSUPPORTED_VERSION));
    assert_false(job_error_is_stored(JOB_ERR_WRONG_STREAM));
    assert_false(job_error_is_stored(JOB_ERR_ID_CONFLICT));
    assert_true(job_error_is_stored(JOB_ERR_INSUFFICIENT_CREDITS));
    assert_true(job_error_is_stored(JOB_ERR_UNKNOWN_PACK));
    assert_true(job_error_is_stored(JOB_ERR_UNKNOWN_PLAN));
    assert_true(job_error_is_stored(JOB_ERR_DUPLICATE_PAYMENT));
    assert_true(job_error_is_stored(JOB_ERR_ALREADY_ALLOCATED));
    assert_true(job_error_is_stored(JOB_ERR_STALE_PERIOD));
    /* Revision 2's codes are all decided against the ledger (9.4). */
    static const enum job_error revision2[] = {
        JOB_ERR_UNKNOWN_HOLD,          JOB_ERR_HOLD_CLOSED,    JOB_ERR_HOLD_EXPIRED,
        JOB_ERR_CAPTURE_EXCEEDS_HOLD,  JOB_ERR_UNKNOWN_CHARGE, JOB_ERR_REFUND_EXCEEDS_CHARGE,
        JOB_ERR_UNKNOWN_PAYMENT,       JOB_ERR_ALREADY_REVOKED, JOB_ERR_NO_PLAN,
    };
    for (size_t i = 0; i < sizeof revision2 / sizeof revision2[0]; i++)
        assert_true(job_error_is_stored(revision2[i]));
}

/* What an applied result of each type carries (contract 3 and 9.5), and the
 * stream it belongs on (9.2). */
static void test_each_type_carries_its_amounts_on_its_stream(void **state)
{
    (void)state;
#define BIT(a) RESULT_AMOUNT_BIT(RESULT_##a)
    static const struct {
        enum job_type type;
        enum job_stream stream;
        uint32_t always, maybe;
    } cases[] = {
        {JOB_CONSUME, JOB_STREAM_CONSUME, BIT(CHARGED), 0},
        {JOB_PURCHASE, JOB_STREAM_PURCHASE, BIT(GRANTED) | BIT(EXPIRES_AT), 0},
        {JOB_ALLOCATE, JOB_STREAM_ALLOCATE, BIT(GRANTED) | BIT(FORFEITED), 0},
        {JOB_HOLD, JOB_STREAM_CONSUME, BIT(HELD) | BIT(HOLD_EXPIRES_AT), 0},
        {JOB_CAPTURE, JOB_STREAM_CONSUME, BIT(CHARGED) | BIT(RELEASED), 0},
        {JOB_RELEASE, JOB_STREAM_CONSUME, BIT(RELEASED), 0},
        {JOB_REFUND, JOB_STREAM_CONSUME, BIT(REFUNDED), 0},
        {JOB_REVOKE, JOB_STREAM_PURCHASE, BIT(REVOKED), 0},
        {JOB_GRANT, JOB_STREAM_ALLOCATE, BIT(GRANTED), BIT(EXPIRES_AT)},
        {JOB_CANCEL, JOB_STREAM_ALLOCATE, BIT(FORFEITED), 0},
    };
#undef BIT
    assert_int_equal(sizeof cases / sizeof cases[0], JOB_TYPE_COUNT);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct job_type_ops *ops = job_type_ops(cases[i].type);
        assert_int_equal(ops->stream, cases[i].stream);
        assert_int_equal(ops->result_amounts, cases[i].always);
        assert_int_equal(ops->result_amounts_optional, cases[i].maybe);
    }
}

static void test_id_rule_length_boundaries(void **state)
{
    (void)state;
    char id[JOB_ID_BYTES_MAX + 2];
    memset(id, 'a', sizeof id);
    assert_false(job_id_is_valid(id, 0));
    assert_true(job_id_is_valid(id, 1));
    assert_true(job_id_is_valid(id, 128));
    assert_false(job_id_is_valid(id, 129));
    assert_false(job_id_is_valid("", 0));
}

static void test_id_rule_character_boundaries(void **state)
{
    (void)state;
    struct {
        unsigned char c;
        bool valid;
    } cases[] = {
        {0x00, false}, {0x20, false}, {0x21, true},  {'~', true},
        {0x7E, true},  {0x7F, false}, {0x80, false}, {0xFF, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char id[3] = {'a', (char)cases[i].c, 'b'};
        assert_int_equal(job_id_is_valid(id, 3), cases[i].valid);
        assert_int_equal(job_id_is_valid(id + 1, 1), cases[i].valid);
    }
    assert_true(job_id_is_valid("alloc:u1:2026-11", 16));
}

static void test_period_rule(void **state)
{
    (void)state;
    struct {
        const char *period;
        bool valid;
    } cases[] = {
        {"2026-00", false},  {"2026-01", true},  {"2026-12", true},   {"2026-13", false},
        {"2026-1", false},   {"202a-01", false}, {"2026/01", false},  {"2026-011", false},
        {"0000-01", true},   {"9999-12", true},  {"2026-1a", false},  {"2026-99", false},
        {"-2026-01", false}, {"", false},        {" 2026-01", false}, {"2026-10", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = cases[i].period;
        if (job_period_is_valid(p, strlen(p)) != cases[i].valid)
            fail_msg("period '%s' should be %s", p, cases[i].valid ? "valid" : "invalid");
    }
}

static void test_text_rule_utf8(void **state)
{
    (void)state;
    struct {
        const char *bytes;
        size_t len;
        bool valid;
        const char *what;
    } cases[] = {
        {"", 0, true, "empty"},
        {"video-gen", 9, true, "ASCII"},
        {"\xC3\xA9", 2, true, "U+00E9, two bytes"},
        {"\xE2\x9C\x82", 3, true, "U+2702, three bytes"},
        {"\xF0\x9F\x8E\xAC", 4, true, "U+1F3AC, four bytes"},
        {"\xF4\x8F\xBF\xBF", 4, true, "U+10FFFF, the last code point"},
        {"\xEE\x80\x80", 3, true, "U+E000, after the surrogates"},
        {"\xED\x9F\xBF", 3, true, "U+D7FF, before the surrogates"},
        {"\xC0\x80", 2, false, "overlong NUL"},
        {"\xC1\xBF", 2, false, "overlong two-byte"},
        {"\xE0\x80\xAF", 3, false, "overlong three-byte"},
        {"\xF0\x80\x80\xAF", 4, false, "overlong four-byte"},
        {"\xED\xA0\x80", 3, false, "surrogate U+D800"},
        {"\xED\xBF\xBF", 3, false, "surrogate U+DFFF"},
        {"\xF4\x90\x80\x80", 4, false, "U+110000, beyond Unicode"},
        {"\xF5\x80\x80\x80", 4, false, "lead byte F5"},
        {"\xFF", 1, false, "byte FF"},
        {"\x80", 1, false, "lone continuation"},
        {"\xC3", 1, false, "truncated two-byte"},
        {"\xE2\x9C", 2, false, "truncated three-byte"},
        {"\xF0\x9F\x8E", 3, false, "truncated four-byte"},
        {"a\xE2\x9C", 3, false, "truncated at the end"},
        {"\xC3\x28", 2, false, "bad continuation"},
        {"a\0b", 3, false, "NUL inside"},
        {"\0", 1, false, "NUL alone"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (job_text_is_valid(cases[i].bytes, cases[i].len) != cases[i].valid)
            fail_msg("%s should be %s", cases[i].what, cases[i].valid ? "valid" : "invalid");
    }
}

static void test_result_presence_table(void **state)
{
    (void)state;
    struct {
        bool has_type;
        enum job_type type;
        enum job_error error;
        bool balance, charged, granted, forfeited, expires_at;
    } cases[] = {
        {true, JOB_CONSUME, JOB_OK, true, true, false, false, false},
        {true, JOB_PURCHASE, JOB_OK, true, false, true, false, true},
        {true, JOB_ALLOCATE, JOB_OK, true, false, true, true, false},
        {true, JOB_CONSUME, JOB_ERR_INSUFFICIENT_CREDITS, true, false, false, false, false},
        {true, JOB_PURCHASE, JOB_ERR_UNKNOWN_PACK, false, false, false, false, false},
        {true, JOB_PURCHASE, JOB_ERR_DUPLICATE_PAYMENT, false, false, false, false, false},
        {true, JOB_ALLOCATE, JOB_ERR_UNKNOWN_PLAN, false, false, false, false, false},
        {true, JOB_ALLOCATE, JOB_ERR_ALREADY_ALLOCATED, false, false, false, false, false},
        {true, JOB_ALLOCATE, JOB_ERR_STALE_PERIOD, false, false, false, false, false},
        {true, JOB_CONSUME, JOB_ERR_INVALID_JOB, false, false, false, false, false},
        {true, JOB_CONSUME, JOB_ERR_UNSUPPORTED_VERSION, false, false, false, false, false},
        {true, JOB_PURCHASE, JOB_ERR_WRONG_STREAM, false, false, false, false, false},
        {true, JOB_CONSUME, JOB_ERR_ID_CONFLICT, false, false, false, false, false},
        {false, JOB_CONSUME, JOB_ERR_INVALID_JOB, false, false, false, false, false},
        {false, JOB_CONSUME, JOB_ERR_INSUFFICIENT_CREDITS, false, false, false, false, false},
        {false, JOB_PURCHASE, JOB_OK, false, false, false, false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct result r;
        memset(&r, 0, sizeof r);
        r.has_type = cases[i].has_type;
        r.type = cases[i].type;
        r.error = cases[i].error;
        /* An applied result carries its type's amounts; a rejection none. */
        uint32_t amounts =
            r.has_type && r.error == JOB_OK ? job_type_ops(r.type)->result_amounts : 0;
        bool ok = result_has_balance(&r) == cases[i].balance &&
                  ((amounts & RESULT_AMOUNT_BIT(RESULT_CHARGED)) != 0) == cases[i].charged &&
                  ((amounts & RESULT_AMOUNT_BIT(RESULT_GRANTED)) != 0) == cases[i].granted &&
                  ((amounts & RESULT_AMOUNT_BIT(RESULT_FORFEITED)) != 0) == cases[i].forfeited &&
                  ((amounts & RESULT_AMOUNT_BIT(RESULT_EXPIRES_AT)) != 0) == cases[i].expires_at;
        if (!ok)
            fail_msg("presence case %zu (%s, %s) is wrong", i, job_type_name(r.type),
                     job_error_name(r.error));
    }
}

static void test_result_init_for_job_copies_identity_and_clears_the_rest(void **state)
{
    (void)state;
    struct job job;
    memset(&job, 0, sizeof job);
    job.type = JOB_PURCHASE;
    strcpy(job.id, "pay-evt-1");
    strcpy(job.user, "u1");
    strcpy(job.purchase.pack, "starter");
    struct result r;
    memset(&r, 0x5a, sizeof r);
    result_init_for_job(&r, &job);
    assert_true(r.has_id);
    assert_true(r.has_type);
    assert_true(r.has_user);
    assert_string_equal(r.id, "pay-evt-1");
    assert_string_equal(r.user, "u1");
    assert_int_equal(r.type, JOB_PURCHASE);
    assert_int_equal(r.error, JOB_OK);
    assert_string_equal(r.message, "");
    assert_int_equal(r.balance.total, 0);
    assert_int_equal(r.amounts_present, 0);
    assert_int_equal(r.amounts[RESULT_CHARGED], 0);
    assert_int_equal(r.amounts[RESULT_GRANTED], 0);
    assert_int_equal(r.done_at_ms, 0);
    assert_false(r.replayed);
}

static void test_result_init_for_job_keeps_a_128_byte_id(void **state)
{
    (void)state;
    struct job job;
    memset(&job, 0, sizeof job);
    memset(job.id, 'i', JOB_ID_BYTES_MAX);
    memset(job.user, 'u', JOB_USER_BYTES_MAX);
    struct result r;
    result_init_for_job(&r, &job);
    assert_int_equal(strlen(r.id), JOB_ID_BYTES_MAX);
    assert_int_equal(strlen(r.user), JOB_USER_BYTES_MAX);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names_round_trip),
        cmocka_unit_test(test_type_parse_refuses_other_names),
        cmocka_unit_test(test_error_names_round_trip),
        cmocka_unit_test(test_error_parse_refuses_empty_and_unknown),
        cmocka_unit_test(test_error_is_stored_only_for_ledger_decisions),
        cmocka_unit_test(test_id_rule_length_boundaries),
        cmocka_unit_test(test_id_rule_character_boundaries),
        cmocka_unit_test(test_period_rule),
        cmocka_unit_test(test_text_rule_utf8),
        cmocka_unit_test(test_result_presence_table),
        cmocka_unit_test(test_each_type_carries_its_amounts_on_its_stream),
        cmocka_unit_test(test_result_init_for_job_copies_identity_and_clears_the_rest),
        cmocka_unit_test(test_result_init_for_job_keeps_a_128_byte_id),
    };
    return case_filter_run("job", tests, sizeof tests / sizeof tests[0], NULL, NULL, argc, argv);
}
