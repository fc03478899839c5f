/*
 * What each key may sign (keysvc/signer_policy.h), with software keys: the
 * JWS signing inputs an account key signs, the revocation JWS a certificate
 * key signs and the CertificationRequestInfo it signs.  Every refusal is
 * checked by its message, so that a test cannot pass because the input was
 * refused for some other reason than the one it is about.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "b64.h"
#include "csr.h"
#include "jws.h"
#include "ks_err.h"
#include "signer_policy.h"
#include "json_strict.h"
#include "signer_proto.h"

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

enum { K_P256, K_P384, K_RSA, K_ED25519, K_OTHER, K_COUNT };

/* The key kinds the positive cases run over (K_OTHER is a second P-256 key
 * for the "another key's" cases). */
#define N_KINDS K_OTHER

static const char *const algs[K_COUNT] = {"ES256", "ES384", "RS256", "EdDSA", "ES256"};

/* Generated once for the whole group: RSA is slow, very slow under valgrind. */
static EVP_PKEY *keys[K_COUNT];

static int setup_keys(void **state)
{
    (void)state;
    keys[K_P256] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    keys[K_P384] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    keys[K_RSA] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    keys[K_ED25519] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    keys[K_OTHER] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    for (int i = 0; i < K_COUNT; i++)
        if (keys[i] == NULL)
            return -1;
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

/* ---- building inputs -------------------------------------------------- */

static char *fmt_new(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* printf into a new string (caller frees). */
static char *fmt_new(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    char *out = malloc((size_t)n + 1);
    assert_non_null(out);
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

static char *b64_str(const char *text)
{
    char *out = b64url_encode_new((const unsigned char *)text, strlen(text));
    assert_non_null(out);
    return out;
}

/* "b64url(header).b64url(payload)" (caller frees); payload NULL gives the
 * empty payload of a POST-as-GET, so the input ends with ".". */
static char *jws_input(const char *header, const char *payload)
{
    char *h = b64_str(header);
    char *p = b64_str(payload ? payload : "");
    char *input = fmt_new("%s.%s", h, p);
    free(h);
    free(p);
    return input;
}

/* The header an account uses after newAccount, as json-c writes it. */
static char *kid_header(const char *alg)
{
    return fmt_new("{\"alg\":\"%s\",\"kid\":\"https://ca/acct/1\",\"nonce\":\"n\","
                   "\"url\":\"https://ca/x\"}",
                   alg);
}

/* The header naming `key` by its JWK (newAccount, revocation). */
static char *jwk_header(const char *alg, EVP_PKEY *key)
{
    ks_err err = {{0}};
    char *jwk = acme_jwk_new(key, &err);
    if (jwk == NULL)
        fail_msg("acme_jwk_new: %s", err.msg);
    char *hdr =
        fmt_new("{\"alg\":\"%s\",\"jwk\":%s,\"nonce\":\"n\",\"url\":\"https://ca/x\"}", alg, jwk);
    free(jwk);
    return hdr;
}

/* DER of a self-signed certificate for `key`, with `extra` zero bytes
 * after it (caller frees). */
static unsigned char *cert_der(EVP_PKEY *key, size_t extra, size_t *len)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"example.test", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    /* Ed25519 signs without a separate digest. */
    const EVP_MD *md = EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256();
    assert_true(X509_sign(x, key, md) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    unsigned char *out = calloc(1, (size_t)n + extra);
    assert_non_null(out);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    X509_free(x);
    *len = (size_t)n + extra;
    return out;
}

/* base64url DER of a certificate for `key`, with `extra` zero bytes after
 * the DER (caller frees). */
static char *cert_b64_extra(EVP_PKEY *key, size_t extra)
{
    size_t len = 0;
    unsigned char *der = cert_der(key, extra, &len);
    char *out = b64url_encode_new(der, len);
    assert_non_null(out);
    free(der);
    return out;
}

static char *cert_b64(EVP_PKEY *key)
{
    return cert_b64_extra(key, 0);
}

/* A revocation payload for the certificate of `key`; `reason` is the JSON
 * text of the reason member's value, or NULL for none. */
static char *revocation_payload(EVP_PKEY *key, const char *reason)
{
    char *cert = cert_b64(key);
    char *payload = reason ? fmt_new("{\"certificate\":\"%s\",\"reason\":%s}", cert, reason)
                           : fmt_new("{\"certificate\":\"%s\"}", cert);
    free(cert);
    return payload;
}

/* ---- checking --------------------------------------------------------- */

typedef int (*jws_policy_fn)(EVP_PKEY *pub, const char *alg, const unsigned char *input, size_t len,
                             ks_err *err);

/* `want` NULL: the policy allows the input; otherwise it refuses it with a
 * "refused: ..." message containing `want`. */
static void check_result(int rc, const ks_err *err, const char *want, const char *what)
{
    if (want == NULL) {
        if (rc != 0)
            fail_msg("%s was refused: %s", what, err->msg);
        return;
    }
    if (rc != -1)
        fail_msg("%s was allowed (rc %d), want a refusal mentioning \"%s\"", what, rc, want);
    if (strncmp(err->msg, "refused: ", 9) != 0 || strstr(err->msg, want) == NULL)
        fail_msg("%s: error \"%s\" is not \"refused: ...%s...\"", what, err->msg, want);
}

/* `what` names the input in a failure (cmocka cuts long messages short). */
static void expect_jws_what(jws_policy_fn policy, EVP_PKEY *pub, const char *alg, const char *input,
                            const char *want, const char *what)
{
    ks_err err = {{0}};
    int rc = policy(pub, alg, (const unsigned char *)input, strlen(input), &err);
    check_result(rc, &err, want, what);
}

static void expect_jws(jws_policy_fn policy, EVP_PKEY *pub, const char *alg, const char *input,
                       const char *want)
{
    char what[160];
    snprintf(what, sizeof(what), "signing input \"%.120s\"", input);
    expect_jws_what(policy, pub, alg, input, want, what);
}

/* The start of `text` with bytes outside printable ASCII as \xNN. */
static void printable(char *out, size_t cap, const char *text)
{
    size_t o = 0;
    for (const unsigned char *c = (const unsigned char *)text; *c && o + 5 < cap; c++) {
        if (*c >= 0x20 && *c < 0x7f)
            out[o++] = (char)*c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", *c);
    }
    out[o] = '\0';
}

/* A policy over jws_input(header, payload) for key `kind`; a failure shows
 * the start of the decoded header and payload. */
static void expect_decoded(jws_policy_fn policy, int kind, const char *header, const char *payload,
                           const char *want)
{
    char h[100], p[100], what[256];
    printable(h, sizeof(h), header);
    printable(p, sizeof(p), payload ? payload : "(empty)");
    snprintf(what, sizeof(what), "%s header %s payload %s", algs[kind], h, p);
    char *input = jws_input(header, payload);
    expect_jws_what(policy, keys[kind], algs[kind], input, want, what);
    free(input);
}

static void expect_account(int kind, const char *header, const char *payload, const char *want)
{
    expect_decoded(ks_policy_account_jws, kind, header, payload, want);
}

static void expect_revocation(int kind, const char *header, const char *payload, const char *want)
{
    expect_decoded(ks_policy_revocation_jws, kind, header, payload, want);
}

/* A header that is strict JSON, so that its refusal is for not being
 * json-c's own writing of it, not for failing to parse. */
static void assert_strict_json(const char *text)
{
    json_object *obj = ks_json_parse_strict(text, strlen(text));
    if (obj == NULL)
        fail_msg("test bug: %s is not strict JSON", text);
    json_object_put(obj);
}

/* ---- account JWS: allowed --------------------------------------------- */

static const char object_payload[] = "{\"status\":\"deactivated\"}";

static void test_account_kid_object_payload(void **state)
{
    (void)state;
    for (int kind = 0; kind < N_KINDS; kind++) {
        char *hdr = kid_header(algs[kind]);
        expect_account(kind, hdr, object_payload, NULL);
        free(hdr);
    }
}

static void test_account_kid_post_as_get(void **state)
{
    (void)state;
    for (int kind = 0; kind < N_KINDS; kind++) {
        char *hdr = kid_header(algs[kind]);
        char *input = jws_input(hdr, NULL);
        assert_int_equal(input[strlen(input) - 1], '.');
        expect_jws(ks_policy_account_jws, keys[kind], algs[kind], input, NULL);
        free(input);
        free(hdr);
    }
}

static void test_account_kid_empty_object_payload(void **state)
{
    (void)state;
    char *hdr = kid_header("ES256");
    expect_account(K_P256, hdr, "{}", NULL);
    free(hdr);
}

static void test_account_own_jwk(void **state)
{
    (void)state;
    for (int kind = 0; kind < N_KINDS; kind++) {
        char *hdr = jwk_header(algs[kind], keys[kind]);
        expect_account(kind, hdr, "{\"termsOfServiceAgreed\":true}", NULL);
        expect_account(kind, hdr, NULL, NULL);
        free(hdr);
    }
}

/* ---- revocation JWS: allowed ------------------------------------------ */

static void test_revocation_with_reason(void **state)
{
    (void)state;
    for (int kind = 0; kind < N_KINDS; kind++) {
        char *hdr = jwk_header(algs[kind], keys[kind]);
        char *payload = revocation_payload(keys[kind], "4");
        expect_revocation(kind, hdr, payload, NULL);
        free(payload);
        free(hdr);
    }
}

static void test_revocation_without_reason(void **state)
{
    (void)state;
    for (int kind = 0; kind < N_KINDS; kind++) {
        char *hdr = jwk_header(algs[kind], keys[kind]);
        char *payload = revocation_payload(keys[kind], NULL);
        expect_revocation(kind, hdr, payload, NULL);
        free(payload);
        free(hdr);
    }
}

/* ---- JWS: refused ----------------------------------------------------- */

static void test_jws_alg_not_of_key(void **state)
{
    (void)state;
    char *hdr = kid_header("RS256");
    char *input = jws_input(hdr, object_payload);
    expect_jws(ks_policy_account_jws, keys[K_P256], "RS256", input, "alg RS256 does not belong");
    /* P-384 is ES384, not ES256. */
    expect_jws(ks_policy_account_jws, keys[K_P384], "ES256", input, "does not belong");
    free(input);
    free(hdr);
}

/* The header says one alg, the signer is asked for another (the key's). */
static void test_jws_header_alg_not_signing_alg(void **state)
{
    (void)state;
    char *hdr = kid_header("ES384");
    expect_account(K_P256, hdr, object_payload, "does not name this alg and a url");
    free(hdr);
}

static void test_jws_header_without_url(void **state)
{
    (void)state;
    expect_account(K_P256, "{\"alg\":\"ES256\",\"kid\":\"https://ca/acct/1\",\"nonce\":\"n\"}",
                   object_payload, "does not name this alg and a url");
}

static void test_jws_header_extra_member(void **state)
{
    (void)state;
    expect_account(K_P256,
                   "{\"alg\":\"ES256\",\"kid\":\"https://ca/acct/1\",\"nonce\":\"n\","
                   "\"typ\":\"JWT\",\"url\":\"https://ca/x\"}",
                   object_payload, "members ACME does not use");
}

static void test_jws_header_kid_and_jwk(void **state)
{
    (void)state;
    ks_err err = {{0}};
    char *jwk = acme_jwk_new(keys[K_P256], &err);
    assert_non_null(jwk);
    char *hdr = fmt_new("{\"alg\":\"ES256\",\"jwk\":%s,\"kid\":\"https://ca/acct/1\","
                        "\"nonce\":\"n\",\"url\":\"https://ca/x\"}",
                        jwk);
    expect_account(K_P256, hdr, object_payload, "may not name its key by kid");
    free(hdr);
    free(jwk);
}

static void test_jws_header_other_keys_jwk(void **state)
{
    (void)state;
    char *hdr = jwk_header("ES256", keys[K_OTHER]);
    expect_account(K_P256, hdr, object_payload, "jwk is not this key");
    expect_account(K_P256, hdr, NULL, "jwk is not this key");
    free(hdr);
}

static void test_jws_header_names_no_key(void **state)
{
    (void)state;
    expect_account(K_P256, "{\"alg\":\"ES256\",\"nonce\":\"n\",\"url\":\"https://ca/x\"}",
                   object_payload, "jwk is not this key");
}

static void test_jws_header_whitespace(void **state)
{
    (void)state;
    static const char hdr[] = "{\"alg\": \"ES256\", \"kid\": \"https://ca/acct/1\", "
                              "\"nonce\": \"n\", \"url\": \"https://ca/x\"}";
    assert_strict_json(hdr);
    expect_account(K_P256, hdr, object_payload, "not base64url of canonical strict JSON");
}

static void test_jws_header_duplicate_member(void **state)
{
    (void)state;
    static const char hdr[] = "{\"alg\":\"ES256\",\"alg\":\"ES256\",\"kid\":\"https://ca/acct/1\","
                              "\"nonce\":\"n\",\"url\":\"https://ca/x\"}";
    /* json-c alone would take this (keeping the last "alg"). */
    json_object *lenient = json_tokener_parse(hdr);
    assert_non_null(lenient);
    json_object_put(lenient);
    assert_null(ks_json_parse_strict(hdr, strlen(hdr)));
    expect_account(K_P256, hdr, object_payload, "not base64url of canonical strict JSON");
}

/* Escapes json-c would not write ("\/" and "\u0041" for "A"). */
static void test_jws_header_odd_escapes(void **state)
{
    (void)state;
    static const char slash[] = "{\"alg\":\"ES256\",\"kid\":\"https:\\/\\/ca\\/acct\\/1\","
                                "\"nonce\":\"n\",\"url\":\"https://ca/x\"}";
    static const char letter[] = "{\"alg\":\"ES256\",\"kid\":\"https://ca/acct/1\","
                                 "\"nonce\":\"\\u006e\",\"url\":\"https://ca/x\"}";
    assert_strict_json(slash);
    assert_strict_json(letter);
    expect_account(K_P256, slash, object_payload, "not base64url of canonical strict JSON");
    expect_account(K_P256, letter, object_payload, "not base64url of canonical strict JSON");
}

/* In C the alg would read as "ES256"; the canonical check cannot catch it
 * (json-c writes the NUL back as \u0000), the strict parse must. */
static void test_jws_header_nul_in_string(void **state)
{
    (void)state;
    expect_account(K_P256,
                   "{\"alg\":\"ES256\\u0000x\",\"kid\":\"https://ca/acct/1\",\"nonce\":\"n\","
                   "\"url\":\"https://ca/x\"}",
                   object_payload, "not base64url of canonical strict JSON");
}

/* A raw control character in a string (RFC 8259 wants it escaped): json-c
 * writes it back escaped, so the canonical check refuses it. */
static void test_jws_header_raw_control_char(void **state)
{
    (void)state;
    expect_account(K_P256,
                   "{\"alg\":\"ES256\",\"kid\":\"https://ca/acct/\t1\",\"nonce\":\"n\","
                   "\"url\":\"https://ca/x\"}",
                   object_payload, "not base64url of canonical strict JSON");
}

/* RFC 8259 JSON is UTF-8; a reader that substitutes U+FFFD for the stray
 * byte sees another kid than the signer does. */
static void test_jws_header_invalid_utf8(void **state)
{
    (void)state;
    expect_account(K_P256,
                   "{\"alg\":\"ES256\",\"kid\":\"https://ca/acct/\xff\",\"nonce\":\"n\","
                   "\"url\":\"https://ca/x\"}",
                   object_payload, "not base64url of canonical strict JSON");
}

/* The same header with '=' padding: the unpadded input is allowed, the
 * padded one refused. */
static void test_jws_header_padding(void **state)
{
    (void)state;
    char *hdr = kid_header("ES256");
    char *h = b64_str(hdr);
    char *p = b64_str(object_payload);
    size_t pad = (4 - strlen(h) % 4) % 4;
    assert_true(pad > 0); /* else this header needs no padding: change it */
    char *plain = fmt_new("%s.%s", h, p);
    char *padded = fmt_new("%s%.*s.%s", h, (int)pad, "==", p);
    expect_jws(ks_policy_account_jws, keys[K_P256], "ES256", plain, NULL);
    expect_jws(ks_policy_account_jws, keys[K_P256], "ES256", padded,
               "not base64url of canonical strict JSON");
    free(padded);
    free(plain);
    free(p);
    free(h);
    free(hdr);
}

/* A payload with characters outside the base64url alphabet. */
static void test_jws_payload_not_b64url(void **state)
{
    (void)state;
    char *hdr = kid_header("ES256");
    char *h = b64_str(hdr);
    /* "e30" is {}; "e3+" and "e30=" are standard base64 / padded forms. */
    char *good = fmt_new("%s.e30", h);
    char *plus = fmt_new("%s.e3+", h);
    char *padded = fmt_new("%s.e30=", h);
    expect_jws(ks_policy_account_jws, keys[K_P256], "ES256", good, NULL);
    expect_jws(ks_policy_account_jws, keys[K_P256], "ES256", plus, "payload is not base64url");
    expect_jws(ks_policy_account_jws, keys[K_P256], "ES256", padded, "payload is not base64url");
    free(padded);
    free(plus);
    free(good);
    free(h);
    free(hdr);
}

static void expect_payload_refused(const char *payload)
{
    char *hdr = kid_header("ES256");
    expect_account(K_P256, hdr, payload, "payload is not base64url of a strict JSON object");
    free(hdr);
}

static void test_jws_payload_array(void **state)
{
    (void)state;
    expect_payload_refused("[1]");
}

static void test_jws_payload_string(void **state)
{
    (void)state;
    expect_payload_refused("\"x\"");
}

static void test_jws_payload_single_quotes(void **state)
{
    (void)state;
    expect_payload_refused("{'status':'deactivated'}");
}

static void test_jws_payload_trailing_comma(void **state)
{
    (void)state;
    expect_payload_refused("{\"status\":\"deactivated\",}");
}

static void test_jws_payload_comment(void **state)
{
    (void)state;
    expect_payload_refused("{\"status\":\"deactivated\"/* c */}");
    expect_payload_refused("{\"status\":\"deactivated\"}// c");
}

/* Two objects, or an object and more text: the parse must use every byte. */
static void test_jws_payload_trailing_text(void **state)
{
    (void)state;
    expect_payload_refused("{}{}");
    expect_payload_refused("{} x");
}

static void test_jws_payload_nul_in_string(void **state)
{
    (void)state;
    expect_payload_refused("{\"status\":\"deactivated\\u0000x\"}");
}

/* Literals and forms RFC 8259 does not have (json-c's strict mode still
 * takes some of them). */
static void test_jws_payload_nan(void **state)
{
    (void)state;
    expect_payload_refused("{\"a\":NaN}");
}

static void test_jws_payload_infinity(void **state)
{
    (void)state;
    expect_payload_refused("{\"a\":Infinity}");
    expect_payload_refused("{\"a\":-Infinity}");
}

static void test_jws_payload_bare_decimal_point(void **state)
{
    (void)state;
    expect_payload_refused("{\"a\":1.}");
}

static void test_jws_payload_raw_control_char(void **state)
{
    (void)state;
    expect_payload_refused("{\"status\":\"deactivated\n\"}");
}

static void test_jws_payload_invalid_utf8(void **state)
{
    (void)state;
    expect_payload_refused("{\"status\":\"deactivated\xff\"}");
}

static void test_jws_two_dots(void **state)
{
    (void)state;
    char *hdr = kid_header("ES256");
    char *input = jws_input(hdr, object_payload);
    char *more = fmt_new("%s.", input);
    char *sig = fmt_new("%s.c2ln", input); /* a whole JWS compact serialization */
    expect_jws(ks_policy_account_jws, keys[K_P256], "ES256", more, "not a JWS signing input");
    expect_jws(ks_policy_account_jws, keys[K_P256], "ES256", sig, "not a JWS signing input");
    free(sig);
    free(more);
    free(input);
    free(hdr);
}

static void test_jws_no_dot(void **state)
{
    (void)state;
    char *hdr = kid_header("ES256");
    char *h = b64_str(hdr);
    expect_jws(ks_policy_account_jws, keys[K_P256], "ES256", h, "not a JWS signing input");
    expect_jws(ks_policy_account_jws, keys[K_P256], "ES256", "", "not a JWS signing input");
    free(h);
    free(hdr);
}

/* ---- revocation JWS: refused ------------------------------------------ */

static void test_revocation_kid(void **state)
{
    (void)state;
    char *hdr = kid_header("ES256");
    char *payload = revocation_payload(keys[K_P256], "4");
    expect_revocation(K_P256, hdr, payload, "may not name its key by kid");
    free(payload);
    free(hdr);
}

/* The revocation policy applies to the header too. */
static void test_revocation_other_keys_jwk(void **state)
{
    (void)state;
    char *hdr = jwk_header("ES256", keys[K_OTHER]);
    char *payload = revocation_payload(keys[K_P256], NULL);
    expect_revocation(K_P256, hdr, payload, "jwk is not this key");
    free(payload);
    free(hdr);
}

static const char not_own_revocation[] = "only to revoke its own certificate";

static void test_revocation_extra_member(void **state)
{
    (void)state;
    char *hdr = jwk_header("ES256", keys[K_P256]);
    char *cert = cert_b64(keys[K_P256]);
    char *payload = fmt_new("{\"certificate\":\"%s\",\"reason\":4,\"status\":\"x\"}", cert);
    expect_revocation(K_P256, hdr, payload, not_own_revocation);
    free(payload);
    free(cert);
    free(hdr);
}

static void test_revocation_reason_string(void **state)
{
    (void)state;
    char *hdr = jwk_header("ES256", keys[K_P256]);
    char *payload = revocation_payload(keys[K_P256], "\"4\"");
    expect_revocation(K_P256, hdr, payload, not_own_revocation);
    free(payload);
    free(hdr);
}

static void test_revocation_reason_not_integer(void **state)
{
    (void)state;
    char *hdr = jwk_header("ES256", keys[K_P256]);
    char *fraction = revocation_payload(keys[K_P256], "4.5");
    char *boolean = revocation_payload(keys[K_P256], "true");
    expect_revocation(K_P256, hdr, fraction, not_own_revocation);
    expect_revocation(K_P256, hdr, boolean, not_own_revocation);
    free(boolean);
    free(fraction);
    free(hdr);
}

static void test_revocation_other_keys_certificate(void **state)
{
    (void)state;
    char *hdr = jwk_header("ES256", keys[K_P256]);
    char *payload = revocation_payload(keys[K_OTHER], "4");
    expect_revocation(K_P256, hdr, payload, not_own_revocation);
    free(payload);
    free(hdr);
}

static void test_revocation_certificate_not_der(void **state)
{
    (void)state;
    char *hdr = jwk_header("ES256", keys[K_P256]);
    char *cert = cert_b64_extra(keys[K_P256], 1);
    char *trailing = fmt_new("{\"certificate\":\"%s\"}", cert);
    expect_revocation(K_P256, hdr, "{\"certificate\":\"bm90IGEgY2VydA\"}", not_own_revocation);
    expect_revocation(K_P256, hdr, trailing, not_own_revocation);
    free(trailing);
    free(cert);
    free(hdr);
}

static void test_revocation_no_certificate(void **state)
{
    (void)state;
    char *hdr = jwk_header("ES256", keys[K_P256]);
    expect_revocation(K_P256, hdr, "{\"reason\":4}", not_own_revocation);
    expect_revocation(K_P256, hdr, "{}", not_own_revocation);
    free(hdr);
}

static void test_revocation_payload_array(void **state)
{
    (void)state;
    char *hdr = jwk_header("ES256", keys[K_P256]);
    expect_revocation(K_P256, hdr, "[1]", "payload is not base64url of a strict JSON object");
    free(hdr);
}

static void test_revocation_empty_payload(void **state)
{
    (void)state;
    char *hdr = jwk_header("ES256", keys[K_P256]);
    expect_revocation(K_P256, hdr, NULL, not_own_revocation);
    free(hdr);
}

/* Duplicate members in the payload: json-c keeps the last "certificate"
 * (this key's), a first-wins reader sees another key's.  The signer's rule
 * is one strict reading that no second reader can resolve differently. */
static void test_revocation_duplicate_certificate(void **state)
{
    (void)state;
    char *hdr = jwk_header("ES256", keys[K_P256]);
    char *own = cert_b64(keys[K_P256]);
    char *other = cert_b64(keys[K_OTHER]);
    char *payload = fmt_new("{\"certificate\":\"%s\",\"certificate\":\"%s\"}", other, own);
    char *input = jws_input(hdr, payload);
    expect_jws_what(ks_policy_revocation_jws, keys[K_P256], "ES256", input,
                    "refused: ", "payload {\"certificate\":<another key's>,\"certificate\":<own>}");
    free(input);
    free(payload);
    free(other);
    free(own);
    free(hdr);
}

/* An integer json-c cannot hold is clamped (to 2^64-1), so the signer reads
 * another number than the text says. */
static void test_revocation_reason_overflow(void **state)
{
    (void)state;
    char *hdr = jwk_header("ES256", keys[K_P256]);
    char *payload = revocation_payload(keys[K_P256], "99999999999999999999");
    char *input = jws_input(hdr, payload);
    expect_jws_what(ks_policy_revocation_jws, keys[K_P256], "ES256", input,
                    "refused: ", "payload {\"certificate\":<own>,\"reason\":99999999999999999999}");
    free(input);
    free(payload);
    free(hdr);
}

/* ---- CSR ------------------------------------------------------------- */

/* A CertificationRequestInfo of `version` for `key` as OpenSSL writes it
 * (caller frees). */
static unsigned char *cri_version_for(EVP_PKEY *key, long version, size_t *len)
{
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_version(req, version), 1);
    X509_NAME *name = X509_REQ_get_subject_name(req);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"example.test", -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    unsigned char *der = NULL;
    int n = i2d_re_X509_REQ_tbs(req, &der);
    assert_true(n > 0);
    unsigned char *out = malloc((size_t)n);
    assert_non_null(out);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    X509_REQ_free(req);
    *len = (size_t)n;
    return out;
}

static unsigned char *cri_for(EVP_PKEY *key, size_t *len)
{
    return cri_version_for(key, X509_REQ_VERSION_1, len);
}

static void expect_csr(int kind, int md_nid, const unsigned char *tbs, size_t len, const char *want)
{
    ks_err err = {{0}};
    int rc = ks_policy_csr(keys[kind], md_nid, tbs, len, &err);
    char what[64];
    snprintf(what, sizeof(what), "a %zu-byte CRI for %s", len, algs[kind]);
    check_result(rc, &err, want, what);
}

/* The content of the outer SEQUENCE of a DER CRI: sets *hdr_len to the
 * length of its tag and length octets and returns the content length. */
static size_t cri_content(const unsigned char *der, size_t len, size_t *hdr_len)
{
    assert_true(len > 3);
    assert_int_equal(der[0], 0x30);
    size_t body = 0;
    if (der[1] < 0x80) {
        *hdr_len = 2;
        body = der[1];
    } else {
        assert_int_equal(der[1], 0x81); /* a P-256 CRI is < 256 bytes */
        *hdr_len = 3;
        body = der[2];
    }
    assert_int_equal(*hdr_len + body, len);
    return body;
}

static const char not_one_cri[] = "not exactly one DER CertificationRequestInfo";

static void test_csr_accepted(void **state)
{
    (void)state;
    static const int kinds[] = {K_P256, K_P384, K_RSA};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t len = 0;
        unsigned char *cri = cri_for(keys[kinds[i]], &len);
        expect_csr(kinds[i], csr_digest_for_key(keys[kinds[i]]), cri, len, NULL);
        free(cri);
    }
}

static void test_csr_trailing_bytes(void **state)
{
    (void)state;
    size_t len = 0;
    unsigned char *cri = cri_for(keys[K_P256], &len);
    unsigned char *more = malloc(len + 2);
    assert_non_null(more);
    memcpy(more, cri, len);
    more[len] = 0x05; /* an ASN.1 NULL after the CRI */
    more[len + 1] = 0x00;
    expect_csr(K_P256, NID_sha256, more, len + 2, not_one_cri);
    free(more);
    free(cri);
}

/* The outer length as 0x82 00 xx: valid BER, but DER wants the shortest form. */
static void test_csr_long_form_length(void **state)
{
    (void)state;
    size_t len = 0, hdr = 0;
    unsigned char *cri = cri_for(keys[K_P256], &len);
    size_t body = cri_content(cri, len, &hdr);
    unsigned char *ber = malloc(4 + body);
    assert_non_null(ber);
    ber[0] = 0x30;
    ber[1] = 0x82;
    ber[2] = 0x00;
    ber[3] = (unsigned char)body;
    memcpy(ber + 4, cri + hdr, body);
    expect_csr(K_P256, NID_sha256, ber, 4 + body, not_one_cri);
    free(ber);
    free(cri);
}

/* The outer SEQUENCE with an indefinite length (0x80 ... 00 00): BER only. */
static void test_csr_indefinite_length(void **state)
{
    (void)state;
    size_t len = 0, hdr = 0;
    unsigned char *cri = cri_for(keys[K_P256], &len);
    size_t body = cri_content(cri, len, &hdr);
    unsigned char *ber = malloc(2 + body + 2);
    assert_non_null(ber);
    ber[0] = 0x30;
    ber[1] = 0x80;
    memcpy(ber + 2, cri + hdr, body);
    ber[2 + body] = 0x00;
    ber[3 + body] = 0x00;
    expect_csr(K_P256, NID_sha256, ber, body + 4, not_one_cri);
    free(ber);
    free(cri);
}

/* The only PKCS#10 version is 1 (INTEGER 0); OpenSSL writes any other
 * it is given, as valid DER. */
static void test_csr_version_not_1(void **state)
{
    (void)state;
    static const long versions[] = {1, 2};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        size_t len = 0, hdr = 0;
        unsigned char *cri = cri_version_for(keys[K_P256], versions[i], &len);
        (void)cri_content(cri, len, &hdr);
        /* The version INTEGER really is what the test is about. */
        const unsigned char want[] = {0x02, 0x01, (unsigned char)versions[i]};
        assert_memory_equal(cri + hdr, want, sizeof(want));
        expect_csr(K_P256, NID_sha256, cri, len, not_one_cri);
        free(cri);
    }
}

static void test_csr_wrong_digest(void **state)
{
    (void)state;
    size_t len = 0;
    unsigned char *p256 = cri_for(keys[K_P256], &len);
    expect_csr(K_P256, NID_sha384, p256, len, "digest does not belong to this key");
    expect_csr(K_P256, NID_sha1, p256, len, "digest does not belong to this key");
    free(p256);
    unsigned char *p384 = cri_for(keys[K_P384], &len);
    expect_csr(K_P384, NID_sha256, p384, len, "digest does not belong to this key");
    free(p384);
}

static void test_csr_other_key(void **state)
{
    (void)state;
    size_t len = 0;
    unsigned char *cri = cri_for(keys[K_OTHER], &len);
    expect_csr(K_P256, NID_sha256, cri, len, "not a certificate request for this key");
    free(cri);
}

static void test_csr_not_a_request(void **state)
{
    (void)state;
    static const char text[] = "not a request";
    expect_csr(K_P256, NID_sha256, (const unsigned char *)text, strlen(text), not_one_cri);
    expect_csr(K_P256, NID_sha256, (const unsigned char *)"", 0, not_one_cri);
}

/* A whole CSR (CRI, algorithm, signature) is not a CRI. */
static void test_csr_whole_request(void **state)
{
    (void)state;
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
    assert_int_equal(X509_REQ_set_pubkey(req, keys[K_P256]), 1);
    assert_true(X509_REQ_sign(req, keys[K_P256], EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    expect_csr(K_P256, NID_sha256, der, (size_t)n, not_one_cri);
    OPENSSL_free(der);
    X509_REQ_free(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_account_kid_object_payload),
        cmocka_unit_test(test_account_kid_post_as_get),
        cmocka_unit_test(test_account_kid_empty_object_payload),
        cmocka_unit_test(test_account_own_jwk),
        cmocka_unit_test(test_revocation_with_reason),
        cmocka_unit_test(test_revocation_without_reason),
        cmocka_unit_test(test_jws_alg_not_of_key),
        cmocka_unit_test(test_jws_header_alg_not_signing_alg),
        cmocka_unit_test(test_jws_header_without_url),
        cmocka_unit_test(test_jws_header_extra_member),
        cmocka_unit_test(test_jws_header_kid_and_jwk),
        cmocka_unit_test(test_jws_header_other_keys_jwk),
        cmocka_unit_test(test_jws_header_names_no_key),
        cmocka_unit_test(test_jws_header_whitespace),
        cmocka_unit_test(test_jws_header_duplicate_member),
        cmocka_unit_test(test_jws_header_odd_escapes),
        cmocka_unit_test(test_jws_header_nul_in_string),
        cmocka_unit_test(test_jws_header_raw_control_char),
        cmocka_unit_test(test_jws_header_invalid_utf8),
        cmocka_unit_test(test_jws_header_padding),
        cmocka_unit_test(test_jws_payload_not_b64url),
        cmocka_unit_test(test_jws_payload_array),
        cmocka_unit_test(test_jws_payload_string),
        cmocka_unit_test(test_jws_payload_single_quotes),
        cmocka_unit_test(test_jws_payload_trailing_comma),
        cmocka_unit_test(test_jws_payload_comment),
        cmocka_unit_test(test_jws_payload_trailing_text),
        cmocka_unit_test(test_jws_payload_nul_in_string),
        cmocka_unit_test(test_jws_payload_nan),
        cmocka_unit_test(test_jws_payload_infinity),
        cmocka_unit_test(test_jws_payload_bare_decimal_point),
        cmocka_unit_test(test_jws_payload_raw_control_char),
        cmocka_unit_test(test_jws_payload_invalid_utf8),
        cmocka_unit_test(test_jws_two_dots),
        cmocka_unit_test(test_jws_no_dot),
        cmocka_unit_test(test_revocation_kid),
        cmocka_unit_test(test_revocation_other_keys_jwk),
        cmocka_unit_test(test_revocation_extra_member),
        cmocka_unit_test(test_revocation_reason_string),
        cmocka_unit_test(test_revocation_reason_not_integer),
        cmocka_unit_test(test_revocation_other_keys_certificate),
        cmocka_unit_test(test_revocation_certificate_not_der),
        cmocka_unit_test(test_revocation_no_certificate),
        cmocka_unit_test(test_revocation_payload_array),
        cmocka_unit_test(test_revocation_empty_payload),
        cmocka_unit_test(test_revocation_duplicate_certificate),
        cmocka_unit_test(test_revocation_reason_overflow),
        cmocka_unit_test(test_csr_accepted),
        cmocka_unit_test(test_csr_trailing_bytes),
        cmocka_unit_test(test_csr_long_form_length),
        cmocka_unit_test(test_csr_indefinite_length),
        cmocka_unit_test(test_csr_version_not_1),
        cmocka_unit_test(test_csr_wrong_digest),
        cmocka_unit_test(test_csr_other_key),
        cmocka_unit_test(test_csr_not_a_request),
        cmocka_unit_test(test_csr_whole_request),
    };
    return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
