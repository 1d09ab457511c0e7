/*
 * log.c -- logfmt lines on stderr (log.h). One fprintf per line, so lines
 * from several workers sharing a journal never interleave mid-line.
 */
#include "worker/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"

#define LOG_LINE_BYTES_MAX 2048

static enum log_level log_level_min = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    ASSERT(level >= LOG_DEBUG && level <= LOG_ERROR);
    log_level_min = level;
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
    char line[LOG_LINE_BYTES_MAX];
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, now.tv_nsec / 1000000, level_names[level], event);
    ASSERT(n > 0 && (size_t)n < sizeof line);
    if (fields && fields[0] != '\0') {
        va_list ap;
        va_start(ap, fields);
        line[n++] = ' ';
        vsnprintf(line + n, sizeof line - (size_t)n, fields, ap);
        va_end(ap);
    }
    fprintf(stderr, "%s\n", line);
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
