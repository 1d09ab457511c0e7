/*
 * rows.h -- the rows a batch's load returns (store.c's queries), read into
 * the batch: every cell checked for NULL, type, range and known names.
 *
 * A bad row is an operating error, never an assertion: a database migrated
 * by a newer worker (a lot kind this one does not know, during a rolling
 * deploy) or a hand edit must stop the batch with a message that names the
 * query, row and column, not crash-loop the worker. Owns the column layout
 * of each query's result; does not own the SQL (store.c). Pure: reads
 * PGresults, no I/O.
 */
#ifndef CREDITS_WORKER_DAEMON_ROWS_H
#define CREDITS_WORKER_DAEMON_ROWS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/batch.h"

/* What a query's rows are: which reader takes them. */
enum rows_kind {
    ROWS_NONE,         /* a command: no rows */
    ROWS_ACCOUNTS,     /* user_id, plan_id, low_balance, the plan's low_balance (0: none) */
    ROWS_NOW,          /* one row: now() in Unix microseconds */
    ROWS_STORED,       /* job_id, request, result (binary) */
    ROWS_LOTS,         /* the lot columns: user_id, lot_id, kind, granted, remaining,
                        * granted_at and expires_at (Unix us), period, revoked,
                        * noticed */
    ROWS_HOLDS,        /* hold_id, user_id, amount, status, captured, expires_at (us) */
    ROWS_HOLD_TAKES,   /* hold_id, amount, then the lot columns */
    ROWS_CHARGES,      /* charge (its job_id), amount refundable, then the lot columns */
    ROWS_PACKS,        /* pack_id, credits, valid_days */
    ROWS_PLANS,        /* plan_id, monthly_credits, rollover_cap, low_balance (0: none) */
    ROWS_PAYMENT_LOTS, /* payment_ref, then the lot columns */
    ROWS_LOT_IDS,      /* nextval */
    ROWS_EVENT_IDS,    /* the IDs of the events inserted, in order: into stored_events */
};

/* Reads `r` (borrowed) into `batch`. False with a message in errstr when a
 * row breaks its query's layout; the batch is then of no use (reset it). */
bool rows_read(enum rows_kind kind, struct batch *batch, const PGresult *r, char *errstr,
               size_t errstr_len) __attribute__((warn_unused_result));

/* Events as credits.events holds them (the columns of SQL_EVENT_COLUMNS),
 * appended to `events`. */
bool rows_read_events(const PGresult *r, struct event_list *events, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* The users the sweep is due to visit (user_id, lag in ms of the row that
 * made it due, 0 for a notice), distinct, at most user_cap; lag_ms is the
 * largest lag read. */
struct rows_due {
    char (*users)[JOB_USER_BYTES_MAX + 1];
    size_t user_count;
    size_t user_cap;
    int64_t lag_ms;
};
bool rows_read_due(const PGresult *r, struct rows_due *due, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

#endif
