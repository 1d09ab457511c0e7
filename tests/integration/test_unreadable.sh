#!/usr/bin/env bash
# test_unreadable.sh -- a row the worker cannot read (a lot kind that a
# newer schema added, during a rolling deploy) is an operating error: the
# worker does not crash, dead-letters nothing, keeps the entries pending,
# says it is not ready and why, and decides every job once the row is
# readable again.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

HTTP_PORT=$(free_port)
URL="http://127.0.0.1:$HTTP_PORT"
metric() { curl -s --max-time 5 "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

migrate
"$CREDITSCTL" plan set pro --monthly 100 >/dev/null
start_worker CREDITS_HTTP_ADDR="127.0.0.1:$HTTP_PORT"
"$CREDITSCTL" allocate --user u1 --plan pro --period 2026-11 --wait --timeout 10 >/dev/null
expect_eq "the worker is ready before" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")"

# What a newer worker's migration could add: a lot of a kind this worker
# does not know.
psql_value "ALTER TABLE credits.lots DROP CONSTRAINT lots_kind_check, DROP CONSTRAINT lots_kind_columns;
INSERT INTO credits.lots (lot_id, user_id, kind, granted, remaining, granted_at, job_id)
VALUES (nextval('credits.lot_id_seq'), 'u1', 'future', 5, 5, now(), 'alloc:u1');" >/dev/null

"$CREDITSCTL" consume --user u1 --amount 7 --id c-waits >/dev/null
"$CREDITSCTL" consume --user u2 --amount 1 --id c-other >/dev/null
for _ in $(seq 1 100); do
    grep -q 'event=database_unavailable' "$TEST_DIR/worker-0.log" && break
    sleep 0.1
done
log=$(cat "$TEST_DIR/worker-0.log")
expect_match "the worker logs the row it cannot read, at error" \
    'level=error event=database_unavailable .*lot kind .future. is not one this worker knows' "$log"
expect_eq "the worker is still running" 0 "$(kill -0 "$WORKER_PID" 2>/dev/null; echo $?)"
expect_eq "/readyz answers 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")"
expect_match "/readyz says why" 'postgres cannot decide batches' "$(curl -s "$URL/readyz")"
expect_eq "/healthz stays 200 (a restart would not help)" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")"
unavailable=$(metric 'credits_db_errors_total{kind="unavailable"}')
expect_eq "the metric counts it" 1 "$([ "${unavailable:-0}" -ge 1 ] && echo 1 || echo 0)"
expect_eq "nothing is dead-lettered" 0 "$(redis XLEN credits:dead)"
expect_eq "no result yet" 0 "$(redis EXISTS credits:result:c-waits)"
expect_eq "no entry is acknowledged (the stream keeps both)" 2 "$(redis XLEN credits:jobs:consume)"
expect_eq "the first is pending" 1 \
    "$([ "$(redis XPENDING credits:jobs:consume credits-worker | head -1)" -ge 1 ] && echo 1 || echo 0)"

# The row becomes readable (the operator rolls back, or the new worker
# takes over): the waiting jobs are decided, once.
psql_value "DELETE FROM credits.lots WHERE kind = 'future'" >/dev/null
for _ in $(seq 1 200); do
    [ "$(redis EXISTS credits:result:c-other)" = 1 ] && break
    sleep 0.1
done
expect_match "the waiting consume is decided" 'applied' \
    "$(redis --raw GET credits:result:c-waits | tr -d '\000')"
expect_match "so is the other user's, batched with it" 'insufficient_credits' \
    "$(redis --raw GET credits:result:c-other | tr -d '\000')"
expect_eq "it was applied once" 1 \
    "$(psql_value "SELECT count(*) FROM credits.entries WHERE job_id = 'c-waits'")"
expect_eq "nothing is left pending" 0 "$(redis XPENDING credits:jobs:consume credits-worker | head -1)"
for _ in $(seq 1 30); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ] && break
    sleep 0.1
done
expect_eq "the worker is ready again" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")"
expect_match "and says so" 'event=database_available' "$(cat "$TEST_DIR/worker-0.log")"

stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
