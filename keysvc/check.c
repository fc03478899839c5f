/*
 * check.c: `keysvc check` (see check.h).  Only local lookups: the user and
 * group databases, stat() and access() on paths, the environment's PIN
 * variable being set (never its value).
 */
#include "check.h"

#include "config.h"
#include "hook.h"
#include "ks_err.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct check_state {
    const ks_config *cfg;
    int errors;
    int warnings;
} check_state;

/* "FILE: error: what: why" on stderr, one line per problem. */
static void problem(check_state *st, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(check_state *st, int error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: %s: ", st->cfg->path, error ? "error" : "warning");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (error)
        st->errors++;
    else
        st->warnings++;
}

/* ----------------------------------------------------- users and groups */

static void check_user(check_state *st, const char *what, const char *user)
{
    if (user != NULL && getpwnam(user) == NULL)
        problem(st, 1, "%s: no user \"%s\" on this system", what, user);
}

static void check_group(check_state *st, const char *what, const char *group)
{
    if (group != NULL && getgrnam(group) == NULL)
        problem(st, 1, "%s: no group \"%s\" on this system", what, group);
}

static void check_owners(check_state *st)
{
    const ks_config *cfg = st->cfg;
    check_user(st, "settings.file_user", cfg->file_user);
    check_group(st, "settings.file_group", cfg->file_group);
    check_user(st, "settings.log_user", cfg->log_user);
    check_group(st, "settings.log_group", cfg->log_group);
    check_user(st, "signer.user", cfg->signer_user);
    check_group(st, "signer.socket_group", cfg->signer_socket_group);
    check_user(st, "database.run_as", cfg->database_run_as);
}

/* ---------------------------------------------------------- directories */

/* The part of a directory template before its first field: the directory
 * that exists or is made whatever the names. */
static void dir_prefix(const char *dir, char *out, size_t cap)
{
    const char *brace = strchr(dir, '{');
    size_t len = brace ? (size_t)(brace - dir) : strlen(dir);
    while (brace != NULL && len > 1 && dir[len - 1] != '/')
        len--;
    snprintf(out, cap, "%.*s", (int)len, dir);
}

/* A missing directory is made when first written to; what must hold is
 * that its nearest existing ancestor is a directory. */
static void check_dir(check_state *st, const char *what, const char *dir)
{
    char path[PATH_MAX];
    if (dir == NULL)
        return;
    dir_prefix(dir, path, sizeof(path));
    for (;;) {
        struct stat sb;
        if (stat(path, &sb) == 0) {
            if (!S_ISDIR(sb.st_mode))
                problem(st, 1, "%s: %s is not a directory (so %s cannot be one)", what, path, dir);
            return;
        }
        if (errno != ENOENT && errno != ENOTDIR) {
            problem(st, 1, "%s: %s: %s", what, path, strerror(errno));
            return;
        }
        char *slash = strrchr(path, '/');
        if (slash == NULL || slash == path)
            return; /* "/" (or a relative start) is there */
        *slash = '\0';
    }
}

static void check_dirs(check_state *st)
{
    const ks_config *cfg = st->cfg;
    /* directories.full_key is not here: keysvc never writes full keys. */
    const struct {
        const char *what;
        const char *dir;
    } dirs[] = {
        {"directories.certificate", cfg->dir_certificate},
        {"directories.chain", cfg->dir_chain},
        {"directories.private_key", cfg->dir_private_key},
        {"directories.state", cfg->dir_state},
        {"directories.previous_key", cfg->dir_previous_key},
        {"directories.backup_key", cfg->dir_backup_key},
        {"directories.full_certificate", cfg->dir_full_certificate},
        {"directories.param", cfg->dir_param},
        {"directories.hpkp", cfg->dir_hpkp},
        {"directories.ocsp", cfg->dir_ocsp},
        {"directories.sct", cfg->dir_sct},
        {"directories.archive", cfg->dir_archive},
        {"directories.log", cfg->dir_log},
        {"directories.pid", cfg->dir_pid},
        {"directories.resource", cfg->dir_resource},
        {"directories.temp", cfg->dir_temp},
        {"directories.challenge", cfg->dir_challenge},
        {"directories.http_challenge", cfg->http_challenge_template},
    };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        check_dir(st, dirs[i].what, dirs[i].dir);
    for (size_t i = 0; i < cfg->n_http_challenges; i++)
        check_dir(st, "http_challenges", cfg->http_challenges[i].directory);
}

/* ------------------------------------------------------------- commands */

static void check_words(check_state *st, const char *what, const char *command)
{
    char **argv = NULL;
    ks_err why = {{0}};
    if (command == NULL)
        return;
    if (ks_split_words(command, &argv, &why) < 0)
        problem(st, 1, "%s: %s", what, why.msg);
    ks_words_free(argv);
}

static void check_commands(check_state *st)
{
    const ks_config *cfg = st->cfg;
    char what[256];
    for (int i = 0; i < KS_HOOK_COUNT; i++) {
        snprintf(what, sizeof(what), "hooks.%s", ks_hook_name((ks_hook_id)i));
        check_words(st, what, cfg->hooks[i]);
    }
    for (size_t i = 0; i < cfg->n_services; i++) {
        snprintf(what, sizeof(what), "services.%s", cfg->services[i].name);
        check_words(st, what, cfg->services[i].command);
    }
    check_words(st, "settings.reload_zone_command", cfg->reload_zone_command);
    check_words(st, "dns_hooks.auth", cfg->dns_auth_hook);
    check_words(st, "dns_hooks.cleanup", cfg->dns_cleanup_hook);
    if (cfg->nsupdate_command != NULL && cfg->n_zone_keys > 0)
        printf("note: settings.nsupdate_command is not used: keysvc sends the RFC 2136 "
               "updates itself\n");
}

/* ---------------------------------------------------- PINs, root certs */

/* Where the PIN comes from must be there; the PIN itself is not read. */
static void check_pin_source(check_state *st, const ks_tenant_config *t)
{
    struct stat sb;
    if (t->pin_env != NULL && getenv(t->pin_env) == NULL)
        problem(st, 0,
                "tenant \"%s\": the PIN variable %s is not set in this environment "
                "(keysvc run needs it)",
                t->name, t->pin_env);
    if (t->pin_file == NULL)
        return;
    if (stat(t->pin_file, &sb) < 0)
        problem(st, 1, "tenant \"%s\": PIN file %s: %s", t->name, t->pin_file, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        problem(st, 1, "tenant \"%s\": PIN file %s is not a regular file", t->name, t->pin_file);
    else if ((sb.st_mode & 077) != 0)
        problem(st, 0, "tenant \"%s\": PIN file %s can be read by group or others (chmod 600)",
                t->name, t->pin_file);
}

/* acmebot's full_certificate files need root_cert.<key_type>.pem (by the
 * certificate file name template) beside the configuration; without one
 * they are not written. */
static void check_root_certs(check_state *st)
{
    const ks_config *cfg = st->cfg;
    if (cfg->dir_full_certificate == NULL)
        return;
    for (int t = 0; t < KS_KEY_TYPES; t++) {
        int used = 0;
        for (size_t i = 0; i < cfg->n_certs && !used; i++)
            for (size_t j = 0; j < cfg->certs[i].n_key_types; j++)
                used |= cfg->certs[i].key_types[j] == (ks_key_type)t;
        if (!used)
            continue;
        /* acmebot names it with the certificate file name template. */
        ks_err err = {{0}};
        char *path = ks_config_output_path(cfg, cfg->base_dir, cfg->fn_certificate, "root_cert",
                                           (ks_key_type)t, &err);
        if (path == NULL)
            problem(st, 1, "root_cert: %s", err.msg);
        else if (access(path, R_OK) < 0)
            problem(st, 0,
                    "%s: %s: no full_certificate files for %s certificates (set "
                    "directories.full_certificate to null if none are wanted)",
                    path, strerror(errno), ks_key_type_name((ks_key_type)t));
        free(path);
    }
}

/* TLSA records are set by RFC 2136 only: a zone without an update key
 * would get the same warning at every run (here once per zone and
 * certificate). */
static void check_tlsa_zones(check_state *st)
{
    const ks_config *cfg = st->cfg;
    for (size_t i = 0; i < cfg->n_certs; i++) {
        const ks_cert_config *c = &cfg->certs[i];
        for (size_t r = 0; r < c->n_tlsa_records; r++) {
            const char *zone = c->tlsa_records[r].zone;
            int said = 0;
            for (size_t e = 0; e < r && !said; e++)
                said = strcmp(c->tlsa_records[e].zone, zone) == 0;
            if (!said && ks_config_zone_key(cfg, zone) == NULL)
                problem(st, 0,
                        "certificates[\"%s\"].tlsa_records: zone %s has no key in "
                        "zone_update_keys: its TLSA records will not be set",
                        c->name, zone);
        }
    }
}

int ks_check_main(const char *config_path)
{
    ks_err err = {{0}};
    ks_config *cfg = ks_config_load(config_path, &err);
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    check_state st = {cfg, 0, 0};
    check_owners(&st);
    check_dirs(&st);
    check_commands(&st);
    for (size_t i = 0; i < cfg->n_tenants; i++)
        check_pin_source(&st, &cfg->tenants[i]);
    check_root_certs(&st);
    check_tlsa_zones(&st);
    if (st.errors == 0)
        printf("configuration %s is valid (%zu certificate%s, %zu key%s, %zu tenant%s%s)\n",
               cfg->path, cfg->n_certs, cfg->n_certs == 1 ? "" : "s", cfg->n_keys,
               cfg->n_keys == 1 ? "" : "s", cfg->n_tenants, cfg->n_tenants == 1 ? "" : "s",
               st.warnings ? "; see the warnings" : "");
    else
        fprintf(stderr, "%s: %d error%s\n", cfg->path, st.errors, st.errors == 1 ? "" : "s");
    ks_config_free(cfg);
    return st.errors == 0 ? 0 : 2;
}
