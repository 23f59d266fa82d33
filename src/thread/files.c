/* Blocking system calls on the loop's default executor, by weft_to_thread()'s rules: files
 * (aiofiles-style), and getaddrinfo(3) itself for the name services c-ares does not know.
 *
 * Each call's arguments and results live in a struct on the calling task's stack: a cancelled
 * call still waits for a system call that has started, so the struct outlives the job, and the
 * call then undoes what it can (closes what it opened, frees what it read). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../net/net.h"
#include "executor.h"

typedef struct file_call {
    const char *path;
    int fd, flags, mode;
    void *buf;              /* read */
    const void *data;       /* write */
    size_t n;
    off_t offset;           /* < 0: the file position */
    struct stat *st;
    char *all;              /* read_all's buffer, and its length */
    size_t len;
    ssize_t ret;            /* a descriptor or a count */
    bool ran;               /* the job started: set by the job itself */
} file_call_t;

/* Runs on the worker: the error of a call on `path`, with the path in its message. */
static int path_fail(const char *path) {
    int err = errno;
    char buf[128];
    return weft_fail(-err, "%s: %s", path, strerror_r(err, buf, sizeof buf));
}

static int write_fully(int fd, const char *p, size_t n, off_t offset) {
    size_t done = 0;
    while (done < n) {
        ssize_t k = offset >= 0 ? pwrite(fd, p + done, n - done, offset + (off_t)done)
                                : write(fd, p + done, n - done);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            return WEFT_EIO; /* no progress and no error: do not spin */
        done += (size_t)k;
    }
    return 0;
}

/* ---- jobs --------------------------------------------------------------------------------- */

static int open_job(void *arg, void **result) {
    file_call_t *c = arg;
    c->ran = true;
    if ((c->ret = open(c->path, c->flags | O_CLOEXEC, c->mode)) < 0)
        return path_fail(c->path);
    return 0;
}

static int close_job(void *arg, void **result) {
    file_call_t *c = arg;
    c->ran = true;
    return close(c->fd) < 0 && errno != EINTR ? -errno : 0; /* EINTR: Linux closed it anyway */
}

static int read_job(void *arg, void **result) {
    file_call_t *c = arg;
    ssize_t n;
    c->ran = true;
    do
        n = c->offset >= 0 ? pread(c->fd, c->buf, c->n, c->offset) : read(c->fd, c->buf, c->n);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    c->ret = n;
    return 0;
}

static int write_job(void *arg, void **result) {
    file_call_t *c = arg;
    int rc;
    c->ran = true;
    if ((rc = write_fully(c->fd, c->data, c->n, c->offset)) < 0)
        return rc;
    c->ret = (ssize_t)c->n;
    return 0;
}

static int fsync_job(void *arg, void **result) {
    file_call_t *c = arg;
    c->ran = true;
    return fsync(c->fd) < 0 ? -errno : 0;
}

static int stat_job(void *arg, void **result) {
    file_call_t *c = arg;
    c->ran = true;
    if (c->path)
        return stat(c->path, c->st) < 0 ? path_fail(c->path) : 0;
    return fstat(c->fd, c->st) < 0 ? -errno : 0;
}

static int read_all_job(void *arg, void **result) {
    file_call_t *c = arg;
    struct stat st;
    size_t cap = 4096, len = 0;
    char *buf;
    int fd, err = 0;
    c->ran = true;
    if ((fd = open(c->path, O_RDONLY | O_CLOEXEC)) < 0)
        return path_fail(c->path);
    /* Sized for the whole file at once when it says how big it is (/proc files do not). */
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (unsigned long long)st.st_size < SIZE_MAX / 2)
        cap = (size_t)st.st_size + 1;
    if (!(buf = malloc(cap))) {
        close(fd);
        return WEFT_ENOMEM;
    }
    for (;;) {
        ssize_t n;
        if (len + 1 == cap) {
            char *grown = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!grown) {
                err = ENOMEM;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = errno;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (err) {
        free(buf);
        errno = err;
        return path_fail(c->path);
    }
    buf[len] = '\0';
    c->all = buf;
    c->len = len;
    return 0;
}

static int write_all_job(void *arg, void **result) {
    file_call_t *c = arg;
    int fd, rc;
    c->ran = true;
    if ((fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0)
        return path_fail(c->path);
    rc = write_fully(fd, c->data, c->n, -1);
    if (close(fd) < 0 && rc == 0 && errno != EINTR)
        rc = -errno; /* a delayed write error (NFS, quotas) */
    if (rc < 0) {
        errno = -rc;
        return path_fail(c->path);
    }
    return 0;
}

/* ---- the calls ---------------------------------------------------------------------------- */

/* Runs fn(c) as weft__to_thread does, after the checks weft_await makes, in its order: -EPERM
 * outside a task, then the arguments. */
static int run_call(weft_job_fn fn, file_call_t *c, bool args_ok, bool *cancelled) {
    *cancelled = false;
    if (!weft__current())
        return WEFT_EPERM;
    if (!args_ok)
        return WEFT_EINVAL;
    return weft__to_thread(fn, c, NULL, cancelled);
}

int weft_file_open(const char *path, int flags, int mode) {
    file_call_t c = {.path = path, .flags = flags, .mode = mode};
    bool cancelled;
    int rc = run_call(open_job, &c, path != NULL, &cancelled);
    if (cancelled) {
        if (rc == 0)
            close((int)c.ret);
        return WEFT_ECANCELED;
    }
    return rc < 0 ? rc : (int)c.ret;
}

int weft_file_close(int fd) {
    file_call_t c = {.fd = fd};
    bool cancelled;
    int rc = run_call(close_job, &c, true, &cancelled);
    if (cancelled && !c.ran)
        close(fd); /* cancelled before it started: a descriptor is never left in doubt */
    return cancelled ? WEFT_ECANCELED : rc;
}

ssize_t weft_file_read(int fd, void *buf, size_t n, off_t offset) {
    file_call_t c = {.fd = fd, .buf = buf, .n = n, .offset = offset};
    bool cancelled;
    int rc = run_call(read_job, &c, buf || n == 0, &cancelled);
    return cancelled ? WEFT_ECANCELED : rc < 0 ? rc : c.ret;
}

ssize_t weft_file_write(int fd, const void *buf, size_t n, off_t offset) {
    file_call_t c = {.fd = fd, .data = buf, .n = n, .offset = offset};
    bool cancelled;
    int rc = run_call(write_job, &c, buf || n == 0, &cancelled);
    return cancelled ? WEFT_ECANCELED : rc < 0 ? rc : c.ret;
}

static int run_simple(weft_job_fn fn, file_call_t *c, bool args_ok) {
    bool cancelled;
    int rc = run_call(fn, c, args_ok, &cancelled);
    return cancelled ? WEFT_ECANCELED : rc;
}

int weft_file_fsync(int fd) {
    file_call_t c = {.fd = fd};
    return run_simple(fsync_job, &c, true);
}

int weft_file_stat(const char *path, struct stat *st) {
    file_call_t c = {.path = path, .st = st};
    return run_simple(stat_job, &c, path && st);
}

int weft_file_fstat(int fd, struct stat *st) {
    file_call_t c = {.fd = fd, .st = st};
    return run_simple(stat_job, &c, st != NULL);
}

int weft_file_read_all(const char *path, char **data, size_t *len) {
    file_call_t c = {.path = path};
    bool cancelled;
    int rc = run_call(read_all_job, &c, path && data, &cancelled);
    if (cancelled || rc < 0) {
        free(c.all);
        if (data)
            *data = NULL;
        return cancelled ? WEFT_ECANCELED : rc;
    }
    *data = c.all;
    if (len)
        *len = c.len;
    return 0;
}

int weft_file_write_all(const char *path, const void *data, size_t n) {
    file_call_t c = {.path = path, .data = data, .n = n};
    return run_simple(write_all_job, &c, path && (data || n == 0));
}

/* ---- getaddrinfo(3) ----------------------------------------------------------------------- */

typedef struct gai_call {
    const char *host, *port;
    struct addrinfo hints;
    struct addrinfo *res;   /* libc's list */
    int eai, err;
} gai_call_t;

static int gai_job(void *arg, void **result) {
    gai_call_t *c = arg;
    errno = 0;
    c->eai = getaddrinfo(c->host, c->port, &c->hints, &c->res);
    c->err = errno;
    return 0;
}

int weft_getaddrinfo_system(const char *host, const char *port, const struct addrinfo *hints,
                            struct addrinfo **res) {
    gai_call_t c = {.host = host, .port = port};
    bool cancelled;
    int rc = weft__addrinfo_hints(host, port, hints, res, &c.hints);
    if (rc < 0)
        return rc;
    rc = weft__to_thread(gai_job, &c, NULL, &cancelled);
    if (rc == 0 && c.eai == 0) {
        if (!cancelled)
            rc = weft__addrinfo_copy(c.res, res);
        freeaddrinfo(c.res);
    }
    if (cancelled)
        return WEFT_ECANCELED;
    if (rc == 0 && c.eai != 0)
        return weft__gai_fail(c.eai, c.err, host, port);
    return rc;
}

/* nsswitch.conf's "hosts:" line, read once per process: weft_getaddrinfo() asks libc for the
 * names c-ares cannot find only when it names a source c-ares does not read itself (mdns,
 * myhostname, resolve, ldap, nis, wins, ...). WEFT_NSSWITCH=<path> reads another file (tests). */
static pthread_once_t nss_once = PTHREAD_ONCE_INIT;
static bool nss_beyond;

#define WS " \t\r\n"

static bool hosts_beyond(char *list) {
    char *save = NULL, *hash = strchr(list, '#');
    bool in_action = false;
    if (hash)
        *hash = '\0';
    for (char *tok = strtok_r(list, WS, &save); tok; tok = strtok_r(NULL, WS, &save)) {
        if (in_action || tok[0] == '[') { /* [NOTFOUND=return], possibly spaced out */
            in_action = !strchr(tok, ']');
            continue;
        }
        if (strcmp(tok, "files") != 0 && strcmp(tok, "dns") != 0)
            return true;
    }
    return false;
}

static void nss_read(void) {
    const char *path = getenv("WEFT_NSSWITCH");
    char line[1024];
    FILE *f = fopen(path && *path ? path : "/etc/nsswitch.conf", "re");
    if (!f)
        return; /* glibc's default then is "dns files" */
    while (fgets(line, sizeof line, f)) {
        char *p = line + strspn(line, " \t");
        if (strncmp(p, "hosts:", 6) == 0) {
            nss_beyond = hosts_beyond(p + 6);
            break;
        }
    }
    fclose(f);
}

bool weft__nss_hosts_beyond_dns(void) {
    pthread_once(&nss_once, nss_read);
    return nss_beyond;
}
