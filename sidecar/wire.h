/*
 * wire.h - minimal protobuf wire-format walking and writing.
 *
 * Reading lets the server apply a large MetricSnapshot one element at a
 * time and turn agent spans into OTLP bytes without building decoded trees.
 * The reader accepts exactly what protobuf-c 1.4's unpacker scans: a tag of
 * at most 5 bytes whose first byte has field bits, varints of at most 10
 * bytes, length prefixes of at most 5 bytes, no groups. (Whether a known
 * field has the wire type its type needs is the caller's check.)
 */
#ifndef SC_WIRE_H
#define SC_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { SC_WT_VARINT = 0, SC_WT_I64 = 1, SC_WT_LEN = 2, SC_WT_I32 = 5 };

struct sc_pb_field {
	uint32_t number;
	int wire_type;       /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
	uint64_t varint;     /* wire type 0 */
	const uint8_t *data; /* wire types 1, 2, 5: the value (without a length prefix) */
	size_t len;
	const uint8_t *raw;  /* the value as on the wire (varint bytes, length prefix included) */
	size_t rawlen;
};

/* Reads the field at *p (before end) and advances *p. Returns 1 with *f
 * filled, 0 at the end of the buffer, -1 if the bytes are malformed
 * (truncated, bad varint, field number 0, groups). */
int sc_pb_next(const uint8_t **p, const uint8_t *end, struct sc_pb_field *f);

/* protobuf-c's bool: true if any varint (or raw) byte has a value bit. It
 * accepts a bool field of any wire type, so f->raw is what it reads. */
static inline int sc_pb_bool(const struct sc_pb_field *f)
{
	for (size_t i = 0; i < f->rawlen; i++)
		if (f->raw[i] & 0x7f)
			return 1;
	return 0;
}

static inline uint64_t sc_pb_fixed64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- writing (the caller has the room) ---- */

static inline size_t sc_pb_varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline uint8_t *sc_pb_put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint8_t *sc_pb_put_tag(uint8_t *p, uint32_t field, int wt)
{
	return sc_pb_put_varint(p, (uint64_t)field << 3 | (uint64_t)wt);
}

static inline uint8_t *sc_pb_put_fixed64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static inline uint8_t *sc_pb_put_fixed32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/* A length-delimited field: tag, length, bytes. */
static inline uint8_t *sc_pb_put_bytes(uint8_t *p, uint32_t field, const void *v, size_t n)
{
	p = sc_pb_put_tag(p, field, SC_WT_LEN);
	p = sc_pb_put_varint(p, n);
	if (n)
		memcpy(p, v, n);
	return p + n;
}

#endif
