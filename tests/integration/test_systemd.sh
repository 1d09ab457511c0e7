#!/usr/bin/env bash
# test_systemd.sh -- checks the deployment files under deploy/: the systemd
# units pass `systemd-analyze verify` (and their hardening scores "OK" with
# `systemd-analyze security`), deploy/worker.env.example names every setting
# the worker has, with values the worker accepts, and, when promtool and
# node are installed, the alert rules pass their unit tests and the Grafana
# dashboard parses.
#
#   BUILD_DIR=build tests/integration/test_systemd.sh
#
# Needs systemd-analyze (Debian package `systemd`) and the built
# credits-worker and creditsctl. Starts no server and touches nothing outside
# a temporary directory.
#
# How the units are verified: `systemd-analyze verify` checks that every
# ExecStart= binary exists and is executable, and the units name the
# installed paths (/usr/local/bin/...), which a build machine does not have.
# So the test builds a scratch root directory: the shipped unit files,
# unchanged, in ROOT/etc/systemd/system; the built binaries at the paths the
# units name; and a copy of the host's systemd unit directory (verify loads
# the units' dependencies, down to sysinit.target). `--root=ROOT` then
# verifies exactly the files that get installed, without reading or changing
# the host's own unit configuration. verify reports problems it can recover
# from (an unknown key, a value it cannot parse) as warnings with exit
# status 0, so any output at all fails the check.

set -euo pipefail

: "${BUILD_DIR:?BUILD_DIR must point at the build directory}"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
UNITS="$SOURCE_DIR/deploy/systemd"
ENV_EXAMPLE="$SOURCE_DIR/deploy/worker.env.example"

CHECKS=0
FAILURES=0
pass() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILURES=$((FAILURES + 1)); echo "not ok - $*"; }
finish() {
    echo "$((CHECKS - FAILURES)) passed, $FAILURES failed"
    [ "$FAILURES" -eq 0 ]
}

TMP=$(mktemp -d /tmp/cw-systemd.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

if ! command -v systemd-analyze >/dev/null; then
    fail "systemd-analyze not found: install the Debian package systemd"
    finish
    exit 1
fi
for bin in credits-worker creditsctl; do
    if [ ! -x "$BUILD_DIR/$bin" ]; then
        fail "$BUILD_DIR/$bin not built"
        finish
        exit 1
    fi
done

# ------------------------------------------------------------------------
# The scratch root.
# ------------------------------------------------------------------------

ROOT="$TMP/root"
mkdir -p "$ROOT/etc/systemd/system" "$ROOT/usr/lib/systemd" "$ROOT/usr/local/bin"
host_units=
for dir in /usr/lib/systemd/system /lib/systemd/system; do
    if [ -f "$dir/sysinit.target" ]; then host_units=$dir; break; fi
done
if [ -z "$host_units" ]; then
    fail "no systemd unit directory with sysinit.target on this host"
    finish
    exit 1
fi
cp -R "$host_units" "$ROOT/usr/lib/systemd/system"
ln -s usr/lib "$ROOT/lib" # merged /usr: absolute links into /lib resolve in the root
cp "$UNITS"/*.service "$ROOT/etc/systemd/system/"

# Every ExecStart= binary the units name, installed from the build.
while read -r path; do
    bin=$(basename "$path")
    if [ -x "$BUILD_DIR/$bin" ]; then
        mkdir -p "$ROOT$(dirname "$path")"
        cp "$BUILD_DIR/$bin" "$ROOT$path"
    else
        fail "a unit runs $path, which the build does not make"
    fi
done < <(sed -n 's/^ExecStart=-\{0,1\}\(\/[^ ]*\).*/\1/p' "$UNITS"/*.service | sort -u)

# verify_unit WHAT UNIT... -- verify must exit 0 and say nothing.
verify_unit() {
    local what=$1 out status=0
    shift
    out=$(systemd-analyze verify --man=no --root="$ROOT" "$@" 2>&1) || status=$?
    if [ "$status" -eq 0 ] && [ -z "$out" ]; then
        pass "$what"
    else
        fail "$what: exit status $status"
        printf '%s\n' "$out" | sed 's/^/#   /'
    fi
}

# verify_rejects WHAT UNIT -- verify must complain (exit status or output).
verify_rejects() {
    local what=$1 out status=0
    out=$(systemd-analyze verify --man=no --root="$ROOT" "$2" 2>&1) || status=$?
    if [ "$status" -ne 0 ] || [ -n "$out" ]; then pass "$what"; else fail "$what: verify said nothing"; fi
}

# ------------------------------------------------------------------------
# systemd-analyze verify
# ------------------------------------------------------------------------

verify_unit "verify credits-worker@.service (the template)" credits-worker@.service
verify_unit "verify credits-worker@1.service (an instance)" credits-worker@1.service
verify_unit "verify credits-worker@eu-2.service (an instance with a dash)" credits-worker@eu-2.service
verify_unit "verify credits-migrate.service" credits-migrate.service

# The checks above would be worthless if verify did not look: broken copies
# of the unit must be refused.
sed 's|^ExecStart=/usr/local/bin/credits-worker|ExecStart=/usr/local/bin/no-such-binary|' \
    "$UNITS/credits-worker@.service" >"$ROOT/etc/systemd/system/broken-exec@.service"
verify_rejects "verify refuses a unit whose binary is missing" broken-exec@1.service
sed 's|^ProtectSystem=strict|ProtectSystm=strict|' \
    "$UNITS/credits-worker@.service" >"$ROOT/etc/systemd/system/broken-key@.service"
verify_rejects "verify complains about a misspelled key" broken-key@1.service
rm -f "$ROOT"/etc/systemd/system/broken-*

# ------------------------------------------------------------------------
# systemd-analyze security: exposure 2.0 or lower ("OK").
# ------------------------------------------------------------------------

for unit in credits-worker@1.service credits-migrate.service; do
    status=0
    out=$(systemd-analyze security --offline=yes --root="$ROOT" --threshold=20 "$unit" 2>&1) ||
        status=$?
    level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if [ "$status" -eq 0 ] && [ -n "$level" ]; then
        pass "$unit exposure level $level (at most 2.0)"
    else
        fail "$unit exposure level ${level:-unknown} (want at most 2.0; exit status $status)"
        printf '%s\n' "$out" | grep -v '^✓' | sed 's/^/#   /'
    fi
done

# ------------------------------------------------------------------------
# What the issue asks of the worker unit, and its consistency with the
# environment file.
# ------------------------------------------------------------------------

WORKER_UNIT="$UNITS/credits-worker@.service"
for line in 'User=credits' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' \
    'PrivateTmp=yes' 'PrivateDevices=yes' 'CapabilityBoundingSet=' 'Restart=on-failure' \
    'KillSignal=SIGTERM' 'EnvironmentFile=/etc/credits-worker/worker.env' \
    'SystemCallFilter=@system-service' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX'; do
    if grep -qxF -- "$line" "$WORKER_UNIT"; then
        pass "worker unit has $line"
    else
        fail "worker unit lacks $line"
    fi
done
if grep -qE '^ExecStart=.*--consumer [^ ]*%i' "$WORKER_UNIT"; then
    pass "worker unit names the consumer after the instance (%i)"
else
    fail "worker unit does not name the consumer after the instance"
fi

# TimeoutStopSec above the worker's own shutdown timeout (the example's
# value, or the default), with at least 5 s to spare.
stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$WORKER_UNIT")
shutdown_ms=$(sed -n 's/^#\{0,1\}CREDITS_SHUTDOWN_TIMEOUT_MS=\([0-9]*\)$/\1/p' "$ENV_EXAMPLE")
if [ -n "$stop_s" ] && [ -n "$shutdown_ms" ] && [ $((stop_s * 1000)) -ge $((shutdown_ms + 5000)) ]; then
    pass "TimeoutStopSec=${stop_s}s leaves room after CREDITS_SHUTDOWN_TIMEOUT_MS=$shutdown_ms"
else
    fail "TimeoutStopSec=[$stop_s] s must exceed CREDITS_SHUTDOWN_TIMEOUT_MS=[$shutdown_ms] ms by 5 s"
fi

# Start limits against the delivery limit: a job that crashes the worker is
# set aside at its CREDITS_MAX_DELIVERIES + 1st delivery, one per start, so
# the unit must allow that many starts within StartLimitIntervalSec before
# it gives up (twice over: two such jobs in a row), and still give up on a
# crash loop (the burst is reached inside the window at RestartSec pace).
unit_seconds() { sed -n "s/^$1=\([0-9]*\)s\{0,1\}\$/\1/p" "$WORKER_UNIT"; }
burst=$(sed -n 's/^StartLimitBurst=\([0-9]*\)$/\1/p' "$WORKER_UNIT")
interval_s=$(unit_seconds StartLimitIntervalSec)
restart_s=$(unit_seconds RestartSec)
deliveries=$(sed -n 's/^#\{0,1\}CREDITS_MAX_DELIVERIES=\([0-9]*\)$/\1/p' "$ENV_EXAMPLE")
if [ -z "$burst" ] || [ -z "$interval_s" ] || [ -z "$restart_s" ] || [ -z "$deliveries" ]; then
    fail "start limits: StartLimitBurst=[$burst] StartLimitIntervalSec=[$interval_s] RestartSec=[$restart_s] CREDITS_MAX_DELIVERIES=[$deliveries]"
else
    starts_needed=$(((deliveries + 1) * 2))
    if [ "$burst" -ge "$starts_needed" ]; then
        pass "StartLimitBurst=$burst allows the $((deliveries + 1)) starts of a poison job twice over"
    else
        fail "StartLimitBurst=$burst: two poison jobs need $starts_needed starts (CREDITS_MAX_DELIVERIES=$deliveries, one delivery per start)"
    fi
    if [ $((burst * restart_s)) -lt "$interval_s" ]; then
        pass "a crash loop still reaches the limit: $burst starts at RestartSec=${restart_s}s within ${interval_s}s"
    else
        fail "a crash loop never reaches StartLimitBurst=$burst at RestartSec=${restart_s}s in ${interval_s}s"
    fi
fi

# ------------------------------------------------------------------------
# Migrations run with credentials of their own, which the worker cannot
# read: its own file (required), its own user, the worker's file not read,
# and the file hidden from the worker's processes.
# ------------------------------------------------------------------------

MIGRATE_UNIT="$UNITS/credits-migrate.service"
MIGRATE_ENV=/etc/credits-worker/migrate.env
if grep -qxF "EnvironmentFile=$MIGRATE_ENV" "$MIGRATE_UNIT"; then
    pass "migrate unit reads its own credentials file, required"
else
    fail "migrate unit lacks EnvironmentFile=$MIGRATE_ENV (without '-': required)"
fi
if grep -q '^EnvironmentFile=.*worker.env' "$MIGRATE_UNIT"; then
    fail "migrate unit reads the worker's settings"
else
    pass "migrate unit does not read worker.env"
fi
migrate_user=$(sed -n 's/^User=//p' "$MIGRATE_UNIT")
worker_user=$(sed -n 's/^User=//p' "$WORKER_UNIT")
if grep -qxF 'DynamicUser=yes' "$MIGRATE_UNIT" && [ -z "$migrate_user" ]; then
    pass "migrate runs as a dynamic user of its own, not as $worker_user"
else
    fail "migrate unit runs as [${migrate_user:-?}] (DynamicUser=yes expected): the worker's user could read its environment"
fi
if grep -q "^EnvironmentFile=.*migrate.env" "$WORKER_UNIT"; then
    fail "the worker unit reads migrate.env"
else
    pass "the worker unit does not read migrate.env"
fi
if grep -qxF "InaccessiblePaths=-$MIGRATE_ENV" "$WORKER_UNIT"; then
    pass "the worker unit hides migrate.env from its processes"
else
    fail "the worker unit lacks InaccessiblePaths=-$MIGRATE_ENV"
fi
if grep -q "install -m 0600 .*migrate.env.example $MIGRATE_ENV" "$MIGRATE_UNIT"; then
    pass "the migrate unit says to install migrate.env with mode 0600"
else
    fail "the migrate unit does not say how to install migrate.env (mode 0600)"
fi
migrate_settings=$(sed -n 's/^\(CREDITS_[A-Z0-9_]*\)=.*/\1/p' "$SOURCE_DIR/deploy/migrate.env.example")
expect_settings=CREDITS_DATABASE_URL
if [ "$migrate_settings" = "$expect_settings" ]; then
    pass "migrate.env.example holds CREDITS_DATABASE_URL only"
else
    fail "migrate.env.example holds [$migrate_settings], want [$expect_settings]"
fi
status=0
env -i PATH="$PATH" "$BUILD_DIR/credits-worker" --config "$SOURCE_DIR/deploy/migrate.env.example" \
    --check-config >/dev/null 2>"$TMP/check.err" || status=$?
if [ "$status" -eq 0 ]; then
    pass "migrate.env.example's values are accepted"
else
    fail "migrate.env.example is refused (exit status $status): $(cat "$TMP/check.err")"
fi

# ------------------------------------------------------------------------
# deploy/worker.env.example: every setting of `credits-worker --help`, and
# values the worker accepts.
# ------------------------------------------------------------------------

settings=$("$BUILD_DIR/credits-worker" --help | grep -oE '\bCREDITS_[A-Z0-9_]+' | sort -u)
if [ -n "$settings" ]; then pass "credits-worker --help lists settings"; else fail "credits-worker --help lists no settings"; fi
for name in $settings; do
    if grep -qE "^#?$name=" "$ENV_EXAMPLE"; then
        pass "worker.env.example has $name"
    else
        fail "worker.env.example lacks $name (listed by credits-worker --help)"
    fi
done

# Every setting of the example, commented out or not, with its value: the
# worker must accept them all together, and show the same values back.
example_env=()
while IFS= read -r line; do
    example_env+=("$line")
done < <(sed -n 's/^#\{0,1\}\(CREDITS_[A-Z0-9_]*=.*\)$/\1/p' "$ENV_EXAMPLE")
status=0
shown=$(env -i PATH="$PATH" "${example_env[@]}" "$BUILD_DIR/credits-worker" --check-config 2>"$TMP/check.err") ||
    status=$?
if [ "$status" -eq 0 ]; then
    pass "credits-worker --check-config accepts every value of worker.env.example"
else
    fail "credits-worker --check-config refuses worker.env.example (exit status $status): $(cat "$TMP/check.err")"
fi
# shows NAME VALUE -- a line of $shown gives NAME the VALUE: NAME=VALUE, or
# NAME then spaces, ':' or '=' then VALUE, perhaps quoted.
shows() {
    local line rest
    while IFS= read -r line; do
        [[ $line == "$1"[=:\ $'\t']* ]] || continue
        rest=${line#"$1"}
        rest=${rest#"${rest%%[!=: $'\t']*}"}
        rest=${rest#\"}
        rest=${rest%\"}
        [ "$rest" = "$2" ] && return 0
    done <<<"$shown"
    return 1
}
for kv in "${example_env[@]}"; do
    name=${kv%%=*}
    case $name in
    CREDITS_REDIS_URL | CREDITS_DATABASE_URL) continue ;; # shown redacted
    esac
    if shows "$name" "${kv#*=}"; then
        pass "--check-config shows $kv"
    else
        fail "--check-config does not show $kv from worker.env.example (a setting the worker does not know?)"
    fi
done
# The worker reads the same file with --config.
status=0
"$BUILD_DIR/credits-worker" --config "$ENV_EXAMPLE" --check-config >/dev/null 2>"$TMP/check.err" || status=$?
if [ "$status" -eq 0 ]; then
    pass "credits-worker --config worker.env.example --check-config accepts the file"
else
    fail "credits-worker --config refuses worker.env.example (exit status $status): $(cat "$TMP/check.err")"
fi
if grep -q CHANGE_ME <<<"$shown"; then
    fail "--check-config prints a password from worker.env.example"
else
    pass "--check-config hides the example's passwords"
fi

# ------------------------------------------------------------------------
# The other deployment files, when the tools are here: promtool (Debian
# package prometheus) checks and unit-tests the alert rules; node parses the
# Grafana dashboard.
# ------------------------------------------------------------------------

PROM="$SOURCE_DIR/deploy/prometheus"
if command -v promtool >/dev/null; then
    for args in "check rules $PROM/alerts.yml" "test rules $PROM/alerts.test.yml"; do
        status=0
        # shellcheck disable=SC2086 # the words of $args are promtool's arguments
        out=$(promtool $args 2>&1) || status=$?
        if [ "$status" -eq 0 ]; then
            pass "promtool ${args%% /*} ${args##*/}"
        else
            fail "promtool ${args%% /*} ${args##*/}:"
            printf '%s\n' "$out" | sed 's/^/#   /'
        fi
    done
else
    echo "# promtool not installed: alert rules not checked (Debian package prometheus)"
fi
if command -v node >/dev/null; then
    status=0
    out=$(node -e 'const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        if (!Array.isArray(d.panels) || d.panels.length === 0) throw new Error("no panels");' \
        "$SOURCE_DIR/deploy/grafana/credits-worker.json" 2>&1) || status=$?
    if [ "$status" -eq 0 ]; then pass "the Grafana dashboard is JSON with panels"; else fail "dashboard: $out"; fi
else
    echo "# node not installed: the Grafana dashboard not checked"
fi

finish
