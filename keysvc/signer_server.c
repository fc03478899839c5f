#include "signer_server.h"

#include "hsm.h"
#include "ks_log.h"
#include "ks_util.h"
#include "pin.h"
#include "signer_policy.h"
#include "signer_proto.h"

#include <errno.h>
#include <grp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define KEY_CACHE 256

typedef struct tenant {
    char *name;
    char *label;
    char *serial;
    ks_pin_source pin;
    hsm_token *tok; /* NULL until a worker opens the tenant */
} tenant;

/* What the policy needs to know of a key, fetched once. */
typedef struct key_info {
    const tenant *t;
    unsigned char id[HSM_MAX_ID_LEN];
    size_t id_len;
    EVP_PKEY *pub;
    const char *alg;
} key_info;

struct ks_signer_server {
    hsm *module;
    tenant *tenants;
    size_t n_tenants;
    key_info keys[KEY_CACHE];
    size_t next_key; /* round robin: the cache only saves token calls */
};

static volatile sig_atomic_t close_sessions_requested;
static volatile sig_atomic_t stop_requested;

/* ---------------------------------------------------------- life cycle */

static void tenant_clear(tenant *t)
{
    free(t->name);
    free(t->label);
    free(t->serial);
    ks_pin_source_clear(&t->pin);
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
    /* The PINs first: an environment PIN is wiped even if the module fails. */
    for (size_t i = 0; i < n_tenants; i++) {
        const ks_signer_tenant_config *c = &tenants[i];
        tenant *t = &s->tenants[s->n_tenants++];
        t->name = strdup(c->name);
        t->label = c->token_label ? strdup(c->token_label) : NULL;
        t->serial = c->token_serial ? strdup(c->token_serial) : NULL;
        if (t->name == NULL || ks_pin_source_init(&t->pin, c->pin_env, c->pin_file, err) < 0) {
            ks_failp(err, "tenant \"%s\"", c->name);
            goto fail;
        }
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

static json_object *reply_error(const char *msg)
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

/* The tenant a request names, logged in on first use. */
static tenant *request_tenant(ks_signer_server *s, json_object *req, ks_err *err)
{
    const char *name;
    if (ks_proto_string(req, "tenant", &name, err) < 0)
        return NULL;
    tenant *t = NULL;
    for (size_t i = 0; i < s->n_tenants && t == NULL; i++)
        if (strcmp(s->tenants[i].name, name) == 0)
            t = &s->tenants[i];
    if (t == NULL) {
        ks_fail(err, "this signer serves no tenant \"%.64s\"", name);
        return NULL;
    }
    if (t->tok == NULL) {
        /* The worker names the tenant in its message; the token says the rest. */
        t->tok = hsm_token_login(s->module, t->label, t->serial, ks_pin_source_get, &t->pin, err);
        if (t->tok == NULL)
            return NULL;
        ks_info("signer: logged in to token \"%s\" for tenant \"%s\"",
                hsm_token_get_info(t->tok)->label, t->name);
    }
    return t;
}

/* The key a request names; its token serial must be the tenant's. */
static int request_key(const tenant *t, json_object *req, unsigned char *id, size_t *id_len,
                       ks_err *err)
{
    json_object *key = NULL;
    const char *serial;
    if (!json_object_object_get_ex(req, "key", &key) || !json_object_is_type(key, json_type_object))
        return ks_fail(err, "\"key\" is missing or not an object");
    if (ks_proto_string(key, "serial", &serial, err) < 0 ||
        ks_proto_hex(key, "id", id, HSM_MAX_ID_LEN, id_len, err) < 0)
        return -1;
    const char *own = hsm_token_get_info(t->tok)->serial;
    if (strcmp(serial, own) != 0)
        return ks_fail(err, "refused: the key belongs to token serial %.32s, not to tenant "
                            "\"%s\" (serial %s)",
                       serial, t->name, own);
    if (id[0] != KS_KEY_PURPOSE_ACCOUNT && id[0] != KS_KEY_PURPOSE_CERTIFICATE)
        return ks_fail(err, "refused: not a key keysvc made (no purpose in its CKA_ID)");
    return 0;
}

/* The policy facts of a key, from the cache or the token. */
static key_info *key_facts(ks_signer_server *s, const tenant *t, const unsigned char *id,
                           size_t id_len, ks_err *err)
{
    for (size_t i = 0; i < KEY_CACHE; i++) {
        key_info *k = &s->keys[i];
        if (k->pub && k->t == t && k->id_len == id_len && memcmp(k->id, id, id_len) == 0)
            return k;
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
    k->alg = ks_policy_alg_for_key(pub);
    return k;
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

/* ------------------------------------------------------------ requests */

static json_object *op_open(ks_signer_server *s, json_object *req, ks_err *err)
{
    tenant *t = request_tenant(s, req, err);
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
        spec->kind = HSM_KEY_EC;
        if (ks_proto_string(js, "curve", &curve, err) < 0)
            return -1;
        spec->ec_nid = strcmp(curve, "secp256r1") == 0   ? NID_X9_62_prime256v1
                       : strcmp(curve, "secp384r1") == 0 ? NID_secp384r1
                       : strcmp(curve, "secp521r1") == 0 ? NID_secp521r1
                                                         : NID_undef;
        if (spec->ec_nid == NID_undef)
            return ks_fail(err, "unsupported curve");
    } else if (strcmp(kind, "ed25519") == 0 && purpose == KS_KEY_PURPOSE_ACCOUNT) {
        spec->kind = HSM_KEY_ED25519;
    } else {
        return ks_fail(err, "refused: no %.16s keys for this purpose", kind);
    }
    return 0;
}

static json_object *op_generate(ks_signer_server *s, json_object *req, ks_err *err)
{
    tenant *t = request_tenant(s, req, err);
    unsigned char id[HSM_MAX_ID_LEN];
    size_t id_len = 0;
    const char *purpose, *label;
    hsm_key_spec spec;
    if (t == NULL || request_key(t, req, id, &id_len, err) < 0 ||
        ks_proto_string(req, "purpose", &purpose, err) < 0 ||
        ks_proto_string(req, "label", &label, err) < 0)
        return NULL;
    int want = strcmp(purpose, "account") == 0       ? KS_KEY_PURPOSE_ACCOUNT
               : strcmp(purpose, "certificate") == 0 ? KS_KEY_PURPOSE_CERTIFICATE
                                                     : -1;
    if (want < 0 || id[0] != want) {
        ks_fail(err, "refused: the CKA_ID does not carry the purpose \"%.16s\"", purpose);
        return NULL;
    }
    if (request_spec(req, want, &spec, err) < 0 ||
        hsm_generate_key(t->tok, &spec, label, id, id_len, err) < 0)
        return NULL;
    return reply_ok();
}

static json_object *op_public_key(ks_signer_server *s, json_object *req, ks_err *err)
{
    tenant *t = request_tenant(s, req, err);
    unsigned char id[HSM_MAX_ID_LEN];
    size_t id_len = 0;
    if (t == NULL || request_key(t, req, id, &id_len, err) < 0)
        return NULL;
    key_info *k = key_facts(s, t, id, id_len, err);
    unsigned char *der = NULL;
    int der_len = k ? i2d_PUBKEY(k->pub, &der) : -1;
    if (der_len <= 0) {
        if (k != NULL)
            ks_fail(err, "cannot encode the public key");
        return NULL;
    }
    json_object *r = reply_ok();
    ks_proto_add_b64(r, "spki", der, (size_t)der_len);
    OPENSSL_free(der);
    return r;
}

static json_object *sign_reply(hsm_token *tok, const unsigned char *id, size_t id_len, int md,
                               const unsigned char *in, size_t in_len, ks_err *err)
{
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    if (hsm_sign(tok, id, id_len, md, in, in_len, &sig, &sig_len, err) < 0)
        return NULL;
    json_object *r = reply_ok();
    ks_proto_add_b64(r, "sig", sig, sig_len);
    free(sig);
    return r;
}

static int jws_digest(const char *alg)
{
    return strcmp(alg, "ES384") == 0   ? NID_sha384
           : strcmp(alg, "ES512") == 0 ? NID_sha512
           : strcmp(alg, "EdDSA") == 0 ? NID_undef
                                       : NID_sha256;
}

static json_object *op_sign_jws(ks_signer_server *s, json_object *req, ks_err *err)
{
    tenant *t = request_tenant(s, req, err);
    unsigned char id[HSM_MAX_ID_LEN], *input = NULL;
    size_t id_len = 0, len = 0;
    const char *alg;
    json_object *r = NULL;
    if (t == NULL || request_key(t, req, id, &id_len, err) < 0 ||
        ks_proto_string(req, "alg", &alg, err) < 0 || ks_proto_b64(req, "input", &input, &len, err) < 0)
        return NULL;
    key_info *k = key_facts(s, t, id, id_len, err);
    int allowed = k == NULL ? -1
                  : id[0] == KS_KEY_PURPOSE_ACCOUNT
                      ? ks_policy_account_jws(k->pub, alg, input, len, err)
                      : ks_policy_revocation_jws(k->pub, alg, input, len, err);
    if (allowed == 0)
        r = sign_reply(t->tok, id, id_len, jws_digest(alg), input, len, err);
    free(input);
    return r;
}

static json_object *op_sign_csr(ks_signer_server *s, json_object *req, ks_err *err)
{
    tenant *t = request_tenant(s, req, err);
    unsigned char id[HSM_MAX_ID_LEN], *tbs = NULL;
    size_t id_len = 0, len = 0;
    const char *md_name;
    json_object *r = NULL;
    if (t == NULL || request_key(t, req, id, &id_len, err) < 0 ||
        ks_proto_string(req, "md", &md_name, err) < 0 || ks_proto_b64(req, "tbs", &tbs, &len, err) < 0)
        return NULL;
    int md = OBJ_sn2nid(md_name);
    key_info *k = id[0] == KS_KEY_PURPOSE_CERTIFICATE ? key_facts(s, t, id, id_len, err) : NULL;
    if (id[0] != KS_KEY_PURPOSE_CERTIFICATE)
        ks_fail(err, "refused: an account key does not sign certificate requests");
    else if (k != NULL && ks_policy_csr(k->pub, md, tbs, len, err) == 0)
        r = sign_reply(t->tok, id, id_len, md, tbs, len, err);
    free(tbs);
    return r;
}

static json_object *op_exists(ks_signer_server *s, json_object *req, ks_err *err)
{
    tenant *t = request_tenant(s, req, err);
    unsigned char id[HSM_MAX_ID_LEN];
    size_t id_len = 0;
    if (t == NULL || request_key(t, req, id, &id_len, err) < 0)
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

/* One page of the tenant's keysvc keys, in ID order after "after". */
static json_object *op_list(ks_signer_server *s, json_object *req, ks_err *err)
{
    tenant *t = request_tenant(s, req, err);
    hsm_key_id *ids = NULL, after = {0};
    size_t n = 0;
    json_object *v = NULL;
    if (t == NULL)
        return NULL;
    if (json_object_object_get_ex(req, "after", &v) &&
        ks_proto_hex(req, "after", after.id, sizeof(after.id), &after.len, err) < 0)
        return NULL;
    if (hsm_list_private_key_ids(t->tok, &ids, &n, err) < 0)
        return NULL;
    qsort(ids, n, sizeof(*ids), compare_ids);
    json_object *r = reply_ok(), *arr = json_object_new_array();
    size_t added = 0, i = 0;
    for (; i < n && added < KS_LIST_PAGE; i++) {
        if ((after.len && compare_ids(&ids[i], &after) <= 0) ||
            (ids[i].id[0] != KS_KEY_PURPOSE_ACCOUNT && ids[i].id[0] != KS_KEY_PURPOSE_CERTIFICATE))
            continue;
        char *hex = ks_proto_hex_new(ids[i].id, ids[i].len);
        if (hex != NULL)
            json_object_array_add(arr, json_object_new_string(hex));
        free(hex);
        added++;
    }
    json_object_object_add(r, "keys", arr);
    json_object_object_add(r, "more", json_object_new_boolean(i < n));
    free(ids);
    return r;
}

static json_object *op_destroy(ks_signer_server *s, json_object *req, ks_err *err)
{
    tenant *t = request_tenant(s, req, err);
    unsigned char id[HSM_MAX_ID_LEN];
    size_t id_len = 0;
    if (t == NULL || request_key(t, req, id, &id_len, err) < 0)
        return NULL;
    forget_key(s, t, id, id_len);
    if (hsm_destroy_key(t->tok, id, id_len, err) < 0)
        return NULL;
    return reply_ok();
}

static const struct {
    const char *name;
    json_object *(*fn)(ks_signer_server *, json_object *, ks_err *);
} ops[] = {
    {KS_OP_OPEN, op_open},         {KS_OP_GENERATE, op_generate}, {KS_OP_PUBLIC_KEY, op_public_key},
    {KS_OP_SIGN_JWS, op_sign_jws}, {KS_OP_SIGN_CSR, op_sign_csr}, {KS_OP_EXISTS, op_exists},
    {KS_OP_LIST, op_list},         {KS_OP_DESTROY, op_destroy},
};

static void close_all_sessions(ks_signer_server *s)
{
    for (size_t i = 0; i < s->n_tenants; i++)
        if (s->tenants[i].tok != NULL)
            hsm_token_close_all_sessions(s->tenants[i].tok);
    ks_warn("signer: test hook closed every session");
}

json_object *ks_signer_server_handle(ks_signer_server *s, json_object *req)
{
    ks_err err = {0};
    const char *op;
    if (close_sessions_requested) {
        close_sessions_requested = 0;
        close_all_sessions(s);
    }
    if (ks_proto_string(req, "op", &op, &err) < 0)
        return reply_error(err.msg);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(ops[i].name, op) != 0)
            continue;
        json_object *r = ops[i].fn(s, req, &err);
        if (r == NULL)
            ks_debug("signer: %s refused or failed: %s", ops[i].name, err.msg);
        return r ? r : reply_error(err.msg[0] ? err.msg : "failed");
    }
    return reply_error("unknown op");
}

/* ------------------------------------------------------------- serving */

/* Reads one request and answers it.  1 served, 0 peer closed, -1 dead. */
static int serve_one(ks_signer_server *s, int fd)
{
    json_object *req = NULL, *reply;
    ks_err err = {0};
    int got = ks_proto_recv(fd, &req, &err);
    if (got == 0)
        return 0;
    /* A malformed or oversized request was still one whole message: answer
     * it and keep serving. */
    reply = got < 0 ? reply_error(err.msg) : ks_signer_server_handle(s, req);
    json_object_put(req);
    int rc = ks_proto_send(fd, reply, &err);
    json_object_put(reply);
    if (rc < 0)
        ks_debug("signer: %s", err.msg);
    return rc < 0 ? -1 : 1;
}

int ks_signer_serve_connection(ks_signer_server *s, int fd, ks_err *err)
{
    for (;;) {
        int rc = serve_one(s, fd);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return ks_fail(err, "signer: the connection failed");
    }
}

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_test_close(int sig)
{
    (void)sig;
    close_sessions_requested = 1;
}

void ks_signer_install_test_hooks(void)
{
    const char *hooks = getenv("KEYSVC_TEST_HOOKS");
    if (hooks == NULL || strcmp(hooks, "1") != 0)
        return;
    struct sigaction sa = {.sa_handler = on_test_close};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    ks_warn("signer: test hooks are on (KEYSVC_TEST_HOOKS): for tests only");
}

/* The listening socket: a stale socket file is replaced, anything else at
 * the path is refused. */
static int listen_on(const char *path, const char *group, ks_err *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct stat st;
    if (strlen(path) >= sizeof(addr.sun_path))
        return ks_fail(err, "signer socket path %s is too long", path);
    memcpy(addr.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return ks_fail(err, "%s exists and is not a socket", path);
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ks_fail(err, "socket: %s", strerror(errno));
    /* Created 0600 from the start (umask), then opened to a group if asked. */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old);
    if (rc < 0 || listen(fd, 16) < 0) {
        ks_fail(err, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (group != NULL) {
        struct group *g = getgrnam(group);
        if (g == NULL || chown(path, (uid_t)-1, g->gr_gid) < 0 || chmod(path, 0660) < 0) {
            ks_fail(err, "%s: cannot give the socket to group %s", path, group);
            close(fd);
            unlink(path);
            return -1;
        }
    }
    return fd;
}

static void accept_client(int lfd, struct pollfd *fds, size_t *n)
{
    int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    if (*n >= MAX_CLIENTS + 1) {
        ks_warn("signer: too many workers connected; refusing one");
        close(cfd);
        return;
    }
    fds[(*n)++] = (struct pollfd){.fd = cfd, .events = POLLIN};
}

int ks_signer_serve_path(ks_signer_server *s, const char *path, const char *group, ks_err *err)
{
    int lfd = listen_on(path, group, err);
    if (lfd < 0)
        return -1;
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct pollfd fds[MAX_CLIENTS + 1] = {{.fd = lfd, .events = POLLIN}};
    size_t n = 1;
    ks_info("signer: listening on %s", path);
    while (!stop_requested) {
        if (poll(fds, n, -1) < 0)
            continue; /* EINTR: look at the flags */
        for (size_t i = n; i-- > 1;) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (serve_one(s, fds[i].fd) <= 0) {
                close(fds[i].fd);
                fds[i] = fds[--n];
            }
        }
        if (fds[0].revents & POLLIN)
            accept_client(lfd, fds, &n);
    }
    for (size_t i = 1; i < n; i++)
        close(fds[i].fd);
    close(lfd);
    unlink(path);
    return 0;
}
