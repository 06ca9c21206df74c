/* test_worker.c - the worker as a real process (`jobq worker`) against a
 * real redis-server: every job runs, graceful stop, idle CPU and wake-up,
 * failing/unknown/malformed jobs never stop the worker, retry backoff, a
 * job without a handler retried for a worker that has it. */
#include "tests/queue/qtest.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void every_job_runs_once(void **state)
{
	struct jobq *q = qt_connect("w1");
	const char *log = qt_path("w1.log");
	struct qt_rec *r;
	long n;
	pid_t w;

	(void)state;
	for (int t = 0; t < 5; t++) {
		char tenant[16];

		snprintf(tenant, sizeof(tenant), "t%d", t);
		qt_enqueue_n(q, tenant, "x", (enum jobq_priority)(t % 3), 100);
	}
	w = qt_worker("w1", "--handler", "x=builtin:noop", "--job-log", log, NULL);
	assert_int_equal(qt_wait_drained(q, 30000), 0);
	assert_int_equal(qt_stop(w, SIGTERM, 10000), 0);
	n = qt_read_log(log, &r);
	assert_int_equal(n, 500);
	assert_int_equal(qt_distinct_ids(r, n), 500);
	for (long i = 0; i < n; i++) {
		assert_string_equal(r[i].status, "ok");
		assert_int_equal(r[i].attempt, 1);
		assert_true(r[i].start_ns >= r[i].enq_ns && r[i].end_ns >= r[i].start_ns);
	}
	free(r);
	jobq_close(q);
}

static void graceful_stop_finishes_running_and_releases_the_rest(void **state)
{
	struct jobq *q = qt_connect("w2");
	const char *log = qt_path("w2.log");
	struct jobq_tenant_stats *st;
	struct qt_rec *r;
	size_t n;
	long nl;
	pid_t w;

	(void)state;
	qt_enqueue_n(q, "t", "slow", JOBQ_NORMAL, 20);
	w = qt_worker("w2", "--handler", "slow=builtin:sleep:400", "--concurrency", "2",
		      "--job-log", log, NULL);
	/* Wait until it leased (in flight), then let the handlers start. */
	for (int i = 0; i < 500; i++) {
		assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
		if (n && st[0].in_flight > 0)
			i = 1000;
		free(st);
		qt_sleep_ms(10);
	}
	qt_sleep_ms(100);
	assert_int_equal(qt_stop(w, SIGTERM, 10000), 0);
	/* Exactly the two running jobs finished; the rest went back. */
	nl = qt_read_log(log, &r);
	assert_int_equal(nl, 2);
	free(r);
	assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
	assert_int_equal(st[0].in_flight, 0);
	assert_int_equal(st[0].depth[JOBQ_NORMAL], 18);
	free(st);
	/* A second worker finishes them: nothing was lost. */
	w = qt_worker("w2", "--handler", "slow=builtin:noop", "--job-log", log, NULL);
	assert_int_equal(qt_wait_drained(q, 30000), 0);
	assert_int_equal(qt_stop(w, SIGTERM, 10000), 0);
	nl = qt_read_log(log, &r);
	assert_int_equal(nl, 20);
	assert_int_equal(qt_distinct_ids(r, nl), 20);
	free(r);
	jobq_close(q);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void idle_worker_uses_no_cpu_and_wakes_fast(void **state)
{
	struct jobq *q = qt_connect("w3");
	const char *log = qt_path("w3.log");
	uint64_t waits[20];
	struct qt_rec *r;
	long t0, t1, nl;
	pid_t w;

	(void)state;
	w = qt_worker("w3", "--handler", "x=builtin:noop", "--job-log", log, NULL);
	qt_sleep_ms(500); /* start-up */
	t0 = qt_cpu_ticks(w);
	qt_sleep_ms(3000);
	t1 = qt_cpu_ticks(w);
	assert_true(t0 >= 0 && t1 >= 0);
	/* 3 s idle = 300 ticks at 100 Hz; a polling loop would burn most. */
	if (t1 - t0 > 6)
		fail_msg("idle worker used %ld clock ticks of CPU in 3 s (want <= 6, i.e. ~0%%)", t1 - t0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(jobq_enqueue(q, "t", "x", "", 0, NULL, NULL), JOBQ_OK);
		qt_sleep_ms(50);
	}
	assert_int_equal(qt_wait_drained(q, 10000), 0);
	assert_int_equal(qt_stop(w, SIGTERM, 10000), 0);
	nl = qt_read_log(log, &r);
	assert_int_equal(nl, 20);
	for (int i = 0; i < 20; i++)
		waits[i] = r[i].start_ns - r[i].enq_ns;
	qsort(waits, 20, sizeof(waits[0]), cmp_u64);
	/* Blocked in BLPOP, it starts a job about one round trip after the
	 * enqueue (~1 ms); bounds are generous for a noisy machine. */
	if (waits[10] > 50000000ull || waits[19] > 500000000ull)
		fail_msg("wake-up latency median %.2f ms, max %.2f ms (want < 50 ms / 500 ms)",
			 (double)waits[10] / 1e6, (double)waits[19] / 1e6);
	printf("wake-up latency: median %.3f ms, max %.3f ms\n", (double)waits[10] / 1e6,
	       (double)waits[19] / 1e6);
	free(r);
	jobq_close(q);
}

static void failing_unknown_and_malformed_jobs_never_stop_the_worker(void **state)
{
	struct jobq *q = qt_connect("w4");
	const char *log = qt_path("w4.log");
	struct jobq_enqueue_opts o;
	struct jobq_dead_entry *d;
	struct qt_rec *r;
	int saw_nohandler = 0, saw_fail = 0, saw_malformed = 0;
	size_t n;
	long nl;
	pid_t w;

	(void)state;
	jobq_enqueue_opts_init(&o);
	o.max_attempts = 1;
	/* No handler: a failed attempt like any other (the last one here). */
	assert_int_equal(jobq_enqueue(q, "t", "nohandler", "", 0, &o, NULL), JOBQ_OK);
	assert_int_equal(jobq_enqueue(q, "t", "f", "", 0, &o, NULL), JOBQ_OK);
	/* A document that passes the script but fails client-side checks. */
	qt_redis_cmd("HSET jobq:{w4}:job:7777 tenant_id t type x priority normal payload p enqueued_at_ns 1 max_attempts 3 trace_id nothex");
	qt_redis_cmd("RPUSH jobq:{w4}:q:t:1 7777");
	qt_enqueue_n(q, "t", "x", JOBQ_NORMAL, 10);
	w = qt_worker("w4", "--handler", "x=builtin:noop", "--handler", "f=builtin:fail:1",
		      "--job-log", log, NULL);
	assert_int_equal(qt_wait_drained(q, 30000), 0);
	assert_int_equal(qt_stop(w, SIGTERM, 10000), 0); /* still alive, clean exit */
	nl = qt_read_log(log, &r);
	assert_int_equal(nl, 11); /* 10 x + the failing f; nothing else ran */
	free(r);
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		saw_nohandler |= !strcmp(d[i].reason, "no handler for type nohandler on this worker");
		saw_fail |= strstr(d[i].reason, "builtin:fail") != NULL;
		saw_malformed |= d[i].id == 7777 && strstr(d[i].reason, "trace_id") != NULL;
	}
	assert_true(saw_nohandler && saw_fail && saw_malformed);
	free(d);
	jobq_close(q);
}

static void retries_back_off_exponentially_then_dead_letter(void **state)
{
	struct jobq *q = qt_connect("w5");
	const char *log = qt_path("w5.log");
	struct jobq_enqueue_opts o;
	struct jobq_dead_entry *d;
	struct qt_rec *r;
	size_t n;
	long nl;
	pid_t w;

	(void)state;
	jobq_enqueue_opts_init(&o);
	o.max_attempts = 4;
	assert_int_equal(jobq_enqueue(q, "t", "f", "", 0, &o, NULL), JOBQ_OK);
	w = qt_worker("w5", "--handler", "f=builtin:fail:1", "--backoff-base-ms", "100",
		      "--job-log", log, NULL);
	assert_int_equal(qt_wait_drained(q, 30000), 0);
	assert_int_equal(qt_stop(w, SIGTERM, 10000), 0);
	nl = qt_read_log(log, &r);
	assert_int_equal(nl, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r[i].attempt, (unsigned)i + 1);
		assert_string_equal(r[i].status, "fail");
	}
	/* Retry n waits in [d/2, d] with d = 100 ms * 2^(n-1): at least
	 * 50, 100, 200 ms between a failure and the next attempt. */
	for (int i = 1; i < 4; i++) {
		uint64_t gap = r[i].start_ns - r[i - 1].end_ns, min = 50000000ull << (i - 1);

		if (gap < min)
			fail_msg("retry %d started %.1f ms after the failure, want >= %.0f ms", i,
				 (double)gap / 1e6, (double)min / 1e6);
	}
	free(r);
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(d[0].attempts, 4);
	free(d);
	jobq_close(q);
}

/* A job whose type this worker has no handler for (a rolling deploy: an
 * older worker shares the queue) fails the attempt and is retried with
 * backoff, so a worker that has the handler runs it; without one anywhere
 * it is dead-lettered only after max_attempts, like any failure. */
static void job_without_handler_is_retried_for_a_worker_that_has_it(void **state)
{
	struct jobq *q = qt_connect("w8");
	const char *log = qt_path("w8.log");
	struct jobq_enqueue_opts o;
	struct jobq_dead_entry *d;
	struct qt_rec *r;
	char buf[256];
	uint64_t id, id2;
	size_t n;
	long nl;
	pid_t old, upgraded;
	int i;

	(void)state;
	jobq_enqueue_opts_init(&o);
	o.max_attempts = 3;
	assert_int_equal(jobq_enqueue(q, "t", "new", "", 0, &o, &id), JOBQ_OK);
	old = qt_worker("w8", "--handler", "x=builtin:noop", "--backoff-base-ms", "2000", NULL);
	for (i = 0; i < 1000; i++) {
		qt_redis_get(buf, sizeof(buf), "HGET jobq:{w8}:job:%llu last_error",
			     (unsigned long long)id);
		if (buf[0])
			break;
		qt_sleep_ms(10);
	}
	assert_int_equal(qt_stop(old, SIGTERM, 10000), 0);
	assert_string_equal(buf, "no handler for type new on this worker");
	qt_redis_get(buf, sizeof(buf), "HGET jobq:{w8}:job:%llu attempt", (unsigned long long)id);
	assert_string_equal(buf, "1");
	qt_redis_get(buf, sizeof(buf), "ZSCORE jobq:{w8}:delayed %llu", (unsigned long long)id);
	if (!buf[0])
		fail_msg("job %llu without a handler is not waiting for a retry", (unsigned long long)id);
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(n, 0);
	free(d);
	/* The upgraded worker has the handler and runs it on attempt 2. */
	upgraded = qt_worker("w8", "--handler", "new=builtin:noop", "--job-log", log, NULL);
	assert_int_equal(qt_wait_drained(q, 30000), 0);
	assert_int_equal(qt_stop(upgraded, SIGTERM, 10000), 0);
	nl = qt_read_log(log, &r);
	assert_int_equal(nl, 1);
	assert_int_equal(r[0].id, id);
	assert_int_equal(r[0].attempt, 2);
	assert_string_equal(r[0].status, "ok");
	free(r);
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(n, 0);
	free(d);
	/* No worker has it: dead-lettered after max_attempts, not before. */
	o.max_attempts = 2;
	assert_int_equal(jobq_enqueue(q, "t", "new2", "", 0, &o, &id2), JOBQ_OK);
	old = qt_worker("w8", "--handler", "x=builtin:noop", "--backoff-base-ms", "50", NULL);
	assert_int_equal(qt_wait_drained(q, 30000), 0);
	assert_int_equal(qt_stop(old, SIGTERM, 10000), 0);
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(d[0].id, id2);
	assert_int_equal(d[0].attempts, 2);
	assert_string_equal(d[0].reason, "no handler for type new2 on this worker");
	free(d);
	jobq_close(q);
}

/* Default options lease only for free slots: a second idle worker gets
 * work while the first is busy, instead of the first hoarding it. */
static void two_workers_share_work_with_default_options(void **state)
{
	struct jobq *q = qt_connect("w6");
	const char *log_a = qt_path("w6-a.log"), *log_b = qt_path("w6-b.log");
	long na, nb;
	pid_t a, b;

	(void)state;
	a = qt_worker("w6", "--handler", "x=builtin:sleep:500", "--concurrency", "1", "--job-log", log_a,
		      NULL);
	b = qt_worker("w6", "--handler", "x=builtin:sleep:500", "--concurrency", "1", "--job-log", log_b,
		      NULL);
	qt_sleep_ms(700); /* both idle, blocked waiting for work */
	qt_enqueue_n(q, "t", "x", JOBQ_NORMAL, 4);
	assert_int_equal(qt_wait_drained(q, 20000), 0);
	assert_int_equal(qt_stop(a, SIGTERM, 10000), 0);
	assert_int_equal(qt_stop(b, SIGTERM, 10000), 0);
	na = qt_log_lines(log_a);
	nb = qt_log_lines(log_b);
	printf("worker a ran %ld jobs, worker b %ld\n", na, nb);
	assert_int_equal(na + nb, 4);
	if (na < 1 || nb < 1)
		fail_msg("one worker ran all the jobs (a %ld, b %ld): the other was idle", na, nb);
	jobq_close(q);
}

/* The depth probe's semaphore (queue/jobq_probes.h): set, the worker
 * reports depth as if a tracer were attached. */
extern unsigned short jobq_depth_semaphore;

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_bad[4096];
static int log_bad_tenant_warnings;

static void record_log(enum jobq_log_level lvl, const char *msg, void *user)
{
	(void)user;
	pthread_mutex_lock(&log_mu);
	if (strstr(msg, "bad tenant records"))
		log_bad_tenant_warnings++;
	else if (lvl <= JOBQ_LOG_WARN && strlen(log_bad) + strlen(msg) + 2 < sizeof(log_bad))
		strcat(strcat(log_bad, msg), "\n");
	pthread_mutex_unlock(&log_mu);
}

static atomic_int ran;

static int count_job(const struct jobq_job *job, void *user, char *err, size_t errlen)
{
	(void)job, (void)user, (void)err, (void)errlen;
	atomic_fetch_add(&ran, 1);
	return 0;
}

static void *run_worker(void *w)
{
	return (void *)(intptr_t)jobq_worker_run(w);
}

/* A bad tenant record (id over 64 bytes, weight not a number) must not
 * fail the worker's periodic depth report (it used to drop the Redis
 * connection every time): the record is skipped, said once. */
static void depth_report_survives_bad_tenant_records(void **state)
{
	struct jobq *q = qt_connect("w7");
	struct jobq_worker_opts o;
	struct jobq_worker *w;
	char err[256], long_name[71];
	pthread_t th;
	void *rc;

	(void)state;
	memset(long_name, 'a', 70);
	long_name[70] = '\0';
	qt_redis_cmd("SADD jobq:{w7}:tenants %s", long_name);
	qt_redis_cmd("SADD jobq:{w7}:tenants w");
	qt_redis_cmd("HSET jobq:{w7}:t:w weight abc");
	qt_enqueue_n(q, "t", "x", JOBQ_NORMAL, 20);
	jobq_worker_opts_init(&o);
	o.conn.redis_url = qt_redis.url;
	o.conn.queue = "w7";
	o.depth_report_ms = 20;
	assert_int_equal(jobq_worker_new(&o, &w, err, sizeof(err)), JOBQ_OK);
	assert_int_equal(jobq_worker_handle(w, "x", count_job, NULL), JOBQ_OK);
	jobq_set_log(record_log, NULL);
	jobq_depth_semaphore = 1;
	assert_int_equal(pthread_create(&th, NULL, run_worker, w), 0);
	for (int i = 0; i < 1000 && atomic_load(&ran) < 20; i++)
		qt_sleep_ms(10);
	qt_sleep_ms(300); /* a dozen depth reports */
	jobq_worker_stop(w);
	pthread_join(th, &rc);
	jobq_depth_semaphore = 0;
	jobq_set_log(NULL, NULL);
	assert_int_equal((intptr_t)rc, JOBQ_OK);
	assert_int_equal(atomic_load(&ran), 20);
	if (log_bad[0])
		fail_msg("the worker logged trouble: %s", log_bad);
	assert_int_equal(log_bad_tenant_warnings, 1);
	jobq_worker_free(w);
	jobq_close(q);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_job_runs_once),
		cmocka_unit_test(graceful_stop_finishes_running_and_releases_the_rest),
		cmocka_unit_test(idle_worker_uses_no_cpu_and_wakes_fast),
		cmocka_unit_test(failing_unknown_and_malformed_jobs_never_stop_the_worker),
		cmocka_unit_test(retries_back_off_exponentially_then_dead_letter),
		cmocka_unit_test(job_without_handler_is_retried_for_a_worker_that_has_it),
		cmocka_unit_test(two_workers_share_work_with_default_options),
		cmocka_unit_test(depth_report_survives_bad_tenant_records),
	};
	int rc = qt_init(argc > 0 ? argv[0] : "");

	if (rc)
		return rc;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	qt_fini();
	return rc ? 1 : 0;
}
