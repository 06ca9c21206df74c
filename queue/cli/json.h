/* json.h - a small, strict JSON object reader for `jobq enqueue --stdin`
 * (one object per line). Pure; no allocation. */
#ifndef JOBQ_CLI_JSON_H
#define JOBQ_CLI_JSON_H

#include <stddef.h>

enum json_type { JSON_STRING, JSON_NUMBER, JSON_TRUE, JSON_FALSE, JSON_NULL, JSON_OBJECT, JSON_ARRAY };

struct json_field {
	const char *key;      /* decoded, NUL-terminated */
	enum json_type type;
	const char *str;      /* JSON_STRING: decoded, NUL-terminated (may hold NULs: use len) */
	size_t str_len;
	const char *raw;      /* the value's JSON text (valid for every type but
			       * JSON_STRING, whose raw text is decoded in place) */
	size_t raw_len;
};

/* Parses buf[0..n) as exactly one JSON object (whitespace around it is
 * fine) into at most max top-level fields. Decodes strings in place, so
 * buf is modified. Nesting is limited to 64 levels; duplicate keys are
 * rejected. Returns the number of fields, or -1 with a message (with the
 * byte offset) in err. */
int json_parse_object(char *buf, size_t n, struct json_field *fields, size_t max, char *err,
		      size_t errlen);

/* The field named key, or NULL. */
const struct json_field *json_get(const struct json_field *f, size_t n, const char *key);

/* Writes s (NUL-terminated) as a JSON string per RFC 8259 into out: '"'
 * and '\\' escaped, control characters as \n, \t, ... or \u00XX, and
 * every byte that is not part of well-formed UTF-8 as \ufffd, so the
 * result is valid JSON and valid UTF-8 whatever s holds. With quotes 0,
 * the surrounding quotes are left out (a one-line display form). Like
 * snprintf: truncates to cap - 1 bytes (never inside an escape) and
 * returns the length the whole result needs. At most 6 bytes per input
 * byte, plus 2 quotes. */
size_t json_quote(const char *s, int quotes, char *out, size_t cap);

#endif
