#!/usr/bin/env bash
# run.sh -- runs the credits-worker benchmark (tests/bench/bench.c) end to
# end: builds it (Release) if needed, starts throwaway durable Redis and
# PostgreSQL (fsync and synchronous_commit on), migrates, loads the bench
# catalog, runs the bench binary and stops the servers by PID on exit.
#
#   tests/bench/run.sh [BUILD_DIR] [bench options...]
#
# BUILD_DIR defaults to build-bench (relative to the repository root). Bench
# options (--jobs, --users, --rate, --seconds, --batch, ...) are passed on;
# see tests/bench/README.md. With --worker-b PATH (a credits-worker built
# elsewhere, e.g. from an older commit) every run is made for BUILD_DIR's
# worker (A) and PATH (B) in turn; --worker PATH makes PATH the A worker
# instead of BUILD_DIR's (which still provides creditsctl, the migrations
# and bench). Relative paths are taken from the repository root, like
# BUILD_DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

BUILD=${1:-build-bench}
[ $# -gt 0 ] && shift
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac

echo "== building (Release) in $BUILD"
mkdir -p "$BUILD"
build_failed() {
    tail -30 "$BUILD/bench-build.log" >&2
    echo "run.sh: $1 failed (full log: $BUILD/bench-build.log)" >&2
    if grep -q "target 'bench'\|target \"bench\"\|unknown target 'bench'" "$BUILD/bench-build.log"; then
        echo "run.sh: no bench target: tests/CMakeLists.txt needs add_subdirectory(bench)" >&2
    fi
    exit 1
}
# A new build directory is configured as Release; an existing one is
# configured again from its own cache (and its own source directory).
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$BUILD/bench-build.log" 2>&1 ||
        build_failed "configuring"
else
    cmake "$BUILD" >"$BUILD/bench-build.log" 2>&1 || build_failed "configuring"
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
[ "$build_type" = Release ] ||
    echo "run.sh: warning: $BUILD is a '$build_type' build, not Release" >&2
cmake --build "$BUILD" -j"$(nproc)" --target credits-worker creditsctl bench \
    >>"$BUILD/bench-build.log" 2>&1 || build_failed "the build"
BENCH="$BUILD/tests/bench/bench"
[ -x "$BENCH" ] || BENCH="$BUILD/bench"
[ -x "$BENCH" ] || { echo "run.sh: no bench binary under $BUILD" >&2; exit 1; }
CTL="$BUILD/creditsctl"

# A worker named in the options (--worker, --worker-b) must exist before
# any server starts; without --worker, A is BUILD_DIR's worker.
WORKER=("--worker" "$BUILD/credits-worker")
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in --worker | --worker-b) ;; *) continue ;; esac
    [ "${args[i]}" = --worker ] && WORKER=()
    other=${args[i + 1]:-}
    [ -n "$other" ] && [ -x "$other" ] && [ ! -d "$other" ] ||
        { echo "run.sh: ${args[i]}: '$other' is not an executable file" >&2; exit 2; }
done

# A short path under /tmp: the PostgreSQL socket path must fit in sun_path,
# and the postgres user must be able to reach it.
DIR=$(mktemp -d /tmp/credits-bench.XXXXXX)
status=0
# Stops the servers by their recorded PIDs (servers.sh stop; if that fails,
# SIGINT to the same PIDs, bounded wait).
stop_servers() {
    "$ROOT/deploy/servers.sh" stop "$DIR" && return 0
    echo "run.sh: servers.sh stop failed; stopping the servers by PID" >&2
    local f pid
    for f in "$DIR/redis/pid" "$DIR/pg/pid"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill -INT "$pid" 2>/dev/null || continue
        for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    return 0
}

cleanup() {
    stop_servers
    if [ "$status" != 0 ] && [ -s "$DIR/worker.log" ]; then
        echo "-- last lines of the workers' log ($DIR/worker.log):" >&2
        tail -20 "$DIR/worker.log" >&2
    fi
    if [ "${KEEP_BENCH_DIR:-0}" = 1 ]; then
        echo "run.sh: kept $DIR" >&2
    else
        rm -rf "$DIR"
    fi
}
trap 'status=$?; cleanup' EXIT

echo "== starting durable servers under $DIR"
"$ROOT/deploy/servers.sh" start "$DIR" --durable
# shellcheck source=/dev/null
. "$DIR/env"
unset CREDITS_PREFIX CREDITS_CONSUMER CREDITS_BATCH_MAX CREDITS_GROUP

echo "== migrating and loading the bench catalog"
"$CTL" migrate >/dev/null
# A plan far above any spending (the bounds of schemas/001_ledger.sql), and a
# small pack, so that pack lots are spent and do not pile up. Its low-balance
# threshold is the seeding allocation itself: each user's first spending
# crosses it (balance_low) and a later allocation crosses it back
# (balance_recovered), so the drains write and publish events (contract 9.8).
"$CTL" plan set bench --monthly 1000000000000 --cap 2000000000000 \
    --low-balance 1000000000000 >/dev/null
"$CTL" pack set bench --credits 10 --valid-days 90 >/dev/null
# One credit a pack: the many-lots rows give one user thousands of them.
"$CTL" pack set one --credits 1 --valid-days 90 >/dev/null

commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -c . || true)
echo "== running the benchmark (source: commit $commit, $dirty files changed since)"
echo "\$ $BENCH${WORKER[*]:+ ${WORKER[*]}} $*"
"$BENCH" "${WORKER[@]}" --worker-log "$DIR/worker.log" \
    --pg-pid "$(cat "$DIR/pg/pid")" --redis-pid "$(cat "$DIR/redis/pid")" "$@"
