/* weft-monitor: the client of a weft program's monitor (weft_monitor_start(), WEFT_MONITOR).
 *
 *     weft-monitor ADDRESS [COMMAND...]
 *
 * ADDRESS is what the program listens on: a Unix socket path, or HOST:PORT ("127.0.0.1:5000",
 * "[::1]:5000", "localhost:5000"). With a COMMAND ("ps", "where 12", ...) it runs that one
 * command, prints the answer and exits with status 1 if the answer is an error; without, it is
 * an interactive console (type help). Plain blocking C: it needs nothing of the library. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PROMPT "weft> "

static void usage(void) {
    fprintf(stderr, "usage: weft-monitor ADDRESS [COMMAND...]\n"
                    "  ADDRESS: a Unix socket path, or HOST:PORT (127.0.0.1:5000, [::1]:5000)\n"
                    "  COMMAND: ps, where ID, cancel ID, stats, help (none: interactive)\n");
}

/* The same rule as the monitor's: a path has a slash, or no colon. */
static int connect_to(const char *address) {
    const char *colon = strrchr(address, ':');
    int fd;
    if (strchr(address, '/') || !colon) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        if (strlen(address) >= sizeof sun.sun_path) {
            fprintf(stderr, "weft-monitor: %s: path too long\n", address);
            return -1;
        }
        strcpy(sun.sun_path, address);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
            connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
            fprintf(stderr, "weft-monitor: %s: %s\n", address, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        return fd;
    }
    char host[256];
    size_t hlen = (size_t)(colon - address);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc;
    if (hlen >= sizeof host) {
        fprintf(stderr, "weft-monitor: %s: host name too long\n", address);
        return -1;
    }
    memcpy(host, address, hlen);
    host[hlen] = '\0';
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') { /* [::1] */
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
        fprintf(stderr, "weft-monitor: %s: %s\n", address, gai_strerror(rc));
        return -1;
    }
    fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol)) < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        rc = errno;
        close(fd);
        fd = -1;
        errno = rc;
    }
    if (fd < 0)
        fprintf(stderr, "weft-monitor: %s: %s\n", address, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

static bool write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Sends the command, then the end of input: the monitor answers and closes. What comes back is
 * the greeting and a prompt, the answer, and a last prompt: only the answer is printed. */
static int one_command(int fd, char *const *words, int nwords) {
    char line[4096], *out = NULL, *answer, *end;
    size_t len = 0, cap = 0, n = 0;
    for (int i = 0; i < nwords; i++) {
        int w = snprintf(line + n, sizeof line - n, "%s%s", i ? " " : "", words[i]);
        if (w < 0 || (size_t)w >= sizeof line - n - 1) {
            fprintf(stderr, "weft-monitor: command too long\n");
            return 2;
        }
        n += (size_t)w;
    }
    line[n++] = '\n';
    if (!write_all(fd, line, n) || shutdown(fd, SHUT_WR) < 0) {
        fprintf(stderr, "weft-monitor: sending the command: %s\n", strerror(errno));
        return 2;
    }
    for (;;) {
        ssize_t r;
        if (cap - len < 4096) {
            char *p = realloc(out, cap = cap ? cap * 2 : 65536);
            if (!p) {
                fprintf(stderr, "weft-monitor: out of memory\n");
                free(out);
                return 2;
            }
            out = p;
        }
        r = read(fd, out + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "weft-monitor: reading the answer: %s\n", strerror(errno));
            free(out);
            return 2;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    out[len] = '\0';
    /* After the greeting's prompt, up to the prompt that follows the answer. */
    answer = strstr(out, PROMPT);
    if (!answer) {
        fprintf(stderr, "weft-monitor: not a weft monitor (no prompt)\n");
        free(out);
        return 2;
    }
    answer += strlen(PROMPT);
    end = out + len;
    if ((size_t)(end - answer) >= strlen(PROMPT) && !strcmp(end - strlen(PROMPT), PROMPT))
        end -= strlen(PROMPT);
    fwrite(answer, 1, (size_t)(end - answer), stdout);
    n = strncmp(answer, "error", 5) == 0;
    free(out);
    return (int)n;
}

/* stdin to the socket, the socket to stdout, until the monitor closes the connection. */
static int interactive(int fd) {
    struct pollfd p[2] = {{STDIN_FILENO, POLLIN, 0}, {fd, POLLIN, 0}};
    char buf[4096];
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 2;
        }
        if (p[1].revents) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return 0;
            if (!write_all(STDOUT_FILENO, buf, (size_t)r))
                return 2;
        }
        if (p[0].revents) {
            ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) { /* end of input: the monitor finishes the last command, then closes */
                shutdown(fd, SHUT_WR);
                p[0].fd = -1;
            } else if (!write_all(fd, buf, (size_t)r)) {
                return 2;
            }
        }
    }
}

int main(int argc, char **argv) {
    int fd, rc;
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    signal(SIGPIPE, SIG_IGN); /* a monitor gone away is an error to report, not a kill */
    if ((fd = connect_to(argv[1])) < 0)
        return 2;
    rc = argc > 2 ? one_command(fd, argv + 2, argc - 2) : interactive(fd);
    close(fd);
    return rc;
}
