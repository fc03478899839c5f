/*
 * Issuing one certificate for one key type: order, authorizations (each
 * name by its configured challenge, see challenge.c), then the key (generated only once the CA has validated
 * the names, so a refused order costs no key), CSR signed in the token,
 * finalize, download, checks, then the database and the files.  The orders
 * table records each attempt, its URL, key and outcome.
 */
#include "chain.h"
#include "csr.h"
#include "challenge.h"
#include "keys.h"
#include "ks_log.h"
#include "ks_util.h"
#include "run.h"

#include <stdlib.h>
#include <string.h>

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
    const char *replaces; /* ARI identifier of the certificate this renews, or NULL */
    int certificate_stored; /* the certificate row is committed */
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

/* An authorization must be for one of the names this certificate asked for
 * (the server's identifier text is not trusted further than that). */
static int requested_name(char *const *names, size_t n, const acme_authz *a)
{
    for (size_t i = 0; i < n; i++) {
        const char *want = names[i];
        int wild = strncmp(want, "*.", 2) == 0;
        if (wild == a->wildcard && strcmp(wild ? want + 2 : want, a->identifier) == 0)
            return 1;
    }
    return 0;
}

/* follower_mode: this host never validates; another (the master, sharing
 * the account) must have made every authorization valid already. */
static int require_valid(const acme_authz *authz, size_t n, ks_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (authz[i].status == NULL || strcmp(authz[i].status, "valid") != 0)
            return ks_fail(err, "follower mode: the authorization for %s%s is %s, not valid; "
                                "the master must validate it (keysvc run --auth there)",
                           authz[i].wildcard ? "*." : "", authz[i].identifier,
                           authz[i].status ? authz[i].status : "without a status");
    return 0;
}

/* Fetches an order's authorizations (after checking each is for a name
 * that was asked for) and validates those still pending. */
static int authorize_order(ks_run *run, char *const *names, size_t n_names,
                           const acme_order *order, acme_authz **authz, size_t *n_authz,
                           ks_err *err)
{
    size_t n = order->n_authz;
    *authz = calloc(n ? n : 1, sizeof(**authz));
    if (*authz == NULL)
        return ks_fail(err, "out of memory");
    *n_authz = n;
    for (size_t i = 0; i < n; i++) {
        acme_authz *a = &(*authz)[i];
        if (acme_authz_fetch(run->acme, order->authz_urls[i], a, err) < 0)
            return -1;
        if (!requested_name(names, n_names, a))
            return ks_fail(err, "the CA sent an authorization for a name that was not "
                                "requested; refused");
    }
    if (run->cfg->follower_mode)
        return require_valid(*authz, n, err);
    return ks_validate_authorizations(run, *authz, n, err);
}

static void authz_list_free(acme_authz *authz, size_t n)
{
    for (size_t i = 0; i < n; i++)
        acme_authz_clear(&authz[i]);
    free(authz);
}

/* Validates names through orders of at most max_domains_per_order names
 * that are never finalized (as acmebot does): for a certificate with more
 * names than the CA takes in one order, and for acmebot's
 * "authorizations".  `label` names them in messages. */
static int authorize_in_chunks(ks_run *run, const char *label, char *const *names, size_t n_names,
                               ks_err *err)
{
    size_t chunk = (size_t)run->cfg->max_domains_per_order;
    for (size_t first = 0; first < n_names; first += chunk) {
        size_t n = n_names - first < chunk ? n_names - first : chunk;
        acme_order order;
        acme_authz *authz = NULL;
        size_t n_authz = 0;
        ks_info("%s: validating names %zu-%zu of %zu in an order of their own", label,
                first + 1, first + n, n_names);
        int rc = acme_order_new(run->acme, (const char *const *)names + first, n, NULL, &order,
                                err);
        if (rc == 0)
            rc = authorize_order(run, names + first, n, &order, &authz, &n_authz, err);
        authz_list_free(authz, n_authz);
        acme_order_clear(&order);
        if (rc < 0)
            return ks_failp(err, "validating names %zu-%zu", first + 1, first + n);
    }
    return 0;
}

/* The certificate's own order then finds its authorizations valid. */
static int preauthorize(issue_ctx *ic, ks_err *err)
{
    const ks_cert_config *c = ic->cert;
    if (c->n_alt_names <= (size_t)ic->run->cfg->max_domains_per_order ||
        ic->run->cfg->follower_mode)
        return 0;
    return authorize_in_chunks(ic->run, c->name, c->alt_names, c->n_alt_names, err);
}

int ks_authorize(ks_run *run, const char *label, char *const *names, size_t n, ks_err *err)
{
    if (ks_account_ensure(run, err) < 0 || authorize_in_chunks(run, label, names, n, err) < 0)
        return ks_failp(err, "authorizations for %s", label);
    return 0;
}

/* newOrder, with `replaces` when renewing; a CA that refuses the
 * replacement itself (alreadyReplaced, or a problem about the field) gets a
 * plain order.  Other failures are not repeated here. */
static int place_order(issue_ctx *ic, ks_err *err)
{
    const char *const *names = (const char *const *)ic->cert->alt_names;
    size_t n = ic->cert->n_alt_names;
    if (ic->replaces != NULL) {
        ks_err refused;
        if (acme_order_new(ic->run->acme, names, n, ic->replaces, &ic->order, &refused) == 0)
            return 0;
        /* The problem's type and detail are in the (escaped) message. */
        if (strstr(refused.msg, "alreadyReplaced") == NULL && strstr(refused.msg, "replaces") == NULL)
            return ks_fail(err, "%s", refused.msg);
        ks_warn("%s: order replacing %s refused (%s); ordering without \"replaces\"",
                ic->cert->name, ic->replaces, refused.msg);
    }
    return acme_order_new(ic->run->acme, names, n, NULL, &ic->order, err);
}

/* The certificate with the chain preferred_chain names, or the CA's
 * default chain.  *pem newly allocated. */
static int fetch_preferred_chain(issue_ctx *ic, char **pem, ks_err *err)
{
    char **chains = NULL;
    size_t n = 0;
    const char *preferred = ic->run->cfg->preferred_chain;
    if (preferred == NULL)
        return acme_certificate_fetch(ic->run->acme, ic->order.certificate_url, pem, err);
    if (acme_certificate_fetch_all(ic->run->acme, ic->order.certificate_url, &chains, &n, err) < 0)
        return -1;
    int pick = ks_chain_pick(chains, n, preferred, err);
    if (pick >= 0) {
        *pem = chains[pick];
        chains[pick] = NULL;
        ks_debug("%s: chain %d of %zu kept", ic->cert->name, pick + 1, n);
    }
    acme_chains_free(chains, n);
    return pick < 0 ? -1 : 0;
}

static int finalize_and_fetch(issue_ctx *ic, char **pem, ks_err *err)
{
    unsigned char *csr = NULL;
    size_t csr_len = 0;
    const ks_cert_config *c = ic->cert;
    if (csr_build_der_staple(ic->pub, c->common_name, (const char *const *)c->alt_names,
                             c->n_alt_names, c->ocsp_must_staple, csr_sign, ic, &csr, &csr_len,
                             err) < 0)
        return -1;
    int rc = acme_order_finalize(ic->run->acme, &ic->order, csr, csr_len, err);
    free(csr);
    if (rc < 0)
        return -1;
    return fetch_preferred_chain(ic, pem, err);
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
    char expires[32];
    struct tm tm;
    gmtime_r(&chain.not_after, &tm);
    strftime(expires, sizeof(expires), "%Y-%m-%d %H:%M:%S UTC", &tm);
    ks_log_action("issued %s (%s): serial %s, expires %s", ic->cert->name,
                  ks_key_type_name(ic->type), chain.serial, expires);
    rc = 0;
out:
    ks_chain_clear(&chain);
    return rc;
}

static int run_order(issue_ctx *ic, ks_err *err)
{
    char *pem = NULL;
    if (preauthorize(ic, err) < 0 || place_order(ic, err) < 0)
        return -1;
    if (store_order_update(ic->run->db, ic->order_row.id, ic->order.url, ic->order.status, NULL,
                           err) < 0)
        return -1;
    int rc = authorize_order(ic->run, ic->cert->alt_names, ic->cert->n_alt_names, &ic->order,
                             &ic->authz, &ic->n_authz, err);
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
    authz_list_free(ic->authz, ic->n_authz);
    acme_order_clear(&ic->order);
    EVP_PKEY_free(ic->pub);
    store_key_clear(&ic->key);
}

int ks_issue(ks_run *run, const ks_cert_config *cert, ks_key_type type, const char *replaces,
             ks_err *err)
{
    issue_ctx ic = {.run = run, .cert = cert, .type = type, .replaces = replaces};
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
