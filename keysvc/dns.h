/*
 * dns: the lookups and RFC 2136 updates dns-01 needs, over libldns.
 *
 * Two kinds of server are asked:
 *   resolvers      settings.dns_resolvers (lego's --dns.resolvers), or the
 *                  system's (/etc/resolv.conf).  They answer the SOA walk,
 *                  CNAMEs, NS sets and the addresses of name servers.
 *   authoritative  a zone's own name servers, asked without recursion on
 *                  settings.dns_port, so that "visible" means visible where
 *                  the CA's resolver will look, not in some cache.
 *
 * Names are passed without the trailing dot, in lower case.
 */
#ifndef KEYSVC_DNS_H
#define KEYSVC_DNS_H

#include "dns_tsig.h"
#include "ks_err.h"

#include <arpa/inet.h>
#include <stddef.h>

#define KS_DNS_MAX_RESOLVERS 8
/* A zone with more name server addresses than this is checked on the first
 * ones only; real zones have 2 to 13. */
#define KS_DNS_MAX_SERVERS 16
/* CNAME chains longer than this are taken for a loop. */
#define KS_DNS_MAX_CNAMES 8

typedef struct ks_dns_server {
    char addr[INET6_ADDRSTRLEN]; /* an IP literal */
    int port;
} ks_dns_server;

typedef struct ks_dns {
    ks_dns_server resolvers[KS_DNS_MAX_RESOLVERS];
    size_t n_resolvers; /* 0: the system's resolvers */
    int auth_port;      /* port of authoritative servers (53) */
    int timeout_s;      /* per query and server */
} ks_dns;

/* "ip", "ip:port", "[v6]:port" or a bare IPv6 address; the port defaults to
 * `default_port`.  -1 when it is none of these. */
int ks_dns_server_parse(const char *text, int default_port, ks_dns_server *out);

/* "127.0.0.1:53" / "[::1]:53" for messages; returns buf. */
const char *ks_dns_server_str(const ks_dns_server *s, char *buf, size_t size);

/* The name `name` finally points to: follows CNAMEs at the resolvers (RFC
 * 8555 section 8.4 lets _acme-challenge delegate to another zone).  The name
 * itself when it has no CNAME.  Caller frees. */
char *ks_dns_follow_cnames_new(const ks_dns *d, const char *name, ks_err *err);

/* The zone `name` belongs to: the closest enclosing name with an SOA record,
 * walking up the labels.  Caller frees. */
char *ks_dns_zone_of_new(const ks_dns *d, const char *name, ks_err *err);

/* The primary name server (SOA MNAME) of `zone`.  Caller frees. */
char *ks_dns_zone_primary_new(const ks_dns *d, const char *zone, ks_err *err);

/* The addresses of host `host` (an IP literal is its own address), each with
 * `port`, at most `max`.  An error when there are none. */
int ks_dns_addresses(const ks_dns *d, const char *host, int port, ks_dns_server *out,
                     size_t max, size_t *n, ks_err *err);

/* The addresses of every name server of `zone` (its NS set), on auth_port. */
int ks_dns_zone_servers(const ks_dns *d, const char *zone, ks_dns_server *out, size_t max,
                        size_t *n, ks_err *err);

/* The TXT strings at `name`, asked of `server` without recursion.  An empty
 * list when the name has none (NXDOMAIN or no data).  *values is a
 * NULL-terminated array the caller frees with ks_dns_strings_free(). */
int ks_dns_txt_at(const ks_dns *d, const ks_dns_server *server, const char *name,
                  char ***values, size_t *n, ks_err *err);
void ks_dns_strings_free(char **values);

/* Adds (add != 0) or deletes one TXT record `name` "value" in `zone` by a
 * TSIG-signed RFC 2136 update sent to `server`.  Only that record: other
 * values on the same name stay (a name and its wildcard share one). */
int ks_dns_update_txt(const ks_dns *d, const ks_dns_server *server, const ks_tsig_key *key,
                      const char *zone, const char *name, const char *value, int ttl, int add,
                      ks_err *err);

/* The TLSA records at `name`, asked of `server` without recursion, each as
 * "usage selector matching hex" (the digest in lower case), and their TTL
 * (-1 when there are none).  Freed like TXT. */
int ks_dns_tlsa_at(const ks_dns *d, const ks_dns_server *server, const char *name,
                   char ***values, size_t *n, int *ttl, ks_err *err);

/* One TLSA RRset an update replaces: `owner` (_port._proto.host) is emptied,
 * then each of `rdata` ("usage selector matching hex") is added with `ttl`.
 * No rdata: the RRset is only removed. */
typedef struct ks_dns_tlsa_set {
    const char *owner;
    int ttl;
    char **rdata;
    size_t n_rdata;
} ks_dns_tlsa_set;

/* Replaces every RRset of `sets` in `zone` by one TSIG-signed RFC 2136
 * update sent to `server` over TCP: the server applies all of it or none. */
int ks_dns_update_tlsa(const ks_dns *d, const ks_dns_server *server, const ks_tsig_key *key,
                       const char *zone, const ks_dns_tlsa_set *sets, size_t n, ks_err *err);

#endif
