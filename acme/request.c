/*
 * The one request path of the ACME client: nonces, signing, and the retry
 * policy.  Nothing else in acme/ retries.
 */
#include "internal.h"

#include "jws.h"
#include "ks_log.h"
#include "ks_util.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* badNonce is the CA asking for a fresh nonce, not a failure; pebble rejects
 * up to half of them on purpose.  The odds of this many in a row at 50 % are
 * below one in a million. */
#define MAX_BAD_NONCE_RETRIES 25
#define BACKOFF_FIRST_MS 250
#define BACKOFF_CAP_MS 8000

/* Longer than any wait the retry budget allows; a larger Retry-After means
 * "not within this run" and is clamped here so arithmetic cannot overflow. */
#define RETRY_AFTER_CAP_MS (7LL * 24 * 3600 * 1000)

long long acme_retry_after_ms(const char *value)
{
    if (value == NULL || *value == '\0')
        return -1;
    char *end = NULL;
    errno = 0;
    long long secs = strtoll(value, &end, 10);
    if (end != value && *end == '\0') {
        if (secs < 0)
            return -1;
        if (errno == ERANGE || secs > RETRY_AFTER_CAP_MS / 1000)
            return RETRY_AFTER_CAP_MS;
        return secs * 1000;
    }
    time_t when = curl_getdate(value, NULL);
    if (when == (time_t)-1)
        return -1;
    long long delta_s = (long long)when - (long long)time(NULL);
    if (delta_s <= 0)
        return 0;
    return delta_s > RETRY_AFTER_CAP_MS / 1000 ? RETRY_AFTER_CAP_MS : delta_s * 1000;
}

/* Random jitter of up to a quarter of the interval keeps many workers that
 * failed together from retrying together. */
static long long with_jitter(long long ms)
{
    unsigned int r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return ms;
    return ms + (long long)(r % (unsigned)(ms / 4 + 1));
}

int acme_url_ok(const char *url)
{
    if (url == NULL || strncmp(url, "https://", 8) != 0 || url[8] == '\0')
        return 0;
    size_t len = 0;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++, len++)
        if (*p < 0x21 || *p > 0x7e || len >= ACME_MAX_URL)
            return 0;
    return 1;
}

static int is_problem(const acme_response *resp)
{
    return resp->content_type != NULL &&
           strncasecmp(resp->content_type, "application/problem+json", 24) == 0;
}

/* The problem "type" of a response, copied (caller frees), or NULL. */
static char *problem_type_new(const acme_response *resp)
{
    if (!is_problem(resp))
        return NULL;
    json_object *obj = json_tokener_parse(resp->body);
    json_object *type = NULL;
    char *out = NULL;
    if (obj && json_object_object_get_ex(obj, "type", &type) &&
        json_object_is_type(type, json_type_string))
        out = strdup(json_object_get_string(type));
    json_object_put(obj);
    return out;
}

static int problem_is(const char *type, const char *name)
{
    static const char prefix[] = "urn:ietf:params:acme:error:";
    return type != NULL && strncmp(type, prefix, sizeof(prefix) - 1) == 0 &&
           strcmp(type + sizeof(prefix) - 1, name) == 0;
}

int acme_problem_is(const acme_response *resp, const char *name)
{
    char *type = problem_type_new(resp);
    int is = problem_is(type, name);
    free(type);
    return is;
}

static void take_nonce(acme_client *c, acme_response *resp)
{
    if (resp->replay_nonce == NULL || *resp->replay_nonce == '\0')
        return;
    free(c->nonce);
    c->nonce = resp->replay_nonce;
    resp->replay_nonce = NULL;
}

/* The budget of one request: how long it may keep retrying, and the
 * backoff for the next wait. */
typedef struct retry_budget {
    long long deadline_ms;
    long long backoff_ms;
    int bad_nonces;
} retry_budget;

static void budget_start(retry_budget *b, long long budget_ms)
{
    b->deadline_ms = ks_now_ms() + budget_ms;
    b->backoff_ms = BACKOFF_FIRST_MS;
    b->bad_nonces = 0;
}

/* `why` without a leading "METHOD URL: " (transport errors name the request
 * themselves; the messages below name it once). */
static const char *reason_only(const char *why, const char *method, const char *url)
{
    size_t m = strlen(method), u = strlen(url);
    if (strncmp(why, method, m) == 0 && why[m] == ' ' && strncmp(why + m + 1, url, u) == 0 &&
        strncmp(why + m + 1 + u, ": ", 2) == 0)
        return why + m + 1 + u + 2;
    return why;
}

/* Sleeps before the next attempt: the server's Retry-After when it asked for
 * longer than our backoff (server_wait_ms < 0 when it did not), otherwise
 * the backoff, which then grows.  Fails when that would pass the deadline. */
static int budget_wait(retry_budget *b, long long server_wait_ms, const char *method,
                       const char *url, const char *why, ks_err *err)
{
    long long wait = with_jitter(b->backoff_ms);
    if (server_wait_ms > wait)
        wait = server_wait_ms;
    b->backoff_ms = b->backoff_ms * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : b->backoff_ms * 2;
    /* Compared as a difference: now + wait could overflow. */
    why = reason_only(why, method, url);
    if (wait > b->deadline_ms - ks_now_ms())
        return ks_fail(err, "%s %s: %s; giving up (a retry would wait %lld ms, beyond the limit)",
                       method, url, why, wait);
    ks_info("%s %s: %s; retrying in %lld ms", method, url, why, wait);
    ks_sleep_ms(wait);
    return 0;
}

/* Whether an HTTP status is worth another try, given whether repeating the
 * request is harmless.  503 and 429 (and rateLimited) mean the server did not
 * act; other 5xx may come after it did. */
static int status_retryable(const acme_response *resp, const char *ptype, int idempotent)
{
    if (resp->status == 503 || resp->status == 429 || problem_is(ptype, "rateLimited"))
        return 1;
    return idempotent && (resp->status == 500 || resp->status == 502 || resp->status == 504);
}

/* One attempt's outcome, as the retry loops see it. */
enum attempt {
    ATTEMPT_DONE,  /* a response to hand back */
    ATTEMPT_RETRY, /* wait, then try again */
    ATTEMPT_AGAIN, /* try again at once (badNonce) */
    ATTEMPT_FAIL,  /* err is set */
};

/* Classifies a finished exchange; on ATTEMPT_RETRY *server_wait is the
 * Retry-After in ms (or -1) and `why` says what happened. */
static enum attempt classify(acme_client *c, int rc, acme_response *resp, int idempotent,
                             retry_budget *b, long long *server_wait, char *why, size_t why_cap,
                             ks_err *err)
{
    *server_wait = -1;
    if (rc == ACME_HTTP_FATAL)
        return ATTEMPT_FAIL;
    if (rc == ACME_HTTP_NOT_SENT || (rc == ACME_HTTP_TRANSIENT && idempotent)) {
        snprintf(why, why_cap, "%s", err ? err->msg : "connection failed");
        return ATTEMPT_RETRY;
    }
    if (rc == ACME_HTTP_TRANSIENT) {
        /* The CA may have acted on it: repeating could duplicate the action. */
        ks_failp(err, "the request may have reached the server; not repeated");
        return ATTEMPT_FAIL;
    }
    take_nonce(c, resp);
    char *ptype = problem_type_new(resp);
    enum attempt out = ATTEMPT_DONE;
    if (problem_is(ptype, "badNonce") && b->bad_nonces < MAX_BAD_NONCE_RETRIES) {
        /* RFC 8555 6.5: retry at once with the nonce the error carried. */
        b->bad_nonces++;
        out = ATTEMPT_AGAIN;
    } else if (status_retryable(resp, ptype, idempotent)) {
        *server_wait = acme_retry_after_ms(resp->retry_after);
        snprintf(why, why_cap, "HTTP %ld", resp->status);
        out = ATTEMPT_RETRY;
    }
    free(ptype);
    if (out != ATTEMPT_DONE)
        acme_response_clear(resp);
    return out;
}

/* GET or HEAD: harmless to repeat, no nonce needed.  `b` is the budget of
 * the request this one serves (NULL: its own). */
static int request_idempotent(acme_client *c, const char *method, const char *url,
                              const char *accept, size_t max_body, acme_response *resp,
                              retry_budget *outer, ks_err *err)
{
    retry_budget own;
    retry_budget *b = outer;
    if (b == NULL) {
        budget_start(&own, c->max_wait_ms);
        b = &own;
    }
    for (;;) {
        char why[KS_ERR_MAX];
        long long server_wait;
        int rc = acme_http_request(c->http, method, url, NULL, accept, max_body, resp, err);
        enum attempt a = classify(c, rc, resp, 1, b, &server_wait, why, sizeof(why), err);
        if (a == ATTEMPT_DONE)
            return 0;
        if (a == ATTEMPT_FAIL ||
            (a == ATTEMPT_RETRY && budget_wait(b, server_wait, method, url, why, err) < 0))
            return -1;
    }
}

int acme_get(acme_client *c, const char *url, const char *accept, size_t max_body,
             acme_response *resp, ks_err *err)
{
    return request_idempotent(c, "GET", url, accept, max_body, resp, NULL, err);
}

static int fetch_nonce(acme_client *c, retry_budget *b, ks_err *err)
{
    if (c->new_nonce_url == NULL)
        return ks_fail(err, "the ACME directory has not been loaded");
    acme_response resp;
    if (request_idempotent(c, "HEAD", c->new_nonce_url, NULL, ACME_MAX_BODY, &resp, b, err) < 0)
        return ks_failp(err, "getting a nonce");
    long status = resp.status;
    acme_response_clear(&resp);
    if (c->nonce == NULL)
        return ks_fail(err, "HEAD %s: HTTP %ld without a Replay-Nonce", c->new_nonce_url, status);
    return 0;
}

/* One signed POST with whatever nonce we hold; the nonce is consumed. */
static int post_once(acme_client *c, const acme_signer *signer, const char *kid, const char *url,
                     const char *payload, const char *accept, size_t max_body,
                     acme_response *resp, retry_budget *b, ks_err *err)
{
    if (c->nonce == NULL && fetch_nonce(c, b, err) < 0)
        return ACME_HTTP_FATAL;
    char *nonce = c->nonce;
    c->nonce = NULL;
    char *body = acme_jws_new(signer, kid, nonce, url, payload, err);
    free(nonce);
    if (body == NULL)
        return ACME_HTTP_FATAL;
    int rc = acme_http_request(c->http, "POST", url, body, accept, max_body, resp, err);
    free(body);
    return rc;
}

int acme_post(acme_client *c, const char *url, const char *payload, const char *accept,
              size_t max_body, acme_response *resp, ks_err *err)
{
    memset(resp, 0, sizeof(*resp));
    if (!c->have_signer)
        return ks_fail(err, "POST %s: no account key set", url);
    return acme_post_signed(c, &c->signer, c->kid, url, payload, accept, max_body, resp, err);
}

int acme_post_signed(acme_client *c, const acme_signer *signer, const char *kid,
                     const char *url, const char *payload, const char *accept, size_t max_body,
                     acme_response *resp, ks_err *err)
{
    memset(resp, 0, sizeof(*resp));
    /* POST-as-GET reads; a POST with a payload may change state at the CA. */
    int idempotent = payload == NULL;
    retry_budget b;
    budget_start(&b, c->max_wait_ms);
    for (;;) {
        char why[KS_ERR_MAX];
        long long server_wait;
        int rc = post_once(c, signer, kid, url, payload, accept, max_body, resp, &b, err);
        enum attempt a = classify(c, rc, resp, idempotent, &b, &server_wait, why, sizeof(why),
                                  err);
        if (a == ATTEMPT_DONE)
            return 0;
        if (a == ATTEMPT_AGAIN) {
            ks_debug("POST %s: badNonce, retrying (%d)", url, b.bad_nonces);
            continue;
        }
        if (a == ATTEMPT_FAIL ||
            (a == ATTEMPT_RETRY && budget_wait(&b, server_wait, "POST", url, why, err) < 0))
            return -1;
    }
}

static void append(char *buf, size_t cap, size_t *used, const char *text)
{
    int n = snprintf(buf + *used, cap - *used, "%s", text);
    if (n > 0)
        *used += (size_t)n < cap - *used ? (size_t)n : cap - *used - 1;
}

/* Appends "type: detail" of one problem object, escaped. */
static void append_problem(char *buf, size_t cap, size_t *used, json_object *problem)
{
    static const char prefix[] = "urn:ietf:params:acme:error:";
    json_object *type = NULL, *detail = NULL;
    const char *t = json_object_object_get_ex(problem, "type", &type) &&
                            json_object_is_type(type, json_type_string)
                        ? json_object_get_string(type)
                        : "unknown";
    const char *d = json_object_object_get_ex(problem, "detail", &detail) &&
                            json_object_is_type(detail, json_type_string)
                        ? json_object_get_string(detail)
                        : "";
    if (strncmp(t, prefix, sizeof(prefix) - 1) == 0)
        t += sizeof(prefix) - 1;
    char *te = ks_escape_new(t, (size_t)-1);
    char *de = ks_escape_new(d, (size_t)-1);
    append(buf, cap, used, te ? te : "?");
    if (de && *de) {
        append(buf, cap, used, ": ");
        append(buf, cap, used, de);
    }
    free(te);
    free(de);
}

char *acme_problem_summary_new(json_object *problem)
{
    char buf[2048];
    size_t used = 0;
    buf[0] = '\0';
    append_problem(buf, sizeof(buf), &used, problem);
    json_object *subs = NULL;
    int opened = 0;
    if (json_object_object_get_ex(problem, "subproblems", &subs) &&
        json_object_is_type(subs, json_type_array)) {
        size_t n = json_object_array_length(subs);
        for (size_t i = 0; i < n; i++) {
            json_object *sub = json_object_array_get_idx(subs, i);
            if (!json_object_is_type(sub, json_type_object))
                continue;
            append(buf, sizeof(buf), &used, opened ? "; " : " [");
            opened = 1;
            json_object *ident = NULL, *value = NULL;
            if (json_object_object_get_ex(sub, "identifier", &ident) &&
                json_object_object_get_ex(ident, "value", &value) &&
                json_object_is_type(value, json_type_string)) {
                char *ve = ks_escape_new(json_object_get_string(value), (size_t)-1);
                append(buf, sizeof(buf), &used, ve ? ve : "?");
                append(buf, sizeof(buf), &used, ": ");
                free(ve);
            }
            append_problem(buf, sizeof(buf), &used, sub);
        }
    }
    if (opened)
        append(buf, sizeof(buf), &used, "]");
    return strdup(buf);
}

int acme_fail_problem(const acme_response *resp, const char *what, const char *url, ks_err *err)
{
    json_object *obj = is_problem(resp) ? json_tokener_parse(resp->body) : NULL;
    if (obj != NULL && json_object_is_type(obj, json_type_object)) {
        char *summary = acme_problem_summary_new(obj);
        if (ks_log_get_level() >= KS_LOG_DEBUG) {
            char *full = ks_escape_new(resp->body, resp->body_len);
            ks_debug("problem document from %s: %s", url, full ? full : "?");
            free(full);
        }
        ks_fail(err, "%s: %s: HTTP %ld: %s", what, url, resp->status, summary ? summary : "?");
        free(summary);
    } else {
        ks_fail(err, "%s: %s: HTTP %ld", what, url, resp->status);
    }
    json_object_put(obj);
    return -1;
}

char *acme_json_text_new(json_object *obj)
{
    const char *text =
        json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    return text ? strdup(text) : NULL;
}

json_object *acme_parse_json(const acme_response *resp, const char *url, ks_err *err)
{
    if (resp->content_type == NULL ||
        (strncasecmp(resp->content_type, "application/json", 16) != 0 &&
         strncasecmp(resp->content_type, "application/problem+json", 24) != 0)) {
        char *ct = ks_escape_new(resp->content_type ? resp->content_type : "(none)", (size_t)-1);
        ks_fail(err, "%s: expected a JSON response, got Content-Type %s", url, ct ? ct : "?");
        free(ct);
        return NULL;
    }
    enum json_tokener_error jerr = json_tokener_success;
    json_object *obj = json_tokener_parse_verbose(resp->body, &jerr);
    if (obj == NULL) {
        ks_fail(err, "%s: malformed JSON response: %s", url, json_tokener_error_desc(jerr));
        return NULL;
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        ks_fail(err, "%s: expected a JSON object in the response", url);
        return NULL;
    }
    return obj;
}

int acme_json_string(json_object *obj, const char *key, int required, const char **out,
                     const char *url, ks_err *err)
{
    json_object *v = NULL;
    *out = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL) {
        if (required)
            return ks_fail(err, "%s: response lacks \"%s\"", url, key);
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return ks_fail(err, "%s: \"%s\" in the response is not a string", url, key);
    *out = json_object_get_string(v);
    return 0;
}

int acme_json_array(json_object *obj, const char *key, int required, json_object **out,
                    const char *url, ks_err *err)
{
    json_object *v = NULL;
    *out = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL) {
        if (required)
            return ks_fail(err, "%s: response lacks \"%s\"", url, key);
        return 0;
    }
    if (!json_object_is_type(v, json_type_array))
        return ks_fail(err, "%s: \"%s\" in the response is not an array", url, key);
    *out = v;
    return 0;
}

int acme_json_dup_string(json_object *obj, const char *key, int required, char **dst,
                         const char *url, ks_err *err)
{
    const char *s = NULL;
    if (acme_json_string(obj, key, required, &s, url, err) < 0)
        return -1;
    if (s == NULL)
        return 0;
    char *copy = strdup(s);
    if (copy == NULL)
        return ks_fail(err, "out of memory");
    free(*dst);
    *dst = copy;
    return 0;
}

int acme_poll_sleep(const acme_response *resp, long long *interval_ms, long long deadline_ms,
                    const char *what, ks_err *err)
{
    /* The server's Retry-After when it asks for longer than our interval;
     * "0" or a past date must not turn polling into a busy loop. */
    long long ra = resp ? acme_retry_after_ms(resp->retry_after) : -1;
    long long wait = ra > *interval_ms ? ra : *interval_ms;
    if (wait > deadline_ms - ks_now_ms())
        return ks_fail(err, "%s: still not done when the polling time ran out", what);
    ks_sleep_ms(wait);
    /* Short first polls catch a fast CA; then back off so a slow one is not hammered. */
    *interval_ms = *interval_ms * 2 > 2000 ? 2000 : *interval_ms * 2;
    return 0;
}
