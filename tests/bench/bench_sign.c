/*
 * bench_sign: signatures per second for one P-256 and one RSA-2048 token
 * key, three ways, in one run:
 *
 *   raw      a C_SignInit + C_Sign loop straight on the module (the same
 *            mechanisms keysvc uses: software SHA-256, then CKM_ECDSA, or
 *            CKM_RSA_PKCS over the DigestInfo)
 *   hsm      keysvc's hsm_sign() in this process (wrapper, handle cache)
 *   signer   ks_signer_sign_jws() through the signer process's socket
 *            (JSON, base64, the account-key policy, a process switch)
 *
 * and the round trip of a request that signs nothing ("stats").
 *
 * Run it with a SoftHSM token "ks-a" and KS_PIN_FILE / KS_PKCS11_MODULE set,
 * e.g. through tests/integration/with-softhsm.sh:
 *   tests/integration/with-softhsm.sh build/tests/bench/bench_sign [SECONDS]
 * This is a measurement, not a test: it prints numbers and never fails on
 * them.
 */
#include "b64.h"
#include "hsm.h"
#include "ks_util.h"
#include "pin.h"
#include "signer.h"

#include <dlfcn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double seconds = 3.0;

/* A JWS signing input of about 350 bytes, as ACME requests have, with a
 * protected header the account-key policy accepts for `alg`. */
static const char *jws_input(const char *alg)
{
    static char buf[2][1024];
    static const char payload[] =
        "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"www.example.test\"},"
        "{\"type\":\"dns\",\"value\":\"example.test\"}],"
        "\"notBefore\":\"2026-11-22T00:00:00Z\",\"notAfter\":\"2026-12-22T00:00:00Z\"}";
    char *slot = buf[strcmp(alg, "ES256") == 0];
    if (slot[0] != '\0')
        return slot;
    char header[128];
    snprintf(header, sizeof(header),
             "{\"alg\":\"%s\",\"kid\":\"https://ca/acct/1\",\"nonce\":\"TEST\","
             "\"url\":\"https://ca/x\"}",
             alg);
    char *h = b64url_encode_new((const unsigned char *)header, strlen(header));
    char *p = b64url_encode_new((const unsigned char *)payload, strlen(payload));
    snprintf(slot, sizeof(buf[0]), "%s.%s", h, p);
    free(h);
    free(p);
    return slot;
}

/* ---------------------------------------------------------------- raw */

typedef struct raw_module {
    void *dl;
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE session;
} raw_module;

static int raw_open(raw_module *m, const char *module, const char *label, const char *pin)
{
    CK_C_GetFunctionList get;
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    /* In this process the module is hsm's instance already (dlopen gives the
     * same one): "already initialised" and "already logged in" are fine. */
    m->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL || (get = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList")) == NULL ||
        get(&m->f) != CKR_OK)
        return -1;
    CK_RV rv = m->f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return -1;
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    if (m->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return -1;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (m->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
            strncmp((char *)ti.label, label, strlen(label)) != 0 || ti.label[strlen(label)] != ' ')
            continue;
        if (m->f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                &m->session) != CKR_OK)
            return -1;
        rv = m->f->C_Login(m->session, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
        return rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN ? 0 : -1;
    }
    return -1;
}

static CK_OBJECT_HANDLE raw_find(raw_module *m, const ks_keyref *ref)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_ID, (void *)ref->id, ref->id_len}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    m->f->C_FindObjectsInit(m->session, tmpl, 2);
    m->f->C_FindObjects(m->session, &h, 1, &n);
    m->f->C_FindObjectsFinal(m->session);
    return n == 1 ? h : CK_INVALID_HANDLE;
}

static int raw_sign_once(raw_module *m, CK_OBJECT_HANDLE key, int rsa, const char *in)
{
    static const unsigned char di[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                       0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    unsigned char buf[sizeof(di) + 32], sig[1024];
    unsigned int dl = 0;
    EVP_Digest(in, strlen(in), buf + sizeof(di), &dl, EVP_sha256(), NULL);
    memcpy(buf, di, sizeof(di));
    CK_MECHANISM mech = {rsa ? CKM_RSA_PKCS : CKM_ECDSA, NULL, 0};
    CK_ULONG len = sizeof(sig);
    unsigned char *data = rsa ? buf : buf + sizeof(di);
    CK_ULONG data_len = rsa ? sizeof(buf) : 32;
    return m->f->C_SignInit(m->session, &mech, key) == CKR_OK &&
                   m->f->C_Sign(m->session, data, data_len, sig, &len) == CKR_OK
               ? 0
               : -1;
}

/* --------------------------------------------------------------- loops */

typedef int (*sign_fn)(void *ctx);

static double rate(sign_fn fn, void *ctx)
{
    long long start = ks_now_ms(), end = start + (long long)(seconds * 1000);
    long n = 0;
    while (ks_now_ms() < end) {
        for (int i = 0; i < 16; i++)
            if (fn(ctx) < 0)
                return -1;
        n += 16;
    }
    return n * 1000.0 / (double)(ks_now_ms() - start);
}

typedef struct bench_key {
    const char *alg;
    int rsa;
    ks_keyref ref;
    raw_module *raw;
    CK_OBJECT_HANDLE raw_handle;
    hsm_token *tok;
    ks_signer *signer;
} bench_key;

static int via_raw(void *ctx)
{
    bench_key *k = ctx;
    return raw_sign_once(k->raw, k->raw_handle, k->rsa, jws_input(k->alg));
}

static int via_hsm(void *ctx)
{
    bench_key *k = ctx;
    const char *in = jws_input(k->alg);
    unsigned char *sig = NULL;
    size_t len = 0;
    int rc = hsm_sign(k->tok, k->ref.id, k->ref.id_len, NID_sha256, (const unsigned char *)in,
                      strlen(in), &sig, &len, NULL);
    free(sig);
    return rc;
}

static int via_signer(void *ctx)
{
    bench_key *k = ctx;
    const char *in = jws_input(k->alg);
    unsigned char *sig = NULL;
    size_t len = 0;
    ks_err err;
    int rc = ks_signer_sign_jws(k->signer, &k->ref, k->alg, (const unsigned char *)in, strlen(in),
                                &sig, &len, &err);
    if (rc < 0)
        fprintf(stderr, "bench_sign: %s\n", err.msg);
    free(sig);
    return rc;
}

/* A request that reaches the signer and touches no token: the cost of the
 * socket, JSON and one round of the serving loop. */
static int via_stats(void *ctx)
{
    ks_signer_stats st;
    ks_err err;
    return ks_signer_get_stats(ctx, &st, &err);
}

static int read_pin(char *pin, size_t cap)
{
    ks_pin_source src;
    ks_err err;
    size_t len = 0;
    if (ks_pin_source_init(&src, NULL, getenv("KS_PIN_FILE"), &err) < 0 ||
        ks_pin_source_get(&src, pin, cap, &len, &err) < 0)
        return -1;
    pin[len] = '\0';
    ks_pin_source_clear(&src);
    return 0;
}

int main(int argc, char **argv)
{
    const char *module = getenv("KS_PKCS11_MODULE");
    char pin[300];
    if (argc > 1)
        seconds = atof(argv[1]);
    if (module == NULL || read_pin(pin, sizeof(pin)) < 0) {
        fprintf(stderr, "bench_sign: set KS_PKCS11_MODULE and KS_PIN_FILE (see with-softhsm.sh)\n");
        return 2;
    }
    ks_signer_allow_unaudited(); /* no database here */
    ks_signer_tenant_config t = {.name = "a", .token_label = "ks-a",
                                 .pin_file = getenv("KS_PIN_FILE")};
    ks_signer_process proc;
    int child_status = 0;
    ks_err err = {0};
    int spawned = ks_signer_spawn(module, &t, 1, &proc, &child_status, &err);
    if (spawned == 1)
        return child_status;
    int fd = spawned == 0 ? ks_signer_process_fd(&proc, "a", &err) : -1;
    ks_signer *signer = fd >= 0 ? ks_signer_open(fd, "a", &err) : NULL;
    ks_pin_source src;
    ks_pin_source_init(&src, NULL, getenv("KS_PIN_FILE"), &err);
    hsm *h = signer ? hsm_open(module, &err) : NULL;
    hsm_token *tok = h ? hsm_token_login(h, "ks-a", NULL, ks_pin_source_get, &src, &err) : NULL;
    raw_module raw = {0};
    if (tok == NULL || raw_open(&raw, module, "ks-a", pin) < 0) {
        fprintf(stderr, "bench_sign: setup failed: %s\n", err.msg);
        return 2;
    }
    const hsm_key_spec specs[] = {{.kind = HSM_KEY_EC, .ec_nid = NID_X9_62_prime256v1},
                                  {.kind = HSM_KEY_RSA, .rsa_bits = 2048}};
    const char *names[] = {"P-256", "RSA-2048"};
    printf("signatures per second over %.1f s each (one key in SoftHSM, %ld cores)\n", seconds,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("%-9s %10s %10s %10s %8s %8s\n", "key", "raw", "hsm", "signer", "hsm/raw",
           "signer/raw");
    for (int i = 0; i < 2; i++) {
        bench_key k = {.alg = i ? "RS256" : "ES256", .rsa = i, .raw = &raw, .tok = tok,
                       .signer = signer};
        if (ks_signer_new_keyref(signer, KS_PURPOSE_ACCOUNT, &k.ref, &err) < 0 ||
            ks_signer_generate(signer, &k.ref, &specs[i], "bench", &err) < 0 ||
            (k.raw_handle = raw_find(&raw, &k.ref)) == CK_INVALID_HANDLE) {
            fprintf(stderr, "bench_sign: %s\n", err.msg);
            return 2;
        }
        double r_raw = rate(via_raw, &k), r_hsm = rate(via_hsm, &k), r_sig = rate(via_signer, &k);
        if (r_raw < 0 || r_hsm < 0 || r_sig < 0) {
            fprintf(stderr, "bench_sign: %s: signing failed (raw %s, hsm %s, signer %s)\n",
                    names[i], r_raw < 0 ? "failed" : "ok", r_hsm < 0 ? "failed" : "ok",
                    r_sig < 0 ? "failed" : "ok");
            return 2;
        }
        printf("%-9s %10.0f %10.0f %10.0f %7.0f%% %8.0f%%\n", names[i], r_raw, r_hsm, r_sig,
               100 * r_hsm / r_raw, 100 * r_sig / r_raw);
        ks_signer_destroy(signer, &k.ref, &err);
    }
    double trips = rate(via_stats, signer);
    if (trips > 0)
        printf("signer round trip without signing (\"stats\"): %.1f us (%.0f/s)\n",
               1e6 / trips, trips);
    /* hsm_close() finalizes the shared module instance. */
    raw.f->C_CloseSession(raw.session);
    ks_signer_close(signer);
    ks_signer_process_end(&proc);
    hsm_close(h);
    ks_pin_source_clear(&src);
    return 0;
}
