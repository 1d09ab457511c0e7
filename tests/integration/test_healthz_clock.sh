#!/usr/bin/env bash
# test_healthz_clock.sh -- /healthz measures a stall on CLOCK_MONOTONIC: the
# wall clock stepping ahead by ten minutes (NTP, an operator's `date -s`)
# while a batch is held does not make a live worker report itself stalled.
#
# The step is made by libfaketime (Debian package faketime) for the worker
# alone: its wall clock comes from a file the test rewrites, its monotonic
# clock stays the kernel's.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"

FAKETIME_LIB=$(find /usr/lib -name libfaketime.so.1 -path '*faketime*' 2>/dev/null | head -1)
if [ -z "$FAKETIME_LIB" ]; then
    fail "libfaketime.so.1 not found: install the Debian package faketime"
    finish
    exit 1
fi

migrate
"$CREDITSCTL" pack set starter --credits 100 >/dev/null
HTTP_PORT=$(free_port)
URL="http://127.0.0.1:$HTTP_PORT"
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL$1"; }
CLOCK_FILE="$TEST_DIR/faketime"
echo "+0" >"$CLOCK_FILE"

# The sanitizer build's runtime must come first among the libraries; with
# libfaketime preloaded it cannot, which is harmless here.
start_worker CREDITS_HTTP_ADDR="127.0.0.1:$HTTP_PORT" LD_PRELOAD="$FAKETIME_LIB" \
    FAKETIME_TIMESTAMP_FILE="$CLOCK_FILE" FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
wait_until 100 value_is 200 http_code /readyz || true
expect_eq "the worker is ready" 200 "$(http_code /readyz)"

# A batch held inside PostgreSQL: another session holds the account's row.
"$CREDITSCTL" purchase --user h1 --pack starter --payment-ref hc-pay --id hc-buy --wait >/dev/null
psql "$CREDITS_DATABASE_URL" -XAtq -c "BEGIN" \
    -c "SELECT 1 FROM credits.accounts WHERE user_id = 'h1' FOR UPDATE" \
    -c "SELECT pg_sleep(6)" -c "COMMIT" >/dev/null &
LOCKER_PID=$!
wait_until 100 value_is 1 psql_value "SELECT count(*) FROM pg_stat_activity
                                      WHERE query = 'SELECT pg_sleep(6)' AND state = 'active'" ||
    true
"$CREDITSCTL" consume --user h1 --amount 1 --id hc-held >/dev/null
wait_until 50 value_is 1 psql_value "SELECT count(*) FROM pg_stat_activity
                                     WHERE application_name = 'credits-worker'
                                       AND wait_event_type = 'Lock'" || true
expect_eq "/healthz is 200 while a batch waits for a lock" 200 "$(http_code /healthz)"

# The wall clock steps ten minutes ahead.
echo "+600" >"$CLOCK_FILE"
expect_eq "/healthz stays 200 after the wall clock steps ahead" 200 "$(http_code /healthz)"
expect_match "(and says so)" '^ok' "$(curl -s --max-time 5 "$URL/healthz")"
# A message decided without the database is logged with the worker's own
# wall clock: proof that the step reached the worker.
printf '\x91\xc1' | redis -x XADD credits:jobs:purchase '*' job >/dev/null
wait "$LOCKER_PID"
for _ in $(seq 1 100); do redis --raw GET credits:result:hc-held | grep -aq . && break; sleep 0.1; done
expect_match "the held job is decided once the lock goes" 'charged' \
    "$(redis --raw GET credits:result:hc-held | tr -d '\000')"
stepped=$(grep 'event=job_rejected' "$TEST_DIR/worker-0.log" | tail -1 | sed -n 's/^ts=\([^ ]*\).*/\1/p')
now_s=$(date +%s)
stepped_s=$(date -d "$stepped" +%s 2>/dev/null || echo 0)
if [ $((stepped_s - now_s)) -ge 500 ]; then
    pass "the worker's wall clock was ahead by about ten minutes"
else
    fail "the worker's wall clock was not stepped (log time [$stepped], now $(date -u +%FT%TZ))"
fi

stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
