/*
 * PKCS#10 requests (keysvc/csr.h) signed through a callback with the token's
 * contract (raw r||s for EC, PKCS#1 v1.5 for RSA), using software keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "csr.h"
#include "soft_key.h"
#include "ks_err.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

enum { K_P256, K_P384, K_P521, K_RSA, K_COUNT };

static const struct {
    const char *name;
    size_t coord_len; /* 0: RSA */
    int md_nid;
    int sig_nid;
} kinds[K_COUNT] = {
    {"P-256", 32, NID_sha256, NID_ecdsa_with_SHA256},
    {"P-384", 48, NID_sha384, NID_ecdsa_with_SHA384},
    {"P-521", 66, NID_sha512, NID_ecdsa_with_SHA512},
    {"RSA-2048", 0, NID_sha256, NID_sha256WithRSAEncryption},
};

/* RSA key generation is slow (and very slow under valgrind): RSA tests share
 * one key, with a second one for the wrong-key case. */
static EVP_PKEY *rsa_keys[2];

static EVP_PKEY *rsa_key(int which)
{
    if (rsa_keys[which] == NULL)
        rsa_keys[which] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(rsa_keys[which]);
    assert_int_equal(EVP_PKEY_up_ref(rsa_keys[which]), 1);
    return rsa_keys[which];
}

/* A new EC key, or a reference to the shared RSA key (caller frees either). */
static EVP_PKEY *gen_key(int kind)
{
    if (kind == K_RSA)
        return rsa_key(0);
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", kinds[kind].name);
    assert_non_null(k);
    return k;
}

static int teardown_rsa(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        EVP_PKEY_free(rsa_keys[i]);
        rsa_keys[i] = NULL;
    }
    return 0;
}

/* ---- the software "token" ----------------------------------------------- */

enum { SIGN_OK, SIGN_GARBAGE, SIGN_ODD_LENGTH, SIGN_REFUSE };

typedef struct soft_token {
    EVP_PKEY *key;
    size_t coord_len;
    int mode;
    int calls;
    int last_md_nid;
} soft_token;

static int soft_sign(void *ctx, int md_nid, const unsigned char *tbs, size_t tbs_len,
                     unsigned char **sig, size_t *sig_len, ks_err *err)
{
    soft_token *t = ctx;
    t->calls++;
    t->last_md_nid = md_nid;
    if (t->mode == SIGN_REFUSE)
        return ks_fail(err, "CKR_DEVICE_ERROR");
    size_t want = t->coord_len ? 2 * t->coord_len : (size_t)EVP_PKEY_get_size(t->key);
    if (t->mode == SIGN_GARBAGE || t->mode == SIGN_ODD_LENGTH) {
        size_t n = t->mode == SIGN_ODD_LENGTH ? want - 1 : want;
        *sig = malloc(n);
        assert_non_null(*sig);
        assert_int_equal(RAND_bytes(*sig, (int)n), 1);
        *sig_len = n;
        return 0;
    }
    size_t der_len = 0;
    unsigned char *der =
        soft_digest_sign(t->key, EVP_get_digestbynid(md_nid), tbs, tbs_len, &der_len);
    if (der == NULL)
        return ks_fail(err, "software signing failed");
    if (t->coord_len == 0) {
        *sig = der;
        *sig_len = der_len;
        return 0;
    }
    *sig = soft_ecdsa_der_to_raw(der, der_len, t->coord_len);
    *sig_len = 2 * t->coord_len;
    free(der);
    return *sig ? 0 : ks_fail(err, "bad DER from OpenSSL");
}

/* ---- checking a CSR independently ------------------------------------------ */

static void check_subject_cn(X509_REQ *req, const char *cn)
{
    X509_NAME *subj = X509_REQ_get_subject_name(req);
    assert_int_equal(X509_NAME_entry_count(subj), 1);
    int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    assert_true(idx >= 0);
    const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
    assert_int_equal(ASN1_STRING_length(v), (int)strlen(cn));
    assert_memory_equal(ASN1_STRING_get0_data(v), cn, strlen(cn));
}

static void check_sans(X509_REQ *req, const char *const *names, size_t n)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    assert_non_null(exts);
    assert_int_equal(sk_X509_EXTENSION_num(exts), 1);
    GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), (int)n);
    for (size_t i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, (int)i);
        assert_int_equal(g->type, GEN_DNS);
        assert_int_equal(ASN1_STRING_length(g->d.dNSName), (int)strlen(names[i]));
        assert_memory_equal(ASN1_STRING_get0_data(g->d.dNSName), names[i], strlen(names[i]));
    }
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

static void check_sig_alg(X509_REQ *req, int kind)
{
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *alg = NULL;
    X509_REQ_get0_signature(req, &sig, &alg);
    assert_non_null(sig);
    assert_non_null(alg);
    const ASN1_OBJECT *obj = NULL;
    int ptype = -1;
    const void *pval = NULL;
    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    assert_int_equal(OBJ_obj2nid(obj), kinds[kind].sig_nid);
    /* RFC 5754 / RFC 3279: no parameters for ECDSA, NULL for RSA. */
    assert_int_equal(ptype, kinds[kind].coord_len ? V_ASN1_UNDEF : V_ASN1_NULL);
    assert_int_equal(X509_REQ_get_signature_nid(req), kinds[kind].sig_nid);
}

/* Parses the DER as a CA would and checks everything; returns the verify result. */
static int csr_der_verifies(const unsigned char *der, size_t der_len, EVP_PKEY *pub, int kind,
                            const char *cn, const char *const *names, size_t n)
{
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)der_len);
    assert_non_null(req);
    assert_ptr_equal(p, der + der_len); /* nothing after the request */
    /* DER round trip is byte-exact. */
    unsigned char *again = NULL;
    int n2 = i2d_X509_REQ(req, &again);
    assert_int_equal(n2, (int)der_len);
    assert_memory_equal(again, der, der_len);
    OPENSSL_free(again);

    assert_int_equal(X509_REQ_get_version(req), X509_REQ_VERSION_1);
    EVP_PKEY *inreq = X509_REQ_get0_pubkey(req);
    assert_non_null(inreq);
    assert_int_equal(EVP_PKEY_eq(inreq, pub), 1);
    check_subject_cn(req, cn);
    check_sans(req, names, n);
    check_sig_alg(req, kind);
    int ok = X509_REQ_verify(req, pub);
    X509_REQ_free(req);
    return ok;
}

static void build_and_check(EVP_PKEY *key, int kind, const char *cn, const char *const *names,
                            size_t n)
{
    soft_token t = {.key = key, .coord_len = kinds[kind].coord_len, .mode = SIGN_OK};
    unsigned char *der = NULL;
    size_t der_len = 0;
    ks_err err = {{0}};
    if (csr_build_der(key, cn, names, n, soft_sign, &t, &der, &der_len, &err) != 0)
        fail_msg("csr_build_der(%s, %s) failed: %s", kinds[kind].name, cn, err.msg);
    assert_non_null(der);
    assert_int_equal(t.calls, 1);
    assert_int_equal(t.last_md_nid, kinds[kind].md_nid);
    int ok = csr_der_verifies(der, der_len, key, kind, cn, names, n);
    if (ok != 1)
        fail_msg("%s CSR for %s does not verify after a DER round trip (X509_REQ_verify=%d)",
                 kinds[kind].name, cn, ok);
    free(der);
}

/* ---- tests ------------------------------------------------------------ */

static const char *const three_names[] = {"www.example.test", "example.test", "a.b.example.test"};

static void test_each_key_type(void **state)
{
    (void)state;
    for (int kind = 0; kind < K_COUNT; kind++) {
        EVP_PKEY *k = gen_key(kind);
        build_and_check(k, kind, "www.example.test", three_names, 3);
        build_and_check(k, kind, "example.test", three_names + 1, 1);
        EVP_PKEY_free(k);
    }
}

static void test_wildcard_name(void **state)
{
    (void)state;
    static const char *const names[] = {"*.example.test", "example.test"};
    EVP_PKEY *k = gen_key(K_P256);
    build_and_check(k, K_P256, "*.example.test", names, 2);
    EVP_PKEY_free(k);
}

/* The BIT STRING "unused bits" trap breaks about half of all requests: 200
 * in a row for each curve must survive the round trip and verify. */
static void loop_curve(int kind)
{
    for (int i = 0; i < 200; i++) {
        EVP_PKEY *k = gen_key(kind);
        char cn[64], alt[64];
        snprintf(cn, sizeof(cn), "host%d.example.test", i);
        snprintf(alt, sizeof(alt), "alt%d.example.test", i);
        const char *const names[] = {cn, alt};
        build_and_check(k, kind, cn, names, 2);
        EVP_PKEY_free(k);
    }
}

static void test_loop_p256(void **state)
{
    (void)state;
    loop_curve(K_P256);
}

static void test_loop_p384(void **state)
{
    (void)state;
    loop_curve(K_P384);
}

static void test_loop_p521(void **state)
{
    (void)state;
    loop_curve(K_P521);
}

/* RSA signatures end in a zero bit half the time too; one key, many names. */
static void test_loop_rsa(void **state)
{
    (void)state;
    EVP_PKEY *k = gen_key(K_RSA);
    for (int i = 0; i < 64; i++) {
        char cn[64];
        snprintf(cn, sizeof(cn), "rsa%d.example.test", i);
        const char *const names[] = {cn};
        build_and_check(k, K_RSA, cn, names, 1);
    }
    EVP_PKEY_free(k);
}

static void expect_build_failure(int kind, int mode, EVP_PKEY *signing_key, const char *want)
{
    EVP_PKEY *pub = gen_key(kind);
    soft_token t = {
        .key = signing_key ? signing_key : pub, .coord_len = kinds[kind].coord_len, .mode = mode};
    unsigned char *der = (unsigned char *)"sentinel";
    size_t der_len = 0;
    ks_err err = {{0}};
    int rc =
        csr_build_der(pub, "example.test", three_names + 1, 1, soft_sign, &t, &der, &der_len, &err);
    assert_int_equal(rc, -1);
    assert_null(der);
    assert_int_equal(t.calls, 1);
    assert_true(err.msg[0] != '\0');
    if (want != NULL && strstr(err.msg, want) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err.msg, want);
    EVP_PKEY_free(pub);
}

static void test_garbage_signature_is_refused(void **state)
{
    (void)state;
    for (int kind = 0; kind < K_COUNT; kind++)
        expect_build_failure(kind, SIGN_GARBAGE, NULL, "does not verify");
}

static void test_odd_length_ec_signature_is_refused(void **state)
{
    (void)state;
    expect_build_failure(K_P256, SIGN_ODD_LENGTH, NULL, NULL);
    expect_build_failure(K_P521, SIGN_ODD_LENGTH, NULL, NULL);
}

static void test_signature_by_another_key_is_refused(void **state)
{
    (void)state;
    EVP_PKEY *other = gen_key(K_P256);
    expect_build_failure(K_P256, SIGN_OK, other, "does not verify");
    EVP_PKEY_free(other);
    other = rsa_key(1);
    expect_build_failure(K_RSA, SIGN_OK, other, "does not verify");
    EVP_PKEY_free(other);
}

static void test_signer_error_propagates(void **state)
{
    (void)state;
    expect_build_failure(K_P384, SIGN_REFUSE, NULL, "CKR_DEVICE_ERROR");
    expect_build_failure(K_RSA, SIGN_REFUSE, NULL, "CKR_DEVICE_ERROR");
}

static void test_digest_for_key(void **state)
{
    (void)state;
    for (int kind = 0; kind < K_COUNT; kind++) {
        EVP_PKEY *k = gen_key(kind);
        assert_int_equal(csr_digest_for_key(k), kinds[kind].md_nid);
        EVP_PKEY_free(k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_key_type),
        cmocka_unit_test(test_wildcard_name),
        cmocka_unit_test(test_loop_p256),
        cmocka_unit_test(test_loop_p384),
        cmocka_unit_test(test_loop_p521),
        cmocka_unit_test(test_loop_rsa),
        cmocka_unit_test(test_garbage_signature_is_refused),
        cmocka_unit_test(test_odd_length_ec_signature_is_refused),
        cmocka_unit_test(test_signature_by_another_key_is_refused),
        cmocka_unit_test(test_signer_error_propagates),
        cmocka_unit_test(test_digest_for_key),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_rsa);
}
