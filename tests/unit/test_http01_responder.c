/*
 * The http-01 responder (acme/http01_responder.h), against raw HTTP written
 * here on sockets: a responder on 127.0.0.1 port 0 answers GET and HEAD of
 * each token's path with its key authorization, and everything else with
 * the status the request deserves (404, 405, 400, 414, 431).  Every refusal
 * is followed by a request that succeeds, so that a refusal for some other
 * reason (or a dead responder) fails the test.  The rest: start's
 * refusals, and the child's life (a silent client does not keep the next
 * one out, it is reaped by stop, holds none of our descriptors, stops when
 * its parent goes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http01_responder.h"
#include "ks_err.h"
#include "ks_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOCALHOST "127.0.0.1"
#define PREFIX "/.well-known/acme-challenge/"

/* Generous, for valgrind; only a broken responder makes a client wait. */
#define CLIENT_TIMEOUT_S 10

/* The JWK thumbprint part of both key authorizations. */
#define THUMB "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
#define TOKEN_A "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
#define TOKEN_B "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"

static const acme_http01_challenge fixture[] = {
    {TOKEN_A, TOKEN_A "." THUMB},
    {TOKEN_B, TOKEN_B "." THUMB},
};
#define N_FIXTURE (sizeof(fixture) / sizeof(fixture[0]))

/* ---- helpers ------------------------------------------------------------ */

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

static void set_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_S};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
}

/* A TCP connection to the responder, or -1 with errno from connect. */
static int tcp_connect(int port)
{
    struct sockaddr_in sin = local_addr(port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    set_timeouts(fd);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail_msg("send: %s", strerror(errno));
        buf += n;
        len -= (size_t)n;
    }
}

/* What came back on one connection, up to the responder's hang-up. */
typedef struct http_resp {
    char raw[4096];
    size_t len;
    int status;
    char *body; /* after the empty line, in raw */
    size_t body_len;
} http_resp;

/* Reads to EOF (the responder always closes: Connection: close). */
static void read_all(int fd, http_resp *out)
{
    out->len = 0;
    for (;;) {
        assert_true(out->len < sizeof(out->raw) - 1);
        ssize_t n = recv(fd, out->raw + out->len, sizeof(out->raw) - 1 - out->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail_msg("recv: %s", strerror(errno));
        if (n == 0)
            break;
        out->len += (size_t)n;
    }
    out->raw[out->len] = '\0';
}

/* Status line and head end; the head is NUL-terminated after its last
 * CRLF so that header lookups cannot run into the body. */
static void parse_resp(http_resp *r)
{
    if (strncmp(r->raw, "HTTP/1.1 ", 9) != 0)
        fail_msg("not an HTTP/1.1 answer: \"%s\"", r->raw);
    r->status = atoi(r->raw + 9);
    char *end = strstr(r->raw, "\r\n\r\n");
    assert_non_null(end);
    r->body = end + 4;
    r->body_len = r->len - (size_t)(r->body - r->raw);
    end[2] = '\0';
}

/* Sends `req` (len bytes) on a fresh connection and reads the answer. */
static void request(int port, const char *req, size_t len, http_resp *out)
{
    int fd = tcp_connect(port);
    assert_true(fd >= 0);
    send_all(fd, req, len);
    read_all(fd, out);
    close(fd);
    parse_resp(out);
}

static void request_str(int port, const char *req, http_resp *out)
{
    request(port, req, strlen(req), out);
}

/* A request as a validator (pebble, Go's client) writes it. */
static void request_as_validator(int port, const char *method, const char *target, http_resp *out)
{
    char req[1024];
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: Go-http-client/1.1\r\n"
             "Accept-Encoding: gzip\r\nConnection: close\r\n\r\n",
             method, target);
    request_str(port, req, out);
}

static void assert_header(const http_resp *r, const char *name, const char *value)
{
    char line[256];
    snprintf(line, sizeof(line), "\r\n%s: %s\r\n", name, value);
    if (strstr(r->raw, line) == NULL)
        fail_msg("no \"%s: %s\" in \"%s\"", name, value, r->raw);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

/* The full 200 answer for a challenge: its key authorization as the body,
 * or (HEAD) only the length of it. */
static void assert_answer(const http_resp *r, const acme_http01_challenge *ch, int head)
{
    char len[32];
    snprintf(len, sizeof(len), "%zu", strlen(ch->key_authorization));
    assert_int_equal(r->status, 200);
    assert_header(r, "Content-Type", "application/octet-stream");
    assert_header(r, "Content-Length", len);
    assert_header(r, "Connection", "close");
    if (head) {
        assert_int_equal(r->body_len, 0);
        return;
    }
    assert_int_equal(r->body_len, strlen(ch->key_authorization));
    assert_memory_equal(r->body, ch->key_authorization, r->body_len);
}

/* The request that must work, after every refusal. */
static void assert_serves(int port, const acme_http01_challenge *ch)
{
    http_resp r;
    char target[512];
    snprintf(target, sizeof(target), PREFIX "%s", ch->token);
    request_as_validator(port, "GET", target, &r);
    assert_answer(&r, ch, 0);
}

/* A request the responder must answer with `status`, and then go on. */
static void assert_status(int port, const char *req, size_t len, int status)
{
    http_resp r;
    request(port, req, len, &r);
    if (r.status != status)
        fail_msg("%d, not %d, for \"%.*s\"", r.status, status, (int)(len < 200 ? len : 200), req);
    assert_header(&r, "Connection", "close");
    assert_serves(port, &fixture[0]);
}

static void assert_status_str(int port, const char *req, int status)
{
    assert_status(port, req, strlen(req), status);
}

/* ---- fixture: one responder for the tokens above ------------------------ */

static int setup_responder(void **state)
{
    ks_err err = {0};
    acme_http01_responder *r = acme_http01_start(LOCALHOST, 0, fixture, N_FIXTURE, &err);
    if (r == NULL) {
        fprintf(stderr, "acme_http01_start: %s\n", err.msg);
        return -1;
    }
    *state = r;
    return 0;
}

static int teardown_responder(void **state)
{
    acme_http01_stop(*state);
    *state = NULL;
    return 0;
}

static int port_of(void **state)
{
    int port = acme_http01_port(*state);
    assert_true(port > 0 && port <= 65535);
    return port;
}

/* ---- answers ------------------------------------------------------------ */

static void test_serves_each_token(void **state)
{
    int port = port_of(state);
    for (size_t i = 0; i < N_FIXTURE; i++)
        assert_serves(port, &fixture[i]);
}

static void test_head_has_no_body(void **state)
{
    http_resp r;
    request_as_validator(port_of(state), "HEAD", PREFIX TOKEN_B, &r);
    assert_answer(&r, &fixture[1], 1);
}

/* What else a server must take: HTTP/1.0 without Host, the absolute form
 * of the target, a query, headers in any case, a body it does not read
 * (drained, so that the answer is not lost to a reset). */
static void test_other_accepted_forms(void **state)
{
    int port = port_of(state);
    static const char *const reqs[] = {
        "GET " PREFIX TOKEN_A " HTTP/1.0\r\n\r\n",
        "GET http://www.example.org" PREFIX TOKEN_A " HTTP/1.1\r\nHost: www.example.org\r\n\r\n",
        "GET " PREFIX TOKEN_A "?x=1 HTTP/1.1\r\nHost: www.example.org\r\n\r\n",
        "GET " PREFIX TOKEN_A " HTTP/1.1\r\nhOsT:www.example.org\r\nX-Empty:\r\n\r\n",
        "GET " PREFIX TOKEN_A " HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 5\r\n\r\nhello",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        http_resp r;
        request_str(port, reqs[i], &r);
        assert_answer(&r, &fixture[0], 0);
    }
}

static void test_unknown_token_404(void **state)
{
    int port = port_of(state);
    static const char *const targets[] = {
        PREFIX "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oB", /* one character off */
        PREFIX "EVAGXFADS6PSRB2LAV9IZF17DT3JUXGJ-PCT92WR-OA", /* tokens are case-sensitive */
        PREFIX TOKEN_A "x",
        PREFIX TOKEN_A "/",
        PREFIX "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ", /* a prefix of one */
        PREFIX "%65vaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
    };
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        http_resp r;
        request_as_validator(port, "GET", targets[i], &r);
        assert_int_equal(r.status, 404);
        assert_header(&r, "Connection", "close");
        /* HEAD of the same: 404 as well, without a body. */
        request_as_validator(port, "HEAD", targets[i], &r);
        assert_int_equal(r.status, 404);
        assert_int_equal(r.body_len, 0);
    }
    assert_serves(port, &fixture[1]);
}

static void test_wrong_path_404(void **state)
{
    int port = port_of(state);
    static const char *const targets[] = {
        "/",
        "/" TOKEN_A,
        PREFIX,
        "/.well-known/acme-challenge",
        "/.well-known/acme-challengeX" TOKEN_A,
        "/.well-known/acme-challenge//" TOKEN_A,
        "/x" PREFIX TOKEN_A,
        "/.WELL-KNOWN/acme-challenge/" TOKEN_A,
        "http://www.example.org",
        "*",
    };
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        http_resp r;
        request_as_validator(port, "GET", targets[i], &r);
        if (r.status != 404)
            fail_msg("%d, not 404, for %s", r.status, targets[i]);
    }
    assert_serves(port, &fixture[0]);
}

static void test_other_methods_405(void **state)
{
    int port = port_of(state);
    static const char *const methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "get", "PATCH"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        http_resp r;
        request_as_validator(port, methods[i], PREFIX TOKEN_A, &r);
        assert_int_equal(r.status, 405);
        assert_header(&r, "Allow", "GET, HEAD");
        assert_true(r.body_len > 0);
        assert_true(strstr(r.body, THUMB) == NULL); /* never the answer */
    }
    assert_serves(port, &fixture[0]);
}

static void test_malformed_400(void **state)
{
    int port = port_of(state);
    static const char *const reqs[] = {
        "hello\r\n\r\n",
        "\r\n\r\n",
        "GET\r\n\r\n",
        "GET " PREFIX TOKEN_A "\r\n\r\n",          /* HTTP/0.9 */
        "GET " PREFIX TOKEN_A " HTTP/1.1\r\n\r\n", /* no Host */
        "GET " PREFIX TOKEN_A " HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET " PREFIX TOKEN_A " HTTP/2.0\r\nHost: a\r\n\r\n",
        "GET " PREFIX TOKEN_A " http/1.1\r\nHost: a\r\n\r\n",
        "GET  " PREFIX TOKEN_A " HTTP/1.1\r\nHost: a\r\n\r\n", /* two spaces */
        "GET " PREFIX TOKEN_A " HTTP/1.1 \r\nHost: a\r\n\r\n",
        "GET " PREFIX TOKEN_A " HTTP/1.1\r\nHost : a\r\n\r\n", /* space before colon */
        "GET " PREFIX TOKEN_A " HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        "GET " PREFIX TOKEN_A " HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n",
        "GET " PREFIX TOKEN_A " HTTP/1.1\nHost: a\r\n\r\n",           /* bare LF */
        "GET " PREFIX TOKEN_A " HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",   /* bare CR */
        "GET " PREFIX TOKEN_A " HTTP/1.1\r\nHost: a\033[31m\r\n\r\n", /* control character */
        "G(T " PREFIX TOKEN_A " HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET " PREFIX "t\xc3\xb6k HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
        assert_status_str(port, reqs[i], 400);
    /* A NUL in the head. */
    static const char nul[] = "GET " PREFIX TOKEN_A " HTTP/1.1\r\nHost: a\0b\r\n\r\n";
    assert_status(port, nul, sizeof(nul) - 1, 400);
}

/* A request cut short (the client half-closes before the empty line) is
 * answered 400 rather than left to time out. */
static void test_truncated_request_400(void **state)
{
    int port = port_of(state);
    int fd = tcp_connect(port);
    assert_true(fd >= 0);
    const char *req = "GET " PREFIX TOKEN_A " HTTP/1.1\r\nHost: a\r\n";
    send_all(fd, req, strlen(req));
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    http_resp r;
    read_all(fd, &r);
    close(fd);
    parse_resp(&r);
    assert_int_equal(r.status, 400);
    assert_serves(port, &fixture[0]);
}

/* Heads past ACME_HTTP01_HEAD_MAX: 414 for a request line that does not
 * fit, 431 for headers; the responder reads no further, answers, and
 * serves the next connection. */
static void test_oversized_request(void **state)
{
    /* Static: a failed assertion leaves the test by longjmp, past any free. */
    enum { BIG = 2 * ACME_HTTP01_HEAD_MAX };
    static char req[BIG + 256];
    int port = port_of(state);

    /* A target of BIG characters. */
    int n = snprintf(req, sizeof(req), "GET " PREFIX);
    memset(req + n, 'a', BIG);
    snprintf(req + n + BIG, sizeof(req) - (size_t)n - BIG, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_status(port, req, strlen(req), 414);

    /* A header of BIG characters. */
    n = snprintf(req, sizeof(req), "GET " PREFIX TOKEN_A " HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(req + n, 'b', BIG);
    snprintf(req + n + BIG, sizeof(req) - (size_t)n - BIG, "\r\n\r\n");
    assert_status(port, req, strlen(req), 431);
}

/* A client that connects and sends nothing holds the (one at a time)
 * responder only until its connection deadline: the next one is served. */
static void test_silent_client_does_not_block(void **state)
{
    int port = port_of(state);
    int silent = tcp_connect(port);
    assert_true(silent >= 0);
    assert_serves(port, &fixture[1]);
    /* By now the responder has given up on it: EOF, no answer. */
    char c;
    assert_int_equal(recv(silent, &c, 1, 0), 0);
    close(silent);
}

/* ---- start's refusals and IPv6 ------------------------------------------ */

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
    acme_http01_responder *r = acme_http01_start(LOCALHOST, port, fixture, N_FIXTURE, &err);
    close(busy);
    acme_http01_stop(r); /* only if it started by mistake */
    assert_null(r);
    char where[64];
    snprintf(where, sizeof(where), "%s port %d", LOCALHOST, port);
    assert_contains(err.msg, "http-01 responder: ");
    assert_contains(err.msg, where);
    assert_contains(err.msg, strerror(EADDRINUSE));
    assert_false(have_children());
}

/* start must fail with `why` in the message; a responder that started by
 * mistake is stopped first, so that it does not fail the tests after. */
static void assert_start_refused(const char *addr, int port, const acme_http01_challenge *ch,
                                 size_t n, const char *why)
{
    ks_err err = {0};
    acme_http01_responder *r = acme_http01_start(addr, port, ch, n, &err);
    if (r != NULL) {
        acme_http01_stop(r);
        fail_msg("started, but should not have: %s", why);
    }
    assert_contains(err.msg, "http-01 responder: ");
    assert_contains(err.msg, why);
}

static void test_invalid_token_refused(void **state)
{
    (void)state;
    char too_long[258];
    memset(too_long, 'a', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    const char *const bad[] = {"",          "tok+en", "tok/en", "tok=",     "tok en", "tok.en",
                               "../passwd", "tök",    "tok\n",  "tok%2Fen", too_long};
    assert_false(have_children());
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        acme_http01_challenge ch = {bad[i], fixture[0].key_authorization};
        assert_start_refused(LOCALHOST, 0, &ch, 1, "is not base64url (1 to 256 characters)");
    }
    acme_http01_challenge none = {NULL, fixture[0].key_authorization};
    assert_start_refused(LOCALHOST, 0, &none, 1, "token \"(null)\" is not base64url");
    /* What the CA sent reaches the message escaped. */
    acme_http01_challenge esc = {"evil\033[31m", fixture[0].key_authorization};
    assert_start_refused(LOCALHOST, 0, &esc, 1, "token \"evil\\x1b[31m\" is not base64url");
    assert_false(have_children());
    /* 256 characters are still a token. */
    char ka[320];
    too_long[256] = '\0';
    snprintf(ka, sizeof(ka), "%s." THUMB, too_long);
    acme_http01_challenge ok = {too_long, ka};
    ks_err err = {0};
    acme_http01_responder *r = acme_http01_start(LOCALHOST, 0, &ok, 1, &err);
    assert_non_null(r);
    assert_serves(acme_http01_port(r), &ok);
    acme_http01_stop(r);
}

static void test_bad_key_authorization_refused(void **state)
{
    (void)state;
    const char *const bad[] = {NULL,
                               "",
                               TOKEN_A,
                               TOKEN_A ".",
                               "." THUMB,
                               TOKEN_B "." THUMB,
                               TOKEN_A "x." THUMB,
                               TOKEN_A ".a+b",
                               TOKEN_A ".a.b",
                               TOKEN_A "." THUMB "\n"};
    assert_false(have_children());
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        acme_http01_challenge ch = {TOKEN_A, bad[i]};
        assert_start_refused(LOCALHOST, 0, &ch, 1,
                             TOKEN_A ": the key authorization is not \"<token>.<base64url>\"");
    }
    assert_false(have_children());
}

static void test_other_refusals(void **state)
{
    (void)state;
    acme_http01_challenge ch[ACME_HTTP01_MAX_CHALLENGES + 1];
    for (size_t i = 0; i < sizeof(ch) / sizeof(ch[0]); i++)
        ch[i] = fixture[i % N_FIXTURE];
    assert_false(have_children());
    assert_start_refused(LOCALHOST, 0, ch, 0, "0 challenges (1 to 100 can be served)");
    assert_start_refused(LOCALHOST, 0, NULL, 1, "0 challenges (1 to 100 can be served)");
    assert_start_refused(LOCALHOST, 0, ch, ACME_HTTP01_MAX_CHALLENGES + 1, "101 challenges");
    assert_start_refused(LOCALHOST, 0, ch, N_FIXTURE + 1, "token " TOKEN_A " is listed twice");
    assert_start_refused("localhost", 0, ch, N_FIXTURE,
                         "\"localhost\" is not a numeric IP address");
    assert_start_refused(NULL, 0, ch, N_FIXTURE, "\"(null)\" is not a numeric IP address");
    assert_start_refused(LOCALHOST, 70000, ch, N_FIXTURE, "port 70000 out of range");
    assert_start_refused(LOCALHOST, -1, ch, N_FIXTURE, "port -1 out of range");
    assert_false(have_children());
}

/* An IPv6 literal works the same; skipped where the host has no ::1. */
static void test_ipv6(void **state)
{
    (void)state;
    ks_err err = {0};
    acme_http01_responder *r = acme_http01_start("::1", 0, fixture, N_FIXTURE, &err);
    if (r == NULL && strstr(err.msg, "cannot listen on ::1") != NULL) {
        fprintf(stderr, "no IPv6 loopback here: %s\n", err.msg);
        skip();
    }
    assert_non_null(r);
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
                                .sin6_port = htons((uint16_t)acme_http01_port(r))};
    assert_int_equal(inet_pton(AF_INET6, "::1", &sin6.sin6_addr), 1);
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    set_timeouts(fd);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin6, sizeof(sin6)), 0);
    const char *req = "GET " PREFIX TOKEN_B " HTTP/1.1\r\nHost: [::1]\r\n\r\n";
    send_all(fd, req, strlen(req));
    http_resp resp;
    read_all(fd, &resp);
    close(fd);
    parse_resp(&resp);
    assert_answer(&resp, &fixture[1], 0);
    acme_http01_stop(r);
}

/* ---- the child's life --------------------------------------------------- */

static void test_stop_reaps_child(void **state)
{
    (void)state;
    acme_http01_stop(NULL);
    assert_false(have_children());
    ks_err err = {0};
    acme_http01_responder *r = acme_http01_start(LOCALHOST, 0, fixture, N_FIXTURE, &err);
    assert_non_null(r);
    int port = acme_http01_port(r);
    assert_true(have_children());
    assert_serves(port, &fixture[0]);

    acme_http01_stop(r);
    assert_false(have_children());
    /* Nobody holds the listening socket any more: not the parent either. */
    assert_int_equal(tcp_connect(port), -1);
    assert_int_equal(errno, ECONNREFUSED);
}

/* A stop while a client stalls is not held up by the connection deadline. */
static void test_stop_interrupts_connection(void **state)
{
    (void)state;
    ks_err err = {0};
    acme_http01_responder *r = acme_http01_start(LOCALHOST, 0, fixture, N_FIXTURE, &err);
    assert_non_null(r);
    int fd = tcp_connect(acme_http01_port(r));
    assert_true(fd >= 0);
    ks_sleep_ms(300); /* for the child to accept it and wait for the request */
    long long t0 = ks_now_ms();
    acme_http01_stop(r);
    long long took = ks_now_ms() - t0;
    close(fd);
    assert_false(have_children());
    assert_true(took < ACME_HTTP01_CONN_TIMEOUT_MS - 1000);
}

/* fork copied this process's descriptors into the child; it must have
 * closed them, or a peer of ours would never see us hang up. */
static void test_child_holds_no_descriptors(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    ks_err err = {0};
    acme_http01_responder *r = acme_http01_start(LOCALHOST, 0, fixture, N_FIXTURE, &err);
    assert_non_null(r);
    close(p[1]);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    int n = poll(&pf, 1, 0);
    close(p[0]);
    acme_http01_stop(r);
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
        acme_http01_responder *r = acme_http01_start(LOCALHOST, 0, fixture, N_FIXTURE, &err);
        int port = r ? acme_http01_port(r) : -1;
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
        cmocka_unit_test_setup_teardown(test_serves_each_token, setup_responder,
                                        teardown_responder),
        cmocka_unit_test_setup_teardown(test_head_has_no_body, setup_responder, teardown_responder),
        cmocka_unit_test_setup_teardown(test_other_accepted_forms, setup_responder,
                                        teardown_responder),
        cmocka_unit_test_setup_teardown(test_unknown_token_404, setup_responder,
                                        teardown_responder),
        cmocka_unit_test_setup_teardown(test_wrong_path_404, setup_responder, teardown_responder),
        cmocka_unit_test_setup_teardown(test_other_methods_405, setup_responder,
                                        teardown_responder),
        cmocka_unit_test_setup_teardown(test_malformed_400, setup_responder, teardown_responder),
        cmocka_unit_test_setup_teardown(test_truncated_request_400, setup_responder,
                                        teardown_responder),
        cmocka_unit_test_setup_teardown(test_oversized_request, setup_responder,
                                        teardown_responder),
        cmocka_unit_test_setup_teardown(test_silent_client_does_not_block, setup_responder,
                                        teardown_responder),
        cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_invalid_token_refused),
        cmocka_unit_test(test_bad_key_authorization_refused),
        cmocka_unit_test(test_other_refusals),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_stop_reaps_child),
        cmocka_unit_test(test_stop_interrupts_connection),
        cmocka_unit_test(test_child_holds_no_descriptors),
        cmocka_unit_test(test_child_ends_with_parent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
