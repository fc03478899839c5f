/*
 * config_tables.c: acmebot's named tables and the references to them.
 *
 * "services" (the commands that reload services), "hpkp_headers" (the HPKP
 * header template of each server) and "ct_logs" (the CT logs, or their
 * temporal shards, certificates are submitted to), each merged over the
 * defaults set by config_acmebot.c; and each certificate's (or the
 * settings') services and ct_submit_logs, resolved to entries of these
 * tables.
 */
#include "config_internal.h"

#include <ctype.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------- services */

int ks_config_service_index(const ks_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_services; i++)
        if (strcmp(cfg->services[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Sets (adds or replaces) a service; the command is taken over. */
int set_service(ks_config *cfg, const char *name, char *command)
{
    int i = ks_config_service_index(cfg, name);
    if (i >= 0) {
        free(cfg->services[i].command);
        cfg->services[i].command = command;
        return 0;
    }
    ks_service *grown = realloc(cfg->services, (cfg->n_services + 1) * sizeof(*grown));
    char *copy = strdup(name);
    if (grown != NULL)
        cfg->services = grown;
    if (grown == NULL || copy == NULL || command == NULL) {
        free(copy);
        free(command);
        return -1;
    }
    cfg->services[cfg->n_services++] = (ks_service){copy, command};
    return 0;
}

static void remove_service(ks_config *cfg, const char *name)
{
    int i = ks_config_service_index(cfg, name);
    if (i < 0)
        return;
    free(cfg->services[i].name);
    free(cfg->services[i].command);
    memmove(&cfg->services[i], &cfg->services[i + 1],
            (cfg->n_services - (size_t)i - 1) * sizeof(*cfg->services));
    cfg->n_services--;
}

/* Merged over acmebot's table: a name's command replaces it, null removes it. */
int parse_services(cfgp *p, ks_config *cfg, json_object *obj)
{
    if (expect_object(p, obj, "services") < 0)
        return -1;
    json_object_object_foreach(obj, name, v)
    {
        char path[512];
        child_path(path, sizeof(path), "services", name);
        if (cfg_check_name(p, path, name) < 0)
            return -1;
        if (v == NULL) {
            remove_service(cfg, name);
            continue;
        }
        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
            return cfail(p, path,
                         "expected the command that reloads the service, or null to "
                         "remove it, got %s",
                         type_name(v));
        if (cfg_check_command(p, path, json_object_get_string(v)) < 0)
            return -1;
        if (set_service(cfg, name, strdup(json_object_get_string(v))) < 0)
            return ks_fail(p->err, "out of memory");
    }
    return 0;
}

/* A list of service names (a certificate's, or settings.services) as
 * indexes into cfg->services; a name listed twice is reloaded once. */
int resolve_services(cfgp *p, const ks_config *cfg, json_object *v, const char *path, size_t **out,
                     size_t *n)
{
    char **names = NULL;
    size_t n_names = 0;
    int rc = cfg_parse_string_list(p, v, path, NULL, &names, &n_names);
    if (rc == 0 && (*out = calloc(n_names ? n_names : 1, sizeof(**out))) == NULL)
        rc = ks_fail(p->err, "out of memory");
    for (size_t i = 0; i < n_names && rc == 0; i++) {
        char ipath[600];
        int index = ks_config_service_index(cfg, names[i]);
        if (json_object_is_type(v, json_type_array))
            index_path(ipath, sizeof(ipath), path, i);
        else
            snprintf(ipath, sizeof(ipath), "%s", path);
        if (index < 0) {
            rc = cfail(p, ipath, "no service \"%s\" (define it in \"services\")", names[i]);
            break;
        }
        int seen = 0;
        for (size_t j = 0; j < *n; j++)
            seen |= (*out)[j] == (size_t)index;
        if (!seen)
            (*out)[(*n)++] = (size_t)index;
    }
    cfg_free_strings(names, n_names);
    return rc;
}

int cert_services(cfgp *p, const ks_config *cfg, ks_cert_config *c, json_object *obj,
                  const char *path)
{
    json_object *v = NULL;
    char spath[600];
    if (obj != NULL && json_object_object_get_ex(obj, "services", &v)) {
        child_path(spath, sizeof(spath), path, "services");
        return resolve_services(p, cfg, v, spath, &c->services, &c->n_services);
    }
    return resolve_services(p, cfg, p->settings_services, "settings.services", &c->services,
                            &c->n_services);
}

/* --------------------------------------------------------- hpkp_headers */

/* The README names the key {key_name}; acmebot's code fills {name}: both. */
static const char *const hpkp_header_fields[] = {"header", "key_name", "name", "server", NULL};

static int hpkp_index(const ks_config *cfg, const char *server)
{
    for (size_t i = 0; i < cfg->n_hpkp_headers; i++)
        if (strcmp(cfg->hpkp_headers[i].server, server) == 0)
            return (int)i;
    return -1;
}

/* Sets (adds or replaces) a server's template, taken over. */
int set_hpkp_header(ks_config *cfg, const char *server, char *tmpl)
{
    int i = hpkp_index(cfg, server);
    if (i >= 0) {
        free(cfg->hpkp_headers[i].tmpl);
        cfg->hpkp_headers[i].tmpl = tmpl;
        return 0;
    }
    ks_hpkp_header *grown = realloc(cfg->hpkp_headers, (cfg->n_hpkp_headers + 1) * sizeof(*grown));
    char *copy = strdup(server);
    if (grown != NULL)
        cfg->hpkp_headers = grown;
    if (grown == NULL || copy == NULL || tmpl == NULL) {
        free(copy);
        free(tmpl);
        return -1;
    }
    cfg->hpkp_headers[cfg->n_hpkp_headers++] = (ks_hpkp_header){copy, tmpl};
    return 0;
}

static void remove_hpkp_header(ks_config *cfg, const char *server)
{
    int i = hpkp_index(cfg, server);
    if (i < 0)
        return;
    free(cfg->hpkp_headers[i].server);
    free(cfg->hpkp_headers[i].tmpl);
    memmove(&cfg->hpkp_headers[i], &cfg->hpkp_headers[i + 1],
            (cfg->n_hpkp_headers - (size_t)i - 1) * sizeof(*cfg->hpkp_headers));
    cfg->n_hpkp_headers--;
}

/* Merged over the apache and nginx defaults; null removes a server. */
int parse_hpkp_headers(cfgp *p, ks_config *cfg, json_object *obj)
{
    if (expect_object(p, obj, "hpkp_headers") < 0)
        return -1;
    json_object_object_foreach(obj, server, v)
    {
        char path[512];
        child_path(path, sizeof(path), "hpkp_headers", server);
        if (cfg_check_name(p, path, server) < 0)
            return -1;
        if (v == NULL) {
            remove_hpkp_header(cfg, server);
            continue;
        }
        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
            return cfail(p, path,
                         "expected a header template with {header}, or null to remove "
                         "it, got %s",
                         type_name(v));
        if (cfg_check_format(p, path, json_object_get_string(v), hpkp_header_fields) < 0)
            return -1;
        if (set_hpkp_header(cfg, server, strdup(json_object_get_string(v))) < 0)
            return ks_fail(p->err, "out of memory");
    }
    return 0;
}

/* -------------------------------------------------------------- ct_logs */

/* Standard base64 with padding, as ct_logs keys and log IDs are written. */
static unsigned char *b64_decode_new(const char *s, size_t *out_len)
{
    size_t len = strlen(s), pad = 0;
    if (len == 0 || len % 4 != 0)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '=') {
            if (i + 2 < len)
                return NULL;
            pad++;
        } else if (pad > 0 || !(isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '/')) {
            return NULL;
        }
    }
    unsigned char *out = malloc(len / 4 * 3 + 1);
    int n = out ? EVP_DecodeBlock(out, (const unsigned char *)s, (int)len) : -1;
    if (n < (int)pad) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)n - pad;
    return out;
}

/* The key must be a public key OpenSSL reads, whole; its SHA-256 is the
 * log ID (RFC 6962 section 3.2). */
int set_ct_key(ks_ct_log *log, const char *b64)
{
    size_t len = 0;
    unsigned char *der = b64_decode_new(b64, &len);
    if (der == NULL)
        return -1;
    const unsigned char *q = der;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &q, (long)len);
    int whole = key != NULL && q == der + len;
    EVP_PKEY_free(key);
    ERR_clear_error();
    unsigned int n = 0;
    if (!whole || EVP_Digest(der, len, log->id, &n, EVP_sha256(), NULL) != 1) {
        free(der);
        return -1;
    }
    log->key_der = der;
    log->key_len = len;
    return 0;
}

/* The log ID, which must match the key when there is one. */
static int set_ct_id(cfgp *p, ks_ct_log *log, const char *b64, const char *path)
{
    size_t len = 0;
    unsigned char *id = b64_decode_new(b64, &len);
    if (id == NULL || len != sizeof(log->id)) {
        free(id);
        return cfail(p, path,
                     "expected the log ID: base64 of 32 bytes (the SHA-256 of the "
                     "log's key)");
    }
    int differs = log->key_der != NULL && memcmp(id, log->id, sizeof(log->id)) != 0;
    memcpy(log->id, id, sizeof(log->id));
    free(id);
    return differs ? cfail(p, path, "is not the SHA-256 of the log's \"key\"") : 0;
}

/* "2020-01-01T00:00:00Z" or "2020-01-01T00:00Z", UTC, as acmebot's ct_logs
 * write the shards' windows. */
static int parse_utc(const char *s, time_t *out)
{
    static const char shape[] = "dddd-dd-ddTdd:dd";
    size_t n = strlen(shape);
    for (size_t i = 0; i < n; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
            return -1;
    struct tm tm = {0};
    tm.tm_year = atoi(s) - 1900;
    tm.tm_mon = atoi(s + 5) - 1;
    tm.tm_mday = atoi(s + 8);
    tm.tm_hour = atoi(s + 11);
    tm.tm_min = atoi(s + 14);
    const char *rest = s + n;
    if (rest[0] == ':' && isdigit((unsigned char)rest[1]) && isdigit((unsigned char)rest[2])) {
        tm.tm_sec = atoi(rest + 1);
        rest += 3;
    }
    if (strcmp(rest, "Z") != 0 || tm.tm_mon > 11 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 59)
        return -1;
    int mday = tm.tm_mday, mon = tm.tm_mon;
    *out = timegm(&tm);
    /* timegm() turns 2021-02-30 into March: the day must be its month's. */
    return tm.tm_mday == mday && tm.tm_mon == mon ? 0 : -1;
}

static int ct_window(cfgp *p, json_object *obj, const char *path, const char *key, time_t *t)
{
    char *s = NULL, cpath[700];
    if (opt_string(p, obj, path, key, 0, &s) < 0)
        return -1;
    int bad = s != NULL && parse_utc(s, t) < 0;
    free(s);
    child_path(cpath, sizeof(cpath), path, key);
    return bad ? cfail(p, cpath, "expected a UTC time such as \"2024-01-01T00:00:00Z\"") : 0;
}

static const char *const ct_log_keys[] = {"url", "key", "log_id", "id", "start", "end", NULL};

/* The key and the log ID: either or both (then they must agree). */
static int ct_identity(cfgp *p, ks_ct_log *log, const char *key, const char *id, const char *old_id,
                       const char *path)
{
    char cpath[700];
    if (key == NULL && id == NULL && old_id == NULL)
        return cfail(p, path,
                     "give the log's \"key\" (base64 DER public key) or its "
                     "\"log_id\"");
    if (id != NULL && old_id != NULL)
        return cfail(p, path, "give \"log_id\" or its older name \"id\", not both");
    child_path(cpath, sizeof(cpath), path, "key");
    if (key != NULL && set_ct_key(log, key) < 0)
        return cfail(p, cpath,
                     "expected the log's public key: base64 of a DER "
                     "SubjectPublicKeyInfo");
    if (id == NULL && old_id == NULL)
        return 0;
    child_path(cpath, sizeof(cpath), path, id ? "log_id" : "id");
    return set_ct_id(p, log, id ? id : old_id, cpath);
}

/* One log or shard: {url, key, log_id (or acmebot's older "id"), start,
 * end}. */
static int parse_ct_shard(cfgp *p, ks_ct_log *log, json_object *obj, const char *path)
{
    char *key = NULL, *id = NULL, *old_id = NULL, cpath[700];
    int rc = -1;
    if (expect_object(p, obj, path) < 0)
        return -1;
    check_keys(p, obj, path, ct_log_keys, NULL);
    child_path(cpath, sizeof(cpath), path, "url");
    if (opt_string(p, obj, path, "url", 0, &log->url) < 0 ||
        opt_string(p, obj, path, "key", 0, &key) < 0 ||
        opt_string(p, obj, path, "log_id", 0, &id) < 0 ||
        opt_string(p, obj, path, "id", 0, &old_id) < 0 ||
        ct_window(p, obj, path, "start", &log->start) < 0 ||
        ct_window(p, obj, path, "end", &log->end) < 0)
        goto out;
    if (log->url == NULL)
        cfail(p, path, "\"url\" is required (the log's https:// address)");
    else if (cfg_check_url(p, cpath, log->url) == 0 &&
             ct_identity(p, log, key, id, old_id, path) == 0)
        rc = log->start != 0 && log->end != 0 && log->end <= log->start
                 ? cfail(p, path, "\"end\" must be after \"start\"")
                 : 0;
out:
    free(key);
    free(id);
    free(old_id);
    return rc;
}

void free_ct_log(ks_ct_log *log)
{
    free(log->name);
    free(log->url);
    free(log->key_der);
}

/* Removes every shard of a log (the user's entry replaces the default). */
static void remove_ct_log(ks_config *cfg, const char *name)
{
    size_t kept = 0;
    for (size_t i = 0; i < cfg->n_ct_logs; i++) {
        if (strcmp(cfg->ct_logs[i].name, name) == 0)
            free_ct_log(&cfg->ct_logs[i]);
        else
            cfg->ct_logs[kept++] = cfg->ct_logs[i];
    }
    cfg->n_ct_logs = kept;
}

ks_ct_log *new_ct_log(ks_config *cfg, const char *name)
{
    ks_ct_log *grown = realloc(cfg->ct_logs, (cfg->n_ct_logs + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    cfg->ct_logs = grown;
    ks_ct_log *log = &cfg->ct_logs[cfg->n_ct_logs];
    memset(log, 0, sizeof(*log));
    if ((log->name = strdup(name)) == NULL)
        return NULL;
    cfg->n_ct_logs++;
    return log;
}

static int add_ct_shard(cfgp *p, ks_config *cfg, const char *name, json_object *obj,
                        const char *path)
{
    ks_ct_log *log = new_ct_log(cfg, name);
    return log ? parse_ct_shard(p, log, obj, path) : ks_fail(p->err, "out of memory");
}

/* A log is one object or a list of shards; null removes a default. */
int parse_ct_logs(cfgp *p, ks_config *cfg, json_object *obj)
{
    if (expect_object(p, obj, "ct_logs") < 0)
        return -1;
    json_object_object_foreach(obj, name, v)
    {
        char path[512];
        child_path(path, sizeof(path), "ct_logs", name);
        if (cfg_check_name(p, path, name) < 0)
            return -1;
        remove_ct_log(cfg, name);
        if (v == NULL)
            continue;
        if (!json_object_is_type(v, json_type_array)) {
            if (add_ct_shard(p, cfg, name, v, path) < 0)
                return -1;
            continue;
        }
        if (json_object_array_length(v) == 0)
            return cfail(p, path, "a list of shards must not be empty (null removes the log)");
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            char ipath[600];
            index_path(ipath, sizeof(ipath), path, i);
            if (add_ct_shard(p, cfg, name, json_object_array_get_idx(v, i), ipath) < 0)
                return -1;
        }
    }
    return 0;
}

/* Log names as indexes of every shard of each; an unknown name is an
 * error at its path. */
int resolve_ct_logs(cfgp *p, const ks_config *cfg, char *const *names, size_t n_names,
                    const char *path, int single, size_t **out, size_t *n)
{
    if ((*out = calloc(cfg->n_ct_logs ? cfg->n_ct_logs : 1, sizeof(**out))) == NULL)
        return ks_fail(p->err, "out of memory");
    for (size_t i = 0; i < n_names; i++) {
        char ipath[600];
        if (single)
            snprintf(ipath, sizeof(ipath), "%s", path);
        else
            index_path(ipath, sizeof(ipath), path, i);
        int found = 0, seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= strcmp(names[j], names[i]) == 0;
        for (size_t j = 0; j < cfg->n_ct_logs; j++) {
            if (strcmp(cfg->ct_logs[j].name, names[i]) != 0)
                continue;
            found = 1;
            if (!seen)
                (*out)[(*n)++] = j;
        }
        if (!found)
            return cfail(p, ipath,
                         "no log \"%s\" in ct_logs (keysvc's defaults are "
                         "google_icarus and google_pilot)",
                         names[i]);
    }
    return 0;
}

int cert_ct_logs(cfgp *p, const ks_config *cfg, ks_cert_config *c, json_object *obj,
                 const char *path)
{
    json_object *v = NULL;
    char lpath[600];
    if (obj == NULL || !json_object_object_get_ex(obj, "ct_submit_logs", &v))
        return resolve_ct_logs(p, cfg, cfg->ct_submit_logs, cfg->n_ct_submit_logs,
                               "settings.ct_submit_logs", 0, &c->ct_logs, &c->n_ct_logs);
    child_path(lpath, sizeof(lpath), path, "ct_submit_logs");
    char **names = NULL;
    size_t n = 0;
    int rc =
        cfg_parse_string_list(p, v, lpath, cfg_check_name, &names, &n) < 0
            ? -1
            : resolve_ct_logs(p, cfg, names, n, lpath, json_object_is_type(v, json_type_string),
                              &c->ct_logs, &c->n_ct_logs);
    cfg_free_strings(names, n);
    return rc;
}
