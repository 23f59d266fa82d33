/* Private to src/sync: the FIFO of tasks waiting on a synchronization object, and the lock
 * internals that Condition shares.
 *
 * A waiter node lives on the waiting task's stack for the length of one suspension, so
 * waiting never allocates. A waker takes a node off the list (it never wakes a node twice),
 * marks it `granted` and wakes its task; what was granted (a lock, a permit, a notification)
 * is the node's object's business. A task cancelled while it waits finds its node still
 * linked and takes it off itself. A task abandoned at loop close runs its run->abort_wait,
 * which unlinks the node and passes on anything it had been granted. */
#ifndef WEFT_SYNC_WAIT_H
#define WEFT_SYNC_WAIT_H

#include "../core/internal.h"
#include "../core/list.h"

typedef struct weft__wnode weft__wnode_t;
typedef struct weft__wlist weft__wlist_t;

struct weft__wnode {
    weft__list_t link;       /* in its wlist; points at itself once taken off */
    weft_task_t *task;
    void *obj;               /* the object waited on, for abort_wait */
    size_t *users;           /* the owner's count of tasks inside its calls (see below) */
    int granted;             /* set by the waker before it wakes the task */
};

/* Each object counts the tasks inside its blocking calls, from entry to return, so that free()
 * refuses (-EBUSY) while one is suspended, including one already granted that has not run yet
 * and will still touch the object. The public call counts; the node carries the counter so that
 * a task abandoned at loop close is uncounted by its abort function. */
static inline void weft__wnode_uncount(weft__wnode_t *n) {
    if (n->users)
        (*n->users)--;
}

struct weft__wlist {
    weft__list_t fifo;       /* of weft__wnode_t, oldest first */
};

typedef void (*weft__abort_fn)(weft__run_t *run, void *arg);

static inline void weft__wlist_init(weft__wlist_t *l) { weft__list_init(&l->fifo); }

static inline bool weft__wlist_empty(const weft__wlist_t *l) {
    return weft__list_empty(&l->fifo);
}

/* Still queued: no waker took it (a cancelled task's node stays queued until the task runs). */
static inline bool weft__wnode_linked(const weft__wnode_t *n) {
    return weft__list_linked(&n->link);
}

/* Does nothing if `n` is off its list already. */
static inline void weft__wlist_unlink(weft__wnode_t *n) { weft__list_remove(&n->link); }

/* Takes the first waiter off `l`, grants it and wakes its task. Returns it, or NULL if none
 * waits. The node stays valid until its task runs again: use it before the next suspension. */
static inline weft__wnode_t *weft__wlist_grant_first(weft__wlist_t *l) {
    weft__wnode_t *n = weft__list_first_entry(&l->fifo, weft__wnode_t, link);
    if (!n)
        return NULL;
    weft__wlist_unlink(n);
    n->granted = 1;
    weft__task_wake(n->task, 0);
    return n;
}

/* Grants every waiter (in FIFO order); returns how many. */
static inline size_t weft__wlist_grant_all(weft__wlist_t *l) {
    size_t n = 0;
    while (weft__wlist_grant_first(l))
        n++;
    return n;
}

/* The abort_wait of nodes that were granted nothing worth passing on. */
void weft__wnode_abort_unlink(weft__run_t *run, void *arg);

/* Queues `n` (task t, object obj) at the tail of `l` and suspends `t` until a waker grants the
 * node or, unless `shielded`, the task is cancelled (a shielded wait ignores cancellation and
 * ends only when granted: Condition's re-acquire). On return the node is unlinked and
 * n->granted tells whether it was granted; the result is the suspension's status: -ECANCELED
 * when a cancellation is visible, even if the node was granted in the same iteration (the
 * caller then passes on what it was granted). The caller has checked weft__cancel_visible()
 * before, so that a cancelled task never queues. */
static inline int weft__wlist_wait(weft__wlist_t *l, weft__wnode_t *n, weft_task_t *t, void *obj,
                                   bool shielded, weft__abort_fn abort_fn, size_t *users) {
    int rc;
    n->task = t;
    n->obj = obj;
    n->users = users;
    n->granted = 0;
    weft__list_push_back(&l->fifo, &n->link);
    t->run->abort_wait = abort_fn;
    t->run->abort_arg = n;
    do
        rc = shielded ? weft__suspend_raw(t) : weft__suspend(t);
    while (!n->granted && (shielded || rc >= 0));
    t->run->abort_wait = NULL;
    weft__wlist_unlink(n);
    return rc;
}

/* ---- the lock, shared with Condition ---------------------------------------------------- */

struct weft_lock {
    weft_loop_t *loop;       /* holds a reference, so the address stays this loop's */
    weft__wlist_t waiters;
    uint64_t owner;          /* the holder's task id (unique in the process), 0 if unlocked */
    size_t users;            /* tasks inside weft_lock_acquire */
};

void weft__lock_init(weft_lock_t *l, weft_loop_t *loop);
void weft__lock_fini(weft_lock_t *l);
/* Acquires for `t`, which runs on l's loop. shielded: the wait ignores cancellation (it still
 * returns -EDEADLK if t holds the lock already). */
/* `users`: the counter the caller counted itself in (uncounted if the task is abandoned). */
int weft__lock_acquire(weft_lock_t *l, weft_task_t *t, bool shielded, size_t *users);
/* Gives the lock to the first waiter, or unlocks it. */
void weft__lock_hand_off(weft_lock_t *l);

/* The running task if it belongs to `loop`: -EPERM outside tasks, -EINVAL from another loop. */
/* A call from another loop's thread or callback, which these objects must ignore. */
static inline bool weft__sync_foreign(const weft_loop_t *loop) {
    return weft__tls_loop && weft__tls_loop != loop;
}

static inline int weft__sync_task(weft_loop_t *loop, weft_task_t **t) {
    *t = weft__current();
    if (!*t)
        return WEFT_EPERM;
    if ((*t)->loop != loop)
        return WEFT_EINVAL;
    return 0;
}

#endif
