/*
 * Validating an order's names: for every pending authorization, the
 * method its name is configured for (http-01 through a webroot, tls-alpn-01
 * through the built-in responder, dns-01 through hooks), in phases, so that
 * the CA validates all names of an order at once:
 *
 *   plan      pick the challenge, compute the key authorization
 *   publish   write the files, run the auth hooks, start the responders
 *   answer    tell the CA each challenge is ready
 *   wait      poll every authorization until it is valid (or fails)
 *   clean up  always, also after a failure: exactly what was published
 */
#include "challenge.h"

#include "hook.h"
#include "http01.h"
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
    const char *webroot;
    char *hook_output; /* the dns auth hook's standard output */
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
        return ks_fail(err, "%s: no validation method is configured for this name (an "
                            "http_challenges directory, tls_alpn_challenges or dns_hooks)",
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
    if (p->kind == KS_CHALLENGE_HTTP01)
        p->webroot = ks_config_webroot(v->run->cfg, a->identifier);
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

/* The names of every dns-01 challenge of this validation, comma-separated
 * (certbot's CERTBOT_ALL_DOMAINS). */
static char *dns_names_new(const validation *v)
{
    size_t len = 1;
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i].kind == KS_CHALLENGE_DNS01)
            len += strlen(v->items[i].authz->identifier) + 1;
    char *out = calloc(len, 1);
    size_t used = 0;
    for (size_t i = 0; out != NULL && i < v->n; i++) {
        if (v->items[i].kind != KS_CHALLENGE_DNS01)
            continue;
        /* len counted a comma and the name for each: this always fits. */
        used += (size_t)snprintf(out + used, len - used, "%s%s", used ? "," : "",
                                 v->items[i].authz->identifier);
    }
    return out;
}

/* The environment a dns hook gets: certbot's manual hook variables, and
 * keysvc's own. */
static size_t dns_hook_vars(const pending *p, const char *all, const char *remaining,
                            const char *record, ks_hook_var *vars)
{
    size_t n = 0;
    vars[n++] = (ks_hook_var){"CERTBOT_DOMAIN", p->authz->identifier};
    vars[n++] = (ks_hook_var){"CERTBOT_VALIDATION", p->dns_value};
    vars[n++] = (ks_hook_var){"CERTBOT_ALL_DOMAINS", all};
    vars[n++] = (ks_hook_var){"CERTBOT_REMAINING_CHALLENGES", remaining};
    vars[n++] = (ks_hook_var){"KEYSVC_IDENTIFIER", p->name};
    vars[n++] = (ks_hook_var){"KEYSVC_RECORD", record};
    vars[n++] = (ks_hook_var){"KEYSVC_VALIDATION", p->dns_value};
    if (p->hook_output != NULL)
        vars[n++] = (ks_hook_var){"CERTBOT_AUTH_OUTPUT", p->hook_output};
    return n;
}

static int run_dns_hook(const validation *v, pending *p, const char *command, int cleanup,
                        size_t remaining, ks_err *err)
{
    char *all = dns_names_new(v), left[24], what[300];
    char *record = ks_strdup_printf("_acme-challenge.%s", p->authz->identifier);
    ks_hook_var vars[8];
    int rc = -1;
    if (all == NULL || record == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    snprintf(left, sizeof(left), "%zu", remaining);
    snprintf(what, sizeof(what), "dns %s hook for %s", cleanup ? "cleanup" : "auth", p->name);
    size_t n = dns_hook_vars(p, all, left, record, vars);
    rc = ks_hook_run(what, command, vars, n, v->run->cfg->dns_hook_timeout,
                     cleanup ? NULL : &p->hook_output, err);
out:
    free(all);
    free(record);
    return rc;
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
    size_t dns_total = 0, dns_done = 0;
    for (size_t i = 0; i < v->n; i++)
        dns_total += v->items[i].kind == KS_CHALLENGE_DNS01;
    for (size_t i = 0; i < v->n; i++) {
        pending *p = &v->items[i];
        int rc = 0;
        if (p->kind == KS_CHALLENGE_HTTP01)
            rc = http01_webroot_publish(p->webroot, p->token, p->key_auth, err);
        else if (p->kind == KS_CHALLENGE_DNS01)
            rc = run_dns_hook(v, p, v->run->cfg->dns_auth_hook, 0, dns_total - ++dns_done, err);
        else
            rc = add_tls_alpn(v, p, err);
        /* A dns auth hook that failed may have published its record all
         * the same: the cleanup hook runs for it too. */
        p->published = p->kind == KS_CHALLENGE_DNS01 || (rc == 0 && p->kind == KS_CHALLENGE_HTTP01);
        if (rc < 0)
            return ks_failp(err, "%s", p->name);
        if (p->kind == KS_CHALLENGE_HTTP01) /* the tests check every one is removed */
            ks_debug("%s: http-01 answer %s published in %s", p->name, p->token, p->webroot);
        else
            ks_debug("%s: %s answer ready", p->name, challenge_type(p->kind));
    }
    return start_responders(v, err);
}

/* ------------------------------------------------------- answer, wait */

/* Waiting refreshes the authorizations, which frees the challenges the
 * items point into: every challenge is answered before the first wait. */
static int answer_and_wait(validation *v, ks_err *err)
{
    for (size_t i = 0; i < v->n; i++) {
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
    for (size_t i = 0; i < v->n; i++) {
        pending *p = &v->items[i];
        ks_err err;
        if (p->published && p->kind == KS_CHALLENGE_HTTP01 &&
            http01_webroot_remove(p->webroot, p->token, &err) < 0)
            ks_warn("%s", err.msg);
        if (p->published && p->kind == KS_CHALLENGE_DNS01 && v->run->cfg->dns_cleanup_hook &&
            run_dns_hook(v, p, v->run->cfg->dns_cleanup_hook, 1, 0, &err) < 0)
            ks_warn("%s (the record may be left in the DNS)", err.msg);
    }
    for (size_t i = 0; i < v->n; i++) {
        free(v->items[i].name);
        free(v->items[i].token);
        free(v->items[i].key_auth);
        free(v->items[i].dns_value);
        free(v->items[i].hook_output);
    }
    free(v->items);
}

int ks_validate_authorizations(ks_run *run, acme_authz *authz, size_t n, ks_err *err)
{
    validation v = {.run = run};
    int rc = plan(&v, authz, n, err);
    if (rc == 0 && n > 0 && v.n == 0)
        ks_info("all %zu authorizations were already valid", n);
    if (rc == 0 && v.n > 0) /* none: the CA reused earlier validations */
        rc = publish(&v, err) < 0 ? -1 : answer_and_wait(&v, err);
    clean_up(&v);
    return rc;
}
