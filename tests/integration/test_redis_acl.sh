#!/usr/bin/env bash
# test_redis_acl.sh -- the per-producer Redis users of deploy/redis/users.acl
# on a Redis started with it (--aclfile): the worker decides jobs as
# credits-worker, each producer can do what it needs and gets NOPERM for the
# rest, creditsctl works as the right user, and a refused password is
# reported as WRONGPASS, the first error, not as a later NOAUTH.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"

RENDER="$SOURCE_DIR/deploy/redis/render-users-acl.sh"
ACL_DIR="$TEST_DIR/redis-acl"
PASSWORDS="$ACL_DIR/passwords"
mkdir -p "$PASSWORDS"
for user in worker webapp webhook scheduler operator console; do
    echo "pw-$user-$RANDOM$RANDOM" >"$PASSWORDS/$user"
done
ADMIN_PASSWORD="admin-$RANDOM$RANDOM"

# render_for PREFIX FILE -- the rendered file, plus an administrator of the
# test's own (ACL DRYRUN needs one; a deployment has its own).
render_for() {
    "$RENDER" --prefix "$1" "$PASSWORDS" >"$2"
    echo "user test-admin on >$ADMIN_PASSWORD ~* &* +@all" >>"$2"
}

# start_acl_redis FILE -- a Redis on a free port with that ACL file; sets ACL_PORT.
start_acl_redis() {
    ACL_PORT=$(free_port)
    start_server "$ACL_DIR/redis-$ACL_PORT.log" redis-server --port "$ACL_PORT" \
        --bind 127.0.0.1 --aclfile "$1" --save '' --appendonly no --dir "$ACL_DIR" \
        --daemonize no
    wait_until 100 value_is PONG admin PING || fail "the Redis with $1 did not start"
}

admin() {
    redis-cli -p "$ACL_PORT" --user test-admin --pass "$ADMIN_PASSWORD" --no-auth-warning "$@"
}
# as USER COMMAND... -- redis-cli as credits-USER.
as() {
    local user=$1
    shift
    redis-cli -p "$ACL_PORT" --user "credits-$user" --pass "$(cat "$PASSWORDS/$user")" \
        --no-auth-warning "$@" 2>&1
}
url_for() { echo "redis://credits-$1:$(cat "$PASSWORDS/$1")@127.0.0.1:$ACL_PORT"; }

if ! render_for credits "$ACL_DIR/users.acl"; then
    fail "deploy/redis/users.acl renders"
    finish
    exit 1
fi
start_acl_redis "$ACL_DIR/users.acl"
MAIN_PORT=$ACL_PORT

expect_match "the default user is off: no command without AUTH" NOAUTH \
    "$(redis-cli -p "$ACL_PORT" PING 2>&1)"

migrate
"$CREDITSCTL" plan set pro --monthly 100 >/dev/null
"$CREDITSCTL" pack set starter --credits 50 >/dev/null

# ------------------------------------------------------------------------
# The worker as credits-worker; each producer through creditsctl as its own
# user.
# ------------------------------------------------------------------------

start_worker CREDITS_REDIS_URL="$(url_for worker)"
WORKER_LOG="$TEST_DIR/worker-0.log"

result_of() { CREDITS_REDIS_URL="$(url_for "$1")" "$CREDITSCTL" result "$2" 2>&1; }
decided() { result_of "$1" "$2" | grep -q '"status"'; }

CREDITS_REDIS_URL="$(url_for webapp)" ctl consume --user a1 --amount 5 --id acl-c0 --wait --timeout 10
expect_match "webapp: consume --wait (XADD, BLPOP) gets the worker's answer" \
    '"error":"insufficient_credits"' "$OUT"
CREDITS_REDIS_URL="$(url_for scheduler)" ctl allocate --user a1 --plan pro --period 2026-11 --id acl-alloc
expect_eq "scheduler: allocate is enqueued" 0 "$STATUS"
wait_until 100 decided scheduler acl-alloc || true
expect_match "scheduler: its result, read with GET" '"granted":100' "$(result_of scheduler acl-alloc)"
CREDITS_REDIS_URL="$(url_for webhook)" ctl purchase --user a1 --pack starter --payment-ref acl-p1 --id acl-buy
expect_eq "webhook: purchase is enqueued" 0 "$STATUS"
wait_until 100 decided webhook acl-buy || true
expect_match "webhook: its result, read with GET" '"granted":50' "$(result_of webhook acl-buy)"
CREDITS_REDIS_URL="$(url_for webapp)" ctl consume --user a1 --amount 120 --id acl-c1 --wait --timeout 10
expect_match "webapp: a consume is applied" '"charged":120' "$OUT"
CREDITS_REDIS_URL="$(url_for scheduler)" ctl schedule --period 2026-12
expect_eq "scheduler: creditsctl schedule enqueues the month's allocations" 0 "$STATUS"
wait_until 100 decided scheduler alloc:a1:2026-12 || true
expect_match "and the worker applies them" '"status":"applied"' \
    "$(result_of scheduler alloc:a1:2026-12)"

# A message that is not a job: dead-lettered by the worker, handled by the
# operator's user.
expect_match "webapp: a raw XADD to the consume stream" '^[0-9]+-[0-9]+$' \
    "$(as webapp XADD credits:jobs:consume '*' job not-msgpack)"
wait_until 100 value_is 1 admin XLEN credits:dead || true
CREDITS_REDIS_URL="$(url_for operator)" ctl dead list --json
expect_eq "operator: dead list works" 0 "$STATUS"
expect_eq "operator: it shows the dead letter" invalid_job "$(json_get "$OUT" '{dead,0,reason}')"
CREDITS_REDIS_URL="$(url_for operator)" ctl dead drop "$(json_get "$OUT" '{dead,0,id}')"
expect_eq "operator: dead drop works" 0 "$STATUS"
expect_eq "the dead letter is gone" 0 "$(admin XLEN credits:dead)"

# The console as credits-console: every read of its pages, and the
# actions on a dead letter holding a job (made under another prefix, which
# no worker reads, and copied inside Redis).
admin_url="redis://test-admin:$ADMIN_PASSWORD@127.0.0.1:$ACL_PORT"
CREDITS_REDIS_URL=$admin_url CREDITS_PREFIX=scratch "$CREDITSCTL" consume --user a1 --amount 1 \
    --id acl-dl >/dev/null
dl=$(admin EVAL "$COPY_JOB_LUA" 2 scratch:jobs:consume credits:dead stream credits:jobs:consume \
    entry 1-0 reason "test: a job to retry")
admin XADD credits:dead '*' stream credits:jobs:consume entry 2-0 reason invalid_job job x >/dev/null
console_token="console-token-$RANDOM$RANDOM$RANDOM"
console_port=$(free_port)
console="http://127.0.0.1:$console_port"
start_server "$TEST_DIR/console.log" env CREDITS_REDIS_URL="$(url_for console)" \
    CREDITS_CONSOLE_TOKEN="$console_token" \
    "$CREDITSCTL" console --listen "127.0.0.1:$console_port" --allow-actions
console_pid=$SERVER_PID
wait_until 200 curl -sf -o /dev/null "$console/api/config" || fail "the console answers"
codes=""
for q in overview "dead" "dead/one?id=$dl" "job?id=acl-c1" "user?user=a1" "history?user=a1" \
    "events?user=a1"; do
    codes+="$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$console/api/$q") "
done
expect_eq "console: every page's read as credits-console" "200 200 200 200 200 200 200 " "$codes"
expect_eq "console: the overview reads the group (XPENDING, XINFO CONSUMERS)" true \
    "$(json_get "$(curl -s "$console/api/overview")" '{streams,0,group}')"
console_act() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X POST -H "Origin: $console" \
        -H "X-Console-Token: $console_token" "$console/api/$1"
}
expect_eq "console: a dead letter retried (EVAL)" 200 "$(console_act "dead/retry?id=$dl")"
wait_until 100 decided webapp acl-dl || true
expect_match "and decided by the worker" '"status":"applied"' "$(result_of webapp acl-dl)"
expect_eq "console: every dead letter of a reason retried, refused ones counted" 200 \
    "$(console_act "dead/retry-reason?reason=invalid_job")"
dl=$(admin XRANGE credits:dead - + COUNT 1 | head -1)
expect_eq "console: a dead letter dropped (XDEL)" 200 "$(console_act "dead/drop?id=$dl")"
kill -TERM "$console_pid"
status=0
wait "$console_pid" || status=$?
expect_eq "console: exits 0" 0 "$status"
if grep -q NOPERM "$TEST_DIR/console.log"; then
    fail "the console met NOPERM: $(grep NOPERM "$TEST_DIR/console.log" | head -3)"
else
    pass "the console never met NOPERM as credits-console"
fi

if grep -q NOPERM "$WORKER_LOG"; then
    fail "the worker met NOPERM: $(grep NOPERM "$WORKER_LOG" | head -3)"
else
    pass "the worker never met NOPERM as credits-worker"
fi
expect_eq "the worker stayed connected" 0 "$(grep -c 'event=redis_lost' "$WORKER_LOG" || true)"
stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"

# ------------------------------------------------------------------------
# Exactly what each user needs: the rest is NOPERM.
# ------------------------------------------------------------------------

expect_nopermission() { expect_match "$1" NOPERM "$2"; }
expect_nopermission "webapp: no XADD to the purchase stream" \
    "$(as webapp XADD credits:jobs:purchase '*' job x)"
expect_nopermission "webapp: no XADD to the allocate stream" \
    "$(as webapp XADD credits:jobs:allocate '*' job x)"
expect_nopermission "webapp: no XADD to the dead letters" "$(as webapp XADD credits:dead '*' job x)"
expect_nopermission "webapp: no reading the dead letters" "$(as webapp XRANGE credits:dead - +)"
expect_nopermission "webapp: no SET" "$(as webapp SET credits:result:acl-c1 forged)"
expect_nopermission "webapp: no forged results" "$(as webapp XADD credits:results '*' result x)"
expect_nopermission "webapp: no forged events" "$(as webapp XADD credits:events '*' event x)"
expect_nopermission "webapp: no reading the job streams" "$(as webapp XRANGE credits:jobs:consume - +)"
expect_nopermission "webapp: no KEYS" "$(as webapp KEYS '*')"
expect_nopermission "webapp: no FLUSHALL" "$(as webapp FLUSHALL)"
expect_match "webapp: reads the results stream (XREAD)" acl-c1 \
    "$(as webapp --raw XREAD COUNT 100 STREAMS credits:results 0 | tr -d '\000')"
expect_eq "webapp: creates its consumer group on the events stream" OK \
    "$(as webapp XGROUP CREATE credits:events webapp '$' MKSTREAM)"
expect_eq "webapp: reads the events through its group" "" \
    "$(as webapp XREADGROUP GROUP webapp w1 COUNT 10 STREAMS credits:events '>')"
expect_eq "webapp: acknowledges events" 0 "$(as webapp XACK credits:events webapp 1-1)"
expect_match "webapp: takes over events another instance left pending (XAUTOCLAIM)" '^0-0' \
    "$(as webapp XAUTOCLAIM credits:events webapp w2 60000 0 COUNT 10 | head -1)"
expect_eq "webapp: reads the delivery counts of the events pending (XPENDING)" 0 \
    "$(as webapp XPENDING credits:events webapp | head -1)"
expect_eq "webapp: makes a consumer (XGROUP CREATECONSUMER)" 1 \
    "$(as webapp XGROUP CREATECONSUMER credits:events webapp w9)"
expect_eq "webapp: lists its group's consumers (XINFO CONSUMERS)" w9 \
    "$(as webapp XINFO CONSUMERS credits:events webapp | sed -n 2p)"
expect_eq "webapp: removes a consumer gone for good (XGROUP DELCONSUMER)" 0 \
    "$(as webapp XGROUP DELCONSUMER credits:events webapp w9)"
expect_nopermission "webapp: no other group command on events" \
    "$(as webapp XGROUP DESTROY credits:events webapp)"
expect_nopermission "webapp: no moving its group's position on events" \
    "$(as webapp XGROUP SETID credits:events webapp 0)"
expect_nopermission "webhook: no XADD to the consume stream" \
    "$(as webhook XADD credits:jobs:consume '*' job x)"
expect_nopermission "webhook: no BLPOP on replies" "$(as webhook BLPOP credits:reply:x 1)"
expect_nopermission "scheduler: no XADD to the purchase stream" \
    "$(as scheduler XADD credits:jobs:purchase '*' job x)"
expect_nopermission "worker: no XADD to a job stream" \
    "$(as worker XADD credits:jobs:consume '*' job x)"
expect_nopermission "worker: no DEL" "$(as worker DEL credits:result:acl-c1)"
expect_nopermission "operator: no SET" "$(as operator SET credits:result:acl-c1 forged)"
expect_nopermission "console: no reading jobs through the group" \
    "$(as console XREADGROUP GROUP credits-worker c STREAMS credits:jobs:consume '>')"
expect_nopermission "console: no XACK" "$(as console XACK credits:jobs:consume credits-worker 1-0)"
expect_nopermission "console: no SET" "$(as console SET credits:result:acl-c1 forged)"
expect_nopermission "console: no forged results" "$(as console XADD credits:results '*' result x)"
expect_nopermission "console: no forged events" "$(as console XADD credits:events '*' event x)"
expect_nopermission "console: no XDEL on a job stream" "$(as console XDEL credits:jobs:consume 1-0)"
expect_nopermission "console: no KEYS" "$(as console KEYS '*')"

# creditsctl as the wrong user fails clearly.
CREDITS_REDIS_URL="$(url_for webhook)" ctl purchase --user a1 --pack starter \
    --payment-ref acl-p2 --id acl-buy2 --wait --timeout 2
expect_eq "webhook: purchase --wait (BLPOP) exits 1" 1 "$STATUS"
expect_match "webhook: purchase --wait says NOPERM" 'waiting for the result: Redis: NOPERM' "$ERR"
CREDITS_REDIS_URL="$(url_for webapp)" ctl dead list
expect_eq "webapp: dead list exits 1" 1 "$STATUS"
expect_match "webapp: dead list says NOPERM" 'NOPERM' "$ERR"

# ------------------------------------------------------------------------
# A refused password: the log says WRONGPASS (the AUTH's own error), not
# the NOAUTH of the set-up commands pipelined after it.
# ------------------------------------------------------------------------

start_worker CREDITS_REDIS_URL="redis://credits-worker:not-the-password@127.0.0.1:$ACL_PORT"
wait_until 100 grep -q 'event=redis_lost' "$TEST_DIR/worker-1.log" || true
first_lost=$(grep -m1 'event=redis_lost' "$TEST_DIR/worker-1.log" || true)
expect_match "a refused password is logged as WRONGPASS" 'WRONGPASS' "$first_lost"
expect_eq "and not as NOAUTH" 0 "$(grep -c NOAUTH "$TEST_DIR/worker-1.log" || true)"
stop_worker "$WORKER_PID"
expect_eq "that worker still stops cleanly" 0 "$WORKER_STATUS"

# ------------------------------------------------------------------------
# The template: it does not load unrendered, and renders for another prefix.
# ------------------------------------------------------------------------

status=0
timeout 10 redis-server --port 0 --aclfile "$SOURCE_DIR/deploy/redis/users.acl" --save '' \
    --dir "$ACL_DIR" --daemonize no >"$ACL_DIR/unrendered.log" 2>&1 || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 124 ]; then
    pass "Redis refuses the unrendered template (exit status $status)"
else
    fail "Redis accepted the unrendered template (exit status $status)"
fi

render_for shop "$ACL_DIR/shop.acl"
start_acl_redis "$ACL_DIR/shop.acl"
dryrun() { admin ACL DRYRUN "$@" 2>&1; }
expect_eq "prefix shop: shop-webapp may XADD to shop:jobs:consume" OK \
    "$(dryrun shop-webapp XADD shop:jobs:consume '*' job x)"
expect_match "prefix shop: shop-webapp may not XADD to credits:jobs:consume" 'no permissions' \
    "$(dryrun shop-webapp XADD credits:jobs:consume '*' job x)"
expect_eq "prefix shop: shop-worker may read the shop job streams" OK \
    "$(dryrun shop-worker XREADGROUP GROUP g c STREAMS shop:jobs:consume '>')"
expect_match "prefix shop: there is no credits-worker user" 'not found|No such user' \
    "$(dryrun credits-worker PING)"
ACL_PORT=$MAIN_PORT

finish
