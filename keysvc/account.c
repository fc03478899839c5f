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

/* acme_signer callback: the account key signs JWS requests in the token. */
static int sign_jws(void *ctx, const unsigned char *input, size_t len, unsigned char **sig,
                    size_t *sig_len, ks_err *err)
{
    ks_run *run = ctx;
    return ks_signer_sign_jws(run->signer, &run->account_ref, run->account_alg, input, len, sig,
                              sig_len, err);
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
    EVP_PKEY *pub = NULL;
    int rc = -1;
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
    if (ks_keyref_from_row(&run->account_key, &run->account_ref, err) < 0 ||
        ks_signer_public_key(run->signer, &run->account_ref, &pub, err) < 0)
        goto out;
    run->account_alg = acme_jws_alg_for_key(pub);
    run->account_jwk = acme_jwk_new(pub, err);
    if (run->account_alg == NULL || run->account_jwk == NULL) {
        if (run->account_alg == NULL)
            ks_fail(err, "the account key type cannot sign ACME requests");
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(pub);
    return rc;
}

static int register_account(ks_run *run, store_account *acct, ks_err *err)
{
    const char *email = run->tenant_cfg->email ? run->tenant_cfg->email : run->cfg->account_email;
    int created = 0;
    if (acme_account_register(run->acme, &email, email ? 1 : 0, &created, err) < 0)
        return -1;
    const char *url = acme_client_account_url(run->acme);
    if (store_account_set_url(run->db, acct->id, url, email, err) < 0)
        return -1;
    if (!run->opts->quiet)
        printf("%s ACME account %s\n", created ? "registered" : "found existing", url);
    run->changed = 1;
    return 0;
}

int ks_account_ensure(ks_run *run, ks_err *err)
{
    if (run->acme != NULL)
        return 0;
    if (run->account_failed)
        return ks_fail(err, "not ordered: the ACME server or account is unavailable (see above)");
    store_account acct = {0};
    int rc = -1;
    /* The CA first: an unreachable CA must not cost a key or a row. */
    if (create_client(run, err) < 0)
        goto out;
    int found = store_account_find(run->db, run->tenant, run->cfg->acme_directory_url, &acct, err);
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
    if (acct.account_url == NULL && register_account(run, &acct, err) < 0)
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
