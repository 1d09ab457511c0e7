#!/usr/bin/env bash
# test_credit_bounds.sh -- a user's credits can never sum past a 64-bit
# integer: a lot of more than 10^12 credits, written by hand, is refused by
# the database (schemas/007_credit_bounds.sql), so the worker keeps
# deciding that user's jobs instead of stopping on the sum. Also: a
# rejection decided against the ledger is logged at info with its error,
# as the ones decided without it are.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"

# hand_lot USER CREDITS -- a pack lot written straight into the table.
hand_lot() {
    psql "$CREDITS_DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 -c "
        INSERT INTO credits.lots (lot_id, user_id, kind, granted, remaining, granted_at,
                                  expires_at, job_id, pack_id, payment_ref)
        VALUES (nextval('credits.lot_id_seq'), '$1', 'pack', $2, $2, now(),
                now() + interval '90 days', 'hand-' || currval('credits.lot_id_seq'), 'starter',
                'hand-ref-' || currval('credits.lot_id_seq'))" 2>&1 || true
}

migrate
"$CREDITSCTL" pack set starter --credits 1000000000000 >/dev/null
start_test_worker
LOG="$TEST_DIR/worker-0.log"

out=$(hand_lot big 5000000000000000000)
expect_match "a lot of 5 * 10^18 credits is refused" 'violates check constraint "lots_granted_bound"' "$out"
out=$(hand_lot big 5000000000000000000)
expect_match "so is a second one" 'lots_granted_bound' "$out"
expect_eq "the bound itself is allowed" "" "$(hand_lot big 1000000000000)"
expect_eq "and another" "" "$(hand_lot big 1000000000000)"
ctl consume --user big --amount 7 --id cb-1 --wait --timeout 10
expect_match "the user's consume is decided" '"status":"applied".*"total":1999999999993.*"charged":7' \
    "$OUT"
ctl purchase --user big --pack starter --payment-ref cb-pay --id cb-2 --wait --timeout 10
expect_match "a purchase of the largest pack on top is decided" '"status":"applied".*"total":2999999999993' \
    "$OUT"
expect_eq "the worker is still running" 0 "$(kill -0 "$WORKER_PID" 2>/dev/null; echo $?)"

# Rejections against the ledger are logged at info.
ctl consume --user poor --amount 5 --id cb-poor --wait --timeout 10
expect_match "insufficient_credits is the result" '"error":"insufficient_credits"' "$OUT"
expect_match "...and logged at info with its error and message" \
    'level=info event=job_rejected entry=[0-9]+-[0-9]+ id="cb-poor" error=insufficient_credits message="usable balance 0 is below amount 5"' \
    "$(cat "$LOG")"
ctl purchase --user poor --pack nope --payment-ref cb-pay-2 --id cb-nope --wait --timeout 10
expect_match "unknown_pack is logged at info" 'level=info event=job_rejected .*id="cb-nope" error=unknown_pack' \
    "$(cat "$LOG")"
ctl consume --user poor --amount 5 --id cb-poor --wait --timeout 10
expect_eq "a replay is not logged as a new rejection" 1 "$(grep -c 'id="cb-poor" error=insufficient_credits' "$LOG")"
stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
