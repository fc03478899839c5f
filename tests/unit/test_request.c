/*
 * Pieces of the ACME request path (acme/internal.h): Retry-After parsing and
 * the escaped one-line summary of problem documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "ks_util.h"

#include <json-c/json.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

/* ---- Retry-After ------------------------------------------------------- */

static void test_retry_after_seconds(void **state)
{
    (void)state;
    assert_int_equal(acme_retry_after_ms("120"), 120000);
    assert_int_equal(acme_retry_after_ms("0"), 0);
    assert_int_equal(acme_retry_after_ms("1"), 1000);
    assert_int_equal(acme_retry_after_ms("86400"), 86400000LL);
}

static void test_retry_after_invalid(void **state)
{
    (void)state;
    assert_int_equal(acme_retry_after_ms(NULL), -1);
    assert_int_equal(acme_retry_after_ms(""), -1);
    assert_int_equal(acme_retry_after_ms("abc"), -1);
    assert_int_equal(acme_retry_after_ms("-5"), -1);
}

static void http_date(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    assert_true(strftime(buf, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0);
}

static void test_retry_after_http_date_future(void **state)
{
    (void)state;
    char date[64];
    http_date(time(NULL) + 30, date, sizeof(date));
    long long ms = acme_retry_after_ms(date);
    if (ms < 28000 || ms > 32000)
        fail_msg("Retry-After \"%s\" gave %lld ms, expected about 30000", date, ms);
    http_date(time(NULL) + 3600, date, sizeof(date));
    ms = acme_retry_after_ms(date);
    if (ms < 3598000 || ms > 3602000)
        fail_msg("Retry-After \"%s\" gave %lld ms, expected about 3600000", date, ms);
}

static void test_retry_after_http_date_past(void **state)
{
    (void)state;
    char date[64];
    http_date(time(NULL) - 3600, date, sizeof(date));
    assert_int_equal(acme_retry_after_ms(date), 0);
    assert_int_equal(acme_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), 0);
}

/* Seconds that overflow when turned into milliseconds (or even a long long)
 * must not come back as a negative wait or wrap around. */
static void test_retry_after_huge(void **state)
{
    (void)state;
    static const char *const huge[] = {"9223372036854776", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        long long ms = acme_retry_after_ms(huge[i]);
        if (ms != -1 && ms < 86400000LL)
            fail_msg("Retry-After %s gave %lld ms", huge[i], ms);
    }
    /* A wait that cannot fit before the deadline is refused, not slept:
     * without the fix now + wait overflows and this sleeps for ~292 million
     * years (SIGALRM ends the test instead). */
    acme_response r;
    memset(&r, 0, sizeof(r));
    r.status = 200;
    r.retry_after = "9223372036854775";
    long long interval = 250;
    ks_err err = {{0}};
    alarm(10);
    int rc = acme_poll_sleep(&r, &interval, ks_now_ms() + 1000, "order", &err);
    alarm(0);
    assert_int_equal(rc, -1);
}

/* ---- acme_poll_sleep ------------------------------------------------------ */

static void test_poll_sleep(void **state)
{
    (void)state;
    acme_response r;
    memset(&r, 0, sizeof(r));
    r.status = 200;
    ks_err err = {{0}};

    /* No Retry-After: the interval is slept and doubles, up to 2 s. */
    long long interval = 1;
    long long t0 = ks_now_ms();
    assert_int_equal(acme_poll_sleep(&r, &interval, t0 + 10000, "order", &err), 0);
    assert_int_equal(interval, 2);
    /* No response at all behaves the same; 1001 * 2 is capped at 2000. */
    interval = 1001;
    t0 = ks_now_ms();
    assert_int_equal(acme_poll_sleep(NULL, &interval, t0 + 10000, "order", &err), 0);
    assert_true(ks_now_ms() - t0 >= 1000);
    assert_int_equal(interval, 2000);

    /* Retry-After 0 (or a past date) must not make a busy loop: the
     * interval is still slept. */
    r.retry_after = "0";
    interval = 100;
    t0 = ks_now_ms();
    assert_int_equal(acme_poll_sleep(&r, &interval, t0 + 5000, "order", &err), 0);
    assert_true(ks_now_ms() - t0 >= 100);
    assert_int_equal(interval, 200);

    /* A Retry-After longer than the interval is honoured. */
    r.retry_after = "1";
    interval = 10;
    t0 = ks_now_ms();
    assert_int_equal(acme_poll_sleep(&r, &interval, t0 + 5000, "order", &err), 0);
    assert_true(ks_now_ms() - t0 >= 1000);

    /* A Retry-After beyond the deadline fails at once, naming what waited. */
    r.retry_after = "600";
    interval = 1;
    t0 = ks_now_ms();
    assert_int_equal(acme_poll_sleep(&r, &interval, t0 + 5000, "order https://ca.test/o/1", &err),
                     -1);
    assert_true(ks_now_ms() - t0 < 1000);
    assert_non_null(strstr(err.msg, "order https://ca.test/o/1"));
}

/* ---- problem summaries -------------------------------------------------- */

static char *summary_of(const char *json)
{
    json_object *o = json_tokener_parse(json);
    assert_non_null(o);
    char *s = acme_problem_summary_new(o);
    json_object_put(o);
    assert_non_null(s);
    return s;
}

static void assert_no_control_chars(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            fail_msg("raw byte 0x%02x at offset %zu of \"%s\"", *p,
                     (size_t)(p - (const unsigned char *)s), s);
}

static void test_problem_escapes_control_chars(void **state)
{
    (void)state;
    char *s = summary_of("{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
                         "\"detail\":\"bad \\u001b[31mname\\nsecond line\",\"status\":400}");
    assert_no_control_chars(s);
    assert_non_null(strstr(s, "rejectedIdentifier"));
    assert_null(strstr(s, "urn:ietf:params:acme:error:"));
    assert_non_null(strstr(s, "\\x1b"));
    assert_non_null(strstr(s, "\\x0a"));
    assert_string_equal(s, "rejectedIdentifier: bad \\x1b[31mname\\x0asecond line");
    free(s);
}

static void test_problem_subproblems(void **state)
{
    (void)state;
    char *s = summary_of("{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
                         "\"detail\":\"Some of the identifiers requested were rejected\","
                         "\"subproblems\":["
                         "{\"type\":\"urn:ietf:params:acme:error:malformed\","
                         "\"detail\":\"Invalid underscore in DNS name \\\"_example.org\\\"\","
                         "\"identifier\":{\"type\":\"dns\",\"value\":\"_example.org\"}},"
                         "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
                         "\"detail\":\"This CA will not issue for \\\"example.net\\\"\","
                         "\"identifier\":{\"type\":\"dns\",\"value\":\"ex\\u0007ample.net\"}}]}");
    assert_no_control_chars(s);
    assert_string_equal(s, "rejectedIdentifier: Some of the identifiers requested were rejected"
                           " [_example.org: malformed: Invalid underscore in DNS name "
                           "\"_example.org\"; ex\\x07ample.net: rejectedIdentifier: This CA will "
                           "not issue for \"example.net\"]");
    free(s);
}

static void test_problem_without_prefix_or_detail(void **state)
{
    (void)state;
    char *s = summary_of("{\"type\":\"about:blank\"}");
    assert_string_equal(s, "about:blank");
    free(s);
    s = summary_of("{\"detail\":\"no type here\"}");
    assert_non_null(strstr(s, "no type here"));
    free(s);
    s = summary_of("{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"detail\":7}");
    assert_string_equal(s, "badNonce");
    free(s);
}

static void test_problem_backslash_escaped(void **state)
{
    (void)state;
    /* A backslash from the server must not look like one of our escapes. */
    char *s = summary_of("{\"type\":\"urn:ietf:params:acme:error:dns\","
                         "\"detail\":\"a\\\\x1b\"}");
    assert_string_equal(s, "dns: a\\x5cx1b");
    free(s);
}

/* Subproblems that are not objects are skipped without unbalancing the
 * brackets around the others. */
static void test_problem_odd_subproblems(void **state)
{
    (void)state;
    char *s = summary_of("{\"type\":\"x\",\"subproblems\":[1,{\"type\":\"y\"}]}");
    assert_string_equal(s, "x [y]");
    free(s);
    s = summary_of("{\"type\":\"x\",\"subproblems\":[{\"type\":\"y\"},2]}");
    assert_string_equal(s, "x [y]");
    free(s);
}

static void test_problem_long_detail_is_bounded(void **state)
{
    (void)state;
    size_t n = 10000;
    char *json = malloc(n + 128);
    assert_non_null(json);
    int off = snprintf(json, n + 128,
                       "{\"type\":\"urn:ietf:params:acme:error:serverInternal\","
                       "\"detail\":\"");
    memset(json + off, 'A', n);
    strcpy(json + off + n, "\"}");
    char *s = summary_of(json);
    assert_no_control_chars(s);
    assert_true(strlen(s) < 4096);
    assert_int_equal(strncmp(s, "serverInternal: AAAA", 20), 0);
    free(s);
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_invalid),
        cmocka_unit_test(test_retry_after_http_date_future),
        cmocka_unit_test(test_retry_after_http_date_past),
        cmocka_unit_test(test_retry_after_huge),
        cmocka_unit_test(test_poll_sleep),
        cmocka_unit_test(test_problem_escapes_control_chars),
        cmocka_unit_test(test_problem_subproblems),
        cmocka_unit_test(test_problem_without_prefix_or_detail),
        cmocka_unit_test(test_problem_backslash_escaped),
        cmocka_unit_test(test_problem_odd_subproblems),
        cmocka_unit_test(test_problem_long_detail_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
