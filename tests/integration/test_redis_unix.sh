#!/usr/bin/env bash
# test_redis_unix.sh -- CREDITS_REDIS_URL=unix://[[user]:password@]/path[?db=N]:
# credits-worker and creditsctl reach a Redis that listens on a Unix socket
# only, with a password and a database number.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"

SOCKET="$TEST_DIR/redis-unix.sock"
PASSWORD='unix-pw-41'
mkdir -p "$TEST_DIR/redis-unix"
start_server "$TEST_DIR/redis-unix/out" redis-server --port 0 --unixsocket "$SOCKET" \
    --unixsocketperm 700 --requirepass "$PASSWORD" --save '' --appendonly no \
    --dir "$TEST_DIR/redis-unix" --daemonize no
sock_redis() { redis-cli -s "$SOCKET" -a "$PASSWORD" --no-auth-warning -n 3 "$@"; }
wait_until 100 value_is PONG sock_redis PING || fail "the socket Redis did not start"

export CREDITS_REDIS_URL="unix://:$PASSWORD@$SOCKET?db=3"

migrate
"$CREDITSCTL" plan set pro --monthly 100 >/dev/null
"$CREDITSCTL" pack set starter --credits 50 >/dev/null

ctl consume --user u1 --amount 1 --id x-early
expect_eq "creditsctl enqueues over the socket" 0 "$STATUS"
expect_eq "the job is in database 3 of the socket Redis" 1 "$(sock_redis XLEN credits:jobs:consume)"

start_worker
ctl allocate --user u1 --plan pro --period 2026-11 --id x-alloc --wait --timeout 10
expect_match "a worker on the socket applies an allocate" '"status":"applied"' "$OUT"
ctl purchase --user u1 --pack starter --payment-ref x-pay --id x-buy --wait --timeout 10
expect_match "and a purchase" '"granted":50' "$OUT"
ctl consume --user u1 --amount 30 --id x-use --wait --timeout 10
expect_match "and a consume" '"charged":30' "$OUT"
ctl result x-early
expect_match "the job enqueued before the worker started is decided" '"status":"rejected"' "$OUT"
expect_match "(it found no credits then)" 'insufficient_credits' "$OUT"
expect_eq "results are in database 3" 1 "$(sock_redis EXISTS credits:result:x-use)"
expect_eq "nothing went to database 0" 0 \
    "$(redis-cli -s "$SOCKET" -a "$PASSWORD" --no-auth-warning -n 0 DBSIZE)"
expect_match "the worker logs the socket URL, password hidden" \
    "redis=unix://:\*\*\*@$SOCKET\?db=3" "$(cat "$TEST_DIR/worker-0.log")"
if grep -qF "$PASSWORD" "$TEST_DIR/worker-0.log"; then
    fail "the worker's log holds the Redis password"
else
    pass "the worker's log does not hold the Redis password"
fi
stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"

shown=$("$WORKER" --check-config | grep '^CREDITS_REDIS_URL=')
expect_eq "--check-config shows the socket URL, password hidden" \
    "CREDITS_REDIS_URL=unix://:***@$SOCKET?db=3" "$shown"

# A socket that is not there: creditsctl says where it looked.
CREDITS_REDIS_URL="unix://$TEST_DIR/none.sock" ctl result x-use
expect_eq "a missing socket: creditsctl exits 1" 1 "$STATUS"
expect_match "a missing socket: creditsctl names it" \
    "cannot connect to Redis at $TEST_DIR/none.sock" "$ERR"
# A relative path is a bad setting, refused at start-up.
status=0
CREDITS_REDIS_URL="unix://redis.sock" "$WORKER" --check-config >/dev/null 2>&1 || status=$?
expect_eq "a relative socket path is refused (exit 2)" 2 "$status"

finish
