/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* GGUF (v2 and v3) reader over a read-only mapping.
 *
 * Everything in the file is validated before a GgufFile is handed out: magic, version,
 * counts, string and array lengths against the bytes that remain, value types, tensor
 * dimensions, types, offsets and sizes against the data section, duplicate keys and
 * tensor names. A file that fails any check is refused with -EBADMSG (malformed),
 * -EOPNOTSUPP (a well-formed feature we do not read, e.g. version 1) or -E2BIG (sizes
 * past our limits), and a one-line explanation when the caller asks for it.
 *
 * Strings returned point into the mapping and are NOT NUL-terminated; tensor names and
 * keys are copied NUL-terminated for convenient lookups. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/ggml-types.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as little-endian u32 */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

/* Limits: a hostile header cannot make us allocate or loop past these. */
#define GGUF_MAX_TENSORS (1u << 16)
#define GGUF_MAX_KV (1u << 16)
#define GGUF_MAX_STRING (1u << 24) /* one string value or key */
#define GGUF_MAX_ARRAY (1ull << 28) /* elements of one array */
#define GGUF_MAX_ELEMENTS (1ull << 40) /* elements of one tensor */

typedef enum GgufType {
        GGUF_TYPE_UINT8 = 0,
        GGUF_TYPE_INT8 = 1,
        GGUF_TYPE_UINT16 = 2,
        GGUF_TYPE_INT16 = 3,
        GGUF_TYPE_UINT32 = 4,
        GGUF_TYPE_INT32 = 5,
        GGUF_TYPE_FLOAT32 = 6,
        GGUF_TYPE_BOOL = 7,
        GGUF_TYPE_STRING = 8,
        GGUF_TYPE_ARRAY = 9,
        GGUF_TYPE_UINT64 = 10,
        GGUF_TYPE_INT64 = 11,
        GGUF_TYPE_FLOAT64 = 12,
        _GGUF_TYPE_MAX,
} GgufType;

typedef struct GgufKV {
        char *key;
        GgufType type;
        /* Scalars are decoded; strings and arrays point into the file. */
        union {
                uint64_t u;
                int64_t i;
                double f;
                bool b;
        } v;
        const char *str; /* GGUF_TYPE_STRING */
        size_t str_len;
        GgufType arr_type; /* GGUF_TYPE_ARRAY */
        uint64_t arr_n;
        const uint8_t *arr_data; /* first element's encoding */
} GgufKV;

typedef struct GgufTensor {
        char *name;
        uint32_t n_dims;
        uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the row length; unused dims are 1 */
        GgmlType type;
        uint64_t offset; /* relative to the data section */
        size_t size; /* bytes */
        const void *data;
} GgufTensor;

typedef struct GgufFile {
        const uint8_t *base; /* the whole file */
        size_t size;
        bool mapped;
        uint32_t version;
        size_t alignment;
        size_t data_offset;
        size_t n_kv;
        GgufKV *kv;
        size_t n_tensors;
        GgufTensor *tensors;
        size_t *kv_index; /* sorted by key */
        size_t *tensor_index; /* sorted by name */
} GgufFile;

/* Maps and validates a file. On failure, if ret_error is not NULL, *ret_error receives
 * an allocated message (caller frees). */
int gguf_open(const char *path, GgufFile **ret, char **ret_error);
/* Validates a buffer that the caller keeps alive as long as the GgufFile. */
int gguf_parse(const void *data, size_t size, GgufFile **ret, char **ret_error);
GgufFile *gguf_free(GgufFile *f);

const char *gguf_type_name(GgufType t);

const GgufKV *gguf_find_kv(const GgufFile *f, const char *key);
const GgufTensor *gguf_find_tensor(const GgufFile *f, const char *name);

/* Typed getters: -ENOENT when absent, -EBADMSG when the type does not fit (integers of
 * any width are accepted when the value is in range). */
int gguf_get_u32(const GgufFile *f, const char *key, uint32_t *ret);
int gguf_get_i32(const GgufFile *f, const char *key, int32_t *ret);
int gguf_get_f32(const GgufFile *f, const char *key, float *ret);
int gguf_get_bool(const GgufFile *f, const char *key, bool *ret);
int gguf_get_str(const GgufFile *f, const char *key, const char **ret, size_t *ret_len);
/* A newly allocated NUL-terminated copy. */
int gguf_get_strdup(const GgufFile *f, const char *key, char **ret);
/* Array of fixed-size elements: points into the file. */
int gguf_get_array(const GgufFile *f, const char *key, GgufType *ret_type, uint64_t *ret_n,
                   const void **ret_data);
/* Array of strings: allocates the index arrays (caller frees both). */
int gguf_get_str_array(const GgufFile *f, const char *key, const char ***ret_strs,
                       size_t **ret_lens, size_t *ret_n);
