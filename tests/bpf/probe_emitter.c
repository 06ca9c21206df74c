/*
 * probe_emitter.c - fires the jobq:* USDT probes (queue/jobq_probes.h) with
 * known values, standing in for a libjobq worker in the BPF tests and the
 * benchmark. Prints the truth, one line per event, for the tests to check.
 *
 *   probe_emitter [--wait-attach-ms N] [--queue Q] [--first-id N]
 *                 [--finish-thread] [--v1-enqueue] [--twin-queue Q2] [--no-finish]
 *                 [--finish-queue-copy] [--v2-sites] [--lie-digest TENANT]
 *                 [--threads N] GROUP...
 *     GROUP = tenant,type,priority,count,sleep_us,wait_ms,fail_every
 *     For each job: enqueue, start, sleep sleep_us, finish (failed when
 *     fail_every > 0 and the job's number in its group is a multiple of
 *     it, then retry and dead_letter alternately). enqueued_unix_ns is
 *     wall-clock now - wait_ms (a negative wait_ms: an enqueue time in the
 *     future, as a producer with a skewed clock makes; its truth lines
 *     then carry wait 0). Per group: one reap and one depth report.
 *     Job id i has trace flags i % 2 and, unless i % 3 == 0, a producer
 *     span 0xbee00 + i as the enqueue span's parent. --v1-enqueue fires
 *     the enqueue probe of contract version 1 (9 arguments: no parent, no
 *     flags) from a site of its own; --v2-sites likewise fires enqueue and
 *     start sites of version 2 (11 arguments: no series digest).
 *     --lie-digest TENANT: the series digest of enqueue and start names
 *     TENANT instead of the job's own (a process lying about its series).
 *     --twin-queue Q2: every job has a twin
 *     with the same id in queue Q2 (type "twin", same tenant) that starts
 *     after it and finishes before it (then the job sleeps again), so a
 *     pairing by (pid, job id) alone mixes them up. --no-finish: jobs start
 *     and never finish (a worker killed mid-job). --threads N: N threads,
 *     thread t pinned to the t-th CPU this process may use (round robin),
 *     each running every group at once with the others (same tenants and
 *     types: the same series from several CPUs), its job ids starting at
 *     first-id + t * 10^9.
 *   probe_emitter --bench N [--rate JOBS_PER_S] [--wait-attach-ms N]
 *     N no-op jobs (start + finish probes only), as fast as possible or
 *     paced to --rate; prints
 *     "bench jobs=N cpu_ns=C wall_ns=W".
 * Built as a program, or with -DEMITTER_LIB into a shared library whose
 * emitter_main() a two-line program calls (tests/bpf/emitter_shim.c).
 *
 * Output lines (tab-separated):
 *   job id tenant type prio status attempt wait_ns wait_hi_ns dur_lo_ns
 *       dur_hi_ns trace_hi trace_lo span_id parent_span_id trace_flags queue
 *   depth queue tenant high normal low oldest_unix_ns in_flight delayed
 *   reap tenant type queue / retry tenant type queue / dead tenant type queue
 * [wait_ns, wait_hi_ns] and [dur_lo, dur_hi] bracket the wait and the
 * duration the kernel can measure (clock readings right around the probes).
 */
#define JOBQ_PROBES_IMPL
#include "queue/jobq_probes.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

#ifndef JOBQ_NO_PROBES
static int all_enabled(void)
{
	return jobq_enqueue_semaphore && jobq_start_semaphore && jobq_finish_semaphore &&
	       jobq_retry_semaphore && jobq_dead_letter_semaphore && jobq_reap_semaphore &&
	       jobq_depth_semaphore;
}
#endif

/* Waits until an observer turned the probes on; 0 on success. */
static int wait_attach(long ms, int need_all)
{
#ifndef JOBQ_NO_PROBES
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)ms * UINT64_C(1000000);

	while (!(need_all ? all_enabled() : (jobq_start_semaphore && jobq_finish_semaphore))) {
		if (now_ns(CLOCK_MONOTONIC) > deadline) {
			fprintf(stderr, "probe_emitter: no observer attached within %ld ms\n", ms);
			return -1;
		}
		sleep_us(1000);
	}
#else
	(void)ms;
	(void)need_all;
#endif
	return 0;
}

/* --finish-thread: the finish probe fires on another thread than the start
 * (as a worker may do), so the kernel must pair them by (pid, job id). */
static int finish_on_other_thread;

/* --v1-enqueue: an enqueue site of contract version 1 (9 arguments). */
static int v1_enqueue;

/* --v2-sites: enqueue and start sites of contract version 2 (11 arguments). */
static int v2_sites;

/* --lie-digest: the tenant the series digest of enqueue and start names. */
static const char *lie_digest;

/* --no-finish: the finish probe never fires. */
static int no_finish;

/* --finish-queue-copy: the finish passes the queue name in another buffer
 * than the start's (libjobq never does): it must pair with nothing. */
static int finish_queue_copy;

/* --twin-queue: a second queue whose jobs reuse the first queue's ids. */
static const char *twin_queue;

struct finish_args {
	const char *queue, *tenant, *type, *err;
	uint64_t id;
	int prio, status;
};

static void *fire_finish(void *p)
{
	const struct finish_args *f = p;

	if (JOBQ_PROBE_ENABLED(finish))
		JOBQ_PROBE_FINISH(f->queue, f->tenant, f->type, f->id, f->prio, f->status, 1, f->err);
	(void)f;
	return NULL;
}

struct group {
	char tenant[JOBQ_TENANT_MAX + 1];
	char type[JOBQ_TYPE_MAX + 1];
	int prio;
	long count, sleep_us, wait_ms, fail_every;
};

static int parse_group(const char *s, struct group *g)
{
	char t[256], ty[256];
	int n = 0;

	memset(g, 0, sizeof(*g));
	if (sscanf(s, "%255[^,],%255[^,],%d,%ld,%ld,%ld,%ld%n", t, ty, &g->prio, &g->count,
		   &g->sleep_us, &g->wait_ms, &g->fail_every, &n) != 7 ||
	    s[n] != '\0' || strlen(t) > JOBQ_TENANT_MAX || strlen(ty) > JOBQ_TYPE_MAX ||
	    g->prio < 0 || g->prio >= JOBQ_PRIO_COUNT || g->count < 0 || g->sleep_us < 0 ||
	    g->fail_every < 0) {
		fprintf(stderr, "probe_emitter: bad group '%s' "
				"(want tenant,type,priority,count,sleep_us,wait_ms,fail_every)\n", s);
		return -1;
	}
	strcpy(g->tenant, t);
	strcpy(g->type, ty);
	return 0;
}

static void run_group(const char *queue, const struct group *g, uint64_t *next_id)
{
	uint64_t enq_ns;

	for (long j = 1; j <= g->count; j++) {
		uint64_t id = (*next_id)++;
		uint64_t th = 0x1000 + id, tl = id * 7 + 1, sp = 0xabc00 + id;
		uint64_t par = id % 3 ? 0xbee00 + id : 0;
		int fl = (int)(id % 2);
		int failed = g->fail_every > 0 && j % g->fail_every == 0;
		int status = failed ? JOBQ_STATUS_FAILED : JOBQ_STATUS_SUCCESS;
		const char *err = failed ? "boom: handler failed" : "";
		uint64_t s0, s1, f0, f1, r1;
		uint64_t wait_ns = g->wait_ms > 0 ? (uint64_t)g->wait_ms * UINT64_C(1000000) : 0;

		enq_ns = g->wait_ms >= 0 ? now_ns(CLOCK_REALTIME) - wait_ns
					 : now_ns(CLOCK_REALTIME) + (uint64_t)-g->wait_ms * UINT64_C(1000000);
		if (JOBQ_PROBE_ENABLED(enqueue) && !v1_enqueue && !v2_sites)
			JOBQ_PROBE_ENQUEUE(queue, g->tenant, g->type, id, g->prio, enq_ns, th, tl, sp,
					   par, fl,
					   jobq_series_digest(queue, lie_digest ? lie_digest : g->tenant,
							      g->type));
#ifndef JOBQ_NO_PROBES
		else if (JOBQ_PROBE_ENABLED(enqueue) && v2_sites)
			STAP_PROBE11(jobq, enqueue, queue, g->tenant, g->type, id, g->prio, enq_ns, th,
				     tl, sp, par, fl);
		else if (JOBQ_PROBE_ENABLED(enqueue))
			STAP_PROBE9(jobq, enqueue, queue, g->tenant, g->type, id, g->prio, enq_ns, th,
				    tl, sp);
#endif
		if (v1_enqueue) { /* what a version-1 producer means: no parent, sampled */
			par = 0;
			fl = 1;
		}
		s0 = now_ns(CLOCK_MONOTONIC);
		if (JOBQ_PROBE_ENABLED(start) && !v2_sites)
			JOBQ_PROBE_START(queue, g->tenant, g->type, id, g->prio, enq_ns, th, tl, sp,
					 1, fl,
					 jobq_series_digest(queue, lie_digest ? lie_digest : g->tenant,
							    g->type));
#ifndef JOBQ_NO_PROBES
		else if (JOBQ_PROBE_ENABLED(start))
			STAP_PROBE11(jobq, start, queue, g->tenant, g->type, id, g->prio, enq_ns, th,
				     tl, sp, 1, fl);
#endif
		s1 = now_ns(CLOCK_MONOTONIC);
		r1 = now_ns(CLOCK_REALTIME);
		if (twin_queue) {
			uint64_t ts0, ts1, tf0, tf1, tr1, tsp = sp + 0x100000;

			if (JOBQ_PROBE_ENABLED(enqueue))
				JOBQ_PROBE_ENQUEUE(twin_queue, g->tenant, "twin", id, g->prio, enq_ns,
						   th, tl, tsp, par, fl,
						   jobq_series_digest(twin_queue, g->tenant, "twin"));
			ts0 = now_ns(CLOCK_MONOTONIC);
			if (JOBQ_PROBE_ENABLED(start))
				JOBQ_PROBE_START(twin_queue, g->tenant, "twin", id, g->prio, enq_ns,
						 th, tl, tsp, 1, fl,
						 jobq_series_digest(twin_queue, g->tenant, "twin"));
			ts1 = now_ns(CLOCK_MONOTONIC);
			tr1 = now_ns(CLOCK_REALTIME);
			if (g->sleep_us)
				sleep_us((uint64_t)g->sleep_us);
			tf0 = now_ns(CLOCK_MONOTONIC);
			if (JOBQ_PROBE_ENABLED(finish))
				JOBQ_PROBE_FINISH(twin_queue, g->tenant, "twin", id, g->prio,
						  JOBQ_STATUS_SUCCESS, 1, "");
			tf1 = now_ns(CLOCK_MONOTONIC);
			(void)tsp;
			printf("job\t%" PRIu64 "\t%s\ttwin\t%d\tsuccess\t1\t%" PRIu64 "\t%" PRIu64
			       "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
			       "\t%" PRIu64 "\t%d\t%s\n",
			       id, g->tenant, g->prio, wait_ns, tr1 - enq_ns, tf0 - ts1, tf1 - ts0, th,
			       tl, tsp, par, fl, twin_queue);
		}
		if (g->sleep_us)
			sleep_us((uint64_t)g->sleep_us);
		f0 = now_ns(CLOCK_MONOTONIC);
		if (finish_on_other_thread) {
			struct finish_args fa = { queue, g->tenant, g->type, err, id, g->prio, status };
			pthread_t t;

			if (pthread_create(&t, NULL, fire_finish, &fa) == 0)
				pthread_join(t, NULL);
			else
				fprintf(stderr, "probe_emitter: pthread_create failed\n");
		} else if (JOBQ_PROBE_ENABLED(finish) && !no_finish) {
			char copy[JOBQ_QUEUE_MAX + 1];

			snprintf(copy, sizeof(copy), "%s", queue);
			JOBQ_PROBE_FINISH(finish_queue_copy ? copy : queue, g->tenant, g->type, id,
					  g->prio, status, 1, err);
		}
		f1 = now_ns(CLOCK_MONOTONIC);
		(void)status; /* unused when built with JOBQ_NO_PROBES */
		(void)enq_ns;
		printf("job\t%" PRIu64 "\t%s\t%s\t%d\t%s\t1\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
		       "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%d\t%s\n",
		       id, g->tenant, g->type, g->prio, failed ? "failed" : "success", wait_ns,
		       r1 - enq_ns, f0 - s1, f1 - s0, th, tl, sp, par, fl, queue);
		if (failed && (j / g->fail_every) % 2 == 1) {
			if (JOBQ_PROBE_ENABLED(retry))
				JOBQ_PROBE_RETRY(queue, g->tenant, g->type, id, 1, 1000, err);
			printf("retry\t%s\t%s\t%s\n", g->tenant, g->type, queue);
		} else if (failed) {
			if (JOBQ_PROBE_ENABLED(dead_letter))
				JOBQ_PROBE_DEAD_LETTER(queue, g->tenant, g->type, id, 1, err);
			(void)err;
			printf("dead\t%s\t%s\t%s\n", g->tenant, g->type, queue);
		}
	}
	if (JOBQ_PROBE_ENABLED(reap))
		JOBQ_PROBE_REAP(queue, g->tenant, g->type, *next_id + 1000000, 2);
	printf("reap\t%s\t%s\t%s\n", g->tenant, g->type, queue);
	{
		uint64_t dh = (uint64_t)g->count, dn = 2 * dh, dl = 3 * dh;
		uint64_t oldest = now_ns(CLOCK_REALTIME) - UINT64_C(5000000000), infl = 7, del = 9;

		(void)infl;
		(void)del;

		if (JOBQ_PROBE_ENABLED(depth))
			JOBQ_PROBE_DEPTH(queue, g->tenant, dh, dn, dl, oldest, infl, del);
		printf("depth\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
		       "\t%" PRIu64 "\t%" PRIu64 "\n",
		       queue, g->tenant, dh, dn, dl, oldest, infl, del);
	}
}

/*
 * The benchmark's no-op worker: per job, the start and finish probes
 * around a "handler" that does what a no-op job costs in process besides
 * Redis (format the job document, checksum it). rate > 0 paces the loop
 * to that many jobs/s.
 */
static void run_bench(long n, long rate)
{
	static const char bench_queue[] = "bench"; /* one buffer, as libjobq passes */
	const char *volatile bench_tenant = "tenant-b", *volatile bench_type = "noop";
	struct timespec c0, c1;
	uint64_t w0, w1;
	volatile uint64_t sink = 0;
	char doc[256];
	uint64_t enq = now_ns(CLOCK_REALTIME);

	(void)enq, (void)bench_queue, (void)bench_tenant, (void)bench_type; /* unused when built with JOBQ_NO_PROBES */
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	w0 = now_ns(CLOCK_MONOTONIC);
	for (long i = 0; i < n; i++) {
		uint64_t id = (uint64_t)i, sum = 0;
		int len;

		if (rate > 0 && (i & 63) == 0) {
			uint64_t due = w0 + (uint64_t)((double)i * 1e9 / (double)rate);
			uint64_t now = now_ns(CLOCK_MONOTONIC);

			if (due > now + 200000)
				sleep_us((due - now) / 1000);
		}
		/* The digest computed per job, as libjobq does (the volatile
		 * names keep the compiler from folding it into a constant). */
		if (JOBQ_PROBE_ENABLED(start))
			JOBQ_PROBE_START(bench_queue, bench_tenant, bench_type, id, 1, enq, 1, 2, 3, 1,
					 1, jobq_series_digest(bench_queue, bench_tenant, bench_type));
		len = snprintf(doc, sizeof(doc),
			       "{\"id\":%" PRIu64 ",\"tenant_id\":\"tenant-b\",\"type\":\"noop\","
			       "\"priority\":\"normal\",\"enqueued_at\":%" PRIu64 "}",
			       id, enq);
		for (int k = 0; k < len; k++)
			sum = sum * 31 + (unsigned char)doc[k];
		sink += sum;
		if (JOBQ_PROBE_ENABLED(finish))
			JOBQ_PROBE_FINISH(bench_queue, bench_tenant, bench_type, id, 1, 0, 1, "");
	}
	w1 = now_ns(CLOCK_MONOTONIC);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	printf("bench jobs=%ld cpu_ns=%" PRIu64 " wall_ns=%" PRIu64 "\n", n,
	       (uint64_t)(c1.tv_sec - c0.tv_sec) * UINT64_C(1000000000) + (uint64_t)c1.tv_nsec -
		       (uint64_t)c0.tv_nsec,
	       w1 - w0);
}

/* --threads: one runner per thread, all released at once. */
struct runner {
	pthread_t t;
	const char *queue;
	struct group *groups;
	int ngroups, cpu, err;
	uint64_t next_id;
	pthread_barrier_t *go;
};

static void *run_groups(void *p)
{
	struct runner *r = p;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(r->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		r->err = errno;
	pthread_barrier_wait(r->go);
	if (r->err)
		return NULL;
	for (int g = 0; g < r->ngroups; g++)
		run_group(r->queue, &r->groups[g], &r->next_id);
	return NULL;
}

/* Runs the groups in n threads on distinct CPUs (round robin); 0 or -1. */
static int run_threads(const char *queue, struct group *groups, int ngroups, int n,
		       uint64_t first_id)
{
	struct runner *r = calloc((size_t)n, sizeof(*r));
	pthread_barrier_t go;
	int cpus[CPU_SETSIZE], ncpus = 0, rc = 0;
	cpu_set_t set;

	if (!r || sched_getaffinity(0, sizeof(set), &set) || pthread_barrier_init(&go, NULL, n)) {
		fprintf(stderr, "probe_emitter: cannot set up %d threads\n", n);
		free(r);
		return -1;
	}
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			cpus[ncpus++] = c;
	for (int t = 0; t < n; t++) {
		r[t] = (struct runner){ .queue = queue, .groups = groups, .ngroups = ngroups,
					.cpu = cpus[t % ncpus], .go = &go,
					.next_id = first_id + (uint64_t)t * UINT64_C(1000000000) };
		if (pthread_create(&r[t].t, NULL, run_groups, &r[t])) {
			fprintf(stderr, "probe_emitter: pthread_create failed\n");
			exit(3); /* the others wait at the barrier */
		}
	}
	for (int t = 0; t < n; t++) {
		pthread_join(r[t].t, NULL);
		if (r[t].err) {
			fprintf(stderr, "probe_emitter: pin thread %d to CPU %d: %s\n", t, r[t].cpu,
				strerror(r[t].err));
			rc = -1;
		}
	}
	pthread_barrier_destroy(&go);
	free(r);
	return rc;
}

#ifdef EMITTER_LIB
/* Built into libjobq_emitter.so: the probes then live in a shared library,
 * as in libjobq, for the --lib and --pid-with-library tests. */
int emitter_main(int argc, char **argv);
int emitter_main(int argc, char **argv)
#else
int main(int argc, char **argv)
#endif
{
	const char *queue = "default";
	long attach_ms = -1, bench = -1, rate = 0, threads = 1;
	uint64_t next_id = 1;
	struct group g, *groups;
	int i, rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--finish-thread")) {
			finish_on_other_thread = 1;
			continue;
		}
		if (!strcmp(argv[i], "--finish-queue-copy")) {
			finish_queue_copy = 1;
			continue;
		}
		if (!strcmp(argv[i], "--no-finish")) {
			no_finish = 1;
			continue;
		}
		if (!strcmp(argv[i], "--v2-sites")) {
			v2_sites = 1;
			continue;
		}
		if (!strcmp(argv[i], "--v1-enqueue")) {
			v1_enqueue = 1;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "probe_emitter: %s needs a value\n", argv[i]);
			return 2;
		}
		if (!strcmp(argv[i], "--wait-attach-ms"))
			attach_ms = atol(argv[++i]);
		else if (!strcmp(argv[i], "--queue"))
			queue = argv[++i];
		else if (!strcmp(argv[i], "--lie-digest"))
			lie_digest = argv[++i];
		else if (!strcmp(argv[i], "--twin-queue"))
			twin_queue = argv[++i];
		else if (!strcmp(argv[i], "--first-id"))
			next_id = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--bench"))
			bench = atol(argv[++i]);
		else if (!strcmp(argv[i], "--rate"))
			rate = atol(argv[++i]);
		else if (!strcmp(argv[i], "--threads"))
			threads = atol(argv[++i]);
		else {
			fprintf(stderr, "probe_emitter: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (strlen(queue) > JOBQ_QUEUE_MAX || (twin_queue && strlen(twin_queue) > JOBQ_QUEUE_MAX)) {
		fprintf(stderr, "probe_emitter: queue name too long\n");
		return 2;
	}
	if (threads < 1 || threads > 256) {
		fprintf(stderr, "probe_emitter: --threads: 1 to 256\n");
		return 2;
	}
	if (attach_ms >= 0 && wait_attach(attach_ms, bench < 0))
		return 3;
	if (bench >= 0) {
		run_bench(bench, rate);
		return 0;
	}
	if (threads == 1) {
		for (; i < argc; i++) {
			if (parse_group(argv[i], &g))
				return 2;
			run_group(queue, &g, &next_id);
		}
		return 0;
	}
	groups = calloc((size_t)(argc - i) + 1, sizeof(*groups));
	if (!groups) {
		fprintf(stderr, "probe_emitter: out of memory\n");
		return 3;
	}
	for (int k = 0; i + k < argc; k++)
		if (parse_group(argv[i + k], &groups[k])) {
			free(groups);
			return 2;
		}
	rc = run_threads(queue, groups, argc - i, (int)threads, next_id) ? 3 : 0;
	free(groups);
	return rc;
}
