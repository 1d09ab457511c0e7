/*
 * audit.c -- creditsctl audit: runs every check below in one REPEATABLE READ
 * READ ONLY transaction (one snapshot, so a running worker cannot make the
 * checks disagree), then prints one line per check with its count and up to
 * --examples rows of each failed one, and "audit: clean" or "audit: N
 * violations". Exit 0 clean, 1 violations or failure.
 *
 * Each check is a query returning the violating rows; the constraints of
 * schemas/001_ledger.sql hold some of these already, and are checked anyway
 * (a constraint can be dropped, a trigger disabled, a replica diverge).
 */
#include "worker/ctl/audit.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "worker/ctl/admin.h"
#include "worker/ctl/json_out.h"

/* ------------------------------------------------------------------------ */
/* The checks                                                               */
/* ------------------------------------------------------------------------ */

/* SQL keeps its own layout. */
/* clang-format off */

/* Contract section 5: 0 <= remaining <= granted (and granted > 0). */
static const char sql_lot_bounds[] =
    "SELECT lot_id, user_id, kind, granted, remaining\n"
    "  FROM credits.lots\n"
    " WHERE remaining < 0 OR remaining > granted OR granted <= 0\n"
    " ORDER BY lot_id";

/* Contract section 5: a lot's remaining equals the sum of its entries. */
static const char sql_lot_entries[] =
    "SELECT l.lot_id, l.user_id, l.remaining, coalesce(e.total, 0) AS entries_sum\n"
    "  FROM credits.lots AS l\n"
    "  LEFT JOIN (SELECT lot_id, sum(delta) AS total\n"
    "               FROM credits.entries\n"
    "              GROUP BY lot_id) AS e ON e.lot_id = l.lot_id\n"
    " WHERE l.remaining <> coalesce(e.total, 0)\n"
    " ORDER BY l.lot_id";

/* Contract section 5: a user's entries sum to the user's lots' remaining. */
static const char sql_user_entries[] =
    "SELECT user_id,\n"
    "       coalesce(l.remaining, 0) AS lots_remaining,\n"
    "       coalesce(e.total, 0) AS entries_sum\n"
    "  FROM (SELECT user_id, sum(remaining) AS remaining\n"
    "          FROM credits.lots\n"
    "         GROUP BY user_id) AS l\n"
    "  FULL JOIN (SELECT user_id, sum(delta) AS total\n"
    "               FROM credits.entries\n"
    "              GROUP BY user_id) AS e USING (user_id)\n"
    " WHERE coalesce(l.remaining, 0) <> coalesce(e.total, 0)\n"
    " ORDER BY user_id";

/* Every change is an entry of its lot's user. */
static const char sql_entry_user[] =
    "SELECT e.entry_id, e.lot_id, e.user_id AS entry_user, l.user_id AS lot_user\n"
    "  FROM credits.entries AS e\n"
    "  JOIN credits.lots AS l ON l.lot_id = e.lot_id\n"
    " WHERE e.user_id <> l.user_id\n"
    " ORDER BY e.entry_id";

/* Every entry references its lot (no foreign key: 002_checked_references.sql). */
static const char sql_missing_lot[] =
    "SELECT e.entry_id, e.user_id, e.lot_id\n"
    "  FROM credits.entries AS e\n"
    " WHERE NOT EXISTS (SELECT 1 FROM credits.lots AS l WHERE l.lot_id = e.lot_id)\n"
    " ORDER BY e.entry_id";

/* Every lot and entry references its job (no foreign key: 002_checked_references.sql). */
static const char sql_missing_job[] =
    "SELECT 'lot' AS row_kind, l.lot_id AS row_id, l.job_id\n"
    "  FROM credits.lots AS l\n"
    " WHERE NOT EXISTS (SELECT 1 FROM credits.jobs AS j WHERE j.job_id = l.job_id)\n"
    "UNION ALL\n"
    "SELECT 'entry', e.entry_id, e.job_id\n"
    "  FROM credits.entries AS e\n"
    " WHERE NOT EXISTS (SELECT 1 FROM credits.jobs AS j WHERE j.job_id = e.job_id)\n"
    " ORDER BY 1, 2";

/* A job changes only its own user's lots (expire entries included: they are
 * found while loading the job's user's lots). */
static const char sql_job_user[] =
    "SELECT 'lot' AS row_kind, l.lot_id AS row_id, l.user_id, j.job_id, j.user_id AS job_user\n"
    "  FROM credits.lots AS l\n"
    "  JOIN credits.jobs AS j ON j.job_id = l.job_id\n"
    " WHERE l.user_id <> j.user_id\n"
    "UNION ALL\n"
    "SELECT 'entry', e.entry_id, e.user_id, j.job_id, j.user_id\n"
    "  FROM credits.entries AS e\n"
    "  JOIN credits.jobs AS j ON j.job_id = e.job_id\n"
    " WHERE e.user_id <> j.user_id\n"
    " ORDER BY 1, 2";

/* Applied: no error. Rejected: one of the stored errors of its type
 * (contract section 3). */
static const char sql_job_status[] =
    "SELECT job_id, type, status, error\n"
    "  FROM credits.jobs\n"
    " WHERE (   (status = 'applied' AND error IS NULL)\n"
    "        OR (status = 'rejected' AND (type, error) IN (\n"
    "               ('consume', 'insufficient_credits'),\n"
    "               ('purchase', 'unknown_pack'),\n"
    "               ('purchase', 'duplicate_payment'),\n"
    "               ('allocate', 'unknown_plan'),\n"
    "               ('allocate', 'already_allocated'),\n"
    "               ('allocate', 'stale_period'),\n"
    "               ('hold', 'insufficient_credits'),\n"
    "               ('capture', 'unknown_hold'), ('capture', 'hold_closed'),\n"
    "               ('capture', 'hold_expired'), ('capture', 'capture_exceeds_hold'),\n"
    "               ('release', 'unknown_hold'), ('release', 'hold_closed'),\n"
    "               ('release', 'hold_expired'),\n"
    "               ('refund', 'unknown_charge'), ('refund', 'refund_exceeds_charge'),\n"
    "               ('revoke', 'unknown_payment'), ('revoke', 'already_revoked'),\n"
    "               ('cancel', 'no_plan')))\n"
    "       ) IS NOT TRUE\n"
    " ORDER BY job_id";

/* An applied purchase made exactly one pack lot. */
static const char sql_purchase_lots[] =
    "SELECT j.job_id, j.user_id, count(l.lot_id) AS pack_lots\n"
    "  FROM credits.jobs AS j\n"
    "  LEFT JOIN credits.lots AS l ON l.job_id = j.job_id AND l.kind = 'pack'\n"
    " WHERE j.type = 'purchase' AND j.status = 'applied'\n"
    " GROUP BY j.job_id, j.user_id\n"
    "HAVING count(l.lot_id) <> 1\n"
    " ORDER BY j.job_id";

/* An applied allocate made exactly one monthly lot. */
static const char sql_allocate_lots[] =
    "SELECT j.job_id, j.user_id, count(l.lot_id) AS monthly_lots\n"
    "  FROM credits.jobs AS j\n"
    "  LEFT JOIN credits.lots AS l ON l.job_id = j.job_id AND l.kind = 'monthly'\n"
    " WHERE j.type = 'allocate' AND j.status = 'applied'\n"
    " GROUP BY j.job_id, j.user_id\n"
    "HAVING count(l.lot_id) <> 1\n"
    " ORDER BY j.job_id";

/* Lots are made only by applied jobs of their kind: pack lots by purchases,
 * monthly lots by allocations, grant lots by grants. */
static const char sql_stray_lots[] =
    "SELECT l.lot_id, l.user_id, l.kind, l.job_id, j.type AS job_type, j.status AS job_status\n"
    "  FROM credits.lots AS l\n"
    "  JOIN credits.jobs AS j ON j.job_id = l.job_id\n"
    " WHERE j.status <> 'applied'\n"
    "    OR (l.kind, j.type) NOT IN (('pack', 'purchase'), ('monthly', 'allocate'),\n"
    "                               ('grant', 'grant'))\n"
    " ORDER BY l.lot_id";

/* Contract sections 5 and 9.4: what gives credits is positive (purchase,
 * allocate, grant, release, refund), what takes them negative (consume,
 * forfeit, expire, hold, revoke). */
static const char sql_entry_sign[] =
    "SELECT entry_id, user_id, kind, delta\n"
    "  FROM credits.entries\n"
    " WHERE (   (kind IN ('purchase', 'allocate', 'grant', 'release', 'refund') AND delta > 0)\n"
    "        OR (kind IN ('consume', 'forfeit', 'expire', 'hold', 'revoke') AND delta < 0)\n"
    "       ) IS NOT TRUE\n"
    " ORDER BY entry_id";

/* Each kind of entry fits its job and lot: a purchase, allocate or grant
 * entry is the grant of the lot its job made; consume and hold entries come
 * from their jobs; forfeits from allocations and cancellations, on monthly
 * lots; a release from a capture or release of the hold it names, or from
 * the hold itself (its expiry); a refund from a refund job; expiry on lots
 * that expire; a revocation on packs, by a revoke or after a give-back. A
 * rejected job changed nothing but expiry. */
static const char sql_entry_kind[] =
    "SELECT e.entry_id, e.kind, e.delta, e.job_id,\n"
    "       j.type AS job_type, j.status AS job_status, l.kind AS lot_kind\n"
    "  FROM credits.entries AS e\n"
    "  JOIN credits.jobs AS j ON j.job_id = e.job_id\n"
    "  JOIN credits.lots AS l ON l.lot_id = e.lot_id\n"
    " WHERE (CASE e.kind\n"
    "          WHEN 'purchase' THEN j.type = 'purchase' AND l.kind = 'pack'\n"
    "                               AND l.job_id = e.job_id AND e.delta = l.granted\n"
    "          WHEN 'allocate' THEN j.type = 'allocate' AND l.kind = 'monthly'\n"
    "                               AND l.job_id = e.job_id AND e.delta = l.granted\n"
    "          WHEN 'grant'    THEN j.type = 'grant' AND l.kind = 'grant'\n"
    "                               AND l.job_id = e.job_id AND e.delta = l.granted\n"
    "          WHEN 'consume'  THEN j.type = 'consume'\n"
    "          WHEN 'hold'     THEN j.type = 'hold'\n"
    "          WHEN 'forfeit'  THEN j.type IN ('allocate', 'cancel') AND l.kind = 'monthly'\n"
    "          WHEN 'release'  THEN EXISTS (SELECT 1 FROM credits.holds h\n"
    "                                        WHERE h.hold_id = e.origin\n"
    "                                          AND (h.hold_id = e.job_id\n"
    "                                               OR h.closed_by = e.job_id))\n"
    "          WHEN 'refund'   THEN j.type = 'refund' AND e.origin IS NOT NULL\n"
    "          WHEN 'expire'   THEN l.expires_at IS NOT NULL\n"
    "          WHEN 'revoke'   THEN l.kind = 'pack' AND l.revoked_at IS NOT NULL\n"
    "                               AND (j.type = 'revoke' OR e.origin IS NOT NULL)\n"
    "        END) IS NOT TRUE\n"
    "    OR (j.status = 'rejected' AND e.kind <> 'expire')\n"
    " ORDER BY e.entry_id";

/* Contract 9.4: every hold's hold entries took exactly its amount. */
static const char sql_hold_takes[] =
    "SELECT h.hold_id, h.user_id, h.amount, coalesce(-sum(e.delta), 0) AS taken\n"
    "  FROM credits.holds AS h\n"
    "  LEFT JOIN credits.entries AS e ON e.job_id = h.hold_id AND e.kind = 'hold'\n"
    " GROUP BY h.hold_id, h.user_id, h.amount\n"
    "HAVING coalesce(-sum(e.delta), 0) <> h.amount\n"
    " ORDER BY h.hold_id";

/* Contract 9.4: a closed hold's amount is what it charged plus what its
 * release entries gave back; an open hold has neither. */
static const char sql_hold_closing[] =
    "SELECT h.hold_id, h.user_id, h.status, h.amount, h.captured,\n"
    "       coalesce(r.released, 0) AS released\n"
    "  FROM credits.holds AS h\n"
    "  LEFT JOIN (SELECT origin, sum(delta) AS released\n"
    "               FROM credits.entries\n"
    "              WHERE kind = 'release'\n"
    "              GROUP BY origin) AS r ON r.origin = h.hold_id\n"
    " WHERE CASE h.status\n"
    "         WHEN 'open' THEN h.captured IS NOT NULL OR r.released IS NOT NULL\n"
    "         ELSE coalesce(h.captured, 0) + coalesce(r.released, 0) <> h.amount\n"
    "       END\n"
    " ORDER BY h.hold_id";

/* Contract 9.4: a charge's refunds never exceed what it spent (a consume's
 * consume entries; a capture's captured credits), and only an applied
 * consume or capture has refunds. */
static const char sql_refund_bound[] =
    "SELECT f.origin AS charge, f.refunded, j.type AS charge_type, j.status AS charge_status,\n"
    "       CASE j.type\n"
    "         WHEN 'consume' THEN (SELECT -sum(delta) FROM credits.entries\n"
    "                               WHERE job_id = j.job_id AND kind = 'consume')\n"
    "         WHEN 'capture' THEN (SELECT captured FROM credits.holds\n"
    "                               WHERE closed_by = j.job_id)\n"
    "       END AS spent\n"
    "  FROM (SELECT origin, sum(delta) AS refunded\n"
    "          FROM credits.entries\n"
    "         WHERE kind = 'refund'\n"
    "         GROUP BY origin) AS f\n"
    "  LEFT JOIN credits.jobs AS j ON j.job_id = f.origin\n"
    " WHERE j.status IS DISTINCT FROM 'applied'\n"
    "    OR j.type NOT IN ('consume', 'capture')\n"
    "    OR f.refunded > CASE j.type\n"
    "         WHEN 'consume' THEN (SELECT -sum(delta) FROM credits.entries\n"
    "                               WHERE job_id = j.job_id AND kind = 'consume')\n"
    "         WHEN 'capture' THEN (SELECT captured FROM credits.holds\n"
    "                               WHERE closed_by = j.job_id)\n"
    "       END\n"
    " ORDER BY f.origin";

/* Contract 9.4: a revoked lot holds no usable credits. */
static const char sql_revoked_lots[] =
    "SELECT lot_id, user_id, kind, remaining, revoked_at\n"
    "  FROM credits.lots\n"
    " WHERE revoked_at IS NOT NULL AND (remaining <> 0 OR kind <> 'pack')\n"
    " ORDER BY lot_id";

/* Every hold was opened by an applied hold job of its user. */
static const char sql_hold_job[] =
    "SELECT h.hold_id, h.user_id, j.type AS job_type, j.status AS job_status,\n"
    "       j.user_id AS job_user\n"
    "  FROM credits.holds AS h\n"
    "  LEFT JOIN credits.jobs AS j ON j.job_id = h.hold_id\n"
    " WHERE j.type IS DISTINCT FROM 'hold' OR j.status IS DISTINCT FROM 'applied'\n"
    "    OR j.user_id <> h.user_id\n"
    " ORDER BY h.hold_id";

/* Each lot has exactly one grant entry (purchase, allocate or grant). */
static const char sql_lot_grant[] =
    "SELECT l.lot_id, l.user_id, l.granted, count(e.entry_id) AS grant_entries\n"
    "  FROM credits.lots AS l\n"
    "  LEFT JOIN credits.entries AS e\n"
    "         ON e.lot_id = l.lot_id AND e.kind IN ('purchase', 'allocate', 'grant')\n"
    " GROUP BY l.lot_id, l.user_id, l.granted\n"
    "HAVING count(e.entry_id) <> 1\n"
    " ORDER BY l.lot_id";

/* Wraps a check: the total count of its rows on each row, then the first
 * $1 rows. (Window functions run before LIMIT.) */
static const char sql_check_wrapper[] =
    "SELECT count(*) OVER () AS violations, v.*\n"
    "  FROM (\n%s\n) AS v\n"
    " LIMIT $1";

static const char sql_begin[] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

static const char sql_snapshot_time[] =
    "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

/* clang-format on */

struct check {
    const char *name;
    const char *description; /* what a violating row is */
    const char *sql;
};

static const struct check checks[] = {
    {"lot_bounds", "lots with remaining outside 0..granted", sql_lot_bounds},
    {"lot_entries", "lots whose remaining is not the sum of their entries", sql_lot_entries},
    {"user_entries", "users whose entries do not sum to their lots' remaining", sql_user_entries},
    {"entry_user", "entries whose user is not their lot's user", sql_entry_user},
    {"missing_lot", "entries whose lot has no lots row", sql_missing_lot},
    {"missing_job", "lots and entries whose job has no jobs row", sql_missing_job},
    {"job_user", "lots and entries whose user is not their job's user", sql_job_user},
    {"job_status", "jobs whose status, error and type disagree", sql_job_status},
    {"purchase_lots", "applied purchase jobs without exactly one pack lot", sql_purchase_lots},
    {"allocate_lots", "applied allocate jobs without exactly one monthly lot", sql_allocate_lots},
    {"stray_lots", "lots not made by an applied job of their kind", sql_stray_lots},
    {"entry_sign", "entries whose sign does not fit their kind", sql_entry_sign},
    {"entry_kind", "entries whose kind does not fit their job or lot", sql_entry_kind},
    {"lot_grant", "lots without exactly one grant entry", sql_lot_grant},
    {"hold_takes", "holds whose hold entries did not take exactly their amount", sql_hold_takes},
    {"hold_closing", "holds whose capture and releases do not add up to their amount",
     sql_hold_closing},
    {"refund_bound", "charges refunded beyond what they spent, or not charges", sql_refund_bound},
    {"revoked_lots", "revoked lots that still hold credits", sql_revoked_lots},
    {"hold_job", "holds not opened by an applied hold job of their user", sql_hold_job},
};

#define CHECK_COUNT (sizeof checks / sizeof checks[0])
#define SQL_BYTES_MAX 4096

/* ------------------------------------------------------------------------ */
/* Running                                                                  */
/* ------------------------------------------------------------------------ */

/* What the snapshot said. */
struct audit {
    char snapshot_at[32];
    PGresult *results[CHECK_COUNT]; /* column 0: the total count */
    int64_t counts[CHECK_COUNT];
    int64_t violations;
};

static void audit_clear(struct audit *a)
{
    for (size_t i = 0; i < CHECK_COUNT; i++)
        PQclear(a->results[i]);
    memset(a, 0, sizeof *a);
}

/* Runs one check; its count and first `examples` rows into `a`. */
static int run_check(PGconn *conn, size_t i, int examples, struct audit *a, char *errstr,
                     size_t errstr_len)
{
    char sql[SQL_BYTES_MAX];
    int n = snprintf(sql, sizeof sql, sql_check_wrapper, checks[i].sql);
    ASSERT(n > 0 && (size_t)n < sizeof sql);
    /* At least one row, to carry the count. */
    char limit[16];
    snprintf(limit, sizeof limit, "%d", examples > 0 ? examples : 1);
    const char *params[1] = {limit};
    char what[64];
    snprintf(what, sizeof what, "check %s", checks[i].name);
    a->results[i] = admin_query(conn, what, sql, 1, params, errstr, errstr_len);
    if (!a->results[i])
        return -1;
    a->counts[i] =
        PQntuples(a->results[i]) > 0 ? strtoll(PQgetvalue(a->results[i], 0, 0), NULL, 10) : 0;
    a->violations += a->counts[i];
    return 0;
}

/* All checks in one snapshot. 0, or -1 with errstr (the transaction rolled
 * back). */
static int run_checks(PGconn *conn, int examples, struct audit *a, char *errstr, size_t errstr_len)
{
    if (admin_command(conn, sql_begin, errstr, errstr_len) != 0)
        return -1;
    PGresult *now =
        admin_query(conn, "reading the time", sql_snapshot_time, 0, NULL, errstr, errstr_len);
    if (!now) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    snprintf(a->snapshot_at, sizeof a->snapshot_at, "%s", PQgetvalue(now, 0, 0));
    PQclear(now);
    for (size_t i = 0; i < CHECK_COUNT; i++) {
        if (run_check(conn, i, examples, a, errstr, errstr_len) != 0) {
            PQclear(PQexec(conn, "ROLLBACK"));
            return -1;
        }
    }
    return admin_command(conn, "COMMIT", errstr, errstr_len);
}

/* ------------------------------------------------------------------------ */
/* The report                                                               */
/* ------------------------------------------------------------------------ */

static void print_report(FILE *out, const struct audit *a, int examples)
{
    int name_w = 0, count_w = 1;
    char count[24];
    for (size_t i = 0; i < CHECK_COUNT; i++) {
        int w = (int)strlen(checks[i].name);
        name_w = w > name_w ? w : name_w;
        w = snprintf(count, sizeof count, "%" PRId64, a->counts[i]);
        count_w = w > count_w ? w : count_w;
    }
    fprintf(out, "audit of the credits ledger, one snapshot at %s\n", a->snapshot_at);
    for (size_t i = 0; i < CHECK_COUNT; i++) {
        fprintf(out, "%-4s  %-*s  %*" PRId64 "  %s\n", a->counts[i] ? "FAIL" : "ok", name_w,
                checks[i].name, count_w, a->counts[i], checks[i].description);
        if (a->counts[i] == 0 || examples == 0)
            continue;
        admin_print_table(out, a->results[i], 1, "        ", "");
        if (a->counts[i] > examples)
            fprintf(out, "        (and %" PRId64 " more)\n", a->counts[i] - examples);
    }
    if (a->violations == 0)
        fputs("audit: clean\n", out);
    else
        fprintf(out, "audit: %" PRId64 " violations\n", a->violations);
}

static void print_report_json(FILE *out, const struct audit *a, int examples)
{
    struct json j;
    json_init(&j, out);
    json_object_begin(&j, NULL);
    json_str(&j, "snapshot_at", a->snapshot_at);
    json_bool(&j, "clean", a->violations == 0);
    json_int(&j, "violations", a->violations);
    json_array_begin(&j, "checks");
    for (size_t i = 0; i < CHECK_COUNT; i++) {
        json_object_begin(&j, NULL);
        json_str(&j, "name", checks[i].name);
        json_str(&j, "description", checks[i].description);
        json_int(&j, "violations", a->counts[i]);
        json_array_begin(&j, "examples");
        for (int r = 0; a->counts[i] > 0 && r < examples && r < PQntuples(a->results[i]); r++) {
            json_object_begin(&j, NULL);
            admin_json_members(&j, a->results[i], r, 1);
            json_object_end(&j);
        }
        json_array_end(&j);
        json_object_end(&j);
    }
    json_array_end(&j);
    json_object_end(&j);
    json_finish(&j);
}

/* ------------------------------------------------------------------------ */
/* The command                                                              */
/* ------------------------------------------------------------------------ */

/* audit [--examples N] [--json] */
static int cmd_audit(struct ctl *ctl, int argc, char **argv)
{
    const char *examples_text = NULL;
    bool json = false;
    const struct opt opts[] = {
        {"examples", &examples_text, NULL, false}, CTL_OPT_JSON(json), CTL_OPT_END};
    const char *const names[] = {NULL};
    int rc = ctl_parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    int64_t examples = AUDIT_EXAMPLES_DEFAULT;
    if (examples_text && ctl_flag_int64(ctl, "--examples", examples_text, 0, AUDIT_EXAMPLES_MAX,
                                        &examples) != CTL_OK)
        return CTL_USAGE;
    PGconn *conn = NULL;
    /* No statement timeout: a check reads whole tables. */
    rc = ctl_pg_open(ctl, false, &conn);
    if (rc != CTL_OK)
        return rc;
    struct audit a;
    memset(&a, 0, sizeof a);
    if (run_checks(conn, (int)examples, &a, ctl->errstr, sizeof ctl->errstr) != 0) {
        audit_clear(&a);
        return ctl_pg_done(ctl, conn, -1);
    }
    PQfinish(conn);
    if (json)
        print_report_json(stdout, &a, (int)examples);
    else
        print_report(stdout, &a, (int)examples);
    rc = a.violations == 0 ? CTL_OK : CTL_FAIL;
    audit_clear(&a);
    return rc;
}

/* clang-format off */
const struct command audit_command = {
    "audit", "check the ledger's invariants; exit 1 on any violation",
    "audit [--examples N] [--json]",
    "Checks the invariants of the ledger (contract section 5) in Postgres, all in\n"
    "one snapshot (a REPEATABLE READ transaction: safe while workers run), and\n"
    "prints one line per check with the number of rows that break it:\n\n"
    "  lot_bounds      lots with remaining outside 0..granted\n"
    "  lot_entries     lots whose remaining is not the sum of their entries\n"
    "  user_entries    users whose entries do not sum to their lots' remaining\n"
    "  entry_user      entries whose user is not their lot's user\n"
    "  missing_lot     entries whose lot has no lots row\n"
    "  missing_job     lots and entries whose job has no jobs row\n"
    "  job_user        lots and entries whose user is not their job's user\n"
    "  job_status      jobs whose status, error and type disagree\n"
    "  purchase_lots   applied purchase jobs without exactly one pack lot\n"
    "  allocate_lots   applied allocate jobs without exactly one monthly lot\n"
    "  stray_lots      lots not made by an applied job of their kind\n"
    "  entry_sign      entries whose sign does not fit their kind\n"
    "  entry_kind      entries whose kind does not fit their job or lot\n"
    "  lot_grant       lots without exactly one grant entry\n\n"
    "Each job ID is decided once by the primary key of credits.jobs. Ends with\n"
    "\"audit: clean\" (exit 0) or \"audit: N violations\" (exit 1); exit 1 also when\n"
    "the database cannot be read.\n\n"
    "  --examples N  rows shown per failed check, 0 to 1000 (default 5)\n" CTL_JSON_HELP,
    cmd_audit};
/* clang-format on */
