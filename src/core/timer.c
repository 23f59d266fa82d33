/* The timer heap: a min-heap ordered by (deadline, insertion order), each timer knowing its
 * own index so that cancellation is O(log n) without searching. A million pending timers cost
 * 16 MB of heap array and nothing else (the timers live in their owners). */
#include <stdlib.h>

#include "internal.h"

/* A 4-ary heap: half the depth of a binary one, and the four children of a node share one
 * or two cache lines. Equal deadlines fire in the order they were set (seq). */
static inline bool before(const weft__heap_entry_t *a, const weft__heap_entry_t *b) {
    return a->when < b->when || (a->when == b->when && a->timer->seq < b->timer->seq);
}

static inline void place(weft__heap_t *h, uint32_t i, weft__heap_entry_t e) {
    h->items[i] = e;
    e.timer->heap_index = i;
}

static void sift_up(weft__heap_t *h, uint32_t i, weft__heap_entry_t e) {
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        if (!before(&e, &h->items[parent]))
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, e);
}

static void sift_down(weft__heap_t *h, uint32_t i, weft__heap_entry_t e) {
    for (;;) {
        uint32_t first = 4 * i + 1, best, end;
        if (first >= h->len)
            break;
        best = first;
        end = first + 4 < h->len ? first + 4 : h->len;
        for (uint32_t c = first + 1; c < end; c++)
            if (before(&h->items[c], &h->items[best]))
                best = c;
        if (!before(&h->items[best], &e))
            break;
        place(h, i, h->items[best]);
        i = best;
    }
    place(h, i, e);
}

void weft__heap_free(weft__heap_t *h) {
    free(h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}

int weft__heap_push(weft__heap_t *h, struct weft__timer *t) {
    if (h->len == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        weft__heap_entry_t *items;
        if (cap <= h->cap || cap >= WEFT__TIMER_IDLE)
            return -ENOMEM;
        items = realloc(h->items, (size_t)cap * sizeof *items);
        if (!items)
            return -ENOMEM;
        h->items = items;
        h->cap = cap;
    }
    sift_up(h, h->len++, (weft__heap_entry_t){t->when, t});
    return 0;
}

void weft__heap_remove(weft__heap_t *h, struct weft__timer *t) {
    uint32_t i = t->heap_index;
    weft__heap_entry_t last = h->items[--h->len];
    t->heap_index = WEFT__TIMER_IDLE;
    if (last.timer == t)
        return;
    if (i > 0 && before(&last, &h->items[(i - 1) / 4]))
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
