/*
 * Certificate chains from the CA (keysvc/chain.h): a tiny CA made in the
 * test (root -> intermediate -> leaf, software keys), parsed and checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chain.h"
#include "ks_err.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define NOT_BEFORE ((time_t)1700000000) /* 2023-11-14T22:13:20Z */
#define NOT_AFTER ((time_t)(1700000000 + 90 * 86400))
#define LEAF_SERIAL_HEX "7F1B2C3D4E5F60718293ABCDEF"

static EVP_PKEY *gen_ec(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    return k;
}

static void set_cn(X509_NAME *n, const char *cn)
{
    assert_int_equal(
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0),
        1);
}

static void add_sans(X509 *x, const char *const *names, size_t n)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    assert_non_null(gens);
    for (size_t i = 0; i < n; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
        assert_non_null(g);
        assert_non_null(ia5);
        assert_int_equal(ASN1_STRING_set(ia5, names[i], -1), 1);
        GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
        assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
    }
    assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
    GENERAL_NAMES_free(gens);
}

/* A certificate for `key` named `cn`, issued by (issuer, issuer_key); self-signed
 * when issuer is NULL. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *serial_hex, const char *const *sans, size_t n_sans)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    BIGNUM *bn = NULL;
    assert_true(BN_hex2bn(&bn, serial_hex) > 0);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), NOT_BEFORE));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), NOT_AFTER));
    set_cn(X509_get_subject_name(x), cn);
    assert_int_equal(
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x)),
        1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    if (n_sans > 0)
        add_sans(x, sans, n_sans);
    assert_true(X509_sign(x, issuer ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static char *pem_of(X509 *x)
{
    BIO *mem = BIO_new(BIO_s_mem());
    assert_non_null(mem);
    assert_int_equal(PEM_write_bio_X509(mem, x), 1);
    char *data = NULL;
    long len = BIO_get_mem_data(mem, &data);
    char *out = strndup(data, (size_t)len);
    BIO_free(mem);
    assert_non_null(out);
    return out;
}

static char *concat3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%s%s%s", a, b, c);
    return out;
}

/* The test CA: built once for the whole group. */
typedef struct pki {
    EVP_PKEY *root_key, *inter_key, *leaf_key, *other_key;
    X509 *root, *inter, *leaf;
    char *root_pem, *inter_pem, *leaf_pem;
} pki;

static pki P;

static const char *const leaf_names[] = {"www.example.test", "example.test", "api.example.test"};

static int setup_pki(void **state)
{
    (void)state;
    P.root_key = gen_ec();
    P.inter_key = gen_ec();
    P.leaf_key = gen_ec();
    P.other_key = gen_ec();
    P.root = make_cert(P.root_key, "Test Root", NULL, NULL, "01", NULL, 0);
    P.inter = make_cert(P.inter_key, "Test Intermediate", P.root, P.root_key, "02", NULL, 0);
    P.leaf = make_cert(P.leaf_key, "www.example.test", P.inter, P.inter_key, LEAF_SERIAL_HEX,
                       leaf_names, 3);
    P.root_pem = pem_of(P.root);
    P.inter_pem = pem_of(P.inter);
    P.leaf_pem = pem_of(P.leaf);
    return 0;
}

static int teardown_pki(void **state)
{
    (void)state;
    EVP_PKEY_free(P.root_key);
    EVP_PKEY_free(P.inter_key);
    EVP_PKEY_free(P.leaf_key);
    EVP_PKEY_free(P.other_key);
    X509_free(P.root);
    X509_free(P.inter);
    X509_free(P.leaf);
    free(P.root_pem);
    free(P.inter_pem);
    free(P.leaf_pem);
    memset(&P, 0, sizeof(P));
    return 0;
}

/* ---- ks_chain_parse ------------------------------------------------------ */

static void test_parse_full_chain(void **state)
{
    (void)state;
    char *in = concat3(P.leaf_pem, P.inter_pem, P.root_pem);
    ks_chain c;
    ks_err err = {{0}};
    if (ks_chain_parse(in, &c, &err) != 0)
        fail_msg("ks_chain_parse: %s", err.msg);
    assert_string_equal(c.leaf_pem, P.leaf_pem);
    char *want_chain = concat3(P.inter_pem, P.root_pem, "");
    assert_string_equal(c.chain_pem, want_chain);
    assert_string_equal(c.serial, LEAF_SERIAL_HEX);
    assert_int_equal(c.not_before, NOT_BEFORE);
    assert_int_equal(c.not_after, NOT_AFTER);
    ks_chain_clear(&c);
    assert_null(c.leaf_pem);
    assert_null(c.chain_pem);
    assert_null(c.serial);
    free(want_chain);
    free(in);
}

static void test_parse_leaf_only_and_crlf(void **state)
{
    (void)state;
    ks_chain c;
    ks_err err = {{0}};
    assert_int_equal(ks_chain_parse(P.leaf_pem, &c, &err), 0);
    assert_string_equal(c.leaf_pem, P.leaf_pem);
    assert_string_equal(c.chain_pem, "");
    assert_string_equal(c.serial, LEAF_SERIAL_HEX);
    ks_chain_clear(&c);

    /* CRLF line ends and text between blocks are normal in CA output. */
    size_t n = 2 * strlen(P.leaf_pem) + strlen(P.inter_pem) * 2 + 64;
    char *crlf = malloc(n);
    assert_non_null(crlf);
    size_t o = 0;
    const char *parts[] = {P.leaf_pem, "\r\n", P.inter_pem};
    for (size_t i = 0; i < 3; i++)
        for (const char *s = parts[i]; *s; s++) {
            if (*s == '\n' && (s == parts[i] || s[-1] != '\r'))
                crlf[o++] = '\r';
            crlf[o++] = *s;
        }
    crlf[o] = '\0';
    assert_int_equal(ks_chain_parse(crlf, &c, &err), 0);
    assert_string_equal(c.leaf_pem, P.leaf_pem); /* re-encoded */
    assert_string_equal(c.chain_pem, P.inter_pem);
    ks_chain_clear(&c);
    free(crlf);
}

static void expect_parse_failure(const char *in)
{
    ks_chain c;
    memset(&c, 0x5a, sizeof(c));
    ks_err err = {{0}};
    assert_int_equal(ks_chain_parse(in, &c, &err), -1);
    assert_true(err.msg[0] != '\0');
    /* Nothing is left behind on failure. */
    assert_null(c.leaf_pem);
    assert_null(c.chain_pem);
    assert_null(c.serial);
}

static void test_parse_empty_and_garbage(void **state)
{
    (void)state;
    expect_parse_failure("");
    expect_parse_failure("garbage");
    expect_parse_failure("\n\n");
    expect_parse_failure("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
}

/* Replaces characters in the base64 body of the first block. */
static char *corrupt_body(const char *pem, size_t at, const char *with)
{
    char *copy = strdup(pem);
    assert_non_null(copy);
    char *body = strchr(copy, '\n');
    assert_non_null(body);
    body += 1 + at;
    memcpy(body, with, strlen(with));
    return copy;
}

static void test_parse_broken_block(void **state)
{
    (void)state;
    /* Base64 that decodes to something that is not DER. */
    char *bad_der = corrupt_body(P.inter_pem, 0, "AAAAAAAA");
    char *in = concat3(P.leaf_pem, bad_der, P.root_pem);
    expect_parse_failure(in);
    free(in);
    /* The broken block first. */
    in = concat3(bad_der, P.leaf_pem, "");
    expect_parse_failure(in);
    free(in);
    free(bad_der);

    /* Characters that are not base64 at all. */
    char *bad_b64 = corrupt_body(P.inter_pem, 10, "!!**");
    in = concat3(P.leaf_pem, bad_b64, "");
    expect_parse_failure(in);
    free(in);
    free(bad_b64);

    /* A block cut off before its END line. */
    char *cut = strdup(P.inter_pem);
    assert_non_null(cut);
    cut[strlen(cut) / 2] = '\0';
    in = concat3(P.leaf_pem, cut, "");
    expect_parse_failure(in);
    free(in);
    free(cut);
}

/* "Anything that is not a certificate ... is an error": a private key (or
 * any other PEM block) in what the CA sent must not be skipped silently. */
static void test_parse_foreign_pem_block(void **state)
{
    (void)state;
    BIO *mem = BIO_new(BIO_s_mem());
    assert_non_null(mem);
    assert_int_equal(PEM_write_bio_PUBKEY(mem, P.other_key), 1);
    char *data = NULL;
    long len = BIO_get_mem_data(mem, &data);
    char *block = strndup(data, (size_t)len);
    BIO_free(mem);
    assert_non_null(block);
    char *in = concat3(P.leaf_pem, block, P.inter_pem);
    expect_parse_failure(in);
    free(in);
    /* First, it would even make the next certificate the "leaf". */
    in = concat3(block, P.inter_pem, "");
    expect_parse_failure(in);
    free(in);
    free(block);
}

/* ---- ks_chain_check_leaf --------------------------------------------------- */

static int check_leaf(const char *pem, EVP_PKEY *key, const char *const *names, size_t n,
                      ks_err *err)
{
    return ks_chain_check_leaf(pem, key, (char *const *)names, n, err);
}

static void test_check_leaf_ok(void **state)
{
    (void)state;
    ks_err err = {{0}};
    if (check_leaf(P.leaf_pem, P.leaf_key, leaf_names, 3, &err) != 0)
        fail_msg("check_leaf: %s", err.msg);
    /* Order does not matter, case does not matter for DNS names. */
    static const char *const shuffled[] = {"API.example.test", "example.test", "www.example.test"};
    if (check_leaf(P.leaf_pem, P.leaf_key, shuffled, 3, &err) != 0)
        fail_msg("check_leaf (shuffled): %s", err.msg);
    /* A public-only copy of the key is what the caller really has. */
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(P.leaf_key, &der);
    assert_true(n > 0);
    const unsigned char *p = der;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, n);
    OPENSSL_free(der);
    assert_non_null(pub);
    assert_int_equal(check_leaf(P.leaf_pem, pub, leaf_names, 3, &err), 0);
    EVP_PKEY_free(pub);
}

static void test_check_leaf_wrong_key(void **state)
{
    (void)state;
    ks_err err = {{0}};
    assert_int_equal(check_leaf(P.leaf_pem, P.other_key, leaf_names, 3, &err), -1);
    assert_true(err.msg[0] != '\0');
    /* The intermediate's key is not the leaf's either. */
    assert_int_equal(check_leaf(P.leaf_pem, P.inter_key, leaf_names, 3, &err), -1);
}

static void test_check_leaf_missing_name(void **state)
{
    (void)state;
    ks_err err = {{0}};
    static const char *const more[] = {"www.example.test", "example.test", "api.example.test",
                                       "mail.example.test"};
    assert_int_equal(check_leaf(P.leaf_pem, P.leaf_key, more, 4, &err), -1);
    assert_true(err.msg[0] != '\0');
    static const char *const swapped[] = {"www.example.test", "example.test", "ftp.example.test"};
    err.msg[0] = '\0';
    assert_int_equal(check_leaf(P.leaf_pem, P.leaf_key, swapped, 3, &err), -1);
    assert_true(err.msg[0] != '\0');
}

static void test_check_leaf_extra_name(void **state)
{
    (void)state;
    ks_err err = {{0}};
    assert_int_equal(check_leaf(P.leaf_pem, P.leaf_key, leaf_names, 2, &err), -1);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(check_leaf(P.leaf_pem, P.leaf_key, leaf_names + 2, 1, &err), -1);
}

/* A certificate that repeats one name instead of carrying another does not
 * carry "exactly the DNS names given". */
static void test_check_leaf_duplicate_san(void **state)
{
    (void)state;
    static const char *const dup[] = {"www.example.test", "www.example.test"};
    X509 *x = make_cert(P.leaf_key, "www.example.test", P.inter, P.inter_key, "0123", dup, 2);
    char *pem = pem_of(x);
    static const char *const want[] = {"www.example.test", "example.test"};
    ks_err err = {{0}};
    assert_int_equal(check_leaf(pem, P.leaf_key, want, 2, &err), -1);
    free(pem);
    X509_free(x);
}

static void test_check_leaf_garbage(void **state)
{
    (void)state;
    ks_err err = {{0}};
    assert_int_equal(check_leaf("not a certificate", P.leaf_key, leaf_names, 3, &err), -1);
    assert_true(err.msg[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full_chain),
        cmocka_unit_test(test_parse_leaf_only_and_crlf),
        cmocka_unit_test(test_parse_empty_and_garbage),
        cmocka_unit_test(test_parse_broken_block),
        cmocka_unit_test(test_parse_foreign_pem_block),
        cmocka_unit_test(test_check_leaf_ok),
        cmocka_unit_test(test_check_leaf_wrong_key),
        cmocka_unit_test(test_check_leaf_missing_name),
        cmocka_unit_test(test_check_leaf_extra_name),
        cmocka_unit_test(test_check_leaf_duplicate_san),
        cmocka_unit_test(test_check_leaf_garbage),
    };
    return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
