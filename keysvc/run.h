/*
 * run: the main job.  Compares what the configuration asks for with what
 * the database and token hold, issues what is missing or due, and keeps the
 * output files in step.
 */
#ifndef KEYSVC_RUN_H
#define KEYSVC_RUN_H

#include "acme.h"
#include "config.h"
#include "pgcluster.h"
#include "signer.h"
#include "store.h"

#include <openssl/evp.h>

/* Exit codes, as cron and systemd see them (uacme's convention). */
enum ks_exit {
    KS_EXIT_CHANGED = 0, /* something was issued or written */
    KS_EXIT_NOTHING = 1, /* nothing to do: everything is current */
    KS_EXIT_FAILED = 2,  /* an error; whatever was already good is kept */
};

/* What a run does for each tenant. */
typedef enum ks_action {
    KS_ACTION_RUN,                  /* issue, renew, write files */
    KS_ACTION_ACCOUNT_SHOW,         /* the account as the CA has it */
    KS_ACTION_ACCOUNT_UPDATE,       /* contact from the configuration */
    KS_ACTION_ACCOUNT_DEACTIVATE,   /* for good */
    KS_ACTION_ACCOUNT_KEY_ROLLOVER, /* ACME keyChange to a new token key */
    KS_ACTION_REVOKE,               /* the named certificates */
    KS_ACTION_REVOKE_KEYS,          /* run --revoke: every certificate of the
                                       named keys, files archived, keys rolled
                                       over by the next run */
} ks_action;

/* The parts of a run (acmebot's --auth --certs --tlsa --sct --ocsp
 * --verify); none given means all. */
enum ks_run_part {
    KS_PART_AUTH = 1 << 0,
    KS_PART_CERTS = 1 << 1,
    KS_PART_TLSA = 1 << 2,
    KS_PART_SCT = 1 << 3,
    KS_PART_OCSP = 1 << 4,
    KS_PART_VERIFY = 1 << 5,
    KS_PART_ALL = (1 << 6) - 1,
};

typedef struct ks_run_options {
    ks_action action;
    int revoke_reason;        /* CRLReason code, -1: none */
    int revoke_with_cert_key; /* sign the revocation with the certificate's key */
    int quiet;           /* no "nothing to do" / action lines on stdout */
    int rollover;        /* roll the selected keys over first */
    unsigned parts;      /* enum ks_run_part bits; 0: all */
    int renew;           /* --renew: renew every selected certificate now */
    int force;           /* --force: roll over despite the HPKP guard */
    int random_wait;     /* --randomwait: sleep min..max_run_delay first */
    const char *tenant;  /* only this tenant (NULL: all) */
    char *const *names;  /* only these certificates or private keys (n_names 0: all) */
    size_t n_names;
} ks_run_options;

/* The state of one run, shared by its steps; the fields from `tenant` on
 * belong to the tenant being worked on and are reset between tenants. */
typedef struct ks_run {
    const ks_config *cfg;
    const ks_run_options *opts;
    store *db;
    int changed;
    uid_t file_uid; /* settings.file_user, (uid_t)-1: unset */
    gid_t file_gid;
    unsigned char *reload; /* per cfg->services: reload at the end of the run */
    unsigned char *retire_ready; /* per cfg->keys: its files are in place; its
                                    previous key may go after the reload */
    int root_warned[KS_KEY_TYPES]; /* root_cert.<type>.pem missing was said */
    const char *tenant;
    const ks_tenant_config *tenant_cfg;
    ks_signer *signer; /* this tenant's view of the signer */
    acme_client *acme; /* created when the first order is needed */
    /* The ACME account key, once the account is set up. */
    store_key account_key;
    ks_keyref account_ref;
    char *account_jwk;
    const char *account_alg;
    /* Setting up the CA or the account failed once: later certificates of
     * this run are not ordered (their files are still kept in step). */
    int account_failed;
    /* The token's private keys, listed once per run when first needed and
     * sorted for bsearch (see keep_current in run.c). */
    ks_keyref *token_keys;
    size_t n_token_keys;
    int token_keys_loaded;
} ks_run;

/* Connects to the configured database, or ensures the private cluster and
 * connects to it (*cluster set; release it after closing the store), and
 * applies the migrations. */
store *ks_open_database(const ks_config *cfg, pgcluster **cluster, ks_err *err);

/* keysvc keys: every live key with its role, age, SPKI pin and URI, from
 * the database (the token is not touched).  Returns an exit code. */
int ks_keys_list_main(const ks_config *cfg, const ks_run_options *opts);

/* Runs the job; returns an enum ks_exit value.  Errors are reported on
 * stderr as they happen. */
int ks_run_main(const ks_config *cfg, const ks_run_options *opts);

/* Issues one certificate (one key type) and writes its files (issue.c).
 * `replaces`: the RFC 9773 identifier of the certificate it renews, or NULL. */
int ks_issue(ks_run *run, const ks_cert_config *cert, ks_key_type type, const char *replaces,
             ks_err *err);

/* acmebot's authorizations: validates `names` (label: the entry) through
 * orders that are never finalized (issue.c). */
int ks_authorize(ks_run *run, const char *label, char *const *names, size_t n, ks_err *err);

/* Rolls certificate key `key_index` over in req's type when it is due or
 * asked for (rollover.c).  Returns 1 when it rolled over, 0 when it was
 * not due, -1 on an error. */
struct ks_key_request;
int ks_rollover_apply(ks_run *run, size_t key_index, const struct ks_key_request *req,
                      ks_err *err);

/* Marks the services of certificate `cert_index` for the reload at the end
 * of the run (each service once). */
void ks_run_mark_services(ks_run *run, size_t cert_index);

/* Makes sure the ACME client and account exist (account.c). */
int ks_account_ensure(ks_run *run, ks_err *err);

/* Settles an account key rollover that was interrupted, or whose keyChange
 * answer was lost: a live "incoming" account key is made the account's key
 * when the CA knows it as this account, destroyed when the CA says it does
 * not, and kept (with an error) when the CA cannot tell. */
int ks_account_settle_key(ks_run *run, store_account *acct, ks_err *err);

/* The contact address for the run's tenant's account, or NULL. */
const char *ks_account_email(const ks_run *run);

/* The account and revoke commands for the run's tenant (commands.c);
 * returns the failure count. */
int ks_tenant_command(ks_run *run);

/* An acme_signer for a token key other than the account's (a new account
 * key, a certificate key; account.c).  `acme` points into the struct, which
 * must therefore stay where ks_key_signer_init filled it; the JWK is owned
 * (ks_key_signer_clear frees it). */
typedef struct ks_key_signer {
    ks_signer *signer;
    ks_keyref ref;
    const char *alg;
    char *jwk;
    acme_signer acme;
} ks_key_signer;
int ks_key_signer_init(ks_key_signer *ks, ks_signer *signer, const store_key *row, ks_err *err);
void ks_key_signer_clear(ks_key_signer *ks);

/* The JWS algorithm and JWK of a token key; *jwk newly allocated. */
int ks_key_jws_identity(ks_signer *signer, const ks_keyref *ref, const char **alg, char **jwk,
                        ks_err *err);

#endif
