/*
 * Output files: where acmebot would put them, with the same names, and a
 * pkcs11: URI where acmebot would put the private key.  A file whose content
 * is already right is not rewritten.
 */
#include "keys.h"
#include "ks_log.h"
#include "ks_util.h"
#include "run.h"
#include "snippets.h"

#include <stdlib.h>
#include <string.h>

#define MODE_CERT 0644
#define MODE_KEY_URI 0640

/* Writes one output file unless it already holds `content`. */
static int write_output(ks_run *run, const char *dir, const char *tmpl, const char *name,
                        ks_key_type type, const char *content, mode_t dir_mode, mode_t mode,
                        ks_err *err)
{
    if (dir == NULL)
        return 0; /* null in the configuration: this output is off */
    char *path = ks_config_output_path(run->cfg, dir, tmpl, name, type, err);
    if (path == NULL)
        return -1;
    int rc = 0;
    size_t len = strlen(content);
    if (!ks_file_equals(path, content, len)) {
        rc = ks_mkdirs(dir, dir_mode, err);
        if (rc == 0)
            rc = ks_write_file_atomic(path, content, len, mode, err);
        if (rc == 0) {
            run->changed = 1;
            if (!run->opts->quiet)
                printf("wrote %s\n", path);
        }
    }
    free(path);
    return rc;
}

/* nginx and Apache snippets beside the certificate (snippets.h); off with
 * the certificate or the key URI output. */
static int write_snippets(ks_run *run, const ks_cert_config *cert, ks_key_type type,
                          const char *uri, ks_err *err)
{
    const ks_config *cfg = run->cfg;
    if (cfg->dir_certificate == NULL || cfg->dir_private_key == NULL)
        return 0;
    char *nginx = NULL, *apache = NULL;
    char *cert_path = ks_config_output_path(cfg, cfg->dir_certificate, cfg->fn_certificate,
                                            cert->name, type, err);
    const char *pin_source = cfg->hsm_server_pin_source;
    int rc = -1;
    if (cert_path != NULL && ks_snippet_nginx(cert_path, uri, pin_source, &nginx, err) == 0 &&
        ks_snippet_apache(cert_path, uri, pin_source, &apache, err) == 0 &&
        write_output(run, cfg->dir_certificate, "{name}{suffix}.nginx.conf", cert->name, type,
                     nginx, 0755, MODE_CERT, err) == 0 &&
        write_output(run, cfg->dir_certificate, "{name}{suffix}.apache.conf", cert->name, type,
                     apache, 0755, MODE_CERT, err) == 0)
        rc = 0;
    free(cert_path);
    free(nginx);
    free(apache);
    return rc;
}

int ks_output_write(ks_run *run, const ks_cert_config *cert, ks_key_type type,
                    const store_cert *c, const store_key *key, ks_err *err)
{
    const ks_config *cfg = run->cfg;
    char *full = ks_strdup_printf("%s%s", c->cert_pem, c->chain_pem);
    char *uri = ks_key_uri_new(key, ks_signer_token(run->signer));
    char *uri_line = uri ? ks_strdup_printf("%s\n", uri) : NULL;
    int rc = -1;
    if (full == NULL || uri_line == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    if (write_output(run, cfg->dir_certificate, cfg->fn_certificate, cert->name, type, full,
                     0755, MODE_CERT, err) < 0 ||
        (c->chain_pem[0] != '\0' &&
         write_output(run, cfg->dir_chain, cfg->fn_chain, cert->name, type, c->chain_pem, 0755,
                      MODE_CERT, err) < 0) ||
        /* The key file is named after the private key, which several
         * certificates may share (acmebot's private_keys). */
        write_output(run, cfg->dir_private_key, cfg->fn_private_key, key->name, type, uri_line,
                     0750, MODE_KEY_URI, err) < 0 ||
        write_snippets(run, cert, type, uri, err) < 0) {
        ks_failp(err, "writing files for %s (%s)", cert->name, ks_key_type_name(type));
        goto out;
    }
    rc = 0;
out:
    free(full);
    free(uri);
    free(uri_line);
    return rc;
}
