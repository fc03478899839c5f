/*
 * fuzz_link: the Link header of a certificate download (RFC 8288), read
 * for the alternate chains (rel="alternate") and the issuer (rel="up").
 *
 * The input is the header value as http.c joins it: every Link header,
 * separated by ", ", NUL-terminated.
 */
#include "link.h"

#include "acme.h"
#include "internal.h"

#include "fuzz_common.h"

static void find(const char *header, const char *rel, size_t max)
{
    char **urls = NULL;
    int n = acme_links_find(header, rel, max, &urls);
    FUZZ_CHECK(n >= -1 && (n < 0 || (size_t)n <= max));
    FUZZ_CHECK(n > 0 || urls == NULL);
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(acme_url_ok(urls[i]));
    acme_links_free(urls, n > 0 ? (size_t)n : 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *header = fuzz_cstr_new(data, size);
    /* As acme_certificate_fetch_all asks, and with a bound of one. */
    find(header, "alternate", ACME_MAX_CHAINS - 1);
    find(header, "up", 1);
    free(header);
    return 0;
}
