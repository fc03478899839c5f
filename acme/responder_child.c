#include "responder_child.h"

#include "ks_log.h"
#include "ks_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long stop waits for the child before it kills it; a child under
 * valgrind needs a moment for its leak check. */
#define STOP_WAIT_MS 5000

/* How long start waits for the child to report that it serves: ample for
 * tls-alpn-01's ACME_TLSALPN_MAX_CHALLENGES keys and certificates under
 * valgrind.  A child that takes longer is stuck, and the worker must not
 * wait on it for ever. */
#define START_WAIT_MS 30000

/* ---- the child's signals and descriptors -------------------------------- */

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* The worker's handlers would run the worker's logic in this copy of it, so
 * none is kept.  SIGTERM stops the child; it stays blocked (as it was since
 * before fork, so none is lost) except inside ppoll.  SIGPIPE: a client that
 * hangs up must not kill the responder.  SIGINT and SIGHUP from a terminal
 * are the worker's to act on; it stops us, or its exit does. */
static void child_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_stop_signal;
    (void)sigaction(SIGTERM, &sa, NULL);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    (void)sigprocmask(SIG_SETMASK, &term, NULL);
}

static void close_span(int first, int last)
{
    if (first < 3)
        first = 3;
    if (first > last)
        return;
    if (close_range((unsigned)first, (unsigned)last, 0) == 0)
        return;
    /* Kernels before 5.9: one by one, up to a sane bound. */
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = first; fd <= last && fd < max; fd++)
        (void)close(fd);
}

/* fork copied every descriptor of the worker (its CA connection, database
 * and token sockets, other responders' pipes).  Without an exec, close-on-
 * exec does nothing, so they are closed here: the child must not keep a
 * peer waiting on a connection the worker closed.  stdin/out/err stay. */
static void close_fds_except(int a, int b)
{
    int lo = a < b ? a : b, hi = a < b ? b : a;
    close_span(3, lo - 1);
    close_span(lo + 1, hi - 1);
    close_span(hi + 1, INT_MAX);
}

/* ---- waiting in the child ----------------------------------------------- */

/* ppoll with every signal open, so SIGTERM interrupts any wait.  ppoll
 * runs the handler only when it had to wait: when a descriptor is ready at
 * once (a client always sending, a listener stuck in POLLIN) it returns
 * with SIGTERM still pending and blocked, so that is looked for too, or a
 * busy responder would never stop. */
static int poll_open(struct pollfd *p, nfds_t n, long long timeout_ms)
{
    sigset_t none, pending;
    sigemptyset(&none);
    struct timespec ts = {.tv_sec = (time_t)(timeout_ms / 1000),
                          .tv_nsec = (long)(timeout_ms % 1000) * 1000000L};
    int rc = ppoll(p, n, timeout_ms < 0 ? NULL : &ts, &none);
    int saved = errno;
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGTERM) == 1)
        stop_requested = 1;
    errno = saved;
    return rc;
}

int responder_child_wait_fd(int fd, short events, long long deadline, ks_err *err)
{
    for (;;) {
        if (stop_requested)
            return ks_fail(err, "stopping");
        long long left = deadline - ks_now_ms();
        if (left <= 0)
            return ks_fail(err, "timed out");
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll_open(&p, 1, left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return ks_fail(err, "poll: %s", strerror(errno));
    }
}

/* ---- serving (in the child) --------------------------------------------- */

static void describe_peer(const struct sockaddr_storage *ss, char *buf, size_t size)
{
    const void *a = ss->ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
    if (inet_ntop(ss->ss_family, a, buf, (socklen_t)size) == NULL)
        snprintf(buf, size, "?");
}

/* One client, from accept to the end of what ops->serve says, within the
 * connection deadline. */
static void serve_one(const responder_child_ops *ops, void *arg, int listen_fd)
{
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    /* Non-blocking: the client may be gone again by the time we accept. */
    int fd = accept4(listen_fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    long long deadline = ks_now_ms() + ops->conn_timeout_ms;
    char who[INET6_ADDRSTRLEN];
    describe_peer(&peer, who, sizeof(who));
    ops->serve(arg, fd, deadline, who);
    close(fd);
}

/* Until SIGTERM, or until the parent is gone: the write end of a pipe
 * reports POLLERR once its read end has closed everywhere.  The exit status
 * of the child. */
static int serve(const responder_child_ops *ops, void *arg, int listen_fd, int sync_fd)
{
    while (!stop_requested) {
        struct pollfd p[2] = {{.fd = listen_fd, .events = POLLIN}, {.fd = sync_fd, .events = 0}};
        int n = poll_open(p, 2, -1);
        if (n < 0 && errno != EINTR) {
            ks_error("%s: poll: %s", ops->name, strerror(errno));
            return 1;
        }
        if (n <= 0 || stop_requested)
            continue;
        if (p[1].revents & (POLLERR | POLLHUP)) {
            ks_info("%s: the worker is gone; responder stops", ops->name);
            return 0;
        }
        if (p[0].revents & POLLIN)
            serve_one(ops, arg, listen_fd);
    }
    return 0;
}

/* Tells the parent that the child is ready (msg empty) or why it is not.
 * One write of at most PIPE_BUF bytes: it arrives whole or not at all. */
_Static_assert(sizeof(ks_err) <= PIPE_BUF, "the child's report must be one atomic write");

static int report(int sync_fd, const ks_err *why)
{
    ks_err msg = {0};
    if (why != NULL)
        memcpy(&msg, why, sizeof(msg));
    ssize_t n;
    do {
        n = write(sync_fd, &msg, sizeof(msg));
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(msg) ? 0 : -1;
}

/* The child never returns into the worker's code: it ends in _exit, which
 * also keeps it from running the worker's atexit handlers and flushing
 * stdio buffers it inherited. */
static _Noreturn void child_main(const responder_child_ops *ops, void *arg, int listen_fd,
                                 int sync_fd, int port)
{
    child_signals();
    close_fds_except(listen_fd, sync_fd);
    ks_err err = {0};
    int status = 1;
    if (ops->prepare(arg, port, &err) < 0)
        (void)report(sync_fd, &err);
    else if (report(sync_fd, NULL) == 0)
        status = serve(ops, arg, listen_fd, sync_fd);
    ops->release(arg);
    close(listen_fd);
    close(sync_fd);
    _exit(status);
}

/* ---- the listening socket (in the parent) -------------------------------- */

static int sockaddr_for(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (addr != NULL && inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof(*v4);
    } else if (addr != NULL && inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*v6);
    } else {
        return -1;
    }
    return 0;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

/* socket, SO_REUSEADDR, bind, listen; -1 with errno and the failed step. */
static int open_listener(const struct sockaddr_storage *ss, socklen_t len, const char **step)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        *step = "socket";
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        *step = "SO_REUSEADDR";
    else if (bind(fd, (const struct sockaddr *)ss, len) < 0)
        *step = "bind";
    else if (listen(fd, 32) < 0)
        *step = "listen";
    else
        return fd;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    errno = saved;
    return -1;
}

/* The listening socket, made before the fork so that the caller hears of an
 * address in use.  SO_REUSEADDR: a responder started again right after the
 * last one must not wait for its connections' TIME_WAIT.  Non-blocking for
 * accept (see serve_one); a backlog, since validators from several vantage
 * points connect at once.  Returns the descriptor; *port becomes the port. */
static int listen_on(const char *addr, int *port, ks_err *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *step = "";
    if (*port < 0 || *port > 65535)
        return ks_fail(err, "port %d out of range", *port);
    if (sockaddr_for(addr, *port, &ss, &len) < 0) {
        char *esc = addr ? ks_escape_new(addr, (size_t)-1) : NULL;
        ks_fail(err, "\"%s\" is not a numeric IP address", esc ? esc : "(null)");
        free(esc);
        return -1;
    }
    int fd = open_listener(&ss, len, &step);
    if (fd < 0)
        return ks_fail(err, "cannot listen on %s port %d: %s: %s", addr, *port, step,
                       strerror(errno));
    *port = bound_port(fd);
    if (*port <= 0) {
        close(fd);
        return ks_fail(err, "%s: getsockname: %s", addr, strerror(errno));
    }
    return fd;
}

/* ---- the child's life (in the parent) ----------------------------------- */

/* Reads len bytes from fd before the deadline: 0, or -1 with err set. */
static int read_within(int fd, void *buf, size_t len, long long deadline, ks_err *err)
{
    size_t got = 0;
    while (got < len) {
        long long left = deadline - ks_now_ms();
        if (left <= 0)
            return ks_fail(err, "the responder process was not ready within %d ms", START_WAIT_MS);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno != EINTR)
            return ks_fail(err, "poll: %s", strerror(errno));
        if (n <= 0)
            continue;
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ks_fail(err, "reading from the responder process: %s", strerror(errno));
        if (r == 0)
            return ks_fail(err, "the responder process ended before it was ready");
        got += (size_t)r;
    }
    return 0;
}

/* Reads the child's report: 0 once it is ready, -1 with its reason. */
static int await_child(int fd, ks_err *err)
{
    ks_err msg = {0};
    if (read_within(fd, &msg, sizeof(msg), ks_now_ms() + START_WAIT_MS, err) < 0)
        return -1;
    msg.msg[sizeof(msg.msg) - 1] = '\0';
    return msg.msg[0] ? ks_fail(err, "%s", msg.msg) : 0;
}

/* waitpid, for at most wait_ms before SIGKILL; 0 with *status, or -1 when
 * there is no such child (the caller ignored SIGCHLD). */
static int reap(const responder_child *child, long long wait_ms, int *status)
{
    long long deadline = ks_now_ms() + wait_ms;
    for (;;) {
        pid_t got = waitpid(child->pid, status, WNOHANG);
        if (got == child->pid)
            return 0;
        if (got < 0 && errno != EINTR)
            return -1;
        if (got == 0 && ks_now_ms() >= deadline) {
            ks_warn("%s responder (pid %d) did not stop; killing it", child->ops->name,
                    (int)child->pid);
            (void)kill(child->pid, SIGKILL);
            deadline = LLONG_MAX;
        }
        if (got == 0)
            ks_sleep_ms(10);
    }
}

/* SIGTERM, then reap (SIGKILL after STOP_WAIT_MS).  The pid is still our
 * unreaped child, so it cannot have been reused even if it has exited.
 * Returns the wait status, or -1 when there was none to collect. */
static int stop_child(const responder_child *child)
{
    int status = 0;
    (void)kill(child->pid, SIGTERM);
    return reap(child, STOP_WAIT_MS, &status) == 0 ? status : -1;
}

/* How a child that was serving ended, when that was not a clean exit. */
static void log_end(const responder_child *child, int status)
{
    if (status < 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
        return;
    if (WIFEXITED(status))
        ks_warn("%s responder (pid %d) ended with exit status %d", child->ops->name,
                (int)child->pid, WEXITSTATUS(status));
    else
        ks_warn("%s responder (pid %d) ended with signal %d", child->ops->name, (int)child->pid,
                WTERMSIG(status));
}

/* Forks the child; on success child->pid and child->sync_fd are set and the
 * child has reported that it is ready. */
static int spawn(responder_child *child, void *arg, int listen_fd, ks_err *err)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return ks_fail(err, "pipe: %s", strerror(errno));
    /* SIGTERM stays blocked in the child until it has its handler: a stop
     * that comes early is delayed, never lost or run by our handler. */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    pid_t pid = fork();
    if (pid == 0)
        child_main(child->ops, arg, listen_fd, pipefd[1], child->port);
    int saved = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        return ks_fail(err, "fork: %s", strerror(saved));
    }
    child->pid = pid;
    child->sync_fd = pipefd[0];
    if (await_child(child->sync_fd, err) == 0)
        return 0;
    /* It failed, crashed, or is stuck: in every case it must not outlive
     * this.  A crash leaves only "ended before it was ready": add the signal
     * (unless it is one of ours). */
    int status = stop_child(child);
    close(child->sync_fd);
    child->sync_fd = -1;
    if (status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM &&
        WTERMSIG(status) != SIGKILL)
        ks_failp(err, "responder process killed by signal %d", WTERMSIG(status));
    return -1;
}

int responder_child_start(responder_child *child, const responder_child_ops *ops, void *arg,
                          const char *addr, int port, ks_err *err)
{
    child->ops = ops;
    child->pid = -1;
    child->port = port;
    child->sync_fd = -1;
    int listen_fd = listen_on(addr, &child->port, err);
    if (listen_fd < 0)
        return -1;
    int rc = spawn(child, arg, listen_fd, err);
    close(listen_fd); /* the child has its own copy */
    if (rc == 0)
        ks_debug("%s responder: pid %d, port %d", ops->name, (int)child->pid, child->port);
    return rc;
}

void responder_child_stop(responder_child *child)
{
    log_end(child, stop_child(child));
    close(child->sync_fd);
    child->sync_fd = -1;
}
