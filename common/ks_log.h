/*
 * ks_log: leveled logging to stderr.
 *
 * Anything that came from outside (server responses, DNS data, file contents)
 * is escaped with ks_escape_new() before it is logged, so that a hostile peer
 * cannot write terminal control sequences into an operator's terminal or log.
 */
#ifndef KS_LOG_H
#define KS_LOG_H

#include <stddef.h>

enum ks_log_level {
    KS_LOG_ERROR = 0,
    KS_LOG_WARN = 1,
    KS_LOG_INFO = 2,
    KS_LOG_DEBUG = 3,
};

void ks_log_set_level(int level);
int ks_log_get_level(void);
void ks_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ks_error(...) ks_log(KS_LOG_ERROR, __VA_ARGS__)
#define ks_warn(...) ks_log(KS_LOG_WARN, __VA_ARGS__)
#define ks_info(...) ks_log(KS_LOG_INFO, __VA_ARGS__)
#define ks_debug(...) ks_log(KS_LOG_DEBUG, __VA_ARGS__)

/* Returns a newly allocated copy of the first `len` bytes of `s` (or up to the
 * NUL when len is (size_t)-1) in which every byte outside printable ASCII, and
 * the backslash, is written as \xNN.  Caller frees.  Never returns NULL for a
 * non-NULL input unless memory is exhausted. */
char *ks_escape_new(const char *s, size_t len);

#endif
