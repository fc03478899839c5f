/*
 * Web server snippets (keysvc/snippets.h): the exact nginx and Apache text,
 * joining the pin-source to the key URI, and refusal of values that could
 * break out of their quoted strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ks_err.h"
#include "snippets.h"

#define CERT "/etc/ssl/certs/example.com.ecdsa.pem"
#define URI                                                                                        \
    "pkcs11:token=keysvc;manufacturer=SoftHSM%20project;serial=673c7c1110e0381c;"                  \
    "object=cert:example.com:ecdsa:primary;id=%F5%E9%27;type=private"
#define PIN "file:/etc/keysvc/nginx-pin"

static const char nginx_want[] =
    "# nginx TLS settings written by keysvc: include this file in a \"server\" block.\n"
    "# The private key stays in the PKCS#11 token: nginx loads it through OpenSSL's\n"
    "# pkcs11 engine (libp11, Debian package libengine-pkcs11-openssl) and every\n"
    "# handshake signature is made by the token.  nginx needs:\n"
    "#  - OPENSSL_CONF in its environment, naming an engine configuration like\n"
    "#    keysvc's docs/openssl-pkcs11.cnf (engine pkcs11 with MODULE_PATH and\n"
    "#    init = 1), and \"env OPENSSL_CONF;\" in the main context of nginx.conf\n"
    "#    (nginx clears its environment; add \"env SOFTHSM2_CONF;\" for SoftHSM);\n"
    "#  - the key used by the process that opened it: \"master_process off;\", or\n"
    "#    worker processes (\"user\") that own the token store; otherwise every\n"
    "#    handshake fails with \"Object handle invalid\";\n"
    "#  - read access to the pin-source file, if any (the PIN, no newline).\n"
    "ssl_certificate \"/etc/ssl/certs/example.com.ecdsa.pem\";\n"
    "ssl_certificate_key \"engine:pkcs11:pkcs11:token=keysvc;manufacturer=SoftHSM%20project;"
    "serial=673c7c1110e0381c;object=cert:example.com:ecdsa:primary;id=%F5%E9%27;type=private"
    "?pin-source=file:/etc/keysvc/nginx-pin\";\n";

static const char apache_want[] =
    "# Apache httpd (mod_ssl) TLS settings written by keysvc: include this file in a\n"
    "# <VirtualHost> with \"SSLEngine on\".\n"
    "# The private key stays in the PKCS#11 token: mod_ssl loads it through OpenSSL's\n"
    "# pkcs11 engine (libp11, Debian package libengine-pkcs11-openssl) and every\n"
    "# handshake signature is made by the token.  This needs Apache 2.4.42 or later\n"
    "# (PKCS#11 URIs in SSLCertificateKeyFile) with the engine configured:\n"
    "#  - \"SSLCryptoDevice pkcs11\" in the server configuration;\n"
    "#  - OPENSSL_CONF in Apache's environment (e.g. /etc/apache2/envvars), naming\n"
    "#    an engine configuration like keysvc's docs/openssl-pkcs11.cnf (engine\n"
    "#    pkcs11 with MODULE_PATH and init = 1);\n"
    "#  - the child processes (\"User\") must own the token store and be able to\n"
    "#    read the pin-source file, if any (the PIN, no newline).\n"
    "SSLCertificateFile \"/etc/ssl/certs/example.com.ecdsa.pem\"\n"
    "SSLCertificateKeyFile \"pkcs11:token=keysvc;manufacturer=SoftHSM%20project;"
    "serial=673c7c1110e0381c;object=cert:example.com:ecdsa:primary;id=%F5%E9%27;type=private"
    "?pin-source=file:/etc/keysvc/nginx-pin\"\n";

static void test_nginx_exact(void **state)
{
    (void)state;
    ks_err err = {{0}};
    char *s = NULL;
    assert_int_equal(ks_snippet_nginx(CERT, URI, PIN, &s, &err), 0);
    assert_string_equal(s, nginx_want);
    free(s);
}

static void test_apache_exact(void **state)
{
    (void)state;
    ks_err err = {{0}};
    char *s = NULL;
    assert_int_equal(ks_snippet_apache(CERT, URI, PIN, &s, &err), 0);
    assert_string_equal(s, apache_want);
    free(s);
}

/* The last line of a snippet (the key directive). */
static const char *last_line(const char *s)
{
    size_t n = strlen(s);
    assert_true(n >= 2 && s[n - 1] == '\n');
    const char *p = s + n - 2;
    while (p > s && p[-1] != '\n')
        p--;
    return p;
}

static void test_without_pin_source(void **state)
{
    (void)state;
    ks_err err = {{0}};
    char *s = NULL;
    assert_int_equal(ks_snippet_nginx(CERT, URI, NULL, &s, &err), 0);
    assert_string_equal(last_line(s), "ssl_certificate_key \"engine:pkcs11:" URI "\";\n");
    free(s);
    assert_int_equal(ks_snippet_apache(CERT, URI, NULL, &s, &err), 0);
    assert_string_equal(last_line(s), "SSLCertificateKeyFile \"" URI "\"\n");
    free(s);
}

static void assert_key_uri(const char *uri, const char *pin, const char *want)
{
    ks_err err = {{0}};
    char *s = NULL;
    assert_int_equal(ks_snippet_key_uri(uri, pin, &s, &err), 0);
    assert_string_equal(s, want);
    free(s);
}

static void test_pin_source_joining(void **state)
{
    (void)state;
    /* No query yet: '?'. */
    assert_key_uri("pkcs11:token=t;id=%01;type=private", "file:/run/pin",
                   "pkcs11:token=t;id=%01;type=private?pin-source=file:/run/pin");
    /* A query already: '&'. */
    assert_key_uri("pkcs11:token=t;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so",
                   "file:/run/pin",
                   "pkcs11:token=t;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so"
                   "&pin-source=file:/run/pin");
    /* A bare path (libp11 reads it as a file too). */
    assert_key_uri("pkcs11:token=t", "/run/pin", "pkcs11:token=t?pin-source=/run/pin");
    /* No pin source: the URI as it is. */
    assert_key_uri("pkcs11:token=t;id=%01", NULL, "pkcs11:token=t;id=%01");
    /* In the snippets too. */
    ks_err err = {{0}};
    char *s = NULL;
    assert_int_equal(ks_snippet_nginx(CERT, "pkcs11:token=t?module-path=/m.so", "/p", &s, &err), 0);
    assert_string_equal(last_line(s),
                        "ssl_certificate_key \"engine:pkcs11:pkcs11:token=t?module-path=/m.so"
                        "&pin-source=/p\";\n");
    free(s);
}

static void test_pin_source_is_percent_encoded(void **state)
{
    (void)state;
    /* Query delimiters, '%', '$', '"', '#', space and non-ASCII are encoded;
     * RFC 3986 path characters stay. */
    assert_key_uri("pkcs11:token=t", "file:/etc/key svc/p&x=1;#%$\"\\caf\xc3\xa9",
                   "pkcs11:token=t?pin-source=file:/etc/key%20svc/p%26x%3D1%3B%23%25%24%22%5C"
                   "caf%C3%A9");
    assert_key_uri("pkcs11:token=t", "file:/a-b_c.d~e/(f)+g,h@i!j'k*[l]",
                   "pkcs11:token=t?pin-source=file:/a-b_c.d~e/(f)+g,h@i!j'k*[l]");
}

static void test_dollar_in_uri_is_encoded(void **state)
{
    (void)state;
    /* ks_key_uri_new leaves '$' plain; nginx would read "$b" as a variable. */
    assert_key_uri("pkcs11:token=a$b;object=$;type=private", NULL,
                   "pkcs11:token=a%24b;object=%24;type=private");
    ks_err err = {{0}};
    char *s = NULL;
    assert_int_equal(ks_snippet_nginx(CERT, "pkcs11:token=a$b", NULL, &s, &err), 0);
    assert_non_null(strstr(s, "\"engine:pkcs11:pkcs11:token=a%24b\";\n"));
    assert_null(strchr(s, '$'));
    free(s);
}

typedef int (*snippet_fn)(const char *, const char *, const char *, char **, ks_err *);

static void assert_refused(snippet_fn fn, const char *cert, const char *uri, const char *pin,
                           const char *msg_part)
{
    ks_err err = {{0}};
    char *s = (char *)"untouched";
    assert_int_equal(fn(cert, uri, pin, &s, &err), -1);
    assert_null(s);
    if (strstr(err.msg, msg_part) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg_part);
}

static void test_dangerous_cert_paths_refused(void **state)
{
    (void)state;
    assert_refused(ks_snippet_nginx, "/etc/ssl/a\".pem", URI, NULL,
                   "nginx snippet: certificate path \"/etc/ssl/a\".pem\" contains '\"'");
    assert_refused(ks_snippet_nginx, "/etc/ssl/a\n.pem", URI, NULL,
                   "certificate path contains a control character (0x0a) at offset 10");
    assert_refused(ks_snippet_nginx, "/etc/ssl/a;b.pem", URI, NULL, "contains ';'");
    assert_refused(ks_snippet_nginx, "/etc/ssl/$host.pem", URI, NULL, "contains '$'");
    assert_refused(ks_snippet_nginx, "/etc/ssl/a\\\".pem", URI, NULL, "contains '\\'");
    assert_refused(ks_snippet_nginx, "/etc/ssl/a\r.pem", URI, NULL, "control character (0x0d)");
    assert_refused(ks_snippet_nginx, "/etc/ssl/a\t.pem", URI, NULL, "control character (0x09)");
    assert_refused(ks_snippet_nginx, "/etc/ssl/a\x7f.pem", URI, NULL, "control character (0x7f)");
    assert_refused(ks_snippet_nginx, "", URI, NULL, "nginx snippet: certificate path is empty");
    assert_refused(ks_snippet_nginx, NULL, URI, NULL, "certificate path is empty");

    assert_refused(ks_snippet_apache, "/etc/ssl/a\".pem", URI, NULL,
                   "Apache snippet: certificate path \"/etc/ssl/a\".pem\" contains '\"'");
    assert_refused(ks_snippet_apache, "/etc/ssl/a\n.pem", URI, NULL, "control character (0x0a)");
    assert_refused(ks_snippet_apache, "/etc/ssl/${X}.pem", URI, NULL, "contains '$'");
    assert_refused(ks_snippet_apache, "/etc/ssl/a\\", URI, NULL, "contains '\\'");
    assert_refused(ks_snippet_apache, "/etc/ssl/\x01", URI, NULL, "control character (0x01)");

    /* ';' ends an nginx directive but is harmless inside Apache's quotes. */
    ks_err err = {{0}};
    char *s = NULL;
    assert_int_equal(ks_snippet_apache("/etc/ssl/a;b.pem", URI, NULL, &s, &err), 0);
    assert_non_null(strstr(s, "SSLCertificateFile \"/etc/ssl/a;b.pem\"\n"));
    free(s);
    /* Spaces and '#' are fine inside the quotes of both. */
    assert_int_equal(ks_snippet_nginx("/etc/ssl/my certs/#1.pem", URI, NULL, &s, &err), 0);
    assert_non_null(strstr(s, "ssl_certificate \"/etc/ssl/my certs/#1.pem\";\n"));
    free(s);
}

static void test_dangerous_uris_refused(void **state)
{
    (void)state;
    snippet_fn fns[] = {ks_snippet_nginx, ks_snippet_apache};
    for (size_t i = 0; i < 2; i++) {
        assert_refused(fns[i], CERT, "pkcs11:token=a\"b", NULL,
                       "key URI has a character that must be percent-encoded (0x22) at offset 14");
        assert_refused(fns[i], CERT, "pkcs11:token=a\nssl_x y;", NULL, "(0x0a) at offset 14");
        assert_refused(fns[i], CERT, "pkcs11:token=a b", NULL, "(0x20)");
        assert_refused(fns[i], CERT, "pkcs11:token=a\\b", NULL, "(0x5c)");
        assert_refused(fns[i], CERT, "pkcs11:token=caf\xc3\xa9", NULL, "(0xc3)");
        assert_refused(fns[i], CERT, "pkcs11:token={x}", NULL, "(0x7b)");
        assert_refused(fns[i], CERT, "/etc/ssl/private/a.key", NULL,
                       "does not start with \"pkcs11:\"");
        assert_refused(fns[i], CERT, NULL, NULL, "does not start with \"pkcs11:\"");
        /* The pin source: control characters, empty, or a PIN already there. */
        assert_refused(fns[i], CERT, URI, "file:/etc/pin\n",
                       "hsm.server_pin_source contains a "
                       "control character (0x0a)");
        assert_refused(fns[i], CERT, URI, "", "hsm.server_pin_source is empty");
        assert_refused(fns[i], CERT, "pkcs11:token=t?pin-value=1234", "file:/p",
                       "already has a PIN attribute");
        assert_refused(fns[i], CERT, "pkcs11:token=t?module-path=/m.so&pin-source=/q", "file:/p",
                       "already has a PIN attribute");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nginx_exact),
        cmocka_unit_test(test_apache_exact),
        cmocka_unit_test(test_without_pin_source),
        cmocka_unit_test(test_pin_source_joining),
        cmocka_unit_test(test_pin_source_is_percent_encoded),
        cmocka_unit_test(test_dollar_in_uri_is_encoded),
        cmocka_unit_test(test_dangerous_cert_paths_refused),
        cmocka_unit_test(test_dangerous_uris_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
