#!/usr/bin/env bash
# test_events_ctl.sh -- integration test of `creditsctl events` and the
# thresholds behind the low-balance events (`plan set --low-balance`,
# `account set --low-balance`), against a throwaway Redis and PostgreSQL
# (lib.sh) and the real worker, which writes the events and publishes them
# to credits:events (contract 9.8): the plan's threshold, an account's own
# winning over it and cleared again, a depleting consume, the sweep's hold
# and lot events, --user and --limit, --follow (an event that comes after
# it started, stopped by SIGTERM or SIGINT with exit 0), entries that are
# no event, the bounded search back, and usage errors.
#
#   BUILD_DIR=build tests/integration/test_events_ctl.sh

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/ctl_lib.sh"

WAIT_TRIES=200 # 20 s
WAIT_S=20
PERIOD=$(date -u +%Y-%m)
TIME_RE='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'

# json_len JSON PATH -- the length of the JSON array at PATH.
json_len() {
    printf '%s\n' "SELECT json_array_length((:'j'::json) #> :'p');" |
        psql "$CREDITS_DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 -v j="$1" -v p="$2"
}

# user_events USER -- how many events of USER creditsctl lists.
user_events() {
    local out
    out=$("$CREDITSCTL" events --user "$1" --limit 1000 --json) || return 1
    json_len "$out" '{events}'
}

# wait_events USER N WHAT -- waits until USER has N events listed.
wait_events() {
    wait_until "$WAIT_TRIES" value_is "$2" user_events "$1" || true
    expect_eq "$3" "$2" "$(user_events "$1")"
}

# newest_of USER KEY -- KEY of USER's newest event (a path under it, too:
# 'balance,total').
newest_of() {
    local out
    out=$("$CREDITSCTL" events --user "$1" --limit 1 --json)
    json_get "$out" "{events,0,$2}"
}

# job ARGS... -- enqueues a job with --wait; prints nothing, fails the check
# when it is not applied.
job() {
    ctl "$@" --wait --timeout "$WAIT_S"
    expect_match "$1 $3 is applied" '"status":"applied"' "$OUT"
}

# file_lines FILE REGEX -- how many lines of FILE match REGEX.
file_lines() { grep -cE -- "$2" "$1" || true; }

# ------------------------------------------------------------------------
# The thresholds: the plan's, an account's own, none
# ------------------------------------------------------------------------

check_plan_threshold() {
    ctl events --user e1 --json
    expect_eq "events --user of a user with none: an empty list" '{"events":[],"scan_cut":false}' "$OUT"
    ctl events --user e1
    expect_eq "events --user of a user with none says so" "(no events of this user)" "$OUT"
    job allocate --user e1 --plan pro --period "$PERIOD"
    wait_events e1 1 "the first allocation lifts the balance to the plan's threshold: one event"
    expect_eq "the allocation's event is balance_recovered at the plan's threshold" \
        "balance_recovered 100 300" \
        "$(newest_of e1 type) $(newest_of e1 threshold) $(newest_of e1 balance,total)"
    job consume --user e1 --amount 250 --id e1-consume-1
    wait_events e1 2 "a consume crossing the plan's threshold: one more event"
    ctl events --user e1 --json
    expect_json "events --user --json is one JSON object" "$OUT"
    expect_eq "events --json: balance_low, with the plan's threshold, the job and balance" \
        "balance_low 100 e1-consume-1 e1 50 0" \
        "$(json_get "$OUT" '{events,1,type}') $(json_get "$OUT" '{events,1,threshold}') $(json_get "$OUT" '{events,1,job}') $(json_get "$OUT" '{events,1,user}') $(json_get "$OUT" '{events,1,balance,total}') $(json_get "$OUT" '{events,1,balance,held}')"
    expect_match "events --json: every key of the event, in the codec's order" \
        '"entry":"[0-9]+-[0-9]+","v":1,"event_id":[0-9]+,"type":"balance_low","user":"e1","at":[0-9]{13},"balance":\{"total":50,"pack":0,"monthly":50,"grant":0,"held":0\},"job":"e1-consume-1","threshold":100\}' "$OUT"
    expect_eq "events --json: oldest first" "balance_recovered balance_low" \
        "$(json_get "$OUT" '{events,0,type}') $(json_get "$OUT" '{events,1,type}')"
    expect_eq "the listed event is the one in credits.events" \
        "$(psql_value "SELECT event_id FROM credits.events WHERE job_id = 'e1-consume-1'")" \
        "$(json_get "$OUT" '{events,1,event_id}')"
    local at
    at=$(psql_value "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM credits.events WHERE job_id = 'e1-consume-1'")
    ctl events --user e1
    expect_eq "events: a header" 1 \
        "$(count_lines '^event_id +time +type +user +job +details +total +held$' "$OUT")"
    expect_eq "events: one line per event, its time in UTC as the database has it" 1 \
        "$(count_lines "^ *[0-9]+ +$at +balance_low +e1 +e1-consume-1 +threshold=100 +50 +0$" "$OUT")"
}

check_account_threshold() {
    ctl account set e1 --low-balance 40
    expect_eq "account set --low-balance exits 0" 0 "$STATUS"
    expect_match "account set: the account's threshold wins" '^user .*
e1 +pro +40 +100 +40$' "$OUT"
    # 50 -> 30: below the plan's 100 all along, across the account's 40.
    job consume --user e1 --amount 20 --id e1-consume-2
    wait_events e1 3 "a consume crossing the account's threshold (not the plan's): one more event"
    expect_eq "the account's threshold wins over the plan's" "balance_low 40 e1-consume-2 30" \
        "$(newest_of e1 type) $(newest_of e1 threshold) $(newest_of e1 job) $(newest_of e1 balance,total)"
    ctl account set e1 --low-balance none --json
    expect_eq "account set none clears it: the plan's applies" \
        '{"user":"e1","plan":"pro","low_balance":null,"plan_low_balance":100,"threshold":100}' "$OUT"
    # 30 -> 530: across the plan's 100 (and the account's 40, were it set).
    job purchase --user e1 --pack starter --payment-ref e1-pay-1 --id e1-purchase-1
    wait_events e1 4 "a purchase crossing the threshold back: one more event"
    expect_eq "with the account's cleared, the plan's threshold is used" "balance_recovered 100 e1-purchase-1" \
        "$(newest_of e1 type) $(newest_of e1 threshold) $(newest_of e1 job)"
}

check_depleted() {
    job consume --user e1 --amount 530 --id e1-consume-3
    wait_events e1 6 "a consume to 0 across the threshold: balance_low and balance_depleted"
    ctl events --user e1 --limit 2 --json
    expect_eq "the depleting consume: balance_low then balance_depleted, both its own" \
        "balance_low e1-consume-3 balance_depleted e1-consume-3 0" \
        "$(json_get "$OUT" '{events,0,type}') $(json_get "$OUT" '{events,0,job}') $(json_get "$OUT" '{events,1,type}') $(json_get "$OUT" '{events,1,job}') $(json_get "$OUT" '{events,1,balance,total}')"
    expect_match "balance_depleted has no threshold key" '"type":"balance_depleted","user":"e1","at":[0-9]+,"balance":\{[^}]*\},"job":"e1-consume-3"\}' "$OUT"
    ctl events --user e1
    expect_eq "events: balance_depleted's details are empty" 1 \
        "$(count_lines '^ *[0-9]+ +[0-9TZ:-]+ +balance_depleted +e1 +e1-consume-3 +- +0 +0$' "$OUT")"

    # A user with no threshold at all gets balance_depleted only.
    job purchase --user e2 --pack starter --payment-ref e2-pay-1
    job consume --user e2 --amount 500 --id e2-consume-1
    wait_events e2 1 "a user without a threshold: one event, the depletion"
    expect_eq "without a threshold: balance_depleted only" "balance_depleted e2-consume-1" \
        "$(newest_of e2 type) $(newest_of e2 job)"
}

# ------------------------------------------------------------------------
# The sweep's events: a hold expired, a lot expiring, a lot expired
# ------------------------------------------------------------------------

check_sweep_events() {
    job purchase --user e4 --pack starter --payment-ref e4-pay-1
    job hold --user e4 --amount 100 --ttl 1 --id e4-hold-1
    wait_events e4 1 "the sweep releases the expired hold: hold_expired"
    expect_eq "hold_expired: the hold and what it released" "hold_expired e4-hold-1 e4-hold-1 100 500 0" \
        "$(newest_of e4 type) $(newest_of e4 hold) $(newest_of e4 job) $(newest_of e4 released) $(newest_of e4 balance,total) $(newest_of e4 balance,held)"
    ctl events --user e4
    expect_eq "events: hold_expired's details" 1 \
        "$(count_lines '^ *[0-9]+ +[0-9TZ:-]+ +hold_expired +e4 +e4-hold-1 +hold=e4-hold-1 released=100 +500 +0$' "$OUT")"

    job purchase --user e4 --pack short --payment-ref e4-pay-2 --id e4-purchase-2
    wait_events e4 2 "the sweep announces a lot expiring within the notice days"
    local lot
    lot=$(psql_value "SELECT lot_id FROM credits.lots WHERE job_id = 'e4-purchase-2'")
    expect_eq "credits_expiring: the lot, its credits, the job of its expiry" \
        "credits_expiring $lot 50 expire:$lot 550" \
        "$(newest_of e4 type) $(newest_of e4 lot) $(newest_of e4 credits) $(newest_of e4 job) $(newest_of e4 balance,total)"
    expect_eq "credits_expiring: expires_at in Unix ms, as in the database" \
        "$(psql_value "SELECT floor(extract(epoch FROM expires_at) * 1000)::bigint FROM credits.lots WHERE lot_id = $lot")" \
        "$(newest_of e4 expires_at)"
    local expires
    expires=$(psql_value "SELECT to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM credits.lots WHERE lot_id = $lot")
    ctl events --user e4
    expect_eq "events: credits_expiring's details, expires_at in UTC" 1 \
        "$(count_lines "^ *[0-9]+ +[0-9TZ:-]+ +credits_expiring +e4 +expire:$lot +lot=$lot credits=50 expires_at=$expires +550 +0$" "$OUT")"

    psql_value "UPDATE credits.lots SET expires_at = now() - interval '1 second' WHERE lot_id = $lot" >/dev/null
    wait_events e4 3 "the sweep writes off the lot past its expiry: credits_expired"
    expect_eq "credits_expired: the lot, its credits, the sweep's job" "credits_expired $lot 50 expire:$lot 500" \
        "$(newest_of e4 type) $(newest_of e4 lot) $(newest_of e4 credits) $(newest_of e4 job) $(newest_of e4 balance,total)"
    ctl events --user e4
    expect_eq "events: credits_expired's details" 1 \
        "$(count_lines "^ *[0-9]+ +[0-9TZ:-]+ +credits_expired +e4 +expire:$lot +lot=$lot credits=50 +500 +0$" "$OUT")"
}

# ------------------------------------------------------------------------
# --limit and --user
# ------------------------------------------------------------------------

check_limit_and_user() {
    local all limited ids
    all=$("$CREDITSCTL" events --user e1 --limit 1000 --json)
    ctl events --user e1 --limit 2 --json
    limited=$OUT
    expect_eq "--limit 2: two events" 2 "$(json_len "$limited" '{events}')"
    expect_eq "--limit 2: the user's newest two, oldest first" \
        "$(json_get "$all" '{events,4,event_id}') $(json_get "$all" '{events,5,event_id}')" \
        "$(json_get "$limited" '{events,0,event_id}') $(json_get "$limited" '{events,1,event_id}')"
    ids=$(printf '%s\n' "SELECT string_agg(e->>'event_id', ' ' ORDER BY ord) FROM json_array_elements(:'j'::json -> 'events') WITH ORDINALITY AS t(e, ord);" |
        psql "$CREDITS_DATABASE_URL" -XAtq -v j="$all")
    expect_eq "events --user lists the user's events in event_id order" \
        "$(psql_value "SELECT string_agg(event_id::text, ' ' ORDER BY event_id) FROM credits.events WHERE user_id = 'e1'")" "$ids"
    expect_eq "--user e1: no other user's event" 0 \
        "$(printf '%s\n' "SELECT count(*) FROM json_array_elements(:'j'::json -> 'events') e WHERE e->>'user' <> 'e1';" |
            psql "$CREDITS_DATABASE_URL" -XAtq -v j="$all")"
    ctl events --user e1 --limit 1
    expect_eq "--limit 1 as a table: a header and one line" 2 "$(wc -l <<<"$OUT")"
    ctl events --limit 3 --json
    expect_eq "--limit 3 without --user: the stream's newest three, any user" \
        "$(psql_value "SELECT string_agg(event_id::text, ' ' ORDER BY event_id) FROM (SELECT event_id FROM credits.events ORDER BY event_id DESC LIMIT 3) e")" \
        "$(json_get "$OUT" '{events,0,event_id}') $(json_get "$OUT" '{events,1,event_id}') $(json_get "$OUT" '{events,2,event_id}')"
    ctl events --user nobody --json
    expect_eq "--user of a user without events: none" 0 "$(json_len "$OUT" '{events}')"
}

# ------------------------------------------------------------------------
# --follow
# ------------------------------------------------------------------------

# start_follow OUT ARGS... -- creditsctl events --follow ARGS in the
# background, stdout to OUT; sets FOLLOW_PID.
start_follow() {
    local out=$1
    shift
    "$CREDITSCTL" events --follow "$@" >"$out" 2>"$out.err" &
    FOLLOW_PID=$!
}

# stop_follow PID SIGNAL WHAT -- stops the follower, checks it exits 0.
stop_follow() {
    local status=0
    kill "-$2" "$1"
    wait "$1" || status=$?
    expect_eq "$3" 0 "$status"
}

check_follow() {
    local table_out="$TEST_DIR/follow-table.out" json_out="$TEST_DIR/follow-json.out"
    local all_out="$TEST_DIR/follow-all.out" table_pid json_pid all_pid
    start_follow "$table_out" --user e3
    table_pid=$FOLLOW_PID
    wait_until "$WAIT_TRIES" grep -q 'no events of this user' "$table_out" || true
    expect_eq "--follow prints the (empty) listing first" "(no events of this user)" "$(cat "$table_out")"
    local listed
    listed=$(redis XLEN credits:events)
    start_follow "$all_out" --json --limit 1000
    all_pid=$FOLLOW_PID
    wait_until "$WAIT_TRIES" value_is "$listed" file_lines "$all_out" '^\{"entry"' || true
    expect_eq "--follow --json: the listing first, one object per line" "$listed" \
        "$(file_lines "$all_out" '^\{"entry":"[0-9]+-[0-9]+",')"

    job purchase --user e3 --pack starter --payment-ref e3-pay-1
    job consume --user e3 --amount 500 --id e3-consume-1
    wait_until "$WAIT_TRIES" grep -q 'balance_depleted' "$table_out" || true
    expect_eq "--follow prints an event that came after it started, under a header" 1 \
        "$(file_lines "$table_out" '^ *[0-9]+ +[0-9TZ:-]+ +balance_depleted +e3 +e3-consume-1 +- +0 +0$')"
    expect_eq "--follow: the header once" 1 "$(file_lines "$table_out" '^event_id +time')"
    expect_eq "--follow --user: no other user's event" 0 "$(file_lines "$table_out" ' e[124] ')"

    start_follow "$json_out" --json --user e3
    json_pid=$FOLLOW_PID
    wait_until "$WAIT_TRIES" grep -q 'e3-consume-1' "$json_out" || true
    expect_eq "--follow --json --user: the listing first, one line" 1 "$(wc -l <"$json_out")"
    job purchase --user e3 --pack starter --payment-ref e3-pay-2
    job consume --user e3 --amount 500 --id e3-consume-2
    wait_until "$WAIT_TRIES" grep -q 'e3-consume-2' "$json_out" || true
    expect_eq "--follow --json: one more line for the new event" 2 "$(wc -l <"$json_out")"
    local line
    line=$(sed -n 2p "$json_out")
    expect_json "--follow --json: each line is one JSON object" "$line"
    expect_eq "--follow --json: the new event, every key" "balance_depleted e3 e3-consume-2 0" \
        "$(json_get "$line" '{type}') $(json_get "$line" '{user}') $(json_get "$line" '{job}') $(json_get "$line" '{balance,total}')"
    expect_eq "--follow --json: in event_id order" 1 \
        "$(psql_value "SELECT ($(json_get "$(sed -n 1p "$json_out")" '{event_id}') < $(json_get "$line" '{event_id}'))::int")"

    # An entry that is no event, while following: listed as such, and the
    # follower goes on.
    local garbage
    garbage=$(redis XADD credits:events '*' event garbage)
    wait_until "$WAIT_TRIES" grep -q "$garbage" "$all_out" || true
    expect_eq "--follow --json: an entry that is no event, as such" 1 \
        "$(file_lines "$all_out" "^\{\"entry\":\"$garbage\",\"error\":\"not an event\",\"bytes\":7,\"hex\":\"67617262616765\"\}$")"
    expect_eq "--follow: the follower outlives an entry that is no event" 0 \
        "$(kill -0 "$all_pid" 2>/dev/null; echo $?)"
    expect_eq "--follow --json --user leaves the entry out" 0 "$(file_lines "$json_out" "$garbage")"
    expect_eq "--follow --user leaves the entry out" 0 "$(file_lines "$table_out" "$garbage")"
    job purchase --user e3 --pack starter --payment-ref e3-pay-3 --id e3-purchase-3
    job consume --user e3 --amount 500 --id e3-consume-3
    wait_until "$WAIT_TRIES" grep -q 'e3-consume-3' "$all_out" || true
    expect_eq "--follow: events after the entry that is no event still come" 1 \
        "$(file_lines "$all_out" '"job":"e3-consume-3"')"

    stop_follow "$table_pid" TERM "--follow ends on SIGTERM with exit 0"
    stop_follow "$json_pid" INT "--follow --json ends on SIGINT with exit 0"
    stop_follow "$all_pid" TERM "--follow --json without --user ends on SIGTERM with exit 0"
    expect_eq "--follow writes nothing on stderr" "" "$(cat "$table_out.err" "$json_out.err" "$all_out.err")"
}

# ------------------------------------------------------------------------
# Entries that are no event; the default limit; the bounded search
# ------------------------------------------------------------------------

check_not_events() {
    local garbage nofield
    garbage=$(redis XADD credits:events '*' event garbage)
    nofield=$(redis XADD credits:events '*' other x)
    ctl events --limit 2 --json
    expect_eq "events exits 0 over entries that are no event" 0 "$STATUS"
    expect_eq "events --json: garbage is not an event, with its hex" \
        "$garbage not an event 7 67617262616765" \
        "$(json_get "$OUT" '{events,0,entry}') $(json_get "$OUT" '{events,0,error}') $(json_get "$OUT" '{events,0,bytes}') $(json_get "$OUT" '{events,0,hex}')"
    expect_eq "events --json: an entry without the event field" "$nofield no event field" \
        "$(json_get "$OUT" '{events,1,entry}') $(json_get "$OUT" '{events,1,error}')"
    ctl events --limit 2
    expect_eq "events: garbage as a line of its own" 1 \
        "$(count_lines "^ +- +- +\(not an event\) +- +- +entry $garbage: 7 bytes 67617262616765 +- +-$" "$OUT")"
    expect_eq "events: an entry without the event field as a line of its own" 1 \
        "$(count_lines "^ +- +- +\(not an event\) +- +- +entry $nofield: no event field +- +-$" "$OUT")"
    ctl events --user e1 --limit 1000 --json
    expect_eq "events --user leaves entries that are no event out" 0 "$(count_lines 'not an event' "$OUT")"

    redis EVAL "for i = 1, 20 do redis.call('XADD', KEYS[1], '*', 'event', 'x' .. i) end" \
        1 credits:events >/dev/null
    ctl events --json
    expect_eq "events without --limit: the newest 20" 20 "$(json_len "$OUT" '{events}')"
    expect_eq "events without --limit: the newest is last" "$(redis XREVRANGE credits:events + - COUNT 1 | head -1)" \
        "$(json_get "$OUT" '{events,19,entry}')"
    ctl events --limit 1000 --json
    expect_eq "events --limit 1000: every entry of the stream" "$(redis XLEN credits:events)" \
        "$(json_len "$OUT" '{events}')"
}

check_bounded_search() {
    job purchase --user deep --pack starter --payment-ref deep-pay-1
    job consume --user deep --amount 500 --id deep-consume-1
    wait_events deep 1 "a user's event to bury"
    redis EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '*', 'event', 'x') end" \
        1 credits:events 99990 >/dev/null
    ctl events --user deep --limit 1 --json
    expect_eq "--user finds an event 99991 entries deep" "deep-consume-1 false" \
        "$(json_get "$OUT" '{events,0,job}') $(json_get "$OUT" '{scan_cut}')"
    ctl events --user deep --json
    expect_eq "--user looking for 20 says the search was cut short of them" "deep-consume-1 true" \
        "$(json_get "$OUT" '{events,0,job}') $(json_get "$OUT" '{scan_cut}')"
    redis EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '*', 'event', 'x') end" \
        1 credits:events 20 >/dev/null
    ctl events --user deep --json
    expect_eq "--user stops after 100000 entries and says so" '{"events":[],"scan_cut":true}' "$OUT"
    ctl events --user deep
    expect_eq "events --user: the table says the search was cut" \
        "(no events of this user)
(only the newest 100000 entries of credits:events were read)" "$OUT"
    ctl events --limit 1 --json
    expect_eq "without --user nothing is cut" false "$(json_get "$OUT" '{scan_cut}')"
}

# ------------------------------------------------------------------------
# Usage errors and failures
# ------------------------------------------------------------------------

check_usage_errors() {
    local args
    for args in "--limit 0" "--limit 1001" "--limit abc" "--limit -1" "--user" "--bogus" "extra"; do
        # shellcheck disable=SC2086 # the words are the arguments
        ctl events $args
        expect_eq "events $args is a usage error" 2 "$STATUS"
        expect_match "events $args shows the usage" 'usage: creditsctl events ' "$ERR"
    done
    ctl events --user "a b"
    expect_eq "events --user with a space is a usage error" 2 "$STATUS"
    expect_match "events --user: the ID rule" 'a user ID is 1 to 128 printable ASCII characters' "$ERR"
    ctl events --user ""
    expect_eq "events --user '' is a usage error" 2 "$STATUS"
    ctl events --user "$(printf 'u%.0s' {1..129})"
    expect_eq "events --user of 129 bytes is a usage error" 2 "$STATUS"
    ctl plan set pro --monthly 300 --low-balance -1
    expect_eq "plan set --low-balance -1 is a usage error" 2 "$STATUS"
    ctl account set e1 --low-balance abc
    expect_eq "account set --low-balance abc is a usage error" 2 "$STATUS"
    expect_match "account set --low-balance abc says what it takes" 'whole number from 1 to 1000000000000, or none \(got "abc"\)' "$ERR"
    ctl account set "e 1" --low-balance 5
    expect_eq "account set of a bad user ID is a usage error" 2 "$STATUS"
    expect_eq "the usage errors changed no threshold" "100|" \
        "$(psql_value "SELECT p.low_balance || '|' || coalesce(a.low_balance::text, '') FROM credits.plans p, credits.accounts a WHERE p.plan_id = 'pro' AND a.user_id = 'e1'")"

    redis SET other:events not-a-stream >/dev/null
    CREDITS_PREFIX=other ctl events
    expect_eq "events on a key that is no stream exits 1" 1 "$STATUS"
    expect_match "events on a key that is no stream says so" 'WRONGTYPE' "$ERR"
    CREDITS_REDIS_URL="redis://127.0.0.1:$(free_port)" ctl events
    expect_eq "events without Redis exits 1" 1 "$STATUS"
    expect_match "events without Redis says so" 'cannot connect to Redis' "$ERR"
    ctl events --help
    expect_match "events --help: --follow --json is one object per line" 'one JSON object per line' "$OUT"
}

migrate
"$CREDITSCTL" pack set starter --credits 500 >/dev/null
"$CREDITSCTL" pack set short --credits 50 --valid-days 3 >/dev/null
"$CREDITSCTL" plan set pro --monthly 300 --low-balance 100 >/dev/null
start_worker CREDITS_SWEEP_INTERVAL_MS=200
check_plan_threshold
check_account_threshold
check_depleted
check_sweep_events
check_limit_and_user
check_follow
check_not_events
check_bounded_search
check_usage_errors
stop_worker "$WORKER_PID"
expect_eq "credits-worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
