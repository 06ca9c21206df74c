/* hello_worker.c - a worker with a C handler, linked against libjobq:
 *
 *   cc hello_worker.c $(pkg-config --cflags --libs libjobq) -o hello_worker
 *   ./hello_worker            # JOBQ_REDIS_URL or redis://127.0.0.1:6379
 *   jobq enqueue --tenant acme --type hello --payload world
 *
 * Handlers return 0 for success; anything else fails the job (retried with
 * backoff, dead-lettered after max_attempts) with the text left in err. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <jobq.h>

static struct jobq_worker *worker;

static void on_signal(int sig)
{
	(void)sig;
	jobq_worker_stop(worker); /* async-signal-safe: finish, release, return */
}

static int hello(const struct jobq_job *job, void *user, char *err, size_t errlen)
{
	(void)user;
	if (job->payload_len == 0) {
		snprintf(err, errlen, "empty payload");
		return 1;
	}
	printf("tenant %s job %llu attempt %u: hello, %.*s\n", job->tenant,
	       (unsigned long long)job->id, job->attempt, (int)job->payload_len,
	       (const char *)job->payload);
	return 0;
}

static void log_line(enum jobq_log_level lvl, const char *msg, void *user)
{
	(void)user;
	if (lvl <= JOBQ_LOG_INFO)
		fprintf(stderr, "hello_worker: %s\n", msg);
}

int main(void)
{
	struct jobq_worker_opts o;
	char err[256];
	int rc;

	jobq_set_log(log_line, NULL);
	jobq_worker_opts_init(&o);
	o.concurrency = 2;
	if (jobq_worker_new(&o, &worker, err, sizeof(err))) {
		fprintf(stderr, "hello_worker: %s\n", err);
		return 1;
	}
	if (jobq_worker_handle(worker, "hello", hello, NULL)) {
		fprintf(stderr, "hello_worker: %s\n", jobq_worker_errmsg(worker));
		jobq_worker_free(worker);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	rc = jobq_worker_run(worker);
	if (rc)
		fprintf(stderr, "hello_worker: %s\n", jobq_worker_errmsg(worker));
	jobq_worker_free(worker);
	return rc ? 1 : 0;
}
