/* Network stress (`make stress`): 10,000 concurrent clients against a weft echo server.
 *
 * The server runs in a child process (each side then needs its 10,000 descriptors within its
 * own RLIMIT_NOFILE). Every client connects, sends ROUNDS messages of varying size with content
 * unique to it, reads each echo back exactly and compares, then closes. All clients are
 * connected at once before any of them starts talking, so the server really holds 10,000
 * connections. Exits 0 only if every byte came back right.
 * usage: net_stress [CLIENTS] */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#define ROUNDS 3
#define MAXMSG 8192

static int port, nclients, arrived, connected, failures;
static long long bytes_checked;
static weft_event_t *all_connected;

/* ---- the server (child process) ---------------------------------------------------------- */

static int echo_handler(weft_stream_t *s, void *arg) {
    char buf[16384];
    ssize_t n;
    while ((n = weft_stream_read(s, buf, sizeof buf)) > 0)
        if (weft_stream_write(s, buf, (size_t)n) < 0 || weft_stream_drain(s) < 0)
            break;
    return 0;
}

static int server_main(void *arg, void **result) {
    int *ready_fd = arg, rc;
    weft_server_options_t opts = {.backlog = 4096, .stack_size = 32 * 1024};
    weft_server_t *srv;
    if ((rc = weft_start_server(&srv, echo_handler, NULL, "127.0.0.1", 0, &opts)) < 0)
        return rc;
    port = weft_server_port(srv);
    if (write(*ready_fd, &port, sizeof port) != sizeof port)
        return WEFT_EIO;
    close(*ready_fd);
    return weft_server_serve_forever(srv); /* until the parent kills us */
}

/* ---- the clients --------------------------------------------------------------------------- */

static void fill(char *buf, size_t n, unsigned id, unsigned round) {
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)((id * 31 + round * 7 + i) & 0xff);
}

static int client(void *arg, void **result) {
    unsigned id = (unsigned)(uintptr_t)arg;
    static __thread char out[MAXMSG], in[MAXMSG];
    weft_stream_t *s;
    int rc;
    if ((rc = weft_open_connection(&s, "127.0.0.1", port, NULL)) < 0) {
        fprintf(stderr, "client %u: connect: %s\n", id, weft_strerror(rc));
        failures++;
        if (++arrived == nclients)
            weft_event_set(all_connected);
        return 0;
    }
    connected++;
    if (++arrived == nclients)
        weft_event_set(all_connected);
    weft_event_wait(all_connected);
    for (unsigned r = 0; r < ROUNDS && rc == 0; r++) {
        size_t n = 1 + (id * 7919 + r * 104729) % MAXMSG;
        fill(out, n, id, r);
        if ((rc = weft_stream_write(s, out, n)) < 0 || (rc = weft_stream_readexactly(s, in, n, NULL)) < 0) {
            fprintf(stderr, "client %u round %u: %s\n", id, r, weft_strerror(rc));
            break;
        }
        fill(out, n, id, r); /* another client ran meanwhile: out is shared */
        if (memcmp(in, out, n) != 0) {
            fprintf(stderr, "client %u round %u: echo differs\n", id, r);
            rc = WEFT_EIO;
        }
        bytes_checked += (long long)n;
    }
    if (rc < 0)
        failures++;
    weft_stream_free(s);
    return 0;
}

static int clients_main(void *arg, void **result) {
    weft_task_t **tasks = calloc((size_t)nclients, sizeof *tasks);
    weft_task_options_t opts = {.stack_size = 32 * 1024};
    int rc = 0;
    if (!tasks || weft_event_new(&all_connected) < 0)
        return WEFT_ENOMEM;
    for (int i = 0; i < nclients && rc == 0; i++)
        rc = weft_create_task(&tasks[i], client, (void *)(uintptr_t)i, &opts);
    if (rc == 0)
        rc = weft_gather(tasks, (size_t)nclients, NULL);
    for (int i = 0; i < nclients; i++)
        weft_unref(tasks[i]);
    free(tasks);
    weft_event_free(all_connected);
    return rc;
}

static void raise_nofile(rlim_t want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv) {
    int pipefd[2], rc, status;
    struct timespec t0, t1;
    pid_t child;
    nclients = argc > 1 ? atoi(argv[1]) : 10000;
    raise_nofile((rlim_t)nclients + 64);
    if (pipe(pipefd) < 0)
        return 1;
    if ((child = fork()) == 0) {
        close(pipefd[0]);
        _exit(weft_run(server_main, &pipefd[1], NULL) < 0 ? 1 : 0);
    }
    close(pipefd[1]);
    if (read(pipefd[0], &port, sizeof port) != sizeof port) {
        fprintf(stderr, "net_stress: the server did not start\n");
        return 1;
    }
    close(pipefd[0]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = weft_run(clients_main, NULL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    printf("net_stress: %d clients, %d connected at once, %d rounds each, %lld bytes echoed "
           "and checked, %d failures, %.2f s\n",
           nclients, connected, ROUNDS, bytes_checked, failures,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return rc == 0 && failures == 0 && connected == nclients ? 0 : 1;
}
