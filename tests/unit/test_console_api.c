/*
 * test_console_api.c -- the console's JSON API (worker/ctl/console_api.c)
 * without Redis or PostgreSQL: the routes (each path once, the actions
 * exactly the calls that change something), the boot document, and every
 * bad parameter answered 400 with an error document before anything is
 * connected. (What the routes read is tested against real servers by
 * tests/integration/test_console.sh.)
 */
#include "case_filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/ctl/console_api.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Settings whose servers nobody listens on: a route that connected before
 * checking its parameters would answer 502 or 503, not 400. */
static struct config test_config(void)
{
    struct config c;
    memset(&c, 0, sizeof c);
    snprintf(c.prefix, sizeof c.prefix, "credits");
    snprintf(c.group, sizeof c.group, "credits-worker");
    snprintf(c.redis.host, sizeof c.redis.host, "127.0.0.1");
    c.redis.port = 1;
    snprintf(c.database_url, sizeof c.database_url, "host=127.0.0.1 port=1 connect_timeout=1");
    return c;
}

static void test_routes(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        enum console_route_kind kind;
    } known[] = {
        {"/api/config", CONSOLE_ROUTE_READ},      {"/api/overview", CONSOLE_ROUTE_READ},
        {"/api/workers", CONSOLE_ROUTE_READ},     {"/api/dead", CONSOLE_ROUTE_READ},
        {"/api/dead/one", CONSOLE_ROUTE_READ},    {"/api/dead/retry", CONSOLE_ROUTE_ACTION},
        {"/api/dead/drop", CONSOLE_ROUTE_ACTION}, {"/api/dead/retry-reason", CONSOLE_ROUTE_ACTION},
        {"/api/user", CONSOLE_ROUTE_READ},        {"/api/history", CONSOLE_ROUTE_READ},
        {"/api/job", CONSOLE_ROUTE_READ},         {"/api/catalog", CONSOLE_ROUTE_READ},
        {"/api/plan", CONSOLE_ROUTE_ACTION},      {"/api/pack", CONSOLE_ROUTE_ACTION},
        {"/api/events", CONSOLE_ROUTE_READ},
    };
    for (size_t i = 0; i < ARRAY_LEN(known); i++) {
        const struct console_route *r = console_api_route(known[i].path);
        if (!r)
            fail_msg("no route %s", known[i].path);
        assert_string_equal(r->path, known[i].path);
        if (r->kind != known[i].kind)
            fail_msg("%s: kind %d", known[i].path, r->kind);
        assert_non_null(r->name);
        assert_non_null(r->handle);
    }
    static const char *const unknown[] = {"/api",       "/api/",          "/api/dead/", "/API/dead",
                                          "/api/deadx", "/api/dead/one/", "/",          ""};
    for (size_t i = 0; i < ARRAY_LEN(unknown); i++)
        if (console_api_route(unknown[i]))
            fail_msg("a route for %s", unknown[i]);
}

/* Calls `path` with `query`; the outcome's body must be one JSON object
 * on one line. */
static void call(struct console_api *api, const char *path, const char *query,
                 struct console_outcome *out)
{
    const struct console_route *r = console_api_route(path);
    assert_non_null(r);
    console_api_call(api, r, query, out);
    assert_non_null(out->body);
    assert_true(out->body_len >= 3);
    assert_int_equal(strlen(out->body), out->body_len);
    assert_int_equal(out->body[0], '{');
    assert_memory_equal(out->body + out->body_len - 2, "}\n", 2);
    assert_null(memchr(out->body, '\n', out->body_len - 1));
}

static void test_config_and_workers_need_no_server(void **state)
{
    (void)state;
    struct config config = test_config();
    struct console_api api = {.config = &config, .actions = true, .listen = "127.0.0.1:9465"};
    struct console_outcome out;
    call(&api, "/api/config", "", &out);
    assert_int_equal(out.status, 200);
    assert_string_equal(out.error, "");
    assert_non_null(strstr(out.body, "\"prefix\":\"credits\""));
    assert_non_null(strstr(out.body, "\"actions\":true"));
    free(out.body);
    call(&api, "/api/workers", "", &out);
    assert_int_equal(out.status, 200);
    assert_string_equal(out.body, "{\"workers\":[]}\n");
    free(out.body);
    assert_null(api.redis);
    assert_null(api.pg);
}

static void test_boot_document_is_script_safe(void **state)
{
    (void)state;
    struct config config = test_config();
    snprintf(config.prefix, sizeof config.prefix, "a<b>&c");
    struct console_api api = {.config = &config, .listen = "127.0.0.1:9465"};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    console_api_boot_json(&api, out);
    assert_int_equal(fclose(out), 0);
    assert_non_null(strstr(text, "\"prefix\":\"a\\u003cb\\u003e\\u0026c\""));
    assert_null(strchr(text, '<'));
    assert_non_null(strstr(text, "\"actions\":false"));
    free(text);
}

struct bad_case {
    const char *name;
    const char *path;
    const char *query;
    const char *says; /* a part of the error */
};

static const struct bad_case bad_cases[] = {
    {"bad_malformed_query", "/api/dead", "a=%zz", "malformed"},
    {"bad_uppercase_name", "/api/user", "User=alice", "malformed"},
    {"bad_param_twice", "/api/user", "user=a&user=b", "malformed"},
    {"bad_nul_in_value", "/api/job", "id=a%00b", "malformed"},
    {"bad_dead_limit_zero", "/api/dead", "limit=0", "limit"},
    {"bad_dead_limit_high", "/api/dead", "limit=101", "limit"},
    {"bad_dead_limit_text", "/api/dead", "limit=ten", "limit"},
    {"bad_dead_stream", "/api/dead", "stream=results", "stream"},
    {"bad_dead_before", "/api/dead", "before=yesterday", "before"},
    {"bad_dead_from_negative", "/api/dead", "from=-5", "from"},
    {"bad_dead_reason_control", "/api/dead", "reason=a%1bb", "reason"},
    {"bad_dead_reason_not_utf8", "/api/dead", "reason=%ff", "reason"},
    {"bad_dead_one_missing", "/api/dead/one", "", "id"},
    {"bad_dead_one_id", "/api/dead/one", "id=1-2-3", "id"},
    {"bad_retry_id", "/api/dead/retry", "id=%3Cscript%3E", "id"},
    {"bad_drop_missing", "/api/dead/drop", "", "id"},
    {"bad_retry_reason_missing", "/api/dead/retry-reason", "", "reason"},
    {"bad_retry_reason_empty", "/api/dead/retry-reason", "reason=", "reason"},
    {"bad_user_missing", "/api/user", "", "user"},
    {"bad_user_space", "/api/user", "user=a+b", "user"},
    {"bad_user_too_long", "/api/user",
     "user=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "user"},
    {"bad_history_limit", "/api/history", "user=u&limit=0", "limit"},
    {"bad_history_before", "/api/history", "user=u&before=0", "before"},
    {"bad_history_user", "/api/history", "user=%7F", "user"},
    {"bad_events_user_missing", "/api/events", "", "user"},
    {"bad_events_limit", "/api/events", "user=u&limit=101", "limit"},
    {"bad_events_before", "/api/events", "user=u&before=x", "before"},
    {"bad_job_missing", "/api/job", "", "id"},
    {"bad_plan_monthly_missing", "/api/plan", "plan=pro", "monthly"},
    {"bad_plan_monthly_text", "/api/plan", "plan=pro&monthly=lots", "monthly"},
    {"bad_plan_missing", "/api/plan", "monthly=5", "plan"},
    {"bad_plan_low_balance_zero", "/api/plan", "plan=pro&monthly=5&low_balance=0", "low_balance"},
    {"bad_pack_credits_fraction", "/api/pack", "pack=p&credits=1.5", "credits"},
    {"bad_pack_days_text", "/api/pack", "pack=p&credits=5&valid_days=x", "valid_days"},
    {"bad_pack_id_too_long", "/api/pack",
     "credits=1&pack=ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp", "pack"},
};

static void run_bad_case(void **state)
{
    const struct bad_case *c = *state;
    struct config config = test_config();
    struct console_api api = {.config = &config, .actions = true, .listen = "127.0.0.1:9465"};
    struct console_outcome out;
    call(&api, c->path, c->query, &out);
    if (out.status != 400)
        fail_msg("status %d: %s", out.status, out.body);
    if (!strstr(out.error, c->says))
        fail_msg("the error does not name %s: %s", c->says, out.error);
    assert_non_null(strstr(out.body, "{\"error\":\""));
    /* Refused before anything was connected. */
    assert_null(api.redis);
    assert_null(api.pg);
    free(out.body);
}

#define CASES_MAX (ARRAY_LEN(fixed) + ARRAY_LEN(bad_cases))

int main(int argc, char **argv)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_config_and_workers_need_no_server),
        cmocka_unit_test(test_boot_document_is_script_safe),
    };
    struct CMUnitTest tests[CASES_MAX];
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++)
        tests[n++] =
            (struct CMUnitTest){bad_cases[i].name, run_bad_case, NULL, NULL, (void *)&bad_cases[i]};
    return case_filter_run("console_api", tests, n, NULL, NULL, argc, argv);
}
