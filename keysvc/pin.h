/*
 * PIN sources: an environment variable or a file, never the command line,
 * the database or a log.
 */
#ifndef KEYSVC_PIN_H
#define KEYSVC_PIN_H

#include "ks_err.h"

#include <stddef.h>

/* Reads the PIN from the environment variable `env_name` (which is then wiped
 * in place and removed, so child processes never inherit it) or from the file
 * `path` (one trailing newline dropped).  Returns a newly allocated PIN that
 * the caller must release with ks_secret_free(pin, len + 1). */
char *ks_pin_read(const char *env_name, const char *path, size_t *len, ks_err *err);

#endif
