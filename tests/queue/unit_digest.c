/* unit_digest.c - the start probe's series digest (queue/jobq_probes.h):
 * a function of the three strings whole, fields kept apart, never 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue/jobq_probes.h"

static void same_strings_same_digest_wherever_they_lie(void **s)
{
	char q[8] = "default", t[16] = "acme", ty[16] = "email";

	(void)s;
	assert_true(jobq_series_digest(q, t, ty) == jobq_series_digest("default", "acme", "email"));
	assert_true(jobq_series_digest("default", "acme", "email") != 0);
}

static void fields_are_kept_apart(void **s)
{
	(void)s;
	assert_true(jobq_series_digest("q", "ab", "c") != jobq_series_digest("q", "a", "bc"));
	assert_true(jobq_series_digest("qa", "b", "c") != jobq_series_digest("q", "ab", "c"));
	assert_true(jobq_series_digest("q", "", "abc") != jobq_series_digest("q", "abc", ""));
	assert_true(jobq_series_digest("", "", "") != 0);
}

/* Every byte position of a name up to the longest allowed counts: one
 * byte changed anywhere (in the 8-byte steps and in the tail) changes the
 * digest, for every length 1..JOBQ_TENANT_MAX. */
static void every_byte_of_every_length_counts(void **s)
{
	char t[JOBQ_TENANT_MAX + 1];

	(void)s;
	for (int len = 1; len <= JOBQ_TENANT_MAX; len++) {
		uint64_t base;

		memset(t, 'a', (size_t)len);
		t[len] = '\0';
		base = jobq_series_digest("default", t, "email");
		for (int i = 0; i < len; i++) {
			t[i] = 'b';
			assert_true(jobq_series_digest("default", t, "email") != base);
			t[i] = 'a';
		}
		t[len - 1] = '\0'; /* one shorter */
		assert_true(jobq_series_digest("default", t, "email") != base);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* No two of 100,000 realistic (tenant, type) pairs share a digest. */
static void no_collision_among_many_series(void **s)
{
	enum { N = 100000 };
	static uint64_t d[N];
	char t[32], ty[16];

	(void)s;
	for (int i = 0; i < N; i++) {
		snprintf(t, sizeof(t), "tenant-%d", i / 10);
		snprintf(ty, sizeof(ty), "type-%d", i % 10);
		d[i] = jobq_series_digest("default", t, ty);
	}
	qsort(d, N, sizeof(d[0]), cmp_u64);
	for (int i = 1; i < N; i++)
		assert_true(d[i] != d[i - 1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_strings_same_digest_wherever_they_lie),
		cmocka_unit_test(fields_are_kept_apart),
		cmocka_unit_test(every_byte_of_every_length_counts),
		cmocka_unit_test(no_collision_among_many_series),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
