/*
 * The machinery both built-in challenge responders (tls-alpn-01, http-01)
 * share: a listening socket made before the fork, a child that serves one
 * connection at a time with a deadline, readiness over a pipe, stop with
 * SIGTERM then SIGKILL.  What is said on a connection is the responder's
 * own (its ops); this knows nothing of TLS or HTTP.  Internal to acme/.
 *
 * The child never returns into the worker's code.  It drops the worker's
 * signal handlers and descriptors, exits on SIGTERM or when the worker is
 * gone (the pipe's read end closes), and ends in _exit.
 */
#ifndef ACME_RESPONDER_CHILD_H
#define ACME_RESPONDER_CHILD_H

#include "ks_err.h"

#include <sys/types.h>

/* What one kind of responder does in its child.  `arg` is the responder's
 * own state: fork gives the child a copy, so the parent keeps (and frees)
 * its own, and the child frees its copy with release(). */
typedef struct responder_child_ops {
    const char *name;    /* "tls-alpn-01", "http-01": begins its log lines */
    int conn_timeout_ms; /* each connection, from accept to its end, gets this long */
    /* Before the child reports that it is ready: make what serving needs and
     * log what is served on `port`.  0, or -1 with err, which then becomes
     * the reason responder_child_start() gives. */
    int (*prepare)(void *arg, int port, ks_err *err);
    /* One accepted connection: fd is non-blocking and closed afterwards by
     * the caller; `who` is the peer's address, for log lines.  Waits go
     * through responder_child_wait_fd(), so that a stop ends them. */
    void (*serve)(void *arg, int fd, long long deadline, const char *who);
    /* Frees the child's copy of arg before it exits, so that valgrind finds
     * no leak in the child either. */
    void (*release)(void *arg);
} responder_child_ops;

/* A running child; the responder that embeds it owns the memory. */
typedef struct responder_child {
    const responder_child_ops *ops;
    pid_t pid;
    int port;    /* the port listened on (the OS's choice when 0 was asked for) */
    int sync_fd; /* read end of the child's pipe; closing it also ends the child */
} responder_child;

/* Listens on addr:port (numeric IPv4 or IPv6; port 0: any), before the
 * fork, so that an address in use is the caller's error; forks the child
 * and waits until it reports that it is ready.  0 with *child filled in, or
 * -1 with err set and no child left behind.  `ops` must outlive the child
 * (a static const); `arg` stays the caller's. */
int responder_child_start(responder_child *child, const responder_child_ops *ops, void *arg,
                          const char *addr, int port, ks_err *err);

/* SIGTERM to the child, waits for it (SIGKILL if it has not gone within a
 * few seconds) and closes the pipe; *child itself is the caller's to free. */
void responder_child_stop(responder_child *child);

/* In the child: waits until fd is ready for `events` (POLLIN, POLLOUT).
 * 0, also on POLLHUP/POLLERR (the read or write that follows says what
 * happened); -1 with err once the deadline has passed or a stop came. */
int responder_child_wait_fd(int fd, short events, long long deadline, ks_err *err);

#endif
