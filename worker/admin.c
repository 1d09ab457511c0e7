/*
 * admin.c -- creditsctl's Postgres queries (balance, history, plan, pack) and
 * the aligned tables they print. Reads and writes only what `out` and the
 * caller's connection give it; the ledger itself is only ever read here.
 */
#include "worker/admin.h"

#include <inttypes.h>
#include <string.h>

#include "core/assert.h"
#include "core/job.h"

/* ------------------------------------------------------------------------ */
/* SQL                                                                      */
/* ------------------------------------------------------------------------ */

/* SQL keeps its own layout. */
/* clang-format off */

/* Times are printed in UTC, ISO 8601, whatever the session's time zone. */
#define SQL_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Usable: no expiry, or an expiry still ahead (contract section 5). */
static const char sql_balance_totals[] =
    "SELECT coalesce(sum(remaining), 0)::bigint AS total,\n"
    "       coalesce(sum(remaining) FILTER (WHERE kind = 'pack'), 0)::bigint AS pack,\n"
    "       coalesce(sum(remaining) FILTER (WHERE kind = 'monthly'), 0)::bigint AS monthly\n"
    "  FROM credits.lots\n"
    " WHERE user_id = $1\n"
    "   AND (expires_at IS NULL OR expires_at > now())";

/* In spending order: packs by expiry, then monthly lots by grant time. */
static const char sql_balance_lots[] =
    "SELECT lot_id AS lot,\n"
    "       kind,\n"
    "       remaining || '/' || granted AS \"remaining/granted\",\n"
    "       coalesce(" SQL_UTC("expires_at") ", 'never') AS expires,\n"
    "       coalesce(pack_id, plan_id, '-') AS \"pack/plan\",\n"
    "       coalesce(period, '-') AS period\n"
    "  FROM credits.lots\n"
    " WHERE user_id = $1\n"
    "   AND remaining > 0\n"
    "   AND (expires_at IS NULL OR expires_at > now())\n"
    " ORDER BY kind = 'monthly', expires_at, granted_at, lot_id\n"
    " LIMIT $2";

static const char sql_history[] =
    "SELECT " SQL_UTC("created_at") " AS time,\n"
    "       kind,\n"
    "       delta,\n"
    "       lot_id AS lot,\n"
    "       job_id AS job,\n"
    "       coalesce(tool, '-') AS tool,\n"
    "       coalesce(ref, '-') AS ref\n"
    "  FROM credits.entries\n"
    " WHERE user_id = $1\n"
    " ORDER BY entry_id DESC\n"
    " LIMIT $2";

/* A NULL $3 leaves rollover_cap to the table's trigger (2 * monthly), on
 * insert and on update alike (EXCLUDED is the row after BEFORE INSERT
 * triggers): `set` replaces the whole plan. */
static const char sql_plan_set[] =
    "INSERT INTO credits.plans (plan_id, monthly_credits, rollover_cap)\n"
    "VALUES ($1, $2, $3)\n"
    "ON CONFLICT (plan_id) DO UPDATE\n"
    "   SET monthly_credits = EXCLUDED.monthly_credits,\n"
    "       rollover_cap = EXCLUDED.rollover_cap\n"
    "RETURNING plan_id AS plan, monthly_credits AS monthly, rollover_cap AS cap";

static const char sql_plan_list[] =
    "SELECT plan_id AS plan, monthly_credits AS monthly, rollover_cap AS cap\n"
    "  FROM credits.plans\n"
    " ORDER BY plan_id\n"
    " LIMIT $1";

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
    else if (state && strcmp(state, "57014") == 0)
        snprintf(errstr, errstr_len, "%s: gave up after %d ms (%s)", what,
                 ADMIN_STATEMENT_TIMEOUT_MS, primary);
    else
        snprintf(errstr, errstr_len, "%s: %s", what, primary[0] ? primary : "unknown error");
    trim_newlines(errstr);
}

/* Runs one statement. Returns its result (caller frees with PQclear()), or
 * NULL with errstr. */
static PGresult *query(PGconn *conn, const char *what, const char *sql, int nparams,
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

static int command(PGconn *conn, const char *sql, char *errstr, size_t errstr_len)
{
    PGresult *res = query(conn, sql, sql, 0, NULL, errstr, errstr_len);
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
/* Tables                                                                   */
/* ------------------------------------------------------------------------ */

/* A cell holds at most this many bytes of its value, then "...". */
#define CELL_BYTES_MAX 200
#define CELL_BUF_BYTES (CELL_BYTES_MAX + 8)

/* Type OIDs (catalog/pg_type.h, fixed forever) of the numbers we right-align. */
#define OID_INT2 21
#define OID_INT4 23
#define OID_INT8 20
#define OID_NUMERIC 1700

/*
 * Copies `in` into `out` (CELL_BUF_BYTES) fit for a terminal: control bytes
 * (C0, DEL, and C1 written as UTF-8) become '?', and so does every non-ASCII
 * byte when `in` is not valid UTF-8. Returns the width in code points.
 */
static size_t safe_cell(const char *in, char out[CELL_BUF_BYTES])
{
    bool utf8 = job_text_is_valid(in, strlen(in));
    size_t n = 0;
    size_t width = 0;
    for (size_t i = 0; in[i] != '\0'; i++) {
        unsigned char c = (unsigned char)in[i];
        bool continuation = (c & 0xC0) == 0x80;
        if (!continuation && n >= CELL_BYTES_MAX) {
            memcpy(out + n, "...", 3);
            n += 3;
            width += 3;
            break;
        }
        unsigned char next = (unsigned char)in[i + 1];
        bool c1 = utf8 && c == 0xC2 && next >= 0x80 && next <= 0x9F;
        if (c < 0x20 || c == 0x7F || (!utf8 && c >= 0x80) || c1) {
            out[n++] = '?';
            width++;
            i += c1 ? 1 : 0;
            continue;
        }
        out[n++] = (char)c;
        width += continuation ? 0 : 1;
    }
    ASSERT(n < CELL_BUF_BYTES);
    out[n] = '\0';
    return width;
}

static bool column_is_number(const PGresult *res, int col)
{
    Oid type = PQftype(res, col);
    return type == OID_INT2 || type == OID_INT4 || type == OID_INT8 || type == OID_NUMERIC;
}

static void print_cell(FILE *out, const char *text, size_t width, size_t column_width, bool right,
                       bool last)
{
    size_t pad = column_width - width;
    if (right)
        fprintf(out, "%*s", (int)pad, "");
    fputs(text, out);
    if (!right && !last)
        fprintf(out, "%*s", (int)pad, "");
    if (!last)
        fputs("  ", out);
}

/* Prints the rows of `res` under a header of its column names; `empty`
 * instead when there are none. */
static void print_table(FILE *out, const PGresult *res, const char *empty)
{
    int rows = PQntuples(res);
    int cols = PQnfields(res);
    ASSERT(cols > 0 && cols <= 16);
    if (rows == 0) {
        fprintf(out, "%s\n", empty);
        return;
    }
    size_t widths[16];
    char cell[CELL_BUF_BYTES];
    for (int c = 0; c < cols; c++) {
        widths[c] = safe_cell(PQfname(res, c), cell);
        for (int r = 0; r < rows; r++) {
            size_t w = safe_cell(PQgetvalue(res, r, c), cell);
            widths[c] = w > widths[c] ? w : widths[c];
        }
    }
    for (int r = -1; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            const char *value = r < 0 ? PQfname(res, c) : PQgetvalue(res, r, c);
            size_t w = safe_cell(value, cell);
            print_cell(out, cell, w, widths[c], column_is_number(res, c), c == cols - 1);
        }
        fputc('\n', out);
    }
}

/* Runs a query and prints its rows as a table. */
static int query_table(PGconn *conn, const char *what, const char *sql, int nparams,
                       const char *const *params, const char *empty, FILE *out, char *errstr,
                       size_t errstr_len)
{
    PGresult *res = query(conn, what, sql, nparams, params, errstr, errstr_len);
    if (!res)
        return -1;
    print_table(out, res, empty);
    if (PQntuples(res) >= ADMIN_ROWS_MAX)
        fprintf(out, "(only the first %d rows are shown)\n", ADMIN_ROWS_MAX);
    PQclear(res);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* balance, history                                                         */
/* ------------------------------------------------------------------------ */

int admin_balance(PGconn *conn, const char *user, FILE *out, char *errstr, size_t errstr_len)
{
    ASSERT(conn && user && out && errstr);
    char limit[16];
    snprintf(limit, sizeof limit, "%d", ADMIN_ROWS_MAX);
    const char *params[2] = {user, limit};
    char safe_user[CELL_BUF_BYTES];
    safe_cell(user, safe_user);
    /* One snapshot and one now() for both queries, so the lots add up to
     * the totals. */
    if (command(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", errstr, errstr_len))
        return -1;
    PGresult *totals =
        query(conn, "reading the balance", sql_balance_totals, 1, params, errstr, errstr_len);
    PGresult *lots =
        totals ? query(conn, "reading the lots", sql_balance_lots, 2, params, errstr, errstr_len)
               : NULL;
    int rc = lots ? command(conn, "COMMIT", errstr, errstr_len) : -1;
    if (rc == 0) {
        ASSERT(PQntuples(totals) == 1);
        fprintf(out, "balance of %s\n", safe_user);
        print_table(out, totals, "");
        fputc('\n', out);
        print_table(out, lots, "(no usable lots)");
        if (PQntuples(lots) >= ADMIN_ROWS_MAX)
            fprintf(out, "(only the first %d lots are shown)\n", ADMIN_ROWS_MAX);
    } else {
        PQclear(PQexec(conn, "ROLLBACK"));
    }
    PQclear(totals);
    PQclear(lots);
    return rc;
}

int admin_history(PGconn *conn, const char *user, int limit, FILE *out, char *errstr,
                  size_t errstr_len)
{
    ASSERT(conn && user && out && errstr);
    ASSERT(limit >= 1 && limit <= ADMIN_HISTORY_LIMIT_MAX);
    char limit_text[16];
    snprintf(limit_text, sizeof limit_text, "%d", limit);
    const char *params[2] = {user, limit_text};
    PGresult *res = query(conn, "reading the history", sql_history, 2, params, errstr, errstr_len);
    if (!res)
        return -1;
    print_table(out, res, "(no entries)");
    PQclear(res);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* plan, pack                                                               */
/* ------------------------------------------------------------------------ */

int admin_plan_set(PGconn *conn, const char *plan_id, int64_t monthly, bool has_cap, int64_t cap,
                   FILE *out, char *errstr, size_t errstr_len)
{
    ASSERT(conn && plan_id && out && errstr);
    char monthly_text[24];
    char cap_text[24];
    snprintf(monthly_text, sizeof monthly_text, "%" PRId64, monthly);
    snprintf(cap_text, sizeof cap_text, "%" PRId64, cap);
    const char *params[3] = {plan_id, monthly_text, has_cap ? cap_text : NULL};
    return query_table(conn, "saving the plan", sql_plan_set, 3, params, "", out, errstr,
                       errstr_len);
}

int admin_plan_list(PGconn *conn, FILE *out, char *errstr, size_t errstr_len)
{
    ASSERT(conn && out && errstr);
    char limit[16];
    snprintf(limit, sizeof limit, "%d", ADMIN_ROWS_MAX);
    const char *params[1] = {limit};
    return query_table(conn, "listing the plans", sql_plan_list, 1, params, "(no plans)", out,
                       errstr, errstr_len);
}

int admin_pack_set(PGconn *conn, const char *pack_id, int64_t credits, int64_t valid_days,
                   FILE *out, char *errstr, size_t errstr_len)
{
    ASSERT(conn && pack_id && out && errstr);
    char credits_text[24];
    char days_text[24];
    snprintf(credits_text, sizeof credits_text, "%" PRId64, credits);
    snprintf(days_text, sizeof days_text, "%" PRId64, valid_days);
    const char *params[3] = {pack_id, credits_text, days_text};
    return query_table(conn, "saving the pack", sql_pack_set, 3, params, "", out, errstr,
                       errstr_len);
}

int admin_pack_list(PGconn *conn, FILE *out, char *errstr, size_t errstr_len)
{
    ASSERT(conn && out && errstr);
    char limit[16];
    snprintf(limit, sizeof limit, "%d", ADMIN_ROWS_MAX);
    const char *params[1] = {limit};
    return query_table(conn, "listing the packs", sql_pack_list, 1, params, "(no packs)", out,
                       errstr, errstr_len);
}
