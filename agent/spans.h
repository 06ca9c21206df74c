/*
 * spans.h - builds finished spans from the kernel's ring-buffer records
 * (struct jobq_event). Pure: no I/O, bounded memory, ids from a seeded
 * generator the caller provides.
 *
 *   enqueue record  -> job.enqueue (PRODUCER) with exactly the trace and
 *                      span id the enqueue recorded in the job, the
 *                      producer's traceparent span as its parent (if any)
 *                      and its trace flags
 *   start + finish  -> job.process (CONSUMER): a new trace id and its own
 *                      span id, LINKED to the enqueue span; status ERROR
 *                      and an "exception" event when the handler failed
 * Starts wait for their finish in a bounded table keyed by (pid, queue,
 * job id) (ids are unique only within a queue);
 * finished spans wait in a bounded queue until taken. Anything that does
 * not fit is dropped oldest-first and counted.
 */
#ifndef JOBQ_AGENT_SPANS_H
#define JOBQ_AGENT_SPANS_H

#include <stddef.h>
#include <stdint.h>

#include "bpf/jobq.h"

enum span_kind { SPAN_ENQUEUE = 0, SPAN_PROCESS = 1 };

struct span {
	enum span_kind kind;
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8];  /* job.enqueue: the producer's span */
	int has_parent;
	uint8_t link_trace_id[16]; /* job.process: the enqueue span */
	uint8_t link_span_id[8];
	int has_link;
	uint8_t flags;            /* W3C trace flags */
	uint64_t start_unix_ns, end_unix_ns;
	uint64_t job_id;
	uint32_t attempt;
	uint8_t priority;         /* enum jobq_probe_priority */
	uint8_t status;           /* job.process: enum jobq_probe_status */
	int64_t wait_ns;          /* job.process: start - enqueued */
	char tenant[JOBQ_STR_TENANT];
	char type[JOBQ_STR_TYPE];
	char queue[JOBQ_STR_QUEUE];
	char error[JOBQ_STR_ERROR];
};

struct span_builder;

/* pending: starts awaiting finish; queued: finished spans awaiting take. */
struct span_builder *span_builder_new(size_t pending, size_t queued, uint64_t seed);
void span_builder_free(struct span_builder *b);

/* Feeds one record; offset_ns converts its kernel time to wall-clock. */
void span_builder_add(struct span_builder *b, const struct jobq_event *e, uint64_t offset_ns);

/* Moves up to max finished spans, oldest first, into out; returns count. */
size_t span_builder_take(struct span_builder *b, struct span *out, size_t max);

/* The oldest queued spans that lie contiguously in the builder's ring:
 * *first and their count (0: none queued). They stay queued, unchanged
 * until the next span_builder_add(), so the caller can encode them in
 * place and then consume them. */
size_t span_builder_peek(const struct span_builder *b, const struct span **first);

/* Removes the n oldest queued spans (at most those queued). */
void span_builder_consume(struct span_builder *b, size_t n);

/* Spans waiting to be taken. */
size_t span_builder_queued(const struct span_builder *b);

/* Cumulative: spans built, and spans dropped (queue or table full, finish
 * without its start). */
uint64_t span_builder_built(const struct span_builder *b);
uint64_t span_builder_dropped(const struct span_builder *b);

/* Counts n spans dropped by the caller (e.g. could not be sent). */
void span_builder_count_dropped(struct span_builder *b, uint64_t n);

#endif
