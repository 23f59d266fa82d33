/* The logger every report of weft goes through, and debug mode's reports. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- the logger --------------------------------------------------------------------------- */

/* The threshold is read with one relaxed load before anything else, so that a message below it
 * costs a compare. LEVEL_UNSET until the environment has been read (lazily, not in a
 * constructor: a program may set WEFT_LOG_LEVEL itself before it first logs). */
#define LEVEL_UNSET INT_MIN
static _Atomic int threshold = LEVEL_UNSET;

/* The sink and its argument, changed and called under `lock`: a sink sees one message at a
 * time, whatever thread logs. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static weft_log_fn sink;
static void *sink_arg;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Set while this thread is inside the user's sink: a sink that logs (or calls something that
 * does) would wait for the lock it holds; its messages go to the default sink instead. */
static __thread bool in_sink;

/* A fork while another thread holds the lock would leave the child's lock taken forever (a
 * child of a threaded program that logs would hang): the lock is held across fork. */
static void atfork_prepare(void) { pthread_mutex_lock(&lock); }
static void atfork_release(void) { pthread_mutex_unlock(&lock); }

static int parse_level(const char *s) {
    static const struct {
        const char *name;
        int level;
    } names[] = {{"debug", WEFT_LOG_DEBUG},     {"info", WEFT_LOG_INFO},
                 {"warning", WEFT_LOG_WARNING}, {"warn", WEFT_LOG_WARNING},
                 {"error", WEFT_LOG_ERROR},     {"critical", 50}};
    char *end;
    long v;
    if (!s || !*s)
        return WEFT_LOG_WARNING;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0)
            return names[i].level;
    errno = 0;
    v = strtol(s, &end, 10);
    if (!*end && !errno && v >= 0 && v <= 1000) /* Python's numeric levels work too */
        return (int)v;
    return WEFT_LOG_WARNING;
}

static void init(void) {
    int expected = LEVEL_UNSET;
    pthread_atfork(atfork_prepare, atfork_release, atfork_release);
    /* weft_log_set_level() may have come first: it wins over the environment. */
    atomic_compare_exchange_strong(&threshold, &expected, parse_level(getenv("WEFT_LOG_LEVEL")));
}

static inline int level_now(void) {
    int l = atomic_load_explicit(&threshold, memory_order_relaxed);
    if (weft__unlikely(l == LEVEL_UNSET)) {
        pthread_once(&init_once, init);
        l = atomic_load_explicit(&threshold, memory_order_relaxed);
    }
    return l;
}

const char *weft_log_level_name(int level) {
    static __thread char other[24];
    switch (level) {
    case WEFT_LOG_DEBUG:
        return "DEBUG";
    case WEFT_LOG_INFO:
        return "INFO";
    case WEFT_LOG_WARNING:
        return "WARNING";
    case WEFT_LOG_ERROR:
        return "ERROR";
    case 50:
        return "CRITICAL";
    default: /* as Python's logging.getLevelName() */
        snprintf(other, sizeof other, "Level %d", level);
        return other;
    }
}

/* One write(2) for the whole line, so that lines of several threads or processes sharing the
 * descriptor never interleave (stdio would split a long line into several writes). */
static void default_sink(int level, const char *msg) {
    char small[1024], *line = small;
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    size_t len, cap = sizeof small, mlen = strlen(msg);
    int n;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    if (mlen + 96 > cap) {
        cap = mlen + 96;
        if (!(line = malloc(cap))) { /* out of memory: a cut line is better than none */
            line = small;
            cap = sizeof small;
        }
    }
    n = snprintf(line, cap, "%s.%03ld weft %s: %s\n", stamp, ts.tv_nsec / 1000000L,
                 weft_log_level_name(level), msg);
    len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    if (len && line[len - 1] != '\n') /* cut: still a line */
        line[len - 1] = '\n';
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (line != small)
        free(line);
}

static void deliver(int level, const char *msg) {
    if (in_sink) {
        default_sink(level, msg);
        return;
    }
    pthread_mutex_lock(&lock);
    if (sink) {
        in_sink = true;
        sink(level, msg, sink_arg);
        in_sink = false;
    } else {
        default_sink(level, msg);
    }
    pthread_mutex_unlock(&lock);
}

void weft__vlog(int level, const char *fmt, va_list ap) {
    char small[1024], *msg = small;
    va_list copy;
    int n;
    if (level < level_now())
        return;
    va_copy(copy, ap);
    n = vsnprintf(small, sizeof small, fmt, copy);
    va_end(copy);
    if (n >= (int)sizeof small && !(msg = weft__vasprintf(fmt, ap)))
        msg = small; /* out of memory: the message cut at the buffer's size */
    if (n < 0)
        small[0] = '\0';
    /* A sink gets one line without its newline. */
    for (size_t len = strlen(msg); len && msg[len - 1] == '\n'; len--)
        msg[len - 1] = '\0';
    deliver(level, msg);
    if (msg != small)
        free(msg);
}

void weft__log_at(int level, const char *fmt, ...) {
    va_list ap;
    if (level < level_now())
        return;
    va_start(ap, fmt);
    weft__vlog(level, fmt, ap);
    va_end(ap);
}

void weft__log(const char *fmt, ...) {
    va_list ap;
    if (WEFT_LOG_WARNING < level_now())
        return;
    va_start(ap, fmt);
    weft__vlog(WEFT_LOG_WARNING, fmt, ap);
    va_end(ap);
}

void weft_log(int level, const char *fmt, ...) {
    va_list ap;
    if (!fmt || level < level_now())
        return;
    va_start(ap, fmt);
    weft__vlog(level, fmt, ap);
    va_end(ap);
}

void weft_log_set_sink(weft_log_fn fn, void *arg) {
    pthread_once(&init_once, init);
    pthread_mutex_lock(&lock);
    sink = fn;
    sink_arg = fn ? arg : NULL;
    pthread_mutex_unlock(&lock);
}

void weft_log_set_level(int level) {
    pthread_once(&init_once, init);
    atomic_store_explicit(&threshold, level, memory_order_relaxed);
}

int weft_log_get_level(void) { return level_now(); }

/* ---- debug mode --------------------------------------------------------------------------- */

bool weft__debug_env(void) {
    const char *s = getenv("WEFT_DEBUG");
    return s && (strcmp(s, "1") == 0 || strcasecmp(s, "true") == 0 ||
                 strcasecmp(s, "yes") == 0 || strcasecmp(s, "on") == 0);
}

/* Wall time on the monotonic clock even for a loop with a virtual clock: what debug mode
 * measures is how long the thread was really kept busy. */
double weft__debug_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void weft_loop_set_debug(weft_loop_t *loop, int enabled) {
    WEFT__LOOP_THREAD(loop);
    /* Turned on in the middle of a step: that step is timed from now, not from a stale start. */
    if (enabled && !loop->debug)
        loop->debug_began = weft__debug_clock();
    loop->debug = enabled != 0;
    weft__quitdump_sync(loop); /* the SIGQUIT task dump follows debug mode */
}

int weft_loop_get_debug(const weft_loop_t *loop) { return loop->debug; }

void weft_loop_set_slow_callback_duration(weft_loop_t *loop, double seconds) {
    WEFT__LOOP_THREAD(loop);
    if (seconds >= 0) /* NaN and negative durations leave it as it was */
        loop->slow_callback_duration = seconds;
}

const char *weft__site_suffix(const weft_task_t *t, char *buf, size_t len) {
    char site[256];
    if (!weft_task_created_at(t, site, sizeof site))
        return "";
    snprintf(buf, len, " (created at %s)", site);
    return buf;
}

void weft__debug_task_left(weft_loop_t *loop, weft_task_t *t) {
    double now = weft__debug_clock(), took = now - loop->debug_began;
    if (weft__unlikely(took >= loop->slow_callback_duration)) {
        char site[256];
        if (!weft_task_created_at(t, site, sizeof site))
            site[0] = '\0';
        weft__log("Executing <Task '%s' #%llu%s%s> took %.3f seconds", weft_task_name(t),
                  (unsigned long long)t->id, site[0] ? " created at " : "", site, took);
        now = weft__debug_clock(); /* the report's own time is not the next step's */
    }
    loop->debug_began = now;
}

/* A function's name for a report: its symbol if the dynamic linker knows it (functions of
 * shared libraries, and of programs linked with -rdynamic), else its address and the object
 * it lies in, which addr2line turns into a line. */
static void describe_fn(void *fn, char *buf, size_t len) {
    Dl_info info;
    if (fn && dladdr(fn, &info)) {
        const char *obj = info.dli_fname ? strrchr(info.dli_fname, '/') : NULL;
        obj = obj ? obj + 1 : info.dli_fname ? info.dli_fname : "?";
        if (info.dli_sname && info.dli_saddr == fn) {
            snprintf(buf, len, "%s", info.dli_sname);
            return;
        }
        snprintf(buf, len, "%p (%s+0x%lx)", fn, obj,
                 (unsigned long)((uintptr_t)fn - (uintptr_t)info.dli_fbase));
        return;
    }
    snprintf(buf, len, "%p", fn);
}

void weft__debug_callback_done(weft_loop_t *loop, void *fn, double began) {
    double now = weft__debug_clock(), took = now - began;
    if (weft__unlikely(took >= loop->slow_callback_duration)) {
        char name[256];
        describe_fn(fn, name, sizeof name);
        weft__log("Executing <Handle %s> took %.3f seconds", name, took);
    }
}

void weft__log_unclosed_socket(const char *what, int fd, bool peer) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char addr[160] = "";
    if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&ss, &len) == 0)
        weft__format_sockaddr(addr, sizeof addr, (struct sockaddr *)&ss, len);
    weft__log("unclosed %s fd %d%s%s%s", what, fd, addr[0] ? (peer ? " (peer " : " (local ") : "",
              addr, addr[0] ? ")" : "");
}

size_t weft__format_sockaddr(char *buf, size_t len, const struct sockaddr *sa, socklen_t salen) {
    char host[INET6_ADDRSTRLEN];
    int n = 0;
    if (!len)
        return 0;
    buf[0] = '\0';
    if (!sa || salen < (socklen_t)sizeof(sa_family_t))
        return 0;
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        n = snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        n = snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        size_t plen = salen > offsetof(struct sockaddr_un, sun_path)
                          ? salen - offsetof(struct sockaddr_un, sun_path)
                          : 0;
        if (plen == 0) /* unnamed: a socketpair's end, a client that did not bind */
            return 0;
        if (un->sun_path[0] == '\0') /* abstract namespace, shown as ss(8) does */
            n = snprintf(buf, len, "unix:@%.*s", (int)(plen - 1), un->sun_path + 1);
        else
            n = snprintf(buf, len, "unix:%.*s", (int)strnlen(un->sun_path, plen), un->sun_path);
        break;
    }
    default:
        n = snprintf(buf, len, "family %d", sa->sa_family);
        break;
    }
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}
