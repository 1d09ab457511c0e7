# shellcheck shell=bash
# ctl_lib.sh -- helpers of the creditsctl test scripts (source it after
# lib.sh): run creditsctl capturing its output, read JSON, wait for things.
#
# JSON is parsed by PostgreSQL's own json type (strict RFC 8259), which the
# tests have anyway, so no jq, python or node is needed.

# ctl ARGS... -- runs creditsctl; sets OUT (stdout), ERR (stderr), STATUS.
# shellcheck disable=SC2034 # read by the scripts that source this
ctl() {
    STATUS=0
    OUT=$("$CREDITSCTL" "$@" 2>"$TEST_DIR/ctl.err") || STATUS=$?
    ERR=$(cat "$TEST_DIR/ctl.err")
}

# count_lines REGEX TEXT -- how many lines of TEXT match the extended REGEX.
count_lines() { grep -cE -- "$1" <<<"$2" || true; }

# json_get JSON PATH -- the value at PATH ('{dead,0,job_hex}', '{}' for the
# whole document) as text; exit status non-zero when JSON does not parse.
json_get() {
    printf '%s\n' "SELECT (:'j'::json) #>> :'p';" |
        psql "$CREDITS_DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 -v j="$1" -v p="$2" 2>/dev/null
}

# expect_json WHAT TEXT -- TEXT is one JSON object on one line.
expect_json() {
    local type
    if [ "$(wc -l <<<"$2")" != 1 ]; then
        fail "$1: not one line: [$2]"
        return
    fi
    type=$(printf '%s\n' "SELECT json_typeof(:'j'::json);" |
        psql "$CREDITS_DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 -v j="$2" 2>&1) || true
    expect_eq "$1" object "$type"
}

# wait_until TRIES COMMAND... -- runs COMMAND every 0.1 s until it succeeds,
# at most TRIES times; the status of the last run.
wait_until() {
    local tries=$1 i
    shift
    for ((i = 0; i < tries; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

# value_is EXPECTED COMMAND... -- COMMAND prints EXPECTED (for wait_until).
value_is() {
    local expected=$1
    shift
    [ "$("$@" 2>/dev/null)" = "$expected" ]
}

# start_test_worker [ENV=VALUE...] -- start_worker with the HTTP endpoint off, so that
# scripts running at the same time do not fight over its port.
start_test_worker() { start_worker CREDITS_HTTP_ADDR= "$@"; }

# copy_job FROM TO [FIELD VALUE]... -- XADDs to TO the fields given, then
# `job` with the bytes of FROM's newest entry (copied inside Redis, so the
# bytes never pass through the shell); prints the new entry's ID. Jobs are
# made with creditsctl under another prefix, which no worker reads.
COPY_JOB_LUA='local e = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", 1)[1]
local args = {"XADD", KEYS[2], "*"}
for i = 1, #ARGV do args[#args + 1] = ARGV[i] end
args[#args + 1] = "job"
args[#args + 1] = e[2][2]
return redis.call(unpack(args))'
copy_job() {
    local from=$1 to=$2
    shift 2
    redis EVAL "$COPY_JOB_LUA" 2 "$from" "$to" "$@"
}
