/*
 * Internals shared by signer_server.c (tenants, operations) and
 * signer_serve.c (connections, serving loops, the listening socket).
 */
#ifndef KEYSVC_SIGNER_INTERNAL_H
#define KEYSVC_SIGNER_INTERNAL_H

#include "hsm.h"
#include "signer_server.h"

#include <json-c/json.h>
#include <signal.h>

/* One worker's connection: bound to one tenant by its first "open" (or at
 * creation, for the run's own signer), with the listing it is paging. */
typedef struct ks_signer_conn {
    int fd;
    int tenant; /* index of the bound tenant, -1 before "open" */
    long long last_ms;
    hsm_key_id *list; /* the sorted listing being paged, or NULL */
    size_t list_n;
} ks_signer_conn;

/* Answers one request on a connection; the reply is newly allocated
 * (caller puts) and never NULL. */
json_object *ks_signer_dispatch(ks_signer_server *s, ks_signer_conn *c, json_object *req);

/* {"ok": false, "error": msg}, newly allocated (caller puts). */
json_object *ks_signer_reply_error(const char *msg);

void ks_signer_conn_clear(ks_signer_conn *c);

/* Set by the SIGUSR1 test hook; the dispatcher closes every session. */
extern volatile sig_atomic_t ks_signer_close_sessions_requested;

#endif
