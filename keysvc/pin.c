#include "pin.h"

#include "ks_log.h"
#include "ks_util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIN_MAX 256

static char *pin_from_env(const char *name, size_t *len, ks_err *err)
{
    char *value = getenv(name);
    if (value == NULL || *value == '\0') {
        ks_fail(err, "the PIN environment variable %s is not set", name);
        return NULL;
    }
    *len = strlen(value);
    /* A cut PIN would be a wrong PIN, and a wrong PIN spends a login try. */
    char *pin = *len <= PIN_MAX ? strdup(value) : NULL;
    /* Wipe the copy in our environment block so it is not in a core file,
     * /proc/self/environ, or the environment of anything we start. */
    OPENSSL_cleanse(value, *len);
    unsetenv(name);
    if (*len > PIN_MAX)
        ks_fail(err, "the PIN in %s is longer than %d bytes", name, PIN_MAX);
    else if (pin == NULL)
        ks_fail(err, "out of memory");
    return pin;
}

/* Reads the PIN file into a stack buffer that is wiped, so that no copy is
 * left in freed heap memory. */
static char *pin_from_file(const char *path, size_t *len, ks_err *err)
{
    char buf[PIN_MAX + 3];
    char *pin = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ks_fail(err, "reading the PIN file: %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) == 0 && (st.st_mode & 0077))
        ks_warn("PIN file %s can be read by other users (mode %03o); chmod 600 it", path,
                st.st_mode & 0777);
    /* Read to the end: a short read would cut the PIN, and a wrong PIN
     * spends a login try. */
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ks_fail(err, "reading the PIN file: %s: %s", path, strerror(errno));
            close(fd);
            goto out;
        }
        if (n == 0 || (got += (size_t)n) == sizeof(buf))
            break;
    }
    close(fd);
    *len = got;
    if (*len > 0 && buf[*len - 1] == '\n')
        (*len)--;
    if (*len > 0 && buf[*len - 1] == '\r')
        (*len)--;
    if (*len > PIN_MAX) {
        ks_fail(err, "the PIN in %s is longer than %d bytes", path, PIN_MAX);
        goto out;
    }
    pin = malloc(*len + 1);
    if (pin == NULL) {
        ks_fail(err, "out of memory");
        goto out;
    }
    memcpy(pin, buf, *len);
    pin[*len] = '\0';
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    return pin;
}

char *ks_pin_read(const char *env_name, const char *path, size_t *len, ks_err *err)
{
    *len = 0;
    char *pin = env_name ? pin_from_env(env_name, len, err) : pin_from_file(path, len, err);
    if (pin != NULL && *len == 0) {
        ks_secret_free(pin, 1);
        ks_fail(err, "the PIN from %s is empty", env_name ? env_name : path);
        return NULL;
    }
    return pin;
}
