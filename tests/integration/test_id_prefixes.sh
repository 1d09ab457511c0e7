#!/usr/bin/env bash
# test_id_prefixes.sh -- job ID namespaces per stream (CREDITS_ID_PREFIXES)
# and the worker's own prefix `expire:`: a job whose ID lies outside its
# stream's namespace, or in the worker's, is invalid_job with a message
# naming the expected prefix, its ID stays free for the job it belongs to,
# and a bad value stops the worker at start-up with exit status 2.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"

result_text() { redis --raw GET "credits:result:$1" | tr -cd '[:print:]'; }
job_rows() { psql_value "SELECT count(*) FROM credits.jobs WHERE job_id = '$1'"; }

migrate
"$CREDITSCTL" plan set pro --monthly 100 >/dev/null
"$CREDITSCTL" pack set starter --credits 50 >/dev/null

# A bad value: refused at start-up, clearly, exit 2.
for value in 'refund=r:' 'consume=web:,consume=w2:' 'consume=' 'consume=expire:x' 'web:'; do
    status=0
    err=$(CREDITS_ID_PREFIXES="$value" "$WORKER" 2>&1 >/dev/null) || status=$?
    expect_eq "CREDITS_ID_PREFIXES='$value': exit 2" 2 "$status"
    expect_match "CREDITS_ID_PREFIXES='$value': says what is wrong" '^.*CREDITS_ID_PREFIXES: ' "$err"
done
out=$(CREDITS_ID_PREFIXES='consume=web:,allocate=alloc:' "$WORKER" --check-config)
expect_eq "--check-config prints the namespaces" 'CREDITS_ID_PREFIXES=consume=web:,allocate=alloc:' "$(grep '^CREDITS_ID_PREFIXES=' <<<"$out")"

start_worker CREDITS_HTTP_ADDR= CREDITS_ID_PREFIXES='consume=web:,purchase=pay:,allocate=alloc:'

# A consume sent under the scheduler's predictable allocation ID.
ctl consume --user u1 --amount 1 --id alloc:u1:2026-11 --wait --timeout 10
expect_match "a consume outside web: is invalid_job, naming the prefix" \
    "\"error\":\"invalid_job\".*a job ID on the consume stream must start with 'web:'" "$OUT"
expect_eq "it is not stored" 0 "$(job_rows alloc:u1:2026-11)"
ctl allocate --user u1 --plan pro --period 2026-11 --id alloc:u1:2026-11 --wait --timeout 10
expect_match "the allocation under that ID is applied: its ID was never taken" \
    '"status":"applied".*"granted":100' "$OUT"
ctl consume --user u1 --amount 5 --id web:run-1 --wait --timeout 10
expect_match "a consume inside web: is applied" '"status":"applied".*"charged":5' "$OUT"
ctl purchase --user u1 --pack starter --payment-ref p-1 --id web:run-2 --wait --timeout 10
expect_match "a purchase outside pay: is invalid_job" \
    "\"error\":\"invalid_job\".*must start with 'pay:'" "$OUT"
ctl purchase --user u1 --pack starter --payment-ref p-1 --id pay:evt-1 --wait --timeout 10
expect_match "a purchase inside pay: is applied" '"status":"applied".*"granted":50' "$OUT"
ctl allocate --user u2 --plan pro --period 2026-11 --id u2-nov --wait --timeout 10
expect_match "an allocate outside alloc: is invalid_job" "must start with 'alloc:'" "$OUT"
ctl consume --user u1 --amount 1 --id expire:42 --wait --timeout 10
expect_match "expire: is the worker's own" \
    "\"error\":\"invalid_job\".*job IDs starting with 'expire:' are reserved" "$OUT"
dead=$(redis --raw XRANGE credits:dead - + | tr -cd '[:print:]\n')
expect_eq "each rejection is dead-lettered" 4 "$(grep -c '^invalid_job$' <<<"$dead")"
expect_match "and logged at info with its error" \
    "level=info event=job_rejected .*id=\"web:run-2\" error=invalid_job" "$(cat "$TEST_DIR/worker-0.log")"
stop_worker "$WORKER_PID"

# Without namespaces, IDs are free, but expire: stays the worker's.
start_worker CREDITS_HTTP_ADDR=
ctl consume --user u1 --amount 1 --id anything-1 --wait --timeout 10
expect_match "without CREDITS_ID_PREFIXES any ID is taken" '"status":"applied"' "$OUT"
ctl consume --user u1 --amount 1 --id expire:7 --wait --timeout 10
expect_match "without CREDITS_ID_PREFIXES expire: is still refused" \
    "job IDs starting with 'expire:' are reserved" "$OUT"
expect_eq "and not stored" 0 "$(job_rows expire:7)"
ctl consume --user u1 --amount 1 --id expired:7 --wait --timeout 10
expect_match "an ID that only looks like it is taken" '"status":"applied"' "$OUT"
stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
