/*
 * Logging (common/ks_log.h): the log file's "YYYY-MM-DD HH:MM:SS LEVEL"
 * lines in UTC, its own level independent of stderr's, acmebot's level
 * names, action lines on stdout and in the file, --quiet, colour, control
 * characters neutralised in every sink, ks_escape_new, the file's open flags
 * and mode, and whole lines from concurrent writers.  stdout and stderr are
 * redirected into files for the tests that look at them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ks_err.h"
#include "ks_log.h"
#include "ks_util.h"
#include "test_fs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];

/* ---- helpers ------------------------------------------------------------- */

static char *path_in_tmp(const char *name)
{
    char *p = ks_strdup_printf("%s/%s", tmpdir, name);
    assert_non_null(p);
    return p;
}

static char *slurp(const char *path)
{
    ks_err err = {{0}};
    size_t len = 0;
    char *text = ks_read_file(path, 1 << 20, &len, &err);
    if (text == NULL)
        fail_msg("read %s: %s", path, err.msg);
    return text;
}

/* Opens a fresh log file `name` in the temporary directory at `level`;
 * returns its path (caller frees). */
static char *open_log(const char *name, int level)
{
    char *path = path_in_tmp(name);
    unlink(path);
    if (ks_log_open_file(path, level, 0640) != 0)
        fail_msg("open %s: %s", path, strerror(errno));
    return path;
}

/* The file's lines; *n set.  Caller frees the array and its strings. */
static char **file_lines(const char *path, size_t *n)
{
    char *text = slurp(path);
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == '\n';
    char **lines = calloc(cap, sizeof(*lines));
    assert_non_null(lines);
    *n = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        lines[(*n)++] = strdup(l);
    free(text);
    return lines;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

/* "YYYY-MM-DD HH:MM:SS LABEL msg", the time UTC and within the test run. */
static void expect_line(const char *line, const char *label, const char *msg)
{
    static const char shape[] = "dddd-dd-dd dd:dd:dd ";
    if (strlen(line) < sizeof(shape) - 1)
        fail_msg("line too short: \"%s\"", line);
    for (size_t i = 0; i < sizeof(shape) - 1; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)line[i]) : line[i] != shape[i])
            fail_msg("line \"%s\": bad timestamp at %zu", line, i);
    struct tm tm = {0};
    assert_non_null(strptime(line, "%Y-%m-%d %H:%M:%S", &tm));
    time_t when = timegm(&tm);
    time_t now = time(NULL);
    if (when > now || when < now - 60)
        fail_msg("line \"%s\": time is not UTC now", line);
    char *want = ks_strdup_printf("%s %s", label, msg);
    assert_non_null(want);
    assert_string_equal(line + sizeof(shape) - 1, want);
    free(want);
}

/* Points `fd` (1 or 2) at the file `name`; returns the saved descriptor. */
static int capture_begin(int fd, const char *name)
{
    fflush(stdout);
    fflush(stderr);
    char *path = path_in_tmp(name);
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(f >= 0);
    int saved = dup(fd);
    assert_true(saved >= 0);
    assert_int_equal(dup2(f, fd), fd);
    close(f);
    free(path);
    return saved;
}

/* Puts `fd` back; returns what was written to it (caller frees). */
static char *capture_end(int fd, int saved, const char *name)
{
    fflush(stdout);
    fflush(stderr);
    assert_int_equal(dup2(saved, fd), fd);
    close(saved);
    char *path = path_in_tmp(name);
    char *text = slurp(path);
    free(path);
    return text;
}

static int reset_log(void **state)
{
    (void)state;
    ks_log_close_file();
    ks_log_set_level(KS_LOG_WARN);
    ks_log_set_quiet(0);
    ks_log_set_color(0);
    ks_log_set_detail(0);
    return 0;
}

static int setup_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/keysvc-test-log-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    umask(022);
    return 0;
}

static int teardown_tmpdir(void **state)
{
    (void)state;
    ks_log_close_file();
    return test_remove_tree(tmpdir) == 0 ? 0 : -1;
}

/* ---- the file sink ------------------------------------------------------- */

/* Lines at or above the file's level, with the timestamp and label. */
static void test_file_lines_and_level(void **state)
{
    (void)state;
    char *path = open_log("levels.log", KS_LOG_INFO);
    int saved = capture_begin(2, "levels.err");
    ks_error("disk %s", "full");
    ks_warn("renewal in %d days", 3);
    ks_info("order %s", "ready");
    ks_debug("not in the file");
    ks_detail("nor this");
    char *err = capture_end(2, saved, "levels.err");
    size_t n = 0;
    char **lines = file_lines(path, &n);
    assert_int_equal(n, 3);
    expect_line(lines[0], "ERROR", "disk full");
    expect_line(lines[1], "WARNING", "renewal in 3 days");
    expect_line(lines[2], "INFO", "order ready");
    /* stderr as before: its own level (warnings), no timestamp. */
    assert_string_equal(err, "keysvc: error: disk full\nkeysvc: warning: renewal in 3 days\n");
    free(err);
    free_lines(lines, n);
    free(path);
}

/* The file takes its level whatever stderr's, in both directions. */
static void test_file_level_independent_of_stderr(void **state)
{
    (void)state;
    char *path = open_log("debug.log", KS_LOG_DEBUG);
    ks_log_set_level(KS_LOG_ERROR);
    assert_int_equal(ks_log_get_level(), KS_LOG_DEBUG);
    int saved = capture_begin(2, "debug.err");
    ks_debug("pkcs11: C_Sign -> CKR_OK");
    char *err = capture_end(2, saved, "debug.err");
    assert_string_equal(err, "");
    free(err);
    size_t n = 0;
    char **lines = file_lines(path, &n);
    assert_int_equal(n, 1);
    expect_line(lines[0], "DEBUG", "pkcs11: C_Sign -> CKR_OK");
    free_lines(lines, n);
    free(path);

    path = open_log("normal.log", KS_LOG_NORMAL);
    ks_log_set_level(KS_LOG_DEBUG);
    saved = capture_begin(2, "normal.err");
    ks_debug("stderr only");
    err = capture_end(2, saved, "normal.err");
    assert_string_equal(err, "keysvc: debug: stderr only\n");
    free(err);
    lines = file_lines(path, &n);
    assert_int_equal(n, 0);
    free_lines(lines, n);
    ks_log_close_file();
    assert_int_equal(ks_log_get_level(), KS_LOG_DEBUG);
    /* Closed: nothing more is written to it. */
    ks_log_set_level(KS_LOG_ERROR);
    ks_warn("after close");
    lines = file_lines(path, &n);
    assert_int_equal(n, 0);
    free_lines(lines, n);
    free(path);
}

/* Appends: an existing file keeps its lines. */
static void test_file_appends(void **state)
{
    (void)state;
    char *path = open_log("append.log", KS_LOG_NORMAL);
    ks_log_set_level(KS_LOG_ERROR);
    ks_warn("first");
    assert_int_equal(ks_log_open_file(path, KS_LOG_NORMAL, 0640), 0);
    ks_warn("second");
    size_t n = 0;
    char **lines = file_lines(path, &n);
    assert_int_equal(n, 2);
    expect_line(lines[0], "WARNING", "first");
    expect_line(lines[1], "WARNING", "second");
    free_lines(lines, n);
    free(path);
}

/* log_user/log_group: the open file changes owner; (uid_t)-1 and (gid_t)-1
 * keep it; without a file nothing happens.  As root the file goes to
 * another user; otherwise only to the caller's own ids. */
static void test_file_chown(void **state)
{
    (void)state;
    char *path = open_log("owner.log", KS_LOG_NORMAL);
    uid_t uid = geteuid() == 0 ? 65534 : geteuid();
    gid_t gid = geteuid() == 0 ? 65534 : getegid();
    assert_int_equal(ks_log_chown_file(uid, gid), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, uid);
    assert_int_equal(st.st_gid, gid);
    assert_int_equal(ks_log_chown_file((uid_t)-1, (gid_t)-1), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, uid);
    ks_log_close_file();
    assert_int_equal(ks_log_chown_file(0, 0), 0);
    free(path);
}

/* 0640 (umask 022), no symlink followed, no FIFO or directory. */
static void test_file_open_flags(void **state)
{
    (void)state;
    char *path = open_log("mode.log", KS_LOG_NORMAL);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    ks_log_close_file();

    char *link = path_in_tmp("link.log");
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(ks_log_open_file(link, KS_LOG_NORMAL, 0640), -1);
    assert_int_equal(errno, ELOOP);

    char *fifo = path_in_tmp("fifo.log");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(ks_log_open_file(fifo, KS_LOG_NORMAL, 0640), -1);
    assert_int_equal(ks_log_open_file(tmpdir, KS_LOG_NORMAL, 0640), -1);
    char *missing = path_in_tmp("no/such/dir.log");
    assert_int_equal(ks_log_open_file(missing, KS_LOG_NORMAL, 0640), -1);
    assert_int_equal(errno, ENOENT);
    /* A failed open leaves no file behind as the sink. */
    assert_int_equal(ks_log_get_level(), KS_LOG_WARN);
    free(missing);
    free(fifo);
    free(link);
    free(path);
}

/* Children appending at once: every line whole. */
static void test_file_concurrent_lines_whole(void **state)
{
    (void)state;
    enum { CHILDREN = 3, LINES = 200 };
    char *path = open_log("many.log", KS_LOG_NORMAL);
    ks_log_set_level(KS_LOG_ERROR); /* warnings to the file only */
    for (int c = 0; c < CHILDREN; c++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (int i = 0; i < LINES; i++)
                ks_warn("child %d line %d %0200d", c, i, 0);
            free(path); /* valgrind checks the child's leaks too */
            _exit(0);
        }
    }
    for (int c = 0; c < CHILDREN; c++) {
        int status = 0;
        assert_true(wait(&status) > 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    size_t n = 0;
    char **lines = file_lines(path, &n);
    assert_int_equal(n, CHILDREN * LINES);
    for (size_t i = 0; i < n; i++) {
        int c = -1, l = -1, end = 0;
        char *msg = lines[i] + 28; /* after "YYYY-MM-DD HH:MM:SS WARNING " */
        assert_memory_equal(lines[i] + 20, "WARNING ", 8);
        if (sscanf(msg, "child %d line %d %*[0]%n", &c, &l, &end) != 2 || msg[end] != '\0' ||
            strlen(msg) < 200)
            fail_msg("torn line %zu: \"%s\"", i, lines[i]);
    }
    free_lines(lines, n);
    free(path);
}

/* ---- level names --------------------------------------------------------- */

static void test_level_from_name(void **state)
{
    (void)state;
    assert_int_equal(ks_log_level_from_name("normal"), KS_LOG_WARN);
    assert_int_equal(ks_log_level_from_name("verbose"), KS_LOG_INFO);
    assert_int_equal(ks_log_level_from_name("debug"), KS_LOG_DEBUG);
    assert_int_equal(ks_log_level_from_name("detail"), KS_LOG_DETAIL);
    assert_int_equal(ks_log_level_from_name("info"), -1);
    assert_int_equal(ks_log_level_from_name("Debug"), -1);
    assert_int_equal(ks_log_level_from_name(""), -1);
    assert_int_equal(ks_log_level_from_name("debug "), -1);
    assert_int_equal(ks_log_level_from_name(NULL), -1);
}

static void test_detail_flag(void **state)
{
    (void)state;
    assert_false(ks_log_get_detail());
    ks_log_set_detail(1);
    assert_true(ks_log_get_detail());
    ks_log_set_detail(0);
    char *path = open_log("detail.log", KS_LOG_DETAIL);
    assert_true(ks_log_get_detail());
    ks_detail("payload {}");
    size_t n = 0;
    char **lines = file_lines(path, &n);
    assert_int_equal(n, 1);
    expect_line(lines[0], "DETAIL", "payload {}");
    free_lines(lines, n);
    free(path);
}

/* ---- action lines -------------------------------------------------------- */

static void test_action_to_stdout_and_file(void **state)
{
    (void)state;
    char *path = open_log("action.log", KS_LOG_NORMAL);
    int saved = capture_begin(1, "action.out");
    ks_log_action("wrote %s", "/etc/ssl/certs/a.pem");
    ks_log_set_quiet(1);
    ks_log_action("rolled over %s (%s)", "a", "ecdsa");
    char *out = capture_end(1, saved, "action.out");
    /* --quiet: stdout has only the first, the file both. */
    assert_string_equal(out, "wrote /etc/ssl/certs/a.pem\n");
    free(out);
    size_t n = 0;
    char **lines = file_lines(path, &n);
    assert_int_equal(n, 2);
    expect_line(lines[0], "ACTION", "wrote /etc/ssl/certs/a.pem");
    expect_line(lines[1], "ACTION", "rolled over a (ecdsa)");
    free_lines(lines, n);
    free(path);
}

/* A file below "normal" (errors only) does not take action lines. */
static void test_action_needs_normal(void **state)
{
    (void)state;
    char *path = open_log("errors.log", KS_LOG_ERROR);
    ks_log_set_quiet(1);
    ks_log_action("wrote x");
    size_t n = 0;
    char **lines = file_lines(path, &n);
    assert_int_equal(n, 0);
    free_lines(lines, n);
    free(path);
}

/* ---- stderr -------------------------------------------------------------- */

static void test_stderr_color(void **state)
{
    (void)state;
    ks_log_set_level(KS_LOG_INFO);
    ks_log_set_color(1);
    int saved = capture_begin(2, "color.err");
    ks_error("e");
    ks_warn("w");
    ks_info("i");
    ks_log_set_color(0);
    ks_error("plain");
    /* Default: colour only on a terminal, and this is a file. */
    ks_log_set_color(-1);
    ks_warn("auto");
    char *err = capture_end(2, saved, "color.err");
    assert_string_equal(err, "\033[31mkeysvc: error: e\033[0m\n"
                             "\033[33mkeysvc: warning: w\033[0m\n"
                             "keysvc: info: i\n"
                             "keysvc: error: plain\n"
                             "keysvc: warning: auto\n");
    free(err);
}

/* --quiet leaves errors and warnings on stderr. */
static void test_quiet_keeps_stderr(void **state)
{
    (void)state;
    ks_log_set_quiet(1);
    int saved = capture_begin(2, "quiet.err");
    ks_error("still here");
    ks_warn("and this");
    char *err = capture_end(2, saved, "quiet.err");
    assert_string_equal(err, "keysvc: error: still here\nkeysvc: warning: and this\n");
    free(err);
}

/* ---- escaping ------------------------------------------------------------ */

/* A message cannot add lines or terminal sequences to any sink. */
static void test_control_characters_neutralised(void **state)
{
    (void)state;
    char *path = open_log("escape.log", KS_LOG_NORMAL);
    int saved_err = capture_begin(2, "escape.err");
    int saved_out = capture_begin(1, "escape.out");
    ks_error("name %s", "a\n2024-01-01 00:00:00 ERROR forged\033[2J\x7f");
    ks_log_action("wrote %s", "b\rc");
    char *out = capture_end(1, saved_out, "escape.out");
    char *err = capture_end(2, saved_err, "escape.err");
    assert_string_equal(err,
                        "keysvc: error: name a\\x0a2024-01-01 00:00:00 ERROR forged\\x1b[2J\\x7f\n");
    assert_string_equal(out, "wrote b\\x0dc\n");
    size_t n = 0;
    char **lines = file_lines(path, &n);
    assert_int_equal(n, 2);
    expect_line(lines[0], "ERROR", "name a\\x0a2024-01-01 00:00:00 ERROR forged\\x1b[2J\\x7f");
    expect_line(lines[1], "ACTION", "wrote b\\x0dc");
    free_lines(lines, n);
    free(out);
    free(err);
    free(path);
}

/* What ks_escape_new made passes through unchanged (no double escaping),
 * and ks_escape_new itself still escapes everything outside ASCII. */
static void test_escape_new(void **state)
{
    (void)state;
    char *esc = ks_escape_new("a\\b\001\377\033[0m\n", (size_t)-1);
    assert_string_equal(esc, "a\\x5cb\\x01\\xff\\x1b[0m\\x0a");
    char *path = open_log("escaped.log", KS_LOG_NORMAL);
    ks_log_set_level(KS_LOG_ERROR);
    ks_warn("body %s", esc);
    size_t n = 0;
    char **lines = file_lines(path, &n);
    assert_int_equal(n, 1);
    expect_line(lines[0], "WARNING", "body a\\x5cb\\x01\\xff\\x1b[0m\\x0a");
    free_lines(lines, n);
    free(esc);
    esc = ks_escape_new("x\0y", 3);
    assert_string_equal(esc, "x\\x00y");
    free(esc);
    assert_null(ks_escape_new(NULL, 0));
    free(path);
}

/* An over-long message is cut, and still one line. */
static void test_long_message_one_line(void **state)
{
    (void)state;
    char *path = open_log("long.log", KS_LOG_NORMAL);
    ks_log_set_level(KS_LOG_ERROR);
    char *big = malloc(20000);
    assert_non_null(big);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    ks_warn("%s", big);
    ks_warn("%s", "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n");
    size_t n = 0;
    char **lines = file_lines(path, &n);
    assert_int_equal(n, 2);
    assert_memory_equal(lines[0] + 20, "WARNING xxxx", 12);
    assert_true(strlen(lines[0]) > 4000);
    free_lines(lines, n);
    free(big);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_file_lines_and_level, reset_log),
        cmocka_unit_test_setup(test_file_level_independent_of_stderr, reset_log),
        cmocka_unit_test_setup(test_file_appends, reset_log),
        cmocka_unit_test_setup(test_file_chown, reset_log),
        cmocka_unit_test_setup(test_file_open_flags, reset_log),
        cmocka_unit_test_setup(test_file_concurrent_lines_whole, reset_log),
        cmocka_unit_test_setup(test_level_from_name, reset_log),
        cmocka_unit_test_setup(test_detail_flag, reset_log),
        cmocka_unit_test_setup(test_action_to_stdout_and_file, reset_log),
        cmocka_unit_test_setup(test_action_needs_normal, reset_log),
        cmocka_unit_test_setup(test_stderr_color, reset_log),
        cmocka_unit_test_setup(test_quiet_keeps_stderr, reset_log),
        cmocka_unit_test_setup(test_control_characters_neutralised, reset_log),
        cmocka_unit_test_setup(test_escape_new, reset_log),
        cmocka_unit_test_setup(test_long_message_one_line, reset_log),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
