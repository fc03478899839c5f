/*
 * ks_log: leveled logging to stderr, action lines to stdout, and an optional
 * log file (acmebot's directories.log / file_names.log / log_level).
 *
 * Anything that came from outside (server responses, DNS data, file contents)
 * is escaped with ks_escape_new() before it is logged, so that a hostile peer
 * cannot write terminal control sequences into an operator's terminal or log.
 * As a second line of defence every sink writes control characters that are
 * still in a formatted message as \xNN, so that one call is one line and no
 * message can forge a line of its own in the log file.
 */
#ifndef KS_LOG_H
#define KS_LOG_H

#include <stddef.h>
#include <sys/types.h>

enum ks_log_level {
    KS_LOG_ERROR = 0,
    KS_LOG_WARN = 1,  /* acmebot's "normal": errors, warnings and actions */
    KS_LOG_INFO = 2,  /* "verbose" */
    KS_LOG_DEBUG = 3, /* "debug" */
    KS_LOG_DETAIL = 4, /* "detail": also payloads (see ks_log_get_detail) */
};
#define KS_LOG_NORMAL KS_LOG_WARN

/* The level of stderr (default KS_LOG_WARN: errors and warnings; --quiet
 * does not change it).  Errors reach stderr whatever the level. */
void ks_log_set_level(int level);

/* The most verbose level that some sink (stderr or the log file) takes:
 * callers test it before costly formatting that nobody would read. */
int ks_log_get_level(void);

void ks_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ks_error(...) ks_log(KS_LOG_ERROR, __VA_ARGS__)
#define ks_warn(...) ks_log(KS_LOG_WARN, __VA_ARGS__)
#define ks_info(...) ks_log(KS_LOG_INFO, __VA_ARGS__)
#define ks_debug(...) ks_log(KS_LOG_DEBUG, __VA_ARGS__)
#define ks_detail(...) ks_log(KS_LOG_DETAIL, __VA_ARGS__)

/* --detail: callers may then log whole payloads (request and response
 * bodies) with ks_detail().  ks_log_get_detail() is also true when a sink
 * takes KS_LOG_DETAIL. */
void ks_log_set_detail(int on);
int ks_log_get_detail(void);

/* acmebot's level names, "normal", "verbose", "debug", "detail": the
 * KS_LOG_* value, or -1 for anything else (NULL included). */
int ks_log_level_from_name(const char *name);

/* Colour on stderr: ERROR lines red, WARN lines yellow (ANSI).  1 forces it
 * on (--color, e.g. for `less -R`), 0 off (--no-color), -1 (the default)
 * only when stderr is a terminal. */
void ks_log_set_color(int on);

/* An action line for cron's mail ("wrote /etc/ssl/certs/x.pem"): to stdout
 * unless quiet, and to the log file at the "normal" level.  No trailing
 * newline in fmt: one call is one line. */
void ks_log_action(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --quiet: no action lines on stdout (the log file still gets them).
 * Errors and warnings on stderr are not affected. */
void ks_log_set_quiet(int on);

/* Opens (creating with `mode`, e.g. 0640) the log file: every line at or
 * above `level` goes there, whatever the stderr level, as
 *   "YYYY-MM-DD HH:MM:SS LEVEL message\n"
 * with the time in UTC (no DST jumps, sorts across machines) and LEVEL one
 * of ERROR WARNING ACTION INFO DEBUG DETAIL.  The file is opened
 * O_APPEND|O_NOFOLLOW|O_CLOEXEC and must be a regular file; each line is one
 * write(), so concurrent runs appending to one file do not interleave
 * within a line.  A file already open is closed first.  Returns 0, or -1
 * with errno set. */
int ks_log_open_file(const char *path, int level, mode_t mode);
void ks_log_close_file(void);

/* Gives the open log file to `uid`:`gid` ((uid_t)-1 / (gid_t)-1: keep).
 * Returns 0 (also without a file), or -1 with errno set. */
int ks_log_chown_file(uid_t uid, gid_t gid);

/* Returns a newly allocated copy of the first `len` bytes of `s` (or up to the
 * NUL when len is (size_t)-1) in which every byte outside printable ASCII, and
 * the backslash, is written as \xNN.  Caller frees.  Never returns NULL for a
 * non-NULL input unless memory is exhausted. */
char *ks_escape_new(const char *s, size_t len);

#endif
