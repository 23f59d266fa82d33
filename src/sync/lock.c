/* asyncio.Lock: fair and not reentrant. A release with waiters hands the lock straight to the
 * first of them, so no task that arrives later can take it first, and a waiter cancelled in
 * the iteration it was handed the lock passes it on when it runs. */
#include <stdlib.h>

#include "wait.h"

void weft__wnode_abort_unlink(weft__run_t *run, void *arg) {
    (void)run;
    weft__wlist_unlink(arg);
    weft__wnode_uncount(arg);
}

void weft__lock_init(weft_lock_t *l, weft_loop_t *loop) {
    l->loop = loop;
    loop->refs++;
    weft__wlist_init(&l->waiters);
    l->owner = 0;
    l->users = 0;
}

void weft__lock_fini(weft_lock_t *l) { weft__loop_unref(l->loop); }

void weft__lock_hand_off(weft_lock_t *l) {
    weft__wnode_t *n = weft__wlist_grant_first(&l->waiters);
    l->owner = n ? n->task->id : 0;
}

/* Loop close abandoned a waiter: a lock it was handed and never saw goes to the next one. */
static void lock_abort(weft__run_t *run, void *arg) {
    weft__wnode_t *n = arg;
    weft_lock_t *l = n->obj;
    (void)run;
    if (weft__wnode_linked(n))
        weft__wlist_unlink(n);
    else if (n->granted && l->owner == n->task->id)
        weft__lock_hand_off(l);
    weft__wnode_uncount(n);
}

int weft__lock_acquire(weft_lock_t *l, weft_task_t *t, bool shielded, size_t *users) {
    weft__wnode_t n;
    int rc;
    if (l->owner == t->id)
        return WEFT_EDEADLK;
    if (!l->owner) { /* unlocked implies nobody waits: releases hand off */
        l->owner = t->id;
        return 0;
    }
    if (!shielded && weft__cancel_visible(t))
        return WEFT_ECANCELED;
    WEFT__WAITING(t, "lock", l);
    rc = weft__wlist_wait(&l->waiters, &n, t, l, shielded, lock_abort, users);
    if (!n.granted)
        return rc;
    if (rc == WEFT_ECANCELED && !shielded) {
        weft__lock_hand_off(l);
        return WEFT_ECANCELED;
    }
    return 0;
}

int weft_lock_new(weft_lock_t **lock) {
    weft_lock_t *l;
    if (!lock)
        return WEFT_EINVAL;
    if (!weft__tls_loop)
        return WEFT_EPERM;
    if (!(l = malloc(sizeof *l)))
        return WEFT_ENOMEM;
    weft__lock_init(l, weft__tls_loop);
    *lock = l;
    return 0;
}

int weft_lock_free(weft_lock_t *l) {
    if (!l)
        return 0;
    if (!weft__wlist_empty(&l->waiters) || l->users)
        return WEFT_EBUSY;
    weft__lock_fini(l);
    free(l);
    return 0;
}

int weft_lock_acquire(weft_lock_t *l) {
    weft_task_t *t;
    int rc;
    if (!l)
        return WEFT_EINVAL;
    if ((rc = weft__sync_task(l->loop, &t)) < 0)
        return rc;
    l->users++;
    rc = weft__lock_acquire(l, t, false, &l->users);
    l->users--;
    return rc;
}

int weft_lock_release(weft_lock_t *l) {
    weft_task_t *t;
    int rc;
    if (!l)
        return WEFT_EINVAL;
    if ((rc = weft__sync_task(l->loop, &t)) < 0)
        return rc;
    if (l->owner != t->id)
        return WEFT_EPERM;
    weft__lock_hand_off(l);
    return 0;
}

int weft_lock_locked(const weft_lock_t *l) { return l->owner != 0; }
