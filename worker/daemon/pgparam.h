/*
 * pgparam.h -- statement parameters for libpq: a scalar as text, or a
 * one-dimensional array in PostgreSQL's binary array format (what
 * array_recv() reads). Binary arrays leave the server nothing to parse or
 * unescape, and bytea elements go as they are.
 *
 * Owns the byte layout only; pure (no I/O). Allocation failure aborts:
 * parameters are built before anything is acknowledged, so aborting loses
 * nothing.
 */
#ifndef CREDITS_WORKER_DAEMON_PGPARAM_H
#define CREDITS_WORKER_DAEMON_PGPARAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Element type OIDs (pg_type.h): fixed since the first release. */
#define PGPARAM_OID_BYTEA 17u
#define PGPARAM_OID_INT8 20u
#define PGPARAM_OID_TEXT 25u
#define PGPARAM_OID_TIMESTAMPTZ 1184u

/* Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch. */
#define PGPARAM_EPOCH_OFFSET_US INT64_C(946684800000000)

/* One parameter. Zero-initialize; reuse it for the next statement (its
 * buffer is kept); pgparam_free() at the end. */
struct pgparam {
    char *data;
    size_t len;
    size_t cap;
    int format;     /* 0: text, 1: binary (libpq's paramFormats) */
    uint32_t count; /* array elements so far */
    bool has_null;
};

void pgparam_free(struct pgparam *p);

/* A scalar in text format (a C string, copied). */
void pgparam_text(struct pgparam *p, const char *s);

/* An array: begin, then its elements, then end. */
void pgparam_array_begin(struct pgparam *p, uint32_t element_oid);
void pgparam_array_bytes(struct pgparam *p, const void *bytes, size_t len);
void pgparam_array_text(struct pgparam *p, const char *s); /* NULL: a null element */
void pgparam_array_int(struct pgparam *p, int64_t v);
void pgparam_array_timestamp(struct pgparam *p, int64_t unix_us); /* timestamptz */
void pgparam_array_null(struct pgparam *p);
void pgparam_array_end(struct pgparam *p);

/* A text[] of `count` strings (borrowed until return). */
void pgparam_text_array(struct pgparam *p, const char *const *strings, size_t count);

#endif
