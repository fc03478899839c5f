#include "pin.h"

#include "ks_log.h"
#include "ks_util.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PIN_MAX 256

static char *pin_from_env(const char *name, size_t *len, ks_err *err)
{
    char *value = getenv(name);
    if (value == NULL || *value == '\0') {
        ks_fail(err, "the PIN environment variable %s is not set", name);
        return NULL;
    }
    *len = strlen(value);
    char *pin = strndup(value, PIN_MAX);
    /* Wipe the copy in our environment block so it is not in a core file,
     * /proc/self/environ, or the environment of anything we start. */
    OPENSSL_cleanse(value, *len);
    unsetenv(name);
    if (pin == NULL)
        ks_fail(err, "out of memory");
    else if (*len > PIN_MAX)
        *len = PIN_MAX;
    return pin;
}

static char *pin_from_file(const char *path, size_t *len, ks_err *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 0077))
        ks_warn("PIN file %s can be read by other users (mode %03o); chmod 600 it", path,
                st.st_mode & 0777);
    char *pin = ks_read_file(path, PIN_MAX + 2, len, err);
    if (pin == NULL) {
        ks_failp(err, "reading the PIN file");
        return NULL;
    }
    if (*len > 0 && pin[*len - 1] == '\n')
        pin[--*len] = '\0';
    if (*len > 0 && pin[*len - 1] == '\r')
        pin[--*len] = '\0';
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
