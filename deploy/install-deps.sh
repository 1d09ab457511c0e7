#!/usr/bin/env bash
# install-deps.sh -- installs what credits-worker needs to build, test and run
# on Debian 12: the compiler and CMake, the five libraries' -dev packages,
# Redis and PostgreSQL, and the test suite's tools. Run as root (or through
# sudo). Safe to run again.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libhiredis-dev libevent-dev libpq-dev libmsgpack-dev libcmocka-dev
    redis-server postgresql postgresql-client curl
    systemd # systemd-analyze, for the unit files' test
    clang libclang-rt-14-dev # libFuzzer, for the fuzz smoke
    valgrind # the unit tests run under memcheck too
    faketime # steps the wall clock of one process (test_healthz_clock)
    stunnel4 openssl # Redis over TLS through a local tunnel (test_redis_tls)
    prometheus # promtool: checks and unit-tests deploy/prometheus/ (test_systemd)
    chromium # headless, drives creditsctl console's page (test_console)
)
# Node.js and npm run the web app's producer example and its test, and drive
# the console's page in Chromium (test_console). A machine may have them from
# elsewhere; Debian's (18 and 9) are enough when it has not.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: everything is installed"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
# The packages start system-wide servers; the project runs its own on
# loopback ports under a directory of its own and does not need them.
echo "install-deps: done"
