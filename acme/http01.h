/*
 * http-01 through webroot directories (acmebot's http_challenges): the key
 * authorization is written to <dir>/<token>, where an existing web server
 * serves it as /.well-known/acme-challenge/<token>.
 */
#ifndef ACME_HTTP01_H
#define ACME_HTTP01_H

#include "ks_err.h"

/* Checks that `dir` exists, is a directory and is writable by us. */
int http01_webroot_check(const char *dir, ks_err *err);

/* Writes <dir>/<token> (mode 0644) atomically.  The token must be base64url. */
int http01_webroot_publish(const char *dir, const char *token, const char *key_authorization,
                           ks_err *err);

/* Removes <dir>/<token>; a missing file is not an error. */
int http01_webroot_remove(const char *dir, const char *token, ks_err *err);

#endif
