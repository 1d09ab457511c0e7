/*
 * sweep.c -- the sweep's work on one account (sweep.h).
 */
#include "core/sweep.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/assert.h"
#include "core/codec.h"

void sweep_expire_id(int64_t lot_id, char out[SWEEP_EXPIRE_ID_BYTES_MAX])
{
    ASSERT(lot_id > 0);
    int n = snprintf(out, SWEEP_EXPIRE_ID_BYTES_MAX, SWEEP_EXPIRE_PREFIX "%" PRId64, lot_id);
    ASSERT(n > 0 && n < SWEEP_EXPIRE_ID_BYTES_MAX);
}

static bool is_due(const struct lot *lot, int64_t now_us)
{
    return lot->remaining > 0 && ledger_lot_is_expired(lot, now_us);
}

size_t sweep_expiries_max(const struct account *account, int64_t now_us)
{
    size_t n = 0;
    for (size_t i = 0; i < account->lot_count; i++)
        n += is_due(&account->lots[i], now_us);
    return n;
}

/* One change of the account: its entries from `first` on, measured from
 * `before` credits, under `job`. */
static void change_events(const struct account *account, const struct sweep_input *in,
                          const struct entry_list *entries, size_t first, int64_t before,
                          const char *job, struct event_list *events)
{
    struct balance balance;
    ledger_balance(account, in->now_us, &balance);
    event_list_add_change(events, entries, first, account->user, job, in->now_us / 1000, &balance,
                          before, ledger_lots_remaining(account), in->threshold);
}

static void release_overdue_holds(struct account *account, const struct sweep_input *in,
                                  struct entry_list *entries, struct event_list *events)
{
    for (size_t i = 0; i < account->hold_count; i++) {
        struct hold *hold = account->holds[i];
        if (!ledger_hold_is_overdue(hold, in->now_us))
            continue;
        int64_t before = ledger_lots_remaining(account);
        size_t first = entries->count;
        ledger_expire_hold(account, in->now_us, hold, in->account_index, entries);
        change_events(account, in, entries, first, before, hold->id, events);
    }
}

static void write_off(struct account *account, const struct sweep_input *in, struct lot *lot,
                      struct sweep_expiry *expiry, struct entry_list *entries,
                      struct event_list *events)
{
    memset(expiry, 0, sizeof *expiry);
    sweep_expire_id(lot->lot_id, expiry->id);
    expiry->account = in->account_index;
    expiry->lot_id = lot->lot_id;
    expiry->credits = lot->remaining;
    int64_t before = ledger_lots_remaining(account);
    size_t first = entries->count;
    ledger_expire_lot(lot, in->account_index, expiry->id, entries);
    change_events(account, in, entries, first, before, expiry->id, events);

    struct balance balance;
    ledger_balance(account, in->now_us, &balance);
    msgpack_sbuffer_init(&expiry->result);
    msgpack_sbuffer_init(&expiry->request);
    int rc = codec_encode_expiry(expiry->id, account->user, expiry->lot_id, expiry->credits,
                                 &balance, in->now_us / 1000, &expiry->result, &expiry->request);
    ASSERT(rc == 0);
}

/* credits_expiring, once per lot (its expiry_noticed_at): a usable lot with
 * credits left that expires by notice_until_us. The event names the job
 * its expiry will be written under by the sweep, expire:{lot_id}. */
static void announce(struct account *account, const struct sweep_input *in,
                     struct event_list *events)
{
    struct balance balance;
    ledger_balance(account, in->now_us, &balance);
    for (size_t i = 0; i < account->lot_count; i++) {
        struct lot *lot = &account->lots[i];
        if (lot->noticed || lot->remaining == 0 || lot->revoked ||
            lot->expires_at_us == LEDGER_NO_EXPIRY || lot->expires_at_us <= in->now_us ||
            lot->expires_at_us > in->notice_until_us)
            continue;
        char job[SWEEP_EXPIRE_ID_BYTES_MAX];
        sweep_expire_id(lot->lot_id, job);
        struct event *ev = event_list_add(events, EVENT_CREDITS_EXPIRING, account->user, job,
                                          in->now_us / 1000, &balance);
        ev->lot = lot->lot_id;
        ev->credits = lot->remaining;
        ev->expires_at_ms = lot->expires_at_us / 1000;
        lot->noticed = true;
        lot->noticed_now = true;
    }
}

void sweep_account(struct account *account, const struct sweep_input *input,
                   struct entry_list *entries, struct event_list *events,
                   struct sweep_expiry *expiries, size_t *expiry_count)
{
    ASSERT(account && input && entries && events && expiry_count);
    ASSERT(input->notice_until_us >= input->now_us);
    size_t room = sweep_expiries_max(account, input->now_us);
    /* Holds first, as a job's transaction does: a share that goes back to
     * a lot past its expiry leaves it again with the release. */
    release_overdue_holds(account, input, entries, events);
    ASSERT(sweep_expiries_max(account, input->now_us) <= room);
    for (size_t i = 0; i < account->lot_count; i++) {
        struct lot *lot = &account->lots[i];
        if (is_due(lot, input->now_us))
            write_off(account, input, lot, &expiries[(*expiry_count)++], entries, events);
    }
    announce(account, input, events);
}

void sweep_expiry_free(struct sweep_expiry *expiry)
{
    msgpack_sbuffer_destroy(&expiry->result);
    msgpack_sbuffer_destroy(&expiry->request);
}
