/*
 * RFC 7512 pkcs11: URIs (keysvc/p11uri.h): exact strings and a round trip
 * through an independent parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "p11uri.h"

static void assert_uri(const p11uri_parts *p, const char *want)
{
    char *uri = p11uri_format_new(p);
    assert_non_null(uri);
    assert_string_equal(uri, want);
    free(uri);
}

static void test_simple(void **state)
{
    (void)state;
    static const unsigned char id[] = {0x01};
    p11uri_parts p = {.token = "keysvc",
                      .serial = "0123abcd",
                      .object = "acct",
                      .id = id,
                      .id_len = sizeof(id),
                      .type = "private"};
    assert_uri(&p, "pkcs11:token=keysvc;serial=0123abcd;object=acct;id=%01;type=private");
}

static void test_all_attributes_in_order(void **state)
{
    (void)state;
    static const unsigned char id[] = {0xde, 0xad};
    p11uri_parts p = {.token = "t",
                      .manufacturer = "SoftHSM project",
                      .model = "SoftHSM v2",
                      .serial = "9f3",
                      .object = "o",
                      .id = id,
                      .id_len = sizeof(id),
                      .type = "cert"};
    assert_uri(&p, "pkcs11:token=t;manufacturer=SoftHSM%20project;serial=9f3;"
                   "model=SoftHSM%20v2;object=o;id=%DE%AD;type=cert");
}

static void test_escaping(void **state)
{
    (void)state;
    static const unsigned char id[] = {0x0a, 0x0b, 0x0c, 0x0d};
    p11uri_parts p = {.token = "Tenant #4 (prod);x",
                      .object = "acct key/1?",
                      .id = id,
                      .id_len = sizeof(id),
                      .type = "private"};
    assert_uri(&p, "pkcs11:token=Tenant%20%234%20(prod)%3Bx;object=acct%20key%2F1%3F;"
                   "id=%0A%0B%0C%0D;type=private");
}

static void test_percent_and_non_ascii_are_encoded(void **state)
{
    (void)state;
    p11uri_parts p = {.token = "100%", .object = "caf\xc3\xa9&co=1"};
    assert_uri(&p, "pkcs11:token=100%25;object=caf%C3%A9&co=1");
}

static void test_id_always_encoded(void **state)
{
    (void)state;
    static const unsigned char id[] = {'A', 'b', '1', '-'};
    p11uri_parts p = {.object = "k", .id = id, .id_len = sizeof(id)};
    assert_uri(&p, "pkcs11:object=k;id=%41%62%31%2D");
    /* An id with a NUL byte is not cut short. */
    static const unsigned char zid[] = {0x00, 0xff, 0x00};
    p11uri_parts z = {.id = zid, .id_len = sizeof(zid), .type = "public"};
    assert_uri(&z, "pkcs11:id=%00%FF%00;type=public");
}

static void test_null_members_left_out(void **state)
{
    (void)state;
    p11uri_parts none = {0};
    assert_uri(&none, "pkcs11:");
    p11uri_parts only_type = {.type = "private"};
    assert_uri(&only_type, "pkcs11:type=private");
    p11uri_parts only_token = {.token = "tok"};
    assert_uri(&only_token, "pkcs11:token=tok");
}

/* ---- an independent RFC 7512 parser ------------------------------------- */

/* RFC 7512 p11-pchar outside pct-encoded, plus '&' (p11-path-res-avail). */
static int is_pchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._~:[]@!$'()*+,=&", c) != NULL);
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

typedef struct attr {
    char name[16];
    unsigned char value[1024];
    size_t len;
} attr;

/* Splits on ';' and the first '=' and percent-decodes; fails on any raw
 * character that RFC 7512 does not allow in a value. */
static size_t parse_uri(const char *uri, attr *out, size_t cap)
{
    assert_int_equal(strncmp(uri, "pkcs11:", 7), 0);
    const char *s = uri + 7;
    size_t n = 0;
    while (*s) {
        assert_true(n < cap);
        const char *end = strchr(s, ';');
        if (end == NULL)
            end = s + strlen(s);
        const char *eq = memchr(s, '=', (size_t)(end - s));
        assert_non_null(eq);
        size_t name_len = (size_t)(eq - s);
        assert_true(name_len > 0 && name_len < sizeof(out[n].name));
        memcpy(out[n].name, s, name_len);
        out[n].name[name_len] = '\0';
        size_t len = 0;
        for (const char *v = eq + 1; v < end; v++) {
            assert_true(len < sizeof(out[n].value));
            if (*v == '%') {
                assert_true(end - v >= 3);
                int hi = hex_val(v[1]), lo = hex_val(v[2]);
                assert_true(hi >= 0 && lo >= 0);
                out[n].value[len++] = (unsigned char)(hi << 4 | lo);
                v += 2;
            } else {
                if (!is_pchar((unsigned char)*v))
                    fail_msg("raw character 0x%02x in \"%s\"", (unsigned char)*v, uri);
                out[n].value[len++] = (unsigned char)*v;
            }
        }
        out[n].len = len;
        n++;
        s = *end ? end + 1 : end;
    }
    return n;
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* Random label of bytes 1..255, NUL-terminated. */
static void random_label(char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)(1 + rng_next() % 255);
    buf[len] = '\0';
}

static void assert_attr(const attr *a, const char *name, const void *value, size_t len)
{
    assert_string_equal(a->name, name);
    assert_int_equal(a->len, len);
    if (len > 0)
        assert_memory_equal(a->value, value, len);
}

static void test_random_round_trip(void **state)
{
    (void)state;
    for (int iter = 0; iter < 200; iter++) {
        char token[40], object[80];
        unsigned char id[64];
        random_label(token, 1 + rng_next() % 32);
        random_label(object, 1 + rng_next() % 64);
        size_t id_len = 1 + rng_next() % sizeof(id);
        for (size_t i = 0; i < id_len; i++)
            id[i] = (unsigned char)rng_next();
        p11uri_parts p = {
            .token = token, .object = object, .id = id, .id_len = id_len, .type = "private"};
        char *uri = p11uri_format_new(&p);
        assert_non_null(uri);
        attr attrs[8];
        size_t n = parse_uri(uri, attrs, 8);
        assert_int_equal(n, 4);
        assert_attr(&attrs[0], "token", token, strlen(token));
        assert_attr(&attrs[1], "object", object, strlen(object));
        assert_attr(&attrs[2], "id", id, id_len);
        assert_attr(&attrs[3], "type", "private", 7);
        /* The id is percent-encoded throughout: exactly 3 chars per byte. */
        const char *idv = strstr(uri, ";id=");
        assert_non_null(idv);
        idv += 4;
        assert_int_equal(strcspn(idv, ";"), 3 * id_len);
        free(uri);
    }
}

/* Every byte 1..255 in one label. */
static void test_every_byte_round_trips(void **state)
{
    (void)state;
    char label[256];
    for (int i = 0; i < 255; i++)
        label[i] = (char)(i + 1);
    label[255] = '\0';
    p11uri_parts p = {.object = label, .manufacturer = label};
    char *uri = p11uri_format_new(&p);
    assert_non_null(uri);
    attr attrs[4];
    assert_int_equal(parse_uri(uri, attrs, 4), 2);
    assert_attr(&attrs[0], "manufacturer", label, 255);
    assert_attr(&attrs[1], "object", label, 255);
    free(uri);
}

/* keysvc's own parser reads back whatever the formatter wrote. */
static void test_parse_round_trip(void **state)
{
    (void)state;
    for (int iter = 0; iter < 200; iter++) {
        char token[40], object[80], serial[20];
        unsigned char id[64];
        random_label(token, 1 + rng_next() % 32);
        random_label(object, 1 + rng_next() % 64);
        random_label(serial, 1 + rng_next() % 16);
        size_t id_len = 1 + rng_next() % sizeof(id);
        for (size_t i = 0; i < id_len; i++)
            id[i] = (unsigned char)rng_next();
        p11uri_parts p = {.token = token, .serial = serial, .object = object, .id = id,
                          .id_len = id_len, .type = "private"};
        char *uri = p11uri_format_new(&p);
        p11uri_parsed back;
        assert_int_equal(p11uri_parse(uri, &back), 0);
        assert_string_equal(back.token, token);
        assert_string_equal(back.serial, serial);
        assert_string_equal(back.object, object);
        assert_string_equal(back.type, "private");
        assert_null(back.manufacturer);
        assert_true(back.has_id);
        assert_int_equal(back.id_len, id_len);
        assert_memory_equal(back.id, id, id_len);
        p11uri_parsed_clear(&back);
        free(uri);
    }
}

static void test_parse_refuses_malformed(void **state)
{
    (void)state;
    const char *bad[] = {
        "http:token=x",
        "pkcs11:token=%zz",
        "pkcs11:token=%4",
        "pkcs11:token=a;token=b",
        "pkcs11:id=%01;id=%02",
        "pkcs11:noequals",
        "pkcs11:=value",
        "pkcs11:object=a%00b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p11uri_parsed p;
        if (p11uri_parse(bad[i], &p) != -1)
            fail_msg("accepted %s", bad[i]);
    }
    /* Unknown attributes are skipped and the query is ignored. */
    p11uri_parsed p;
    assert_int_equal(p11uri_parse("pkcs11:slot-id=3;object=k;id=%41?pin-source=file:/x", &p), 0);
    assert_string_equal(p.object, "k");
    assert_int_equal(p.id_len, 1);
    assert_int_equal(p.id[0], 0x41);
    assert_null(p.token);
    p11uri_parsed_clear(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_all_attributes_in_order),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_percent_and_non_ascii_are_encoded),
        cmocka_unit_test(test_id_always_encoded),
        cmocka_unit_test(test_null_members_left_out),
        cmocka_unit_test(test_random_round_trip),
        cmocka_unit_test(test_every_byte_round_trips),
        cmocka_unit_test(test_parse_round_trip),
        cmocka_unit_test(test_parse_refuses_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
