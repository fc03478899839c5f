/*
 * config: acmebot's JSON configuration plus keysvc's own sections.
 *
 * Every error names the file and the JSON path ("certificates[\"a.test\"].
 * key_types[1]: expected \"rsa\" or \"ecdsa\"").  Keys acmebot knows that
 * keysvc does not implement yet are accepted and logged; unknown keys are
 * warned about.  Relative directories are relative to the config file.
 */
#ifndef KEYSVC_CONFIG_H
#define KEYSVC_CONFIG_H

#include "dns.h"
#include "ks_err.h"

#include <stddef.h>

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
} ks_key_config;

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
} ks_cert_config;

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

/* Expands a file name template ({name}, {key_type}, {suffix}) and joins it to
 * the directory.  acmebot turns '*' in file names into '_'.  Caller frees. */
char *ks_config_output_path(const ks_config *cfg, const char *dir, const char *tmpl,
                            const char *name, ks_key_type type, ks_err *err);

#endif
