/*
 * wire.h - minimal protobuf wire-format walking.
 *
 * Lets the server apply a large MetricSnapshot one element at a time
 * (unpacking each Counter/Gauge/ExpHistogram alone) instead of building the
 * whole decoded tree, which for 10^5 series is several times the frame.
 */
#ifndef SC_WIRE_H
#define SC_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct sc_pb_field {
	uint32_t number;
	int wire_type;       /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
	uint64_t varint;     /* wire type 0 */
	const uint8_t *data; /* wire types 1, 2, 5 */
	size_t len;
};

/* Reads the field at *p (before end) and advances *p. Returns 1 with *f
 * filled, 0 at the end of the buffer, -1 if the bytes are malformed
 * (truncated, bad varint, field number 0, groups). */
int sc_pb_next(const uint8_t **p, const uint8_t *end, struct sc_pb_field *f);

#endif
