/*
 * case_filter.h -- how every cmocka test binary picks the cases it runs: the
 * first argument, or else the environment variable CMOCKA_TEST_FILTER, is a
 * shell pattern (fnmatch(3): '*', '?', [...]) over the case names;
 * `--list` prints the names instead.
 *
 * Owns the choosing of cases only; what a case checks is its file's. A
 * pattern that picks no case fails the run, so that a typo is not a pass
 * (cmocka_set_test_filter() would run nothing and report success).
 */
#ifndef CREDITS_TESTS_CASE_FILTER_H
#define CREDITS_TESTS_CASE_FILTER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CASE_FILTER_ENV "CMOCKA_TEST_FILTER"
#define CASE_FILTER_LIST "--list"

/*
 * Runs the cases of tests[0..count) that the filter picks, as cmocka's group
 * `group` with its fixtures (NULL: none), and returns how many failed (the
 * exit status, as with cmocka_run_group_tests()); 1 after a message when the
 * pattern picks none, 2 after a usage message.
 */
static inline int case_filter_run(const char *group, const struct CMUnitTest *tests, size_t count,
                                  CMFixtureFunction setup, CMFixtureFunction teardown, int argc,
                                  char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "usage: %s [%s | PATTERN]  (or %s=PATTERN)\n", argv[0], CASE_FILTER_LIST,
                CASE_FILTER_ENV);
        return 2;
    }
    const char *pattern = argc == 2 ? argv[1] : getenv(CASE_FILTER_ENV);
    if (pattern != NULL && strcmp(pattern, CASE_FILTER_LIST) == 0) {
        for (size_t i = 0; i < count; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    if (pattern == NULL || pattern[0] == '\0')
        return _cmocka_run_group_tests(group, tests, count, setup, teardown);
    struct CMUnitTest *chosen = calloc(count + 1, sizeof *chosen);
    if (chosen == NULL) {
        fprintf(stderr, "%s: out of memory\n", group);
        return 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (fnmatch(pattern, tests[i].name, 0) == 0)
            chosen[n++] = tests[i];
    int failed = 1;
    if (n == 0)
        fprintf(stderr, "%s: no case matches '%s' (%s prints them)\n", group, pattern,
                CASE_FILTER_LIST);
    else
        failed = _cmocka_run_group_tests(group, chosen, n, setup, teardown);
    free(chosen);
    return failed;
}

#endif
