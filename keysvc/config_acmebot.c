/*
 * config_acmebot.c: the rest of acmebot's configuration.
 *
 * acmebot's settings, directories and file names beyond the ones keysvc
 * started with; its "services", "hpkp_headers", "ct_logs" and
 * "authorizations" sections; and each key's and certificate's acmebot
 * settings (services, DH and EC parameters, OCSP, CT logs, verify,
 * tlsa_records).  Defaults are the ones acmebot documents (its README and
 * acmebot.example.json).  Where keysvc cannot do what acmebot does (the keys
 * never leave the token) the setting is accepted and the difference is said
 * once per load.
 *
 * Two parts live apart and are called from here: config_records.c parses
 * "verify" and "tlsa_records", and config_tables.c the "services",
 * "hpkp_headers" and "ct_logs" tables and the references to them.  This
 * file keeps the helpers they share, the format templates, the directories
 * and file names, the settings, the order of the sections, each key's and
 * certificate's settings, and the defaults.
 */
#include "config_internal.h"

#include "hook.h"
#include "ks_curves.h"
#include "ks_log.h"
#include "ks_util.h"

#include <limits.h>
#include <openssl/objects.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */

static int in_set(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return 1;
    return 0;
}

void cfg_free_strings(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

int cfg_append_string(cfgp *p, char ***list, size_t *n, const char *s)
{
    char **grown = realloc(*list, (*n + 1) * sizeof(*grown));
    if (grown == NULL)
        return ks_fail(p->err, "out of memory");
    *list = grown;
    if ((grown[*n] = strdup(s)) == NULL)
        return ks_fail(p->err, "out of memory");
    (*n)++;
    return 0;
}

static int copy_strings(cfgp *p, char *const *src, size_t n_src, char ***dst, size_t *n_dst)
{
    for (size_t i = 0; i < n_src; i++)
        if (cfg_append_string(p, dst, n_dst, src[i]) < 0)
            return -1;
    return 0;
}

/* An integer setting; null is not allowed. */
static int opt_int_field(cfgp *p, json_object *obj, const char *path, const char *key, long min,
                         long max, int *dst)
{
    long v = *dst;
    if (opt_int(p, obj, path, key, min, max, NULL, &v) < 0)
        return -1;
    *dst = (int)v;
    return 0;
}

/* An integer setting that 0 or null turns off. */
static int opt_int_or_null(cfgp *p, json_object *obj, const char *path, const char *key, long max,
                           int *dst)
{
    long v = *dst;
    int was_null = 0;
    if (opt_int(p, obj, path, key, 0, max, &was_null, &v) < 0)
        return -1;
    *dst = was_null ? 0 : (int)v;
    return 0;
}

/* acmebot fetches its URLs over HTTP(S): a scheme, then a host. */
int cfg_check_url(cfgp *p, const char *path, const char *url)
{
    const char *rest = strncmp(url, "https://", 8) == 0  ? url + 8
                       : strncmp(url, "http://", 7) == 0 ? url + 7
                                                         : NULL;
    if (rest == NULL || *rest == '\0' || *rest == '/')
        return cfail(p, path, "expected an https:// or http:// URL, got \"%s\"", url);
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return cfail(p, path, "a URL holds no blanks or control characters");
    return 0;
}

/* Log, service and server names end up in file names. */
int cfg_check_name(cfgp *p, const char *path, const char *name)
{
    if (!valid_name(name))
        return cfail(p, path, "\"%s\": names may use letters, digits and ._-*+@ only", name);
    return 0;
}

/* A command runs without a shell: it must split into words now. */
int cfg_check_command(cfgp *p, const char *path, const char *command)
{
    char **argv = NULL;
    ks_err why = {{0}};
    if (ks_split_words(command, &argv, &why) < 0)
        return cfail(p, path, "%s", why.msg);
    ks_words_free(argv);
    return 0;
}

static int list_item(cfgp *p, json_object *v, const char *path, cfg_item_check check, char ***out,
                     size_t *n)
{
    if (!json_object_is_type(v, json_type_string))
        return cfail(p, path, "expected a string, got %s", type_name(v));
    const char *s = json_object_get_string(v);
    if (*s == '\0')
        return cfail(p, path, "must not be empty");
    if (check != NULL && check(p, path, s) < 0)
        return -1;
    return cfg_append_string(p, out, n, s);
}

/* A list as acmebot reads one: a list of strings, a single string, or null
 * (none). */
int cfg_parse_string_list(cfgp *p, json_object *v, const char *path, cfg_item_check check,
                          char ***out, size_t *n)
{
    if (v == NULL)
        return 0;
    if (json_object_is_type(v, json_type_string))
        return list_item(p, v, path, check, out, n);
    if (!json_object_is_type(v, json_type_array))
        return cfail(p, path, "expected a list of strings, a string or null, got %s", type_name(v));
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        char ipath[600];
        index_path(ipath, sizeof(ipath), path, i);
        if (list_item(p, json_object_array_get_idx(v, i), ipath, check, out, n) < 0)
            return -1;
    }
    return 0;
}

/* Absent: *list keeps its default. */
int cfg_opt_string_list(cfgp *p, json_object *obj, const char *path, const char *key,
                        cfg_item_check check, char ***list, size_t *n)
{
    json_object *v = NULL;
    char cpath[512];
    if (!json_object_object_get_ex(obj, key, &v))
        return 0;
    child_path(cpath, sizeof(cpath), path, key);
    char **out = NULL;
    size_t n_out = 0;
    if (cfg_parse_string_list(p, v, cpath, check, &out, &n_out) < 0) {
        cfg_free_strings(out, n_out);
        return -1;
    }
    cfg_free_strings(*list, *n);
    *list = out;
    *n = n_out;
    return 0;
}

/* ----------------------------------------------------- format templates */

/* "{a} {b}" for messages. */
static void field_list(char *out, size_t cap, const char *const *fields)
{
    out[0] = '\0';
    for (size_t i = 0; fields[i] != NULL; i++) {
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s{%s}", i ? " " : "", fields[i]);
    }
    if (out[0] == '\0')
        snprintf(out, cap, "none");
}

/* acmebot's templates are Python format strings: "{field}" with a field in
 * `fields`, "{{" and "}}" for literal braces.  Checked now so that a typo
 * is an error at load, not at the first renewal. */
int cfg_check_format(cfgp *p, const char *path, const char *tmpl, const char *const *fields)
{
    char known[200];
    for (const char *s = tmpl; *s; s++) {
        if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
            s++;
            continue;
        }
        if (*s == '}')
            return cfail(p, path, "a single '}' (write \"}}\" for a brace)");
        if (*s != '{')
            continue;
        const char *end = strchr(s, '}');
        if (end == NULL)
            return cfail(p, path, "'{' without its '}' (write \"{{\" for a brace)");
        size_t len = (size_t)(end - s - 1);
        int found = 0;
        for (size_t i = 0; fields[i] != NULL && !found; i++)
            found = strlen(fields[i]) == len && strncmp(fields[i], s + 1, len) == 0;
        if (!found) {
            field_list(known, sizeof(known), fields);
            return cfail(p, path, "unknown field {%.*s} (fields: %s)", (int)len, s + 1, known);
        }
        s = end;
    }
    return 0;
}

/* Expands a template checked by cfg_check_format into out (PATH_MAX bytes). */
static int expand_format(const char *tmpl, const ks_hook_var *vars, size_t n, char *out,
                         ks_err *err)
{
    size_t used = 0;
    for (const char *s = tmpl; *s; s++) {
        const char *value = NULL;
        char one[2] = {*s, '\0'};
        if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
            value = one;
            s++;
        } else if (*s == '{' && strchr(s, '}') != NULL) {
            size_t len = (size_t)(strchr(s, '}') - s - 1);
            for (size_t i = 0; i < n && value == NULL; i++)
                if (strlen(vars[i].name) == len && strncmp(vars[i].name, s + 1, len) == 0)
                    value = vars[i].value;
            if (value == NULL)
                return ks_fail(err, "template \"%s\": no value for {%.*s}", tmpl, (int)len, s + 1);
            s += len + 1;
        } else {
            value = one;
        }
        size_t vlen = strlen(value);
        if (used + vlen >= PATH_MAX)
            return ks_fail(err, "template \"%s\": the path is too long", tmpl);
        memcpy(out + used, value, vlen + 1);
        used += vlen;
    }
    out[used] = '\0';
    return 0;
}

char *ks_config_path_new(const ks_config *cfg, const char *dir, const char *fn,
                         const ks_path_fields *f, ks_err *err)
{
    int typed = f->key_type >= 0 && f->key_type < KS_KEY_TYPES;
    ks_hook_var vars[] = {
        {"name", f->name},
        {"key_type", typed ? ks_key_type_name((ks_key_type)f->key_type) : ""},
        {"suffix", typed ? cfg->suffix[f->key_type] : ""},
        {"server", f->server},
        {"ct_log_name", f->ct_log_name},
    };
    char d[PATH_MAX], n[PATH_MAX];
    if (expand_format(dir, vars, 5, d, err) < 0 || expand_format(fn, vars, 5, n, err) < 0)
        return NULL;
    for (char *c = n; *c; c++)
        if (*c == '*')
            *c = '_';
    if (strchr(n, '/') != NULL || n[0] == '\0') {
        ks_fail(err, "file name \"%s\" (from template \"%s\") is empty or contains '/'", n, fn);
        return NULL;
    }
    char *path = ks_strdup_printf("%s/%s", d, n);
    if (path == NULL)
        ks_fail(err, "out of memory");
    return path;
}

/* --------------------------------------------- directories, file names */

static const char *const no_fields[] = {NULL};
static const char *const name_fields[] = {"name", NULL};
static const char *const key_fields[] = {"name", "key_type", "suffix", NULL};
static const char *const hpkp_fields[] = {"name", "server", NULL};
static const char *const sct_fields[] = {"name", "key_type", "suffix", "ct_log_name", NULL};

/* A directory or file name setting: its key, its ks_config member, the
 * fields its template may use, and acmebot's default. */
typedef struct path_setting {
    const char *key;
    size_t offset;
    const char *const *fields;
    const char *def;
} path_setting;

#define CFG_SLOT(member) offsetof(ks_config, member)

/* acmebot names its log and resource directories after itself; keysvc
 * does the same with its own name. */
static const path_setting acmebot_dirs[] = {
    {"pid", CFG_SLOT(dir_pid), no_fields, "/var/run"},
    {"log", CFG_SLOT(dir_log), no_fields, "/var/log/keysvc"},
    {"resource", CFG_SLOT(dir_resource), no_fields, "/var/local/keysvc"},
    {"backup_key", CFG_SLOT(dir_backup_key), key_fields, "/etc/ssl/private"},
    {"full_key", CFG_SLOT(dir_full_key), key_fields, "/etc/ssl/private"},
    {"full_certificate", CFG_SLOT(dir_full_certificate), key_fields, "/etc/ssl/certs"},
    {"param", CFG_SLOT(dir_param), name_fields, "/etc/ssl/params"},
    {"hpkp", CFG_SLOT(dir_hpkp), hpkp_fields, "/etc/ssl/hpkp"},
    {"ocsp", CFG_SLOT(dir_ocsp), key_fields, "/etc/ssl/ocsp"},
    {"sct", CFG_SLOT(dir_sct), sct_fields, "/etc/ssl/scts/{name}/{key_type}"},
    {"archive", CFG_SLOT(dir_archive), no_fields, "/etc/ssl/archive"},
    {"temp", CFG_SLOT(dir_temp), no_fields, NULL},
};

static const path_setting acmebot_file_names[] = {
    {"log", CFG_SLOT(fn_log), no_fields, "keysvc.log"},
    {"backup_key", CFG_SLOT(fn_backup_key), key_fields, "{name}_backup{suffix}.key"},
    {"previous_key", CFG_SLOT(fn_previous_key), key_fields, "{name}_previous{suffix}.key"},
    {"full_key", CFG_SLOT(fn_full_key), key_fields, "{name}_full{suffix}.key"},
    {"full_certificate", CFG_SLOT(fn_full_certificate), key_fields, "{name}+root{suffix}.pem"},
    {"param", CFG_SLOT(fn_param), name_fields, "{name}_param.pem"},
    {"hpkp", CFG_SLOT(fn_hpkp), hpkp_fields, "{name}.{server}"},
    {"ocsp", CFG_SLOT(fn_ocsp), key_fields, "{name}{suffix}.ocsp"},
    {"sct", CFG_SLOT(fn_sct), sct_fields, "{ct_log_name}.sct"},
    /* keysvc's earlier ones, parsed by config.c, checked here the same way */
    {"certificate", CFG_SLOT(fn_certificate), key_fields, NULL},
    {"chain", CFG_SLOT(fn_chain), key_fields, NULL},
    {"private_key", CFG_SLOT(fn_private_key), key_fields, NULL},
    {"challenge", CFG_SLOT(fn_challenge), name_fields, NULL},
};

#define N_ACMEBOT_FILE_NAMES 9 /* the first entries, which have defaults here */

static char **slot(ks_config *cfg, const path_setting *s)
{
    return (char **)(void *)((char *)cfg + s->offset);
}

int parse_acmebot_directories(cfgp *p, ks_config *cfg, json_object *d)
{
    for (size_t i = 0; i < sizeof(acmebot_dirs) / sizeof(acmebot_dirs[0]); i++) {
        const path_setting *s = &acmebot_dirs[i];
        char cpath[128];
        child_path(cpath, sizeof(cpath), "directories", s->key);
        char **dir = slot(cfg, s);
        if (opt_string(p, d, "directories", s->key, 1, dir) < 0 ||
            (*dir != NULL && cfg_check_format(p, cpath, *dir, s->fields) < 0) ||
            resolve_dir(p, dir) < 0)
            return -1;
    }
    json_object *v = NULL;
    if (json_object_object_get_ex(d, "full_key", &v) && v != NULL)
        p->full_key_set |= FULL_KEY_DIR;
    return 0;
}

int parse_acmebot_file_names(cfgp *p, ks_config *cfg, json_object *f)
{
    for (size_t i = 0; i < sizeof(acmebot_file_names) / sizeof(acmebot_file_names[0]); i++) {
        const path_setting *s = &acmebot_file_names[i];
        char cpath[128];
        child_path(cpath, sizeof(cpath), "file_names", s->key);
        char **name = slot(cfg, s);
        if (opt_string(p, f, "file_names", s->key, 0, name) < 0 ||
            cfg_check_format(p, cpath, *name, s->fields) < 0)
            return -1;
        if (strchr(*name, '/') != NULL)
            return cfail(p, cpath, "a file name holds no '/' (directories are set apart)");
    }
    json_object *v = NULL;
    if (json_object_object_get_ex(f, "full_key", &v))
        p->full_key_set |= FULL_KEY_NAME;
    return 0;
}

void warn_full_key(cfgp *p, const ks_config *cfg)
{
    /* Quiet on acmebot's defaults: only what the user's file asks for. */
    unsigned set = p->full_key_set;
    if (cfg->dir_full_key == NULL)
        set &= FULL_KEY_HOOK;
    if (set == 0)
        return;
    char which[128];
    snprintf(which, sizeof(which), "%s%s%s%s%s", set & FULL_KEY_DIR ? "directories.full_key" : "",
             (set & FULL_KEY_DIR) && (set & (FULL_KEY_NAME | FULL_KEY_HOOK)) ? ", " : "",
             set & FULL_KEY_NAME ? "file_names.full_key" : "",
             (set & FULL_KEY_NAME) && (set & FULL_KEY_HOOK) ? ", " : "",
             set & FULL_KEY_HOOK ? "hooks.full_key_installed" : "");
    ks_warn("%s: %s: full_key outputs (certificate with its private key) cannot exist: the key "
            "never leaves the token; directories.full_key is ignored — set it to null to "
            "silence this%s",
            p->file, which,
            set & FULL_KEY_HOOK ? " (hooks.full_key_installed never runs: remove it)" : "");
}

/* ------------------------------------------------------------- settings */

static const char *const log_levels[] = {"normal", "verbose", "debug", "detail", NULL};

/* slave_mode is follower_mode's old name; both given must agree. */
static int parse_follower(cfgp *p, ks_config *cfg, json_object *s)
{
    int follower = -1, slave = -1;
    if (opt_bool(p, s, "settings", "follower_mode", &follower) < 0 ||
        opt_bool(p, s, "settings", "slave_mode", &slave) < 0)
        return -1;
    if (follower >= 0 && slave >= 0 && follower != slave)
        return cfail(p, "settings.slave_mode",
                     "contradicts settings.follower_mode (slave_mode is its old name: drop it)");
    if (follower >= 0 || slave >= 0)
        cfg->follower_mode = follower >= 0 ? follower : slave;
    return 0;
}

static int parse_log_level(cfgp *p, ks_config *cfg, json_object *s)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(s, "log_level", &v))
        return 0;
    char *level = NULL;
    if (opt_string(p, s, "settings", "log_level", 1, &level) < 0)
        return -1;
    if (level != NULL && !in_set(level, log_levels)) {
        free(level);
        return cfail(p, "settings.log_level",
                     "expected \"normal\", \"verbose\", \"debug\", "
                     "\"detail\" or null (no log file)");
    }
    free(cfg->log_level);
    cfg->log_level = level;
    return 0;
}

/* keysvc writes the named RFC 7919 groups, not generated parameters: no
 * minutes of generation, and clients can check them. */
static int parse_dhparam(cfgp *p, json_object *obj, const char *path, unsigned *bits)
{
    long v = *bits;
    int was_null = 0;
    char cpath[600];
    if (opt_int(p, obj, path, "dhparam_size", 0, 65536, &was_null, &v) < 0)
        return -1;
    if (was_null)
        v = 0;
    if (v != 0 && v != 2048 && v != 3072 && v != 4096 && v != 6144 && v != 8192) {
        child_path(cpath, sizeof(cpath), path, "dhparam_size");
        return cfail(p, cpath,
                     "%ld: keysvc writes the RFC 7919 ffdhe groups, which have 2048, "
                     "3072, 4096, 6144 or 8192 bits; give one of these, or 0/null "
                     "for no DH parameters",
                     v);
    }
    *bits = (unsigned)v;
    return 0;
}

/* One curve of an ecparam_curve list: its NID when keysvc has it, 0 when
 * OpenSSL knows it but keysvc does not (skipped), -1 when nobody does. */
static int ecparam_entry(cfgp *p, json_object *v, const char *path)
{
    if (!json_object_is_type(v, json_type_string))
        return cfail(p, path, "expected a curve name, got %s", type_name(v));
    const ks_curve *curve = ks_curve_by_config_name(json_object_get_string(v));
    if (curve != NULL)
        return curve->nid;
    if (OBJ_sn2nid(json_object_get_string(v)) == NID_undef)
        return cfail(p, path, "\"%s\" is not a curve name", json_object_get_string(v));
    ks_info("%s: %s: keysvc writes secp256r1, secp384r1 or secp521r1 parameters; \"%s\" is "
            "skipped",
            p->file, path, json_object_get_string(v));
    return 0;
}

/* acmebot's ecparam_curve is a curve or a list of them; keysvc writes one
 * curve's parameters: the first one of the list it has. */
static int parse_ecparam(cfgp *p, json_object *obj, const char *path, int *nid)
{
    json_object *v = NULL;
    char cpath[600];
    if (!json_object_object_get_ex(obj, "ecparam_curve", &v))
        return 0;
    if (v == NULL || json_object_is_type(v, json_type_string))
        return parse_curve(p, obj, path, "ecparam_curve", nid);
    child_path(cpath, sizeof(cpath), path, "ecparam_curve");
    if (!json_object_is_type(v, json_type_array))
        return cfail(p, cpath, "expected a curve name, a list of them or null, got %s",
                     type_name(v));
    int first = 0;
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        char ipath[700];
        index_path(ipath, sizeof(ipath), cpath, i);
        int one = ecparam_entry(p, json_object_array_get_idx(v, i), ipath);
        if (one < 0)
            return -1;
        if (first == 0)
            first = one;
    }
    if (first == 0 && json_object_array_length(v) > 0)
        return cfail(p, cpath,
                     "lists no curve keysvc writes (\"secp256r1\", \"secp384r1\" or "
                     "\"secp521r1\")");
    *nid = first;
    return 0;
}

/* The key settings, at settings level or a key's own. */
typedef struct key_settings {
    int *expiration_days;
    int *auto_rollover;
    int *hpkp_days;
    int *pin_subdomains;
    char **hpkp_report_uri;
} key_settings;

/* key_cipher, key_passphrase and key_provided describe key files, which
 * keysvc never writes: accepted (typed as acmebot has them), said once. */
static int parse_key_storage(cfgp *p, json_object *obj, const char *path)
{
    json_object *cipher = NULL, *pass = NULL;
    char *unused = NULL, cpath[600];
    int provided = 0, has_cipher = json_object_object_get_ex(obj, "key_cipher", &cipher),
        has_pass = json_object_object_get_ex(obj, "key_passphrase", &pass);
    if (opt_string(p, obj, path, "key_cipher", 1, &unused) < 0 ||
        opt_bool(p, obj, path, "key_provided", &provided) < 0)
        return -1;
    free(unused);
    child_path(cpath, sizeof(cpath), path, has_cipher ? "key_cipher" : "key_passphrase");
    if (has_pass && pass != NULL && !json_object_is_type(pass, json_type_boolean) &&
        !json_object_is_type(pass, json_type_string))
        return cfail(p, cpath, "expected a passphrase string, true, false or null, got %s",
                     type_name(pass));
    if ((has_cipher || has_pass) && !p->noted_key_cipher) {
        p->noted_key_cipher = 1;
        ks_info("%s: %s: keys are generated in the token and never written to disk; the token "
                "PIN protects them; key_cipher/key_passphrase are ignored",
                p->file, cpath);
    }
    if (provided && !p->noted_key_provided) {
        p->noted_key_provided = 1;
        child_path(cpath, sizeof(cpath), path, "key_provided");
        ks_info("%s: %s: keysvc generates the keys in the token, where they stay; "
                "key_provided is ignored",
                p->file, cpath);
    }
    return 0;
}

static int parse_key_fields(cfgp *p, json_object *obj, const char *path, const key_settings *k)
{
    char upath[600];
    if (opt_int_or_null(p, obj, path, "expiration_days", 36500, k->expiration_days) < 0 ||
        opt_bool(p, obj, path, "auto_rollover", k->auto_rollover) < 0 ||
        opt_int_or_null(p, obj, path, "hpkp_days", 36500, k->hpkp_days) < 0 ||
        opt_bool(p, obj, path, "pin_subdomains", k->pin_subdomains) < 0 ||
        opt_string(p, obj, path, "hpkp_report_uri", 1, k->hpkp_report_uri) < 0 ||
        parse_key_storage(p, obj, path) < 0)
        return -1;
    child_path(upath, sizeof(upath), path, "hpkp_report_uri");
    return *k->hpkp_report_uri ? cfg_check_url(p, upath, *k->hpkp_report_uri) : 0;
}

static int parse_owner_settings(cfgp *p, ks_config *cfg, json_object *s)
{
    return parse_follower(p, cfg, s) < 0 || parse_log_level(p, cfg, s) < 0 ||
                   opt_bool(p, s, "settings", "color_output", &cfg->color_output) < 0 ||
                   opt_bool(p, s, "settings", "warning_exit_code", &cfg->warning_exit_code) < 0 ||
                   opt_string(p, s, "settings", "file_user", 1, &cfg->file_user) < 0 ||
                   opt_string(p, s, "settings", "file_group", 1, &cfg->file_group) < 0 ||
                   opt_string(p, s, "settings", "log_user", 1, &cfg->log_user) < 0 ||
                   opt_string(p, s, "settings", "log_group", 1, &cfg->log_group) < 0
               ? -1
               : 0;
}

static int parse_timing_settings(cfgp *p, ks_config *cfg, json_object *s)
{
    const char *sp = "settings";
    if (opt_int_field(p, s, sp, "max_authorization_attempts", 1, 10000,
                      &cfg->max_authorization_attempts) < 0 ||
        opt_int_field(p, s, sp, "authorization_delay", 0, 3600, &cfg->authorization_delay) < 0 ||
        opt_int_field(p, s, sp, "cert_poll_time", 1, 86400, &cfg->cert_poll_time) < 0 ||
        opt_int_field(p, s, sp, "max_ocsp_verify_attempts", 1, 1000,
                      &cfg->max_ocsp_verify_attempts) < 0 ||
        opt_int_field(p, s, sp, "ocsp_verify_retry_delay", 0, 3600, &cfg->ocsp_verify_retry_delay) <
            0 ||
        opt_int_field(p, s, sp, "min_run_delay", 0, 86400, &cfg->min_run_delay) < 0 ||
        opt_int_field(p, s, sp, "max_run_delay", 0, 86400, &cfg->max_run_delay) < 0)
        return -1;
    if (cfg->min_run_delay > cfg->max_run_delay)
        return cfail(p, "settings.min_run_delay", "%d is more than settings.max_run_delay (%d)",
                     cfg->min_run_delay, cfg->max_run_delay);
    return 0;
}

static int parse_service_settings(cfgp *p, ks_config *cfg, json_object *s)
{
    json_object *v = NULL;
    if (opt_bool(p, s, "settings", "acme_directory_verify_ssl", &cfg->acme_directory_verify_ssl) <
            0 ||
        opt_string(p, s, "settings", "public_suffix_list_url", 1, &cfg->public_suffix_list_url) <
            0 ||
        (cfg->public_suffix_list_url != NULL &&
         cfg_check_url(p, "settings.public_suffix_list_url", cfg->public_suffix_list_url) < 0) ||
        opt_string(p, s, "settings", "nsupdate_command", 1, &cfg->nsupdate_command) < 0 ||
        (cfg->nsupdate_command != NULL &&
         cfg_check_command(p, "settings.nsupdate_command", cfg->nsupdate_command) < 0))
        return -1;
    if (json_object_object_get_ex(s, "verify", &v)) {
        free_verify(cfg->verify, cfg->n_verify);
        cfg->verify = NULL;
        cfg->n_verify = 0;
        if (parse_verify_list(p, v, "settings.verify", &cfg->verify, &cfg->n_verify) < 0)
            return -1;
    }
    /* Resolved once the "services" section is read. */
    if (json_object_object_get_ex(s, "services", &v))
        p->settings_services = v;
    return 0;
}

int parse_acmebot_settings(cfgp *p, ks_config *cfg, json_object *s)
{
    key_settings k = {&cfg->expiration_days, &cfg->auto_rollover, &cfg->hpkp_days,
                      &cfg->pin_subdomains, &cfg->hpkp_report_uri};
    return parse_owner_settings(p, cfg, s) < 0 ||
                   parse_dhparam(p, s, "settings", &cfg->dhparam_size) < 0 ||
                   parse_ecparam(p, s, "settings", &cfg->ecparam_curve) < 0 ||
                   parse_key_fields(p, s, "settings", &k) < 0 ||
                   opt_bool(p, s, "settings", "ocsp_must_staple", &cfg->ocsp_must_staple) < 0 ||
                   cfg_opt_string_list(p, s, "settings", "ocsp_responder_urls", cfg_check_url,
                                       &cfg->ocsp_responder_urls,
                                       &cfg->n_ocsp_responder_urls) < 0 ||
                   cfg_opt_string_list(p, s, "settings", "ct_submit_logs", cfg_check_name,
                                       &cfg->ct_submit_logs, &cfg->n_ct_submit_logs) < 0 ||
                   parse_timing_settings(p, cfg, s) < 0 || parse_service_settings(p, cfg, s) < 0
               ? -1
               : 0;
}

/* ------------------------------------------------------------- sections */

int parse_acmebot_sections(cfgp *p, ks_config *cfg, json_object *root)
{
    json_object *v = NULL;
    size_t *indexes = NULL, n = 0;
    if ((json_object_object_get_ex(root, "services", &v) && parse_services(p, cfg, v) < 0) ||
        (json_object_object_get_ex(root, "hpkp_headers", &v) &&
         parse_hpkp_headers(p, cfg, v) < 0) ||
        (json_object_object_get_ex(root, "ct_logs", &v) && parse_ct_logs(p, cfg, v) < 0))
        return -1;
    /* The settings' references are checked even when no certificate uses
     * them. */
    int rc = resolve_services(p, cfg, p->settings_services, "settings.services", &indexes, &n);
    free(indexes);
    indexes = NULL;
    n = 0;
    if (rc == 0)
        rc = resolve_ct_logs(p, cfg, cfg->ct_submit_logs, cfg->n_ct_submit_logs,
                             "settings.ct_submit_logs", 0, &indexes, &n);
    free(indexes);
    return rc;
}

int parse_authorizations(cfgp *p, ks_config *cfg, json_object *obj)
{
    if (expect_object(p, obj, "authorizations") < 0)
        return -1;
    size_t n = (size_t)json_object_object_length(obj);
    cfg->authorizations = calloc(n ? n : 1, sizeof(*cfg->authorizations));
    if (cfg->authorizations == NULL)
        return ks_fail(p->err, "out of memory");
    json_object_object_foreach(obj, zone, hosts)
    {
        char path[512];
        child_path(path, sizeof(path), "authorizations", zone);
        ks_authorization *a = &cfg->authorizations[cfg->n_authorizations++];
        if ((a->name = lowercase_dup(zone)) == NULL)
            return ks_fail(p->err, "out of memory");
        /* No common name here for "@" to stand for. */
        if (!valid_fqdn(a->name) || a->name[0] == '*')
            return cfail(p, path, "\"%s\" is not a zone name", zone);
        if (parse_zone_hosts(p, a->name, hosts, path, &a->fqdns, NULL, &a->n_fqdns) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------ keys and certificates */

int parse_key_acmebot(cfgp *p, const ks_config *cfg, ks_key_config *k, json_object *obj,
                      const char *path)
{
    k->expiration_days = cfg->expiration_days;
    k->auto_rollover = cfg->auto_rollover;
    k->hpkp_days = cfg->hpkp_days;
    k->pin_subdomains = cfg->pin_subdomains;
    if (cfg->hpkp_report_uri && (k->hpkp_report_uri = strdup(cfg->hpkp_report_uri)) == NULL)
        return ks_fail(p->err, "out of memory");
    key_settings f = {&k->expiration_days, &k->auto_rollover, &k->hpkp_days, &k->pin_subdomains,
                      &k->hpkp_report_uri};
    return obj == NULL ? 0 : parse_key_fields(p, obj, path, &f);
}

static int cert_ocsp(cfgp *p, const ks_config *cfg, ks_cert_config *c, json_object *obj,
                     const char *path)
{
    c->ocsp_must_staple = cfg->ocsp_must_staple;
    if (copy_strings(p, cfg->ocsp_responder_urls, cfg->n_ocsp_responder_urls,
                     &c->ocsp_responder_urls, &c->n_ocsp_responder_urls) < 0)
        return -1;
    return obj == NULL ? 0
           : opt_bool(p, obj, path, "ocsp_must_staple", &c->ocsp_must_staple) < 0 ||
                   cfg_opt_string_list(p, obj, path, "ocsp_responder_urls", cfg_check_url,
                                       &c->ocsp_responder_urls, &c->n_ocsp_responder_urls) < 0
               ? -1
               : 0;
}

int parse_cert_acmebot(cfgp *p, const ks_config *cfg, ks_cert_config *c, json_object *obj,
                       const char *path)
{
    c->dhparam_size = cfg->dhparam_size;
    c->ecparam_curve = cfg->ecparam_curve;
    if (obj != NULL && (parse_dhparam(p, obj, path, &c->dhparam_size) < 0 ||
                        parse_ecparam(p, obj, path, &c->ecparam_curve) < 0))
        return -1;
    return cert_services(p, cfg, c, obj, path) < 0 || cert_ocsp(p, cfg, c, obj, path) < 0 ||
                   cert_ct_logs(p, cfg, c, obj, path) < 0 ||
                   cert_verify(p, cfg, c, obj, path) < 0 || cert_tlsa(p, c, obj, path) < 0
               ? -1
               : 0;
}

void free_cert_acmebot(ks_cert_config *c)
{
    free(c->services);
    cfg_free_strings(c->ocsp_responder_urls, c->n_ocsp_responder_urls);
    free(c->ct_logs);
    free_verify(c->verify, c->n_verify);
    for (size_t i = 0; i < c->n_tlsa_records; i++) {
        free(c->tlsa_records[i].zone);
        free(c->tlsa_records[i].host);
        free(c->tlsa_records[i].protocol);
    }
    free(c->tlsa_records);
}

/* ------------------------------------------------------------- defaults */

/* acmebot's services table (its README and example configuration). */
static const char *const default_services[][2] = {
    {"apache", "systemctl reload apache2"},
    {"coturn", "systemctl restart coturn"},
    {"dovecot", "systemctl restart dovecot"},
    {"etherpad", "systemctl restart etherpad"},
    {"mysql", "systemctl reload mysql"},
    {"nginx", "systemctl reload nginx"},
    {"postfix", "systemctl reload postfix"},
    {"postgresql", "systemctl reload postgresql"},
    {"prosody", "systemctl restart prosody"},
    {"slapd", "systemctl restart slapd"},
    {"synapse", "systemctl restart matrix-synapse"},
    {"znc", "systemctl restart znc"},
};

static const char *const default_hpkp_headers[][2] = {
    {"apache", "Header always set Public-Key-Pins \"{header}\"\n"},
    {"nginx", "add_header Public-Key-Pins \"{header}\" always;\n"},
};

/* The logs acmebot's README names as ct_submit_logs' default, with their
 * keys (whose SHA-256 is the log ID the README gives). */
static const char *const default_ct_logs[][3] = {
    {"google_pilot", "https://ct.googleapis.com/pilot",
     "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfahLEimAoz2t01p3uMziiLOl/fHTDM0YDOhBRuiBARsV4UvxG2LdN"
     "goIGLrtCzWE0J5APC2em4JlvR8EEEFMoA=="},
    {"google_icarus", "https://ct.googleapis.com/icarus",
     "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETtK8v7MICve56qTHHDhhBOuV4IlUaESxZryCfk9QbG9co/CqPvTsg"
     "PDbCpp6oFtyAHwlDhnvr7JijXRD9Cb2FA=="},
};

static int set_default_tables(ks_config *cfg)
{
    for (size_t i = 0; i < sizeof(default_services) / sizeof(default_services[0]); i++)
        if (set_service(cfg, default_services[i][0], strdup(default_services[i][1])) < 0)
            return -1;
    for (size_t i = 0; i < sizeof(default_hpkp_headers) / sizeof(default_hpkp_headers[0]); i++)
        if (set_hpkp_header(cfg, default_hpkp_headers[i][0], strdup(default_hpkp_headers[i][1])) <
            0)
            return -1;
    for (size_t i = 0; i < sizeof(default_ct_logs) / sizeof(default_ct_logs[0]); i++) {
        ks_ct_log *log = new_ct_log(cfg, default_ct_logs[i][0]);
        if (log == NULL || (log->url = strdup(default_ct_logs[i][1])) == NULL ||
            set_ct_key(log, default_ct_logs[i][2]) < 0)
            return -1;
    }
    return 0;
}

static int set_default_paths(ks_config *cfg)
{
    for (size_t i = 0; i < sizeof(acmebot_dirs) / sizeof(acmebot_dirs[0]); i++)
        if (acmebot_dirs[i].def != NULL &&
            (*slot(cfg, &acmebot_dirs[i]) = strdup(acmebot_dirs[i].def)) == NULL)
            return -1;
    for (size_t i = 0; i < N_ACMEBOT_FILE_NAMES; i++)
        if ((*slot(cfg, &acmebot_file_names[i]) = strdup(acmebot_file_names[i].def)) == NULL)
            return -1;
    return 0;
}

int set_acmebot_defaults(ks_config *cfg)
{
    cfg->color_output = 1;
    cfg->dhparam_size = 2048;
    cfg->ecparam_curve = NID_secp384r1;
    cfg->hpkp_days = 60;
    cfg->pin_subdomains = 1;
    cfg->expiration_days = 730;
    cfg->max_authorization_attempts = 30;
    cfg->authorization_delay = 10;
    cfg->cert_poll_time = 30;
    cfg->max_ocsp_verify_attempts = 10;
    cfg->ocsp_verify_retry_delay = 5;
    cfg->min_run_delay = 300;
    cfg->max_run_delay = 3600;
    cfg->acme_directory_verify_ssl = 1;
    cfgp p = {.file = "(defaults)", .err = NULL};
    if ((cfg->log_level = strdup("debug")) == NULL ||
        (cfg->public_suffix_list_url =
             strdup("https://publicsuffix.org/list/public_suffix_list.dat")) == NULL ||
        (cfg->nsupdate_command = strdup("/usr/bin/nsupdate")) == NULL ||
        cfg_append_string(&p, &cfg->ocsp_responder_urls, &cfg->n_ocsp_responder_urls,
                          "http://ocsp.int-x3.letsencrypt.org") < 0 ||
        cfg_append_string(&p, &cfg->ct_submit_logs, &cfg->n_ct_submit_logs, "google_icarus") < 0 ||
        cfg_append_string(&p, &cfg->ct_submit_logs, &cfg->n_ct_submit_logs, "google_pilot") < 0)
        return -1;
    return set_default_paths(cfg) < 0 ? -1 : set_default_tables(cfg);
}

void free_acmebot_config(ks_config *cfg)
{
    for (size_t i = 0; i < sizeof(acmebot_dirs) / sizeof(acmebot_dirs[0]); i++)
        free(*slot(cfg, &acmebot_dirs[i]));
    for (size_t i = 0; i < N_ACMEBOT_FILE_NAMES; i++)
        free(*slot(cfg, &acmebot_file_names[i]));
    char *strings[] = {cfg->log_level,
                       cfg->file_user,
                       cfg->file_group,
                       cfg->log_user,
                       cfg->log_group,
                       cfg->hpkp_report_uri,
                       cfg->public_suffix_list_url,
                       cfg->nsupdate_command};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        free(strings[i]);
    cfg_free_strings(cfg->ocsp_responder_urls, cfg->n_ocsp_responder_urls);
    cfg_free_strings(cfg->ct_submit_logs, cfg->n_ct_submit_logs);
    free_verify(cfg->verify, cfg->n_verify);
    for (size_t i = 0; i < cfg->n_services; i++) {
        free(cfg->services[i].name);
        free(cfg->services[i].command);
    }
    free(cfg->services);
    for (size_t i = 0; i < cfg->n_hpkp_headers; i++) {
        free(cfg->hpkp_headers[i].server);
        free(cfg->hpkp_headers[i].tmpl);
    }
    free(cfg->hpkp_headers);
    for (size_t i = 0; i < cfg->n_ct_logs; i++)
        free_ct_log(&cfg->ct_logs[i]);
    free(cfg->ct_logs);
    for (size_t i = 0; i < cfg->n_authorizations; i++) {
        free(cfg->authorizations[i].name);
        cfg_free_strings(cfg->authorizations[i].fqdns, cfg->authorizations[i].n_fqdns);
    }
    free(cfg->authorizations);
}
