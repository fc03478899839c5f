#include "csr.h"

#include "ks_curves.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

int csr_digest_for_key(EVP_PKEY *pub)
{
    char group[64];
    size_t len = 0;
    const ks_curve *curve = NULL;
    if (EVP_PKEY_is_a(pub, "EC") &&
        EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) == 1)
        curve = ks_curve_by_group_name(group);
    return curve ? curve->md_nid : NID_sha256;
}

static int signature_nid(EVP_PKEY *pub, int md_nid)
{
    int sig_nid = NID_undef;
    int pkey_nid = EVP_PKEY_is_a(pub, "EC") ? NID_X9_62_id_ecPublicKey : NID_rsaEncryption;
    if (OBJ_find_sigid_by_algs(&sig_nid, md_nid, pkey_nid) != 1)
        return NID_undef;
    return sig_nid;
}

static int add_subject_and_sans(X509_REQ *req, const char *cn, const char *const *names,
                                size_t n, int must_staple, ks_err *err)
{
    /* X.520 limits a CN to 64 characters; a longer name lives in the SAN
     * only, with an empty subject (as CAs issue it). */
    X509_NAME *subject = X509_REQ_get_subject_name(req);
    if (strlen(cn) <= 64 &&
        X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                   -1, 0) != 1)
        return ks_fail_openssl(err, "CSR subject");
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    int rc = -1;
    for (size_t i = 0; gens && i < n; i++) {
        GENERAL_NAME *gen = GENERAL_NAME_new();
        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
        if (gen == NULL || ia5 == NULL || ASN1_STRING_set(ia5, names[i], -1) != 1) {
            GENERAL_NAME_free(gen);
            ASN1_IA5STRING_free(ia5);
            goto out;
        }
        GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
        if (sk_GENERAL_NAME_push(gens, gen) <= 0) {
            GENERAL_NAME_free(gen);
            goto out;
        }
    }
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = gens ? X509V3_EXT_i2d(NID_subject_alt_name, 0, gens) : NULL;
    /* RFC 7633 TLS feature status_request: OCSP must-staple. */
    X509_EXTENSION *staple =
        must_staple ? X509V3_EXT_nconf_nid(NULL, NULL, NID_tlsfeature, "status_request") : NULL;
    if (exts && san && sk_X509_EXTENSION_push(exts, san) > 0) {
        san = NULL;
        if (!must_staple || (staple && sk_X509_EXTENSION_push(exts, staple) > 0)) {
            staple = NULL;
            rc = X509_REQ_add_extensions(req, exts) == 1 ? 0 : -1;
        }
    }
    X509_EXTENSION_free(staple);
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
out:
    sk_GENERAL_NAME_pop_free(gens, GENERAL_NAME_free);
    return rc < 0 ? ks_fail_openssl(err, "CSR subjectAltName") : 0;
}

/* Raw r||s from the token becomes the DER ECDSA-Sig-Value X.509 wants. */
static int ec_raw_to_der(const unsigned char *raw, size_t len, unsigned char **der,
                         size_t *der_len, ks_err *err)
{
    if (len == 0 || len % 2 != 0)
        return ks_fail(err, "token returned an ECDSA signature of odd length %zu", len);
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)(len / 2), NULL);
    BIGNUM *s = BN_bin2bn(raw + len / 2, (int)(len / 2), NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        ECDSA_SIG_free(sig);
        BN_free(r);
        BN_free(s);
        return ks_fail(err, "out of memory");
    }
    *der = NULL;
    int n = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    if (n <= 0)
        return ks_fail_openssl(err, "encoding ECDSA signature");
    *der_len = (size_t)n;
    return 0;
}

/* Sets the signature BIT STRING.  Without ASN1_STRING_FLAG_BITS_LEFT,
 * OpenSSL drops trailing zero bits and encodes "unused bits != 0", and about
 * half of all CSRs fail to verify after a DER round trip. */
static int set_signature(X509_REQ *req, const unsigned char *sig, size_t len, ks_err *err)
{
    ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
    if (bs == NULL || ASN1_BIT_STRING_set(bs, (unsigned char *)sig, (int)len) != 1) {
        ASN1_BIT_STRING_free(bs);
        return ks_fail_openssl(err, "CSR signature");
    }
    bs->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req, bs);
    return 0;
}

static int sign_request(X509_REQ *req, EVP_PKEY *pub, csr_sign_fn sign, void *ctx, ks_err *err)
{
    int md_nid = csr_digest_for_key(pub);
    int sig_nid = signature_nid(pub, md_nid);
    X509_ALGOR *alg = X509_ALGOR_new();
    unsigned char *tbs = NULL, *raw = NULL, *der = NULL;
    size_t raw_len = 0, der_len = 0;
    int rc = -1;
    /* RFC 5754: ECDSA AlgorithmIdentifiers carry no parameters, RSA a NULL. */
    int ptype = EVP_PKEY_is_a(pub, "EC") ? V_ASN1_UNDEF : V_ASN1_NULL;
    if (alg == NULL || sig_nid == NID_undef ||
        X509_ALGOR_set0(alg, OBJ_nid2obj(sig_nid), ptype, NULL) != 1 ||
        X509_REQ_set1_signature_algo(req, alg) != 1) {
        ks_fail_openssl(err, "CSR signature algorithm");
        goto out;
    }
    int tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
    if (tbs_len <= 0) {
        ks_fail_openssl(err, "encoding the CSR");
        goto out;
    }
    if (sign(ctx, md_nid, tbs, (size_t)tbs_len, &raw, &raw_len, err) < 0) {
        ks_failp(err, "signing the CSR");
        goto out;
    }
    if (EVP_PKEY_is_a(pub, "EC")) {
        if (ec_raw_to_der(raw, raw_len, &der, &der_len, err) < 0)
            goto out;
        rc = set_signature(req, der, der_len, err);
    } else {
        rc = set_signature(req, raw, raw_len, err);
    }
out:
    X509_ALGOR_free(alg);
    OPENSSL_free(tbs);
    OPENSSL_free(der);
    free(raw);
    return rc;
}

static int export_der(X509_REQ *req, EVP_PKEY *pub, unsigned char **der, size_t *der_len,
                      ks_err *err)
{
    unsigned char *tmp = NULL;
    int n = i2d_X509_REQ(req, &tmp);
    if (n <= 0)
        return ks_fail_openssl(err, "encoding the CSR");
    /* Re-parse before verifying: that is what the CA sees.  (pebble does not
     * check CSR signatures, so this check is ours to make.) */
    const unsigned char *p = tmp;
    X509_REQ *again = d2i_X509_REQ(NULL, &p, n);
    int ok = again != NULL && X509_REQ_verify(again, pub) == 1;
    X509_REQ_free(again);
    if (!ok) {
        OPENSSL_free(tmp);
        return ks_fail_openssl(err, "the signed CSR does not verify with the key's public half");
    }
    *der = malloc((size_t)n);
    if (*der == NULL) {
        OPENSSL_free(tmp);
        return ks_fail(err, "out of memory");
    }
    memcpy(*der, tmp, (size_t)n);
    *der_len = (size_t)n;
    OPENSSL_free(tmp);
    return 0;
}

int csr_build_der(EVP_PKEY *pub, const char *common_name, const char *const *names,
                  size_t n_names, csr_sign_fn sign, void *sign_ctx, unsigned char **der,
                  size_t *der_len, ks_err *err)
{
    return csr_build_der_staple(pub, common_name, names, n_names, 0, sign, sign_ctx, der,
                                der_len, err);
}

int csr_build_der_staple(EVP_PKEY *pub, const char *common_name, const char *const *names,
                         size_t n_names, int must_staple, csr_sign_fn sign, void *sign_ctx,
                         unsigned char **der, size_t *der_len, ks_err *err)
{
    X509_REQ *req = X509_REQ_new();
    int rc = -1;
    *der = NULL;
    if (req == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_pubkey(req, pub) != 1) {
        ks_fail_openssl(err, "creating the CSR");
        goto out;
    }
    if (add_subject_and_sans(req, common_name, names, n_names, must_staple, err) < 0 ||
        sign_request(req, pub, sign, sign_ctx, err) < 0 ||
        export_der(req, pub, der, der_len, err) < 0)
        goto out;
    rc = 0;
out:
    X509_REQ_free(req);
    return rc;
}
