/* asyncio.Condition over a lock of its own or a given one. wait() releases the lock, waits for
 * a notify, and takes the lock back before it returns, even when cancelled (asyncio's rule:
 * code after a wait always holds the lock). A notified waiter that is cancelled before it runs
 * passes its notification on to the next waiter, as asyncio 3.12+ does, so notify(1) is never
 * lost to a cancellation. */
#include <stdlib.h>

#include "wait.h"

struct weft_condition {
    weft_loop_t *loop;
    weft_lock_t *lock;       /* &own, or the caller's (which must outlive the condition) */
    weft__wlist_t waiters;   /* only those not notified yet: notify(n) counts these */
    weft_lock_t own;
    size_t users;            /* tasks inside weft_condition_wait */
};

static size_t cond_notify(weft_condition_t *c, size_t n) {
    size_t woken = 0;
    while (woken < n && weft__wlist_grant_first(&c->waiters))
        woken++;
    return woken;
}

int weft_condition_new(weft_condition_t **cond, weft_lock_t *lock) {
    weft_condition_t *c;
    weft_loop_t *loop = weft__tls_loop;
    if (!cond)
        return WEFT_EINVAL;
    if (!loop)
        return WEFT_EPERM;
    if (lock && lock->loop != loop)
        return WEFT_EINVAL;
    if (!(c = malloc(sizeof *c)))
        return WEFT_ENOMEM;
    c->loop = loop;
    loop->refs++;
    weft__wlist_init(&c->waiters);
    c->users = 0;
    if (lock) {
        c->lock = lock;
    } else {
        weft__lock_init(&c->own, loop);
        c->lock = &c->own;
    }
    *cond = c;
    return 0;
}

int weft_condition_free(weft_condition_t *c) {
    if (!c)
        return 0;
    if (!weft__wlist_empty(&c->waiters) || c->users ||
        (c->lock == &c->own && (!weft__wlist_empty(&c->own.waiters) || c->own.users)))
        return WEFT_EBUSY;
    if (c->lock == &c->own)
        weft__lock_fini(&c->own);
    weft__loop_unref(c->loop);
    free(c);
    return 0;
}

int weft_condition_acquire(weft_condition_t *c) {
    return c ? weft_lock_acquire(c->lock) : WEFT_EINVAL;
}

int weft_condition_release(weft_condition_t *c) {
    return c ? weft_lock_release(c->lock) : WEFT_EINVAL;
}

/* The calling task, if it holds c's lock. */
static int cond_holder(weft_condition_t *c, weft_task_t **t) {
    int rc;
    if (!c)
        return WEFT_EINVAL;
    if ((rc = weft__sync_task(c->loop, t)) < 0)
        return rc;
    return c->lock->owner == (*t)->id ? 0 : WEFT_EPERM;
}

int weft_condition_wait(weft_condition_t *c) {
    weft__wnode_t n;
    weft_task_t *t;
    int rc, notified;
    if ((rc = cond_holder(c, &t)) < 0)
        return rc;
    /* Cancelled already: return holding the lock, as a release, a failed wait and the
     * re-acquire would end anyway. */
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    weft__lock_hand_off(c->lock);
    c->users++;
    WEFT__WAITING(t, "condition", c);
    rc = weft__wlist_wait(&c->waiters, &n, t, c, false, weft__wnode_abort_unlink, &c->users);
    notified = n.granted;
    /* Cannot fail: t does not hold the lock, and the wait ends only with it. */
    weft__lock_acquire(c->lock, t, true, &c->users);
    c->users--;
    if (rc == WEFT_ECANCELED || weft__cancel_visible(t)) {
        if (notified)
            cond_notify(c, 1);
        return WEFT_ECANCELED;
    }
    return 0;
}

int weft_condition_wait_for(weft_condition_t *c, weft_predicate_fn pred, void *arg) {
    weft_task_t *t;
    int rc;
    if (!pred)
        return WEFT_EINVAL;
    if ((rc = cond_holder(c, &t)) < 0)
        return rc;
    while (!pred(arg))
        if ((rc = weft_condition_wait(c)) < 0)
            return rc;
    return 0;
}

int weft_condition_notify(weft_condition_t *c, size_t n) {
    weft_task_t *t;
    int rc;
    if ((rc = cond_holder(c, &t)) < 0)
        return rc;
    return (int)cond_notify(c, n);
}

int weft_condition_notify_all(weft_condition_t *c) {
    weft_task_t *t;
    int rc;
    if ((rc = cond_holder(c, &t)) < 0)
        return rc;
    return (int)weft__wlist_grant_all(&c->waiters);
}
