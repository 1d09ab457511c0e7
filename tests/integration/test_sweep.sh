#!/usr/bin/env bash
# test_sweep.sh -- the sweep and the events (contract 9.7, 9.8) through the
# real worker, Redis and PostgreSQL: holds and lots the sweep finds with no
# job of their user, one notice per lot, the threshold crossings and none
# for a replay, events that reach Redis after a failed publication or a
# worker killed before it published, two workers sweeping under load.
#
#   BUILD_DIR=build tests/integration/test_sweep.sh

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/ctl_lib.sh"

WAIT_S=20
SWEEP_MS=200

job() { ctl "$@" --wait --timeout "$WAIT_S"; }
got() { json_get "$OUT" "{$1}"; }

# events USER -- the user's events in credits.events, one "type job" per
# line, in event_id order.
events() {
    psql_value "SELECT type || ' ' || job_id FROM credits.events
                 WHERE user_id = '$1' ORDER BY event_id"
}

# count_events USER TYPE
count_events() {
    psql_value "SELECT count(*) FROM credits.events WHERE user_id = '$1' AND type = '$2'"
}

# in_redis USER TYPE -- how many events of the user and type P:events holds.
in_redis() {
    redis --raw XRANGE credits:events - + | LC_ALL=C grep -ac -- "$2.*$1" || true
}

# wait_sql EXPECTED SQL -- waits up to 10 s for SQL to print EXPECTED.
wait_sql() { wait_until 100 value_is "$1" psql_value "$2"; }

unpublished() { psql_value "SELECT count(*) FROM credits.events WHERE published_at IS NULL"; }

migrate
"$CREDITSCTL" pack set soon --credits 50 --valid-days 3 >/dev/null
"$CREDITSCTL" pack set far --credits 100 --valid-days 90 >/dev/null
"$CREDITSCTL" plan set month --monthly 300 >/dev/null
psql_value "UPDATE credits.plans SET low_balance = 100 WHERE plan_id = 'month'" >/dev/null
start_test_worker CREDITS_SWEEP_INTERVAL_MS="$SWEEP_MS" CREDITS_EXPIRY_NOTICE_DAYS=7
FIRST_WORKER=$WORKER_PID

# ------------------------------------------------------------------------
# The sweep, with no job of the user
# ------------------------------------------------------------------------

check_hold_released_by_sweep() {
    job grant --user h1 --amount 100 --id h1-grant
    job hold --user h1 --amount 30 --ttl 1 --id h1-hold
    wait_sql expired "SELECT status FROM credits.holds WHERE hold_id = 'h1-hold'"
    expect_eq "the sweep releases an expired hold with no other job of its user" \
        "expired -" "$(psql_value "SELECT status || ' ' || coalesce(closed_by, '-')
                                     FROM credits.holds WHERE hold_id = 'h1-hold'")"
    expect_eq "its release entries are under the hold's ID" "release 30 h1-hold" \
        "$(psql_value "SELECT kind || ' ' || delta || ' ' || origin FROM credits.entries
                        WHERE job_id = 'h1-hold' AND kind = 'release'")"
    wait_sql 1 "SELECT count(*) FROM credits.events WHERE user_id = 'h1' AND type = 'hold_expired'
                  AND published_at IS NOT NULL"
    expect_eq "hold_expired: the hold and what it released, under the hold's ID" "h1-hold h1-hold 30 100" \
        "$(psql_value "SELECT job_id || ' ' || hold_id || ' ' || released || ' ' || total
                         FROM credits.events WHERE user_id = 'h1' AND type = 'hold_expired'")"
    expect_eq "hold_expired reached P:events" 1 "$(in_redis h1 hold_expired)"
}

check_lot_expired_by_sweep() {
    job purchase --user x1 --pack soon --payment-ref x1-pay --id x1-buy
    local lot
    lot=$(psql_value "SELECT lot_id FROM credits.lots WHERE payment_ref = 'x1-pay'")
    psql_value "UPDATE credits.lots SET expires_at = now() - interval '1 second',
                       granted_at = now() - interval '2 days' WHERE lot_id = $lot" >/dev/null
    wait_sql 0 "SELECT remaining FROM credits.lots WHERE lot_id = $lot"
    expect_eq "the sweep writes the expired lot off under expire:{lot}" "expire -50" \
        "$(psql_value "SELECT kind || ' ' || delta FROM credits.entries
                        WHERE lot_id = $lot AND job_id = 'expire:$lot'")"
    expect_eq "expire:{lot} is an applied job of type expire" "expire applied x1" \
        "$(psql_value "SELECT type || ' ' || status || ' ' || user_id FROM credits.jobs
                        WHERE job_id = 'expire:$lot'")"
    expect_eq "the history shows the expiry as its own line" "expire -50" \
        "$(psql_value "SELECT type || ' ' || delta FROM credits.history WHERE job_id = 'expire:$lot'")"
    wait_sql 2 "SELECT count(*) FROM credits.events WHERE user_id = 'x1'
                  AND type IN ('credits_expired', 'balance_depleted')"
    expect_eq "credits_expired names the lot and its credits, then balance_depleted" \
        "credits_expired expire:$lot $lot 50
balance_depleted expire:$lot" \
        "$(psql_value "SELECT concat_ws(' ', type, job_id, lot_id, credits) FROM credits.events
                        WHERE user_id = 'x1' AND type <> 'credits_expiring' ORDER BY event_id")"
}

check_notice_once_per_lot() {
    job purchase --user n1 --pack soon --payment-ref n1-pay --id n1-buy
    job purchase --user n1 --pack far --payment-ref n1-far --id n1-far
    local lot
    lot=$(psql_value "SELECT lot_id FROM credits.lots WHERE payment_ref = 'n1-pay'")
    wait_sql 1 "SELECT count(*) FROM credits.events WHERE user_id = 'n1' AND type = 'credits_expiring'"
    sleep $((SWEEP_MS * 5 / 1000 + 1))
    expect_eq "credits_expiring comes once for the lot expiring within the notice days" \
        "credits_expiring expire:$lot $lot 50" \
        "$(psql_value "SELECT concat_ws(' ', type, job_id, lot_id, credits) FROM credits.events
                        WHERE user_id = 'n1' AND type = 'credits_expiring'")"
    expect_eq "credits_expiring carries the lot's expiry" 1 \
        "$(psql_value "SELECT count(*) FROM credits.events e JOIN credits.lots l USING (lot_id)
                        WHERE e.user_id = 'n1' AND e.expires_at = date_trunc('milliseconds', l.expires_at)")"
    expect_eq "the lot is marked announced; the lot expiring in 90 days is not" "1 0" \
        "$(psql_value "SELECT count(*) FILTER (WHERE payment_ref = 'n1-pay' AND expiry_noticed_at IS NOT NULL)
                              || ' ' ||
                              count(*) FILTER (WHERE payment_ref = 'n1-far' AND expiry_noticed_at IS NOT NULL)
                         FROM credits.lots WHERE user_id = 'n1'")"
}

# ------------------------------------------------------------------------
# Threshold events from jobs
# ------------------------------------------------------------------------

check_thresholds() {
    job allocate --user t1 --plan month --period 2026-11 --id t1-alloc
    expect_eq "a first allocation to at least the plan's threshold: balance_recovered" \
        "balance_recovered t1-alloc" "$(events t1)"
    expect_eq "balance_recovered names the threshold" 100 \
        "$(psql_value "SELECT threshold FROM credits.events WHERE job_id = 't1-alloc'")"
    job consume --user t1 --amount 150 --id t1-c1
    expect_eq "staying above the threshold: no event" 1 "$(psql_value "SELECT count(*) FROM credits.events WHERE user_id = 't1'")"
    job consume --user t1 --amount 60 --id t1-c2
    expect_eq "from at least the threshold to below it: balance_low" "balance_low t1-c2" \
        "$(events t1 | tail -1)"
    expect_eq "balance_low: the balance after it" "90 100" \
        "$(psql_value "SELECT total || ' ' || threshold FROM credits.events WHERE job_id = 't1-c2'")"
    job consume --user t1 --amount 10 --id t1-c3
    expect_eq "below the threshold again: no second balance_low" 1 "$(count_events t1 balance_low)"
    job consume --user t1 --amount 10 --id t1-c3
    expect_eq "a replay sends no event" 2 "$(psql_value "SELECT count(*) FROM credits.events WHERE user_id = 't1'")"
    job consume --user t1 --amount 1000 --id t1-too-much
    expect_eq "a rejection that changes nothing sends no event" 2 \
        "$(psql_value "SELECT count(*) FROM credits.events WHERE user_id = 't1'")"
    job consume --user t1 --amount 80 --id t1-c4
    expect_eq "to 0 from below the threshold: balance_depleted alone" "balance_depleted t1-c4" \
        "$(events t1 | tail -1)"
    job purchase --user t1 --pack far --payment-ref t1-pay --id t1-buy
    expect_eq "from below to at least the threshold: balance_recovered" "balance_recovered t1-buy" \
        "$(events t1 | tail -1)"
    psql_value "UPDATE credits.accounts SET low_balance = 50 WHERE user_id = 't1'" >/dev/null
    job consume --user t1 --amount 40 --id t1-c5
    expect_eq "the account's threshold wins over the plan's: 60 is not low for 50" \
        "balance_recovered t1-buy" "$(events t1 | tail -1)"
    job consume --user t1 --amount 20 --id t1-c6
    expect_eq "below the account's threshold: balance_low with it" "balance_low t1-c6 50" \
        "$(psql_value "SELECT concat_ws(' ', type, job_id, threshold) FROM credits.events
                        WHERE user_id = 't1' ORDER BY event_id DESC LIMIT 1")"
    job consume --user z1 --amount 1 --id z1-c
    job grant --user z1 --amount 5 --id z1-g
    job consume --user z1 --amount 5 --id z1-c2
    expect_eq "without a threshold: only balance_depleted" "balance_depleted z1-c2" "$(events z1)"
    wait_sql 0 "SELECT count(*) FROM credits.events WHERE published_at IS NULL"
    expect_eq "every event of the jobs reached P:events" \
        "$(psql_value "SELECT count(*) FROM credits.events")" "$(redis XLEN credits:events)"
}

# ------------------------------------------------------------------------
# At least once
# ------------------------------------------------------------------------

# Redis refuses the publication (P:events is not a stream): the events stay
# unpublished in the database, and reach Redis once it takes them again.
check_publication_refused() {
    redis DEL credits:events >/dev/null
    redis SET credits:events not-a-stream >/dev/null
    job grant --user p1 --amount 5 --id p1-g
    job consume --user p1 --amount 5 --id p1-c
    expect_eq "a refused publication leaves the event unpublished" 1 "$(unpublished)"
    redis DEL credits:events >/dev/null
    wait_sql 0 "SELECT count(*) FROM credits.events WHERE published_at IS NULL"
    expect_eq "the sweep's worker publishes it later" 1 "$(in_redis p1 balance_depleted)"
}

# A worker killed -9 between its commit and its publication (Redis refused
# the publication, so the event is committed and unpublished when the
# worker dies): the restarted worker publishes it.
check_killed_before_publishing() {
    redis SET credits:events not-a-stream >/dev/null
    job grant --user k1 --amount 5 --id k1-g
    job consume --user k1 --amount 5 --id k1-c
    expect_eq "the event is committed, not published" 1 "$(unpublished)"
    kill -KILL "$FIRST_WORKER"
    wait "$FIRST_WORKER" 2>/dev/null || true
    redis DEL credits:events >/dev/null
    start_test_worker CREDITS_SWEEP_INTERVAL_MS="$SWEEP_MS"
    wait_sql 0 "SELECT count(*) FROM credits.events WHERE published_at IS NULL"
    expect_eq "the worker killed -9 lost no event: the next one published it" 1 \
        "$(in_redis k1 balance_depleted)"
    stop_worker "$WORKER_PID"
    expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
}

# ------------------------------------------------------------------------
# Two workers, a steady load, lots and holds expiring
# ------------------------------------------------------------------------

check_two_workers() {
    local a b i
    start_test_worker CREDITS_SWEEP_INTERVAL_MS=50 CREDITS_CONSUMER=w-a CREDITS_LOG_LEVEL=debug
    a=$WORKER_PID
    start_test_worker CREDITS_SWEEP_INTERVAL_MS=50 CREDITS_CONSUMER=w-b CREDITS_LOG_LEVEL=debug
    b=$WORKER_PID
    for i in $(seq 1 20); do
        "$CREDITSCTL" grant --user "m$i" --amount 1000 --id "m$i-g" >/dev/null
        "$CREDITSCTL" hold --user "m$i" --amount 10 --ttl 1 --id "m$i-h" >/dev/null
        "$CREDITSCTL" purchase --user "m$i" --pack soon --payment-ref "m$i-p" --id "m$i-buy" >/dev/null
    done
    wait_sql 20 "SELECT count(*) FROM credits.jobs WHERE job_id LIKE 'm%-buy'"
    psql_value "UPDATE credits.lots SET expires_at = now() + interval '1 second',
                       granted_at = now() - interval '2 days'
                 WHERE payment_ref LIKE 'm%-p'" >/dev/null
    # A steady load on the same users while their holds and lots expire.
    for round in 1 2 3 4 5 6; do
        for i in $(seq 1 20); do
            "$CREDITSCTL" consume --user "m$i" --amount 1 --id "m$i-c$round" >/dev/null
        done
        sleep 0.4
    done
    wait_sql 0 "SELECT count(*) FROM credits.holds WHERE hold_id LIKE 'm%-h' AND status = 'open'"
    wait_sql 0 "SELECT count(*) FROM credits.lots WHERE payment_ref LIKE 'm%-p' AND remaining > 0"
    wait_sql 120 "SELECT count(*) FROM credits.jobs WHERE job_id LIKE 'm%-c%'"
    expect_eq "every hold released once" 20 \
        "$(psql_value "SELECT count(DISTINCT job_id) FROM credits.entries
                        WHERE job_id LIKE 'm%-h' AND kind = 'release'")"
    expect_eq "each released hold has one release entry" 20 \
        "$(psql_value "SELECT count(*) FROM credits.entries WHERE job_id LIKE 'm%-h' AND kind = 'release'")"
    expect_eq "each lot written off once" 20 \
        "$(psql_value "SELECT count(*) FROM credits.entries e JOIN credits.lots l USING (lot_id)
                        WHERE l.payment_ref LIKE 'm%-p' AND e.kind = 'expire'")"
    expect_eq "one hold_expired per hold" 20 \
        "$(psql_value "SELECT count(*) FROM credits.events WHERE type = 'hold_expired' AND user_id LIKE 'm%'")"
    expect_eq "one credits_expired per lot" 20 \
        "$(psql_value "SELECT count(*) FROM credits.events WHERE type = 'credits_expired' AND user_id LIKE 'm%'")"
    expect_eq "no deadlock and no failed batch in either worker's log" 0 \
        "$(cat "$TEST_DIR"/worker-*.log | grep -c 'event=batch_failed\|40P01\|event=sweep_failed' || true)"
    stop_worker "$a"
    stop_worker "$b"
    expect_eq "both workers exit 0" 0 "$WORKER_STATUS"
}

# Retention (CREDITS_EVENTS_RETENTION_DAYS, 30 by default): published
# events older than that go, 1000 per step (three steps here); younger ones
# stay. The kept one comes first, so that it sits in the pruning window.
check_events_pruned() {
    local others
    start_test_worker CREDITS_SWEEP_INTERVAL_MS="$SWEEP_MS"
    others=$(psql_value "SELECT count(*) FROM credits.events")
    psql_value "INSERT INTO credits.events (user_id, type, job_id, at, total, pack, monthly,
                       \"grant\", held, published_at)
                VALUES ('pr-kept', 'balance_depleted', 'pr-kept-job', now() - interval '40 days',
                        0, 0, 0, 0, 0, now() - interval '29 days')" >/dev/null
    psql_value "INSERT INTO credits.events (user_id, type, job_id, at, total, pack, monthly,
                       \"grant\", held, published_at)
                SELECT 'pr-old', 'balance_depleted', 'pr-old-' || i, now() - interval '40 days',
                       0, 0, 0, 0, 0, now() - interval '31 days'
                FROM generate_series(1, 2500) i" >/dev/null
    wait_sql 0 "SELECT count(*) FROM credits.events WHERE user_id = 'pr-old'" ||
        fail "the events past their retention were pruned"
    expect_eq "2,500 events published 31 days ago are pruned" 0 \
        "$(psql_value "SELECT count(*) FROM credits.events WHERE user_id = 'pr-old'")"
    expect_eq "one published 29 days ago stays, ahead of them" 1 \
        "$(psql_value "SELECT count(*) FROM credits.events WHERE user_id = 'pr-kept'")"
    expect_eq "the other events stay" "$others" \
        "$(psql_value "SELECT count(*) FROM credits.events WHERE user_id NOT LIKE 'pr-%'")"
    stop_worker "$WORKER_PID"
    expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
}

check_audit() {
    ctl audit
    expect_eq "creditsctl audit is clean after the sweep" 0 "$STATUS"
    expect_match "the audit says so" 'clean' "$OUT"
}

check_hold_released_by_sweep
check_lot_expired_by_sweep
check_notice_once_per_lot
check_thresholds
check_publication_refused
check_killed_before_publishing
check_two_workers
check_events_pruned
check_audit
finish
