#include "ks_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int current_level = KS_LOG_WARN;

void ks_log_set_level(int level)
{
    current_level = level;
}

int ks_log_get_level(void)
{
    return current_level;
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
    default:
        return "debug";
    }
}

void ks_log(int level, const char *fmt, ...)
{
    if (level > current_level)
        return;
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "keysvc: %s: %s\n", level_name(level), line);
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
