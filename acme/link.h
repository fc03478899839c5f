/*
 * Link headers (RFC 8288) as ACME uses them: the certificate's alternate
 * chains (rel="alternate") and the issuer (rel="up").
 */
#ifndef ACME_LINK_H
#define ACME_LINK_H

#include <stddef.h>

/* The target URLs of every link in `header` (a Link header value, several
 * joined with ",") whose rel includes `rel`, in order.  Returns the count
 * with *urls newly allocated (free with acme_links_free), 0 when none, -1 on
 * a malformed header or out of memory.  Only https:// URLs acceptable to the
 * client are returned; others are skipped.  At most `max` are kept. */
int acme_links_find(const char *header, const char *rel, size_t max, char ***urls);

void acme_links_free(char **urls, size_t n);

#endif
