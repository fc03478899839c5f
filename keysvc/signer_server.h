/*
 * signer_server: the signer process (docs/keyservice.md).  It owns the
 * PKCS#11 module, the sessions and the PIN sources, and answers the requests
 * of signer_proto.h, enforcing signer_policy.h.  One request at a time.
 */
#ifndef KEYSVC_SIGNER_SERVER_H
#define KEYSVC_SIGNER_SERVER_H

#include "ks_err.h"

#include <json-c/json.h>
#include <stddef.h>

typedef struct ks_signer_tenant_config {
    const char *name;
    const char *token_label;  /* label and/or serial select the token */
    const char *token_serial;
    const char *pin_env;      /* exactly one of pin_env / pin_file */
    const char *pin_file;
} ks_signer_tenant_config;

typedef struct ks_signer_server ks_signer_server;

/* Captures every tenant's PIN source (PINs from the environment are wiped
 * from it now) and loads the module; tokens are logged into when a worker
 * first asks for their tenant. */
ks_signer_server *ks_signer_server_new(const char *module, const ks_signer_tenant_config *tenants,
                                       size_t n_tenants, ks_err *err);

/* Logs out, unloads the module, wipes the PIN sources. */
void ks_signer_server_free(ks_signer_server *s);

/* Answers one request; the reply is newly allocated (caller puts).  Never
 * fails: a refused or malformed request gets {"ok": false, "error": ...}. */
json_object *ks_signer_server_handle(ks_signer_server *s, json_object *req);

/* Serves one connected socket until the peer closes it. */
int ks_signer_serve_connection(ks_signer_server *s, int fd, ks_err *err);

/* Listens on a unix socket at `path` (mode 0600; 0660 with `group`) and
 * serves every worker that connects, until SIGTERM or SIGINT. */
int ks_signer_serve_path(ks_signer_server *s, const char *path, const char *group, ks_err *err);

/* Test hook, active only with KEYSVC_TEST_HOOKS=1 in the environment:
 * SIGUSR1 makes the signer close every session of every open token before
 * the next request, as a token reset would. */
void ks_signer_install_test_hooks(void);

#endif
