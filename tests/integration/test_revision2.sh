#!/usr/bin/env bash
# test_revision2.sh -- the revision 2 jobs (contract 9.2-9.6) end to end:
# creditsctl enqueues, the real worker applies them to a real PostgreSQL,
# and the checks read the results, the tables and the read views. One user
# per scenario, so that each scenario's balances are its own.
#
#   BUILD_DIR=build tests/integration/test_revision2.sh

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/ctl_lib.sh"

WAIT_S=20
WAIT_TRIES=200 # 20 s

# job TYPE ARGS... -- enqueues a job and waits for its result (in OUT).
job() { ctl "$@" --wait --timeout "$WAIT_S"; }

# got PATH -- a key of the last result, e.g. got status, got balance,held.
got() { json_get "$OUT" "{$1}"; }

# expect_applied WHAT -- the last result is applied.
expect_applied() { expect_eq "$1: applied" applied "$(got status)"; }

# expect_rejected WHAT CODE -- the last result is a rejection with CODE and
# a message.
expect_rejected() {
    expect_eq "$1: rejected with $2" "rejected $2" "$(got status) $(got error)"
    expect_match "$1: a message says why" '.' "$(got message)"
}

# expect_balance WHAT "TOTAL PACK MONTHLY GRANT HELD" -- the last result's
# balance map.
expect_balance() {
    expect_eq "$1: balance total pack monthly grant held" "$2" \
        "$(got balance,total) $(got balance,pack) $(got balance,monthly) $(got balance,grant) $(got balance,held)"
}

# view_balance USER -- credits.balances' row, as the result's order.
view_balance() {
    psql_value "SELECT total || ' ' || pack || ' ' || monthly || ' ' || \"grant\" || ' ' || held
                  FROM credits.balances WHERE user_id = '$1'"
}

# entries USER JOB -- the job's entries, one "kind delta lot-kind origin" per
# line, in the order written.
entries() {
    psql_value "SELECT e.kind || ' ' || e.delta || ' ' || l.kind || ' ' || coalesce(e.origin, '-')
                  FROM credits.entries e JOIN credits.lots l USING (lot_id)
                 WHERE e.user_id = '$1' AND e.job_id = '$2' ORDER BY e.entry_id"
}

# hold_row HOLD -- "status captured closed_by" of a hold.
hold_row() {
    psql_value "SELECT status || ' ' || coalesce(captured::text, '-') || ' ' || coalesce(closed_by, '-')
                  FROM credits.holds WHERE hold_id = '$1'"
}

# hex_bytes HEX -- the bytes of a hex string, on stdout.
hex_bytes() {
    # shellcheck disable=SC2001,SC2059 # every byte pair becomes an escape of the format
    printf "$(sed 's/../\\x&/g' <<<"$1")"
}

# ------------------------------------------------------------------------
# The catalog: two packs that expire at different times, one plan.
# ------------------------------------------------------------------------

set_catalog() {
    "$CREDITSCTL" pack set big --credits 100 --valid-days 90 >/dev/null
    "$CREDITSCTL" pack set soon --credits 50 --valid-days 10 >/dev/null
    "$CREDITSCTL" plan set month --monthly 300 >/dev/null
}

# ------------------------------------------------------------------------
# hold, capture, release (9.4)
# ------------------------------------------------------------------------

check_hold() {
    job purchase --user h1 --pack big --payment-ref h1-pay --id h1-buy
    job allocate --user h1 --plan month --period 2026-11 --id h1-alloc
    job hold --user h1 --amount 1000 --id h1-too-much
    expect_rejected "hold above the balance" insufficient_credits
    expect_balance "hold above the balance keeps the balance" "400 100 300 0 0"
    expect_eq "a rejected hold opens no hold" 0 \
        "$(psql_value "SELECT count(*) FROM credits.holds WHERE hold_id = 'h1-too-much'")"
    expect_eq "a rejected hold writes no entry" "" "$(entries h1 h1-too-much)"

    job hold --user h1 --amount 150 --ttl 600 --tool veo --ref r-1 --id h1-hold
    expect_applied "hold"
    expect_eq "hold: held is the amount" 150 "$(got held)"
    expect_balance "hold: held credits leave the usable balance" "250 0 250 0 150"
    local now_ms expires_ms
    now_ms=$(psql_value "SELECT (extract(epoch FROM now()) * 1000)::bigint")
    expires_ms=$(got hold_expires_at)
    expect_eq "hold: hold_expires_at is about now + ttl (Unix ms)" 1 \
        "$(((expires_ms - now_ms) > 590000 && (expires_ms - now_ms) <= 600000 ? 1 : 0))"
    expect_eq "hold: one entry per lot, the pack first, with tool and ref" \
        "hold -100 pack - veo r-1
hold -50 monthly - veo r-1" \
        "$(psql_value "SELECT e.kind || ' ' || e.delta || ' ' || l.kind || ' ' || coalesce(e.origin, '-')
                             || ' ' || e.tool || ' ' || e.ref
                         FROM credits.entries e JOIN credits.lots l USING (lot_id)
                        WHERE e.job_id = 'h1-hold' ORDER BY e.entry_id")"
    expect_eq "hold: the hold is open, with the amount and tool" "open 150 veo r-1" \
        "$(psql_value "SELECT status || ' ' || amount || ' ' || tool || ' ' || ref
                         FROM credits.holds WHERE hold_id = 'h1-hold'")"
    expect_eq "hold: the view agrees with the result" "250 0 250 0 150" "$(view_balance h1)"
    job consume --user h1 --amount 260 --id h1-spend-held
    expect_rejected "held credits cannot be spent" insufficient_credits

    job capture --user h1 --hold h1-hold --amount 160 --id h1-cap-over
    expect_rejected "capture above the hold" capture_exceeds_hold
    expect_eq "a rejected capture leaves the hold open" "open - -" "$(hold_row h1-hold)"
    job capture --user h1 --hold no-such-hold --amount 1 --id h1-cap-none
    expect_rejected "capture of no hold" unknown_hold
    job capture --user h2 --hold h1-hold --amount 1 --id h2-cap-other
    expect_rejected "capture of another user's hold" unknown_hold

    job capture --user h1 --hold h1-hold --amount 120 --id h1-cap
    expect_applied "capture"
    expect_eq "capture: charged and released" "120 30" "$(got charged) $(got released)"
    expect_balance "capture: the rest is usable again, nothing held" "280 0 280 0 0"
    expect_eq "capture: the rest goes back to the lot taken last (the monthly)" \
        "release 30 monthly h1-hold" "$(entries h1 h1-cap)"
    expect_eq "capture closes the hold" "captured 120 h1-cap" "$(hold_row h1-hold)"

    job capture --user h1 --hold h1-hold --amount 1 --id h1-cap-again
    expect_rejected "a second capture" hold_closed
    job release --user h1 --hold h1-hold --id h1-rel-after-cap
    expect_rejected "release after a capture" hold_closed
    job capture --user h1 --hold h1-hold --amount 120 --id h1-cap
    expect_eq "a capture delivered again is a replay" "true applied 120" \
        "$(got replayed) $(got status) $(got charged)"

    job hold --user h1 --amount 40 --id h1-hold-2
    job capture --user h1 --hold h1-hold-2 --amount 40 --id h1-cap-full
    expect_eq "a capture of the whole hold releases nothing" "40 0" \
        "$(got charged) $(got released)"
    job hold --user h1 --amount 40 --id h1-hold-3
    job capture --user h1 --hold h1-hold-3 --amount 0 --id h1-cap-zero
    expect_eq "a capture of 0 charges nothing and releases all" "0 40" \
        "$(got charged) $(got released)"
    expect_eq "a capture of 0 closes the hold as captured" "captured 0 h1-cap-zero" \
        "$(hold_row h1-hold-3)"
    job refund --user h1 --charge h1-cap-zero --id h1-ref-cap-zero
    expect_rejected "a refund of a capture of 0" refund_exceeds_charge

    job hold --user h1 --amount 70 --id h1-hold-4
    job release --user h1 --hold h1-hold-4 --id h1-rel
    expect_applied "release"
    expect_eq "release: released is the whole hold" 70 "$(got released)"
    expect_eq "release closes the hold" "released - h1-rel" "$(hold_row h1-hold-4)"
    expect_eq "release: the entries' origin is the hold" "release 70 monthly h1-hold-4" \
        "$(entries h1 h1-rel)"
    job release --user h1 --hold h1-hold-4 --id h1-rel-2
    expect_rejected "a second release" hold_closed
}

# A hold past its expires_at: the capture and release checks say
# hold_expired, and the transaction of the rejection releases it.
check_hold_expiry() {
    job grant --user x1 --amount 100 --id x1-grant
    job hold --user x1 --amount 30 --ttl 1 --id x1-hold
    expect_applied "a hold of 1 s"
    sleep 1.2
    expect_eq "an overdue hold no longer counts as held in the view" "100 0 0 100 0" \
        "$(view_balance x1)"
    job capture --user x1 --hold x1-hold --amount 10 --id x1-cap
    expect_rejected "capture of an expired hold" hold_expired
    expect_eq "a hold_expired result has no balance" "" "$(got balance)"
    expect_eq "the rejection's transaction released the hold" "100 0 0 100 0" \
        "$(view_balance x1)"
    expect_eq "the expired hold: status expired, closed by no job" "expired - -" \
        "$(hold_row x1-hold)"
    expect_eq "the expiry's release entries carry the hold's ID as job and origin" \
        "release 30 grant x1-hold" \
        "$(psql_value "SELECT e.kind || ' ' || e.delta || ' ' || l.kind || ' ' || e.origin
                         FROM credits.entries e JOIN credits.lots l USING (lot_id)
                        WHERE e.job_id = 'x1-hold' AND e.kind = 'release'")"
    job release --user x1 --hold x1-hold --id x1-rel
    expect_rejected "release of an expired hold" hold_expired

    job hold --user x1 --amount 20 --ttl 1 --id x1-hold-2
    sleep 1.2
    job consume --user x1 --amount 1 --id x1-other
    expect_applied "another job of the user"
    expect_balance "another job of the user releases the overdue hold first" "99 0 0 99 0"
    expect_eq "another job's transaction closes the overdue hold" "expired - -" \
        "$(hold_row x1-hold-2)"
}

# Give-backs to lots no longer usable leave them again at once (9.4).
check_give_back_to_dead_lots() {
    job purchase --user g1 --pack soon --payment-ref g1-pay --id g1-buy
    job hold --user g1 --amount 50 --id g1-hold
    psql_value "UPDATE credits.lots SET expires_at = now() - interval '1 second',
                       granted_at = now() - interval '2 days'
                 WHERE user_id = 'g1' AND kind = 'pack'" >/dev/null
    job release --user g1 --hold g1-hold --id g1-rel
    expect_eq "release to an expired lot: released counts every credit" 50 "$(got released)"
    expect_balance "release to an expired lot: nothing usable" "0 0 0 0 0"
    expect_eq "release to an expired lot: a release entry, then an expire entry" \
        "release 50 pack g1-hold
expire -50 pack g1-hold" "$(entries g1 g1-rel)"

    job purchase --user g2 --pack big --payment-ref g2-pay --id g2-buy
    job hold --user g2 --amount 60 --id g2-hold
    job revoke --user g2 --payment-ref g2-pay --id g2-revoke
    expect_eq "revoke with credits in a hold: the credits left are revoked" 40 "$(got revoked)"
    expect_balance "revoke: the held credits still count as held" "0 0 0 0 60"
    job release --user g2 --hold g2-hold --id g2-rel
    expect_eq "release to a revoked lot: released counts every credit" 60 "$(got released)"
    expect_balance "release to a revoked lot: nothing usable" "0 0 0 0 0"
    expect_eq "release to a revoked lot: a release entry, then a revoke entry" \
        "release 60 pack g2-hold
revoke -60 pack g2-hold" "$(entries g2 g2-rel)"
}

# ------------------------------------------------------------------------
# refund (9.4)
# ------------------------------------------------------------------------

check_refund() {
    job purchase --user r1 --pack big --payment-ref r1-pay --id r1-buy
    job allocate --user r1 --plan month --period 2026-11 --id r1-alloc
    job consume --user r1 --amount 150 --id r1-spend
    job refund --user r1 --charge r1-spend --amount 20 --id r1-ref-1
    expect_applied "a partial refund"
    expect_eq "refund: refunded" 20 "$(got refunded)"
    expect_eq "refund goes back to the lot taken last first (the monthly)" \
        "refund 20 monthly r1-spend" "$(entries r1 r1-ref-1)"
    job refund --user r1 --charge r1-spend --amount 40 --id r1-ref-2
    expect_eq "a second partial refund spans lots, the last taken first" \
        "refund 30 monthly r1-spend
refund 10 pack r1-spend" "$(entries r1 r1-ref-2)"
    job refund --user r1 --charge r1-spend --amount 91 --id r1-ref-over
    expect_rejected "a refund above what is left" refund_exceeds_charge
    job refund --user r1 --charge r1-spend --id r1-ref-rest
    expect_eq "a refund without amount returns all that is left" 90 "$(got refunded)"
    expect_balance "after every refund the balance is whole again" "400 100 300 0 0"
    job refund --user r1 --charge r1-spend --id r1-ref-none
    expect_rejected "a refund without amount when nothing is left" refund_exceeds_charge

    job refund --user r1 --charge no-such-job --id r1-ref-unknown
    expect_rejected "refund of no job" unknown_charge
    job refund --user r1 --charge r1-buy --id r1-ref-purchase
    expect_rejected "refund of a purchase" unknown_charge
    job consume --user r1 --amount 100000 --id r1-spend-rejected
    job refund --user r1 --charge r1-spend-rejected --id r1-ref-rejected
    expect_rejected "refund of a rejected consume" unknown_charge
    job refund --user r2 --charge r1-spend --id r2-ref-other
    expect_rejected "refund of another user's consume" unknown_charge

    job hold --user r1 --amount 100 --id r1-hold
    job capture --user r1 --hold r1-hold --amount 60 --id r1-cap
    job refund --user r1 --charge r1-cap --amount 61 --id r1-ref-cap-over
    expect_rejected "refund of a capture above what it charged" refund_exceeds_charge
    job refund --user r1 --charge r1-cap --id r1-ref-cap
    expect_eq "refund of a capture: what the hold took and did not give back" 60 \
        "$(got refunded)"
    expect_eq "refund of a capture: its entries name the capture" \
        "refund 60 pack r1-cap" "$(entries r1 r1-ref-cap)"
    job refund --user r1 --charge r1-hold --id r1-ref-hold
    expect_rejected "refund of a hold (not a charge)" unknown_charge

    expect_conflict "a refund's ID again with another amount" refund --user r1 \
        --charge r1-spend --amount 5 --id r1-ref-1
}

# ------------------------------------------------------------------------
# revoke (9.4)
# ------------------------------------------------------------------------

check_revoke() {
    job purchase --user v1 --pack big --payment-ref v1-pay --id v1-buy
    job consume --user v1 --amount 30 --id v1-spend
    job revoke --user v1 --payment-ref no-such-pay --id v1-rev-unknown
    expect_rejected "revoke of no payment" unknown_payment
    job revoke --user v2 --payment-ref v1-pay --id v2-rev-other
    expect_rejected "revoke of another user's payment" unknown_payment
    job revoke --user v1 --payment-ref v1-pay --id v1-rev
    expect_applied "revoke"
    expect_eq "revoke: revoked is what was left" 70 "$(got revoked)"
    expect_balance "revoke: the pack's credits are gone" "0 0 0 0 0"
    expect_eq "revoke: one revoke entry takes the lot to 0" "revoke -70 pack -" \
        "$(entries v1 v1-rev)"
    expect_eq "revoke: the lot is revoked, nothing left" "1 0" \
        "$(psql_value "SELECT (revoked_at IS NOT NULL)::int || ' ' || remaining FROM credits.lots
                        WHERE user_id = 'v1' AND payment_ref = 'v1-pay'")"
    job revoke --user v1 --payment-ref v1-pay --id v1-rev-again
    expect_rejected "a second revoke" already_revoked
    job refund --user v1 --charge v1-spend --id v1-ref
    expect_eq "a refund into a revoked lot: refunded counts it" 30 "$(got refunded)"
    expect_balance "a refund into a revoked lot: nothing usable" "0 0 0 0 0"
    expect_eq "a refund into a revoked lot: a refund entry, then a revoke entry" \
        "refund 30 pack v1-spend
revoke -30 pack v1-spend" "$(entries v1 v1-ref)"

    job purchase --user v3 --pack soon --payment-ref v3-pay --id v3-buy
    job consume --user v3 --amount 50 --id v3-spend
    job revoke --user v3 --payment-ref v3-pay --id v3-rev
    expect_eq "revoke of a pack spent in full: revoked 0" "applied 0" \
        "$(got status) $(got revoked)"
}

# ------------------------------------------------------------------------
# grant (9.4)
# ------------------------------------------------------------------------

check_grant() {
    job grant --user s1 --amount 25 --reason "sign-up bonus" --id s1-bonus
    expect_applied "grant"
    expect_eq "grant without valid_days: granted, no expires_at" "25 " \
        "$(got granted) $(got expires_at)"
    expect_balance "grant: grant credits in the balance" "25 0 0 25 0"
    expect_eq "grant: a grant lot that never expires, the reason in ref" \
        "grant 25 never sign-up bonus" \
        "$(psql_value "SELECT l.kind || ' ' || l.granted || ' ' || coalesce(l.expires_at::text, 'never')
                             || ' ' || e.ref
                         FROM credits.lots l JOIN credits.entries e USING (lot_id)
                        WHERE l.job_id = 's1-bonus'")"
    job grant --user s1 --amount 10 --valid-days 5 --id s1-soon
    local now_ms
    now_ms=$(psql_value "SELECT (extract(epoch FROM now()) * 1000)::bigint")
    expect_eq "grant with valid_days: expires_at about now + days (Unix ms)" 1 \
        "$(((($(got expires_at) - now_ms) > 5 * 86400000 - 60000) && (($(got expires_at) - now_ms) <= 5 * 86400000) ? 1 : 0))"
    job purchase --user s1 --pack big --payment-ref s1-pay --id s1-buy
    job allocate --user s1 --plan month --period 2026-11 --id s1-alloc
    expect_balance "grant credits beside packs and monthly" "435 100 300 35 0"
    expect_eq "the view's next expiry: the expiring grant's credits" 10 \
        "$(psql_value "SELECT next_expiry_credits FROM credits.balances WHERE user_id = 's1'")"
    job consume --user s1 --amount 15 --id s1-spend
    expect_eq "spending order: the expiring grant (5 days) before the pack (90 days)" \
        "consume -10 grant -
consume -5 pack -" "$(entries s1 s1-spend)"
    job consume --user s1 --amount 395 --id s1-spend-2
    expect_eq "spending order: lots that never expire by granted_at (the grant before the monthly lot)" \
        "consume -95 pack -
consume -25 grant -
consume -275 monthly -" "$(entries s1 s1-spend-2)"
}

# ------------------------------------------------------------------------
# cancel (9.4)
# ------------------------------------------------------------------------

check_cancel() {
    job cancel --user c0 --id c0-cancel
    expect_rejected "cancel of a user who never had a plan" no_plan
    job allocate --user c1 --plan month --period 2026-11 --id c1-alloc
    local before
    before=$("$CREDITSCTL" schedule --period 2026-12 --dry-run --json)
    job cancel --user c1 --id c1-cancel
    expect_applied "cancel"
    expect_eq "cancel without forfeit forfeits nothing" 0 "$(got forfeited)"
    expect_balance "cancel without forfeit keeps the monthly credits" "300 0 300 0 0"
    expect_eq "cancel: the account has no plan" "" \
        "$(psql_value "SELECT coalesce(plan_id, '') FROM credits.accounts WHERE user_id = 'c1'")"
    expect_eq "the schedule enqueues one job fewer after the cancel" \
        "$(($(json_get "$before" '{jobs}') - 1))" \
        "$(json_get "$("$CREDITSCTL" schedule --period 2026-12 --dry-run --json)" '{jobs}')"
    job cancel --user c1 --id c1-cancel-2
    expect_rejected "a second cancel" no_plan

    job allocate --user c1 --plan month --period 2026-12 --id c1-alloc-2
    expect_applied "an allocate after the cancel subscribes again"
    expect_eq "the account has its plan again" month \
        "$(psql_value "SELECT plan_id FROM credits.accounts WHERE user_id = 'c1'")"
    job hold --user c1 --amount 100 --id c1-hold
    job cancel --user c1 --forfeit --id c1-cancel-forfeit
    # 300 rolled over and 300 allocated, 100 of them held.
    expect_eq "cancel --forfeit forfeits the usable monthly credits" 500 "$(got forfeited)"
    expect_balance "cancel --forfeit: the held credits stay held" "0 0 0 0 100"
    expect_eq "cancel --forfeit writes forfeit entries" 500 \
        "$(psql_value "SELECT -sum(delta) FROM credits.entries
                        WHERE job_id = 'c1-cancel-forfeit' AND kind = 'forfeit'")"
    job release --user c1 --hold c1-hold --id c1-rel
    expect_balance "monthly credits that come back after the forfeit are usable" "100 0 100 0 0"
}

# ------------------------------------------------------------------------
# Streams (9.2), invalid jobs (9.3), idempotency of the new types
# ------------------------------------------------------------------------

# wrong_pairing TYPE STREAM ARGS... -- a job of TYPE made under another
# prefix, put on the credits stream STREAM: rejected wrong_stream, not
# stored, and dead-lettered.
wrong_pairing() {
    local type=$1 stream=$2 id dead_before
    shift 2
    id="ws-$type-$stream"
    dead_before=$(redis XLEN credits:dead)
    CREDITS_PREFIX=scratch "$CREDITSCTL" "$type" "$@" --id "$id" >/dev/null
    local from
    from=$(redis --scan --pattern 'scratch:jobs:*' | while read -r key; do
        if [ "$(redis XLEN "$key")" != 0 ]; then echo "$key"; fi
    done)
    copy_job "$from" "credits:jobs:$stream" >/dev/null
    redis DEL "$from" >/dev/null
    wait_until "$WAIT_TRIES" "$CREDITSCTL" result "$id"
    ctl result "$id"
    expect_eq "$type on the $stream stream: wrong_stream" "rejected wrong_stream" \
        "$(got status) $(got error)"
    expect_eq "$type on the $stream stream: not stored" 0 \
        "$(psql_value "SELECT count(*) FROM credits.jobs WHERE job_id = '$id'")"
    expect_eq "$type on the $stream stream: dead-lettered" "$((dead_before + 1))" \
        "$(redis XLEN credits:dead)"
}

check_streams() {
    wrong_pairing hold purchase --user w1 --amount 5
    wrong_pairing capture allocate --user w1 --hold h --amount 5
    wrong_pairing release purchase --user w1 --hold h
    wrong_pairing refund allocate --user w1 --charge c
    wrong_pairing revoke consume --user w1 --payment-ref p
    wrong_pairing revoke allocate --user w1 --payment-ref p
    wrong_pairing grant consume --user w1 --amount 5
    wrong_pairing grant purchase --user w1 --amount 5
    wrong_pairing cancel consume --user w1
}

# Every invalid revision-2 vector, put on its type's stream as is: a dead
# letter with reason invalid_job, and nothing in the ledger.
check_invalid_vectors() {
    local name outcome hex _meaning type stream dead_before
    while IFS=$'\t' read -r name outcome hex _meaning; do
        case "$name" in
        hold_* | capture_* | release_* | refund_*) stream=consume ;;
        revoke_*) stream=purchase ;;
        grant_* | cancel_*) stream=allocate ;;
        *) continue ;;
        esac
        [ "$outcome" = invalid_job ] || continue
        type=${name%%_*}
        dead_before=$(redis XLEN credits:dead)
        hex_bytes "$hex" | redis -x XADD "credits:jobs:$stream" '*' job >/dev/null
        wait_until "$WAIT_TRIES" value_is "$((dead_before + 1))" redis XLEN credits:dead
        expect_eq "vector $name ($type): dead-lettered as invalid_job" invalid_job \
            "$(redis XREVRANGE credits:dead + - COUNT 1 | sed -n '/^reason$/{n;p;}')"
    done <"$SOURCE_DIR/schemas/vectors/jobs.tsv"
    expect_eq "invalid jobs leave nothing in the ledger" 0 \
        "$(psql_value "SELECT count(*) FROM credits.jobs WHERE user_id = 'u1'")"
}

# expect_conflict WHAT TYPE ARGS... -- enqueues a job whose ID is taken by a
# job with other fields: no reply (creditsctl says why it may be), an
# id_conflict on P:results and P:dead, and the ID's stored result stays the
# first job's.
expect_conflict() {
    local what=$1 id=${*: -1} stored dead_before
    shift
    stored=$(redis GET "credits:result:$id" | od -An -tx1 | tr -d ' \n')
    dead_before=$(redis XLEN credits:dead)
    ctl "$@" --wait --timeout 1
    expect_eq "$what: creditsctl --wait gets no reply (exit 1)" 1 "$STATUS"
    expect_match "$what: creditsctl --wait says it may be an id_conflict" \
        'a result is stored under this ID: .* id_conflict' "$ERR"
    wait_until "$WAIT_TRIES" value_is "$((dead_before + 1))" redis XLEN credits:dead
    expect_eq "$what: dead-lettered as id_conflict" id_conflict \
        "$(redis XREVRANGE credits:dead + - COUNT 1 | sed -n '/^reason$/{n;p;}')"
    expect_eq "$what: its result is on P:results" 1 \
        "$(redis --raw XREVRANGE credits:results + - COUNT 1 | grep -c 'id_conflict')"
    expect_eq "$what: the stored result is the first job's" "$stored" \
        "$(redis GET "credits:result:$id" | od -An -tx1 | tr -d ' \n')"
}

check_idempotency() {
    job grant --user i1 --amount 100 --id i1-grant
    job hold --user i1 --amount 10 --id i1-hold
    job hold --user i1 --amount 10 --id i1-hold
    expect_eq "a hold delivered again: replayed, one hold" "true 10 1" \
        "$(got replayed) $(got held) $(psql_value "SELECT count(*) FROM credits.holds WHERE user_id = 'i1'")"
    expect_balance "a replayed hold takes nothing more" "90 0 0 90 10"
    expect_conflict "an absent optional key and a present one differ" hold --user i1 \
        --amount 10 --ttl 3600 --id i1-hold
    expect_conflict "a grant's ID with valid_days added" grant --user i1 --amount 100 \
        --valid-days 1 --id i1-grant
    job cancel --user i1 --forfeit --id i1-cancel
    expect_conflict "cancel's forfeit is compared" cancel --user i1 --id i1-cancel
    expect_conflict "a capture's hold is compared" capture --user i1 --hold other \
        --amount 0 --id i1-hold
    job cancel --user i1 --forfeit --id i1-cancel
    expect_eq "a stored no_plan replays" "true rejected no_plan" \
        "$(got replayed) $(got status) $(got error)"
}

# ------------------------------------------------------------------------
# The read views (9.6) and the audit
# ------------------------------------------------------------------------

check_views() {
    expect_eq "credits.balances has the contract's columns" \
        "user_id total pack monthly grant held next_expiry_at next_expiry_credits" \
        "$(psql_value "SELECT string_agg(column_name, ' ' ORDER BY ordinal_position)
                         FROM information_schema.columns
                        WHERE table_schema = 'credits' AND table_name = 'balances'")"
    expect_eq "credits.history has the contract's columns" \
        "user_id job_id type delta tool ref pack_id plan_id period created_at cursor" \
        "$(psql_value "SELECT string_agg(column_name, ' ' ORDER BY ordinal_position)
                         FROM information_schema.columns
                        WHERE table_schema = 'credits' AND table_name = 'history'")"
    expect_eq "history: one line per applied job that changed the lots, newest first" \
        "h1-rel release 70
h1-hold-4 hold -70
h1-cap-zero capture 40
h1-hold-3 hold -40
h1-hold-2 hold -40
h1-cap capture 30
h1-hold hold -150
h1-alloc allocate 300 month 2026-11
h1-buy purchase 100 big" \
        "$(psql_value "SELECT concat_ws(' ', job_id, type, delta, coalesce(pack_id, plan_id), period)
                         FROM credits.history WHERE user_id = 'h1' ORDER BY cursor DESC")"
    expect_eq "history: a capture that charges all gives back nothing and is no line" 0 \
        "$(psql_value "SELECT count(*) FROM credits.history WHERE job_id = 'h1-cap-full'")"
    expect_eq "history: no rejected job" 0 \
        "$(psql_value "SELECT count(*) FROM credits.history h JOIN credits.jobs j USING (job_id)
                        WHERE j.status <> 'applied'")"
    expect_eq "history: a page by cursor" "h1-hold-3 h1-hold-2" \
        "$(psql_value "SELECT string_agg(job_id, ' ' ORDER BY cursor DESC) FROM (
                         SELECT job_id, cursor FROM credits.history
                          WHERE user_id = 'h1'
                            AND cursor < (SELECT cursor FROM credits.history WHERE job_id = 'h1-cap-zero')
                          ORDER BY cursor DESC LIMIT 2) p")"
    expect_eq "history: the deltas add up to the balance" \
        "$(psql_value "SELECT total FROM credits.balances WHERE user_id = 'r1'")" \
        "$(psql_value "SELECT sum(delta) FROM credits.history WHERE user_id = 'r1'")"
    expect_eq "the view's balance of every user equals the last result's" "" \
        "$(psql_value "SELECT b.user_id FROM credits.balances b
                        WHERE b.total <> (SELECT coalesce(sum(remaining), 0) FROM credits.lots l
                                           WHERE l.user_id = b.user_id AND l.revoked_at IS NULL
                                             AND (l.expires_at IS NULL OR l.expires_at > now()))
                          AND NOT EXISTS (SELECT 1 FROM credits.holds h
                                           WHERE h.user_id = b.user_id AND h.status = 'open')")"
}

check_audit() {
    ctl audit
    expect_eq "creditsctl audit finds nothing wrong after every scenario" 0 "$STATUS"
}

# ------------------------------------------------------------------------

migrate
set_catalog
start_test_worker
check_hold
check_hold_expiry
check_give_back_to_dead_lots
check_refund
check_revoke
check_grant
check_cancel
check_streams
check_invalid_vectors
check_idempotency
check_views
check_audit
stop_worker "$WORKER_PID"
expect_eq "credits-worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
