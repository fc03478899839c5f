#include "config.h"
#include "config_internal.h"

#include "hsm.h"

#include "ks_curves.h"
#include "ks_log.h"
#include "ks_util.h"

#include <ctype.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/objects.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_MAX_BYTES (4 * 1024 * 1024)
#define DEFAULT_STATE_DIR "/var/lib/keysvc"

const char *ks_key_type_name(ks_key_type t)
{
    return t == KS_KEY_RSA ? "rsa" : t == KS_KEY_ECDSA ? "ecdsa" : "ed25519";
}

int cfail(cfgp *p, const char *path, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return ks_fail(p->err, "%s: %s: %s", p->file, path[0] ? path : "(top level)", what);
}

/* JSON path of a member: a.b for plain keys, a["x.y"] for others. */
void child_path(char *out, size_t cap, const char *parent, const char *key)
{
    int plain = *key != '\0';
    for (const char *k = key; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '_')
            plain = 0;
    if (plain)
        snprintf(out, cap, "%s%s%s", parent, parent[0] ? "." : "", key);
    else
        snprintf(out, cap, "%s[\"%s\"]", parent, key);
}

void index_path(char *out, size_t cap, const char *parent, size_t i)
{
    snprintf(out, cap, "%s[%zu]", parent, i);
}

const char *type_name(json_object *v)
{
    return v == NULL ? "null" : json_type_to_name(json_object_get_type(v));
}

static int in_list(const char *key, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(key, *list) == 0)
            return 1;
    return 0;
}

/* Reports keys that are neither implemented nor known to acmebot. */
void check_keys(cfgp *p, json_object *obj, const char *path, const char *const *implemented,
                       const char *const *acmebot_only)
{
    json_object_object_foreach(obj, key, val)
    {
        (void)val;
        char cpath[512];
        child_path(cpath, sizeof(cpath), path, key);
        if (in_list(key, implemented))
            continue;
        if (in_list(key, acmebot_only))
            ks_info("%s: %s: acmebot setting not implemented by keysvc yet; ignored", p->file,
                    cpath);
        else
            ks_warn("%s: %s: unknown key; ignored", p->file, cpath);
    }
}

int expect_object(cfgp *p, json_object *v, const char *path)
{
    if (!json_object_is_type(v, json_type_object))
        return cfail(p, path, "expected an object, got %s", type_name(v));
    return 0;
}

/* Absent: *dst keeps its default.  null: *dst becomes NULL when nullable. */
int opt_bool(cfgp *p, json_object *obj, const char *path, const char *key, int *dst)
{
    json_object *v = NULL;
    char cpath[512];
    if (!json_object_object_get_ex(obj, key, &v))
        return 0;
    child_path(cpath, sizeof(cpath), path, key);
    if (!json_object_is_type(v, json_type_boolean))
        return cfail(p, cpath, "expected true or false, got %s", type_name(v));
    *dst = json_object_get_boolean(v);
    return 0;
}

int opt_string(cfgp *p, json_object *obj, const char *path, const char *key, int nullable,
                      char **dst)
{
    json_object *v = NULL;
    char cpath[512];
    if (!json_object_object_get_ex(obj, key, &v))
        return 0;
    child_path(cpath, sizeof(cpath), path, key);
    if (v == NULL) {
        if (!nullable)
            return cfail(p, cpath, "expected a string, got null");
        free(*dst);
        *dst = NULL;
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return cfail(p, cpath, "expected a string%s, got %s", nullable ? " or null" : "",
                     type_name(v));
    if (json_object_get_string_len(v) == 0)
        return cfail(p, cpath, "must not be empty");
    char *copy = strdup(json_object_get_string(v));
    if (copy == NULL)
        return ks_fail(p->err, "out of memory");
    free(*dst);
    *dst = copy;
    return 0;
}

int opt_int(cfgp *p, json_object *obj, const char *path, const char *key, long min,
                   long max, int *null_seen, long *dst)
{
    json_object *v = NULL;
    char cpath[512];
    if (!json_object_object_get_ex(obj, key, &v))
        return 0;
    child_path(cpath, sizeof(cpath), path, key);
    if (v == NULL && null_seen != NULL) {
        *null_seen = 1;
        return 0;
    }
    if (!json_object_is_type(v, json_type_int))
        return cfail(p, cpath, "expected an integer, got %s", type_name(v));
    long n = (long)json_object_get_int64(v);
    if (n < min || n > max)
        return cfail(p, cpath, "%ld is out of range (%ld to %ld)", n, min, max);
    *dst = n;
    return 0;
}

/* Collapses "//" and "/./" and drops a trailing "/" in place, so that one
 * directory has one spelling (the output collision check compares them). */
static void tidy_path(char *path)
{
    char *out = path;
    for (const char *in = path; *in;) {
        if (in[0] == '/' && (in[1] == '/' || (in[1] == '.' && (in[2] == '/' || in[2] == '\0')))) {
            in += in[1] == '/' ? 1 : 2;
            continue;
        }
        *out++ = *in++;
    }
    *out = '\0';
    while (out - path > 1 && out[-1] == '/')
        *--out = '\0';
}

/* Makes a configured path absolute against the config file's directory. */
int resolve_dir(cfgp *p, char **dir)
{
    if (*dir == NULL)
        return 0;
    if ((*dir)[0] != '/') {
        char *abs = ks_strdup_printf("%s/%s", p->base_dir, *dir);
        if (abs == NULL)
            return ks_fail(p->err, "out of memory");
        free(*dir);
        *dir = abs;
    }
    tidy_path(*dir);
    return 0;
}

int parse_curve(cfgp *p, json_object *obj, const char *path, const char *key, int *nid)
{
    char *name = NULL;
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v))
        return 0;
    if (v == NULL) {
        *nid = 0;
        return 0;
    }
    if (opt_string(p, obj, path, key, 0, &name) < 0)
        return -1;
    const ks_curve *curve = ks_curve_by_config_name(name);
    free(name);
    *nid = curve ? curve->nid : 0;
    if (*nid == 0) {
        char cpath[512];
        child_path(cpath, sizeof(cpath), path, key);
        return cfail(p, cpath, "expected \"secp256r1\", \"secp384r1\" or \"secp521r1\"");
    }
    return 0;
}

int parse_rsa_size(cfgp *p, json_object *obj, const char *path, const char *key,
                          unsigned *bits)
{
    long v = *bits;
    int was_null = 0;
    if (opt_int(p, obj, path, key, 0, 16384, &was_null, &v) < 0)
        return -1;
    if (was_null || v == 0) {
        *bits = 0;
        return 0;
    }
    if (v != 2048 && v != 3072 && v != 4096) {
        char cpath[512];
        child_path(cpath, sizeof(cpath), path, key);
        return cfail(p, cpath, "expected 2048, 3072 or 4096 (or 0/null to turn RSA off)");
    }
    *bits = (unsigned)v;
    return 0;
}

int parse_key_type_name(cfgp *p, json_object *v, const char *path, ks_key_type *out)
{
    const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    if (s && strcmp(s, "rsa") == 0)
        *out = KS_KEY_RSA;
    else if (s && strcmp(s, "ecdsa") == 0)
        *out = KS_KEY_ECDSA;
    else
        return cfail(p, path, "expected \"rsa\" or \"ecdsa\"");
    return 0;
}

/* key_types: a list (or one string) of "rsa"/"ecdsa", without repeats. */
int parse_key_types(cfgp *p, json_object *v, const char *path, ks_key_type *types,
                           size_t *n)
{
    *n = 0;
    if (json_object_is_type(v, json_type_string))
        return parse_key_type_name(p, v, path, &types[(*n)++]);
    if (!json_object_is_type(v, json_type_array))
        return cfail(p, path, "expected a list of \"rsa\"/\"ecdsa\", got %s", type_name(v));
    size_t len = json_object_array_length(v);
    if (len == 0)
        return cfail(p, path, "must list at least one key type");
    for (size_t i = 0; i < len; i++) {
        char ipath[512];
        ks_key_type t;
        index_path(ipath, sizeof(ipath), path, i);
        if (parse_key_type_name(p, json_object_array_get_idx(v, i), ipath, &t) < 0)
            return -1;
        for (size_t j = 0; j < *n; j++)
            if (types[j] == t)
                return cfail(p, ipath, "\"%s\" is listed twice", ks_key_type_name(t));
        if (*n == KS_KEY_TYPES)
            return cfail(p, ipath, "too many key types");
        types[(*n)++] = t;
    }
    return 0;
}

static const char *const account_keys[] = {"email",   "key_type",     "key_size", "key_curve",
                                           "eab_kid", "eab_hmac_key", "eab_alg", NULL};

static int parse_account(cfgp *p, ks_config *cfg, json_object *acct)
{
    if (expect_object(p, acct, "account") < 0)
        return -1;
    check_keys(p, acct, "account", account_keys, NULL);
    if (opt_string(p, acct, "account", "email", 1, &cfg->account_email) < 0 ||
        parse_curve(p, acct, "account", "key_curve", &cfg->account_key_curve) < 0 ||
        parse_rsa_size(p, acct, "account", "key_size", &cfg->account_key_size) < 0 ||
        parse_eab(p, acct, "account", &cfg->account_eab_kid, &cfg->account_eab_hmac_key,
                  &cfg->account_eab_alg) < 0)
        return -1;
    json_object *kt = NULL;
    if (json_object_object_get_ex(acct, "key_type", &kt)) {
        /* Ed25519 only for the account key, where the CA accepts EdDSA. */
        if (json_object_is_type(kt, json_type_string) &&
            strcmp(json_object_get_string(kt), "ed25519") == 0)
            cfg->account_key_type = KS_KEY_ED25519;
        else if (parse_key_type_name(p, kt, "account.key_type", &cfg->account_key_type) < 0)
            return cfail(p, "account.key_type", "expected \"ecdsa\", \"rsa\" or \"ed25519\"");
    }
    if (cfg->account_key_type == KS_KEY_RSA && cfg->account_key_size == 0)
        return cfail(p, "account.key_size", "an RSA account key needs a size");
    if (cfg->account_key_type == KS_KEY_ECDSA && cfg->account_key_curve == 0)
        return cfail(p, "account.key_curve", "an ECDSA account key needs a curve");
    return 0;
}

static const char *const settings_keys[] = {
    "acme_directory_url", "acme_ca_file", "acme_max_retry_wait", "key_size", "key_curve",
    "key_types", "renewal_days", "max_domains_per_order", "preferred_chain", "ari",
    "dns_resolvers", "dns_port", "max_dns_lookup_attempts", "dns_lookup_delay",
    "reload_zone_command", "http_responder", "hook_timeout",
    /* acmebot's, read by config_acmebot.c */
    "follower_mode", "slave_mode", "log_level", "color_output", "key_cipher", "key_passphrase",
    "key_provided", "dhparam_size", "ecparam_curve", "file_user", "file_group", "log_user",
    "log_group", "warning_exit_code", "hpkp_days", "pin_subdomains", "hpkp_report_uri",
    "ocsp_must_staple", "ocsp_responder_urls", "ct_submit_logs", "expiration_days",
    "auto_rollover", "max_authorization_attempts", "authorization_delay", "cert_poll_time",
    "max_ocsp_verify_attempts", "ocsp_verify_retry_delay", "min_run_delay", "max_run_delay",
    "acme_directory_verify_ssl", "nsupdate_command", "public_suffix_list_url", "verify",
    "services", NULL};

static int parse_settings(cfgp *p, ks_config *cfg, json_object *s)
{
    if (expect_object(p, s, "settings") < 0)
        return -1;
    check_keys(p, s, "settings", settings_keys, NULL);
    long renewal = cfg->renewal_days, retry_wait = cfg->acme_max_retry_wait;
    long max_domains = cfg->max_domains_per_order;
    if (opt_string(p, s, "settings", "acme_directory_url", 0, &cfg->acme_directory_url) < 0 ||
        opt_string(p, s, "settings", "acme_ca_file", 1, &cfg->acme_ca_file) < 0 ||
        parse_rsa_size(p, s, "settings", "key_size", &cfg->key_size) < 0 ||
        parse_curve(p, s, "settings", "key_curve", &cfg->key_curve) < 0 ||
        opt_int(p, s, "settings", "renewal_days", 0, 3650, NULL, &renewal) < 0 ||
        opt_int(p, s, "settings", "acme_max_retry_wait", 0, 86400, NULL, &retry_wait) < 0 ||
        opt_int(p, s, "settings", "max_domains_per_order", 1, 1000, NULL, &max_domains) < 0 ||
        opt_string(p, s, "settings", "preferred_chain", 1, &cfg->preferred_chain) < 0 ||
        opt_bool(p, s, "settings", "ari", &cfg->ari) < 0 || parse_dns_settings(p, cfg, s) < 0 ||
        parse_acmebot_settings(p, cfg, s) < 0)
        return -1;
    cfg->max_domains_per_order = (int)max_domains;
    cfg->renewal_days = (int)renewal;
    cfg->acme_max_retry_wait = (int)retry_wait;
    json_object *kt = NULL;
    if (json_object_object_get_ex(s, "key_types", &kt) &&
        parse_key_types(p, kt, "settings.key_types", p->settings_types, &p->n_settings_types) < 0)
        return -1;
    if (strncmp(cfg->acme_directory_url, "https://", 8) != 0)
        return cfail(p, "settings.acme_directory_url", "must be an https:// URL");
    return resolve_dir(p, &cfg->acme_ca_file);
}

static const char *const directories_keys[] = {
    "certificate", "chain", "private_key", "state", "previous_key", "update_key", "challenge",
    "http_challenge",
    /* acmebot's, read by config_acmebot.c */
    "pid", "log", "resource", "backup_key", "full_key", "full_certificate", "param", "hpkp",
    "ocsp", "sct", "archive", "temp", NULL};

static int parse_directories(cfgp *p, ks_config *cfg, json_object *d)
{
    if (expect_object(p, d, "directories") < 0)
        return -1;
    check_keys(p, d, "directories", directories_keys, NULL);
    if (opt_string(p, d, "directories", "certificate", 1, &cfg->dir_certificate) < 0 ||
        opt_string(p, d, "directories", "chain", 1, &cfg->dir_chain) < 0 ||
        opt_string(p, d, "directories", "private_key", 1, &cfg->dir_private_key) < 0 ||
        opt_string(p, d, "directories", "state", 0, &cfg->dir_state) < 0 ||
        opt_string(p, d, "directories", "previous_key", 1, &cfg->dir_previous_key) < 0 ||
        opt_string(p, d, "directories", "update_key", 0, &cfg->dir_update_key) < 0 ||
        opt_string(p, d, "directories", "challenge", 0, &cfg->dir_challenge) < 0 ||
        opt_string(p, d, "directories", "http_challenge", 1, &cfg->http_challenge_template) < 0 ||
        parse_acmebot_directories(p, cfg, d) < 0)
        return -1;
    return resolve_dir(p, &cfg->dir_update_key) < 0 || resolve_dir(p, &cfg->dir_challenge) < 0 ||
                   resolve_dir(p, &cfg->http_challenge_template) < 0
               ? -1
               : 0;
}

static const char *const file_names_keys[] = {
    "certificate", "chain", "private_key", "challenge",
    /* acmebot's, read by config_acmebot.c */
    "log", "backup_key", "previous_key", "full_key", "full_certificate", "param", "hpkp", "ocsp",
    "sct", NULL};

static int parse_file_names(cfgp *p, ks_config *cfg, json_object *f)
{
    if (expect_object(p, f, "file_names") < 0)
        return -1;
    check_keys(p, f, "file_names", file_names_keys, NULL);
    if (opt_string(p, f, "file_names", "certificate", 0, &cfg->fn_certificate) < 0 ||
        opt_string(p, f, "file_names", "chain", 0, &cfg->fn_chain) < 0 ||
        opt_string(p, f, "file_names", "private_key", 0, &cfg->fn_private_key) < 0 ||
        opt_string(p, f, "file_names", "challenge", 0, &cfg->fn_challenge) < 0)
        return -1;
    return parse_acmebot_file_names(p, cfg, f);
}

static int parse_suffixes(cfgp *p, ks_config *cfg, json_object *s)
{
    static const char *const keys[] = {"rsa", "ecdsa", NULL};
    if (expect_object(p, s, "key_type_suffixes") < 0)
        return -1;
    check_keys(p, s, "key_type_suffixes", keys, NULL);
    for (int t = 0; t < KS_KEY_TYPES; t++) {
        json_object *v = NULL;
        char cpath[512];
        if (!json_object_object_get_ex(s, keys[t], &v))
            continue;
        child_path(cpath, sizeof(cpath), "key_type_suffixes", keys[t]);
        if (!json_object_is_type(v, json_type_string))
            return cfail(p, cpath, "expected a string, got %s", type_name(v));
        free(cfg->suffix[t]);
        cfg->suffix[t] = strdup(json_object_get_string(v));
        if (cfg->suffix[t] == NULL)
            return ks_fail(p->err, "out of memory");
    }
    return 0;
}

static const char *const hsm_keys[] = {"module",   "token",    "token_serial",
                                       "pin_env",  "pin_file", "server_pin_source", NULL};

/* Without a "tenants" section, the token named in "hsm" is the tenant
 * "default". */
static int add_default_tenant(cfgp *p, ks_config *cfg)
{
    ks_tenant_config *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ks_fail(p->err, "out of memory");
    t->name = strdup("default");
    t->token = cfg->hsm_token ? strdup(cfg->hsm_token) : NULL;
    t->token_serial = cfg->hsm_token_serial ? strdup(cfg->hsm_token_serial) : NULL;
    t->pin_env = cfg->hsm_pin_env ? strdup(cfg->hsm_pin_env) : NULL;
    t->pin_file = cfg->hsm_pin_file ? strdup(cfg->hsm_pin_file) : NULL;
    cfg->tenants = t;
    cfg->n_tenants = 1;
    return t->name ? 0 : ks_fail(p->err, "out of memory");
}

static int parse_hsm(cfgp *p, ks_config *cfg, json_object *h)
{
    if (expect_object(p, h, "hsm") < 0)
        return -1;
    check_keys(p, h, "hsm", hsm_keys, NULL);
    if (opt_string(p, h, "hsm", "module", 0, &cfg->hsm_module) < 0 ||
        opt_string(p, h, "hsm", "token", 0, &cfg->hsm_token) < 0 ||
        opt_string(p, h, "hsm", "token_serial", 0, &cfg->hsm_token_serial) < 0 ||
        opt_string(p, h, "hsm", "pin_env", 0, &cfg->hsm_pin_env) < 0 ||
        opt_string(p, h, "hsm", "pin_file", 0, &cfg->hsm_pin_file) < 0 ||
        opt_string(p, h, "hsm", "server_pin_source", 0, &cfg->hsm_server_pin_source) < 0)
        return -1;
    if (resolve_dir(p, &cfg->hsm_pin_file) < 0)
        return -1;
    if (cfg->hsm_token == NULL && cfg->hsm_token_serial == NULL)
        return 0; /* no default tenant: "tenants" must name them */
    if ((cfg->hsm_pin_env != NULL) == (cfg->hsm_pin_file != NULL))
        return cfail(p, "hsm", "give exactly one of \"pin_env\" and \"pin_file\"");
    return add_default_tenant(p, cfg);
}

static int parse_signer(cfgp *p, ks_config *cfg, json_object *sg)
{
    static const char *const keys[] = {"socket", "socket_group", "user", NULL};
    if (expect_object(p, sg, "signer") < 0)
        return -1;
    check_keys(p, sg, "signer", keys, NULL);
    if (opt_string(p, sg, "signer", "socket", 0, &cfg->signer_socket) < 0 ||
        opt_string(p, sg, "signer", "socket_group", 0, &cfg->signer_socket_group) < 0 ||
        opt_string(p, sg, "signer", "user", 0, &cfg->signer_user) < 0)
        return -1;
    return resolve_dir(p, &cfg->signer_socket);
}

static int parse_database(cfgp *p, ks_config *cfg, json_object *d)
{
    static const char *const keys[] = {"url", "run_as", NULL};
    if (expect_object(p, d, "database") < 0)
        return -1;
    check_keys(p, d, "database", keys, NULL);
    return opt_string(p, d, "database", "url", 1, &cfg->database_url) < 0 ||
                   opt_string(p, d, "database", "run_as", 0, &cfg->database_run_as) < 0
               ? -1
               : 0;
}

static int parse_http_challenges(cfgp *p, ks_config *cfg, json_object *hc)
{
    if (expect_object(p, hc, "http_challenges") < 0)
        return -1;
    size_t n = (size_t)json_object_object_length(hc);
    cfg->http_challenges = calloc(n ? n : 1, sizeof(*cfg->http_challenges));
    if (cfg->http_challenges == NULL)
        return ks_fail(p->err, "out of memory");
    json_object_object_foreach(hc, fqdn, dir)
    {
        char path[512];
        child_path(path, sizeof(path), "http_challenges", fqdn);
        ks_http_challenge *h = &cfg->http_challenges[cfg->n_http_challenges++];
        h->fqdn = lowercase_dup(fqdn);
        if (h->fqdn == NULL || !valid_fqdn(h->fqdn) || h->fqdn[0] == '*')
            return cfail(p, path, "\"%s\" is not a valid host name", fqdn);
        if (dir == NULL)
            continue;
        if (!json_object_is_type(dir, json_type_string) || json_object_get_string_len(dir) == 0)
            return cfail(p, path, "expected a directory name or null, got %s", type_name(dir));
        h->directory = strdup(json_object_get_string(dir));
        if (h->directory == NULL)
            return ks_fail(p->err, "out of memory");
        if (resolve_dir(p, &h->directory) < 0)
            return -1;
    }
    return 0;
}

static int set_defaults(ks_config *cfg)
{
    cfg->account_key_type = KS_KEY_ECDSA;
    cfg->account_key_curve = NID_X9_62_prime256v1;
    cfg->account_key_size = 2048;
    cfg->acme_directory_url = strdup("https://acme-v02.api.letsencrypt.org/directory");
    cfg->key_size = 4096;
    cfg->key_curve = NID_secp384r1;
    cfg->renewal_days = 30;
    cfg->acme_max_retry_wait = 120;
    cfg->max_domains_per_order = 100;
    cfg->ari = 1;
    cfg->dns_hook_timeout = 300;
    cfg->hook_timeout = 300;
    cfg->dns.auth_port = 53;
    cfg->dns.timeout_s = 3;
    cfg->max_dns_lookup_attempts = 60; /* acmebot's documented default */
    cfg->dns_lookup_delay = 10;
    cfg->dir_update_key = strdup("/etc/ssl/update_keys");
    cfg->dir_challenge = strdup("/etc/ssl/challenges");
    cfg->fn_challenge = strdup("{name}");
    cfg->dir_certificate = strdup("/etc/ssl/certs");
    cfg->dir_chain = strdup("/etc/ssl/certs");
    cfg->dir_private_key = strdup("/etc/ssl/private");
    cfg->dir_state = strdup(DEFAULT_STATE_DIR);
    cfg->fn_certificate = strdup("{name}{suffix}.pem");
    cfg->fn_chain = strdup("{name}_chain{suffix}.pem");
    cfg->fn_private_key = strdup("{name}{suffix}.key");
    cfg->suffix[KS_KEY_RSA] = strdup(".rsa");
    cfg->suffix[KS_KEY_ECDSA] = strdup(".ecdsa");
    cfg->hsm_module = strdup(HSM_DEFAULT_MODULE);
    if (set_acmebot_defaults(cfg) < 0)
        return -1;
    return cfg->acme_directory_url && cfg->dir_certificate && cfg->dir_chain &&
                   cfg->dir_private_key && cfg->dir_state && cfg->fn_certificate &&
                   cfg->fn_chain && cfg->fn_private_key && cfg->suffix[0] && cfg->suffix[1] &&
                   cfg->hsm_module && cfg->dir_update_key && cfg->dir_challenge && cfg->fn_challenge
               ? 0
               : -1;
}

/* acmebot's sections and keysvc's own.  acmebot has no top-level "verify"
 * or "tlsa_records": they belong to settings and certificates. */
static const char *const top_keys[] = {
    "account",          "settings", "directories", "file_names", "key_type_suffixes",
    "certificates",     "private_keys", "http_challenges", "hsm", "database",
    "tenants",          "signer",   "tls_alpn_challenges", "dns_hooks",
    "zone_update_keys", "hooks",    "services",    "authorizations", "hpkp_headers",
    "ct_logs",          NULL};

/* One output file a configuration implies, for the collision check. */
typedef struct output_file {
    char *path;
    const char *cert;
    ks_key_type type;
    const char *kind;
} output_file;

static int compare_output(const void *a, const void *b)
{
    return strcmp(((const output_file *)a)->path, ((const output_file *)b)->path);
}

static int add_output(cfgp *p, const ks_config *cfg, output_file *files, size_t *n,
                      const char *dir, const char *tmpl, const char *name, ks_key_type type,
                      const char *kind)
{
    if (dir == NULL)
        return 0;
    char *path = ks_config_output_path(cfg, dir, tmpl, name, type, p->err);
    if (path == NULL)
        return -1;
    files[(*n)++] = (output_file){path, name, type, kind};
    return 0;
}

/* Two outputs with one path would overwrite each other on every run (for
 * example equal key type suffixes, or a certificate named "a_chain"). */
static int check_output_collisions(cfgp *p, const ks_config *cfg)
{
    size_t cap = 0, n = 0;
    for (size_t i = 0; i < cfg->n_certs; i++)
        cap += cfg->certs[i].n_key_types * 2;
    for (size_t i = 0; i < cfg->n_keys; i++)
        cap += cfg->keys[i].n_key_types;
    output_file *files = calloc(cap ? cap : 1, sizeof(*files));
    if (files == NULL)
        return ks_fail(p->err, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < cfg->n_certs && rc == 0; i++) {
        const ks_cert_config *c = &cfg->certs[i];
        for (size_t t = 0; t < c->n_key_types && rc == 0; t++) {
            ks_key_type type = c->key_types[t];
            rc = add_output(p, cfg, files, &n, cfg->dir_certificate, cfg->fn_certificate,
                            c->name, type, "certificate");
            if (rc == 0)
                rc = add_output(p, cfg, files, &n, cfg->dir_chain, cfg->fn_chain, c->name,
                                type, "chain");
        }
    }
    /* Key files are named after the private key, shared by its certificates. */
    for (size_t i = 0; i < cfg->n_keys && rc == 0; i++) {
        const ks_key_config *k = &cfg->keys[i];
        for (size_t t = 0; t < k->n_key_types && rc == 0; t++)
            rc = add_output(p, cfg, files, &n, cfg->dir_private_key, cfg->fn_private_key,
                            k->name, k->key_types[t], "private_key");
    }
    if (rc == 0)
        qsort(files, n, sizeof(*files), compare_output);
    for (size_t i = 1; i < n && rc == 0; i++) {
        const output_file *a = &files[i - 1], *b = &files[i];
        if (strcmp(a->path, b->path) == 0)
            rc = cfail(p, "file_names",
                       "the %s file of \"%s\" (%s) and the %s file of \"%s\" (%s) would both "
                       "be %s",
                       a->kind, a->cert, ks_key_type_name(a->type), b->kind, b->cert,
                       ks_key_type_name(b->type), a->path);
    }
    for (size_t i = 0; i < n; i++)
        free(files[i].path);
    free(files);
    return rc;
}

/* Sections are read in dependency order, not file order: settings first. */
static int parse_root(cfgp *p, ks_config *cfg, json_object *root)
{
    if (!json_object_is_type(root, json_type_object))
        return cfail(p, "", "expected a JSON object, got %s", type_name(root));
    check_keys(p, root, "", top_keys, NULL);
    json_object *v = NULL, *certs = NULL, *private_keys = NULL;
    if ((json_object_object_get_ex(root, "settings", &v) && parse_settings(p, cfg, v) < 0) ||
        (json_object_object_get_ex(root, "account", &v) && parse_account(p, cfg, v) < 0) ||
        (json_object_object_get_ex(root, "directories", &v) &&
         parse_directories(p, cfg, v) < 0) ||
        (json_object_object_get_ex(root, "file_names", &v) && parse_file_names(p, cfg, v) < 0) ||
        (json_object_object_get_ex(root, "key_type_suffixes", &v) &&
         parse_suffixes(p, cfg, v) < 0) ||
        (json_object_object_get_ex(root, "http_challenges", &v) &&
         parse_http_challenges(p, cfg, v) < 0) ||
        (json_object_object_get_ex(root, "tls_alpn_challenges", &v) &&
         parse_tls_alpn_challenges(p, cfg, v) < 0) ||
        (json_object_object_get_ex(root, "dns_hooks", &v) && parse_dns_hooks(p, cfg, v) < 0) ||
        (json_object_object_get_ex(root, "zone_update_keys", &v) &&
         parse_zone_update_keys(p, cfg, v) < 0) ||
        (json_object_object_get_ex(root, "hooks", &v) && parse_hooks(p, cfg, v) < 0) ||
        check_http_template(p, cfg) < 0 || parse_acmebot_sections(p, cfg, root) < 0 ||
        (json_object_object_get_ex(root, "database", &v) && parse_database(p, cfg, v) < 0) ||
        (json_object_object_get_ex(root, "signer", &v) && parse_signer(p, cfg, v) < 0))
        return -1;
    if (!json_object_object_get_ex(root, "hsm", &v))
        return cfail(p, "hsm", "keysvc needs an \"hsm\" section (the module, and the token)");
    if (parse_hsm(p, cfg, v) < 0 ||
        (json_object_object_get_ex(root, "tenants", &v) && parse_tenants(p, cfg, v) < 0))
        return -1;
    if (cfg->n_tenants == 0)
        return cfail(p, "hsm.token", "name the token to use (\"token\", its label, or "
                                     "\"token_serial\"), or configure \"tenants\"");
    json_object_object_get_ex(root, "certificates", &certs);
    json_object_object_get_ex(root, "private_keys", &private_keys);
    if (parse_keys_and_certificates(p, cfg, certs, private_keys) < 0 ||
        (json_object_object_get_ex(root, "authorizations", &v) &&
         parse_authorizations(p, cfg, v) < 0))
        return -1;
    if (resolve_dir(p, &cfg->dir_certificate) < 0 || resolve_dir(p, &cfg->dir_chain) < 0 ||
        resolve_dir(p, &cfg->dir_private_key) < 0 || resolve_dir(p, &cfg->dir_state) < 0 ||
        check_output_collisions(p, cfg) < 0)
        return -1;
    warn_full_key(p, cfg);
    return 0;
}

/* Line and column of a byte offset, for syntax errors. */
static void offset_to_line_col(const char *text, size_t offset, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < offset && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static json_object *parse_json_text(const char *path, const char *text, size_t len, ks_err *err)
{
    json_tokener *tok = json_tokener_new();
    if (tok == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (root == NULL && jerr == json_tokener_success) {
        /* The document is the literal null. */
        ks_fail(err, "%s: (top level): expected a JSON object, got null", path);
    } else if (root == NULL || jerr != json_tokener_success) {
        int line, col;
        if (jerr == json_tokener_continue)
            jerr = json_tokener_error_parse_eof;
        offset_to_line_col(text, end, &line, &col);
        ks_fail(err, "%s:%d:%d: JSON syntax error: %s", path, line, col,
                json_tokener_error_desc(jerr));
        json_object_put(root);
        root = NULL;
    } else {
        /* Anything but whitespace after the document is a mistake too. */
        for (size_t i = end; i < len; i++) {
            if (!isspace((unsigned char)text[i])) {
                int line, col;
                offset_to_line_col(text, i, &line, &col);
                ks_fail(err, "%s:%d:%d: JSON syntax error: text after the end of the document",
                        path, line, col);
                json_object_put(root);
                root = NULL;
                break;
            }
        }
    }
    json_tokener_free(tok);
    return root;
}

ks_config *ks_config_load(const char *path, ks_err *err)
{
    size_t len = 0;
    char *text = ks_read_file(path, CONFIG_MAX_BYTES, &len, err);
    if (text == NULL) {
        ks_failp(err, "reading configuration");
        return NULL;
    }
    json_object *root = parse_json_text(path, text, len, err);
    free(text);
    if (root == NULL)
        return NULL;
    ks_config *cfg = calloc(1, sizeof(*cfg));
    char *copy = strdup(path);
    if (cfg == NULL || copy == NULL || set_defaults(cfg) < 0) {
        ks_fail(err, "out of memory");
        free(copy);
        ks_config_free(cfg);
        json_object_put(root);
        return NULL;
    }
    cfg->path = strdup(path);
    char *abs = realpath(dirname(copy), NULL);
    cfg->base_dir = abs ? abs : strdup(".");
    free(copy);
    cfgp p = {.file = path,
              .base_dir = cfg->base_dir,
              .err = err,
              .settings_types = {KS_KEY_RSA, KS_KEY_ECDSA},
              .n_settings_types = 2};
    int rc = parse_root(&p, cfg, root);
    json_object_put(root);
    if (rc < 0) {
        ks_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void ks_config_free(ks_config *cfg)
{
    if (cfg == NULL)
        return;
    char **strings[] = {&cfg->path,           &cfg->base_dir,        &cfg->account_email,
                        &cfg->acme_directory_url, &cfg->acme_ca_file, &cfg->dir_certificate,
                        &cfg->dir_chain,      &cfg->dir_private_key, &cfg->dir_state,
                        &cfg->fn_certificate, &cfg->fn_chain,        &cfg->fn_private_key,
                        &cfg->suffix[0],      &cfg->suffix[1],       &cfg->hsm_module,
                        &cfg->hsm_token,      &cfg->hsm_token_serial, &cfg->hsm_pin_env,
                        &cfg->hsm_pin_file,   &cfg->hsm_server_pin_source,
                        &cfg->database_url,   &cfg->database_run_as, &cfg->dir_previous_key,
                        &cfg->signer_socket,  &cfg->signer_socket_group, &cfg->signer_user,
                        &cfg->account_eab_kid, &cfg->account_eab_hmac_key, &cfg->account_eab_alg,
                        &cfg->preferred_chain,
                        &cfg->dns_auth_hook, &cfg->dns_cleanup_hook};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        free(*strings[i]);
    for (size_t i = 0; i < cfg->n_http_challenges; i++) {
        free(cfg->http_challenges[i].fqdn);
        free(cfg->http_challenges[i].directory);
    }
    free(cfg->http_challenges);
    free_challenges(cfg);
    free_dns_config(cfg);
    free_keys_and_certificates(cfg);
    free_acmebot_config(cfg);
    free(cfg);
}

char *ks_config_output_path(const ks_config *cfg, const char *dir, const char *tmpl,
                            const char *name, ks_key_type type, ks_err *err)
{
    ks_path_fields fields = {.name = name, .key_type = (int)type};
    return ks_config_path_new(cfg, dir, tmpl, &fields, err);
}
