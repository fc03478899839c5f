#include "ks_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A message longer than this is cut: a log line, not a document. */
#define LINE_MAX_BYTES 4096

/* Not a real level: the file label of ks_log_action lines, which the file
 * takes at the "normal" level. */
#define LABEL_ACTION (-1)

static int stderr_level = KS_LOG_WARN;
static int detail_on;
static int quiet_on;
static int color_mode = -1; /* -1: when stderr is a terminal */
static int file_fd = -1;
static int file_level = KS_LOG_WARN;

void ks_log_set_level(int level)
{
    stderr_level = level;
}

int ks_log_get_level(void)
{
    return file_fd >= 0 && file_level > stderr_level ? file_level : stderr_level;
}

void ks_log_set_detail(int on)
{
    detail_on = on;
}

int ks_log_get_detail(void)
{
    return detail_on || ks_log_get_level() >= KS_LOG_DETAIL;
}

void ks_log_set_quiet(int on)
{
    quiet_on = on;
}

void ks_log_set_color(int on)
{
    color_mode = on;
}

int ks_log_level_from_name(const char *name)
{
    static const char *const names[] = {"normal", "verbose", "debug", "detail"};
    static const int levels[] = {KS_LOG_NORMAL, KS_LOG_INFO, KS_LOG_DEBUG, KS_LOG_DETAIL};
    for (size_t i = 0; name != NULL && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return levels[i];
    return -1;
}

static const char *level_name(int level)
{
    switch (level) {
    case KS_LOG_ERROR:
        return "error";
    case KS_LOG_WARN:
        return "warning";
    case KS_LOG_INFO:
        return "info";
    case KS_LOG_DEBUG:
        return "debug";
    default:
        return "detail";
    }
}

static const char *file_label(int level)
{
    switch (level) {
    case LABEL_ACTION:
        return "ACTION";
    case KS_LOG_ERROR:
        return "ERROR";
    case KS_LOG_WARN:
        return "WARNING";
    case KS_LOG_INFO:
        return "INFO";
    case KS_LOG_DEBUG:
        return "DEBUG";
    default:
        return "DETAIL";
    }
}

/* Formats the message with its control characters as \xNN (see ks_log.h);
 * cut at a whole character when it does not fit. */
__attribute__((format(printf, 3, 0))) static void format_line(char *out, size_t outsz,
                                                              const char *fmt, va_list ap)
{
    char raw[LINE_MAX_BYTES];
    vsnprintf(raw, sizeof(raw), fmt, ap);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)raw; *p; p++) {
        int ctl = *p < 0x20 || *p == 0x7f;
        if (o + (ctl ? 4 : 1) >= outsz)
            break;
        if (!ctl) {
            out[o++] = (char)*p;
            continue;
        }
        out[o++] = '\\';
        out[o++] = 'x';
        out[o++] = hex[*p >> 4];
        out[o++] = hex[*p & 0xf];
    }
    out[o] = '\0';
}

static int color_wanted(void)
{
    return color_mode < 0 ? isatty(STDERR_FILENO) : color_mode;
}

/* One fputs on the unbuffered stderr: one write, so the line stays whole
 * next to the output of hooks and children. */
static void write_stderr(int level, const char *msg)
{
    const char *on = "";
    const char *off = "";
    if (level <= KS_LOG_WARN && color_wanted()) {
        on = level == KS_LOG_ERROR ? "\033[31m" : "\033[33m";
        off = "\033[0m";
    }
    char line[LINE_MAX_BYTES + 64];
    snprintf(line, sizeof(line), "%skeysvc: %s: %s%s\n", on, level_name(level), msg, off);
    fputs(line, stderr);
}

/* One write() per line: O_APPEND makes each write land whole at the end,
 * also with other runs appending to the same file.  A failed write is
 * dropped: there is nowhere left to report it. */
static void write_file(int label, const char *msg)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(stamp, sizeof(stamp), "%s", "0000-00-00 00:00:00");
    char line[LINE_MAX_BYTES + 64];
    int n = snprintf(line, sizeof(line), "%s %s %s\n", stamp, file_label(label), msg);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    line[len - 1] = '\n';
    ssize_t w = write(file_fd, line, len);
    (void)w;
}

void ks_log(int level, const char *fmt, ...)
{
    /* Errors always reach stderr; warnings too at the default level, which
     * --quiet leaves alone (only the fuzzers lower it). */
    int to_stderr = level <= stderr_level || level == KS_LOG_ERROR;
    int to_file = file_fd >= 0 && level <= file_level;
    if (!to_stderr && !to_file)
        return;
    int saved_errno = errno;
    char msg[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    format_line(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (to_stderr)
        write_stderr(level, msg);
    if (to_file)
        write_file(level, msg);
    errno = saved_errno;
}

void ks_log_action(const char *fmt, ...)
{
    int to_file = file_fd >= 0 && file_level >= KS_LOG_NORMAL;
    if (quiet_on && !to_file)
        return;
    int saved_errno = errno;
    char msg[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    format_line(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* stdio, not write(): in order with the other lines on stdout. */
    if (!quiet_on)
        printf("%s\n", msg);
    if (to_file)
        write_file(LABEL_ACTION, msg);
    errno = saved_errno;
}

int ks_log_open_file(const char *path, int level, mode_t mode)
{
    ks_log_close_file();
    /* O_NONBLOCK: a FIFO planted at the path fails instead of hanging the
     * run; it does nothing to a regular file. */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
                  mode);
    if (fd < 0)
        return -1;
    struct stat st;
    int bad = fstat(fd, &st) != 0 ? errno : S_ISREG(st.st_mode) ? 0 : EINVAL;
    if (bad != 0) {
        close(fd);
        errno = bad;
        return -1;
    }
    file_fd = fd;
    file_level = level;
    return 0;
}

int ks_log_chown_file(uid_t uid, gid_t gid)
{
    if (file_fd < 0 || (uid == (uid_t)-1 && gid == (gid_t)-1))
        return 0;
    return fchown(file_fd, uid, gid);
}

void ks_log_close_file(void)
{
    if (file_fd >= 0)
        close(file_fd);
    file_fd = -1;
}

char *ks_escape_new(const char *s, size_t len)
{
    if (s == NULL)
        return NULL;
    if (len == (size_t)-1)
        len = strlen(s);
    /* Worst case every byte becomes four. */
    char *out = malloc(len * 4 + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        } else {
            static const char hex[] = "0123456789abcdef";
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0xf];
        }
    }
    out[o] = '\0';
    return out;
}
