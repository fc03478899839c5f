#include "jws.h"

#include "b64.h"
#include "ks_curves.h"
#include "ks_util.h"

#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

/* The curve of an EC public key, or NULL for another key or curve. */
static const ks_curve *key_curve(EVP_PKEY *pub)
{
    char group[64];
    size_t glen = 0;
    if (!EVP_PKEY_is_a(pub, "EC") ||
        EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &glen) != 1)
        return NULL;
    return ks_curve_by_group_name(group);
}

const char *acme_jws_alg_for_key(EVP_PKEY *pub)
{
    if (EVP_PKEY_is_a(pub, "RSA"))
        return "RS256";
    if (EVP_PKEY_is_a(pub, "ED25519"))
        return "EdDSA";
    const ks_curve *c = key_curve(pub);
    return c ? c->jws_alg : NULL;
}

size_t acme_jws_ec_coord_len(const char *alg)
{
    const ks_curve *c = ks_curve_by_jws_alg(alg);
    /* Ed25519 signatures are also two 32-byte halves (R || S). */
    return c ? c->coord_len : strcmp(alg, "EdDSA") == 0 ? 32 : 0;
}

/* base64url of a key parameter; `width` 0 means minimal big-endian bytes. */
static char *bn_param_b64(EVP_PKEY *pub, const char *name, size_t width, ks_err *err)
{
    BIGNUM *bn = NULL;
    unsigned char *bytes = NULL;
    char *out = NULL;
    if (EVP_PKEY_get_bn_param(pub, name, &bn) != 1) {
        ks_fail_openssl(err, name);
        goto out;
    }
    size_t len = width ? width : (size_t)BN_num_bytes(bn);
    if (len == 0)
        len = 1;
    bytes = malloc(len);
    if (bytes == NULL || BN_bn2binpad(bn, bytes, (int)len) < 0) {
        ks_fail(err, "cannot encode key parameter %s", name);
        goto out;
    }
    out = b64url_encode_new(bytes, len);
    if (out == NULL)
        ks_fail(err, "out of memory");
out:
    free(bytes);
    BN_free(bn);
    return out;
}

static char *ec_jwk(EVP_PKEY *pub, ks_err *err)
{
    const ks_curve *curve = key_curve(pub);
    if (curve == NULL) {
        ks_fail(err, "unsupported EC curve for a JWK");
        return NULL;
    }
    char *jwk = NULL;
    char *x = bn_param_b64(pub, OSSL_PKEY_PARAM_EC_PUB_X, curve->coord_len, err);
    char *y = x ? bn_param_b64(pub, OSSL_PKEY_PARAM_EC_PUB_Y, curve->coord_len, err) : NULL;
    if (y != NULL) {
        /* Members in lexicographic order: RFC 7638 section 3.2. */
        jwk = ks_strdup_printf("{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                               curve->jwk_crv, x, y);
        if (jwk == NULL)
            ks_fail(err, "out of memory");
    }
    free(x);
    free(y);
    return jwk;
}

static char *rsa_jwk(EVP_PKEY *pub, ks_err *err)
{
    char *jwk = NULL;
    char *n = bn_param_b64(pub, OSSL_PKEY_PARAM_RSA_N, 0, err);
    char *e = n ? bn_param_b64(pub, OSSL_PKEY_PARAM_RSA_E, 0, err) : NULL;
    if (e != NULL) {
        jwk = ks_strdup_printf("{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", e, n);
        if (jwk == NULL)
            ks_fail(err, "out of memory");
    }
    free(n);
    free(e);
    return jwk;
}

/* RFC 8037: {"crv":"Ed25519","kty":"OKP","x":...}. */
static char *ed25519_jwk(EVP_PKEY *pub, ks_err *err)
{
    unsigned char raw[32];
    size_t len = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(pub, raw, &len) != 1 || len != sizeof(raw)) {
        ks_fail_openssl(err, "reading the Ed25519 public key");
        return NULL;
    }
    char *x = b64url_encode_new(raw, len);
    char *jwk = x ? ks_strdup_printf("{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", x) : NULL;
    free(x);
    if (jwk == NULL)
        ks_fail(err, "out of memory");
    return jwk;
}

char *acme_jwk_new(EVP_PKEY *pub, ks_err *err)
{
    if (EVP_PKEY_is_a(pub, "EC"))
        return ec_jwk(pub, err);
    if (EVP_PKEY_is_a(pub, "ED25519"))
        return ed25519_jwk(pub, err);
    if (EVP_PKEY_is_a(pub, "RSA"))
        return rsa_jwk(pub, err);
    ks_fail(err, "unsupported key type for a JWK");
    return NULL;
}

char *acme_jwk_thumbprint_new(const char *jwk_json, ks_err *err)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (EVP_Digest(jwk_json, strlen(jwk_json), digest, &dlen, EVP_sha256(), NULL) != 1) {
        ks_fail_openssl(err, "SHA-256 of JWK");
        return NULL;
    }
    char *out = b64url_encode_new(digest, dlen);
    if (out == NULL)
        ks_fail(err, "out of memory");
    return out;
}

static char *protected_header_new(const acme_signer *signer, const char *kid, const char *nonce,
                                  const char *url, ks_err *err)
{
    json_object *hdr = json_object_new_object();
    char *out = NULL;
    if (hdr == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    json_object_object_add(hdr, "alg", json_object_new_string(signer->alg));
    if (kid != NULL) {
        json_object_object_add(hdr, "kid", json_object_new_string(kid));
    } else {
        json_object *jwk = json_tokener_parse(signer->jwk_json);
        if (jwk == NULL) {
            ks_fail(err, "signer has an invalid JWK");
            goto out;
        }
        json_object_object_add(hdr, "jwk", jwk);
    }
    if (nonce != NULL)
        json_object_object_add(hdr, "nonce", json_object_new_string(nonce));
    json_object_object_add(hdr, "url", json_object_new_string(url));
    const char *text =
        json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    out = b64url_encode_new((const unsigned char *)text, strlen(text));
    if (out == NULL)
        ks_fail(err, "out of memory");
out:
    json_object_put(hdr);
    return out;
}

char *acme_jws_new(const acme_signer *signer, const char *kid, const char *nonce, const char *url,
                   const char *payload, ks_err *err)
{
    char *prot = NULL, *pay = NULL, *input = NULL, *sig64 = NULL, *body = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;

    prot = protected_header_new(signer, kid, nonce, url, err);
    if (prot == NULL)
        goto out;
    pay = b64url_encode_new((const unsigned char *)(payload ? payload : ""),
                            payload ? strlen(payload) : 0);
    input = pay ? ks_strdup_printf("%s.%s", prot, pay) : NULL;
    if (input == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    if (signer->sign(signer->ctx, (const unsigned char *)input, strlen(input), &sig, &sig_len,
                     err) < 0) {
        ks_failp(err, "signing ACME request for %s", url);
        goto out;
    }
    size_t coord = acme_jws_ec_coord_len(signer->alg);
    if (coord != 0 && sig_len != 2 * coord) {
        ks_fail(err, "signer returned %zu bytes for %s, expected %zu", sig_len, signer->alg,
                2 * coord);
        goto out;
    }
    sig64 = b64url_encode_new(sig, sig_len);
    if (sig64 != NULL)
        body = ks_strdup_printf("{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}",
                                prot, pay, sig64);
    if (body == NULL)
        ks_fail(err, "out of memory");
out:
    free(prot);
    free(pay);
    free(input);
    free(sig);
    free(sig64);
    return body;
}
