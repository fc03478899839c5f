/*
 * ks_testhook: named crash points for the crash-safety tests.
 *
 * With KEYSVC_TEST_CRASH_AT=<name> in the environment, ks_crashpoint(<name>)
 * kills the process with SIGKILL on the spot, as a power cut or an OOM kill
 * would; nothing is flushed, nothing is cleaned up.  Without it, a crash
 * point does nothing, and without the KEYSVC_TEST_HOOKS build option it is
 * compiled out.  Tests only.
 */
#ifndef KS_TESTHOOK_H
#define KS_TESTHOOK_H

void ks_crashpoint(const char *name);

#endif
