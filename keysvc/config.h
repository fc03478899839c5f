/*
 * config: acmebot's JSON configuration plus keysvc's own sections.
 *
 * Every error names the file and the JSON path ("certificates[\"a.test\"].
 * key_types[1]: expected \"rsa\" or \"ecdsa\"").  Every section and setting
 * acmebot documents is read and validated, with acmebot's defaults; unknown
 * keys are warned about.  Relative directories are relative to the config
 * file.
 */
#ifndef KEYSVC_CONFIG_H
#define KEYSVC_CONFIG_H

#include "dns.h"
#include "ks_err.h"

#include <stddef.h>
#include <time.h>

typedef enum ks_key_type {
    KS_KEY_RSA = 0,
    KS_KEY_ECDSA = 1,
    KS_KEY_ED25519 = 2, /* ACME account keys only */
} ks_key_type;

/* The key types of certificates (array sizes, suffixes). */
#define KS_KEY_TYPES 2

/* "rsa" / "ecdsa" (the names acmebot uses in key_types and file names),
 * "ed25519". */
const char *ks_key_type_name(ks_key_type t);

/* A tenant: a token with its own PIN source, ACME account and certificates.
 * Without a "tenants" section there is one, "default", described by "hsm". */
typedef struct ks_tenant_config {
    char *name;
    char *token;        /* label; NULL when chosen by serial only */
    char *token_serial; /* optional */
    char *pin_env;      /* exactly one of pin_env / pin_file */
    char *pin_file;
    char *email;        /* account contact; NULL: account.email */
    char *eab_kid;      /* external account binding; NULL: account's */
    char *eab_hmac_key;
    char *eab_alg;      /* "HS256" (NULL), "HS384", "HS512" */
} ks_tenant_config;

/* A private key name: a certificate's own (acmebot's "certificates") or a
 * "private_keys" entry shared by several certificates.  It has a primary and
 * a backup key per key type (and a previous one after a rollover). */
typedef struct ks_key_config {
    char *name;
    size_t tenant; /* index into cfg->tenants */
    ks_key_type key_types[KS_KEY_TYPES]; /* the types its certificates use */
    size_t n_key_types;
    unsigned key_size; /* RSA bits */
    int key_curve;     /* NID */
    /* acmebot's key settings (the private_keys entry, or the certificate
     * that implies the key, else settings). */
    int expiration_days;   /* backup key age that calls for a rollover; 0: never */
    int auto_rollover;     /* roll over by itself when expired, not just say so */
    int hpkp_days;         /* HPKP max-age in days; 0: no HPKP header files */
    int pin_subdomains;    /* includeSubDomains in the HPKP header */
    char *hpkp_report_uri; /* report-uri in the HPKP header; NULL: none */
} ks_key_config;

/* acmebot's "verify": a port to connect to and check that the certificate
 * is served.  At settings level hosts and key_types are as written (empty:
 * all); a certificate's targets are resolved against it: hosts are among
 * its alt names (wildcards left out: nothing to connect to) and key_types
 * among its key types, never empty.  A certificate's own "verify" must name
 * only its alt names and key types; the settings' targets are narrowed to
 * them (and dropped when nothing is left). */
typedef enum ks_starttls {
    KS_STARTTLS_NONE = 0,
    KS_STARTTLS_SMTP,
    KS_STARTTLS_POP3,
    KS_STARTTLS_IMAP,
    KS_STARTTLS_SIEVE,
    KS_STARTTLS_FTP,
    KS_STARTTLS_LDAP,
    KS_STARTTLS_XMPP,
} ks_starttls;

/* "smtp", ...; NULL for KS_STARTTLS_NONE. */
const char *ks_starttls_name(ks_starttls s);

typedef enum ks_verify_protocol {
    KS_VERIFY_PROTOCOL_NONE = 0,
    KS_VERIFY_PROTOCOL_HTTP, /* also fetch the Public-Key-Pins header */
} ks_verify_protocol;

typedef struct ks_verify_target {
    int port;
    ks_starttls starttls;
    ks_verify_protocol protocol;
    char **hosts; /* FQDNs, lower case */
    size_t n_hosts;
    ks_key_type key_types[KS_KEY_TYPES];
    size_t n_key_types;
} ks_verify_target;

/* acmebot's "tlsa_records" of a certificate: {zone: [host | {host, port,
 * usage, selector, protocol, ttl}]}.  The record's owner name is
 * _<port>._<protocol>.<host>. */
#define KS_TLSA_USAGE_PKIX_TA 0 /* "pkix-ta" (RFC 6698 certificate usages) */
#define KS_TLSA_USAGE_PKIX_EE 1 /* "pkix-ee", the default */
#define KS_TLSA_USAGE_DANE_TA 2 /* "dane-ta" */
#define KS_TLSA_USAGE_DANE_EE 3 /* "dane-ee" */
#define KS_TLSA_SELECTOR_CERT 0 /* "cert" */
#define KS_TLSA_SELECTOR_SPKI 1 /* "spki", the default */

typedef struct ks_tlsa_record {
    char *zone;     /* the zone updated, lower case */
    char *host;     /* the FQDN ("@" resolved to the zone), lower case */
    int port;       /* default 443 */
    int usage;      /* KS_TLSA_USAGE_* */
    int selector;   /* KS_TLSA_SELECTOR_* */
    char *protocol; /* "tcp" (default), "udp" or "sctp" */
    int ttl;        /* seconds, default 300 */
} ks_tlsa_record;

typedef struct ks_cert_config {
    char *name;        /* the certificates key: file base name */
    size_t key;        /* index into cfg->keys */
    char *common_name; /* lower case */
    char **alt_names;  /* FQDNs, lower case, in config order, no duplicates */
    char **alt_zones;  /* for each alt name, the alt_names zone it is listed under
                          (acmebot's {zone} of directories.http_challenge) */
    size_t n_alt_names;
    ks_key_type key_types[KS_KEY_TYPES];
    size_t n_key_types;
    /* acmebot's certificate settings; each defaults to the settings one. */
    size_t *services; /* indexes into cfg->services, reloaded after a change */
    size_t n_services;
    unsigned dhparam_size; /* 0: no DH parameters; else an RFC 7919 group size */
    int ecparam_curve;     /* NID; 0: no EC parameters */
    int ocsp_must_staple;
    char **ocsp_responder_urls; /* when the certificate names none */
    size_t n_ocsp_responder_urls;
    size_t *ct_logs; /* indexes into cfg->ct_logs: every shard of each log
                        named by ct_submit_logs */
    size_t n_ct_logs;
    ks_verify_target *verify;
    size_t n_verify;
    ks_tlsa_record *tlsa_records;
    size_t n_tlsa_records;
} ks_cert_config;

/* acmebot's "services": a name certificates refer to, and the command that
 * reloads it (one simple command, split into words, no shell).  The user's
 * entries are merged over acmebot's table; null removes one. */
typedef struct ks_service {
    char *name;
    char *command;
} ks_service;

/* acmebot's "hpkp_headers": one HPKP header file per server, from a
 * template with the fields {header}, {key_name} (acmebot's code calls it
 * {name}: both are accepted) and {server}.  Merged over the apache and
 * nginx defaults; null removes one. */
typedef struct ks_hpkp_header {
    char *server;
    char *tmpl;
} ks_hpkp_header;

/* acmebot's "ct_logs": a log certificates are submitted to.  A name is
 * either one log or a list of temporal shards ({url, key, log_id, start,
 * end}); each shard is one entry here, under its log's name.  The user's
 * logs are merged over keysvc's defaults (acmebot's documented
 * google_icarus and google_pilot); null removes one. */
typedef struct ks_ct_log {
    char *name;
    char *url;              /* https:// or http://, as configured */
    unsigned char *key_der; /* DER SubjectPublicKeyInfo; NULL when only the
                               log ID ("id"/"log_id") is configured */
    size_t key_len;
    unsigned char id[32];   /* the log ID: SHA-256 of the key */
    time_t start, end;      /* the shard's window (certificates expiring in
                               [start, end)); 0: open */
} ks_ct_log;

/* acmebot's "authorizations": names authorized without a certificate (a
 * master authorizes for its followers), {zone: [hosts]} as alt_names. */
typedef struct ks_authorization {
    char *name; /* the zone, lower case */
    char **fqdns;
    size_t n_fqdns;
} ks_authorization;

/* A name validated by tls-alpn-01: the address the built-in responder
 * listens on for it. */
typedef struct ks_tls_alpn_challenge {
    char *fqdn;
    char *address; /* an IP address literal */
    int port;
} ks_tls_alpn_challenge;

/* How a name is validated. */
typedef enum ks_challenge_kind {
    KS_CHALLENGE_NONE = 0, /* no method is configured for it */
    KS_CHALLENGE_HTTP01,
    KS_CHALLENGE_TLSALPN01,
    KS_CHALLENGE_DNS01,
} ks_challenge_kind;

typedef struct ks_http_challenge {
    char *fqdn;
    char *directory; /* NULL: null in the config (dns-01 forced) */
} ks_http_challenge;

/* acmebot's zone_update_keys: the TSIG key for RFC 2136 updates of a zone. */
typedef struct ks_zone_key {
    char *zone;   /* lower case, no trailing dot */
    char *file;   /* the key file (under directories.update_key when relative) */
    char *server; /* host name or IP address; NULL: the zone's SOA primary */
    int port;     /* 0: settings.dns_port */
} ks_zone_key;

/* acmebot's hooks: command templates with {fields} (see config_hooks.c). */
typedef enum ks_hook_id {
    KS_HOOK_SET_DNS_CHALLENGE,
    KS_HOOK_CLEAR_DNS_CHALLENGE,
    KS_HOOK_DNS_ZONE_UPDATE,
    KS_HOOK_SET_HTTP_CHALLENGE,
    KS_HOOK_CLEAR_HTTP_CHALLENGE,
    KS_HOOK_PRIVATE_KEY_ROLLOVER,
    KS_HOOK_PRIVATE_KEY_INSTALLED,
    KS_HOOK_BACKUP_KEY_INSTALLED,
    KS_HOOK_PREVIOUS_KEY_INSTALLED,
    KS_HOOK_HPKP_HEADER_INSTALLED,
    KS_HOOK_CERTIFICATE_INSTALLED,
    KS_HOOK_FULL_CERTIFICATE_INSTALLED,
    KS_HOOK_CHAIN_INSTALLED,
    KS_HOOK_FULL_KEY_INSTALLED,
    KS_HOOK_PARAMS_INSTALLED,
    KS_HOOK_SCT_INSTALLED,
    KS_HOOK_OCSP_INSTALLED,
    KS_HOOK_COUNT
} ks_hook_id;

/* The hook's name in the "hooks" section. */
const char *ks_hook_name(ks_hook_id id);

typedef struct ks_config {
    char *path;     /* the configuration file */
    char *base_dir; /* its directory */

    char *account_email;       /* may be NULL */
    char *account_eab_kid;     /* external account binding (both or neither) */
    char *account_eab_hmac_key;
    char *account_eab_alg;     /* "HS256" (NULL), "HS384", "HS512" */
    ks_key_type account_key_type;
    unsigned account_key_size; /* RSA account keys */
    int account_key_curve;     /* NID, EC account keys */

    char *acme_directory_url;
    char *acme_ca_file; /* NULL = system trust store */
    unsigned key_size;  /* 0: RSA disabled */
    int key_curve;      /* NID; 0: ECDSA disabled */
    int renewal_days;
    int acme_max_retry_wait; /* seconds spent retrying one ACME request */
    int max_domains_per_order; /* names authorized per order (acmebot) */
    char *preferred_chain;     /* CN of the topmost issuer of the chain to use */
    int ari;                   /* follow the CA's renewalInfo when it has one */

    /* Output directories; NULL turns the output off. */
    char *dir_certificate;
    char *dir_chain;
    char *dir_private_key;
    char *dir_state; /* keysvc: private database and state */

    char *fn_certificate; /* templates with {name} {key_type} {suffix} */
    char *fn_chain;
    char *fn_private_key;
    char *suffix[KS_KEY_TYPES];

    ks_http_challenge *http_challenges;
    size_t n_http_challenges;

    /* keysvc: names validated by tls-alpn-01 through the built-in
     * responder, and dns-01 through hooks (certbot's manual hooks). */
    ks_tls_alpn_challenge *tls_alpn_challenges;
    size_t n_tls_alpn_challenges;
    char *dns_auth_hook;
    char *dns_cleanup_hook;
    int dns_hook_timeout; /* seconds per hook run */

    /* dns-01 the acmebot way: RFC 2136 with a zone's key, else a local
     * challenge file plus reload_zone_command; DNS lookups. */
    ks_zone_key *zone_keys;
    size_t n_zone_keys;
    char *dir_update_key;      /* directories.update_key */
    char *dir_challenge;       /* directories.challenge */
    char *fn_challenge;        /* file_names.challenge: "{name}" (the zone) */
    char *reload_zone_command; /* NULL: no local updates */
    ks_dns dns;                /* settings.dns_resolvers, dns_port */
    int max_dns_lookup_attempts;
    int dns_lookup_delay;      /* seconds between propagation checks */

    /* http-01: directories.http_challenge ({zone} {host} {fqdn}), and the
     * built-in responder (settings.http_responder, "address:port"). */
    char *http_challenge_template;
    char *http_responder_address; /* NULL: none */
    int http_responder_port;

    char *hooks[KS_HOOK_COUNT]; /* templates; NULL: not configured */
    int hook_timeout;           /* seconds per hook run */

    ks_cert_config *certs;
    size_t n_certs;
    ks_key_config *keys;
    size_t n_keys;
    ks_tenant_config *tenants;
    size_t n_tenants;

    /* acmebot's directories.previous_key: when set, the primary key becomes
     * the "previous" key at a rollover and stays until retired. */
    char *dir_previous_key;

    /* keysvc: the module, and the default tenant's token. */
    char *hsm_module;
    char *hsm_token;
    char *hsm_token_serial; /* optional */
    char *hsm_pin_env;      /* exactly one of pin_env / pin_file */
    char *hsm_pin_file;
    char *hsm_server_pin_source; /* pin-source for servers' key URIs, e.g. "file:/etc/x" */

    /* keysvc: a standalone signer's socket (NULL: keysvc run starts its own). */
    char *signer_socket;
    char *signer_socket_group;
    /* The user a standalone signer runs as, when neither root nor the
     * worker's: workers refuse any other peer on the socket. */
    char *signer_user;

    /* keysvc: the database; NULL url = private cluster under dir_state. */
    char *database_url;
    char *database_run_as; /* system user for the private cluster when root;
                              NULL = pgcluster's default */

    /* acmebot's other settings, with acmebot's defaults (config_acmebot.c). */
    int follower_mode;     /* settings.follower_mode (or its old name slave_mode) */
    char *log_level;       /* "normal", "verbose", "debug" (default), "detail";
                              NULL (null): no log file */
    int color_output;      /* default 1 */
    int warning_exit_code; /* warnings make the exit code non-zero */
    unsigned dhparam_size; /* default 2048; 0: none; RFC 7919 group sizes only */
    int ecparam_curve;     /* NID, default secp384r1; 0: none */
    char *file_user;       /* owners of output and log files; NULL: unchanged.
                              Resolved by keysvc check and when files are written */
    char *file_group;
    char *log_user;
    char *log_group;
    int hpkp_days;         /* key defaults, see ks_key_config */
    int pin_subdomains;
    char *hpkp_report_uri;
    int expiration_days;
    int auto_rollover;
    int ocsp_must_staple;  /* certificate defaults, see ks_cert_config */
    char **ocsp_responder_urls;
    size_t n_ocsp_responder_urls;
    char **ct_submit_logs; /* log names, each in ct_logs */
    size_t n_ct_submit_logs;
    int max_authorization_attempts; /* 30 */
    int authorization_delay;        /* 10 s */
    int cert_poll_time;             /* 30 s */
    int max_ocsp_verify_attempts;   /* 10 */
    int ocsp_verify_retry_delay;    /* 5 s */
    int min_run_delay;              /* 300 s; never above max_run_delay */
    int max_run_delay;              /* 3600 s */
    int acme_directory_verify_ssl;  /* default 1 */
    char *public_suffix_list_url;
    char *nsupdate_command; /* accepted; keysvc sends RFC 2136 updates itself */
    ks_verify_target *verify; /* settings.verify: every certificate's default */
    size_t n_verify;

    /* acmebot's other directories (NULL: that output is off), relative to
     * the config's directory.  Output directories may hold {name},
     * {key_type} and {suffix} (dir_hpkp also {server}); see
     * ks_config_path_new.  dir_full_key is accepted and never written to:
     * the private key never leaves the token. */
    char *dir_pid;
    char *dir_log;
    char *dir_resource;
    char *dir_backup_key;
    char *dir_full_key;
    char *dir_full_certificate;
    char *dir_param;
    char *dir_hpkp;
    char *dir_ocsp;
    char *dir_sct;
    char *dir_archive;
    char *dir_temp; /* NULL: the system's */

    /* acmebot's other file names: {name} {key_type} {suffix}; fn_hpkp has
     * {name} {server}, fn_sct {ct_log_name} too, fn_param {name} only. */
    char *fn_log;
    char *fn_backup_key;
    char *fn_previous_key;
    char *fn_full_key;
    char *fn_full_certificate;
    char *fn_param;
    char *fn_hpkp;
    char *fn_ocsp;
    char *fn_sct;

    ks_service *services;
    size_t n_services;
    ks_hpkp_header *hpkp_headers;
    size_t n_hpkp_headers;
    ks_ct_log *ct_logs;
    size_t n_ct_logs;
    ks_authorization *authorizations;
    size_t n_authorizations;
} ks_config;

/* Loads and validates a configuration file.  NULL with err set on failure;
 * the message names the file and the JSON path. */
ks_config *ks_config_load(const char *path, ks_err *err);
void ks_config_free(ks_config *cfg);

/* The tenant index of a name, or -1. */
int ks_config_tenant_index(const ks_config *cfg, const char *name);

/* How a name (possibly "*.x") is validated, first match wins:
 *   wildcards                         dns-01
 *   tls_alpn_challenges entry         tls-alpn-01
 *   http_challenges entry             http-01 in that directory; null: dns-01
 *   directories.http_challenge        http-01 in the expanded directory
 *   settings.http_responder           http-01 by the built-in responder
 *   otherwise                         dns-01
 * dns-01 is NONE when no dns-01 method is configured. */
ks_challenge_kind ks_config_challenge(const ks_config *cfg, const char *name);

/* The tls-alpn-01 listening address of a name, or NULL. */
const ks_tls_alpn_challenge *ks_config_tls_alpn(const ks_config *cfg, const char *fqdn);

/* The http-01 webroot for a name from http_challenges, or NULL. */
const char *ks_config_webroot(const ks_config *cfg, const char *fqdn);

/* The directory http-01 files for `fqdn` go to: its http_challenges entry,
 * else directories.http_challenge expanded for it; NULL when neither
 * applies (the built-in responder, or dns-01).  Caller frees. */
char *ks_config_http_dir_new(const ks_config *cfg, const char *fqdn);

/* The zone_update_keys entry for `zone`, or NULL. */
const ks_zone_key *ks_config_zone_key(const ks_config *cfg, const char *zone);

/* Whether any dns-01 method is configured. */
int ks_config_has_dns(const ks_config *cfg);

/* The index of a service, or -1. */
int ks_config_service_index(const ks_config *cfg, const char *name);

/* The fields of directory and file name templates. */
typedef struct ks_path_fields {
    const char *name;        /* the certificate's or key's name */
    int key_type;            /* a ks_key_type, or -1: {key_type} and {suffix} are "" */
    const char *server;      /* {server} (hpkp), or NULL */
    const char *ct_log_name; /* {ct_log_name} (sct), or NULL */
} ks_path_fields;

/* Expands the directory template `dir` and the file name template `fn`
 * (acmebot's Python format strings: {field}, "{{" and "}}" for braces) and
 * joins them; '*' in the file name becomes '_' as in acmebot.  A field
 * without a value is an error.  Caller frees. */
char *ks_config_path_new(const ks_config *cfg, const char *dir, const char *fn,
                         const ks_path_fields *f, ks_err *err);

/* Expands a file name template ({name}, {key_type}, {suffix}) and joins it to
 * the directory.  acmebot turns '*' in file names into '_'.  Caller frees. */
char *ks_config_output_path(const ks_config *cfg, const char *dir, const char *tmpl,
                            const char *name, ks_key_type type, ks_err *err);

#endif
