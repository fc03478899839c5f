/*
 * ks_clock: the time keysvc decides by.
 *
 * Renewal, key expiry and the HPKP guard are decided by ks_now().  In a
 * build with KEYSVC_TEST_HOOKS, KEYSVC_TEST_CLOCK_OFFSET (seconds, or with
 * a "d" suffix days; may be negative) moves it, so that tests see a
 * certificate age or a key expire without waiting.  Times keysvc records
 * for its decisions (a key's creation) are taken from the same clock.
 */
#ifndef KS_CLOCK_H
#define KS_CLOCK_H

#include <time.h>

time_t ks_now(void);

#endif
