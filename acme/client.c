/*
 * ACME client: the directory and the account.
 */
#include "internal.h"

#include "b64.h"
#include "jws.h"
#include "ks_log.h"
#include "ks_util.h"

#include <stdlib.h>
#include <string.h>

acme_client *acme_client_new(const acme_client_options *opts, ks_err *err)
{
    if (!acme_url_ok(opts->directory_url)) {
        ks_fail(err, "ACME directory URL must be an https:// URL");
        return NULL;
    }
    acme_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    c->directory_url = strdup(opts->directory_url);
    c->max_wait_ms = opts->max_wait_ms > 0 ? opts->max_wait_ms : 120000;
    c->poll_timeout_ms = opts->poll_timeout_ms > 0 ? opts->poll_timeout_ms : 300000;
    c->http = acme_http_new(&opts->http, err);
    if (c->directory_url == NULL || c->http == NULL) {
        acme_client_free(c);
        return NULL;
    }
    return c;
}

void acme_client_free(acme_client *c)
{
    if (c == NULL)
        return;
    acme_http_free(c->http);
    free(c->directory_url);
    free(c->new_nonce_url);
    free(c->new_account_url);
    free(c->new_order_url);
    free(c->kid);
    free(c->thumbprint);
    free(c->nonce);
    free(c);
}

static int read_directory(acme_client *c, json_object *dir, ks_err *err)
{
    const char *url = c->directory_url;
    if (acme_json_dup_string(dir, "newNonce", 1, &c->new_nonce_url, url, err) < 0 ||
        acme_json_dup_string(dir, "newAccount", 1, &c->new_account_url, url, err) < 0 ||
        acme_json_dup_string(dir, "newOrder", 1, &c->new_order_url, url, err) < 0)
        return -1;
    /* Every resource URL must itself be https: the account key signs them. */
    const char *urls[] = {c->new_nonce_url, c->new_account_url, c->new_order_url};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
        if (!acme_url_ok(urls[i]))
            return ks_fail(err, "%s: directory lists a resource that is not a plain https URL",
                           url);
    return 0;
}

int acme_client_fetch_directory(acme_client *c, ks_err *err)
{
    acme_response resp;
    if (acme_get(c, c->directory_url, "application/json", ACME_MAX_BODY, &resp, err) < 0)
        return ks_failp(err, "fetching the ACME directory");
    int rc = -1;
    json_object *dir = NULL;
    if (resp.status != 200) {
        acme_fail_problem(&resp, "fetching the ACME directory", c->directory_url, err);
        goto out;
    }
    dir = acme_parse_json(&resp, c->directory_url, err);
    if (dir == NULL || read_directory(c, dir, err) < 0) {
        ks_failp(err, "reading the ACME directory");
        goto out;
    }
    rc = 0;
out:
    json_object_put(dir);
    acme_response_clear(&resp);
    return rc;
}

int acme_client_set_account(acme_client *c, const acme_signer *signer, const char *kid,
                            ks_err *err)
{
    char *thumb = acme_jwk_thumbprint_new(signer->jwk_json, err);
    if (thumb == NULL)
        return -1;
    char *kid_copy = kid ? strdup(kid) : NULL;
    if (kid && kid_copy == NULL) {
        free(thumb);
        return ks_fail(err, "out of memory");
    }
    free(c->thumbprint);
    free(c->kid);
    c->thumbprint = thumb;
    c->kid = kid_copy;
    c->signer = *signer;
    c->have_signer = 1;
    return 0;
}

const char *acme_client_account_url(const acme_client *c)
{
    return c->kid;
}

static char *new_account_payload(const char *const *emails, size_t n)
{
    json_object *req = json_object_new_object();
    json_object *contact = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        char *mailto = ks_strdup_printf("mailto:%s", emails[i]);
        if (mailto != NULL)
            json_object_array_add(contact, json_object_new_string(mailto));
        free(mailto);
    }
    json_object_object_add(req, "termsOfServiceAgreed", json_object_new_boolean(1));
    if (n > 0)
        json_object_object_add(req, "contact", contact);
    else
        json_object_put(contact);
    char *out = strdup(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(req);
    return out;
}

int acme_account_register(acme_client *c, const char *const *emails, size_t n_emails,
                          int *created, ks_err *err)
{
    if (c->new_account_url == NULL)
        return ks_fail(err, "the ACME directory has not been loaded");
    char *payload = new_account_payload(emails, n_emails);
    if (payload == NULL)
        return ks_fail(err, "out of memory");
    /* newAccount is always signed with the JWK, never a kid. */
    char *saved_kid = c->kid;
    c->kid = NULL;
    acme_response resp;
    int rc = acme_post(c, c->new_account_url, payload, NULL, ACME_MAX_BODY, &resp, err);
    c->kid = saved_kid;
    free(payload);
    if (rc < 0)
        return ks_failp(err, "registering the ACME account");
    rc = -1;
    if (resp.status != 200 && resp.status != 201) {
        acme_fail_problem(&resp, "registering the ACME account", c->new_account_url, err);
        goto out;
    }
    if (!acme_url_ok(resp.location)) {
        ks_fail(err, "registering the ACME account: %s: no valid https Location in the response",
                c->new_account_url);
        goto out;
    }
    free(c->kid);
    c->kid = strdup(resp.location);
    if (c->kid == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    if (created)
        *created = resp.status == 201;
    rc = 0;
out:
    acme_response_clear(&resp);
    return rc;
}

char *acme_key_authorization_new(const acme_client *c, const char *token, ks_err *err)
{
    if (c->thumbprint == NULL) {
        ks_fail(err, "no account key set");
        return NULL;
    }
    if (!b64url_is_token(token)) {
        char *esc = ks_escape_new(token ? token : "", (size_t)-1);
        ks_fail(err, "challenge token \"%s\" is not base64url; refused", esc ? esc : "?");
        free(esc);
        return NULL;
    }
    char *ka = ks_strdup_printf("%s.%s", token, c->thumbprint);
    if (ka == NULL)
        ks_fail(err, "out of memory");
    return ka;
}
