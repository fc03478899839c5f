#include "http01_responder.h"

#include "b64.h"
#include "ks_log.h"
#include "ks_util.h"
#include "responder_child.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
/* RFC 8555 section 8.3: the path the CA fetches. */
#define CHALLENGE_PREFIX "/.well-known/acme-challenge/"
#define CHALLENGE_PREFIX_LEN (sizeof(CHALLENGE_PREFIX) - 1)

/* Tokens are 43 characters in practice (128 bits, RFC 8555 section 8.1
 * asks for at least that); a CA that sends this many is not sending one. */
#define TOKEN_MAX 256

/* A key authorization is a token and a JWK thumbprint (43 characters). */
#define KEY_AUTHZ_MAX 512

/* After the answer, how long the child waits for the client to hang up
 * (see linger).  A validator closes at once; this only bounds one that does
 * not, within the connection deadline. */
#define LINGER_MS 500

struct acme_http01_responder {
    responder_child child;
};

/* One token to answer for; both strings checked (base64url) in the parent. */
typedef struct http01_entry {
    char *token;
    char *key_authorization;
} http01_entry;

typedef struct http01_set {
    http01_entry *e;
    size_t n;
} http01_set;

/* ---- tokens and key authorizations -------------------------------------- */

static int is_token(const char *s)
{
    return s != NULL && strnlen(s, TOKEN_MAX + 1) <= TOKEN_MAX && b64url_is_token(s);
}

/* "<token>.<thumbprint>", the thumbprint base64url and non-empty: the token
 * part must be this challenge's own, or the CA would see another's answer. */
static int is_key_authorization_for(const char *ka, const char *token)
{
    size_t tlen = strlen(token);
    if (ka == NULL || strnlen(ka, KEY_AUTHZ_MAX + 1) > KEY_AUTHZ_MAX)
        return 0;
    return strncmp(ka, token, tlen) == 0 && ka[tlen] == '.' && b64url_is_token(ka + tlen + 1);
}

/* ---- the set of challenges to serve -------------------------------------- */

static void set_free(http01_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->e[i].token);
        free(set->e[i].key_authorization);
    }
    free(set->e);
    free(set);
}

/* The entry for the len bytes at `token` (not NUL-terminated: they are a
 * piece of the request path).  Tokens are case-sensitive.  An entry not
 * (yet) filled, while set_new runs, has no token and matches nothing. */
static const http01_entry *set_find(const http01_set *set, const char *token, size_t len)
{
    for (size_t i = 0; i < set->n; i++) {
        const char *t = set->e[i].token;
        if (t != NULL && strlen(t) == len && memcmp(t, token, len) == 0)
            return &set->e[i];
    }
    return NULL;
}

/* Checks one challenge and copies its strings into *e. */
static int entry_init(http01_entry *e, const acme_http01_challenge *ch, ks_err *err)
{
    if (!is_token(ch->token)) {
        /* It came from the CA: escaped (and cut short) before a message. */
        char *esc = ch->token ? ks_escape_new(ch->token, strnlen(ch->token, 64)) : NULL;
        ks_fail(err, "token \"%s\" is not base64url (1 to %d characters)", esc ? esc : "(null)",
                TOKEN_MAX);
        free(esc);
        return -1;
    }
    if (!is_key_authorization_for(ch->key_authorization, ch->token))
        return ks_fail(err, "%s: the key authorization is not \"<token>.<base64url>\"", ch->token);
    e->token = strdup(ch->token);
    e->key_authorization = strdup(ch->key_authorization);
    if (e->token == NULL || e->key_authorization == NULL)
        return ks_fail(err, "out of memory");
    return 0;
}

/* A copy of the challenges, checked; NULL with err set. */
static http01_set *set_new(const acme_http01_challenge *ch, size_t n, ks_err *err)
{
    if (ch == NULL || n == 0 || n > ACME_HTTP01_MAX_CHALLENGES) {
        ks_fail(err, "%zu challenges (1 to %d can be served)", ch ? n : 0,
                ACME_HTTP01_MAX_CHALLENGES);
        return NULL;
    }
    http01_set *set = calloc(1, sizeof(*set));
    if (set == NULL || (set->e = calloc(n, sizeof(*set->e))) == NULL) {
        ks_fail(err, "out of memory");
        free(set);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        set->n = i + 1;
        if (entry_init(&set->e[i], &ch[i], err) < 0)
            goto fail;
        /* Two answers for one token: which one the CA sees is luck. */
        if (set_find(set, ch[i].token, strlen(ch[i].token)) != &set->e[i]) {
            ks_fail(err, "token %s is listed twice", ch[i].token);
            goto fail;
        }
    }
    return set;
fail:
    set_free(set);
    return NULL;
}

/* ---- reading the request (in the child) ---------------------------------- */

/* The request line and headers, up to and with the empty line. */
typedef struct head_buf {
    char data[ACME_HTTP01_HEAD_MAX + 1]; /* + a NUL after the head */
    size_t len;                          /* bytes read */
    size_t end;                          /* length of the head, once it is complete */
} head_buf;

/* Whether the bytes read so far complete the head; only the new bytes (and
 * the three before them) need looking at. */
static int head_complete(head_buf *hb, size_t old_len)
{
    size_t from = old_len > 3 ? old_len - 3 : 0;
    const char *end = memmem(hb->data + from, hb->len - from, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    hb->end = (size_t)(end - hb->data) + 4;
    hb->data[hb->end] = '\0';
    return 1;
}

/* Reads until the empty line that ends the head; a body or a pipelined
 * request after it is never looked at.  0 once the head is complete; an
 * HTTP status to answer with (and *why); -1 with err when there is nobody
 * to answer (timeout, hang-up before a byte, stop). */
static int read_head(int fd, head_buf *hb, long long deadline, const char **why, ks_err *err)
{
    while (hb->len < ACME_HTTP01_HEAD_MAX) {
        if (responder_child_wait_fd(fd, POLLIN, deadline, err) < 0)
            return -1;
        ssize_t r = recv(fd, hb->data + hb->len, ACME_HTTP01_HEAD_MAX - hb->len, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            return ks_fail(err, "recv: %s", strerror(errno));
        if (r == 0 && hb->len == 0)
            return ks_fail(err, "closed without a request");
        if (r == 0) {
            *why = "the request ends before its empty line";
            return 400;
        }
        size_t old_len = hb->len;
        hb->len += (size_t)r;
        if (head_complete(hb, old_len))
            return 0;
    }
    /* No line end at all: it is the request line (the target) that is too
     * long; otherwise the headers are. */
    *why = "the request head is too large";
    return memmem(hb->data, hb->len, "\r\n", 2) ? 431 : 414;
}

/* ---- parsing the request (in the child) ---------------------------------- */

typedef struct http_request {
    const char *method; /* set once the request line parsed */
    const char *target;
    int minor; /* HTTP/1.<minor> */
    int hosts; /* Host header fields seen */
} http_request;

/* RFC 9110 section 5.6.2: the characters of a method or a field name. */
static int is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int all_tchars(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!is_tchar(*s))
            return 0;
    return 1;
}

static int all_visible(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

/* Every line ends in CRLF, and no control character but HTAB is in one:
 * a bare CR or LF is how requests are smuggled past other parsers, and a
 * NUL would cut the strings below short. */
static int head_bytes_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' && (i + 1 == len || s[i + 1] != '\n'))
            return 0;
        if (c == '\n' && (i == 0 || s[i - 1] != '\r'))
            return 0;
        if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* The next CRLF-terminated line, NUL-terminated in place.  The head ends in
 * CRLF CRLF, so the empty line is found before the end. */
static char *next_line(char **p)
{
    char *line = *p;
    char *crlf = strstr(line, "\r\n");
    *crlf = '\0';
    *p = crlf + 2;
    return line;
}

/* method SP request-target SP HTTP-version, single spaces (RFC 9112 3). */
static int parse_request_line(char *line, http_request *req, const char **why)
{
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    *why = "malformed request line";
    if (sp2 == NULL || strchr(sp2 + 1, ' ') != NULL)
        return 400;
    *sp1 = *sp2 = '\0';
    const char *version = sp2 + 1;
    if (!all_tchars(line) || !all_visible(sp1 + 1))
        return 400;
    if (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0) {
        *why = "not HTTP/1.0 or HTTP/1.1";
        return 400;
    }
    req->minor = version[7] - '0';
    req->method = line;
    req->target = sp1 + 1;
    return 0;
}

/* name ":" value; only Host is counted, the rest are ignored.  Whitespace
 * before the colon and folded lines are refused (RFC 9112 5.1, 5.2). */
static int parse_header(char *line, http_request *req, const char **why)
{
    char *colon = strchr(line, ':');
    *why = "malformed header line";
    if (colon == NULL)
        return 400;
    *colon = '\0';
    if (!all_tchars(line))
        return 400;
    if (strcasecmp(line, "Host") == 0)
        req->hosts++;
    return 0;
}

/* The request line and headers of a complete head: 0, or 400 and *why. */
static int parse_head(head_buf *hb, http_request *req, const char **why)
{
    char *p = hb->data, *line;
    if (!head_bytes_ok(hb->data, hb->end)) {
        *why = "control character or bare CR/LF in the request head";
        return 400;
    }
    if (parse_request_line(next_line(&p), req, why) != 0)
        return 400;
    while (*(line = next_line(&p)) != '\0')
        if (parse_header(line, req, why) != 0)
            return 400;
    /* RFC 9112 section 3.2: exactly one for HTTP/1.1, at most one ever.
     * Its value is not checked: the validator sends the identifier, and
     * the token alone selects the answer. */
    if (req->hosts > 1 || (req->minor == 1 && req->hosts != 1)) {
        *why = "HTTP/1.1 needs exactly one Host header";
        return 400;
    }
    return 0;
}

/* The path of an origin-form or absolute-form ("http://host/path") target,
 * which a server must accept too (RFC 9112 3.2.2). */
static const char *path_of(const char *target)
{
    if (strncasecmp(target, "http://", 7) != 0)
        return target;
    const char *slash = strchr(target + 7, '/');
    return slash ? slash : "/";
}

/* 200 and *hit for a challenge we serve; else 405 or 404 and *why. */
static int select_answer(const http_request *req, const http01_set *set, const http01_entry **hit,
                         const char **why)
{
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        *why = "method not GET or HEAD";
        return 405;
    }
    const char *path = path_of(req->target);
    size_t len = strcspn(path, "?"); /* a query does not name another resource here */
    if (len <= CHALLENGE_PREFIX_LEN || strncmp(path, CHALLENGE_PREFIX, CHALLENGE_PREFIX_LEN) != 0) {
        *why = "not a challenge path";
        return 404;
    }
    *hit = set_find(set, path + CHALLENGE_PREFIX_LEN, len - CHALLENGE_PREFIX_LEN);
    *why = *hit ? NULL : "unknown token";
    return *hit ? 200 : 404;
}

/* ---- answering (in the child) -------------------------------------------- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 414:
        return "URI Too Long";
    default:
        return "Request Header Fields Too Large"; /* 431 */
    }
}

static int send_all(int fd, const char *buf, size_t len, long long deadline, ks_err *err)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (responder_child_wait_fd(fd, POLLOUT, deadline, err) < 0)
                return -1;
            continue;
        }
        if (n < 0)
            return ks_fail(err, "send: %s", strerror(errno));
        off += (size_t)n;
    }
    return 0;
}

/* The whole answer in one send: a second small write could wait on the
 * first one's ACK (Nagle).  The key authorization for 200, the status in
 * words otherwise; no body for HEAD.  Always Connection: close. */
static int respond(int fd, int status, const http01_entry *hit, int head_only, long long deadline,
                   ks_err *err)
{
    char text[64], out[256 + KEY_AUTHZ_MAX];
    snprintf(text, sizeof(text), "%d %s\n", status, reason_phrase(status));
    const char *body = hit ? hit->key_authorization : text;
    const char *type = hit ? "application/octet-stream" : "text/plain; charset=us-ascii";
    const char *allow = status == 405 ? "Allow: GET, HEAD\r\n" : "";
    int n =
        snprintf(out, sizeof(out),
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                 "Connection: close\r\n\r\n%s",
                 status, reason_phrase(status), type, strlen(body), allow, head_only ? "" : body);
    if (n < 0 || (size_t)n >= sizeof(out))
        return ks_fail(err, "answer too long"); /* cannot happen: the sizes are bounded */
    return send_all(fd, out, (size_t)n, deadline, err);
}

/* Half-closes and reads until the client hangs up.  A close() with unread
 * bytes (the rest of an oversized request, a body) sends a reset, which
 * can destroy the answer before the client has read it. */
static void linger(int fd, long long deadline)
{
    char sink[1024];
    ks_err ignored = {0};
    long long until = ks_now_ms() + LINGER_MS;
    if (until > deadline)
        until = deadline;
    (void)shutdown(fd, SHUT_WR);
    for (;;) {
        if (responder_child_wait_fd(fd, POLLIN, until, &ignored) < 0)
            return;
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return;
    }
}

/* ---- serving (in the child) ---------------------------------------------- */

/* Answers are logged like tls-alpn-01's: info for a challenge served, debug
 * for the rest.  The target is the client's text: escaped and cut short. */
static void log_answer(const char *who, int status, const http01_entry *hit, const char *why,
                       const http_request *req)
{
    if (hit != NULL) {
        ks_info("http-01: answered %s for token %s", who, hit->token);
        return;
    }
    char *esc = req->target ? ks_escape_new(req->target, strnlen(req->target, 200)) : NULL;
    ks_debug("http-01: %s: %d (%s)%s%s", who, status, why ? why : "?", esc ? " for " : "",
             esc ? esc : "");
    free(esc);
}

/* Reads one request and answers it (responder_child_ops.serve). */
static void exchange(void *arg, int fd, long long deadline, const char *who)
{
    const http01_set *set = arg;
    head_buf hb;
    hb.len = hb.end = 0;
    http_request req = {0};
    const http01_entry *hit = NULL;
    const char *why = NULL;
    ks_err err = {0};
    int status = read_head(fd, &hb, deadline, &why, &err);
    if (status < 0) {
        ks_debug("http-01: %s: no request: %s", who, err.msg);
        return;
    }
    if (status == 0)
        status = parse_head(&hb, &req, &why);
    if (status == 0)
        status = select_answer(&req, set, &hit, &why);
    int head_only = req.method != NULL && strcmp(req.method, "HEAD") == 0;
    if (respond(fd, status, hit, head_only, deadline, &err) < 0) {
        ks_debug("http-01: %s: answering %d: %s", who, status, err.msg);
        return;
    }
    linger(fd, deadline);
    log_answer(who, status, hit, why, &req);
}

/* There is nothing to make: the answers are the strings in the set
 * (responder_child_ops.prepare). */
static int announce(void *arg, int port, ks_err *err)
{
    const http01_set *set = arg;
    (void)err;
    for (size_t i = 0; i < set->n; i++)
        ks_info("http-01: serving token %s on port %d", set->e[i].token, port);
    return 0;
}

/* The child's copy of the set, before it exits (responder_child_ops.release). */
static void release(void *arg)
{
    set_free(arg);
}

static const responder_child_ops http01_ops = {
    .name = "http-01",
    .conn_timeout_ms = ACME_HTTP01_CONN_TIMEOUT_MS,
    .prepare = announce,
    .serve = exchange,
    .release = release,
};

/* ---- the parent's side --------------------------------------------------- */

acme_http01_responder *acme_http01_start(const char *addr, int port,
                                         const acme_http01_challenge *ch, size_t n, ks_err *err)
{
    http01_set *set = set_new(ch, n, err);
    acme_http01_responder *r = set ? calloc(1, sizeof(*r)) : NULL;
    if (set != NULL && r == NULL)
        ks_fail(err, "out of memory");
    int ok = r != NULL && responder_child_start(&r->child, &http01_ops, set, addr, port, err) == 0;
    set_free(set); /* the child has its own copy */
    if (!ok) {
        free(r);
        ks_failp(err, "http-01 responder");
        return NULL;
    }
    return r;
}

int acme_http01_port(const acme_http01_responder *r)
{
    return r->child.port;
}

void acme_http01_stop(acme_http01_responder *r)
{
    if (r == NULL)
        return;
    responder_child_stop(&r->child);
    free(r);
}
