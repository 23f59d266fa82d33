/* Child processes, for real: /bin/sh, /bin/cat, /bin/true, /bin/sleep and proc_helper. Pipes,
 * /dev/null, merged stderr, environment and directory, communicate() with both outputs full,
 * exit codes and signals, start failures, cancellation and timeouts, many children, reaping
 * when the process is freed or the loop closes (no zombie), and the SIGCHLD fallback used where
 * the kernel has no pidfd (forced with WEFT_NO_PIDFD=1). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wt.h"

#ifndef WT_PROC_HELPER
#error "WT_PROC_HELPER: the path of proc_helper"
#endif

/* ---- helpers ------------------------------------------------------------------------------ */

#define ALL_PIPES \
    {.stdin_mode = WEFT_STDIO_PIPE, .stdout_mode = WEFT_STDIO_PIPE, .stderr_mode = WEFT_STDIO_PIPE}

static void run_real(weft_task_fn fn, void *arg) {
    weft_loop_t *loop = wt_loop_real();
    void *res = NULL;
    ASSERT_OK(wt_run_task(loop, fn, arg, &res));
    ASSERT_EQ_PTR(res, (void *)1);
    WT_CLOSE_LOOP(loop);
}

static weft_process_t *shell(const char *cmd, int in, int out, int err) {
    weft_process_options_t o = {.stdin_mode = in, .stdout_mode = out, .stderr_mode = err};
    weft_process_t *p = NULL;
    ASSERT_OK(weft_create_subprocess_shell(&p, cmd, &o));
    ASSERT_NOT_NULL(p);
    return p;
}

static weft_process_t *helper(const char *mode, int out) {
    char *argv[] = {WT_PROC_HELPER, (char *)mode, NULL};
    weft_process_options_t o = {.stdout_mode = out};
    weft_process_t *p = NULL;
    ASSERT_OK(weft_create_subprocess_exec(&p, WT_PROC_HELPER, argv, &o));
    return p;
}

/* Everything the child wrote to stdout, then its exit status (which must be 0). */
static char *output_of(weft_process_t *p) {
    char *out = NULL;
    size_t len;
    int code = -1;
    ASSERT_OK(weft_stream_read_all(weft_process_stdout(p), &out, &len));
    ASSERT_OK(weft_process_wait(p, &code));
    ASSERT_EQ_INT(code, 0);
    return out;
}

/* The state letter of /proc/<pid>/stat ('Z' for a zombie), 0 once the pid is gone. */
static char proc_state(int pid) {
    char path[64], buf[512], *rp;
    size_t n;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r")))
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' ? rp[2] : '?';
}

/* The child must be reaped by someone else than this test within `secs` seconds: its pid
 * disappears (a zombie stays in /proc with state Z), and waitpid no longer knows it. */
static void assert_reaped_soon(int pid, double secs) {
    double end = wt_now() + secs;
    while (proc_state(pid)) {
        if (wt_now() > end)
            WT_FAIL("child %d not reaped after %.1f s (state %c)", pid, secs, proc_state(pid));
        usleep(5000);
    }
    errno = 0;
    ASSERT_EQ_INT(waitpid(pid, NULL, WNOHANG), -1);
    ASSERT_EQ_INT(errno, ECHILD);
}

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    ASSERT_NOT_NULL(d);
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

/* After a failed start: nothing left behind, neither descriptors (fds were open before), nor
 * streams, nor children. */
static void assert_nothing_left(int fds) {
    weft_loop_stats_t st;
    ASSERT_EQ_INT(count_fds(), fds);
    weft_loop_stats(weft_get_running_loop(), &st);
    ASSERT_EQ_INT(st.handles, 0);
    errno = 0;
    ASSERT_EQ_INT(waitpid(-1, NULL, WNOHANG), -1);
    ASSERT_EQ_INT(errno, ECHILD);
}

/* How many of this process's descriptors are pidfds. */
static int count_pidfds(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    ASSERT_NOT_NULL(d);
    while ((e = readdir(d))) {
        char path[300], target[64];
        ssize_t k;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        k = readlink(path, target, sizeof target - 1);
        if (k > 0) {
            target[k] = 0;
            n += strcmp(target, "anon_inode:[pidfd]") == 0;
        }
    }
    closedir(d);
    return n;
}

static void use_fallback(void) { ASSERT_OK(setenv("WEFT_NO_PIDFD", "1", 1)); }

/* Whether this kernel (or the tool running the test) has pidfds: without, weft falls back to
 * SIGCHLD by itself. */
static int have_pidfd(void) {
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* ---- pipes and stdio modes ---------------------------------------------------------------- */

static int echo_cat_main(void *arg, void **result) {
    char *argv[] = {"cat", NULL};
    weft_process_options_t o = {.stdin_mode = WEFT_STDIO_PIPE, .stdout_mode = WEFT_STDIO_PIPE};
    weft_process_t *p;
    weft_stream_t *in, *out;
    const char *line;
    size_t len;
    char *rest;
    int code = -1, expect_pidfds = arg ? 0 : have_pidfd();
    ASSERT_OK(weft_create_subprocess_exec(&p, "cat", argv, &o));
    ASSERT_GT_INT(weft_process_pid(p), 0);
    in = weft_process_stdin(p);
    out = weft_process_stdout(p);
    ASSERT_NOT_NULL(in);
    ASSERT_NOT_NULL(out);
    ASSERT_NULL(weft_process_stderr(p));
    /* The parent's ends never reach another child. */
    ASSERT(fcntl(weft_stream_fd(in), F_GETFD) & FD_CLOEXEC);
    ASSERT(fcntl(weft_stream_fd(out), F_GETFD) & FD_CLOEXEC);
    ASSERT_EQ_INT(count_pidfds(), expect_pidfds);

    ASSERT_OK(weft_stream_write(in, "hello\n", 6));
    ASSERT_OK(weft_stream_readline(out, &line, &len));
    ASSERT_EQ_INT(len, 6);
    ASSERT(memcmp(line, "hello\n", 6) == 0);
    ASSERT_OK(weft_stream_write(in, "world\n", 6));
    ASSERT_OK(weft_stream_readline(out, &line, &len));
    ASSERT(len == 6 && memcmp(line, "world\n", 6) == 0);
    ASSERT_EQ_INT(weft_process_returncode(p, &code), 0); /* cat still runs */
    /* Half-close: cat sees its end of file and exits, while the stream stays open. */
    ASSERT_OK(weft_stream_write(in, "last", 4));
    ASSERT_OK(weft_stream_write_eof(in));
    ASSERT_OK(weft_stream_read_all(out, &rest, &len));
    ASSERT_EQ_STR(rest, "last");
    free(rest);
    ASSERT_OK(weft_process_wait(p, &code));
    ASSERT_EQ_INT(code, 0);
    ASSERT_EQ_INT(weft_process_returncode(p, &code), 1);
    ASSERT_EQ_INT(code, 0);
    ASSERT_EQ_INT(count_pidfds(), 0); /* closed once reaped */
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}
TEST(echo_through_cat) { run_real(echo_cat_main, NULL); }

static int exit_code_main(void *arg, void **result) {
    weft_process_t *p = shell("exit 42", 0, 0, 0);
    int code = -1;
    ASSERT_NULL(weft_process_stdin(p));
    ASSERT_NULL(weft_process_stdout(p));
    ASSERT_OK(weft_process_wait(p, &code));
    ASSERT_EQ_INT(code, 42);
    ASSERT_EQ_INT(weft_process_returncode(p, &code), 1);
    ASSERT_EQ_INT(code, 42);
    code = -1;
    ASSERT_OK(weft_process_wait(p, &code)); /* again: at once */
    ASSERT_EQ_INT(code, 42);
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}
TEST(shell_exit_code) { run_real(exit_code_main, NULL); }

static int devnull_main(void *arg, void **result) {
    /* stdin from /dev/null: cat ends at once. */
    weft_process_t *p = shell("cat; echo done", WEFT_STDIO_DEVNULL, WEFT_STDIO_PIPE, 0);
    char *out = output_of(p);
    ASSERT_EQ_STR(out, "done\n");
    free(out);
    weft_process_free(p);
    /* stdout to /dev/null: only stderr comes back. */
    p = shell("echo hidden; echo shown >&2", 0, WEFT_STDIO_DEVNULL, WEFT_STDIO_PIPE);
    ASSERT_NULL(weft_process_stdout(p));
    ASSERT_OK(weft_process_communicate(p, NULL, 0, NULL, NULL, &out, NULL, NULL));
    ASSERT_EQ_STR(out, "shown\n");
    free(out);
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}
TEST(devnull) { run_real(devnull_main, NULL); }

static int merged_main(void *arg, void **result) {
    weft_process_t *p =
        shell("echo out; echo err >&2; echo out2", 0, WEFT_STDIO_PIPE, WEFT_STDIO_STDOUT);
    char *out = NULL, *err = (char *)"untouched";
    size_t len = 0;
    int code = -1;
    ASSERT_NULL(weft_process_stderr(p));
    ASSERT_OK(weft_process_communicate(p, NULL, 0, &out, &len, &err, NULL, &code));
    ASSERT_EQ_STR(out, "out\nerr\nout2\n");
    ASSERT_EQ_INT(len, 13);
    ASSERT_NULL(err);
    ASSERT_EQ_INT(code, 0);
    free(out);
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}
TEST(stderr_into_stdout) { run_real(merged_main, NULL); }

static int env_cwd_main(void *arg, void **result) {
    char *env[] = {"WEFT_VAR=hello world", NULL};
    char *argv[] = {"/bin/sh", "-c", "echo \"$WEFT_VAR\"; pwd; echo \"${HOME-none}\"", NULL};
    weft_process_options_t o = {.stdout_mode = WEFT_STDIO_PIPE, .cwd = "/", .env = env};
    weft_process_t *p;
    char *out;
    ASSERT_OK(weft_create_subprocess_exec(&p, "/bin/sh", argv, &o));
    out = output_of(p);
    ASSERT_EQ_STR(out, "hello world\n/\nnone\n");
    free(out);
    weft_process_free(p);
    /* A relative directory, and the parent's environment. */
    ASSERT_OK(setenv("WEFT_PARENT_VAR", "from parent", 1));
    o.cwd = "..";
    o.env = NULL;
    ASSERT_OK(chdir("/usr/bin"));
    argv[2] = "echo \"$WEFT_PARENT_VAR\"; pwd";
    ASSERT_OK(weft_create_subprocess_exec(&p, "/bin/sh", argv, &o));
    out = output_of(p);
    ASSERT_EQ_STR(out, "from parent\n/usr\n");
    free(out);
    weft_process_free(p);
    /* A directory that does not exist: the child never starts. */
    o.cwd = "/nonexistent-weft-dir";
    p = (weft_process_t *)&o;
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "/bin/sh", argv, &o), WEFT_ENOENT);
    ASSERT_NULL(p);
    *result = (void *)1;
    return 0;
}
TEST(env_and_cwd) { run_real(env_cwd_main, NULL); }

/* ---- the PATH of a custom environment ----------------------------------------------------- */

/* Python's subprocess rule: a name without a slash is searched in the PATH of the environment
 * the child gets, "/bin:/usr/bin" if it has none; only without one in the parent's. */
#define PROBE "weft-path-probe"

static void write_file(const char *dir, const char *name, const char *text, mode_t mode) {
    char path[128];
    int fd;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ASSERT_GE_INT(fd, 0);
    ASSERT_EQ_INT(write(fd, text, strlen(text)), strlen(text));
    ASSERT_OK(close(fd));
    ASSERT_OK(chmod(path, mode)); /* whatever the umask */
}

static void remove_file(const char *dir, const char *name) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ASSERT_OK(unlink(path));
}

/* What `file arg` run with env in cwd prints (it must exit 0). */
static char *run_with_env(const char *file, char *const env[], const char *cwd) {
    char *argv[] = {(char *)file, "arg", NULL};
    weft_process_options_t o = {.stdout_mode = WEFT_STDIO_PIPE, .env = env, .cwd = cwd};
    weft_process_t *p = NULL;
    char *out;
    ASSERT_OK(weft_create_subprocess_exec(&p, file, argv, &o));
    out = output_of(p);
    weft_process_free(p);
    return out;
}

static void check_probe(const char *path_var, const char *cwd) {
    char *env[] = {(char *)path_var, "WEFT_VAR=x", NULL};
    char *out = run_with_env(PROBE, env, cwd);
    ASSERT_EQ_STR(out, "probe arg\n");
    free(out);
}

static int env_path_main(void *arg, void **result) {
    char dir[] = "/tmp/weft-path-XXXXXX", var[128], *argv[] = {PROBE, NULL};
    weft_process_t *p = NULL;
    ASSERT_NOT_NULL(mkdtemp(dir));
    write_file(dir, PROBE, "#!/bin/sh\necho \"probe $1\"\n", 0755);
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, PROBE, argv, NULL), WEFT_ENOENT);
    ASSERT_NULL(p);
    snprintf(var, sizeof var, "PATH=/nonexistent-weft-dir:%s", dir);
    check_probe(var, NULL);
    /* Empty and relative entries start from the directory the child starts in. */
    check_probe("PATH=/nonexistent-weft-dir:", dir);
    check_probe("PATH=", dir);
    check_probe("PATH=.", dir);
    snprintf(var, sizeof var, "PATH=%s", dir + strlen("/tmp/"));
    check_probe(var, "/tmp");
    remove_file(dir, PROBE);
    ASSERT_OK(rmdir(dir));
    *result = (void *)1;
    return 0;
}
TEST(env_path_finds_program) { run_real(env_path_main, NULL); }

/* An environment without PATH: /bin and /usr/bin, even when the parent's PATH has more. */
static int env_default_path_main(void *arg, void **result) {
    char dir[] = "/tmp/weft-path-XXXXXX", path[4096], *out;
    char *env[] = {"WEFT_VAR=x", NULL}, *argv[] = {PROBE, NULL};
    const char *old = getenv("PATH");
    weft_process_options_t o = {.env = env};
    weft_process_t *p = NULL;
    ASSERT_NOT_NULL(mkdtemp(dir));
    write_file(dir, PROBE, "#!/bin/sh\necho \"probe $1\"\n", 0755);
    snprintf(path, sizeof path, "%s:%s", dir, old ? old : "/bin:/usr/bin");
    ASSERT_OK(setenv("PATH", path, 1));
    out = run_with_env("echo", env, NULL);
    ASSERT_EQ_STR(out, "arg\n");
    free(out);
    out = run_with_env("true", env, NULL);
    ASSERT_EQ_STR(out, "");
    free(out);
    out = run_with_env(PROBE, NULL, NULL); /* no environment given: the parent's PATH */
    ASSERT_EQ_STR(out, "probe arg\n");
    free(out);
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, PROBE, argv, &o), WEFT_ENOENT);
    ASSERT_NULL(p);
    if (old)
        ASSERT_OK(setenv("PATH", old, 1));
    else
        ASSERT_OK(unsetenv("PATH"));
    remove_file(dir, PROBE);
    ASSERT_OK(rmdir(dir));
    *result = (void *)1;
    return 0;
}
TEST(env_without_path_uses_default) { run_real(env_default_path_main, NULL); }

/* Not in the environment's PATH (though in the parent's): -ENOENT, or -EACCES for a file that
 * is there but not executable, as execvp says; no child, descriptor or stream is left. */
static int env_path_missing_main(void *arg, void **result) {
    char dir[] = "/tmp/weft-path-XXXXXX", sub[64], var[128];
    char *env[] = {var, NULL}, *argv[] = {"x", NULL};
    weft_process_options_t o = ALL_PIPES;
    weft_process_t *p = (weft_process_t *)&o;
    int fds = count_fds();
    ASSERT_NOT_NULL(mkdtemp(dir));
    write_file(dir, "weft-path-noexec", "#!/bin/sh\n", 0644);
    snprintf(sub, sizeof sub, "%s/weft-path-dir", dir);
    ASSERT_OK(mkdir(sub, 0755));
    snprintf(var, sizeof var, "PATH=%s::/nonexistent-weft-dir", dir);
    o.env = env;
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "sh", argv, &o), WEFT_ENOENT);
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "weft-no-such-program-anywhere", argv, &o),
                  WEFT_ENOENT);
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "", argv, &o), WEFT_ENOENT);
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "weft-path-noexec", argv, &o), WEFT_EACCES);
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "weft-path-dir", argv, &o), WEFT_EACCES);
    ASSERT_NULL(p);
    assert_nothing_left(fds);
    remove_file(dir, "weft-path-noexec");
    ASSERT_OK(rmdir(sub));
    ASSERT_OK(rmdir(dir));
    *result = (void *)1;
    return 0;
}
TEST(env_path_missing_program) { run_real(env_path_missing_main, NULL); }

static int session_main(void *arg, void **result) {
    weft_process_options_t o = {.stdout_mode = WEFT_STDIO_PIPE, .start_new_session = 1};
    char *argv[] = {WT_PROC_HELPER, "sid", NULL};
    weft_process_t *p;
    char *out;
    int pid, sid;
    ASSERT_OK(weft_create_subprocess_exec(&p, WT_PROC_HELPER, argv, &o));
    out = output_of(p);
    ASSERT_EQ_INT(sscanf(out, "%d %d", &pid, &sid), 2);
    ASSERT_EQ_INT(pid, weft_process_pid(p));
    ASSERT_EQ_INT(sid, pid);
    free(out);
    weft_process_free(p);
    p = helper("sid", WEFT_STDIO_PIPE);
    out = output_of(p);
    ASSERT_EQ_INT(sscanf(out, "%d %d", &pid, &sid), 2);
    ASSERT_EQ_INT(sid, getsid(0));
    free(out);
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}
TEST(start_new_session) { run_real(session_main, NULL); }

/* A descriptor the parent left inheritable does not reach the child; the child gets default
 * signal dispositions and an empty mask whatever the parent has. */
static int hygiene_main(void *arg, void **result) {
    int leaky = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
    sigset_t usr1, old;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old2, oldpipe;
    weft_process_t *p;
    char *out;
    ASSERT_GE_INT(leaky, 3);
    p = helper("fds", WEFT_STDIO_PIPE);
    out = output_of(p);
    ASSERT_EQ_STR(out, "none\n");
    free(out);
    weft_process_free(p);

    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ASSERT_OK(pthread_sigmask(SIG_BLOCK, &usr1, &old));
    ASSERT_OK(sigaction(SIGUSR2, &ign, &old2));
    ASSERT_OK(sigaction(SIGPIPE, &ign, &oldpipe));
    p = helper("sigs", WEFT_STDIO_PIPE);
    out = output_of(p);
    ASSERT_EQ_STR(out, "blocked=0 ignored=0\n");
    free(out);
    weft_process_free(p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    sigaction(SIGUSR2, &old2, NULL);
    sigaction(SIGPIPE, &oldpipe, NULL);
    close(leaky);
    *result = (void *)1;
    return 0;
}
TEST(child_inherits_only_stdio_and_default_signals) { run_real(hygiene_main, NULL); }

static int limit_main(void *arg, void **result) {
    weft_process_options_t o = {.stdout_mode = WEFT_STDIO_PIPE, .limit = 16};
    char *argv[] = {"/bin/sh", "-c", "echo 0123456789012345678901234567890123456789; echo ok",
                    NULL};
    weft_process_t *p;
    const char *line;
    size_t len;
    int code;
    ASSERT_OK(weft_create_subprocess_exec(&p, "/bin/sh", argv, &o));
    ASSERT_EQ_INT(weft_stream_readline(weft_process_stdout(p), &line, &len), WEFT_ELIMIT);
    ASSERT_OK(weft_stream_readline(weft_process_stdout(p), &line, &len));
    ASSERT(len == 3 && memcmp(line, "ok\n", 3) == 0);
    ASSERT_OK(weft_process_wait(p, &code));
    ASSERT_EQ_INT(code, 0);
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}
TEST(stdout_limit) { run_real(limit_main, NULL); }

/* ---- communicate -------------------------------------------------------------------------- */

#define FLOOD_OUT ((size_t)10 << 20)
#define FLOOD_IN ((size_t)1 << 20)

/* The child fills stdout and stderr (10 MB each) while it reads 1 MB of stdin: communicate
 * must feed and drain all three at once, or the child and the parent wait for each other. */
static int flood_main(void *arg, void **result) {
    char n_out[32], n_in[32];
    char *argv[] = {WT_PROC_HELPER, "flood", n_out, n_out, n_in, NULL};
    weft_process_options_t o = ALL_PIPES;
    weft_process_t *p;
    char *input = malloc(FLOOD_IN), *out = NULL, *err = NULL;
    size_t outlen = 0, errlen = 0;
    int code = -1;
    double t0 = wt_now();
    snprintf(n_out, sizeof n_out, "%zu", FLOOD_OUT);
    snprintf(n_in, sizeof n_in, "%zu", FLOOD_IN);
    ASSERT_NOT_NULL(input);
    for (size_t i = 0; i < FLOOD_IN; i++)
        input[i] = (char)('0' + i % 10);
    ASSERT_OK(weft_create_subprocess_exec(&p, WT_PROC_HELPER, argv, &o));
    ASSERT_OK(weft_process_communicate(p, input, FLOOD_IN, &out, &outlen, &err, &errlen, &code));
    ASSERT_EQ_INT(code, 0); /* the child got all of stdin, intact */
    ASSERT_EQ_INT(outlen, FLOOD_OUT);
    ASSERT_EQ_INT(errlen, FLOOD_OUT);
    ASSERT_EQ_INT(out[outlen], 0);
    for (size_t i = 0; i < FLOOD_OUT; i++)
        if (out[i] != (char)('a' + i % 26) || err[i] != (char)('A' + i % 26))
            WT_FAIL("byte %zu: out %d err %d", i, out[i], err[i]);
    ASSERT_LT_INT(wt_now() - t0, 20);
    free(input);
    free(out);
    free(err);
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}
TEST(communicate_10mb_each_way) { run_real(flood_main, NULL); }

/* A child that exits without reading its input: the broken pipe is not an error. */
static int early_exit_main(void *arg, void **result) {
    size_t n = (size_t)1 << 20;
    char *input = calloc(1, n), *out = NULL;
    weft_process_t *p = shell("exit 3", WEFT_STDIO_PIPE, WEFT_STDIO_PIPE, 0);
    int code = -1;
    ASSERT_OK(weft_process_communicate(p, input, n, &out, NULL, NULL, NULL, &code));
    ASSERT_EQ_INT(code, 3);
    ASSERT_EQ_STR(out, "");
    free(out);
    free(input);
    /* The second time: stdin is closed and both outputs are at their end. */
    ASSERT_OK(weft_process_communicate(p, NULL, 0, NULL, NULL, NULL, NULL, &code));
    ASSERT_EQ_INT(code, 3);
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}
TEST(communicate_child_ignores_input) { run_real(early_exit_main, NULL); }

/* Cancelled (by a timeout) while the child still runs: -ETIMEDOUT, nothing returned, the child
 * left running; afterwards it can be killed and waited for. */
static int communicate_cancel_main(void *arg, void **result) {
    weft_process_t *p = shell("echo partial; echo e >&2; read x; exec sleep 5", WEFT_STDIO_PIPE,
                              WEFT_STDIO_PIPE, WEFT_STDIO_PIPE);
    char *out = NULL, *err = NULL;
    weft_timeout_t to;
    int code = 1234, rc;
    ASSERT_OK(weft_timeout_begin(&to, 0.2));
    rc = weft_process_communicate(p, "line\n", 5, &out, NULL, &err, NULL, &code);
    ASSERT_EQ_INT(weft_timeout_end(&to, rc), WEFT_ETIMEDOUT);
    ASSERT_NULL(out);
    ASSERT_NULL(err);
    ASSERT_EQ_INT(code, 1234);
    ASSERT_EQ_INT(weft_process_returncode(p, &code), 0);
    ASSERT_OK(kill(weft_process_pid(p), 0));
    ASSERT_OK(weft_process_kill(p));
    ASSERT_OK(weft_process_wait(p, &code));
    ASSERT_EQ_INT(code, -SIGKILL);
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}
TEST(communicate_cancelled_leaves_child) { run_real(communicate_cancel_main, NULL); }

/* ---- exit statuses and signals ------------------------------------------------------------ */

static int killed_main(void *arg, void **result) {
    weft_process_t *p = shell("kill -9 $$", 0, 0, 0);
    int code = 0;
    ASSERT_OK(weft_process_wait(p, &code));
    ASSERT_EQ_INT(code, -9);
    weft_process_free(p);
    p = shell("kill -TERM $$; sleep 1", 0, 0, 0);
    ASSERT_OK(weft_process_wait(p, &code));
    ASSERT_EQ_INT(code, -15);
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}
TEST(child_killed_by_signal) { run_real(killed_main, NULL); }

static int signals_main(void *arg, void **result) {
    char *argv[] = {"sleep", "5", NULL};
    weft_process_t *p;
    const char *line;
    size_t len;
    int code = 0;
    double t0 = wt_now();

    ASSERT_OK(weft_create_subprocess_exec(&p, "sleep", argv, NULL));
    ASSERT_EQ_INT(weft_process_send_signal(p, 9999), WEFT_EINVAL);
    ASSERT_OK(weft_process_terminate(p));
    ASSERT_OK(weft_process_wait(p, &code));
    ASSERT_EQ_INT(code, -SIGTERM);
    /* Reaped: nothing is signalled any more, not even a process that took the pid since. */
    ASSERT_EQ_INT(weft_process_send_signal(p, SIGTERM), WEFT_ESRCH);
    ASSERT_EQ_INT(weft_process_terminate(p), WEFT_ESRCH);
    ASSERT_EQ_INT(weft_process_kill(p), WEFT_ESRCH);
    weft_process_free(p);

    ASSERT_OK(weft_create_subprocess_exec(&p, "sleep", argv, NULL));
    ASSERT_OK(weft_process_kill(p));
    ASSERT_OK(weft_process_wait(p, &code));
    ASSERT_EQ_INT(code, -SIGKILL);
    ASSERT_EQ_INT(weft_process_kill(p), WEFT_ESRCH);
    weft_process_free(p);

    /* A signal the child handles: it says it is ready once its trap is set. */
    p = shell("trap 'exit 7' USR1; echo ready; while :; do sleep 0.05; done", 0, WEFT_STDIO_PIPE,
              0);
    ASSERT_OK(weft_stream_readline(weft_process_stdout(p), &line, &len));
    ASSERT_EQ_INT(len, 6);
    ASSERT_OK(weft_process_send_signal(p, SIGUSR1));
    ASSERT_OK(weft_process_wait(p, &code));
    ASSERT_EQ_INT(code, 7);
    ASSERT_EQ_INT(weft_process_send_signal(p, SIGUSR1), WEFT_ESRCH);
    weft_process_free(p);
    ASSERT_LT_INT(wt_now() - t0, 3);
    *result = (void *)1;
    return 0;
}
TEST(terminate_kill_send_signal) { run_real(signals_main, NULL); }

/* ---- start failures ----------------------------------------------------------------------- */

static int start_fail_main(void *arg, void **result) {
    weft_process_options_t o = ALL_PIPES;
    char path[] = "/tmp/proc_test_noexec_XXXXXX";
    char *argv[] = {"x", NULL};
    weft_process_t *p = (weft_process_t *)&o;
    int fds = count_fds(), tmp;

    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "/nonexistent/weft-prog", argv, &o),
                  WEFT_ENOENT);
    ASSERT_NULL(p);
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "weft-no-such-program-anywhere", argv, &o),
                  WEFT_ENOENT);
    tmp = mkstemp(path);
    ASSERT_GE_INT(tmp, 0);
    ASSERT_EQ_INT(write(tmp, "#!/bin/sh\n", 10), 10);
    close(tmp);
    ASSERT_OK(chmod(path, 0644));
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, path, argv, &o), WEFT_EACCES);
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "/tmp", argv, &o), WEFT_EACCES);
    unlink(path);
    ASSERT_NULL(p);
    assert_nothing_left(fds);
    *result = (void *)1;
    return 0;
}
TEST(missing_or_not_executable) { run_real(start_fail_main, NULL); }

static int bad_input_main(void *arg, void **result) {
    char *argv[] = {"true", NULL}, *noargs[] = {NULL};
    weft_process_options_t o = {0};
    weft_process_t *p = NULL;
    ASSERT_EQ_INT(weft_create_subprocess_exec(NULL, "true", argv, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, NULL, argv, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "true", NULL, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "true", noargs, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_create_subprocess_shell(&p, NULL, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_create_subprocess_shell(NULL, "true", NULL), WEFT_EINVAL);
    o.stdin_mode = WEFT_STDIO_STDOUT;
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "true", argv, &o), WEFT_EINVAL);
    o.stdin_mode = 0;
    o.stdout_mode = WEFT_STDIO_STDOUT;
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "true", argv, &o), WEFT_EINVAL);
    o.stdout_mode = 0;
    o.stderr_mode = 7;
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "true", argv, &o), WEFT_EINVAL);
    o.stderr_mode = -1;
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "true", argv, &o), WEFT_EINVAL);
    ASSERT_NULL(p);
    /* NULL processes. */
    ASSERT_EQ_INT(weft_process_wait(NULL, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_process_communicate(NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL),
                  WEFT_EINVAL);
    ASSERT_EQ_INT(weft_process_send_signal(NULL, SIGTERM), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_process_returncode(NULL, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_process_pid(NULL), WEFT_EINVAL);
    ASSERT_NULL(weft_process_stdin(NULL));
    weft_process_free(NULL);
    /* Input for a child without a stdin pipe, or input NULL with a length. */
    o.stderr_mode = 0;
    o.stdout_mode = WEFT_STDIO_PIPE;
    ASSERT_OK(weft_create_subprocess_exec(&p, "true", argv, &o));
    ASSERT_EQ_INT(weft_process_communicate(p, "x", 1, NULL, NULL, NULL, NULL, NULL), WEFT_EINVAL);
    ASSERT_EQ_INT(weft_process_communicate(p, NULL, 1, NULL, NULL, NULL, NULL, NULL), WEFT_EINVAL);
    ASSERT_OK(weft_process_communicate(p, NULL, 0, NULL, NULL, NULL, NULL, NULL));
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}

TEST(bad_input) {
    char *argv[] = {"true", NULL};
    weft_process_t *p = NULL;
    /* No running loop on this thread. */
    ASSERT_EQ_INT(weft_create_subprocess_exec(&p, "true", argv, NULL), WEFT_EPERM);
    ASSERT_NULL(p);
    run_real(bad_input_main, NULL);
}

/* wait() outside a task. */
static void wait_from_callback(void *arg) {
    ASSERT_EQ_INT(weft_process_wait(arg, NULL), WEFT_EPERM);
    weft_loop_stop(weft_get_running_loop());
}

static int start_true(void *arg, void **result) {
    char *argv[] = {"true", NULL};
    ASSERT_OK(weft_create_subprocess_exec(arg, "true", argv, NULL));
    return 0;
}

TEST(wait_outside_task) {
    weft_loop_t *loop = wt_loop_real();
    weft_process_t *p = NULL;
    int code = -1;
    ASSERT_OK(wt_run_task(loop, start_true, &p, NULL));
    ASSERT_OK(weft_call_soon(loop, wait_from_callback, p, NULL));
    ASSERT_OK(weft_loop_run_forever(loop));
    /* The loop reaps by itself: the code is known without a wait. */
    while (!weft_process_returncode(p, &code)) {
        ASSERT_OK(weft_call_later(loop, 0.01, wt_stop_cb, loop, NULL));
        ASSERT_OK(weft_loop_run_forever(loop));
    }
    ASSERT_EQ_INT(code, 0);
    weft_process_free(p);
    WT_CLOSE_LOOP(loop);
}

/* ---- cancellation and timeouts ------------------------------------------------------------ */

static int wait_task(void *arg, void **result) { return weft_process_wait(arg, NULL); }

static int cancel_wait_main(void *arg, void **result) {
    char *argv[] = {"sleep", "5", NULL};
    weft_process_t *p;
    weft_task_t *t;
    int code = 0, pid;
    ASSERT_OK(weft_create_subprocess_exec(&p, "sleep", argv, NULL));
    pid = weft_process_pid(p);
    t = wt_spawn(NULL, wait_task, p, "waiter");
    ASSERT_OK(weft_sleep(0.05));
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    ASSERT_EQ_INT(weft_await(t, NULL), WEFT_ECANCELED);
    weft_unref(t);
    /* Still running, not reaped, not a zombie. */
    ASSERT_OK(weft_sleep(0.05));
    ASSERT_EQ_INT(weft_process_returncode(p, &code), 0);
    ASSERT_OK(kill(pid, 0));
    ASSERT_NE_INT(proc_state(pid), 'Z');
    ASSERT_NE_INT(proc_state(pid), 0);
    ASSERT_OK(weft_process_kill(p));
    ASSERT_OK(weft_process_wait(p, &code));
    ASSERT_EQ_INT(code, -SIGKILL);
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}
TEST(cancelled_wait_leaves_child_running) { run_real(cancel_wait_main, NULL); }

static int timeout_wait_main(void *arg, void **result) {
    char *argv[] = {"sleep", "5", NULL};
    weft_process_t *p;
    weft_timeout_t to;
    int code = 1234, rc;
    double t0 = wt_now();
    ASSERT_OK(weft_create_subprocess_exec(&p, "sleep", argv, NULL));
    ASSERT_OK(weft_timeout_begin(&to, 0.1));
    rc = weft_process_wait(p, &code);
    ASSERT_EQ_INT(weft_timeout_end(&to, rc), WEFT_ETIMEDOUT);
    ASSERT_EQ_INT(code, 1234);
    ASSERT_TIME(wt_now() - t0, 0.1 + wt_time_tolerance());
    ASSERT_EQ_INT(weft_process_returncode(p, &code), 0);
    ASSERT_OK(weft_process_terminate(p));
    ASSERT_OK(weft_process_wait(p, &code));
    ASSERT_EQ_INT(code, -SIGTERM);
    weft_process_free(p);
    *result = (void *)1;
    return 0;
}
TEST(wait_timeout) { run_real(timeout_wait_main, NULL); }

/* ---- many children ------------------------------------------------------------------------ */

#define MANY 50

static int many_main(void *arg, void **result) {
    char *argv[] = {"/bin/true", NULL};
    weft_process_t *p[MANY];
    weft_task_t *t[MANY];
    int pids[MANY];
    for (int i = 0; i < MANY; i++) {
        ASSERT_OK(weft_create_subprocess_exec(&p[i], "/bin/true", argv, NULL));
        pids[i] = weft_process_pid(p[i]);
    }
    for (int i = 0; i < MANY; i++) /* waited for at once, in parallel */
        t[i] = wt_spawn(NULL, wait_task, p[i], NULL);
    ASSERT_OK(weft_gather(t, MANY, NULL));
    for (int i = 0; i < MANY; i++) {
        int code = -1;
        weft_unref(t[i]);
        ASSERT_EQ_INT(weft_process_returncode(p[i], &code), 1);
        ASSERT_EQ_INT(code, 0);
        weft_process_free(p[i]);
        errno = 0;
        ASSERT_EQ_INT(waitpid(pids[i], NULL, WNOHANG), -1);
        ASSERT_EQ_INT(errno, ECHILD);
    }
    *result = (void *)1;
    return 0;
}
TEST(many_children) { run_real(many_main, NULL); }

/* ---- no zombies --------------------------------------------------------------------------- */

/* Freed while it runs: not killed, reaped in the background once it exits. */
static int free_running_main(void *arg, void **result) {
    char *argv[] = {"sleep", "0.3", NULL};
    weft_process_options_t o = {.stdout_mode = WEFT_STDIO_PIPE};
    weft_process_t *p;
    int pid;
    double t0;
    ASSERT_OK(weft_create_subprocess_exec(&p, "sleep", argv, &o));
    pid = weft_process_pid(p);
    weft_process_free(p);
    t0 = wt_now();
    ASSERT_OK(weft_sleep(0.1));
    ASSERT_OK(kill(pid, 0)); /* not killed */
    ASSERT_NE_INT(proc_state(pid), 'Z');
    assert_reaped_soon(pid, 3);
    ASSERT_GE_INT((wt_now() - t0) * 1000, 150); /* it ran its course */
    *(int *)arg = pid;
    *result = (void *)1;
    return 0;
}
TEST(free_running_child_no_zombie) {
    int pid = 0;
    run_real(free_running_main, &pid);
    ASSERT_GT_INT(pid, 0);
}

/* The loop closes while a child runs: handed to the background reaper; the process object
 * stays valid (signals: -ESRCH) until freed. */
static int start_sleep(void *arg, void **result) {
    char *argv[] = {"sleep", "0.3", NULL};
    weft_process_options_t o = ALL_PIPES;
    ASSERT_OK(weft_create_subprocess_exec(arg, "sleep", argv, &o));
    return 0;
}

static void loop_close_running(void) {
    weft_loop_t *loop = wt_loop_real();
    weft_process_t *p = NULL;
    int pid, code = 0;
    ASSERT_OK(wt_run_task(loop, start_sleep, &p, NULL));
    pid = weft_process_pid(p);
    WT_CLOSE_LOOP(loop);
    ASSERT_OK(kill(pid, 0)); /* not killed */
    ASSERT_EQ_INT(weft_process_returncode(p, &code), 0);
    ASSERT_EQ_INT(weft_process_kill(p), WEFT_ESRCH);
    ASSERT_EQ_INT(weft_stream_fd(weft_process_stdout(p)), -1); /* closed with the loop */
    weft_process_free(p);
    assert_reaped_soon(pid, 3);
}
TEST(loop_close_with_running_child) { loop_close_running(); }

/* Tasks blocked in wait() and communicate() when the loop closes are abandoned: nothing leaks
 * (the sanitizer builds check), the children are reaped in the background. */
static int communicate_task(void *arg, void **result) {
    char *out, *err;
    return weft_process_communicate(arg, "x", 1, &out, NULL, &err, NULL, NULL);
}

static int blocked_main(void *arg, void **result) {
    weft_process_t **p = arg;
    char *argv[] = {"sleep", "0.3", NULL};
    weft_process_options_t o = ALL_PIPES;
    ASSERT_OK(weft_create_subprocess_exec(&p[0], "sleep", argv, &o));
    ASSERT_OK(weft_create_subprocess_exec(&p[1], "sleep", argv, &o));
    ASSERT_OK(weft_create_task(NULL, wait_task, p[0], NULL));
    ASSERT_OK(weft_create_task(NULL, communicate_task, p[1], NULL));
    ASSERT_OK(weft_create_task(NULL, wait_task, p[1], NULL));
    return weft_sleep(0.05);
}

TEST(loop_close_with_blocked_tasks) {
    weft_loop_t *loop = wt_loop_real();
    weft_process_t *p[2] = {NULL, NULL};
    int pids[2];
    char *log;
    ASSERT_OK(wt_run_task(loop, blocked_main, p, NULL));
    pids[0] = weft_process_pid(p[0]);
    pids[1] = weft_process_pid(p[1]);
    weft_process_free(p[1]); /* freed while tasks are inside calls on it */
    wt_capture_begin();
    ASSERT_OK(weft_loop_close(loop));
    log = wt_capture_end();
    ASSERT_CONTAINS(log, "Task was destroyed but it is pending");
    free(log);
    weft_process_free(p[0]);
    assert_reaped_soon(pids[0], 3);
    assert_reaped_soon(pids[1], 3);
}

/* ---- the SIGCHLD fallback (no pidfd) ------------------------------------------------------ */

TEST(sigchld_fallback_echo_and_exit_code) {
    use_fallback();
    run_real(echo_cat_main, (void *)1);
    run_real(exit_code_main, NULL);
    run_real(killed_main, NULL);
}

TEST(sigchld_fallback_signals_and_cancel) {
    use_fallback();
    run_real(signals_main, NULL);
    run_real(cancel_wait_main, NULL);
    run_real(communicate_cancel_main, NULL);
}

TEST(sigchld_fallback_many_children) {
    use_fallback();
    run_real(many_main, NULL);
}

TEST(sigchld_fallback_no_zombie) {
    int pid = 0;
    use_fallback();
    run_real(free_running_main, &pid);
    loop_close_running();
}

/* A loop whose only child reaps through the fallback: waiting for it is not a deadlock, and
 * once it is reaped the SIGCHLD watcher goes (the loop can tell that nothing can happen). */
static int never(void *arg, void **result) {
    weft_future_t *f;
    int rc;
    ASSERT_OK(weft_create_future(&f));
    rc = weft_await(f, NULL);
    weft_unref(f);
    return rc;
}

static void deadlock_after_child(void) {
    weft_loop_t *loop = wt_loop_real();
    weft_process_t *p = NULL;
    weft_task_t *t;
    int code = -1;
    ASSERT_OK(wt_run_task(loop, start_true, &p, NULL));
    ASSERT_OK(weft_loop_create_task(loop, &t, never, NULL, NULL));
    /* Nothing but the child can happen: the loop waits for its exit, then reports. */
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_EDEADLK);
    ASSERT_EQ_INT(weft_process_returncode(p, &code), 1);
    ASSERT_EQ_INT(code, 0);
    ASSERT_EQ_INT(weft_cancel(t, NULL), 1);
    ASSERT_EQ_INT(weft_loop_run_until_complete(loop, t, NULL), WEFT_ECANCELED);
    weft_unref(t);
    weft_process_free(p);
    WT_CLOSE_LOOP(loop);
}
TEST(child_keeps_loop_alive_until_reaped) { deadlock_after_child(); }
TEST(sigchld_fallback_keeps_loop_alive_until_reaped) {
    use_fallback();
    deadlock_after_child();
}

const wt_test_t wt_tests[] = {
    T(echo_through_cat),
    T(shell_exit_code),
    T(devnull),
    T(stderr_into_stdout),
    T(env_and_cwd),
    T(env_path_finds_program),
    T(env_without_path_uses_default),
    T(env_path_missing_program),
    T(start_new_session),
    T(child_inherits_only_stdio_and_default_signals),
    T(stdout_limit),
    T(communicate_10mb_each_way),
    T(communicate_child_ignores_input),
    T(communicate_cancelled_leaves_child),
    T(child_killed_by_signal),
    T(terminate_kill_send_signal),
    T(missing_or_not_executable),
    T(bad_input),
    T(wait_outside_task),
    T(cancelled_wait_leaves_child_running),
    T(wait_timeout),
    T(many_children),
    T(free_running_child_no_zombie),
    T(loop_close_with_running_child),
    T(loop_close_with_blocked_tasks),
    T(sigchld_fallback_echo_and_exit_code),
    T(sigchld_fallback_signals_and_cancel),
    T(sigchld_fallback_many_children),
    T(sigchld_fallback_no_zombie),
    T(child_keeps_loop_alive_until_reaped),
    T(sigchld_fallback_keeps_loop_alive_until_reaped),
    WT_END,
};
