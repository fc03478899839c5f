/*
 * Integration test of pgcluster against the installed PostgreSQL: creates a
 * private cluster in a temporary directory, checks the handle lifecycle
 * (who starts and who stops the server), restart of a stopped cluster,
 * recovery from a crashed server with a stale postmaster.pid, and the
 * refusals of unusable state directories.  Exits non-zero on any failure.
 *
 * Runs as root (the server then runs as "postgres") or as any user with a
 * passwd entry.
 */
#include "pgcluster.h"

#include "ks_err.h"
#include "ks_log.h"
#include "ks_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

static int check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (!ok)
        failures++;
    return ok;
}

/* First column of the first row of `sql`, newly allocated; NULL on error. */
static char *query_one(const char *conninfo, const char *sql)
{
    PGconn *conn = PQconnectdb(conninfo);
    char *value = NULL;
    if (PQstatus(conn) != CONNECTION_OK) {
        printf("     connect: %s", PQerrorMessage(conn));
        goto out;
    }
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
        value = strdup(PQgetvalue(res, 0, 0));
    else
        printf("     %s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
out:
    PQfinish(conn);
    return value;
}

static int query_equals(const char *conninfo, const char *sql, const char *want)
{
    char *got = query_one(conninfo, sql);
    int ok = got != NULL && strcmp(got, want) == 0;
    if (got != NULL && !ok)
        printf("     %s returned \"%s\", want \"%s\"\n", sql, got, want);
    free(got);
    return ok;
}

static int exec_ok(const char *conninfo, const char *sql)
{
    PGconn *conn = PQconnectdb(conninfo);
    int ok = 0;
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexec(conn, sql);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            printf("     %s: %s", sql, PQerrorMessage(conn));
        PQclear(res);
    } else {
        printf("     connect: %s", PQerrorMessage(conn));
    }
    PQfinish(conn);
    return ok;
}

static int can_connect(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    int ok = PQstatus(conn) == CONNECTION_OK;
    PQfinish(conn);
    return ok;
}

static char *path_in(const char *dir, const char *rel)
{
    char *path = ks_strdup_printf("%s/%s", dir, rel);
    if (path == NULL) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
    return path;
}

static int exists(const char *dir, const char *rel)
{
    char *path = path_in(dir, rel);
    struct stat st;
    int rc = lstat(path, &st) == 0;
    free(path);
    return rc;
}

static long postmaster_pid(const char *state_dir)
{
    char *path = path_in(state_dir, "postgres/data/postmaster.pid");
    char *text = ks_read_file(path, 4096, NULL, NULL);
    free(path);
    long pid = text ? strtol(text, NULL, 10) : 0;
    free(text);
    return pid;
}

/*
 * The postmaster is orphaned when pg_ctl exits.  On some machines PID 1 does
 * not reap orphans; a zombie postmaster keeps its PID "alive", so its
 * postmaster.pid never looks stale.  This process is a child subreaper
 * (see main), so the server processes become its children and are reaped
 * here.
 */
/* Waits until every server process (all our adopted children) has exited. */
static int wait_children_gone(long long timeout_ms)
{
    long long deadline = ks_now_ms() + timeout_ms;
    while (ks_now_ms() < deadline) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid < 0 && errno == ECHILD)
            return 1;
        if (pid == 0)
            ks_sleep_ms(20);
    }
    return 0;
}

static void expect_refusal(const char *what, const char *state_dir, const char *want_in_msg)
{
    pgcluster_options opts = {.state_dir = state_dir};
    ks_err err = {{0}};
    pgcluster *pc = pgcluster_ensure(&opts, &err);
    check(pc == NULL, "%s is refused", what);
    check(strstr(err.msg, want_in_msg) != NULL, "the message mentions \"%s\": %s", want_in_msg,
          err.msg);
    struct stat st;
    check(lstat(state_dir, &st) < 0 && errno == ENOENT, "nothing was created at %s", state_dir);
    pgcluster_release(pc);
}

static void test_refusals(const char *tmp)
{
    char *bad = path_in(tmp, "bad dir;$(touch x)");
    expect_refusal("a state directory with a space, ';' and '$'", bad, "contains the character");
    free(bad);

    char *quote = path_in(tmp, "it's");
    expect_refusal("a state directory with a quote", quote, "contains the character '''");
    free(quote);

    char long_name[101];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    char *too_long = path_in(tmp, long_name);
    expect_refusal("a state directory whose socket path exceeds sun_path", too_long,
                   "limit for unix sockets");
    free(too_long);

    if (geteuid() != 0)
        return;
    char *locked = path_in(tmp, "locked");
    char *inside = path_in(locked, "state");
    if (check(mkdir(locked, 0700) == 0, "created %s with mode 0700", locked))
        expect_refusal("a state directory below a directory postgres cannot enter", inside, locked);
    rmdir(locked);
    free(inside);
    free(locked);
}

static void check_layout(const char *state_dir)
{
    char *pg_dir = path_in(state_dir, "postgres");
    struct stat st;
    if (check(stat(pg_dir, &st) == 0, "%s exists", pg_dir)) {
        check((st.st_mode & 07777) == 0700, "socket directory has mode 0700 (has %04o)",
              (unsigned)(st.st_mode & 07777));
        if (geteuid() == 0)
            check(st.st_uid != 0, "socket directory belongs to the server user (uid %u)",
                  (unsigned)st.st_uid);
    }
    check(exists(pg_dir, "data/PG_VERSION"), "data/PG_VERSION exists");
    check(exists(pg_dir, ".s.PGSQL.5432"), "the socket is .s.PGSQL.5432 in the state dir");
    check(exists(pg_dir, "initdb.log") && exists(pg_dir, "postgres.log"),
          "initdb.log and postgres.log exist");
    check(!exists(pg_dir, "data.initdb"), "no data.initdb left behind");
    free(pg_dir);
}

/* The server must run as the server user and must not inherit descriptors
 * of the process that started it (here: `canary`, opened without
 * O_CLOEXEC). */
static void check_server_process(long pid, const char *canary)
{
    char *proc = ks_strdup_printf("/proc/%ld", pid);
    char *fd_dir = ks_strdup_printf("/proc/%ld/fd", pid);
    struct stat st;
    if (proc != NULL && stat(proc, &st) == 0 && geteuid() == 0)
        check(st.st_uid != 0, "the postmaster runs as uid %u, not root", (unsigned)st.st_uid);
    DIR *dir = fd_dir ? opendir(fd_dir) : NULL;
    int inherited = 0, seen = 0;
    struct dirent *de;
    while (dir != NULL && (de = readdir(dir)) != NULL) {
        char link[PATH_MAX + 1];
        char *entry = ks_strdup_printf("%s/%s", fd_dir, de->d_name);
        ssize_t n = entry ? readlink(entry, link, sizeof(link) - 1) : -1;
        free(entry);
        if (n < 0)
            continue;
        link[n] = '\0';
        seen++;
        inherited |= strcmp(link, canary) == 0;
    }
    if (dir != NULL)
        closedir(dir);
    check(seen > 0 && !inherited, "the postmaster did not inherit our descriptors (%d open)", seen);
    free(proc);
    free(fd_dir);
}

static pgcluster *ensure_timed(const char *state_dir, const char *what)
{
    pgcluster_options opts = {.state_dir = state_dir};
    ks_err err = {{0}};
    long long t0 = ks_now_ms();
    pgcluster *pc = pgcluster_ensure(&opts, &err);
    long long ms = ks_now_ms() - t0;
    check(pc != NULL, "ensure: %s (%lld ms)%s%s", what, ms, pc ? "" : ": ", pc ? "" : err.msg);
    return pc;
}

/* The crash scenario: SIGKILL to the postmaster leaves postmaster.pid behind,
 * and the next ensure must start the server anyway.  `old` is a handle that
 * started the crashed server: releasing it must not stop the new one.  The
 * caller's copy of the conninfo outlives both handles. */
static void test_crash(const char *state_dir, const char *conninfo, pgcluster *old)
{
    long pid = postmaster_pid(state_dir);
    if (!check(pid > 0 && kill((pid_t)pid, SIGKILL) == 0, "SIGKILL to postmaster %ld", pid))
        return;
    check(wait_children_gone(15000), "all server processes have exited");
    check(postmaster_pid(state_dir) == pid, "a stale postmaster.pid naming %ld is left behind",
          pid);

    pgcluster *pc = ensure_timed(state_dir, "restart after a crash");
    if (pc == NULL)
        return;
    long new_pid = postmaster_pid(state_dir);
    check(new_pid > 0 && new_pid != pid, "a new postmaster runs (pid %ld)", new_pid);
    check(query_equals(conninfo, "select x from marker", "42"), "the data survived the crash");

    pgcluster_release(old);
    check(can_connect(conninfo),
          "releasing the handle of the crashed server leaves the new server running");
    pgcluster_release(pc);
    check(!can_connect(conninfo), "releasing the handle that restarted it stops the server");
    check(wait_children_gone(15000), "all server processes have exited");
}

static void test_lifecycle(const char *tmp, const char *state_dir)
{
    char *canary = path_in(tmp, "canary");
    int canary_fd = open(canary, O_WRONLY | O_CREAT, 0600); /* no O_CLOEXEC, on purpose */
    pgcluster *a = ensure_timed(state_dir, "fresh cluster (initdb + start + createdb)");
    if (a == NULL) {
        close(canary_fd);
        free(canary);
        return;
    }
    char *conninfo = strdup(pgcluster_conninfo(a));
    printf("     conninfo: %s\n", conninfo);
    check_layout(state_dir);
    check(query_equals(conninfo, "select 1", "1"), "select 1 over the conninfo");
    check(query_equals(conninfo, "select current_database()", "keysvc"),
          "connected to database keysvc");
    check(query_equals(conninfo, "show listen_addresses", ""), "listen_addresses is empty");
    check(exec_ok(conninfo, "create table marker (x int); insert into marker values (42)"),
          "created a marker table");
    long pid = postmaster_pid(state_dir);
    check_server_process(pid, canary);
    close(canary_fd);
    free(canary);

    pgcluster *b = ensure_timed(state_dir, "second handle while running");
    if (b != NULL) {
        check(postmaster_pid(state_dir) == pid, "no second server was started (pid %ld)", pid);
        pgcluster_release(b);
        check(can_connect(conninfo), "releasing the second handle leaves the server running");
    }

    pgcluster_release(a);
    check(!can_connect(conninfo), "releasing the first handle stops the server");
    check(wait_children_gone(15000), "all server processes have exited");
    check(postmaster_pid(state_dir) == 0, "postmaster.pid is gone");

    pgcluster *c = ensure_timed(state_dir, "existing stopped cluster (start only)");
    if (c != NULL) {
        check(query_equals(conninfo, "select x from marker", "42"),
              "database keysvc and its data are still there");
        test_crash(state_dir, conninfo, c);
    }
    free(conninfo);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) < 0)
        fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

/* Last resort when a check failed half-way: no server may outlive the test. */
static void stop_leftover_server(const char *state_dir)
{
    long pid = postmaster_pid(state_dir);
    if (pid <= 0 || kill((pid_t)pid, SIGINT) < 0)
        return;
    printf("     cleanup: sent SIGINT (fast shutdown) to leftover postmaster %ld\n", pid);
    if (!wait_children_gone(15000)) {
        kill((pid_t)pid, SIGKILL);
        wait_children_gone(15000);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    ks_log_set_level(KS_LOG_INFO);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        perror("prctl(PR_SET_CHILD_SUBREAPER)");
        return 1;
    }
    char tmp[] = "/tmp/ks-pgcluster.XXXXXX";
    if (mkdtemp(tmp) == NULL || chmod(tmp, 0755) < 0) {
        perror("temporary directory");
        return 1;
    }
    printf("     working in %s as uid %u\n", tmp, (unsigned)geteuid());
    char *state_dir = path_in(tmp, "state");

    test_refusals(tmp);
    test_lifecycle(tmp, state_dir);

    stop_leftover_server(state_dir);
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(state_dir);
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
