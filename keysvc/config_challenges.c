/*
 * config_challenges.c: how names are validated (http-01 webroots, the
 * built-in tls-alpn-01 responder, dns-01 through hooks) and the ACME
 * account's external account binding.
 */
#include "config_internal.h"

#include "b64.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* "addr:port" or "[v6addr]:port" with a literal IP address. */
static int parse_listen(const char *text, char **address, int *port)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text)
        return -1;
    const char *start = text, *end = colon;
    if (*start == '[') {
        if (end[-1] != ']')
            return -1;
        start++;
        end--;
    }
    char *addr = strndup(start, (size_t)(end - start));
    unsigned char buf[16];
    char *tail = NULL;
    long p = strtol(colon + 1, &tail, 10);
    if (addr == NULL || *tail != '\0' || colon[1] == '\0' || p < 1 || p > 65535 ||
        (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1)) {
        free(addr);
        return -1;
    }
    *address = addr;
    *port = (int)p;
    return 0;
}

int parse_tls_alpn_challenges(cfgp *p, ks_config *cfg, json_object *obj)
{
    if (expect_object(p, obj, "tls_alpn_challenges") < 0)
        return -1;
    size_t n = (size_t)json_object_object_length(obj);
    cfg->tls_alpn_challenges = calloc(n ? n : 1, sizeof(*cfg->tls_alpn_challenges));
    if (cfg->tls_alpn_challenges == NULL)
        return ks_fail(p->err, "out of memory");
    json_object_object_foreach(obj, fqdn, listen)
    {
        char path[512];
        child_path(path, sizeof(path), "tls_alpn_challenges", fqdn);
        ks_tls_alpn_challenge *t = &cfg->tls_alpn_challenges[cfg->n_tls_alpn_challenges++];
        t->fqdn = lowercase_dup(fqdn);
        if (t->fqdn == NULL || !valid_fqdn(t->fqdn) || t->fqdn[0] == '*')
            return cfail(p, path, "\"%s\" is not a valid host name (wildcards need dns-01)", fqdn);
        if (!json_object_is_type(listen, json_type_string) ||
            parse_listen(json_object_get_string(listen), &t->address, &t->port) < 0)
            return cfail(p, path, "expected \"address:port\" with an IP address (for example "
                                  "\"0.0.0.0:443\" or \"[::]:443\")");
    }
    return 0;
}

static const char *const dns_hooks_keys[] = {"auth", "cleanup", "timeout", NULL};

int parse_dns_hooks(cfgp *p, ks_config *cfg, json_object *obj)
{
    long timeout = cfg->dns_hook_timeout;
    if (expect_object(p, obj, "dns_hooks") < 0)
        return -1;
    check_keys(p, obj, "dns_hooks", dns_hooks_keys, NULL);
    if (opt_string(p, obj, "dns_hooks", "auth", 0, &cfg->dns_auth_hook) < 0 ||
        opt_string(p, obj, "dns_hooks", "cleanup", 0, &cfg->dns_cleanup_hook) < 0 ||
        opt_int(p, obj, "dns_hooks", "timeout", 1, 3600, NULL, &timeout) < 0)
        return -1;
    cfg->dns_hook_timeout = (int)timeout;
    if (cfg->dns_auth_hook == NULL)
        return cfail(p, "dns_hooks.auth", "the auth hook is required (it publishes the record)");
    if (cfg_check_command(p, "dns_hooks.auth", cfg->dns_auth_hook) < 0 ||
        (cfg->dns_cleanup_hook != NULL &&
         cfg_check_command(p, "dns_hooks.cleanup", cfg->dns_cleanup_hook) < 0))
        return -1;
    return 0;
}

/* The EAB members of "account" or of a tenant: key id and MAC key both or
 * neither, and the MAC algorithm (HS256 when not given). */
int parse_eab(cfgp *p, json_object *obj, const char *path, char **kid, char **hmac_key,
              char **alg)
{
    char kpath[512], apath[512];
    if (opt_string(p, obj, path, "eab_kid", 0, kid) < 0 ||
        opt_string(p, obj, path, "eab_hmac_key", 0, hmac_key) < 0 ||
        opt_string(p, obj, path, "eab_alg", 0, alg) < 0)
        return -1;
    child_path(apath, sizeof(apath), path, "eab_alg");
    if (*alg != NULL && strcmp(*alg, "HS256") != 0 && strcmp(*alg, "HS384") != 0 &&
        strcmp(*alg, "HS512") != 0)
        return cfail(p, apath, "expected \"HS256\", \"HS384\" or \"HS512\"");
    child_path(kpath, sizeof(kpath), path, "eab_hmac_key");
    if ((*kid == NULL) != (*hmac_key == NULL))
        return cfail(p, kpath, "give both eab_kid and eab_hmac_key, or neither");
    if (*hmac_key != NULL && !b64url_is_token(*hmac_key))
        return cfail(p, kpath, "expected the base64url MAC key the CA gave you");
    return 0;
}

const ks_tls_alpn_challenge *ks_config_tls_alpn(const ks_config *cfg, const char *fqdn)
{
    for (size_t i = 0; i < cfg->n_tls_alpn_challenges; i++)
        if (strcmp(cfg->tls_alpn_challenges[i].fqdn, fqdn) == 0)
            return &cfg->tls_alpn_challenges[i];
    return NULL;
}

void free_challenges(ks_config *cfg)
{
    for (size_t i = 0; i < cfg->n_tls_alpn_challenges; i++) {
        free(cfg->tls_alpn_challenges[i].fqdn);
        free(cfg->tls_alpn_challenges[i].address);
    }
    free(cfg->tls_alpn_challenges);
}
