/*
 * hist_kernel_test.c - the histogram code as the kernel runs it
 * (bpf/hist_test.bpf.c, BPF_PROG_TEST_RUN):
 *  1. the verified, in-kernel build of jobq_hist_index() agrees with the
 *     user-space build of the same function on every power of two ns and
 *     at -1/0/+1 ns around every bucket boundary;
 *  2. the update code of the shared series arrays (bpf/jobq_update.h, the
 *     code jobq.bpf.c records with), run by threads on different CPUs
 *     at once into one series, loses nothing: count, sum, min, max, zero
 *     count, every bucket and every counter cell equal the truth exactly,
 *     read back as the agent reads them (jobq_hist_decode()). The same
 *     run with ordinary increments shows what the atomics prevent.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/hist.h"
#include "agent/snapshot.h"
#include "bpf/hist_test.h"
#include "bpf/hist_test.skel.h"
#include "tests/bpf/bpf_env.h"

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

/* ---- 2. concurrency ------------------------------------------------------ */

#define HAMMER_THREADS_MAX 8
#define HAMMER_STEPS (1u << 19) /* values per thread and histogram */
#define HAMMER_CHUNK 4096u      /* steps per BPF_PROG_TEST_RUN */

struct hammer_thread {
	pthread_t t;
	int prog_fd, cpu, ran_on, err;
	__u32 thread, nthreads, plain;
	pthread_barrier_t *go;
	struct timespec t0, t1;
};

static void *hammer_run(void *p)
{
	struct hammer_thread *h = p;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(h->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		h->err = errno;
		pthread_barrier_wait(h->go);
		return NULL;
	}
	pthread_barrier_wait(h->go);
	clock_gettime(CLOCK_MONOTONIC, &h->t0);
	h->ran_on = sched_getcpu();
	/* Every chunk starts together (after a failure too, or the others
	 * would wait forever): the threads walk the same values in step, so
	 * they keep colliding on the same words, min and max included. */
	for (__u64 g = 0; g < HAMMER_STEPS; g += HAMMER_CHUNK) {
		struct hammer_ctx ctx = {
			.first = g,
			.n = HAMMER_CHUNK,
			.steps = HAMMER_STEPS,
			.thread = h->thread,
			.nthreads = h->nthreads,
			.plain = h->plain,
		};
		LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));

		pthread_barrier_wait(h->go);
		if (h->err)
			continue;
		if (bpf_prog_test_run_opts(h->prog_fd, &opts))
			h->err = errno;
		else if (opts.retval)
			h->err = EINVAL;
	}
	clock_gettime(CLOCK_MONOTONIC, &h->t1);
	return NULL;
}

static double ts_s(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

/* Runs nthreads threads, one per CPU in cpus[]; 0 or -1 (said). Reports
 * how long the threads ran at the same time. */
static int hammer(int prog_fd, const int *cpus, __u32 nthreads, __u32 plain)
{
	struct hammer_thread th[HAMMER_THREADS_MAX];
	pthread_barrier_t go;
	double start = 0, end = 1e300, shortest = 1e300;
	int rc = 0;

	if (pthread_barrier_init(&go, NULL, nthreads)) {
		fprintf(stderr, "FAIL: pthread_barrier_init\n");
		return -1;
	}
	for (__u32 i = 0; i < nthreads; i++) {
		th[i] = (struct hammer_thread){ .prog_fd = prog_fd, .cpu = cpus[i], .thread = i,
						.nthreads = nthreads, .plain = plain, .go = &go };
		if (pthread_create(&th[i].t, NULL, hammer_run, &th[i])) {
			fprintf(stderr, "FAIL: pthread_create\n");
			exit(1); /* the barrier would never open */
		}
	}
	for (__u32 i = 0; i < nthreads; i++) {
		pthread_join(th[i].t, NULL);
		if (th[i].err) {
			fprintf(stderr, "FAIL: thread %u on CPU %d: %s\n", i, th[i].cpu,
				strerror(th[i].err));
			rc = -1;
			continue;
		}
		if (th[i].ran_on != th[i].cpu) {
			fprintf(stderr, "FAIL: thread %u ran on CPU %d, not %d\n", i, th[i].ran_on,
				th[i].cpu);
			rc = -1;
		}
		if (ts_s(&th[i].t0) > start)
			start = ts_s(&th[i].t0);
		if (ts_s(&th[i].t1) < end)
			end = ts_s(&th[i].t1);
		if (ts_s(&th[i].t1) - ts_s(&th[i].t0) < shortest)
			shortest = ts_s(&th[i].t1) - ts_s(&th[i].t0);
	}
	pthread_barrier_destroy(&go);
	if (rc)
		return rc;
	printf("  %s: %u threads on CPUs", plain ? "plain increments" : "atomics", nthreads);
	for (__u32 i = 0; i < nthreads; i++)
		printf(" %d", cpus[i]);
	printf(", all running at once for %.3f s (%.0f%% of the shortest run)\n",
	       end > start ? end - start : 0.0,
	       end > start ? 100.0 * (end - start) / shortest : 0.0);
	if (end <= start) {
		fprintf(stderr, "FAIL: the threads never ran at the same time\n");
		return -1;
	}
	return 0;
}

/* What the threads recorded, computed in user space. */
static void hammer_truth(const __u64 *bounds, __u32 nthreads, struct jobq_hist_val want[JOBQ_H_COUNT],
			 struct jobq_counters *cells, __u64 *clamped)
{
	memset(want, 0, sizeof(struct jobq_hist_val) * JOBQ_H_COUNT);
	memset(cells, 0, sizeof(*cells));
	*clamped = 0;
	for (__u32 t = 0; t < nthreads; t++) {
		for (__u64 g = 0; g < HAMMER_STEPS; g++) {
			for (__u32 k = 0; k < JOBQ_H_COUNT; k++) {
				__u64 v = hammer_value(k, g, t, HAMMER_STEPS);
				struct jobq_hist_val *h = &want[k];
				int pos = jobq_hist_index(bounds, v);

				if (!h->count || v < h->min_ns)
					h->min_ns = v;
				if (v > h->max_ns)
					h->max_ns = v;
				h->count++;
				h->sum_ns += v;
				if (pos == JOBQ_HIST_ZERO) {
					h->zero_count++;
					continue;
				}
				if (pos >= JOBQ_HIST_NBUCKETS) {
					pos = JOBQ_HIST_NBUCKETS - 1;
					(*clamped)++;
				}
				h->buckets[pos]++;
			}
			cells->c[hammer_cell(g)]++;
		}
	}
}

static int expect_u64(const char *what, int k, __u64 got, __u64 want)
{
	if (got == want)
		return 0;
	fprintf(stderr, "FAIL: %s of histogram %d: %llu, truth %llu\n", what, k,
		(unsigned long long)got, (unsigned long long)want);
	return 1;
}

/* The shared series after the atomic run equals the truth exactly. */
static int hammer_check(struct hist_test_bpf *skel, const __u64 *bounds, __u32 nthreads)
{
	static struct jobq_hist_val want[JOBQ_H_COUNT], got;
	static struct jobq_hists kern;
	static struct jobq_counters cells, kcells;
	__u32 zero = 0;
	__u64 clamped, values = 0;
	int bad = 0;

	hammer_truth(bounds, nthreads, want, &cells, &clamped);
	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.hammer_hists), &zero, &kern) ||
	    bpf_map_lookup_elem(bpf_map__fd(skel->maps.hammer_counters), &zero, &kcells)) {
		fprintf(stderr, "FAIL: read the hammered series: %s\n", strerror(errno));
		return 1;
	}
	for (int k = 0; k < JOBQ_H_COUNT; k++) {
		jobq_hist_decode(&kern.h[k], &got);
		values += want[k].count;
		bad += expect_u64("count", k, got.count, want[k].count);
		bad += expect_u64("sum", k, got.sum_ns, want[k].sum_ns);
		bad += expect_u64("min", k, got.min_ns, want[k].min_ns);
		bad += expect_u64("max", k, got.max_ns, want[k].max_ns);
		bad += expect_u64("zero count", k, got.zero_count, want[k].zero_count);
		for (int b = 0; b < JOBQ_HIST_NBUCKETS; b++)
			if (got.buckets[b] != want[k].buckets[b]) {
				fprintf(stderr, "FAIL: bucket %d of histogram %d: %llu, truth %llu\n",
					JOBQ_HIST_INDEX_MIN + b, k,
					(unsigned long long)got.buckets[b],
					(unsigned long long)want[k].buckets[b]);
				bad++;
			}
	}
	for (int c = 0; c < JOBQ_CTR_CELLS; c++)
		if (kcells.c[c] != cells.c[c]) {
			fprintf(stderr, "FAIL: counter cell %d: %llu, truth %llu\n", c,
				(unsigned long long)kcells.c[c], (unsigned long long)cells.c[c]);
			bad++;
		}
	bad += expect_u64("clamped values", -1, skel->bss->hammer_clamped, clamped);
	bad += expect_u64("min/max updates given up", -1, skel->bss->hammer_minmax_lost, 0);
	bad += expect_u64("lookup errors", -1, skel->bss->hammer_errors, 0);
	printf("  atomics: %llu values and %u counter increments per thread, %llu min/max "
	       "compare-and-swaps lost to another CPU and retried: %s\n",
	       (unsigned long long)values / nthreads, HAMMER_STEPS,
	       (unsigned long long)skel->bss->jobq_raise_races,
	       bad ? "MISMATCH" : "count, sum, min, max, zero count, every bucket and counter "
				  "cell exact");
	return bad;
}

/* The plain run's losses (informative: shows the threads collided). */
static __u64 plain_report(struct hist_test_bpf *skel, const __u64 *bounds, __u32 nthreads)
{
	static struct jobq_hist_val want[JOBQ_H_COUNT], got;
	static struct jobq_hists kern;
	static struct jobq_counters cells, kcells;
	__u64 clamped, lost = 0, total = 0, ctr_lost = 0;
	__u32 zero = 0;

	hammer_truth(bounds, nthreads, want, &cells, &clamped);
	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.plain_hists), &zero, &kern) ||
	    bpf_map_lookup_elem(bpf_map__fd(skel->maps.plain_counters), &zero, &kcells)) {
		fprintf(stderr, "  plain increments: cannot read back: %s\n", strerror(errno));
		return 0;
	}
	for (int k = 0; k < JOBQ_H_COUNT; k++) {
		jobq_hist_decode(&kern.h[k], &got);
		total += want[k].count;
		lost += want[k].count - got.count;
	}
	for (int c = 0; c < JOBQ_CTR_CELLS; c++)
		ctr_lost += cells.c[c] - kcells.c[c];
	printf("  plain increments lost %llu of %llu histogram values and %llu of %llu counter "
	       "increments (what the atomics prevent)\n",
	       (unsigned long long)lost, (unsigned long long)total, (unsigned long long)ctr_lost,
	       (unsigned long long)HAMMER_STEPS * nthreads);
	return lost + ctr_lost;
}

/* Part 2; 0 pass, 1 fail, 77 cannot run here (one CPU). */
static int concurrency_test(struct hist_test_bpf *skel, const __u64 *bounds)
{
	int cpus[HAMMER_THREADS_MAX], fd = bpf_program__fd(skel->progs.hist_hammer);
	__u32 n = 0;
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "FAIL: sched_getaffinity: %s\n", strerror(errno));
		return 1;
	}
	for (int c = 0; c < CPU_SETSIZE && n < HAMMER_THREADS_MAX; c++)
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	if (n < 2) {
		printf("*** SKIP: the concurrency test needs two CPUs, this process may use %u ***\n",
		       n);
		return 77;
	}
	printf("concurrency: %u threads, one per CPU, recording into one series\n", n);
	if (hammer(fd, cpus, n, 0))
		return 1;
	if (hammer_check(skel, bounds, n))
		return 1;
	if (hammer(fd, cpus, n, 1))
		return 1;
	if (!plain_report(skel, bounds, n) && !skel->bss->jobq_raise_races)
		printf("  WARNING: no collision seen (no lost plain update, no lost "
		       "compare-and-swap): the CPUs may not have contended in this run\n");
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
	if (failures)
		goto cleanup;
	rc = concurrency_test(skel, bounds);
cleanup:
	hist_test_bpf__destroy(skel);
	return rc;
}
