/*
 * DNS server addresses (keysvc/dns.h): the "ip", "ip:port", "[v6]:port" and
 * bare IPv6 forms settings.dns_resolvers and settings.http_responder take,
 * the forms refused (host names, empty or out-of-range ports, broken
 * brackets), and the text used in messages.  No lookups: no network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns.h"

/* ---- helpers ------------------------------------------------------------- */

static void expect_server(const char *text, int default_port, const char *addr, int port)
{
    ks_dns_server s;
    memset(&s, 0xa5, sizeof(s));
    if (ks_dns_server_parse(text, default_port, &s) != 0)
        fail_msg("\"%s\" was refused", text);
    if (strcmp(s.addr, addr) != 0 || s.port != port)
        fail_msg("\"%s\": got %s port %d, expected %s port %d", text, s.addr, s.port, addr, port);
}

static void expect_refused(const char *text)
{
    ks_dns_server s;
    if (ks_dns_server_parse(text, 53, &s) != -1)
        fail_msg("\"%s\" was accepted", text);
}

static void expect_str(const char *addr, int port, const char *want)
{
    ks_dns_server s = {.port = port};
    char buf[64];
    snprintf(s.addr, sizeof(s.addr), "%s", addr);
    const char *got = ks_dns_server_str(&s, buf, sizeof(buf));
    assert_ptr_equal(got, buf);
    assert_string_equal(got, want);
}

/* ---- ks_dns_server_parse ------------------------------------------------- */

static void test_parse_ipv4_with_and_without_port(void **state)
{
    (void)state;
    expect_server("192.0.2.1", 53, "192.0.2.1", 53);
    expect_server("192.0.2.1:5353", 53, "192.0.2.1", 5353);
    expect_server("127.0.0.1:1", 53, "127.0.0.1", 1);
    expect_server("127.0.0.1:65535", 53, "127.0.0.1", 65535);
    expect_server("0.0.0.0:80", 53, "0.0.0.0", 80);
    /* The default port is the caller's. */
    expect_server("10.0.0.1", 80, "10.0.0.1", 80);
    expect_server("10.0.0.1:53", 80, "10.0.0.1", 53);
}

static void test_parse_ipv6_bracketed_and_bare(void **state)
{
    (void)state;
    expect_server("[::1]", 53, "::1", 53);
    expect_server("[::1]:53", 80, "::1", 53);
    expect_server("[2001:db8::53]:8053", 53, "2001:db8::53", 8053);
    expect_server("[::]:80", 53, "::", 80);
    /* Bare: every colon belongs to the address, the port is the default. */
    expect_server("::1", 53, "::1", 53);
    expect_server("2001:db8::1", 853, "2001:db8::1", 853);
    expect_server("::ffff:192.0.2.1", 53, "::ffff:192.0.2.1", 53);
    /* So a bare "::1:53" is an address (::0.1.0.83), not ::1 on port 53. */
    expect_server("::1:53", 53, "::1:53", 53);
    /* The longest textual IPv6 address still fits. */
    expect_server("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:53", 53,
                  "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 53);
}

static void test_parse_refuses_empty_or_bad_ports(void **state)
{
    (void)state;
    expect_refused("1.2.3.4:");
    expect_refused("1.2.3.4:0");
    expect_refused("1.2.3.4:65536");
    expect_refused("1.2.3.4:-1");
    expect_refused("1.2.3.4:53x");
    expect_refused("1.2.3.4:0x35");
    expect_refused("1.2.3.4:99999999999999999999");
    expect_refused("[::1]:");
    expect_refused("[::1]:0");
    expect_refused("[::1]:65536");
    expect_refused("[::1]:http");
}

static void test_parse_refuses_names_and_junk(void **state)
{
    (void)state;
    /* Resolvers are never looked up by name. */
    expect_refused("host.example");
    expect_refused("host.example:53");
    expect_refused("localhost");
    expect_refused("[host.example]:53");
    expect_refused(">");
    expect_refused("");
    expect_refused(":53");
    expect_refused("1.2.3");
    expect_refused("256.1.1.1");
    expect_refused("1.2.3.4 ");
    expect_refused(" 1.2.3.4");
    expect_refused("1.2.3.4:53:53");
    expect_refused("2001:db8::1::2");
    expect_refused("fe80::1%eth0");
    /* Brackets: closed, and followed by nothing or ":port". */
    expect_refused("[::1");
    expect_refused("[::1]x");
    expect_refused("[::1]53");
    expect_refused("[]");
    expect_refused("[]:53");
    expect_refused("::1]");
    /* Longer than any address: refused, not truncated into one. */
    expect_refused("[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0001]:53");
    expect_refused("000000000000000000000000000000000000000000000000000127.0.0.1");
}

/* ---- ks_dns_server_str --------------------------------------------------- */

static void test_server_str_v4_and_v6_bracketed(void **state)
{
    (void)state;
    expect_str("192.0.2.1", 53, "192.0.2.1:53");
    expect_str("127.0.0.1", 5353, "127.0.0.1:5353");
    expect_str("::1", 53, "[::1]:53");
    expect_str("2001:db8::53", 8053, "[2001:db8::53]:8053");
    /* A small buffer gets a truncated, terminated string. */
    ks_dns_server s = {.addr = "2001:db8::53", .port = 53};
    char small[6];
    assert_ptr_equal(ks_dns_server_str(&s, small, sizeof(small)), small);
    assert_string_equal(small, "[2001");
}

/* What ks_dns_server_str prints parses back to the same server. */
static void test_server_str_parses_back_the_same(void **state)
{
    (void)state;
    static const char *const texts[] = {"192.0.2.1:53", "[::1]:53", "[2001:db8::1]:65535",
                                        "10.1.2.3:1", "[::ffff:192.0.2.1]:853"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        ks_dns_server s, again;
        char buf[64];
        assert_int_equal(ks_dns_server_parse(texts[i], 53, &s), 0);
        assert_string_equal(ks_dns_server_str(&s, buf, sizeof(buf)), texts[i]);
        assert_int_equal(ks_dns_server_parse(buf, 1, &again), 0);
        assert_string_equal(again.addr, s.addr);
        assert_int_equal(again.port, s.port);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ipv4_with_and_without_port),
        cmocka_unit_test(test_parse_ipv6_bracketed_and_bare),
        cmocka_unit_test(test_parse_refuses_empty_or_bad_ports),
        cmocka_unit_test(test_parse_refuses_names_and_junk),
        cmocka_unit_test(test_server_str_v4_and_v6_bracketed),
        cmocka_unit_test(test_server_str_parses_back_the_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
