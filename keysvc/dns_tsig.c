#include "dns_tsig.h"

#include "ks_util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ----------------------------------------------------------- algorithms */

typedef struct tsig_alg {
    const char *name; /* as a BIND key statement writes it */
    int number;       /* the DNSSEC algorithm number dnssec-keygen used */
    const char *ldns; /* the name libldns expects */
} tsig_alg;

static const tsig_alg algs[] = {
    {"hmac-md5", 157, "hmac-md5.sig-alg.reg.int."}, {"hmac-sha1", 161, "hmac-sha1."},
    {"hmac-sha224", 162, "hmac-sha224."},           {"hmac-sha256", 163, "hmac-sha256."},
    {"hmac-sha384", 164, "hmac-sha384."},           {"hmac-sha512", 165, "hmac-sha512."},
};
#define N_ALGS (sizeof(algs) / sizeof(algs[0]))

#define SUPPORTED_NAMES "hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512"
#define SUPPORTED_NUMBERS                                                                          \
    "157 (HMAC_MD5), 161 (HMAC_SHA1), 162 (HMAC_SHA224), 163 (HMAC_SHA256), 164 (HMAC_SHA384), "   \
    "165 (HMAC_SHA512)"

static int equals_nocase(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* By BIND name or by libldns name, in any case, with or without the final
 * dot (libldns writes it, BIND does not). */
static const tsig_alg *alg_by_name(const char *s, size_t len)
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    for (size_t i = 0; i < N_ALGS; i++)
        if (equals_nocase(s, len, algs[i].name) ||
            (len + 1 == strlen(algs[i].ldns) && strncasecmp(s, algs[i].ldns, len) == 0))
            return &algs[i];
    return NULL;
}

static const tsig_alg *alg_by_number(int number)
{
    for (size_t i = 0; i < N_ALGS; i++)
        if (algs[i].number == number)
            return &algs[i];
    return NULL;
}

/* --------------------------------------------------------------- values */

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes padded base64 (RFC 4648 section 4) into `out` (NULL: only
 * checks).  Returns the number of bytes (> 0), or -1 when `in` is not
 * base64.  No whitespace: the key files never split a secret. */
static long b64_decode(const char *in, size_t len, unsigned char *out)
{
    if (len == 0 || len % 4 != 0)
        return -1;
    size_t pad = in[len - 1] != '=' ? 0 : in[len - 2] != '=' ? 1 : 2;
    unsigned acc = 0, bits = 0;
    long n = 0;
    for (size_t i = 0; i < len - pad; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (out != NULL)
                out[n] = (unsigned char)(acc >> bits);
            n++;
            acc &= (1u << bits) - 1;
        }
    }
    return n;
}

/* 1 when the two base64 texts decode to the same bytes (both valid). */
static int b64_same(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a_len == 0 || b_len == 0)
        return 0;
    unsigned char *da = malloc(a_len), *db = malloc(b_len);
    int same = 0;
    if (da != NULL && db != NULL) {
        long na = b64_decode(a, a_len, da), nb = b64_decode(b, b_len, db);
        same = na > 0 && na == nb && CRYPTO_memcmp(da, db, (size_t)na) == 0;
    }
    ks_secret_free(da, a_len);
    ks_secret_free(db, b_len);
    return same;
}

/* A host-name-like DNS name: labels of letters, digits, '-' and '_', 1..63
 * long, at most 253 characters without the final dot.  Stricter than DNS
 * so that the name needs no escaping anywhere it goes. */
static int name_is_valid(const char *s, size_t len)
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0;
}

/* The name lower-cased with a trailing dot (caller frees); `s` is valid. */
static char *name_canonical(const char *s, size_t len)
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    char *name = malloc(len + 2);
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        name[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    name[len] = '.';
    name[len + 1] = '\0';
    return name;
}

/* A piece of the file, fit to quote in an error message: at most 64
 * characters, control and non-ASCII bytes as '?'.  Only for names, never
 * for anything that could be the secret.  Returned by value so that
 * printable(...).s lives until the end of the ks_fail() call. */
typedef struct shown_text {
    char s[72];
} shown_text;

static shown_text printable(const char *s, size_t len)
{
    shown_text out;
    int n = len > 64 ? 64 : (int)len;
    snprintf(out.s, sizeof(out.s), "%.*s%s", n, s, (size_t)n < len ? "..." : "");
    for (char *c = out.s; *c != '\0'; c++)
        if (*c < 0x20 || *c > 0x7e)
            *c = '?';
    return out;
}

/* Fills *out from the parsed pieces; on failure *out stays zeroed. */
static int make_key(const char *name, size_t name_len, const tsig_alg *alg, const char *secret,
                    size_t secret_len, ks_tsig_key *out, ks_err *err)
{
    ks_tsig_key k = {name_canonical(name, name_len), strdup(alg->ldns),
                     strndup(secret, secret_len)};
    if (k.name == NULL || k.algorithm == NULL || k.secret == NULL) {
        ks_tsig_key_clear(&k);
        return ks_fail(err, "out of memory");
    }
    *out = k;
    return 0;
}

/* ---------------------------------------------------------------- files */

typedef struct secret_buf {
    char *data; /* NUL-terminated, KS_TSIG_MAX_FILE + 2 bytes allocated */
    size_t len;
} secret_buf;

/* Wipes all of the buffer: it was allocated once, at full size, so that no
 * realloc left a copy of the secret behind. */
static void secret_buf_free(secret_buf *b)
{
    ks_secret_free(b->data, KS_TSIG_MAX_FILE + 2);
    b->data = NULL;
    b->len = 0;
}

static int read_all(int fd, secret_buf *b)
{
    while (b->len < KS_TSIG_MAX_FILE + 1) {
        ssize_t n = read(fd, b->data + b->len, KS_TSIG_MAX_FILE + 1 - b->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        b->len += (size_t)n;
    }
    return 0;
}

/* Reads a whole key file into a wiped-on-free buffer.  Refuses files over
 * KS_TSIG_MAX_FILE and files with NUL bytes (the parsers work on C strings). */
static int read_key_file(const char *path, secret_buf *b, ks_err *err)
{
    b->len = 0;
    if ((b->data = calloc(1, KS_TSIG_MAX_FILE + 2)) == NULL) {
        ks_fail(err, "%s: out of memory", path);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read_all(fd, b) < 0) {
        ks_fail(err, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        secret_buf_free(b);
        return -1;
    }
    close(fd);
    if (b->len > KS_TSIG_MAX_FILE || memchr(b->data, '\0', b->len) != NULL) {
        ks_fail(err, "%s: %s", path,
                b->len > KS_TSIG_MAX_FILE ? "larger than 64 KiB, not a TSIG key file"
                                          : "holds NUL bytes, not a TSIG key file");
        secret_buf_free(b);
        return -1;
    }
    b->data[b->len] = '\0';
    return 0;
}

/* ------------------------------------------------- BIND's key statement */

typedef enum { TOK_EOF, TOK_WORD, TOK_STRING, TOK_LBRACE, TOK_RBRACE, TOK_SEMI } tok_kind;

typedef struct token {
    tok_kind kind;
    const char *text; /* a string's text is without its quotes */
    size_t len;
    int line;
} token;

typedef struct lexer {
    const char *path;
    const char *p; /* NUL-terminated */
    int line;
    ks_err *err;
} lexer;

static int comment_starts(const char *p)
{
    return p[0] == '#' || (p[0] == '/' && (p[1] == '/' || p[1] == '*'));
}

/* Skips one comment at lx->p; -1 when a C comment is not closed. */
static int skip_comment(lexer *lx)
{
    if (lx->p[0] != '/' || lx->p[1] != '*') {
        lx->p += strcspn(lx->p, "\n");
        return 0;
    }
    int start = lx->line;
    for (lx->p += 2; lx->p[0] != '*' || lx->p[1] != '/'; lx->p++) {
        if (*lx->p == '\0')
            return ks_fail(lx->err, "%s:%d: the comment opened here is not closed", lx->path,
                           start);
        lx->line += *lx->p == '\n';
    }
    lx->p += 2;
    return 0;
}

static int skip_blanks(lexer *lx)
{
    for (;;) {
        if (*lx->p != '\0' && strchr(" \t\r\n\f\v", *lx->p) != NULL)
            lx->line += *lx->p++ == '\n';
        else if (!comment_starts(lx->p))
            return 0;
        else if (skip_comment(lx) < 0)
            return -1;
    }
}

/* A quoted string, lx->p just after the opening quote.  It may not span
 * lines: a missing closing quote is then reported on its own line. */
static int lex_string(lexer *lx, token *t)
{
    size_t n = strcspn(lx->p, "\"\n");
    if (lx->p[n] != '"')
        return ks_fail(lx->err, "%s:%d: the quoted string is not closed on its line", lx->path,
                       lx->line);
    t->kind = TOK_STRING;
    t->text = lx->p;
    t->len = n;
    lx->p += n + 1;
    return 0;
}

static int lex(lexer *lx, token *t)
{
    if (skip_blanks(lx) < 0)
        return -1;
    t->line = lx->line;
    t->text = lx->p;
    t->len = 1;
    switch (*lx->p) {
    case '\0':
        t->kind = TOK_EOF;
        t->len = 0;
        return 0;
    case '{':
        t->kind = TOK_LBRACE;
        break;
    case '}':
        t->kind = TOK_RBRACE;
        break;
    case ';':
        t->kind = TOK_SEMI;
        break;
    case '"':
        lx->p++;
        return lex_string(lx, t);
    default:
        t->kind = TOK_WORD;
        for (t->len = 0; lx->p[t->len] != '\0' && !strchr(" \t\r\n\f\v{};\"", lx->p[t->len]) &&
                         !comment_starts(lx->p + t->len);
             t->len++)
            ;
        lx->p += t->len;
        return 0;
    }
    lx->p++;
    return 0;
}

static int is_word(const token *t, const char *word)
{
    return t->kind == TOK_WORD && equals_nocase(t->text, t->len, word);
}

/* What was found, for "expected X, found Y".  Words and strings are not
 * quoted (except the keywords): a misplaced one may be the secret. */
static const char *describe(const token *t)
{
    static const char *const keywords[][2] = {
        {"key", "'key'"}, {"algorithm", "'algorithm'"}, {"secret", "'secret'"}};
    switch (t->kind) {
    case TOK_EOF:
        return "end of file";
    case TOK_LBRACE:
        return "'{'";
    case TOK_RBRACE:
        return "'}'";
    case TOK_SEMI:
        return "';'";
    case TOK_STRING:
        return "a quoted string";
    case TOK_WORD:
        break;
    }
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
        if (is_word(t, keywords[i][0]))
            return keywords[i][1];
    return "a word";
}

static int unexpected(lexer *lx, const token *t, const char *expected)
{
    return ks_fail(lx->err, "%s:%d: expected %s, found %s", lx->path, t->line, expected,
                   describe(t));
}

static int expect(lexer *lx, tok_kind kind, const char *expected, token *t)
{
    if (lex(lx, t) < 0)
        return -1;
    return t->kind == kind ? 0 : unexpected(lx, t, expected);
}

static int expect_value(lexer *lx, const char *expected, token *t)
{
    if (lex(lx, t) < 0)
        return -1;
    return t->kind == TOK_WORD || t->kind == TOK_STRING ? 0 : unexpected(lx, t, expected);
}

/* One key statement's pieces, pointing into the file's buffer. */
typedef struct key_spans {
    int line; /* of the word 'key' */
    token name;
    const tsig_alg *alg;
    int alg_line;
    token secret;
} key_spans;

static int parse_algorithm(lexer *lx, key_spans *ks, int line)
{
    token t;
    if (ks->alg != NULL)
        return ks_fail(lx->err, "%s:%d: a second algorithm clause (the first is on line %d)",
                       lx->path, line, ks->alg_line);
    if (expect_value(lx, "the algorithm name after 'algorithm'", &t) < 0)
        return -1;
    if ((ks->alg = alg_by_name(t.text, t.len)) == NULL)
        return ks_fail(lx->err, "%s:%d: unsupported algorithm \"%s\"; supported: %s", lx->path,
                       t.line, printable(t.text, t.len).s, SUPPORTED_NAMES);
    ks->alg_line = line;
    return expect(lx, TOK_SEMI, "';' after the algorithm", &t);
}

static int parse_secret(lexer *lx, key_spans *ks, int line)
{
    token t;
    if (ks->secret.text != NULL)
        return ks_fail(lx->err, "%s:%d: a second secret clause (the first is on line %d)", lx->path,
                       line, ks->secret.line);
    if (expect_value(lx, "the base64 secret after 'secret'", &ks->secret) < 0)
        return -1;
    if (ks->secret.len == 0)
        return ks_fail(lx->err, "%s:%d: the secret is empty", lx->path, ks->secret.line);
    if (b64_decode(ks->secret.text, ks->secret.len, NULL) < 0)
        return ks_fail(lx->err, "%s:%d: the secret is not valid base64", lx->path, ks->secret.line);
    return expect(lx, TOK_SEMI, "';' after the secret", &t);
}

/* An unknown clause is named when it looks like a clause name (letters and
 * '-'), which a base64 secret run astray hardly does. */
static int unknown_clause(lexer *lx, const token *t)
{
    int named = t->kind == TOK_WORD && t->len <= 32 &&
                strspn(t->text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") >= t->len;
    if (!named)
        return unexpected(lx, t, "'algorithm', 'secret' or '}'");
    return ks_fail(lx->err,
                   "%s:%d: unknown clause '%.*s' in a key statement; expected 'algorithm', "
                   "'secret' or '}'",
                   lx->path, t->line, (int)t->len, t->text);
}

/* Both clauses must be there at the closing brace `t`. */
static int check_complete(lexer *lx, const key_spans *ks, const token *t)
{
    const char *missing = ks->alg == NULL           ? "algorithm (algorithm hmac-sha256;)"
                          : ks->secret.text == NULL ? "secret (secret \"<base64>\";)"
                                                    : NULL;
    if (missing == NULL)
        return 0;
    return ks_fail(lx->err, "%s:%d: key \"%s\" (line %d) ends without its %s", lx->path, t->line,
                   printable(ks->name.text, ks->name.len).s, ks->line, missing);
}

/* The clauses between '{' and '}', in any order. */
static int parse_clauses(lexer *lx, key_spans *ks)
{
    for (;;) {
        token t;
        if (lex(lx, &t) < 0)
            return -1;
        if (t.kind == TOK_RBRACE)
            return check_complete(lx, ks, &t);
        if (t.kind == TOK_EOF)
            return ks_fail(lx->err,
                           "%s:%d: expected 'algorithm', 'secret' or '}', found end of file "
                           "(the key statement of line %d is not closed)",
                           lx->path, t.line, ks->line);
        int rc = is_word(&t, "algorithm") ? parse_algorithm(lx, ks, t.line)
                 : is_word(&t, "secret")  ? parse_secret(lx, ks, t.line)
                                          : unknown_clause(lx, &t);
        if (rc < 0)
            return -1;
    }
}

/* key NAME { clauses };  -- after the word 'key'. */
static int parse_statement(lexer *lx, key_spans *ks)
{
    token t;
    if (expect_value(lx, "the key name after 'key'", &ks->name) < 0)
        return -1;
    if (!name_is_valid(ks->name.text, ks->name.len))
        return ks_fail(lx->err, "%s:%d: the key name \"%s\" is not a DNS name", lx->path,
                       ks->name.line, printable(ks->name.text, ks->name.len).s);
    if (expect(lx, TOK_LBRACE, "'{' after the key name", &t) < 0 || parse_clauses(lx, ks) < 0)
        return -1;
    return expect(lx, TOK_SEMI, "';' after the key statement's '}'", &t);
}

/* The whole file: statements are parsed to the end so that a second key is
 * counted (one file per zone keeps the zone-to-key mapping explicit). */
static int parse_bind(const char *path, const char *text, ks_tsig_key *out, ks_err *err)
{
    lexer lx = {path, text, 1, err};
    key_spans first = {0};
    int count = 0;
    for (;;) {
        key_spans other = {0};
        token t = {0};
        if (lex(&lx, &t) < 0)
            return -1;
        if (t.kind == TOK_EOF)
            break;
        if (!is_word(&t, "key"))
            return unexpected(&lx, &t, "'key'");
        key_spans *ks = count == 0 ? &first : &other;
        ks->line = t.line;
        if (parse_statement(&lx, ks) < 0)
            return -1;
        count++;
    }
    if (count == 0)
        return ks_fail(err,
                       "%s: no key statement (expected key \"<name>\" { algorithm <alg>; "
                       "secret \"<base64>\"; };)",
                       path);
    if (count > 1)
        return ks_fail(err, "%s: holds %d keys; give one key per zone", path, count);
    return make_key(first.name.text, first.name.len, first.alg, first.secret.text, first.secret.len,
                    out, err);
}

static int load_bind(const char *path, ks_tsig_key *out, ks_err *err)
{
    secret_buf b;
    if (read_key_file(path, &b, err) < 0)
        return -1;
    int rc = parse_bind(path, b.data, out, err);
    secret_buf_free(&b);
    return rc;
}

/* ------------------------------------------------ dnssec-keygen's pair */

/* Parses 1 to 3 decimal digits (an algorithm number) exactly filling s/len;
 * -1 otherwise. */
static int parse_number(const char *s, size_t len)
{
    if (len == 0 || len > 3 || strspn(s, "0123456789") < len)
        return -1;
    int n = 0;
    for (size_t i = 0; i < len; i++)
        n = n * 10 + (s[i] - '0');
    return n;
}

static int has_suffix(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* The length of `path` without a ".key" or ".private" extension. */
static size_t prefix_len(const char *path)
{
    size_t len = strlen(path);
    if (has_suffix(path, len, ".key"))
        return len - 4;
    if (has_suffix(path, len, ".private"))
        return len - 8;
    return len;
}

/* The algorithm number when the file name is K<name>.+<alg>+<id>[.key |
 * .private], else -1 (then the file is a BIND key statement). */
static int dnssec_file_alg(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = prefix_len(path) - (size_t)(base - path);
    if (len < 6 || base[0] != 'K')
        return -1;
    size_t id = len;
    while (id > 0 && base[id - 1] >= '0' && base[id - 1] <= '9')
        id--;
    if (id == len || len - id > 5 || id < 5 || base[id - 1] != '+')
        return -1;
    size_t alg = id - 1;
    while (alg > 0 && base[alg - 1] >= '0' && base[alg - 1] <= '9')
        alg--;
    if (alg < 3 || base[alg - 1] != '+' || base[alg - 2] != '.')
        return -1;
    return parse_number(base + alg, id - 1 - alg);
}

/* The next line of a NUL-terminated text without its "\n" or "\r\n";
 * NULL at the end. */
static const char *next_line(const char **p, size_t *len, int *line)
{
    if (**p == '\0')
        return NULL;
    const char *start = *p;
    size_t n = strcspn(start, "\n");
    *p = start + n + (start[n] == '\n');
    while (n > 0 && (start[n - 1] == '\r' || start[n - 1] == ' ' || start[n - 1] == '\t'))
        n--;
    *len = n;
    (*line)++;
    return start;
}

/* What the .private file says. */
typedef struct private_info {
    int format_line, alg, alg_line, key_line;
    const char *key; /* the base64, in the file's buffer */
    size_t key_len;
} private_info;

/* "Algorithm: 163 (HMAC_SHA256)": the number; the name is only a comment. */
static int parse_private_alg(const char *v, size_t len)
{
    size_t digits = strspn(v, "0123456789");
    if (digits > len)
        digits = len;
    size_t rest = digits + strspn(v + digits, " \t");
    if (rest < len && (v[rest] != '(' || v[len - 1] != ')'))
        return -1;
    return parse_number(v, digits);
}

static int private_field(const char *path, int line, const char *field, size_t field_len,
                         const char *v, size_t len, private_info *pi, ks_err *err)
{
    int dup = 0;
    if (equals_nocase(field, field_len, "Private-key-format")) {
        if (len < 4 || strncmp(v, "v1.", 3) != 0 || strspn(v + 3, "0123456789") < len - 3)
            return ks_fail(err, "%s:%d: unsupported Private-key-format \"%s\" (expected v1.x)",
                           path, line, printable(v, len).s);
        dup = pi->format_line != 0;
        pi->format_line = line;
    } else if (equals_nocase(field, field_len, "Algorithm")) {
        if ((pi->alg = parse_private_alg(v, len)) < 0)
            return ks_fail(err, "%s:%d: expected \"Algorithm: <number> (<name>)\"", path, line);
        dup = pi->alg_line != 0;
        pi->alg_line = line;
    } else if (equals_nocase(field, field_len, "Key")) {
        dup = pi->key != NULL;
        pi->key = v;
        pi->key_len = len;
        pi->key_line = line;
    } /* Bits:, Created:, Publish:, Activate: and later additions say nothing we need */
    if (dup)
        return ks_fail(err, "%s:%d: a second %.*s: line", path, line, (int)field_len, field);
    return 0;
}

static int private_line(const char *path, int line, const char *s, size_t len, private_info *pi,
                        ks_err *err)
{
    const char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return ks_fail(err, "%s:%d: expected \"Field: value\"", path, line);
    const char *v = colon + 1;
    size_t field_len = (size_t)(colon - s);
    while (v < s + len && (*v == ' ' || *v == '\t'))
        v++;
    return private_field(path, line, s, field_len, v, (size_t)(s + len - v), pi, err);
}

/* The Key: must be a secret, the Algorithm: an HMAC one. */
static int check_private(const char *path, const private_info *pi, ks_err *err)
{
    if (pi->format_line == 0 || pi->alg_line == 0 || pi->key == NULL) {
        ks_fail(err, "%s: no %s line; not a dnssec-keygen .private file", path,
                pi->format_line == 0 ? "Private-key-format:"
                : pi->alg_line == 0  ? "Algorithm:"
                                     : "Key:");
        return -1; /* spelled out: the analyzers cannot see that ks_fail returns -1 */
    }
    if (alg_by_number(pi->alg) == NULL)
        return ks_fail(err, "%s:%d: algorithm %d is not a TSIG algorithm; supported: %s", path,
                       pi->alg_line, pi->alg, SUPPORTED_NUMBERS);
    if (pi->key_len == 0)
        return ks_fail(err, "%s:%d: the Key: is empty", path, pi->key_line);
    if (b64_decode(pi->key, pi->key_len, NULL) < 0)
        return ks_fail(err, "%s:%d: the Key: is not valid base64", path, pi->key_line);
    return 0;
}

static int parse_private(const char *path, const char *text, private_info *pi, ks_err *err)
{
    const char *s;
    size_t len;
    int line = 0;
    while ((s = next_line(&text, &len, &line)) != NULL)
        if (len > 0 && private_line(path, line, s, len, pi, err) < 0)
            return -1;
    return check_private(path, pi, err);
}

/* The KEY record of the .key file. */
typedef struct key_rr {
    int line, alg;
    const char *owner;
    size_t owner_len;
    char *b64; /* the key, its pieces joined (wiped and freed by key_rr_free) */
    size_t b64_len;
} key_rr;

static void key_rr_free(key_rr *rr)
{
    ks_secret_free(rr->b64, rr->b64_len + 1);
    rr->b64 = NULL;
}

/* The next field of an RR line; parentheses are blanks (RFC 1035 lets
 * them group a record's fields). */
static const char *next_field(const char **p, const char *end, size_t *len)
{
    while (*p < end && strchr(" \t()", **p) != NULL)
        (*p)++;
    const char *start = *p;
    while (*p < end && strchr(" \t()", **p) == NULL)
        (*p)++;
    *len = (size_t)(*p - start);
    return *len > 0 ? start : NULL;
}

/* After the owner: [ttl] [class] in either order, then the type. */
static const char *skip_ttl_class(const char **p, const char *end, size_t *len)
{
    const char *f = next_field(p, end, len);
    for (int i = 0; i < 2 && f != NULL; i++) {
        int ttl = strspn(f, "0123456789") >= *len;
        int cls = equals_nocase(f, *len, "IN") || equals_nocase(f, *len, "CH") ||
                  equals_nocase(f, *len, "HS");
        if (!ttl && !cls)
            break;
        f = next_field(p, end, len);
    }
    return f;
}

/* Joins the rest of the line (the base64, maybe in pieces) into rr->b64. */
static int join_b64(const char *p, const char *end, key_rr *rr)
{
    if ((rr->b64 = calloc(1, (size_t)(end - p) + 1)) == NULL)
        return -1;
    size_t len;
    const char *f;
    while ((f = next_field(&p, end, &len)) != NULL) {
        memcpy(rr->b64 + rr->b64_len, f, len);
        rr->b64_len += len;
    }
    return 0;
}

/* <owner> [ttl] [class] KEY <flags> <protocol> <algorithm> <base64>.  No
 * field is quoted in errors: a misplaced one may be the secret. */
static int parse_rr(const char *path, int line, const char *s, size_t len, key_rr *rr, ks_err *err)
{
    const char *p = s, *end = s + len, *f;
    size_t flen;
    static const char form[] = "<name>. [ttl] IN KEY <flags> <protocol> <algorithm> <base64>";
    rr->line = line;
    rr->owner = next_field(&p, end, &rr->owner_len);
    f = skip_ttl_class(&p, end, &flen);
    if (f == NULL || !equals_nocase(f, flen, "KEY"))
        return ks_fail(err, "%s:%d: expected a KEY record: %s", path, line, form);
    for (int i = 0; i < 3; i++) {
        f = next_field(&p, end, &flen);
        if (f == NULL || strspn(f, "0123456789") < flen || flen > 5)
            return ks_fail(err, "%s:%d: expected numbers for flags, protocol and algorithm: %s",
                           path, line, form);
    }
    rr->alg = parse_number(f, flen);
    if (join_b64(p, end, rr) < 0)
        return ks_fail(err, "out of memory");
    if (rr->b64_len == 0 || b64_decode(rr->b64, rr->b64_len, NULL) < 0)
        return ks_fail(err, "%s:%d: the KEY record's key is %s", path, line,
                       rr->b64_len == 0 ? "missing" : "not valid base64");
    return 0;
}

/* The one record; ';' starts a comment (base64 has no ';'). */
static int parse_key_file(const char *path, const char *text, key_rr *rr, ks_err *err)
{
    const char *s;
    size_t len;
    int line = 0;
    while ((s = next_line(&text, &len, &line)) != NULL) {
        const char *semi = memchr(s, ';', len);
        len = semi ? (size_t)(semi - s) : len;
        if (strspn(s, " \t") >= len)
            continue;
        if (rr->line != 0)
            return ks_fail(err,
                           "%s:%d: a second record (the first is on line %d); expected one "
                           "KEY record",
                           path, line, rr->line);
        if (parse_rr(path, line, s, len, rr, err) < 0)
            return -1;
    }
    if (rr->line == 0)
        return ks_fail(err, "%s: no KEY record; expected %s", path,
                       "<name>. IN KEY 512 3 <algorithm> <base64>");
    return 0;
}

/* The file name, the .private and the .key record must tell the same key. */
static int check_pair(const char *key_path, const char *priv_path, int file_alg,
                      const private_info *pi, const key_rr *rr, ks_err *err)
{
    if (file_alg != pi->alg || rr->alg != pi->alg)
        return ks_fail(err,
                       "%s: algorithm numbers disagree: the file name says %d, %s:%d says %d, "
                       "the KEY record in %s:%d says %d",
                       key_path, file_alg, priv_path, pi->alg_line, pi->alg, key_path, rr->line,
                       rr->alg);
    if (!name_is_valid(rr->owner, rr->owner_len))
        return ks_fail(err, "%s:%d: the owner \"%s\" is not a DNS name", key_path, rr->line,
                       printable(rr->owner, rr->owner_len).s);
    if (!b64_same(pi->key, pi->key_len, rr->b64, rr->b64_len))
        return ks_fail(err, "%s:%d: the KEY record's key differs from the Key: in %s", key_path,
                       rr->line, priv_path);
    return 0;
}

/* Both files read, parsed and checked; then *out is filled. */
static int parse_pair(const char *key_path, const char *priv_path, int file_alg, ks_tsig_key *out,
                      ks_err *err)
{
    secret_buf kb = {0}, pb = {0};
    private_info pi = {0};
    key_rr rr = {0};
    int rc = -1;
    if (read_key_file(priv_path, &pb, err) < 0 || parse_private(priv_path, pb.data, &pi, err) < 0 ||
        read_key_file(key_path, &kb, err) < 0 || parse_key_file(key_path, kb.data, &rr, err) < 0 ||
        check_pair(key_path, priv_path, file_alg, &pi, &rr, err) < 0)
        goto out;
    rc = make_key(rr.owner, rr.owner_len, alg_by_number(pi.alg), pi.key, pi.key_len, out, err);
out:
    key_rr_free(&rr);
    secret_buf_free(&kb);
    secret_buf_free(&pb);
    return rc;
}

static int load_pair(const char *path, int file_alg, ks_tsig_key *out, ks_err *err)
{
    int n = (int)prefix_len(path);
    char *key_path = ks_strdup_printf("%.*s.key", n, path);
    char *priv_path = ks_strdup_printf("%.*s.private", n, path);
    int rc = key_path && priv_path ? parse_pair(key_path, priv_path, file_alg, out, err)
                                   : ks_fail(err, "out of memory");
    free(key_path);
    free(priv_path);
    return rc;
}

/* ------------------------------------------------------------------ API */

int ks_tsig_key_load(const char *path, ks_tsig_key *out, ks_err *err)
{
    memset(out, 0, sizeof(*out));
    int file_alg = dnssec_file_alg(path);
    return file_alg >= 0 ? load_pair(path, file_alg, out, err) : load_bind(path, out, err);
}

void ks_tsig_key_clear(ks_tsig_key *k)
{
    if (k == NULL)
        return;
    free(k->name);
    free(k->algorithm);
    ks_secret_free(k->secret, 0);
    memset(k, 0, sizeof(*k));
}
