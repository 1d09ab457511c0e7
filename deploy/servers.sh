#!/usr/bin/env bash
# servers.sh -- throwaway Redis and PostgreSQL on loopback, for the demo, the
# tests and the benchmarks. Everything lives under one directory; the servers
# are stopped by the PIDs recorded there, never by name.
#
#   deploy/servers.sh start DIR [--durable] [--aof]   start both, write DIR/env
#   deploy/servers.sh stop DIR                        stop both (by PID)
#   deploy/servers.sh restart-postgres DIR            immediate restart, same port
#   deploy/servers.sh restart-redis DIR [--aof] [--kill] [--down SECONDS]
#                                                     stop and start, same port
#   deploy/servers.sh free-port                       print a free loopback port
#
# DIR/env holds CREDITS_REDIS_URL (a redis:// URL), CREDITS_DATABASE_URL (a
# libpq conninfo string) and CREDITS_DATABASE_URI (the same database as a
# postgresql:// URI, the form ORMs and node's pg take; the worker and
# creditsctl accept either form, since libpq parses both). Source it.
# Without --durable, PostgreSQL runs with fsync off (tests only); with it,
# fsync and synchronous_commit stay on, as a credits ledger must be measured.
# With --aof, Redis keeps an append-only file (appendfsync always: a write it
# acknowledged survives a restart, even a kill -9) in DIR/redis.
#
# The restarts are for fault-injection tests. restart-postgres is
# `pg_ctl restart -m immediate` (every backend killed, crash recovery on
# start, the same options and port). restart-redis stops Redis by its PID
# (SIGINT, or SIGKILL with --kill) and starts it again on the same port and
# directory, after SECONDS of outage with --down; with --aof (or when it was started with --aof) the new server
# has the append-only file on and reloads it, else Redis starts empty. Both
# update the PID files, so `stop` stops the new servers.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

die() { echo "servers.sh: $*" >&2; exit 1; }

port_in_use() { (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

# A free loopback port (random start, so parallel runs differ), below the
# kernel's ephemeral range: a port in that range can be the local end of any
# process's outgoing connection, which no probe sees and which makes a
# server's bind fail with "address in use".
free_port() {
    local low=20000 high=59999 ephemeral port tries
    ephemeral=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 0)
    if [ "$ephemeral" -gt $((low + 4096)) ]; then high=$((ephemeral - 1)); fi
    port=$((low + RANDOM % (high - low + 1)))
    for tries in $(seq 1 200); do
        port_in_use "$port" || { echo "$port"; return; }
        port=$((port + 1))
        if [ "$port" -gt "$high" ]; then port=$low; fi
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

# Runs redis-server on `port` in the foreground of a background job, so that
# $! is its PID. aof: yes or no (recorded in DIR/redis/aof for restarts).
run_redis() { # dir port aof
    local dir=$1 port=$2 aof=$3
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly "$aof" \
        --appendfsync always \
        --dir "$dir/redis" --logfile "$dir/redis/redis.log" --daemonize no \
        >/dev/null 2>&1 &
    echo $! >"$dir/redis/pid"
    echo "$aof" >"$dir/redis/aof"
    # PING answers LOADING (an error) while the append-only file is read.
    wait_for 400 redis_ready "$port" && return 0
    stop_pid "$dir/redis/pid"
    return 1
}

redis_ready() { [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]; }

# A free port can be taken by another process before the server binds it
# (tests start servers in parallel): try a few.
start_redis() {
    local dir=$1 aof=$2 port attempt
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if run_redis "$dir" "$port" "$aof"; then
            echo "$port" >"$dir/redis/port"
            return 0
        fi
    done
    die "redis did not start (see $dir/redis/redis.log)"
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
    local attempt
    for attempt in 1 2 3 4 5; do
        if as_pg "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w -t 60 \
            -o "-k $dir/pg -p $port -c listen_addresses=127.0.0.1 -c fsync=$fsync \
                -c synchronous_commit=$fsync -c full_page_writes=$fsync \
                -c max_connections=200 -c shared_buffers=256MB" \
            start >/dev/null; then
            head -1 "$dir/pg/data/postmaster.pid" >"$dir/pg/pid"
            echo "$port" >"$dir/pg/port"
            return 0
        fi
        port=$(free_port) # taken meanwhile, most likely: another one
    done
    die "postgres did not start (see $dir/pg/log)"
}

cmd_start() {
    local dir=$1 durable=$2 aof=$3
    [ -e "$dir/env" ] && die "$dir already holds servers (stop them first)"
    mkdir -p "$dir/redis" "$dir/pg"
    dir=$(cd "$dir" && pwd)
    # The socket path must fit in sun_path (about 107 bytes).
    [ ${#dir} -le 90 ] || die "directory path too long for a socket: $dir"
    start_redis "$dir" "$aof"
    start_postgres "$dir" "$durable"
    local redis_port pg_port
    redis_port=$(cat "$dir/redis/port")
    pg_port=$(cat "$dir/pg/port")
    cat >"$dir/env" <<EOF
export CREDITS_REDIS_URL=redis://127.0.0.1:$redis_port
export CREDITS_DATABASE_URL='host=127.0.0.1 port=$pg_port user=postgres dbname=postgres'
export CREDITS_DATABASE_URI=postgresql://postgres@127.0.0.1:$pg_port/postgres
export CREDITS_TEST_REDIS_PORT=$redis_port
export CREDITS_TEST_PG_PORT=$pg_port
EOF
    echo "servers up: redis 127.0.0.1:$redis_port, postgres 127.0.0.1:$pg_port (env: $dir/env)"
    echo "  Redis:      redis://127.0.0.1:$redis_port"
    echo "  PostgreSQL: host=127.0.0.1 port=$pg_port user=postgres dbname=postgres"
    echo "              postgresql://postgres@127.0.0.1:$pg_port/postgres"
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

# Whether the process runs: a zombie does not (it holds no port, and its
# parent, PID 1 once the starting script has exited, may reap it late).
running() { # pid
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "${state%% *}" != Z ]
}

# The servers of DIR must be up (started by cmd_start).
require_running() { # dir what
    local dir=$1 what=$2 pid
    if [ ! -f "$dir/$what/pid" ] || [ ! -f "$dir/$what/port" ]; then
        die "no $what server recorded in $dir"
    fi
    pid=$(cat "$dir/$what/pid")
    running "$pid" || die "the $what server of $dir (pid $pid) is not running"
}

cmd_restart_postgres() {
    local dir=$1 port
    require_running "$dir" pg
    port=$(cat "$dir/pg/port")
    # -m immediate: every backend is killed at once, no checkpoint; the new
    # postmaster (same options, from postmaster.opts) runs crash recovery.
    as_pg "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w -t 60 -m immediate \
        restart >/dev/null || die "postgres did not restart (see $dir/pg/log)"
    head -1 "$dir/pg/data/postmaster.pid" >"$dir/pg/pid"
    wait_for 200 as_pg "$PGBIN/pg_isready" -q -h "$dir/pg" -p "$port" ||
        die "postgres does not accept connections after the restart (see $dir/pg/log)"
}

cmd_restart_redis() {
    local dir=$1 aof=$2 kill_it=$3 down=$4 port pid
    require_running "$dir" redis
    port=$(cat "$dir/redis/port")
    pid=$(cat "$dir/redis/pid")
    [ "$aof" = yes ] || aof=$(cat "$dir/redis/aof" 2>/dev/null || echo no)
    # SIGINT: Redis shuts down cleanly (the AOF flushed); SIGKILL: a crash.
    kill "-$([ "$kill_it" = 1 ] && echo KILL || echo INT)" "$pid" 2>/dev/null || true
    for _ in $(seq 1 400); do running "$pid" || break; sleep 0.02; done
    running "$pid" && die "redis (pid $pid) did not stop"
    rm -f "$dir/redis/pid"
    sleep "$down"
    run_redis "$dir" "$port" "$aof" || die "redis did not restart (see $dir/redis/redis.log)"
}

case "${1:-}" in
start)
    [ $# -ge 2 ] || die "usage: servers.sh start DIR [--durable] [--aof]"
    durable=0 aof=no
    for opt in "${@:3}"; do
        case "$opt" in
        --durable) durable=1 ;;
        --aof) aof=yes ;;
        *) die "unknown option $opt (usage: servers.sh start DIR [--durable] [--aof])" ;;
        esac
    done
    cmd_start "$2" "$durable" "$aof"
    ;;
stop)
    [ $# -eq 2 ] || die "usage: servers.sh stop DIR"
    cmd_stop "$2"
    ;;
restart-postgres)
    [ $# -eq 2 ] || die "usage: servers.sh restart-postgres DIR"
    cmd_restart_postgres "$2"
    ;;
restart-redis)
    usage="usage: servers.sh restart-redis DIR [--aof] [--kill] [--down SECONDS]"
    [ $# -ge 2 ] || die "$usage"
    dir=$2 aof=no kill_it=0 down=0
    shift 2
    while [ $# -gt 0 ]; do
        case "$1" in
        --aof) aof=yes ;;
        --kill) kill_it=1 ;;
        --down)
            [[ "${2:-}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$usage"
            down=$2
            shift
            ;;
        *) die "unknown option $1 ($usage)" ;;
        esac
        shift
    done
    cmd_restart_redis "$dir" "$aof" "$kill_it" "$down"
    ;;
free-port)
    [ $# -eq 1 ] || die "usage: servers.sh free-port"
    free_port
    ;;
*)
    die "usage: servers.sh start DIR [--durable] [--aof] | stop DIR | restart-postgres DIR | restart-redis DIR [--aof] [--kill] [--down SECONDS] | free-port"
    ;;
esac
