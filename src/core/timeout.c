/* Timeout scopes (asyncio.timeout / timeout_at) and wait_for. A scope that expires cancels
 * its task; the scope's end takes that one cancellation back and reports -ETIMEDOUT. Each scope
 * remembers the task's cancel count at entry, so a deadline is reported only by the scope that
 * set it, however scopes nest. */
#include "internal.h"

enum { SCOPE_OPEN, SCOPE_EXPIRED, SCOPE_ENDED, SCOPE_ENDED_EXPIRED };

void weft__recompute_cancel_level(weft_task_t *t) {
    int level = 0;
    for (weft_timeout_t *to = t->run->scopes; to; to = to->outer)
        if (to->state == SCOPE_EXPIRED && to->shield_depth > level)
            level = to->shield_depth;
    t->run->cancel_level = level;
}

void weft__timeout_fire(weft_timeout_t *to) {
    to->state = SCOPE_EXPIRED;
    /* Visible at the depth the scope was opened at: a timeout inside a shielded clean-up
     * still interrupts that clean-up. */
    weft__task_cancel(to->task, "timeout", to->shield_depth);
}

int weft_timeout_begin_at(weft_timeout_t *to, double when) {
    weft_task_t *t = weft__current();
    int rc;
    if (!t)
        return WEFT_EPERM;
    if (!to || when != when)
        return WEFT_EINVAL;
    to->task = t;
    to->state = SCOPE_OPEN;
    to->shield_depth = t->run->shield_depth;
    to->cancelling_at_entry = t->cancelling;
    to->timer.heap_index = WEFT__TIMER_IDLE;
    to->timer.when = when;
    if (when != WEFT_NEVER) {
        /* A deadline already past still waits for the next iteration, as asyncio's does. */
        rc = weft__timer_start(t->loop, &to->timer, when, WEFT__TIMER_TIMEOUT);
        if (rc < 0)
            return rc;
    }
    to->outer = t->run->scopes;
    t->run->scopes = to;
    return 0;
}

int weft_timeout_begin(weft_timeout_t *to, double delay) {
    weft_task_t *t = weft__current();
    if (!t)
        return WEFT_EPERM;
    if (delay != delay)
        return WEFT_EINVAL;
    return weft_timeout_begin_at(to, delay == WEFT_NEVER ? WEFT_NEVER
                                                         : weft__now(t->loop) + delay);
}

int weft_timeout_end(weft_timeout_t *to, int rc) {
    weft_task_t *t = weft__current();
    if (!t || !to || t != to->task || to->state >= SCOPE_ENDED)
        return WEFT_EINVAL;
    if (t->run->scopes != to) {
        weft__log("weft_timeout_end: scopes must end innermost first (task #%llu '%s')",
                  (unsigned long long)t->id, weft_task_name(t));
        return WEFT_EINVAL;
    }
    weft__timer_stop(t->loop, &to->timer);
    t->run->scopes = to->outer;
    if (to->state == SCOPE_EXPIRED) {
        to->state = SCOPE_ENDED_EXPIRED;
        weft_task_uncancel(t);
        weft__recompute_cancel_level(t);
        /* asyncio: `if task.uncancel() <= self._cancelling and exc is CancelledError`. */
        if (rc == WEFT_ECANCELED && t->cancelling <= to->cancelling_at_entry)
            rc = WEFT_ETIMEDOUT;
        return rc;
    }
    to->state = SCOPE_ENDED;
    return rc;
}

int weft_timeout_reschedule(weft_timeout_t *to, double when) {
    weft_task_t *t = to->task;
    if (when != when)
        return WEFT_EINVAL;
    if (to->state == SCOPE_EXPIRED)
        return WEFT_EALREADY;
    if (to->state != SCOPE_OPEN) /* ended: asyncio's reschedule() raises RuntimeError */
        return WEFT_EINVAL;
    weft__timer_stop(t->loop, &to->timer);
    to->timer.when = when;
    if (when == WEFT_NEVER)
        return 0;
    return weft__timer_start(t->loop, &to->timer, when, WEFT__TIMER_TIMEOUT);
}

double weft_timeout_when(const weft_timeout_t *to) { return to->timer.when; }
int weft_timeout_expired(const weft_timeout_t *to) {
    return to->state == SCOPE_EXPIRED || to->state == SCOPE_ENDED_EXPIRED;
}

int weft_wait_for(weft_future_t *f, double timeout, void **value) {
    weft_timeout_t to;
    int rc;
    if (!f)
        return WEFT_EINVAL;
    if (f->state != WEFT__PENDING) /* done already: no suspension, no timeout */
        return weft_await(f, value);
    if ((rc = weft_timeout_begin(&to, timeout)) < 0)
        return rc;
    rc = weft_await(f, value);
    return weft_timeout_end(&to, rc);
}
