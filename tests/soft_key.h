/*
 * soft_key: software-key signing helpers shared by the tests, to produce and
 * check signatures the way the token does (ECDSA as fixed-width r||s).
 */
#ifndef TESTS_SOFT_KEY_H
#define TESTS_SOFT_KEY_H

#include <openssl/evp.h>
#include <stddef.h>

/* EVP_DigestSign; the signature is malloc'd (caller frees), NULL on failure.
 * ECDSA signatures come out DER-encoded, as OpenSSL makes them. */
unsigned char *soft_digest_sign(EVP_PKEY *key, const EVP_MD *md, const unsigned char *in,
                                size_t in_len, size_t *sig_len);

/* 1 when `sig` (DER for ECDSA) verifies over `in`. */
int soft_digest_verify(EVP_PKEY *key, const EVP_MD *md, const unsigned char *in, size_t in_len,
                       const unsigned char *sig, size_t sig_len);

/* DER ECDSA-Sig-Value -> r||s of `width` bytes each (malloc'd), or NULL. */
unsigned char *soft_ecdsa_der_to_raw(const unsigned char *der, size_t der_len, size_t width);

/* r||s -> DER ECDSA-Sig-Value (free with OPENSSL_free), or NULL. */
/* base64url without padding, made from OpenSSL's standard base64 (a
 * reference independent of the code under test); caller frees; NULL when
 * out of memory. */
char *soft_b64url_new(const unsigned char *in, size_t len);

unsigned char *soft_ecdsa_raw_to_der(const unsigned char *raw, size_t raw_len, size_t *der_len);

#endif
