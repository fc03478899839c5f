/*
 * chain: what the CA sent back, parsed and checked before anything is kept.
 */
#ifndef KEYSVC_CHAIN_H
#define KEYSVC_CHAIN_H

#include "ks_err.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <time.h>

typedef struct ks_chain {
    char *leaf_pem;  /* the end-entity certificate, re-encoded */
    char *chain_pem; /* the intermediates in order, re-encoded ("" when none) */
    char *serial;    /* upper-case hex */
    time_t not_before;
    time_t not_after;
    char *top_issuer_cn; /* issuer CN of the last certificate ("" if none) */
} ks_chain;

/* Parses a PEM chain (leaf first).  Anything that is not a certificate, or
 * an empty chain, is an error. */
int ks_chain_parse(const char *pem, ks_chain *out, ks_err *err);

/* Checks the leaf carries `pub` and exactly the DNS names given. */
int ks_chain_check_leaf(const char *leaf_pem, EVP_PKEY *pub, char *const *names, size_t n_names,
                        ks_err *err);

void ks_chain_clear(ks_chain *c);

/* The chain, among `pems`, to keep: the first whose topmost certificate was
 * issued by (or is) `preferred` (a common name; NULL: the first chain).  A
 * preference no chain matches falls back to the first (certbot and lego do
 * the same).  Returns an index into pems, or -1 when none parses. */
int ks_chain_pick(char *const *pems, size_t n, const char *preferred, ks_err *err);

/* The DER of the first certificate in `pem`; *der newly allocated (free
 * with OPENSSL_free). */
int ks_chain_leaf_der(const char *pem, unsigned char **der, size_t *len, ks_err *err);

#endif
