#include "soft_key.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdlib.h>

unsigned char *soft_digest_sign(EVP_PKEY *key, const EVP_MD *md, const unsigned char *in,
                                size_t in_len, size_t *sig_len)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    size_t len = 0;
    if (md != NULL && mctx != NULL && EVP_DigestSignInit(mctx, NULL, md, NULL, key) == 1 &&
        EVP_DigestSign(mctx, NULL, &len, in, in_len) == 1) {
        sig = malloc(len);
        if (sig != NULL && EVP_DigestSign(mctx, sig, &len, in, in_len) != 1) {
            free(sig);
            sig = NULL;
        }
    }
    EVP_MD_CTX_free(mctx);
    *sig_len = len;
    return sig;
}

int soft_digest_verify(EVP_PKEY *key, const EVP_MD *md, const unsigned char *in, size_t in_len,
                       const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int ok = mctx != NULL && EVP_DigestVerifyInit(mctx, NULL, md, NULL, key) == 1 &&
             EVP_DigestVerify(mctx, sig, sig_len, in, in_len) == 1;
    EVP_MD_CTX_free(mctx);
    return ok;
}

unsigned char *soft_ecdsa_der_to_raw(const unsigned char *der, size_t der_len, size_t width)
{
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (es == NULL)
        return NULL;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(es, &r, &s);
    unsigned char *raw = malloc(2 * width);
    if (raw != NULL &&
        (BN_bn2binpad(r, raw, (int)width) < 0 || BN_bn2binpad(s, raw + width, (int)width) < 0)) {
        free(raw);
        raw = NULL;
    }
    ECDSA_SIG_free(es);
    return raw;
}

unsigned char *soft_ecdsa_raw_to_der(const unsigned char *raw, size_t raw_len, size_t *der_len)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)(raw_len / 2), NULL);
    BIGNUM *s = BN_bin2bn(raw + raw_len / 2, (int)(raw_len / 2), NULL);
    unsigned char *der = NULL;
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    int n = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (n <= 0)
        return NULL;
    *der_len = (size_t)n;
    return der;
}

char *soft_b64url_new(const unsigned char *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out == NULL)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n > 0 ? n : 0] = '\0';
    for (char *c = out; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    return out;
}
