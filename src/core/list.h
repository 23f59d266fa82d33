/* Intrusive doubly linked list, shared by every part of the library that keeps things in order.
 *
 * The node is embedded in the element, so linking never allocates: a waiting task's node can
 * live on its own stack for the length of one suspension. The list is circular around a
 * sentinel head of the node's own type, so push and remove never test for an end or an empty
 * list, and a node leaves its list without knowing which list that is.
 *
 * A removed node is left pointing at itself: removing it again does nothing, and
 * weft__list_linked() tells a waker's "already taken off" from "still waiting". A node asked
 * that before it was ever pushed must have been through weft__list_init(). An empty head points
 * at itself too, so a head must not be copied or moved once initialised.
 *
 * Nothing here but <stddef.h>: the coroutine layer, which is also built alone, uses it. */
#ifndef WEFT_LIST_H
#define WEFT_LIST_H

#include <stddef.h>

typedef struct weft__list weft__list_t;
struct weft__list {
    weft__list_t *next, *prev;
};

/* The element whose weft__list_t `member` is at `ptr`. */
#define weft__list_entry(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* The first (last) element of list `l`, or NULL if it is empty. `l` is evaluated twice. */
#define weft__list_first_entry(l, type, member) \
    (weft__list_empty(l) ? (type *)NULL : weft__list_entry((l)->next, type, member))
#define weft__list_last_entry(l, type, member) \
    (weft__list_empty(l) ? (type *)NULL : weft__list_entry((l)->prev, type, member))

/* Walks list `l` from the first node; `it` must not be removed during the walk. */
#define weft__list_foreach(it, l) for ((it) = (l)->next; (it) != (l); (it) = (it)->next)

static inline void weft__list_init(weft__list_t *l) { l->next = l->prev = l; }

static inline int weft__list_empty(const weft__list_t *l) { return l->next == l; }

static inline int weft__list_linked(const weft__list_t *n) { return n->next != n; }

static inline void weft__list_insert_after(weft__list_t *pos, weft__list_t *n) {
    n->prev = pos;
    n->next = pos->next;
    pos->next->prev = n;
    pos->next = n;
}

static inline void weft__list_push_back(weft__list_t *l, weft__list_t *n) {
    weft__list_insert_after(l->prev, n);
}

static inline void weft__list_push_front(weft__list_t *l, weft__list_t *n) {
    weft__list_insert_after(l, n);
}

static inline void weft__list_remove(weft__list_t *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    weft__list_init(n);
}

#endif
