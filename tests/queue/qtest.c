/* qtest.c - see qtest.h. */
#include "tests/queue/qtest.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct redis_fixture qt_redis;
char qt_cli[PATH_MAX + 8];
char qt_tmp[256];
const char *qt_worker_stderr;

void qt_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

uint64_t qt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int qt_init(const char *argv0)
{
	char err[256], self[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	(void)argv0;
	if (n <= 0) {
		fprintf(stderr, "cannot resolve /proc/self/exe\n");
		return 1;
	}
	self[n] = '\0';
	/* $(BUILD)/tests/queue/test_x -> $(BUILD)/jobq */
	for (int i = 0; i < 3 && (slash = strrchr(self, '/')); i++)
		*slash = '\0';
	snprintf(qt_cli, sizeof(qt_cli), "%s/jobq", self);
	if (access(qt_cli, X_OK)) {
		fprintf(stderr, "jobq CLI not found at %s (run make)\n", qt_cli);
		return 1;
	}
	snprintf(qt_tmp, sizeof(qt_tmp), "/tmp/jobq-test-XXXXXX");
	if (!mkdtemp(qt_tmp)) {
		perror("mkdtemp");
		return 1;
	}
	if (redis_fixture_start(&qt_redis, err, sizeof(err)))
		return redis_fixture_skip(err);
	return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

void qt_fini(void)
{
	redis_fixture_stop(&qt_redis);
	if (qt_tmp[0] && !getenv("QT_KEEP"))
		nftw(qt_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *qt_path(const char *name)
{
	static char buf[4][400];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", qt_tmp, name);
	return buf[i];
}

struct jobq *qt_connect(const char *queue)
{
	struct jobq_opts o;
	struct jobq *q = NULL;
	char err[256];

	jobq_opts_init(&o);
	o.redis_url = qt_redis.url;
	o.queue = queue;
	if (jobq_connect(&o, &q, err, sizeof(err)))
		fail_msg("connect %s: %s", qt_redis.url, err);
	return q;
}

void qt_redis_cmd(const char *fmt, ...)
{
	redisContext *c = redisConnect("127.0.0.1", qt_redis.port);
	redisReply *r;
	va_list ap;

	if (!c || c->err)
		fail_msg("redisConnect failed");
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r || r->type == REDIS_REPLY_ERROR)
		fail_msg("redis command \"%s\" failed: %s", fmt, r ? r->str : c->errstr);
	freeReplyObject(r);
	redisFree(c);
}

void qt_redis_get(char *buf, size_t cap, const char *fmt, ...)
{
	redisContext *c = redisConnect("127.0.0.1", qt_redis.port);
	redisReply *r;
	va_list ap;

	if (!c || c->err)
		fail_msg("redisConnect failed");
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r || r->type == REDIS_REPLY_ERROR)
		fail_msg("redis command \"%s\" failed: %s", fmt, r ? r->str : c->errstr);
	if (r->type == REDIS_REPLY_INTEGER)
		snprintf(buf, cap, "%lld", r->integer);
	else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		snprintf(buf, cap, "%.*s", (int)r->len, r->str);
	else if (r->type == REDIS_REPLY_NIL)
		snprintf(buf, cap, "%s", "");
	else
		fail_msg("redis command \"%s\": unexpected reply type %d", fmt, r->type);
	freeReplyObject(r);
	redisFree(c);
}

pid_t qt_worker(const char *queue, ...)
{
	const char *argv[64];
	int n = 0;
	va_list ap;
	pid_t pid;

	argv[n++] = qt_cli;
	argv[n++] = "--redis";
	argv[n++] = qt_redis.url;
	argv[n++] = "--queue";
	argv[n++] = queue;
	argv[n++] = "worker";
	va_start(ap, queue);
	while (n < 63 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		if (qt_worker_stderr) {
			int fd = open(qt_worker_stderr, O_WRONLY | O_CREAT | O_APPEND, 0644);

			if (fd >= 0)
				dup2(fd, 2);
		}
		execv(qt_cli, (char **)argv);
		_exit(127);
	}
	assert_true(pid > 0);
	return pid;
}

int qt_stop(pid_t pid, int sig, int timeout_ms)
{
	int st;

	if (sig)
		kill(pid, sig);
	for (int i = 0; i < timeout_ms / 10; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		qt_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

int qt_wait_drained(struct jobq *q, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 20) {
		struct jobq_tenant_stats *st;
		size_t n;
		uint64_t left = 0;

		if (jobq_stats(q, &st, &n))
			fail_msg("stats: %s", jobq_errmsg(q));
		for (size_t i = 0; i < n; i++)
			left += st[i].depth[0] + st[i].depth[1] + st[i].depth[2] + st[i].delayed +
				st[i].in_flight;
		free(st);
		if (!left)
			return 0;
		qt_sleep_ms(20);
	}
	return -1;
}

long qt_read_log(const char *path, struct qt_rec **out)
{
	FILE *f = fopen(path, "r");
	size_t n = 0, cap = 1024;
	struct qt_rec *v;
	char line[1024];

	*out = NULL;
	if (!f)
		return 0; /* no job finished yet */
	v = malloc(cap * sizeof(*v));
	assert_non_null(v);
	while (fgets(line, sizeof(line), f)) {
		struct qt_rec r;

		/* A last line without its newline is being written by a worker
		 * right now (a read can see part of a concurrent write): it is
		 * not there yet. A whole line must parse. */
		if (!strchr(line, '\n') && feof(f))
			break;
		if (sscanf(line, "%" SCNu64 " %79s %79s %7s %" SCNu64 " %" SCNu64 " %" SCNu64 " %7s %u", &r.id, r.tenant, r.type, r.prio,
			   &r.enq_ns, &r.start_ns, &r.end_ns, r.status, &r.attempt) != 9)
			fail_msg("bad job log line in %s: %s", path, line);
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(*v));
			assert_non_null(v);
		}
		v[n++] = r;
	}
	fclose(f);
	*out = v;
	return (long)n;
}

long qt_log_lines(const char *path)
{
	struct qt_rec *r;
	long n = qt_read_log(path, &r);

	free(r);
	return n;
}

long qt_cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the ")" of comm: state is field 3, utime 14, stime 15. */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

int qt_file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

void qt_enqueue_n(struct jobq *q, const char *tenant, const char *type, enum jobq_priority p,
		  size_t n)
{
	enum { CHUNK = 1000 };
	static struct jobq_new_job j[CHUNK];

	for (size_t done = 0; done < n;) {
		size_t k = n - done < CHUNK ? n - done : CHUNK;

		for (size_t i = 0; i < k; i++) {
			j[i] = (struct jobq_new_job){ tenant, type, "", 0, { 0 } };
			jobq_enqueue_opts_init(&j[i].opts);
			j[i].opts.priority = p;
		}
		if (jobq_enqueue_batch(q, j, k, NULL))
			fail_msg("enqueue: %s", jobq_errmsg(q));
		done += k;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

size_t qt_distinct_ids(const struct qt_rec *recs, long n)
{
	uint64_t *ids = malloc(sizeof(*ids) * (size_t)(n > 0 ? n : 1));
	size_t d = 0;

	assert_non_null(ids);
	for (long i = 0; i < n; i++)
		ids[i] = recs[i].id;
	qsort(ids, (size_t)n, sizeof(*ids), cmp_u64);
	for (long i = 0; i < n; i++)
		d += i == 0 || ids[i] != ids[i - 1];
	free(ids);
	return d;
}
