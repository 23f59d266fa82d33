/* Tasks: stackful coroutines that are futures. A task takes a stack from the loop's pool when
 * it first runs and gives it back the moment its body returns, so a million short tasks reuse a
 * handful of warm stacks. Waking a task = queueing its step; suspending = letting the scheduler
 * pick what runs next (sched_leave), straight from the task's stack when it can. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Task ids are unique in the process. Loops take them in blocks, so creating a task costs no
 * atomic operation. */
#define TASK_ID_BLOCK 4096
static uint64_t next_task_id_block = 1;

static uint64_t task_id(weft_loop_t *loop) {
    if (loop->next_id == loop->end_id) {
        loop->next_id = __atomic_fetch_add(&next_task_id_block, TASK_ID_BLOCK, __ATOMIC_RELAXED);
        loop->end_id = loop->next_id + TASK_ID_BLOCK;
    }
    return loop->next_id++;
}

/* The spawn benchmark's cost is mostly the fresh memory a million tasks touch: keep a task at
 * two cache lines on 64-bit targets (see the union in struct weft_future). */
_Static_assert(sizeof(void *) != 8 || sizeof(struct weft_future) <= 128,
               "a task grew beyond 128 bytes");

weft_task_t *weft__current(void) {
    weft_loop_t *loop = weft__tls_loop;
    return loop ? loop->current : NULL;
}

weft_task_t *weft_current_task(void) { return weft__current(); }

int weft_loop_create_task_at(const weft_site_t *site, weft_loop_t *loop, weft_task_t **task,
                             weft_task_fn fn, void *arg, const weft_task_options_t *opts) {
    weft_task_t *t;
    if (!loop || !fn || (opts && opts->stack_size > UINT32_MAX))
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(loop);
    if (loop->closed)
        return WEFT_ESHUTDOWN;
    t = weft__slab_alloc(&loop->objects);
    if (!t)
        return WEFT_ENOMEM;
    weft__future_init(t, loop, WEFT__TASK);
    t->extra = NULL;
    if ((opts && opts->name) || weft__unlikely(loop->debug || loop->monitor)) {
        weft__task_extra_t *x = weft__task_extra(t);
        if (!x || (opts && opts->name && !(x->name = strdup(opts->name)))) {
            free(x);
            weft__slab_free(&loop->objects, t);
            weft__loop_unref(loop);
            return WEFT_ENOMEM;
        }
        x->site = site;
        /* Ages are for the monitor and debug output: the clock is read only when they are on. */
        if (loop->debug || loop->monitor)
            x->created_ms = weft__created_ms(loop);
    }
    t->body.fn = fn;
    t->body.arg = arg;
    t->run = NULL;
    t->id = task_id(loop);
    t->stack_size = (uint32_t)(opts && opts->stack_size ? opts->stack_size : loop->stack_size);
    t->tstate = WEFT__T_NEW;
    t->all_prev = NULL;
    t->all_next = loop->all_tasks;
    if (loop->all_tasks)
        loop->all_tasks->all_prev = t;
    loop->all_tasks = t;
    loop->ntasks++;
    loop->npending++;
    /* The loop's reference, dropped when the task finishes. */
    if (task) {
        t->refs++;
        *task = t;
    }
    t->work.run = weft__task_step;
    weft__schedule(loop, &t->work);
    return 0;
}

int weft_create_task_at(const weft_site_t *site, weft_task_t **task, weft_task_fn fn, void *arg,
                        const weft_task_options_t *opts) {
    if (!weft__tls_loop)
        return WEFT_EPERM;
    return weft_loop_create_task_at(site, weft__tls_loop, task, fn, arg, opts);
}

/* The functions behind the macros, for callers that cannot use them (other languages). */
int(weft_loop_create_task)(weft_loop_t *loop, weft_task_t **task, weft_task_fn fn, void *arg,
                           const weft_task_options_t *opts) {
    return weft_loop_create_task_at(NULL, loop, task, fn, arg, opts);
}

int(weft_create_task)(weft_task_t **task, weft_task_fn fn, void *arg,
                      const weft_task_options_t *opts) {
    return weft_create_task_at(NULL, task, fn, arg, opts);
}

static void task_finish(weft_task_t *t, int rc, void *value, char *failmsg);

/* Gives the run state (and the stack and context it lives with) to `t`. */
static inline void run_rebind(weft__run_t *run, weft_task_t *t) {
    run->task = t;
    run->scopes = NULL;
    run->errmsg = NULL;
    run->failmsg = NULL;
    run->abort_wait = NULL;
    run->wait_what = NULL;
    run->shield_depth = 0;
    run->cancel_level = 0;
    t->run = run;
}

/* Fills the run state of `t`, which lives at the top of `stack`. */
static weft__run_t *run_bind(weft_task_t *t, const weft__stack_t *stack) {
    weft__run_t *run = (weft__run_t *)(((uintptr_t)stack->hi - sizeof *run) & ~(uintptr_t)63);
    run->stack = *stack;
    run_rebind(run, t);
    return run;
}

/* The task a finishing task can hand its stack to: the next item of this iteration, if it is
 * a task that has not started, wants a stack of the same size and was not cancelled. Taken
 * out of the batch if `take`. */
static weft_task_t *fresh_task_ahead(weft_loop_t *loop, uint32_t stack_size, bool take) {
    weft__work_t *w = loop->batch;
    weft_task_t *next;
    if (!w || w->run != weft__task_step)
        return NULL;
    next = weft__container_of(w, weft_task_t, work);
    if (next->tstate != WEFT__T_NEW || next->cancelling || next->stack_size != stack_size)
        return NULL;
    if (take)
        loop->batch = w->next;
    return next;
}

/* Runs on the task's own stack. When the body returns and the next thing to run is a task that
 * has not started, that task's body runs right here: the stack is given back and taken again
 * in one step, with no switch, which is what a pool handing out its most recently freed stack
 * would do anyway. Short tasks in a row (spawn-and-gather) then cost a function call each. */
static void task_main(void *p) {
    weft_task_t *t = p;
    weft_loop_t *loop = t->loop;
    weft__run_t *run = t->run;
    for (;;) {
        void *value = NULL;
        weft_task_fn fn = t->body.fn;
        void *arg = t->body.arg;
        int rc;
        t->timer.heap_index = WEFT__TIMER_IDLE; /* the body's bytes are the timer's from here */
        rc = fn(arg, &value);
        uint32_t stack_size = t->stack_size;
        char *failmsg;
        if (weft__unlikely(loop->debug)) /* its last step ends here */
            weft__debug_task_left(loop, t);
        if (weft__unlikely(run->scopes != NULL)) {
            /* A scope is part of this stack, which is about to be reused: its timer must go. */
            weft__log("task #%llu '%s' returned with a timeout scope still open",
                      (unsigned long long)t->id, weft_task_name(t));
            for (weft_timeout_t *to = run->scopes; to; to = to->outer)
                weft__timer_stop(loop, &to->timer);
            run->scopes = NULL;
        }
        if (!fresh_task_ahead(loop, stack_size, false)) {
            run->value = value;
            t->code = rc;
            t->tstate = WEFT__T_DONE;
            break; /* the loop finishes it and takes the stack back */
        }
        /* Finish `t` here, as the loop would, keeping the stack. */
        failmsg = run->failmsg;
        if (run->errmsg)
            free(run->errmsg);
        if (weft__timer_armed(&t->timer))
            weft__timer_stop(loop, &t->timer);
        t->run = NULL;
        loop->current = NULL;
        if (rc < 0 && rc != WEFT_ECANCELED && !failmsg)
            failmsg = weft__strdup(weft_strerror(rc));
        task_finish(t, rc, value, failmsg);
        /* Completion runs waiters, which may have cancelled the task ahead: look again. */
        t = fresh_task_ahead(loop, stack_size, true);
        if (!t) {
            loop->orphan = run; /* a stack nobody owns: the loop takes it back */
            break;
        }
        run_rebind(run, t);
        t->tstate = WEFT__T_RUNNING;
        loop->current = t;
        weft__overflow_set_running(&run->stack, t);
    }
    weft__coro_switch_final(&run->coro, &loop->ctx);
}

static int task_start(weft_task_t *t) {
    weft_loop_t *loop = t->loop;
    weft__stack_t stack, body;
    weft__run_t *run;
    int rc = weft__stack_get(loop->stacks, t->stack_size, &stack);
    if (rc < 0)
        return rc;
    /* The run state sits at the top of the stack, in the page the task touches first anyway. */
    run = run_bind(t, &stack);
    body = stack;
    body.hi = (char *)run;
    rc = weft__coro_make(&run->coro, &body, task_main, t);
    if (rc < 0) {
        t->run = NULL;
        weft__stack_put(loop->stacks, &stack);
        return rc;
    }
    return 0;
}

/* Gives the stack back. The run state lives on it, so copy what is still needed first. */
static void task_release_stack(weft_task_t *t) {
    weft__run_t *run = t->run;
    weft__stack_t stack = run->stack;
    weft__timer_stop(t->loop, &t->timer);
    free(run->errmsg);
    weft__coro_release(&run->coro);
    t->run = NULL;
    weft__stack_put(t->loop->stacks, &stack);
}

static void task_finish(weft_task_t *t, int rc, void *value, char *failmsg) {
    weft_loop_t *loop = t->loop;
    if (t->all_prev)
        t->all_prev->all_next = t->all_next;
    else
        loop->all_tasks = t->all_next;
    if (t->all_next)
        t->all_next->all_prev = t->all_prev;
    loop->npending--;
    if (weft__unlikely(weft__task_hidden(t)))
        loop->nhidden_pending--;
    t->tstate = WEFT__T_DONE;
    if (rc == 0) {
        if (failmsg)
            free(failmsg);
        weft__future_complete(t, WEFT__RESULT, 0, value, NULL);
    } else if (rc == WEFT_ECANCELED) {
        if (failmsg)
            free(failmsg);
        weft__future_complete(t, WEFT__CANCELLED, WEFT_ECANCELED, NULL, t->msg);
    } else {
        weft__future_complete(t, WEFT__ERROR, rc, NULL, failmsg);
    }
    weft__unref(t); /* the loop's reference */
}

void weft__task_step(weft__work_t *w) {
    weft_task_t *t = weft__container_of(w, weft_task_t, work);
    weft_loop_t *loop = t->loop;
    if (t->tstate == WEFT__T_NEW) {
        int rc;
        if (t->cancelling > 0) { /* cancelled before it ever ran: the body never starts */
            task_finish(t, WEFT_ECANCELED, NULL, NULL);
            return;
        }
        rc = task_start(t);
        if (rc < 0) {
            task_finish(t, rc, NULL, weft__strdup("could not allocate the task's stack"));
            return;
        }
    }
    t->tstate = WEFT__T_RUNNING;
    loop->current = t;
    weft__overflow_set_running(&t->run->stack, t);
    weft__coro_switch(&loop->ctx, &t->run->coro);
    /* Back on the loop's stack, from whichever task ran last: tasks hand over to each other
     * directly (weft__sched_leave) and come back here only when the loop has work to do. */
    t = loop->current;
    weft__overflow_set_running(NULL, NULL);
    loop->current = NULL;
    if (!t) { /* a task finished in task_main and nothing took its stack */
        weft__run_t *run = loop->orphan;
        weft__stack_t stack = run->stack;
        loop->orphan = NULL;
        weft__coro_release(&run->coro);
        weft__stack_put(loop->stacks, &stack);
        return;
    }
    if (t->tstate == WEFT__T_DONE) {
        char *failmsg = t->run->failmsg;
        void *value = t->run->value;
        int rc = t->code;
        task_release_stack(t);
        if (rc < 0 && rc != WEFT_ECANCELED && !failmsg)
            failmsg = weft__strdup(weft_strerror(rc));
        task_finish(t, rc, value, failmsg);
    }
}

/* The running task `t` stops running (it is waiting, or queued again) and the scheduler picks
 * what runs next. When that is a task (started, or starting now), and the loop has nothing of its own to
 * do (no callback next, no timer armed, no I/O poll due), it is resumed straight from here:
 * one switch instead of two through the loop's stack, and none at all when the next task is
 * `t` itself (a sleep(0) with nothing else ready). The order is exactly the loop's: the same
 * batch, the same iterations. Anything else goes back to the loop. */
static void sched_leave(weft_task_t *t) {
    weft_loop_t *loop = t->loop;
    weft__work_t *w;
    weft_task_t *next;
    /* Every step but a task's last ends here (that one in task_main): timing it here covers
     * steps that hand over to another task as well as those that return to the loop. */
    if (weft__unlikely(loop->debug))
        weft__debug_task_left(loop, t);
    for (;;) {
        w = loop->batch;
        if (!w) {
            if (!loop->ready.head || loop->stopping || loop->timers.len || weft__poll_due(loop) ||
                atomic_load_explicit(&loop->pending, memory_order_relaxed))
                break;
            weft__iteration_begin(loop);
            continue;
        }
        if (w->run != weft__task_step)
            break;
        next = weft__container_of(w, weft_task_t, work);
        if (next->tstate == WEFT__T_NEW) {
            /* Starting needs a stack; a failure is the loop's to report. */
            if (next->cancelling || task_start(next) < 0)
                break;
        } else if (next->tstate != WEFT__T_READY) {
            break;
        }
        loop->batch = w->next;
        next->tstate = WEFT__T_RUNNING;
        loop->current = next;
        if (next != t) {
            weft__overflow_set_running(&next->run->stack, next);
            weft__coro_switch(&t->run->coro, &next->run->coro);
        }
        return;
    }
    weft__coro_switch(&t->run->coro, &loop->ctx);
}

void weft__task_wake(weft_task_t *t, int status) {
    if (t->tstate != WEFT__T_WAITING)
        return;
    t->tstate = WEFT__T_READY;
    t->wake_status = status;
    weft__schedule(t->loop, &t->work);
}

int weft__suspend_raw(weft_task_t *t) {
    t->tstate = WEFT__T_WAITING;
    sched_leave(t);
    return t->wake_status;
}

int weft__suspend(weft_task_t *t) {
    int rc = weft__suspend_raw(t);
    return weft__cancel_visible(t) ? WEFT_ECANCELED : rc;
}

int weft__task_cancel(weft_task_t *t, const char *msg, int level) {
    if (t->state != WEFT__PENDING)
        return 0;
    if (msg) {
        char *copy = strdup(msg);
        if (copy) {
            free(t->msg);
            t->msg = copy;
        }
    }
    t->cancelling++;
    if (t->run && level > t->run->cancel_level)
        t->run->cancel_level = level;
    if (t->tstate == WEFT__T_WAITING && weft__cancel_visible(t))
        weft__task_wake(t, WEFT_ECANCELED);
    return 1;
}

int weft_task_cancelling(const weft_task_t *t) { return t->kind == WEFT__TASK ? t->cancelling : 0; }

int weft_task_uncancel(weft_task_t *t) {
    if (t->kind != WEFT__TASK)
        return WEFT_EINVAL;
    if (t->cancelling > 0 && --t->cancelling == 0 && t->run)
        t->run->cancel_level = 0;
    return t->cancelling;
}

void weft_shield_begin(void) {
    weft_task_t *t = weft__current();
    if (t)
        t->run->shield_depth++;
}

void weft_shield_end(void) {
    weft_task_t *t = weft__current();
    if (t && t->run->shield_depth > 0)
        t->run->shield_depth--;
}

static int sleep_until(weft_task_t *t, double when) {
    int rc;
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    rc = weft__timer_start(t->loop, &t->timer, when, WEFT__TIMER_TASK);
    if (rc < 0)
        return rc;
    WEFT__WAITING(t, "sleep", NULL);
    rc = weft__suspend(t);
    weft__timer_stop(t->loop, &t->timer);
    return rc == WEFT__WAKE_TIMER ? 0 : rc;
}

int weft_sleep(double seconds) {
    weft_task_t *t = weft__current();
    if (weft__unlikely(!t))
        return WEFT_EPERM;
    if (seconds > 0)
        return sleep_until(t, weft__now(t->loop) + seconds);
    /* sleep(0): run again after everything that is ready now. */
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    t->tstate = WEFT__T_READY;
    t->wake_status = 0;
    weft__schedule(t->loop, &t->work);
    sched_leave(t);
    return weft__cancel_visible(t) ? WEFT_ECANCELED : 0;
}

int weft_sleep_until(double when) {
    weft_task_t *t = weft__current();
    if (!t)
        return WEFT_EPERM;
    if (when != when)
        return WEFT_EINVAL;
    return sleep_until(t, when);
}

uint64_t weft_task_id(const weft_task_t *t) { return t->kind == WEFT__TASK ? t->id : 0; }

const char *weft_task_name(const weft_task_t *t) {
    static __thread char buf[32];
    if (t->kind != WEFT__TASK)
        return "";
    if (weft__task_own_name(t))
        return t->extra->name;
    snprintf(buf, sizeof buf, "Task-%llu", (unsigned long long)t->id);
    return buf;
}

int weft_task_set_name(weft_task_t *t, const char *name) {
    char *copy = NULL;
    weft__task_extra_t *x;
    if (t->kind != WEFT__TASK)
        return WEFT_EINVAL;
    if (!name && !t->extra)
        return 0;
    if ((name && !(copy = strdup(name))) || !(x = weft__task_extra(t))) {
        free(copy);
        return WEFT_ENOMEM;
    }
    free(x->name);
    x->name = copy;
    return 0;
}

size_t weft_all_tasks(weft_loop_t *loop, weft_task_t **tasks, size_t max) {
    size_t n = 0;
    for (weft_task_t *t = loop->all_tasks; t; t = t->all_next) {
        if (weft__task_hidden(t))
            continue;
        if (n < max)
            tasks[n] = t;
        n++;
    }
    return n;
}

int weft__task_hide(weft_task_t *t) {
    weft__task_extra_t *x = weft__task_extra(t);
    if (!x)
        return WEFT_ENOMEM;
    if (!x->hidden && t->state == WEFT__PENDING) {
        x->hidden = true;
        t->loop->nhidden++;
        t->loop->nhidden_pending++;
    }
    return 0;
}

weft__task_extra_t *weft__task_extra(weft_task_t *t) {
    if (!t->extra)
        t->extra = calloc(1, sizeof *t->extra);
    return t->extra;
}

/* Called when the last reference goes. A task still pending here belongs to a closed loop. */
void weft__task_destroy(weft_task_t *t) {
    t->loop->ntasks--;
    if (t->extra) {
        if (t->extra->hidden)
            t->loop->nhidden--;
        free(t->extra->name);
        free(t->extra);
    }
    weft__slab_free(&t->loop->objects, t);
}

/* Loop close: a task that never finished loses its stack without being resumed, as asyncio
 * drops a pending task's coroutine. What its suspension registered elsewhere is undone first. */
void weft__task_abandon(weft_task_t *t) {
    weft__run_t *run = t->run;
    char site[300];
    /* Undone before the report, which takes time (a sink, the first message's time zone):
     * meanwhile another thread could act on what the task registered (an executor could start
     * the task's queued job). */
    if (run && run->abort_wait)
        run->abort_wait(run, run->abort_arg);
    if (!weft__task_hidden(t)) /* weft's own (a monitor console) are not the program's business */
        weft__log("Task was destroyed but it is pending: task #%llu '%s'%s",
                  (unsigned long long)t->id, weft_task_name(t),
                  weft__site_suffix(t, site, sizeof site));
    if (run) {
        for (weft_timeout_t *to = run->scopes; to; to = to->outer)
            weft__timer_stop(t->loop, &to->timer);
        free(run->failmsg);
        task_release_stack(t);
    }
    task_finish(t, WEFT_ECANCELED, NULL, NULL);
}

/* weft_error_message() outside tasks: per thread, so never shared across a suspension. */
static __thread char thread_msg[512];

const char *weft_error_message(void) {
    weft_task_t *t = weft__current();
    if (t)
        return t->run->errmsg ? t->run->errmsg : "";
    return thread_msg;
}

void weft__set_errmsg(const char *msg) {
    weft_task_t *t = weft__current();
    if (!msg)
        msg = "";
    if (t) {
        free(t->run->errmsg);
        t->run->errmsg = strdup(msg);
    } else {
        snprintf(thread_msg, sizeof thread_msg, "%s", msg);
    }
}

int weft_fail(int code, const char *fmt, ...) {
    weft_task_t *t = weft__current();
    va_list ap;
    char *msg;
    va_start(ap, fmt);
    msg = weft__vasprintf(fmt, ap);
    va_end(ap);
    if (t) {
        /* The message the task ends with if it returns `code`, and meanwhile the one
         * weft_error_message() shows (a coroutine can catch what it raised). */
        free(t->run->failmsg);
        t->run->failmsg = msg;
        weft__set_errmsg(msg);
    } else {
        weft__set_errmsg(msg);
        free(msg);
    }
    return code;
}
