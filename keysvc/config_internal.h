/*
 * Internals shared by config.c (loading, accessors, simple sections),
 * config_keys.c (tenants, certificates, private keys),
 * config_challenges.c (validation methods, EAB), config_dns.c (dns-01,
 * http-01, hooks), config_acmebot.c (acmebot's other settings and
 * sections), config_records.c (each certificate's verify and
 * tlsa_records) and config_tables.c (services, hpkp_headers, ct_logs).
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

/* config_acmebot.c's helpers, also used by config_records.c and
 * config_tables.c.  A check gets the item's path for its message. */
typedef int (*cfg_item_check)(cfgp *p, const char *path, const char *s);
/* Frees the n strings of list, then list. */
void cfg_free_strings(char **list, size_t n);
/* Appends a copy of s to *list, which has *n strings. */
int cfg_append_string(cfgp *p, char ***list, size_t *n, const char *s);
/* A list of strings, a single string, or null (none), each checked. */
int cfg_parse_string_list(cfgp *p, json_object *v, const char *path, cfg_item_check check,
                          char ***out, size_t *n);
/* As cfg_parse_string_list for obj's key; absent: *list keeps its default. */
int cfg_opt_string_list(cfgp *p, json_object *obj, const char *path, const char *key,
                        cfg_item_check check, char ***list, size_t *n);
/* An https:// or http:// URL with a host. */
int cfg_check_url(cfgp *p, const char *path, const char *url);
/* A log, service or server name (it ends up in file names). */
int cfg_check_name(cfgp *p, const char *path, const char *name);
/* A command that splits into words (it runs without a shell). */
int cfg_check_command(cfgp *p, const char *path, const char *command);
/* A Python format template using only `fields` (NULL-terminated). */
int cfg_check_format(cfgp *p, const char *path, const char *tmpl, const char *const *fields);

/* config_records.c: each certificate's "verify" and "tlsa_records". */
/* acmebot's verify (a list of targets, one target, or null) into *out. */
int parse_verify_list(cfgp *p, json_object *v, const char *path, ks_verify_target **out, size_t *n);
/* Frees n targets parsed by parse_verify_list, then the array. */
void free_verify(ks_verify_target *targets, size_t n);
/* c's verify targets: its own, or settings.verify narrowed to c. */
int cert_verify(cfgp *p, const ks_config *cfg, ks_cert_config *c, json_object *obj,
                const char *path);
/* c's tlsa_records, when obj has them. */
int cert_tlsa(cfgp *p, ks_cert_config *c, json_object *obj, const char *path);

/* config_tables.c: the "services", "hpkp_headers" and "ct_logs" tables and
 * the references to them; set_acmebot_defaults fills in their defaults. */
/* Sets (adds or replaces) a service; the command is taken over. */
int set_service(ks_config *cfg, const char *name, char *command);
/* The "services" section, merged over acmebot's table. */
int parse_services(cfgp *p, ks_config *cfg, json_object *obj);
/* Service names (a list, a name or null) as indexes into cfg->services. */
int resolve_services(cfgp *p, const ks_config *cfg, json_object *v, const char *path, size_t **out,
                     size_t *n);
/* c's services, or settings.services when it names none. */
int cert_services(cfgp *p, const ks_config *cfg, ks_cert_config *c, json_object *obj,
                  const char *path);
/* Sets (adds or replaces) a server's HPKP header template, taken over. */
int set_hpkp_header(ks_config *cfg, const char *server, char *tmpl);
/* The "hpkp_headers" section, merged over the apache and nginx defaults. */
int parse_hpkp_headers(cfgp *p, ks_config *cfg, json_object *obj);
/* Sets the log's key (base64 DER) and its ID, the key's SHA-256; -1: not a key. */
int set_ct_key(ks_ct_log *log, const char *b64);
/* Frees what the log entry holds (not the entry). */
void free_ct_log(ks_ct_log *log);
/* Appends an empty entry named name to cfg->ct_logs; NULL: out of memory. */
ks_ct_log *new_ct_log(ks_config *cfg, const char *name);
/* The "ct_logs" section, merged over keysvc's default logs. */
int parse_ct_logs(cfgp *p, ks_config *cfg, json_object *obj);
/* Log names as indexes of every shard of each (single: path has no index). */
int resolve_ct_logs(cfgp *p, const ks_config *cfg, char *const *names, size_t n_names,
                    const char *path, int single, size_t **out, size_t *n);
/* c's ct_submit_logs, or settings.ct_submit_logs when it names none. */
int cert_ct_logs(cfgp *p, const ks_config *cfg, ks_cert_config *c, json_object *obj,
                 const char *path);

/* config_challenges.c: tls_alpn_challenges, dns_hooks, EAB members. */
int parse_tls_alpn_challenges(cfgp *p, ks_config *cfg, json_object *obj);
int parse_dns_hooks(cfgp *p, ks_config *cfg, json_object *obj);
int parse_eab(cfgp *p, json_object *obj, const char *path, char **kid, char **hmac_key,
              char **alg);
void free_challenges(ks_config *cfg);

#endif
