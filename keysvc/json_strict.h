/*
 * json_strict: one reading of JSON text that no other reader can resolve
 * differently.  json-c alone is lenient in ways that matter for text the
 * signer signs (even with JSON_TOKENER_STRICT it takes NaN, Infinity and
 * "1.", keeps the last of duplicate members, and passes invalid UTF-8), so
 * the text is first checked against RFC 8259 by this validator, then parsed.
 */
#ifndef KEYSVC_JSON_STRICT_H
#define KEYSVC_JSON_STRICT_H

#include <json-c/json.h>
#include <stddef.h>

/* Parses `len` bytes as one JSON object, or NULL when the text is not
 * exactly one RFC 8259 object (whitespace around it allowed) or has:
 * invalid UTF-8, a raw control character or an escaped NUL or lone surrogate
 * in a string, a number outside the grammar, a member name twice in one
 * object, or more than 64 objects and arrays nested.  Caller puts. */
json_object *ks_json_parse_strict(const char *text, size_t len);

#endif
