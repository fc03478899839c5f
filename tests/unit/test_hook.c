/*
 * Hooks (keysvc/hook.h): the shell-like word splitting with nothing of the
 * shell's expansion, and running a hook with fork/exec: its environment,
 * captured output, exit status, signals, timeout with its process group,
 * bounded output, missing programs and stdin; acmebot's {field} templates,
 * whose values stay one argument each whatever they hold.  The hooks are
 * small sh scripts written into a fresh temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hook.h"
#include "ks_err.h"
#include "ks_util.h"
#include "test_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];

/* ---- helpers ------------------------------------------------------------- */

static char *path_in_tmp(const char *name)
{
    char *p = ks_strdup_printf("%s/%s", tmpdir, name);
    assert_non_null(p);
    return p;
}

/* Writes an executable sh script `name` into the temporary directory;
 * returns its path (caller frees). */
static char *write_script(const char *name, const char *body)
{
    char *path = path_in_tmp(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fprintf(f, "#!/bin/sh\n%s\n", body) > 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0755), 0);
    return path;
}

static void expect_words(const char *command, const char *const *want, size_t n)
{
    char **argv = NULL;
    ks_err err = {{0}};
    if (ks_split_words(command, &argv, &err) != 0)
        fail_msg("split \"%s\": %s", command, err.msg);
    assert_non_null(argv);
    size_t got = 0;
    while (argv[got] != NULL)
        got++;
    if (got != n)
        fail_msg("split \"%s\": %zu words, expected %zu", command, got, n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[i], want[i]) != 0)
            fail_msg("split \"%s\": word %zu is \"%s\", expected \"%s\"", command, i, argv[i],
                     want[i]);
    ks_words_free(argv);
}

static void expect_split_error(const char *command, const char *what)
{
    char **argv = (char **)0x1;
    ks_err err = {{0}};
    if (ks_split_words(command, &argv, &err) != -1)
        fail_msg("split \"%s\" succeeded", command);
    assert_null(argv);
    if (strstr(err.msg, what) == NULL)
        fail_msg("split \"%s\": error \"%s\" does not say \"%s\"", command, err.msg, what);
}

static void expect_err_has(const ks_err *err, const char *part)
{
    if (strstr(err->msg, part) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err->msg, part);
}

/* Whether a process is gone (or a zombie nobody reaped yet: it runs no more). */
static int process_gone(pid_t pid)
{
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return 1;
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close = strrchr(buf, ')');
    return close != NULL && (close[2] == 'Z' || close[2] == 'X');
}

static pid_t read_pid_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("%s: %s", path, strerror(errno));
    int pid = 0;
    int ok = fscanf(f, "%d", &pid);
    fclose(f);
    assert_int_equal(ok, 1);
    assert_true(pid > 1);
    return (pid_t)pid;
}

static int setup_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ks-hook-test-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_tmpdir(void **state)
{
    (void)state;
    test_remove_tree(tmpdir);
    return 0;
}

/* ---- ks_split_words ------------------------------------------------------ */

static void test_split_plain(void **state)
{
    (void)state;
    static const char *const abc[] = {"a", "b", "c"};
    expect_words("a b c", abc, 3);
    expect_words("  a \t b\t\tc  ", abc, 3);
    expect_words("a\nb\n c\n", abc, 3);
    static const char *const one[] = {"/usr/local/bin/dns-hook"};
    expect_words("/usr/local/bin/dns-hook", one, 1);
}

static void test_split_quotes(void **state)
{
    (void)state;
    static const char *const single[] = {"a b", "c"};
    expect_words("'a b' c", single, 2);
    /* Nothing is special inside single quotes. */
    static const char *const raw[] = {"a\\b \"c\" $d"};
    expect_words("'a\\b \"c\" $d'", raw, 1);
    /* In double quotes \" and \\ (and \$, \`) are escapes; other
     * backslashes stay. */
    static const char *const dq[] = {"a \" b \\ c", "x"};
    expect_words("\"a \\\" b \\\\ c\" x", dq, 2);
    static const char *const dq2[] = {"a\\nb", "$x`"};
    expect_words("\"a\\nb\" \"\\$x\\`\"", dq2, 2);
    static const char *const mixed[] = {"it's", "say \"hi\""};
    expect_words("\"it's\" 'say \"hi\"'", mixed, 2);
}

static void test_split_backslash(void **state)
{
    (void)state;
    static const char *const esc[] = {"a b", "'x", "\"", "\\", "n"};
    expect_words("a\\ b \\'x \\\" \\\\ \\n", esc, 5);
    /* A backslash at the very end has nothing to escape: it stays. */
    static const char *const end[] = {"a\\"};
    expect_words("a\\", end, 1);
}

static void test_split_adjacent_and_empty(void **state)
{
    (void)state;
    static const char *const abc[] = {"abc"};
    expect_words("'a'\"b\"c", abc, 1);
    static const char *const joined[] = {"xy zw", "q"};
    expect_words("x'y z'w q", joined, 2);
    static const char *const empty[] = {""};
    expect_words("\"\"", empty, 1);
    expect_words("''", empty, 1);
    static const char *const between[] = {"a", "", "b", ""};
    expect_words("a \"\" b ''", between, 4);
    static const char *const glued[] = {"a"};
    expect_words("\"\"a''", glued, 1);
}

static void test_split_errors(void **state)
{
    (void)state;
    expect_split_error("'abc", "unterminated");
    expect_split_error("\"abc", "unterminated");
    expect_split_error("a \"b c", "unterminated");
    expect_split_error("\"abc\\\"", "unterminated");
    expect_split_error("a 'b\"", "unterminated");
    expect_split_error("", "empty");
    expect_split_error("   ", "empty");
    expect_split_error(" \t\n ", "empty");
    /* err may be NULL. */
    char **argv = NULL;
    assert_int_equal(ks_split_words("'x", &argv, NULL), -1);
    assert_null(argv);
}

static void test_split_no_shell_syntax(void **state)
{
    (void)state;
    static const char *const lit[] = {"echo", "$HOME",   "${X}", "`id`", "$(id)", ";",
                                      "|",    "&&",      ">",    "<",    "*",     "?",
                                      "~",    "a;b|c&d", "#x",   "2>&1"};
    expect_words("echo $HOME ${X} `id` $(id) ; | && > < * ? ~ a;b|c&d #x 2>&1", lit, 16);
    /* Quoted, the same characters stay as they are too. */
    static const char *const q[] = {"$(rm -rf /)", "`x`;y"};
    expect_words("\"$(rm -rf /)\" '`x`;y'", q, 2);
}

/* ---- ks_hook_run --------------------------------------------------------- */

static void test_hook_environment(void **state)
{
    (void)state;
    assert_int_equal(setenv("KS_TEST_INHERITED", "from-keysvc", 1), 0);
    assert_int_equal(setenv("KS_TEST_OVERRIDE", "old", 1), 0);
    char *script = write_script("env.sh", "printf '%s|%s|%s|' \"$KS_A\" \"$KS_B\" "
                                          "\"$KS_TEST_INHERITED\"\n"
                                          "env | grep -c '^KS_TEST_OVERRIDE='\n"
                                          "printf '%s' \"$KS_TEST_OVERRIDE\"");
    const ks_hook_var vars[] = {
        {"KS_A", "value a"}, {"KS_B", "line1\nline2 'q' \"dq\" \\"}, {"KS_TEST_OVERRIDE", "new"}};
    char *out = NULL;
    ks_err err = {{0}};
    if (ks_hook_run("env hook", script, vars, 3, 10, &out, &err) != 0)
        fail_msg("ks_hook_run: %s", err.msg);
    assert_non_null(out);
    assert_string_equal(out, "value a|line1\nline2 'q' \"dq\" \\|from-keysvc|1\nnew");
    free(out);
    /* keysvc's own environment is left as it was. */
    assert_string_equal(getenv("KS_TEST_OVERRIDE"), "old");
    unsetenv("KS_TEST_INHERITED");
    unsetenv("KS_TEST_OVERRIDE");
    free(script);
}

static void test_hook_output_and_args(void **state)
{
    (void)state;
    char *script = write_script("args.sh", "for a in \"$@\"; do printf '[%s]' \"$a\"; done\n"
                                           "printf '\\nhello\\nworld\\n'");
    char *cmd = ks_strdup_printf("'%s' one 'two words' \"th\\\"ree\" ''", script);
    assert_non_null(cmd);
    char *out = NULL;
    ks_err err = {{0}};
    if (ks_hook_run("args hook", cmd, NULL, 0, 10, &out, &err) != 0)
        fail_msg("ks_hook_run: %s", err.msg);
    assert_string_equal(out, "[one][two words][th\"ree][]\nhello\nworld\n");
    free(out);
    /* Output may be discarded. */
    assert_int_equal(ks_hook_run("args hook", cmd, NULL, 0, 10, NULL, &err), 0);
    /* No output at all: an empty string, not NULL. */
    assert_int_equal(ks_hook_run("true hook", "true", NULL, 0, 10, &out, &err), 0);
    assert_non_null(out);
    assert_string_equal(out, "");
    free(out);
    free(cmd);
    free(script);
}

static void test_hook_metacharacters_stay_data(void **state)
{
    (void)state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmpdir), 0);
    assert_int_equal(mkdir("x", 0700), 0);
    const char *evil = "$(touch PWNED); `touch PWNED2`; rm -rf x";
    char *script = write_script("meta.sh", "printf '%s' \"$KS_NAME\"");
    const ks_hook_var vars[] = {{"KS_NAME", evil}};
    char *out = NULL;
    ks_err err = {{0}};
    int rc = ks_hook_run("meta hook", script, vars, 1, 10, &out, &err);
    if (rc != 0)
        fail_msg("ks_hook_run: %s", err.msg);
    assert_string_equal(out, evil);
    free(out);

    /* Shell syntax in the command itself is a list of literal arguments. */
    rc = ks_hook_run("echo hook",
                     "echo $(touch PWNED3) ; touch PWNED4 && touch PWNED5 | cat > out *", NULL, 0,
                     10, &out, &err);
    if (rc != 0)
        fail_msg("ks_hook_run: %s", err.msg);
    assert_string_equal(out, "$(touch PWNED3) ; touch PWNED4 && touch PWNED5 | cat > out *\n");
    free(out);

    static const char *const never[] = {"PWNED", "PWNED2", "PWNED3", "PWNED4", "PWNED5", "out"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        if (access(never[i], F_OK) == 0)
            fail_msg("%s was created: a value or the command went through a shell", never[i]);
    struct stat st;
    assert_int_equal(stat("x", &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(rmdir("x"), 0);
    assert_int_equal(chdir(cwd), 0);
    free(script);
}

static void test_hook_exit_status(void **state)
{
    (void)state;
    char *script = write_script("exit3.sh", "echo partial; exit 3");
    char *out = (char *)0x1;
    ks_err err = {{0}};
    assert_int_equal(ks_hook_run("dns hook", script, NULL, 0, 10, &out, &err), -1);
    /* What a failed hook printed is still handed back (caller frees). */
    assert_non_null(out);
    assert_string_equal(out, "partial\n");
    free(out);
    expect_err_has(&err, "dns hook");
    expect_err_has(&err, "status 3");
    ks_err_clear(&err);
    assert_int_equal(ks_hook_run("false hook", "false", NULL, 0, 10, NULL, &err), -1);
    expect_err_has(&err, "false hook");
    expect_err_has(&err, "status 1");
    free(script);
}

static void test_hook_killed_by_signal(void **state)
{
    (void)state;
    char *term = write_script("term.sh", "kill -TERM $$; sleep 5");
    char *kill9 = write_script("kill9.sh", "kill -KILL $$; sleep 5");
    ks_err err = {{0}};
    assert_int_equal(ks_hook_run("term hook", term, NULL, 0, 10, NULL, &err), -1);
    expect_err_has(&err, "term hook");
    expect_err_has(&err, "signal 15");
    ks_err_clear(&err);
    assert_int_equal(ks_hook_run("kill hook", kill9, NULL, 0, 10, NULL, &err), -1);
    expect_err_has(&err, "kill hook");
    expect_err_has(&err, "signal 9");
    free(term);
    free(kill9);
}

/* Runs a hook script that starts `sleep 30 &`, writes its own PID and the
 * background child's, and sleeps past a 1 s timeout; checks both are gone
 * and the call came back in time.  Returns the output (caller frees). */
static char *run_slow_hook(const char *name, const char *body)
{
    char *script = write_script(name, body);
    char *child_file = path_in_tmp("child.pid");
    char *self_file = path_in_tmp("self.pid");
    unlink(child_file);
    unlink(self_file);
    const ks_hook_var vars[] = {{"KS_CHILD_PID", child_file}, {"KS_SELF_PID", self_file}};
    char *out = (char *)0x1;
    ks_err err = {{0}};
    long long t0 = ks_now_ms();
    int rc = ks_hook_run("slow hook", script, vars, 2, 1, &out, &err);
    long long elapsed = ks_now_ms() - t0;
    pid_t child = read_pid_file(child_file), self = read_pid_file(self_file);
    int gone = 0;
    for (int i = 0; i < 300 && !gone; i++) {
        gone = process_gone(child) && process_gone(self);
        if (!gone)
            ks_sleep_ms(10);
    }
    if (!gone) {
        kill(child, SIGKILL);
        kill(self, SIGKILL);
        fail_msg("the hook (%d) or its background child (%d) survived the timeout", (int)self,
                 (int)child);
    }
    assert_int_equal(rc, -1);
    assert_non_null(out);
    expect_err_has(&err, "slow hook");
    expect_err_has(&err, "time");
    if (elapsed < 900 || elapsed > 4000)
        fail_msg("a hook with a 1 s timeout returned after %lld ms", elapsed);
    free(child_file);
    free(self_file);
    free(script);
    return out;
}

static void test_hook_timeout_kills_group(void **state)
{
    (void)state;
    char *out = run_slow_hook("slow.sh", "sleep 30 &\n"
                                         "echo $! > \"$KS_CHILD_PID\"\n"
                                         "echo $$ > \"$KS_SELF_PID\"\n"
                                         "echo started\n"
                                         "sleep 30\n"
                                         "echo not reached");
    assert_string_equal(out, "started\n");
    free(out);
}

/* The same when the hook closed its standard output first: the time runs
 * out while waiting for it to exit, not while reading. */
static void test_hook_timeout_after_stdout_closed(void **state)
{
    (void)state;
    char *out = run_slow_hook("quiet.sh", "echo bye\n"
                                          "exec >&-\n"
                                          "sleep 30 &\n"
                                          "echo $! > \"$KS_CHILD_PID\"\n"
                                          "echo $$ > \"$KS_SELF_PID\"\n"
                                          "sleep 30");
    assert_string_equal(out, "bye\n");
    free(out);
}

static void test_hook_output_bounded(void **state)
{
    (void)state;
    char *script = write_script("big.sh", "head -c 1000000 /dev/zero | tr '\\0' a");
    char *out = NULL;
    ks_err err = {{0}};
    long long t0 = ks_now_ms();
    int rc = ks_hook_run("big hook", script, NULL, 0, 20, &out, &err);
    long long elapsed = ks_now_ms() - t0;
    if (rc != 0)
        fail_msg("ks_hook_run: %s", err.msg);
    assert_non_null(out);
    size_t len = strlen(out);
    assert_int_equal(len, KS_HOOK_MAX_OUTPUT);
    for (size_t i = 0; i < len; i++)
        if (out[i] != 'a')
            fail_msg("output byte %zu is 0x%02x", i, (unsigned char)out[i]);
    if (elapsed > 10000)
        fail_msg("1 MB of output took %lld ms", elapsed);
    free(out);

    /* Exactly the limit is kept whole. */
    char *body = ks_strdup_printf("head -c %d /dev/zero | tr '\\0' b", KS_HOOK_MAX_OUTPUT);
    assert_non_null(body);
    char *exact = write_script("exact.sh", body);
    assert_int_equal(ks_hook_run("exact hook", exact, NULL, 0, 20, &out, &err), 0);
    assert_int_equal(strlen(out), KS_HOOK_MAX_OUTPUT);
    assert_int_equal(out[KS_HOOK_MAX_OUTPUT - 1], 'b');
    free(out);
    free(exact);
    free(body);
    free(script);
}

static void test_hook_missing_program(void **state)
{
    (void)state;
    ks_err err = {{0}};
    char *out = (char *)0x1;
    assert_int_equal(
        ks_hook_run("dns hook", "/nonexistent/ks-no-such-hook --flag", NULL, 0, 10, &out, &err),
        -1);
    assert_non_null(out);
    assert_string_equal(out, "");
    free(out);
    expect_err_has(&err, "dns hook");
    expect_err_has(&err, "not found");
    ks_err_clear(&err);
    assert_int_equal(ks_hook_run("path hook", "ks-no-such-hook-on-path", NULL, 0, 10, NULL, &err),
                     -1);
    expect_err_has(&err, "path hook");
    expect_err_has(&err, "not found");
    /* A file that is not executable cannot be run either. */
    char *script = write_script("noexec.sh", "echo ran");
    assert_int_equal(chmod(script, 0644), 0);
    ks_err_clear(&err);
    assert_int_equal(ks_hook_run("noexec hook", script, NULL, 0, 10, NULL, &err), -1);
    expect_err_has(&err, "noexec hook");
    expect_err_has(&err, "could not be run");
    /* A command that does not split fails before anything runs. */
    ks_err_clear(&err);
    out = (char *)0x1;
    assert_int_equal(ks_hook_run("quote hook", "'unterminated", NULL, 0, 10, &out, &err), -1);
    assert_null(out);
    expect_err_has(&err, "quote hook");
    expect_err_has(&err, "unterminated");
    ks_err_clear(&err);
    assert_int_equal(ks_hook_run("empty hook", "  ", NULL, 0, 10, &out, &err), -1);
    assert_null(out);
    expect_err_has(&err, "empty command");
    free(script);
}

/* stdin is /dev/null: a hook that reads it gets EOF at once, even when
 * keysvc's own stdin is a pipe that never delivers anything. */
static void test_hook_stdin_is_dev_null(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    int saved = dup(STDIN_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(p[0], STDIN_FILENO) >= 0);
    char *script = write_script("stdin.sh", "if read -r line; then printf 'got:%s' \"$line\"; "
                                            "else printf 'EOF:'; fi\n"
                                            "wc -c | tr -d ' \\n'\n"
                                            "printf ':'; readlink /proc/self/fd/0");
    char *out = NULL;
    ks_err err = {{0}};
    long long t0 = ks_now_ms();
    int rc = ks_hook_run("stdin hook", script, NULL, 0, 5, &out, &err);
    long long elapsed = ks_now_ms() - t0;
    assert_true(dup2(saved, STDIN_FILENO) >= 0);
    close(saved);
    close(p[0]);
    close(p[1]);
    if (rc != 0)
        fail_msg("ks_hook_run: %s", err.msg);
    assert_string_equal(out, "EOF:0:/dev/null\n");
    if (elapsed > 3000)
        fail_msg("reading stdin took %lld ms", elapsed);
    free(out);
    free(script);
}

/* Only stdin, stdout and stderr reach the hook: not keysvc's other
 * descriptors (a token session, a database socket). */
static void test_hook_no_inherited_fds(void **state)
{
    (void)state;
    int fd = open("/dev/null", O_RDONLY); /* without O_CLOEXEC on purpose */
    assert_true(fd >= 0);
    assert_true(dup2(fd, 57) == 57);
    close(fd);
    char *script = write_script("fds.sh", "for n in 3 4 5 6 7 8 9 57; do\n"
                                          "  [ -e /proc/$$/fd/$n ] && printf '%s ' $n\n"
                                          "done; printf end");
    char *out = NULL;
    ks_err err = {{0}};
    int rc = ks_hook_run("fd hook", script, NULL, 0, 10, &out, &err);
    close(57);
    if (rc != 0)
        fail_msg("ks_hook_run: %s", err.msg);
    /* (The shell itself keeps its script open on a descriptor >= 10.) */
    if (strcmp(out, "end") != 0)
        fail_msg("descriptors reached the hook: %s", out);
    free(out);
    free(script);
}

/* ---- ks_template_argv ---------------------------------------------------- */

/* What the hooks section's templates get: a hostile value. */
#define EVIL "$(touch x); rm -rf / \"quoted\""

static const ks_hook_var tmpl_fields[] = {
    {"domain", EVIL}, {"zone", "example.test"}, {"challenge", "abc-123_XYZ"}, {"empty", ""}};

static void expect_template(const char *tmpl, const char *const *want, size_t n)
{
    char **argv = NULL;
    ks_err err = {{0}};
    if (ks_template_argv(tmpl, tmpl_fields, 4, &argv, &err) != 0)
        fail_msg("template \"%s\": %s", tmpl, err.msg);
    assert_non_null(argv);
    size_t got = 0;
    while (argv[got] != NULL)
        got++;
    if (got != n)
        fail_msg("template \"%s\": %zu words, expected %zu", tmpl, got, n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[i], want[i]) != 0)
            fail_msg("template \"%s\": word %zu is \"%s\", expected \"%s\"", tmpl, i, argv[i],
                     want[i]);
    ks_words_free(argv);
}

static void expect_template_error(const char *tmpl, const char *what)
{
    char **argv = NULL;
    ks_err err = {{0}};
    if (ks_template_argv(tmpl, tmpl_fields, 4, &argv, &err) != -1) {
        ks_words_free(argv);
        fail_msg("template \"%s\" was accepted", tmpl);
    }
    assert_null(argv);
    if (strstr(err.msg, what) == NULL)
        fail_msg("template \"%s\": error \"%s\" does not say \"%s\"", tmpl, err.msg, what);
}

static void test_template_value_is_one_word(void **state)
{
    (void)state;
    /* Blanks, quotes and shell syntax in a value stay inside its argument. */
    static const char *const want[] = {"/usr/local/bin/set", EVIL, "example.test"};
    expect_template("/usr/local/bin/set {domain} {zone}", want, 3);
    static const char *const alone[] = {EVIL};
    expect_template("{domain}", alone, 1);
    /* A value is not expanded again, nor split. */
    static const ks_hook_var tricky[] = {{"a", "{b} }} {{"}, {"b", "B"}};
    char **argv = NULL;
    ks_err err = {{0}};
    assert_int_equal(ks_template_argv("x {a} {b}", tricky, 2, &argv, &err), 0);
    assert_string_equal(argv[0], "x");
    assert_string_equal(argv[1], "{b} }} {{");
    assert_string_equal(argv[2], "B");
    assert_null(argv[3]);
    ks_words_free(argv);
    /* An empty value is still an argument; a NULL one is empty. */
    static const char *const empty[] = {"cmd", "", "x"};
    expect_template("cmd {empty} x", empty, 3);
    static const ks_hook_var null_value[] = {{"v", NULL}};
    assert_int_equal(ks_template_argv("cmd {v} .{v}.", null_value, 1, &argv, &err), 0);
    assert_string_equal(argv[1], "");
    assert_string_equal(argv[2], "..");
    assert_null(argv[3]);
    ks_words_free(argv);
}

static void test_template_field_inside_word(void **state)
{
    (void)state;
    static const char *const want[] = {"hook", "--zone=example.test",
                                       ("_acme-challenge." EVIL), "example.testexample.test",
                                       "[abc-123_XYZ]"};
    expect_template("hook --zone={zone} _acme-challenge.{domain} {zone}{zone} [{challenge}]", want,
                    5);
    /* A template without fields is a plain command. */
    static const char *const plain[] = {"/bin/true", "a"};
    expect_template("/bin/true a", plain, 2);
}

static void test_template_literal_braces(void **state)
{
    (void)state;
    static const char *const want[] = {"{x}", "{example.test}", "}{", "a{b}c", "{{"};
    expect_template("{{x}} {{{zone}}} }}{{ a{{b}}c {{{{", want, 5);
}

static void test_template_errors(void **state)
{
    (void)state;
    expect_template_error("hook {bogus}", "{bogus}");
    expect_template_error("hook --name={domian}", "{domian}");
    /* Field names match whole, not by prefix. */
    expect_template_error("hook {zon}", "{zon}");
    expect_template_error("hook {zones}", "{zones}");
    expect_template_error("hook {}", "unknown field {}");
    expect_template_error("hook {zone", "unterminated");
    expect_template_error("hook {", "unterminated");
    expect_template_error("hook {{{zone", "unterminated");
    expect_template_error("hook zone}", "'}'");
    expect_template_error("hook }", "'}'");
    expect_template_error("hook {zone}}", "'}'");
    /* The template's own quoting still has to be right. */
    expect_template_error("hook '{zone}", "unterminated quote");
    expect_template_error("", "empty");
    /* err may be NULL. */
    char **argv = NULL;
    assert_int_equal(ks_template_argv("{nope}", tmpl_fields, 4, &argv, NULL), -1);
}

static void test_template_quotes_group_words(void **state)
{
    (void)state;
    /* Quotes are removed before the fields are replaced: a quoted field is
     * replaced too, and the quotes only group words. */
    static const char *const want[] = {"hook", EVIL " and example.test", "x example.test",
                                       "{zone}-literal? no: example.test", "a b"};
    expect_template("hook '{domain} and {zone}' \"x {zone}\" "
                    "'{{zone}}-literal? no: {zone}' a\\ b",
                    want, 5);
    /* Quotes inside a value are data, not quoting. */
    static const ks_hook_var q[] = {{"v", "'a b' \"c\""}};
    char **argv = NULL;
    ks_err err = {{0}};
    assert_int_equal(ks_template_argv("cmd {v}", q, 1, &argv, &err), 0);
    assert_string_equal(argv[1], "'a b' \"c\"");
    assert_null(argv[2]);
    ks_words_free(argv);
}

/* ---- ks_hook_run_template ------------------------------------------------ */

static char *read_file_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("%s: %s", path, strerror(errno));
    char *buf = calloc(1, 4096);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 4095, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_hook_run_template(void **state)
{
    (void)state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmpdir), 0);
    char *record = path_in_tmp("template-args.txt");
    char *body = ks_strdup_printf("{ printf '%%s\\n' \"$#\"\n"
                                  "  for a in \"$@\"; do printf '[%%s]\\n' \"$a\"; done\n"
                                  "  printf 'env:[%%s][%%s][%%s]\\n' \"$KEYSVC_DOMAIN\" "
                                  "\"$KEYSVC_ZONE\" \"$KEYSVC_CHALLENGE\"\n"
                                  "} > '%s'\n"
                                  "echo done",
                                  record);
    assert_non_null(body);
    char *script = write_script("template.sh", body);
    char *tmpl = ks_strdup_printf("%s {domain} --zone={zone} '{challenge} x'", script);
    assert_non_null(tmpl);
    char *out = NULL;
    ks_err err = {{0}};
    if (ks_hook_run_template("set_dns_challenge hook", tmpl, tmpl_fields, 4, 10, &out, &err) != 0)
        fail_msg("ks_hook_run_template: %s", err.msg);
    assert_string_equal(out, "done\n");
    free(out);
    char *got = read_file_text(record);
    assert_string_equal(got, "3\n"
                             "[" EVIL "]\n"
                             "[--zone=example.test]\n"
                             "[abc-123_XYZ x]\n"
                             "env:[" EVIL "][example.test][abc-123_XYZ]\n");
    free(got);
    /* Nothing in the value ran. */
    if (access("x", F_OK) == 0)
        fail_msg("x was created: the value went through a shell");
    if (access("quoted", F_OK) == 0)
        fail_msg("\"quoted\" was created");
    assert_int_equal(chdir(cwd), 0);

    /* A template that does not expand runs nothing: an error naming the hook
     * and the field, no output. */
    assert_int_equal(unlink(record), 0);
    char *bad = ks_strdup_printf("%s {challenge_key}", script);
    assert_non_null(bad);
    out = (char *)0x1;
    ks_err_clear(&err);
    assert_int_equal(ks_hook_run_template("dns hook", bad, tmpl_fields, 4, 10, &out, &err), -1);
    assert_null(out);
    expect_err_has(&err, "dns hook");
    expect_err_has(&err, "{challenge_key}");
    assert_int_equal(access(record, F_OK), -1);
    /* Its exit status is reported as ks_hook_run reports it. */
    ks_err_clear(&err);
    assert_int_equal(
        ks_hook_run_template("false hook", "false {zone}", tmpl_fields, 4, 10, NULL, &err), -1);
    expect_err_has(&err, "false hook");
    expect_err_has(&err, "status 1");
    /* More fields than the environment has room for. */
    ks_hook_var many[KS_HOOK_MAX_FIELDS + 1];
    for (size_t i = 0; i < KS_HOOK_MAX_FIELDS + 1; i++)
        many[i] = (ks_hook_var){"f", "v"};
    ks_err_clear(&err);
    assert_int_equal(
        ks_hook_run_template("big hook", "true", many, KS_HOOK_MAX_FIELDS + 1, 10, NULL, &err), -1);
    expect_err_has(&err, "too many fields");
    free(bad);
    free(tmpl);
    free(script);
    free(body);
    free(record);
}

/* The KEYSVC_<FIELD> variables replace same-named ones of keysvc's own. */
static void test_hook_run_template_env_override(void **state)
{
    (void)state;
    assert_int_equal(setenv("KEYSVC_ZONE", "stale.test", 1), 0);
    char *script = write_script("tenv.sh", "printf '%s|%s' \"$KEYSVC_ZONE\" \"$KEYSVC_EMPTY\"\n"
                                           "env | grep -c '^KEYSVC_ZONE=' | tr -d '\\n'");
    char *out = NULL;
    ks_err err = {{0}};
    if (ks_hook_run_template("env hook", script, tmpl_fields, 4, 10, &out, &err) != 0)
        fail_msg("ks_hook_run_template: %s", err.msg);
    assert_string_equal(out, "example.test|1");
    free(out);
    assert_string_equal(getenv("KEYSVC_ZONE"), "stale.test");
    unsetenv("KEYSVC_ZONE");
    free(script);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_plain),
        cmocka_unit_test(test_split_quotes),
        cmocka_unit_test(test_split_backslash),
        cmocka_unit_test(test_split_adjacent_and_empty),
        cmocka_unit_test(test_split_errors),
        cmocka_unit_test(test_split_no_shell_syntax),
        cmocka_unit_test(test_hook_environment),
        cmocka_unit_test(test_hook_output_and_args),
        cmocka_unit_test(test_hook_metacharacters_stay_data),
        cmocka_unit_test(test_hook_exit_status),
        cmocka_unit_test(test_hook_killed_by_signal),
        cmocka_unit_test(test_hook_timeout_kills_group),
        cmocka_unit_test(test_hook_timeout_after_stdout_closed),
        cmocka_unit_test(test_hook_output_bounded),
        cmocka_unit_test(test_hook_missing_program),
        cmocka_unit_test(test_hook_stdin_is_dev_null),
        cmocka_unit_test(test_hook_no_inherited_fds),
        cmocka_unit_test(test_template_value_is_one_word),
        cmocka_unit_test(test_template_field_inside_word),
        cmocka_unit_test(test_template_literal_braces),
        cmocka_unit_test(test_template_errors),
        cmocka_unit_test(test_template_quotes_group_words),
        cmocka_unit_test(test_hook_run_template),
        cmocka_unit_test(test_hook_run_template_env_override),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
