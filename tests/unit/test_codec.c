/*
 * test_codec.c -- unit tests of core/codec.c: job decoding of untrusted bytes,
 * job, request and result encoding, result decoding, and the shared test
 * vectors under schemas/vectors (read from $CREDITS_SOURCE_DIR).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "case_filter.h"
#include "core/codec.h"
#include "core/job_type.h"

/* ------------------------------------------------------------------------ */
/* Building jobs as producers would                                         */
/* ------------------------------------------------------------------------ */

enum val_kind {
    V_INT,   /* msgpack_pack_int64: the smallest encoding */
    V_STR,   /* a C string */
    V_BYTES, /* a str of `len` bytes (may hold NUL) */
    V_BIN,
    V_NIL,
    V_TRUE,
    V_FALSE,
    V_FLOAT,
    V_ARRAY, /* [i] */
    V_RAW,   /* `len` bytes of msgpack, verbatim */
};

struct kv {
    const char *key;
    enum val_kind kind;
    int64_t i;
    const char *s;
    size_t len;
};

#define KV_INT(k, v) ((struct kv){(k), V_INT, (v), NULL, 0})
#define KV_STR(k, v) ((struct kv){(k), V_STR, 0, (v), 0})
#define KV_BYTES(k, lit) ((struct kv){(k), V_BYTES, 0, (lit), sizeof(lit) - 1})
#define KV_BIN(k, lit) ((struct kv){(k), V_BIN, 0, (lit), sizeof(lit) - 1})
#define KV_RAW(k, lit) ((struct kv){(k), V_RAW, 0, (lit), sizeof(lit) - 1})
#define KV_OF(k, kind_) ((struct kv){(k), (kind_), 1, "x", 1})

#define KVS_MAX 24

struct kvs {
    struct kv items[KVS_MAX];
    size_t count;
};

static void kvs_add(struct kvs *s, struct kv kv)
{
    assert_true(s->count < KVS_MAX);
    s->items[s->count++] = kv;
}

/* Replaces the value of `kv.key`, or appends it when absent. */
static void kvs_set(struct kvs *s, struct kv kv)
{
    for (size_t i = 0; i < s->count; i++) {
        if (strcmp(s->items[i].key, kv.key) == 0) {
            s->items[i] = kv;
            return;
        }
    }
    kvs_add(s, kv);
}

static void kvs_drop(struct kvs *s, const char *key)
{
    for (size_t i = 0; i < s->count; i++) {
        if (strcmp(s->items[i].key, key) == 0) {
            memmove(&s->items[i], &s->items[i + 1], (s->count - i - 1) * sizeof s->items[0]);
            s->count--;
            return;
        }
    }
    fail_msg("no key '%s' to drop", key);
}

static struct kvs consume_job(void)
{
    struct kvs s = {.count = 0};
    kvs_add(&s, KV_INT("v", 1));
    kvs_add(&s, KV_STR("id", "job-1"));
    kvs_add(&s, KV_STR("type", "consume"));
    kvs_add(&s, KV_STR("user", "u1"));
    kvs_add(&s, KV_INT("amount", 5));
    return s;
}

static struct kvs purchase_job(void)
{
    struct kvs s = {.count = 0};
    kvs_add(&s, KV_INT("v", 1));
    kvs_add(&s, KV_STR("id", "pay-evt-1"));
    kvs_add(&s, KV_STR("type", "purchase"));
    kvs_add(&s, KV_STR("user", "u1"));
    kvs_add(&s, KV_STR("pack", "starter"));
    kvs_add(&s, KV_STR("payment_ref", "cap_123"));
    return s;
}

static struct kvs allocate_job(void)
{
    struct kvs s = {.count = 0};
    kvs_add(&s, KV_INT("v", 1));
    kvs_add(&s, KV_STR("id", "alloc:u1:2026-11"));
    kvs_add(&s, KV_STR("type", "allocate"));
    kvs_add(&s, KV_STR("user", "u1"));
    kvs_add(&s, KV_STR("plan", "pro"));
    kvs_add(&s, KV_STR("period", "2026-11"));
    return s;
}

/* The common fields of a revision 2 job of `type`. */
static struct kvs common_job(const char *id, const char *type)
{
    struct kvs s = {.count = 0};
    kvs_add(&s, KV_INT("v", 1));
    kvs_add(&s, KV_STR("id", id));
    kvs_add(&s, KV_STR("type", type));
    kvs_add(&s, KV_STR("user", "u1"));
    return s;
}

static struct kvs hold_job(void)
{
    struct kvs s = common_job("hold-1", "hold");
    kvs_add(&s, KV_INT("amount", 100));
    return s;
}

static struct kvs capture_job(void)
{
    struct kvs s = common_job("cap-1", "capture");
    kvs_add(&s, KV_STR("hold", "hold-1"));
    kvs_add(&s, KV_INT("amount", 40));
    return s;
}

static struct kvs release_job(void)
{
    struct kvs s = common_job("rel-1", "release");
    kvs_add(&s, KV_STR("hold", "hold-1"));
    return s;
}

static struct kvs refund_job(void)
{
    struct kvs s = common_job("ref-1", "refund");
    kvs_add(&s, KV_STR("charge", "job-1"));
    return s;
}

static struct kvs revoke_job(void)
{
    struct kvs s = common_job("rev-1", "revoke");
    kvs_add(&s, KV_STR("payment_ref", "cap_123"));
    return s;
}

static struct kvs grant_job(void)
{
    struct kvs s = common_job("grant-1", "grant");
    kvs_add(&s, KV_INT("amount", 50));
    return s;
}

static struct kvs cancel_job(void)
{
    return common_job("cancel-1", "cancel");
}

static void pack_value(msgpack_packer *pk, msgpack_sbuffer *sb, const struct kv *kv)
{
    switch (kv->kind) {
    case V_INT:
        assert_int_equal(msgpack_pack_int64(pk, kv->i), 0);
        return;
    case V_STR:
        assert_int_equal(msgpack_pack_str_with_body(pk, kv->s, strlen(kv->s)), 0);
        return;
    case V_BYTES:
        assert_int_equal(msgpack_pack_str_with_body(pk, kv->s, kv->len), 0);
        return;
    case V_BIN:
        assert_int_equal(msgpack_pack_bin_with_body(pk, kv->s, kv->len), 0);
        return;
    case V_NIL:
        assert_int_equal(msgpack_pack_nil(pk), 0);
        return;
    case V_TRUE:
        assert_int_equal(msgpack_pack_true(pk), 0);
        return;
    case V_FALSE:
        assert_int_equal(msgpack_pack_false(pk), 0);
        return;
    case V_FLOAT:
        assert_int_equal(msgpack_pack_double(pk, (double)kv->i), 0);
        return;
    case V_ARRAY:
        assert_int_equal(msgpack_pack_array(pk, 1), 0);
        assert_int_equal(msgpack_pack_int64(pk, kv->i), 0);
        return;
    case V_RAW:
        assert_int_equal(msgpack_sbuffer_write(sb, kv->s, kv->len), 0);
        return;
    }
    fail_msg("bad value kind");
}

/* Appends the map of `s` to `sb` (initialised by the caller). */
static void encode_kvs(const struct kvs *s, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    assert_int_equal(msgpack_pack_map(&pk, s->count), 0);
    for (size_t i = 0; i < s->count; i++) {
        const char *key = s->items[i].key;
        assert_int_equal(msgpack_pack_str_with_body(&pk, key, strlen(key)), 0);
        pack_value(&pk, sb, &s->items[i]);
    }
}

static enum job_error decode_kvs(const struct kvs *s, struct job *job, struct result *reject)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    encode_kvs(s, &sb);
    enum job_error error = codec_decode_job(sb.data, sb.size, job, reject);
    msgpack_sbuffer_destroy(&sb);
    return error;
}

static enum job_error decode_bytes(const void *bytes, size_t len)
{
    struct job job;
    struct result reject;
    return codec_decode_job(bytes, len, &job, &reject);
}

/* Asserts `s` decodes to `expected`, and on a rejection that `reject` says
 * the same. */
static void expect_kvs(const struct kvs *s, enum job_error expected, const char *what)
{
    struct job job;
    struct result reject;
    enum job_error error = decode_kvs(s, &job, &reject);
    if (error != expected)
        fail_msg("%s: got '%s' (%s), expected '%s'", what, job_error_name(error), reject.message,
                 job_error_name(expected));
    if (error != JOB_OK) {
        assert_int_equal(reject.error, error);
        assert_true(reject.message[0] != '\0');
        assert_int_equal(reject.done_at_ms, 0);
        assert_false(reject.replayed);
    }
}

/* Equal as jobs: the common fields, then each field of the type through
 * its descriptor (an absent optional field's buffer is not compared). */
static void assert_job_equal(const struct job *a, const struct job *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->reply, b->reply);
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->user, b->user);
    const struct job_type_ops *ops = job_type_ops(a->type);
    for (size_t i = 0; i < ops->field_count; i++) {
        const struct job_field *f = &ops->fields[i];
        bool present = job_field_present(a, f);
        if (present != job_field_present(b, f))
            fail_msg("field %s of a %s: present in one job only", f->name, ops->name);
        if (!present)
            continue;
        switch (f->kind) {
        case JOB_FIELD_INT:
            assert_int_equal(job_field_int(a, f), job_field_int(b, f));
            break;
        case JOB_FIELD_STR:
            assert_string_equal(job_field_str(a, f), job_field_str(b, f));
            break;
        case JOB_FIELD_BOOL:
            assert_int_equal(job_field_bool(a, f), job_field_bool(b, f));
            break;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Valid jobs                                                               */
/* ------------------------------------------------------------------------ */

static void test_valid_consume_decodes(void **state)
{
    (void)state;
    struct kvs s = consume_job();
    struct job job;
    struct result reject;
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_OK);
    assert_int_equal(job.type, JOB_CONSUME);
    assert_string_equal(job.id, "job-1");
    assert_string_equal(job.user, "u1");
    assert_int_equal(job.consume.amount, 5);
    assert_false(job.reply);
    assert_false(job.consume.has_tool);
    assert_false(job.consume.has_ref);
    assert_int_equal(reject.error, JOB_OK);
}

static void test_valid_consume_with_tool_ref_and_reply_decodes(void **state)
{
    (void)state;
    struct kvs s = consume_job();
    kvs_add(&s, KV_STR("tool", "video-gen"));
    kvs_add(&s, KV_STR("ref", "vid_42"));
    kvs_add(&s, (struct kv){"reply", V_TRUE, 0, NULL, 0});
    struct job job;
    struct result reject;
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_OK);
    assert_true(job.reply);
    assert_true(job.consume.has_tool);
    assert_true(job.consume.has_ref);
    assert_string_equal(job.consume.tool, "video-gen");
    assert_string_equal(job.consume.ref, "vid_42");

    kvs_set(&s, (struct kv){"reply", V_FALSE, 0, NULL, 0});
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_OK);
    assert_false(job.reply);
}

static void test_valid_purchase_decodes(void **state)
{
    (void)state;
    struct kvs s = purchase_job();
    struct job job;
    struct result reject;
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_OK);
    assert_int_equal(job.type, JOB_PURCHASE);
    assert_string_equal(job.id, "pay-evt-1");
    assert_string_equal(job.user, "u1");
    assert_string_equal(job.purchase.pack, "starter");
    assert_string_equal(job.purchase.payment_ref, "cap_123");
}

static void test_valid_allocate_decodes(void **state)
{
    (void)state;
    struct kvs s = allocate_job();
    struct job job;
    struct result reject;
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_OK);
    assert_int_equal(job.type, JOB_ALLOCATE);
    assert_string_equal(job.id, "alloc:u1:2026-11");
    assert_string_equal(job.allocate.plan, "pro");
    assert_string_equal(job.allocate.period, "2026-11");
}

static void test_key_order_does_not_matter(void **state)
{
    (void)state;
    struct kvs s = purchase_job();
    struct kvs reversed = {.count = 0};
    for (size_t i = s.count; i > 0; i--)
        kvs_add(&reversed, s.items[i - 1]);
    struct job a, b;
    struct result reject;
    assert_int_equal(decode_kvs(&s, &a, &reject), JOB_OK);
    assert_int_equal(decode_kvs(&reversed, &b, &reject), JOB_OK);
    assert_job_equal(&a, &b);
}

/* ------------------------------------------------------------------------ */
/* Missing fields and wrong types                                           */
/* ------------------------------------------------------------------------ */

static struct kvs (*const job_builders[JOB_TYPE_COUNT])(void) = {
    [JOB_CONSUME] = consume_job, [JOB_PURCHASE] = purchase_job, [JOB_ALLOCATE] = allocate_job,
    [JOB_HOLD] = hold_job,       [JOB_CAPTURE] = capture_job,   [JOB_RELEASE] = release_job,
    [JOB_REFUND] = refund_job,   [JOB_REVOKE] = revoke_job,     [JOB_GRANT] = grant_job,
    [JOB_CANCEL] = cancel_job,
};

static void test_every_required_field_missing_is_invalid(void **state)
{
    (void)state;
    for (int t = 0; t < JOB_TYPE_COUNT; t++) {
        struct kvs base = job_builders[t]();
        for (size_t i = 0; i < base.count; i++) {
            struct kvs s = base;
            const char *key = base.items[i].key;
            kvs_drop(&s, key);
            char what[80];
            snprintf(what, sizeof what, "%s without '%s'", job_type_name((enum job_type)t), key);
            expect_kvs(&s, JOB_ERR_INVALID_JOB, what);
        }
    }
}

static void test_wrong_value_types_are_invalid(void **state)
{
    (void)state;
    /* Every field gets every kind it must not have. */
    static const enum val_kind not_str[] = {V_INT, V_BIN, V_NIL, V_TRUE, V_FLOAT, V_ARRAY};
    static const enum val_kind not_int[] = {V_STR, V_BIN, V_NIL, V_FALSE, V_FLOAT, V_ARRAY};
    for (int t = 0; t < JOB_TYPE_COUNT; t++) {
        struct kvs base = job_builders[t]();
        for (size_t i = 0; i < base.count; i++) {
            bool is_int = base.items[i].kind == V_INT;
            const enum val_kind *kinds = is_int ? not_int : not_str;
            for (size_t k = 0; k < 6; k++) {
                struct kvs s = base;
                s.items[i] = KV_OF(base.items[i].key, kinds[k]);
                char what[80];
                snprintf(what, sizeof what, "%s with '%s' of kind %d",
                         job_type_name((enum job_type)t), base.items[i].key, (int)kinds[k]);
                expect_kvs(&s, JOB_ERR_INVALID_JOB, what);
            }
        }
    }
}

static void test_optional_fields_of_the_wrong_type_are_invalid(void **state)
{
    (void)state;
    static const enum val_kind kinds[] = {V_INT, V_BIN, V_NIL, V_TRUE, V_FLOAT, V_ARRAY};
    static const char *const keys[] = {"tool", "ref"};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < 6; i++) {
            struct kvs s = consume_job();
            kvs_add(&s, KV_OF(keys[k], kinds[i]));
            expect_kvs(&s, JOB_ERR_INVALID_JOB, keys[k]);
        }
    }
    static const enum val_kind not_bool[] = {V_INT, V_STR, V_NIL, V_BIN, V_ARRAY, V_FLOAT};
    for (size_t i = 0; i < 6; i++) {
        struct kvs s = consume_job();
        kvs_add(&s, KV_OF("reply", not_bool[i]));
        expect_kvs(&s, JOB_ERR_INVALID_JOB, "reply");
    }
}

static void test_unknown_type_is_invalid(void **state)
{
    (void)state;
    static const char *const names[] = {"transfer", "", "Consume", "consume ", "holds"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct kvs s = consume_job();
        kvs_set(&s, KV_STR("type", names[i]));
        expect_kvs(&s, JOB_ERR_INVALID_JOB, names[i]);
    }
}

/* ------------------------------------------------------------------------ */
/* Amount                                                                   */
/* ------------------------------------------------------------------------ */

static void test_amount_range(void **state)
{
    (void)state;
    struct {
        struct kv amount;
        enum job_error expected;
    } cases[] = {
        {KV_INT("amount", 0), JOB_ERR_INVALID_JOB},
        {KV_INT("amount", 1), JOB_OK},
        {KV_INT("amount", 1000000000), JOB_OK},
        {KV_INT("amount", 1000000001), JOB_ERR_INVALID_JOB},
        {KV_INT("amount", -1), JOB_ERR_INVALID_JOB},
        {KV_INT("amount", INT64_MIN), JOB_ERR_INVALID_JOB},
        {KV_INT("amount", INT64_MAX), JOB_ERR_INVALID_JOB},
        {KV_RAW("amount", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), JOB_ERR_INVALID_JOB},
        {KV_RAW("amount", "\xcf\x00\x00\x00\x01\x00\x00\x00\x05"), JOB_ERR_INVALID_JOB},
        {KV_RAW("amount", "\xff"), JOB_ERR_INVALID_JOB},     /* -1 fixint */
        {KV_RAW("amount", "\xd0\xff"), JOB_ERR_INVALID_JOB}, /* -1 int8 */
        {KV_RAW("amount", "\xd3\x80\x00\x00\x00\x00\x00\x00\x00"), JOB_ERR_INVALID_JOB},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kvs s = consume_job();
        kvs_set(&s, cases[i].amount);
        char what[40];
        snprintf(what, sizeof what, "amount case %zu", i);
        expect_kvs(&s, cases[i].expected, what);
    }
}

static void test_amount_accepts_every_int_encoding(void **state)
{
    (void)state;
    struct {
        struct kv amount;
        int64_t value;
    } cases[] = {
        {KV_RAW("amount", "\x05"), 5},
        {KV_RAW("amount", "\x7f"), 127},
        {KV_RAW("amount", "\xcc\x05"), 5},
        {KV_RAW("amount", "\xcc\xff"), 255},
        {KV_RAW("amount", "\xcd\x00\x05"), 5},
        {KV_RAW("amount", "\xcd\xff\xff"), 65535},
        {KV_RAW("amount", "\xce\x00\x00\x00\x05"), 5},
        {KV_RAW("amount", "\xce\x3b\x9a\xca\x00"), 1000000000},
        {KV_RAW("amount", "\xcf\x00\x00\x00\x00\x00\x00\x00\x05"), 5},
        {KV_RAW("amount", "\xcf\x00\x00\x00\x00\x3b\x9a\xca\x00"), 1000000000},
        {KV_RAW("amount", "\xd0\x05"), 5},
        {KV_RAW("amount", "\xd0\x7f"), 127},
        {KV_RAW("amount", "\xd1\x00\x05"), 5},
        {KV_RAW("amount", "\xd1\x7f\xff"), 32767},
        {KV_RAW("amount", "\xd2\x00\x00\x00\x05"), 5},
        {KV_RAW("amount", "\xd2\x3b\x9a\xca\x00"), 1000000000},
        {KV_RAW("amount", "\xd3\x00\x00\x00\x00\x00\x00\x00\x05"), 5},
        {KV_RAW("amount", "\xd3\x00\x00\x00\x00\x3b\x9a\xca\x00"), 1000000000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kvs s = consume_job();
        kvs_set(&s, cases[i].amount);
        struct job job;
        struct result reject;
        if (decode_kvs(&s, &job, &reject) != JOB_OK)
            fail_msg("amount encoding %zu rejected: %s", i, reject.message);
        assert_int_equal(job.consume.amount, cases[i].value);
    }
}

static void test_amount_as_float_is_invalid(void **state)
{
    (void)state;
    const struct kv floats[] = {
        KV_RAW("amount", "\xca\x40\xa0\x00\x00"),                 /* 5.0f */
        KV_RAW("amount", "\xcb\x40\x14\x00\x00\x00\x00\x00\x00"), /* 5.0 */
    };
    for (size_t i = 0; i < 2; i++) {
        struct kvs s = consume_job();
        kvs_set(&s, floats[i]);
        struct job job;
        struct result reject;
        assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
        assert_string_equal(reject.message,
                            "field 'amount' must be an integer from 1 to 1000000000");
    }
}

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

static void test_version_rules(void **state)
{
    (void)state;
    struct {
        struct kv v;
        enum job_error expected;
    } cases[] = {
        {KV_STR("v", "1"), JOB_ERR_INVALID_JOB},
        {(struct kv){"v", V_NIL, 0, NULL, 0}, JOB_ERR_INVALID_JOB},
        {(struct kv){"v", V_FLOAT, 1, NULL, 0}, JOB_ERR_INVALID_JOB},
        {(struct kv){"v", V_TRUE, 0, NULL, 0}, JOB_ERR_INVALID_JOB},
        {KV_INT("v", 2), JOB_ERR_UNSUPPORTED_VERSION},
        {KV_INT("v", 0), JOB_ERR_UNSUPPORTED_VERSION},
        {KV_INT("v", -1), JOB_ERR_UNSUPPORTED_VERSION},
        {KV_INT("v", INT64_MIN), JOB_ERR_UNSUPPORTED_VERSION},
        {KV_RAW("v", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), JOB_ERR_UNSUPPORTED_VERSION},
        {KV_RAW("v", "\xcf\x00\x00\x00\x00\x00\x00\x00\x01"), JOB_OK},
        {KV_RAW("v", "\xd0\x01"), JOB_OK},
        {KV_RAW("v", "\xd3\x00\x00\x00\x00\x00\x00\x00\x01"), JOB_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kvs s = consume_job();
        kvs_set(&s, cases[i].v);
        char what[40];
        snprintf(what, sizeof what, "version case %zu", i);
        expect_kvs(&s, cases[i].expected, what);
    }
    struct kvs s = consume_job();
    kvs_drop(&s, "v");
    expect_kvs(&s, JOB_ERR_INVALID_JOB, "no v");
}

static void test_other_version_is_judged_before_its_fields(void **state)
{
    (void)state;
    /* A v2 job may have another shape: no amount, an unknown type, a bin id.
     * The answer is unsupported_version, with what is readable of it. */
    struct kvs s = consume_job();
    kvs_set(&s, KV_INT("v", 2));
    kvs_drop(&s, "amount");
    kvs_set(&s, KV_STR("type", "topup"));
    struct job job;
    struct result reject;
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_UNSUPPORTED_VERSION);
    assert_int_equal(reject.error, JOB_ERR_UNSUPPORTED_VERSION);
    assert_true(reject.has_id);
    assert_string_equal(reject.id, "job-1");
    assert_false(reject.has_type);
    assert_true(reject.has_user);
    assert_non_null(strstr(reject.message, "version 2"));

    /* But the structure must still be well-formed. */
    kvs_add(&s, KV_STR("id", "job-1"));
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
}

/* ------------------------------------------------------------------------ */
/* id and user                                                              */
/* ------------------------------------------------------------------------ */

static void test_id_and_user_length_boundaries(void **state)
{
    (void)state;
    static const char *const keys[] = {"id", "user"};
    struct {
        size_t len;
        enum job_error expected;
    } cases[] = {
        {0, JOB_ERR_INVALID_JOB},   {1, JOB_OK}, {128, JOB_OK}, {129, JOB_ERR_INVALID_JOB},
        {300, JOB_ERR_INVALID_JOB},
    };
    char text[301];
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            memset(text, 'x', cases[i].len);
            text[cases[i].len] = '\0';
            struct kvs s = consume_job();
            kvs_set(&s, KV_STR(keys[k], text));
            struct job job;
            struct result reject;
            enum job_error error = decode_kvs(&s, &job, &reject);
            if (error != cases[i].expected)
                fail_msg("%s of %zu bytes: %s", keys[k], cases[i].len, reject.message);
            if (error == JOB_OK)
                assert_string_equal(k == 0 ? job.id : job.user, text);
        }
    }
}

static void test_id_and_user_character_boundaries(void **state)
{
    (void)state;
    static const char *const keys[] = {"id", "user"};
    struct {
        unsigned char c;
        enum job_error expected;
    } cases[] = {
        {0x20, JOB_ERR_INVALID_JOB},
        {0x21, JOB_OK},
        {0x7e, JOB_OK},
        {0x7f, JOB_ERR_INVALID_JOB},
        {0x80, JOB_ERR_INVALID_JOB},
        {0x00, JOB_ERR_INVALID_JOB},
    };
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char text[3] = {'a', (char)cases[i].c, 'b'};
            struct kvs s = consume_job();
            kvs_set(&s, (struct kv){keys[k], V_BYTES, 0, text, 3});
            char what[40];
            snprintf(what, sizeof what, "%s with byte 0x%02x", keys[k], cases[i].c);
            expect_kvs(&s, cases[i].expected, what);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Structure                                                                */
/* ------------------------------------------------------------------------ */

static void test_duplicate_keys_are_invalid(void **state)
{
    (void)state;
    struct {
        struct kv extra;
        const char *message;
    } cases[] = {
        {KV_STR("id", "job-1"), "duplicate key 'id'"},
        {KV_STR("id", "job-2"), "duplicate key 'id'"},
        {KV_INT("v", 1), "duplicate key 'v'"},
        {KV_INT("amount", 5), "duplicate key 'amount'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kvs s = consume_job();
        kvs_add(&s, cases[i].extra);
        struct job job;
        struct result reject;
        assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
        assert_string_equal(reject.message, cases[i].message);
    }
    /* An unknown key twice, even with different values, and a field of
     * another type twice. */
    struct kvs s = consume_job();
    kvs_add(&s, KV_INT("trace", 1));
    kvs_add(&s, KV_INT("other", 1));
    kvs_add(&s, KV_STR("trace", "x"));
    struct job job;
    struct result reject;
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_string_equal(reject.message, "duplicate key 'trace'");
    s = consume_job();
    kvs_add(&s, KV_STR("pack", "a"));
    kvs_add(&s, KV_STR("pack", "a"));
    expect_kvs(&s, JOB_ERR_INVALID_JOB, "pack twice on a consume");
    s = consume_job();
    kvs_add(&s, KV_STR("", "a"));
    kvs_add(&s, KV_STR("", "b"));
    expect_kvs(&s, JOB_ERR_INVALID_JOB, "empty key twice");
}

static void test_non_string_keys_are_invalid(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    struct kvs s = consume_job();
    s.count--; /* the map header says 5 entries: 4 of them, then a non-str key */
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(msgpack_pack_map(&pk, 5), 0);
    for (size_t i = 0; i < s.count; i++) {
        const char *key = s.items[i].key;
        assert_int_equal(msgpack_pack_str_with_body(&pk, key, strlen(key)), 0);
        pack_value(&pk, &sb, &s.items[i]);
    }
    size_t prefix = sb.size;
    static const char *const keys[] = {"\x01",
                                       ("\xc4\x06"
                                        "amount"),
                                       "\xc0", "\x91\xa1x", "\x81\xa1x\x01"};
    static const size_t key_lens[] = {1, 8, 1, 3, 4};
    for (size_t i = 0; i < 5; i++) {
        sb.size = prefix;
        assert_int_equal(msgpack_sbuffer_write(&sb, keys[i], key_lens[i]), 0);
        assert_int_equal(msgpack_pack_int64(&pk, 5), 0);
        struct job job;
        struct result reject;
        assert_int_equal(codec_decode_job(sb.data, sb.size, &job, &reject), JOB_ERR_INVALID_JOB);
        assert_string_equal(reject.message, "map keys must be strings");
    }
    msgpack_sbuffer_destroy(&sb);
}

static void test_trailing_byte_is_invalid(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    struct kvs s = consume_job();
    encode_kvs(&s, &sb);
    assert_int_equal(decode_bytes(sb.data, sb.size), JOB_OK);
    static const char trailing[] = {'\xc0', '\x00', '\x80', '\xc1'};
    for (size_t i = 0; i < sizeof trailing; i++) {
        assert_int_equal(msgpack_sbuffer_write(&sb, &trailing[i], 1), 0);
        struct job job;
        struct result reject;
        assert_int_equal(codec_decode_job(sb.data, sb.size, &job, &reject), JOB_ERR_INVALID_JOB);
        assert_string_equal(reject.message, "trailing bytes after the job map");
        sb.size--;
    }
    /* Two whole jobs back to back are not one job. */
    encode_kvs(&s, &sb);
    assert_int_equal(decode_bytes(sb.data, sb.size), JOB_ERR_INVALID_JOB);
    msgpack_sbuffer_destroy(&sb);
}

static void test_every_strict_prefix_is_invalid(void **state)
{
    (void)state;
    struct kvs jobs[JOB_TYPE_COUNT];
    for (int t = 0; t < JOB_TYPE_COUNT; t++)
        jobs[t] = job_builders[t]();
    kvs_add(&jobs[0], KV_STR("tool", "video-gen"));
    kvs_add(&jobs[0], KV_STR("ref", "a-reference-longer-than-thirty-two-bytes"));
    kvs_add(&jobs[0], KV_RAW("x", "\xdc\x00\x02\xcd\x01\x00\xd6\x01\x01\x02\x03\x04"));
    for (int t = 0; t < JOB_TYPE_COUNT; t++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        encode_kvs(&jobs[t], &sb);
        assert_int_equal(decode_bytes(sb.data, sb.size), JOB_OK);
        for (size_t len = 0; len < sb.size; len++) {
            /* A copy of exactly `len` bytes, so ASan sees any read past it. */
            char *prefix = malloc(len > 0 ? len : 1);
            assert_non_null(prefix);
            memcpy(prefix, sb.data, len);
            if (decode_bytes(prefix, len) != JOB_ERR_INVALID_JOB)
                fail_msg("a %zu-byte prefix of a %zu-byte job decoded", len, sb.size);
            free(prefix);
        }
        msgpack_sbuffer_destroy(&sb);
    }
}

/* A consume job padded with an unknown str key to exactly `size` bytes. */
static void padded_job(size_t size, msgpack_sbuffer *sb)
{
    struct kvs s = consume_job();
    static char pad[5000];
    memset(pad, 'p', sizeof pad - 1);
    size_t pad_len = 1000; /* a str16: 3 header bytes, as the final length is */
    pad[pad_len] = '\0';
    kvs_add(&s, KV_STR("pad", pad));
    msgpack_sbuffer_init(sb);
    encode_kvs(&s, sb);
    size_t overhead = sb->size - pad_len;
    assert_true(size > overhead + 255);
    pad[pad_len] = 'p';
    pad[size - overhead] = '\0';
    sb->size = 0;
    encode_kvs(&s, sb);
    assert_int_equal(sb->size, size);
}

static void test_size_limit_is_4096_bytes(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    padded_job(4096, &sb);
    struct job job;
    struct result reject;
    assert_int_equal(codec_decode_job(sb.data, sb.size, &job, &reject), JOB_OK);
    assert_int_equal(job.consume.amount, 5);
    msgpack_sbuffer_destroy(&sb);

    padded_job(4097, &sb);
    assert_int_equal(codec_decode_job(sb.data, sb.size, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_string_equal(reject.message, "job is 4097 bytes; the limit is 4096");
    assert_false(reject.has_id);
    msgpack_sbuffer_destroy(&sb);

    padded_job(5000, &sb);
    assert_int_equal(codec_decode_job(sb.data, sb.size, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_string_equal(reject.message, "job is 5000 bytes; the limit is 4096");
    msgpack_sbuffer_destroy(&sb);
}

static void test_hostile_headers_are_invalid_without_allocating(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
    } tops[] = {
        {"\xdd\xff\xff\xff\xff", 5}, /* array32 of 4294967295 */
        {"\xdf\xff\xff\xff\xff", 5}, /* map32 of 4294967295 */
        {"\xdb\xff\xff\xff\xff"
         "abc",
         8},                             /* str32 of 4 GiB */
        {"\xc6\xff\xff\xff\xff", 5},     /* bin32 of 4 GiB */
        {"\xc9\xff\xff\xff\xff\x01", 6}, /* ext32 of 4 GiB */
        {"\xde\x00\x03\xa1v\x01", 6},    /* map16 of 3, one entry there */
        {"\x8f", 1},                     /* fixmap of 15, nothing there */
        {"\x81\xa1x\xdc\xff\xff", 6},    /* array16 of 65535 as a value */
    };
    for (size_t i = 0; i < sizeof tops / sizeof tops[0]; i++) {
        if (decode_bytes(tops[i].bytes, tops[i].len) != JOB_ERR_INVALID_JOB)
            fail_msg("hostile input %zu decoded", i);
    }
    const struct kv under_unknown[] = {
        KV_RAW("x", "\xdd\xff\xff\xff\xff"),
        KV_RAW("x", "\xdf\xff\xff\xff\xff"),
        KV_RAW("x", "\xdb\xff\xff\xff\xff"),
        KV_RAW("x", "\xc6\xff\xff\xff\xff"),
        KV_RAW("x", "\xc8\xff\xff\x01"),
        KV_RAW("x", "\xd8\x01"), /* fixext16 with 1 of its 16 bytes */
    };
    for (size_t i = 0; i < sizeof under_unknown / sizeof under_unknown[0]; i++) {
        struct kvs s = consume_job();
        kvs_add(&s, under_unknown[i]);
        expect_kvs(&s, JOB_ERR_INVALID_JOB, "hostile header under an unknown key");
    }
    struct kvs s = consume_job();
    kvs_set(&s, KV_RAW("id", "\xdb\xff\xff\xff\xff"));
    expect_kvs(&s, JOB_ERR_INVALID_JOB, "str32 id claiming 4 GiB");
}

/* A consume job with `depth` nested fixarrays (0x91 ... 0x90) under "x". */
static enum job_error decode_nested(size_t depth, enum job_error expected)
{
    static char nested[10001];
    assert_true(depth >= 1 && depth <= 10000);
    memset(nested, 0x91, depth - 1);
    nested[depth - 1] = (char)0x90;
    struct kvs s = consume_job();
    kvs_add(&s, (struct kv){"x", V_RAW, 0, nested, depth});
    struct job job;
    struct result reject;
    enum job_error error = decode_kvs(&s, &job, &reject);
    if (error != expected)
        fail_msg("%zu nested arrays: '%s' (%s)", depth, job_error_name(error), reject.message);
    return error;
}

static void test_nesting_is_bounded_to_32_levels(void **state)
{
    (void)state;
    /* The job map is level 1: 31 more levels are allowed under a key. */
    (void)decode_nested(1, JOB_OK);
    (void)decode_nested(31, JOB_OK);
    (void)decode_nested(32, JOB_ERR_INVALID_JOB);
    (void)decode_nested(4000, JOB_ERR_INVALID_JOB);
    (void)decode_nested(10000, JOB_ERR_INVALID_JOB); /* too large as well */
    /* Nested maps, and nesting at the top level. */
    static char maps[3 * 40 + 1];
    for (size_t i = 0; i < 40; i++)
        memcpy(maps + 3 * i, "\x81\xa1x", 3);
    maps[3 * 40] = 0x01;
    assert_int_equal(decode_bytes(maps, sizeof maps), JOB_ERR_INVALID_JOB);
    static char arrays[4000];
    memset(arrays, 0x91, sizeof arrays);
    assert_int_equal(decode_bytes(arrays, sizeof arrays), JOB_ERR_INVALID_JOB);
}

static void test_malformed_and_empty_inputs_are_invalid(void **state)
{
    (void)state;
    struct job job;
    struct result reject;
    assert_int_equal(codec_decode_job("\xc1", 1, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_string_equal(reject.message, "not msgpack");
    assert_int_equal(codec_decode_job(NULL, 0, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_string_equal(reject.message, "job is empty");
    assert_int_equal(codec_decode_job("", 0, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_int_equal(codec_decode_job("{\"v\":1}", 7, &job, &reject), JOB_ERR_INVALID_JOB);
    struct kvs s = consume_job();
    kvs_add(&s, KV_RAW("x", "\xc1"));
    expect_kvs(&s, JOB_ERR_INVALID_JOB, "0xc1 under an unknown key");
    s = consume_job();
    kvs_add(&s, KV_RAW("x", "\x92\x01\xc1"));
    expect_kvs(&s, JOB_ERR_INVALID_JOB, "0xc1 inside an array under an unknown key");
}

static void test_top_level_must_be_a_map(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
    } tops[] = {
        {"\x93\xa7"
         "consume\xa2u1\x05",
         13},
        {"\x90", 1},
        {"\x01", 1},
        {"\xff", 1},
        {"\xa3job", 4},
        {"\xc0", 1},
        {"\xc3", 1},
        {"\xc4\x01x", 3},
        {"\xcb\x40\x14\x00\x00\x00\x00\x00\x00", 9},
        {"\xd4\x01\x00", 3},
    };
    for (size_t i = 0; i < sizeof tops / sizeof tops[0]; i++) {
        struct job job;
        struct result reject;
        assert_int_equal(codec_decode_job(tops[i].bytes, tops[i].len, &job, &reject),
                         JOB_ERR_INVALID_JOB);
        assert_string_equal(reject.message, "job must be a map");
        assert_false(reject.has_id);
        assert_false(reject.has_type);
        assert_false(reject.has_user);
    }
    /* An empty map is a map, missing everything. */
    assert_int_equal(decode_bytes("\x80", 1), JOB_ERR_INVALID_JOB);
}

static void test_unknown_keys_with_any_value_are_ignored(void **state)
{
    (void)state;
    const struct kv extras[] = {
        KV_RAW("trace", "\x82\xa4span\x93\x01\x02\xc0\xa3"
                        "ext\xd4\x01\x00"),
        KV_RAW("list", "\xdc\x00\x02\x81\xa1"
                       "a\x90\x80"),
        KV_RAW("map32", "\xdf\x00\x00\x00\x01\xa1k\xa1v"),
        KV_RAW("ext8", "\xc7\x03\x05"
                       "abc"),
        KV_RAW("ext16", "\xc8\x00\x01\x05z"),
        KV_RAW("ext32", "\xc9\x00\x00\x00\x00\x05"),
        KV_RAW("fixext16", "\xd8\x05"
                           "0123456789abcdef"),
        KV_RAW("fixext8", "\xd7\xff"
                          "01234567"),
        KV_RAW("bin16", "\xc5\x00\x02\x00\x00"),
        KV_RAW("str8", "\xd9\x01z"),
        KV_RAW("float32", "\xca\x00\x00\x00\x00"),
        KV_RAW("neg", "\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
        KV_BIN("bin", "\x00\x01"),
        (struct kv){"nil", V_NIL, 0, NULL, 0},
        KV_BYTES("bad-utf8", "\xc0\x80"),
    };
    struct kvs s = consume_job();
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++)
        kvs_add(&s, extras[i]);
    struct job job;
    struct result reject;
    if (decode_kvs(&s, &job, &reject) != JOB_OK)
        fail_msg("unknown keys not ignored: %s", reject.message);
    assert_int_equal(job.consume.amount, 5);
}

/* ------------------------------------------------------------------------ */
/* The identity, best-effort (contract 9.9)                                 */
/* ------------------------------------------------------------------------ */

/* codec_decode_identity() of the encoding of `s`, cut to `cut` bytes
 * (SIZE_MAX: whole); *reply as it set it. */
static struct result identity_of(const struct kvs *s, size_t cut, bool *reply)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    encode_kvs(s, &sb);
    struct result identity;
    memset(&identity, 0x5a, sizeof identity); /* everything it sets is set */
    codec_decode_identity(sb.data, cut < sb.size ? cut : sb.size, &identity, reply);
    msgpack_sbuffer_destroy(&sb);
    return identity;
}

static void test_identity_of_a_valid_job(void **state)
{
    (void)state;
    struct kvs s = consume_job();
    kvs_add(&s, (struct kv){"reply", V_TRUE, 0, NULL, 0});
    bool reply = false;
    struct result r = identity_of(&s, SIZE_MAX, &reply);
    assert_true(r.has_id);
    assert_string_equal(r.id, "job-1");
    assert_true(r.has_type);
    assert_int_equal(r.type, JOB_CONSUME);
    assert_true(r.has_user);
    assert_string_equal(r.user, "u1");
    assert_true(reply);
}

static void test_identity_of_a_job_over_4096_bytes(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    padded_job(5000, &sb);
    struct result r;
    bool reply = true;
    codec_decode_identity(sb.data, sb.size, &r, &reply);
    assert_true(r.has_id);
    assert_string_equal(r.id, "job-1");
    assert_true(r.has_user);
    assert_false(reply);
    /* What the queue keeps of it: the first 4097 bytes, the pad cut. */
    codec_decode_identity(sb.data, 4097, &r, &reply);
    assert_true(r.has_id);
    assert_string_equal(r.id, "job-1");
    assert_true(r.has_type);
    msgpack_sbuffer_destroy(&sb);
    /* A map16 whose count the first bytes cannot hold: read as far as they go. */
    struct kvs big = consume_job();
    for (int i = 0; i < 11; i++) /* 16 entries: a map16 */
        kvs_add(&big, KV_INT("n", i));
    bool ignored;
    r = identity_of(&big, 40, &ignored);
    assert_true(r.has_id);
    assert_string_equal(r.id, "job-1");
}

static void test_identity_when_a_key_is_given_twice(void **state)
{
    (void)state;
    bool reply;
    /* Another key twice: the id is still the id. */
    struct kvs s = consume_job();
    kvs_add(&s, KV_INT("amount", 7));
    struct result r = identity_of(&s, SIZE_MAX, &reply);
    assert_true(r.has_id);
    assert_string_equal(r.id, "job-1");
    /* The id twice, the same both times: readable. */
    s = consume_job();
    kvs_add(&s, KV_STR("id", "job-1"));
    r = identity_of(&s, SIZE_MAX, &reply);
    assert_true(r.has_id);
    assert_string_equal(r.id, "job-1");
    /* The id twice with two values: whose job is it? Neither's. */
    s = consume_job();
    kvs_add(&s, KV_STR("id", "job-2"));
    r = identity_of(&s, SIZE_MAX, &reply);
    assert_false(r.has_id);
    assert_string_equal(r.id, "");
    assert_true(r.has_user);
    /* reply twice, true and false: not readable. */
    s = consume_job();
    kvs_add(&s, (struct kv){"reply", V_TRUE, 0, NULL, 0});
    kvs_add(&s, (struct kv){"reply", V_FALSE, 0, NULL, 0});
    reply = true;
    r = identity_of(&s, SIZE_MAX, &reply);
    assert_false(reply);
}

static void test_identity_stops_at_a_bad_entry(void **state)
{
    (void)state;
    bool reply;
    /* An entry after the id that is no msgpack: the id before it stands. */
    struct kvs s = consume_job();
    kvs_add(&s, KV_RAW("bad", "\xc1"));
    struct result r = identity_of(&s, SIZE_MAX, &reply);
    assert_true(r.has_id);
    assert_string_equal(r.id, "job-1");
    /* A key that is not a str ends the scan: what follows is not read. */
    struct kvs t = {.count = 0};
    kvs_add(&t, KV_STR("type", "consume"));
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    encode_kvs(&t, &sb);
    /* {type: consume, 1: 1, id: job-1} with the map header saying 3. */
    static const char tail[] = "\x01\x01\xa2id\xa5job-1";
    assert_int_equal(msgpack_sbuffer_write(&sb, tail, sizeof tail - 1), 0);
    sb.data[0] = (char)0x83;
    codec_decode_identity(sb.data, sb.size, &r, &reply);
    assert_true(r.has_type);
    assert_false(r.has_id);
    msgpack_sbuffer_destroy(&sb);
    /* An id that breaks the ID rule is not read, wherever it is. */
    s = consume_job();
    kvs_set(&s, KV_STR("id", "job 1"));
    r = identity_of(&s, SIZE_MAX, &reply);
    assert_false(r.has_id);
}

static void test_identity_of_what_is_no_map(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
    } inputs[] = {
        {"", 0},         {"\x91\xc1", 2}, {"\xc1", 1},       {"\xa3job", 4},           {"\xde", 1},
        {"\xdf\x00", 2}, {"\x81", 1},     {"\x81\xa2id", 4}, {"\x81\xa2id\xa5job", 8},
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        struct result r;
        bool reply = true;
        memset(&r, 0x5a, sizeof r);
        codec_decode_identity(inputs[i].bytes, inputs[i].len, &r, &reply);
        assert_false(r.has_id);
        assert_false(r.has_type);
        assert_false(r.has_user);
        assert_false(reply);
        assert_string_equal(r.id, "");
    }
}

/* Any prefix of any job: never a crash, and an id only when valid. */
static void test_identity_of_every_prefix(void **state)
{
    (void)state;
    struct kvs s = purchase_job();
    kvs_add(&s, KV_RAW("trace", "\x82\xa4span\x93\x01\x02\xc0\xa3x\xd4\x01\x00"));
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    encode_kvs(&s, &sb);
    size_t id_end = 0;
    for (size_t cut = 0; cut <= sb.size; cut++) {
        struct result r;
        bool reply;
        codec_decode_identity(sb.data, cut, &r, &reply);
        if (r.has_id) {
            assert_string_equal(r.id, "pay-evt-1");
            if (id_end == 0)
                id_end = cut;
        } else {
            assert_int_equal(id_end, 0); /* once readable, it stays */
        }
    }
    assert_true(id_end > 0 && id_end < sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------------------------ */
/* Rejections name the job when they can                                    */
/* ------------------------------------------------------------------------ */

static void test_reject_carries_readable_identity(void **state)
{
    (void)state;
    struct kvs s = consume_job();
    kvs_set(&s, KV_INT("amount", 0));
    struct job job;
    struct result reject;
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_int_equal(reject.error, JOB_ERR_INVALID_JOB);
    assert_string_equal(reject.message, "field 'amount' must be an integer from 1 to 1000000000");
    assert_true(reject.has_id);
    assert_string_equal(reject.id, "job-1");
    assert_true(reject.has_type);
    assert_int_equal(reject.type, JOB_CONSUME);
    assert_true(reject.has_user);
    assert_string_equal(reject.user, "u1");
    assert_int_equal(reject.done_at_ms, 0);
    assert_false(reject.replayed);
    /* A rejected job leaves no half-filled job behind. */
    assert_string_equal(job.id, "");

    s = consume_job();
    kvs_drop(&s, "amount");
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_string_equal(reject.message, "field 'amount' is required");
    assert_true(reject.has_id);

    /* A readable `reply` survives, so that a waiting producer gets an answer;
     * nothing else of the job does. */
    kvs_add(&s, (struct kv){"reply", V_TRUE, 0, NULL, 0});
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_true(job.reply);
    assert_string_equal(job.id, "");
    kvs_set(&s, KV_INT("reply", 1));
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_false(job.reply);
    s = consume_job();
    kvs_set(&s, KV_INT("v", 2));
    kvs_add(&s, (struct kv){"reply", V_TRUE, 0, NULL, 0});
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_UNSUPPORTED_VERSION);
    assert_true(job.reply);

    /* Trailing bytes after a whole map: the map still names the job. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s = consume_job();
    encode_kvs(&s, &sb);
    assert_int_equal(msgpack_sbuffer_write(&sb, "\xc0", 1), 0);
    assert_int_equal(codec_decode_job(sb.data, sb.size, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_true(reject.has_id);
    assert_string_equal(reject.id, "job-1");
    msgpack_sbuffer_destroy(&sb);
}

static void test_reject_omits_unreadable_identity(void **state)
{
    (void)state;
    struct {
        struct kv change;
        bool has_id, has_type, has_user;
    } cases[] = {
        {KV_BIN("id", "job-1"), false, true, true},
        {KV_STR("id", "job 1"), false, true, true},
        {KV_STR("id", ""), false, true, true},
        {KV_INT("id", 1), false, true, true},
        {KV_STR("type", "transfer"), true, false, true},
        {KV_BIN("type", "consume"), true, false, true},
        {KV_STR("user", "u\x01"), true, true, false},
        {KV_BIN("user", "u1"), true, true, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kvs s = consume_job();
        kvs_set(&s, cases[i].change);
        struct job job;
        struct result reject;
        assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
        assert_int_equal(reject.has_id, cases[i].has_id);
        assert_int_equal(reject.has_type, cases[i].has_type);
        assert_int_equal(reject.has_user, cases[i].has_user);
        if (!reject.has_id)
            assert_string_equal(reject.id, "");
    }
    /* A key twice: the map is not one job, so nothing in it names one. */
    struct kvs s = consume_job();
    kvs_add(&s, KV_STR("id", "job-1"));
    struct job job;
    struct result reject;
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_false(reject.has_id);
    assert_false(reject.has_type);
    assert_false(reject.has_user);
    /* Missing id. */
    s = consume_job();
    kvs_drop(&s, "id");
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
    assert_string_equal(reject.message, "field 'id' is required");
    assert_false(reject.has_id);
    assert_true(reject.has_user);
}

/* ------------------------------------------------------------------------ */
/* Text fields                                                              */
/* ------------------------------------------------------------------------ */

static void expect_field_len(struct kvs (*build)(void), const char *key, size_t len,
                             enum job_error expected)
{
    static char text[300];
    assert_true(len < sizeof text);
    memset(text, 't', len);
    text[len] = '\0';
    struct kvs s = build();
    kvs_set(&s, KV_STR(key, text));
    char what[60];
    snprintf(what, sizeof what, "'%s' of %zu bytes", key, len);
    expect_kvs(&s, expected, what);
}

static void test_consume_text_limits(void **state)
{
    (void)state;
    expect_field_len(consume_job, "tool", 0, JOB_OK);
    expect_field_len(consume_job, "tool", 64, JOB_OK);
    expect_field_len(consume_job, "tool", 65, JOB_ERR_INVALID_JOB);
    expect_field_len(consume_job, "ref", 0, JOB_OK);
    expect_field_len(consume_job, "ref", 128, JOB_OK);
    expect_field_len(consume_job, "ref", 129, JOB_ERR_INVALID_JOB);
    const struct kv bad[] = {
        KV_BYTES("tool", "\xc0\x80"),
        KV_BYTES("tool", "\xed\xa0\x80"),
        KV_BYTES("tool", "\xf4\x90\x80\x80"),
        KV_BYTES("tool", "ab\xe2\x9c"),
        KV_BYTES("tool", "a\0b"),
        KV_BYTES("ref", "\xc0\x80"),
        KV_BYTES("ref", "\xff"),
        KV_BYTES("ref", "\0"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct kvs s = consume_job();
        kvs_set(&s, bad[i]);
        struct job job;
        struct result reject;
        assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
        assert_non_null(strstr(reject.message, "UTF-8"));
    }
    /* Multibyte UTF-8 counts bytes: 21 three-byte characters = 63 bytes. */
    char scissors[3 * 22 + 1] = "";
    for (int i = 0; i < 21; i++)
        strcat(scissors, "\xe2\x9c\x82");
    struct kvs s = consume_job();
    kvs_set(&s, KV_STR("tool", scissors));
    struct job job;
    struct result reject;
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_OK);
    assert_string_equal(job.consume.tool, scissors);
    strcat(scissors, "\xe2\x9c\x82");
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_ERR_INVALID_JOB);
}

static void test_empty_tool_is_present(void **state)
{
    (void)state;
    struct kvs s = consume_job();
    kvs_add(&s, KV_STR("tool", ""));
    struct job job;
    struct result reject;
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_OK);
    assert_true(job.consume.has_tool);
    assert_string_equal(job.consume.tool, "");
    assert_false(job.consume.has_ref);
}

static void test_purchase_and_allocate_text_limits(void **state)
{
    (void)state;
    expect_field_len(purchase_job, "pack", 0, JOB_ERR_INVALID_JOB);
    expect_field_len(purchase_job, "pack", 1, JOB_OK);
    expect_field_len(purchase_job, "pack", 64, JOB_OK);
    expect_field_len(purchase_job, "pack", 65, JOB_ERR_INVALID_JOB);
    expect_field_len(purchase_job, "payment_ref", 0, JOB_ERR_INVALID_JOB);
    expect_field_len(purchase_job, "payment_ref", 1, JOB_OK);
    expect_field_len(purchase_job, "payment_ref", 128, JOB_OK);
    expect_field_len(purchase_job, "payment_ref", 129, JOB_ERR_INVALID_JOB);
    expect_field_len(allocate_job, "plan", 0, JOB_ERR_INVALID_JOB);
    expect_field_len(allocate_job, "plan", 1, JOB_OK);
    expect_field_len(allocate_job, "plan", 64, JOB_OK);
    expect_field_len(allocate_job, "plan", 65, JOB_ERR_INVALID_JOB);
    struct {
        struct kvs (*build)(void);
        struct kv change;
        enum job_error expected;
    } cases[] = {
        {purchase_job, KV_BYTES("pack", "\xc0\x80"), JOB_ERR_INVALID_JOB},
        {purchase_job, KV_BYTES("payment_ref", "a\0"), JOB_ERR_INVALID_JOB},
        {purchase_job, KV_STR("pack", "caf\xc3\xa9"), JOB_OK},
        {allocate_job, KV_BYTES("plan", "\xed\xbf\xbf"), JOB_ERR_INVALID_JOB},
        {allocate_job, KV_STR("period", "2026-13"), JOB_ERR_INVALID_JOB},
        {allocate_job, KV_STR("period", "2026-00"), JOB_ERR_INVALID_JOB},
        {allocate_job, KV_STR("period", "2026-1"), JOB_ERR_INVALID_JOB},
        {allocate_job, KV_STR("period", "2026/01"), JOB_ERR_INVALID_JOB},
        {allocate_job, KV_STR("period", "2026-01"), JOB_OK},
        {allocate_job, KV_STR("period", "2026-12"), JOB_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kvs s = cases[i].build();
        kvs_set(&s, cases[i].change);
        char what[40];
        snprintf(what, sizeof what, "text case %zu", i);
        expect_kvs(&s, cases[i].expected, what);
    }
}

static void test_fields_of_another_type_are_ignored(void **state)
{
    (void)state;
    struct kvs s = consume_job();
    kvs_add(&s, KV_INT("pack", 7));
    kvs_add(&s, KV_STR("period", "not-a-period"));
    kvs_add(&s, KV_BIN("plan", "x"));
    struct job job;
    struct result reject;
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_OK);
    assert_int_equal(job.type, JOB_CONSUME);
    assert_int_equal(job.consume.amount, 5);

    s = purchase_job();
    kvs_add(&s, KV_STR("amount", "lots"));
    kvs_add(&s, (struct kv){"tool", V_NIL, 0, NULL, 0});
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_OK);
    assert_int_equal(job.type, JOB_PURCHASE);
    assert_string_equal(job.purchase.pack, "starter");

    s = allocate_job();
    kvs_add(&s, KV_INT("amount", -5));
    kvs_add(&s, KV_INT("payment_ref", 1));
    assert_int_equal(decode_kvs(&s, &job, &reject), JOB_OK);
    assert_int_equal(job.type, JOB_ALLOCATE);
    assert_string_equal(job.allocate.plan, "pro");
}

/* ------------------------------------------------------------------------ */
/* Encoding jobs and requests                                               */
/* ------------------------------------------------------------------------ */

static struct job sample_job(enum job_type type)
{
    struct job job;
    memset(&job, 0, sizeof job);
    job.type = type;
    strcpy(job.id, "job-1");
    strcpy(job.user, "u1");
    switch (type) {
    case JOB_CONSUME:
        job.consume.amount = 5;
        break;
    case JOB_PURCHASE:
        strcpy(job.purchase.pack, "starter");
        strcpy(job.purchase.payment_ref, "cap_123");
        break;
    case JOB_ALLOCATE:
        strcpy(job.allocate.plan, "pro");
        strcpy(job.allocate.period, "2026-11");
        break;
    case JOB_HOLD:
        job.hold.amount = 100;
        break;
    case JOB_CAPTURE:
        strcpy(job.capture.hold, "hold-1");
        job.capture.amount = 40;
        break;
    case JOB_RELEASE:
        strcpy(job.release.hold, "hold-1");
        break;
    case JOB_REFUND:
        strcpy(job.refund.charge, "job-0");
        break;
    case JOB_REVOKE:
        strcpy(job.revoke.payment_ref, "cap_123");
        break;
    case JOB_GRANT:
        job.grant.amount = 50;
        break;
    case JOB_CANCEL:
        break;
    }
    return job;
}

static void expect_job_round_trip(const struct job *job)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(codec_encode_job(job, &sb), 0);
    struct job decoded;
    struct result reject;
    if (codec_decode_job(sb.data, sb.size, &decoded, &reject) != JOB_OK)
        fail_msg("encoded %s job rejected: %s", job_type_name(job->type), reject.message);
    assert_job_equal(&decoded, job);
    msgpack_sbuffer_destroy(&sb);
}

static void test_encode_job_round_trips(void **state)
{
    (void)state;
    for (int t = 0; t < JOB_TYPE_COUNT; t++) {
        struct job job = sample_job((enum job_type)t);
        expect_job_round_trip(&job);
        job.reply = true;
        expect_job_round_trip(&job);
    }
    struct job job = sample_job(JOB_CONSUME);
    job.consume.amount = 1000000000;
    job.consume.has_tool = true;
    strcpy(job.consume.tool, "montage \xe2\x9c\x82");
    expect_job_round_trip(&job);
    job.consume.has_ref = true;
    memset(job.consume.ref, 'r', JOB_REF_BYTES_MAX);
    memset(job.id, 'i', JOB_ID_BYTES_MAX);
    expect_job_round_trip(&job);
    job.consume.has_tool = false;
    job.consume.tool[0] = '\0';
    expect_job_round_trip(&job);
}

static void test_encode_job_writes_the_contract_map(void **state)
{
    (void)state;
    struct job job = sample_job(JOB_CONSUME);
    job.reply = true;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(codec_encode_job(&job, &sb), 0);
    static const char expected[] = "\x86\xa1v\x01\xa2id\xa5job-1\xa4type\xa7"
                                   "consume\xa4user\xa2u1\xa5reply\xc3\xa6"
                                   "amount\x05";
    assert_int_equal(sb.size, sizeof expected - 1);
    assert_memory_equal(sb.data, expected, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* The request bytes of `job`, appended after a prefix to show that encoding
 * appends. Caller frees with free(). */
static char *request_of(const struct job *job, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(msgpack_sbuffer_write(&sb, "pre", 3), 0);
    assert_int_equal(codec_encode_request(job, &sb), 0);
    assert_memory_equal(sb.data, "pre", 3);
    *len = sb.size - 3;
    char *copy = malloc(*len);
    assert_non_null(copy);
    memcpy(copy, sb.data + 3, *len);
    msgpack_sbuffer_destroy(&sb);
    return copy;
}

static bool same_request(const struct job *a, const struct job *b)
{
    size_t a_len, b_len;
    char *a_bytes = request_of(a, &a_len);
    char *b_bytes = request_of(b, &b_len);
    bool same = a_len == b_len && memcmp(a_bytes, b_bytes, a_len) == 0;
    free(a_bytes);
    free(b_bytes);
    return same;
}

static void test_request_ignores_id_reply_and_fields_of_other_types(void **state)
{
    (void)state;
    struct job a = sample_job(JOB_CONSUME);
    struct job b = a;
    assert_true(same_request(&a, &b));
    strcpy(b.id, "job-2");
    b.reply = true;
    assert_true(same_request(&a, &b));

    /* And unknown keys, as decoded. */
    struct kvs s = consume_job();
    struct result reject;
    assert_int_equal(decode_kvs(&s, &a, &reject), JOB_OK);
    kvs_add(&s, KV_STR("trace", "abc"));
    kvs_add(&s, (struct kv){"reply", V_TRUE, 0, NULL, 0});
    kvs_add(&s, KV_STR("pack", "p"));
    assert_int_equal(decode_kvs(&s, &b, &reject), JOB_OK);
    assert_true(same_request(&a, &b));
}

static void test_request_differs_for_each_compared_field(void **state)
{
    (void)state;
    struct job consume = sample_job(JOB_CONSUME);
    consume.consume.has_tool = true;
    strcpy(consume.consume.tool, "video-gen");
    consume.consume.has_ref = true;
    strcpy(consume.consume.ref, "vid_42");
    struct job purchase = sample_job(JOB_PURCHASE);
    struct job allocate = sample_job(JOB_ALLOCATE);
    struct job changed;

    changed = consume;
    strcpy(changed.user, "u2");
    assert_false(same_request(&consume, &changed));
    changed = consume;
    changed.consume.amount = 6;
    assert_false(same_request(&consume, &changed));
    changed = consume;
    strcpy(changed.consume.tool, "video-gem");
    assert_false(same_request(&consume, &changed));
    changed = consume;
    strcpy(changed.consume.ref, "vid_43");
    assert_false(same_request(&consume, &changed));
    changed = purchase;
    strcpy(changed.purchase.pack, "pro-pack");
    assert_false(same_request(&purchase, &changed));
    changed = purchase;
    strcpy(changed.purchase.payment_ref, "cap_124");
    assert_false(same_request(&purchase, &changed));
    changed = allocate;
    strcpy(changed.allocate.plan, "basic");
    assert_false(same_request(&allocate, &changed));
    changed = allocate;
    strcpy(changed.allocate.period, "2026-12");
    assert_false(same_request(&allocate, &changed));
    /* type: the same user, everything else empty. */
    struct job bare_purchase = purchase, bare_allocate = allocate;
    bare_purchase.purchase.pack[0] = bare_purchase.purchase.payment_ref[0] = '\0';
    bare_allocate.allocate.plan[0] = bare_allocate.allocate.period[0] = '\0';
    assert_false(same_request(&bare_purchase, &bare_allocate));
    /* Field boundaries cannot be moved: tool "ab" + ref "c" vs "a" + "bc". */
    struct job x = consume, y = consume;
    strcpy(x.consume.tool, "ab");
    strcpy(x.consume.ref, "c");
    strcpy(y.consume.tool, "a");
    strcpy(y.consume.ref, "bc");
    assert_false(same_request(&x, &y));
}

static void test_request_absent_tool_differs_from_empty_tool(void **state)
{
    (void)state;
    struct job absent = sample_job(JOB_CONSUME);
    struct job empty = absent;
    empty.consume.has_tool = true;
    assert_false(same_request(&absent, &empty));
    struct job empty_ref = absent;
    empty_ref.consume.has_ref = true;
    assert_false(same_request(&absent, &empty_ref));
    assert_false(same_request(&empty, &empty_ref));
    /* An absent tool's buffer is not part of the request. */
    struct job stale = absent;
    strcpy(stale.consume.tool, "left over");
    assert_true(same_request(&absent, &stale));
}

static void test_request_bytes_are_pinned(void **state)
{
    (void)state;
    /* These bytes are stored (credits.jobs.request) and compared for ever:
     * a change here turns every replay of an old job into an id_conflict. */
    struct job job = sample_job(JOB_CONSUME);
    job.consume.has_ref = true;
    strcpy(job.consume.ref, "r");
    size_t len;
    char *bytes = request_of(&job, &len);
    static const char expected[] = "\x96\x01\xa7"
                                   "consume\xa2u1\x05\xc0\xa1r";
    assert_int_equal(len, sizeof expected - 1);
    assert_memory_equal(bytes, expected, len);
    free(bytes);
    job = sample_job(JOB_ALLOCATE);
    bytes = request_of(&job, &len);
    static const char expected_allocate[] = "\x95\x01\xa8"
                                            "allocate\xa2u1\xa3pro\xa7"
                                            "2026-11";
    assert_int_equal(len, sizeof expected_allocate - 1);
    assert_memory_equal(bytes, expected_allocate, len);
    free(bytes);
}

/* ------------------------------------------------------------------------ */
/* Results                                                                  */
/* ------------------------------------------------------------------------ */

static struct result applied_result(enum job_type type)
{
    struct job job = sample_job(type);
    struct result r;
    result_init_for_job(&r, &job);
    r.balance = (struct balance){95, 45, 50, 0, 0};
    if (type == JOB_CONSUME)
        result_set_amount(&r, RESULT_CHARGED, 5);
    else
        result_set_amount(&r, RESULT_GRANTED, 500);
    if (type == JOB_ALLOCATE)
        result_set_amount(&r, RESULT_FORFEITED, 200);
    if (type == JOB_PURCHASE)
        result_set_amount(&r, RESULT_EXPIRES_AT, INT64_C(1802776000123));
    /* The amounts of revision 2's types (and a grant's optional expiry). */
    const struct job_type_ops *ops = job_type_ops(type);
    uint32_t carried = ops->result_amounts | ops->result_amounts_optional;
    for (unsigned a = 0; a < RESULT_AMOUNT_COUNT; a++)
        if ((carried & RESULT_AMOUNT_BIT(a)) != 0 && !result_has_amount(&r, (enum result_amount)a))
            result_set_amount(&r, (enum result_amount)a, 10 + (int64_t)a);
    r.done_at_ms = INT64_C(1795000000123);
    return r;
}

static void assert_result_equal(const struct result *a, const struct result *b)
{
    assert_int_equal(a->has_id, b->has_id);
    assert_int_equal(a->has_type, b->has_type);
    assert_int_equal(a->has_user, b->has_user);
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->user, b->user);
    if (a->has_type)
        assert_int_equal(a->type, b->type);
    assert_int_equal(a->error, b->error);
    assert_string_equal(a->message, b->message);
    if (result_has_balance(a)) {
        assert_int_equal(a->balance.total, b->balance.total);
        assert_int_equal(a->balance.pack, b->balance.pack);
        assert_int_equal(a->balance.monthly, b->balance.monthly);
    }
    assert_int_equal(result_amounts_carried(a), result_amounts_carried(b));
    for (unsigned i = 0; i < RESULT_AMOUNT_COUNT; i++)
        if ((result_amounts_carried(a) & RESULT_AMOUNT_BIT(i)) != 0)
            assert_int_equal(a->amounts[i], b->amounts[i]);
    assert_int_equal(a->done_at_ms, b->done_at_ms);
    assert_int_equal(a->replayed, b->replayed);
}

/* encode(r), decode, compare, and encode(decode(encode(r))) == encode(r). */
static void expect_result_round_trip(const struct result *r)
{
    msgpack_sbuffer first, second;
    msgpack_sbuffer_init(&first);
    msgpack_sbuffer_init(&second);
    assert_int_equal(codec_encode_result(r, &first), 0);
    struct result decoded;
    assert_int_equal(codec_decode_result(first.data, first.size, &decoded), 0);
    assert_result_equal(r, &decoded);
    assert_int_equal(codec_encode_result(&decoded, &second), 0);
    assert_int_equal(first.size, second.size);
    assert_memory_equal(first.data, second.data, first.size);
    msgpack_sbuffer_destroy(&first);
    msgpack_sbuffer_destroy(&second);
}

static void test_result_round_trips(void **state)
{
    (void)state;
    for (int t = 0; t < JOB_TYPE_COUNT; t++) {
        struct result r = applied_result((enum job_type)t);
        expect_result_round_trip(&r);
        r.replayed = true;
        expect_result_round_trip(&r);
    }
    struct result r = applied_result(JOB_CONSUME);
    r.error = JOB_ERR_INSUFFICIENT_CREDITS;
    r.balance = (struct balance){3, 0, 3, 0, 0};
    strcpy(r.message, "usable balance 3 is below amount 5");
    expect_result_round_trip(&r);
    r = applied_result(JOB_PURCHASE);
    r.error = JOB_ERR_UNKNOWN_PACK;
    expect_result_round_trip(&r);
    /* An unstored rejection of a message without a readable id. */
    memset(&r, 0, sizeof r);
    r.error = JOB_ERR_INVALID_JOB;
    strcpy(r.message, "job must be a map");
    expect_result_round_trip(&r);
    r.has_user = true;
    strcpy(r.user, "u1");
    expect_result_round_trip(&r);
    /* Extremes: the longest id, a 200-byte message, negative and huge ints. */
    r = applied_result(JOB_ALLOCATE);
    memset(r.id, 'i', JOB_ID_BYTES_MAX);
    memset(r.message, 'm', RESULT_MESSAGE_BYTES_MAX);
    r.balance = (struct balance){INT64_MAX, INT64_MIN, -1, 7, INT64_MAX};
    r.done_at_ms = INT64_MAX;
    expect_result_round_trip(&r);
    for (int e = JOB_ERR_INVALID_JOB; e < JOB_ERROR_COUNT; e++) {
        r = applied_result(JOB_ALLOCATE);
        r.error = (enum job_error)e;
        expect_result_round_trip(&r);
    }
}

/* The keys of the top-level map of trusted msgpack bytes, as "k1,k2,...". */
static void result_keys(const struct result *r, char *keys, size_t size)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(codec_encode_result(r, &sb), 0);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&unpacked, sb.data, sb.size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sb.size);
    const msgpack_object *map = &unpacked.data;
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    keys[0] = '\0';
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *key = &map->via.map.ptr[i].key;
        assert_int_equal(key->type, MSGPACK_OBJECT_STR);
        size_t used = strlen(keys);
        snprintf(keys + used, size - used, "%s%.*s", i > 0 ? "," : "", (int)key->via.str.size,
                 key->via.str.ptr);
    }
    msgpack_unpacked_destroy(&unpacked);
    msgpack_sbuffer_destroy(&sb);
}

static void test_result_presence_rules(void **state)
{
    (void)state;
    char keys[300];
    struct result r = applied_result(JOB_CONSUME);
    result_keys(&r, keys, sizeof keys);
    assert_string_equal(keys, "v,id,type,user,status,balance,charged,done_at,replayed");
    r = applied_result(JOB_PURCHASE);
    result_keys(&r, keys, sizeof keys);
    assert_string_equal(keys, "v,id,type,user,status,balance,granted,expires_at,done_at,replayed");
    r = applied_result(JOB_ALLOCATE);
    strcpy(r.message, "rolled over");
    result_keys(&r, keys, sizeof keys);
    assert_string_equal(keys, "v,id,type,user,status,message,balance,granted,forfeited,"
                              "done_at,replayed");
    r = applied_result(JOB_CONSUME);
    r.error = JOB_ERR_INSUFFICIENT_CREDITS;
    result_keys(&r, keys, sizeof keys);
    assert_string_equal(keys, "v,id,type,user,status,error,balance,done_at,replayed");
    r = applied_result(JOB_PURCHASE);
    r.error = JOB_ERR_DUPLICATE_PAYMENT;
    result_keys(&r, keys, sizeof keys);
    assert_string_equal(keys, "v,id,type,user,status,error,done_at,replayed");
    memset(&r, 0, sizeof r);
    r.error = JOB_ERR_INVALID_JOB;
    result_keys(&r, keys, sizeof keys);
    assert_string_equal(keys, "v,status,error,done_at,replayed");
}

/* Encodes a map of `s` and decodes it as a result. */
static int decode_result_kvs(const struct kvs *s, struct result *r)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    encode_kvs(s, &sb);
    int rc = codec_decode_result(sb.data, sb.size, r);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static struct kvs rejected_result_kvs(void)
{
    struct kvs s = {.count = 0};
    kvs_add(&s, KV_INT("v", 1));
    kvs_add(&s, KV_STR("id", "job-9"));
    kvs_add(&s, KV_STR("type", "purchase"));
    kvs_add(&s, KV_STR("user", "u1"));
    kvs_add(&s, KV_STR("status", "rejected"));
    kvs_add(&s, KV_STR("error", "unknown_pack"));
    kvs_add(&s, KV_INT("done_at", 7));
    kvs_add(&s, (struct kv){"replayed", V_FALSE, 0, NULL, 0});
    return s;
}

static void test_decode_result_accepts_any_key_order_and_unknown_keys(void **state)
{
    (void)state;
    struct kvs s = rejected_result_kvs();
    struct kvs reversed = {.count = 0};
    for (size_t i = s.count; i > 0; i--)
        kvs_add(&reversed, s.items[i - 1]);
    kvs_add(&reversed, KV_RAW("future", "\x82\xa1"
                                        "a\x91\x01\xa1"
                                        "b\xd4\x00\x00"));
    struct result r;
    assert_int_equal(decode_result_kvs(&reversed, &r), 0);
    assert_int_equal(r.error, JOB_ERR_UNKNOWN_PACK);
    assert_string_equal(r.id, "job-9");
    assert_int_equal(r.type, JOB_PURCHASE);
    assert_int_equal(r.done_at_ms, 7);
}

static void test_decode_result_refuses_what_is_not_a_result(void **state)
{
    (void)state;
    struct result r;
    assert_int_equal(codec_decode_result("", 0, &r), -1);
    assert_int_equal(codec_decode_result("\xc1", 1, &r), -1);
    assert_int_equal(codec_decode_result("\x90", 1, &r), -1);
    assert_int_equal(codec_decode_result("\xdf\xff\xff\xff\xff", 5, &r), -1);
    struct {
        const char *key;
        struct kv change; /* key NULL: drop `key` */
        bool drop;
    } cases[] = {
        {"v", KV_INT("v", 2), false},
        {"v", KV_STR("v", "1"), false},
        {"v", {0}, true},
        {"status", KV_STR("status", "done"), false},
        {"status", {0}, true},
        {"error", KV_STR("error", "no_such_error"), false},
        {"error", KV_STR("error", ""), false},
        {"error", {0}, true},
        {"done_at", {0}, true},
        {"done_at", KV_STR("done_at", "7"), false},
        {"done_at", KV_RAW("done_at", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), false},
        {"replayed", {0}, true},
        {"replayed", KV_INT("replayed", 0), false},
        {"type", KV_STR("type", "transfer"), false},
        {"id", KV_BIN("id", "job-9"), false},
        {"id", KV_BYTES("id", "a\0b"), false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kvs s = rejected_result_kvs();
        if (cases[i].drop)
            kvs_drop(&s, cases[i].key);
        else
            kvs_set(&s, cases[i].change);
        if (decode_result_kvs(&s, &r) != -1)
            fail_msg("result case %zu decoded", i);
    }
}

static void test_decode_result_checks_status_and_presence(void **state)
{
    (void)state;
    struct result r;
    /* Applied with an error (and otherwise complete), a key twice, a
     * required balance missing. */
    struct kvs s = rejected_result_kvs();
    kvs_set(&s, KV_STR("status", "applied"));
    kvs_add(&s, KV_RAW("balance", "\x83\xa5total\x03\xa4pack\x00\xa7monthly\x03"));
    kvs_add(&s, KV_INT("granted", 500));
    kvs_add(&s, KV_INT("expires_at", 9));
    assert_int_equal(decode_result_kvs(&s, &r), -1);
    kvs_drop(&s, "error");
    assert_int_equal(decode_result_kvs(&s, &r), 0);
    assert_int_equal(r.error, JOB_OK);
    assert_int_equal(r.amounts[RESULT_GRANTED], 500);
    s = rejected_result_kvs();
    kvs_add(&s, KV_INT("done_at", 7));
    assert_int_equal(decode_result_kvs(&s, &r), -1);
    s = rejected_result_kvs();
    kvs_set(&s, KV_STR("error", "insufficient_credits"));
    kvs_set(&s, KV_STR("type", "consume"));
    assert_int_equal(decode_result_kvs(&s, &r), -1);
    kvs_add(&s, KV_RAW("balance", "\x82\xa5total\x03\xa4pack\x00"));
    assert_int_equal(decode_result_kvs(&s, &r), -1);
    kvs_set(&s, KV_RAW("balance", "\x83\xa5total\x03\xa4pack\x00\xa7monthly\x03"));
    assert_int_equal(decode_result_kvs(&s, &r), 0);
    assert_int_equal(r.balance.monthly, 3);
    /* Trailing bytes. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s = rejected_result_kvs();
    encode_kvs(&s, &sb);
    assert_int_equal(codec_decode_result(sb.data, sb.size, &r), 0);
    assert_int_equal(msgpack_sbuffer_write(&sb, "\xc0", 1), 0);
    assert_int_equal(codec_decode_result(sb.data, sb.size, &r), -1);
    assert_int_equal(r.error, JOB_OK); /* a refused result leaves nothing behind */
    msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------------------------ */
/* Fuzzing by mutation                                                      */
/* ------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *state)
{
    /* xorshift64*: fixed seed, so a failure repeats. */
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * UINT64_C(2685821657736338717);
}

#define FUZZ_BYTES_MAX 512

static size_t mutate(uint8_t *bytes, size_t len, uint64_t *rng)
{
    int steps = 1 + (int)(rng_next(rng) % 4);
    for (int step = 0; step < steps; step++) {
        uint64_t r = rng_next(rng);
        size_t at = len > 0 ? (size_t)(r >> 16) % len : 0;
        switch (r % 6) {
        case 0: /* flip a bit */
            if (len > 0)
                bytes[at] ^= (uint8_t)(1u << ((r >> 8) % 8));
            break;
        case 1: /* set a byte, often to a format byte */
            if (len > 0)
                bytes[at] = (uint8_t)(r >> 40);
            break;
        case 2: /* insert a byte */
            if (len < FUZZ_BYTES_MAX) {
                memmove(bytes + at + 1, bytes + at, len - at);
                bytes[at] = (uint8_t)(r >> 40);
                len++;
            }
            break;
        case 3: /* delete a byte */
            if (len > 0) {
                memmove(bytes + at, bytes + at + 1, len - at - 1);
                len--;
            }
            break;
        case 4: /* truncate */
            len = at;
            break;
        default: /* duplicate a chunk */
            if (len > 0 && len < FUZZ_BYTES_MAX / 2) {
                size_t n = 1 + (size_t)(r >> 8) % (len - at);
                memmove(bytes + at + n, bytes + at, len - at);
                len += n;
            }
            break;
        }
    }
    return len;
}

/* A decoded job must satisfy every rule and survive encode and decode. */
static void check_fuzzed_job(const struct job *job)
{
    assert_true(job_id_is_valid(job->id, strlen(job->id)));
    assert_true(job_id_is_valid(job->user, strlen(job->user)));
    if (job->type == JOB_CONSUME) {
        assert_true(job->consume.amount >= JOB_AMOUNT_MIN && job->consume.amount <= JOB_AMOUNT_MAX);
        assert_true(job_text_is_valid(job->consume.tool, strlen(job->consume.tool)));
    }
    if (job->type == JOB_ALLOCATE)
        assert_true(job_period_is_valid(job->allocate.period, strlen(job->allocate.period)));
    expect_job_round_trip(job);
}

static void test_fuzzed_mutations_never_crash(void **state)
{
    (void)state;
    struct kvs seeds[JOB_TYPE_COUNT] = {consume_job(), purchase_job(), allocate_job()};
    kvs_add(&seeds[0], KV_STR("tool", "video-gen"));
    kvs_add(&seeds[0], KV_STR("ref", "vid_42"));
    kvs_add(&seeds[1], KV_RAW("meta", "\x82\xa1"
                                      "a\x92\x01\xcd\x01\x00\xa1"
                                      "b\xd6\x01"
                                      "abcd"));
    kvs_add(&seeds[2], (struct kv){"reply", V_TRUE, 0, NULL, 0});
    msgpack_sbuffer encoded[JOB_TYPE_COUNT];
    for (int t = 0; t < JOB_TYPE_COUNT; t++) {
        msgpack_sbuffer_init(&encoded[t]);
        encode_kvs(&seeds[t], &encoded[t]);
    }
    uint64_t rng = UINT64_C(0x9e3779b97f4a7c15);
    size_t outcomes[JOB_ERROR_COUNT] = {0};
    for (int i = 0; i < 300000; i++) {
        const msgpack_sbuffer *seed = &encoded[i % JOB_TYPE_COUNT];
        uint8_t bytes[FUZZ_BYTES_MAX];
        memcpy(bytes, seed->data, seed->size);
        size_t len = mutate(bytes, seed->size, &rng);
        struct job job;
        struct result reject;
        enum job_error error = codec_decode_job(bytes, len, &job, &reject);
        assert_true(error == JOB_OK || error == JOB_ERR_INVALID_JOB ||
                    error == JOB_ERR_UNSUPPORTED_VERSION);
        outcomes[error]++;
        if (error == JOB_OK)
            check_fuzzed_job(&job);
        else
            assert_true(!reject.has_id || job_id_is_valid(reject.id, strlen(reject.id)));
        /* A job is never a result: no key "status". */
        struct result result;
        assert_int_equal(codec_decode_result(bytes, len, &result), -1);
    }
    /* The mutations reach every outcome, or they test nothing. */
    assert_true(outcomes[JOB_OK] > 1000);
    assert_true(outcomes[JOB_ERR_INVALID_JOB] > 1000);
    assert_true(outcomes[JOB_ERR_UNSUPPORTED_VERSION] > 10);
    for (int t = 0; t < JOB_TYPE_COUNT; t++)
        msgpack_sbuffer_destroy(&encoded[t]);
}

static void test_fuzzed_results_never_crash(void **state)
{
    (void)state;
    struct result seeds[3] = {applied_result(JOB_CONSUME), applied_result(JOB_PURCHASE),
                              applied_result(JOB_ALLOCATE)};
    seeds[0].error = JOB_ERR_INSUFFICIENT_CREDITS;
    strcpy(seeds[0].message, "usable balance 3 is below amount 5");
    uint64_t rng = UINT64_C(0x2545f4914f6cdd1d);
    size_t decoded = 0;
    for (int i = 0; i < 100000; i++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        assert_int_equal(codec_encode_result(&seeds[i % 3], &sb), 0);
        uint8_t bytes[FUZZ_BYTES_MAX];
        memcpy(bytes, sb.data, sb.size);
        size_t len = mutate(bytes, sb.size, &rng);
        msgpack_sbuffer_destroy(&sb);
        struct result r;
        if (codec_decode_result(bytes, len, &r) != 0)
            continue;
        decoded++;
        /* Whatever decodes, encodes. */
        msgpack_sbuffer_init(&sb);
        assert_int_equal(codec_encode_result(&r, &sb), 0);
        msgpack_sbuffer_destroy(&sb);
    }
    assert_true(decoded > 100);
}

/* ------------------------------------------------------------------------ */
/* Shared test vectors (schemas/vectors)                                    */
/* ------------------------------------------------------------------------ */

static FILE *open_vectors(const char *file)
{
    const char *dir = getenv("CREDITS_SOURCE_DIR");
    if (dir == NULL || dir[0] == '\0')
        fail_msg("CREDITS_SOURCE_DIR is not set: it must name the source tree");
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/schemas/vectors/%s", dir, file);
    assert_true(n > 0 && (size_t)n < sizeof path);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    return f;
}

/* Splits `line` in place at tabs into exactly `count` fields. */
static void split_fields(char *line, char **fields, size_t count, size_t line_no)
{
    line[strcspn(line, "\r\n")] = '\0';
    for (size_t i = 0; i < count; i++) {
        fields[i] = line;
        char *tab = strchr(line, '\t');
        if (i + 1 < count) {
            if (tab == NULL)
                fail_msg("line %zu has %zu fields, not %zu", line_no, i + 1, count);
            *tab = '\0';
            line = tab + 1;
        } else if (tab != NULL) {
            fail_msg("line %zu has more than %zu fields", line_no, count);
        }
    }
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase is not the vector format */
}

static size_t hex_decode(const char *hex, uint8_t *out, size_t size)
{
    size_t len = strlen(hex);
    if (len % 2 != 0 || len / 2 > size)
        fail_msg("bad hex length %zu", len);
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            fail_msg("bad hex digit in '%s'", hex);
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return len / 2;
}

#define VECTORS_MAX 256
#define VECTOR_NAME_BYTES_MAX 63

/* Names are unique and [a-z0-9_]+, as the README promises readers. */
static void check_vector_name(const char *name, char (*names)[VECTOR_NAME_BYTES_MAX + 1],
                              size_t *count)
{
    size_t len = strlen(name);
    if (len == 0 || len > VECTOR_NAME_BYTES_MAX ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
        fail_msg("bad vector name '%s'", name);
    for (size_t i = 0; i < *count; i++) {
        if (strcmp(names[i], name) == 0)
            fail_msg("vector name '%s' is used twice", name);
    }
    assert_true(*count < VECTORS_MAX);
    strcpy(names[(*count)++], name);
}

/* The `ok` job vectors and what they must decode to. NULL tool/ref: absent. */
/* The job each ok vector decodes to (the user is always "u1"). */
struct job_expect {
    const char *name;
    struct job job;
};

#define OK_JOB(name_, type_, id_, reply_, ...)                                                     \
    {                                                                                              \
        name_, { .type = (type_), .reply = (reply_), .id = id_, .user = "u1", __VA_ARGS__ }        \
    }

static const struct job_expect ok_jobs[] = {
    OK_JOB("consume_ok", JOB_CONSUME, "job-1", false, .consume = {.amount = 5}),
    OK_JOB("consume_reply", JOB_CONSUME, "job-1", true, .consume = {.amount = 5}),
    OK_JOB("consume_reply_false", JOB_CONSUME, "job-1", false, .consume = {.amount = 5}),
    OK_JOB("consume_amount_uint32", JOB_CONSUME, "job-1", false, .consume = {.amount = 5}),
    OK_JOB("consume_amount_int8", JOB_CONSUME, "job-1", false, .consume = {.amount = 5}),
    OK_JOB("consume_amount_max", JOB_CONSUME, "job-1", false, .consume = {.amount = 1000000000}),
    OK_JOB("consume_tool_ref", JOB_CONSUME, "job-1", false, .consume = {.amount = 250, .has_tool = true, .tool = "video-gen", .has_ref = true, .ref = "vid_42"}),
    OK_JOB("consume_tool_utf8", JOB_CONSUME, "job-1", false,
           .consume = {.amount = 5, .has_tool = true, .tool = "montage \xe2\x9c\x82 \xc3\xa9"}),
    OK_JOB("consume_empty_tool", JOB_CONSUME, "job-1", false, .consume = {.amount = 5, .has_tool = true, .tool = ""}),
    OK_JOB("consume_unknown_keys_ignored", JOB_CONSUME, "job-1", false, .consume = {.amount = 5}),
    OK_JOB("consume_other_type_fields_ignored", JOB_CONSUME, "job-1", false, .consume = {.amount = 5}),
    OK_JOB("consume_keys_any_order", JOB_CONSUME, "job-1", false, .consume = {.amount = 5}),
    OK_JOB("purchase_ok", JOB_PURCHASE, "pay-evt-1", false, .purchase = {.pack = "starter", .payment_ref = "cap_123"}),
    OK_JOB("purchase_reply", JOB_PURCHASE, "pay-evt-1", true, .purchase = {.pack = "starter", .payment_ref = "cap_123"}),
    OK_JOB("allocate_ok", JOB_ALLOCATE, "alloc:u1:2026-11", false, .allocate = {.plan = "pro", .period = "2026-11"}),
    OK_JOB("allocate_reply", JOB_ALLOCATE, "alloc:u1:2026-11", true, .allocate = {.plan = "pro", .period = "2026-11"}),
    OK_JOB("hold_ok", JOB_HOLD, "render-1", false, .hold = {.amount = 100}),
    OK_JOB("hold_full", JOB_HOLD, "render-1", false,
           .hold = {.amount = 100,
                    .has_ttl = true,
                    .ttl = 600,
                    .has_tool = true,
                    .tool = "video-gen",
                    .has_ref = true,
                    .ref = "vid_42"}),
    OK_JOB("capture_ok", JOB_CAPTURE, "render-1:done", false,
           .capture = {.hold = "render-1", .amount = 40}),
    OK_JOB("capture_zero", JOB_CAPTURE, "render-1:done", false,
           .capture = {.hold = "render-1", .amount = 0}),
    OK_JOB("release_ok", JOB_RELEASE, "render-1:failed", false, .release = {.hold = "render-1"}),
    OK_JOB("refund_all", JOB_REFUND, "refund-1", false, .refund = {.charge = "job-1"}),
    OK_JOB("refund_partial", JOB_REFUND, "refund-1", false,
           .refund = {.charge = "job-1", .has_amount = true, .amount = 2}),
    OK_JOB("revoke_ok", JOB_REVOKE, "chargeback-1", false, .revoke = {.payment_ref = "cap_123"}),
    OK_JOB("grant_ok", JOB_GRANT, "bonus-1", false, .grant = {.amount = 50}),
    OK_JOB("grant_full", JOB_GRANT, "bonus-1", false,
           .grant = {.amount = 50,
                     .has_valid_days = true,
                     .valid_days = 30,
                     .has_reason = true,
                     .reason = "sign-up bonus"}),
    OK_JOB("cancel_ok", JOB_CANCEL, "cancel-1", false, .cancel = {.has_forfeit = false}),
    OK_JOB("cancel_forfeit", JOB_CANCEL, "cancel-1", false,
           .cancel = {.has_forfeit = true, .forfeit = true}),
};

#define OK_JOBS_COUNT (sizeof ok_jobs / sizeof ok_jobs[0])

static void check_ok_job(const char *name, const struct job *job, bool *seen)
{
    for (size_t i = 0; i < OK_JOBS_COUNT; i++) {
        const struct job_expect *e = &ok_jobs[i];
        if (strcmp(e->name, name) != 0)
            continue;
        seen[i] = true;
        assert_job_equal(job, &e->job);
        return;
    }
    fail_msg("ok vector '%s' has no expected job in test_codec.c", name);
}

static enum job_error outcome_of(const char *outcome)
{
    if (strcmp(outcome, "ok") == 0)
        return JOB_OK;
    enum job_error error;
    if (!job_error_parse(outcome, strlen(outcome), &error))
        fail_msg("unknown outcome '%s'", outcome);
    return error;
}

static void test_job_vectors(void **state)
{
    (void)state;
    FILE *f = open_vectors("jobs.tsv");
    char *line = NULL;
    size_t cap = 0;
    size_t line_no = 0, vectors = 0;
    bool seen[OK_JOBS_COUNT] = {false};
    static char names[VECTORS_MAX][VECTOR_NAME_BYTES_MAX + 1];
    size_t name_count = 0;
    while (getline(&line, &cap, f) > 0) {
        line_no++;
        char *fields[4];
        split_fields(line, fields, 4, line_no);
        if (line_no == 1) {
            assert_string_equal(fields[0], "name");
            assert_string_equal(fields[1], "outcome");
            assert_string_equal(fields[2], "hex");
            assert_string_equal(fields[3], "meaning");
            continue;
        }
        check_vector_name(fields[0], names, &name_count);
        uint8_t bytes[JOB_BYTES_MAX];
        size_t len = hex_decode(fields[2], bytes, sizeof bytes);
        struct job job;
        struct result reject;
        enum job_error error = codec_decode_job(bytes, len, &job, &reject);
        if (error != outcome_of(fields[1]))
            fail_msg("vector '%s': got '%s' (%s), expected '%s'", fields[0],
                     error == JOB_OK ? "ok" : job_error_name(error), reject.message, fields[1]);
        if (error == JOB_OK)
            check_ok_job(fields[0], &job, seen);
        vectors++;
    }
    free(line);
    fclose(f);
    assert_true(vectors >= 40);
    for (size_t i = 0; i < OK_JOBS_COUNT; i++) {
        if (!seen[i])
            fail_msg("jobs.tsv lacks the ok vector '%s'", ok_jobs[i].name);
    }
}

/* The result vectors, built here: a change to the encoder fails the test. */
struct result_expect {
    const char *name;
    struct result result;
};

static const struct result_expect result_table[] = {
    {"applied_consume",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "job-1",
      .type = JOB_CONSUME,
      .user = "u1",
      .balance = {.total = 95, .pack = 45, .monthly = 50},
      .amounts_present = RESULT_AMOUNT_BIT(RESULT_CHARGED),
      .amounts = {[RESULT_CHARGED] = 5},
      .done_at_ms = INT64_C(1795000000123)}},
    {"applied_purchase",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "pay-evt-1",
      .type = JOB_PURCHASE,
      .user = "u1",
      .balance = {.total = 600, .pack = 500, .monthly = 100},
      .amounts_present = RESULT_AMOUNT_BIT(RESULT_GRANTED) | RESULT_AMOUNT_BIT(RESULT_EXPIRES_AT),
      .amounts = {[RESULT_GRANTED] = 500, [RESULT_EXPIRES_AT] = INT64_C(1802776000123)},
      .done_at_ms = INT64_C(1795000000123)}},
    {"applied_allocate",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "alloc:u1:2026-11",
      .type = JOB_ALLOCATE,
      .user = "u1",
      .balance = {.total = 2045, .pack = 45, .monthly = 2000},
      .amounts_present = RESULT_AMOUNT_BIT(RESULT_GRANTED) | RESULT_AMOUNT_BIT(RESULT_FORFEITED),
      .amounts = {[RESULT_GRANTED] = 1000, [RESULT_FORFEITED] = 200},
      .done_at_ms = INT64_C(1795000000123)}},
    {"rejected_insufficient_credits",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "job-2",
      .type = JOB_CONSUME,
      .user = "u1",
      .error = JOB_ERR_INSUFFICIENT_CREDITS,
      .message = "usable balance 3 is below amount 5",
      .balance = {.total = 3, .pack = 0, .monthly = 3},
      .done_at_ms = INT64_C(1795000000456)}},
    {"rejected_unknown_pack",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "pay-evt-2",
      .type = JOB_PURCHASE,
      .user = "u1",
      .error = JOB_ERR_UNKNOWN_PACK,
      .done_at_ms = INT64_C(1795000000456)}},
    {"rejected_invalid_job_without_id",
     {.error = JOB_ERR_INVALID_JOB, .message = "job must be a map"}},
    {"rejected_invalid_job_with_id",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "job-3",
      .type = JOB_CONSUME,
      .user = "u1",
      .error = JOB_ERR_INVALID_JOB,
      .message = "field 'amount' must be an integer from 1 to 1000000000"}},
    {"replayed_consume",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "job-1",
      .type = JOB_CONSUME,
      .user = "u1",
      .balance = {.total = 95, .pack = 45, .monthly = 50},
      .amounts_present = RESULT_AMOUNT_BIT(RESULT_CHARGED),
      .amounts = {[RESULT_CHARGED] = 5},
      .done_at_ms = INT64_C(1795000000123),
      .replayed = true}},
    {"applied_hold",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "render-1",
      .type = JOB_HOLD,
      .user = "u1",
      .balance = {.total = 400, .pack = 100, .monthly = 300, .grant = 0, .held = 100},
      .amounts_present = RESULT_AMOUNT_BIT(RESULT_HELD) | RESULT_AMOUNT_BIT(RESULT_HOLD_EXPIRES_AT),
      .amounts = {[RESULT_HELD] = 100, [RESULT_HOLD_EXPIRES_AT] = INT64_C(1795003600123)},
      .done_at_ms = INT64_C(1795000000123)}},
    {"applied_capture",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "render-1:done",
      .type = JOB_CAPTURE,
      .user = "u1",
      .balance = {.total = 460, .pack = 100, .monthly = 360, .grant = 0, .held = 0},
      .amounts_present = RESULT_AMOUNT_BIT(RESULT_CHARGED) | RESULT_AMOUNT_BIT(RESULT_RELEASED),
      .amounts = {[RESULT_CHARGED] = 40, [RESULT_RELEASED] = 60},
      .done_at_ms = INT64_C(1795000000123)}},
    {"applied_release",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "render-1:failed",
      .type = JOB_RELEASE,
      .user = "u1",
      .balance = {.total = 500, .pack = 100, .monthly = 400, .grant = 0, .held = 0},
      .amounts_present = RESULT_AMOUNT_BIT(RESULT_RELEASED),
      .amounts = {[RESULT_RELEASED] = 100},
      .done_at_ms = INT64_C(1795000000123)}},
    {"applied_refund",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "refund-1",
      .type = JOB_REFUND,
      .user = "u1",
      .balance = {.total = 97, .pack = 47, .monthly = 50, .grant = 0, .held = 0},
      .amounts_present = RESULT_AMOUNT_BIT(RESULT_REFUNDED),
      .amounts = {[RESULT_REFUNDED] = 2},
      .done_at_ms = INT64_C(1795000000123)}},
    {"applied_revoke",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "chargeback-1",
      .type = JOB_REVOKE,
      .user = "u1",
      .balance = {.total = 50, .pack = 0, .monthly = 50, .grant = 0, .held = 0},
      .amounts_present = RESULT_AMOUNT_BIT(RESULT_REVOKED),
      .amounts = {[RESULT_REVOKED] = 45},
      .done_at_ms = INT64_C(1795000000123)}},
    {"applied_grant",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "bonus-1",
      .type = JOB_GRANT,
      .user = "u1",
      .balance = {.total = 145, .pack = 45, .monthly = 50, .grant = 50, .held = 0},
      .amounts_present = RESULT_AMOUNT_BIT(RESULT_GRANTED),
      .amounts = {[RESULT_GRANTED] = 50},
      .done_at_ms = INT64_C(1795000000123)}},
    {"applied_grant_expiring",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "bonus-2",
      .type = JOB_GRANT,
      .user = "u1",
      .balance = {.total = 145, .pack = 45, .monthly = 50, .grant = 50, .held = 0},
      .amounts_present = RESULT_AMOUNT_BIT(RESULT_GRANTED) | RESULT_AMOUNT_BIT(RESULT_EXPIRES_AT),
      .amounts = {[RESULT_GRANTED] = 50, [RESULT_EXPIRES_AT] = INT64_C(1797592000123)},
      .done_at_ms = INT64_C(1795000000123)}},
    {"applied_cancel",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "cancel-1",
      .type = JOB_CANCEL,
      .user = "u1",
      .balance = {.total = 45, .pack = 45, .monthly = 0, .grant = 0, .held = 0},
      .amounts_present = RESULT_AMOUNT_BIT(RESULT_FORFEITED),
      .amounts = {[RESULT_FORFEITED] = 50},
      .done_at_ms = INT64_C(1795000000123)}},
    {"rejected_unknown_hold",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "render-9:done",
      .type = JOB_CAPTURE,
      .user = "u1",
      .error = JOB_ERR_UNKNOWN_HOLD,
      .message = "this user has no hold render-9",
      .done_at_ms = INT64_C(1795000000456)}},
    {"rejected_hold_closed",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "render-1:again",
      .type = JOB_RELEASE,
      .user = "u1",
      .error = JOB_ERR_HOLD_CLOSED,
      .message = "hold render-1 was captured already",
      .done_at_ms = INT64_C(1795000000456)}},
    {"rejected_hold_expired",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "render-2:done",
      .type = JOB_CAPTURE,
      .user = "u1",
      .error = JOB_ERR_HOLD_EXPIRED,
      .message = "hold render-2 expired and was released",
      .done_at_ms = INT64_C(1795000000456)}},
    {"rejected_capture_exceeds_hold",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "render-3:done",
      .type = JOB_CAPTURE,
      .user = "u1",
      .error = JOB_ERR_CAPTURE_EXCEEDS_HOLD,
      .message = "amount 150 is above the hold's 100",
      .done_at_ms = INT64_C(1795000000456)}},
    {"rejected_unknown_charge",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "refund-9",
      .type = JOB_REFUND,
      .user = "u1",
      .error = JOB_ERR_UNKNOWN_CHARGE,
      .message = "job-9 is not an applied consume or capture of this user",
      .done_at_ms = INT64_C(1795000000456)}},
    {"rejected_refund_exceeds_charge",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "refund-2",
      .type = JOB_REFUND,
      .user = "u1",
      .error = JOB_ERR_REFUND_EXCEEDS_CHARGE,
      .message = "3 credits are left to refund of charge job-1",
      .done_at_ms = INT64_C(1795000000456)}},
    {"rejected_unknown_payment",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "chargeback-9",
      .type = JOB_REVOKE,
      .user = "u1",
      .error = JOB_ERR_UNKNOWN_PAYMENT,
      .message = "this user has no pack bought with payment_ref \"cap_999\"",
      .done_at_ms = INT64_C(1795000000456)}},
    {"rejected_already_revoked",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "chargeback-2",
      .type = JOB_REVOKE,
      .user = "u1",
      .error = JOB_ERR_ALREADY_REVOKED,
      .message = "the pack of payment_ref \"cap_123\" is revoked already",
      .done_at_ms = INT64_C(1795000000456)}},
    {"rejected_no_plan",
     {.has_id = true,
      .has_type = true,
      .has_user = true,
      .id = "cancel-2",
      .type = JOB_CANCEL,
      .user = "u1",
      .error = JOB_ERR_NO_PLAN,
      .message = "this user has no plan to cancel",
      .done_at_ms = INT64_C(1795000000456)}},
};

#define RESULT_TABLE_COUNT (sizeof result_table / sizeof result_table[0])

static void check_result_vector(const char *name, const uint8_t *bytes, size_t len, bool *seen)
{
    struct result decoded;
    if (codec_decode_result(bytes, len, &decoded) != 0)
        fail_msg("result vector '%s' does not decode", name);
    msgpack_sbuffer again;
    msgpack_sbuffer_init(&again);
    assert_int_equal(codec_encode_result(&decoded, &again), 0);
    assert_int_equal(again.size, len);
    assert_memory_equal(again.data, bytes, len);
    msgpack_sbuffer_destroy(&again);
    for (size_t i = 0; i < RESULT_TABLE_COUNT; i++) {
        if (strcmp(result_table[i].name, name) != 0)
            continue;
        seen[i] = true;
        msgpack_sbuffer built;
        msgpack_sbuffer_init(&built);
        assert_int_equal(codec_encode_result(&result_table[i].result, &built), 0);
        if (built.size != len || memcmp(built.data, bytes, len) != 0)
            fail_msg("result vector '%s' is not what the encoder writes", name);
        msgpack_sbuffer_destroy(&built);
        assert_result_equal(&result_table[i].result, &decoded);
        return;
    }
    fail_msg("result vector '%s' has no expected result in test_codec.c", name);
}

static void test_result_vectors(void **state)
{
    (void)state;
    FILE *f = open_vectors("results.tsv");
    char *line = NULL;
    size_t cap = 0;
    size_t line_no = 0;
    bool seen[RESULT_TABLE_COUNT] = {false};
    static char names[VECTORS_MAX][VECTOR_NAME_BYTES_MAX + 1];
    size_t name_count = 0;
    while (getline(&line, &cap, f) > 0) {
        line_no++;
        char *fields[3];
        split_fields(line, fields, 3, line_no);
        if (line_no == 1) {
            assert_string_equal(fields[0], "name");
            assert_string_equal(fields[1], "hex");
            assert_string_equal(fields[2], "meaning");
            continue;
        }
        check_vector_name(fields[0], names, &name_count);
        uint8_t bytes[JOB_BYTES_MAX];
        size_t len = hex_decode(fields[1], bytes, sizeof bytes);
        check_result_vector(fields[0], bytes, len, seen);
    }
    free(line);
    fclose(f);
    for (size_t i = 0; i < RESULT_TABLE_COUNT; i++) {
        if (!seen[i])
            fail_msg("results.tsv lacks the vector '%s'", result_table[i].name);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_consume_decodes),
        cmocka_unit_test(test_valid_consume_with_tool_ref_and_reply_decodes),
        cmocka_unit_test(test_valid_purchase_decodes),
        cmocka_unit_test(test_valid_allocate_decodes),
        cmocka_unit_test(test_key_order_does_not_matter),
        cmocka_unit_test(test_every_required_field_missing_is_invalid),
        cmocka_unit_test(test_wrong_value_types_are_invalid),
        cmocka_unit_test(test_optional_fields_of_the_wrong_type_are_invalid),
        cmocka_unit_test(test_unknown_type_is_invalid),
        cmocka_unit_test(test_amount_range),
        cmocka_unit_test(test_amount_accepts_every_int_encoding),
        cmocka_unit_test(test_amount_as_float_is_invalid),
        cmocka_unit_test(test_version_rules),
        cmocka_unit_test(test_other_version_is_judged_before_its_fields),
        cmocka_unit_test(test_id_and_user_length_boundaries),
        cmocka_unit_test(test_id_and_user_character_boundaries),
        cmocka_unit_test(test_duplicate_keys_are_invalid),
        cmocka_unit_test(test_non_string_keys_are_invalid),
        cmocka_unit_test(test_trailing_byte_is_invalid),
        cmocka_unit_test(test_every_strict_prefix_is_invalid),
        cmocka_unit_test(test_size_limit_is_4096_bytes),
        cmocka_unit_test(test_hostile_headers_are_invalid_without_allocating),
        cmocka_unit_test(test_nesting_is_bounded_to_32_levels),
        cmocka_unit_test(test_malformed_and_empty_inputs_are_invalid),
        cmocka_unit_test(test_top_level_must_be_a_map),
        cmocka_unit_test(test_unknown_keys_with_any_value_are_ignored),
        cmocka_unit_test(test_identity_of_a_valid_job),
        cmocka_unit_test(test_identity_of_a_job_over_4096_bytes),
        cmocka_unit_test(test_identity_when_a_key_is_given_twice),
        cmocka_unit_test(test_identity_stops_at_a_bad_entry),
        cmocka_unit_test(test_identity_of_what_is_no_map),
        cmocka_unit_test(test_identity_of_every_prefix),
        cmocka_unit_test(test_reject_carries_readable_identity),
        cmocka_unit_test(test_reject_omits_unreadable_identity),
        cmocka_unit_test(test_consume_text_limits),
        cmocka_unit_test(test_empty_tool_is_present),
        cmocka_unit_test(test_purchase_and_allocate_text_limits),
        cmocka_unit_test(test_fields_of_another_type_are_ignored),
        cmocka_unit_test(test_encode_job_round_trips),
        cmocka_unit_test(test_encode_job_writes_the_contract_map),
        cmocka_unit_test(test_request_ignores_id_reply_and_fields_of_other_types),
        cmocka_unit_test(test_request_differs_for_each_compared_field),
        cmocka_unit_test(test_request_absent_tool_differs_from_empty_tool),
        cmocka_unit_test(test_request_bytes_are_pinned),
        cmocka_unit_test(test_result_round_trips),
        cmocka_unit_test(test_result_presence_rules),
        cmocka_unit_test(test_decode_result_accepts_any_key_order_and_unknown_keys),
        cmocka_unit_test(test_decode_result_refuses_what_is_not_a_result),
        cmocka_unit_test(test_decode_result_checks_status_and_presence),
        cmocka_unit_test(test_fuzzed_mutations_never_crash),
        cmocka_unit_test(test_fuzzed_results_never_crash),
        cmocka_unit_test(test_job_vectors),
        cmocka_unit_test(test_result_vectors),
    };
    return case_filter_run("codec", tests, sizeof tests / sizeof tests[0], NULL, NULL, argc, argv);
}
