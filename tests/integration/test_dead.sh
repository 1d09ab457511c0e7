#!/usr/bin/env bash
# test_dead.sh -- integration test of `creditsctl dead list|show|retry|drop`
# against a throwaway Redis and PostgreSQL (lib.sh) and the real worker:
# garbage and wrong-stream messages the worker dead-letters are listed and
# decoded; a dead letter holding a valid job is retried and the worker
# applies it; retries the worker would reject again, or onto streams that
# are not job streams, are refused; drop deletes.
#
#   BUILD_DIR=build tests/integration/test_dead.sh

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/ctl_lib.sh"

WAIT_TRIES=200 # 20 s

dead_len() { redis XLEN credits:dead; }

# last_id STREAM -- the stream's last generated entry ID (not changed by the
# worker trimming acknowledged entries, unlike XLEN).
last_id() { redis XINFO STREAM "$1" | awk 'found { print; exit } $0 == "last-generated-id" { found = 1 }'; }

# ------------------------------------------------------------------------

check_empty() {
    ctl dead list
    expect_eq "dead list with no dead letters exits 0" 0 "$STATUS"
    expect_eq "dead list with no dead letters says so" "(no dead letters)" "$OUT"
    ctl dead list --json
    expect_eq "dead list --json with none" '{"total":0,"dead":[]}' "$OUT"
}

check_garbage() {
    local garbage_entry
    garbage_entry=$(printf '\x91\xc1' | redis -x XADD credits:jobs:consume '*' job)
    wait_until "$WAIT_TRIES" value_is 1 dead_len
    expect_eq "the worker dead-letters garbage" 1 "$(dead_len)"
    ctl dead list
    expect_eq "dead list exits 0" 0 "$STATUS"
    expect_match "dead list: a header" '^dead entry +stream +entry +reason +job$' "$(head -1 <<<"$OUT")"
    expect_eq "dead list: the garbage, its length and hex" 1 "$(count_lines \
        '^[0-9]+-[0-9]+ +credits:jobs:consume +[0-9]+-[0-9]+ +invalid_job +not a job \(invalid_job\): 2 bytes 91c1$' "$OUT")"
    ctl dead list --json
    expect_json "dead list --json is one JSON object" "$OUT"
    expect_eq "dead list --json: total, bytes, hex, no job, the error" "1 2 91c1 | invalid_job" \
        "$(json_get "$OUT" '{total}') $(json_get "$OUT" '{dead,0,job_bytes}') $(json_get "$OUT" '{dead,0,job_hex}') $(json_get "$OUT" '{dead,0,job}')| $(json_get "$OUT" '{dead,0,job_error}')"
    local id
    id=$(json_get "$OUT" '{dead,0,id}')

    ctl dead show "$id"
    expect_eq "dead show exits 0" 0 "$STATUS"
    expect_match "dead show: the stream" $'\nstream +credits:jobs:consume\n' "$OUT"
    expect_match "dead show: why the bytes are no job" 'job +not a valid job \(invalid_job\): ' "$OUT"
    expect_match "dead show: the bytes in hex" $'job bytes +2\n  0000  91 c1$' "$OUT"
    ctl dead show "$id" --json
    expect_json "dead show --json is one JSON object" "$OUT"
    expect_eq "dead show --json: the entry" "$id credits:jobs:consume invalid_job" \
        "$(json_get "$OUT" '{id}') $(json_get "$OUT" '{stream}') $(json_get "$OUT" '{reason}')"

    ctl dead retry "$id"
    expect_eq "dead retry of garbage exits 1" 1 "$STATUS"
    expect_match "dead retry of garbage says why" 'would be rejected again \(invalid_job' "$ERR"
    expect_eq "a refused retry keeps the dead letter" 1 "$(dead_len)"
    expect_eq "a refused retry enqueues nothing" "$garbage_entry" "$(last_id credits:jobs:consume)"

    ctl dead drop "$id"
    expect_eq "dead drop exits 0" 0 "$STATUS"
    expect_eq "dead drop says what it did" "dropped dead letter $id" "$OUT"
    expect_eq "dead drop deletes it" 0 "$(dead_len)"
    ctl dead drop "$id"
    expect_eq "dead drop of an unknown entry exits 1" 1 "$STATUS"
    expect_match "dead drop of an unknown entry says so" "no dead letter $id in credits:dead" "$ERR"
    ctl dead show "$id"
    expect_eq "dead show of an unknown entry exits 1" 1 "$STATUS"
    ctl dead retry "$id"
    expect_eq "dead retry of an unknown entry exits 1" 1 "$STATUS"
    expect_status "dead show of a malformed ID" 2 "$CREDITSCTL" dead show abc
    expect_status "dead drop without an ID" 2 "$CREDITSCTL" dead drop
}

check_no_job_field() {
    redis XADD credits:jobs:consume '*' other x >/dev/null
    wait_until "$WAIT_TRIES" value_is 1 dead_len
    ctl dead list
    expect_eq "an entry without a job field: no job bytes" 1 "$(count_lines ' \(no job bytes\)$' "$OUT")"
    local id
    id=$(redis XRANGE credits:dead - + | head -1)
    ctl dead retry "$id"
    expect_eq "dead retry without job bytes exits 1" 1 "$STATUS"
    expect_match "dead retry without job bytes says so" 'holds no job bytes' "$ERR"
    "$CREDITSCTL" dead drop "$id" >/dev/null
}

check_wrong_stream() {
    CREDITS_PREFIX=scratch "$CREDITSCTL" purchase --user d1 --pack starter --payment-ref ws-1 \
        --id ws-1 >/dev/null
    copy_job scratch:jobs:purchase credits:jobs:consume >/dev/null
    wait_until "$WAIT_TRIES" value_is 1 dead_len
    ctl dead list
    expect_eq "a wrong-stream job is listed decoded" 1 "$(count_lines \
        ' wrong_stream +purchase id=ws-1 user=d1 pack=starter payment_ref=ws-1$' "$OUT")"
    local id
    id=$(redis XRANGE credits:dead - + | head -1)
    ctl dead show "$id" --json
    expect_eq "dead show --json decodes the job" "purchase ws-1 starter" \
        "$(json_get "$OUT" '{job,type}') $(json_get "$OUT" '{job,id}') $(json_get "$OUT" '{job,pack}')"
    ctl dead retry "$id"
    expect_eq "dead retry of a wrong-stream job exits 1" 1 "$STATUS"
    expect_match "dead retry of a wrong-stream job says why" 'wrong_stream' "$ERR"
    ctl dead retry "$id" --force
    expect_eq "dead retry --force exits 0" 0 "$STATUS"
    expect_match "dead retry --force re-enqueues it on its stream" 're-enqueued on credits:jobs:consume' "$OUT"
    # The worker dead-letters it again, as a new dead letter.
    wait_until "$WAIT_TRIES" value_is 1 dead_len
    local again
    again=$(redis XRANGE credits:dead - + | head -1)
    expect_eq "the forced retry was dead-lettered again" 1 "$(dead_len)"
    if [ "$again" != "$id" ]; then pass "the new dead letter has a new ID"; else fail "same dead letter ID"; fi
    "$CREDITSCTL" dead drop "$again" >/dev/null
}

check_retry_valid() {
    CREDITS_PREFIX=scratch "$CREDITSCTL" consume --user d1 --amount 5 --id dead-c1 >/dev/null
    local id
    id=$(copy_job scratch:jobs:consume credits:dead stream credits:jobs:consume entry 0-1 \
        reason 'database error: test')
    ctl dead list
    expect_eq "a crafted dead letter with a valid job is listed decoded" 1 "$(count_lines \
        "^$id +credits:jobs:consume +0-1 +database error: test +consume id=dead-c1 user=d1 amount=5$" "$OUT")"
    ctl dead retry "$id"
    expect_eq "dead retry exits 0" 0 "$STATUS"
    expect_match "dead retry says what it did" \
        "^retried dead letter $id: job dead-c1 re-enqueued on credits:jobs:consume as entry [0-9]+-[0-9]+; dead letter deleted$" "$OUT"
    expect_eq "dead retry deletes the dead letter" 0 "$(dead_len)"
    expect_eq "dead retry adds the entry it names to the job stream" \
        "${OUT##* as entry }" "$(last_id credits:jobs:consume); dead letter deleted"
    wait_until "$WAIT_TRIES" "$CREDITSCTL" result dead-c1
    ctl result dead-c1
    expect_match "the worker applies the retried job" '"id":"dead-c1",.*"status":"applied",.*"charged":5,' "$OUT"
    ctl balance d1 --json
    expect_eq "the retried job spent the credits" 95 "$(json_get "$OUT" '{total}')"
    ctl dead retry "$id"
    expect_eq "a second retry of the same entry exits 1" 1 "$STATUS"

    CREDITS_PREFIX=scratch "$CREDITSCTL" consume --user d1 --amount 1 --id dead-c2 >/dev/null
    id=$(copy_job scratch:jobs:consume credits:dead stream credits:jobs:consume entry 0-2 reason test)
    ctl dead retry "$id" --json
    expect_json "dead retry --json is one JSON object" "$OUT"
    expect_eq "dead retry --json: what was retried, where" "$id dead-c2 credits:jobs:consume" \
        "$(json_get "$OUT" '{retried}') $(json_get "$OUT" '{job}') $(json_get "$OUT" '{stream}')"
    expect_match "dead retry --json: the new entry" '^[0-9]+-[0-9]+$' "$(json_get "$OUT" '{entry}')"
}

check_retry_refused() {
    local id stream
    for stream in credits:results other:jobs:consume; do
        id=$(copy_job scratch:jobs:consume credits:dead stream "$stream" entry 0-3 reason test)
        ctl dead retry "$id"
        expect_eq "dead retry onto $stream exits 1" 1 "$STATUS"
        expect_match "dead retry onto $stream says why" "not one of this prefix's job streams" "$ERR"
        expect_eq "dead retry onto $stream keeps the dead letter" 1 "$(dead_len)"
        ctl dead drop "$id" --json
        expect_eq "dead drop --json" "{\"dropped\":\"$id\"}" "$OUT"
    done
}

# dead retry --reason TEXT and --all: many at once, with a summary.
check_retry_many() {
    local i
    for i in 1 2 3; do
        CREDITS_PREFIX=scratch "$CREDITSCTL" consume --user d1 --amount 1 --id "dead-m$i" >/dev/null
        copy_job scratch:jobs:consume credits:dead stream credits:jobs:consume entry "0-1$i" \
            reason 'database error 42501: permission denied for table entries' >/dev/null
    done
    CREDITS_PREFIX=scratch "$CREDITSCTL" consume --user d1 --amount 1 --id dead-other >/dev/null
    copy_job scratch:jobs:consume credits:dead stream credits:jobs:consume entry 0-20 \
        reason 'database error 23514: a check' >/dev/null
    redis XADD credits:dead '*' stream credits:jobs:consume entry 0-21 reason invalid_job \
        job $'\x91\xc1' >/dev/null
    ctl dead retry --reason 'database error 42501'
    expect_eq "dead retry --reason exits 0" 0 "$STATUS"
    expect_eq "dead retry --reason: a summary" \
        "retried 3 dead letters whose reason starts with 'database error 42501'; 0 refused" "$OUT"
    expect_eq "dead retry --reason leaves the others" 2 "$(dead_len)"
    for i in 1 2 3; do
        wait_until "$WAIT_TRIES" "$CREDITSCTL" result "dead-m$i"
        ctl result "dead-m$i"
        expect_match "the worker applies retried job dead-m$i" '"status":"applied"' "$OUT"
    done
    ctl dead retry --reason 'nothing like this'
    expect_eq "dead retry --reason matching none exits 0" 0 "$STATUS"
    expect_match "dead retry --reason matching none says so" '^retried 0 dead letters' "$OUT"
    ctl dead retry --all --json
    expect_eq "dead retry --all with a letter refused exits 1" 1 "$STATUS"
    expect_json "dead retry --all --json is one JSON object" "$OUT"
    expect_eq "dead retry --all --json: counts and what went back" "1 1 dead-other" \
        "$(json_get "$OUT" '{retried}') $(json_get "$OUT" '{refused}') $(json_get "$OUT" '{entries,0,job}')"
    expect_match "dead retry --all: the refusal says why" 'would be rejected again \(invalid_job' "$ERR"
    expect_eq "dead retry --all keeps the refused letter" 1 "$(dead_len)"
    expect_status "dead retry --all with --reason" 2 "$CREDITSCTL" dead retry --all --reason x
    expect_status "dead retry without an ID or a selection" 2 "$CREDITSCTL" dead retry
    "$CREDITSCTL" dead drop "$(redis XRANGE credits:dead - + | head -1)" >/dev/null
}

check_list_limit() {
    local i
    for i in 1 2 3; do
        redis XADD credits:dead '*' stream credits:jobs:consume entry "1-$i" \
            reason $'odd "reason"\nline '"$i" job $'\x01\xff' >/dev/null
    done
    ctl dead list --limit 2
    expect_eq "dead list --limit 2: a header and two rows" 3 "$(wc -l <<<"$(grep -v '^(' <<<"$OUT")")"
    expect_match "dead list --limit: says how many there are" '\(the newest 2 of 3 dead letters\)' "$OUT"
    expect_match "dead list: newest first" $'\n[0-9-]+ +credits:jobs:consume +1-3 ' "$OUT"
    expect_match "dead list: control bytes made safe" 'odd "reason"\?line 3' "$OUT"
    ctl dead list --limit 2 --json
    expect_json "dead list --json with odd bytes is one JSON object" "$OUT"
    expect_eq "dead list --json --limit 2: total 3, two shown" "3 1-2 " \
        "$(json_get "$OUT" '{total}') $(json_get "$OUT" '{dead,1,entry}') $(json_get "$OUT" '{dead,2}')"
    expect_eq "dead list --json: the reason as it is" $'odd "reason"\nline 3' "$(json_get "$OUT" '{dead,0,reason}')"
    expect_status "dead list --limit 0" 2 "$CREDITSCTL" dead list --limit 0
    expect_status "dead list --limit x" 2 "$CREDITSCTL" dead list --limit x
}

check_unreachable() {
    CREDITS_REDIS_URL=redis://127.0.0.1:1 ctl dead list
    expect_eq "dead list with Redis unreachable exits 1" 1 "$STATUS"
    expect_match "dead list with Redis unreachable says so" 'cannot connect to Redis' "$ERR"
}

migrate
"$CREDITSCTL" pack set starter --credits 100 >/dev/null
start_test_worker
ctl purchase --user d1 --pack starter --payment-ref d-pay-1 --wait --timeout 20
expect_match "the worker runs" '"status":"applied"' "$OUT"
check_empty
check_garbage
check_no_job_field
check_wrong_stream
check_retry_valid
check_retry_refused
check_retry_many
check_list_limit
check_unreachable
stop_worker "$WORKER_PID"
expect_eq "credits-worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
