/*
 * tlsa: DANE TLSA records (RFC 6698) of certificates, kept in their zones by
 * TSIG-signed RFC 2136 updates, as acmebot keeps them.
 *
 * Each entry of a certificate's tlsa_records names an owner
 * _<port>._<protocol>.<host> in a zone.  Its records follow the usage and
 * selector; each subject gets a SHA-256 (matching type 1) and a SHA-512
 * (matching type 2) record:
 *   pkix-ee, dane-ee, selector spki   the primary and backup keys of the
 *                                     certificate's key types (so a rollover
 *                                     finds its new key published already),
 *                                     and the key of each current certificate
 *                                     (still served until its replacement is
 *                                     installed)
 *   pkix-ee, dane-ee, selector cert   the certificate of each key type
 *   pkix-ta, dane-ta, selector cert   the chain certificates and
 *                                     root_cert.<type>.pem beside the config
 *   pkix-ta, dane-ta, selector spki   the public keys of those certificates
 * An owner named by several certificates (of any private key of the
 * tenant) holds the records of all of them, with the smallest TTL, so that
 * keeping one certificate's records never removes another's.  An owner
 * whose records cannot all be computed (a certificate not issued yet, a
 * key the token cannot give) is left alone.
 *
 * Only zones with a zone_update_keys entry are updated; for others acmebot's
 * warning is given.  An RRset the update server already holds with exactly
 * those records and TTL is left alone; the others of a zone are replaced by
 * one update.
 */
#ifndef KEYSVC_TLSA_H
#define KEYSVC_TLSA_H

#include "config.h"
#include "ks_err.h"
#include "run.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

/* What the records of one certificate are made from (borrowed pointers). */
typedef struct ks_tlsa_material {
    X509 *const *leaves; /* the certificate of each key type */
    size_t n_leaves;
    X509 *const *anchors; /* chain certificates and roots */
    size_t n_anchors;
    EVP_PKEY *const *keys; /* primary and backup key of each key type */
    size_t n_keys;
} ks_tlsa_material;

/* The records ("usage selector matching hex", lower case) of `rec` made from
 * `m`, without duplicates, in a fixed order: *rdata a newly allocated
 * NULL-terminated array (ks_dns_strings_free), or NULL when there are none
 * (*n 0). */
int ks_tlsa_rdata_new(const ks_tlsa_record *rec, const ks_tlsa_material *m, char ***rdata,
                      size_t *n, ks_err *err);

/* run --tlsa: brings every RRset named by the certificates of the private
 * keys with selected[key index] set up to date.  Each failure is reported;
 * returns their number. */
int ks_tlsa_update(ks_run *run, const unsigned char *selected);

/* run --revoke: the RRsets named by the certificates of private key
 * `key_index` lose that key's records (acmebot removes them; an owner that
 * other certificates name keeps theirs).  Returns the number of failures,
 * each reported. */
int ks_tlsa_remove_key(ks_run *run, size_t key_index);

#endif
