/*
 * signer_proto: the contract between the worker and the signer process
 * (docs/keyservice.md).  One JSON object per SOCK_SEQPACKET message, at most
 * KS_SIGNER_MAX_MSG bytes; every request carries "op" and "tenant"; every
 * reply carries "ok" and, when false, "error".
 */
#ifndef KEYSVC_SIGNER_PROTO_H
#define KEYSVC_SIGNER_PROTO_H

#include "ks_err.h"

#include <json-c/json.h>
#include <stddef.h>

#define KS_SIGNER_MAX_MSG (64 * 1024)

/* The first byte of every CKA_ID keysvc makes says what the key is for;
 * the signer enforces it (an account key signs only JWS, a certificate key
 * only CSRs and the revocation of its own certificate). */
#define KS_KEY_PURPOSE_ACCOUNT 0x41     /* 'A' */
#define KS_KEY_PURPOSE_CERTIFICATE 0x43 /* 'C' */

/* Operations, as named in "op". */
#define KS_OP_OPEN "open"
#define KS_OP_GENERATE "generate"
#define KS_OP_PUBLIC_KEY "public_key"
#define KS_OP_SIGN_JWS "sign_jws"
#define KS_OP_SIGN_CSR "sign_csr"
#define KS_OP_EXISTS "exists"
#define KS_OP_LIST "list"
#define KS_OP_DESTROY "destroy"
#define KS_OP_STATS "stats"

/* At most this many IDs in one "list" reply (a request's "limit" may ask
 * for fewer); "more" says there is a next page. */
#define KS_LIST_PAGE 1000

/* How long the worker waits for one answer, in seconds. */
#define KS_SIGNER_TIMEOUT 300

/* Sends one message (the object's compact JSON text).  `may_wait` 0 (the
 * signer): a peer whose socket buffer is full is not waited for, it is an
 * error (the signer then drops that peer rather than stall every tenant).
 * -1 with err set; KS_PROTO_TOO_BIG (err set) when the message is over
 * the limit and nothing was sent; KS_PROTO_CLOSED (err set) when the peer
 * had closed the connection (nothing was sent). */
#define KS_PROTO_TOO_BIG (-2)
#define KS_PROTO_CLOSED (-3)
int ks_proto_send(int fd, json_object *msg, int may_wait, ks_err *err);

/* Receives one message into a newly parsed object (caller puts).  Returns
 * 1 with *msg set, 0 on end of stream (the peer closed), -1 with err set
 * (no answer within the receive timeout, oversized,
 * truncated, not one strict JSON object: see json_strict.h).
 * `wait`: the client waits for its answer (spinning briefly, then
 * sleeping, up to the socket's receive timeout); the server reads only
 * what poll() said is there (2: nothing after all).  Uses one static
 * buffer: one thread per process. */
int ks_proto_recv(int fd, json_object **msg, int wait, ks_err *err);

/* Typed member access for requests and replies: a missing or mistyped
 * member is an error naming it. */
int ks_proto_string(json_object *obj, const char *key, const char **out, ks_err *err);
int ks_proto_hex(json_object *obj, const char *key, unsigned char *out, size_t cap, size_t *len,
                 ks_err *err);
/* The same for a value that is not a member (an array element); `what`
 * names it in errors. */
int ks_proto_hex_value(json_object *v, const char *what, unsigned char *out, size_t cap,
                       size_t *len, ks_err *err);
/* base64url member, decoded into a newly allocated buffer (caller frees). */
int ks_proto_b64(json_object *obj, const char *key, unsigned char **out, size_t *len,
                 ks_err *err);

/* Adds a member holding the hex / base64url text of bytes. */
void ks_proto_add_hex(json_object *obj, const char *key, const unsigned char *b, size_t len);
void ks_proto_add_b64(json_object *obj, const char *key, const unsigned char *b, size_t len);

#endif
