#!/usr/bin/env bash
# test_redis_tls.sh -- the recipe of deploy/redis/stunnel-redis.conf: a
# Redis that speaks TLS only (--tls-port, client certificates required) on
# loopback, the shipped stunnel client configuration with its addresses and
# file paths changed, and the worker and creditsctl through the tunnel; a
# tunnel that does not trust the server's CA carries nothing.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"
# shellcheck source=tests/integration/tls_lib.sh
. "$(dirname "$0")/tls_lib.sh"

if ! command -v stunnel >/dev/null; then
    fail "stunnel not found: install the Debian package stunnel4"
    finish
    exit 1
fi

TLS="$TEST_DIR/redis-tls"
make_ca "$TLS" ca
make_ca "$TLS" other-ca
make_cert "$TLS" ca server "DNS:redis.test,IP:127.0.0.1"
make_cert "$TLS" ca client "DNS:credits-worker" clientAuth
# stunnel drops to the stunnel4 user (as the recipe says): let it read them.
chmod 0644 "$TLS"/*.key
chmod 0755 "$TLS"

PASSWORD="tls-pw-$RANDOM"
TLS_PORT=$(free_port)
start_server "$TLS/redis.log" redis-server --port 0 --tls-port "$TLS_PORT" --bind 127.0.0.1 \
    --tls-cert-file "$TLS/server.crt" --tls-key-file "$TLS/server.key" \
    --tls-ca-cert-file "$TLS/ca.crt" --tls-auth-clients yes --requirepass "$PASSWORD" \
    --save '' --appendonly no --dir "$TLS" --daemonize no

# tunnel NAME CA -- the shipped configuration, pointed at this Redis and
# these files, listening on a free port (TUNNEL_PORT); started.
tunnel() {
    local name=$1 ca=$2
    TUNNEL_PORT=$(free_port)
    sed -e "s|^accept = .*|accept = 127.0.0.1:$TUNNEL_PORT|" \
        -e "s|^connect = .*|connect = 127.0.0.1:$TLS_PORT|" \
        -e "s|^checkHost = .*|checkHost = redis.test|" \
        -e "s|^CAfile = .*|CAfile = $TLS/$ca.crt|" \
        -e "s|^cert = .*|cert = $TLS/client.crt|" \
        -e "s|^key = .*|key = $TLS/client.key|" \
        "$SOURCE_DIR/deploy/redis/stunnel-redis.conf" >"$TLS/$name.conf"
    start_server "$TLS/$name.log" stunnel "$TLS/$name.conf"
    wait_until 100 bash -c ": </dev/tcp/127.0.0.1/$TUNNEL_PORT" || fail "stunnel $name did not listen"
}
through() { redis-cli -p "$1" -a "$PASSWORD" --no-auth-warning "${@:2}" 2>&1; }

tunnel good ca
GOOD_PORT=$TUNNEL_PORT
wait_until 100 value_is PONG through "$GOOD_PORT" PING || true
expect_eq "Redis answers through the tunnel" PONG "$(through "$GOOD_PORT" PING)"
expect_match "Redis does not answer plain text on its TLS port" \
    'Server closed the connection|Connection reset|I/O error' "$(timeout 5 redis-cli -p "$TLS_PORT" PING 2>&1 || true)"

migrate
"$CREDITSCTL" pack set starter --credits 30 >/dev/null
export CREDITS_REDIS_URL="redis://:$PASSWORD@127.0.0.1:$GOOD_PORT"
start_worker
ctl purchase --user r1 --pack starter --payment-ref rt-pay --id rt-buy --wait --timeout 10
expect_match "the worker through the tunnel applies a purchase" '"granted":30' "$OUT"
ctl consume --user r1 --amount 12 --id rt-use --wait --timeout 10
expect_match "and a consume" '"charged":12' "$OUT"
ctl result rt-buy
expect_match "creditsctl reads results through it" '"status":"applied"' "$OUT"
stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"

# A tunnel that does not trust the server's CA: nothing gets through, and
# stunnel's log says why.
tunnel untrusting other-ca
BAD_PORT=$TUNNEL_PORT
start_worker CREDITS_REDIS_URL="redis://:$PASSWORD@127.0.0.1:$BAD_PORT"
BAD_LOG="$TEST_DIR/worker-1.log"
wait_until 100 grep -q 'event=redis_lost' "$BAD_LOG" || true
expect_match "through the untrusting tunnel the worker loses the connection" 'event=redis_lost' \
    "$(grep -m1 'event=redis_lost' "$BAD_LOG")"
expect_eq "and is never ready" 0 "$(grep -c 'event=redis_ready' "$BAD_LOG" || true)"
expect_match "stunnel says the certificate failed verification" \
    'certificate verify failed|Verification error|CERT: ' "$(cat "$TLS/untrusting.log")"
stop_worker "$WORKER_PID"
expect_eq "that worker still stops cleanly" 0 "$WORKER_STATUS"

finish
