/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "shared/frame.h"

/* An empty buffer larger than this is freed after use. */
#define FRAME_BUF_KEEP_MAX (1024U * 1024)

static uint32_t be32_read(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void be32_write(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

void frame_decoder_init(FrameDecoder *d, size_t max_frame)
{
        *d = (FrameDecoder){
                .max_frame = max_frame ?: FRAME_MAX_DEFAULT,
        };
}

void frame_decoder_done(FrameDecoder *d)
{
        buf_done(&d->buf);
}

size_t frame_decoder_next_size(const FrameDecoder *d)
{
        if (buf_size(&d->buf) < FRAME_HEADER_SIZE)
                return 0;
        return be32_read(buf_head(&d->buf));
}

/* The frame at the head of the buffer can never be decoded: the stream is out of sync.
 * The decoder keeps that header where it is so every later call reports the same error,
 * and stops buffering, so a peer cannot make us hold what we will refuse. */
static int decoder_head_error(const FrameDecoder *d)
{
        size_t n;

        if (buf_size(&d->buf) < FRAME_HEADER_SIZE)
                return 0;
        n = be32_read(buf_head(&d->buf));
        if (n == 0)
                return -EBADMSG;
        if (n > d->max_frame)
                return -EMSGSIZE;
        return 0;
}

int frame_decoder_feed(FrameDecoder *d, const void *data, size_t size)
{
        const uint8_t *p = data;
        size_t have = buf_size(&d->buf);

        if (decoder_head_error(d) < 0)
                return 0; /* frame_decoder_next() reports it */

        /* Take just enough to complete a pending header, then look at it before
         * buffering the rest. */
        if (have < FRAME_HEADER_SIZE) {
                size_t k = MIN(size, FRAME_HEADER_SIZE - have);
                if (buf_append(&d->buf, p, k) < 0)
                        return -ENOMEM;
                p += k;
                size -= k;
                if (decoder_head_error(d) < 0)
                        return 0;
                if (buf_size(&d->buf) == FRAME_HEADER_SIZE && size > 0) {
                        /* Room for the whole frame at once instead of doublings. */
                        size_t want = FRAME_HEADER_SIZE + frame_decoder_next_size(d);
                        if (!buf_reserve(&d->buf, MIN(want, FRAME_HEADER_SIZE + size)))
                                return -ENOMEM;
                }
        }
        if (buf_append(&d->buf, p, size) < 0)
                return -ENOMEM;
        return 0;
}

uint8_t *frame_decoder_reserve(FrameDecoder *d, size_t n)
{
        return buf_reserve(&d->buf, n);
}

void frame_decoder_commit(FrameDecoder *d, size_t n)
{
        buf_commit(&d->buf, n);
        /* Keep nothing past a header that can never be decoded, as feed does. A header
         * that was already refused before this commit keeps exactly its 4 bytes. */
        if (decoder_head_error(d) < 0 && buf_size(&d->buf) > FRAME_HEADER_SIZE)
                d->buf.len = d->buf.rpos + FRAME_HEADER_SIZE;
}

/* protobuf-c keeps fields it does not know, to be packed again; but it accepts a field
 * number 0 when its tag is spelled with a redundant varint byte, and refuses the same
 * field once packed canonically. Such a message would poison whoever we forward it to,
 * so it is refused here like any other that does not unpack. */
static bool unknown_fields_valid(const ProtobufCMessage *m)
{
        const ProtobufCMessageDescriptor *desc = m->descriptor;
        const uint8_t *base = (const uint8_t *)m;

        for (unsigned i = 0; i < m->n_unknown_fields; i++)
                if (m->unknown_fields[i].tag == 0)
                        return false;
        for (unsigned i = 0; i < desc->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &desc->fields[i];

                if (f->type != PROTOBUF_C_TYPE_MESSAGE)
                        continue;
                if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
                        continue;
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        size_t n = *(const size_t *)(base + f->quantifier_offset);
                        const ProtobufCMessage *const *v =
                                *(const ProtobufCMessage *const *const *)(base + f->offset);
                        for (size_t k = 0; k < n; k++)
                                if (v[k] && !unknown_fields_valid(v[k]))
                                        return false;
                } else {
                        const ProtobufCMessage *sub =
                                *(const ProtobufCMessage *const *)(base + f->offset);
                        if (sub && !unknown_fields_valid(sub))
                                return false;
                }
        }
        return true;
}

int frame_decoder_next(FrameDecoder *d, Cluster__Envelope **ret)
{
        Cluster__Envelope *m;
        size_t n;
        int r;

        assert(ret);

        r = decoder_head_error(d);
        if (r < 0)
                return r;
        if (buf_size(&d->buf) < FRAME_HEADER_SIZE)
                return 0;
        n = be32_read(buf_head(&d->buf));
        if (buf_size(&d->buf) - FRAME_HEADER_SIZE < n)
                return 0;

        m = cluster__envelope__unpack(NULL, n, buf_head(&d->buf) + FRAME_HEADER_SIZE);
        if (!m)
                return -EBADMSG; /* left in place: the error is sticky */
        if (m->msg_case == CLUSTER__ENVELOPE__MSG__NOT_SET || !unknown_fields_valid(&m->base)) {
                cluster__envelope__free_unpacked(m, NULL);
                return -EBADMSG;
        }
        buf_consume(&d->buf, FRAME_HEADER_SIZE + n);
        /* Don't keep a big frame's room on an idle connection. */
        if (buf_size(&d->buf) == 0 && d->buf.cap > FRAME_BUF_KEEP_MAX)
                buf_done(&d->buf);
        *ret = m;
        return 1;
}

int frame_encode(Buf *out, const Cluster__Envelope *msg)
{
        size_t n, packed;
        uint8_t *w;

        assert(out && msg);

        /* An envelope without a message packs to nothing: a zero-length frame, which
         * every receiver refuses. */
        if (msg->msg_case == CLUSTER__ENVELOPE__MSG__NOT_SET)
                return -EINVAL;
        n = cluster__envelope__get_packed_size(msg);
        if (n == 0)
                return -EINVAL;
        if (n > UINT32_MAX)
                return -EMSGSIZE;
        w = buf_reserve(out, FRAME_HEADER_SIZE + n);
        if (!w)
                return -ENOMEM;
        be32_write(w, (uint32_t)n);
        packed = cluster__envelope__pack(msg, w + FRAME_HEADER_SIZE);
        assert(packed == n);
        buf_commit(out, FRAME_HEADER_SIZE + packed);
        return 0;
}

const char *envelope_type_name(const Cluster__Envelope *msg)
{
        const ProtobufCFieldDescriptor *f;

        if (!msg || msg->msg_case == CLUSTER__ENVELOPE__MSG__NOT_SET)
                return "none";
        f = protobuf_c_message_descriptor_get_field(&cluster__envelope__descriptor,
                                                    (unsigned)msg->msg_case);
        return f ? f->name : "unknown";
}

/* ---- envelope_check ---- */

bool utf8_is_valid(const char *str, size_t len)
{
        const uint8_t *s = (const uint8_t *)str, *end = s + len;

        while (s < end) {
                uint8_t c = *s;

                if (c < 0x80) {
                        s++;
                        continue;
                }

                size_t k;
                uint32_t cp, min;
                if ((c & 0xe0) == 0xc0) {
                        k = 2;
                        cp = c & 0x1f;
                        min = 0x80;
                } else if ((c & 0xf0) == 0xe0) {
                        k = 3;
                        cp = c & 0x0f;
                        min = 0x800;
                } else if ((c & 0xf8) == 0xf0) {
                        k = 4;
                        cp = c & 0x07;
                        min = 0x10000;
                } else
                        return false;
                if ((size_t)(end - s) < k)
                        return false;
                for (size_t i = 1; i < k; i++) {
                        if ((s[i] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                s += k;
        }
        return true;
}

/* Per-field rules where the defaults (strings ENVELOPE_NAME_MAX, lists
 * ENVELOPE_REPEATED_MAX, bytes ENVELOPE_DATA_MAX, sub-messages optional) don't fit. */
typedef struct FieldRule {
        const ProtobufCMessageDescriptor *message;
        const char *field;
        size_t max_len; /* per string or bytes value; 0 = default */
        size_t max_count; /* entries of a list; 0 = default */
        size_t max_total; /* bytes of all strings of a list; 0 = unbounded by this rule */
        size_t min_count; /* entries a list needs */
        bool required; /* a sub-message that must be present */
} FieldRule;

static const FieldRule field_rules[] = {
        {&cluster__error__descriptor, "message", .max_len = ENVELOPE_TEXT_MAX},
        {&cluster__goodbye__descriptor, "reason", .max_len = ENVELOPE_TEXT_MAX},
        {&cluster__task_exit__descriptor, "error", .max_len = ENVELOPE_TEXT_MAX},
        {&cluster__task_spec__descriptor, "cwd", .max_len = ENVELOPE_TEXT_MAX},
        {&cluster__task_spec__descriptor, "argv", .max_len = ENVELOPE_ARGV_BYTES_MAX,
         .max_count = ENVELOPE_ARGV_MAX, .max_total = ENVELOPE_ARGV_BYTES_MAX, .min_count = 1},
        {&cluster__task_spec__descriptor, "env", .max_len = ENVELOPE_ENV_BYTES_MAX,
         .max_count = ENVELOPE_ENV_MAX, .max_total = ENVELOPE_ENV_BYTES_MAX},
        {&cluster__token__descriptor, "description", .max_len = ENVELOPE_TEXT_MAX},
        {&cluster__token_request__descriptor, "description", .max_len = ENVELOPE_TEXT_MAX},
        {&cluster__status_reply__descriptor, "workers", .max_count = ENVELOPE_LIST_MAX},
        {&cluster__token_reply__descriptor, "tokens", .max_count = ENVELOPE_LIST_MAX},
        {&cluster__run_request__descriptor, "spec", .required = true},
        {&cluster__task_start__descriptor, "spec", .required = true},
        {&cluster__heartbeat__descriptor, "load", .required = true},
};

static const FieldRule *field_rule(const ProtobufCMessageDescriptor *m,
                                   const ProtobufCFieldDescriptor *f)
{
        for (size_t i = 0; i < ELEMENTSOF(field_rules); i++)
                if (field_rules[i].message == m && streq(field_rules[i].field, f->name))
                        return &field_rules[i];
        return NULL;
}

typedef struct CheckPath {
        char text[256];
        size_t len;
} CheckPath;

static size_t path_push(CheckPath *p, const char *name)
{
        size_t saved = p->len;
        int k = snprintf(p->text + p->len, sizeof(p->text) - p->len, "%s%s", p->len > 0 ? "." : "",
                         name);

        if (k > 0)
                p->len = MIN(p->len + (size_t)k, sizeof(p->text) - 1);
        return saved;
}

static void path_pop(CheckPath *p, size_t saved)
{
        p->len = saved;
        p->text[saved] = 0;
}

_printf_(3, 4) static int check_fail(const CheckPath *p, char **ret_error, const char *fmt, ...)
{
        if (ret_error) {
                _cleanup_free_ char *what = NULL;
                va_list ap;

                va_start(ap, fmt);
                if (vasprintf(&what, fmt, ap) < 0)
                        what = NULL;
                va_end(ap);
                *ret_error = what ? strprintf("%s %s", p->text, what) : NULL;
        }
        return -EBADMSG;
}

static int check_message(const ProtobufCMessage *m, CheckPath *path, char **ret_error);

static int check_string(const char *s, size_t max_len, CheckPath *path, char **ret_error,
                        size_t *ret_len)
{
        size_t n = s ? strlen(s) : 0;

        if (n > max_len)
                return check_fail(path, ret_error, "is %zu bytes, at most %zu", n, max_len);
        if (!utf8_is_valid(s, n))
                return check_fail(path, ret_error, "is not valid UTF-8");
        *ret_len = n;
        return 0;
}

static int check_value(const ProtobufCFieldDescriptor *f, const FieldRule *rule, const void *value,
                       CheckPath *path, char **ret_error, size_t *ret_len)
{
        *ret_len = 0;
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING:
                return check_string(*(char *const *)value,
                                    rule && rule->max_len ? rule->max_len : ENVELOPE_NAME_MAX, path,
                                    ret_error, ret_len);
        case PROTOBUF_C_TYPE_BYTES: {
                const ProtobufCBinaryData *b = value;
                size_t max = rule && rule->max_len ? rule->max_len : ENVELOPE_DATA_MAX;
                if (b->len > max)
                        return check_fail(path, ret_error, "is %zu bytes, at most %zu", b->len,
                                          max);
                if (b->len > 0 && !b->data)
                        return check_fail(path, ret_error, "has no data");
                *ret_len = b->len;
                return 0;
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)value;
                if (!sub) {
                        if (rule && rule->required)
                                return check_fail(path, ret_error, "is missing");
                        return 0;
                }
                return check_message(sub, path, ret_error);
        }
        default:
                return 0; /* numbers, booleans, enums: nothing protobuf-c left open */
        }
}

static size_t value_stride(const ProtobufCFieldDescriptor *f)
{
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING:
                return sizeof(char *);
        case PROTOBUF_C_TYPE_BYTES:
                return sizeof(ProtobufCBinaryData);
        case PROTOBUF_C_TYPE_MESSAGE:
                return sizeof(ProtobufCMessage *);
        default:
                return 0;
        }
}

static int check_repeated(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                          const FieldRule *rule, CheckPath *path, char **ret_error)
{
        const uint8_t *base = (const uint8_t *)m;
        size_t n = *(const size_t *)(base + f->quantifier_offset);
        const uint8_t *values = *(const uint8_t *const *)(base + f->offset);
        size_t stride = value_stride(f), total = 0, len, max_count;
        int r;

        max_count = rule && rule->max_count ? rule->max_count : ENVELOPE_REPEATED_MAX;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && !(rule && rule->max_count))
                max_count = ENVELOPE_LIST_MAX;
        if (n > max_count)
                return check_fail(path, ret_error, "has %zu entries, at most %zu", n, max_count);
        if (rule && n < rule->min_count)
                return check_fail(path, ret_error, "is empty");
        if (stride == 0 || n == 0)
                return 0;
        if (!values)
                return check_fail(path, ret_error, "has no entries");

        for (size_t i = 0; i < n; i++) {
                /* The path ends in "<field>": make it "<field>[i]" for this entry. */
                size_t saved = path->len;
                int k = snprintf(path->text + path->len, sizeof(path->text) - path->len, "[%zu]",
                                 i);
                if (k > 0)
                        path->len = MIN(path->len + (size_t)k, sizeof(path->text) - 1);

                if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
                    !*(const ProtobufCMessage *const *)(values + i * stride)) {
                        r = check_fail(path, ret_error, "is missing");
                } else
                        r = check_value(f, rule, values + i * stride, path, ret_error, &len);
                path_pop(path, saved);
                if (r < 0)
                        return r;
                total += len;
        }
        if (rule && rule->max_total && total > rule->max_total)
                return check_fail(path, ret_error, "has %zu bytes in all, at most %zu", total,
                                  rule->max_total);
        return 0;
}

static int check_message(const ProtobufCMessage *m, CheckPath *path, char **ret_error)
{
        const ProtobufCMessageDescriptor *d = m->descriptor;
        const uint8_t *base = (const uint8_t *)m;
        int r;

        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                const FieldRule *rule = field_rule(d, f);
                size_t saved, len;

                /* Only the member of a oneof that is set holds a value. */
                if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
                        continue;
                if (value_stride(f) == 0 && !rule)
                        continue;

                saved = path_push(path, f->name);
                if (f->label == PROTOBUF_C_LABEL_REPEATED)
                        r = check_repeated(m, f, rule, path, ret_error);
                else
                        r = check_value(f, rule, base + f->offset, path, ret_error, &len);
                path_pop(path, saved);
                if (r < 0)
                        return r;
        }
        return 0;
}

int envelope_check(const Cluster__Envelope *m, char **ret_error)
{
        CheckPath path = {};
        const ProtobufCFieldDescriptor *f;

        if (!m || m->msg_case == CLUSTER__ENVELOPE__MSG__NOT_SET) {
                if (ret_error)
                        *ret_error = strdup("envelope has no message set");
                return -EBADMSG;
        }
        f = protobuf_c_message_descriptor_get_field(&cluster__envelope__descriptor,
                                                    (unsigned)m->msg_case);
        if (!f) {
                if (ret_error)
                        *ret_error =
                                strprintf("envelope has unknown message %u", (unsigned)m->msg_case);
                return -EBADMSG;
        }
        /* The oneof member itself must be there: an envelope saying "hello" without a
         * Hello is no message at all. */
        path_push(&path, f->name);
        if (!*(const ProtobufCMessage *const *)((const uint8_t *)m + f->offset))
                return check_fail(&path, ret_error, "is missing");
        path_pop(&path, 0);
        return check_message(&m->base, &path, ret_error);
}
