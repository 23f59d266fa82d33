/* Child processes: asyncio.create_subprocess_exec / _shell, their pipes, waiting and reaping.
 *
 * A child is started with posix_spawn (glibc reports exec failures as its return value). The
 * loop learns of its exit from a pidfd registered with the poller; on kernels without pidfds
 * (or with WEFT_NO_PIDFD=1 in the environment, for tests) from a SIGCHLD watcher that tries
 * waitpid on each of the loop's children. Either way the loop reaps the child the moment it
 * exits. A child still running when its process is freed, or when its loop closes, is handed
 * to a process-wide background reaper: it is never killed, and never left a zombie. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../net/stream.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

/* A running child given up by its loop, for the background reaper. Allocated with the process,
 * so that handing a child off never fails. */
typedef struct orphan {
    struct orphan *next;
    pid_t pid;
    int pidfd; /* -1: polled with waitpid */
} orphan_t;

struct weft_process {
    weft_loop_t *loop;               /* holds a reference */
    weft_process_t *prev, *next;     /* the loop's children, while linked */
    weft__io_t io;                   /* the pidfd in the poller, until the child is reaped */
    weft_stream_t *stdio[3];         /* the PIPE ones */
    weft__wlist_t waiters;           /* tasks in wait() */
    orphan_t *orphan;                /* until handed to the reaper */
    pid_t pid;
    int pidfd;                       /* -1: none (reaped, handed off, or the SIGCHLD watcher) */
    int returncode;
    unsigned users;                  /* tasks inside calls on it: it outlives a free() until 0 */
    bool linked;                     /* in the loop's list (until destroyed or the loop closes) */
    bool exited;                     /* reaped by the loop: returncode is known */
    bool handed_off;                 /* given to the background reaper */
    bool fallback;                   /* reaped through the SIGCHLD watcher */
    bool freed;                      /* the handle was released */
    /* communicate(): the task reading stderr beside the caller, and what it read. Here rather
     * than on the caller's stack, so that a loop closing in the middle can release them. */
    bool comm_busy;
    weft_task_t *comm_task;
    char *comm_err;
    size_t comm_errlen;
    int comm_errrc;
};

/* The children of one loop. */
struct weft__procs {
    weft_process_t *head;
    weft__sigwatch_t watch;          /* SIGCHLD, while nfallback > 0 */
    unsigned nfallback;              /* fallback children not yet reaped */
};

/* Set once pidfd_open(2) said ENOSYS: later children register the watcher before spawning. */
static _Atomic bool no_pidfd_kernel;

/* ---- the background reaper ------------------------------------------------------------- */

/* One detached thread for the whole process, started when the first orphan arrives and gone
 * when the last one is reaped. It sleeps in poll(2) on the orphans' pidfds; orphans without a
 * pidfd (old kernels) are polled with waitpid every POLL_MS. */
#define POLL_MS 50

static struct {
    pthread_mutex_t lock;
    orphan_t *head;
    int efd;           /* wakes the thread for a new orphan; the thread's own, -1 when gone */
    bool running;
} reaper = {PTHREAD_MUTEX_INITIALIZER, NULL, -1, false};

static pthread_once_t reaper_once = PTHREAD_ONCE_INIT;

/* Reaps an exited child without blocking: true once it is gone (reaped now, or by someone
 * else: ECHILD). The status is stored in *code when code is not NULL. */
static bool reap_now(pid_t pid, int pidfd, int *code) {
    siginfo_t si;
    int r;
    memset(&si, 0, sizeof si);
    do
        r = pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG)
                       : waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG);
    while (r < 0 && errno == EINTR);
    /* Kernels with pidfd_open but without P_PIDFD (5.3): the pid is still ours to wait for. */
    if (r < 0 && errno == EINVAL && pidfd >= 0)
        return reap_now(pid, -1, code);
    if (r < 0) {
        if (errno != ECHILD)
            return false;
        /* Reaped behind our back (SIGCHLD ignored, a waitpid(-1) elsewhere): asyncio reports
         * 255 then. */
        if (code)
            *code = 255;
        return true;
    }
    if (si.si_pid == 0)
        return false;
    if (code)
        *code = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
    return true;
}

static void reap_orphans_locked(bool *pid_only) {
    *pid_only = false;
    for (orphan_t **op = &reaper.head; *op;) {
        orphan_t *o = *op;
        if (reap_now(o->pid, o->pidfd, NULL)) {
            *op = o->next;
            if (o->pidfd >= 0)
                close(o->pidfd);
            free(o);
        } else {
            *pid_only |= o->pidfd < 0;
            op = &o->next;
        }
    }
}

static void *reaper_main(void *arg) {
    struct pollfd *fds = NULL;
    size_t cap = 0;
    (void)arg;
    for (;;) {
        size_t n = 1;
        bool pid_only;
        uint64_t v;
        pthread_mutex_lock(&reaper.lock);
        reap_orphans_locked(&pid_only);
        if (!reaper.head) {
            close(reaper.efd);
            reaper.efd = -1;
            reaper.running = false;
            pthread_mutex_unlock(&reaper.lock);
            free(fds);
            return NULL;
        }
        for (orphan_t *o = reaper.head; o; o = o->next)
            n += o->pidfd >= 0;
        if (n > cap) {
            struct pollfd *f = realloc(fds, n * sizeof *f);
            if (f) {
                fds = f;
                cap = n;
            }
        }
        if (n > cap) { /* out of memory: look at every orphan each POLL_MS instead */
            n = cap;
            pid_only = true;
        }
        if (n) {
            size_t i = 1;
            fds[0] = (struct pollfd){.fd = reaper.efd, .events = POLLIN};
            for (orphan_t *o = reaper.head; o && i < n; o = o->next)
                if (o->pidfd >= 0)
                    fds[i++] = (struct pollfd){.fd = o->pidfd, .events = POLLIN};
        }
        pthread_mutex_unlock(&reaper.lock);
        /* Only this thread closes the pidfds and the eventfd: they stay valid while it polls. */
        if (n)
            poll(fds, n, pid_only ? POLL_MS : -1);
        else
            usleep(POLL_MS * 1000);
        if (n && (fds[0].revents & POLLIN))
            while (read(fds[0].fd, &v, sizeof v) < 0 && errno == EINTR)
                ;
    }
}

/* A forked child does not have the parent's children, nor its reaper thread. */
static void reaper_atfork_child(void) {
    pthread_mutex_init(&reaper.lock, NULL);
    while (reaper.head) {
        orphan_t *o = reaper.head;
        reaper.head = o->next;
        if (o->pidfd >= 0)
            close(o->pidfd);
        free(o);
    }
    if (reaper.efd >= 0)
        close(reaper.efd);
    reaper.efd = -1;
    reaper.running = false;
}

static void reaper_init(void) { pthread_atfork(NULL, NULL, reaper_atfork_child); }

static void reaper_add(orphan_t *o) {
    pthread_once(&reaper_once, reaper_init);
    pthread_mutex_lock(&reaper.lock);
    o->next = reaper.head;
    reaper.head = o;
    if (reaper.running) {
        uint64_t one = 1;
        while (write(reaper.efd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    } else if ((reaper.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) >= 0) {
        pthread_attr_t attr;
        pthread_t th;
        sigset_t all, old;
        int rc;
        /* The thread must not take the process's signals (they are for the loops). */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        rc = pthread_create(&th, &attr, reaper_main, NULL);
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc == 0) {
            reaper.running = true;
        } else {
            close(reaper.efd);
            reaper.efd = -1;
        }
    }
    if (!reaper.running) /* the orphan stays listed: the next hand-off tries again */
        weft__log("cannot start the child reaper thread: pid %d is reaped later",
                  (int)o->pid);
    pthread_mutex_unlock(&reaper.lock);
}

/* ---- reaping on the loop --------------------------------------------------------------- */

static int fallback_watch(weft_loop_t *loop) {
    struct weft__procs *procs = loop->procs;
    int rc;
    if (procs->nfallback++ == 0 && (rc = weft__signal_watch(loop, &procs->watch)) < 0) {
        procs->nfallback--;
        return rc;
    }
    return 0;
}

static void fallback_unwatch(weft_loop_t *loop) {
    struct weft__procs *procs = loop->procs;
    if (--procs->nfallback == 0)
        weft__signal_unwatch(loop, &procs->watch);
}

/* The loop stops watching the child (it exited, or goes to the reaper); keeps the pidfd. */
static void stop_watching(weft_process_t *p) {
    if (p->pidfd >= 0) {
        p->io.events = 0;
        weft__poll_update(&p->loop->poll, &p->io);
    } else if (p->fallback) {
        p->fallback = false;
        fallback_unwatch(p->loop);
    }
}

/* Non-blocking: true if the child has been reaped (now or before). */
static bool try_reap(weft_process_t *p) {
    int code;
    if (p->exited || p->handed_off)
        return p->exited;
    if (!reap_now(p->pid, p->pidfd, &code))
        return false;
    stop_watching(p);
    if (p->pidfd >= 0)
        close(p->pidfd);
    p->pidfd = -1;
    p->exited = true;
    p->returncode = code;
    weft__wlist_grant_all(&p->waiters);
    return true;
}

static void pidfd_event(weft__io_t *io, unsigned events) {
    (void)events;
    try_reap(weft__container_of(io, weft_process_t, io));
}

static void sigchld_event(weft__sigwatch_t *w) {
    struct weft__procs *procs = weft__container_of(w, struct weft__procs, watch);
    for (weft_process_t *p = procs->head; p; p = p->next)
        if (p->fallback)
            try_reap(p);
}

/* Gives a child that is still running to the background reaper. */
static void hand_off(weft_process_t *p) {
    orphan_t *o = p->orphan;
    if (try_reap(p) || p->handed_off)
        return;
    stop_watching(p);
    p->orphan = NULL;
    p->handed_off = true;
    o->pid = p->pid;
    o->pidfd = p->pidfd;
    p->pidfd = -1;
    reaper_add(o);
}

static void unlink_proc(weft_process_t *p) {
    struct weft__procs *procs = p->loop->procs;
    if (!p->linked)
        return;
    if (p->prev)
        p->prev->next = p->next;
    else
        procs->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    p->linked = false;
}

static void destroy(weft_process_t *p) {
    if (p->linked) {
        hand_off(p);
        unlink_proc(p);
    }
    for (int i = 0; i < 3; i++)
        weft_stream_free(p->stdio[i]);
    free(p->comm_err);
    free(p->orphan);
    weft__loop_unref(p->loop);
    free(p);
}

/* A task leaves a call on p: the last one out destroys a freed process. */
static void leave(weft_process_t *p) {
    if (--p->users == 0 && p->freed)
        destroy(p);
}

void weft__process_loop_close(weft_loop_t *loop) {
    struct weft__procs *procs = loop->procs;
    weft_process_t *p, *next;
    if (!procs)
        return;
    for (p = procs->head; p; p = next) {
        next = p->next;
        if (weft__unlikely(loop->debug) && !p->freed) /* asyncio's "unclosed transport" */
            weft__log("unclosed subprocess pid %d (%s)", (int)p->pid,
                      p->exited ? "exited" : "still running");
        hand_off(p);
        unlink_proc(p);
        /* Every task was abandoned: no call on p will ever return to finish its work. */
        p->users = 0;
        p->comm_busy = false;
        if (p->comm_task) {
            weft_unref(p->comm_task);
            p->comm_task = NULL;
        }
        if (p->freed)
            destroy(p);
    }
    free(procs);
    loop->procs = NULL;
}

/* ---- starting a child ------------------------------------------------------------------ */

static bool env_no_pidfd(void) {
    const char *s = getenv("WEFT_NO_PIDFD");
    return s && *s && strcmp(s, "0") != 0;
}

/* One of the child's standard streams as a connected socket pair. A pair, not a pipe: the
 * stream layer's plain transport uses send / recv, and a socket can be half-closed, so
 * weft_stream_write_eof() on stdin gives the child its end of file. The child's end is shut
 * down in the direction a pipe would not have, so it behaves like one (reading stdout gives
 * end of file, writing stdin EPIPE). Both ends are close-on-exec (posix_spawn's dup2 clears the
 * flag on the copy placed at 0-2); the child's end is never 0-2 itself, so that placing it
 * there cannot overwrite another; the parent's is non-blocking. */
static int make_pair(int *parent, int *child, bool child_reads) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    if (sv[1] < 3) {
        int d = fcntl(sv[1], F_DUPFD_CLOEXEC, 3);
        int err = errno;
        close(sv[1]);
        if (d < 0) {
            close(sv[0]);
            return -err;
        }
        sv[1] = d;
    }
    if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        return -err;
    }
    shutdown(sv[1], child_reads ? SHUT_WR : SHUT_RD);
    *parent = sv[0];
    *child = sv[1];
    return 0;
}

static bool valid_mode(int mode, bool may_be_stdout) {
    return mode == WEFT_STDIO_INHERIT || mode == WEFT_STDIO_PIPE || mode == WEFT_STDIO_DEVNULL ||
           (may_be_stdout && mode == WEFT_STDIO_STDOUT);
}

/* The program to run for a name without a slash when the child gets its own environment.
 * posix_spawnp would search the parent's PATH; Python's subprocess searches the child's
 * (os.get_exec_path(env)), or os.defpath when it has none, and users expect that. Entries are
 * tried in order as execvp tries them, with access(2) instead of execve: an empty entry is the
 * current directory, and relative ones start from cwd, where the child goes before its exec.
 * No program found gives -ENOENT, or -EACCES if a candidate was there but not executable.
 * *out is malloc'd (the caller frees it) and has a slash, so posix_spawn runs it as is. */
static int find_program(char **out, const char *file, char *const env[], const char *cwd) {
    const char *path = "/bin:/usr/bin", *dir, *end;
    size_t flen = strlen(file), clen = cwd ? strlen(cwd) + 1 : 0;
    bool denied = false;
    char *buf;
    for (char *const *e = env; *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0) {
            path = *e + 5;
            break;
        }
    if (!*file)
        return WEFT_ENOENT;
    if (!(buf = malloc(clen + strlen(path) + flen + 3)))
        return WEFT_ENOMEM;
    for (dir = path;; dir = end + 1) {
        size_t dlen, off;
        struct stat st;
        end = strchrnul(dir, ':');
        dlen = (size_t)(end - dir);
        off = dlen && *dir == '/' ? 0 : clen;
        if (off) {
            memcpy(buf, cwd, clen - 1);
            buf[clen - 1] = '/';
        }
        if (dlen)
            memcpy(buf + off, dir, dlen);
        else
            buf[off + dlen++] = '.';
        buf[off + dlen] = '/';
        memcpy(buf + off + dlen + 1, file, flen + 1);
        if (access(buf, X_OK) == 0 && stat(buf, &st) == 0) {
            if (S_ISREG(st.st_mode)) {
                memmove(buf, buf + off, dlen + flen + 2);
                *out = buf;
                return 0;
            }
            denied = true; /* execve's EACCES for a directory or a device */
        } else if (errno == EACCES) {
            denied = true;
        }
        if (!*end)
            break;
    }
    free(buf);
    return denied ? WEFT_EACCES : WEFT_ENOENT;
}

static int spawn_child(pid_t *pid, const char *file, char *const argv[],
                       const weft_process_options_t *o, const int modes[3], const int child[3]) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    int rc;
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        return -rc;
    if ((rc = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -rc;
    }
    /* In order: stderr's WEFT_STDIO_STDOUT copies what stdout has just become. */
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (modes[i] == WEFT_STDIO_PIPE)
            rc = posix_spawn_file_actions_adddup2(&fa, child[i], i);
        else if (modes[i] == WEFT_STDIO_DEVNULL)
            rc = posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i ? O_WRONLY : O_RDONLY,
                                                  0);
        else if (modes[i] == WEFT_STDIO_STDOUT)
            rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
#if __GLIBC_PREREQ(2, 29)
    if (rc == 0 && o->cwd)
        rc = posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
#else
    if (rc == 0 && o->cwd)
        rc = ENOSYS;
#endif
#if __GLIBC_PREREQ(2, 34)
    /* Whatever a library or the application opened without O_CLOEXEC stays in the parent. */
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    sigemptyset(&none);
    sigfillset(&all);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                               (o->start_new_session ? POSIX_SPAWN_SETSID : 0));
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&at, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&at, &all);
    if (rc == 0) {
        char *const *envp = o->env ? o->env : environ;
        rc = strchr(file, '/') ? posix_spawn(pid, file, &fa, &at, argv, envp)
                               : posix_spawnp(pid, file, &fa, &at, argv, envp);
    }
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
}

static int create(weft_process_t **out, const char *file, char *const argv[],
                  const weft_process_options_t *opts) {
    static const weft_process_options_t defaults;
    const weft_process_options_t *o = opts ? opts : &defaults;
    const int modes[3] = {o->stdin_mode, o->stdout_mode, o->stderr_mode};
    int parent[3] = {-1, -1, -1}, child[3] = {-1, -1, -1};
    weft_loop_t *loop = weft__tls_loop;
    weft_process_t *p;
    char *found = NULL;
    int rc = 0;

    if (!out || !file || !argv || !argv[0] || !valid_mode(modes[0], false) ||
        !valid_mode(modes[1], false) || !valid_mode(modes[2], true))
        return WEFT_EINVAL;
    *out = NULL;
    if (!loop)
        return WEFT_EPERM;
    WEFT__LOOP_THREAD(loop);
    if (!loop->procs) {
        if (!(loop->procs = calloc(1, sizeof *loop->procs)))
            return WEFT_ENOMEM;
        loop->procs->watch.signo = SIGCHLD;
        loop->procs->watch.cb = sigchld_event;
    }
    if (!(p = calloc(1, sizeof *p)))
        return WEFT_ENOMEM;
    if (!(p->orphan = malloc(sizeof *p->orphan))) {
        free(p);
        return WEFT_ENOMEM;
    }
    p->loop = loop;
    loop->refs++;
    p->pidfd = -1;
    p->io.fd = -1;
    p->io.cb = pidfd_event;
    weft__wlist_init(&p->waiters);

    /* Everything that can fail comes before the child starts: after, there is nothing to undo
     * but the child itself. */
    if (o->env && !strchr(file, '/'))
        rc = find_program(&found, file, o->env, o->cwd);
    for (int i = 0; i < 3 && rc == 0; i++)
        if (modes[i] == WEFT_STDIO_PIPE)
            rc = make_pair(&parent[i], &child[i], i == 0);
    for (int i = 0; i < 3 && rc == 0; i++)
        if (parent[i] >= 0) {
            weft__fd_fresh(loop, parent[i]);
            rc = weft__stream_new(loop, parent[i], true, i ? o->limit : 0, &p->stdio[i]);
            if (rc == 0)
                parent[i] = -1; /* the stream's now */
        }
    if (rc == 0 && (env_no_pidfd() || atomic_load(&no_pidfd_kernel))) {
        if ((rc = fallback_watch(loop)) == 0)
            p->fallback = true;
    }
    if (rc == 0)
        rc = spawn_child(&p->pid, found ? found : file, argv, o, modes, child);
    free(found);
    for (int i = 0; i < 3; i++) {
        if (child[i] >= 0)
            close(child[i]);
        if (parent[i] >= 0)
            close(parent[i]);
    }
    if (rc == 0 && !p->fallback) {
        p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
        if (p->pidfd < 0) {
            rc = -errno;
            if (rc == WEFT_ENOSYS)
                atomic_store(&no_pidfd_kernel, true);
        } else {
            p->io.fd = p->pidfd;
            p->io.events = WEFT__POLL_IN;
            if ((rc = weft__poll_update(&loop->poll, &p->io)) < 0) {
                close(p->pidfd);
                p->pidfd = -1;
            }
        }
        /* No pidfd for this child: the SIGCHLD watcher, which try_reap() below backs up for a
         * child that exited before it was registered. Failing that, the child must go. */
        if (rc < 0 && fallback_watch(loop) == 0) {
            p->fallback = true;
            rc = 0;
        } else if (rc < 0) {
            kill(p->pid, SIGKILL);
            while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
    }
    if (rc < 0) {
        if (p->fallback)
            fallback_unwatch(loop);
        destroy(p); /* not linked: the streams, the orphan slot, the loop's reference */
        return rc;
    }
    p->linked = true;
    p->next = loop->procs->head;
    if (p->next)
        p->next->prev = p;
    loop->procs->head = p;
    if (p->fallback)
        try_reap(p);
    *out = p;
    return 0;
}

int weft_create_subprocess_exec(weft_process_t **p, const char *file, char *const argv[],
                                const weft_process_options_t *opts) {
    return create(p, file, argv, opts);
}

int weft_create_subprocess_shell(weft_process_t **p, const char *cmd,
                                 const weft_process_options_t *opts) {
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    if (!cmd)
        return WEFT_EINVAL;
    return create(p, "/bin/sh", argv, opts);
}

/* ---- the process object ---------------------------------------------------------------- */

weft_stream_t *weft_process_stdin(weft_process_t *p) { return p ? p->stdio[0] : NULL; }
weft_stream_t *weft_process_stdout(weft_process_t *p) { return p ? p->stdio[1] : NULL; }
weft_stream_t *weft_process_stderr(weft_process_t *p) { return p ? p->stdio[2] : NULL; }
int weft_process_pid(const weft_process_t *p) { return p ? (int)p->pid : WEFT_EINVAL; }

int weft_process_returncode(const weft_process_t *p, int *returncode) {
    if (!p)
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(p->loop);
    if (!p->exited)
        return 0;
    if (returncode)
        *returncode = p->returncode;
    return 1;
}

/* The calling task, which must run on p's loop. */
static int proc_task(weft_process_t *p, weft_task_t **t) {
    if (!p)
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(p->loop);
    if (!(*t = weft__current()))
        return WEFT_EPERM;
    return (*t)->loop == p->loop ? 0 : WEFT_EINVAL;
}

int weft_process_wait(weft_process_t *p, int *returncode) {
    weft_task_t *t;
    weft__wnode_t n;
    int rc = proc_task(p, &t);
    if (rc < 0)
        return rc;
    if (p->handed_off)
        return WEFT_ESRCH;
    if (!try_reap(p)) {
        p->users++;
        while (!p->exited && rc == 0) {
            WEFT__WAITING(t, "process wait", p);
            if (weft__cancel_visible(t))
                rc = WEFT_ECANCELED;
            else
                rc = weft__wlist_wait(&p->waiters, &n, t, p, false, weft__wnode_abort_unlink,
                                      NULL);
        }
        if (rc == 0 && returncode)
            *returncode = p->returncode;
        leave(p);
        return rc < 0 ? rc : 0;
    }
    if (returncode)
        *returncode = p->returncode;
    return 0;
}

int weft_process_send_signal(weft_process_t *p, int signo) {
    int r;
    if (!p)
        return WEFT_EINVAL;
    WEFT__LOOP_THREAD(p->loop);
    if (p->exited || p->handed_off)
        return WEFT_ESRCH;
    if (signo < 0 || signo >= NSIG)
        return WEFT_EINVAL;
    /* Without a pidfd the pid cannot have been reused: the child is ours and not reaped yet
     * (at worst a zombie). */
    if (p->pidfd >= 0)
        r = (int)syscall(SYS_pidfd_send_signal, p->pidfd, signo, NULL, 0);
    else
        r = kill(p->pid, signo);
    return r < 0 ? -errno : 0;
}

int weft_process_terminate(weft_process_t *p) { return weft_process_send_signal(p, SIGTERM); }
int weft_process_kill(weft_process_t *p) { return weft_process_send_signal(p, SIGKILL); }

void weft_process_free(weft_process_t *p) {
    if (!p || p->freed)
        return;
    WEFT__LOOP_THREAD(p->loop);
    p->freed = true;
    if (p->users == 0)
        destroy(p);
}

/* ---- communicate ----------------------------------------------------------------------- */

static int read_stderr(void *arg, void **result) {
    weft_process_t *p = arg;
    char *buf = NULL;
    size_t len = 0;
    (void)result;
    p->comm_errrc = weft_stream_read_all(p->stdio[2], &buf, &len);
    if (p->comm_errrc == 0) {
        p->comm_err = buf;
        p->comm_errlen = len;
    }
    return 0;
}

static void give(char **dst, size_t *dstlen, char *buf, size_t len) {
    if (dst)
        *dst = buf;
    else
        free(buf);
    if (dstlen)
        *dstlen = len;
}

int weft_process_communicate(weft_process_t *p, const void *input, size_t n, char **out,
                             size_t *outlen, char **err, size_t *errlen, int *returncode) {
    static const weft_task_options_t reader_opts = {"communicate-stderr", 0};
    weft_stream_t *in, *so, *se;
    char *obuf = NULL, *ebuf = NULL;
    size_t olen = 0, elen = 0;
    weft_task_t *t;
    int rc = proc_task(p, &t), code = 0;
    if (rc < 0)
        return rc;
    in = p->stdio[0];
    so = p->stdio[1];
    se = p->stdio[2];
    if ((n && !input) || (n && !in))
        return WEFT_EINVAL;
    if (p->comm_busy)
        return WEFT_EBUSY;
    p->users++;
    p->comm_busy = true;

    /* The input goes into the stream's buffer, which the poller sends in the background while
     * this task reads; closing sends what is left, then gives the child its end of file. */
    if (in) {
        if (n && (rc = weft_stream_write(in, input, n)) == WEFT_EPIPE)
            rc = 0;
        if (rc == WEFT_ECONNRESET)
            rc = 0;
        weft_stream_close(in);
    }
    /* Both outputs at once: stderr in a task of its own, stdout here. */
    if (rc == 0 && so && se) {
        p->comm_errrc = WEFT_ECANCELED; /* if the reader is cancelled before it starts */
        rc = weft_loop_create_task(p->loop, &p->comm_task, read_stderr, p, &reader_opts);
    }
    if (rc == 0 && so)
        rc = weft_stream_read_all(so, &obuf, &olen);
    else if (rc == 0 && se)
        rc = weft_stream_read_all(se, &ebuf, &elen);
    if (p->comm_task) {
        if (rc < 0) { /* the reader must be gone before this call returns */
            weft_cancel(p->comm_task, NULL);
            weft_shield_begin();
            weft_await(p->comm_task, NULL);
            weft_shield_end();
        } else if (weft_await(p->comm_task, NULL) == WEFT_ECANCELED) {
            rc = WEFT_ECANCELED;
        }
        weft_unref(p->comm_task);
        p->comm_task = NULL;
        if (rc == 0)
            rc = p->comm_errrc;
        ebuf = p->comm_err;
        elen = p->comm_errlen;
        p->comm_err = NULL;
    }
    if (rc == 0)
        rc = weft_process_wait(p, &code);
    p->comm_busy = false;
    leave(p);
    if (rc < 0) {
        free(obuf);
        free(ebuf);
        return rc;
    }
    give(out, outlen, obuf, olen);
    give(err, errlen, ebuf, elen);
    if (returncode)
        *returncode = code;
    return 0;
}
