/*
 * The tls-alpn-01 responder (acme/tlsalpn01.h), against an OpenSSL client in
 * this process: a responder on 127.0.0.1 port 0 answers each identifier's
 * SNI name with a certificate whose only subjectAltName is the identifier and
 * whose critical acmeIdentifier extension is SHA-256 of the key
 * authorization (computed here, and the DER taken apart here, not with the
 * responder's code).  Every refused handshake is checked by the alert the
 * responder sent, and is followed by one that succeeds, so that a refusal
 * for some other reason (or a dead responder) fails the test.  The rest: the
 * SNI names for identifiers, start's refusals, and the child's life (it is
 * reaped by stop, holds none of our descriptors, stops when its parent goes,
 * and drops a stalled client at the deadline but not a stop).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ks_err.h"
#include "ks_util.h"
#include "tlsalpn01.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOCALHOST "127.0.0.1"
#define ACME_IDENTIFIER_OID "1.3.6.1.5.5.7.1.31"

/* The wire form of ALPN lists: a length byte before each name. */
#define ALPN_ACME "\012acme-tls/1"
#define ALPN_HTTP "\010http/1.1"
#define ALPN_ACME_TOO_LONG "\013acme-tls/10"

/* Generous, for valgrind; only a broken responder makes a client wait. */
#define CLIENT_TIMEOUT_S 10

/* One identifier of the fixture: what the test gives the responder, and what
 * a validator sends and expects back (written out, not computed). */
typedef struct fixture_id {
    const char *identifier;
    const char *key_authorization;
    const char *sni;     /* the validator's SNI name */
    const char *san_dns; /* the dNSName expected, or NULL for an address */
    int family;          /* AF_INET or AF_INET6 for an address */
} fixture_id;

static const fixture_id ids[] = {
    {"WWW.Example.ORG",
     "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI",
     "www.example.org", "www.example.org", 0},
    {"192.0.2.7",
     "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI",
     "7.2.0.192.in-addr.arpa", NULL, AF_INET},
    {"2001:db8::567:89ab",
     "k9eSsTNYtlzrjm-z_CyxDTUEKQyXzsT4sdQ7vNXqbBU.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI",
     "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", NULL, AF_INET6},
};
#define N_IDS (sizeof(ids) / sizeof(ids[0]))

/* ---- helpers ------------------------------------------------------------ */

static void fill_challenges(acme_tlsalpn_challenge *ch)
{
    for (size_t i = 0; i < N_IDS; i++)
        ch[i] = (acme_tlsalpn_challenge){ids[i].identifier, ids[i].key_authorization};
}

static acme_tlsalpn_responder *start_fixture(int port, ks_err *err)
{
    acme_tlsalpn_challenge ch[N_IDS];
    fill_challenges(ch);
    return acme_tlsalpn_start(LOCALHOST, port, ch, N_IDS, err);
}

/* 1 while this process has a child that has not been reaped (waitpid(-1)
 * says ECHILD only when there is none at all). */
static int have_children(void)
{
    errno = 0;
    pid_t got = waitpid(-1, NULL, WNOHANG);
    assert_true(got == 0 || (got < 0 && errno == ECHILD)); /* nothing may end unseen */
    return got == 0;
}

static struct sockaddr_in local_addr(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    assert_int_equal(inet_pton(AF_INET, LOCALHOST, &sin.sin_addr), 1);
    return sin;
}

/* A TCP connection to the responder, or -1 with errno from connect. */
static int tcp_connect(int port)
{
    struct sockaddr_in sin = local_addr(port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_S};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

typedef struct hs_result {
    int ok;        /* SSL_connect succeeded */
    int alert;     /* the fatal alert the server sent in the handshake, or -1 */
    X509 *cert;    /* the server's certificate (ok only; caller frees) */
    char alpn[32]; /* the protocol the server selected, "" for none */
} hs_result;

static void on_info(const SSL *ssl, int where, int ret)
{
    int *alert = SSL_get_app_data(ssl);
    /* Fatal only: a close_notify after the handshake is no refusal. */
    if ((where & SSL_CB_READ_ALERT) && (ret >> 8) == SSL3_AL_FATAL && *alert < 0)
        *alert = ret & 0xff;
}

static SSL_CTX *client_ctx_new(int version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, version), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, version), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* self-signed by design */
    SSL_CTX_set_info_callback(ctx, on_info);
    return ctx;
}

/* One handshake as a validator makes it: `sni` and `alpn` (wire form) may be
 * NULL to send none. */
static hs_result handshake_v(int port, const char *sni, const char *alpn, int version)
{
    hs_result res = {.alert = -1};
    SSL_CTX *ctx = client_ctx_new(version);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    SSL_set_app_data(ssl, &res.alert);
    if (sni != NULL)
        assert_int_equal(SSL_set_tlsext_host_name(ssl, sni), 1);
    if (alpn != NULL) /* 0 is success here */
        assert_int_equal(
            SSL_set_alpn_protos(ssl, (const unsigned char *)alpn, (unsigned int)strlen(alpn)), 0);
    int fd = tcp_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(SSL_set_fd(ssl, fd), 1);
    res.ok = SSL_connect(ssl) == 1;
    if (res.ok) {
        const unsigned char *sel = NULL;
        unsigned int len = 0;
        SSL_get0_alpn_selected(ssl, &sel, &len);
        assert_true(len < sizeof(res.alpn));
        if (len > 0)
            memcpy(res.alpn, sel, len);
        res.cert = SSL_get1_peer_certificate(ssl);
        (void)SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return res;
}

static hs_result handshake(int port, const char *sni, const char *alpn)
{
    return handshake_v(port, sni, alpn, TLS1_3_VERSION);
}

/* The handshake that must work: ALPN acme-tls/1 and the identifier's SNI. */
static void assert_answers(int port, const fixture_id *id)
{
    hs_result res = handshake(port, id->sni, ALPN_ACME);
    assert_true(res.ok);
    assert_string_equal(res.alpn, "acme-tls/1");
    X509_free(res.cert);
}

/* A handshake the responder must refuse, with this alert. */
static void assert_refused(int port, const char *sni, const char *alpn, int alert)
{
    hs_result res = handshake(port, sni, alpn);
    assert_false(res.ok);
    assert_null(res.cert);
    assert_int_equal(res.alert, alert);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

/* ---- what the certificate says ------------------------------------------ */

/* The only subjectAltName is the identifier: a dNSName in lower case, or the
 * address's bytes as iPAddress (RFC 8738). */
static void check_san(X509 *cert, const fixture_id *id)
{
    int crit = -1;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    assert_non_null(names);
    assert_int_equal(sk_GENERAL_NAME_num(names), 1);
    GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, 0);
    if (id->san_dns != NULL) {
        assert_int_equal(gn->type, GEN_DNS);
        const ASN1_IA5STRING *dns = gn->d.dNSName;
        assert_int_equal(ASN1_STRING_length(dns), (int)strlen(id->san_dns));
        assert_memory_equal(ASN1_STRING_get0_data(dns), id->san_dns, strlen(id->san_dns));
    } else {
        unsigned char want[16];
        int len = id->family == AF_INET ? 4 : 16;
        assert_int_equal(inet_pton(id->family, id->identifier, want), 1);
        assert_int_equal(gn->type, GEN_IPADD);
        assert_int_equal(ASN1_STRING_length(gn->d.iPAddress), len);
        assert_memory_equal(ASN1_STRING_get0_data(gn->d.iPAddress), want, (size_t)len);
    }
    GENERAL_NAMES_free(names);
}

/* RFC 8737 section 3: exactly one acmeIdentifier, critical, whose extnValue
 * is the DER OCTET STRING (04 20) of SHA-256(key authorization). */
static void check_acme_identifier(X509 *cert, const char *key_authorization)
{
    unsigned char digest[32];
    size_t dlen = 0;
    assert_int_equal(EVP_Q_digest(NULL, "SHA256", NULL, key_authorization,
                                  strlen(key_authorization), digest, &dlen),
                     1);
    assert_int_equal(dlen, 32);

    ASN1_OBJECT *oid = OBJ_txt2obj(ACME_IDENTIFIER_OID, 1);
    assert_non_null(oid);
    int idx = X509_get_ext_by_OBJ(cert, oid, -1);
    int again = X509_get_ext_by_OBJ(cert, oid, idx);
    ASN1_OBJECT_free(oid);
    assert_true(idx >= 0);
    assert_int_equal(again, -1);
    X509_EXTENSION *ext = X509_get_ext(cert, idx);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
    const ASN1_OCTET_STRING *value = X509_EXTENSION_get_data(ext);
    assert_int_equal(ASN1_STRING_length(value), 34);
    const unsigned char *der = ASN1_STRING_get0_data(value);
    assert_int_equal(der[0], 0x04);
    assert_int_equal(der[1], 0x20);
    assert_memory_equal(der + 2, digest, 32);
}

/* ---- fixture: one responder for the identifiers above ------------------- */

static int setup_responder(void **state)
{
    ks_err err = {0};
    acme_tlsalpn_responder *r = start_fixture(0, &err);
    if (r == NULL) {
        fprintf(stderr, "acme_tlsalpn_start: %s\n", err.msg);
        return -1;
    }
    *state = r;
    return 0;
}

static int teardown_responder(void **state)
{
    acme_tlsalpn_stop(*state);
    *state = NULL;
    return 0;
}

static int port_of(void **state)
{
    int port = acme_tlsalpn_port(*state);
    assert_true(port > 0 && port <= 65535);
    return port;
}

/* ---- handshakes --------------------------------------------------------- */

static void test_answers_each_identifier(void **state)
{
    int port = port_of(state);
    static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    for (size_t v = 0; v < 2; v++) {
        for (size_t i = 0; i < N_IDS; i++) {
            hs_result res = handshake_v(port, ids[i].sni, ALPN_ACME, versions[v]);
            assert_true(res.ok);
            assert_int_equal(res.alert, -1);
            assert_string_equal(res.alpn, "acme-tls/1");
            assert_non_null(res.cert);
            check_san(res.cert, &ids[i]);
            check_acme_identifier(res.cert, ids[i].key_authorization);
            /* Self-signed with the key the handshake proved. */
            assert_int_equal(X509_verify(res.cert, X509_get0_pubkey(res.cert)), 1);
            X509_free(res.cert);
        }
    }
}

/* DNS names are case-insensitive, and so is the match on SNI. */
static void test_sni_case_insensitive(void **state)
{
    hs_result res = handshake(port_of(state), "www.EXAMPLE.org", ALPN_ACME);
    assert_true(res.ok);
    assert_non_null(res.cert);
    check_san(res.cert, &ids[0]);
    X509_free(res.cert);
}

static void test_no_alpn_refused(void **state)
{
    int port = port_of(state);
    assert_refused(port, ids[0].sni, NULL, SSL_AD_NO_APPLICATION_PROTOCOL);
    assert_answers(port, &ids[0]);
}

/* acme-tls/1 is what is selected, wherever it stands in the client's list. */
static void test_alpn_picked_from_list(void **state)
{
    hs_result res = handshake(port_of(state), ids[0].sni, ALPN_HTTP ALPN_ACME);
    assert_true(res.ok);
    assert_string_equal(res.alpn, "acme-tls/1");
    X509_free(res.cert);
}

static void test_other_alpn_refused(void **state)
{
    int port = port_of(state);
    assert_refused(port, ids[0].sni, ALPN_HTTP, SSL_AD_NO_APPLICATION_PROTOCOL);
    assert_refused(port, ids[0].sni, ALPN_ACME_TOO_LONG, SSL_AD_NO_APPLICATION_PROTOCOL);
    assert_answers(port, &ids[0]);
}

static void test_unknown_sni_refused(void **state)
{
    int port = port_of(state);
    assert_refused(port, "other.example.org", ALPN_ACME, SSL_AD_UNRECOGNIZED_NAME);
    /* An address is looked for under its reverse name only (RFC 8738). */
    assert_refused(port, ids[1].identifier, ALPN_ACME, SSL_AD_UNRECOGNIZED_NAME);
    assert_answers(port, &ids[1]);
}

static void test_missing_sni_refused(void **state)
{
    int port = port_of(state);
    assert_refused(port, NULL, ALPN_ACME, SSL_AD_UNRECOGNIZED_NAME);
    assert_answers(port, &ids[2]);
}

/* A client that connects and sends nothing is dropped at the connection
 * deadline (not earlier, not never), and the next one is served. */
static void test_stalled_client_dropped(void **state)
{
    int port = port_of(state);
    int fd = tcp_connect(port);
    assert_true(fd >= 0);
    long long t0 = ks_now_ms();
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, ACME_TLSALPN_CONN_TIMEOUT_MS + 5000), 1);
    long long waited = ks_now_ms() - t0;
    char c;
    assert_true(read(fd, &c, 1) <= 0); /* EOF (or reset): no data */
    close(fd);
    assert_true(waited >= ACME_TLSALPN_CONN_TIMEOUT_MS - 300);
    assert_true(waited <= ACME_TLSALPN_CONN_TIMEOUT_MS + 4000);
    assert_answers(port, &ids[0]);
}

/* ---- start's refusals --------------------------------------------------- */

static void test_port_in_use(void **state)
{
    (void)state;
    assert_false(have_children());
    struct sockaddr_in sin = local_addr(0);
    int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(busy >= 0);
    assert_int_equal(bind(busy, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(busy, 1), 0);
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(busy, (struct sockaddr *)&sin, &len), 0);
    int port = ntohs(sin.sin_port);

    ks_err err = {0};
    acme_tlsalpn_responder *r = start_fixture(port, &err);
    close(busy);
    acme_tlsalpn_stop(r); /* only if it started by mistake */
    assert_null(r);
    char where[64];
    snprintf(where, sizeof(where), "%s port %d", LOCALHOST, port);
    assert_contains(err.msg, where);
    assert_contains(err.msg, strerror(EADDRINUSE));
    assert_false(have_children());
}

/* start must fail with `why` in the message; a responder that started by
 * mistake is stopped first, so that it does not fail the tests after. */
static void assert_start_refused(const char *addr, int port, const acme_tlsalpn_challenge *ch,
                                 size_t n, const char *why)
{
    ks_err err = {0};
    acme_tlsalpn_responder *r = acme_tlsalpn_start(addr, port, ch, n, &err);
    if (r != NULL) {
        acme_tlsalpn_stop(r);
        fail_msg("started, but should not have: %s", why);
    }
    assert_contains(err.msg, "tls-alpn-01 responder: ");
    assert_contains(err.msg, why);
}

static void test_bad_key_authorization_refused(void **state)
{
    (void)state;
    char too_long[600];
    memset(too_long, 'a', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    too_long[100] = '.';
    const char *const bad[] = {NULL,      "",         "nodot",    ".thumb",   "token.",
                               "a.b.c",   "to ken.x", "tok+en.x", "tok/en.x", "tok=.x",
                               "tok\n.x", "tök.x",    too_long};
    assert_false(have_children());
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        acme_tlsalpn_challenge ch = {"www.example.org", bad[i]};
        assert_start_refused(LOCALHOST, 0, &ch, 1,
                             "www.example.org: the key authorization is not base64url");
    }
    assert_false(have_children());
    /* The same call with a good one works: the refusals were about it. */
    acme_tlsalpn_challenge ok = {"www.example.org", ids[0].key_authorization};
    ks_err err = {0};
    acme_tlsalpn_responder *r = acme_tlsalpn_start(LOCALHOST, 0, &ok, 1, &err);
    assert_non_null(r);
    acme_tlsalpn_stop(r);
}

static void test_other_refusals(void **state)
{
    (void)state;
    acme_tlsalpn_challenge ch[ACME_TLSALPN_MAX_CHALLENGES + 1];
    fill_challenges(ch);
    assert_false(have_children());
    assert_start_refused(LOCALHOST, 0, ch, 0, "0 challenges (1 to 100 can be served)");
    assert_start_refused(LOCALHOST, 0, NULL, 1, "0 challenges (1 to 100 can be served)");
    assert_start_refused(LOCALHOST, 0, ch, ACME_TLSALPN_MAX_CHALLENGES + 1, "101 challenges");
    assert_start_refused("localhost", 0, ch, N_IDS, "\"localhost\" is not a numeric IP address");
    assert_start_refused(NULL, 0, ch, N_IDS, "\"(null)\" is not a numeric IP address");
    assert_start_refused(LOCALHOST, 70000, ch, N_IDS, "port 70000 out of range");
    assert_start_refused(LOCALHOST, -1, ch, N_IDS, "port -1 out of range");

    /* The same name twice, in another case: one SNI, two certificates. */
    ch[N_IDS] = (acme_tlsalpn_challenge){"www.example.ORG", ids[1].key_authorization};
    assert_start_refused(LOCALHOST, 0, ch, N_IDS + 1, "www.example.ORG is listed twice");
    /* And the same address, written another way. */
    ch[N_IDS] = (acme_tlsalpn_challenge){"2001:DB8:0::567:89AB", ids[1].key_authorization};
    assert_start_refused(LOCALHOST, 0, ch, N_IDS + 1, "is listed twice");

    ch[N_IDS] = (acme_tlsalpn_challenge){"*.example.org", ids[1].key_authorization};
    assert_start_refused(LOCALHOST, 0, ch, N_IDS + 1,
                         "\"*.example.org\" is neither a DNS name nor an IP address");
    ch[N_IDS] = (acme_tlsalpn_challenge){NULL, ids[1].key_authorization};
    assert_start_refused(LOCALHOST, 0, ch, N_IDS + 1, "no identifier");
    assert_false(have_children());
}

/* ---- SNI names ---------------------------------------------------------- */

static void assert_sni(const char *identifier, const char *want)
{
    ks_err err = {0};
    char *got = acme_tlsalpn_sni_new(identifier, &err);
    if (got == NULL)
        fail_msg("%s: %s", identifier, err.msg);
    assert_string_equal(got, want);
    free(got);
}

static void assert_no_sni(const char *identifier, const char *why)
{
    ks_err err = {0};
    char *got = acme_tlsalpn_sni_new(identifier, &err);
    if (got != NULL)
        fail_msg("%s: got %s", identifier ? identifier : "(null)", got);
    assert_contains(err.msg, why);
}

static void test_sni_names(void **state)
{
    (void)state;
    assert_sni("WWW.Example.ORG", "www.example.org");
    assert_sni("xn--bcher-kva.example", "xn--bcher-kva.example");
    assert_sni("localhost", "localhost");
    assert_sni("1.2.3.4", "4.3.2.1.in-addr.arpa");
    assert_sni("192.0.2.7", "7.2.0.192.in-addr.arpa");
    assert_sni("2001:DB8::567:89AB",
               "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    assert_sni("::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
    for (size_t i = 0; i < N_IDS; i++)
        assert_sni(ids[i].identifier, ids[i].sni);

    assert_no_sni(NULL, "no identifier");
    assert_no_sni("", "is neither a DNS name nor an IP address");
    assert_no_sni("*.example.org", "\"*.example.org\" is neither");
    assert_no_sni("exa_mple.org", "is neither");
    assert_no_sni("-a.example.org", "is neither");
    assert_no_sni("a-.example.org", "is neither");
    assert_no_sni("a..example.org", "is neither");
    assert_no_sni("example.org.", "is neither");
    assert_no_sni("1.2.3", "is neither"); /* not an address, not a name */
    assert_no_sni("1.2.3.256", "is neither");
    assert_no_sni("fe80::1%eth0", "is neither");
    assert_no_sni("a.bcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm.org",
                  "is neither"); /* a 64-character label */
    /* What the CA sent reaches the message escaped. */
    assert_no_sni("evil\033[31m.org", "\"evil\\x1b[31m.org\" is neither");
}

/* ---- the child's life --------------------------------------------------- */

static void test_stop_reaps_child(void **state)
{
    (void)state;
    acme_tlsalpn_stop(NULL);
    assert_false(have_children());
    ks_err err = {0};
    acme_tlsalpn_responder *r = start_fixture(0, &err);
    assert_non_null(r);
    int port = acme_tlsalpn_port(r);
    assert_true(have_children());
    assert_answers(port, &ids[0]);

    acme_tlsalpn_stop(r);
    assert_false(have_children());
    /* Nobody holds the listening socket any more: not the parent either. */
    assert_int_equal(tcp_connect(port), -1);
    assert_int_equal(errno, ECONNREFUSED);
}

/* A stop during a handshake is not held up by the connection deadline. */
static void test_stop_interrupts_handshake(void **state)
{
    (void)state;
    ks_err err = {0};
    acme_tlsalpn_responder *r = start_fixture(0, &err);
    assert_non_null(r);
    int fd = tcp_connect(acme_tlsalpn_port(r));
    assert_true(fd >= 0);
    ks_sleep_ms(300); /* for the child to accept it and wait for a ClientHello */
    long long t0 = ks_now_ms();
    acme_tlsalpn_stop(r);
    long long took = ks_now_ms() - t0;
    close(fd);
    assert_false(have_children());
    assert_true(took < ACME_TLSALPN_CONN_TIMEOUT_MS - 1000);
}

/* fork copied this process's descriptors into the child; it must have
 * closed them, or a peer of ours would never see us hang up. */
static void test_child_holds_no_descriptors(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    ks_err err = {0};
    acme_tlsalpn_responder *r = start_fixture(0, &err);
    assert_non_null(r);
    close(p[1]);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    int n = poll(&pf, 1, 0);
    close(p[0]);
    acme_tlsalpn_stop(r);
    assert_int_equal(n, 1);
    assert_true(pf.revents & POLLHUP); /* the last write end is gone */
}

/* The responder started by a process that then dies without stopping it
 * ends by itself, and its port closes. */
static void test_child_ends_with_parent(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t helper = fork();
    assert_true(helper >= 0);
    if (helper == 0) {
        close(p[0]);
        ks_err err = {0};
        acme_tlsalpn_responder *r = start_fixture(0, &err);
        int port = r ? acme_tlsalpn_port(r) : -1;
        _exit(write(p[1], &port, sizeof(port)) == sizeof(port) ? 0 : 1); /* r is left running */
    }
    close(p[1]);
    int port = -1;
    assert_int_equal(read(p[0], &port, sizeof(port)), sizeof(port));
    close(p[0]);
    int status;
    assert_int_equal(waitpid(helper, &status, 0), helper);
    assert_true(port > 0);

    /* Connections succeed (or are reset, while the listener closes) until
     * the child is gone. */
    long long deadline = ks_now_ms() + 10000;
    int refused = 0;
    while (!refused && ks_now_ms() < deadline) {
        int fd = tcp_connect(port);
        refused = fd < 0 && errno == ECONNREFUSED;
        if (fd >= 0)
            close(fd);
        if (!refused)
            ks_sleep_ms(50);
    }
    assert_true(refused);
}

int main(void)
{
    /* A responder that hangs up mid-write must fail a test, not end it. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answers_each_identifier, setup_responder,
                                        teardown_responder),
        cmocka_unit_test_setup_teardown(test_sni_case_insensitive, setup_responder,
                                        teardown_responder),
        cmocka_unit_test_setup_teardown(test_no_alpn_refused, setup_responder, teardown_responder),
        cmocka_unit_test_setup_teardown(test_alpn_picked_from_list, setup_responder,
                                        teardown_responder),
        cmocka_unit_test_setup_teardown(test_other_alpn_refused, setup_responder,
                                        teardown_responder),
        cmocka_unit_test_setup_teardown(test_unknown_sni_refused, setup_responder,
                                        teardown_responder),
        cmocka_unit_test_setup_teardown(test_missing_sni_refused, setup_responder,
                                        teardown_responder),
        cmocka_unit_test_setup_teardown(test_stalled_client_dropped, setup_responder,
                                        teardown_responder),
        cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_bad_key_authorization_refused),
        cmocka_unit_test(test_other_refusals),
        cmocka_unit_test(test_sni_names),
        cmocka_unit_test(test_stop_reaps_child),
        cmocka_unit_test(test_stop_interrupts_handshake),
        cmocka_unit_test(test_child_holds_no_descriptors),
        cmocka_unit_test(test_child_ends_with_parent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
