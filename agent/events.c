/*
 * events.c - drains the kernel's ring buffer on the agent's timer (the
 * programs never wake us per record) into the span builder.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "agent/spans.h"
#include "bpf/jobq.skel.h"

#define PENDING_STARTS 65536 /* jobs running at once, per agent */
#define QUEUED_SPANS 32768   /* finished spans waiting for the sidecar (~13 MB) */

_Static_assert(offsetof(struct jobq_event, s) == offsetof(struct jobq_finish_rec, error),
	       "ring-buffer records must share their header");

/* Rebuilds a whole struct jobq_event from a (smaller) ring-buffer record. */
static int on_event(void *ctx, void *data, size_t size)
{
	const struct jobq_finish_rec *f = data;
	struct agent *a = ctx;
	struct jobq_event e;

	if (size < offsetof(struct jobq_finish_rec, error))
		return 0; /* not ours: ignore rather than stop draining */
	/* Only what the record has is copied (the rest is what the span
	 * builder reads of each kind: it never reads a finish's series, nor
	 * an error text but a failed finish's). */
	if (f->kind == JOBQ_EV_FINISH) {
		/* A success carries the header only (error ""). */
		memcpy(&e, f, JOBQ_FINISH_REC_OK_SIZE);
		memset(&e.s, 0, sizeof(e.s));
		e.error[0] = '\0';
		if (f->status != JOBQ_STATUS_SUCCESS) {
			if (size < sizeof(*f))
				return 0;
			memcpy(e.error, f->error, sizeof(e.error));
		}
	} else {
		if (size < JOBQ_EVENT_REC_SIZE)
			return 0;
		memcpy(&e, data, JOBQ_EVENT_REC_SIZE);
		e.error[0] = '\0';
	}
	span_builder_add(a->spans, &e, a->offset_ns);
	return 0;
}

int agent_spans_start(struct agent *a)
{
	uint64_t seed;

	/* Span and trace ids must not repeat across agents: seed from the
	 * kernel's generator; time and pid only if that is unavailable. */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = agent_now_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);

	a->spans = span_builder_new(PENDING_STARTS, QUEUED_SPANS, seed);
	if (!a->spans) {
		fprintf(stderr, "jobq-agent: out of memory for span building\n");
		return -1;
	}
	a->rb = ring_buffer__new(bpf_map__fd(a->skel->maps.events), on_event, a, NULL);
	if (!a->rb) {
		fprintf(stderr, "jobq-agent: ring buffer: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

void agent_spans_poll(struct agent *a)
{
	if (!a->rb)
		return;
	if (ring_buffer__consume(a->rb) < 0)
		fprintf(stderr, "jobq-agent: ring buffer consume: %s\n", strerror(errno));
	a->spans_built = span_builder_built(a->spans);
	agent_sidecar_spans(a);
	a->spans_dropped = span_builder_dropped(a->spans);
}

void agent_spans_stop(struct agent *a)
{
	ring_buffer__free(a->rb);
	a->rb = NULL;
	span_builder_free(a->spans);
	a->spans = NULL;
}
