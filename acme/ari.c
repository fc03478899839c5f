/*
 * ACME Renewal Information (RFC 9773): the certificate identifier, the
 * suggested window, and a renewal moment inside it.
 */
#include "internal.h"

#include "b64.h"
#include "ks_log.h"
#include "ks_util.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The serial number's INTEGER content bytes (a leading 0x00 when the high
 * bit is set, as DER writes a positive number), base64url. */
static char *serial_b64_new(const X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    if (bn == NULL || BN_is_negative(bn)) {
        BN_free(bn);
        return NULL;
    }
    int n = BN_num_bytes(bn);
    unsigned char *bytes = malloc((size_t)n + 1);
    char *out = NULL;
    if (bytes != NULL) {
        bytes[0] = 0;
        BN_bn2bin(bn, bytes + 1);
        int pad = n == 0 || (bytes[1] & 0x80);
        out = b64url_encode_new(bytes + (pad ? 0 : 1), (size_t)n + (pad ? 1 : 0));
    }
    free(bytes);
    BN_free(bn);
    return out;
}

char *acme_ari_cert_id_new(const unsigned char *der, size_t der_len, ks_err *err)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    char *out = NULL;
    if (x == NULL) {
        ks_fail_openssl(err, "renewal information: not a DER certificate");
        return NULL;
    }
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(x);
    if (akid == NULL || ASN1_STRING_length(akid) <= 0) {
        ks_fail(err, "renewal information: the certificate has no authority key identifier");
        X509_free(x);
        return NULL;
    }
    char *akid64 = b64url_encode_new(ASN1_STRING_get0_data(akid), (size_t)ASN1_STRING_length(akid));
    char *serial64 = serial_b64_new(x);
    if (akid64 != NULL && serial64 != NULL)
        out = ks_strdup_printf("%s.%s", akid64, serial64);
    if (out == NULL)
        ks_fail(err, "renewal information: cannot encode the certificate identifier");
    free(akid64);
    free(serial64);
    X509_free(x);
    return out;
}

/* Exactly `n` digits at *p (advanced past them) as a number, or -1. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

/* A number of `n` digits in [lo, hi] followed by `sep` ('\0': none). */
static int field(const char **p, int n, int lo, int hi, char sep)
{
    int v = digits(p, n);
    /* Steps over the separator only when it is there: stepping over a
     * mismatch could step over the final NUL, and the next field would
     * read past the end of the text. */
    if (v < lo || v > hi || (sep != '\0' && **p != sep))
        return -1;
    if (sep != '\0')
        (*p)++;
    return v;
}

/* "Z", or "+hh:mm" / "-hh:mm": the offset from UTC in seconds, or -1
 * with *ok 0. */
static long utc_offset(const char **p, int *ok)
{
    *ok = 1;
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        return 0;
    }
    int sign = **p == '-' ? -1 : **p == '+' ? 1 : 0;
    int h = sign ? ((*p)++, field(p, 2, 0, 23, ':')) : -1;
    int m = h >= 0 ? field(p, 2, 0, 59, '\0') : -1;
    *ok = m >= 0;
    return *ok ? sign * (h * 3600L + m * 60L) : -1;
}

/* Days in a month of the Gregorian calendar. */
static int days_in_month(int year, int mon)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return mon == 2 && leap ? 29 : days[mon - 1];
}

int acme_rfc3339_parse(const char *text, time_t *out)
{
    struct tm tm = {0};
    const char *p = text;
    int year = field(&p, 4, 0, 9999, '-'), mon = field(&p, 2, 1, 12, '-');
    int day = field(&p, 2, 1, 31, '\0');
    /* The day is checked against its month: timegm() would quietly turn
     * "02-30" into March 2nd. */
    if (year < 0 || mon < 0 || day < 0 || day > days_in_month(year, mon) ||
        (*p != 'T' && *p != 't'))
        return -1;
    p++;
    int hour = field(&p, 2, 0, 23, ':'), min = field(&p, 2, 0, 59, ':');
    int sec = field(&p, 2, 0, 60, '\0'), ok;
    if (hour < 0 || min < 0 || sec < 0)
        return -1;
    if (*p == '.') { /* fractions of a second: read, not kept */
        if (!isdigit((unsigned char)*++p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    long offset = utc_offset(&p, &ok);
    if (!ok || *p != '\0')
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec == 60 ? 59 : sec; /* a leap second */
    /* -1 is also 1969-12-31T23:59:59Z: only errno tells an overflow. */
    errno = 0;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 && errno != 0)
        return -1;
    *out = t - offset;
    return 0;
}

void acme_renewal_info_clear(acme_renewal_info *ri)
{
    free(ri->explanation_url);
    memset(ri, 0, sizeof(*ri));
}

static int read_window(acme_renewal_info *ri, json_object *obj, const char *url, ks_err *err)
{
    json_object *win = NULL;
    const char *start = NULL, *end = NULL;
    if (!json_object_object_get_ex(obj, "suggestedWindow", &win) ||
        !json_object_is_type(win, json_type_object))
        return ks_fail(err, "%s: no suggestedWindow object", url);
    if (acme_json_string(win, "start", 1, &start, url, err) < 0 ||
        acme_json_string(win, "end", 1, &end, url, err) < 0)
        return -1;
    if (acme_rfc3339_parse(start, &ri->start) < 0 || acme_rfc3339_parse(end, &ri->end) < 0)
        return ks_fail(err, "%s: suggestedWindow times are not RFC 3339", url);
    if (ri->end <= ri->start)
        return ks_fail(err, "%s: suggestedWindow ends before it starts", url);
    if (acme_json_dup_string(obj, "explanationURL", 0, &ri->explanation_url, url, err) < 0)
        return -1;
    if (ri->explanation_url != NULL && !acme_url_ok(ri->explanation_url)) {
        free(ri->explanation_url);
        ri->explanation_url = NULL; /* informational only: dropped, not fatal */
    }
    return 0;
}

int acme_renewal_info_fetch(acme_client *c, const char *cert_id, acme_renewal_info *out,
                            ks_err *err)
{
    memset(out, 0, sizeof(*out));
    if (c->renewal_info_url == NULL)
        return ks_fail(err, "%s offers no renewalInfo", c->directory_url);
    if (!b64url_is_token(strchr(cert_id, '.') ? strchr(cert_id, '.') + 1 : ""))
        return ks_fail(err, "renewal information: malformed certificate identifier");
    char *url = ks_strdup_printf("%s/%s", c->renewal_info_url, cert_id);
    acme_response resp;
    memset(&resp, 0, sizeof(resp));
    int rc = url ? acme_get(c, url, "application/json", ACME_MAX_BODY, &resp, err) : -1;
    json_object *obj = NULL;
    if (url == NULL)
        ks_fail(err, "out of memory");
    if (rc == 0) {
        rc = -1;
        if (resp.status != 200)
            acme_fail_problem(&resp, "fetching renewal information", url, err);
        else if ((obj = acme_parse_json(&resp, url, err)) != NULL && read_window(out, obj, url, err) == 0)
            rc = 0;
    }
    long long wait = rc == 0 ? acme_retry_after_ms(resp.retry_after) : -1;
    out->retry_after_s = wait >= 0 ? wait / 1000 : 0;
    json_object_put(obj);
    acme_response_clear(&resp);
    free(url);
    if (rc < 0) {
        acme_renewal_info_clear(out);
        return ks_failp(err, "renewal information");
    }
    return 0;
}

time_t acme_ari_pick(const acme_renewal_info *ri)
{
    unsigned long long r = 0;
    long long span = (long long)ri->end - (long long)ri->start;
    if (span <= 1 || RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return ri->start;
    return ri->start + (time_t)(r % (unsigned long long)span);
}
