#!/bin/sh
# prisma-generate.sh -- `prisma generate` without any download.
#
# Prisma 7 makes its client with the WebAssembly tools inside the `prisma`
# package, and the client runs on a driver adapter (@prisma/adapter-pg) with
# the WebAssembly query compiler: no engine binary is involved. The CLI
# still checks for its schema-engine binary before `generate` and fetches it
# when it is missing, which fails where only the npm registry can be
# reached. PRISMA_SCHEMA_ENGINE_BINARY satisfies that check; it points at
# tools/no-schema-engine, which `generate` never runs and which fails
# loudly if anything else does (prisma migrate and prisma db need the real
# schema engine; the credits tables are migrated by `creditsctl migrate`).
# A PRISMA_SCHEMA_ENGINE_BINARY already set is kept.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PRISMA_SCHEMA_ENGINE_BINARY=${PRISMA_SCHEMA_ENGINE_BINARY:-$here/no-schema-engine}
export PRISMA_SCHEMA_ENGINE_BINARY
exec prisma generate "$@"
