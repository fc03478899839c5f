/*
 * Internals shared by config.c (loading, accessors, simple sections),
 * config_keys.c (tenants, certificates, private keys),
 * config_challenges.c (validation methods, EAB), config_dns.c (dns-01,
 * http-01, hooks) and config_acmebot.c (acmebot's other sections).
 */
#ifndef KEYSVC_CONFIG_INTERNAL_H
#define KEYSVC_CONFIG_INTERNAL_H

#include "config.h"

#include <json-c/json.h>

/* Parsing context: the file name for messages, and where errors go. */
typedef struct cfgp {
    const char *file;
    const char *base_dir;
    ks_err *err;
    /* settings.key_types, the default for keys that name none */
    ks_key_type settings_types[KS_KEY_TYPES];
    size_t n_settings_types;
    /* settings.services, every certificate's default (resolved once the
     * "services" section is read); NULL: none */
    json_object *settings_services;
    /* What asks for full_key outputs (FULL_KEY_*), warned about once. */
    unsigned full_key_set;
    /* The notices about key_cipher/key_passphrase and key_provided are
     * given once per load, not once per key. */
    int noted_key_cipher;
    int noted_key_provided;
} cfgp;

#define FULL_KEY_DIR 1u  /* directories.full_key set to a directory */
#define FULL_KEY_NAME 2u /* file_names.full_key set */
#define FULL_KEY_HOOK 4u /* hooks.full_key_installed configured */

int cfail(cfgp *p, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* JSON paths: a.b for plain keys, a["x.y"] otherwise; a[3] for indexes. */
void child_path(char *out, size_t cap, const char *parent, const char *key);
void index_path(char *out, size_t cap, const char *parent, size_t i);
const char *type_name(json_object *v);

/* Logs keys that are neither implemented nor acmebot's (warning) or
 * acmebot's but not implemented (info). */
void check_keys(cfgp *p, json_object *obj, const char *path, const char *const *implemented,
                const char *const *acmebot_only);

int expect_object(cfgp *p, json_object *v, const char *path);
/* Absent: *dst keeps its default.  null: *dst becomes NULL when nullable. */
int opt_string(cfgp *p, json_object *obj, const char *path, const char *key, int nullable,
               char **dst);
int opt_bool(cfgp *p, json_object *obj, const char *path, const char *key, int *dst);
int opt_int(cfgp *p, json_object *obj, const char *path, const char *key, long min, long max,
            int *null_seen, long *dst);
int resolve_dir(cfgp *p, char **dir);
int parse_curve(cfgp *p, json_object *obj, const char *path, const char *key, int *nid);
int parse_rsa_size(cfgp *p, json_object *obj, const char *path, const char *key,
                   unsigned *bits);
int parse_key_type_name(cfgp *p, json_object *v, const char *path, ks_key_type *out);
int parse_key_types(cfgp *p, json_object *v, const char *path, ks_key_type *types, size_t *n);

/* A DNS name as a certificate may carry it (LDH labels, optional "*."). */
int valid_fqdn(const char *name);
char *lowercase_dup(const char *s);
/* Tenant, key, certificate (and service, log, server) names: letters,
 * digits and ._-*+@, as they become file names and labels. */
int valid_name(const char *name);

/* One zone of alt_names or authorizations: `hosts` is a host name or a
 * list of them, "@" meaning the zone itself.  Each FQDN (lower case) is
 * appended to *names and, when `zones` is not NULL, the zone to *zones;
 * a name listed twice is an error at its path. */
int parse_zone_hosts(cfgp *p, const char *zone, json_object *hosts, const char *zpath,
                     char ***names, char ***zones, size_t *n);

/* config_keys.c: the sections that describe keys and certificates.  The
 * default tenant (from "hsm") must already be in cfg->tenants when
 * "tenants" is absent. */
int parse_tenants(cfgp *p, ks_config *cfg, json_object *tenants);
int parse_keys_and_certificates(cfgp *p, ks_config *cfg, json_object *certificates,
                                json_object *private_keys);
void free_keys_and_certificates(ks_config *cfg);

/* config_dns.c: dns-01 and http-01 the acmebot way, and "hooks".  The
 * directories must be parsed before zone_update_keys. */
int parse_dns_settings(cfgp *p, ks_config *cfg, json_object *settings);
int parse_zone_update_keys(cfgp *p, ks_config *cfg, json_object *obj);
int parse_hooks(cfgp *p, ks_config *cfg, json_object *obj);
int check_http_template(cfgp *p, const ks_config *cfg);
void free_dns_config(ks_config *cfg);

/* config_acmebot.c: acmebot's settings, directories, file names and
 * sections beyond the ones above, and each key's and certificate's
 * settings.  Defaults first; settings before the sections; the sections
 * (services, hpkp_headers, ct_logs) before keys and certificates. */
int set_acmebot_defaults(ks_config *cfg);
int parse_acmebot_settings(cfgp *p, ks_config *cfg, json_object *settings);
int parse_acmebot_directories(cfgp *p, ks_config *cfg, json_object *directories);
int parse_acmebot_file_names(cfgp *p, ks_config *cfg, json_object *file_names);
int parse_acmebot_sections(cfgp *p, ks_config *cfg, json_object *root);
int parse_authorizations(cfgp *p, ks_config *cfg, json_object *obj);
int parse_key_acmebot(cfgp *p, const ks_config *cfg, ks_key_config *k, json_object *obj,
                      const char *path);
int parse_cert_acmebot(cfgp *p, const ks_config *cfg, ks_cert_config *c, json_object *obj,
                       const char *path);
/* The one warning about full_key outputs, when something asks for them. */
void warn_full_key(cfgp *p, const ks_config *cfg);
void free_cert_acmebot(ks_cert_config *c);
void free_acmebot_config(ks_config *cfg);

/* config_challenges.c: tls_alpn_challenges, dns_hooks, EAB members. */
int parse_tls_alpn_challenges(cfgp *p, ks_config *cfg, json_object *obj);
int parse_dns_hooks(cfgp *p, ks_config *cfg, json_object *obj);
int parse_eab(cfgp *p, json_object *obj, const char *path, char **kid, char **hmac_key,
              char **alg);
void free_challenges(ks_config *cfg);

#endif
