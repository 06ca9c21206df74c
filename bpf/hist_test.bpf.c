// SPDX-License-Identifier: GPL-2.0
/*
 * hist_test.bpf.c - runs jobq_hist_index() inside the kernel for
 * tests/bpf/hist_kernel_test.c (BPF_PROG_TEST_RUN on a syscall program),
 * proving the verified BPF build of the mapping agrees with user space.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "bpf/jobq_hist.h"

const volatile __u64 hist_bounds[JOBQ_HIST_TABLE_SIZE];

struct hist_test_ctx {
	__u64 value;
	__s32 index; /* out */
	__u32 pad;
};

SEC("syscall")
int hist_index(struct hist_test_ctx *ctx)
{
	ctx->index = jobq_hist_index(hist_bounds, ctx->value);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
