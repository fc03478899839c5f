/*
 * The account and revoke commands, run for one tenant at a time inside the
 * run's machinery (its lock, signer, database and recovery; run.c).
 *
 *   account show         the account as the CA has it
 *   account update       the contact from the configuration
 *   account deactivate   for good (RFC 8555 7.3.6); the next run makes a new one
 *   account key-rollover ACME keyChange to a new key made in the token
 *   revoke NAME...       revokeCert, signed by the account or the certificate key
 */
#include "chain.h"
#include "install.h"
#include "keys.h"
#include "ks_log.h"
#include "ks_testhook.h"
#include "ks_util.h"
#include "run.h"
#include "tlsa.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Server text on the terminal: escaped. */
static void print_escaped(const char *label, const char *text)
{
    char *shown = text ? ks_escape_new(text, (size_t)-1) : NULL;
    printf("%s%s\n", label, shown ? shown : "(not given)");
    free(shown);
}

static void print_account(const ks_run *run, const acme_account_info *info)
{
    if (run->opts->quiet)
        return;
    printf("tenant:  %s\n", run->tenant);
    print_escaped("account: ", acme_client_account_url(run->acme));
    print_escaped("status:  ", info->status);
    for (size_t i = 0; i < info->n_contact; i++)
        print_escaped("contact: ", info->contact[i]);
    printf("key:     %s (%s, %s)\n", run->account_key.label, run->account_key.key_type,
           run->account_key.params);
}

static int account_show(ks_run *run, ks_err *err)
{
    acme_account_info info = {0};
    int rc = acme_account_fetch(run->acme, &info, err);
    if (rc == 0)
        print_account(run, &info);
    acme_account_info_clear(&info);
    return rc;
}

static int account_deactivate(ks_run *run, ks_err *err)
{
    store_account acct = {0};
    acme_account_info info = {0};
    int found = store_account_find(run->db, run->tenant, run->cfg->acme_directory_url, &acct, err);
    int rc = -1;
    if (found == 1 && acme_account_deactivate(run->acme, &info, err) == 0 &&
        store_account_deactivated(run->db, acct.id, acct.key_id, err) == 0 &&
        ks_keys_recover(run->db, run->signer, run->tenant, err) == 0) {
        if (!run->opts->quiet)
            printf("deactivated ACME account %s; its key %s is destroyed\n", acct.account_url,
                   run->account_key.label);
        run->changed = 1;
        rc = 0;
    } else if (found == 0) {
        ks_fail(err, "no account is recorded for %s", run->cfg->acme_directory_url);
    }
    acme_account_info_clear(&info);
    store_account_clear(&acct);
    return rc;
}

/* ------------------------------------------------------ key rollover */

static int new_account_key(ks_run *run, store_key *incoming, ks_err *err)
{
    const ks_config *cfg = run->cfg;
    ks_key_request req;
    if (ks_key_request_init(&req, run->tenant, KS_PURPOSE_ACCOUNT, cfg->acme_directory_url,
                            cfg->account_key_type, cfg->account_key_size, cfg->account_key_curve,
                            err) < 0)
        return -1;
    return ks_keys_generate_incoming(run->db, run->signer, &req, incoming, err);
}

/* keyChange with the incoming key.  The client signs with it afterwards;
 * its strings die here, so the client forgets it in every case (the
 * command makes no further request). */
static int change_key_at_ca(ks_run *run, const store_key *incoming, ks_err *err)
{
    ks_key_signer new_key;
    int rc = ks_key_signer_init(&new_key, run->signer, incoming, err) < 0
                 ? -1
                 : acme_account_key_change(run->acme, &new_key.acme, err);
    acme_client_forget_account(run->acme);
    ks_key_signer_clear(&new_key);
    return rc;
}

static int account_key_rollover(ks_run *run, ks_err *err)
{
    store_account acct = {0};
    store_key incoming = {0};
    int rc = -1;
    int found = store_account_find(run->db, run->tenant, run->cfg->acme_directory_url, &acct, err);
    if (found != 1) {
        if (found == 0)
            ks_fail(err, "no account is recorded for %s", run->cfg->acme_directory_url);
        goto out;
    }
    if (new_account_key(run, &incoming, err) < 0)
        goto out;
    ks_crashpoint("account-key:generated");
    if (change_key_at_ca(run, &incoming, err) < 0) {
        /* The CA may have taken the change even though its answer was lost:
         * it is asked which key it knows before anything is destroyed. */
        ks_err settle_err;
        if (ks_account_settle_key(run, &acct, &settle_err) < 0)
            ks_warn("%s (the new key is kept; the next run settles it)", settle_err.msg);
        goto out;
    }
    ks_crashpoint("account-key:changed");
    if (store_account_switch_key(run->db, acct.id, acct.key_id, incoming.id, err) < 0 ||
        ks_keys_recover(run->db, run->signer, run->tenant, err) < 0)
        goto out;
    if (!run->opts->quiet)
        printf("rolled over the key of ACME account %s: %s replaces %s (destroyed)\n",
               acct.account_url, incoming.label, run->account_key.label);
    run->changed = 1;
    rc = 0;
out:
    store_key_clear(&incoming);
    store_account_clear(&acct);
    return rc < 0 ? ks_failp(err, "account key rollover") : 0;
}

/* ------------------------------------------------------------ revoke */

static int selected_for_revoke(const ks_run *run, const ks_cert_config *cert)
{
    const ks_key_config *k = &run->cfg->keys[cert->key];
    if (strcmp(run->cfg->tenants[k->tenant].name, run->tenant) != 0)
        return 0;
    for (size_t i = 0; i < run->opts->n_names; i++)
        if (strcmp(run->opts->names[i], cert->name) == 0)
            return 1;
    return 0;
}

/* revokeCert signed by the certificate's own key (its JWK in the header). */
static int revoke_with_certificate_key(ks_run *run, const store_cert *have,
                                       const unsigned char *der, size_t len, ks_err *err)
{
    store_key key = {0};
    ks_key_signer cert_key = {0};
    int rc = -1;
    if (store_key_get(run->db, have->key_id, &key, err) == 1 &&
        ks_key_signer_init(&cert_key, run->signer, &key, err) == 0)
        rc = acme_certificate_revoke(run->acme, der, len, run->opts->revoke_reason,
                                     &cert_key.acme, err);
    ks_key_signer_clear(&cert_key);
    store_key_clear(&key);
    return rc;
}

/* RFC 5280 CRLReason keyCompromise. */
#define KS_REASON_KEY_COMPROMISE 1

/* A compromised key must never sign again: the backup becomes the primary
 * (so the replacement is issued on it), and the compromised key leaves the
 * token with the next run (or stays as the previous key where
 * directories.previous_key keeps one).  Certificates sharing the key are
 * replaced by the next run too, their key having changed.  Only while the
 * compromised key is still the primary: a second certificate on the same
 * key must not roll the fresh primary over again. */
static int retire_compromised_key(ks_run *run, const ks_cert_config *cert, ks_key_type type,
                                  int64_t compromised_id, ks_err *err)
{
    const ks_key_config *k = &run->cfg->keys[cert->key];
    ks_key_request req;
    store_key primary = {0};
    int found = store_key_find(run->db, run->tenant, "certificate", k->name,
                               ks_key_type_name(type), "primary", &primary, err);
    int still_primary = found == 1 && primary.id == compromised_id;
    store_key_clear(&primary);
    if (found < 0)
        return ks_failp(err, "revoked for key compromise, but key %s cannot be looked up: run "
                             "keysvc run --rollover %s before anything else",
                        k->name, k->name);
    if (!still_primary) {
        ks_info("key %s (%s): the compromised key is no longer the primary", k->name,
                ks_key_type_name(type));
        return 0;
    }
    if (ks_key_request_init(&req, run->tenant, KS_PURPOSE_CERTIFICATE, k->name, type, k->key_size,
                            k->key_curve, err) < 0 ||
        ks_keys_rollover(run->db, run->signer, &req, err) < 0)
        return ks_failp(err, "revoked for key compromise, but rolling key %s over failed: run "
                             "keysvc run --rollover %s before anything else",
                        k->name, k->name);
    ks_log_action("rolled over %s (%s): the compromised key signs nothing more", k->name,
                  ks_key_type_name(type));
    return 0;
}

static int revoke_one(ks_run *run, const ks_cert_config *cert, ks_key_type type, ks_err *err)
{
    store_cert have = {0};
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = -1;
    int found = store_cert_find_current(run->db, run->tenant, cert->name, ks_key_type_name(type),
                                        &have, err);
    if (found == 0)
        ks_fail(err, "no current certificate to revoke");
    if (found != 1 || ks_chain_leaf_der(have.cert_pem, &der, &len, err) < 0)
        goto out;
    rc = run->opts->revoke_with_cert_key
             ? revoke_with_certificate_key(run, &have, der, len, err)
             : acme_certificate_revoke(run->acme, der, len, run->opts->revoke_reason, NULL, err);
    if (rc < 0 || store_cert_revoked(run->db, have.id, run->opts->revoke_reason, err) < 0) {
        rc = -1;
        goto out;
    }
    ks_log_action("revoked %s (%s): serial %s%s; the next run issues a replacement", cert->name,
                  ks_key_type_name(type), have.serial,
                  rc == 1 ? " (the CA had revoked it already)" : "");
    run->changed = 1;
    rc = run->opts->revoke_reason == KS_REASON_KEY_COMPROMISE
             ? retire_compromised_key(run, cert, type, have.key_id, err)
             : 0;
out:
    OPENSSL_free(der);
    store_cert_clear(&have);
    return rc < 0 ? ks_failp(err, "revoking %s (%s)", cert->name, ks_key_type_name(type)) : 0;
}

static int revoke_selected(ks_run *run)
{
    int failures = 0;
    for (size_t i = 0; i < run->cfg->n_certs; i++) {
        const ks_cert_config *cert = &run->cfg->certs[i];
        for (size_t t = 0; selected_for_revoke(run, cert) && t < cert->n_key_types; t++) {
            ks_err err = {0};
            if (revoke_one(run, cert, cert->key_types[t], &err) < 0) {
                ks_error("%s", err.msg);
                failures++;
            }
        }
    }
    return failures;
}

/* run --revoke: whether the names select private key `ki` (by its name or
 * one of its certificates'), in this tenant. */
static int key_selected_for_revoke(const ks_run *run, size_t ki)
{
    const ks_key_config *k = &run->cfg->keys[ki];
    if (strcmp(run->cfg->tenants[k->tenant].name, run->tenant) != 0)
        return 0;
    for (size_t i = 0; i < run->opts->n_names; i++) {
        if (strcmp(run->opts->names[i], k->name) == 0)
            return 1;
        for (size_t c = 0; c < run->cfg->n_certs; c++)
            if (run->cfg->certs[c].key == ki && strcmp(run->opts->names[i],
                                                       run->cfg->certs[c].name) == 0)
                return 1;
    }
    return 0;
}

/* Every current certificate of the key, in every type (none is fine). */
static int revoke_key_certificates(ks_run *run, size_t ki, ks_err *err)
{
    for (size_t c = 0; c < run->cfg->n_certs; c++) {
        const ks_cert_config *cert = &run->cfg->certs[c];
        for (size_t t = 0; cert->key == ki && t < cert->n_key_types; t++) {
            store_cert have = {0};
            int found = store_cert_find_current(run->db, run->tenant, cert->name,
                                                ks_key_type_name(cert->key_types[t]), &have,
                                                err);
            store_cert_clear(&have);
            if (found < 0 || (found == 1 && revoke_one(run, cert, cert->key_types[t], err) < 0))
                return -1;
        }
    }
    return 0;
}

/* acmebot's --revoke: the certificates of the named keys are revoked, their
 * files archived and their TLSA records removed; the keys are marked, and
 * the next run rolls them over (their backups become the primaries) and
 * issues new certificates. */
static int revoke_keys_selected(ks_run *run)
{
    int failures = 0;
    for (size_t ki = 0; ki < run->cfg->n_keys; ki++) {
        const ks_key_config *k = &run->cfg->keys[ki];
        ks_err err = {0};
        int marked = 0;
        if (!key_selected_for_revoke(run, ki))
            continue;
        /* keyCompromise rolled the key over at once (retire_compromised_key):
         * marking the new primary would roll it over again. */
        int rolled_now = run->opts->revoke_reason == KS_REASON_KEY_COMPROMISE;
        if (revoke_key_certificates(run, ki, &err) < 0 ||
            (!rolled_now &&
             store_key_request_rollover(run->db, run->tenant, k->name, &marked, &err) < 0) ||
            ks_install_archive_certificates(run, ki, &err) < 0) {
            ks_error("%s", err.msg);
            failures++;
            continue;
        }
        failures += ks_tlsa_remove_key(run, ki);
        run->changed = 1;
        if (marked > 0)
            ks_log_action("private key %s: the next run rolls it over", k->name);
    }
    return failures;
}

/* show, deactivate and key-rollover act on an account that exists; they
 * never register one. */
static int require_account(ks_run *run, ks_err *err)
{
    ks_action a = run->opts->action;
    if (a != KS_ACTION_ACCOUNT_SHOW && a != KS_ACTION_ACCOUNT_DEACTIVATE &&
        a != KS_ACTION_ACCOUNT_KEY_ROLLOVER)
        return 0;
    store_account acct = {0};
    int found = store_account_find(run->db, run->tenant, run->cfg->acme_directory_url, &acct, err);
    int registered = found == 1 && acct.account_url != NULL;
    store_account_clear(&acct);
    if (found < 0)
        return -1;
    return registered ? 0
                      : ks_fail(err, "no ACME account is recorded for %s (a run registers one)",
                                run->cfg->acme_directory_url);
}

int ks_tenant_command(ks_run *run)
{
    ks_err err = {0};
    int rc = require_account(run, &err) < 0 ? -1 : ks_account_ensure(run, &err);
    if (rc == 0) {
        switch (run->opts->action) {
        case KS_ACTION_ACCOUNT_SHOW:
            rc = account_show(run, &err);
            break;
        case KS_ACTION_ACCOUNT_UPDATE:
            /* ks_account_ensure already sent the configured contact: the
             * account as the CA now has it is the answer. */
            rc = account_show(run, &err);
            break;
        case KS_ACTION_ACCOUNT_DEACTIVATE:
            rc = account_deactivate(run, &err);
            break;
        case KS_ACTION_ACCOUNT_KEY_ROLLOVER:
            rc = account_key_rollover(run, &err);
            break;
        case KS_ACTION_REVOKE:
            return revoke_selected(run);
        case KS_ACTION_REVOKE_KEYS:
            return revoke_keys_selected(run);
        case KS_ACTION_RUN:
            break;
        }
    }
    if (rc < 0)
        ks_error("tenant \"%s\": %s", run->tenant, err.msg);
    return rc < 0 ? 1 : 0;
}
