/*
 * RFC 7512 pkcs11: URIs, written where a key file would be so that servers
 * (nginx and Apache through the libp11 engine) can find the key in the token.
 */
#ifndef KEYSVC_P11URI_H
#define KEYSVC_P11URI_H

#include <stddef.h>

typedef struct p11uri_parts {
    const char *token;        /* CKA label of the token */
    const char *manufacturer;
    const char *model;
    const char *serial;
    const char *object;       /* CKA_LABEL of the key */
    const unsigned char *id;  /* CKA_ID, always percent-encoded */
    size_t id_len;
    const char *type;         /* "private", "public", "cert" or NULL */
} p11uri_parts;

/* Formats the URI (caller frees); NULL members are left out.  Characters
 * outside RFC 3986 unreserved and the few RFC 7512 allows in values are
 * percent-encoded. */
char *p11uri_format_new(const p11uri_parts *p);

#endif
