#include "pin.h"

#include "ks_log.h"
#include "ks_util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int ks_pin_source_changed(const ks_pin_source *src)
{
    struct stat st;
    if (src->path == NULL || stat(src->path, &st) < 0)
        return 0;
    return st.st_mtim.tv_sec != src->read_mtime.tv_sec ||
           st.st_mtim.tv_nsec != src->read_mtime.tv_nsec;
}

void ks_pin_env_wipe(const char *env_name)
{
    char *value = env_name ? getenv(env_name) : NULL;
    /* Wipe the bytes in the environment block itself, so the PIN is not in a
     * core file or /proc/self/environ, then drop the variable. */
    if (value != NULL)
        OPENSSL_cleanse(value, strlen(value));
    if (env_name != NULL)
        unsetenv(env_name);
}

/* A page that is never swapped out and never written to a core file. */
static char *protected_page(size_t *len)
{
    long page = sysconf(_SC_PAGESIZE);
    *len = page > 0 ? (size_t)page : 4096;
    char *p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (mlock(p, *len) < 0)
        ks_warn("cannot lock the PIN's memory page: %s", strerror(errno));
    madvise(p, *len, MADV_DONTDUMP);
    return p;
}

static int capture_env(ks_pin_source *src, const char *name, ks_err *err)
{
    char *value = getenv(name);
    size_t len = value ? strlen(value) : 0;
    int rc = 0;
    if (len == 0)
        rc = ks_fail(err, "the PIN environment variable %s is not set", name);
    else if (len > KS_PIN_MAX)
        /* A cut PIN would be a wrong PIN, and a wrong PIN spends a login try. */
        rc = ks_fail(err, "the PIN in %s is longer than %d bytes", name, KS_PIN_MAX);
    else if ((src->page = protected_page(&src->page_len)) == NULL)
        rc = ks_fail(err, "cannot map a page for the PIN: %s", strerror(errno));
    if (rc == 0) {
        memcpy(src->page, value, len);
        src->pin_len = len;
    }
    ks_pin_env_wipe(name);
    return rc;
}

int ks_pin_source_init(ks_pin_source *src, const char *env_name, const char *path, ks_err *err)
{
    memset(src, 0, sizeof(*src));
    if ((env_name == NULL) == (path == NULL))
        return ks_fail(err, "a PIN comes from exactly one of an environment variable or a file");
    if (env_name != NULL) {
        snprintf(src->what, sizeof(src->what), "environment variable %s", env_name);
        return capture_env(src, env_name, err);
    }
    snprintf(src->what, sizeof(src->what), "file %s", path);
    src->path = strdup(path);
    return src->path ? 0 : ks_fail(err, "out of memory");
}

/* Reads the PIN file to the end into buf, without leaving copies in heap
 * memory.  Returns the length or -1. */
static int read_pin_file(ks_pin_source *src, char *buf, size_t cap, size_t *len, ks_err *err)
{
    struct stat st;
    const char *path = src->path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ks_fail(err, "reading the PIN file: %s: %s", path, strerror(errno));
    if (fstat(fd, &st) == 0) {
        src->read_mtime = st.st_mtim;
        if (st.st_mode & 0077)
            ks_warn("PIN file %s can be read by other users (mode %03o); chmod 600 it", path,
                    st.st_mode & 0777);
    }
    /* Read to the end: a short read would cut the PIN. */
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            close(fd);
            return ks_fail(err, "reading the PIN file: %s: %s", path, strerror(saved));
        }
        if (n == 0 || (got += (size_t)n) == cap)
            break;
    }
    close(fd);
    if (got > 0 && buf[got - 1] == '\n')
        got--;
    if (got > 0 && buf[got - 1] == '\r')
        got--;
    *len = got;
    return 0;
}

int ks_pin_source_get(void *ctx, char *buf, size_t cap, size_t *len, ks_err *err)
{
    ks_pin_source *src = ctx;
    if (cap < KS_PIN_MAX + 1)
        return ks_fail(err, "PIN buffer too small");
    if (src->page != NULL) {
        memcpy(buf, src->page, src->pin_len);
        *len = src->pin_len;
    } else if (read_pin_file(src, buf, cap, len, err) < 0) {
        return -1;
    }
    if (*len == 0)
        return ks_fail(err, "the PIN from %s is empty", src->what);
    if (*len > KS_PIN_MAX)
        return ks_fail(err, "the PIN in %s is longer than %d bytes", src->what, KS_PIN_MAX);
    return 0;
}

void ks_pin_source_clear(ks_pin_source *src)
{
    if (src->page != NULL) {
        OPENSSL_cleanse(src->page, src->page_len);
        munlock(src->page, src->page_len);
        munmap(src->page, src->page_len);
    }
    free(src->path);
    memset(src, 0, sizeof(*src));
}
