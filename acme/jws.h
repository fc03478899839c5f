/*
 * JWK and JWS (RFC 7515, 7517, 7638) as ACME uses them: flattened JSON
 * serialization, "jwk" for newAccount and "kid" afterwards.
 */
#ifndef ACME_JWS_H
#define ACME_JWS_H

#include "signer.h"

#include <openssl/evp.h>

/* The JWS algorithm for a public key: ES256/ES384/ES512 for P-256/384/521,
 * RS256 for RSA, EdDSA for Ed25519; NULL for anything else. */
const char *acme_jws_alg_for_key(EVP_PKEY *pub);

/* Canonical JWK JSON of a public key (caller frees), or NULL with err set. */
char *acme_jwk_new(EVP_PKEY *pub, ks_err *err);

/* base64url(SHA-256(jwk_json)), the RFC 7638 thumbprint (caller frees). */
char *acme_jwk_thumbprint_new(const char *jwk_json, ks_err *err);

/* Builds a signed request body (caller frees).  `kid` NULL puts the signer's
 * JWK in the header instead.  `payload` NULL makes a POST-as-GET (empty
 * payload); otherwise it is the JSON text to send. */
char *acme_jws_new(const acme_signer *signer, const char *kid, const char *nonce, const char *url,
                   const char *payload, ks_err *err);

/* Half the fixed signature width of a JWS alg (ES256/384/512: 32/48/66,
 * EdDSA: 32), 0 when the width is not fixed (RS256). */
size_t acme_jws_ec_coord_len(const char *alg);

#endif
