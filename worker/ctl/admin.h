/*
 * admin.h -- the Postgres side of creditsctl: connecting, running statements,
 * printing rows as aligned tables or JSON, and the queries behind `balance`,
 * `history`, `plan`, `pack` and `account`.
 *
 * Owns that SQL and how its answers are printed (strings made safe for a
 * terminal). Does not own argument parsing (creditsctl.c), the schema
 * (schemas/, migrate.h) or the ledger rules (the worker). Blocking libpq.
 */
#ifndef CREDITS_WORKER_CTL_ADMIN_H
#define CREDITS_WORKER_CTL_ADMIN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "worker/ctl/json_out.h"

#define ADMIN_CONNECT_TIMEOUT_S 10
/* Queries of an operator's command are small: anything slower than this is
 * waiting on a lock, and the operator is better told than kept waiting. */
#define ADMIN_STATEMENT_TIMEOUT_MS 30000
#define ADMIN_HISTORY_LIMIT_DEFAULT 20
#define ADMIN_HISTORY_LIMIT_MAX 1000
/* Rows printed by `balance` (lots) and by `plan list` / `pack list`. */
#define ADMIN_ROWS_MAX 1000
/* Contract section 5: a pack's credits expire after 90 days by default. */
#define ADMIN_PACK_VALID_DAYS_DEFAULT 90
/* The low-balance thresholds of plans and accounts (contract 9.8) are 1 to
 * this, as the CHECKs of schemas/008_sweep_events.sql say. */
#define ADMIN_LOW_BALANCE_MAX INT64_C(1000000000000)

/*
 * Connects with `conninfo` (a libpq connection string or URI; "" means
 * libpq's defaults and PG* variables), a connect timeout of
 * ADMIN_CONNECT_TIMEOUT_S unless the conninfo sets one, and, when
 * `statement_timeout` is true, ADMIN_STATEMENT_TIMEOUT_MS per statement.
 * Server NOTICEs are dropped; WARNINGs go to stderr. Returns the connection
 * (caller frees with PQfinish()), or NULL with a message in errstr.
 */
PGconn *admin_connect(const char *conninfo, bool statement_timeout, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Runs one statement with text parameters. Returns its result (caller frees
 * with PQclear()), or NULL with "what: why" in errstr (readable: the
 * schema's constraints explained, a missing schema pointed at migrate). */
PGresult *admin_query(PGconn *conn, const char *what, const char *sql, int nparams,
                      const char *const *params, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Runs a statement without parameters or rows (BEGIN, COMMIT). 0 or -1. */
int admin_command(PGconn *conn, const char *sql, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Prints the rows of `res`, columns from `first_col` on, as an aligned
 * table under a header of the column names (numbers right-aligned, NULL as
 * "-"), each line after `indent` (NULL: none); `empty` instead when there
 * are no rows. */
void admin_print_table(FILE *out, const PGresult *res, int first_col, const char *indent,
                       const char *empty);

/* Writes the columns of row `row` of `res` from `first_col` on as members
 * of the open JSON object (numbers as numbers, NULL as null). */
void admin_json_members(struct json *j, const PGresult *res, int row, int first_col);

/* Writes the rows of `res` as an array of objects (see above) under `key`. */
void admin_json_rows(struct json *j, const char *key, const PGresult *res, int first_col);

/*
 * Each command below prints to `out`, an aligned table or (json true) one
 * JSON document on one line, and returns 0, or -1 with a message for people
 * in errstr (the database's refusal, readable). `conn` and the strings are
 * borrowed until return; `conn` must be idle.
 */

/* The user's usable credits (total, pack, monthly) and usable lots with
 * credits left, in the order they would be spent. */
int admin_balance(PGconn *conn, const char *user, bool json, FILE *out, char *errstr,
                  size_t errstr_len) __attribute__((warn_unused_result));

/* The user's newest `limit` (1..ADMIN_HISTORY_LIMIT_MAX) lines of history,
 * newest first: one per job (credits.history), or with `per_lot` one per
 * ledger entry. */
int admin_history(PGconn *conn, const char *user, int limit, bool per_lot, bool json, FILE *out,
                  char *errstr, size_t errstr_len) __attribute__((warn_unused_result));

/* What `plan set` writes: the whole plan. */
struct admin_plan {
    int64_t monthly;
    bool has_cap; /* false: the database's trigger sets 2 * monthly */
    int64_t cap;
    bool has_low_balance; /* false: no threshold of the low-balance events */
    int64_t low_balance;  /* 1..ADMIN_LOW_BALANCE_MAX */
};

/* Creates or replaces plan `plan_id` with `plan` (borrowed until return). */
int admin_plan_set(PGconn *conn, const char *plan_id, const struct admin_plan *plan, bool json,
                   FILE *out, char *errstr, size_t errstr_len) __attribute__((warn_unused_result));

int admin_plan_list(PGconn *conn, bool json, FILE *out, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Creates or replaces pack `pack_id`. */
int admin_pack_set(PGconn *conn, const char *pack_id, int64_t credits, int64_t valid_days,
                   bool json, FILE *out, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

int admin_pack_list(PGconn *conn, bool json, FILE *out, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Sets the low-balance threshold of `user`'s account (has_low_balance
 * false: clears it), creating the account, without a plan, when there is
 * none, as the worker does at a user's first job. Prints the account: user,
 * plan, low_balance, plan_low_balance and the threshold the worker uses. */
int admin_account_set(PGconn *conn, const char *user, bool has_low_balance, int64_t low_balance,
                      bool json, FILE *out, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Prints `user`'s account as admin_account_set() does; -1 when there is
 * none. */
int admin_account_show(PGconn *conn, const char *user, bool json, FILE *out, char *errstr,
                       size_t errstr_len) __attribute__((warn_unused_result));

#endif
