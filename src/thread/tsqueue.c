/* A queue shared by loops and threads: tasks suspend on it, plain threads block on it.
 *
 * One mutex guards everything. Waiters (getters when empty, putters when full) wait in FIFO
 * lists of nodes that live on the waiter's stack; a waker hands over directly (an item to a
 * getter, a free slot to a putter, whose item it inserts), unlinks the node and wakes it: a
 * thread through the node's condition variable, a task by posting the node to the task's loop.
 *
 * A posted node is referenced by its loop's inbox until the loop runs it, so a task woken some
 * other way (cancelled) must not leave the call before that: it takes its node back from the
 * inbox, or, if the loop already has it, waits for it to run. Posting happens under the queue's
 * mutex, so a task that finds its node unlinked knows it is already in the inbox. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <time.h>

#include "../core/internal.h"
#include "../core/list.h"

enum { W_WAITING, W_DONE, W_SHUTDOWN };

typedef struct waiter waiter_t;
struct waiter {
    weft__list_t link;         /* in getters or putters; points at itself once unlinked */
    bool getter;
    int state;                 /* W_*, set by the waker */
    void *item;                /* put: the item to insert; get: the item handed over */
    /* A task waiter. */
    weft_task_t *task;
    weft_loop_t *loop;
    weft__work_t work;         /* posted to loop when woken */
    bool delivered;            /* the loop ran `work` (loop thread only) */
    struct weft_tsqueue *q;
    /* A thread waiter. */
    pthread_cond_t *cond;
};

struct weft_tsqueue {
    pthread_mutex_t lock;
    void **ring;               /* items[head .. head+count) modulo cap */
    size_t head, count, cap, maxsize;
    weft__list_t getters, putters;   /* of waiter_t, oldest first */
    size_t users;              /* inside a blocking call: free() must wait */
    bool shutdown;
};

/* ---- the ring ------------------------------------------------------------------------- */

static int ring_grow(weft_tsqueue_t *q) {
    size_t ncap = q->cap ? q->cap * 2 : 16;
    void **n = malloc(ncap * sizeof *n);
    if (!n)
        return WEFT_ENOMEM;
    for (size_t i = 0; i < q->count; i++)
        n[i] = q->ring[(q->head + i) % q->cap];
    free(q->ring);
    q->ring = n;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

static int ring_push(weft_tsqueue_t *q, void *item) {
    int rc;
    if (q->count == q->cap && (rc = ring_grow(q)) < 0)
        return rc;
    q->ring[(q->head + q->count++) % q->cap] = item;
    return 0;
}

static int ring_push_front(weft_tsqueue_t *q, void *item) {
    int rc;
    if (q->count == q->cap && (rc = ring_grow(q)) < 0)
        return rc;
    q->head = (q->head + q->cap - 1) % q->cap;
    q->ring[q->head] = item;
    q->count++;
    return 0;
}

static void *ring_pop(weft_tsqueue_t *q) {
    void *item = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    return item;
}

static bool full(const weft_tsqueue_t *q) { return q->maxsize && q->count >= q->maxsize; }

/* ---- waking --------------------------------------------------------------------------- */

static void task_waiter_run(weft__work_t *work) {
    waiter_t *w = weft__container_of(work, waiter_t, work);
    w->delivered = true;
    /* Still suspended in the queue call: woken by us. Otherwise it was woken by a cancellation
     * and looks at `delivered` itself. */
    if (weft__task_waiting(w->task))
        weft__task_wake(w->task, 0);
}

/* Under q->lock: w is unlinked and its state set. */
static void wake(waiter_t *w) {
    if (w->cond) {
        pthread_cond_signal(w->cond);
    } else if (weft__loop_post(w->loop, &w->work) < 0) {
        /* Cannot happen: a task's loop closes only after the task has left its wait (abort),
         * which unlinks the node first. */
        abort();
    }
}

/* Under q->lock, after the queue gained an item or lost one: hands items to waiting getters
 * and free slots to waiting putters until neither can proceed. */
static void settle(weft_tsqueue_t *q) {
    for (;;) {
        waiter_t *w;
        if (q->count && (w = weft__list_first_entry(&q->getters, waiter_t, link))) {
            weft__list_remove(&w->link);
            w->item = ring_pop(q);
            w->state = W_DONE;
            wake(w);
        } else if (!full(q) && (w = weft__list_first_entry(&q->putters, waiter_t, link))) {
            weft__list_remove(&w->link);
            if (ring_push(q, w->item) < 0) { /* no memory: let it retry later */
                weft__list_push_back(&q->putters, &w->link);
                return;
            }
            w->state = W_DONE;
            wake(w);
        } else {
            return;
        }
    }
}

/* ---- construction ----------------------------------------------------------------------- */

int weft_tsqueue_new(weft_tsqueue_t **out, size_t maxsize) {
    weft_tsqueue_t *q;
    if (!out)
        return WEFT_EINVAL;
    if (!(q = calloc(1, sizeof *q)))
        return WEFT_ENOMEM;
    if (pthread_mutex_init(&q->lock, NULL) != 0) {
        free(q);
        return WEFT_ENOMEM;
    }
    q->maxsize = maxsize;
    weft__list_init(&q->getters);
    weft__list_init(&q->putters);
    *out = q;
    return 0;
}

int weft_tsqueue_free(weft_tsqueue_t *q) {
    if (!q)
        return 0;
    pthread_mutex_lock(&q->lock);
    if (q->users) {
        pthread_mutex_unlock(&q->lock);
        return WEFT_EBUSY;
    }
    pthread_mutex_unlock(&q->lock);
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    free(q);
    return 0;
}

/* ---- calls that never wait ---------------------------------------------------------------- */

/* Under q->lock. */
static int try_put(weft_tsqueue_t *q, void *item) {
    int rc;
    if (q->shutdown)
        return WEFT_ESHUTDOWN;
    if (full(q) || !weft__list_empty(&q->putters)) /* waiting putters go first */
        return WEFT_EQUEUEFULL;
    if ((rc = ring_push(q, item)) < 0)
        return rc;
    settle(q);
    return 0;
}

static int try_get(weft_tsqueue_t *q, void **item) {
    if (!q->count)
        return q->shutdown ? WEFT_ESHUTDOWN : WEFT_EQUEUEEMPTY;
    *item = ring_pop(q);
    settle(q);
    return 0;
}

int weft_tsqueue_put_nowait(weft_tsqueue_t *q, void *item) {
    int rc;
    if (!q)
        return WEFT_EINVAL;
    pthread_mutex_lock(&q->lock);
    rc = try_put(q, item);
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int weft_tsqueue_get_nowait(weft_tsqueue_t *q, void **item) {
    int rc;
    if (!q || !item)
        return WEFT_EINVAL;
    pthread_mutex_lock(&q->lock);
    rc = try_get(q, item);
    pthread_mutex_unlock(&q->lock);
    return rc;
}

size_t weft_tsqueue_qsize(weft_tsqueue_t *q) {
    size_t n;
    pthread_mutex_lock(&q->lock);
    n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void weft_tsqueue_shutdown(weft_tsqueue_t *q) {
    waiter_t *w;
    pthread_mutex_lock(&q->lock);
    q->shutdown = true;
    while ((w = weft__list_first_entry(&q->putters, waiter_t, link))) {
        weft__list_remove(&w->link);
        w->state = W_SHUTDOWN;
        wake(w);
    }
    /* Getters wait only while the queue is empty: with it shut down, they never get more. */
    while ((w = weft__list_first_entry(&q->getters, waiter_t, link))) {
        weft__list_remove(&w->link);
        w->state = W_SHUTDOWN;
        wake(w);
    }
    pthread_mutex_unlock(&q->lock);
}

/* ---- waiting --------------------------------------------------------------------------- */

/* The loop closes while the task waits: the node must leave the list or the inbox before the
 * stack it lives on goes away. An item handed to a getter goes back to the queue. */
static void task_abort(weft__run_t *run, void *arg) {
    waiter_t *w = arg;
    weft_tsqueue_t *q = w->q;
    (void)run;
    pthread_mutex_lock(&q->lock);
    if (weft__list_linked(&w->link))
        weft__list_remove(&w->link);
    else
        weft__loop_unpost(w->loop, &w->work);
    if (w->getter && w->state == W_DONE && ring_push_front(q, w->item) == 0)
        settle(q);
    q->users--;
    w->loop->nexternal--;
    pthread_mutex_unlock(&q->lock);
}

/* Under q->lock, with w queued: suspends the task until woken. Returns with the lock held and
 * w off the list and out of the inbox; -ECANCELED if cancelled before being served. */
static int task_wait(weft_tsqueue_t *q, waiter_t *w, weft_task_t *t) {
    int rc;
    w->task = t;
    w->loop = t->loop;
    w->work.run = task_waiter_run;
    w->delivered = false;
    w->q = q;
    t->run->abort_wait = task_abort;
    t->run->abort_arg = w;
    /* Another thread may serve it: the loop must wait, not report a deadlock. */
    t->loop->nexternal++;
    WEFT__WAITING(t, w->getter ? "thread-safe queue get" : "thread-safe queue put", q);
    pthread_mutex_unlock(&q->lock);
    rc = weft__suspend(t);
    pthread_mutex_lock(&q->lock);
    if (!w->delivered) {
        if (weft__list_linked(&w->link)) { /* not served: leave */
            weft__list_remove(&w->link);
        } else if (!weft__loop_unpost(w->loop, &w->work)) {
            /* The loop has the node already: it runs this iteration. */
            pthread_mutex_unlock(&q->lock);
            while (!w->delivered)
                weft__suspend_raw(t);
            pthread_mutex_lock(&q->lock);
        }
    }
    t->run->abort_wait = NULL;
    t->loop->nexternal--;
    return w->state == W_WAITING ? (rc < 0 ? rc : WEFT_ECANCELED) : rc;
}

/* Under q->lock, with w queued: blocks the thread until served or the deadline passes. Returns
 * with the lock held and w off the list; -ETIMEDOUT if not served in time. */
static int thread_wait(weft_tsqueue_t *q, waiter_t *w, double timeout) {
    pthread_condattr_t attr;
    pthread_cond_t cond;
    struct timespec dl;
    int rc = 0;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cond, &attr);
    pthread_condattr_destroy(&attr);
    w->cond = &cond;
    if (timeout < WEFT_NEVER)
        weft__deadline(&dl, timeout);
    while (w->state == W_WAITING && rc != ETIMEDOUT)
        rc = timeout < WEFT_NEVER ? pthread_cond_timedwait(&cond, &q->lock, &dl)
                                  : pthread_cond_wait(&cond, &q->lock);
    if (w->state == W_WAITING)
        weft__list_remove(&w->link);
    pthread_cond_destroy(&cond);
    return w->state == W_WAITING ? WEFT_ETIMEDOUT : 0;
}

/* Shared by the four waiting calls: `t` is the calling task, or NULL for a blocking thread. */
static int put_wait(weft_tsqueue_t *q, void *item, weft_task_t *t, double timeout) {
    waiter_t w = {.item = item, .state = W_WAITING};
    int rc;
    pthread_mutex_lock(&q->lock);
    rc = try_put(q, item);
    if (rc != WEFT_EQUEUEFULL || (t && weft__cancel_visible(t)) || (!t && timeout <= 0)) {
        pthread_mutex_unlock(&q->lock);
        return rc == WEFT_EQUEUEFULL ? (t ? WEFT_ECANCELED : WEFT_ETIMEDOUT) : rc;
    }
    weft__list_push_back(&q->putters, &w.link);
    q->users++;
    rc = t ? task_wait(q, &w, t) : thread_wait(q, &w, timeout);
    q->users--;
    pthread_mutex_unlock(&q->lock);
    /* A put whose item went in returns 0 even if a cancellation came meanwhile: it stays
     * pending for the task's next suspension (as weft_queue_put does). */
    if (w.state == W_DONE)
        return 0;
    return w.state == W_SHUTDOWN ? WEFT_ESHUTDOWN : rc;
}

static int get_wait(weft_tsqueue_t *q, void **item, weft_task_t *t, double timeout) {
    waiter_t w = {.state = W_WAITING, .getter = true};
    int rc;
    pthread_mutex_lock(&q->lock);
    rc = try_get(q, item);
    if (rc != WEFT_EQUEUEEMPTY || (t && weft__cancel_visible(t)) || (!t && timeout <= 0)) {
        pthread_mutex_unlock(&q->lock);
        return rc == WEFT_EQUEUEEMPTY ? (t ? WEFT_ECANCELED : WEFT_ETIMEDOUT) : rc;
    }
    weft__list_push_back(&q->getters, &w.link);
    q->users++;
    rc = t ? task_wait(q, &w, t) : thread_wait(q, &w, timeout);
    if (w.state == W_DONE && rc < 0) {
        /* Cancelled after an item was handed over: it goes back to the front, to the next
         * getter, never lost. */
        if (ring_push_front(q, w.item) == 0)
            settle(q);
        else
            rc = 0; /* no memory to put it back: keep it rather than lose it */
    }
    q->users--;
    pthread_mutex_unlock(&q->lock);
    if (w.state == W_DONE && rc == 0)
        *item = w.item;
    return w.state == W_SHUTDOWN ? WEFT_ESHUTDOWN : rc;
}

int weft_tsqueue_put(weft_tsqueue_t *q, void *item) {
    weft_task_t *t = weft__current();
    if (!q)
        return WEFT_EINVAL;
    if (!t)
        return WEFT_EPERM;
    return put_wait(q, item, t, WEFT_NEVER);
}

int weft_tsqueue_get(weft_tsqueue_t *q, void **item) {
    weft_task_t *t = weft__current();
    if (!q || !item)
        return WEFT_EINVAL;
    if (!t)
        return WEFT_EPERM;
    return get_wait(q, item, t, WEFT_NEVER);
}

int weft_tsqueue_put_blocking(weft_tsqueue_t *q, void *item, double timeout) {
    if (!q || timeout != timeout)
        return WEFT_EINVAL;
    return put_wait(q, item, NULL, timeout);
}

int weft_tsqueue_get_blocking(weft_tsqueue_t *q, void **item, double timeout) {
    if (!q || !item || timeout != timeout)
        return WEFT_EINVAL;
    return get_wait(q, item, NULL, timeout);
}
