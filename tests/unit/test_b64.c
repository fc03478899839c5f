/*
 * base64url without padding (acme/b64.h): RFC 4648 vectors, the URL-safe
 * alphabet, random round trips and the strictness of the decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "b64.h"

/* RFC 4648 section 10 vectors, padding removed (RFC 7515 appendix C). */
static const struct {
    const char *plain;
    const char *encoded;
} vectors[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

/* Decodes the NUL-terminated `in`; NULL when the decoder refuses it. */
static unsigned char *decode_str(const char *in, size_t *out_len)
{
    *out_len = (size_t)-1;
    return b64url_decode_new(in, strlen(in), out_len);
}

static void assert_decodes_to(const char *in, const void *want, size_t want_len)
{
    size_t len = 0;
    unsigned char *out = decode_str(in, &len);
    assert_non_null(out);
    assert_int_equal(len, want_len);
    if (want_len > 0)
        assert_memory_equal(out, want, want_len);
    free(out);
}

static void assert_rejected(const char *in)
{
    size_t len = 0;
    unsigned char *out = decode_str(in, &len);
    if (out != NULL)
        fail_msg("decoder accepted invalid input \"%s\" (%zu bytes)", in, len);
}

static void test_encode_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        char *enc =
            b64url_encode_new((const unsigned char *)vectors[i].plain, strlen(vectors[i].plain));
        assert_non_null(enc);
        assert_string_equal(enc, vectors[i].encoded);
        free(enc);
    }
}

static void test_decode_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
        assert_decodes_to(vectors[i].encoded, vectors[i].plain, strlen(vectors[i].plain));
}

static void test_url_safe_alphabet(void **state)
{
    (void)state;
    /* 0xfb 0xff is "+/8" in standard base64: base64url must say "-_8". */
    static const unsigned char bytes[] = {0xfb, 0xff};
    char *enc = b64url_encode_new(bytes, sizeof(bytes));
    assert_non_null(enc);
    assert_string_equal(enc, "-_8");
    free(enc);
    assert_decodes_to("-_8", bytes, sizeof(bytes));

    /* All 64 symbols, in order. */
    static const unsigned char all[] = {0x00, 0x10, 0x83, 0x10, 0x51, 0x87, 0x20, 0x92, 0x8b, 0x30,
                                        0xd3, 0x8f, 0x41, 0x14, 0x93, 0x51, 0x55, 0x97, 0x61, 0x96,
                                        0x9b, 0x71, 0xd7, 0x9f, 0x82, 0x18, 0xa3, 0x92, 0x59, 0xa7,
                                        0xa2, 0x9a, 0xab, 0xb2, 0xdb, 0xaf, 0xc3, 0x1c, 0xb3, 0xd3,
                                        0x5d, 0xb7, 0xe3, 0x9e, 0xbb, 0xf3, 0xdf, 0xbf};
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    enc = b64url_encode_new(all, sizeof(all));
    assert_non_null(enc);
    assert_string_equal(enc, alphabet);
    free(enc);
    assert_decodes_to(alphabet, all, sizeof(all));
}

static void test_encode_has_no_padding_or_std_chars(void **state)
{
    (void)state;
    unsigned char buf[256];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)i;
    char *enc = b64url_encode_new(buf, sizeof(buf));
    assert_non_null(enc);
    /* 256 bytes: 85 full groups (340 chars) plus one byte (2 chars). */
    assert_int_equal(strlen(enc), 342);
    assert_null(strchr(enc, '='));
    assert_null(strchr(enc, '+'));
    assert_null(strchr(enc, '/'));
    free(enc);
}

/* xorshift64*: deterministic, so a failure can be reproduced. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void test_random_round_trips(void **state)
{
    (void)state;
    unsigned char buf[300];
    for (int iter = 0; iter < 1000; iter++) {
        size_t len = (size_t)(rng_next() % (sizeof(buf) + 1)); /* 0..300 */
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)rng_next();
        char *enc = b64url_encode_new(buf, len);
        assert_non_null(enc);
        size_t want_chars = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
        assert_int_equal(strlen(enc), want_chars);
        assert_int_equal(b64url_is_token(enc), len > 0);
        size_t out_len = 0;
        unsigned char *dec = b64url_decode_new(enc, strlen(enc), &out_len);
        assert_non_null(dec);
        assert_int_equal(out_len, len);
        if (len > 0)
            assert_memory_equal(dec, buf, len);
        free(dec);
        free(enc);
    }
}

static void test_decode_respects_length(void **state)
{
    (void)state;
    size_t len = 0;
    /* Only the first 8 characters count; the rest is not even base64url. */
    unsigned char *out = b64url_decode_new("Zm9vYmFy!!!", 8, &len);
    assert_non_null(out);
    assert_int_equal(len, 6);
    assert_memory_equal(out, "foobar", 6);
    free(out);
}

static void test_decode_trailing_padding_tolerated(void **state)
{
    (void)state;
    assert_decodes_to("Zg==", "f", 1);
    assert_decodes_to("Zm8=", "fo", 2);
    assert_decodes_to("Zm9v", "foo", 3);
}

static void test_decode_rejects_foreign_characters(void **state)
{
    (void)state;
    assert_rejected("Zm+v");    /* standard base64 '+' */
    assert_rejected("Zm/v");    /* standard base64 '/' */
    assert_rejected("Zg=v");    /* padding in the middle */
    assert_rejected("Zg==Zm8"); /* padding then more data */
    assert_rejected("Zm9v\n");
    assert_rejected("Zm 9v");
    assert_rejected("Zm9v.");
    /* A NUL inside the given length is not base64url either. */
    size_t len = 0;
    unsigned char *out = b64url_decode_new("Zm\0v", 4, &len);
    assert_null(out);
}

static void test_decode_rejects_impossible_lengths(void **state)
{
    (void)state;
    assert_rejected("Z");
    assert_rejected("Zm9vY");
    assert_rejected("Zm9vYmFyZ");
    assert_rejected("Z===");
}

static void test_decode_rejects_non_canonical_bits(void **state)
{
    (void)state;
    /* "f" is 011001 10(0000): "Zg".  "Zh" sets a bit that belongs to no byte. */
    assert_decodes_to("Zg", "f", 1);
    assert_rejected("Zh");
    assert_rejected("Zv");
    /* "fo" is "Zm8"; "Zm9" and "Zm_" carry stray low bits. */
    assert_decodes_to("Zm8", "fo", 2);
    assert_rejected("Zm9");
    assert_rejected("Zm_");
    /* With tolerated padding the same rule applies. */
    assert_rejected("Zh==");
}

static void test_is_token(void **state)
{
    (void)state;
    assert_int_equal(b64url_is_token("a"), 1);
    assert_int_equal(b64url_is_token("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"), 1);
    assert_int_equal(b64url_is_token("ABCxyz019-_"), 1);
    assert_int_equal(b64url_is_token(""), 0);
    assert_int_equal(b64url_is_token(NULL), 0);
    assert_int_equal(b64url_is_token("a+b"), 0);
    assert_int_equal(b64url_is_token("a/b"), 0);
    assert_int_equal(b64url_is_token("../etc/passwd"), 0);
    assert_int_equal(b64url_is_token("abc="), 0);
    assert_int_equal(b64url_is_token("a.b"), 0);
    assert_int_equal(b64url_is_token("a b"), 0);
    assert_int_equal(b64url_is_token("ab\n"), 0);
    assert_int_equal(b64url_is_token("t\xc3\xa9st"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_rfc4648_vectors),
        cmocka_unit_test(test_decode_rfc4648_vectors),
        cmocka_unit_test(test_url_safe_alphabet),
        cmocka_unit_test(test_encode_has_no_padding_or_std_chars),
        cmocka_unit_test(test_random_round_trips),
        cmocka_unit_test(test_decode_respects_length),
        cmocka_unit_test(test_decode_trailing_padding_tolerated),
        cmocka_unit_test(test_decode_rejects_foreign_characters),
        cmocka_unit_test(test_decode_rejects_impossible_lengths),
        cmocka_unit_test(test_decode_rejects_non_canonical_bits),
        cmocka_unit_test(test_is_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
