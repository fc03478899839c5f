/*
 * tls-alpn-01 (RFC 8737, and RFC 8738 for IP identifiers): a small TLS
 * responder in a forked child process.
 *
 * The worker that calls it is single-threaded and must keep polling the CA
 * while the CA validates, so the responder runs in a child of its own.  The
 * child negotiates only ALPN "acme-tls/1" and answers each SNI name with a
 * self-signed certificate for that one identifier, carrying the critical
 * acmeIdentifier extension (SHA-256 of the key authorization).  Its keys are
 * throwaway P-256 software keys made in the child: never a token key, never
 * written anywhere.  Anything else (no ALPN, another protocol, an unknown or
 * missing SNI) ends in a failed handshake.
 *
 * The child serves one connection at a time with a short deadline per
 * connection, and exits on SIGTERM or when its parent goes away.
 */
#ifndef ACME_TLSALPN01_H
#define ACME_TLSALPN01_H

#include "ks_err.h"

#include <stddef.h>

/* More than this in one responder is refused: an order has at most a few
 * identifiers, and each costs a key and a certificate. */
#define ACME_TLSALPN_MAX_CHALLENGES 100

/* Each connection (TCP accept to the end of the handshake) gets this long, so
 * that a client that stalls holds the validation up for no longer. */
#define ACME_TLSALPN_CONN_TIMEOUT_MS 3000

typedef struct acme_tlsalpn_challenge {
    const char *identifier;        /* DNS name (no "*."), or an IP address literal (RFC 8738) */
    const char *key_authorization; /* token "." thumbprint, both base64url */
} acme_tlsalpn_challenge;

typedef struct acme_tlsalpn_responder acme_tlsalpn_responder;

/* Serves the challenges on addr:port until stopped, in a forked child.  addr
 * is a numeric IPv4 or IPv6 address ("0.0.0.0" or "::" for all); port 0 lets
 * the OS pick one.  The listening socket is made here, before the fork, so
 * that an address in use is reported to the caller.  Returns once the child
 * has its certificates and accepts connections, or NULL with `err` set.  The
 * strings in `ch` are copied; the caller frees the responder with
 * acme_tlsalpn_stop(). */
acme_tlsalpn_responder *acme_tlsalpn_start(const char *addr, int port,
                                           const acme_tlsalpn_challenge *ch, size_t n,
                                           ks_err *err);

/* The port the responder listens on. */
int acme_tlsalpn_port(const acme_tlsalpn_responder *r);

/* SIGTERM to the child, waits for it (SIGKILL if it has not gone within a few
 * seconds) and frees `r`.  NULL is accepted. */
void acme_tlsalpn_stop(acme_tlsalpn_responder *r);

/* The name a validator sends in SNI for `identifier`: the DNS name in lower
 * case, or for an IP address its reverse-DNS name ("4.3.2.1.in-addr.arpa",
 * nibbles under "ip6.arpa"; RFC 8738 section 6).  Newly allocated (caller
 * frees); NULL with `err` set when the identifier is neither a plausible DNS
 * name nor an IP literal. */
char *acme_tlsalpn_sni_new(const char *identifier, ks_err *err);

#endif
