#include "hook.h"

#include "ks_log.h"
#include "ks_util.h"

#include <ctype.h>
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

/* Runs argv (see ks_hook_run). */
static int run_argv(const char *what, char **argv, const ks_hook_var *vars, size_t n_vars,
                    int timeout_s, char **output, ks_err *err)
{
    char **env = NULL, *buf = malloc(KS_HOOK_MAX_OUTPUT + 1);
    int pipefd[2] = {-1, -1}, status = 0, rc = -1;
    size_t len = 0;
    if (output != NULL)
        *output = NULL;
    if (buf == NULL || (env = hook_environment(vars, n_vars)) == NULL ||
        pipe2(pipefd, O_CLOEXEC) < 0) {
        if (env == NULL)
            ks_fail(err, "out of memory");
        else
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
    free(buf);
    return rc;
}

int ks_hook_run(const char *what, const char *command, const ks_hook_var *vars, size_t n_vars,
                int timeout_s, char **output, ks_err *err)
{
    char **argv = NULL;
    if (output != NULL)
        *output = NULL;
    if (ks_split_words(command, &argv, err) < 0)
        return ks_failp(err, "%s", what);
    int rc = run_argv(what, argv, vars, n_vars, timeout_s, output, err);
    ks_words_free(argv);
    return rc;
}

/* ------------------------------------------------------------ templates */

static const ks_hook_var *find_field(const ks_hook_var *fields, size_t n, const char *name,
                                     size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(fields[i].name) == len && strncmp(fields[i].name, name, len) == 0)
            return &fields[i];
    return NULL;
}

/* Appends `len` bytes to the growing string *out (size *cap, used *used). */
static int append(char **out, size_t *used, size_t *cap, const char *text, size_t len)
{
    if (*used + len + 1 > *cap) {
        size_t want = (*used + len + 1) * 2;
        char *grown = realloc(*out, want);
        if (grown == NULL)
            return -1;
        *out = grown;
        *cap = want;
    }
    memcpy(*out + *used, text, len);
    *used += len;
    (*out)[*used] = '\0';
    return 0;
}

/* One word with its {fields} replaced.  Newly allocated; NULL with err. */
static char *expand_word(const char *word, const ks_hook_var *fields, size_t n, ks_err *err)
{
    char *out = NULL;
    size_t used = 0, cap = 0;
    int oom = append(&out, &used, &cap, "", 0);
    for (const char *c = word; *c != '\0' && !oom;) {
        if ((c[0] == '{' && c[1] == '{') || (c[0] == '}' && c[1] == '}')) {
            oom = append(&out, &used, &cap, c, 1);
            c += 2;
            continue;
        }
        if (*c == '}') {
            ks_fail(err, "a single '}' (write \"}}\" for a literal brace)");
            goto fail;
        }
        if (*c != '{') {
            oom = append(&out, &used, &cap, c++, 1);
            continue;
        }
        const char *close = strchr(c, '}');
        const ks_hook_var *f = close ? find_field(fields, n, c + 1, (size_t)(close - c - 1)) : NULL;
        if (close == NULL) {
            ks_fail(err, "unterminated field \"%s\"", c);
            goto fail;
        }
        if (f == NULL) {
            ks_fail(err, "unknown field {%.*s}", (int)(close - c - 1), c + 1);
            goto fail;
        }
        oom = append(&out, &used, &cap, f->value ? f->value : "", f->value ? strlen(f->value) : 0);
        c = close + 1;
    }
    if (!oom)
        return out;
    ks_fail(err, "out of memory");
fail:
    free(out);
    return NULL;
}

int ks_template_argv(const char *tmpl, const ks_hook_var *fields, size_t n, char ***argv,
                     ks_err *err)
{
    char **words = NULL;
    *argv = NULL;
    if (ks_split_words(tmpl, &words, err) < 0)
        return -1;
    for (size_t i = 0; words[i] != NULL; i++) {
        char *expanded = expand_word(words[i], fields, n, err);
        if (expanded == NULL) {
            ks_words_free(words);
            return -1;
        }
        free(words[i]);
        words[i] = expanded;
    }
    *argv = words;
    return 0;
}

int ks_hook_run_template(const char *what, const char *tmpl, const ks_hook_var *fields,
                         size_t n, int timeout_s, char **output, ks_err *err)
{
    char **argv = NULL;
    ks_hook_var env[KS_HOOK_MAX_FIELDS];
    char names[KS_HOOK_MAX_FIELDS][64];
    if (output != NULL)
        *output = NULL;
    if (n > KS_HOOK_MAX_FIELDS)
        return ks_fail(err, "%s: too many fields", what);
    if (ks_template_argv(tmpl, fields, n, &argv, err) < 0)
        return ks_failp(err, "%s", what);
    /* The fields also go in the environment, as KEYSVC_<FIELD>, for
     * scripts that prefer not to take them as arguments. */
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        j += (size_t)snprintf(names[i], sizeof(names[i]), "KEYSVC_");
        for (const char *c = fields[i].name; *c && j + 1 < sizeof(names[i]); c++)
            names[i][j++] = (char)toupper((unsigned char)*c);
        names[i][j] = '\0';
        env[i] = (ks_hook_var){names[i], fields[i].value ? fields[i].value : ""};
    }
    int rc = run_argv(what, argv, env, n, timeout_s, output, err);
    ks_words_free(argv);
    return rc;
}
