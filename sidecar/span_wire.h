/*
 * span_wire.h - one agent Span (proto/jobq_agent.proto) to one OTLP Span
 * (opentelemetry.proto.trace.v1.Span), wire bytes to wire bytes.
 *
 * Why not protobuf-c: decoding each frame into a tree of small structs,
 * building an OTLP tree of KeyValues and packing it (two descriptor walks,
 * a strlen per string per walk) cost ~6 us per span, most of the sidecar's
 * CPU. This writes the bytes protobuf-c would have packed, straight from
 * the frame: the same fields in field-number order, proto3 defaults left
 * out, a set oneof member always written; tests/sidecar/test_spans.c checks
 * it byte for byte against the protobuf-c path (tests/sidecar/traces_pbc.c)
 * over many varied spans, malformed ones included.
 *
 * What it does to a span (as the protobuf-c path did):
 *   - strings are cut at a NUL byte (C strings) and made valid UTF-8
 *     (utf8.h); an empty name becomes "job";
 *   - attributes keep the first of equal keys; messaging.message.id given
 *     as an integer becomes its decimal string; then, unless the agent set
 *     them: messaging.system=jobq, messaging.operation.type create/process
 *     (PRODUCER/CONSUMER), messaging.destination.name from the first
 *     job.queue (a string), messaging.message.id from the first job.id
 *     (an integer in decimal, or a string);
 *   - links with a malformed or all-zero id are left out and counted in
 *     dropped_links_count; a kind outside 0..5 becomes 0; the status is
 *     always present (ERROR and its message when status_error is set).
 */
#ifndef SC_SPAN_WIRE_H
#define SC_SPAN_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "sidecar/buf.h"

/* Scratch memory reused from span to span (repaired strings, attributes,
 * keys seen): no allocation per span once warm. */
struct sc_span_ctx {
	struct sc_buf scratch;
	void *kvs;
	size_t kvs_cap;
	void *keys;
	size_t keys_cap;
	uint32_t *table; /* key hash table, for spans with many attributes */
	size_t table_cap;
};

void sc_span_ctx_init(struct sc_span_ctx *x);
void sc_span_ctx_free(struct sc_span_ctx *x);

enum {
	SC_SPAN_MALFORMED = -1, /* protobuf-c would not decode it: reject the frame */
	SC_SPAN_INVALID = 0,    /* malformed or all-zero trace/span/parent id: dropped */
	SC_SPAN_OK = 1,         /* the OTLP Span body was appended to out */
};

/* Appends to out the OTLP Span message body (no tag or length prefix) for
 * the agent Span message in span[0..len). Returns one of the above. On
 * MALFORMED, out may hold part of a span (the caller rolls back). When out
 * reaches its limit (or memory runs out), out->overflow is set and the
 * result is still the span's verdict. */
int sc_span_transcode(struct sc_span_ctx *x, const uint8_t *span, size_t len, struct sc_buf *out);

#endif
