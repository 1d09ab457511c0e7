/*
 * json_out.c -- the streaming JSON writer of creditsctl's --json output.
 *
 * Owns the syntax: commas, nesting, escaping. Does not own the FILE * it
 * writes to (the caller's: stdout, or memory in the tests) or any document.
 */
#include "worker/ctl/json_out.h"

#include <inttypes.h>
#include <string.h>

#include "core/assert.h"
#include "core/job.h"

void json_init(struct json *j, FILE *out)
{
    ASSERT(j && out);
    memset(j, 0, sizeof *j);
    j->out = out;
    j->first[0] = true;
}

void json_init_script_safe(struct json *j, FILE *out)
{
    json_init(j, out);
    j->script_safe = true;
}

/* Valid UTF-8 apart from NUL bytes (escaped like any control byte). */
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

/* U+2028 or U+2029 (E2 80 A8, E2 80 A9) at s[i]: line ends in JavaScript
 * before ES2019, and still in many parsers. */
static bool is_line_separator(const char *s, size_t len, size_t i)
{
    return i + 2 < len && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x80 &&
           ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9);
}

static void write_string(FILE *out, const char *s, size_t len, bool script_safe)
{
    bool utf8 = is_utf8(s, len);
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (script_safe && (c == '<' || c == '>' || c == '&')) {
            fprintf(out, "\\u%04x", c);
        } else if (script_safe && utf8 && is_line_separator(s, len, i)) {
            fprintf(out, "\\u%04x", 0x2000 + ((unsigned char)s[i + 2] - 0x80));
            i += 2;
        } else if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            fprintf(out, "\\u%04x", c);
        else if (c >= 0x80 && !utf8)
            fputs("\\ufffd", out);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* The comma and "key": before a value. */
static void member(struct json *j, const char *key)
{
    if (!j->first[j->depth])
        fputc(',', j->out);
    j->first[j->depth] = false;
    if (key) {
        write_string(j->out, key, strlen(key), j->script_safe);
        fputc(':', j->out);
    }
}

static void open_level(struct json *j, const char *key, char bracket)
{
    ASSERT(j->depth < JSON_DEPTH_MAX);
    member(j, key);
    fputc(bracket, j->out);
    j->depth++;
    j->first[j->depth] = true;
}

void json_object_begin(struct json *j, const char *key)
{
    open_level(j, key, '{');
}

void json_object_end(struct json *j)
{
    ASSERT(j->depth > 0);
    j->depth--;
    fputc('}', j->out);
}

void json_array_begin(struct json *j, const char *key)
{
    open_level(j, key, '[');
}

void json_array_end(struct json *j)
{
    ASSERT(j->depth > 0);
    j->depth--;
    fputc(']', j->out);
}

void json_str(struct json *j, const char *key, const char *value)
{
    if (!value) {
        json_null(j, key);
        return;
    }
    json_strn(j, key, value, strlen(value));
}

void json_strn(struct json *j, const char *key, const char *value, size_t len)
{
    member(j, key);
    write_string(j->out, value, len, j->script_safe);
}

void json_int(struct json *j, const char *key, int64_t value)
{
    member(j, key);
    fprintf(j->out, "%" PRId64, value);
}

void json_bool(struct json *j, const char *key, bool value)
{
    member(j, key);
    fputs(value ? "true" : "false", j->out);
}

void json_null(struct json *j, const char *key)
{
    member(j, key);
    fputs("null", j->out);
}

/* JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_json_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return false;
    if (*s == '.') {
        if (*++s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

void json_number_text(struct json *j, const char *key, const char *text)
{
    if (!is_json_number(text)) {
        json_str(j, key, text);
        return;
    }
    member(j, key);
    fputs(text, j->out);
}

void json_finish(struct json *j)
{
    ASSERT(j->depth == 0);
    fputc('\n', j->out);
    j->first[0] = true;
}
