#!/usr/bin/env bash
# test_secrets.sh -- a malformed CREDITS_DATABASE_URL is refused at start-up
# (exit status 2, one fixed message) by credits-worker and creditsctl, and
# the password in it never reaches their output; well-formed ones still work.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

SECRET='S3cr3t-pw-0917'
PG="host=127.0.0.1 port=$CREDITS_TEST_PG_PORT"
MESSAGE='CREDITS_DATABASE_URL is not a valid connection string'

# Each malformed in its own way; libpq's own parse error would quote the
# token it stopped at, which is or holds the password.
MALFORMED=(
    "$PG user=postgres password='$SECRET dbname=postgres"
    "$PG user=postgres $SECRET"
    "postgresql://postgres:$SECRET%zz@127.0.0.1:$CREDITS_TEST_PG_PORT/postgres"
    "$PG user=postgres passwd=$SECRET"
)

migrate

# no_secret WHAT FILE -- the file does not hold the password.
no_secret() {
    if grep -qF -- "$SECRET" "$2"; then
        fail "$1 holds the password: $(grep -F -- "$SECRET" "$2" | head -3)"
    else
        pass "$1 does not hold the password"
    fi
}

# run_worker FILE ARGS... -- credits-worker with a bounded run time (a
# worker that does not refuse the setting would retry forever); sets STATUS.
run_worker() {
    local out=$1
    shift
    STATUS=0
    timeout 10 "$WORKER" "$@" >"$out" 2>&1 || STATUS=$?
}

n=0
for url in "${MALFORMED[@]}"; do
    n=$((n + 1))
    out="$TEST_DIR/worker-$n.out"
    CREDITS_DATABASE_URL=$url run_worker "$out"
    expect_eq "malformed URL $n: the worker exits 2" 2 "$STATUS"
    expect_eq "malformed URL $n: the worker says why, in one line" \
        "credits-worker: $MESSAGE" "$(cat "$out")"
    no_secret "malformed URL $n: the worker's output" "$out"

    CREDITS_DATABASE_URL=$url run_worker "$out" --check-config
    expect_eq "malformed URL $n: --check-config exits 2" 2 "$STATUS"
    no_secret "malformed URL $n: --check-config's output" "$out"

    run_worker "$out" --database-url "$url"
    expect_eq "malformed URL $n: --database-url exits 2" 2 "$STATUS"
    no_secret "malformed URL $n: the output with --database-url" "$out"

    for command in "balance u1" migrate "plan list"; do
        status=0
        # shellcheck disable=SC2086 # the words of $command are its arguments
        CREDITS_DATABASE_URL=$url "$CREDITSCTL" $command >"$out" 2>&1 || status=$?
        expect_eq "malformed URL $n: creditsctl $command exits 2" 2 "$status"
        expect_eq "malformed URL $n: creditsctl $command says why" \
            "creditsctl ${command% u1}: $MESSAGE" "$(cat "$out")"
        no_secret "malformed URL $n: creditsctl $command's output" "$out"
    done
done

# A settings file: the message names the file and the line, not the value.
printf 'CREDITS_DATABASE_URL=%s\n' "${MALFORMED[0]}" >"$TEST_DIR/bad.env"
run_worker "$TEST_DIR/file.out" --config "$TEST_DIR/bad.env"
expect_eq "a malformed URL in a settings file: exit 2" 2 "$STATUS"
expect_eq "a malformed URL in a settings file: the file and line named" \
    "credits-worker: $TEST_DIR/bad.env:1: $MESSAGE" "$(cat "$TEST_DIR/file.out")"

# Well-formed values are not refused: a URI with a password (trust
# authentication ignores it), a keyword string, a bare database name.
for url in "postgresql://postgres:$SECRET@127.0.0.1:$CREDITS_TEST_PG_PORT/postgres" \
    "$PG user=postgres password=$SECRET dbname=postgres" postgres ''; do
    status=0
    CREDITS_DATABASE_URL=$url "$WORKER" --check-config >"$TEST_DIR/ok.out" 2>&1 || status=$?
    expect_eq "--check-config accepts [${url//$SECRET/***}]" 0 "$status"
    no_secret "--check-config's output for a well-formed URL" "$TEST_DIR/ok.out"
done

# The worker runs with the password in a well-formed URI, connects, and
# its log never shows it.
start_worker CREDITS_DATABASE_URL="postgresql://postgres:$SECRET@127.0.0.1:$CREDITS_TEST_PG_PORT/postgres"
"$CREDITSCTL" pack set starter --credits 100 >/dev/null
"$CREDITSCTL" purchase --user s1 --pack starter --payment-ref s-pay-1 --id s-buy --wait \
    >"$TEST_DIR/purchase.out" 2>&1 || true
expect_match "a worker with a password in its URI decides jobs" '"status":"applied"' \
    "$(cat "$TEST_DIR/purchase.out")"
stop_worker "$WORKER_PID"
expect_eq "that worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
no_secret "that worker's log" "$TEST_DIR/worker-0.log"

finish
