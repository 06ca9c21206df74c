/*
 * hist_kernel_test.c - the verified, in-kernel build of jobq_hist_index()
 * (bpf/hist_test.bpf.c, BPF_PROG_TEST_RUN) agrees with the user-space
 * build of the same function on every power of two ns and at -1/0/+1 ns
 * around every bucket boundary.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/hist.h"
#include "bpf/hist_test.skel.h"
#include "tests/bpf/bpf_env.h"

struct hist_test_ctx {
	__u64 value;
	__s32 index;
	__u32 pad;
};

static int failures, checked;

static int kernel_index(int prog_fd, __u64 v, int *out)
{
	struct hist_test_ctx ctx = { .value = v, .index = 12345 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));

	if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) {
		fprintf(stderr, "FAIL: BPF_PROG_TEST_RUN: %s\n", strerror(errno));
		return -1;
	}
	*out = ctx.index;
	return 0;
}

static int check(int prog_fd, const __u64 *bounds, __u64 v)
{
	int k, u = jobq_hist_index(bounds, v);

	if (kernel_index(prog_fd, v, &k))
		return -1;
	checked++;
	if (k != u) {
		fprintf(stderr, "FAIL: v=%llu ns: kernel index %d, user space %d\n",
			(unsigned long long)v, k, u);
		failures++;
	}
	return 0;
}

int main(void)
{
	struct hist_test_bpf *skel = NULL;
	__u64 bounds[JOBQ_HIST_TABLE_SIZE];
	int fd, rc = 1;

	bpf_env_require("hist_kernel_test");
	if (jobq_hist_table_fill(bounds)) {
		fprintf(stderr, "FAIL: boundary table could not be computed\n");
		return 1;
	}
	skel = hist_test_bpf__open();
	if (!skel) {
		fprintf(stderr, "FAIL: open hist_test BPF object: %s\n", strerror(errno));
		return 1;
	}
	memcpy((void *)skel->rodata->hist_bounds, bounds, sizeof(bounds));
	if (hist_test_bpf__load(skel)) {
		fprintf(stderr, "FAIL: load hist_test BPF program: %s\n", strerror(errno));
		goto cleanup;
	}
	fd = bpf_program__fd(skel->progs.hist_index);
	for (int b = 0; b < 64; b++)
		if (check(fd, bounds, 1ull << b))
			goto cleanup;
	for (int k = 0; k <= JOBQ_HIST_NBUCKETS; k++)
		for (int d = -1; d <= 1; d++)
			if (check(fd, bounds, bounds[k] + (__u64)(__s64)d))
				goto cleanup;
	if (check(fd, bounds, 0) || check(fd, bounds, ~0ull))
		goto cleanup;
	printf("%d values checked in the kernel, %d mismatches\n", checked, failures);
	rc = failures ? 1 : 0;
cleanup:
	hist_test_bpf__destroy(skel);
	return rc;
}
