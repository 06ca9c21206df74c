/* utf8.c - UTF-8 validation and repair (see utf8.h). */
#include "sidecar/utf8.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid sequence at s[0..n), or 0 if s[0] starts an invalid
 * one; *bad_len gets the length of the maximal invalid prefix to replace. */
static size_t seq_len(const uint8_t *s, size_t n, size_t *bad_len)
{
	uint8_t c = s[0];
	size_t need;
	uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

	*bad_len = 1;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F; /* > U+10FFFF */
	} else {
		return 0;
	}
	for (size_t i = 1; i < need; i++) {
		if (i >= n)
			return 0;
		uint8_t b = s[i];
		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
			return 0;
		*bad_len = i + 1; /* a truncated sequence is one replacement */
	}
	return need;
}

bool sc_utf8_valid(const char *str, size_t n)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t i = 0, bad;
	while (i < n) {
		size_t l = seq_len(s + i, n - i, &bad);
		if (!l)
			return false;
		i += l;
	}
	return true;
}

size_t sc_utf8_repair(const char *str, size_t n, char *out)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t i = 0, o = 0, bad;
	while (i < n) {
		size_t l = seq_len(s + i, n - i, &bad);
		if (l) {
			memcpy(out + o, s + i, l);
			o += l;
			i += l;
		} else {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i += bad;
		}
	}
	return o;
}
