/*
 * ACME client: the directory and the account.
 */
#include "internal.h"

#include "b64.h"
#include "jws.h"
#include "ks_log.h"
#include "ks_util.h"

#include <openssl/evp.h>
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
    free(c->key_change_url);
    free(c->revoke_cert_url);
    free(c->renewal_info_url);
    free(c->terms_of_service);
    free(c->kid);
    free(c->thumbprint);
    free(c->nonce);
    free(c);
}

/* meta: the terms of service and whether accounts need EAB. */
static int read_meta(acme_client *c, json_object *dir, ks_err *err)
{
    json_object *meta = NULL, *eab = NULL;
    if (!json_object_object_get_ex(dir, "meta", &meta) || meta == NULL)
        return 0;
    if (!json_object_is_type(meta, json_type_object))
        return ks_fail(err, "%s: \"meta\" is not an object", c->directory_url);
    if (acme_json_dup_string(meta, "termsOfService", 0, &c->terms_of_service, c->directory_url,
                             err) < 0)
        return -1;
    if (json_object_object_get_ex(meta, "externalAccountRequired", &eab) && eab != NULL) {
        if (!json_object_is_type(eab, json_type_boolean))
            return ks_fail(err, "%s: meta.externalAccountRequired is not a boolean",
                           c->directory_url);
        c->eab_required = json_object_get_boolean(eab);
    }
    return 0;
}

static int read_directory(acme_client *c, json_object *dir, ks_err *err)
{
    const char *url = c->directory_url;
    if (acme_json_dup_string(dir, "newNonce", 1, &c->new_nonce_url, url, err) < 0 ||
        acme_json_dup_string(dir, "newAccount", 1, &c->new_account_url, url, err) < 0 ||
        acme_json_dup_string(dir, "newOrder", 1, &c->new_order_url, url, err) < 0 ||
        acme_json_dup_string(dir, "keyChange", 0, &c->key_change_url, url, err) < 0 ||
        acme_json_dup_string(dir, "revokeCert", 0, &c->revoke_cert_url, url, err) < 0 ||
        acme_json_dup_string(dir, "renewalInfo", 0, &c->renewal_info_url, url, err) < 0 ||
        read_meta(c, dir, err) < 0)
        return -1;
    /* Every resource URL must itself be https: the account key signs them. */
    const char *urls[] = {c->new_nonce_url,   c->new_account_url, c->new_order_url,
                          c->key_change_url,  c->revoke_cert_url, c->renewal_info_url};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
        if (urls[i] != NULL && !acme_url_ok(urls[i]))
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

void acme_client_forget_account(acme_client *c)
{
    free(c->thumbprint);
    free(c->kid);
    c->thumbprint = NULL;
    c->kid = NULL;
    memset(&c->signer, 0, sizeof(c->signer));
    c->have_signer = 0;
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

int acme_client_has(const acme_client *c, const char *resource)
{
    return strcmp(resource, "keyChange") == 0     ? c->key_change_url != NULL
           : strcmp(resource, "revokeCert") == 0  ? c->revoke_cert_url != NULL
           : strcmp(resource, "renewalInfo") == 0 ? c->renewal_info_url != NULL
                                                  : 0;
}

int acme_client_eab_required(const acme_client *c)
{
    return c->eab_required;
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

char *acme_dns01_value_new(const char *key_authorization, ks_err *err)
{
    unsigned char digest[32];
    unsigned int len = 0;
    if (EVP_Digest(key_authorization, strlen(key_authorization), digest, &len, EVP_sha256(),
                   NULL) != 1) {
        ks_fail_openssl(err, "dns-01 record value");
        return NULL;
    }
    char *out = b64url_encode_new(digest, len);
    if (out == NULL)
        ks_fail(err, "out of memory");
    return out;
}
