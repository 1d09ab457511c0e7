#!/usr/bin/env bash
# test_http_limits.sh -- the HTTP endpoint cannot take the worker down: with
# a low descriptor limit and many slow clients (slowloris) the worker keeps
# deciding jobs and reconnects to a restarted PostgreSQL, each connection is
# closed HTTP_DEADLINE_MS (5 s) after it was accepted whatever it sends, the
# log stays small and no core spins, and /metrics answers once the clients
# are gone. When accept() finds no descriptor at all, the listener pauses
# with one log line.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"

migrate
"$CREDITSCTL" pack set starter --credits 1000000 >/dev/null

HTTP_PORT=$(free_port)
URL="http://127.0.0.1:$HTTP_PORT"
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
metric() { curl -s --max-time 5 "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
log_bytes() { wc -c <"$1"; }
CLK_TCK=$(getconf CLK_TCK)

# slow_clients COUNT SECONDS RESULT -- COUNT connections to the endpoint,
# each sending a request head one header line every 0.5 s for SECONDS
# (never its end); writes to RESULT how many the worker closed meanwhile.
slow_clients() {
    local count=$1 seconds=$2 result=$3 fds=() closed=() i fd t status
    trap '' PIPE
    for ((i = 0; i < count; i++)); do
        exec {fd}<>"/dev/tcp/127.0.0.1/$HTTP_PORT" || break
        fds+=("$fd")
        closed+=(0)
        printf 'GET /metrics HTTP/1.1\r\nHost: x\r\n' 1>&"$fd" 2>/dev/null || true
    done
    for ((t = 0; t < seconds * 2; t++)); do
        sleep 0.5
        for i in "${!fds[@]}"; do
            [ "${closed[$i]}" = 1 ] && continue
            status=0
            read -r -t 0.001 -u "${fds[$i]}" _ || status=$?
            # 0: an answer, 1: end of file; above 128: nothing yet.
            if [ "$status" -le 1 ]; then
                closed[i]=1
                continue
            fi
            printf 'X-Slow: %d\r\n' "$t" 1>&"${fds[$i]}" 2>/dev/null || closed[i]=1
        done
    done
    local n=0
    for i in "${!closed[@]}"; do n=$((n + closed[i])); done
    echo "$n" >"$result"
    for fd in "${fds[@]}"; do exec {fd}>&-; done
}

# ------------------------------------------------------------------------
# The server itself: methods, paths, HTTP/1.0, an oversized head.
# ------------------------------------------------------------------------

start_worker CREDITS_HTTP_ADDR="127.0.0.1:$HTTP_PORT" prlimit --nofile=64:64 --
LIMITED_PID=$WORKER_PID
LOG="$TEST_DIR/worker-0.log"
wait_until 100 value_is 200 http_code "$URL/readyz" || true
expect_eq "/readyz answers" 200 "$(http_code "$URL/readyz")"
expect_eq "HEAD /metrics answers 200" 200 "$(http_code -I "$URL/metrics")"
expect_eq "HTTP/1.0 is answered" 200 "$(http_code --http1.0 "$URL/healthz")"
expect_eq "a query string is ignored" 200 "$(http_code "$URL/metrics?x=1")"
expect_eq "an unknown path is 404" 404 "$(http_code "$URL/metricsx")"
expect_eq "DELETE is refused" 501 "$(http_code -X DELETE "$URL/metrics")"
expect_eq "a request head over 8 KiB is refused" 431 \
    "$(http_code -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "$URL/metrics")"
expect_match "the connection bound is lowered to leave 32 descriptors of 64" \
    'event=http_connections_limited connections_max=32 configured=64 rlimit_nofile=64' \
    "$(grep -m1 'event=http_connections_limited' "$LOG")"

# ------------------------------------------------------------------------
# 80 slow clients against 32 connections and 64 descriptors, for 10 s,
# while jobs come in and PostgreSQL restarts.
# ------------------------------------------------------------------------

log_before=$(log_bytes "$LOG")
ticks_before=$(cpu_ticks "$LIMITED_PID")
slow_clients 80 10 "$TEST_DIR/closed" &
ATTACK_PID=$!
sleep 1
ctl consume --user s0 --amount 1 --id sl-first --wait --timeout 10
expect_match "a job is decided while the slow clients hold the endpoint" '"status":"rejected"' "$OUT"
# (The test's PostgreSQL runs with synchronous_commit off: an immediate
# restart may lose the last commits, so the ledger is built after it.)
"$SOURCE_DIR/deploy/servers.sh" restart-postgres "$TEST_DIR"
ctl purchase --user s1 --pack starter --payment-ref sl-pay --id sl-buy --wait --timeout 20
expect_match "a job after a PostgreSQL restart is decided meanwhile" '"status":"applied"' "$OUT"
ctl consume --user s1 --amount 7 --id sl-after-restart --wait --timeout 10
expect_match "and the next" '"charged":7' "$OUT"
for i in $(seq 1 20); do "$CREDITSCTL" consume --user s1 --amount 1 --id "sl-c$i" >/dev/null; done
wait "$ATTACK_PID"
ticks=$(($(cpu_ticks "$LIMITED_PID") - ticks_before))
grown=$(($(log_bytes "$LOG") - log_before))

closed_count=$(cat "$TEST_DIR/closed")
if [ "$closed_count" -ge 32 ]; then
    pass "the worker closed $closed_count slow connections in 10 s (each 5 s after its accept)"
else
    fail "the worker closed $closed_count slow connections in 10 s; want at least 32"
fi
if [ "$ticks" -lt $((CLK_TCK * 10 / 2)) ]; then
    pass "the worker used $ticks CPU ticks in about 12 s (no spinning)"
else
    fail "the worker used $ticks CPU ticks in about 12 s (spinning?)"
fi
if [ "$grown" -lt 16384 ]; then
    pass "the log grew by $grown bytes"
else
    fail "the log grew by $grown bytes: $(tail -c 300 "$LOG" | tail -2)"
fi
wait_until 150 value_is 200 http_code "$URL/metrics" || true
expect_eq "/metrics answers once the slow clients are gone" 200 "$(http_code "$URL/metrics")"
wait_until 100 value_is 20 metric 'credits_jobs_total{type="consume",status="applied",error="none"}' ||
    true
expect_eq "every job sent meanwhile is decided" 21 \
    "$(metric 'credits_jobs_total{type="consume",status="applied",error="none"}')"
expect_eq "PostgreSQL was reconnected once" 1 "$(metric 'credits_reconnects_total{peer="postgres"}')"
expect_eq "and is up" 1 "$(metric 'credits_up{peer="postgres"}')"
if grep -q 'Too many open files' "$LOG"; then
    fail "a descriptor ran out: $(grep -m1 'Too many open files' "$LOG")"
else
    pass "no descriptor ran out"
fi

# ------------------------------------------------------------------------
# No descriptor left at all (the limit lowered under the running worker):
# accept() fails with EMFILE; the listener rests, logging it once.
# ------------------------------------------------------------------------

# New descriptors take the lowest free numbers below the limit; those the
# test's own environment passed down above 64 do not count.
highest_fd=$(find "/proc/$LIMITED_PID/fd" -mindepth 1 -printf '%f\n' | awk '$1 < 64' | sort -n |
    tail -1)
room=$((highest_fd + 1 + 3))
# The soft limit only: raising a hard limit again needs a privilege that a
# container may not grant.
prlimit --pid "$LIMITED_PID" --nofile="$room:"
log_before=$(log_bytes "$LOG")
ticks_before=$(cpu_ticks "$LIMITED_PID")
slow_clients 12 4 "$TEST_DIR/closed-emfile" &
ATTACK_PID=$!
sleep 3
ticks=$(($(cpu_ticks "$LIMITED_PID") - ticks_before))
paused=$(tail -c +"$((log_before + 1))" "$LOG" | grep -c 'event=http_accept_paused' || true)
expect_eq "accept() out of descriptors: one log line while it lasts" 1 "$paused"
expect_match "the line says why" 'event=http_accept_paused error="Too many open files"' \
    "$(tail -c +"$((log_before + 1))" "$LOG" | grep -m1 'event=http_accept_paused')"
if [ "$ticks" -lt $((CLK_TCK * 3 / 4)) ]; then
    pass "out of descriptors, the worker used $ticks CPU ticks in 3 s (no spinning)"
else
    fail "out of descriptors, the worker used $ticks CPU ticks in 3 s (spinning?)"
fi
wait "$ATTACK_PID"
prlimit --pid "$LIMITED_PID" --nofile=64:
wait_until 150 value_is 200 http_code "$URL/metrics" || true
expect_eq "/metrics answers again once descriptors are back" 200 "$(http_code "$URL/metrics")"
expect_match "and the resume is logged" 'event=http_accept_resumed pauses=[0-9]+' \
    "$(grep -m1 'event=http_accept_resumed' "$LOG")"
ctl consume --user s1 --amount 1 --id sl-last --wait --timeout 10
expect_match "the worker still decides jobs" '"charged":1' "$OUT"

stop_worker "$LIMITED_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
