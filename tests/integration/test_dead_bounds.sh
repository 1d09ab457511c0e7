#!/usr/bin/env bash
# test_dead_bounds.sh -- hostile producers cannot grow the worker or Redis:
# entries of 1 MB are rejected with at most 4096 bytes of each kept in its
# dead letter (with job_bytes and job_sha256 beside it), P:dead is trimmed
# to about CREDITS_DEAD_MAXLEN, a dead letter is written once even when its
# publication is repeated, and every job whose `id` can be read gets its
# invalid_job result and reply: over 4096 bytes, a key twice, a bad entry
# after the id.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ctl_lib.sh
. "$(dirname "$0")/ctl_lib.sh"

WAIT_TRIES=600 # 60 s
BIG=1048576

# mp_str TEXT -- a msgpack fixstr (TEXT under 32 bytes).
mp_str() { printf "\\x$(printf %x $((0xa0 + ${#1})))%s" "$1"; }
# job_head N ID -- a map of N entries starting v, id, type consume, user, reply true.
job_head() {
    printf "\\x$(printf %x $((0x80 + $1)))"
    mp_str v
    printf '\x01'
    mp_str id
    mp_str "$2"
    mp_str type
    mp_str consume
    mp_str user
    mp_str u1
    mp_str reply
    printf '\xc3'
}
# big_job ID FILE -- a job whose last value is a str32 of 1 MB.
big_job() {
    { job_head 6 "$1"; mp_str pad; printf '\xdb\x00\x10\x00\x00'; head -c "$BIG" /dev/zero | tr '\0' p; } >"$2"
}
pending() { redis XPENDING credits:jobs:consume credits-worker | head -1; }
result_text() { redis --raw GET "credits:result:$1" | tr -cd '[:print:]'; }
# All decided: the last entry's result is out and nothing is pending.
drained() { [ "$(redis EXISTS "credits:result:$1")" = 1 ] && [ "$(pending)" = 0 ]; }
# The longest `job` field of any dead letter.
DEAD_JOB_MAX='local n = 0
for _, e in ipairs(redis.call("XRANGE", KEYS[1], "-", "+")) do
  for i = 1, #e[2], 2 do
    if e[2][i] == "job" and #e[2][i + 1] > n then n = #e[2][i + 1] end
  end
end
return n'
# dead_field ENTRY FIELD -- a field of the dead letter of consume entry ENTRY.
DEAD_FIELD='for _, e in ipairs(redis.call("XRANGE", KEYS[1], "-", "+")) do
  local f = {}
  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
  if f.entry == ARGV[1] then return f[ARGV[2]] end
end
return false'
dead_field() { redis --raw EVAL "$DEAD_FIELD" 1 credits:dead "$1" "$2"; }
# dead_id_of ENTRY -- the ID of the dead letter of consume entry ENTRY.
dead_id_of() {
    redis --raw EVAL 'for _, e in ipairs(redis.call("XRANGE", KEYS[1], "-", "+")) do
  for i = 1, #e[2], 2 do if e[2][i] == "entry" and e[2][i + 1] == ARGV[1] then return e[1] end end
end
return false' 1 credits:dead "$1"
}

migrate
# Small stream nodes, so that MAXLEN ~ trims at this test's scale.
redis CONFIG SET stream-node-max-entries 10 >/dev/null
start_worker CREDITS_HTTP_ADDR= CREDITS_DEAD_MAXLEN=40
LOG="$TEST_DIR/worker-0.log"
"$CREDITSCTL" consume --user u1 --amount 1 --id warm-up --wait --timeout 10 >/dev/null || true

# ------------------------------------------------------------------------
# 30 jobs and 30 garbage entries of 1 MB each, in one read.
# ------------------------------------------------------------------------

stop_worker "$WORKER_PID"
big_job big-1 "$TEST_DIR/big.bin"
redis -x XADD credits:jobs:consume '*' job <"$TEST_DIR/big.bin" >/dev/null
for i in $(seq 2 30); do
    big_job "big-$i" "$TEST_DIR/big-i.bin"
    redis -x XADD credits:jobs:consume '*' job <"$TEST_DIR/big-i.bin" >/dev/null
done
head -c "$BIG" /dev/urandom >"$TEST_DIR/garbage.bin"
printf '\xc1' | dd of="$TEST_DIR/garbage.bin" bs=1 count=1 conv=notrunc 2>/dev/null
for _ in $(seq 1 30); do
    garbage_entry=$(redis -x XADD credits:jobs:consume '*' job <"$TEST_DIR/garbage.bin")
done
# A key twice, and a bad entry after the id: small, but no valid job.
{ job_head 7 dup-1; mp_str amount; printf '\x01'; mp_str amount; printf '\x01'; } |
    redis -x XADD credits:jobs:consume '*' job >/dev/null
after_entry=$({ job_head 7 after-1; mp_str amount; printf '\x01'; mp_str x; printf '\xc1'; } |
    redis -x XADD credits:jobs:consume '*' job)
start_worker CREDITS_HTTP_ADDR= CREDITS_DEAD_MAXLEN=40
LOG="$TEST_DIR/worker-1.log"
wait_until "$WAIT_TRIES" drained after-1 || true
expect_eq "every entry is decided and acknowledged" 0 "$(pending)"
expect_eq "the worker is still running" 0 "$(kill -0 "$WORKER_PID" 2>/dev/null; echo $?)"
hwm_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$WORKER_PID/status")
echo "# worker peak RSS: $hwm_kb kB for 60 MB of entries read at once"
expect_eq "the worker's peak RSS stays near one copy of the reply (under 110 MB)" 1 \
    "$([ "$hwm_kb" -lt 112640 ] && echo 1 || echo 0)"

size=$(stat -c %s "$TEST_DIR/big.bin")
expect_match "an over-long job with a readable id: invalid_job at P:result:{id}" \
    "invalid_job.*job is $size bytes; the limit is 4096" "$(result_text big-1)"
expect_eq "...and pushed to P:reply:{id}, as it asked" 1 "$(redis LLEN credits:reply:big-1)"
answered=0
for i in $(seq 1 30); do [ "$(redis EXISTS "credits:result:big-$i")" = 1 ] && answered=$((answered + 1)); done
expect_eq "every over-long job got its result" 30 "$answered"
expect_match "a key twice with a readable id: its result" "invalid_job.*duplicate key 'amount'" \
    "$(result_text dup-1)"
expect_eq "...and its reply" 1 "$(redis LLEN credits:reply:dup-1)"
expect_match "a bad entry after the id: its result" 'invalid_job.*not msgpack' "$(result_text after-1)"
expect_eq "...and its reply" 1 "$(redis LLEN credits:reply:after-1)"

expect_eq "no dead letter holds more than 4096 bytes of its job" 4096 \
    "$(redis EVAL "$DEAD_JOB_MAX" 1 credits:dead)"
dead_len=$(redis XLEN credits:dead)
expect_eq "P:dead is trimmed to about CREDITS_DEAD_MAXLEN (40 <= $dead_len <= 50)" 1 \
    "$([ "$dead_len" -ge 40 ] && [ "$dead_len" -le 50 ] && echo 1 || echo 0)"
expect_eq "the newest dead letters are kept" "$after_entry" \
    "$(redis --raw EVAL 'local e = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", 1)[1]
for i = 1, #e[2], 2 do if e[2][i] == "entry" then return e[2][i + 1] end end' 1 credits:dead)"
sha=$(sha256sum "$TEST_DIR/garbage.bin" | cut -d' ' -f1)
expect_eq "a dead letter names the original length" "$BIG" "$(dead_field "$garbage_entry" job_bytes)"
expect_eq "a dead letter carries the original's SHA-256" "$sha" \
    "$(dead_field "$garbage_entry" job_sha256)"

# Redis holds the bounded dead letters, not the megabytes (the job stream's
# acknowledged entries are trimmed every second).
wait_until 100 value_is 0 redis XLEN credits:jobs:consume || true
used=$(redis INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')
echo "# Redis used_memory: $used bytes"
expect_eq "Redis memory stays bounded (under 20 MB)" 1 "$([ "$used" -lt 20971520 ] && echo 1 || echo 0)"

# What the operator sees.
id=$(dead_id_of "$garbage_entry")
ctl dead list --limit 3
expect_match "dead list says the job was cut" "not a job \\(invalid_job\\): $BIG bytes \\(cut: 4096 kept\\)" "$OUT"
ctl dead show "$id"
expect_match "dead show: the whole length, cut" "job bytes +$BIG \\(cut: the first 4096 kept\\)" "$OUT"
expect_match "dead show: the digest" "job sha256 +$sha" "$OUT"
ctl dead show "$id" --json
expect_eq "dead show --json: bytes, kept, cut, digest" "$BIG 4096 true $sha" \
    "$(json_get "$OUT" '{job_bytes}') $(json_get "$OUT" '{job_kept_bytes}') $(json_get "$OUT" '{job_cut}') $(json_get "$OUT" '{job_sha256}')"
ctl dead retry "$id" --force
expect_eq "dead retry of a cut job exits 1, even with --force" 1 "$STATUS"
expect_match "dead retry of a cut job says why" 'holds only the first 4096 of the job' "$ERR"

# ------------------------------------------------------------------------
# One dead letter per decision, when the publication is repeated: the
# worker's Redis user may not SET result keys for a while, so every publish
# of the batch fails after its dead letter was sent, and is sent again.
# ------------------------------------------------------------------------

stop_worker "$WORKER_PID"
redis ACL SETUSER w on '>pw' '~*' '&*' +@all -set '(+set ~credits:dead:seen:*)' >/dev/null
printf '\x91\xc1' | redis -x XADD credits:jobs:consume '*' job >/dev/null
once_entry=$(redis XREVRANGE credits:jobs:consume + - COUNT 1 | head -1)
{ job_head 5 needs-set; } | redis -x XADD credits:jobs:consume '*' job >/dev/null
start_worker CREDITS_HTTP_ADDR= CREDITS_REDIS_URL="redis://w:pw@127.0.0.1:$CREDITS_TEST_REDIS_PORT"
LOG="$TEST_DIR/worker-2.log"
for _ in $(seq 1 50); do
    [ "$(grep -c 'event=publish_failed' "$LOG" || true)" -ge 3 ] && break
    sleep 0.1
done
expect_eq "the publication was repeated" 1 \
    "$([ "$(grep -c 'event=publish_failed' "$LOG" || true)" -ge 3 ] && echo 1 || echo 0)"
redis ACL SETUSER w +set >/dev/null
wait_until "$WAIT_TRIES" drained needs-set || true
expect_eq "then it went through" 1 "$(redis EXISTS credits:result:needs-set)"
count=$(redis --raw EVAL 'local n = 0
for _, e in ipairs(redis.call("XRANGE", KEYS[1], "-", "+")) do
  for i = 1, #e[2], 2 do if e[2][i] == "entry" and e[2][i + 1] == ARGV[1] then n = n + 1 end end
end
return n' 1 credits:dead "$once_entry")
expect_eq "the entry has exactly one dead letter" 1 "$count"

stop_worker "$WORKER_PID"
expect_eq "the worker exits 0 on SIGTERM" 0 "$WORKER_STATUS"
finish
