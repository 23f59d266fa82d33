/* Two tasks that wait on each other: each takes one lock, then wants the other's. Nothing can
 * ever wake them, so instead of hanging, weft reports every task and what it waits on (as Go's
 * "all goroutines are asleep" does) and weft_run() returns -EDEADLK: the program exits 1. */
#include <stdio.h>

#include <weft.h>

typedef struct locks {
    weft_lock_t *first, *second;
} locks_t;

/* Takes `a`, lets the other task take its own first lock, then wants `b`. */
static int take_both(weft_lock_t *a, weft_lock_t *b) {
    int rc = weft_lock_acquire(a);
    if (rc < 0)
        return rc;
    if ((rc = weft_sleep(0.1)) == 0 && (rc = weft_lock_acquire(b)) == 0)
        weft_lock_release(b);
    weft_lock_release(a);
    return rc;
}

static int alice(void *arg, void **result) {
    locks_t *l = arg;
    return take_both(l->first, l->second);
}

static int bob(void *arg, void **result) {
    locks_t *l = arg;
    return take_both(l->second, l->first);
}

static int async_main(void *arg, void **result) {
    locks_t l;
    weft_task_t *t[2];
    int rc;
    weft_lock_new(&l.first);
    weft_lock_new(&l.second);
    weft_create_task(&t[0], alice, &l, &(weft_task_options_t){.name = "alice"});
    weft_create_task(&t[1], bob, &l, &(weft_task_options_t){.name = "bob"});
    rc = weft_gather(t, 2, NULL);
    /* After the report, weft_run() cancels every task: each lets go of its lock and ends. */
    for (int i = 0; i < 2; i++) {
        weft_await(t[i], NULL);
        weft_unref(t[i]);
    }
    weft_lock_free(l.first);
    weft_lock_free(l.second);
    return rc;
}

int main(void) {
    int rc = weft_run(async_main, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "deadlock: weft_run: %s (%s)\n", weft_error_message(), weft_err_name(rc));
        return 1;
    }
    puts("no deadlock");
    return 0;
}
