/*
 * user_set.h -- a bounded set of user IDs: the users whose account row the
 * store has seen committed, so that a batch of theirs skips the insert of
 * missing accounts (store.c). A cache: forgetting is always safe, and the
 * set forgets everything when it is half full rather than grow.
 */
#ifndef CREDITS_WORKER_DAEMON_USER_SET_H
#define CREDITS_WORKER_DAEMON_USER_SET_H

#include <stdbool.h>
#include <stddef.h>

struct user_set;

/* Room for `slots` users before it forgets them all (a power of two, at
 * least 2); holds slots / 2 at most. */
struct user_set *user_set_new(size_t slots);
void user_set_free(struct user_set *set);

bool user_set_has(const struct user_set *set, const char *user);
/* Adds a copy of `user`; first forgets every user when half full. */
void user_set_add(struct user_set *set, const char *user);
void user_set_clear(struct user_set *set);
size_t user_set_count(const struct user_set *set);

#endif
