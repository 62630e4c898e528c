/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/buf.h"
#include "basic/string-util.h"
#include "shared/frame.h"

/* Builds a message of any type with every field set (numbers from seed, strings,
 * bytes, two entries per list, nested messages), all malloc'ed so that
 * protobuf_c_message_free_unpacked() frees it. */
static ProtobufCMessage *fill_message(const ProtobufCMessageDescriptor *d, unsigned seed)
{
        ProtobufCMessage *m = malloc(d->sizeof_message);
        uint8_t *base = (uint8_t *)m;

        ck_assert_ptr_nonnull(m);
        d->message_init(m);
        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                unsigned v = seed * 100 + f->id;
                size_t n = f->label == PROTOBUF_C_LABEL_REPEATED ? 2 : 1;
                uint8_t *slot = base + f->offset;

                ck_assert(!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF));
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        size_t stride = f->type == PROTOBUF_C_TYPE_BYTES
                                ? sizeof(ProtobufCBinaryData)
                                : sizeof(void *);
                        ck_assert(f->type == PROTOBUF_C_TYPE_STRING ||
                                  f->type == PROTOBUF_C_TYPE_MESSAGE ||
                                  f->type == PROTOBUF_C_TYPE_BYTES);
                        void *array = calloc(n, stride);
                        ck_assert_ptr_nonnull(array);
                        *(void **)slot = array;
                        *(size_t *)(base + f->quantifier_offset) = n;
                        slot = array;
                }
                for (size_t k = 0; k < n; k++, v += 7) {
                        switch (f->type) {
                        case PROTOBUF_C_TYPE_INT32:
                        case PROTOBUF_C_TYPE_SINT32:
                        case PROTOBUF_C_TYPE_SFIXED32:
                                *(int32_t *)slot = -(int32_t)v;
                                break;
                        case PROTOBUF_C_TYPE_ENUM:
                                *(int32_t *)slot = 1;
                                break;
                        case PROTOBUF_C_TYPE_UINT32:
                        case PROTOBUF_C_TYPE_FIXED32:
                                *(uint32_t *)slot = v;
                                break;
                        case PROTOBUF_C_TYPE_INT64:
                        case PROTOBUF_C_TYPE_SINT64:
                        case PROTOBUF_C_TYPE_SFIXED64:
                                *(int64_t *)slot = -(int64_t)v * 1000000007;
                                break;
                        case PROTOBUF_C_TYPE_UINT64:
                        case PROTOBUF_C_TYPE_FIXED64:
                                *(uint64_t *)slot = (uint64_t)v * 1000000007u;
                                break;
                        case PROTOBUF_C_TYPE_FLOAT:
                                *(float *)slot = (float)v + 0.5f;
                                break;
                        case PROTOBUF_C_TYPE_DOUBLE:
                                *(double *)slot = v + 0.25;
                                break;
                        case PROTOBUF_C_TYPE_BOOL:
                                *(protobuf_c_boolean *)slot = 1;
                                break;
                        case PROTOBUF_C_TYPE_STRING:
                                *(char **)slot = strprintf("%s-%u-é", f->name, v);
                                ck_assert_ptr_nonnull(*(char **)slot);
                                break;
                        case PROTOBUF_C_TYPE_BYTES: {
                                ProtobufCBinaryData *b = (ProtobufCBinaryData *)slot;
                                b->len = 3 + v % 50;
                                b->data = malloc(b->len);
                                ck_assert_ptr_nonnull(b->data);
                                for (size_t j = 0; j < b->len; j++)
                                        b->data[j] = (uint8_t)(j * v);
                                break;
                        }
                        case PROTOBUF_C_TYPE_MESSAGE:
                                *(ProtobufCMessage **)slot = fill_message(f->descriptor, v);
                                break;
                        default:
                                ck_abort_msg("field type %d not handled", f->type);
                        }
                        slot += f->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData)
                                                                 : sizeof(void *);
                }
        }
        return m;
}

/* A full envelope of the given type; free with cluster__envelope__free_unpacked(). */
static Cluster__Envelope *make_envelope(unsigned type, unsigned seed)
{
        const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(&cluster__envelope__descriptor, type);
        Cluster__Envelope *e = malloc(sizeof(*e));

        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(e);
        cluster__envelope__init(e);
        e->msg_case = (Cluster__Envelope__MsgCase)type;
        *(ProtobufCMessage **)((uint8_t *)e + f->offset) = fill_message(f->descriptor, seed);
        return e;
}

static void envelope_freep(Cluster__Envelope **e)
{
        if (*e)
                cluster__envelope__free_unpacked(*e, NULL);
}
#define _cleanup_envelope_ _cleanup_(envelope_freep)

static Buf pack(const Cluster__Envelope *e)
{
        Buf b = {};
        size_t n = cluster__envelope__get_packed_size(e);
        uint8_t *w = buf_reserve(&b, n ?: 1);
        ck_assert_ptr_nonnull(w);
        ck_assert_uint_eq(cluster__envelope__pack(e, w), n);
        buf_commit(&b, n);
        return b;
}

static void assert_same(const Cluster__Envelope *a, const Cluster__Envelope *b)
{
        Buf pa = pack(a), pb = pack(b);

        ck_assert_int_eq(a->msg_case, b->msg_case);
        ck_assert_uint_eq(buf_size(&pa), buf_size(&pb));
        ck_assert(memcmp(buf_head(&pa), buf_head(&pb), buf_size(&pa)) == 0);
        buf_done(&pa);
        buf_done(&pb);
}

START_TEST(test_roundtrip_every_type)
{
        const ProtobufCMessageDescriptor *d = &cluster__envelope__descriptor;

        ck_assert_uint_eq(d->n_fields, 20);
        for (unsigned i = 0; i < d->n_fields; i++) {
                unsigned type = d->fields[i].id;
                _cleanup_envelope_ Cluster__Envelope *e = make_envelope(type, i + 1);
                _cleanup_envelope_ Cluster__Envelope *got = NULL;
                _cleanup_free_ char *err = NULL;
                FrameDecoder dec;
                Buf out = {};

                ck_assert_str_eq(envelope_type_name(e), d->fields[i].name);
                ck_assert_int_eq(envelope_check(e, &err), 0);

                ck_assert_int_eq(frame_encode(&out, e), 0);
                ck_assert_uint_eq(buf_size(&out),
                                  FRAME_HEADER_SIZE + cluster__envelope__get_packed_size(e));
                frame_decoder_init(&dec, 0);
                ck_assert_uint_eq(dec.max_frame, FRAME_MAX_DEFAULT);
                ck_assert_int_eq(frame_decoder_feed(&dec, buf_head(&out), buf_size(&out)), 0);
                ck_assert_uint_eq(frame_decoder_next_size(&dec),
                                  buf_size(&out) - FRAME_HEADER_SIZE);
                ck_assert_int_eq(frame_decoder_next(&dec, &got), 1);
                assert_same(e, got);
                ck_assert_int_eq(envelope_check(got, &err), 0);
                ck_assert_ptr_null(err);
                ck_assert_int_eq(frame_decoder_next(&dec, &(Cluster__Envelope *){NULL}), 0);
                frame_decoder_done(&dec);
                buf_done(&out);
        }
}
END_TEST

START_TEST(test_type_names)
{
        _cleanup_envelope_ Cluster__Envelope *e = make_envelope(12, 1);
        Cluster__Envelope empty = CLUSTER__ENVELOPE__INIT;

        ck_assert_str_eq(envelope_type_name(e), "task_output");
        ck_assert_str_eq(envelope_type_name(&empty), "none");
        empty.msg_case = 999;
        ck_assert_str_eq(envelope_type_name(&empty), "unknown");
}
END_TEST

/* Encodes n envelopes of rotating types into one buffer. */
static Buf encode_many(unsigned n, Cluster__Envelope ***ret_list)
{
        Cluster__Envelope **list = new0(Cluster__Envelope *, n);
        Buf out = {};

        ck_assert_ptr_nonnull(list);
        for (unsigned i = 0; i < n; i++) {
                list[i] = make_envelope(i % 20 + 1, i);
                ck_assert_int_eq(frame_encode(&out, list[i]), 0);
        }
        *ret_list = list;
        return out;
}

static void free_many(Cluster__Envelope **list, unsigned n)
{
        for (unsigned i = 0; i < n; i++)
                cluster__envelope__free_unpacked(list[i], NULL);
        free(list);
}

START_TEST(test_byte_by_byte)
{
        Cluster__Envelope **list;
        Buf out = encode_many(25, &list);
        FrameDecoder dec;
        unsigned got = 0;

        frame_decoder_init(&dec, 0);
        for (size_t i = 0; i < buf_size(&out); i++) {
                Cluster__Envelope *m = NULL;
                ck_assert_int_eq(frame_decoder_feed(&dec, buf_head(&out) + i, 1), 0);
                int r = frame_decoder_next(&dec, &m);
                ck_assert_int_ge(r, 0);
                if (r == 1) {
                        ck_assert_uint_lt(got, 25);
                        assert_same(list[got], m);
                        cluster__envelope__free_unpacked(m, NULL);
                        got++;
                }
                ck_assert_int_eq(frame_decoder_next(&dec, &m), 0);
        }
        ck_assert_uint_eq(got, 25);
        ck_assert_uint_eq(buf_size(&dec.buf), 0);
        frame_decoder_done(&dec);
        buf_done(&out);
        free_many(list, 25);
}
END_TEST

START_TEST(test_many_in_one_feed)
{
        Cluster__Envelope **list;
        Buf out = encode_many(200, &list);
        FrameDecoder dec;
        Cluster__Envelope *m;

        frame_decoder_init(&dec, 0);
        /* Irregular chunks, each possibly holding several frames and a partial one. */
        for (size_t off = 0, chunk = 1; off < buf_size(&out); chunk = chunk * 5 % 9973 + 1) {
                size_t n = MIN(chunk, buf_size(&out) - off);
                ck_assert_int_eq(frame_decoder_feed(&dec, buf_head(&out) + off, n), 0);
                off += n;
        }
        for (unsigned i = 0; i < 200; i++) {
                ck_assert_int_eq(frame_decoder_next(&dec, &m), 1);
                assert_same(list[i], m);
                cluster__envelope__free_unpacked(m, NULL);
        }
        ck_assert_int_eq(frame_decoder_next(&dec, &m), 0);
        frame_decoder_done(&dec);
        buf_done(&out);
        free_many(list, 200);
}
END_TEST

static Cluster__Envelope *task_output(size_t len)
{
        Cluster__Envelope *e = malloc(sizeof(*e));
        Cluster__TaskOutput *o = malloc(sizeof(*o));

        ck_assert_ptr_nonnull(e);
        ck_assert_ptr_nonnull(o);
        cluster__envelope__init(e);
        cluster__task_output__init(o);
        o->task_id = 42;
        o->stream = CLUSTER__STREAM__STREAM_STDOUT;
        o->data.len = len;
        o->data.data = malloc(len ?: 1);
        ck_assert_ptr_nonnull(o->data.data);
        memset(o->data.data, 'x', len);
        e->msg_case = CLUSTER__ENVELOPE__MSG_TASK_OUTPUT;
        e->task_output = o;
        return e;
}

START_TEST(test_oversize)
{
        static const uint8_t header[4] = {0x01, 0x31, 0x2d, 0x00}; /* 20000000 */
        uint8_t junk[4096] = {};
        FrameDecoder dec;
        Cluster__Envelope *m = NULL;
        Buf out = {};
        size_t limit = 1024, len;

        /* Refused as soon as the header is there, before any payload. */
        frame_decoder_init(&dec, FRAME_MAX_DEFAULT);
        ck_assert_int_eq(frame_decoder_feed(&dec, header, 3), 0);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), 0);
        ck_assert_int_eq(frame_decoder_feed(&dec, header + 3, 1), 0);
        ck_assert_uint_eq(frame_decoder_next_size(&dec), 20000000);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), -EMSGSIZE);
        /* What follows is not buffered, and the error stays. */
        for (int i = 0; i < 100; i++)
                ck_assert_int_eq(frame_decoder_feed(&dec, junk, sizeof(junk)), 0);
        ck_assert_uint_eq(buf_size(&dec.buf), 4);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), -EMSGSIZE);
        ck_assert_ptr_null(m);
        frame_decoder_done(&dec);

        /* Header and payload in one feed: the payload is not buffered either. */
        frame_decoder_init(&dec, limit);
        Buf big = {};
        ck_assert_int_eq(buf_append(&big, header, 4), 0);
        ck_assert_int_eq(buf_append(&big, junk, sizeof(junk)), 0);
        ck_assert_int_eq(frame_decoder_feed(&dec, buf_head(&big), buf_size(&big)), 0);
        ck_assert_uint_eq(buf_size(&dec.buf), 4);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), -EMSGSIZE);
        buf_done(&big);
        frame_decoder_done(&dec);

        /* Exactly at the limit passes, one byte more does not. */
        for (len = limit - 20;; len++) {
                _cleanup_envelope_ Cluster__Envelope *e = task_output(len);
                if (cluster__envelope__get_packed_size(e) == limit)
                        break;
                ck_assert_uint_lt(cluster__envelope__get_packed_size(e), limit);
        }
        for (size_t extra = 0; extra <= 1; extra++) {
                _cleanup_envelope_ Cluster__Envelope *e = task_output(len + extra);
                frame_decoder_init(&dec, limit);
                buf_clear(&out);
                ck_assert_int_eq(frame_encode(&out, e), 0);
                ck_assert_int_eq(frame_decoder_feed(&dec, buf_head(&out), buf_size(&out)), 0);
                int r = frame_decoder_next(&dec, &m);
                if (extra == 0) {
                        ck_assert_int_eq(r, 1);
                        ck_assert_uint_eq(m->task_output->data.len, len);
                        cluster__envelope__free_unpacked(m, NULL);
                } else
                        ck_assert_int_eq(r, -EMSGSIZE);
                frame_decoder_done(&dec);
        }
        buf_done(&out);
}
END_TEST

static void expect_bad(const void *data, size_t size, int expected)
{
        FrameDecoder dec;
        Cluster__Envelope *m = NULL;

        frame_decoder_init(&dec, 0);
        ck_assert_int_eq(frame_decoder_feed(&dec, data, size), 0);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), expected);
        ck_assert_ptr_null(m);
        /* Sticky: more valid-looking input changes nothing. */
        ck_assert_int_eq(frame_decoder_feed(&dec, "\0\0\0\2\x2a\0", 6), 0);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), expected);
        frame_decoder_done(&dec);
}

START_TEST(test_bad_frames)
{
        /* Zero length. */
        expect_bad("\0\0\0\0", 4, -EBADMSG);
        /* Garbage that does not unpack. */
        expect_bad("\0\0\0\5\xff\xff\xff\xff\xff", 9, -EBADMSG);
        /* A Hello whose length runs past the frame. */
        expect_bad("\0\0\0\3\x0a\x10\x08", 7, -EBADMSG);
        /* Valid protobuf with only an unknown field: no message set. */
        expect_bad("\0\0\0\3\xa8\x01\x05", 7, -EBADMSG);
        /* Nested garbage: a TaskStart whose TaskSpec holds a broken varint. */
        expect_bad("\0\0\0\6\x52\x04\x0a\x02\x08\xff", 10, -EBADMSG);
        /* Wrong wire type for the hello field. */
        expect_bad("\0\0\0\2\x08\x01", 6, -EBADMSG);
        /* Field number 0 spelled with a redundant varint byte, inside a Ping and at the
         * top: protobuf-c takes it, but could not read back what it would pack. */
        expect_bad("\0\0\0\7\x2a\x05\x08\x05\x80\x00\x00", 11, -EBADMSG);
        expect_bad("\0\0\0\5\x80\x00\x00\x2a\x00", 9, -EBADMSG);
}
END_TEST

START_TEST(test_reserve_commit)
{
        _cleanup_envelope_ Cluster__Envelope *e = make_envelope(12, 5);
        Cluster__Envelope *m = NULL;
        FrameDecoder dec;
        Buf out = {};
        uint8_t *w;

        /* Written in place in two steps, like TLS decrypting records into the buffer. */
        ck_assert_int_eq(frame_encode(&out, e), 0);
        frame_decoder_init(&dec, 0);
        w = frame_decoder_reserve(&dec, 10);
        ck_assert_ptr_nonnull(w);
        memcpy(w, buf_head(&out), 10);
        frame_decoder_commit(&dec, 10);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), 0);
        w = frame_decoder_reserve(&dec, buf_size(&out));
        ck_assert_ptr_nonnull(w);
        memcpy(w, buf_head(&out) + 10, buf_size(&out) - 10);
        frame_decoder_commit(&dec, buf_size(&out) - 10);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), 1);
        assert_same(e, m);
        cluster__envelope__free_unpacked(m, NULL);
        frame_decoder_done(&dec);

        /* Behind a refused header nothing is kept, however it was written. */
        frame_decoder_init(&dec, 100);
        w = frame_decoder_reserve(&dec, 5000);
        ck_assert_ptr_nonnull(w);
        memset(w, 0x7f, 5000);
        frame_decoder_commit(&dec, 5000);
        ck_assert_uint_eq(buf_size(&dec.buf), FRAME_HEADER_SIZE);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), -EMSGSIZE);
        w = frame_decoder_reserve(&dec, 5000);
        ck_assert_ptr_nonnull(w);
        frame_decoder_commit(&dec, 5000);
        ck_assert_uint_eq(buf_size(&dec.buf), FRAME_HEADER_SIZE);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), -EMSGSIZE);
        frame_decoder_done(&dec);
        buf_done(&out);
}
END_TEST

START_TEST(test_truncated)
{
        _cleanup_envelope_ Cluster__Envelope *e = make_envelope(1, 3);
        Cluster__Envelope *m = NULL;
        FrameDecoder dec;
        Buf out = {};

        ck_assert_int_eq(frame_encode(&out, e), 0);
        frame_decoder_init(&dec, 0);
        ck_assert_int_eq(frame_decoder_feed(&dec, buf_head(&out), buf_size(&out) - 1), 0);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), 0);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), 0);
        ck_assert_int_eq(frame_decoder_feed(&dec, buf_head(&out) + buf_size(&out) - 1, 1), 0);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), 1);
        assert_same(e, m);
        cluster__envelope__free_unpacked(m, NULL);
        frame_decoder_done(&dec);
        buf_done(&out);
}
END_TEST

START_TEST(test_encode_refuses_empty)
{
        Cluster__Envelope e = CLUSTER__ENVELOPE__INIT;
        Buf out = {};

        ck_assert_int_eq(frame_encode(&out, &e), -EINVAL);
        ck_assert_uint_eq(buf_size(&out), 0);
        buf_done(&out);
}
END_TEST

START_TEST(test_utf8)
{
        ck_assert(utf8_is_valid("", 0));
        ck_assert(utf8_is_valid("plain", 5));
        ck_assert(utf8_is_valid("héllo ✓ 😀", strlen("héllo ✓ 😀")));
        ck_assert(!utf8_is_valid("\xc0\xaf", 2)); /* overlong '/' */
        ck_assert(!utf8_is_valid("\xe0\x80\xaf", 3)); /* overlong */
        ck_assert(!utf8_is_valid("\xed\xa0\x80", 3)); /* surrogate */
        ck_assert(!utf8_is_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
        ck_assert(!utf8_is_valid("\xff", 1));
        ck_assert(!utf8_is_valid("ab\xc3", 3)); /* truncated sequence */
        ck_assert(!utf8_is_valid("\xc3\x28", 2));
        ck_assert(utf8_is_valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
}
END_TEST

static void expect_check(const Cluster__Envelope *e, const char *reason)
{
        _cleanup_free_ char *err = NULL;

        ck_assert_int_eq(envelope_check(e, &err), -EBADMSG);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(streq(err, reason), "got \"%s\", expected \"%s\"", err, reason);
        ck_assert_ptr_null(strchr(err, '\n'));
        ck_assert_int_eq(envelope_check(e, NULL), -EBADMSG);
}

static void set_string(char **p, const char *s)
{
        free(*p);
        *p = strdup(s);
        ck_assert_ptr_nonnull(*p);
}

static void set_argv(Cluster__TaskSpec *spec, size_t n, size_t len)
{
        for (size_t i = 0; i < spec->n_argv; i++)
                free(spec->argv[i]);
        free(spec->argv);
        spec->argv = new0(char *, n);
        ck_assert_ptr_nonnull(spec->argv);
        spec->n_argv = n;
        for (size_t i = 0; i < n; i++) {
                spec->argv[i] = malloc(len + 1);
                ck_assert_ptr_nonnull(spec->argv[i]);
                memset(spec->argv[i], 'a', len);
                spec->argv[i][len] = 0;
        }
}

START_TEST(test_envelope_check)
{
        _cleanup_envelope_ Cluster__Envelope *hello = make_envelope(1, 1);
        _cleanup_envelope_ Cluster__Envelope *error = make_envelope(3, 1);
        _cleanup_envelope_ Cluster__Envelope *run = make_envelope(9, 1);
        _cleanup_envelope_ Cluster__Envelope *start = make_envelope(10, 1);
        _cleanup_envelope_ Cluster__Envelope *hb = make_envelope(8, 1);
        _cleanup_envelope_ Cluster__Envelope *status = make_envelope(18, 1);
        Cluster__Envelope empty = CLUSTER__ENVELOPE__INIT;
        char name[300];

        expect_check(&empty, "envelope has no message set");
        empty.msg_case = CLUSTER__ENVELOPE__MSG_HELLO;
        expect_check(&empty, "hello is missing");

        /* Names: UTF-8, at most 255 bytes. */
        set_string(&hello->hello->name, "bad\xc0\xaf");
        expect_check(hello, "hello.name is not valid UTF-8");
        memset(name, 'n', sizeof(name));
        name[255] = 0;
        set_string(&hello->hello->name, name);
        ck_assert_int_eq(envelope_check(hello, NULL), 0);
        name[255] = 'n';
        name[256] = 0;
        set_string(&hello->hello->name, name);
        expect_check(hello, "hello.name is 256 bytes, at most 255");

        /* Human texts get more room. */
        char *text = malloc(ENVELOPE_TEXT_MAX + 2);
        ck_assert_ptr_nonnull(text);
        memset(text, 't', ENVELOPE_TEXT_MAX + 1);
        text[ENVELOPE_TEXT_MAX] = 0;
        set_string(&error->error->message, text);
        ck_assert_int_eq(envelope_check(error, NULL), 0);
        text[ENVELOPE_TEXT_MAX] = 't';
        text[ENVELOPE_TEXT_MAX + 1] = 0;
        set_string(&error->error->message, text);
        expect_check(error, "error.message is 4097 bytes, at most 4096");
        free(text);

        /* argv: entries, total size, UTF-8, not empty. */
        Cluster__TaskSpec *spec = run->run_request->spec;
        set_argv(spec, ENVELOPE_ARGV_MAX, 1);
        ck_assert_int_eq(envelope_check(run, NULL), 0);
        set_argv(spec, ENVELOPE_ARGV_MAX + 1, 1);
        expect_check(run, "run_request.spec.argv has 4097 entries, at most 4096");
        set_argv(spec, 2, 64 * 1024);
        ck_assert_int_eq(envelope_check(run, NULL), 0);
        set_argv(spec, 3, 64 * 1024);
        expect_check(run, "run_request.spec.argv has 196608 bytes in all, at most 131072");
        set_argv(spec, 3, 4);
        set_string(&spec->argv[2], "\xed\xa0\x80");
        expect_check(run, "run_request.spec.argv[2] is not valid UTF-8");
        set_argv(spec, 0, 0);
        expect_check(run, "run_request.spec.argv is empty");

        /* env: entries. */
        set_argv(spec, 1, 4);
        for (size_t i = 0; i < spec->n_env; i++)
                free(spec->env[i]);
        free(spec->env);
        spec->n_env = ENVELOPE_ENV_MAX + 1;
        spec->env = new0(char *, spec->n_env);
        ck_assert_ptr_nonnull(spec->env);
        for (size_t i = 0; i < spec->n_env; i++)
                spec->env[i] = strdup("A=b");
        expect_check(run, "run_request.spec.env has 4097 entries, at most 4096");

        /* Required sub-messages. */
        cluster__task_spec__free_unpacked(run->run_request->spec, NULL);
        run->run_request->spec = NULL;
        expect_check(run, "run_request.spec is missing");
        cluster__task_spec__free_unpacked(start->task_start->spec, NULL);
        start->task_start->spec = NULL;
        expect_check(start, "task_start.spec is missing");
        cluster__load__free_unpacked(hb->heartbeat->load, NULL);
        hb->heartbeat->load = NULL;
        expect_check(hb, "heartbeat.load is missing");

        /* Deep paths: strings inside list entries of nested messages. */
        ck_assert_int_eq(envelope_check(status, NULL), 0);
        set_string(&status->status_reply->workers[1]->info->models[0], "\xff");
        expect_check(status, "status_reply.workers[1].info.models[0] is not valid UTF-8");
        /* Optional sub-messages may be absent. */
        set_string(&status->status_reply->workers[1]->info->models[0], "m");
        cluster__load__free_unpacked(status->status_reply->workers[0]->load, NULL);
        status->status_reply->workers[0]->load = NULL;
        ck_assert_int_eq(envelope_check(status, NULL), 0);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("frame");
        TCase *tc = tcase_create("frame");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_roundtrip_every_type);
        tcase_add_test(tc, test_type_names);
        tcase_add_test(tc, test_byte_by_byte);
        tcase_add_test(tc, test_many_in_one_feed);
        tcase_add_test(tc, test_oversize);
        tcase_add_test(tc, test_bad_frames);
        tcase_add_test(tc, test_reserve_commit);
        tcase_add_test(tc, test_truncated);
        tcase_add_test(tc, test_encode_refuses_empty);
        tcase_add_test(tc, test_utf8);
        tcase_add_test(tc, test_envelope_check);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
