/*
 * params: acmebot's parameter file ({name}_param.pem, also appended to its
 * certificate files): Diffie-Hellman parameters of dhparam_size bits, then
 * EC parameters for ecparam_curve.
 *
 * keysvc does not generate random DH primes as acmebot does ("openssl
 * dhparam N"): it writes the RFC 7919 ffdhe group of that size.  Those
 * groups are safe primes chosen in public and vetted, need no minutes of
 * generation, and are what RFC 7919 recommends servers use; a private prime
 * adds nothing (the attack it was meant to stop, precomputation against a
 * few widely shared 1024-bit primes, needs 2048 bits or more to be out of
 * reach anyway, and every ffdhe group has at least 2048).
 */
#ifndef KEYSVC_PARAMS_H
#define KEYSVC_PARAMS_H

#include "ks_err.h"

/* The PEM text: a "-----BEGIN DH PARAMETERS-----" block (PKCS#3, the
 * ffdhe group of `dh_bits`: 2048, 3072, 4096, 6144 or 8192; 0: none), then,
 * after an empty line as acmebot writes it, an "-----BEGIN EC
 * PARAMETERS-----" block naming the curve `curve_nid` by its OID (0:
 * none).  *pem is newly allocated (caller frees).  -1 with `err` set for an
 * unsupported size or curve.  Both 0: *pem = NULL, returns 0.
 *
 * Readers: "openssl dhparam -in F -check" and nginx's ssl_dhparam read the
 * DH block.  The OpenSSL 3 command "openssl ecparam -in F" reads only the
 * first block of a file, so for the EC block of a file with both it needs
 * that block alone (acmebot itself checks it so); PEM_read_bio_Parameters
 * and PEM_read_bio_ECPKParameters skip to it. */
int ks_params_pem_new(unsigned dh_bits, int curve_nid, char **pem, ks_err *err);

#endif
