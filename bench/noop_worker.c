/*
 * noop_worker - a libjobq worker whose handler does nothing, for the
 * "probes compiled in, no agent / built without probes" ratio. Linked
 * twice: against libjobq.a and against the -DJOBQ_NO_PROBES libjobq.a.
 *
 *   noop_worker REDIS_URL N    runs until N jobs were handled, then prints
 *                              "worker jobs=N wall_ns=W cpu_ns=C"
 */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "queue/jobq.h"

static atomic_long handled;
static long target;
static struct jobq_worker *worker;

static int noop(const struct jobq_job *job, void *user, char *err, size_t errlen)
{
	(void)job, (void)user, (void)err, (void)errlen;
	if (atomic_fetch_add(&handled, 1) + 1 == target)
		jobq_worker_stop(worker);
	return 0;
}

static uint64_t ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct jobq_worker_opts o;
	char err[256];
	uint64_t w0, c0;
	int rc;

	if (argc != 3 || (target = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: noop_worker REDIS_URL N\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN); /* as the jobq CLI: a dropped connection is an error, not a death */
	jobq_worker_opts_init(&o);
	o.conn.redis_url = argv[1];
	if (jobq_worker_new(&o, &worker, err, sizeof(err)) ||
	    jobq_worker_handle(worker, "*", noop, NULL)) {
		fprintf(stderr, "noop_worker: %s\n", worker ? jobq_worker_errmsg(worker) : err);
		return 1;
	}
	w0 = ns(CLOCK_MONOTONIC);
	c0 = ns(CLOCK_PROCESS_CPUTIME_ID);
	rc = jobq_worker_run(worker);
	if (rc) {
		fprintf(stderr, "noop_worker: %s\n", jobq_worker_errmsg(worker));
		jobq_worker_free(worker);
		return 1;
	}
	printf("worker jobs=%ld wall_ns=%" PRIu64 " cpu_ns=%" PRIu64 "\n", atomic_load(&handled),
	       ns(CLOCK_MONOTONIC) - w0, ns(CLOCK_PROCESS_CPUTIME_ID) - c0);
	jobq_worker_free(worker);
	return 0;
}
