/* A child program for the process tests (test_process.c):
 *   proc_helper flood OUT ERR IN  writes OUT bytes to stdout and ERR bytes to stderr while it
 *                                 reads stdin to its end, all at once (three threads); exits 0
 *                                 if stdin brought exactly IN bytes of the expected pattern
 *   proc_helper fds               prints the descriptors open above 2 ("none" if none)
 *   proc_helper sigs              prints how many signals are blocked and ignored
 *   proc_helper sid               prints its pid and its session id */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The byte at offset i of each stream: distinct per stream, so mixed-up data shows. */
static char pattern(int stream, size_t i) {
    static const char base[3] = {'0', 'a', 'A'};
    return (char)(base[stream] + (char)(i % (stream ? 26 : 10)));
}

typedef struct job {
    int fd;
    size_t n;
} job_t;

static void *writer(void *arg) {
    job_t *j = arg;
    char buf[65536];
    size_t done = 0;
    while (done < j->n) {
        size_t k = j->n - done < sizeof buf ? j->n - done : sizeof buf;
        ssize_t w;
        for (size_t i = 0; i < k; i++)
            buf[i] = pattern(j->fd, done + i);
        w = write(j->fd, buf, k);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            exit(4);
        done += (size_t)w;
    }
    return NULL;
}

static int flood(size_t out, size_t err, size_t in) {
    job_t jo = {1, out}, je = {2, err};
    pthread_t to, te;
    char buf[65536];
    size_t got = 0;
    int bad = 0;
    if (pthread_create(&to, NULL, writer, &jo) || pthread_create(&te, NULL, writer, &je))
        return 5;
    for (;;) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            bad |= buf[i] != pattern(0, got + (size_t)i);
        got += (size_t)r;
    }
    pthread_join(to, NULL);
    pthread_join(te, NULL);
    return got == in && !bad ? 0 : 3;
}

static int fds(void) {
    int any = 0;
    for (int fd = 3; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0) {
            printf("%s%d", any ? " " : "", fd);
            any = 1;
        }
    printf("%s\n", any ? "" : "none");
    return 0;
}

static int sigs(void) {
    sigset_t mask;
    int blocked = 0, ignored = 0;
    sigprocmask(SIG_SETMASK, NULL, &mask);
    for (int s = 1; s < 32; s++) {
        struct sigaction sa;
        if (sigismember(&mask, s) == 1)
            blocked++;
        if (s != SIGKILL && s != SIGSTOP && sigaction(s, NULL, &sa) == 0 &&
            sa.sa_handler == SIG_IGN)
            ignored++;
    }
    printf("blocked=%d ignored=%d\n", blocked, ignored);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "flood") == 0)
        return flood(strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10),
                     strtoull(argv[4], NULL, 10));
    if (argc == 2 && strcmp(argv[1], "fds") == 0)
        return fds();
    if (argc == 2 && strcmp(argv[1], "sigs") == 0)
        return sigs();
    if (argc == 2 && strcmp(argv[1], "sid") == 0) {
        printf("%d %d\n", (int)getpid(), (int)getsid(0));
        return 0;
    }
    fprintf(stderr, "usage: proc_helper flood OUT ERR IN | fds | sigs | sid\n");
    return 2;
}
