/*
 * install: every file of one private key, written as one transaction, then
 * the hooks for what changed, and the services to reload marked.
 *
 * The files of a private key are those of all the certificates that share
 * it, in every key type: certificate with chain, chain, full certificate
 * (with the root), the key URIs where acmebot keeps the primary, backup and
 * previous keys, the parameter file and the HPKP headers.  They are built
 * in memory first and handed to a transaction (txn.h), so that either all
 * of them are in place or none was replaced; what is replaced is archived.
 */
#include "install.h"

#include "hpkp.h"
#include "keys.h"
#include "ks_clock.h"
#include "ks_log.h"
#include "ks_util.h"
#include "params.h"
#include "snippets.h"
#include "txn.h"

#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#define MODE_PUBLIC 0644  /* certificates, chains, parameters, headers */
#define MODE_KEY_URI 0640 /* where acmebot keeps private keys */
#define DIR_PUBLIC 0755
#define DIR_PRIVATE 0750
#define ROOT_CERT_MAX (256 * 1024)

/* A file of the transaction and the hook to run when it changed. */
typedef struct installed {
    char *path;
    ks_hook_id hook;
    ks_key_type type;
    const char *cert_name; /* NULL for key files */
    size_t cert_index;     /* for services; SIZE_MAX for key files */
    const char *server;    /* HPKP */
    char *header;          /* HPKP */
} installed;

typedef struct install_ctx {
    ks_run *run;
    const ks_key_config *key;
    ks_txn *txn;
    installed *files;
    size_t n_files;
} install_ctx;

int ks_install_resolve_owner(const ks_config *cfg, uid_t *uid, gid_t *gid, ks_err *err)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (cfg->file_user != NULL) {
        struct passwd *pw = getpwnam(cfg->file_user);
        if (pw == NULL)
            return ks_fail(err, "%s: settings.file_user: no user \"%s\" on this system", cfg->path,
                           cfg->file_user);
        *uid = pw->pw_uid;
    }
    if (cfg->file_group != NULL) {
        struct group *gr = getgrnam(cfg->file_group);
        if (gr == NULL)
            return ks_fail(err, "%s: settings.file_group: no group \"%s\" on this system",
                           cfg->path, cfg->file_group);
        *gid = gr->gr_gid;
    }
    return 0;
}

/* Adds a file to the transaction and remembers its hook.  Takes `path`. */
static int add_file(install_ctx *ic, char *path, const char *content, mode_t mode, mode_t dir_mode,
                    installed what, ks_err *err)
{
    installed *grown = realloc(ic->files, (ic->n_files + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(path);
        free(what.header);
        return ks_fail(err, "out of memory");
    }
    ic->files = grown;
    what.path = path;
    ic->files[ic->n_files++] = what;
    return ks_txn_add(ic->txn, path, content, strlen(content), mode, ic->run->file_uid,
                      ic->run->file_gid, dir_mode, err);
}

/* The path of an output, or NULL with *path NULL when it is off. */
static int output_path(const ks_run *run, const char *dir, const char *tmpl, const char *name,
                       ks_key_type type, char **path, ks_err *err)
{
    *path = NULL;
    if (dir == NULL || tmpl == NULL)
        return 0;
    *path = ks_config_output_path(run->cfg, dir, tmpl, name, type, err);
    return *path == NULL ? -1 : 0;
}

/* --------------------------------------------------------------- keys */

/* The key URI file of one role: written when the key exists, archived and
 * removed when it does not (a previous key that was retired). */
static int add_key_uri(install_ctx *ic, ks_key_type type, const char *role, const char *dir,
                       const char *tmpl, ks_hook_id hook, ks_err *err)
{
    store_key row = {0};
    char *path = NULL;
    const char *type_name = ks_key_type_name(type);
    if (output_path(ic->run, dir, tmpl, ic->key->name, type, &path, err) < 0)
        return -1;
    if (path == NULL)
        return 0;
    int found = store_key_find(ic->run->db, ic->run->tenant, "certificate", ic->key->name,
                               type_name, role, &row, err);
    int rc = -1;
    if (found == 0) {
        rc = ks_txn_remove(ic->txn, path, err);
        free(path);
    } else if (found == 1) {
        char *uri = ks_key_uri_new(&row, ks_signer_token(ic->run->signer));
        char *line = uri ? ks_strdup_printf("%s\n", uri) : NULL;
        installed what = {.hook = hook, .type = type, .cert_index = SIZE_MAX};
        rc = line ? add_file(ic, path, line, MODE_KEY_URI, DIR_PRIVATE, what, err)
                  : (free(path), ks_fail(err, "out of memory"));
        free(uri);
        free(line);
    } else {
        free(path);
    }
    store_key_clear(&row);
    return rc;
}

static int add_key_files(install_ctx *ic, ks_err *err)
{
    const ks_config *cfg = ic->run->cfg;
    for (size_t t = 0; t < ic->key->n_key_types; t++) {
        ks_key_type type = ic->key->key_types[t];
        if (add_key_uri(ic, type, "primary", cfg->dir_private_key, cfg->fn_private_key,
                        KS_HOOK_PRIVATE_KEY_INSTALLED, err) < 0 ||
            add_key_uri(ic, type, "backup", cfg->dir_backup_key, cfg->fn_backup_key,
                        KS_HOOK_BACKUP_KEY_INSTALLED, err) < 0 ||
            add_key_uri(ic, type, "previous", cfg->dir_previous_key, cfg->fn_previous_key,
                        KS_HOOK_PREVIOUS_KEY_INSTALLED, err) < 0)
            return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- HPKP */

/* The pins of every key type's primary, then backup, then previous keys;
 * *pins newly allocated (strings too). */
static int collect_pins(install_ctx *ic, char ***pins, size_t *n, ks_err *err)
{
    static const char *const roles[] = {"primary", "backup", "previous"};
    *pins = calloc(KS_KEY_TYPES * 3, sizeof(**pins));
    *n = 0;
    if (*pins == NULL)
        return ks_fail(err, "out of memory");
    for (size_t r = 0; r < 3; r++) {
        for (size_t t = 0; t < ic->key->n_key_types; t++) {
            store_key row = {0};
            int found =
                store_key_find(ic->run->db, ic->run->tenant, "certificate", ic->key->name,
                               ks_key_type_name(ic->key->key_types[t]), roles[r], &row, err);
            if (found < 0)
                return -1;
            if (found == 1 && row.spki_sha256 != NULL && row.spki_sha256[0] != '\0') {
                (*pins)[(*n)++] = row.spki_sha256;
                row.spki_sha256 = NULL;
            }
            store_key_clear(&row);
        }
    }
    return 0;
}

static void free_pins(char **pins, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(pins[i]);
    free(pins);
}

static int add_hpkp_server(install_ctx *ic, const ks_hpkp_header *h, const char *header,
                           ks_err *err)
{
    const ks_config *cfg = ic->run->cfg;
    ks_path_fields fields = {.name = ic->key->name, .key_type = -1, .server = h->server};
    char *text = NULL;
    char *path = ks_config_path_new(cfg, cfg->dir_hpkp, cfg->fn_hpkp, &fields, err);
    int rc = -1;
    if (path != NULL && ks_hpkp_fill_template(h->tmpl, header, &text, err) == 0) {
        installed what = {.hook = KS_HOOK_HPKP_HEADER_INSTALLED,
                          .cert_index = SIZE_MAX,
                          .server = h->server,
                          .header = strdup(header)};
        rc = add_file(ic, path, text, MODE_PUBLIC, DIR_PUBLIC, what, err);
        path = NULL;
    }
    free(path);
    free(text);
    return rc;
}

int ks_install_hpkp_in_use(const ks_config *cfg, const ks_key_config *key)
{
    return cfg->dir_hpkp != NULL && cfg->fn_hpkp != NULL && cfg->n_hpkp_headers > 0 &&
           key->hpkp_days > 0;
}

static int add_hpkp_files(install_ctx *ic, ks_err *err)
{
    const ks_key_config *k = ic->key;
    if (!ks_install_hpkp_in_use(ic->run->cfg, k))
        return 0;
    char **pins = NULL;
    size_t n = 0;
    int rc = collect_pins(ic, &pins, &n, err);
    /* A header pinning one key would lock clients out at the next
     * rollover: without a backup pin nothing is written. */
    if (rc == 0 && n >= 2) {
        char *header =
            ks_hpkp_header_new((const char *const *)pins, n, (long long)k->hpkp_days * 86400,
                               k->pin_subdomains, k->hpkp_report_uri);
        if (header == NULL)
            rc = ks_fail(err, "out of memory");
        for (size_t i = 0; rc == 0 && i < ic->run->cfg->n_hpkp_headers; i++)
            rc = add_hpkp_server(ic, &ic->run->cfg->hpkp_headers[i], header, err);
        free(header);
    }
    free_pins(pins, n);
    return rc;
}

/* ------------------------------------------------------- certificates */

char *ks_install_root_cert_new(ks_run *run, ks_key_type type)
{
    ks_err err;
    size_t len = 0;
    char *path =
        ks_strdup_printf("%s/root_cert.%s.pem", run->cfg->base_dir, ks_key_type_name(type));
    char *pem = path ? ks_read_file(path, ROOT_CERT_MAX, &len, &err) : NULL;
    if (pem == NULL && path != NULL && !run->root_warned[type]) {
        run->root_warned[type] = 1;
        ks_info("%s: no root certificate (%s); full certificates (%s) are not written and "
                "TLSA trust anchor records leave it out",
                path, err.msg, ks_key_type_name(type));
    }
    free(path);
    return pem;
}

/* A certificate file that cannot be written this time (no root for the full
 * certificate, no chain from the CA) would otherwise be served stale after
 * a renewal: unless it still begins with `current` (what it would start
 * with) it goes to the archive, and comes back when it can be written. */
static int drop_if_stale(install_ctx *ic, size_t ci, ks_key_type type, const char *dir,
                         const char *tmpl, const char *current, ks_err *err)
{
    const ks_cert_config *cert = &ic->run->cfg->certs[ci];
    char *path = NULL;
    if (output_path(ic->run, dir, tmpl, cert->name, type, &path, err) < 0)
        return -1;
    if (path == NULL)
        return 0;
    size_t len = 0;
    ks_err unread;
    char *have = ks_read_file(path, ROOT_CERT_MAX, &len, &unread);
    /* An empty `current` (no chain at all): whatever the file holds is old. */
    int stale = have != NULL &&
                (current[0] == '\0' || strncmp(have, current, strlen(current)) != 0);
    free(have);
    int rc = 0;
    if (stale) {
        ks_warn("%s: cannot be written now and no longer holds the current certificate: "
                "archived",
                path);
        rc = ks_txn_remove(ic->txn, path, err);
    }
    free(path);
    return rc;
}

static int add_cert_output(install_ctx *ic, size_t ci, ks_key_type type, const char *dir,
                           const char *tmpl, ks_hook_id hook, const char *content, ks_err *err)
{
    const ks_cert_config *cert = &ic->run->cfg->certs[ci];
    char *path = NULL;
    if (output_path(ic->run, dir, tmpl, cert->name, type, &path, err) < 0)
        return -1;
    if (path == NULL)
        return 0;
    installed what = {.hook = hook, .type = type, .cert_name = cert->name, .cert_index = ci};
    return add_file(ic, path, content, MODE_PUBLIC, DIR_PUBLIC, what, err);
}

/* nginx and Apache snippets beside the certificate (snippets.h); off with
 * the certificate or the key URI output.  No hook: they are keysvc's own. */
static int add_snippets(install_ctx *ic, size_t ci, ks_key_type type, const char *uri, ks_err *err)
{
    const ks_config *cfg = ic->run->cfg;
    const ks_cert_config *cert = &cfg->certs[ci];
    if (cfg->dir_certificate == NULL || cfg->dir_private_key == NULL)
        return 0;
    char *nginx = NULL, *apache = NULL, *cert_path = NULL;
    int rc = -1;
    if (output_path(ic->run, cfg->dir_certificate, cfg->fn_certificate, cert->name, type,
                    &cert_path, err) == 0 &&
        ks_snippet_nginx(cert_path, uri, cfg->hsm_server_pin_source, &nginx, err) == 0 &&
        ks_snippet_apache(cert_path, uri, cfg->hsm_server_pin_source, &apache, err) == 0 &&
        add_cert_output(ic, ci, type, cfg->dir_certificate, "{name}{suffix}.nginx.conf",
                        KS_HOOK_COUNT, nginx, err) == 0 &&
        add_cert_output(ic, ci, type, cfg->dir_certificate, "{name}{suffix}.apache.conf",
                        KS_HOOK_COUNT, apache, err) == 0)
        rc = 0;
    free(cert_path);
    free(nginx);
    free(apache);
    return rc;
}

/* The files of one certificate in one key type, from its current row. */
static int add_cert_type(install_ctx *ic, size_t ci, ks_key_type type, ks_err *err)
{
    ks_run *run = ic->run;
    const ks_config *cfg = run->cfg;
    const ks_cert_config *cert = &cfg->certs[ci];
    store_cert have = {0};
    store_key key = {0};
    char *full = NULL, *with_root = NULL, *root = NULL, *uri = NULL;
    int rc = -1;
    int found = store_cert_find_current(run->db, run->tenant, cert->name, ks_key_type_name(type),
                                        &have, err);
    if (found <= 0) {
        rc = found; /* nothing issued yet: nothing to write */
        goto out;
    }
    if (store_key_get(run->db, have.key_id, &key, err) != 1)
        goto out;
    full = ks_strdup_printf("%s%s", have.cert_pem, have.chain_pem);
    uri = ks_key_uri_new(&key, ks_signer_token(run->signer));
    if (full == NULL || uri == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    if (cfg->dir_full_certificate != NULL && (root = ks_install_root_cert_new(run, type)) != NULL &&
        (with_root = ks_strdup_printf("%s%s", full, root)) == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    if (add_cert_output(ic, ci, type, cfg->dir_certificate, cfg->fn_certificate,
                        KS_HOOK_CERTIFICATE_INSTALLED, full, err) < 0 ||
        (with_root != NULL
             ? add_cert_output(ic, ci, type, cfg->dir_full_certificate, cfg->fn_full_certificate,
                               KS_HOOK_FULL_CERTIFICATE_INSTALLED, with_root, err)
             : drop_if_stale(ic, ci, type, cfg->dir_full_certificate, cfg->fn_full_certificate,
                             full, err)) < 0 ||
        (have.chain_pem[0] != '\0'
             ? add_cert_output(ic, ci, type, cfg->dir_chain, cfg->fn_chain,
                               KS_HOOK_CHAIN_INSTALLED, have.chain_pem, err)
             : drop_if_stale(ic, ci, type, cfg->dir_chain, cfg->fn_chain, have.chain_pem,
                             err)) < 0 ||
        add_snippets(ic, ci, type, uri, err) < 0)
        goto out;
    rc = 1;
out:
    free(full);
    free(with_root);
    free(root);
    free(uri);
    store_key_clear(&key);
    store_cert_clear(&have);
    return rc;
}

/* The parameter file (DH and EC parameters) of a certificate. */
static int add_params(install_ctx *ic, size_t ci, ks_err *err)
{
    const ks_config *cfg = ic->run->cfg;
    const ks_cert_config *cert = &cfg->certs[ci];
    char *pem = NULL, *path = NULL;
    if (cfg->dir_param == NULL || (cert->dhparam_size == 0 && cert->ecparam_curve == 0))
        return 0;
    if (ks_params_pem_new(cert->dhparam_size, cert->ecparam_curve, &pem, err) < 0)
        return ks_failp(err, "%s: parameters", cert->name);
    int rc = output_path(ic->run, cfg->dir_param, cfg->fn_param, cert->name, cert->key_types[0],
                         &path, err);
    if (rc == 0 && path != NULL) {
        installed what = {.hook = KS_HOOK_PARAMS_INSTALLED,
                          .type = cert->key_types[0],
                          .cert_name = cert->name,
                          .cert_index = ci};
        rc = add_file(ic, path, pem, MODE_PUBLIC, DIR_PUBLIC, what, err);
    }
    free(pem);
    return rc;
}

static int add_cert_files(install_ctx *ic, size_t key_index, ks_err *err)
{
    const ks_config *cfg = ic->run->cfg;
    for (size_t ci = 0; ci < cfg->n_certs; ci++) {
        const ks_cert_config *cert = &cfg->certs[ci];
        int any = 0;
        if (cert->key != key_index)
            continue;
        for (size_t t = 0; t < cert->n_key_types; t++) {
            int rc = add_cert_type(ic, ci, cert->key_types[t], err);
            if (rc < 0)
                return ks_failp(err, "%s (%s)", cert->name, ks_key_type_name(cert->key_types[t]));
            any |= rc;
        }
        if (any && add_params(ic, ci, err) < 0)
            return -1;
    }
    return 0;
}

/* -------------------------------------------------------------- hooks */

static int was_written(const ks_txn *txn, const char *path)
{
    for (size_t i = 0; i < ks_txn_n_written(txn); i++)
        if (strcmp(ks_txn_written(txn, i), path) == 0)
            return 1;
    return 0;
}

/* Runs an acmebot hook: its output goes to the log, a failure is a
 * warning (as in acmebot). */
void ks_install_run_hook(const ks_run *run, ks_hook_id id, const char *subject,
                         const ks_hook_var *fields, size_t n)
{
    const char *tmpl = id < KS_HOOK_COUNT ? run->cfg->hooks[id] : NULL;
    char what[300], *out = NULL;
    ks_err err;
    if (tmpl == NULL)
        return;
    snprintf(what, sizeof(what), "%s hook for %s", ks_hook_name(id), subject);
    if (ks_hook_run_template(what, tmpl, fields, n, run->cfg->hook_timeout, &out, &err) < 0) {
        ks_warn("%s", err.msg);
    } else if (out != NULL && out[0] != '\0') {
        char *safe = ks_escape_new(out, (size_t)-1);
        ks_info("%s: %s", what, safe ? safe : "(output not shown: out of memory)");
        free(safe);
    }
    free(out);
}

/* The field that names the file, per hook. */
static const char *file_field(ks_hook_id id)
{
    switch (id) {
    case KS_HOOK_PRIVATE_KEY_INSTALLED:
        return "private_key_file";
    case KS_HOOK_BACKUP_KEY_INSTALLED:
        return "backup_key_file";
    case KS_HOOK_PREVIOUS_KEY_INSTALLED:
        return "previous_key_file";
    case KS_HOOK_HPKP_HEADER_INSTALLED:
        return "hpkp_file";
    case KS_HOOK_CERTIFICATE_INSTALLED:
        return "certificate_file";
    case KS_HOOK_FULL_CERTIFICATE_INSTALLED:
        return "full_certificate_file";
    case KS_HOOK_CHAIN_INSTALLED:
        return "chain_file";
    case KS_HOOK_PARAMS_INSTALLED:
        return "params_file";
    default:
        return NULL;
    }
}

static void run_installed_hook(const install_ctx *ic, const installed *f)
{
    const char *file = file_field(f->hook);
    ks_hook_var fields[5];
    size_t n = 0;
    if (file == NULL)
        return;
    fields[n++] = (ks_hook_var){"key_name", ic->key->name};
    if (f->hook == KS_HOOK_HPKP_HEADER_INSTALLED) {
        fields[n++] = (ks_hook_var){"server", f->server};
        fields[n++] = (ks_hook_var){"header", f->header};
    } else if (f->hook != KS_HOOK_PARAMS_INSTALLED) {
        fields[n++] = (ks_hook_var){"key_type", ks_key_type_name(f->type)};
    }
    if (f->cert_name != NULL)
        fields[n++] = (ks_hook_var){"certificate_name", f->cert_name};
    else if (f->hook != KS_HOOK_HPKP_HEADER_INSTALLED)
        fields[n++] = (ks_hook_var){"passphrase", ""};
    fields[n++] = (ks_hook_var){file, f->path};
    ks_install_run_hook(ic->run, f->hook, f->path, fields, n);
}

/* Hooks in acmebot's order: keys, HPKP headers, then each certificate's
 * certificate, full certificate, chain, and parameters. */
static void run_hooks_and_mark(install_ctx *ic)
{
    static const ks_hook_id order[] = {KS_HOOK_PRIVATE_KEY_INSTALLED,
                                       KS_HOOK_BACKUP_KEY_INSTALLED,
                                       KS_HOOK_PREVIOUS_KEY_INSTALLED,
                                       KS_HOOK_HPKP_HEADER_INSTALLED,
                                       KS_HOOK_CERTIFICATE_INSTALLED,
                                       KS_HOOK_FULL_CERTIFICATE_INSTALLED,
                                       KS_HOOK_CHAIN_INSTALLED,
                                       KS_HOOK_PARAMS_INSTALLED,
                                       KS_HOOK_COUNT /* keysvc's own files: no hook */};
    for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
        for (size_t i = 0; i < ic->n_files; i++) {
            const installed *f = &ic->files[i];
            if (f->hook != order[o] || !was_written(ic->txn, f->path))
                continue;
            run_installed_hook(ic, f);
            if (f->cert_index != SIZE_MAX)
                ks_run_mark_services(ic->run, f->cert_index);
        }
    }
}

static void install_ctx_clear(install_ctx *ic)
{
    for (size_t i = 0; i < ic->n_files; i++) {
        free(ic->files[i].path);
        free(ic->files[i].header);
    }
    free(ic->files);
    ks_txn_free(ic->txn);
}

int ks_install_key(ks_run *run, size_t key_index, ks_err *err)
{
    install_ctx ic = {.run = run, .key = &run->cfg->keys[key_index]};
    int rc = -1;
    ic.txn = ks_txn_new(run->cfg->dir_archive, ic.key->name, ks_now(), err);
    if (ic.txn == NULL || add_key_files(&ic, err) < 0 || add_hpkp_files(&ic, err) < 0 ||
        add_cert_files(&ic, key_index, err) < 0 || ks_txn_commit(ic.txn, err) < 0) {
        ks_failp(err, "writing the files of private key %s (%s)", ic.key->name,
                 ic.txn != NULL && ks_txn_mixed(ic.txn) ? "some files are new, see why"
                                                        : "nothing was replaced");
        goto out;
    }
    for (size_t i = 0; i < ks_txn_n_written(ic.txn); i++)
        ks_log_action("wrote %s", ks_txn_written(ic.txn, i));
    for (size_t i = 0; i < ks_txn_n_removed(ic.txn); i++)
        ks_log_action("archived %s", ks_txn_removed(ic.txn, i));
    if (ks_txn_changes(ic.txn) > 0)
        run->changed = 1;
    run_hooks_and_mark(&ic);
    rc = 0;
out:
    install_ctx_clear(&ic);
    return rc;
}

/* ------------------------------------------------------------ archive */

static int remove_output(ks_txn *txn, const ks_run *run, const char *dir, const char *tmpl,
                         const char *name, ks_key_type type, ks_err *err)
{
    char *path = NULL;
    if (output_path(run, dir, tmpl, name, type, &path, err) < 0)
        return -1;
    int rc = path ? ks_txn_remove(txn, path, err) : 0;
    free(path);
    return rc;
}

int ks_install_archive_certificates(ks_run *run, size_t key_index, ks_err *err)
{
    const ks_config *cfg = run->cfg;
    const ks_key_config *k = &cfg->keys[key_index];
    ks_txn *txn = ks_txn_new(cfg->dir_archive, k->name, ks_now(), err);
    int rc = txn ? 0 : -1;
    for (size_t ci = 0; rc == 0 && ci < cfg->n_certs; ci++) {
        const ks_cert_config *c = &cfg->certs[ci];
        for (size_t t = 0; c->key == key_index && rc == 0 && t < c->n_key_types; t++) {
            ks_key_type type = c->key_types[t];
            if (remove_output(txn, run, cfg->dir_certificate, cfg->fn_certificate, c->name, type,
                              err) < 0 ||
                remove_output(txn, run, cfg->dir_full_certificate, cfg->fn_full_certificate,
                              c->name, type, err) < 0 ||
                remove_output(txn, run, cfg->dir_chain, cfg->fn_chain, c->name, type, err) < 0)
                rc = -1;
        }
    }
    if (rc == 0 && ks_txn_commit(txn, err) == 0) {
        for (size_t i = 0; i < ks_txn_n_removed(txn); i++)
            ks_log_action("archived %s", ks_txn_removed(txn, i));
    } else {
        rc = -1;
    }
    ks_txn_free(txn);
    return rc;
}
