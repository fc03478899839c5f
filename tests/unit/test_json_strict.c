/*
 * json_strict: exactly RFC 8259 objects, nothing json-c alone would let
 * through (each refused text below is first shown to be taken by json-c's
 * own parser where it is, so that the test shows what the validator adds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "json_strict.h"

#include <stdio.h>
#include <string.h>

static void expect_ok(const char *text)
{
    json_object *obj = ks_json_parse_strict(text, strlen(text));
    if (obj == NULL)
        fail_msg("refused: %s", text);
    json_object_put(obj);
}

static void expect_refused_len(const char *text, size_t len)
{
    json_object *obj = ks_json_parse_strict(text, len);
    if (obj != NULL) {
        json_object_put(obj);
        fail_msg("accepted: %.*s", (int)len, text);
    }
}

static void expect_refused(const char *text)
{
    expect_refused_len(text, strlen(text));
}

static void test_accepts_rfc8259_objects(void **state)
{
    (void)state;
    expect_ok("{}");
    expect_ok(" \t\r\n{ \"a\" : [ 1 , -0.5e+10 , 0 , 1E3 , true , false , null ] } \n");
    expect_ok("{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}");
    expect_ok("{\"utf8\":\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"}");
    expect_ok("{\"\":1,\"nested\":{\"a\":1,\"b\":{\"a\":2}},\"list\":[{\"a\":1},{\"a\":1}]}");
}

static void test_refuses_what_json_c_takes(void **state)
{
    (void)state;
    const char *lenient[] = {
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":-Infinity}",
        "{\"a\":1.}",
        "{\"a\":1,\"a\":2}",
        "{\"o\":{\"k\":1,\"k\":1}}",
        "{\"s\":\"\xff\"}",
    };
    for (size_t i = 0; i < sizeof(lenient) / sizeof(lenient[0]); i++) {
        json_object *loose = json_tokener_parse(lenient[i]);
        if (loose == NULL)
            fail_msg("json-c itself refuses %s: the case shows nothing", lenient[i]);
        json_object_put(loose);
        expect_refused(lenient[i]);
    }
}

static void test_refuses_bad_numbers(void **state)
{
    (void)state;
    const char *bad[] = {"{\"a\":01}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":1e}",
                         "{\"a\":-}",  "{\"a\":0x10}", "{\"a\":1.5.2}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(bad[i]);
}

static void test_refuses_bad_strings(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"a\":\"\\u0000\"}",         /* NUL: C reads a shorter string */
        "{\"a\":\"\\ud800\"}",         /* lone high surrogate */
        "{\"a\":\"\\udc00\"}",         /* lone low surrogate */
        "{\"a\":\"\\ud800\\u0041\"}",  /* high surrogate without its low one */
        "{\"a\":\"\\x41\"}",           /* not a JSON escape */
        "{\"a\":\"\\u12\"}",           /* short \u */
        "{\"a\":\"tab\there\"}",       /* raw control character */
        "{\"a\":\"\xc0\x80\"}",        /* overlong NUL */
        "{\"a\":\"\xe0\x80\x80\"}",    /* overlong */
        "{\"a\":\"\xed\xa0\x80\"}",    /* encoded surrogate */
        "{\"a\":\"\xf4\x90\x80\x80\"}", /* above U+10FFFF */
        "{\"a\":\"\xe2\x82\"}",        /* cut sequence */
        "{\"a\":\"\x80\"}",            /* stray continuation byte */
        "{'a':1}",
        "{\"a\":\"unterminated}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(bad[i]);
    static const char raw_nul[] = "{\"a\":\"x\0y\"}";
    expect_refused_len(raw_nul, sizeof(raw_nul) - 1);
}

static void test_refuses_bad_structure(void **state)
{
    (void)state;
    const char *bad[] = {"",          "[1]",           "\"s\"",       "1",
                         "{",         "{\"a\":1,}",    "{\"a\":[1,]}", "{\"a\" 1}",
                         "{} {}",     "{} x",          "{/*c*/}",     "{\"a\":1}//c",
                         "{\"a\":tru}", "{\"a\":nul}", "{\"a\":1 \"b\":2}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(bad[i]);
}

/* 64 objects and arrays nested are read, 65 refused (no deep recursion on
 * hostile input), whether the innermost holds a value or nothing. */
static void test_nesting_limit(void **state)
{
    (void)state;
    char text[512];
    for (int depth = 64; depth <= 65; depth++) {
        for (int empty = 0; empty <= 1; empty++) {
            size_t n = 0;
            n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"a\":");
            for (int i = 1; i < depth; i++)
                text[n++] = '[';
            if (!empty)
                text[n++] = '1';
            for (int i = 1; i < depth; i++)
                text[n++] = ']';
            text[n++] = '}';
            text[n] = '\0';
            if (depth == 64)
                expect_ok(text);
            else
                expect_refused(text);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_rfc8259_objects),
        cmocka_unit_test(test_refuses_what_json_c_takes),
        cmocka_unit_test(test_refuses_bad_numbers),
        cmocka_unit_test(test_refuses_bad_strings),
        cmocka_unit_test(test_refuses_bad_structure),
        cmocka_unit_test(test_nesting_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
