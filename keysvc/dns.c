/*
 * dns.c: lookups at resolvers and authoritative servers, and RFC 2136
 * updates, over libldns (docs in dns.h).
 *
 * libldns gives a resolver one port for all its servers, and configured
 * resolvers may each have their own, so every server gets a resolver object
 * of its own and they are tried in order.
 */
#include "dns.h"

#include "ks_util.h"

#include <ctype.h>
#include <ldns/ldns.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ addresses */

int ks_dns_server_parse(const char *text, int default_port, ks_dns_server *out)
{
    unsigned char buf[16];
    const char *host = text, *port = NULL;
    size_t host_len = strlen(text);
    const char *colon = strrchr(text, ':');
    int bracketed = text[0] == '[';
    if (bracketed) { /* [v6]:port or [v6] */
        const char *close = strchr(text, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return -1;
        host = text + 1;
        host_len = (size_t)(close - host);
        port = close[1] == ':' ? close + 2 : NULL;
    } else if (colon != NULL && strchr(text, ':') == colon) { /* v4:port */
        host_len = (size_t)(colon - text);
        port = colon + 1;
    } /* else: v4 or bare v6 */
    if (host_len == 0 || host_len >= sizeof(out->addr))
        return -1;
    memset(out, 0, sizeof(*out));
    memcpy(out->addr, host, host_len);
    if (inet_pton(AF_INET6, out->addr, buf) != 1 &&
        (bracketed || inet_pton(AF_INET, out->addr, buf) != 1))
        return -1; /* brackets only around IPv6 */
    out->port = default_port;
    if (port != NULL) {
        char *end = NULL;
        if (!isdigit((unsigned char)port[0]))
            return -1;
        long p = strtol(port, &end, 10);
        if (*port == '\0' || *end != '\0' || p < 1 || p > 65535)
            return -1;
        out->port = (int)p;
    }
    return 0;
}

const char *ks_dns_server_str(const ks_dns_server *s, char *buf, size_t size)
{
    snprintf(buf, size, strchr(s->addr, ':') ? "[%s]:%d" : "%s:%d", s->addr, s->port);
    return buf;
}

/* ------------------------------------------------------------ resolvers */

/* A resolver for one server.  recursive: ask with RD (a resolver); else ask
 * the server about its own data only (an authoritative server). */
static ldns_resolver *resolver_for(const ks_dns *d, const ks_dns_server *s, int recursive)
{
    ldns_resolver *r = ldns_resolver_new();
    ldns_rdf *addr = r ? ldns_rdf_new_frm_str(strchr(s->addr, ':') ? LDNS_RDF_TYPE_AAAA
                                                                   : LDNS_RDF_TYPE_A,
                                              s->addr)
                       : NULL;
    if (addr == NULL || ldns_resolver_push_nameserver(r, addr) != LDNS_STATUS_OK) {
        ldns_rdf_deep_free(addr);
        ldns_resolver_deep_free(r);
        return NULL;
    }
    ldns_rdf_deep_free(addr); /* pushed as a copy */
    ldns_resolver_set_port(r, (uint16_t)s->port);
    ldns_resolver_set_recursive(r, recursive != 0);
    ldns_resolver_set_timeout(r, (struct timeval){.tv_sec = d->timeout_s > 0 ? d->timeout_s : 3});
    ldns_resolver_set_retry(r, 2);
    ldns_resolver_set_fallback(r, true); /* TCP after a truncated answer */
    ldns_resolver_set_defnames(r, false);
    ldns_resolver_set_dnsrch(r, false);
    return r;
}

/* The system's resolvers, from /etc/resolv.conf. */
static ldns_resolver *system_resolver(const ks_dns *d, ks_err *err)
{
    ldns_resolver *r = NULL;
    ldns_status st = ldns_resolver_new_frm_file(&r, NULL);
    if (st != LDNS_STATUS_OK) {
        ks_fail(err, "reading the system's resolvers (/etc/resolv.conf): %s",
                ldns_get_errorstr_by_id(st));
        return NULL;
    }
    ldns_resolver_set_recursive(r, true);
    ldns_resolver_set_timeout(r, (struct timeval){.tv_sec = d->timeout_s > 0 ? d->timeout_s : 3});
    ldns_resolver_set_defnames(r, false);
    ldns_resolver_set_dnsrch(r, false);
    return r;
}

static ldns_rdf *dname_new(const char *name)
{
    return ldns_dname_new_frm_str(name[0] ? name : ".");
}

/* Asks one server; the answer when it came back with NOERROR or NXDOMAIN
 * (or REFUSED from a resolver), else NULL with a reason in `why`. */
static ldns_pkt *ask(ldns_resolver *r, const char *name, ldns_rr_type type, int recursive,
                     char *why, size_t why_size)
{
    ldns_rdf *dname = dname_new(name);
    ldns_pkt *pkt = NULL;
    if (dname == NULL) {
        snprintf(why, why_size, "\"%s\" is not a valid DNS name", name);
        return NULL;
    }
    ldns_status st = ldns_resolver_query_status(&pkt, r, dname, type, LDNS_RR_CLASS_IN,
                                                recursive ? LDNS_RD : 0);
    ldns_rdf_deep_free(dname);
    if (st != LDNS_STATUS_OK || pkt == NULL) {
        snprintf(why, why_size, "%s", ldns_get_errorstr_by_id(st));
        ldns_pkt_free(pkt);
        return NULL;
    }
    ldns_pkt_rcode rc = ldns_pkt_get_rcode(pkt);
    /* A resolver that is an authoritative server refuses names outside its
     * zones: for a lookup that is "nothing here", like NXDOMAIN. */
    int refused_ok = recursive && rc == LDNS_RCODE_REFUSED;
    if (rc != LDNS_RCODE_NOERROR && rc != LDNS_RCODE_NXDOMAIN && !refused_ok) {
        ldns_lookup_table *lt = ldns_lookup_by_id(ldns_rcodes, (int)rc);
        snprintf(why, why_size, "answered %s", lt ? lt->name : "an error");
        ldns_pkt_free(pkt);
        return NULL;
    }
    return pkt;
}

/* Asks the configured resolvers in turn (or the system's); the first usable
 * answer, or NULL with err naming each server's failure. */
static ldns_pkt *ask_resolvers(const ks_dns *d, const char *name, ldns_rr_type type, ks_err *err)
{
    char why[200], all[700] = "";
    if (d->n_resolvers == 0) {
        ldns_resolver *r = system_resolver(d, err);
        ldns_pkt *pkt = r ? ask(r, name, type, 1, why, sizeof(why)) : NULL;
        ldns_resolver_deep_free(r);
        if (pkt == NULL && r != NULL)
            ks_fail(err, "the system's resolvers: %s", why);
        return pkt;
    }
    for (size_t i = 0; i < d->n_resolvers; i++) {
        char label[64];
        ldns_resolver *r = resolver_for(d, &d->resolvers[i], 1);
        ldns_pkt *pkt = r ? ask(r, name, type, 1, why, sizeof(why)) : NULL;
        ldns_resolver_deep_free(r);
        if (pkt != NULL)
            return pkt;
        size_t used = strlen(all);
        snprintf(all + used, sizeof(all) - used, "%s%s %s", used ? "; " : "",
                 ks_dns_server_str(&d->resolvers[i], label, sizeof(label)),
                 r ? why : "out of memory");
    }
    ks_fail(err, "resolver %s", all);
    return NULL;
}

/* ------------------------------------------------------------ records */

/* A domain name rdf as text: lower case, no trailing dot.  Caller frees. */
static char *dname_text_new(const ldns_rdf *rdf)
{
    char *s = rdf ? ldns_rdf2str(rdf) : NULL;
    if (s == NULL)
        return NULL;
    size_t len = strlen(s);
    if (len > 1 && s[len - 1] == '.')
        s[len - 1] = '\0';
    else if (len == 1 && s[0] == '.')
        s[0] = '\0';
    for (char *c = s; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return s;
}

/* Whether `rr`'s owner is `name` (case-insensitive, trailing dot ignored). */
static int owner_is(const ldns_rr *rr, const char *name)
{
    char *owner = dname_text_new(ldns_rr_owner(rr));
    int same = owner != NULL && strcasecmp(owner, name) == 0;
    free(owner);
    return same;
}

/* The first rdata field of the first `type` record owned by `name` in the
 * answer section, as a name.  NULL when there is none. */
static char *answer_name_new(const ldns_pkt *pkt, const char *name, ldns_rr_type type)
{
    ldns_rr_list *answer = ldns_pkt_answer(pkt);
    for (size_t i = 0; i < ldns_rr_list_rr_count(answer); i++) {
        ldns_rr *rr = ldns_rr_list_rr(answer, i);
        if (ldns_rr_get_type(rr) == type && owner_is(rr, name) && ldns_rr_rd_count(rr) > 0)
            return dname_text_new(ldns_rr_rdf(rr, 0));
    }
    return NULL;
}

char *ks_dns_follow_cnames_new(const ks_dns *d, const char *name, ks_err *err)
{
    char *current = strdup(name);
    for (int hops = 0; current != NULL && hops <= KS_DNS_MAX_CNAMES; hops++) {
        ldns_pkt *pkt = ask_resolvers(d, current, LDNS_RR_TYPE_CNAME, err);
        if (pkt == NULL) {
            ks_failp(err, "looking up a CNAME of %s", current);
            free(current);
            return NULL;
        }
        char *target = answer_name_new(pkt, current, LDNS_RR_TYPE_CNAME);
        ldns_pkt_free(pkt);
        if (target == NULL)
            return current;
        free(current);
        current = target;
    }
    if (current == NULL)
        ks_fail(err, "out of memory");
    else
        ks_fail(err, "%s: more than %d CNAMEs in a row (a loop?)", name, KS_DNS_MAX_CNAMES);
    free(current);
    return NULL;
}

/* The SOA owner in the authority section of a negative answer: the zone
 * that said the name (or type) does not exist. */
static char *authority_soa_owner_new(const ldns_pkt *pkt)
{
    ldns_rr_list *auth = ldns_pkt_authority(pkt);
    for (size_t i = 0; i < ldns_rr_list_rr_count(auth); i++)
        if (ldns_rr_get_type(ldns_rr_list_rr(auth, i)) == LDNS_RR_TYPE_SOA)
            return dname_text_new(ldns_rr_owner(ldns_rr_list_rr(auth, i)));
    return NULL;
}

/* Whether `name` is `zone` or below it. */
static int in_zone(const char *name, const char *zone)
{
    size_t n = strlen(name), z = strlen(zone);
    if (z == 0)
        return 1;
    return n >= z && strcasecmp(name + n - z, zone) == 0 && (n == z || name[n - z - 1] == '.');
}

/* One step of the SOA walk: the zone when the answer shows it (an SOA owned
 * by `candidate`, or a negative answer's SOA above it), else NULL. */
static char *zone_from_answer(const ldns_pkt *pkt, const char *name, const char *candidate)
{
    char *mname = answer_name_new(pkt, candidate, LDNS_RR_TYPE_SOA);
    if (mname != NULL) {
        free(mname);
        return strdup(candidate);
    }
    char *owner = authority_soa_owner_new(pkt);
    if (owner != NULL && owner[0] != '\0' && in_zone(name, owner))
        return owner;
    free(owner);
    return NULL;
}

char *ks_dns_zone_of_new(const ks_dns *d, const char *name, ks_err *err)
{
    const char *candidate = name;
    ks_err last = {{0}};
    while (candidate != NULL && candidate[0] != '\0') {
        ldns_pkt *pkt = ask_resolvers(d, candidate, LDNS_RR_TYPE_SOA, &last);
        char *zone = pkt ? zone_from_answer(pkt, name, candidate) : NULL;
        ldns_pkt_free(pkt);
        if (zone != NULL)
            return zone;
        /* REFUSED or SERVFAIL above a zone is normal for an authoritative
         * server used as resolver: go on up. */
        candidate = strchr(candidate, '.');
        candidate = candidate ? candidate + 1 : NULL;
    }
    if (last.msg[0] != '\0')
        ks_fail(err, "%s: no enclosing zone found (no SOA at any level; last error: %s)", name,
                last.msg);
    else
        ks_fail(err, "%s: no enclosing zone found (no SOA at any level)", name);
    return NULL;
}

char *ks_dns_zone_primary_new(const ks_dns *d, const char *zone, ks_err *err)
{
    ldns_pkt *pkt = ask_resolvers(d, zone, LDNS_RR_TYPE_SOA, err);
    char *mname = pkt ? answer_name_new(pkt, zone, LDNS_RR_TYPE_SOA) : NULL;
    ldns_pkt_free(pkt);
    if (mname == NULL && pkt != NULL)
        ks_fail(err, "zone %s has no SOA record", zone);
    if (mname == NULL)
        ks_failp(err, "finding the primary name server of zone %s", zone);
    return mname;
}

/* Appends the A or AAAA addresses in `pkt`'s answer to `out`. */
static void collect_addresses(const ldns_pkt *pkt, ldns_rr_type type, int port,
                              ks_dns_server *out, size_t max, size_t *n)
{
    ldns_rr_list *answer = ldns_pkt_answer(pkt);
    for (size_t i = 0; i < ldns_rr_list_rr_count(answer) && *n < max; i++) {
        ldns_rr *rr = ldns_rr_list_rr(answer, i);
        if (ldns_rr_get_type(rr) != type || ldns_rr_rd_count(rr) < 1)
            continue;
        ks_dns_server *s = &out[*n];
        memset(s, 0, sizeof(*s));
        if (inet_ntop(type == LDNS_RR_TYPE_A ? AF_INET : AF_INET6,
                      ldns_rdf_data(ldns_rr_rdf(rr, 0)), s->addr, sizeof(s->addr)) == NULL)
            continue;
        s->port = port;
        (*n)++;
    }
}

int ks_dns_addresses(const ks_dns *d, const char *host, int port, ks_dns_server *out,
                     size_t max, size_t *n, ks_err *err)
{
    size_t start = *n;
    if (max > *n && ks_dns_server_parse(host, port, &out[*n]) == 0 && strchr(host, ']') == NULL) {
        (*n)++;
        return 0;
    }
    static const ldns_rr_type types[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA};
    ks_err why = {{0}};
    for (size_t t = 0; t < 2; t++) {
        ldns_pkt *pkt = ask_resolvers(d, host, types[t], &why);
        if (pkt != NULL)
            collect_addresses(pkt, types[t], port, out, max, n);
        ldns_pkt_free(pkt);
    }
    if (*n > start)
        return 0;
    if (why.msg[0] != '\0')
        return ks_fail(err, "no address for %s: %s", host, why.msg);
    return ks_fail(err, "no address for %s (no A or AAAA record)", host);
}

int ks_dns_zone_servers(const ks_dns *d, const char *zone, ks_dns_server *out, size_t max,
                        size_t *n, ks_err *err)
{
    ldns_pkt *pkt = ask_resolvers(d, zone, LDNS_RR_TYPE_NS, err);
    if (pkt == NULL)
        return ks_failp(err, "finding the name servers of zone %s", zone);
    ldns_rr_list *answer = ldns_pkt_answer(pkt);
    *n = 0;
    int rc = 0;
    for (size_t i = 0; i < ldns_rr_list_rr_count(answer) && rc == 0; i++) {
        ldns_rr *rr = ldns_rr_list_rr(answer, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_NS || !owner_is(rr, zone))
            continue;
        char *host = dname_text_new(ldns_rr_rdf(rr, 0));
        rc = host ? ks_dns_addresses(d, host, d->auth_port, out, max, n, err)
                  : ks_fail(err, "out of memory");
        if (rc < 0)
            ks_failp(err, "name server of zone %s", zone);
        free(host);
    }
    ldns_pkt_free(pkt);
    if (rc == 0 && *n == 0)
        return ks_fail(err, "zone %s has no NS records at the resolvers", zone);
    return rc;
}

/* ------------------------------------------------------------ TXT */

/* The text of a TXT record: its character-strings joined (RFC 8555 values
 * fit in one).  Caller frees. */
static char *txt_text_new(const ldns_rr *rr)
{
    size_t len = 0;
    for (size_t f = 0; f < ldns_rr_rd_count(rr); f++)
        len += ldns_rdf_size(ldns_rr_rdf(rr, f));
    char *out = calloc(len + 1, 1);
    size_t used = 0;
    for (size_t f = 0; out != NULL && f < ldns_rr_rd_count(rr); f++) {
        const uint8_t *data = ldns_rdf_data(ldns_rr_rdf(rr, f));
        size_t size = ldns_rdf_size(ldns_rr_rdf(rr, f));
        if (size == 0)
            continue;
        size_t text = data[0] < size ? data[0] : size - 1; /* length byte, then text */
        memcpy(out + used, data + 1, text);
        used += text;
    }
    return out;
}

void ks_dns_strings_free(char **values)
{
    for (size_t i = 0; values != NULL && values[i] != NULL; i++)
        free(values[i]);
    free(values);
}

int ks_dns_txt_at(const ks_dns *d, const ks_dns_server *server, const char *name,
                  char ***values, size_t *n, ks_err *err)
{
    char why[200], label[64];
    ldns_resolver *r = resolver_for(d, server, 0);
    ldns_pkt *pkt = r ? ask(r, name, LDNS_RR_TYPE_TXT, 0, why, sizeof(why)) : NULL;
    ldns_resolver_deep_free(r);
    if (pkt == NULL)
        return ks_fail(err, "asking %s for TXT %s: %s",
                       ks_dns_server_str(server, label, sizeof(label)), name,
                       r ? why : "out of memory");
    ldns_rr_list *answer = ldns_pkt_answer(pkt);
    size_t count = ldns_rr_list_rr_count(answer);
    char **out = calloc(count + 1, sizeof(*out));
    *n = 0;
    for (size_t i = 0; out != NULL && i < count; i++) {
        ldns_rr *rr = ldns_rr_list_rr(answer, i);
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_TXT && owner_is(rr, name) &&
            (out[*n] = txt_text_new(rr)) != NULL)
            (*n)++;
    }
    ldns_pkt_free(pkt);
    if (out == NULL)
        return ks_fail(err, "out of memory");
    *values = out;
    return 0;
}

/* ------------------------------------------------------------ updates */

/* The record to add ("name ttl IN TXT value") or to delete exactly
 * ("name 0 NONE TXT value", RFC 2136 section 2.5.4). */
static ldns_rr *update_rr_new(const char *name, const char *value, int ttl, int add)
{
    char text[600];
    ldns_rr *rr = NULL;
    if (add)
        snprintf(text, sizeof(text), "%s. %d IN TXT \"%s\"", name, ttl, value);
    else
        snprintf(text, sizeof(text), "%s. 0 NONE TXT \"%s\"", name, value);
    if (ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
        return NULL;
    return rr;
}

/* The values are ACME digests (base64url) or test strings: anything that
 * would need quoting inside a TXT string is refused rather than escaped. */
static int plain_value(const char *value)
{
    for (const char *c = value; *c; c++)
        if (!isgraph((unsigned char)*c) || *c == '"' || *c == '\\' || *c == ';')
            return 0;
    return value[0] != '\0' && strlen(value) <= 255;
}

/* The update packet for the records in `updates` (the list stays the
 * caller's: libldns copies it), TSIG-signed with the resolver's key. */
static ldns_pkt *update_pkt_new(ldns_resolver *r, const char *zone, const ldns_rr_list *updates)
{
    ldns_rdf *zone_rdf = dname_new(zone);
    if (zone_rdf == NULL)
        return NULL;
    ldns_pkt *pkt = ldns_update_pkt_new(zone_rdf, LDNS_RR_CLASS_IN, NULL, updates, NULL);
    if (pkt == NULL) {
        ldns_rdf_deep_free(zone_rdf);
        return NULL;
    }
    ldns_pkt_set_random_id(pkt);
    if (ldns_update_pkt_tsig_add(pkt, r) != LDNS_STATUS_OK) {
        ldns_pkt_free(pkt);
        return NULL;
    }
    return pkt;
}

/* Sends `pkt` and explains a refusal. */
static int send_update(ldns_resolver *r, ldns_pkt *pkt, const char *server, ks_err *err)
{
    ldns_pkt *answer = NULL;
    ldns_status st = ldns_resolver_send_pkt(&answer, r, pkt);
    if (st == LDNS_STATUS_CRYPTO_TSIG_BOGUS || st == LDNS_STATUS_CRYPTO_TSIG_ERR) {
        ldns_pkt_free(answer);
        return ks_fail(err, "server %s did not accept the TSIG key (wrong key name, algorithm "
                            "or secret): %s",
                       server, ldns_get_errorstr_by_id(st));
    }
    if (st != LDNS_STATUS_OK || answer == NULL) {
        ldns_pkt_free(answer);
        return ks_fail(err, "server %s: %s", server, ldns_get_errorstr_by_id(st));
    }
    ldns_pkt_rcode rc = ldns_pkt_get_rcode(answer);
    ldns_pkt_free(answer);
    if (rc == LDNS_RCODE_NOERROR)
        return 0;
    ldns_lookup_table *lt = ldns_lookup_by_id(ldns_rcodes, (int)rc);
    return ks_fail(err, "server %s refused the update: %s%s", server, lt ? lt->name : "error",
                   rc == LDNS_RCODE_NOTAUTH  ? " (the key is not allowed to update this zone)"
                   : rc == LDNS_RCODE_REFUSED ? " (updates are not allowed with this key)"
                   : rc == LDNS_RCODE_NOTZONE ? " (the name is not in this zone)"
                                              : "");
}

/* Gives `r` the key; wipe_resolver_key() takes the copy back out. */
static void set_resolver_key(ldns_resolver *r, const ks_tsig_key *key)
{
    ldns_resolver_set_tsig_keyname(r, key->name);
    ldns_resolver_set_tsig_algorithm(r, key->algorithm);
    ldns_resolver_set_tsig_keydata(r, key->secret);
}

/* libldns keeps a plain copy of the secret and frees it without wiping. */
static void wipe_resolver_key(ldns_resolver *r)
{
    char *copy = r ? (char *)ldns_resolver_tsig_keydata(r) : NULL;
    if (copy != NULL)
        OPENSSL_cleanse(copy, strlen(copy));
}

/* Signs and sends the update of `zone` made of `updates` to `server`,
 * over TCP when `tcp` (libldns never falls back to it for an update, and
 * a zone's TLSA RRsets soon outgrow a UDP message). */
static int send_signed_update(const ks_dns *d, const ks_dns_server *server,
                              const ks_tsig_key *key, const char *zone,
                              const ldns_rr_list *updates, int tcp, ks_err *err)
{
    char label[64];
    ks_dns_server_str(server, label, sizeof(label));
    ldns_resolver *r = resolver_for(d, server, 0);
    ldns_pkt *pkt = NULL;
    int rc = -1;
    if (r != NULL) {
        ldns_resolver_set_usevc(r, tcp != 0);
        set_resolver_key(r, key);
        pkt = update_pkt_new(r, zone, updates);
    }
    if (pkt != NULL)
        rc = send_update(r, pkt, label, err);
    else
        ks_fail(err, "building the update of zone %s (key %s, algorithm %s)", zone, key->name,
                key->algorithm);
    wipe_resolver_key(r);
    ldns_pkt_free(pkt);
    ldns_resolver_deep_free(r);
    return rc;
}

int ks_dns_update_txt(const ks_dns *d, const ks_dns_server *server, const ks_tsig_key *key,
                      const char *zone, const char *name, const char *value, int ttl, int add,
                      ks_err *err)
{
    if (!plain_value(value))
        return ks_fail(err, "TXT value for %s has characters that need quoting", name);
    ldns_rr *rr = update_rr_new(name, value, ttl, add);
    ldns_rr_list *list = ldns_rr_list_new();
    int rc = -1;
    if (rr == NULL || list == NULL || !ldns_rr_list_push_rr(list, rr))
        ks_fail(err, "building the update for %s", name);
    else
        rc = send_signed_update(d, server, key, zone, list, 0, err);
    ldns_rr_list_free(list); /* the list only: rr is freed below */
    ldns_rr_free(rr);
    return rc;
}

/* ------------------------------------------------------------ TLSA */

/* "usage selector matching hex" of a TLSA record, the digest in lower
 * case as keysvc writes it, so that the texts compare.  Caller frees. */
static char *tlsa_text_new(const ldns_rr *rr)
{
    const ldns_rdf *data = ldns_rr_rdf(rr, 3);
    char *hex = ks_hex_new(ldns_rdf_data(data), ldns_rdf_size(data));
    char *out = hex ? ks_strdup_printf("%u %u %u %s", ldns_rdf2native_int8(ldns_rr_rdf(rr, 0)),
                                       ldns_rdf2native_int8(ldns_rr_rdf(rr, 1)),
                                       ldns_rdf2native_int8(ldns_rr_rdf(rr, 2)), hex)
                    : NULL;
    free(hex);
    return out;
}

int ks_dns_tlsa_at(const ks_dns *d, const ks_dns_server *server, const char *name,
                   char ***values, size_t *n, int *ttl, ks_err *err)
{
    char why[200], label[64];
    ldns_resolver *r = resolver_for(d, server, 0);
    ldns_pkt *pkt = r ? ask(r, name, LDNS_RR_TYPE_TLSA, 0, why, sizeof(why)) : NULL;
    int no_resolver = r == NULL;
    ldns_resolver_deep_free(r);
    if (pkt == NULL)
        return ks_fail(err, "asking %s for TLSA %s: %s",
                       ks_dns_server_str(server, label, sizeof(label)), name,
                       no_resolver ? "out of memory" : why);
    ldns_rr_list *answer = ldns_pkt_answer(pkt);
    size_t count = ldns_rr_list_rr_count(answer);
    char **out = calloc(count + 1, sizeof(*out));
    int oom = out == NULL;
    *n = 0;
    *ttl = -1;
    for (size_t i = 0; !oom && i < count; i++) {
        ldns_rr *rr = ldns_rr_list_rr(answer, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TLSA || !owner_is(rr, name) ||
            ldns_rr_rd_count(rr) != 4)
            continue;
        if ((out[*n] = tlsa_text_new(rr)) == NULL)
            oom = 1;
        else
            (*n)++;
        *ttl = (int)ldns_rr_ttl(rr); /* an RRset has one TTL (RFC 2181 5.2) */
    }
    ldns_pkt_free(pkt);
    if (oom) {
        ks_dns_strings_free(out);
        return ks_fail(err, "out of memory");
    }
    *values = out;
    return 0;
}

/* "owner. 0 ANY TLSA": deletes the whole RRset (RFC 2136 section 2.5.2). */
static ldns_rr *delete_rrset_rr_new(const char *owner)
{
    ldns_rdf *dname = dname_new(owner);
    ldns_rr *rr = dname ? ldns_rr_new() : NULL;
    if (rr == NULL) {
        ldns_rdf_deep_free(dname);
        return NULL;
    }
    ldns_rr_set_owner(rr, dname);
    ldns_rr_set_type(rr, LDNS_RR_TYPE_TLSA);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_ANY);
    ldns_rr_set_ttl(rr, 0);
    return rr;
}

/* "owner. ttl IN TLSA rdata", rdata being "usage selector matching hex". */
static ldns_rr *tlsa_rr_new(const char *owner, int ttl, const char *rdata)
{
    for (const char *c = rdata; *c; c++)
        if (!isxdigit((unsigned char)*c) && *c != ' ')
            return NULL;
    char *text = ks_strdup_printf("%s. %d IN TLSA %s", owner, ttl, rdata);
    ldns_rr *rr = NULL;
    if (text == NULL || ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
        rr = NULL;
    free(text);
    return rr;
}

static int push_or_free(ldns_rr_list *list, ldns_rr *rr)
{
    if (rr != NULL && ldns_rr_list_push_rr(list, rr))
        return 0;
    ldns_rr_free(rr);
    return -1;
}

int ks_dns_update_tlsa(const ks_dns *d, const ks_dns_server *server, const ks_tsig_key *key,
                       const char *zone, const ks_dns_tlsa_set *sets, size_t n, ks_err *err)
{
    ldns_rr_list *list = ldns_rr_list_new();
    if (list == NULL)
        return ks_fail(err, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (push_or_free(list, delete_rrset_rr_new(sets[i].owner)) < 0)
            rc = ks_fail(err, "TLSA %s: not a valid DNS name", sets[i].owner);
        for (size_t v = 0; rc == 0 && v < sets[i].n_rdata; v++)
            if (push_or_free(list, tlsa_rr_new(sets[i].owner, sets[i].ttl, sets[i].rdata[v])) < 0)
                rc = ks_fail(err, "TLSA %s: record \"%s\" is not valid", sets[i].owner,
                             sets[i].rdata[v]);
    }
    if (rc == 0)
        rc = send_signed_update(d, server, key, zone, list, 1, err);
    ldns_rr_list_deep_free(list);
    return rc;
}
