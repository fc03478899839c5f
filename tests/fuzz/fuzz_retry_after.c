/*
 * fuzz_retry_after: dates and delays the CA sends.
 *
 *   acme_retry_after_ms  the Retry-After header: delay-seconds or HTTP-date
 *   acme_rfc3339_parse   the times of a renewalInfo suggestedWindow
 *
 * The input is the header value (or the JSON string), NUL-terminated.
 */
#include "acme.h"
#include "internal.h"

#include "fuzz_common.h"

/* The cap request.c puts on any Retry-After (a week). */
#define RETRY_AFTER_CAP_MS (7LL * 24 * 3600 * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr_new(data, size);

    long long ms = acme_retry_after_ms(text);
    FUZZ_CHECK(ms >= -1 && ms <= RETRY_AFTER_CAP_MS);

    time_t t = 0;
    if (acme_rfc3339_parse(text, &t) == 0) {
        /* Years 0000-9999 with an offset of under a day. */
        FUZZ_CHECK(t >= -62167219200LL - 86400 && t <= 253402300799LL + 86400);
    }
    free(text);
    return 0;
}
