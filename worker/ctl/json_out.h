/*
 * json_out.h -- a small streaming JSON writer for creditsctl's --json output:
 * objects and arrays nested to JSON_DEPTH_MAX, commas placed for the caller,
 * strings escaped (any bytes: text that is not valid UTF-8 keeps its ASCII
 * and gets U+FFFD for every other byte, so the output always parses).
 *
 * Owns the syntax only; what each command prints is its own.
 */
#ifndef CREDITS_WORKER_CTL_JSON_OUT_H
#define CREDITS_WORKER_CTL_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 8

struct json {
    FILE *out;
    int depth;
    bool first[JSON_DEPTH_MAX + 1]; /* no member written yet at this level */
    bool script_safe;               /* json_init_script_safe() */
};

void json_init(struct json *j, FILE *out);

/* json_init(), and strings are also safe inside an HTML <script> element
 * and any JavaScript source: '<', '>', '&' and the line separators U+2028,
 * U+2029 are written as \u escapes (the document means the same). */
void json_init_script_safe(struct json *j, FILE *out);

/*
 * Every value below takes `key`: the member name inside an object, NULL for
 * an element of an array or the top-level value.
 */
void json_object_begin(struct json *j, const char *key);
void json_object_end(struct json *j);
void json_array_begin(struct json *j, const char *key);
void json_array_end(struct json *j);

/* A string; `value` NULL writes null. */
void json_str(struct json *j, const char *key, const char *value);
/* `len` bytes, NULs included (escaped). */
void json_strn(struct json *j, const char *key, const char *value, size_t len);
void json_int(struct json *j, const char *key, int64_t value);
void json_bool(struct json *j, const char *key, bool value);
void json_null(struct json *j, const char *key);
/* A number given as decimal text ("-12", "3.5"); text that is not one is
 * written as a string. */
void json_number_text(struct json *j, const char *key, const char *text);

/* Ends the document (depth back to 0) with a newline. */
void json_finish(struct json *j);

#endif
