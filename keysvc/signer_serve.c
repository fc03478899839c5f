/*
 * Serving: the connections of the signer, the loop that answers them one
 * request at a time, and the listening socket of the standalone signer.
 *
 * One thread answers every worker, so nothing may block it on one peer: a
 * request is read only when poll() says it is there, and an answer the peer
 * does not take at once (its buffer is full: it does not read) costs that
 * peer its connection, never the others their service.
 */
#include "signer_internal.h"

#include "ks_log.h"
#include "ks_util.h"
#include "signer_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The signer's send buffer per worker: room for hundreds of answers, and a
 * bound on what 64 workers that never read can make the kernel hold. */
#define SEND_BUFFER (128 * 1024)
/* Workers connected to a standalone signer at once; one more is refused. */
#define MAX_CLIENTS 64
/* After an answer the signer polls without sleeping this long, yielding
 * the CPU: a worker signing in a burst sends its next request within
 * microseconds, and waking a sleeping process on another CPU costs more than
 * that on a VM (measured: 22 us round trip sleeping, 7 us spinning). */
#define SPIN_US 200
/* A standalone signer drops a worker silent for this long (one that died
 * without its socket closing would otherwise hold a slot for ever). */
#define IDLE_MS (15LL * 60 * 1000)
/* After accept() failed for want of descriptors or memory. */
#define ACCEPT_PAUSE_MS 100

static volatile sig_atomic_t stop_requested;

typedef struct serve_loop {
    ks_signer_server *server;
    int listen_fd; /* -1: serve the given connections until they close */
    ks_signer_conn conns[MAX_CLIENTS];
    size_t n;
    long long spin_until_us;         /* poll without sleeping until then */
    long long accept_paused_until_ms; /* out of descriptors: accept again then */
} serve_loop;

/* ------------------------------------------------------- connections */

static void drop_conn(serve_loop *l, size_t i)
{
    ks_signer_conn_clear(&l->conns[i]);
    close(l->conns[i].fd);
    l->conns[i] = l->conns[--l->n];
}

/* Sends an answer without waiting for the peer.  An answer over the size
 * limit is replaced by an error saying so, so that the worker hears why. */
static int send_reply(int fd, json_object *reply, ks_err *err)
{
    int rc = ks_proto_send(fd, reply, 0, err);
    if (rc == KS_PROTO_TOO_BIG) {
        json_object *small = ks_signer_reply_error(err->msg);
        rc = ks_proto_send(fd, small, 0, err);
        json_object_put(small);
    }
    return rc < 0 ? -1 : 0;
}

/* Reads one request, if there is one, and answers it.  1 served (or
 * nothing there after all), 0 the peer closed, -1 the peer is dropped. */
static int serve_one(ks_signer_server *s, ks_signer_conn *c)
{
    json_object *req = NULL, *reply;
    ks_err err = {0};
    int got = ks_proto_recv(c->fd, &req, 0, &err);
    if (got == 2)
        return 1;
    if (got == 0)
        return 0;
    c->last_ms = ks_now_ms();
    /* A malformed or oversized request was still one whole message: answer
     * it and keep serving. */
    reply = got < 0 ? ks_signer_reply_error(err.msg) : ks_signer_dispatch(s, c, req);
    json_object_put(req);
    int rc = send_reply(c->fd, reply, &err);
    json_object_put(reply);
    if (rc < 0)
        ks_warn("signer: dropping a worker: %s", err.msg);
    return rc < 0 ? -1 : 1;
}

static void set_send_buffer(int fd)
{
    int size = SEND_BUFFER;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static void log_peer(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
        ks_info("signer: worker connected (pid %ld, uid %ld)", (long)cred.pid, (long)cred.uid);
}

static void accept_worker(serve_loop *l)
{
    int fd = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)) {
        /* The worker stays queued; polling the listening socket again at
         * once would spin.  Serve the others for a while first. */
        ks_warn("signer: cannot accept a worker: %s", strerror(errno));
        l->accept_paused_until_ms = ks_now_ms() + ACCEPT_PAUSE_MS;
        return;
    }
    if (fd < 0)
        return; /* gone before we took it, or EINTR: poll again */
    set_send_buffer(fd);
    if (l->n >= MAX_CLIENTS) {
        ks_warn("signer: %d workers are connected already; refusing one more", MAX_CLIENTS);
        close(fd);
        return;
    }
    log_peer(fd);
    l->conns[l->n++] = (ks_signer_conn){.fd = fd, .tenant = -1, .last_ms = ks_now_ms()};
}

/* ------------------------------------------------------------ the loop */

/* How long poll may sleep: until the first idle connection's deadline or
 * the end of an accept pause (standalone only), or for ever. */
static int poll_timeout(const serve_loop *l, struct timespec *ts)
{
    if (l->listen_fd < 0)
        return 0;
    long long now = ks_now_ms(), until = -1;
    for (size_t i = 0; i < l->n; i++)
        if (until < 0 || l->conns[i].last_ms + IDLE_MS < until)
            until = l->conns[i].last_ms + IDLE_MS;
    if (l->accept_paused_until_ms > now && (until < 0 || l->accept_paused_until_ms < until))
        until = l->accept_paused_until_ms;
    if (until < 0)
        return 0;
    long long wait = until > now ? until - now : 0;
    ts->tv_sec = (time_t)(wait / 1000);
    ts->tv_nsec = (long)(wait % 1000) * 1000000L;
    return 1;
}

static void drop_idle(serve_loop *l)
{
    long long now = ks_now_ms();
    for (size_t i = l->n; i-- > 0;) {
        if (now - l->conns[i].last_ms < IDLE_MS)
            continue;
        ks_info("signer: dropping a worker silent for %lld minutes", IDLE_MS / 60000);
        drop_conn(l, i);
    }
}

/* Serves until every connection is closed (no listening socket) or a stop
 * signal arrives (with one).  SIGTERM and SIGINT are blocked except inside
 * ppoll, so that a signal never falls between the check and the sleep. */
static int serve_loop_run(serve_loop *l, ks_err *err)
{
    struct pollfd pfds[MAX_CLIENTS + 1];
    sigset_t blocked, saved, during_poll;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigprocmask(SIG_BLOCK, &blocked, &saved);
    during_poll = saved;
    sigdelset(&during_poll, SIGTERM);
    sigdelset(&during_poll, SIGINT);
    int rc = 0;
    while (!stop_requested && (l->listen_fd >= 0 || l->n > 0)) {
        size_t first = l->listen_fd >= 0 ? 1 : 0;
        struct timespec ts;
        int accepting = ks_now_ms() >= l->accept_paused_until_ms;
        if (first)
            pfds[0] = (struct pollfd){.fd = l->listen_fd, .events = accepting ? POLLIN : 0};
        for (size_t i = 0; i < l->n; i++)
            pfds[first + i] = (struct pollfd){.fd = l->conns[i].fd, .events = POLLIN};
        const struct timespec no_wait = {0};
        int spinning = ks_now_us() < l->spin_until_us;
        const struct timespec *wait = spinning            ? &no_wait
                                      : poll_timeout(l, &ts) ? &ts
                                                           : NULL;
        int ready = ppoll(pfds, first + l->n, wait, &during_poll);
        if (ready < 0 && errno != EINTR) {
            rc = ks_fail(err, "signer: poll: %s", strerror(errno));
            break;
        }
        if (ready == 0 && spinning) {
            sched_yield();
            continue;
        }
        /* Backwards, so that dropping one moves an already served one. */
        for (size_t i = l->n; ready > 0 && i-- > 0;) {
            if (!(pfds[first + i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (serve_one(l->server, &l->conns[i]) <= 0)
                drop_conn(l, i);
            else
                l->spin_until_us = ks_now_us() + SPIN_US;
        }
        if (first && ready > 0 && (pfds[0].revents & POLLIN))
            accept_worker(l);
        if (first)
            drop_idle(l);
    }
    while (l->n > 0)
        drop_conn(l, l->n - 1);
    sigprocmask(SIG_SETMASK, &saved, NULL);
    return rc;
}

int ks_signer_serve_fds(ks_signer_server *s, const int *fds, size_t n, ks_err *err)
{
    serve_loop *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return ks_fail(err, "out of memory");
    if (n > MAX_CLIENTS) {
        free(l);
        return ks_fail(err, "signer: at most %d tenants per run", MAX_CLIENTS);
    }
    l->server = s;
    l->listen_fd = -1;
    for (size_t i = 0; i < n; i++) {
        set_send_buffer(fds[i]);
        l->conns[l->n++] = (ks_signer_conn){
            .fd = fds[i], .tenant = (int)i, .last_ms = ks_now_ms()};
    }
    int rc = serve_loop_run(l, err);
    free(l);
    return rc;
}

/* ------------------------------------------------- the listening socket */

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

#ifdef KEYSVC_TEST_HOOKS
static void on_test_close(int sig)
{
    (void)sig;
    ks_signer_close_sessions_requested = 1;
}
#endif

void ks_signer_install_test_hooks(void)
{
#ifdef KEYSVC_TEST_HOOKS
    const char *hooks = getenv("KEYSVC_TEST_HOOKS");
    if (hooks == NULL || strcmp(hooks, "1") != 0)
        return;
    struct sigaction sa = {.sa_handler = on_test_close};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    ks_warn("signer: test hooks are on (KEYSVC_TEST_HOOKS): for tests only");
#endif
}

/* Others may replace a socket in a directory they own or can write to
 * (the sticky bit does not protect against the owner): refuse such a
 * place. */
static int check_socket_dir(const char *path, ks_err *err)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct stat st;
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (stat(dir, &st) < 0)
        return ks_fail(err, "signer socket directory %s: %s", dir, strerror(errno));
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
        return ks_fail(err, "signer socket directory %s is writable by others (mode %03o): "
                            "use a directory only the signer's user can write to",
                       dir, (unsigned)(st.st_mode & 0777));
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return ks_fail(err, "signer socket directory %s belongs to uid %ld, not to the signer's "
                            "user or root",
                       dir, (long)st.st_uid);
    return 0;
}

/* One signer per socket path: "<path>.lock", locked for the signer's life
 * (closes the gap between another signer's bind and listen, and never
 * waits on a signer too busy to accept).  The file stays: removing a lock
 * file races with its next user. */
static int lock_socket_path(const char *path, ks_err *err)
{
    char lock_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
    snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return ks_fail(err, "%s: %s", lock_path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int busy = errno == EWOULDBLOCK;
        ks_fail(err, busy ? "a signer is already listening on %s (it holds %s)" : "%s: %s",
                busy ? path : lock_path, busy ? lock_path : strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* A socket file already at the path: refused if a signer answers on it,
 * removed if it is stale (nothing listens: ECONNREFUSED).  The probe does
 * not block: a signer whose queue is full (EAGAIN) is a live one. */
static int clear_stale_socket(const char *path, const struct sockaddr_un *addr, ks_err *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : ks_fail(err, "%s: %s", path, strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return ks_fail(err, "%s exists and is not a socket", path);
    int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (probe < 0)
        return ks_fail(err, "socket: %s", strerror(errno));
    int rc = connect(probe, (const struct sockaddr *)addr, sizeof(*addr));
    int saved = errno;
    close(probe);
    if (rc == 0 || saved == EAGAIN)
        return ks_fail(err, "a signer is already listening on %s", path);
    if (saved != ECONNREFUSED)
        return ks_fail(err, "%s: %s", path, strerror(saved));
    ks_info("signer: removing the stale socket %s", path);
    if (unlink(path) < 0 && errno != ENOENT)
        return ks_fail(err, "%s: %s", path, strerror(errno));
    return 0;
}

static int give_to_group(const char *path, const char *group, ks_err *err)
{
    struct group *g = getgrnam(group);
    if (g == NULL)
        return ks_fail(err, "signer.socket_group: no group \"%s\"", group);
    if (fchownat(AT_FDCWD, path, (uid_t)-1, g->gr_gid, AT_SYMLINK_NOFOLLOW) < 0)
        return ks_fail(err, "%s: cannot give the socket to group %s: %s", path, group,
                       strerror(errno));
    return 0;
}

/* The listening socket, mode 0600 (0660 for a group) from its creation on;
 * *made gets the socket file's identity, to remove only our own at exit. */
static int listen_on(const char *path, const char *group, struct stat *made, ks_err *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path))
        return ks_fail(err, "signer socket path %s is too long", path);
    memcpy(addr.sun_path, path, strlen(path) + 1);
    if (clear_stale_socket(path, &addr, err) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return ks_fail(err, "socket: %s", strerror(errno));
    mode_t old = umask(group ? 0117 : 0177);
    int rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old);
    if (rc < 0) {
        ks_fail(err, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* The group first: until listen() nobody can connect, whoever the
     * file's group is for that moment. */
    if (group != NULL && give_to_group(path, group, err) < 0) {
        /* err says why */
    } else if (lstat(path, made) < 0 || listen(fd, MAX_CLIENTS) < 0) {
        ks_fail(err, "%s: %s", path, strerror(errno));
    } else {
        return fd;
    }
    close(fd);
    unlink(path);
    return -1;
}

/* Removes the socket file if it is still the one we made. */
static void remove_own_socket(const char *path, const struct stat *made)
{
    struct stat st;
    if (lstat(path, &st) == 0 && st.st_dev == made->st_dev && st.st_ino == made->st_ino)
        unlink(path);
}

int ks_signer_serve_path(ks_signer_server *s, const char *path, const char *group, ks_err *err)
{
    struct stat made;
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return ks_fail(err, "signer socket path %s is too long", path);
    if (check_socket_dir(path, err) < 0)
        return -1;
    int lock_fd = lock_socket_path(path, err);
    int lfd = lock_fd < 0 ? -1 : listen_on(path, group, &made, err);
    serve_loop *l = lfd < 0 ? NULL : calloc(1, sizeof(*l));
    if (l == NULL) {
        if (lfd >= 0) {
            close(lfd);
            remove_own_socket(path, &made);
            ks_fail(err, "out of memory");
        }
        if (lock_fd >= 0)
            close(lock_fd);
        return -1;
    }
    struct sigaction sa = {.sa_handler = on_stop}, old_term, old_int;
    sigemptyset(&sa.sa_mask);
    stop_requested = 0;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    l->server = s;
    l->listen_fd = lfd;
    ks_info("signer: listening on %s", path);
    int rc = serve_loop_run(l, err);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    free(l);
    close(lfd);
    remove_own_socket(path, &made);
    close(lock_fd);
    ks_info("signer: stopped");
    return rc;
}
