/* What tasks are doing, in words: where each was created, what a suspended one waits on, and
 * the report run_until_complete gives when nothing can ever complete what it waits for (Go's
 * "all goroutines are asleep"). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "../core/internal.h"
#include "../net/net.h"

const char *weft_task_created_at(const weft_task_t *t, char *buf, size_t len) {
    const weft_site_t *s;
    if (!t || t->kind != WEFT__TASK || !(s = weft__task_site(t)) || !buf || !len)
        return NULL;
    snprintf(buf, len, "%s:%d in %s", s->file, s->line, s->func);
    return buf;
}

/* "task #12 'worker'" for a task, the kind of future otherwise. */
static void describe_future(const weft_future_t *f, char *buf, size_t len) {
    static const char *const kinds[] = {"future", "task", "gather", "shield"};
    if (f->kind == WEFT__TASK)
        snprintf(buf, len, "task #%llu '%s'", (unsigned long long)f->id, weft_task_name(f));
    else
        snprintf(buf, len, "%s", f->kind < 4 ? kinds[f->kind] : "future");
}

const char *weft_task_waiting_on(const weft_task_t *t, char *buf, size_t len) {
    const weft__run_t *run;
    const char *what;
    if (!buf || !len)
        return NULL;
    if (!t || t->kind != WEFT__TASK) {
        snprintf(buf, len, "not a task");
        return buf;
    }
    if (t->tstate != WEFT__T_WAITING) {
        static const char *const states[] = {
            [WEFT__T_NEW] = "not started", [WEFT__T_READY] = "ready",
            [WEFT__T_RUNNING] = "running", [WEFT__T_DONE] = "done"};
        snprintf(buf, len, "%s", t->tstate < 5 && states[t->tstate] ? states[t->tstate] : "?");
        return buf;
    }
    run = t->run;
    what = run ? run->wait_what : NULL;
    if (!what) {
        snprintf(buf, len, "suspended");
    } else if (!strcmp(what, "sleep")) {
        double left = t->timer.heap_index != WEFT__TIMER_IDLE ? t->timer.when - weft__now(t->loop)
                                                               : 0;
        snprintf(buf, len, "sleep (%.2f s left)", left > 0 ? left : 0);
    } else if (!strcmp(what, "await")) {
        char f[160];
        describe_future(run->wait_obj, f, sizeof f);
        snprintf(buf, len, "%s", f);
    } else if (!strcmp(what, "fd")) {
        const weft__fd_t *e = run->wait_obj;
        snprintf(buf, len, "fd %d %s", e->io.fd,
                 e->waiter[WEFT__RD] == t && e->waiter[WEFT__WR] == t ? "readable or writable"
                 : e->waiter[WEFT__WR] == t                           ? "writable"
                                                                      : "readable");
    } else {
        snprintf(buf, len, "%s", what);
    }
    return buf;
}

/* The tasks a deadlocked loop holds, and what each waits on. Hidden tasks (weft's own, such as
 * the monitor's) are left out: they are not what the program waits for. */
void weft__deadlock_report(weft_loop_t *loop, const weft_future_t *awaited) {
    char what[200], site[256], f[160];
    size_t n = 0;
    for (const weft_task_t *t = loop->all_tasks; t; t = t->all_next)
        n += !weft__task_hidden(t);
    describe_future(awaited, f, sizeof f);
    weft_log(WEFT_LOG_ERROR,
             "deadlock: the loop waits for %s, which nothing can complete: no task is ready, no "
             "timer is armed, no file descriptor is watched and nothing is expected from other "
             "threads or signals. %zu task%s asleep:",
             f, n, n == 1 ? " is" : "s are");
    for (const weft_task_t *t = loop->all_tasks; t; t = t->all_next) {
        if (weft__task_hidden(t))
            continue;
        weft_log(WEFT_LOG_ERROR, "  task #%llu '%s': waiting on %s%s%s%s",
                 (unsigned long long)t->id, weft_task_name(t),
                 weft_task_waiting_on(t, what, sizeof what),
                 weft_task_created_at(t, site, sizeof site) ? " (created at " : "",
                 weft__task_site(t) ? site : "", weft__task_site(t) ? ")" : "");
    }
}
