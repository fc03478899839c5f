/*
 * The parameter file (keysvc/params.h): the DH block parsed back is the
 * RFC 7919 group of the size asked for and passes OpenSSL's parameter
 * check; the EC block names its curve by OID; the layout acmebot writes
 * (DH, empty line, EC); each block alone; nothing for 0/0; refusals.  When
 * an openssl command is at hand, "openssl dhparam -check" reads the file
 * and "openssl ecparam" its EC block.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hook.h"
#include "ks_err.h"
#include "params.h"

#include <limits.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <unistd.h>

static char *make(unsigned bits, int nid)
{
    ks_err err = {{0}};
    char *pem = NULL;
    if (ks_params_pem_new(bits, nid, &pem, &err) != 0)
        fail_msg("params %u/%d: %s", bits, nid, err.msg);
    assert_non_null(pem);
    return pem;
}

/* The next "... PARAMETERS" block of `bio` as a key, checked to be of
 * type `type` with group `group`. */
static void expect_next_params(BIO *bio, const char *type, const char *group, int bits)
{
    EVP_PKEY *p = PEM_read_bio_Parameters(bio, NULL);
    assert_non_null(p);
    assert_true(EVP_PKEY_is_a(p, type));
    char name[64] = "";
    assert_int_equal(
        EVP_PKEY_get_utf8_string_param(p, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), NULL), 1);
    assert_string_equal(name, group);
    if (bits > 0)
        assert_int_equal(EVP_PKEY_get_bits(p), bits);
    /* What "openssl dhparam -check" / "ecparam -check" do. */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, p, NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_param_check(ctx), 1);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(p);
}

static void test_dh2048_secp384r1(void **state)
{
    (void)state;
    char *pem = make(2048, NID_secp384r1);
    assert_non_null(strstr(pem, "-----BEGIN DH PARAMETERS-----\n"));
    assert_ptr_equal(strstr(pem, "-----BEGIN DH PARAMETERS-----\n"), pem);
    assert_non_null(strstr(pem, "-----END DH PARAMETERS-----\n\n-----BEGIN EC PARAMETERS-----\n"));
    BIO *bio = BIO_new_mem_buf(pem, -1);
    expect_next_params(bio, "DH", "ffdhe2048", 2048);
    expect_next_params(bio, "EC", OBJ_nid2sn(NID_secp384r1), 384);
    assert_null(PEM_read_bio_Parameters(bio, NULL)); /* nothing more */
    BIO_free(bio);
    free(pem);
}

/* The EC block's DER is the curve's OID (named curve), not an explicit
 * SEQUENCE of the curve's numbers. */
static void test_ec_named_curve_form(void **state)
{
    (void)state;
    char *pem = make(2048, NID_secp384r1);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    assert_int_equal(PEM_read_bio(bio, &name, &header, &data, &len), 1);
    assert_string_equal(name, "DH PARAMETERS");
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    assert_int_equal(PEM_read_bio(bio, &name, &header, &data, &len), 1);
    assert_string_equal(name, "EC PARAMETERS");
    static const unsigned char secp384r1_oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
    assert_int_equal(len, sizeof(secp384r1_oid));
    assert_memory_equal(data, secp384r1_oid, sizeof(secp384r1_oid));
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    free(pem);
}

static void test_every_ffdhe_size(void **state)
{
    (void)state;
    static const struct {
        unsigned bits;
        const char *group;
    } sizes[] = {{2048, "ffdhe2048"},
                 {3072, "ffdhe3072"},
                 {4096, "ffdhe4096"},
                 {6144, "ffdhe6144"},
                 {8192, "ffdhe8192"}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *pem = make(sizes[i].bits, 0);
        assert_null(strstr(pem, "EC PARAMETERS"));
        BIO *bio = BIO_new_mem_buf(pem, -1);
        expect_next_params(bio, "DH", sizes[i].group, (int)sizes[i].bits);
        BIO_free(bio);
        free(pem);
    }
}

static void test_ec_only(void **state)
{
    (void)state;
    char *pem = make(0, NID_X9_62_prime256v1);
    assert_ptr_equal(strstr(pem, "-----BEGIN EC PARAMETERS-----\n"), pem);
    assert_null(strstr(pem, "DH PARAMETERS"));
    BIO *bio = BIO_new_mem_buf(pem, -1);
    expect_next_params(bio, "EC", "prime256v1", 256);
    BIO_free(bio);
    free(pem);
}

static void test_none(void **state)
{
    (void)state;
    ks_err err = {{0}};
    char *pem = (char *)0x1;
    assert_int_equal(ks_params_pem_new(0, 0, &pem, &err), 0);
    assert_null(pem);
}

static void expect_refused(unsigned bits, int nid, const char *what)
{
    ks_err err = {{0}};
    char *pem = (char *)0x1;
    assert_int_equal(ks_params_pem_new(bits, nid, &pem, &err), -1);
    assert_null(pem);
    if (strstr(err.msg, what) == NULL)
        fail_msg("params %u/%d: message \"%s\" lacks \"%s\"", bits, nid, err.msg, what);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused(1024, NID_secp384r1, "dhparam_size 1024");
    expect_refused(2047, 0, "dhparam_size 2047");
    expect_refused(16384, 0, "dhparam_size 16384");
    expect_refused(2048, NID_sha256, "SHA256"); /* not a curve */
    expect_refused(0, NID_ED25519, "ED25519");  /* not a curve for EC parameters */
    expect_refused(0, 999999, "unknown curve");
}

/* The openssl command on a file, run without a shell (as hooks are): 0
 * when it exited 0. */
static int run_openssl(const char *args, const char *path)
{
    char cmd[PATH_MAX + 128];
    ks_err err = {{0}};
    snprintf(cmd, sizeof(cmd), "openssl %s -in %s -noout", args, path);
    return ks_hook_run("openssl", cmd, NULL, 0, 30, NULL, &err);
}

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/ks-params-test-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(close(fd), 0);
    return path;
}

static void test_openssl_command(void **state)
{
    (void)state;
    ks_err err = {{0}};
    if (ks_hook_run("openssl", "openssl version", NULL, 0, 30, NULL, &err) != 0)
        skip();
    char *pem = make(2048, NID_secp384r1);
    char *both = write_tmp(pem);
    char *ec = write_tmp(strstr(pem, "-----BEGIN EC PARAMETERS-----"));
    assert_int_equal(run_openssl("dhparam -check", both), 0);
    assert_int_equal(run_openssl("ecparam -check", ec), 0);
    unlink(both);
    unlink(ec);
    free(both);
    free(ec);
    free(pem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dh2048_secp384r1),
        cmocka_unit_test(test_ec_named_curve_form),
        cmocka_unit_test(test_every_ffdhe_size),
        cmocka_unit_test(test_ec_only),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_openssl_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
