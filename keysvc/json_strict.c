#include "json_strict.h"

#include "ks_util.h"

#include <string.h>

#define MAX_DEPTH 64

/* The validator's position in the text, and the member names it counted
 * (json-c keeps one of duplicate members: the counts then differ). */
typedef struct reader {
    const unsigned char *p;
    const unsigned char *end;
    size_t members;
} reader;

static int value(reader *r, int depth);

static void skip_ws(reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int eat(reader *r, char c)
{
    skip_ws(r);
    if (r->p < r->end && *r->p == (unsigned char)c) {
        r->p++;
        return 1;
    }
    return 0;
}

static int hex4(reader *r, unsigned *out)
{
    *out = 0;
    for (int i = 0; i < 4; i++, r->p++) {
        if (r->p >= r->end)
            return 0;
        int d = ks_hex_digit(*r->p);
        if (d < 0)
            return 0;
        *out = *out << 4 | (unsigned)d;
    }
    return 1;
}

/* \uXXXX after the backslash and 'u': no NUL, surrogates only in pairs. */
static int unicode_escape(reader *r)
{
    unsigned u, low;
    if (!hex4(r, &u) || u == 0 || (u >= 0xDC00 && u <= 0xDFFF))
        return 0;
    if (u < 0xD800 || u > 0xDBFF)
        return 1;
    if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
        return 0;
    r->p += 2;
    return hex4(r, &low) && low >= 0xDC00 && low <= 0xDFFF;
}

/* One UTF-8 sequence of 2 to 4 bytes (RFC 3629: shortest form, no
 * surrogates, at most U+10FFFF). */
static int utf8_sequence(reader *r)
{
    unsigned c = *r->p, n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
    unsigned cp = c & (0x3F >> n);
    if (c < 0xC2 || c > 0xF4 || (size_t)(r->end - r->p) <= n)
        return 0;
    for (unsigned i = 1; i <= n; i++) {
        if ((r->p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (r->p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    r->p += n + 1;
    return 1;
}

static int string(reader *r)
{
    if (!eat(r, '"'))
        return 0;
    while (r->p < r->end) {
        unsigned c = *r->p;
        if (c == '"') {
            r->p++;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c >= 0x80) {
            if (!utf8_sequence(r))
                return 0;
            continue;
        }
        r->p++;
        if (c != '\\')
            continue;
        if (r->p >= r->end)
            return 0;
        c = *r->p++;
        if (c == 'u') {
            if (!unicode_escape(r))
                return 0;
        } else if (!strchr("\"\\/bfnrt", (int)c) || c == 0) {
            return 0;
        }
    }
    return 0;
}

static int digits(reader *r)
{
    const unsigned char *start = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return r->p > start;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int number(reader *r)
{
    if (r->p < r->end && *r->p == '-')
        r->p++;
    if (r->p < r->end && *r->p == '0')
        r->p++;
    else if (!digits(r))
        return 0;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (!digits(r))
            return 0;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (!digits(r))
            return 0;
    }
    return 1;
}

static int literal(reader *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return 0;
    r->p += n;
    return 1;
}

static int object(reader *r, int depth)
{
    if (eat(r, '}'))
        return 1;
    do {
        skip_ws(r);
        if (!string(r) || !eat(r, ':') || !value(r, depth))
            return 0;
        r->members++;
    } while (eat(r, ','));
    return eat(r, '}');
}

static int array(reader *r, int depth)
{
    if (eat(r, ']'))
        return 1;
    do {
        if (!value(r, depth))
            return 0;
    } while (eat(r, ','));
    return eat(r, ']');
}

/* `depth`: the containers around this value; a container here is one more,
 * and at most MAX_DEPTH may be open. */
static int value(reader *r, int depth)
{
    skip_ws(r);
    if (r->p >= r->end)
        return 0;
    if ((*r->p == '{' || *r->p == '[') && depth + 1 > MAX_DEPTH)
        return 0;
    switch (*r->p) {
    case '{':
        r->p++;
        return object(r, depth + 1);
    case '[':
        r->p++;
        return array(r, depth + 1);
    case '"':
        return string(r);
    case 't':
        return literal(r, "true");
    case 'f':
        return literal(r, "false");
    case 'n':
        return literal(r, "null");
    default:
        return number(r);
    }
}

/* Members in the parsed tree, to compare with the text's count. */
static size_t count_members(json_object *obj)
{
    size_t n = 0;
    if (json_object_is_type(obj, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(obj); i++)
            n += count_members(json_object_array_get_idx(obj, i));
    } else if (json_object_is_type(obj, json_type_object)) {
        json_object_object_foreach(obj, key, val)
        {
            (void)key;
            n += 1 + count_members(val);
        }
    }
    return n;
}

json_object *ks_json_parse_strict(const char *text, size_t len)
{
    reader r = {.p = (const unsigned char *)text, .end = (const unsigned char *)text + len};
    skip_ws(&r);
    if (r.p >= r.end || *r.p != '{' || !value(&r, 0))
        return NULL;
    skip_ws(&r);
    if (r.p != r.end)
        return NULL;
    /* json-c's own depth limit (32 by default) must not be the lower one. */
    json_tokener *tok = json_tokener_new_ex(MAX_DEPTH + 2);
    if (tok == NULL)
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    int whole = json_tokener_get_error(tok) == json_tokener_success &&
                json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    if (obj == NULL || !whole || !json_object_is_type(obj, json_type_object) ||
        count_members(obj) != r.members) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}
