/*
 * ks_util: small file and memory helpers shared by every part.
 */
#ifndef KS_UTIL_H
#define KS_UTIL_H

#include "ks_err.h"

#include <stddef.h>
#include <sys/types.h>

/* Reads a whole file into a newly allocated, NUL-terminated buffer (caller
 * frees; the NUL is not counted in *len).  Files larger than max_len are
 * refused.  Returns NULL with `err` naming the path on failure. */
char *ks_read_file(const char *path, size_t max_len, size_t *len, ks_err *err);

/* Writes all of `data`, retrying after EINTR; 0, or -1 with errno. */
int ks_write_all(int fd, const void *data, size_t len);

/* Writes `data` to `path` so that the file is either the old one or the
 * complete new one, never half-written: a temporary file in the same
 * directory, fsync, fchmod(mode), rename, fsync of the directory.  On failure
 * the temporary file is removed and the old file is untouched. */
int ks_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         ks_err *err);

/* 1 when the file at `path` exists and its content equals data/len, else 0. */
int ks_file_equals(const char *path, const void *data, size_t len);

/* mkdir -p.  The directories it creates get exactly `mode` (chmod after
 * mkdir, so the umask cannot take away a search bit another user needs);
 * existing ones are left as they are. */
int ks_mkdirs(const char *path, mode_t mode, ks_err *err);

/* fsync of a directory, so that a rename or a new entry in it is durable. */
int ks_fsync_dir(const char *dir, ks_err *err);

/* The value of a hex digit (either case), or -1. */
int ks_hex_digit(int c);

/* `len` bytes as lower-case hex, newly allocated (caller frees); NULL on
 * OOM. */
char *ks_hex_new(const unsigned char *b, size_t len);

/* Formats into a newly allocated string (caller frees); NULL on OOM. */
char *ks_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wipes and frees a secret buffer of `len` bytes (or strlen+1 when len is 0). */
void ks_secret_free(void *p, size_t len);

/* Monotonic clock in milliseconds, for measuring and for retry deadlines. */
long long ks_now_ms(void);

/* The same in microseconds. */
long long ks_now_us(void);

/* Sleeps for `ms` milliseconds (restarted after signals). */
void ks_sleep_ms(long long ms);

#endif
