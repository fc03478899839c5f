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

#include "ks_err.h"

#include <stddef.h>

typedef enum ks_key_type {
    KS_KEY_RSA = 0,
    KS_KEY_ECDSA = 1,
} ks_key_type;

#define KS_KEY_TYPES 2

/* "rsa" / "ecdsa": the names acmebot uses in key_types and file names. */
const char *ks_key_type_name(ks_key_type t);

typedef struct ks_cert_config {
    char *name;        /* the certificates key: file base name */
    char *common_name; /* lower case */
    char **alt_names;  /* FQDNs, lower case, in config order, no duplicates */
    size_t n_alt_names;
    ks_key_type key_types[KS_KEY_TYPES];
    size_t n_key_types;
} ks_cert_config;

typedef struct ks_http_challenge {
    char *fqdn;
    char *directory; /* NULL: null in the config (dns-01 forced) */
} ks_http_challenge;

typedef struct ks_config {
    char *path;     /* the configuration file */
    char *base_dir; /* its directory */

    char *account_email;       /* may be NULL */
    ks_key_type account_key_type;
    unsigned account_key_size; /* RSA account keys */
    int account_key_curve;     /* NID, EC account keys */

    char *acme_directory_url;
    char *acme_ca_file; /* NULL = system trust store */
    unsigned key_size;  /* 0: RSA disabled */
    int key_curve;      /* NID; 0: ECDSA disabled */
    int renewal_days;
    int acme_max_retry_wait; /* seconds spent retrying one ACME request */

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

    ks_cert_config *certs;
    size_t n_certs;

    /* keysvc: the token. */
    char *hsm_module;
    char *hsm_token;
    char *hsm_token_serial; /* optional */
    char *hsm_pin_env;      /* exactly one of pin_env / pin_file */
    char *hsm_pin_file;
    char *hsm_server_pin_source; /* pin-source for servers' key URIs, e.g. "file:/etc/x" */

    /* keysvc: the database; NULL url = private cluster under dir_state. */
    char *database_url;
    char *database_run_as; /* system user for the private cluster when root;
                              NULL = pgcluster's default */
} ks_config;

/* Loads and validates a configuration file.  NULL with err set on failure;
 * the message names the file and the JSON path. */
ks_config *ks_config_load(const char *path, ks_err *err);
void ks_config_free(ks_config *cfg);

/* The http-01 webroot for a name, or NULL when none is configured. */
const char *ks_config_webroot(const ks_config *cfg, const char *fqdn);

/* Expands a file name template ({name}, {key_type}, {suffix}) and joins it to
 * the directory.  acmebot turns '*' in file names into '_'.  Caller frees. */
char *ks_config_output_path(const ks_config *cfg, const char *dir, const char *tmpl,
                            const char *name, ks_key_type type, ks_err *err);

#endif
