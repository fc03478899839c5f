/*
 * Internals shared by the files of acme/: the client struct, the request path
 * and strict JSON accessors.  Not part of the library's interface.
 */
#ifndef ACME_INTERNAL_H
#define ACME_INTERNAL_H

#include "acme.h"

#include <json-c/json.h>

struct acme_client {
    acme_http *http;
    char *directory_url;
    /* Directory resources (owned). */
    char *new_nonce_url;
    char *new_account_url;
    char *new_order_url;
    char *key_change_url;   /* optional resources: NULL when the CA lacks them */
    char *revoke_cert_url;
    char *renewal_info_url;
    char *terms_of_service; /* meta.termsOfService */
    int eab_required;       /* meta.externalAccountRequired */
    /* Account. */
    acme_signer signer;
    int have_signer;
    char *kid;
    char *thumbprint;
    /* The next nonce to use, taken from the last response (owned). */
    char *nonce;
    long max_wait_ms;
    long poll_timeout_ms;
};

/* Longest URL accepted from a server. */
#define ACME_MAX_URL 2048

/* 1 when a URL from the server is acceptable: https://, printable ASCII
 * without spaces (so it can be logged and stored as it is), bounded. */
int acme_url_ok(const char *url);

/* GET with the retry policy for transient failures and 5xx (no nonce). */
int acme_get(acme_client *c, const char *url, const char *accept, size_t max_body,
             acme_response *resp, ks_err *err);

/* Signed POST with the full retry policy.  payload NULL = POST-as-GET.  When
 * the client has no account URL yet the JWS carries the JWK.  A response is
 * returned for any HTTP status; callers turn >= 400 into errors with
 * acme_fail_problem().  On -1, *resp is empty (safe to clear). */
int acme_post(acme_client *c, const char *url, const char *payload, const char *accept,
              size_t max_body, acme_response *resp, ks_err *err);

/* The same, signed by `signer` with `kid` (NULL: the signer's JWK in the
 * header): newAccount, and revocation by the certificate's own key. */
int acme_post_signed(acme_client *c, const acme_signer *signer, const char *kid,
                     const char *url, const char *payload, const char *accept, size_t max_body,
                     acme_response *resp, ks_err *err);

/* 1 when the response is a problem document of type
 * urn:ietf:params:acme:error:<name>. */
int acme_problem_is(const acme_response *resp, const char *name);

/* The plain JSON text of an object as requests carry it (caller frees), or
 * NULL. */
char *acme_json_text_new(json_object *obj);

/* Fills err with "<what>: <url>: HTTP <status>: <type>: <detail>" from a
 * problem document (escaped), or the status alone; returns -1. */
int acme_fail_problem(const acme_response *resp, const char *what, const char *url, ks_err *err);

/* One-line escaped summary of a problem object (type suffix, detail and
 * subproblems); caller frees. */
char *acme_problem_summary_new(json_object *problem);

/* Parses a JSON object response after checking Content-Type; caller puts. */
json_object *acme_parse_json(const acme_response *resp, const char *url, ks_err *err);

/* Type-checked member access.  A present member of the wrong type is always
 * an error; a missing one is an error only when `required`.  *out points into
 * `obj` (not a copy). */
int acme_json_string(json_object *obj, const char *key, int required, const char **out,
                     const char *url, ks_err *err);
int acme_json_array(json_object *obj, const char *key, int required, json_object **out,
                    const char *url, ks_err *err);

/* Copies a string member into *dst (freeing the old value). */
int acme_json_dup_string(json_object *obj, const char *key, int required, char **dst,
                         const char *url, ks_err *err);

/* Milliseconds to wait from a Retry-After value (seconds or HTTP-date), or -1
 * when absent or unparseable. */
long long acme_retry_after_ms(const char *value);

/* Waits before the next poll: the caller's backoff interval (which it then
 * grows), or the server's Retry-After when that is longer.  Returns -1 with err set
 * when the deadline would be passed. */
int acme_poll_sleep(const acme_response *resp, long long *interval_ms, long long deadline_ms,
                    const char *what, ks_err *err);

#endif
