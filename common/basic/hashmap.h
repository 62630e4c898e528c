/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Open-addressing hash map (linear probing, backward-shift deletion) from a key to a
 * void* value. Keys are either NUL-terminated strings (not copied: the value usually
 * owns them) or uint64 values. Iteration order is unspecified; removing the entry the
 * iterator stands on is allowed. */

#include "basic/macro.h"

typedef struct Hashmap Hashmap;
typedef enum HashmapKind {
        HASHMAP_STRING,
        HASHMAP_U64,
} HashmapKind;

Hashmap *hashmap_new(HashmapKind kind);
Hashmap *hashmap_free(Hashmap *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Hashmap *, hashmap_free);

size_t hashmap_size(const Hashmap *h) _pure_;
/* -EEXIST if present, -ENOMEM. */
int hashmap_put(Hashmap *h, const void *key, void *value);
void *hashmap_get(const Hashmap *h, const void *key);
/* Returns the removed value or NULL. */
void *hashmap_remove(Hashmap *h, const void *key);

int hashmap_put_u64(Hashmap *h, uint64_t key, void *value);
void *hashmap_get_u64(const Hashmap *h, uint64_t key);
void *hashmap_remove_u64(Hashmap *h, uint64_t key);

/* Any one value (NULL when empty): for draining a map while removing. */
void *hashmap_first(const Hashmap *h);

/* Iteration: size_t i = 0; void *v; while (hashmap_iterate(h, &i, &v)) ... */
bool hashmap_iterate(Hashmap *h, size_t *i, void **ret_value);
#define HASHMAP_FOREACH(v, h) for (size_t _i_ = 0; hashmap_iterate((h), &_i_, (void **)&(v));)
