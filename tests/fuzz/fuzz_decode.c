/*
 * fuzz_decode.c -- libFuzzer target for the decoders of untrusted bytes:
 * codec_decode_job(), codec_decode_identity() and codec_decode_result().
 *
 * Every input is decided twice: by the codec, and by a reference decoder
 * written here from contract sections 2 and 9.3 and schemas/vectors/README.md alone
 * (a plain recursive msgpack reader; it shares no code with core/codec.c
 * and uses none of core/job.c's field rules). The two must agree on the
 * outcome, on every field of an accepted job, and on what a rejection can
 * name (id, type, user, reply). An accepted job must then survive
 * codec_encode_job -> codec_decode_job unchanged, and every result built
 * from it (or from the rejection) codec_encode_result -> codec_decode_result.
 * Bytes that decode as a result must round-trip the same way.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "fuzz_util.h"

/* ------------------------------------------------------------------------ */
/* Reference msgpack reader                                                 */
/* ------------------------------------------------------------------------ */

/* Containers nested in a job, the job map included (vectors README). */
#define REF_DEPTH_MAX 32

enum ref_kind { RK_NIL, RK_BOOL, RK_INT, RK_FLOAT, RK_STR, RK_BIN, RK_EXT, RK_ARRAY, RK_MAP };

struct ref_val {
    enum ref_kind kind;
    bool boolean;
    bool negative; /* RK_INT: value < 0, held in `i`; else in `u` */
    uint64_t u;
    int64_t i;
    const uint8_t *s; /* RK_STR, RK_BIN */
    size_t n;
};

struct ref_reader {
    const uint8_t *d;
    size_t size;
    size_t off;
};

static bool ref_take(struct ref_reader *r, size_t n, const uint8_t **out)
{
    if (r->size - r->off < n)
        return false;
    *out = r->d + r->off;
    r->off += n;
    return true;
}

static bool ref_be(struct ref_reader *r, unsigned n, uint64_t *out)
{
    const uint8_t *p;
    if (!ref_take(r, n, &p))
        return false;
    uint64_t v = 0;
    for (unsigned k = 0; k < n; k++)
        v = v << 8 | p[k];
    *out = v;
    return true;
}

static bool ref_value(struct ref_reader *r, int depth, struct ref_val *v);

/* The elements of an array (n values) or a map (2n values) at `depth`. */
static bool ref_children(struct ref_reader *r, uint64_t values, int depth)
{
    for (uint64_t k = 0; k < values; k++) {
        struct ref_val child;
        if (!ref_value(r, depth + 1, &child))
            return false;
    }
    return true;
}

static bool ref_container(struct ref_reader *r, enum ref_kind kind, uint64_t count, int depth,
                          struct ref_val *v)
{
    if (depth > REF_DEPTH_MAX)
        return false;
    v->kind = kind;
    v->n = (size_t)count;
    return ref_children(r, kind == RK_MAP ? 2 * count : count, depth);
}

static bool ref_bytes(struct ref_reader *r, enum ref_kind kind, uint64_t n, struct ref_val *v)
{
    v->kind = kind;
    v->n = (size_t)n;
    return n <= r->size && ref_take(r, (size_t)n, &v->s);
}

static bool ref_signed(struct ref_reader *r, unsigned n, struct ref_val *v)
{
    uint64_t raw;
    if (!ref_be(r, n, &raw))
        return false;
    int64_t x;
    switch (n) {
    case 1:
        x = (int8_t)raw;
        break;
    case 2:
        x = (int16_t)raw;
        break;
    case 4:
        x = (int32_t)raw;
        break;
    default:
        x = (int64_t)raw;
        break;
    }
    v->kind = RK_INT;
    v->negative = x < 0;
    v->i = x;
    v->u = x < 0 ? 0 : (uint64_t)x;
    return true;
}

static bool ref_ext(struct ref_reader *r, uint64_t n, struct ref_val *v)
{
    uint64_t type;
    return ref_be(r, 1, &type) && ref_bytes(r, RK_EXT, n, v);
}

/* One whole value (a container with everything in it) at nesting `depth`. */
static bool ref_value(struct ref_reader *r, int depth, struct ref_val *v)
{
    memset(v, 0, sizeof *v);
    uint64_t n;
    if (!ref_be(r, 1, &n))
        return false;
    uint8_t b = (uint8_t)n;
    if (b <= 0x7f) {
        v->kind = RK_INT;
        v->u = b;
        return true;
    }
    if (b >= 0xe0) {
        v->kind = RK_INT;
        v->negative = true;
        v->i = (int8_t)b;
        return true;
    }
    if (b <= 0x8f)
        return ref_container(r, RK_MAP, b & 0x0f, depth, v);
    if (b <= 0x9f)
        return ref_container(r, RK_ARRAY, b & 0x0f, depth, v);
    if (b <= 0xbf)
        return ref_bytes(r, RK_STR, b & 0x1f, v);
    switch (b) {
    case 0xc0:
        v->kind = RK_NIL;
        return true;
    case 0xc2:
    case 0xc3:
        v->kind = RK_BOOL;
        v->boolean = b == 0xc3;
        return true;
    case 0xc4:
        return ref_be(r, 1, &n) && ref_bytes(r, RK_BIN, n, v);
    case 0xc5:
        return ref_be(r, 2, &n) && ref_bytes(r, RK_BIN, n, v);
    case 0xc6:
        return ref_be(r, 4, &n) && ref_bytes(r, RK_BIN, n, v);
    case 0xc7:
        return ref_be(r, 1, &n) && ref_ext(r, n, v);
    case 0xc8:
        return ref_be(r, 2, &n) && ref_ext(r, n, v);
    case 0xc9:
        return ref_be(r, 4, &n) && ref_ext(r, n, v);
    case 0xca:
        v->kind = RK_FLOAT;
        return ref_be(r, 4, &n);
    case 0xcb:
        v->kind = RK_FLOAT;
        return ref_be(r, 8, &n);
    case 0xcc:
        v->kind = RK_INT;
        return ref_be(r, 1, &v->u);
    case 0xcd:
        v->kind = RK_INT;
        return ref_be(r, 2, &v->u);
    case 0xce:
        v->kind = RK_INT;
        return ref_be(r, 4, &v->u);
    case 0xcf:
        v->kind = RK_INT;
        return ref_be(r, 8, &v->u);
    case 0xd0:
        return ref_signed(r, 1, v);
    case 0xd1:
        return ref_signed(r, 2, v);
    case 0xd2:
        return ref_signed(r, 4, v);
    case 0xd3:
        return ref_signed(r, 8, v);
    case 0xd4:
        return ref_ext(r, 1, v);
    case 0xd5:
        return ref_ext(r, 2, v);
    case 0xd6:
        return ref_ext(r, 4, v);
    case 0xd7:
        return ref_ext(r, 8, v);
    case 0xd8:
        return ref_ext(r, 16, v);
    case 0xd9:
        return ref_be(r, 1, &n) && ref_bytes(r, RK_STR, n, v);
    case 0xda:
        return ref_be(r, 2, &n) && ref_bytes(r, RK_STR, n, v);
    case 0xdb:
        return ref_be(r, 4, &n) && ref_bytes(r, RK_STR, n, v);
    case 0xdc:
        return ref_be(r, 2, &n) && ref_container(r, RK_ARRAY, n, depth, v);
    case 0xdd:
        return ref_be(r, 4, &n) && ref_container(r, RK_ARRAY, n, depth, v);
    case 0xde:
        return ref_be(r, 2, &n) && ref_container(r, RK_MAP, n, depth, v);
    case 0xdf:
        return ref_be(r, 4, &n) && ref_container(r, RK_MAP, n, depth, v);
    default:
        return false; /* 0xc1 */
    }
}

/* ------------------------------------------------------------------------ */
/* Reference field rules (contract section 2)                               */
/* ------------------------------------------------------------------------ */

static bool ref_is_id(const struct ref_val *v)
{
    if (v->kind != RK_STR || v->n < 1 || v->n > 128)
        return false;
    for (size_t k = 0; k < v->n; k++)
        if (v->s[k] < 0x21 || v->s[k] > 0x7e)
            return false;
    return true;
}

/* UTF-8 by decoding each code point: no NUL, no overlong form, no
 * surrogate, nothing above U+10FFFF. */
static bool ref_utf8(const uint8_t *s, size_t n)
{
    size_t k = 0;
    while (k < n) {
        uint8_t b = s[k];
        size_t len;
        uint32_t cp, min;
        if (b == 0)
            return false;
        if (b < 0x80) {
            k++;
            continue;
        } else if ((b & 0xe0) == 0xc0) {
            len = 2, cp = b & 0x1f, min = 0x80;
        } else if ((b & 0xf0) == 0xe0) {
            len = 3, cp = b & 0x0f, min = 0x800;
        } else if ((b & 0xf8) == 0xf0) {
            len = 4, cp = b & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - k < len)
            return false;
        for (size_t j = 1; j < len; j++) {
            if ((s[k + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[k + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        k += len;
    }
    return true;
}

static bool ref_is_text(const struct ref_val *v, size_t min, size_t max)
{
    return v->kind == RK_STR && v->n >= min && v->n <= max && ref_utf8(v->s, v->n);
}

static bool ref_is_period(const struct ref_val *v)
{
    if (v->kind != RK_STR || v->n != 7)
        return false;
    const uint8_t *p = v->s;
    for (int k = 0; k < 7; k++) {
        if (k == 4 ? p[k] != '-' : (p[k] < '0' || p[k] > '9'))
            return false;
    }
    int month = (p[5] - '0') * 10 + (p[6] - '0');
    return month >= 1 && month <= 12;
}

static void ref_copy(const struct ref_val *v, char *out)
{
    memcpy(out, v->s, v->n);
    out[v->n] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Reference job decoder                                                    */
/* ------------------------------------------------------------------------ */

enum {
    F_V,
    F_ID,
    F_TYPE,
    F_USER,
    F_REPLY,
    F_AMOUNT,
    F_TOOL,
    F_REF,
    F_PACK,
    F_PAYMENT_REF,
    F_PLAN,
    F_PERIOD,
    F_TTL,
    F_HOLD,
    F_CHARGE,
    F_VALID_DAYS,
    F_REASON,
    F_FORFEIT,
    F_COUNT
};
static const char *const ref_names[F_COUNT] = {
    "v",           "id",   "type",   "user", "reply", "amount", "tool",       "ref",    "pack",
    "payment_ref", "plan", "period", "ttl",  "hold",  "charge", "valid_days", "reason", "forfeit",
};

struct ref_key {
    const uint8_t *s;
    size_t n;
};

/* The most entries a 4096-byte map can hold. */
#define REF_ENTRIES_MAX 2048

struct ref_scan {
    bool seen[F_COUNT];
    struct ref_val value[F_COUNT];
    struct ref_key keys[REF_ENTRIES_MAX];
    size_t key_count;
};

/* What the reference decides. */
struct ref_verdict {
    enum job_error error;
    struct job job; /* when JOB_OK */
    bool has_id, has_type, has_user, reply;
    char id[JOB_ID_BYTES_MAX + 1];
    char user[JOB_USER_BYTES_MAX + 1];
    enum job_type type;
};

static int ref_key_compare(const void *a, const void *b)
{
    const struct ref_key *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = n ? memcmp(x->s, y->s, n) : 0;
    if (c != 0)
        return c;
    return (x->n > y->n) - (x->n < y->n);
}

/* The job map, read whole: false when it is not one map of str keys, given
 * once each. `*end` is where it ended (bytes after it do not hide its id). */
static bool ref_scan_map(const uint8_t *d, size_t size, struct ref_scan *scan, size_t *end)
{
    struct ref_reader r = {d, size, 0};
    uint64_t b, count;
    if (!ref_be(&r, 1, &b))
        return false;
    if (b >= 0x80 && b <= 0x8f)
        count = b & 0x0f;
    else if (b == 0xde && ref_be(&r, 2, &count))
        ;
    else if (b == 0xdf && ref_be(&r, 4, &count))
        ;
    else
        return false;
    for (uint64_t k = 0; k < count; k++) {
        struct ref_val key, value;
        if (!ref_value(&r, 2, &key) || key.kind != RK_STR || !ref_value(&r, 2, &value))
            return false;
        if (scan->key_count == REF_ENTRIES_MAX)
            return false; /* cannot happen in 4096 bytes */
        scan->keys[scan->key_count++] = (struct ref_key){key.s, key.n};
        for (int f = 0; f < F_COUNT; f++) {
            if (key.n == strlen(ref_names[f]) && memcmp(key.s, ref_names[f], key.n) == 0) {
                scan->seen[f] = true;
                scan->value[f] = value;
            }
        }
    }
    qsort(scan->keys, scan->key_count, sizeof scan->keys[0], ref_key_compare);
    for (size_t k = 1; k < scan->key_count; k++)
        if (ref_key_compare(&scan->keys[k - 1], &scan->keys[k]) == 0)
            return false;
    *end = r.off;
    return true;
}

/* The types of contract sections 2 and 9.3, spelled out here (not taken
 * from job_type.c's table). */
static bool ref_type(const struct ref_val *v, enum job_type *type)
{
    static const char *const names[] = {"consume", "purchase", "allocate", "hold",  "capture",
                                        "release", "refund",   "revoke",   "grant", "cancel"};
    static const enum job_type types[] = {JOB_CONSUME, JOB_PURCHASE, JOB_ALLOCATE, JOB_HOLD,
                                          JOB_CAPTURE, JOB_RELEASE,  JOB_REFUND,   JOB_REVOKE,
                                          JOB_GRANT,   JOB_CANCEL};
    if (v->kind != RK_STR)
        return false;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (v->n == strlen(names[k]) && memcmp(v->s, names[k], v->n) == 0) {
            *type = types[k];
            return true;
        }
    }
    return false;
}

/* An integer in [min, max] (every bound of the contract is >= 0). */
static bool ref_int_in(const struct ref_val *v, uint64_t min, uint64_t max)
{
    return v->kind == RK_INT && !v->negative && v->u >= min && v->u <= max;
}

/* An optional integer field: absent, or in [min, max]; sets *has, *out. */
static bool ref_opt_int(const struct ref_scan *scan, int f, uint64_t min, uint64_t max, bool *has,
                        int64_t *out)
{
    *has = scan->seen[f];
    if (!*has)
        return true;
    if (!ref_int_in(&scan->value[f], min, max))
        return false;
    *out = (int64_t)scan->value[f].u;
    return true;
}

/* An optional text field of at most `max` bytes; sets *has and copies it. */
static bool ref_opt_text(const struct ref_scan *scan, int f, size_t max, bool *has, char *out)
{
    *has = scan->seen[f];
    if (!*has)
        return true;
    if (!ref_is_text(&scan->value[f], 0, max))
        return false;
    ref_copy(&scan->value[f], out);
    return true;
}

/* A required job ID field (capture's and release's hold, refund's charge). */
static bool ref_req_id(const struct ref_scan *scan, int f, char *out)
{
    if (!scan->seen[f] || !ref_is_id(&scan->value[f]))
        return false;
    ref_copy(&scan->value[f], out);
    return true;
}

/* Contract 9.3: the fields of the revision 2 types. */
static enum job_error ref_fields_revision2(const struct ref_scan *scan, struct job *job)
{
    const struct ref_val *v = scan->value;
    bool ok = false;
    switch (job->type) {
    case JOB_HOLD:
        ok = scan->seen[F_AMOUNT] && ref_int_in(&v[F_AMOUNT], 1, 1000000000) &&
             ref_opt_int(scan, F_TTL, 1, 604800, &job->hold.has_ttl, &job->hold.ttl) &&
             ref_opt_text(scan, F_TOOL, 64, &job->hold.has_tool, job->hold.tool) &&
             ref_opt_text(scan, F_REF, 128, &job->hold.has_ref, job->hold.ref);
        job->hold.amount = (int64_t)v[F_AMOUNT].u;
        break;
    case JOB_CAPTURE:
        ok = ref_req_id(scan, F_HOLD, job->capture.hold) && scan->seen[F_AMOUNT] &&
             ref_int_in(&v[F_AMOUNT], 0, 1000000000);
        job->capture.amount = (int64_t)v[F_AMOUNT].u;
        break;
    case JOB_RELEASE:
        ok = ref_req_id(scan, F_HOLD, job->release.hold);
        break;
    case JOB_REFUND:
        ok = ref_req_id(scan, F_CHARGE, job->refund.charge) &&
             ref_opt_int(scan, F_AMOUNT, 1, 1000000000, &job->refund.has_amount,
                         &job->refund.amount);
        break;
    case JOB_REVOKE:
        ok = scan->seen[F_PAYMENT_REF] && ref_is_text(&v[F_PAYMENT_REF], 1, 128);
        if (ok)
            ref_copy(&v[F_PAYMENT_REF], job->revoke.payment_ref);
        break;
    case JOB_GRANT:
        ok = scan->seen[F_AMOUNT] && ref_int_in(&v[F_AMOUNT], 1, 1000000000) &&
             ref_opt_int(scan, F_VALID_DAYS, 1, 36500, &job->grant.has_valid_days,
                         &job->grant.valid_days) &&
             ref_opt_text(scan, F_REASON, 128, &job->grant.has_reason, job->grant.reason);
        job->grant.amount = (int64_t)v[F_AMOUNT].u;
        break;
    case JOB_CANCEL:
        job->cancel.has_forfeit = scan->seen[F_FORFEIT];
        ok = !scan->seen[F_FORFEIT] || v[F_FORFEIT].kind == RK_BOOL;
        job->cancel.forfeit = job->cancel.has_forfeit && v[F_FORFEIT].boolean;
        break;
    case JOB_CONSUME:
    case JOB_PURCHASE:
    case JOB_ALLOCATE:
        abort(); /* ref_fields() decides these */
    }
    return ok ? JOB_OK : JOB_ERR_INVALID_JOB;
}

/* The fields of a map that was read whole: JOB_OK or the error. */
static enum job_error ref_fields(const struct ref_scan *scan, struct job *job)
{
    const struct ref_val *v = scan->value;
    if (!scan->seen[F_V] || v[F_V].kind != RK_INT)
        return JOB_ERR_INVALID_JOB;
    if (v[F_V].negative || v[F_V].u != 1)
        return JOB_ERR_UNSUPPORTED_VERSION;
    if (!scan->seen[F_ID] || !ref_is_id(&v[F_ID]) || !scan->seen[F_TYPE] ||
        !ref_type(&v[F_TYPE], &job->type) || !scan->seen[F_USER] || !ref_is_id(&v[F_USER]))
        return JOB_ERR_INVALID_JOB;
    if (scan->seen[F_REPLY] && v[F_REPLY].kind != RK_BOOL)
        return JOB_ERR_INVALID_JOB;
    ref_copy(&v[F_ID], job->id);
    ref_copy(&v[F_USER], job->user);
    job->reply = scan->seen[F_REPLY] && v[F_REPLY].boolean;
    switch (job->type) {
    case JOB_CONSUME:
        if (!scan->seen[F_AMOUNT] || v[F_AMOUNT].kind != RK_INT || v[F_AMOUNT].negative ||
            v[F_AMOUNT].u < 1 || v[F_AMOUNT].u > 1000000000)
            return JOB_ERR_INVALID_JOB;
        if ((scan->seen[F_TOOL] && !ref_is_text(&v[F_TOOL], 0, 64)) ||
            (scan->seen[F_REF] && !ref_is_text(&v[F_REF], 0, 128)))
            return JOB_ERR_INVALID_JOB;
        job->consume.amount = (int64_t)v[F_AMOUNT].u;
        job->consume.has_tool = scan->seen[F_TOOL];
        job->consume.has_ref = scan->seen[F_REF];
        if (job->consume.has_tool)
            ref_copy(&v[F_TOOL], job->consume.tool);
        if (job->consume.has_ref)
            ref_copy(&v[F_REF], job->consume.ref);
        return JOB_OK;
    case JOB_PURCHASE:
        if (!scan->seen[F_PACK] || !ref_is_text(&v[F_PACK], 1, 64) || !scan->seen[F_PAYMENT_REF] ||
            !ref_is_text(&v[F_PAYMENT_REF], 1, 128))
            return JOB_ERR_INVALID_JOB;
        ref_copy(&v[F_PACK], job->purchase.pack);
        ref_copy(&v[F_PAYMENT_REF], job->purchase.payment_ref);
        return JOB_OK;
    case JOB_ALLOCATE:
        if (!scan->seen[F_PLAN] || !ref_is_text(&v[F_PLAN], 1, 64) || !scan->seen[F_PERIOD] ||
            !ref_is_period(&v[F_PERIOD]))
            return JOB_ERR_INVALID_JOB;
        ref_copy(&v[F_PLAN], job->allocate.plan);
        ref_copy(&v[F_PERIOD], job->allocate.period);
        return JOB_OK;
    case JOB_HOLD:
    case JOB_CAPTURE:
    case JOB_RELEASE:
    case JOB_REFUND:
    case JOB_REVOKE:
    case JOB_GRANT:
    case JOB_CANCEL:
        return ref_fields_revision2(scan, job);
    }
    abort();
}

static void ref_decide(const uint8_t *d, size_t size, struct ref_verdict *out)
{
    static struct ref_scan scan; /* 32 KiB: off the stack */
    memset(out, 0, sizeof *out);
    memset(&scan, 0, sizeof scan);
    out->error = JOB_ERR_INVALID_JOB;
    size_t end = 0;
    if (size == 0 || size > JOB_BYTES_MAX || !ref_scan_map(d, size, &scan, &end))
        return;
    const struct ref_val *v = scan.value;
    out->has_id = scan.seen[F_ID] && ref_is_id(&v[F_ID]);
    if (out->has_id)
        ref_copy(&v[F_ID], out->id);
    out->has_user = scan.seen[F_USER] && ref_is_id(&v[F_USER]);
    if (out->has_user)
        ref_copy(&v[F_USER], out->user);
    out->has_type = scan.seen[F_TYPE] && ref_type(&v[F_TYPE], &out->type);
    out->reply = scan.seen[F_REPLY] && v[F_REPLY].kind == RK_BOOL && v[F_REPLY].boolean;
    out->error = end != size ? JOB_ERR_INVALID_JOB : ref_fields(&scan, &out->job);
    if (out->error != JOB_OK)
        memset(&out->job, 0, sizeof out->job);
}

/* ------------------------------------------------------------------------ */
/* Checks                                                                   */
/* ------------------------------------------------------------------------ */

/* A C string that ends inside its buffer. */
#define HELD(array) (memchr((array), '\0', sizeof(array)) != NULL)

static void check_job_equal(const struct job *a, const struct job *b)
{
    CHECK(a->type == b->type);
    CHECK(a->reply == b->reply);
    CHECK(HELD(a->id) && HELD(b->id) && strcmp(a->id, b->id) == 0);
    CHECK(HELD(a->user) && HELD(b->user) && strcmp(a->user, b->user) == 0);
    switch (a->type) {
    case JOB_CONSUME:
        CHECK(a->consume.amount == b->consume.amount);
        CHECK(a->consume.has_tool == b->consume.has_tool &&
              a->consume.has_ref == b->consume.has_ref);
        CHECK(HELD(a->consume.tool) && HELD(b->consume.tool) &&
              strcmp(a->consume.tool, b->consume.tool) == 0);
        CHECK(HELD(a->consume.ref) && HELD(b->consume.ref) &&
              strcmp(a->consume.ref, b->consume.ref) == 0);
        break;
    case JOB_PURCHASE:
        CHECK(HELD(a->purchase.pack) && HELD(b->purchase.pack) &&
              strcmp(a->purchase.pack, b->purchase.pack) == 0);
        CHECK(HELD(a->purchase.payment_ref) && HELD(b->purchase.payment_ref) &&
              strcmp(a->purchase.payment_ref, b->purchase.payment_ref) == 0);
        break;
    case JOB_ALLOCATE:
        CHECK(HELD(a->allocate.plan) && HELD(b->allocate.plan) &&
              strcmp(a->allocate.plan, b->allocate.plan) == 0);
        CHECK(HELD(a->allocate.period) && HELD(b->allocate.period) &&
              strcmp(a->allocate.period, b->allocate.period) == 0);
        break;
    case JOB_HOLD:
        CHECK(a->hold.amount == b->hold.amount && a->hold.has_ttl == b->hold.has_ttl);
        CHECK(!a->hold.has_ttl || a->hold.ttl == b->hold.ttl);
        CHECK(a->hold.has_tool == b->hold.has_tool && a->hold.has_ref == b->hold.has_ref);
        CHECK(!a->hold.has_tool || strcmp(a->hold.tool, b->hold.tool) == 0);
        CHECK(!a->hold.has_ref || strcmp(a->hold.ref, b->hold.ref) == 0);
        break;
    case JOB_CAPTURE:
        CHECK(strcmp(a->capture.hold, b->capture.hold) == 0);
        CHECK(a->capture.amount == b->capture.amount);
        break;
    case JOB_RELEASE:
        CHECK(strcmp(a->release.hold, b->release.hold) == 0);
        break;
    case JOB_REFUND:
        CHECK(strcmp(a->refund.charge, b->refund.charge) == 0);
        CHECK(a->refund.has_amount == b->refund.has_amount);
        CHECK(!a->refund.has_amount || a->refund.amount == b->refund.amount);
        break;
    case JOB_REVOKE:
        CHECK(strcmp(a->revoke.payment_ref, b->revoke.payment_ref) == 0);
        break;
    case JOB_GRANT:
        CHECK(a->grant.amount == b->grant.amount);
        CHECK(a->grant.has_valid_days == b->grant.has_valid_days);
        CHECK(!a->grant.has_valid_days || a->grant.valid_days == b->grant.valid_days);
        CHECK(a->grant.has_reason == b->grant.has_reason);
        CHECK(!a->grant.has_reason || strcmp(a->grant.reason, b->grant.reason) == 0);
        break;
    case JOB_CANCEL:
        CHECK(a->cancel.has_forfeit == b->cancel.has_forfeit);
        CHECK(a->cancel.forfeit == b->cancel.forfeit);
        break;
    }
}

/* Contract section 2, checked on the decoded struct with job.c's rules
 * (the reference above already checked them with its own). */
static void check_job_valid(const struct job *job)
{
    CHECK((unsigned)job->type < JOB_TYPE_COUNT);
    CHECK(HELD(job->id) && job_id_is_valid(job->id, strlen(job->id)));
    CHECK(HELD(job->user) && job_id_is_valid(job->user, strlen(job->user)));
    switch (job->type) {
    case JOB_CONSUME:
        CHECK(job->consume.amount >= JOB_AMOUNT_MIN && job->consume.amount <= JOB_AMOUNT_MAX);
        CHECK(job->consume.has_tool || job->consume.tool[0] == '\0');
        CHECK(job->consume.has_ref || job->consume.ref[0] == '\0');
        CHECK(strlen(job->consume.tool) <= JOB_TOOL_BYTES_MAX &&
              job_text_is_valid(job->consume.tool, strlen(job->consume.tool)));
        CHECK(strlen(job->consume.ref) <= JOB_REF_BYTES_MAX &&
              job_text_is_valid(job->consume.ref, strlen(job->consume.ref)));
        break;
    case JOB_PURCHASE:
        CHECK(strlen(job->purchase.pack) >= 1 && strlen(job->purchase.pack) <= JOB_PACK_BYTES_MAX);
        CHECK(job_text_is_valid(job->purchase.pack, strlen(job->purchase.pack)));
        CHECK(strlen(job->purchase.payment_ref) >= 1 &&
              strlen(job->purchase.payment_ref) <= JOB_PAYMENT_REF_BYTES_MAX);
        CHECK(job_text_is_valid(job->purchase.payment_ref, strlen(job->purchase.payment_ref)));
        break;
    case JOB_ALLOCATE:
        CHECK(strlen(job->allocate.plan) >= 1 && strlen(job->allocate.plan) <= JOB_PLAN_BYTES_MAX);
        CHECK(job_text_is_valid(job->allocate.plan, strlen(job->allocate.plan)));
        CHECK(job_period_is_valid(job->allocate.period, strlen(job->allocate.period)));
        break;
    case JOB_HOLD:
        CHECK(job->hold.amount >= JOB_AMOUNT_MIN && job->hold.amount <= JOB_AMOUNT_MAX);
        CHECK(!job->hold.has_ttl || (job->hold.ttl >= 1 && job->hold.ttl <= 604800));
        break;
    case JOB_CAPTURE:
        CHECK(HELD(job->capture.hold) &&
              job_id_is_valid(job->capture.hold, strlen(job->capture.hold)));
        CHECK(job->capture.amount >= 0 && job->capture.amount <= JOB_AMOUNT_MAX);
        break;
    case JOB_RELEASE:
        CHECK(HELD(job->release.hold) &&
              job_id_is_valid(job->release.hold, strlen(job->release.hold)));
        break;
    case JOB_REFUND:
        CHECK(HELD(job->refund.charge) &&
              job_id_is_valid(job->refund.charge, strlen(job->refund.charge)));
        CHECK(!job->refund.has_amount ||
              (job->refund.amount >= JOB_AMOUNT_MIN && job->refund.amount <= JOB_AMOUNT_MAX));
        break;
    case JOB_REVOKE:
        CHECK(strlen(job->revoke.payment_ref) >= 1 &&
              job_text_is_valid(job->revoke.payment_ref, strlen(job->revoke.payment_ref)));
        break;
    case JOB_GRANT:
        CHECK(job->grant.amount >= JOB_AMOUNT_MIN && job->grant.amount <= JOB_AMOUNT_MAX);
        CHECK(!job->grant.has_valid_days ||
              (job->grant.valid_days >= 1 && job->grant.valid_days <= 36500));
        CHECK(job_text_is_valid(job->grant.reason, strlen(job->grant.reason)));
        break;
    case JOB_CANCEL:
        CHECK(job->cancel.has_forfeit || !job->cancel.forfeit);
        break;
    }
}

/* Fields a result does not carry are zeroed, so that whole results compare. */
static void result_normalize(struct result *r)
{
    if (!r->has_type)
        r->type = JOB_CONSUME;
    if (!result_has_balance(r))
        memset(&r->balance, 0, sizeof r->balance);
    uint32_t carried = result_amounts_carried(r);
    for (unsigned a = 0; a < RESULT_AMOUNT_COUNT; a++)
        if ((carried & RESULT_AMOUNT_BIT(a)) == 0)
            r->amounts[a] = 0;
    r->amounts_present = carried;
    if (!r->has_id)
        memset(r->id, 0, sizeof r->id);
    if (!r->has_user)
        memset(r->user, 0, sizeof r->user);
}

static void check_result_equal(const struct result *a, const struct result *b)
{
    CHECK(a->has_id == b->has_id && a->has_type == b->has_type && a->has_user == b->has_user);
    CHECK(HELD(a->id) && HELD(b->id) && strcmp(a->id, b->id) == 0);
    CHECK(HELD(a->user) && HELD(b->user) && strcmp(a->user, b->user) == 0);
    CHECK(!a->has_type || a->type == b->type);
    CHECK(a->error == b->error);
    CHECK(HELD(a->message) && HELD(b->message) && strcmp(a->message, b->message) == 0);
    CHECK(a->balance.total == b->balance.total && a->balance.pack == b->balance.pack &&
          a->balance.monthly == b->balance.monthly && a->balance.grant == b->balance.grant &&
          a->balance.held == b->balance.held);
    CHECK(a->amounts_present == b->amounts_present);
    CHECK(memcmp(a->amounts, b->amounts, sizeof a->amounts) == 0);
    CHECK(a->done_at_ms == b->done_at_ms);
    CHECK(a->replayed == b->replayed);
}

/* encode -> decode gives the same result, and encoding that gives the same
 * bytes (stored results replay byte for byte). */
static void check_result_round_trip(const struct result *in)
{
    struct result want = *in;
    result_normalize(&want);
    msgpack_sbuffer first, second;
    msgpack_sbuffer_init(&first);
    msgpack_sbuffer_init(&second);
    CHECK(codec_encode_result(in, &first) == 0);
    struct result back;
    CHECK(codec_decode_result(first.data, first.size, &back) == 0);
    check_result_equal(&want, &back);
    CHECK(codec_encode_result(&back, &second) == 0);
    CHECK(first.size == second.size && memcmp(first.data, second.data, first.size) == 0);
    msgpack_sbuffer_destroy(&first);
    msgpack_sbuffer_destroy(&second);
}

static uint64_t mix(const uint8_t *d, size_t size)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t k = 0; k < size; k++)
        h = (h ^ d[k]) * UINT64_C(1099511628211);
    return h;
}

/* A result for an accepted job, with amounts taken from the input's hash so
 * that every integer width gets encoded. */
static void check_results_of_job(const struct job *job, uint64_t h)
{
    struct result r;
    result_init_for_job(&r, job);
    /* Any error code: the stored ones of every type, and id_conflict. */
    r.error = (enum job_error)(h % JOB_ERROR_COUNT);
    int64_t x = (int64_t)(h >> 3);
    r.balance = (struct balance){x >> (h & 31), x >> ((h >> 5) & 63), -(x >> 40), x >> 50,
                                 x >> ((h >> 7) & 31)};
    /* Every amount set: the encoder sends those the outcome carries. */
    for (unsigned a = 0; a < RESULT_AMOUNT_COUNT; a++)
        result_set_amount(&r, (enum result_amount)a, x >> (10 + 3 * a));
    r.done_at_ms = (int64_t)(h >> 11);
    r.replayed = (h >> 9) & 1;
    if (r.error != JOB_OK)
        snprintf(r.message, sizeof r.message, "about %s of %s", job->id, job->user);
    check_result_round_trip(&r);
}

static void check_accepted(const struct job *job, const struct ref_verdict *want, uint64_t h)
{
    check_job_valid(job);
    check_job_equal(job, &want->job);

    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    CHECK(codec_encode_job(job, &buf) == 0);
    CHECK(buf.size <= JOB_BYTES_MAX);
    struct job again;
    struct result reject;
    CHECK(codec_decode_job(buf.data, buf.size, &again, &reject) == JOB_OK);
    check_job_equal(job, &again);
    /* A producer's bytes and ours are the same job for id_conflict. */
    msgpack_sbuffer req1, req2;
    msgpack_sbuffer_init(&req1);
    msgpack_sbuffer_init(&req2);
    CHECK(codec_encode_request(job, &req1) == 0);
    CHECK(codec_encode_request(&again, &req2) == 0);
    CHECK(req1.size == req2.size && memcmp(req1.data, req2.data, req1.size) == 0);
    msgpack_sbuffer_destroy(&req1);
    msgpack_sbuffer_destroy(&req2);
    msgpack_sbuffer_destroy(&buf);

    check_results_of_job(job, h);
}

static void check_rejected(enum job_error error, const struct job *job, const struct result *reject,
                           const struct ref_verdict *want)
{
    /* Only the unstored errors about the message itself. */
    CHECK(error == JOB_ERR_INVALID_JOB || error == JOB_ERR_UNSUPPORTED_VERSION);
    CHECK(!job_error_is_stored(error));
    CHECK(reject->error == error);
    CHECK(HELD(reject->message) && reject->message[0] != '\0');
    CHECK(job_text_is_valid(reject->message, strlen(reject->message)));
    CHECK(reject->done_at_ms == 0 && !reject->replayed);
    CHECK(!reject->has_id || job_id_is_valid(reject->id, strlen(reject->id)));
    CHECK(!reject->has_user || job_id_is_valid(reject->user, strlen(reject->user)));
    CHECK(!reject->has_type || (unsigned)reject->type < JOB_TYPE_COUNT);
    /* What the rejection names is exactly what was readable. */
    CHECK(reject->has_id == want->has_id);
    CHECK(!want->has_id || strcmp(reject->id, want->id) == 0);
    CHECK(reject->has_user == want->has_user);
    CHECK(!want->has_user || strcmp(reject->user, want->user) == 0);
    CHECK(reject->has_type == want->has_type);
    CHECK(!want->has_type || reject->type == want->type);
    CHECK(job->reply == want->reply);
    check_result_round_trip(reject);
}

/* Bytes that happen to be a result: sane, and stable under re-encoding. */
static void check_as_result(const uint8_t *data, size_t size)
{
    struct result r;
    if (codec_decode_result(data, size, &r) != 0)
        return;
    CHECK((unsigned)r.error < JOB_ERROR_COUNT);
    CHECK(!r.has_type || (unsigned)r.type < JOB_TYPE_COUNT);
    CHECK(HELD(r.id) && HELD(r.user) && HELD(r.message));
    CHECK(r.has_id || r.id[0] == '\0');
    CHECK(r.has_user || r.user[0] == '\0');
    check_result_round_trip(&r);
}

/* codec_decode_identity() reads at least what the decoder could name: the
 * id of an accepted job, and of a rejection that named one; any id it
 * reads passes the ID rule. Also on the first bytes of the input, as the
 * queue keeps them of a longer job. */
static void check_identity(const uint8_t *data, size_t size, enum job_error error,
                           const struct job *job, const struct result *reject)
{
    struct result identity;
    bool reply = false;
    codec_decode_identity(data, size, &identity, &reply);
    if (error == JOB_OK) {
        CHECK(identity.has_id && strcmp(identity.id, job->id) == 0);
        CHECK(reply == job->reply);
    } else if (reject->has_id) {
        CHECK(identity.has_id && strcmp(identity.id, reject->id) == 0);
    }
    CHECK(!identity.has_id || job_id_is_valid(identity.id, strlen(identity.id)));
    codec_decode_identity(data, size / 2, &identity, &reply);
    CHECK(!identity.has_id || job_id_is_valid(identity.id, strlen(identity.id)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ref_verdict want;
    ref_decide(data, size, &want);

    struct job job;
    struct result reject;
    enum job_error error = codec_decode_job(data, size, &job, &reject);
    CHECK(error == want.error);
    if (error == JOB_OK)
        check_accepted(&job, &want, mix(data, size));
    else
        check_rejected(error, &job, &reject, &want);

    check_identity(data, size, error, &job, &reject);
    check_as_result(data, size);
    return 0;
}
