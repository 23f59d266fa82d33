/* Files on the default executor (open, read, write, fsync, stat, read_all, write_all) in a
 * private temporary directory, their errors and their cancellation; getaddrinfo(3) on the
 * executor, and weft_getaddrinfo()'s fallback to it when nsswitch.conf names other sources.
 * Real clock: the calls run on real threads. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "wt.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static char dir[64];

static void dir_make(void) {
    snprintf(dir, sizeof dir, "/tmp/weft-files.XXXXXX");
    ASSERT_NOT_NULL(mkdtemp(dir));
}

/* Removes the directory and what the test left in it. */
static void dir_remove(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ASSERT_OK(system(cmd));
}

static const char *in_dir(const char *name) {
    static char path[4][128];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 128, "%s/%s", dir, name);
    return p;
}

/* Runs body as the main task of a real-clock loop with `workers` default workers (0: the
 * default), in a fresh temporary directory, then closes the loop clean. */
static void run_in_dir(weft_task_fn body, unsigned workers) {
    weft_loop_options_t o = {.executor_workers = workers};
    weft_loop_t *loop;
    dir_make();
    ASSERT_OK(weft_loop_new(&loop, &o));
    ASSERT_OK(wt_run_task(loop, body, NULL, NULL));
    WT_CLOSE_LOOP(loop);
    dir_remove();
}

/* ---- the calls ---------------------------------------------------------------------------- */

static int roundtrip_main(void *arg, void **res) {
    const char *path = in_dir("a.txt");
    char buf[64] = {0}, *all;
    struct stat st;
    size_t len;
    int fd = weft_file_open(path, O_CREAT | O_RDWR | O_EXCL, 0600);
    ASSERT_GE_INT(fd, 0);
    ASSERT_EQ_INT(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    ASSERT_EQ_INT(weft_file_write(fd, "hello world", 11, -1), 11);
    ASSERT_EQ_INT(weft_file_write(fd, "WEFT!", 5, 6), 5); /* pwrite: the position stays */
    ASSERT_EQ_INT(weft_file_write(fd, "?", 1, -1), 1);
    ASSERT_OK(weft_file_fsync(fd));
    ASSERT_EQ_INT(weft_file_read(fd, buf, sizeof buf, 0), 12);
    ASSERT_EQ_STR(buf, "hello WEFT!?");
    memset(buf, 0, sizeof buf);
    ASSERT_EQ_INT(weft_file_read(fd, buf, 4, 6), 4);
    ASSERT_EQ_STR(buf, "WEFT");
    ASSERT_EQ_INT(weft_file_read(fd, buf, sizeof buf, -1), 0); /* at the end: EOF */
    ASSERT_OK(weft_file_fstat(fd, &st));
    ASSERT_EQ_INT(st.st_size, 12);
    ASSERT_EQ_INT(st.st_mode & 0777, 0600);
    ASSERT_OK(weft_file_close(fd));
    ASSERT_EQ_INT(fcntl(fd, F_GETFD), -1);
    memset(&st, 0, sizeof st);
    ASSERT_OK(weft_file_stat(path, &st));
    ASSERT_EQ_INT(st.st_size, 12);
    ASSERT_OK(weft_file_read_all(path, &all, &len));
    ASSERT_EQ_INT(len, 12);
    ASSERT_EQ_STR(all, "hello WEFT!?");
    free(all);
    return 0;
}

TEST(open_write_read_stat) { run_in_dir(roundtrip_main, 0); }

/* write_all / read_all of a file larger than any first guess, and of an empty one. */
static int whole_files_main(void *arg, void **res) {
    size_t n = 1 << 20, len = 1;
    char *data = malloc(n), *back = NULL;
    struct stat st;
    ASSERT_NOT_NULL(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + i * 7 % 26);
    ASSERT_OK(weft_file_write_all(in_dir("big"), data, n));
    ASSERT_OK(weft_file_read_all(in_dir("big"), &back, &len));
    ASSERT_EQ_INT(len, n);
    ASSERT(memcmp(back, data, n) == 0);
    ASSERT_EQ_INT(back[n], '\0');
    free(back);
    /* Truncated by the next write_all. */
    ASSERT_OK(weft_file_write_all(in_dir("big"), "xy", 2));
    ASSERT_OK(weft_file_stat(in_dir("big"), &st));
    ASSERT_EQ_INT(st.st_size, 2);
    ASSERT_EQ_INT(st.st_mode & 0777, 0666 & ~umask(022));
    ASSERT_OK(weft_file_write_all(in_dir("empty"), NULL, 0));
    ASSERT_OK(weft_file_read_all(in_dir("empty"), &back, &len));
    ASSERT_EQ_INT(len, 0);
    ASSERT_EQ_STR(back, "");
    free(back);
    /* A file that does not say its size. */
    ASSERT_OK(weft_file_read_all("/proc/self/status", &back, &len));
    ASSERT_GT_INT(len, 0);
    ASSERT_EQ_INT(strlen(back), len);
    ASSERT_CONTAINS(back, "Name:");
    free(back);
    free(data);
    return 0;
}

TEST(read_all_write_all) { run_in_dir(whole_files_main, 0); }

static int errors_main(void *arg, void **res) {
    const char *missing = in_dir("missing");
    char buf[8], *all = (char *)"untouched";
    struct stat st;
    ASSERT_EQ_INT(weft_file_open(missing, O_RDONLY, 0), WEFT_ENOENT);
    ASSERT_CONTAINS(weft_error_message(), missing);
    ASSERT_CONTAINS(weft_error_message(), "No such file");
    ASSERT_EQ_INT(weft_file_read_all(missing, &all, NULL), WEFT_ENOENT);
    ASSERT_NULL(all);
    ASSERT_EQ_INT(weft_file_stat(missing, &st), WEFT_ENOENT);
    ASSERT_EQ_INT(weft_file_write_all(in_dir("no/such/dir"), "x", 1), WEFT_ENOENT);
    ASSERT_EQ_INT(weft_file_open(dir, O_WRONLY, 0), WEFT_EISDIR);
    ASSERT_EQ_INT(weft_file_read_all(dir, &all, NULL), WEFT_EISDIR);
    ASSERT_EQ_INT(weft_file_read(-1, buf, sizeof buf, -1), WEFT_EBADF);
    ASSERT_EQ_INT(weft_file_write(-1, "x", 1, 0), WEFT_EBADF);
    ASSERT_EQ_INT(weft_file_fsync(-1), WEFT_EBADF);
    ASSERT_EQ_INT(weft_file_fstat(-1, &st), WEFT_EBADF);
    ASSERT_EQ_INT(weft_file_close(-1), WEFT_EBADF);
    /* Bad input. */
    ASSERT_EQ_INT(weft_file_open(NULL, O_RDONLY, 0), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_file_read(0, NULL, 4, -1), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_file_write(1, NULL, 4, -1), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_file_stat(NULL, &st), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_file_stat(missing, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_file_fstat(0, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_file_read_all(NULL, &all, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_file_read_all(missing, NULL, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_file_write_all(NULL, "x", 1), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_file_write_all(missing, NULL, 1), WEFT_EINVAL);
    return 0;
}

TEST(errors) {
    struct stat st;
    char *all;
    /* Outside a task, as weft_await. */
    ASSERT_EQ_INT(weft_file_open("/", O_RDONLY, 0), WEFT_EPERM);
    ASSERT_EQ_INT(weft_file_stat("/", &st), WEFT_EPERM);
    ASSERT_EQ_INT(weft_file_read_all("/etc/hostname", &all, NULL), WEFT_EPERM);
    ASSERT_EQ_INT(weft_file_close(-1), WEFT_EPERM);
    run_in_dir(errors_main, 0);
}

/* ---- cancellation ------------------------------------------------------------------------- */

/* Lets the loop run until a thread of this process is inside open(2): the worker, blocked on
 * a FIFO. Where /proc does not tell a thread's system call, waits 0.2 s instead. */
static void await_blocked_open(void) {
    double t0 = wt_now();
    for (;;) {
        DIR *d = opendir("/proc/self/task");
        struct dirent *e;
        bool found = false, readable = false;
        while (d && !found && (e = readdir(d))) {
            char path[300];
            long nr;
            FILE *f;
            snprintf(path, sizeof path, "/proc/self/task/%s/syscall", e->d_name);
            if (e->d_name[0] == '.' || !(f = fopen(path, "re")))
                continue;
            readable = true;
            found = fscanf(f, "%ld", &nr) == 1 && nr == SYS_openat;
            fclose(f);
        }
        if (d)
            closedir(d);
        if (found)
            return;
        if (!readable) {
            ASSERT_OK(weft_sleep(0.2));
            return;
        }
        ASSERT(wt_now() - t0 < 5);
        ASSERT_OK(weft_sleep(0.002));
    }
}

/* Opening a FIFO for reading blocks until a writer comes: a file call that runs as long as the
 * test wants. */
static int fifo_open_task(void *path, void **res) {
    int fd = weft_file_open(path, O_RDONLY, 0);
    if (fd >= 0)
        *res = (void *)(intptr_t)fd;
    return fd < 0 ? fd : 0;
}

static int fifo_read_all_task(void *path, void **res) {
    char *data = NULL;
    int rc = weft_file_read_all(path, &data, NULL);
    ASSERT(rc < 0 || data != NULL);
    *res = data;
    return rc;
}

static int close_task(void *fd, void **res) { return weft_file_close((int)(intptr_t)fd); }

/* Cancelled while the open runs: the call waits for it, closes the descriptor it got, and
 * returns -ECANCELED; the writer then sees no reader left (EPIPE). */
static int cancel_open_main(void *arg, void **res) {
    const char *fifo = in_dir("fifo");
    weft_task_t *t;
    int wfd;
    ASSERT_OK(mkfifo(fifo, 0600));
    t = wt_spawn(NULL, fifo_open_task, (void *)fifo, "opener");
    await_blocked_open();
    weft_cancel(t, NULL);
    ASSERT_OK(weft_sleep(0.02));
    ASSERT(!weft_future_done(t));
    wfd = weft_file_open(fifo, O_WRONLY, 0); /* another worker: the reader's open returns */
    ASSERT_GE_INT(wfd, 0);
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_file_write(wfd, "x", 1, -1), WEFT_EPIPE);
    ASSERT_OK(weft_file_close(wfd));
    weft_unref(t);
    return 0;
}

TEST(cancel_open_closes_the_descriptor) {
    signal(SIGPIPE, SIG_IGN);
    run_in_dir(cancel_open_main, 0);
}

/* Cancelled while read_all runs: it reads to the end, then frees what it read (LeakSanitizer
 * would see it otherwise). */
static int cancel_read_all_main(void *arg, void **res) {
    const char *fifo = in_dir("fifo");
    weft_task_t *t;
    int wfd;
    ASSERT_OK(mkfifo(fifo, 0600));
    t = wt_spawn(NULL, fifo_read_all_task, (void *)fifo, "reader");
    await_blocked_open();
    weft_cancel(t, NULL);
    wfd = weft_file_open(fifo, O_WRONLY, 0);
    ASSERT_GE_INT(wfd, 0);
    ASSERT_EQ_INT(weft_file_write(wfd, "some bytes", 10, -1), 10);
    ASSERT_OK(weft_sleep(0.02));
    ASSERT(!weft_future_done(t)); /* no end of file yet */
    ASSERT_OK(weft_file_close(wfd));
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_ECANCELED);
    weft_unref(t);
    return 0;
}

TEST(cancel_read_all_frees) { run_in_dir(cancel_read_all_main, 0); }

/* One worker, blocked: a close still queued is cancelled, and the descriptor is closed all the
 * same (a descriptor is never left in doubt). A queued open is cancelled before it runs. */
static int cancel_queued_main(void *arg, void **res) {
    const char *fifo = in_dir("fifo");
    weft_task_t *opener, *closer, *second;
    int fd, wfd;
    ASSERT_OK(mkfifo(fifo, 0600));
    fd = open(in_dir("plain"), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE_INT(fd, 0);
    opener = wt_spawn(NULL, fifo_open_task, (void *)fifo, "opener");
    await_blocked_open();
    closer = wt_spawn(NULL, close_task, (void *)(intptr_t)fd, "closer");
    second = wt_spawn(NULL, fifo_open_task, (void *)in_dir("plain"), "second");
    wt_yield_n(3);
    weft_cancel(closer, NULL);
    weft_cancel(second, NULL);
    ASSERT_EQ_INT(weft_await(closer, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(weft_await(second, NULL), WEFT_ECANCELED);
    ASSERT_EQ_INT(fcntl(fd, F_GETFD), -1);
    ASSERT_EQ_INT(errno, EBADF);
    ASSERT(!weft_future_done(opener));
    wfd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC); /* the blocked reader is there */
    ASSERT_GE_INT(wfd, 0);
    ASSERT_OK(weft_await(opener, res));
    ASSERT_OK(close((int)(intptr_t)*res));
    ASSERT_OK(close(wfd));
    weft_unref(opener);
    weft_unref(closer);
    weft_unref(second);
    return 0;
}

TEST(cancel_queued_calls) { run_in_dir(cancel_queued_main, 1); }

/* ---- getaddrinfo(3) ----------------------------------------------------------------------- */

static int gai_localhost_main(void *arg, void **res) {
    struct addrinfo hints = {.ai_family = AF_INET}, *ai = NULL;
    const struct sockaddr_in *sin;
    ASSERT_OK(weft_getaddrinfo_system("localhost", "80", &hints, &ai));
    ASSERT_NOT_NULL(ai);
    for (const struct addrinfo *p = ai; p; p = p->ai_next) {
        /* socktype 0 means stream only, as weft_getaddrinfo: one entry per address */
        ASSERT_EQ_INT(p->ai_socktype, SOCK_STREAM);
        ASSERT_EQ_INT(p->ai_protocol, IPPROTO_TCP);
    }
    sin = (const struct sockaddr_in *)ai->ai_addr;
    ASSERT_EQ_INT(ai->ai_family, AF_INET);
    ASSERT_EQ_INT(ntohs(sin->sin_port), 80);
    ASSERT_EQ_INT(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    weft_freeaddrinfo(ai);
    ai = NULL;
    ASSERT_EQ_INT(weft_getaddrinfo_system("nonexistent.invalid", "80", NULL, &ai), WEFT_ENONAME);
    ASSERT_NULL(ai);
    ASSERT_CONTAINS(weft_error_message(), "nonexistent.invalid");
    ASSERT_EQ_INT(weft_getaddrinfo_system(NULL, NULL, NULL, &ai), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_getaddrinfo_system("localhost", "80", NULL, NULL), WEFT_EINVAL);
    hints.ai_family = 12345;
    ASSERT_EQ_INT(weft_getaddrinfo_system("localhost", "80", &hints, &ai), WEFT_EAFNOSUPPORT);
    return 0;
}

TEST(getaddrinfo_system) {
    struct addrinfo *ai = (struct addrinfo *)1;
    ASSERT_EQ_INT(weft_getaddrinfo_system("localhost", "80", NULL, &ai), WEFT_EPERM);
    run_in_dir(gai_localhost_main, 0);
}

/* ---- the fallback ------------------------------------------------------------------------- *
 * A name that only libc finds: one of /etc/hosts, which libc reads ("files"), while c-ares is
 * told by its own resolv.conf keyword `lookup bind` (glibc ignores it) to ask DNS only, and its
 * DNS server here answers NXDOMAIN to everything. That resolv.conf is mounted over the real one
 * in a private mount namespace of the test's process. With a nsswitch.conf naming a source
 * beyond files and dns (WEFT_NSSWITCH), weft_getaddrinfo() must find the name through libc;
 * with "files dns" it must not. */

static int nx_fd;
static atomic_int nx_stop, nx_queries;

static void *nx_server(void *arg) {
    unsigned char q[512];
    while (!atomic_load(&nx_stop)) {
        struct sockaddr_storage from;
        socklen_t flen = sizeof from;
        ssize_t n = recvfrom(nx_fd, q, sizeof q, 0, (struct sockaddr *)&from, &flen);
        size_t end = 12;
        if (n < 12)
            continue; /* the receive timeout: look at nx_stop again */
        while (end < (size_t)n && q[end] != 0)
            end += q[end] + 1u;
        end += 5; /* the root label, type and class */
        if (end > (size_t)n)
            continue;
        q[2] = (unsigned char)(0x80 | (q[2] & 0x79)); /* a response; opcode and RD kept */
        q[3] = 0x80 | 3;                              /* RA, NXDOMAIN */
        memset(q + 6, 0, 6);                          /* no answer, authority, additional */
        atomic_fetch_add(&nx_queries, 1);
        sendto(nx_fd, q, end, 0, (struct sockaddr *)&from, flen);
    }
    return NULL;
}

/* The first name of /etc/hosts, other than localhost, that libc resolves. */
static int hosts_name(char *name, size_t cap) {
    char line[512];
    FILE *f = fopen("/etc/hosts", "re");
    int found = 0;
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok || tok[0] == '#')
            continue;
        while (!found && (tok = strtok_r(NULL, " \t\r\n", &save)) && tok[0] != '#') {
            struct addrinfo *ai;
            if (strstr(tok, "localhost") || strlen(tok) >= cap)
                continue;
            if (getaddrinfo(tok, NULL, NULL, &ai) == 0) {
                freeaddrinfo(ai);
                snprintf(name, cap, "%s", tok);
                found = 1;
            }
        }
    }
    fclose(f);
    return found;
}

static char fb_name[256];

static int fallback_main(void *expect_found, void **res) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL, *want = NULL;
    int rc = weft_getaddrinfo(fb_name, "80", &hints, &ai);
    ASSERT_GT_INT(atomic_load(&nx_queries), 0); /* c-ares asked DNS and got nothing */
    if (!expect_found) {
        ASSERT_EQ_INT(rc, WEFT_ENONAME);
        ASSERT_CONTAINS(weft_error_message(), fb_name);
        return 0;
    }
    ASSERT_OK(rc);
    ASSERT_OK(getaddrinfo(fb_name, "80", &hints, &want));
    ASSERT_EQ_INT(ai->ai_family, want->ai_family);
    ASSERT_EQ_INT(ai->ai_addrlen, want->ai_addrlen);
    ASSERT(memcmp(ai->ai_addr, want->ai_addr, want->ai_addrlen) == 0);
    freeaddrinfo(want);
    weft_freeaddrinfo(ai);
    return 0;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    ASSERT(fputs(text, f) >= 0);
    ASSERT_OK(fclose(f));
}

/* Mounts `text` over /etc/resolv.conf in a private mount namespace; false where the machine
 * does not allow one (no CAP_SYS_ADMIN). Before any thread starts: unshare needs that. */
static bool private_resolv_conf(const char *text) {
    write_text(in_dir("resolv.conf"), text);
    return unshare(CLONE_NEWNS) == 0 &&
           mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == 0 &&
           mount(in_dir("resolv.conf"), "/etc/resolv.conf", "none", MS_BIND, NULL) == 0;
}

static void run_fallback(const char *nsswitch, int expect_found) {
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {0, 50000};
    socklen_t len = sizeof sin;
    char servers[64];
    weft_loop_t *loop;
    pthread_t th;
    if (!hosts_name(fb_name, sizeof fb_name))
        wt_skip("/etc/hosts has no name but localhost that libc resolves");
    dir_make();
    if (!private_resolv_conf("lookup bind\nnameserver 127.0.0.1\n")) {
        dir_remove();
        wt_skip("no private mount namespace here (%s)", strerror(errno));
    }
    write_text(in_dir("nsswitch.conf"), nsswitch);
    ASSERT_OK(setenv("WEFT_NSSWITCH", in_dir("nsswitch.conf"), 1));
    nx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE_INT(nx_fd, 0);
    ASSERT_OK(bind(nx_fd, (struct sockaddr *)&sin, sizeof sin));
    ASSERT_OK(getsockname(nx_fd, (struct sockaddr *)&sin, &len));
    ASSERT_OK(setsockopt(nx_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    ASSERT_OK(pthread_create(&th, NULL, nx_server, NULL));
    ASSERT_OK(weft_loop_new(&loop, NULL));
    snprintf(servers, sizeof servers, "127.0.0.1:%d", ntohs(sin.sin_port));
    ASSERT_OK(weft_resolver_set_servers(loop, servers));
    ASSERT_OK(wt_run_task(loop, fallback_main, (void *)(intptr_t)expect_found, NULL));
    WT_CLOSE_LOOP(loop);
    atomic_store(&nx_stop, 1);
    ASSERT_OK(pthread_join(th, NULL));
    ASSERT_OK(close(nx_fd));
    ASSERT_OK(umount("/etc/resolv.conf"));
    dir_remove();
}

TEST(fallback_to_libc) {
    run_fallback("passwd: files\n"
                 "hosts:  files mdns4_minimal [NOTFOUND=return] dns myhostname\n", 1);
}

TEST(no_fallback_for_files_and_dns) {
    run_fallback("hosts: files [ NOTFOUND=return ] dns # nothing else\n", 0);
}

const wt_test_t wt_tests[] = {
    T(open_write_read_stat),
    T(read_all_write_all),
    T(errors),
    T(cancel_open_closes_the_descriptor),
    T(cancel_read_all_frees),
    T(cancel_queued_calls),
    T(getaddrinfo_system),
    T(fallback_to_libc),
    T(no_fallback_for_files_and_dns),
    WT_END,
};
