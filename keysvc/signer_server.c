/*
 * The signer: tenants, their tokens, and the operations of signer_proto.h
 * with the policy of signer_policy.h.  Serving is in signer_serve.c.
 */
#include "signer_internal.h"

#include "jws.h"
#include "ks_curves.h"
#include "ks_log.h"
#include "ks_util.h"
#include "pin.h"
#include "signer_policy.h"
#include "signer_proto.h"

#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#define KEY_CACHE 256

volatile sig_atomic_t ks_signer_close_sessions_requested;

typedef struct tenant {
    char *name;
    char *label;
    char *serial;
    char *pin_env;
    ks_pin_source own_pin;
    ks_pin_source *pin;          /* own_pin, or an earlier tenant's with the same pin_env */
    char init_error[KS_ERR_MAX]; /* the PIN source is unusable */
    char login_error[KS_ERR_MAX]; /* the first login was refused (a wrong or locked PIN) */
    hsm_token *tok;               /* NULL until a worker opens the tenant */
} tenant;

/* The public half of a key, fetched once for the policy checks. */
typedef struct key_info {
    const tenant *t;
    unsigned char id[HSM_MAX_ID_LEN];
    size_t id_len;
    EVP_PKEY *pub;
} key_info;

struct ks_signer_server {
    hsm *module;
    tenant *tenants;
    size_t n_tenants;
    key_info keys[KEY_CACHE];
    size_t next_key; /* round robin: the cache only saves token calls */
};

/* ---------------------------------------------------------- life cycle */

static void tenant_clear(tenant *t)
{
    free(t->name);
    free(t->label);
    free(t->serial);
    free(t->pin_env);
    ks_pin_source_clear(&t->own_pin);
}

/* Tenants may share a PIN variable: it can be read only once (reading it
 * wipes it), so later tenants use the first one's source. */
static void init_pin(ks_signer_server *s, tenant *t, const ks_signer_tenant_config *c)
{
    ks_err pin_err = {0};
    for (tenant *o = s->tenants; o < t && c->pin_env != NULL; o++) {
        if (o->pin_env == NULL || strcmp(o->pin_env, c->pin_env) != 0)
            continue;
        t->pin = o->pin;
        snprintf(t->init_error, sizeof(t->init_error), "%s", o->init_error);
        return;
    }
    t->pin = &t->own_pin;
    if (ks_pin_source_init(&t->own_pin, c->pin_env, c->pin_file, &pin_err) < 0)
        snprintf(t->init_error, sizeof(t->init_error), "%s", pin_err.msg);
}

ks_signer_server *ks_signer_server_new(const char *module, const ks_signer_tenant_config *tenants,
                                       size_t n_tenants, ks_err *err)
{
    ks_signer_server *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->tenants = calloc(n_tenants ? n_tenants : 1, sizeof(tenant))) == NULL) {
        free(s);
        ks_fail(err, "out of memory");
        return NULL;
    }
    /* The PINs first: an environment PIN is wiped even if the module fails.
     * A tenant whose PIN source fails is kept, to answer with its error. */
    for (size_t i = 0; i < n_tenants; i++) {
        const ks_signer_tenant_config *c = &tenants[i];
        tenant *t = &s->tenants[s->n_tenants++];
        t->name = strdup(c->name);
        t->label = c->token_label ? strdup(c->token_label) : NULL;
        t->serial = c->token_serial ? strdup(c->token_serial) : NULL;
        t->pin_env = c->pin_env ? strdup(c->pin_env) : NULL;
        if (t->name == NULL || (c->pin_env != NULL && t->pin_env == NULL)) {
            ks_fail(err, "out of memory");
            goto fail;
        }
        init_pin(s, t, c);
    }
    s->module = hsm_open(module, err);
    if (s->module == NULL)
        goto fail;
    return s;
fail:
    ks_signer_server_free(s);
    return NULL;
}

void ks_signer_server_free(ks_signer_server *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < KEY_CACHE; i++)
        EVP_PKEY_free(s->keys[i].pub);
    hsm_close(s->module);
    for (size_t i = 0; i < s->n_tenants; i++)
        tenant_clear(&s->tenants[i]);
    free(s->tenants);
    free(s);
}

/* ------------------------------------------------------------ helpers */

json_object *ks_signer_reply_error(const char *msg)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "ok", json_object_new_boolean(0));
    json_object_object_add(r, "error", json_object_new_string(msg));
    return r;
}

static json_object *reply_ok(void)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "ok", json_object_new_boolean(1));
    return r;
}

/* A string from the client, escaped and cut for a message or a log. */
static void shown(char *out, size_t cap, const char *text)
{
    char *esc = ks_escape_new(text, strnlen(text, 64));
    snprintf(out, cap, "%s%s", esc ? esc : "?", strlen(text) > 64 ? "..." : "");
    free(esc);
}

/* Another tenant already holds this token: two tenants never share one. */
static int token_taken(ks_signer_server *s, const tenant *t, const char *serial)
{
    for (size_t i = 0; i < s->n_tenants; i++) {
        const tenant *o = &s->tenants[i];
        if (o != t && o->tok != NULL && strcmp(hsm_token_get_info(o->tok)->serial, serial) == 0)
            return 1;
    }
    return 0;
}

/* Logs into a tenant's token.  After a wrong or locked PIN it is not tried
 * again (each try costs one of a real HSM's few) unless the PIN file has
 * changed since it was read for that login. */
static int login_tenant(ks_signer_server *s, tenant *t, ks_err *err)
{
    if (t->init_error[0] != '\0')
        return ks_fail(err, "%s", t->init_error);
    if (t->login_error[0] != '\0') {
        if (!ks_pin_source_changed(t->pin))
            return ks_fail(err, "%s (not tried again until the PIN changes)", t->login_error);
        t->login_error[0] = '\0';
    }
    hsm_token_info info;
    if (hsm_find_token(s->module, t->label, t->serial, &info, err) < 0)
        return -1;
    if (token_taken(s, t, info.serial))
        return ks_fail(err, "token \"%s\" (serial %s) already belongs to another tenant",
                       info.label, info.serial);
    t->tok = hsm_token_login(s->module, info.label, info.serial, ks_pin_source_get, t->pin, err);
    if (t->tok == NULL) {
        if (hsm_last_login_refused(s->module))
            snprintf(t->login_error, sizeof(t->login_error), "%s", err->msg);
        return -1;
    }
    ks_info("signer: logged in to token \"%s\" for tenant \"%s\"", info.label, t->name);
    return 0;
}

/* A re-login refused for a wrong PIN may be tried once more when the PIN
 * file has changed since. */
static void allow_changed_pin(tenant *t)
{
    if (t->tok != NULL && hsm_token_login_refused(t->tok) && ks_pin_source_changed(t->pin)) {
        ks_info("signer: the PIN file of tenant \"%s\" changed; logging in may be tried again",
                t->name);
        hsm_token_allow_login(t->tok);
    }
}

/* The connection's tenant; every request must name it. */
static tenant *request_tenant(ks_signer_server *s, ks_signer_conn *c, json_object *req,
                              ks_err *err)
{
    const char *name;
    char esc[96];
    if (c->tenant < 0)
        return ks_fail(err, "send \"open\" first"), NULL;
    tenant *t = &s->tenants[c->tenant];
    if (ks_proto_string(req, "tenant", &name, err) < 0)
        return NULL;
    if (strcmp(name, t->name) != 0) {
        shown(esc, sizeof(esc), name);
        ks_fail(err, "refused: this connection belongs to tenant \"%s\", not \"%s\"", t->name,
                esc);
        return NULL;
    }
    if (t->tok == NULL && login_tenant(s, t, err) < 0)
        return NULL;
    allow_changed_pin(t);
    return t;
}

/* The key a request names; its token serial must be the tenant's. */
static int request_key(const tenant *t, json_object *req, unsigned char *id, size_t *id_len,
                       ks_err *err)
{
    json_object *key = NULL;
    const char *serial;
    char esc[96];
    if (!json_object_object_get_ex(req, "key", &key) || !json_object_is_type(key, json_type_object))
        return ks_fail(err, "\"key\" is missing or not an object");
    if (ks_proto_string(key, "serial", &serial, err) < 0 ||
        ks_proto_hex(key, "id", id, HSM_MAX_ID_LEN, id_len, err) < 0)
        return -1;
    const char *own = hsm_token_get_info(t->tok)->serial;
    if (strcmp(serial, own) != 0) {
        shown(esc, sizeof(esc), serial);
        return ks_fail(err, "refused: the key belongs to token serial %s, not to tenant \"%s\" "
                            "(serial %s)",
                       esc, t->name, own);
    }
    if (*id_len != HSM_KEY_ID_LEN ||
        (id[0] != KS_KEY_PURPOSE_ACCOUNT && id[0] != KS_KEY_PURPOSE_CERTIFICATE))
        return ks_fail(err, "refused: not a key keysvc made (no purpose in its CKA_ID)");
    return 0;
}

/* The connection's tenant and the key a request names, both checked. */
static tenant *request_tenant_key(ks_signer_server *s, ks_signer_conn *c, json_object *req,
                                  unsigned char *id, size_t *id_len, ks_err *err)
{
    tenant *t = request_tenant(s, c, req, err);
    return t != NULL && request_key(t, req, id, id_len, err) == 0 ? t : NULL;
}

/* The public half of a key, from the cache or the token. */
static EVP_PKEY *key_public(ks_signer_server *s, const tenant *t, const unsigned char *id,
                            size_t id_len, ks_err *err)
{
    for (size_t i = 0; i < KEY_CACHE; i++) {
        key_info *k = &s->keys[i];
        if (k->pub && k->t == t && k->id_len == id_len && memcmp(k->id, id, id_len) == 0)
            return k->pub;
    }
    EVP_PKEY *pub = NULL;
    if (hsm_public_key(t->tok, id, id_len, &pub, err) < 0)
        return NULL;
    key_info *k = &s->keys[s->next_key];
    s->next_key = (s->next_key + 1) % KEY_CACHE;
    EVP_PKEY_free(k->pub);
    k->t = t;
    memcpy(k->id, id, id_len);
    k->id_len = id_len;
    k->pub = pub;
    return pub;
}

static void forget_key(ks_signer_server *s, const tenant *t, const unsigned char *id,
                       size_t id_len)
{
    for (size_t i = 0; i < KEY_CACHE; i++) {
        key_info *k = &s->keys[i];
        if (k->pub && k->t == t && k->id_len == id_len && memcmp(k->id, id, id_len) == 0) {
            EVP_PKEY_free(k->pub);
            k->pub = NULL;
        }
    }
}

/* The signer's own record of every key operation made, whatever the
 * worker writes to its audit trail. */
static void log_operation(const tenant *t, const char *op, const unsigned char *id, size_t id_len,
                          int ok)
{
    if (!ok)
        return; /* ks_signer_dispatch logs every refusal with its reason */
    char *hex = ks_hex_new(id, id_len);
    ks_info("signer: tenant \"%s\": %s key %s: done", t->name, op, hex ? hex : "?");
    free(hex);
}

/* ------------------------------------------------------------ requests */

static json_object *op_open(ks_signer_server *s, ks_signer_conn *c, json_object *req, ks_err *err)
{
    const char *name;
    char esc[96];
    if (ks_proto_string(req, "tenant", &name, err) < 0)
        return NULL;
    int index = -1;
    for (size_t i = 0; i < s->n_tenants && index < 0; i++)
        if (strcmp(s->tenants[i].name, name) == 0)
            index = (int)i;
    shown(esc, sizeof(esc), name);
    if (index < 0)
        return ks_fail(err, "this signer serves no tenant \"%s\"", esc), NULL;
    if (c->tenant >= 0 && c->tenant != index)
        return ks_fail(err, "refused: this connection belongs to tenant \"%s\", not \"%s\"",
                       s->tenants[c->tenant].name, esc),
               NULL;
    c->tenant = index;
    tenant *t = request_tenant(s, c, req, err);
    if (t == NULL)
        return NULL;
    const hsm_token_info *i = hsm_token_get_info(t->tok);
    json_object *token = json_object_new_object();
    json_object_object_add(token, "label", json_object_new_string(i->label));
    json_object_object_add(token, "serial", json_object_new_string(i->serial));
    json_object_object_add(token, "manufacturer", json_object_new_string(i->manufacturer));
    json_object_object_add(token, "model", json_object_new_string(i->model));
    json_object *r = reply_ok();
    json_object_object_add(r, "token", token);
    return r;
}

/* The key spec of a generate request, allowed for the purpose. */
static int request_spec(json_object *req, int purpose, hsm_key_spec *spec, ks_err *err)
{
    json_object *js = NULL;
    const char *kind, *curve = NULL;
    memset(spec, 0, sizeof(*spec));
    if (!json_object_object_get_ex(req, "spec", &js) || !json_object_is_type(js, json_type_object) ||
        ks_proto_string(js, "kind", &kind, err) < 0)
        return ks_fail(err, "\"spec\" is missing or has no kind");
    if (strcmp(kind, "rsa") == 0) {
        json_object *bits = NULL;
        spec->kind = HSM_KEY_RSA;
        spec->rsa_bits = json_object_object_get_ex(js, "bits", &bits) &&
                                 json_object_is_type(bits, json_type_int)
                             ? (unsigned)json_object_get_int(bits)
                             : 0;
        if (spec->rsa_bits != 2048 && spec->rsa_bits != 3072 && spec->rsa_bits != 4096)
            return ks_fail(err, "RSA keys are 2048, 3072 or 4096 bits");
    } else if (strcmp(kind, "ec") == 0) {
        const ks_curve *c = ks_proto_string(js, "curve", &curve, err) == 0
                                ? ks_curve_by_config_name(curve)
                                : NULL;
        if (c == NULL)
            return ks_fail(err, "unsupported curve");
        spec->kind = HSM_KEY_EC;
        spec->ec_nid = c->nid;
    } else if (strcmp(kind, "ed25519") == 0 && purpose == KS_KEY_PURPOSE_ACCOUNT) {
        spec->kind = HSM_KEY_ED25519;
    } else {
        return ks_fail(err, "refused: no keys of that kind for this purpose");
    }
    return 0;
}

static json_object *op_generate(ks_signer_server *s, ks_signer_conn *c, json_object *req,
                                ks_err *err)
{
    unsigned char id[HSM_MAX_ID_LEN];
    size_t id_len = 0;
    const char *purpose, *label;
    hsm_key_spec spec;
    tenant *t = request_tenant_key(s, c, req, id, &id_len, err);
    if (t == NULL ||
        ks_proto_string(req, "purpose", &purpose, err) < 0 ||
        ks_proto_string(req, "label", &label, err) < 0)
        return NULL;
    int want = strcmp(purpose, "account") == 0       ? KS_KEY_PURPOSE_ACCOUNT
               : strcmp(purpose, "certificate") == 0 ? KS_KEY_PURPOSE_CERTIFICATE
                                                     : -1;
    if (want < 0 || id[0] != want)
        return ks_fail(err, "refused: the CKA_ID does not carry the purpose asked for"), NULL;
    int rc = request_spec(req, want, &spec, err) == 0 &&
                     hsm_generate_key(t->tok, &spec, label, id, id_len, err) == 0
                 ? 0
                 : -1;
    log_operation(t, "generate", id, id_len, rc == 0);
    ks_signer_conn_clear(c); /* a listing being paged is out of date */
    return rc == 0 ? reply_ok() : NULL;
}

static json_object *op_public_key(ks_signer_server *s, ks_signer_conn *c, json_object *req,
                                  ks_err *err)
{
    unsigned char id[HSM_MAX_ID_LEN];
    size_t id_len = 0;
    tenant *t = request_tenant_key(s, c, req, id, &id_len, err);
    if (t == NULL)
        return NULL;
    EVP_PKEY *pub = key_public(s, t, id, id_len, err);
    unsigned char *der = NULL;
    int der_len = pub ? i2d_PUBKEY(pub, &der) : -1;
    if (der_len <= 0)
        return pub ? (ks_fail(err, "cannot encode the public key"), NULL) : NULL;
    json_object *r = reply_ok();
    ks_proto_add_b64(r, "spki", der, (size_t)der_len);
    OPENSSL_free(der);
    return r;
}

static json_object *sign_reply(const tenant *t, const char *op, const unsigned char *id,
                               size_t id_len, int md, const unsigned char *in, size_t in_len,
                               ks_err *err)
{
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    int rc = hsm_sign(t->tok, id, id_len, md, in, in_len, &sig, &sig_len, err);
    log_operation(t, op, id, id_len, rc == 0);
    if (rc < 0)
        return NULL;
    json_object *r = reply_ok();
    ks_proto_add_b64(r, "sig", sig, sig_len);
    free(sig);
    return r;
}

/* The digest a JWS alg signs with (EdDSA: none, Ed25519 signs the input). */
static int jws_digest(const char *alg)
{
    const ks_curve *curve = ks_curve_by_jws_alg(alg);
    return curve ? curve->md_nid : strcmp(alg, "RS256") == 0 ? NID_sha256 : NID_undef;
}

static json_object *op_sign_jws(ks_signer_server *s, ks_signer_conn *c, json_object *req,
                                ks_err *err)
{
    unsigned char id[HSM_MAX_ID_LEN], *input = NULL;
    size_t id_len = 0, len = 0;
    const char *alg;
    json_object *r = NULL;
    tenant *t = request_tenant_key(s, c, req, id, &id_len, err);
    if (t == NULL ||
        ks_proto_string(req, "alg", &alg, err) < 0 || ks_proto_b64(req, "input", &input, &len, err) < 0)
        return NULL;
    EVP_PKEY *pub = key_public(s, t, id, id_len, err);
    int allowed = pub == NULL ? -1
                  : id[0] == KS_KEY_PURPOSE_ACCOUNT
                      ? ks_policy_account_jws(pub, alg, input, len, err)
                      : ks_policy_revocation_jws(pub, alg, input, len, err);
    if (allowed == 0)
        r = sign_reply(t, "sign_jws", id, id_len, jws_digest(alg), input, len, err);
    free(input);
    return r;
}

static json_object *op_sign_csr(ks_signer_server *s, ks_signer_conn *c, json_object *req,
                                ks_err *err)
{
    unsigned char id[HSM_MAX_ID_LEN], *tbs = NULL;
    size_t id_len = 0, len = 0;
    const char *md_name;
    json_object *r = NULL;
    tenant *t = request_tenant_key(s, c, req, id, &id_len, err);
    if (t == NULL)
        return NULL;
    if (id[0] != KS_KEY_PURPOSE_CERTIFICATE)
        return ks_fail(err, "refused: an account key does not sign certificate requests"), NULL;
    if (ks_proto_string(req, "md", &md_name, err) < 0 || ks_proto_b64(req, "tbs", &tbs, &len, err) < 0)
        return NULL;
    EVP_PKEY *pub = key_public(s, t, id, id_len, err);
    int md = OBJ_sn2nid(md_name);
    if (pub != NULL && ks_policy_csr(pub, md, tbs, len, err) == 0)
        r = sign_reply(t, "sign_csr", id, id_len, md, tbs, len, err);
    free(tbs);
    return r;
}

static json_object *op_exists(ks_signer_server *s, ks_signer_conn *c, json_object *req,
                              ks_err *err)
{
    unsigned char id[HSM_MAX_ID_LEN];
    size_t id_len = 0;
    tenant *t = request_tenant_key(s, c, req, id, &id_len, err);
    if (t == NULL)
        return NULL;
    int present = hsm_key_exists(t->tok, id, id_len, err);
    if (present < 0)
        return NULL;
    json_object *r = reply_ok();
    json_object_object_add(r, "exists", json_object_new_boolean(present));
    return r;
}

static int compare_ids(const void *a, const void *b)
{
    const hsm_key_id *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->id, y->id, x->len);
}

/* The tenant's keysvc keys, sorted, kept on the connection while it pages
 * through them (one search of the token per listing, not per page). */
static int load_listing(const tenant *t, ks_signer_conn *c, ks_err *err)
{
    hsm_key_id *ids = NULL;
    size_t n = 0, kept = 0;
    ks_signer_conn_clear(c);
    if (hsm_list_private_key_ids(t->tok, &ids, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (ids[i].len == HSM_KEY_ID_LEN &&
            (ids[i].id[0] == KS_KEY_PURPOSE_ACCOUNT || ids[i].id[0] == KS_KEY_PURPOSE_CERTIFICATE))
            ids[kept++] = ids[i];
    qsort(ids, kept, sizeof(*ids), compare_ids);
    c->list = ids;
    c->list_n = kept;
    return 0;
}

/* One page after "after" (a new listing when absent), at most "limit" IDs. */
static json_object *op_list(ks_signer_server *s, ks_signer_conn *c, json_object *req, ks_err *err)
{
    tenant *t = request_tenant(s, c, req, err);
    hsm_key_id after = {0};
    json_object *v = NULL;
    size_t limit = KS_LIST_PAGE;
    if (t == NULL)
        return NULL;
    int paging = json_object_object_get_ex(req, "after", &v);
    if (paging && ks_proto_hex(req, "after", after.id, sizeof(after.id), &after.len, err) < 0)
        return NULL;
    if (json_object_object_get_ex(req, "limit", &v)) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int(v) < 1)
            return ks_fail(err, "\"limit\" must be a positive integer"), NULL;
        limit = (size_t)json_object_get_int(v) < limit ? (size_t)json_object_get_int(v) : limit;
    }
    if ((!paging || c->list == NULL) && load_listing(t, c, err) < 0)
        return NULL;
    size_t i = 0, added = 0;
    while (i < c->list_n && paging && compare_ids(&c->list[i], &after) <= 0)
        i++;
    json_object *r = reply_ok(), *arr = json_object_new_array();
    for (; i < c->list_n && added < limit; i++, added++) {
        char *hex = ks_hex_new(c->list[i].id, c->list[i].len);
        if (hex != NULL)
            json_object_array_add(arr, json_object_new_string(hex));
        free(hex);
    }
    json_object_object_add(r, "keys", arr);
    json_object_object_add(r, "more", json_object_new_boolean(i < c->list_n));
    if (i >= c->list_n)
        ks_signer_conn_clear(c);
    return r;
}

static json_object *op_destroy(ks_signer_server *s, ks_signer_conn *c, json_object *req,
                               ks_err *err)
{
    unsigned char id[HSM_MAX_ID_LEN];
    size_t id_len = 0;
    tenant *t = request_tenant_key(s, c, req, id, &id_len, err);
    if (t == NULL)
        return NULL;
    forget_key(s, t, id, id_len);
    int rc = hsm_destroy_key(t->tok, id, id_len, err);
    log_operation(t, "destroy", id, id_len, rc == 0);
    ks_signer_conn_clear(c);
    return rc == 0 ? reply_ok() : NULL;
}

/* How often the tenant's session was recovered and logged into. */
static json_object *op_stats(ks_signer_server *s, ks_signer_conn *c, json_object *req,
                             ks_err *err)
{
    tenant *t = request_tenant(s, c, req, err);
    if (t == NULL)
        return NULL;
    json_object *r = reply_ok();
    json_object_object_add(r, "recoveries", json_object_new_int((int)hsm_token_recoveries(t->tok)));
    json_object_object_add(r, "logins", json_object_new_int((int)hsm_token_logins(t->tok)));
    return r;
}

static const struct {
    const char *name;
    json_object *(*fn)(ks_signer_server *, ks_signer_conn *, json_object *, ks_err *);
} ops[] = {
    {KS_OP_OPEN, op_open},         {KS_OP_GENERATE, op_generate}, {KS_OP_PUBLIC_KEY, op_public_key},
    {KS_OP_SIGN_JWS, op_sign_jws}, {KS_OP_SIGN_CSR, op_sign_csr}, {KS_OP_EXISTS, op_exists},
    {KS_OP_LIST, op_list},         {KS_OP_DESTROY, op_destroy},   {KS_OP_STATS, op_stats},
};

static void close_all_sessions(ks_signer_server *s)
{
    for (size_t i = 0; i < s->n_tenants; i++)
        if (s->tenants[i].tok != NULL)
            hsm_token_close_all_sessions(s->tenants[i].tok);
    ks_warn("signer: test hook closed every session");
}

/* Operations that make, use or remove a key: every refusal is logged. */
static int is_key_operation(const char *op)
{
    return strcmp(op, KS_OP_GENERATE) == 0 || strcmp(op, KS_OP_SIGN_JWS) == 0 ||
           strcmp(op, KS_OP_SIGN_CSR) == 0 || strcmp(op, KS_OP_DESTROY) == 0;
}

json_object *ks_signer_dispatch(ks_signer_server *s, ks_signer_conn *c, json_object *req)
{
    ks_err err = {0};
    const char *op;
    if (ks_signer_close_sessions_requested) {
        ks_signer_close_sessions_requested = 0;
        close_all_sessions(s);
    }
    if (ks_proto_string(req, "op", &op, &err) < 0)
        return ks_signer_reply_error(err.msg);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(ops[i].name, op) != 0)
            continue;
        json_object *r = ops[i].fn(s, c, req, &err);
        if (r == NULL && is_key_operation(ops[i].name))
            ks_warn("signer: %s for tenant %s refused or failed: %s", ops[i].name,
                    c->tenant >= 0 ? s->tenants[c->tenant].name : "(none)", err.msg);
        else if (r == NULL)
            ks_debug("signer: %s refused or failed: %s", ops[i].name, err.msg);
        return r ? r : ks_signer_reply_error(err.msg[0] ? err.msg : "failed");
    }
    return ks_signer_reply_error("unknown op");
}

void ks_signer_conn_clear(ks_signer_conn *c)
{
    free(c->list);
    c->list = NULL;
    c->list_n = 0;
}
