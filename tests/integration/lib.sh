# lib.sh -- shared set-up for integration test scripts (source it).
#
# Starts a throwaway Redis and PostgreSQL on loopback for this script alone,
# migrates the schema, and stops everything it started by PID on exit.
# Expects BUILD_DIR (the CMake build directory) in the environment; ctest
# passes it.

set -euo pipefail

: "${BUILD_DIR:?BUILD_DIR must point at the build directory}"
SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CREDITSCTL="$BUILD_DIR/creditsctl"
WORKER="$BUILD_DIR/credits-worker"

# Short path: the PostgreSQL socket path must fit in sun_path.
TEST_DIR=$(mktemp -d /tmp/cw.XXXXXX)
WORKER_PIDS=()
SERVER_PIDS=()

cleanup() {
    local pid
    for pid in "${WORKER_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    "$SOURCE_DIR/deploy/servers.sh" stop "$TEST_DIR" || true
    if [ "${KEEP_TEST_DIR:-0}" != 1 ]; then rm -rf "$TEST_DIR"; fi
}
trap cleanup EXIT

"$SOURCE_DIR/deploy/servers.sh" start "$TEST_DIR" >/dev/null
# shellcheck source=/dev/null
. "$TEST_DIR/env"
export CREDITS_CONSUMER=test-worker
export CREDITS_BLOCK_MS=200
# The HTTP endpoint is off unless a test asks for it: test scripts run in
# parallel and would clash on its default port.
export CREDITS_HTTP_ADDR=

FAILURES=0
CHECKS=0

pass() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILURES=$((FAILURES + 1)); echo "not ok - $*"; }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}

# expect_match WHAT REGEX TEXT
expect_match() {
    if [[ "$3" =~ $2 ]]; then pass "$1"; else fail "$1: [$3] does not match /$2/"; fi
}

# expect_status WHAT CODE command... -- runs the command, checks its exit code.
expect_status() {
    local what=$1 code=$2 actual=0
    shift 2
    "$@" >/dev/null 2>&1 || actual=$?
    expect_eq "$what (exit status)" "$code" "$actual"
}

psql_value() { psql "$CREDITS_DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

redis() { redis-cli -p "$CREDITS_TEST_REDIS_PORT" "$@"; }

migrate() { "$CREDITSCTL" migrate >/dev/null; }

# start_worker [ENV=VALUE ...] -- starts credits-worker in the background,
# logging to $TEST_DIR/worker-N.log; sets WORKER_PID.
start_worker() {
    local log="$TEST_DIR/worker-${#WORKER_PIDS[@]}.log"
    env "$@" "$WORKER" 2>"$log" &
    WORKER_PID=$!
    WORKER_PIDS+=("$WORKER_PID")
}

# start_server LOG COMMAND... -- starts a server of the test's own (a Redis
# with an ACL file, a TLS tunnel) in the foreground of a background job,
# output to LOG; sets SERVER_PID. cleanup stops it by that PID.
start_server() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    SERVER_PIDS+=("$SERVER_PID")
}

# free_port -- a loopback TCP port nothing listens on now (servers.sh says why
# it is below the ephemeral range).
free_port() { "$SOURCE_DIR/deploy/servers.sh" free-port; }

# stop_worker PID -- SIGTERM, then waits; sets WORKER_STATUS to the exit
# status (call it directly, not in $(...): only this shell can wait).
stop_worker() {
    WORKER_STATUS=0
    kill -TERM "$1"
    wait "$1" || WORKER_STATUS=$?
}

# finish -- prints the plain summary line and exits non-zero on failure.
finish() {
    echo "$((CHECKS - FAILURES)) passed, $FAILURES failed"
    [ "$FAILURES" -eq 0 ]
}
