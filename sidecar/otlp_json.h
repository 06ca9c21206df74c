/*
 * otlp_json.h - OTLP/JSON encoding of any protobuf-c message.
 *
 * Walks the message's protobuf-c descriptor, so one function serves every
 * request type. Follows the OTLP JSON mapping, which differs from plain
 * proto3 JSON: trace_id/span_id/parent_span_id are lowercase hex (not
 * base64), enums are integers, keys are lowerCamelCase. As in proto3 JSON,
 * 64-bit integers are decimal strings, fields with default values are left
 * out (a set oneof member is always written), other bytes are base64, and
 * non-finite doubles are "NaN" / "Infinity" / "-Infinity".
 *
 * Strings must already be valid UTF-8 (the builder repairs them).
 */
#ifndef SC_OTLP_JSON_H
#define SC_OTLP_JSON_H

#include <protobuf-c/protobuf-c.h>

#include "sidecar/buf.h"

/* Appends the JSON object to out; -1 if out's limit was reached. */
int sc_otlp_json(const ProtobufCMessage *m, struct sc_buf *out);

#endif
