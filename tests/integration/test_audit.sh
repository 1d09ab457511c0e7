#!/usr/bin/env bash
# test_audit.sh -- integration test of `creditsctl audit` against a throwaway
# Redis and PostgreSQL (lib.sh) and the real worker: clean after real
# traffic (purchases, allocations with forfeits, consumes across lots, an
# expiry, rejections), then each kind of corruption written with SQL is
# found, named, counted and shown, and undoing it makes the audit clean again.
#
#   BUILD_DIR=build tests/integration/test_audit.sh

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/ctl_lib.sh"

WAIT_S=20

# job TYPE ARGS... -- enqueues a job with --wait; fails the check unless the
# worker answered.
job() {
    ctl "$@" --wait --timeout "$WAIT_S"
    expect_eq "$* answered" 0 "$STATUS"
}

# psql_run SQL -- runs SQL (several statements) as one script.
psql_run() { psql "$CREDITS_DATABASE_URL" -Xq -v ON_ERROR_STOP=1 <<<"$1" >/dev/null; }

# ------------------------------------------------------------------------
# Real traffic
# ------------------------------------------------------------------------

real_traffic() {
    "$CREDITSCTL" plan set pro --monthly 100 --cap 150 >/dev/null
    "$CREDITSCTL" pack set starter --credits 50 >/dev/null
    "$CREDITSCTL" pack set short --credits 30 --valid-days 1 >/dev/null
    start_test_worker
    job purchase --user a1 --pack starter --payment-ref a-pay-1 --id a-buy-1
    job purchase --user a1 --pack short --payment-ref a-pay-2 --id a-buy-2
    job allocate --user a1 --plan pro --period 2026-01 --id a-alloc-1
    job allocate --user a1 --plan pro --period 2026-02 --id a-alloc-2
    expect_match "the second allocation forfeits over the cap" '"forfeited":50' "$OUT"
    # The short pack expires: the next job of a1 writes an expire entry.
    psql_run "UPDATE credits.lots SET expires_at = now() - interval '1 second'
               WHERE payment_ref = 'a-pay-2'"
    job consume --user a1 --amount 60 --tool t --ref r --id a-use-1
    expect_match "a consume across lots is applied" '"charged":60' "$OUT"
    expect_eq "the expired lot got an expire entry" "-30" \
        "$(psql_value "SELECT delta FROM credits.entries WHERE kind = 'expire'")"
    job consume --user a1 --amount 100000 --id a-use-big
    expect_match "a consume over the balance is rejected" 'insufficient_credits' "$OUT"
    job purchase --user a2 --pack nope --payment-ref a-pay-3 --id a-buy-bad
    expect_match "an unknown pack is rejected" 'unknown_pack' "$OUT"
    job allocate --user a2 --plan pro --period 2026-02 --id a-alloc-3
    job allocate --user a2 --plan pro --period 2026-01 --id a-alloc-4
    expect_match "an older period is rejected" 'stale_period' "$OUT"
    stop_worker "$WORKER_PID"
}

# ------------------------------------------------------------------------
# A clean ledger
# ------------------------------------------------------------------------

check_clean() {
    ctl audit
    expect_eq "audit after real traffic exits 0" 0 "$STATUS"
    expect_match "audit after real traffic: clean" $'\naudit: clean$' "$OUT"
    expect_eq "audit prints one line per check, all ok" 19 "$(count_lines '^ok +[a-z_]+ +0  ' "$OUT")"
    expect_match "audit names the snapshot" '^audit of the credits ledger, one snapshot at [0-9T:Z-]+$' \
        "$(head -1 <<<"$OUT")"
    ctl audit --json
    expect_eq "audit --json exits 0 when clean" 0 "$STATUS"
    expect_json "audit --json is one JSON object" "$OUT"
    expect_eq "audit --json: clean, 0 violations" "true 0" \
        "$(json_get "$OUT" '{clean}') $(json_get "$OUT" '{violations}')"
    expect_eq "audit --json: 19 checks, hold_job the last" "hold_job|" \
        "$(json_get "$OUT" '{checks,18,name}')|$(json_get "$OUT" '{checks,19}')"
}

# ------------------------------------------------------------------------
# Corruptions
# ------------------------------------------------------------------------

# expect_violation WHAT CHECK COUNT -- audit exits 1 with CHECK failed COUNT
# times and shows an example.
expect_violation() {
    local what=$1 check=$2 count=$3
    ctl audit
    expect_eq "$what: audit exits 1" 1 "$STATUS"
    expect_eq "$what: audit names $check" 1 "$(count_lines "^FAIL +$check +$count  " "$OUT")"
    expect_match "$what: the summary counts violations" $'\naudit: [0-9]+ violations$' "$OUT"
    expect_match "$what: an example row is shown under $check" \
        "FAIL +$check [^"$'\n'"]*"$'\n'"        +[a-z_]+ " "$OUT"
}

expect_clean_again() {
    ctl audit
    expect_eq "$1 undone: audit clean again" 0 "$STATUS"
}

corrupt_lot_remaining() {
    local lot
    lot=$(psql_value "SELECT lot_id FROM credits.lots WHERE payment_ref = 'a-pay-1'")
    psql_run "UPDATE credits.lots SET remaining = remaining + 1 WHERE lot_id = $lot"
    expect_violation "a lot's remaining changed by hand" lot_entries 1
    expect_eq "the same change breaks the user's sum" 1 "$(count_lines '^FAIL +user_entries +1  ' "$OUT")"
    expect_match "the example names the lot" "        +$lot +a1 " "$OUT"
    ctl audit --json --examples 1
    expect_json "audit --json with violations is one JSON object" "$OUT"
    expect_eq "audit --json: not clean, 2 violations" "false 2" \
        "$(json_get "$OUT" '{clean}') $(json_get "$OUT" '{violations}')"
    expect_eq "audit --json: the example of lot_entries" "lot_entries 1 $lot" \
        "$(json_get "$OUT" '{checks,1,name}') $(json_get "$OUT" '{checks,1,violations}') $(json_get "$OUT" '{checks,1,examples,0,lot_id}')"
    psql_run "UPDATE credits.lots SET remaining = remaining - 1 WHERE lot_id = $lot"
    expect_clean_again "the lot's change"
}

corrupt_extra_entry() {
    local lot
    lot=$(psql_value "SELECT lot_id FROM credits.lots WHERE period = '2026-02' AND user_id = 'a1'")
    psql_run "INSERT INTO credits.entries (user_id, job_id, lot_id, kind, delta)
              VALUES ('a1', 'a-use-1', $lot, 'consume', -3)"
    expect_violation "an entry inserted by hand" lot_entries 1
    ctl audit --examples 0
    expect_eq "--examples 0 shows no rows" 0 "$(count_lines '^        ' "$OUT")"
    psql_run "DELETE FROM credits.entries WHERE delta = -3 AND job_id = 'a-use-1'"
    expect_clean_again "the inserted entry"
}

corrupt_entry_user() {
    local entry
    entry=$(psql_value "SELECT min(entry_id) FROM credits.entries WHERE job_id = 'a-use-1'")
    psql_run "UPDATE credits.entries SET user_id = 'a2' WHERE entry_id = $entry"
    expect_violation "an entry moved to another user" entry_user 1
    expect_eq "its job is another user's too" 1 "$(count_lines '^FAIL +job_user +1  ' "$OUT")"
    psql_run "UPDATE credits.entries SET user_id = 'a1' WHERE entry_id = $entry"
    expect_clean_again "the moved entry"
}

corrupt_job_error() {
    psql_run "UPDATE credits.jobs SET error = 'unknown_pack' WHERE job_id = 'a-use-big'"
    expect_violation "a consume rejected as unknown_pack" job_status 1
    psql_run "UPDATE credits.jobs SET error = 'insufficient_credits' WHERE job_id = 'a-use-big'"
    expect_clean_again "the job's error"
}

corrupt_second_pack_lot() {
    psql_run "INSERT INTO credits.lots (user_id, kind, granted, remaining, granted_at, expires_at,
                                        job_id, pack_id, payment_ref)
              VALUES ('a1', 'pack', 5, 5, now(), now() + interval '9 days',
                      'a-buy-1', 'starter', 'a-pay-extra');
              INSERT INTO credits.entries (user_id, job_id, lot_id, kind, delta)
              VALUES ('a1', 'a-buy-1', currval('credits.lot_id_seq'), 'purchase', 5)"
    expect_violation "a purchase with two pack lots" purchase_lots 1
    psql_run "DELETE FROM credits.entries
               WHERE lot_id = (SELECT lot_id FROM credits.lots WHERE payment_ref = 'a-pay-extra');
              DELETE FROM credits.lots WHERE payment_ref = 'a-pay-extra'"
    expect_clean_again "the second lot"
}

corrupt_lot_of_rejected_job() {
    psql_run "INSERT INTO credits.lots (user_id, kind, granted, remaining, granted_at,
                                        job_id, plan_id, period)
              VALUES ('a2', 'monthly', 9, 9, now(), 'a-alloc-4', 'pro', '2026-01');
              INSERT INTO credits.entries (user_id, job_id, lot_id, kind, delta)
              VALUES ('a2', 'a-alloc-4', currval('credits.lot_id_seq'), 'allocate', 9)"
    expect_violation "a lot made by a rejected job" stray_lots 1
    expect_eq "and an entry of a rejected job" 1 "$(count_lines '^FAIL +entry_kind +1  ' "$OUT")"
    psql_run "DELETE FROM credits.entries
               WHERE lot_id = (SELECT lot_id FROM credits.lots WHERE job_id = 'a-alloc-4');
              DELETE FROM credits.lots WHERE job_id = 'a-alloc-4'"
    expect_clean_again "the rejected job's lot"
}

# Nothing but the audit checks these (002_checked_references.sql); a
# replica-mode session (as a restore would) is used to break them, and the
# audit finds the damage.
corrupt_missing_job() {
    local entry
    entry=$(psql_value "SELECT min(entry_id) FROM credits.entries WHERE job_id = 'a-use-1'")
    psql_run "SET session_replication_role = replica;
              UPDATE credits.entries SET job_id = 'ghost' WHERE entry_id = $entry"
    expect_violation "an entry whose job is gone" missing_job 1
    expect_match "the example names the job" "        +entry +$entry +ghost" "$OUT"
    psql_run "SET session_replication_role = replica;
              UPDATE credits.entries SET job_id = 'a-use-1' WHERE entry_id = $entry"
    expect_clean_again "the missing job"
}

# Constraints hold these; with the constraint dropped the audit still checks.
corrupt_bounds_and_sign() {
    local lot
    lot=$(psql_value "SELECT lot_id FROM credits.lots WHERE payment_ref = 'a-pay-1'")
    psql_run "ALTER TABLE credits.lots DROP CONSTRAINT lots_check;
              ALTER TABLE credits.entries DROP CONSTRAINT entries_sign;
              UPDATE credits.lots SET remaining = granted + 5 WHERE lot_id = $lot;
              INSERT INTO credits.entries (user_id, job_id, lot_id, kind, delta)
              VALUES ('a1', 'a-use-1', $lot, 'consume', 5)"
    expect_violation "a lot over its grant" lot_bounds 1
    expect_eq "a positive consume entry" 1 "$(count_lines '^FAIL +entry_sign +1  ' "$OUT")"
}

check_connection_errors() {
    CREDITS_DATABASE_URL="host=127.0.0.1 port=1 user=postgres" ctl audit
    expect_eq "audit with Postgres unreachable exits 1" 1 "$STATUS"
    expect_match "audit with Postgres unreachable says so" 'cannot connect to Postgres' "$ERR"
    expect_status "audit --examples -1" 2 "$CREDITSCTL" audit --examples -1
    expect_status "audit with an argument" 2 "$CREDITSCTL" audit extra
    expect_status "audit --help" 0 "$CREDITSCTL" audit --help
}

migrate
ctl audit
expect_eq "audit of an empty ledger exits 0" 0 "$STATUS"
real_traffic
check_clean
corrupt_lot_remaining
corrupt_extra_entry
corrupt_entry_user
corrupt_job_error
corrupt_second_pack_lot
corrupt_lot_of_rejected_job
corrupt_missing_job
corrupt_bounds_and_sign
check_connection_errors
finish
