/*
 * spans.h - pending agent spans, kept as OTLP Span bytes, and the traces
 * request made of them.
 *
 * A SpanBatch frame is turned into OTLP Span messages as it arrives
 * (span_wire.h) and appended to one buffer; an export writes the
 * ExportTraceServiceRequest around those bytes: one ResourceSpans per agent
 * with spans (agent slot order, spans in arrival order, the agent's
 * resource from otlp.c), then the sidecar's resource with the extra spans
 * (the starvation check). The bytes are those protobuf-c packs for the same
 * tree (tests/sidecar/test_spans.c).
 *
 * Bounds: at most `limit` spans (OTEL_BSP_MAX_QUEUE_SIZE) and
 * SC_SPANS_MAX_BYTES of span bytes; a batch that does not fit is refused
 * whole and counted by the caller (buffer_full). The buffer gives big
 * allocations back after an export.
 */
#ifndef SC_SPANS_H
#define SC_SPANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sidecar/arena.h"
#include "sidecar/buf.h"
#include "sidecar/otlp.h"
#include "sidecar/span_wire.h"
#include "sidecar/store.h"

#define SC_SPANS_MAX_BYTES (32u << 20)
/* Export as soon as this many bytes wait, whatever the span count. */
#define SC_SPANS_FLUSH_BYTES (4u << 20)

struct sc_span_ref {
	uint32_t off, len; /* in bytes */
	int slot;          /* agent slot */
};

struct sc_spanbuf {
	struct sc_buf bytes;      /* OTLP Span bodies back to back */
	struct sc_span_ref *refs;
	size_t nspans, refs_cap;
	size_t limit;             /* spans */
	size_t batch;             /* export at this many pending spans */
	size_t ninvalid;          /* agent spans dropped for bad ids since the last export */
	struct sc_span_ctx ctx;
};

void sc_spanbuf_init(struct sc_spanbuf *b, size_t limit, size_t batch);
/* Forgets every pending span (after an export); keeps small buffers. */
void sc_spanbuf_clear(struct sc_spanbuf *b);
void sc_spanbuf_free(struct sc_spanbuf *b);

/* An export is due: `batch` spans or SC_SPANS_FLUSH_BYTES wait. */
bool sc_spanbuf_due(const struct sc_spanbuf *b);

/* Takes the spans of the SpanBatch message batch[0..len) of agent `slot`.
 * Returns -1 if protobuf-c would not decode it (nothing is kept), else 0
 * with *refused = the spans refused for lack of room (the whole batch) and
 * *dropped = its dropped_spans field. Spans with malformed ids are counted
 * in b->ninvalid, not kept. */
int sc_spanbuf_add(struct sc_spanbuf *b, int slot, const uint8_t *batch, size_t len, size_t *refused,
		   uint64_t *dropped);

/* Undo of sc_spanbuf_add: what was pending at the mark is kept. */
struct sc_spanbuf_mark {
	size_t nspans, bytes, ninvalid;
};
struct sc_spanbuf_mark sc_spanbuf_mark(const struct sc_spanbuf *b);
void sc_spanbuf_rollback(struct sc_spanbuf *b, struct sc_spanbuf_mark m);

/* The ExportTraceServiceRequest of every pending span plus `extra` spans
 * under the sidecar's own resource, packed into a malloc'd *body. The
 * arena holds the resources while they are packed. -1 on ENOMEM. A span of
 * a slot whose agent is gone goes under the sidecar's resource. */
int sc_spanbuf_encode(const struct sc_spanbuf *b, struct sc_arena *a, const struct sc_store *s,
		      const struct sc_identity *id, sc_otlp_span *const *extra, size_t nextra, uint8_t **body,
		      size_t *len);

#endif
