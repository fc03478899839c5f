/*
 * The ACME account: its key lives in the token, its URL in the database.
 */
#include "jws.h"
#include "keys.h"
#include "ks_log.h"
#include "ks_util.h"
#include "run.h"

#include <stdlib.h>
#include <string.h>

/* acme_signer callback for a ks_key_signer. */
static int key_signer_sign(void *ctx, const unsigned char *input, size_t len, unsigned char **sig,
                           size_t *sig_len, ks_err *err)
{
    ks_key_signer *ks = ctx;
    return ks_signer_sign_jws(ks->signer, &ks->ref, ks->alg, input, len, sig, sig_len, err);
}

/* acme_signer callback: the account key signs JWS requests in the token. */
static int sign_jws(void *ctx, const unsigned char *input, size_t len, unsigned char **sig,
                    size_t *sig_len, ks_err *err)
{
    ks_run *run = ctx;
    return ks_signer_sign_jws(run->signer, &run->account_ref, run->account_alg, input, len, sig,
                              sig_len, err);
}

int ks_key_jws_identity(ks_signer *signer, const ks_keyref *ref, const char **alg, char **jwk,
                        ks_err *err)
{
    EVP_PKEY *pub = NULL;
    *jwk = NULL;
    if (ks_signer_public_key(signer, ref, &pub, err) < 0)
        return -1;
    *alg = acme_jws_alg_for_key(pub);
    if (*alg == NULL)
        ks_fail(err, "the key type cannot sign ACME requests");
    else
        *jwk = acme_jwk_new(pub, err);
    EVP_PKEY_free(pub);
    return *jwk != NULL ? 0 : -1;
}

int ks_key_signer_init(ks_key_signer *ks, ks_signer *signer, const store_key *row, ks_err *err)
{
    memset(ks, 0, sizeof(*ks));
    ks->signer = signer;
    if (ks_keyref_from_row(row, &ks->ref, err) < 0 ||
        ks_key_jws_identity(signer, &ks->ref, &ks->alg, &ks->jwk, err) < 0)
        return -1;
    ks->acme = (acme_signer){.alg = ks->alg, .jwk_json = ks->jwk, .sign = key_signer_sign,
                             .ctx = ks};
    return 0;
}

void ks_key_signer_clear(ks_key_signer *ks)
{
    free(ks->jwk);
    ks->jwk = NULL;
}

static int create_client(ks_run *run, ks_err *err)
{
    acme_client_options opts = {
        .directory_url = run->cfg->acme_directory_url,
        .http = {.ca_file = run->cfg->acme_ca_file},
        /* 0 in the configuration means "do not retry"; the client treats 0
         * as "default", so ask for one millisecond instead. */
        .max_wait_ms = run->cfg->acme_max_retry_wait ? run->cfg->acme_max_retry_wait * 1000L : 1,
    };
    run->acme = acme_client_new(&opts, err);
    if (run->acme == NULL || acme_client_fetch_directory(run->acme, err) < 0)
        return -1;
    return 0;
}

/* Loads (or makes) the account key and hands it to the ACME client. */
static int load_account_key(ks_run *run, int64_t key_id, ks_err *err)
{
    const ks_config *cfg = run->cfg;
    if (key_id != 0) {
        if (store_key_get(run->db, key_id, &run->account_key, err) != 1)
            return ks_fail(err, "the account's key (id %lld) is missing from the database",
                           (long long)key_id);
    } else {
        /* Account keys have no backup: a new account key is rolled over with
         * ACME keyChange, not by swapping keys. */
        ks_key_request req;
        int generated;
        if (ks_key_request_init(&req, run->tenant, KS_PURPOSE_ACCOUNT, cfg->acme_directory_url,
                                cfg->account_key_type, cfg->account_key_size,
                                cfg->account_key_curve, err) < 0 ||
            ks_keys_ensure(run->db, run->signer, &req, 0, &run->account_key, &generated, err) < 0)
            return -1;
    }
    if (ks_keyref_from_row(&run->account_key, &run->account_ref, err) < 0)
        return -1;
    return ks_key_jws_identity(run->signer, &run->account_ref, &run->account_alg,
                               &run->account_jwk, err);
}

/* The tenant's external account binding, else the account section's, or
 * NULL when neither has one. */
static const acme_eab *account_eab(const ks_run *run, acme_eab *eab)
{
    const ks_tenant_config *t = run->tenant_cfg;
    *eab = t->eab_kid ? (acme_eab){.kid = t->eab_kid, .hmac_key = t->eab_hmac_key,
                                   .alg = t->eab_alg}
                      : (acme_eab){.kid = run->cfg->account_eab_kid,
                                   .hmac_key = run->cfg->account_eab_hmac_key,
                                   .alg = run->cfg->account_eab_alg};
    return eab->kid != NULL ? eab : NULL;
}

const char *ks_account_email(const ks_run *run)
{
    return run->tenant_cfg->email ? run->tenant_cfg->email : run->cfg->account_email;
}

static int same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* A changed account.email reaches the CA on the next run (as acmebot does). */
static int sync_contact(ks_run *run, const store_account *acct, ks_err *err)
{
    const char *email = ks_account_email(run);
    if (same_text(email, acct->contact))
        return 0;
    acme_account_info info = {0};
    ks_err refused = {0};
    int rc = acme_account_update_contact(run->acme, &email, email ? 1 : 0, &info, &refused);
    acme_account_info_clear(&info);
    if (rc < 0) {
        /* The account still works with its old contact: not a reason to
         * stop renewing. */
        ks_warn("the CA kept the account's old contact: %s", refused.msg);
        return 0;
    }
    if (store_account_set_url(run->db, acct->id, acct->account_url, email, err) < 0)
        return ks_failp(err, "updating the account's contact");
    ks_info("account contact updated to %s", email ? email : "(none)");
    run->changed = 1;
    return 0;
}

static int register_account(ks_run *run, store_account *acct, ks_err *err)
{
    const char *email = ks_account_email(run);
    int created = 0;
    acme_eab eab;
    if (acme_account_register(run->acme, &email, email ? 1 : 0, account_eab(run, &eab), &created,
                              err) < 0)
        return -1;
    const char *url = acme_client_account_url(run->acme);
    if (store_account_set_url(run->db, acct->id, url, email, err) < 0)
        return -1;
    ks_log_action("%s ACME account %s", created ? "registered" : "found existing", url);
    run->changed = 1;
    return 0;
}

/* A live "incoming" account key of this CA, in any key type. */
static int find_incoming_key(ks_run *run, store_key *out, ks_err *err)
{
    static const char *const types[] = {"ecdsa", "rsa", "ed25519"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        int found = store_key_find(run->db, run->tenant, "account", run->cfg->acme_directory_url,
                                   types[i], "incoming", out, err);
        if (found != 0)
            return found;
    }
    return 0;
}

/* Whether the CA knows `key` as the account at `account_url`: 1 yes, 0 no
 * (accountDoesNotExist), -1 when that cannot be told, also when the CA
 * knows the key as another account (then nothing may be discarded). */
static int ca_knows_key(ks_run *run, const store_key *key, const char *account_url, ks_err *err)
{
    ks_key_signer probe;
    int known = 0;
    if (ks_key_signer_init(&probe, run->signer, key, err) < 0) {
        ks_key_signer_clear(&probe);
        return -1;
    }
    int rc = acme_client_set_account(run->acme, &probe.acme, NULL, err) < 0 ||
                     acme_account_find(run->acme, &known, err) < 0
                 ? -1
                 : known;
    if (rc == 1 && !same_text(acme_client_account_url(run->acme), account_url))
        rc = ks_fail(err, "the CA knows key %s as another account URL than the recorded %s; "
                          "left for an operator",
                     key->label, account_url);
    /* The probe's signer dies with this frame: the client must not keep it. */
    acme_client_forget_account(run->acme);
    ks_key_signer_clear(&probe);
    return rc;
}

/* An account key rollover interrupted between the CA's answer and the
 * database's commit leaves a live "incoming" account key.  The CA says
 * which key is the account's: the switch is finished, or the new key is
 * discarded. */
int ks_account_settle_key(ks_run *run, store_account *acct, ks_err *err)
{
    store_key incoming = {0};
    int found = find_incoming_key(run, &incoming, err);
    int rc = found < 0 ? -1 : 0;
    if (found == 1) {
        int known = ca_knows_key(run, &incoming, acct->account_url, err);
        if (known == 1 &&
            store_account_switch_key(run->db, acct->id, acct->key_id, incoming.id, err) == 0) {
            ks_info("finished an interrupted account key rollover: key %s", incoming.label);
            acct->key_id = incoming.id;
        } else if (known == 0 && ks_keys_discard_incoming(run->db, run->signer, &incoming, err) == 0) {
            ks_info("discarded key %s of an account key rollover the CA never took",
                    incoming.label);
        } else {
            rc = -1;
        }
    }
    store_key_clear(&incoming);
    if (rc == 0 && found == 1)
        rc = ks_keys_recover(run->db, run->signer, run->tenant, err);
    return rc < 0 ? ks_failp(err, "settling an interrupted account key rollover") : 0;
}

int ks_account_ensure(ks_run *run, ks_err *err)
{
    if (run->acme != NULL)
        return 0;
    if (run->account_failed)
        return ks_fail(err, "not ordered: the ACME server or account is unavailable (see above)");
    store_account acct = {0};
    int rc = -1;
    /* The CA first: an unreachable CA, or one that wants a binding we do
     * not have, must not cost a key or a row. */
    acme_eab eab;
    if (create_client(run, err) < 0)
        goto out;
    int found = store_account_find(run->db, run->tenant, run->cfg->acme_directory_url, &acct, err);
    if (found == 1 && acct.account_url != NULL && ks_account_settle_key(run, &acct, err) < 0)
        goto out;
    if (found == 0 && acme_client_eab_required(run->acme) && account_eab(run, &eab) == NULL) {
        ks_fail(err, "%s requires external account binding: set account.eab_kid and "
                     "account.eab_hmac_key (or the tenant's)",
                run->cfg->acme_directory_url);
        goto out;
    }
    if (found < 0 || load_account_key(run, found ? acct.key_id : 0, err) < 0)
        goto out;
    if (!found) {
        acct.tenant = strdup(run->tenant);
        acct.directory_url = strdup(run->cfg->acme_directory_url);
        acct.key_id = run->account_key.id;
        if (acct.tenant == NULL || acct.directory_url == NULL ||
            store_account_insert(run->db, &acct, err) < 0)
            goto out;
    }
    acme_signer signer = {.alg = run->account_alg,
                          .jwk_json = run->account_jwk,
                          .sign = sign_jws,
                          .ctx = run};
    if (acme_client_set_account(run->acme, &signer, acct.account_url, err) < 0)
        goto out;
    if (acct.account_url == NULL ? register_account(run, &acct, err) < 0
                                 : sync_contact(run, &acct, err) < 0)
        goto out;
    rc = 0;
out:
    store_account_clear(&acct);
    if (rc < 0) {
        acme_client_free(run->acme);
        run->acme = NULL;
        free(run->account_jwk);
        run->account_jwk = NULL;
        store_key_clear(&run->account_key);
        run->account_failed = 1;
    }
    return rc;
}
