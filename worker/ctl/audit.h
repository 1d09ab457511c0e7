/*
 * audit.h -- `creditsctl audit`: checks the ledger invariants of contract
 * section 5 (and the bookkeeping they rest on) in the database, in one
 * REPEATABLE READ snapshot, and prints a report; exit 1 on any violation.
 *
 * Owns the checks' SQL and the report. Reads only; never repairs.
 */
#ifndef CREDITS_WORKER_CTL_AUDIT_H
#define CREDITS_WORKER_CTL_AUDIT_H

#include "worker/ctl/ctl.h"

/* Example rows printed per failed check, by default and at most. */
#define AUDIT_EXAMPLES_DEFAULT 5
#define AUDIT_EXAMPLES_MAX 1000

extern const struct command audit_command;

#endif
