#!/usr/bin/env bash
# test_console.sh -- `creditsctl console` in a real browser (headless
# Chromium, driven by console_browser.js) against the real worker, Redis and
# PostgreSQL: the overview shows the pending count XPENDING gives and the
# worker ready; a user's page shows the balance `creditsctl balance --json`
# gives, a tool of <script>alert(1)</script> as text, and each job's detail;
# a dead letter is refused without the token, then retried from the page
# and decided by the worker, and every one of a reason retried at once; a
# job's page shows its decision and where its result is. With curl: actions
# refused without the token, with a wrong one, from another Origin or Host,
# and on a read-only console; one audit line per action; the read-only
# console works as a member of credits_reader; bad parameters, long
# queries, bodies and garbage bytes get answers, never a crash. Screenshots
# of every page go to $CONSOLE_SCREENSHOTS (default: the test directory).
#
#   BUILD_DIR=build tests/integration/test_console.sh
#   CONSOLE_SCREENSHOTS=deploy/console BUILD_DIR=build tests/integration/test_console.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/ctl_lib.sh"

if ! command -v chromium >/dev/null || ! command -v node >/dev/null; then
    fail "chromium and node are needed (bash deploy/install-deps.sh installs them)"
    finish
    exit 1
fi

BROWSER_JS="$SOURCE_DIR/tests/integration/console_browser.js"
TOKEN="console-token-$RANDOM$RANDOM$RANDOM"
TOKEN_PRINT=$(printf '%s' "$TOKEN" | sha256sum | cut -c1-12)
WRONG="wrong-token-$RANDOM$RANDOM$RANDOM"
WRONG_PRINT=$(printf '%s' "$WRONG" | sha256sum | cut -c1-12)
SHOTS=${CONSOLE_SCREENSHOTS:-$TEST_DIR/screenshots}
mkdir -p "$SHOTS"
SHOTS=$(cd "$SHOTS" && pwd)
WAIT_TRIES=200 # 20 s
CONSOLE_PIDS=()
BROWSER_PIDS=()

# browser COMMAND ARGS... -- runs console_browser.js; sets OUT (its JSON) and STATUS.
browser() {
    STATUS=0
    OUT=$(TMPDIR="$TEST_DIR" node "$BROWSER_JS" "$@" 2>"$TEST_DIR/browser.err") || STATUS=$?
    if [ "$STATUS" != 0 ]; then echo "# browser $1: $(cat "$TEST_DIR/browser.err")"; fi
}

# clean_page WHAT -- the last browser command saw no dialog, exception,
# policy violation or request to another origin.
clean_page() {
    expect_eq "$1: no dialog, no exception, no policy violation, nothing from elsewhere" \
        "[] [] [] []" \
        "$(json_get "$OUT" '{dialogs}') $(json_get "$OUT" '{exceptions}') $(json_get "$OUT" '{csp}') $(json_get "$OUT" '{foreign}')"
}

# api METHOD URL [curl args...] -- the status code; the body in $TEST_DIR/api.out.
api() {
    curl -s -o "$TEST_DIR/api.out" -w '%{http_code}' --max-time 20 -X "$1" "$2" "${@:3}"
}
body() { cat "$TEST_DIR/api.out"; }
# act PATH [curl args...] -- POST to the actions console with the token and its own Origin.
act() { api POST "$CONSOLE$1" -H "X-Console-Token: $TOKEN" -H "Origin: $CONSOLE" "${@:2}"; }

# start_console LOG ENV=VALUE... -- creditsctl console [args after --]; sets CONSOLE_PID.
start_console() {
    local log=$1
    shift
    local envs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    env "${envs[@]}" "$CREDITSCTL" console "$@" 2>"$log" &
    CONSOLE_PID=$!
    CONSOLE_PIDS+=("$CONSOLE_PID")
}
stop_consoles() {
    local pid status
    for pid in "${CONSOLE_PIDS[@]}"; do
        status=0
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" || status=$?
        expect_eq "the console $pid exits 0 on SIGTERM" 0 "$status"
    done
    CONSOLE_PIDS=()
}
# On exit: the browser commands still running (each stops its Chromium on
# SIGTERM), the consoles, then lib.sh's servers.
stop_started() {
    local pid
    for pid in "${BROWSER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${CONSOLE_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    cleanup
}
trap stop_started EXIT

http_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1")" = 200 ]; }
result_status() { "$CREDITSCTL" result "$1" 2>/dev/null | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p'; }

# ------------------------------------------------------------------------
# A ledger, a worker, a console reader role
# ------------------------------------------------------------------------

migrate
"$CREDITSCTL" roles >/dev/null
psql "$CREDITS_DATABASE_URL" -Xq -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE console_reader LOGIN IN ROLE credits_reader"
migrate
"$CREDITSCTL" plan set pro --monthly 1000 >/dev/null
"$CREDITSCTL" pack set starter --credits 500 >/dev/null
READER_URL="host=127.0.0.1 port=$CREDITS_TEST_PG_PORT user=console_reader dbname=postgres"

WORKER_PORT=$(free_port)
WORKER_URL="http://127.0.0.1:$WORKER_PORT"
start_worker CREDITS_HTTP_ADDR="127.0.0.1:$WORKER_PORT" CREDITS_CLAIM_IDLE_MS=86400000
wait_until "$WAIT_TRIES" http_ok "$WORKER_URL/readyz" || fail "the worker became ready"

U=u-console
XSS='<script>alert(1)</script>'
"$CREDITSCTL" purchase --user $U --pack starter --payment-ref pay-console --id c-buy --wait >/dev/null
"$CREDITSCTL" allocate --user $U --plan pro --period 2026-11 --id c-alloc --wait >/dev/null
"$CREDITSCTL" consume --user $U --amount 40 --tool "$XSS" --ref 'vid "1" & <b>' --id c-xss \
    --wait >/dev/null
"$CREDITSCTL" hold --user $U --amount 100 --ttl 900 --tool veo --ref vid_42 --id c-hold \
    --wait >/dev/null
"$CREDITSCTL" consume --user $U --amount 40 --tool "$XSS" --ref 'vid "1" & <b>' --id c-xss \
    --wait >/dev/null # a replay
printf '\x91\xc1' | redis -x XADD credits:jobs:consume '*' job >/dev/null
wait_until "$WAIT_TRIES" value_is 1 redis XLEN credits:dead || fail "the garbage was dead-lettered"

# Dead letters holding valid jobs, as a crash loop or a refusing database
# leaves them: made under another prefix, which no worker reads.
DL_GARBAGE=$(redis XRANGE credits:dead - + COUNT 1 | head -1)
dead_letter() { # ID REASON -- prints the dead letter's entry ID
    CREDITS_PREFIX=scratch "$CREDITSCTL" consume --user $U --amount 7 --tool render --id "$1" \
        >/dev/null
    copy_job scratch:jobs:consume credits:dead stream credits:jobs:consume entry 1-0 \
        reason "$2"
}
DL_RETRY=$(dead_letter dl-retry "delivered 11 times without a decision (CREDITS_MAX_DELIVERIES=10)")
DL_MANY_1=$(dead_letter dl-many-1 "database error 23514: new row violates check constraint")
dead_letter dl-many-2 "database error 23514: new row violates check constraint" >/dev/null

# Three entries a consumer that died holds: pending, never taken over
# (CREDITS_CLAIM_IDLE_MS is a day).
stop_worker "$WORKER_PID"
for i in 1 2 3; do "$CREDITSCTL" consume --user ghost-user --amount 1 --id "ghost-$i" >/dev/null; done
redis XREADGROUP GROUP credits-worker ghost COUNT 10 STREAMS credits:jobs:consume '>' >/dev/null
start_worker CREDITS_HTTP_ADDR="127.0.0.1:$WORKER_PORT" CREDITS_CLAIM_IDLE_MS=86400000
wait_until "$WAIT_TRIES" http_ok "$WORKER_URL/readyz" || fail "the worker became ready again"
XPENDING_COUNT=$(redis XPENDING credits:jobs:consume credits-worker | head -1)
expect_eq "XPENDING counts the dead consumer's entries" 3 "$XPENDING_COUNT"

# serve_console LOG ENV=VALUE... -- ARGS... -- start_console on a free port
# until /api/config answers; sets SERVED_PORT. A port another suite took
# between the check and the bind makes the console exit 1 ("cannot listen"):
# then another port is tried.
serve_console() {
    local log=$1 try
    for try in 1 2 3 4 5; do
        SERVED_PORT=$(free_port)
        start_console "$@" --listen "127.0.0.1:$SERVED_PORT"
        wait_until "$WAIT_TRIES" console_up "$SERVED_PORT" "$CONSOLE_PID" || true
        http_ok "http://127.0.0.1:$SERVED_PORT/api/config" && return 0
        kill -0 "$CONSOLE_PID" 2>/dev/null && return 1
        wait "$CONSOLE_PID" || true
        unset 'CONSOLE_PIDS[-1]'
        grep -q "cannot listen on" "$log" || return 1
        echo "# the console's port $SERVED_PORT was taken (try $try): another one"
    done
    return 1
}
# console_up PORT PID -- it answers, or it has exited (no use waiting).
console_up() { http_ok "http://127.0.0.1:$1/api/config" || ! kill -0 "$2" 2>/dev/null; }

# Two consoles: actions on (as the database superuser, for catalog edits),
# and read-only as a member of credits_reader.
serve_console "$TEST_DIR/console.log" CREDITS_CONSOLE_TOKEN="$TOKEN" -- \
    --worker "$WORKER_URL" --allow-actions || fail "the console answers"
CONSOLE_PORT=$SERVED_PORT
CONSOLE="http://127.0.0.1:$CONSOLE_PORT"
serve_console "$TEST_DIR/reader.log" CREDITS_DATABASE_URL="$READER_URL" -- ||
    fail "the read-only console answers"
READER_PORT=$SERVED_PORT
READER="http://127.0.0.1:$READER_PORT"

# ------------------------------------------------------------------------
# Start-up: addresses and the token
# ------------------------------------------------------------------------

# ctl_console ARGS... -- creditsctl console that must stop by itself (a
# refusal at start-up): at most 10 s.
ctl_console() {
    STATUS=0
    OUT=$(timeout 10 "$CREDITSCTL" console "$@" 2>"$TEST_DIR/ctl.err") || STATUS=$?
    ERR=$(cat "$TEST_DIR/ctl.err")
}

check_start_up() {
    ctl_console --listen 10.0.0.1:9465
    expect_eq "a non-loopback address without --allow-remote: usage error" 2 "$STATUS"
    expect_match "it says why" 'not a loopback address: .*--allow-remote' "$ERR"
    ctl_console --listen localhost:9465
    expect_eq "a name to listen on: usage error" 2 "$STATUS"
    ctl_console --allow-actions --listen "127.0.0.1:$(free_port)"
    expect_eq "--allow-actions without CREDITS_CONSOLE_TOKEN: exit 2" 2 "$STATUS"
    expect_match "it names the token" 'needs CREDITS_CONSOLE_TOKEN' "$ERR"
    STATUS=0
    CREDITS_CONSOLE_TOKEN=short timeout 10 "$CREDITSCTL" console --allow-actions \
        --listen "127.0.0.1:$(free_port)" 2>"$TEST_DIR/ctl.err" || STATUS=$?
    expect_eq "a token too short: exit 2" 2 "$STATUS"
    ctl_console --worker example.com:9464
    expect_eq "a --worker that is no http://ADDRESS:PORT: usage error" 2 "$STATUS"
    ctl_console --listen "127.0.0.1:$CONSOLE_PORT"
    expect_eq "an address in use: exit 1" 1 "$STATUS"
    expect_match "it says so" "cannot listen on 127.0.0.1:$CONSOLE_PORT" "$ERR"
}

# ------------------------------------------------------------------------
# The overview
# ------------------------------------------------------------------------

check_overview() {
    browser overview "$CONSOLE"
    expect_eq "the overview loads in the browser" 0 "$STATUS"
    clean_page "the overview"
    expect_eq "the overview shows XPENDING's pending count" "$XPENDING_COUNT" \
        "$(json_get "$OUT" '{shown,streams,consume,pending}')"
    expect_eq "and none pending on the other streams" "0 0" \
        "$(json_get "$OUT" '{shown,streams,purchase,pending}') $(json_get "$OUT" '{shown,streams,allocate,pending}')"
    expect_match "the dead consumer and its entries" 'ghost: 3 pending, idle' \
        "$(json_get "$OUT" '{shown,streams,consume,consumers}')"
    expect_eq "its oldest pending entry is XPENDING's" \
        "$(redis XPENDING credits:jobs:consume credits-worker | sed -n 2p)" \
        "$(json_get "$OUT" '{shown,streams,consume,oldest}')"
    expect_eq "dead letters by reason" "1 2 1" \
        "$(json_get "$OUT" '{shown,reasons,invalid_job}') $(json_get "$OUT" '{shown,reasons,database error 23514: new row violates check constraint}') $(json_get "$OUT" '{shown,reasons,delivered 11 times without a decision (CREDITS_MAX_DELIVERIES=10)}')"
    expect_eq "the worker is ready, from its /readyz" "$WORKER_URL ready" \
        "$(json_get "$OUT" '{shown,workers,0,url}') $(json_get "$OUT" '{shown,workers,0,ready}')"
    expect_match "the newest results, with the replay" $'c-xss\tconsume\tu-console\tapplied\t[0-9]+\tyes' \
        "$(json_get "$OUT" '{shown,text}')"
    expect_match "P:events: not there yet, and said so" 'credits:events does not exist yet' \
        "$(json_get "$OUT" '{shown,text}')"
    expect_eq "/api/overview: the same count" "$XPENDING_COUNT" \
        "$(curl -s "$CONSOLE/api/overview" | json_get "$(cat)" '{streams,0,pending}')"
    api GET "$CONSOLE/api/workers" >/dev/null
    expect_match "the worker's metrics, from its /metrics" '"name":"credits_ready","labels":"","value":"1"' \
        "$(body)"
}

# ------------------------------------------------------------------------
# Dead letters: filters and pages
# ------------------------------------------------------------------------

# dead_jobs QUERY -- the job IDs (or "-" for none) of /api/dead?QUERY, then its "next".
dead_jobs() {
    local doc ids="" i
    doc=$(curl -s --max-time 20 "$CONSOLE/api/dead?$1")
    for i in $(seq 0 $(($(json_get "$doc" '{letters}' | grep -o '"stream":' | wc -l) - 1))); do
        ids+="$(json_get "$doc" "{letters,$i,job,id}" | sed 's/^$/-/') "
    done
    echo "${ids}next=$(json_get "$doc" '{next}')"
}

check_dead_filters() {
    local first
    expect_eq "every dead letter, newest first" "dl-many-2 dl-many-1 dl-retry - next=" "$(dead_jobs '')"
    expect_eq "by reason (its start)" "dl-many-2 dl-many-1 next=" "$(dead_jobs 'reason=database+error')"
    expect_eq "by stream" "next=" "$(dead_jobs 'stream=purchase')"
    expect_eq "from a time (the entry IDs' ms)" "dl-many-2 dl-many-1 next=" "$(dead_jobs "from=${DL_MANY_1%-*}")"
    expect_eq "up to a time" "- next=" "$(dead_jobs "to=${DL_GARBAGE%-*}")"
    first=$(dead_jobs 'limit=2')
    expect_match "a page of two, then a cursor" "^dl-many-2 dl-many-1 next=[0-9]+-[0-9]+$" "$first"
    expect_eq "the next page" "dl-retry - next=" "$(dead_jobs "limit=2&before=${first#*next=}")"
}

# ------------------------------------------------------------------------
# A user
# ------------------------------------------------------------------------

check_user() {
    local balance
    balance=$("$CREDITSCTL" balance $U --json)
    browser user "$CONSOLE" $U
    expect_eq "the user's page loads" 0 "$STATUS"
    clean_page "the user's page"
    expect_eq "the page shows the balance of creditsctl balance --json" \
        "$(json_get "$balance" '{total}') $(json_get "$balance" '{pack}') $(json_get "$balance" '{monthly}') $(json_get "$balance" '{grant}') $(json_get "$balance" '{held}')" \
        "$(json_get "$OUT" '{shown,figures,total}') $(json_get "$OUT" '{shown,figures,pack}') $(json_get "$OUT" '{shown,figures,monthly}') $(json_get "$OUT" '{shown,figures,grant}') $(json_get "$OUT" '{shown,figures,held}')"
    expect_eq "(a balance with credits in every place that has them)" "1360 360 1000 100" \
        "$(json_get "$balance" '{total}') $(json_get "$balance" '{pack}') $(json_get "$balance" '{monthly}') $(json_get "$balance" '{held}')"
    expect_eq "one history line per job, newest first" "c-hold c-xss c-alloc c-buy" \
        "$(json_get "$OUT" '{shown,history,0,job}') $(json_get "$OUT" '{shown,history,1,job}') $(json_get "$OUT" '{shown,history,2,job}') $(json_get "$OUT" '{shown,history,3,job}')"
    expect_eq "a tool of <script>alert(1)</script> is shown as text" "$XSS" \
        "$(json_get "$OUT" '{shown,history,1,tool}')"
    expect_eq "and made no element: the page's two scripts only" 2 "$(json_get "$OUT" '{shown,scripts}')"
    expect_match "the open hold and its expiry" 'c-hold[[:space:]]+100[[:space:]]+[0-9-]+T[0-9:]+Z[[:space:]]+[0-9-]+T[0-9:]+Z[[:space:]]+veo' \
        "$(json_get "$OUT" '{shown,text}')"
    expect_match "the lots with their expiry" 'pack[[:space:]]+360[[:space:]]+500[[:space:]]+20[0-9-]+T' \
        "$(json_get "$OUT" '{shown,text}')"
    local detail
    detail=$(json_get "$OUT" '{shown,detail}')
    expect_match "a line's detail: the job's decision and result" 'Stored decision[^@]*hold[^@]*applied' "$detail"
    expect_match "its entries and the lots it touched" 'Entries it wrote[^@]*hold[[:space:]]+-100[^@]*Lots it touched' \
        "$detail"
    expect_match "and where its result is in Redis" 'credits:result:c-hold' "$detail"
    api GET "$CONSOLE/api/history?user=$U&limit=2" >/dev/null
    local next
    next=$(json_get "$(body)" '{next}')
    expect_eq "history pages: two lines, then a cursor" "2 c-xss" \
        "$(json_get "$(body)" '{lines}' | grep -o '"job"' | wc -l) $(json_get "$(body)" '{lines,1,job}')"
    api GET "$CONSOLE/api/history?user=$U&limit=2&before=$next" >/dev/null
    expect_eq "the next page starts after the cursor and ends" "c-alloc c-buy " \
        "$(json_get "$(body)" '{lines,0,job}') $(json_get "$(body)" '{lines,1,job}') $(json_get "$(body)" '{next}')"
    api GET "$CONSOLE/api/user?user=$U" >/dev/null
    expect_eq "/api/user's balance is creditsctl balance --json's" \
        "$(json_get "$balance" '{}')" "$(json_get "$(body)" '{balance}')"
}

# ------------------------------------------------------------------------
# Actions refused
# ------------------------------------------------------------------------

check_refusals() {
    local before
    before=$(redis XLEN credits:dead)
    expect_eq "retry without the token: 403" 403 \
        "$(api POST "$CONSOLE/api/dead/retry?id=$DL_RETRY" -H "Origin: $CONSOLE")"
    expect_match "it says the token is needed" "needs the console's token" "$(body)"
    expect_eq "retry with a wrong token: 403" 403 \
        "$(api POST "$CONSOLE/api/dead/retry?id=$DL_RETRY" -H "Origin: $CONSOLE" -H "X-Console-Token: $WRONG")"
    expect_match "it says so" 'the token is wrong' "$(body)"
    expect_eq "retry with the token from another Origin: 403" 403 \
        "$(api POST "$CONSOLE/api/dead/retry?id=$DL_RETRY" -H "Origin: http://evil.example" -H "X-Console-Token: $TOKEN")"
    expect_match "it names the Origin" 'Origin' "$(body)"
    expect_eq "retry with the token and no Origin: 403" 403 \
        "$(api POST "$CONSOLE/api/dead/retry?id=$DL_RETRY" -H "X-Console-Token: $TOKEN")"
    expect_eq "retry that the browser says came from another site: 403" 403 \
        "$(act "/api/dead/retry?id=$DL_RETRY" -H "Sec-Fetch-Site: cross-site")"
    expect_eq "a request naming another Host (DNS rebinding): 403" 403 \
        "$(api GET "$CONSOLE/api/user?user=$U" -H "Host: evil.example:$CONSOLE_PORT")"
    expect_eq "an action by GET: 405" 405 "$(api GET "$CONSOLE/api/dead/retry?id=$DL_RETRY")"
    expect_eq "a read by POST: 405" 405 "$(act "/api/dead")"
    expect_eq "the read-only console refuses actions, token or not: 403" 403 \
        "$(api POST "$READER/api/dead/drop?id=$DL_RETRY" -H "Origin: $READER" -H "X-Console-Token: $TOKEN")"
    expect_match "it says actions are off" 'actions are off' "$(body)"
    expect_eq "nothing refused changed anything" "$before" "$(redis XLEN credits:dead)"
    expect_eq "the letter is still there" "$DL_RETRY" "$(redis XRANGE credits:dead "$DL_RETRY" "$DL_RETRY" | head -1)"
    expect_eq "one audit line per refused action, naming why, the peer and no token" 1 \
        "$(grep -c 'event=console_action peer=127.0.0.1:[0-9]* token=none action=dead_retry .*outcome=refused status=403 why="no_token"' "$TEST_DIR/console.log")"
    expect_eq "a wrong token is logged by its fingerprint only" 1 \
        "$(grep -c "token=$WRONG_PRINT action=dead_retry .*why=\"wrong_token\"" "$TEST_DIR/console.log")"
    if grep -q -e "$TOKEN" -e "$WRONG" "$TEST_DIR/console.log"; then
        fail "a token was written to the log"
    else
        pass "no token is ever written to the log"
    fi
    expect_eq "the read-only console logs its refusal" 1 \
        "$(grep -c 'action=dead_drop .*why="actions_off"' "$TEST_DIR/reader.log")"

    browser retry "$CONSOLE" "$DL_RETRY"
    expect_eq "the page's retry without a token entered runs" 0 "$STATUS"
    expect_eq "the page says the token is needed" "error" "$(json_get "$OUT" '{shown,kind}')"
    expect_match "in words" "refused: this needs the console's token" "$(json_get "$OUT" '{shown,text}')"
    expect_eq "and the letter stays listed" true "$(json_get "$OUT" '{shown,still_listed}')"
}

# ------------------------------------------------------------------------
# Actions done
# ------------------------------------------------------------------------

check_actions() {
    browser retry "$CONSOLE" "$DL_RETRY" "$TOKEN"
    expect_eq "retry from the page with the token" 0 "$STATUS"
    clean_page "retrying from the page"
    expect_eq "the page says it was retried" ok "$(json_get "$OUT" '{shown,kind}')"
    expect_match "naming the job and where it went" "retried dead letter $DL_RETRY: job dl-retry re-enqueued on credits:jobs:consume" \
        "$(json_get "$OUT" '{shown,text}')"
    expect_eq "the letter is gone from the page" false "$(json_get "$OUT" '{shown,still_listed}')"
    wait_until "$WAIT_TRIES" value_is applied result_status dl-retry || true
    expect_eq "the worker decided the retried job" applied "$(result_status dl-retry)"
    expect_eq "one audit line: who (peer, token fingerprint), what, the outcome" 1 \
        "$(grep -c "event=console_action peer=127.0.0.1:[0-9]* token=$TOKEN_PRINT action=dead_retry what=\"dead letter $DL_RETRY: job dl-retry re-enqueued as [0-9-]*\" outcome=done status=200" "$TEST_DIR/console.log")"

    browser job "$CONSOLE" dl-retry
    expect_eq "the job's page loads" 0 "$STATUS"
    clean_page "the job's page"
    expect_eq "it shows the stored decision" "dl-retry consume applied" \
        "$(json_get "$OUT" '{shown,kv,job}') $(json_get "$OUT" '{shown,kv,type}') $(json_get "$OUT" '{shown,kv,status}')"
    expect_match "its entry of 7 credits" 'consume[[:space:]]+-7' "$(json_get "$OUT" '{shown,text}')"
    expect_match "and where its result is in Redis" 'credits:result:dl-retry' "$(json_get "$OUT" '{shown,text}')"
    api GET "$CONSOLE/api/job?id=c-xss" >/dev/null
    expect_eq "a replayed job: its publications and replays among the newest results" "2 1" \
        "$(json_get "$(body)" '{redis,results_seen}') $(json_get "$(body)" '{redis,replays_seen}')"
    api GET "$CONSOLE/api/job?id=never-seen" >/dev/null
    expect_eq "a job never decided: no stored decision, no result" "false  -2" \
        "$(json_get "$(body)" '{stored}') $(json_get "$(body)" '{redis,result}') $(json_get "$(body)" '{redis,result_ttl_ms}')"

    browser retry-reason "$CONSOLE" "database error 23514" "$TOKEN"
    expect_eq "retry all of a reason from the page" 0 "$STATUS"
    expect_match "the page says how many" 'retried 2 dead letters whose reason starts with "database error 23514"; 0 refused' \
        "$(json_get "$OUT" '{shown,text}')"
    expect_eq "none of that reason is left on the page" 0 "$(json_get "$OUT" '{shown,listed}')"
    wait_until "$WAIT_TRIES" value_is applied result_status dl-many-2 || true
    expect_eq "the worker decided both" "applied applied" "$(result_status dl-many-1) $(result_status dl-many-2)"

    expect_eq "drop with the token: 200" 200 "$(act "/api/dead/drop?id=$DL_GARBAGE")"
    expect_eq "it is gone" "" "$(redis XRANGE credits:dead "$DL_GARBAGE" "$DL_GARBAGE")"
    expect_eq "drop of a letter that is gone: 404" 404 "$(act "/api/dead/drop?id=$DL_GARBAGE")"
    expect_eq "retry of a letter that is gone: 404" 404 "$(act "/api/dead/retry?id=$DL_GARBAGE")"

    printf '\x91\xc1' | redis -x XADD credits:jobs:consume '*' job >/dev/null
    wait_until "$WAIT_TRIES" value_is 1 redis XLEN credits:dead || true
    local garbage
    garbage=$(redis XRANGE credits:dead - + COUNT 1 | head -1)
    expect_eq "retry of bytes the worker would reject again: 409" 409 \
        "$(act "/api/dead/retry?id=$garbage")"
    expect_match "saying why" 'would be rejected again \(invalid_job' "$(body)"

    expect_eq "a catalog edit with the token: 200" 200 "$(act "/api/plan?plan=team&monthly=300")"
    expect_match "the plan is saved, without a threshold" '^team +300 +600 +none$' \
        "$("$CREDITSCTL" plan list | grep '^team')"
    expect_eq "a plan with a low-balance threshold: 200" 200 \
        "$(act "/api/plan?plan=team&monthly=300&cap=900&low_balance=50")"
    expect_match "saved whole" '^team +300 +900 +50$' "$("$CREDITSCTL" plan list | grep '^team')"
    expect_eq "a catalog edit the database refuses: 409" 409 "$(act "/api/pack?pack=big&credits=0")"
    expect_match "with the database's reason" "a pack's credits must be from 1" "$(body)"
    expect_eq "the catalog page's read" "team" \
        "$(curl -s "$CONSOLE/api/catalog" | json_get "$(cat)" '{plans,1,plan}')"
    expect_eq "every action has its audit line" 9 "$(grep -c 'event=console_action .*outcome=\(done\|failed\)' "$TEST_DIR/console.log")"
}

# ------------------------------------------------------------------------
# The read-only console as a member of credits_reader
# ------------------------------------------------------------------------

check_reader() {
    expect_eq "as credits_reader: the user's balance" 200 "$(api GET "$READER/api/user?user=$U")"
    expect_eq "the same as creditsctl's" "$(json_get "$("$CREDITSCTL" balance $U --json)" '{total}')" \
        "$(json_get "$(body)" '{balance,total}')"
    expect_eq "as credits_reader: a job" 200 "$(api GET "$READER/api/job?id=c-xss")"
    expect_eq "as credits_reader: the catalog" 200 "$(api GET "$READER/api/catalog")"
    expect_eq "the overview" 200 "$(api GET "$READER/api/overview")"
    expect_eq "the page says read-only" false "$(curl -s "$READER/api/config" | json_get "$(cat)" '{actions}')"
}

# ------------------------------------------------------------------------
# Events: the overview refreshing onto them, a user's, a job's
# ------------------------------------------------------------------------

# make_events -- a threshold of 1000 for the user, crossed down by a
# consume (balance_low) and up by a purchase (balance_recovered).
make_events() {
    "$CREDITSCTL" account set $U --low-balance 1000 >/dev/null
    "$CREDITSCTL" consume --user $U --amount 400 --tool veo --ref vid_43 --id c-low --wait >/dev/null
    "$CREDITSCTL" purchase --user $U --pack starter --payment-ref pay-console-2 --id c-up \
        --wait >/dev/null
}

check_events() {
    local ready="$TEST_DIR/overview-drawn" pid status=0
    TMPDIR="$TEST_DIR" node "$BROWSER_JS" overview-until-event "$CONSOLE" "$ready" >"$TEST_DIR/refresh.out" \
        2>"$TEST_DIR/refresh.err" &
    pid=$!
    BROWSER_PIDS+=("$pid")
    wait_until 600 test -e "$ready" || fail "the overview was drawn"
    make_events
    wait "$pid" || status=$?
    BROWSER_PIDS=()
    OUT=$(cat "$TEST_DIR/refresh.out")
    expect_eq "the overview, left open, shows the new event by itself" 0 "$status"
    [ "$status" = 0 ] || echo "# $(cat "$TEST_DIR/refresh.err")"
    clean_page "the refreshing overview"
    expect_eq "none was shown before" 0 "$(json_get "$OUT" '{shown,before}')"
    local total
    total=$(json_get "$("$CREDITSCTL" balance $U --json)" '{total}')
    expect_match "then the events of P:events, decoded, newest first" \
        "^balance_recovered u-console c-up threshold=1000 $total 100 balance_low u-console c-low threshold=1000 $((total - 500)) 100" \
        "$(json_get "$OUT" '{shown,events}')"
    wait_until "$WAIT_TRIES" value_is 2 redis XLEN credits:events || true
    api GET "$CONSOLE/api/overview" >/dev/null
    expect_eq "/api/overview: the stream's events as creditsctl events --json gives them" \
        "$(json_get "$("$CREDITSCTL" events --json --limit 1)" '{events,0}')" \
        "$(json_get "$(body)" '{events,newest,0}')"

    browser user "$CONSOLE" $U
    expect_eq "the user's page with events" 0 "$STATUS"
    clean_page "the user's events"
    expect_eq "the user's events from credits.events, newest first" \
        "balance_recovered threshold=1000 c-up balance_low threshold=1000 c-low" \
        "$(json_get "$OUT" '{shown,events}')"
    api GET "$CONSOLE/api/events?user=$U&limit=1" >/dev/null
    local next
    next=$(json_get "$(body)" '{next}')
    expect_eq "events page: one, then a cursor" "balance_recovered $(psql_value "SELECT max(event_id) FROM credits.events")" \
        "$(json_get "$(body)" '{events,0,type}') $next"
    api GET "$CONSOLE/api/events?user=$U&limit=1&before=$next" >/dev/null
    expect_eq "the next page: the older one, and no more" "balance_low 1000 $((total - 500)) " \
        "$(json_get "$(body)" '{events,0,type}') $(json_get "$(body)" '{events,0,threshold}') $(json_get "$(body)" '{events,0,total}') $(json_get "$(body)" '{next}')"
    api GET "$CONSOLE/api/events?user=ghost-user" >/dev/null
    expect_eq "and not another user's" "[]" "$(json_get "$(body)" '{events}')"
    api GET "$CONSOLE/api/job?id=c-low" >/dev/null
    expect_eq "a job's page: the events it caused" "1 balance_low" \
        "$(json_get "$(body)" '{events}' | grep -o '"event_id"' | wc -l) $(json_get "$(body)" '{events,0,type}')"
    expect_eq "as credits_reader too" 200 "$(api GET "$READER/api/events?user=$U")"
}

# ------------------------------------------------------------------------
# Any request gets an answer
# ------------------------------------------------------------------------

check_robustness() {
    expect_eq "a bad parameter: 400" 400 "$(api GET "$CONSOLE/api/history?user=$U&limit=0")"
    expect_match "with a JSON error" '^\{"error":"the parameter limit' "$(body)"
    expect_eq "a malformed query: 400" 400 "$(api GET "$CONSOLE/api/user?user=%zz")"
    expect_eq "an unknown API path: 404" 404 "$(api GET "$CONSOLE/api/nope")"
    expect_eq "an unknown page: 404" 404 "$(api GET "$CONSOLE/nope.js")"
    expect_eq "the template itself is not served: 404" 404 "$(api GET "$CONSOLE/index.html")"
    expect_eq "a query over 2 KiB: 414" 414 "$(api GET "$CONSOLE/api/user?user=$(head -c 3000 /dev/zero | tr '\0' a)")"
    expect_eq "a body over 4 KiB: 413" 413 "$(head -c 5000 /dev/zero | act /api/dead/drop?id=1-0 --data-binary @-)"
    expect_eq "a chunked body: 501" 501 "$(echo x | act /api/dead/drop?id=1-0 -H 'Transfer-Encoding: chunked' --data-binary @-)"
    expect_eq "HEAD of the page: 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' -I "$CONSOLE/")"
    expect_match "every answer forbids other scripts and framing" "Content-Security-Policy: default-src 'none'; script-src 'self'" \
        "$(curl -s -D - -o /dev/null "$CONSOLE/api/config")"
    local codes="" path q
    for path in /api/dead /api/dead/one /api/user /api/history /api/events /api/job /api/catalog \
        /api/overview; do
        for q in "limit=99999999999999999999" "before=-1" "id=$(head -c 200 /dev/zero | tr '\0' 9)" \
            "user=%F0%9F%92%A9" "stream=%00" "reason=%E2%80%A8%3C%2Fscript%3E" "from=1&to=0" \
            "id=1-0&user=x&limit=1&before=9&from=1&to=2&reason=r&stream=consume&per_lot=1"; do
            codes+=" $(api GET "$CONSOLE$path?$q")"
        done
    done
    expect_eq "odd parameters on every read: answered 200, 400 or 404, never anything else" "" \
        "$(tr ' ' '\n' <<<"$codes" | grep -v -E '^(|200|400|404)$' | sort -u | tr '\n' ' ')"
    local i
    for i in $(seq 1 30); do
        head -c $((RANDOM % 3000 + 1)) /dev/urandom >"$TEST_DIR/garbage"
        (
            exec 3<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT"
            cat "$TEST_DIR/garbage" >&3
            timeout 2 cat <&3 >/dev/null
        ) 2>/dev/null || true
    done
    printf 'GET /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n\r\n' >"$TEST_DIR/twice"
    expect_match "a Host given twice: 403" '^HTTP/1.1 403' \
        "$( (exec 3<>"/dev/tcp/127.0.0.1/$CONSOLE_PORT"; cat "$TEST_DIR/twice" >&3; timeout 2 cat <&3) 2>/dev/null | head -1)"
    expect_eq "after 30 connections of garbage the console still answers" 200 "$(api GET "$CONSOLE/api/config")"
    if kill -0 "${CONSOLE_PIDS[0]}" 2>/dev/null; then pass "the console is still running"; else fail "the console died"; fi
}

# ------------------------------------------------------------------------
# Screenshots, for the README
# ------------------------------------------------------------------------

check_screenshots() {
    # A dead letter holding a job, for the picture of the list.
    dead_letter dl-shot "delivered 11 times without a decision (CREDITS_MAX_DELIVERIES=10)" \
        >/dev/null
    browser screenshots "$CONSOLE" "$SHOTS" $U c-xss
    expect_eq "screenshots of every page" 0 "$STATUS"
    clean_page "every page"
    local file
    for file in overview dead-letters user job catalog; do
        if [ "$(head -c 8 "$SHOTS/$file.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
            pass "$file.png is a PNG ($(wc -c <"$SHOTS/$file.png") bytes)"
        else
            fail "$file.png is not a PNG"
        fi
    done
}

check_start_up
check_overview
check_dead_filters
check_user
check_refusals
check_actions
check_reader
check_events
check_robustness
check_screenshots
stop_consoles
stop_worker "$WORKER_PID"
expect_eq "the worker exits 0" 0 "$WORKER_STATUS"
finish
