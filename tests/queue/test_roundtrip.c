/* test_roundtrip.c - library transitions against a real redis-server:
 * enqueue/lease/ack, priorities and aging, stale acks, validation, retry
 * with backoff and dead-lettering, malformed documents, caps and SFQ
 * ordering, driven one script call at a time. */
#include "tests/queue/qtest.h"

#include "queue/lease.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct jobq_lease_params P1 = { 1, 30000, 0, 1.0, 0 };

static struct jobq_lease *lease1(struct jobq *q, const struct jobq_lease_params *p)
{
	struct jobq_lease *l[4];
	size_t n;
	int64_t due;

	assert_int_equal(jobq_lease(q, p, l, 4, &n, &due), JOBQ_OK);
	assert_true(n <= 1);
	return n ? l[0] : NULL;
}

static uint64_t in_flight_of(struct jobq *q, const char *tenant)
{
	struct jobq_tenant_stats *st;
	uint64_t v = UINT64_MAX;
	size_t n;

	assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(st[i].tenant, tenant))
			v = st[i].in_flight;
	free(st);
	return v;
}

static enum jobq_settled settle(struct jobq *q, struct jobq_lease *l, enum jobq_outcome o,
				double ms, uint32_t delay, const char *err)
{
	struct jobq_settle s = { .l = l, .outcome = o, .duration_ms = ms, .delay_ms = delay };

	snprintf(s.error, sizeof(s.error), "%s", err ? err : "");
	assert_int_equal(jobq_settle(q, &s, 1), JOBQ_OK);
	return s.result;
}

static uint64_t enq(struct jobq *q, const char *tenant, const char *type, enum jobq_priority p)
{
	struct jobq_enqueue_opts o;
	uint64_t id = 0;

	jobq_enqueue_opts_init(&o);
	o.priority = p;
	if (jobq_enqueue(q, tenant, type, "x", 1, &o, &id))
		fail_msg("enqueue: %s", jobq_errmsg(q));
	return id;
}

static void enqueue_lease_ack_roundtrip(void **state)
{
	struct jobq *q = qt_connect("rt");
	struct jobq_enqueue_opts o;
	struct jobq_tenant_stats *st;
	struct jobq_lease *l;
	uint64_t id, before = qt_now_ns();
	size_t n;
	static const uint8_t tid[16] = { 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
					 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36 };

	(void)state;
	jobq_enqueue_opts_init(&o);
	o.priority = JOBQ_HIGH;
	o.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	assert_int_equal(jobq_enqueue(q, "acme", "email", "he\0llo", 6, &o, &id), JOBQ_OK);
	assert_true(id > 0);

	assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
	assert_int_equal(n, 1);
	assert_string_equal(st[0].tenant, "acme");
	assert_int_equal(st[0].depth[JOBQ_HIGH], 1);
	assert_true(st[0].oldest_enqueued_unix_ns >= before);
	free(st);

	l = lease1(q, &P1);
	assert_non_null(l);
	assert_int_equal(l->job.id, id);
	assert_string_equal(l->job.tenant, "acme");
	assert_string_equal(l->job.type, "email");
	assert_int_equal(l->job.payload_len, 6);
	assert_memory_equal(l->job.payload, "he\0llo", 6);
	assert_int_equal(l->job.priority, JOBQ_HIGH);
	assert_int_equal(l->job.attempt, 1);
	assert_int_equal(l->job.max_attempts, 5);
	assert_true(l->job.enqueued_unix_ns >= before && l->job.enqueued_unix_ns <= qt_now_ns());
	assert_memory_equal(l->job.trace_id, tid, 16);
	assert_int_equal(l->job.trace_flags, 1);
	/* The enqueue span is a new child span, not the caller's. */
	assert_memory_not_equal(l->job.span_id, "\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8);
	assert_false(l->malformed);

	assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
	assert_int_equal(st[0].in_flight, 1);
	assert_int_equal(st[0].depth[JOBQ_HIGH], 0);
	free(st);

	assert_int_equal(settle(q, l, JOBQ_OUT_OK, 1.0, 0, NULL), JOBQ_SETTLED_OK);
	/* A second ack of the same lease is stale: nothing to complete. */
	assert_int_equal(settle(q, l, JOBQ_OUT_OK, 1.0, 0, NULL), JOBQ_SETTLED_STALE);
	jobq_lease_free(l);
	assert_null(lease1(q, &P1));
	assert_int_equal(qt_wait_drained(q, 1000), 0);
	jobq_close(q);
}

static void priorities_strict_then_fifo(void **state)
{
	struct jobq *q = qt_connect("prio");
	uint64_t lo1 = enq(q, "t", "x", JOBQ_LOW), n1 = enq(q, "t", "x", JOBQ_NORMAL);
	uint64_t h1 = enq(q, "t", "x", JOBQ_HIGH), lo2 = enq(q, "t", "x", JOBQ_LOW);
	uint64_t h2 = enq(q, "t", "x", JOBQ_HIGH), n2 = enq(q, "t", "x", JOBQ_NORMAL);
	uint64_t want[] = { h1, h2, n1, n2, lo1, lo2 };

	(void)state;
	for (size_t i = 0; i < 6; i++) {
		struct jobq_lease *l = lease1(q, &P1);

		assert_non_null(l);
		if (l->job.id != want[i])
			fail_msg("dispatch %zu: expected job %lu, got %lu", i, want[i], l->job.id);
		assert_int_equal(settle(q, l, JOBQ_OUT_OK, 1, 0, NULL), JOBQ_SETTLED_OK);
		jobq_lease_free(l);
	}
	jobq_close(q);
}

static void aging_serves_old_low_priority(void **state)
{
	struct jobq *q = qt_connect("aging");
	struct jobq_lease_params p = P1;
	uint64_t lo = enq(q, "t", "x", JOBQ_LOW);
	struct jobq_lease *l;

	(void)state;
	qt_sleep_ms(100);
	enq(q, "t", "x", JOBQ_HIGH);
	p.aging_ms = 20; /* 100 ms waited = 5 levels: low outranks fresh high */
	l = lease1(q, &p);
	assert_non_null(l);
	assert_int_equal(l->job.id, lo);
	jobq_lease_free(l);
	jobq_close(q);
}

/*
 * An aged low backlog shares with fresh high jobs, one each, and never
 * holds them back by more than a job: 20 low jobs waited 5 levels, then 5
 * high ones arrive. Leased one at a time, the picks alternate low, high,
 * ... until the highs are done, then the lows go on. (Before, aged low
 * jobs outranked high ones outright: the 5 high jobs came 21st to 25th.)
 */
static void aged_low_backlog_alternates_with_high(void **state)
{
	struct jobq *q = qt_connect("agingalt");
	struct jobq_lease_params p = P1;
	uint64_t lows[20], highs[5];
	int order[25]; /* 1: a high job, 0: a low one, in lease order */

	(void)state;
	for (int i = 0; i < 20; i++)
		lows[i] = enq(q, "t", "x", JOBQ_LOW);
	qt_sleep_ms(100);
	for (int i = 0; i < 5; i++)
		highs[i] = enq(q, "t", "x", JOBQ_HIGH);
	p.aging_ms = 20;
	for (int i = 0; i < 25; i++) {
		struct jobq_lease *l = lease1(q, &p);
		int found = -1;

		assert_non_null(l);
		for (int h = 0; h < 5; h++)
			if (l->job.id == highs[h])
				found = h;
		if (found < 0) {
			int lo = -1;

			for (int k = 0; k < 20; k++)
				if (l->job.id == lows[k])
					lo = k;
			assert_true(lo >= 0);
		}
		order[i] = found >= 0;
		jobq_lease_free(l);
	}
	/* low, high, low, high, ... : the 5 highs are leases 2, 4, 6, 8, 10 */
	for (int i = 0; i < 25; i++)
		assert_int_equal(order[i], i < 10 && i % 2 == 1);
	jobq_close(q);
}

static void stale_ack_after_lease_expiry_is_rejected(void **state)
{
	struct jobq *q = qt_connect("stale");
	struct jobq_lease_params p = P1;
	struct jobq_lease *old, *fresh;
	uint64_t id = enq(q, "t", "x", JOBQ_NORMAL);
	size_t reaped = 0;

	(void)state;
	p.lease_ms = 100;
	old = lease1(q, &p);
	assert_non_null(old);
	for (int i = 0; i < 100 && !reaped; i++) {
		qt_sleep_ms(20);
		assert_int_equal(jobq_reap(q, 100, &reaped), JOBQ_OK);
	}
	assert_int_equal(reaped, 1);
	fresh = lease1(q, &P1);
	assert_non_null(fresh);
	assert_int_equal(fresh->job.id, id);
	assert_int_equal(fresh->job.attempt, 2);
	assert_string_not_equal(fresh->token, old->token);
	/* The stalled worker wakes up and acks: rejected, nothing changes. */
	assert_int_equal(settle(q, old, JOBQ_OUT_OK, 1, 0, NULL), JOBQ_SETTLED_STALE);
	assert_int_equal(settle(q, old, JOBQ_OUT_FAIL, 1, 0, "x"), JOBQ_SETTLED_STALE);
	assert_int_equal(settle(q, fresh, JOBQ_OUT_OK, 1, 0, NULL), JOBQ_SETTLED_OK);
	jobq_lease_free(old);
	jobq_lease_free(fresh);
	assert_int_equal(qt_wait_drained(q, 1000), 0);
	jobq_close(q);
}

/* A job leased ahead of a free slot whose lease expires before it was
 * reported started did not run: the reaper gives its attempt back, but
 * counts a stall; the tenth stall dead-letters it (a job that kills its
 * worker before its start is reported cannot loop forever). A start
 * report makes the next expiry count the attempt as usual. */
static void prefetched_lease_expiry_keeps_attempt_until_stall_limit(void **state)
{
	struct jobq *q = qt_connect("stall");
	struct jobq_lease_params p = P1;
	struct jobq_dead_entry *d;
	struct jobq_enqueue_opts o;
	struct jobq_lease *l;
	uint64_t id;
	size_t n, reaped;

	(void)state;
	jobq_enqueue_opts_init(&o);
	o.max_attempts = 1;
	assert_int_equal(jobq_enqueue(q, "t", "x", "", 0, &o, &id), JOBQ_OK);
	p.lease_ms = 100;
	p.max = 2;
	p.prefetch = 2; /* both leased ahead of a free slot */
	for (int round = 1; round <= 10; round++) {
		struct jobq_lease *ls[2];
		int64_t due;

		assert_int_equal(jobq_lease(q, &p, ls, 2, &n, &due), JOBQ_OK);
		assert_int_equal(n, 1);
		assert_true(ls[0]->prefetched);
		assert_int_equal(ls[0]->job.attempt, 1);
		jobq_lease_free(ls[0]);
		reaped = 0;
		for (int i = 0; i < 100 && !reaped; i++) {
			qt_sleep_ms(20);
			assert_int_equal(jobq_reap(q, 100, &reaped), JOBQ_OK);
		}
		assert_int_equal(reaped, 1);
		assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
		assert_int_equal(n, round == 10 ? 1 : 0);
		if (n)
			assert_string_equal(d[0].reason, "lease expired 10 times before the job started");
		free(d);
	}
	/* Back from the dead-letter list, stalls reset; started (reported),
	 * the expiry counts its one attempt. */
	assert_int_equal(jobq_dead_retry(q, id, &n), JOBQ_OK);
	l = lease1(q, &p);
	assert_non_null(l);
	assert_int_equal(jobq__start_append(q, &l, 1), JOBQ_OK);
	{
		redisReply *r;

		assert_int_equal(jobq__read(q, &r), JOBQ_OK);
		assert_int_equal(jobq__start_parse(q, r), JOBQ_OK);
	}
	reaped = 0;
	for (int i = 0; i < 100 && !reaped; i++) {
		qt_sleep_ms(20);
		assert_int_equal(jobq_reap(q, 100, &reaped), JOBQ_OK);
	}
	assert_int_equal(reaped, 1);
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].reason, "lease expired on attempt 1");
	free(d);
	jobq_lease_free(l);
	jobq_close(q);
}

/* A key of another type where a tenant's list or hash belongs (another
 * program writing under our prefix): the enqueue fails with Redis's
 * WRONGTYPE and writes nothing, since Redis keeps a failed script's
 * earlier writes. Other tenants are unaffected. */
static void enqueue_onto_a_foreign_key_writes_nothing(void **state)
{
	struct jobq *q = qt_connect("clash");
	struct jobq_enqueue_opts eo;
	char buf[64];

	(void)state;
	qt_redis_cmd("SET jobq:{clash}:q:t:1 not-a-list");
	qt_redis_cmd("SET jobq:{clash}:t:u not-a-hash");
	jobq_enqueue_opts_init(&eo);
	assert_int_not_equal(jobq_enqueue(q, "t", "x", "p", 1, &eo, NULL), JOBQ_OK);
	assert_non_null(strstr(jobq_errmsg(q), "WRONGTYPE"));
	assert_int_not_equal(jobq_enqueue(q, "u", "x", "p", 1, &eo, NULL), JOBQ_OK);
	assert_non_null(strstr(jobq_errmsg(q), "WRONGTYPE"));
	eo.delay_ms = 60000;
	assert_int_not_equal(jobq_enqueue(q, "u", "x", "p", 1, &eo, NULL), JOBQ_OK);
	qt_redis_get(buf, sizeof(buf), "EXISTS jobq:{clash}:job:1 jobq:{clash}:job:2 jobq:{clash}:job:3");
	assert_string_equal(buf, "0");
	qt_redis_get(buf, sizeof(buf), "SCARD jobq:{clash}:tenants");
	assert_string_equal(buf, "0");
	qt_redis_get(buf, sizeof(buf), "ZCARD jobq:{clash}:delayed");
	assert_string_equal(buf, "0");
	qt_redis_get(buf, sizeof(buf), "LLEN jobq:{clash}:q:u:1");
	assert_string_equal(buf, "0");
	jobq_enqueue_opts_init(&eo);
	assert_int_equal(jobq_enqueue(q, "ok", "x", "p", 1, &eo, NULL), JOBQ_OK);
	qt_redis_get(buf, sizeof(buf), "LLEN jobq:{clash}:q:ok:1");
	assert_string_equal(buf, "1");
	jobq_close(q);
}

static void expect_einval(struct jobq *q, int rc, const char *field)
{
	assert_int_equal(rc, JOBQ_EINVAL);
	if (!strstr(jobq_errmsg(q), field))
		fail_msg("error \"%s\" does not name %s", jobq_errmsg(q), field);
}

static void bad_input_rejected_naming_the_field(void **state)
{
	struct jobq_opts o;
	struct jobq *q;
	struct jobq_enqueue_opts eo;
	struct jobq_new_job b[3];
	struct jobq_tenant_stats *st;
	uint64_t ids[3];
	char long_name[100], err[256];
	size_t n;

	(void)state;
	jobq_opts_init(&o);
	o.redis_url = qt_redis.url;
	o.queue = "bad";
	o.max_payload = 10;
	assert_int_equal(jobq_connect(&o, &q, err, sizeof(err)), JOBQ_OK);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	expect_einval(q, jobq_enqueue(q, "", "x", "", 0, NULL, NULL), "tenant_id");
	expect_einval(q, jobq_enqueue(q, long_name, "x", "", 0, NULL, NULL), "tenant_id");
	expect_einval(q, jobq_enqueue(q, "bad\xff", "x", "", 0, NULL, NULL), "tenant_id");
	expect_einval(q, jobq_enqueue(q, "t\n", "x", "", 0, NULL, NULL), "tenant_id");
	expect_einval(q, jobq_enqueue(q, "t", "", "", 0, NULL, NULL), "type");
	expect_einval(q, jobq_enqueue(q, "t", "\xc0\xaf", "", 0, NULL, NULL), "type");
	expect_einval(q, jobq_enqueue(q, "t", "x", "01234567890", 11, NULL, NULL), "payload");
	jobq_enqueue_opts_init(&eo);
	eo.priority = (enum jobq_priority)7;
	expect_einval(q, jobq_enqueue(q, "t", "x", "", 0, &eo, NULL), "priority");
	jobq_enqueue_opts_init(&eo);
	eo.traceparent = "00-zz";
	expect_einval(q, jobq_enqueue(q, "t", "x", "", 0, &eo, NULL), "traceparent");
	/* A batch with one bad job enqueues nothing and names its index. */
	for (int i = 0; i < 3; i++) {
		b[i] = (struct jobq_new_job){ "t", "x", "p", 1, { 0 } };
		jobq_enqueue_opts_init(&b[i].opts);
	}
	b[1].type = "";
	expect_einval(q, jobq_enqueue_batch(q, b, 3, NULL), "job 1: type");
	/* ... and leaves every id 0, whatever the array held before. */
	memset(ids, 0xff, sizeof(ids));
	expect_einval(q, jobq_enqueue_batch(q, b, 3, ids), "job 1: type");
	for (int i = 0; i < 3; i++)
		assert_int_equal(ids[i], 0);
	/* jobq_check_job applies the same rules without Redis. */
	assert_int_equal(jobq_check_job(q, &b[0]), JOBQ_OK);
	expect_einval(q, jobq_check_job(q, &b[1]), "type must not be empty");
	b[1] = b[0];
	b[1].tenant = long_name;
	expect_einval(q, jobq_check_job(q, &b[1]), "tenant_id must be at most 64 bytes");
	b[1].tenant = "bad\xff";
	expect_einval(q, jobq_check_job(q, &b[1]), "tenant_id must be valid UTF-8");
	b[1] = b[0];
	b[1].payload = "01234567890";
	b[1].payload_len = 11;
	expect_einval(q, jobq_check_job(q, &b[1]), "payload is 11 bytes, over the limit of 10");
	b[1] = b[0];
	b[1].opts.traceparent = "00-zz";
	expect_einval(q, jobq_check_job(q, &b[1]), "traceparent");
	assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
	assert_int_equal(n, 0);
	free(st);
	jobq_close(q);
	/* Bad URLs are user errors with a clear message. */
	o.redis_url = "http://x";
	assert_int_equal(jobq_connect(&o, &q, err, sizeof(err)), JOBQ_EINVAL);
	assert_non_null(strstr(err, "redis://"));
	/* jobq_opts_check applies the same checks without connecting. */
	assert_int_equal(jobq_opts_check(&o, err, sizeof(err)), JOBQ_EINVAL);
	assert_non_null(strstr(err, "redis://"));
	o.redis_url = qt_redis.url;
	assert_int_equal(jobq_opts_check(&o, err, sizeof(err)), JOBQ_OK);
	o.queue = "";
	assert_int_equal(jobq_opts_check(&o, err, sizeof(err)), JOBQ_EINVAL);
	assert_non_null(strstr(err, "queue must not be empty"));
}

static void retry_with_backoff_then_dead_letter_then_retry(void **state)
{
	struct jobq *q = qt_connect("retry");
	struct jobq_enqueue_opts o;
	struct jobq_lease *l[4];
	struct jobq_dead_entry *d;
	struct jobq_tenant_stats *st;
	uint64_t id;
	size_t n, moved;
	int64_t due;

	(void)state;
	jobq_enqueue_opts_init(&o);
	o.max_attempts = 2;
	assert_int_equal(jobq_enqueue(q, "t", "x", "", 0, &o, &id), JOBQ_OK);
	l[0] = lease1(q, &P1);
	assert_int_equal(settle(q, l[0], JOBQ_OUT_FAIL, 1, 300, "boom 1"), JOBQ_SETTLED_RETRY);
	jobq_lease_free(l[0]);
	assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
	assert_int_equal(st[0].delayed, 1);
	free(st);
	/* Not before its backoff; the dequeue reports when it is due. */
	assert_int_equal(jobq_lease(q, &P1, l, 4, &n, &due), JOBQ_OK);
	assert_int_equal(n, 0);
	assert_true(due > 0 && due <= 300);
	qt_sleep_ms((int)due + 20);
	l[0] = lease1(q, &P1);
	assert_non_null(l[0]);
	assert_int_equal(l[0]->job.attempt, 2);
	assert_int_equal(settle(q, l[0], JOBQ_OUT_FAIL, 1, 10, "boom 2"), JOBQ_SETTLED_DEAD);
	jobq_lease_free(l[0]);

	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(d[0].id, id);
	assert_string_equal(d[0].reason, "boom 2");
	assert_int_equal(d[0].attempts, 2);
	/* Redis's clock in whole ms, exactly (it went through a double, which
	 * rounds near 1.8e18 ns: ...924999936), and within a minute of ours. */
	{
		struct timespec ts;
		uint64_t now_ns;

		clock_gettime(CLOCK_REALTIME, &ts);
		now_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		assert_int_equal(d[0].failed_unix_ns % 1000000u, 0);
		assert_true(d[0].failed_unix_ns + 60000000000ull > now_ns &&
			    d[0].failed_unix_ns < now_ns + 60000000000ull);
	}
	free(d);
	/* An attempt count out of range is shown as unknown, not truncated. */
	qt_redis_cmd("HSET jobq:{retry}:job:%llu attempt 4294967298", (unsigned long long)id);
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(d[0].attempts, JOBQ_ATTEMPTS_UNKNOWN);
	free(d);
	qt_redis_cmd("HSET jobq:{retry}:job:%llu attempt 1e30", (unsigned long long)id);
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(d[0].attempts, JOBQ_ATTEMPTS_UNKNOWN);
	free(d);
	assert_int_equal(jobq_dead_retry(q, 999999, &moved), JOBQ_ENOTFOUND);
	assert_int_equal(jobq_dead_retry(q, 0, &moved), JOBQ_OK);
	assert_int_equal(moved, 1);
	l[0] = lease1(q, &P1);
	assert_non_null(l[0]);
	assert_int_equal(l[0]->job.attempt, 1);
	assert_int_equal(settle(q, l[0], JOBQ_OUT_OK, 1, 0, NULL), JOBQ_SETTLED_OK);
	jobq_lease_free(l[0]);
	jobq_close(q);
}

/* Error texts are cut to 128 bytes on a UTF-8 character boundary (a
 * worker in another language may send longer ones than libjobq). */
static void error_text_cut_on_utf8_boundary(void **state)
{
	struct jobq *q = qt_connect("utf8cut");
	struct jobq_enqueue_opts o;
	struct jobq_dead_entry *d;
	struct jobq_lease *l;
	char err[256], id[24], last[256];
	redisReply *r;
	size_t n;

	(void)state;
	/* "x" then 100 two-byte characters: byte 128 starts a character. */
	err[0] = 'x';
	for (int i = 0; i < 100; i++)
		memcpy(err + 1 + 2 * i, "\xc3\xa9", 2);
	err[201] = '\0';
	jobq_enqueue_opts_init(&o);
	o.max_attempts = 2;
	enq(q, "t", "x", JOBQ_NORMAL);
	assert_int_equal(jobq_enqueue(q, "t", "x", "", 0, &o, NULL), JOBQ_OK);
	for (int attempt = 1; attempt <= 2; attempt++) {
		const char *argv[9];

		l = lease1(q, &P1);
		if (attempt == 1) { /* the first job: done */
			assert_int_equal(settle(q, l, JOBQ_OUT_OK, 1, 0, NULL), JOBQ_SETTLED_OK);
			jobq_lease_free(l);
			l = lease1(q, &P1);
		}
		assert_non_null(l);
		snprintf(id, sizeof(id), "%llu", (unsigned long long)l->job.id);
		argv[0] = "0", argv[1] = id, argv[2] = l->token, argv[3] = "fail";
		argv[4] = "1", argv[5] = "0", argv[6] = err, argv[7] = l->job.tenant;
		argv[8] = l->cost_est;
		assert_int_equal(jobq__append_eval(q, JOBQ_S_ACK, 9, argv, NULL), JOBQ_OK);
		assert_int_equal(jobq__read(q, &r), JOBQ_OK);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		assert_string_equal(r->element[0]->str, attempt == 1 ? "retry" : "dead");
		freeReplyObject(r);
		if (attempt == 1) {
			qt_redis_get(last, sizeof(last), "HGET jobq:{utf8cut}:job:%s last_error", id);
			assert_int_equal(strlen(last), 127);
			assert_memory_equal(last, err, 127);
			qt_sleep_ms(20); /* the retry is due */
		}
		jobq_lease_free(l);
	}
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(strlen(d[0].reason), 127);
	assert_memory_equal(d[0].reason, err, 127);
	free(d);
	jobq_close(q);
}

/* `dead retry --all` goes through the whole list: an entry it cannot
 * requeue (here the oldest, in the first chunk) is skipped and counted,
 * not the end of the retry. */
static void dead_retry_all_skips_what_it_cannot_requeue(void **state)
{
	struct jobq *q = qt_connect("deadall");
	static struct jobq_settle s[500];
	struct jobq_lease *l[500];
	struct jobq_lease_params p = P1;
	struct jobq_dead_entry *d;
	size_t n, moved = 0, skipped = 0;
	int64_t due;

	(void)state;
	qt_enqueue_n(q, "t", "x", JOBQ_NORMAL, 1500);
	p.max = 500;
	for (int round = 0; round < 3; round++) {
		assert_int_equal(jobq_lease(q, &p, l, 500, &n, &due), JOBQ_OK);
		assert_int_equal(n, 500);
		for (size_t i = 0; i < n; i++) {
			memset(&s[i], 0, sizeof(s[i]));
			s[i].l = l[i];
			s[i].outcome = JOBQ_OUT_DEAD;
			snprintf(s[i].error, sizeof(s[i].error), "boom");
		}
		assert_int_equal(jobq_settle(q, s, n), JOBQ_OK);
		for (size_t i = 0; i < n; i++)
			jobq_lease_free(l[i]);
	}
	qt_redis_cmd("RPUSH jobq:{deadall}:dead garbage-id"); /* the oldest entry */
	assert_int_equal(jobq_dead_retry_all(q, &moved, &skipped), JOBQ_OK);
	assert_int_equal(moved, 1500);
	assert_int_equal(skipped, 1);
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(n, 1);
	free(d);
	assert_int_equal(in_flight_of(q, "t"), 0);
	assert_int_equal(jobq_dead_retry(q, 0, &moved), JOBQ_OK); /* nothing left to move */
	assert_int_equal(moved, 0);
	/* One entry by id: in the list but not requeueable is not "not found". */
	qt_redis_cmd("HSET jobq:{deadall}:job:4242 tenant_id t");
	qt_redis_cmd("LPUSH jobq:{deadall}:dead 4242");
	assert_int_equal(jobq_dead_retry(q, 4242, &moved), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_errmsg(q), "cannot be requeued"));
	jobq_close(q);
}

static void malformed_document_goes_to_dead_letter(void **state)
{
	struct jobq *q = qt_connect("mal");
	struct jobq_dead_entry *d;
	struct jobq_lease *l;
	uint64_t good;
	size_t n;

	(void)state;
	good = enq(q, "t", "x", JOBQ_NORMAL);
	/* A hand-written document without type, queued ahead of the good job. */
	qt_redis_cmd("HSET jobq:{mal}:job:9001 tenant_id t priority normal payload p");
	qt_redis_cmd("LPUSH jobq:{mal}:q:t:1 9001");
	/* A garbage id, too. */
	qt_redis_cmd("LPUSH jobq:{mal}:q:t:1 not-a-job");
	l = lease1(q, &P1);
	assert_non_null(l);
	assert_int_equal(l->job.id, good);
	jobq_lease_free(l);
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(n, 2);
	/* Newest first: the garbage id was buried first. */
	assert_int_equal(d[0].id, 9001);
	assert_non_null(strstr(d[0].reason, "malformed job document (type)"));
	assert_int_equal(d[1].id, 0);
	assert_non_null(strstr(d[1].reason, "malformed"));
	free(d);
	/* Invalid UTF-8 in the tenant passes the script but not the client. */
	qt_redis_cmd("HSET jobq:{mal}:job:9002 tenant_id %b type x priority normal payload p enqueued_at_ns 1 max_attempts 3",
		     "u\xff", (size_t)2);
	qt_redis_cmd("RPUSH jobq:{mal}:q:%b:1 9002", "u\xff", (size_t)2);
	qt_redis_cmd("ZADD jobq:{mal}:ready 0 %b", "u\xff", (size_t)2);
	l = lease1(q, &P1);
	assert_non_null(l);
	assert_int_equal(l->job.id, 9002);
	assert_true(l->malformed);
	assert_string_equal(l->job.tenant, "?");
	assert_int_equal(settle(q, l, JOBQ_OUT_DEAD, 0, 0, l->reason), JOBQ_SETTLED_DEAD);
	jobq_lease_free(l);
	jobq_close(q);
}

static long long redis_int(const char *fmt, const char *arg)
{
	char buf[64];

	qt_redis_get(buf, sizeof(buf), fmt, arg);
	return atoll(buf);
}

/* Redis does not roll back a script that fails halfway: dequeue must not
 * fail after its first write, whatever state it finds, or jobs end up
 * popped but not in flight. A ghost tenant (in ready, no state, no work),
 * non-finite tenant numbers, a job id whose key is not a hash: the jobs
 * that can be leased are, and counted in flight. */
static void dequeue_survives_inconsistent_state(void **state)
{
	struct jobq *q = qt_connect("ghost");
	struct jobq_lease_params p = P1;
	struct jobq_lease *l[8];
	struct jobq_dead_entry *d;
	char buf[64];
	size_t n;
	int64_t due;

	(void)state;
	qt_redis_cmd("ZADD jobq:{ghost}:ready -1 ghost");
	for (int i = 0; i < 3; i++)
		enq(q, "t", "x", JOBQ_NORMAL);
	p.max = 8;
	if (jobq_lease(q, &p, l, 8, &n, &due))
		fail_msg("dequeue with a ghost tenant in ready: %s", jobq_errmsg(q));
	assert_int_equal(n, 3);
	assert_int_equal(in_flight_of(q, "t"), 3);
	qt_redis_get(buf, sizeof(buf), "ZSCORE jobq:{ghost}:ready ghost");
	assert_string_equal(buf, ""); /* dropped from ready */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(settle(q, l[i], JOBQ_OUT_OK, 1, 0, NULL), JOBQ_SETTLED_OK);
		jobq_lease_free(l[i]);
	}
	/* Non-finite numbers in the tenant's state; a key of another type
	 * queued as a job ahead of a good one. */
	qt_redis_cmd("HSET jobq:{ghost}:t:u weight nan cost inf inflight -inf");
	enq(q, "u", "x", JOBQ_NORMAL);
	qt_redis_cmd("SET jobq:{ghost}:job:777 not-a-hash");
	qt_redis_cmd("LPUSH jobq:{ghost}:q:u:1 777");
	if (jobq_lease(q, &p, l, 8, &n, &due))
		fail_msg("dequeue with bad tenant numbers: %s", jobq_errmsg(q));
	assert_int_equal(n, 1);
	assert_string_equal(l[0]->job.tenant, "u");
	assert_int_equal(redis_int("HGET jobq:{ghost}:t:%s inflight", "u"), 1);
	assert_int_equal(settle(q, l[0], JOBQ_OUT_OK, 1, 0, NULL), JOBQ_SETTLED_OK);
	jobq_lease_free(l[0]);
	assert_int_equal(jobq_dead_list(q, 10, &d, &n), JOBQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(d[0].id, 777);
	assert_string_equal(d[0].reason, "not a job document (key of another type)");
	free(d);
	assert_int_equal(qt_wait_drained(q, 1000), 0);
	jobq_close(q);
}

/* A tenant list full of garbage ids costs one call a bounded amount of
 * work (100 dead-lettered per call); the good job behind them is leased
 * once they are gone. */
static void malformed_documents_are_buried_in_bounded_steps(void **state)
{
	struct jobq *q = qt_connect("manybad");
	struct jobq_lease *l[2];
	uint64_t good;
	size_t n;
	int64_t due;

	(void)state;
	for (int i = 0; i < 250; i++)
		qt_redis_cmd("RPUSH jobq:{manybad}:q:t:1 garbage-%d", i);
	good = enq(q, "t", "x", JOBQ_NORMAL); /* activates t, behind the garbage */
	assert_int_equal(jobq_lease(q, &P1, l, 2, &n, &due), JOBQ_OK);
	assert_int_equal(n, 0);
	assert_int_equal(redis_int("LLEN jobq:{%s}:dead", "manybad"), 100);
	assert_int_equal(jobq_lease(q, &P1, l, 2, &n, &due), JOBQ_OK);
	assert_int_equal(n, 0);
	assert_int_equal(redis_int("LLEN jobq:{%s}:dead", "manybad"), 200);
	assert_int_equal(jobq_lease(q, &P1, l, 2, &n, &due), JOBQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(l[0]->job.id, good);
	assert_int_equal(redis_int("LLEN jobq:{%s}:dead", "manybad"), 250);
	jobq_lease_free(l[0]);
	jobq_close(q);
}

/* One bad tenant record (an id over 64 bytes in the tenants set, a weight
 * that is not a number) is skipped and counted; the rest is reported. */
static void stats_skip_bad_tenant_records(void **state)
{
	struct jobq *q = qt_connect("badrec");
	struct jobq_tenant_stats *st;
	char long_name[71];
	size_t n, skipped = 0;

	(void)state;
	enq(q, "good", "x", JOBQ_NORMAL);
	memset(long_name, 'a', 70);
	long_name[70] = '\0';
	qt_redis_cmd("SADD jobq:{badrec}:tenants %s", long_name);
	qt_redis_cmd("SADD jobq:{badrec}:tenants w");
	qt_redis_cmd("HSET jobq:{badrec}:t:w weight abc");
	if (jobq_stats_ex(q, &st, &n, &skipped))
		fail_msg("stats with bad tenant records: %s", jobq_errmsg(q));
	assert_int_equal(n, 1);
	assert_string_equal(st[0].tenant, "good");
	assert_int_equal(st[0].depth[JOBQ_NORMAL], 1);
	assert_int_equal(skipped, 2);
	if (!strstr(jobq_errmsg(q), "skipped bad record for tenant"))
		fail_msg("no word on the skipped records: %s", jobq_errmsg(q));
	free(st);
	assert_int_equal(jobq_stats(q, &st, &n), JOBQ_OK);
	assert_int_equal(n, 1);
	free(st);
	jobq_close(q);
}

static void cap_limits_leases_until_ack(void **state)
{
	struct jobq *q = qt_connect("cap");
	struct jobq_lease_params p = P1;
	struct jobq_lease *l[8];
	size_t n;
	int64_t due;

	(void)state;
	assert_int_equal(jobq_tenant_set_cap(q, "t", 2), JOBQ_OK);
	for (int i = 0; i < 5; i++)
		enq(q, "t", "x", JOBQ_NORMAL);
	p.max = 8;
	assert_int_equal(jobq_lease(q, &p, l, 8, &n, &due), JOBQ_OK);
	assert_int_equal(n, 2);
	assert_int_equal(jobq_lease(q, &p, l + 2, 6, &n, &due), JOBQ_OK);
	assert_int_equal(n, 0);
	assert_int_equal(settle(q, l[0], JOBQ_OUT_OK, 1, 0, NULL), JOBQ_SETTLED_OK);
	assert_int_equal(jobq_lease(q, &p, l + 2, 6, &n, &due), JOBQ_OK);
	assert_int_equal(n, 1);
	/* Raising the cap re-admits the tenant at once. */
	assert_int_equal(jobq_tenant_set_cap(q, "t", 10), JOBQ_OK);
	assert_int_equal(jobq_lease(q, &p, l + 3, 5, &n, &due), JOBQ_OK);
	assert_int_equal(n, 2);
	for (int i = 0; i < 5; i++)
		jobq_lease_free(l[i]);
	jobq_close(q);
}

/* A tenant in ready whose cap is lowered to its in-flight count gets no
 * further lease (the cap is checked before a job is popped). */
static void lowered_cap_allows_no_extra_lease(void **state)
{
	struct jobq *q = qt_connect("lowcap");
	struct jobq_lease_params p = P1;
	struct jobq_lease *l[8];
	size_t n;
	int64_t due;

	(void)state;
	for (int i = 0; i < 6; i++)
		enq(q, "t", "x", JOBQ_NORMAL);
	p.max = 2;
	assert_int_equal(jobq_lease(q, &p, l, 8, &n, &due), JOBQ_OK);
	assert_int_equal(n, 2); /* no cap: t stays in ready with 4 more */
	assert_int_equal(jobq_tenant_set_cap(q, "t", 2), JOBQ_OK);
	assert_int_equal(jobq_lease(q, &p, l + 2, 6, &n, &due), JOBQ_OK);
	assert_int_equal(n, 0);
	assert_int_equal(in_flight_of(q, "t"), 2);
	assert_int_equal(settle(q, l[0], JOBQ_OUT_OK, 1, 0, NULL), JOBQ_SETTLED_OK);
	assert_int_equal(jobq_lease(q, &p, l + 2, 6, &n, &due), JOBQ_OK);
	assert_int_equal(n, 1); /* back under the cap: one slot */
	assert_int_equal(in_flight_of(q, "t"), 2);
	for (int i = 0; i < 3; i++)
		jobq_lease_free(l[i]);
	jobq_close(q);
}

/* Jobs of a tenant with a cap are leased only for free slots: a worker's
 * prefetch buffer never holds capped jobs (they would count against the
 * cap without running). */
static void capped_tenant_is_not_prefetched(void **state)
{
	struct jobq *q = qt_connect("cappf");
	struct jobq_lease_params p = P1;
	struct jobq_lease *l[8];
	size_t n;
	int64_t due;

	(void)state;
	assert_int_equal(jobq_tenant_set_cap(q, "c", 5), JOBQ_OK);
	for (int i = 0; i < 5; i++)
		enq(q, "c", "x", JOBQ_NORMAL);
	p.max = 4;
	p.prefetch = 3;
	assert_int_equal(jobq_lease(q, &p, l, 8, &n, &due), JOBQ_OK);
	assert_int_equal(n, 1);
	assert_false(l[0]->prefetched);
	jobq_lease_free(l[0]);
	/* Uncapped tenants are prefetched as asked. */
	for (int i = 0; i < 5; i++)
		enq(q, "u", "x", JOBQ_NORMAL);
	assert_int_equal(jobq_tenant_set_cap(q, "c", 0), JOBQ_OK);
	assert_int_equal(jobq_lease(q, &p, l, 8, &n, &due), JOBQ_OK);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(l[i]->prefetched, i >= 1);
		jobq_lease_free(l[i]);
	}
	jobq_close(q);
}

/* SFQ: a small tenant arriving after a flood is served at once; weights
 * split dispatches in proportion when jobs cost the same. */
static void sfq_new_tenant_neither_waits_nor_banks(void **state)
{
	struct jobq *q = qt_connect("sfq");
	struct jobq_new_job j[500];
	int pos_small[5], ns = 0;

	(void)state;
	for (int i = 0; i < 500; i++) {
		j[i] = (struct jobq_new_job){ "big", "x", "", 0, { 0 } };
		jobq_enqueue_opts_init(&j[i].opts);
	}
	assert_int_equal(jobq_enqueue_batch(q, j, 500, NULL), JOBQ_OK);
	/* big runs alone for a while (its virtual time advances)... */
	for (int i = 0; i < 100; i++) {
		struct jobq_lease *l = lease1(q, &P1);

		settle(q, l, JOBQ_OUT_OK, 1, 0, NULL);
		jobq_lease_free(l);
	}
	/* ...then small arrives: it must be interleaved from the start, not
	 * wait for big (no penalty), and not get 100 dispatches in a row
	 * (no banked credit). */
	for (int i = 0; i < 5; i++)
		enq(q, "small", "x", JOBQ_NORMAL);
	for (int i = 0; i < 12; i++) {
		struct jobq_lease *l = lease1(q, &P1);

		if (!strcmp(l->job.tenant, "small"))
			pos_small[ns++] = i;
		settle(q, l, JOBQ_OUT_OK, 1, 0, NULL);
		jobq_lease_free(l);
	}
	assert_int_equal(ns, 5);
	assert_true(pos_small[0] <= 1);
	for (int i = 1; i < 5; i++)
		assert_true(pos_small[i] - pos_small[i - 1] <= 3);
	jobq_close(q);
}

static void sfq_charges_actual_duration(void **state)
{
	struct jobq *q = qt_connect("dur");
	static struct jobq_new_job j[2300];
	double time_a = 0, time_b = 0;
	int na = 0, nb = 0;

	(void)state;
	/* Both tenants stay backlogged throughout: a 300 jobs, b 2000. */
	for (int i = 0; i < 2300; i++) {
		j[i] = (struct jobq_new_job){ i < 300 ? "a" : "b", "x", "", 0, { 0 } };
		jobq_enqueue_opts_init(&j[i].opts);
	}
	assert_int_equal(jobq_enqueue_batch(q, j, 2300, NULL), JOBQ_OK);
	assert_int_equal(jobq_tenant_set_weight(q, "b", 2), JOBQ_OK);
	/* a's jobs take 10 ms, b's 1 ms; b has twice a's weight: over time,
	 * b should get 2/3 of the worker time, i.e. ~20 jobs per a job. */
	for (int i = 0; i < 600; i++) {
		struct jobq_lease *l = lease1(q, &P1);
		int is_a = !strcmp(l->job.tenant, "a");
		double ms = is_a ? 10 : 1;

		if (i >= 100) { /* after the cost estimates settled */
			*(is_a ? &time_a : &time_b) += ms;
			*(is_a ? &na : &nb) += 1;
		}
		settle(q, l, JOBQ_OUT_OK, ms, 0, NULL);
		jobq_lease_free(l);
	}
	/* share of b = 2/3 within 5 % */
	{
		double share = time_b / (time_a + time_b);

		if (share < 0.6667 * 0.95 || share > 0.6667 * 1.05)
			fail_msg("b's time share %.3f (a %d jobs %.0f ms, b %d jobs %.0f ms), want 0.667 +-5%%",
				 share, na, time_a, nb, time_b);
	}
	jobq_close(q);
}

static void auth_with_user_and_password(void **state)
{
	struct jobq_opts o;
	struct jobq *q;
	char url[128], err[256];

	(void)state;
	qt_redis_cmd("ACL SETUSER app on >s3cret ~* &* +@all");
	jobq_opts_init(&o);
	o.queue = "auth";
	snprintf(url, sizeof(url), "redis://app:s3cret@127.0.0.1:%d", qt_redis.port);
	o.redis_url = url;
	assert_int_equal(jobq_connect(&o, &q, err, sizeof(err)), JOBQ_OK);
	assert_int_equal(jobq_enqueue(q, "t", "x", "", 0, NULL, NULL), JOBQ_OK);
	jobq_close(q);
	snprintf(url, sizeof(url), "redis://app:wrong@127.0.0.1:%d", qt_redis.port);
	assert_int_equal(jobq_connect(&o, &q, err, sizeof(err)), JOBQ_EREDIS);
	if (!strstr(err, "AUTH"))
		fail_msg("bad password error does not say AUTH: %s", err);
	/* Nothing listening: a clear connect error, no hang. */
	o.redis_url = "redis://127.0.0.1:1";
	assert_int_equal(jobq_connect(&o, &q, err, sizeof(err)), JOBQ_EREDIS);
	assert_non_null(strstr(err, "connect 127.0.0.1:1"));
}

/* The document of job id belongs to tenant (the id answered is the job's). */
static void assert_job_tenant(uint64_t id, const char *tenant)
{
	char got[128];

	qt_redis_get(got, sizeof(got), "HGET jobq:{pipe}:job:%llu tenant_id", (unsigned long long)id);
	if (strcmp(got, tenant))
		fail_msg("job %llu belongs to \"%s\", want \"%s\" (a reply was read for the wrong command)",
			 (unsigned long long)id, got, tenant);
}

static void batch(struct jobq_new_job *j, size_t n, const char *tenant)
{
	for (size_t i = 0; i < n; i++) {
		j[i] = (struct jobq_new_job){ tenant, "x", "", 0, { 0 } };
		jobq_enqueue_opts_init(&j[i].opts);
	}
}

/* A pipelined batch reads every reply it caused: after a NOSCRIPT (script
 * cache flushed) or an error reply (OOM) partway, later calls get their own
 * answers, and each job's result is its own. */
static void pipelined_batch_reads_every_reply(void **state)
{
	struct jobq *q = qt_connect("pipe");
	static struct jobq_new_job j[600];
	static uint64_t ids[600];
	char seq[32], tenant[32];
	uint64_t id;

	(void)state;
	batch(j, 3, "a");
	assert_int_equal(jobq_enqueue_batch(q, j, 3, ids), JOBQ_OK);
	/* Redis forgets the scripts between two batches: every job of the
	 * next batch (two pipelined chunks) is answered NOSCRIPT at first. */
	qt_redis_cmd("SCRIPT FLUSH");
	for (size_t i = 0; i < 600; i++) {
		snprintf(tenant, sizeof(tenant), "b%zu", i % 7);
		j[i] = (struct jobq_new_job){ strdup(tenant), "x", "", 0, { 0 } };
		jobq_enqueue_opts_init(&j[i].opts);
	}
	if (jobq_enqueue_batch(q, j, 600, ids))
		fail_msg("batch after SCRIPT FLUSH: %s", jobq_errmsg(q));
	for (size_t i = 0; i < 600; i++) {
		assert_true(ids[i] > 3);
		assert_job_tenant(ids[i], j[i].tenant);
		free((char *)j[i].tenant);
	}
	assert_int_equal(jobq_enqueue(q, "single", "x", "", 0, NULL, &id), JOBQ_OK);
	assert_job_tenant(id, "single");
	qt_redis_get(seq, sizeof(seq), "GET jobq:{pipe}:seq");
	assert_int_equal(strtoull(seq, NULL, 10), id);
	assert_int_equal(id, 604);

	/* Out of memory: every job of the batch is refused; none is reported
	 * enqueued, and the connection is still in step afterwards. */
	qt_redis_cmd("CONFIG SET maxmemory 1");
	batch(j, 300, "oom");
	memset(ids, 0xff, sizeof(ids));
	assert_int_not_equal(jobq_enqueue_batch(q, j, 300, ids), JOBQ_OK);
	if (!strstr(jobq_errmsg(q), "0 of 300 jobs enqueued") || !strstr(jobq_errmsg(q), "OOM"))
		fail_msg("OOM batch error: %s", jobq_errmsg(q));
	for (size_t i = 0; i < 300; i++)
		assert_int_equal(ids[i], 0);
	assert_int_not_equal(jobq_enqueue(q, "oom", "x", "", 0, NULL, &id), JOBQ_OK);
	if (!strstr(jobq_errmsg(q), "OOM"))
		fail_msg("single enqueue under OOM: %s", jobq_errmsg(q));
	qt_redis_cmd("CONFIG SET maxmemory 0");
	assert_int_equal(jobq_enqueue(q, "after", "x", "", 0, NULL, &id), JOBQ_OK);
	assert_int_equal(id, 605);
	assert_job_tenant(id, "after");
	batch(j, 2, "after2");
	assert_int_equal(jobq_enqueue_batch(q, j, 2, ids), JOBQ_OK);
	assert_int_equal(ids[0], 606);
	assert_int_equal(ids[1], 607);
	assert_job_tenant(607, "after2");
	jobq_close(q);
}

/* The lease state (token hash `lease`, prefetch set `pf`, deadlines in
 * `leases`) is written once per dequeue call and removed by every way a
 * lease ends; none may linger. A released job gives no attempt back
 * because none was taken: its next lease is attempt 1 again. */
static void settling_leaves_no_lease_state(void **state)
{
	struct jobq *q = qt_connect("lst");
	struct jobq_lease_params p3 = { 4, 30000, 0, 1.0, 3 }; /* 3 of 4 prefetched */
	struct jobq_lease *l[8];
	struct jobq_settle s[4];
	char buf[64];
	size_t n;
	int64_t due;

	(void)state;
	for (int i = 0; i < 4; i++)
		enq(q, "t", "x", JOBQ_NORMAL);
	assert_int_equal(jobq_lease(q, &p3, l, 8, &n, &due), JOBQ_OK);
	assert_int_equal(n, 4);
	qt_redis_get(buf, sizeof(buf), "HLEN jobq:{lst}:lease");
	assert_string_equal(buf, "4");
	qt_redis_get(buf, sizeof(buf), "SCARD jobq:{lst}:pf");
	assert_string_equal(buf, "3");
	{
		struct jobq_lease *started[1] = { l[1] };
		redisReply *r;

		assert_int_equal(jobq__start_append(q, started, 1), JOBQ_OK);
		assert_int_equal(jobq__read(q, &r), JOBQ_OK);
		assert_int_equal(jobq__start_parse(q, r), JOBQ_OK);
	}
	qt_redis_get(buf, sizeof(buf), "SCARD jobq:{lst}:pf");
	assert_string_equal(buf, "2");
	memset(s, 0, sizeof(s));
	for (int i = 0; i < 4; i++) {
		s[i].l = l[i];
		s[i].duration_ms = 1;
	}
	s[0].outcome = JOBQ_OUT_OK;
	s[1].outcome = JOBQ_OUT_FAIL;
	s[1].delay_ms = 60000;
	s[2].outcome = JOBQ_OUT_RELEASE;
	s[3].outcome = JOBQ_OUT_DEAD;
	snprintf(s[3].error, sizeof(s[3].error), "gave up");
	assert_int_equal(jobq_settle(q, s, 4), JOBQ_OK);
	assert_int_equal(s[0].result, JOBQ_SETTLED_OK);
	assert_int_equal(s[1].result, JOBQ_SETTLED_RETRY);
	assert_int_equal(s[2].result, JOBQ_SETTLED_RELEASED);
	assert_int_equal(s[3].result, JOBQ_SETTLED_DEAD);
	qt_redis_get(buf, sizeof(buf), "EXISTS jobq:{lst}:lease jobq:{lst}:pf jobq:{lst}:leases");
	assert_string_equal(buf, "0");
	qt_redis_get(buf, sizeof(buf), "HGET jobq:{lst}:job:%llu attempt", (unsigned long long)l[1]->job.id);
	assert_string_equal(buf, "1"); /* the failed attempt counts */
	qt_redis_get(buf, sizeof(buf), "HGET jobq:{lst}:job:%llu attempt", (unsigned long long)l[3]->job.id);
	assert_string_equal(buf, "1");
	for (int i = 0; i < 4; i++)
		jobq_lease_free(l[i]);
	/* The released job is the only ready one: still on its first attempt. */
	l[0] = lease1(q, &P1);
	assert_non_null(l[0]);
	assert_int_equal(l[0]->job.attempt, 1);
	assert_int_equal(settle(q, l[0], JOBQ_OUT_OK, 1, 0, NULL), JOBQ_SETTLED_OK);
	jobq_lease_free(l[0]);
	qt_redis_get(buf, sizeof(buf), "EXISTS jobq:{lst}:lease jobq:{lst}:pf jobq:{lst}:leases");
	assert_string_equal(buf, "0");
	jobq_close(q);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(enqueue_lease_ack_roundtrip),
		cmocka_unit_test(priorities_strict_then_fifo),
		cmocka_unit_test(aging_serves_old_low_priority),
		cmocka_unit_test(aged_low_backlog_alternates_with_high),
		cmocka_unit_test(stale_ack_after_lease_expiry_is_rejected),
		cmocka_unit_test(prefetched_lease_expiry_keeps_attempt_until_stall_limit),
		cmocka_unit_test(bad_input_rejected_naming_the_field),
		cmocka_unit_test(retry_with_backoff_then_dead_letter_then_retry),
		cmocka_unit_test(malformed_document_goes_to_dead_letter),
		cmocka_unit_test(error_text_cut_on_utf8_boundary),
		cmocka_unit_test(dead_retry_all_skips_what_it_cannot_requeue),
		cmocka_unit_test(dequeue_survives_inconsistent_state),
		cmocka_unit_test(malformed_documents_are_buried_in_bounded_steps),
		cmocka_unit_test(stats_skip_bad_tenant_records),
		cmocka_unit_test(cap_limits_leases_until_ack),
		cmocka_unit_test(capped_tenant_is_not_prefetched),
		cmocka_unit_test(lowered_cap_allows_no_extra_lease),
		cmocka_unit_test(sfq_new_tenant_neither_waits_nor_banks),
		cmocka_unit_test(sfq_charges_actual_duration),
		cmocka_unit_test(auth_with_user_and_password),
		cmocka_unit_test(pipelined_batch_reads_every_reply),
		cmocka_unit_test(enqueue_onto_a_foreign_key_writes_nothing),
		cmocka_unit_test(settling_leaves_no_lease_state),
	};
	int rc = qt_init(argc > 0 ? argv[0] : "");

	if (rc)
		return rc;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	qt_fini();
	return rc ? 1 : 0;
}
