/*
 * JWK, RFC 7638 thumbprints and flattened JWS (acme/jws.h) with software
 * keys.  Signatures are verified independently with OpenSSL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "b64.h"
#include "jws.h"
#include "soft_key.h"
#include "ks_err.h"

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

enum { K_P256, K_P384, K_P521, K_RSA, K_COUNT };

static const struct {
    const char *alg;
    const char *crv;  /* NULL for RSA */
    size_t coord_len; /* 0 for RSA */
} kinds[K_COUNT] = {
    {"ES256", "P-256", 32},
    {"ES384", "P-384", 48},
    {"ES512", "P-521", 66},
    {"RS256", NULL, 0},
};

static EVP_PKEY *keys[K_COUNT];

/* ---- independent helpers ------------------------------------------------ */

static EVP_PKEY *gen_key(int kind)
{
    EVP_PKEY *k = NULL;
    switch (kind) {
    case K_P256:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case K_P384:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        break;
    case K_P521:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
        break;
    default:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    }
    assert_non_null(k);
    return k;
}

static const EVP_MD *md_for_alg(const char *alg)
{
    if (strcmp(alg, "ES384") == 0)
        return EVP_sha384();
    if (strcmp(alg, "ES512") == 0)
        return EVP_sha512();
    return EVP_sha256();
}


static unsigned char *ref_b64url_decode(const char *in, size_t *out_len)
{
    size_t len = strlen(in);
    size_t pad = (4 - len % 4) % 4;
    assert_true(pad < 3);
    char *std = malloc(len + pad + 1);
    assert_non_null(std);
    for (size_t i = 0; i < len; i++) {
        assert_null(strchr("+/=", in[i]));
        std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    }
    memset(std + len, '=', pad);
    std[len + pad] = '\0';
    unsigned char *out = malloc(len + 3);
    assert_non_null(out);
    int n = EVP_DecodeBlock(out, (const unsigned char *)std, (int)(len + pad));
    free(std);
    assert_true(n >= (int)pad);
    *out_len = (size_t)n - pad;
    return out;
}

/* ---- the software acme_signer --------------------------------------------- */

typedef struct soft_signer {
    EVP_PKEY *key;
    const char *alg;
    size_t coord_len;
    int mode; /* 0 normal, 1 one byte short, 2 DER instead of r||s, 3 refuse */
    int calls;
} soft_signer;

static int soft_sign(void *ctx, const unsigned char *input, size_t input_len, unsigned char **sig,
                     size_t *sig_len, ks_err *err)
{
    soft_signer *s = ctx;
    s->calls++;
    if (s->mode == 3)
        return ks_fail(err, "token said no");
    size_t der_len = 0;
    unsigned char *der = soft_digest_sign(s->key, md_for_alg(s->alg), input, input_len, &der_len);
    if (der == NULL)
        return ks_fail(err, "software signing failed");
    if (s->coord_len == 0 || s->mode == 2) {
        *sig = der;
        *sig_len = der_len;
    } else {
        *sig = soft_ecdsa_der_to_raw(der, der_len, s->coord_len);
        *sig_len = 2 * s->coord_len;
        free(der);
        if (*sig == NULL)
            return ks_fail(err, "bad DER from OpenSSL");
    }
    if (s->mode == 1)
        (*sig_len)--;
    return 0;
}

typedef struct signer_fixture {
    soft_signer soft;
    acme_signer signer;
    char *jwk;
} signer_fixture;

static void fixture_init(signer_fixture *f, int kind)
{
    ks_err err = {{0}};
    memset(f, 0, sizeof(*f));
    f->soft.key = keys[kind];
    f->soft.alg = kinds[kind].alg;
    f->soft.coord_len = kinds[kind].coord_len;
    f->jwk = acme_jwk_new(keys[kind], &err);
    assert_non_null(f->jwk);
    f->signer.alg = kinds[kind].alg;
    f->signer.jwk_json = f->jwk;
    f->signer.sign = soft_sign;
    f->signer.ctx = &f->soft;
}

static void fixture_clear(signer_fixture *f)
{
    free(f->jwk);
}

/* ---- group setup ---------------------------------------------------------- */

static int setup_keys(void **state)
{
    (void)state;
    for (int i = 0; i < K_COUNT; i++)
        keys[i] = gen_key(i);
    return 0;
}

static int teardown_keys(void **state)
{
    (void)state;
    for (int i = 0; i < K_COUNT; i++) {
        EVP_PKEY_free(keys[i]);
        keys[i] = NULL;
    }
    return 0;
}

/* ---- tests ------------------------------------------------------------ */

/* RFC 8037 appendix A.2 (the public key) and A.3 (its thumbprint). */
static void test_ed25519_jwk_rfc8037(void **state)
{
    (void)state;
    const char *x64 = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    size_t len = 0;
    unsigned char *raw = b64url_decode_new(x64, strlen(x64), &len);
    assert_non_null(raw);
    EVP_PKEY *ed = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, len);
    assert_non_null(ed);
    ks_err err = {{0}};
    char *jwk = acme_jwk_new(ed, &err);
    assert_non_null(jwk);
    assert_string_equal(jwk, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}");
    char *thumb = acme_jwk_thumbprint_new(jwk, &err);
    assert_string_equal(thumb, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    assert_int_equal(acme_jws_ec_coord_len("EdDSA"), 32);
    free(thumb);
    free(jwk);
    free(raw);
    EVP_PKEY_free(ed);
}

static void test_alg_for_key(void **state)
{
    (void)state;
    for (int i = 0; i < K_COUNT; i++) {
        const char *alg = acme_jws_alg_for_key(keys[i]);
        assert_non_null(alg);
        assert_string_equal(alg, kinds[i].alg);
    }
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k1);
    assert_non_null(ed);
    assert_null(acme_jws_alg_for_key(k1));
    assert_string_equal(acme_jws_alg_for_key(ed), "EdDSA");
    ks_err err = {{0}};
    assert_null(acme_jwk_new(k1, &err));
    assert_true(err.msg[0] != '\0');
    EVP_PKEY_free(k1);
    EVP_PKEY_free(ed);
}

static void test_ec_coord_len(void **state)
{
    (void)state;
    assert_int_equal(acme_jws_ec_coord_len("ES256"), 32);
    assert_int_equal(acme_jws_ec_coord_len("ES384"), 48);
    assert_int_equal(acme_jws_ec_coord_len("ES512"), 66);
    assert_int_equal(acme_jws_ec_coord_len("RS256"), 0);
    assert_int_equal(acme_jws_ec_coord_len("none"), 0);
}

static char *bn_param_ref_b64(EVP_PKEY *k, const char *name, size_t width, size_t *raw_len)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
    size_t len = width ? width : (size_t)BN_num_bytes(bn);
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(BN_bn2binpad(bn, buf, (int)len), (int)len);
    char *out = soft_b64url_new(buf, len);
    free(buf);
    BN_free(bn);
    *raw_len = len;
    return out;
}

/* The exact canonical JWK, built independently. */
static char *expected_ec_jwk(EVP_PKEY *k, const char *crv, size_t width)
{
    size_t xl = 0, yl = 0;
    char *x = bn_param_ref_b64(k, OSSL_PKEY_PARAM_EC_PUB_X, width, &xl);
    char *y = bn_param_ref_b64(k, OSSL_PKEY_PARAM_EC_PUB_Y, width, &yl);
    size_t cap = strlen(x) + strlen(y) + 64;
    char *out = malloc(cap);
    assert_non_null(out);
    snprintf(out, cap, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", crv, x, y);
    free(x);
    free(y);
    return out;
}

/* Decoded length of one string member of a JWK. */
static size_t jwk_member_len(const char *jwk, const char *member, unsigned char *first)
{
    json_object *o = json_tokener_parse(jwk);
    assert_non_null(o);
    json_object *v = NULL;
    assert_true(json_object_object_get_ex(o, member, &v));
    assert_true(json_object_is_type(v, json_type_string));
    size_t len = 0;
    unsigned char *raw = ref_b64url_decode(json_object_get_string(v), &len);
    if (first != NULL)
        *first = len ? raw[0] : 0;
    free(raw);
    json_object_put(o);
    return len;
}

static void check_ec_jwk(EVP_PKEY *k, int kind)
{
    ks_err err = {{0}};
    char *jwk = acme_jwk_new(k, &err);
    assert_non_null(jwk);
    char *want = expected_ec_jwk(k, kinds[kind].crv, kinds[kind].coord_len);
    assert_string_equal(jwk, want);
    assert_null(strpbrk(jwk, " \t\r\n"));
    assert_int_equal(jwk_member_len(jwk, "x", NULL), kinds[kind].coord_len);
    assert_int_equal(jwk_member_len(jwk, "y", NULL), kinds[kind].coord_len);
    free(want);
    free(jwk);
}

static void test_jwk_ec_canonical(void **state)
{
    (void)state;
    check_ec_jwk(keys[K_P256], K_P256);
    check_ec_jwk(keys[K_P384], K_P384);
    check_ec_jwk(keys[K_P521], K_P521);
}

/* A P-256 key whose x has a leading zero byte must still give 32 bytes. */
static void test_jwk_ec_fixed_width_with_leading_zero(void **state)
{
    (void)state;
    int found = 0;
    for (int tries = 0; tries < 20000 && !found; tries++) {
        EVP_PKEY *k = gen_key(K_P256);
        BIGNUM *x = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
        if (BN_num_bytes(x) < 32) {
            found = 1;
            check_ec_jwk(k, K_P256);
            ks_err err = {{0}};
            char *jwk = acme_jwk_new(k, &err);
            assert_non_null(jwk);
            unsigned char first = 0xff;
            assert_int_equal(jwk_member_len(jwk, "x", &first), 32);
            assert_int_equal(first, 0);
            free(jwk);
        }
        BN_free(x);
        EVP_PKEY_free(k);
    }
    assert_true(found);
}

static void test_jwk_rsa_canonical(void **state)
{
    (void)state;
    ks_err err = {{0}};
    char *jwk = acme_jwk_new(keys[K_RSA], &err);
    assert_non_null(jwk);
    size_t nl = 0, el = 0;
    char *n = bn_param_ref_b64(keys[K_RSA], OSSL_PKEY_PARAM_RSA_N, 0, &nl);
    char *e = bn_param_ref_b64(keys[K_RSA], OSSL_PKEY_PARAM_RSA_E, 0, &el);
    size_t cap = strlen(n) + strlen(e) + 64;
    char *want = malloc(cap);
    assert_non_null(want);
    snprintf(want, cap, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", e, n);
    assert_string_equal(jwk, want);
    assert_string_equal(e, "AQAB");
    unsigned char first = 0;
    assert_int_equal(jwk_member_len(jwk, "n", &first), 256);
    assert_int_not_equal(first, 0);
    assert_int_equal(jwk_member_len(jwk, "e", &first), 3);
    assert_int_equal(first, 1);
    free(want);
    free(n);
    free(e);
    free(jwk);
}

static const char rfc7638_n[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
    "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368Q"
    "QMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2"
    "NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

static EVP_PKEY *rsa_from_jwk_params(const char *n64, const char *e64)
{
    size_t nl = 0, el = 0;
    unsigned char *nb = ref_b64url_decode(n64, &nl);
    unsigned char *eb = ref_b64url_decode(e64, &el);
    BIGNUM *n = BN_bin2bn(nb, (int)nl, NULL);
    BIGNUM *e = BN_bin2bn(eb, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_non_null(n);
    assert_non_null(e);
    assert_non_null(bld);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    assert_non_null(params);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pkey = NULL;
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_fromdata_init(pctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(nb);
    free(eb);
    return pkey;
}

static void test_rfc7638_thumbprint_example(void **state)
{
    (void)state;
    EVP_PKEY *k = rsa_from_jwk_params(rfc7638_n, "AQAB");
    assert_string_equal(acme_jws_alg_for_key(k), "RS256");
    ks_err err = {{0}};
    char *jwk = acme_jwk_new(k, &err);
    assert_non_null(jwk);
    char want[512];
    snprintf(want, sizeof(want), "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"%s\"}", rfc7638_n);
    assert_string_equal(jwk, want);
    char *tp = acme_jwk_thumbprint_new(jwk, &err);
    assert_non_null(tp);
    assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    free(tp);
    free(jwk);
    EVP_PKEY_free(k);
}

/* ---- JWS ----------------------------------------------------------------- */

typedef struct parsed_jws {
    json_object *body;
    const char *protected64;
    const char *payload64;
    const char *signature64;
    json_object *header;
    char *payload; /* decoded, NUL-terminated */
    unsigned char *sig;
    size_t sig_len;
} parsed_jws;

static const char *string_member(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        fail_msg("member \"%s\" missing or not a string", key);
    return json_object_get_string(v);
}

static void parse_jws(const char *text, parsed_jws *p)
{
    memset(p, 0, sizeof(*p));
    p->body = json_tokener_parse(text);
    assert_non_null(p->body);
    assert_true(json_object_is_type(p->body, json_type_object));
    assert_int_equal(json_object_object_length(p->body), 3);
    p->protected64 = string_member(p->body, "protected");
    p->payload64 = string_member(p->body, "payload");
    p->signature64 = string_member(p->body, "signature");

    size_t len = 0;
    unsigned char *hdr = ref_b64url_decode(p->protected64, &len);
    char *hdr_text = strndup((const char *)hdr, len);
    free(hdr);
    assert_non_null(hdr_text);
    p->header = json_tokener_parse(hdr_text);
    free(hdr_text);
    assert_non_null(p->header);
    assert_true(json_object_is_type(p->header, json_type_object));

    unsigned char *pay = ref_b64url_decode(p->payload64, &len);
    p->payload = strndup((const char *)pay, len);
    free(pay);
    assert_non_null(p->payload);
    p->sig = ref_b64url_decode(p->signature64, &p->sig_len);
}

static void parsed_jws_clear(parsed_jws *p)
{
    json_object_put(p->body);
    json_object_put(p->header);
    free(p->payload);
    free(p->sig);
}

static char *signing_input(const parsed_jws *p)
{
    size_t cap = strlen(p->protected64) + strlen(p->payload64) + 2;
    char *in = malloc(cap);
    assert_non_null(in);
    snprintf(in, cap, "%s.%s", p->protected64, p->payload64);
    return in;
}

/* Verifies the JWS signature with the public key, as a CA would. */
static int jws_signature_ok(const parsed_jws *p, EVP_PKEY *key, int kind, const char *input)
{
    const EVP_MD *md = md_for_alg(kinds[kind].alg);
    if (kinds[kind].coord_len == 0)
        return soft_digest_verify(key, md, (const unsigned char *)input, strlen(input), p->sig,
                             p->sig_len);
    if (p->sig_len != 2 * kinds[kind].coord_len)
        return 0;
    size_t der_len = 0;
    unsigned char *der = soft_ecdsa_raw_to_der(p->sig, p->sig_len, &der_len);
    assert_non_null(der);
    int ok = soft_digest_verify(key, md, (const unsigned char *)input, strlen(input), der, der_len);
    OPENSSL_free(der);
    return ok;
}

static void check_jws_for_kind(int kind, const char *kid, const char *nonce, const char *payload)
{
    static const char url[] = "https://ca.test/acme/new-order/1?x=y";
    signer_fixture f;
    fixture_init(&f, kind);
    ks_err err = {{0}};
    char *body = acme_jws_new(&f.signer, kid, nonce, url, payload, &err);
    if (body == NULL)
        fail_msg("acme_jws_new(%s) failed: %s", kinds[kind].alg, err.msg);
    assert_int_equal(f.soft.calls, 1);

    parsed_jws p;
    parse_jws(body, &p);

    /* Protected header: exactly alg, jwk xor kid, nonce (if any), url. */
    assert_string_equal(string_member(p.header, "alg"), kinds[kind].alg);
    assert_string_equal(string_member(p.header, "url"), url);
    size_t want_members = 3;
    if (nonce != NULL) {
        assert_string_equal(string_member(p.header, "nonce"), nonce);
        want_members++;
    } else {
        assert_false(json_object_object_get_ex(p.header, "nonce", NULL));
    }
    json_object *jwk = NULL;
    if (kid != NULL) {
        assert_string_equal(string_member(p.header, "kid"), kid);
        assert_false(json_object_object_get_ex(p.header, "jwk", NULL));
    } else {
        assert_false(json_object_object_get_ex(p.header, "kid", NULL));
        assert_true(json_object_object_get_ex(p.header, "jwk", &jwk));
        assert_true(json_object_is_type(jwk, json_type_object));
        json_object *want = json_tokener_parse(f.jwk);
        assert_non_null(want);
        assert_int_equal(json_object_equal(jwk, want), 1);
        json_object_put(want);
    }
    assert_int_equal(json_object_object_length(p.header), want_members);

    /* Payload: "" for POST-as-GET, else the exact JSON text. */
    if (payload == NULL) {
        assert_string_equal(p.payload64, "");
    } else {
        assert_string_equal(p.payload, payload);
    }

    /* Signature: fixed width for ES*, and it verifies. */
    if (kinds[kind].coord_len != 0)
        assert_int_equal(p.sig_len, 2 * kinds[kind].coord_len);
    else
        assert_int_equal(p.sig_len, 256);
    char *input = signing_input(&p);
    if (!jws_signature_ok(&p, keys[kind], kind, input))
        fail_msg("%s signature does not verify", kinds[kind].alg);
    /* And the check can fail: a changed payload does not verify. */
    input[strlen(input) - 1] ^= 1;
    assert_false(jws_signature_ok(&p, keys[kind], kind, input));
    input[strlen(input) - 1] ^= 1;

    if (kinds[kind].coord_len == 0) {
        /* PKCS#1 v1.5 is deterministic: an independent signature is identical. */
        size_t ref_len = 0;
        unsigned char *ref = soft_digest_sign(keys[kind], EVP_sha256(), (const unsigned char *)input,
                                         strlen(input), &ref_len);
        assert_non_null(ref);
        assert_int_equal(ref_len, p.sig_len);
        assert_memory_equal(ref, p.sig, ref_len);
        free(ref);
    }

    free(input);
    parsed_jws_clear(&p);
    free(body);
    fixture_clear(&f);
}

static void test_jws_with_jwk(void **state)
{
    (void)state;
    static const char payload[] =
        "{\"termsOfServiceAgreed\":true,\"contact\":[\"mailto:admin@example.test\"]}";
    for (int k = 0; k < K_COUNT; k++)
        check_jws_for_kind(k, NULL, "oFvnlFP1wIhRlYS2jTaXbA", payload);
}

static void test_jws_with_kid(void **state)
{
    (void)state;
    static const char payload[] =
        "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"www.example.test\"}]}";
    for (int k = 0; k < K_COUNT; k++)
        check_jws_for_kind(k, "https://ca.test/acme/acct/evOfKhNU60wg", "Q_s3MWoqT05TrdkM2MTDcw",
                           payload);
}

static void test_jws_post_as_get(void **state)
{
    (void)state;
    for (int k = 0; k < K_COUNT; k++)
        check_jws_for_kind(k, "https://ca.test/acme/acct/1", "bm9uY2U", NULL);
}

static void test_jws_without_nonce(void **state)
{
    (void)state;
    check_jws_for_kind(K_P256, NULL, NULL, "{}");
}

static void check_bad_signer(int kind, int mode, const char *want_in_msg)
{
    signer_fixture f;
    fixture_init(&f, kind);
    f.soft.mode = mode;
    ks_err err = {{0}};
    char *body = acme_jws_new(&f.signer, NULL, "n", "https://ca.test/x", "{}", &err);
    assert_null(body);
    assert_int_equal(f.soft.calls, 1);
    if (strstr(err.msg, want_in_msg) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err.msg, want_in_msg);
    fixture_clear(&f);
}

static void test_jws_rejects_wrong_signature_length(void **state)
{
    (void)state;
    /* One byte short. */
    check_bad_signer(K_P256, 1, "ES256");
    check_bad_signer(K_P384, 1, "ES384");
    check_bad_signer(K_P521, 1, "ES512");
    /* DER where raw r||s is due (a classic token-integration mistake). */
    check_bad_signer(K_P256, 2, "ES256");
    check_bad_signer(K_P521, 2, "ES512");
}

static void test_jws_signer_failure_propagates(void **state)
{
    (void)state;
    check_bad_signer(K_P256, 3, "token said no");
    check_bad_signer(K_RSA, 3, "token said no");
}

static void test_jws_rejects_invalid_signer_jwk(void **state)
{
    (void)state;
    signer_fixture f;
    fixture_init(&f, K_P256);
    f.signer.jwk_json = "{not json";
    ks_err err = {{0}};
    assert_null(acme_jws_new(&f.signer, NULL, "n", "https://ca.test/x", NULL, &err));
    assert_true(err.msg[0] != '\0');
    assert_int_equal(f.soft.calls, 0);
    fixture_clear(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ed25519_jwk_rfc8037),
        cmocka_unit_test(test_alg_for_key),
        cmocka_unit_test(test_ec_coord_len),
        cmocka_unit_test(test_jwk_ec_canonical),
        cmocka_unit_test(test_jwk_ec_fixed_width_with_leading_zero),
        cmocka_unit_test(test_jwk_rsa_canonical),
        cmocka_unit_test(test_rfc7638_thumbprint_example),
        cmocka_unit_test(test_jws_with_jwk),
        cmocka_unit_test(test_jws_with_kid),
        cmocka_unit_test(test_jws_post_as_get),
        cmocka_unit_test(test_jws_without_nonce),
        cmocka_unit_test(test_jws_rejects_wrong_signature_length),
        cmocka_unit_test(test_jws_signer_failure_propagates),
        cmocka_unit_test(test_jws_rejects_invalid_signer_jwk),
    };
    return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
