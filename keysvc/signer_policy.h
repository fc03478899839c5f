/*
 * signer_policy: what each key may sign (docs/keyservice.md, "Policy in the
 * signer").  Pure functions over the request and the key's public half, so
 * that they can be tested without a token.
 *
 * The signer signs the exact bytes it is given, so every check reads those
 * bytes strictly: one parse, no leniency that a second reader (the CA)
 * might resolve differently.  A JWS part is base64url without padding and
 * decodes to strict JSON (RFC 8259, no NUL in strings); a protected header
 * must be exactly what json-c writes for the object it parses to (so no
 * duplicate members, no odd escapes); a CertificationRequestInfo must be
 * DER as OpenSSL re-encodes its structure (the subject Name and attribute
 * values keep their own bytes).
 */
#ifndef KEYSVC_SIGNER_POLICY_H
#define KEYSVC_SIGNER_POLICY_H

#include "ks_err.h"

#include <openssl/evp.h>
#include <stddef.h>

/* An account key signs only a JWS signing input ("b64url.b64url") whose
 * protected header holds only alg (the key's own), url, nonce and exactly
 * one of jwk (this key's) or kid; the payload is empty (POST-as-GET) or a
 * JSON object. */
int ks_policy_account_jws(EVP_PKEY *pub, const char *alg, const unsigned char *input, size_t len,
                          ks_err *err);

/* A certificate key signs a JWS only to revoke its own certificate
 * (RFC 8555 7.6): the header holds alg, url, nonce and this key's jwk (no
 * kid); the payload holds only "certificate" (base64url DER carrying this
 * key) and optionally an integer "reason". */
int ks_policy_revocation_jws(EVP_PKEY *pub, const char *alg, const unsigned char *input,
                             size_t len, ks_err *err);

/* A certificate key signs a CSR's CertificationRequestInfo only when it is
 * version 1, its public key is this key and md_nid is this key's digest. */
int ks_policy_csr(EVP_PKEY *pub, int md_nid, const unsigned char *tbs, size_t len, ks_err *err);

#endif
