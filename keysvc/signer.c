#include "signer.h"

#include "ks_log.h"
#include "ks_util.h"
#include "pin.h"
#include "signer_proto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

struct ks_signer {
    int fd;
    /* A request went unanswered (timeout, bad answer): a late answer could
     * be read as the next one's, so nothing more is asked on fd. */
    int broken;
    ks_signer_process *proc; /* to reconnect to a standalone signer, or NULL */
    char *tenant;
    hsm_token_info token;
    ks_audit_hooks audit;
};

const char *ks_key_purpose_name(ks_key_purpose p)
{
    return p == KS_PURPOSE_ACCOUNT ? "account" : "certificate";
}

/* ---------------------------------------------------- the signer process */

ks_signer_tenant_config *ks_signer_tenants_from_config(const ks_config *cfg, const char *only,
                                                       size_t *n, ks_err *err)
{
    ks_signer_tenant_config *out = calloc(cfg->n_tenants ? cfg->n_tenants : 1, sizeof(*out));
    *n = 0;
    if (out == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_tenants; i++) {
        const ks_tenant_config *t = &cfg->tenants[i];
        if (only != NULL && strcmp(only, t->name) != 0)
            continue;
        out[(*n)++] = (ks_signer_tenant_config){.name = t->name,
                                                .token_label = t->token,
                                                .token_serial = t->token_serial,
                                                .pin_env = t->pin_env,
                                                .pin_file = t->pin_file};
    }
    return out;
}

void ks_signer_wipe_unused_pins(const ks_config *cfg, const char *only)
{
    for (size_t i = 0; only != NULL && i < cfg->n_tenants; i++) {
        const char *var = cfg->tenants[i].pin_env;
        int needed = var == NULL;
        for (size_t j = 0; j < cfg->n_tenants && !needed; j++)
            needed = strcmp(cfg->tenants[j].name, only) == 0 && cfg->tenants[j].pin_env &&
                     strcmp(cfg->tenants[j].pin_env, var) == 0;
        if (!needed)
            ks_pin_env_wipe(var);
    }
}

/* The worker waits this long for the signer, sending and receiving. */
static void set_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = KS_SIGNER_TIMEOUT};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Descriptors keysvc's own parent left open (everything keysvc and its
 * libraries open is close-on-exec, so a descriptor without that flag came
 * from outside): the signer does not keep them, whatever they lead to. */
static void close_inherited(const int *keep, size_t n_keep)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        int ours = *end != '\0' || fd < 3 || fd == dirfd(d);
        for (size_t i = 0; i < n_keep && !ours; i++)
            ours = keep[i] == fd;
        int flags = ours ? -1 : fcntl((int)fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            close((int)fd);
    }
    closedir(d);
}

/* The child: serve the worker's connections until it has closed them all,
 * then report. */
static int run_child(const int *fds, const char *module, const ks_signer_tenant_config *tenants,
                     size_t n)
{
    ks_err err = {0};
    ks_signer_install_test_hooks();
    ks_signer_server *server = ks_signer_server_new(module, tenants, n, &err);
    int rc = 0;
    if (server == NULL) {
        /* The worker learns it from its first request: the socket closes. */
        ks_error("signer: %s", err.msg);
        rc = 2;
    } else if (ks_signer_serve_fds(server, fds, n, &err) < 0) {
        ks_error("%s", err.msg);
        rc = 2;
    }
    ks_signer_server_free(server);
    return rc;
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; fds != NULL && i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Adds a tenant's connection to proc (the name is copied). */
static int add_connection(ks_signer_process *proc, const char *tenant, int fd, ks_err *err)
{
    char **names = realloc(proc->tenants, (proc->n + 1) * sizeof(*names));
    if (names != NULL)
        proc->tenants = names;
    int *fds = names ? realloc(proc->fds, (proc->n + 1) * sizeof(*fds)) : NULL;
    if (fds != NULL)
        proc->fds = fds;
    char *copy = fds ? strdup(tenant) : NULL;
    if (copy == NULL) {
        close(fd);
        return ks_fail(err, "out of memory");
    }
    proc->tenants[proc->n] = copy;
    proc->fds[proc->n++] = fd;
    set_timeouts(fd);
    return 0;
}

/* One socketpair per tenant: the worker's ends into proc, the signer's
 * into signer_ends (n of them). */
static int make_pairs(const ks_signer_tenant_config *tenants, size_t n, ks_signer_process *proc,
                      int *signer_ends, ks_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
            return ks_fail(err, "socketpair: %s", strerror(errno));
        signer_ends[i] = sv[1];
        if (add_connection(proc, tenants[i].name, sv[0], err) < 0)
            return -1;
    }
    return 0;
}

int ks_signer_spawn(const char *module, const ks_signer_tenant_config *tenants, size_t n,
                    ks_signer_process *proc, int *child_status, ks_err *err)
{
    memset(proc, 0, sizeof(*proc));
    int *signer_ends = malloc((n ? n : 1) * sizeof(int));
    if (signer_ends == NULL)
        return ks_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        signer_ends[i] = -1;
    pid_t pid = -1;
    if (make_pairs(tenants, n, proc, signer_ends, err) == 0) {
        fflush(NULL);
        pid = fork();
        if (pid < 0)
            ks_fail(err, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        ks_signer_process_end(proc); /* the worker's ends */
        close_inherited(signer_ends, n);
        *child_status = run_child(signer_ends, module, tenants, n);
        close_all(signer_ends, n);
        free(signer_ends);
        return 1;
    }
    close_all(signer_ends, n);
    free(signer_ends);
    if (pid < 0) {
        ks_signer_process_end(proc);
        return -1;
    }
    /* The worker keeps no PIN: the signer took its copy. */
    for (size_t i = 0; i < n; i++)
        ks_pin_env_wipe(tenants[i].pin_env);
    proc->pid = pid;
    return 0;
}

int ks_signer_use_path(const char *path, const char *signer_user, ks_signer_process *proc,
                       ks_err *err)
{
    memset(proc, 0, sizeof(*proc));
    proc->signer_uid = 0;
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return ks_fail(err, "signer socket path %s is too long", path);
    if (signer_user != NULL) {
        struct passwd *pw = getpwnam(signer_user);
        if (pw == NULL)
            return ks_fail(err, "signer.user: no user \"%s\"", signer_user);
        proc->signer_uid = pw->pw_uid;
    }
    proc->socket_path = strdup(path);
    return proc->socket_path ? 0 : ks_fail(err, "out of memory");
}

/* The standalone signer must run as root, as this process's user, or as
 * signer.user: anyone else may have bound the path while it was down, and
 * would then answer with keys of its own. */
static int check_signer_peer(int fd, const char *path, uid_t allowed, ks_err *err)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return ks_fail(err, "%s: who is the signer? %s", path, strerror(errno));
    if (cred.uid != 0 && cred.uid != geteuid() && cred.uid != allowed)
        return ks_fail(err, "refusing the signer at %s: it runs as uid %ld, not as root, this "
                            "user or signer.user",
                       path, (long)cred.uid);
    return 0;
}

static int connect_path(const char *path, uid_t allowed, ks_err *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ks_fail(err, "socket: %s", strerror(errno));
    set_timeouts(fd); /* a connect to a full queue waits for the send timeout */
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        ks_fail(err, "cannot reach the signer at %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (check_signer_peer(fd, path, allowed, err) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The index of a tenant's connection in proc, or -1. */
static int find_connection(const ks_signer_process *proc, const char *tenant)
{
    for (size_t i = 0; i < proc->n; i++)
        if (strcmp(proc->tenants[i], tenant) == 0)
            return (int)i;
    return -1;
}

int ks_signer_process_fd(ks_signer_process *proc, const char *tenant, ks_err *err)
{
    int i = find_connection(proc, tenant);
    if (i >= 0)
        return proc->fds[i];
    if (proc->socket_path == NULL)
        return ks_fail(err, "this run's signer does not serve tenant \"%s\"", tenant);
    int fd = connect_path(proc->socket_path, proc->signer_uid, err);
    if (fd < 0 || add_connection(proc, tenant, fd, err) < 0)
        return -1;
    return fd;
}

/* A new connection for a tenant whose standalone signer closed the old one
 * (it drops workers silent for a long time, or was restarted). */
static int reconnect(ks_signer_process *proc, const char *tenant, ks_err *err)
{
    int i = find_connection(proc, tenant);
    if (proc->socket_path == NULL || i < 0)
        return ks_fail(err, "the signer closed the connection (see its log)");
    int fd = connect_path(proc->socket_path, proc->signer_uid, err);
    if (fd < 0)
        return -1;
    close(proc->fds[i]);
    proc->fds[i] = fd;
    return fd;
}

void ks_signer_process_end(ks_signer_process *proc)
{
    close_all(proc->fds, proc->n);
    for (size_t i = 0; i < proc->n; i++)
        free(proc->tenants[i]);
    free(proc->tenants);
    free(proc->fds);
    free(proc->socket_path);
    if (proc->pid > 0) {
        int status;
        while (waitpid(proc->pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    memset(proc, 0, sizeof(*proc));
}

static int unaudited_allowed;

void ks_signer_allow_unaudited(void)
{
    unaudited_allowed = 1;
}

/* ---------------------------------------------------------- requests */

/* One request and its answer on s->fd.  Returns 0 with *reply, -1 with
 * err, or KS_PROTO_CLOSED when the signer had closed the connection before
 * answering (nothing is known of the request: the caller may ask again on
 * a new connection). */
static int exchange(ks_signer *s, json_object *req, json_object **reply, ks_err *err)
{
    if (s->broken)
        return ks_fail(err, "an earlier request to the signer for tenant \"%s\" went "
                            "unanswered; nothing more is asked on that connection",
                       s->tenant);
    int rc = ks_proto_send(s->fd, req, 1, err);
    if (rc == KS_PROTO_CLOSED)
        return rc;
    if (rc == 0)
        rc = ks_proto_recv(s->fd, reply, 1, err);
    if (rc == 0) {
        ks_fail(err, "the signer closed the connection (see its log)");
        return KS_PROTO_CLOSED;
    }
    if (rc < 0)
        s->broken = 1;
    return rc < 0 ? -1 : 0;
}

static int reopen(ks_signer *s, ks_err *err);
static int check_reply(json_object **reply, ks_err *err);

/* Sends a request and reads its reply; a reply with "ok": false becomes
 * an error carrying the signer's text.  A standalone signer that closed
 * the connection is reconnected to, and asked once more (every operation
 * may be repeated: a key's CKA_ID is chosen before it is made, and a second
 * generate of it is refused).  *reply newly parsed (caller puts). */
static int call(ks_signer *s, json_object *req, json_object **reply, ks_err *err)
{
    *reply = NULL;
    json_object_object_add(req, "tenant", json_object_new_string(s->tenant));
    int rc = exchange(s, req, reply, err);
    if (rc == KS_PROTO_CLOSED && s->proc != NULL && s->proc->socket_path != NULL) {
        ks_info("tenant \"%s\": the signer closed the connection; connecting again", s->tenant);
        rc = reopen(s, err) < 0 ? -1 : exchange(s, req, reply, err);
    }
    json_object_put(req);
    if (rc != 0) {
        s->broken = 1;
        return -1;
    }
    return check_reply(reply, err);
}

static json_object *request(const char *op)
{
    json_object *req = json_object_new_object();
    json_object_object_add(req, "op", json_object_new_string(op));
    return req;
}

static json_object *key_request(const char *op, const ks_keyref *ref)
{
    json_object *req = request(op), *key = json_object_new_object();
    json_object_object_add(key, "serial", json_object_new_string(ref->token_serial));
    ks_proto_add_hex(key, "id", ref->id, ref->id_len);
    json_object_object_add(req, "key", key);
    return req;
}

/* Audit around one operation: begin (which may refuse), then the call,
 * then the outcome. */
static int audited_call(ks_signer *s, const ks_keyref *ref, const char *op, json_object *req,
                        json_object **reply, ks_err *err)
{
    long long event = 0;
    if (s->audit.begin == NULL && !unaudited_allowed) {
        json_object_put(req);
        return ks_fail(err, "%s refused: no audit trail is attached to tenant \"%s\"", op,
                       s->tenant);
    }
    if (s->audit.begin != NULL &&
        s->audit.begin(s->audit.ctx, s->tenant, ref, op, &event, err) < 0) {
        json_object_put(req);
        return ks_failp(err, "%s not made: its audit event could not be recorded", op);
    }
    int rc = call(s, req, reply, err);
    if (s->audit.end != NULL)
        s->audit.end(s->audit.ctx, event, rc == 0, rc == 0 ? NULL : err->msg);
    return rc;
}

static int copy_token_info(hsm_token_info *out, json_object *token, ks_err *err)
{
    const char *label, *serial, *manufacturer, *model;
    if (ks_proto_string(token, "label", &label, err) < 0 ||
        ks_proto_string(token, "serial", &serial, err) < 0 ||
        ks_proto_string(token, "manufacturer", &manufacturer, err) < 0 ||
        ks_proto_string(token, "model", &model, err) < 0)
        return -1;
    snprintf(out->label, sizeof(out->label), "%s", label);
    snprintf(out->serial, sizeof(out->serial), "%s", serial);
    snprintf(out->manufacturer, sizeof(out->manufacturer), "%s", manufacturer);
    snprintf(out->model, sizeof(out->model), "%s", model);
    return 0;
}

/* A reply with "ok": false becomes an error carrying the signer's text
 * (the reply is put and *reply cleared). */
static int check_reply(json_object **reply, ks_err *err)
{
    json_object *v = NULL;
    if (json_object_object_get_ex(*reply, "ok", &v) && json_object_get_boolean(v))
        return 0;
    const char *msg = "no reason given";
    ks_proto_string(*reply, "error", &msg, NULL);
    ks_fail(err, "signer: %s", msg);
    json_object_put(*reply);
    *reply = NULL;
    return -1;
}

/* "open" on s->fd: the signer logs into the tenant's token and names it. */
static int open_tenant(ks_signer *s, hsm_token_info *info, ks_err *err)
{
    json_object *req = request(KS_OP_OPEN), *reply = NULL, *token = NULL;
    json_object_object_add(req, "tenant", json_object_new_string(s->tenant));
    int rc = exchange(s, req, &reply, err);
    json_object_put(req);
    if (rc != 0 || check_reply(&reply, err) < 0)
        return -1;
    rc = json_object_object_get_ex(reply, "token", &token) ? copy_token_info(info, token, err)
                                                            : -1;
    json_object_put(reply);
    return rc < 0 ? ks_fail(err, "signer: malformed answer to open") : 0;
}

/* A new connection to the standalone signer, opened for the same token. */
static int reopen(ks_signer *s, ks_err *err)
{
    hsm_token_info info;
    int fd = reconnect(s->proc, s->tenant, err);
    if (fd < 0)
        return -1;
    s->fd = fd;
    s->broken = 0;
    if (open_tenant(s, &info, err) < 0)
        return -1;
    if (strcmp(info.serial, s->token.serial) != 0)
        return ks_fail(err, "the signer now serves token serial %s for tenant \"%s\", not %s",
                       info.serial, s->tenant, s->token.serial);
    return 0;
}

ks_signer *ks_signer_open(int fd, const char *tenant, ks_err *err)
{
    ks_signer *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->tenant = strdup(tenant)) == NULL) {
        free(s);
        ks_fail(err, "out of memory");
        return NULL;
    }
    s->fd = fd;
    if (open_tenant(s, &s->token, err) < 0) {
        ks_signer_close(s);
        return NULL;
    }
    return s;
}

ks_signer *ks_signer_open_process(ks_signer_process *proc, const char *tenant, ks_err *err)
{
    int fd = ks_signer_process_fd(proc, tenant, err);
    ks_signer *s = fd >= 0 ? ks_signer_open(fd, tenant, err) : NULL;
    if (s != NULL)
        s->proc = proc;
    return s;
}

void ks_signer_close(ks_signer *s)
{
    if (s == NULL)
        return;
    free(s->tenant);
    free(s);
}

const char *ks_signer_tenant(const ks_signer *s)
{
    return s->tenant;
}

const hsm_token_info *ks_signer_token(const ks_signer *s)
{
    return &s->token;
}

void ks_signer_set_audit(ks_signer *s, const ks_audit_hooks *hooks)
{
    if (hooks != NULL)
        s->audit = *hooks;
    else
        memset(&s->audit, 0, sizeof(s->audit));
}

int ks_signer_new_keyref(ks_signer *s, ks_key_purpose purpose, ks_keyref *out, ks_err *err)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->token_serial, sizeof(out->token_serial), "%s", s->token.serial);
    out->id[0] = purpose == KS_PURPOSE_ACCOUNT ? KS_KEY_PURPOSE_ACCOUNT : KS_KEY_PURPOSE_CERTIFICATE;
    if (RAND_bytes(out->id + 1, HSM_KEY_ID_LEN - 1) != 1)
        return ks_fail_openssl(err, "random CKA_ID");
    out->id_len = HSM_KEY_ID_LEN;
    return 0;
}

static void add_spec(json_object *req, const hsm_key_spec *spec)
{
    json_object *js = json_object_new_object();
    if (spec->kind == HSM_KEY_RSA) {
        json_object_object_add(js, "kind", json_object_new_string("rsa"));
        json_object_object_add(js, "bits", json_object_new_int((int)spec->rsa_bits));
    } else if (spec->kind == HSM_KEY_ED25519) {
        json_object_object_add(js, "kind", json_object_new_string("ed25519"));
    } else {
        const char *curve = spec->ec_nid == NID_X9_62_prime256v1 ? "secp256r1"
                                                                  : OBJ_nid2sn(spec->ec_nid);
        json_object_object_add(js, "kind", json_object_new_string("ec"));
        json_object_object_add(js, "curve", json_object_new_string(curve ? curve : "?"));
    }
    json_object_object_add(req, "spec", js);
}

int ks_signer_generate(ks_signer *s, const ks_keyref *ref, const hsm_key_spec *spec,
                       const char *label, ks_err *err)
{
    json_object *req = key_request(KS_OP_GENERATE, ref), *reply = NULL;
    const char *purpose =
        ref->id[0] == KS_KEY_PURPOSE_ACCOUNT ? "account" : "certificate";
    json_object_object_add(req, "purpose", json_object_new_string(purpose));
    json_object_object_add(req, "label", json_object_new_string(label));
    add_spec(req, spec);
    int rc = audited_call(s, ref, "generate", req, &reply, err);
    json_object_put(reply);
    return rc;
}

int ks_signer_public_key(ks_signer *s, const ks_keyref *ref, EVP_PKEY **out, ks_err *err)
{
    json_object *reply = NULL;
    unsigned char *der = NULL;
    size_t len = 0;
    *out = NULL;
    if (call(s, key_request(KS_OP_PUBLIC_KEY, ref), &reply, err) < 0)
        return -1;
    if (ks_proto_b64(reply, "spki", &der, &len, err) == 0) {
        const unsigned char *p = der;
        *out = d2i_PUBKEY(NULL, &p, (long)len);
        if (*out == NULL)
            ks_fail_openssl(err, "signer: malformed public key");
    }
    free(der);
    json_object_put(reply);
    return *out ? 0 : -1;
}

static int take_signature(json_object *reply, unsigned char **sig, size_t *sig_len, ks_err *err)
{
    int rc = ks_proto_b64(reply, "sig", sig, sig_len, err);
    json_object_put(reply);
    return rc;
}

int ks_signer_sign_jws(ks_signer *s, const ks_keyref *ref, const char *alg,
                       const unsigned char *input, size_t len, unsigned char **sig,
                       size_t *sig_len, ks_err *err)
{
    json_object *req = key_request(KS_OP_SIGN_JWS, ref), *reply = NULL;
    json_object_object_add(req, "alg", json_object_new_string(alg));
    ks_proto_add_b64(req, "input", input, len);
    *sig = NULL;
    if (audited_call(s, ref, "sign_jws", req, &reply, err) < 0)
        return -1;
    return take_signature(reply, sig, sig_len, err);
}

int ks_signer_sign_csr(ks_signer *s, const ks_keyref *ref, int md_nid, const unsigned char *tbs,
                       size_t len, unsigned char **sig, size_t *sig_len, ks_err *err)
{
    json_object *req = key_request(KS_OP_SIGN_CSR, ref), *reply = NULL;
    const char *md = OBJ_nid2sn(md_nid);
    json_object_object_add(req, "md", json_object_new_string(md ? md : "?"));
    ks_proto_add_b64(req, "tbs", tbs, len);
    *sig = NULL;
    if (audited_call(s, ref, "sign_csr", req, &reply, err) < 0)
        return -1;
    return take_signature(reply, sig, sig_len, err);
}

int ks_signer_key_exists(ks_signer *s, const ks_keyref *ref, ks_err *err)
{
    json_object *reply = NULL, *v = NULL;
    if (call(s, key_request(KS_OP_EXISTS, ref), &reply, err) < 0)
        return -1;
    int rc = json_object_object_get_ex(reply, "exists", &v) &&
                     json_object_is_type(v, json_type_boolean)
                 ? json_object_get_boolean(v)
                 : ks_fail(err, "signer: malformed answer to exists");
    json_object_put(reply);
    return rc;
}

/* Appends one reply page's IDs; *last gets the last one for the next page. */
static int append_page(ks_signer *s, json_object *keys, ks_keyref **refs, size_t *n,
                       size_t *cap, ks_keyref *last, ks_err *err)
{
    size_t count = json_object_array_length(keys);
    for (size_t i = 0; i < count; i++) {
        ks_keyref ref = {0};
        snprintf(ref.token_serial, sizeof(ref.token_serial), "%s", s->token.serial);
        if (ks_proto_hex_value(json_object_array_get_idx(keys, i), "keys[]", ref.id,
                               sizeof(ref.id), &ref.id_len, err) < 0)
            return -1;
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 64;
            ks_keyref *grown = realloc(*refs, ncap * sizeof(*grown));
            if (grown == NULL)
                return ks_fail(err, "out of memory");
            *refs = grown;
            *cap = ncap;
        }
        (*refs)[(*n)++] = ref;
        *last = ref;
    }
    return 0;
}

int ks_signer_list_keys(ks_signer *s, ks_keyref **refs, size_t *n, ks_err *err)
{
    size_t cap = 0;
    ks_keyref last = {0};
    int more = 1, rc = 0;
    *refs = NULL;
    *n = 0;
    while (more && rc == 0) {
        json_object *req = request(KS_OP_LIST), *reply = NULL, *keys = NULL, *m = NULL;
        if (last.id_len > 0)
            ks_proto_add_hex(req, "after", last.id, last.id_len);
        rc = call(s, req, &reply, err);
        if (rc == 0 && (!json_object_object_get_ex(reply, "keys", &keys) ||
                        !json_object_is_type(keys, json_type_array) ||
                        !json_object_object_get_ex(reply, "more", &m)))
            rc = ks_fail(err, "signer: malformed answer to list");
        if (rc == 0)
            rc = append_page(s, keys, refs, n, &cap, &last, err);
        more = rc == 0 && json_object_get_boolean(m) && json_object_array_length(keys) > 0;
        json_object_put(reply);
    }
    if (rc < 0) {
        free(*refs);
        *refs = NULL;
        *n = 0;
    }
    return rc;
}

int ks_signer_destroy(ks_signer *s, const ks_keyref *ref, ks_err *err)
{
    json_object *reply = NULL;
    int rc = audited_call(s, ref, "destroy", key_request(KS_OP_DESTROY, ref), &reply, err);
    json_object_put(reply);
    return rc;
}

int ks_signer_get_stats(ks_signer *s, ks_signer_stats *out, ks_err *err)
{
    json_object *reply = NULL, *v = NULL;
    if (call(s, request(KS_OP_STATS), &reply, err) < 0)
        return -1;
    int rc = 0;
    if (json_object_object_get_ex(reply, "recoveries", &v) && json_object_is_type(v, json_type_int))
        out->recoveries = (long)json_object_get_int64(v);
    else
        rc = -1;
    if (json_object_object_get_ex(reply, "logins", &v) && json_object_is_type(v, json_type_int))
        out->logins = (long)json_object_get_int64(v);
    else
        rc = -1;
    json_object_put(reply);
    return rc == 0 ? 0 : ks_fail(err, "signer: malformed answer to stats");
}
