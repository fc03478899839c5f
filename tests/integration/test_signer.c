/*
 * The key service against a real SoftHSM (run under with-softhsm.sh, which
 * makes tokens "ks-a" and "ks-b" and exports KS_PIN_FILE): a signer process
 * serving two tenants, reached over its socket as the worker reaches it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "b64.h"
#include "csr.h"
#include "hsm.h"
#include "jws.h"
#include "keys.h"
#include "ks_util.h"
#include "p11uri.h"
#include "pin.h"
#include "signer.h"
#include "signer_proto.h"
#include "soft_key.h"

#include <errno.h>
#include <json-c/json.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ fixture */

typedef struct fixture {
    ks_signer_process proc;
    ks_signer *a;
    ks_signer *b;
} fixture;

static ks_signer_tenant_config tenant(const char *name, const char *label, const char *pin_file)
{
    return (ks_signer_tenant_config){.name = name, .token_label = label, .pin_file = pin_file};
}

/* Starts a signer for these tenants.  Only the test process returns; the
 * signer child exits here once its worker is gone. */
static void spawn_signer(const ks_signer_tenant_config *t, size_t n, ks_signer_process *proc)
{
    int child_status = 0;
    ks_err err = {0};
    int rc = ks_signer_spawn(getenv("KS_PKCS11_MODULE"), t, n, proc, &child_status, &err);
    if (rc == 1)
        _exit(child_status); /* the signer child: never run the tests twice */
    if (rc < 0)
        fail_msg("spawn: %s", err.msg);
}

/* Starts a signer for tenants a (ks-a) and b (ks-b). */
static void start(fixture *f, const char *pin_file)
{
    ks_signer_tenant_config t[] = {tenant("a", "ks-a", pin_file), tenant("b", "ks-b", pin_file)};
    spawn_signer(t, 2, &f->proc);
}

/* The connection serving a tenant; fails the test when there is none. */
static int fd_of(ks_signer_process *proc, const char *tenant)
{
    ks_err err = {0};
    int fd = ks_signer_process_fd(proc, tenant, &err);
    if (fd < 0)
        fail_msg("%s", err.msg);
    return fd;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    ks_err err = {0};
    start(f, getenv("KS_PIN_FILE"));
    f->a = ks_signer_open(fd_of(&f->proc, "a"), "a", &err);
    f->b = f->a ? ks_signer_open(fd_of(&f->proc, "b"), "b", &err) : NULL;
    if (f->b == NULL)
        fail_msg("open: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ks_signer_close(f->a);
    ks_signer_close(f->b);
    ks_signer_process_end(&f->proc);
    free(f);
    return 0;
}

static const hsm_key_spec p256 = {.kind = HSM_KEY_EC, .ec_nid = NID_X9_62_prime256v1};

/* A new key of a purpose; fails the test if it cannot be made. */
static ks_keyref make_key(ks_signer *s, ks_key_purpose purpose, const hsm_key_spec *spec)
{
    ks_keyref ref;
    ks_err err = {0};
    if (ks_signer_new_keyref(s, purpose, &ref, &err) < 0 ||
        ks_signer_generate(s, &ref, spec, "test", &err) < 0)
        fail_msg("generate: %s", err.msg);
    return ref;
}

/* base64url(header) "." base64url(payload), newly allocated. */
static char *signing_input_new(const char *header, const char *payload)
{
    char *h = b64url_encode_new((const unsigned char *)header, strlen(header));
    char *p = b64url_encode_new((const unsigned char *)payload, strlen(payload));
    size_t len = strlen(h) + strlen(p) + 2;
    char *out = malloc(len);
    assert_non_null(out);
    snprintf(out, len, "%s.%s", h, p);
    free(h);
    free(p);
    return out;
}

/* A JWS signing input the account-key policy accepts. */
static char *jws_input_new(const char *alg, const char *payload)
{
    char header[256];
    snprintf(header, sizeof(header),
             "{\"alg\":\"%s\",\"kid\":\"https://ca/acct/1\",\"nonce\":\"n\","
             "\"url\":\"https://ca/x\"}",
             alg);
    return signing_input_new(header, payload);
}

/* A revocation request's signing input, signed with the certificate key
 * itself: its JWK in the header (RFC 8555 7.6). */
static char *revocation_input_new(EVP_PKEY *pub, const char *payload)
{
    ks_err err = {0};
    char *jwk = acme_jwk_new(pub, &err);
    assert_non_null(jwk);
    char header[2048];
    snprintf(header, sizeof(header),
             "{\"alg\":\"%s\",\"jwk\":%s,\"nonce\":\"n\",\"url\":\"https://ca/revoke\"}",
             acme_jws_alg_for_key(pub), jwk);
    free(jwk);
    return signing_input_new(header, payload);
}

/* Verifies a JWS-form signature (r||s for EC, raw for Ed25519). */
static int verify_jws_sig(EVP_PKEY *pub, const char *alg, const unsigned char *in, size_t len,
                          const unsigned char *sig, size_t sig_len)
{
    if (strcmp(alg, "EdDSA") == 0) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
                 EVP_DigestVerify(ctx, sig, sig_len, in, len) == 1;
        EVP_MD_CTX_free(ctx);
        return ok;
    }
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

static void read_test_pin(char *pin, size_t cap)
{
    FILE *fp = fopen(getenv("KS_PIN_FILE"), "r");
    assert_non_null(fp);
    assert_non_null(fgets(pin, (int)cap, fp));
    fclose(fp);
    pin[strcspn(pin, "\n")] = '\0';
}

/* What the token says of a key, from a module instance of our own. */
static hsm_key_attrs inspect(const char *label, const ks_keyref *ref)
{
    ks_err err = {0};
    ks_pin_source pin;
    hsm_key_attrs attrs = {0};
    assert_int_equal(ks_pin_source_init(&pin, NULL, getenv("KS_PIN_FILE"), &err), 0);
    hsm *h = hsm_open(getenv("KS_PKCS11_MODULE"), &err);
    hsm_token *t = h ? hsm_token_login(h, label, NULL, ks_pin_source_get, &pin, &err) : NULL;
    if (t == NULL || hsm_inspect_key(t, ref->id, ref->id_len, &attrs, &err) < 0)
        fail_msg("inspect: %s", err.msg);
    hsm_close(h);
    ks_pin_source_clear(&pin);
    return attrs;
}

/* -------------------------------------------------------------- keys */

static void test_account_keys_sealed_and_signing(void **state)
{
    fixture *f = *state;
    const hsm_key_spec specs[] = {
        p256,
        {.kind = HSM_KEY_EC, .ec_nid = NID_secp384r1},
        {.kind = HSM_KEY_EC, .ec_nid = NID_secp521r1},
        {.kind = HSM_KEY_RSA, .rsa_bits = 2048},
        {.kind = HSM_KEY_ED25519},
    };
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        ks_err err = {0};
        EVP_PKEY *pub = NULL;
        ks_keyref ref = make_key(f->a, KS_PURPOSE_ACCOUNT, &specs[i]);
        assert_int_equal(ks_signer_key_exists(f->a, &ref, &err), 1);
        assert_int_equal(ks_signer_public_key(f->a, &ref, &pub, &err), 0);
        hsm_key_attrs attrs = inspect("ks-a", &ref);
        assert_true(attrs.is_token && attrs.is_private && attrs.sensitive);
        assert_false(attrs.extractable);
        assert_true(attrs.always_sensitive && attrs.never_extractable);
        assert_string_equal(hsm_rv_name(attrs.secret_read_rv), "CKR_ATTRIBUTE_SENSITIVE");

        const char *alg = acme_jws_alg_for_key(pub);
        assert_non_null(alg);
        char *input = jws_input_new(alg, "{\"test\":true}");
        unsigned char *sig = NULL;
        size_t sig_len = 0;
        if (ks_signer_sign_jws(f->a, &ref, alg, (unsigned char *)input, strlen(input), &sig,
                               &sig_len, &err) < 0)
            fail_msg("%s: %s", alg, err.msg);
        size_t half = acme_jws_ec_coord_len(alg);
        if (half)
            assert_int_equal(sig_len, 2 * half);
        assert_true(verify_jws_sig(pub, alg, (unsigned char *)input, strlen(input), sig, sig_len));
        sig[0] ^= 1;
        assert_false(verify_jws_sig(pub, alg, (unsigned char *)input, strlen(input), sig, sig_len));
        free(sig);
        free(input);
        assert_int_equal(ks_signer_destroy(f->a, &ref, &err), 0);
        assert_int_equal(ks_signer_key_exists(f->a, &ref, &err), 0);
        EVP_PKEY_free(pub);
    }
}

typedef struct csr_ctx {
    ks_signer *s;
    ks_keyref *ref;
} csr_ctx;

static int token_csr_sign(void *ctx, int md_nid, const unsigned char *tbs, size_t len,
                          unsigned char **sig, size_t *sig_len, ks_err *err)
{
    csr_ctx *c = ctx;
    return ks_signer_sign_csr(c->s, c->ref, md_nid, tbs, len, sig, sig_len, err);
}

/* Many CSRs per key type through the signer: the BIT STRING trap fails
 * about half of them, and each one crosses the socket and the policy. */
static void test_csr_signed_by_token(void **state)
{
    fixture *f = *state;
    const hsm_key_spec specs[] = {p256,
                                  {.kind = HSM_KEY_EC, .ec_nid = NID_secp384r1},
                                  {.kind = HSM_KEY_EC, .ec_nid = NID_secp521r1},
                                  {.kind = HSM_KEY_RSA, .rsa_bits = 2048}};
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        ks_err err = {0};
        EVP_PKEY *pub = NULL;
        ks_keyref ref = make_key(f->a, KS_PURPOSE_CERTIFICATE, &specs[i]);
        assert_int_equal(ks_signer_public_key(f->a, &ref, &pub, &err), 0);
        csr_ctx ctx = {f->a, &ref};
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
        ks_signer_destroy(f->a, &ref, &err);
        EVP_PKEY_free(pub);
    }
}

/* ------------------------------------------------------------- policy */

static void expect_refused(int rc, const ks_err *err, const char *needle)
{
    assert_int_equal(rc, -1);
    if (strstr(err->msg, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err->msg, needle);
}

/* A key of tenant a, named to tenant b, is refused, not searched for. */
static void test_other_tenants_key_refused(void **state)
{
    fixture *f = *state;
    ks_err err = {0};
    ks_keyref ref = make_key(f->a, KS_PURPOSE_ACCOUNT, &p256);
    char *input = jws_input_new("ES256", "{}");
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    int rc = ks_signer_sign_jws(f->b, &ref, "ES256", (unsigned char *)input, strlen(input), &sig,
                                &sig_len, &err);
    expect_refused(rc, &err, "not to tenant \"b\"");
    assert_null(sig);
    expect_refused(ks_signer_destroy(f->b, &ref, &err), &err, "refused");
    assert_int_equal(ks_signer_key_exists(f->a, &ref, &err), 1);
    assert_int_equal(ks_signer_sign_jws(f->a, &ref, "ES256", (unsigned char *)input,
                                        strlen(input), &sig, &sig_len, &err),
                     0);
    free(sig);
    free(input);
    ks_signer_destroy(f->a, &ref, &err);
}

/* A certificate signed by a throwaway CA for `pub`, as base64url DER. */
static char *certificate_for(EVP_PKEY *pub)
{
    EVP_PKEY *ca = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"r.test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, pub);
    X509_sign(x, ca, EVP_sha256());
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    char *out = b64url_encode_new(der, (size_t)len);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(ca);
    return out;
}

static void test_policy(void **state)
{
    fixture *f = *state;
    ks_err err = {0};
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    ks_keyref acct = make_key(f->a, KS_PURPOSE_ACCOUNT, &p256);
    ks_keyref cert = make_key(f->a, KS_PURPOSE_CERTIFICATE, &p256);
    ks_keyref other = make_key(f->a, KS_PURPOSE_CERTIFICATE, &p256);
    EVP_PKEY *cert_pub = NULL, *other_pub = NULL;
    assert_int_equal(ks_signer_public_key(f->a, &cert, &cert_pub, &err), 0);
    assert_int_equal(ks_signer_public_key(f->a, &other, &other_pub, &err), 0);

    /* An account key signs no CSR. */
    const unsigned char junk[] = "not a request";
    expect_refused(ks_signer_sign_csr(f->a, &acct, NID_sha256, junk, sizeof(junk), &sig,
                                      &sig_len, &err),
                   &err, "account key does not sign certificate requests");
    /* An account key signs only JWS inputs, with its own alg. */
    expect_refused(ks_signer_sign_jws(f->a, &acct, "ES256", junk, sizeof(junk), &sig, &sig_len,
                                      &err),
                   &err, "not a JWS signing input");
    char *rs = jws_input_new("RS256", "{}");
    expect_refused(ks_signer_sign_jws(f->a, &acct, "RS256", (unsigned char *)rs, strlen(rs), &sig,
                                      &sig_len, &err),
                   &err, "does not belong to this key");
    free(rs);
    /* A certificate key signs a request only for itself. */
    csr_ctx ctx = {f->a, &cert};
    unsigned char *der = NULL;
    size_t der_len = 0;
    const char *names[] = {"c.test"};
    expect_refused(csr_build_der(other_pub, "c.test", names, 1, token_csr_sign, &ctx, &der,
                                 &der_len, &err),
                   &err, "not a certificate request for this key");
    /* A certificate key signs a JWS only to revoke its own certificate. */
    char *plain = revocation_input_new(cert_pub, "{\"hello\":1}");
    expect_refused(ks_signer_sign_jws(f->a, &cert, "ES256", (unsigned char *)plain, strlen(plain),
                                      &sig, &sig_len, &err),
                   &err, "only to revoke its own certificate");
    free(plain);
    char *their = certificate_for(other_pub), *own = certificate_for(cert_pub);
    char payload[4096];
    snprintf(payload, sizeof(payload), "{\"certificate\":\"%s\",\"reason\":4}", their);
    char *revoke_other = revocation_input_new(cert_pub, payload);
    expect_refused(ks_signer_sign_jws(f->a, &cert, "ES256", (unsigned char *)revoke_other,
                                      strlen(revoke_other), &sig, &sig_len, &err),
                   &err, "only to revoke its own certificate");
    snprintf(payload, sizeof(payload), "{\"certificate\":\"%s\",\"reason\":4}", own);
    char *revoke_own = revocation_input_new(cert_pub, payload);
    if (ks_signer_sign_jws(f->a, &cert, "ES256", (unsigned char *)revoke_own, strlen(revoke_own),
                           &sig, &sig_len, &err) < 0)
        fail_msg("revoking its own certificate: %s", err.msg);
    assert_true(verify_jws_sig(cert_pub, "ES256", (unsigned char *)revoke_own,
                               strlen(revoke_own), sig, sig_len));
    free(sig);
    free(revoke_other);
    free(revoke_own);
    free(their);
    free(own);
    EVP_PKEY_free(cert_pub);
    EVP_PKEY_free(other_pub);
    ks_signer_destroy(f->a, &acct, &err);
    ks_signer_destroy(f->a, &cert, &err);
    ks_signer_destroy(f->a, &other, &err);
}

/* ------------------------------------------------------ raw requests */

/* Sends raw bytes as one message and returns the parsed reply (caller
 * puts), or fails the test when there is none. */
static json_object *raw_call(int fd, const void *msg, size_t len)
{
    assert_int_equal(send(fd, msg, len, MSG_NOSIGNAL), (ssize_t)len);
    json_object *reply = NULL;
    ks_err err = {0};
    if (ks_proto_recv(fd, &reply, 1, &err) != 1)
        fail_msg("no reply: %s", err.msg);
    return reply;
}

/* Sends raw bytes as one message and returns the reply's "error" (empty
 * for ok), or fails the test when there is no reply. */
static void raw_exchange(int fd, const void *msg, size_t len, char *error, size_t cap)
{
    json_object *reply = raw_call(fd, msg, len), *ok = NULL;
    const char *text = "";
    if (!(json_object_object_get_ex(reply, "ok", &ok) && json_object_get_boolean(ok)))
        ks_proto_string(reply, "error", &text, NULL);
    snprintf(error, cap, "%s", text);
    json_object_put(reply);
}

static void test_malformed_requests_keep_signer_serving(void **state)
{
    fixture *f = *state;
    char error[512];
    const char *bad[] = {
        "not json",
        "[1,2,3]",
        "{\"tenant\":\"a\"}",
        "{\"op\":\"launch\",\"tenant\":\"a\"}",
        "{\"op\":\"sign_jws\",\"tenant\":\"zz\"}",
        "{\"op\":\"sign_jws\",\"tenant\":\"a\",\"key\":{\"serial\":\"x\",\"id\":\"zz\"}}",
        "{\"op\":\"sign_jws\",\"tenant\":\"a\",\"key\":[]}",
        "{\"op\":\"exists\",\"tenant\":\"a\",\"key\":{\"serial\":5,\"id\":\"41\"}}",
        "{\"op\":\"open\",\"tenant\":\"a\"} trailing",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        raw_exchange(fd_of(&f->proc, "a"), bad[i], strlen(bad[i]), error, sizeof(error));
        if (error[0] == '\0')
            fail_msg("request %zu was accepted: %s", i, bad[i]);
    }
    /* A generate whose CKA_ID does not carry its purpose. */
    char gen[512];
    snprintf(gen, sizeof(gen),
             "{\"op\":\"generate\",\"tenant\":\"a\",\"purpose\":\"account\",\"label\":\"x\","
             "\"spec\":{\"kind\":\"ec\",\"curve\":\"secp256r1\"},"
             "\"key\":{\"serial\":\"%s\",\"id\":\"43aa00000000000000000000000000aa\"}}",
             ks_signer_token(f->a)->serial);
    raw_exchange(fd_of(&f->proc, "a"), gen, strlen(gen), error, sizeof(error));
    assert_non_null(strstr(error, "does not carry the purpose"));
    /* An ID keysvc did not make (the wrong length for one) is not used. */
    snprintf(gen, sizeof(gen),
             "{\"op\":\"exists\",\"tenant\":\"a\",\"key\":{\"serial\":\"%s\",\"id\":\"41aa\"}}",
             ks_signer_token(f->a)->serial);
    raw_exchange(fd_of(&f->proc, "a"), gen, strlen(gen), error, sizeof(error));
    assert_non_null(strstr(error, "not a key keysvc made"));
    /* Oversized: one message over the limit. */
    size_t big = KS_SIGNER_MAX_MSG + 100;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    raw_exchange(fd_of(&f->proc, "a"), huge, big, error, sizeof(error));
    assert_non_null(strstr(error, "over the"));
    free(huge);
    /* And it still serves. */
    ks_err err = {0};
    ks_keyref ref = make_key(f->a, KS_PURPOSE_ACCOUNT, &p256);
    assert_int_equal(ks_signer_key_exists(f->a, &ref, &err), 1);
    ks_signer_destroy(f->a, &ref, &err);
}


/* The pages of a listing asked for `limit` at a time: every page at most
 * that long, "more" until the last, together the whole listing in order. */
static void test_list_pages_with_limit(void **state)
{
    fixture *f = *state;
    enum { N = 5 };
    ks_keyref made[N], *all = NULL;
    size_t n_all = 0, seen = 0;
    ks_err err = {0};
    for (int i = 0; i < N; i++)
        made[i] = make_key(f->b, KS_PURPOSE_CERTIFICATE, &p256);
    assert_int_equal(ks_signer_list_keys(f->b, &all, &n_all, &err), 0);
    assert_true(n_all >= N);
    int fd = fd_of(&f->proc, "b"), more = 1;
    char after[80] = "", req[256];
    while (more) {
        snprintf(req, sizeof(req), "{\"op\":\"list\",\"tenant\":\"b\",\"limit\":2%s%s%s}",
                 after[0] ? ",\"after\":\"" : "", after, after[0] ? "\"" : "");
        json_object *reply = raw_call(fd, req, strlen(req)), *keys = NULL, *m = NULL;
        assert_true(json_object_object_get_ex(reply, "keys", &keys));
        assert_true(json_object_object_get_ex(reply, "more", &m));
        size_t count = json_object_array_length(keys);
        assert_true(count <= 2);
        for (size_t i = 0; i < count; i++, seen++) {
            char *want = ks_hex_new(all[seen].id, all[seen].id_len);
            const char *got = json_object_get_string(json_object_array_get_idx(keys, i));
            assert_string_equal(got, want);
            snprintf(after, sizeof(after), "%s", got);
            free(want);
        }
        more = json_object_get_boolean(m);
        assert_true(more ? seen < n_all : seen == n_all);
        json_object_put(reply);
    }
    assert_int_equal(seen, n_all);
    char error[256];
    const char *zero = "{\"op\":\"list\",\"tenant\":\"b\",\"limit\":0}";
    raw_exchange(fd, zero, strlen(zero), error, sizeof(error));
    assert_non_null(strstr(error, "positive integer"));
    free(all);
    for (int i = 0; i < N; i++)
        ks_signer_destroy(f->b, &made[i], &err);
}

static ks_signer_stats stats_of(ks_signer *s)
{
    ks_signer_stats st = {0};
    ks_err err = {0};
    if (ks_signer_get_stats(s, &st, &err) < 0)
        fail_msg("stats: %s", err.msg);
    return st;
}

/* --------------------------------------------------------- resilience */

static void sign_once(ks_signer *s, const ks_keyref *ref, EVP_PKEY *pub, int expect_ok,
                      const char *needle)
{
    ks_err err = {0};
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    char *input = jws_input_new("ES256", "{}");
    int rc = ks_signer_sign_jws(s, ref, "ES256", (unsigned char *)input, strlen(input), &sig,
                                &sig_len, &err);
    if (expect_ok) {
        if (rc < 0)
            fail_msg("sign: %s", err.msg);
        assert_true(verify_jws_sig(pub, "ES256", (unsigned char *)input, strlen(input), sig,
                                   sig_len));
    } else {
        expect_refused(rc, &err, needle);
    }
    free(sig);
    free(input);
}

/* Injected session losses: one is recovered (new session, new login), two
 * in a row are reported; an error that is not a lost session is reported at
 * once. */
static void test_session_loss_injected(void **state)
{
    (void)state;
    setenv("KEYSVC_TEST_P11_FAULTS",
           "C_Sign@2=CKR_SESSION_HANDLE_INVALID,C_Sign@4=CKR_USER_NOT_LOGGED_IN,"
           "C_Sign@5=CKR_SESSION_CLOSED,C_Sign@6=CKR_DEVICE_ERROR",
           1);
    fixture *f = NULL;
    setup((void **)&f);
    unsetenv("KEYSVC_TEST_P11_FAULTS");
    ks_err err = {0};
    EVP_PKEY *pub = NULL;
    ks_keyref ref = make_key(f->a, KS_PURPOSE_ACCOUNT, &p256);
    assert_int_equal(ks_signer_public_key(f->a, &ref, &pub, &err), 0);
    sign_once(f->a, &ref, pub, 1, NULL);                 /* call 1 */
    sign_once(f->a, &ref, pub, 1, NULL);                 /* 2 lost, recovered by 3 */
    sign_once(f->a, &ref, pub, 0, "session lost again"); /* 4 lost, 5 lost again */
    sign_once(f->a, &ref, pub, 0, "CKR_DEVICE_ERROR");   /* 6: not a session loss */
    sign_once(f->a, &ref, pub, 1, NULL);                 /* 7 */
    /* Logins: the first, after 2, after 4; then before 6 and before 7, as
     * a session left by a failed call (5, 6) is replaced before the next
     * request.  Each but the first is a recovery. */
    ks_signer_stats st = stats_of(f->a);
    assert_int_equal(st.logins, 5);
    assert_int_equal(st.recoveries, 4);
    assert_int_equal(stats_of(f->b).logins, 1);
    EVP_PKEY_free(pub);
    ks_signer_destroy(f->a, &ref, &err);
    teardown((void **)&f);
}

/* Every session closed from outside the signer (a token reset): the next
 * request logs in again and succeeds. */
static void test_sessions_closed_from_outside(void **state)
{
    (void)state;
    setenv("KEYSVC_TEST_HOOKS", "1", 1);
    fixture *f = NULL;
    setup((void **)&f);
    unsetenv("KEYSVC_TEST_HOOKS");
    ks_err err = {0};
    EVP_PKEY *pub = NULL;
    ks_keyref ref = make_key(f->a, KS_PURPOSE_ACCOUNT, &p256);
    assert_int_equal(ks_signer_public_key(f->a, &ref, &pub, &err), 0);
    sign_once(f->a, &ref, pub, 1, NULL);
    ks_signer_stats before = stats_of(f->a);
    assert_int_equal(kill(f->proc.pid, SIGUSR1), 0);
    sign_once(f->a, &ref, pub, 1, NULL);
    sign_once(f->a, &ref, pub, 1, NULL);
    ks_signer_stats after = stats_of(f->a);
    assert_int_equal(after.logins, before.logins + 1);
    assert_int_equal(after.recoveries, before.recoveries + 1);
    EVP_PKEY_free(pub);
    ks_signer_destroy(f->a, &ref, &err);
    teardown((void **)&f);
}

/* --------------------------------------------------------------- PINs */

/* The worker keeps no PIN: its environment copy is wiped at the spawn, and
 * the signer's environment and command line carry none. */
static void test_pin_from_environment_never_stays(void **state)
{
    (void)state;
    char pin[300] = "";
    read_test_pin(pin, sizeof(pin));
    setenv("KS_TEST_PIN", pin, 1);
    ks_signer_tenant_config t = {.name = "a", .token_label = "ks-a", .pin_env = "KS_TEST_PIN"};
    ks_signer_process proc;
    ks_err err = {0};
    spawn_signer(&t, 1, &proc);
    assert_null(getenv("KS_TEST_PIN"));
    ks_signer *s = ks_signer_open(fd_of(&proc, "a"), "a", &err);
    if (s == NULL)
        fail_msg("open with the PIN from the environment: %s", err.msg);
    const char *files[] = {"environ", "cmdline"};
    for (size_t i = 0; i < 2; i++) {
        char path[64], buf[65536];
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)proc.pid, files[i]);
        FILE *pf = fopen(path, "r");
        size_t n = pf ? fread(buf, 1, sizeof(buf), pf) : 0;
        if (pf)
            fclose(pf);
        assert_null(memmem(buf, n, pin, strlen(pin)));
    }
    ks_signer_close(s);
    ks_signer_process_end(&proc);
}


/* A PIN copied to a file of the test's own, to be changed under the signer. */
static void copy_pin_file(char *path, const char *pin)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pin, strlen(pin)), (ssize_t)strlen(pin));
    close(fd);
}


/* The PIN changes while the sessions are gone: the signer's one new login
 * is refused, and it does not spend another try on the same PIN. */
static void test_relogin_refused_is_not_repeated(void **state)
{
    (void)state;
    char pin[300], path[] = "/tmp/keysvc-relogin-pin.XXXXXX";
    read_test_pin(pin, sizeof(pin));
    copy_pin_file(path, pin);
    setenv("KEYSVC_TEST_HOOKS", "1", 1);
    fixture f = {0};
    ks_err err = {0};
    start(&f, path);
    unsetenv("KEYSVC_TEST_HOOKS");
    f.a = ks_signer_open(fd_of(&f.proc, "a"), "a", &err);
    assert_non_null(f.a);
    EVP_PKEY *pub = NULL;
    ks_keyref ref = make_key(f.a, KS_PURPOSE_ACCOUNT, &p256);
    assert_int_equal(ks_signer_public_key(f.a, &ref, &pub, &err), 0);
    long logins = stats_of(f.a).logins;
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("0000", fp);
    fclose(fp);
    assert_int_equal(kill(f.proc.pid, SIGUSR1), 0);
    sign_once(f.a, &ref, pub, 0, "wrong PIN");
    sign_once(f.a, &ref, pub, 0, "not tried again");
    sign_once(f.a, &ref, pub, 0, "not tried again");
    assert_int_equal(stats_of(f.a).logins, logins + 1);
    /* The PIN file is mended: one more login is worth its try. */
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(pin, fp);
    fclose(fp);
    sign_once(f.a, &ref, pub, 1, NULL);
    assert_int_equal(stats_of(f.a).logins, logins + 2);
    assert_int_equal(ks_signer_destroy(f.a, &ref, &err), 0);
    EVP_PKEY_free(pub);
    ks_signer_close(f.a);
    ks_signer_process_end(&f.proc);
    unlink(path);
}

/* A token that reports its last PIN try (or a locked PIN) is not logged
 * into at all: a wrong PIN then would lock a real HSM. */
static void test_final_pin_try_is_not_spent(void **state)
{
    (void)state;
    const char *flags[] = {"final_try", "locked"};
    const char *needles[] = {"one PIN try is left", "the user PIN is locked"};
    for (size_t i = 0; i < 2; i++) {
        setenv("KEYSVC_TEST_TOKEN_FLAGS", flags[i], 1);
        fixture f = {0};
        ks_err err = {0};
        start(&f, getenv("KS_PIN_FILE"));
        unsetenv("KEYSVC_TEST_TOKEN_FLAGS");
        assert_null(ks_signer_open(fd_of(&f.proc, "a"), "a", &err));
        if (strstr(err.msg, needles[i]) == NULL)
            fail_msg("%s: \"%s\" lacks \"%s\"", flags[i], err.msg, needles[i]);
        ks_signer_process_end(&f.proc);
    }
}

/* Two tenants whose PINs come from one environment variable: it can be
 * read only once (reading it wipes it), and both tenants log in. */
static void test_shared_pin_variable(void **state)
{
    (void)state;
    char pin[300];
    read_test_pin(pin, sizeof(pin));
    setenv("KS_TEST_SHARED_PIN", pin, 1);
    ks_signer_tenant_config t[] = {
        {.name = "a", .token_label = "ks-a", .pin_env = "KS_TEST_SHARED_PIN"},
        {.name = "b", .token_label = "ks-b", .pin_env = "KS_TEST_SHARED_PIN"}};
    ks_signer_process proc;
    ks_err err = {0};
    spawn_signer(t, 2, &proc);
    assert_null(getenv("KS_TEST_SHARED_PIN"));
    const char *names[] = {"a", "b"};
    for (size_t i = 0; i < 2; i++) {
        ks_signer *s = ks_signer_open(fd_of(&proc, names[i]), names[i], &err);
        if (s == NULL)
            fail_msg("open %s: %s", names[i], err.msg);
        ks_signer_close(s);
    }
    ks_signer_process_end(&proc);
}

/* Two tenants configured on one token: the second is refused, so that no
 * tenant can reach another's keys through a shared login. */
static void test_two_tenants_on_one_token_refused(void **state)
{
    (void)state;
    ks_signer_tenant_config t[] = {tenant("x", "ks-a", getenv("KS_PIN_FILE")),
                                   tenant("y", "ks-a", getenv("KS_PIN_FILE"))};
    ks_signer_process proc;
    ks_err err = {0};
    spawn_signer(t, 2, &proc);
    ks_signer *x = ks_signer_open(fd_of(&proc, "x"), "x", &err);
    if (x == NULL)
        fail_msg("open x: %s", err.msg);
    assert_null(ks_signer_open(fd_of(&proc, "y"), "y", &err));
    assert_non_null(strstr(err.msg, "already belongs to another tenant"));
    /* One connection serves one tenant. */
    char error[256];
    const char *other = "{\"op\":\"open\",\"tenant\":\"y\"}";
    raw_exchange(fd_of(&proc, "x"), other, strlen(other), error, sizeof(error));
    assert_non_null(strstr(error, "belongs to tenant \"x\""));
    ks_signer_close(x);
    ks_signer_process_end(&proc);
}

static void test_wrong_pin_and_missing_token(void **state)
{
    (void)state;
    char path[] = "/tmp/keysvc-wrong-pin.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0000", 4), 4);
    close(fd);
    fixture f = {0};
    ks_err err = {0};
    start(&f, path);
    assert_null(ks_signer_open(fd_of(&f.proc, "a"), "a", &err));
    assert_non_null(strstr(err.msg, "wrong PIN"));
    ks_signer_process_end(&f.proc);
    unlink(path);
    ks_signer_tenant_config t = tenant("x", "no-such-token", getenv("KS_PIN_FILE"));
    spawn_signer(&t, 1, &f.proc);
    assert_null(ks_signer_open(fd_of(&f.proc, "x"), "x", &err));
    assert_non_null(strstr(err.msg, "no token labelled \"no-such-token\""));
    assert_non_null(strstr(err.msg, "\"ks-a\""));
    ks_signer_process_end(&f.proc);
}

/* ------------------------------------------------------------ URIs */

/* A key's URI names one object: parsed back, its serial and id reach the
 * same key through the signer. */
static void test_uri_round_trip(void **state)
{
    fixture *f = *state;
    ks_err err = {0};
    const hsm_key_spec rsa = {.kind = HSM_KEY_RSA, .rsa_bits = 2048};
    const hsm_key_spec *specs[] = {&p256, &rsa};
    for (size_t i = 0; i < 2; i++) {
        ks_keyref ref = make_key(f->a, KS_PURPOSE_CERTIFICATE, specs[i]);
        const hsm_token_info *tok = ks_signer_token(f->a);
        store_key row = {.token_label = (char *)tok->label,
                         .token_serial = (char *)tok->serial,
                         .label = "cert:uri test;odd/label?",
                         .ckaid_len = ref.id_len};
        memcpy(row.ckaid, ref.id, ref.id_len);
        char *uri = ks_key_uri_new(&row, tok);
        p11uri_parsed parsed;
        assert_int_equal(p11uri_parse(uri, &parsed), 0);
        assert_string_equal(parsed.token, tok->label);
        assert_string_equal(parsed.serial, tok->serial);
        assert_string_equal(parsed.object, "cert:uri test;odd/label?");
        assert_string_equal(parsed.type, "private");
        ks_keyref found = {.id_len = parsed.id_len};
        snprintf(found.token_serial, sizeof(found.token_serial), "%s", parsed.serial);
        memcpy(found.id, parsed.id, parsed.id_len);
        EVP_PKEY *want = NULL, *got = NULL;
        assert_int_equal(ks_signer_public_key(f->a, &ref, &want, &err), 0);
        if (ks_signer_public_key(f->a, &found, &got, &err) < 0)
            fail_msg("the parsed URI %s finds nothing: %s", uri, err.msg);
        assert_int_equal(EVP_PKEY_eq(want, got), 1);
        EVP_PKEY_free(want);
        EVP_PKEY_free(got);
        p11uri_parsed_clear(&parsed);
        free(uri);
        ks_signer_destroy(f->a, &ref, &err);
    }
}

/* ------------------------------------------------------------- listing */

/* One listing, over several pages and search batches, with only keysvc's
 * keys (not the foreign key with the 70-byte ID made by with-softhsm.sh). */
static void test_list_keys(void **state)
{
    fixture *f = *state;
    enum { N = 140 };
    ks_keyref made[N];
    ks_err err = {0};
    for (int i = 0; i < N; i++)
        made[i] = make_key(f->b, KS_PURPOSE_CERTIFICATE, &p256);
    ks_keyref *listed = NULL;
    size_t n = 0;
    assert_int_equal(ks_signer_list_keys(f->b, &listed, &n, &err), 0);
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
        ks_signer_destroy(f->b, &made[i], &err);
}

int main(void)
{
    ks_signer_allow_unaudited(); /* no database here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_account_keys_sealed_and_signing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csr_signed_by_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_tenants_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests_keep_signer_serving, setup,
                                        teardown),
        cmocka_unit_test(test_session_loss_injected),
        cmocka_unit_test(test_sessions_closed_from_outside),
        cmocka_unit_test(test_pin_from_environment_never_stays),
        cmocka_unit_test(test_wrong_pin_and_missing_token),
        cmocka_unit_test(test_relogin_refused_is_not_repeated),
        cmocka_unit_test(test_final_pin_try_is_not_spent),
        cmocka_unit_test(test_two_tenants_on_one_token_refused),
        cmocka_unit_test(test_shared_pin_variable),
        cmocka_unit_test_setup_teardown(test_list_pages_with_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uri_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
