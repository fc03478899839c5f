#include "ks_err.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ks_fail(ks_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

int ks_failp(ks_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    char prefix[KS_ERR_MAX];
    char old[KS_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    int n = snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old[0] ? old : "unknown error");
    /* A long chain of context is cut, not lost: mark where. */
    if (n >= (int)sizeof(err->msg))
        memcpy(err->msg + sizeof(err->msg) - 4, "...", 4);
    return -1;
}

int ks_fail_openssl(ks_err *err, const char *what)
{
    char detail[512] = "";
    size_t used = 0;
    unsigned long code;
    while ((code = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(code, one, sizeof(one));
        int n = snprintf(detail + used, sizeof(detail) - used, "%s%s", used ? "; " : "", one);
        if (n < 0 || (size_t)n >= sizeof(detail) - used)
            break;
        used += (size_t)n;
    }
    ERR_clear_error();
    if (detail[0] == '\0')
        return ks_fail(err, "%s", what);
    return ks_fail(err, "%s: %s", what, detail);
}

void ks_err_clear(ks_err *err)
{
    if (err != NULL)
        err->msg[0] = '\0';
}
