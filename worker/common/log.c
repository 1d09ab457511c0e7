/*
 * log.c -- logfmt lines on stderr (log.h). One fprintf per line, so lines
 * from several workers sharing a journal never interleave mid-line.
 */
#include "worker/common/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"

#define LOG_LINE_BYTES_MAX 2048

static enum log_level log_level_min = LOG_INFO;
static enum log_format log_format = LOG_FORMAT_LOGFMT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    ASSERT(level >= LOG_DEBUG && level <= LOG_ERROR);
    log_level_min = level;
}

void log_set_format(enum log_format format)
{
    ASSERT(format == LOG_FORMAT_LOGFMT || format == LOG_FORMAT_JSON);
    log_format = format;
}

struct line {
    char *text;
    size_t len;
    size_t cap;
};

static void put(struct line *out, const char *s, size_t n)
{
    if (out->len + n >= out->cap)
        n = out->cap - out->len - 1; /* truncate rather than split a write */
    memcpy(out->text + out->len, s, n);
    out->len += n;
    out->text[out->len] = '\0';
}

static void put_str(struct line *out, const char *s)
{
    put(out, s, strlen(s));
}

/* A JSON string of text[0..n), already unescaped from logfmt quoting. */
static void put_json_string(struct line *out, const char *text, size_t n)
{
    put(out, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (c == '\\' && i + 1 < n && (text[i + 1] == '"' || text[i + 1] == '\\'))
            c = text[++i];
        if (c == '"' || c == '\\')
            put(out, "\\", 1);
        put(out, &c, 1);
    }
    put(out, "\"", 1);
}

static bool is_integer(const char *text, size_t n)
{
    size_t i = text[0] == '-' ? 1 : 0;
    if (n == i || n > 19)
        return false;
    for (; i < n; i++)
        if (text[i] < '0' || text[i] > '9')
            return false;
    return true;
}

/* Turns `key=value key="quoted value"` into `,"key":value,...`. */
static void put_json_fields(struct line *out, const char *fields)
{
    const char *p = fields;
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        const char *eq = strchr(p, '=');
        if (!eq || *p == '\0')
            break;
        put(out, ",", 1);
        put_json_string(out, p, (size_t)(eq - p));
        put(out, ":", 1);
        const char *v = eq + 1, *end;
        if (*v == '"') {
            for (end = v + 1; *end != '\0' && *end != '"'; end++)
                if (*end == '\\' && end[1] != '\0')
                    end++;
            put_json_string(out, v + 1, (size_t)(end - v - 1));
            p = *end ? end + 1 : end;
        } else {
            end = v + strcspn(v, " ");
            if (is_integer(v, (size_t)(end - v)))
                put(out, v, (size_t)(end - v));
            else
                put_json_string(out, v, (size_t)(end - v));
            p = end;
        }
    }
}

void log_event(enum log_level level, const char *event, const char *fields, ...)
{
    ASSERT(level >= LOG_DEBUG && level <= LOG_ERROR);
    if (level < log_level_min)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char stamp[80];
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    char fields_text[LOG_LINE_BYTES_MAX] = "";
    if (fields && fields[0] != '\0') {
        va_list ap;
        va_start(ap, fields);
        vsnprintf(fields_text, sizeof fields_text, fields, ap);
        va_end(ap);
    }
    char buf[2 * LOG_LINE_BYTES_MAX];
    struct line line = {buf, 0, sizeof buf};
    buf[0] = '\0';
    if (log_format == LOG_FORMAT_JSON) {
        put_str(&line, "{\"ts\":\"");
        put_str(&line, stamp);
        put_str(&line, "\",\"level\":\"");
        put_str(&line, level_names[level]);
        put_str(&line, "\",\"event\":");
        put_json_string(&line, event, strlen(event));
        put_json_fields(&line, fields_text);
        put_str(&line, "}");
    } else {
        int n = snprintf(buf, sizeof buf, "ts=%s level=%s event=%s%s%s", stamp, level_names[level],
                         event, fields_text[0] ? " " : "", fields_text);
        ASSERT(n > 0);
    }
    fprintf(stderr, "%s\n", buf);
}

const char *log_quote(const char *text, char *out, size_t out_len)
{
    ASSERT(out_len >= 3);
    size_t n = 0;
    out[n++] = '"';
    for (const char *p = text; *p != '\0' && n + 3 < out_len; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            if (n + 4 >= out_len)
                break;
            out[n++] = '\\';
            out[n++] = (char)c;
        } else {
            out[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
    return out;
}
