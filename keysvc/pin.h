/*
 * PIN sources: an environment variable or a file, never the command line,
 * the database or a log.
 *
 * The signer must be able to log in again after a lost session, so it keeps
 * a source, not a PIN: a PIN file is read again each time; a PIN from the
 * environment (which is wiped and removed at once) lives only in one locked,
 * non-dumpable page until the source is cleared.
 */
#ifndef KEYSVC_PIN_H
#define KEYSVC_PIN_H

#include "ks_err.h"

#include <stddef.h>
#include <time.h>

#define KS_PIN_MAX 256

typedef struct ks_pin_source {
    char *path;      /* PIN file */
    char *page;      /* environment PIN: mmap'd, mlock'd, MADV_DONTDUMP */
    size_t page_len; /* size of the mapping */
    size_t pin_len;
    char what[300];  /* "file /x" or "environment variable X", for messages */
    struct timespec read_mtime; /* the PIN file as it was last read */
} ks_pin_source;

/* Sets up a source from exactly one of env_name / path.  An environment PIN
 * is captured now: copied into the protected page, wiped in the environment
 * block and unset (so children never inherit it). */
int ks_pin_source_init(ks_pin_source *src, const char *env_name, const char *path, ks_err *err);

/* Writes the PIN into buf (cap bytes, at least KS_PIN_MAX + 1) and its
 * length to *len; the caller wipes buf.  Matches hsm_pin_fn. */
int ks_pin_source_get(void *src, char *buf, size_t cap, size_t *len, ks_err *err);

/* 1 when the PIN file has changed since it was last read (an environment
 * PIN never changes): a PIN that was refused may be tried again. */
int ks_pin_source_changed(const ks_pin_source *src);

/* Wipes and releases everything the source holds. */
void ks_pin_source_clear(ks_pin_source *src);

/* Wipes and removes an environment variable (a PIN the parent of a signer
 * must not keep). */
void ks_pin_env_wipe(const char *env_name);

#endif
