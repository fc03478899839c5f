/*
 * http-01 (RFC 8555 section 8.3) without a web server: a small HTTP/1.1
 * responder in a forked child process, for hosts that have nothing listening
 * on port 80 (what lego's --http --http.port does).
 *
 * The worker that calls it is single-threaded and must keep polling the CA
 * while the CA validates, so the responder runs in a child of its own.  It
 * answers GET (and HEAD) of /.well-known/acme-challenge/<token> for the
 * tokens it was given with the key authorization, as
 * application/octet-stream; anything else gets 404, 405, 400, 414 or 431.
 * The Host header is not looked at beyond HTTP/1.1's rule that there is
 * exactly one: the validator sends the identifier there, and the token is
 * what selects the answer.
 *
 * The child serves one connection (one request, then Connection: close) at
 * a time with a short deadline per connection, and exits on SIGTERM or when
 * its parent goes away.
 */
#ifndef ACME_HTTP01_RESPONDER_H
#define ACME_HTTP01_RESPONDER_H

#include "ks_err.h"

#include <stddef.h>

/* More than this in one responder is refused: an order has at most a few
 * identifiers, each with one token. */
#define ACME_HTTP01_MAX_CHALLENGES 100

/* Each connection (accept to the last byte of the answer) gets this long,
 * so that a client that stalls holds the validation up for no longer. */
#define ACME_HTTP01_CONN_TIMEOUT_MS 3000

/* The request line and headers are read up to this size; a request whose
 * head does not fit gets 414 (request line) or 431 (headers). */
#define ACME_HTTP01_HEAD_MAX 8192

typedef struct acme_http01_challenge {
    const char *token;             /* base64url, as the CA sent it */
    const char *key_authorization; /* token "." thumbprint */
} acme_http01_challenge;

typedef struct acme_http01_responder acme_http01_responder;

/* Serves the challenges on addr:port until stopped, in a forked child.  addr
 * is a numeric IPv4 or IPv6 address ("0.0.0.0" or "::" for all); port 0 lets
 * the OS pick one.  The listening socket is made here, before the fork, so
 * that an address in use is reported to the caller.  Returns once the child
 * accepts connections, or NULL with `err` set (a token that is not
 * base64url, a key authorization that is not "<token>.<base64url>", a token
 * listed twice, too many challenges).  The strings in `ch` are copied; the
 * caller frees the responder with acme_http01_stop(). */
acme_http01_responder *acme_http01_start(const char *addr, int port,
                                         const acme_http01_challenge *ch, size_t n, ks_err *err);

/* The port the responder listens on. */
int acme_http01_port(const acme_http01_responder *r);

/* SIGTERM to the child, waits for it (SIGKILL if it has not gone within a few
 * seconds) and frees `r`.  NULL is accepted. */
void acme_http01_stop(acme_http01_responder *r);

#endif
