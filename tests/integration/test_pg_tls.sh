#!/usr/bin/env bash
# test_pg_tls.sh -- PostgreSQL over TLS with the server's certificate
# verified (sslmode=verify-full sslrootcert=...): a throwaway CA and server
# certificate, a PostgreSQL on loopback that accepts TLS connections only,
# and the worker and creditsctl through it; a certificate from another CA,
# or for another name, is refused.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"
# shellcheck source=tests/integration/tls_lib.sh
. "$(dirname "$0")/tls_lib.sh"

PGBIN=/usr/lib/postgresql/15/bin
PGDIR="$TEST_DIR/pg"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

TLS="$TEST_DIR/tls"
make_ca "$TLS" ca
make_ca "$TLS" other-ca
make_cert "$TLS" ca server "IP:127.0.0.1,DNS:localhost"
install -m 0600 "$TLS/server.key" "$PGDIR/server.key"
install -m 0644 "$TLS/server.crt" "$PGDIR/server.crt"
if [ "$(id -u)" = 0 ]; then chown postgres "$PGDIR/server.key" "$PGDIR/server.crt"; fi

# TLS or nothing: a connection without it is rejected.
cat >"$PGDIR/data/pg_hba.conf" <<'EOF'
local     all all              trust
hostssl   all all 127.0.0.1/32 trust
hostnossl all all 127.0.0.1/32 reject
EOF
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w start \
    -o "-k $PGDIR -p $CREDITS_TEST_PG_PORT -c listen_addresses=127.0.0.1 -c fsync=off \
        -c ssl=on -c ssl_cert_file=$PGDIR/server.crt -c ssl_key_file=$PGDIR/server.key" >/dev/null
head -1 "$PGDIR/data/postmaster.pid" >"$PGDIR/pid"

BASE="host=127.0.0.1 port=$CREDITS_TEST_PG_PORT user=postgres dbname=postgres"
VERIFIED="$BASE sslmode=verify-full sslrootcert=$TLS/ca.crt"

CREDITS_DATABASE_URL="$BASE sslmode=disable" ctl plan list
expect_eq "without TLS the server refuses (exit 1)" 1 "$STATUS"
expect_match "and says so" 'no encryption' "$ERR"

export CREDITS_DATABASE_URL="$VERIFIED"
ctl migrate
expect_eq "creditsctl migrate over verify-full" 0 "$STATUS"
ctl pack set starter --credits 40
expect_eq "creditsctl pack set over verify-full" 0 "$STATUS"

start_worker
ctl purchase --user t1 --pack starter --payment-ref tls-pay --id tls-buy --wait --timeout 10
expect_match "the worker over verify-full applies a purchase" '"granted":40' "$OUT"
ctl consume --user t1 --amount 15 --id tls-use --wait --timeout 10
expect_match "and a consume" '"charged":15' "$OUT"
expect_eq "the worker's connection is TLS" "t" \
    "$(psql_value "SELECT s.ssl FROM pg_stat_ssl AS s JOIN pg_stat_activity AS a USING (pid)
                    WHERE a.application_name = 'credits-worker'")"
stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"

# host= names what the certificate must show, hostaddr= where to connect:
# no name lookup (it would block the worker's loop), and the name still
# checked.
start_worker CREDITS_DATABASE_URL="host=localhost hostaddr=127.0.0.1 port=$CREDITS_TEST_PG_PORT user=postgres dbname=postgres sslmode=verify-full sslrootcert=$TLS/ca.crt"
ctl consume --user t1 --amount 5 --id tls-use-2 --wait --timeout 10
expect_match "host=localhost hostaddr=127.0.0.1: verified and applied" '"charged":5' "$OUT"
stop_worker "$WORKER_PID"

# expect_refused WHAT CONNINFO PATTERN -- a worker with CONNINFO never
# connects; its log says PATTERN.
expect_refused() {
    local log="$TEST_DIR/worker-${#WORKER_PIDS[@]}.log"
    start_worker CREDITS_DATABASE_URL="$2"
    wait_until 100 grep -q 'event=postgres_lost' "$log" || true
    expect_match "$1: the log says why" "$3" "$(grep -m1 'event=postgres_lost' "$log")"
    expect_eq "$1: never connected" 0 "$(grep -c 'event=postgres_ready' "$log" || true)"
    stop_worker "$WORKER_PID"
    expect_eq "$1: the worker still stops cleanly" 0 "$WORKER_STATUS"
}
expect_refused "a server certificate from another CA" \
    "$BASE sslmode=verify-full sslrootcert=$TLS/other-ca.crt" 'certificate verify failed'
expect_refused "a server certificate for another name" \
    "host=db.example hostaddr=127.0.0.1 port=$CREDITS_TEST_PG_PORT user=postgres dbname=postgres sslmode=verify-full sslrootcert=$TLS/ca.crt" \
    'does not match host name'

finish
