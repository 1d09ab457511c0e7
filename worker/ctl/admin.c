/*
 * admin.c -- creditsctl's Postgres side: connecting, running statements with
 * readable errors, printing rows as aligned tables or JSON, and the queries
 * of balance, history, plan, pack and account. Reads and writes only what `out` and
 * the caller's connection give it; the ledger itself is only ever read here.
 */
#include "worker/ctl/admin.h"

#include <inttypes.h>
#include <string.h>

#include "core/assert.h"
#include "core/job.h"
#include "core/ledger.h"
#include "worker/ctl/table.h"

/* ------------------------------------------------------------------------ */
/* SQL                                                                      */
/* ------------------------------------------------------------------------ */

/* SQL keeps its own layout. */
/* clang-format off */

/* Times are printed in UTC, ISO 8601, whatever the session's time zone. */
#define SQL_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The balance as the web app reads it (credits.balances, contract 9.6); a
 * user with no account yet has zeros. */
static const char sql_balance_totals[] =
    "SELECT coalesce(b.total, 0)::bigint AS total,\n"
    "       coalesce(b.pack, 0)::bigint AS pack,\n"
    "       coalesce(b.monthly, 0)::bigint AS monthly,\n"
    "       coalesce(b.\"grant\", 0)::bigint AS \"grant\",\n"
    "       coalesce(b.held, 0)::bigint AS held,\n"
    "       " SQL_UTC("b.next_expiry_at") " AS next_expiry,\n"
    "       b.next_expiry_credits\n"
    "  FROM (SELECT $1::text AS user_id) AS q\n"
    "  LEFT JOIN credits.balances b ON b.user_id = q.user_id";

/* The usable lots in spending order, with the credits each holds as of
 * now(). NULLs stay NULL (null in JSON, "-" or "never" in tables). */
static const char sql_balance_lots[] =
    "SELECT lot_id AS lot,\n"
    "       kind,\n"
    "       credits AS remaining,\n"
    "       granted,\n"
    "       " SQL_UTC("expires_at") " AS expires,\n"
    "       pack_id AS pack,\n"
    "       plan_id AS plan,\n"
    "       period\n"
    "  FROM credits.usable_lots\n"
    " WHERE user_id = $1\n"
    " ORDER BY " LEDGER_SPENDING_ORDER_SQL "\n"
    " LIMIT $2";

/* The holds that still reserve credits: open and not yet due, soonest
 * expiry first. (One past its expiry has given its credits back already,
 * in credits.usable_lots.) */
static const char sql_balance_holds[] =
    "SELECT hold_id AS hold,\n"
    "       amount,\n"
    "       " SQL_UTC("created_at") " AS created,\n"
    "       " SQL_UTC("expires_at") " AS expires,\n"
    "       tool,\n"
    "       ref\n"
    "  FROM credits.holds\n"
    " WHERE user_id = $1 AND status = 'open' AND expires_at > now()\n"
    " ORDER BY expires_at, hold_id\n"
    " LIMIT $2";

/* One line per job (credits.history, contract 9.6), newest first. */
static const char sql_history_jobs[] =
    "SELECT " SQL_UTC("created_at") " AS time,\n"
    "       type,\n"
    "       delta,\n"
    "       job_id AS job,\n"
    "       tool,\n"
    "       ref,\n"
    "       pack_id AS pack,\n"
    "       plan_id AS plan,\n"
    "       period\n"
    "  FROM credits.history\n"
    " WHERE user_id = $1\n"
    " ORDER BY cursor DESC\n"
    " LIMIT $2";

/* One line per ledger entry, newest first: what each lot gained or lost. */
static const char sql_history_entries[] =
    "SELECT " SQL_UTC("created_at") " AS time,\n"
    "       kind,\n"
    "       delta,\n"
    "       lot_id AS lot,\n"
    "       job_id AS job,\n"
    "       origin,\n"
    "       tool,\n"
    "       ref\n"
    "  FROM credits.entries\n"
    " WHERE user_id = $1\n"
    " ORDER BY entry_id DESC\n"
    " LIMIT $2";

/* A NULL $3 leaves rollover_cap to the table's trigger (2 * monthly), on
 * insert and on update alike (EXCLUDED is the row after BEFORE INSERT
 * triggers); a NULL $4 is no low-balance threshold: `set` replaces the
 * whole plan. */
static const char sql_plan_set[] =
    "INSERT INTO credits.plans (plan_id, monthly_credits, rollover_cap, low_balance)\n"
    "VALUES ($1, $2, $3, $4)\n"
    "ON CONFLICT (plan_id) DO UPDATE\n"
    "   SET monthly_credits = EXCLUDED.monthly_credits,\n"
    "       rollover_cap = EXCLUDED.rollover_cap,\n"
    "       low_balance = EXCLUDED.low_balance\n"
    "RETURNING plan_id AS plan, monthly_credits AS monthly, rollover_cap AS cap, low_balance";

static const char sql_plan_list[] =
    "SELECT plan_id AS plan, monthly_credits AS monthly, rollover_cap AS cap, low_balance\n"
    "  FROM credits.plans\n"
    " ORDER BY plan_id\n"
    " LIMIT $1";

/* An account as `account set` and `account show` print it: its own
 * threshold, its plan's, and the one the worker uses (contract 9.8). */
#define SQL_ACCOUNT_COLUMNS                                                                        \
    "SELECT a.user_id AS user,\n"                                                                  \
    "       a.plan_id AS plan,\n"                                                                  \
    "       a.low_balance,\n"                                                                      \
    "       p.low_balance AS plan_low_balance,\n"                                                  \
    "       coalesce(a.low_balance, p.low_balance) AS threshold\n"

/* Creates the account as the worker would (a row with no plan), or sets
 * the threshold of the one there; a NULL $2 clears it. */
static const char sql_account_set[] =
    "WITH a AS (\n"
    "    INSERT INTO credits.accounts (user_id, low_balance)\n"
    "    VALUES ($1, $2)\n"
    "    ON CONFLICT (user_id) DO UPDATE\n"
    "       SET low_balance = EXCLUDED.low_balance\n"
    "    RETURNING user_id, plan_id, low_balance)\n"
    SQL_ACCOUNT_COLUMNS
    "  FROM a\n"
    "  LEFT JOIN credits.plans p ON p.plan_id = a.plan_id";

static const char sql_account_show[] =
    SQL_ACCOUNT_COLUMNS
    "  FROM credits.accounts a\n"
    "  LEFT JOIN credits.plans p ON p.plan_id = a.plan_id\n"
    " WHERE a.user_id = $1";

static const char sql_pack_set[] =
    "INSERT INTO credits.packs (pack_id, credits, valid_days)\n"
    "VALUES ($1, $2, $3)\n"
    "ON CONFLICT (pack_id) DO UPDATE\n"
    "   SET credits = EXCLUDED.credits,\n"
    "       valid_days = EXCLUDED.valid_days\n"
    "RETURNING pack_id AS pack, credits, valid_days";

static const char sql_pack_list[] =
    "SELECT pack_id AS pack, credits, valid_days\n"
    "  FROM credits.packs\n"
    " ORDER BY pack_id\n"
    " LIMIT $1";

/* clang-format on */

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* What the schema's constraints (schemas/001_ledger.sql) mean, for people. */
static const struct {
    const char *constraint;
    const char *meaning;
} constraint_meanings[] = {
    {"plans_plan_id_check", "a plan ID is 1 to 64 bytes"},
    {"plans_monthly_credits_check", "monthly credits must be from 1 to 1000000000000"},
    {"plans_check", "the rollover cap must be at least the monthly credits and at most "
                    "10000000000000"},
    {"packs_pack_id_check", "a pack ID is 1 to 64 bytes"},
    {"packs_credits_check", "a pack's credits must be from 1 to 1000000000000"},
    {"packs_valid_days_check", "valid days must be from 1 to 36500"},
    {"plans_low_balance_check", "a low-balance threshold must be from 1 to 1000000000000"},
    {"accounts_low_balance_check", "a low-balance threshold must be from 1 to 1000000000000"},
};

static const char *constraint_meaning(const char *constraint)
{
    for (size_t i = 0; constraint && i < sizeof constraint_meanings / sizeof constraint_meanings[0];
         i++)
        if (strcmp(constraint, constraint_meanings[i].constraint) == 0)
            return constraint_meanings[i].meaning;
    return NULL;
}

static void trim_newlines(char *s)
{
    for (size_t n = strlen(s); n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'); n--)
        s[n - 1] = '\0';
}

/* "what: why", one readable line, from a failed result (or the connection). */
static void describe_failure(PGconn *conn, const PGresult *res, const char *what, char *errstr,
                             size_t errstr_len)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    const char *meaning = constraint_meaning(constraint);
    if (!primary || !primary[0])
        primary = PQerrorMessage(conn);
    if (meaning)
        snprintf(errstr, errstr_len, "%s: refused by the database: %s (constraint %s)", what,
                 meaning, constraint);
    else if (state && (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0))
        snprintf(errstr, errstr_len, "%s: %s (run 'creditsctl migrate' first?)", what, primary);
    else if (state && strcmp(state, "42501") == 0)
        snprintf(errstr, errstr_len,
                 "%s: %s (the database role of CREDITS_DATABASE_URL may not do this; "
                 "schemas/roles.sql says which role may)",
                 what, primary);
    else if (state && strcmp(state, "57014") == 0)
        snprintf(errstr, errstr_len, "%s: gave up after %d ms (%s)", what,
                 ADMIN_STATEMENT_TIMEOUT_MS, primary);
    else
        snprintf(errstr, errstr_len, "%s: %s", what, primary[0] ? primary : "unknown error");
    trim_newlines(errstr);
}

PGresult *admin_query(PGconn *conn, const char *what, const char *sql, int nparams,
                      const char *const *params, char *errstr, size_t errstr_len)
{
    ASSERT(conn && what && sql);
    ASSERT(nparams >= 0 && (nparams == 0 || params));
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    describe_failure(conn, res, what, errstr, errstr_len);
    PQclear(res);
    return NULL;
}

int admin_command(PGconn *conn, const char *sql, char *errstr, size_t errstr_len)
{
    PGresult *res = admin_query(conn, sql, sql, 0, NULL, errstr, errstr_len);
    PQclear(res);
    return res ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Connecting                                                               */
/* ------------------------------------------------------------------------ */

static void notice_receiver(void *arg, const PGresult *res)
{
    (void)arg;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (severity && strcmp(severity, "WARNING") == 0)
        fprintf(stderr, "creditsctl: postgres: %s", PQresultErrorMessage(res));
}

PGconn *admin_connect(const char *conninfo, bool statement_timeout, char *errstr, size_t errstr_len)
{
    ASSERT(conninfo && errstr && errstr_len > 0);
    char connect_timeout[16];
    char options[64] = "";
    snprintf(connect_timeout, sizeof connect_timeout, "%d", ADMIN_CONNECT_TIMEOUT_S);
    if (statement_timeout)
        snprintf(options, sizeof options, "-c statement_timeout=%d", ADMIN_STATEMENT_TIMEOUT_MS);
    /* With expand_dbname, the settings in `conninfo` override the ones
     * before it: ours are defaults the operator can change. */
    const char *keys[] = {"connect_timeout", "application_name", "options", "dbname", NULL};
    const char *values[] = {connect_timeout, "creditsctl", options, conninfo, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn) {
        snprintf(errstr, errstr_len, "cannot connect to Postgres: out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(errstr, errstr_len, "cannot connect to Postgres: %s", PQerrorMessage(conn));
        trim_newlines(errstr);
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeReceiver(conn, notice_receiver, NULL);
    return conn;
}

/* ------------------------------------------------------------------------ */
/* Rows as tables and as JSON                                               */
/* ------------------------------------------------------------------------ */

/* Type OIDs (catalog/pg_type.h, fixed forever) of the numbers: right-aligned
 * in tables, numbers in JSON. */
#define OID_INT2 21
#define OID_INT4 23
#define OID_INT8 20
#define OID_NUMERIC 1700

/* How a NULL reads in a table column, when not "-". */
static const struct {
    const char *column;
    const char *text;
} null_words[] = {
    {"expires", "never"},
    {"low_balance", "none"},
    {"plan_low_balance", "none"},
    {"threshold", "none"},
};

static bool column_is_number(const PGresult *res, int col)
{
    Oid type = PQftype(res, col);
    return type == OID_INT2 || type == OID_INT4 || type == OID_INT8 || type == OID_NUMERIC;
}

static const char *null_word(const char *column)
{
    for (size_t i = 0; i < sizeof null_words / sizeof null_words[0]; i++)
        if (strcmp(column, null_words[i].column) == 0)
            return null_words[i].text;
    return "-";
}

/* The cells of a PGresult, from column `first_col` on. */
struct pg_cells {
    const PGresult *res;
    int first_col;
};

static const char *pg_cell(const void *ctx, int row, int col)
{
    const struct pg_cells *cells = ctx;
    int c = col + cells->first_col;
    if (row < 0)
        return PQfname(cells->res, c);
    if (PQgetisnull(cells->res, row, c))
        return null_word(PQfname(cells->res, c));
    return PQgetvalue(cells->res, row, c);
}

void admin_print_table(FILE *out, const PGresult *res, int first_col, const char *indent,
                       const char *empty)
{
    ASSERT(out && res && empty);
    int cols = PQnfields(res) - first_col;
    ASSERT(first_col >= 0 && cols > 0 && cols <= TABLE_COLS_MAX);
    if (PQntuples(res) == 0) {
        fprintf(out, "%s%s\n", indent ? indent : "", empty);
        return;
    }
    bool right[TABLE_COLS_MAX];
    for (int c = 0; c < cols; c++)
        right[c] = column_is_number(res, c + first_col);
    struct pg_cells cells = {res, first_col};
    struct table t = {PQntuples(res), cols, pg_cell, &cells, right, indent};
    table_print(out, &t);
}

void admin_json_members(struct json *j, const PGresult *res, int row, int first_col)
{
    ASSERT(j && res && row >= 0 && row < PQntuples(res));
    for (int c = first_col; c < PQnfields(res); c++) {
        const char *key = PQfname(res, c);
        if (PQgetisnull(res, row, c))
            json_null(j, key);
        else if (column_is_number(res, c))
            json_number_text(j, key, PQgetvalue(res, row, c));
        else
            json_str(j, key, PQgetvalue(res, row, c));
    }
}

void admin_json_rows(struct json *j, const char *key, const PGresult *res, int first_col)
{
    json_array_begin(j, key);
    for (int r = 0; r < PQntuples(res); r++) {
        json_object_begin(j, NULL);
        admin_json_members(j, res, r, first_col);
        json_object_end(j);
    }
    json_array_end(j);
}

/* `res` as a table, or as {"key": [rows]} when json. */
static void print_rows(FILE *out, const PGresult *res, bool json, const char *key,
                       const char *empty)
{
    if (!json) {
        admin_print_table(out, res, 0, NULL, empty);
        if (PQntuples(res) >= ADMIN_ROWS_MAX)
            fprintf(out, "(only the first %d rows are shown)\n", ADMIN_ROWS_MAX);
        return;
    }
    struct json j;
    json_init(&j, out);
    json_object_begin(&j, NULL);
    admin_json_rows(&j, key, res, 0);
    json_bool(&j, "truncated", PQntuples(res) >= ADMIN_ROWS_MAX);
    json_object_end(&j);
    json_finish(&j);
}

/* The one row of `res` as a table, or as one JSON object. */
static void print_one_row(FILE *out, const PGresult *res, bool json)
{
    ASSERT(PQntuples(res) == 1);
    if (!json) {
        admin_print_table(out, res, 0, NULL, "");
        return;
    }
    struct json j;
    json_init(&j, out);
    json_object_begin(&j, NULL);
    admin_json_members(&j, res, 0, 0);
    json_object_end(&j);
    json_finish(&j);
}

/* ------------------------------------------------------------------------ */
/* balance, history                                                         */
/* ------------------------------------------------------------------------ */

static bool balance_truncated(const PGresult *lots, const PGresult *holds)
{
    return PQntuples(lots) >= ADMIN_ROWS_MAX || PQntuples(holds) >= ADMIN_ROWS_MAX;
}

static void print_balance(FILE *out, const char *user, const PGresult *totals, const PGresult *lots,
                          const PGresult *holds, bool json)
{
    ASSERT(PQntuples(totals) == 1);
    if (json) {
        struct json j;
        json_init(&j, out);
        json_object_begin(&j, NULL);
        json_str(&j, "user", user);
        admin_json_members(&j, totals, 0, 0);
        admin_json_rows(&j, "lots", lots, 0);
        admin_json_rows(&j, "holds", holds, 0);
        json_bool(&j, "truncated", balance_truncated(lots, holds));
        json_object_end(&j);
        json_finish(&j);
        return;
    }
    char safe_user[TABLE_CELL_BUF_BYTES];
    table_safe_cell(user, safe_user);
    fprintf(out, "balance of %s\n", safe_user);
    admin_print_table(out, totals, 0, NULL, "");
    fputc('\n', out);
    admin_print_table(out, lots, 0, NULL, "(no usable lots)");
    fputc('\n', out);
    admin_print_table(out, holds, 0, NULL, "(no open holds)");
    if (balance_truncated(lots, holds))
        fprintf(out, "(only the first %d lots and holds are shown)\n", ADMIN_ROWS_MAX);
}

int admin_balance(PGconn *conn, const char *user, bool json, FILE *out, char *errstr,
                  size_t errstr_len)
{
    ASSERT(conn && user && out && errstr);
    char limit[16];
    snprintf(limit, sizeof limit, "%d", ADMIN_ROWS_MAX);
    const char *params[2] = {user, limit};
    /* One snapshot and one now() for the three queries, so the lots and
     * holds add up to the totals. */
    if (admin_command(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", errstr, errstr_len))
        return -1;
    PGresult *totals =
        admin_query(conn, "reading the balance", sql_balance_totals, 1, params, errstr, errstr_len);
    PGresult *lots = totals ? admin_query(conn, "reading the lots", sql_balance_lots, 2, params,
                                          errstr, errstr_len)
                            : NULL;
    PGresult *holds = lots ? admin_query(conn, "reading the holds", sql_balance_holds, 2, params,
                                         errstr, errstr_len)
                           : NULL;
    int rc = holds ? admin_command(conn, "COMMIT", errstr, errstr_len) : -1;
    if (rc == 0)
        print_balance(out, user, totals, lots, holds, json);
    else
        PQclear(PQexec(conn, "ROLLBACK"));
    PQclear(totals);
    PQclear(lots);
    PQclear(holds);
    return rc;
}

int admin_history(PGconn *conn, const char *user, int limit, bool per_lot, bool json, FILE *out,
                  char *errstr, size_t errstr_len)
{
    ASSERT(conn && user && out && errstr);
    ASSERT(limit >= 1 && limit <= ADMIN_HISTORY_LIMIT_MAX);
    char limit_text[16];
    snprintf(limit_text, sizeof limit_text, "%d", limit);
    const char *params[2] = {user, limit_text};
    const char *sql = per_lot ? sql_history_entries : sql_history_jobs;
    PGresult *res = admin_query(conn, "reading the history", sql, 2, params, errstr, errstr_len);
    if (!res)
        return -1;
    if (json) {
        struct json j;
        json_init(&j, out);
        json_object_begin(&j, NULL);
        json_str(&j, "user", user);
        admin_json_rows(&j, per_lot ? "entries" : "jobs", res, 0);
        json_object_end(&j);
        json_finish(&j);
    } else {
        admin_print_table(out, res, 0, NULL, per_lot ? "(no entries)" : "(no jobs)");
    }
    PQclear(res);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* plan, pack, account                                                      */
/* ------------------------------------------------------------------------ */

/* Runs a query returning one row (an upsert's RETURNING) and prints it. */
static int query_one_row(PGconn *conn, const char *what, const char *sql, int nparams,
                         const char *const *params, bool json, FILE *out, char *errstr,
                         size_t errstr_len)
{
    PGresult *res = admin_query(conn, what, sql, nparams, params, errstr, errstr_len);
    if (!res)
        return -1;
    print_one_row(out, res, json);
    PQclear(res);
    return 0;
}

/* Runs a list query (LIMIT ADMIN_ROWS_MAX) and prints its rows. */
static int query_list(PGconn *conn, const char *what, const char *sql, bool json, const char *key,
                      const char *empty, FILE *out, char *errstr, size_t errstr_len)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", ADMIN_ROWS_MAX);
    const char *params[1] = {limit};
    PGresult *res = admin_query(conn, what, sql, 1, params, errstr, errstr_len);
    if (!res)
        return -1;
    print_rows(out, res, json, key, empty);
    PQclear(res);
    return 0;
}

int admin_plan_set(PGconn *conn, const char *plan_id, const struct admin_plan *plan, bool json,
                   FILE *out, char *errstr, size_t errstr_len)
{
    ASSERT(conn && plan_id && plan && out && errstr);
    ASSERT(!plan->has_low_balance ||
           (plan->low_balance >= 1 && plan->low_balance <= ADMIN_LOW_BALANCE_MAX));
    char monthly_text[24];
    char cap_text[24];
    char low_text[24];
    snprintf(monthly_text, sizeof monthly_text, "%" PRId64, plan->monthly);
    snprintf(cap_text, sizeof cap_text, "%" PRId64, plan->cap);
    snprintf(low_text, sizeof low_text, "%" PRId64, plan->low_balance);
    const char *params[4] = {plan_id, monthly_text, plan->has_cap ? cap_text : NULL,
                             plan->has_low_balance ? low_text : NULL};
    return query_one_row(conn, "saving the plan", sql_plan_set, 4, params, json, out, errstr,
                         errstr_len);
}

int admin_plan_list(PGconn *conn, bool json, FILE *out, char *errstr, size_t errstr_len)
{
    ASSERT(conn && out && errstr);
    return query_list(conn, "listing the plans", sql_plan_list, json, "plans", "(no plans)", out,
                      errstr, errstr_len);
}

int admin_pack_set(PGconn *conn, const char *pack_id, int64_t credits, int64_t valid_days,
                   bool json, FILE *out, char *errstr, size_t errstr_len)
{
    ASSERT(conn && pack_id && out && errstr);
    char credits_text[24];
    char days_text[24];
    snprintf(credits_text, sizeof credits_text, "%" PRId64, credits);
    snprintf(days_text, sizeof days_text, "%" PRId64, valid_days);
    const char *params[3] = {pack_id, credits_text, days_text};
    return query_one_row(conn, "saving the pack", sql_pack_set, 3, params, json, out, errstr,
                         errstr_len);
}

int admin_pack_list(PGconn *conn, bool json, FILE *out, char *errstr, size_t errstr_len)
{
    ASSERT(conn && out && errstr);
    return query_list(conn, "listing the packs", sql_pack_list, json, "packs", "(no packs)", out,
                      errstr, errstr_len);
}

int admin_account_set(PGconn *conn, const char *user, bool has_low_balance, int64_t low_balance,
                      bool json, FILE *out, char *errstr, size_t errstr_len)
{
    ASSERT(conn && user && out && errstr);
    ASSERT(!has_low_balance || (low_balance >= 1 && low_balance <= ADMIN_LOW_BALANCE_MAX));
    char low_text[24];
    snprintf(low_text, sizeof low_text, "%" PRId64, low_balance);
    const char *params[2] = {user, has_low_balance ? low_text : NULL};
    return query_one_row(conn, "saving the account", sql_account_set, 2, params, json, out, errstr,
                         errstr_len);
}

int admin_account_show(PGconn *conn, const char *user, bool json, FILE *out, char *errstr,
                       size_t errstr_len)
{
    ASSERT(conn && user && out && errstr);
    const char *params[1] = {user};
    PGresult *res =
        admin_query(conn, "reading the account", sql_account_show, 1, params, errstr, errstr_len);
    if (!res)
        return -1;
    int rows = PQntuples(res);
    ASSERT(rows <= 1); /* user_id is the key */
    if (rows == 1)
        print_one_row(out, res, json);
    else
        snprintf(errstr, errstr_len,
                 "no account %s (the worker creates one at the user's first job; "
                 "'creditsctl account set' creates one too)",
                 user);
    PQclear(res);
    return rows == 1 ? 0 : -1;
}
