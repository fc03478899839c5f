/*
 * tlsa.c: TLSA records of certificates in DNS (docs in tlsa.h).
 */
#include "tlsa.h"

#include "dns.h"
#include "dns01.h"
#include "dns_tsig.h"
#include "install.h"
#include "keys.h"
#include "ks_log.h"
#include "ks_util.h"
#include "signer.h"
#include "store.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

/* A chain longer than this is cut: real ones have one or two certificates. */
#define MAX_ANCHORS 32

/* ------------------------------------------------------------ records */

/* A growable list of record strings, duplicates refused. */
typedef struct rdata_list {
    char **v; /* NULL-terminated, as ks_dns_strings_free() wants it */
    size_t n;
} rdata_list;

/* Appends `text` (taken over) unless the list has it already. */
static int rdata_push(rdata_list *l, char *text, ks_err *err)
{
    if (text == NULL)
        return ks_fail(err, "out of memory");
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], text) == 0) {
            free(text);
            return 0;
        }
    }
    char **grown = realloc(l->v, (l->n + 2) * sizeof(*grown));
    if (grown == NULL) {
        free(text);
        return ks_fail(err, "out of memory");
    }
    l->v = grown;
    l->v[l->n++] = text;
    l->v[l->n] = NULL;
    return 0;
}

static char *hex_new(const unsigned char *b, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *out = malloc(2 * len + 1);
    for (size_t i = 0; out != NULL && i < len; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 0xf];
    }
    if (out != NULL)
        out[2 * len] = '\0';
    return out;
}

/* The SHA-256 (matching type 1) and SHA-512 (2) records of one subject,
 * given as DER. */
static int push_subject(rdata_list *l, int usage, int selector, const unsigned char *der,
                        int len, ks_err *err)
{
    static const struct {
        int matching;
        const char *md;
    } types[] = {{1, "SHA256"}, {2, "SHA512"}};
    if (der == NULL || len <= 0)
        return ks_fail(err, "encoding a TLSA subject failed");
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        EVP_MD *alg = EVP_MD_fetch(NULL, types[i].md, NULL);
        int ok = alg != NULL && EVP_Digest(der, (size_t)len, md, &md_len, alg, NULL) == 1;
        EVP_MD_free(alg);
        if (!ok)
            return ks_fail(err, "%s digest for a TLSA record failed", types[i].md);
        char *hex = hex_new(md, md_len);
        char *text = hex ? ks_strdup_printf("%d %d %d %s", usage, selector, types[i].matching,
                                            hex)
                         : NULL;
        free(hex);
        if (rdata_push(l, text, err) < 0)
            return -1;
    }
    return 0;
}

/* The DER a selector hashes: the whole certificate, or its public key. */
static int cert_subject(rdata_list *l, int usage, int selector, X509 *x, ks_err *err)
{
    unsigned char *der = NULL;
    int len = selector == KS_TLSA_SELECTOR_CERT ? i2d_X509(x, &der)
                                                : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    int rc = push_subject(l, usage, selector, der, len, err);
    OPENSSL_free(der);
    return rc;
}

static int key_subject(rdata_list *l, int usage, EVP_PKEY *key, ks_err *err)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    int rc = push_subject(l, usage, KS_TLSA_SELECTOR_SPKI, der, len, err);
    OPENSSL_free(der);
    return rc;
}

int ks_tlsa_rdata_new(const ks_tlsa_record *rec, const ks_tlsa_material *m, char ***rdata,
                      size_t *n, ks_err *err)
{
    int end_entity = rec->usage == KS_TLSA_USAGE_PKIX_EE || rec->usage == KS_TLSA_USAGE_DANE_EE;
    X509 *const *certs = end_entity ? m->leaves : m->anchors;
    size_t n_certs = end_entity ? m->n_leaves : m->n_anchors;
    rdata_list l = {0};
    int rc = 0;
    if (end_entity && rec->selector == KS_TLSA_SELECTOR_SPKI) {
        for (size_t i = 0; rc == 0 && i < m->n_keys; i++)
            rc = key_subject(&l, rec->usage, m->keys[i], err);
    } else {
        for (size_t i = 0; rc == 0 && i < n_certs; i++)
            rc = cert_subject(&l, rec->usage, rec->selector, certs[i], err);
    }
    if (rc < 0) {
        ks_dns_strings_free(l.v);
        return -1;
    }
    *rdata = l.v;
    *n = l.n;
    return 0;
}

/* ------------------------------------------------------------ material */

/* The certificates and keys of one certificate's records, owned. */
typedef struct material {
    X509 *leaves[KS_KEY_TYPES];
    size_t n_leaves;
    X509 *anchors[MAX_ANCHORS];
    size_t n_anchors;
    EVP_PKEY *keys[2 * KS_KEY_TYPES];
    size_t n_keys;
} material;

static void material_clear(material *m)
{
    for (size_t i = 0; i < m->n_leaves; i++)
        X509_free(m->leaves[i]);
    for (size_t i = 0; i < m->n_anchors; i++)
        X509_free(m->anchors[i]);
    for (size_t i = 0; i < m->n_keys; i++)
        EVP_PKEY_free(m->keys[i]);
    memset(m, 0, sizeof(*m));
}

/* Every certificate of `pem` into m->anchors (the first into m->leaves
 * when `leaf`). */
static int add_pem(material *m, const char *pem, int leaf, ks_err *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL)
        return ks_fail(err, "out of memory");
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (leaf && m->n_leaves < KS_KEY_TYPES) {
            m->leaves[m->n_leaves++] = x;
            leaf = 0;
        } else if (!leaf && m->n_anchors < MAX_ANCHORS) {
            m->anchors[m->n_anchors++] = x;
        } else {
            X509_free(x);
        }
    }
    ERR_clear_error(); /* the end of the PEM text */
    BIO_free(bio);
    return leaf ? ks_fail(err, "the stored certificate cannot be read") : 0;
}

/* The current certificate of `cert` in `type` and its chain; none yet is
 * said and skipped. */
static int add_certificate(ks_run *run, const ks_cert_config *cert, ks_key_type type,
                           material *m, ks_err *err)
{
    store_cert have = {0};
    int found = store_cert_find_current(run->db, run->tenant, cert->name,
                                        ks_key_type_name(type), &have, err);
    int rc = found < 0 ? -1 : 0;
    if (found == 0)
        ks_warn("%s (%s): no certificate yet, so its TLSA records leave it out", cert->name,
                ks_key_type_name(type));
    if (found == 1 && (add_pem(m, have.cert_pem, 1, err) < 0 ||
                       add_pem(m, have.chain_pem, 0, err) < 0))
        rc = ks_failp(err, "%s (%s)", cert->name, ks_key_type_name(type));
    store_cert_clear(&have);
    return rc;
}

/* The public key of the key's `role` key in `type`, read from the token. */
static int add_key(ks_run *run, const ks_key_config *k, ks_key_type type, const char *role,
                   material *m, ks_err *err)
{
    store_key row = {0};
    ks_keyref ref;
    EVP_PKEY *pub = NULL;
    int found = store_key_find(run->db, run->tenant, "certificate", k->name,
                               ks_key_type_name(type), role, &row, err);
    int rc = found < 0 ? -1 : 0;
    if (found == 1 && (ks_keyref_from_row(&row, &ref, err) < 0 ||
                       ks_signer_public_key(run->signer, &ref, &pub, err) < 0))
        rc = ks_failp(err, "the %s %s key of %s", role, ks_key_type_name(type), k->name);
    if (pub != NULL)
        m->keys[m->n_keys++] = pub;
    store_key_clear(&row);
    return rc;
}

static int load_material(ks_run *run, const ks_cert_config *cert, material *m, ks_err *err)
{
    const ks_key_config *k = &run->cfg->keys[cert->key];
    for (size_t t = 0; t < cert->n_key_types; t++) {
        ks_key_type type = cert->key_types[t];
        if (add_certificate(run, cert, type, m, err) < 0 ||
            add_key(run, k, type, "primary", m, err) < 0 ||
            add_key(run, k, type, "backup", m, err) < 0)
            return -1;
    }
    /* acmebot trusts every root beside the configuration, whatever the
     * certificate's key types. */
    for (int type = 0; type < KS_KEY_TYPES; type++) {
        char *root = ks_install_root_cert_new(run, (ks_key_type)type);
        int rc = root != NULL ? add_pem(m, root, 0, err) : 0;
        free(root);
        if (rc < 0)
            return ks_failp(err, "root_cert.%s.pem", ks_key_type_name((ks_key_type)type));
    }
    return 0;
}

/* ------------------------------------------------------------ the plan */

/* The RRsets of one zone that an update replaces (or removes). */
typedef struct zone_sets {
    const char *zone; /* borrowed from the configuration */
    char **owners;
    int *ttls;
    rdata_list *rdata;
    size_t n;
} zone_sets;

typedef struct plan {
    zone_sets *zones;
    size_t n;
} plan;

static void plan_free(plan *p)
{
    for (size_t z = 0; z < p->n; z++) {
        zone_sets *zs = &p->zones[z];
        for (size_t i = 0; i < zs->n; i++) {
            free(zs->owners[i]);
            ks_dns_strings_free(zs->rdata[i].v);
        }
        free(zs->owners);
        free(zs->ttls);
        free(zs->rdata);
    }
    free(p->zones);
    memset(p, 0, sizeof(*p));
}

static zone_sets *plan_zone(plan *p, const char *zone)
{
    for (size_t z = 0; z < p->n; z++)
        if (strcmp(p->zones[z].zone, zone) == 0)
            return &p->zones[z];
    zone_sets *grown = realloc(p->zones, (p->n + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    p->zones = grown;
    memset(&p->zones[p->n], 0, sizeof(p->zones[p->n]));
    p->zones[p->n].zone = zone;
    return &p->zones[p->n++];
}

/* The RRset of `rec` in its zone; a second entry for the same owner (two
 * certificates on one port) adds its records to the first's. */
static rdata_list *plan_owner(plan *p, const ks_tlsa_record *rec, ks_err *err)
{
    zone_sets *zs = plan_zone(p, rec->zone);
    char *owner = ks_strdup_printf("_%d._%s.%s", rec->port, rec->protocol, rec->host);
    if (zs == NULL || owner == NULL) {
        free(owner);
        ks_fail(err, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < zs->n; i++) {
        if (strcmp(zs->owners[i], owner) == 0) {
            free(owner);
            return &zs->rdata[i];
        }
    }
    char **owners = realloc(zs->owners, (zs->n + 1) * sizeof(*owners));
    if (owners != NULL)
        zs->owners = owners;
    int *ttls = owners ? realloc(zs->ttls, (zs->n + 1) * sizeof(*ttls)) : NULL;
    if (ttls != NULL)
        zs->ttls = ttls;
    rdata_list *rdata = ttls ? realloc(zs->rdata, (zs->n + 1) * sizeof(*rdata)) : NULL;
    if (rdata == NULL) {
        free(owner);
        ks_fail(err, "out of memory");
        return NULL;
    }
    zs->rdata = rdata;
    zs->owners[zs->n] = owner;
    zs->ttls[zs->n] = rec->ttl;
    memset(&zs->rdata[zs->n], 0, sizeof(zs->rdata[zs->n]));
    return &zs->rdata[zs->n++];
}

/* Adds the records of `rec` made from `m` to the plan. */
static int plan_records(plan *p, const ks_tlsa_record *rec, const material *m, ks_err *err)
{
    ks_tlsa_material view = {m->leaves, m->n_leaves, m->anchors, m->n_anchors,
                             m->keys,   m->n_keys};
    char **rdata = NULL;
    size_t n = 0;
    rdata_list *set = plan_owner(p, rec, err);
    if (set == NULL || ks_tlsa_rdata_new(rec, &view, &rdata, &n, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = rdata_push(set, rdata[i], err);
        else
            free(rdata[i]);
    }
    free(rdata);
    return rc;
}

/* ------------------------------------------------------------ zones */

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether the server's RRset is exactly `want` (order aside). */
static int same_records(char **have, size_t n_have, const rdata_list *want)
{
    if (n_have != want->n)
        return 0;
    char **sorted = malloc((want->n + 1) * sizeof(*sorted));
    if (sorted == NULL)
        return 0;
    memcpy(sorted, want->v, want->n * sizeof(*sorted));
    qsort(sorted, want->n, sizeof(*sorted), by_text);
    qsort(have, n_have, sizeof(*have), by_text);
    int same = 1;
    for (size_t i = 0; same && i < n_have; i++)
        same = strcmp(have[i], sorted[i]) == 0;
    free(sorted);
    return same;
}

/* The RRsets of `zs` the server does not already hold as planned, as
 * views into zs; *n 0 when everything is in place. */
static int sets_to_send(const ks_config *cfg, const ks_dns_server *server, const zone_sets *zs,
                        int removing, ks_dns_tlsa_set *out, size_t *n, ks_err *err)
{
    *n = 0;
    for (size_t i = 0; i < zs->n; i++) {
        ks_dns_tlsa_set set = {zs->owners[i], zs->ttls[i], zs->rdata[i].v, zs->rdata[i].n};
        char **have = NULL;
        size_t n_have = 0;
        if (!removing) {
            if (ks_dns_tlsa_at(&cfg->dns, server, zs->owners[i], &have, &n_have, err) < 0)
                return -1;
            int same = same_records(have, n_have, &zs->rdata[i]);
            ks_dns_strings_free(have);
            if (same) {
                ks_debug("TLSA %s: already in place", zs->owners[i]);
                continue;
            }
        }
        out[(*n)++] = set;
    }
    return 0;
}

/* One update for the zone's RRsets that differ; then dns_zone_update. */
static int apply_zone(ks_run *run, const zone_sets *zs, int removing, ks_err *err)
{
    const ks_config *cfg = run->cfg;
    const ks_zone_key *key = ks_config_zone_key(cfg, zs->zone);
    if (key == NULL) {
        ks_warn("zone %s has no key in zone_update_keys: its TLSA records cannot be %s",
                zs->zone, removing ? "removed" : "set");
        return 0;
    }
    ks_dns_server server;
    ks_dns_tlsa_set *sets = calloc(zs->n, sizeof(*sets));
    size_t n = 0;
    int rc = sets ? ks_dns01_update_server(cfg, key, zs->zone, &server, err)
                  : ks_fail(err, "out of memory");
    if (rc == 0)
        rc = sets_to_send(cfg, &server, zs, removing, sets, &n, err);
    if (rc == 0 && n > 0) {
        ks_tsig_key tsig = {0};
        rc = ks_tsig_key_load(key->file, &tsig, err);
        if (rc == 0)
            rc = ks_dns_update_tlsa(&cfg->dns, &server, &tsig, zs->zone, sets, n, err);
        ks_tsig_key_clear(&tsig);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (removing)
            ks_log_action("removed TLSA %s", sets[i].owner);
        else
            ks_log_action("set TLSA %s: %zu record(s)", sets[i].owner, sets[i].n_rdata);
    }
    free(sets);
    if (rc < 0)
        return ks_failp(err, "TLSA records of zone %s", zs->zone);
    if (n > 0) {
        run->changed = 1;
        ks_hook_var fields[] = {{"zone", zs->zone}};
        ks_install_run_hook(run, KS_HOOK_DNS_ZONE_UPDATE, zs->zone, fields, 1);
    }
    return 0;
}

/* Plans every certificate of the key with TLSA records; `removing` plans
 * empty RRsets.  A certificate with nothing to publish yet is skipped. */
static int plan_key(ks_run *run, size_t key_index, int removing, plan *p, ks_err *err)
{
    for (size_t c = 0; c < run->cfg->n_certs; c++) {
        const ks_cert_config *cert = &run->cfg->certs[c];
        if (cert->key != key_index || cert->n_tlsa_records == 0)
            continue;
        material m = {0};
        int rc = removing ? 0 : load_material(run, cert, &m, err);
        int empty = !removing && m.n_leaves == 0;
        if (empty)
            ks_warn("%s: no certificate yet, its TLSA records are not set", cert->name);
        for (size_t r = 0; rc == 0 && !empty && r < cert->n_tlsa_records; r++)
            rc = removing ? (plan_owner(p, &cert->tlsa_records[r], err) ? 0 : -1)
                          : plan_records(p, &cert->tlsa_records[r], &m, err);
        material_clear(&m);
        if (rc < 0)
            return ks_failp(err, "TLSA records of %s", cert->name);
    }
    return 0;
}

int ks_tlsa_update_key(ks_run *run, size_t key_index)
{
    plan p = {0};
    ks_err err = {0};
    int failures = 0;
    if (plan_key(run, key_index, 0, &p, &err) < 0) {
        ks_error("%s", err.msg);
        plan_free(&p);
        return 1;
    }
    for (size_t z = 0; z < p.n; z++) {
        if (apply_zone(run, &p.zones[z], 0, &err) < 0) {
            ks_error("%s", err.msg);
            failures++;
        }
    }
    plan_free(&p);
    return failures;
}

int ks_tlsa_remove_key(ks_run *run, size_t key_index, ks_err *err)
{
    plan p = {0};
    int rc = plan_key(run, key_index, 1, &p, err);
    for (size_t z = 0; rc == 0 && z < p.n; z++)
        rc = apply_zone(run, &p.zones[z], 1, err);
    plan_free(&p);
    return rc;
}
