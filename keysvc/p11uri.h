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

/* A parsed URI: path attributes percent-decoded into newly allocated strings
 * (NULL when absent; free with p11uri_parsed_clear). */
typedef struct p11uri_parsed {
    char *token;
    char *manufacturer;
    char *model;
    char *serial;
    char *object;
    char *type;
    unsigned char id[64];
    size_t id_len;
    int has_id;
} p11uri_parsed;

/* Parses a "pkcs11:" URI (RFC 7512).  Unknown path attributes are skipped;
 * the query (after '?') is ignored.  -1 for a malformed URI: a bad escape,
 * an attribute given twice, an ID longer than 64 bytes. */
int p11uri_parse(const char *uri, p11uri_parsed *out);
void p11uri_parsed_clear(p11uri_parsed *p);

/* Formats the URI (caller frees); NULL members are left out.  Characters
 * outside RFC 3986 unreserved and the few RFC 7512 allows in values are
 * percent-encoded. */
char *p11uri_format_new(const p11uri_parts *p);

#endif
