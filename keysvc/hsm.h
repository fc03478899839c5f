/*
 * hsm: the only code in keysvc that talks PKCS#11.
 *
 * One module instance per process (dlopen + C_Initialize with OS locking, in
 * the process that uses it), one logged-in read/write session per token for
 * the life of the handle.  Every C_* call goes through one wrapper (P11() in
 * hsm.c) that logs the call and its result at debug level and maps CK_RV to
 * readable text.  Private keys are generated on the token as token objects,
 * private, sensitive and not extractable, and are found again by CKA_ID (the
 * caller also checks the token serial).  No PKCS#11 type leaks out of here.
 */
#ifndef KEYSVC_HSM_H
#define KEYSVC_HSM_H

#include "ks_err.h"

#include <openssl/evp.h>
#include <stddef.h>

#define HSM_KEY_ID_LEN 16
#define HSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

typedef struct hsm hsm;

typedef enum hsm_key_kind {
    HSM_KEY_RSA = 1,
    HSM_KEY_EC = 2,
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

/* Loads the module (a path, e.g. HSM_DEFAULT_MODULE) and initialises it.
 * NULL with err set on failure. */
hsm *hsm_open(const char *module_path, ks_err *err);

/* Selects the token by label (and serial, when non-NULL), opens a read/write
 * session and logs in as the user.  The PIN is not kept: the caller wipes it.
 * A locked PIN, or one on its final try, is refused without trying. */
int hsm_login(hsm *h, const char *token_label, const char *token_serial, const char *pin,
              size_t pin_len, ks_err *err);

const hsm_token_info *hsm_token(const hsm *h);

/* Generates a key pair with a fresh random CKA_ID written to `id`. */
int hsm_generate_key(hsm *h, const hsm_key_spec *spec, const char *label,
                     unsigned char id[HSM_KEY_ID_LEN], ks_err *err);

/* The public half as an OpenSSL public key (caller frees with EVP_PKEY_free). */
int hsm_public_key(hsm *h, const unsigned char *id, size_t id_len, EVP_PKEY **out, ks_err *err);

/* Signs `data` hashed with md_nid (SHA-256/384/512) by the private key `id`.
 * EC keys give raw r||s (fixed width), RSA keys PKCS#1 v1.5.  *sig is newly
 * allocated (caller frees). */
int hsm_sign(hsm *h, const unsigned char *id, size_t id_len, int md_nid,
             const unsigned char *data, size_t data_len, unsigned char **sig, size_t *sig_len,
             ks_err *err);

/* 1 when both halves of the key exist, 0 when neither does, -1 on error
 * (including a half-present key, which is reported). */
int hsm_key_exists(hsm *h, const unsigned char *id, size_t id_len, ks_err *err);

/* A CKA_ID as read from the token. */
typedef struct hsm_key_id {
    unsigned char id[64];
    size_t len;
} hsm_key_id;

/* The CKA_IDs of every private key on the token, from one search (SoftHSM
 * reads every object file for each search, so one search per key would make
 * a run over n keys cost n^2).  *ids is newly allocated (caller frees). */
int hsm_list_private_key_ids(hsm *h, hsm_key_id **ids, size_t *n, ks_err *err);

/* Destroys both halves of a key (whatever of them exists). */
int hsm_destroy_key(hsm *h, const unsigned char *id, size_t id_len, ks_err *err);

int hsm_inspect_key(hsm *h, const unsigned char *id, size_t id_len, hsm_key_attrs *out,
                    ks_err *err);

/* "CKR_ATTRIBUTE_SENSITIVE" and so on; "CKR_0x..." for unknown values. */
const char *hsm_rv_name(unsigned long rv);

/* Logs out, closes the session, finalizes and unloads the module. */
void hsm_close(hsm *h);

#endif
