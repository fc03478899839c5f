/*
 * keys: the keys keysvc knows, kept consistent between the database (which
 * key is what) and the token (the key itself).
 */
#ifndef KEYSVC_KEYS_H
#define KEYSVC_KEYS_H

#include "config.h"
#include "signer.h"
#include "store.h"

#include <openssl/evp.h>

/* The token key spec and its database name ("rsa2048", "secp256r1"). */
int ks_key_spec(ks_key_type type, unsigned rsa_bits, int curve_nid, hsm_key_spec *spec,
                char *params, size_t params_cap);

/* The reference the signer needs for a key row; -1 if the row's CKA_ID or
 * serial does not fit (never truncated). */
int ks_keyref_from_row(const store_key *row, ks_keyref *ref, ks_err *err);

/* Finds the live primary key for (purpose, name, type), checks that it is on
 * the signer's token, or generates one on the token and records it.  *out is
 * filled (caller clears with store_key_clear); *generated tells which. */
int ks_keys_ensure_primary(store *db, ks_signer *signer, const char *tenant, const char *purpose,
                           const char *name, ks_key_type type, const hsm_key_spec *spec,
                           const char *params, store_key *out, int *generated, ks_err *err);

/* base64(SHA-256(SubjectPublicKeyInfo DER)), the HPKP/TLSA pin; caller frees. */
char *ks_spki_pin_new(EVP_PKEY *pub, ks_err *err);

/* The key's RFC 7512 URI, naming token (label, serial, ...), object and id;
 * caller frees. */
char *ks_key_uri_new(const store_key *row, const hsm_token_info *token);

#endif
