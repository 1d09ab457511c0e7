/*
 * codec.c -- msgpack wire format of jobs and results (contract sections 2, 3).
 *
 * Owns a bounded msgpack reader for untrusted bytes (it never reads past the
 * end, never recurses and allocates nothing), the job and result maps on the
 * wire, and the canonical request bytes compared for id_conflict. Encoding
 * goes through msgpack-c's packer. The byte rules of single fields (IDs,
 * periods, text) live in job.c.
 */
#include "core/codec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Bounded msgpack reader                                                   */
/* ------------------------------------------------------------------------ */

/* Containers nested in one message, the outermost map included. Contract v1
 * nests two deep (a result's balance); 32 leaves room for producers' unknown
 * keys and matches msgpack-c's own unpacker limit. */
#define CODEC_DEPTH_MAX 32

enum mp_kind {
    MP_INVALID = 0, /* the format byte 0xc1, never used by msgpack */
    MP_NIL,
    MP_BOOL,
    MP_UINT, /* an integer >= 0, whatever its encoding */
    MP_NINT, /* an integer < 0; in mp_formats: a signed int format */
    MP_FLOAT,
    MP_STR,
    MP_BIN,
    MP_ARRAY,
    MP_MAP,
    MP_EXT,
};

/*
 * The head of one value. Scalars are complete. For str, bin and ext,
 * `bytes`/`len` is the payload, inside the reader's buffer (borrowed from it).
 * For array and map, `len` is the element or entry count; the elements follow
 * the head and are read (or skipped) separately.
 */
struct mp_item {
    enum mp_kind kind;
    bool boolean;
    uint64_t uint_value;
    int64_t nint_value;
    const uint8_t *bytes;
    uint64_t len;
};

/* A cursor over borrowed bytes. Invariant: off <= len. */
struct mp_cursor {
    const uint8_t *buf;
    size_t len;
    size_t off;
};

/* The formats 0xc0..0xdf. `len_bytes`: size of the big-endian length or
 * count that follows the format byte; `value_bytes`: size of a fixed payload
 * (the int or float itself, or a fixext's data). */
struct mp_format {
    uint8_t kind;
    uint8_t len_bytes;
    uint8_t value_bytes;
};

static const struct mp_format mp_formats[32] = {
    [0x00] = {MP_NIL, 0, 0},  [0x01] = {MP_INVALID, 0, 0}, [0x02] = {MP_BOOL, 0, 0},
    [0x03] = {MP_BOOL, 0, 0}, [0x04] = {MP_BIN, 1, 0},     [0x05] = {MP_BIN, 2, 0},
    [0x06] = {MP_BIN, 4, 0},  [0x07] = {MP_EXT, 1, 0},     [0x08] = {MP_EXT, 2, 0},
    [0x09] = {MP_EXT, 4, 0},  [0x0a] = {MP_FLOAT, 0, 4},   [0x0b] = {MP_FLOAT, 0, 8},
    [0x0c] = {MP_UINT, 0, 1}, [0x0d] = {MP_UINT, 0, 2},    [0x0e] = {MP_UINT, 0, 4},
    [0x0f] = {MP_UINT, 0, 8}, [0x10] = {MP_NINT, 0, 1},    [0x11] = {MP_NINT, 0, 2},
    [0x12] = {MP_NINT, 0, 4}, [0x13] = {MP_NINT, 0, 8},    [0x14] = {MP_EXT, 0, 1},
    [0x15] = {MP_EXT, 0, 2},  [0x16] = {MP_EXT, 0, 4},     [0x17] = {MP_EXT, 0, 8},
    [0x18] = {MP_EXT, 0, 16}, [0x19] = {MP_STR, 1, 0},     [0x1a] = {MP_STR, 2, 0},
    [0x1b] = {MP_STR, 4, 0},  [0x1c] = {MP_ARRAY, 2, 0},   [0x1d] = {MP_ARRAY, 4, 0},
    [0x1e] = {MP_MAP, 2, 0},  [0x1f] = {MP_MAP, 4, 0},
};

static size_t mp_left(const struct mp_cursor *c)
{
    ASSERT(c->buf != NULL || c->len == 0);
    ASSERT(c->off <= c->len);
    return c->len - c->off;
}

/* Takes an n-byte (n <= 8) big-endian unsigned number. */
static bool mp_take_be(struct mp_cursor *c, size_t n, uint64_t *out)
{
    ASSERT(n <= 8);
    if (mp_left(c) < n)
        return false;
    uint64_t value = 0;
    for (size_t i = 0; i < n; i++)
        value = (value << 8) | c->buf[c->off + i];
    c->off += n;
    *out = value;
    return true;
}

/* Takes n payload bytes, leaving `bytes` pointing at them. */
static bool mp_take_bytes(struct mp_cursor *c, uint64_t n, const uint8_t **bytes)
{
    if (n > mp_left(c))
        return false;
    *bytes = c->buf + c->off;
    c->off += (size_t)n;
    ASSERT(c->off <= c->len);
    return true;
}

/* Sign-extends an n-byte two's complement number. */
static int64_t mp_sign_extend(uint64_t raw, size_t n)
{
    ASSERT(n >= 1 && n <= 8);
    unsigned bits = (unsigned)(8 * n);
    uint64_t mask = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    ASSERT((raw & ~mask) == 0);
    if (((raw >> (bits - 1)) & 1) == 0)
        return (int64_t)raw;
    /* ~raw & mask is at most 2^(bits-1) - 1, so this never overflows. */
    return -(int64_t)(~raw & mask) - 1;
}

static void mp_set_int(struct mp_item *item, int64_t value)
{
    ASSERT(item != NULL);
    if (value >= 0) {
        item->kind = MP_UINT;
        item->uint_value = (uint64_t)value;
    } else {
        item->kind = MP_NINT;
        item->nint_value = value;
    }
    ASSERT(item->kind == MP_UINT || item->nint_value < 0);
}

/*
 * Every element takes at least one byte and every map entry two, so a count
 * that the bytes left cannot hold is a lie: refused here, before anything
 * trusts it. That is what keeps a 5-byte "4 billion elements" header cheap.
 */
static bool mp_read_container(struct mp_cursor *c, enum mp_kind kind, uint64_t count,
                              struct mp_item *item)
{
    ASSERT(kind == MP_ARRAY || kind == MP_MAP);
    ASSERT(count <= UINT32_MAX);
    uint64_t bytes_min = kind == MP_MAP ? 2 * count : count;
    if (bytes_min > mp_left(c))
        return false;
    item->kind = kind;
    item->len = count;
    return true;
}

static bool mp_read_payload(struct mp_cursor *c, enum mp_kind kind, uint64_t len,
                            struct mp_item *item)
{
    ASSERT(kind == MP_STR || kind == MP_BIN || kind == MP_EXT);
    ASSERT(len <= UINT32_MAX);
    item->kind = kind;
    item->len = len;
    return mp_take_bytes(c, len, &item->bytes);
}

/* The formats 0xc0..0xdf: the format byte is already taken. */
static bool mp_read_format(struct mp_cursor *c, uint8_t format_byte, struct mp_item *item)
{
    ASSERT(format_byte >= 0xc0 && format_byte <= 0xdf);
    const struct mp_format *f = &mp_formats[format_byte - 0xc0];
    uint64_t n = 0;
    if (f->kind == MP_INVALID || !mp_take_be(c, f->len_bytes, &n))
        return false;
    switch ((enum mp_kind)f->kind) {
    case MP_NIL:
        item->kind = MP_NIL;
        return true;
    case MP_BOOL:
        item->kind = MP_BOOL;
        item->boolean = format_byte == 0xc3;
        return true;
    case MP_UINT:
        item->kind = MP_UINT;
        return mp_take_be(c, f->value_bytes, &item->uint_value);
    case MP_NINT:
        if (!mp_take_be(c, f->value_bytes, &n))
            return false;
        mp_set_int(item, mp_sign_extend(n, f->value_bytes));
        return true;
    case MP_FLOAT:
        item->kind = MP_FLOAT; /* no field of the contract is a float */
        return mp_take_be(c, f->value_bytes, &n);
    case MP_STR:
    case MP_BIN:
        return mp_read_payload(c, (enum mp_kind)f->kind, n, item);
    case MP_EXT: {
        uint64_t ext_type;
        uint64_t data_len = f->len_bytes > 0 ? n : f->value_bytes;
        return mp_take_be(c, 1, &ext_type) && mp_read_payload(c, MP_EXT, data_len, item);
    }
    case MP_ARRAY:
    case MP_MAP:
        return mp_read_container(c, (enum mp_kind)f->kind, n, item);
    case MP_INVALID:
        break;
    }
    UNREACHABLE();
    return false;
}

static bool mp_read_head(struct mp_cursor *c, struct mp_item *item)
{
    ASSERT(item != NULL);
    memset(item, 0, sizeof *item);
    if (mp_left(c) == 0)
        return false;
    uint8_t b = c->buf[c->off++];
    if (b <= 0x7f) {
        item->kind = MP_UINT;
        item->uint_value = b;
        return true;
    }
    if (b >= 0xe0) {
        item->kind = MP_NINT;
        item->nint_value = (int64_t)b - 256;
        return true;
    }
    if (b <= 0x8f)
        return mp_read_container(c, MP_MAP, b & 0x0fu, item);
    if (b <= 0x9f)
        return mp_read_container(c, MP_ARRAY, b & 0x0fu, item);
    if (b <= 0xbf)
        return mp_read_payload(c, MP_STR, b & 0x1fu, item);
    return mp_read_format(c, b, item);
}

static bool mp_has_payload(const struct mp_item *item)
{
    return item->kind == MP_STR || item->kind == MP_BIN || item->kind == MP_EXT;
}

/* Reads the head of the next value. False when the bytes are not msgpack
 * (0xc1, or truncated, or a container count larger than the bytes left);
 * the cursor is then of no further use. */
static bool mp_read(struct mp_cursor *c, struct mp_item *item)
{
    size_t start = c->off;
    bool ok = mp_read_head(c, item);
    ASSERT(c->off <= c->len);
    ASSERT(!ok || c->off > start);
    ASSERT(!ok || !mp_has_payload(item) || item->bytes + item->len == c->buf + c->off);
    return ok;
}

static bool mp_is_container(const struct mp_item *item)
{
    ASSERT(item != NULL);
    ASSERT(item->kind <= MP_EXT);
    return item->kind == MP_ARRAY || item->kind == MP_MAP;
}

static uint64_t mp_element_count(const struct mp_item *item)
{
    ASSERT(mp_is_container(item));
    ASSERT(item->len <= UINT32_MAX);
    return item->kind == MP_MAP ? 2 * item->len : item->len;
}

/*
 * Skips the elements of `head`, a value whose head was just read, allowing
 * `depth_max` levels of containers (head itself is level 1). Iterative, over
 * a fixed stack of "elements left" per open container: no recursion, no
 * allocation, and every step either takes a byte or closes a container, so
 * it ends within 2 * len steps.
 */
static bool mp_skip_contents(struct mp_cursor *c, const struct mp_item *head, size_t depth_max)
{
    ASSERT(depth_max <= CODEC_DEPTH_MAX);
    if (!mp_is_container(head))
        return true;
    if (depth_max == 0)
        return false;
    uint64_t left[CODEC_DEPTH_MAX];
    size_t depth = 0;
    left[depth++] = mp_element_count(head);
    while (depth > 0) {
        ASSERT(depth <= depth_max);
        if (left[depth - 1] == 0) {
            depth--;
            continue;
        }
        left[depth - 1]--;
        struct mp_item item;
        if (!mp_read(c, &item))
            return false;
        if (!mp_is_container(&item))
            continue;
        if (depth >= depth_max)
            return false; /* item would open level depth + 1 */
        left[depth++] = mp_element_count(&item);
    }
    return true;
}

enum mp_entry_status {
    MP_ENTRY_OK,
    MP_ENTRY_MALFORMED,
    MP_ENTRY_KEY_NOT_STR,
};

/* One map entry: a str key and a value, read whole (its contents skipped).
 * `value_off` is where the value starts, to read a container again. */
struct mp_entry {
    struct mp_item key;
    struct mp_item value;
    size_t value_off;
};

static enum mp_entry_status mp_read_entry(struct mp_cursor *c, size_t depth_max,
                                          struct mp_entry *entry)
{
    ASSERT(depth_max <= CODEC_DEPTH_MAX);
    if (!mp_read(c, &entry->key))
        return MP_ENTRY_MALFORMED;
    if (entry->key.kind != MP_STR)
        return MP_ENTRY_KEY_NOT_STR;
    entry->value_off = c->off;
    if (!mp_read(c, &entry->value) || !mp_skip_contents(c, &entry->value, depth_max))
        return MP_ENTRY_MALFORMED;
    ASSERT(c->off > entry->value_off);
    return MP_ENTRY_OK;
}

/* The index of a str key in `names`, or `count` when it is not one of them. */
static size_t mp_key_index(const struct mp_item *key, const char *const *names, size_t count)
{
    ASSERT(key->kind == MP_STR);
    ASSERT(names != NULL);
    for (size_t i = 0; i < count; i++) {
        size_t name_len = strlen(names[i]);
        if (key->len == name_len && memcmp(key->bytes, names[i], name_len) == 0)
            return i;
    }
    return count;
}

static bool mp_int64(const struct mp_item *item, int64_t *out)
{
    ASSERT(item != NULL);
    ASSERT(out != NULL);
    if (item->kind == MP_NINT) {
        *out = item->nint_value;
        return true;
    }
    if (item->kind != MP_UINT || item->uint_value > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)item->uint_value;
    return true;
}

/* Copies a str of at most `size - 1` bytes and no NUL into a C string. */
static bool mp_copy_str(const struct mp_item *item, char *out, size_t size)
{
    ASSERT(size > 0);
    if (item->kind != MP_STR || item->len >= size)
        return false;
    if (item->len > 0 && memchr(item->bytes, '\0', (size_t)item->len) != NULL)
        return false;
    if (item->len > 0)
        memcpy(out, item->bytes, (size_t)item->len);
    out[item->len] = '\0';
    return true;
}

/* ------------------------------------------------------------------------ */
/* Jobs: decoding                                                           */
/* ------------------------------------------------------------------------ */

enum job_key {
    KEY_V,
    KEY_ID,
    KEY_TYPE,
    KEY_USER,
    KEY_REPLY,
    KEY_AMOUNT,
    KEY_TOOL,
    KEY_REF,
    KEY_PACK,
    KEY_PAYMENT_REF,
    KEY_PLAN,
    KEY_PERIOD,
    KEY_COUNT, /* also "not a key of the contract" */
};

static const char *const job_key_names[KEY_COUNT] = {
    [KEY_V] = "v",         [KEY_ID] = "id",
    [KEY_TYPE] = "type",   [KEY_USER] = "user",
    [KEY_REPLY] = "reply", [KEY_AMOUNT] = "amount",
    [KEY_TOOL] = "tool",   [KEY_REF] = "ref",
    [KEY_PACK] = "pack",   [KEY_PAYMENT_REF] = "payment_ref",
    [KEY_PLAN] = "plan",   [KEY_PERIOD] = "period",
};

/* A map of n entries takes at least 1 + 2n bytes. */
#define JOB_ENTRIES_MAX ((JOB_BYTES_MAX - 1) / 2)

struct key_span {
    const uint8_t *bytes;
    size_t len;
};

/* What one pass over the job map found: the value of each contract key, and
 * the other keys (kept only to refuse one given twice). Borrows the input. */
struct job_scan {
    bool seen[KEY_COUNT];
    struct mp_item value[KEY_COUNT];
    struct key_span unknown[JOB_ENTRIES_MAX];
    size_t unknown_count;
    size_t end_off; /* where the map ended */
};

/* The rule of one str field of a job: byte length, a byte-level check from
 * job.c, and the words that tell a producer what was expected. */
struct str_rule {
    size_t bytes_min;
    size_t bytes_max;
    bool (*check)(const char *bytes, size_t len);
    const char *expected;
};

static const struct str_rule rule_id = {
    1, JOB_ID_BYTES_MAX, job_id_is_valid,
    "a string of 1 to 128 printable ASCII characters (0x21 to 0x7e)"};
static const struct str_rule rule_tool = {0, JOB_TOOL_BYTES_MAX, job_text_is_valid,
                                          "a UTF-8 string of at most 64 bytes without NUL"};
static const struct str_rule rule_ref = {0, JOB_REF_BYTES_MAX, job_text_is_valid,
                                         "a UTF-8 string of at most 128 bytes without NUL"};
static const struct str_rule rule_pack = {1, JOB_PACK_BYTES_MAX, job_text_is_valid,
                                          "a UTF-8 string of 1 to 64 bytes without NUL"};
static const struct str_rule rule_payment_ref = {1, JOB_PAYMENT_REF_BYTES_MAX, job_text_is_valid,
                                                 "a UTF-8 string of 1 to 128 bytes without NUL"};
static const struct str_rule rule_plan = {1, JOB_PLAN_BYTES_MAX, job_text_is_valid,
                                          "a UTF-8 string of 1 to 64 bytes without NUL"};
static const struct str_rule rule_period = {JOB_PERIOD_BYTES, JOB_PERIOD_BYTES, job_period_is_valid,
                                            "a string YYYY-MM with month 01 to 12"};

static void reject_set(struct result *reject, enum job_error error, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void reject_set(struct result *reject, enum job_error error, const char *format, ...)
{
    ASSERT(error == JOB_ERR_INVALID_JOB || error == JOB_ERR_UNSUPPORTED_VERSION);
    ASSERT(format != NULL);
    reject->error = error;
    va_list args;
    va_start(args, format);
    /* Truncation is harmless: every message is ASCII, so a cut one is still
     * valid UTF-8. */
    (void)vsnprintf(reject->message, sizeof reject->message, format, args);
    va_end(args);
}

static bool key_is_printable(const struct key_span *key)
{
    ASSERT(key->bytes != NULL);
    ASSERT(key->len < JOB_BYTES_MAX);
    if (key->len == 0 || key->len > 64)
        return false;
    for (size_t i = 0; i < key->len; i++) {
        if (key->bytes[i] < 0x20 || key->bytes[i] > 0x7e)
            return false;
    }
    return true;
}

static int key_span_compare(const void *a, const void *b)
{
    const struct key_span *x = a;
    const struct key_span *y = b;
    ASSERT(x->bytes != NULL && y->bytes != NULL);
    ASSERT(x->len < JOB_BYTES_MAX && y->len < JOB_BYTES_MAX);
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    if (x->len == 0)
        return 0;
    return memcmp(x->bytes, y->bytes, x->len);
}

/* Keys outside the contract are ignored, but a key given twice makes the job
 * invalid whatever the key (contract section 2): sort and compare neighbours. */
static bool job_unknown_keys_unique(struct job_scan *scan, struct result *reject)
{
    ASSERT(scan->unknown_count <= JOB_ENTRIES_MAX);
    if (scan->unknown_count < 2)
        return true;
    qsort(scan->unknown, scan->unknown_count, sizeof scan->unknown[0], key_span_compare);
    for (size_t i = 1; i < scan->unknown_count; i++) {
        const struct key_span *key = &scan->unknown[i];
        if (key_span_compare(&scan->unknown[i - 1], key) != 0)
            continue;
        if (key_is_printable(key))
            reject_set(reject, JOB_ERR_INVALID_JOB, "duplicate key '%.*s'", (int)key->len,
                       (const char *)key->bytes);
        else
            reject_set(reject, JOB_ERR_INVALID_JOB, "duplicate key (%zu bytes, not printable)",
                       key->len);
        return false;
    }
    return true;
}

static bool job_scan_entry(struct mp_cursor *c, struct job_scan *scan, struct result *reject)
{
    struct mp_entry entry;
    switch (mp_read_entry(c, CODEC_DEPTH_MAX - 1, &entry)) {
    case MP_ENTRY_OK:
        break;
    case MP_ENTRY_MALFORMED:
        reject_set(reject, JOB_ERR_INVALID_JOB,
                   "not msgpack: malformed, truncated or nested more than 32 deep");
        return false;
    case MP_ENTRY_KEY_NOT_STR:
        reject_set(reject, JOB_ERR_INVALID_JOB, "map keys must be strings");
        return false;
    }
    ASSERT(entry.key.kind == MP_STR);
    size_t key = mp_key_index(&entry.key, job_key_names, KEY_COUNT);
    ASSERT(key <= KEY_COUNT);
    if (key == KEY_COUNT) {
        ASSERT(scan->unknown_count < JOB_ENTRIES_MAX);
        struct key_span span = {entry.key.bytes, (size_t)entry.key.len};
        scan->unknown[scan->unknown_count++] = span;
        return true;
    }
    if (scan->seen[key]) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "duplicate key '%s'", job_key_names[key]);
        return false;
    }
    scan->seen[key] = true;
    scan->value[key] = entry.value;
    return true;
}

/* The single pass: reads the map and records where every value is. */
static bool job_scan_map(const uint8_t *buf, size_t len, struct job_scan *scan,
                         struct result *reject)
{
    ASSERT(len > 0 && len <= JOB_BYTES_MAX);
    struct mp_cursor c = {buf, len, 0};
    struct mp_item top;
    if (!mp_read(&c, &top)) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "not msgpack");
        return false;
    }
    if (top.kind != MP_MAP) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "job must be a map");
        return false;
    }
    ASSERT(top.len <= JOB_ENTRIES_MAX);
    for (uint64_t i = 0; i < top.len; i++) {
        if (!job_scan_entry(&c, scan, reject))
            return false;
    }
    if (!job_unknown_keys_unique(scan, reject))
        return false;
    scan->end_off = c.off;
    ASSERT(scan->end_off <= len);
    return true;
}

/* id, type and user as far as they are readable (present once, a str, and
 * passing their rule), so that a rejection can still name the job. */
static void job_fill_identity(const struct job_scan *scan, struct result *reject)
{
    const struct mp_item *id = &scan->value[KEY_ID];
    const struct mp_item *type = &scan->value[KEY_TYPE];
    const struct mp_item *user = &scan->value[KEY_USER];
    if (scan->seen[KEY_ID] && id->kind == MP_STR &&
        job_id_is_valid((const char *)id->bytes, (size_t)id->len))
        reject->has_id = mp_copy_str(id, reject->id, sizeof reject->id);
    if (scan->seen[KEY_USER] && user->kind == MP_STR &&
        job_id_is_valid((const char *)user->bytes, (size_t)user->len))
        reject->has_user = mp_copy_str(user, reject->user, sizeof reject->user);
    if (scan->seen[KEY_TYPE] && type->kind == MP_STR)
        reject->has_type =
            job_type_parse((const char *)type->bytes, (size_t)type->len, &reject->type);
    ASSERT(!reject->has_id || job_id_is_valid(reject->id, strlen(reject->id)));
}

/* `v` first: a job of another version may have another shape, so its fields
 * are not judged by the rules of version 1. */
static enum job_error job_check_version(const struct job_scan *scan, struct result *reject)
{
    ASSERT(reject->error == JOB_OK);
    ASSERT(reject->message[0] == '\0');
    const struct mp_item *v = &scan->value[KEY_V];
    if (!scan->seen[KEY_V]) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "field 'v' is required (the contract version)");
        return JOB_ERR_INVALID_JOB;
    }
    if (v->kind == MP_NINT) {
        reject_set(reject, JOB_ERR_UNSUPPORTED_VERSION,
                   "version %" PRId64 " is not supported; this worker reads version %d",
                   v->nint_value, JOB_VERSION);
        return JOB_ERR_UNSUPPORTED_VERSION;
    }
    if (v->kind != MP_UINT) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "field 'v' must be an integer");
        return JOB_ERR_INVALID_JOB;
    }
    if (v->uint_value != JOB_VERSION) {
        reject_set(reject, JOB_ERR_UNSUPPORTED_VERSION,
                   "version %" PRIu64 " is not supported; this worker reads version %d",
                   v->uint_value, JOB_VERSION);
        return JOB_ERR_UNSUPPORTED_VERSION;
    }
    return JOB_OK;
}

enum field_state {
    FIELD_ABSENT,
    FIELD_OK,
    FIELD_BAD, /* reject is filled */
};

static enum field_state job_read_str(const struct job_scan *scan, enum job_key key,
                                     const struct str_rule *rule, char *out, size_t out_size,
                                     struct result *reject)
{
    ASSERT(rule->bytes_min <= rule->bytes_max);
    ASSERT(rule->bytes_max < out_size);
    if (!scan->seen[key])
        return FIELD_ABSENT;
    const struct mp_item *item = &scan->value[key];
    bool ok = item->kind == MP_STR && item->len >= rule->bytes_min &&
              item->len <= rule->bytes_max &&
              rule->check((const char *)item->bytes, (size_t)item->len);
    if (!ok || !mp_copy_str(item, out, out_size)) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "field '%s' must be %s", job_key_names[key],
                   rule->expected);
        return FIELD_BAD;
    }
    return FIELD_OK;
}

static bool job_require_str(const struct job_scan *scan, enum job_key key,
                            const struct str_rule *rule, char *out, size_t out_size,
                            struct result *reject)
{
    enum field_state state = job_read_str(scan, key, rule, out, out_size, reject);
    if (state == FIELD_ABSENT)
        reject_set(reject, JOB_ERR_INVALID_JOB, "field '%s' is required", job_key_names[key]);
    ASSERT(state != FIELD_OK || strlen(out) >= rule->bytes_min);
    return state == FIELD_OK;
}

static bool job_read_common(const struct job_scan *scan, struct job *job, struct result *reject)
{
    ASSERT(scan->seen[KEY_V]);
    if (!job_require_str(scan, KEY_ID, &rule_id, job->id, sizeof job->id, reject))
        return false;
    const struct mp_item *type = &scan->value[KEY_TYPE];
    if (!scan->seen[KEY_TYPE]) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "field 'type' is required");
        return false;
    }
    if (type->kind != MP_STR ||
        !job_type_parse((const char *)type->bytes, (size_t)type->len, &job->type)) {
        reject_set(reject, JOB_ERR_INVALID_JOB,
                   "field 'type' must be one of consume, purchase, allocate");
        return false;
    }
    if (!job_require_str(scan, KEY_USER, &rule_id, job->user, sizeof job->user, reject))
        return false;
    const struct mp_item *reply = &scan->value[KEY_REPLY];
    if (scan->seen[KEY_REPLY] && reply->kind != MP_BOOL) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "field 'reply' must be true or false");
        return false;
    }
    job->reply = scan->seen[KEY_REPLY] && reply->boolean;
    return true;
}

static bool job_read_consume(const struct job_scan *scan, struct job *job, struct result *reject)
{
    ASSERT(job->type == JOB_CONSUME);
    const struct mp_item *amount = &scan->value[KEY_AMOUNT];
    if (!scan->seen[KEY_AMOUNT]) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "field 'amount' is required");
        return false;
    }
    if (amount->kind != MP_UINT || amount->uint_value < JOB_AMOUNT_MIN ||
        amount->uint_value > JOB_AMOUNT_MAX) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "field 'amount' must be an integer from %d to %d",
                   JOB_AMOUNT_MIN, JOB_AMOUNT_MAX);
        return false;
    }
    job->amount = (int64_t)amount->uint_value;
    ASSERT(job->amount >= JOB_AMOUNT_MIN && job->amount <= JOB_AMOUNT_MAX);
    enum field_state tool =
        job_read_str(scan, KEY_TOOL, &rule_tool, job->tool, sizeof job->tool, reject);
    if (tool == FIELD_BAD)
        return false;
    enum field_state ref =
        job_read_str(scan, KEY_REF, &rule_ref, job->ref, sizeof job->ref, reject);
    if (ref == FIELD_BAD)
        return false;
    job->has_tool = tool == FIELD_OK;
    job->has_ref = ref == FIELD_OK;
    return true;
}

/* The fields of the job's own type; those of other types are ignored like
 * unknown keys (neither validated nor compared). */
static bool job_read_type_fields(const struct job_scan *scan, struct job *job,
                                 struct result *reject)
{
    switch (job->type) {
    case JOB_CONSUME:
        return job_read_consume(scan, job, reject);
    case JOB_PURCHASE:
        return job_require_str(scan, KEY_PACK, &rule_pack, job->pack, sizeof job->pack, reject) &&
               job_require_str(scan, KEY_PAYMENT_REF, &rule_payment_ref, job->payment_ref,
                               sizeof job->payment_ref, reject);
    case JOB_ALLOCATE:
        return job_require_str(scan, KEY_PLAN, &rule_plan, job->plan, sizeof job->plan, reject) &&
               job_require_str(scan, KEY_PERIOD, &rule_period, job->period, sizeof job->period,
                               reject);
    }
    UNREACHABLE();
    return false;
}

/* Everything after the single pass, in the order a producer fixes things:
 * the bytes, the version, the common fields, the type's fields. */
static enum job_error job_read_fields(const struct job_scan *scan, size_t len, struct job *job,
                                      struct result *reject)
{
    ASSERT(scan->end_off <= len);
    ASSERT(reject->error == JOB_OK);
    if (scan->end_off != len) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "trailing bytes after the job map");
        return JOB_ERR_INVALID_JOB;
    }
    enum job_error version = job_check_version(scan, reject);
    if (version != JOB_OK)
        return version;
    if (!job_read_common(scan, job, reject) || !job_read_type_fields(scan, job, reject))
        return JOB_ERR_INVALID_JOB;
    return JOB_OK;
}

enum job_error codec_decode_job(const void *buf, size_t len, struct job *job, struct result *reject)
{
    ASSERT(buf != NULL || len == 0);
    ASSERT(job != NULL);
    ASSERT(reject != NULL);
    memset(job, 0, sizeof *job);
    memset(reject, 0, sizeof *reject);
    if (len == 0) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "job is empty");
        return JOB_ERR_INVALID_JOB;
    }
    if (len > JOB_BYTES_MAX) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "job is %zu bytes; the limit is %d", len,
                   JOB_BYTES_MAX);
        return JOB_ERR_INVALID_JOB;
    }
    struct job_scan scan;
    memset(&scan, 0, sizeof scan);
    if (!job_scan_map(buf, len, &scan, reject))
        return JOB_ERR_INVALID_JOB;
    job_fill_identity(&scan, reject);
    enum job_error error = job_read_fields(&scan, len, job, reject);
    if (error != JOB_OK) {
        ASSERT(reject->error == error);
        memset(job, 0, sizeof *job);
        /* Beyond the header's promise, a readable `reply` survives a
         * rejection, so that the worker can still answer a producer that
         * waits on P:reply:{id}. */
        const struct mp_item *reply = &scan.value[KEY_REPLY];
        job->reply = scan.seen[KEY_REPLY] && reply->kind == MP_BOOL && reply->boolean;
        return error;
    }
    memset(reject, 0, sizeof *reject);
    ASSERT(job_id_is_valid(job->id, strlen(job->id)));
    ASSERT(job_id_is_valid(job->user, strlen(job->user)));
    return JOB_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                 */
/* ------------------------------------------------------------------------ */

/* A C string held in a fixed buffer of `size` bytes: asserts its NUL. */
static size_t held_strlen(const char *s, size_t size)
{
    ASSERT(s != NULL);
    const char *nul = memchr(s, '\0', size);
    ASSERT(nul != NULL);
    return (size_t)(nul - s);
}

#define HELD_STRLEN(array) held_strlen((array), sizeof(array))

static int pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    ASSERT(pk != NULL);
    ASSERT(s != NULL);
    return msgpack_pack_str_with_body(pk, s, len);
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
    ASSERT(s != NULL);
    return pack_str(pk, s, strlen(s));
}

/* No string of the contract is longer than a result message. */
static int pack_key_str(msgpack_packer *pk, const char *key, const char *s, size_t len)
{
    ASSERT(key != NULL && key[0] != '\0');
    ASSERT(len <= RESULT_MESSAGE_BYTES_MAX);
    int rc = pack_cstr(pk, key);
    return rc | pack_str(pk, s, len);
}

static int pack_key_int(msgpack_packer *pk, const char *key, int64_t value)
{
    ASSERT(pk != NULL);
    ASSERT(key != NULL && key[0] != '\0');
    int rc = pack_cstr(pk, key);
    return rc | msgpack_pack_int64(pk, value);
}

/* On failure, takes back what was appended, so `out` is never left holding
 * half a message. */
static int pack_finish(msgpack_sbuffer *out, size_t start, int rc)
{
    ASSERT(out->size >= start);
    if (rc == 0)
        return 0;
    out->size = start;
    return -1;
}

static size_t job_type_field_count(const struct job *job)
{
    switch (job->type) {
    case JOB_CONSUME:
        return 1 + (job->has_tool ? 1u : 0u) + (job->has_ref ? 1u : 0u);
    case JOB_PURCHASE:
    case JOB_ALLOCATE:
        return 2;
    }
    UNREACHABLE();
    return 0;
}

static int pack_job_type_fields(msgpack_packer *pk, const struct job *job)
{
    int rc = 0;
    switch (job->type) {
    case JOB_CONSUME:
        rc |= pack_key_int(pk, "amount", job->amount);
        if (job->has_tool)
            rc |= pack_key_str(pk, "tool", job->tool, HELD_STRLEN(job->tool));
        if (job->has_ref)
            rc |= pack_key_str(pk, "ref", job->ref, HELD_STRLEN(job->ref));
        return rc;
    case JOB_PURCHASE:
        rc |= pack_key_str(pk, "pack", job->pack, HELD_STRLEN(job->pack));
        return rc |
               pack_key_str(pk, "payment_ref", job->payment_ref, HELD_STRLEN(job->payment_ref));
    case JOB_ALLOCATE:
        rc |= pack_key_str(pk, "plan", job->plan, HELD_STRLEN(job->plan));
        return rc | pack_key_str(pk, "period", job->period, HELD_STRLEN(job->period));
    }
    UNREACHABLE();
    return -1;
}

int codec_encode_job(const struct job *job, msgpack_sbuffer *out)
{
    ASSERT(job != NULL);
    ASSERT(out != NULL);
    ASSERT((unsigned)job->type < JOB_TYPE_COUNT);
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    size_t entries = 4 + (job->reply ? 1u : 0u) + job_type_field_count(job);
    int rc = msgpack_pack_map(&pk, entries);
    rc |= pack_key_int(&pk, "v", JOB_VERSION);
    rc |= pack_key_str(&pk, "id", job->id, HELD_STRLEN(job->id));
    rc |= pack_key_str(&pk, "type", job_type_name(job->type), strlen(job_type_name(job->type)));
    rc |= pack_key_str(&pk, "user", job->user, HELD_STRLEN(job->user));
    if (job->reply) {
        rc |= pack_cstr(&pk, "reply");
        rc |= msgpack_pack_true(&pk);
    }
    rc |= pack_job_type_fields(&pk, job);
    return pack_finish(out, start, rc);
}

/* The format version of the canonical request: these bytes are stored
 * (credits.jobs.request) and compared with later deliveries for ever, so a
 * different layout must never be mistaken for this one. */
#define CODEC_REQUEST_FORMAT 1

/* An optional string held in a buffer of `size` bytes: nil when absent, so
 * that "" and "absent" differ. An absent one's buffer is not looked at. */
static int pack_optional_str(msgpack_packer *pk, bool present, const char *s, size_t size)
{
    ASSERT(pk != NULL);
    if (!present)
        return msgpack_pack_nil(pk);
    return pack_str(pk, s, held_strlen(s, size));
}

/* [format, type, user, <the type's fields in contract order>] */
int codec_encode_request(const struct job *job, msgpack_sbuffer *out)
{
    ASSERT(job != NULL);
    ASSERT(out != NULL);
    ASSERT((unsigned)job->type < JOB_TYPE_COUNT);
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    size_t fields = job->type == JOB_CONSUME ? 3 : 2;
    int rc = msgpack_pack_array(&pk, 3 + fields);
    rc |= msgpack_pack_int64(&pk, CODEC_REQUEST_FORMAT);
    rc |= pack_cstr(&pk, job_type_name(job->type));
    rc |= pack_str(&pk, job->user, HELD_STRLEN(job->user));
    switch (job->type) {
    case JOB_CONSUME:
        rc |= msgpack_pack_int64(&pk, job->amount);
        rc |= pack_optional_str(&pk, job->has_tool, job->tool, sizeof job->tool);
        rc |= pack_optional_str(&pk, job->has_ref, job->ref, sizeof job->ref);
        break;
    case JOB_PURCHASE:
        rc |= pack_str(&pk, job->pack, HELD_STRLEN(job->pack));
        rc |= pack_str(&pk, job->payment_ref, HELD_STRLEN(job->payment_ref));
        break;
    case JOB_ALLOCATE:
        rc |= pack_str(&pk, job->plan, HELD_STRLEN(job->plan));
        rc |= pack_str(&pk, job->period, HELD_STRLEN(job->period));
        break;
    }
    return pack_finish(out, start, rc);
}

static size_t result_entry_count(const struct result *r)
{
    size_t n = 4; /* v, status, done_at, replayed */
    n += (r->has_id ? 1u : 0u) + (r->has_type ? 1u : 0u) + (r->has_user ? 1u : 0u);
    n += r->error != JOB_OK ? 1u : 0u;
    n += r->message[0] != '\0' ? 1u : 0u;
    n += result_has_balance(r) ? 1u : 0u;
    n += result_has_charged(r) ? 1u : 0u;
    n += result_has_granted(r) ? 1u : 0u;
    n += result_has_forfeited(r) ? 1u : 0u;
    n += result_has_expires_at(r) ? 1u : 0u;
    ASSERT(n <= 17);
    return n;
}

static int pack_result_identity(msgpack_packer *pk, const struct result *r)
{
    ASSERT((unsigned)r->error < JOB_ERROR_COUNT);
    ASSERT(!r->has_type || (unsigned)r->type < JOB_TYPE_COUNT);
    int rc = 0;
    if (r->has_id)
        rc |= pack_key_str(pk, "id", r->id, HELD_STRLEN(r->id));
    if (r->has_type)
        rc |= pack_key_str(pk, "type", job_type_name(r->type), strlen(job_type_name(r->type)));
    if (r->has_user)
        rc |= pack_key_str(pk, "user", r->user, HELD_STRLEN(r->user));
    const char *status = r->error == JOB_OK ? "applied" : "rejected";
    rc |= pack_key_str(pk, "status", status, strlen(status));
    if (r->error != JOB_OK)
        rc |= pack_key_str(pk, "error", job_error_name(r->error), strlen(job_error_name(r->error)));
    if (r->message[0] != '\0')
        rc |= pack_key_str(pk, "message", r->message, HELD_STRLEN(r->message));
    return rc;
}

static int pack_result_amounts(msgpack_packer *pk, const struct result *r)
{
    ASSERT(!(result_has_charged(r) && result_has_granted(r)));
    ASSERT(!result_has_forfeited(r) || result_has_granted(r));
    int rc = 0;
    if (result_has_balance(r)) {
        rc |= pack_cstr(pk, "balance");
        rc |= msgpack_pack_map(pk, 3);
        rc |= pack_key_int(pk, "total", r->balance.total);
        rc |= pack_key_int(pk, "pack", r->balance.pack);
        rc |= pack_key_int(pk, "monthly", r->balance.monthly);
    }
    if (result_has_charged(r))
        rc |= pack_key_int(pk, "charged", r->charged);
    if (result_has_granted(r))
        rc |= pack_key_int(pk, "granted", r->granted);
    if (result_has_forfeited(r))
        rc |= pack_key_int(pk, "forfeited", r->forfeited);
    if (result_has_expires_at(r))
        rc |= pack_key_int(pk, "expires_at", r->expires_at_ms);
    return rc;
}

int codec_encode_result(const struct result *result, msgpack_sbuffer *out)
{
    ASSERT(result != NULL);
    ASSERT(out != NULL);
    ASSERT((unsigned)result->error < JOB_ERROR_COUNT);
    ASSERT(!result->has_type || (unsigned)result->type < JOB_TYPE_COUNT);
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, result_entry_count(result));
    rc |= pack_key_int(&pk, "v", JOB_VERSION);
    rc |= pack_result_identity(&pk, result);
    rc |= pack_result_amounts(&pk, result);
    rc |= pack_key_int(&pk, "done_at", result->done_at_ms);
    rc |= pack_cstr(&pk, "replayed");
    rc |= result->replayed ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    return pack_finish(out, start, rc);
}

/* ------------------------------------------------------------------------ */
/* Results: decoding                                                        */
/* ------------------------------------------------------------------------ */

enum result_key {
    RKEY_V,
    RKEY_ID,
    RKEY_TYPE,
    RKEY_USER,
    RKEY_STATUS,
    RKEY_ERROR,
    RKEY_MESSAGE,
    RKEY_BALANCE,
    RKEY_CHARGED,
    RKEY_GRANTED,
    RKEY_FORFEITED,
    RKEY_EXPIRES_AT,
    RKEY_DONE_AT,
    RKEY_REPLAYED,
    RKEY_COUNT,
};

static const char *const result_key_names[RKEY_COUNT] = {
    [RKEY_V] = "v",
    [RKEY_ID] = "id",
    [RKEY_TYPE] = "type",
    [RKEY_USER] = "user",
    [RKEY_STATUS] = "status",
    [RKEY_ERROR] = "error",
    [RKEY_MESSAGE] = "message",
    [RKEY_BALANCE] = "balance",
    [RKEY_CHARGED] = "charged",
    [RKEY_GRANTED] = "granted",
    [RKEY_FORFEITED] = "forfeited",
    [RKEY_EXPIRES_AT] = "expires_at",
    [RKEY_DONE_AT] = "done_at",
    [RKEY_REPLAYED] = "replayed",
};

enum balance_key {
    BKEY_TOTAL,
    BKEY_PACK,
    BKEY_MONTHLY,
    BKEY_COUNT,
};

static const char *const balance_key_names[BKEY_COUNT] = {
    [BKEY_TOTAL] = "total",
    [BKEY_PACK] = "pack",
    [BKEY_MONTHLY] = "monthly",
};

/* The values of a map's known keys. Unknown keys are skipped; a known key
 * twice, a non-str key or malformed bytes fail. Borrows the reader's bytes. */
struct map_values {
    bool seen[RKEY_COUNT];
    struct mp_item value[RKEY_COUNT];
    size_t value_off[RKEY_COUNT];
};

_Static_assert((int)BKEY_COUNT <= (int)RKEY_COUNT, "map_values holds a balance map too");

static bool map_read_values(struct mp_cursor *c, size_t depth_max, const char *const *names,
                            size_t count, struct map_values *values)
{
    ASSERT(count <= RKEY_COUNT);
    ASSERT(depth_max >= 1 && depth_max <= CODEC_DEPTH_MAX);
    memset(values, 0, sizeof *values);
    struct mp_item head;
    if (!mp_read(c, &head) || head.kind != MP_MAP)
        return false;
    for (uint64_t i = 0; i < head.len; i++) {
        struct mp_entry entry;
        if (mp_read_entry(c, depth_max - 1, &entry) != MP_ENTRY_OK)
            return false;
        size_t key = mp_key_index(&entry.key, names, count);
        if (key == count)
            continue;
        if (values->seen[key])
            return false;
        values->seen[key] = true;
        values->value[key] = entry.value;
        values->value_off[key] = entry.value_off;
    }
    return true;
}

static bool result_read_int(const struct map_values *values, enum result_key key, int64_t *out)
{
    ASSERT(key < RKEY_COUNT);
    return values->seen[key] && mp_int64(&values->value[key], out);
}

static bool result_read_balance(const struct mp_cursor *c, const struct map_values *values,
                                struct balance *balance)
{
    ASSERT(c->off <= c->len);
    if (!values->seen[RKEY_BALANCE])
        return false;
    struct mp_cursor at = {c->buf, c->len, values->value_off[RKEY_BALANCE]};
    struct map_values fields;
    if (!map_read_values(&at, CODEC_DEPTH_MAX - 1, balance_key_names, BKEY_COUNT, &fields))
        return false;
    return fields.seen[BKEY_TOTAL] && mp_int64(&fields.value[BKEY_TOTAL], &balance->total) &&
           fields.seen[BKEY_PACK] && mp_int64(&fields.value[BKEY_PACK], &balance->pack) &&
           fields.seen[BKEY_MONTHLY] && mp_int64(&fields.value[BKEY_MONTHLY], &balance->monthly);
}

static bool result_read_identity(const struct map_values *values, struct result *r)
{
    ASSERT(!r->has_id && !r->has_type && !r->has_user);
    ASSERT(r->id[0] == '\0' && r->user[0] == '\0');
    int64_t version;
    if (!result_read_int(values, RKEY_V, &version) || version != JOB_VERSION)
        return false;
    if (values->seen[RKEY_ID] && !mp_copy_str(&values->value[RKEY_ID], r->id, sizeof r->id))
        return false;
    if (values->seen[RKEY_USER] && !mp_copy_str(&values->value[RKEY_USER], r->user, sizeof r->user))
        return false;
    const struct mp_item *type = &values->value[RKEY_TYPE];
    if (values->seen[RKEY_TYPE] &&
        (type->kind != MP_STR ||
         !job_type_parse((const char *)type->bytes, (size_t)type->len, &r->type)))
        return false;
    r->has_id = values->seen[RKEY_ID];
    r->has_user = values->seen[RKEY_USER];
    r->has_type = values->seen[RKEY_TYPE];
    return true;
}

static bool result_read_status(const struct map_values *values, struct result *r)
{
    ASSERT(r->error == JOB_OK);
    char status[sizeof "rejected"];
    if (!values->seen[RKEY_STATUS] ||
        !mp_copy_str(&values->value[RKEY_STATUS], status, sizeof status))
        return false;
    bool applied = strcmp(status, "applied") == 0;
    if (!applied && strcmp(status, "rejected") != 0)
        return false;
    /* `error` is there exactly when rejected. */
    if (applied == values->seen[RKEY_ERROR])
        return false;
    r->error = JOB_OK;
    const struct mp_item *error = &values->value[RKEY_ERROR];
    if (!applied && (error->kind != MP_STR ||
                     !job_error_parse((const char *)error->bytes, (size_t)error->len, &r->error)))
        return false;
    if (values->seen[RKEY_MESSAGE] &&
        !mp_copy_str(&values->value[RKEY_MESSAGE], r->message, sizeof r->message))
        return false;
    ASSERT(applied == (r->error == JOB_OK));
    ASSERT(strlen(r->message) <= RESULT_MESSAGE_BYTES_MAX);
    return true;
}

/* The optional amounts are required exactly where result_has_*() says the
 * encoder writes them; elsewhere they are ignored (and stay 0). */
static bool result_read_amounts(const struct mp_cursor *c, const struct map_values *values,
                                struct result *r)
{
    ASSERT((unsigned)r->error < JOB_ERROR_COUNT);
    if (result_has_balance(r) && !result_read_balance(c, values, &r->balance))
        return false;
    if (result_has_charged(r) && !result_read_int(values, RKEY_CHARGED, &r->charged))
        return false;
    if (result_has_granted(r) && !result_read_int(values, RKEY_GRANTED, &r->granted))
        return false;
    if (result_has_forfeited(r) && !result_read_int(values, RKEY_FORFEITED, &r->forfeited))
        return false;
    if (result_has_expires_at(r) && !result_read_int(values, RKEY_EXPIRES_AT, &r->expires_at_ms))
        return false;
    if (!result_read_int(values, RKEY_DONE_AT, &r->done_at_ms))
        return false;
    const struct mp_item *replayed = &values->value[RKEY_REPLAYED];
    if (!values->seen[RKEY_REPLAYED] || replayed->kind != MP_BOOL)
        return false;
    r->replayed = replayed->boolean;
    return true;
}

int codec_decode_result(const void *buf, size_t len, struct result *result)
{
    ASSERT(buf != NULL || len == 0);
    ASSERT(result != NULL);
    memset(result, 0, sizeof *result);
    struct mp_cursor c = {buf, len, 0};
    struct map_values values;
    bool ok = map_read_values(&c, CODEC_DEPTH_MAX, result_key_names, RKEY_COUNT, &values) &&
              c.off == len && result_read_identity(&values, result) &&
              result_read_status(&values, result) && result_read_amounts(&c, &values, result);
    if (!ok) {
        memset(result, 0, sizeof *result);
        return -1;
    }
    return 0;
}
