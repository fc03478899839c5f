#include "chain.h"

#include "ks_log.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void ks_chain_clear(ks_chain *c)
{
    free(c->leaf_pem);
    free(c->chain_pem);
    free(c->serial);
    free(c->top_issuer_cn);
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

/* Reads the next PEM block, which must be a certificate.  Returns 1 with
 * *x set, 0 at the end of the input, -1 for anything else. */
static int next_certificate(BIO *in, X509 **x, ks_err *err)
{
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    *x = NULL;
    if (PEM_read_bio(in, &name, &header, &data, &len) != 1) {
        unsigned long e = ERR_peek_last_error();
        int at_end = e == 0 || ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
        ERR_clear_error();
        return at_end ? 0 : ks_fail(err, "the CA sent a malformed PEM block");
    }
    int rc = -1;
    if (strcmp(name, "CERTIFICATE") != 0) {
        char *shown = ks_escape_new(name, strnlen(name, 40));
        ks_fail(err, "the CA sent a PEM block of type \"%s\" in the certificate chain",
                shown ? shown : "?");
        free(shown);
    } else {
        const unsigned char *p = data;
        *x = d2i_X509(NULL, &p, len);
        if (*x == NULL || p != data + len) {
            X509_free(*x);
            *x = NULL;
            ks_fail_openssl(err, "the CA sent a malformed certificate");
        } else {
            rc = 1;
        }
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    return rc;
}

/* The commonName of an X.509 name, newly allocated ("" when it has none). */
static char *common_name_new(const X509_NAME *name)
{
    char buf[256] = "";
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    const ASN1_STRING *s = idx < 0 ? NULL
                                   : X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char *utf8 = NULL;
    int len = s ? ASN1_STRING_to_UTF8(&utf8, s) : -1;
    if (len > 0) {
        size_t n = (size_t)len < sizeof(buf) - 1 ? (size_t)len : sizeof(buf) - 1;
        memcpy(buf, utf8, n);
        buf[n] = '\0';
    }
    OPENSSL_free(utf8);
    return strdup(buf);
}

/* Records the topmost certificate's issuer and subject common names. */
static int note_top(X509 *x, char **issuer_cn, char **subject_cn)
{
    free(*issuer_cn);
    *issuer_cn = common_name_new(X509_get_issuer_name(x));
    if (subject_cn != NULL) {
        free(*subject_cn);
        *subject_cn = common_name_new(X509_get_subject_name(x));
    }
    return *issuer_cn != NULL && (subject_cn == NULL || *subject_cn != NULL) ? 0 : -1;
}

int ks_chain_parse(const char *pem, ks_chain *out, ks_err *err)
{
    memset(out, 0, sizeof(*out));
    ERR_clear_error();
    BIO *in = BIO_new_mem_buf(pem, -1);
    int count = 0, rc = -1, got;
    X509 *x;
    while (in && (got = next_certificate(in, &x, err)) == 1) {
        int ok = count == 0 ? read_leaf_facts(x, out, err) == 0 &&
                                  (out->leaf_pem = cert_pem_new(x)) != NULL
                            : append_pem(&out->chain_pem, x) == 0;
        ok = ok && note_top(x, &out->top_issuer_cn, NULL) == 0;
        X509_free(x);
        if (!ok)
            goto out;
        count++;
    }
    if (in == NULL || got < 0)
        goto out;
    if (count == 0) {
        ks_fail(err, "the CA sent no certificate");
        goto out;
    }
    if (out->chain_pem == NULL && (out->chain_pem = strdup("")) == NULL)
        goto out;
    rc = 0;
out:
    BIO_free(in);
    if (rc < 0)
        ks_chain_clear(out);
    return rc;
}

/* Whether the chain's topmost certificate was issued by, or is, `cn`. */
static int chain_tops_out_at(const char *pem, const char *cn, ks_err *err)
{
    BIO *in = BIO_new_mem_buf(pem, -1);
    char *issuer = NULL, *subject = NULL;
    int got = 0, count = 0, rc = -1;
    X509 *x;
    while (in && (got = next_certificate(in, &x, err)) == 1) {
        int ok = note_top(x, &issuer, &subject) == 0;
        X509_free(x);
        if (!ok)
            goto out;
        count++;
    }
    if (in != NULL && got == 0 && count > 0)
        rc = strcmp(issuer, cn) == 0 || strcmp(subject, cn) == 0;
    else if (in != NULL && got == 0)
        ks_fail(err, "the chain holds no certificate");
out:
    BIO_free(in);
    free(issuer);
    free(subject);
    return rc;
}

int ks_chain_pick(char *const *pems, size_t n, const char *preferred, ks_err *err)
{
    int first_good = -1;
    for (size_t i = 0; i < n; i++) {
        ks_err why = {{0}};
        int match = chain_tops_out_at(pems[i], preferred ? preferred : "", &why);
        if (match < 0) {
            ks_warn("chain %zu from the CA is unusable: %s", i + 1, why.msg);
            continue;
        }
        if (first_good < 0)
            first_good = (int)i;
        if (preferred == NULL || match == 1)
            return (int)i;
    }
    if (first_good < 0)
        return ks_fail(err, "none of the %zu chains from the CA is usable", n);
    ks_warn("no chain from the CA tops out at \"%s\" (preferred_chain); keeping the default",
            preferred);
    return first_good;
}

int ks_chain_leaf_der(const char *pem, unsigned char **der, size_t *len, ks_err *err)
{
    BIO *in = BIO_new_mem_buf(pem, -1);
    X509 *x = NULL;
    *der = NULL;
    int got = in ? next_certificate(in, &x, err) : -1;
    BIO_free(in);
    if (got != 1)
        return got == 0 ? ks_fail(err, "no certificate in the stored PEM") : -1;
    int n = i2d_X509(x, der);
    X509_free(x);
    if (n <= 0)
        return ks_fail_openssl(err, "encoding a certificate");
    *len = (size_t)n;
    return 0;
}

static int dns_name_is(const GENERAL_NAME *g, const char *name)
{
    const char *v = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
    size_t vlen = (size_t)ASN1_STRING_length(g->d.dNSName);
    return strlen(name) == vlen && strncasecmp(name, v, vlen) == 0;
}

/* The leaf's DNS names must be exactly the requested set: every requested
 * name present, and nothing else. */
static int names_match(X509 *leaf, char *const *names, size_t n, ks_err *err)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    int count = gens ? sk_GENERAL_NAME_num(gens) : 0;
    int rc = 0;
    for (int i = 0; i < count && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        int requested = 0;
        for (size_t j = 0; g->type == GEN_DNS && j < n && !requested; j++)
            requested = dns_name_is(g, names[j]);
        if (!requested)
            rc = ks_fail(err, "the certificate from the CA names a host that was not requested");
    }
    for (size_t j = 0; j < n && rc == 0; j++) {
        int present = 0;
        for (int i = 0; i < count && !present; i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
            present = g->type == GEN_DNS && dns_name_is(g, names[j]);
        }
        if (!present)
            rc = ks_fail(err, "the certificate from the CA lacks the requested name %s",
                         names[j]);
    }
    GENERAL_NAMES_free(gens);
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
