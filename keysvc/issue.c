/*
 * Issuing one certificate for one key type: order, authorizations (http-01
 * through webroots), then the key (generated only once the CA has validated
 * the names, so a refused order costs no key), CSR signed in the token,
 * finalize, download, checks, then the database and the files.  The orders
 * table records each attempt, its URL, key and outcome.
 */
#include "chain.h"
#include "csr.h"
#include "http01.h"
#include "keys.h"
#include "ks_log.h"
#include "ks_util.h"
#include "run.h"

#include <stdlib.h>
#include <string.h>

/* One published http-01 answer, remembered so that it is always removed. */
typedef struct published {
    const char *dir;
    char *token;
} published;

typedef struct issue_ctx {
    ks_run *run;
    const ks_cert_config *cert;
    ks_key_type type;
    store_key key;
    ks_keyref key_ref;
    EVP_PKEY *pub;
    store_order order_row;
    acme_order order;
    acme_authz *authz;
    size_t n_authz; /* the order's list may change when the order is refreshed */
    int certificate_stored; /* the certificate row is committed */
    published *published;
    size_t n_published;
} issue_ctx;

static int csr_sign(void *ctx, int md_nid, const unsigned char *tbs, size_t len,
                    unsigned char **sig, size_t *sig_len, ks_err *err)
{
    issue_ctx *ic = ctx;
    return ks_signer_sign_csr(ic->run->signer, &ic->key_ref, md_nid, tbs, len, sig, sig_len, err);
}

/* The primary key of the certificate's private key (made with its backup
 * the first time). */
static int prepare_key(issue_ctx *ic, ks_err *err)
{
    const ks_key_config *k = &ic->run->cfg->keys[ic->cert->key];
    ks_key_request req;
    int generated;
    if (ks_key_request_init(&req, ic->run->tenant, KS_PURPOSE_CERTIFICATE, k->name, ic->type,
                            k->key_size, k->key_curve, err) < 0 ||
        ks_keys_ensure(ic->run->db, ic->run->signer, &req, 1, &ic->key, &generated, err) < 0)
        return -1;
    if (ks_keyref_from_row(&ic->key, &ic->key_ref, err) < 0 ||
        store_order_set_key(ic->run->db, ic->order_row.id, ic->key.id, err) < 0)
        return -1;
    return ks_signer_public_key(ic->run->signer, &ic->key_ref, &ic->pub, err);
}

static int record_order(issue_ctx *ic, ks_err *err)
{
    store_account acct = {0};
    int found = store_account_find(ic->run->db, ic->run->tenant, ic->run->cfg->acme_directory_url,
                                   &acct, err);
    if (found != 1) {
        store_account_clear(&acct);
        return found < 0 ? -1 : ks_fail(err, "the ACME account is not recorded");
    }
    store_order *o = &ic->order_row;
    o->tenant = (char *)ic->run->tenant;
    o->account_id = acct.id;
    o->certificate_name = ic->cert->name;
    o->key_type = (char *)ks_key_type_name(ic->type);
    o->names = ic->cert->alt_names;
    o->n_names = ic->cert->n_alt_names;
    o->status = "created";
    store_account_clear(&acct);
    return store_order_insert(ic->run->db, o, err);
}

static int remember_published(issue_ctx *ic, const char *dir, const char *token)
{
    published *grown = realloc(ic->published, (ic->n_published + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    ic->published = grown;
    ic->published[ic->n_published].dir = dir;
    ic->published[ic->n_published].token = strdup(token);
    if (ic->published[ic->n_published].token == NULL)
        return -1;
    ic->n_published++;
    return 0;
}

/* Publishes the key authorization for one pending authorization and tells
 * the CA to check it. */
static int start_http01(issue_ctx *ic, acme_authz *a, ks_err *err)
{
    const acme_challenge *ch = acme_authz_challenge(a, "http-01");
    const char *dir = ks_config_webroot(ic->run->cfg, a->identifier);
    if (dir == NULL)
        return ks_fail(err, "%s: no http_challenges directory is configured for this name",
                       a->identifier);
    if (ch == NULL || ch->token == NULL)
        return ks_fail(err, "%s: the CA offers no http-01 challenge", a->identifier);
    char *ka = acme_key_authorization_new(ic->run->acme, ch->token, err);
    if (ka == NULL)
        return ks_failp(err, "%s", a->identifier);
    int rc = http01_webroot_publish(dir, ch->token, ka, err);
    free(ka);
    if (rc < 0 || remember_published(ic, dir, ch->token) < 0)
        return rc < 0 ? ks_failp(err, "%s", a->identifier) : ks_fail(err, "out of memory");
    ks_debug("%s: http-01 answer %s published in %s", a->identifier, ch->token, dir);
    return acme_challenge_respond(ic->run->acme, ch, err) < 0 ? ks_failp(err, "%s", a->identifier)
                                                               : 0;
}

static void remove_published(issue_ctx *ic)
{
    for (size_t i = 0; i < ic->n_published; i++) {
        ks_err err;
        if (http01_webroot_remove(ic->published[i].dir, ic->published[i].token, &err) < 0)
            ks_warn("%s", err.msg);
        free(ic->published[i].token);
    }
    free(ic->published);
    ic->published = NULL;
    ic->n_published = 0;
}

/* An authorization must be for one of the names this certificate asked for
 * (the server's identifier text is not trusted further than that). */
static int requested_name(const ks_cert_config *cert, const acme_authz *a)
{
    for (size_t i = 0; i < cert->n_alt_names; i++) {
        const char *want = cert->alt_names[i];
        int wild = strncmp(want, "*.", 2) == 0;
        if (wild == a->wildcard && strcmp(wild ? want + 2 : want, a->identifier) == 0)
            return 1;
    }
    return 0;
}

/* All challenges are answered first and waited for afterwards, so the CA
 * validates the names of one order in parallel. */
static int authorize(issue_ctx *ic, ks_err *err)
{
    size_t n = ic->order.n_authz;
    ic->authz = calloc(n ? n : 1, sizeof(*ic->authz));
    if (ic->authz == NULL)
        return ks_fail(err, "out of memory");
    ic->n_authz = n;
    for (size_t i = 0; i < n; i++) {
        acme_authz *a = &ic->authz[i];
        if (acme_authz_fetch(ic->run->acme, ic->order.authz_urls[i], a, err) < 0)
            return -1;
        if (!requested_name(ic->cert, a))
            return ks_fail(err, "the CA sent an authorization for a name that was not "
                                "requested; refused");
        if (strcmp(a->status, "valid") == 0)
            continue;
        if (strcmp(a->status, "pending") != 0)
            return ks_fail(err, "%s: authorization is %s", a->identifier, a->status);
        if (start_http01(ic, a, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        acme_authz *a = &ic->authz[i];
        if (strcmp(a->status, "valid") != 0 && acme_authz_wait(ic->run->acme, a, err) < 0)
            return -1;
    }
    return 0;
}

static int finalize_and_fetch(issue_ctx *ic, char **pem, ks_err *err)
{
    unsigned char *csr = NULL;
    size_t csr_len = 0;
    const ks_cert_config *c = ic->cert;
    if (csr_build_der(ic->pub, c->common_name, (const char *const *)c->alt_names, c->n_alt_names,
                      csr_sign, ic, &csr, &csr_len, err) < 0)
        return -1;
    int rc = acme_order_finalize(ic->run->acme, &ic->order, csr, csr_len, err);
    free(csr);
    if (rc < 0)
        return -1;
    return acme_certificate_fetch(ic->run->acme, ic->order.certificate_url, pem, err);
}

static int keep_certificate(issue_ctx *ic, const char *pem, ks_err *err)
{
    ks_chain chain;
    if (ks_chain_parse(pem, &chain, err) < 0)
        return -1;
    store_cert sc = {
        .tenant = (char *)ic->run->tenant,
        .name = ic->cert->name,
        .key_type = (char *)ks_key_type_name(ic->type),
        .key_id = ic->key.id,
        .order_id = ic->order_row.id,
        .common_name = ic->cert->common_name,
        .alt_names = ic->cert->alt_names,
        .n_alt_names = ic->cert->n_alt_names,
        .serial = chain.serial,
        .not_before = chain.not_before,
        .not_after = chain.not_after,
        .cert_pem = chain.leaf_pem,
        .chain_pem = chain.chain_pem,
    };
    int rc = -1;
    if (ks_chain_check_leaf(chain.leaf_pem, ic->pub, ic->cert->alt_names, ic->cert->n_alt_names,
                            err) < 0 ||
        store_cert_insert_current(ic->run->db, &sc, err) < 0)
        goto out;
    ic->certificate_stored = 1;
    ic->run->changed = 1;
    if (!ic->run->opts->quiet) {
        char expires[32];
        struct tm tm;
        gmtime_r(&chain.not_after, &tm);
        strftime(expires, sizeof(expires), "%Y-%m-%d %H:%M:%S UTC", &tm);
        printf("issued %s (%s): serial %s, expires %s\n", ic->cert->name,
               ks_key_type_name(ic->type), chain.serial, expires);
    }
    rc = ks_output_write(ic->run, ic->cert, ic->type, &sc, &ic->key, err);
out:
    ks_chain_clear(&chain);
    return rc;
}

static int run_order(issue_ctx *ic, ks_err *err)
{
    char *pem = NULL;
    if (acme_order_new(ic->run->acme, (const char *const *)ic->cert->alt_names,
                       ic->cert->n_alt_names, &ic->order, err) < 0)
        return -1;
    if (store_order_update(ic->run->db, ic->order_row.id, ic->order.url, ic->order.status, NULL,
                           err) < 0)
        return -1;
    int rc = authorize(ic, err);
    remove_published(ic);
    if (rc == 0)
        rc = prepare_key(ic, err);
    if (rc == 0)
        rc = finalize_and_fetch(ic, &pem, err);
    if (rc == 0)
        rc = keep_certificate(ic, pem, err);
    free(pem);
    return rc;
}

static void issue_ctx_clear(issue_ctx *ic)
{
    remove_published(ic);
    for (size_t i = 0; i < ic->n_authz; i++)
        acme_authz_clear(&ic->authz[i]);
    free(ic->authz);
    acme_order_clear(&ic->order);
    EVP_PKEY_free(ic->pub);
    store_key_clear(&ic->key);
}

int ks_issue(ks_run *run, const ks_cert_config *cert, ks_key_type type, ks_err *err)
{
    issue_ctx ic = {.run = run, .cert = cert, .type = type};
    int rc = -1;
    if (ks_account_ensure(run, err) < 0 || record_order(&ic, err) < 0)
        goto out;
    rc = run_order(&ic, err);
    /* Once its certificate is stored the order succeeded, even if writing
     * the files failed afterwards (the next run writes them). */
    int valid = rc == 0 || ic.certificate_stored;
    ks_err ignored;
    if (store_order_update(run->db, ic.order_row.id, NULL, valid ? "valid" : "failed",
                           rc == 0 ? NULL : err->msg, &ignored) < 0)
        ks_warn("could not record the order's outcome: %s", ignored.msg);
out:
    issue_ctx_clear(&ic);
    if (rc < 0)
        ks_failp(err, "%s (%s)", cert->name, ks_key_type_name(type));
    return rc;
}
