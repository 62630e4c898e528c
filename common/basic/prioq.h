/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Binary min-heap of items that remember their own index, so that removal and
 * re-prioritization of any item is O(log n). Used for the loop's timers. */

#include "basic/macro.h"

typedef int (*prioq_compare_fn)(const void *a, const void *b);
typedef struct Prioq Prioq;

Prioq *prioq_new(prioq_compare_fn cmp);
Prioq *prioq_free(Prioq *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(Prioq *, prioq_free);

/* idx points into the item; it is kept up to date, and PRIOQ_IDX_NULL when not queued. */
#define PRIOQ_IDX_NULL ((unsigned)-1)
int prioq_put(Prioq *q, void *item, unsigned *idx);
void prioq_remove(Prioq *q, void *item, unsigned *idx);
/* Call after the item's priority changed. */
void prioq_reshuffle(Prioq *q, void *item, unsigned *idx);
void *prioq_peek(const Prioq *q) _pure_;
size_t prioq_size(const Prioq *q) _pure_;
