/*
 * signer_policy: what each key may sign (docs/keyservice.md, "Policy in the
 * signer").  Pure functions over the request and the key's public half, so
 * that they can be tested without a token.
 */
#ifndef KEYSVC_SIGNER_POLICY_H
#define KEYSVC_SIGNER_POLICY_H

#include "ks_err.h"

#include <openssl/evp.h>
#include <stddef.h>

/* An account key signs only a JWS signing input ("b64url.b64url") whose
 * protected header is a JSON object naming `alg` and a "url"; and `alg` must
 * be the one that belongs to the key. */
int ks_policy_account_jws(EVP_PKEY *pub, const char *alg, const unsigned char *input, size_t len,
                          ks_err *err);

/* A certificate key signs a JWS only to revoke its own certificate: the
 * payload's "certificate" (base64url DER) must carry this key. */
int ks_policy_revocation_jws(EVP_PKEY *pub, const char *alg, const unsigned char *input,
                             size_t len, ks_err *err);

/* A certificate key signs a CSR's CertificationRequestInfo only when its
 * public key is this key and md_nid is this key's digest. */
int ks_policy_csr(EVP_PKEY *pub, int md_nid, const unsigned char *tbs, size_t len, ks_err *err);

/* The JWS alg that belongs to a key (ES256/384/512, RS256, EdDSA), or NULL. */
const char *ks_policy_alg_for_key(EVP_PKEY *pub);

#endif
