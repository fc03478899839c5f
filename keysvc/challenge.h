/*
 * challenge: proving control of an order's names (docs in challenge.c).
 */
#ifndef KEYSVC_CHALLENGE_H
#define KEYSVC_CHALLENGE_H

#include "run.h"

/* Validates every authorization of `authz` that is still pending, each by
 * the method configured for its name, and waits until all are valid.
 * Removes everything it published (files, DNS records through the cleanup
 * hook, responders), whatever the outcome. */
int ks_validate_authorizations(ks_run *run, acme_authz *authz, size_t n, ks_err *err);

#endif
