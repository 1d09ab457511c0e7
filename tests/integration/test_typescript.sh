#!/usr/bin/env bash
# test_typescript.sh -- the web app's side, proven against the real worker:
# installs the TypeScript producer example (deploy/typescript) with npm,
# compiles it with tsc, and runs its test (node:test) and the example
# against credits-worker on a throwaway Redis and PostgreSQL (lib.sh). The
# test also checks the contract's vectors (schemas/vectors) with
# @msgpack/msgpack.
#
#   BUILD_DIR=build tests/integration/test_typescript.sh
#
# Needs node (18 or later: Debian 12's nodejs 18 and npm 9 work) and npm on
# the PATH, and the npm registry, or an npm cache that already holds the
# locked packages (npm ci --prefer-offline then works without the network).
# The package is copied to the test's temporary directory, so node_modules
# and dist never land in the source tree and two runs do not collide.

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PKG="$SOURCE_DIR/deploy/typescript"
WORK="$TEST_DIR/typescript"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    fail "node and npm are needed (Debian packages nodejs and npm)"
    finish
    exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -ge 18 ]; then
    pass "node $(node --version) (18 or later)"
else
    fail "node $(node --version) is too old: the example needs 18 or later"
    finish
    exit 1
fi

# The worker and the TypeScript side share the settings; a prefix other than
# the default proves that the client uses it.
export CREDITS_PREFIX=webapp-test
migrate
"$CREDITSCTL" plan set pro --monthly 1000 >/dev/null
"$CREDITSCTL" pack set starter --credits 500 --valid-days 90 >/dev/null
# The metrics endpoint on a free loopback port, read at the end.
HTTP_PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1",
    () => { console.log(s.address().port); s.close(); })')
start_worker CREDITS_PREFIX="$CREDITS_PREFIX" CREDITS_HTTP_ADDR="127.0.0.1:$HTTP_PORT"

# ------------------------------------------------------------------------
# Install and compile a private copy of the package.
# ------------------------------------------------------------------------

mkdir -p "$WORK"
cp "$PKG/package.json" "$PKG/package-lock.json" "$PKG/tsconfig.json" "$WORK/"
cp -R "$PKG/src" "$PKG/test" "$WORK/"

status=0
(cd "$WORK" && npm ci --prefer-offline --no-audit --no-fund) >"$TEST_DIR/npm-ci.log" 2>&1 || status=$?
if [ "$status" -eq 0 ]; then
    pass "npm ci installs the locked packages"
else
    fail "npm ci failed (exit status $status):"
    sed 's/^/#   /' "$TEST_DIR/npm-ci.log" | tail -20
    finish
    exit 1
fi
for pkg in ioredis @msgpack/msgpack pg typescript; do
    version=$(cd "$WORK" && node -p "require('$pkg/package.json').version" 2>/dev/null) || version=
    if [ -n "$version" ]; then pass "installed $pkg $version"; else fail "$pkg is not installed"; fi
done

status=0
(cd "$WORK" && node node_modules/typescript/bin/tsc -p .) >"$TEST_DIR/tsc.log" 2>&1 || status=$?
if [ "$status" -eq 0 ]; then
    pass "tsc compiles src/ and test/ (strict)"
else
    fail "tsc failed (exit status $status):"
    sed 's/^/#   /' "$TEST_DIR/tsc.log" | tail -30
    finish
    exit 1
fi

# ------------------------------------------------------------------------
# The test, against the worker.
# ------------------------------------------------------------------------

status=0
(cd "$WORK" && CREDITS_VECTORS_DIR="$SOURCE_DIR/schemas/vectors" node --test dist/test/) \
    >"$TEST_DIR/node-test.tap" 2>&1 || status=$?
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$TEST_DIR/node-test.tap")
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$TEST_DIR/node-test.tap")
if [ "$status" -eq 0 ] && [ "${failed:-1}" = 0 ] && [ "${passed:-0}" -gt 0 ]; then
    pass "node --test: producer.test.ts, $passed tests passed against the worker"
else
    fail "node --test: exit status $status, ${passed:-?} passed, ${failed:-?} failed"
    # The failing subtests with their messages.
    grep -E -A12 '^ *not ok ' "$TEST_DIR/node-test.tap" | sed 's/^/#   /' | head -120
fi
if grep -q '# SKIP' "$TEST_DIR/node-test.tap"; then
    fail "node --test skipped tests:"
    grep '# SKIP' "$TEST_DIR/node-test.tap" | sed 's/^/#   /'
else
    pass "node --test skipped nothing (the worker tests ran)"
fi

# ------------------------------------------------------------------------
# The example, as a developer would run it.
# ------------------------------------------------------------------------

status=0
(cd "$WORK" && node dist/src/example.js) >"$TEST_DIR/example.out" 2>&1 || status=$?
out=$(cat "$TEST_DIR/example.out")
expect_eq "the example exits 0" 0 "$status"
expect_match "the example's purchase is applied" '(^|
)purchase: \{[^
]*"status":"applied"[^
]*"granted":500' "$out"
expect_match "the example's consume is applied" '(^|
)consume: \{[^
]*"status":"applied"[^
]*"charged":40[^
]*"replayed":false' "$out"
expect_match "the example's retried consume is replayed" '(^|
)consume again: \{[^
]*"charged":40[^
]*"replayed":true' "$out"
expect_match "the example's expensive consume is refused" '(^|
)too expensive: \{[^
]*"error":"insufficient_credits"' "$out"
expect_match "the example reads the balance from PostgreSQL" '(^|
)balance: \{"total":460,"pack":460,"monthly":0\}' "$out"
if [ "$FAILURES" -gt 0 ]; then sed 's/^/#   /' "$TEST_DIR/example.out"; fi

# ------------------------------------------------------------------------
# The worker's /metrics after that traffic: it counted the web app's jobs,
# and it exports every metric that deploy/prometheus/alerts.yml and
# deploy/grafana/credits-worker.json use.
# ------------------------------------------------------------------------

# shellcheck disable=SC2016 # JavaScript, not shell, in single quotes
metrics=$(node -e 'fetch(process.argv[1]).then(async (r) => {
    if (!r.ok) throw new Error(`HTTP ${r.status}`); process.stdout.write(await r.text()); })' \
    "http://127.0.0.1:$HTTP_PORT/metrics" 2>"$TEST_DIR/metrics.err") || metrics=
if [ -n "$metrics" ]; then
    pass "GET /metrics answers"
else
    fail "GET /metrics on 127.0.0.1:$HTTP_PORT: $(cat "$TEST_DIR/metrics.err")"
fi
expect_match "/metrics counts the applied consumes" \
    '(^|
)credits_jobs_total\{type="consume",status="applied",error="none"\} [1-9]' "$metrics"
expect_match "/metrics counts the insufficient_credits rejections" \
    '(^|
)credits_jobs_total\{type="consume",status="rejected",error="insufficient_credits"\} [1-9]' "$metrics"
expect_match "/metrics counts the id_conflict dead letter" \
    '(^|
)credits_dead_letters_total\{reason="id_conflict"\} [1-9]' "$metrics"
expect_match "/metrics says ready" '(^|
)credits_ready 1(
|$)' "$metrics"
exported=$(sed -n 's/^\(credits_[a-z_]*\).*/\1/p' <<<"$metrics" | sed -E 's/_(bucket|sum|count)$//' | sort -u)
used=$(grep -ohE '\bcredits_[a-z_]+' "$SOURCE_DIR/deploy/prometheus/alerts.yml" \
    "$SOURCE_DIR/deploy/grafana/credits-worker.json" | sed -E 's/_(bucket|sum|count)$//' |
    grep -vE '^credits_(worker|migrate)$' | sort -u)
for name in $used; do
    if grep -qxF "$name" <<<"$exported"; then
        pass "/metrics exports $name (used by the alerts or the dashboard)"
    else
        fail "/metrics does not export $name, which the alerts or the dashboard use"
    fi
done

# ------------------------------------------------------------------------
# The worker stops cleanly.
# ------------------------------------------------------------------------

stop_worker "$WORKER_PID"
expect_eq "credits-worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
if [ "$FAILURES" -gt 0 ]; then
    echo "# worker log:"
    tail -40 "$TEST_DIR/worker-0.log" | sed 's/^/#   /'
fi

finish
