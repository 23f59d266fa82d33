/* asyncio.Semaphore and BoundedSemaphore. FIFO: a release with waiters hands its permit
 * straight to the first of them (the value stays 0), and while anyone waits an acquire waits
 * too, whatever the value. So the value never goes negative, and "an acquire would wait"
 * (locked) is simply value == 0 or waiters queued. */
#include <limits.h>
#include <stdlib.h>

#include "wait.h"

struct weft_semaphore {
    weft_loop_t *loop;
    weft__wlist_t waiters;
    unsigned value;          /* waiters queued implies 0 */
    unsigned bound;          /* the initial value */
    int bounded;
    size_t users;            /* tasks inside weft_semaphore_acquire */
};

/* One permit back: to the first waiter, or to the value. */
static void sem_give(weft_semaphore_t *s) {
    if (!weft__wlist_grant_first(&s->waiters))
        s->value++;
}

static void sem_abort(weft__run_t *run, void *arg) {
    weft__wnode_t *n = arg;
    (void)run;
    if (weft__wnode_linked(n))
        weft__wlist_unlink(n);
    else if (n->granted)
        sem_give(n->obj);
    weft__wnode_uncount(n);
}

int weft_semaphore_new(weft_semaphore_t **sem, unsigned value, int bounded) {
    weft_semaphore_t *s;
    if (!sem)
        return WEFT_EINVAL;
    if (!weft__tls_loop)
        return WEFT_EPERM;
    if (!(s = malloc(sizeof *s)))
        return WEFT_ENOMEM;
    s->loop = weft__tls_loop;
    s->loop->refs++;
    weft__wlist_init(&s->waiters);
    s->value = s->bound = value;
    s->bounded = bounded != 0;
    s->users = 0;
    *sem = s;
    return 0;
}

int weft_semaphore_free(weft_semaphore_t *s) {
    if (!s)
        return 0;
    if (!weft__wlist_empty(&s->waiters) || s->users)
        return WEFT_EBUSY;
    weft__loop_unref(s->loop);
    free(s);
    return 0;
}

int weft_semaphore_acquire(weft_semaphore_t *s) {
    weft__wnode_t n;
    weft_task_t *t;
    int rc;
    if (!s)
        return WEFT_EINVAL;
    if ((rc = weft__sync_task(s->loop, &t)) < 0)
        return rc;
    if (s->value > 0) {
        s->value--;
        return 0;
    }
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    s->users++;
    WEFT__WAITING(t, "semaphore", s);
    rc = weft__wlist_wait(&s->waiters, &n, t, s, false, sem_abort, &s->users);
    s->users--;
    if (!n.granted)
        return rc;
    if (rc == WEFT_ECANCELED) {
        sem_give(s);
        return WEFT_ECANCELED;
    }
    return 0;
}

/* Any code of the loop's thread may release (a semaphore has no owner), but not a task of
 * another loop. */
int weft_semaphore_release(weft_semaphore_t *s) {
    if (!s || weft__sync_foreign(s->loop))
        return WEFT_EINVAL;
    if (s->value >= (s->bounded ? s->bound : UINT_MAX))
        return WEFT_EOVERFLOW;
    sem_give(s);
    return 0;
}

int weft_semaphore_locked(const weft_semaphore_t *s) {
    return s->value == 0 || !weft__wlist_empty(&s->waiters);
}

unsigned weft_semaphore_value(const weft_semaphore_t *s) { return s->value; }
