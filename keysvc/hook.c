#include "hook.h"

#include "ks_log.h"
#include "ks_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---------------------------------------------------------------- words */

typedef struct word_list {
    char **argv;
    size_t n;
    char *cur; /* the word being built */
    size_t cur_len;
    int in_word;
} word_list;

static int add_char(word_list *w, char c)
{
    char *grown = realloc(w->cur, w->cur_len + 2);
    if (grown == NULL)
        return -1;
    w->cur = grown;
    w->cur[w->cur_len++] = c;
    w->cur[w->cur_len] = '\0';
    w->in_word = 1;
    return 0;
}

static int end_word(word_list *w)
{
    if (!w->in_word)
        return 0;
    char **grown = realloc(w->argv, (w->n + 2) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    w->argv = grown;
    w->argv[w->n++] = w->cur ? w->cur : strdup("");
    w->argv[w->n] = NULL;
    w->cur = NULL;
    w->cur_len = 0;
    w->in_word = 0;
    return w->argv[w->n - 1] ? 0 : -1;
}

/* One quoted section starting after its opening quote; returns the
 * position after the closing one, or NULL when it is not closed.  In double
 * quotes a backslash escapes only \ and " (and $ and `, which have no other
 * meaning here). */
static const char *quoted(word_list *w, const char *p, char quote, int *oom)
{
    w->in_word = 1;
    for (; *p != quote; p++) {
        if (*p == '\0')
            return NULL;
        if (quote == '"' && *p == '\\' && strchr("\\\"$`", p[1]) && p[1] != '\0')
            p++;
        if (add_char(w, *p) < 0)
            *oom = 1;
    }
    return p + 1;
}

int ks_split_words(const char *command, char ***argv, ks_err *err)
{
    word_list w = {0};
    int oom = 0;
    const char *p = command;
    *argv = NULL;
    while (p != NULL && *p != '\0' && !oom) {
        if (*p == ' ' || *p == '\t' || *p == '\n') {
            oom = end_word(&w) < 0;
            p++;
        } else if (*p == '\'' || *p == '"') {
            p = quoted(&w, p + 1, *p, &oom);
        } else if (*p == '\\' && p[1] != '\0') {
            oom = add_char(&w, p[1]) < 0;
            p += 2;
        } else {
            oom = add_char(&w, *p++) < 0;
        }
    }
    if (p != NULL && !oom)
        oom = end_word(&w) < 0;
    if (p == NULL || oom || w.n == 0) {
        free(w.cur);
        ks_words_free(w.argv);
        return p == NULL  ? ks_fail(err, "unterminated quote in \"%s\"", command)
               : oom      ? ks_fail(err, "out of memory")
                          : ks_fail(err, "empty command");
    }
    *argv = w.argv;
    return 0;
}

void ks_words_free(char **argv)
{
    for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
        free(argv[i]);
    free(argv);
}

/* ------------------------------------------------------------ the child */

/* The environment for the hook, built before the fork (nothing in the
 * child may allocate): keysvc's own, with `vars` replacing same-named
 * entries.  The array is newly allocated; its strings are the environ's or
 * newly allocated (the first n_vars). */
static char **hook_environment(const ks_hook_var *vars, size_t n_vars)
{
    size_t n_env = 0;
    while (environ[n_env] != NULL)
        n_env++;
    char **env = calloc(n_env + n_vars + 1, sizeof(*env));
    if (env == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < n_vars; i++)
        if ((env[n++] = ks_strdup_printf("%s=%s", vars[i].name, vars[i].value)) == NULL)
            goto fail;
    for (size_t i = 0; i < n_env; i++) {
        int replaced = 0;
        for (size_t v = 0; v < n_vars && !replaced; v++) {
            size_t len = strlen(vars[v].name);
            replaced = strncmp(environ[i], vars[v].name, len) == 0 && environ[i][len] == '=';
        }
        if (!replaced)
            env[n++] = environ[i];
    }
    return env;
fail:
    for (size_t i = 0; i < n_vars && env[i] != NULL; i++)
        free(env[i]);
    free(env);
    return NULL;
}

static void free_environment(char **env, size_t n_vars)
{
    for (size_t i = 0; env != NULL && i < n_vars; i++)
        free(env[i]);
    free(env);
}

/* In the child: its own process group (so a timeout kills what it
 * started), stdin from /dev/null, stdout into the pipe, nothing else
 * inherited, then the program.  Only async-signal-safe calls. */
static void exec_child(char **argv, char **env, int out_fd)
{
    setpgid(0, 0);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0)
        _exit(126);
    closefrom(3);
    signal(SIGPIPE, SIG_DFL);
    execvpe(argv[0], argv, env);
    _exit(127);
}

/* ----------------------------------------------------------- the parent */

/* Reads the hook's output until it closes stdout or the deadline passes
 * (returns 1 then). */
static int collect_output(int fd, long long deadline_ms, char *buf, size_t *len)
{
    for (;;) {
        long long left = deadline_ms - ks_now_ms();
        if (left <= 0)
            return 1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            continue;
        char chunk[4096];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        size_t keep = (size_t)n < KS_HOOK_MAX_OUTPUT - *len ? (size_t)n : KS_HOOK_MAX_OUTPUT - *len;
        memcpy(buf + *len, chunk, keep);
        *len += keep;
    }
}

/* Waits for the hook; after a timeout its whole process group is killed.
 * *timed_out is also set when the time runs out here, after the hook
 * closed its output but went on running (so that it is reported as a
 * timeout, not as "killed by signal 9"). */
static int reap(pid_t pid, int *timed_out, long long deadline_ms, int *status)
{
    if (*timed_out)
        kill(-pid, SIGKILL);
    for (;;) {
        pid_t r = waitpid(pid, status, *timed_out ? 0 : WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (!*timed_out && ks_now_ms() >= deadline_ms) {
            kill(-pid, SIGKILL);
            *timed_out = 1;
        } else if (!*timed_out) {
            ks_sleep_ms(10);
        }
    }
}

static int report_status(const char *what, int status, int timed_out, ks_err *err)
{
    if (timed_out)
        return ks_fail(err, "%s: killed after its time ran out", what);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return ks_fail(err, "%s: the command was not found or could not be run", what);
    if (WIFEXITED(status))
        return ks_fail(err, "%s: exited with status %d", what, WEXITSTATUS(status));
    return ks_fail(err, "%s: killed by signal %d", what, WTERMSIG(status));
}

int ks_hook_run(const char *what, const char *command, const ks_hook_var *vars, size_t n_vars,
                int timeout_s, char **output, ks_err *err)
{
    char **argv = NULL, **env = NULL, *buf = malloc(KS_HOOK_MAX_OUTPUT + 1);
    int pipefd[2] = {-1, -1}, status = 0, rc = -1;
    size_t len = 0;
    if (output != NULL)
        *output = NULL;
    if (buf == NULL || ks_split_words(command, &argv, err) < 0 ||
        (env = hook_environment(vars, n_vars)) == NULL || pipe2(pipefd, O_CLOEXEC) < 0) {
        if (buf == NULL || (argv != NULL && env == NULL))
            ks_fail(err, "out of memory");
        else if (env != NULL)
            ks_fail(err, "pipe: %s", strerror(errno));
        ks_failp(err, "%s", what);
        goto out;
    }
    ks_debug("%s: running %s", what, argv[0]);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        exec_child(argv, env, pipefd[1]);
    if (pid > 0)
        setpgid(pid, pid); /* as the child does: whichever runs first */
    close(pipefd[1]);
    pipefd[1] = -1;
    if (pid < 0) {
        ks_fail(err, "%s: fork: %s", what, strerror(errno));
        goto out;
    }
    long long deadline = ks_now_ms() + timeout_s * 1000LL;
    int timed_out = collect_output(pipefd[0], deadline, buf, &len);
    if (reap(pid, &timed_out, deadline, &status) < 0) {
        ks_fail(err, "%s: waitpid: %s", what, strerror(errno));
        goto out;
    }
    rc = report_status(what, status, timed_out, err);
    buf[len] = '\0';
    if (output != NULL) {
        *output = buf;
        buf = NULL;
    }
out:
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    free_environment(env, n_vars);
    ks_words_free(argv);
    free(buf);
    return rc;
}
