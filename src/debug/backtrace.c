/* Backtraces of suspended tasks, read from their saved contexts with libunwind; task dumps (Go's
 * goroutine dump), and the SIGQUIT dump of loops in debug mode or with a monitor. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "../coro/coro_impl.h" /* which context-switch backend is built, and its frame layout */
#include "../net/net.h"
#include "dump.h"

#define MAX_FRAMES 64

/* ---- text --------------------------------------------------------------------------------- */

void weft__text_printf(weft__text_t *b, const char *fmt, ...) {
    va_list ap;
    if (b->oom)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        int n;
        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        if (b->fixed) { /* cut: what fitted stays, NUL-terminated by vsnprintf */
            if (b->cap)
                b->len = b->cap - 1;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

void weft__text_free(weft__text_t *b) {
    if (!b->fixed)
        free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

/* ---- unwinding ---------------------------------------------------------------------------- */

#if WEFT__CTX_X86_64

/* The object a code address belongs to, by its file name: "libweft.so.0", or the program's. */
static const char *object_name(uintptr_t ip) {
    Dl_info info;
    const char *slash;
    if (!dladdr((void *)ip, &info) || !info.dli_fname)
        return "?";
    if (!info.dli_fname[0]) /* the main program has no name in the link map */
        return program_invocation_short_name;
    slash = strrchr(info.dli_fname, '/');
    return slash ? slash + 1 : info.dli_fname;
}

/* The frames of the context switch itself, which every suspended task has on top: left out,
 * so that frame #0 is the call that suspended (weft_sleep, weft_queue_get, ...). */
static bool switch_frame(const char *name) {
    return !strcmp(name, "sched_leave") || !strncmp(name, "weft__coro_", 11) ||
           !strncmp(name, "weft__ctx_", 10) || !strncmp(name, "weft__suspend", 13);
}

/* Symbol look-ups for one dump. unw_get_proc_name() reads the object's symbol table each time
 * (a few dozen microseconds), and the tasks of a program are suspended at a handful of return
 * addresses: a dump of ten thousand tasks looks each one up once. Per dump, never kept: a
 * library unloaded meanwhile could leave a stale name behind. */
#define SYMCACHE_SIZE 256
#define SYMCACHE_PROBES 8
#define NAME_LEN 256
typedef struct symentry {
    uintptr_t ip;                 /* 0: free */
    uintptr_t off;
    bool named;
    char name[NAME_LEN];
} symentry_t;
typedef struct symcache {
    symentry_t e[SYMCACHE_SIZE];
} symcache_t;

/* The name of the function the cursor's frame is in, and the offset in it; false if unknown. */
static bool proc_name(unw_cursor_t *cur, uintptr_t ip, symcache_t *cache, char name[NAME_LEN],
                      uintptr_t *off) {
    symentry_t *slot = NULL;
    unw_word_t o = 0;
    int rc;
    if (cache) {
        size_t h = (size_t)((ip * 0x9e3779b97f4a7c15u) >> 55) % SYMCACHE_SIZE;
        for (size_t i = 0; i < SYMCACHE_PROBES; i++) {
            symentry_t *e = &cache->e[(h + i) % SYMCACHE_SIZE];
            if (e->ip == ip) {
                memcpy(name, e->name, NAME_LEN);
                *off = e->off;
                return e->named;
            }
            if (!e->ip) {
                slot = e;
                break;
            }
        }
    }
    /* 0, or -UNW_ENOMEM with the name cut to fit. */
    name[0] = '\0';
    rc = unw_get_proc_name(cur, name, NAME_LEN, &o);
    *off = (uintptr_t)o;
    if (slot) {
        slot->ip = ip;
        slot->off = (uintptr_t)o;
        slot->named = rc == 0 || rc == -UNW_ENOMEM;
        memcpy(slot->name, name, NAME_LEN);
    }
    return rc == 0 || rc == -UNW_ENOMEM;
}

/* The registers weft__ctx_switch pushed on the task's stack (switch_x86_64.S):
 * sp+8 r15, +16 r14, +24 r13, +32 r12, +40 rbx, +48 rbp, +56 the return address. Read without
 * AddressSanitizer's checks: the words were written by the assembly, below every C frame. */
__attribute__((no_sanitize_address)) static void load_saved(unw_context_t *uc, const void *sp) {
    const uint64_t *f = sp;
    greg_t *g = uc->uc_mcontext.gregs;
    g[REG_R15] = (greg_t)f[1];
    g[REG_R14] = (greg_t)f[2];
    g[REG_R13] = (greg_t)f[3];
    g[REG_R12] = (greg_t)f[4];
    g[REG_RBX] = (greg_t)f[5];
    g[REG_RBP] = (greg_t)f[6];
    g[REG_RIP] = (greg_t)f[7];
    g[REG_RSP] = (greg_t)((uintptr_t)sp + 64); /* as after the switch's `ret` */
}
#define SAVED_FRAME 64

/* Appends the backtrace of a suspended task to b, one "#N function+0xOFF (object)" line per
 * frame, and returns the number of frames, or -ENOTSUP. */
static int unwind(const weft_task_t *t, weft__text_t *b, const char *indent, symcache_t *cache) {
    const weft__run_t *run = t->run;
    /* The usable stack: from above the guard page to the run state at its top. */
    uintptr_t lo = (uintptr_t)run->stack.lo + run->stack.guard, hi = (uintptr_t)run;
    uintptr_t sp = (uintptr_t)run->coro.sp;
    unw_context_t uc;
    unw_cursor_t cur;
    bool top = true;
    int n = 0;
    if (sp < lo || sp + SAVED_FRAME > hi || (sp & 7))
        return WEFT_ENOTSUP; /* not a context we saved: never read it */
    /* A context of this thread, with the task's registers in place of ours. unw_init_local
     * treats its IP as a return address, which the saved one is. */
    if (unw_getcontext(&uc) != 0)
        return WEFT_ENOTSUP;
    load_saved(&uc, (const void *)sp);
    if (unw_init_local(&cur, &uc) < 0)
        return WEFT_ENOTSUP;
    for (;;) {
        unw_word_t ip, csp;
        uintptr_t off = 0;
        char name[NAME_LEN];
        bool named;
        if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 || unw_get_reg(&cur, UNW_REG_SP, &csp) < 0)
            break;
        /* Every frame of a task lies on its stack: a step that leaves it went wrong. */
        if (!ip || csp < lo || csp > hi)
            break;
        named = proc_name(&cur, (uintptr_t)ip, cache, name, &off);
        if (named && !strcmp(name, "weft__ctx_trampoline"))
            break; /* the bottom of every task's stack */
        if (top && named && switch_frame(name)) {
            if (unw_step(&cur) <= 0)
                break;
            continue;
        }
        top = false;
        if (n == MAX_FRAMES) {
            weft__text_printf(b, "%s... (more frames)\n", indent);
            break;
        }
        /* ip - 1: a return address may be the first byte after its function. */
        if (named)
            weft__text_printf(b, "%s#%d %s+0x%lx (%s)\n", indent, n, name, (unsigned long)off,
                              object_name(ip - 1));
        else
            weft__text_printf(b, "%s#%d 0x%lx (%s)\n", indent, n, (unsigned long)ip,
                              object_name(ip - 1));
        n++;
        if (unw_step(&cur) <= 0)
            break;
    }
    return n;
}

#else /* !WEFT__CTX_X86_64 */

/* AArch64 saves a frame libunwind could be given the same way (switch_aarch64.S), but that is
 * not built and tested here; the ucontext backend keeps no stack pointer of its own. */
typedef struct symcache {
    char unused;
} symcache_t;

static int unwind(const weft_task_t *t, weft__text_t *b, const char *indent, symcache_t *cache) {
    (void)t;
    (void)b;
    (void)indent;
    (void)cache;
    return WEFT_ENOTSUP;
}

#endif

static int backtrace_text(const weft_task_t *t, weft__text_t *b, const char *indent,
                          symcache_t *cache) {
    if (t->tstate == WEFT__T_RUNNING || t == t->loop->current)
        return WEFT_EBUSY;
    if (!t->run || t->tstate == WEFT__T_NEW || t->tstate == WEFT__T_DONE)
        return WEFT_ENOENT;
    return unwind(t, b, indent, cache);
}

int weft_task_backtrace(const weft_task_t *t, char *buf, size_t len) {
    weft__text_t b = {.p = buf, .cap = len, .fixed = true};
    if (!t || t->kind != WEFT__TASK || (!buf && len))
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(t->loop);
    if (buf)
        buf[0] = '\0';
    return backtrace_text(t, &b, "", NULL);
}

/* ---- task reports ------------------------------------------------------------------------- */

const char *weft__task_state(const weft_task_t *t) {
    switch (t->tstate) {
    case WEFT__T_NEW:
        return "new";
    case WEFT__T_READY:
        return "ready";
    case WEFT__T_RUNNING:
        return "running";
    case WEFT__T_WAITING:
        return "waiting";
    default:
        return "done";
    }
}

double weft__task_age(const weft_task_t *t) {
    double age;
    /* Creation times are read only while debug mode or the monitor is on: 0 means "not read". */
    uint32_t ms = weft__task_created_ms(t);
    if (ms == 0)
        return -1;
    age = weft__now(t->loop) - (t->loop->epoch + (ms - 1) / 1000.0);
    return age > 0 ? age : 0;
}

size_t weft__task_stack_used(const weft_task_t *t) {
    const weft__run_t *run = t->run;
    uintptr_t lo, top, sp;
    if (!run || t->tstate == WEFT__T_NEW || t->tstate == WEFT__T_DONE)
        return 0;
    lo = (uintptr_t)run->stack.lo + run->stack.guard;
    top = (uintptr_t)run->stack.hi;
    /* The running task is the caller: its stack pointer is about here. */
    sp = t == t->loop->current ? (uintptr_t)__builtin_frame_address(0) : (uintptr_t)run->coro.sp;
    return sp >= lo && sp < top ? top - sp : 0;
}

static void task_report(weft__text_t *b, const weft_task_t *t, const char *indent,
                        symcache_t *cache) {
    char what[256], site[512];
    double age = weft__task_age(t);
    int rc;
    weft__text_printf(b, "task #%llu '%s': ", (unsigned long long)t->id, weft_task_name(t));
    if (t->tstate == WEFT__T_WAITING)
        weft__text_printf(b, "waiting on %s", weft_task_waiting_on(t, what, sizeof what));
    else
        weft__text_printf(b, "%s", t->tstate == WEFT__T_NEW ? "not started" : weft__task_state(t));
    if (age >= 0)
        weft__text_printf(b, ", age %.1f s", age);
    else
        weft__text_printf(b, ", age unknown");
    weft__text_printf(b, ", stack %zu KiB in use\n", (weft__task_stack_used(t) + 1023) / 1024);
    if (weft_task_created_at(t, site, sizeof site))
        weft__text_printf(b, "%screated at %s\n", indent, site);
    rc = backtrace_text(t, b, indent, cache);
    if (rc == WEFT_EBUSY)
        weft__text_printf(b, "%s(running: no backtrace)\n", indent);
    else if (rc == WEFT_ENOENT)
        weft__text_printf(b, "%s(not started: no stack yet)\n", indent);
    else if (rc == WEFT_ENOTSUP)
        weft__text_printf(b, "%s(no backtrace: cannot unwind task stacks on this platform)\n",
                          indent);
    else if (rc == 0)
        weft__text_printf(b, "%s(no frames found)\n", indent);
}

void weft__task_report(weft__text_t *b, const weft_task_t *t, const char *indent) {
    task_report(b, t, indent, NULL);
}

/* ---- dumps -------------------------------------------------------------------------------- */

/* Everything, even to a descriptor someone made non-blocking (a terminal shared with a
 * program that did): waits a little for room rather than drop the dump's end. */
static void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            if (poll(&pfd, 1, 1000) <= 0)
                return;
        } else if (w == 0 || errno != EINTR) {
            return;
        }
    }
}

void weft_loop_dump_tasks(weft_loop_t *loop, int fd) {
    weft__text_t b = {0};
    const weft_task_t *t, *last = NULL;
    symcache_t *cache;
    size_t n = 0;
    if (!loop || fd < 0)
        return;
    WEFT__LOOP_THREAD(loop);
    cache = calloc(1, sizeof *cache); /* without it, only slower */
    for (t = loop->all_tasks; t; t = t->all_next) {
        n += !weft__task_hidden(t);
        last = t;
    }
    weft__text_printf(&b, "weft: %zu task%s (pid %d, loop time %.3f s)\n", n, n == 1 ? "" : "s",
                      (int)getpid(), weft__now(loop));
    /* The list is newest first: oldest first reads like the program started. Each task is
     * written as soon as it is formatted, so that a dump of many tasks needs little memory. */
    for (t = last; t; t = t->all_prev) {
        if (weft__task_hidden(t)) /* weft's own (the monitor's) */
            continue;
        weft__text_printf(&b, "\n");
        task_report(&b, t, "    ", cache);
        if (b.oom) {
            weft__text_free(&b);
            weft__text_printf(&b, "\n(task #%llu: out of memory)\n", (unsigned long long)t->id);
        }
        write_all(fd, b.p, b.len);
        b.len = 0;
    }
    weft__text_free(&b);
    free(cache);
}

/* ---- SIGQUIT ------------------------------------------------------------------------------ */

/* A loop in debug mode or with a monitor dumps its tasks to stderr on SIGQUIT (Ctrl-\), as a
 * Go program does, and goes on. The watcher is quiet: it never keeps a loop waiting. It is
 * installed only while SIGQUIT's disposition is the default one, or already weft's for another
 * loop's dump: a handler the application chose stays. */
struct weft__quitdump {
    weft__sigwatch_t watch;
    weft__closer_t closer;
    weft_loop_t *loop;
};

static pthread_mutex_t quit_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned quit_loops; /* loops with the dump installed (under quit_lock) */

static void quit_fired(weft__sigwatch_t *w) {
    struct weft__quitdump *q = weft__container_of(w, struct weft__quitdump, watch);
    weft_loop_dump_tasks(q->loop, STDERR_FILENO);
}

static void quit_free(struct weft__quitdump *q) {
    pthread_mutex_lock(&quit_lock);
    quit_loops--;
    pthread_mutex_unlock(&quit_lock);
    q->loop->quitdump = NULL;
    free(q);
}

/* Loop close: its signal watchers are already gone with the loop's signal state. */
static void quit_loop_close(weft__closer_t *c) {
    quit_free(weft__container_of(c, struct weft__quitdump, closer));
}

void weft__quitdump_sync(weft_loop_t *loop) {
    bool want = (loop->debug || loop->monitor) && !loop->closed;
    struct weft__quitdump *q = loop->quitdump;
    if (want == (q != NULL))
        return;
    if (!want) {
        weft__signal_unwatch(loop, &q->watch);
        weft__closer_remove(loop, &q->closer);
        quit_free(q);
        return;
    }
    if (!(q = calloc(1, sizeof *q)))
        return; /* a debugging aid: the loop goes on without it */
    q->loop = loop;
    q->watch.signo = SIGQUIT;
    q->watch.cb = quit_fired;
    q->watch.quiet = true;
    pthread_mutex_lock(&quit_lock);
    if (!quit_loops) {
        struct sigaction cur;
        if (sigaction(SIGQUIT, NULL, &cur) < 0 || (cur.sa_flags & SA_SIGINFO) ||
            cur.sa_handler != SIG_DFL) {
            pthread_mutex_unlock(&quit_lock);
            free(q);
            return;
        }
    }
    if (weft__signal_watch(loop, &q->watch) < 0) {
        pthread_mutex_unlock(&quit_lock);
        free(q);
        return;
    }
    quit_loops++;
    pthread_mutex_unlock(&quit_lock);
    weft__closer_add(loop, &q->closer, quit_loop_close);
    loop->quitdump = q;
}
