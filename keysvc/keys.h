/*
 * keys: the keys keysvc knows, kept consistent between the database (which
 * key is what: roles and states) and the token (the key itself), through
 * crashes at any step (docs/keyservice.md, "Keys and roles").
 */
#ifndef KEYSVC_KEYS_H
#define KEYSVC_KEYS_H

#include "config.h"
#include "signer.h"
#include "store.h"

#include <openssl/evp.h>

/* Which key is meant: tenant, purpose, key name and type, and how to make
 * it.  `params` is its database name ("rsa2048", "secp256r1", "ed25519"). */
typedef struct ks_key_request {
    const char *tenant;
    ks_key_purpose purpose;
    const char *name;
    ks_key_type type;
    hsm_key_spec spec;
    char params[32];
} ks_key_request;

/* Fills a request; -1 for a size or curve keysvc does not make. */
int ks_key_request_init(ks_key_request *req, const char *tenant, ks_key_purpose purpose,
                        const char *name, ks_key_type type, unsigned rsa_bits, int curve_nid,
                        ks_err *err);

/* The reference the signer needs for a key row; -1 if the row's CKA_ID or
 * serial does not fit (never truncated). */
int ks_keyref_from_row(const store_key *row, ks_keyref *ref, ks_err *err);

/* Finishes what a crash interrupted, for one tenant: pending keys are rolled
 * back (destroyed on the token if they were made), keys marked for
 * destruction are destroyed.  Call before the tenant's keys are used. */
int ks_keys_recover(store *db, ks_signer *signer, const char *tenant, ks_err *err);

/* Makes sure the key has a live primary, and a live backup when
 * `with_backup` (a lone backup is promoted, as acmebot does; what is missing
 * is generated).  *primary is filled (caller clears); *generated counts the
 * keys made. */
int ks_keys_ensure(store *db, ks_signer *signer, const ks_key_request *req, int with_backup,
                   store_key *primary, int *generated, ks_err *err);

/* The rollover: the backup becomes the primary, the primary becomes the
 * previous key, a new backup is generated, and the previous key of the
 * last rollover is destroyed (refused while a current certificate still
 * uses it).  Either the old or the new arrangement survives a crash at any
 * step. */
int ks_keys_rollover(store *db, ks_signer *signer, const ks_key_request *req, ks_err *err);

/* A new key for a switch that involves someone else (an ACME keyChange):
 * generated and live, but in the role "incoming" until the caller either
 * gives it its role or discards it.  Recovery leaves a live incoming key
 * alone: the caller that made it must decide (see ks_account_ensure). */
int ks_keys_generate_incoming(store *db, ks_signer *signer, const ks_key_request *req,
                              store_key *row, ks_err *err);

/* Destroys a live incoming key that will not be used. */
int ks_keys_discard_incoming(store *db, ks_signer *signer, const store_key *row, ks_err *err);

/* Destroys the previous key once no current certificate uses it (when no
 * previous key is kept: call after the certificates were renewed with the
 * new primary).  *retired is 1 when a key was destroyed. */
int ks_keys_retire_previous(store *db, ks_signer *signer, const ks_key_request *req,
                            int *retired, ks_err *err);

/* base64(SHA-256(SubjectPublicKeyInfo DER)), the HPKP/TLSA pin; caller frees. */
char *ks_spki_pin_new(EVP_PKEY *pub, ks_err *err);

/* The key's RFC 7512 URI, naming token (label, serial, ...), object and id;
 * caller frees. */
char *ks_key_uri_new(const store_key *row, const hsm_token_info *token);

/* Audit hooks that record every key operation in the store's audit_events
 * (`db` is their context). */
ks_audit_hooks ks_store_audit_hooks(store *db);

#endif
