/*
 * The parameter file (params.h): RFC 7919 ffdhe DH groups and named-curve
 * EC parameters, written by OpenSSL's encoders.
 */
#include "params.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

/* The RFC 7919 group of a size, or NULL. */
static const char *ffdhe_group(unsigned bits)
{
    switch (bits) {
    case 2048:
        return "ffdhe2048";
    case 3072:
        return "ffdhe3072";
    case 4096:
        return "ffdhe4096";
    case 6144:
        return "ffdhe6144";
    case 8192:
        return "ffdhe8192";
    default:
        return NULL;
    }
}

/* Domain parameters of key type `type` ("DH", "EC") for a named group;
 * NULL when OpenSSL does not know it. */
static EVP_PKEY *named_params(const char *type, const char *group)
{
    OSSL_PARAM params[3];
    size_t n = 0;
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
    if (strcmp(type, "EC") == 0) /* the OID, never the explicit curve */
        params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING,
                                                       (char *)OSSL_PKEY_EC_ENCODING_GROUP, 0);
    params[n] = OSSL_PARAM_construct_end();
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEY_PARAMETERS, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* Appends the PEM parameters of `type`/`group` to `bio`. */
static int write_params(BIO *bio, const char *type, const char *group, ks_err *err)
{
    EVP_PKEY *pkey = named_params(type, group);
    if (pkey == NULL)
        return ks_fail_openssl(err, group);
    int ok = PEM_write_bio_Parameters(bio, pkey);
    EVP_PKEY_free(pkey);
    return ok ? 0 : ks_fail_openssl(err, group);
}

/* The OpenSSL name of an EC curve, or NULL. */
static const char *curve_group(int nid)
{
    const char *sn = OBJ_nid2sn(nid);
    return sn != NULL && strcmp(sn, "UNDEF") != 0 ? sn : NULL;
}

/* The BIO's text as a new string; NULL on OOM. */
static char *bio_text(BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *out = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (out != NULL) {
        memcpy(out, data, (size_t)len);
        out[len] = '\0';
    }
    return out;
}

static int checked_args(unsigned dh_bits, int curve_nid, ks_err *err)
{
    if (dh_bits != 0 && ffdhe_group(dh_bits) == NULL)
        return ks_fail(err,
                       "dhparam_size %u: keysvc writes the RFC 7919 groups of 2048, 3072, "
                       "4096, 6144 or 8192 bits",
                       dh_bits);
    if (curve_nid != 0 && curve_group(curve_nid) == NULL)
        return ks_fail(err, "ecparam_curve: unknown curve (NID %d)", curve_nid);
    return 0;
}

int ks_params_pem_new(unsigned dh_bits, int curve_nid, char **pem, ks_err *err)
{
    *pem = NULL;
    if (checked_args(dh_bits, curve_nid, err) < 0)
        return -1;
    if (dh_bits == 0 && curve_nid == 0)
        return 0;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return ks_fail(err, "out of memory");
    int rc = 0;
    if (dh_bits != 0)
        rc = write_params(bio, "DH", ffdhe_group(dh_bits), err);
    /* acmebot separates the two blocks with an empty line. */
    if (rc == 0 && dh_bits != 0 && curve_nid != 0 && BIO_puts(bio, "\n") != 1)
        rc = ks_fail(err, "out of memory");
    if (rc == 0 && curve_nid != 0 && write_params(bio, "EC", curve_group(curve_nid), err) < 0)
        rc = ks_failp(err, "EC parameters for curve %s", curve_group(curve_nid));
    if (rc == 0 && (*pem = bio_text(bio)) == NULL)
        rc = ks_fail(err, "out of memory");
    BIO_free(bio);
    return rc;
}
