#!/usr/bin/env bash
# test_poison.sh -- a job the database refuses fails its batch again and
# again: the worker must isolate it, dead-letter it alone with the database's
# error, and decide every other job of the batch. Also: job streams are
# trimmed once the group has acknowledged their entries, never before.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

migrate
"$CREDITSCTL" plan set pro --monthly 1000 >/dev/null

# The database refuses one job for good: a trigger raises for its ID, as a
# broken constraint or a bad row would. Another job fails twice with a
# serialization failure, then goes through (a sequence counts the attempts:
# it does not roll back with them).
psql_value "CREATE SEQUENCE credits.test_attempts;
CREATE FUNCTION credits.test_poison() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    IF NEW.job_id = 'p-poison' THEN RAISE EXCEPTION 'this job is poisoned'; END IF;
    IF NEW.job_id = 'p-transient' AND nextval('credits.test_attempts') <= 2 THEN
        RAISE EXCEPTION 'try again' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END \$\$;
CREATE TRIGGER test_poison BEFORE INSERT ON credits.jobs
    FOR EACH ROW EXECUTE FUNCTION credits.test_poison();" >/dev/null

"$CREDITSCTL" allocate --user p1 --plan pro --period 2026-11 --id p-alloc >/dev/null
for i in $(seq 1 10); do "$CREDITSCTL" consume --user p1 --amount 1 --id "p-c$i" >/dev/null; done
"$CREDITSCTL" consume --user p1 --amount 1 --id p-poison >/dev/null
for i in $(seq 11 20); do "$CREDITSCTL" consume --user p1 --amount 1 --id "p-c$i" >/dev/null; done

# One batch holds all 22 jobs; the default batch size is far larger.
start_worker
for _ in $(seq 1 200); do
    [ "$(redis XLEN credits:dead)" -ge 1 ] && [ "$(redis EXISTS credits:result:p-c20)" = 1 ] && break
    sleep 0.1
done

applied=0
for i in $(seq 1 20); do
    redis --raw GET "credits:result:p-c$i" | tr -d '\000' | grep -aq applied && applied=$((applied + 1))
done
expect_eq "the 20 other consumes of the batch are applied" 20 "$applied"
expect_eq "the allocate is applied" 1 \
    "$(redis --raw GET credits:result:p-alloc | tr -d '\000' | grep -ac applied)"
expect_eq "the poisoned job gets no result (it was never decided)" "" \
    "$(redis --raw GET credits:result:p-poison | tr -d '\000')"
expect_eq "exactly one dead letter" 1 "$(redis XLEN credits:dead)"
dead=$(redis --raw XRANGE credits:dead - + | tr -d '\000')
expect_match "the dead letter names the database's error" \
    'database error P0001: this job is poisoned' "$dead"
expect_match "the dead letter keeps the job's bytes" 'p-poison' "$dead"
expect_eq "the ledger holds the 20 consumes and nothing of the poisoned job" "20|0" \
    "$(psql_value "SELECT count(*) FILTER (WHERE kind = 'consume'),
                          count(*) FILTER (WHERE job_id = 'p-poison')
                     FROM credits.entries")"
expect_eq "the balance is 1000 - 20" 980 \
    "$(psql_value "SELECT sum(remaining) FROM credits.lots WHERE user_id = 'p1'")"
expect_eq "nothing is left pending" 0 "$(redis XPENDING credits:jobs:consume credits-worker | head -1)"
expect_match "the worker logged the isolation" 'event=job_dead_lettered id="p-poison"' \
    "$(cat "$TEST_DIR"/worker-0.log)"

# Trimming: every entry is acknowledged, so the job streams empty within a
# couple of the worker's one-second cycles.
for _ in $(seq 1 50); do
    [ "$(redis XLEN credits:jobs:consume)" = 0 ] && break
    sleep 0.1
done
expect_eq "the acknowledged consume entries are trimmed" 0 "$(redis XLEN credits:jobs:consume)"
expect_eq "the acknowledged allocate entry is trimmed" 0 "$(redis XLEN credits:jobs:allocate)"

# A pending entry is never trimmed: one read by another consumer and not
# acknowledged stays, with everything after it. (The worker is stopped while
# the other consumer takes it, or it would take it first.)
stop_worker "$WORKER_PID"
"$CREDITSCTL" consume --user p1 --amount 1 --id p-held >/dev/null
redis XREADGROUP GROUP credits-worker someone-else COUNT 1 STREAMS credits:jobs:consume '>' \
    >/dev/null
start_worker
"$CREDITSCTL" consume --user p1 --amount 1 --id p-after --wait >/dev/null
sleep 2.5 # two trim cycles
expect_eq "the entry pending with another consumer is not trimmed" 1 \
    "$(redis XPENDING credits:jobs:consume credits-worker | head -1)"
expect_eq "nor is the entry after it" 2 "$(redis XLEN credits:jobs:consume)"

# A transient failure (SQLSTATE 40001) rolls the batch back and retries it
# with backoff; the third attempt commits.
"$CREDITSCTL" consume --user p1 --amount 1 --id p-transient --wait --timeout 20 >/dev/null || true
expect_match "a job whose batch failed twice transiently is applied" applied \
    "$(redis --raw GET credits:result:p-transient | tr -d '\000')"
expect_eq "the two failed attempts were retried, not dead-lettered" 2 \
    "$(grep -c 'event=batch_retry' "$TEST_DIR"/worker-1.log)"
expect_eq "it was applied once" 1 \
    "$(psql_value "SELECT count(*) FROM credits.entries WHERE job_id = 'p-transient'")"

# A job stream deleted under the running worker: its reads fail (the group
# is gone with the stream); it reconnects, creates the group anew and serves
# the next job instead of spinning on the error.
redis DEL credits:jobs:consume >/dev/null
sleep 0.5
"$CREDITSCTL" consume --user p1 --amount 1 --id p-recreated --wait --timeout 10 >/dev/null || true
expect_match "a job sent after the stream was deleted is decided" applied \
    "$(redis --raw GET credits:result:p-recreated | tr -d '\000')"
expect_match "the failed read is logged" 'event=read_failed' "$(cat "$TEST_DIR"/worker-1.log)"

stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
