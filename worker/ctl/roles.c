/*
 * roles.c -- applies schemas/roles.sql and schemas/grants.sql (roles.h), each
 * in one transaction, on a connection the caller owns. No other I/O but
 * `out`.
 */
#include "worker/ctl/roles.h"

#include <stdbool.h>
#include <string.h>

#include "core/assert.h"

/* SQL keeps its own layout. */
/* clang-format off */

/* One row: the state (enum roles_state's number) and whether schema credits
 * exists. pg_has_role(session_user, ...): SET ROLE is allowed by the login
 * role's memberships, whatever the current role. */
static const char sql_state[] =
    "SELECT CASE\n"
    "         WHEN to_regrole('" ROLES_OWNER "') IS NULL THEN 0\n"
    "         WHEN NOT has_database_privilege('" ROLES_OWNER "', current_database(), 'CREATE')\n"
    "           THEN 1\n"
    "         WHEN NOT pg_has_role(session_user, '" ROLES_OWNER "', 'MEMBER') THEN 2\n"
    "         ELSE 3\n"
    "       END,\n"
    "       to_regnamespace('credits') IS NOT NULL";

/* clang-format on */

_Static_assert(ROLES_ABSENT == 0 && ROLES_NOT_APPLIED == 1 && ROLES_NOT_MEMBER == 2 &&
                   ROLES_MEMBER == 3,
               "sql_state's numbers are the enum's");

/* The server's message, one line, with a hint for a missing privilege. */
static void describe_failure(PGconn *conn, const PGresult *res, const char *what, char *errstr,
                             size_t errstr_len)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!msg || !msg[0])
        msg = PQerrorMessage(conn);
    bool privilege = state && strcmp(state, "42501") == 0;
    snprintf(errstr, errstr_len, "%s: %s%s", what, msg && msg[0] ? msg : "unknown error",
             privilege ? " (this needs a role with CREATEROLE that owns the database, or a "
                         "superuser; an existing schema is handed over by a superuser or a "
                         "member of its owner)"
                       : "");
    for (size_t n = strlen(errstr); n > 0 && errstr[n - 1] == '\n'; n--)
        errstr[n - 1] = '\0';
}

/* Runs `sql` (one statement, or a script); 0 if it succeeded. */
static int run(PGconn *conn, const char *what, const char *sql, char *errstr, size_t errstr_len)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        describe_failure(conn, res, what, errstr, errstr_len);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

/* BEGIN, the statements, COMMIT; ROLLBACK on failure. `set_role`: the
 * script runs as credits_owner (SET LOCAL: the session's role comes back at
 * COMMIT). */
static int run_in_transaction(PGconn *conn, const char *what, const char *script, bool set_role,
                              char *errstr, size_t errstr_len)
{
    if (run(conn, what, "BEGIN", errstr, errstr_len) != 0)
        return -1;
    if ((set_role && run(conn, what, "SET LOCAL ROLE " ROLES_OWNER, errstr, errstr_len) != 0) ||
        run(conn, what, script, errstr, errstr_len) != 0 ||
        run(conn, what, "COMMIT", errstr, errstr_len) != 0) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    return 0;
}

static int query_state(PGconn *conn, enum roles_state *state, bool *schema_exists, char *errstr,
                       size_t errstr_len)
{
    PGresult *res = PQexec(conn, sql_state);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 2) {
        describe_failure(conn, res, "reading the database roles", errstr, errstr_len);
        PQclear(res);
        return -1;
    }
    int value = PQgetvalue(res, 0, 0)[0] - '0';
    ASSERT(value >= ROLES_ABSENT && value <= ROLES_MEMBER);
    *state = (enum roles_state)value;
    *schema_exists = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);
    return 0;
}

int roles_state_of(PGconn *conn, enum roles_state *state, char *errstr, size_t errstr_len)
{
    ASSERT(conn && state && errstr);
    bool schema_exists = false;
    return query_state(conn, state, &schema_exists, errstr, errstr_len);
}

int roles_become_owner(PGconn *conn, char *errstr, size_t errstr_len)
{
    ASSERT(conn && errstr);
    return run(conn, "switching to " ROLES_OWNER, "SET ROLE " ROLES_OWNER, errstr, errstr_len);
}

int roles_grant(PGconn *conn, char *errstr, size_t errstr_len)
{
    ASSERT(conn && errstr);
    return run_in_transaction(conn, "applying schemas/grants.sql", grants_sql, true, errstr,
                              errstr_len);
}

int roles_apply(PGconn *conn, FILE *out, char *errstr, size_t errstr_len)
{
    ASSERT(conn && out && errstr);
    if (run_in_transaction(conn, "applying schemas/roles.sql", roles_sql, false, errstr,
                           errstr_len) != 0)
        return -1;
    fprintf(out, "roles credits_owner, credits_worker and credits_reader in place\n");
    enum roles_state state = ROLES_ABSENT;
    bool schema_exists = false;
    if (query_state(conn, &state, &schema_exists, errstr, errstr_len) != 0)
        return -1;
    ASSERT(state != ROLES_ABSENT && state != ROLES_NOT_APPLIED);
    if (!schema_exists) {
        fprintf(out, "no schema credits yet: run 'creditsctl migrate' as a member of "
                     "credits_owner; it creates the schema and sets the privileges\n");
        return 0;
    }
    if (state != ROLES_MEMBER) {
        fprintf(out, "privileges on the schema's objects: set by the next 'creditsctl migrate', "
                     "run as a member of credits_owner\n");
        return 0;
    }
    if (roles_grant(conn, errstr, errstr_len) != 0)
        return -1;
    fprintf(out, "privileges set (schemas/grants.sql)\n");
    return 0;
}
