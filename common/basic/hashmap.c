/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/hashmap.h"

typedef struct Entry {
        union {
                const char *s;
                uint64_t u;
        } key;
        void *value;
        uint64_t hash; /* 0 marks an empty slot */
} Entry;

struct Hashmap {
        HashmapKind kind;
        Entry *slots;
        size_t n_slots; /* power of two */
        size_t n_used;
        /* Iteration after a removal re-visits the current slot, which backward shift
         * may have refilled. */
        bool removed_during_iter;
};

static uint64_t mix64(uint64_t x)
{
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ULL;
        x ^= x >> 33;
        return x;
}

static uint64_t hash_key(const Hashmap *h, const void *key)
{
        uint64_t v;

        if (h->kind == HASHMAP_U64)
                v = mix64(*(const uint64_t *)key);
        else {
                /* FNV-1a, then mixed: keys are short names. */
                v = 0xcbf29ce484222325ULL;
                for (const unsigned char *p = key; *p; p++)
                        v = (v ^ *p) * 0x100000001b3ULL;
                v = mix64(v);
        }
        return v ?: 1;
}

static bool key_eq(const Hashmap *h, const Entry *e, const void *key)
{
        if (h->kind == HASHMAP_U64)
                return e->key.u == *(const uint64_t *)key;
        return strcmp(e->key.s, key) == 0;
}

Hashmap *hashmap_new(HashmapKind kind)
{
        Hashmap *h = new0(Hashmap, 1);
        if (!h)
                return NULL;
        h->kind = kind;
        return h;
}

Hashmap *hashmap_free(Hashmap *h)
{
        if (!h)
                return NULL;
        free(h->slots);
        free(h);
        return NULL;
}

size_t hashmap_size(const Hashmap *h)
{
        return h ? h->n_used : 0;
}

static Entry *find(const Hashmap *h, const void *key, uint64_t hash)
{
        if (h->n_slots == 0)
                return NULL;
        for (size_t i = hash & (h->n_slots - 1);; i = (i + 1) & (h->n_slots - 1)) {
                Entry *e = &h->slots[i];
                if (e->hash == 0)
                        return NULL;
                if (e->hash == hash && key_eq(h, e, key))
                        return e;
        }
}

static void insert_slot(Entry *slots, size_t n_slots, const Entry *e)
{
        for (size_t i = e->hash & (n_slots - 1);; i = (i + 1) & (n_slots - 1))
                if (slots[i].hash == 0) {
                        slots[i] = *e;
                        return;
                }
}

static int resize(Hashmap *h, size_t n)
{
        Entry *slots = new0(Entry, n);

        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < h->n_slots; i++)
                if (h->slots[i].hash)
                        insert_slot(slots, n, &h->slots[i]);
        free(h->slots);
        h->slots = slots;
        h->n_slots = n;
        return 0;
}

static int put(Hashmap *h, const void *key, Entry e)
{
        if (find(h, key, e.hash))
                return -EEXIST;
        /* Load factor at most 3/4. */
        if ((h->n_used + 1) * 4 > h->n_slots * 3) {
                size_t n = h->n_slots ? h->n_slots * 2 : 16;
                if (n < h->n_slots || resize(h, n) < 0)
                        return -ENOMEM;
        }
        insert_slot(h->slots, h->n_slots, &e);
        h->n_used++;
        return 0;
}

static void *remove_entry(Hashmap *h, Entry *e)
{
        void *v = e->value;
        size_t mask = h->n_slots - 1, i = (size_t)(e - h->slots), j = i;

        /* Backward-shift deletion keeps probe chains intact without tombstones. */
        for (;;) {
                j = (j + 1) & mask;
                if (h->slots[j].hash == 0)
                        break;
                size_t home = h->slots[j].hash & mask;
                if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
                        h->slots[i] = h->slots[j];
                        i = j;
                }
        }
        h->slots[i] = (Entry){};
        h->n_used--;
        h->removed_during_iter = true;
        return v;
}

int hashmap_put(Hashmap *h, const void *key, void *value)
{
        return put(h, key, (Entry){.key.s = key, .value = value, .hash = hash_key(h, key)});
}

void *hashmap_get(const Hashmap *h, const void *key)
{
        Entry *e = find(h, key, hash_key(h, key));
        return e ? e->value : NULL;
}

void *hashmap_remove(Hashmap *h, const void *key)
{
        Entry *e = find(h, key, hash_key(h, key));
        return e ? remove_entry(h, e) : NULL;
}

int hashmap_put_u64(Hashmap *h, uint64_t key, void *value)
{
        return put(h, &key, (Entry){.key.u = key, .value = value, .hash = hash_key(h, &key)});
}

void *hashmap_get_u64(const Hashmap *h, uint64_t key)
{
        Entry *e = find(h, &key, hash_key(h, &key));
        return e ? e->value : NULL;
}

void *hashmap_remove_u64(Hashmap *h, uint64_t key)
{
        Entry *e = find(h, &key, hash_key(h, &key));
        return e ? remove_entry(h, e) : NULL;
}

bool hashmap_iterate(Hashmap *h, size_t *i, void **ret_value)
{
        if (!h)
                return false;
        /* *i is one past the slot returned last. If that entry was removed, a later
         * entry may have shifted into it: look at it again. Backward shift can also move
         * an unvisited entry across the wrap-around into slots already visited; callers
         * that remove while iterating must tolerate missing such an entry (all ours
         * re-run their sweep on the next timer). */
        if (h->removed_during_iter && *i > 0)
                (*i)--;
        h->removed_during_iter = false;
        for (; *i < h->n_slots; (*i)++)
                if (h->slots[*i].hash) {
                        *ret_value = h->slots[*i].value;
                        (*i)++;
                        return true;
                }
        return false;
}

void *hashmap_first(const Hashmap *h)
{
        if (!h || h->n_used == 0)
                return NULL;
        for (size_t i = 0; i < h->n_slots; i++)
                if (h->slots[i].hash)
                        return h->slots[i].value;
        return NULL;
}
