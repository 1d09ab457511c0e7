/*
 * pgparam.c -- statement parameters in PostgreSQL's binary array format
 * (pgparam.h).
 */
#include "worker/daemon/pgparam.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

/* The header of a one-dimensional array: dimensions, has-nulls flag,
 * element type, then length and lower bound of the one dimension. */
#define ARRAY_FLAGS_AT 4
#define ARRAY_LENGTH_AT 12
#define ARRAY_EMPTY_HEADER_BYTES 12 /* no dimensions */
#define PARAM_INITIAL_BYTES 256

void pgparam_free(struct pgparam *p)
{
    ASSERT(p != NULL);
    free(p->data);
    memset(p, 0, sizeof *p);
}

static void reserve(struct pgparam *p, size_t more)
{
    ASSERT(p->len <= p->cap);
    if (p->len + more + 1 <= p->cap)
        return;
    size_t cap = p->cap ? p->cap : PARAM_INITIAL_BYTES;
    while (cap < p->len + more + 1)
        cap *= 2;
    p->data = realloc(p->data, cap);
    ASSERT(p->data != NULL); /* see the header: aborting loses nothing */
    p->cap = cap;
}

static void put(struct pgparam *p, const void *bytes, size_t len)
{
    reserve(p, len);
    if (len > 0)
        memcpy(p->data + p->len, bytes, len);
    p->len += len;
    p->data[p->len] = '\0'; /* a text parameter is a C string */
}

static void write_u32(char *at, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    memcpy(at, b, sizeof b);
}

static void put_u32(struct pgparam *p, uint32_t v)
{
    reserve(p, 4);
    write_u32(p->data + p->len, v);
    p->len += 4;
}

static void put_u64(struct pgparam *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p, (uint32_t)v);
}

void pgparam_text(struct pgparam *p, const char *s)
{
    ASSERT(p != NULL && s != NULL);
    p->len = 0;
    p->format = 0;
    put(p, s, strlen(s));
}

void pgparam_array_begin(struct pgparam *p, uint32_t element_oid)
{
    ASSERT(p != NULL && element_oid != 0);
    p->len = 0;
    p->format = 1;
    p->count = 0;
    p->has_null = false;
    put_u32(p, 1); /* dimensions */
    put_u32(p, 0); /* has nulls: set by pgparam_array_end */
    put_u32(p, element_oid);
    put_u32(p, 0); /* length: set by pgparam_array_end */
    put_u32(p, 1); /* lower bound */
}

void pgparam_array_bytes(struct pgparam *p, const void *bytes, size_t len)
{
    ASSERT(p->format == 1);
    ASSERT(len <= INT32_MAX && p->count < INT32_MAX);
    put_u32(p, (uint32_t)len);
    put(p, bytes, len);
    p->count++;
}

/* Validated text: UTF-8 without NUL, as the server checks it. */
void pgparam_array_text(struct pgparam *p, const char *s)
{
    if (s == NULL)
        pgparam_array_null(p);
    else
        pgparam_array_bytes(p, s, strlen(s));
}

void pgparam_array_null(struct pgparam *p)
{
    ASSERT(p->format == 1 && p->count < INT32_MAX);
    put_u32(p, UINT32_MAX); /* length -1 */
    p->count++;
    p->has_null = true;
}

void pgparam_array_int(struct pgparam *p, int64_t v)
{
    ASSERT(p->format == 1 && p->count < INT32_MAX);
    put_u32(p, 8);
    put_u64(p, (uint64_t)v);
    p->count++;
}

void pgparam_array_timestamp(struct pgparam *p, int64_t unix_us)
{
    ASSERT(unix_us >= INT64_MIN + PGPARAM_EPOCH_OFFSET_US);
    pgparam_array_int(p, unix_us - PGPARAM_EPOCH_OFFSET_US);
}

void pgparam_array_end(struct pgparam *p)
{
    ASSERT(p->format == 1 && p->len >= ARRAY_EMPTY_HEADER_BYTES);
    if (p->count == 0) {
        write_u32(p->data, 0); /* no dimensions: the empty array */
        p->len = ARRAY_EMPTY_HEADER_BYTES;
        return;
    }
    write_u32(p->data + ARRAY_FLAGS_AT, p->has_null ? 1 : 0);
    write_u32(p->data + ARRAY_LENGTH_AT, p->count);
}

void pgparam_text_array(struct pgparam *p, const char *const *strings, size_t count)
{
    ASSERT(strings != NULL || count == 0);
    pgparam_array_begin(p, PGPARAM_OID_TEXT);
    for (size_t i = 0; i < count; i++) {
        ASSERT(strings[i] != NULL);
        pgparam_array_text(p, strings[i]);
    }
    pgparam_array_end(p);
}
