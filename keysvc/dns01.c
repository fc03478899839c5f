/*
 * dns01.c: dns-01 records from placement to removal (docs in dns01.h).
 */
#include "dns01.h"

#include "dns.h"
#include "hook.h"
#include "ks_log.h"
#include "ks_util.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* TTL of the records keysvc adds: short, since a validation is over in
 * minutes and a retry should not meet a cached old value. */
#define RECORD_TTL 60

typedef enum method { M_CERTBOT, M_RFC2136, M_LOCAL, M_HOOK } method;

typedef struct record {
    char *name;       /* as requested: "*.x" for a wildcard */
    char *identifier; /* without "*." */
    char *value;      /* the TXT value */
    char *owner;      /* _acme-challenge.<identifier>, after CNAMEs */
    char *zone;       /* NULL for certbot hooks */
    method how;
    const ks_zone_key *key;
    ks_dns_server server; /* where RFC 2136 updates go */
    char *hook_output;    /* the certbot auth hook's standard output */
    int published;
} record;

struct ks_dns01 {
    const ks_config *cfg;
    record *r;
    size_t n;
};

ks_dns01 *ks_dns01_new(const ks_config *cfg)
{
    ks_dns01 *s = calloc(1, sizeof(*s));
    if (s != NULL)
        s->cfg = cfg;
    return s;
}

int ks_dns01_add(ks_dns01 *s, const char *name, const char *value, ks_err *err)
{
    record *grown = realloc(s->r, (s->n + 1) * sizeof(*grown));
    if (grown == NULL)
        return ks_fail(err, "out of memory");
    s->r = grown;
    record *r = &s->r[s->n];
    memset(r, 0, sizeof(*r));
    r->name = strdup(name);
    r->identifier = strdup(strncmp(name, "*.", 2) == 0 ? name + 2 : name);
    r->value = strdup(value);
    r->owner = ks_strdup_printf("_acme-challenge.%s", r->identifier ? r->identifier : "");
    s->n++;
    if (r->name == NULL || r->identifier == NULL || r->value == NULL || r->owner == NULL)
        return ks_fail(err, "out of memory");
    return 0;
}

/* ------------------------------------------------------------ locate */

/* Only certbot's hooks configured: no DNS lookups (see dns01.h). */
static int certbot_only(const ks_config *cfg)
{
    return cfg->n_zone_keys == 0 && cfg->reload_zone_command == NULL &&
           cfg->hooks[KS_HOOK_SET_DNS_CHALLENGE] == NULL;
}

int ks_dns01_update_server(const ks_config *cfg, const ks_zone_key *key, const char *zone,
                           ks_dns_server *out, ks_err *err)
{
    const ks_dns *d = &cfg->dns;
    int port = key->port ? key->port : d->auth_port;
    char *host = key->server ? strdup(key->server) : ks_dns_zone_primary_new(d, zone, err);
    size_t n = 0;
    int rc = host ? ks_dns_addresses(d, host, port, out, 1, &n, err)
                  : (key->server ? ks_fail(err, "out of memory") : -1);
    free(host);
    return rc;
}

static method pick_method(const ks_config *cfg, const char *zone, const ks_zone_key **key)
{
    *key = ks_config_zone_key(cfg, zone);
    if (*key != NULL)
        return M_RFC2136;
    if (cfg->reload_zone_command != NULL)
        return M_LOCAL;
    if (cfg->hooks[KS_HOOK_SET_DNS_CHALLENGE] != NULL)
        return M_HOOK;
    return M_CERTBOT;
}

static int locate(ks_dns01 *s, record *r, ks_err *err)
{
    const ks_config *cfg = s->cfg;
    if (certbot_only(cfg)) {
        r->how = M_CERTBOT;
        return 0;
    }
    char *target = ks_dns_follow_cnames_new(&cfg->dns, r->owner, err);
    if (target == NULL)
        return ks_failp(err, "%s", r->name);
    if (strcmp(target, r->owner) != 0)
        ks_info("dns-01: %s: %s is a CNAME for %s", r->name, r->owner, target);
    free(r->owner);
    r->owner = target;
    if ((r->zone = ks_dns_zone_of_new(&cfg->dns, r->owner, err)) == NULL)
        return ks_failp(err, "%s", r->name);
    r->how = pick_method(cfg, r->zone, &r->key);
    if (r->how == M_CERTBOT && cfg->dns_auth_hook == NULL)
        return ks_fail(err, "%s: record %s is in zone %s, which has no key in "
                            "zone_update_keys, and neither settings.reload_zone_command nor "
                            "a dns hook is configured",
                       r->name, r->owner, r->zone);
    if (r->how == M_RFC2136 && ks_dns01_update_server(cfg, r->key, r->zone, &r->server, err) < 0)
        return ks_failp(err, "%s: zone %s", r->name, r->zone);
    return 0;
}

/* ------------------------------------------------------------ hooks */

/* acmebot's set/clear_dns_challenge hooks; a failing notification is a
 * warning, as in acmebot, but a hook that is the publisher must succeed. */
static int run_acmebot_hook(const ks_dns01 *s, ks_hook_id id, const record *r,
                            const char *zone, ks_err *err)
{
    const char *tmpl = s->cfg->hooks[id];
    char what[300];
    if (tmpl == NULL)
        return 0;
    ks_hook_var fields[] = {{"domain", r ? r->name : ""},
                            {"zone", zone},
                            {"challenge", r ? r->value : ""}};
    snprintf(what, sizeof(what), "%s hook for %s", ks_hook_name(id), r ? r->name : zone);
    char *out = NULL;
    int rc = ks_hook_run_template(what, tmpl, fields, 3, s->cfg->hook_timeout, &out, err);
    if (out != NULL && out[0] != '\0')
        ks_info("%s: %s", what, out);
    free(out);
    return rc;
}

/* dns_zone_update only knows {zone}: its fields are given in that order. */
static void zone_updated(const ks_dns01 *s, const char *zone)
{
    ks_err err;
    const char *tmpl = s->cfg->hooks[KS_HOOK_DNS_ZONE_UPDATE];
    if (tmpl == NULL)
        return;
    ks_hook_var fields[] = {{"zone", zone}};
    char *out = NULL;
    if (ks_hook_run_template("dns_zone_update hook", tmpl, fields, 1, s->cfg->hook_timeout, &out,
                             &err) < 0)
        ks_warn("%s", err.msg);
    free(out);
}

/* The names of every dns-01 record, comma-separated (certbot's
 * CERTBOT_ALL_DOMAINS). */
static char *all_names_new(const ks_dns01 *s)
{
    size_t len = 1;
    for (size_t i = 0; i < s->n; i++)
        len += strlen(s->r[i].identifier) + 1;
    char *out = calloc(len, 1);
    size_t used = 0;
    for (size_t i = 0; out != NULL && i < s->n; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", used ? "," : "",
                                 s->r[i].identifier);
    return out;
}

/* certbot's manual hooks: the data in the environment. */
static int run_certbot_hook(const ks_dns01 *s, record *r, int cleanup, size_t remaining,
                            ks_err *err)
{
    const char *command = cleanup ? s->cfg->dns_cleanup_hook : s->cfg->dns_auth_hook;
    char left[24], what[300];
    if (command == NULL)
        return 0;
    char *all = all_names_new(s);
    if (all == NULL)
        return ks_fail(err, "out of memory");
    snprintf(left, sizeof(left), "%zu", remaining);
    snprintf(what, sizeof(what), "dns %s hook for %s", cleanup ? "cleanup" : "auth", r->name);
    ks_hook_var vars[] = {
        {"CERTBOT_DOMAIN", r->identifier},   {"CERTBOT_VALIDATION", r->value},
        {"CERTBOT_ALL_DOMAINS", all},        {"CERTBOT_REMAINING_CHALLENGES", left},
        {"KEYSVC_IDENTIFIER", r->name},      {"KEYSVC_RECORD", r->owner},
        {"KEYSVC_VALIDATION", r->value},     {"CERTBOT_AUTH_OUTPUT", r->hook_output},
    };
    size_t n = r->hook_output != NULL ? 8 : 7;
    int rc = ks_hook_run(what, command, vars, n, s->cfg->dns_hook_timeout,
                         cleanup ? NULL : &r->hook_output, err);
    free(all);
    return rc;
}

/* ------------------------------------------------------------ RFC 2136 */

static int rfc2136(const ks_dns01 *s, const record *r, int add, ks_err *err)
{
    ks_tsig_key key = {0};
    char where[64];
    ks_dns_server_str(&r->server, where, sizeof(where));
    int rc = ks_tsig_key_load(r->key->file, &key, err);
    if (rc == 0)
        rc = ks_dns_update_txt(&s->cfg->dns, &r->server, &key, r->zone, r->owner, r->value,
                               RECORD_TTL, add, err);
    ks_tsig_key_clear(&key);
    if (rc < 0)
        return ks_failp(err, "%s: %s TXT %s %s zone %s at %s", r->name,
                        add ? "adding" : "removing", r->owner, add ? "to" : "from", r->zone,
                        where);
    ks_debug("dns-01: %s TXT %s in zone %s at %s", add ? "added" : "removed", r->owner, r->zone,
             where);
    return 0;
}

/* ------------------------------------------------------------ local */

/* acmebot's challenge file of a zone: directories.challenge/file_names.
 * challenge with {name} = the zone, '*' made '_'.  Caller frees. */
static char *challenge_file_new(const ks_config *cfg, const char *zone)
{
    ks_hook_var fields[] = {{"name", zone}};
    char **words = NULL, *expanded = NULL;
    if (ks_template_argv(cfg->fn_challenge, fields, 1, &words, NULL) == 0 && words[0] != NULL)
        expanded = ks_strdup_printf("%s/%s", cfg->dir_challenge, words[0]);
    ks_words_free(words);
    for (char *c = expanded ? strrchr(expanded, '/') : NULL; c && *c; c++)
        if (*c == '*')
            *c = '_';
    return expanded;
}

/* The name a local record is listed under: acmebot's processors create
 * _acme-challenge.<name minus "*.">, so a CNAME target must itself be an
 * _acme-challenge name. */
static char *local_key_new(const record *r, ks_err *err)
{
    const char *prefix = "_acme-challenge.";
    if (strncmp(r->owner, prefix, strlen(prefix)) != 0) {
        ks_fail(err, "%s: local zone updates cannot write %s (a CNAME target that is not an "
                     "_acme-challenge name); give zone %s a key in zone_update_keys",
                r->name, r->owner, r->zone);
        return NULL;
    }
    return ks_strdup_printf("%s%s", r->name[0] == '*' ? "*." : "", r->owner + strlen(prefix));
}

/* The JSON document of one zone's records: {"name": "value", ...}. */
static char *local_document_new(const ks_dns01 *s, const char *zone, ks_err *err)
{
    json_object *doc = json_object_new_object();
    char *text = NULL;
    for (size_t i = 0; doc != NULL && i < s->n; i++) {
        const record *r = &s->r[i];
        if (r->how != M_LOCAL || strcmp(r->zone, zone) != 0)
            continue;
        char *key = local_key_new(r, err);
        if (key == NULL) {
            json_object_put(doc);
            return NULL;
        }
        json_object_object_add(doc, key, json_object_new_string(r->value));
        free(key);
    }
    if (doc != NULL)
        text = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
    json_object_put(doc);
    if (text == NULL)
        ks_fail(err, "out of memory");
    return text;
}

/* Runs reload_zone_command with the zone name as its last argument. */
static int reload_zone(const ks_config *cfg, const char *zone, ks_err *err)
{
    char *command = ks_strdup_printf("%s %s", cfg->reload_zone_command, zone);
    char what[300], *out = NULL;
    if (command == NULL)
        return ks_fail(err, "out of memory");
    snprintf(what, sizeof(what), "reload_zone_command for zone %s", zone);
    /* The zone name is a checked DNS name (letters, digits, '-', '.'), so
     * appending it keeps it one word. */
    int rc = ks_hook_run(what, command, NULL, 0, cfg->hook_timeout, &out, err);
    if (out != NULL && out[0] != '\0')
        ks_debug("%s: %s", what, out);
    free(out);
    free(command);
    return rc;
}

static int local_publish_zone(ks_dns01 *s, const char *zone, ks_err *err)
{
    char *path = challenge_file_new(s->cfg, zone);
    char *doc = path ? local_document_new(s, zone, err) : NULL;
    int rc = -1;
    if (path == NULL)
        ks_fail(err, "out of memory");
    if (doc != NULL && ks_mkdirs(s->cfg->dir_challenge, 0755, err) == 0 &&
        ks_write_file_atomic(path, doc, strlen(doc), 0644, err) == 0) {
        for (size_t i = 0; i < s->n; i++) /* the cleanup removes the file */
            if (s->r[i].how == M_LOCAL && strcmp(s->r[i].zone, zone) == 0)
                s->r[i].published = 1;
        rc = reload_zone(s->cfg, zone, err);
    }
    if (rc < 0)
        ks_failp(err, "zone %s: local update (%s)", zone, path ? path : "?");
    free(doc);
    free(path);
    return rc;
}

static void local_remove_zone(const ks_dns01 *s, const char *zone)
{
    ks_err err;
    char *path = challenge_file_new(s->cfg, zone);
    if (path != NULL && unlink(path) < 0 && errno != ENOENT)
        ks_warn("zone %s: removing %s: %s", zone, path, strerror(errno));
    if (reload_zone(s->cfg, zone, &err) < 0)
        ks_warn("%s (the records may be left in the DNS)", err.msg);
    free(path);
}

/* Whether record i is the first of its zone with method `how`. */
static int first_of_zone(const ks_dns01 *s, size_t i, method how)
{
    for (size_t j = 0; j < i; j++)
        if (s->r[j].how == how && s->r[j].zone && strcmp(s->r[j].zone, s->r[i].zone) == 0)
            return 0;
    return 1;
}

/* ------------------------------------------------------------ publish */

static int publish_one(ks_dns01 *s, record *r, size_t remaining, ks_err *err)
{
    int rc = 0;
    switch (r->how) {
    case M_RFC2136:
        rc = rfc2136(s, r, 1, err);
        r->published = rc == 0;
        break;
    case M_HOOK:
        r->published = 1; /* a failed hook may have added it all the same */
        rc = run_acmebot_hook(s, KS_HOOK_SET_DNS_CHALLENGE, r, r->zone, err);
        return rc < 0 ? ks_failp(err, "%s", r->name) : 0;
    case M_CERTBOT:
        r->published = 1;
        rc = run_certbot_hook(s, r, 0, remaining, err);
        return rc < 0 ? ks_failp(err, "%s", r->name) : 0;
    case M_LOCAL:
        return 0; /* per zone, below */
    }
    if (rc == 0 && s->cfg->hooks[KS_HOOK_SET_DNS_CHALLENGE] != NULL) {
        ks_err why;
        if (run_acmebot_hook(s, KS_HOOK_SET_DNS_CHALLENGE, r, r->zone, &why) < 0)
            ks_warn("%s", why.msg);
    }
    return rc;
}

/* Records are published zone by zone, in name order: the same order on
 * every run, whatever order the CA listed the authorizations in. */
static int by_zone_then_name(const void *a, const void *b)
{
    const record *x = a, *y = b;
    int z = strcmp(x->zone ? x->zone : "", y->zone ? y->zone : "");
    return z != 0 ? z : strcmp(x->name, y->name);
}

int ks_dns01_publish(ks_dns01 *s, ks_err *err)
{
    if (s == NULL)
        return ks_fail(err, "out of memory");
    for (size_t i = 0; i < s->n; i++)
        if (locate(s, &s->r[i], err) < 0)
            return -1;
    if (s->n > 1)
        qsort(s->r, s->n, sizeof(*s->r), by_zone_then_name);
    for (size_t i = 0; i < s->n; i++)
        if (publish_one(s, &s->r[i], s->n - i - 1, err) < 0)
            return -1;
    for (size_t i = 0; i < s->n; i++) {
        record *r = &s->r[i];
        if (r->how != M_LOCAL || !first_of_zone(s, i, M_LOCAL))
            continue;
        if (local_publish_zone(s, r->zone, err) < 0)
            return -1;
        for (size_t j = i; j < s->n; j++) { /* acmebot's notification hooks */
            ks_err why;
            if (s->r[j].how == M_LOCAL && strcmp(s->r[j].zone, r->zone) == 0 &&
                run_acmebot_hook(s, KS_HOOK_SET_DNS_CHALLENGE, &s->r[j], r->zone, &why) < 0)
                ks_warn("%s", why.msg);
        }
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->r[i].zone != NULL && s->r[i].how != M_CERTBOT && first_of_zone(s, i, s->r[i].how))
            zone_updated(s, s->r[i].zone);
    return 0;
}

/* ------------------------------------------------------------ wait */

/* Whether `server` serves every value due at `owner`; *missing names the
 * first absent value's record. */
static int server_has_all(const ks_dns01 *s, const ks_dns_server *server, const char *owner,
                          const record **missing, ks_err *err)
{
    char **values = NULL;
    size_t n = 0;
    if (ks_dns_txt_at(&s->cfg->dns, server, owner, &values, &n, err) < 0)
        return -1;
    *missing = NULL;
    for (size_t i = 0; i < s->n && *missing == NULL; i++) {
        const record *r = &s->r[i];
        if (r->zone == NULL || strcmp(r->owner, owner) != 0)
            continue;
        int found = 0;
        for (size_t v = 0; v < n && !found; v++)
            found = strcmp(values[v], r->value) == 0;
        if (!found)
            *missing = r;
    }
    ks_dns_strings_free(values);
    return *missing == NULL;
}

typedef struct zone_servers {
    const char *zone;
    ks_dns_server servers[KS_DNS_MAX_SERVERS];
    size_t n;
} zone_servers;

/* One round over every record and server; 1 when all are visible, else 0
 * with `pending` describing the first one missing or unreachable. */
static int check_round(const ks_dns01 *s, const zone_servers *zs, size_t n_zones, char *pending,
                       size_t size)
{
    for (size_t z = 0; z < n_zones; z++)
        for (size_t i = 0; i < s->n; i++) {
            const record *r = &s->r[i];
            if (r->zone == NULL || strcmp(r->zone, zs[z].zone) != 0)
                continue;
            for (size_t k = 0; k < zs[z].n; k++) {
                const record *missing = NULL;
                ks_err why = {{0}};
                char where[64];
                int has = server_has_all(s, &zs[z].servers[k], r->owner, &missing, &why);
                ks_dns_server_str(&zs[z].servers[k], where, sizeof(where));
                if (has == 1)
                    continue;
                if (has < 0)
                    snprintf(pending, size, "%s (zone %s): name server %s: %.300s", r->name,
                             r->zone, where, why.msg);
                else
                    snprintf(pending, size, "%s: TXT %s (zone %s) is not yet on name server %s",
                             missing->name, r->owner, r->zone, where);
                return 0;
            }
        }
    return 1;
}

/* The name servers of every zone with records to check. */
static zone_servers *zones_to_check(const ks_dns01 *s, size_t *n, ks_err *err)
{
    zone_servers *zs = calloc(s->n ? s->n : 1, sizeof(*zs));
    *n = 0;
    if (zs == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < s->n; i++) {
        const record *r = &s->r[i];
        int seen = r->zone == NULL;
        for (size_t z = 0; z < *n && !seen; z++)
            seen = strcmp(zs[z].zone, r->zone) == 0;
        if (seen)
            continue;
        zs[*n].zone = r->zone;
        if (ks_dns_zone_servers(&s->cfg->dns, r->zone, zs[*n].servers, KS_DNS_MAX_SERVERS,
                                &zs[*n].n, err) < 0) {
            ks_failp(err, "%s", r->name);
            free(zs);
            return NULL;
        }
        (*n)++;
    }
    return zs;
}

int ks_dns01_wait_visible(ks_dns01 *s, ks_err *err)
{
    if (s->n == 0)
        return 0;
    size_t n_zones = 0;
    zone_servers *zs = zones_to_check(s, &n_zones, err);
    if (zs == NULL)
        return -1;
    char pending[600] = "";
    int attempts = s->cfg->max_dns_lookup_attempts, rc = 0;
    for (int attempt = 1; n_zones > 0; attempt++) {
        rc = check_round(s, zs, n_zones, pending, sizeof(pending));
        if (rc != 0)
            break;
        if (attempt >= attempts) {
            rc = ks_fail(err, "%s; gave up after %d lookups %d s apart "
                              "(settings.max_dns_lookup_attempts, dns_lookup_delay)",
                         pending, attempts, s->cfg->dns_lookup_delay);
            break;
        }
        ks_info("dns-01: waiting: %s (lookup %d of %d)", pending, attempt, attempts);
        ks_sleep_ms(s->cfg->dns_lookup_delay * 1000LL);
    }
    if (rc > 0) {
        size_t servers = 0;
        for (size_t z = 0; z < n_zones; z++)
            servers += zs[z].n;
        ks_info("dns-01: every record is on all %zu name server(s) of %zu zone(s)", servers,
                n_zones);
    }
    free(zs);
    return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ clean up */

static void remove_one(const ks_dns01 *s, record *r)
{
    ks_err err;
    int rc = 0;
    if (r->how == M_RFC2136)
        rc = rfc2136(s, r, 0, &err);
    else if (r->how == M_HOOK)
        rc = run_acmebot_hook(s, KS_HOOK_CLEAR_DNS_CHALLENGE, r, r->zone, &err);
    else if (r->how == M_CERTBOT)
        rc = run_certbot_hook(s, r, 1, 0, &err);
    if (rc < 0)
        ks_warn("%s (the record may be left in the DNS)", err.msg);
    if (r->how == M_RFC2136 && s->cfg->hooks[KS_HOOK_CLEAR_DNS_CHALLENGE] != NULL &&
        run_acmebot_hook(s, KS_HOOK_CLEAR_DNS_CHALLENGE, r, r->zone, &err) < 0)
        ks_warn("%s", err.msg);
}

void ks_dns01_cleanup_free(ks_dns01 *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (s->r[i].published && s->r[i].how != M_LOCAL)
            remove_one(s, &s->r[i]);
    for (size_t i = 0; i < s->n; i++) {
        record *r = &s->r[i];
        if (!r->published || r->how != M_LOCAL || !first_of_zone(s, i, M_LOCAL))
            continue;
        local_remove_zone(s, r->zone);
        for (size_t j = i; j < s->n; j++) {
            ks_err why;
            if (s->r[j].how == M_LOCAL && strcmp(s->r[j].zone, r->zone) == 0 &&
                run_acmebot_hook(s, KS_HOOK_CLEAR_DNS_CHALLENGE, &s->r[j], r->zone, &why) < 0)
                ks_warn("%s", why.msg);
        }
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->r[i].published && s->r[i].zone != NULL && s->r[i].how != M_CERTBOT &&
            first_of_zone(s, i, s->r[i].how))
            zone_updated(s, s->r[i].zone);
    for (size_t i = 0; i < s->n; i++) {
        record *r = &s->r[i];
        free(r->name);
        free(r->identifier);
        free(r->value);
        free(r->owner);
        free(r->zone);
        free(r->hook_output);
    }
    free(s->r);
    free(s);
}
