/* test_reliability.c - no job is lost: a SIGKILLed worker's job runs again
 * after its lease expires; a Redis restart mid-run is survived. */
#include "tests/queue/qtest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sigkilled_worker_job_runs_again_after_lease_expiry(void **state)
{
	struct jobq *q = qt_connect("kill");
	const char *log_a = qt_path("kill-a.log"), *log_b = qt_path("kill-b.log");
	struct jobq_tenant_stats *st;
	struct qt_rec *r;
	uint64_t id;
	size_t n;
	long nl;
	pid_t a, b;
	int leased = 0;

	(void)state;
	assert_int_equal(jobq_enqueue(q, "t", "long", "", 0, NULL, &id), JOBQ_OK);
	a = qt_worker("kill", "--handler", "long=builtin:sleep:30000", "--lease-ms", "1000",
		      "--job-log", log_a, NULL);
	for (int i = 0; i < 1000 && !leased; i++) {
		assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
		leased = n && st[0].in_flight == 1;
		free(st);
		qt_sleep_ms(10);
	}
	assert_true(leased);
	qt_sleep_ms(1500); /* past one renewal: the lease is kept alive while it runs */
	assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
	assert_int_equal(st[0].in_flight, 1);
	free(st);
	assert_int_equal(qt_stop(a, SIGKILL, 5000), 128 + SIGKILL);

	/* Another worker's reaper returns the job once the lease expires. */
	b = qt_worker("kill", "--handler", "long=builtin:noop", "--lease-ms", "1000",
		      "--job-log", log_b, NULL);
	assert_int_equal(qt_wait_drained(q, 20000), 0);
	assert_int_equal(qt_stop(b, SIGTERM, 10000), 0);
	assert_int_equal(qt_log_lines(log_a), 0);
	nl = qt_read_log(log_b, &r);
	assert_int_equal(nl, 1);
	assert_int_equal(r[0].id, id);
	assert_int_equal(r[0].attempt, 2);
	assert_string_equal(r[0].status, "ok");
	free(r);
	jobq_close(q);
}

/* max_attempts 1, a worker holding prefetched jobs is SIGKILLed: the jobs
 * it never started did not run, so they keep their attempt and each runs
 * exactly once elsewhere; the prefetched job it had started (reported in
 * the round trip after it started) used its only attempt. */
static void sigkilled_worker_prefetched_jobs_keep_their_attempt(void **state)
{
	struct jobq *q = qt_connect("pf");
	const char *log_a = qt_path("pf-a.log"), *log_b = qt_path("pf-b.log");
	struct jobq_enqueue_opts o;
	struct jobq_tenant_stats *st;
	struct jobq_dead_entry *d;
	uint64_t ids[10];
	struct qt_rec *r;
	size_t n;
	long nl;
	pid_t a, b;
	int held = 0;

	(void)state;
	jobq_enqueue_opts_init(&o);
	o.max_attempts = 1;
	assert_int_equal(jobq_enqueue(q, "t", "quick", "", 0, &o, &ids[0]), JOBQ_OK);
	for (int i = 1; i < 10; i++)
		assert_int_equal(jobq_enqueue(q, "t", "long", "", 0, &o, &ids[i]), JOBQ_OK);
	/* One slot, eight prefetched: quick runs, then the first long one
	 * starts from the prefetch buffer; seven wait behind it. */
	a = qt_worker("pf", "--handler", "quick=builtin:sleep:200", "--handler", "long=builtin:sleep:30000",
		      "--concurrency", "1", "--prefetch", "8", "--lease-ms", "1000", "--job-log", log_a, NULL);
	for (int i = 0; i < 1000 && !held; i++) {
		assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
		held = n && st[0].in_flight == 9;
		free(st);
		qt_sleep_ms(10);
	}
	assert_true(held);
	for (int i = 0; i < 500 && qt_log_lines(log_a) < 1; i++)
		qt_sleep_ms(10);
	assert_int_equal(qt_log_lines(log_a), 1);
	qt_sleep_ms(500); /* the long job runs; its start was reported */
	assert_int_equal(qt_stop(a, SIGKILL, 5000), 128 + SIGKILL);

	b = qt_worker("pf", "--handler", "long=builtin:noop", "--lease-ms", "1000", "--job-log", log_b, NULL);
	assert_int_equal(qt_wait_drained(q, 20000), 0);
	assert_int_equal(qt_stop(b, SIGTERM, 10000), 0);
	nl = qt_read_log(log_b, &r);
	/* ids[1] was running in A; ids[2..8] were prefetched; ids[9] was left. */
	if (nl != 8)
		fail_msg("worker B ran %ld jobs, want 8 (7 prefetched by the killed worker + 1)", nl);
	assert_int_equal(qt_distinct_ids(r, nl), 8);
	for (long i = 0; i < nl; i++) {
		assert_true(r[i].id >= ids[2] && r[i].id <= ids[9]);
		assert_int_equal(r[i].attempt, 1);
		assert_string_equal(r[i].status, "ok");
	}
	free(r);
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(d[0].id, ids[1]);
	assert_string_equal(d[0].reason, "lease expired on attempt 1");
	free(d);
	jobq_close(q);
}

static void redis_restart_mid_run_loses_nothing(void **state)
{
	struct jobq *q = qt_connect("restart");
	const char *log = qt_path("restart.log"), *errlog = qt_path("restart.err");
	char err[256];
	struct qt_rec *r;
	long nl = 0;
	pid_t w;

	(void)state;
	qt_enqueue_n(q, "a", "x", JOBQ_NORMAL, 1500);
	qt_enqueue_n(q, "b", "x", JOBQ_HIGH, 1500);
	qt_worker_stderr = errlog;
	/* A lease whose reply is lost in the outage is only known to Redis:
	 * it comes back when it expires, so keep leases short here. */
	w = qt_worker("restart", "--handler", "x=builtin:sleep:1", "--concurrency", "4",
		      "--lease-ms", "2000", "--job-log", log, NULL);
	qt_worker_stderr = NULL;
	for (int i = 0; i < 3000 && nl < 300; i++) {
		qt_sleep_ms(10);
		nl = qt_log_lines(log);
	}
	assert_true(nl >= 300);
	/* SIGTERM: redis flushes its AOF, stays down a moment, comes back. */
	assert_int_equal(redis_fixture_pause(&qt_redis), 0);
	qt_sleep_ms(700);
	if (redis_fixture_resume(&qt_redis, err, sizeof(err)))
		fail_msg("restart redis: %s", err);
	jobq_close(q);
	q = qt_connect("restart");
	assert_int_equal(qt_wait_drained(q, 60000), 0);
	assert_int_equal(qt_stop(w, SIGTERM, 10000), 0);
	nl = qt_read_log(log, &r);
	/* At least once: every id ran (one whose lease reply was lost may
	 * have run twice). */
	assert_int_equal(qt_distinct_ids(r, nl), 3000);
	free(r);
	if (!qt_file_contains(errlog, "reconnecting") || !qt_file_contains(errlog, "reconnected"))
		fail_msg("worker did not log the outage and the reconnect (see %s)", errlog);
	jobq_close(q);
}

/* SIGTERM while Redis is unreachable. A worker holding jobs keeps trying
 * to settle them for 10 s, then exits 1 saying how many were not settled
 * and that they run again once their leases expire (they do). A worker
 * that never reached Redis holds nothing: it stops cleanly (exit 0). */
static void stop_with_redis_down_says_what_is_left(void **state)
{
	struct jobq *q = qt_connect("stopdown");
	const char *log = qt_path("stopdown.log"), *errlog = qt_path("stopdown.err");
	const char *errlog2 = qt_path("stopdown2.err");
	struct jobq_tenant_stats *st;
	struct qt_rec *r;
	uint64_t inflight = 0;
	char err[256];
	size_t n;
	long nl;
	pid_t w, w2;
	int rc, rc2;

	(void)state;
	qt_enqueue_n(q, "t", "x", JOBQ_NORMAL, 6);
	qt_worker_stderr = errlog;
	/* 2 run, 2 more are leased ahead (prefetch), 2 wait in Redis. */
	w = qt_worker("stopdown", "--handler", "x=builtin:sleep:1500", "--concurrency", "2",
		      "--prefetch", "2", "--lease-ms", "2000", "--job-log", log, NULL);
	for (int i = 0; i < 1000 && inflight < 4; i++) {
		qt_sleep_ms(10);
		assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
		inflight = n ? st[0].in_flight : 0;
		free(st);
	}
	if (inflight != 4) {
		qt_stop(w, SIGKILL, 5000);
		fail_msg("%llu jobs leased, want 4 (2 running, 2 prefetched)", (unsigned long long)inflight);
	}
	jobq_close(q);
	assert_int_equal(redis_fixture_pause(&qt_redis), 0);
	qt_worker_stderr = errlog2;
	w2 = qt_worker("stopdown", "--handler", "x=builtin:noop", NULL);
	qt_worker_stderr = NULL;
	qt_sleep_ms(300);
	rc2 = qt_stop(w2, SIGTERM, 5000);
	rc = qt_stop(w, SIGTERM, 20000);
	/* Both stopped and redis back before any assertion. */
	if (redis_fixture_resume(&qt_redis, err, sizeof(err)))
		fail_msg("resume redis: %s", err);
	assert_int_equal(rc2, 0);
	if (!qt_file_contains(errlog2, "stopped before redis answered") ||
	    !qt_file_contains(errlog2, "no job was leased"))
		fail_msg("worker stopped before reaching redis: unclear message (see %s)", errlog2);
	assert_int_equal(rc, 1);
	if (!qt_file_contains(errlog, "jobq: worker: stopped with 4 jobs not settled, redis unreachable for 10 s (connect ") ||
	    !qt_file_contains(errlog, "): 2 ran but their outcome is not recorded, 2 did not start; they run again when their leases expire"))
		fail_msg("worker stopped with redis down: unclear message (see %s)", errlog);
	/* As it said: all 6 run (again), the 2 that ran before twice. */
	q = qt_connect("stopdown");
	w = qt_worker("stopdown", "--handler", "x=builtin:noop", "--job-log", log, NULL);
	assert_int_equal(qt_wait_drained(q, 30000), 0);
	assert_int_equal(qt_stop(w, SIGTERM, 10000), 0);
	nl = qt_read_log(log, &r);
	assert_int_equal(nl, 8);
	assert_int_equal(qt_distinct_ids(r, nl), 6);
	free(r);
	jobq_close(q);
}

/* A producer's connection that Redis closed (here by restarting) is
 * replaced before the next call sends anything: the call succeeds. With
 * Redis down, a call retries with backoff for a bounded time, then fails
 * with a clear error; nothing is reported enqueued that was not. */
static void producer_reconnects_with_backoff(void **state)
{
	struct jobq_opts o;
	struct jobq *q;
	struct jobq_new_job j[10];
	struct jobq_tenant_stats *st;
	uint64_t id1, id2, id3, ids[10], t0, took;
	char err[256];
	size_t n;

	(void)state;
	jobq_opts_init(&o);
	o.redis_url = qt_redis.url;
	o.queue = "prod";
	o.reconnect_max_ms = 600;
	assert_int_equal(jobq_connect(&o, &q, err, sizeof(err)), JOBQ_OK);
	assert_int_equal(jobq_enqueue(q, "t", "x", "", 0, NULL, &id1), JOBQ_OK);
	if (redis_fixture_restart(&qt_redis, err, sizeof(err)))
		fail_msg("restart redis: %s", err);
	if (jobq_enqueue(q, "t", "x", "", 0, NULL, &id2))
		fail_msg("enqueue after a redis restart: %s", jobq_errmsg(q));
	assert_int_equal(id2, id1 + 1);
	for (int i = 0; i < 10; i++) {
		j[i] = (struct jobq_new_job){ "t", "x", "", 0, { 0 } };
		jobq_enqueue_opts_init(&j[i].opts);
	}
	if (redis_fixture_restart(&qt_redis, err, sizeof(err)))
		fail_msg("restart redis: %s", err);
	if (jobq_enqueue_batch(q, j, 10, ids))
		fail_msg("batch after a redis restart: %s", jobq_errmsg(q));
	assert_int_equal(ids[9], id2 + 10);

	assert_int_equal(redis_fixture_pause(&qt_redis), 0);
	t0 = mono_ms();
	assert_int_equal(jobq_enqueue(q, "t", "x", "", 0, NULL, &id3), JOBQ_EREDIS);
	took = mono_ms() - t0;
	printf("redis down: enqueue failed after %llu ms: %s\n", (unsigned long long)took, jobq_errmsg(q));
	if (!strstr(jobq_errmsg(q), "connect") || !strstr(jobq_errmsg(q), "gave up after"))
		fail_msg("unclear error with redis down: %s", jobq_errmsg(q));
	if (took < 300 || took > 5000)
		fail_msg("gave up after %llu ms, want about reconnect_max_ms (600)", (unsigned long long)took);
	assert_int_equal(jobq_enqueue_batch(q, j, 10, ids), JOBQ_EREDIS);
	for (int i = 0; i < 10; i++)
		assert_int_equal(ids[i], 0);
	assert_non_null(strstr(jobq_errmsg(q), "0 of 10 jobs enqueued"));
	if (redis_fixture_resume(&qt_redis, err, sizeof(err)))
		fail_msg("resume redis: %s", err);
	if (jobq_enqueue(q, "t", "x", "", 0, NULL, &id3))
		fail_msg("enqueue once redis is back: %s", jobq_errmsg(q));
	assert_int_equal(id3, id2 + 11);
	assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(st[0].depth[JOBQ_NORMAL], 13);
	free(st);
	jobq_close(q);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sigkilled_worker_job_runs_again_after_lease_expiry),
		cmocka_unit_test(sigkilled_worker_prefetched_jobs_keep_their_attempt),
		cmocka_unit_test(redis_restart_mid_run_loses_nothing),
		cmocka_unit_test(producer_reconnects_with_backoff),
		cmocka_unit_test(stop_with_redis_down_says_what_is_left),
	};
	int rc = qt_init(argc > 0 ? argv[0] : "");

	if (rc)
		return rc;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	qt_fini();
	return rc ? 1 : 0;
}
