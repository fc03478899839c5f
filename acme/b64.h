/*
 * base64url without padding (RFC 4648 section 5, as JOSE and ACME use it).
 */
#ifndef ACME_B64_H
#define ACME_B64_H

#include <stddef.h>

/* Returns a newly allocated NUL-terminated encoding (caller frees), or NULL on OOM. */
char *b64url_encode_new(const unsigned char *in, size_t len);

/* Decodes `len` characters of base64url (padding '=' tolerated only at the
 * end).  Returns a newly allocated buffer (caller frees) and its length in
 * *out_len, or NULL when the input is not valid base64url. */
unsigned char *b64url_decode_new(const char *in, size_t len, size_t *out_len);

/* 1 when every character of the NUL-terminated `s` is in the base64url
 * alphabet and s is non-empty; used to validate tokens that become file names. */
int b64url_is_token(const char *s);

#endif
