/*
 * console_text.c -- HTML escaping, the page's template, query strings and
 * msgpack as JSON for the console (console_text.h). Pure.
 */
#include "worker/ctl/console_text.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/assert.h"
#include "core/job.h"

/* ------------------------------------------------------------------------ */
/* HTML                                                                     */
/* ------------------------------------------------------------------------ */

/* Valid UTF-8 apart from NUL bytes (replaced like any control byte). */
static bool is_utf8(const char *s, size_t len)
{
    size_t start = 0;
    while (start <= len) {
        const char *nul = memchr(s + start, '\0', len - start);
        size_t end = nul ? (size_t)(nul - s) : len;
        if (end > start && !job_text_is_valid(s + start, end - start))
            return false;
        start = end + 1;
    }
    return true;
}

void console_html_escape(FILE *out, const char *s, size_t len)
{
    ASSERT(out != NULL && (s != NULL || len == 0));
    bool utf8 = is_utf8(s, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F ||
                (c >= 0x80 && !utf8))
                fputs("&#xFFFD;", out);
            else
                fputc(c, out);
        }
    }
}

/* The one place of `marker` in tpl, or NULL when it is not there once. */
static const char *find_once(const char *tpl, size_t len, const char *marker)
{
    size_t n = strlen(marker);
    const char *found = NULL;
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(tpl + i, marker, n) != 0)
            continue;
        if (found)
            return NULL;
        found = tpl + i;
    }
    return found;
}

bool console_render_page(FILE *out, const char *tpl, size_t tpl_len, const char *title,
                         const char *boot_json)
{
    ASSERT(out && tpl && title && boot_json);
    static const char title_marker[] = "{{title}}", boot_marker[] = "{{boot}}";
    const char *t = find_once(tpl, tpl_len, title_marker);
    const char *b = find_once(tpl, tpl_len, boot_marker);
    if (!t || !b || strchr(boot_json, '<'))
        return false;
    /* The two in the order they appear. */
    const char *first = t < b ? t : b, *second = t < b ? b : t;
    const char *cursor = tpl, *end = tpl + tpl_len;
    const char *markers[2] = {first, second};
    for (int m = 0; m < 2; m++) {
        fwrite(cursor, 1, (size_t)(markers[m] - cursor), out);
        if (markers[m] == t) {
            console_html_escape(out, title, strlen(title));
            cursor = t + sizeof title_marker - 1;
        } else {
            fputs(boot_json, out);
            cursor = b + sizeof boot_marker - 1;
        }
    }
    fwrite(cursor, 1, (size_t)(end - cursor), out);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Query strings                                                            */
/* ------------------------------------------------------------------------ */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes the value s[0..len) into out (may be NULL: only checks). The
 * decoded length, or -1 when it is malformed, holds a NUL, or (out given)
 * does not fit in out_len bytes with the NUL.
 */
static long decode_value(const char *s, size_t len, char *out, size_t out_len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int h = hex_value(s[i + 1]), l = hex_value(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (c == '\0')
            return -1;
        if (out) {
            if (n + 1 >= out_len)
                return -1;
            out[n] = (char)c;
        }
        n++;
    }
    if (out)
        out[n] = '\0';
    return (long)n;
}

/* One "name[=value]" pair of a query: its name and value, raw. */
struct pair {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* The pair starting at *cursor (advanced past it and its '&'). */
static struct pair next_pair(const char **cursor)
{
    const char *s = *cursor;
    const char *amp = strchr(s, '&');
    size_t len = amp ? (size_t)(amp - s) : strlen(s);
    const char *eq = memchr(s, '=', len);
    struct pair p = {s, eq ? (size_t)(eq - s) : len, eq ? eq + 1 : s + len, 0};
    p.value_len = eq ? len - p.name_len - 1 : 0;
    *cursor = amp ? amp + 1 : s + len;
    return p;
}

static bool name_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > CONSOLE_PARAM_NAME_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return false;
    return true;
}

bool console_query_is_valid(const char *query)
{
    ASSERT(query != NULL);
    struct pair seen[CONSOLE_PARAMS_MAX];
    size_t count = 0;
    const char *cursor = query;
    while (*cursor) {
        struct pair p = next_pair(&cursor);
        if (!name_is_valid(p.name, p.name_len) || count == CONSOLE_PARAMS_MAX ||
            decode_value(p.value, p.value_len, NULL, 0) < 0)
            return false;
        for (size_t i = 0; i < count; i++)
            if (seen[i].name_len == p.name_len && memcmp(seen[i].name, p.name, p.name_len) == 0)
                return false;
        seen[count++] = p;
    }
    /* "a&" and "&a" leave an empty pair: refused like any other bad name. */
    return query[0] == '\0' || query[strlen(query) - 1] != '&';
}

int console_query_param(const char *query, const char *name, char *out, size_t out_len)
{
    ASSERT(query && name && out && out_len > 0);
    out[0] = '\0';
    size_t n = strlen(name);
    const char *cursor = query;
    while (*cursor) {
        struct pair p = next_pair(&cursor);
        if (p.name_len == n && memcmp(p.name, name, n) == 0)
            return decode_value(p.value, p.value_len, out, out_len) < 0 ? -1 : 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* msgpack as JSON                                                          */
/* ------------------------------------------------------------------------ */

/* A map key, as a JSON member name: short, no NUL. */
#define MSGPACK_KEY_BYTES_MAX 64

struct mp {
    const unsigned char *p;
    size_t left;
};

enum mp_kind {
    MP_NIL,
    MP_BOOL,
    MP_UINT,
    MP_INT,
    MP_FLOAT,
    MP_STR,
    MP_BIN,
    MP_EXT,
    MP_ARRAY,
    MP_MAP,
};

/* One header (and, for str, bin and ext, its payload). */
struct mp_item {
    enum mp_kind kind;
    bool boolean;
    uint64_t u;
    int64_t i;
    double f;
    const unsigned char *bytes; /* str, bin, ext payload */
    size_t len;                 /* their length; array and map: the count */
};

static bool take(struct mp *m, size_t n, const unsigned char **out)
{
    if (m->left < n)
        return false;
    *out = m->p;
    m->p += n;
    m->left -= n;
    return true;
}

static bool take_be(struct mp *m, size_t n, uint64_t *out)
{
    const unsigned char *b = NULL;
    if (!take(m, n, &b))
        return false;
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++)
        v = v << 8 | b[k];
    *out = v;
    return true;
}

/* A payload of the length in the next `n` bytes, after `skip` more bytes
 * (an ext's type). */
static bool take_sized(struct mp *m, size_t n, size_t skip, struct mp_item *it)
{
    uint64_t len = 0;
    const unsigned char *ignored = NULL;
    if (!take_be(m, n, &len) || !take(m, skip, &ignored) || len > m->left)
        return false;
    it->len = (size_t)len;
    return take(m, it->len, &it->bytes);
}

/* A container of the count in the next `n` bytes: every element takes at
 * least one byte (a map's two), so a count above that is a lie. */
static bool take_count(struct mp *m, size_t n, bool map, struct mp_item *it)
{
    uint64_t count = 0;
    if (!take_be(m, n, &count) || count > m->left / (map ? 2 : 1))
        return false;
    it->len = (size_t)count;
    return true;
}

static bool fixed_payload(struct mp *m, size_t len, struct mp_item *it)
{
    it->len = len;
    return take(m, len, &it->bytes);
}

static bool read_ints(struct mp *m, unsigned char c, struct mp_item *it)
{
    static const size_t widths[4] = {1, 2, 4, 8};
    uint64_t v = 0;
    size_t w = widths[(c - 0xcc) & 3];
    if (!take_be(m, w, &v))
        return false;
    if (c <= 0xcf) {
        it->kind = MP_UINT;
        it->u = v;
    } else {
        /* Sign-extend from the width read. */
        int shift = (int)(64 - 8 * w);
        it->kind = MP_INT;
        it->i = (int64_t)(v << shift) >> shift;
    }
    return true;
}

static bool read_float(struct mp *m, unsigned char c, struct mp_item *it)
{
    uint64_t v = 0;
    it->kind = MP_FLOAT;
    if (c == 0xca) {
        if (!take_be(m, 4, &v))
            return false;
        uint32_t bits = (uint32_t)v;
        float f;
        memcpy(&f, &bits, sizeof f);
        it->f = f;
        return true;
    }
    if (!take_be(m, 8, &v))
        return false;
    memcpy(&it->f, &v, sizeof it->f);
    return true;
}

static bool read_item(struct mp *m, struct mp_item *it)
{
    const unsigned char *b = NULL;
    memset(it, 0, sizeof *it);
    if (!take(m, 1, &b))
        return false;
    unsigned char c = *b;
    if (c <= 0x7f || c >= 0xe0) {
        it->kind = c <= 0x7f ? MP_UINT : MP_INT;
        it->u = c;
        it->i = (int8_t)c;
        return true;
    }
    if (c >= 0x80 && c <= 0x8f) {
        it->kind = MP_MAP;
        it->len = c & 0x0f;
        return it->len <= m->left / 2;
    }
    if (c >= 0x90 && c <= 0x9f) {
        it->kind = MP_ARRAY;
        it->len = c & 0x0f;
        return it->len <= m->left;
    }
    if (c >= 0xa0 && c <= 0xbf) {
        it->kind = MP_STR;
        return fixed_payload(m, c & 0x1f, it);
    }
    switch (c) {
    case 0xc0:
        it->kind = MP_NIL;
        return true;
    case 0xc2:
    case 0xc3:
        it->kind = MP_BOOL;
        it->boolean = c == 0xc3;
        return true;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        it->kind = MP_BIN;
        return take_sized(m, (size_t)1 << (c - 0xc4), 0, it);
    case 0xc7:
    case 0xc8:
    case 0xc9: /* ext: a type byte after the length */
        it->kind = MP_EXT;
        return take_sized(m, (size_t)1 << (c - 0xc7), 1, it);
    case 0xca:
    case 0xcb:
        return read_float(m, c, it);
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: /* fixext: a type byte, then 1..16 bytes */
        it->kind = MP_EXT;
        return take(m, 1, &b) && fixed_payload(m, (size_t)1 << (c - 0xd4), it);
    case 0xd9:
    case 0xda:
    case 0xdb:
        it->kind = MP_STR;
        return take_sized(m, (size_t)1 << (c - 0xd9), 0, it);
    case 0xdc:
    case 0xdd:
        it->kind = MP_ARRAY;
        return take_count(m, c == 0xdc ? 2 : 4, false, it);
    case 0xde:
    case 0xdf:
        it->kind = MP_MAP;
        return take_count(m, c == 0xde ? 2 : 4, true, it);
    default:
        if (c >= 0xcc && c <= 0xd3)
            return read_ints(m, c, it);
        return false; /* 0xc1, never used */
    }
}

static void write_scalar(struct json *j, const char *key, const struct mp_item *it)
{
    char text[40];
    switch (it->kind) {
    case MP_NIL:
    case MP_EXT:
        json_null(j, key);
        return;
    case MP_BOOL:
        json_bool(j, key, it->boolean);
        return;
    case MP_UINT:
        snprintf(text, sizeof text, "%llu", (unsigned long long)it->u);
        json_number_text(j, key, text);
        return;
    case MP_INT:
        json_int(j, key, it->i);
        return;
    case MP_FLOAT:
        if (!isfinite(it->f)) {
            json_null(j, key);
            return;
        }
        snprintf(text, sizeof text, "%.17g", it->f);
        json_number_text(j, key, text);
        return;
    case MP_STR:
        json_strn(j, key, (const char *)it->bytes, it->len);
        return;
    case MP_BIN: {
        char hex[2 * 64 + 4];
        size_t n = it->len < 64 ? it->len : 64;
        for (size_t k = 0; k < n; k++)
            snprintf(hex + 2 * k, 3, "%02x", it->bytes[k]);
        snprintf(hex + 2 * n, 4, "%s", it->len > n ? "..." : "");
        json_str(j, key, hex);
        return;
    }
    case MP_ARRAY:
    case MP_MAP:
        break;
    }
    UNREACHABLE();
}

/* One value: checked (j NULL) or written under `key`. */
static bool walk(struct mp *m, struct json *j, const char *key, int depth)
{
    struct mp_item it;
    if (!read_item(m, &it))
        return false;
    if (it.kind != MP_ARRAY && it.kind != MP_MAP) {
        if (j)
            write_scalar(j, key, &it);
        return true;
    }
    if (depth >= CONSOLE_MSGPACK_DEPTH_MAX)
        return false;
    bool map = it.kind == MP_MAP;
    if (j && map)
        json_object_begin(j, key);
    else if (j)
        json_array_begin(j, key);
    for (size_t n = 0; n < it.len; n++) {
        char name[MSGPACK_KEY_BYTES_MAX + 1];
        if (map) {
            struct mp_item k;
            if (!read_item(m, &k) || k.kind != MP_STR || k.len > MSGPACK_KEY_BYTES_MAX ||
                memchr(k.bytes, '\0', k.len))
                return false;
            memcpy(name, k.bytes, k.len);
            name[k.len] = '\0';
        }
        if (!walk(m, j, map ? name : NULL, depth + 1))
            return false;
    }
    if (j && map)
        json_object_end(j);
    else if (j)
        json_array_end(j);
    return true;
}

bool console_msgpack_json(struct json *j, const char *key, const void *buf, size_t len)
{
    ASSERT(j != NULL && (buf != NULL || len == 0));
    ASSERT(j->depth + CONSOLE_MSGPACK_DEPTH_MAX <= JSON_DEPTH_MAX);
    if (len == 0 || len > CONSOLE_MSGPACK_BYTES_MAX)
        return false;
    struct mp check = {buf, len};
    if (!walk(&check, NULL, NULL, 0) || check.left != 0)
        return false;
    struct mp write = {buf, len};
    bool ok = walk(&write, j, key, 0);
    ASSERT(ok && write.left == 0);
    return true;
}

bool console_msgpack_str(const void *buf, size_t len, const char *name, char *out, size_t out_len)
{
    ASSERT(name && out && out_len > 0 && (buf != NULL || len == 0));
    out[0] = '\0';
    struct mp m = {buf, len > CONSOLE_MSGPACK_BYTES_MAX ? 0 : len};
    struct mp_item top;
    if (!read_item(&m, &top) || top.kind != MP_MAP)
        return false;
    size_t name_len = strlen(name);
    for (size_t n = 0; n < top.len; n++) {
        struct mp_item k;
        if (!read_item(&m, &k) || k.kind != MP_STR)
            return false;
        if (k.len != name_len || memcmp(k.bytes, name, name_len) != 0) {
            if (!walk(&m, NULL, NULL, 1))
                return false;
            continue;
        }
        struct mp_item v;
        if (!read_item(&m, &v) || v.kind != MP_STR || v.len >= out_len ||
            memchr(v.bytes, '\0', v.len))
            return false;
        memcpy(out, v.bytes, v.len);
        out[v.len] = '\0';
        return true;
    }
    return false;
}
