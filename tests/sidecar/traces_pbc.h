/*
 * traces_pbc.h - the protobuf-c reference for the traces request (see
 * traces_pbc.c): what sidecar/spans.c must reproduce byte for byte.
 */
#ifndef SC_TRACES_PBC_H
#define SC_TRACES_PBC_H

#include <stddef.h>

#include "proto/jobq_agent.pb-c.h"
#include "sidecar/arena.h"
#include "sidecar/otlp.h"
#include "sidecar/store.h"

/* A decoded SpanBatch of agent slot `slot`, in arrival order. */
struct sc_pbc_batch {
	int slot;
	const Jobq__Agent__SpanBatch *batch;
};

/* The request tree in the arena: one ResourceSpans per agent slot with
 * valid spans (slot order), then the sidecar's with `extra`. *ninvalid
 * counts the spans dropped for malformed ids. NULL on arena exhaustion. */
sc_traces_req *sc_traces_pbc(struct sc_arena *a, const struct sc_pbc_batch *bs, size_t nb,
			     const struct sc_store *s, const struct sc_identity *id,
			     sc_otlp_span *const *extra, size_t nextra, size_t *nspans, size_t *ninvalid);

#endif
