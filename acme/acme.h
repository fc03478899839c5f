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
#include <time.h>

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

/* Drops the account key and URL: signed requests fail until the next
 * acme_client_set_account (for a signer whose strings are about to go). */
void acme_client_forget_account(acme_client *c);

/* Whether the directory offers an optional resource: "keyChange",
 * "revokeCert" or "renewalInfo". */
int acme_client_has(const acme_client *c, const char *resource);

/* meta.externalAccountRequired of the directory. */
int acme_client_eab_required(const acme_client *c);

/* External Account Binding (RFC 8555 7.3.4): the key id and the MAC key
 * (base64url, as the CA hands it out) the CA issued for this account. */
typedef struct acme_eab {
    const char *kid;
    const char *hmac_key;
    const char *alg; /* "HS256" (NULL), "HS384" or "HS512" */
} acme_eab;

/* newAccount with termsOfServiceAgreed, "mailto:" contacts and, when `eab`
 * is not NULL, the external account binding.  An existing account for the
 * key is found, not duplicated (the CA answers 200).  On success the
 * account URL is stored in the client and *created tells whether the CA
 * made a new one. */
int acme_account_register(acme_client *c, const char *const *emails, size_t n_emails,
                          const acme_eab *eab, int *created, ks_err *err);

/* newAccount with onlyReturnExisting: *found 1 (and the URL stored) when
 * the CA knows the key, 0 when it does not (accountDoesNotExist). */
int acme_account_find(acme_client *c, int *found, ks_err *err);

typedef struct acme_account_info {
    char *status; /* "valid", "deactivated", "revoked" */
    char **contact;
    size_t n_contact;
} acme_account_info;

void acme_account_info_clear(acme_account_info *a);

/* The account object (POST-as-GET to the account URL). */
int acme_account_fetch(acme_client *c, acme_account_info *out, ks_err *err);

/* Replaces the account's contacts with these "mailto:" addresses (none:
 * no contact); *out is the account as the CA now has it. */
int acme_account_update_contact(acme_client *c, const char *const *emails, size_t n,
                                acme_account_info *out, ks_err *err);

/* Deactivates the account (for good: RFC 8555 7.3.6). */
int acme_account_deactivate(acme_client *c, acme_account_info *out, ks_err *err);

/* keyChange (RFC 8555 7.3.5): the inner JWS signed by `new_key`, the outer
 * by the current key.  On success the client signs with new_key (copied;
 * its strings must outlive the client's use). */
int acme_account_key_change(acme_client *c, const acme_signer *new_key, ks_err *err);

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

/* newOrder for DNS identifiers.  `replaces` (NULL: none) is the RFC 9773
 * identifier of the certificate this one renews; it is sent only when the
 * CA offers renewalInfo. */
int acme_order_new(acme_client *c, const char *const *names, size_t n_names,
                   const char *replaces, acme_order *out, ks_err *err);

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

/* At most this many chains are taken from one certificate URL. */
#define ACME_MAX_CHAINS 8

/* The default chain first, then each alternate the CA links to
 * (rel="alternate", RFC 8555 7.4.2).  Returns the count with *pems newly
 * allocated (free with acme_chains_free); an alternate that cannot be
 * fetched is skipped with a warning. */
int acme_certificate_fetch_all(acme_client *c, const char *url, char ***pems, size_t *n,
                               ks_err *err);
void acme_chains_free(char **pems, size_t n);

/* revokeCert for a DER certificate with a CRLReason code (-1: none),
 * signed by the account key, or by `cert_key` (the certificate's own key,
 * its JWK in the header) when not NULL.  Returns 0, 1 when the CA says it
 * was revoked already, or -1. */
int acme_certificate_revoke(acme_client *c, const unsigned char *der, size_t der_len,
                            int reason, const acme_signer *cert_key, ks_err *err);

/* ACME Renewal Information (RFC 9773). */
typedef struct acme_renewal_info {
    time_t start; /* the suggested window */
    time_t end;
    char *explanation_url;  /* or NULL */
    long long retry_after_s; /* when to ask again (Retry-After; 0: not given) */
} acme_renewal_info;

void acme_renewal_info_clear(acme_renewal_info *ri);

/* The certificate identifier: base64url(authority key identifier) "."
 * base64url(serial number bytes); caller frees. */
char *acme_ari_cert_id_new(const unsigned char *der, size_t der_len, ks_err *err);

/* GETs renewalInfo/<cert_id>. */
int acme_renewal_info_fetch(acme_client *c, const char *cert_id, acme_renewal_info *out,
                            ks_err *err);

/* A moment chosen uniformly at random inside the window (RFC 9773 4.2). */
time_t acme_ari_pick(const acme_renewal_info *ri);

/* Parses an RFC 3339 date-time ("2025-01-02T03:04:05Z", fractions and
 * offsets allowed) into *out; -1 when malformed. */
int acme_rfc3339_parse(const char *text, time_t *out);

/* token "." thumbprint(account JWK); caller frees.  Refuses tokens that are
 * not plain base64url (they become file names and URL paths). */
char *acme_key_authorization_new(const acme_client *c, const char *token, ks_err *err);

/* The dns-01 TXT record value for a key authorization:
 * base64url(SHA-256(key authorization)) (RFC 8555 8.4); caller frees. */
char *acme_dns01_value_new(const char *key_authorization, ks_err *err);

#endif
