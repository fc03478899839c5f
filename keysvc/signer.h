/*
 * ks_signer: the worker's side of the key service (docs/keyservice.md).
 *
 * The worker never loads the PKCS#11 module and never holds a PIN: it asks
 * the signer process over a socket.  A ks_signer is one tenant's view of a
 * signer connection.  A key is named by a ks_keyref (token serial + CKA_ID);
 * the signer refuses a reference to another tenant's token.
 *
 * Every key operation can be reported to an audit hook before it happens and
 * after; when the hook refuses (cannot record the event), the operation is
 * not made.
 */
#ifndef KEYSVC_SIGNER_H
#define KEYSVC_SIGNER_H

#include "config.h"
#include "hsm.h"
#include "ks_err.h"
#include "signer_server.h"

#include <openssl/evp.h>
#include <sys/types.h>

#define KS_KEYREF_MAX_ID HSM_MAX_ID_LEN

typedef struct ks_keyref {
    char token_serial[17];
    unsigned char id[KS_KEYREF_MAX_ID]; /* keysvc makes HSM_KEY_ID_LEN bytes */
    size_t id_len;
} ks_keyref;

typedef enum ks_key_purpose {
    KS_PURPOSE_ACCOUNT,
    KS_PURPOSE_CERTIFICATE,
} ks_key_purpose;

const char *ks_key_purpose_name(ks_key_purpose p);

/* ---------------------------------------------------- the signer process */

/* The worker's connections to a signer, one per tenant: the run's own
 * signer gets one socketpair per tenant, each bound to its tenant before a
 * byte is sent; a standalone signer is connected to once per tenant. */
typedef struct ks_signer_process {
    pid_t pid;         /* the run's own signer; 0 for a standalone one */
    char *socket_path; /* the standalone signer's socket, or NULL */
    uid_t signer_uid;  /* signer.user's uid (0: none), besides root and ours */
    size_t n;
    char **tenants; /* tenants[i] is served on fds[i] */
    int *fds;
} ks_signer_process;

/* The configuration's tenants as the signer needs them (only `only` when
 * it is not NULL); the strings point into cfg.  Caller frees the array. */
ks_signer_tenant_config *ks_signer_tenants_from_config(const ks_config *cfg, const char *only,
                                                       size_t *n, ks_err *err);

/* Wipes the PIN variables of the tenants other than `only` (unless `only`
 * shares them; nothing when `only` is NULL): call before a fork, so that
 * neither process keeps a PIN it does not need. */
void ks_signer_wipe_unused_pins(const ks_config *cfg, const char *only);

/* Starts a signer for these tenants.  Returns 0 in the worker (proc
 * filled; every PIN environment variable is already wiped here), 1 in the
 * signer child once it has finished serving (its exit code in
 * *child_status; the caller returns it to main at once), -1 on error.
 * Call it before opening anything the signer must not inherit. */
int ks_signer_spawn(const char *module, const ks_signer_tenant_config *tenants, size_t n,
                    ks_signer_process *proc, int *child_status, ks_err *err);

/* Prepares to use a standalone signer (`keysvc signer`) at a socket path;
 * connections are made by ks_signer_process_fd.  The signer must run as
 * root, as this process's user, or as `signer_user` (may be NULL). */
int ks_signer_use_path(const char *path, const char *signer_user, ks_signer_process *proc,
                       ks_err *err);

/* The connection serving `tenant` (kept by proc), or -1 with err set. */
int ks_signer_process_fd(ks_signer_process *proc, const char *tenant, ks_err *err);

/* Closes the connections and waits for a spawned signer to exit. */
void ks_signer_process_end(ks_signer_process *proc);

/* Key operations (generate, sign, destroy) are refused on a tenant without
 * audit hooks, so that no code path can use a key unrecorded.  Tests and
 * benchmarks that have no database call this once. */
void ks_signer_allow_unaudited(void);

/* ------------------------------------------------------------ a tenant */

typedef struct ks_signer ks_signer;

/* Audit hooks: begin is called before an operation and may refuse it (-1,
 * with err set); end reports the outcome.  `op` is "generate", "sign_jws",
 * "sign_csr" or "destroy". */
typedef struct ks_audit_hooks {
    int (*begin)(void *ctx, const char *tenant, const ks_keyref *ref, const char *op,
                 long long *event, ks_err *err);
    void (*end)(void *ctx, long long event, int ok, const char *detail);
    void *ctx;
} ks_audit_hooks;

/* Opens a tenant on a signer connection (the signer logs into its token).
 * `fd` stays the caller's.  After a request goes unanswered (a timeout, a
 * malformed answer) every later request on it fails. */
ks_signer *ks_signer_open(int fd, const char *tenant, ks_err *err);

/* The same on proc's connection for the tenant; when a standalone signer
 * closes that connection (it drops workers silent for 15 minutes, or was
 * restarted), the next request connects again, re-opens the tenant (which
 * must still be on the same token) and is sent once more. */
ks_signer *ks_signer_open_process(ks_signer_process *proc, const char *tenant, ks_err *err);
void ks_signer_close(ks_signer *s);

const char *ks_signer_tenant(const ks_signer *s);
const hsm_token_info *ks_signer_token(const ks_signer *s);
void ks_signer_set_audit(ks_signer *s, const ks_audit_hooks *hooks);

/* A fresh reference for a key not made yet: this tenant's token serial and a
 * random CKA_ID that carries the purpose, so that the reference can be
 * recorded before the key exists. */
int ks_signer_new_keyref(ks_signer *s, ks_key_purpose purpose, ks_keyref *out, ks_err *err);

int ks_signer_generate(ks_signer *s, const ks_keyref *ref, const hsm_key_spec *spec,
                       const char *label, ks_err *err);
int ks_signer_public_key(ks_signer *s, const ks_keyref *ref, EVP_PKEY **out, ks_err *err);

/* Signs a JWS signing input; `alg` (ES256/ES384/ES512/RS256/EdDSA) picks
 * the digest.  Raw r||s for EC.  *sig newly allocated (caller frees). */
int ks_signer_sign_jws(ks_signer *s, const ks_keyref *ref, const char *alg,
                       const unsigned char *input, size_t len, unsigned char **sig,
                       size_t *sig_len, ks_err *err);

/* Signs a CSR's CertificationRequestInfo with the digest md_nid. */
int ks_signer_sign_csr(ks_signer *s, const ks_keyref *ref, int md_nid, const unsigned char *tbs,
                       size_t len, unsigned char **sig, size_t *sig_len, ks_err *err);

/* 1 present, 0 absent, -1 error. */
int ks_signer_key_exists(ks_signer *s, const ks_keyref *ref, ks_err *err);

/* Every keysvc key on the tenant's token (caller frees *refs). */
int ks_signer_list_keys(ks_signer *s, ks_keyref **refs, size_t *n, ks_err *err);

int ks_signer_destroy(ks_signer *s, const ks_keyref *ref, ks_err *err);

/* How often the signer recovered this tenant's session, and logged in. */
typedef struct ks_signer_stats {
    long recoveries;
    long logins;
} ks_signer_stats;

int ks_signer_get_stats(ks_signer *s, ks_signer_stats *out, ks_err *err);

#endif
