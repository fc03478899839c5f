#include "tlsalpn01.h"

#include "ks_log.h"
#include "ks_util.h"
#include "responder_child.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* RFC 8737 section 6.1 (the ALPN name) and 6.2 (id-pe-acmeIdentifier). */
#define ACME_TLS_ALPN "acme-tls/1"
#define ACME_IDENTIFIER_OID "1.3.6.1.5.5.7.1.31"

/* A key authorization is a token and a JWK thumbprint (43 characters);
 * anything this long is not one. */
#define KEY_AUTHZ_MAX 512

struct acme_tlsalpn_responder {
    responder_child child;
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
    SSL_CTX *tls; /* made in the child, with the certificates */
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
    SSL_CTX_free(set->tls);
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
            if (responder_child_wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline,
                                        err) < 0)
                return -1;
        } else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
            return ks_fail(err, "%s", errno ? strerror(errno) : "the client closed the connection");
        } else {
            return ks_fail_openssl(err, "TLS");
        }
    }
}

/* One client, to the end of the handshake (responder_child_ops.serve). */
static void serve_conn(void *arg, int fd, long long deadline, const char *who)
{
    const tlsalpn_set *set = arg;
    ks_err err = {0};
    SSL *ssl = SSL_new(set->tls);
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

/* The keys, certificates and TLS context, made in the child so that no key
 * is ever in the worker (responder_child_ops.prepare). */
static int prepare(void *arg, int port, ks_err *err)
{
    tlsalpn_set *set = arg;
    if (set_make_certs(set, err) < 0 || (set->tls = server_ctx_new(set, err)) == NULL)
        return -1;
    log_serving(set, port);
    return 0;
}

/* The child's copy of the set, before it exits (responder_child_ops.release). */
static void release(void *arg)
{
    set_free(arg);
}

static const responder_child_ops tlsalpn_ops = {
    .name = "tls-alpn-01",
    .conn_timeout_ms = ACME_TLSALPN_CONN_TIMEOUT_MS,
    .prepare = prepare,
    .serve = serve_conn,
    .release = release,
};

/* ---- the parent's side ------------------------------------------------- */

acme_tlsalpn_responder *acme_tlsalpn_start(const char *addr, int port,
                                           const acme_tlsalpn_challenge *ch, size_t n, ks_err *err)
{
    tlsalpn_set *set = set_new(ch, n, err);
    acme_tlsalpn_responder *r = set ? calloc(1, sizeof(*r)) : NULL;
    if (set != NULL && r == NULL)
        ks_fail(err, "out of memory");
    int ok = r != NULL && responder_child_start(&r->child, &tlsalpn_ops, set, addr, port, err) == 0;
    set_free(set); /* the child has its own copy */
    if (!ok) {
        free(r);
        ks_failp(err, "tls-alpn-01 responder");
        return NULL;
    }
    return r;
}

int acme_tlsalpn_port(const acme_tlsalpn_responder *r)
{
    return r->child.port;
}

void acme_tlsalpn_stop(acme_tlsalpn_responder *r)
{
    if (r == NULL)
        return;
    responder_child_stop(&r->child);
    free(r);
}
