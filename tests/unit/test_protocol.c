/*
 * Protocol pieces with no network: Link headers (acme/link.h), RFC 3339
 * dates, the ARI certificate identifier and renewal moment, and the dns-01
 * record value (acme/acme.h).  Expected values are computed in the test
 * with OpenSSL and libc, not with the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "soft_key.h"

#include "acme.h"
#include "internal.h"
#include "ks_err.h"
#include "link.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>


static int is_b64url_alphabet(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return 0;
    return 1;
}

/* ---- acme_links_find ----------------------------------------------------- */

/* Runs acme_links_find and checks the result against `want` (n entries). */
static void expect_links(const char *header, const char *rel, size_t max, const char *const *want,
                         int n)
{
    char **urls = (char **)0x1; /* must be reset */
    int got = acme_links_find(header, rel, max, &urls);
    if (got != n)
        fail_msg("links(%s, rel=%s, max=%zu): %d, expected %d", header ? header : "NULL", rel, max,
                 got, n);
    if (n <= 0) {
        assert_null(urls);
        return;
    }
    assert_non_null(urls);
    for (int i = 0; i < n; i++)
        assert_string_equal(urls[i], want[i]);
    acme_links_free(urls, (size_t)got);
}

static void test_links_several_rels(void **state)
{
    (void)state;
    const char *h = "<https://ca.test/dir>;rel=\"index\", <https://ca.test/issuer/1>; rel=\"up\", "
                    "<https://ca.test/cert/1/1>; rel=\"alternate\", "
                    "<https://ca.test/cert/1/2>;rel=alternate";
    static const char *const alt[] = {"https://ca.test/cert/1/1", "https://ca.test/cert/1/2"};
    static const char *const up[] = {"https://ca.test/issuer/1"};
    static const char *const index[] = {"https://ca.test/dir"};
    expect_links(h, "alternate", 8, alt, 2);
    expect_links(h, "up", 8, up, 1);
    expect_links(h, "index", 8, index, 1);
    expect_links(h, "next", 8, NULL, 0);
    /* A relation name is matched whole, not as a prefix. */
    expect_links(h, "alt", 8, NULL, 0);
    expect_links(h, "alternates", 8, NULL, 0);
}

static void test_links_rel_lists_and_case(void **state)
{
    (void)state;
    const char *h =
        "<https://a.test/1>; rel=\"alternate up\", <https://a.test/2>; rel=\"up  "
        "alternate\", <https://a.test/3>; rel=\"alternateup\", "
        "<https://a.test/4>; rel=\"xalternate\", <https://a.test/5>; REL=\"ALTERNATE\", "
        "<https://a.test/6>; Rel=Alternate, <https://a.test/7>; rel = \"alternate\"";
    static const char *const alt[] = {"https://a.test/1", "https://a.test/2", "https://a.test/5",
                                      "https://a.test/6", "https://a.test/7"};
    static const char *const up[] = {"https://a.test/1", "https://a.test/2"};
    expect_links(h, "alternate", 8, alt, 5);
    expect_links(h, "up", 8, up, 2);
    expect_links(h, "ALTERNATE", 8, alt, 5);
}

static void test_links_quoted_commas_and_url_punctuation(void **state)
{
    (void)state;
    /* Commas, semicolons and angle brackets inside a quoted parameter, and
     * commas and semicolons inside <>, do not split links. */
    const char *h = "<https://a.test/x,y;z=1>; title=\"a, b; <c>, rel=up\"; rel=\"alternate\", "
                    "<https://a.test/2>; title=\"q\\\"uote, \\\\\"; rel=\"alternate\"; "
                    "crossorigin; type=text/plain";
    static const char *const alt[] = {"https://a.test/x,y;z=1", "https://a.test/2"};
    expect_links(h, "alternate", 8, alt, 2);
    /* "rel=up" inside the title is text, not a parameter. */
    expect_links(h, "up", 8, NULL, 0);
    /* A rel parameter inside a quoted title does not count, even after an
     * escaped quote. */
    expect_links("<https://a.test/1>; title=\"\\\"; rel=alternate\"", "alternate", 8, NULL, 0);
}

static void test_links_skips_unacceptable_urls(void **state)
{
    (void)state;
    char *long_url = malloc(ACME_MAX_URL + 64);
    assert_non_null(long_url);
    strcpy(long_url, "https://a.test/");
    size_t o = strlen(long_url);
    while (o < ACME_MAX_URL + 10)
        long_url[o++] = 'a';
    long_url[o] = '\0';
    size_t hn = strlen(long_url) + 512;
    char *h = malloc(hn);
    assert_non_null(h);
    snprintf(h, hn,
             "<http://a.test/plain>; rel=alternate, <ftp://a.test/f>; rel=alternate, "
             "</cert/relative>; rel=alternate, <https://>; rel=alternate, "
             "<https://a.test/with space>; rel=alternate, <HTTPS://a.test/upper>; rel=alternate, "
             "<%s>; rel=alternate, <https://a.test/ok>; rel=alternate, <>; rel=alternate",
             long_url);
    static const char *const want[] = {"https://a.test/ok"};
    expect_links(h, "alternate", 8, want, 1);
    /* Every link is refused: none, not an error. */
    expect_links("<http://a.test/1>; rel=alternate, <https://a.test/\x01>; rel=alternate",
                 "alternate", 8, NULL, 0);
    free(h);
    free(long_url);
}

static void test_links_max(void **state)
{
    (void)state;
    const char *h = "<https://a.test/1>;rel=alternate,<https://a.test/2>;rel=alternate,"
                    "<http://a.test/skipped>;rel=alternate,<https://a.test/3>;rel=alternate,"
                    "<https://a.test/4>;rel=alternate,<https://a.test/5>;rel=alternate";
    static const char *const want[] = {"https://a.test/1", "https://a.test/2", "https://a.test/3",
                                       "https://a.test/4", "https://a.test/5"};
    expect_links(h, "alternate", 3, want, 3);
    expect_links(h, "alternate", 1, want, 1);
    expect_links(h, "alternate", 0, NULL, 0);
    expect_links(h, "alternate", 5, want, 5);
    expect_links(h, "alternate", 100, want, 5);
    /* Links past `max` are still read: a malformed one still fails. */
    size_t n = strlen(h) + 64;
    char *bad = malloc(n);
    assert_non_null(bad);
    snprintf(bad, n, "%s, <https://a.test/6", h);
    expect_links(bad, "alternate", 2, NULL, -1);
    free(bad);
}

static void test_links_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "<https://a.test/1; rel=\"alternate\"",                  /* no > */
        "<https://a.test/1>; rel=\"alternate",                   /* unterminated quote */
        "<https://a.test/1>; rel=\"alternate\\\"",               /* escaped last quote */
        "<https://a.test/1>; title=\"x\\",                       /* backslash at the end */
        "https://a.test/1; rel=alternate",                       /* no < */
        "<https://a.test/1> rel=alternate",                      /* no ; */
        "<https://a.test/1>; rel=alternate junk",                /* junk after a value */
        "<https://a.test/1>; rel=\"alternate\"x",                /* junk after a quote */
        "<https://a.test/1>; rel=alternate, <https://a.test/2",  /* good, then no > */
        "<https://a.test/1>; rel=alternate, junk",               /* good, then junk */
        "<https://a.test/1>; rel=alternate; <https://a.test/2>", /* ; instead of , */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char **urls = (char **)0x1;
        int n = acme_links_find(bad[i], "alternate", 8, &urls);
        if (n != -1)
            fail_msg("malformed \"%s\" gave %d", bad[i], n);
        assert_null(urls);
    }
}

static void test_links_empty(void **state)
{
    (void)state;
    expect_links(NULL, "alternate", 8, NULL, 0);
    expect_links("", "alternate", 8, NULL, 0);
    expect_links("  \t ", "alternate", 8, NULL, 0);
    /* A link without any rel parameter, and one with an empty rel. */
    expect_links("<https://a.test/1>", "alternate", 8, NULL, 0);
    expect_links("<https://a.test/1>; rel=\"\"; rel=", "alternate", 8, NULL, 0);
}

/* Empty list elements are ignored (RFC 9110 5.6.1.2: a recipient MUST
 * accept them), not a malformed header. */
static void test_links_empty_list_elements(void **state)
{
    (void)state;
    static const char *const want[] = {"https://a.test/1", "https://a.test/2"};
    expect_links("<https://a.test/1>; rel=alternate,, <https://a.test/2>; rel=alternate",
                 "alternate", 8, want, 2);
    expect_links(", <https://a.test/1>; rel=alternate , ,<https://a.test/2>;rel=alternate,",
                 "alternate", 8, want, 2);
    expect_links(" , ,, ", "alternate", 8, NULL, 0);
}

/* A long rel value is cut to fit a buffer; a relation type cut in the
 * middle ("alternateup" -> "alternate") must not match as the shorter one,
 * and whole relation types before the cut still match. */
static void test_links_long_rel_value(void **state)
{
    (void)state;
    for (size_t pad = 230; pad < 280; pad++) {
        char h[1024];
        int o = snprintf(h, sizeof(h), "<https://a.test/1>; rel=\"");
        for (size_t i = 0; i < pad; i++)
            h[o++] = 'x';
        o += snprintf(h + o, sizeof(h) - (size_t)o, " alternateup\"");
        char **urls = NULL;
        int n = acme_links_find(h, "alternate", 8, &urls);
        if (n != 0)
            fail_msg("rel of %zu x's then \"alternateup\" matched \"alternate\"", pad);
        assert_null(urls);
    }
    char h[1024];
    int o = snprintf(h, sizeof(h), "<https://a.test/1>; rel=\"alternate ");
    for (size_t i = 0; i < 600; i++)
        h[o++] = 'y';
    snprintf(h + o, sizeof(h) - (size_t)o, "\"");
    static const char *const want[] = {"https://a.test/1"};
    expect_links(h, "alternate", 8, want, 1);
}

/* ---- acme_rfc3339_parse -------------------------------------------------- */

static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return timegm(&tm);
}

static void expect_time(const char *text, time_t want)
{
    time_t got = 12345;
    if (acme_rfc3339_parse(text, &got) != 0)
        fail_msg("\"%s\" was refused", text);
    if (got != want)
        fail_msg("\"%s\" gave %lld, expected %lld", text, (long long)got, (long long)want);
}

static void test_rfc3339_basic(void **state)
{
    (void)state;
    expect_time("2025-01-02T03:04:05Z", (time_t)1735787045);
    expect_time("2025-01-02T03:04:05Z", utc(2025, 1, 2, 3, 4, 5));
    expect_time("2025-01-02t03:04:05z", utc(2025, 1, 2, 3, 4, 5));
    expect_time("1970-01-01T00:00:00Z", 0);
    expect_time("2038-01-19T03:14:08Z", (time_t)2147483648LL);
    expect_time("9999-12-31T23:59:59Z", utc(9999, 12, 31, 23, 59, 59));
    expect_time("2025-12-31T23:59:59Z", utc(2025, 12, 31, 23, 59, 59));
    /* One second before the epoch is -1, a valid time, not an error. */
    expect_time("1969-12-31T23:59:59Z", (time_t)-1);
    expect_time("1969-12-31T23:59:58Z", (time_t)-2);
}

static void test_rfc3339_fractions_and_leap_second(void **state)
{
    (void)state;
    time_t t = utc(2025, 1, 2, 3, 4, 5);
    expect_time("2025-01-02T03:04:05.0Z", t);
    expect_time("2025-01-02T03:04:05.5Z", t);
    expect_time("2025-01-02T03:04:05.999999999Z", t);
    expect_time("2025-01-02T03:04:05.123456789012345678901234567890Z", t);
    expect_time("2025-01-02T03:04:05.25+01:00", t - 3600);
    /* A leap second counts as the second before it. */
    expect_time("2016-12-31T23:59:60Z", utc(2016, 12, 31, 23, 59, 59));
}

static void test_rfc3339_offsets(void **state)
{
    (void)state;
    time_t t = utc(2025, 6, 15, 12, 0, 0);
    expect_time("2025-06-15T12:00:00+00:00", t);
    expect_time("2025-06-15T12:00:00-00:00", t);
    expect_time("2025-06-15T12:00:00+01:30", t - 5400);
    expect_time("2025-06-15T12:00:00-05:00", t + 18000);
    expect_time("2025-06-15T12:00:00+23:59", t - (23 * 3600 + 59 * 60));
    expect_time("2025-06-15T12:00:00-23:59", t + (23 * 3600 + 59 * 60));
    /* Across a day, a month and a year. */
    expect_time("2025-01-01T00:30:00+01:00", utc(2024, 12, 31, 23, 30, 0));
    expect_time("2024-12-31T22:00:00-02:30", utc(2025, 1, 1, 0, 30, 0));
    expect_time("2025-03-01T01:00:00+02:00", utc(2025, 2, 28, 23, 0, 0));
}

static void test_rfc3339_leap_days(void **state)
{
    (void)state;
    expect_time("2024-02-29T12:00:00Z", utc(2024, 2, 29, 12, 0, 0));
    expect_time("2000-02-29T00:00:00Z", utc(2000, 2, 29, 0, 0, 0));
    expect_time("2024-02-29T12:00:00Z", utc(2024, 3, 1, 12, 0, 0) - 86400);
    expect_time("2025-04-30T00:00:00Z", utc(2025, 4, 30, 0, 0, 0));
    expect_time("2025-01-31T00:00:00Z", utc(2025, 1, 31, 0, 0, 0));
}

static void test_rfc3339_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "2025-13-02T03:04:05Z",
        "2025-00-02T03:04:05Z",
        "2025-01-32T03:04:05Z",
        "2025-01-00T03:04:05Z",
        "2025-02-30T03:04:05Z",
        "2025-02-29T03:04:05Z",
        "1900-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2025-04-31T00:00:00Z",
        "2025-06-31T00:00:00Z",
        "2025-09-31T00:00:00Z",
        "2025-11-31T00:00:00Z",
        "2025-01-02T24:00:00Z",
        "2025-01-02T03:60:05Z",
        "2025-01-02T03:04:61Z",
        "2025-01-02T03:04:05", /* no zone */
        "2025-01-02T03:04:05Zjunk",
        "2025-01-02T03:04:05Z ",
        "2025-01-02T03:04:05+01:00x",
        "",
        " 2025-01-02T03:04:05Z",
        "2025-01-02 03:04:05Z",
        "2025-01-02T 03:04:05Z",
        "2025-01-02T03:04:05 Z",
        "2025-01-02",
        "2025-01-02T03:04Z",
        "2025-1-02T03:04:05Z",
        "25-01-02T03:04:05Z",
        "99999-01-02T03:04:05Z",
        "+2025-01-02T03:04:05Z",
        "-2025-01-02T03:04:05Z",
        "123456789012-01-02T03:04:05Z",
        "2025-01-02T03:04:05.Z",
        "2025-01-02T03:04:05.xZ",
        "2025-01-02T03:04:05,5Z",
        "2025-01-02T03:04:05+01",
        "2025-01-02T03:04:05+0100",
        "2025-01-02T03:04:05+1:00",
        "2025-01-02T03:04:05+24:00",
        "2025-01-02T03:04:05+01:60",
        "2025-01-02T03:04:05UTC",
        "2025/01/02T03:04:05Z",
        "2025-01-02X03:04:05Z",
        "２０２５-01-02T03:04:05Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        time_t t = 777;
        if (acme_rfc3339_parse(bad[i], &t) != -1)
            fail_msg("\"%s\" was accepted as %lld", bad[i], (long long)t);
        assert_int_equal(t, 777); /* untouched on failure */
    }
}

/* Every prefix of a valid date-time is refused, and parsing it reads
 * nothing past its end (each prefix sits in a heap block of its exact size,
 * so ASan and valgrind see any overread). */
static void test_rfc3339_prefixes(void **state)
{
    (void)state;
    static const char *const full[] = {"2025-01-02T03:04:05.5+01:30", "2025-01-02T03:04:05Z"};
    for (size_t f = 0; f < sizeof(full) / sizeof(full[0]); f++) {
        size_t len = strlen(full[f]);
        for (size_t n = 0; n < len; n++) {
            char *text = malloc(n + 1);
            assert_non_null(text);
            memcpy(text, full[f], n);
            text[n] = '\0';
            time_t t = 777;
            if (acme_rfc3339_parse(text, &t) != -1)
                fail_msg("prefix \"%s\" was accepted", text);
            assert_int_equal(t, 777);
            free(text);
        }
    }
}

/* ---- acme_ari_cert_id_new ------------------------------------------------ */

static const unsigned char test_keyid[20] = {0x8a, 0x4b, 0x67, 0xff, 0x00, 0x01, 0xfe,
                                             0x3c, 0x99, 0x10, 0x22, 0xab, 0xcd, 0xef,
                                             0x7f, 0x80, 0x3e, 0x3f, 0xfb, 0xbf};

/* A signed certificate with the given serial (big-endian bytes) and, when
 * keyid is not NULL, an authority key identifier holding it; DER in *der. */
static size_t make_cert_der(const unsigned char *serial, size_t serial_len,
                            const unsigned char *keyid, size_t keyid_len, unsigned char **der)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(key);
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    BIGNUM *bn = BN_bin2bn(serial, (int)serial_len, NULL);
    assert_non_null(bn);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), 1700000000));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), 1700000000 + 90 * 86400));
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                (const unsigned char *)"ari.example.test", -1, -1,
                                                0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    if (keyid != NULL) {
        AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
        assert_non_null(akid);
        akid->keyid = ASN1_OCTET_STRING_new();
        assert_non_null(akid->keyid);
        assert_int_equal(ASN1_OCTET_STRING_set(akid->keyid, keyid, (int)keyid_len), 1);
        assert_int_equal(
            X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT), 1);
        AUTHORITY_KEYID_free(akid);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    *der = NULL;
    int len = i2d_X509(x, der);
    assert_true(len > 0);
    X509_free(x);
    EVP_PKEY_free(key);
    return (size_t)len;
}

/* The serial's DER INTEGER content bytes, read from the certificate's own
 * encoding of the serial (tag 02, short length). */
static void serial_content(const unsigned char *der, size_t der_len, unsigned char *out,
                           size_t *out_len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    assert_non_null(x);
    unsigned char *enc = NULL;
    int n = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &enc);
    assert_true(n >= 3);
    assert_int_equal(enc[0], 0x02);
    assert_int_equal(enc[1], n - 2);
    memcpy(out, enc + 2, (size_t)n - 2);
    *out_len = (size_t)n - 2;
    OPENSSL_free(enc);
    X509_free(x);
}

static void expect_cert_id(const unsigned char *serial, size_t serial_len,
                           const unsigned char *content, size_t content_len)
{
    unsigned char *der = NULL;
    size_t der_len = make_cert_der(serial, serial_len, test_keyid, sizeof(test_keyid), &der);
    /* Cross-check the expected content bytes against OpenSSL's encoding. */
    unsigned char enc[64];
    size_t enc_len = 0;
    serial_content(der, der_len, enc, &enc_len);
    assert_int_equal(enc_len, content_len);
    assert_memory_equal(enc, content, content_len);

    char *k = soft_b64url_new(test_keyid, sizeof(test_keyid));
    char *s = soft_b64url_new(content, content_len);
    size_t n = strlen(k) + strlen(s) + 2;
    char *want = malloc(n);
    assert_non_null(want);
    snprintf(want, n, "%s.%s", k, s);

    ks_err err = {{0}};
    char *id = acme_ari_cert_id_new(der, der_len, &err);
    if (id == NULL)
        fail_msg("acme_ari_cert_id_new: %s", err.msg);
    assert_string_equal(id, want);
    free(id);
    free(want);
    free(k);
    free(s);
    OPENSSL_free(der);
}

static void test_ari_cert_id_serials(void **state)
{
    (void)state;
    /* A small serial. */
    static const unsigned char small[] = {0x2a};
    expect_cert_id(small, sizeof(small), small, sizeof(small));
    /* The top bit set: DER writes a leading 0x00. */
    static const unsigned char high[] = {0x87, 0x65, 0x43, 0x21};
    static const unsigned char high_der[] = {0x00, 0x87, 0x65, 0x43, 0x21};
    expect_cert_id(high, sizeof(high), high_der, sizeof(high_der));
    static const unsigned char high1[] = {0xff};
    static const unsigned char high1_der[] = {0x00, 0xff};
    expect_cert_id(high1, sizeof(high1), high1_der, sizeof(high1_der));
    /* 20 bytes, the longest RFC 5280 allows. */
    static const unsigned char big[20] = {0x7f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                                          0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
                                          0x0e, 0x0f, 0x10, 0x11, 0x12, 0xfe};
    expect_cert_id(big, sizeof(big), big, sizeof(big));
    /* 20 bytes with the top bit set: 21 content bytes. */
    static const unsigned char big_high[20] = {0xc1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                               0,    0, 0, 0, 0, 0, 0, 0, 0, 0x01};
    unsigned char big_high_der[21] = {0};
    memcpy(big_high_der + 1, big_high, sizeof(big_high));
    expect_cert_id(big_high, sizeof(big_high), big_high_der, sizeof(big_high_der));
    /* Zero: one content byte, 0x00. */
    static const unsigned char zero_der[] = {0x00};
    expect_cert_id(NULL, 0, zero_der, sizeof(zero_der));
}

/* RFC 9773's example: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:
 * DE:01:C8:D4 and serial 00:87:65:43:21 give "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE". */
static void test_ari_cert_id_rfc_example(void **state)
{
    (void)state;
    static const unsigned char keyid[] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40,
                                          0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0,
                                          0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
    static const unsigned char serial[] = {0x87, 0x65, 0x43, 0x21};
    unsigned char *der = NULL;
    size_t der_len = make_cert_der(serial, sizeof(serial), keyid, sizeof(keyid), &der);
    ks_err err = {{0}};
    char *id = acme_ari_cert_id_new(der, der_len, &err);
    if (id == NULL)
        fail_msg("acme_ari_cert_id_new: %s", err.msg);
    assert_string_equal(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    free(id);
    OPENSSL_free(der);
}

static void test_ari_cert_id_without_aki(void **state)
{
    (void)state;
    static const unsigned char serial[] = {0x01, 0x02};
    unsigned char *der = NULL;
    size_t der_len = make_cert_der(serial, sizeof(serial), NULL, 0, &der);
    ks_err err = {{0}};
    assert_null(acme_ari_cert_id_new(der, der_len, &err));
    if (strstr(err.msg, "authority key identifier") == NULL)
        fail_msg("unexpected error: \"%s\"", err.msg);
    OPENSSL_free(der);
}

static void test_ari_cert_id_garbage(void **state)
{
    (void)state;
    static const unsigned char garbage[] = {0x30, 0x82, 0x01, 0x00, 0xde, 0xad, 0xbe, 0xef};
    ks_err err = {{0}};
    assert_null(acme_ari_cert_id_new(garbage, sizeof(garbage), &err));
    assert_true(err.msg[0] != '\0');
    ks_err_clear(&err);
    assert_null(acme_ari_cert_id_new((const unsigned char *)"", 0, &err));
    assert_true(err.msg[0] != '\0');

    /* A good certificate cut short. */
    static const unsigned char serial[] = {0x05};
    unsigned char *der = NULL;
    size_t der_len = make_cert_der(serial, sizeof(serial), test_keyid, sizeof(test_keyid), &der);
    ks_err_clear(&err);
    assert_null(acme_ari_cert_id_new(der, der_len - 10, &err));
    assert_true(err.msg[0] != '\0');
    OPENSSL_free(der);
}

/* ---- acme_ari_pick ------------------------------------------------------- */

static void test_ari_pick_inside_window(void **state)
{
    (void)state;
    acme_renewal_info ri = {.start = 1735787045, .end = 1735787045 + 2 * 86400};
    enum { PICKS = 10000, BUCKETS = 10 };
    unsigned counts[BUCKETS] = {0};
    time_t lo = ri.end, hi = ri.start;
    long long span = (long long)(ri.end - ri.start);
    for (int i = 0; i < PICKS; i++) {
        time_t t = acme_ari_pick(&ri);
        if (t < ri.start || t >= ri.end)
            fail_msg("pick %lld is outside [%lld, %lld)", (long long)t, (long long)ri.start,
                     (long long)ri.end);
        counts[(long long)(t - ri.start) * BUCKETS / span]++;
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
    }
    /* Uniform: about 1000 per tenth (the standard deviation is 30). */
    for (int b = 0; b < BUCKETS; b++)
        if (counts[b] < 800 || counts[b] > 1200)
            fail_msg("tenth %d of the window got %u of %d picks", b, counts[b], PICKS);
    /* Both ends are reached. */
    assert_true(lo - ri.start < span / 100);
    assert_true(ri.end - hi < span / 100);
}

static void test_ari_pick_small_windows(void **state)
{
    (void)state;
    acme_renewal_info ri = {.start = 1700000000, .end = 1700000000};
    assert_int_equal(acme_ari_pick(&ri), ri.start);
    ri.end = ri.start + 1;
    for (int i = 0; i < 100; i++)
        assert_int_equal(acme_ari_pick(&ri), ri.start);
    /* Two seconds: both are picked. */
    ri.end = ri.start + 2;
    int seen[2] = {0, 0};
    for (int i = 0; i < 1000; i++) {
        time_t t = acme_ari_pick(&ri);
        assert_true(t == ri.start || t == ri.start + 1);
        seen[t - ri.start] = 1;
    }
    assert_true(seen[0] && seen[1]);
    /* An inverted window gives its start, not a time outside it. */
    ri.end = ri.start - 3600;
    assert_int_equal(acme_ari_pick(&ri), ri.start);
}

/* ---- acme_dns01_value_new ------------------------------------------------ */

static void expect_dns01(const char *key_auth)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    assert_int_equal(EVP_Digest(key_auth, strlen(key_auth), md, &md_len, EVP_sha256(), NULL), 1);
    assert_int_equal(md_len, 32);
    char *want = soft_b64url_new(md, md_len);
    ks_err err = {{0}};
    char *got = acme_dns01_value_new(key_auth, &err);
    if (got == NULL)
        fail_msg("acme_dns01_value_new: %s", err.msg);
    assert_string_equal(got, want);
    /* RFC 8555 8.4: 32 bytes, base64url without padding: 43 characters. */
    assert_int_equal(strlen(got), 43);
    assert_null(strchr(got, '='));
    assert_true(is_b64url_alphabet(got));
    free(got);
    free(want);
}

static void test_dns01_value(void **state)
{
    (void)state;
    const char *ka = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
                     "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";
    expect_dns01(ka);
    expect_dns01("a.b");
    expect_dns01("");
    /* A value known independently (sha256 + urlsafe base64 elsewhere). */
    ks_err err = {{0}};
    char *got = acme_dns01_value_new(ka, &err);
    assert_non_null(got);
    assert_string_equal(got, "lCM7cZyQXcVHK2nnW3jjAhNT3Fvm18UN-kWZZknKoYM");
    free(got);
    /* Different key authorizations give different values. */
    char *a = acme_dns01_value_new("token.one", &err);
    char *b = acme_dns01_value_new("token.onf", &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_links_several_rels),
        cmocka_unit_test(test_links_rel_lists_and_case),
        cmocka_unit_test(test_links_quoted_commas_and_url_punctuation),
        cmocka_unit_test(test_links_skips_unacceptable_urls),
        cmocka_unit_test(test_links_max),
        cmocka_unit_test(test_links_malformed),
        cmocka_unit_test(test_links_empty),
        cmocka_unit_test(test_links_empty_list_elements),
        cmocka_unit_test(test_links_long_rel_value),
        cmocka_unit_test(test_rfc3339_basic),
        cmocka_unit_test(test_rfc3339_fractions_and_leap_second),
        cmocka_unit_test(test_rfc3339_offsets),
        cmocka_unit_test(test_rfc3339_leap_days),
        cmocka_unit_test(test_rfc3339_invalid),
        cmocka_unit_test(test_rfc3339_prefixes),
        cmocka_unit_test(test_ari_cert_id_serials),
        cmocka_unit_test(test_ari_cert_id_rfc_example),
        cmocka_unit_test(test_ari_cert_id_without_aki),
        cmocka_unit_test(test_ari_cert_id_garbage),
        cmocka_unit_test(test_ari_pick_inside_window),
        cmocka_unit_test(test_ari_pick_small_windows),
        cmocka_unit_test(test_dns01_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
