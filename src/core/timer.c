/* The timer heap: a binary min-heap of pointers ordered by (deadline, insertion order), each
 * timer knowing its own index so that cancellation is O(log n) without searching. A million
 * pending timers cost 8 MB of heap array and nothing else (the timers live in their owners). */
#include <stdlib.h>

#include "internal.h"

static inline bool before(const struct weft__timer *a, const struct weft__timer *b) {
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static inline void place(weft__heap_t *h, uint32_t i, struct weft__timer *t) {
    h->items[i] = t;
    t->heap_index = i;
}

static void sift_up(weft__heap_t *h, uint32_t i, struct weft__timer *t) {
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!before(t, h->items[parent]))
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(weft__heap_t *h, uint32_t i, struct weft__timer *t) {
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && before(h->items[child + 1], h->items[child]))
            child++;
        if (!before(h->items[child], t))
            break;
        place(h, i, h->items[child]);
        i = child;
    }
    place(h, i, t);
}

void weft__heap_free(weft__heap_t *h) {
    free(h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}

int weft__heap_push(weft__heap_t *h, struct weft__timer *t) {
    if (h->len == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        struct weft__timer **items;
        if (cap <= h->cap || cap >= WEFT__TIMER_IDLE)
            return -ENOMEM;
        items = realloc(h->items, (size_t)cap * sizeof *items);
        if (!items)
            return -ENOMEM;
        h->items = items;
        h->cap = cap;
    }
    sift_up(h, h->len++, t);
    return 0;
}

void weft__heap_remove(weft__heap_t *h, struct weft__timer *t) {
    uint32_t i = t->heap_index;
    struct weft__timer *last = h->items[--h->len];
    t->heap_index = WEFT__TIMER_IDLE;
    if (last == t)
        return;
    if (i > 0 && before(last, h->items[(i - 1) / 2]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

int weft__timer_start(weft_loop_t *loop, struct weft__timer *t, double when, uint32_t kind) {
    t->when = when;
    t->kind = kind;
    t->seq = loop->timer_seq++;
    return weft__heap_push(&loop->timers, t);
}

void weft__timer_stop(weft_loop_t *loop, struct weft__timer *t) {
    if (weft__timer_armed(t))
        weft__heap_remove(&loop->timers, t);
}
