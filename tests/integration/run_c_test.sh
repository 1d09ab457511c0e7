#!/usr/bin/env bash
# run_c_test.sh -- runs one C integration test program against a throwaway
# Redis and PostgreSQL (lib.sh), with the schema migrated.
#
#   BUILD_DIR=build tests/integration/run_c_test.sh build/tests/test_worker
#
# The program gets CREDITS_REDIS_URL, CREDITS_DATABASE_URL,
# CREDITS_TEST_REDIS_PORT, CREDITS_TEST_PG_PORT and BUILD_DIR in its
# environment. Exits with the program's status. Not `exec`: lib.sh's EXIT
# trap must run to stop the servers.

if [ $# -ne 1 ]; then
    echo "usage: run_c_test.sh BINARY" >&2
    exit 2
fi
BINARY=$1

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export BUILD_DIR
"$CREDITSCTL" migrate >/dev/null

status=0
"$BINARY" || status=$?
exit "$status"
