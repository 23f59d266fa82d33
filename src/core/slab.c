/* A fixed-size object allocator for tasks and futures, one per loop.
 *
 * Why not malloc: a million tasks created before any runs (asyncio's create_task in a loop)
 * are a million live objects, and fresh memory is what they cost most (the first touch of a
 * page costs microseconds on this class of machine). Objects here have no header, alloc and
 * free are a few instructions, and consecutive tasks sit next to each other. A chunk whose
 * objects are all free is returned to the system (one spare is kept), so a burst of a million
 * tasks does not pin its memory. (MADV_HUGEPAGE on the chunks was tried: slower and noisier in
 * the spawn benchmark, as the kernel zeroes and compacts 2 MiB at a time.) */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "slab.h"

#if defined(__SANITIZE_ADDRESS__)
#define WEFT__SLAB_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT__SLAB_MALLOC 1
#endif
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define CHUNK_SIZE ((size_t)2 << 20)

typedef struct chunk chunk_t;
struct chunk {
    chunk_t *prev, *next;    /* in the slab's list of chunks with room */
    void *free;              /* freed objects of this chunk, LIFO */
    size_t live;
    size_t bump;             /* offset of the first never-used object */
    int in_list;
};

static size_t header_size(size_t objsize) {
    return (sizeof(chunk_t) + objsize - 1) / objsize * objsize;
}

static chunk_t *chunk_new(void) {
    /* Over-allocate, then trim to a 2 MiB-aligned 2 MiB: the alignment lets free() find the
     * chunk from an object's address. */
    char *raw = mmap(NULL, 2 * CHUNK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    char *base;
    size_t head;
    if (raw == MAP_FAILED)
        return NULL;
    base = (char *)(((uintptr_t)raw + CHUNK_SIZE - 1) & ~(uintptr_t)(CHUNK_SIZE - 1));
    head = (size_t)(base - raw);
    if (head)
        munmap(raw, head);
    munmap(base + CHUNK_SIZE, CHUNK_SIZE - head);

    return (chunk_t *)base;
}

static void list_add(weft__slab_t *s, chunk_t *c) {
    c->prev = NULL;
    c->next = s->room;
    if (s->room)
        s->room->prev = c;
    s->room = c;
    c->in_list = 1;
}

static void list_del(weft__slab_t *s, chunk_t *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        s->room = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->in_list = 0;
}

void weft__slab_init(weft__slab_t *s, size_t objsize) {
    memset(s, 0, sizeof *s);
    /* 8-byte alignment is all tasks and futures need; 16 would add 8 bytes to each task. */
    s->objsize = (objsize + 7) & ~(size_t)7;
#ifdef WEFT__SLAB_MALLOC
    s->use_malloc = 1;
#else
    s->use_malloc = RUNNING_ON_VALGRIND != 0;
#endif
}

void *weft__slab_alloc(weft__slab_t *s) {
    chunk_t *c = s->room;
    void *p;
    if (s->use_malloc)
        return malloc(s->objsize);
    if (!c) {
        if (!(c = chunk_new()))
            return NULL;
        c->free = NULL;
        c->live = 0;
        c->bump = header_size(s->objsize);
        list_add(s, c);
        s->nchunks++;
    }
    if (c->free) {
        p = c->free;
        c->free = *(void **)p;
    } else {
        p = (char *)c + c->bump;
        c->bump += s->objsize;
    }
    c->live++;
    if (!c->free && c->bump + s->objsize > CHUNK_SIZE)
        list_del(s, c);
    return p;
}

void weft__slab_free(weft__slab_t *s, void *p) {
    chunk_t *c = (chunk_t *)((uintptr_t)p & ~(uintptr_t)(CHUNK_SIZE - 1));
    if (s->use_malloc) {
        free(p);
        return;
    }
    *(void **)p = c->free;
    c->free = p;
    c->live--;
    if (!c->in_list)
        list_add(s, c);
    if (c->live == 0 && (c->prev || c->next)) { /* keep the last chunk as a spare */
        list_del(s, c);
        munmap(c, CHUNK_SIZE);
        s->nchunks--;
    }
}

void weft__slab_destroy(weft__slab_t *s) {
    /* Every object is free by now (the loop is freed after its last task and future), so every
     * chunk is in the list. */
    while (s->room) {
        chunk_t *c = s->room;
        list_del(s, c);
        munmap(c, CHUNK_SIZE);
    }
    s->nchunks = 0;
}
