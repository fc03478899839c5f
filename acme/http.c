#include "http.h"

#include "ks_log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct acme_http {
    CURL *curl;
    char *ca_file;
    long connect_timeout_ms;
    long total_timeout_ms;
    char *user_agent;
};

struct body_sink {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    int overflow;
};

acme_http *acme_http_new(const acme_http_options *opts, ks_err *err)
{
    acme_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    h->curl = curl_easy_init();
    h->ca_file = opts->ca_file ? strdup(opts->ca_file) : NULL;
    h->user_agent = strdup(opts->user_agent ? opts->user_agent : "keysvc/" KEYSVC_VERSION);
    h->connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : 10000;
    h->total_timeout_ms = opts->total_timeout_ms ? opts->total_timeout_ms : 60000;
    if (h->curl == NULL || h->user_agent == NULL || (opts->ca_file && h->ca_file == NULL)) {
        ks_fail(err, "cannot initialise libcurl");
        acme_http_free(h);
        return NULL;
    }
    return h;
}

void acme_http_free(acme_http *h)
{
    if (h == NULL)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->ca_file);
    free(h->user_agent);
    free(h);
}

void acme_response_clear(acme_response *r)
{
    free(r->body);
    free(r->content_type);
    free(r->location);
    free(r->replay_nonce);
    free(r->retry_after);
    free(r->link);
    memset(r, 0, sizeof(*r));
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body_sink *s = userdata;
    size_t n = size * nmemb;
    if (s->len + n > s->max) {
        s->overflow = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->cap) {
        size_t ncap = s->cap ? s->cap : 4096;
        while (ncap < s->len + n + 1)
            ncap *= 2;
        char *nd = realloc(s->data, ncap);
        if (nd == NULL)
            return 0;
        s->data = nd;
        s->cap = ncap;
    }
    memcpy(s->data + s->len, ptr, n);
    s->len += n;
    s->data[s->len] = '\0';
    return n;
}

/* Counts libcurl's attempts at sending one request.  When a reused
 * connection dies before any answer, libcurl sends the request again on a
 * new connection, on its own; this is how that is noticed. */
static int on_prereq(void *userdata, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    (*(int *)userdata)++;
    return CURL_PREREQFUNC_OK;
}

static char *trimmed_dup(const char *start, const char *end)
{
    while (start < end && isspace((unsigned char)*start))
        start++;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    return strndup(start, (size_t)(end - start));
}

/* Several Link headers are one list (RFC 9110 5.3): joined with ", ".  A
 * hostile server cannot make the list grow without bound. */
static void append_link(acme_response *r, const char *start, const char *end)
{
    char *value = trimmed_dup(start, end);
    if (value == NULL || value[0] == '\0') {
        free(value);
        return;
    }
    size_t old = r->link ? strlen(r->link) : 0;
    if (old + strlen(value) > ACME_MAX_LINKS_LEN) {
        free(value);
        return;
    }
    char *joined = malloc(old + strlen(value) + 3);
    if (joined != NULL)
        snprintf(joined, old + strlen(value) + 3, "%s%s%s", r->link ? r->link : "",
                 old ? ", " : "", value);
    free(value);
    if (joined != NULL) {
        free(r->link);
        r->link = joined;
    }
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    acme_response *r = userdata;
    size_t n = size * nitems;
    const char *end = buf + n;
    const char *colon = memchr(buf, ':', n);
    /* A new status line (after 100-continue or similar) starts a fresh set. */
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        long status = r->status;
        char *body = r->body;
        size_t body_len = r->body_len;
        r->body = NULL;
        acme_response_clear(r);
        r->status = status;
        r->body = body;
        r->body_len = body_len;
        return n;
    }
    if (colon == NULL)
        return n;
    size_t name_len = (size_t)(colon - buf);
    const char *v = colon + 1;
    char **slot = NULL;
    if (name_len == 12 && strncasecmp(buf, "Content-Type", 12) == 0)
        slot = &r->content_type;
    else if (name_len == 8 && strncasecmp(buf, "Location", 8) == 0)
        slot = &r->location;
    else if (name_len == 12 && strncasecmp(buf, "Replay-Nonce", 12) == 0)
        slot = &r->replay_nonce;
    else if (name_len == 11 && strncasecmp(buf, "Retry-After", 11) == 0)
        slot = &r->retry_after;
    if (slot != NULL) {
        free(*slot);
        *slot = trimmed_dup(v, end);
    } else if (name_len == 4 && strncasecmp(buf, "Link", 4) == 0) {
        append_link(r, v, end);
    }
    return n;
}

static int classify_curl_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return ACME_HTTP_NOT_SENT;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return ACME_HTTP_TRANSIENT;
    default:
        return ACME_HTTP_FATAL;
    }
}

static void setup_handle(acme_http *h, const char *method, const char *url, const char *body,
                         struct curl_slist *headers)
{
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->total_timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
}

int acme_http_request(acme_http *h, const char *method, const char *url, const char *body,
                      const char *accept, size_t max_body, acme_response *resp, ks_err *err)
{
    struct body_sink sink = {.max = max_body};
    struct curl_slist *headers = NULL;
    char accept_hdr[128];
    char curl_detail[CURL_ERROR_SIZE] = "";
    int result = ACME_HTTP_OK;
    int attempts = 0;

    memset(resp, 0, sizeof(*resp));
    if (strcmp(method, "POST") == 0)
        headers = curl_slist_append(headers, "Content-Type: application/jose+json");
    snprintf(accept_hdr, sizeof(accept_hdr), "Accept: %s", accept ? accept : "application/json");
    headers = curl_slist_append(headers, accept_hdr);
    /* No "Expect: 100-continue" round trip for our small bodies. */
    headers = curl_slist_append(headers, "Expect:");

    setup_handle(h, method, url, body, headers);
    curl_easy_setopt(h->curl, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(h->curl, CURLOPT_PREREQDATA, &attempts);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, curl_detail);

    ks_debug("%s %s", method, url);
    CURLcode rc = curl_easy_perform(h->curl);
    /* The buffer is on this stack frame: do not leave curl pointing at it. */
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, NULL);
    if (sink.overflow) {
        ks_fail(err, "%s %s: response body larger than %zu bytes, refused", method, url, max_body);
        result = ACME_HTTP_FATAL;
    } else if (rc != CURLE_OK) {
        ks_fail(err, "%s %s: %s", method, url,
                curl_detail[0] ? curl_detail : curl_easy_strerror(rc));
        result = classify_curl_error(rc);
        /* A timeout before a single byte of the request went out (in the
         * connect or TLS phase) left the server nothing to act on. */
        long sent = 0;
        if (result == ACME_HTTP_TRANSIENT &&
            curl_easy_getinfo(h->curl, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK && sent == 0)
            result = ACME_HTTP_NOT_SENT;
    }
    /* libcurl sent the request a second time after the connection failed.
     * A CA that acted on the first copy must refuse the replayed nonce, so
     * an answer means the first copy was not acted on; an error may only be
     * that refusal (badNonce): the request may have reached the server, and
     * retrying it as if it had not would repeat it. */
    long resent_status = 0;
    if (result == ACME_HTTP_OK && attempts > 1 && strcmp(method, "POST") == 0) {
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resent_status);
        if (resent_status >= 400 || resent_status == 0) {
            ks_fail(err, "%s %s: the connection failed after the request was sent, and "
                         "libcurl's own resend got HTTP %ld",
                    method, url, resent_status);
            result = ACME_HTTP_TRANSIENT;
        } else {
            ks_debug("%s %s: the connection failed; libcurl sent the request again", method,
                     url);
        }
    }
    if (result != ACME_HTTP_OK) {
        free(sink.data);
        acme_response_clear(resp);
        curl_slist_free_all(headers);
        return result;
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body = sink.data ? sink.data : strdup("");
    resp->body_len = sink.len;
    curl_slist_free_all(headers);
    if (resp->body == NULL) {
        acme_response_clear(resp);
        ks_fail(err, "out of memory");
        return ACME_HTTP_FATAL;
    }
    ks_debug("%s %s -> %ld (%zu bytes)", method, url, resp->status, resp->body_len);
    return ACME_HTTP_OK;
}
