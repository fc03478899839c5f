/*
 * lock: one keysvc run at a time per state directory.
 *
 * The lock covers the whole run, so the private PostgreSQL that one run
 * started is never stopped under another, and two runs never order the same
 * certificate.  It is an flock on <state>/keysvc.lock, released by the kernel
 * when the process ends, however it ends.
 */
#ifndef KEYSVC_LOCK_H
#define KEYSVC_LOCK_H

#include "ks_err.h"

/* Creates the state directory if needed and takes the lock.  Returns the
 * open lock file descriptor (keep it until the run ends), or -1 with err
 * saying who holds the lock. */
int ks_state_lock(const char *state_dir, ks_err *err);

/* Releases the lock (closes the descriptor); -1 is accepted. */
void ks_state_unlock(int fd);

#endif
