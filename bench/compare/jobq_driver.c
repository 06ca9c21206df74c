/*
 * jobq_driver.c - the jobq side of bench/compare: a producer that replays a
 * plan and a worker that runs the bench's job kinds, both on the public
 * libjobq API (queue/jobq.h), as a user's program would.
 *
 *   jobq_driver enqueue [--redis URL] [--queue Q]   < plan
 *   jobq_driver worker  [--redis URL] [--queue Q] [--concurrency N]
 *                       [--prefetch N] [--batch N] [--job-log FILE] [--expect N]
 *
 * Plan lines (the format every driver of bench/compare reads):
 *   "<offset_ms> <tenant> <work_ms>"   offsets non-decreasing; work_ms 0 is a
 * no-op job, otherwise the handler sleeps that long (an I/O-bound job).
 * Lines with the same offset are enqueued as one pipelined batch (chunks of
 * CHUNK), the bulk API a user would pick.
 *
 * The worker's job log has one line per run, "tenant enq_ns start_ns end_ns"
 * (unix ns), written with one O_APPEND write so lines never interleave.
 * --expect N: stop after N jobs and print "jobs=N cpu_ns=C wall_ns=W" where
 * C is this process's CPU (all threads) and W the wall time, both from the
 * start of the first job to the end of the Nth, so start-up is excluded.
 * The job's payload is work_ms as decimal text.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "queue/jobq.h"

#define CHUNK 1000
#define LINE_MAX_LEN 256

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "jobq_driver: %s: %s\n", what, why);
	exit(1);
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* ---- producer -------------------------------------------------------- */

struct pending {
	struct jobq_new_job jobs[CHUNK];
	char tenant[CHUNK][JOBQ_TENANT_MAX + 1];
	char payload[CHUNK][16];
	size_t n;
};

static void flush_batch(struct jobq *q, struct pending *p, uint64_t *total)
{
	if (!p->n)
		return;
	if (jobq_enqueue_batch(q, p->jobs, p->n, NULL))
		die("enqueue", jobq_errmsg(q));
	*total += p->n;
	p->n = 0;
}

static void sleep_until(uint64_t mono_ns)
{
	struct timespec ts = { .tv_sec = (time_t)(mono_ns / 1000000000ull),
			       .tv_nsec = (long)(mono_ns % 1000000000ull) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int run_enqueue(const struct jobq_opts *co)
{
	struct jobq *q;
	char err[256], line[LINE_MAX_LEN];
	struct pending *p = calloc(1, sizeof(*p));
	uint64_t t0, t_first = 0, total = 0, cur_off = UINT64_MAX;
	unsigned lineno = 0;

	if (!p)
		die("enqueue", "out of memory");
	if (jobq_connect(co, &q, err, sizeof(err)))
		die("connect", err);
	t0 = now_ns(CLOCK_MONOTONIC);
	while (fgets(line, sizeof(line), stdin)) {
		unsigned long long off;
		unsigned ms;
		char tenant[JOBQ_TENANT_MAX + 1];

		lineno++;
		if (sscanf(line, "%llu %64s %u", &off, tenant, &ms) != 3) {
			fprintf(stderr, "jobq_driver: plan line %u: expected \"offset_ms tenant work_ms\"\n",
				lineno);
			exit(1);
		}
		if (off != cur_off || p->n == CHUNK) {
			flush_batch(q, p, &total);
			if (off != cur_off)
				sleep_until(t0 + off * 1000000ull);
			cur_off = off;
			if (!t_first)
				t_first = now_ns(CLOCK_MONOTONIC);
		}
		struct jobq_new_job *j = &p->jobs[p->n];
		memcpy(p->tenant[p->n], tenant, sizeof(tenant));
		snprintf(p->payload[p->n], sizeof(p->payload[0]), "%u", ms);
		j->tenant = p->tenant[p->n];
		j->type = ms ? "sleep" : "noop";
		j->payload = p->payload[p->n];
		j->payload_len = strlen(p->payload[p->n]);
		jobq_enqueue_opts_init(&j->opts);
		p->n++;
	}
	flush_batch(q, p, &total);
	printf("enqueued=%" PRIu64 " wall_ns=%" PRIu64 "\n", total,
	       t_first ? now_ns(CLOCK_MONOTONIC) - t_first : 0);
	jobq_close(q);
	free(p);
	return 0;
}

/* ---- worker ---------------------------------------------------------- */

static struct jobq_worker *g_worker;

static struct {
	int log_fd;
	uint64_t expect;
	atomic_uint_fast64_t started, done;
	uint64_t cpu0, wall0; /* at the first job's start */
} g;

static void on_signal(int sig)
{
	(void)sig;
	if (g_worker)
		jobq_worker_stop(g_worker);
}

static int handle(const struct jobq_job *job, void *user, char *err, size_t errlen)
{
	uint32_t ms = 0;
	char buf[16];
	uint64_t start = now_ns(CLOCK_REALTIME);

	(void)user;
	if (atomic_fetch_add(&g.started, 1) == 0) {
		g.cpu0 = cpu_ns();
		g.wall0 = now_ns(CLOCK_MONOTONIC);
	}
	if (job->payload_len && job->payload_len < sizeof(buf)) {
		memcpy(buf, job->payload, job->payload_len);
		buf[job->payload_len] = 0;
		if (parse_u32(buf, &ms)) {
			snprintf(err, errlen, "payload is not a work_ms integer");
			return 1;
		}
	}
	if (ms) {
		struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	if (g.log_fd >= 0) {
		char l[160];
		int n = snprintf(l, sizeof(l), "%s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", job->tenant,
				 job->enqueued_unix_ns, start, now_ns(CLOCK_REALTIME));
		/* One write per line; a short write would only cut the log. */
		if (n > 0 && write(g.log_fd, l, (size_t)n) != n) {
			snprintf(err, errlen, "job log write: %s", strerror(errno));
			return 1;
		}
	}
	if (g.expect && atomic_fetch_add(&g.done, 1) + 1 == g.expect) {
		printf("jobs=%" PRIu64 " cpu_ns=%" PRIu64 " wall_ns=%" PRIu64 "\n", g.expect,
		       cpu_ns() - g.cpu0, now_ns(CLOCK_MONOTONIC) - g.wall0);
		fflush(stdout);
		jobq_worker_stop(g_worker);
	}
	return 0;
}

static void log_cb(enum jobq_log_level level, const char *msg, void *user)
{
	(void)user;
	if (level <= JOBQ_LOG_WARN)
		fprintf(stderr, "jobq_driver: %s\n", msg);
}

static int run_worker(struct jobq_worker_opts *wo, const char *job_log)
{
	char err[256];
	struct sigaction sa = { .sa_handler = on_signal };
	int rc;

	g.log_fd = -1;
	if (job_log) {
		g.log_fd = open(job_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (g.log_fd < 0)
			die(job_log, strerror(errno));
	}
	jobq_set_log(log_cb, NULL);
	if (jobq_worker_new(wo, &g_worker, err, sizeof(err)))
		die("worker", err);
	if (jobq_worker_handle(g_worker, "*", handle, NULL))
		die("worker", jobq_worker_errmsg(g_worker));
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "jobq_driver: worker ready\n");
	rc = jobq_worker_run(g_worker);
	if (rc)
		fprintf(stderr, "jobq_driver: worker: %s\n", jobq_worker_errmsg(g_worker));
	jobq_worker_free(g_worker);
	if (g.log_fd >= 0)
		close(g.log_fd);
	return rc ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: jobq_driver enqueue [--redis URL] [--queue Q] < plan\n"
			"       jobq_driver worker [--redis URL] [--queue Q] [--concurrency N]\n"
			"                   [--prefetch N] [--batch N] [--job-log FILE] [--expect N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "redis", required_argument, 0, 'r' },	      { "queue", required_argument, 0, 'q' },
		{ "concurrency", required_argument, 0, 'c' }, { "prefetch", required_argument, 0, 'p' },
		{ "batch", required_argument, 0, 'b' },	      { "job-log", required_argument, 0, 'l' },
		{ "expect", required_argument, 0, 'e' },      { 0, 0, 0, 0 },
	};
	struct jobq_worker_opts wo;
	const char *job_log = NULL;
	uint32_t v;
	int c;

	if (argc < 2)
		usage();
	/* A socket closed under a write must be an error return, not death. */
	signal(SIGPIPE, SIG_IGN);
	jobq_worker_opts_init(&wo);
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': wo.conn.redis_url = optarg; break;
		case 'q': wo.conn.queue = optarg; break;
		case 'l': job_log = optarg; break;
		case 'c':
		case 'p':
		case 'b':
		case 'e':
			if (parse_u32(optarg, &v))
				die("option", "expected a non-negative integer");
			if (c == 'c')
				wo.concurrency = (int)v;
			else if (c == 'p')
				wo.prefetch = v;
			else if (c == 'b')
				wo.batch = v;
			else
				g.expect = v;
			break;
		default: usage();
		}
	}
	if (!strcmp(argv[1], "enqueue"))
		return run_enqueue(&wo.conn);
	if (!strcmp(argv[1], "worker"))
		return run_worker(&wo, job_log);
	usage();
	return 2;
}
