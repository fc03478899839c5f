/*
 * dns_tsig: TSIG key files for RFC 2136 dynamic DNS updates.  Only parsing:
 * libldns signs the updates with what this returns.
 *
 * Two formats:
 *  - BIND's key statement, as `tsig-keygen -a hmac-sha256 NAME` writes it:
 *      key "NAME" { algorithm hmac-sha256; secret "<base64>"; };
 *    with any layout, '#', '//' and C comments, quoted or bare names.  Exactly
 *    one key statement per file.
 *  - the pair dnssec-keygen wrote for HMAC keys (BIND before 9.13),
 *    K<name>.+<alg>+<id>.key and .private.  A path whose file name has that
 *    form (with .key, .private or no extension) selects this format; the
 *    other file is found by swapping the extension.
 *
 * The files hold the secret: they are read into a buffer that is wiped
 * before it is freed, and no error message quotes the secret.
 */
#ifndef KEYSVC_DNS_TSIG_H
#define KEYSVC_DNS_TSIG_H

#include "ks_err.h"

/* Key files larger than this are refused (a TSIG key file is < 200 bytes). */
#define KS_TSIG_MAX_FILE (64 * 1024)

typedef struct ks_tsig_key {
    char *name;      /* key name as a DNS name with a trailing dot, lower case: "acme-key." */
    char *algorithm; /* the name libldns expects: "hmac-md5.sig-alg.reg.int.", "hmac-sha1.",
                      * "hmac-sha224.", "hmac-sha256.", "hmac-sha384.", "hmac-sha512." */
    char *secret;    /* base64 as in the file (validated: decodes, non-empty) */
} ks_tsig_key;

/* Loads a key from `path` into *out (overwritten; the strings are the
 * caller's, released with ks_tsig_key_clear).  Returns 0, or -1 with *out
 * zeroed and err naming the file, the line and what was expected. */
int ks_tsig_key_load(const char *path, ks_tsig_key *out, ks_err *err);

/* Wipes the secret (OPENSSL_cleanse) and frees everything; zeroes *k.  Safe
 * on a zeroed struct and on NULL. */
void ks_tsig_key_clear(ks_tsig_key *k);

#endif
