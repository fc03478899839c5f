/*
 * TSIG key files (keysvc/dns_tsig.h): BIND key statements as tsig-keygen
 * writes them, with every layout BIND accepts; dnssec-keygen's .key/.private
 * pairs found from either file or their prefix; and the errors, which name
 * the file and line and never the secret.  Fixtures are written into a fresh
 * temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns_tsig.h"
#include "ks_err.h"
#include "ks_util.h"
#include "test_fs.h"

#include <limits.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];

/* A real tsig-keygen secret (hmac-sha256, 32 bytes). */
#define SECRET "1VtzAmeFJNSMqa7EiiMgKiQ0SisBEH5YPLcrzeDVcHw="

/* ---- helpers ------------------------------------------------------------- */

/* Writes `body` to `name` in the temporary directory; returns the path
 * (caller frees). */
static char *write_file(const char *name, const char *body)
{
    char *path = ks_strdup_printf("%s/%s", tmpdir, name);
    assert_non_null(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(body, 1, strlen(body), f), strlen(body));
    assert_int_equal(fclose(f), 0);
    return path;
}

static void expect_key(const char *path, const char *name, const char *algorithm,
                       const char *secret)
{
    ks_tsig_key k = {0};
    ks_err err = {{0}};
    if (ks_tsig_key_load(path, &k, &err) != 0)
        fail_msg("%s: %s", path, err.msg);
    assert_string_equal(k.name, name);
    assert_string_equal(k.algorithm, algorithm);
    assert_string_equal(k.secret, secret);
    ks_tsig_key_clear(&k);
    assert_null(k.name);
}

/* Loading `path` must fail with an error holding each of the parts that
 * are not NULL, and never the secret; *out stays zeroed. */
static void expect_error_at(const char *path, const char *part1, const char *part2,
                            const char *part3)
{
    ks_tsig_key k = {(char *)1, (char *)1, (char *)1};
    ks_err err = {{0}};
    if (ks_tsig_key_load(path, &k, &err) != -1)
        fail_msg("%s was accepted", path);
    assert_null(k.name);
    assert_null(k.algorithm);
    assert_null(k.secret);
    const char *parts[] = {part1, part2, part3};
    for (size_t i = 0; i < 3; i++)
        if (parts[i] != NULL && strstr(err.msg, parts[i]) == NULL)
            fail_msg("error \"%s\" does not contain \"%s\"", err.msg, parts[i]);
    if (strstr(err.msg, SECRET) != NULL || strstr(err.msg, "1VtzAme") != NULL)
        fail_msg("error \"%s\" shows the secret", err.msg);
}

/* A file `name` holding `body` is refused with an error naming its path
 * and holding part1 and part2 (unless NULL). */
#define expect_error(name, body, part1, part2)                                                     \
    do {                                                                                           \
        char *p_ = write_file(name, body);                                                         \
        expect_error_at(p_, p_, part1, part2);                                                     \
        free(p_);                                                                                  \
    } while (0)

/* A tsig-keygen style file with the given algorithm clause value. */
static char *bind_file(const char *name, const char *alg, const char *secret)
{
    char *body = ks_strdup_printf("key \"acme-key\" {\n\talgorithm %s;\n\tsecret \"%s\";\n};\n",
                                  alg, secret);
    assert_non_null(body);
    char *path = write_file(name, body);
    free(body);
    return path;
}

static const char pair_private[] = "Private-key-format: v1.3\n"
                                   "Algorithm: 163 (HMAC_SHA256)\n"
                                   "Key: " SECRET "\n"
                                   "Bits: AAA=\n"
                                   "Created: 20240101000000\n"
                                   "Publish: 20240101000000\n"
                                   "Activate: 20240101000000\n";

static const char pair_key[] = "; This is a host key, keyid 41337, for Acme-Key.\n"
                               "; Created: 20240101000000 (Mon Jan  1 00:00:00 2024)\n"
                               "Acme-Key. 3600 IN KEY 512 3 163 " SECRET " ; the key\n";

/* Writes <prefix>.private and <prefix>.key (either NULL: not written). */
static void write_pair(const char *prefix, const char *private_body, const char *key_body)
{
    char name[256];
    if (private_body != NULL) {
        snprintf(name, sizeof(name), "%s.private", prefix);
        free(write_file(name, private_body));
    }
    if (key_body != NULL) {
        snprintf(name, sizeof(name), "%s.key", prefix);
        free(write_file(name, key_body));
    }
}

static char *path_in_tmp(const char *name)
{
    char *p = ks_strdup_printf("%s/%s", tmpdir, name);
    assert_non_null(p);
    return p;
}

static int setup_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ks-tsig-test-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_tmpdir(void **state)
{
    (void)state;
    test_remove_tree(tmpdir);
    return 0;
}

/* ---- BIND key statements ------------------------------------------------- */

static void test_bind_each_algorithm(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"hmac-md5", "hmac-md5.sig-alg.reg.int."},
        {"hmac-md5.sig-alg.reg.int", "hmac-md5.sig-alg.reg.int."},
        {"HMAC-MD5.SIG-ALG.REG.INT.", "hmac-md5.sig-alg.reg.int."},
        {"hmac-sha1", "hmac-sha1."},
        {"hmac-sha224", "hmac-sha224."},
        {"hmac-sha256", "hmac-sha256."},
        {"HMAC-SHA256", "hmac-sha256."},
        {"hmac-sha384", "hmac-sha384."},
        {"hmac-sha512", "hmac-sha512."},
        {"\"hmac-sha512\"", "hmac-sha512."},
    };
    /* Secrets of the lengths tsig-keygen makes (16..64 bytes). */
    static const char *const secrets[] = {
        "q83vEjRWeJo=",
        "q83vEjRWeJq83vEjRWeJq83vEjQ=",
        SECRET,
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *secret = secrets[i % 4];
        char *path = bind_file("alg.key", cases[i][0], secret);
        expect_key(path, "acme-key.", cases[i][1], secret);
        free(path);
    }
}

static void test_bind_comments_and_layout(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "key \"acme-key\" { algorithm hmac-sha256; secret \"" SECRET "\"; };",
        "# made by tsig-keygen\n// for the acme zone\n/* a\n * block\n */\n"
        "key\n\"acme-key\"\n{\nalgorithm\nhmac-sha256\n;\nsecret\n\"" SECRET "\"\n;\n}\n;\n",
        "key \"acme-key\"{algorithm hmac-sha256;secret \"" SECRET "\";};",
        "\r\nkey \"acme-key\" {\r\n\talgorithm hmac-sha256; # sha-256\r\n"
        "\tsecret \"" SECRET "\"; // the secret\r\n};\r\n",
        "KEY \"acme-key\" /* inline */ { SECRET \"" SECRET "\"; ALGORITHM hmac-sha256; };\n"
        "# trailing comment",
        "key \"acme-key\" {\n  algorithm hmac-sha256;/**/secret \"" SECRET "\";\n};\n\n\n",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char *path = write_file("layout.conf", bodies[i]);
        expect_key(path, "acme-key.", "hmac-sha256.", SECRET);
        free(path);
    }
}

static void test_bind_name_forms(void **state)
{
    (void)state;
    char *path =
        write_file("bare.key", "key acme-key { algorithm hmac-sha1; secret \"" SECRET "\"; };\n");
    expect_key(path, "acme-key.", "hmac-sha1.", SECRET);
    free(path);
    path = write_file("case.key", "key \"Acme-Key.Example.COM\" { algorithm hmac-sha1; "
                                  "secret \"" SECRET "\"; };\n");
    expect_key(path, "acme-key.example.com.", "hmac-sha1.", SECRET);
    free(path);
    path = write_file("dot.key",
                      "key \"_acme.example.\" { algorithm hmac-sha1; secret \"" SECRET "\"; };\n");
    expect_key(path, "_acme.example.", "hmac-sha1.", SECRET);
    free(path);
    expect_error("badname.key", "key \"a..b\" { algorithm hmac-sha1; secret \"" SECRET "\"; };",
                 ":1: the key name \"a..b\" is not a DNS name", NULL);
    expect_error("spacename.key",
                 "key \"acme key\" { algorithm hmac-sha1; secret \"" SECRET "\"; };",
                 ":1: the key name \"acme key\" is not a DNS name", NULL);
}

static void test_bind_two_keys(void **state)
{
    (void)state;
    expect_error("two.key",
                 "key \"a\" { algorithm hmac-sha256; secret \"" SECRET "\"; };\n"
                 "key \"b\" { algorithm hmac-sha512; secret \"" SECRET "\"; };\n",
                 ": holds 2 keys; give one key per zone", NULL);
    expect_error("three.key",
                 "key a { algorithm hmac-sha256; secret \"" SECRET "\"; };\n"
                 "key b { algorithm hmac-sha256; secret \"" SECRET "\"; };\n"
                 "key c { algorithm hmac-sha256; secret \"" SECRET "\"; };\n",
                 ": holds 3 keys; give one key per zone", NULL);
}

static void test_bind_unknown_algorithm(void **state)
{
    (void)state;
    char *path = bind_file("gost.key", "hmac-sha256-128", SECRET);
    expect_error_at(path, path, ":2: unsupported algorithm \"hmac-sha256-128\"",
                    "hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512");
    free(path);
    path = bind_file("gss.key", "gss-tsig", SECRET);
    expect_error_at(path, "\"gss-tsig\"", NULL, NULL);
    free(path);
}

static void test_bind_missing_clauses(void **state)
{
    (void)state;
    expect_error("nosecret.key", "key \"acme-key\" {\n\talgorithm hmac-sha256;\n\n};\n",
                 ":4: key \"acme-key\" (line 1) ends without its secret", NULL);
    expect_error("noalg.key", "key \"acme-key\" {\n\tsecret \"" SECRET "\";\n};\n",
                 ":3: key \"acme-key\" (line 1) ends without its algorithm", NULL);
    expect_error("twosecrets.key",
                 "key x {\n algorithm hmac-sha256;\n secret \"" SECRET "\";\n secret \"" SECRET
                 "\";\n};\n",
                 ":4: a second secret clause (the first is on line 3)", NULL);
    expect_error("nosemi.key", "key x {\n algorithm hmac-sha256\n secret \"" SECRET "\";\n};\n",
                 ":3: expected ';' after the algorithm, found 'secret'", NULL);
    expect_error("unknown.key", "key x {\n algorithm hmac-sha256;\n secrett \"" SECRET "\";\n};\n",
                 ":3: unknown clause 'secrett'", NULL);
    expect_error("nofinal.key", "key x { algorithm hmac-sha256; secret \"" SECRET "\"; }\n",
                 ":2: expected ';' after the key statement's '}', found end of file", NULL);
    expect_error("options.conf", "options { directory \"/var\"; };\n",
                 ":1: expected 'key', found a word", NULL);
}

static void test_bind_bad_secret(void **state)
{
    (void)state;
    static const char *const secrets[] = {"1VtzAmeFJNSMqa7EiiMgKiQ0SisBEH5YPLcrzeDVcHw",
                                          "1VtzAmeFJNSMqa7EiiMgKiQ0SisBEH5YPLcrzeDVcHw=*",
                                          "1VtzAmeFJNSMqa7EiiMgKiQ0SisB=H5YPLcrzeDVcHw=",
                                          "1Vtz AmeFJNSMqa7EiiMgKiQ0SisBEH5YPLcrzeDVcHw=",
                                          "1Vtz==Am",
                                          "===="};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        char *path = bind_file("b64.key", "hmac-sha256", secrets[i]);
        expect_error_at(path, path, ":3: the secret is not valid base64", NULL);
        free(path);
    }
    char *path = bind_file("empty-secret.key", "hmac-sha256", "");
    expect_error_at(path, ":3: the secret is empty", NULL, NULL);
    free(path);
}

/* Secrets in the wrong place are described, never shown. */
static void test_bind_errors_hide_secret(void **state)
{
    (void)state;
    expect_error("s1.key",
                 "key x { algorithm hmac-sha256; secret \"" SECRET "\" \"" SECRET "\"; };",
                 "expected ';' after the secret, found a quoted string", NULL);
    expect_error("s2.key", "key x { algorithm hmac-sha256; \"" SECRET "\"; };",
                 "expected 'algorithm', 'secret' or '}', found a quoted string", NULL);
    expect_error("s3.key", "key x { algorithm hmac-sha256; secret " SECRET " " SECRET "; };",
                 "found a word", NULL);
    expect_error("s4.key", "key x { algorithm hmac-sha256; " SECRET "; };",
                 "expected 'algorithm', 'secret' or '}', found a word", NULL);
}

static void test_bind_truncated(void **state)
{
    (void)state;
    expect_error("trunc.key",
                 "key \"acme-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"" SECRET "\";\n",
                 ":4: expected 'algorithm', 'secret' or '}', found end of file",
                 "key statement of line 1 is not closed");
    expect_error("trunc2.key", "key \"acme-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"1Vtz",
                 ":3: the quoted string is not closed", NULL);
    expect_error("trunc3.key", "key \"acme-key\" {\n\talgorithm hmac-sha256;\n/* note\n\n",
                 ":3: the comment opened here is not closed", NULL);
    expect_error("trunc4.key", "key", ":1: expected the key name after 'key', found end of file",
                 NULL);
}

static void test_empty_file(void **state)
{
    (void)state;
    expect_error("empty.key", "", ": no key statement", NULL);
    expect_error("comments.key", "# nothing here\n/* nor here */\n\n", ": no key statement", NULL);
}

/* 64 KiB is the most; a key statement padded to exactly that loads. */
static void test_size_limit(void **state)
{
    (void)state;
    const char *stmt = "key x { algorithm hmac-sha256; secret \"" SECRET "\"; };\n";
    size_t n = KS_TSIG_MAX_FILE;
    char *body = malloc(n + 2);
    assert_non_null(body);
    memset(body, '\n', n + 1);
    memcpy(body, stmt, strlen(stmt));
    body[n] = '\0';
    char *path = write_file("max.key", body);
    expect_key(path, "x.", "hmac-sha256.", SECRET);
    free(path);
    body[n] = '\n';
    body[n + 1] = '\0';
    path = write_file("big.key", body);
    expect_error_at(path, path, ": larger than 64 KiB", NULL);
    free(path);
    free(body);
}

static void test_unreadable(void **state)
{
    (void)state;
    char *path = path_in_tmp("no-such.key");
    expect_error_at(path, path, "No such file or directory", NULL);
    free(path);
    char *bin = write_file("nul.key", "key x");
    FILE *f = fopen(bin, "a");
    assert_non_null(f);
    fputc('\0', f);
    fclose(f);
    expect_error_at(bin, bin, "NUL bytes", NULL);
    free(bin);
}

/* ---- dnssec-keygen pairs ------------------------------------------------- */

static void test_pair_via_key(void **state)
{
    (void)state;
    write_pair("Kacme-key.+163+41337", pair_private, pair_key);
    char *path = path_in_tmp("Kacme-key.+163+41337.key");
    expect_key(path, "acme-key.", "hmac-sha256.", SECRET);
    free(path);
}

static void test_pair_via_private(void **state)
{
    (void)state;
    write_pair("Kacme-key.+163+00042", pair_private, pair_key);
    char *path = path_in_tmp("Kacme-key.+163+00042.private");
    expect_key(path, "acme-key.", "hmac-sha256.", SECRET);
    free(path);
}

static void test_pair_via_prefix(void **state)
{
    (void)state;
    write_pair("Kacme-key.+163+7", pair_private, pair_key);
    char *path = path_in_tmp("Kacme-key.+163+7");
    expect_key(path, "acme-key.", "hmac-sha256.", SECRET);
    free(path);
}

static void test_pair_md5_minimal(void **state)
{
    (void)state;
    write_pair("Kupd.example.com.+157+12345",
               "Private-key-format: v1.2\nAlgorithm: 157 (HMAC_MD5)\nKey: q83vEjRWeJo=\n",
               "upd.example.com. IN KEY 512 3 157 q83vEjRWeJo=\n");
    char *path = path_in_tmp("Kupd.example.com.+157+12345.key");
    expect_key(path, "upd.example.com.", "hmac-md5.sig-alg.reg.int.", "q83vEjRWeJo=");
    free(path);
    /* The record split over lines in parentheses, the base64 in pieces. */
    write_pair("Kupd.+165+1", "Private-key-format: v1.3\r\nAlgorithm: 165\r\nKey: " SECRET "\r\n",
               "upd. IN 60 KEY ( 512 3 165 1VtzAmeFJNSMqa7EiiMgKiQ0 SisBEH5YPLcrzeDVcHw= )\n");
    path = path_in_tmp("Kupd.+165+1.private");
    expect_key(path, "upd.", "hmac-sha512.", SECRET);
    free(path);
}

static void test_pair_algorithm_mismatch(void **state)
{
    (void)state;
    /* The file name says 165, both files 163. */
    write_pair("Kacme-key.+165+41337", pair_private, pair_key);
    char *path = path_in_tmp("Kacme-key.+165+41337.key");
    expect_error_at(path, path, "algorithm numbers disagree: the file name says 165", NULL);
    free(path);
    /* The record says 164. */
    write_pair("Kacme-key.+163+1", pair_private, "acme-key. IN KEY 512 3 164 " SECRET "\n");
    path = path_in_tmp("Kacme-key.+163+1.key");
    expect_error_at(path, "the KEY record in", "says 164", NULL);
    free(path);
    /* Not an HMAC algorithm at all. */
    write_pair("Kacme-key.+008+2",
               "Private-key-format: v1.3\nAlgorithm: 8 (RSASHA256)\nKey: " SECRET "\n",
               "acme-key. IN KEY 512 3 8 " SECRET "\n");
    path = path_in_tmp("Kacme-key.+008+2.key");
    expect_error_at(path, ".private:2: algorithm 8 is not a TSIG algorithm", "163 (HMAC_SHA256)",
                    NULL);
    free(path);
}

static void test_pair_missing_private(void **state)
{
    (void)state;
    write_pair("Klone.+163+5", NULL, pair_key);
    char *path = path_in_tmp("Klone.+163+5.key");
    char *priv = path_in_tmp("Klone.+163+5.private");
    expect_error_at(path, priv, "No such file or directory", NULL);
    free(priv);
    free(path);
}

static void test_pair_key_differs(void **state)
{
    (void)state;
    write_pair("Kdiff.+163+6", pair_private,
               "diff. IN KEY 512 3 163 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    char *path = path_in_tmp("Kdiff.+163+6.key");
    expect_error_at(path, ".key:1: the KEY record's key differs from the Key: in", NULL, NULL);
    free(path);
}

static void test_pair_malformed(void **state)
{
    (void)state;
    write_pair("Km1.+163+1", "Private-key-format: v1.3\nAlgorithm: 163 (HMAC_SHA256)\n", pair_key);
    char *path = path_in_tmp("Km1.+163+1.key");
    expect_error_at(path, ".private: no Key: line", NULL, NULL);
    free(path);
    write_pair("Km2.+163+1", "Private-key-format: v1.3\nAlgorithm: 163\nKey: " SECRET "\nbad\n",
               pair_key);
    path = path_in_tmp("Km2.+163+1.key");
    expect_error_at(path, ".private:4: expected \"Field: value\"", NULL, NULL);
    free(path);
    write_pair("Km3.+163+1", "Private-key-format: v2.0\nAlgorithm: 163\nKey: " SECRET "\n",
               pair_key);
    path = path_in_tmp("Km3.+163+1.key");
    expect_error_at(path, ".private:1: unsupported Private-key-format \"v2.0\"", NULL, NULL);
    free(path);
    write_pair("Km4.+163+1", "Private-key-format: v1.3\nAlgorithm: 163\nKey: " SECRET "x\n",
               pair_key);
    path = path_in_tmp("Km4.+163+1.key");
    expect_error_at(path, ".private:3: the Key: is not valid base64", NULL, NULL);
    free(path);
    write_pair("Km5.+163+1", pair_private, "; only comments\n\n");
    path = path_in_tmp("Km5.+163+1.key");
    expect_error_at(path, ".key: no KEY record", NULL, NULL);
    free(path);
    char *two = ks_strdup_printf("%sx. IN KEY 512 3 163 %s\n", pair_key, SECRET);
    assert_non_null(two);
    write_pair("Km6.+163+1", pair_private, two);
    free(two);
    path = path_in_tmp("Km6.+163+1.key");
    expect_error_at(path, ".key:4: a second record (the first is on line 3)", NULL, NULL);
    free(path);
    write_pair("Km7.+163+1", pair_private, "acme. IN KEY 512 3 " SECRET "\n");
    path = path_in_tmp("Km7.+163+1.key");
    expect_error_at(path, ".key:1: expected numbers for flags, protocol and algorithm", NULL, NULL);
    free(path);
    write_pair("Km8.+163+1", pair_private, "acme. IN DNSKEY 256 3 163 " SECRET "\n");
    path = path_in_tmp("Km8.+163+1.key");
    expect_error_at(path, ".key:1: expected a KEY record", NULL, NULL);
    free(path);
}

/* A BIND key file may well be called "acme.key": only K<name>.+NNN+NNNNN
 * names mean the pair. */
static void test_plain_key_extension_is_bind(void **state)
{
    (void)state;
    char *path = bind_file("acme.key", "hmac-sha384", SECRET);
    expect_key(path, "acme-key.", "hmac-sha384.", SECRET);
    free(path);
    path = bind_file("Kacme+163+1.key", "hmac-sha384", SECRET);
    expect_key(path, "acme-key.", "hmac-sha384.", SECRET);
    free(path);
}

static void test_clear(void **state)
{
    (void)state;
    ks_tsig_key k = {0};
    ks_tsig_key_clear(&k);
    ks_tsig_key_clear(&k);
    ks_tsig_key_clear(NULL);
    assert_null(k.name);
    char *path = bind_file("clear.key", "hmac-sha256", SECRET);
    ks_err err = {{0}};
    assert_int_equal(ks_tsig_key_load(path, &k, &err), 0);
    ks_tsig_key_clear(&k);
    assert_null(k.name);
    assert_null(k.algorithm);
    assert_null(k.secret);
    ks_tsig_key_clear(&k);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bind_each_algorithm),
        cmocka_unit_test(test_bind_comments_and_layout),
        cmocka_unit_test(test_bind_name_forms),
        cmocka_unit_test(test_bind_two_keys),
        cmocka_unit_test(test_bind_unknown_algorithm),
        cmocka_unit_test(test_bind_missing_clauses),
        cmocka_unit_test(test_bind_bad_secret),
        cmocka_unit_test(test_bind_errors_hide_secret),
        cmocka_unit_test(test_bind_truncated),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_pair_via_key),
        cmocka_unit_test(test_pair_via_private),
        cmocka_unit_test(test_pair_via_prefix),
        cmocka_unit_test(test_pair_md5_minimal),
        cmocka_unit_test(test_pair_algorithm_mismatch),
        cmocka_unit_test(test_pair_missing_private),
        cmocka_unit_test(test_pair_key_differs),
        cmocka_unit_test(test_pair_malformed),
        cmocka_unit_test(test_plain_key_extension_is_bind),
        cmocka_unit_test(test_clear),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
