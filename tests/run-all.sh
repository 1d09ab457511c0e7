#!/usr/bin/env bash
# run-all.sh -- the whole test suite: installs what it needs, builds three
# times (plain Release, AddressSanitizer + UndefinedBehaviorSanitizer, clang
# libFuzzer) and runs every test with ctest. Integration tests start their
# own Redis and PostgreSQL on loopback ports. Exit status 0 only if
# everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests need (compiler, libraries, Redis, PostgreSQL, clang,
# valgrind, systemd-analyze, node): installed once, checked every time.
bash deploy/install-deps.sh

run_suite() { # build-dir ctest-exclude-regex cmake-args...
    local dir=$1 exclude=$2
    shift 2
    echo "== build $dir $*"
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j"$(nproc)" >/dev/null
    echo "== test $dir${exclude:+ (all but $exclude)}"
    (cd "$dir" && ctest --output-on-failure -j2 ${exclude:+-E "$exclude"})
}

run_suite build "" -DCMAKE_BUILD_TYPE=Release
# Any sanitizer finding, a leak included, fails the run. The TypeScript
# client's suite runs on the plain build only: it drives the worker along
# the paths the C and shell suites drive here too, and its two and a half
# minutes would take a fresh machine's run close to half an hour.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-sanitize '^integration_typescript$' \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCREDITS_SANITIZE=ON
# Fuzz smoke: clang + libFuzzer, 20 s per target over the seed corpus.
echo "== build build-fuzz (clang, libFuzzer)"
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DCREDITS_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_decode fuzz_ledger fuzz_batch >/dev/null
echo "== test build-fuzz (fuzz smoke)"
(cd build-fuzz && ctest -L fuzz --output-on-failure -j2)
echo "== all tests passed (plain, sanitized and fuzz builds)"
