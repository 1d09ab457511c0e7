#!/usr/bin/env bash
# test_schedule.sh -- integration test of `creditsctl schedule` against a
# throwaway Redis and PostgreSQL (lib.sh) and the real worker: one allocate
# job per account with a plan (over several pages of accounts), users whose
# job would break the ID rule skipped and counted, a progress bar only on a
# terminal, and a second run for the same period allocating nothing twice.
#
#   BUILD_DIR=build tests/integration/test_schedule.sh

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/ctl_lib.sh"

# More than two pages (SCHEDULE_PAGE_ROWS is 1000).
PLANNED=2500
WAIT_TRIES=1200 # 120 s
LONG_USER=$(printf 'L%.0s' $(seq 1 125)) # a valid user; alloc:{user}:{period} is 139 bytes

seed_accounts() {
    "$CREDITSCTL" plan set pro --monthly 100 >/dev/null
    "$CREDITSCTL" plan set basic --monthly 10 >/dev/null
    psql "$CREDITS_DATABASE_URL" -Xq -v ON_ERROR_STOP=1 -v long="$LONG_USER" <<'SQL'
INSERT INTO credits.accounts (user_id, plan_id)
SELECT 's' || lpad(i::text, 5, '0'), CASE WHEN i % 2 = 0 THEN 'pro' ELSE 'basic' END
  FROM generate_series(1, 2500) AS i;
INSERT INTO credits.accounts (user_id, plan_id)
SELECT 'noplan' || i, NULL FROM generate_series(1, 5) AS i;
INSERT INTO credits.accounts (user_id, plan_id) VALUES (:'long', 'pro'), ('bad user', 'pro');
SQL
}

lots_count() { psql_value "SELECT count(*) FROM credits.lots WHERE period = '2026-11'"; }
results_count() { redis XLEN credits:results; }

check_usage() {
    expect_status "schedule without --period" 2 "$CREDITSCTL" schedule
    expect_status "schedule --period 2026-13" 2 "$CREDITSCTL" schedule --period 2026-13
    expect_status "schedule --period 2026-1" 2 "$CREDITSCTL" schedule --period 2026-1
    expect_status "schedule --help" 0 "$CREDITSCTL" schedule --help
}

check_dry_run() {
    ctl schedule --period 2026-11 --dry-run
    expect_eq "schedule --dry-run exits 0" 0 "$STATUS"
    expect_eq "schedule --dry-run: the summary" \
        "schedule 2026-11: $((PLANNED + 2)) accounts with a plan, $PLANNED jobs would be enqueued (dry run), 2 skipped" \
        "$OUT"
    expect_eq "schedule --dry-run enqueues nothing" 0 "$(redis XLEN credits:jobs:allocate)"
    expect_match "skipped users are named on stderr" "skipped user 'bad user': the user ID breaks the ID rule" "$ERR"
    expect_match "a user too long for the job ID is named" "skipped user 'L+': the job ID .* over 128 bytes" "$ERR"

    local tty_out
    tty_out=$(script -qec "$CREDITSCTL schedule --period 2026-11 --dry-run" /dev/null)
    expect_match "on a terminal, a progress bar" "\\[#{30}\\] 100%  $((PLANNED + 2))/$((PLANNED + 2)) accounts" "$tty_out"
}

check_first_run() {
    ctl schedule --period 2026-11
    expect_eq "schedule exits 0" 0 "$STATUS"
    expect_eq "schedule: the summary" \
        "schedule 2026-11: $((PLANNED + 2)) accounts with a plan, $PLANNED jobs enqueued on credits:jobs:allocate, 2 skipped" \
        "$OUT"
    expect_eq "without a terminal, no progress bar" 0 "$(count_lines $'\r|\\[#' "$ERR")"
    expect_eq "stderr holds only the skipped users" 2 "$(count_lines 'skipped user' "$ERR")"
    expect_eq "one job per account with a plan" "$PLANNED" "$(redis XLEN credits:jobs:allocate)"

    start_test_worker
    wait_until "$WAIT_TRIES" value_is "$PLANNED" lots_count
    expect_eq "the worker allocates every account once" "$PLANNED" "$(lots_count)"
    expect_eq "each account gets its plan's credits" "100|10" \
        "$(psql_value "SELECT max(granted) FILTER (WHERE plan_id = 'pro') || '|' ||
                              max(granted) FILTER (WHERE plan_id = 'basic')
                         FROM credits.lots WHERE period = '2026-11'")"
    ctl result alloc:s00002:2026-11
    expect_match "the job ID is alloc:{user}:{period}, a first decision" \
        '"id":"alloc:s00002:2026-11","type":"allocate","user":"s00002","status":"applied",.*"granted":100,.*"replayed":false' "$OUT"
    expect_eq "accounts without a plan get nothing" 0 \
        "$(psql_value "SELECT count(*) FROM credits.lots WHERE user_id LIKE 'noplan%'")"
}

check_second_run() {
    local results_before entries_before
    wait_until "$WAIT_TRIES" value_is "$PLANNED" results_count
    results_before=$(results_count)
    entries_before=$(psql_value "SELECT count(*) FROM credits.entries")
    ctl schedule --period 2026-11 --json
    expect_eq "schedule again exits 0" 0 "$STATUS"
    expect_json "schedule --json is one JSON object" "$OUT"
    expect_eq "schedule --json: the summary" \
        "2026-11 credits:jobs:allocate false $((PLANNED + 2)) $PLANNED $PLANNED 2" \
        "$(json_get "$OUT" '{period}') $(json_get "$OUT" '{stream}') $(json_get "$OUT" '{dry_run}') $(json_get "$OUT" '{accounts}') $(json_get "$OUT" '{jobs}') $(json_get "$OUT" '{enqueued}') $(json_get "$OUT" '{skipped}')"
    wait_until "$WAIT_TRIES" value_is $((results_before + PLANNED)) results_count
    expect_eq "the worker decides the second run's jobs" $((results_before + PLANNED)) "$(results_count)"
    expect_eq "a second run allocates nothing twice" "$PLANNED" "$(lots_count)"
    expect_eq "a second run writes no entries" "$entries_before" \
        "$(psql_value "SELECT count(*) FROM credits.entries")"
    ctl result alloc:s02500:2026-11
    expect_match "a second run's results are replays" '"status":"applied",.*"replayed":true' "$OUT"
    stop_worker "$WORKER_PID"
    expect_eq "credits-worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
}

check_unreachable() {
    CREDITS_REDIS_URL=redis://127.0.0.1:1 ctl schedule --period 2026-12
    expect_eq "schedule with Redis unreachable exits 1" 1 "$STATUS"
    expect_match "schedule with Redis unreachable says so" 'cannot connect to Redis' "$ERR"
    CREDITS_DATABASE_URL="host=127.0.0.1 port=1 user=postgres" ctl schedule --period 2026-12
    expect_eq "schedule with Postgres unreachable exits 1" 1 "$STATUS"
}

migrate
check_usage
seed_accounts
check_dry_run
check_first_run
check_second_run
check_unreachable
finish
