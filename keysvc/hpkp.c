/*
 * HPKP header text (hpkp.h).
 */
#include "hpkp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_base64(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '+' || *s == '/' || *s == '='))
            return 0;
    return 1;
}

/* A URI that goes into a quoted-string as it is: printable ASCII without
 * '"' and '\\' (a URI has no business holding those unencoded). */
static int quotable_uri(const char *s)
{
    if (s[0] == '\0')
        return 0;
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

/* Closes the stream; its text (*buf, set by the close), or NULL if any
 * write failed. */
static char *stream_close(FILE *f, char **buf, int ok)
{
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        free(*buf);
        *buf = NULL;
    }
    return *buf;
}

char *ks_hpkp_header_new(const char *const *pins, size_t n, long long max_age_s,
                         int include_subdomains, const char *report_uri)
{
    if (n == 0 || max_age_s < 0 || (report_uri != NULL && !quotable_uri(report_uri)))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!is_base64(pins[i]))
            return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok = ok && fprintf(f, "pin-sha256=\"%s\"; ", pins[i]) >= 0;
    ok = ok && fprintf(f, "max-age=%lld", max_age_s) >= 0;
    if (include_subdomains)
        ok = ok && fputs("; includeSubDomains", f) >= 0;
    if (report_uri != NULL)
        ok = ok && fprintf(f, "; report-uri=\"%s\"", report_uri) >= 0;
    return stream_close(f, &buf, ok);
}

/* Writes the header for the server's quoted string: '"' and '\\' escaped. */
static int put_quoted(FILE *f, const char *s)
{
    for (; *s; s++)
        if (((*s == '"' || *s == '\\') && fputc('\\', f) == EOF) || fputc(*s, f) == EOF)
            return -1;
    return 0;
}

/* Handles the replacement field at tmpl[*i] == '{' (not "{{"). */
static int put_field(FILE *f, const char *tmpl, size_t *i, const char *header, ks_err *err)
{
    const char *start = tmpl + *i + 1;
    size_t flen = strcspn(start, "{}");
    if (start[flen] != '}')
        return ks_fail(err, "hpkp_headers template: unterminated '{' at offset %zu", *i);
    if (flen != strlen("header") || strncmp(start, "header", flen) != 0)
        return ks_fail(err,
                       "hpkp_headers template: unknown field {%.*s} (only {header}; "
                       "{{ and }} for braces)",
                       (int)(flen > 64 ? 64 : flen), start);
    *i += flen + 2;
    return put_quoted(f, header) < 0 ? ks_fail(err, "out of memory") : 0;
}

static int fill(FILE *f, const char *tmpl, const char *header, ks_err *err)
{
    size_t i = 0;
    while (tmpl[i] != '\0') {
        char c = tmpl[i];
        if ((c == '{' || c == '}') && tmpl[i + 1] == c) {
            i += 2;
        } else if (c == '{') {
            if (put_field(f, tmpl, &i, header, err) < 0)
                return -1;
            continue;
        } else if (c == '}') {
            return ks_fail(err, "hpkp_headers template: single '}' at offset %zu", i);
        } else {
            i++;
        }
        if (fputc(c, f) == EOF)
            return ks_fail(err, "out of memory");
    }
    return 0;
}

int ks_hpkp_fill_template(const char *tmpl, const char *header, char **out, ks_err *err)
{
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return ks_fail(err, "out of memory");
    int rc = fill(f, tmpl, header, err);
    *out = stream_close(f, &buf, rc == 0);
    if (rc == 0 && *out == NULL)
        rc = ks_fail(err, "out of memory");
    return rc;
}
