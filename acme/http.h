/*
 * acme_http: one HTTPS exchange with an ACME server, nothing more.
 *
 * Bounded response size, connect and total timeouts, no redirects, HTTPS
 * only, the headers ACME needs captured.  Retrying is not done here: the
 * policy lives in request.c.
 */
#ifndef ACME_HTTP_H
#define ACME_HTTP_H

#include "ks_err.h"

#include <stddef.h>

#define ACME_MAX_BODY (1024 * 1024)
#define ACME_MAX_CERT_BODY (4 * 1024 * 1024)
/* Link headers kept per response, in bytes (the rest is dropped). */
#define ACME_MAX_LINKS_LEN (64 * 1024)

typedef struct acme_http acme_http;

typedef struct acme_http_options {
    const char *ca_file;      /* PEM bundle to trust; NULL = system store */
    long connect_timeout_ms;  /* 0 = 10 s */
    long total_timeout_ms;    /* 0 = 60 s */
    const char *user_agent;   /* NULL = "keysvc/<version>" */
} acme_http_options;

typedef struct acme_response {
    long status;
    char *body; /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    char *content_type;
    char *location;
    char *replay_nonce;
    char *retry_after;
    char *link; /* every Link header, joined with ", " (RFC 9110 5.3) */
} acme_response;

/* Kinds of failure below HTTP, so that the retry policy can decide. */
enum acme_http_failure {
    ACME_HTTP_OK = 0,
    ACME_HTTP_NOT_SENT = 1,  /* no connection: the server saw nothing, safe to retry */
    ACME_HTTP_TRANSIENT = 2, /* reset or timeout after sending: the server may have acted */
    ACME_HTTP_FATAL = 3,     /* TLS verification, bad URL, oversized body: do not retry */
};

acme_http *acme_http_new(const acme_http_options *opts, ks_err *err);
void acme_http_free(acme_http *h);

/* Performs one request.  *resp is always initialised (empty on failure).  method is "GET", "HEAD" or "POST" (body sent with
 * Content-Type application/jose+json).  `max_body` bounds the response.
 * Returns ACME_HTTP_OK and fills *resp (free with acme_response_clear), or a
 * failure kind with err naming the URL. */
int acme_http_request(acme_http *h, const char *method, const char *url, const char *body,
                      const char *accept, size_t max_body, acme_response *resp, ks_err *err);

void acme_response_clear(acme_response *resp);

#endif
