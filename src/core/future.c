/* Futures: a value or an error that arrives later, with a list of waiters. Tasks, gathers and
 * shields are futures too (one struct; `kind` says which). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A user's add_done_callback registration. When the future completes it becomes ready work,
 * so user code always runs from the loop, never inline inside set_result(). */
typedef struct donecb {
    weft__waiter_t waiter;
    weft__work_t work;
    weft_done_fn cb;
    void *arg;
    weft_future_t *future;
} donecb_t;

int weft_loop_create_future(weft_loop_t *loop, weft_future_t **future) {
    weft_future_t *f;
    if (!loop || !future)
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(loop);
    f = weft__slab_alloc(&loop->objects);
    if (!f)
        return WEFT_ENOMEM;
    weft__future_init(f, loop, WEFT__FUTURE);
    *future = f;
    return 0;
}

int weft_create_future(weft_future_t **future) {
    if (!weft__tls_loop)
        return WEFT_EPERM;
    return weft_loop_create_future(weft__tls_loop, future);
}

weft_future_t *weft_ref(weft_future_t *f) { return weft__ref(f); }

static void report_unretrieved(weft_future_t *f) {
    char site[300];
    if (f->kind == WEFT__TASK)
        weft__log("Task error was never retrieved: task #%llu '%s': %s (%s)%s",
                  (unsigned long long)f->id, weft_task_name(f),
                  f->msg ? f->msg : weft_strerror(f->code), weft_err_name(f->code),
                  weft__site_suffix(f, site, sizeof site));
    else
        weft__log("Future error was never retrieved: %s (%s)",
                  f->msg ? f->msg : weft_strerror(f->code), weft_err_name(f->code));
}

void weft__future_destroy(weft_future_t *f) {
    weft_loop_t *loop = f->loop;
    if (f->state == WEFT__ERROR && !f->retrieved)
        report_unretrieved(f);
    /* Only user registrations can remain: internal waiters hold a reference. */
    while (f->waiters) {
        donecb_t *d = weft__container_of(f->waiters, donecb_t, waiter);
        f->waiters = d->waiter.next;
        free(d);
    }
    if (f->state != WEFT__RESULT && f->msg)
        free(f->msg);
    switch (f->kind) {
    case WEFT__TASK:
        weft__task_destroy(f);
        break;
    case WEFT__GATHER:
        weft__gather_destroy(f);
        break;
    case WEFT__SHIELD:
        weft__shield_destroy(f);
        break;
    default:
        loop->nfutures--;
        weft__slab_free(&loop->objects, f);
        break;
    }
    weft__loop_unref(loop);
}

void weft_unref(weft_future_t *f) {
    if (f)
        weft__unref(f);
}

static void donecb_run(weft__work_t *w) {
    donecb_t *d = weft__container_of(w, donecb_t, work);
    d->cb(d->future, d->arg);
    weft__unref(d->future);
    free(d);
}

void *weft__done_work_fn(const weft__work_t *w) {
    return w->run == donecb_run
               ? (void *)(uintptr_t)weft__container_of(w, donecb_t, work)->cb
               : NULL;
}

void weft__drop_work(weft__work_t *w) {
    donecb_t *d = weft__container_of(w, donecb_t, work);
    weft__unref(d->future);
    free(d);
}

static void donecb_fire(weft__waiter_t *w, weft_future_t *f) {
    donecb_t *d = weft__container_of(w, donecb_t, waiter);
    if (f->loop->closed) { /* nothing will ever run it (asyncio: "Event loop is closed") */
        free(d);
        return;
    }
    weft__ref(f);
    d->work.run = donecb_run;
    weft__schedule(f->loop, &d->work);
}

void weft__waiter_add(weft_future_t *f, weft__waiter_t *w) {
    w->next = f->waiters;
    f->waiters = w;
}

void weft__waiter_remove(weft_future_t *f, weft__waiter_t *w) {
    for (weft__waiter_t **p = &f->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            return;
        }
}

void weft__future_complete(weft_future_t *f, uint8_t state, int code, void *value, char *msg) {
    weft__waiter_t *w = f->waiters, *rev = NULL;
    if (f->msg && f->msg != msg) /* still pending: a message it had (a cancel message) goes */
        free(f->msg);
    f->state = state;
    f->code = code;
    if (state == WEFT__RESULT)
        f->value = value;
    else
        f->msg = msg;
    if (!w)
        return;
    f->waiters = NULL;
    if (!w->next) { /* one waiter, the common case: nothing to reorder */
        weft__ref(f);
        w->fire(w, f);
        weft__unref(f);
        return;
    }
    /* Registered newest first: reverse so they fire in registration order (asyncio's). */
    while (w) {
        weft__waiter_t *next = w->next;
        w->next = rev;
        rev = w;
        w = next;
    }
    weft__ref(f);
    while (rev) {
        weft__waiter_t *next = rev->next;
        rev->fire(rev, f);
        rev = next;
    }
    weft__unref(f);
}

int weft_future_set_result(weft_future_t *f, void *value) {
    if (!f || f->kind != WEFT__FUTURE)
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(f->loop);
    if (f->state != WEFT__PENDING)
        return WEFT_EALREADY;
    weft__future_complete(f, WEFT__RESULT, 0, value, NULL);
    return 0;
}

int weft_future_set_error(weft_future_t *f, int code, const char *fmt, ...) {
    char *msg = NULL;
    if (!f || f->kind != WEFT__FUTURE || code >= 0)
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(f->loop);
    if (f->state != WEFT__PENDING)
        return WEFT_EALREADY;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        msg = weft__vasprintf(fmt, ap);
        va_end(ap);
        if (!msg)
            return WEFT_ENOMEM;
    }
    if (code == WEFT_ECANCELED)
        weft__future_complete(f, WEFT__CANCELLED, WEFT_ECANCELED, NULL, msg);
    else
        weft__future_complete(f, WEFT__ERROR, code, NULL, msg);
    return 0;
}

int weft_cancel(weft_future_t *f, const char *msg) {
    char *copy = NULL;
    if (!f)
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(f->loop);
    if (f->state != WEFT__PENDING)
        return 0;
    if (f->kind == WEFT__TASK)
        return weft__task_cancel(f, msg, 0);
    if (f->kind == WEFT__GATHER)
        return weft__gather_cancel(f, msg);
    if (msg && !(copy = weft__strdup(msg)))
        return WEFT_ENOMEM;
    weft__future_complete(f, WEFT__CANCELLED, WEFT_ECANCELED, NULL, copy);
    return 1;
}

int weft_future_done(const weft_future_t *f) { return f->state != WEFT__PENDING; }
int weft_future_cancelled(const weft_future_t *f) { return f->state == WEFT__CANCELLED; }

int weft__future_outcome(weft_future_t *f, void **value) {
    switch (f->state) {
    case WEFT__RESULT:
        if (value)
            *value = f->value;
        return 0;
    case WEFT__ERROR:
        f->retrieved = 1;
        return f->code;
    case WEFT__CANCELLED:
        return WEFT_ECANCELED;
    default:
        return WEFT_EINPROGRESS;
    }
}

int weft_future_result(weft_future_t *f, void **value) { return weft__future_outcome(f, value); }

int weft_future_error(weft_future_t *f) {
    if (f->state == WEFT__ERROR) {
        f->retrieved = 1;
        return f->code;
    }
    return f->state == WEFT__CANCELLED ? WEFT_ECANCELED : 0;
}

const char *weft_future_error_message(const weft_future_t *f) {
    if (f->state == WEFT__ERROR)
        return f->msg ? f->msg : weft_strerror(f->code);
    return f->state == WEFT__CANCELLED ? f->msg : NULL;
}

weft_loop_t *weft_future_loop(const weft_future_t *f) { return f->loop; }
int weft_is_task(const weft_future_t *f) { return f->kind == WEFT__TASK; }

int weft_future_add_done_callback(weft_future_t *f, weft_done_fn cb, void *arg) {
    donecb_t *d;
    if (!f || !cb)
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(f->loop);
    if (f->loop->closed)
        return WEFT_ESHUTDOWN;
    d = malloc(sizeof *d);
    if (!d)
        return WEFT_ENOMEM;
    d->waiter.fire = donecb_fire;
    d->cb = cb;
    d->arg = arg;
    d->future = f;
    if (f->state != WEFT__PENDING)
        donecb_fire(&d->waiter, f);
    else
        weft__waiter_add(f, &d->waiter);
    return 0;
}

int weft_future_remove_done_callback(weft_future_t *f, weft_done_fn cb, void *arg) {
    int n = 0;
    weft__waiter_t **p = &f->waiters;
    while (*p) {
        donecb_t *d = weft__container_of(*p, donecb_t, waiter);
        if ((*p)->fire == donecb_fire && d->cb == cb && d->arg == arg) {
            *p = (*p)->next;
            free(d);
            n++;
        } else {
            p = &(*p)->next;
        }
    }
    return n;
}

/* A task waiting in weft_await(): the waiter lives on the task's stack. */
typedef struct await_waiter {
    weft__waiter_t waiter;
    weft_task_t *task;
    weft_future_t *future;
    int abort_refs;      /* references to drop if the task is abandoned mid-wait */
} await_waiter_t;

static void await_fire(weft__waiter_t *w, weft_future_t *f) {
    (void)f;
    weft__task_wake(weft__container_of(w, await_waiter_t, waiter)->task, 0);
}

static void await_abort(weft__run_t *run, void *arg) {
    await_waiter_t *aw = arg;
    (void)run;
    weft__waiter_remove(aw->future, &aw->waiter);
    while (aw->abort_refs-- > 0)
        weft__unref(aw->future);
}

int weft_await(weft_future_t *f, void **value) { return weft__await(f, value, 0); }

int weft__await(weft_future_t *f, void **value, int owned_refs) {
    weft_task_t *t = weft__current();
    int rc;
    if (!t)
        return WEFT_EPERM;
    if (!f || f->loop != t->loop)
        return WEFT_EINVAL;
    if (f == t)
        return WEFT_EDEADLK;
    if (f->state == WEFT__PENDING) {
        await_waiter_t aw = {{NULL, await_fire}, t, f, 1 + owned_refs};
        if (weft__cancel_visible(t))
            return WEFT_ECANCELED;
        weft__ref(f);
        weft__waiter_add(f, &aw.waiter);
        t->run->abort_wait = await_abort;
        t->run->abort_arg = &aw;
        WEFT__WAITING(t, "await", f);
        rc = weft__suspend(t);
        if (rc == WEFT_ECANCELED && f->state == WEFT__PENDING) {
            /* asyncio passes the awaiter's cancellation on to what it awaits, then lets that
             * finish: a cancelled task's clean-up completes before its awaiter moves on. */
            weft_cancel(f, t->msg);
            while (f->state == WEFT__PENDING)
                weft__suspend_raw(t);
        }
        t->run->abort_wait = NULL;
        weft__waiter_remove(f, &aw.waiter);
        weft__unref(f);
        if (rc == WEFT_ECANCELED || weft__cancel_visible(t))
            return WEFT_ECANCELED;
    }
    rc = weft__future_outcome(f, value);
    if (rc < 0)
        weft__set_errmsg(weft_future_error_message(f));
    return rc;
}

char *weft__vasprintf(const char *fmt, va_list ap) {
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

char *weft__strdup(const char *s) { return s ? strdup(s) : NULL; }
