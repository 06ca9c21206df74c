/* validate.h - pure checks and encodings shared by producer and worker. */
#ifndef JOBQ_VALIDATE_H
#define JOBQ_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF). */
int jobq_utf8_valid(const char *s, size_t n);

/* Truncates NUL-terminated s to at most max bytes without splitting a
 * UTF-8 character: a sequence left incomplete at the end (by this cut or
 * an earlier one, e.g. snprintf into a short buffer) is dropped. */
void jobq_utf8_cut(char *s, size_t max);

/* Checks a tenant id / job type / queue name: 1..max bytes of valid UTF-8
 * without control characters. Returns 0, or -1 with "<field> must ..." in
 * err. */
int jobq_check_name(const char *field, const char *s, size_t max, char *err, size_t errlen);

/* Parses a W3C traceparent "00-<32 hex>-<16 hex>-<2 hex>" (lowercase,
 * non-zero ids). Returns 0 or -1. */
int jobq_traceparent_parse(const char *s, uint8_t trace_id[16], uint8_t span_id[8],
			   uint8_t *flags);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void jobq_hex_encode(const uint8_t *b, size_t n, char *out);
/* Decodes exactly 2n lowercase/uppercase hex chars; returns 0 or -1. */
int jobq_hex_decode(const char *s, size_t slen, uint8_t *b, size_t n);

/* Reads 8 bytes as a big-endian integer (trace ids in probes). */
uint64_t jobq_be64(const uint8_t *b);

#endif
