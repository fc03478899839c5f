/*
 * config_records.c: each certificate's acmebot record settings.
 *
 * "verify" (the ports, with their STARTTLS protocol, hosts and key types,
 * at which acmebot checks the installed certificate; settings.verify is
 * every certificate's default, narrowed to its alt names and key types)
 * and "tlsa_records" (the TLSA records published for the certificate, by
 * zone).  config_acmebot.c calls these as it reads the settings and each
 * certificate.
 */
#include "config_internal.h"

#include "ks_util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- verify */

static const char *const starttls_names[] = {"",    "smtp", "pop3", "imap", "sieve",
                                             "ftp", "ldap", "xmpp", NULL};

const char *ks_starttls_name(ks_starttls s)
{
    return s > KS_STARTTLS_NONE && s <= KS_STARTTLS_XMPP ? starttls_names[s] : NULL;
}

/* A string member that must be one of `names` (or null: index 0). */
static int opt_choice(cfgp *p, json_object *obj, const char *path, const char *key,
                      const char *const *names, int nullable, const char *expected, int *dst)
{
    json_object *v = NULL;
    char cpath[700], *s = NULL;
    if (!json_object_object_get_ex(obj, key, &v))
        return 0;
    child_path(cpath, sizeof(cpath), path, key);
    if (v == NULL && nullable) {
        *dst = 0;
        return 0;
    }
    if (opt_string(p, obj, path, key, 0, &s) < 0)
        return cfail(p, cpath, "expected %s", expected);
    for (int i = 0; names[i] != NULL; i++) {
        if (names[i][0] != '\0' && strcmp(s, names[i]) == 0) {
            free(s);
            *dst = i;
            return 0;
        }
    }
    free(s);
    return cfail(p, cpath, "expected %s", expected);
}

/* Hosts to connect to: plain names (a wildcard is nothing to connect to). */
static int check_verify_host(cfgp *p, const char *path, const char *host)
{
    char *lower = lowercase_dup(host);
    int ok = lower != NULL && valid_fqdn(lower) && lower[0] != '*';
    free(lower);
    return ok ? 0 : cfail(p, path, "\"%s\" is not a host name to connect to", host);
}

static const char *const verify_keys[] = {"port",  "starttls",  "protocol",
                                          "hosts", "key_types", NULL};
static const char *const verify_protocols[] = {"", "http", NULL};

/* A port: an integer, or in an object also a numeric string as acmebot
 * takes it ("25"). */
static int verify_port(cfgp *p, json_object *v, const char *path, int strings, int *port)
{
    long long n = -1;
    if (json_object_is_type(v, json_type_int)) {
        n = (long long)json_object_get_int64(v);
    } else if (strings && json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        char *end = NULL;
        n = isdigit((unsigned char)s[0]) ? strtoll(s, &end, 10) : -1;
        if (end == NULL || *end != '\0')
            return cfail(p, path, "\"%s\" is not a port number", s);
    } else {
        return cfail(p, path, "expected a port number, got %s", type_name(v));
    }
    if (n < 1 || n > 65535)
        return cfail(p, path, "%lld is not a port (1 to 65535)", n);
    *port = (int)n;
    return 0;
}

static int parse_verify_object(cfgp *p, json_object *v, const char *path, ks_verify_target *t)
{
    json_object *x = NULL;
    char cpath[700];
    int starttls = 0, protocol = 0;
    check_keys(p, v, path, verify_keys, NULL);
    if (!json_object_object_get_ex(v, "port", &x))
        return cfail(p, path, "\"port\" is required");
    child_path(cpath, sizeof(cpath), path, "port");
    if (verify_port(p, x, cpath, 1, &t->port) < 0 ||
        opt_choice(p, v, path, "starttls", starttls_names, 1,
                   "null, \"smtp\", \"pop3\", \"imap\", \"sieve\", \"ftp\", \"ldap\" or \"xmpp\"",
                   &starttls) < 0 ||
        opt_choice(p, v, path, "protocol", verify_protocols, 1, "null or \"http\"", &protocol) <
            0 ||
        cfg_opt_string_list(p, v, path, "hosts", check_verify_host, &t->hosts, &t->n_hosts) < 0)
        return -1;
    for (size_t i = 0; i < t->n_hosts; i++)
        for (char *c = t->hosts[i]; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    t->starttls = (ks_starttls)starttls;
    t->protocol = (ks_verify_protocol)protocol;
    child_path(cpath, sizeof(cpath), path, "key_types");
    if (json_object_object_get_ex(v, "key_types", &x) &&
        parse_key_types(p, x, cpath, t->key_types, &t->n_key_types) < 0)
        return -1;
    return 0;
}

/* A port number, or an object with the port and connection details. */
static int parse_verify_target(cfgp *p, json_object *v, const char *path, ks_verify_target *t)
{
    if (json_object_is_type(v, json_type_int))
        return verify_port(p, v, path, 0, &t->port);
    if (!json_object_is_type(v, json_type_object))
        return cfail(p, path,
                     "expected a port number or {\"port\", \"starttls\", \"protocol\", "
                     "\"hosts\", \"key_types\"}, got %s",
                     type_name(v));
    return parse_verify_object(p, v, path, t);
}

/* acmebot's verify: a list of targets, one target, or null (none). */
int parse_verify_list(cfgp *p, json_object *v, const char *path, ks_verify_target **out, size_t *n)
{
    if (v == NULL)
        return 0;
    int list = json_object_is_type(v, json_type_array);
    size_t len = list ? json_object_array_length(v) : 1;
    *out = calloc(len ? len : 1, sizeof(**out));
    if (*out == NULL)
        return ks_fail(p->err, "out of memory");
    for (size_t i = 0; i < len; i++) {
        char ipath[600];
        if (list)
            index_path(ipath, sizeof(ipath), path, i);
        else
            snprintf(ipath, sizeof(ipath), "%s", path);
        (*n)++;
        if (parse_verify_target(p, list ? json_object_array_get_idx(v, i) : v, ipath, &(*out)[i]) <
            0)
            return -1;
    }
    return 0;
}

void free_verify(ks_verify_target *targets, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cfg_free_strings(targets[i].hosts, targets[i].n_hosts);
    free(targets);
}

static int has_name(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* A target's hosts for a certificate: the ones given, which must be among
 * its alt names when the certificate names them itself (the settings' are
 * narrowed), or all of its non-wildcard alt names. */
static int resolve_hosts(cfgp *p, const ks_cert_config *c, const ks_verify_target *t, int own,
                         const char *path, ks_verify_target *out)
{
    char hpath[700];
    child_path(hpath, sizeof(hpath), path, "hosts");
    for (size_t i = 0; t->n_hosts == 0 && i < c->n_alt_names; i++)
        if (c->alt_names[i][0] != '*' &&
            cfg_append_string(p, &out->hosts, &out->n_hosts, c->alt_names[i]) < 0)
            return -1;
    for (size_t i = 0; i < t->n_hosts; i++) {
        if (has_name(c->alt_names, c->n_alt_names, t->hosts[i])) {
            if (cfg_append_string(p, &out->hosts, &out->n_hosts, t->hosts[i]) < 0)
                return -1;
        } else if (own) {
            return cfail(p, hpath, "\"%s\" is not an alt name of certificate \"%s\"", t->hosts[i],
                         c->name);
        }
    }
    return 0;
}

static int resolve_key_types(cfgp *p, const ks_cert_config *c, const ks_verify_target *t, int own,
                             const char *path, ks_verify_target *out)
{
    char kpath[700];
    child_path(kpath, sizeof(kpath), path, "key_types");
    if (t->n_key_types == 0) {
        memcpy(out->key_types, c->key_types, sizeof(out->key_types));
        out->n_key_types = c->n_key_types;
        return 0;
    }
    for (size_t i = 0; i < t->n_key_types; i++) {
        int found = 0;
        for (size_t j = 0; j < c->n_key_types; j++)
            found |= c->key_types[j] == t->key_types[i];
        if (found)
            out->key_types[out->n_key_types++] = t->key_types[i];
        else if (own)
            return cfail(p, kpath, "\"%s\" is not a key type of certificate \"%s\"",
                         ks_key_type_name(t->key_types[i]), c->name);
    }
    return 0;
}

/* `single`: the certificate's verify is one target, not a list (its path
 * has no index). */
static int resolve_verify(cfgp *p, ks_cert_config *c, const ks_verify_target *targets, size_t n,
                          int own, int single, const char *path)
{
    c->verify = calloc(n ? n : 1, sizeof(*c->verify));
    if (c->verify == NULL)
        return ks_fail(p->err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char tpath[600];
        if (single)
            snprintf(tpath, sizeof(tpath), "%s", path);
        else
            index_path(tpath, sizeof(tpath), path, i);
        ks_verify_target *out = &c->verify[c->n_verify++];
        out->port = targets[i].port;
        out->starttls = targets[i].starttls;
        out->protocol = targets[i].protocol;
        if (resolve_hosts(p, c, &targets[i], own, tpath, out) < 0 ||
            resolve_key_types(p, c, &targets[i], own, tpath, out) < 0)
            return -1;
        if (out->n_hosts == 0 || out->n_key_types == 0) { /* nothing left to check */
            cfg_free_strings(out->hosts, out->n_hosts);
            memset(out, 0, sizeof(*out));
            c->n_verify--;
        }
    }
    return 0;
}

int cert_verify(cfgp *p, const ks_config *cfg, ks_cert_config *c, json_object *obj,
                const char *path)
{
    json_object *v = NULL;
    char vpath[600];
    if (obj == NULL || !json_object_object_get_ex(obj, "verify", &v))
        return resolve_verify(p, c, cfg->verify, cfg->n_verify, 0, 0, "settings.verify");
    child_path(vpath, sizeof(vpath), path, "verify");
    ks_verify_target *own = NULL;
    size_t n = 0;
    int single = v != NULL && !json_object_is_type(v, json_type_array);
    int rc = parse_verify_list(p, v, vpath, &own, &n) < 0
                 ? -1
                 : resolve_verify(p, c, own, n, 1, single, vpath);
    free_verify(own, n);
    return rc;
}

/* --------------------------------------------------------- tlsa_records */

static const char *const tlsa_keys[] = {"host",     "port", "usage", "selector",
                                        "protocol", "ttl",  NULL};
static const char *const tlsa_usages[] = {"pkix-ta", "pkix-ee", "dane-ta", "dane-ee", NULL};
static const char *const tlsa_selectors[] = {"cert", "spki", NULL};
/* RFC 6698 section 3: the protocols a TLSA owner name is made for. */
static const char *const tlsa_protocols[] = {"tcp", "udp", "sctp", NULL};

static int parse_tlsa_object(cfgp *p, ks_tlsa_record *r, json_object *obj, const char *path,
                             char **host, int *protocol)
{
    long port = r->port, ttl = r->ttl;
    check_keys(p, obj, path, tlsa_keys, NULL);
    if (opt_string(p, obj, path, "host", 0, host) < 0 ||
        opt_int(p, obj, path, "port", 1, 65535, NULL, &port) < 0 ||
        opt_choice(p, obj, path, "usage", tlsa_usages, 0,
                   "\"pkix-ta\", \"pkix-ee\", \"dane-ta\" or \"dane-ee\"", &r->usage) < 0 ||
        opt_choice(p, obj, path, "selector", tlsa_selectors, 0, "\"cert\" or \"spki\"",
                   &r->selector) < 0 ||
        opt_choice(p, obj, path, "protocol", tlsa_protocols, 0, "\"tcp\", \"udp\" or \"sctp\"",
                   protocol) < 0 ||
        opt_int(p, obj, path, "ttl", 0, 2147483647, NULL, &ttl) < 0)
        return -1;
    r->port = (int)port;
    r->ttl = (int)ttl;
    return 0;
}

/* The record's FQDN: "@" (the default) is the zone, else host.zone. */
static char *tlsa_fqdn(const char *zone, const char *host)
{
    char *joined = host == NULL || strcmp(host, "@") == 0 ? strdup(zone)
                                                          : ks_strdup_printf("%s.%s", host, zone);
    char *lower = joined ? lowercase_dup(joined) : NULL;
    free(joined);
    return lower;
}

static int same_tlsa(const ks_tlsa_record *a, const ks_tlsa_record *b)
{
    return strcmp(a->host, b->host) == 0 && a->port == b->port &&
           strcmp(a->protocol, b->protocol) == 0 && a->usage == b->usage &&
           a->selector == b->selector;
}

/* One record: a host name, or {host, port, usage, selector, protocol, ttl}. */
static int add_tlsa(cfgp *p, ks_cert_config *c, const char *zone, json_object *item,
                    const char *path)
{
    ks_tlsa_record *r = &c->tlsa_records[c->n_tlsa_records++];
    char *host = NULL;
    int protocol = 0, rc = -1;
    *r = (ks_tlsa_record){
        .port = 443, .usage = KS_TLSA_USAGE_PKIX_EE, .selector = KS_TLSA_SELECTOR_SPKI, .ttl = 300};
    if (json_object_is_type(item, json_type_string)) {
        if ((host = strdup(json_object_get_string(item))) == NULL)
            return ks_fail(p->err, "out of memory");
    } else if (!json_object_is_type(item, json_type_object)) {
        return cfail(p, path,
                     "expected a host name or {\"host\", \"port\", \"usage\", "
                     "\"selector\", \"protocol\", \"ttl\"}, got %s",
                     type_name(item));
    } else if (parse_tlsa_object(p, r, item, path, &host, &protocol) < 0) {
        goto out;
    }
    r->zone = strdup(zone);
    r->host = tlsa_fqdn(zone, host);
    r->protocol = strdup(tlsa_protocols[protocol]);
    if (r->zone == NULL || r->host == NULL || r->protocol == NULL) {
        rc = ks_fail(p->err, "out of memory");
        goto out;
    }
    if (!valid_fqdn(r->host) || r->host[0] == '*') {
        rc = cfail(p, path, "\"%s\" is not a host name a TLSA record can be at", r->host);
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i + 1 < c->n_tlsa_records && rc == 0; i++)
        if (same_tlsa(&c->tlsa_records[i], r))
            rc = cfail(p, path, "the record for %s port %d is listed twice", r->host, r->port);
out:
    free(host);
    return rc;
}

static size_t count_tlsa(json_object *zones)
{
    size_t n = 0;
    json_object_object_foreach(zones, zone, items)
    {
        (void)zone;
        n += json_object_is_type(items, json_type_array) ? json_object_array_length(items) : 1;
    }
    return n;
}

/* The zone of a group of records: lower case, "@" meaning the common name
 * as in alt_names. */
static int tlsa_zone(cfgp *p, const ks_cert_config *c, const char *zone, const char *zpath,
                     char **out)
{
    *out = lowercase_dup(strcmp(zone, "@") == 0 ? c->common_name : zone);
    if (*out == NULL)
        return ks_fail(p->err, "out of memory");
    size_t len = strlen(*out);
    if (len > 1 && (*out)[len - 1] == '.')
        (*out)[len - 1] = '\0';
    if (!valid_fqdn(*out) || (*out)[0] == '*')
        return cfail(p, zpath, "\"%s\" is not a zone name", zone);
    return 0;
}

int cert_tlsa(cfgp *p, ks_cert_config *c, json_object *obj, const char *path)
{
    json_object *v = NULL;
    char tpath[600];
    if (obj == NULL || !json_object_object_get_ex(obj, "tlsa_records", &v) || v == NULL)
        return 0;
    child_path(tpath, sizeof(tpath), path, "tlsa_records");
    if (expect_object(p, v, tpath) < 0)
        return -1;
    size_t n = count_tlsa(v);
    if ((c->tlsa_records = calloc(n ? n : 1, sizeof(*c->tlsa_records))) == NULL)
        return ks_fail(p->err, "out of memory");
    json_object_object_foreach(v, zone, items)
    {
        char zpath[700], *z = NULL;
        child_path(zpath, sizeof(zpath), tpath, zone);
        int list = json_object_is_type(items, json_type_array);
        size_t len = list ? json_object_array_length(items) : 1;
        int rc = tlsa_zone(p, c, zone, zpath, &z);
        for (size_t i = 0; i < len && rc == 0; i++) {
            char ipath[800];
            if (list)
                index_path(ipath, sizeof(ipath), zpath, i);
            rc = add_tlsa(p, c, z, list ? json_object_array_get_idx(items, i) : items,
                          list ? ipath : zpath);
        }
        free(z);
        if (rc < 0)
            return -1;
    }
    return 0;
}
