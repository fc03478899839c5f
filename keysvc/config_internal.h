/*
 * Internals shared by config.c (loading, accessors, simple sections),
 * config_keys.c (tenants, certificates, private keys) and
 * config_challenges.c (validation methods, EAB).
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
} cfgp;

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

/* config_challenges.c: tls_alpn_challenges, dns_hooks, EAB members. */
int parse_tls_alpn_challenges(cfgp *p, ks_config *cfg, json_object *obj);
int parse_dns_hooks(cfgp *p, ks_config *cfg, json_object *obj);
int parse_eab(cfgp *p, json_object *obj, const char *path, char **kid, char **hmac_key,
              char **alg);
void free_challenges(ks_config *cfg);

#endif
