/*
 * hpkp: the HTTP Public Key Pinning header (RFC 7469) and acmebot's server
 * files that set it ({name}.{server} in directories.hpkp).  Pure functions:
 * no I/O.
 */
#ifndef KEYSVC_HPKP_H
#define KEYSVC_HPKP_H

#include "ks_err.h"

#include <stddef.h>

/* The header value, RFC 7469 section 2.1:
 *   pin-sha256="P1"; pin-sha256="P2"; max-age=N[; includeSubDomains][; report-uri="U"]
 * `pins`: n >= 1 base64 SHA-256 SPKI pins (ks_spki_pin_new), primary first,
 * then backup, then previous ones.  `max_age_s` = hpkp_days * 86400 (>= 0).
 * `report_uri` may be NULL.  Newly allocated (caller frees); NULL when n is
 * 0, a pin is not base64, max_age_s is negative, the URI holds a character
 * a quoted-string cannot carry plainly ('"', '\\', controls, non-ASCII), or
 * memory is exhausted. */
char *ks_hpkp_header_new(const char *const *pins, size_t n, long long max_age_s,
                         int include_subdomains, const char *report_uri);

/* Fills a server template (acmebot's hpkp_headers, e.g.
 * "add_header Public-Key-Pins \"{header}\" always;\n") with Python
 * str.format's rules: "{header}" becomes the header value, "{{" and "}}"
 * are literal braces; any other field, a format spec or conversion, and a
 * lone brace are errors.  The header goes inside the server's double-quoted
 * string, so its '"' and '\\' are written as \" and \\ (both nginx and
 * Apache read them back; acmebot's header text carries the same \").
 * *out newly allocated (caller frees); -1 with `err` set. */
int ks_hpkp_fill_template(const char *tmpl, const char *header, char **out, ks_err *err);

#endif
