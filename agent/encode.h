/*
 * encode.h - the agent's messages as length-prefixed frames (wire.h):
 * Hello, cumulative MetricSnapshot from a snapshot, SpanBatch from built
 * spans. Pure functions over memory; *out is malloc'd, free() it.
 */
#ifndef JOBQ_AGENT_ENCODE_H
#define JOBQ_AGENT_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "agent/snapshot.h"
#include "agent/spans.h"

struct hello_info {
	const char *agent_id;
	const char *host_name;
	uint32_t agent_pid;
	const char *target;
	uint64_t agent_start_unix_ns;
	const char *agent_version;
};

int encode_hello(const struct hello_info *h, uint8_t **out, size_t *outlen);

/* Every series is cumulative since series_start_unix_ns (the agent's
 * start: the kernel maps are born with it). */
int encode_metrics(const struct snapshot *s, uint64_t series_start_unix_ns, uint8_t **out,
		   size_t *outlen);

/* A SpanBatch frame, written directly (the agent's hot path). */
int encode_spans(const struct span *spans, size_t n, uint64_t dropped_total, uint8_t **out,
		 size_t *outlen);

/* The same frame built through the protobuf-c generated code: the
 * reference the tests compare encode_spans() with, byte for byte. */
int encode_spans_pbc(const struct span *spans, size_t n, uint64_t dropped_total, uint8_t **out,
		     size_t *outlen);

#endif
