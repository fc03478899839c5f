/*
 * ks_signer: the narrow key service every other part of keysvc goes through.
 *
 * It owns the PKCS#11 module, the session and the login; its requests are
 * few (generate, public key, sign a JWS input, sign a CSR, check, destroy)
 * so that it can move into its own process behind a socket without the rest
 * of keysvc changing.  A key is named by a ks_keyref (token serial + CKA_ID);
 * a reference to a key on another token is refused.
 */
#ifndef KEYSVC_SIGNER_H
#define KEYSVC_SIGNER_H

#include "hsm.h"
#include "ks_err.h"

#include <openssl/evp.h>

#define KS_KEYREF_MAX_ID 64

typedef struct ks_keyref {
    char token_serial[17];
    unsigned char id[KS_KEYREF_MAX_ID]; /* keysvc makes HSM_KEY_ID_LEN bytes */
    size_t id_len;
} ks_keyref;

typedef struct ks_signer_config {
    const char *module;
    const char *token_label;
    const char *token_serial; /* optional */
    const char *pin_env;      /* one of pin_env / pin_file */
    const char *pin_file;
} ks_signer_config;

typedef struct ks_signer ks_signer;

/* Loads the module, reads the PIN, logs in and wipes the PIN. */
ks_signer *ks_signer_open(const ks_signer_config *cfg, ks_err *err);
void ks_signer_close(ks_signer *s);

const hsm_token_info *ks_signer_token(const ks_signer *s);

int ks_signer_generate(ks_signer *s, const hsm_key_spec *spec, const char *label,
                       ks_keyref *out, ks_err *err);
int ks_signer_public_key(ks_signer *s, const ks_keyref *ref, EVP_PKEY **out, ks_err *err);

/* Signs a JWS signing input; `alg` (ES256/ES384/ES512/RS256) picks the
 * digest.  Raw r||s for EC.  *sig newly allocated (caller frees). */
int ks_signer_sign_jws(ks_signer *s, const ks_keyref *ref, const char *alg,
                       const unsigned char *input, size_t len, unsigned char **sig,
                       size_t *sig_len, ks_err *err);

/* Signs a CSR's CertificationRequestInfo with the digest md_nid. */
int ks_signer_sign_csr(ks_signer *s, const ks_keyref *ref, int md_nid, const unsigned char *tbs,
                       size_t len, unsigned char **sig, size_t *sig_len, ks_err *err);

/* 1 present, 0 absent, -1 error. */
int ks_signer_key_exists(ks_signer *s, const ks_keyref *ref, ks_err *err);

/* Every private key on the signer's token, as references (one token search;
 * caller frees *refs). */
int ks_signer_list_keys(ks_signer *s, ks_keyref **refs, size_t *n, ks_err *err);
int ks_signer_destroy(ks_signer *s, const ks_keyref *ref, ks_err *err);
int ks_signer_inspect(ks_signer *s, const ks_keyref *ref, hsm_key_attrs *out, ks_err *err);

#endif
