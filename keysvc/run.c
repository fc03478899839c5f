#include "run.h"

#include "chain.h"
#include "http01.h"
#include "install.h"
#include "keys.h"
#include "ks_clock.h"
#include "hook.h"
#include "lock.h"
#include "ks_log.h"
#include "ks_util.h"
#include "pgcluster.h"
#include "pin.h"
#include "tlsa.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Everything that can be checked without touching the token, the database
 * or the CA is checked first, so that bad input changes nothing. */
static int preflight(const ks_config *cfg, ks_err *err)
{
    static const char methods[] = "zone_update_keys, settings.reload_zone_command, "
                                  "hooks.set_dns_challenge or dns_hooks";
    /* A follower never validates: it needs no method. */
    for (size_t i = 0; !cfg->follower_mode && i < cfg->n_certs; i++) {
        const ks_cert_config *c = &cfg->certs[i];
        for (size_t j = 0; j < c->n_alt_names; j++) {
            const char *name = c->alt_names[j];
            ks_challenge_kind kind = ks_config_challenge(cfg, name);
            if (kind == KS_CHALLENGE_NONE && name[0] == '*')
                return ks_fail(err, "%s: %s: wildcard names are validated by dns-01: configure "
                                    "%s", cfg->path, name, methods);
            if (kind == KS_CHALLENGE_NONE)
                return ks_fail(err, "%s: %s: no validation method for this name (http_challenges, "
                                    "directories.http_challenge, settings.http_responder, "
                                    "tls_alpn_challenges, or dns-01 by %s)",
                               cfg->path, name, methods);
            /* A webroot must be usable before anything is published; one
             * from directories.http_challenge is made when missing. */
            const char *webroot = ks_config_webroot(cfg, name);
            if (kind == KS_CHALLENGE_HTTP01 && webroot != NULL &&
                http01_webroot_check(webroot, err) < 0)
                return ks_failp(err, "%s: http_challenges[\"%s\"]", cfg->path, name);
        }
    }
    return 0;
}

/* revoke names the certificates it revokes; each must be configured. */
/* revoke names the certificates it revokes, run --revoke the private keys
 * (or certificates) whose certificates it revokes; each must be configured. */
static int check_command(const ks_config *cfg, const ks_run_options *opts, ks_err *err)
{
    int keys = opts->action == KS_ACTION_REVOKE_KEYS;
    const char *what = keys ? "--revoke" : "revoke";
    if (opts->action != KS_ACTION_REVOKE && !keys)
        return 0;
    if (opts->n_names == 0)
        return ks_fail(err, "%s: name the %s to revoke (a safety measure)", what,
                       keys ? "private keys or certificates" : "certificates");
    for (size_t i = 0; i < opts->n_names; i++) {
        int known = 0;
        for (size_t c = 0; c < cfg->n_certs && !known; c++)
            known = strcmp(cfg->certs[c].name, opts->names[i]) == 0 ||
                    (keys && strcmp(cfg->keys[cfg->certs[c].key].name, opts->names[i]) == 0);
        if (!known)
            return ks_fail(err, "%s: %s: no such %s in %s", what, opts->names[i],
                           keys ? "private key or certificate" : "certificate", cfg->path);
    }
    return 0;
}

static int names_equal(const store_cert *have, const ks_cert_config *want)
{
    if (have->n_alt_names != want->n_alt_names || strcmp(have->common_name, want->common_name))
        return 0;
    for (size_t i = 0; i < want->n_alt_names; i++) {
        int found = 0;
        for (size_t j = 0; j < have->n_alt_names && !found; j++)
            found = strcmp(want->alt_names[i], have->alt_names[j]) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

/* Directory URLs compare equal with or without a trailing slash. */
static int same_url(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 0 && a[la - 1] == '/')
        la--;
    while (lb > 0 && b[lb - 1] == '/')
        lb--;
    return la == lb && strncmp(a, b, la) == 0;
}

/* Why a certificate must be issued now, or NULL when the stored one is good.
 * `primary` is the current primary key, NULL when there is none; `ari_due`
 * is the CA's renewal information (1 due, 0 not yet, -1 none: renewal_days
 * decide). */
/* What the stored leaf says about itself: must-staple, and whether its
 * public key is the key's (by SPKI pin).  -1 when it cannot be read. */
static int leaf_facts(const store_cert *have, const store_key *key, int *must_staple,
                      int *matches)
{
    BIO *bio = BIO_new_mem_buf(have->cert_pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (x == NULL)
        return -1;
    ks_err ignored;
    char *pin = ks_spki_pin_new(X509_get0_pubkey(x), &ignored);
    *must_staple = X509_get_ext_by_NID(x, NID_tlsfeature, -1) >= 0;
    *matches = pin != NULL && key != NULL && key->spki_sha256 != NULL &&
               strcmp(pin, key->spki_sha256) == 0;
    free(pin);
    X509_free(x);
    return 0;
}

static const char *issue_reason(const ks_run *run, const ks_cert_config *cert,
                                const store_cert *have, int found, const store_key *primary,
                                int ari_due)
{
    const ks_config *cfg = run->cfg;
    int must_staple = 0, matches = 0;
    if (!found)
        return "no certificate yet";
    if (run->opts->renew)
        return "renewal asked for (--renew)";
    if (have->directory_url != NULL && !same_url(have->directory_url, cfg->acme_directory_url))
        return "the CA changed";
    if (!names_equal(have, cert))
        return "names changed";
    if (ari_due == 1)
        return "the CA's renewal window has come (ARI)";
    /* A window the CA places too late must not let the certificate lapse:
     * its last tenth of validity renews whatever the window says. */
    if (ari_due == 0 && have->not_after - ks_now() < (have->not_after - have->not_before) / 10)
        return "expiring, and the CA's renewal window lies later";
    if (ari_due == -1 && have->not_after - ks_now() < (time_t)cfg->renewal_days * 86400)
        return "due for renewal";
    if (primary == NULL || primary->id != have->key_id)
        return "key changed";
    if (leaf_facts(have, primary, &must_staple, &matches) < 0)
        return "the stored certificate cannot be read";
    if (!matches)
        return "the stored certificate does not match its key";
    if (must_staple != cert->ocsp_must_staple)
        return must_staple ? "must-staple turned off" : "must-staple turned on";
    return NULL;
}

static int compare_keyref(const void *a, const void *b)
{
    const ks_keyref *x = a, *y = b;
    if (x->id_len != y->id_len)
        return x->id_len < y->id_len ? -1 : 1;
    return memcmp(x->id, y->id, x->id_len);
}

/* 1 when the key is in the token.  The token is listed once per run (a
 * search per key costs a pass over every object each time); a key missing
 * from that list is searched for directly before it is declared gone, since
 * another worker may have made it after the list was taken. */
static int token_has_key(ks_run *run, const ks_keyref *ref, ks_err *err)
{
    if (!run->token_keys_loaded) {
        ks_err list_err;
        run->token_keys_loaded = 1;
        if (ks_signer_list_keys(run->signer, &run->token_keys, &run->n_token_keys, &list_err) < 0)
            ks_warn("listing the token's keys failed (%s); checking keys one by one",
                    list_err.msg);
        else
            qsort(run->token_keys, run->n_token_keys, sizeof(*run->token_keys), compare_keyref);
    }
    if (run->token_keys != NULL &&
        bsearch(ref, run->token_keys, run->n_token_keys, sizeof(*ref), compare_keyref) != NULL)
        return 1;
    return ks_signer_key_exists(run->signer, ref, err);
}

/* A current certificate needs its key to still be in the token (its
 * files are kept in step by ks_install_key). */
static int keep_current(ks_run *run, const ks_cert_config *cert, ks_key_type type,
                        const store_key *key, ks_err *err)
{
    ks_keyref ref;
    if (ks_keyref_from_row(key, &ref, err) < 0)
        return -1;
    int present = token_has_key(run, &ref, err);
    if (present == 0)
        ks_fail(err, "it is missing from the token");
    if (present <= 0)
        return ks_failp(err, "%s (%s): key %s", cert->name, ks_key_type_name(type), key->label);
    return 0;
}

/* ------------------------------------------------ renewal information */

/* How long to wait before asking the CA again, without a Retry-After. */
#define ARI_DEFAULT_RECHECK_S (6 * 3600)
/* A CA without renewalInfo is asked again (through its directory) after this. */
#define ARI_ABSENT_RECHECK_S (24 * 3600)
/* After a failed request: the CA is not asked again for this long. */
#define ARI_FAILED_RECHECK_S 3600
/* Retry-After is honoured within these bounds (RFC 9773 4.3 leaves the
 * client to clamp unreasonable values). */
#define ARI_MIN_RECHECK_S 60
#define ARI_MAX_RECHECK_S (7 * 86400)

/* When to ask again: after the CA's Retry-After within bounds, or the
 * default, plus up to a tenth more, so that certificates checked in one run
 * are not all due again in the same run. */
static time_t ari_next_check(time_t now, long long retry_after_s)
{
    long long wait = retry_after_s > 0 ? retry_after_s : ARI_DEFAULT_RECHECK_S;
    unsigned short r = 0;
    if (wait < ARI_MIN_RECHECK_S)
        wait = ARI_MIN_RECHECK_S;
    if (wait > ARI_MAX_RECHECK_S)
        wait = ARI_MAX_RECHECK_S;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) == 1)
        wait += (long long)r * (wait / 10) / 65536;
    return now + (time_t)wait;
}

/* A failed request keeps the stored window and moves only the next check,
 * so that an unavailable renewalInfo does not cost every run its retries. */
static void ari_postpone(ks_run *run, store_cert *have)
{
    ks_err ignored;
    have->ari.next_check = ks_now() + ARI_FAILED_RECHECK_S;
    if (store_cert_set_ari(run->db, have->id, &have->ari, &ignored) < 0)
        ks_warn("%s", ignored.msg);
}

/* The RFC 9773 identifier of a stored certificate; caller frees. */
static char *ari_cert_id_new(const store_cert *have, ks_err *err)
{
    unsigned char *der = NULL;
    size_t len = 0;
    if (ks_chain_leaf_der(have->cert_pem, &der, &len, err) < 0)
        return NULL;
    char *id = acme_ari_cert_id_new(der, len, err);
    OPENSSL_free(der);
    return id;
}

/* Asks the CA for the certificate's window and keeps it with the moment
 * picked inside it; the moment is picked again only when the window moved
 * (so that runs do not re-roll the dice).  Updates have->ari. */
static int ari_refresh(ks_run *run, store_cert *have, const char *cert_id, ks_err *err)
{
    acme_renewal_info ri = {0};
    time_t now = ks_now();
    store_ari ari = have->ari;
    if (!acme_client_has(run->acme, "renewalInfo")) {
        ari = (store_ari){.next_check = now + ARI_ABSENT_RECHECK_S};
    } else {
        if (acme_renewal_info_fetch(run->acme, cert_id, &ri, err) < 0)
            return -1;
        if (ri.start != ari.window_start || ri.end != ari.window_end || ari.renew_at == 0) {
            ari.renew_at = acme_ari_pick(&ri);
            ks_info("%s (%s): the CA suggests renewing between %lld and %lld; picked %lld",
                    have->name, have->key_type, (long long)ri.start, (long long)ri.end,
                    (long long)ari.renew_at);
        }
        ari.window_start = ri.start;
        ari.window_end = ri.end;
        ari.next_check = ari_next_check(now, ri.retry_after_s);
    }
    acme_renewal_info_clear(&ri);
    if (store_cert_set_ari(run->db, have->id, &ari, err) < 0)
        return -1;
    have->ari = ari;
    return 0;
}

/* Whether the CA's renewal information says to renew now: 1 yes, 0 not
 * yet, -1 no information (renewal_days decide).  The CA is asked only when
 * the stored answer has expired, so a run with nothing due stays off the
 * network.  When due, *cert_id gets the identifier for "replaces" (caller
 * frees). */
static int ari_due(ks_run *run, store_cert *have, char **cert_id)
{
    ks_err err = {0};
    *cert_id = NULL;
    if (!run->cfg->ari)
        return -1;
    if (have->ari.next_check == 0 || ks_now() >= have->ari.next_check) {
        char *id = ari_cert_id_new(have, &err);
        if (id == NULL || ks_account_ensure(run, &err) < 0 || ari_refresh(run, have, id, &err) < 0) {
            ks_warn("%s (%s): renewal information unavailable (asked again in an hour; the "
                    "last window or renewal_days decide): %s",
                    have->name, have->key_type, err.msg);
            ari_postpone(run, have);
        }
        free(id);
    }
    if (have->ari.window_end == 0)
        return -1;
    int due = ks_now() >= have->ari.renew_at;
    if (due && (*cert_id = ari_cert_id_new(have, &err)) == NULL)
        ks_warn("%s", err.msg);
    return due;
}

/* Brings one certificate of one key type up to date. */
static int process(ks_run *run, const ks_cert_config *cert, ks_key_type type, ks_err *err)
{
    const char *type_name = ks_key_type_name(type);
    store_cert have = {0};
    store_key primary = {0};
    int rc = -1;
    const char *key_name = run->cfg->keys[cert->key].name;
    int found = store_cert_find_current(run->db, run->tenant, cert->name, type_name, &have, err);
    int has_key = found < 0 ? -1
                            : store_key_find(run->db, run->tenant, "certificate", key_name,
                                             type_name, "primary", &primary, err);
    if (found < 0 || has_key < 0)
        goto out;
    char *cert_id = NULL;
    int due = found ? ari_due(run, &have, &cert_id) : -1;
    const char *reason = issue_reason(run, cert, &have, found, has_key ? &primary : NULL, due);
    if (reason != NULL) {
        ks_info("%s (%s): issuing: %s", cert->name, type_name, reason);
        rc = ks_issue(run, cert, type, cert_id, err);
    } else {
        rc = keep_current(run, cert, type, &primary, err);
    }
    free(cert_id);
out:
    store_key_clear(&primary);
    store_cert_clear(&have);
    return rc;
}

/* Whether the run's name list (if any) names `name`. */
static int name_selected(const ks_run *run, const char *name)
{
    if (run->opts->n_names == 0)
        return 1;
    for (size_t i = 0; i < run->opts->n_names; i++)
        if (strcmp(run->opts->names[i], name) == 0)
            return 1;
    return 0;
}

/* Whether the run selects this certificate: by its own name or by its
 * private key's. */
static int selected(const ks_run *run, const ks_cert_config *cert)
{
    return name_selected(run, cert->name) || name_selected(run, run->cfg->keys[cert->key].name);
}

static int in_tenant(const ks_run *run, const ks_cert_config *cert)
{
    const ks_key_config *k = &run->cfg->keys[cert->key];
    return strcmp(run->cfg->tenants[k->tenant].name, run->tenant) == 0;
}

/* Whether the run works on private key `ki`: one of its certificates is
 * in this tenant and selected. */
static int key_wanted(const ks_run *run, size_t ki)
{
    for (size_t c = 0; c < run->cfg->n_certs; c++)
        if (run->cfg->certs[c].key == ki && in_tenant(run, &run->cfg->certs[c]) &&
            selected(run, &run->cfg->certs[c]))
            return 1;
    return 0;
}

static int key_request(const ks_run *run, const ks_key_config *k, ks_key_type type,
                       ks_key_request *req, ks_err *err)
{
    return ks_key_request_init(req, run->tenant, KS_PURPOSE_CERTIFICATE, k->name, type,
                               k->key_size, k->key_curve, err);
}

/* Rollovers due or asked for, in each key type; returns the failure count,
 * *rolled set when some key type was rolled over. */
static int roll_key_over(ks_run *run, size_t ki, int *rolled)
{
    const ks_key_config *k = &run->cfg->keys[ki];
    int failures = 0;
    *rolled = 0;
    for (size_t t = 0; t < k->n_key_types; t++) {
        ks_err err = {0};
        ks_key_request req;
        int rc = key_request(run, k, k->key_types[t], &req, &err);
        if (rc == 0)
            rc = ks_rollover_apply(run, ki, &req, &err);
        if (rc < 0) {
            ks_error("%s", err.msg);
            failures++;
        }
        *rolled |= rc == 1;
    }
    return failures;
}

/* Without directories.previous_key, a previous key lives only until the
 * certificates it served have been renewed with the new primary. */
static int retire_previous_keys(ks_run *run, const ks_key_config *k)
{
    int failures = 0;
    for (size_t t = 0; t < k->n_key_types; t++) {
        ks_err err = {0};
        ks_key_request req;
        int retired = 0;
        if (key_request(run, k, k->key_types[t], &req, &err) < 0 ||
            ks_keys_retire_previous(run->db, run->signer, &req, &retired, &err) < 0) {
            ks_error("%s", err.msg);
            failures++;
        }
        run->changed |= retired;
    }
    return failures;
}

/* The certificates of private key `ki` selected in this run, each key type;
 * after a rollover all of them, so that none is left on the old key while
 * the key files name the new one. */
static int process_key_certificates(ks_run *run, size_t ki, int rolled)
{
    int failures = 0;
    for (size_t i = 0; i < run->cfg->n_certs; i++) {
        const ks_cert_config *cert = &run->cfg->certs[i];
        if (cert->key != ki || !in_tenant(run, cert) || !(rolled || selected(run, cert)))
            continue;
        for (size_t t = 0; t < cert->n_key_types; t++) {
            ks_err err = {0};
            if (process(run, cert, cert->key_types[t], &err) < 0) {
                ks_error("%s", err.msg);
                failures++;
            }
        }
    }
    return failures;
}

/* One private key: rollovers, its certificates, then all of its files in
 * one transaction (also after a failure: what is stored and good is kept in
 * step).  When all of it went well its previous key, if no longer needed,
 * is retired after the services are reloaded (retire_after_reload). */
static int process_key(ks_run *run, size_t ki)
{
    ks_err err = {0};
    int rolled = 0;
    int failures = roll_key_over(run, ki, &rolled);
    failures += process_key_certificates(run, ki, rolled);
    if (ks_install_key(run, ki, &err) < 0) {
        ks_error("%s", err.msg);
        failures++;
    }
    if (failures == 0 && run->cfg->dir_previous_key == NULL && run->retire_ready != NULL)
        run->retire_ready[ki] = 1;
    return failures;
}

static int process_tenant_keys(ks_run *run)
{
    int failures = 0;
    for (size_t ki = 0; ki < run->cfg->n_keys; ki++)
        if (key_wanted(run, ki))
            failures += process_key(run, ki);
    return failures;
}

/* acmebot's --tlsa: the TLSA records of each key's certificates, after
 * their certificates and keys are settled. */
static int process_tenant_tlsa(ks_run *run)
{
    unsigned char *wanted = calloc(run->cfg->n_keys ? run->cfg->n_keys : 1, 1);
    if (wanted == NULL) {
        ks_error("TLSA records: out of memory");
        return 1;
    }
    for (size_t ki = 0; ki < run->cfg->n_keys; ki++)
        wanted[ki] = (unsigned char)key_wanted(run, ki);
    int failures = ks_tlsa_update(run, wanted);
    free(wanted);
    return failures;
}

/* acmebot's authorizations (names validated without a certificate), in the
 * tenant of the default account: the first.  A follower never validates. */
static int process_authorizations(ks_run *run)
{
    int failures = 0;
    if (run->cfg->n_authorizations == 0 || run->tenant_cfg != &run->cfg->tenants[0])
        return 0;
    if (run->cfg->follower_mode) {
        ks_info("follower mode: authorizations are left to the master");
        return 0;
    }
    for (size_t i = 0; i < run->cfg->n_authorizations; i++) {
        const ks_authorization *a = &run->cfg->authorizations[i];
        ks_err err = {0};
        if (!name_selected(run, a->name))
            continue;
        if (ks_authorize(run, a->name, a->fqdns, a->n_fqdns, &err) < 0) {
            ks_error("%s", err.msg);
            failures++;
        } else {
            ks_log_action("authorized %s: %zu name(s)", a->name, a->n_fqdns);
        }
    }
    return failures;
}

/* run->reload[i]: 0 untouched, 1 to reload, RELOAD_FAILED after a failed
 * reload (the service may still hold the old key). */
#define RELOAD_FAILED 2

void ks_run_mark_services(ks_run *run, size_t cert_index)
{
    const ks_cert_config *c = &run->cfg->certs[cert_index];
    for (size_t i = 0; run->reload != NULL && i < c->n_services; i++)
        run->reload[c->services[i]] = 1;
}

/* Each service whose certificate changed, once, after every file of the
 * run is in place; a failed reload is a warning, as in acmebot. */
static void reload_services(ks_run *run)
{
    for (size_t i = 0; run->reload != NULL && i < run->cfg->n_services; i++) {
        const ks_service *svc = &run->cfg->services[i];
        char what[200], *out = NULL;
        ks_err err;
        if (!run->reload[i])
            continue;
        snprintf(what, sizeof(what), "service %s", svc->name);
        if (ks_hook_run(what, svc->command, NULL, 0, run->cfg->hook_timeout, &out, &err) < 0) {
            ks_warn("%s", err.msg);
            run->reload[i] = RELOAD_FAILED;
        } else {
            ks_log_action("reloaded %s", svc->name);
            if (out != NULL && out[0] != '\0') {
                char *safe = ks_escape_new(out, (size_t)-1);
                ks_info("%s: %s", what, safe ? safe : "");
                free(safe);
            }
        }
        free(out);
    }
}

/* The service of a certificate of key `ki` that failed to reload, or NULL. */
static const char *failed_service_of_key(const ks_run *run, size_t ki)
{
    for (size_t c = 0; c < run->cfg->n_certs; c++) {
        const ks_cert_config *cert = &run->cfg->certs[c];
        for (size_t s = 0; cert->key == ki && s < cert->n_services; s++)
            if (run->reload[cert->services[s]] == RELOAD_FAILED)
                return run->cfg->services[cert->services[s]].name;
    }
    return NULL;
}

/* The previous keys of the keys whose files went in place, once every
 * service is reloaded: a server that signs through the token must never be
 * left holding a certificate whose key is gone.  A key whose service did
 * not reload keeps its previous key until a later run. */
static int retire_after_reload(ks_run *run, ks_signer **signers)
{
    int failures = 0;
    for (size_t i = 0; i < run->cfg->n_tenants; i++) {
        if (signers[i] == NULL)
            continue;
        run->tenant_cfg = &run->cfg->tenants[i];
        run->tenant = run->tenant_cfg->name;
        run->signer = signers[i];
        ks_audit_hooks hooks = ks_store_audit_hooks(run->db);
        ks_signer_set_audit(signers[i], &hooks);
        for (size_t ki = 0; ki < run->cfg->n_keys; ki++) {
            const ks_key_config *k = &run->cfg->keys[ki];
            const char *failed = NULL;
            if (!run->retire_ready[ki] || k->tenant != i)
                continue;
            if ((failed = failed_service_of_key(run, ki)) != NULL)
                ks_warn("key %s: service %s did not reload, so its previous key is kept "
                        "until a later run",
                        k->name, failed);
            else
                failures += retire_previous_keys(run, k);
        }
        ks_signer_set_audit(signers[i], NULL);
    }
    run->tenant_cfg = NULL;
    run->tenant = NULL;
    run->signer = NULL;
    return failures;
}

store *ks_open_database(const ks_config *cfg, pgcluster **cluster, ks_err *err)
{
    const char *conninfo = cfg->database_url;
    *cluster = NULL;
    if (conninfo == NULL) {
        pgcluster_options opts = {.state_dir = cfg->dir_state, .run_as = cfg->database_run_as};
        *cluster = pgcluster_ensure(&opts, err);
        if (*cluster == NULL)
            return NULL;
        conninfo = pgcluster_conninfo(*cluster);
    }
    store *db = store_connect(conninfo, err);
    if (db != NULL && store_migrate(db, err) < 0) {
        store_close(db);
        db = NULL;
    }
    return db;
}

/* Runs on other hosts may share the database: one run per tenant at a time,
 * so that two never order the same certificate. */
static int lock_tenant(store *db, const char *tenant, ks_err *err)
{
    char name[256];
    int got = 0;
    snprintf(name, sizeof(name), "keysvc:tenant:%s", tenant);
    if (store_try_lock(db, name, &got, err) < 0)
        return -1;
    if (!got)
        return ks_fail(err, "another keysvc run using this database is working for tenant "
                            "\"%s\"; try again when it has finished",
                       tenant);
    return 0;
}

/* Forgets what belonged to the previous tenant. */
static void end_tenant(ks_run *run)
{
    acme_client_free(run->acme);
    free(run->account_jwk);
    free(run->token_keys);
    store_key_clear(&run->account_key);
    run->acme = NULL;
    run->account_jwk = NULL;
    run->account_alg = NULL;
    run->token_keys = NULL;
    run->n_token_keys = 0;
    run->token_keys_loaded = 0;
    run->account_failed = 0;
    run->signer = NULL;
}

/* One tenant: its lock, recovery of interrupted key operations, the
 * rollovers asked for, then its certificates.  Returns the failure count. */
static int run_tenant(ks_run *run, size_t index, ks_signer *signer)
{
    ks_err err = {0};
    run->tenant_cfg = &run->cfg->tenants[index];
    run->tenant = run->tenant_cfg->name;
    run->signer = signer;
    ks_audit_hooks hooks = ks_store_audit_hooks(run->db);
    ks_signer_set_audit(signer, &hooks);
    int failures = 0;
    if (lock_tenant(run->db, run->tenant, &err) < 0 ||
        ks_keys_recover(run->db, signer, run->tenant, &err) < 0) {
        ks_error("%s", err.msg);
        failures = 1;
    } else if (run->opts->action != KS_ACTION_RUN) {
        failures = ks_tenant_command(run);
    } else {
        unsigned parts = run->opts->parts ? run->opts->parts : KS_PART_ALL;
        if (parts & KS_PART_AUTH)
            failures += process_authorizations(run);
        if (parts & KS_PART_CERTS)
            failures += process_tenant_keys(run);
        if (parts & KS_PART_TLSA)
            failures += process_tenant_tlsa(run);
    }
    ks_signer_set_audit(signer, NULL);
    end_tenant(run);
    return failures;
}

/* Starts the run's own signer, or reaches the standalone one.  Returns 1 in
 * the signer child once it is done (its exit code in *child_status). */
static int start_signer(const ks_config *cfg, const ks_run_options *opts, ks_signer_process *proc,
                        int *child_status, ks_err *err)
{
    if (cfg->signer_socket != NULL) {
        /* The standalone signer holds the PINs; a copy in this process's
         * environment is wiped all the same. */
        for (size_t i = 0; i < cfg->n_tenants; i++)
            ks_pin_env_wipe(cfg->tenants[i].pin_env);
        return ks_signer_use_path(cfg->signer_socket, cfg->signer_user, proc, err);
    }
    size_t n = 0;
    ks_signer_wipe_unused_pins(cfg, opts->tenant);
    ks_signer_tenant_config *tenants = ks_signer_tenants_from_config(cfg, opts->tenant, &n, err);
    if (tenants == NULL)
        return -1;
    int rc = ks_signer_spawn(cfg->hsm_module, tenants, n, proc, child_status, err);
    free(tenants);
    return rc;
}

/* Logs into every tenant the run works for, before anything is changed:
 * a wrong PIN or a missing token stops that tenant with nothing done.
 * *tried counts the tenants asked for, *failures those that failed. */
static ks_signer **open_tenants(const ks_config *cfg, const ks_run_options *opts,
                                ks_signer_process *proc, int *tried, int *failures)
{
    ks_signer **signers = calloc(cfg->n_tenants ? cfg->n_tenants : 1, sizeof(*signers));
    for (size_t i = 0; signers && i < cfg->n_tenants; i++) {
        ks_err err = {0};
        const char *name = cfg->tenants[i].name;
        if (opts->tenant != NULL && strcmp(opts->tenant, name) != 0)
            continue;
        (*tried)++;
        signers[i] = ks_signer_open_process(proc, name, &err);
        if (signers[i] == NULL) {
            ks_error("tenant \"%s\": %s", name, err.msg);
            (*failures)++;
        }
    }
    return signers;
}

static int exit_code(const ks_run *run, int failures)
{
    if (failures > 0)
        return KS_EXIT_FAILED;
    if (run->opts->action != KS_ACTION_RUN)
        return 0;
    if (run->changed)
        return KS_EXIT_CHANGED;
    ks_info("nothing to do: %zu certificate(s) current", run->cfg->n_certs);
    return KS_EXIT_NOTHING;
}

/* --randomwait: a pause of min_run_delay..max_run_delay seconds, so that
 * many hosts started by cron at one minute do not reach the CA at once. */
static void random_wait(const ks_config *cfg)
{
    unsigned int r = 0;
    int span = cfg->max_run_delay - cfg->min_run_delay;
    if (span > 0 && RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        r = 0;
    unsigned int delay = (unsigned int)cfg->min_run_delay + (span > 0 ? r % (unsigned)(span + 1) : 0);
    ks_info("waiting %u seconds (--randomwait)", delay);
    while (delay > 0)
        delay = sleep(delay);
}

int ks_run_main(const ks_config *cfg, const ks_run_options *opts)
{
    ks_err err = {0};
    ks_run run = {.cfg = cfg, .opts = opts};
    ks_signer_process signer = {0};
    ks_signer **signers = NULL;
    pgcluster *cluster = NULL;
    int lock_fd = -1, failures = 0, tried = 0, child_status = 0, curl_ready = 0;
    int result = KS_EXIT_FAILED;

    if (opts->tenant != NULL && ks_config_tenant_index(cfg, opts->tenant) < 0) {
        ks_fail(&err, "no tenant \"%s\" is configured", opts->tenant);
        goto out;
    }
    if ((opts->action == KS_ACTION_RUN ? preflight(cfg, &err) < 0
                                       : check_command(cfg, opts, &err) < 0) ||
        ks_install_resolve_owner(cfg, &run.file_uid, &run.file_gid, &err) < 0)
        goto out;
    if (opts->random_wait)
        random_wait(cfg);
    /* The signer first, before any network or database: the child must not
     * inherit either, and the worker must not keep a PIN. */
    int started = start_signer(cfg, opts, &signer, &child_status, &err);
    if (started == 1)
        return child_status;
    if (started < 0 || (lock_fd = ks_state_lock(cfg->dir_state, &err)) < 0)
        goto out;
    run.reload = calloc(cfg->n_services ? cfg->n_services : 1, 1);
    run.retire_ready = calloc(cfg->n_keys ? cfg->n_keys : 1, 1);
    if (run.reload == NULL || run.retire_ready == NULL) {
        ks_fail(&err, "out of memory");
        goto out;
    }
    /* After the fork: the signer never holds what curl sets up. */
    curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    if (!curl_ready) {
        ks_fail(&err, "cannot initialise libcurl");
        goto out;
    }
    signers = open_tenants(cfg, opts, &signer, &tried, &failures);
    if (signers == NULL || failures == tried ||
        (run.db = ks_open_database(cfg, &cluster, &err)) == NULL)
        goto out;
    for (size_t i = 0; i < cfg->n_tenants; i++)
        if (signers[i] != NULL)
            failures += run_tenant(&run, i, signers[i]);
    reload_services(&run);
    failures += retire_after_reload(&run, signers);
    result = exit_code(&run, failures);
out:
    if (err.msg[0] != '\0')
        ks_error("%s", err.msg);
    for (size_t i = 0; signers && i < cfg->n_tenants; i++)
        ks_signer_close(signers[i]);
    free(signers);
    free(run.reload);
    free(run.retire_ready);
    store_close(run.db);
    ks_signer_process_end(&signer);
    pgcluster_release(cluster);
    if (curl_ready)
        curl_global_cleanup();
    ks_state_unlock(lock_fd);
    return result;
}
