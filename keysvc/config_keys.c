/*
 * Configuration: tenants, certificates and private keys.
 *
 * acmebot's "certificates" entry is shorthand for a private key of the same
 * name holding one certificate; "private_keys" entries hold several.  Key
 * settings (key_types, key_size, key_curve, tenant) belong to the key; a
 * certificate may narrow key_types to a subset of its key's.
 */
#include "config_internal.h"

#include "ks_util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int valid_fqdn(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 253)
        return 0;
    const char *s = name;
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    size_t label = 0;
    for (; *s; s++) {
        if (*s == '.') {
            /* LDH: no empty label, no hyphen at either end of one. */
            if (label == 0 || s[-1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (*s == '-' && label == 0)
            return 0;
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-'))
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0 && s[-1] != '-';
}

char *lowercase_dup(const char *s)
{
    char *out = strdup(s);
    for (char *c = out; c && *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return out;
}

/* Tenant, key and certificate names become labels, file names and lock
 * names. */
int valid_name(const char *name)
{
    if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
        strlen(name) > 200)
        return 0;
    for (const char *s = name; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("._-*+@", *s)))
            return 0;
    return 1;
}

/* ------------------------------------------------------------- tenants */

static const char *const tenant_keys[] = {"token",   "token_serial", "pin_env", "pin_file",
                                          "email",   "eab_kid",      "eab_hmac_key", "eab_alg", NULL};

static int parse_tenant(cfgp *p, ks_tenant_config *t, const char *name, json_object *obj)
{
    char path[512];
    child_path(path, sizeof(path), "tenants", name);
    if (!valid_name(name))
        return cfail(p, path, "tenant names may use letters, digits and ._-*+@ only");
    if (expect_object(p, obj, path) < 0)
        return -1;
    check_keys(p, obj, path, tenant_keys, NULL);
    t->name = strdup(name);
    if (t->name == NULL)
        return ks_fail(p->err, "out of memory");
    if (opt_string(p, obj, path, "token", 0, &t->token) < 0 ||
        opt_string(p, obj, path, "token_serial", 0, &t->token_serial) < 0 ||
        opt_string(p, obj, path, "pin_env", 0, &t->pin_env) < 0 ||
        opt_string(p, obj, path, "pin_file", 0, &t->pin_file) < 0 ||
        opt_string(p, obj, path, "email", 0, &t->email) < 0 ||
        parse_eab(p, obj, path, &t->eab_kid, &t->eab_hmac_key, &t->eab_alg) < 0)
        return -1;
    if (t->token == NULL && t->token_serial == NULL)
        return cfail(p, path, "name the tenant's token (\"token\" or \"token_serial\")");
    if ((t->pin_env != NULL) == (t->pin_file != NULL))
        return cfail(p, path, "give exactly one of \"pin_env\" and \"pin_file\"");
    return resolve_dir(p, &t->pin_file);
}

int parse_tenants(cfgp *p, ks_config *cfg, json_object *tenants)
{
    if (expect_object(p, tenants, "tenants") < 0)
        return -1;
    size_t n = cfg->n_tenants + (size_t)json_object_object_length(tenants);
    ks_tenant_config *grown = realloc(cfg->tenants, (n ? n : 1) * sizeof(*grown));
    if (grown == NULL)
        return ks_fail(p->err, "out of memory");
    cfg->tenants = grown;
    json_object_object_foreach(tenants, name, obj)
    {
        char path[512];
        child_path(path, sizeof(path), "tenants", name);
        if (ks_config_tenant_index(cfg, name) >= 0)
            return cfail(p, path, "tenant \"%s\" is defined twice (\"hsm\" defines \"default\")",
                         name);
        ks_tenant_config *t = &cfg->tenants[cfg->n_tenants++];
        memset(t, 0, sizeof(*t));
        if (parse_tenant(p, t, name, obj) < 0)
            return -1;
    }
    return 0;
}

int ks_config_tenant_index(const ks_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_tenants; i++)
        if (strcmp(cfg->tenants[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ----------------------------------------------------------- alt_names */

/* Appends fqdn (taken over) and, when zones is not NULL, a copy of zone. */
static int add_zone_name(cfgp *p, char *fqdn, const char *zone, const char *path, char ***names,
                         char ***zones, size_t *n)
{
    char *zone_copy = NULL;
    if (fqdn == NULL)
        return ks_fail(p->err, "out of memory");
    int rc = -1;
    if (!valid_fqdn(fqdn)) {
        cfail(p, path, "\"%s\" is not a valid DNS name", fqdn);
        goto out;
    }
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*names)[i], fqdn) == 0) {
            cfail(p, path, "\"%s\" is listed twice", fqdn);
            goto out;
        }
    }
    rc = ks_fail(p->err, "out of memory");
    if (zones != NULL) {
        char **grown_zones = realloc(*zones, (*n + 1) * sizeof(*grown_zones));
        if (grown_zones == NULL || (zone_copy = lowercase_dup(zone)) == NULL) {
            if (grown_zones != NULL)
                *zones = grown_zones;
            goto out;
        }
        *zones = grown_zones;
    }
    char **grown = realloc(*names, (*n + 1) * sizeof(*grown));
    if (grown == NULL)
        goto out;
    *names = grown;
    (*names)[*n] = fqdn;
    if (zones != NULL)
        (*zones)[*n] = zone_copy;
    (*n)++;
    return 0;
out:
    free(fqdn);
    free(zone_copy);
    return rc;
}

/* Adds fqdn (taken over) to a certificate with the zone it was listed under. */
static int add_alt_name(cfgp *p, ks_cert_config *c, char *fqdn, const char *zone,
                        const char *path)
{
    return add_zone_name(p, fqdn, zone, path, &c->alt_names, &c->alt_zones, &c->n_alt_names);
}

/* Without alt_names acmebot finds the zone in the Public Suffix List; keysvc
 * works offline and takes the last two labels, which is the same for names
 * under a one-label public suffix (give alt_names for "example.co.uk"). */
static const char *registered_domain(const char *fqdn)
{
    const char *last = strrchr(fqdn, '.');
    if (last == NULL)
        return fqdn;
    const char *c = last;
    while (c > fqdn && c[-1] != '.')
        c--;
    return c;
}

/* One host of a zone: "@" is the zone itself, else host.zone. */
static int add_zone_host(cfgp *p, const char *zone, json_object *host, const char *path,
                         char ***names, char ***zones, size_t *n)
{
    if (!json_object_is_type(host, json_type_string))
        return cfail(p, path, "expected a host name string, got %s", type_name(host));
    const char *h = json_object_get_string(host);
    char *fqdn = strcmp(h, "@") == 0 ? strdup(zone) : ks_strdup_printf("%s.%s", h, zone);
    char *lower = fqdn ? lowercase_dup(fqdn) : NULL;
    free(fqdn);
    return add_zone_name(p, lower, zone, path, names, zones, n);
}

int parse_zone_hosts(cfgp *p, const char *zone, json_object *hosts, const char *zpath,
                     char ***names, char ***zones, size_t *n)
{
    if (json_object_is_type(hosts, json_type_string))
        return add_zone_host(p, zone, hosts, zpath, names, zones, n);
    if (!json_object_is_type(hosts, json_type_array))
        return cfail(p, zpath, "expected a list of host names, got %s", type_name(hosts));
    for (size_t i = 0; i < json_object_array_length(hosts); i++) {
        char hpath[600];
        index_path(hpath, sizeof(hpath), zpath, i);
        if (add_zone_host(p, zone, json_object_array_get_idx(hosts, i), hpath, names, zones, n) <
            0)
            return -1;
    }
    return 0;
}

/* alt_names: {zone: [hosts]} (or a single host string); zone "@" means the
 * common name, as in acmebot. */
static int parse_alt_names(cfgp *p, ks_cert_config *c, json_object *alt, const char *path)
{
    if (expect_object(p, alt, path) < 0)
        return -1;
    json_object_object_foreach(alt, zone, hosts)
    {
        char zpath[512];
        child_path(zpath, sizeof(zpath), path, zone);
        const char *z = strcmp(zone, "@") == 0 ? c->common_name : zone;
        if (parse_zone_hosts(p, z, hosts, zpath, &c->alt_names, &c->alt_zones, &c->n_alt_names) <
            0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- keys */

/* A key's settings, in a private_keys entry or the certificate implying it. */
static const char *const key_settings[] = {
    "key_types",     "key_size",       "key_curve",       "tenant",
    "key_cipher",    "key_passphrase", "key_provided",    "expiration_days",
    "auto_rollover", "hpkp_days",      "pin_subdomains",  "hpkp_report_uri", NULL};

static int has_type(const ks_key_type *types, size_t n, ks_key_type t)
{
    for (size_t i = 0; i < n; i++)
        if (types[i] == t)
            return 1;
    return 0;
}

/* The key's own settings, from a private_keys entry or the certificate that
 * implies it.  Its key types are the ones asked for (or settings.key_types)
 * that key_size and key_curve leave on. */
static int parse_key_settings(cfgp *p, const ks_config *cfg, ks_key_config *k, json_object *obj,
                              const char *path)
{
    json_object *kt = NULL;
    char *tenant = NULL;
    char kpath[600];
    k->key_size = cfg->key_size;
    k->key_curve = cfg->key_curve;
    if (parse_key_acmebot(p, cfg, k, obj, path) < 0)
        return -1;
    if (obj != NULL && (parse_rsa_size(p, obj, path, "key_size", &k->key_size) < 0 ||
                        parse_curve(p, obj, path, "key_curve", &k->key_curve) < 0 ||
                        opt_string(p, obj, path, "tenant", 0, &tenant) < 0))
        return -1;
    int ti = ks_config_tenant_index(cfg, tenant ? tenant : "default");
    child_path(kpath, sizeof(kpath), path, "tenant");
    if (ti < 0) {
        int rc = cfail(p, kpath, "no tenant \"%s\" is configured", tenant ? tenant : "default");
        free(tenant);
        return rc;
    }
    free(tenant);
    k->tenant = (size_t)ti;
    ks_key_type wanted[KS_KEY_TYPES];
    size_t n_wanted = p->n_settings_types;
    memcpy(wanted, p->settings_types, sizeof(wanted));
    child_path(kpath, sizeof(kpath), path, "key_types");
    if (obj != NULL && json_object_object_get_ex(obj, "key_types", &kt) &&
        parse_key_types(p, kt, kpath, wanted, &n_wanted) < 0)
        return -1;
    k->n_key_types = 0;
    for (size_t i = 0; i < n_wanted; i++) {
        int on = wanted[i] == KS_KEY_RSA ? k->key_size != 0 : k->key_curve != 0;
        if (on)
            k->key_types[k->n_key_types++] = wanted[i];
        else if (kt != NULL)
            return cfail(p, kpath, "\"%s\" is turned off by %s", ks_key_type_name(wanted[i]),
                         wanted[i] == KS_KEY_RSA ? "key_size" : "key_curve");
    }
    if (k->n_key_types == 0)
        return cfail(p, path, "no key type is enabled (key_size and key_curve)");
    return 0;
}

/* ---------------------------------------------------------- certificates */

static const char *const cert_keys[] = {
    "common_name",      "alt_names",           "key_types",      "services",
    "tlsa_records",     "dhparam_size",        "ecparam_curve",  "ocsp_must_staple",
    "ocsp_responder_urls", "ct_submit_logs",   "verify",         NULL};

static int parse_cert_names(cfgp *p, ks_cert_config *c, json_object *obj, const char *path)
{
    char *cn = NULL;
    if (obj != NULL && opt_string(p, obj, path, "common_name", 0, &cn) < 0)
        return -1;
    c->common_name = lowercase_dup(cn ? cn : c->name);
    free(cn);
    if (c->common_name == NULL)
        return ks_fail(p->err, "out of memory");
    json_object *alt = NULL;
    char apath[600];
    child_path(apath, sizeof(apath), path, "alt_names");
    if (obj != NULL && json_object_object_get_ex(obj, "alt_names", &alt)) {
        if (parse_alt_names(p, c, alt, apath) < 0)
            return -1;
    } else if (add_alt_name(p, c, strdup(c->common_name), registered_domain(c->common_name),
                            apath) < 0) {
        return -1;
    }
    for (size_t i = 0; i < c->n_alt_names; i++)
        if (strcmp(c->alt_names[i], c->common_name) == 0)
            return 0;
    return cfail(p, apath, "the common name \"%s\" is not among the alt names", c->common_name);
}

/* A certificate's key types: its own list, which must be a subset of its
 * key's, or all of the key's. */
static int parse_cert_key_types(cfgp *p, ks_cert_config *c, const ks_key_config *k,
                                json_object *obj, const char *path)
{
    json_object *kt = NULL;
    char kpath[600];
    child_path(kpath, sizeof(kpath), path, "key_types");
    if (obj == NULL || !json_object_object_get_ex(obj, "key_types", &kt)) {
        memcpy(c->key_types, k->key_types, sizeof(c->key_types));
        c->n_key_types = k->n_key_types;
        return 0;
    }
    if (parse_key_types(p, kt, kpath, c->key_types, &c->n_key_types) < 0)
        return -1;
    for (size_t i = 0; i < c->n_key_types; i++)
        if (!has_type(k->key_types, k->n_key_types, c->key_types[i]))
            return cfail(p, kpath, "\"%s\" is not among the key types of private key \"%s\"",
                         ks_key_type_name(c->key_types[i]), k->name);
    return 0;
}

/* Appends a NULL-terminated name list to out at position n. */
static size_t append_names(const char **out, size_t n, const char *const *names)
{
    for (const char *const *s = names; s && *s; s++)
        out[n++] = *s;
    return n;
}

static int parse_cert(cfgp *p, const ks_config *cfg, ks_cert_config *c, const char *name,
                      json_object *obj, const char *path, size_t key_index,
                      const ks_key_config *k, const char *const *extra_keys)
{
    if (!valid_name(name))
        return cfail(p, path, "certificate names may use letters, digits and ._-*+@ only");
    c->name = strdup(name);
    c->key = key_index;
    if (c->name == NULL)
        return ks_fail(p->err, "out of memory");
    if (obj != NULL) {
        if (expect_object(p, obj, path) < 0)
            return -1;
        /* The certificates shorthand also holds the key's settings. */
        const char *implemented[40];
        size_t n = append_names(implemented, 0, cert_keys);
        n = append_names(implemented, n, extra_keys);
        implemented[n] = NULL;
        check_keys(p, obj, path, implemented, NULL);
    }
    return parse_cert_names(p, c, obj, path) < 0 || parse_cert_key_types(p, c, k, obj, path) < 0
               ? -1
               : parse_cert_acmebot(p, cfg, c, obj, path);
}

static int name_taken(const ks_config *cfg, const char *name, int keys)
{
    for (size_t i = 0; keys && i < cfg->n_keys; i++)
        if (strcmp(cfg->keys[i].name, name) == 0)
            return 1;
    for (size_t i = 0; !keys && i < cfg->n_certs; i++)
        if (strcmp(cfg->certs[i].name, name) == 0)
            return 1;
    return 0;
}

/* A certificates entry: a key of the same name holding this certificate. */
static int parse_shorthand(cfgp *p, ks_config *cfg, const char *name, json_object *obj)
{
    char path[512];
    child_path(path, sizeof(path), "certificates", name);
    ks_key_config *k = &cfg->keys[cfg->n_keys];
    memset(k, 0, sizeof(*k));
    k->name = strdup(name);
    cfg->n_keys++;
    if (k->name == NULL)
        return ks_fail(p->err, "out of memory");
    if (parse_key_settings(p, cfg, k, obj, path) < 0)
        return -1;
    ks_cert_config *c = &cfg->certs[cfg->n_certs++];
    return parse_cert(p, cfg, c, name, obj, path, cfg->n_keys - 1, k, key_settings);
}


static int parse_private_key(cfgp *p, ks_config *cfg, const char *name, json_object *obj)
{
    char path[512], cpath[600];
    json_object *certs = NULL;
    child_path(path, sizeof(path), "private_keys", name);
    if (!valid_name(name))
        return cfail(p, path, "private key names may use letters, digits and ._-*+@ only");
    if (name_taken(cfg, name, 1))
        return cfail(p, path, "\"%s\" is also defined in \"certificates\"", name);
    if (expect_object(p, obj, path) < 0)
        return -1;
    const char *implemented[20] = {"certificates"};
    size_t n = append_names(implemented, 1, key_settings);
    implemented[n] = NULL;
    check_keys(p, obj, path, implemented, NULL);
    ks_key_config *k = &cfg->keys[cfg->n_keys];
    memset(k, 0, sizeof(*k));
    k->name = strdup(name);
    cfg->n_keys++;
    if (k->name == NULL)
        return ks_fail(p->err, "out of memory");
    if (parse_key_settings(p, cfg, k, obj, path) < 0)
        return -1;
    child_path(cpath, sizeof(cpath), path, "certificates");
    if (!json_object_object_get_ex(obj, "certificates", &certs) || expect_object(p, certs, cpath) < 0 ||
        json_object_object_length(certs) == 0)
        return cfail(p, cpath, "a private key needs at least one certificate");
    json_object_object_foreach(certs, cname, cobj)
    {
        char one[700];
        child_path(one, sizeof(one), cpath, cname);
        if (name_taken(cfg, cname, 0))
            return cfail(p, one, "certificate \"%s\" is defined twice", cname);
        ks_cert_config *c = &cfg->certs[cfg->n_certs++];
        if (parse_cert(p, cfg, c, cname, cobj, one, cfg->n_keys - 1, k, NULL) < 0)
            return -1;
    }
    return 0;
}

/* A key's types are narrowed to the ones its certificates use. */
static void narrow_key_types(ks_config *cfg)
{
    for (size_t i = 0; i < cfg->n_keys; i++) {
        ks_key_config *k = &cfg->keys[i];
        ks_key_type used[KS_KEY_TYPES];
        size_t n = 0;
        for (size_t t = 0; t < k->n_key_types; t++)
            for (size_t c = 0; c < cfg->n_certs; c++)
                if (cfg->certs[c].key == i &&
                    has_type(cfg->certs[c].key_types, cfg->certs[c].n_key_types,
                             k->key_types[t])) {
                    used[n++] = k->key_types[t];
                    break;
                }
        memcpy(k->key_types, used, sizeof(used));
        k->n_key_types = n;
    }
}

static size_t count_private_key_certificates(json_object *private_keys)
{
    size_t n = 0;
    json_object_object_foreach(private_keys, name, obj)
    {
        (void)name;
        json_object *certs = NULL;
        if (json_object_is_type(obj, json_type_object) &&
            json_object_object_get_ex(obj, "certificates", &certs) &&
            json_object_is_type(certs, json_type_object))
            n += (size_t)json_object_object_length(certs);
    }
    return n;
}

int parse_keys_and_certificates(cfgp *p, ks_config *cfg, json_object *certificates,
                                json_object *private_keys)
{
    if ((certificates && expect_object(p, certificates, "certificates") < 0) ||
        (private_keys && expect_object(p, private_keys, "private_keys") < 0))
        return -1;
    size_t n_short = certificates ? (size_t)json_object_object_length(certificates) : 0;
    size_t n_keys = n_short + (private_keys ? (size_t)json_object_object_length(private_keys) : 0);
    size_t n_certs = n_short + (private_keys ? count_private_key_certificates(private_keys) : 0);
    cfg->keys = calloc(n_keys ? n_keys : 1, sizeof(*cfg->keys));
    cfg->certs = calloc(n_certs ? n_certs : 1, sizeof(*cfg->certs));
    if (cfg->keys == NULL || cfg->certs == NULL)
        return ks_fail(p->err, "out of memory");
    if (certificates != NULL) {
        json_object_object_foreach(certificates, name, obj)
        {
            if (parse_shorthand(p, cfg, name, obj) < 0)
                return -1;
        }
    }
    if (private_keys != NULL) {
        json_object_object_foreach(private_keys, name, obj)
        {
            if (parse_private_key(p, cfg, name, obj) < 0)
                return -1;
        }
    }
    narrow_key_types(cfg);
    return 0;
}

void free_keys_and_certificates(ks_config *cfg)
{
    for (size_t i = 0; i < cfg->n_certs; i++) {
        ks_cert_config *c = &cfg->certs[i];
        free(c->name);
        free(c->common_name);
        for (size_t j = 0; j < c->n_alt_names; j++) {
            free(c->alt_names[j]);
            free(c->alt_zones[j]);
        }
        free(c->alt_names);
        free(c->alt_zones);
        free_cert_acmebot(c);
    }
    free(cfg->certs);
    for (size_t i = 0; i < cfg->n_keys; i++) {
        free(cfg->keys[i].name);
        free(cfg->keys[i].hpkp_report_uri);
    }
    free(cfg->keys);
    for (size_t i = 0; i < cfg->n_tenants; i++) {
        ks_tenant_config *t = &cfg->tenants[i];
        free(t->name);
        free(t->token);
        free(t->token_serial);
        free(t->pin_env);
        free(t->pin_file);
        free(t->email);
        free(t->eab_kid);
        free(t->eab_hmac_key);
        free(t->eab_alg);
    }
    free(cfg->tenants);
}
