/*
 * The standalone signer's listening socket against a real SoftHSM (run
 * under with-softhsm.sh, which makes token "ks-a" and exports
 * KS_PKCS11_MODULE and KS_PIN_FILE): the socket file's mode and owner, the
 * refusals (a live signer, an unsafe directory), a stale socket, a worker
 * that never reads its answers, the limit of 64 workers, malformed
 * messages; and the worker's side: reconnecting to a restarted signer,
 * refusing an impostor, and a connection whose answer went missing.  Each signer is a forked child of this test serving tenant "a"
 * in a private directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "signer.h"
#include "signer_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Bounds on waiting for a signer (generous: the valgrind twin is slow). */
#define START_S 60
#define STOP_S 60
/* How long a connection waits for one answer before the test fails. */
#define ANSWER_S 30
/* An answer later than this, while another worker misbehaves, is a stall. */
#define PROMPT_MS 5000
/* Workers a standalone signer serves at once (MAX_CLIENTS in signer_serve.c). */
#define MAX_WORKERS 64

static const char open_a[] = "{\"op\":\"open\",\"tenant\":\"a\"}";

/* ------------------------------------------------------------ fixture */

/* A forked signer: its pid (0 once reaped) and the read end of a pipe on
 * which it writes its error, if serving fails, before it exits. */
typedef struct signer_child {
    pid_t pid;
    int report_fd;
} signer_child;

typedef struct fixture {
    char dir[64];          /* private, mode 0700 */
    char path[128];        /* dir/signer.sock */
    char shared[128];      /* dir/shared, for the directory-mode tests */
    char shared_path[160]; /* dir/shared/signer.sock */
    mode_t child_umask;    /* the umask the signers inherit */
    signer_child kids[8];
    size_t n_kids;
} fixture;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/keysvc-signer-socket.XXXXXX");
    if (mkdtemp(f->dir) == NULL || chmod(f->dir, 0700) < 0)
        fail_msg("mkdtemp: %s", strerror(errno));
    snprintf(f->path, sizeof(f->path), "%s/signer.sock", f->dir);
    snprintf(f->shared, sizeof(f->shared), "%s/shared", f->dir);
    snprintf(f->shared_path, sizeof(f->shared_path), "%s/signer.sock", f->shared);
    f->child_umask = 022;
    *state = f;
    return 0;
}

/* Kills what a failed test left running, and removes the directory. */
static int teardown(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < f->n_kids; i++) {
        if (f->kids[i].pid > 0) {
            kill(f->kids[i].pid, SIGKILL);
            waitpid(f->kids[i].pid, NULL, 0);
        }
        if (f->kids[i].report_fd >= 0)
            close(f->kids[i].report_fd);
    }
    char lock[200];
    snprintf(lock, sizeof(lock), "%s.lock", f->shared_path);
    unlink(lock);
    unlink(f->shared_path);
    rmdir(f->shared);
    snprintf(lock, sizeof(lock), "%s.lock", f->path);
    unlink(lock);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ signers */

/* The child: serves tenant "a" on `path` until SIGTERM; on an error it
 * writes the message to report_fd.  Its exit code: 0 served, 3 refused. */
static int child_serve(const char *path, const char *group, int report_fd)
{
    ks_signer_tenant_config t[] = {
        {.name = "a", .token_label = "ks-a", .pin_file = getenv("KS_PIN_FILE")}};
    ks_err err = {0};
    ks_signer_server *server = ks_signer_server_new(getenv("KS_PKCS11_MODULE"), t, 1, &err);
    int rc = server ? ks_signer_serve_path(server, path, group, &err) : -1;
    ks_signer_server_free(server);
    if (rc < 0) {
        ssize_t w = write(report_fd, err.msg, strlen(err.msg));
        (void)w; /* the exit code says it anyway */
    }
    close(report_fd);
    return rc < 0 ? 3 : 0;
}

/* Forks a signer on `path` (with `group`, or NULL) and returns at once;
 * the fixture kills it if the test fails.  The child never returns. */
static signer_child *fork_signer(fixture *f, const char *path, const char *group)
{
    int p[2];
    assert_true(f->n_kids < sizeof(f->kids) / sizeof(f->kids[0]));
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        umask(f->child_umask);
        _exit(child_serve(path, group, p[1]));
    }
    close(p[1]);
    signer_child *c = &f->kids[f->n_kids++];
    *c = (signer_child){.pid = pid, .report_fd = p[0]};
    return c;
}

/* What the child reported (empty if nothing); read once it has exited. */
static void read_report(const signer_child *c, char *out, size_t cap)
{
    ssize_t n = read(c->report_fd, out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
}

/* Waits at most `seconds` for the child to exit: its wait status, or -1
 * if it is still running (then it stays in the fixture to be killed). */
static int reap(signer_child *c, int seconds)
{
    long long deadline = now_ms() + seconds * 1000LL;
    int status;
    do {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid) {
            c->pid = 0;
            return status;
        }
        assert_true(r == 0 || errno == EINTR);
        usleep(20000);
    } while (now_ms() < deadline);
    return -1;
}

/* A connection to `path`, or -1 with errno set. */
static int try_connect(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Starts a signer and waits until it accepts connections; fails the test
 * (with the signer's own error) if it exits first or takes too long. */
static signer_child *start_signer(fixture *f, const char *path, const char *group)
{
    signer_child *c = fork_signer(f, path, group);
    long long deadline = now_ms() + START_S * 1000LL;
    while (now_ms() < deadline) {
        int fd = try_connect(path);
        if (fd >= 0) {
            close(fd);
            return c;
        }
        int status = reap(c, 0);
        if (status != -1) {
            char msg[512];
            read_report(c, msg, sizeof(msg));
            fail_msg("the signer on %s exited (status %#x): %s", path, status, msg);
        }
        usleep(50000);
    }
    fail_msg("the signer on %s does not listen after %d s", path, START_S);
    return NULL;
}

/* SIGTERM: the signer must exit 0 and remove its socket file (at `path`;
 * NULL: not checked). */
static void stop_signer(signer_child *c, const char *path)
{
    struct stat st;
    assert_int_equal(kill(c->pid, SIGTERM), 0);
    int status = reap(c, STOP_S);
    if (status == -1)
        fail_msg("the signer ignores SIGTERM for %d s", STOP_S);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the signer ended with status %#x", status);
    if (path != NULL && (lstat(path, &st) == 0 || errno != ENOENT))
        fail_msg("the signer left its socket %s behind", path);
}

/* Runs a signer on `path` that must refuse to start with an error
 * containing `needle`; fails the test if it serves instead. */
static void expect_refusal(fixture *f, const char *path, const char *needle)
{
    signer_child *c = fork_signer(f, path, NULL);
    int status = reap(c, START_S);
    if (status == -1)
        fail_msg("a signer started on %s: it should have refused", path);
    char msg[512];
    read_report(c, msg, sizeof(msg));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 3)
        fail_msg("the refused signer ended with status %#x (%s)", status, msg);
    if (strstr(msg, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", msg, needle);
}

/* -------------------------------------------------------- connections */

/* A worker's raw connection to `path`, waiting at most ANSWER_S for each
 * send and answer; fails the test if the signer does not take it. */
static int connect_raw(const char *path)
{
    int fd = try_connect(path);
    if (fd < 0)
        fail_msg("connect %s: %s", path, strerror(errno));
    struct timeval tv = {.tv_sec = ANSWER_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Sends one message and returns its reply's "error" (empty when ok);
 * fails the test when there is no reply. */
static void exchange(int fd, const char *msg, char *error, size_t cap)
{
    assert_int_equal(send(fd, msg, strlen(msg), MSG_NOSIGNAL), (ssize_t)strlen(msg));
    json_object *reply = NULL, *ok = NULL;
    ks_err err = {0};
    if (ks_proto_recv(fd, &reply, 1, &err) != 1)
        fail_msg("no reply to %s: %s", msg, err.msg);
    const char *text = "";
    if (!(json_object_object_get_ex(reply, "ok", &ok) && json_object_get_boolean(ok)))
        ks_proto_string(reply, "error", &text, NULL);
    snprintf(error, cap, "%s", text);
    json_object_put(reply);
}

/* Sends one message that must be answered with ok. */
static void exchange_ok(int fd, const char *msg)
{
    char error[512];
    exchange(fd, msg, error, sizeof(error));
    if (error[0] != '\0')
        fail_msg("%s: %s", msg, error);
}

/* A new connection of tenant "a" through the worker's API: asks whether a
 * fresh key exists (it does not), proving the signer serves. */
static void check_served(const char *path)
{
    ks_err err = {0};
    ks_keyref ref;
    int fd = connect_raw(path);
    ks_signer *s = ks_signer_open(fd, "a", &err);
    if (s == NULL)
        fail_msg("open: %s", err.msg);
    assert_int_equal(ks_signer_new_keyref(s, KS_PURPOSE_ACCOUNT, &ref, &err), 0);
    if (ks_signer_key_exists(s, &ref, &err) != 0)
        fail_msg("exists on a fresh key: %s", err.msg);
    ks_signer_close(s);
    close(fd);
}

/* The connection is closed by the signer: recv gives the end of the stream
 * (or ECONNRESET when it closed with requests unread), not an answer and
 * not a timeout. */
static void expect_closed_by_signer(int fd)
{
    char buf[1024];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0)
        fail_msg("the signer answered (%.*s)", (int)n, buf);
    if (n < 0 && errno != ECONNRESET)
        fail_msg("the signer does not close the connection: %s", strerror(errno));
}

/* ------------------------------------------------------ the socket file */

/* A group other than our own primary one (in which the socket would be
 * made anyway), so that giving the socket to it shows: a supplementary
 * group, or any group for root.  0 when there is none. */
static int other_group(char *name, size_t cap, gid_t *gid)
{
    gid_t groups[64];
    struct group *g = NULL;
    int n = getgroups(64, groups);
    for (int i = 0; i < n && g == NULL; i++)
        g = groups[i] != getegid() ? getgrgid(groups[i]) : NULL;
    if (g == NULL && geteuid() == 0) {
        setgrent();
        while ((g = getgrent()) != NULL && g->gr_gid == getegid()) {
        }
    }
    if (g != NULL) {
        snprintf(name, cap, "%s", g->gr_name);
        *gid = g->gr_gid;
    }
    endgrent();
    return g != NULL;
}

/* A signer with `group` makes its socket 0660 and the group's. */
static void check_group_socket(fixture *f, const char *group, gid_t gid)
{
    struct stat st;
    signer_child *c = start_signer(f, f->path, group);
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0660);
    assert_int_equal(st.st_gid, gid);
    stop_signer(c, f->path);
}

/* 0600 without a group, 0660 and the group's with one, whatever the umask
 * the signer inherits (0 and 077 here). */
static void test_socket_mode(void **state)
{
    fixture *f = *state;
    struct stat st;
    f->child_umask = 0;
    signer_child *c = start_signer(f, f->path, NULL);
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, geteuid());
    stop_signer(c, f->path);

    char name[256];
    gid_t gid;
    struct group *g = getgrgid(getgid());
    assert_non_null(g);
    snprintf(name, sizeof(name), "%s", g->gr_name);
    f->child_umask = 077;
    check_group_socket(f, name, getgid());
    if (other_group(name, sizeof(name), &gid))
        check_group_socket(f, name, gid);
    else
        print_message("no group other than our own to give the socket to: not tried\n");
}

/* A second signer on a live socket is refused and changes nothing: the
 * socket file stays the first one's, its worker and new workers are
 * served. */
static void test_second_signer_refused(void **state)
{
    fixture *f = *state;
    struct stat before, after;
    signer_child *c = start_signer(f, f->path, NULL);
    assert_int_equal(lstat(f->path, &before), 0);
    int fd = connect_raw(f->path);
    exchange_ok(fd, open_a);

    expect_refusal(f, f->path, "already listening");

    assert_int_equal(lstat(f->path, &after), 0);
    assert_true(before.st_ino == after.st_ino && before.st_dev == after.st_dev);
    exchange_ok(fd, open_a);
    close(fd);
    check_served(f->path);
    stop_signer(c, f->path);
}

/* A signer killed outright leaves its socket file; the next one removes it
 * and serves. */
static void test_stale_socket_replaced(void **state)
{
    fixture *f = *state;
    struct stat st;
    signer_child *c = start_signer(f, f->path, NULL);
    check_served(f->path);
    assert_int_equal(kill(c->pid, SIGKILL), 0);
    int status = reap(c, STOP_S);
    assert_true(status != -1 && WIFSIGNALED(status));
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(try_connect(f->path), -1);
    assert_int_equal(errno, ECONNREFUSED);

    c = start_signer(f, f->path, NULL);
    check_served(f->path);
    stop_signer(c, f->path);
}

/* A signer whose socket file was replaced under it (removed by hand, and
 * a new signer started there) leaves the new one's file at its exit. */
static void test_only_own_socket_removed(void **state)
{
    fixture *f = *state;
    char lock[200];
    snprintf(lock, sizeof(lock), "%s.lock", f->path);
    signer_child *old = start_signer(f, f->path, NULL);
    assert_int_equal(unlink(f->path), 0);
    /* The first signer still holds the path's lock file. */
    expect_refusal(f, f->path, "already listening");
    assert_int_equal(unlink(lock), 0);
    signer_child *c = start_signer(f, f->path, NULL);
    stop_signer(old, NULL);
    check_served(f->path);
    stop_signer(c, f->path);
}

/* A directory others (or the group) may write to without the sticky bit is
 * refused, and no socket is left in it; with the sticky bit it is used. */
static void test_unsafe_directory_refused(void **state)
{
    fixture *f = *state;
    struct stat st;
    assert_int_equal(mkdir(f->shared, 0700), 0);
    const mode_t unsafe[] = {0777, 0770, 0702};
    for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
        assert_int_equal(chmod(f->shared, unsafe[i]), 0);
        expect_refusal(f, f->shared_path, "writable by others");
        assert_int_equal(lstat(f->shared_path, &st), -1);
    }
    /* Owned by another user, who could replace the socket whatever the
     * mode (only root can make such a directory here). */
    if (geteuid() == 0) {
        assert_int_equal(chmod(f->shared, 0755), 0);
        assert_int_equal(chown(f->shared, 65534, (gid_t)-1), 0);
        expect_refusal(f, f->shared_path, "belongs to uid 65534");
        assert_int_equal(chown(f->shared, 0, (gid_t)-1), 0);
    }
    assert_int_equal(chmod(f->shared, 01777), 0);
    signer_child *c = start_signer(f, f->shared_path, NULL);
    check_served(f->shared_path);
    stop_signer(c, f->shared_path);
}

/* ------------------------------------------------ a worker that never reads */

/* Sends `msg` on fd over and over without reading, never blocking (it waits
 * for room when its own buffer is full), until `max` are sent or the send
 * fails otherwise: returns the count, *end_errno the error (0 if none). */
static int flood(int fd, const char *msg, int max, int *end_errno)
{
    size_t len = strlen(msg);
    long long deadline = now_ms() + ANSWER_S * 1000LL;
    int sent = 0;
    *end_errno = 0;
    while (sent < max && now_ms() < deadline) {
        ssize_t n = send(fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == (ssize_t)len) {
            sent++;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 100);
        } else {
            *end_errno = n < 0 ? errno : EMSGSIZE;
            break;
        }
    }
    return sent;
}

/* Reads every answer waiting on fd, then the end of the stream: returns
 * the number of answers, or -1 if the stream has not ended within
 * ANSWER_S. */
static int drain_until_closed(int fd)
{
    char buf[1024];
    long long deadline = now_ms() + ANSWER_S * 1000LL;
    int answers = 0;
    while (now_ms() < deadline) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            answers++;
        } else if (n == 0 || errno == ECONNRESET) {
            return answers;
        } else if (errno == EAGAIN || errno == EINTR) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            poll(&p, 1, 100);
        } else {
            fail_msg("recv: %s", strerror(errno));
        }
    }
    return -1;
}

/* One exists on the well-behaved connection, answered within ANSWER_S
 * (its receive timeout); returns how long it took. */
static long long timed_exists(ks_signer *good)
{
    ks_err err = {0};
    ks_keyref ref;
    assert_int_equal(ks_signer_new_keyref(good, KS_PURPOSE_ACCOUNT, &ref, &err), 0);
    long long t0 = now_ms();
    if (ks_signer_key_exists(good, &ref, &err) != 0)
        fail_msg("the well-behaved worker is not served: %s", err.msg);
    return now_ms() - t0;
}

/* A worker that sends requests and never reads the answers fills its
 * socket buffer; the signer drops it rather than wait for it, and keeps
 * serving the others meanwhile. */
static void test_non_reading_worker_dropped(void **state)
{
    fixture *f = *state;
    ks_err err = {0};
    signer_child *c = start_signer(f, f->path, NULL);
    int good_fd = connect_raw(f->path);
    ks_signer *good = ks_signer_open(good_fd, "a", &err);
    if (good == NULL)
        fail_msg("open: %s", err.msg);
    char req[256];
    snprintf(req, sizeof(req),
             "{\"op\":\"exists\",\"tenant\":\"a\",\"key\":{\"serial\":\"%s\","
             "\"id\":\"41000000000000000000000000000000\"}}",
             ks_signer_token(good)->serial);

    int bad = connect_raw(f->path);
    int end_errno = 0;
    assert_int_equal(flood(bad, open_a, 1, &end_errno), 1);
    /* A backlog the signer is still answering (fewer answers than fill its
     * send buffer, about 280 small ones): the other worker is served. */
    assert_int_equal(flood(bad, req, 100, &end_errno), 100);
    long long during = timed_exists(good);
    /* Then until the signer gives up on it. */
    int sent = 101 + flood(bad, req, 5000, &end_errno);
    long long after = timed_exists(good);
    if (end_errno != EPIPE && end_errno != ECONNRESET && end_errno != ENOTCONN)
        fail_msg("after %d requests never read, the worker is still connected (%s)", sent,
                 end_errno ? strerror(end_errno) : "no send failed");
    if (during > PROMPT_MS || after > PROMPT_MS)
        fail_msg("the well-behaved worker waited %lld ms, then %lld ms", during, after);
    int answers = drain_until_closed(bad);
    if (answers < 0)
        fail_msg("the signer does not close the connection that never reads");
    assert_true(answers < sent);
    print_message("non-reading worker: %d requests sent, %d answered before the drop (%s); "
                  "the other worker answered in %lld ms and %lld ms\n",
                  sent, answers, strerror(end_errno), during, after);
    close(bad);
    ks_signer_close(good);
    close(good_fd);
    stop_signer(c, f->path);
}

/* ------------------------------------------------------- 64 workers */

/* 64 workers are served; a 65th is closed at once while the 64 still
 * are; once one of them leaves, a new one is served again. */
static void test_65th_worker_refused(void **state)
{
    fixture *f = *state;
    int fds[MAX_WORKERS];
    signer_child *c = start_signer(f, f->path, NULL);
    for (int i = 0; i < MAX_WORKERS; i++) {
        fds[i] = connect_raw(f->path);
        exchange_ok(fds[i], open_a);
    }
    int extra = connect_raw(f->path); /* the kernel takes it; the signer closes it */
    (void)send(extra, open_a, strlen(open_a), MSG_NOSIGNAL);
    expect_closed_by_signer(extra);
    close(extra);
    for (int i = 0; i < MAX_WORKERS; i++)
        exchange_ok(fds[i], open_a);

    close(fds[0]);
    fds[0] = connect_raw(f->path);
    exchange_ok(fds[0], open_a);
    for (int i = 0; i < MAX_WORKERS; i++)
        close(fds[i]);
    stop_signer(c, f->path);
}

/* ------------------------------------------------------- malformed */

/* Malformed messages on a socket connection are answered with an error,
 * before and after "open", and the connection keeps working. */
static void test_malformed_message_answered(void **state)
{
    fixture *f = *state;
    char error[512];
    signer_child *c = start_signer(f, f->path, NULL);
    int fd = connect_raw(f->path);
    exchange(fd, "not json", error, sizeof(error));
    assert_non_null(strstr(error, "not one strict JSON object"));
    exchange_ok(fd, open_a);
    exchange(fd, "{\"op\":\"open\",\"tenant\":\"a\"} trailing", error, sizeof(error));
    assert_non_null(strstr(error, "not one strict JSON object"));
    exchange(fd, "{\"op\":\"open\",\"tenant\":\"zz\"}", error, sizeof(error));
    assert_non_null(strstr(error, "serves no tenant"));
    exchange_ok(fd, open_a);
    close(fd);
    stop_signer(c, f->path);
}


/* ------------------------------------------------------ the worker's side */

/* A restarted signer (or one that dropped an idle worker): the worker's
 * next request connects again, re-opens its tenant and succeeds. */
static void test_worker_reconnects_after_restart(void **state)
{
    fixture *f = *state;
    ks_signer_process proc;
    ks_signer_stats st;
    ks_err err = {0};
    signer_child *c = start_signer(f, f->path, NULL);
    assert_int_equal(ks_signer_use_path(f->path, NULL, &proc, &err), 0);
    ks_signer *s = ks_signer_open_process(&proc, "a", &err);
    if (s == NULL)
        fail_msg("open: %s", err.msg);
    assert_int_equal(ks_signer_get_stats(s, &st, &err), 0);
    stop_signer(c, f->path);
    c = start_signer(f, f->path, NULL);
    if (ks_signer_get_stats(s, &st, &err) < 0)
        fail_msg("after the restart: %s", err.msg);
    assert_int_equal(st.logins, 1); /* the new signer's own login */
    ks_signer_close(s);
    ks_signer_process_end(&proc);
    stop_signer(c, f->path);
}

/* A process of another user listening on the path (it bound it while the
 * signer was down) is not taken for the signer, unless signer.user names
 * that user.  Root only: the impostor must run as another user. */
static void test_impostor_signer_refused(void **state)
{
    fixture *f = *state;
    struct passwd *nobody = getpwnam("nobody");
    if (geteuid() != 0 || nobody == NULL) {
        print_message("not tried: needs root and a user \"nobody\"\n");
        return;
    }
    assert_int_equal(chmod(f->dir, 0711), 0); /* nobody must reach dir/shared */
    assert_int_equal(mkdir(f->shared, 0700), 0);
    assert_int_equal(chown(f->shared, nobody->pw_uid, (gid_t)-1), 0);
    int ready[2];
    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the impostor: listens and never answers */
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        if (strlen(f->shared_path) >= sizeof(addr.sun_path))
            _exit(1);
        memcpy(addr.sun_path, f->shared_path, strlen(f->shared_path) + 1);
        int fd = setuid(nobody->pw_uid) == 0 ? socket(AF_UNIX, SOCK_SEQPACKET, 0) : -1;
        if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 4) < 0)
            _exit(1);
        (void)!write(ready[1], "r", 1);
        pause();
        _exit(0);
    }
    close(ready[1]);
    char byte;
    assert_int_equal(read(ready[0], &byte, 1), 1);
    close(ready[0]);
    f->kids[f->n_kids++] = (signer_child){.pid = pid, .report_fd = -1};
    ks_signer_process proc;
    ks_err err = {0};
    assert_int_equal(ks_signer_use_path(f->shared_path, NULL, &proc, &err), 0);
    assert_int_equal(ks_signer_process_fd(&proc, "a", &err), -1);
    if (strstr(err.msg, "refusing the signer") == NULL)
        fail_msg("unexpected error: %s", err.msg);
    ks_signer_process_end(&proc);
    assert_int_equal(ks_signer_use_path(f->shared_path, "nobody", &proc, &err), 0);
    assert_true(ks_signer_process_fd(&proc, "a", &err) >= 0);
    ks_signer_process_end(&proc);
}

/* The fake signer of the next test: answers "open", then garbage, then
 * reports (exit code) whether the worker sent anything more. */
static int fake_signer(int fd)
{
    static const char opened[] = "{\"ok\":true,\"token\":{\"label\":\"ks-a\",\"serial\":\"1\","
                                 "\"manufacturer\":\"m\",\"model\":\"x\"}}";
    char buf[4096];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (recv(fd, buf, sizeof(buf), 0) <= 0 || send(fd, opened, strlen(opened), 0) < 0 ||
        recv(fd, buf, sizeof(buf), 0) <= 0 || send(fd, "garbage", 7, 0) < 0)
        return 2;
    /* Another request would arrive within moments of the first failure. */
    int more = poll(&p, 1, 2000) > 0 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
    return more ? 1 : 0;
}

/* After an answer that cannot be read, a late answer could pass for the
 * next request's: the worker asks nothing more on that connection. */
static void test_unanswered_request_breaks_connection(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        _exit(fake_signer(sv[1]));
    }
    close(sv[1]);
    ks_err err = {0};
    ks_signer_stats st;
    ks_signer *s = ks_signer_open(sv[0], "a", &err);
    if (s == NULL)
        fail_msg("open: %s", err.msg);
    assert_int_equal(ks_signer_get_stats(s, &st, &err), -1);
    assert_non_null(strstr(err.msg, "not one strict JSON object"));
    assert_int_equal(ks_signer_get_stats(s, &st, &err), -1);
    assert_non_null(strstr(err.msg, "went unanswered"));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* nothing was sent after the garbage */
    ks_signer_close(s);
    close(sv[0]);
}

int main(void)
{
    ks_signer_allow_unaudited(); /* no database here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_socket_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_signer_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_socket_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_own_socket_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_directory_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_reading_worker_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_65th_worker_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_message_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_reconnects_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_impostor_signer_refused, setup, teardown),
        cmocka_unit_test(test_unanswered_request_breaks_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
