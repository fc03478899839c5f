/*
 * The token side of keysvc against a real SoftHSM (run under with-softhsm.sh):
 * keys of every type generated sealed in the token, JWS and CSR signatures
 * made by the token and verified independently with OpenSSL, references to
 * another token refused, wrong PIN and missing token reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "b64.h"
#include "csr.h"
#include "jws.h"
#include "signer.h"
#include "soft_key.h"

#include <json-c/json.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ks_signer *open_token(const char *label)
{
    ks_signer_config cfg = {.module = getenv("KS_PKCS11_MODULE"),
                            .token_label = label,
                            .pin_file = getenv("KS_PIN_FILE")};
    ks_err err = {0};
    ks_signer *s = ks_signer_open(&cfg, &err);
    if (s == NULL)
        fail_msg("opening token %s: %s", label, err.msg);
    return s;
}

static const hsm_key_spec specs[] = {
    {.kind = HSM_KEY_EC, .ec_nid = NID_X9_62_prime256v1},
    {.kind = HSM_KEY_EC, .ec_nid = NID_secp384r1},
    {.kind = HSM_KEY_EC, .ec_nid = NID_secp521r1},
    {.kind = HSM_KEY_RSA, .rsa_bits = 2048},
};

/* Verifies a JWS-form signature (r||s for EC) with OpenSSL. */
static int verify_jws_sig(EVP_PKEY *pub, const char *alg, const unsigned char *in, size_t len,
                          const unsigned char *sig, size_t sig_len)
{
    const EVP_MD *md = strcmp(alg, "ES384") == 0   ? EVP_sha384()
                       : strcmp(alg, "ES512") == 0 ? EVP_sha512()
                                                   : EVP_sha256();
    if (alg[0] != 'E')
        return soft_digest_verify(pub, md, in, len, sig, sig_len);
    size_t der_len = 0;
    unsigned char *der = soft_ecdsa_raw_to_der(sig, sig_len, &der_len);
    int ok = der != NULL && soft_digest_verify(pub, md, in, len, der, der_len);
    OPENSSL_free(der);
    return ok;
}

static void test_keys_sealed_and_signing(void **state)
{
    (void)state;
    ks_signer *s = open_token("ks-a");
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        ks_keyref ref;
        ks_err err = {0};
        EVP_PKEY *pub = NULL;
        hsm_key_attrs attrs;
        assert_int_equal(ks_signer_generate(s, &specs[i], "test-key", &ref, &err), 0);
        assert_int_equal(ks_signer_key_exists(s, &ref, &err), 1);
        assert_int_equal(ks_signer_public_key(s, &ref, &pub, &err), 0);
        assert_int_equal(ks_signer_inspect(s, &ref, &attrs, &err), 0);
        assert_true(attrs.is_token && attrs.is_private && attrs.sensitive);
        assert_false(attrs.extractable);
        assert_true(attrs.always_sensitive && attrs.never_extractable);
        assert_string_equal(hsm_rv_name(attrs.secret_read_rv), "CKR_ATTRIBUTE_SENSITIVE");

        const char *alg = acme_jws_alg_for_key(pub);
        assert_non_null(alg);
        const unsigned char input[] = "eyJhbGciOiJFUzI1NiJ9.eyJ0ZXN0Ijp0cnVlfQ";
        unsigned char *sig = NULL;
        size_t sig_len = 0;
        assert_int_equal(
            ks_signer_sign_jws(s, &ref, alg, input, sizeof(input) - 1, &sig, &sig_len, &err), 0);
        size_t coord = acme_jws_ec_coord_len(alg);
        if (coord)
            assert_int_equal(sig_len, 2 * coord);
        assert_true(verify_jws_sig(pub, alg, input, sizeof(input) - 1, sig, sig_len));
        sig[0] ^= 1;
        assert_false(verify_jws_sig(pub, alg, input, sizeof(input) - 1, sig, sig_len));
        free(sig);

        assert_int_equal(ks_signer_destroy(s, &ref, &err), 0);
        assert_int_equal(ks_signer_key_exists(s, &ref, &err), 0);
        EVP_PKEY_free(pub);
    }
    ks_signer_close(s);
}

typedef struct token_csr_ctx {
    ks_signer *signer;
    ks_keyref *ref;
} token_csr_ctx;

static int token_csr_sign(void *ctx, int md_nid, const unsigned char *tbs, size_t len,
                          unsigned char **sig, size_t *sig_len, ks_err *err)
{
    token_csr_ctx *c = ctx;
    return ks_signer_sign_csr(c->signer, c->ref, md_nid, tbs, len, sig, sig_len, err);
}

/* Many CSRs per key type: the BIT STRING trap fails about half of them. */
static void test_csr_signed_by_token(void **state)
{
    (void)state;
    ks_signer *s = open_token("ks-a");
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        ks_keyref ref;
        ks_err err = {0};
        EVP_PKEY *pub = NULL;
        assert_int_equal(ks_signer_generate(s, &specs[i], "csr-key", &ref, &err), 0);
        assert_int_equal(ks_signer_public_key(s, &ref, &pub, &err), 0);
        token_csr_ctx ctx = {s, &ref};
        int rounds = specs[i].kind == HSM_KEY_RSA ? 10 : 60;
        for (int r = 0; r < rounds; r++) {
            char name[64];
            snprintf(name, sizeof(name), "host%d.example.test", r);
            const char *names[] = {name, "www.example.test"};
            unsigned char *der = NULL;
            size_t der_len = 0;
            if (csr_build_der(pub, name, names, 2, token_csr_sign, &ctx, &der, &der_len, &err))
                fail_msg("CSR %d: %s", r, err.msg);
            const unsigned char *p = der;
            X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)der_len);
            assert_non_null(req);
            assert_int_equal(X509_REQ_verify(req, pub), 1);
            X509_REQ_free(req);
            free(der);
        }
        ks_signer_destroy(s, &ref, &err);
        EVP_PKEY_free(pub);
    }
    ks_signer_close(s);
}

static int jws_sign_cb(void *ctx, const unsigned char *in, size_t len, unsigned char **sig,
                       size_t *sig_len, ks_err *err)
{
    token_csr_ctx *c = ctx;
    return ks_signer_sign_jws(c->signer, c->ref, "ES256", in, len, sig, sig_len, err);
}

/* A whole flattened JWS signed by the token verifies as a JWS. */
static void test_jws_request_signed_by_token(void **state)
{
    (void)state;
    ks_signer *s = open_token("ks-a");
    ks_keyref ref;
    ks_err err = {0};
    EVP_PKEY *pub = NULL;
    assert_int_equal(ks_signer_generate(s, &specs[0], "acct", &ref, &err), 0);
    assert_int_equal(ks_signer_public_key(s, &ref, &pub, &err), 0);
    char *jwk = acme_jwk_new(pub, &err);
    token_csr_ctx ctx = {s, &ref};
    acme_signer signer = {.alg = "ES256", .jwk_json = jwk, .sign = jws_sign_cb, .ctx = &ctx};
    char *body = acme_jws_new(&signer, NULL, "nonce-1", "https://ca.test/new-acct",
                              "{\"termsOfServiceAgreed\":true}", &err);
    assert_non_null(body);
    json_object *obj = json_tokener_parse(body);
    const char *prot = json_object_get_string(json_object_object_get(obj, "protected"));
    const char *pay = json_object_get_string(json_object_object_get(obj, "payload"));
    const char *sig64 = json_object_get_string(json_object_object_get(obj, "signature"));
    char input[2048];
    snprintf(input, sizeof(input), "%s.%s", prot, pay);
    size_t sig_len = 0;
    unsigned char *sig = b64url_decode_new(sig64, strlen(sig64), &sig_len);
    assert_non_null(sig);
    assert_true(verify_jws_sig(pub, "ES256", (unsigned char *)input, strlen(input), sig, sig_len));
    free(sig);
    json_object_put(obj);
    free(body);
    free(jwk);
    ks_signer_destroy(s, &ref, &err);
    EVP_PKEY_free(pub);
    ks_signer_close(s);
}

/* A key of token A named to the signer of token B is refused, not searched. */
static void test_foreign_reference_refused(void **state)
{
    (void)state;
    ks_signer *a = open_token("ks-a");
    ks_signer *b = open_token("ks-b");
    ks_keyref ref;
    ks_err err = {0};
    assert_int_equal(ks_signer_generate(a, &specs[0], "tenant-a-key", &ref, &err), 0);
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    const unsigned char in[] = "x.y";
    assert_int_equal(ks_signer_sign_jws(b, &ref, "ES256", in, 3, &sig, &sig_len, &err), -1);
    assert_non_null(strstr(err.msg, "refused"));
    assert_null(sig);
    assert_int_equal(ks_signer_sign_jws(a, &ref, "ES256", in, 3, &sig, &sig_len, &err), 0);
    free(sig);
    ks_signer_destroy(a, &ref, &err);
    ks_signer_close(a);
    ks_signer_close(b);
}

static void test_wrong_pin_and_missing_token(void **state)
{
    (void)state;
    char path[] = "/tmp/keysvc-wrong-pin.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0000", 4), 4);
    close(fd);
    ks_err err = {0};
    ks_signer_config cfg = {.module = getenv("KS_PKCS11_MODULE"), .token_label = "ks-a",
                            .pin_file = path};
    assert_null(ks_signer_open(&cfg, &err));
    assert_non_null(strstr(err.msg, "wrong PIN"));
    unlink(path);
    cfg.token_label = "no-such-token";
    cfg.pin_file = getenv("KS_PIN_FILE");
    assert_null(ks_signer_open(&cfg, &err));
    assert_non_null(strstr(err.msg, "no token labelled \"no-such-token\""));
    assert_non_null(strstr(err.msg, "\"ks-a\""));
}

/* One search lists every private key, across several C_FindObjects batches,
 * and skips objects whose CKA_ID keysvc could not hold. */
static void test_list_keys(void **state)
{
    (void)state;
    enum { N = 140 };
    ks_signer *s = open_token("ks-b");
    ks_keyref made[N];
    ks_err err = {0};
    for (int i = 0; i < N; i++)
        assert_int_equal(ks_signer_generate(s, &specs[0], "many", &made[i], &err), 0);
    ks_keyref *listed = NULL;
    size_t n = 0;
    assert_int_equal(ks_signer_list_keys(s, &listed, &n, &err), 0);
    /* Ours, and not the foreign key with the 70-byte ID. */
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++) {
        int found = 0;
        for (size_t j = 0; j < n && !found; j++)
            found = listed[j].id_len == made[i].id_len &&
                    memcmp(listed[j].id, made[i].id, made[i].id_len) == 0;
        if (!found)
            fail_msg("key %d is missing from the listing", i);
    }
    free(listed);
    for (int i = 0; i < N; i++)
        ks_signer_destroy(s, &made[i], &err);
    ks_signer_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_sealed_and_signing),
        cmocka_unit_test(test_csr_signed_by_token),
        cmocka_unit_test(test_jws_request_signed_by_token),
        cmocka_unit_test(test_foreign_reference_refused),
        cmocka_unit_test(test_wrong_pin_and_missing_token),
        cmocka_unit_test(test_list_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
