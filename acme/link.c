#include "link.h"

#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Appends c to out (cap bytes).  When out is full the rest is dropped, and
 * a word cut in the middle is dropped too: a cut relation type must not
 * match as a shorter one ("alternateup" cut to "alternate"). */
static void put_char(char *out, size_t cap, size_t *o, int *full, char c)
{
    if (*full)
        return;
    if (*o + 1 < cap) {
        out[(*o)++] = c;
        return;
    }
    *full = 1;
    if (c != ' ' && c != '\t')
        while (*o > 0 && out[*o - 1] != ' ' && out[*o - 1] != '\t')
            (*o)--;
}

/* A parameter value: a quoted string (backslash escapes) or a token.  The
 * value is copied into out (cap bytes, cut between words); returns the
 * position after it, or NULL when malformed. */
static const char *param_value(const char *p, char *out, size_t cap)
{
    size_t o = 0;
    int full = 0;
    if (*p == '"') {
        for (p++; *p != '"'; p++) {
            if (*p == '\0')
                return NULL;
            if (*p == '\\' && p[1] != '\0')
                p++;
            put_char(out, cap, &o, &full, *p);
        }
        out[o] = '\0';
        return p + 1;
    }
    while (*p != '\0' && *p != ';' && *p != ',' && *p != ' ' && *p != '\t')
        put_char(out, cap, &o, &full, *p++);
    out[o] = '\0';
    return p;
}

/* Whether a rel value (space-separated relation types) includes `rel`. */
static int rel_includes(const char *value, const char *rel)
{
    size_t n = strlen(rel);
    for (const char *p = value; *p != '\0';) {
        p = skip_space(p);
        const char *end = p;
        while (*end != '\0' && *end != ' ' && *end != '\t')
            end++;
        if ((size_t)(end - p) == n && strncasecmp(p, rel, n) == 0)
            return 1;
        p = end;
    }
    return 0;
}

/* Reads the parameters after "<url>" up to the next link; *matches is set
 * when one is rel including `rel`.  Returns the position of the next link
 * (after the ","), the end, or NULL when malformed. */
static const char *read_params(const char *p, const char *rel, int *matches)
{
    char name[32], value[256];
    *matches = 0;
    for (;;) {
        p = skip_space(p);
        if (*p == '\0')
            return p;
        if (*p == ',')
            return p + 1;
        if (*p != ';')
            return NULL;
        p = skip_space(p + 1);
        size_t n = 0;
        while (isalnum((unsigned char)*p) || *p == '-' || *p == '*') {
            if (n + 1 < sizeof(name))
                name[n++] = *p;
            p++;
        }
        name[n] = '\0';
        p = skip_space(p);
        value[0] = '\0';
        if (*p == '=' && (p = param_value(skip_space(p + 1), value, sizeof(value))) == NULL)
            return NULL;
        if (strcasecmp(name, "rel") == 0 && rel_includes(value, rel))
            *matches = 1;
    }
}

static int keep_url(char ***urls, size_t *n, const char *start, size_t len)
{
    char *url = strndup(start, len);
    char **grown = url ? realloc(*urls, (*n + 1) * sizeof(*grown)) : NULL;
    if (grown == NULL) {
        free(url);
        return -1;
    }
    *urls = grown;
    (*urls)[(*n)++] = url;
    return 0;
}

int acme_links_find(const char *header, const char *rel, size_t max, char ***urls)
{
    size_t n = 0;
    *urls = NULL;
    for (const char *p = header ? header : ""; *(p = skip_space(p)) != '\0';) {
        if (*p == ',') { /* an empty list element: ignored (RFC 9110 5.6.1.2) */
            p++;
            continue;
        }
        if (*p != '<')
            goto bad;
        const char *close = strchr(p, '>');
        if (close == NULL)
            goto bad;
        const char *url = p + 1;
        size_t url_len = (size_t)(close - url);
        int matches;
        p = read_params(close + 1, rel, &matches);
        if (p == NULL)
            goto bad;
        if (!matches || n >= max || url_len > ACME_MAX_URL)
            continue;
        char *copy = strndup(url, url_len);
        int ok = copy != NULL && acme_url_ok(copy);
        free(copy);
        if (ok && keep_url(urls, &n, url, url_len) < 0)
            goto bad;
    }
    return (int)n;
bad:
    acme_links_free(*urls, n);
    *urls = NULL;
    return -1;
}

void acme_links_free(char **urls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(urls[i]);
    free(urls);
}
