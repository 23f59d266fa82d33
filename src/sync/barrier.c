/* asyncio.Barrier (3.11), its state machine without the Condition: a cycle fills until
 * `parties` tasks wait, then drains (the waiters run and leave, each with its arrival index)
 * while newcomers wait for the next cycle; reset() while tasks wait makes them leave with
 * -ENOTRECOVERABLE (resetting) before the barrier fills again; abort() breaks it until reset().
 * A waiter cancelled (or timed out) while the barrier fills just leaves, as in asyncio. */
#include <stdlib.h>

#include "wait.h"

enum { FILLING, DRAINING, RESETTING, BROKEN };

struct weft_barrier {
    weft_loop_t *loop;
    weft__wlist_t filling;   /* counted arrivals waiting for the cycle to complete */
    weft__wlist_t blocked;   /* arrivals waiting for a drain or a reset to end */
    unsigned parties;
    unsigned count;          /* tasks inside: waiting, or woken and not yet gone */
    int state;
    size_t users;            /* tasks inside weft_barrier_wait, counted or blocked */
};

/* A counted task leaves: the last one out of a drain or a reset opens the next cycle. */
static void barrier_exit(weft_barrier_t *b) {
    if (--b->count == 0) {
        if (b->state == DRAINING || b->state == RESETTING)
            b->state = FILLING;
        weft__wlist_grant_all(&b->blocked);
    }
}

static void barrier_abort_filling(weft__run_t *run, void *arg) {
    weft__wnode_t *n = arg;
    (void)run;
    weft__wlist_unlink(n);
    weft__wnode_uncount(n);
    barrier_exit(n->obj);
}

int weft_barrier_new(weft_barrier_t **bp, unsigned parties) {
    weft_barrier_t *b;
    if (!bp || parties < 1)
        return WEFT_EINVAL;
    if (!weft__tls_loop)
        return WEFT_EPERM;
    if (!(b = malloc(sizeof *b)))
        return WEFT_ENOMEM;
    b->loop = weft__tls_loop;
    b->loop->refs++;
    weft__wlist_init(&b->filling);
    weft__wlist_init(&b->blocked);
    b->parties = parties;
    b->count = 0;
    b->users = 0;
    b->state = FILLING;
    *bp = b;
    return 0;
}

int weft_barrier_free(weft_barrier_t *b) {
    if (!b)
        return 0;
    if (b->count || !weft__wlist_empty(&b->blocked) || b->users)
        return WEFT_EBUSY;
    weft__loop_unref(b->loop);
    free(b);
    return 0;
}

int weft_barrier_wait(weft_barrier_t *b) {
    weft__wnode_t n;
    weft_task_t *t;
    unsigned index;
    int rc;
    if (!b)
        return WEFT_EINVAL;
    if ((rc = weft__sync_task(b->loop, &t)) < 0)
        return rc;
    for (;;) { /* wait while the previous cycle drains or resets */
        if (b->state == BROKEN)
            return WEFT_ENOTRECOVERABLE;
        if (b->state == FILLING)
            break;
        if (weft__cancel_visible(t))
            return WEFT_ECANCELED;
        b->users++;
        WEFT__WAITING(t, "barrier (resetting)", b);
        rc = weft__wlist_wait(&b->blocked, &n, t, b, false, weft__wnode_abort_unlink, &b->users);
        b->users--;
        if (rc < 0)
            return rc;
    }
    if (weft__cancel_visible(t)) /* not counted yet: leaves without breaking anything */
        return WEFT_ECANCELED;
    index = b->count++;
    if (index + 1 == b->parties) {
        b->state = DRAINING;
        weft__wlist_grant_all(&b->filling);
        barrier_exit(b);
        return (int)index;
    }
    b->users++;
    WEFT__WAITING(t, "barrier", b);
    rc = weft__wlist_wait(&b->filling, &n, t, b, false, barrier_abort_filling, &b->users);
    b->users--;
    /* Decided now, as asyncio does: an abort or a reset between the release and this task's
     * turn still breaks its wait. */
    if (rc != WEFT_ECANCELED)
        rc = b->state == DRAINING ? (int)index : WEFT_ENOTRECOVERABLE;
    barrier_exit(b);
    return rc;
}

void weft_barrier_reset(weft_barrier_t *b) {
    if (weft__sync_foreign(b->loop))
        return;
    if (b->count > 0) {
        b->state = RESETTING;
        weft__wlist_grant_all(&b->filling);
    } else {
        b->state = FILLING;
        weft__wlist_grant_all(&b->blocked);
    }
}

void weft_barrier_abort(weft_barrier_t *b) {
    if (weft__sync_foreign(b->loop))
        return;
    b->state = BROKEN;
    weft__wlist_grant_all(&b->filling);
    weft__wlist_grant_all(&b->blocked);
}

unsigned weft_barrier_parties(const weft_barrier_t *b) { return b->parties; }
unsigned weft_barrier_n_waiting(const weft_barrier_t *b) {
    return b->state == FILLING ? b->count : 0;
}
int weft_barrier_broken(const weft_barrier_t *b) { return b->state == BROKEN; }
