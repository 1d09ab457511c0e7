/*
 * log.h -- one line per event on stderr, logfmt:
 *   ts=2026-11-24T07:25:05.123Z level=info event=batch_committed jobs=12
 * or JSON (CREDITS_LOG_FORMAT=json), with the same keys:
 *   {"ts":"2026-11-24T07:25:05.123Z","level":"info","event":"batch_committed","jobs":12}
 *
 * Owns the line format and the level filter. Callers never put a secret in
 * a log line (URLs are redacted with redis_url_redacted()).
 */
#ifndef CREDITS_WORKER_COMMON_LOG_H
#define CREDITS_WORKER_COMMON_LOG_H

#include "worker/common/config.h"

/* Set once at start-up, before the event loop runs; read-only afterwards. */
void log_set_level(enum log_level level);
void log_set_format(enum log_format format);

/* Writes one line: ts, level, event, then `fields` (printf-style, already in
 * key=value form; quote values that may hold spaces with log_quote()). */
void log_event(enum log_level level, const char *event, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes `text` as a logfmt quoted value into out: control bytes and quotes
 * escaped, truncated to fit. Returns out. */
const char *log_quote(const char *text, char *out, size_t out_len);

#endif
