/*
 * test_user_set.c -- worker/daemon/user_set.c: membership of copies, no
 * false members among colliding and near-equal IDs, and forgetting
 * everything when half full instead of growing.
 */
#include "case_filter.h"

#include <stdio.h>
#include <string.h>

#include "worker/daemon/user_set.h"

static void holds_copies_of_what_was_added(void **state)
{
    (void)state;
    struct user_set *set = user_set_new(16);
    char user[16];
    strcpy(user, "alice");
    user_set_add(set, user);
    strcpy(user, "bob"); /* the set kept its own copy */
    assert_true(user_set_has(set, "alice"));
    assert_false(user_set_has(set, "bob"));
    assert_false(user_set_has(set, "alic"));
    assert_false(user_set_has(set, "alicee"));
    assert_false(user_set_has(set, ""));
    user_set_add(set, "alice");
    assert_int_equal(user_set_count(set), 1);
    user_set_free(set);
}

/* Every slot probed: 8 users in 16 slots, each found, none of 1000 others. */
static void finds_every_member_and_no_other(void **state)
{
    (void)state;
    struct user_set *set = user_set_new(16);
    char user[32];
    for (int i = 0; i < 8; i++) {
        snprintf(user, sizeof user, "u%d", i);
        user_set_add(set, user);
    }
    assert_int_equal(user_set_count(set), 8);
    for (int i = 0; i < 8; i++) {
        snprintf(user, sizeof user, "u%d", i);
        assert_true(user_set_has(set, user));
    }
    for (int i = 8; i < 1008; i++) {
        snprintf(user, sizeof user, "u%d", i);
        assert_false(user_set_has(set, user));
    }
    user_set_free(set);
}

static void forgets_everything_when_half_full(void **state)
{
    (void)state;
    struct user_set *set = user_set_new(8);
    user_set_add(set, "a");
    user_set_add(set, "b");
    user_set_add(set, "c");
    user_set_add(set, "d");
    assert_int_equal(user_set_count(set), 4);
    user_set_add(set, "e"); /* a fifth in 8 slots: the others go first */
    assert_int_equal(user_set_count(set), 1);
    assert_true(user_set_has(set, "e"));
    assert_false(user_set_has(set, "a"));
    assert_false(user_set_has(set, "d"));
    user_set_clear(set);
    assert_int_equal(user_set_count(set), 0);
    assert_false(user_set_has(set, "e"));
    user_set_free(set);
}

int main(int argc, char **argv)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(holds_copies_of_what_was_added),
        cmocka_unit_test(finds_every_member_and_no_other),
        cmocka_unit_test(forgets_everything_when_half_full),
    };
    return case_filter_run("user_set", tests, sizeof tests / sizeof tests[0], NULL, NULL, argc,
                           argv);
}
