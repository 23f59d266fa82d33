/* Thread pools (concurrent.futures.ThreadPoolExecutor) and what runs on them:
 * loop.run_in_executor, asyncio.to_thread, loop.shutdown_default_executor.
 *
 * A job is submitted on its loop's thread (a future, nexternal + 1), queued in the executor
 * (FIFO, under its mutex), run by a worker, posted back to its loop's inbox, and completed there:
 * the future gets the outcome unless it is already done (cancelled), and the job is released.
 * A job's state is read and written under its executor's mutex only. The worker writes the
 * outcome fields before posting; everything else in a job belongs to the loop's thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor.h"
#include "../core/list.h"

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_ENDED };

typedef struct weft__job job_t;
struct weft__job {
    weft__work_t work;          /* the completion, posted to the loop */
    weft__waiter_t waiter;      /* on the future: done before the job (cancelled) */
    weft__list_t qlink;         /* in the executor's queue */
    weft__list_t llink;         /* in loop->jobs */
    weft_executor_t *ex;
    weft_loop_t *loop;
    weft_future_t *future;
    weft_job_fn fn;
    void *arg;
    void *value;                /* the outcome, written by the worker */
    char *msg;
    int rc;
    int state;                  /* enum job_state, under ex->mu */
    weft_executor_t *free_after;   /* shut down and freed with the job (a helper's pool) */
};

struct weft_executor {
    pthread_mutex_t mu;
    pthread_cond_t work_cv;     /* idle workers wait here */
    pthread_cond_t done_cv;     /* a job ended, or a worker left */
    weft__list_t queue;         /* of job_t, oldest first */
    size_t nqueued;
    pthread_t *threads;         /* started, not yet joined */
    unsigned nthreads, cap;
    unsigned max_workers;
    unsigned alive;             /* workers not yet out of their loop */
    unsigned idle;              /* workers waiting for a job */
    bool shutdown;
    atomic_int refs;            /* the owner's, one per live worker, one per unreleased job */
};

/* The executor whose worker this thread is: its own shutdown(wait) must not wait for itself. */
static __thread weft_executor_t *current_executor;

/* ---- the pool ----------------------------------------------------------------------------- */

static void executor_unref(weft_executor_t *ex) {
    if (atomic_fetch_sub_explicit(&ex->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_cond_destroy(&ex->work_cv);
    pthread_cond_destroy(&ex->done_cv);
    pthread_mutex_destroy(&ex->mu);
    free(ex->threads);
    free(ex);
}

/* nqueued is kept next to the list: a submit compares it with the idle workers. */
static void queue_push(weft_executor_t *ex, job_t *job) {
    weft__list_push_back(&ex->queue, &job->qlink);
    ex->nqueued++;
}

static void queue_unlink(weft_executor_t *ex, job_t *job) {
    weft__list_remove(&job->qlink);
    ex->nqueued--;
}

static job_t *queue_first(weft_executor_t *ex) {
    return weft__list_first_entry(&ex->queue, job_t, qlink);
}

/* Under ex->mu: the job is over (run, or cancelled before it ran); its loop completes it. The
 * loop cannot have closed its inbox: closing waits for the loop's running jobs and takes its
 * queued ones out first, under this same mutex. */
static void job_end(job_t *job) {
    job->state = JOB_ENDED;
    if (weft__loop_post(job->loop, &job->work) < 0)
        weft__log("executor: a job's loop closed before the job was completed");
}

static void job_run(job_t *job) {
    void *value = NULL;
    int rc;
    weft__set_errmsg(NULL); /* so that a message left by an earlier job is not taken for its */
    rc = job->fn(job->arg, &value);
    if (rc < 0) {
        const char *msg = weft_error_message();
        if (*msg)
            job->msg = strdup(msg);
    }
    job->rc = rc < 0 ? rc : 0;
    job->value = value;
}

static void *worker_main(void *p) {
    weft_executor_t *ex = p;
    current_executor = ex;
    pthread_mutex_lock(&ex->mu);
    for (;;) {
        job_t *job;
        while (weft__list_empty(&ex->queue) && !ex->shutdown) {
            ex->idle++;
            pthread_cond_wait(&ex->work_cv, &ex->mu);
            ex->idle--;
        }
        if (!(job = queue_first(ex)))
            break; /* shut down, and nothing left to run */
        queue_unlink(ex, job);
        job->state = JOB_RUNNING;
        pthread_mutex_unlock(&ex->mu);
        job_run(job);
        pthread_mutex_lock(&ex->mu);
        job_end(job);
        pthread_cond_broadcast(&ex->done_cv);
    }
    ex->alive--;
    pthread_cond_broadcast(&ex->done_cv);
    pthread_mutex_unlock(&ex->mu);
    executor_unref(ex);
    return NULL;
}

/* Under ex->mu. Workers block every signal (they inherit the mask in force at creation), so
 * that process signals go to the loops' threads, never to a job. */
static int worker_start(weft_executor_t *ex) {
    sigset_t all, old;
    pthread_t th;
    int rc;
    if (ex->nthreads == ex->cap) {
        unsigned cap = ex->cap ? ex->cap * 2 : 4;
        pthread_t *threads = realloc(ex->threads, cap * sizeof *threads);
        if (!threads)
            return WEFT_ENOMEM;
        ex->threads = threads;
        ex->cap = cap;
    }
    atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&th, NULL, worker_main, ex);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        atomic_fetch_sub_explicit(&ex->refs, 1, memory_order_relaxed);
        return -rc;
    }
    ex->threads[ex->nthreads++] = th;
    ex->alive++;
    return 0;
}

/* Queues the job, starting a worker if every one is busy (Python's _adjust_thread_count). */
static int executor_submit(weft_executor_t *ex, job_t *job) {
    int rc = 0;
    pthread_mutex_lock(&ex->mu);
    if (ex->shutdown) {
        pthread_mutex_unlock(&ex->mu);
        return WEFT_ESHUTDOWN;
    }
    queue_push(ex, job);
    if (ex->idle < ex->nqueued && ex->alive < ex->max_workers) {
        rc = worker_start(ex);
        if (rc < 0 && ex->alive > 0)
            rc = 0; /* the workers there will get to it */
    }
    if (rc < 0)
        queue_unlink(ex, job);
    else
        pthread_cond_signal(&ex->work_cv);
    pthread_mutex_unlock(&ex->mu);
    return rc;
}

/* min(32, CPUs + 4), as Python's ThreadPoolExecutor; the CPUs this process may run on. */
static unsigned default_workers(void) {
    cpu_set_t set;
    long n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0)
        n = 1;
    return n + 4 < 32 ? (unsigned)n + 4 : 32;
}

int weft_executor_new(weft_executor_t **out, unsigned max_workers) {
    weft_executor_t *ex;
    int rc;
    if (!out)
        return WEFT_EINVAL;
    if (!(ex = calloc(1, sizeof *ex)))
        return WEFT_ENOMEM;
    if ((rc = pthread_mutex_init(&ex->mu, NULL)) != 0)
        goto fail_mu;
    if ((rc = pthread_cond_init(&ex->work_cv, NULL)) != 0)
        goto fail_work;
    if ((rc = pthread_cond_init(&ex->done_cv, NULL)) != 0)
        goto fail_done;
    weft__list_init(&ex->queue);
    ex->max_workers = max_workers ? max_workers : default_workers();
    atomic_init(&ex->refs, 1);
    *out = ex;
    return 0;
fail_done:
    pthread_cond_destroy(&ex->work_cv);
fail_work:
    pthread_mutex_destroy(&ex->mu);
fail_mu:
    free(ex);
    return -rc;
}

void weft_executor_shutdown(weft_executor_t *ex, int wait, int cancel_futures) {
    pthread_t *threads = NULL;
    unsigned n = 0;
    job_t *job;
    if (!ex)
        return;
    pthread_mutex_lock(&ex->mu);
    ex->shutdown = true;
    while (cancel_futures && (job = queue_first(ex))) {
        queue_unlink(ex, job);
        job->rc = WEFT_ECANCELED;
        job->msg = strdup("the executor was shut down");
        job_end(job);
    }
    pthread_cond_broadcast(&ex->work_cv);
    pthread_cond_broadcast(&ex->done_cv);
    if (wait && current_executor != ex) {
        while (ex->alive > 0)
            pthread_cond_wait(&ex->done_cv, &ex->mu);
        /* Whoever takes the list joins; a second waiter has seen the workers leave. */
        threads = ex->threads;
        n = ex->nthreads;
        ex->threads = NULL;
        ex->nthreads = ex->cap = 0;
    }
    pthread_mutex_unlock(&ex->mu);
    for (unsigned i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    free(threads);
}

void weft_executor_free(weft_executor_t *ex) {
    if (!ex)
        return;
    weft_executor_shutdown(ex, 1, 0);
    if (current_executor == ex) {
        /* From one of its own jobs: the workers cannot be joined from here. They leave by
         * themselves, each holding a reference, and the last one frees the memory. */
        pthread_mutex_lock(&ex->mu);
        for (unsigned i = 0; i < ex->nthreads; i++)
            pthread_detach(ex->threads[i]);
        ex->nthreads = 0;
        pthread_mutex_unlock(&ex->mu);
    }
    executor_unref(ex);
}

/* ---- jobs, on the loop's thread ------------------------------------------------------------ */

static void job_release(job_t *job) {
    weft_loop_t *loop = job->loop;
    weft_executor_t *helper = job->free_after;
    weft__list_remove(&job->llink);
    loop->nexternal--;
    weft__waiter_remove(job->future, &job->waiter);
    weft__unref(job->future);
    free(job->msg);
    executor_unref(job->ex);
    free(job);
    if (helper)
        weft_executor_free(helper);
}

/* Takes the job out of its executor's queue if it has not started; true if it was there. */
static bool job_dequeue(job_t *job) {
    weft_executor_t *ex = job->ex;
    bool queued;
    pthread_mutex_lock(&ex->mu);
    if ((queued = job->state == JOB_QUEUED)) {
        queue_unlink(ex, job);
        job->state = JOB_ENDED;
    }
    pthread_mutex_unlock(&ex->mu);
    return queued;
}

/* Blocks the thread until the job is no longer running (its completion is then posted). */
static void job_wait_ended(job_t *job) {
    weft_executor_t *ex = job->ex;
    pthread_mutex_lock(&ex->mu);
    while (job->state == JOB_RUNNING)
        pthread_cond_wait(&ex->done_cv, &ex->mu);
    pthread_mutex_unlock(&ex->mu);
}

/* Posted by the worker: runs on the loop's thread. A closed loop keeps its futures as they are
 * (asyncio's loop can no longer deliver a result either). */
static void job_complete(weft__work_t *w) {
    job_t *job = weft__container_of(w, job_t, work);
    weft_future_t *f = job->future;
    /* The worker posted this under its executor's mutex and may still be writing the loop's
     * eventfd: taking the mutex once makes sure it has let go of the loop, which may close as
     * soon as this job is released. */
    pthread_mutex_lock(&job->ex->mu);
    pthread_mutex_unlock(&job->ex->mu);
    weft__waiter_remove(f, &job->waiter);
    if (!job->loop->closed && f->state == WEFT__PENDING) {
        if (job->rc == 0) {
            weft__future_complete(f, WEFT__RESULT, 0, job->value, NULL);
        } else {
            weft__future_complete(f, job->rc == WEFT_ECANCELED ? WEFT__CANCELLED : WEFT__ERROR,
                                  job->rc, NULL, job->msg);
            job->msg = NULL;
        }
    }
    job_release(job);
}

/* The future was completed by someone else (cancelled, or set by its holder): a job that has
 * not started never will. One that has goes on, and its outcome is dropped. */
static void job_future_done(weft__waiter_t *w, weft_future_t *f) {
    job_t *job = weft__container_of(w, job_t, waiter);
    (void)f;
    if (job_dequeue(job))
        job_release(job);
}

static int default_executor(weft_loop_t *loop, weft_executor_t **ex) {
    int rc;
    if (loop->user_executor) {
        *ex = loop->user_executor;
        return 0;
    }
    if (!loop->executor && (rc = weft_executor_new(&loop->executor, loop->executor_workers)) < 0)
        return rc;
    *ex = loop->executor;
    return 0;
}

/* Submits fn(arg) from the loop's thread; the job holds the only reference to its future. */
static int job_submit(weft_loop_t *loop, weft_executor_t *ex, weft_job_fn fn, void *arg,
                      job_t **out) {
    weft_future_t *f;
    job_t *job;
    int rc;
    if (!ex && (rc = default_executor(loop, &ex)) < 0)
        return rc;
    if (!(job = calloc(1, sizeof *job)))
        return WEFT_ENOMEM;
    if ((rc = weft_loop_create_future(loop, &f)) < 0) {
        free(job);
        return rc;
    }
    job->work.run = job_complete;
    job->waiter.fire = job_future_done;
    job->ex = ex;
    job->loop = loop;
    job->future = f;
    job->fn = fn;
    job->arg = arg;
    job->state = JOB_QUEUED;
    atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
    if ((rc = executor_submit(ex, job)) < 0) {
        executor_unref(ex);
        weft__unref(f);
        free(job);
        return rc;
    }
    /* The worker may be running it already: it touches none of these. */
    weft__waiter_add(f, &job->waiter);
    weft__list_push_front(&loop->jobs, &job->llink);
    loop->nexternal++;
    *out = job;
    return 0;
}

int weft_loop_run_in_executor(weft_loop_t *loop, weft_executor_t *ex, weft_job_fn fn, void *arg,
                              weft_future_t **future) {
    job_t *job;
    int rc;
    if (!loop || !fn || !future)
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(loop);
    if (loop->closed)
        return WEFT_ESHUTDOWN;
    if ((rc = job_submit(loop, ex, fn, arg, &job)) < 0)
        return rc;
    *future = weft__ref(job->future);
    return 0;
}

int weft_run_in_executor(weft_executor_t *ex, weft_job_fn fn, void *arg, weft_future_t **future) {
    if (!weft__tls_loop)
        return WEFT_EPERM;
    return weft_loop_run_in_executor(weft__tls_loop, ex, fn, arg, future);
}

int weft_loop_set_default_executor(weft_loop_t *loop, weft_executor_t *ex) {
    if (!loop)
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(loop);
    if (loop->closed)
        return WEFT_ESHUTDOWN;
    if (loop->executor)
        return WEFT_EBUSY;
    loop->user_executor = ex;
    return 0;
}

/* Loop close, after its tasks were abandoned: queued jobs are taken out (their futures stay
 * pending), running ones waited for (their completions are in the inbox, run next with
 * loop->closed set), then the loop's own pool goes. */
void weft__executor_loop_close(weft_loop_t *loop) {
    weft__list_t *l, *next;
    for (l = loop->jobs.next; l != &loop->jobs; l = next) {
        job_t *job = weft__list_entry(l, job_t, llink);
        next = l->next; /* releasing the job unlinks it */
        if (job_dequeue(job))
            job_release(job);
        else
            job_wait_ended(job);
    }
    if (loop->executor) {
        weft_executor_free(loop->executor);
        loop->executor = NULL;
    }
    loop->user_executor = NULL;
}

/* ---- to_thread ---------------------------------------------------------------------------- */

/* A task waiting in weft__to_thread(); lives on the task's stack. */
typedef struct to_wait {
    weft__waiter_t waiter;
    weft_task_t *task;
    job_t *job;
    weft_future_t *future;
} to_wait_t;

static void to_wait_fire(weft__waiter_t *w, weft_future_t *f) {
    (void)f;
    weft__task_wake(weft__container_of(w, to_wait_t, waiter)->task, 0);
}

/* The task is abandoned (its loop closes) while it waits: the job may be using its stack, which
 * goes away when this returns. A job still queued is dropped; a running one is waited for,
 * blocking the thread. */
static void to_wait_abort(weft__run_t *run, void *arg) {
    to_wait_t *tw = arg;
    weft_future_t *f = tw->future;
    (void)run;
    weft__waiter_remove(f, &tw->waiter);
    if (f->state == WEFT__PENDING) { /* the job is not released yet */
        if (job_dequeue(tw->job))
            job_release(tw->job);
        else
            job_wait_ended(tw->job);
    }
    weft__unref(f);
}

int weft__to_thread(weft_job_fn fn, void *arg, void **value, bool *cancelled) {
    weft_task_t *t = weft__current();
    weft_future_t *f;
    job_t *job;
    int rc;
    *cancelled = false;
    if (!t)
        return WEFT_EPERM;
    if (weft__cancel_visible(t)) {
        *cancelled = true;
        return WEFT_ECANCELED;
    }
    if ((rc = job_submit(t->loop, NULL, fn, arg, &job)) < 0)
        return rc;
    f = weft__ref(job->future);
    {
        to_wait_t tw = {{NULL, to_wait_fire}, t, job, f};
        weft__waiter_add(f, &tw.waiter);
        t->run->abort_wait = to_wait_abort;
        t->run->abort_arg = &tw;
        WEFT__WAITING(t, "executor job", NULL);
        while (f->state == WEFT__PENDING) {
            if (weft__suspend(t) != WEFT_ECANCELED || f->state != WEFT__PENDING)
                continue;
            *cancelled = true;
            if (job_dequeue(job)) {
                job_release(job);
                break;
            }
            /* Running: it may be using the caller's memory, so its end is waited for. */
            while (f->state == WEFT__PENDING)
                weft__suspend_raw(t);
        }
        t->run->abort_wait = NULL;
        weft__waiter_remove(f, &tw.waiter);
    }
    *cancelled = *cancelled || weft__cancel_visible(t);
    if (f->state == WEFT__PENDING) { /* taken out of the queue: it never ran */
        rc = WEFT_ECANCELED;
    } else {
        rc = weft__future_outcome(f, value);
        if (rc < 0 && !*cancelled)
            weft__set_errmsg(weft_future_error_message(f));
    }
    weft__unref(f);
    return rc;
}

int weft_to_thread(weft_job_fn fn, void *arg, void **result) {
    void *value = NULL;
    bool cancelled;
    int rc;
    if (!fn)
        return weft__current() ? WEFT_EINVAL : WEFT_EPERM;
    rc = weft__to_thread(fn, arg, &value, &cancelled);
    if (cancelled)
        return WEFT_ECANCELED; /* what the job returned is dropped */
    if (rc == 0 && result)
        *result = value;
    return rc;
}

/* ---- shutdown_default_executor ------------------------------------------------------------ */

static int shutdown_job(void *ex, void **result) {
    (void)result;
    weft_executor_shutdown(ex, 1, 0);
    return 0;
}

static bool executor_started(weft_executor_t *ex) {
    bool started;
    pthread_mutex_lock(&ex->mu);
    started = ex->alive > 0;
    pthread_mutex_unlock(&ex->mu);
    return started;
}

/* The blocking shutdown runs on a helper pool of one worker, as a job of this loop: awaiting it
 * blocks nothing, a cancelled caller leaves it running (asyncio's behaviour), and a closing
 * loop waits for it like for any job. The helper pool is freed with the job. */
int weft_shutdown_default_executor(void) {
    weft_task_t *t = weft__current();
    weft_executor_t *ex, *helper;
    weft_future_t *f;
    job_t *job;
    int rc;
    if (!t)
        return WEFT_EPERM;
    if (weft__cancel_visible(t))
        return WEFT_ECANCELED;
    /* A pool that never ran a job is created and shut down at once: later uses see
     * -ESHUTDOWN, as asyncio's run_in_executor refuses after shutdown_default_executor. */
    if ((rc = default_executor(t->loop, &ex)) < 0)
        return rc;
    if (!executor_started(ex)) {
        weft_executor_shutdown(ex, 1, 0);
        return 0;
    }
    if ((rc = weft_executor_new(&helper, 1)) < 0)
        return rc;
    if ((rc = job_submit(t->loop, helper, shutdown_job, ex, &job)) < 0) {
        weft_executor_free(helper);
        return rc;
    }
    job->free_after = helper;
    weft_executor_shutdown(helper, 0, 0); /* its worker leaves after this job */
    f = weft__ref(job->future);
    rc = weft__await(f, NULL, 1);
    weft__unref(f);
    return rc;
}
