/*
 * ACME client: the account (RFC 8555 7.3): registration with External
 * Account Binding, finding an existing account, contact updates,
 * deactivation and the account key rollover (keyChange).
 */
#include "internal.h"

#include "b64.h"
#include "jws.h"
#include "ks_log.h"
#include "ks_util.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ payloads */

static json_object *contact_array(const char *const *emails, size_t n)
{
    json_object *contact = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        char *mailto = ks_strdup_printf("mailto:%s", emails[i]);
        if (mailto != NULL)
            json_object_array_add(contact, json_object_new_string(mailto));
        free(mailto);
    }
    return contact;
}

/* The HMAC digest of an EAB algorithm name, or NULL. */
static const char *eab_digest(const char *alg)
{
    return strcmp(alg, "HS256") == 0   ? "SHA256"
           : strcmp(alg, "HS384") == 0 ? "SHA384"
           : strcmp(alg, "HS512") == 0 ? "SHA512"
                                       : NULL;
}

/* HMAC of `input` with the key, base64url (caller frees). */
static char *hmac_b64_new(const char *digest, const unsigned char *key, size_t key_len,
                          const char *input, ks_err *err)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                            (char *)digest, 0),
                           OSSL_PARAM_construct_end()};
    int ok = ctx != NULL && EVP_MAC_init(ctx, key, key_len, params) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)input, strlen(input)) == 1 &&
             EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) == 1;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);
    if (!ok) {
        ks_fail_openssl(err, "external account binding MAC");
        return NULL;
    }
    char *out = b64url_encode_new(mac, mac_len);
    OPENSSL_cleanse(mac, sizeof(mac));
    if (out == NULL)
        ks_fail(err, "out of memory");
    return out;
}

/* RFC 8555 7.3.4: a JWS over the account's JWK, MAC'd with the key the CA
 * handed out, naming the CA's key id and the newAccount URL. */
static json_object *eab_object_new(const acme_client *c, const acme_eab *eab, ks_err *err)
{
    const char *alg = eab->alg ? eab->alg : "HS256";
    const char *digest = eab_digest(alg);
    size_t key_len = 0;
    unsigned char *key = NULL;
    char *protected64 = NULL, *payload64 = NULL, *input = NULL, *sig64 = NULL;
    json_object *out = NULL;
    if (digest == NULL) {
        ks_fail(err, "external account binding: unsupported MAC algorithm \"%s\" (HS256, HS384 "
                     "or HS512)",
                alg);
        return NULL;
    }
    if (eab->kid == NULL || eab->kid[0] == '\0' || eab->hmac_key == NULL ||
        (key = b64url_decode_new(eab->hmac_key, strlen(eab->hmac_key), &key_len)) == NULL ||
        key_len == 0) {
        ks_fail(err, "external account binding: the key id is empty or the MAC key is not "
                     "base64url");
        goto out;
    }
    json_object *hdr = json_object_new_object();
    json_object_object_add(hdr, "alg", json_object_new_string(alg));
    json_object_object_add(hdr, "kid", json_object_new_string(eab->kid));
    json_object_object_add(hdr, "url", json_object_new_string(c->new_account_url));
    char *hdr_text = acme_json_text_new(hdr);
    json_object_put(hdr);
    protected64 = hdr_text ? b64url_encode_new((const unsigned char *)hdr_text, strlen(hdr_text))
                           : NULL;
    free(hdr_text);
    payload64 = b64url_encode_new((const unsigned char *)c->signer.jwk_json,
                                  strlen(c->signer.jwk_json));
    input = protected64 && payload64 ? ks_strdup_printf("%s.%s", protected64, payload64) : NULL;
    if (input == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    if ((sig64 = hmac_b64_new(digest, key, key_len, input, err)) == NULL)
        goto out;
    out = json_object_new_object();
    json_object_object_add(out, "protected", json_object_new_string(protected64));
    json_object_object_add(out, "payload", json_object_new_string(payload64));
    json_object_object_add(out, "signature", json_object_new_string(sig64));
out:
    if (key != NULL)
        OPENSSL_cleanse(key, key_len);
    free(key);
    free(protected64);
    free(payload64);
    free(input);
    free(sig64);
    return out;
}

static char *new_account_payload(const acme_client *c, const char *const *emails, size_t n,
                                 const acme_eab *eab, ks_err *err)
{
    json_object *req = json_object_new_object();
    json_object_object_add(req, "termsOfServiceAgreed", json_object_new_boolean(1));
    if (n > 0)
        json_object_object_add(req, "contact", contact_array(emails, n));
    if (eab != NULL) {
        json_object *binding = eab_object_new(c, eab, err);
        if (binding == NULL) {
            json_object_put(req);
            return NULL;
        }
        json_object_object_add(req, "externalAccountBinding", binding);
    }
    char *out = acme_json_text_new(req);
    json_object_put(req);
    if (out == NULL)
        ks_fail(err, "out of memory");
    return out;
}

/* ------------------------------------------------------- registration */

/* Takes the account URL from a newAccount answer. */
static int take_account_url(acme_client *c, const acme_response *resp, ks_err *err)
{
    if (!acme_url_ok(resp->location))
        return ks_fail(err, "%s: no valid https Location in the response", c->new_account_url);
    char *kid = strdup(resp->location);
    if (kid == NULL)
        return ks_fail(err, "out of memory");
    free(c->kid);
    c->kid = kid;
    return 0;
}

/* newAccount, always signed with the JWK (never a kid).  *resp is the answer
 * for any HTTP status. */
static int post_new_account(acme_client *c, const char *payload, acme_response *resp,
                            ks_err *err)
{
    if (c->new_account_url == NULL)
        return ks_fail(err, "the ACME directory has not been loaded");
    if (!c->have_signer)
        return ks_fail(err, "no account key set");
    return acme_post_signed(c, &c->signer, NULL, c->new_account_url, payload, NULL,
                            ACME_MAX_BODY, resp, err);
}

int acme_account_register(acme_client *c, const char *const *emails, size_t n_emails,
                          const acme_eab *eab, int *created, ks_err *err)
{
    if (c->eab_required && eab == NULL)
        return ks_fail(err, "registering the ACME account: %s requires external account "
                            "binding: set account.eab_kid and account.eab_hmac_key",
                       c->directory_url);
    char *payload = c->have_signer ? new_account_payload(c, emails, n_emails, eab, err) : NULL;
    acme_response resp;
    memset(&resp, 0, sizeof(resp));
    int rc = payload ? post_new_account(c, payload, &resp, err) : -1;
    free(payload);
    if (rc < 0)
        return ks_failp(err, "registering the ACME account");
    rc = -1;
    if (resp.status != 200 && resp.status != 201)
        acme_fail_problem(&resp, "registering the ACME account", c->new_account_url, err);
    else if (take_account_url(c, &resp, err) < 0)
        ks_failp(err, "registering the ACME account");
    else
        rc = 0;
    if (rc == 0 && created)
        *created = resp.status == 201;
    acme_response_clear(&resp);
    return rc;
}

int acme_account_find(acme_client *c, int *found, ks_err *err)
{
    acme_response resp;
    memset(&resp, 0, sizeof(resp));
    *found = 0;
    if (post_new_account(c, "{\"onlyReturnExisting\":true}", &resp, err) < 0)
        return ks_failp(err, "looking up the ACME account");
    int rc = 0;
    if (resp.status == 200)
        rc = take_account_url(c, &resp, err) < 0 ? ks_failp(err, "looking up the ACME account")
                                                 : (*found = 1, 0);
    else if (!acme_problem_is(&resp, "accountDoesNotExist"))
        rc = acme_fail_problem(&resp, "looking up the ACME account", c->new_account_url, err);
    acme_response_clear(&resp);
    return rc;
}

/* ----------------------------------------------------- account object */

void acme_account_info_clear(acme_account_info *a)
{
    free(a->status);
    for (size_t i = 0; i < a->n_contact; i++)
        free(a->contact[i]);
    free(a->contact);
    memset(a, 0, sizeof(*a));
}

static int read_contacts(acme_account_info *a, json_object *obj, const char *url, ks_err *err)
{
    json_object *arr = NULL;
    if (acme_json_array(obj, "contact", 0, &arr, url, err) < 0)
        return -1;
    size_t n = arr ? json_object_array_length(arr) : 0;
    a->contact = calloc(n ? n : 1, sizeof(*a->contact));
    if (a->contact == NULL)
        return ks_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(v, json_type_string))
            return ks_fail(err, "%s: contact[%zu] is not a string", url, i);
        a->contact[a->n_contact++] = strdup(json_object_get_string(v));
    }
    return 0;
}

/* POSTs to the account URL and reads the account object it answers. */
static int account_post(acme_client *c, const char *payload, const char *what,
                        acme_account_info *out, ks_err *err)
{
    acme_response resp;
    memset(out, 0, sizeof(*out));
    if (c->kid == NULL)
        return ks_fail(err, "%s: the account is not registered", what);
    if (acme_post(c, c->kid, payload, NULL, ACME_MAX_BODY, &resp, err) < 0)
        return ks_failp(err, "%s", what);
    json_object *obj = NULL;
    int rc = -1;
    if (resp.status >= 400)
        acme_fail_problem(&resp, what, c->kid, err);
    else if ((obj = acme_parse_json(&resp, c->kid, err)) == NULL ||
             acme_json_dup_string(obj, "status", 1, &out->status, c->kid, err) < 0 ||
             read_contacts(out, obj, c->kid, err) < 0)
        ks_failp(err, "%s", what);
    else
        rc = 0;
    json_object_put(obj);
    acme_response_clear(&resp);
    if (rc < 0)
        acme_account_info_clear(out);
    return rc;
}

int acme_account_fetch(acme_client *c, acme_account_info *out, ks_err *err)
{
    return account_post(c, NULL, "reading the ACME account", out, err);
}

int acme_account_update_contact(acme_client *c, const char *const *emails, size_t n,
                                acme_account_info *out, ks_err *err)
{
    json_object *req = json_object_new_object();
    json_object_object_add(req, "contact", contact_array(emails, n));
    char *payload = acme_json_text_new(req);
    json_object_put(req);
    if (payload == NULL)
        return ks_fail(err, "out of memory");
    int rc = account_post(c, payload, "updating the ACME account's contact", out, err);
    free(payload);
    return rc;
}

int acme_account_deactivate(acme_client *c, acme_account_info *out, ks_err *err)
{
    int rc = account_post(c, "{\"status\":\"deactivated\"}", "deactivating the ACME account",
                          out, err);
    if (rc == 0 && strcmp(out->status, "deactivated") != 0) {
        char *st = ks_escape_new(out->status, (size_t)-1);
        ks_fail(err, "deactivating the ACME account: %s: the account is still %s", c->kid,
                st ? st : "?");
        free(st);
        acme_account_info_clear(out);
        return -1;
    }
    return rc;
}

/* ------------------------------------------------------------ keyChange */

/* RFC 8555 7.3.5: the inner JWS, signed by the new key with its JWK and the
 * keyChange URL (no nonce), names the account and the old key. */
static char *key_change_inner_new(const acme_client *c, const acme_signer *new_key, ks_err *err)
{
    json_object *old_jwk = json_tokener_parse(c->signer.jwk_json);
    if (old_jwk == NULL) {
        ks_fail(err, "the current account key has an invalid JWK");
        return NULL;
    }
    json_object *req = json_object_new_object();
    json_object_object_add(req, "account", json_object_new_string(c->kid));
    json_object_object_add(req, "oldKey", old_jwk);
    char *payload = acme_json_text_new(req);
    json_object_put(req);
    char *inner = payload ? acme_jws_new(new_key, NULL, NULL, c->key_change_url, payload, err)
                          : NULL;
    if (payload == NULL)
        ks_fail(err, "out of memory");
    free(payload);
    return inner;
}

int acme_account_key_change(acme_client *c, const acme_signer *new_key, ks_err *err)
{
    if (c->key_change_url == NULL)
        return ks_fail(err, "rolling over the account key: %s offers no keyChange",
                       c->directory_url);
    if (c->kid == NULL)
        return ks_fail(err, "rolling over the account key: the account is not registered");
    char *inner = key_change_inner_new(c, new_key, err);
    if (inner == NULL)
        return ks_failp(err, "rolling over the account key");
    acme_response resp;
    int rc = acme_post(c, c->key_change_url, inner, NULL, ACME_MAX_BODY, &resp, err);
    free(inner);
    if (rc < 0)
        return ks_failp(err, "rolling over the account key");
    if (resp.status != 200)
        rc = acme_fail_problem(&resp, "rolling over the account key", c->key_change_url, err);
    acme_response_clear(&resp);
    if (rc < 0)
        return -1;
    /* From now on the CA knows only the new key. */
    return acme_client_set_account(c, new_key, c->kid, err);
}
