/* buf.c - bounded growable byte buffer (see buf.h). */
#include "sidecar/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sc_buf_init(struct sc_buf *b, size_t limit)
{
	memset(b, 0, sizeof(*b));
	b->limit = limit ? limit : SIZE_MAX;
}

void sc_buf_free(struct sc_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void sc_buf_reset(struct sc_buf *b)
{
	b->len = 0;
	b->overflow = false;
}

uint8_t *sc_buf_reserve(struct sc_buf *b, size_t n)
{
	if (b->overflow)
		return NULL;
	if (n > b->limit - b->len) {
		b->overflow = true;
		return NULL;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
		if (cap > b->limit)
			cap = b->limit;
		uint8_t *p = realloc(b->data, cap);
		if (!p) {
			b->overflow = true;
			return NULL;
		}
		b->data = p;
		b->cap = cap;
	}
	return b->data + b->len;
}

int sc_buf_append(struct sc_buf *b, const void *p, size_t n)
{
	uint8_t *dst = sc_buf_reserve(b, n);
	if (!dst)
		return -1;
	if (n)
		memcpy(dst, p, n);
	b->len += n;
	return 0;
}

int sc_buf_puts(struct sc_buf *b, const char *s)
{
	return sc_buf_append(b, s, strlen(s));
}

int sc_buf_printf(struct sc_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return sc_buf_append(b, small, (size_t)n);
	uint8_t *dst = sc_buf_reserve(b, (size_t)n + 1);
	if (!dst)
		return -1;
	va_start(ap, fmt);
	vsnprintf((char *)dst, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}
