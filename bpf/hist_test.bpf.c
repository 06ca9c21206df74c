// SPDX-License-Identifier: GPL-2.0
/*
 * hist_test.bpf.c - test programs for tests/bpf/hist_kernel_test.c, run
 * with BPF_PROG_TEST_RUN (syscall programs, on the calling thread's CPU):
 *  - hist_index: jobq_hist_index() inside the kernel, proving the verified
 *    BPF build of the mapping agrees with user space;
 *  - hist_hammer: the very update code of bpf/jobq.bpf.c
 *    (bpf/jobq_update.h) driven from several CPUs at once on one shared
 *    series, whose result user space checks exactly; plain = 1 does the
 *    same with ordinary increments, to show what atomics prevent.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "bpf/hist_test.h"
#include "bpf/jobq_hist.h"

/* Compare-and-swaps of min/max that lost to another CPU (and retried). */
__u64 jobq_raise_races;
#define JOBQ_RAISE_STATS
#include "bpf/jobq_update.h"

const volatile __u64 hist_bounds[JOBQ_HIST_TABLE_SIZE];

SEC("syscall")
int hist_index(struct hist_test_ctx *ctx)
{
	ctx->index = jobq_hist_index(hist_bounds, ctx->value);
	return 0;
}

/* One series, as in jobq.bpf.c's counters and hists arrays. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct jobq_hists);
} hammer_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct jobq_counters);
} hammer_counters SEC(".maps");

/* The same, updated without atomics (plain = 1). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct jobq_hists);
} plain_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct jobq_counters);
} plain_counters SEC(".maps");

/* Losses jobq.bpf.c would count (JOBQ_HIST_ADD_*), and failed lookups. */
__u64 hammer_clamped, hammer_minmax_lost, hammer_errors;

struct hammer_args {
	__u64 first, steps;
	__u32 thread, plain;
};

/* Ordinary read-modify-writes: two CPUs lose each other's updates. */
static __always_inline void plain_hist_add(struct jobq_hist_cells *h, __u64 v)
{
	int pos = jobq_hist_index(hist_bounds, v);

	h->sum_ns += v;
	if (pos == JOBQ_HIST_ZERO) {
		h->zero_count++;
		return;
	}
	if (pos >= JOBQ_HIST_NBUCKETS)
		pos = JOBQ_HIST_NBUCKETS - 1;
	if (pos >= 0 && pos < JOBQ_HIST_NBUCKETS)
		h->buckets[pos]++;
}

/* Step i: value of histogram i % 2 at g = first + i / 2 (one value per
 * call keeps the verifier's paths those of one record() in jobq.bpf.c),
 * and the counter increment with the first. */
static int hammer_step(__u32 i, void *data)
{
	struct hammer_args *a = data;
	__u64 g = a->first + i / 2;
	__u32 zero = 0, kind = i & 1, cell = hammer_cell(g);
	__u64 v = hammer_value(kind, g, a->thread, a->steps);
	struct jobq_hists *hs;
	struct jobq_counters *c;
	int r;

	if (a->plain) {
		hs = bpf_map_lookup_elem(&plain_hists, &zero);
		c = bpf_map_lookup_elem(&plain_counters, &zero);
	} else {
		hs = bpf_map_lookup_elem(&hammer_hists, &zero);
		c = bpf_map_lookup_elem(&hammer_counters, &zero);
	}
	if (!hs || !c) {
		__sync_fetch_and_add(&hammer_errors, 1);
		return 1;
	}
	if (a->plain) {
		plain_hist_add(&hs->h[kind], v);
		asm volatile("" : "+r"(cell));
		if (!kind && cell < JOBQ_CTR_CELLS)
			c->c[cell]++;
		return 0;
	}
	r = jobq_hist_add(&hs->h[kind], hist_bounds, v);
	if (r & JOBQ_HIST_ADD_CLAMPED)
		__sync_fetch_and_add(&hammer_clamped, 1);
	if (r & JOBQ_HIST_ADD_MINMAX)
		__sync_fetch_and_add(&hammer_minmax_lost, 1);
	if (!kind)
		jobq_counter_add(c, cell);
	return 0;
}

SEC("syscall")
int hist_hammer(struct hammer_ctx *ctx)
{
	struct hammer_args a = {
		.first = ctx->first,
		.steps = ctx->steps,
		.thread = ctx->thread,
		.plain = ctx->plain,
	};
	__u32 n = ctx->n;

	if (n > HAMMER_MAX_N)
		return -1;
	return bpf_loop(2 * n, hammer_step, &a, 0) == 2 * n ? 0 : -1;
}

char LICENSE[] SEC("license") = "GPL";
