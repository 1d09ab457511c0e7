/*
 * console_text.c -- HTML escaping, the page's template and query strings
 * for the console (console_text.h). Pure.
 */
#include "worker/ctl/console_text.h"

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
