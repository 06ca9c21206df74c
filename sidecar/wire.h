/*
 * wire.h - minimal protobuf wire-format walking and writing.
 *
 * Reading lets the server apply a large MetricSnapshot one element at a
 * time and turn agent spans into OTLP bytes without building decoded trees.
 * The reader accepts exactly what protobuf-c 1.4's unpacker scans: a tag of
 * at most 5 bytes whose first byte has field bits, varints of at most 10
 * bytes, length prefixes of at most 5 bytes, no groups; so a frame this
 * reader takes apart is one protobuf_c_message_unpack() would have
 * accepted, and the reverse. (Whether a known field has the wire type its
 * type needs is the caller's check.) Header only.
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

/* sc_pb_next() in general: multi-byte tags and lengths, fixed-size values,
 * errors. */
static __attribute__((noinline, unused)) int sc_pb_next_slow(const uint8_t **p, const uint8_t *end,
							     struct sc_pb_field *f)
{
	const uint8_t *s = *p;
	size_t rem = (size_t)(end - s), i;

	if (s >= end)
		return 0;
	/* Tag: at most 5 bytes; a first byte without field bits is invalid. */
	if ((s[0] & 0xf8) == 0)
		return -1;
	uint32_t tag = (uint32_t)(s[0] & 0x7f) >> 3;
	size_t used = 1;
	if (s[0] & 0x80) {
		size_t max = rem < 5 ? rem : 5;
		unsigned shift = 4;
		for (used = 1; used < max && (s[used] & 0x80); used++, shift += 7)
			tag |= (uint32_t)(s[used] & 0x7f) << shift;
		if (used == max)
			return -1;
		tag |= (uint32_t)s[used] << shift;
		used++;
	}
	f->number = tag;
	f->wire_type = s[0] & 7;
	s += used;
	rem -= used;
	f->varint = 0;
	f->raw = s;
	switch (f->wire_type) {
	case SC_WT_VARINT: {
		size_t max = rem < 10 ? rem : 10;
		uint64_t v = 0;
		for (i = 0; i < max; i++) {
			v |= (uint64_t)(s[i] & 0x7f) << (7 * i);
			if (!(s[i] & 0x80))
				break;
		}
		if (i == max)
			return -1;
		f->varint = v;
		f->data = s;
		f->len = f->rawlen = i + 1;
		break;
	}
	case SC_WT_I64:
	case SC_WT_I32: {
		size_t n = f->wire_type == SC_WT_I64 ? 8 : 4;
		if (rem < n)
			return -1;
		f->data = s;
		f->len = f->rawlen = n;
		break;
	}
	case SC_WT_LEN: {
		size_t max = rem < 5 ? rem : 5;
		uint32_t n = 0;
		for (i = 0; i < max; i++) {
			n |= (uint32_t)(s[i] & 0x7f) << (7 * i);
			if (!(s[i] & 0x80))
				break;
		}
		if (i == max || n > rem - (i + 1))
			return -1;
		f->data = s + i + 1;
		f->len = n;
		f->rawlen = i + 1 + n;
		break;
	}
	default:
		return -1; /* groups (3, 4) and invalid types */
	}
	*p = s + f->rawlen;
	return 1;
}


/* Reads the field at *p (before end) and advances *p. Returns 1 with *f
 * filled, 0 at the end of the buffer, -1 if the bytes are malformed
 * (truncated, bad varint, field number 0, groups). Inline, the fields a
 * span is made of first (a one-byte tag, then a one-byte length or a
 * varint): reading is ~40 fields per span. */
static inline __attribute__((always_inline)) int sc_pb_next(const uint8_t **p, const uint8_t *end,
							     struct sc_pb_field *f)
{
	const uint8_t *s = *p;
	size_t rem = (size_t)(end - s);

	if (!rem)
		return 0;
	if (rem >= 2 && s[0] >= 8 && s[0] < 0x80) {
		int wt = s[0] & 7;
		if (wt == SC_WT_LEN && s[1] < 0x80 && s[1] <= rem - 2) {
			f->number = s[0] >> 3;
			f->wire_type = wt;
			f->varint = 0;
			f->raw = s + 1;
			f->data = s + 2;
			f->len = s[1];
			f->rawlen = (size_t)s[1] + 1;
			*p = s + 2 + s[1];
			return 1;
		}
		if (wt == SC_WT_VARINT) {
			size_t max = rem - 1 < 10 ? rem - 1 : 10, i;
			uint64_t v = 0;
			for (i = 0; i < max; i++) {
				v |= (uint64_t)(s[1 + i] & 0x7f) << (7 * i);
				if (!(s[1 + i] & 0x80))
					break;
			}
			if (i < max) {
				f->number = s[0] >> 3;
				f->wire_type = wt;
				f->varint = v;
				f->raw = f->data = s + 1;
				f->len = f->rawlen = i + 1;
				*p = s + 2 + i;
				return 1;
			}
		}
	}
	return sc_pb_next_slow(p, end, f);
}

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

/* memcpy for the short strings and ids of a span without a library call
 * each (two overlapping fixed-size moves cover 4..16 bytes). */
static inline void sc_pb_copy(uint8_t *d, const void *src, size_t n)
{
	const uint8_t *s = src;
	if (n > 16) {
		memcpy(d, s, n);
	} else if (n >= 8) {
		uint64_t a, b;
		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
		memcpy(d, &a, 8);
		memcpy(d + n - 8, &b, 8);
	} else if (n >= 4) {
		uint32_t a, b;
		memcpy(&a, s, 4);
		memcpy(&b, s + n - 4, 4);
		memcpy(d, &a, 4);
		memcpy(d + n - 4, &b, 4);
	} else {
		for (size_t i = 0; i < n; i++)
			d[i] = s[i];
	}
}

/* A length-delimited field: tag, length, bytes. */
static inline uint8_t *sc_pb_put_bytes(uint8_t *p, uint32_t field, const void *v, size_t n)
{
	p = sc_pb_put_tag(p, field, SC_WT_LEN);
	p = sc_pb_put_varint(p, n);
	sc_pb_copy(p, v, n);
	return p + n;
}

#endif
