/*
 * dns01: publishing dns-01 records, waiting until every authoritative name
 * server of their zone serves them, and removing exactly what was added.
 *
 * Where a record goes: _acme-challenge.<name> (a wildcard's record is on its
 * base name), after any CNAMEs, in the zone found by walking SOA queries up
 * the labels.  How, per zone, first match wins:
 *   zone_update_keys[zone]     RFC 2136 update signed with the zone's TSIG key,
 *                              sent to its "server" or the SOA primary
 *   settings.reload_zone_command
 *                              acmebot's local updates: a JSON file per zone
 *                              in directories.challenge, then the command
 *                              with the zone name
 *   hooks.set_dns_challenge    acmebot's hook publishes the record
 *   dns_hooks.auth             certbot's manual hooks
 * With only dns_hooks configured no DNS lookup is made at all (certbot's
 * hooks wait for propagation themselves), so they work with any DNS.
 */
#ifndef KEYSVC_DNS01_H
#define KEYSVC_DNS01_H

#include "config.h"
#include "dns.h"
#include "ks_err.h"

typedef struct ks_dns01 ks_dns01;

/* Where RFC 2136 updates of `zone` signed with `key` go: the key's server,
 * else the zone's SOA primary; the first address of that host. */
int ks_dns01_update_server(const ks_config *cfg, const ks_zone_key *key, const char *zone,
                           ks_dns_server *out, ks_err *err);

/* An empty set for one validation.  NULL on out of memory. */
ks_dns01 *ks_dns01_new(const ks_config *cfg);

/* Adds the record for `name` ("x" or "*.x") with the TXT `value`. */
int ks_dns01_add(ks_dns01 *s, const char *name, const char *value, ks_err *err);

/* Finds each record's zone and method, and publishes all of them.  On
 * failure the records already published stay marked for ks_dns01_cleanup. */
int ks_dns01_publish(ks_dns01 *s, ks_err *err);

/* Waits until every authoritative server of each record's zone serves it:
 * up to settings.max_dns_lookup_attempts lookups, dns_lookup_delay apart. */
int ks_dns01_wait_visible(ks_dns01 *s, ks_err *err);

/* Removes every record published (warnings only), then frees the set. */
void ks_dns01_cleanup_free(ks_dns01 *s);

#endif
