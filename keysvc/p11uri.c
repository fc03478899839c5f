#include "p11uri.h"

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
