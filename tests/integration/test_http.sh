#!/usr/bin/env bash
# test_http.sh -- /metrics, /healthz and /readyz of a running worker under
# load, and /readyz turning 503 when PostgreSQL goes away.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

migrate
"$CREDITSCTL" plan set pro --monthly 1000000 >/dev/null
"$CREDITSCTL" pack set starter --credits 500 >/dev/null

# start_http_worker [ENV=VALUE ...] -- starts the worker with its endpoint
# on a free port (sets HTTP_PORT and URL). Another suite's server can take
# the port between the check and the worker's bind; the worker then runs
# without its endpoint and logs http_disabled, and another port is tried.
start_http_worker() {
    local log
    for _ in 1 2 3 4 5; do
        HTTP_PORT=$(free_port)
        URL="http://127.0.0.1:$HTTP_PORT"
        start_worker CREDITS_HTTP_ADDR="127.0.0.1:$HTTP_PORT" "$@"
        log="$TEST_DIR/worker-$((${#WORKER_PIDS[@]} - 1)).log"
        for _ in $(seq 1 100); do
            grep -q http_listening "$log" && return 0
            grep -q http_disabled "$log" && break
            sleep 0.05
        done
        grep -q http_disabled "$log" || return 0
        stop_worker "$WORKER_PID"
    done
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL$1"; }
metric() { # metric NAME_WITH_LABELS -> value (or empty)
    curl -s --max-time 5 "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
wait_for_metric() { # NAME VALUE: waits (bounded) until the metric has the value
    for _ in $(seq 1 100); do
        [ "$(metric "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

start_http_worker
for _ in $(seq 1 100); do [ "$(http_code /readyz)" = 200 ] && break; sleep 0.1; done

expect_eq "/healthz answers 200 while the loop runs" 200 "$(http_code /healthz)"
expect_eq "/readyz answers 200 with Redis and PostgreSQL connected" 200 "$(http_code /readyz)"
expect_eq "an unknown path is 404" 404 "$(http_code /nope)"
expect_eq "POST is refused" 501 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/metrics")"
expect_match "/metrics is Prometheus text" 'text/plain; version=0.0.4' \
    "$(curl -s -D - -o /dev/null "$URL/metrics")"

# Load: 200 jobs through the real path (allocate, then consumes, one
# insufficient, one replay, one garbage message).
"$CREDITSCTL" allocate --user h1 --plan pro --period 2026-11 --id h-alloc --wait >/dev/null
for i in $(seq 1 200); do
    "$CREDITSCTL" consume --user h1 --amount 1 --id "h-c$i" >/dev/null
done
"$CREDITSCTL" consume --user h1 --amount 999999999 --id h-big --wait >/dev/null
"$CREDITSCTL" consume --user h1 --amount 1 --id h-c1 --wait >/dev/null
printf '\x91\xc1' | redis -x XADD credits:jobs:consume '*' job >/dev/null

wait_for_metric 'credits_jobs_total{type="consume",status="applied",error="none"}' 201 ||
    true
expect_eq "consume decisions counted (200 applied + 1 replay)" 201 \
    "$(metric 'credits_jobs_total{type="consume",status="applied",error="none"}')"
expect_eq "the allocate counted" 1 \
    "$(metric 'credits_jobs_total{type="allocate",status="applied",error="none"}')"
expect_eq "the insufficient consume counted by its error" 1 \
    "$(metric 'credits_jobs_total{type="consume",status="rejected",error="insufficient_credits"}')"
wait_for_metric 'credits_dead_letters_total{reason="invalid_job"}' 1 || true
expect_eq "the garbage message counted as a dead letter" 1 \
    "$(metric 'credits_dead_letters_total{reason="invalid_job"}')"
expect_eq "the invalid message counted with an unknown type" 1 \
    "$(metric 'credits_jobs_total{type="unknown",status="rejected",error="invalid_job"}')"
expect_eq "replays counted" 1 "$(metric credits_replays_total)"
expect_match "latency histogram has every decision" '^20[45]$' \
    "$(metric credits_job_latency_seconds_count)"
expect_match "batch sizes observed" '^[1-9][0-9]*$' "$(metric credits_batch_jobs_count)"
expect_eq "nothing in flight once drained" 0 "$(metric credits_inflight_jobs)"
expect_eq "credits_up for redis" 1 "$(metric 'credits_up{peer="redis"}')"
expect_eq "credits_up for postgres" 1 "$(metric 'credits_up{peer="postgres"}')"
wait_for_metric 'credits_pending_entries{stream="consume"}' 0 || true
expect_eq "pending gauge reads 0 after the drain" 0 \
    "$(metric 'credits_pending_entries{stream="consume"}')"

# PostgreSQL goes away: not ready (503), still live, and connected again
# once it is back.
PG_PID=$(cat "$TEST_DIR/pg/pid")
kill -INT "$PG_PID"
for _ in $(seq 1 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
"$CREDITSCTL" consume --user h1 --amount 1 --id h-during >/dev/null
for _ in $(seq 1 100); do [ "$(http_code /readyz)" = 503 ] && break; sleep 0.1; done
expect_eq "/readyz is 503 without PostgreSQL" 503 "$(http_code /readyz)"
expect_match "/readyz says why" 'postgres not connected' "$(curl -s "$URL/readyz")"
expect_eq "/healthz stays 200 (the worker is alive, waiting)" 200 "$(http_code /healthz)"
expect_eq "credits_up for postgres reads 0" 0 "$(metric 'credits_up{peer="postgres"}')"

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg /usr/lib/postgresql/15/bin/pg_ctl -D "$TEST_DIR/pg/data" -l "$TEST_DIR/pg/log" -w start \
    -o "-k $TEST_DIR/pg -p $CREDITS_TEST_PG_PORT -c listen_addresses=127.0.0.1 -c fsync=off" \
    >/dev/null
head -1 "$TEST_DIR/pg/data/postmaster.pid" >"$TEST_DIR/pg/pid"
for _ in $(seq 1 200); do [ "$(http_code /readyz)" = 200 ] && break; sleep 0.1; done
expect_eq "/readyz is 200 again after PostgreSQL returns" 200 "$(http_code /readyz)"
wait_for_metric 'credits_reconnects_total{peer="postgres"}' 1 || true
expect_eq "the reconnect is counted" 1 "$(metric 'credits_reconnects_total{peer="postgres"}')"
for _ in $(seq 1 100); do redis --raw GET credits:result:h-during | grep -aq applied && break; sleep 0.1; done
expect_match "the job sent while PostgreSQL was down is decided after it returns" applied \
    "$(redis --raw GET credits:result:h-during | tr -d '\000')"

stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"

# A batch held up inside PostgreSQL (another session holds h1's account row,
# one job per batch): the worker stays ready, and reads the next batch
# meanwhile (the pipeline), so two jobs are held: the blocked one and the
# one read behind it.
psql "$CREDITS_DATABASE_URL" -XAtq -c "BEGIN" \
    -c "SELECT 1 FROM credits.accounts WHERE user_id = 'h1' FOR UPDATE" \
    -c "SELECT pg_sleep(6)" -c "COMMIT" >/dev/null &
LOCKER_PID=$!
for _ in $(seq 1 100); do
    [ "$(psql_value "SELECT count(*) FROM pg_stat_activity
                     WHERE query = 'SELECT pg_sleep(6)' AND state = 'active'")" = 1 ] && break
    sleep 0.05
done
"$CREDITSCTL" consume --user h1 --amount 1 --id h-blocked >/dev/null
for i in 1 2 3; do "$CREDITSCTL" consume --user h2 --amount 1 --id "h-next$i" >/dev/null; done
start_http_worker CREDITS_BATCH_MAX=1
wait_for_metric credits_inflight_jobs 2 || true
expect_eq "waiting for a lock: still one batch in PostgreSQL" 1 \
    "$(psql_value "SELECT count(*) FROM pg_stat_activity
                   WHERE application_name = 'credits-worker' AND wait_event_type = 'Lock'")"
expect_eq "the next batch is read while one is being applied" 2 "$(metric credits_inflight_jobs)"
expect_eq "/readyz stays 200 while a batch is being applied" 200 "$(http_code /readyz)"
wait "$LOCKER_PID"
for _ in $(seq 1 100); do redis --raw GET credits:result:h-next3 | grep -aq . && break; sleep 0.1; done
expect_match "the blocked job is decided once the lock goes" applied \
    "$(redis --raw GET credits:result:h-blocked | tr -d '\000')"
expect_match "the jobs read behind it are decided after it" insufficient_credits \
    "$(redis --raw GET credits:result:h-next3 | tr -d '\000')"
stop_worker "$WORKER_PID"
expect_eq "that worker exits 0 on SIGTERM too" 0 "$WORKER_STATUS"
finish
