#include "p11uri.h"

#include "ks_util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* RFC 7512 p11-pchar: unreserved plus these; everything else is %XX.  '&'
 * is allowed in path values too.  ';' '/' '?' '#' '%' and space are not. */
static int is_plain(unsigned char c)
{
    return isalnum(c) || strchr("-._~:[]@!$'()*+,=&", c) != NULL;
}

static size_t put_encoded(char *out, const unsigned char *v, size_t len, int encode_all)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (!encode_all && v[i] != '\0' && is_plain(v[i])) {
            out[o++] = (char)v[i];
        } else {
            out[o++] = '%';
            out[o++] = hex[v[i] >> 4];
            out[o++] = hex[v[i] & 15];
        }
    }
    return o;
}

static size_t put_attr(char *out, size_t o, const char *name, const unsigned char *v, size_t len,
                       int encode_all)
{
    if (o > 7)
        out[o++] = ';';
    size_t n = strlen(name);
    memcpy(out + o, name, n);
    o += n;
    out[o++] = '=';
    return o + put_encoded(out + o, v, len, encode_all);
}

char *p11uri_format_new(const p11uri_parts *p)
{
    const char *names[] = {"token", "manufacturer", "serial", "model", "object"};
    const char *values[] = {p->token, p->manufacturer, p->serial, p->model, p->object};
    size_t cap = 8 + p->id_len * 3 + 16 + (p->type ? strlen(p->type) + 8 : 0);
    for (size_t i = 0; i < 5; i++)
        cap += values[i] ? strlen(names[i]) + 2 + strlen(values[i]) * 3 : 0;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    memcpy(out, "pkcs11:", 7);
    size_t o = 7;
    for (size_t i = 0; i < 5; i++)
        if (values[i])
            o = put_attr(out, o, names[i], (const unsigned char *)values[i], strlen(values[i]), 0);
    if (p->id)
        o = put_attr(out, o, "id", p->id, p->id_len, 1);
    if (p->type)
        o = put_attr(out, o, "type", (const unsigned char *)p->type, strlen(p->type), 0);
    out[o] = '\0';
    return out;
}

/* Percent-decodes value[0..len) into out (cap bytes); the length, or -1. */
static long decode(const char *value, size_t len, unsigned char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = ks_hex_digit(value[i + 1]), lo = ks_hex_digit(value[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (o == cap)
            return -1;
        out[o++] = c;
    }
    return (long)o;
}

static int set_text(char **slot, const char *value, size_t len)
{
    if (*slot != NULL)
        return -1; /* given twice */
    unsigned char *buf = malloc(len + 1);
    long n = buf ? decode(value, len, buf, len) : -1;
    if (n < 0 || memchr(buf, '\0', (size_t)n) != NULL) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *slot = (char *)buf;
    return 0;
}

static int set_attr(p11uri_parsed *out, const char *name, size_t name_len, const char *value,
                    size_t len)
{
    static const char *const names[] = {"token", "manufacturer", "model", "serial", "object",
                                        "type"};
    char **slots[] = {&out->token, &out->manufacturer, &out->model,
                      &out->serial, &out->object,      &out->type};
    if (name_len == 2 && strncmp(name, "id", 2) == 0) {
        if (out->has_id)
            return -1;
        long n = decode(value, len, out->id, sizeof(out->id));
        if (n < 0)
            return -1;
        out->id_len = (size_t)n;
        out->has_id = 1;
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == name_len && strncmp(names[i], name, name_len) == 0)
            return set_text(slots[i], value, len);
    return 0; /* an attribute keysvc does not use */
}

int p11uri_parse(const char *uri, p11uri_parsed *out)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(uri, "pkcs11:", 7) != 0)
        return -1;
    const char *p = uri + 7;
    const char *end = p + strcspn(p, "?");
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *attr_end = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(attr_end - p));
        if (eq == NULL || eq == p ||
            set_attr(out, p, (size_t)(eq - p), eq + 1, (size_t)(attr_end - eq - 1)) < 0) {
            p11uri_parsed_clear(out);
            return -1;
        }
        p = semi ? semi + 1 : end;
    }
    return 0;
}

void p11uri_parsed_clear(p11uri_parsed *p)
{
    free(p->token);
    free(p->manufacturer);
    free(p->model);
    free(p->serial);
    free(p->object);
    free(p->type);
    memset(p, 0, sizeof(*p));
}
