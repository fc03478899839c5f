/*
 * pgcluster: the private PostgreSQL cluster; see pgcluster.h.
 *
 * Trust model.  When keysvc runs as root the server runs as an unprivileged
 * user, and that user owns <state_dir>/postgres.  It could plant symlinks
 * there, so root never creates or writes files in that directory by name:
 * logs are opened by the child processes after they have switched to the
 * server user, and the few files root reads there (PG_VERSION,
 * postmaster.pid, log tails) are opened with O_NOFOLLOW and must be regular
 * files owned by the server user.
 *
 * Authentication is `trust` for local (unix socket) connections.  That is safe
 * because the socket lives in a directory of mode 0700 owned by the server
 * user: only root and the server user can reach it, and the server user owns
 * the data files anyway, so trust gives nobody access they do not already
 * have.  TCP is switched off (listen_addresses = ''); in case someone turns it
 * on, host connections need a password, and the superuser has none.
 */
#include "pgcluster.h"

#include "ks_err.h"
#include "ks_log.h"
#include "ks_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* The socket directory is private to the cluster, so the port number only
 * names the socket file; no other server can collide with it. */
#define PG_PORT "5432"
#define PG_SOCKET_NAME ".s.PGSQL." PG_PORT
#define PG_START_TIMEOUT_S "60"
#define PG_DEFAULT_RUN_AS "postgres"
#define PG_DEFAULT_DB "keysvc"
/* NAMEDATALEN - 1: PostgreSQL silently truncates longer names. */
#define PG_NAME_MAX 63
#define PG_LIB_DIR "/usr/lib/postgresql"
/* pg_ctl status: 0 = running, 3 = not running. */
#define PG_CTL_STATUS_STOPPED 3
/* How much of the end of a log file is searched for the error to quote. */
#define LOG_TAIL_MAX 65536
/* How long a server that we found running may take to accept connections. */
#define READY_TIMEOUT_MS 10000

typedef struct server_user {
    char *name; /* owned; also the database superuser keysvc connects as */
    uid_t uid;
    gid_t gid;
    gid_t *groups; /* owned; all groups of the user, for setgroups() and
                    * the traversal check */
    int ngroups;
    int switch_to; /* 1: we are root and children become this user */
} server_user;

struct pgcluster {
    char *pg_dir;     /* owned: <state_dir>/postgres; socket dir and logs */
    char *data_dir;   /* owned: <pg_dir>/data, PGDATA */
    char *bindir;     /* owned: where initdb and pg_ctl are */
    char *conninfo;   /* owned: handed out by pgcluster_conninfo() */
    server_user user; /* owned */
    int started;      /* 1: pgcluster_ensure() started the server */
    long server_pid;  /* the postmaster we started, to recognise it at release */
};

/* ---------------------------------------------------------------- paths */

/*
 * pg_ctl hands the data directory, the log file and the -o options to the
 * server through "/bin/sh -c", inside double quotes or not quoted at all.
 * A path with a quote, '$', '`', a space or a newline would be interpreted by
 * that shell, so only a conservative set of characters is accepted.
 */
static int check_path_chars(const char *what, const char *path, ks_err *err)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789/._+-";
    if (path[0] == '\0')
        return ks_fail(err, "%s is empty", what);
    size_t bad = strspn(path, allowed);
    if (path[bad] == '\0')
        return 0;
    char *shown = ks_escape_new(path, (size_t)-1);
    char *ch = ks_escape_new(path + bad, 1);
    ks_fail(err,
            "%s \"%s\" contains the character '%s'; only letters, digits and / . _ + - "
            "are allowed, because pg_ctl passes these paths to the server through a shell",
            what, shown ? shown : "?", ch ? ch : "?");
    free(shown);
    free(ch);
    return -1;
}

/* Newly allocated absolute form of `path` (not resolved; caller frees). */
static char *absolute_path(const char *path, ks_err *err)
{
    if (path[0] == '/') {
        char *copy = strdup(path);
        if (copy == NULL)
            ks_fail(err, "out of memory");
        return copy;
    }
    char *cwd = getcwd(NULL, 0);
    if (cwd == NULL) {
        ks_fail(err, "cannot get the current directory: %s", strerror(errno));
        return NULL;
    }
    char *abs = ks_strdup_printf("%s/%s", cwd, path);
    free(cwd);
    if (abs == NULL)
        ks_fail(err, "out of memory");
    return abs;
}

/* Calls fn(prefix) for "/", "/a", "/a/b", ... of the absolute `path`.  fn
 * returns 0 to go on, 1 to stop early, -1 on failure. */
typedef int prefix_fn(const char *prefix, void *ctx, ks_err *err);

static int for_each_prefix(const char *path, prefix_fn *fn, void *ctx, ks_err *err)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return ks_fail(err, "out of memory");
    int rc = fn("/", ctx, err);
    for (char *p = copy + 1; rc == 0; p++) {
        char saved = *p;
        if (saved != '/' && saved != '\0')
            continue;
        if (p[-1] != '/') {
            *p = '\0';
            rc = fn(copy, ctx, err);
            *p = saved;
        }
        if (saved == '\0')
            break;
    }
    free(copy);
    return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ the user */

static void server_user_free(server_user *u)
{
    free(u->name);
    free(u->groups);
    u->name = NULL;
    u->groups = NULL;
}

static int lookup_groups(server_user *u, ks_err *err)
{
    int cap = 16;
    for (;;) {
        gid_t *groups = reallocarray(u->groups, (size_t)cap, sizeof(*groups));
        if (groups == NULL)
            return ks_fail(err, "out of memory");
        u->groups = groups;
        int n = cap;
        if (getgrouplist(u->name, u->gid, groups, &n) >= 0) {
            u->ngroups = n;
            return 0;
        }
        if (n <= cap)
            return ks_fail(err, "cannot list the groups of user %s", u->name);
        cap = n;
    }
}

/* Fills `u` from the passwd entry of `name`, or of our own uid when name is
 * NULL.  Uses the _r variants because keysvc may have other threads. */
static int lookup_passwd(server_user *u, const char *name, ks_err *err)
{
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    char *buf = malloc(size > 0 ? (size_t)size : 16384);
    if (buf == NULL)
        return ks_fail(err, "out of memory");
    size_t buflen = size > 0 ? (size_t)size : 16384;
    struct passwd pwbuf, *pw = NULL;
    int rc = name ? getpwnam_r(name, &pwbuf, buf, buflen, &pw)
                  : getpwuid_r(geteuid(), &pwbuf, buf, buflen, &pw);
    int ret = -1;
    if (pw == NULL) {
        if (name != NULL)
            ks_fail(err, "user \"%s\" does not exist%s%s", name, rc ? ": " : "",
                    rc ? strerror(rc) : "");
        else
            ks_fail(err, "the current user (uid %u) has no passwd entry, which initdb needs",
                    (unsigned)geteuid());
        goto out;
    }
    u->name = strdup(pw->pw_name);
    if (u->name == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    ret = 0;
out:
    free(buf);
    return ret;
}

static int server_user_init(server_user *u, const char *run_as, ks_err *err)
{
    memset(u, 0, sizeof(*u));
    u->switch_to = geteuid() == 0;
    if (!u->switch_to)
        return lookup_passwd(u, NULL, err);
    if (lookup_passwd(u, run_as ? run_as : PG_DEFAULT_RUN_AS, err) < 0)
        return -1;
    if (u->uid == 0)
        return ks_fail(err, "run_as user %s has uid 0, but PostgreSQL refuses to run as root",
                       u->name);
    if (strlen(u->name) > PG_NAME_MAX)
        return ks_fail(err, "user name %s is longer than %d bytes", u->name, PG_NAME_MAX);
    return lookup_groups(u, err);
}

/* ------------------------------------------------------ the state dir */

/* The kernel's rule: the owner class if the uid matches, else the group class
 * if any group matches, else others.  ACLs are not consulted, so a directory
 * that lets the user in only through an ACL entry is reported as blocking. */
static int may_search(const struct stat *st, const server_user *u)
{
    if (st->st_uid == u->uid)
        return (st->st_mode & S_IXUSR) != 0;
    for (int i = 0; i < u->ngroups; i++) {
        if (u->groups[i] == st->st_gid)
            return (st->st_mode & S_IXGRP) != 0;
    }
    return (st->st_mode & S_IXOTH) != 0;
}

static int check_searchable_one(const char *dir, void *ctx, ks_err *err)
{
    const server_user *u = ctx;
    struct stat st;
    if (stat(dir, &st) < 0) {
        if (errno == ENOENT)
            return 1; /* we create the rest, searchable */
        return ks_fail(err, "cannot examine %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return ks_fail(err, "%s is not a directory", dir);
    if (may_search(&st, u))
        return 0;
    return ks_fail(err,
                   "the server runs as user %s, which cannot enter %s (mode %04o, owner uid %u "
                   "gid %u); give it search permission there (chmod o+x) or put the state "
                   "directory elsewhere, e.g. under /var/lib",
                   u->name, dir, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                   (unsigned)st.st_gid);
}

/* The server user has to reach <state_dir>/postgres, so it needs search
 * permission on every directory above it.  Checked up front because otherwise
 * the failure shows up much later as an obscure initdb or pg_ctl error. */
static int check_searchable(const char *path, const server_user *u, ks_err *err)
{
    return for_each_prefix(path, check_searchable_one, (void *)u, err);
}

static int check_socket_path_len(const char *state_dir, ks_err *err)
{
    size_t len = strlen(state_dir) + strlen("/postgres/" PG_SOCKET_NAME);
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    if (len <= max)
        return 0;
    return ks_fail(err,
                   "the socket path %s/postgres/%s would be %zu bytes, over the %zu-byte limit "
                   "for unix sockets; use a shorter state directory",
                   state_dir, PG_SOCKET_NAME, len, max);
}

/* Creates the state directory and returns its resolved path (caller frees).
 * As root, directories we create are 0711: the server user must pass through
 * them, but has no business listing keysvc's other state. */
static char *prepare_state_dir(const char *state_dir, const server_user *u, ks_err *err)
{
    char *abs = absolute_path(state_dir, err);
    char *resolved = NULL;
    if (abs == NULL)
        return NULL;
    mode_t mode = u->switch_to ? 0711 : 0700;
    if (check_socket_path_len(abs, err) < 0 || (u->switch_to && check_searchable(abs, u, err) < 0))
        goto out;
    if (ks_mkdirs(abs, mode, err) < 0)
        goto out;
    resolved = realpath(abs, NULL);
    if (resolved == NULL) {
        ks_fail(err, "cannot resolve %s: %s", abs, strerror(errno));
        goto out;
    }
    /* A symlink on the way may lead somewhere else entirely: check again. */
    if (check_path_chars("the resolved state directory", resolved, err) < 0 ||
        check_socket_path_len(resolved, err) < 0 ||
        (u->switch_to && check_searchable(resolved, u, err) < 0)) {
        free(resolved);
        resolved = NULL;
    }
out:
    free(abs);
    return resolved;
}

/* <state_dir>/postgres: mode 0700, owned by the server user (it is the
 * socket directory, and the server writes its logs there). */
static int prepare_pg_dir(const pgcluster *pc, ks_err *err)
{
    if (mkdir(pc->pg_dir, 0700) < 0 && errno != EEXIST)
        return ks_fail(err, "cannot create directory %s: %s", pc->pg_dir, strerror(errno));
    int fd = open(pc->pg_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ks_fail(err, "cannot open directory %s: %s", pc->pg_dir, strerror(errno));
    int rc = 0;
    if (pc->user.switch_to && fchown(fd, pc->user.uid, pc->user.gid) < 0)
        rc = ks_fail(err, "cannot chown %s to %s: %s", pc->pg_dir, pc->user.name, strerror(errno));
    else if (fchmod(fd, 0700) < 0)
        rc = ks_fail(err, "cannot chmod %s: %s", pc->pg_dir, strerror(errno));
    close(fd);
    return rc;
}

/* PostgreSQL refuses a data directory owned by someone else; saying so here
 * is clearer than the line it leaves in postgres.log. */
static int check_data_dir(const pgcluster *pc, ks_err *err)
{
    struct stat st;
    if (lstat(pc->data_dir, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        return ks_fail(err, "cannot examine %s: %s", pc->data_dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return ks_fail(err, "%s is not a directory", pc->data_dir);
    if (st.st_uid != pc->user.uid)
        return ks_fail(err, "%s is owned by uid %u, but the server runs as %s (uid %u)",
                       pc->data_dir, (unsigned)st.st_uid, pc->user.name, (unsigned)pc->user.uid);
    return 0;
}

/* ------------------------------------------ files the server user owns */

/* Opens a file in the server user's directories for reading: a regular file
 * owned by that user, never through a symlink.  Returns the fd, or -1 with
 * errno set (ENOENT when missing, EPERM when it fails the checks). */
static int open_server_file(const pgcluster *pc, const char *path)
{
    /* O_NONBLOCK: a FIFO planted under that name must not hang root. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != pc->user.uid) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

/* Reads the first line of a small server-owned file into buf.  Returns 1,
 * 0 when the file does not exist, -1 on error. */
static int read_first_line(const pgcluster *pc, const char *path, char *buf, size_t size,
                           ks_err *err)
{
    int fd = open_server_file(pc, path);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return ks_fail(err, "cannot read %s: %s", path,
                       errno == EPERM ? "not a regular file owned by the server user"
                                      : strerror(errno));
    }
    ssize_t n;
    do {
        n = read(fd, buf, size - 1);
    } while (n < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (n < 0)
        return ks_fail(err, "cannot read %s: %s", path, strerror(saved));
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 1;
}

/* The major version that created the cluster ("15"), from data/PG_VERSION.
 * Returns 1, 0 when there is no cluster yet, -1 on error. */
static int read_cluster_version(const pgcluster *pc, char *version, size_t size, ks_err *err)
{
    char *path = ks_strdup_printf("%s/PG_VERSION", pc->data_dir);
    if (path == NULL)
        return ks_fail(err, "out of memory");
    int rc = read_first_line(pc, path, version, size, err);
    if (rc > 0 && (version[0] == '\0' || version[strspn(version, "0123456789.")] != '\0'))
        rc = ks_fail(err, "%s does not hold a version number", path);
    free(path);
    return rc;
}

/* PID of the running postmaster from data/postmaster.pid; 0 when none. */
static long read_postmaster_pid(const pgcluster *pc)
{
    char *path = ks_strdup_printf("%s/postmaster.pid", pc->data_dir);
    char line[32];
    long pid = 0;
    if (path != NULL && read_first_line(pc, path, line, sizeof(line), NULL) > 0)
        pid = strtol(line, NULL, 10);
    free(path);
    return pid > 0 ? pid : 0;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 ? st.st_size : 0;
}

static int is_error_line(const char *line, size_t len)
{
    static const char *const marks[] = {"FATAL:", "PANIC:", "error:"};
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        if (memmem(line, len, marks[i], strlen(marks[i])) != NULL)
            return 1;
    }
    return 0;
}

/* The last error line that a tool or the server wrote to `path` after byte
 * `from`, escaped (it is quoted into our error message); NULL when there is
 * none.  Caller frees. */
static char *log_error_line(const pgcluster *pc, const char *path, off_t from)
{
    int fd = open_server_file(pc, path);
    if (fd < 0)
        return NULL;
    char *result = NULL;
    char *buf = malloc(LOG_TAIL_MAX);
    off_t size = file_size(path);
    if (buf == NULL || size <= from)
        goto out;
    if (size - from > LOG_TAIL_MAX)
        from = size - LOG_TAIL_MAX;
    ssize_t n = pread(fd, buf, (size_t)(size - from), from);
    if (n <= 0)
        goto out;
    const char *best = NULL;
    size_t best_len = 0;
    for (const char *line = buf; line < buf + n;) {
        const char *nl = memchr(line, '\n', (size_t)(buf + n - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(buf + n - line);
        if (is_error_line(line, len)) {
            best = line;
            best_len = len;
        }
        line += len + 1;
    }
    if (best != NULL)
        result = ks_escape_new(best, best_len);
out:
    free(buf);
    close(fd);
    return result;
}

/* -------------------------------------------------------- child processes */

/* The environment of every helper: nothing of the caller's (PGPORT,
 * PGOPTIONS, LD_PRELOAD, ...) leaks into initdb, pg_ctl or the server. */
static char *const child_env[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};

enum child_step {
    STEP_GROUPS,
    STEP_GID,
    STEP_UID,
    STEP_CHDIR,
    STEP_STDIN,
    STEP_LOG,
    STEP_EXEC,
};

static const char *const child_step_names[] = {
    [STEP_GROUPS] = "setgroups",     [STEP_GID] = "setgid",
    [STEP_UID] = "setuid",           [STEP_CHDIR] = "chdir to the cluster directory",
    [STEP_STDIN] = "open /dev/null", [STEP_LOG] = "open the log file",
    [STEP_EXEC] = "execve",
};

/* What a child that failed before exec tells its parent through the pipe. */
struct child_report {
    int step;
    int error;
};

typedef struct child_cmd {
    const char *const *argv; /* argv[0] is the absolute path of the program */
    const char *log_path;    /* receives stdout and stderr; NULL = /dev/null */
    int log_flags;           /* O_APPEND or O_TRUNC */
} child_cmd;

static _Noreturn void child_fail(int report_fd, enum child_step step)
{
    struct child_report r = {.step = step, .error = errno};
    ssize_t ignored = write(report_fd, &r, sizeof(r));
    (void)ignored;
    _exit(127);
}

/* Ignored signals and the signal mask survive exec: a caller that ignores
 * SIGPIPE or blocks SIGTERM must not hand that on to pg_ctl and the server. */
static void reset_signals(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Makes `fd` become `target` without the close-on-exec flag. */
static int fd_onto(int fd, int target)
{
    if (fd == target)
        return fcntl(fd, F_SETFD, 0);
    return dup2(fd, target) < 0 ? -1 : 0;
}

static int redirect_stdio(const child_cmd *cmd)
{
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0 || fd_onto(in, 0) < 0)
        return STEP_STDIN;
    if (in != 0)
        close(in);
    /* Opened after the switch to the server user, so the file belongs to it
     * and a link planted in its directory gains it nothing. */
    int out = cmd->log_path
                  ? open(cmd->log_path,
                         O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | cmd->log_flags, 0600)
                  : open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (out < 0 || fd_onto(out, 1) < 0 || fd_onto(out, 2) < 0)
        return STEP_LOG;
    if (out > 2)
        close(out);
    return -1;
}

/* Marks every descriptor above stderr close-on-exec, so that the helpers (and
 * the server, which outlives us) inherit none of keysvc's files or sockets. */
static void cloexec_from_3(void)
{
#ifdef CLOSE_RANGE_CLOEXEC
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
#endif
    /* Kernels before 5.11: one by one, up to a sane bound. */
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = 3; fd < max; fd++)
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Runs in the forked child: only async-signal-safe calls from here on, since
 * another thread of the parent may have held a lock (malloc, nss) at fork. */
static _Noreturn void child_exec(const pgcluster *pc, const child_cmd *cmd, int report_fd)
{
    if (report_fd < 3) {
        /* stdio is about to be replaced; keep the report channel clear of it */
        int moved = fcntl(report_fd, F_DUPFD_CLOEXEC, 3);
        if (moved < 0)
            _exit(127);
        report_fd = moved;
    }
    reset_signals();
    const server_user *u = &pc->user;
    if (u->switch_to) {
        /* setgroups with the list computed before fork: initgroups() would
         * read /etc/group and allocate, which is unsafe in a forked child. */
        if (setgroups((size_t)u->ngroups, u->groups) < 0)
            child_fail(report_fd, STEP_GROUPS);
        if (setgid(u->gid) < 0)
            child_fail(report_fd, STEP_GID);
        if (setuid(u->uid) < 0)
            child_fail(report_fd, STEP_UID);
    }
    /* The PostgreSQL tools want a current directory they can read. */
    if (chdir(pc->pg_dir) < 0)
        child_fail(report_fd, STEP_CHDIR);
    int failed = redirect_stdio(cmd);
    if (failed >= 0)
        child_fail(report_fd, (enum child_step)failed);
    cloexec_from_3();
    execve(cmd->argv[0], (char *const *)cmd->argv, child_env);
    child_fail(report_fd, STEP_EXEC);
}

static ssize_t read_report(int fd, struct child_report *r)
{
    ssize_t n;
    do {
        n = read(fd, r, sizeof(*r));
    } while (n < 0 && errno == EINTR);
    return n;
}

/* Fails with ECHILD if the caller set SIGCHLD to SIG_IGN (children are then
 * reaped by the kernel); keysvc must not do that. */
static int wait_child(pid_t pid, int *status)
{
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

/* Runs cmd as the server user and waits for it.  Returns 0 with the wait
 * status in *status once the program ran (whatever its exit code), -1 when
 * it could not be started. */
static int run_child(const pgcluster *pc, const child_cmd *cmd, int *status, ks_err *err)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return ks_fail(err, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(pipefd[0]);
        close(pipefd[1]);
        return ks_fail(err, "cannot fork for %s: %s", cmd->argv[0], strerror(saved));
    }
    if (pid == 0) {
        close(pipefd[0]);
        child_exec(pc, cmd, pipefd[1]);
    }
    close(pipefd[1]);
    /* End of file means the exec succeeded (the write end was close-on-exec). */
    struct child_report report;
    ssize_t n = read_report(pipefd[0], &report);
    close(pipefd[0]);
    if (wait_child(pid, status) < 0)
        return ks_fail(err, "waiting for %s: %s", cmd->argv[0], strerror(errno));
    if (n != (ssize_t)sizeof(report))
        return 0;
    const char *step =
        report.step >= 0 && report.step <= STEP_EXEC ? child_step_names[report.step] : "?";
    return ks_fail(err, "cannot run %s as %s: %s%s%s: %s", cmd->argv[0], pc->user.name, step,
                   report.step == STEP_LOG ? " " : "", report.step == STEP_LOG ? cmd->log_path : "",
                   strerror(report.error));
}

static void describe_status(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d, %s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "wait status %#x", (unsigned)status);
}

static int exited_with(int status, int code)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == code;
}

/* "initdb failed (exit 1): <last error line>; see <log>" */
static int fail_tool(const pgcluster *pc, const char *what, int status, const char *log_path,
                     off_t log_from, ks_err *err)
{
    char how[128];
    describe_status(status, how, sizeof(how));
    char *line = log_path ? log_error_line(pc, log_path, log_from) : NULL;
    if (line != NULL)
        ks_fail(err, "%s failed (%s): %s; see %s", what, how, line, log_path);
    else if (log_path != NULL)
        ks_fail(err, "%s failed (%s), see %s", what, how, log_path);
    else
        ks_fail(err, "%s failed (%s)", what, how);
    free(line);
    return -1;
}

/* ------------------------------------------------------------ binaries */

static char *bin_path(const char *bindir, const char *prog)
{
    return ks_strdup_printf("%s/%s", bindir, prog);
}

static int has_tools(const char *bindir)
{
    static const char *const tools[] = {"initdb", "pg_ctl", "postgres"};
    for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
        char *path = bin_path(bindir, tools[i]);
        int ok = path != NULL && access(path, X_OK) == 0;
        free(path);
        if (!ok)
            return 0;
    }
    return 1;
}

/* Ordering key of a /usr/lib/postgresql entry ("15", "9.6"); -1 if it is
 * not a version. */
static long version_key(const char *name)
{
    if (name[0] < '0' || name[0] > '9' || name[strspn(name, "0123456789.")] != '\0')
        return -1;
    char *end;
    long major = strtol(name, &end, 10);
    long minor = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
    return major * 100 + minor;
}

static char *newest_bindir(ks_err *err)
{
    DIR *dir = opendir(PG_LIB_DIR);
    if (dir == NULL) {
        ks_fail(err, "cannot read %s (is the postgresql package installed?): %s", PG_LIB_DIR,
                strerror(errno));
        return NULL;
    }
    char *best = NULL;
    long best_key = -1;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        long key = version_key(de->d_name);
        if (key <= best_key)
            continue;
        char *candidate = ks_strdup_printf("%s/%s/bin", PG_LIB_DIR, de->d_name);
        if (candidate != NULL && has_tools(candidate)) {
            free(best);
            best = candidate;
            best_key = key;
        } else {
            free(candidate);
        }
    }
    closedir(dir);
    if (best == NULL)
        ks_fail(err, "no %s/<version>/bin has initdb, pg_ctl and postgres; install postgresql",
                PG_LIB_DIR);
    return best;
}

/*
 * The configured directory; else, for an existing cluster, the binaries of
 * the version that created it (after an upgrade installs a newer major
 * version next to the old one, the newest server could not start it); else
 * the newest installed version.
 */
static char *choose_bindir(const char *configured, const char *cluster_version, ks_err *err)
{
    char *bindir = NULL;
    if (configured != NULL) {
        if (check_path_chars("pg_bindir", configured, err) < 0)
            return NULL;
        bindir = strdup(configured);
    } else if (cluster_version != NULL) {
        bindir = ks_strdup_printf("%s/%s/bin", PG_LIB_DIR, cluster_version);
    } else {
        return newest_bindir(err);
    }
    if (bindir == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    if (has_tools(bindir))
        return bindir;
    if (configured != NULL)
        ks_fail(err, "pg_bindir %s does not have initdb, pg_ctl and postgres", bindir);
    else
        ks_fail(err,
                "the cluster was created by PostgreSQL %s, but %s does not have initdb, pg_ctl "
                "and postgres; install postgresql-%s (or upgrade the cluster with pg_upgrade) "
                "or set pg_bindir",
                cluster_version, bindir, cluster_version);
    free(bindir);
    return NULL;
}

/* ------------------------------------------------------------ the server */

/* A leftover of an initdb that was killed half-way; removed as the server
 * user, who owns it, so nothing in it can redirect root's deletions. */
static int remove_stale_initdb(const pgcluster *pc, const char *tmp_dir, ks_err *err)
{
    struct stat st;
    if (lstat(tmp_dir, &st) < 0)
        return errno == ENOENT ? 0
                               : ks_fail(err, "cannot examine %s: %s", tmp_dir, strerror(errno));
    ks_warn("removing %s, left over from an interrupted initdb", tmp_dir);
    const char *argv[] = {"/bin/rm", "-rf", "--", tmp_dir, NULL};
    child_cmd cmd = {.argv = argv, .log_path = NULL, .log_flags = 0};
    int status;
    if (run_child(pc, &cmd, &status, err) < 0)
        return -1;
    if (!exited_with(status, 0))
        return fail_tool(pc, "removing an interrupted initdb's directory", status, NULL, 0, err);
    return 0;
}

/* There is no PG_VERSION, so a data directory, if any, is not a cluster.  An
 * empty one (made by hand, say) is removed; anything in it is not ours to
 * delete.  Checked before initdb, which takes seconds. */
static int clear_data_dir(const pgcluster *pc, ks_err *err)
{
    if (rmdir(pc->data_dir) == 0 || errno == ENOENT)
        return 0;
    if (errno == ENOTEMPTY || errno == EEXIST)
        return ks_fail(err,
                       "%s is not empty but has no PG_VERSION, so it is not a PostgreSQL "
                       "cluster (or a damaged one): move it away",
                       pc->data_dir);
    return ks_fail(err, "cannot remove the empty directory %s: %s", pc->data_dir, strerror(errno));
}

/*
 * initdb runs into data.initdb, which is renamed to data only once it is
 * complete: initdb writes PG_VERSION early, so a crash half-way would
 * otherwise leave a directory that looks like a cluster but cannot start.
 */
static int init_cluster(pgcluster *pc, ks_err *err)
{
    int rc = -1;
    char *initdb = bin_path(pc->bindir, "initdb");
    char *tmp_dir = ks_strdup_printf("%s/data.initdb", pc->pg_dir);
    char *log_path = ks_strdup_printf("%s/initdb.log", pc->pg_dir);
    if (initdb == NULL || tmp_dir == NULL || log_path == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    if (clear_data_dir(pc, err) < 0 || remove_stale_initdb(pc, tmp_dir, err) < 0)
        goto out;
    ks_info("creating PostgreSQL cluster in %s", pc->data_dir);
    /* No --no-sync: this holds the keysvc database, it must survive a crash. */
    const char *argv[] = {initdb,
                          "-D",
                          tmp_dir,
                          "-U",
                          pc->user.name,
                          "--auth-local=trust",
                          "--auth-host=scram-sha-256",
                          "-E",
                          "UTF8",
                          "--locale=C",
                          NULL};
    child_cmd cmd = {.argv = argv, .log_path = log_path, .log_flags = O_TRUNC};
    int status;
    if (run_child(pc, &cmd, &status, err) < 0)
        goto out;
    if (!exited_with(status, 0)) {
        fail_tool(pc, "initdb", status, log_path, 0, err);
        goto out;
    }
    if (rename(tmp_dir, pc->data_dir) < 0) {
        ks_fail(err, "cannot rename %s to %s: %s", tmp_dir, pc->data_dir, strerror(errno));
        goto out;
    }
    rc = ks_fsync_dir(pc->pg_dir, err);
out:
    free(initdb);
    free(tmp_dir);
    free(log_path);
    return rc;
}

/* 1 when a server runs on the data directory, 0 when not, -1 on error. */
static int server_running(const pgcluster *pc, ks_err *err)
{
    char *pg_ctl = bin_path(pc->bindir, "pg_ctl");
    if (pg_ctl == NULL)
        return ks_fail(err, "out of memory");
    const char *argv[] = {pg_ctl, "status", "-D", pc->data_dir, NULL};
    child_cmd cmd = {.argv = argv, .log_path = NULL, .log_flags = 0};
    int status;
    int rc = run_child(pc, &cmd, &status, err);
    if (rc == 0) {
        if (exited_with(status, 0))
            rc = 1;
        else if (!exited_with(status, PG_CTL_STATUS_STOPPED))
            rc = fail_tool(pc, "pg_ctl status", status, NULL, 0, err);
    }
    free(pg_ctl);
    return rc;
}

static int start_server(pgcluster *pc, ks_err *err)
{
    int rc = -1;
    char *pg_ctl = bin_path(pc->bindir, "pg_ctl");
    char *log_path = ks_strdup_printf("%s/postgres.log", pc->pg_dir);
    /* pg_ctl hands this string to /bin/sh; the path was checked to hold no
     * shell syntax, and is quoted anyway. */
    char *options = ks_strdup_printf("-k '%s' -p " PG_PORT " -c listen_addresses='' "
                                     "-c unix_socket_permissions=0700",
                                     pc->pg_dir);
    if (pg_ctl == NULL || log_path == NULL || options == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    off_t log_from = file_size(log_path);
    ks_info("starting PostgreSQL in %s", pc->data_dir);
    const char *argv[] = {pg_ctl,   "-D",    pc->data_dir, "-l",
                          log_path, "-w",    "-t",         PG_START_TIMEOUT_S,
                          "-o",     options, "start",      NULL};
    child_cmd cmd = {.argv = argv, .log_path = log_path, .log_flags = O_APPEND};
    int status;
    if (run_child(pc, &cmd, &status, err) < 0)
        goto out;
    if (exited_with(status, 0)) {
        pc->started = 1;
        pc->server_pid = read_postmaster_pid(pc);
        rc = 0;
    } else if (server_running(pc, NULL) == 1) {
        /* Another process started it at the same time: use theirs. */
        ks_info("PostgreSQL in %s was started concurrently by another process", pc->data_dir);
        rc = 0;
    } else {
        fail_tool(pc, "pg_ctl start", status, log_path, log_from, err);
    }
out:
    free(pg_ctl);
    free(log_path);
    free(options);
    return rc;
}

static PGPing ping_server(const pgcluster *pc)
{
    const char *const keys[] = {"host", "port", "user", "dbname", NULL};
    const char *const values[] = {pc->pg_dir, PG_PORT, pc->user.name, "postgres", NULL};
    return PQpingParams(keys, values, 0);
}

/*
 * Starts the server unless it runs, and returns once it accepts connections.
 * A server we did not start may still be starting up (another keysvc runs
 * pg_ctl start at this moment), or may have died a moment ago and not been
 * reaped yet, so that its PID still looks alive; hence the loop.
 */
static int ensure_running(pgcluster *pc, ks_err *err)
{
    long long deadline = ks_now_ms() + READY_TIMEOUT_MS;
    for (;;) {
        int running = server_running(pc, err);
        if (running < 0)
            return -1;
        if (!running && start_server(pc, err) < 0)
            return -1;
        if (pc->started)
            return 0; /* pg_ctl start -w returns once the server is ready */
        PGPing ping = ping_server(pc);
        if (ping == PQPING_OK)
            return 0;
        if (ping == PQPING_NO_ATTEMPT)
            return ks_fail(err, "libpq refused the connection parameters");
        if (ks_now_ms() >= deadline)
            break;
        ks_sleep_ms(200);
    }
    return ks_fail(err,
                   "pg_ctl status says a server runs on %s, but it does not accept connections "
                   "on %s/%s within %d s; see %s/postgres.log",
                   pc->data_dir, pc->pg_dir, PG_SOCKET_NAME, READY_TIMEOUT_MS / 1000, pc->pg_dir);
}

static int stop_server(const pgcluster *pc, ks_err *err)
{
    int rc = -1;
    char *pg_ctl = bin_path(pc->bindir, "pg_ctl");
    char *log_path = ks_strdup_printf("%s/postgres.log", pc->pg_dir);
    if (pg_ctl == NULL || log_path == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    off_t log_from = file_size(log_path);
    const char *argv[] = {pg_ctl, "-D", pc->data_dir, "-m", "fast", "-w", "stop", NULL};
    child_cmd cmd = {.argv = argv, .log_path = log_path, .log_flags = O_APPEND};
    int status;
    if (run_child(pc, &cmd, &status, err) < 0)
        goto out;
    if (!exited_with(status, 0)) {
        fail_tool(pc, "pg_ctl stop", status, log_path, log_from, err);
        goto out;
    }
    rc = 0;
out:
    free(pg_ctl);
    free(log_path);
    return rc;
}

/* ----------------------------------------------------------- the database */

/* A conninfo value in single quotes with ' and \ backslash-escaped, so that
 * spaces or quotes cannot change the meaning of the string.  Caller frees. */
static char *conninfo_quote(const char *value)
{
    size_t len = strlen(value);
    char *out = malloc(2 * len + 3);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    out[o++] = '\'';
    for (size_t i = 0; i < len; i++) {
        if (value[i] == '\'' || value[i] == '\\')
            out[o++] = '\\';
        out[o++] = value[i];
    }
    out[o++] = '\'';
    out[o] = '\0';
    return out;
}

static char *build_conninfo(const pgcluster *pc, const char *db_name)
{
    char *host = conninfo_quote(pc->pg_dir);
    char *user = conninfo_quote(pc->user.name);
    char *db = conninfo_quote(db_name);
    char *conninfo = NULL;
    if (host != NULL && user != NULL && db != NULL)
        conninfo = ks_strdup_printf("host=%s port=" PG_PORT " user=%s dbname=%s", host, user, db);
    free(host);
    free(user);
    free(db);
    return conninfo;
}

/* Fails with libpq's message, which ends in a newline and comes from the
 * server, so it is trimmed and escaped. */
static int fail_pq(ks_err *err, const char *what, const char *msg)
{
    size_t len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    char *shown = ks_escape_new(msg, len);
    ks_fail(err, "%s: %s", what, shown ? shown : "out of memory");
    free(shown);
    return -1;
}

static PGconn *connect_maintenance_db(const pgcluster *pc, ks_err *err)
{
    const char *const keys[] = {"host", "port", "user", "dbname", NULL};
    const char *const values[] = {pc->pg_dir, PG_PORT, pc->user.name, "postgres", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 0);
    if (conn == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        fail_pq(err, "cannot connect to the server", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* 1 when the database exists, 0 when not, -1 on error. */
static int database_exists(PGconn *conn, const char *db_name, ks_err *err)
{
    const char *params[] = {db_name};
    PGresult *res = PQexecParams(conn, "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", 1,
                                 NULL, params, NULL, NULL, 0);
    int rc;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = fail_pq(err, "looking up the database", PQerrorMessage(conn));
    else
        rc = PQntuples(res) > 0;
    PQclear(res);
    return rc;
}

static int create_database(PGconn *conn, const char *db_name, ks_err *err)
{
    char *ident = PQescapeIdentifier(conn, db_name, strlen(db_name));
    if (ident == NULL)
        return fail_pq(err, "quoting the database name", PQerrorMessage(conn));
    char *sql = ks_strdup_printf("CREATE DATABASE %s", ident);
    PQfreemem(ident);
    if (sql == NULL)
        return ks_fail(err, "out of memory");
    PGresult *res = PQexec(conn, sql);
    free(sql);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        /* duplicate_database: created meanwhile by a concurrent keysvc */
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state == NULL || strcmp(state, "42P04") != 0)
            rc = fail_pq(err, "creating the database", PQerrorMessage(conn));
    }
    PQclear(res);
    return rc;
}

static int ensure_database(const pgcluster *pc, const char *db_name, ks_err *err)
{
    PGconn *conn = connect_maintenance_db(pc, err);
    if (conn == NULL)
        return -1;
    int rc = database_exists(conn, db_name, err);
    if (rc == 0) {
        ks_info("creating database %s", db_name);
        rc = create_database(conn, db_name, err);
    }
    PQfinish(conn);
    return rc < 0 ? -1 : 0;
}

/* ----------------------------------------------------------------- API */

static int check_options(const pgcluster_options *opts, ks_err *err)
{
    if (opts == NULL || opts->state_dir == NULL)
        return ks_fail(err, "no state directory given");
    if (check_path_chars("state directory", opts->state_dir, err) < 0)
        return -1;
    const char *db = opts->db_name ? opts->db_name : PG_DEFAULT_DB;
    if (db[0] == '\0' || strlen(db) > PG_NAME_MAX)
        return ks_fail(err, "database name must have 1 to %d bytes", PG_NAME_MAX);
    return 0;
}

/* Fills the paths of pc from the resolved state directory. */
static int set_paths(pgcluster *pc, const char *state_dir, ks_err *err)
{
    pc->pg_dir = ks_strdup_printf("%s/postgres", state_dir);
    pc->data_dir = ks_strdup_printf("%s/postgres/data", state_dir);
    if (pc->pg_dir == NULL || pc->data_dir == NULL)
        return ks_fail(err, "out of memory");
    return 0;
}

/* Everything pgcluster_ensure() does, in order; pc is filled as it goes. */
static int ensure_steps(pgcluster *pc, const pgcluster_options *opts, ks_err *err)
{
    if (server_user_init(&pc->user, opts->run_as, err) < 0)
        return -1;
    char *state_dir = prepare_state_dir(opts->state_dir, &pc->user, err);
    if (state_dir == NULL)
        return -1;
    int rc = set_paths(pc, state_dir, err);
    free(state_dir);
    if (rc < 0 || prepare_pg_dir(pc, err) < 0 || check_data_dir(pc, err) < 0)
        return -1;
    char version[16];
    int have_cluster = read_cluster_version(pc, version, sizeof(version), err);
    if (have_cluster < 0)
        return -1;
    pc->bindir = choose_bindir(opts->pg_bindir, have_cluster ? version : NULL, err);
    if (pc->bindir == NULL)
        return -1;
    if (!have_cluster && init_cluster(pc, err) < 0)
        return -1;
    if (ensure_running(pc, err) < 0)
        return -1;
    const char *db_name = opts->db_name ? opts->db_name : PG_DEFAULT_DB;
    pc->conninfo = build_conninfo(pc, db_name);
    if (pc->conninfo == NULL)
        return ks_fail(err, "out of memory");
    return ensure_database(pc, db_name, err);
}

static void pgcluster_free(pgcluster *pc)
{
    free(pc->pg_dir);
    free(pc->data_dir);
    free(pc->bindir);
    free(pc->conninfo);
    server_user_free(&pc->user);
    free(pc);
}

pgcluster *pgcluster_ensure(const pgcluster_options *opts, ks_err *err)
{
    pgcluster *pc = NULL;
    if (check_options(opts, err) < 0)
        goto fail;
    pc = calloc(1, sizeof(*pc));
    if (pc == NULL) {
        ks_fail(err, "out of memory");
        goto fail;
    }
    if (ensure_steps(pc, opts, err) < 0)
        goto fail;
    return pc;
fail:
    /* Nobody gets a handle to stop a server we started, so stop it now. */
    if (pc != NULL && pc->started && stop_server(pc, NULL) < 0)
        ks_warn("could not stop the PostgreSQL server in %s", pc->data_dir);
    if (pc != NULL)
        pgcluster_free(pc);
    if (opts != NULL && opts->state_dir != NULL) {
        char *shown = ks_escape_new(opts->state_dir, (size_t)-1);
        ks_failp(err, "private PostgreSQL cluster in %s", shown ? shown : "?");
        free(shown);
    }
    return NULL;
}

const char *pgcluster_conninfo(const pgcluster *pc)
{
    return pc->conninfo;
}

/* Stops the server if it is still the one pgcluster_ensure() started: after
 * a crash it may be gone (leaving a stale postmaster.pid), or someone else
 * may have started a new one, which is not ours to stop. */
static void stop_if_ours(const pgcluster *pc)
{
    long pid = read_postmaster_pid(pc);
    ks_err err;
    if (pid == 0 || (pid == pc->server_pid && kill((pid_t)pid, 0) < 0 && errno == ESRCH))
        ks_info("PostgreSQL in %s has already stopped", pc->data_dir);
    else if (pid != pc->server_pid)
        ks_info("PostgreSQL in %s was restarted by someone else; leaving it running", pc->data_dir);
    else if (stop_server(pc, &err) < 0)
        ks_warn("private PostgreSQL cluster in %s: %s", pc->pg_dir, err.msg);
}

void pgcluster_release(pgcluster *pc)
{
    if (pc == NULL)
        return;
    if (pc->started)
        stop_if_ours(pc);
    pgcluster_free(pc);
}
