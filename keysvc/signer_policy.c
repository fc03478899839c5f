#include "signer_policy.h"

#include "b64.h"
#include "csr.h"
#include "jws.h"

#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

const char *ks_policy_alg_for_key(EVP_PKEY *pub)
{
    if (EVP_PKEY_is_a(pub, "ED25519"))
        return "EdDSA";
    return acme_jws_alg_for_key(pub);
}

/* Decodes one base64url part of a JWS signing input into a JSON object
 * (caller puts), or NULL. */
static json_object *decode_json_part(const unsigned char *part, size_t len)
{
    size_t raw_len = 0;
    unsigned char *raw = b64url_decode_new((const char *)part, len, &raw_len);
    if (raw == NULL)
        return NULL;
    json_tokener *tok = json_tokener_new();
    json_object *obj = tok ? json_tokener_parse_ex(tok, (const char *)raw, (int)raw_len) : NULL;
    int whole = tok && json_tokener_get_error(tok) == json_tokener_success &&
                json_tokener_get_parse_end(tok) == raw_len;
    json_tokener_free(tok);
    free(raw);
    if (!whole || !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

/* Splits "protected.payload" and checks the protected header: a JSON object
 * with this alg and a url.  *payload gets the decoded payload object (caller
 * puts) when `want_payload`. */
static int check_jws_input(const char *alg, const unsigned char *input, size_t len,
                           json_object **payload, ks_err *err)
{
    const unsigned char *dot = memchr(input, '.', len);
    if (dot == NULL || memchr(dot + 1, '.', len - (size_t)(dot + 1 - input)) != NULL)
        return ks_fail(err, "refused: not a JWS signing input");
    json_object *hdr = decode_json_part(input, (size_t)(dot - input));
    json_object *v = NULL, *url = NULL;
    int ok = hdr != NULL && json_object_object_get_ex(hdr, "alg", &v) &&
             json_object_is_type(v, json_type_string) &&
             strcmp(json_object_get_string(v), alg) == 0 &&
             json_object_object_get_ex(hdr, "url", &url) &&
             json_object_is_type(url, json_type_string);
    json_object_put(hdr);
    if (!ok)
        return ks_fail(err, "refused: the JWS protected header does not name this alg and a url");
    if (payload != NULL) {
        size_t plen = len - (size_t)(dot + 1 - input);
        *payload = plen ? decode_json_part(dot + 1, plen) : NULL;
        if (*payload == NULL)
            return ks_fail(err, "refused: the JWS payload is not a JSON object");
    }
    return 0;
}

static int check_alg(EVP_PKEY *pub, const char *alg, ks_err *err)
{
    const char *want = ks_policy_alg_for_key(pub);
    if (want == NULL || strcmp(want, alg) != 0)
        return ks_fail(err, "refused: alg %s does not belong to this key", alg);
    return 0;
}

int ks_policy_account_jws(EVP_PKEY *pub, const char *alg, const unsigned char *input, size_t len,
                          ks_err *err)
{
    if (check_alg(pub, alg, err) < 0)
        return -1;
    return check_jws_input(alg, input, len, NULL, err);
}

/* The public key of a base64url DER certificate (caller frees), or NULL. */
static EVP_PKEY *certificate_key(const char *cert64)
{
    size_t der_len = 0;
    unsigned char *der = b64url_decode_new(cert64, strlen(cert64), &der_len);
    const unsigned char *p = der;
    X509 *x = der ? d2i_X509(NULL, &p, (long)der_len) : NULL;
    EVP_PKEY *key = x && p == der + der_len ? X509_get_pubkey(x) : NULL;
    X509_free(x);
    free(der);
    ERR_clear_error();
    return key;
}

int ks_policy_revocation_jws(EVP_PKEY *pub, const char *alg, const unsigned char *input,
                             size_t len, ks_err *err)
{
    json_object *payload = NULL, *cert = NULL;
    if (check_alg(pub, alg, err) < 0 || check_jws_input(alg, input, len, &payload, err) < 0)
        return -1;
    int ok = json_object_object_get_ex(payload, "certificate", &cert) &&
             json_object_is_type(cert, json_type_string);
    EVP_PKEY *cert_key = ok ? certificate_key(json_object_get_string(cert)) : NULL;
    ok = cert_key != NULL && EVP_PKEY_eq(cert_key, pub) == 1;
    EVP_PKEY_free(cert_key);
    json_object_put(payload);
    if (!ok)
        return ks_fail(err, "refused: a certificate key signs a JWS only to revoke its own "
                            "certificate");
    return 0;
}

/* Wraps a CertificationRequestInfo into a whole (unsigned) CSR so OpenSSL
 * can parse it: SEQUENCE { info, AlgorithmIdentifier, BIT STRING {} }. */
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

int ks_policy_csr(EVP_PKEY *pub, int md_nid, const unsigned char *tbs, size_t len, ks_err *err)
{
    if (md_nid != csr_digest_for_key(pub))
        return ks_fail(err, "refused: the CSR digest does not belong to this key");
    X509_REQ *req = parse_request_info(tbs, len);
    EVP_PKEY *in_req = req ? X509_REQ_get0_pubkey(req) : NULL;
    int ok = in_req != NULL && EVP_PKEY_eq(in_req, pub) == 1;
    X509_REQ_free(req);
    ERR_clear_error();
    if (!ok)
        return ks_fail(err, "refused: not a certificate request for this key");
    return 0;
}
