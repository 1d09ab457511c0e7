/*
 * test_config.c -- the Redis URL grammar, and the settings: defaults, the
 * settings file, the environment and flags, each overriding the one before;
 * bounds and clear messages; secrets never printed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "case_filter.h"
#include "queue/redis_url.h"
#include "worker/common/config.h"

/* ---------------------------------------------------------------------------
 * Redis URLs
 * ------------------------------------------------------------------------- */

static struct redis_url parse_ok(const char *text)
{
    struct redis_url url;
    char errstr[200] = "";
    int rc = redis_url_parse(text, &url, errstr, sizeof errstr);
    if (rc != 0)
        fail_msg("%s: %s", text, errstr);
    return url;
}

static void test_a_bare_url_takes_the_default_port_and_database(void **state)
{
    (void)state;
    struct redis_url url = parse_ok("redis://127.0.0.1");
    assert_string_equal(url.host, "127.0.0.1");
    assert_int_equal(url.port, 6379);
    assert_int_equal(url.db, 0);
    assert_false(url.has_user);
    assert_false(url.has_password);
}

static void test_user_password_port_and_database_are_read(void **state)
{
    (void)state;
    struct redis_url url = parse_ok("redis://worker:s%40cret:x@redis.local:6380/3");
    assert_true(url.has_user);
    assert_string_equal(url.user, "worker");
    assert_true(url.has_password);
    assert_string_equal(url.password, "s@cret:x"); /* percent-decoded; ':' after the first */
    assert_string_equal(url.host, "redis.local");
    assert_int_equal(url.port, 6380);
    assert_int_equal(url.db, 3);
}

static void test_a_password_alone_and_an_at_sign_in_it(void **state)
{
    (void)state;
    struct redis_url url = parse_ok("redis://:p@ss@127.0.0.1:7000");
    assert_false(url.has_user);
    assert_true(url.has_password);
    assert_string_equal(url.password, "p@ss"); /* the last '@' ends the user info */
    assert_int_equal(url.port, 7000);
}

static void test_an_ipv6_host_in_brackets(void **state)
{
    (void)state;
    struct redis_url url = parse_ok("redis://[::1]:6390/1");
    assert_string_equal(url.host, "::1");
    assert_int_equal(url.port, 6390);
    assert_int_equal(url.db, 1);
}

static void test_a_unix_socket_url_has_a_path_and_an_optional_database(void **state)
{
    (void)state;
    struct redis_url url = parse_ok("unix:///run/redis/redis.sock");
    assert_true(url.is_unix);
    assert_string_equal(url.socket_path, "/run/redis/redis.sock");
    assert_int_equal(url.db, 0);
    assert_false(url.has_password);
    url = parse_ok("unix://credits-worker:p%2Fw@d@/tmp/r.sock?db=7");
    assert_true(url.is_unix);
    assert_string_equal(url.user, "credits-worker");
    assert_string_equal(url.password, "p/w@d");
    assert_string_equal(url.socket_path, "/tmp/r.sock");
    assert_int_equal(url.db, 7);
    char out[600], errstr[200];
    redis_url_redacted(&url, out, sizeof out);
    assert_string_equal(out, "unix://credits-worker:***@/tmp/r.sock?db=7");
    assert_int_equal(redis_url_resolve(&url, errstr, sizeof errstr), 0);
    assert_string_equal(url.socket_path, "/tmp/r.sock");
}

static void test_malformed_urls_are_refused_with_a_reason(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *reason;
    } cases[] = {
        {"http://127.0.0.1", "must start with redis://"},
        {"redis://", "bad host"},
        {"redis://127.0.0.1:0", "bad port"},
        {"redis://127.0.0.1:65536", "bad port"},
        {"redis://127.0.0.1:63a9", "bad port"},
        {"redis://127.0.0.1/16", "bad database number"},
        {"redis://127.0.0.1/x", "bad database number"},
        {"redis://[::1", "bad host"},
        {"redis://u:%zz@127.0.0.1", "bad password"},
        {"redis://u:%00@127.0.0.1", "bad password"},
        {"unix://", "must be absolute"},
        {"unix://relative/path.sock", "must be absolute"},
        {"unix://u:pw@relative/x", "must be absolute"},
        {"unix:///r.sock?db=16", "only ?db=N"},
        {"unix:///r.sock?database=1", "only ?db=N"},
        {"unix:///r.sock?db=", "only ?db=N"},
        {"unix:///"
         "0123456789012345678901234567890123456789012345678901234567890123456789"
         "0123456789012345678901234567890123456789",
         "longer than 107 bytes"},
        {"unix://u:%zz@/r.sock", "bad password"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct redis_url url;
        char errstr[200] = "";
        assert_int_equal(redis_url_parse(cases[i].text, &url, errstr, sizeof errstr), -1);
        if (!strstr(errstr, cases[i].reason))
            fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].text, errstr, cases[i].reason);
    }
}

static void test_the_password_never_shows_in_a_redacted_url_or_an_error(void **state)
{
    (void)state;
    struct redis_url url = parse_ok("redis://worker:hunter2@10.0.0.5:6380/2");
    char out[300];
    redis_url_redacted(&url, out, sizeof out);
    assert_string_equal(out, "redis://worker:***@10.0.0.5:6380/2");
    char errstr[200] = "";
    assert_int_equal(redis_url_parse("redis://u:hunter2@h:99999", &url, errstr, sizeof errstr), -1);
    assert_null(strstr(errstr, "hunter2"));
}

static void test_a_host_name_resolves_to_an_address_ipv4_first(void **state)
{
    (void)state;
    struct redis_url url = parse_ok("redis://localhost:6379");
    char errstr[200] = "";
    assert_int_equal(redis_url_resolve(&url, errstr, sizeof errstr), 0);
    assert_string_equal(url.host, "127.0.0.1");
}

/* ---------------------------------------------------------------------------
 * Settings
 * ------------------------------------------------------------------------- */

static const char *const setting_names[] = {
    "CREDITS_REDIS_URL",      "CREDITS_DATABASE_URL",
    "CREDITS_PREFIX",         "CREDITS_GROUP",
    "CREDITS_CONSUMER",       "CREDITS_RESULT_TTL",
    "CREDITS_RESULTS_MAXLEN", "CREDITS_BATCH_MAX",
    "CREDITS_BLOCK_MS",       "CREDITS_SHUTDOWN_TIMEOUT_MS",
    "CREDITS_CLAIM_IDLE_MS",  "CREDITS_MAX_DELIVERIES",
    "CREDITS_LOG_LEVEL",      "CREDITS_LOG_FORMAT",
    "CREDITS_HTTP_ADDR",      "CREDITS_DEAD_MAXLEN",
    "CREDITS_ID_PREFIXES",
};

static int clear_environment(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof setting_names / sizeof setting_names[0]; i++)
        unsetenv(setting_names[i]);
    return 0;
}

static void test_defaults_follow_the_contract(void **state)
{
    (void)state;
    struct config c;
    char errstr[300];
    assert_int_equal(config_load(&c, NULL, errstr, sizeof errstr), 0);
    assert_string_equal(c.redis.host, "127.0.0.1");
    assert_int_equal(c.redis.port, 6379);
    assert_string_equal(c.database_url, "");
    assert_string_equal(c.prefix, "credits");
    assert_string_equal(c.group, "credits-worker");
    assert_true(strlen(c.consumer) > 0); /* the host name */
    assert_int_equal(c.result_ttl_s, 86400);
    assert_int_equal(c.results_maxlen, 100000);
    assert_int_equal(c.dead_maxlen, 100000);
    assert_int_equal(c.batch_jobs_max, 1024);
    assert_int_equal(c.max_deliveries, 10);
    assert_int_equal(c.log_level, LOG_INFO);
    assert_int_equal(c.log_format, LOG_FORMAT_LOGFMT);
    assert_string_equal(c.http_addr, "127.0.0.1:9464");
}

/* Writes `text` to a temporary settings file; the caller unlinks it. */
static void write_file(char *path, size_t path_len, const char *text)
{
    snprintf(path, path_len, "/tmp/test_config.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_file_then_environment_then_flags_each_override_the_one_before(void **state)
{
    (void)state;
    char path[64];
    write_file(path, sizeof path,
               "# comment\n\nCREDITS_PREFIX=from-file\nCREDITS_GROUP=file-group\n"
               "CREDITS_BATCH_MAX=64\n");
    setenv("CREDITS_GROUP", "env-group", 1);
    setenv("CREDITS_BATCH_MAX", "128", 1);
    struct config c;
    char errstr[300];
    assert_int_equal(config_load(&c, path, errstr, sizeof errstr), 0);
    assert_string_equal(c.prefix, "from-file");
    assert_string_equal(c.group, "env-group");
    assert_int_equal(c.batch_jobs_max, 128);
    assert_int_equal(config_set_flag(&c, "--batch-max", "256", errstr, sizeof errstr), 0);
    assert_int_equal(c.batch_jobs_max, 256);
    unlink(path);
}

static void test_bad_values_are_refused_naming_the_setting(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *value;
    } cases[] = {
        {"CREDITS_BATCH_MAX", "0"},           {"CREDITS_BATCH_MAX", "4097"},
        {"CREDITS_BATCH_MAX", "12x"},         {"CREDITS_RESULT_TTL", "-5"},
        {"CREDITS_PREFIX", "has space"},      {"CREDITS_PREFIX", "a:b"},
        {"CREDITS_LOG_LEVEL", "loud"},        {"CREDITS_LOG_FORMAT", "xml"},
        {"CREDITS_REDIS_URL", "redis://h:0"}, {"CREDITS_MAX_DELIVERIES", "0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv(cases[i].name, cases[i].value, 1);
        struct config c;
        char errstr[300] = "";
        assert_int_equal(config_load(&c, NULL, errstr, sizeof errstr), -1);
        if (!strstr(errstr, cases[i].name))
            fail_msg("%s=%s: \"%s\" does not name the setting", cases[i].name, cases[i].value,
                     errstr);
        unsetenv(cases[i].name);
    }
}

static void test_a_malformed_database_url_is_refused_without_echoing_it(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "host=db password='hunter2",
        "host=db hunter2",
        "postgresql://u:hunter2%zz@db/credits",
        "host=db passwd=hunter2",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("CREDITS_DATABASE_URL", cases[i], 1);
        struct config c;
        char errstr[300] = "";
        assert_int_equal(config_load(&c, NULL, errstr, sizeof errstr), -1);
        assert_string_equal(errstr, "CREDITS_DATABASE_URL is not a valid connection string");
    }
    /* A database name alone is what libpq takes it for: not refused. */
    static const char *const valid[] = {"credits", "", "host=db password='hunter 2'",
                                        "postgresql://u:hunter2@db/credits?sslmode=verify-full"};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        setenv("CREDITS_DATABASE_URL", valid[i], 1);
        struct config c;
        char errstr[300] = "";
        assert_int_equal(config_load(&c, NULL, errstr, sizeof errstr), 0);
        assert_string_equal(c.database_url, valid[i]);
    }
    unsetenv("CREDITS_DATABASE_URL");
}

static void test_a_bad_settings_file_line_names_file_and_line(void **state)
{
    (void)state;
    char path[64];
    write_file(path, sizeof path, "CREDITS_PREFIX=ok\nCREDITS_NOPE=1\n");
    struct config c;
    char errstr[300] = "";
    assert_int_equal(config_load(&c, path, errstr, sizeof errstr), -1);
    assert_non_null(strstr(errstr, ":2: unknown setting CREDITS_NOPE"));
    unlink(path);
    assert_int_equal(config_load(&c, "/nonexistent/settings", errstr, sizeof errstr), -1);
    assert_non_null(strstr(errstr, "cannot read the settings file"));
}

static void test_an_unknown_flag_is_reported_as_such(void **state)
{
    (void)state;
    struct config c;
    char errstr[300] = "";
    assert_int_equal(config_load(&c, NULL, errstr, sizeof errstr), 0);
    assert_int_equal(config_set_flag(&c, "--no-such-thing", "1", errstr, sizeof errstr), -2);
    assert_non_null(strstr(errstr, "unknown option --no-such-thing"));
    assert_int_equal(config_set_flag(&c, "--log-level", "loud", errstr, sizeof errstr), -1);
}

static void test_printed_settings_hide_every_secret(void **state)
{
    (void)state;
    setenv("CREDITS_REDIS_URL", "redis://u:hunter2@127.0.0.1:6379", 1);
    setenv("CREDITS_DATABASE_URL", "host=db password=hunter3", 1);
    struct config c;
    char errstr[300];
    assert_int_equal(config_load(&c, NULL, errstr, sizeof errstr), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    config_print(&c, out);
    fclose(out);
    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "hunter3"));
    assert_non_null(strstr(text, "CREDITS_REDIS_URL=redis://u:***@127.0.0.1:6379/0"));
    assert_non_null(strstr(text, "CREDITS_DATABASE_URL=(set, not shown)"));
    assert_non_null(strstr(text, "CREDITS_HTTP_ADDR=127.0.0.1:9464"));
    free(text);
}

/* ---------------------------------------------------------------------------
 * CREDITS_ID_PREFIXES
 * ------------------------------------------------------------------------- */

static void test_id_prefixes_default_to_none(void **state)
{
    (void)state;
    struct config c;
    char errstr[300];
    assert_int_equal(config_load(&c, NULL, errstr, sizeof errstr), 0);
    for (int s = 0; s < JOB_STREAM_COUNT; s++)
        assert_string_equal(c.id_prefixes[s], "");
}

static void test_id_prefixes_per_stream(void **state)
{
    (void)state;
    struct config c;
    char errstr[300];
    assert_int_equal(config_load(&c, NULL, errstr, sizeof errstr), 0);
    assert_int_equal(config_set(&c, "CREDITS_ID_PREFIXES",
                                "consume=web:,purchase=pay:,allocate=alloc:", errstr,
                                sizeof errstr),
                     0);
    assert_string_equal(c.id_prefixes[JOB_STREAM_CONSUME], "web:");
    assert_string_equal(c.id_prefixes[JOB_STREAM_PURCHASE], "pay:");
    assert_string_equal(c.id_prefixes[JOB_STREAM_ALLOCATE], "alloc:");
    /* Any order, some streams only; a new value replaces the whole table. */
    assert_int_equal(
        config_set(&c, "CREDITS_ID_PREFIXES", "allocate=a-,consume=w", errstr, sizeof errstr), 0);
    assert_string_equal(c.id_prefixes[JOB_STREAM_CONSUME], "w");
    assert_string_equal(c.id_prefixes[JOB_STREAM_PURCHASE], "");
    assert_string_equal(c.id_prefixes[JOB_STREAM_ALLOCATE], "a-");
    assert_int_equal(config_set(&c, "CREDITS_ID_PREFIXES", "", errstr, sizeof errstr), 0);
    assert_string_equal(c.id_prefixes[JOB_STREAM_ALLOCATE], "");
    /* A prefix may hold '=' and any printable character but ','. */
    assert_int_equal(config_set(&c, "CREDITS_ID_PREFIXES", "purchase=p=1|", errstr, sizeof errstr),
                     0);
    assert_string_equal(c.id_prefixes[JOB_STREAM_PURCHASE], "p=1|");
}

static void test_id_prefixes_refused(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        const char *message;
    } cases[] = {
        {"refund=r:", "CREDITS_ID_PREFIXES: \"refund=r:\" is not stream=prefix with a stream of "
                      "consume, purchase or allocate"},
        {"web:", "CREDITS_ID_PREFIXES: \"web:\" is not stream=prefix"},
        {"consume=web:,", "CREDITS_ID_PREFIXES: \"\" is not stream=prefix"},
        {",consume=web:", "CREDITS_ID_PREFIXES: \"\" is not stream=prefix"},
        {"Consume=web:", "CREDITS_ID_PREFIXES: \"Consume=web:\" is not stream=prefix"},
        {"consume=", "CREDITS_ID_PREFIXES: the prefix of consume must be given once"},
        {"consume=a,consume=b", "CREDITS_ID_PREFIXES: the prefix of consume must be given once"},
        {"consume=web :", "(got \"consume=web :\")"},
        {"consume=expire:web", "not start with the reserved 'expire:'"},
        {"purchase=x\x7f", "the prefix of purchase must be given once"},
        {"allocate=01234567890123456789012345678901234567890123456789012345678901234",
         "1 to 64 printable ASCII characters"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config c;
        char errstr[400];
        assert_int_equal(config_load(&c, NULL, errstr, sizeof errstr), 0);
        assert_int_equal(
            config_set(&c, "CREDITS_ID_PREFIXES", "consume=kept:", errstr, sizeof errstr), 0);
        errstr[0] = '\0';
        assert_int_equal(
            config_set(&c, "CREDITS_ID_PREFIXES", cases[i].value, errstr, sizeof errstr), -1);
        if (strstr(errstr, cases[i].message) == NULL)
            fail_msg("%s: \"%s\" does not hold \"%s\"", cases[i].value, errstr, cases[i].message);
        /* A refused value changes nothing. */
        assert_string_equal(c.id_prefixes[JOB_STREAM_CONSUME], "kept:");
    }
    /* 64 bytes is the most. */
    struct config c;
    char errstr[400];
    assert_int_equal(config_load(&c, NULL, errstr, sizeof errstr), 0);
    assert_int_equal(
        config_set(&c, "CREDITS_ID_PREFIXES",
                   "allocate=0123456789012345678901234567890123456789012345678901234567890123",
                   errstr, sizeof errstr),
        0);
    assert_int_equal(strlen(c.id_prefixes[JOB_STREAM_ALLOCATE]), 64);
}

static void test_id_prefixes_printed_as_given(void **state)
{
    (void)state;
    struct config c;
    char errstr[300];
    assert_int_equal(config_load(&c, NULL, errstr, sizeof errstr), 0);
    assert_int_equal(config_set(&c, "CREDITS_ID_PREFIXES", "allocate=alloc:,consume=web:", errstr,
                                sizeof errstr),
                     0);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    config_print(&c, out);
    fclose(out);
    assert_non_null(strstr(text, "\nCREDITS_ID_PREFIXES=consume=web:,allocate=alloc:\n"));
    free(text);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_bare_url_takes_the_default_port_and_database),
        cmocka_unit_test(test_user_password_port_and_database_are_read),
        cmocka_unit_test(test_a_password_alone_and_an_at_sign_in_it),
        cmocka_unit_test(test_an_ipv6_host_in_brackets),
        cmocka_unit_test(test_a_unix_socket_url_has_a_path_and_an_optional_database),
        cmocka_unit_test(test_malformed_urls_are_refused_with_a_reason),
        cmocka_unit_test(test_the_password_never_shows_in_a_redacted_url_or_an_error),
        cmocka_unit_test(test_a_host_name_resolves_to_an_address_ipv4_first),
        cmocka_unit_test_setup(test_defaults_follow_the_contract, clear_environment),
        cmocka_unit_test_setup(test_file_then_environment_then_flags_each_override_the_one_before,
                               clear_environment),
        cmocka_unit_test_setup(test_bad_values_are_refused_naming_the_setting, clear_environment),
        cmocka_unit_test_setup(test_a_malformed_database_url_is_refused_without_echoing_it,
                               clear_environment),
        cmocka_unit_test_setup(test_a_bad_settings_file_line_names_file_and_line,
                               clear_environment),
        cmocka_unit_test_setup(test_an_unknown_flag_is_reported_as_such, clear_environment),
        cmocka_unit_test_setup(test_printed_settings_hide_every_secret, clear_environment),
        cmocka_unit_test_setup(test_id_prefixes_default_to_none, clear_environment),
        cmocka_unit_test_setup(test_id_prefixes_per_stream, clear_environment),
        cmocka_unit_test_setup(test_id_prefixes_refused, clear_environment),
        cmocka_unit_test_setup(test_id_prefixes_printed_as_given, clear_environment),
    };
    return case_filter_run("config", tests, sizeof tests / sizeof tests[0], NULL, NULL, argc, argv);
}
