/*
 * signer_server: the signer process (docs/keyservice.md).  It owns the
 * PKCS#11 module, the sessions and the PIN sources, and answers the requests
 * of signer_proto.h, enforcing signer_policy.h.  One request at a time; a
 * connection is bound to one tenant.
 */
#ifndef KEYSVC_SIGNER_SERVER_H
#define KEYSVC_SIGNER_SERVER_H

#include "ks_err.h"

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
 * from it now; a tenant whose source is unusable answers every request with
 * that error) and loads the module.  Tokens are logged into when a worker
 * first opens their tenant; after a wrong PIN that tenant is not logged
 * into again (until its PIN file changes). */
ks_signer_server *ks_signer_server_new(const char *module, const ks_signer_tenant_config *tenants,
                                       size_t n_tenants, ks_err *err);

/* Logs out, unloads the module, wipes the PIN sources. */
void ks_signer_server_free(ks_signer_server *s);

/* Serves connections that are already open, fds[i] bound to tenant i (the
 * order given to ks_signer_server_new), until every peer has closed. */
int ks_signer_serve_fds(ks_signer_server *s, const int *fds, size_t n, ks_err *err);

/* Listens on a unix socket at `path` (mode 0600; 0660 with `group`) and
 * serves every worker that connects, each connection bound to the tenant it
 * opens, until SIGTERM or SIGINT.  Refuses a path where a signer already
 * listens, and a directory others may write to without the sticky bit. */
int ks_signer_serve_path(ks_signer_server *s, const char *path, const char *group, ks_err *err);

/* Test hook (compiled in with KEYSVC_TEST_HOOKS, active only with
 * KEYSVC_TEST_HOOKS=1 in the environment): SIGUSR1 makes the signer close
 * every session of every open token before the next request, as a token
 * reset would. */
void ks_signer_install_test_hooks(void);

#endif
