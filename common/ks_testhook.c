#include "ks_testhook.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

void ks_crashpoint(const char *name)
{
#ifdef KEYSVC_TEST_HOOKS
    const char *at = getenv("KEYSVC_TEST_CRASH_AT");
    if (at != NULL && strcmp(at, name) == 0)
        raise(SIGKILL);
#else
    (void)name;
#endif
}
