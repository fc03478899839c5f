/*
 * ACME client: orders, authorizations, challenges, finalize and download.
 */
#include "internal.h"

#include "b64.h"
#include "link.h"
#include "ks_log.h"
#include "ks_util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define POLL_FIRST_MS 20

void acme_order_clear(acme_order *o)
{
    free(o->url);
    free(o->status);
    free(o->finalize_url);
    free(o->certificate_url);
    for (size_t i = 0; i < o->n_authz; i++)
        free(o->authz_urls[i]);
    free(o->authz_urls);
    memset(o, 0, sizeof(*o));
}

void acme_authz_clear(acme_authz *a)
{
    free(a->url);
    free(a->identifier);
    free(a->status);
    for (size_t i = 0; i < a->n_challenges; i++) {
        free(a->challenges[i].type);
        free(a->challenges[i].url);
        free(a->challenges[i].token);
        free(a->challenges[i].status);
    }
    free(a->challenges);
    free(a->problem);
    memset(a, 0, sizeof(*a));
}

static int read_authz_urls(acme_order *o, json_object *obj, const char *url, ks_err *err)
{
    json_object *arr = NULL;
    if (acme_json_array(obj, "authorizations", 1, &arr, url, err) < 0)
        return -1;
    size_t n = json_object_array_length(arr);
    char **urls = calloc(n ? n : 1, sizeof(*urls));
    if (urls == NULL)
        return ks_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(v, json_type_string) || !acme_url_ok(json_object_get_string(v))) {
            for (size_t j = 0; j < i; j++)
                free(urls[j]);
            free(urls);
            return ks_fail(err, "%s: authorizations[%zu] is not an https URL", url, i);
        }
        urls[i] = strdup(json_object_get_string(v));
    }
    for (size_t i = 0; i < o->n_authz; i++)
        free(o->authz_urls[i]);
    free(o->authz_urls);
    o->authz_urls = urls;
    o->n_authz = n;
    return 0;
}

static int read_order(acme_order *o, json_object *obj, const char *url, ks_err *err)
{
    if (acme_json_dup_string(obj, "status", 1, &o->status, url, err) < 0 ||
        acme_json_dup_string(obj, "finalize", 1, &o->finalize_url, url, err) < 0 ||
        acme_json_dup_string(obj, "certificate", 0, &o->certificate_url, url, err) < 0 ||
        read_authz_urls(o, obj, url, err) < 0)
        return -1;
    if (!acme_url_ok(o->finalize_url) || (o->certificate_url && !acme_url_ok(o->certificate_url)))
        return ks_fail(err, "%s: order has a non-https finalize or certificate URL", url);
    if (strcmp(o->status, "invalid") == 0) {
        json_object *problem = NULL;
        char *summary = NULL;
        if (json_object_object_get_ex(obj, "error", &problem) &&
            json_object_is_type(problem, json_type_object))
            summary = acme_problem_summary_new(problem);
        ks_fail(err, "%s: order is invalid%s%s", url, summary ? ": " : "", summary ? summary : "");
        free(summary);
        return -1;
    }
    return 0;
}

static char *new_order_payload(const char *const *names, size_t n, const char *replaces)
{
    json_object *req = json_object_new_object();
    json_object *ids = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *id = json_object_new_object();
        json_object_object_add(id, "type", json_object_new_string("dns"));
        json_object_object_add(id, "value", json_object_new_string(names[i]));
        json_object_array_add(ids, id);
    }
    json_object_object_add(req, "identifiers", ids);
    if (replaces != NULL)
        json_object_object_add(req, "replaces", json_object_new_string(replaces));
    char *out = acme_json_text_new(req);
    json_object_put(req);
    return out;
}

/* Handles an order response: status check, JSON parse, order fields. */
static int take_order_response(acme_response *resp, acme_order *o, const char *url,
                               const char *what, ks_err *err)
{
    if (resp->status >= 400)
        return acme_fail_problem(resp, what, url, err);
    json_object *obj = acme_parse_json(resp, url, err);
    if (obj == NULL)
        return ks_failp(err, "%s", what);
    int rc = read_order(o, obj, url, err);
    json_object_put(obj);
    return rc < 0 ? ks_failp(err, "%s", what) : 0;
}

int acme_order_new(acme_client *c, const char *const *names, size_t n_names,
                   const char *replaces, acme_order *out, ks_err *err)
{
    memset(out, 0, sizeof(*out));
    if (c->new_order_url == NULL)
        return ks_fail(err, "the ACME directory has not been loaded");
    char *payload =
        new_order_payload(names, n_names, c->renewal_info_url != NULL ? replaces : NULL);
    if (payload == NULL)
        return ks_fail(err, "out of memory");
    acme_response resp;
    int rc = acme_post(c, c->new_order_url, payload, NULL, ACME_MAX_BODY, &resp, err);
    free(payload);
    if (rc < 0)
        return ks_failp(err, "creating an order");
    rc = -1;
    if (resp.status != 201 && resp.status < 400) {
        ks_fail(err, "creating an order: %s: unexpected HTTP %ld", c->new_order_url, resp.status);
        goto out;
    }
    if (take_order_response(&resp, out, c->new_order_url, "creating an order", err) < 0)
        goto out;
    if (!acme_url_ok(resp.location)) {
        ks_fail(err, "creating an order: %s: no https Location for the order", c->new_order_url);
        goto out;
    }
    out->url = strdup(resp.location);
    rc = out->url ? 0 : ks_fail(err, "out of memory");
out:
    if (rc < 0)
        acme_order_clear(out);
    acme_response_clear(&resp);
    return rc;
}

static int order_fetch_with_response(acme_client *c, acme_order *o, acme_response *resp,
                                     ks_err *err)
{
    if (acme_post(c, o->url, NULL, NULL, ACME_MAX_BODY, resp, err) < 0)
        return ks_failp(err, "fetching order");
    return take_order_response(resp, o, o->url, "fetching order", err);
}

int acme_order_fetch(acme_client *c, acme_order *o, ks_err *err)
{
    acme_response resp;
    int rc = order_fetch_with_response(c, o, &resp, err);
    acme_response_clear(&resp);
    return rc;
}

static int read_challenge(acme_challenge *ch, json_object *obj, const char *url, ks_err *err)
{
    if (!json_object_is_type(obj, json_type_object))
        return ks_fail(err, "%s: a challenge is not an object", url);
    if (acme_json_dup_string(obj, "type", 1, &ch->type, url, err) < 0 ||
        acme_json_dup_string(obj, "url", 1, &ch->url, url, err) < 0 ||
        acme_json_dup_string(obj, "status", 1, &ch->status, url, err) < 0 ||
        acme_json_dup_string(obj, "token", 0, &ch->token, url, err) < 0)
        return -1;
    if (!acme_url_ok(ch->url))
        return ks_fail(err, "%s: challenge URL is not https", url);
    return 0;
}

/* Keeps the first challenge error (the reason an authorization failed). */
static void note_challenge_problem(acme_authz *a, json_object *chobj)
{
    json_object *problem = NULL;
    if (a->problem == NULL && json_object_object_get_ex(chobj, "error", &problem) &&
        json_object_is_type(problem, json_type_object))
        a->problem = acme_problem_summary_new(problem);
}

static int read_authz(acme_authz *a, json_object *obj, const char *url, ks_err *err)
{
    json_object *ident = NULL, *arr = NULL, *wild = NULL;
    if (!json_object_object_get_ex(obj, "identifier", &ident) ||
        !json_object_is_type(ident, json_type_object))
        return ks_fail(err, "%s: authorization lacks an identifier object", url);
    const char *type = NULL;
    if (acme_json_string(ident, "type", 1, &type, url, err) < 0 ||
        acme_json_dup_string(ident, "value", 1, &a->identifier, url, err) < 0 ||
        acme_json_dup_string(obj, "status", 1, &a->status, url, err) < 0 ||
        acme_json_array(obj, "challenges", 1, &arr, url, err) < 0)
        return -1;
    if (strcmp(type, "dns") != 0)
        return ks_fail(err, "%s: authorization for an identifier that is not a DNS name", url);
    if (json_object_object_get_ex(obj, "wildcard", &wild) && wild != NULL) {
        if (!json_object_is_type(wild, json_type_boolean))
            return ks_fail(err, "%s: \"wildcard\" is not a boolean", url);
        a->wildcard = json_object_get_boolean(wild);
    }
    size_t n = json_object_array_length(arr);
    a->challenges = calloc(n ? n : 1, sizeof(*a->challenges));
    if (a->challenges == NULL)
        return ks_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_object *chobj = json_object_array_get_idx(arr, i);
        a->n_challenges = i + 1;
        if (read_challenge(&a->challenges[i], chobj, url, err) < 0)
            return -1;
        note_challenge_problem(a, chobj);
    }
    return 0;
}

static int authz_fetch_with_response(acme_client *c, const char *url, acme_authz *out,
                                     acme_response *resp, ks_err *err)
{
    acme_authz fresh = {0};
    if (acme_post(c, url, NULL, NULL, ACME_MAX_BODY, resp, err) < 0)
        return ks_failp(err, "fetching authorization");
    if (resp->status >= 400)
        return acme_fail_problem(resp, "fetching authorization", url, err);
    json_object *obj = acme_parse_json(resp, url, err);
    if (obj == NULL)
        return ks_failp(err, "fetching authorization");
    fresh.url = strdup(url);
    int rc = read_authz(&fresh, obj, url, err);
    json_object_put(obj);
    if (rc < 0 || fresh.url == NULL) {
        acme_authz_clear(&fresh);
        return ks_failp(err, "fetching authorization");
    }
    acme_authz_clear(out);
    *out = fresh;
    return 0;
}

int acme_authz_fetch(acme_client *c, const char *url, acme_authz *out, ks_err *err)
{
    acme_response resp;
    memset(out, 0, sizeof(*out));
    int rc = authz_fetch_with_response(c, url, out, &resp, err);
    acme_response_clear(&resp);
    return rc;
}

const acme_challenge *acme_authz_challenge(const acme_authz *a, const char *type)
{
    for (size_t i = 0; i < a->n_challenges; i++)
        if (strcmp(a->challenges[i].type, type) == 0)
            return &a->challenges[i];
    return NULL;
}

int acme_challenge_respond(acme_client *c, const acme_challenge *ch, ks_err *err)
{
    acme_response resp;
    if (acme_post(c, ch->url, "{}", NULL, ACME_MAX_BODY, &resp, err) < 0)
        return ks_failp(err, "answering challenge");
    int rc = 0;
    if (resp.status >= 400)
        rc = acme_fail_problem(&resp, "answering challenge", ch->url, err);
    acme_response_clear(&resp);
    return rc;
}

int acme_authz_wait(acme_client *c, acme_authz *a, ks_err *err)
{
    long long deadline = ks_now_ms() + c->poll_timeout_ms;
    long long interval = POLL_FIRST_MS;
    char *url = strdup(a->url);
    char *ident = ks_escape_new(a->identifier ? a->identifier : "?", (size_t)-1);
    int rc = -1;
    if (url == NULL || ident == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    for (;;) {
        acme_response resp;
        if (authz_fetch_with_response(c, url, a, &resp, err) < 0) {
            acme_response_clear(&resp);
            ks_failp(err, "%s", ident);
            goto out;
        }
        if (strcmp(a->status, "valid") == 0) {
            acme_response_clear(&resp);
            rc = 0;
            goto out;
        }
        if (strcmp(a->status, "pending") != 0) {
            char *st = ks_escape_new(a->status, (size_t)-1);
            ks_fail(err, "%s: authorization %s%s%s", ident, st ? st : "?", a->problem ? ": " : "",
                    a->problem ? a->problem : "");
            free(st);
            acme_response_clear(&resp);
            goto out;
        }
        int slept = acme_poll_sleep(&resp, &interval, deadline, ident, err);
        acme_response_clear(&resp);
        if (slept < 0)
            goto out;
    }
out:
    free(url);
    free(ident);
    return rc;
}

/* POSTs the CSR; *resp keeps the answer (its Retry-After paces the first
 * poll) and is empty on failure. */
static int post_finalize(acme_client *c, acme_order *o, const unsigned char *csr_der,
                         size_t csr_len, acme_response *resp, ks_err *err)
{
    char *csr64 = b64url_encode_new(csr_der, csr_len);
    char *payload = csr64 ? ks_strdup_printf("{\"csr\":\"%s\"}", csr64) : NULL;
    free(csr64);
    memset(resp, 0, sizeof(*resp));
    if (payload == NULL)
        return ks_fail(err, "out of memory");
    int rc = acme_post(c, o->finalize_url, payload, NULL, ACME_MAX_BODY, resp, err);
    free(payload);
    if (rc < 0)
        return ks_failp(err, "finalizing order");
    rc = take_order_response(resp, o, o->finalize_url, "finalizing order", err);
    if (rc < 0)
        acme_response_clear(resp);
    return rc;
}

/* After a failed finalize the CA may still have taken the CSR (a dropped
 * reply, or a race with another worker): the order's own state decides. */
static int finalize_went_through(acme_client *c, acme_order *o)
{
    ks_err ignored;
    return acme_order_fetch(c, o, &ignored) == 0 &&
           (strcmp(o->status, "processing") == 0 || strcmp(o->status, "valid") == 0);
}

/* An order whose authorizations are all valid may still be "pending" for a
 * moment while the CA catches up (finalizing it then would be refused with
 * orderNotReady): it is polled until it moves on. */
static int wait_while_pending(acme_client *c, acme_order *o, long long deadline, ks_err *err)
{
    long long interval = POLL_FIRST_MS;
    acme_response last = {0};
    while (strcmp(o->status, "pending") == 0) {
        int slept = acme_poll_sleep(&last, &interval, deadline, o->url, err);
        acme_response_clear(&last);
        if (slept < 0 || order_fetch_with_response(c, o, &last, err) < 0) {
            acme_response_clear(&last);
            return -1;
        }
    }
    acme_response_clear(&last);
    return 0;
}

/* Sends the CSR once the order is ready; a refusal after which the order is
 * still "ready" (orderNotReady from a CA that was catching up) is retried
 * once.  *last keeps the finalize answer. */
static int send_csr(acme_client *c, acme_order *o, const unsigned char *csr_der, size_t csr_len,
                    acme_response *last, ks_err *err)
{
    for (int attempt = 1; strcmp(o->status, "ready") == 0; attempt++) {
        if (post_finalize(c, o, csr_der, csr_len, last, err) == 0)
            return 0;
        if (finalize_went_through(c, o)) {
            ks_info("%s: finalize failed (%s) but the order is %s; polling it", o->url, err->msg,
                    o->status);
            return 0;
        }
        if (attempt == 2 || strcmp(o->status, "ready") != 0)
            return -1;
        ks_info("%s: finalize refused (%s) while the order is ready; trying once more", o->url,
                err->msg);
    }
    return 0;
}

int acme_order_finalize(acme_client *c, acme_order *o, const unsigned char *csr_der,
                        size_t csr_len, ks_err *err)
{
    acme_response last = {0};
    long long deadline = ks_now_ms() + c->poll_timeout_ms;
    if (strcmp(o->status, "ready") != 0 && strcmp(o->status, "valid") != 0) {
        /* Authorizations may have just turned valid: refresh before
         * concluding the order is not ready. */
        if (acme_order_fetch(c, o, err) < 0 || wait_while_pending(c, o, deadline, err) < 0)
            return -1;
    }
    if (send_csr(c, o, csr_der, csr_len, &last, err) < 0)
        return -1;
    long long interval = POLL_FIRST_MS;
    while (strcmp(o->status, "valid") != 0) {
        if (strcmp(o->status, "processing") != 0 && strcmp(o->status, "ready") != 0) {
            acme_response_clear(&last);
            char *st = ks_escape_new(o->status, (size_t)-1);
            ks_fail(err, "%s: order is %s, cannot finalize", o->url, st ? st : "?");
            free(st);
            return -1;
        }
        int slept = acme_poll_sleep(&last, &interval, deadline, o->url, err);
        acme_response_clear(&last);
        if (slept < 0 || order_fetch_with_response(c, o, &last, err) < 0) {
            acme_response_clear(&last);
            return -1;
        }
    }
    acme_response_clear(&last);
    if (o->certificate_url == NULL)
        return ks_fail(err, "%s: order is valid but has no certificate URL", o->url);
    return 0;
}

/* One chain download; *links gets its Link header (caller frees; may be
 * NULL). */
static int fetch_chain(acme_client *c, const char *url, char **pem, char **links, ks_err *err)
{
    acme_response resp;
    *pem = NULL;
    if (acme_post(c, url, NULL, "application/pem-certificate-chain", ACME_MAX_CERT_BODY, &resp,
                  err) < 0)
        return ks_failp(err, "downloading certificate");
    int rc = -1;
    if (resp.status != 200) {
        acme_fail_problem(&resp, "downloading certificate", url, err);
        goto out;
    }
    if (resp.content_type == NULL ||
        strncasecmp(resp.content_type, "application/pem-certificate-chain", 33) != 0) {
        char *ct = ks_escape_new(resp.content_type ? resp.content_type : "(none)", (size_t)-1);
        ks_fail(err, "downloading certificate: %s: unexpected Content-Type %s", url, ct);
        free(ct);
        goto out;
    }
    *pem = resp.body;
    resp.body = NULL;
    if (links != NULL) {
        *links = resp.link;
        resp.link = NULL;
    }
    rc = 0;
out:
    acme_response_clear(&resp);
    return rc;
}

int acme_certificate_fetch(acme_client *c, const char *url, char **pem, ks_err *err)
{
    return fetch_chain(c, url, pem, NULL, err);
}

void acme_chains_free(char **pems, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(pems[i]);
    free(pems);
}

int acme_certificate_fetch_all(acme_client *c, const char *url, char ***pems, size_t *n,
                               ks_err *err)
{
    char *links = NULL, **alternates = NULL;
    *n = 0;
    *pems = calloc(ACME_MAX_CHAINS, sizeof(**pems));
    if (*pems == NULL)
        return ks_fail(err, "out of memory");
    if (fetch_chain(c, url, &(*pems)[0], &links, err) < 0) {
        acme_chains_free(*pems, 0);
        *pems = NULL;
        return -1;
    }
    *n = 1;
    int found = acme_links_find(links, "alternate", ACME_MAX_CHAINS - 1, &alternates);
    if (found < 0)
        ks_warn("%s: malformed Link header; only the default chain is used", url);
    for (int i = 0; i < found; i++) {
        ks_err alt_err;
        if (fetch_chain(c, alternates[i], &(*pems)[*n], NULL, &alt_err) == 0)
            (*n)++;
        else
            ks_warn("alternate chain skipped: %s", alt_err.msg);
    }
    acme_links_free(alternates, found > 0 ? (size_t)found : 0);
    free(links);
    return (int)*n;
}
