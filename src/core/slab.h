/* Fixed-size object allocator (see slab.c). Not thread-safe: one per loop. */
#ifndef WEFT_SLAB_H
#define WEFT_SLAB_H

#include <stddef.h>

typedef struct weft__slab {
    struct chunk *room;      /* chunks with a free object */
    size_t objsize;
    size_t nchunks;
    int use_malloc;          /* under sanitizers or valgrind: let them see every object */
} weft__slab_t;

void weft__slab_init(weft__slab_t *s, size_t objsize);
void *weft__slab_alloc(weft__slab_t *s);
void weft__slab_free(weft__slab_t *s, void *p);
void weft__slab_destroy(weft__slab_t *s);

#endif
