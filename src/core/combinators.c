/* gather, shield, wait, as_completed and TaskGroup: futures that watch other futures. Their
 * waiters run inline when a child completes and only record or schedule: no user code runs
 * from inside another future's completion. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- gather ------------------------------------------------------------------------------ */

typedef struct gather gather_t;

/* One per child, registered on the child while it is pending. The gather holds a reference
 * to the child only as long as that: a child that completed is dropped there and then, while
 * it is still in cache, so a gather of a million tasks makes no extra pass over them. */
typedef struct gather_waiter {
    weft__waiter_t waiter;
    gather_t *g;
    weft_future_t *child;        /* NULL once it has completed */
} gather_waiter_t;

struct gather {
    struct weft_future fut;          /* first: a gather is a future */
    size_t n, remaining;
    void **results;                  /* the future's value; may point at a caller's array */
    void **own_results;
    int *codes;                      /* return-exceptions mode */
    gather_waiter_t *waiters;
    int flags;
    bool cancel_requested;
};

static char *copy_msg(weft_future_t *f) {
    const char *m = weft_future_error_message(f);
    return m ? weft__strdup(m) : NULL;
}

static void gather_record(gather_t *g, size_t i, weft_future_t *child) {
    weft_future_t *outer = &g->fut;
    g->remaining--;
    if (child->state == WEFT__ERROR)
        child->retrieved = 1; /* gather takes responsibility for every child's error */
    if (g->flags & WEFT_GATHER_RETURN_EXCEPTIONS) {
        g->codes[i] = weft__future_outcome(child, NULL);
        if (g->results)
            g->results[i] = child->state == WEFT__RESULT ? child->value : NULL;
    } else if (child->state == WEFT__RESULT) {
        if (g->results)
            g->results[i] = child->value;
    } else if (outer->state == WEFT__PENDING) {
        /* The first error completes the gather at once; the other children keep running. */
        if (child->state == WEFT__CANCELLED)
            weft__future_complete(outer, WEFT__CANCELLED, WEFT_ECANCELED, NULL, copy_msg(child));
        else
            weft__future_complete(outer, WEFT__ERROR, child->code, NULL, copy_msg(child));
        return;
    }
    if (g->remaining == 0 && outer->state == WEFT__PENDING) {
        if (g->cancel_requested)
            weft__future_complete(outer, WEFT__CANCELLED, WEFT_ECANCELED, NULL, NULL);
        else
            weft__future_complete(outer, WEFT__RESULT, 0, g->results, NULL);
    }
}

static void gather_child_done(weft__waiter_t *w, weft_future_t *child) {
    gather_waiter_t *gw = weft__container_of(w, gather_waiter_t, waiter);
    gather_t *g = gw->g;
    gw->child = NULL;
    gather_record(g, (size_t)(gw - g->waiters), child);
    weft__unref(child);
}

/* A gather that never became a future: what gather_new allocated. */
static int gather_drop(gather_t *g, int rc) {
    free(g->waiters);
    free(g->codes);
    free(g->own_results);
    free(g);
    return rc;
}

static int gather_new(weft_loop_t *loop, weft_future_t *const *fs, size_t n, int flags,
                      void **user_results, weft_future_t **out) {
    gather_t *g;
    size_t ndone = 0;
    if (!loop || (n && !fs) || !out)
        return WEFT_EINVAL;
    if (loop->closed)
        return WEFT_ESHUTDOWN;
    g = calloc(1, sizeof *g);
    if (!g)
        return WEFT_ENOMEM;
    g->n = g->remaining = n;
    g->flags = flags;
    g->waiters = malloc((n ? n : 1) * sizeof *g->waiters);
    g->codes = flags & WEFT_GATHER_RETURN_EXCEPTIONS ? calloc(n ? n : 1, sizeof *g->codes) : NULL;
    if (user_results)
        g->results = user_results;
    else
        g->results = g->own_results = calloc(n ? n : 1, sizeof *g->results);
    if (!g->waiters || !g->results || (flags & WEFT_GATHER_RETURN_EXCEPTIONS && !g->codes))
        return gather_drop(g, WEFT_ENOMEM);
    /* One pass over the children checks them and watches the pending ones: a million tasks
     * created just before are mostly out of cache, and each pass over them costs a few ms.
     * Nothing can complete meanwhile, so a bad child found late is undone without a trace. */
    for (size_t i = 0; i < n; i++) {
        gather_waiter_t *gw = &g->waiters[i];
        weft_future_t *child = fs[i];
        if (!child || child->loop != loop) {
            while (i-- > 0)
                if (g->waiters[i].child) {
                    weft__waiter_remove(g->waiters[i].child, &g->waiters[i].waiter);
                    weft__unref(g->waiters[i].child);
                }
            return gather_drop(g, WEFT_EINVAL);
        }
        gw->waiter.fire = gather_child_done;
        gw->g = g;
        gw->child = NULL;
        if (child->state == WEFT__PENDING) {
            gw->child = weft__ref(child);
            weft__waiter_add(child, &gw->waiter);
        } else {
            ndone++;
        }
    }
    weft__future_init(&g->fut, loop, WEFT__GATHER);
    /* Children already done are counted now, in argument order. */
    for (size_t i = 0; ndone && i < n; i++)
        if (!g->waiters[i].child) {
            gather_record(g, i, fs[i]);
            ndone--;
        }
    if (n == 0)
        weft__future_complete(&g->fut, WEFT__RESULT, 0, g->results, NULL);
    *out = &g->fut;
    return 0;
}

int weft_loop_gather(weft_loop_t *loop, weft_future_t *const *fs, size_t n, int flags,
                     weft_future_t **out) {
    return gather_new(loop, fs, n, flags, NULL, out);
}

const int *weft_gather_codes(const weft_future_t *f) {
    return f->kind == WEFT__GATHER ? ((const gather_t *)f)->codes : NULL;
}

int weft__gather_cancel(weft_future_t *f, const char *msg) {
    gather_t *g = (gather_t *)f;
    int any = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->waiters[i].child && weft_cancel(g->waiters[i].child, msg) > 0)
            any = 1;
    if (any)
        g->cancel_requested = true;
    return any;
}

void weft__gather_destroy(weft_future_t *f) {
    gather_t *g = (gather_t *)f;
    for (size_t i = 0; i < g->n; i++) {
        weft_future_t *child = g->waiters[i].child;
        if (child) {
            weft__waiter_remove(child, &g->waiters[i].waiter);
            /* asyncio's gather retrieves the errors of children that fail after it is done;
             * a child it stops watching is still its responsibility. */
            child->retrieved = 1;
            weft__unref(child);
        }
    }
    f->loop->nfutures--;
    free(g->waiters);
    free(g->codes);
    free(g->own_results);
    free(g);
}

static int gather_and_wait(weft_future_t *const *fs, size_t n, void **results, int *codes,
                           int flags) {
    weft_task_t *t = weft__current();
    weft_future_t *g;
    int rc;
    if (!t)
        return WEFT_EPERM;
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    rc = gather_new(t->loop, fs, n, flags, results, &g);
    if (rc < 0)
        return rc;
    rc = weft__await(g, NULL, 1); /* our reference goes too if the task is abandoned */
    if (codes && ((gather_t *)g)->codes)
        memcpy(codes, ((gather_t *)g)->codes, n * sizeof *codes);
    /* Children still running after a first error must not write into the caller's array. */
    ((gather_t *)g)->results = NULL;
    weft__unref(g);
    return rc;
}

int weft_gather(weft_future_t *const *fs, size_t n, void **results) {
    return gather_and_wait(fs, n, results, NULL, 0);
}

int weft_gather_all(weft_future_t *const *fs, size_t n, void **results, int *codes) {
    return gather_and_wait(fs, n, results, codes, WEFT_GATHER_RETURN_EXCEPTIONS);
}

/* ---- shield ------------------------------------------------------------------------------ */

typedef struct shield {
    struct weft_future fut;
    weft_future_t *inner;
    weft__waiter_t waiter;
} shield_t;

static void shield_inner_done(weft__waiter_t *w, weft_future_t *inner) {
    shield_t *s = weft__container_of(w, shield_t, waiter);
    weft_future_t *outer = &s->fut;
    if (inner->state == WEFT__ERROR)
        inner->retrieved = 1;
    if (outer->state != WEFT__PENDING)
        return;
    weft__future_complete(outer, inner->state, inner->code, inner->value, copy_msg(inner));
}

int weft_shield(weft_future_t *inner, weft_future_t **outer) {
    shield_t *s;
    if (!inner || !outer)
        return WEFT_EINVAL;
    if (inner->state != WEFT__PENDING) { /* asyncio returns the inner future itself */
        *outer = weft__ref(inner);
        return 0;
    }
    s = malloc(sizeof *s);
    if (!s)
        return WEFT_ENOMEM;
    weft__future_init(&s->fut, inner->loop, WEFT__SHIELD);
    s->inner = weft__ref(inner);
    s->waiter.fire = shield_inner_done;
    weft__waiter_add(inner, &s->waiter);
    *outer = &s->fut;
    return 0;
}

void weft__shield_destroy(weft_future_t *f) {
    shield_t *s = (shield_t *)f;
    if (s->inner->state == WEFT__PENDING)
        weft__waiter_remove(s->inner, &s->waiter);
    weft__unref(s->inner);
    f->loop->nfutures--;
    free(s);
}

/* ---- wait -------------------------------------------------------------------------------- */

typedef struct wait_state wait_state_t;

typedef struct wait_waiter {
    weft__waiter_t waiter;
    wait_state_t *ws;
} wait_waiter_t;

struct wait_state {
    weft_task_t *task;
    weft_future_t *const *fs;
    wait_waiter_t *waiters;
    size_t n, ndone;
    int return_when;
};

static bool wait_satisfied(const wait_state_t *ws, const weft_future_t *just_done) {
    if (ws->ndone == ws->n)
        return true;
    if (ws->return_when == WEFT_FIRST_COMPLETED)
        return ws->ndone > 0;
    if (ws->return_when == WEFT_FIRST_EXCEPTION)
        return just_done && just_done->state == WEFT__ERROR;
    return false;
}

static void wait_fire(weft__waiter_t *w, weft_future_t *f) {
    wait_state_t *ws = weft__container_of(w, wait_waiter_t, waiter)->ws;
    ws->ndone++;
    if (wait_satisfied(ws, f))
        weft__task_wake(ws->task, 0);
}

static void wait_unregister(wait_state_t *ws) {
    for (size_t i = 0; i < ws->n; i++)
        if (ws->fs[i]->state == WEFT__PENDING)
            weft__waiter_remove(ws->fs[i], &ws->waiters[i].waiter);
}

static void wait_abort(weft__run_t *run, void *arg) {
    wait_state_t *ws = arg;
    (void)run;
    wait_unregister(ws);
    free(ws->waiters);
}

int weft_wait(weft_future_t *const *fs, size_t n, int return_when, double timeout) {
    weft_task_t *t = weft__current();
    wait_state_t ws = {t, fs, NULL, n, 0, return_when};
    bool satisfied = false;
    int rc = 0;
    if (!t)
        return WEFT_EPERM;
    if ((n && !fs) || return_when < WEFT_ALL_COMPLETED || return_when > WEFT_FIRST_EXCEPTION ||
        timeout != timeout)
        return WEFT_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!fs[i] || fs[i]->loop != t->loop)
            return WEFT_EINVAL;
        if (fs[i]->state != WEFT__PENDING) {
            ws.ndone++;
            satisfied |= wait_satisfied(&ws, fs[i]);
        }
    }
    if (satisfied || ws.ndone == n)
        return (int)ws.ndone;
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    ws.waiters = malloc(n * sizeof *ws.waiters);
    if (!ws.waiters)
        return WEFT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        ws.waiters[i].waiter.fire = wait_fire;
        ws.waiters[i].ws = &ws;
        if (fs[i]->state == WEFT__PENDING)
            weft__waiter_add(fs[i], &ws.waiters[i].waiter);
    }
    if (timeout != WEFT_NEVER)
        rc = weft__timer_start(t->loop, &t->timer, weft__now(t->loop) + timeout,
                               WEFT__TIMER_TASK);
    if (rc == 0) {
        t->run->abort_wait = wait_abort;
        t->run->abort_arg = &ws;
        WEFT__WAITING(t, "wait", NULL);
        rc = weft__suspend(t);
        t->run->abort_wait = NULL;
        weft__timer_stop(t->loop, &t->timer);
    }
    wait_unregister(&ws);
    free(ws.waiters);
    if (rc < 0)
        return rc;
    return (int)ws.ndone;
}

/* ---- as_completed ------------------------------------------------------------------------ */

typedef struct ac_waiter {
    weft__waiter_t waiter;
    weft_as_completed_t *ac;
} ac_waiter_t;

struct weft_as_completed {
    weft_loop_t *loop;
    weft_future_t **fs;
    ac_waiter_t *waiters;
    weft_future_t **done;            /* finished, not yet returned: a FIFO of n slots */
    size_t n, head, tail, returned;
    double deadline;
    weft_task_t *waiting;            /* a task inside next() */
    bool timed_out;
};

/* The deadline passed: futures finishing from now on are not reported (asyncio removes its
 * callbacks at the timeout); the ones that finished before it still are. */
static void ac_time_out(weft_as_completed_t *ac) {
    ac->timed_out = true;
    for (size_t i = 0; i < ac->n; i++)
        if (ac->fs[i]->state == WEFT__PENDING)
            weft__waiter_remove(ac->fs[i], &ac->waiters[i].waiter);
}

static void ac_fire(weft__waiter_t *w, weft_future_t *f) {
    weft_as_completed_t *ac = weft__container_of(w, ac_waiter_t, waiter)->ac;
    if (ac->deadline != WEFT_NEVER && weft__now(ac->loop) >= ac->deadline) {
        ac_time_out(ac);
        return;
    }
    ac->done[ac->tail++] = f;
    if (ac->waiting)
        weft__task_wake(ac->waiting, 0);
}

int weft_as_completed_new(weft_as_completed_t **out, weft_future_t *const *fs, size_t n,
                          double timeout) {
    weft_loop_t *loop;
    weft_as_completed_t *ac;
    if (!out || (n && (!fs || !fs[0])) || timeout != timeout)
        return WEFT_EINVAL;
    loop = n ? fs[0]->loop : weft__tls_loop;
    if (!loop)
        return WEFT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i] || fs[i]->loop != loop)
            return WEFT_EINVAL;
    ac = calloc(1, sizeof *ac);
    if (!ac)
        return WEFT_ENOMEM;
    ac->fs = malloc((n ? n : 1) * sizeof *ac->fs);
    ac->waiters = malloc((n ? n : 1) * sizeof *ac->waiters);
    ac->done = malloc((n ? n : 1) * sizeof *ac->done);
    if (!ac->fs || !ac->waiters || !ac->done) {
        weft_as_completed_free(ac);
        return WEFT_ENOMEM;
    }
    ac->loop = loop;
    ac->n = n;
    ac->deadline = timeout == WEFT_NEVER ? WEFT_NEVER : weft__now(loop) + timeout;
    for (size_t i = 0; i < n; i++) {
        ac->fs[i] = weft__ref(fs[i]);
        ac->waiters[i].waiter.fire = ac_fire;
        ac->waiters[i].ac = ac;
        if (fs[i]->state == WEFT__PENDING)
            weft__waiter_add(fs[i], &ac->waiters[i].waiter);
        else
            ac->done[ac->tail++] = fs[i];
    }
    *out = ac;
    return 0;
}

static void ac_abort(weft__run_t *run, void *arg) {
    (void)run;
    ((weft_as_completed_t *)arg)->waiting = NULL;
}

int weft_as_completed_next(weft_as_completed_t *ac, weft_future_t **f) {
    weft_task_t *t = weft__current();
    int rc = 0;
    if (!t)
        return WEFT_EPERM;
    if (ac->returned == ac->n)
        return 0;
    if (ac->head == ac->tail) {
        if (ac->timed_out)
            return WEFT_ETIMEDOUT;
        if (weft__cancel_visible(t))
            return WEFT_ECANCELED;
        if (ac->deadline != WEFT_NEVER) {
            if (weft__now(ac->loop) >= ac->deadline) {
                ac_time_out(ac);
                return WEFT_ETIMEDOUT;
            }
            rc = weft__timer_start(ac->loop, &t->timer, ac->deadline, WEFT__TIMER_TASK);
            if (rc < 0)
                return rc;
        }
        ac->waiting = t;
        t->run->abort_wait = ac_abort;
        t->run->abort_arg = ac;
        WEFT__WAITING(t, "as_completed", NULL);
        rc = weft__suspend(t);
        t->run->abort_wait = NULL;
        ac->waiting = NULL;
        weft__timer_stop(ac->loop, &t->timer);
        if (rc < 0)
            return rc;
        if (ac->head == ac->tail) { /* woken by the deadline */
            ac_time_out(ac);
            return WEFT_ETIMEDOUT;
        }
    }
    *f = ac->done[ac->head++];
    ac->returned++;
    return 1;
}

void weft_as_completed_free(weft_as_completed_t *ac) {
    if (!ac)
        return;
    for (size_t i = 0; ac->fs && ac->waiters && i < ac->n; i++) {
        if (ac->fs[i]->state == WEFT__PENDING && !ac->timed_out)
            weft__waiter_remove(ac->fs[i], &ac->waiters[i].waiter);
        weft__unref(ac->fs[i]);
    }
    free(ac->fs);
    free(ac->waiters);
    free(ac->done);
    free(ac);
}

/* ---- TaskGroup --------------------------------------------------------------------------- */

typedef struct tg_child {
    weft__waiter_t waiter;
    weft_taskgroup_t *tg;
    weft_task_t *task;
} tg_child_t;

struct weft_taskgroup {
    weft_task_t *parent;
    tg_child_t **children;
    size_t nchildren, cap, npending;
    weft_task_t **errors;
    size_t nerrors;
    bool aborting, exiting, parent_cancel_requested, waiting;
};

static void tg_abort(weft_taskgroup_t *tg) {
    tg->aborting = true;
    for (size_t i = 0; i < tg->nchildren; i++)
        weft_cancel(tg->children[i]->task, NULL);
}

static void tg_child_done(weft__waiter_t *w, weft_future_t *f) {
    tg_child_t *c = weft__container_of(w, tg_child_t, waiter);
    weft_taskgroup_t *tg = c->tg;
    tg->npending--;
    if (f->state == WEFT__ERROR) {
        f->retrieved = 1;
        tg->errors[tg->nerrors++] = weft__ref(f);
        if (!tg->aborting) {
            tg_abort(tg);
            /* The parent stops what it is doing (asyncio cancels it too); wait() takes the
             * cancellation back. */
            if (!tg->parent_cancel_requested && tg->parent->state == WEFT__PENDING) {
                tg->parent_cancel_requested = true;
                weft__task_cancel(tg->parent, NULL, 0);
            }
        }
    }
    if (tg->npending == 0 && tg->waiting)
        weft__task_wake(tg->parent, 0);
}

int weft_taskgroup_new(weft_taskgroup_t **out) {
    weft_task_t *t = weft__current();
    weft_taskgroup_t *tg;
    if (!t)
        return WEFT_EPERM;
    if (!out)
        return WEFT_EINVAL;
    tg = calloc(1, sizeof *tg);
    if (!tg)
        return WEFT_ENOMEM;
    tg->parent = t;
    *out = tg;
    return 0;
}

int weft_taskgroup_create_task(weft_taskgroup_t *tg, weft_task_t **task, weft_task_fn fn,
                               void *arg, const weft_task_options_t *opts) {
    tg_child_t *c;
    int rc;
    if (!tg || !fn)
        return WEFT_EINVAL;
    if (tg->aborting || (tg->exiting && !tg->waiting))
        return WEFT_EBUSY;
    if (tg->nchildren == tg->cap) {
        size_t cap = tg->cap ? tg->cap * 2 : 8;
        tg_child_t **cs = realloc(tg->children, cap * sizeof *cs);
        weft_task_t **es;
        if (!cs)
            return WEFT_ENOMEM;
        tg->children = cs;
        es = realloc(tg->errors, cap * sizeof *es);
        if (!es)
            return WEFT_ENOMEM;
        tg->errors = es;
        tg->cap = cap;
    }
    c = malloc(sizeof *c);
    if (!c)
        return WEFT_ENOMEM;
    rc = weft_loop_create_task(tg->parent->loop, &c->task, fn, arg, opts);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->tg = tg;
    c->waiter.fire = tg_child_done;
    weft__waiter_add(c->task, &c->waiter);
    tg->children[tg->nchildren++] = c;
    tg->npending++;
    if (task)
        *task = weft__ref(c->task);
    return 0;
}

static void tg_wait_abort(weft__run_t *run, void *arg) {
    (void)run;
    ((weft_taskgroup_t *)arg)->waiting = false;
}

static void tg_wait_children(weft_taskgroup_t *tg) {
    weft_task_t *t = tg->parent;
    tg->waiting = true;
    t->run->abort_wait = tg_wait_abort;
    t->run->abort_arg = tg;
    WEFT__WAITING(t, "taskgroup", tg);
    while (tg->npending > 0) {
        /* Cancelled from outside while waiting: cancel the children, keep waiting for them. */
        if (weft__suspend(t) == WEFT_ECANCELED && !tg->aborting)
            tg_abort(tg);
    }
    t->run->abort_wait = NULL;
    tg->waiting = false;
}

int weft_taskgroup_wait(weft_taskgroup_t *tg) {
    weft_task_t *t = weft__current();
    if (!tg || t != tg->parent)
        return WEFT_EINVAL;
    if (tg->exiting)
        return WEFT_EALREADY;
    tg->exiting = true;
    if (weft__cancel_visible(t) && !tg->aborting)
        tg_abort(tg);
    tg_wait_children(tg);
    if (tg->parent_cancel_requested) {
        weft_task_uncancel(t);
        tg->parent_cancel_requested = false;
    }
    if (tg->nerrors) {
        weft__set_errmsg(weft_future_error_message(tg->errors[0]));
        return tg->errors[0]->code;
    }
    return weft__cancel_visible(t) ? WEFT_ECANCELED : 0;
}

size_t weft_taskgroup_error_count(const weft_taskgroup_t *tg) { return tg->nerrors; }

weft_task_t *weft_taskgroup_error(const weft_taskgroup_t *tg, size_t i) {
    return i < tg->nerrors ? tg->errors[i] : NULL;
}

void weft_taskgroup_free(weft_taskgroup_t *tg) {
    if (!tg)
        return;
    if (tg->npending > 0) {
        tg_abort(tg);
        if (weft__current() == tg->parent) {
            weft_shield_begin();
            tg_wait_children(tg);
            weft_shield_end();
        }
    }
    for (size_t i = 0; i < tg->nchildren; i++) {
        tg_child_t *c = tg->children[i];
        if (c->task->state == WEFT__PENDING)
            weft__waiter_remove(c->task, &c->waiter);
        weft__unref(c->task);
        free(c);
    }
    for (size_t i = 0; i < tg->nerrors; i++)
        weft__unref(tg->errors[i]);
    if (tg->parent_cancel_requested)
        weft_task_uncancel(tg->parent);
    free(tg->children);
    free(tg->errors);
    free(tg);
}
