/*
 * rows.c -- reading a batch's loaded rows defensively (rows.h).
 */
#include "worker/daemon/rows.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

/* The reading of one result: where we are, for the message. */
struct reader {
    const PGresult *r;
    const char *what; /* "credits.lots" */
    int row;
    char *errstr;
    size_t errstr_len;
};

static bool refuse(struct reader *rd, int col, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static bool refuse(struct reader *rd, int col, const char *format, ...)
{
    char why[200];
    va_list args;
    va_start(args, format);
    vsnprintf(why, sizeof why, format, args);
    va_end(args);
    const char *name = col >= 0 && col < PQnfields(rd->r) ? PQfname(rd->r, col) : "?";
    snprintf(rd->errstr, rd->errstr_len,
             "a row of %s this worker cannot read (row %d, column %s): %s", rd->what, rd->row + 1,
             name ? name : "?", why);
    return false;
}

static bool columns(struct reader *rd, int want)
{
    if (PQnfields(rd->r) != want)
        return refuse(rd, -1, "%d columns where %d were expected", PQnfields(rd->r), want);
    return true;
}

/* A whole number in text format within [min, max]. */
static bool cell_int(struct reader *rd, int col, int64_t min, int64_t max, int64_t *out)
{
    if (PQgetisnull(rd->r, rd->row, col))
        return refuse(rd, col, "NULL where a number was expected");
    const char *text = PQgetvalue(rd->r, rd->row, col);
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return refuse(rd, col, "'%.40s' is not a whole number", text);
    if (v < min || v > max)
        return refuse(rd, col, "%lld is outside %" PRId64 "..%" PRId64, v, min, max);
    *out = v;
    return true;
}

/* A NUL-free string of at most size - 1 bytes, copied into out. */
static bool cell_str(struct reader *rd, int col, char *out, size_t size)
{
    ASSERT(size > 0);
    if (PQgetisnull(rd->r, rd->row, col))
        return refuse(rd, col, "NULL where text was expected");
    int len = PQgetlength(rd->r, rd->row, col);
    const char *bytes = PQgetvalue(rd->r, rd->row, col);
    if (len < 0 || (size_t)len >= size)
        return refuse(rd, col, "%d bytes, more than the %zu this column holds", len, size - 1);
    if (memchr(bytes, '\0', (size_t)len) != NULL)
        return refuse(rd, col, "a NUL byte in text");
    memcpy(out, bytes, (size_t)len);
    out[len] = '\0';
    return true;
}

/* A boolean in text format: "t" or "f". */
static bool cell_bool(struct reader *rd, int col, bool *out)
{
    if (PQgetisnull(rd->r, rd->row, col))
        return refuse(rd, col, "NULL where true or false was expected");
    const char *text = PQgetvalue(rd->r, rd->row, col);
    if (strcmp(text, "t") != 0 && strcmp(text, "f") != 0)
        return refuse(rd, col, "'%.10s' is not a boolean", text);
    *out = text[0] == 't';
    return true;
}

/* The catalog's CHECK constraints bound these (schemas/001_ledger.sql,
 * 008_sweep_events.sql). */
#define ROWS_CREDITS_MAX INT64_C(10000000000000)
#define ROWS_VALID_DAYS_MAX 36500

static bool read_accounts(struct reader *rd, struct batch *batch)
{
    if (!columns(rd, 4))
        return false;
    for (rd->row = 0; rd->row < PQntuples(rd->r); rd->row++) {
        char user[JOB_USER_BYTES_MAX + 1], plan[JOB_PLAN_BYTES_MAX + 1];
        int64_t low_balance, plan_low_balance;
        if (!cell_str(rd, 0, user, sizeof user) ||
            !cell_int(rd, 2, 0, ROWS_CREDITS_MAX, &low_balance) ||
            !cell_int(rd, 3, 0, ROWS_CREDITS_MAX, &plan_low_balance))
            return false;
        bool known = batch_set_account_thresholds(batch, user, low_balance, plan_low_balance);
        ASSERT(known); /* the query asked for the batch's users only */
        if (PQgetisnull(rd->r, rd->row, 1))
            continue;
        if (!cell_str(rd, 1, plan, sizeof plan))
            return false;
        known = batch_set_account_plan(batch, user, plan);
        ASSERT(known);
    }
    return true;
}

static bool read_now(struct reader *rd, struct batch *batch)
{
    if (!columns(rd, 1))
        return false;
    if (PQntuples(rd->r) != 1)
        return refuse(rd, 0, "%d rows where one was expected", PQntuples(rd->r));
    rd->row = 0;
    return cell_int(rd, 0, 1, INT64_MAX, &batch->now_us);
}

/* Binary format: job_id and the bytea columns as raw bytes. */
static bool read_stored(struct reader *rd, struct batch *batch)
{
    if (!columns(rd, 3))
        return false;
    for (rd->row = 0; rd->row < PQntuples(rd->r); rd->row++) {
        char id[JOB_ID_BYTES_MAX + 1];
        if (!cell_str(rd, 0, id, sizeof id))
            return false;
        if (PQgetisnull(rd->r, rd->row, 1) || PQgetisnull(rd->r, rd->row, 2))
            return refuse(rd, 1, "a decided job without its request or result");
        bool known = batch_set_stored(
            batch, id, PQgetvalue(rd->r, rd->row, 1), (size_t)PQgetlength(rd->r, rd->row, 1),
            PQgetvalue(rd->r, rd->row, 2), (size_t)PQgetlength(rd->r, rd->row, 2));
        ASSERT(known); /* the query asked for the batch's job IDs only */
    }
    return true;
}

#define LOT_COLUMNS 10

/* The lot columns from column `at` on. */
static bool cell_lot(struct reader *rd, int at, char *user, size_t user_size, struct lot *lot)
{
    char kind[16];
    memset(lot, 0, sizeof *lot);
    if (!cell_str(rd, at, user, user_size) || !cell_int(rd, at + 1, 1, INT64_MAX, &lot->lot_id) ||
        !cell_str(rd, at + 2, kind, sizeof kind))
        return false;
    if (!ledger_lot_kind_parse(kind, &lot->kind))
        return refuse(rd, at + 2, "lot kind '%s' is not one this worker knows (a newer schema?)",
                      kind);
    if (!cell_int(rd, at + 3, 1, INT64_MAX, &lot->granted) ||
        !cell_int(rd, at + 4, 0, lot->granted, &lot->remaining) ||
        !cell_int(rd, at + 5, INT64_MIN, INT64_MAX, &lot->granted_at_us))
        return false;
    lot->expires_at_us = LEDGER_NO_EXPIRY;
    if (!PQgetisnull(rd->r, rd->row, at + 6) &&
        !cell_int(rd, at + 6, INT64_MIN, LEDGER_NO_EXPIRY - 1, &lot->expires_at_us))
        return false;
    if (!cell_str(rd, at + 7, lot->period, sizeof lot->period) ||
        !cell_bool(rd, at + 8, &lot->revoked) || !cell_bool(rd, at + 9, &lot->noticed))
        return false;
    if (lot->revoked && lot->remaining != 0)
        return refuse(rd, at + 4, "a revoked lot with %" PRId64 " credits left", lot->remaining);
    return true;
}

static bool read_lots(struct reader *rd, struct batch *batch)
{
    if (!columns(rd, LOT_COLUMNS))
        return false;
    for (rd->row = 0; rd->row < PQntuples(rd->r); rd->row++) {
        char user[JOB_USER_BYTES_MAX + 1];
        struct lot lot;
        if (!cell_lot(rd, 0, user, sizeof user, &lot))
            return false;
        bool known = batch_add_lot(batch, user, &lot);
        ASSERT(known); /* the query asked for the batch's users only */
    }
    return true;
}

static bool read_holds(struct reader *rd, struct batch *batch)
{
    if (!columns(rd, 6))
        return false;
    for (rd->row = 0; rd->row < PQntuples(rd->r); rd->row++) {
        char id[JOB_ID_BYTES_MAX + 1], user[JOB_USER_BYTES_MAX + 1], status[16];
        int64_t amount, captured, expires_at_us;
        enum hold_status st;
        if (!cell_str(rd, 0, id, sizeof id) || !cell_str(rd, 1, user, sizeof user) ||
            !cell_int(rd, 2, JOB_AMOUNT_MIN, JOB_AMOUNT_MAX, &amount) ||
            !cell_str(rd, 3, status, sizeof status) || !cell_int(rd, 4, 0, amount, &captured) ||
            !cell_int(rd, 5, INT64_MIN, INT64_MAX, &expires_at_us))
            return false;
        if (!ledger_hold_status_parse(status, &st))
            return refuse(rd, 3, "hold status '%s' is not one this worker knows", status);
        struct hold *hold = batch_add_hold(batch, user, id);
        if (hold == NULL)
            continue; /* another user's hold, named by a job: it finds none */
        hold->amount = amount;
        hold->status = st;
        hold->captured = captured;
        hold->expires_at_us = expires_at_us;
    }
    return true;
}

/* A share a hold or a charge has in a lot, with the lot: the lot goes into
 * the user's account unless it is there already. */
static bool read_take(struct reader *rd, struct batch *batch, char *id, size_t id_size,
                      int64_t *amount, struct account **account, struct lot *lot)
{
    char user[JOB_USER_BYTES_MAX + 1];
    if (!cell_str(rd, 0, id, id_size) || !cell_int(rd, 1, 0, INT64_MAX, amount) ||
        !cell_lot(rd, 2, user, sizeof user, lot))
        return false;
    *account = batch_add_lot_once(batch, user, lot) ? batch_account(batch, user) : NULL;
    return true;
}

static bool read_hold_takes(struct reader *rd, struct batch *batch)
{
    if (!columns(rd, 2 + LOT_COLUMNS))
        return false;
    for (rd->row = 0; rd->row < PQntuples(rd->r); rd->row++) {
        char id[JOB_ID_BYTES_MAX + 1];
        int64_t amount;
        struct account *account;
        struct lot lot;
        if (!read_take(rd, batch, id, sizeof id, &amount, &account, &lot))
            return false;
        if (account == NULL)
            continue; /* another user's hold, named by a job: it finds none */
        struct hold *hold = ledger_account_hold(account, id);
        if (hold == NULL || hold->status != HOLD_OPEN || amount == 0)
            return refuse(rd, 0, "a hold entry of %s that is not an open hold's", id);
        ledger_takes_add(&hold->takes, lot.lot_id, amount);
    }
    return true;
}

static bool read_charges(struct reader *rd, struct batch *batch)
{
    if (!columns(rd, 2 + LOT_COLUMNS))
        return false;
    for (rd->row = 0; rd->row < PQntuples(rd->r); rd->row++) {
        char id[JOB_ID_BYTES_MAX + 1];
        int64_t amount;
        struct account *account;
        struct lot lot;
        if (!read_take(rd, batch, id, sizeof id, &amount, &account, &lot))
            return false;
        if (account == NULL)
            continue; /* another user's charge, named by a refund: it finds none */
        struct charge *charge = batch_add_charge(batch, account->user, id);
        if (amount > 0)
            ledger_takes_add(&charge->takes, lot.lot_id, amount);
    }
    return true;
}

static bool read_payment_lots(struct reader *rd, struct batch *batch)
{
    if (!columns(rd, 1 + LOT_COLUMNS))
        return false;
    for (rd->row = 0; rd->row < PQntuples(rd->r); rd->row++) {
        char ref[JOB_PAYMENT_REF_BYTES_MAX + 1], user[JOB_USER_BYTES_MAX + 1];
        struct lot lot;
        if (!cell_str(rd, 0, ref, sizeof ref) || !cell_lot(rd, 1, user, sizeof user, &lot))
            return false;
        if (lot.kind != LOT_PACK)
            return refuse(rd, 3, "a payment_ref on a lot that is not a pack");
        batch_add_payment(batch, ref, user, lot.lot_id);
        if (!batch_add_lot_once(batch, user, &lot))
            continue; /* another user's pack: only "used" matters to this batch */
    }
    return true;
}

static bool read_packs(struct reader *rd, struct batch *batch)
{
    if (!columns(rd, 3))
        return false;
    for (rd->row = 0; rd->row < PQntuples(rd->r); rd->row++) {
        char id[JOB_PACK_BYTES_MAX + 1];
        int64_t credits, days;
        if (!cell_str(rd, 0, id, sizeof id) || !cell_int(rd, 1, 1, ROWS_CREDITS_MAX, &credits) ||
            !cell_int(rd, 2, 1, ROWS_VALID_DAYS_MAX, &days))
            return false;
        struct pack_info info = {credits, (int32_t)days};
        batch_add_pack(batch, id, &info);
    }
    return true;
}

static bool read_plans(struct reader *rd, struct batch *batch)
{
    if (!columns(rd, 4))
        return false;
    for (rd->row = 0; rd->row < PQntuples(rd->r); rd->row++) {
        char id[JOB_PLAN_BYTES_MAX + 1];
        struct plan_info info;
        if (!cell_str(rd, 0, id, sizeof id) ||
            !cell_int(rd, 1, 1, ROWS_CREDITS_MAX, &info.monthly_credits) ||
            !cell_int(rd, 2, info.monthly_credits, ROWS_CREDITS_MAX, &info.rollover_cap) ||
            !cell_int(rd, 3, 0, ROWS_CREDITS_MAX, &info.low_balance))
            return false;
        batch_add_plan(batch, id, &info);
    }
    return true;
}

static bool read_lot_ids(struct reader *rd, struct batch *batch)
{
    if (!columns(rd, 1))
        return false;
    for (rd->row = 0; rd->row < PQntuples(rd->r); rd->row++) {
        int64_t id;
        if (!cell_int(rd, 0, 1, INT64_MAX, &id))
            return false;
        batch_add_lot_id(batch, id);
    }
    return true;
}

/* The event columns (SQL_EVENT_COLUMNS in store.c): event_id, user_id,
 * type, job_id, at (Unix ms), total, pack, monthly, grant, held,
 * threshold, lot_id, credits, expires_at (Unix ms), hold_id, released (0 or
 * '' where the type has none). */
#define EVENT_COLUMNS 16

static bool read_event(struct reader *rd, struct event *e)
{
    char type[32];
    memset(e, 0, sizeof *e);
    if (!cell_int(rd, 0, 1, INT64_MAX, &e->event_id) || !cell_str(rd, 1, e->user, sizeof e->user) ||
        !cell_str(rd, 2, type, sizeof type))
        return false;
    if (!event_type_parse(type, &e->type))
        return refuse(rd, 2, "event type '%s' is not one this worker knows", type);
    int64_t *ints[] = {&e->at_ms,         &e->balance.total, &e->balance.pack, &e->balance.monthly,
                       &e->balance.grant, &e->balance.held,  &e->threshold,    &e->lot,
                       &e->credits,       &e->expires_at_ms};
    int cols[] = {4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
    if (!cell_str(rd, 3, e->job, sizeof e->job))
        return false;
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        if (!cell_int(rd, cols[i], INT64_MIN, INT64_MAX, ints[i]))
            return false;
    return cell_str(rd, 14, e->hold, sizeof e->hold) &&
           cell_int(rd, 15, INT64_MIN, INT64_MAX, &e->released);
}

/* The IDs credits.events gave the batch's events, one row per event in
 * the order inserted, into the copies the store staged before the insert. */
static bool read_event_ids(struct reader *rd, struct batch *batch)
{
    struct event_list *stored = &batch->stored_events;
    if (!columns(rd, 1))
        return false;
    if ((size_t)PQntuples(rd->r) != stored->count)
        return refuse(rd, 0, "%d rows for the %zu events inserted", PQntuples(rd->r),
                      stored->count);
    for (rd->row = 0; rd->row < PQntuples(rd->r); rd->row++)
        if (!cell_int(rd, 0, 1, INT64_MAX, &stored->items[rd->row].event_id))
            return false;
    return true;
}

bool rows_read_events(const PGresult *r, struct event_list *events, char *errstr, size_t errstr_len)
{
    struct reader rd = {r, "credits.events", 0, errstr, errstr_len};
    if (!columns(&rd, EVENT_COLUMNS))
        return false;
    for (rd.row = 0; rd.row < PQntuples(r); rd.row++) {
        struct event e;
        if (!read_event(&rd, &e))
            return false;
        struct event *kept = event_list_add(events, e.type, e.user, e.job, e.at_ms, &e.balance);
        *kept = e;
    }
    return true;
}

bool rows_read_due(const PGresult *r, struct rows_due *due, char *errstr, size_t errstr_len)
{
    struct reader rd = {r, "the sweep's due rows", 0, errstr, errstr_len};
    if (!columns(&rd, 2))
        return false;
    for (rd.row = 0; rd.row < PQntuples(r); rd.row++) {
        char user[JOB_USER_BYTES_MAX + 1];
        int64_t lag_ms;
        if (!cell_str(&rd, 0, user, sizeof user) || !cell_int(&rd, 1, 0, INT64_MAX, &lag_ms))
            return false;
        if (lag_ms > due->lag_ms)
            due->lag_ms = lag_ms;
        bool seen = false;
        for (size_t i = 0; i < due->user_count && !seen; i++)
            seen = strcmp(due->users[i], user) == 0;
        if (seen)
            continue;
        if (due->user_count == due->user_cap)
            return refuse(&rd, 0, "more than the %zu users asked for", due->user_cap);
        memcpy(due->users[due->user_count++], user, sizeof user);
    }
    return true;
}

bool rows_read(enum rows_kind kind, struct batch *batch, const PGresult *r, char *errstr,
               size_t errstr_len)
{
    ASSERT(batch != NULL && r != NULL);
    ASSERT(errstr != NULL && errstr_len > 0);
    struct reader rd = {r, "?", 0, errstr, errstr_len};
    switch (kind) {
    case ROWS_NONE:
        return true;
    case ROWS_ACCOUNTS:
        rd.what = "credits.accounts";
        return read_accounts(&rd, batch);
    case ROWS_NOW:
        rd.what = "now()";
        return read_now(&rd, batch);
    case ROWS_STORED:
        rd.what = "credits.jobs";
        return read_stored(&rd, batch);
    case ROWS_LOTS:
        rd.what = "credits.lots";
        return read_lots(&rd, batch);
    case ROWS_PACKS:
        rd.what = "credits.packs";
        return read_packs(&rd, batch);
    case ROWS_PLANS:
        rd.what = "credits.plans";
        return read_plans(&rd, batch);
    case ROWS_HOLDS:
        rd.what = "credits.holds";
        return read_holds(&rd, batch);
    case ROWS_HOLD_TAKES:
        rd.what = "credits.entries (a hold's)";
        return read_hold_takes(&rd, batch);
    case ROWS_CHARGES:
        rd.what = "credits.entries (a charge's)";
        return read_charges(&rd, batch);
    case ROWS_PAYMENT_LOTS:
        rd.what = "credits.lots (payment references)";
        return read_payment_lots(&rd, batch);
    case ROWS_LOT_IDS:
        rd.what = "credits.lot_id_seq";
        return read_lot_ids(&rd, batch);
    case ROWS_EVENT_IDS:
        rd.what = "credits.events";
        return read_event_ids(&rd, batch);
    }
    UNREACHABLE();
}
