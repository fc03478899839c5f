#include "hsm.h"

#include "ks_curves.h"
#include "ks_log.h"
#include "ks_util.h"

#include <dlfcn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <stdlib.h>
#include <string.h>

struct hsm {
    void *dl;
    CK_FUNCTION_LIST *f;
    int initialized;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    int have_session;
    int logged_in;
    hsm_token_info token;
};

/*
 * The one wrapper every C_* call goes through: it logs the call and its
 * result at debug level.  Session recovery and test fault injection belong
 * here and nowhere else.
 */
static CK_RV p11_result(const char *call, CK_RV rv)
{
    if (ks_log_get_level() >= KS_LOG_DEBUG)
        ks_debug("pkcs11: %s -> %s", call, hsm_rv_name(rv));
    return rv;
}
#define P11(h, fn, ...) p11_result(#fn, (h)->f->fn(__VA_ARGS__))

static int fail_rv(ks_err *err, const char *what, CK_RV rv)
{
    return ks_fail(err, "%s: %s", what, hsm_rv_name(rv));
}

hsm *hsm_open(const char *module_path, ks_err *err)
{
    hsm *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    h->dl = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
    if (h->dl == NULL) {
        ks_fail(err, "cannot load PKCS#11 module %s: %s", module_path, dlerror());
        goto fail;
    }
    CK_C_GetFunctionList get_list = (CK_C_GetFunctionList)dlsym(h->dl, "C_GetFunctionList");
    if (get_list == NULL || get_list(&h->f) != CKR_OK || h->f == NULL) {
        ks_fail(err, "%s is not a PKCS#11 module (no C_GetFunctionList)", module_path);
        goto fail;
    }
    /* OS locking: SoftHSM runs without mutexes when given NULL, and crashes
     * under threads (notes: hsm.md 5.2). */
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CK_RV rv = P11(h, C_Initialize, &args);
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        /* Inherited across fork: start clean in this process. */
        P11(h, C_Finalize, NULL);
        rv = P11(h, C_Initialize, &args);
    }
    /* SoftHSM shares our libcrypto and leaves engine errors on the queue. */
    ERR_clear_error();
    if (rv != CKR_OK) {
        fail_rv(err, "C_Initialize", rv);
        ks_failp(err, "PKCS#11 module %s", module_path);
        goto fail;
    }
    h->initialized = 1;
    return h;
fail:
    hsm_close(h);
    return NULL;
}

void hsm_close(hsm *h)
{
    if (h == NULL)
        return;
    if (h->logged_in)
        P11(h, C_Logout, h->session);
    if (h->have_session)
        P11(h, C_CloseSession, h->session);
    if (h->initialized)
        P11(h, C_Finalize, NULL);
    if (h->dl)
        dlclose(h->dl);
    free(h);
}

const hsm_token_info *hsm_token(const hsm *h)
{
    return &h->token;
}

/* Copies a blank-padded PKCS#11 text field and drops the padding. */
static void copy_padded(char *dst, size_t dst_len, const unsigned char *src, size_t src_len)
{
    size_t n = src_len < dst_len - 1 ? src_len : dst_len - 1;
    memcpy(dst, src, n);
    while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
        n--;
    dst[n] = '\0';
}

static void token_info_from(hsm_token_info *out, const CK_TOKEN_INFO *ti)
{
    copy_padded(out->label, sizeof(out->label), ti->label, sizeof(ti->label));
    copy_padded(out->manufacturer, sizeof(out->manufacturer), ti->manufacturerID,
                sizeof(ti->manufacturerID));
    copy_padded(out->model, sizeof(out->model), ti->model, sizeof(ti->model));
    copy_padded(out->serial, sizeof(out->serial), ti->serialNumber, sizeof(ti->serialNumber));
}

static int token_matches(const hsm_token_info *ti, const char *label, const char *serial)
{
    if (label != NULL && strcmp(ti->label, label) != 0)
        return 0;
    if (serial != NULL && strcmp(ti->serial, serial) != 0)
        return 0;
    return 1;
}

/* Finds the one slot whose token matches; tokens are never chosen by slot
 * number, which changes as tokens come and go. */
static int select_slot(hsm *h, const char *label, const char *serial, CK_TOKEN_INFO *info,
                       ks_err *err)
{
    CK_ULONG count = 0;
    CK_RV rv = P11(h, C_GetSlotList, CK_TRUE, NULL, &count);
    if (rv != CKR_OK)
        return fail_rv(err, "C_GetSlotList", rv);
    CK_SLOT_ID *slots = calloc(count ? count : 1, sizeof(*slots));
    if (slots == NULL)
        return ks_fail(err, "out of memory");
    rv = P11(h, C_GetSlotList, CK_TRUE, slots, &count);
    if (rv != CKR_OK) {
        free(slots);
        return fail_rv(err, "C_GetSlotList", rv);
    }
    int found = 0;
    char seen[512] = "";
    size_t seen_len = 0;
    for (CK_ULONG i = 0; i < count; i++) {
        CK_TOKEN_INFO ti;
        if (P11(h, C_GetTokenInfo, slots[i], &ti) != CKR_OK)
            continue;
        hsm_token_info pretty;
        token_info_from(&pretty, &ti);
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        int n = snprintf(seen + seen_len, sizeof(seen) - seen_len, "%s\"%s\" (serial %s)",
                         seen_len ? ", " : "", pretty.label, pretty.serial);
        if (n > 0 && (size_t)n < sizeof(seen) - seen_len)
            seen_len += (size_t)n;
        if (!token_matches(&pretty, label, serial))
            continue;
        found++;
        h->slot = slots[i];
        h->token = pretty;
        *info = ti;
    }
    free(slots);
    if (found == 1)
        return 0;
    if (found > 1)
        return ks_fail(err, "%d tokens are labelled \"%s\"; name the one to use by its serial",
                       found, label ? label : "");
    return ks_fail(err, "no token labelled \"%s\"%s%s was found (tokens present: %s)",
                   label ? label : "", serial ? " with serial " : "", serial ? serial : "",
                   seen_len ? seen : "none");
}

int hsm_login(hsm *h, const char *token_label, const char *token_serial, const char *pin,
              size_t pin_len, ks_err *err)
{
    CK_TOKEN_INFO info = {0};
    if (select_slot(h, token_label, token_serial, &info, err) < 0)
        return -1;
    /* A real HSM locks the PIN after a few failures; never spend the last try. */
    if (info.flags & CKF_USER_PIN_LOCKED)
        return ks_fail(err, "token \"%s\": the user PIN is locked", h->token.label);
    if (info.flags & CKF_USER_PIN_FINAL_TRY)
        return ks_fail(err,
                       "token \"%s\": one PIN try is left; refusing to risk locking it "
                       "(check the PIN by hand)",
                       h->token.label);
    CK_RV rv = P11(h, C_OpenSession, h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                   &h->session);
    if (rv != CKR_OK)
        return fail_rv(err, "C_OpenSession", rv);
    h->have_session = 1;
    rv = P11(h, C_Login, h->session, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)pin_len);
    if (rv == CKR_PIN_INCORRECT)
        return ks_fail(err, "token \"%s\": wrong PIN (C_Login: CKR_PIN_INCORRECT)",
                       h->token.label);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        fail_rv(err, "C_Login", rv);
        return ks_failp(err, "token \"%s\"", h->token.label);
    }
    h->logged_in = 1;
    return 0;
}

/* Finds the one object of `cls` with CKA_ID = id.  Returns 1 found, 0 none,
 * -1 on error (including duplicates, which would make signing ambiguous). */
static int find_object(hsm *h, CK_OBJECT_CLASS cls, const unsigned char *id, size_t id_len,
                       CK_OBJECT_HANDLE *out, ks_err *err)
{
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_ID, (void *)id, (CK_ULONG)id_len},
    };
    CK_RV rv = P11(h, C_FindObjectsInit, h->session, tmpl, 2);
    if (rv != CKR_OK)
        return fail_rv(err, "C_FindObjectsInit", rv);
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    rv = P11(h, C_FindObjects, h->session, found, 2, &n);
    P11(h, C_FindObjectsFinal, h->session);
    if (rv != CKR_OK)
        return fail_rv(err, "C_FindObjects", rv);
    if (n > 1)
        return ks_fail(err, "token \"%s\" holds several %s keys with the same CKA_ID",
                       h->token.label, cls == CKO_PRIVATE_KEY ? "private" : "public");
    if (n == 1)
        *out = found[0];
    return n == 1;
}

static int find_required(hsm *h, CK_OBJECT_CLASS cls, const unsigned char *id, size_t id_len,
                         CK_OBJECT_HANDLE *out, ks_err *err)
{
    int rc = find_object(h, cls, id, id_len, out, err);
    if (rc == 0)
        return ks_fail(err, "token \"%s\" (serial %s) has no %s key with this CKA_ID",
                       h->token.label, h->token.serial,
                       cls == CKO_PRIVATE_KEY ? "private" : "public");
    return rc < 0 ? -1 : 0;
}

/* DER OID of a named curve, as CKA_EC_PARAMS wants it (caller frees). */
static int ec_params_der(int nid, unsigned char **der, int *len, ks_err *err)
{
    ASN1_OBJECT *obj = OBJ_nid2obj(nid);
    *der = NULL;
    *len = obj ? i2d_ASN1_OBJECT(obj, der) : -1;
    if (*len <= 0)
        return ks_fail(err, "unsupported curve %d", nid);
    return 0;
}

int hsm_generate_key(hsm *h, const hsm_key_spec *spec, const char *label,
                     unsigned char id[HSM_KEY_ID_LEN], ks_err *err)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = spec->rsa_bits;
    CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    unsigned char *ec_params = NULL;
    int ec_params_len = 0;
    CK_OBJECT_HANDLE existing;

    /* A fresh random CKA_ID per key: labels and IDs are not unique on a
     * token, and the engine silently picks the first match. */
    if (RAND_bytes(id, HSM_KEY_ID_LEN) != 1)
        return ks_fail_openssl(err, "random CKA_ID");
    int taken = find_object(h, CKO_PRIVATE_KEY, id, HSM_KEY_ID_LEN, &existing, err);
    if (taken < 0)
        return ks_failp(err, "checking the new CKA_ID on token \"%s\"", h->token.label);
    if (taken > 0)
        return ks_fail(err, "CKA_ID collision on token \"%s\"", h->token.label);

    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub[9] = {
        {CKA_TOKEN, &yes, sizeof(yes)},     {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_VERIFY, &yes, sizeof(yes)},    {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_WRAP, &no, sizeof(no)},        {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
        {CKA_ID, id, HSM_KEY_ID_LEN},
    };
    CK_ULONG npub = 7;
    if (spec->kind == HSM_KEY_RSA) {
        pub[npub++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
        pub[npub++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent)};
    } else {
        mech.mechanism = CKM_EC_KEY_PAIR_GEN;
        if (ec_params_der(spec->ec_nid, &ec_params, &ec_params_len, err) < 0)
            return -1;
        pub[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, ec_params, (CK_ULONG)ec_params_len};
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
        {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
        {CKA_ID, id, HSM_KEY_ID_LEN},
    };
    CK_OBJECT_HANDLE hpub, hpriv;
    CK_RV rv = P11(h, C_GenerateKeyPair, h->session, &mech, pub, npub, priv,
                   sizeof(priv) / sizeof(priv[0]), &hpub, &hpriv);
    OPENSSL_free(ec_params);
    if (rv != CKR_OK) {
        fail_rv(err, "C_GenerateKeyPair", rv);
        return ks_failp(err, "generating a key on token \"%s\"", h->token.label);
    }
    return 0;
}

/* Reads one attribute into a newly allocated buffer (caller frees). */
static int get_attr(hsm *h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, unsigned char **val,
                    size_t *len, ks_err *err)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK_RV rv = P11(h, C_GetAttributeValue, h->session, obj, &a, 1);
    if (rv != CKR_OK)
        return fail_rv(err, "C_GetAttributeValue", rv);
    a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
    if (a.pValue == NULL)
        return ks_fail(err, "out of memory");
    rv = P11(h, C_GetAttributeValue, h->session, obj, &a, 1);
    if (rv != CKR_OK) {
        free(a.pValue);
        return fail_rv(err, "C_GetAttributeValue", rv);
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

static EVP_PKEY *rsa_public(hsm *h, CK_OBJECT_HANDLE obj, ks_err *err)
{
    unsigned char *n = NULL, *e = NULL;
    size_t n_len = 0, e_len = 0;
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    if (get_attr(h, obj, CKA_MODULUS, &n, &n_len, err) < 0 ||
        get_attr(h, obj, CKA_PUBLIC_EXPONENT, &e, &e_len, err) < 0)
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

/* CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (PKCS#11
 * 2.40); some modules return the bare point.  The bare form is recognised
 * by its exact length (0x04 || X || Y), which a wrapped point never has. */
static int unwrap_ec_point(const unsigned char *val, size_t len, size_t coord_len,
                           unsigned char **point, size_t *point_len)
{
    const unsigned char *src = val;
    size_t n = len;
    ASN1_OCTET_STRING *os = NULL;
    if (!(len == 1 + 2 * coord_len && val[0] == 0x04)) {
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

static EVP_PKEY *ec_public(hsm *h, CK_OBJECT_HANDLE obj, ks_err *err)
{
    unsigned char *params = NULL, *raw_point = NULL, *point = NULL;
    size_t params_len = 0, raw_len = 0, point_len = 0;
    EVP_PKEY *pkey = NULL;
    ASN1_OBJECT *oid = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    if (get_attr(h, obj, CKA_EC_PARAMS, &params, &params_len, err) < 0 ||
        get_attr(h, obj, CKA_EC_POINT, &raw_point, &raw_len, err) < 0)
        goto out;
    const unsigned char *pp = params;
    oid = d2i_ASN1_OBJECT(NULL, &pp, (long)params_len);
    const ks_curve *curve = oid ? ks_curve_by_nid(OBJ_obj2nid(oid)) : NULL;
    if (curve == NULL) {
        ks_fail(err, "token key has EC parameters that are not a supported named curve");
        goto out;
    }
    const char *group = curve->group_name;
    if (unwrap_ec_point(raw_point, raw_len, curve->coord_len, &point, &point_len) < 0) {
        ks_fail(err, "token key has a malformed CKA_EC_POINT");
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len) != 1) {
        ks_fail(err, "out of memory");
        goto out;
    }
    pkey = pkey_from_params("EC", bld, err);
out:
    OSSL_PARAM_BLD_free(bld);
    ASN1_OBJECT_free(oid);
    free(params);
    free(raw_point);
    free(point);
    return pkey;
}

static int key_type_of(hsm *h, CK_OBJECT_HANDLE obj, CK_KEY_TYPE *type, ks_err *err)
{
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, type, sizeof(*type)};
    CK_RV rv = P11(h, C_GetAttributeValue, h->session, obj, &a, 1);
    return rv == CKR_OK ? 0 : fail_rv(err, "C_GetAttributeValue(CKA_KEY_TYPE)", rv);
}

int hsm_public_key(hsm *h, const unsigned char *id, size_t id_len, EVP_PKEY **out, ks_err *err)
{
    CK_OBJECT_HANDLE obj;
    CK_KEY_TYPE type;
    *out = NULL;
    if (find_required(h, CKO_PUBLIC_KEY, id, id_len, &obj, err) < 0 ||
        key_type_of(h, obj, &type, err) < 0)
        return -1;
    if (type == CKK_RSA)
        *out = rsa_public(h, obj, err);
    else if (type == CKK_EC)
        *out = ec_public(h, obj, err);
    else
        return ks_fail(err, "token key has unsupported key type 0x%lx", (unsigned long)type);
    return *out ? 0 : -1;
}

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
    const unsigned char *prefix;
    size_t plen;
    if (md_nid == NID_sha256) {
        prefix = di_sha256;
        plen = sizeof(di_sha256);
    } else if (md_nid == NID_sha384) {
        prefix = di_sha384;
        plen = sizeof(di_sha384);
    } else if (md_nid == NID_sha512) {
        prefix = di_sha512;
        plen = sizeof(di_sha512);
    } else {
        return -1;
    }
    memcpy(out, prefix, plen);
    memcpy(out + plen, dg, dg_len);
    *out_len = plen + dg_len;
    return 0;
}

/* Large enough for every signature keysvc makes (RSA-4096: 512 bytes, P-521:
 * 132): one C_Sign call with a buffer that is always big enough, instead of
 * a length query followed by a second call. */
#define SIG_MAX 1024

static int sign_raw(hsm *h, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mech_type,
                    const unsigned char *in, size_t in_len, unsigned char **sig, size_t *sig_len,
                    ks_err *err)
{
    CK_MECHANISM mech = {mech_type, NULL, 0};
    *sig = malloc(SIG_MAX);
    if (*sig == NULL)
        return ks_fail(err, "out of memory");
    CK_RV rv = P11(h, C_SignInit, h->session, &mech, key);
    if (rv != CKR_OK) {
        free(*sig);
        *sig = NULL;
        return fail_rv(err, "C_SignInit", rv);
    }
    CK_ULONG len = SIG_MAX;
    rv = P11(h, C_Sign, h->session, (CK_BYTE *)in, (CK_ULONG)in_len, *sig, &len);
    if (rv != CKR_OK) {
        free(*sig);
        *sig = NULL;
        return fail_rv(err, "C_Sign", rv);
    }
    *sig_len = len;
    return 0;
}

int hsm_sign(hsm *h, const unsigned char *id, size_t id_len, int md_nid,
             const unsigned char *data, size_t data_len, unsigned char **sig, size_t *sig_len,
             ks_err *err)
{
    CK_OBJECT_HANDLE key;
    CK_KEY_TYPE type;
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned int dg_len = 0;
    const EVP_MD *md = EVP_get_digestbynid(md_nid);
    *sig = NULL;
    if (md == NULL)
        return ks_fail(err, "unsupported digest %d", md_nid);
    if (find_required(h, CKO_PRIVATE_KEY, id, id_len, &key, err) < 0 ||
        key_type_of(h, key, &type, err) < 0)
        return -1;
    /* SoftHSM has no CKM_ECDSA_SHA256, and not every HSM has the combined
     * RSA mechanisms: hash in software, sign the digest on the token. */
    if (EVP_Digest(data, data_len, dg, &dg_len, md, NULL) != 1)
        return ks_fail_openssl(err, "digest");
    if (type == CKK_EC)
        return sign_raw(h, key, CKM_ECDSA, dg, dg_len, sig, sig_len, err);
    if (type == CKK_RSA) {
        unsigned char di[19 + EVP_MAX_MD_SIZE];
        size_t di_len = 0;
        if (digest_info(md_nid, dg, dg_len, di, &di_len) < 0)
            return ks_fail(err, "unsupported digest for RSA");
        return sign_raw(h, key, CKM_RSA_PKCS, di, di_len, sig, sig_len, err);
    }
    return ks_fail(err, "token key has unsupported key type 0x%lx", (unsigned long)type);
}

int hsm_key_exists(hsm *h, const unsigned char *id, size_t id_len, ks_err *err)
{
    CK_OBJECT_HANDLE obj;
    int priv = find_object(h, CKO_PRIVATE_KEY, id, id_len, &obj, err);
    if (priv < 0)
        return -1;
    int pub = find_object(h, CKO_PUBLIC_KEY, id, id_len, &obj, err);
    if (pub < 0)
        return -1;
    if (priv != pub)
        return ks_fail(err, "token \"%s\" has only the %s half of a key", h->token.label,
                       priv ? "private" : "public");
    return priv;
}

/* Appends the CKA_ID of one object; IDs longer than hsm_key_id holds are
 * not keysvc's and are skipped. */
static int append_key_id(hsm *h, CK_OBJECT_HANDLE obj, hsm_key_id **ids, size_t *n, size_t *cap,
                         ks_err *err)
{
    hsm_key_id one = {0};
    CK_ATTRIBUTE a = {CKA_ID, one.id, sizeof(one.id)};
    CK_RV rv = P11(h, C_GetAttributeValue, h->session, obj, &a, 1);
    /* Objects with an ID that is too long or unreadable are someone else's;
     * a module that says OK with an impossible length is not believed. */
    if (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_SENSITIVE ||
        rv == CKR_ATTRIBUTE_TYPE_INVALID ||
        (rv == CKR_OK && (a.ulValueLen == CK_UNAVAILABLE_INFORMATION ||
                          a.ulValueLen > sizeof(one.id))))
        return 0;
    if (rv != CKR_OK)
        return fail_rv(err, "C_GetAttributeValue(CKA_ID)", rv);
    one.len = a.ulValueLen;
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        hsm_key_id *grown = realloc(*ids, ncap * sizeof(*grown));
        if (grown == NULL)
            return ks_fail(err, "out of memory");
        *ids = grown;
        *cap = ncap;
    }
    (*ids)[(*n)++] = one;
    return 0;
}

int hsm_list_private_key_ids(hsm *h, hsm_key_id **ids, size_t *n, ks_err *err)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}};
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    CK_RV rv = P11(h, C_FindObjectsInit, h->session, tmpl, 1);
    if (rv != CKR_OK)
        return fail_rv(err, "C_FindObjectsInit", rv);
    int rc = 0;
    for (;;) {
        CK_OBJECT_HANDLE batch[128];
        CK_ULONG got = 0;
        rv = P11(h, C_FindObjects, h->session, batch, 128, &got);
        if (rv != CKR_OK) {
            rc = fail_rv(err, "C_FindObjects", rv);
            break;
        }
        if (got == 0)
            break;
        for (CK_ULONG i = 0; i < got && rc == 0; i++)
            rc = append_key_id(h, batch[i], ids, n, &cap, err);
        if (rc < 0)
            break;
    }
    P11(h, C_FindObjectsFinal, h->session);
    if (rc < 0) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

int hsm_destroy_key(hsm *h, const unsigned char *id, size_t id_len, ks_err *err)
{
    CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    for (size_t i = 0; i < 2; i++) {
        CK_OBJECT_HANDLE obj;
        int rc = find_object(h, classes[i], id, id_len, &obj, err);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        CK_RV rv = P11(h, C_DestroyObject, h->session, obj);
        if (rv != CKR_OK)
            return fail_rv(err, "C_DestroyObject", rv);
    }
    return 0;
}

static int get_bool(hsm *h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, int *out)
{
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a = {type, &v, sizeof(v)};
    CK_RV rv = P11(h, C_GetAttributeValue, h->session, obj, &a, 1);
    *out = rv == CKR_OK && v == CK_TRUE;
    return rv == CKR_OK ? 0 : -1;
}

int hsm_inspect_key(hsm *h, const unsigned char *id, size_t id_len, hsm_key_attrs *out,
                    ks_err *err)
{
    CK_OBJECT_HANDLE key;
    CK_KEY_TYPE type;
    memset(out, 0, sizeof(*out));
    if (find_required(h, CKO_PRIVATE_KEY, id, id_len, &key, err) < 0 ||
        key_type_of(h, key, &type, err) < 0)
        return -1;
    if (get_bool(h, key, CKA_TOKEN, &out->is_token) < 0 ||
        get_bool(h, key, CKA_PRIVATE, &out->is_private) < 0 ||
        get_bool(h, key, CKA_SENSITIVE, &out->sensitive) < 0 ||
        get_bool(h, key, CKA_EXTRACTABLE, &out->extractable) < 0 ||
        get_bool(h, key, CKA_ALWAYS_SENSITIVE, &out->always_sensitive) < 0 ||
        get_bool(h, key, CKA_NEVER_EXTRACTABLE, &out->never_extractable) < 0)
        return ks_fail(err, "cannot read the attributes of the private key");
    /* Ask for the secret itself: a sealed key answers CKR_ATTRIBUTE_SENSITIVE. */
    unsigned char buf[1024];
    CK_ATTRIBUTE secret = {type == CKK_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE, buf, sizeof(buf)};
    out->secret_read_rv = P11(h, C_GetAttributeValue, h->session, key, &secret, 1);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}
