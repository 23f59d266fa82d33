/* run_coroutine_threadsafe and its concurrent future: a task created on a loop at another
 * thread's request, whose outcome that thread (or a task of any loop) waits for.
 *
 * The future's state is under its mutex. The loop side holds a reference from the request
 * until the task's outcome is recorded; a cancellation request posted to the loop holds one
 * until it has run. Tasks awaiting the future from other loops wait in a list of nodes on their
 * stacks, woken as in tsqueue.c (posted to their loop under the future's mutex). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/internal.h"

typedef struct awaiter awaiter_t;
struct awaiter {
    awaiter_t *next;
    weft_task_t *task;
    weft_loop_t *loop;
    weft__work_t work;
    bool linked, delivered;
    struct weft_cfuture *cf;
};

struct weft_cfuture {
    _Atomic int refs;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done, cancel_requested, cancel_posted;
    int code;
    void *value;
    char *msg;
    awaiter_t *awaiters;
    /* Loop side. */
    weft_loop_t *loop;
    weft_task_t *task;             /* set under lock once created */
    weft_task_fn fn;
    void *arg;
    char *name;
    size_t stack_size;
    weft__work_t spawn, cancel;
    weft__waiter_t on_done;
};

static void cf_unref(weft_cfuture_t *cf) {
    if (atomic_fetch_sub_explicit(&cf->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_cond_destroy(&cf->cond);
    pthread_mutex_destroy(&cf->lock);
    free(cf->msg);
    free(cf->name);
    free(cf);
}

void weft_cfuture_unref(weft_cfuture_t *cf) {
    if (cf)
        cf_unref(cf);
}

static void awaiter_run(weft__work_t *w) {
    awaiter_t *a = weft__container_of(w, awaiter_t, work);
    a->delivered = true;
    if (weft__task_waiting(a->task))
        weft__task_wake(a->task, 0);
}

/* Records the outcome (msg is taken) and wakes every waiter. Then drops the loop's reference. */
static void complete(weft_cfuture_t *cf, int code, void *value, char *msg) {
    pthread_mutex_lock(&cf->lock);
    cf->done = true;
    cf->code = code;
    cf->value = value;
    cf->msg = msg;
    for (awaiter_t *a = cf->awaiters; a; a = a->next) {
        a->linked = false;
        if (weft__loop_post(a->loop, &a->work) < 0)
            abort(); /* an awaiting task leaves the list before its loop closes */
    }
    cf->awaiters = NULL;
    pthread_cond_broadcast(&cf->cond);
    pthread_mutex_unlock(&cf->lock);
    cf_unref(cf);
}

static void task_done(weft__waiter_t *w, weft_future_t *t) {
    weft_cfuture_t *cf = weft__container_of(w, weft_cfuture_t, on_done);
    void *value = NULL;
    int code = weft__future_outcome(t, &value);
    const char *m = code < 0 ? weft_future_error_message(t) : NULL;
    char *msg = m ? weft__strdup(m) : NULL;
    pthread_mutex_lock(&cf->lock);
    cf->task = NULL;
    pthread_mutex_unlock(&cf->lock);
    weft__unref(t);
    complete(cf, code, value, msg);
}

static void spawn_run(weft__work_t *w) {
    weft_cfuture_t *cf = weft__container_of(w, weft_cfuture_t, spawn);
    weft_task_options_t o = {cf->name, cf->stack_size};
    weft_task_t *t;
    int rc;
    if (cf->loop->closed) {
        complete(cf, WEFT_ESHUTDOWN, NULL, weft__strdup("the loop closed before the task ran"));
        return;
    }
    if ((rc = weft_loop_create_task_at(NULL, cf->loop, &t, cf->fn, cf->arg, &o)) < 0) {
        complete(cf, rc, NULL, NULL);
        return;
    }
    cf->on_done.fire = task_done;
    weft__waiter_add(t, &cf->on_done);
    pthread_mutex_lock(&cf->lock);
    cf->task = t;
    if (cf->cancel_requested)
        weft_cancel(t, NULL);
    pthread_mutex_unlock(&cf->lock);
}

static void cancel_run(weft__work_t *w) {
    weft_cfuture_t *cf = weft__container_of(w, weft_cfuture_t, cancel);
    if (!cf->loop->closed) {
        pthread_mutex_lock(&cf->lock);
        if (cf->task)
            weft_cancel(cf->task, NULL);
        pthread_mutex_unlock(&cf->lock);
    }
    cf_unref(cf);
}

int weft_run_coroutine_threadsafe(weft_loop_t *loop, weft_task_fn fn, void *arg,
                                  const weft_task_options_t *opts, weft_cfuture_t **out) {
    weft_cfuture_t *cf;
    pthread_condattr_t attr;
    int rc;
    if (!loop || !fn || !out)
        return WEFT_EINVAL;
    if (!(cf = calloc(1, sizeof *cf)))
        return WEFT_ENOMEM;
    if (opts && opts->name && !(cf->name = strdup(opts->name))) {
        free(cf);
        return WEFT_ENOMEM;
    }
    pthread_mutex_init(&cf->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cf->cond, &attr);
    pthread_condattr_destroy(&attr);
    atomic_init(&cf->refs, 2); /* the caller's and the loop's */
    cf->loop = loop;
    cf->fn = fn;
    cf->arg = arg;
    cf->stack_size = opts ? opts->stack_size : 0;
    cf->spawn.run = spawn_run;
    cf->cancel.run = cancel_run;
    if ((rc = weft__loop_post(loop, &cf->spawn)) < 0) {
        atomic_store(&cf->refs, 1);
        cf_unref(cf);
        return rc;
    }
    *out = cf;
    return 0;
}

int weft_cfuture_cancel(weft_cfuture_t *cf) {
    int rc = 0;
    pthread_mutex_lock(&cf->lock);
    if (!cf->done) {
        rc = 1;
        cf->cancel_requested = true;
        /* Before the task exists, spawn_run sees the request; after, the loop is asked. */
        if (cf->task && !cf->cancel_posted) {
            cf->cancel_posted = true;
            atomic_fetch_add_explicit(&cf->refs, 1, memory_order_relaxed);
            if (weft__loop_post(cf->loop, &cf->cancel) < 0)
                atomic_fetch_sub_explicit(&cf->refs, 1, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&cf->lock);
    return rc;
}

int weft_cfuture_done(const weft_cfuture_t *cf) {
    weft_cfuture_t *m = (weft_cfuture_t *)cf;
    int done;
    pthread_mutex_lock(&m->lock);
    done = m->done;
    pthread_mutex_unlock(&m->lock);
    return done;
}

int weft_cfuture_cancelled(const weft_cfuture_t *cf) {
    weft_cfuture_t *m = (weft_cfuture_t *)cf;
    int c;
    pthread_mutex_lock(&m->lock);
    c = m->done && m->code == WEFT_ECANCELED;
    pthread_mutex_unlock(&m->lock);
    return c;
}

const char *weft_cfuture_error_message(const weft_cfuture_t *cf) {
    weft_cfuture_t *m = (weft_cfuture_t *)cf;
    const char *msg;
    pthread_mutex_lock(&m->lock);
    msg = m->done && m->code < 0 ? m->msg : NULL;
    pthread_mutex_unlock(&m->lock);
    return msg;
}

/* Under cf->lock, once done. */
static int outcome(weft_cfuture_t *cf, void **value) {
    if (cf->code < 0) {
        weft__set_errmsg(cf->msg ? cf->msg : weft_strerror(cf->code));
        return cf->code;
    }
    if (value)
        *value = cf->value;
    return 0;
}

int weft_cfuture_result(weft_cfuture_t *cf, double timeout, void **value) {
    struct timespec dl;
    int rc = 0;
    if (!cf || timeout != timeout)
        return WEFT_EINVAL;
    pthread_mutex_lock(&cf->lock);
    if (!cf->done && weft__tls_loop == cf->loop) {
        pthread_mutex_unlock(&cf->lock);
        return WEFT_EDEADLK; /* the loop that must complete it is this thread's */
    }
    if (timeout < WEFT_NEVER)
        weft__deadline(&dl, timeout);
    while (!cf->done && rc != ETIMEDOUT)
        rc = timeout < WEFT_NEVER ? pthread_cond_timedwait(&cf->cond, &cf->lock, &dl)
                                  : pthread_cond_wait(&cf->cond, &cf->lock);
    rc = cf->done ? outcome(cf, value) : WEFT_ETIMEDOUT;
    pthread_mutex_unlock(&cf->lock);
    return rc;
}

/* Loop closing while a task awaits: off the list, or out of its inbox. */
static void await_abort(weft__run_t *run, void *arg) {
    awaiter_t *a = arg;
    weft_cfuture_t *cf = a->cf;
    (void)run;
    pthread_mutex_lock(&cf->lock);
    if (a->linked) {
        for (awaiter_t **p = &cf->awaiters; *p; p = &(*p)->next)
            if (*p == a) {
                *p = a->next;
                break;
            }
    } else {
        weft__loop_unpost(a->loop, &a->work);
    }
    a->loop->nexternal--;
    pthread_mutex_unlock(&cf->lock);
    cf_unref(cf);
}

int weft_cfuture_await(weft_cfuture_t *cf, void **value) {
    weft_task_t *t = weft__current();
    awaiter_t a = {0};
    int rc;
    if (!cf)
        return WEFT_EINVAL;
    if (!t)
        return WEFT_EPERM;
    pthread_mutex_lock(&cf->lock);
    if (cf->done) {
        rc = outcome(cf, value);
        pthread_mutex_unlock(&cf->lock);
        return rc;
    }
    if (weft__cancel_visible(t)) {
        pthread_mutex_unlock(&cf->lock);
        return WEFT_ECANCELED;
    }
    a.task = t;
    a.loop = t->loop;
    a.work.run = awaiter_run;
    a.cf = cf;
    a.linked = true;
    a.next = cf->awaiters;
    cf->awaiters = &a;
    atomic_fetch_add_explicit(&cf->refs, 1, memory_order_relaxed); /* kept while waiting */
    t->run->abort_wait = await_abort;
    t->run->abort_arg = &a;
    t->loop->nexternal++; /* completed from another thread: not a deadlock */
    WEFT__WAITING(t, "concurrent future", cf);
    pthread_mutex_unlock(&cf->lock);

    rc = weft__suspend(t);

    pthread_mutex_lock(&cf->lock);
    if (!a.delivered) {
        if (a.linked) {
            for (awaiter_t **p = &cf->awaiters; *p; p = &(*p)->next)
                if (*p == &a) {
                    *p = a.next;
                    break;
                }
        } else if (!weft__loop_unpost(a.loop, &a.work)) {
            pthread_mutex_unlock(&cf->lock);
            while (!a.delivered)
                weft__suspend_raw(t);
            pthread_mutex_lock(&cf->lock);
        }
    }
    t->run->abort_wait = NULL;
    t->loop->nexternal--;
    /* Cancelled: -ECANCELED even if it completed meanwhile (cf's work is not cancelled). */
    if (rc >= 0)
        rc = cf->done ? outcome(cf, value) : WEFT_ECANCELED;
    pthread_mutex_unlock(&cf->lock);
    cf_unref(cf);
    return rc;
}
