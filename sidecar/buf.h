/*
 * buf.h - a growable byte buffer with a hard size limit.
 *
 * Every encoder in the sidecar writes into one of these so that memory is
 * bounded by construction: an append that would pass `limit` fails and
 * leaves the buffer marked `overflow`, and the caller counts the drop.
 */
#ifndef SC_BUF_H
#define SC_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sc_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t limit;  /* maximum len; 0 means SIZE_MAX */
	bool overflow; /* an append failed (limit or ENOMEM); sticky */
};

void sc_buf_init(struct sc_buf *b, size_t limit);
void sc_buf_free(struct sc_buf *b);
void sc_buf_reset(struct sc_buf *b); /* len = 0, overflow cleared, memory kept */

/* Make room for n more bytes; returns a pointer to them or NULL. */
uint8_t *sc_buf_reserve(struct sc_buf *b, size_t n);
int sc_buf_append(struct sc_buf *b, const void *p, size_t n);
int sc_buf_puts(struct sc_buf *b, const char *s);
int sc_buf_printf(struct sc_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
