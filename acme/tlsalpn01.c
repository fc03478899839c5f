#include "tlsalpn01.h"

#include "ks_log.h"
#include "ks_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* RFC 8737 section 6.1 (the ALPN name) and 6.2 (id-pe-acmeIdentifier). */
#define ACME_TLS_ALPN "acme-tls/1"
#define ACME_IDENTIFIER_OID "1.3.6.1.5.5.7.1.31"

/* A key authorization is a token and a JWK thumbprint (43 characters);
 * anything this long is not one. */
#define KEY_AUTHZ_MAX 512

/* How long stop waits for the child before it kills it; a child under
 * valgrind needs a moment for its leak check. */
#define STOP_WAIT_MS 5000

/* How long start waits for the child to make its keys and certificates:
 * ample for ACME_TLSALPN_MAX_CHALLENGES under valgrind.  A child that takes
 * longer is stuck, and the worker must not wait on it for ever. */
#define START_WAIT_MS 30000

struct acme_tlsalpn_responder {
    pid_t pid;
    int port;
    int sync_fd; /* read end of the child's pipe; closing it also ends the child */
};

typedef struct ip_literal {
    int family; /* AF_INET, AF_INET6, or 0 for a DNS name */
    unsigned char bytes[16];
    size_t len;
} ip_literal;

/* One identifier to answer for.  The strings and digest are made in the
 * parent; key and cert only in the child. */
typedef struct tlsalpn_cert {
    char *identifier; /* as given (already checked to be printable) */
    char *sni;        /* the name the validator sends; lower case */
    ip_literal ip;
    unsigned char digest[32]; /* SHA-256 of the key authorization */
    EVP_PKEY *key;
    X509 *cert;
} tlsalpn_cert;

typedef struct tlsalpn_set {
    tlsalpn_cert *c;
    size_t n;
} tlsalpn_set;

/* ---- identifiers and key authorizations -------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_ldh(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-';
}

static int is_b64url_char(char c)
{
    return is_ldh(c) || c == '_';
}

/* Letters, digits and inner hyphens, labels of 1..63, at most 253 in all.
 * A numeric last label is refused: "1.2.3" is a mistyped address, not a
 * name a CA would validate. */
static int is_dns_name(const char *s)
{
    size_t len = strlen(s), label = 0;
    int numeric = 1;
    if (len == 0 || len > 253)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return 0;
            if (c == '\0')
                return !numeric;
            label = 0;
            numeric = 1;
            continue;
        }
        if (!is_ldh(c) || (label == 0 && c == '-'))
            return 0;
        numeric = numeric && is_digit(c);
        label++;
    }
    return 0;
}

static int parse_ip(const char *s, ip_literal *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (inet_pton(AF_INET, s, ip->bytes) == 1) {
        ip->family = AF_INET;
        ip->len = 4;
    } else if (inet_pton(AF_INET6, s, ip->bytes) == 1) {
        ip->family = AF_INET6;
        ip->len = 16;
    }
    return ip->family != 0;
}

/* RFC 8738 section 6: "4.3.2.1.in-addr.arpa", or 32 nibbles, least
 * significant first, under "ip6.arpa". */
static char *reverse_name_new(const ip_literal *ip)
{
    static const char hex[] = "0123456789abcdef";
    char buf[80];
    size_t o = 0;
    for (size_t i = ip->len; i-- > 0;) {
        unsigned b = ip->bytes[i];
        if (ip->family == AF_INET) {
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%u.", b);
        } else {
            buf[o++] = hex[b & 0xf];
            buf[o++] = '.';
            buf[o++] = hex[b >> 4];
            buf[o++] = '.';
        }
    }
    snprintf(buf + o, sizeof(buf) - o, "%s", ip->family == AF_INET ? "in-addr.arpa" : "ip6.arpa");
    return strdup(buf);
}

static char *lower_dup(const char *s)
{
    char *out = strdup(s);
    for (char *p = out; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return out;
}

/* The SNI name for `identifier`, and its address when it is an IP literal. */
static char *sni_for(const char *identifier, ip_literal *ip, ks_err *err)
{
    char *sni = NULL;
    if (identifier == NULL) {
        ks_fail(err, "no identifier");
        return NULL;
    }
    if (parse_ip(identifier, ip)) {
        sni = reverse_name_new(ip);
    } else if (is_dns_name(identifier)) {
        sni = lower_dup(identifier);
    } else {
        /* It came from the CA: escaped before it reaches a message. */
        char *esc = ks_escape_new(identifier, (size_t)-1);
        ks_fail(err, "\"%s\" is neither a DNS name nor an IP address", esc ? esc : "?");
        free(esc);
        return NULL;
    }
    if (sni == NULL)
        ks_fail(err, "out of memory");
    return sni;
}

char *acme_tlsalpn_sni_new(const char *identifier, ks_err *err)
{
    ip_literal ip;
    return sni_for(identifier, &ip, err);
}

/* base64url "." base64url, both parts non-empty. */
static int is_key_authorization(const char *ka)
{
    if (ka == NULL || strnlen(ka, KEY_AUTHZ_MAX + 1) > KEY_AUTHZ_MAX)
        return 0;
    const char *dot = strchr(ka, '.');
    if (dot == NULL || dot == ka || dot[1] == '\0')
        return 0;
    for (const char *p = ka; *p; p++)
        if (p != dot && !is_b64url_char(*p))
            return 0;
    return 1;
}

/* ---- the set of certificates to serve --------------------------------- */

static void set_free(tlsalpn_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->c[i].identifier);
        free(set->c[i].sni);
        X509_free(set->c[i].cert);
        EVP_PKEY_free(set->c[i].key);
    }
    free(set->c);
    free(set);
}

static tlsalpn_cert *set_find(const tlsalpn_set *set, const char *sni)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcasecmp(set->c[i].sni, sni) == 0)
            return &set->c[i];
    return NULL;
}

/* Checks one challenge and fills *c with what the child needs from it. */
static int cert_init(tlsalpn_cert *c, const acme_tlsalpn_challenge *ch, ks_err *err)
{
    c->sni = sni_for(ch->identifier, &c->ip, err);
    if (c->sni == NULL)
        return -1;
    c->identifier = strdup(ch->identifier);
    if (c->identifier == NULL)
        return ks_fail(err, "out of memory");
    if (!is_key_authorization(ch->key_authorization))
        return ks_fail(err, "%s: the key authorization is not base64url \".\" base64url",
                       c->identifier);
    if (EVP_Digest(ch->key_authorization, strlen(ch->key_authorization), c->digest, NULL,
                   EVP_sha256(), NULL) != 1)
        return ks_fail_openssl(err, "SHA-256");
    return 0;
}

/* A copy of the challenges, checked; NULL with err set. */
static tlsalpn_set *set_new(const acme_tlsalpn_challenge *ch, size_t n, ks_err *err)
{
    if (ch == NULL || n == 0 || n > ACME_TLSALPN_MAX_CHALLENGES) {
        ks_fail(err, "%zu challenges (1 to %d can be served)", ch ? n : 0,
                ACME_TLSALPN_MAX_CHALLENGES);
        return NULL;
    }
    tlsalpn_set *set = calloc(1, sizeof(*set));
    if (set == NULL || (set->c = calloc(n, sizeof(*set->c))) == NULL) {
        ks_fail(err, "out of memory");
        free(set);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        set->n = i + 1;
        if (cert_init(&set->c[i], &ch[i], err) < 0)
            goto fail;
        /* Two certificates for one SNI name: which one the CA sees is luck. */
        if (set_find(set, set->c[i].sni) != &set->c[i]) {
            ks_fail(err, "%s is listed twice", set->c[i].identifier);
            goto fail;
        }
    }
    return set;
fail:
    set_free(set);
    return NULL;
}

/* ---- certificates (in the child) --------------------------------------- */

/* Random, so that certificates with the same issuer name never share one. */
static int set_serial(X509 *x)
{
    uint64_t v;
    if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
        return -1;
    return ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), (v >> 1) | 1) == 1 ? 0 : -1;
}

/* The name is fixed: a CN cannot hold a 253-character DNS name, and the
 * validator looks only at the subjectAltName. */
static int set_names_and_validity(X509 *x)
{
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"ACME tls-alpn-01 challenge", -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, name) != 1)
        return -1;
    /* An hour back for clocks that are behind; the certificate lives only
     * as long as the child anyway. */
    if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 7L * 24 * 3600) == NULL)
        return -1;
    return 0;
}

/* The one GENERAL_NAME of the certificate: dNSName, or iPAddress. */
static GENERAL_NAME *general_name_new(const tlsalpn_cert *c)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_STRING *value = c->ip.family ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
    int ok = gn != NULL && value != NULL &&
             (c->ip.family ? ASN1_OCTET_STRING_set(value, c->ip.bytes, (int)c->ip.len)
                           : ASN1_STRING_set(value, c->sni, -1)) == 1;
    if (!ok) {
        ASN1_STRING_free(value);
        GENERAL_NAME_free(gn);
        return NULL;
    }
    GENERAL_NAME_set0_value(gn, c->ip.family ? GEN_IPADD : GEN_DNS, value); /* gn owns it */
    return gn;
}

static int add_subject_alt_name(X509 *x, const tlsalpn_cert *c)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn = general_name_new(c);
    int rc = -1;
    if (names == NULL || gn == NULL || sk_GENERAL_NAME_push(names, gn) <= 0) {
        GENERAL_NAME_free(gn);
        goto out;
    }
    rc = X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1 ? 0 : -1;
out:
    GENERAL_NAMES_free(names);
    return rc;
}

/* RFC 8737 section 3: critical, and its extnValue is the DER of an OCTET
 * STRING holding the digest (so the digest is wrapped twice). */
static int add_acme_identifier(X509 *x, const unsigned char *digest)
{
    ASN1_OBJECT *oid = OBJ_txt2obj(ACME_IDENTIFIER_OID, 1);
    ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    unsigned char *der = NULL;
    int der_len = -1, rc = -1;
    if (oid == NULL || inner == NULL || value == NULL ||
        ASN1_OCTET_STRING_set(inner, digest, 32) != 1 ||
        (der_len = i2d_ASN1_OCTET_STRING(inner, &der)) <= 0 ||
        ASN1_OCTET_STRING_set(value, der, der_len) != 1)
        goto out;
    ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, value);
    if (ext != NULL && X509_add_ext(x, ext, -1) == 1)
        rc = 0;
out:
    X509_EXTENSION_free(ext);
    OPENSSL_free(der);
    ASN1_OCTET_STRING_free(value);
    ASN1_OCTET_STRING_free(inner);
    ASN1_OBJECT_free(oid);
    return rc;
}

static X509 *cert_new(const tlsalpn_cert *c, EVP_PKEY *key)
{
    X509 *x = X509_new();
    if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 || set_serial(x) < 0 ||
        set_names_and_validity(x) < 0 || X509_set_pubkey(x, key) != 1 ||
        add_subject_alt_name(x, c) < 0 || add_acme_identifier(x, c->digest) < 0 ||
        X509_sign(x, key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* A throwaway P-256 key and a self-signed certificate for every entry. */
static int set_make_certs(tlsalpn_set *set, ks_err *err)
{
    for (size_t i = 0; i < set->n; i++) {
        tlsalpn_cert *c = &set->c[i];
        c->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (c->key == NULL || (c->cert = cert_new(c, c->key)) == NULL) {
            ks_fail_openssl(err, "making the certificate");
            return ks_failp(err, "%s", c->identifier);
        }
    }
    return 0;
}

/* ---- TLS (in the child) ------------------------------------------------- */

/* The ALPN callback is not called at all for a ClientHello without ALPN;
 * RFC 8737 wants that handshake refused too, so it is refused here. */
static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    const unsigned char *ext;
    size_t len;
    (void)arg;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                  &len) == 1)
        return SSL_CLIENT_HELLO_SUCCESS;
    *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
}

/* acme-tls/1 or nothing: never complete a handshake for another protocol.
 * `in` is the client's list, already checked for form by OpenSSL. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const char want[] = ACME_TLS_ALPN;
    (void)ssl;
    (void)arg;
    for (unsigned int i = 0; i < inlen; i += 1u + in[i]) {
        unsigned int plen = in[i];
        if (i + 1 + plen <= inlen && plen == sizeof(want) - 1 &&
            memcmp(in + i + 1, want, plen) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)plen;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol */
}

/* Chooses the certificate by SNI; a missing or unknown name ends the
 * handshake (the default context has no certificate to fall back on). */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    const tlsalpn_set *set = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    tlsalpn_cert *c = name ? set_find(set, name) : NULL;
    if (c == NULL) {
        char *esc = name ? ks_escape_new(name, (size_t)-1) : NULL;
        ks_debug("tls-alpn-01: refusing SNI %s", esc ? esc : "(none)");
        free(esc);
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (SSL_use_cert_and_key(ssl, c->cert, c->key, NULL, 1) != 1) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    SSL_set_app_data(ssl, c); /* for the log line once the handshake is done */
    return SSL_TLSEXT_ERR_OK;
}

/* TLS 1.2 and 1.3; no session resumption, so every validation sees the
 * certificate its SNI selects. */
static SSL_CTX *server_ctx_new(tlsalpn_set *set, ks_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_num_tickets(ctx, 0) != 1) {
        ks_fail_openssl(err, "TLS context");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_client_hello_cb(ctx, on_client_hello, NULL);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, set);
    return ctx;
}

/* ---- serving (in the child) --------------------------------------------- */

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* The worker's handlers would run the worker's logic in this copy of it, so
 * none is kept.  SIGTERM stops the child; it stays blocked (as it was since
 * before fork, so none is lost) except inside ppoll.  SIGPIPE: a client that
 * hangs up must not kill the responder.  SIGINT and SIGHUP from a terminal
 * are the worker's to act on; it stops us, or its exit does. */
static void child_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_stop_signal;
    (void)sigaction(SIGTERM, &sa, NULL);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    (void)sigprocmask(SIG_SETMASK, &term, NULL);
}

static void close_span(int first, int last)
{
    if (first < 3)
        first = 3;
    if (first > last)
        return;
    if (close_range((unsigned)first, (unsigned)last, 0) == 0)
        return;
    /* Kernels before 5.9: one by one, up to a sane bound. */
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = first; fd <= last && fd < max; fd++)
        (void)close(fd);
}

/* fork copied every descriptor of the worker (its CA connection, database
 * and token sockets, other responders' pipes).  Without an exec, close-on-
 * exec does nothing, so they are closed here: the child must not keep a
 * peer waiting on a connection the worker closed.  stdin/out/err stay. */
static void close_fds_except(int a, int b)
{
    int lo = a < b ? a : b, hi = a < b ? b : a;
    close_span(3, lo - 1);
    close_span(lo + 1, hi - 1);
    close_span(hi + 1, INT_MAX);
}

/* ppoll with every signal open, so SIGTERM interrupts any wait.  ppoll
 * runs the handler only when it had to wait: when a descriptor is ready at
 * once (a client always waiting, a listener stuck in POLLIN) it returns with
 * SIGTERM still pending and blocked, so that is looked for too, or a busy
 * responder would never stop. */
static int poll_open(struct pollfd *p, nfds_t n, long long timeout_ms)
{
    sigset_t none, pending;
    sigemptyset(&none);
    struct timespec ts = {.tv_sec = (time_t)(timeout_ms / 1000),
                          .tv_nsec = (long)(timeout_ms % 1000) * 1000000L};
    int rc = ppoll(p, n, timeout_ms < 0 ? NULL : &ts, &none);
    int saved = errno;
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGTERM) == 1)
        stop_requested = 1;
    errno = saved;
    return rc;
}

/* Waits until fd is ready for `events`, the deadline passes or we stop. */
static int wait_fd(int fd, short events, long long deadline, ks_err *err)
{
    for (;;) {
        if (stop_requested)
            return ks_fail(err, "stopping");
        long long left = deadline - ks_now_ms();
        if (left <= 0)
            return ks_fail(err, "timed out after %d ms", ACME_TLSALPN_CONN_TIMEOUT_MS);
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll_open(&p, 1, left);
        if (n > 0)
            return 0; /* also on POLLHUP/POLLERR: SSL_accept tells what happened */
        if (n < 0 && errno != EINTR)
            return ks_fail(err, "poll: %s", strerror(errno));
    }
}

static int handshake(SSL *ssl, int fd, long long deadline, ks_err *err)
{
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_accept(ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, err) < 0)
                return -1;
        } else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
            return ks_fail(err, "%s", errno ? strerror(errno) : "the client closed the connection");
        } else {
            return ks_fail_openssl(err, "TLS");
        }
    }
}

static void describe_peer(const struct sockaddr_storage *ss, char *buf, size_t size)
{
    const void *a = ss->ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
    if (inet_ntop(ss->ss_family, a, buf, (socklen_t)size) == NULL)
        snprintf(buf, size, "?");
}

/* One client, start to end of handshake, within the connection deadline. */
static void serve_one(SSL_CTX *ctx, int listen_fd)
{
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    /* Non-blocking: the client may be gone again by the time we accept. */
    int fd = accept4(listen_fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    long long deadline = ks_now_ms() + ACME_TLSALPN_CONN_TIMEOUT_MS;
    char who[INET6_ADDRSTRLEN];
    describe_peer(&peer, who, sizeof(who));
    ks_err err = {0};
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        ks_fail_openssl(&err, "TLS connection");
        ks_warn("tls-alpn-01: %s: %s", who, err.msg);
    } else if (handshake(ssl, fd, deadline, &err) < 0) {
        ks_debug("tls-alpn-01: handshake with %s failed: %s", who, err.msg);
    } else {
        const tlsalpn_cert *c = SSL_get_app_data(ssl);
        ks_info("tls-alpn-01: answered %s for %s", who, c ? c->identifier : "?");
        (void)SSL_shutdown(ssl); /* close_notify, if it fits; no waiting for the reply */
    }
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
}

/* Until SIGTERM, or until the parent is gone: the write end of a pipe
 * reports POLLERR once its read end has closed everywhere. */
static int serve(SSL_CTX *ctx, int listen_fd, int sync_fd)
{
    while (!stop_requested) {
        struct pollfd p[2] = {{.fd = listen_fd, .events = POLLIN}, {.fd = sync_fd, .events = 0}};
        int n = poll_open(p, 2, -1);
        if (n < 0 && errno != EINTR) {
            ks_error("tls-alpn-01: poll: %s", strerror(errno));
            return 1;
        }
        if (n <= 0 || stop_requested)
            continue;
        if (p[1].revents & (POLLERR | POLLHUP)) {
            ks_info("tls-alpn-01: the worker is gone; responder stops");
            return 0;
        }
        if (p[0].revents & POLLIN)
            serve_one(ctx, listen_fd);
    }
    return 0;
}

/* Tells the parent that the child is ready (msg empty) or why it is not.
 * One write of at most PIPE_BUF bytes: it arrives whole or not at all. */
_Static_assert(sizeof(ks_err) <= PIPE_BUF, "the child's report must be one atomic write");

static int report(int sync_fd, const ks_err *why)
{
    ks_err msg = {0};
    if (why != NULL)
        memcpy(&msg, why, sizeof(msg));
    ssize_t n;
    do {
        n = write(sync_fd, &msg, sizeof(msg));
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(msg) ? 0 : -1;
}

static void log_serving(const tlsalpn_set *set, int port)
{
    for (size_t i = 0; i < set->n; i++) {
        if (set->c[i].ip.family)
            ks_info("tls-alpn-01: serving %s (SNI %s) on port %d", set->c[i].identifier,
                    set->c[i].sni, port);
        else
            ks_info("tls-alpn-01: serving %s on port %d", set->c[i].identifier, port);
    }
}

/* The child never returns into the worker's code: it ends in _exit, which
 * also keeps it from running the worker's atexit handlers and flushing
 * stdio buffers it inherited. */
static _Noreturn void child_main(tlsalpn_set *set, int listen_fd, int sync_fd, int port)
{
    child_signals();
    close_fds_except(listen_fd, sync_fd);
    ks_err err = {0};
    int status = 1;
    SSL_CTX *ctx = NULL;
    if (set_make_certs(set, &err) < 0 || (ctx = server_ctx_new(set, &err)) == NULL) {
        (void)report(sync_fd, &err);
    } else {
        log_serving(set, port);
        if (report(sync_fd, NULL) == 0)
            status = serve(ctx, listen_fd, sync_fd);
    }
    SSL_CTX_free(ctx);
    set_free(set);
    close(listen_fd);
    close(sync_fd);
    _exit(status);
}

/* ---- the parent's side ------------------------------------------------- */

static int sockaddr_for(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (addr != NULL && inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof(*v4);
    } else if (addr != NULL && inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*v6);
    } else {
        return -1;
    }
    return 0;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

/* socket, SO_REUSEADDR, bind, listen; -1 with errno and the failed step. */
static int open_listener(const struct sockaddr_storage *ss, socklen_t len, const char **step)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        *step = "socket";
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        *step = "SO_REUSEADDR";
    else if (bind(fd, (const struct sockaddr *)ss, len) < 0)
        *step = "bind";
    else if (listen(fd, 32) < 0)
        *step = "listen";
    else
        return fd;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    errno = saved;
    return -1;
}

/* The listening socket, made before the fork so that the caller hears of an
 * address in use.  SO_REUSEADDR: a responder started again right after the
 * last one must not wait for its connections' TIME_WAIT.  Non-blocking for
 * accept (see serve_one); a backlog, since validators from several vantage
 * points connect at once.  Returns the descriptor; *port becomes the port. */
static int listen_on(const char *addr, int *port, ks_err *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *step = "";
    if (*port < 0 || *port > 65535)
        return ks_fail(err, "port %d out of range", *port);
    if (sockaddr_for(addr, *port, &ss, &len) < 0) {
        char *esc = addr ? ks_escape_new(addr, (size_t)-1) : NULL;
        ks_fail(err, "\"%s\" is not a numeric IP address", esc ? esc : "(null)");
        free(esc);
        return -1;
    }
    int fd = open_listener(&ss, len, &step);
    if (fd < 0)
        return ks_fail(err, "cannot listen on %s port %d: %s: %s", addr, *port, step,
                       strerror(errno));
    *port = bound_port(fd);
    if (*port <= 0) {
        close(fd);
        return ks_fail(err, "%s: getsockname: %s", addr, strerror(errno));
    }
    return fd;
}

/* Reads len bytes from fd before the deadline: 0, or -1 with err set. */
static int read_within(int fd, void *buf, size_t len, long long deadline, ks_err *err)
{
    size_t got = 0;
    while (got < len) {
        long long left = deadline - ks_now_ms();
        if (left <= 0)
            return ks_fail(err, "the responder process was not ready within %d ms", START_WAIT_MS);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno != EINTR)
            return ks_fail(err, "poll: %s", strerror(errno));
        if (n <= 0)
            continue;
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ks_fail(err, "reading from the responder process: %s", strerror(errno));
        if (r == 0)
            return ks_fail(err, "the responder process ended before it was ready");
        got += (size_t)r;
    }
    return 0;
}

/* Reads the child's report: 0 once it is ready, -1 with its reason. */
static int await_child(int fd, ks_err *err)
{
    ks_err msg = {0};
    if (read_within(fd, &msg, sizeof(msg), ks_now_ms() + START_WAIT_MS, err) < 0)
        return -1;
    msg.msg[sizeof(msg.msg) - 1] = '\0';
    return msg.msg[0] ? ks_fail(err, "%s", msg.msg) : 0;
}

/* waitpid, for at most wait_ms before SIGKILL; 0 with *status, or -1 when
 * there is no such child (the caller ignored SIGCHLD). */
static int reap(pid_t pid, long long wait_ms, int *status)
{
    long long deadline = ks_now_ms() + wait_ms;
    for (;;) {
        pid_t got = waitpid(pid, status, WNOHANG);
        if (got == pid)
            return 0;
        if (got < 0 && errno != EINTR)
            return -1;
        if (got == 0 && ks_now_ms() >= deadline) {
            ks_warn("tls-alpn-01 responder (pid %d) did not stop; killing it", (int)pid);
            (void)kill(pid, SIGKILL);
            deadline = LLONG_MAX;
        }
        if (got == 0)
            ks_sleep_ms(10);
    }
}

/* SIGTERM, then reap (SIGKILL after STOP_WAIT_MS).  The pid is still our
 * unreaped child, so it cannot have been reused even if it has exited.
 * Returns the wait status, or -1 when there was none to collect. */
static int stop_child(pid_t pid)
{
    int status = 0;
    (void)kill(pid, SIGTERM);
    return reap(pid, STOP_WAIT_MS, &status) == 0 ? status : -1;
}

/* How a child that was serving ended, when that was not a clean exit. */
static void log_end(pid_t pid, int status)
{
    if (status < 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
        return;
    if (WIFEXITED(status))
        ks_warn("tls-alpn-01 responder (pid %d) ended with exit status %d", (int)pid,
                WEXITSTATUS(status));
    else
        ks_warn("tls-alpn-01 responder (pid %d) ended with signal %d", (int)pid, WTERMSIG(status));
}

/* Forks the child; on success r->pid and r->sync_fd are set and the child
 * has reported that it is ready. */
static int spawn(acme_tlsalpn_responder *r, tlsalpn_set *set, int listen_fd, ks_err *err)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return ks_fail(err, "pipe: %s", strerror(errno));
    /* SIGTERM stays blocked in the child until it has its handler: a stop
     * that comes early is delayed, never lost or run by our handler. */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    pid_t pid = fork();
    if (pid == 0)
        child_main(set, listen_fd, pipefd[1], r->port);
    int saved = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        return ks_fail(err, "fork: %s", strerror(saved));
    }
    r->pid = pid;
    r->sync_fd = pipefd[0];
    if (await_child(r->sync_fd, err) == 0)
        return 0;
    /* It failed, crashed, or is stuck: in every case it must not outlive
     * this.  A crash leaves only "ended before it was ready": add the signal
     * (unless it is one of ours). */
    int status = stop_child(pid);
    close(r->sync_fd);
    if (status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM &&
        WTERMSIG(status) != SIGKILL)
        ks_failp(err, "responder process killed by signal %d", WTERMSIG(status));
    return -1;
}

acme_tlsalpn_responder *acme_tlsalpn_start(const char *addr, int port,
                                           const acme_tlsalpn_challenge *ch, size_t n, ks_err *err)
{
    tlsalpn_set *set = set_new(ch, n, err);
    acme_tlsalpn_responder *r = set ? calloc(1, sizeof(*r)) : NULL;
    int listen_fd = -1, ok = 0;
    if (set != NULL && r == NULL)
        ks_fail(err, "out of memory");
    if (r != NULL) {
        r->port = port;
        listen_fd = listen_on(addr, &r->port, err);
        ok = listen_fd >= 0 && spawn(r, set, listen_fd, err) == 0;
    }
    /* The child has its own copies of both now. */
    if (listen_fd >= 0)
        close(listen_fd);
    set_free(set);
    if (!ok) {
        free(r);
        ks_failp(err, "tls-alpn-01 responder");
        return NULL;
    }
    ks_debug("tls-alpn-01 responder: pid %d, port %d, %zu identifiers", (int)r->pid, r->port, n);
    return r;
}

int acme_tlsalpn_port(const acme_tlsalpn_responder *r)
{
    return r->port;
}

void acme_tlsalpn_stop(acme_tlsalpn_responder *r)
{
    if (r == NULL)
        return;
    log_end(r->pid, stop_child(r->pid));
    close(r->sync_fd);
    free(r);
}
