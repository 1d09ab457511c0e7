#!/usr/bin/env bash
# test_db_unavailable.sh -- a database failure that hits every job blames no
# job: made read-only under load (a failover to a standby), a grant revoked,
# or every job refused for the same reason (the breaker), the worker
# dead-letters nothing, keeps the entries pending, says it is not ready and
# why, retries with backoff, and decides every job exactly once when the
# database accepts writes again.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"

HTTP_PORT=$(free_port)
URL="http://127.0.0.1:$HTTP_PORT"
readyz() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/readyz"; }
metric() { curl -s --max-time 5 "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
WAIT_TRIES=300 # 30 s

# The worker logs in as a member of credits_worker only, so that a grant
# can be taken from it.
"$CREDITSCTL" roles >/dev/null
psql_value "CREATE ROLE app LOGIN IN ROLE credits_worker" >/dev/null
migrate
"$CREDITSCTL" plan set pro --monthly 100000 >/dev/null
APP_URL="host=127.0.0.1 port=$CREDITS_TEST_PG_PORT user=app dbname=postgres"
start_worker CREDITS_HTTP_ADDR="127.0.0.1:$HTTP_PORT" CREDITS_DATABASE_URL="$APP_URL"
LOG="$TEST_DIR/worker-0.log"
"$CREDITSCTL" allocate --user u1 --plan pro --period 2026-11 --id u-alloc --wait --timeout 10 \
    >/dev/null
expect_eq "ready before" 200 "$(readyz)"

# enqueue PREFIX FROM TO -- consumes of 1 credit with IDs PREFIX-FROM..PREFIX-TO.
enqueue() {
    local i
    for i in $(seq "$2" "$3"); do "$CREDITSCTL" consume --user u1 --amount 1 --id "$1-$i" >/dev/null; done
}
decided() { psql_value "SELECT count(*) FROM credits.jobs WHERE job_id LIKE '$1-%'"; }
applied_once() {
    psql_value "SELECT count(*) FILTER (WHERE n = 1) || '/' || count(*)
                  FROM (SELECT job_id, count(*) AS n FROM credits.entries
                         WHERE job_id LIKE '$1-%' GROUP BY job_id) AS e"
}
results() {
    local n=0 i
    for i in $(seq "$2" "$3"); do
        redis --raw GET "credits:result:$1-$i" | tr -d '\000' | grep -aq applied && n=$((n + 1))
    done
    echo "$n"
}
unavailable_logs() { grep -c "event=database_unavailable.*$1" "$LOG" || true; }
logged() { grep -q -- "$1" "$LOG"; }

# ------------------------------------------------------------------------
# Read-only under load (what a failover to a standby looks like).
# ------------------------------------------------------------------------

enqueue ro 1 40 &
producer=$!
sleep 0.3
psql_value "ALTER SYSTEM SET default_transaction_read_only = on" >/dev/null
psql_value "SELECT pg_reload_conf()" >/dev/null
wait "$producer"
enqueue ro 41 60
wait_until "$WAIT_TRIES" logged 'event=database_unavailable.*25006' || true
expect_match "read-only: logged at error with the SQLSTATE" \
    'level=error event=database_unavailable .*error="database error 25006: cannot execute' "$(cat "$LOG")"
before=$(decided ro)
sleep 1.5
expect_eq "read-only: nothing more is decided while it lasts" "$before" "$(decided ro)"
expect_eq "read-only: some jobs wait" 1 "$([ "$before" -lt 60 ] && echo 1 || echo 0)"
expect_eq "read-only: nothing is dead-lettered" 0 "$(redis XLEN credits:dead)"
expect_eq "read-only: /readyz answers 503" 503 "$(readyz)"
expect_match "read-only: /readyz says why" 'postgres cannot decide batches' "$(curl -s "$URL/readyz")"
expect_eq "read-only: /healthz stays 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")"
unavailable=$(metric 'credits_db_errors_total{kind="unavailable"}')
expect_eq "read-only: counted as unavailable" 1 "$([ "${unavailable:-0}" -ge 1 ] && echo 1 || echo 0)"
expect_eq "read-only: the waiting entries stay pending" 1 \
    "$([ "$(redis XPENDING credits:jobs:consume credits-worker | head -1)" -ge 1 ] && echo 1 || echo 0)"
expect_eq "read-only: the backoff is capped (a few retries a second at most)" 1 \
    "$([ "$(unavailable_logs 25006)" -lt 60 ] && echo 1 || echo 0)"

psql_value "ALTER SYSTEM RESET default_transaction_read_only" >/dev/null
psql_value "SELECT pg_reload_conf()" >/dev/null
wait_until "$WAIT_TRIES" value_is 60 decided ro || true
expect_eq "writable again: every job is decided" 60 "$(decided ro)"
expect_eq "writable again: each applied exactly once" "60/60" "$(applied_once ro)"
wait_until "$WAIT_TRIES" value_is 60 results ro 1 60 || true
expect_eq "writable again: every result is published" 60 "$(results ro 1 60)"
expect_eq "writable again: nothing is dead-lettered" 0 "$(redis XLEN credits:dead)"
wait_until 50 value_is 200 readyz || true
expect_eq "writable again: ready" 200 "$(readyz)"
expect_match "writable again: logged" 'event=database_available' "$(cat "$LOG")"

# ------------------------------------------------------------------------
# A grant revoked (the worker's role may no longer write entries).
# ------------------------------------------------------------------------

psql_value "REVOKE INSERT ON credits.entries FROM credits_worker" >/dev/null
enqueue gr 1 20
wait_until "$WAIT_TRIES" logged 'event=database_unavailable.*42501' || true
expect_match "revoked: logged at error with the SQLSTATE" \
    'level=error event=database_unavailable .*error="database error 42501: permission denied for table entries' \
    "$(cat "$LOG")"
expect_eq "revoked: nothing is decided" 0 "$(decided gr)"
expect_eq "revoked: nothing is dead-lettered" 0 "$(redis XLEN credits:dead)"
expect_eq "revoked: /readyz answers 503" 503 "$(readyz)"
expect_eq "revoked: no job was blamed" 0 "$(grep -c 'event=job_dead_lettered' "$LOG" || true)"
# What the operator does: migrate puts the grants back.
migrate
wait_until "$WAIT_TRIES" value_is 20 decided gr || true
expect_eq "granted again: every job is decided" 20 "$(decided gr)"
expect_eq "granted again: each applied exactly once" "20/20" "$(applied_once gr)"
wait_until "$WAIT_TRIES" value_is 20 results gr 1 20 || true
expect_eq "granted again: every result is published" 20 "$(results gr 1 20)"
expect_eq "granted again: nothing is dead-lettered" 0 "$(redis XLEN credits:dead)"
wait_until 50 value_is 200 readyz || true
expect_eq "granted again: ready" 200 "$(readyz)"

# ------------------------------------------------------------------------
# The breaker: an error the worker takes for a job's (P0001, a trigger)
# that every job gets. Isolating finds three jobs in a row refused alone
# for the same reason: the database is at fault, not the jobs.
# ------------------------------------------------------------------------

stop_worker "$WORKER_PID"
psql_value "CREATE FUNCTION credits.test_refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN RAISE EXCEPTION 'refusing every job'; END \$\$;
CREATE TRIGGER test_refuse BEFORE INSERT ON credits.jobs
    FOR EACH ROW EXECUTE FUNCTION credits.test_refuse();" >/dev/null
enqueue br 1 10
start_worker CREDITS_HTTP_ADDR="127.0.0.1:$HTTP_PORT" CREDITS_DATABASE_URL="$APP_URL"
LOG="$TEST_DIR/worker-1.log"
wait_until "$WAIT_TRIES" grep -q 'event=isolation_stopped' "$LOG" || true
expect_match "breaker: logged, with the SQLSTATE and the refusals taken back" \
    'level=error event=isolation_stopped failures=3 sqlstate=P0001 taken_back=2' "$(cat "$LOG")"
expect_match "breaker: then waits as for an unavailable database" \
    'event=database_unavailable .*error="database error P0001: refusing every job' "$(cat "$LOG")"
sleep 1
expect_eq "breaker: nothing is dead-lettered" 0 "$(redis XLEN credits:dead)"
expect_eq "breaker: no job was blamed" 0 "$(grep -c 'event=job_dead_lettered' "$LOG" || true)"
expect_eq "breaker: /readyz answers 503" 503 "$(readyz)"
psql_value "DROP TRIGGER test_refuse ON credits.jobs" >/dev/null
wait_until "$WAIT_TRIES" value_is 10 decided br || true
expect_eq "breaker: every job is decided once the database accepts them" 10 "$(decided br)"
expect_eq "breaker: each applied exactly once" "10/10" "$(applied_once br)"
wait_until "$WAIT_TRIES" value_is 10 results br 1 10 || true
expect_eq "breaker: every result is published" 10 "$(results br 1 10)"
expect_eq "breaker: nothing is dead-lettered" 0 "$(redis XLEN credits:dead)"

# Two jobs, both refused alone: neither failed while a batch-mate
# committed, so neither is to blame.
stop_worker "$WORKER_PID"
psql_value "CREATE TRIGGER test_refuse BEFORE INSERT ON credits.jobs
    FOR EACH ROW EXECUTE FUNCTION credits.test_refuse();" >/dev/null
enqueue pair 1 2
start_worker CREDITS_HTTP_ADDR="127.0.0.1:$HTTP_PORT" CREDITS_DATABASE_URL="$APP_URL"
LOG="$TEST_DIR/worker-2.log"
wait_until "$WAIT_TRIES" grep -q 'event=isolation_stopped' "$LOG" || true
expect_match "a batch of two refused alone: the breaker trips" \
    'event=isolation_stopped failures=2 sqlstate=P0001 taken_back=1' "$(cat "$LOG")"
expect_eq "a batch of two refused alone: nothing is dead-lettered" 0 "$(redis XLEN credits:dead)"
psql_value "DROP TRIGGER test_refuse ON credits.jobs" >/dev/null
wait_until "$WAIT_TRIES" value_is 2 decided pair || true
expect_eq "a batch of two: both decided afterwards" "2/2" "$(applied_once pair)"

stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
expect_status "the ledger passes the audit" 0 "$CREDITSCTL" audit
finish
