/* SPDX-License-Identifier: GPL-2.0-or-later */
/* GGUF reader: a bounds-checked cursor walks the header once; every length is checked
 * against what remains before it is used, so no later access can leave the file. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "engine/gguf.h"

typedef struct Cursor {
        const uint8_t *p;
        size_t pos, size;
        char **error;
} Cursor;

_printf_(3, 4) static int fail(char **error, int r, const char *fmt, ...)
{
        if (error && !*error) {
                va_list ap;
                va_start(ap, fmt);
                if (vasprintf(error, fmt, ap) < 0)
                        *error = NULL;
                va_end(ap);
        }
        return r;
}

static int cur_read(Cursor *c, void *dst, size_t n, const char *what)
{
        if (c->size - c->pos < n)
                return fail(c->error, -EBADMSG, "truncated file: %s at offset %zu needs %zu bytes",
                            what, c->pos, n);
        memcpy(dst, c->p + c->pos, n);
        c->pos += n;
        return 0;
}

static int cur_u32(Cursor *c, uint32_t *ret, const char *what)
{
        return cur_read(c, ret, 4, what);
}

static int cur_u64(Cursor *c, uint64_t *ret, const char *what)
{
        return cur_read(c, ret, 8, what);
}

static int cur_string(Cursor *c, const char **ret, size_t *ret_len, const char *what)
{
        uint64_t len = 0;
        int r;

        r = cur_u64(c, &len, what);
        if (r < 0)
                return r;
        if (len > GGUF_MAX_STRING)
                return fail(c->error, -E2BIG, "%s at offset %zu: string of %llu bytes is too long",
                            what, c->pos, (unsigned long long)len);
        if (c->size - c->pos < len)
                return fail(c->error, -EBADMSG, "truncated file: %s at offset %zu needs %llu bytes",
                            what, c->pos, (unsigned long long)len);
        *ret = (const char *)c->p + c->pos;
        *ret_len = (size_t)len;
        c->pos += len;
        return 0;
}

static const size_t scalar_size[_GGUF_TYPE_MAX] = {
        [GGUF_TYPE_UINT8] = 1,   [GGUF_TYPE_INT8] = 1,    [GGUF_TYPE_UINT16] = 2,
        [GGUF_TYPE_INT16] = 2,   [GGUF_TYPE_UINT32] = 4,  [GGUF_TYPE_INT32] = 4,
        [GGUF_TYPE_FLOAT32] = 4, [GGUF_TYPE_BOOL] = 1,    [GGUF_TYPE_UINT64] = 8,
        [GGUF_TYPE_INT64] = 8,   [GGUF_TYPE_FLOAT64] = 8,
};

static const char *const type_names[_GGUF_TYPE_MAX] = {
        [GGUF_TYPE_UINT8] = "u8",    [GGUF_TYPE_INT8] = "i8",    [GGUF_TYPE_UINT16] = "u16",
        [GGUF_TYPE_INT16] = "i16",   [GGUF_TYPE_UINT32] = "u32", [GGUF_TYPE_INT32] = "i32",
        [GGUF_TYPE_FLOAT32] = "f32", [GGUF_TYPE_BOOL] = "bool",  [GGUF_TYPE_STRING] = "string",
        [GGUF_TYPE_ARRAY] = "array", [GGUF_TYPE_UINT64] = "u64", [GGUF_TYPE_INT64] = "i64",
        [GGUF_TYPE_FLOAT64] = "f64",
};

const char *gguf_type_name(GgufType t)
{
        return (unsigned)t < _GGUF_TYPE_MAX ? type_names[t] : "invalid";
}

static void decode_scalar(GgufType t, const uint8_t *p, GgufKV *kv)
{
        union {
                uint8_t u8;
                int8_t i8;
                uint16_t u16;
                int16_t i16;
                uint32_t u32;
                int32_t i32;
                float f32;
                uint64_t u64;
                int64_t i64;
                double f64;
        } x;
        memcpy(&x, p, scalar_size[t]);
        switch (t) {
        case GGUF_TYPE_UINT8:
                kv->v.u = x.u8;
                break;
        case GGUF_TYPE_INT8:
                kv->v.i = x.i8;
                break;
        case GGUF_TYPE_UINT16:
                kv->v.u = x.u16;
                break;
        case GGUF_TYPE_INT16:
                kv->v.i = x.i16;
                break;
        case GGUF_TYPE_UINT32:
                kv->v.u = x.u32;
                break;
        case GGUF_TYPE_INT32:
                kv->v.i = x.i32;
                break;
        case GGUF_TYPE_FLOAT32:
                kv->v.f = x.f32;
                break;
        case GGUF_TYPE_BOOL:
                kv->v.b = x.u8 != 0;
                break;
        case GGUF_TYPE_UINT64:
                kv->v.u = x.u64;
                break;
        case GGUF_TYPE_INT64:
                kv->v.i = x.i64;
                break;
        case GGUF_TYPE_FLOAT64:
                kv->v.f = x.f64;
                break;
        default:
                break;
        }
}

static int parse_value(Cursor *c, GgufKV *kv)
{
        uint32_t t = 0;
        int r;

        r = cur_u32(c, &t, "value type");
        if (r < 0)
                return r;
        if (t >= _GGUF_TYPE_MAX)
                return fail(c->error, -EBADMSG, "key '%s': unknown value type %u", kv->key, t);
        kv->type = t;

        if (t == GGUF_TYPE_STRING)
                return cur_string(c, &kv->str, &kv->str_len, kv->key);

        if (t != GGUF_TYPE_ARRAY) {
                uint8_t buf[8];
                r = cur_read(c, buf, scalar_size[t], kv->key);
                if (r < 0)
                        return r;
                decode_scalar(t, buf, kv);
                return 0;
        }

        uint32_t et = 0;
        uint64_t n = 0;
        r = cur_u32(c, &et, "array element type");
        if (r < 0)
                return r;
        r = cur_u64(c, &n, "array length");
        if (r < 0)
                return r;
        if (et >= _GGUF_TYPE_MAX || et == GGUF_TYPE_ARRAY)
                return fail(c->error, -EBADMSG, "key '%s': unsupported array element type %u",
                            kv->key, et);
        if (n > GGUF_MAX_ARRAY)
                return fail(c->error, -E2BIG, "key '%s': array of %llu elements is too long",
                            kv->key, (unsigned long long)n);
        kv->arr_type = et;
        kv->arr_n = n;
        kv->arr_data = c->p + c->pos;
        if (et == GGUF_TYPE_STRING) {
                for (uint64_t i = 0; i < n; i++) {
                        const char *s;
                        size_t len;
                        r = cur_string(c, &s, &len, kv->key);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        /* n <= 2^28 and size <= 8: no overflow. */
        size_t bytes = (size_t)n * scalar_size[et];
        if (c->size - c->pos < bytes)
                return fail(c->error, -EBADMSG,
                            "truncated file: array '%s' at offset %zu needs %zu bytes", kv->key,
                            c->pos, bytes);
        c->pos += bytes;
        return 0;
}

static int strndup_checked(const char *s, size_t len, char **ret)
{
        /* Keys and names are used as C strings: an embedded NUL would make two distinct
         * keys look equal. */
        if (memchr(s, 0, len))
                return -EBADMSG;
        char *d = strndup(s, len);
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

GgufFile *gguf_free(GgufFile *f)
{
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n_kv; i++)
                free(f->kv[i].key);
        free(f->kv);
        for (size_t i = 0; i < f->n_tensors; i++)
                free(f->tensors[i].name);
        free(f->tensors);
        free(f->kv_index);
        free(f->tensor_index);
        if (f->mapped && f->base)
                munmap((void *)f->base, f->size);
        return mfree(f);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(GgufFile *, gguf_free);

/* qsort() has no context argument; parsing is not re-entrant on the same thread
 * anyway, and the pointer is thread-local. */
static _Thread_local const GgufFile *sort_file;

static int kv_cmp(const void *a, const void *b)
{
        return strcmp(sort_file->kv[*(const size_t *)a].key, sort_file->kv[*(const size_t *)b].key);
}

static int tensor_cmp(const void *a, const void *b)
{
        return strcmp(sort_file->tensors[*(const size_t *)a].name,
                      sort_file->tensors[*(const size_t *)b].name);
}

static int parse(GgufFile *f, char **error)
{
        Cursor c = {.p = f->base, .pos = 0, .size = f->size, .error = error};
        uint32_t magic = 0;
        uint64_t n_tensors = 0, n_kv = 0;
        int r;

        r = cur_u32(&c, &magic, "magic");
        if (r < 0)
                return r;
        if (magic != GGUF_MAGIC)
                return fail(error, -EBADMSG, "bad magic 0x%08x: not a GGUF file", magic);
        r = cur_u32(&c, &f->version, "version");
        if (r < 0)
                return r;
        if (f->version == 1)
                return fail(error, -EOPNOTSUPP, "GGUF version 1 is not supported");
        if (f->version != 2 && f->version != 3)
                return fail(error, -EBADMSG, "unknown GGUF version %u", f->version);
        r = cur_u64(&c, &n_tensors, "tensor count");
        if (r < 0)
                return r;
        r = cur_u64(&c, &n_kv, "metadata count");
        if (r < 0)
                return r;
        if (n_tensors > GGUF_MAX_TENSORS)
                return fail(error, -E2BIG, "%llu tensors: more than the limit of %u",
                            (unsigned long long)n_tensors, GGUF_MAX_TENSORS);
        if (n_kv > GGUF_MAX_KV)
                return fail(error, -E2BIG, "%llu metadata entries: more than the limit of %u",
                            (unsigned long long)n_kv, GGUF_MAX_KV);
        /* Each entry takes at least 12 bytes: a claimed count the file cannot hold is
         * refused before we allocate for it. */
        if ((n_kv + n_tensors) * 12 > f->size - c.pos)
                return fail(error, -EBADMSG,
                            "truncated file: %llu metadata entries and %llu tensors do not fit",
                            (unsigned long long)n_kv, (unsigned long long)n_tensors);

        f->kv = new0(GgufKV, n_kv);
        f->tensors = new0(GgufTensor, n_tensors);
        if (!f->kv || !f->tensors)
                return -ENOMEM;

        f->alignment = GGUF_DEFAULT_ALIGNMENT;
        for (size_t i = 0; i < n_kv; i++) {
                GgufKV *kv = &f->kv[i];
                const char *key;
                size_t len;

                r = cur_string(&c, &key, &len, "metadata key");
                if (r < 0)
                        return r;
                r = strndup_checked(key, len, &kv->key);
                if (r < 0)
                        return fail(error, r, "metadata key %zu is invalid", i);
                f->n_kv = i + 1;
                r = parse_value(&c, kv);
                if (r < 0)
                        return r;
                if (strcmp(kv->key, "general.alignment") == 0) {
                        if (kv->type != GGUF_TYPE_UINT32 || kv->v.u == 0 ||
                            (kv->v.u & (kv->v.u - 1)) != 0 || kv->v.u > 65536)
                                return fail(
                                        error, -EBADMSG,
                                        "general.alignment must be a power of two u32 up to 65536");
                        f->alignment = kv->v.u;
                }
        }

        for (size_t i = 0; i < n_tensors; i++) {
                GgufTensor *t = &f->tensors[i];
                const char *name;
                size_t len;
                uint32_t type = 0;

                r = cur_string(&c, &name, &len, "tensor name");
                if (r < 0)
                        return r;
                if (len == 0 || len > 256)
                        return fail(error, -EBADMSG, "tensor %zu: name of %zu bytes", i, len);
                r = strndup_checked(name, len, &t->name);
                if (r < 0)
                        return fail(error, r, "tensor %zu: invalid name", i);
                f->n_tensors = i + 1;
                r = cur_u32(&c, &t->n_dims, t->name);
                if (r < 0)
                        return r;
                if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
                        return fail(error, -EBADMSG, "tensor '%s': %u dimensions", t->name,
                                    t->n_dims);
                uint64_t nel = 1;
                for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
                        t->ne[d] = 1;
                        if (d >= t->n_dims)
                                continue;
                        r = cur_u64(&c, &t->ne[d], t->name);
                        if (r < 0)
                                return r;
                        if (t->ne[d] == 0 || t->ne[d] > GGUF_MAX_ELEMENTS ||
                            __builtin_mul_overflow(nel, t->ne[d], &nel) || nel > GGUF_MAX_ELEMENTS)
                                return fail(error, -EBADMSG, "tensor '%s': absurd dimension %llu",
                                            t->name, (unsigned long long)t->ne[d]);
                }
                r = cur_u32(&c, &type, t->name);
                if (r < 0)
                        return r;
                const GgmlTypeTraits *tt = ggml_type_traits(type);
                if (!tt)
                        return fail(error, -EBADMSG, "tensor '%s': unknown type %u", t->name, type);
                t->type = type;
                if (t->ne[0] % tt->block_size != 0)
                        return fail(error, -EBADMSG,
                                    "tensor '%s': row of %llu elements is not a multiple of the %s "
                                    "block size %zu",
                                    t->name, (unsigned long long)t->ne[0], tt->name,
                                    tt->block_size);
                /* nel <= 2^40 and type_size <= 292: fits in 64 bits. */
                t->size = (size_t)(nel / tt->block_size * tt->type_size);
                r = cur_u64(&c, &t->offset, t->name);
                if (r < 0)
                        return r;
                if (t->offset % f->alignment != 0)
                        return fail(error, -EBADMSG,
                                    "tensor '%s': offset %llu is not aligned to %zu", t->name,
                                    (unsigned long long)t->offset, f->alignment);
        }

        /* Sorted indexes: lookups by bsearch, duplicates found as neighbours. */
        f->kv_index = new (size_t, f->n_kv);
        f->tensor_index = new (size_t, f->n_tensors);
        if (!f->kv_index || !f->tensor_index)
                return -ENOMEM;
        for (size_t i = 0; i < f->n_kv; i++)
                f->kv_index[i] = i;
        for (size_t i = 0; i < f->n_tensors; i++)
                f->tensor_index[i] = i;
        sort_file = f;
        qsort(f->kv_index, f->n_kv, sizeof(size_t), kv_cmp);
        qsort(f->tensor_index, f->n_tensors, sizeof(size_t), tensor_cmp);
        sort_file = NULL;
        for (size_t i = 1; i < f->n_kv; i++)
                if (strcmp(f->kv[f->kv_index[i]].key, f->kv[f->kv_index[i - 1]].key) == 0)
                        return fail(error, -EBADMSG, "duplicate metadata key '%s'",
                                    f->kv[f->kv_index[i]].key);
        for (size_t i = 1; i < f->n_tensors; i++)
                if (strcmp(f->tensors[f->tensor_index[i]].name,
                           f->tensors[f->tensor_index[i - 1]].name) == 0)
                        return fail(error, -EBADMSG, "duplicate tensor '%s'",
                                    f->tensors[f->tensor_index[i]].name);

        f->data_offset = ALIGN_TO(c.pos, f->alignment);
        if (n_tensors > 0 && f->data_offset > f->size)
                return fail(error, -EBADMSG, "truncated file: no data section");
        size_t data_size = f->size - MIN(f->data_offset, f->size);
        for (size_t i = 0; i < f->n_tensors; i++) {
                GgufTensor *t = &f->tensors[i];
                if (t->offset > data_size || t->size > data_size - t->offset)
                        return fail(error, -EBADMSG,
                                    "tensor '%s': data at %llu+%zu lies outside the file's %zu "
                                    "data bytes",
                                    t->name, (unsigned long long)t->offset, t->size, data_size);
                t->data = f->base + f->data_offset + t->offset;
        }
        return 0;
}

int gguf_parse(const void *data, size_t size, GgufFile **ret, char **ret_error)
{
        _cleanup_(gguf_freep) GgufFile *f = NULL;
        int r;

        f = new0(GgufFile, 1);
        if (!f)
                return -ENOMEM;
        f->base = data;
        f->size = size;
        r = parse(f, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

int gguf_open(const char *path, GgufFile **ret, char **ret_error)
{
        _cleanup_(gguf_freep) GgufFile *f = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return fail(ret_error, -errno, "cannot open %s: %m", path);
        if (fstat(fd, &st) < 0)
                return fail(ret_error, -errno, "cannot stat %s: %m", path);
        if (!S_ISREG(st.st_mode))
                return fail(ret_error, -EBADMSG, "%s is not a regular file", path);
        if (st.st_size < 24)
                return fail(ret_error, -EBADMSG, "truncated file: %s has %lld bytes", path,
                            (long long)st.st_size);

        f = new0(GgufFile, 1);
        if (!f)
                return -ENOMEM;
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return fail(ret_error, -errno, "cannot map %s: %m", path);
        f->base = p;
        f->size = (size_t)st.st_size;
        f->mapped = true;
        r = parse(f, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

const GgufKV *gguf_find_kv(const GgufFile *f, const char *key)
{
        size_t lo = 0, hi = f->kv_index ? f->n_kv : 0;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const GgufKV *kv = &f->kv[f->kv_index[mid]];
                int c = strcmp(key, kv->key);
                if (c == 0)
                        return kv;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

const GgufTensor *gguf_find_tensor(const GgufFile *f, const char *name)
{
        size_t lo = 0, hi = f->tensor_index ? f->n_tensors : 0;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const GgufTensor *t = &f->tensors[f->tensor_index[mid]];
                int c = strcmp(name, t->name);
                if (c == 0)
                        return t;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

static bool is_unsigned(GgufType t)
{
        return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 ||
                t == GGUF_TYPE_UINT64;
}

static bool is_signed(GgufType t)
{
        return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 ||
                t == GGUF_TYPE_INT64;
}

static int get_int(const GgufFile *f, const char *key, int64_t lo, int64_t hi, int64_t *ret)
{
        const GgufKV *kv = gguf_find_kv(f, key);
        if (!kv)
                return -ENOENT;
        if (is_unsigned(kv->type)) {
                if (kv->v.u > (uint64_t)hi)
                        return -ERANGE;
                *ret = (int64_t)kv->v.u;
                return 0;
        }
        if (is_signed(kv->type)) {
                if (kv->v.i < lo || kv->v.i > hi)
                        return -ERANGE;
                *ret = kv->v.i;
                return 0;
        }
        return -EBADMSG;
}

int gguf_get_u32(const GgufFile *f, const char *key, uint32_t *ret)
{
        int64_t v;
        int r = get_int(f, key, 0, UINT32_MAX, &v);
        if (r < 0)
                return r;
        *ret = (uint32_t)v;
        return 0;
}

int gguf_get_i32(const GgufFile *f, const char *key, int32_t *ret)
{
        int64_t v;
        int r = get_int(f, key, INT32_MIN, INT32_MAX, &v);
        if (r < 0)
                return r;
        *ret = (int32_t)v;
        return 0;
}

int gguf_get_f32(const GgufFile *f, const char *key, float *ret)
{
        const GgufKV *kv = gguf_find_kv(f, key);
        if (!kv)
                return -ENOENT;
        if (kv->type != GGUF_TYPE_FLOAT32 && kv->type != GGUF_TYPE_FLOAT64)
                return -EBADMSG;
        *ret = (float)kv->v.f;
        return 0;
}

int gguf_get_bool(const GgufFile *f, const char *key, bool *ret)
{
        const GgufKV *kv = gguf_find_kv(f, key);
        if (!kv)
                return -ENOENT;
        if (kv->type != GGUF_TYPE_BOOL)
                return -EBADMSG;
        *ret = kv->v.b;
        return 0;
}

int gguf_get_str(const GgufFile *f, const char *key, const char **ret, size_t *ret_len)
{
        const GgufKV *kv = gguf_find_kv(f, key);
        if (!kv)
                return -ENOENT;
        if (kv->type != GGUF_TYPE_STRING)
                return -EBADMSG;
        *ret = kv->str;
        *ret_len = kv->str_len;
        return 0;
}

int gguf_get_strdup(const GgufFile *f, const char *key, char **ret)
{
        const char *s;
        size_t len;
        int r = gguf_get_str(f, key, &s, &len);
        if (r < 0)
                return r;
        char *d = strndup(s, len);
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

int gguf_get_array(const GgufFile *f, const char *key, GgufType *ret_type, uint64_t *ret_n,
                   const void **ret_data)
{
        const GgufKV *kv = gguf_find_kv(f, key);
        if (!kv)
                return -ENOENT;
        if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type == GGUF_TYPE_STRING)
                return -EBADMSG;
        *ret_type = kv->arr_type;
        *ret_n = kv->arr_n;
        *ret_data = kv->arr_data;
        return 0;
}

int gguf_get_str_array(const GgufFile *f, const char *key, const char ***ret_strs,
                       size_t **ret_lens, size_t *ret_n)
{
        const GgufKV *kv = gguf_find_kv(f, key);
        if (!kv)
                return -ENOENT;
        if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING)
                return -EBADMSG;

        _cleanup_free_ const char **strs = new (const char *, kv->arr_n);
        _cleanup_free_ size_t *lens = new (size_t, kv->arr_n);
        if (!strs || !lens)
                return -ENOMEM;
        /* Lengths were validated by the parser; walk them again. */
        const uint8_t *p = kv->arr_data;
        for (uint64_t i = 0; i < kv->arr_n; i++) {
                uint64_t len;
                memcpy(&len, p, 8);
                strs[i] = (const char *)p + 8;
                lens[i] = (size_t)len;
                p += 8 + len;
        }
        *ret_strs = TAKE_PTR(strs);
        *ret_lens = TAKE_PTR(lens);
        *ret_n = kv->arr_n;
        return 0;
}
