#include "signer_policy.h"

#include "b64.h"
#include "csr.h"
#include "json_strict.h"
#include "jws.h"
#include "signer_proto.h"

#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* --------------------------------------------------------------- JWS */

static int is_b64url(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

/* Decodes one base64url part into a strict JSON object (caller puts), or
 * NULL.  `canonical`: the decoded text must also be exactly json-c's own
 * writing of that object. */
static json_object *decode_json_part(const unsigned char *part, size_t len, int canonical)
{
    size_t raw_len = 0;
    if (!is_b64url(part, len))
        return NULL;
    unsigned char *raw = b64url_decode_new((const char *)part, len, &raw_len);
    json_object *obj = raw ? ks_json_parse_strict((const char *)raw, raw_len) : NULL;
    if (obj != NULL && canonical) {
        size_t again_len = 0;
        const char *again = json_object_to_json_string_length(obj, JSON_FLAGS, &again_len);
        if (again == NULL || again_len != raw_len || memcmp(again, raw, raw_len) != 0) {
            json_object_put(obj);
            obj = NULL;
        }
    }
    free(raw);
    return obj;
}

/* Every member of obj is one of `allowed` (NULL-terminated). */
static int only_members(json_object *obj, const char *const *allowed)
{
    json_object_object_foreach(obj, key, val)
    {
        (void)val;
        int known = 0;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known)
            return 0;
    }
    return 1;
}

static int string_member(json_object *obj, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string);
}

/* The header's "jwk" is this key's JWK, member for member. */
static int jwk_is_key(json_object *hdr, EVP_PKEY *pub)
{
    json_object *jwk = NULL;
    ks_err ignored = {0};
    if (!json_object_object_get_ex(hdr, "jwk", &jwk) || !json_object_is_type(jwk, json_type_object))
        return 0;
    char *own = acme_jwk_new(pub, &ignored);
    const char *given = json_object_to_json_string_ext(jwk, JSON_FLAGS);
    int same = own != NULL && given != NULL && strcmp(own, given) == 0;
    free(own);
    return same;
}

/* The protected header: alg is this key's, a url, at most a nonce, and the
 * key named by this key's jwk or (when `kid_allowed`) by a kid. */
static int check_header(EVP_PKEY *pub, const char *alg, json_object *hdr, int kid_allowed,
                        ks_err *err)
{
    static const char *const members[] = {"alg", "jwk", "kid", "nonce", "url", NULL};
    json_object *v = NULL;
    const char *own_alg = acme_jws_alg_for_key(pub);
    if (own_alg == NULL || strcmp(own_alg, alg) != 0)
        return ks_fail(err, "refused: alg %.16s does not belong to this key", alg);
    if (!json_object_object_get_ex(hdr, "alg", &v) || !json_object_is_type(v, json_type_string) ||
        strcmp(json_object_get_string(v), alg) != 0 || !string_member(hdr, "url"))
        return ks_fail(err, "refused: the JWS protected header does not name this alg and a url");
    if (!only_members(hdr, members) ||
        (json_object_object_get_ex(hdr, "nonce", &v) && !json_object_is_type(v, json_type_string)))
        return ks_fail(err, "refused: the JWS protected header has members ACME does not use");
    int has_kid = json_object_object_get_ex(hdr, "kid", &v);
    int has_jwk = json_object_object_get_ex(hdr, "jwk", &v);
    if (has_kid && (!kid_allowed || has_jwk || !string_member(hdr, "kid")))
        return ks_fail(err, "refused: this JWS may not name its key by kid");
    if (!has_kid && !jwk_is_key(hdr, pub))
        return ks_fail(err, "refused: the JWS header's jwk is not this key");
    return 0;
}

/* Splits "protected.payload", checks the header, and gives the payload
 * object (caller puts; NULL for an empty payload). */
static int check_jws_input(EVP_PKEY *pub, const char *alg, const unsigned char *input,
                           size_t len, int kid_allowed, json_object **payload, ks_err *err)
{
    *payload = NULL;
    const unsigned char *dot = memchr(input, '.', len);
    if (dot == NULL || memchr(dot + 1, '.', len - (size_t)(dot + 1 - input)) != NULL)
        return ks_fail(err, "refused: not a JWS signing input");
    json_object *hdr = decode_json_part(input, (size_t)(dot - input), 1);
    if (hdr == NULL)
        return ks_fail(err, "refused: the JWS protected header is not base64url of canonical "
                            "strict JSON");
    int rc = check_header(pub, alg, hdr, kid_allowed, err);
    json_object_put(hdr);
    if (rc < 0)
        return -1;
    size_t plen = len - (size_t)(dot + 1 - input);
    if (plen == 0)
        return 0;
    *payload = decode_json_part(dot + 1, plen, 0);
    if (*payload == NULL)
        return ks_fail(err, "refused: the JWS payload is not base64url of a strict JSON object");
    return 0;
}

int ks_policy_account_jws(EVP_PKEY *pub, const char *alg, const unsigned char *input, size_t len,
                          ks_err *err)
{
    json_object *payload = NULL;
    int rc = check_jws_input(pub, alg, input, len, 1, &payload, err);
    json_object_put(payload);
    return rc;
}

/* The public key of a base64url DER certificate (caller frees), or NULL. */
static EVP_PKEY *certificate_key(const char *cert64)
{
    size_t der_len = 0;
    if (!is_b64url((const unsigned char *)cert64, strlen(cert64)))
        return NULL;
    unsigned char *der = b64url_decode_new(cert64, strlen(cert64), &der_len);
    const unsigned char *p = der;
    X509 *x = der ? d2i_X509(NULL, &p, (long)der_len) : NULL;
    EVP_PKEY *key = x && p == der + der_len ? X509_get_pubkey(x) : NULL;
    X509_free(x);
    free(der);
    ERR_clear_error();
    return key;
}

/* An RFC 5280 CRLReason code: an integer from 0 to 10. */
static int is_reason_code(json_object *v)
{
    if (!json_object_is_type(v, json_type_int))
        return 0;
    int64_t code = json_object_get_int64(v);
    return code >= 0 && code <= 10 && json_object_get_uint64(v) == (uint64_t)code;
}

/* A revocation payload: "certificate" of this key, at most an integer
 * "reason". */
static int revokes_own_certificate(EVP_PKEY *pub, json_object *payload)
{
    static const char *const members[] = {"certificate", "reason", NULL};
    json_object *cert = NULL, *reason = NULL;
    if (payload == NULL || !only_members(payload, members) ||
        !json_object_object_get_ex(payload, "certificate", &cert) ||
        !json_object_is_type(cert, json_type_string) ||
        (json_object_object_get_ex(payload, "reason", &reason) && !is_reason_code(reason)))
        return 0;
    EVP_PKEY *cert_key = certificate_key(json_object_get_string(cert));
    int ok = cert_key != NULL && EVP_PKEY_eq(cert_key, pub) == 1;
    EVP_PKEY_free(cert_key);
    return ok;
}

int ks_policy_revocation_jws(EVP_PKEY *pub, const char *alg, const unsigned char *input,
                             size_t len, ks_err *err)
{
    json_object *payload = NULL;
    if (check_jws_input(pub, alg, input, len, 0, &payload, err) < 0)
        return -1;
    int ok = revokes_own_certificate(pub, payload);
    json_object_put(payload);
    if (!ok)
        return ks_fail(err, "refused: a certificate key signs a JWS only to revoke its own "
                            "certificate");
    return 0;
}

/* --------------------------------------------------------------- CSR */

/* Wraps a CertificationRequestInfo into a whole (unsigned) CSR so OpenSSL
 * can parse it: SEQUENCE { info, AlgorithmIdentifier, BIT STRING {} }.
 * The whole input must be the info. */
static X509_REQ *parse_request_info(const unsigned char *tbs, size_t len)
{
    static const unsigned char tail[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
                                         0x3d, 0x04, 0x03, 0x02, 0x03, 0x01, 0x00};
    size_t body = len + sizeof(tail);
    if (len > 60000)
        return NULL;
    unsigned char *der = malloc(body + 4);
    if (der == NULL)
        return NULL;
    /* DER: the shortest length form. */
    size_t hdr = 0;
    der[hdr++] = 0x30;
    if (body >= 256) {
        der[hdr++] = 0x82;
        der[hdr++] = (unsigned char)(body >> 8);
    } else if (body >= 128) {
        der[hdr++] = 0x81;
    }
    der[hdr++] = (unsigned char)body;
    memcpy(der + hdr, tbs, len);
    memcpy(der + hdr + len, tail, sizeof(tail));
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)(hdr + body));
    if (req != NULL && p != der + hdr + body) {
        X509_REQ_free(req);
        req = NULL;
    }
    free(der);
    ERR_clear_error();
    return req;
}

/* The info re-encoded from its fields (not the cached bytes) is the input
 * byte for byte: DER, and nothing but a CertificationRequestInfo. */
static int is_exact_der(X509_REQ *req, const unsigned char *tbs, size_t len)
{
    unsigned char *again = NULL;
    int again_len = i2d_re_X509_REQ_tbs(req, &again);
    int same = again_len > 0 && (size_t)again_len == len && memcmp(again, tbs, len) == 0;
    OPENSSL_free(again);
    return same;
}

int ks_policy_csr(EVP_PKEY *pub, int md_nid, const unsigned char *tbs, size_t len, ks_err *err)
{
    if (md_nid != csr_digest_for_key(pub))
        return ks_fail(err, "refused: the CSR digest does not belong to this key");
    X509_REQ *req = parse_request_info(tbs, len);
    if (req == NULL || X509_REQ_get_version(req) != X509_REQ_VERSION_1 ||
        !is_exact_der(req, tbs, len)) {
        X509_REQ_free(req);
        ERR_clear_error();
        return ks_fail(err, "refused: not exactly one DER CertificationRequestInfo");
    }
    EVP_PKEY *in_req = X509_REQ_get0_pubkey(req);
    int ok = in_req != NULL && EVP_PKEY_eq(in_req, pub) == 1;
    X509_REQ_free(req);
    ERR_clear_error();
    if (!ok)
        return ks_fail(err, "refused: not a certificate request for this key");
    return 0;
}
