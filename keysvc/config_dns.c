/*
 * config_dns.c: the acmebot sections and settings for dns-01 and http-01
 * (zone_update_keys, local updates, DNS lookups, directories.http_challenge,
 * the built-in http-01 responder) and acmebot's "hooks".
 */
#include "config_internal.h"

#include "dns_tsig.h"
#include "hook.h"
#include "ks_log.h"
#include "ks_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ settings */

static int parse_resolvers(cfgp *p, ks_config *cfg, json_object *list)
{
    const char *path = "settings.dns_resolvers";
    if (!json_object_is_type(list, json_type_array))
        return cfail(p, path, "expected a list of \"ip[:port]\" strings, got %s",
                     type_name(list));
    size_t n = json_object_array_length(list);
    if (n > KS_DNS_MAX_RESOLVERS)
        return cfail(p, path, "at most %d resolvers", KS_DNS_MAX_RESOLVERS);
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(list, i);
        char ipath[128];
        index_path(ipath, sizeof(ipath), path, i);
        if (!json_object_is_type(v, json_type_string) ||
            ks_dns_server_parse(json_object_get_string(v), 53, &cfg->dns.resolvers[i]) < 0)
            return cfail(p, ipath, "expected \"ip\", \"ip:port\" or \"[ipv6]:port\" with an IP "
                                   "address (a resolver is never looked up by name)");
    }
    cfg->dns.n_resolvers = n;
    return 0;
}

/* "address:port" of the built-in http-01 responder. */
static int parse_http_responder(cfgp *p, ks_config *cfg, json_object *v)
{
    ks_dns_server where;
    const char *path = "settings.http_responder";
    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string) ||
        ks_dns_server_parse(json_object_get_string(v), 80, &where) < 0)
        return cfail(p, path, "expected \"address:port\" with an IP address (for example "
                              "\"0.0.0.0:80\" or \"[::]:80\")");
    cfg->http_responder_address = strdup(where.addr);
    cfg->http_responder_port = where.port;
    return cfg->http_responder_address ? 0 : ks_fail(p->err, "out of memory");
}

int parse_dns_settings(cfgp *p, ks_config *cfg, json_object *s)
{
    long port = cfg->dns.auth_port, attempts = cfg->max_dns_lookup_attempts;
    long delay = cfg->dns_lookup_delay, hook_timeout = cfg->hook_timeout;
    json_object *v = NULL;
    if (opt_int(p, s, "settings", "dns_port", 1, 65535, NULL, &port) < 0 ||
        opt_int(p, s, "settings", "max_dns_lookup_attempts", 1, 10000, NULL, &attempts) < 0 ||
        opt_int(p, s, "settings", "dns_lookup_delay", 0, 3600, NULL, &delay) < 0 ||
        opt_int(p, s, "settings", "hook_timeout", 1, 86400, NULL, &hook_timeout) < 0 ||
        opt_string(p, s, "settings", "reload_zone_command", 1, &cfg->reload_zone_command) < 0)
        return -1;
    cfg->dns.auth_port = (int)port;
    cfg->max_dns_lookup_attempts = (int)attempts;
    cfg->dns_lookup_delay = (int)delay;
    cfg->hook_timeout = (int)hook_timeout;
    if (json_object_object_get_ex(s, "dns_resolvers", &v) && v != NULL &&
        parse_resolvers(p, cfg, v) < 0)
        return -1;
    if (json_object_object_get_ex(s, "http_responder", &v) && parse_http_responder(p, cfg, v) < 0)
        return -1;
    if (cfg->reload_zone_command != NULL) {
        char **argv = NULL;
        ks_err why = {{0}};
        if (ks_split_words(cfg->reload_zone_command, &argv, &why) < 0)
            return cfail(p, "settings.reload_zone_command", "%s", why.msg);
        ks_words_free(argv);
    }
    return 0;
}

/* ---------------------------------------------------- zone_update_keys */

/* The key file must load now: a wrong path or a broken key is a
 * configuration error, not a surprise in the middle of a validation. */
static int check_key_file(cfgp *p, const char *path, const char *file)
{
    ks_tsig_key key = {0};
    ks_err why = {{0}};
    int rc = ks_tsig_key_load(file, &key, &why);
    /* libldns 1.8 (Debian 12) signs neither: it has no hmac-sha224 and
     * misspells hmac-sha384, so the server would see a bad signature. */
    int unsupported = rc == 0 && (strcmp(key.algorithm, "hmac-sha224.") == 0 ||
                                  strcmp(key.algorithm, "hmac-sha384.") == 0);
    char alg[32];
    /* "hmac-sha384." as libldns names it, without the final dot */
    snprintf(alg, sizeof(alg), "%.*s", rc == 0 ? (int)strlen(key.algorithm) - 1 : 0,
             rc == 0 ? key.algorithm : "");
    ks_tsig_key_clear(&key);
    if (rc < 0)
        return cfail(p, path, "%s", why.msg);
    if (unsupported)
        return cfail(p, path, "%s: the DNS library cannot sign with %s; use hmac-sha256, "
                              "hmac-sha512, hmac-sha1 or hmac-md5", file, alg);
    return 0;
}

static int parse_key_object(cfgp *p, ks_zone_key *k, json_object *obj, const char *path)
{
    static const char *const keys[] = {"file", "server", "port", NULL};
    long port = 0;
    check_keys(p, obj, path, keys, NULL);
    if (opt_string(p, obj, path, "file", 0, &k->file) < 0 ||
        opt_string(p, obj, path, "server", 1, &k->server) < 0 ||
        opt_int(p, obj, path, "port", 1, 65535, NULL, &port) < 0)
        return -1;
    k->port = (int)port;
    return 0;
}

/* The zone name: lower case, no trailing dot. */
static char *zone_name_new(const char *text)
{
    char *z = lowercase_dup(text);
    size_t len = z ? strlen(z) : 0;
    if (len > 1 && z[len - 1] == '.')
        z[len - 1] = '\0';
    return z;
}

static int parse_zone_key(cfgp *p, ks_config *cfg, const char *zone, json_object *v)
{
    char path[512];
    child_path(path, sizeof(path), "zone_update_keys", zone);
    ks_zone_key *k = &cfg->zone_keys[cfg->n_zone_keys];
    memset(k, 0, sizeof(*k));
    if (v == NULL) /* acmebot: a null key means the zone has none */
        return 0;
    if ((k->zone = zone_name_new(zone)) == NULL)
        return ks_fail(p->err, "out of memory");
    cfg->n_zone_keys++;
    if (!valid_fqdn(k->zone) || k->zone[0] == '*')
        return cfail(p, path, "\"%s\" is not a zone name", zone);
    if (json_object_is_type(v, json_type_string)) {
        if ((k->file = strdup(json_object_get_string(v))) == NULL)
            return ks_fail(p->err, "out of memory");
    } else if (json_object_is_type(v, json_type_object)) {
        if (parse_key_object(p, k, v, path) < 0)
            return -1;
        if (k->file == NULL)
            return cfail(p, path, "\"file\" is required (the zone's TSIG key file)");
    } else {
        return cfail(p, path, "expected a key file name or {\"file\", \"server\", \"port\"}, "
                              "got %s", type_name(v));
    }
    if (k->file[0] != '/') { /* relative to directories.update_key, as acmebot */
        char *joined = ks_strdup_printf("%s/%s", cfg->dir_update_key, k->file);
        if (joined == NULL)
            return ks_fail(p->err, "out of memory");
        free(k->file);
        k->file = joined;
    }
    return check_key_file(p, path, k->file);
}

int parse_zone_update_keys(cfgp *p, ks_config *cfg, json_object *obj)
{
    if (expect_object(p, obj, "zone_update_keys") < 0)
        return -1;
    size_t n = (size_t)json_object_object_length(obj);
    cfg->zone_keys = calloc(n ? n : 1, sizeof(*cfg->zone_keys));
    if (cfg->zone_keys == NULL)
        return ks_fail(p->err, "out of memory");
    json_object_object_foreach(obj, zone, v)
    {
        if (parse_zone_key(p, cfg, zone, v) < 0)
            return -1;
        for (size_t i = 0; cfg->n_zone_keys > 0 && i + 1 < cfg->n_zone_keys; i++)
            if (strcmp(cfg->zone_keys[i].zone, cfg->zone_keys[cfg->n_zone_keys - 1].zone) == 0)
                return cfail(p, "zone_update_keys", "zone %s is listed twice",
                             cfg->zone_keys[i].zone);
    }
    return 0;
}

/* ---------------------------------------------------------------- hooks */

typedef struct hook_spec {
    const char *name;
    const char *fields[7];
} hook_spec;

/* acmebot's hooks and the fields each template may use.  Key files become
 * key URIs; "passphrase" is accepted and always empty (the token's PIN
 * protects the keys). */
static const hook_spec hook_specs[KS_HOOK_COUNT] = {
    [KS_HOOK_SET_DNS_CHALLENGE] = {"set_dns_challenge", {"domain", "zone", "challenge"}},
    [KS_HOOK_CLEAR_DNS_CHALLENGE] = {"clear_dns_challenge", {"domain", "zone", "challenge"}},
    [KS_HOOK_DNS_ZONE_UPDATE] = {"dns_zone_update", {"zone"}},
    [KS_HOOK_SET_HTTP_CHALLENGE] = {"set_http_challenge", {"domain", "challenge_file"}},
    [KS_HOOK_CLEAR_HTTP_CHALLENGE] = {"clear_http_challenge", {"domain", "challenge_file"}},
    [KS_HOOK_PRIVATE_KEY_ROLLOVER] = {"private_key_rollover",
                                      {"key_name", "key_type", "private_key_file",
                                       "backup_key_file", "previous_key_file", "passphrase"}},
    [KS_HOOK_PRIVATE_KEY_INSTALLED] = {"private_key_installed",
                                       {"key_name", "key_type", "private_key_file",
                                        "passphrase"}},
    [KS_HOOK_BACKUP_KEY_INSTALLED] = {"backup_key_installed",
                                      {"key_name", "key_type", "backup_key_file", "passphrase"}},
    [KS_HOOK_PREVIOUS_KEY_INSTALLED] = {"previous_key_installed",
                                        {"key_name", "key_type", "previous_key_file",
                                         "passphrase"}},
    [KS_HOOK_HPKP_HEADER_INSTALLED] = {"hpkp_header_installed",
                                       {"key_name", "server", "header", "hpkp_file"}},
    [KS_HOOK_CERTIFICATE_INSTALLED] = {"certificate_installed",
                                       {"key_name", "key_type", "certificate_name",
                                        "certificate_file"}},
    [KS_HOOK_FULL_CERTIFICATE_INSTALLED] = {"full_certificate_installed",
                                            {"key_name", "key_type", "certificate_name",
                                             "full_certificate_file"}},
    [KS_HOOK_CHAIN_INSTALLED] = {"chain_installed",
                                 {"key_name", "key_type", "certificate_name", "chain_file"}},
    [KS_HOOK_FULL_KEY_INSTALLED] = {"full_key_installed",
                                    {"key_name", "key_type", "certificate_name",
                                     "full_key_file"}},
    [KS_HOOK_PARAMS_INSTALLED] = {"params_installed",
                                  {"key_name", "certificate_name", "params_file"}},
    [KS_HOOK_SCT_INSTALLED] = {"sct_installed",
                               {"key_name", "key_type", "certificate_name", "ct_log_name",
                                "sct_file"}},
    [KS_HOOK_OCSP_INSTALLED] = {"ocsp_installed",
                                {"key_name", "key_type", "certificate_name", "ocsp_file"}},
};

const char *ks_hook_name(ks_hook_id id)
{
    return id < KS_HOOK_COUNT ? hook_specs[id].name : "?";
}

/* A template is expanded once with placeholder values now, so that an
 * unknown field or a broken quote is a configuration error. */
static int check_template(cfgp *p, const char *path, const hook_spec *spec, const char *tmpl)
{
    ks_hook_var fields[7];
    size_t n = 0;
    for (; n < 7 && spec->fields[n] != NULL; n++)
        fields[n] = (ks_hook_var){spec->fields[n], "x"};
    char **argv = NULL;
    ks_err why = {{0}};
    if (ks_template_argv(tmpl, fields, n, &argv, &why) < 0) {
        char known[200] = "";
        for (size_t i = 0; i < n; i++) {
            size_t used = strlen(known);
            snprintf(known + used, sizeof(known) - used, "%s{%s}", i ? " " : "", spec->fields[i]);
        }
        return cfail(p, path, "%s (fields: %s)", why.msg, known);
    }
    ks_words_free(argv);
    return 0;
}

static int find_hook(const char *name)
{
    for (int i = 0; i < KS_HOOK_COUNT; i++)
        if (strcmp(hook_specs[i].name, name) == 0)
            return i;
    return -1;
}

int parse_hooks(cfgp *p, ks_config *cfg, json_object *obj)
{
    if (expect_object(p, obj, "hooks") < 0)
        return -1;
    json_object_object_foreach(obj, name, v)
    {
        char path[512];
        child_path(path, sizeof(path), "hooks", name);
        int id = find_hook(name);
        if (id < 0) {
            ks_warn("%s: %s: unknown hook; ignored", p->file, path);
            continue;
        }
        if (v == NULL)
            continue;
        if (!json_object_is_type(v, json_type_string))
            return cfail(p, path, "expected a command template string or null, got %s",
                         type_name(v));
        if (json_object_get_string_len(v) == 0)
            return cfail(p, path, "must not be empty (null turns the hook off)");
        if (check_template(p, path, &hook_specs[id], json_object_get_string(v)) < 0)
            return -1;
        if ((cfg->hooks[id] = strdup(json_object_get_string(v))) == NULL)
            return ks_fail(p->err, "out of memory");
        /* Never runs: warned about with the other full_key settings, once. */
        if (id == KS_HOOK_FULL_KEY_INSTALLED)
            p->full_key_set |= FULL_KEY_HOOK;
    }
    return 0;
}

/* ------------------------------------------------------------ accessors */

const ks_zone_key *ks_config_zone_key(const ks_config *cfg, const char *zone)
{
    for (size_t i = 0; i < cfg->n_zone_keys; i++)
        if (strcmp(cfg->zone_keys[i].zone, zone) == 0)
            return &cfg->zone_keys[i];
    return NULL;
}

int ks_config_has_dns(const ks_config *cfg)
{
    return cfg->dns_auth_hook != NULL || cfg->n_zone_keys > 0 ||
           cfg->reload_zone_command != NULL || cfg->hooks[KS_HOOK_SET_DNS_CHALLENGE] != NULL;
}

/* The http_challenges entry of a name: 1 and *dir (NULL for null) when
 * there is one. */
static int http_entry(const ks_config *cfg, const char *fqdn, const char **dir)
{
    for (size_t i = 0; i < cfg->n_http_challenges; i++)
        if (strcmp(cfg->http_challenges[i].fqdn, fqdn) == 0) {
            *dir = cfg->http_challenges[i].directory;
            return 1;
        }
    return 0;
}

const char *ks_config_webroot(const ks_config *cfg, const char *fqdn)
{
    const char *dir = NULL;
    return http_entry(cfg, fqdn, &dir) ? dir : NULL;
}

ks_challenge_kind ks_config_challenge(const ks_config *cfg, const char *name)
{
    ks_challenge_kind dns = ks_config_has_dns(cfg) ? KS_CHALLENGE_DNS01 : KS_CHALLENGE_NONE;
    const char *dir = NULL;
    if (strncmp(name, "*.", 2) == 0)
        return dns;
    if (ks_config_tls_alpn(cfg, name) != NULL)
        return KS_CHALLENGE_TLSALPN01;
    if (http_entry(cfg, name, &dir))
        return dir != NULL ? KS_CHALLENGE_HTTP01 : dns;
    if (cfg->http_challenge_template != NULL || cfg->http_responder_address != NULL)
        return KS_CHALLENGE_HTTP01;
    return dns;
}

/* The alt_names zone a name was configured under (acmebot's {zone}). */
static const char *configured_zone(const ks_config *cfg, const char *fqdn)
{
    for (size_t i = 0; i < cfg->n_certs; i++)
        for (size_t j = 0; j < cfg->certs[i].n_alt_names; j++)
            if (strcmp(cfg->certs[i].alt_names[j], fqdn) == 0)
                return cfg->certs[i].alt_zones[j];
    return fqdn;
}

char *ks_config_http_dir_new(const ks_config *cfg, const char *fqdn)
{
    const char *dir = NULL;
    if (http_entry(cfg, fqdn, &dir))
        return dir ? strdup(dir) : NULL;
    if (cfg->http_challenge_template == NULL)
        return NULL;
    const char *zone = configured_zone(cfg, fqdn);
    size_t flen = strlen(fqdn), zlen = strlen(zone);
    /* acmebot: the fqdn without its zone, "." at the zone apex */
    char *host = flen > zlen + 1 ? strndup(fqdn, flen - zlen - 1) : strdup(".");
    ks_hook_var fields[] = {{"zone", zone}, {"host", host}, {"fqdn", fqdn}};
    char **words = NULL;
    char *out = NULL;
    /* Validated at load: a template of one word with these fields. */
    if (host != NULL && ks_template_argv(cfg->http_challenge_template, fields, 3, &words,
                                         NULL) == 0 && words[0] != NULL && words[1] == NULL)
        out = strdup(words[0]);
    ks_words_free(words);
    free(host);
    return out;
}

/* directories.http_challenge: one path with {zone} {host} {fqdn}. */
int check_http_template(cfgp *p, const ks_config *cfg)
{
    if (cfg->http_challenge_template == NULL)
        return 0;
    static const hook_spec spec = {"http_challenge", {"zone", "host", "fqdn"}};
    if (strpbrk(cfg->http_challenge_template, " \t'\"\\") != NULL)
        return cfail(p, "directories.http_challenge",
                     "a directory template may not hold blanks or quotes");
    return check_template(p, "directories.http_challenge", &spec, cfg->http_challenge_template);
}

void free_dns_config(ks_config *cfg)
{
    for (size_t i = 0; i < cfg->n_zone_keys; i++) {
        free(cfg->zone_keys[i].zone);
        free(cfg->zone_keys[i].file);
        free(cfg->zone_keys[i].server);
    }
    free(cfg->zone_keys);
    for (int i = 0; i < KS_HOOK_COUNT; i++)
        free(cfg->hooks[i]);
    free(cfg->dir_update_key);
    free(cfg->dir_challenge);
    free(cfg->fn_challenge);
    free(cfg->reload_zone_command);
    free(cfg->http_challenge_template);
    free(cfg->http_responder_address);
}
