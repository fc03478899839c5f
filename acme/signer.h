/*
 * acme_signer: how acme/ signs without knowing where the key lives.
 *
 * keysvc hands the ACME client a signer backed by a PKCS#11 token (through
 * the key service); tests hand it one backed by a software key.  The client
 * never sees a private key, a PIN or a PKCS#11 handle.
 */
#ifndef ACME_SIGNER_H
#define ACME_SIGNER_H

#include "ks_err.h"

#include <stddef.h>

typedef struct acme_signer {
    /* JWS "alg": "ES256", "ES384", "ES512", "RS256" or "EdDSA". */
    const char *alg;
    /* The public key as a JWK in RFC 7638 canonical form (members in
     * lexicographic order, no whitespace), as acme_jwk_new() makes it. */
    const char *jwk_json;
    /* Signs the JWS signing input (ASCII "protected.payload").  Returns 0 and a
     * newly allocated signature in *sig (caller frees) in JWS form: raw r||s of
     * fixed width for ES*, the PKCS#1 v1.5 signature for RS256. */
    int (*sign)(void *ctx, const unsigned char *input, size_t input_len, unsigned char **sig,
                size_t *sig_len, ks_err *err);
    void *ctx;
} acme_signer;

#endif
