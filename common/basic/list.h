/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Intrusive doubly-linked lists (in the manner of systemd's list.h). An object is on a
 * list through a pair of <name>_next/<name>_prev fields declared with LIST_FIELDS. */

#define LIST_HEAD(t, name) t *name
#define LIST_FIELDS(t, name) t *name##_next, *name##_prev

#define LIST_PREPEND(name, head, item)                                                             \
        do {                                                                                       \
                typeof(*(head)) **_head = &(head), *_item = (item);                                \
                if ((_item->name##_next = *_head))                                                 \
                        _item->name##_next->name##_prev = _item;                                   \
                _item->name##_prev = NULL;                                                         \
                *_head = _item;                                                                    \
        } while (0)

/* Append with a tail pointer kept by the caller. */
#define LIST_APPEND_TAIL(name, head, tail, item)                                                   \
        do {                                                                                       \
                typeof(*(head)) **_head = &(head), **_tail = &(tail), *_item = (item);             \
                _item->name##_next = NULL;                                                         \
                _item->name##_prev = *_tail;                                                       \
                if (*_tail)                                                                        \
                        (*_tail)->name##_next = _item;                                             \
                else                                                                               \
                        *_head = _item;                                                            \
                *_tail = _item;                                                                    \
        } while (0)

#define LIST_REMOVE(name, head, item)                                                              \
        do {                                                                                       \
                typeof(*(head)) **_head = &(head), *_item = (item);                                \
                if (_item->name##_next)                                                            \
                        _item->name##_next->name##_prev = _item->name##_prev;                      \
                if (_item->name##_prev)                                                            \
                        _item->name##_prev->name##_next = _item->name##_next;                      \
                else                                                                               \
                        *_head = _item->name##_next;                                               \
                _item->name##_next = _item->name##_prev = NULL;                                    \
        } while (0)

#define LIST_REMOVE_TAIL(name, head, tail, item)                                                   \
        do {                                                                                       \
                typeof(*(head)) *_it2 = (item);                                                    \
                if ((tail) == _it2)                                                                \
                        (tail) = _it2->name##_prev;                                                \
                LIST_REMOVE(name, head, _it2);                                                     \
        } while (0)

#define LIST_FOREACH(name, i, head) for (typeof(*(head)) *i = (head); i; i = i->name##_next)
#define LIST_FOREACH_SAFE(name, i, n, head)                                                        \
        for (typeof(*(head)) *i = (head), *n = i ? i->name##_next : NULL; i;                       \
             i = n, n = i ? i->name##_next : NULL)
