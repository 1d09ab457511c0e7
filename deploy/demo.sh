#!/usr/bin/env bash
# demo.sh -- the README's first command. On a fresh Debian 12 machine:
# installs the packages, builds, starts throwaway Redis and PostgreSQL under
# .local/demo (durable settings), migrates, loads an example catalog, starts
# the worker and runs a short demo, printing each result. Stops everything it
# started (by PID) when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash deploy/install-deps.sh
echo "== building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target credits-worker creditsctl >/dev/null
CTL="$ROOT/build/creditsctl"

DIR="$ROOT/.local/demo"
mkdir -p "$DIR"
# PostgreSQL runs as its own user, which must be able to reach the directory.
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$DIR" 2>/dev/null; then
    DIR=$(mktemp -d /tmp/credits-demo.XXXXXX)
fi
# A throwaway directory: stop what an earlier run left, and start afresh.
[ -f "$DIR/env" ] && deploy/servers.sh stop "$DIR"
rm -rf "$DIR/redis" "$DIR/pg"
WORKER_PID=
cleanup() {
    [ -n "$WORKER_PID" ] && kill -TERM "$WORKER_PID" 2>/dev/null && wait "$WORKER_PID" || true
    "$ROOT/deploy/servers.sh" stop "$DIR"
}
trap cleanup EXIT

echo "== starting Redis and PostgreSQL (fsync on) under $DIR"
deploy/servers.sh start "$DIR" --durable
# shellcheck source=/dev/null
. "$DIR/env"
export CREDITS_CONSUMER=demo-worker
echo "Redis:      $CREDITS_REDIS_URL"
echo "PostgreSQL: $CREDITS_DATABASE_URL"
echo "            $CREDITS_DATABASE_URI (the same database as a URI; CREDITS_DATABASE_URL takes either form)"

echo "== migrating and loading an example catalog"
"$CTL" migrate
"$CTL" plan set pro --monthly 1000 --cap 2000 >/dev/null
"$CTL" pack set starter --credits 500 --valid-days 90 >/dev/null
"$CTL" plan list
"$CTL" pack list

echo "== starting credits-worker (log: $DIR/worker.log)"
"$ROOT/build/credits-worker" 2>"$DIR/worker.log" &
WORKER_PID=$!

step() { echo; echo "-- $1"; shift; echo "\$ creditsctl $*"; "$CTL" "$@"; }

run=$(date +%s)
step "a payment webhook: alice buys the starter pack (500 credits, 90 days)" \
    purchase --user alice --pack starter --payment-ref "pay-$run" --id "demo-$run-buy" --wait
step "the scheduler: alice's monthly allocation on the pro plan" \
    allocate --user alice --plan pro --period 2026-11 --id "demo-$run-alloc" --wait
step "the web app: an upscale run costs 700 credits (pack credits go first)" \
    consume --user alice --amount 700 --tool upscale --ref video-42 --id "demo-$run-c1" --wait
step "an expensive run that alice cannot afford" \
    consume --user alice --amount 5000 --tool render --id "demo-$run-c2" --wait
step "the web app retries the first run with the same idempotency key: a replay, nothing spent twice" \
    consume --user alice --amount 700 --tool upscale --ref video-42 --id "demo-$run-c1" --wait
step "alice's balance" balance alice
step "alice's history" history alice --limit 10

echo
kill -TERM "$WORKER_PID"
status=0
wait "$WORKER_PID" || status=$?
WORKER_PID=
echo "== credits-worker stopped on SIGTERM with exit status $status"
