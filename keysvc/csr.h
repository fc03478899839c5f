/*
 * csr: a PKCS#10 certificate signing request built with OpenSSL and signed
 * by a key it never sees (the token, through a callback).
 */
#ifndef KEYSVC_CSR_H
#define KEYSVC_CSR_H

#include "ks_err.h"

#include <openssl/evp.h>
#include <stddef.h>

/* Signs `tbs` hashed with md_nid.  EC keys return raw r||s (as PKCS#11
 * CKM_ECDSA gives it), RSA keys the PKCS#1 v1.5 signature.  *sig is newly
 * allocated (caller frees). */
typedef int (*csr_sign_fn)(void *ctx, int md_nid, const unsigned char *tbs, size_t tbs_len,
                           unsigned char **sig, size_t *sig_len, ks_err *err);

/* Builds a CSR for `pub` with subject CN = common_name (left out when it is
 * longer than 64 characters) and a subjectAltName
 * of the DNS names, signs it with SHA-256 (P-384: SHA-384, P-521: SHA-512)
 * and returns its DER (caller frees with free()).  The result is verified
 * against `pub` before it is returned. */
int csr_build_der(EVP_PKEY *pub, const char *common_name, const char *const *names,
                  size_t n_names, csr_sign_fn sign, void *sign_ctx, unsigned char **der,
                  size_t *der_len, ks_err *err);

/* The same, with the RFC 7633 TLS feature extension (status_request,
 * "OCSP must-staple") when must_staple is set. */
int csr_build_der_staple(EVP_PKEY *pub, const char *common_name, const char *const *names,
                         size_t n_names, int must_staple, csr_sign_fn sign, void *sign_ctx,
                         unsigned char **der, size_t *der_len, ks_err *err);

/* The digest a key of this kind signs with: SHA-256, or SHA-384/512 for
 * P-384/P-521 (matching ES384/ES512). */
int csr_digest_for_key(EVP_PKEY *pub);

#endif
