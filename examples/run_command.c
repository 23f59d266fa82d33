/* Runs a command and streams its output line by line as it arrives, then reports how it ended
 * (asyncio.create_subprocess_exec with stdout=PIPE, stderr=STDOUT, and readline in a loop).
 * Usage: run_command [PROGRAM [ARGS...]]; without arguments it runs a shell loop that prints
 * a line every 0.1 s. Exits with the command's status (128 + N if signal N killed it); Ctrl-C
 * terminates the command and waits for it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <weft.h>

static char *default_cmd[] = {"/bin/sh", "-c",
                              "for i in 1 2 3; do echo line $i; sleep 0.1; done", NULL};

static int run(void *arg, void **result) {
    char **argv = arg;
    weft_process_options_t opts = {.stdout_mode = WEFT_STDIO_PIPE,
                                   .stderr_mode = WEFT_STDIO_STDOUT};
    weft_process_t *p;
    const char *line;
    size_t len;
    int rc, code = 0;

    if ((rc = weft_create_subprocess_exec(&p, argv[0], argv, &opts)) < 0)
        return weft_fail(rc, "cannot run %s: %s", argv[0], weft_strerror(rc));
    /* readline gives each line as soon as it is complete; at the end of the output, a last
     * line without its newline, then an empty one. */
    while ((rc = weft_stream_readline(weft_process_stdout(p), &line, &len)) == 0 && len > 0) {
        int nl = line[len - 1] == '\n';
        printf("out| %.*s\n", (int)(len - nl), line);
        fflush(stdout);
    }
    if (rc == WEFT_ELIMIT) /* a line over the stream's limit (64 KiB) was skipped */
        rc = 0;
    if (rc == 0)
        rc = weft_process_wait(p, &code);
    if (rc == WEFT_ECANCELED) { /* Ctrl-C: stop the command, and still reap it */
        weft_shield_begin();
        weft_process_terminate(p);
        weft_process_wait(p, &code);
        weft_shield_end();
    }
    if (rc == 0 || rc == WEFT_ECANCELED) {
        if (code >= 0)
            printf("exit status %d\n", code);
        else
            printf("killed by signal %d (%s)\n", -code, strsignal(-code));
    }
    weft_process_free(p);
    *result = (void *)(intptr_t)(code >= 0 ? code : 128 - code);
    return rc;
}

int main(int argc, char **argv) {
    void *status = NULL;
    int rc = weft_run(run, argc > 1 ? argv + 1 : default_cmd, &status);
    if (rc < 0 && rc != WEFT_EINTR) {
        fprintf(stderr, "run_command: %s\n", weft_error_message());
        return 127;
    }
    return rc == WEFT_EINTR ? weft_exit_status(rc) : (int)(intptr_t)status;
}
