/*
 * jobq_update.h - the updates of the series arrays that every CPU shares
 * (BPF side only): bpf/jobq.bpf.c records with these, and
 * bpf/hist_test.bpf.c runs the very same code from several CPUs at once
 * for tests/bpf/hist_kernel_test.c, which checks the result exactly.
 *
 * One copy of a series' counters and histograms for all CPUs, so every
 * update is an atomic instruction: adds for counters, sums and buckets
 * (BPF_ATOMIC_ADD, `lock add` on x86-64); min and max by compare-and-swap,
 * tried only when the value would change them (read first: once the
 * extremes settle, recording a value costs a plain load for each).
 */
#ifndef JOBQ_UPDATE_H
#define JOBQ_UPDATE_H

#include "bpf/jobq.h"
#include "bpf/jobq_hist.h"

/* Compare-and-swap attempts for one min or max update. Each failed
 * attempt means another CPU raised the word meanwhile (to a value still
 * below ours), so giving up needs that many raises by others inside one
 * update's window: counted (JOBQ_LOSS_HIST_MINMAX), never silent. */
#define JOBQ_MINMAX_TRIES 64

/*
 * Raises *p to v (v > the *p the caller read): 0, or -1 if every attempt
 * lost. A global function, so the verifier checks its loop once, not once
 * per path of every program that records a value (that exceeded its limit
 * of a million instructions); called only when the value changes *p.
 */
__noinline int jobq_raise_slow(__u64 *p, __u64 v)
{
	__u64 cur, seen;

	if (!p)
		return 0;
	cur = *(volatile __u64 *)p;
	for (int i = 0; i < JOBQ_MINMAX_TRIES; i++) {
		if (v <= cur)
			return 0;
		seen = __sync_val_compare_and_swap(p, cur, v);
		if (seen == cur)
			return 0;
#ifdef JOBQ_RAISE_STATS /* the concurrency test counts lost races */
		__sync_fetch_and_add(&jobq_raise_races, 1);
#endif
		cur = seen;
	}
	return v <= cur ? 0 : -1;
}

/* Raises *p to v when v is larger; read first: usually it is not. */
static __always_inline int jobq_raise(__u64 *p, __u64 v)
{
	return v > *(volatile __u64 *)p ? jobq_raise_slow(p, v) : 0;
}

/* jobq_hist_add() results, to be counted as losses by the caller. */
#define JOBQ_HIST_ADD_CLAMPED 1 /* above the top bucket: JOBQ_LOSS_HIST_CLAMP */
#define JOBQ_HIST_ADD_MINMAX 2  /* min or max not updated: JOBQ_LOSS_HIST_MINMAX */

/*
 * Records v ns in h. Order matters for readers (jobq.h, struct
 * jobq_hist_cells): max and min first, then the sum, then the bucket; each
 * atomic is a full barrier on x86-64, and the agent reads in the reverse
 * order.
 */
static __always_inline int jobq_hist_add(struct jobq_hist_cells *h, const volatile __u64 *bounds,
					 __u64 v)
{
	int pos = jobq_hist_index(bounds, v), ret = 0;

	if (jobq_raise(&h->max_ns, v) | jobq_raise(&h->min_inv, ~v))
		ret |= JOBQ_HIST_ADD_MINMAX;
	__sync_fetch_and_add(&h->sum_ns, v);
	if (pos == JOBQ_HIST_ZERO) {
		__sync_fetch_and_add(&h->zero_count, 1);
		return ret;
	}
	if (pos >= JOBQ_HIST_NBUCKETS) {
		ret |= JOBQ_HIST_ADD_CLAMPED;
		pos = JOBQ_HIST_NBUCKETS - 1;
	}
	if (pos >= 0 && pos < JOBQ_HIST_NBUCKETS)
		__sync_fetch_and_add(&h->buckets[pos], 1);
	return ret;
}

/* Adds one to a counter cell. */
static __always_inline void jobq_counter_add(struct jobq_counters *c, __u32 cell)
{
	/* Keep the bounds check on the very register used as the index. */
	asm volatile("" : "+r"(cell));
	if (cell < JOBQ_CTR_CELLS)
		__sync_fetch_and_add(&c->c[cell], 1);
}

#endif /* JOBQ_UPDATE_H */
