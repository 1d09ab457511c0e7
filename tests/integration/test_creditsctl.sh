#!/usr/bin/env bash
# test_creditsctl.sh -- integration test of creditsctl against a throwaway
# Redis and PostgreSQL (lib.sh): migrate, the catalog, the accounts'
# thresholds, usage errors, --help on every command, enqueued jobs, stored results, balance and history, and
# --json on every command that prints data. With credits-worker built, also
# the --wait round trips through the worker (worker_round_trips). audit, dead
# and schedule have their own scripts (test_audit.sh, test_dead.sh,
# test_schedule.sh).
#
#   BUILD_DIR=build tests/integration/test_creditsctl.sh

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/ctl_lib.sh"

# ------------------------------------------------------------------------
# migrate
# ------------------------------------------------------------------------

check_migrate() {
    local files pids=() pid status=0 i
    files=$(find "$SOURCE_DIR/schemas" -maxdepth 1 -name '[0-9][0-9][0-9]_*.sql' | wc -l)
    # Three at once on an empty database: they take turns, each file is
    # applied exactly once, all succeed.
    for i in 1 2 3; do
        "$CREDITSCTL" migrate >"$TEST_DIR/migrate-$i.out" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
    expect_eq "three concurrent migrates all exit 0" 0 "$status"
    local all
    all=$(cat "$TEST_DIR"/migrate-*.out)
    expect_eq "concurrent migrates apply 001_ledger once" 1 "$(count_lines '^applied 001_ledger$' "$all")"
    expect_eq "concurrent migrates apply every schemas/NNN file once" "$files" \
        "$(count_lines '^applied [0-9]{3}_' "$all")"

    ctl migrate
    expect_eq "migrate again exits 0" 0 "$STATUS"
    expect_match "migrate again says up to date" '^schema up to date \(version [0-9]+\)$' "$OUT"
    expect_eq "migrate creates the contract's tables" 6 "$(psql_value "
        SELECT count(*) FROM pg_tables
         WHERE schemaname = 'credits'
           AND tablename IN ('plans', 'packs', 'accounts', 'jobs', 'lots', 'entries')")"
    expect_eq "migrate records 001_ledger" "001_ledger" \
        "$(psql_value "SELECT name FROM credits.schema_migrations WHERE version = 1")"
}

# The ID columns compare bytewise even in a database whose default collation
# is a libc one (004_bytewise_keys.sql), and lookups by them use the indexes.
check_migrate_libc_collation() {
    psql_value "CREATE DATABASE libc_collation TEMPLATE template0
                LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'" >/dev/null
    local db="$CREDITS_DATABASE_URL dbname=libc_collation"
    CREDITS_DATABASE_URL="$db" "$CREDITSCTL" migrate >/dev/null
    expect_eq "migrate in a C.UTF-8 database exits 0" 0 $?
    expect_eq "the database's own collation is C.UTF-8" "C.UTF-8" \
        "$(psql "$db" -XAtqc "SELECT datcollate FROM pg_database WHERE datname = current_database()")"
    expect_eq "every ID column is COLLATE \"C\"" \
        "accounts.user_id entries.job_id entries.origin entries.user_id events.hold_id events.job_id events.user_id holds.closed_by holds.hold_id holds.user_id jobs.job_id jobs.user_id lots.job_id lots.payment_ref lots.user_id" \
        "$(psql "$db" -XAtqc "SELECT string_agg(c.table_name || '.' || c.column_name, ' '
                                               ORDER BY c.table_name, c.column_name)
                                FROM information_schema.columns c
                                JOIN information_schema.tables t USING (table_schema, table_name)
                               WHERE c.table_schema = 'credits' AND c.collation_name = 'C'
                                 AND t.table_type = 'BASE TABLE'")"
    expect_match "a lookup of users by a text[] parameter uses the index" 'Index' \
        "$(psql "$db" -XAtqc "SET enable_seqscan = off" \
            -c "EXPLAIN SELECT 1 FROM credits.lots WHERE user_id = ANY('{a,b}'::text[])")"
}

# 005_unspent_lots.sql: lots.spent follows remaining, and the worker's load
# of lots with credits left (user_id = ANY(...) AND NOT spent) has an index
# of its own, so a user's spent lots are not read.
check_unspent_lots_index() {
    psql_value "INSERT INTO credits.lots (lot_id, user_id, kind, granted, remaining, granted_at,
                                          job_id, plan_id, period)
                VALUES (900001, 'spent-u', 'monthly', 5, 5, now(), 'spent-j', 'pro', '2026-01')" \
        >/dev/null
    expect_eq "a lot with credits left is not spent" f \
        "$(psql_value "SELECT spent FROM credits.lots WHERE lot_id = 900001")"
    psql_value "UPDATE credits.lots SET remaining = 0 WHERE lot_id = 900001" >/dev/null
    expect_eq "its last credit gone, it is spent" t \
        "$(psql_value "SELECT spent FROM credits.lots WHERE lot_id = 900001")"
    expect_match "lots with credits left are found through lots_user_unspent" 'lots_user_unspent' \
        "$(psql "$CREDITS_DATABASE_URL" -XAtqc "SET enable_seqscan = off" \
            -c "EXPLAIN SELECT lot_id FROM credits.lots
                WHERE user_id = ANY('{spent-u}'::text[]) AND NOT spent")"
    psql_value "DELETE FROM credits.lots WHERE lot_id = 900001" >/dev/null
}

# ------------------------------------------------------------------------
# plan, pack
# ------------------------------------------------------------------------

check_plans() {
    ctl plan set pro --monthly 1000
    expect_eq "plan set exits 0" 0 "$STATUS"
    expect_eq "plan set without --cap: cap is 2 * monthly" "1000|2000" \
        "$(psql_value "SELECT monthly_credits || '|' || rollover_cap FROM credits.plans WHERE plan_id = 'pro'")"
    ctl plan set basic --monthly 100 --cap 150
    expect_eq "plan set with --cap exits 0" 0 "$STATUS"
    ctl plan list
    expect_eq "plan list exits 0" 0 "$STATUS"
    expect_eq "plan list: its header" 1 "$(count_lines '^plan +monthly +cap +low_balance$' "$OUT")"
    expect_eq "plan list shows basic, no threshold" 1 "$(count_lines '^basic +100 +150 +none$' "$OUT")"
    expect_eq "plan list shows pro" 1 "$(count_lines '^pro +1000 +2000 +none$' "$OUT")"
    ctl plan set pro --monthly 300
    expect_eq "plan set replaces a plan, cap default again" "300|600" \
        "$(psql_value "SELECT monthly_credits || '|' || rollover_cap FROM credits.plans WHERE plan_id = 'pro'")"
    ctl plan set bad --monthly 100 --cap 50
    expect_eq "plan with cap < monthly exits 1" 1 "$STATUS"
    expect_match "plan with cap < monthly says why" 'rollover cap must be at least' "$ERR"
    expect_eq "plan with cap < monthly is not saved" 0 \
        "$(psql_value "SELECT count(*) FROM credits.plans WHERE plan_id = 'bad'")"
    check_plan_thresholds
}

# plan set --low-balance: stored, listed, and gone again when a later set
# leaves it out (set replaces the whole plan, as for the cap).
check_plan_thresholds() {
    ctl plan set lowplan --monthly 500 --low-balance 100
    expect_eq "plan set --low-balance exits 0" 0 "$STATUS"
    expect_eq "plan set --low-balance: the threshold is stored" 100 \
        "$(psql_value "SELECT low_balance FROM credits.plans WHERE plan_id = 'lowplan'")"
    expect_match "plan set prints the threshold" '^plan +monthly +cap +low_balance
lowplan +500 +1000 +100$' "$OUT"
    ctl plan list
    expect_eq "plan list shows the threshold" 1 "$(count_lines '^lowplan +500 +1000 +100$' "$OUT")"
    ctl plan set lowplan --monthly 500 --low-balance 1000000000000
    expect_eq "plan set --low-balance 10^12 (the most) exits 0" 0 "$STATUS"
    ctl plan set lowplan --monthly 500
    expect_eq "plan set without --low-balance clears the threshold" "" \
        "$(psql_value "SELECT low_balance FROM credits.plans WHERE plan_id = 'lowplan'")"
    ctl plan set lowplan --monthly 500 --low-balance 7
    ctl plan set lowplan --monthly 500 --low-balance none
    expect_eq "plan set --low-balance none clears the threshold" "" \
        "$(psql_value "SELECT low_balance FROM credits.plans WHERE plan_id = 'lowplan'")"
    local bad
    for bad in -5 0 abc 1000000000001 ''; do
        ctl plan set lowplan --monthly 500 --low-balance "$bad"
        expect_eq "plan set --low-balance '$bad' is a usage error" 2 "$STATUS"
    done
    expect_match "a bad --low-balance says what it takes" \
        '--low-balance must be a whole number from 1 to 1000000000000, or none \(got ""\)' "$ERR"
    ctl plan set lowplan --monthly 500 --low-balance 9
    ctl plan set lowplan --monthly 500 --low-balance -1
    expect_eq "a refused plan set leaves the plan as it was" 9 \
        "$(psql_value "SELECT low_balance FROM credits.plans WHERE plan_id = 'lowplan'")"
    psql_value "DELETE FROM credits.plans WHERE plan_id = 'lowplan'" >/dev/null
}

# account set --low-balance N|none and account show.
check_accounts() {
    ctl account show acct-1
    expect_eq "account show of a user with no account exits 1" 1 "$STATUS"
    expect_match "account show says there is none" 'no account acct-1' "$ERR"
    ctl account set acct-1 --low-balance 40
    expect_eq "account set exits 0" 0 "$STATUS"
    expect_eq "account set creates the account, with no plan, and its threshold" "|40" \
        "$(psql_value "SELECT coalesce(plan_id, '') || '|' || low_balance FROM credits.accounts WHERE user_id = 'acct-1'")"
    expect_match "account set prints the account" \
        '^user +plan +low_balance +plan_low_balance +threshold
acct-1 +- +40 +none +40$' "$OUT"
    ctl plan set thrplan --monthly 100 --low-balance 25
    psql_value "UPDATE credits.accounts SET plan_id = 'thrplan' WHERE user_id = 'acct-1'" >/dev/null
    ctl account show acct-1 --json
    expect_eq "account show --json: its own threshold wins over its plan's" \
        '{"user":"acct-1","plan":"thrplan","low_balance":40,"plan_low_balance":25,"threshold":40}' "$OUT"
    ctl account set acct-1 --low-balance none --json
    expect_eq "account set none clears its own: the plan's applies" \
        '{"user":"acct-1","plan":"thrplan","low_balance":null,"plan_low_balance":25,"threshold":25}' "$OUT"
    expect_eq "account set keeps the account's plan" thrplan \
        "$(psql_value "SELECT plan_id FROM credits.accounts WHERE user_id = 'acct-1'")"
    ctl account show acct-1
    expect_match "account show prints the account" '^user +plan +low_balance +plan_low_balance +threshold
acct-1 +thrplan +none +25 +25$' "$OUT"
    ctl account set acct-2 --low-balance none
    expect_eq "account set none on a new user creates the account" 1 \
        "$(psql_value "SELECT count(*) FROM credits.accounts WHERE user_id = 'acct-2' AND low_balance IS NULL")"
    local bad
    for bad in -1 0 abc 1e3 1000000000001; do
        ctl account set acct-1 --low-balance "$bad"
        expect_eq "account set --low-balance '$bad' is a usage error" 2 "$STATUS"
    done
    ctl account set acct-1
    expect_eq "account set without --low-balance is a usage error" 2 "$STATUS"
    expect_match "account set names what is missing" 'missing --low-balance' "$ERR"
    ctl account set "acct 3" --low-balance 5
    expect_eq "account set with a user ID holding a space is a usage error" 2 "$STATUS"
    ctl account show ""
    expect_eq "account show of an empty user ID is a usage error" 2 "$STATUS"
    expect_eq "usage errors create no account" 0 \
        "$(psql_value "SELECT count(*) FROM credits.accounts WHERE user_id IN ('acct 3', '')")"
    ctl account frob
    expect_eq "account with an unknown subcommand exits 2" 2 "$STATUS"
}

check_packs() {
    ctl pack set starter --credits 500
    expect_eq "pack set exits 0" 0 "$STATUS"
    expect_eq "pack set without --valid-days: 90 days" "500|90" \
        "$(psql_value "SELECT credits || '|' || valid_days FROM credits.packs WHERE pack_id = 'starter'")"
    ctl pack set big --credits 5000 --valid-days 365
    ctl pack list
    expect_eq "pack list exits 0" 0 "$STATUS"
    expect_eq "pack list shows big" 1 "$(count_lines '^big +5000 +365$' "$OUT")"
    expect_eq "pack list shows starter" 1 "$(count_lines '^starter +500 +90$' "$OUT")"
    ctl pack set starter --credits 600
    expect_eq "pack set replaces a pack" "600|90" \
        "$(psql_value "SELECT credits || '|' || valid_days FROM credits.packs WHERE pack_id = 'starter'")"
    ctl pack set bad --credits 5 --valid-days 0
    expect_eq "pack with 0 valid days exits 1" 1 "$STATUS"
    expect_match "pack with 0 valid days says why" 'valid days must be from 1' "$ERR"
}

# ------------------------------------------------------------------------
# Usage errors: exit 2, nothing enqueued
# ------------------------------------------------------------------------

check_usage_errors() {
    expect_status "consume without --user" 2 "$CREDITSCTL" consume --amount 5
    expect_status "consume --amount abc" 2 "$CREDITSCTL" consume --user u1 --amount abc
    expect_status "consume --amount 0 (the worker's rule)" 2 "$CREDITSCTL" consume --user u1 --amount 0
    expect_status "consume with a user ID holding a space" 2 "$CREDITSCTL" consume --user "u 1" --amount 1
    expect_status "consume --timeout without --wait" 2 "$CREDITSCTL" consume --user u1 --amount 1 --timeout 3
    expect_status "consume with an unknown option" 2 "$CREDITSCTL" consume --user u1 --amount 1 --bogus
    expect_status "purchase without --payment-ref" 2 "$CREDITSCTL" purchase --user u1 --pack starter
    expect_status "allocate --period 2026-13" 2 "$CREDITSCTL" allocate --user u1 --plan pro --period 2026-13
    expect_status "allocate --period 26-11" 2 "$CREDITSCTL" allocate --user u1 --plan pro --period 26-11
    expect_status "history --limit 0" 2 "$CREDITSCTL" history u1 --limit 0
    expect_status "plan set without --monthly" 2 "$CREDITSCTL" plan set pro
    expect_status "plan without a subcommand" 2 "$CREDITSCTL" plan
    expect_status "result with a bad ID" 2 "$CREDITSCTL" result "a b"
    expect_status "no command" 2 "$CREDITSCTL"
    ctl frobnicate
    expect_eq "unknown command exits 2" 2 "$STATUS"
    expect_match "unknown command lists the commands" 'consume' "$ERR"
    ctl consume --amount 5
    expect_match "a usage error names what is missing" 'missing --user' "$ERR"
    ctl consume --user u1 --amount 0
    expect_match "a job the worker would reject: the codec's message" "field 'amount'" "$ERR"
    expect_eq "usage errors enqueue nothing" 0 "$(redis XLEN credits:jobs:consume)"
    expect_status "--help" 0 "$CREDITSCTL" --help
    expect_status "consume --help" 0 "$CREDITSCTL" consume --help
    expect_match "--version" '^creditsctl [0-9]' "$("$CREDITSCTL" --version)"
}

# ------------------------------------------------------------------------
# consume, purchase, allocate without --wait
# ------------------------------------------------------------------------

# stream_job STREAM -- the `job` field of the stream's last entry, each byte
# that is not printable ASCII shown as '.' (msgpack headers), so that regexes
# can match across them in any locale.
stream_job() {
    redis --raw XREVRANGE "$1" + - COUNT 1 | sed -n '3,$p' | LC_ALL=C tr -c '[:print:]' '.'
}

check_enqueue() {
    ctl consume --user u1 --amount 7 --tool veo --ref vid-1 --id t-consume-1
    expect_eq "consume exits 0" 0 "$STATUS"
    expect_eq "consume prints the job ID" "t-consume-1" "$OUT"
    expect_eq "consume adds one entry to credits:jobs:consume" 1 "$(redis XLEN credits:jobs:consume)"
    expect_eq "the entry's one field is job" "job" \
        "$(redis --raw XRANGE credits:jobs:consume - + | sed -n 2p)"
    local job
    job=$(stream_job credits:jobs:consume)
    expect_match "the consume job holds its id" 't-consume-1' "$job"
    expect_match "the consume job holds its type, user, tool and ref" 'consume.*u1.*veo.*vid-1' "$job"

    ctl consume --user u1 --amount 1
    expect_match "consume without --id generates cli- and 32 hex digits" '^cli-[0-9a-f]{32}$' "$OUT"
    expect_match "the generated ID is in the job" "$OUT" "$(stream_job credits:jobs:consume)"

    ctl purchase --user u1 --pack starter --payment-ref pay-1 --id t-purchase-1
    expect_eq "purchase exits 0" 0 "$STATUS"
    expect_eq "purchase adds one entry to credits:jobs:purchase" 1 "$(redis XLEN credits:jobs:purchase)"
    expect_match "the purchase job holds id, pack and payment_ref" \
        't-purchase-1.*purchase.*u1.*starter.*pay-1' "$(stream_job credits:jobs:purchase)"

    ctl allocate --user u1 --plan pro --period 2026-11 --id t-allocate-1
    expect_eq "allocate exits 0" 0 "$STATUS"
    expect_eq "allocate adds one entry to credits:jobs:allocate" 1 "$(redis XLEN credits:jobs:allocate)"
    expect_match "the allocate job holds id, plan and period" \
        't-allocate-1.*allocate.*u1.*pro.*2026-11' "$(stream_job credits:jobs:allocate)"
    expect_eq "consume stream still holds two entries" 2 "$(redis XLEN credits:jobs:consume)"

    CREDITS_PREFIX=other "$CREDITSCTL" consume --user u1 --amount 1 >/dev/null
    expect_eq "CREDITS_PREFIX names the stream" 1 "$(redis XLEN other:jobs:consume)"
}

# ------------------------------------------------------------------------
# result, --wait without a worker, unreachable servers
# ------------------------------------------------------------------------

# Results as the codec encodes them (v, id, type, user, status, ...).
RESULT_APPLIED='\x89\xa1\x76\x01\xa2\x69\x64\xa9\x72\x2d\x61\x70\x70\x6c\x69\x65\x64\xa4\x74\x79\x70\x65\xa7\x63\x6f\x6e\x73\x75\x6d\x65\xa4\x75\x73\x65\x72\xa2\x75\x31\xa6\x73\x74\x61\x74\x75\x73\xa7\x61\x70\x70\x6c\x69\x65\x64\xa7\x62\x61\x6c\x61\x6e\x63\x65\x83\xa5\x74\x6f\x74\x61\x6c\x05\xa4\x70\x61\x63\x6b\x05\xa7\x6d\x6f\x6e\x74\x68\x6c\x79\x00\xa7\x63\x68\x61\x72\x67\x65\x64\x03\xa7\x64\x6f\x6e\x65\x5f\x61\x74\xcf\x00\x00\x01\x9a\xb6\x97\xe8\x00\xa8\x72\x65\x70\x6c\x61\x79\x65\x64\xc2'
# message: no pack "gold"<LF>in\catalog
RESULT_REJECTED='\x89\xa1\x76\x01\xa2\x69\x64\xaa\x72\x2d\x72\x65\x6a\x65\x63\x74\x65\x64\xa4\x74\x79\x70\x65\xa8\x70\x75\x72\x63\x68\x61\x73\x65\xa4\x75\x73\x65\x72\xa2\x75\x31\xa6\x73\x74\x61\x74\x75\x73\xa8\x72\x65\x6a\x65\x63\x74\x65\x64\xa5\x65\x72\x72\x6f\x72\xac\x75\x6e\x6b\x6e\x6f\x77\x6e\x5f\x70\x61\x63\x6b\xa7\x6d\x65\x73\x73\x61\x67\x65\xb9\x6e\x6f\x20\x70\x61\x63\x6b\x20\x22\x67\x6f\x6c\x64\x22\x0a\x69\x6e\x5c\x63\x61\x74\x61\x6c\x6f\x67\xa7\x64\x6f\x6e\x65\x5f\x61\x74\xcf\x00\x00\x01\x9a\xb6\x97\xe8\x01\xa8\x72\x65\x70\x6c\x61\x79\x65\x64\xc3'

check_result() {
    ctl result no-such-job
    expect_eq "result of an unknown ID exits 1" 1 "$STATUS"
    expect_match "result of an unknown ID says so" 'no result for job no-such-job' "$ERR"

    # shellcheck disable=SC2059 # the bytes are the format
    printf "$RESULT_APPLIED" | redis -x SET credits:result:r-applied >/dev/null
    ctl result r-applied
    expect_eq "result exits 0" 0 "$STATUS"
    expect_eq "result prints one JSON line, keys in the contract's order" \
        '{"v":1,"id":"r-applied","type":"consume","user":"u1","status":"applied","balance":{"total":5,"pack":5,"monthly":0,"grant":0,"held":0},"charged":3,"done_at":1764000000000,"replayed":false}' \
        "$OUT"
    # shellcheck disable=SC2059
    printf "$RESULT_REJECTED" | redis -x SET credits:result:r-rejected >/dev/null
    ctl result r-rejected
    expect_eq "a rejected result, its message escaped for JSON" \
        '{"v":1,"id":"r-rejected","type":"purchase","user":"u1","status":"rejected","error":"unknown_pack","message":"no pack \"gold\"\u000ain\\catalog","done_at":1764000000001,"replayed":true}' \
        "$OUT"
    redis SET credits:result:r-garbage abc >/dev/null
    expect_status "result that is not msgpack" 1 "$CREDITSCTL" result r-garbage

    ctl consume --user nobody-waits --amount 1 --id t-wait-1 --wait --timeout 1
    expect_eq "--wait with no worker exits 1" 1 "$STATUS"
    expect_match "--wait with no worker says so" \
        'no result for job t-wait-1 within 1 s \(is credits-worker running\?\)' "$ERR"
    expect_match "--wait asks for the reply" 'reply' "$(stream_job credits:jobs:consume)"

    # shellcheck disable=SC2059
    (sleep 0.5 && printf "$RESULT_APPLIED" | redis -x RPUSH credits:reply:r-applied >/dev/null) &
    ctl consume --user u1 --amount 3 --id r-applied --wait --timeout 10
    wait $!
    expect_eq "--wait prints the reply pushed by the worker" 0 "$STATUS"
    expect_match "--wait prints the result as JSON" '^\{"v":1,"id":"r-applied",.*"status":"applied"' "$OUT"

    CREDITS_REDIS_URL=redis://127.0.0.1:1 ctl result x
    expect_eq "Redis unreachable exits 1" 1 "$STATUS"
    expect_match "Redis unreachable says so" 'cannot connect to Redis' "$ERR"
    CREDITS_DATABASE_URL="host=127.0.0.1 port=1 user=postgres" ctl balance u1
    expect_eq "Postgres unreachable exits 1" 1 "$STATUS"
    expect_match "Postgres unreachable says so" 'cannot connect to Postgres' "$ERR"
}

# ------------------------------------------------------------------------
# balance, history
# ------------------------------------------------------------------------

check_empty_user() {
    ctl balance u-empty
    expect_eq "balance of a user with no lots exits 0" 0 "$STATUS"
    expect_eq "balance of a user with no lots is zeros" 1 \
        "$(count_lines '^ *0 +0 +0 +0 +0 +- +-$' "$OUT")"
    expect_match "balance of a user with no lots lists none" 'no usable lots' "$OUT"
    expect_match "balance of a user with no holds lists none" 'no open holds' "$OUT"
    ctl history u-empty
    expect_eq "history of a user with no jobs exits 0" 0 "$STATUS"
    expect_match "history of a user with no jobs is empty" 'no jobs' "$OUT"
    ctl history u-empty --per-lot
    expect_match "history --per-lot of a user with no entries is empty" 'no entries' "$OUT"
}

# An account, a job, a usable pack lot with its entries, an expired pack lot
# and a monthly lot, written directly with SQL.
seed_user_u9() {
    psql "$CREDITS_DATABASE_URL" -Xq -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO credits.accounts (user_id) VALUES ('u9');
INSERT INTO credits.jobs (job_id, type, user_id, status, result, request)
VALUES ('seed-1', 'purchase', 'u9', 'applied', '\x80', '\x80');
INSERT INTO credits.lots (user_id, kind, granted, remaining, granted_at, expires_at,
                          job_id, pack_id, payment_ref)
VALUES ('u9', 'pack', 500, 480, now(), now() + interval '90 days',
        'seed-1', 'starter', 'seed-pay-1');
INSERT INTO credits.entries (user_id, job_id, lot_id, kind, delta)
VALUES ('u9', 'seed-1', currval('credits.lot_id_seq'), 'purchase', 500);
INSERT INTO credits.entries (user_id, job_id, lot_id, kind, delta, tool, ref)
VALUES ('u9', 'seed-1', currval('credits.lot_id_seq'), 'consume', -20, 'veo', E'vid\x1b[31m-1');
INSERT INTO credits.lots (user_id, kind, granted, remaining, granted_at, expires_at,
                          job_id, pack_id, payment_ref)
VALUES ('u9', 'pack', 50, 50, now() - interval '100 days', now() - interval '10 days',
        'seed-1', 'starter', 'seed-pay-0');
INSERT INTO credits.lots (user_id, kind, granted, remaining, granted_at, job_id, plan_id, period)
VALUES ('u9', 'monthly', 300, 300, now(), 'seed-1', 'pro', '2026-11');
SQL
}

check_seeded_user() {
    seed_user_u9
    ctl balance u9
    expect_eq "balance exits 0" 0 "$STATUS"
    expect_match "balance: the totals' header" \
        '(^|
)total +pack +monthly +grant +held +next_expiry +next_expiry_credits(
|$)' "$OUT"
    expect_eq "balance totals count usable lots only; the pack expires next" 1 \
        "$(count_lines '^ *780 +480 +300 +0 +0 +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z +480$' "$OUT")"
    expect_match "balance: the lots' header" \
        '(^|
)lot +kind +remaining +granted +expires +pack +plan +period(
|$)' "$OUT"
    expect_eq "balance lists the pack lot" 1 \
        "$(count_lines '^ *[0-9]+ +pack +480 +500 +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z +starter +- +-$' "$OUT")"
    expect_eq "balance lists the monthly lot" 1 \
        "$(count_lines '^ *[0-9]+ +monthly +300 +300 +never +- +pro +2026-11$' "$OUT")"
    expect_eq "balance leaves out the expired lot" 0 "$(count_lines '^ *[0-9]+ +pack +50 +50 ' "$OUT")"

    ctl history u9
    expect_eq "history exits 0" 0 "$STATUS"
    expect_match "history: one line per job, its net change and its lot's pack" \
        '^time +type +delta +job +tool +ref +pack +plan +period
[0-9T:Z-]+ +purchase +480 +seed-1 +veo +vid\?\[31m-1 +starter +- +-$' "$OUT"
    ctl history u9 --per-lot
    expect_eq "history --per-lot exits 0" 0 "$STATUS"
    expect_eq "history --per-lot: a header and two entries" 3 "$(wc -l <<<"$OUT")"
    expect_match "history --per-lot is newest first" \
        '^time +kind +delta +lot +job +origin +tool +ref
[0-9T:Z-]+ +consume +-20 +[0-9]+ +seed-1 +- +veo +vid\?\[31m-1
[0-9T:Z-]+ +purchase +500 ' "$OUT"
    expect_eq "history prints no control bytes" 0 "$(count_lines $'\e' "$OUT")"
    ctl history u9 --per-lot --limit 1
    expect_eq "history --per-lot --limit 1: a header and one entry" 2 "$(wc -l <<<"$OUT")"
}

# ------------------------------------------------------------------------
# --help on every command and subcommand
# ------------------------------------------------------------------------

HELP_COMMANDS=(
    "migrate" "consume" "purchase" "allocate" "result" "balance" "history"
    "plan" "plan set" "plan list" "pack" "pack set" "pack list"
    "account" "account set" "account show"
    "schedule" "dead" "dead list" "dead show" "dead retry" "dead drop" "audit"
)

check_help() {
    local cmd words
    for cmd in "${HELP_COMMANDS[@]}"; do
        read -ra words <<<"$cmd"
        ctl "${words[@]}" --help
        expect_eq "'$cmd --help' exits 0" 0 "$STATUS"
        expect_match "'$cmd --help' prints its usage" "^usage: creditsctl $cmd" "$OUT"
    done
    ctl dead show -h
    expect_eq "'dead show -h' exits 0" 0 "$STATUS"
    ctl --help
    for cmd in migrate consume purchase allocate result balance history plan pack account schedule dead audit; do
        expect_eq "the main help lists $cmd" 1 "$(count_lines "^  $cmd " "$OUT")"
    done
    ctl dead
    expect_eq "dead without a subcommand exits 2" 2 "$STATUS"
    ctl dead frob
    expect_eq "dead with an unknown subcommand exits 2" 2 "$STATUS"
    expect_match "an unknown subcommand is named" "unknown subcommand 'frob'" "$ERR"
    ctl plan list --bogus
    expect_eq "a subcommand's unknown option exits 2" 2 "$STATUS"
    expect_match "a subcommand's usage error shows its own usage" 'usage: creditsctl plan list' "$ERR"
}

# ------------------------------------------------------------------------
# --json on every command that prints data
# ------------------------------------------------------------------------

check_json() {
    ctl balance u9 --json
    expect_json "balance --json is one JSON object" "$OUT"
    expect_eq "balance --json: user" u9 "$(json_get "$OUT" '{user}')"
    expect_eq "balance --json: totals" "780 480 300" \
        "$(json_get "$OUT" '{total}') $(json_get "$OUT" '{pack}') $(json_get "$OUT" '{monthly}')"
    expect_eq "balance --json: two usable lots" 2 \
        "$(psql_value "SELECT json_array_length('$(json_get "$OUT" '{lots}')'::json)")"
    expect_eq "balance --json: the pack lot first, numbers as numbers" "pack 480 500 starter" \
        "$(json_get "$OUT" '{lots,0,kind}') $(json_get "$OUT" '{lots,0,remaining}') $(json_get "$OUT" '{lots,0,granted}') $(json_get "$OUT" '{lots,0,pack}')"
    expect_match "balance --json: numbers are not strings" '"remaining":480,"granted":500' "$OUT"
    expect_match "balance --json: a monthly lot never expires (null)" '"expires":null,"pack":null,"plan":"pro"' "$OUT"

    expect_eq "balance --json: grant, held, next expiry credits" "0 0 480" \
        "$(json_get "$OUT" '{grant}') $(json_get "$OUT" '{held}') $(json_get "$OUT" '{next_expiry_credits}')"
    expect_eq "balance --json: no open holds, an empty array" '[]' "$(json_get "$OUT" '{holds}')"

    ctl history u9 --json
    expect_json "history --json is one JSON object" "$OUT"
    expect_eq "history --json: one job, its type, net change and pack" "purchase 480 starter" \
        "$(json_get "$OUT" '{jobs,0,type}') $(json_get "$OUT" '{jobs,0,delta}') $(json_get "$OUT" '{jobs,0,pack}')"
    expect_match "history --json: no plan is null" '"plan":null' "$OUT"
    ctl history u9 --per-lot --json
    expect_json "history --per-lot --json is one JSON object" "$OUT"
    expect_eq "history --per-lot --json: newest first" "consume purchase" \
        "$(json_get "$OUT" '{entries,0,kind}') $(json_get "$OUT" '{entries,1,kind}')"
    expect_eq "history --per-lot --json: a ref with control bytes survives" $'vid\e[31m-1' \
        "$(json_get "$OUT" '{entries,0,ref}')"
    expect_match "history --per-lot --json: no tool is null" '"tool":null' "$OUT"
    ctl history u-empty --json
    expect_eq "history --json of no jobs: an empty array" '[]' "$(json_get "$OUT" '{jobs}')"

    ctl plan list --json
    expect_json "plan list --json is one JSON object" "$OUT"
    expect_eq "plan list --json: plans by ID" "basic 100 150" \
        "$(json_get "$OUT" '{plans,0,plan}') $(json_get "$OUT" '{plans,0,monthly}') $(json_get "$OUT" '{plans,0,cap}')"
    expect_match "plan list --json: no threshold is null" '"low_balance":null' "$OUT"
    ctl pack list --json
    expect_json "pack list --json is one JSON object" "$OUT"
    expect_eq "pack list --json: packs by ID" "big 5000 365" \
        "$(json_get "$OUT" '{packs,0,pack}') $(json_get "$OUT" '{packs,0,credits}') $(json_get "$OUT" '{packs,0,valid_days}')"
    ctl plan set team --monthly 40 --json
    expect_eq "plan set --json prints the plan" '{"plan":"team","monthly":40,"cap":80,"low_balance":null}' "$OUT"
    ctl plan set team --monthly 40 --low-balance 10 --json
    expect_eq "plan set --low-balance --json: the threshold as a number" \
        '{"plan":"team","monthly":40,"cap":80,"low_balance":10}' "$OUT"
    ctl pack set mini --credits 7 --valid-days 3 --json
    expect_eq "pack set --json prints the pack" '{"pack":"mini","credits":7,"valid_days":3}' "$OUT"

    ctl result r-applied --json
    expect_json "result --json is one JSON object" "$OUT"
    expect_eq "result --json: the result" r-applied "$(json_get "$OUT" '{id}')"

    ctl consume --user u1 --amount 2 --id t-json-1 --json
    expect_json "consume --json is one JSON object" "$OUT"
    expect_eq "consume --json: id, type, stream" "t-json-1 consume credits:jobs:consume" \
        "$(json_get "$OUT" '{id}') $(json_get "$OUT" '{type}') $(json_get "$OUT" '{stream}')"
    expect_match "consume --json: the new entry's ID" '^[0-9]+-[0-9]+$' "$(json_get "$OUT" '{entry}')"
    ctl purchase --user u1 --pack starter --payment-ref pay-json --json
    expect_match "purchase --json: a generated ID" '^cli-[0-9a-f]{32}$' "$(json_get "$OUT" '{id}')"
    ctl allocate --user u1 --plan pro --period 2026-12 --json
    expect_eq "allocate --json: its stream" credits:jobs:allocate "$(json_get "$OUT" '{stream}')"
}

# ------------------------------------------------------------------------
# With the worker: --wait round trips.
# ------------------------------------------------------------------------

# A hold shows in balance with its expiry; a capture's net change is one
# line of history, its release of the rest one entry per lot.
holds_round_trip() {
    local wait_s=$1
    ctl hold --user w1 --amount 50 --ttl 600 --tool veo --ref r-1 --id w-hold-1 --wait \
        --timeout "$wait_s"
    expect_match "hold --wait: applied, 50 held" '"status":"applied",.*"held":50,' "$OUT"
    ctl balance w1
    expect_eq "balance counts the hold as held, not usable" 1 \
        "$(count_lines '^ *750 +450 +300 +0 +50 ' "$OUT")"
    expect_eq "balance lists the open hold with its expiry" 1 \
        "$(count_lines '^w-hold-1 +50 +[0-9T:Z-]+ +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z +veo +r-1$' "$OUT")"
    ctl balance w1 --json
    expect_eq "balance --json: the hold" "w-hold-1 50 50" \
        "$(json_get "$OUT" '{holds,0,hold}') $(json_get "$OUT" '{holds,0,amount}') $(json_get "$OUT" '{held}')"
    ctl capture --user w1 --hold w-hold-1 --amount 20 --id w-capture-1 --wait --timeout "$wait_s"
    expect_match "capture --wait: 20 charged, 30 released" \
        '"status":"applied",.*"charged":20,"released":30,' "$OUT"
    ctl balance w1
    expect_match "balance after the capture: no open holds" 'no open holds' "$OUT"
    ctl history w1 --limit 2
    expect_match "history: the capture gives back 30, the hold took 50" \
        '^time +type +delta +job .*
[0-9T:Z-]+ +capture +30 +w-capture-1 .*
[0-9T:Z-]+ +hold +-50 +w-hold-1 +veo +r-1 ' "$OUT"
    ctl history w1 --per-lot --limit 1
    expect_match "history --per-lot: the release names the hold it gives back" \
        ' release +30 +[0-9]+ +w-capture-1 +w-hold-1 ' "$OUT"
}

worker_round_trips() {
    start_test_worker
    local wait_s=20
    ctl purchase --user w1 --pack starter --payment-ref w-pay-1 --wait --timeout "$wait_s"
    expect_eq "purchase --wait exits 0" 0 "$STATUS"
    expect_match "purchase --wait: applied, the pack's credits granted" \
        '"type":"purchase","user":"w1","status":"applied",.*"granted":600,' "$OUT"
    ctl allocate --user w1 --plan pro --period 2026-11 --wait --timeout "$wait_s"
    expect_match "allocate --wait: applied, the plan's credits granted" \
        '"status":"applied",.*"granted":300,' "$OUT"
    ctl consume --user w1 --amount 100 --id w-consume-1 --wait --timeout "$wait_s"
    expect_match "consume --wait: applied, packs spent first" \
        '"status":"applied","balance":\{"total":800,"pack":500,"monthly":300,"grant":0,"held":0\},"charged":100,' "$OUT"
    ctl consume --user w1 --amount 100000 --wait --timeout "$wait_s"
    expect_match "consume --wait beyond the balance: insufficient_credits" \
        '"status":"rejected","error":"insufficient_credits"' "$OUT"
    ctl result w-consume-1
    expect_match "result reads the stored result" '"id":"w-consume-1",.*"status":"applied"' "$OUT"
    ctl balance w1
    expect_eq "balance after the worker: 800 = 500 pack + 300 monthly" 1 \
        "$(count_lines '^ *800 +500 +300 +0 +0 ' "$OUT")"
    holds_round_trip "$wait_s"
    stop_worker "$WORKER_PID"
    expect_eq "credits-worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
}

check_migrate
check_migrate_libc_collation
check_unspent_lots_index
check_plans
check_packs
check_accounts
check_usage_errors
check_enqueue
check_result
check_empty_user
check_seeded_user
check_help
check_json
worker_round_trips
finish
