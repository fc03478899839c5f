#include "chain.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

void ks_chain_clear(ks_chain *c)
{
    free(c->leaf_pem);
    free(c->chain_pem);
    free(c->serial);
    memset(c, 0, sizeof(*c));
}

/* PEM text of a certificate, newly allocated. */
static char *cert_pem_new(X509 *x)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (mem && PEM_write_bio_X509(mem, x) == 1) {
        char *data = NULL;
        long len = BIO_get_mem_data(mem, &data);
        out = strndup(data, (size_t)len);
    }
    BIO_free(mem);
    return out;
}

static int append_pem(char **acc, X509 *x)
{
    char *pem = cert_pem_new(x);
    if (pem == NULL)
        return -1;
    size_t old = *acc ? strlen(*acc) : 0;
    char *grown = realloc(*acc, old + strlen(pem) + 1);
    if (grown == NULL) {
        free(pem);
        return -1;
    }
    memcpy(grown + old, pem, strlen(pem) + 1);
    *acc = grown;
    free(pem);
    return 0;
}

static int time_of(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = timegm(&tm);
    return 0;
}

static int read_leaf_facts(X509 *leaf, ks_chain *out, ks_err *err)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    out->serial = hex ? strdup(hex) : NULL;
    OPENSSL_free(hex);
    if (out->serial == NULL || time_of(X509_get0_notBefore(leaf), &out->not_before) < 0 ||
        time_of(X509_get0_notAfter(leaf), &out->not_after) < 0)
        return ks_fail(err, "certificate from the CA has an unreadable serial or validity");
    return 0;
}

int ks_chain_parse(const char *pem, ks_chain *out, ks_err *err)
{
    memset(out, 0, sizeof(*out));
    ERR_clear_error();
    BIO *in = BIO_new_mem_buf(pem, -1);
    int count = 0, rc = -1;
    X509 *x;
    while (in && (x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        int ok = count == 0 ? read_leaf_facts(x, out, err) == 0 &&
                                  (out->leaf_pem = cert_pem_new(x)) != NULL
                            : append_pem(&out->chain_pem, x) == 0;
        X509_free(x);
        if (!ok)
            goto out;
        count++;
    }
    /* The loop ends on "no start line" after the last certificate; anything
     * else (a broken block) is the CA's error. */
    unsigned long e = ERR_peek_last_error();
    if (count == 0 || (e && ERR_GET_REASON(e) != PEM_R_NO_START_LINE)) {
        ks_fail_openssl(err, count == 0 ? "the CA sent no certificate"
                                        : "the CA sent a malformed certificate chain");
        goto out;
    }
    ERR_clear_error();
    if (out->chain_pem == NULL && (out->chain_pem = strdup("")) == NULL)
        goto out;
    rc = 0;
out:
    BIO_free(in);
    if (rc < 0)
        ks_chain_clear(out);
    return rc;
}

static int names_match(X509 *leaf, char *const *names, size_t n, ks_err *err)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    int count = gens ? sk_GENERAL_NAME_num(gens) : 0;
    size_t dns = 0;
    int rc = 0;
    for (int i = 0; i < count && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS)
            continue;
        dns++;
        const char *v = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
        size_t vlen = (size_t)ASN1_STRING_length(g->d.dNSName);
        int known = 0;
        for (size_t j = 0; j < n; j++)
            known |= strlen(names[j]) == vlen && strncasecmp(names[j], v, vlen) == 0;
        if (!known)
            rc = ks_fail(err, "the certificate from the CA names a host that was not requested");
    }
    GENERAL_NAMES_free(gens);
    if (rc == 0 && dns != n)
        rc = ks_fail(err, "the certificate from the CA has %zu DNS names, %zu were requested", dns,
                     n);
    return rc;
}

int ks_chain_check_leaf(const char *leaf_pem, EVP_PKEY *pub, char *const *names, size_t n_names,
                        ks_err *err)
{
    BIO *in = BIO_new_mem_buf(leaf_pem, -1);
    X509 *leaf = in ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
    BIO_free(in);
    if (leaf == NULL)
        return ks_fail_openssl(err, "reading the certificate");
    int rc = 0;
    if (EVP_PKEY_eq(X509_get0_pubkey(leaf), pub) != 1)
        rc = ks_fail(err, "the certificate from the CA is not for our key");
    else
        rc = names_match(leaf, names, n_names, err);
    X509_free(leaf);
    return rc;
}
