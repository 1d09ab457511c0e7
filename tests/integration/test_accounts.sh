#!/usr/bin/env bash
# test_accounts.sh -- the accounts' lock (contract 8: a batch locks its
# users' account rows) when the worker skips creating rows it has seen: an
# account row deleted by hand after the worker saw it is found missing by
# the lock, the batch is rolled back and retried with the row created
# again, and nothing is lost, doubled or applied unlocked.
#
#   BUILD_DIR=build tests/integration/test_accounts.sh

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/ctl_lib.sh"

job() { ctl "$@" --wait --timeout 20; }
got() { json_get "$OUT" "{$1}"; }
account_rows() { psql_value "SELECT count(*) FROM credits.accounts WHERE user_id = '$1'"; }
retries() { grep -c 'batch_retry.*accounts missing' "$TEST_DIR/worker-0.log" || true; }

check_known_account_deleted() {
    job grant --user a1 --amount 10 --id a1-g
    job consume --user a1 --amount 3 --id a1-c1
    expect_eq "the first consume is applied" "applied 7" "$(got status) $(got balance,total)"
    expect_eq "no retry while the rows are there" 0 "$(retries)"

    psql_value "DELETE FROM credits.accounts WHERE user_id = 'a1'" >/dev/null
    expect_eq "the account row is gone" 0 "$(account_rows a1)"
    job consume --user a1 --amount 2 --id a1-c2
    expect_eq "a consume of the user whose row was deleted is applied once, on the right balance" \
        "applied 5" "$(got status) $(got balance,total)"
    expect_eq "its batch was retried once, the missing row named in the log" 1 "$(retries)"
    expect_eq "the retry created the row again" 1 "$(account_rows a1)"
    expect_eq "one entry for the consume, no more" 1 \
        "$(psql_value "SELECT count(*) FROM credits.entries WHERE job_id = 'a1-c2'")"

    job consume --user a1 --amount 1 --id a1-c3
    job consume --user b1 --amount 1 --id b1-c1
    expect_eq "a user never seen: a stored rejection, its row created" \
        "rejected insufficient_credits 1" "$(got status) $(got error) $(account_rows b1)"
    expect_eq "the jobs after it need no retry" 1 "$(retries)"
    expect_eq "the balance after them" 4 \
        "$(psql_value "SELECT total FROM credits.balances WHERE user_id = 'a1'")"
}

check_audit() {
    ctl audit
    expect_eq "creditsctl audit finds nothing wrong" 0 "$STATUS"
}

migrate
start_test_worker
check_known_account_deleted
check_audit
stop_worker "$WORKER_PID"
expect_eq "credits-worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
