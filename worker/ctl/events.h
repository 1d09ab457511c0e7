/*
 * events.h -- `creditsctl events`: the newest events of {prefix}:events
 * (contract 9.8), all of them or one user's, and with --follow the new ones
 * as they come, until SIGINT or SIGTERM.
 *
 * Owns reading that stream (XREVRANGE back in bounded pages, XREAD BLOCK
 * forward) and the end of --follow. Does not own how an entry is shown
 * (event_view.h), the wire format (core/codec.h) or who writes the events
 * (the worker's outbox). Blocking hiredis; no Postgres.
 */
#ifndef CREDITS_WORKER_CTL_EVENTS_H
#define CREDITS_WORKER_CTL_EVENTS_H

#include "worker/ctl/ctl.h"

#define EVENTS_LIMIT_DEFAULT 20
#define EVENTS_LIMIT_MAX 1000

extern const struct command events_command;

#endif
