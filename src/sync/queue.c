/* Queues: asyncio.Queue, LifoQueue and PriorityQueue in one struct (`kind` says which).
 *
 * Items live in a ring buffer (FIFO), a stack (LIFO) or a binary heap (PRIORITY), sized to
 * maxsize at creation when bounded, so a put or get allocates nothing. Waiting tasks are
 * nodes on their own stacks, in FIFO lists: getters, putters, joiners.
 *
 * Invariants: getters wait only while no item is free, putters only while the queue is full.
 * A put that finds a waiting getter stores its item and reserves one item for that getter (the
 * item stays in the queue, as in asyncio, so maxsize, qsize and the order of a LIFO or priority
 * queue stay exactly asyncio's); the getter takes an item when it resumes, and nobody else can
 * take a reserved one. A get that frees a slot moves the first waiting putter's item in. The
 * woken task finds its operation done or its item waiting: nobody overtakes it, and order stays
 * first come, first served.
 *
 * A waiter woken by a cancellation stays in its list until it runs again; those nodes are
 * skipped (and unlinked) by whoever looks for a waiter to serve, as asyncio skips a cancelled
 * waiter future. Only the task that was served decides, when it resumes, what a cancellation
 * that arrived after the hand-over means (see queue_get_wait and queue_put_wait). */
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"
#include "../core/list.h"

typedef struct qent {
    void *item;
    int64_t prio;   /* PRIORITY without cmp */
    uint64_t seq;   /* put order: FIFO among equals */
} qent_t;

enum qwstate {
    QW_LINKED,    /* waiting, in its list */
    QW_UNLINKED,  /* woken by a cancellation, then skipped and taken out of the list */
    QW_DONE,      /* served: getter holds an item, putter's item is in, joiner's wait is over */
    QW_SHUTDOWN,  /* woken by weft_queue_shutdown() */
};

typedef struct qwaiter qwaiter_t;
struct qwaiter {
    weft__list_t link;
    weft_task_t *task;
    weft_queue_t *q;
    weft__list_t *list;   /* the one it waits in, still known once it is taken off */
    qent_t ent;
    int state;
};

struct weft_queue {
    size_t len;           /* items queued */
    size_t limit;         /* maxsize, SIZE_MAX when unbounded */
    size_t head;          /* FIFO: index of the first item */
    size_t mask;          /* capacity - 1 (capacity a power of two); heap: capacity */
    void **ring;          /* FIFO ring / LIFO stack */
    qent_t *heap;         /* PRIORITY */
    weft__list_t getters, putters, joiners;   /* of qwaiter_t, oldest first */
    weft_loop_t *loop;
    size_t unfinished;    /* items put and not yet task_done'd */
    size_t nwaiting;      /* waiter nodes that still point here (linked, or served but not resumed) */
    size_t reserved;      /* items promised to getters that were woken and have not run yet */
    uint64_t seq;
    size_t maxsize;
    weft_queue_cmp_fn cmp;
    void *cmp_arg;
    int kind;
    bool shutdown, immediate;
};

/* Capacity given at creation to a bounded queue: its maxsize, up to this; beyond, it grows as
 * needed (and never shrinks), so a queue with a huge bound does not reserve it all. */
#define QUEUE_PRESIZE_MAX ((size_t)1 << 16)
#define QUEUE_INITIAL 16

/* ---- waiter lists ------------------------------------------------------------------------ */

/* The first waiter still suspended, with the ones a cancellation woke taken out on the way. */
static qwaiter_t *first_waiting(weft__list_t *l) {
    qwaiter_t *w;
    while ((w = weft__list_first_entry(l, qwaiter_t, link)) && !weft__task_waiting(w->task)) {
        weft__list_remove(&w->link);
        w->state = QW_UNLINKED;
    }
    return w;
}

static void serve(qwaiter_t *w, int state, int status) {
    weft__list_remove(&w->link);
    w->state = state;
    weft__task_wake(w->task, status);
}

static void serve_all(weft__list_t *l, int state, int status) {
    qwaiter_t *w;
    while ((w = weft__list_first_entry(l, qwaiter_t, link)))
        serve(w, state, status);
}

/* ---- storage ----------------------------------------------------------------------------- */

static inline bool ent_before(const weft_queue_t *q, const qent_t *a, const qent_t *b) {
    if (q->cmp) {
        int c = q->cmp(a->item, b->item, q->cmp_arg);
        if (c)
            return c < 0;
    }
    if (a->prio != b->prio)
        return a->prio < b->prio;
    return a->seq < b->seq;
}

static size_t pow2_at_least(size_t n) {
    size_t c = QUEUE_INITIAL;
    while (c < n)
        c <<= 1;
    return c;
}

static int grow(weft_queue_t *q) {
    size_t cap = q->mask + 1, ncap = cap * 2;
    if (q->kind == WEFT_QUEUE_PRIORITY) {
        qent_t *h = realloc(q->heap, ncap * sizeof *h);
        if (!h)
            return WEFT_ENOMEM;
        q->heap = h;
    } else {
        void **r = malloc(ncap * sizeof *r);
        if (!r)
            return WEFT_ENOMEM;
        for (size_t i = 0; i < q->len; i++)
            r[i] = q->ring[(q->head + i) & q->mask];
        free(q->ring);
        q->ring = r;
        q->head = 0;
    }
    q->mask = ncap - 1;
    return 0;
}

static void heap_push(weft_queue_t *q, const qent_t *e) {
    size_t i = q->len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ent_before(q, e, &q->heap[parent]))
            break;
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = *e;
}

static void *heap_pop(weft_queue_t *q) {
    void *item = q->heap[0].item;
    size_t n = --q->len, i = 0;
    qent_t last = q->heap[n];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && ent_before(q, &q->heap[c + 1], &q->heap[c]))
            c++;
        if (!ent_before(q, &q->heap[c], &last))
            break;
        q->heap[i] = q->heap[c];
        i = c;
    }
    if (n)
        q->heap[i] = last;
    return item;
}

/* Adds at the back (FIFO), on top (LIFO), in order (PRIORITY). */
static inline int store_push(weft_queue_t *q, const qent_t *e) {
    if (weft__unlikely(q->len > q->mask)) {
        int rc = grow(q);
        if (rc < 0)
            return rc;
    }
    switch (q->kind) {
    case WEFT_QUEUE_FIFO:
        q->ring[(q->head + q->len) & q->mask] = e->item;
        q->len++;
        break;
    case WEFT_QUEUE_LIFO:
        q->ring[q->len++] = e->item;
        break;
    default:
        heap_push(q, e);
        break;
    }
    return 0;
}

static inline void *store_pop(weft_queue_t *q) {
    void *item;
    switch (q->kind) {
    case WEFT_QUEUE_FIFO:
        item = q->ring[q->head];
        q->head = (q->head + 1) & q->mask;
        q->len--;
        return item;
    case WEFT_QUEUE_LIFO:
        return q->ring[--q->len];
    default:
        return heap_pop(q);
    }
}

/* ---- moving items ------------------------------------------------------------------------ */

static void item_done(weft_queue_t *q) {
    if (q->unfinished > 0 && --q->unfinished == 0)
        serve_all(&q->joiners, QW_DONE, 0);
}

/* Wakes the first waiting getter, if an item is free for it, and reserves that item. */
static void reserve_for_getter(weft_queue_t *q) {
    qwaiter_t *w;
    if (q->len > q->reserved && (w = first_waiting(&q->getters))) {
        q->reserved++;
        serve(w, QW_DONE, 0);
    }
}

/* A get freed a slot: the first waiting putter's item goes in and the putter is done. */
static __attribute__((noinline)) void admit_putter(weft_queue_t *q) {
    qwaiter_t *w;
    if (q->len >= q->limit || !(w = first_waiting(&q->putters)))
        return;
    if (store_push(q, &w->ent) < 0)
        return; /* out of memory growing past the pre-sized capacity: it keeps waiting */
    q->unfinished++;
    serve(w, QW_DONE, 0);
    if (!weft__list_empty(&q->getters)) /* every item was promised, and getters still wait */
        reserve_for_getter(q);
}

/* A put: into the queue if there is room, waking the first waiting getter.
 * WEFT_EQUEUEFULL: the caller waits (or gives up). */
static inline int put_now(weft_queue_t *q, qent_t *e) {
    int rc;
    if (weft__unlikely(q->shutdown))
        return WEFT_EQUEUESHUTDOWN;
    if (q->len >= q->limit)
        return WEFT_EQUEUEFULL;
    e->seq = q->seq++;
    if ((rc = store_push(q, e)) < 0)
        return rc;
    q->unfinished++;
    if (weft__unlikely(!weft__list_empty(&q->getters)))
        reserve_for_getter(q);
    return 0;
}

static inline void *take(weft_queue_t *q) {
    void *item = store_pop(q);
    if (weft__unlikely(!weft__list_empty(&q->putters)))
        admit_putter(q);
    return item;
}

/* ---- waiting ----------------------------------------------------------------------------- */

/* Loop close abandons a waiting task without resuming it: its node leaves the queue, and an
 * item it was handed goes back (nobody else will ever get it otherwise). */
static void waiter_abort(weft__run_t *run, void *arg) {
    qwaiter_t *w = arg;
    weft_queue_t *q = w->q;
    (void)run;
    if (w->state == QW_LINKED)
        weft__list_remove(&w->link);
    else if (w->state == QW_DONE && w->list == &q->getters && !q->immediate)
        q->reserved--; /* its item stays; nobody is woken for it: the loop is closing */
    q->nwaiting--;
}

/* Suspends `t` on `list` until served, shut down or cancelled; returns weft__suspend()'s
 * status. The node is out of every list when this returns. */
static int wait_on(weft_queue_t *q, weft__list_t *list, qwaiter_t *w, weft_task_t *t) {
    int rc;
    w->task = t;
    w->q = q;
    w->list = list;
    w->state = QW_LINKED;
    weft__list_push_back(list, &w->link);
    q->nwaiting++;
    t->run->abort_wait = waiter_abort;
    t->run->abort_arg = w;
    WEFT__WAITING(t, "queue", q);
    rc = weft__suspend(t);
    t->run->abort_wait = NULL;
    q->nwaiting--;
    if (w->state == QW_LINKED)
        weft__list_remove(&w->link);
    return rc;
}

/* No item was free. A getter woken for an item and cancelled before it runs again (the same
 * loop iteration) does not take it: the item stays in the queue, reserved for the next waiting
 * getter if there is one, and the get returns -ECANCELED. */
static __attribute__((noinline)) int queue_get_wait(weft_queue_t *q, weft_task_t *t,
                                                     void **item) {
    qwaiter_t w;
    int rc;
    if (q->shutdown)
        return WEFT_EQUEUESHUTDOWN;
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    rc = wait_on(q, &q->getters, &w, t);
    if (w.state != QW_DONE)
        return rc < 0 ? rc : WEFT_ECANCELED;
    if (rc == WEFT_ECANCELED) { /* the cancellation wins, as in asyncio */
        if (!q->immediate) {
            q->reserved--;
            reserve_for_getter(q);
        }
        return WEFT_ECANCELED;
    }
    if (q->immediate) /* emptied by shutdown(immediate) before this task ran */
        return WEFT_EQUEUESHUTDOWN;
    q->reserved--;
    {
        void *v = take(q);
        if (item)
            *item = v;
    }
    return 0;
}

/* The queue was full. A putter whose item was moved in before a cancellation reached it
 * returns 0 all the same: the put happened (the item is in the queue, and the caller must know
 * it no longer owns it). The cancellation stays pending, so the task's next suspension returns
 * -ECANCELED. A put that returns -ECANCELED never inserted its item. */
static __attribute__((noinline)) int queue_put_wait(weft_queue_t *q, weft_task_t *t,
                                                     const qent_t *e) {
    qwaiter_t w;
    int rc;
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    w.ent = *e;
    rc = wait_on(q, &q->putters, &w, t);
    if (w.state == QW_DONE)
        return 0;
    return rc < 0 ? rc : WEFT_ECANCELED;
}

/* ---- the API ----------------------------------------------------------------------------- */

/* The running task, for a call that may suspend: -EPERM outside tasks, -EINVAL on another
 * loop's queue. */
static inline int enter_task(const weft_queue_t *q, weft_task_t **t) {
    weft_loop_t *loop = weft__tls_loop;
    if (weft__unlikely(!loop || !(*t = loop->current)))
        return WEFT_EPERM;
    if (weft__unlikely(loop != q->loop))
        return WEFT_EINVAL;
    return 0;
}

/* Calls that never suspend work outside tasks too, but not from another loop's. */
static inline int enter_any(const weft_queue_t *q) {
    weft_loop_t *loop = weft__tls_loop;
    return weft__unlikely(loop && loop != q->loop) ? WEFT_EINVAL : 0;
}

int weft_loop_queue_new(weft_loop_t *loop, weft_queue_t **qp, const weft_queue_options_t *opts) {
    weft_queue_options_t o = {WEFT_QUEUE_FIFO, 0, NULL, NULL};
    weft_queue_t *q;
    size_t cap;
    if (!loop || !qp)
        return WEFT_EINVAL;
    if (opts)
        o = *opts;
    if (o.kind != WEFT_QUEUE_FIFO && o.kind != WEFT_QUEUE_LIFO && o.kind != WEFT_QUEUE_PRIORITY)
        return WEFT_EINVAL;
    if (loop->closed)
        return WEFT_ESHUTDOWN;
    q = calloc(1, sizeof *q);
    if (!q)
        return WEFT_ENOMEM;
    cap = pow2_at_least(o.maxsize && o.maxsize < QUEUE_PRESIZE_MAX ? o.maxsize
                        : o.maxsize ? QUEUE_PRESIZE_MAX : QUEUE_INITIAL);
    if (o.kind == WEFT_QUEUE_PRIORITY)
        q->heap = malloc(cap * sizeof *q->heap);
    else
        q->ring = malloc(cap * sizeof *q->ring);
    if (!q->heap && !q->ring) {
        free(q);
        return WEFT_ENOMEM;
    }
    q->mask = cap - 1;
    weft__list_init(&q->getters);
    weft__list_init(&q->putters);
    weft__list_init(&q->joiners);
    q->loop = loop;
    q->kind = o.kind;
    q->maxsize = o.maxsize;
    q->limit = o.maxsize ? o.maxsize : SIZE_MAX;
    q->cmp = o.kind == WEFT_QUEUE_PRIORITY ? o.cmp : NULL;
    q->cmp_arg = o.cmp_arg;
    loop->refs++; /* the loop's memory outlives it: weft_queue_free() after weft_loop_close() */
    *qp = q;
    return 0;
}

int weft_queue_new(weft_queue_t **q, const weft_queue_options_t *opts) {
    if (!weft__tls_loop)
        return WEFT_EPERM;
    return weft_loop_queue_new(weft__tls_loop, q, opts);
}

int weft_queue_free(weft_queue_t *q) {
    if (!q)
        return 0;
    if (q->nwaiting)
        return WEFT_EBUSY;
    free(q->ring);
    free(q->heap);
    weft__loop_unref(q->loop);
    free(q);
    return 0;
}

int weft_queue_put(weft_queue_t *q, void *item) {
    weft_task_t *t;
    qent_t e = {item, 0, 0};
    int rc = enter_task(q, &t);
    if (weft__unlikely(rc < 0))
        return rc;
    rc = put_now(q, &e);
    if (weft__likely(rc != WEFT_EQUEUEFULL))
        return rc;
    return queue_put_wait(q, t, &e);
}

int weft_queue_put_prio(weft_queue_t *q, int64_t priority, void *item) {
    weft_task_t *t;
    qent_t e = {item, priority, 0};
    int rc = enter_task(q, &t);
    if (rc < 0)
        return rc;
    if (q->kind != WEFT_QUEUE_PRIORITY)
        return WEFT_EINVAL;
    rc = put_now(q, &e);
    if (rc != WEFT_EQUEUEFULL)
        return rc;
    return queue_put_wait(q, t, &e);
}

int weft_queue_get(weft_queue_t *q, void **item) {
    weft_task_t *t;
    int rc = enter_task(q, &t);
    if (weft__unlikely(rc < 0))
        return rc;
    if (weft__likely(q->len > q->reserved)) {
        void *v = take(q);
        if (item)
            *item = v;
        return 0;
    }
    return queue_get_wait(q, t, item);
}

int weft_queue_put_nowait(weft_queue_t *q, void *item) {
    qent_t e = {item, 0, 0};
    int rc = enter_any(q);
    return rc < 0 ? rc : put_now(q, &e);
}

int weft_queue_put_prio_nowait(weft_queue_t *q, int64_t priority, void *item) {
    qent_t e = {item, priority, 0};
    int rc = enter_any(q);
    if (rc < 0)
        return rc;
    if (q->kind != WEFT_QUEUE_PRIORITY)
        return WEFT_EINVAL;
    return put_now(q, &e);
}

int weft_queue_get_nowait(weft_queue_t *q, void **item) {
    int rc = enter_any(q);
    void *v;
    if (rc < 0)
        return rc;
    if (q->len <= q->reserved) /* reserved items belong to getters already woken */
        return q->shutdown && q->len == 0 ? WEFT_EQUEUESHUTDOWN : WEFT_EQUEUEEMPTY;
    v = take(q);
    if (item)
        *item = v;
    return 0;
}

size_t weft_queue_qsize(const weft_queue_t *q) { return q->len; }
size_t weft_queue_maxsize(const weft_queue_t *q) { return q->maxsize; }
int weft_queue_empty(const weft_queue_t *q) { return q->len == 0; }
int weft_queue_full(const weft_queue_t *q) { return q->maxsize && q->len >= q->maxsize; }

int weft_queue_task_done(weft_queue_t *q) {
    int rc = enter_any(q);
    if (rc < 0)
        return rc;
    if (q->unfinished == 0)
        return WEFT_EINVAL;
    item_done(q);
    return 0;
}

/* A joiner woken and cancelled in the same iteration returns -ECANCELED: nothing is lost, and
 * that is what awaiting asyncio's Event does. */
int weft_queue_join(weft_queue_t *q) {
    weft_task_t *t;
    qwaiter_t w;
    int rc = enter_task(q, &t);
    if (rc < 0)
        return rc;
    if (q->unfinished == 0)
        return 0;
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    rc = wait_on(q, &q->joiners, &w, t);
    if (w.state == QW_DONE && rc >= 0)
        return 0;
    return rc < 0 ? rc : WEFT_ECANCELED;
}

void weft_queue_shutdown(weft_queue_t *q, int immediate) {
    if (!q || enter_any(q) < 0)
        return;
    q->shutdown = true;
    if (immediate) {
        q->immediate = true;
        q->reserved = 0; /* woken getters find the queue shut down */
        while (q->len) {
            (void)store_pop(q);
            if (q->unfinished > 0)
                q->unfinished--;
        }
        if (q->unfinished == 0)
            serve_all(&q->joiners, QW_DONE, 0);
    }
    /* Getters wait only while no item is free, so in both modes they are done waiting. */
    serve_all(&q->getters, QW_SHUTDOWN, WEFT_EQUEUESHUTDOWN);
    serve_all(&q->putters, QW_SHUTDOWN, WEFT_EQUEUESHUTDOWN);
}
