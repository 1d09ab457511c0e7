/*
 * event_view.c -- one entry of {prefix}:events as creditsctl shows it
 * (event_view.h): decoded, as table cells or as JSON. Pure.
 */
#include "worker/ctl/event_view.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "core/codec.h"

enum event_view_col {
    COL_EVENT_ID,
    COL_TIME,
    COL_TYPE,
    COL_USER,
    COL_JOB,
    COL_DETAILS,
    COL_TOTAL,
    COL_HELD,
};
_Static_assert(COL_HELD + 1 == EVENT_VIEW_COLS, "one name per column");

const char *const event_view_header[EVENT_VIEW_COLS] = {
    "event_id", "time", "type", "user", "job", "details", "total", "held",
};
const bool event_view_right[EVENT_VIEW_COLS] = {
    [COL_EVENT_ID] = true,
    [COL_TOTAL] = true,
    [COL_HELD] = true,
};

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

void event_view_read(struct event_view *view, const char *entry, size_t entry_len,
                     const void *bytes, size_t len, bool has_field)
{
    ASSERT(view != NULL && entry != NULL);
    ASSERT(bytes != NULL || len == 0);
    memset(view, 0, sizeof *view);
    size_t id_len = entry_len < sizeof view->entry ? entry_len : sizeof view->entry - 1;
    memcpy(view->entry, entry, id_len);
    view->has_field = has_field;
    view->bytes = has_field ? len : 0;
    view->is_event = has_field && codec_decode_event(bytes, len, &view->event) == 0;
    if (has_field && !view->is_event) {
        view->head_len = len < sizeof view->head ? len : sizeof view->head;
        memcpy(view->head, bytes, view->head_len);
    }
}

bool event_view_matches(const struct event_view *view, const char *user)
{
    ASSERT(view != NULL);
    if (user == NULL)
        return true;
    return view->is_event && strcmp(view->event.user, user) == 0;
}

/* ------------------------------------------------------------------------ */
/* Text                                                                     */
/* ------------------------------------------------------------------------ */

/* The years gmtime_r() and %Y print in four digits. */
#define YEAR_MIN 0
#define YEAR_MAX 9999

void event_view_time(int64_t ms, char out[EVENT_VIEW_TIME_BYTES])
{
    ASSERT(out != NULL);
    /* Rounded down, so that 1 ms before an epoch second is in the second
     * before it, as for positive times. */
    int64_t s = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
    time_t t = (time_t)s;
    struct tm tm;
    if ((int64_t)t != s || gmtime_r(&t, &tm) == NULL || tm.tm_year < YEAR_MIN - 1900 ||
        tm.tm_year > YEAR_MAX - 1900) {
        snprintf(out, EVENT_VIEW_TIME_BYTES, "%" PRId64 " ms", ms);
        return;
    }
    snprintf(out, EVENT_VIEW_TIME_BYTES, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The first `max` bytes of `bytes` in lowercase hex, "..." after them when
 * there are more; `out` holds 2 * max + 4. */
static void hex_text(const unsigned char *bytes, size_t len, size_t max, char *out, size_t out_len)
{
    ASSERT(out_len >= 2 * max + 4);
    size_t n = len < max ? len : max;
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", bytes[i]);
    snprintf(out + 2 * n, 4, "%s", len > max ? "..." : "");
}

/* The type's own keys as "key=value ..."; "" for a type with none. */
static void details_text(const struct event *e, char *out, size_t out_len)
{
    char when[EVENT_VIEW_TIME_BYTES];
    switch (e->type) {
    case EVENT_BALANCE_LOW:
    case EVENT_BALANCE_RECOVERED:
        snprintf(out, out_len, "threshold=%" PRId64, e->threshold);
        return;
    case EVENT_BALANCE_DEPLETED:
        out[0] = '\0';
        return;
    case EVENT_CREDITS_EXPIRING:
        event_view_time(e->expires_at_ms, when);
        snprintf(out, out_len, "lot=%" PRId64 " credits=%" PRId64 " expires_at=%s", e->lot,
                 e->credits, when);
        return;
    case EVENT_CREDITS_EXPIRED:
        snprintf(out, out_len, "lot=%" PRId64 " credits=%" PRId64, e->lot, e->credits);
        return;
    case EVENT_HOLD_EXPIRED:
        snprintf(out, out_len, "hold=%s released=%" PRId64, e->hold, e->released);
        return;
    }
    UNREACHABLE();
}

static void row_event(const struct event *e, struct event_view_row *row)
{
    char(*text)[EVENT_VIEW_CELL_BYTES] = row->text;
    _Static_assert(EVENT_VIEW_CELL_BYTES > EVENT_VIEW_TIME_BYTES, "a time fits a cell");
    snprintf(text[COL_EVENT_ID], EVENT_VIEW_CELL_BYTES, "%" PRId64, e->event_id);
    event_view_time(e->at_ms, text[COL_TIME]);
    snprintf(text[COL_TYPE], EVENT_VIEW_CELL_BYTES, "%s", event_type_name(e->type));
    snprintf(text[COL_USER], EVENT_VIEW_CELL_BYTES, "%s", e->user);
    snprintf(text[COL_JOB], EVENT_VIEW_CELL_BYTES, "%s", e->job);
    details_text(e, text[COL_DETAILS], EVENT_VIEW_CELL_BYTES);
    snprintf(text[COL_TOTAL], EVENT_VIEW_CELL_BYTES, "%" PRId64, e->balance.total);
    snprintf(text[COL_HELD], EVENT_VIEW_CELL_BYTES, "%" PRId64, e->balance.held);
    for (int c = 0; c < EVENT_VIEW_COLS; c++)
        row->cells[c] = text[c][0] != '\0' ? text[c] : NULL;
}

static void row_not_event(const struct event_view *v, struct event_view_row *row)
{
    char hex[2 * EVENT_VIEW_TABLE_HEX_BYTES + 4];
    snprintf(row->text[COL_TYPE], EVENT_VIEW_CELL_BYTES, "(not an event)");
    if (!v->has_field) {
        snprintf(row->text[COL_DETAILS], EVENT_VIEW_CELL_BYTES, "entry %s: no event field",
                 v->entry);
    } else {
        hex_text(v->head, v->head_len, EVENT_VIEW_TABLE_HEX_BYTES, hex, sizeof hex);
        snprintf(row->text[COL_DETAILS], EVENT_VIEW_CELL_BYTES, "entry %s: %zu bytes %s", v->entry,
                 v->bytes, hex);
    }
    row->cells[COL_TYPE] = row->text[COL_TYPE];
    row->cells[COL_DETAILS] = row->text[COL_DETAILS];
}

void event_view_row(const struct event_view *view, struct event_view_row *row)
{
    ASSERT(view != NULL && row != NULL);
    memset(row, 0, sizeof *row);
    if (view->is_event)
        row_event(&view->event, row);
    else
        row_not_event(view, row);
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                     */
/* ------------------------------------------------------------------------ */

/* The keys of the event's type, as codec_encode_event() writes them. */
static void json_own_keys(struct json *j, const struct event *e)
{
    switch (e->type) {
    case EVENT_BALANCE_LOW:
    case EVENT_BALANCE_RECOVERED:
        json_int(j, "threshold", e->threshold);
        return;
    case EVENT_BALANCE_DEPLETED:
        return;
    case EVENT_CREDITS_EXPIRING:
        json_int(j, "lot", e->lot);
        json_int(j, "credits", e->credits);
        json_int(j, "expires_at", e->expires_at_ms);
        return;
    case EVENT_CREDITS_EXPIRED:
        json_int(j, "lot", e->lot);
        json_int(j, "credits", e->credits);
        return;
    case EVENT_HOLD_EXPIRED:
        json_str(j, "hold", e->hold);
        json_int(j, "released", e->released);
        return;
    }
    UNREACHABLE();
}

static void json_event(struct json *j, const struct event *e)
{
    json_int(j, "v", EVENT_VERSION);
    json_int(j, "event_id", e->event_id);
    json_str(j, "type", event_type_name(e->type));
    json_str(j, "user", e->user);
    json_int(j, "at", e->at_ms);
    json_object_begin(j, "balance");
    json_int(j, "total", e->balance.total);
    json_int(j, "pack", e->balance.pack);
    json_int(j, "monthly", e->balance.monthly);
    json_int(j, "grant", e->balance.grant);
    json_int(j, "held", e->balance.held);
    json_object_end(j);
    json_str(j, "job", e->job);
    json_own_keys(j, e);
}

void event_view_json(struct json *j, const char *key, const struct event_view *view)
{
    ASSERT(j != NULL && view != NULL);
    ASSERT(view->head_len <= view->bytes);
    json_object_begin(j, key);
    json_str(j, "entry", view->entry);
    if (view->is_event) {
        json_event(j, &view->event);
    } else {
        char hex[2 * EVENT_VIEW_HEAD_BYTES + 1];
        for (size_t i = 0; i < view->head_len; i++)
            snprintf(hex + 2 * i, 3, "%02x", view->head[i]);
        hex[2 * view->head_len] = '\0';
        json_str(j, "error", view->has_field ? "not an event" : "no event field");
        json_int(j, "bytes", (int64_t)view->bytes);
        json_str(j, "hex", hex);
    }
    json_object_end(j);
}
