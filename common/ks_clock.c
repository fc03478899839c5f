#include "ks_clock.h"

#include <stdlib.h>

#ifdef KEYSVC_TEST_HOOKS
/* The test offset in seconds; a malformed value is ignored (0). */
static long long test_offset(void)
{
    const char *text = getenv("KEYSVC_TEST_CLOCK_OFFSET");
    if (text == NULL || *text == '\0')
        return 0;
    char *end = NULL;
    long long n = strtoll(text, &end, 10);
    if (end != NULL && *end == 'd' && end[1] == '\0')
        return n * 86400;
    return end != NULL && *end == '\0' ? n : 0;
}
#endif

time_t ks_now(void)
{
    time_t now = time(NULL);
#ifdef KEYSVC_TEST_HOOKS
    now += (time_t)test_offset();
#endif
    return now;
}
