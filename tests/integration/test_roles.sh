#!/usr/bin/env bash
# test_roles.sh -- least privilege in PostgreSQL (schemas/roles.sql,
# schemas/grants.sql): `creditsctl roles` run by a database owner with
# CREATEROLE (no superuser), migrate as a member of credits_owner, the
# worker deciding every v1 job type as a member of credits_worker only,
# credits_reader unable to write, the catalog changed as the owner and
# refused clearly to the reader, the grants kept exact by every migrate and
# extended to the tables a later migration adds, and an existing schema
# handed over to credits_owner.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"

SERVER="host=127.0.0.1 port=$CREDITS_TEST_PG_PORT"
LEDGER="$SERVER dbname=ledger"
LEGACY="$SERVER dbname=legacy"
as_super() { psql "$SERVER user=postgres dbname=${2:-ledger}" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
# as_role ROLE SQL -- runs SQL as ROLE in ledger; prints the error, if any.
as_role() { psql "$LEDGER user=$1" -XAtq -v ON_ERROR_STOP=1 -c "$2" 2>&1 || true; }
# ctl_as ROLE ARGS... -- creditsctl with CREDITS_DATABASE_URL logging in as ROLE.
ctl_as() {
    local role=$1
    shift
    CREDITS_DATABASE_URL="$LEDGER user=$role" ctl "$@"
}

# A schema migrated before the roles existed, by a role of its own.
psql "$CREDITS_DATABASE_URL" -Xq -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE oldowner LOGIN" -c "CREATE DATABASE legacy" \
    -c "GRANT CREATE ON DATABASE legacy TO oldowner"
CREDITS_DATABASE_URL="$LEGACY user=oldowner" "$CREDITSCTL" migrate >/dev/null

# The database owner, with CREATEROLE and nothing more.
psql "$CREDITS_DATABASE_URL" -Xq -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE dba LOGIN CREATEROLE" -c "CREATE DATABASE ledger OWNER dba"

# ------------------------------------------------------------------------
# creditsctl roles, then migrate as a member of credits_owner
# ------------------------------------------------------------------------

ctl_as dba roles
expect_eq "roles as the database owner with CREATEROLE: exit 0" 0 "$STATUS"
expect_match "roles says what is left to do" "run 'creditsctl migrate' as a member of credits_owner" \
    "$OUT"
ctl_as dba roles
expect_eq "roles again: exit 0" 0 "$STATUS"
expect_eq "three roles, none of which can log in" \
    "credits_owner:false,credits_reader:false,credits_worker:false" \
    "$(as_super "SELECT string_agg(rolname || ':' || rolcanlogin, ',' ORDER BY rolname)
                   FROM pg_roles WHERE rolname LIKE 'credits\_%'")"

psql "$LEDGER user=dba" -Xq -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE migrator LOGIN IN ROLE credits_owner" \
    -c "CREATE ROLE app LOGIN IN ROLE credits_worker" \
    -c "CREATE ROLE web LOGIN IN ROLE credits_reader"

for role in app web; do
    ctl_as "$role" migrate
    expect_eq "migrate as $role (not an owner): exit 1" 1 "$STATUS"
    expect_match "migrate as $role says why" 'migrate as a member of credits_owner' "$ERR"
done
ctl_as migrator migrate
expect_eq "migrate as a member of credits_owner: exit 0" 0 "$STATUS"
expect_match "it applies every migration" 'applied 005_unspent_lots' "$OUT"
expect_match "and sets the privileges" 'privileges set \(schemas/grants.sql\)' "$OUT"
expect_eq "every table and sequence belongs to credits_owner" 0 \
    "$(as_super "SELECT count(*) FROM pg_class
                  WHERE relnamespace = 'credits'::regnamespace AND relkind IN ('r', 'S', 'v')
                    AND relowner <> 'credits_owner'::regrole")"
expect_eq "so does the schema" credits_owner \
    "$(as_super "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'credits'")"
ctl_as migrator migrate
expect_eq "migrate again: exit 0" 0 "$STATUS"
expect_match "migrate again: up to date" '^schema up to date \(version [0-9]+\)' "$OUT"
ctl_as dba roles
expect_eq "roles after migrate, as the database owner: exit 0" 0 "$STATUS"
expect_match "it leaves the grants to migrate (it may not act as the owner)" \
    'set by the next .creditsctl migrate.' "$OUT"

# ------------------------------------------------------------------------
# The catalog: the owner may change it; the reader is refused, clearly.
# ------------------------------------------------------------------------

ctl_as migrator plan set pro --monthly 100
expect_eq "plan set as the owner: exit 0" 0 "$STATUS"
ctl_as migrator pack set starter --credits 50
expect_eq "pack set as the owner: exit 0" 0 "$STATUS"
ctl_as web plan set pro --monthly 999
expect_eq "plan set as the reader: exit 1" 1 "$STATUS"
expect_eq "plan set as the reader: one clear line" \
    "creditsctl plan set: saving the plan: permission denied for table plans (the database role of CREDITS_DATABASE_URL may not do this; schemas/roles.sql says which role may)" \
    "$ERR"
ctl_as web pack set starter --credits 1
expect_eq "pack set as the reader: exit 1" 1 "$STATUS"
expect_eq "the catalog is unchanged" "pro:100,starter:50" \
    "$(as_super "SELECT (SELECT 'pro:' || monthly_credits FROM credits.plans)
                        || ',starter:' || (SELECT credits FROM credits.packs)")"

# ------------------------------------------------------------------------
# The worker as a member of credits_worker only: every v1 job type.
# ------------------------------------------------------------------------

start_worker CREDITS_DATABASE_URL="$LEDGER user=app"
WORKER_LOG="$TEST_DIR/worker-0.log"
# job WHAT PATTERN ARGS... -- enqueues with --wait and checks the result.
job() {
    local what=$1 pattern=$2
    shift 2
    ctl_as app "$@" --wait --timeout 10
    expect_match "as credits_worker: $what" "$pattern" "$OUT"
}
job "allocate applied" '"status":"applied".*"granted":100' allocate --user u1 --plan pro --period 2026-11 --id r-alloc
job "allocate already_allocated" '"error":"already_allocated"' allocate --user u1 --plan pro --period 2026-11 --id r-alloc-again
job "allocate stale_period" '"error":"stale_period"' allocate --user u1 --plan pro --period 2026-10 --id r-alloc-old
job "allocate unknown_plan" '"error":"unknown_plan"' allocate --user u2 --plan nope --period 2026-11 --id r-alloc-nope
job "purchase applied" '"status":"applied".*"granted":50' purchase --user u1 --pack starter --payment-ref r-pay-1 --id r-buy
job "purchase duplicate_payment" '"error":"duplicate_payment"' purchase --user u2 --pack starter --payment-ref r-pay-1 --id r-buy-dup
job "purchase unknown_pack" '"error":"unknown_pack"' purchase --user u1 --pack nope --payment-ref r-pay-2 --id r-buy-nope
job "consume applied" '"status":"applied".*"charged":120' consume --user u1 --amount 120 --id r-use
job "consume insufficient_credits" '"error":"insufficient_credits"' consume --user u1 --amount 1000 --id r-use-big
job "a replay" '"replayed":true' consume --user u1 --amount 120 --id r-use
# An id_conflict has no result key and no reply: it shows as a dead letter.
ctl_as app consume --user u1 --amount 7 --id r-use
printf '\x91\xc1' | redis -x XADD credits:jobs:consume '*' job >/dev/null
wait_until 100 value_is 2 redis XLEN credits:dead || true
expect_eq "as credits_worker: id_conflict and invalid_job dead-lettered" "id_conflict,invalid_job" \
    "$(redis XRANGE credits:dead - + | grep -xE 'id_conflict|invalid_job' | sort | paste -sd,)"
for pattern in batch_failed 'permission denied' job_dead_lettered; do
    expect_eq "the worker's log has no $pattern" 0 "$(grep -c "$pattern" "$WORKER_LOG" || true)"
done
stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
ctl_as web audit
expect_eq "audit as the reader: the ledger is clean" 0 "$STATUS"
ctl_as web balance u1 --json
expect_eq "balance as the reader" 30 "$(json_get "$OUT" '{total}')"

# ------------------------------------------------------------------------
# Exactly these privileges, and no others.
# ------------------------------------------------------------------------

table_privileges() {
    as_super "SELECT coalesce(string_agg(table_name || ':' || privilege_type, ','
                                         ORDER BY table_name, privilege_type), '')
                FROM information_schema.table_privileges
               WHERE grantee = '$1' AND table_schema = 'credits'" "${2:-ledger}"
}
column_updates() {
    as_super "SELECT coalesce(string_agg(table_name || '.' || column_name, ','
                                         ORDER BY table_name, column_name), '')
                FROM information_schema.column_privileges
               WHERE grantee = '$1' AND table_schema = 'credits' AND privilege_type = 'UPDATE'" \
        "${2:-ledger}"
}
WORKER_TABLES="accounts:INSERT,accounts:SELECT,entries:INSERT,entries:SELECT,events:DELETE,events:INSERT,events:SELECT,holds:INSERT,holds:SELECT,jobs:INSERT,jobs:SELECT,lots:INSERT,lots:SELECT,packs:SELECT,plans:SELECT"
WORKER_UPDATES="accounts.plan_id,events.published_at,holds.captured,holds.closed_at,holds.closed_by,holds.status,lots.expiry_noticed_at,lots.remaining,lots.revoked_at"
READER_TABLES="accounts:SELECT,balances:SELECT,entries:SELECT,events:SELECT,history:SELECT,holds:SELECT,jobs:SELECT,lots:SELECT,packs:SELECT,plans:SELECT,schema_migrations:SELECT,usable_lots:SELECT"
expect_eq "credits_worker's table privileges" "$WORKER_TABLES" "$(table_privileges credits_worker)"
expect_eq "credits_worker updates only the columns it changes" "$WORKER_UPDATES" \
    "$(column_updates credits_worker)"
expect_eq "credits_worker's sequences: nextval of lot IDs and event IDs" "credits.lot_id_seq,credits.events_event_id_seq" \
    "$(as_super "SELECT string_agg(s.oid::regclass::text, ',')
                   FROM (SELECT oid FROM pg_class
                          WHERE relkind = 'S' AND relnamespace = 'credits'::regnamespace
                         OFFSET 0) AS s
                  WHERE has_sequence_privilege('credits_worker', s.oid, 'USAGE')")"
expect_eq "credits_reader's table privileges: SELECT only" "$READER_TABLES" \
    "$(table_privileges credits_reader)"
expect_eq "credits_reader updates nothing" "" "$(column_updates credits_reader)"

# expect_refused WHAT ROLE SQL
expect_refused() {
    local out
    out=$(as_role "$2" "BEGIN; $3; ROLLBACK")
    expect_match "$1" 'permission denied|must be owner' "$out"
}
for sql in "DELETE FROM credits.entries" "DELETE FROM credits.lots" "DELETE FROM credits.jobs" \
    "DELETE FROM credits.accounts" "TRUNCATE credits.entries" \
    "UPDATE credits.lots SET granted = granted" "UPDATE credits.lots SET user_id = user_id" \
    "UPDATE credits.jobs SET status = status" "UPDATE credits.entries SET delta = delta" \
    "UPDATE credits.accounts SET user_id = user_id" "INSERT INTO credits.plans VALUES ('x', 1, 2)" \
    "UPDATE credits.packs SET credits = 1" "DELETE FROM credits.holds" \
    "SELECT setval('credits.lot_id_seq', 1)" "CREATE TABLE credits.x (i int)" \
    "ALTER TABLE credits.lots ADD COLUMN x int" "DROP TABLE credits.entries" \
    "CREATE INDEX ON credits.lots (granted)"; do
    expect_refused "credits_worker may not: $sql" app "$sql"
done
expect_eq "credits_worker may update what it updates (a positive control)" "" \
    "$(as_role app "BEGIN; UPDATE credits.lots SET remaining = remaining WHERE false;
                    UPDATE credits.accounts SET plan_id = plan_id WHERE false; ROLLBACK")"
for table in accounts lots entries jobs plans packs; do
    for sql in "INSERT INTO credits.$table DEFAULT VALUES" "UPDATE credits.$table SET ctid = ctid" \
        "DELETE FROM credits.$table" "TRUNCATE credits.$table"; do
        out=$(as_role web "BEGIN; $sql; ROLLBACK")
        expect_match "credits_reader may not write credits.$table (${sql%% *})" \
            'permission denied|cannot assign to system column' "$out"
    done
    expect_match "credits_reader reads credits.$table" '^[0-9]+$' \
        "$(as_role web "SELECT count(*) FROM credits.$table")"
done

# A privilege granted by hand is gone after the next migrate.
as_super "GRANT DELETE ON credits.entries TO credits_worker"
ctl_as migrator migrate
expect_eq "migrate keeps the privileges exact" "$WORKER_TABLES" "$(table_privileges credits_worker)"

# ------------------------------------------------------------------------
# A later migration: a table it creates is readable by the reader at once
# (default privileges) and gives the worker nothing until grants.sql names it.
# ------------------------------------------------------------------------

psql "$LEDGER user=migrator" -Xq -v ON_ERROR_STOP=1 <<'SQL'
SET ROLE credits_owner;
CREATE TABLE credits.later_notes (note_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                  user_id text, body text);
SQL
expect_match "a table a migration creates is readable by the reader at once" '^0$' \
    "$(as_role web "SELECT count(*) FROM credits.later_notes")"
ctl_as migrator migrate
expect_eq "migrate after the new table: exit 0" 0 "$STATUS"
expect_eq "credits_worker gets nothing on a table grants.sql does not name" \
    "$WORKER_TABLES" "$(table_privileges credits_worker)"
expect_eq "credits_worker updates only the columns it changes" \
    "$WORKER_UPDATES" "$(column_updates credits_worker)"
expect_eq "credits_worker writes entries.origin (INSERT is table-wide)" t \
    "$(as_super "SELECT has_column_privilege('credits_worker', 'credits.entries', 'origin', 'INSERT')")"
expect_refused "credits_worker may not delete holds" app "DELETE FROM credits.holds"
expect_refused "credits_worker may not update a hold's amount" app "UPDATE credits.holds SET amount = 0"

# ------------------------------------------------------------------------
# An existing schema: refused by migrate until roles ran on its database;
# roles, as a superuser, hands it over to credits_owner and sets the grants.
# ------------------------------------------------------------------------

CREDITS_DATABASE_URL="$LEGACY user=postgres" ctl migrate
expect_eq "migrate on a database roles did not run on: exit 1" 1 "$STATUS"
expect_match "migrate says to run roles there" "run 'creditsctl roles' on it first" "$ERR"
CREDITS_DATABASE_URL="$LEGACY user=dba" ctl roles
expect_eq "roles on a database it does not own, without superuser: exit 1" 1 "$STATUS"
expect_match "roles says which privilege it lacks" \
    'may not grant privileges on database legacy \(this needs a role with CREATEROLE that owns the database' \
    "$ERR"
CREDITS_DATABASE_URL="$LEGACY user=postgres" ctl roles
expect_eq "roles as a superuser on the old schema: exit 0" 0 "$STATUS"
expect_match "it sets the privileges at once" 'privileges set' "$OUT"
expect_eq "the old schema now belongs to credits_owner" 0 \
    "$(as_super "SELECT count(*) FROM pg_class
                  WHERE relnamespace = 'credits'::regnamespace AND relkind IN ('r', 'S', 'v')
                    AND relowner <> 'credits_owner'::regrole" legacy)"
expect_eq "its functions too" credits_owner \
    "$(as_super "SELECT proowner::regrole FROM pg_proc WHERE proname = 'plans_default_cap'" legacy)"
expect_eq "credits_worker's privileges there" "$WORKER_TABLES" \
    "$(table_privileges credits_worker legacy)"
CREDITS_DATABASE_URL="$LEGACY user=postgres" ctl migrate
expect_eq "migrate there as a superuser (it acts as credits_owner): exit 0" 0 "$STATUS"

finish
