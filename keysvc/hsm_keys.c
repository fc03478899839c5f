/*
 * hsm: the key operations.  Each runs through hsm_with_session(), so a lost
 * session is recovered once and the operation repeated.
 */
#include "hsm_internal.h"

#include "ks_curves.h"
#include "ks_log.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

/* id-Ed25519 (RFC 8410), as CKA_EC_PARAMS for CKM_EC_EDWARDS_KEY_PAIR_GEN. */
static const unsigned char ed25519_oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};

/* Large enough for every signature keysvc makes (RSA-4096: 512 bytes, P-521:
 * 132): one C_Sign call with a buffer that is always big enough, instead of
 * a length query followed by a second call. */
#define SIG_MAX 1024

/* ------------------------------------------------------------- generate */

typedef struct generate_args {
    const hsm_key_spec *spec;
    const char *label;
    const unsigned char *id;
    size_t id_len;
} generate_args;

/* CKA_EC_PARAMS for the spec, newly allocated (OPENSSL_free). */
static int ec_params_der(const hsm_key_spec *spec, unsigned char **der, int *len, ks_err *err)
{
    *der = NULL;
    if (spec->kind == HSM_KEY_ED25519) {
        *der = OPENSSL_memdup(ed25519_oid, sizeof(ed25519_oid));
        *len = sizeof(ed25519_oid);
        return *der ? 0 : ks_fail(err, "out of memory");
    }
    ASN1_OBJECT *obj = OBJ_nid2obj(spec->ec_nid);
    *len = obj ? i2d_ASN1_OBJECT(obj, der) : -1;
    if (*len <= 0)
        return ks_fail(err, "unsupported curve %d", spec->ec_nid);
    return 0;
}

static int generate_op(hsm_token *t, void *arg, ks_err *err)
{
    generate_args *g = arg;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = g->spec->rsa_bits;
    CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    unsigned char *params = NULL;
    int params_len = 0;
    CK_OBJECT_HANDLE existing;

    /* Either half with this ID would make the key ambiguous later. */
    int taken = hsm_find_object(t, CKO_PRIVATE_KEY, g->id, g->id_len, &existing, err);
    if (taken == 0)
        taken = hsm_find_object(t, CKO_PUBLIC_KEY, g->id, g->id_len, &existing, err);
    if (taken != 0)
        return taken < 0 ? ks_failp(err, "checking the new CKA_ID")
                         : ks_fail(err, "a key with this CKA_ID is already on token \"%s\"",
                                   t->info.label);
    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub[9] = {
        {CKA_TOKEN, &yes, sizeof(yes)},     {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_VERIFY, &yes, sizeof(yes)},    {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_WRAP, &no, sizeof(no)},        {CKA_LABEL, (void *)g->label, (CK_ULONG)strlen(g->label)},
        {CKA_ID, (void *)g->id, (CK_ULONG)g->id_len},
    };
    CK_ULONG npub = 7;
    if (g->spec->kind == HSM_KEY_RSA) {
        pub[npub++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
        pub[npub++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent)};
    } else {
        mech.mechanism =
            g->spec->kind == HSM_KEY_ED25519 ? CKM_EC_EDWARDS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN;
        if (ec_params_der(g->spec, &params, &params_len, err) < 0)
            return -1;
        pub[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, params, (CK_ULONG)params_len};
    }
    /* Only what a signing key needs: no decrypt, unwrap or derive. */
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_LABEL, (void *)g->label, (CK_ULONG)strlen(g->label)},
        {CKA_ID, (void *)g->id, (CK_ULONG)g->id_len},
    };
    CK_OBJECT_HANDLE hpub, hpriv;
    CK_RV rv = P11(t->h, C_GenerateKeyPair, t->session, &mech, pub, npub, priv,
                   sizeof(priv) / sizeof(priv[0]), &hpub, &hpriv);
    OPENSSL_free(params);
    if (rv != CKR_OK) {
        hsm_fail_rv(err, "C_GenerateKeyPair", rv);
        return ks_failp(err, "generating a key on token \"%s\"", t->info.label);
    }
    return 0;
}

int hsm_generate_key(hsm_token *t, const hsm_key_spec *spec, const char *label,
                     const unsigned char *id, size_t id_len, ks_err *err)
{
    if (id_len == 0 || id_len > HSM_MAX_ID_LEN)
        return ks_fail(err, "a CKA_ID of %zu bytes is not allowed", id_len);
    generate_args g = {spec, label, id, id_len};
    return hsm_with_session(t, generate_op, &g, err);
}

/* ----------------------------------------------------------- public key */

/* Reads one attribute into a newly allocated buffer (caller frees). */
static int get_attr(hsm_token *t, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
                    unsigned char **val, size_t *len, ks_err *err)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK_RV rv = P11(t->h, C_GetAttributeValue, t->session, obj, &a, 1);
    if (rv != CKR_OK)
        return hsm_fail_rv(err, "C_GetAttributeValue", rv);
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 16384)
        return ks_fail(err, "C_GetAttributeValue: implausible attribute length");
    a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
    if (a.pValue == NULL)
        return ks_fail(err, "out of memory");
    rv = P11(t->h, C_GetAttributeValue, t->session, obj, &a, 1);
    if (rv != CKR_OK) {
        free(a.pValue);
        return hsm_fail_rv(err, "C_GetAttributeValue", rv);
    }
    *val = a.pValue;
    *len = a.ulValueLen;
    return 0;
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, ks_err *err)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        ks_fail_openssl(err, "building the public key");
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_public(hsm_token *t, CK_OBJECT_HANDLE obj, ks_err *err)
{
    unsigned char *n = NULL, *e = NULL;
    size_t n_len = 0, e_len = 0;
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    if (get_attr(t, obj, CKA_MODULUS, &n, &n_len, err) < 0 ||
        get_attr(t, obj, CKA_PUBLIC_EXPONENT, &e, &e_len, err) < 0)
        goto out;
    bn_n = BN_bin2bn(n, (int)n_len, NULL);
    bn_e = BN_bin2bn(e, (int)e_len, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (bn_n == NULL || bn_e == NULL || bld == NULL ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1) {
        ks_fail(err, "out of memory");
        goto out;
    }
    pkey = pkey_from_params("RSA", bld, err);
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return pkey;
}

/* CKA_EC_POINT is a DER OCTET STRING around the point (PKCS#11 2.40); some
 * modules return the bare point.  The bare form is recognised by its exact
 * length (0x04 || X || Y for EC, 32 bytes for Ed25519), which a wrapped
 * point never has. */
static int unwrap_point(const unsigned char *val, size_t len, size_t bare_len, int bare_tag,
                        unsigned char **point, size_t *point_len)
{
    const unsigned char *src = val;
    size_t n = len;
    ASN1_OCTET_STRING *os = NULL;
    if (!(len == bare_len && (bare_tag < 0 || val[0] == bare_tag))) {
        const unsigned char *p = val;
        os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len);
        if (os == NULL || p != val + len) {
            ASN1_OCTET_STRING_free(os);
            ERR_clear_error();
            return -1;
        }
        src = ASN1_STRING_get0_data(os);
        n = (size_t)ASN1_STRING_length(os);
    }
    *point = malloc(n ? n : 1);
    if (*point != NULL) {
        memcpy(*point, src, n);
        *point_len = n;
    }
    ASN1_OCTET_STRING_free(os);
    return *point ? 0 : -1;
}

static EVP_PKEY *ec_public(hsm_token *t, CK_OBJECT_HANDLE obj, ks_err *err)
{
    unsigned char *params = NULL, *raw = NULL, *point = NULL;
    size_t params_len = 0, raw_len = 0, point_len = 0;
    EVP_PKEY *pkey = NULL;
    ASN1_OBJECT *oid = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    if (get_attr(t, obj, CKA_EC_PARAMS, &params, &params_len, err) < 0 ||
        get_attr(t, obj, CKA_EC_POINT, &raw, &raw_len, err) < 0)
        goto out;
    const unsigned char *pp = params;
    oid = d2i_ASN1_OBJECT(NULL, &pp, (long)params_len);
    const ks_curve *curve = oid ? ks_curve_by_nid(OBJ_obj2nid(oid)) : NULL;
    if (curve == NULL) {
        ks_fail(err, "token key has EC parameters that are not a supported named curve");
        goto out;
    }
    if (unwrap_point(raw, raw_len, 1 + 2 * curve->coord_len, 0x04, &point, &point_len) < 0) {
        ks_fail(err, "token key has a malformed CKA_EC_POINT");
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve->group_name, 0) !=
            1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len) != 1) {
        ks_fail(err, "out of memory");
        goto out;
    }
    pkey = pkey_from_params("EC", bld, err);
out:
    OSSL_PARAM_BLD_free(bld);
    ASN1_OBJECT_free(oid);
    free(params);
    free(raw);
    free(point);
    return pkey;
}

static EVP_PKEY *ed25519_public(hsm_token *t, CK_OBJECT_HANDLE obj, ks_err *err)
{
    unsigned char *raw = NULL, *point = NULL;
    size_t raw_len = 0, point_len = 0;
    EVP_PKEY *pkey = NULL;
    if (get_attr(t, obj, CKA_EC_POINT, &raw, &raw_len, err) < 0)
        return NULL;
    if (unwrap_point(raw, raw_len, 32, -1, &point, &point_len) < 0 || point_len != 32)
        ks_fail(err, "token key has a malformed Ed25519 public key");
    else if ((pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, point, 32)) == NULL)
        ks_fail_openssl(err, "building the Ed25519 public key");
    free(raw);
    free(point);
    return pkey;
}

typedef struct key_args {
    const unsigned char *id;
    size_t id_len;
    EVP_PKEY **pkey;
} key_args;

static int public_key_op(hsm_token *t, void *arg, ks_err *err)
{
    key_args *k = arg;
    CK_OBJECT_HANDLE obj;
    CK_KEY_TYPE type;
    int found = hsm_find_object(t, CKO_PUBLIC_KEY, k->id, k->id_len, &obj, err);
    if (found == 0)
        return ks_fail(err, "token \"%s\" (serial %s) has no public key with this CKA_ID",
                       t->info.label, t->info.serial);
    if (found < 0)
        return -1;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &type, sizeof(type)};
    CK_RV rv = P11(t->h, C_GetAttributeValue, t->session, obj, &a, 1);
    if (rv != CKR_OK)
        return hsm_fail_rv(err, "C_GetAttributeValue(CKA_KEY_TYPE)", rv);
    if (type == CKK_RSA)
        *k->pkey = rsa_public(t, obj, err);
    else if (type == CKK_EC)
        *k->pkey = ec_public(t, obj, err);
    else if (type == CKK_EC_EDWARDS)
        *k->pkey = ed25519_public(t, obj, err);
    else
        return ks_fail(err, "token key has unsupported key type 0x%lx", (unsigned long)type);
    return *k->pkey ? 0 : -1;
}

int hsm_public_key(hsm_token *t, const unsigned char *id, size_t id_len, EVP_PKEY **out,
                   ks_err *err)
{
    *out = NULL;
    key_args k = {id, id_len, out};
    return hsm_with_session(t, public_key_op, &k, err);
}

/* ----------------------------------------------------------------- sign */

/* DER DigestInfo prefixes (RFC 8017 section 9.2, note 1), so that RSA
 * signing needs only CKM_RSA_PKCS, which every HSM has. */
static const unsigned char di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x01, 0x05, 0x00, 0x04, 0x20};
static const unsigned char di_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x02, 0x05, 0x00, 0x04, 0x30};
static const unsigned char di_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x03, 0x05, 0x00, 0x04, 0x40};

static int digest_info(int md_nid, const unsigned char *dg, size_t dg_len, unsigned char *out,
                       size_t *out_len)
{
    const unsigned char *prefix = md_nid == NID_sha256   ? di_sha256
                                  : md_nid == NID_sha384 ? di_sha384
                                  : md_nid == NID_sha512 ? di_sha512
                                                         : NULL;
    if (prefix == NULL)
        return -1;
    memcpy(out, prefix, sizeof(di_sha256));
    memcpy(out + sizeof(di_sha256), dg, dg_len);
    *out_len = sizeof(di_sha256) + dg_len;
    return 0;
}

typedef struct sign_args {
    const unsigned char *id;
    size_t id_len;
    int md_nid;
    const unsigned char *data;
    size_t data_len;
    unsigned char *sig; /* SIG_MAX bytes */
    size_t sig_len;
} sign_args;

/* What goes into C_Sign for this key type, and with which mechanism. */
static int sign_input(CK_KEY_TYPE type, const sign_args *s, unsigned char *buf, size_t *len,
                      CK_MECHANISM_TYPE *mech, ks_err *err)
{
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned int dg_len = 0;
    if (type == CKK_EC_EDWARDS) {
        *mech = CKM_EDDSA; /* Ed25519 signs the message itself */
        return 0;
    }
    /* SoftHSM has no CKM_ECDSA_SHA256, and not every HSM has the combined
     * RSA mechanisms: hash in software, sign the digest on the token. */
    const EVP_MD *md = EVP_get_digestbynid(s->md_nid);
    if (md == NULL || EVP_Digest(s->data, s->data_len, dg, &dg_len, md, NULL) != 1)
        return ks_fail(err, "unsupported digest %d", s->md_nid);
    if (type == CKK_EC) {
        *mech = CKM_ECDSA;
        memcpy(buf, dg, dg_len);
        *len = dg_len;
        return 0;
    }
    if (type == CKK_RSA) {
        *mech = CKM_RSA_PKCS;
        return digest_info(s->md_nid, dg, dg_len, buf, len) < 0
                   ? ks_fail(err, "unsupported digest for RSA")
                   : 0;
    }
    return ks_fail(err, "token key has unsupported key type 0x%lx", (unsigned long)type);
}

static CK_RV sign_with(hsm_token *t, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mech_type,
                       const unsigned char *in, size_t in_len, sign_args *s)
{
    CK_MECHANISM mech = {mech_type, NULL, 0};
    CK_RV rv = P11(t->h, C_SignInit, t->session, &mech, key);
    if (rv != CKR_OK)
        return rv;
    CK_ULONG len = SIG_MAX;
    rv = P11(t->h, C_Sign, t->session, (CK_BYTE *)in, (CK_ULONG)in_len, s->sig, &len);
    s->sig_len = len;
    if (rv != CKR_OK)
        t->broken = 1;
    return rv;
}

static int sign_op(hsm_token *t, void *arg, ks_err *err)
{
    sign_args *s = arg;
    CK_OBJECT_HANDLE key;
    CK_KEY_TYPE type;
    CK_MECHANISM_TYPE mech;
    unsigned char buf[19 + EVP_MAX_MD_SIZE];
    size_t len = 0;
    int cached;
    if (hsm_private_key(t, s->id, s->id_len, &key, &type, &cached, err) < 0 ||
        sign_input(type, s, buf, &len, &mech, err) < 0)
        return -1;
    const unsigned char *in = mech == CKM_EDDSA ? s->data : buf;
    size_t in_len = mech == CKM_EDDSA ? s->data_len : len;
    CK_RV rv = sign_with(t, key, mech, in, in_len, s);
    if ((rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID) && cached) {
        /* The key was replaced or the token reloaded: search again. */
        hsm_cache_drop(t, s->id, s->id_len);
        if (hsm_private_key(t, s->id, s->id_len, &key, &type, &cached, err) < 0)
            return -1;
        rv = sign_with(t, key, mech, in, in_len, s);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return rv == CKR_OK ? 0 : hsm_fail_rv(err, "C_Sign", rv);
}

int hsm_sign(hsm_token *t, const unsigned char *id, size_t id_len, int md_nid,
             const unsigned char *data, size_t data_len, unsigned char **sig, size_t *sig_len,
             ks_err *err)
{
    sign_args s = {id, id_len, md_nid, data, data_len, malloc(SIG_MAX), 0};
    *sig = NULL;
    if (s.sig == NULL)
        return ks_fail(err, "out of memory");
    if (hsm_with_session(t, sign_op, &s, err) < 0) {
        free(s.sig);
        return -1;
    }
    *sig = s.sig;
    *sig_len = s.sig_len;
    return 0;
}

/* -------------------------------------------------- exists, list, destroy */

typedef struct id_args {
    const unsigned char *id;
    size_t id_len;
    int result;
} id_args;

static int exists_op(hsm_token *t, void *arg, ks_err *err)
{
    id_args *a = arg;
    CK_OBJECT_HANDLE obj;
    int priv = hsm_find_object(t, CKO_PRIVATE_KEY, a->id, a->id_len, &obj, err);
    int pub = priv < 0 ? -1 : hsm_find_object(t, CKO_PUBLIC_KEY, a->id, a->id_len, &obj, err);
    if (pub < 0)
        return -1;
    if (priv != pub)
        return ks_fail(err, "token \"%s\" has only the %s half of a key", t->info.label,
                       priv ? "private" : "public");
    a->result = priv;
    return 0;
}

int hsm_key_exists(hsm_token *t, const unsigned char *id, size_t id_len, ks_err *err)
{
    id_args a = {id, id_len, 0};
    return hsm_with_session(t, exists_op, &a, err) < 0 ? -1 : a.result;
}

typedef struct list_args {
    hsm_key_id *ids;
    size_t n;
    size_t cap;
} list_args;

/* Appends the CKA_ID of one object.  Objects with an ID that is too long or
 * unreadable are someone else's; a module that says OK with an impossible
 * length is not believed. */
static int append_key_id(hsm_token *t, CK_OBJECT_HANDLE obj, list_args *l, ks_err *err)
{
    hsm_key_id one = {0};
    CK_ATTRIBUTE a = {CKA_ID, one.id, sizeof(one.id)};
    CK_RV rv = P11(t->h, C_GetAttributeValue, t->session, obj, &a, 1);
    if (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_SENSITIVE ||
        rv == CKR_ATTRIBUTE_TYPE_INVALID ||
        (rv == CKR_OK &&
         (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > sizeof(one.id))))
        return 0;
    if (rv != CKR_OK)
        return hsm_fail_rv(err, "C_GetAttributeValue(CKA_ID)", rv);
    one.len = a.ulValueLen;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        hsm_key_id *grown = realloc(l->ids, ncap * sizeof(*grown));
        if (grown == NULL)
            return ks_fail(err, "out of memory");
        l->ids = grown;
        l->cap = ncap;
    }
    l->ids[l->n++] = one;
    return 0;
}

static int list_op(hsm_token *t, void *arg, ks_err *err)
{
    list_args *l = arg;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}};
    l->n = 0;
    CK_RV rv = P11(t->h, C_FindObjectsInit, t->session, tmpl, 1);
    if (rv != CKR_OK)
        return hsm_fail_rv(err, "C_FindObjectsInit", rv);
    int rc = 0;
    for (;;) {
        CK_OBJECT_HANDLE batch[128];
        CK_ULONG got = 0;
        rv = P11(t->h, C_FindObjects, t->session, batch, 128, &got);
        if (rv != CKR_OK) {
            rc = hsm_fail_rv(err, "C_FindObjects", rv);
            break;
        }
        if (got == 0)
            break;
        for (CK_ULONG i = 0; i < got && rc == 0; i++)
            rc = append_key_id(t, batch[i], l, err);
        if (rc < 0)
            break;
    }
    P11(t->h, C_FindObjectsFinal, t->session);
    return rc;
}

int hsm_list_private_key_ids(hsm_token *t, hsm_key_id **ids, size_t *n, ks_err *err)
{
    list_args l = {0};
    int rc = hsm_with_session(t, list_op, &l, err);
    if (rc < 0) {
        free(l.ids);
        l.ids = NULL;
        l.n = 0;
    }
    *ids = l.ids;
    *n = l.n;
    return rc;
}

static int destroy_op(hsm_token *t, void *arg, ks_err *err)
{
    id_args *a = arg;
    CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    hsm_cache_drop(t, a->id, a->id_len);
    for (size_t i = 0; i < 2; i++) {
        CK_OBJECT_HANDLE obj;
        int rc = hsm_find_object(t, classes[i], a->id, a->id_len, &obj, err);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        CK_RV rv = P11(t->h, C_DestroyObject, t->session, obj);
        if (rv != CKR_OK)
            return hsm_fail_rv(err, "C_DestroyObject", rv);
    }
    return 0;
}

int hsm_destroy_key(hsm_token *t, const unsigned char *id, size_t id_len, ks_err *err)
{
    id_args a = {id, id_len, 0};
    return hsm_with_session(t, destroy_op, &a, err);
}

/* -------------------------------------------------------------- inspect */

static int get_bool(hsm_token *t, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, int *out)
{
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a = {type, &v, sizeof(v)};
    CK_RV rv = P11(t->h, C_GetAttributeValue, t->session, obj, &a, 1);
    *out = rv == CKR_OK && v == CK_TRUE;
    return rv == CKR_OK ? 0 : -1;
}

typedef struct inspect_args {
    const unsigned char *id;
    size_t id_len;
    hsm_key_attrs *out;
} inspect_args;

static int inspect_op(hsm_token *t, void *arg, ks_err *err)
{
    inspect_args *a = arg;
    hsm_key_attrs *out = a->out;
    CK_OBJECT_HANDLE key;
    CK_KEY_TYPE type;
    int cached;
    memset(out, 0, sizeof(*out));
    /* A fresh search: this is the check of what the token holds now. */
    hsm_cache_drop(t, a->id, a->id_len);
    if (hsm_private_key(t, a->id, a->id_len, &key, &type, &cached, err) < 0)
        return -1;
    if (get_bool(t, key, CKA_TOKEN, &out->is_token) < 0 ||
        get_bool(t, key, CKA_PRIVATE, &out->is_private) < 0 ||
        get_bool(t, key, CKA_SENSITIVE, &out->sensitive) < 0 ||
        get_bool(t, key, CKA_EXTRACTABLE, &out->extractable) < 0 ||
        get_bool(t, key, CKA_ALWAYS_SENSITIVE, &out->always_sensitive) < 0 ||
        get_bool(t, key, CKA_NEVER_EXTRACTABLE, &out->never_extractable) < 0)
        return ks_fail(err, "cannot read the attributes of the private key");
    /* Ask for the secret itself: a sealed key answers CKR_ATTRIBUTE_SENSITIVE. */
    unsigned char buf[1024];
    CK_ATTRIBUTE secret = {type == CKK_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE, buf, sizeof(buf)};
    out->secret_read_rv = P11(t->h, C_GetAttributeValue, t->session, key, &secret, 1);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

int hsm_inspect_key(hsm_token *t, const unsigned char *id, size_t id_len, hsm_key_attrs *out,
                    ks_err *err)
{
    inspect_args a = {id, id_len, out};
    return hsm_with_session(t, inspect_op, &a, err);
}
