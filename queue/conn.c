/* conn.c - connection handling: URL, connect, AUTH, scripts, EVALSHA. */
#include "queue/internal.h"
#include "queue/validate.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static jobq_log_fn log_fn;
static void *log_user;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void jobq_set_log(jobq_log_fn fn, void *user)
{
	pthread_mutex_lock(&log_mu);
	log_fn = fn;
	log_user = user;
	pthread_mutex_unlock(&log_mu);
}

void jobq__log(enum jobq_log_level lvl, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	jobq_log_fn fn;
	void *user;

	pthread_mutex_lock(&log_mu);
	fn = log_fn;
	user = log_user;
	pthread_mutex_unlock(&log_mu);
	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fn(lvl, buf, user);
}

int jobq__fail(struct jobq *q, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->err, sizeof(q->err), fmt, ap);
	va_end(ap);
	return code;
}

void jobq__sigpipe_block(struct jobq__sigpipe *s)
{
	sigset_t pipe, pending;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	s->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &s->old);
}

void jobq__sigpipe_restore(struct jobq__sigpipe *s)
{
	sigset_t pipe, pending;
	struct timespec zero = { 0, 0 };

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	if (!s->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
		while (sigtimedwait(&pipe, NULL, &zero) > 0)
			;
	pthread_sigmask(SIG_SETMASK, &s->old, NULL);
}

uint64_t jobq__now_unix_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t jobq__mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000;
}

const char *jobq_strerror(int err)
{
	switch (err) {
	case JOBQ_OK: return "success";
	case JOBQ_EINVAL: return "invalid argument";
	case JOBQ_EREDIS: return "redis connection error";
	case JOBQ_ENOMEM: return "out of memory";
	case JOBQ_ESTALE: return "stale lease";
	case JOBQ_ENOTFOUND: return "not found";
	case JOBQ_EPROTO: return "unexpected reply from redis";
	case JOBQ_ETIMEDOUT: return "timed out";
	default: return "unknown error";
	}
}

const char *jobq_priority_name(enum jobq_priority p)
{
	switch (p) {
	case JOBQ_HIGH: return "high";
	case JOBQ_NORMAL: return "normal";
	case JOBQ_LOW: return "low";
	}
	return NULL;
}

int jobq_priority_parse(const char *s, enum jobq_priority *out)
{
	if (!s)
		return JOBQ_EINVAL;
	if (!strcmp(s, "high"))
		*out = JOBQ_HIGH;
	else if (!strcmp(s, "normal"))
		*out = JOBQ_NORMAL;
	else if (!strcmp(s, "low"))
		*out = JOBQ_LOW;
	else
		return JOBQ_EINVAL;
	return JOBQ_OK;
}

void jobq_opts_init(struct jobq_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = 2000;
	o->command_timeout_ms = 5000;
	o->max_payload = 1 << 20;
	o->reconnect_max_ms = 5000;
}

static struct timeval tv_ms(int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	return tv;
}

void jobq__disconnect(struct jobq *q)
{
	if (q->c) {
		redisFree(q->c);
		q->c = NULL;
	}
}

/* What went wrong on q's connection, in a user's words: hiredis 0.14
 * reports a command timeout as the read's EAGAIN ("Resource temporarily
 * unavailable") and a server that is not Redis as a protocol error. */
static const char *io_error(const struct jobq *q, char *buf, size_t len)
{
	if (q->c->err == REDIS_ERR_IO && (!strcmp(q->c->errstr, strerror(EAGAIN)) ||
					  !strcmp(q->c->errstr, strerror(EWOULDBLOCK))))
		snprintf(buf, len, "no reply from redis within %d ms (the command timeout)",
			 q->o.command_timeout_ms);
	else if (q->c->err == REDIS_ERR_PROTOCOL)
		snprintf(buf, len, "%s (is it a redis server?)", q->c->errstr);
	else
		snprintf(buf, len, "%s", q->c->errstr[0] ? q->c->errstr : "connection lost");
	return buf;
}

/* A synchronous command; the reply must not be an error. */
static int simple_cmd(struct jobq *q, const char *what, int argc, const char **argv,
		      const size_t *lens, redisReply **out)
{
	struct jobq__sigpipe sp;
	redisReply *r;

	jobq__sigpipe_block(&sp);
	r = redisCommandArgv(q->c, argc, argv, lens);
	jobq__sigpipe_restore(&sp);

	if (!r) {
		char why[200];
		int rc = jobq__fail(q, JOBQ_EREDIS, "%s: %s", what, io_error(q, why, sizeof(why)));

		q->transient = 1;
		jobq__disconnect(q);
		return rc;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		int rc = jobq__fail(q, JOBQ_EREDIS, "%s: %s", what, r->str);

		q->transient = !strncmp(r->str, "LOADING", 7); /* restarting: wait */

		freeReplyObject(r);
		return rc;
	}
	if (out)
		*out = r;
	else
		freeReplyObject(r);
	return JOBQ_OK;
}

int jobq__load_scripts(struct jobq *q)
{
	if (!q->c)
		return jobq__reconnect(q); /* connects, then loads */
	for (int i = 0; i < JOBQ_S_COUNT; i++) {
		const char *argv[] = { "SCRIPT", "LOAD", jobq_lua_scripts[i].src };
		redisReply *r;
		int rc = simple_cmd(q, "SCRIPT LOAD", 3, argv, NULL, &r);

		if (rc)
			return rc;
		if (r->type != REDIS_REPLY_STRING || r->len != 40) {
			freeReplyObject(r);
			return jobq__fail(q, JOBQ_EPROTO, "SCRIPT LOAD %s: unexpected reply",
					  jobq_lua_scripts[i].name);
		}
		memcpy(q->sha[i], r->str, 41);
		freeReplyObject(r);
	}
	return JOBQ_OK;
}

int jobq__reconnect(struct jobq *q)
{
	struct timeval ct = tv_ms(q->o.connect_timeout_ms);
	struct timeval cmd = tv_ms(q->o.command_timeout_ms);
	char where[300];
	int rc;

	jobq__disconnect(q);
	q->transient = 1; /* until it gets past the connect */
	if (q->url.path[0]) {
		snprintf(where, sizeof(where), "%s", q->url.path);
		q->c = redisConnectUnixWithTimeout(q->url.path, ct);
	} else {
		snprintf(where, sizeof(where), "%s:%d", q->url.host, q->url.port);
		q->c = redisConnectWithTimeout(q->url.host, q->url.port, ct);
	}
	if (!q->c)
		return jobq__fail(q, JOBQ_ENOMEM, "connect %s: out of memory", where);
	if (q->c->err) {
		rc = jobq__fail(q, JOBQ_EREDIS, "connect %s: %s", where, q->c->errstr);
		jobq__disconnect(q);
		return rc;
	}
	if (redisSetTimeout(q->c, cmd) != REDIS_OK) {
		rc = jobq__fail(q, JOBQ_EREDIS, "connect %s: cannot set timeout", where);
		jobq__disconnect(q);
		return rc;
	}
	q->transient = 0;
	if (q->url.password[0]) {
		const char *argv[] = { "AUTH", q->url.user, q->url.password };

		rc = q->url.user[0] ? simple_cmd(q, "AUTH", 3, argv, NULL, NULL)
				    : (argv[1] = q->url.password, simple_cmd(q, "AUTH", 2, argv, NULL, NULL));
		if (rc)
			goto fail;
	}
	if (q->url.db) {
		char db[16];
		const char *argv[] = { "SELECT", db };

		snprintf(db, sizeof(db), "%d", q->url.db);
		if ((rc = simple_cmd(q, "SELECT", 2, argv, NULL, NULL)))
			goto fail;
	}
	if ((rc = jobq__load_scripts(q)))
		goto fail;
	return JOBQ_OK;
fail:
	/* No reply during the handshake is an outage like a refused connect:
	 * said as one, so callers that wait out outages (jobq worker at
	 * start) wait this one out too. A refused AUTH or SELECT is not. */
	if (q->transient && strncmp(q->err, "connect ", 8)) {
		char m[JOBQ_ERRMSG_MAX];

		snprintf(m, sizeof(m), "%s", q->err);
		jobq__fail(q, rc, "connect %s: %s", where, m);
	}
	jobq__disconnect(q);
	return rc;
}

/* 0 if the server closed q's connection (or it is out of step: bytes
 * nobody asked for), 1 if it looks usable. Never blocks. */
static int conn_alive(struct jobq *q)
{
	struct pollfd p = { .fd = q->c->fd, .events = POLLIN };
	char b;
	ssize_t n;

	if (poll(&p, 1, 0) == 0)
		return 1;
	if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
		return 0;
	n = recv(q->c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	return 0; /* EOF, or a reply to nothing we sent */
}

int jobq__ensure(struct jobq *q)
{
	uint64_t start;
	uint32_t wait_ms = 50;
	int attempts = 0, rc;

	if (q->c && conn_alive(q))
		return JOBQ_OK;
	if (q->c) {
		jobq__log(JOBQ_LOG_INFO, "queue %s: redis closed the connection; reconnecting", q->queue);
		jobq__disconnect(q);
	}
	start = jobq__mono_ms();
	for (;;) {
		uint64_t spent;
		struct timespec ts;

		attempts++;
		if ((rc = jobq__reconnect(q)) == JOBQ_OK)
			return JOBQ_OK;
		spent = jobq__mono_ms() - start;
		if (!q->transient)
			return rc; /* bad password, database, ...: waiting will not help */
		if (spent >= (uint64_t)q->o.reconnect_max_ms) {
			char m[JOBQ_ERRMSG_MAX];

			snprintf(m, sizeof(m), "%s", q->err);
			return jobq__fail(q, rc, "%s (redis unreachable: gave up after %d attempts in %" PRIu64 " ms)",
					  m, attempts, spent);
		}
		if (wait_ms > q->o.reconnect_max_ms - spent)
			wait_ms = (uint32_t)(q->o.reconnect_max_ms - spent);
		jobq__log(JOBQ_LOG_WARN, "queue %s: %s; retrying in %u ms", q->queue, q->err, wait_ms);
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (long)(wait_ms % 1000) * 1000000;
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		wait_ms *= 2;
	}
}

/* The URL and queue name jobq_connect would use, checked (the one
 * definition of their rules); *url_out and *queue_out get them. */
static int check_opts(const struct jobq_opts *o, const char **url_out, const char **queue_out,
		      struct jobq_url *u, char *err, size_t errlen)
{
	const char *url, *queue;

	url = o->redis_url ? o->redis_url : getenv("JOBQ_REDIS_URL");
	if (!url || !*url)
		url = "redis://127.0.0.1:6379";
	queue = o->queue ? o->queue : "default";
	if (jobq_check_name("queue", queue, JOBQ_QUEUE_MAX, err, errlen))
		return JOBQ_EINVAL;
	if (strpbrk(queue, "{}")) {
		snprintf(err, errlen, "queue must not contain '{' or '}'");
		return JOBQ_EINVAL;
	}
	if (jobq_url_parse(url, u, err, errlen))
		return JOBQ_EINVAL;
	*url_out = url;
	*queue_out = queue;
	return JOBQ_OK;
}

int jobq_opts_check(const struct jobq_opts *o, char *err, size_t errlen)
{
	struct jobq_opts def;
	struct jobq_url u;
	const char *url, *queue;
	int rc;

	if (!o) {
		jobq_opts_init(&def);
		o = &def;
	}
	rc = check_opts(o, &url, &queue, &u, err, errlen);
	explicit_bzero(&u, sizeof(u)); /* it holds the password */
	return rc;
}

int jobq_connect(const struct jobq_opts *o, struct jobq **out, char *err, size_t errlen)
{
	struct jobq_opts def;
	const char *url, *queue;
	struct jobq_url u;
	struct jobq *q;
	int rc;

	*out = NULL;
	if (!o) {
		jobq_opts_init(&def);
		o = &def;
	}
	if (check_opts(o, &url, &queue, &u, err, errlen))
		return JOBQ_EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q) {
		snprintf(err, errlen, "out of memory");
		return JOBQ_ENOMEM;
	}
	q->o = *o;
	snprintf(q->url_str, sizeof(q->url_str), "%s", url);
	snprintf(q->queue, sizeof(q->queue), "%s", queue);
	snprintf(q->prefix, sizeof(q->prefix), "jobq:{%s}:", queue);
	q->o.redis_url = q->url_str;
	q->o.queue = q->queue;
	if (q->o.connect_timeout_ms <= 0)
		q->o.connect_timeout_ms = 2000;
	if (q->o.command_timeout_ms <= 0)
		q->o.command_timeout_ms = 5000;
	if (!q->o.max_payload)
		q->o.max_payload = 1 << 20;
	if (q->o.reconnect_max_ms <= 0)
		q->o.reconnect_max_ms = 5000;
	q->url = u;
	explicit_bzero(&u, sizeof(u));
	rc = jobq__reconnect(q);
	if (rc) {
		snprintf(err, errlen, "%s", q->err);
		free(q);
		return rc;
	}
	*out = q;
	return JOBQ_OK;
}

void jobq_close(struct jobq *q)
{
	if (!q)
		return;
	jobq__disconnect(q);
	free(q);
}

const char *jobq_errmsg(const struct jobq *q)
{
	return q ? q->err : "no handle";
}

const char *jobq_queue_name(const struct jobq *q)
{
	return q->queue;
}

int jobq__append_eval(struct jobq *q, enum jobq_script_id s, int argc, const char **argv,
		      const size_t *lens)
{
	enum { FIXED = 4, STACK = 64 };
	const char *sv[STACK];
	size_t sl[STACK];
	const char **av = sv;
	size_t *al = sl;
	int rc;

	if (!q->c && (rc = jobq__reconnect(q)))
		return rc;
	if (argc + FIXED > STACK) {
		av = malloc(sizeof(*av) * (size_t)(argc + FIXED));
		al = malloc(sizeof(*al) * (size_t)(argc + FIXED));
		if (!av || !al) {
			free(av);
			free(al);
			return jobq__fail(q, JOBQ_ENOMEM, "out of memory");
		}
	}
	av[0] = "EVALSHA", al[0] = 7;
	av[1] = q->sha[s], al[1] = 40;
	av[2] = "1", al[2] = 1;
	av[3] = q->prefix, al[3] = strlen(q->prefix);
	for (int i = 0; i < argc; i++) {
		av[FIXED + i] = argv[i];
		al[FIXED + i] = lens ? lens[i] : strlen(argv[i]);
	}
	rc = JOBQ_OK;
	if (redisAppendCommandArgv(q->c, argc + FIXED, av, al) != REDIS_OK) {
		/* Commands appended before this one are unsent too: dropping
		 * the connection discards them all, so no reply goes unread. */
		rc = jobq__fail(q, JOBQ_ENOMEM, "out of memory");
		jobq__disconnect(q);
	}
	if (av != sv) {
		free(av);
		free(al);
	}
	return rc;
}

int jobq__read(struct jobq *q, redisReply **r)
{
	struct jobq__sigpipe sp;
	void *reply = NULL;
	int ok;

	*r = NULL;
	if (!q->c)
		return jobq__fail(q, JOBQ_EREDIS, "not connected");
	/* redisGetReply first flushes the pipelined commands (writes). */
	jobq__sigpipe_block(&sp);
	ok = redisGetReply(q->c, &reply) == REDIS_OK && reply;
	jobq__sigpipe_restore(&sp);
	if (!ok) {
		char why[200];
		int rc = jobq__fail(q, JOBQ_EREDIS, "redis: %s", io_error(q, why, sizeof(why)));

		jobq__disconnect(q);
		return rc;
	}
	*r = reply;
	return JOBQ_OK;
}

int jobq__is_noscript(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8);
}

int jobq__reply_error(struct jobq *q, const redisReply *r, const char *what)
{
	const char *m = r->str, *j = strstr(m, "jobq: ");

	/* Validation errors raised by our scripts carry "jobq: <field> ...". */
	if (j) {
		const char *end = strstr(j, " script:");
		int n = end ? (int)(end - j - 6) : (int)strlen(j + 6);

		return jobq__fail(q, JOBQ_EINVAL, "%s: %.*s", what, n, j + 6);
	}
	return jobq__fail(q, JOBQ_EREDIS, "%s: %s", what, m);
}

int jobq__eval(struct jobq *q, enum jobq_script_id s, int argc, const char **argv,
	       const size_t *lens, redisReply **out)
{
	*out = NULL;
	for (int tries = 0; tries < 2; tries++) {
		redisReply *r;
		int rc;

		if ((rc = jobq__ensure(q)) || (rc = jobq__append_eval(q, s, argc, argv, lens)))
			return rc;
		if ((rc = jobq__read(q, &r))) {
			char m[JOBQ_ERRMSG_MAX];

			snprintf(m, sizeof(m), "%s", q->err);
			return jobq__fail(q, rc, "%s: %s (the connection was lost after the command was sent: it may or may not have run)",
					  jobq_lua_scripts[s].name, m);
		}
		if (jobq__is_noscript(r) && tries == 0) {
			/* Redis lost its script cache (restart, SCRIPT FLUSH). */
			freeReplyObject(r);
			jobq__log(JOBQ_LOG_INFO, "redis lost the scripts; reloading");
			if ((rc = jobq__load_scripts(q)))
				return rc;
			continue;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			rc = jobq__reply_error(q, r, jobq_lua_scripts[s].name);
			freeReplyObject(r);
			return rc;
		}
		*out = r;
		return JOBQ_OK;
	}
	return jobq__fail(q, JOBQ_EREDIS, "%s: NOSCRIPT after reload", jobq_lua_scripts[s].name);
}

int jobq__reply_str(const redisReply *r, char *buf, size_t cap)
{
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
		if ((size_t)r->len >= cap)
			return -1;
		memcpy(buf, r->str, (size_t)r->len);
		buf[r->len] = '\0';
		return 0;
	}
	if (r->type == REDIS_REPLY_INTEGER) {
		int n = snprintf(buf, cap, "%lld", r->integer);

		return n < 0 || (size_t)n >= cap ? -1 : 0;
	}
	return -1;
}

int jobq__reply_u64(const redisReply *r, uint64_t *out)
{
	char buf[32], *end;

	if (r->type == REDIS_REPLY_INTEGER) {
		if (r->integer < 0)
			return -1;
		*out = (uint64_t)r->integer;
		return 0;
	}
	if (jobq__reply_str(r, buf, sizeof(buf)) || !buf[0] || buf[0] == '-')
		return -1;
	errno = 0;
	*out = strtoull(buf, &end, 10);
	return *end || errno ? -1 : 0;
}

int jobq__reply_double(const redisReply *r, double *out)
{
	char buf[64], *end;

	if (r->type == REDIS_REPLY_INTEGER) {
		*out = (double)r->integer;
		return 0;
	}
	if (jobq__reply_str(r, buf, sizeof(buf)) || !buf[0])
		return -1;
	*out = strtod(buf, &end);
	return *end ? -1 : 0;
}
