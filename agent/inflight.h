/*
 * inflight.h - expiry of the kernel's in-flight table (struct
 * jobq_inflight_set, bpf/jobq.h) through the agent's mapping of it. Pure:
 * works on the memory it is given, so it is unit-tested without the kernel.
 */
#ifndef JOBQ_AGENT_INFLIGHT_H
#define JOBQ_AGENT_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "bpf/jobq.h"

/* A slot seen too old by the previous scan. */
struct inflight_cand {
	uint32_t slot; /* set * JOBQ_INFLIGHT_WAYS + way */
	uint64_t tag;
};

struct inflight_expiry {
	struct inflight_cand *cand[2]; /* previous scan's candidates, this scan's */
	size_t n, max;
};

int inflight_expiry_init(struct inflight_expiry *x, size_t max);
void inflight_expiry_free(struct inflight_expiry *x);

/*
 * Frees every slot older than max_age_ns at now_ns that the previous call
 * already saw too old with the same tag, and returns how many it freed.
 * Two sightings, because a start claims its slot (the tag) before it
 * writes its start time: a single look could take a just-claimed slot
 * for an old one. Freed with a compare-and-swap on the tag, as the
 * programs do, so a finish or a new start that wins keeps its slot. At
 * most x->max candidates are kept per scan; the rest wait for later scans.
 */
size_t inflight_expire(struct inflight_expiry *x, struct jobq_inflight_set *sets, size_t nsets,
		       uint64_t now_ns, uint64_t max_age_ns);

#endif
