/*
 * migrate.h -- `creditsctl migrate`: applies the numbered SQL files of
 * schemas/ (embedded into the binary at build time) to Postgres, each once.
 *
 * Owns the tracking table credits.schema_migrations and the migration lock.
 * Does not own the migrations themselves (schemas/NNN_name.sql) or the
 * connection (the caller's, blocking libpq).
 */
#ifndef CREDITS_WORKER_CTL_MIGRATE_H
#define CREDITS_WORKER_CTL_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>

/* One file schemas/NNN_name.sql. */
struct migration {
    int version;      /* NNN, >= 1 */
    const char *name; /* "NNN_name", the file name without ".sql" */
    const char *sql;  /* the file's text; no transaction control in it */
};

/* The embedded migrations, by version ascending, versions unique. Generated
 * from schemas/ by cmake/embed_migrations.cmake into migrations.c. */
extern const struct migration migrate_embedded[];
extern const size_t migrate_embedded_count;

/*
 * Brings the database up to the newest embedded migration. When the roles
 * of schemas/roles.sql exist, runs as credits_owner (SET ROLE; a session
 * that may not is refused) and applies schemas/grants.sql afterwards,
 * printing "privileges set (schemas/grants.sql)". Holds a session
 * advisory lock for the whole run, so concurrent runs serialize (waits at
 * most MIGRATE_LOCK_WAIT_S for it). Creates schema credits and
 * credits.schema_migrations if missing, then applies each migration not yet
 * recorded there, in its own transaction together with its tracking row.
 * Prints "applied NNN_name" per migration, or "schema up to date (version N)"
 * when there was nothing to do. `conn` is borrowed until return and must be
 * idle (no transaction open). 0, or -1 with a message for people in errstr;
 * on failure the migrations applied before the failing one stay applied.
 */
int migrate_run(PGconn *conn, FILE *out, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Same, with an explicit list (tests); `list` borrowed until return. */
int migrate_run_list(PGconn *conn, const struct migration *list, size_t count, FILE *out,
                     char *errstr, size_t errstr_len) __attribute__((warn_unused_result));

#define MIGRATE_LOCK_WAIT_S 120

#endif
