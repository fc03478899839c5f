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
#include <stdint.h>
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

/* The SHA-256 (matching type 1) and SHA-512 (2) records of one subject,
 * given as DER. */
static int push_subject(rdata_list *l, int usage, int selector, const unsigned char *der, int len,
                        ks_err *err)
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
        char *hex = ks_hex_new(md, md_len);
        char *text =
            hex ? ks_strdup_printf("%d %d %d %s", usage, selector, types[i].matching, hex) : NULL;
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
        /* After a rollover the installed certificate may still be on the
         * old key until its replacement is issued: keep it published. */
        for (size_t i = 0; rc == 0 && i < m->n_leaves; i++)
            rc = cert_subject(&l, rec->usage, KS_TLSA_SELECTOR_SPKI, m->leaves[i], err);
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
    /* The loop ends at the end of the text (no further BEGIN line) or at a
     * block that does not parse, which must not shrink the records. */
    unsigned long why = ERR_peek_last_error();
    int at_end = ERR_GET_LIB(why) == ERR_LIB_PEM && ERR_GET_REASON(why) == PEM_R_NO_START_LINE;
    ERR_clear_error();
    BIO_free(bio);
    if (!at_end)
        return ks_fail(err, "a certificate in the PEM text cannot be read");
    return leaf ? ks_fail(err, "no certificate in the PEM text") : 0;
}

/* The current certificate of `cert` in `type` and its chain.  Returns 1,
 * 0 when there is none yet, -1 on an error. */
static int add_certificate(ks_run *run, const ks_cert_config *cert, ks_key_type type, material *m,
                           ks_err *err)
{
    store_cert have = {0};
    int found = store_cert_find_current(run->db, run->tenant, cert->name, ks_key_type_name(type),
                                        &have, err);
    if (found == 1 &&
        (add_pem(m, have.cert_pem, 1, err) < 0 || add_pem(m, have.chain_pem, 0, err) < 0))
        found = -1;
    store_cert_clear(&have);
    if (found < 0)
        return ks_failp(err, "the %s certificate", ks_key_type_name(type));
    return found;
}

/* The public key of the key's `role` key in `type`, read from the token. */
static int add_key(ks_run *run, const ks_key_config *k, ks_key_type type, const char *role,
                   material *m, ks_err *err)
{
    store_key row = {0};
    ks_keyref ref;
    EVP_PKEY *pub = NULL;
    int found = store_key_find(run->db, run->tenant, "certificate", k->name, ks_key_type_name(type),
                               role, &row, err);
    int rc = found < 0 ? -1 : 0;
    if (found == 1 && (ks_keyref_from_row(&row, &ref, err) < 0 ||
                       ks_signer_public_key(run->signer, &ref, &pub, err) < 0))
        rc = -1;
    if (rc < 0)
        ks_failp(err, "the %s %s key of %s", role, ks_key_type_name(type), k->name);
    if (pub != NULL)
        m->keys[m->n_keys++] = pub;
    store_key_clear(&row);
    return rc;
}

/* Everything the records of `cert` are made from.  Returns 1, 0 when a
 * key type has no certificate yet (said; the records would be incomplete),
 * -1 on an error. */
static int load_material(ks_run *run, const ks_cert_config *cert, material *m, ks_err *err)
{
    const ks_key_config *k = &run->cfg->keys[cert->key];
    for (size_t t = 0; t < cert->n_key_types; t++) {
        ks_key_type type = cert->key_types[t];
        int found = add_certificate(run, cert, type, m, err);
        if (found < 0 || add_key(run, k, type, "primary", m, err) < 0 ||
            add_key(run, k, type, "backup", m, err) < 0)
            return -1;
        if (found == 0) {
            ks_warn("%s: no %s certificate yet: its TLSA records are left as they are", cert->name,
                    ks_key_type_name(type));
            return 0;
        }
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
    return 1;
}

/* ------------------------------------------------------------ the plan */

/* One owner's RRset as the run wants it. */
typedef struct owner_set {
    char *owner;
    int ttl;          /* the smallest of the entries that contributed; 0: none */
    rdata_list rdata; /* empty: the RRset is removed */
    int unknown;      /* some of its records could not be made: left alone */
} owner_set;

/* The owners of one zone the run brings in line. */
typedef struct zone_sets {
    const char *zone; /* borrowed from the configuration */
    owner_set *owners;
    size_t n;
} zone_sets;

typedef struct plan {
    zone_sets *zones;
    size_t n;
} plan;

static void plan_free(plan *p)
{
    for (size_t z = 0; z < p->n; z++) {
        for (size_t i = 0; i < p->zones[z].n; i++) {
            free(p->zones[z].owners[i].owner);
            ks_dns_strings_free(p->zones[z].owners[i].rdata.v);
        }
        free(p->zones[z].owners);
    }
    free(p->zones);
    memset(p, 0, sizeof(*p));
}

/* _<port>._<protocol>.<host> */
static char *owner_name_new(const ks_tlsa_record *rec)
{
    return ks_strdup_printf("_%d._%s.%s", rec->port, rec->protocol, rec->host);
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
    p->zones[p->n] = (zone_sets){.zone = zone};
    return &p->zones[p->n++];
}

/* The owner of `rec` in the plan, or NULL. */
static owner_set *plan_find(const plan *p, const ks_tlsa_record *rec)
{
    char *owner = owner_name_new(rec);
    owner_set *found = NULL;
    for (size_t z = 0; owner != NULL && found == NULL && z < p->n; z++)
        for (size_t i = 0; found == NULL && i < p->zones[z].n; i++)
            if (strcmp(p->zones[z].owners[i].owner, owner) == 0)
                found = &p->zones[z].owners[i];
    free(owner);
    return found;
}

/* Puts the owner of `rec` into the plan (once). */
static int plan_owner(plan *p, const ks_tlsa_record *rec, ks_err *err)
{
    if (plan_find(p, rec) != NULL)
        return 0;
    zone_sets *zs = plan_zone(p, rec->zone);
    owner_set *grown = zs ? realloc(zs->owners, (zs->n + 1) * sizeof(*grown)) : NULL;
    char *owner = grown ? owner_name_new(rec) : NULL;
    if (grown != NULL)
        zs->owners = grown;
    if (owner == NULL)
        return ks_fail(err, "out of memory");
    zs->owners[zs->n++] = (owner_set){.owner = owner};
    return 0;
}

/* Adds the records of `rec` made from `m` to its owner. */
static int plan_records(owner_set *o, const ks_tlsa_record *rec, const material *m, ks_err *err)
{
    ks_tlsa_material view = {m->leaves, m->n_leaves, m->anchors, m->n_anchors, m->keys, m->n_keys};
    char **rdata = NULL;
    size_t n = 0;
    if (ks_tlsa_rdata_new(rec, &view, &rdata, &n, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = rdata_push(&o->rdata, rdata[i], err);
        else
            free(rdata[i]);
    }
    free(rdata);
    if (o->ttl == 0 || rec->ttl < o->ttl)
        o->ttl = rec->ttl;
    return rc;
}

static int cert_in_tenant(const ks_run *run, const ks_cert_config *cert)
{
    const ks_key_config *k = &run->cfg->keys[cert->key];
    return strcmp(run->cfg->tenants[k->tenant].name, run->tenant) == 0;
}

/* The owners named by the certificates of the selected keys. */
static int plan_selected(ks_run *run, const unsigned char *selected, plan *p, ks_err *err)
{
    for (size_t c = 0; c < run->cfg->n_certs; c++) {
        const ks_cert_config *cert = &run->cfg->certs[c];
        if (!selected[cert->key] || !cert_in_tenant(run, cert))
            continue;
        for (size_t r = 0; r < cert->n_tlsa_records; r++)
            if (plan_owner(p, &cert->tlsa_records[r], err) < 0)
                return -1;
    }
    return 0;
}

static int names_planned_owner(const plan *p, const ks_cert_config *cert)
{
    for (size_t r = 0; r < cert->n_tlsa_records; r++)
        if (plan_find(p, &cert->tlsa_records[r]) != NULL)
            return 1;
    return 0;
}

/* What one certificate adds to the planned owners it names; an owner it
 * cannot complete is marked unknown.  Returns -1 (reported) on an error. */
static int plan_certificate(ks_run *run, const ks_cert_config *cert, plan *p)
{
    material m = {0};
    ks_err err = {0};
    int got = load_material(run, cert, &m, &err);
    for (size_t r = 0; r < cert->n_tlsa_records; r++) {
        owner_set *o = plan_find(p, &cert->tlsa_records[r]);
        if (o == NULL)
            continue;
        if (got > 0 && plan_records(o, &cert->tlsa_records[r], &m, &err) < 0)
            got = -1;
        if (got <= 0)
            o->unknown = 1;
    }
    material_clear(&m);
    if (got < 0) {
        ks_error("TLSA records of %s: %s; its RRsets are left as they are", cert->name, err.msg);
        return -1;
    }
    return 0;
}

/* Every certificate of the tenant that names a planned owner adds its
 * records, except those of `skip_key` (being revoked; SIZE_MAX: none).
 * Returns the number of certificates that failed. */
static int plan_contributions(ks_run *run, size_t skip_key, plan *p)
{
    int failures = 0;
    for (size_t c = 0; c < run->cfg->n_certs; c++) {
        const ks_cert_config *cert = &run->cfg->certs[c];
        if (cert->key != skip_key && cert_in_tenant(run, cert) && names_planned_owner(p, cert) &&
            plan_certificate(run, cert, p) < 0)
            failures++;
    }
    return failures;
}

/* ------------------------------------------------------------ zones */

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether the server's RRset (`have`, reordered here) is exactly the one
 * wanted, TTL included.  -1 when out of memory. */
static int same_rrset(char **have, size_t n_have, int have_ttl, const owner_set *o)
{
    if (n_have != o->rdata.n)
        return 0;
    if (n_have == 0)
        return 1;
    if (have_ttl != o->ttl)
        return 0;
    char **want = malloc(n_have * sizeof(*want));
    if (want == NULL)
        return -1;
    memcpy(want, o->rdata.v, n_have * sizeof(*want));
    qsort(want, n_have, sizeof(*want), by_text);
    qsort(have, n_have, sizeof(*have), by_text);
    int same = 1;
    for (size_t i = 0; same && i < n_have; i++)
        same = strcmp(have[i], want[i]) == 0;
    free(want);
    return same;
}

/* The RRsets of `zs` to send: those known and not already on the server
 * as wanted, as views into zs. */
static int sets_to_send(const ks_config *cfg, const ks_dns_server *server, const zone_sets *zs,
                        ks_dns_tlsa_set *out, size_t *n, ks_err *err)
{
    *n = 0;
    for (size_t i = 0; i < zs->n; i++) {
        const owner_set *o = &zs->owners[i];
        char **have = NULL;
        size_t n_have = 0;
        int have_ttl = -1;
        if (o->unknown)
            continue;
        if (ks_dns_tlsa_at(&cfg->dns, server, o->owner, &have, &n_have, &have_ttl, err) < 0)
            return -1;
        int same = same_rrset(have, n_have, have_ttl, o);
        ks_dns_strings_free(have);
        if (same < 0)
            return ks_fail(err, "out of memory");
        if (same)
            ks_debug("TLSA %s: already in place", o->owner);
        else
            out[(*n)++] = (ks_dns_tlsa_set){o->owner, o->ttl, o->rdata.v, o->rdata.n};
    }
    return 0;
}

static void report_sent(const ks_dns_tlsa_set *sets, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (sets[i].n_rdata == 0)
            ks_log_action("removed TLSA %s", sets[i].owner);
        else
            ks_log_action("set TLSA %s: %zu record(s)", sets[i].owner, sets[i].n_rdata);
    }
}

/* One update for the zone's RRsets that differ, then dns_zone_update.
 * `verb` ("set", "removed") is for the warning about a zone without a key. */
static int apply_zone(ks_run *run, const zone_sets *zs, const char *verb, ks_err *err)
{
    const ks_config *cfg = run->cfg;
    const ks_zone_key *key = ks_config_zone_key(cfg, zs->zone);
    if (key == NULL) {
        ks_warn("zone %s has no key in zone_update_keys: its TLSA records cannot be %s", zs->zone,
                verb);
        return 0;
    }
    ks_dns_server server;
    ks_dns_tlsa_set *sets = calloc(zs->n, sizeof(*sets));
    size_t n = 0;
    int rc = sets ? ks_dns01_update_server(cfg, key, zs->zone, &server, err)
                  : ks_fail(err, "out of memory");
    if (rc == 0)
        rc = sets_to_send(cfg, &server, zs, sets, &n, err);
    if (rc == 0 && n > 0) {
        ks_tsig_key tsig = {0};
        rc = ks_tsig_key_load(key->file, &tsig, err);
        if (rc == 0)
            rc = ks_dns_update_tlsa(&cfg->dns, &server, &tsig, zs->zone, sets, n, err);
        ks_tsig_key_clear(&tsig);
    }
    if (rc == 0)
        report_sent(sets, n);
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

/* Every zone of the plan, each on its own.  Returns the failure count. */
static int apply_plan(ks_run *run, const plan *p, const char *verb)
{
    int failures = 0;
    for (size_t z = 0; z < p->n; z++) {
        ks_err err = {0};
        if (apply_zone(run, &p->zones[z], verb, &err) < 0) {
            ks_error("%s", err.msg);
            failures++;
        }
    }
    return failures;
}

/* Plans the owners of the selected keys' certificates, fills them from
 * every certificate naming them but skip_key's, and applies the plan. */
static int sync_owners(ks_run *run, const unsigned char *selected, size_t skip_key,
                       const char *verb)
{
    plan p = {0};
    ks_err err = {0};
    int failures;
    if (plan_selected(run, selected, &p, &err) < 0) {
        ks_error("TLSA records: %s", err.msg);
        failures = 1;
    } else {
        failures = plan_contributions(run, skip_key, &p);
        failures += apply_plan(run, &p, verb);
    }
    plan_free(&p);
    return failures;
}

int ks_tlsa_update(ks_run *run, const unsigned char *selected)
{
    return sync_owners(run, selected, SIZE_MAX, "set");
}

int ks_tlsa_remove_key(ks_run *run, size_t key_index)
{
    unsigned char *selected = calloc(run->cfg->n_keys, 1);
    if (selected == NULL) {
        ks_error("TLSA records of key %s: out of memory", run->cfg->keys[key_index].name);
        return 1;
    }
    selected[key_index] = 1;
    int failures = sync_owners(run, selected, key_index, "removed");
    free(selected);
    return failures;
}
