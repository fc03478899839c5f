/*
 * acme: an RFC 8555 client that signs through an acme_signer.
 *
 * It knows nothing of PKCS#11 or SQL.  Every request goes through one request
 * path (request.c) that owns the retry policy: badNonce is retried with the
 * nonce from the error response, 5xx and rateLimited wait for Retry-After
 * within a bounded total wait, dropped connections back off with jitter.
 *
 * Strings returned in structs are owned by the struct and freed by its
 * _clear() function.  Text that came from the server is escaped before it
 * reaches an error message or a log.
 */
#ifndef ACME_ACME_H
#define ACME_ACME_H

#include "http.h"
#include "signer.h"

#include <stddef.h>

typedef struct acme_client acme_client;

typedef struct acme_client_options {
    const char *directory_url;
    acme_http_options http;
    long max_wait_ms;     /* retry budget per request (Retry-After, backoff); 0 = 120 s */
    long poll_timeout_ms; /* how long an authorization or order may stay pending; 0 = 300 s */
} acme_client_options;

acme_client *acme_client_new(const acme_client_options *opts, ks_err *err);
void acme_client_free(acme_client *c);

/* GETs the directory and checks it has the resources this client needs. */
int acme_client_fetch_directory(acme_client *c, ks_err *err);

/* Sets the account key and, once known, the account URL ("kid").  The signer
 * is copied; the strings it points to must outlive the client's use of it. */
int acme_client_set_account(acme_client *c, const acme_signer *signer, const char *kid,
                            ks_err *err);
const char *acme_client_account_url(const acme_client *c);

/* newAccount with termsOfServiceAgreed and "mailto:" contacts.  An existing
 * account for the key is found, not duplicated (the CA answers 200).  On
 * success the account URL is stored in the client and *created tells whether
 * the CA made a new one. */
int acme_account_register(acme_client *c, const char *const *emails, size_t n_emails,
                          int *created, ks_err *err);

typedef struct acme_order {
    char *url;
    char *status;
    char *finalize_url;
    char *certificate_url;
    char **authz_urls;
    size_t n_authz;
} acme_order;

typedef struct acme_challenge {
    char *type;
    char *url;
    char *token;
    char *status;
} acme_challenge;

typedef struct acme_authz {
    char *url;
    char *identifier; /* the DNS name, without "*." */
    int wildcard;
    char *status;
    acme_challenge *challenges;
    size_t n_challenges;
    char *problem; /* one-line summary of a failed challenge's error, if any */
} acme_authz;

void acme_order_clear(acme_order *o);
void acme_authz_clear(acme_authz *a);

/* newOrder for DNS identifiers. */
int acme_order_new(acme_client *c, const char *const *names, size_t n_names, acme_order *out,
                   ks_err *err);

/* Refreshes an order from its URL (POST-as-GET). */
int acme_order_fetch(acme_client *c, acme_order *o, ks_err *err);

int acme_authz_fetch(acme_client *c, const char *url, acme_authz *out, ks_err *err);

/* The challenge of the given type ("http-01"), or NULL. */
const acme_challenge *acme_authz_challenge(const acme_authz *a, const char *type);

/* Tells the CA the challenge is ready (POST {}). */
int acme_challenge_respond(acme_client *c, const acme_challenge *ch, ks_err *err);

/* Polls the authorization until it leaves "pending"; fails with the CA's
 * detail, naming the identifier, unless it became "valid". */
int acme_authz_wait(acme_client *c, acme_authz *a, ks_err *err);

/* Finalizes with a DER CSR and polls until the order is valid (handles
 * "processing" and Retry-After, also on the finalize answer); *o is
 * refreshed.  When the finalize request fails in a way that leaves doubt,
 * the order is fetched: one the CA already took is polled, not re-sent. */
int acme_order_finalize(acme_client *c, acme_order *o, const unsigned char *csr_der,
                        size_t csr_len, ks_err *err);

/* Downloads the certificate chain (PEM, leaf first).  *pem is newly
 * allocated (caller frees). */
int acme_certificate_fetch(acme_client *c, const char *url, char **pem, ks_err *err);

/* token "." thumbprint(account JWK); caller frees.  Refuses tokens that are
 * not plain base64url (they become file names and URL paths). */
char *acme_key_authorization_new(const acme_client *c, const char *token, ks_err *err);

#endif
