/*
 * test_opt.c -- creditsctl's argument grammar (worker/ctl/opt.c): values
 * after the option or after '=', flags, "--", --help and -h, positionals,
 * unknown, repeated and missing options, and whole numbers within bounds,
 * each usage error with the exact message creditsctl prints.
 */
#include "case_filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/ctl/opt.h"

#define ARGS_MAX 8
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The message of `error`, as creditsctl prints it after its prefix. */
static void assert_message(const struct opt_error *error, const char *message)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    opt_error_print(error, out);
    assert_int_equal(fclose(out), 0);
    assert_string_equal(text, message);
    free(text);
}

/* ---------------------------------------------------------------------------
 * opt_parse() over one option table: --user VALUE (required), --limit
 * VALUE, the flags --json and --force; 0, 1 or 2 positionals ID and MORE.
 * ------------------------------------------------------------------------- */

struct parse_case {
    const char *name;
    const char *args[ARGS_MAX + 1]; /* NULL-terminated */
    int wanted;                     /* positionals the command takes */
    enum opt_status status;
    const char *message; /* OPT_BAD: what is printed */
    const char *user;    /* values after the call: NULL when unset */
    const char *limit;
    bool json;
    const char *positional[2];
};

/* clang-format off */
#define OK(name, wanted, user, limit, json, p0, p1, ...) \
    {name, {__VA_ARGS__, NULL}, wanted, OPT_PARSED, NULL, user, limit, json, {p0, p1}}
#define HELP(name, wanted, ...) \
    {name, {__VA_ARGS__, NULL}, wanted, OPT_HELP, NULL, NULL, NULL, false, {NULL, NULL}}
#define BAD(name, wanted, message, user, ...) \
    {name, {__VA_ARGS__, NULL}, wanted, OPT_BAD, message, user, NULL, false, {NULL, NULL}}
/* A usage error after some values were read: they stay set. */
#define BAD_AFTER(name, wanted, message, user, json, p0, ...) \
    {name, {__VA_ARGS__, NULL}, wanted, OPT_BAD, message, user, NULL, json, {p0, NULL}}

static const struct parse_case parse_cases[] = {
    OK("parse_value_after_the_option", 0, "alice", NULL, false, NULL, NULL, "--user", "alice"),
    OK("parse_value_after_equals", 0, "alice", NULL, false, NULL, NULL, "--user=alice"),
    OK("parse_empty_value_after_equals", 0, "", NULL, false, NULL, NULL, "--user="),
    OK("parse_value_with_an_equals_sign", 0, "a=b", NULL, false, NULL, NULL, "--user=a=b"),
    OK("parse_value_may_look_like_an_option", 0, "--json", NULL, false, NULL, NULL,
       "--user", "--json"),
    OK("parse_value_may_be_help", 0, "--help", NULL, false, NULL, NULL, "--user", "--help"),
    OK("parse_flag_and_values", 0, "a", "5", true, NULL, NULL,
       "--json", "--limit", "5", "--user", "a"),
    OK("parse_options_between_positionals", 2, "a", NULL, false, "x", "y",
       "x", "--user", "a", "y"),
    OK("parse_double_dash_ends_the_options", 1, "a", NULL, false, "--json", NULL,
       "--user", "a", "--", "--json"),
    OK("parse_help_after_double_dash_is_a_positional", 1, "a", NULL, false, "--help", NULL,
       "--user", "a", "--", "--help"),
    OK("parse_second_double_dash_is_a_positional", 1, "a", NULL, false, "--", NULL,
       "--user", "a", "--", "--"),
    OK("parse_lone_dash_is_a_positional", 1, "a", NULL, false, "-", NULL, "--user", "a", "-"),
    OK("parse_empty_argument_is_a_positional", 1, "a", NULL, false, "", NULL, "--user", "a", ""),

    HELP("parse_help_after_other_options", 0, "--user", "a", "--help"),
    HELP("parse_short_help", 0, "-h"),
    HELP("parse_help_before_a_usage_error", 0, "--help", "--nope"),
    HELP("parse_help_even_with_positionals_missing", 2, "x", "--help"),

    BAD("parse_no_arguments_misses_the_required_option", 0, "missing --user", NULL, NULL),
    BAD("parse_unknown_option", 0, "unknown option '--nope'", NULL, "--nope"),
    BAD("parse_unknown_option_with_a_value", 0, "unknown option '--nope'", NULL, "--nope=3"),
    BAD("parse_unknown_short_option", 0, "unknown option '-x'", NULL, "-x"),
    BAD("parse_single_dash_long_name_is_unknown", 0, "unknown option '-user'", NULL, "-user", "a"),
    BAD("parse_prefix_of_an_option_is_unknown", 0, "unknown option '--us'", NULL, "--us", "a"),
    BAD("parse_longer_name_is_unknown", 0, "unknown option '--users'", NULL, "--users=a"),
    BAD("parse_empty_name_is_unknown", 0, "unknown option '--'", NULL, "--=x"),
    BAD("parse_three_dashes_are_unknown", 0, "unknown option '---user'", NULL, "---user", "a"),
    BAD("parse_option_names_are_case_sensitive", 0, "unknown option '--USER'", NULL, "--USER", "a"),
    BAD("parse_help_after_a_usage_error_is_too_late", 0, "unknown option '--nope'", NULL,
        "--nope", "--help"),
    BAD("parse_value_missing_at_the_end", 0, "--user needs a value", NULL, "--user"),
    BAD("parse_flag_with_a_value", 0, "--json takes no value", "a", "--user", "a", "--json=1"),
    BAD("parse_flag_with_an_empty_value", 0, "--json takes no value", "a", "--user", "a",
        "--json="),
    BAD("parse_option_given_twice", 0, "--user given twice", "a", "--user", "a", "--user", "b"),
    BAD("parse_option_given_twice_in_two_forms", 0, "--user given twice", "a", "--user=a",
        "--user", "b"),
    BAD("parse_flag_given_twice", 0, "--force given twice", "a", "--user", "a", "--force",
        "--force"),
    BAD("parse_positional_too_many", 0, "unexpected argument 'x'", "a", "--user", "a", "x"),
    BAD_AFTER("parse_positional_too_many_after_double_dash", 1, "unexpected argument 'y'", "a",
              false, "x", "--user", "a", "--", "x", "y"),
    BAD_AFTER("parse_positional_missing", 2, "missing MORE", "a", false, "x", "--user", "a", "x"),
    BAD_AFTER("parse_positional_missing_is_said_before_the_option", 1, "missing ID", NULL, true,
              NULL, "--json"),
};
/* clang-format on */

static void run_parse_case(void **state)
{
    const struct parse_case *c = *state;
    const char *user = NULL, *limit = NULL;
    bool json = false, force = false;
    const struct opt opts[] = {
        {"user", &user, NULL, true},  {"limit", &limit, NULL, false},
        {"json", NULL, &json, false}, {"force", NULL, &force, false},
        {NULL, NULL, NULL, false},
    };
    static const char *const none[] = {NULL}, *const one[] = {"ID", NULL},
                             *const two[] = {"ID", "MORE", NULL};
    const char *const *names = c->wanted == 0 ? none : c->wanted == 1 ? one : two;
    char *argv[ARGS_MAX + 1] = {NULL};
    int argc = 0;
    while (c->args[argc] != NULL) {
        assert_true(argc < ARGS_MAX);
        argv[argc] = (char *)c->args[argc];
        argc++;
    }
    const char *positional[2] = {NULL, NULL};
    struct opt_error error;
    memset(&error, 0xA5, sizeof error);
    enum opt_status status = opt_parse(argc, argv, opts, names, positional, &error);
    assert_int_equal(status, c->status);
    if (status == OPT_BAD)
        assert_message(&error, c->message);
    if (status == OPT_PARSED)
        assert_int_equal(error.problem, OPT_NONE);
    if (status == OPT_HELP)
        return; /* the command prints its help; what was read before does not matter */
    if (c->user)
        assert_string_equal(user, c->user);
    else
        assert_null(user);
    if (c->limit)
        assert_string_equal(limit, c->limit);
    else
        assert_null(limit);
    assert_int_equal(json, c->json);
    for (int p = 0; p < 2; p++) {
        if (c->positional[p])
            assert_string_equal(positional[p], c->positional[p]);
        else
            assert_null(positional[p]);
    }
}

/* As many options as a command may have, every one given. */
static void test_parse_the_most_options_a_command_may_have(void **state)
{
    (void)state;
    static const char *const option_names[OPT_COUNT_MAX] = {"a", "b", "c", "d", "e", "f",
                                                            "g", "h", "i", "j", "k", "l"};
    const char *values[OPT_COUNT_MAX] = {NULL};
    struct opt opts[OPT_COUNT_MAX + 1];
    char texts[OPT_COUNT_MAX][8];
    char *argv[OPT_COUNT_MAX];
    for (int k = 0; k < OPT_COUNT_MAX; k++) {
        opts[k] = (struct opt){option_names[k], &values[k], NULL, true};
        snprintf(texts[k], sizeof texts[k], "--%s=%d", option_names[k], k);
        argv[k] = texts[k];
    }
    opts[OPT_COUNT_MAX] = (struct opt){NULL, NULL, NULL, false};
    const char *const names[] = {NULL};
    struct opt_error error;
    assert_int_equal(opt_parse(OPT_COUNT_MAX, argv, opts, names, NULL, &error), OPT_PARSED);
    for (int k = 0; k < OPT_COUNT_MAX; k++) {
        char want[4];
        snprintf(want, sizeof want, "%d", k);
        assert_string_equal(values[k], want);
    }
}

/* ---------------------------------------------------------------------------
 * opt_is_help()
 * ------------------------------------------------------------------------- */

static void test_help_is_exactly_double_dash_help_or_dash_h(void **state)
{
    (void)state;
    assert_true(opt_is_help("--help"));
    assert_true(opt_is_help("-h"));
    static const char *const not_help[] = {"--HELP", "-help", "--help=1", "help",
                                           "-hh",    "--h",   "",         "- h"};
    for (size_t i = 0; i < ARRAY_LEN(not_help); i++)
        assert_false(opt_is_help(not_help[i]));
}

/* ---------------------------------------------------------------------------
 * opt_int64()
 * ------------------------------------------------------------------------- */

struct int_case {
    const char *name;
    const char *text;
    int64_t min;
    int64_t max;
    const char *message; /* NULL: accepted */
    int64_t value;
};

/* clang-format off */
#define INT_OK(name, text, min, max, value) {name, text, min, max, NULL, value}
#define INT_BAD(name, text, min, max, message) {name, text, min, max, message, 0}

static const struct int_case int_cases[] = {
    INT_OK("int_zero", "0", 0, 10, 0),
    INT_OK("int_negative", "-5", INT64_MIN, INT64_MAX, -5),
    INT_OK("int_minus_zero", "-0", INT64_MIN, INT64_MAX, 0),
    INT_OK("int_leading_zeros", "007", INT64_MIN, INT64_MAX, 7),
    INT_OK("int_largest", "9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX),
    INT_OK("int_smallest", "-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN),
    INT_OK("int_at_the_lower_bound", "1", 1, 100, 1),
    INT_OK("int_at_the_upper_bound", "100", 1, 100, 100),
    INT_BAD("int_past_the_largest", "9223372036854775808", INT64_MIN, INT64_MAX,
            "--n must be a whole number (got \"9223372036854775808\")"),
    INT_BAD("int_past_the_smallest", "-9223372036854775809", INT64_MIN, INT64_MAX,
            "--n must be a whole number (got \"-9223372036854775809\")"),
    INT_BAD("int_below_the_lower_bound", "0", 1, 100,
            "--n must be a whole number from 1 to 100 (got \"0\")"),
    INT_BAD("int_above_the_upper_bound", "101", 1, 100,
            "--n must be a whole number from 1 to 100 (got \"101\")"),
    INT_BAD("int_one_bound_is_named_with_both", "6", INT64_MIN, 5,
            "--n must be a whole number from -9223372036854775808 to 5 (got \"6\")"),
    INT_BAD("int_plus_sign", "+5", INT64_MIN, INT64_MAX, "--n must be a whole number (got \"+5\")"),
    INT_BAD("int_leading_space", " 5", INT64_MIN, INT64_MAX, "--n must be a whole number (got \" 5\")"),
    INT_BAD("int_trailing_space", "5 ", INT64_MIN, INT64_MAX, "--n must be a whole number (got \"5 \")"),
    INT_BAD("int_empty", "", INT64_MIN, INT64_MAX, "--n must be a whole number (got \"\")"),
    INT_BAD("int_minus_alone", "-", INT64_MIN, INT64_MAX, "--n must be a whole number (got \"-\")"),
    INT_BAD("int_double_minus", "--5", INT64_MIN, INT64_MAX, "--n must be a whole number (got \"--5\")"),
    INT_BAD("int_hexadecimal", "0x10", INT64_MIN, INT64_MAX, "--n must be a whole number (got \"0x10\")"),
    INT_BAD("int_fraction", "1.5", INT64_MIN, INT64_MAX, "--n must be a whole number (got \"1.5\")"),
    INT_BAD("int_exponent", "1e3", INT64_MIN, INT64_MAX, "--n must be a whole number (got \"1e3\")"),
    INT_BAD("int_word", "ten", INT64_MIN, INT64_MAX, "--n must be a whole number (got \"ten\")"),
};
/* clang-format on */

static void run_int_case(void **state)
{
    const struct int_case *c = *state;
    int64_t value = 42;
    struct opt_error error;
    bool ok = opt_int64("--n", c->text, c->min, c->max, &value, &error);
    assert_int_equal(ok, c->message == NULL);
    if (ok) {
        assert_int_equal(value, c->value);
        return;
    }
    assert_int_equal(value, 42); /* untouched */
    assert_int_equal(error.problem, OPT_NOT_WHOLE_NUMBER);
    assert_message(&error, c->message);
}

/* ---------------------------------------------------------------------------
 * Every table row is a case of its own.
 * ------------------------------------------------------------------------- */

#define CASES_MAX (ARRAY_LEN(parse_cases) + ARRAY_LEN(int_cases) + 2)

int main(int argc, char **argv)
{
    struct CMUnitTest tests[CASES_MAX];
    size_t n = 0;
    tests[n++] =
        (struct CMUnitTest)cmocka_unit_test(test_parse_the_most_options_a_command_may_have);
    tests[n++] =
        (struct CMUnitTest)cmocka_unit_test(test_help_is_exactly_double_dash_help_or_dash_h);
    for (size_t i = 0; i < ARRAY_LEN(parse_cases); i++)
        tests[n++] = (struct CMUnitTest){parse_cases[i].name, run_parse_case, NULL, NULL,
                                         (void *)&parse_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(int_cases); i++)
        tests[n++] =
            (struct CMUnitTest){int_cases[i].name, run_int_case, NULL, NULL, (void *)&int_cases[i]};
    return case_filter_run("opt", tests, n, NULL, NULL, argc, argv);
}
