#include "snippets.h"

#include "ks_util.h"

#include <stdlib.h>
#include <string.h>

static const char nginx_header[] =
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
    "#  - read access to the pin-source file, if any (the PIN, no newline).\n";

static const char apache_header[] =
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
    "#    read the pin-source file, if any (the PIN, no newline).\n";

static int is_ascii_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Characters a URI may hold (RFC 3986 unreserved, reserved and '%'); ks_key_uri_new
 * percent-encodes everything else. */
static int is_uri_char(unsigned char c)
{
    return is_ascii_alnum(c) || (c != '\0' && strchr("-._~:/?#[]@!$&'()*+,;=%", c) != NULL);
}

/* Characters left as they are in a pin-source value; the rest is %XX (libp11
 * decodes it).  '&', '=', ';', '?', '#', '%', '$' and space are encoded. */
static int is_pin_plain(unsigned char c)
{
    return is_ascii_alnum(c) || (c != '\0' && strchr("-._~:/@!'()*+,[]", c) != NULL);
}

/* Refuses an empty value, or one with a control character or one of
 * `refused` (characters the server's configuration syntax interprets). */
static int check_value(const char *what, const char *value, const char *refused, const char *server,
                       ks_err *err)
{
    if (value == NULL || value[0] == '\0')
        return ks_fail(err, "%s snippet: %s is empty", server, what);
    for (size_t i = 0; value[i] != '\0'; i++) {
        unsigned char c = (unsigned char)value[i];
        if (is_control(c))
            return ks_fail(err,
                           "%s snippet: %s contains a control character (0x%02x) at offset %zu; "
                           "refusing to write it into a configuration file",
                           server, what, c, i);
        if (strchr(refused, c) != NULL)
            return ks_fail(err,
                           "%s snippet: %s \"%s\" contains '%c', which %s's configuration "
                           "syntax would interpret; refusing to write it",
                           server, what, value, c, server);
    }
    return 0;
}

/* A query attribute named pin-... already present after the '?'. */
static int has_pin_attr(const char *query)
{
    for (const char *a = query; a != NULL; a = strchr(a, '&')) {
        a++; /* past '?' or '&' */
        if (strncmp(a, "pin-", 4) == 0)
            return 1;
    }
    return 0;
}

int ks_snippet_key_uri(const char *uri, const char *pin_source, char **out, ks_err *err)
{
    static const char hex[] = "0123456789ABCDEF";
    *out = NULL;
    if (uri == NULL || strncmp(uri, "pkcs11:", 7) != 0)
        return ks_fail(err, "key URI \"%s\" does not start with \"pkcs11:\"", uri ? uri : "");
    for (size_t i = 0; uri[i] != '\0'; i++)
        if (!is_uri_char((unsigned char)uri[i]))
            return ks_fail(err,
                           "key URI has a character that must be percent-encoded (0x%02x) "
                           "at offset %zu; refusing to write it into a configuration file",
                           (unsigned char)uri[i], i);
    const char *query = strchr(uri, '?');
    if (pin_source != NULL) {
        if (pin_source[0] == '\0')
            return ks_fail(err, "hsm.server_pin_source is empty");
        for (size_t i = 0; pin_source[i] != '\0'; i++)
            if (is_control((unsigned char)pin_source[i]))
                return ks_fail(err,
                               "hsm.server_pin_source contains a control character (0x%02x) "
                               "at offset %zu",
                               (unsigned char)pin_source[i], i);
        if (query != NULL && has_pin_attr(query))
            return ks_fail(err, "key URI already has a PIN attribute; not adding pin-source");
    }

    size_t cap = strlen(uri) * 3 + 1;
    if (pin_source != NULL)
        cap += 1 + strlen("pin-source=") + strlen(pin_source) * 3;
    char *s = malloc(cap);
    if (s == NULL)
        return ks_fail(err, "out of memory");
    size_t o = 0;
    for (const char *p = uri; *p; p++) {
        if (*p == '$') { /* lossless: "%24" names the same token or object */
            memcpy(s + o, "%24", 3);
            o += 3;
        } else {
            s[o++] = *p;
        }
    }
    if (pin_source != NULL) {
        s[o++] = query != NULL ? '&' : '?';
        memcpy(s + o, "pin-source=", 11);
        o += 11;
        for (const unsigned char *p = (const unsigned char *)pin_source; *p; p++) {
            if (is_pin_plain(*p)) {
                s[o++] = (char)*p;
            } else {
                s[o++] = '%';
                s[o++] = hex[*p >> 4];
                s[o++] = hex[*p & 15];
            }
        }
    }
    s[o] = '\0';
    *out = s;
    return 0;
}

int ks_snippet_nginx(const char *cert_path, const char *uri, const char *pin_source, char **out,
                     ks_err *err)
{
    char *key = NULL;
    *out = NULL;
    /* '$' would start a variable, '\\' an escape, ';' ends a directive. */
    if (check_value("certificate path", cert_path, "\"\\$;", "nginx", err) < 0 ||
        ks_snippet_key_uri(uri, pin_source, &key, err) < 0)
        return -1;
    *out = ks_strdup_printf("%s"
                            "ssl_certificate \"%s\";\n"
                            "ssl_certificate_key \"engine:pkcs11:%s\";\n",
                            nginx_header, cert_path, key);
    free(key);
    return *out != NULL ? 0 : ks_fail(err, "out of memory");
}

int ks_snippet_apache(const char *cert_path, const char *uri, const char *pin_source, char **out,
                      ks_err *err)
{
    char *key = NULL;
    *out = NULL;
    /* "${x}" would be expanded as a Define or environment variable, '\\' escapes. */
    if (check_value("certificate path", cert_path, "\"\\$", "Apache", err) < 0 ||
        ks_snippet_key_uri(uri, pin_source, &key, err) < 0)
        return -1;
    *out = ks_strdup_printf("%s"
                            "SSLCertificateFile \"%s\"\n"
                            "SSLCertificateKeyFile \"%s\"\n",
                            apache_header, cert_path, key);
    free(key);
    return *out != NULL ? 0 : ks_fail(err, "out of memory");
}
