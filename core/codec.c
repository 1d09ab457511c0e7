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

#include "core/job_type.h"

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

/* A map of n entries takes at least 1 + 2n bytes. */
#define JOB_ENTRIES_MAX ((JOB_BYTES_MAX - 1) / 2)

/* One entry of the job map: its key's bytes and where its value starts.
 * Borrows the input. */
struct job_entry {
    const uint8_t *key;
    size_t key_len;
    size_t value_off;
};

/* What one pass over the job map found: every entry, sorted by key (so that
 * a key given twice sits next to itself, and a key is found by bisection). */
struct job_scan {
    const uint8_t *buf;
    size_t len;
    struct job_entry entries[JOB_ENTRIES_MAX];
    size_t count;
    size_t end_off; /* where the map ended */
};

/* The common fields' byte rules (the types' fields carry their own). */
static const struct job_field field_id = {.name = "id",
                                          .kind = JOB_FIELD_STR,
                                          .size = JOB_ID_BYTES_MAX + 1,
                                          .min = 1,
                                          .max = JOB_ID_BYTES_MAX,
                                          .rule = JOB_STR_ID};
static const struct job_field field_user = {.name = "user",
                                            .kind = JOB_FIELD_STR,
                                            .size = JOB_USER_BYTES_MAX + 1,
                                            .min = 1,
                                            .max = JOB_USER_BYTES_MAX,
                                            .rule = JOB_STR_ID};

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

static bool key_is_printable(const struct job_entry *entry)
{
    ASSERT(entry->key != NULL);
    ASSERT(entry->key_len < JOB_BYTES_MAX);
    if (entry->key_len == 0 || entry->key_len > 64)
        return false;
    for (size_t i = 0; i < entry->key_len; i++) {
        if (entry->key[i] < 0x20 || entry->key[i] > 0x7e)
            return false;
    }
    return true;
}

static int key_compare(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    ASSERT(a != NULL && b != NULL);
    ASSERT(a_len < JOB_BYTES_MAX && b_len < JOB_BYTES_MAX);
    if (a_len != b_len)
        return a_len < b_len ? -1 : 1;
    if (a_len == 0)
        return 0;
    return memcmp(a, b, a_len);
}

static int job_entry_compare(const void *a, const void *b)
{
    const struct job_entry *x = a;
    const struct job_entry *y = b;
    return key_compare(x->key, x->key_len, y->key, y->key_len);
}

/* A key given twice makes the job invalid whatever the key (contract
 * section 2): the entries are sorted, so compare neighbours. */
static bool job_keys_unique(const struct job_scan *scan, struct result *reject)
{
    ASSERT(scan->count <= JOB_ENTRIES_MAX);
    for (size_t i = 1; i < scan->count; i++) {
        const struct job_entry *entry = &scan->entries[i];
        if (job_entry_compare(&scan->entries[i - 1], entry) != 0)
            continue;
        if (key_is_printable(entry))
            reject_set(reject, JOB_ERR_INVALID_JOB, "duplicate key '%.*s'", (int)entry->key_len,
                       (const char *)entry->key);
        else
            reject_set(reject, JOB_ERR_INVALID_JOB, "duplicate key (%zu bytes, not printable)",
                       entry->key_len);
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
    ASSERT(scan->count < JOB_ENTRIES_MAX);
    scan->entries[scan->count++] = (struct job_entry){
        .key = entry.key.bytes,
        .key_len = (size_t)entry.key.len,
        .value_off = entry.value_off,
    };
    return true;
}

/* The single pass: reads the map and records where every value is. */
static bool job_scan_map(const uint8_t *buf, size_t len, struct job_scan *scan,
                         struct result *reject)
{
    ASSERT(len > 0 && len <= JOB_BYTES_MAX);
    scan->buf = buf;
    scan->len = len;
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
    qsort(scan->entries, scan->count, sizeof scan->entries[0], job_entry_compare);
    if (!job_keys_unique(scan, reject))
        return false;
    scan->end_off = c.off;
    ASSERT(scan->end_off <= len);
    return true;
}

/* The value of key `name`, or false when the job has no such key. */
static bool job_value(const struct job_scan *scan, const char *name, struct mp_item *value)
{
    ASSERT(name != NULL);
    size_t name_len = strlen(name);
    size_t lo = 0, hi = scan->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct job_entry *entry = &scan->entries[mid];
        int cmp = key_compare(entry->key, entry->key_len, (const uint8_t *)name, name_len);
        if (cmp == 0) {
            struct mp_cursor c = {scan->buf, scan->len, entry->value_off};
            bool ok = mp_read(&c, value);
            ASSERT(ok); /* the scan read it before */
            return true;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* A str value that passes `field`'s rule, copied into `out` (its size). */
static bool str_passes(const struct mp_item *item, const struct job_field *field, char *out,
                       size_t out_size)
{
    return item->kind == MP_STR &&
           job_field_str_is_valid(field, (const char *)item->bytes, (size_t)item->len) &&
           mp_copy_str(item, out, out_size);
}

/* id, type and user as far as they are readable (present once, a str, and
 * passing their rule), so that a rejection can still name the job. */
static void job_fill_identity(const struct job_scan *scan, struct result *reject)
{
    struct mp_item item;
    if (job_value(scan, "id", &item))
        reject->has_id = str_passes(&item, &field_id, reject->id, sizeof reject->id);
    if (job_value(scan, "user", &item))
        reject->has_user = str_passes(&item, &field_user, reject->user, sizeof reject->user);
    if (job_value(scan, "type", &item) && item.kind == MP_STR)
        reject->has_type =
            job_type_parse((const char *)item.bytes, (size_t)item.len, &reject->type);
    ASSERT(!reject->has_id || job_id_is_valid(reject->id, strlen(reject->id)));
}

/* `v` first: a job of another version may have another shape, so its fields
 * are not judged by the rules of version 1. */
static enum job_error job_check_version(const struct job_scan *scan, struct result *reject)
{
    ASSERT(reject->error == JOB_OK);
    ASSERT(reject->message[0] == '\0');
    struct mp_item v;
    if (!job_value(scan, "v", &v)) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "field 'v' is required (the contract version)");
        return JOB_ERR_INVALID_JOB;
    }
    if (v.kind == MP_NINT) {
        reject_set(reject, JOB_ERR_UNSUPPORTED_VERSION,
                   "version %" PRId64 " is not supported; this worker reads version %d",
                   v.nint_value, JOB_VERSION);
        return JOB_ERR_UNSUPPORTED_VERSION;
    }
    if (v.kind != MP_UINT) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "field 'v' must be an integer");
        return JOB_ERR_INVALID_JOB;
    }
    if (v.uint_value != JOB_VERSION) {
        reject_set(reject, JOB_ERR_UNSUPPORTED_VERSION,
                   "version %" PRIu64 " is not supported; this worker reads version %d",
                   v.uint_value, JOB_VERSION);
        return JOB_ERR_UNSUPPORTED_VERSION;
    }
    return JOB_OK;
}

static void reject_field(struct result *reject, const struct job_field *field)
{
    char message[sizeof reject->message];
    job_field_rule_message(field, message, sizeof message);
    reject_set(reject, JOB_ERR_INVALID_JOB, "%s", message);
}

/* Reads one field of the job's type by its descriptor: present and valid,
 * absent and optional, or a rejection naming it. */
static bool job_read_field(const struct job_scan *scan, const struct job_field *field,
                           struct job *job, struct result *reject)
{
    struct mp_item item;
    if (!job_value(scan, field->name, &item)) {
        if (field->optional)
            return true;
        reject_set(reject, JOB_ERR_INVALID_JOB, "field '%s' is required", field->name);
        return false;
    }
    int64_t value;
    switch (field->kind) {
    case JOB_FIELD_INT:
        if (!mp_int64(&item, &value) || !job_field_int_is_valid(field, value))
            break;
        job_field_set_int(job, field, value);
        return true;
    case JOB_FIELD_STR:
        if (item.kind != MP_STR ||
            !job_field_str_is_valid(field, (const char *)item.bytes, (size_t)item.len))
            break;
        job_field_set_str(job, field, (const char *)item.bytes, (size_t)item.len);
        return true;
    case JOB_FIELD_BOOL:
        if (item.kind != MP_BOOL)
            break;
        job_field_set_bool(job, field, item.boolean);
        return true;
    }
    reject_field(reject, field);
    return false;
}

static bool job_read_type(const struct job_scan *scan, struct job *job, struct result *reject)
{
    struct mp_item type;
    if (!job_value(scan, "type", &type)) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "field 'type' is required");
        return false;
    }
    if (type.kind != MP_STR ||
        !job_type_parse((const char *)type.bytes, (size_t)type.len, &job->type)) {
        char names[200];
        job_type_names_list(names, sizeof names);
        reject_set(reject, JOB_ERR_INVALID_JOB, "field 'type' must be one of %s", names);
        return false;
    }
    return true;
}

static bool job_read_id_field(const struct job_scan *scan, const struct job_field *field, char *out,
                              size_t out_size, struct result *reject)
{
    struct mp_item item;
    if (!job_value(scan, field->name, &item)) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "field '%s' is required", field->name);
        return false;
    }
    if (!str_passes(&item, field, out, out_size)) {
        reject_field(reject, field);
        return false;
    }
    return true;
}

static bool job_read_common(const struct job_scan *scan, struct job *job, struct result *reject)
{
    if (!job_read_id_field(scan, &field_id, job->id, sizeof job->id, reject) ||
        !job_read_type(scan, job, reject) ||
        !job_read_id_field(scan, &field_user, job->user, sizeof job->user, reject))
        return false;
    struct mp_item reply;
    bool has_reply = job_value(scan, "reply", &reply);
    if (has_reply && reply.kind != MP_BOOL) {
        reject_set(reject, JOB_ERR_INVALID_JOB, "field 'reply' must be true or false");
        return false;
    }
    job->reply = has_reply && reply.boolean;
    return true;
}

/* The fields of the job's own type, in the type's order; those of other
 * types are ignored like unknown keys (neither validated nor compared). */
static bool job_read_type_fields(const struct job_scan *scan, struct job *job,
                                 struct result *reject)
{
    const struct job_type_ops *ops = job_type_ops(job->type);
    for (size_t i = 0; i < ops->field_count; i++) {
        if (!job_read_field(scan, &ops->fields[i], job, reject))
            return false;
    }
    return true;
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
    scan.count = 0;
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
        struct mp_item reply;
        job->reply = job_value(&scan, "reply", &reply) && reply.kind == MP_BOOL && reply.boolean;
        return error;
    }
    memset(reject, 0, sizeof *reject);
    ASSERT(job_id_is_valid(job->id, strlen(job->id)));
    ASSERT(job_id_is_valid(job->user, strlen(job->user)));
    return JOB_OK;
}

/* ------------------------------------------------------------------------ */
/* Jobs: the identity, best-effort                                          */
/* ------------------------------------------------------------------------ */

enum { IDENTITY_ID, IDENTITY_TYPE, IDENTITY_USER, IDENTITY_REPLY, IDENTITY_KEYS };

/* One key of the identity as the entries showed it: the raw bytes of its
 * first value, and whether a later value differed. */
struct identity_key {
    size_t seen;
    size_t value_off;
    size_t value_len;
    bool differs;
};

/* The entry count of a top map, from its head alone: unlike mp_read(),
 * a count the bytes left cannot hold is taken at its word (the bytes may
 * be the first of a longer job); the loop over entries stops at their end. */
static bool identity_map_count(struct mp_cursor *c, uint64_t *count)
{
    uint64_t n = 0;
    if (mp_left(c) == 0)
        return false;
    uint8_t b = c->buf[c->off++];
    if (b >= 0x80 && b <= 0x8f)
        n = b & 0x0fu;
    else if (b == 0xde || b == 0xdf)
        return mp_take_be(c, b == 0xde ? 2 : 4, count);
    else
        return false;
    *count = n;
    return true;
}

static void identity_note(struct identity_key *key, const struct mp_cursor *c, size_t value_off)
{
    size_t value_len = c->off - value_off;
    ASSERT(value_len > 0 && c->off <= c->len);
    if (key->seen++ == 0) {
        key->value_off = value_off;
        key->value_len = value_len;
    } else if (value_len != key->value_len ||
               memcmp(c->buf + value_off, c->buf + key->value_off, value_len) != 0) {
        key->differs = true;
    }
}

/* The readable value of one key, read again from its first occurrence. */
static bool identity_value(const struct mp_cursor *c, const struct identity_key *key,
                           struct mp_item *value)
{
    if (key->seen == 0 || key->differs)
        return false;
    struct mp_cursor at = {c->buf, c->len, key->value_off};
    bool ok = mp_read(&at, value);
    ASSERT(ok); /* the scan read it before */
    return true;
}

void codec_decode_identity(const void *buf, size_t len, struct result *identity, bool *reply)
{
    static const char *const names[IDENTITY_KEYS] = {"id", "type", "user", "reply"};
    ASSERT(buf != NULL || len == 0);
    ASSERT(identity != NULL && reply != NULL);
    struct identity_key keys[IDENTITY_KEYS] = {{0}};
    struct mp_cursor c = {buf, len, 0};
    identity->has_id = identity->has_type = identity->has_user = false;
    identity->id[0] = identity->user[0] = '\0';
    uint64_t count = 0;
    bool ok = identity_map_count(&c, &count);
    /* Every entry takes two bytes at least: the loop ends with the bytes. */
    for (uint64_t i = 0; ok && i < count && mp_left(&c) > 0; i++) {
        struct mp_entry entry;
        if (mp_read_entry(&c, CODEC_DEPTH_MAX - 1, &entry) != MP_ENTRY_OK)
            break;
        size_t k = mp_key_index(&entry.key, names, IDENTITY_KEYS);
        if (k < IDENTITY_KEYS)
            identity_note(&keys[k], &c, entry.value_off);
    }
    struct mp_item item;
    if (identity_value(&c, &keys[IDENTITY_ID], &item))
        identity->has_id = str_passes(&item, &field_id, identity->id, sizeof identity->id);
    if (identity_value(&c, &keys[IDENTITY_USER], &item))
        identity->has_user = str_passes(&item, &field_user, identity->user, sizeof identity->user);
    if (identity_value(&c, &keys[IDENTITY_TYPE], &item) && item.kind == MP_STR)
        identity->has_type =
            job_type_parse((const char *)item.bytes, (size_t)item.len, &identity->type);
    *reply =
        identity_value(&c, &keys[IDENTITY_REPLY], &item) && item.kind == MP_BOOL && item.boolean;
    ASSERT(!identity->has_id || job_id_is_valid(identity->id, strlen(identity->id)));
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

/* One field's value (the caller has checked that it is present). */
static int pack_field_value(msgpack_packer *pk, const struct job *job,
                            const struct job_field *field)
{
    switch (field->kind) {
    case JOB_FIELD_INT:
        return msgpack_pack_int64(pk, job_field_int(job, field));
    case JOB_FIELD_STR:
        return pack_cstr(pk, job_field_str(job, field));
    case JOB_FIELD_BOOL:
        return job_field_bool(job, field) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    }
    UNREACHABLE();
}

static size_t job_present_field_count(const struct job *job, const struct job_type_ops *ops)
{
    size_t n = 0;
    for (size_t i = 0; i < ops->field_count; i++)
        n += job_field_present(job, &ops->fields[i]) ? 1u : 0u;
    return n;
}

int codec_encode_job(const struct job *job, msgpack_sbuffer *out)
{
    ASSERT(job != NULL);
    ASSERT(out != NULL);
    const struct job_type_ops *ops = job_type_ops(job->type);
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    size_t entries = 4 + (job->reply ? 1u : 0u) + job_present_field_count(job, ops);
    int rc = msgpack_pack_map(&pk, entries);
    rc |= pack_key_int(&pk, "v", JOB_VERSION);
    rc |= pack_key_str(&pk, "id", job->id, HELD_STRLEN(job->id));
    rc |= pack_key_str(&pk, "type", ops->name, strlen(ops->name));
    rc |= pack_key_str(&pk, "user", job->user, HELD_STRLEN(job->user));
    if (job->reply) {
        rc |= pack_cstr(&pk, "reply");
        rc |= msgpack_pack_true(&pk);
    }
    for (size_t i = 0; i < ops->field_count; i++) {
        const struct job_field *field = &ops->fields[i];
        if (!job_field_present(job, field))
            continue;
        rc |= pack_cstr(&pk, field->name);
        rc |= pack_field_value(&pk, job, field);
    }
    return pack_finish(out, start, rc);
}

/* The format version of the canonical request: these bytes are stored
 * (credits.jobs.request) and compared with later deliveries for ever, so a
 * different layout must never be mistaken for this one. */
#define CODEC_REQUEST_FORMAT 1

/* [format, type, user, <the type's fields in its order>], an absent
 * optional field as nil, so that "" and "absent" differ. */
int codec_encode_request(const struct job *job, msgpack_sbuffer *out)
{
    ASSERT(job != NULL);
    ASSERT(out != NULL);
    const struct job_type_ops *ops = job_type_ops(job->type);
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 3 + ops->field_count);
    rc |= msgpack_pack_int64(&pk, CODEC_REQUEST_FORMAT);
    rc |= pack_cstr(&pk, ops->name);
    rc |= pack_str(&pk, job->user, HELD_STRLEN(job->user));
    for (size_t i = 0; i < ops->field_count; i++) {
        const struct job_field *field = &ops->fields[i];
        if (job_field_present(job, field))
            rc |= pack_field_value(&pk, job, field);
        else
            rc |= msgpack_pack_nil(&pk);
    }
    return pack_finish(out, start, rc);
}

static unsigned popcount32(uint32_t bits)
{
    unsigned n = 0;
    for (; bits != 0; bits &= bits - 1)
        n++;
    return n;
}

static size_t result_entry_count(const struct result *r)
{
    size_t n = 4; /* v, status, done_at, replayed */
    n += (r->has_id ? 1u : 0u) + (r->has_type ? 1u : 0u) + (r->has_user ? 1u : 0u);
    n += r->error != JOB_OK ? 1u : 0u;
    n += r->message[0] != '\0' ? 1u : 0u;
    n += result_has_balance(r) ? 1u : 0u;
    n += popcount32(result_amounts_carried(r));
    ASSERT(n <= 10 + RESULT_AMOUNT_COUNT);
    return n;
}

static int pack_balance(msgpack_packer *pk, const struct balance *b)
{
    int rc = pack_cstr(pk, "balance");
    rc |= msgpack_pack_map(pk, 5);
    rc |= pack_key_int(pk, "total", b->total);
    rc |= pack_key_int(pk, "pack", b->pack);
    rc |= pack_key_int(pk, "monthly", b->monthly);
    rc |= pack_key_int(pk, "grant", b->grant);
    rc |= pack_key_int(pk, "held", b->held);
    return rc;
}

static int pack_result_identity(msgpack_packer *pk, const struct result *r)
{
    ASSERT((unsigned)r->error < JOB_ERROR_COUNT);
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
    ASSERT((r->amounts_present >> RESULT_AMOUNT_COUNT) == 0);
    uint32_t carried = result_amounts_carried(r);
    int rc = 0;
    if (result_has_balance(r))
        rc |= pack_balance(pk, &r->balance);
    for (unsigned a = 0; a < RESULT_AMOUNT_COUNT; a++) {
        if ((carried & RESULT_AMOUNT_BIT(a)) != 0)
            rc |= pack_key_int(pk, result_amount_key((enum result_amount)a), r->amounts[a]);
    }
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
/* The sweep's expiries: their credits.jobs rows                            */
/* ------------------------------------------------------------------------ */

int codec_encode_expiry(const char *id, const char *user, int64_t lot_id, int64_t credits,
                        const struct balance *balance, int64_t done_at_ms, msgpack_sbuffer *result,
                        msgpack_sbuffer *request)
{
    ASSERT(id && user && balance && result && request);
    size_t result_start = result->size, request_start = request->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, result, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 9);
    rc |= pack_key_int(&pk, "v", JOB_VERSION);
    rc |= pack_key_str(&pk, "id", id, strlen(id));
    rc |= pack_key_str(&pk, "type", "expire", strlen("expire"));
    rc |= pack_key_str(&pk, "user", user, strlen(user));
    rc |= pack_key_str(&pk, "status", "applied", strlen("applied"));
    rc |= pack_balance(&pk, balance);
    rc |= pack_key_int(&pk, "expired", credits);
    rc |= pack_key_int(&pk, "done_at", done_at_ms);
    rc |= pack_cstr(&pk, "replayed");
    rc |= msgpack_pack_false(&pk);
    if (pack_finish(result, result_start, rc) != 0)
        return -1;
    msgpack_packer_init(&pk, request, msgpack_sbuffer_write);
    rc = msgpack_pack_array(&pk, 4);
    rc |= msgpack_pack_int64(&pk, CODEC_REQUEST_FORMAT);
    rc |= pack_cstr(&pk, "expire");
    rc |= pack_cstr(&pk, user);
    rc |= msgpack_pack_int64(&pk, lot_id);
    if (pack_finish(request, request_start, rc) != 0) {
        result->size = result_start;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Events: encoding                                                         */
/* ------------------------------------------------------------------------ */

/* The keys of an event's type, after the common ones (contract 9.8). */
static size_t event_own_key_count(enum event_type type)
{
    switch (type) {
    case EVENT_BALANCE_LOW:
    case EVENT_BALANCE_RECOVERED:
        return 1; /* threshold */
    case EVENT_BALANCE_DEPLETED:
        return 0;
    case EVENT_CREDITS_EXPIRING:
        return 3; /* lot, credits, expires_at */
    case EVENT_CREDITS_EXPIRED:
    case EVENT_HOLD_EXPIRED:
        return 2; /* lot, credits; hold, released */
    }
    UNREACHABLE();
}

static int pack_event_own_keys(msgpack_packer *pk, const struct event *e)
{
    switch (e->type) {
    case EVENT_BALANCE_LOW:
    case EVENT_BALANCE_RECOVERED:
        return pack_key_int(pk, "threshold", e->threshold);
    case EVENT_BALANCE_DEPLETED:
        return 0;
    case EVENT_CREDITS_EXPIRING:
        return pack_key_int(pk, "lot", e->lot) | pack_key_int(pk, "credits", e->credits) |
               pack_key_int(pk, "expires_at", e->expires_at_ms);
    case EVENT_CREDITS_EXPIRED:
        return pack_key_int(pk, "lot", e->lot) | pack_key_int(pk, "credits", e->credits);
    case EVENT_HOLD_EXPIRED:
        return pack_key_str(pk, "hold", e->hold, HELD_STRLEN(e->hold)) |
               pack_key_int(pk, "released", e->released);
    }
    UNREACHABLE();
}

int codec_encode_event(const struct event *event, msgpack_sbuffer *out)
{
    ASSERT(event != NULL && out != NULL);
    ASSERT((unsigned)event->type < EVENT_TYPE_COUNT && event->event_id > 0);
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    const char *type = event_type_name(event->type);
    /* v, event_id, type, user, at, balance, job, then the type's own. */
    int rc = msgpack_pack_map(&pk, 7 + event_own_key_count(event->type));
    rc |= pack_key_int(&pk, "v", EVENT_VERSION);
    rc |= pack_key_int(&pk, "event_id", event->event_id);
    rc |= pack_key_str(&pk, "type", type, strlen(type));
    rc |= pack_key_str(&pk, "user", event->user, HELD_STRLEN(event->user));
    rc |= pack_key_int(&pk, "at", event->at_ms);
    rc |= pack_balance(&pk, &event->balance);
    rc |= pack_key_str(&pk, "job", event->job, HELD_STRLEN(event->job));
    rc |= pack_event_own_keys(&pk, event);
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
    RKEY_DONE_AT,
    RKEY_REPLAYED,
    RKEY_AMOUNTS, /* then one key per enum result_amount */
};
#define RKEY_COUNT (RKEY_AMOUNTS + RESULT_AMOUNT_COUNT)

static const char *const result_key_names[RKEY_COUNT] = {[RKEY_V] = "v",
                                                         [RKEY_ID] = "id",
                                                         [RKEY_TYPE] = "type",
                                                         [RKEY_USER] = "user",
                                                         [RKEY_STATUS] = "status",
                                                         [RKEY_ERROR] = "error",
                                                         [RKEY_MESSAGE] = "message",
                                                         [RKEY_BALANCE] = "balance",
                                                         [RKEY_DONE_AT] = "done_at",
                                                         [RKEY_REPLAYED] = "replayed",
#define RKEY_AMOUNT_NAME(value, key) [RKEY_AMOUNTS + (value)] = key,
                                                         RESULT_AMOUNTS(RKEY_AMOUNT_NAME)
#undef RKEY_AMOUNT_NAME
};

enum balance_key {
    BKEY_TOTAL,
    BKEY_PACK,
    BKEY_MONTHLY,
    BKEY_GRANT,
    BKEY_HELD,
    BKEY_COUNT,
};

static const char *const balance_key_names[BKEY_COUNT] = {
    [BKEY_TOTAL] = "total", [BKEY_PACK] = "pack", [BKEY_MONTHLY] = "monthly",
    [BKEY_GRANT] = "grant", [BKEY_HELD] = "held",
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

static bool result_read_int(const struct map_values *values, size_t key, int64_t *out)
{
    ASSERT(key < RKEY_COUNT);
    return values->seen[key] && mp_int64(&values->value[key], out);
}

/* grant and held came with revision 2: a result stored before it has
 * neither, and reads as 0 of each. */
static bool balance_read_optional(const struct map_values *fields, size_t key, int64_t *out)
{
    *out = 0;
    return !fields->seen[key] || mp_int64(&fields->value[key], out);
}

/* The balance map under key `key` of `values` (a result's or an event's). */
static bool read_balance(const struct mp_cursor *c, const struct map_values *values, size_t key,
                         struct balance *balance)
{
    ASSERT(c->off <= c->len);
    if (!values->seen[key])
        return false;
    struct mp_cursor at = {c->buf, c->len, values->value_off[key]};
    struct map_values fields;
    if (!map_read_values(&at, CODEC_DEPTH_MAX - 1, balance_key_names, BKEY_COUNT, &fields))
        return false;
    return fields.seen[BKEY_TOTAL] && mp_int64(&fields.value[BKEY_TOTAL], &balance->total) &&
           fields.seen[BKEY_PACK] && mp_int64(&fields.value[BKEY_PACK], &balance->pack) &&
           fields.seen[BKEY_MONTHLY] && mp_int64(&fields.value[BKEY_MONTHLY], &balance->monthly) &&
           balance_read_optional(&fields, BKEY_GRANT, &balance->grant) &&
           balance_read_optional(&fields, BKEY_HELD, &balance->held);
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

/* The amounts an applied result of its type always carries are required,
 * those it may carry are read when present, and any other is refused (a
 * rejection carries none): exactly what the encoder writes. */
static bool result_read_type_amounts(const struct map_values *values, struct result *r)
{
    uint32_t required = 0, allowed = 0;
    if (r->has_type && r->error == JOB_OK) {
        const struct job_type_ops *ops = job_type_ops(r->type);
        required = ops->result_amounts;
        allowed = ops->result_amounts | ops->result_amounts_optional;
    }
    for (unsigned a = 0; a < RESULT_AMOUNT_COUNT; a++) {
        uint32_t bit = RESULT_AMOUNT_BIT(a);
        bool seen = values->seen[RKEY_AMOUNTS + a];
        if (!seen && (required & bit) != 0)
            return false;
        if (!seen || (allowed & bit) == 0)
            continue; /* a key the encoder never writes here is ignored */
        int64_t value;
        if (!result_read_int(values, RKEY_AMOUNTS + a, &value))
            return false;
        result_set_amount(r, (enum result_amount)a, value);
    }
    return true;
}

static bool result_read_amounts(const struct mp_cursor *c, const struct map_values *values,
                                struct result *r)
{
    ASSERT((unsigned)r->error < JOB_ERROR_COUNT);
    if (result_has_balance(r) && !read_balance(c, values, RKEY_BALANCE, &r->balance))
        return false;
    if (!result_read_type_amounts(values, r))
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

/* ------------------------------------------------------------------------ */
/* Events: decoding                                                         */
/* ------------------------------------------------------------------------ */

enum event_key {
    EKEY_V,
    EKEY_EVENT_ID,
    EKEY_TYPE,
    EKEY_USER,
    EKEY_AT,
    EKEY_BALANCE,
    EKEY_JOB,
    EKEY_THRESHOLD,
    EKEY_LOT,
    EKEY_CREDITS,
    EKEY_EXPIRES_AT,
    EKEY_HOLD,
    EKEY_RELEASED,
    EKEY_COUNT
};
_Static_assert((int)EKEY_COUNT <= (int)RKEY_COUNT, "map_values holds an event map too");

static const char *const event_key_names[EKEY_COUNT] = {
    "v",         "event_id", "type",    "user",       "at",   "balance", "job",
    "threshold", "lot",      "credits", "expires_at", "hold", "released"};

static bool event_read_int(const struct map_values *values, size_t key, int64_t *out)
{
    return values->seen[key] && mp_int64(&values->value[key], out);
}

/* The keys of the event's type (the encoder's event_own_key_count()). */
static bool event_read_own(const struct map_values *v, struct event *e)
{
    switch (e->type) {
    case EVENT_BALANCE_LOW:
    case EVENT_BALANCE_RECOVERED:
        return event_read_int(v, EKEY_THRESHOLD, &e->threshold);
    case EVENT_BALANCE_DEPLETED:
        return true;
    case EVENT_CREDITS_EXPIRING:
        return event_read_int(v, EKEY_LOT, &e->lot) &&
               event_read_int(v, EKEY_CREDITS, &e->credits) &&
               event_read_int(v, EKEY_EXPIRES_AT, &e->expires_at_ms);
    case EVENT_CREDITS_EXPIRED:
        return event_read_int(v, EKEY_LOT, &e->lot) && event_read_int(v, EKEY_CREDITS, &e->credits);
    case EVENT_HOLD_EXPIRED:
        return v->seen[EKEY_HOLD] && mp_copy_str(&v->value[EKEY_HOLD], e->hold, sizeof e->hold) &&
               event_read_int(v, EKEY_RELEASED, &e->released);
    }
    UNREACHABLE();
}

int codec_decode_event(const void *buf, size_t len, struct event *event)
{
    ASSERT(buf != NULL || len == 0);
    ASSERT(event != NULL);
    memset(event, 0, sizeof *event);
    struct mp_cursor c = {buf, len, 0};
    struct map_values v;
    char type[32];
    int64_t version;
    bool ok = map_read_values(&c, CODEC_DEPTH_MAX, event_key_names, EKEY_COUNT, &v) &&
              c.off == len && event_read_int(&v, EKEY_V, &version) && version == EVENT_VERSION &&
              event_read_int(&v, EKEY_EVENT_ID, &event->event_id) && v.seen[EKEY_TYPE] &&
              mp_copy_str(&v.value[EKEY_TYPE], type, sizeof type) &&
              event_type_parse(type, &event->type) && v.seen[EKEY_USER] &&
              mp_copy_str(&v.value[EKEY_USER], event->user, sizeof event->user) &&
              event_read_int(&v, EKEY_AT, &event->at_ms) &&
              read_balance(&c, &v, EKEY_BALANCE, &event->balance) && v.seen[EKEY_JOB] &&
              mp_copy_str(&v.value[EKEY_JOB], event->job, sizeof event->job) &&
              event_read_own(&v, event);
    if (!ok) {
        memset(event, 0, sizeof *event);
        return -1;
    }
    return 0;
}
