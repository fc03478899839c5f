/*
 * fuzz_pem_chain: the PEM chains a certificate download returns.
 *
 *   ks_chain_parse     the default chain: leaf facts, re-encoded PEM
 *   ks_chain_leaf_der  the first certificate's DER (ARI, revocation)
 *   ks_chain_pick      the chain to keep among the default and alternates
 *
 * Input layout: chains separated by NUL bytes (at most ACME_MAX_CHAINS);
 * the first is the default chain.  When it starts with '#', the rest of its
 * first line is the preferred_chain name (PEM parsing skips that line, as it
 * skips any text before "-----BEGIN").
 */
#include "chain.h"

#include "acme.h"

#include "fuzz_common.h"

#include <openssl/crypto.h>

#define PREFERRED_MAX 256

static int is_serial_hex(const char *s)
{
    if (*s == '-') /* BN_bn2hex of a negative serial (not DER-valid, parsed anyway) */
        s++;
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'F')))
            return 0;
    return 1;
}

/* What ks_chain_parse kept must read back. */
static void check_parsed(const ks_chain *c)
{
    FUZZ_CHECK(c->leaf_pem != NULL && c->chain_pem != NULL && c->serial != NULL);
    FUZZ_CHECK(c->top_issuer_cn != NULL);
    FUZZ_CHECK(is_serial_hex(c->serial));

    ks_chain again;
    ks_err err = {{0}};
    FUZZ_CHECK(ks_chain_parse(c->leaf_pem, &again, &err) == 0);
    FUZZ_CHECK(strcmp(again.serial, c->serial) == 0);
    FUZZ_CHECK(again.not_before == c->not_before && again.not_after == c->not_after);
    FUZZ_CHECK(strcmp(again.chain_pem, "") == 0);
    ks_chain_clear(&again);
    /* The intermediates are certificates (their validity is not read, so
     * ks_chain_parse of them alone may refuse one; ks_chain_pick may not). */
    if (c->chain_pem[0] != '\0') {
        char *only[1] = {c->chain_pem};
        FUZZ_CHECK(ks_chain_pick(only, 1, NULL, &err) == 0);
    }
}

static void fuzz_parse(const char *pem)
{
    ks_chain c;
    ks_err err = {{0}};
    if (ks_chain_parse(pem, &c, &err) == 0) {
        check_parsed(&c);
        ks_chain_clear(&c);
    }

    unsigned char *der = NULL;
    size_t len = 0;
    if (ks_chain_leaf_der(pem, &der, &len, &err) == 0)
        FUZZ_CHECK(der != NULL && len > 0);
    OPENSSL_free(der);
}

/* The preferred name from a leading "#name\n" line, or NULL. */
static const char *preferred_of(const char *first, char *buf)
{
    if (first[0] != '#')
        return NULL;
    size_t n = strcspn(first + 1, "\r\n");
    if (n >= PREFERRED_MAX)
        n = PREFERRED_MAX - 1;
    memcpy(buf, first + 1, n);
    buf[n] = '\0';
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr_new(data, size);
    char *pems[ACME_MAX_CHAINS];
    size_t n = 0;
    for (char *p = text; n < ACME_MAX_CHAINS && p <= text + size; p += strlen(p) + 1)
        pems[n++] = p;

    fuzz_parse(pems[0]);

    char buf[PREFERRED_MAX];
    const char *preferred = preferred_of(pems[0], buf);
    ks_err err = {{0}};
    int pick = ks_chain_pick(pems, n, preferred, &err);
    FUZZ_CHECK(pick >= -1 && pick < (int)n);
    /* Without a preference, the first usable chain; with one, never a chain
     * that is unusable on its own. */
    for (int i = 0; preferred == NULL && i < (pick < 0 ? (int)n : pick); i++)
        FUZZ_CHECK(ks_chain_pick(&pems[i], 1, NULL, &err) == -1);
    if (pick >= 0)
        FUZZ_CHECK(ks_chain_pick(&pems[pick], 1, NULL, &err) == 0);
    free(text);
    return 0;
}
