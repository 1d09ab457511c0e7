/*
 * sweep.h -- the sweep's work on one account (contract 9.7). Pure.
 *
 * Releases the account's overdue holds (status expired, under the hold's
 * ID), writes off the lots past their expiry with credits left (each under
 * a job of its own, expire:{lot_id}), and announces the lots with credits
 * left that expire within the notice days, once each. Every change makes
 * its events (core/event.h) as a job's change does. The batch runs it on
 * each account of a sweep batch (batch_init_sweep()); the store locks and
 * loads those accounts as for jobs, so the sweep and the batches follow one
 * lock order and one set of ledger rules.
 */
#ifndef CREDITS_CORE_SWEEP_H
#define CREDITS_CORE_SWEEP_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "core/ledger.h"

/* "expire:" and a lot ID. */
#define SWEEP_EXPIRE_PREFIX "expire:"
#define SWEEP_EXPIRE_ID_BYTES_MAX 32

/* A lot the sweep wrote off: the job it was decided under, with the
 * credits.jobs row's result and request (the caller frees them with
 * sweep_expiry_free()). */
struct sweep_expiry {
    char id[SWEEP_EXPIRE_ID_BYTES_MAX]; /* expire:{lot_id} */
    size_t account;                     /* the account's index in its batch */
    int64_t lot_id;
    int64_t credits;
    msgpack_sbuffer result;
    msgpack_sbuffer request;
};

struct sweep_input {
    int64_t now_us;
    int64_t notice_until_us; /* announce lots expiring at or before this */
    size_t account_index;    /* the entries' job_index */
    struct event_threshold threshold;
};

/* The sweep IDs of the expiries it writes: expire:{lot_id}. */
void sweep_expire_id(int64_t lot_id, char out[SWEEP_EXPIRE_ID_BYTES_MAX]);

/* How many lots of the account a sweep at `now_us` writes off at most: room
 * for its expiries (their IDs must not move while entries point at them). */
size_t sweep_expiries_max(const struct account *account, int64_t now_us);

/* Sweeps one account (see above). Appends entries, events, and one
 * expiry per lot written off to expiries[*expiry_count...] (room for
 * sweep_expiries_max()). */
void sweep_account(struct account *account, const struct sweep_input *input,
                   struct entry_list *entries, struct event_list *events,
                   struct sweep_expiry *expiries, size_t *expiry_count);

void sweep_expiry_free(struct sweep_expiry *expiry);

#endif
