/*
 * hsm: the only code in keysvc that talks PKCS#11 (see docs/keyservice.md).
 *
 * One module instance per process (dlopen + C_Initialize with OS locking, in
 * the process that uses it), and one logged-in read/write session per token
 * (tenant) for the life of the handle.  Every C_* call goes through one
 * wrapper (P11() in hsm.c) that logs the call and its result at debug level,
 * maps CK_RV to text, and holds the test-only fault injection.  A lost
 * session is recovered once by opening a new one and logging in again.
 * Private keys are generated as token objects, private, sensitive and not
 * extractable, and are found by CKA_ID.  No PKCS#11 type leaks out of here.
 *
 * Not thread-safe: one thread uses a handle (the signer serves requests one
 * at a time).
 *
 * Test hooks (compiled in with KEYSVC_TEST_HOOKS, active only when their
 * variable is set): KEYSVC_TEST_P11_FAULTS, KEYSVC_TEST_TOKEN_FLAGS.
 */
#ifndef KEYSVC_HSM_H
#define KEYSVC_HSM_H

#include "ks_err.h"

#include <openssl/evp.h>
#include <stddef.h>

#define HSM_KEY_ID_LEN 16
#define HSM_MAX_ID_LEN 64
#define HSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

typedef struct hsm hsm;             /* the module */
typedef struct hsm_token hsm_token; /* one logged-in token, owned by its hsm */

typedef enum hsm_key_kind {
    HSM_KEY_RSA = 1,
    HSM_KEY_EC = 2,
    HSM_KEY_ED25519 = 3,
} hsm_key_kind;

typedef struct hsm_key_spec {
    hsm_key_kind kind;
    unsigned rsa_bits; /* RSA: 2048, 3072, 4096 */
    int ec_nid;        /* EC: NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1 */
} hsm_key_spec;

/* Token identity, blank padding removed. */
typedef struct hsm_token_info {
    char label[33];
    char manufacturer[33];
    char model[17];
    char serial[17];
} hsm_token_info;

/* What the token says about a private key; used to prove it is sealed. */
typedef struct hsm_key_attrs {
    int is_token;
    int is_private;
    int sensitive;
    int extractable;
    int always_sensitive;
    int never_extractable;
    unsigned long secret_read_rv; /* CK_RV of reading CKA_VALUE / CKA_PRIVATE_EXPONENT */
} hsm_key_attrs;

/* A CKA_ID as read from the token. */
typedef struct hsm_key_id {
    unsigned char id[HSM_MAX_ID_LEN];
    size_t len;
} hsm_key_id;

/* Supplies the user PIN, for the first login and for a login after a lost
 * session: writes it into buf (cap bytes) and its length to *len.  The
 * caller wipes buf. */
typedef int (*hsm_pin_fn)(void *ctx, char *buf, size_t cap, size_t *len, ks_err *err);

/* The size of the buffer a hsm_pin_fn is given (a PIN is at most 256 bytes). */
#define KS_PIN_BUF 260

/* Loads the module (a path, e.g. HSM_DEFAULT_MODULE) and initialises it.
 * With KEYSVC_TEST_P11_FAULTS set in the environment (tests only), the
 * listed calls fail: "C_Sign@3=CKR_DEVICE_ERROR,C_Login@1=0x30" makes the
 * third C_Sign return CKR_DEVICE_ERROR without calling the module.  NULL
 * with err set on failure. */
hsm *hsm_open(const char *module_path, ks_err *err);

/* Closes every token session, finalizes and unloads the module. */
void hsm_close(hsm *h);

/* Selects the token by label (and serial, when non-NULL), opens a read/write
 * session and logs in as the user with the PIN from pin_fn.  A locked PIN,
 * or one on its final try, is refused without trying; after a wrong PIN no
 * login is tried again.  A token this process is already logged in to is
 * refused (it would belong to another tenant).  The handle belongs to
 * `h` (freed by hsm_close); `pin_ctx` must live as long as it does. */
hsm_token *hsm_token_login(hsm *h, const char *label, const char *serial, hsm_pin_fn pin_fn,
                           void *pin_ctx, ks_err *err);

const hsm_token_info *hsm_token_get_info(const hsm_token *t);

/* Finds the one token matching label/serial without logging in (to learn
 * its serial before deciding to). */
int hsm_find_token(hsm *h, const char *label, const char *serial, hsm_token_info *out,
                   ks_err *err);

/* Generates a key pair whose halves both carry CKA_ID `id` (chosen by the
 * caller, so it can be recorded before the key exists).  Refused when a key
 * with that ID is already on the token. */
int hsm_generate_key(hsm_token *t, const hsm_key_spec *spec, const char *label,
                     const unsigned char *id, size_t id_len, ks_err *err);

/* The public half as an OpenSSL public key (caller frees with EVP_PKEY_free). */
int hsm_public_key(hsm_token *t, const unsigned char *id, size_t id_len, EVP_PKEY **out,
                   ks_err *err);

/* Signs `data` with the private key `id`: EC keys hash with md_nid
 * (SHA-256/384/512) and give raw r||s (fixed width), RSA keys PKCS#1 v1.5
 * over the digest, Ed25519 keys sign `data` itself (md_nid is ignored).
 * *sig is newly allocated (caller frees). */
int hsm_sign(hsm_token *t, const unsigned char *id, size_t id_len, int md_nid,
             const unsigned char *data, size_t data_len, unsigned char **sig, size_t *sig_len,
             ks_err *err);

/* 1 when both halves of the key exist, 0 when neither does, -1 on error
 * (including a half-present key, which is reported). */
int hsm_key_exists(hsm_token *t, const unsigned char *id, size_t id_len, ks_err *err);

/* The CKA_IDs of every private key on the token, from one search (SoftHSM
 * reads every object file for each search).  IDs longer than HSM_MAX_ID_LEN
 * are skipped.  *ids is newly allocated (caller frees). */
int hsm_list_private_key_ids(hsm_token *t, hsm_key_id **ids, size_t *n, ks_err *err);

/* Destroys both halves of a key (whatever of them exists). */
int hsm_destroy_key(hsm_token *t, const unsigned char *id, size_t id_len, ks_err *err);

int hsm_inspect_key(hsm_token *t, const unsigned char *id, size_t id_len, hsm_key_attrs *out,
                    ks_err *err);

/* Test hook: closes every session on the token's slot, as another
 * application or a token reset would (the next call finds its session gone
 * and recovers). */
void hsm_token_close_all_sessions(hsm_token *t);

/* How many times a lost session was recovered, and how many C_Login calls
 * were made (for tests and logs). */
unsigned hsm_token_recoveries(const hsm_token *t);
unsigned hsm_token_logins(const hsm_token *t);

/* Whether the module's last failed login was a wrong or locked PIN (not a
 * missing token or a device error): another try would spend a PIN try. */
int hsm_last_login_refused(const hsm *h);

/* After a wrong PIN at a re-login the token is not logged into again
 * (hsm_token_login_refused); hsm_token_allow_login permits one more try,
 * for a PIN that has changed since. */
int hsm_token_login_refused(const hsm_token *t);
void hsm_token_allow_login(hsm_token *t);

/* "CKR_ATTRIBUTE_SENSITIVE" and so on; "CKR_0x..." for unknown values. */
const char *hsm_rv_name(unsigned long rv);

/* The value of a "CKR_..." name or a number ("0x30"); 0 (CKR_OK) if unknown. */
unsigned long hsm_rv_from_name(const char *name);

#endif
