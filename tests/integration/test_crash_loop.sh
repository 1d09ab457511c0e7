#!/usr/bin/env bash
# test_crash_loop.sh -- a job that kills the worker while it is applied is
# isolated without taking its batch-mates with it, and a crash loop never
# stops the service for good: restarted as systemd would restart it, the
# worker decides the innocent jobs one at a time, and only the culprit,
# killed with again and again, is set aside on the dead-letter stream.
#
# The crash is real, from outside: the culprit's insert into credits.jobs
# sleeps (a trigger on its ID; what a job that makes the worker hang or
# blow up looks like from here), and while the worker's backend sleeps in
# it the test kills the worker with SIGKILL, as the kernel's OOM killer or a
# crash would, and ends the orphaned backend as PostgreSQL would once it
# notices. Nothing in the worker knows of the test.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

MAX_DELIVERIES=3
STARTS_MAX=12 # StartLimitBurst-like: the test gives up after this many starts
decided() { psql_value "SELECT count(*) FROM credits.jobs WHERE job_id LIKE 'cl-%'"; }
pending() { redis XPENDING credits:jobs:consume credits-worker | head -1; }
# The worker's backend is applying the culprit: asleep in the trigger.
applying_culprit() {
    [ "$(psql_value "SELECT count(*) FROM pg_stat_activity
                      WHERE application_name = 'credits-worker' AND wait_event = 'PgSleep'")" -ge 1 ]
}
end_orphans() {
    psql_value "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = 'credits-worker'" >/dev/null
}

migrate
"$CREDITSCTL" plan set pro --monthly 1000 >/dev/null
"$CREDITSCTL" allocate --user u1 --plan pro --period 2026-11 --id cl-alloc >/dev/null
psql_value "CREATE FUNCTION credits.test_hang() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    IF NEW.job_id = 'cl-culprit' THEN PERFORM pg_sleep(60); END IF;
    RETURN NEW;
END \$\$;
CREATE TRIGGER test_hang BEFORE INSERT ON credits.jobs
    FOR EACH ROW EXECUTE FUNCTION credits.test_hang();" >/dev/null
for i in $(seq 1 10); do "$CREDITSCTL" consume --user u1 --amount 1 --id "cl-$i" >/dev/null; done
"$CREDITSCTL" consume --user u1 --amount 1 --id cl-culprit >/dev/null
for i in $(seq 11 20); do "$CREDITSCTL" consume --user u1 --amount 1 --id "cl-$i" >/dev/null; done

# The first start reads all 22 entries in one batch; the culprit's insert
# hangs the whole batch. Each later start is a restart after a kill.
starts=0 kills=0
while [ "$starts" -lt "$STARTS_MAX" ]; do
    start_worker CREDITS_HTTP_ADDR= CREDITS_MAX_DELIVERIES="$MAX_DELIVERIES"
    starts=$((starts + 1))
    outcome=done
    for _ in $(seq 1 200); do
        if applying_culprit; then outcome=hang; break; fi
        if [ "$(pending)" = 0 ] && [ "$(redis XLEN credits:dead)" -ge 1 ]; then break; fi
        sleep 0.05
    done
    if [ "$outcome" = hang ]; then
        kill -KILL "$WORKER_PID"
        wait "$WORKER_PID" 2>/dev/null || true
        end_orphans
        kills=$((kills + 1))
        continue
    fi
    break
done
echo "# $starts starts, $kills kills"
expect_eq "the service came back: nothing is left pending" 0 "$(pending)"
expect_eq "the culprit killed the worker MAX_DELIVERIES times, then was set aside" \
    "$MAX_DELIVERIES" "$kills"

applied=0
for i in $(seq 1 20); do
    redis --raw GET "credits:result:cl-$i" | tr -d '\000' | grep -aq applied && applied=$((applied + 1))
done
expect_eq "the 20 innocent jobs of the batch are applied" 20 "$applied"
expect_eq "each of them exactly once" "20/20" \
    "$(psql_value "SELECT count(*) FILTER (WHERE n = 1) || '/' || count(*)
                     FROM (SELECT job_id, count(*) AS n FROM credits.entries
                            WHERE job_id LIKE 'cl-%' AND job_id <> 'cl-alloc'
                            GROUP BY job_id) AS e")"
expect_eq "exactly one dead letter" 1 "$(redis XLEN credits:dead)"
dead=$(redis --raw XRANGE credits:dead - + | tr -cd '[:print:]\n')
expect_match "it is the culprit's" 'cl-culprit' "$dead"
expect_match "its reason says why" "delivered $((MAX_DELIVERIES + 1)) times without a decision" "$dead"
expect_eq "the culprit gets no result (it was never decided)" 0 "$(redis EXISTS credits:result:cl-culprit)"
expect_eq "and nothing of it is in the ledger" 0 \
    "$(psql_value "SELECT count(*) FROM credits.jobs WHERE job_id = 'cl-culprit'")"
expect_eq "the balance is 1000 - 20" 980 \
    "$(psql_value "SELECT sum(remaining) FROM credits.lots WHERE user_id = 'u1'")"
expect_match "after a restart, pending entries are read alone" 'event=entry_read_alone' \
    "$(cat "$TEST_DIR"/worker-1.log)"
expect_match "the last start says when the backlog is done" 'event=recovered' \
    "$(cat "$TEST_DIR/worker-$((starts - 1)).log")"

# Back to batches: new jobs are decided as usual.
psql_value "DROP TRIGGER test_hang ON credits.jobs" >/dev/null
"$CREDITSCTL" consume --user u1 --amount 1 --id cl-after --wait --timeout 10 >/dev/null || true
expect_match "a new job after the recovery is applied" applied \
    "$(redis --raw GET credits:result:cl-after | tr -d '\000')"
stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
