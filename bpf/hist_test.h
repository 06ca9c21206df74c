/*
 * hist_test.h - what bpf/hist_test.bpf.c and tests/bpf/hist_kernel_test.c
 * share: the test programs' contexts and the values the concurrency test
 * records (computed alike on both sides, so user space knows the truth).
 */
#ifndef JOBQ_HIST_TEST_H
#define JOBQ_HIST_TEST_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#include "bpf/jobq.h"

/* hist_index: jobq_hist_index() of one value. */
struct hist_test_ctx {
	__u64 value;
	__s32 index; /* out */
	__u32 pad;
};

/*
 * hist_hammer: thread `thread` of `nthreads` records, for each step g in
 * [first, first + n), one value into each histogram of the one shared
 * series (hammer_value()) and one increment into a counter cell
 * (hammer_cell(), the same for every thread); with plain = 1, into the plain_* maps with ordinary,
 * non-atomic read-modify-writes instead (what the atomics prevent).
 */
struct hammer_ctx {
	__u64 first, n, steps; /* steps: every thread's g runs over [0, steps) */
	__u32 thread, nthreads;
	__u32 plain, pad;
};

#define HAMMER_MAX_N (1u << 16) /* steps per BPF_PROG_TEST_RUN */

/*
 * The value thread t records at step g. Wait histogram: rising with g, so
 * every thread keeps raising the max while the others do (compare-and-
 * swap races), with a zero-bucket value every 1013 steps. Duration
 * histogram: falling with g, so the min is raced for the same way, with a
 * value above the top bucket (clamped) every 1009 steps. Thread t adds t,
 * so the threads' values differ and interleave. From 0 to ~steps^2 ns.
 */
static inline __attribute__((always_inline)) __u64 hammer_value(__u32 kind, __u64 g, __u32 t,
								 __u64 steps)
{
	__u64 x;

	if (kind == JOBQ_H_WAIT) {
		if (g % 1013 == 0)
			return t; /* <= 976 ns: the zero bucket */
		x = g;
	} else {
		if (g % 1009 == 0)
			return (1ull << 62) + g * 8 + t; /* above the top bucket */
		x = steps - g;
	}
	return x * x * 3 + t;
}

/* The counter cell every thread increments at step g: the same one. */
static inline __attribute__((always_inline)) __u32 hammer_cell(__u64 g)
{
	return (__u32)(g % JOBQ_CTR_CELLS);
}

#endif
