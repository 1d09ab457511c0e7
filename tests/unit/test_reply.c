/*
 * test_reply.c -- queue/reply.c on reply trees that hiredis's own reader
 * builds from RESP bytes, so the cases exercise the structures the queue
 * gets: entry IDs, error replies, XREADGROUP, XPENDING (both forms), XINFO
 * GROUPS and XAUTOCLAIM. The well-formed cases are bytes Redis 7.0 sent;
 * the malformed ones break one level each. No network.
 */
#include "case_filter.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/reply.h"

#define CASES_MAX 256
#define ENTRIES_EXPECTED_MAX 4
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* A string literal and its length, NULs included. */
#define RESP(lit) lit, sizeof lit - 1

/* The job streams of prefix "t", by job type. */
static const char *const keys[QUEUE_STREAM_COUNT] = {"t:jobs:consume", "t:jobs:purchase",
                                                     "t:jobs:allocate"};

/* Pieces of replies, as Redis 7.0 sends them. */
#define K_CONSUME "$14\r\nt:jobs:consume\r\n"
#define K_PURCHASE "$15\r\nt:jobs:purchase\r\n"
#define K_ALLOCATE "$15\r\nt:jobs:allocate\r\n"
#define ID_A "$15\r\n1700000000000-0\r\n"
#define ID_B "$15\r\n1700000000000-1\r\n"
#define JOB_ABC "*2\r\n$3\r\njob\r\n$3\r\nabc\r\n"
#define ENTRY_A "*2\r\n" ID_A JOB_ABC
#define ONE_CONSUME_ENTRY(entry) "*1\r\n*2\r\n" K_CONSUME "*1\r\n" entry

/* ---------------------------------------------------------------------------
 * Replies from bytes
 * ------------------------------------------------------------------------- */

/* The one reply `bytes` hold, parsed by hiredis; caller frees it with
 * freeReplyObject(). Fails the case unless the bytes are exactly one reply. */
static redisReply *from_resp(const char *bytes, size_t len)
{
    redisReader *reader = redisReaderCreate();
    assert_non_null(reader);
    assert_int_equal(redisReaderFeed(reader, bytes, len), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(reader, &reply), REDIS_OK);
    assert_non_null(reply);
    void *more = NULL;
    assert_int_equal(redisReaderGetReply(reader, &more), REDIS_OK);
    assert_null(more);
    redisReaderFree(reader);
    return reply;
}

/* The reason must say what the case breaks, not just fail somewhere. */
static void assert_reason(const char *errstr, const char *why)
{
    assert_non_null(why);
    if (strstr(errstr, why) == NULL)
        fail_msg("reason \"%s\" does not say \"%s\"", errstr, why);
}

/* Writers of RESP for the generated replies. */
static void resp_array(FILE *out, size_t n)
{
    fprintf(out, "*%zu\r\n", n);
}

static void resp_bulk(FILE *out, const char *text)
{
    fprintf(out, "$%zu\r\n%s\r\n", strlen(text), text);
}

/* ---------------------------------------------------------------------------
 * Entry IDs
 * ------------------------------------------------------------------------- */

struct id_case {
    const char *name;
    const char *text;
    size_t len;
    bool ok;
    uint64_t ms;
    uint64_t seq;
};

/* clang-format off */
#define ID_OK(name, lit, ms, seq) {name, RESP(lit), true, ms, seq}
#define ID_BAD(name, lit) {name, RESP(lit), false, 0, 0}
/* clang-format on */
#define U64_MAX_TEXT "18446744073709551615"

static const struct id_case id_cases[] = {
    ID_OK("id_zero", "0-0", 0, 0),
    ID_OK("id_as_redis_makes_them", "1700000000000-1", UINT64_C(1700000000000), 1),
    ID_OK("id_largest", U64_MAX_TEXT "-" U64_MAX_TEXT, UINT64_MAX, UINT64_MAX),
    ID_OK("id_leading_zeros_up_to_the_byte_limit",
          "00000000000000000000000000000000000000000000-07", 0, 7),
    ID_BAD("id_over_the_byte_limit", "000000000000000000000000000000000000000000000-07"),
    ID_BAD("id_time_overflows", "18446744073709551616-0"),
    ID_BAD("id_sequence_overflows", "0-18446744073709551616"),
    ID_BAD("id_empty", ""),
    ID_BAD("id_dash_only", "-"),
    ID_BAD("id_without_sequence", "1700000000000"),
    ID_BAD("id_sequence_empty", "1-"),
    ID_BAD("id_time_empty", "-1"),
    ID_BAD("id_three_parts", "1-2-3"),
    ID_BAD("id_double_dash", "1--2"),
    ID_BAD("id_plus_sign", "+1-2"),
    ID_BAD("id_sign_in_sequence", "1-+2"),
    ID_BAD("id_negative_time", "-1-2"),
    ID_BAD("id_leading_space", " 1-2"),
    ID_BAD("id_trailing_space", "1-2 "),
    ID_BAD("id_letters", "a-1"),
    ID_BAD("id_special_id_of_commands", "*"),
    ID_BAD("id_trailing_nul", "1-2\0"),
    ID_BAD("id_nul_inside", "1\0-2"),
};

static void run_id_case(void **state)
{
    const struct id_case *c = *state;
    uint64_t ms = 99, seq = 99;
    bool ok = reply_entry_id_parse(c->text, c->len, &ms, &seq);
    assert_int_equal(ok, c->ok);
    if (c->ok) {
        assert_int_equal(ms, c->ms);
        assert_int_equal(seq, c->seq);
    }
}

struct next_case {
    const char *name;
    const char *id;
    const char *next;
};

static const struct next_case next_cases[] = {
    {"next_bumps_the_sequence", "1700000000000-1", "1700000000000-2"},
    {"next_after_zero", "0-0", "0-1"},
    {"next_after_the_largest_sequence_is_the_next_time", "5-" U64_MAX_TEXT, "6-0"},
    {"next_after_the_largest_id_is_none", U64_MAX_TEXT "-" U64_MAX_TEXT, ""},
    {"next_of_nothing_is_nothing", "", ""},
    {"next_of_a_non_id_is_nothing", "1-x", ""},
    {"next_normalises_leading_zeros", "007-009", "7-10"},
};

static void run_next_case(void **state)
{
    const struct next_case *c = *state;
    char id[QUEUE_ENTRY_ID_BYTES_MAX + 1];
    int n = snprintf(id, sizeof id, "%s", c->id);
    assert_true(n >= 0 && (size_t)n < sizeof id);
    reply_entry_id_next(id);
    assert_string_equal(id, c->next);
}

/* ---------------------------------------------------------------------------
 * Error replies
 * ------------------------------------------------------------------------- */

struct error_case {
    const char *name;
    const char *resp;
    size_t resp_len;
    bool is_error;
    bool busygroup;
    const char *errstr; /* what an error reply leaves in errstr */
};

#define UNTOUCHED "untouched"

static const struct error_case error_cases[] = {
    {"error_nogroup_as_redis_7_sends_it",
     RESP("-NOGROUP No such key 't:jobs:consume' or consumer group 'nog' in XREADGROUP with "
          "GROUP option\r\n"),
     true, false,
     "Redis error: NOGROUP No such key 't:jobs:consume' or consumer group 'nog' in XREADGROUP "
     "with GROUP option"},
    {"error_busygroup_as_redis_7_sends_it",
     RESP("-BUSYGROUP Consumer Group name already exists\r\n"), true, true,
     "Redis error: BUSYGROUP Consumer Group name already exists"},
    {"error_busygroup_alone", RESP("-BUSYGROUP\r\n"), true, true, "Redis error: BUSYGROUP"},
    {"error_longer_code_is_not_busygroup", RESP("-BUSYGROUPS x\r\n"), true, false,
     "Redis error: BUSYGROUPS x"},
    {"error_busygroup_later_in_the_text_is_not_busygroup", RESP("-ERR BUSYGROUP\r\n"), true, false,
     "Redis error: ERR BUSYGROUP"},
    {"error_short_text_is_not_busygroup", RESP("-BUSY\r\n"), true, false, "Redis error: BUSY"},
    {"error_status_ok_is_no_error", RESP("+OK\r\n"), false, false, UNTOUCHED},
    {"error_status_busygroup_is_no_error", RESP("+BUSYGROUP\r\n"), false, false, UNTOUCHED},
    {"error_string_busygroup_is_no_error", RESP("$9\r\nBUSYGROUP\r\n"), false, false, UNTOUCHED},
    {"error_nil_is_no_error", RESP("$-1\r\n"), false, false, UNTOUCHED},
    {"error_integer_is_no_error", RESP(":-1\r\n"), false, false, UNTOUCHED},
    {"error_array_of_an_error_is_no_error", RESP("*1\r\n-ERR x\r\n"), false, false, UNTOUCHED},
};

static void run_error_case(void **state)
{
    const struct error_case *c = *state;
    redisReply *reply = from_resp(c->resp, c->resp_len);
    char errstr[REPLY_ERRSTR_BYTES] = UNTOUCHED;
    assert_int_equal(reply_is_error(reply, errstr, sizeof errstr), c->is_error);
    assert_string_equal(errstr, c->errstr);
    assert_int_equal(reply_is_busygroup(reply), c->busygroup);
    freeReplyObject(reply);
}

static void test_error_text_is_cut_to_fit(void **state)
{
    (void)state;
    char resp[600];
    char text[500];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    int n = snprintf(resp, sizeof resp, "-ERR %s\r\n", text);
    assert_true(n > 0 && (size_t)n < sizeof resp);
    redisReply *reply = from_resp(resp, (size_t)n);
    char errstr[20];
    memset(errstr, '#', sizeof errstr);
    assert_true(reply_is_error(reply, errstr, sizeof errstr));
    assert_string_equal(errstr, "Redis error: ERR xx");
    freeReplyObject(reply);
}

/* ---------------------------------------------------------------------------
 * XREADGROUP
 * ------------------------------------------------------------------------- */

struct expected_entry {
    enum job_stream stream;
    const char *id;
    uint64_t ms;
    uint64_t seq;
    bool has_job;
    const char *job;
    size_t job_len;
};

struct read_case {
    const char *name;
    const char *resp;
    size_t resp_len;
    const char *why; /* NULL: accepted */
    size_t count;
    struct expected_entry entries[ENTRIES_EXPECTED_MAX];
};

#define T_MS UINT64_C(1700000000000)
/* clang-format off */
#define WITH_JOB(stream, id, seq, lit) {stream, id, T_MS, seq, true, RESP(lit)}
#define NO_JOB(stream, id, seq) {stream, id, T_MS, seq, false, NULL, 0}
#define READ_OK(name, resp, count, ...) {name, RESP(resp), NULL, count, {__VA_ARGS__}}
#define READ_BAD(name, resp, why) {name, RESP(resp), why, 0, {{0}}}
/* clang-format on */

static const struct read_case read_cases[] = {
    READ_OK("read_nil_is_a_block_that_timed_out", "*-1\r\n", 0),
    READ_OK("read_empty_array_has_no_entries", "*0\r\n", 0),
    READ_OK("read_stream_without_entries", "*1\r\n*2\r\n" K_CONSUME "*0\r\n", 0),
    READ_OK("read_two_entries_as_redis_7_sends_them",
            "*1\r\n*2\r\n" K_CONSUME "*2\r\n" ENTRY_A "*2\r\n" ID_B
            "*4\r\n$5\r\nother\r\n$1\r\nx\r\n$3\r\njob\r\n$3\r\ndef\r\n",
            2, WITH_JOB(JOB_STREAM_CONSUME, "1700000000000-0", 0, "abc"),
            WITH_JOB(JOB_STREAM_CONSUME, "1700000000000-1", 1, "def")),
    READ_OK("read_deleted_entry_as_redis_7_sends_it_has_no_job",
            "*1\r\n*2\r\n" K_CONSUME "*2\r\n" ENTRY_A "*2\r\n" ID_B "*-1\r\n", 2,
            WITH_JOB(JOB_STREAM_CONSUME, "1700000000000-0", 0, "abc"),
            NO_JOB(JOB_STREAM_CONSUME, "1700000000000-1", 1)),
    READ_OK("read_entry_without_a_job_field_has_no_job",
            ONE_CONSUME_ENTRY("*2\r\n" ID_A "*2\r\n$3\r\njox\r\n$1\r\nx\r\n"), 1,
            NO_JOB(JOB_STREAM_CONSUME, "1700000000000-0", 0)),
    READ_OK("read_entry_with_no_fields_has_no_job", ONE_CONSUME_ENTRY("*2\r\n" ID_A "*0\r\n"), 1,
            NO_JOB(JOB_STREAM_CONSUME, "1700000000000-0", 0)),
    READ_OK("read_first_job_field_is_taken",
            ONE_CONSUME_ENTRY("*2\r\n" ID_A
                              "*4\r\n$3\r\njob\r\n$3\r\none\r\n$3\r\njob\r\n$3\r\ntwo\r\n"),
            1, WITH_JOB(JOB_STREAM_CONSUME, "1700000000000-0", 0, "one")),
    READ_OK("read_job_bytes_are_kept_exactly",
            ONE_CONSUME_ENTRY("*2\r\n" ID_A "*2\r\n$3\r\njob\r\n$7\r\n\x81\xa1\0\r\n\xff"
                              "z\r\n"),
            1,
            WITH_JOB(JOB_STREAM_CONSUME, "1700000000000-0", 0,
                     "\x81\xa1\0\r\n\xff"
                     "z")),
    READ_OK("read_empty_job_is_a_job_of_no_bytes",
            ONE_CONSUME_ENTRY("*2\r\n" ID_A "*2\r\n$3\r\njob\r\n$0\r\n\r\n"), 1,
            WITH_JOB(JOB_STREAM_CONSUME, "1700000000000-0", 0, "")),
    READ_OK("read_streams_keep_reply_order",
            "*3\r\n*2\r\n" K_PURCHASE "*1\r\n" ENTRY_A "*2\r\n" K_CONSUME "*1\r\n*2\r\n" ID_B
            "*-1\r\n*2\r\n" K_ALLOCATE "*1\r\n" ENTRY_A,
            3, WITH_JOB(JOB_STREAM_PURCHASE, "1700000000000-0", 0, "abc"),
            NO_JOB(JOB_STREAM_CONSUME, "1700000000000-1", 1),
            WITH_JOB(JOB_STREAM_ALLOCATE, "1700000000000-0", 0, "abc")),
    READ_OK("read_status_key_names_a_stream", "*1\r\n*2\r\n+t:jobs:allocate\r\n*1\r\n" ENTRY_A, 1,
            WITH_JOB(JOB_STREAM_ALLOCATE, "1700000000000-0", 0, "abc")),
    READ_OK("read_largest_id",
            ONE_CONSUME_ENTRY("*2\r\n$41\r\n" U64_MAX_TEXT "-" U64_MAX_TEXT "\r\n*-1\r\n"), 1,
            {JOB_STREAM_CONSUME, U64_MAX_TEXT "-" U64_MAX_TEXT, UINT64_MAX, UINT64_MAX, false, NULL,
             0}),

    READ_BAD("read_string_reply", "$3\r\nabc\r\n", "is a string, not an array or nil"),
    READ_BAD("read_integer_reply", ":1\r\n", "is an integer, not an array or nil"),
    READ_BAD("read_status_reply", "+OK\r\n", "is a status, not an array or nil"),
    READ_BAD("read_error_reply", "-NOGROUP x\r\n", "is an error, not an array or nil"),
    READ_BAD("read_stream_is_a_string", "*1\r\n$3\r\nabc\r\n", "stream 0 is not [key, entries]"),
    READ_BAD("read_stream_is_nil", "*1\r\n*-1\r\n", "stream 0 is not [key, entries]"),
    READ_BAD("read_stream_of_one_element", "*1\r\n*1\r\n" K_CONSUME,
             "stream 0 is not [key, entries]"),
    READ_BAD("read_stream_of_three_elements", "*1\r\n*3\r\n" K_CONSUME "*0\r\n*0\r\n",
             "stream 0 is not [key, entries]"),
    READ_BAD("read_stream_key_unknown", "*1\r\n*2\r\n$9\r\nt:jobs:xx\r\n*0\r\n",
             "stream 0 is not a job stream's key"),
    READ_BAD("read_stream_key_longer_than_a_known_one",
             "*1\r\n*2\r\n$15\r\nt:jobs:consumeX\r\n*0\r\n", "stream 0 is not a job stream's key"),
    READ_BAD("read_stream_key_is_an_integer", "*1\r\n*2\r\n:5\r\n*0\r\n",
             "stream 0 is not a job stream's key"),
    READ_BAD("read_stream_key_is_nil", "*1\r\n*2\r\n$-1\r\n*0\r\n",
             "stream 0 is not a job stream's key"),
    READ_BAD("read_entries_are_nil", "*1\r\n*2\r\n" K_CONSUME "*-1\r\n",
             "the entries of stream 0 are nil"),
    READ_BAD("read_entries_are_a_string", "*1\r\n*2\r\n" K_CONSUME "$1\r\nx\r\n",
             "the entries of stream 0 are a string"),
    READ_BAD("read_second_stream_broken_after_a_good_one",
             "*2\r\n*2\r\n" K_CONSUME "*1\r\n" ENTRY_A "*2\r\n" K_PURCHASE ":1\r\n",
             "the entries of stream 1 are an integer"),
    READ_BAD("read_entry_is_a_string", ONE_CONSUME_ENTRY("$1\r\nx\r\n"),
             "entry 0 is not [id, fields]"),
    READ_BAD("read_entry_of_one_element", ONE_CONSUME_ENTRY("*1\r\n" ID_A),
             "entry 0 is not [id, fields]"),
    READ_BAD("read_entry_of_three_elements", ONE_CONSUME_ENTRY("*3\r\n" ID_A JOB_ABC "*-1\r\n"),
             "entry 0 is not [id, fields]"),
    READ_BAD("read_entry_id_is_an_integer", ONE_CONSUME_ENTRY("*2\r\n:1\r\n" JOB_ABC),
             "the ID of entry 0 is not <ms>-<seq>"),
    READ_BAD("read_entry_id_is_nil", ONE_CONSUME_ENTRY("*2\r\n$-1\r\n" JOB_ABC),
             "the ID of entry 0 is not <ms>-<seq>"),
    READ_BAD("read_entry_id_is_empty", ONE_CONSUME_ENTRY("*2\r\n$0\r\n\r\n" JOB_ABC),
             "the ID of entry 0 is not <ms>-<seq>"),
    READ_BAD("read_entry_id_is_a_status", ONE_CONSUME_ENTRY("*2\r\n+1-1\r\n" JOB_ABC),
             "the ID of entry 0 is not <ms>-<seq>"),
    READ_BAD("read_entry_id_is_not_an_id", ONE_CONSUME_ENTRY("*2\r\n$3\r\nabc\r\n" JOB_ABC),
             "the ID of entry 0 is not <ms>-<seq>"),
    READ_BAD("read_entry_id_has_a_nul", ONE_CONSUME_ENTRY("*2\r\n$4\r\n1-2\0\r\n" JOB_ABC),
             "the ID of entry 0 is not <ms>-<seq>"),
    READ_BAD("read_entry_id_overflows",
             ONE_CONSUME_ENTRY("*2\r\n$22\r\n18446744073709551616-0\r\n" JOB_ABC),
             "the ID of entry 0 is not <ms>-<seq>"),
    READ_BAD("read_entry_id_over_the_byte_limit",
             ONE_CONSUME_ENTRY("*2\r\n$48\r\n0000000000000000000000000000000000000000000000-0"
                               "\r\n" JOB_ABC),
             "the ID of entry 0 is not <ms>-<seq>"),
    READ_BAD("read_fields_are_a_string", ONE_CONSUME_ENTRY("*2\r\n" ID_A "$3\r\nabc\r\n"),
             "the fields of entry 0 are a string"),
    READ_BAD("read_fields_are_an_integer", ONE_CONSUME_ENTRY("*2\r\n" ID_A ":2\r\n"),
             "the fields of entry 0 are an integer"),
    READ_BAD("read_fields_odd_in_number",
             ONE_CONSUME_ENTRY("*2\r\n" ID_A "*3\r\n$3\r\njob\r\n$3\r\nabc\r\n$1\r\nx\r\n"),
             "entry 0 has 3 field names and values"),
    READ_BAD("read_field_name_is_an_integer",
             ONE_CONSUME_ENTRY("*2\r\n" ID_A "*2\r\n:1\r\n$3\r\nabc\r\n"),
             "field name 0 of entry 0 is an integer"),
    READ_BAD("read_field_value_is_nil",
             ONE_CONSUME_ENTRY("*2\r\n" ID_A "*2\r\n$3\r\njob\r\n$-1\r\n"),
             "field value 0 of entry 0 is nil"),
    READ_BAD("read_field_value_is_an_array",
             ONE_CONSUME_ENTRY("*2\r\n" ID_A "*2\r\n$3\r\njob\r\n*0\r\n"),
             "field value 0 of entry 0 is an array"),
    READ_BAD("read_field_value_is_an_error",
             ONE_CONSUME_ENTRY("*2\r\n" ID_A "*2\r\n$3\r\njob\r\n-ERR x\r\n"),
             "field value 0 of entry 0 is an error"),
    READ_BAD("read_late_field_broken_after_the_job",
             ONE_CONSUME_ENTRY("*2\r\n" ID_A "*4\r\n$3\r\njob\r\n$1\r\nx\r\n$1\r\ny\r\n:1\r\n"),
             "field value 1 of entry 0 is an integer"),
    READ_BAD("read_second_entry_broken_after_a_good_one",
             "*1\r\n*2\r\n" K_CONSUME "*2\r\n" ENTRY_A "*2\r\n" ID_B "$1\r\nx\r\n",
             "the fields of entry 1 are a string"),
};

static void assert_entry(const struct queue_entry *got, const struct expected_entry *want)
{
    assert_int_equal(got->stream, want->stream);
    assert_string_equal(got->id, want->id);
    assert_int_equal(got->id_ms, want->ms);
    assert_int_equal(got->id_seq, want->seq);
    assert_int_equal(got->deliveries, 0);
    assert_int_equal(got->has_job, want->has_job);
    if (!want->has_job) {
        assert_null(got->job);
        return;
    }
    assert_int_equal(got->job_len, want->job_len);
    assert_non_null(got->job);
    assert_memory_equal(got->job, want->job, want->job_len);
}

static void run_read_case(void **state)
{
    const struct read_case *c = *state;
    redisReply *reply = from_resp(c->resp, c->resp_len);
    static struct queue_entry sentinel; /* must be overwritten */
    struct queue_entry *entries = &sentinel;
    size_t count = 99;
    char errstr[REPLY_ERRSTR_BYTES] = "";
    int rc = reply_read(reply, keys, &entries, &count, errstr, sizeof errstr);
    freeReplyObject(reply); /* the entries are copies */
    if (c->why) {
        assert_int_equal(rc, -1);
        assert_null(entries);
        assert_int_equal(count, 0);
        assert_reason(errstr, c->why);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(count, c->count);
    if (count == 0)
        assert_null(entries);
    for (size_t i = 0; i < count; i++)
        assert_entry(&entries[i], &c->entries[i]);
    queue_entries_free(entries, count);
}

/* As many entries as three reads of COUNT 1000 at once, every stream. */
static void test_read_three_thousand_entries_of_three_streams(void **state)
{
    (void)state;
    enum { PER_STREAM = 1000 };
    char *resp = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&resp, &len);
    assert_non_null(out);
    resp_array(out, QUEUE_STREAM_COUNT);
    for (int s = 0; s < QUEUE_STREAM_COUNT; s++) {
        resp_array(out, 2);
        resp_bulk(out, keys[s]);
        resp_array(out, PER_STREAM);
        for (int i = 0; i < PER_STREAM; i++) {
            char id[32], job[32];
            snprintf(id, sizeof id, "%d-%d", s + 1, i);
            snprintf(job, sizeof job, "job %d of %d", i, s);
            resp_array(out, 2);
            resp_bulk(out, id);
            resp_array(out, 2);
            resp_bulk(out, "job");
            resp_bulk(out, job);
        }
    }
    assert_int_equal(fclose(out), 0);
    redisReply *reply = from_resp(resp, len);
    free(resp);
    struct queue_entry *entries = NULL;
    size_t count = 0;
    char errstr[REPLY_ERRSTR_BYTES] = "";
    assert_int_equal(reply_read(reply, keys, &entries, &count, errstr, sizeof errstr), 0);
    freeReplyObject(reply);
    assert_int_equal(count, QUEUE_STREAM_COUNT * PER_STREAM);
    for (size_t e = 0; e < count; e++) {
        char job[32];
        int s = (int)(e / PER_STREAM), i = (int)(e % PER_STREAM);
        int n = snprintf(job, sizeof job, "job %d of %d", i, s);
        assert_int_equal(entries[e].stream, s);
        assert_int_equal(entries[e].id_ms, (uint64_t)s + 1);
        assert_int_equal(entries[e].id_seq, (uint64_t)i);
        assert_int_equal(entries[e].job_len, (size_t)n);
        assert_memory_equal(entries[e].job, job, (size_t)n);
    }
    queue_entries_free(entries, count);
}

/* ---------------------------------------------------------------------------
 * XPENDING, extended form
 * ------------------------------------------------------------------------- */

struct deliveries_case {
    const char *name;
    const char *resp;
    size_t resp_len;
    enum job_stream stream;
    const char *why;
    int64_t deliveries[3]; /* of the three entries below, each 7 before */
};

#define UNSET 7
/* clang-format off */
#define NO_CHANGE {UNSET, UNSET, UNSET}
#define DELIVERIES_BAD(name, resp, why) {name, RESP(resp), JOB_STREAM_CONSUME, why, NO_CHANGE}
/* clang-format on */
#define ITEM_A "*4\r\n" ID_A "$1\r\nc\r\n:101\r\n:2\r\n"
#define ITEM_B "*4\r\n" ID_B "$1\r\nc\r\n:480\r\n:1\r\n"

static const struct deliveries_case deliveries_cases[] = {
    {"deliveries_as_redis_7_sends_them",
     RESP("*2\r\n" ITEM_A ITEM_B),
     JOB_STREAM_CONSUME,
     NULL,
     {2, 1, UNSET}},
    {"deliveries_set_only_the_entries_of_their_stream",
     RESP("*2\r\n" ITEM_A ITEM_B),
     JOB_STREAM_PURCHASE,
     NULL,
     {UNSET, UNSET, 2}},
    {"deliveries_of_entries_not_read_are_ignored",
     RESP("*1\r\n*4\r\n$3\r\n9-9\r\n$1\r\nc\r\n:1\r\n:5\r\n"), JOB_STREAM_CONSUME, NULL, NO_CHANGE},
    {"deliveries_none_pending", RESP("*0\r\n"), JOB_STREAM_CONSUME, NULL, NO_CHANGE},
    {"deliveries_count_at_int64_max",
     RESP("*1\r\n*4\r\n" ID_B "$1\r\nc\r\n:0\r\n:9223372036854775807\r\n"),
     JOB_STREAM_CONSUME,
     NULL,
     {UNSET, INT64_MAX, UNSET}},
    {"deliveries_count_zero",
     RESP("*1\r\n*4\r\n" ID_A "$1\r\nc\r\n:0\r\n:0\r\n"),
     JOB_STREAM_CONSUME,
     NULL,
     {0, UNSET, UNSET}},

    DELIVERIES_BAD("deliveries_reply_is_nil", "*-1\r\n", "it is nil, not an array"),
    DELIVERIES_BAD("deliveries_reply_is_a_string", "$1\r\nx\r\n", "it is a string, not an array"),
    DELIVERIES_BAD("deliveries_item_is_an_integer", "*1\r\n:1\r\n",
                   "item 0 is not [id, consumer, idle, deliveries]"),
    DELIVERIES_BAD("deliveries_item_of_three_elements", "*1\r\n*3\r\n" ID_A "$1\r\nc\r\n:1\r\n",
                   "item 0 is not [id, consumer, idle, deliveries]"),
    DELIVERIES_BAD("deliveries_item_of_five_elements",
                   "*1\r\n*5\r\n" ID_A "$1\r\nc\r\n:1\r\n:1\r\n:1\r\n",
                   "item 0 is not [id, consumer, idle, deliveries]"),
    DELIVERIES_BAD("deliveries_id_is_an_integer", "*1\r\n*4\r\n:1\r\n$1\r\nc\r\n:1\r\n:1\r\n",
                   "the ID of item 0 is not <ms>-<seq>"),
    DELIVERIES_BAD("deliveries_id_is_not_an_id", "*1\r\n*4\r\n$1\r\n1\r\n$1\r\nc\r\n:1\r\n:1\r\n",
                   "the ID of item 0 is not <ms>-<seq>"),
    DELIVERIES_BAD("deliveries_consumer_is_an_integer", "*1\r\n*4\r\n" ID_A ":1\r\n:1\r\n:1\r\n",
                   "the consumer of item 0 is an integer"),
    DELIVERIES_BAD("deliveries_idle_is_a_string",
                   "*1\r\n*4\r\n" ID_A "$1\r\nc\r\n$1\r\n1\r\n:1\r\n",
                   "item 0's idle time or count is a string"),
    DELIVERIES_BAD("deliveries_count_is_nil", "*1\r\n*4\r\n" ID_A "$1\r\nc\r\n:1\r\n$-1\r\n",
                   "item 0's idle time or count is nil"),
    DELIVERIES_BAD("deliveries_count_is_negative", "*1\r\n*4\r\n" ID_A "$1\r\nc\r\n:1\r\n:-1\r\n",
                   "item 0's delivery count is negative"),
    DELIVERIES_BAD("deliveries_second_item_broken_after_a_good_one",
                   "*2\r\n" ITEM_A "*4\r\n" ID_B "$1\r\nc\r\n:1\r\n+1\r\n",
                   "item 1's idle time or count is a status"),
};

static void run_deliveries_case(void **state)
{
    const struct deliveries_case *c = *state;
    struct queue_entry entries[3] = {
        {.stream = JOB_STREAM_CONSUME, .id = "1700000000000-0", .deliveries = UNSET},
        {.stream = JOB_STREAM_CONSUME, .id = "1700000000000-1", .deliveries = UNSET},
        {.stream = JOB_STREAM_PURCHASE, .id = "1700000000000-0", .deliveries = UNSET},
    };
    redisReply *reply = from_resp(c->resp, c->resp_len);
    char errstr[REPLY_ERRSTR_BYTES] = "";
    int rc = reply_deliveries(reply, c->stream, entries, ARRAY_LEN(entries), errstr, sizeof errstr);
    freeReplyObject(reply);
    assert_int_equal(rc, c->why ? -1 : 0);
    if (c->why)
        assert_reason(errstr, c->why);
    for (size_t i = 0; i < ARRAY_LEN(entries); i++)
        assert_int_equal(entries[i].deliveries, c->deliveries[i]);
}

/* ---------------------------------------------------------------------------
 * XINFO GROUPS
 * ------------------------------------------------------------------------- */

struct groups_case {
    const char *name;
    const char *resp;
    size_t resp_len;
    const char *why;
    const char *last_delivered;
};

/* A group of Redis 7.0: name, consumers, pending, last-delivered-id,
 * entries-read (nil until known), lag. */
#define GROUP(name_bulk, id_bulk)                                                                  \
    "*12\r\n$4\r\nname\r\n" name_bulk "$9\r\nconsumers\r\n:1\r\n$7\r\npending\r\n:2\r\n"           \
    "$17\r\nlast-delivered-id\r\n" id_bulk "$12\r\nentries-read\r\n$-1\r\n$3\r\nlag\r\n:0\r\n"
/* clang-format off */
#define GROUPS_BAD(name, resp, why) {name, RESP(resp), why, ""}
/* clang-format on */

static const struct groups_case groups_cases[] = {
    {"groups_one_as_redis_7_sends_it", RESP("*1\r\n" GROUP("$1\r\ng\r\n", ID_B)), NULL,
     "1700000000000-1"},
    {"groups_new_group_delivered_nothing", RESP("*1\r\n" GROUP("$1\r\ng\r\n", "$3\r\n0-0\r\n")),
     NULL, "0-0"},
    {"groups_ours_second_of_two",
     RESP("*2\r\n" GROUP("$1\r\nh\r\n", "$3\r\n5-5\r\n") GROUP("$1\r\ng\r\n", "$3\r\n6-6\r\n")),
     NULL, "6-6"},
    {"groups_ours_not_listed", RESP("*1\r\n" GROUP("$1\r\nh\r\n", ID_B)), NULL, ""},
    {"groups_longer_name_is_another_group", RESP("*1\r\n" GROUP("$2\r\ngg\r\n", ID_B)), NULL, ""},
    {"groups_none", RESP("*0\r\n"), NULL, ""},
    {"groups_name_need_not_come_first",
     RESP("*1\r\n*4\r\n$17\r\nlast-delivered-id\r\n$3\r\n3-3\r\n$4\r\nname\r\n$1\r\ng\r\n"), NULL,
     "3-3"},

    GROUPS_BAD("groups_reply_is_nil", "*-1\r\n", "it is nil, not an array"),
    GROUPS_BAD("groups_reply_is_an_error", "-ERR no such key\r\n", "it is an error, not an array"),
    GROUPS_BAD("groups_group_is_a_string", "*1\r\n$1\r\ng\r\n", "group 0 is not a list of pairs"),
    GROUPS_BAD("groups_group_odd_in_length", "*1\r\n*3\r\n$4\r\nname\r\n$1\r\ng\r\n$1\r\nx\r\n",
               "group 0 is not a list of pairs"),
    GROUPS_BAD("groups_pair_name_is_an_integer", "*1\r\n*2\r\n:1\r\n$1\r\ng\r\n",
               "name 0 of group 0 is an integer"),
    GROUPS_BAD("groups_group_without_a_name", "*1\r\n*2\r\n$3\r\nlag\r\n:0\r\n",
               "group 0 has no name"),
    GROUPS_BAD("groups_name_is_an_integer", "*1\r\n*2\r\n$4\r\nname\r\n:5\r\n",
               "group 0 has no name"),
    GROUPS_BAD("groups_last_delivered_missing", "*1\r\n*2\r\n$4\r\nname\r\n$1\r\ng\r\n",
               "group 0's last-delivered-id is missing or not <ms>-<seq>"),
    GROUPS_BAD("groups_last_delivered_is_nil", "*1\r\n" GROUP("$1\r\ng\r\n", "$-1\r\n"),
               "group 0's last-delivered-id is missing or not <ms>-<seq>"),
    GROUPS_BAD("groups_last_delivered_is_an_integer", "*1\r\n" GROUP("$1\r\ng\r\n", ":3\r\n"),
               "group 0's last-delivered-id is missing or not <ms>-<seq>"),
    GROUPS_BAD("groups_last_delivered_is_not_an_id", "*1\r\n" GROUP("$1\r\ng\r\n", "$1\r\n3\r\n"),
               "group 0's last-delivered-id is missing or not <ms>-<seq>"),
    GROUPS_BAD("groups_broken_group_after_ours", "*2\r\n" GROUP("$1\r\ng\r\n", ID_B) "$1\r\nx\r\n",
               "group 1 is not a list of pairs"),
};

static void run_groups_case(void **state)
{
    const struct groups_case *c = *state;
    redisReply *reply = from_resp(c->resp, c->resp_len);
    char id[QUEUE_ENTRY_ID_BYTES_MAX + 1] = "9-9";
    char errstr[REPLY_ERRSTR_BYTES] = "";
    int rc = reply_groups_last_delivered(reply, "g", id, errstr, sizeof errstr);
    freeReplyObject(reply);
    assert_int_equal(rc, c->why ? -1 : 0);
    if (c->why)
        assert_reason(errstr, c->why);
    assert_string_equal(id, c->last_delivered);
}

/* ---------------------------------------------------------------------------
 * XPENDING summary
 * ------------------------------------------------------------------------- */

struct summary_case {
    const char *name;
    const char *resp;
    size_t resp_len;
    const char *why;
    struct queue_pending pending; /* after; before: {-7, 7, "7-7"} */
};

/* clang-format off */
#define BEFORE {-7, 7, "7-7"}
#define SUMMARY_BAD(name, resp, why) {name, RESP(resp), why, BEFORE}
/* clang-format on */
#define CONSUMERS "*1\r\n*2\r\n$1\r\nc\r\n$1\r\n2\r\n"

static const struct summary_case summary_cases[] = {
    {"summary_nothing_pending_as_redis_7_sends_it",
     RESP("*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n"),
     NULL,
     {0, 7, "7-7"}},
    {"summary_nothing_pending_with_an_empty_consumer_list",
     RESP("*4\r\n:0\r\n$-1\r\n$-1\r\n*0\r\n"),
     NULL,
     {0, 7, "7-7"}},
    {"summary_two_pending_as_redis_7_sends_it",
     RESP("*4\r\n:2\r\n" ID_A ID_B CONSUMERS),
     NULL,
     {2, T_MS, "1700000000000-0"}},
    {"summary_count_at_int64_max",
     RESP("*4\r\n:9223372036854775807\r\n$3\r\n0-1\r\n" ID_B CONSUMERS),
     NULL,
     {INT64_MAX, 0, "0-1"}},

    SUMMARY_BAD("summary_reply_is_nil", "*-1\r\n", "it is not [count, min, max, consumers]"),
    SUMMARY_BAD("summary_of_three_elements", "*3\r\n:0\r\n$-1\r\n$-1\r\n",
                "it is not [count, min, max, consumers]"),
    SUMMARY_BAD("summary_of_five_elements", "*5\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n:0\r\n",
                "it is not [count, min, max, consumers]"),
    SUMMARY_BAD("summary_count_is_a_string", "*4\r\n$1\r\n0\r\n$-1\r\n$-1\r\n*-1\r\n",
                "the count is a string"),
    SUMMARY_BAD("summary_count_is_nil", "*4\r\n$-1\r\n$-1\r\n$-1\r\n*-1\r\n", "the count is nil"),
    SUMMARY_BAD("summary_count_is_negative", "*4\r\n:-1\r\n" ID_A ID_B CONSUMERS,
                "the count is negative"),
    SUMMARY_BAD("summary_nothing_pending_but_an_oldest_id", "*4\r\n:0\r\n" ID_A "$-1\r\n*-1\r\n",
                "nothing is pending but an ID is given"),
    SUMMARY_BAD("summary_nothing_pending_but_a_newest_id", "*4\r\n:0\r\n$-1\r\n" ID_B "*-1\r\n",
                "nothing is pending but an ID is given"),
    SUMMARY_BAD("summary_pending_without_an_oldest_id", "*4\r\n:1\r\n$-1\r\n" ID_B CONSUMERS,
                "the oldest or newest ID is not <ms>-<seq>"),
    SUMMARY_BAD("summary_oldest_id_is_an_integer", "*4\r\n:1\r\n:1\r\n" ID_B CONSUMERS,
                "the oldest or newest ID is not <ms>-<seq>"),
    SUMMARY_BAD("summary_oldest_id_is_not_an_id", "*4\r\n:1\r\n$2\r\n1-\r\n" ID_B CONSUMERS,
                "the oldest or newest ID is not <ms>-<seq>"),
    SUMMARY_BAD("summary_newest_id_is_nil", "*4\r\n:1\r\n" ID_A "$-1\r\n" CONSUMERS,
                "the oldest or newest ID is not <ms>-<seq>"),
    SUMMARY_BAD("summary_consumers_are_a_string", "*4\r\n:1\r\n" ID_A ID_B "$1\r\nc\r\n",
                "the consumers are a string"),
    SUMMARY_BAD("summary_pending_but_consumers_are_nil", "*4\r\n:1\r\n" ID_A ID_B "*-1\r\n",
                "the consumers are nil"),
};

static void run_summary_case(void **state)
{
    const struct summary_case *c = *state;
    redisReply *reply = from_resp(c->resp, c->resp_len);
    struct queue_pending pending = BEFORE;
    char errstr[REPLY_ERRSTR_BYTES] = "";
    int rc = reply_pending_summary(reply, &pending, errstr, sizeof errstr);
    freeReplyObject(reply);
    assert_int_equal(rc, c->why ? -1 : 0);
    if (c->why)
        assert_reason(errstr, c->why);
    assert_int_equal(pending.count, c->pending.count);
    assert_int_equal(pending.oldest_ms, c->pending.oldest_ms);
    assert_string_equal(pending.trim_before, c->pending.trim_before);
}

/* ---------------------------------------------------------------------------
 * XAUTOCLAIM ... JUSTID
 * ------------------------------------------------------------------------- */

struct claim_case {
    const char *name;
    const char *resp;
    size_t resp_len;
    const char *why;
    int64_t claimed; /* after; -1 before */
};

/* clang-format off */
#define CLAIM_BAD(name, resp, why) {name, RESP(resp), why, -1}
/* clang-format on */
#define CURSOR_0 "$3\r\n0-0\r\n"

static const struct claim_case claim_cases[] = {
    {"claim_as_redis_7_sends_it", RESP("*3\r\n" CURSOR_0 "*1\r\n" ID_A "*1\r\n" ID_B), NULL, 1},
    {"claim_nothing", RESP("*3\r\n" CURSOR_0 "*0\r\n*0\r\n"), NULL, 0},
    {"claim_as_redis_6_2_sends_it", RESP("*2\r\n" CURSOR_0 "*2\r\n" ID_A ID_B), NULL, 2},
    {"claim_with_more_to_scan", RESP("*3\r\n" ID_B "*1\r\n" ID_A "*0\r\n"), NULL, 1},

    CLAIM_BAD("claim_reply_is_nil", "*-1\r\n", "it is not [cursor, claimed, deleted]"),
    CLAIM_BAD("claim_of_one_element", "*1\r\n" CURSOR_0, "it is not [cursor, claimed, deleted]"),
    CLAIM_BAD("claim_of_four_elements", "*4\r\n" CURSOR_0 "*0\r\n*0\r\n*0\r\n",
              "it is not [cursor, claimed, deleted]"),
    CLAIM_BAD("claim_cursor_is_an_integer", "*3\r\n:0\r\n*0\r\n*0\r\n",
              "the cursor is not <ms>-<seq>"),
    CLAIM_BAD("claim_cursor_is_not_an_id", "*3\r\n$1\r\n0\r\n*0\r\n*0\r\n",
              "the cursor is not <ms>-<seq>"),
    CLAIM_BAD("claim_claimed_are_nil", "*3\r\n" CURSOR_0 "*-1\r\n*0\r\n",
              "the claimed IDs are nil"),
    CLAIM_BAD("claim_claimed_are_entries_not_ids", "*3\r\n" CURSOR_0 "*1\r\n" ENTRY_A "*0\r\n",
              "claimed ID 0 is not <ms>-<seq>"),
    CLAIM_BAD("claim_claimed_id_is_an_integer", "*3\r\n" CURSOR_0 "*2\r\n" ID_A ":1\r\n*0\r\n",
              "claimed ID 1 is not <ms>-<seq>"),
    CLAIM_BAD("claim_deleted_are_a_string", "*3\r\n" CURSOR_0 "*0\r\n$1\r\nx\r\n",
              "the deleted IDs are a string"),
    CLAIM_BAD("claim_deleted_id_is_nil", "*3\r\n" CURSOR_0 "*0\r\n*1\r\n$-1\r\n",
              "deleted ID 0 is not <ms>-<seq>"),
};

static void run_claim_case(void **state)
{
    const struct claim_case *c = *state;
    redisReply *reply = from_resp(c->resp, c->resp_len);
    int64_t claimed = -1;
    char errstr[REPLY_ERRSTR_BYTES] = "";
    int rc = reply_claim(reply, &claimed, errstr, sizeof errstr);
    freeReplyObject(reply);
    assert_int_equal(rc, c->why ? -1 : 0);
    if (c->why)
        assert_reason(errstr, c->why);
    assert_int_equal(claimed, c->claimed);
}

/* COUNT 1000, the queue's claim size, all claimed. */
static void test_claim_a_thousand_ids(void **state)
{
    (void)state;
    enum { IDS = 1000 };
    char *resp = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&resp, &len);
    assert_non_null(out);
    resp_array(out, 3);
    resp_bulk(out, "1700000000000-999");
    resp_array(out, IDS);
    for (int i = 0; i < IDS; i++) {
        char id[32];
        snprintf(id, sizeof id, "1700000000000-%d", i);
        resp_bulk(out, id);
    }
    resp_array(out, 0);
    assert_int_equal(fclose(out), 0);
    redisReply *reply = from_resp(resp, len);
    free(resp);
    int64_t claimed = 0;
    char errstr[REPLY_ERRSTR_BYTES] = "";
    assert_int_equal(reply_claim(reply, &claimed, errstr, sizeof errstr), 0);
    assert_int_equal(claimed, IDS);
    freeReplyObject(reply);
}

/* ---------------------------------------------------------------------------
 * Every table row is a case of its own, named by its first member.
 * ------------------------------------------------------------------------- */

static void add_cases(struct CMUnitTest *tests, size_t *n, const void *rows, size_t row_size,
                      size_t count, CMUnitTestFunction run)
{
    for (size_t i = 0; i < count; i++) {
        const void *row = (const char *)rows + i * row_size;
        assert_true(*n < CASES_MAX);
        tests[(*n)++] =
            (struct CMUnitTest){*(const char *const *)row, run, NULL, NULL, (void *)row};
    }
}

#define ADD_TABLE(rows, run) add_cases(tests, &n, rows, sizeof rows[0], ARRAY_LEN(rows), run)

int main(int argc, char **argv)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_error_text_is_cut_to_fit),
        cmocka_unit_test(test_read_three_thousand_entries_of_three_streams),
        cmocka_unit_test(test_claim_a_thousand_ids),
    };
    struct CMUnitTest tests[CASES_MAX];
    size_t n = 0;
    ADD_TABLE(id_cases, run_id_case);
    ADD_TABLE(next_cases, run_next_case);
    ADD_TABLE(error_cases, run_error_case);
    ADD_TABLE(read_cases, run_read_case);
    ADD_TABLE(deliveries_cases, run_deliveries_case);
    ADD_TABLE(groups_cases, run_groups_case);
    ADD_TABLE(summary_cases, run_summary_case);
    ADD_TABLE(claim_cases, run_claim_case);
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++) {
        assert_true(n < CASES_MAX);
        tests[n++] = fixed[i];
    }
    return case_filter_run("reply", tests, n, NULL, NULL, argc, argv);
}
