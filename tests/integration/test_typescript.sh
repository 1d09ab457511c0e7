#!/usr/bin/env bash
# test_typescript.sh -- the web app's side, proven against the real worker:
# the package @credits-worker/client (deploy/typescript) installed with
# `npm ci`, built with tsc, its Prisma client generated without any engine
# download, its tests (node --test: encodings, vectors, the types, all ten
# job types and their rejections against the worker, the events and their
# subscription, the benchmark, the Prisma and Drizzle reads, the example
# backend and its events subscriber) run against credits-worker
# on a throwaway Redis and PostgreSQL (lib.sh), none of them skipped; then
# the package packed and installed into two scratch apps, from its folder
# and from the tarball, each compiled under --strict and run: every job
# type and 1,000 concurrent waits, and (the tarball's) the Drizzle reads and
# the Prisma reads of the package README, with the package's Prisma models
# included as the README says and the client generated without network.
#
#   BUILD_DIR=build tests/integration/test_typescript.sh
#
# Needs node 20.19 or later and npm on the PATH, and the npm registry or an
# npm cache that holds the locked packages (npm ci --prefer-offline then
# needs no network). The package is copied to the test's temporary
# directory, so node_modules, dist and generated never land in the source
# tree and two runs do not collide.

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PKG="$SOURCE_DIR/deploy/typescript"
WORK="$TEST_DIR/typescript"
NPM_FLAGS=(--prefer-offline --no-audit --no-fund)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    fail "node and npm are needed (Debian packages nodejs and npm)"
    finish
    exit 1
fi
if node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    pass "node $(node --version) (20.19 or later)"
else
    fail "node $(node --version) is too old: the package needs 20.19 or later (Prisma 7)"
    finish
    exit 1
fi

# run_logged NAME DIR command... -- runs the command in DIR, its output in
# $TEST_DIR/NAME.log; on failure prints the log's tail and the status.
run_logged() {
    local name=$1 dir=$2 status=0
    shift 2
    (cd "$dir" && "$@") >"$TEST_DIR/$name.log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        echo "# $name failed (exit status $status):"
        tail -40 "$TEST_DIR/$name.log" | sed 's/^/#   /'
    fi
    return "$status"
}

# The worker and the TypeScript side share the settings; a prefix other than
# the default proves that the client uses it.
export CREDITS_PREFIX=webapp-test
migrate
"$CREDITSCTL" plan set pro --monthly 1000 >/dev/null
"$CREDITSCTL" pack set starter --credits 500 --valid-days 90 >/dev/null
"$CREDITSCTL" pack set soon --credits 100 --valid-days 3 >/dev/null
# The metrics endpoint on a free loopback port, read at the end.
HTTP_PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1",
    () => { console.log(s.address().port); s.close(); })')
# creditsctl above took the libpq conninfo; the worker takes the URI form
# (libpq parses both). The sweep runs every 200 ms, so that the events
# tests see a hold's expiry and a lot's notice within a second.
start_worker CREDITS_PREFIX="$CREDITS_PREFIX" CREDITS_HTTP_ADDR="127.0.0.1:$HTTP_PORT" \
    CREDITS_DATABASE_URL="$CREDITS_DATABASE_URI" CREDITS_SWEEP_INTERVAL_MS=200

# ------------------------------------------------------------------------
# Install, build, generate: a private copy of the package.
# ------------------------------------------------------------------------

mkdir -p "$WORK"
(cd "$PKG" && cp -R package.json package-lock.json .npmrc tsconfig.json tsconfig.test.json prisma.config.ts \
    README.md src drizzle prisma test example tools install-check "$WORK/")

if run_logged npm-ci "$WORK" npm ci "${NPM_FLAGS[@]}"; then
    pass "npm ci installs the locked packages (and builds dist/ through prepare)"
else
    fail "npm ci"
    finish
    exit 1
fi
# The installed version of a package of the copy (read from its
# package.json file: some packages' exports do not expose it).
version_of() { node -p "require('$WORK/node_modules/$1/package.json').version" 2>/dev/null; }
for pkg in ioredis @msgpack/msgpack typescript prisma @prisma/client @prisma/adapter-pg drizzle-orm pg; do
    version=$(version_of "$pkg") || version=
    if [ -n "$version" ]; then pass "installed $pkg $version"; else fail "$pkg is not installed"; fi
done
for f in dist/src/index.js dist/src/index.d.ts dist/drizzle/index.js dist/drizzle/index.d.ts; do
    if [ -f "$WORK/$f" ]; then pass "the build wrote $f"; else fail "the build did not write $f"; fi
done

# Generation needs no network at all: in a network namespace of its own
# when this machine allows one (root), else as it is.
no_network=()
if unshare -n true 2>/dev/null; then no_network=(unshare -n); fi
if run_logged prisma-generate "$WORK" env PATH="$WORK/node_modules/.bin:$PATH" "${no_network[@]}" \
    sh tools/prisma-generate.sh; then
    pass "prisma generate makes the client ${no_network:+with no network }(no engine download)"
else
    fail "prisma generate"
fi
if grep -q 'no-schema-engine' "$TEST_DIR/prisma-generate.log"; then
    fail "prisma generate ran the schema engine, which it should never need"
fi
if run_logged tsc "$WORK" node node_modules/typescript/bin/tsc -p tsconfig.test.json; then
    pass "tsc compiles src/, drizzle/, test/, example/ and the generated client (strict)"
else
    fail "tsc -p tsconfig.test.json"
    finish
    exit 1
fi

# ------------------------------------------------------------------------
# The package's tests, against the worker.
# ------------------------------------------------------------------------

status=0
(cd "$WORK" && CREDITSCTL="$CREDITSCTL" CREDITS_VECTORS_DIR="$SOURCE_DIR/schemas/vectors" \
    CREDITS_REDIS_ACL_TEMPLATE="$SOURCE_DIR/deploy/redis/users.acl" \
    node --test --test-concurrency=1 dist/test/*.test.js) >"$TEST_DIR/node-test.tap" 2>&1 || status=$?
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$TEST_DIR/node-test.tap")
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$TEST_DIR/node-test.tap")
if [ "$status" -eq 0 ] && [ "${failed:-1}" = 0 ] && [ "${passed:-0}" -gt 0 ]; then
    pass "node --test: $passed tests passed against the worker"
else
    fail "node --test: exit status $status, ${passed:-?} passed, ${failed:-?} failed"
    grep -E -A16 '^ *not ok ' "$TEST_DIR/node-test.tap" | sed 's/^/#   /' | head -160
fi
# Each suite of the package, by name, ran and passed (a suite that is
# renamed or stops loading must not pass unseen).
suites=$(sed -n 's/^ok [0-9]* - //p' "$TEST_DIR/node-test.tap")
for suite in "job encoding, field by field" "job rules" "result decoding" "test vectors (schemas/vectors)" \
    "types: the unions and their run-time lists" "contract v1 against the worker" \
    "revision 2 against the worker" "event decoding" "the events subscription on a stream of its own" \
    "events against the worker" "benchmark: concurrent waits through one client" \
    "Prisma and Drizzle models against the migrated database" "the example backend, end to end" \
    "the example backend's events subscriber (server.js --events)" "README: the events wiring"; do
    if grep -qxF "$suite" <<<"$suites"; then pass "suite passed: $suite"; else fail "suite did not pass: $suite"; fi
done
# Nothing is skipped: the worker implements every job type.
skips=$(grep -E '# (SKIP|TODO)' "$TEST_DIR/node-test.tap" || true)
if [ -n "$skips" ]; then
    fail "node --test skipped tests:"
    sed 's/^/#   /' <<<"$skips"
else
    pass "node --test skipped nothing"
fi
echo "# benchmark (one client, concurrent waits against the worker):"
grep -o 'bench: .*' "$TEST_DIR/node-test.tap" | sed 's/^/#   /'
bench_lines=$(grep -c 'bench: waits=' "$TEST_DIR/node-test.tap" || true)
expect_eq "the benchmark printed its three waves" 3 "$bench_lines"

# ------------------------------------------------------------------------
# The package as an app installs it: npm pack's tarball, and the folder.
# ------------------------------------------------------------------------

# What the scratch apps install beside the package: the compiler, and
# ioredis (an app has its own connection to Redis).
TOOLCHAIN=("typescript@$(version_of typescript)" "@types/node@$(version_of @types/node)" "ioredis@$(version_of ioredis)")

tarball=
if run_logged npm-pack "$WORK" npm pack --pack-destination "$TEST_DIR" "${NPM_FLAGS[@]}"; then
    tarball=$(find "$TEST_DIR" -maxdepth 1 -name 'credits-worker-client-*.tgz' | head -1)
fi
if [ -n "$tarball" ]; then
    pass "npm pack made $(basename "$tarball")"
    contents=$(tar -tzf "$tarball")
    for f in package/package.json package/README.md package/dist/src/index.js package/dist/src/index.d.ts \
        package/dist/drizzle/index.js package/prisma/schema.prisma; do
        if grep -qxF "$f" <<<"$contents"; then pass "the tarball holds $f"; else fail "the tarball lacks $f"; fi
    done
    if grep -qE '^package/(test|dist/test|generated|dist/generated|example|src/.*\.ts$)' <<<"$contents"; then
        fail "the tarball holds tests, the example or generated files: $(grep -E '^package/(test|dist/test|generated|dist/generated|example)' <<<"$contents" | head -3)"
    else
        pass "the tarball holds no tests, example or generated client"
    fi
else
    fail "npm pack made no tarball"
fi

# check_app NAME TSCONFIG -- compiles the scratch app in $TEST_DIR/NAME and
# runs it: every job type, and 1,000 concurrent waits.
check_app() {
    local name=$1 dir="$TEST_DIR/$1" tsconfig=$2 out
    if run_logged "$name-tsc" "$dir" node node_modules/typescript/bin/tsc -p "$tsconfig"; then
        pass "$name: the app compiles under --strict against the installed package"
    else
        fail "$name: tsc -p $tsconfig"
        return
    fi
    if run_logged "$name-run" "$dir" node dist/app.js; then
        pass "$name: the app runs against the worker"
    else
        fail "$name: node dist/app.js"
        return
    fi
    out=$(cat "$TEST_DIR/$name-run.log")
    expect_match "$name: its consume is applied" 'install-check: consume applied charged=40 balance=460' "$out"
    expect_match "$name: its expensive consume is refused" \
        'install-check: consume rejected insufficient_credits balance=460' "$out"
    expect_match "$name: every job type is applied" \
        'install-check: types purchase=applied consume=applied allocate=applied hold=applied capture=applied release=applied refund=applied revoke=applied cancel=applied grant=applied' "$out"
    expect_match "$name: capture, revoke and a second cancel decide as the rules say" \
        'install-check: second cancel no_plan; capture charged 120, 180 back; revoked 360; balance \{"total":1000,"pack":0,"monthly":1000,"grant":0,"held":0\}' "$out"
    expect_match "$name: 1,000 concurrent waits, every one decided, through the client's two connections" \
        'install-check: waits 1000 applied 1000 connections [12]$' "$(grep 'install-check: waits' <<<"$out")"
    expect_match "$name: the balance after it all" \
        'install-check: balance \{"total":25,"pack":0,"monthly":0,"grant":25,"held":0\}' "$out"
    APP_USER=$(sed -n 's/^install-check: user //p' <<<"$out")
}

# From the folder (npm links it; the package's own node_modules serve it).
mkdir -p "$TEST_DIR/app-folder"
cp -R "$WORK/install-check/." "$TEST_DIR/app-folder/"
if run_logged app-folder-install "$TEST_DIR/app-folder" npm install "${NPM_FLAGS[@]}" "$WORK" "${TOOLCHAIN[@]}"; then
    pass "npm install ./deploy/typescript (the folder) into a scratch app"
    check_app app-folder tsconfig.json
else
    fail "npm install of the folder"
fi

# From the tarball, with the Drizzle subpath and its peer dependency, and
# Prisma: the package's models included in the app's own schema folder, the
# client generated without network, the README's Prisma reads copied from
# the installed package's README, all as that README says.
if [ -n "$tarball" ]; then
    app="$TEST_DIR/app-tarball"
    mkdir -p "$app"
    cp -R "$WORK/install-check/." "$app/"
    if run_logged app-tarball-install "$app" npm install "${NPM_FLAGS[@]}" "$tarball" \
        "${TOOLCHAIN[@]}" "drizzle-orm@$(version_of drizzle-orm)" "pg@$(version_of pg)" "@types/pg@$(version_of @types/pg)" \
        "prisma@$(version_of prisma)" "@prisma/client@$(version_of @prisma/client)" \
        "@prisma/adapter-pg@$(version_of @prisma/adapter-pg)"; then
        pass "npm install of the packed tarball into a scratch app"
        readme="$app/node_modules/@credits-worker/client/README.md"
        cp "$app/node_modules/@credits-worker/client/prisma/schema.prisma" "$app/prisma/credits.prisma"
        awk '/^\/\/ prisma-reads.ts --/ { found = 1 } found && /^```$/ { exit } found' "$readme" >"$app/prisma-reads.ts"
        if grep -q 'export async function readHistoryPage' "$app/prisma-reads.ts"; then
            pass "app-tarball: the README's Prisma reads copied from the installed package"
        else
            fail "app-tarball: no Prisma reads found in $readme"
        fi
        mkdir -p "$app/tools"
        printf '#!/bin/sh\necho "no schema engine here: prisma generate does not need it" >&2\nexit 1\n' \
            >"$app/tools/no-schema-engine"
        chmod +x "$app/tools/no-schema-engine"
        if run_logged app-tarball-generate "$app" env PRISMA_SCHEMA_ENGINE_BINARY="$app/tools/no-schema-engine" \
            "${no_network[@]}" node node_modules/prisma/build/index.js generate; then
            pass "app-tarball: prisma generate with the package's models ${no_network:+and no network }(no engine download)"
        else
            fail "app-tarball: prisma generate"
        fi
        if grep -q 'no schema engine here' "$TEST_DIR/app-tarball-generate.log"; then
            fail "app-tarball: prisma generate ran the schema engine"
        fi
        APP_USER=
        check_app app-tarball tsconfig.prisma.json
        for orm in drizzle prisma; do
            if [ -n "$APP_USER" ] && run_logged "app-tarball-$orm" "$app" env CREDITSCTL="$CREDITSCTL" \
                node "dist/$orm.js" "$APP_USER"; then
                out=$(cat "$TEST_DIR/app-tarball-$orm.log")
                expect_match "app-tarball: the $orm reads (balance, 40 history lines, expiring soon) are creditsctl's" \
                    "install-check: $orm agrees with creditsctl: balance \\{\"total\":25,\"pack\":0,\"monthly\":0,\"grant\":25,\"held\":0,\"next_expiry\":\"[0-9T:Z-]+\",\"next_expiry_credits\":25\\}, 40 history lines, expiring soon \\{\"expires\":\"[0-9T:Z-]+\",\"credits\":25\\}" "$out"
            else
                fail "app-tarball: node dist/$orm.js"
            fi
        done
        expect_match "app-tarball: the Prisma schema file resolves from the package" \
            'install-check: prisma schema true' "$(cat "$TEST_DIR/app-tarball-drizzle.log" 2>/dev/null)"
    else
        fail "npm install of the tarball"
    fi
fi

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
expect_match "/metrics counts the id_conflict dead letters" \
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
# The worker stops cleanly; the ledger adds up after all of it.
# ------------------------------------------------------------------------

expect_status "creditsctl audit finds the ledger consistent" 0 "$CREDITSCTL" audit
stop_worker "$WORKER_PID"
expect_eq "credits-worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
if [ "$FAILURES" -gt 0 ]; then
    echo "# worker log:"
    tail -40 "$TEST_DIR/worker-0.log" | sed 's/^/#   /'
fi

finish
