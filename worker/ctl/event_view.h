/*
 * event_view.h -- how creditsctl shows one entry of {prefix}:events
 * (contract 9.8): its `event` bytes decoded with the worker's codec, as a
 * line of a table for people or as a JSON object with every key of the
 * event; an entry whose bytes are no event is shown as such, with its entry
 * ID and its bytes in hex, never dropped.
 *
 * Owns that text only. Does not own reading the stream (events.c), the
 * wire format (core/codec.h) or the table and JSON syntax (table.h,
 * json_out.h). Pure: writes only to the FILE or writer it is given.
 */
#ifndef CREDITS_WORKER_CTL_EVENT_VIEW_H
#define CREDITS_WORKER_CTL_EVENT_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "worker/ctl/json_out.h"

/* A stream entry ID: "ms-seq", each part at most 20 digits. */
#define EVENT_VIEW_ENTRY_BYTES 48
/* Bytes kept of an entry that is not an event, for its hex in JSON. An
 * event is about 200 bytes: more than this is no event of ours anyway. */
#define EVENT_VIEW_HEAD_BYTES 512
/* Of those, the bytes a table line shows. */
#define EVENT_VIEW_TABLE_HEX_BYTES 16
/* "2026-01-02T03:04:05Z", or a Unix time in ms past the calendar's end. */
#define EVENT_VIEW_TIME_BYTES 32
#define EVENT_VIEW_COLS 8
/* A cell: a user or job ID (128 bytes) with a key before it fits. */
#define EVENT_VIEW_CELL_BYTES 256

/* One entry of the events stream, copied out of the Redis reply. */
struct event_view {
    char entry[EVENT_VIEW_ENTRY_BYTES]; /* the stream entry ID */
    bool is_event;                      /* the `event` bytes decode as one */
    struct event event;                 /* when is_event */
    bool has_field;                     /* the entry has an `event` field */
    size_t bytes;                       /* the length of its value */
    size_t head_len;                    /* not an event: the bytes kept */
    unsigned char head[EVENT_VIEW_HEAD_BYTES];
};

/*
 * Reads the entry `entry` (entry_len bytes) whose `event` field holds `len`
 * bytes at `bytes` (has_field false: it has none; bytes may then be NULL),
 * decoding them with codec_decode_event(). Everything is borrowed until
 * return; `view` keeps copies. Any bytes at all are fine.
 */
void event_view_read(struct event_view *view, const char *entry, size_t entry_len,
                     const void *bytes, size_t len, bool has_field);

/* Whether the entry is shown under `--user user` (NULL: every entry is;
 * otherwise only the events of that user). */
bool event_view_matches(const struct event_view *view, const char *user);

/* A Unix time in ms as UTC ISO 8601 to the second, as creditsctl prints
 * every time ("2026-01-02T03:04:05Z"; the ms are cut, as the database's
 * to_char does); "<ms> ms" for a time outside the years 0 to 9999. */
void event_view_time(int64_t ms, char out[EVENT_VIEW_TIME_BYTES]);

/* The columns of the table: their names, which align right (numbers). */
extern const char *const event_view_header[EVENT_VIEW_COLS];
extern const bool event_view_right[EVENT_VIEW_COLS];

/* The cells of one table line: event_id, time, type, user, job, details
 * (the type's own keys, as key=value: threshold; lot credits expires_at;
 * lot credits; hold released), and the balance's total and held. An entry
 * that is not an event: type "(not an event)", details its entry ID, length
 * and the hex of its first EVENT_VIEW_TABLE_HEX_BYTES. Cells without a
 * value are NULL (the table prints "-"); the others point into `row`.
 * Raw text: the table makes each cell safe for a terminal. */
struct event_view_row {
    const char *cells[EVENT_VIEW_COLS];
    char text[EVENT_VIEW_COLS][EVENT_VIEW_CELL_BYTES];
};
void event_view_row(const struct event_view *view, struct event_view_row *row);

/*
 * Writes the entry as one JSON value (key: see json_out.h): an event as
 * {"entry", then every key of the event in the codec's order: "v",
 * "event_id", "type", "user", "at" (Unix ms), "balance" {total, pack,
 * monthly, grant, held}, "job", then its type's keys}; an entry that is not
 * an event as {"entry", "error": "not an event" | "no event field",
 * "bytes": its length, "hex": its first EVENT_VIEW_HEAD_BYTES in hex}.
 */
void event_view_json(struct json *j, const char *key, const struct event_view *view);

#endif
