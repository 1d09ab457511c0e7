/*
 * creditsctl.c -- the operator's and developer's CLI of credits-worker: the
 * command table, the main help, and the small commands that only read or
 * write Postgres (migrate, roles, balance, history, plan, pack, account).
 *
 * The other commands live in their own modules: enqueue.c (one command per
 * job type, and result), audit.c, deadletters.c (dead), events.c,
 * schedule.c, console.c.
 * The shared machinery (arguments, exit codes, connections) is ctl.c's; the
 * SQL is admin.c's and migrate.c's; the job rules core/'s.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/assert.h"
#include "core/job.h"
#include "worker/ctl/admin.h"
#include "worker/ctl/audit.h"
#include "worker/ctl/console.h"
#include "worker/ctl/ctl.h"
#include "worker/ctl/deadletters.h"
#include "worker/ctl/enqueue.h"
#include "worker/ctl/events.h"
#include "worker/ctl/migrate.h"
#include "worker/ctl/roles.h"
#include "worker/ctl/schedule.h"

#ifndef CREDITS_VERSION
#define CREDITS_VERSION "dev"
#endif

/* ------------------------------------------------------------------------ */
/* migrate, balance, history                                                */
/* ------------------------------------------------------------------------ */

/* migrate */
static int cmd_migrate(struct ctl *ctl, int argc, char **argv)
{
    const struct opt opts[] = {CTL_OPT_END};
    const char *const names[] = {NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    PGconn *conn = NULL;
    /* No statement timeout: a migration may rightly take long. */
    rc = ctl_pg_open(ctl, false, &conn);
    if (rc != CTL_OK)
        return rc;
    return ctl_pg_done(ctl, conn, migrate_run(conn, stdout, ctl->errstr, sizeof ctl->errstr));
}

/* roles */
static int cmd_roles(struct ctl *ctl, int argc, char **argv)
{
    const struct opt opts[] = {CTL_OPT_END};
    const char *const names[] = {NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    PGconn *conn = NULL;
    rc = ctl_pg_open(ctl, true, &conn);
    if (rc != CTL_OK)
        return rc;
    return ctl_pg_done(ctl, conn, roles_apply(conn, stdout, ctl->errstr, sizeof ctl->errstr));
}

/* The arguments USER [--json] of a read about one user, checked, and a
 * read-only connection for it: CTL_CONTINUE, or the exit status. */
static int user_read_open(struct ctl *ctl, int argc, char **argv, const char **user, bool *json,
                          PGconn **conn)
{
    const struct opt opts[] = {CTL_OPT_JSON(*json), CTL_OPT_END};
    const char *const names[] = {"USER", NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, user);
    if (rc != CTL_CONTINUE)
        return rc;
    if (ctl_check_user(ctl, *user) != CTL_OK)
        return CTL_USAGE;
    rc = ctl_pg_open(ctl, true, conn);
    return rc == CTL_OK ? CTL_CONTINUE : rc;
}

/* balance USER [--json] */
static int cmd_balance(struct ctl *ctl, int argc, char **argv)
{
    bool json = false;
    const char *user = NULL;
    PGconn *conn = NULL;
    int rc = user_read_open(ctl, argc, argv, &user, &json, &conn);
    if (rc != CTL_CONTINUE)
        return rc;
    return ctl_pg_done(ctl, conn,
                       admin_balance(conn, user, json, stdout, ctl->errstr, sizeof ctl->errstr));
}

/* history USER [--limit N] [--per-lot] [--json] */
static int cmd_history(struct ctl *ctl, int argc, char **argv)
{
    const char *limit_text = NULL;
    bool per_lot = false;
    bool json = false;
    const struct opt opts[] = {{"limit", &limit_text, NULL, false},
                               {"per-lot", NULL, &per_lot, false},
                               CTL_OPT_JSON(json),
                               CTL_OPT_END};
    const char *const names[] = {"USER", NULL};
    const char *user = NULL;
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, &user);
    if (rc != CTL_CONTINUE)
        return rc;
    int64_t limit = ADMIN_HISTORY_LIMIT_DEFAULT;
    if (limit_text &&
        ctl_flag_int64(ctl, "--limit", limit_text, 1, ADMIN_HISTORY_LIMIT_MAX, &limit) != CTL_OK)
        return CTL_USAGE;
    if (ctl_check_user(ctl, user) != CTL_OK)
        return CTL_USAGE;
    PGconn *conn = NULL;
    rc = ctl_pg_open(ctl, true, &conn);
    if (rc != CTL_OK)
        return rc;
    return ctl_pg_done(ctl, conn,
                       admin_history(conn, user, (int)limit, per_lot, json, stdout, ctl->errstr,
                                     sizeof ctl->errstr));
}

/* ------------------------------------------------------------------------ */
/* plan, pack                                                               */
/* ------------------------------------------------------------------------ */

/* The value of --low-balance: "none" (*has false), or a threshold from 1
 * to ADMIN_LOW_BALANCE_MAX. Checked here rather than left to the table's
 * CHECK, so that a bad one is a usage error (exit 2) like any bad flag. */
static int parse_low_balance(const struct ctl *ctl, const char *text, bool *has, int64_t *credits)
{
    ASSERT(text != NULL);
    *has = false;
    *credits = 0;
    if (strcmp(text, "none") == 0)
        return CTL_OK;
    struct opt_error error;
    if (!opt_int64("--low-balance", text, 1, ADMIN_LOW_BALANCE_MAX, credits, &error))
        return ctl_usage_error(ctl,
                               "--low-balance must be a whole number from 1 to %lld, or none "
                               "(got \"%s\")",
                               (long long)ADMIN_LOW_BALANCE_MAX, text);
    *has = true;
    return CTL_OK;
}

/* plan set ID --monthly N [--cap N] [--low-balance N] [--json] */
static int plan_set(struct ctl *ctl, int argc, char **argv)
{
    const char *monthly_text = NULL, *cap_text = NULL, *low_text = NULL;
    bool json = false;
    const struct opt opts[] = {{"monthly", &monthly_text, NULL, true},
                               {"cap", &cap_text, NULL, false},
                               {"low-balance", &low_text, NULL, false},
                               CTL_OPT_JSON(json),
                               CTL_OPT_END};
    const char *const names[] = {"ID", NULL};
    const char *id = NULL;
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, &id);
    if (rc != CTL_CONTINUE)
        return rc;
    struct admin_plan plan = {.has_cap = cap_text != NULL};
    if (ctl_flag_int64(ctl, "--monthly", monthly_text, INT64_MIN, INT64_MAX, &plan.monthly) !=
            CTL_OK ||
        (cap_text &&
         ctl_flag_int64(ctl, "--cap", cap_text, INT64_MIN, INT64_MAX, &plan.cap) != CTL_OK) ||
        (low_text &&
         parse_low_balance(ctl, low_text, &plan.has_low_balance, &plan.low_balance) != CTL_OK))
        return CTL_USAGE;
    PGconn *conn = NULL;
    rc = ctl_pg_open(ctl, true, &conn);
    if (rc != CTL_OK)
        return rc;
    return ctl_pg_done(
        ctl, conn, admin_plan_set(conn, id, &plan, json, stdout, ctl->errstr, sizeof ctl->errstr));
}

/* pack set ID --credits N [--valid-days D] [--json] */
static int pack_set(struct ctl *ctl, int argc, char **argv)
{
    const char *credits_text = NULL, *days_text = NULL;
    bool json = false;
    const struct opt opts[] = {{"credits", &credits_text, NULL, true},
                               {"valid-days", &days_text, NULL, false},
                               CTL_OPT_JSON(json),
                               CTL_OPT_END};
    const char *const names[] = {"ID", NULL};
    const char *id = NULL;
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, &id);
    if (rc != CTL_CONTINUE)
        return rc;
    int64_t credits = 0, days = ADMIN_PACK_VALID_DAYS_DEFAULT;
    if (ctl_flag_int64(ctl, "--credits", credits_text, INT64_MIN, INT64_MAX, &credits) != CTL_OK ||
        (days_text &&
         ctl_flag_int64(ctl, "--valid-days", days_text, INT64_MIN, INT64_MAX, &days) != CTL_OK))
        return CTL_USAGE;
    PGconn *conn = NULL;
    rc = ctl_pg_open(ctl, true, &conn);
    if (rc != CTL_OK)
        return rc;
    return ctl_pg_done(
        ctl, conn,
        admin_pack_set(conn, id, credits, days, json, stdout, ctl->errstr, sizeof ctl->errstr));
}

/* plan list, pack list [--json] */
static int catalog_list(struct ctl *ctl, int argc, char **argv, bool plans)
{
    bool json = false;
    const struct opt opts[] = {CTL_OPT_JSON(json), CTL_OPT_END};
    const char *const names[] = {NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    PGconn *conn = NULL;
    rc = ctl_pg_open(ctl, true, &conn);
    if (rc != CTL_OK)
        return rc;
    int query_rc = plans ? admin_plan_list(conn, json, stdout, ctl->errstr, sizeof ctl->errstr)
                         : admin_pack_list(conn, json, stdout, ctl->errstr, sizeof ctl->errstr);
    return ctl_pg_done(ctl, conn, query_rc);
}

static int plan_list(struct ctl *ctl, int argc, char **argv)
{
    return catalog_list(ctl, argc, argv, true);
}

static int pack_list(struct ctl *ctl, int argc, char **argv)
{
    return catalog_list(ctl, argc, argv, false);
}

/* Help texts keep their own layout. */
/* clang-format off */
static const struct command plan_subcommands[] = {
    {"set", "create or replace a plan",
     "plan set ID --monthly N [--cap N] [--low-balance N] [--json]",
     "Creates or replaces a plan and prints it. The whole plan: an option left\n"
     "out takes its default, whatever the plan had before.\n\n"
     "  --monthly N      credits allocated each month\n"
     "  --cap N          the rollover cap: most monthly credits a user can hold\n"
     "                   (default: 2 * monthly)\n"
     "  --low-balance N  the threshold of the events balance_low and\n"
     "                   balance_recovered of the plan's users, 1 to\n"
     "                   1000000000000 (default, or 'none': no threshold); an\n"
     "                   account's own ('creditsctl account set') wins over it\n" CTL_JSON_HELP,
     plan_set},
    {"list", "print the plans", "plan list [--json]",
     "Prints every plan of the catalog (at most 1000).\n\n" CTL_JSON_HELP,
     plan_list},
};

static const struct command pack_subcommands[] = {
    {"set", "create or replace a pack", "pack set ID --credits N [--valid-days D] [--json]",
     "Creates or replaces a pack and prints it.\n\n"
     "  --credits N      credits a purchase of the pack grants\n"
     "  --valid-days D   days until they expire (default 90)\n" CTL_JSON_HELP,
     pack_set},
    {"list", "print the packs", "pack list [--json]",
     "Prints every pack of the catalog (at most 1000).\n\n" CTL_JSON_HELP,
     pack_list},
};
/* clang-format on */

static int cmd_plan(struct ctl *ctl, int argc, char **argv)
{
    return ctl_run_subcommand(ctl, plan_subcommands,
                              sizeof plan_subcommands / sizeof plan_subcommands[0], argc, argv);
}

static int cmd_pack(struct ctl *ctl, int argc, char **argv)
{
    return ctl_run_subcommand(ctl, pack_subcommands,
                              sizeof pack_subcommands / sizeof pack_subcommands[0], argc, argv);
}

/* ------------------------------------------------------------------------ */
/* account                                                                  */
/* ------------------------------------------------------------------------ */

/* account set USER --low-balance N|none [--json] */
static int account_set(struct ctl *ctl, int argc, char **argv)
{
    const char *low_text = NULL;
    bool json = false;
    const struct opt opts[] = {
        {"low-balance", &low_text, NULL, true}, CTL_OPT_JSON(json), CTL_OPT_END};
    const char *const names[] = {"USER", NULL};
    const char *user = NULL;
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, &user);
    if (rc != CTL_CONTINUE)
        return rc;
    bool has_low = false;
    int64_t low = 0;
    if (ctl_check_user(ctl, user) != CTL_OK ||
        parse_low_balance(ctl, low_text, &has_low, &low) != CTL_OK)
        return CTL_USAGE;
    PGconn *conn = NULL;
    rc = ctl_pg_open(ctl, true, &conn);
    if (rc != CTL_OK)
        return rc;
    return ctl_pg_done(
        ctl, conn,
        admin_account_set(conn, user, has_low, low, json, stdout, ctl->errstr, sizeof ctl->errstr));
}

/* account show USER [--json] */
static int account_show(struct ctl *ctl, int argc, char **argv)
{
    bool json = false;
    const char *user = NULL;
    PGconn *conn = NULL;
    int rc = user_read_open(ctl, argc, argv, &user, &json, &conn);
    if (rc != CTL_CONTINUE)
        return rc;
    return ctl_pg_done(
        ctl, conn, admin_account_show(conn, user, json, stdout, ctl->errstr, sizeof ctl->errstr));
}

#define ACCOUNT_COLUMNS_HELP                                                                       \
    "Its columns: user, plan (of the latest allocation), low_balance (its own\n"                   \
    "threshold), plan_low_balance (its plan's) and threshold: the one the worker\n"                \
    "uses for the events balance_low and balance_recovered (its own, else its\n"                   \
    "plan's, else none).\n\n"

/* clang-format off */
static const struct command account_subcommands[] = {
    {"set", "set or clear an account's low-balance threshold",
     "account set USER --low-balance N|none [--json]",
     "Sets the account's own threshold of the events balance_low and\n"
     "balance_recovered, which wins over its plan's; 'none' clears it (the plan's\n"
     "applies again). Creates the account, without a plan, when the user has none\n"
     "yet, as the worker does at a user's first job. Prints the account.\n"
     ACCOUNT_COLUMNS_HELP
     "  --low-balance N   1 to 1000000000000, or none\n" CTL_JSON_HELP,
     account_set},
    {"show", "print an account and its thresholds", "account show USER [--json]",
     "Prints the account. Exit 1 when the user has none.\n" ACCOUNT_COLUMNS_HELP CTL_JSON_HELP,
     account_show},
};
/* clang-format on */

static int cmd_account(struct ctl *ctl, int argc, char **argv)
{
    return ctl_run_subcommand(ctl, account_subcommands,
                              sizeof account_subcommands / sizeof account_subcommands[0], argc,
                              argv);
}

/* ------------------------------------------------------------------------ */
/* The command table, help, main                                            */
/* ------------------------------------------------------------------------ */

/* clang-format off */
static const struct command migrate_command = {
    "migrate", "create or upgrade the credits schema in Postgres", "migrate",
    "Applies the migrations built into this creditsctl (schemas/NNN_name.sql), each\n"
    "once and in its own transaction, recording them in credits.schema_migrations.\n"
    "Safe to run again, and concurrently (runs take turns).\n",
    cmd_migrate};

static const struct command roles_command = {
    "roles", "create the database roles and set their privileges", "roles",
    "Applies schemas/roles.sql (built into this creditsctl): the NOLOGIN roles\n"
    "credits_owner (owns the schema; 'creditsctl migrate' runs as a member of it),\n"
    "credits_worker (what credits-worker needs, no more) and credits_reader (reads\n"
    "the schema), their CONNECT on this database, and, for a schema migrated\n"
    "before, its hand-over to credits_owner. Then, when the schema exists and this\n"
    "role may act as credits_owner, schemas/grants.sql (migrate applies it too).\n"
    "Run it as a role with CREATEROLE that owns the database, or as a superuser.\n"
    "Safe to run again.\n",
    cmd_roles};

static const struct command balance_command = {
    "balance", "print a user's usable credits, lots and open holds", "balance USER [--json]",
    "Prints the user's balance as the web app reads it (credits.balances): the\n"
    "usable credits (total, pack, monthly, grant), the credits held by open\n"
    "holds, and the next expiry; then the usable lots in the order they are\n"
    "spent, and the open holds with their expiry. Read from Postgres.\n\n" CTL_JSON_HELP,
    cmd_balance};

static const struct command history_command = {
    "history", "print a user's history, one line per job, newest first",
    "history USER [--limit N] [--per-lot] [--json]",
    "Prints the user's history, newest first: one line per job that changed\n"
    "the user's lots, with its net change (credits.history), as the web app's\n"
    "history page shows it. Read from Postgres.\n\n"
    "  --limit N     how many lines, 1 to 1000 (default 20)\n"
    "  --per-lot     one line per ledger entry instead: what each lot gained or\n"
    "                lost, and for a give-back the charge or hold it gives back\n" CTL_JSON_HELP,
    cmd_history};

static const struct command plan_command = {
    "plan", "set or list the plans of the catalog",
    "plan set ID --monthly N [--cap N] [--low-balance N] [--json]\n"
    "       creditsctl plan list [--json]",
    "'plan set' creates or replaces a plan; 'plan list' prints them all.\n"
    "See 'creditsctl plan set --help' and 'creditsctl plan list --help'.\n",
    cmd_plan};

static const struct command account_command = {
    "account", "set or show an account's low-balance threshold",
    "account set USER --low-balance N|none [--json]\n"
    "       creditsctl account show USER [--json]",
    "'account set' sets or clears the account's own low-balance threshold;\n"
    "'account show' prints the account and its thresholds.\n"
    "See 'creditsctl account set --help' and 'creditsctl account show --help'.\n",
    cmd_account};

static const struct command pack_command = {
    "pack", "set or list the packs of the catalog",
    "pack set ID --credits N [--valid-days D] [--json]\n"
    "       creditsctl pack list [--json]",
    "'pack set' creates or replaces a pack; 'pack list' prints them all.\n"
    "See 'creditsctl pack set --help' and 'creditsctl pack list --help'.\n",
    cmd_pack};
/* clang-format on */

/* Every command, in the order the help lists them: migrate, one per job type
 * (built from the job type table), then the rest. */
#define COMMANDS_MAX (JOB_TYPE_COUNT + 16)

struct commands {
    struct enqueue_job_command jobs[JOB_TYPE_COUNT];
    const struct command *all[COMMANDS_MAX];
    size_t count;
};

static void commands_init(struct commands *c)
{
    static const struct command *const after_jobs[] = {
        &enqueue_result_command, &balance_command, &history_command,  &plan_command, &pack_command,
        &account_command,        &events_command,  &schedule_command, &dead_command, &audit_command,
        &console_command,
    };
    c->count = 0;
    c->all[c->count++] = &migrate_command;
    c->all[c->count++] = &roles_command;
    for (unsigned t = 0; t < JOB_TYPE_COUNT; t++) {
        enqueue_job_command_init(&c->jobs[t], (enum job_type)t);
        c->all[c->count++] = &c->jobs[t].command;
    }
    for (size_t i = 0; i < sizeof after_jobs / sizeof after_jobs[0]; i++) {
        ASSERT(c->count < COMMANDS_MAX);
        c->all[c->count++] = after_jobs[i];
    }
}

static void print_command_list(const struct commands *c, FILE *out)
{
    fputs("Commands:\n", out);
    for (size_t i = 0; i < c->count; i++)
        fprintf(out, "  %-10s %s\n", c->all[i]->name, c->all[i]->summary);
}

static void print_main_help(const struct commands *c, FILE *out)
{
    fputs("usage: creditsctl COMMAND [OPTIONS]\n"
          "       creditsctl --help | --version\n\n"
          "The operator's tool of credits-worker (contract v1).\n\n",
          out);
    print_command_list(c, out);
    fputs("\n'creditsctl COMMAND --help' describes a command. Commands that print data\n"
          "take --json: one JSON document on one line, for scripts.\n\n"
          "Settings, from the environment (creditsctl reads CREDITS_REDIS_URL,\n"
          "CREDITS_DATABASE_URL and CREDITS_PREFIX):\n",
          out);
    config_print_help(out);
    fputs("\nExit status: 0 done; 1 failed (cannot connect, database error, timeout,\n"
          "audit found violations); 2 usage error or a bad setting.\n",
          out);
}

static const struct command *find_command(const struct commands *c, const char *name)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->all[i]->name, name) == 0)
            return c->all[i];
    return NULL;
}

int main(int argc, char **argv)
{
    struct commands commands;
    commands_init(&commands);
    if (argc < 2) {
        fputs("usage: creditsctl COMMAND [OPTIONS]\n\n", stderr);
        print_command_list(&commands, stderr);
        return CTL_USAGE;
    }
    if (ctl_is_help(argv[1])) {
        print_main_help(&commands, stdout);
        return CTL_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("creditsctl %s (contract v%d)\n", CREDITS_VERSION, JOB_VERSION);
        return CTL_OK;
    }
    const struct command *command = find_command(&commands, argv[1]);
    if (!command) {
        fprintf(stderr, "creditsctl: unknown command '%s'\n\n", argv[1]);
        print_command_list(&commands, stderr);
        return CTL_USAGE;
    }
    struct ctl ctl;
    memset(&ctl, 0, sizeof ctl);
    ctl.command = command;
    snprintf(ctl.name, sizeof ctl.name, "%s", command->name);
    int rc = command->run(&ctl, argc - 2, argv + 2);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "creditsctl: cannot write the output: %s\n", strerror(errno));
        return CTL_FAIL;
    }
    return rc;
}
