/* unit_backoff.c - retry delays: exponential, capped, equal jitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "queue/backoff.h"

static void exponential_with_equal_jitter(void **s)
{
	(void)s;
	/* attempt n: d = base*2^(n-1); delay in [d/2, d] */
	assert_int_equal(jobq_backoff_ms(1000, 300000, 1, 0.0), 500);
	assert_int_equal(jobq_backoff_ms(1000, 300000, 1, 0.999999), 999);
	assert_int_equal(jobq_backoff_ms(1000, 300000, 3, 0.0), 2000);
	assert_int_equal(jobq_backoff_ms(1000, 300000, 3, 0.5), 3000);
}

static void capped(void **s)
{
	(void)s;
	assert_int_equal(jobq_backoff_ms(1000, 5000, 10, 0.0), 2500);
	assert_true(jobq_backoff_ms(1000, 5000, 1000, 0.999) <= 5000);
	/* attempt 0 is treated as 1; out-of-range r is clamped */
	assert_int_equal(jobq_backoff_ms(100, 1000, 0, -3), 50);
	assert_true(jobq_backoff_ms(100, 1000, 1, 7) <= 100);
}

static void random_is_uniformish(void **s)
{
	int buckets[4] = { 0 };

	(void)s;
	for (int i = 0; i < 40000; i++) {
		double r = jobq_random01();

		assert_true(r >= 0 && r < 1);
		buckets[(int)(r * 4)]++;
	}
	for (int i = 0; i < 4; i++)
		assert_true(buckets[i] > 9000 && buckets[i] < 11000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exponential_with_equal_jitter),
		cmocka_unit_test(capped),
		cmocka_unit_test(random_is_uniformish),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
