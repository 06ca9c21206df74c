/*
 * hist_test.c - the histogram mapping shared by BPF and user space
 * (bpf/jobq_hist.h) against an independent reference: bucket index from
 * long double log2, corrected by an exact integer comparison with the
 * boundary 1e6 * 2^(i/8) ns. Checked on every power of two ns and at
 * -1/0/+1 ns around every bucket boundary of the supported range.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "agent/hist.h"

static __u64 bounds[JOBQ_HIST_TABLE_SIZE];

/* Reference: the OTLP definition, 2^(i/8) < v/1e6 <= 2^((i+1)/8). */
static int ref_pos(uint64_t v)
{
	int i;

	if (v == 0)
		return JOBQ_HIST_ZERO;
	i = (int)ceill(8.0L * log2l((long double)v / 1e6L)) - 1;
	while (jobq_hist_cmp_boundary(v, i) <= 0) /* v <= lower bound */
		i--;
	while (jobq_hist_cmp_boundary(v, i + 1) > 0) /* v > upper bound */
		i++;
	if (i < JOBQ_HIST_INDEX_MIN)
		return JOBQ_HIST_ZERO;
	if (i >= JOBQ_HIST_INDEX_MIN + JOBQ_HIST_NBUCKETS)
		return JOBQ_HIST_ABOVE;
	return i - JOBQ_HIST_INDEX_MIN;
}

static void check(uint64_t v)
{
	int got = jobq_hist_index(bounds, v), want = ref_pos(v);

	if (got != want)
		fail_msg("v=%llu ns: jobq_hist_index=%d, reference=%d", (unsigned long long)v, got,
			 want);
}

static int setup(void **state)
{
	(void)state;
	return jobq_hist_table_fill(bounds);
}

static void table_has_known_exact_values(void **state)
{
	(void)state;
	/* floor(1e6 * 2^(i/8)) for a few i, by hand. */
	assert_int_equal(bounds[0 - JOBQ_HIST_INDEX_MIN], 1000000);  /* 2^0 ms */
	assert_int_equal(bounds[8 - JOBQ_HIST_INDEX_MIN], 2000000);  /* 2^1 ms */
	assert_int_equal(bounds[-8 - JOBQ_HIST_INDEX_MIN], 500000);  /* 2^-1 ms */
	assert_int_equal(bounds[0], 976);                             /* 976.5625 */
	assert_int_equal(bounds[4 - JOBQ_HIST_INDEX_MIN], 1414213);  /* sqrt 2 */
	assert_int_equal(bounds[1 - JOBQ_HIST_INDEX_MIN], 1090507);  /* 2^(1/8) */
	assert_int_equal(bounds[JOBQ_HIST_NBUCKETS], 134217728000000ull); /* 2^27 ms */
	assert_true(bounds[JOBQ_HIST_NBUCKETS + 1] == UINT64_MAX);
	for (int k = 0; k < JOBQ_HIST_NBUCKETS; k++)
		assert_true(bounds[k] < bounds[k + 1]);
}

static void every_power_of_two_matches_reference(void **state)
{
	(void)state;
	for (int b = 0; b < 64; b++)
		check(1ull << b);
	check(0);
	check(UINT64_MAX);
}

static void around_every_boundary_matches_reference(void **state)
{
	(void)state;
	for (int k = 0; k <= JOBQ_HIST_NBUCKETS; k++) {
		check(bounds[k] - 1);
		check(bounds[k]);
		check(bounds[k] + 1);
	}
}

static void exact_power_of_two_ms_is_upper_bound_of_bucket_below(void **state)
{
	(void)state;
	/* 1 ms = 2^0 ms: top of bucket -1; 1 ms + 1 ns opens bucket 0. */
	assert_int_equal(jobq_hist_index(bounds, 1000000), -1 - JOBQ_HIST_INDEX_MIN);
	assert_int_equal(jobq_hist_index(bounds, 1000001), 0 - JOBQ_HIST_INDEX_MIN);
	assert_int_equal(jobq_hist_index(bounds, 976), JOBQ_HIST_ZERO);
	assert_int_equal(jobq_hist_index(bounds, 977), 0);
	assert_int_equal(jobq_hist_index(bounds, 134217728000000ull), JOBQ_HIST_NBUCKETS - 1);
	assert_int_equal(jobq_hist_index(bounds, 134217728000001ull), JOBQ_HIST_ABOVE);
}

static void quantile_finds_bucket_by_rank(void **state)
{
	uint64_t counts[JOBQ_HIST_NBUCKETS] = { 0 };

	(void)state;
	assert_int_equal(jobq_hist_quantile_pos(counts, 0, 0.5), -2);
	counts[10] = 50;
	counts[20] = 49;
	counts[30] = 1;
	assert_int_equal(jobq_hist_quantile_pos(counts, 0, 0.5), 10);
	assert_int_equal(jobq_hist_quantile_pos(counts, 0, 0.51), 20);
	assert_int_equal(jobq_hist_quantile_pos(counts, 0, 0.99), 20);
	assert_int_equal(jobq_hist_quantile_pos(counts, 0, 1.0), 30);
	assert_int_equal(jobq_hist_quantile_pos(counts, 100, 0.5), JOBQ_HIST_ZERO);
	assert_true(fabs(jobq_hist_upper_ms(-JOBQ_HIST_INDEX_MIN - 1) - 1.0) < 1e-12);
	assert_true(fabs(jobq_hist_lower_ms(-JOBQ_HIST_INDEX_MIN) - 1.0) < 1e-12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_has_known_exact_values),
		cmocka_unit_test(every_power_of_two_matches_reference),
		cmocka_unit_test(around_every_boundary_matches_reference),
		cmocka_unit_test(exact_power_of_two_ms_is_upper_bound_of_bucket_below),
		cmocka_unit_test(quantile_finds_bucket_by_rank),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
