#!/usr/bin/env bash
# test_durable.sh -- durable commits whatever the server's defaults: the
# worker's session commits with synchronous_commit = on on a server
# configured with it off (each commit flushes the WAL before its result is
# published), and at each connect it reads fsync and full_page_writes,
# warns when either is off and exports credits_database_durable 0; on a
# server with both on, no warning and 1.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"

DURABLE_DIR="$TEST_DIR/durable"
stop_durable() {
    "$SOURCE_DIR/deploy/servers.sh" stop "$DURABLE_DIR" >/dev/null 2>&1 || true
    cleanup
}
trap stop_durable EXIT

HTTP_PORT=$(free_port)
# metric NAME -- its value on /metrics; asked again for up to 10 s while the
# endpoint is not up yet (a loaded machine starts the worker slowly).
metric() {
    local value="" _
    for _ in $(seq 1 100); do
        value=$(curl -s --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics" |
            awk -v m="$1" '$1 == m { print $2 }')
        if [ -n "$value" ]; then break; fi
        sleep 0.1
    done
    echo "$value"
}
decided() { psql_value "SELECT count(*) FROM credits.jobs WHERE job_id LIKE 'd-%'"; }

# The test servers run with fsync, full_page_writes and synchronous_commit
# off (deploy/servers.sh without --durable).
expect_eq "the server's default: asynchronous commit" off "$(psql_value 'SHOW synchronous_commit')"
expect_eq "the server runs with fsync off" off "$(psql_value 'SHOW fsync')"
migrate
"$CREDITSCTL" plan set pro --monthly 1000 >/dev/null
"$CREDITSCTL" allocate --user u1 --plan pro --period 2026-11 --id d-alloc >/dev/null
for i in $(seq 1 100); do "$CREDITSCTL" consume --user u1 --amount 1 --id "d-$i" >/dev/null; done

# One job per transaction: 101 commits. With synchronous_commit off they
# would reach the WAL in a few writes of whole pages (the WAL writer's);
# with it on, each commit writes the WAL itself before it returns.
psql_value "SELECT pg_stat_reset_shared('wal')" >/dev/null
start_worker CREDITS_HTTP_ADDR="127.0.0.1:$HTTP_PORT" CREDITS_BATCH_MAX=1
LOG="$TEST_DIR/worker-0.log"
wait_until 300 value_is 101 decided || true
expect_eq "every job is decided" 101 "$(decided)"
expect_match "the log says the session's setting" 'event=postgres_ready .*synchronous_commit=on' \
    "$(cat "$LOG")"
expect_match "a warning at connect: fsync and full_page_writes off" \
    'level=warn event=database_not_durable fsync=off full_page_writes=off' "$(cat "$LOG")"
expect_eq "credits_database_durable is 0" 0 "$(metric credits_database_durable)"

# At every connect: a reconnect warns again.
psql_value "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'credits-worker'" >/dev/null
for _ in $(seq 1 100); do
    [ "$(grep -c 'event=database_not_durable' "$LOG")" -ge 2 ] && break
    sleep 0.1
done
expect_eq "the warning comes at every connect" 2 "$(grep -c 'event=database_not_durable' "$LOG")"
# The terminated backend reported its statistics as it exited.
sleep 0.5
writes=$(psql_value "SELECT wal_write FROM pg_stat_wal")
echo "# WAL writes for 101 commits: $writes"
expect_eq "each commit wrote the WAL before returning (synchronous_commit on)" 1 \
    "$([ "$writes" -ge 101 ] && echo 1 || echo 0)"
stop_worker "$WORKER_PID"

# A durable server: no warning, 1.
"$SOURCE_DIR/deploy/servers.sh" start "$DURABLE_DIR" --durable >/dev/null
DURABLE_DB=$(. "$DURABLE_DIR/env" && echo "$CREDITS_DATABASE_URL")
CREDITS_DATABASE_URL="$DURABLE_DB" "$CREDITSCTL" migrate >/dev/null
start_worker CREDITS_HTTP_ADDR="127.0.0.1:$HTTP_PORT" CREDITS_DATABASE_URL="$DURABLE_DB"
LOG="$TEST_DIR/worker-1.log"
wait_until 100 grep -q 'event=postgres_ready' "$LOG" || true
for _ in $(seq 1 50); do [ "$(metric credits_ready)" = 1 ] && break; sleep 0.1; done
expect_eq "on a durable server: credits_database_durable is 1" 1 "$(metric credits_database_durable)"
expect_eq "on a durable server: no warning" 0 "$(grep -c 'event=database_not_durable' "$LOG" || true)"
stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
