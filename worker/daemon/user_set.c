/*
 * user_set.c -- open addressing with linear probing over copied strings
 * (user_set.h). Never deletes one entry, so no tombstones: only clears.
 */
#include "worker/daemon/user_set.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

struct user_set {
    size_t slots; /* a power of two */
    size_t count;
    char **users; /* slots entries, NULL when free */
};

/* FNV-1a, 64 bits: user IDs are short and not chosen against the set. */
static uint64_t hash_user(const char *user)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (const unsigned char *p = (const unsigned char *)user; *p; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return h;
}

/* The slot holding `user`, or the free slot where it would go. */
static size_t find_slot(const struct user_set *set, const char *user)
{
    size_t mask = set->slots - 1;
    size_t i = (size_t)hash_user(user) & mask;
    while (set->users[i] != NULL && strcmp(set->users[i], user) != 0)
        i = (i + 1) & mask;
    return i;
}

struct user_set *user_set_new(size_t slots)
{
    ASSERT(slots >= 2 && (slots & (slots - 1)) == 0);
    struct user_set *set = malloc(sizeof *set);
    ASSERT(set != NULL);
    *set = (struct user_set){.slots = slots, .users = calloc(slots, sizeof(char *))};
    ASSERT(set->users != NULL);
    return set;
}

void user_set_clear(struct user_set *set)
{
    for (size_t i = 0; i < set->slots; i++) {
        free(set->users[i]);
        set->users[i] = NULL;
    }
    set->count = 0;
}

void user_set_free(struct user_set *set)
{
    if (!set)
        return;
    user_set_clear(set);
    free(set->users);
    free(set);
}

bool user_set_has(const struct user_set *set, const char *user)
{
    ASSERT(set && user);
    return set->users[find_slot(set, user)] != NULL;
}

void user_set_add(struct user_set *set, const char *user)
{
    ASSERT(set && user);
    size_t i = find_slot(set, user);
    if (set->users[i] != NULL)
        return;
    /* Half full keeps the probes short and a free slot always there. */
    if (set->count + 1 > set->slots / 2) {
        user_set_clear(set);
        i = find_slot(set, user);
    }
    set->users[i] = strdup(user);
    ASSERT(set->users[i] != NULL);
    set->count++;
}

size_t user_set_count(const struct user_set *set)
{
    return set->count;
}
