/*
 * console_text.h -- the console's text in and out, pure: values escaped
 * for HTML, the page's template filled in, query strings read.
 *
 * Owns these transformations only; what the console serves and reads is
 * console.c's and console_api.c's.
 */
#ifndef CREDITS_WORKER_CTL_CONSOLE_TEXT_H
#define CREDITS_WORKER_CTL_CONSOLE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A query parameter's name: at most this many of [a-z_]. */
#define CONSOLE_PARAM_NAME_BYTES_MAX 16
/* The most query parameters a request may carry. */
#define CONSOLE_PARAMS_MAX 16

/*
 * Writes `len` bytes (borrowed) as HTML text, safe in element content and
 * in a quoted attribute: & < > " ' as character references; control bytes
 * other than tab, newline and carriage return, and every non-ASCII byte
 * when the text is not valid UTF-8, as U+FFFD.
 */
void console_html_escape(FILE *out, const char *s, size_t len);

/*
 * Writes `tpl` (tpl_len bytes) with "{{title}}" replaced by `title`
 * HTML-escaped and "{{boot}}" by `boot_json`, which must be script-safe
 * JSON (json_init_script_safe(): no '<' in it, so it cannot end the
 * <script> element it sits in). Each marker must appear exactly once.
 * true, or false (nothing written) when the template or boot_json is not
 * so.
 */
bool console_render_page(FILE *out, const char *tpl, size_t tpl_len, const char *title,
                         const char *boot_json);

/* Whether a raw query string (after '?') is well formed: at most
 * CONSOLE_PARAMS_MAX name[=value] pairs joined by '&', names of [a-z_],
 * each at most once, values percent-encoded correctly and free of NUL. */
bool console_query_is_valid(const char *query);

/*
 * The value of parameter `name` in a valid query, percent-decoded ('+' a
 * space) into `out` (out_len bytes with the NUL). 1 when present, 0 when
 * absent (out ""), -1 when the value does not fit.
 */
int console_query_param(const char *query, const char *name, char *out, size_t out_len)
    __attribute__((warn_unused_result));

#endif
