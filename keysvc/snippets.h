/*
 * snippets: web server configuration fragments that serve a certificate with
 * its key kept in the token (nginx and Apache mod_ssl through OpenSSL's
 * pkcs11 engine, libp11).  Pure functions: no I/O; output.c writes them.
 *
 * Every value that comes from the configuration (the certificate path, the
 * key URI, the pin source) is checked so that it cannot end the quoted string
 * it is placed in or start a new directive: such values are refused with a
 * message, never silently altered (except for lossless URI percent-encoding).
 */
#ifndef KEYSVC_SNIPPETS_H
#define KEYSVC_SNIPPETS_H

#include "ks_err.h"

/* The key URI as a server should see it: `uri` (a "pkcs11:" URI from
 * ks_key_uri_new) with '$' percent-encoded (nginx would read "$x" as a
 * variable) and, when `pin_source` is not NULL, the query attribute
 * "pin-source=<pin_source>" joined with '?' or, when the URI already has a
 * query, '&'.  The pin source is written plainly in the configuration (e.g.
 * "file:/etc/keysvc/nginx-pin") and percent-encoded here where RFC 7512
 * requires it.  Stores a new string in *out (caller frees); -1 on a refused
 * value. */
int ks_snippet_key_uri(const char *uri, const char *pin_source, char **out, ks_err *err);

/* An nginx fragment for a server block: a comment header, then
 *   ssl_certificate "<cert_path>";
 *   ssl_certificate_key "engine:pkcs11:<key uri>";
 * `cert_path` must not contain '"', '\\', '$', ';' or control characters.
 * Stores a new string in *out (caller frees); -1 with `err` set on refusal. */
int ks_snippet_nginx(const char *cert_path, const char *uri, const char *pin_source, char **out,
                     ks_err *err);

/* An Apache httpd mod_ssl fragment for a <VirtualHost>: a comment header, then
 *   SSLCertificateFile "<cert_path>"
 *   SSLCertificateKeyFile "<key uri>"
 * `cert_path` must not contain '"', '\\', '$' or control characters.
 * Stores a new string in *out (caller frees); -1 with `err` set on refusal. */
int ks_snippet_apache(const char *cert_path, const char *uri, const char *pin_source, char **out,
                      ks_err *err);

#endif
