/* asyncio.Event: set() wakes every waiter; a waiter woken by set() returns 0 even if clear()
 * comes before it runs (it was granted at set time). */
#include <stdlib.h>

#include "wait.h"

struct weft_event {
    weft_loop_t *loop;
    weft__wlist_t waiters;
    int set;
};

int weft_event_new(weft_event_t **ev) {
    weft_event_t *e;
    if (!ev)
        return WEFT_EINVAL;
    if (!weft__tls_loop)
        return WEFT_EPERM;
    if (!(e = malloc(sizeof *e)))
        return WEFT_ENOMEM;
    e->loop = weft__tls_loop;
    e->loop->refs++;
    weft__wlist_init(&e->waiters);
    e->set = 0;
    *ev = e;
    return 0;
}

int weft_event_free(weft_event_t *e) {
    if (!e)
        return 0;
    if (!weft__wlist_empty(&e->waiters))
        return WEFT_EBUSY;
    weft__loop_unref(e->loop);
    free(e);
    return 0;
}

void weft_event_set(weft_event_t *e) {
    if (e->set || weft__sync_foreign(e->loop))
        return;
    e->set = 1;
    weft__wlist_grant_all(&e->waiters);
}

void weft_event_clear(weft_event_t *e) { e->set = 0; }
int weft_event_is_set(const weft_event_t *e) { return e->set; }

int weft_event_wait(weft_event_t *e) {
    weft__wnode_t n;
    weft_task_t *t;
    int rc;
    if (!e)
        return WEFT_EINVAL;
    if ((rc = weft__sync_task(e->loop, &t)) < 0)
        return rc;
    if (e->set) /* asyncio returns at once, without a suspension to be cancelled at */
        return 0;
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    WEFT__WAITING(t, "event", e);
    rc = weft__wlist_wait(&e->waiters, &n, t, e, false, weft__wnode_abort_unlink, NULL);
    return rc == WEFT_ECANCELED ? rc : 0;
}
