/*
 * Validating an order's names: for every pending authorization, the
 * method its name is configured for (http-01 through a webroot or the
 * built-in responder, tls-alpn-01 through the built-in responder, dns-01
 * as dns01.c does it), in phases, so that the CA validates all names of an
 * order at once:
 *
 *   plan      pick the challenge, compute the key authorization
 *   publish   write the files, place the DNS records, start the responders
 *   propagate wait until every authoritative name server serves the records
 *   answer    tell the CA each challenge is ready
 *   wait      poll every authorization until it is valid (or fails)
 *   clean up  always, also after a failure: exactly what was published
 */
#include "challenge.h"

#include "dns01.h"
#include "hook.h"
#include "http01.h"
#include "http01_responder.h"
#include "ks_log.h"
#include "ks_util.h"
#include "tlsalpn01.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending {
    acme_authz *authz;
    const acme_challenge *ch; /* inside authz: valid until the authz is refreshed */
    char *token;              /* the challenge's token, kept for the clean-up */
    ks_challenge_kind kind;
    char *name;     /* as requested: "*.x" for a wildcard */
    char *key_auth; /* token "." thumbprint */
    char *dns_value;
    char *webroot; /* http-01 by file; NULL: by the built-in responder */
    char *challenge_file; /* <webroot>/<token> (acmebot's {challenge_file}) */
    int published;
} pending;

typedef struct responder {
    const ks_tls_alpn_challenge *where;
    acme_tlsalpn_challenge *challenges;
    size_t n;
    acme_tlsalpn_responder *running;
} responder;

typedef struct validation {
    ks_run *run;
    pending *items;
    size_t n;
    responder *responders;
    size_t n_responders;
    ks_dns01 *dns;                     /* the dns-01 records */
    acme_http01_challenge *http;       /* answered by the built-in responder */
    size_t n_http;
    acme_http01_responder *http_running;
} validation;

static const char *challenge_type(ks_challenge_kind kind)
{
    return kind == KS_CHALLENGE_HTTP01     ? "http-01"
           : kind == KS_CHALLENGE_TLSALPN01 ? "tls-alpn-01"
           : kind == KS_CHALLENGE_DNS01     ? "dns-01"
                                            : "none";
}

/* ----------------------------------------------------------------- plan */

static int plan_one(validation *v, acme_authz *a, ks_err *err)
{
    pending *p = &v->items[v->n];
    memset(p, 0, sizeof(*p));
    p->authz = a;
    p->name = a->wildcard ? ks_strdup_printf("*.%s", a->identifier) : strdup(a->identifier);
    if (p->name == NULL)
        return ks_fail(err, "out of memory");
    v->n++;
    p->kind = ks_config_challenge(v->run->cfg, p->name);
    if (p->kind == KS_CHALLENGE_NONE)
        return ks_fail(err, "%s: no validation method is configured for this name",
                       p->name);
    p->ch = acme_authz_challenge(a, challenge_type(p->kind));
    if (p->ch == NULL || p->ch->token == NULL)
        return ks_fail(err, "%s: the CA offers no %s challenge for this name", p->name,
                       challenge_type(p->kind));
    p->key_auth = acme_key_authorization_new(v->run->acme, p->ch->token, err);
    if (p->key_auth == NULL)
        return ks_failp(err, "%s", p->name);
    if ((p->token = strdup(p->ch->token)) == NULL)
        return ks_fail(err, "out of memory");
    if (p->kind == KS_CHALLENGE_DNS01 &&
        (p->dns_value = acme_dns01_value_new(p->key_auth, err)) == NULL)
        return ks_failp(err, "%s", p->name);
    if (p->kind == KS_CHALLENGE_HTTP01 &&
        (p->webroot = ks_config_http_dir_new(v->run->cfg, a->identifier)) != NULL &&
        (p->challenge_file = ks_strdup_printf("%s/%s", p->webroot, p->token)) == NULL)
        return ks_fail(err, "out of memory");
    return 0;
}

static int plan(validation *v, acme_authz *authz, size_t n, ks_err *err)
{
    v->items = calloc(n ? n : 1, sizeof(*v->items));
    if (v->items == NULL)
        return ks_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        acme_authz *a = &authz[i];
        if (strcmp(a->status, "valid") == 0)
            continue; /* the CA reused an earlier validation */
        if (strcmp(a->status, "pending") != 0)
            return ks_fail(err, "%s: authorization is %s", a->identifier, a->status);
        if (plan_one(v, a, err) < 0)
            return -1;
    }
    return 0;
}

/* -------------------------------------------------------------- publish */

/* acmebot's http hooks ({domain}, {challenge_file}): a failure is a
 * warning, as in acmebot. */
static void run_http_hook(const validation *v, const pending *p, ks_hook_id id)
{
    const char *tmpl = v->run->cfg->hooks[id];
    char what[300], *out = NULL;
    ks_err err;
    if (tmpl == NULL || p->challenge_file == NULL)
        return;
    ks_hook_var fields[] = {{"domain", p->name}, {"challenge_file", p->challenge_file}};
    snprintf(what, sizeof(what), "%s hook for %s", ks_hook_name(id), p->name);
    if (ks_hook_run_template(what, tmpl, fields, 2, v->run->cfg->hook_timeout, &out, &err) < 0)
        ks_warn("%s", err.msg);
    else if (out != NULL && out[0] != '\0')
        ks_info("%s: %s", what, out);
    free(out);
}

/* http-01 by a webroot file, or by the built-in responder. */
static int publish_http(validation *v, pending *p, ks_err *err)
{
    if (p->webroot == NULL) {
        acme_http01_challenge *grown = realloc(v->http, (v->n_http + 1) * sizeof(*grown));
        if (grown == NULL)
            return ks_fail(err, "out of memory");
        v->http = grown;
        v->http[v->n_http++] = (acme_http01_challenge){p->token, p->key_auth};
        return 0;
    }
    if (ks_mkdirs(p->webroot, 0755, err) < 0 ||
        http01_webroot_publish(p->webroot, p->token, p->key_auth, err) < 0)
        return -1;
    p->published = 1;
    ks_debug("%s: http-01 answer %s published in %s", p->name, p->token, p->webroot);
    run_http_hook(v, p, KS_HOOK_SET_HTTP_CHALLENGE);
    return 0;
}

static int start_http_responder(validation *v, ks_err *err)
{
    const ks_config *cfg = v->run->cfg;
    if (v->n_http == 0)
        return 0;
    v->http_running = acme_http01_start(cfg->http_responder_address, cfg->http_responder_port,
                                        v->http, v->n_http, err);
    if (v->http_running == NULL)
        return ks_failp(err, "http-01 responder on %s port %d (settings.http_responder)",
                        cfg->http_responder_address, cfg->http_responder_port);
    ks_info("http-01: answering for %zu name(s) on %s port %d", v->n_http,
            cfg->http_responder_address, cfg->http_responder_port);
    return 0;
}

/* The responder for an address, made when first needed. */
static responder *responder_for(validation *v, const ks_tls_alpn_challenge *where)
{
    for (size_t i = 0; i < v->n_responders; i++)
        if (strcmp(v->responders[i].where->address, where->address) == 0 &&
            v->responders[i].where->port == where->port)
            return &v->responders[i];
    responder *grown = realloc(v->responders, (v->n_responders + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    v->responders = grown;
    responder *r = &v->responders[v->n_responders++];
    *r = (responder){.where = where};
    return r;
}

static int add_tls_alpn(validation *v, const pending *p, ks_err *err)
{
    responder *r = responder_for(v, ks_config_tls_alpn(v->run->cfg, p->authz->identifier));
    acme_tlsalpn_challenge *grown =
        r ? realloc(r->challenges, (r->n + 1) * sizeof(*grown)) : NULL;
    if (grown == NULL)
        return ks_fail(err, "out of memory");
    r->challenges = grown;
    r->challenges[r->n++] =
        (acme_tlsalpn_challenge){.identifier = p->authz->identifier, .key_authorization = p->key_auth};
    return 0;
}

static int start_responders(validation *v, ks_err *err)
{
    for (size_t i = 0; i < v->n_responders; i++) {
        responder *r = &v->responders[i];
        r->running = acme_tlsalpn_start(r->where->address, r->where->port, r->challenges, r->n,
                                        err);
        if (r->running == NULL)
            return ks_failp(err, "tls-alpn-01 responder on %s port %d", r->where->address,
                            r->where->port);
        ks_info("tls-alpn-01: answering for %zu name(s) on %s port %d", r->n, r->where->address,
                r->where->port);
    }
    return 0;
}

static int publish(validation *v, ks_err *err)
{
    for (size_t i = 0; i < v->n; i++) {
        pending *p = &v->items[i];
        int rc = 0;
        if (p->kind == KS_CHALLENGE_HTTP01)
            rc = publish_http(v, p, err);
        else if (p->kind == KS_CHALLENGE_DNS01)
            rc = v->dns ? ks_dns01_add(v->dns, p->name, p->dns_value, err)
                        : ks_fail(err, "out of memory");
        else
            rc = add_tls_alpn(v, p, err);
        if (rc < 0)
            return ks_failp(err, "%s", p->name);
    }
    if (ks_dns01_publish(v->dns, err) < 0 || start_responders(v, err) < 0 ||
        start_http_responder(v, err) < 0)
        return -1;
    return ks_dns01_wait_visible(v->dns, err);
}

/* ------------------------------------------------------- answer, wait */

/* Waiting refreshes the authorizations, which frees the challenges the
 * items point into: every challenge is answered before the first wait. */
static int answer_and_wait(validation *v, ks_err *err)
{
    for (size_t i = 0; i < v->n; i++) {
        ks_debug("%s: asking the CA to validate (%s)", v->items[i].name,
                 challenge_type(v->items[i].kind));
        if (acme_challenge_respond(v->run->acme, v->items[i].ch, err) < 0)
            return ks_failp(err, "%s", v->items[i].name);
        v->items[i].ch = NULL;
    }
    for (size_t i = 0; i < v->n; i++)
        if (acme_authz_wait(v->run->acme, v->items[i].authz, err) < 0)
            return -1;
    return 0;
}

/* -------------------------------------------------------------- clean up */

static void clean_up(validation *v)
{
    for (size_t i = 0; i < v->n_responders; i++) {
        acme_tlsalpn_stop(v->responders[i].running);
        free(v->responders[i].challenges);
    }
    free(v->responders);
    acme_http01_stop(v->http_running);
    free(v->http);
    ks_dns01_cleanup_free(v->dns);
    for (size_t i = 0; i < v->n; i++) {
        pending *p = &v->items[i];
        ks_err err;
        if (!p->published)
            continue;
        if (http01_webroot_remove(p->webroot, p->token, &err) < 0)
            ks_warn("%s", err.msg);
        run_http_hook(v, p, KS_HOOK_CLEAR_HTTP_CHALLENGE);
    }
    for (size_t i = 0; i < v->n; i++) {
        free(v->items[i].name);
        free(v->items[i].token);
        free(v->items[i].key_auth);
        free(v->items[i].dns_value);
        free(v->items[i].webroot);
        free(v->items[i].challenge_file);
    }
    free(v->items);
}

int ks_validate_authorizations(ks_run *run, acme_authz *authz, size_t n, ks_err *err)
{
    validation v = {.run = run, .dns = ks_dns01_new(run->cfg)};
    int rc = plan(&v, authz, n, err);
    if (rc == 0 && n > 0 && v.n == 0)
        ks_info("all %zu authorizations were already valid", n);
    if (rc == 0 && v.n > 0) /* none: the CA reused earlier validations */
        rc = publish(&v, err) < 0 ? -1 : answer_and_wait(&v, err);
    clean_up(&v);
    return rc;
}
