/*
 * install: the output files of a private key, as one transaction, and the
 * hooks acmebot runs for them (see install.c).
 */
#ifndef KEYSVC_INSTALL_H
#define KEYSVC_INSTALL_H

#include "hook.h"
#include "run.h"

#include <sys/types.h>

/* settings.file_user / file_group as ids ((uid_t)-1 / (gid_t)-1: not set);
 * -1 naming the setting when the system has no such user or group. */
int ks_install_resolve_owner(const ks_config *cfg, uid_t *uid, gid_t *gid, ks_err *err);

/* Writes every file of private key `key_index` (its key URIs, HPKP headers,
 * and the certificates that share it, from their current database rows):
 * all are in place, or none was replaced.  Replaced files go to
 * directories.archive.  Then runs the *_installed hooks for the files that
 * changed and marks their certificates' services for reload. */
int ks_install_key(ks_run *run, size_t key_index, ks_err *err);

/* Moves the certificate, full certificate and chain files of the
 * certificates of private key `key_index` to the archive (after a
 * revocation). */
int ks_install_archive_certificates(ks_run *run, size_t key_index, ks_err *err);

/* root_cert.<key type>.pem beside the configuration, newly allocated, or
 * NULL (said once per run and type: full certificates are then not
 * written, TLSA trust anchors lack the root). */
char *ks_install_root_cert_new(ks_run *run, ks_key_type type);

/* Whether HPKP headers are written for the key (directories.hpkp,
 * hpkp_headers and hpkp_days). */
int ks_install_hpkp_in_use(const ks_config *cfg, const ks_key_config *key);

/* Runs an acmebot hook template with its fields when it is configured;
 * output is logged, a failure is a warning. */
void ks_install_run_hook(const ks_run *run, ks_hook_id id, const char *subject,
                         const ks_hook_var *fields, size_t n);

#endif
