/*
 * TLSA record data (keysvc/tlsa.h): which subjects each usage and selector
 * takes (end-entity keys, end-entity certificates, trust anchor
 * certificates, trust anchor keys), the SHA-256 and SHA-512 records of each
 * in RFC 6698 presentation form, and duplicates removed.  The digests are
 * computed here with OpenSSL's one-shot SHA256()/SHA512() over DER made by
 * i2d_*, independently of the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "dns.h"
#include "ks_err.h"
#include "tlsa.h"

typedef struct fixture {
    EVP_PKEY *leaf_key, *ca_key;
    X509 *leaf, *ca;
} fixture;

static X509 *self_signed_new(EVP_PKEY *key, const char *cn)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->leaf_key = EVP_EC_gen("P-256");
    f->ca_key = EVP_EC_gen("P-384");
    f->leaf = self_signed_new(f->leaf_key, "leaf");
    f->ca = self_signed_new(f->ca_key, "ca");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    X509_free(f->leaf);
    X509_free(f->ca);
    EVP_PKEY_free(f->leaf_key);
    EVP_PKEY_free(f->ca_key);
    free(f);
    return 0;
}

/* out holds 2 * n + 1 bytes. */
static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* "u s 1 <sha256>" or "u s 2 <sha512>" of `der`, into out[300]. */
static void expected(int usage, int selector, int matching, const unsigned char *der, int len,
                     char *out)
{
    unsigned char md[SHA512_DIGEST_LENGTH];
    char h[2 * SHA512_DIGEST_LENGTH + 1];
    size_t n = matching == 1 ? SHA256_DIGEST_LENGTH : SHA512_DIGEST_LENGTH;
    if (matching == 1)
        SHA256(der, (size_t)len, md);
    else
        SHA512(der, (size_t)len, md);
    hex(md, n, h);
    snprintf(out, 300, "%d %d %d %s", usage, selector, matching, h);
}

/* Checks that the records are exactly the SHA-256 and SHA-512 records of
 * `der`, in that order. */
static void expect_records(const ks_tlsa_record *rec, const ks_tlsa_material *m,
                           const unsigned char *der, int len)
{
    char **rdata = NULL;
    size_t n = 0;
    ks_err err = {0};
    assert_int_equal(ks_tlsa_rdata_new(rec, m, &rdata, &n, &err), 0);
    assert_int_equal(n, 2);
    char want[300];
    expected(rec->usage, rec->selector, 1, der, len, want);
    assert_string_equal(rdata[0], want);
    expected(rec->usage, rec->selector, 2, der, len, want);
    assert_string_equal(rdata[1], want);
    assert_null(rdata[2]);
    ks_dns_strings_free(rdata);
}

/* The DER a record of `usage`/`selector` must hash, made here. */
static int subject_der(fixture *f, int usage, int selector, unsigned char **der)
{
    int end_entity = usage == KS_TLSA_USAGE_PKIX_EE || usage == KS_TLSA_USAGE_DANE_EE;
    if (selector == KS_TLSA_SELECTOR_CERT)
        return i2d_X509(end_entity ? f->leaf : f->ca, der);
    return i2d_PUBKEY(end_entity ? f->leaf_key : f->ca_key, der);
}

/* The leaf twice (two key types sharing a key), the CA twice (chain and
 * root), the leaf key twice (primary twice listed): duplicates go, and each
 * usage and selector takes its own subject. */
static void expect_subject(fixture *f, int usage, int selector)
{
    X509 *leaves[2] = {f->leaf, f->leaf}, *anchors[2] = {f->ca, f->ca};
    EVP_PKEY *keys[2] = {f->leaf_key, f->leaf_key};
    ks_tlsa_material m = {leaves, 2, anchors, 2, keys, 2};
    ks_tlsa_record rec = {.usage = usage, .selector = selector};
    unsigned char *der = NULL;
    int len = subject_der(f, usage, selector, &der);
    expect_records(&rec, &m, der, len);
    OPENSSL_free(der);
}

static void test_end_entity_spki_is_the_keys(void **state)
{
    expect_subject(*state, KS_TLSA_USAGE_PKIX_EE, KS_TLSA_SELECTOR_SPKI);
}

static void test_end_entity_cert_is_the_certificates(void **state)
{
    expect_subject(*state, KS_TLSA_USAGE_DANE_EE, KS_TLSA_SELECTOR_CERT);
}

static void test_trust_anchor_cert_is_the_chain(void **state)
{
    expect_subject(*state, KS_TLSA_USAGE_PKIX_TA, KS_TLSA_SELECTOR_CERT);
}

static void test_trust_anchor_spki_is_the_chain_keys(void **state)
{
    expect_subject(*state, KS_TLSA_USAGE_DANE_TA, KS_TLSA_SELECTOR_SPKI);
}

/* Checks that the records are those of `first`, then those of `second`. */
static void expect_two_subjects(const ks_tlsa_record *rec, const ks_tlsa_material *m,
                                const unsigned char *first, int first_len,
                                const unsigned char *second, int second_len)
{
    char **rdata = NULL;
    size_t n = 0;
    ks_err err = {0};
    assert_int_equal(ks_tlsa_rdata_new(rec, m, &rdata, &n, &err), 0);
    assert_int_equal(n, 4);
    char want[300];
    for (int matching = 1; matching <= 2; matching++) {
        expected(rec->usage, rec->selector, matching, first, first_len, want);
        assert_string_equal(rdata[matching - 1], want);
        expected(rec->usage, rec->selector, matching, second, second_len, want);
        assert_string_equal(rdata[matching + 1], want);
    }
    ks_dns_strings_free(rdata);
}

/* After a rollover the token's keys are new but the installed certificate
 * is still on the old key: both are published, the keys' first. */
static void test_end_entity_spki_keeps_the_certificate_key(void **state)
{
    fixture *f = *state;
    X509 *leaves[1] = {f->ca}; /* a certificate on a key the token no longer has */
    EVP_PKEY *keys[1] = {f->leaf_key};
    ks_tlsa_material m = {leaves, 1, NULL, 0, keys, 1};
    ks_tlsa_record rec = {.usage = KS_TLSA_USAGE_DANE_EE, .selector = KS_TLSA_SELECTOR_SPKI};
    unsigned char *key_der = NULL, *cert_key_der = NULL;
    int key_len = i2d_PUBKEY(f->leaf_key, &key_der);
    int cert_key_len = i2d_PUBKEY(f->ca_key, &cert_key_der);
    expect_two_subjects(&rec, &m, key_der, key_len, cert_key_der, cert_key_len);
    OPENSSL_free(key_der);
    OPENSSL_free(cert_key_der);
}

/* Two different certificates give four records, the first one's first. */
static void test_two_subjects_in_order(void **state)
{
    fixture *f = *state;
    X509 *leaves[2] = {f->leaf, f->ca};
    ks_tlsa_material m = {leaves, 2, NULL, 0, NULL, 0};
    ks_tlsa_record rec = {.usage = KS_TLSA_USAGE_DANE_EE, .selector = KS_TLSA_SELECTOR_CERT};
    unsigned char *first = NULL, *second = NULL;
    int first_len = i2d_X509(f->leaf, &first);
    int second_len = i2d_X509(f->ca, &second);
    expect_two_subjects(&rec, &m, first, first_len, second, second_len);
    OPENSSL_free(first);
    OPENSSL_free(second);
}

static void test_nothing_gives_no_records(void **state)
{
    (void)state;
    ks_tlsa_material m = {0};
    ks_tlsa_record rec = {.usage = KS_TLSA_USAGE_PKIX_EE, .selector = KS_TLSA_SELECTOR_SPKI};
    char **rdata = NULL;
    size_t n = 7;
    ks_err err = {0};
    assert_int_equal(ks_tlsa_rdata_new(&rec, &m, &rdata, &n, &err), 0);
    assert_int_equal(n, 0);
    ks_dns_strings_free(rdata);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_end_entity_spki_is_the_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_entity_cert_is_the_certificates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust_anchor_cert_is_the_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust_anchor_spki_is_the_chain_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_entity_spki_keeps_the_certificate_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_subjects_in_order, setup, teardown),
        cmocka_unit_test(test_nothing_gives_no_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
