/* qtest.h - helpers for the queue integration tests: a private
 * redis-server (tests/lib/redis_fixture), the jobq CLI as real worker
 * processes, and the job log as the independent record of what ran. */
#ifndef QTEST_H
#define QTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "queue/jobq.h"
#include "tests/lib/redis_fixture.h"

extern struct redis_fixture qt_redis;
extern char qt_cli[]; /* path of the built jobq CLI */
extern char qt_tmp[256];   /* scratch dir for job logs, removed at exit */

/* Starts redis and locates the CLI from argv0; returns 0, or 77 after
 * printing why the test cannot run. */
int qt_init(const char *argv0);
void qt_fini(void);

struct jobq *qt_connect(const char *queue);
/* A raw redis command on a fresh connection (to corrupt documents etc.). */
void qt_redis_cmd(const char *fmt, ...);
/* A raw redis command whose reply (string, status or integer; "" for nil)
 * is copied into buf. */
void qt_redis_get(char *buf, size_t cap, const char *fmt, ...);

/* Spawns `jobq --redis URL --queue Q worker ARGS...` (NULL-terminated).
 * Its stderr goes to qt_worker_stderr if set (a path), else is inherited. */
extern const char *qt_worker_stderr;
pid_t qt_worker(const char *queue, ...);
/* Sends sig and waits up to timeout_ms; returns the exit status, 128+sig
 * if killed, or -1 if it did not exit (it is then SIGKILLed). */
int qt_stop(pid_t pid, int sig, int timeout_ms);

/* Waits until the queue has nothing ready, delayed or in flight. Returns
 * 0, or -1 on timeout. */
int qt_wait_drained(struct jobq *q, int timeout_ms);

struct qt_rec {
	uint64_t id;
	char tenant[80], type[80], prio[8], status[8];
	uint64_t enq_ns, start_ns, end_ns;
	unsigned attempt;
};
/* Reads a job log; *out malloc'd. Returns the count (-1 on error). */
long qt_read_log(const char *path, struct qt_rec **out);
/* Counts log lines. */
long qt_log_lines(const char *path);

/* CPU time (user + system) of a process in clock ticks, -1 on error. */
long qt_cpu_ticks(pid_t pid);
/* 1 if the file contains needle. */
int qt_file_contains(const char *path, const char *needle);
/* Enqueues n jobs of one tenant/type/priority (pipelined). */
void qt_enqueue_n(struct jobq *q, const char *tenant, const char *type, enum jobq_priority p,
		  size_t n);
/* Number of distinct job ids in recs. */
size_t qt_distinct_ids(const struct qt_rec *recs, long n);

void qt_sleep_ms(int ms);
uint64_t qt_now_ns(void);
/* A path in qt_tmp. */
const char *qt_path(const char *name);

#endif
