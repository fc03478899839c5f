#include "ks_util.h"

#include "ks_log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *ks_read_file(const char *path, size_t max_len, size_t *len, ks_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ks_fail(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t used = 0, cap = 0;
    for (;;) {
        if (used + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                ks_fail(err, "%s: out of memory", path);
                goto fail;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + used, cap - used - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ks_fail(err, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max_len) {
            ks_fail(err, "%s: larger than %zu bytes", path, max_len);
            goto fail;
        }
    }
    close(fd);
    if (buf == NULL && (buf = malloc(1)) == NULL) {
        ks_fail(err, "%s: out of memory", path);
        return NULL;
    }
    buf[used] = '\0';
    if (len)
        *len = used;
    return buf;
fail:
    close(fd);
    free(buf);
    return NULL;
}

int ks_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ks_fsync_dir(const char *dir, ks_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ks_fail(err, "cannot open directory %s: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc < 0)
        return ks_fail(err, "fsync of directory %s: %s", dir, strerror(saved));
    return 0;
}

static int fsync_parent_dir(const char *path, ks_err *err)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return ks_fail(err, "out of memory");
    int rc = ks_fsync_dir(dirname(copy), err);
    free(copy);
    return rc;
}

int ks_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         ks_err *err)
{
    char *tmp = ks_strdup_printf("%s.tmp.XXXXXX", path);
    if (tmp == NULL)
        return ks_fail(err, "%s: out of memory", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        ks_fail(err, "%s: cannot create temporary file: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    const char *step = "write";
    if (ks_write_all(fd, data, len) < 0)
        goto fail;
    step = "chmod";
    if (fchmod(fd, mode) < 0)
        goto fail;
    step = "fsync";
    if (fsync(fd) < 0)
        goto fail;
    step = "close";
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    step = "rename";
    if (rename(tmp, path) < 0)
        goto fail;
    free(tmp);
    /* The rename is durable only once the directory entry is on disk. */
    ks_err dir_err;
    if (fsync_parent_dir(path, &dir_err) < 0)
        ks_warn("%s: the file is in place, but %s", path, dir_err.msg);
    return 0;
fail:
    ks_fail(err, "%s: %s: %s", path, step, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}

int ks_file_equals(const char *path, const void *data, size_t len)
{
    size_t have_len = 0;
    char *have = ks_read_file(path, len + 1, &have_len, NULL);
    if (have == NULL)
        return 0;
    int same = have_len == len && memcmp(have, data, len) == 0;
    free(have);
    return same;
}

/* Sets the mode of a directory we just made, through a descriptor opened
 * without following symlinks, so a swapped-in link cannot redirect it. */
static int chmod_created_dir(const char *dir, mode_t mode)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fchmod(fd, mode);
    close(fd);
    return rc;
}

int ks_mkdirs(const char *path, mode_t mode, ks_err *err)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return ks_fail(err, "%s: out of memory", path);
    for (char *p = copy + 1;; p++) {
        char saved = *p;
        if (saved != '/' && saved != '\0')
            continue;
        *p = '\0';
        int made = mkdir(copy, mode) == 0;
        if ((!made && errno != EEXIST) || (made && chmod_created_dir(copy, mode) < 0)) {
            ks_fail(err, "cannot create directory %s: %s", copy, strerror(errno));
            free(copy);
            return -1;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    free(copy);
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return ks_fail(err, "%s: not a directory", path);
    return 0;
}

char *ks_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : out;
}

void ks_secret_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    if (len == 0)
        len = strlen(p) + 1;
    OPENSSL_cleanse(p, len);
    free(p);
}

long long ks_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long ks_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void ks_sleep_ms(long long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int ks_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *ks_hex_new(const unsigned char *b, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *hex = malloc(len * 2 + 1);
    if (hex == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[b[i] >> 4];
        hex[2 * i + 1] = digits[b[i] & 15];
    }
    hex[len * 2] = '\0';
    return hex;
}
