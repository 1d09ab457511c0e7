/*
 * migrate.c -- applies the embedded schemas/NNN_name.sql migrations, each once,
 * under a session advisory lock, recording each in credits.schema_migrations.
 * Blocking libpq on a connection the caller owns; no other I/O but `out`.
 */
#include "worker/ctl/migrate.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "worker/ctl/roles.h"

/* Versions are three digits (NNN_name.sql). */
#define MIGRATE_VERSION_MAX 999

/* The advisory lock key: "credmig1" as a big-endian 64-bit integer. Any
 * constant works as long as every creditsctl uses the same one. */
#define MIGRATE_LOCK_SQL "SELECT pg_advisory_lock(7165901439106639665)"
#define MIGRATE_UNLOCK_SQL "SELECT pg_advisory_unlock(7165901439106639665)"

/* SQL keeps its own layout. */
/* clang-format off */

/* Bounds the wait for a concurrent migrate; RESET restores the session's own
 * setting so that the migrations themselves run under it. */
static const char sql_set_lock_timeout[] =
    "SELECT set_config('lock_timeout', $1, false)";

static const char sql_tracking_table[] =
    "CREATE SCHEMA IF NOT EXISTS credits;\n"
    "CREATE TABLE IF NOT EXISTS credits.schema_migrations (\n"
    "    version    integer     PRIMARY KEY,\n"
    "    name       text        NOT NULL,\n"
    "    applied_at timestamptz NOT NULL DEFAULT now()\n"
    ")";

static const char sql_applied_versions[] =
    "SELECT version, name\n"
    "  FROM credits.schema_migrations\n"
    " ORDER BY version";

static const char sql_record_migration[] =
    "INSERT INTO credits.schema_migrations (version, name)\n"
    "VALUES ($1, $2)";

/* clang-format on */

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* The server's message for a failed result (or the connection's), one line. */
static void describe_failure(PGconn *conn, const PGresult *res, const char *what, char *errstr,
                             size_t errstr_len)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg || !msg[0])
        msg = PQerrorMessage(conn);
    snprintf(errstr, errstr_len, "%s: %s", what, msg && msg[0] ? msg : "unknown error");
    /* libpq messages end with a newline; the caller adds its own. */
    for (size_t n = strlen(errstr); n > 0 && errstr[n - 1] == '\n'; n--)
        errstr[n - 1] = '\0';
}

/* 1-based line of a 1-based character position in `sql` (ASCII migrations:
 * characters are bytes). 0 when unknown. */
static int line_of_position(const char *sql, const char *position)
{
    if (!position)
        return 0;
    long pos = strtol(position, NULL, 10);
    if (pos < 1)
        return 0;
    int line = 1;
    for (long i = 0; i < pos - 1 && sql[i] != '\0'; i++)
        if (sql[i] == '\n')
            line++;
    return line;
}

/* Runs one statement (or, without params, a script); 0 if it succeeded. */
static int run(PGconn *conn, const char *what, const char *sql, int nparams,
               const char *const *params, char *errstr, size_t errstr_len)
{
    ASSERT(conn && what && sql);
    ASSERT(nparams == 0 || params != NULL);
    PGresult *res = nparams == 0 ? PQexec(conn, sql)
                                 : PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        describe_failure(conn, res, what, errstr, errstr_len);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The migration lock                                                       */
/* ------------------------------------------------------------------------ */

static int lock_acquire(PGconn *conn, char *errstr, size_t errstr_len)
{
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%ds", MIGRATE_LOCK_WAIT_S);
    const char *params[1] = {timeout};
    if (run(conn, "setting lock_timeout", sql_set_lock_timeout, 1, params, errstr, errstr_len))
        return -1;
    PGresult *res = PQexec(conn, MIGRATE_LOCK_SQL);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "55P03") == 0)
            snprintf(errstr, errstr_len,
                     "another migrate has held the migration lock for over %d s; try again later",
                     MIGRATE_LOCK_WAIT_S);
        else
            describe_failure(conn, res, "taking the migration lock", errstr, errstr_len);
        rc = -1;
    }
    PQclear(res);
    if (rc == 0 &&
        run(conn, "resetting lock_timeout", "RESET lock_timeout", 0, NULL, errstr, errstr_len) != 0)
        rc = -1;
    return rc;
}

/* Best effort: a session lock also ends with the session, so a failure here
 * (a lost connection, most likely) loses nothing. */
static void lock_release(PGconn *conn)
{
    PQclear(PQexec(conn, MIGRATE_UNLOCK_SQL));
}

/* ------------------------------------------------------------------------ */
/* Applying                                                                 */
/* ------------------------------------------------------------------------ */

/* What credits.schema_migrations holds. Borrows from `res` (PQclear() it
 * with applied_free()). */
struct applied {
    PGresult *res;
    const char *name[MIGRATE_VERSION_MAX + 1]; /* NULL: version not applied */
    int newest;                                /* highest version recorded; 0: none */
};

static void applied_free(struct applied *a)
{
    PQclear(a->res);
    a->res = NULL;
}

static int load_applied(PGconn *conn, struct applied *a, char *errstr, size_t errstr_len)
{
    memset(a, 0, sizeof *a);
    a->res = PQexec(conn, sql_applied_versions);
    if (PQresultStatus(a->res) != PGRES_TUPLES_OK) {
        describe_failure(conn, a->res, "reading credits.schema_migrations", errstr, errstr_len);
        applied_free(a);
        return -1;
    }
    for (int i = 0; i < PQntuples(a->res); i++) {
        long v = strtol(PQgetvalue(a->res, i, 0), NULL, 10);
        if (v >= 1 && v <= MIGRATE_VERSION_MAX)
            a->name[v] = PQgetvalue(a->res, i, 1);
        if (v > a->newest && v <= INT32_MAX)
            a->newest = (int)v;
    }
    return 0;
}

/* A version recorded under another name means the database was migrated by
 * a different history of schemas/ (two branches both adding NNN, or a file
 * renamed): applying anything on top of it could be wrong, so stop. */
static int check_names(const struct applied *a, const struct migration *list, size_t count,
                       char *errstr, size_t errstr_len)
{
    for (size_t i = 0; i < count; i++) {
        const char *recorded = a->name[list[i].version];
        if (recorded && strcmp(recorded, list[i].name) != 0) {
            snprintf(errstr, errstr_len,
                     "version %d is recorded as %s, but this creditsctl's is %s: the database "
                     "was migrated from different schema files",
                     list[i].version, recorded, list[i].name);
            return -1;
        }
    }
    return 0;
}

static void describe_migration_failure(PGconn *conn, const PGresult *res, const struct migration *m,
                                       char *errstr, size_t errstr_len)
{
    char what[128];
    int line = line_of_position(m->sql, PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION));
    if (line > 0)
        snprintf(what, sizeof what, "migration %s failed at line %d", m->name, line);
    else
        snprintf(what, sizeof what, "migration %s failed", m->name);
    describe_failure(conn, res, what, errstr, errstr_len);
}

/* One migration and its tracking row in one transaction. */
static int apply_one(PGconn *conn, const struct migration *m, char *errstr, size_t errstr_len)
{
    ASSERT(m->version >= 1 && m->version <= MIGRATE_VERSION_MAX);
    ASSERT(m->name && m->sql);
    if (run(conn, "BEGIN", "BEGIN", 0, NULL, errstr, errstr_len) != 0)
        return -1;
    PGresult *res = PQexec(conn, m->sql);
    ExecStatusType st = PQresultStatus(res);
    /* EMPTY_QUERY: a file of comments only, which is harmless. */
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        describe_migration_failure(conn, res, m, errstr, errstr_len);
        PQclear(res);
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    PQclear(res);
    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[2] = {version, m->name};
    if (run(conn, "recording the migration", sql_record_migration, 2, params, errstr, errstr_len) !=
            0 ||
        run(conn, "committing the migration", "COMMIT", 0, NULL, errstr, errstr_len) != 0) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    return 0;
}

static void print_up_to_date(FILE *out, const struct applied *a, const struct migration *list,
                             size_t count)
{
    int known = count > 0 ? list[count - 1].version : 0;
    if (a->newest > known)
        fprintf(out, "schema up to date (version %d; this creditsctl knows up to %d)\n", a->newest,
                known);
    else
        fprintf(out, "schema up to date (version %d)\n", a->newest);
}

static int migrate_locked(PGconn *conn, const struct migration *list, size_t count, FILE *out,
                          char *errstr, size_t errstr_len)
{
    if (run(conn, "creating credits.schema_migrations", sql_tracking_table, 0, NULL, errstr,
            errstr_len) != 0)
        return -1;
    struct applied a;
    if (load_applied(conn, &a, errstr, errstr_len) != 0)
        return -1;
    int rc = check_names(&a, list, count, errstr, errstr_len);
    size_t applied = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (a.name[list[i].version])
            continue;
        rc = apply_one(conn, &list[i], errstr, errstr_len);
        if (rc == 0) {
            fprintf(out, "applied %s\n", list[i].name);
            fflush(out);
            applied++;
        }
    }
    if (rc == 0 && applied == 0)
        print_up_to_date(out, &a, list, count);
    applied_free(&a);
    return rc;
}

/* With the roles of schemas/roles.sql in place, every object belongs to
 * credits_owner: migrate as it (SET ROLE), or not at all. Without them,
 * migrate as whoever connects. */
static int become_owner(PGconn *conn, enum roles_state *roles, char *errstr, size_t errstr_len)
{
    if (roles_state_of(conn, roles, errstr, errstr_len) != 0)
        return -1;
    switch (*roles) {
    case ROLES_ABSENT:
        return 0;
    case ROLES_NOT_APPLIED:
        snprintf(errstr, errstr_len,
                 "the role " ROLES_OWNER " exists but may not create in this database: run "
                 "'creditsctl roles' on it first");
        return -1;
    case ROLES_NOT_MEMBER:
        snprintf(
            errstr, errstr_len,
            "the database has the roles of schemas/roles.sql: migrate as a member of " ROLES_OWNER
            " (GRANT " ROLES_OWNER " TO the role you log in as)");
        return -1;
    case ROLES_MEMBER:
        return roles_become_owner(conn, errstr, errstr_len);
    default:
        UNREACHABLE();
    }
    return -1;
}

int migrate_run_list(PGconn *conn, const struct migration *list, size_t count, FILE *out,
                     char *errstr, size_t errstr_len)
{
    ASSERT(conn && out && errstr && errstr_len > 0);
    ASSERT(count == 0 || list != NULL);
    for (size_t i = 0; i < count; i++) {
        ASSERT(list[i].version >= 1 && list[i].version <= MIGRATE_VERSION_MAX);
        ASSERT(i == 0 || list[i - 1].version < list[i].version);
    }
    errstr[0] = '\0';
    if (PQstatus(conn) != CONNECTION_OK) {
        describe_failure(conn, NULL, "not connected", errstr, errstr_len);
        return -1;
    }
    enum roles_state roles = ROLES_ABSENT;
    if (become_owner(conn, &roles, errstr, errstr_len) != 0)
        return -1;
    if (lock_acquire(conn, errstr, errstr_len) != 0)
        return -1;
    int rc = migrate_locked(conn, list, count, out, errstr, errstr_len);
    lock_release(conn);
    if (rc == 0 && roles == ROLES_MEMBER) {
        rc = roles_grant(conn, errstr, errstr_len);
        if (rc == 0)
            fprintf(out, "privileges set (schemas/grants.sql)\n");
    }
    return rc;
}

int migrate_run(PGconn *conn, FILE *out, char *errstr, size_t errstr_len)
{
    return migrate_run_list(conn, migrate_embedded, migrate_embedded_count, out, errstr,
                            errstr_len);
}
