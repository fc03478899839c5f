/*
 * ks_err: errors as values that carry context up to the user.
 *
 * A function that can fail takes a `ks_err *err` as its last argument and
 * returns -1 (or NULL) after filling it with ks_fail().  A caller that adds
 * context wraps the message with ks_failp(): "reading config: file x: y".
 * `err` may be NULL when the caller does not care about the text.
 */
#ifndef KS_ERR_H
#define KS_ERR_H

#include <stddef.h>

#define KS_ERR_MAX 1024

typedef struct ks_err {
    char msg[KS_ERR_MAX];
} ks_err;

/* Sets the message; always returns -1 so that `return ks_fail(...)` reads well. */
int ks_fail(ks_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the existing message with context ("context: old message"); returns -1. */
int ks_failp(ks_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends the OpenSSL error queue (most recent first) to the message and clears
 * the queue; returns -1. */
int ks_fail_openssl(ks_err *err, const char *what);

void ks_err_clear(ks_err *err);

#endif
