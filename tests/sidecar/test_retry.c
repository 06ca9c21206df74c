/* test_retry - the OTLP/HTTP retry policy as a pure function. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <time.h>

#include "sidecar/retry.h"

static const struct sc_retry_policy P = SC_RETRY_POLICY_DEFAULT; /* 1 s, 5 s, x1.5, cap 30 s */

static struct sc_decision decide(long status, bool transport, const char *ra, int attempt,
				 int64_t remaining, double jitter)
{
	struct sc_attempt a = { status, transport, ra, attempt, 1700000000000LL, remaining, jitter };
	return sc_retry_decide(&P, &a);
}

static void test_success_on_2xx(void **st)
{
	(void)st;
	assert_int_equal(decide(200, false, NULL, 1, 10000, 0).outcome, SC_OUTCOME_SUCCESS);
	assert_int_equal(decide(204, false, NULL, 1, 10000, 0).outcome, SC_OUTCOME_SUCCESS);
}

static void test_retryable_statuses(void **st)
{
	(void)st;
	long yes[] = { 429, 502, 503, 504 };
	long no[] = { 400, 401, 403, 404, 413, 500, 501, 301 };
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(decide(yes[i], false, NULL, 1, 10000, 0).outcome, SC_OUTCOME_RETRY);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(decide(no[i], false, NULL, 1, 10000, 0).outcome, SC_OUTCOME_PERMANENT);
}

static void test_400_never_retried_even_with_retry_after(void **st)
{
	(void)st;
	assert_int_equal(decide(400, false, "1", 1, 10000, 0).outcome, SC_OUTCOME_PERMANENT);
}

static void test_transport_error_retried(void **st)
{
	(void)st;
	struct sc_decision d = decide(0, true, NULL, 1, 10000, 0.0);
	assert_int_equal(d.outcome, SC_OUTCOME_RETRY);
	assert_int_equal(d.delay_ms, 500); /* initial 1000 ms, jitter 0 -> half */
}

static void test_retry_after_seconds(void **st)
{
	(void)st;
	struct sc_decision d = decide(503, false, "3", 1, 10000, 0.5);
	assert_int_equal(d.outcome, SC_OUTCOME_RETRY);
	assert_int_equal(d.delay_ms, 3000);
}

static void test_retry_after_http_date(void **st)
{
	(void)st;
	/* 1700000000 s is Tue, 14 Nov 2023 22:13:20 GMT. */
	assert_int_equal(sc_retry_after_ms("Tue, 14 Nov 2023 22:13:25 GMT", 1700000000000LL), 5000);
	assert_int_equal(sc_retry_after_ms("Tuesday, 14-Nov-23 22:13:25 GMT", 1700000000000LL), 5000);
	assert_int_equal(sc_retry_after_ms("Tue Nov 14 22:13:25 2023", 1700000000000LL), 5000);
	/* In the past: retry now. */
	assert_int_equal(sc_retry_after_ms("Tue, 14 Nov 2023 22:13:00 GMT", 1700000000000LL), 0);
	struct sc_decision d = decide(429, false, "Tue, 14 Nov 2023 22:13:22 GMT", 1, 10000, 0);
	assert_int_equal(d.outcome, SC_OUTCOME_RETRY);
	assert_int_equal(d.delay_ms, 2000);
}

static void test_retry_after_garbage_falls_back_to_backoff(void **st)
{
	(void)st;
	assert_int_equal(sc_retry_after_ms("soon", 0), -1);
	assert_int_equal(sc_retry_after_ms("5x", 0), -1);
	struct sc_decision d = decide(503, false, "soon", 2, 10000, 0.0);
	assert_int_equal(d.outcome, SC_OUTCOME_RETRY);
	assert_int_equal(d.delay_ms, 750); /* 1500 / 2 */
}

static void test_retry_after_is_capped(void **st)
{
	(void)st;
	struct sc_decision d = decide(503, false, "86400", 1, 100000, 0);
	assert_int_equal(d.outcome, SC_OUTCOME_RETRY);
	assert_int_equal(d.delay_ms, P.max_retry_after_ms);
}

static void test_backoff_grows_is_capped_and_jittered(void **st)
{
	(void)st;
	int64_t prev = 0;
	for (int a = 1; a <= 10; a++) {
		int64_t lo = decide(0, true, NULL, a, 100000, 0.0).delay_ms;
		int64_t hi = decide(0, true, NULL, a, 100000, 0.999).delay_ms;
		assert_true(lo >= prev);             /* non-decreasing */
		assert_true(hi <= P.max_backoff_ms);  /* capped */
		assert_true(hi >= lo && hi <= 2 * lo + 1); /* jitter in [b/2, b) */
		prev = lo;
	}
	assert_int_equal(decide(0, true, NULL, 10, 100000, 0.0).delay_ms, P.max_backoff_ms / 2);
}

static void test_retry_after_zero_has_the_backoff_as_floor(void **st)
{
	(void)st;
	/* "Retry-After: 0" or a past date must not mean "at once, forever". */
	struct sc_decision d = decide(503, false, "0", 1, 10000, 0.0);
	assert_int_equal(d.outcome, SC_OUTCOME_RETRY);
	assert_int_equal(d.delay_ms, 500);
	assert_true(d.server_delay);
	d = decide(429, false, "0", 3, 10000, 0.0);
	assert_int_equal(d.delay_ms, 1125); /* 1000 * 1.5^2 / 2 */
	d = decide(503, false, "Tue, 14 Nov 2023 22:13:00 GMT", 2, 10000, 0.999);
	assert_true(d.delay_ms >= 750 && d.delay_ms < 1500);
	/* The longer of the two wins. */
	assert_int_equal(decide(503, false, "4", 1, 10000, 0.999).delay_ms, 4000);
	assert_int_equal(decide(503, false, "2", 5, 10000, 0.0).delay_ms, 2500);
}

static void test_retry_after_past_the_deadline_is_kept_for_the_next_round(void **st)
{
	(void)st;
	/* 20 s asked, 10 s export timeout: give up for this round, but the
	 * caller learns not to send again for 20 s. */
	struct sc_decision d = decide(503, false, "20", 1, 10000, 0.5);
	assert_int_equal(d.outcome, SC_OUTCOME_GIVE_UP);
	assert_int_equal(d.delay_ms, 20000);
	assert_true(d.server_delay);
	/* Capped at the documented maximum. */
	d = decide(503, false, "3600", 1, 10000, 0.5);
	assert_int_equal(d.outcome, SC_OUTCOME_GIVE_UP);
	assert_int_equal(d.delay_ms, P.max_retry_after_ms);
	/* Without a Retry-After the delay is the backoff. */
	d = decide(0, true, NULL, 1, 100, 0.0);
	assert_int_equal(d.outcome, SC_OUTCOME_GIVE_UP);
	assert_int_equal(d.delay_ms, 500);
	assert_false(d.server_delay);
}

static void test_deadline_means_give_up(void **st)
{
	(void)st;
	assert_int_equal(decide(503, false, "5", 1, 4000, 0).outcome, SC_OUTCOME_GIVE_UP);
	assert_int_equal(decide(503, false, "5", 1, 4000, 0).delay_ms, 5000);
	assert_int_equal(decide(0, true, NULL, 1, 100, 0).outcome, SC_OUTCOME_GIVE_UP);
	/* Permanent stays permanent whatever the time left. */
	assert_int_equal(decide(400, false, NULL, 1, 0, 0).outcome, SC_OUTCOME_PERMANENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success_on_2xx),
		cmocka_unit_test(test_retryable_statuses),
		cmocka_unit_test(test_400_never_retried_even_with_retry_after),
		cmocka_unit_test(test_transport_error_retried),
		cmocka_unit_test(test_retry_after_seconds),
		cmocka_unit_test(test_retry_after_http_date),
		cmocka_unit_test(test_retry_after_garbage_falls_back_to_backoff),
		cmocka_unit_test(test_retry_after_is_capped),
		cmocka_unit_test(test_backoff_grows_is_capped_and_jittered),
		cmocka_unit_test(test_retry_after_zero_has_the_backoff_as_floor),
		cmocka_unit_test(test_retry_after_past_the_deadline_is_kept_for_the_next_round),
		cmocka_unit_test(test_deadline_means_give_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
