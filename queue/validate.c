/* validate.c - see validate.h. */
#include "queue/validate.h"

#include <stdio.h>
#include <string.h>

int jobq_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t len;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

void jobq_utf8_cut(char *s, size_t max)
{
	size_t n = strnlen(s, max), i = n, cont = 0;
	unsigned char lead;
	size_t want;

	s[n] = '\0';
	while (i > 0 && cont < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--, cont++;
	if (i == 0)
		return;
	lead = (unsigned char)s[i - 1];
	want = (lead & 0xe0) == 0xc0 ? 2 : (lead & 0xf0) == 0xe0 ? 3 : (lead & 0xf8) == 0xf0 ? 4 : 1;
	if (want > 1 && cont + 1 < want)
		s[i - 1] = '\0';
}

int jobq_check_name(const char *field, const char *s, size_t max, char *err, size_t errlen)
{
	size_t n;

	if (!s || !*s) {
		snprintf(err, errlen, "%s must not be empty", field);
		return -1;
	}
	n = strlen(s);
	if (n > max) {
		snprintf(err, errlen, "%s must be at most %zu bytes (got %zu)", field, max, n);
		return -1;
	}
	if (!jobq_utf8_valid(s, n)) {
		snprintf(err, errlen, "%s must be valid UTF-8", field);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			snprintf(err, errlen, "%s must not contain control characters", field);
			return -1;
		}
	}
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int jobq_hex_decode(const char *s, size_t slen, uint8_t *b, size_t n)
{
	if (slen != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void jobq_hex_encode(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

int jobq_traceparent_parse(const char *s, uint8_t trace_id[16], uint8_t span_id[8],
			   uint8_t *flags)
{
	/* 00-<32>-<16>-<2>: 55 characters exactly for version 00. */
	if (!s || strlen(s) != 55 || strncmp(s, "00-", 3) || s[35] != '-' || s[52] != '-')
		return -1;
	for (int i = 0; i < 55; i++)
		if (s[i] >= 'A' && s[i] <= 'F')
			return -1; /* W3C: lowercase only */
	if (jobq_hex_decode(s + 3, 32, trace_id, 16) || jobq_hex_decode(s + 36, 16, span_id, 8) ||
	    jobq_hex_decode(s + 53, 2, flags, 1))
		return -1;
	if (all_zero(trace_id, 16) || all_zero(span_id, 8))
		return -1;
	return 0;
}

uint64_t jobq_be64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}
