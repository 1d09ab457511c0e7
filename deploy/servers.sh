#!/usr/bin/env bash
# servers.sh -- throwaway Redis and PostgreSQL on loopback, for the demo, the
# tests and the benchmarks. Everything lives under one directory; the servers
# are stopped by the PIDs recorded there, never by name.
#
#   deploy/servers.sh start DIR [--durable]   start both, write DIR/env
#   deploy/servers.sh stop DIR                stop both (by PID)
#
# DIR/env holds CREDITS_REDIS_URL and CREDITS_DATABASE_URL (source it).
# Without --durable, PostgreSQL runs with fsync off (tests only); with it,
# fsync and synchronous_commit stay on, as a credits ledger must be measured.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

die() { echo "servers.sh: $*" >&2; exit 1; }

port_in_use() { (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

# A free loopback port in 20000..59999 (random start, so parallel runs differ).
free_port() {
    local port=$((20000 + RANDOM % 40000)) tries
    for tries in $(seq 1 200); do
        port_in_use "$port" || { echo "$port"; return; }
        port=$((port + 1))
    done
    die "no free port found"
}

# Runs a PostgreSQL server tool as the owner of the data directory: initdb
# refuses to run as root.
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_for() { # tries, command...
    local tries=$1; shift
    for _ in $(seq 1 "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
    return 1
}

start_redis() {
    local dir=$1 port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$dir/redis" --logfile "$dir/redis/redis.log" --daemonize no \
        >/dev/null 2>&1 &
    echo $! >"$dir/redis/pid"
    wait_for 200 redis-cli -p "$port" ping || die "redis did not start (see $dir/redis/redis.log)"
    echo "$port" >"$dir/redis/port"
}

start_postgres() {
    local dir=$1 durable=$2 port fsync=off
    port=$(free_port)
    [ "$durable" = 1 ] && fsync=on
    if [ "$(id -u)" = 0 ]; then
        chmod 755 "$dir"
        chown postgres:postgres "$dir/pg"
        runuser -u postgres -- test -x "$dir/pg" ||
            die "the postgres user cannot reach $dir (make its parent directories traversable, or use a directory under /tmp)"
    fi
    chmod 700 "$dir/pg"
    as_pg "$PGBIN/initdb" -D "$dir/pg/data" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync >"$dir/pg/initdb.log" 2>&1 || die "initdb failed (see $dir/pg/initdb.log)"
    as_pg "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w -t 60 \
        -o "-k $dir/pg -p $port -c listen_addresses=127.0.0.1 -c fsync=$fsync \
            -c synchronous_commit=$fsync -c full_page_writes=$fsync \
            -c max_connections=200 -c shared_buffers=256MB" \
        start >/dev/null || die "postgres did not start (see $dir/pg/log)"
    head -1 "$dir/pg/data/postmaster.pid" >"$dir/pg/pid"
    echo "$port" >"$dir/pg/port"
}

cmd_start() {
    local dir=$1 durable=$2
    [ -e "$dir/env" ] && die "$dir already holds servers (stop them first)"
    mkdir -p "$dir/redis" "$dir/pg"
    dir=$(cd "$dir" && pwd)
    # The socket path must fit in sun_path (about 107 bytes).
    [ ${#dir} -le 90 ] || die "directory path too long for a socket: $dir"
    start_redis "$dir"
    start_postgres "$dir" "$durable"
    cat >"$dir/env" <<EOF
export CREDITS_REDIS_URL=redis://127.0.0.1:$(cat "$dir/redis/port")
export CREDITS_DATABASE_URL='host=127.0.0.1 port=$(cat "$dir/pg/port") user=postgres dbname=postgres'
export CREDITS_TEST_REDIS_PORT=$(cat "$dir/redis/port")
export CREDITS_TEST_PG_PORT=$(cat "$dir/pg/port")
EOF
    echo "servers up: redis 127.0.0.1:$(cat "$dir/redis/port"), postgres 127.0.0.1:$(cat "$dir/pg/port") (env: $dir/env)"
}

stop_pid() { # pidfile
    local pidfile=$1 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -INT "$pid" 2>/dev/null || true
        for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
}

cmd_stop() {
    local dir=$1
    stop_pid "$dir/redis/pid"
    stop_pid "$dir/pg/pid"
    rm -f "$dir/env"
}

case "${1:-}" in
start)
    [ $# -ge 2 ] || die "usage: servers.sh start DIR [--durable]"
    cmd_start "$2" "$([ "${3:-}" = --durable ] && echo 1 || echo 0)"
    ;;
stop)
    [ $# -eq 2 ] || die "usage: servers.sh stop DIR"
    cmd_stop "$2"
    ;;
*)
    die "usage: servers.sh start DIR [--durable] | stop DIR"
    ;;
esac
