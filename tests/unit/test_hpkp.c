/*
 * HPKP (keysvc/hpkp.h): the exact header value of RFC 7469 section 2.1 for
 * one, two and three pins with and without includeSubDomains and
 * report-uri; refusal of what a quoted-string cannot carry; acmebot's
 * server templates filled exactly, with braces and the header's quotes
 * escaped for the server's quoted string, and bad templates refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hpkp.h"
#include "ks_err.h"

/* RFC 7469's example pins. */
#define P1 "d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM="
#define P2 "E9CZ9INDbd+2eRQozYqqbQ2yXLVKB9+xcprMF+44U1g="
#define P3 "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="

static void expect_header(const char *const *pins, size_t n, long long max_age, int subs,
                          const char *uri, const char *want)
{
    char *h = ks_hpkp_header_new(pins, n, max_age, subs, uri);
    assert_non_null(h);
    assert_string_equal(h, want);
    free(h);
}

static void test_header_primary_backup_subdomains(void **state)
{
    (void)state;
    const char *pins[] = {P1, P2};
    expect_header(pins, 2, 60LL * 86400, 1, NULL,
                  "pin-sha256=\"" P1 "\"; pin-sha256=\"" P2 "\"; max-age=5184000; "
                  "includeSubDomains");
}

static void test_header_previous_and_report_uri(void **state)
{
    (void)state;
    const char *pins[] = {P1, P2, P3};
    expect_header(pins, 3, 30LL * 86400, 0, "https://example.com/hpkp-report",
                  "pin-sha256=\"" P1 "\"; pin-sha256=\"" P2 "\"; pin-sha256=\"" P3 "\"; "
                  "max-age=2592000; report-uri=\"https://example.com/hpkp-report\"");
    expect_header(pins, 2, 86400, 1, "https://r.test/x",
                  "pin-sha256=\"" P1 "\"; pin-sha256=\"" P2 "\"; max-age=86400; "
                  "includeSubDomains; report-uri=\"https://r.test/x\"");
}

static void test_header_single_pin_zero_age(void **state)
{
    (void)state;
    const char *pins[] = {P1};
    /* max-age=0 is how a site withdraws its pins (RFC 7469 section 2.1.1). */
    expect_header(pins, 1, 0, 0, NULL, "pin-sha256=\"" P1 "\"; max-age=0");
}

static void test_header_refusals(void **state)
{
    (void)state;
    const char *good[] = {P1, P2};
    const char *quote[] = {P1, "abc\"; max-age=1"};
    const char *empty[] = {P1, ""};
    const char *bare_quote[] = {"abc\"def"};
    assert_null(ks_hpkp_header_new(good, 0, 1, 0, NULL));
    assert_null(ks_hpkp_header_new(quote, 2, 1, 0, NULL));
    assert_null(ks_hpkp_header_new(empty, 2, 1, 0, NULL));
    assert_null(ks_hpkp_header_new(bare_quote, 1, 1, 0, NULL));
    assert_null(ks_hpkp_header_new(good, 2, -1, 0, NULL));
    assert_null(ks_hpkp_header_new(good, 2, 1, 0, "https://x.test/\"a"));
    assert_null(ks_hpkp_header_new(good, 2, 1, 0, "https://x.test/a b"));
    assert_null(ks_hpkp_header_new(good, 2, 1, 0, "https://x.test/a\\b"));
    assert_null(ks_hpkp_header_new(good, 2, 1, 0, "https://x.test/\n"));
    assert_null(ks_hpkp_header_new(good, 2, 1, 0, ""));
}

static void expect_fill(const char *tmpl, const char *header, const char *want)
{
    ks_err err = {{0}};
    char *out = (char *)0x1;
    if (ks_hpkp_fill_template(tmpl, header, &out, &err) != 0)
        fail_msg("template \"%s\": %s", tmpl, err.msg);
    assert_non_null(out);
    assert_string_equal(out, want);
    free(out);
}

static void expect_fill_error(const char *tmpl, const char *what)
{
    ks_err err = {{0}};
    char *out = (char *)0x1;
    assert_int_equal(ks_hpkp_fill_template(tmpl, "h", &out, &err), -1);
    assert_null(out);
    if (strstr(err.msg, what) == NULL)
        fail_msg("template \"%s\": message \"%s\" lacks \"%s\"", tmpl, err.msg, what);
}

/* acmebot's default hpkp_headers, filled. */
static void test_fill_acmebot_defaults(void **state)
{
    (void)state;
    const char *pins[] = {P1, P2};
    char *h = ks_hpkp_header_new(pins, 2, 60LL * 86400, 1, NULL);
    assert_non_null(h);
    expect_fill("add_header Public-Key-Pins \"{header}\" always;\n", h,
                "add_header Public-Key-Pins \"pin-sha256=\\\"" P1 "\\\"; pin-sha256=\\\"" P2
                "\\\"; max-age=5184000; includeSubDomains\" always;\n");
    expect_fill("Header always set Public-Key-Pins \"{header}\"\n", h,
                "Header always set Public-Key-Pins \"pin-sha256=\\\"" P1 "\\\"; pin-sha256=\\\"" P2
                "\\\"; max-age=5184000; includeSubDomains\"\n");
    free(h);
}

static void test_fill_braces_and_escapes(void **state)
{
    (void)state;
    expect_fill("{{literal}} {header} }}{{", "v", "{literal} v }{");
    expect_fill("{header}{header}", "a\\b\"c", "a\\\\b\\\"ca\\\\b\\\"c");
    expect_fill("no field at all\n", "v", "no field at all\n");
    expect_fill("", "v", "");
}

static void test_fill_refusals(void **state)
{
    (void)state;
    expect_fill_error("x {name} y", "unknown field {name}");
    expect_fill_error("x {server}", "unknown field {server}");
    expect_fill_error("{header:>40}", "unknown field {header:>40}");
    expect_fill_error("{header!r}", "unknown field {header!r}");
    expect_fill_error("{}", "unknown field {}");
    expect_fill_error("x } y", "single '}'");
    expect_fill_error("x {header", "unterminated '{'");
    expect_fill_error("x {hea{der}", "unterminated '{'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_primary_backup_subdomains),
        cmocka_unit_test(test_header_previous_and_report_uri),
        cmocka_unit_test(test_header_single_pin_zero_age),
        cmocka_unit_test(test_header_refusals),
        cmocka_unit_test(test_fill_acmebot_defaults),
        cmocka_unit_test(test_fill_braces_and_escapes),
        cmocka_unit_test(test_fill_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
