/*
 * inflight.c - expiry of the in-flight table (see inflight.h).
 */
#include "agent/inflight.h"

#include <stdlib.h>

int inflight_expiry_init(struct inflight_expiry *x, size_t max)
{
	x->cand[0] = calloc(max, sizeof(*x->cand[0]));
	x->cand[1] = calloc(max, sizeof(*x->cand[1]));
	x->n = 0;
	x->max = max;
	if (!x->cand[0] || !x->cand[1]) {
		inflight_expiry_free(x);
		return -1;
	}
	return 0;
}

void inflight_expiry_free(struct inflight_expiry *x)
{
	free(x->cand[0]);
	free(x->cand[1]);
	x->cand[0] = x->cand[1] = NULL;
	x->n = x->max = 0;
}

size_t inflight_expire(struct inflight_expiry *x, struct jobq_inflight_set *sets, size_t nsets,
		       uint64_t now_ns, uint64_t max_age_ns)
{
	const struct inflight_cand *prev = x->cand[0];
	struct inflight_cand *next = x->cand[1];
	size_t np = 0, nn = 0, freed = 0;

	for (size_t s = 0; s < nsets; s++) {
		for (uint32_t w = 0; w < JOBQ_INFLIGHT_WAYS; w++) {
			struct jobq_inflight_slot *sl = &sets[s].w[w];
			uint32_t id = (uint32_t)(s * JOBQ_INFLIGHT_WAYS + w);
			uint64_t tag = __atomic_load_n(&sl->tag, __ATOMIC_ACQUIRE);
			uint64_t start = __atomic_load_n(&sl->start_ktime_ns, __ATOMIC_RELAXED);

			/* Both scans walk the slots in order: merge. */
			while (np < x->n && prev[np].slot < id)
				np++;
			if (!tag || now_ns <= start || now_ns - start <= max_age_ns)
				continue;
			if (np < x->n && prev[np].slot == id && prev[np].tag == tag) {
				if (__atomic_compare_exchange_n(&sl->tag, &tag, 0, 0, __ATOMIC_ACQ_REL,
								__ATOMIC_RELAXED))
					freed++;
			} else if (nn < x->max) {
				next[nn++] = (struct inflight_cand){ id, tag };
			}
		}
	}
	x->cand[0] = next;
	x->cand[1] = (struct inflight_cand *)prev;
	x->n = nn;
	return freed;
}
