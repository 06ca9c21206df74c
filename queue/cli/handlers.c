/* handlers.c - the CLI worker's job handlers: built-in demo handlers and
 * external commands, plus the optional job log (one line per finished job,
 * written with a single O_APPEND write so lines from concurrent threads and
 * processes never interleave and survive a SIGKILL). */
#include "queue/cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum kind { H_NOOP, H_SLEEP, H_CPU, H_FAIL, H_EXPORT, H_EXEC };

struct spec {
	struct cli_handlers *owner;
	char type[JOBQ_TYPE_MAX + 1];
	const char *arg; /* TYPE=SPEC as given */
	enum kind kind;
	uint32_t ms;
	double prob;
	char path[600];
};

#define MAX_SPECS 64

struct cli_handlers {
	int log_fd; /* -1: no job log */
	uint32_t exec_timeout_ms;
	struct spec specs[MAX_SPECS];
	size_t n;
};

struct cli_handlers *cli_handlers_new(const char *job_log, uint32_t exec_timeout_ms)
{
	struct cli_handlers *h = calloc(1, sizeof(*h));

	if (!h) {
		cli_err("out of memory");
		return NULL;
	}
	h->log_fd = -1;
	h->exec_timeout_ms = exec_timeout_ms;
	if (job_log) {
		h->log_fd = open(job_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (h->log_fd < 0) {
			cli_err("--job-log %s: %s", job_log, strerror(errno));
			free(h);
			return NULL;
		}
	}
	return h;
}

void cli_handlers_free(struct cli_handlers *h)
{
	if (!h)
		return;
	if (h->log_fd >= 0)
		close(h->log_fd);
	free(h);
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Burns ms of this thread's CPU time. */
static void burn_ms(uint32_t ms)
{
	uint64_t end = now_ns(CLOCK_THREAD_CPUTIME_ID) + (uint64_t)ms * 1000000;
	volatile uint64_t x = 0;

	while (now_ns(CLOCK_THREAD_CPUTIME_ID) < end)
		for (int i = 0; i < 1000; i++)
			x += (uint64_t)i;
}

/* Runs the external command with the payload on stdin; exit 0 = success. */
/* "JOBQ_TRACEPARENT=00-<trace id>-<span id>-<flags>": the job's
 * job.enqueue span, so the command can continue the trace. 0 if the job
 * carries no trace. */
static int traceparent(const struct jobq_job *j, char *out, size_t cap)
{
	static const uint8_t zero[16];
	size_t o;

	if (!memcmp(j->trace_id, zero, 16))
		return 0;
	o = (size_t)snprintf(out, cap, "JOBQ_TRACEPARENT=00-");
	for (int i = 0; i < 16 && o < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%02x", j->trace_id[i]);
	if (o < cap)
		o += (size_t)snprintf(out + o, cap - o, "-");
	for (int i = 0; i < 8 && o < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%02x", j->span_id[i]);
	if (o < cap)
		o += (size_t)snprintf(out + o, cap - o, "-%02x", j->trace_flags);
	return o < cap;
}

static int run_exec(const struct spec *s, const struct jobq_job *j, uint32_t timeout_ms, char *err,
		    size_t errlen)
{
	char *argv[] = { (char *)s->path, NULL };
	char env_id[48], env_tenant[96], env_type[96], env_att[48], env_tp[80];
	char **envp;
	size_t nenv = 0, off = 0;
	posix_spawn_file_actions_t fa;
	int in[2], pidfd = -1, st, rc = -1;
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000;
	pid_t pid;

	while (environ[nenv])
		nenv++;
	envp = calloc(nenv + 6, sizeof(*envp));
	if (!envp) {
		snprintf(err, errlen, "exec: out of memory");
		return -1;
	}
	memcpy(envp, environ, nenv * sizeof(*envp));
	snprintf(env_id, sizeof(env_id), "JOBQ_JOB_ID=%" PRIu64, j->id);
	snprintf(env_tenant, sizeof(env_tenant), "JOBQ_TENANT=%s", j->tenant);
	snprintf(env_type, sizeof(env_type), "JOBQ_TYPE=%s", j->type);
	snprintf(env_att, sizeof(env_att), "JOBQ_ATTEMPT=%u", j->attempt);
	envp[nenv] = env_id, envp[nenv + 1] = env_tenant, envp[nenv + 2] = env_type;
	envp[nenv + 3] = env_att;
	if (traceparent(j, env_tp, sizeof(env_tp)))
		envp[nenv + 4] = env_tp;
	/* O_CLOEXEC: a concurrent spawn must not inherit our pipe's write end. */
	if (pipe2(in, O_CLOEXEC)) {
		snprintf(err, errlen, "exec: pipe: %s", strerror(errno));
		free(envp);
		return -1;
	}
	if ((errno = posix_spawn_file_actions_init(&fa)) ||
	    (errno = posix_spawn_file_actions_adddup2(&fa, in[0], 0)) ||
	    (errno = posix_spawn(&pid, s->path, &fa, NULL, argv, envp))) {
		snprintf(err, errlen, "exec %s: %s", s->path, strerror(errno));
		posix_spawn_file_actions_destroy(&fa);
		close(in[0]);
		close(in[1]);
		free(envp);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(in[0]);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	for (;;) {
		struct pollfd p[2] = { { pidfd, POLLIN, 0 }, { in[1], POLLOUT, 0 } };
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000) + 1;
		int np = in[1] >= 0 ? 2 : 1;

		if (pidfd < 0) { /* no pidfd: poll the child every millisecond */
			p[0].fd = -1;
			if (waitpid(pid, &st, WNOHANG) == pid)
				goto reaped;
			left = left > 1 ? 1 : left;
		}
		if (now >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			snprintf(err, errlen, "exec %s: timed out after %u ms", s->path, timeout_ms);
			goto out;
		}
		if (poll(p, (nfds_t)np, left) < 0 && errno != EINTR) {
			snprintf(err, errlen, "exec: poll: %s", strerror(errno));
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			goto out;
		}
		if (np == 2 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = off < j->payload_len
					    ? write(in[1], (const char *)j->payload + off, j->payload_len - off)
					    : 0;

			if (w > 0)
				off += (size_t)w;
			if (off >= j->payload_len || (w < 0 && errno != EAGAIN)) {
				close(in[1]); /* EOF (or the child closed stdin: EPIPE) */
				in[1] = -1;
			}
		}
		if (pidfd >= 0 && (p[0].revents & POLLIN)) {
			waitpid(pid, &st, 0);
			goto reaped;
		}
	}
reaped:
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		rc = 0;
	else if (WIFEXITED(st))
		snprintf(err, errlen, "exec %s: exit status %d", s->path, WEXITSTATUS(st));
	else
		snprintf(err, errlen, "exec %s: killed by signal %d", s->path, WTERMSIG(st));
out:
	if (in[1] >= 0)
		close(in[1]);
	if (pidfd >= 0)
		close(pidfd);
	return rc;
}

/* Tenant/type in the job log: bytes <= 0x20 and '%' as %XX, so a line
 * always has exactly nine space-separated fields. */
static size_t escape(char *dst, size_t cap, const char *s)
{
	size_t o = 0;

	for (; *s && o + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c == '%')
			o += (size_t)snprintf(dst + o, cap - o, "%%%02X", c);
		else
			dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return o;
}

/* erand48 with per-thread state: drand48 is not thread-safe. */
static double rand01(void)
{
	static _Thread_local unsigned short xs[3];
	static _Thread_local int seeded;

	if (!seeded) {
		uint64_t t = now_ns(CLOCK_MONOTONIC) ^ (uint64_t)(uintptr_t)&seeded;

		xs[0] = (unsigned short)t, xs[1] = (unsigned short)(t >> 16), xs[2] = (unsigned short)(t >> 32);
		seeded = 1;
	}
	return erand48(xs);
}

static int handle(const struct jobq_job *j, void *user, char *err, size_t errlen)
{
	const struct spec *s = user;
	uint64_t start = now_ns(CLOCK_REALTIME), end;
	int rc = 0;

	switch (s->kind) {
	case H_NOOP: break;
	case H_SLEEP: sleep_ms(s->ms); break;
	case H_EXPORT: sleep_ms(s->ms); break;
	case H_CPU: burn_ms(s->ms); break;
	case H_FAIL:
		sleep_ms(s->ms);
		if (rand01() < s->prob) {
			snprintf(err, errlen, "builtin:fail (probability %g)", s->prob);
			rc = 1;
		}
		break;
	case H_EXEC: rc = run_exec(s, j, s->owner->exec_timeout_ms, err, errlen); break;
	}
	end = now_ns(CLOCK_REALTIME);
	if (s->owner->log_fd >= 0) {
		char line[512], t[200], ty[200];
		int n;

		escape(t, sizeof(t), j->tenant);
		escape(ty, sizeof(ty), j->type);
		n = snprintf(line, sizeof(line), "%" PRIu64 " %s %s %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %s %u\n",
			     j->id, t, ty, jobq_priority_name(j->priority), j->enqueued_unix_ns, start,
			     end, rc ? "fail" : "ok", j->attempt);
		if (n > 0 && write(s->owner->log_fd, line, (size_t)n) != n) {
			/* The job itself succeeded or failed on its own; a log
			 * write error must not change its outcome. */
		}
	}
	return rc;
}

int cli_handlers_add(struct cli_handlers *h, struct jobq_worker *w, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char type[JOBQ_TYPE_MAX + 1], rest[600];
	struct spec *s;
	char *p;

	if (!eq || eq == arg || (size_t)(eq - arg) > JOBQ_TYPE_MAX) {
		cli_err("--handler must be TYPE=SPEC (got \"%s\")", arg);
		return -1;
	}
	if (h->n == MAX_SPECS) {
		cli_err("at most %d --handler options", MAX_SPECS);
		return -1;
	}
	snprintf(type, sizeof(type), "%.*s", (int)(eq - arg), arg);
	snprintf(rest, sizeof(rest), "%s", eq + 1);
	for (size_t i = 0; i < h->n; i++) {
		if (!strcmp(h->specs[i].type, type)) {
			/* The library would keep the last one silently. */
			cli_err("--handler %s given twice (\"%s\" and \"%s\"): one handler per type",
				type, h->specs[i].arg, arg);
			return -1;
		}
	}
	s = &h->specs[h->n];
	memset(s, 0, sizeof(*s));
	s->owner = h;
	snprintf(s->type, sizeof(s->type), "%s", type);
	s->arg = arg;
	if (!strncmp(rest, "exec:", 5)) {
		s->kind = H_EXEC;
		snprintf(s->path, sizeof(s->path), "%s", rest + 5);
		if (!s->path[0] || access(s->path, X_OK)) {
			cli_err("--handler %s: \"%s\" is not an executable file", type, s->path);
			return -1;
		}
	} else if (!strncmp(rest, "builtin:", 8)) {
		char *name = rest + 8, *a1 = NULL, *a2 = NULL;

		if ((p = strchr(name, ':'))) {
			*p = '\0', a1 = p + 1;
			if ((p = strchr(a1, ':')))
				*p = '\0', a2 = p + 1;
		}
		if (!strcmp(name, "noop") && !a1) {
			s->kind = H_NOOP;
		} else if ((!strcmp(name, "sleep") || !strcmp(name, "cpu") || !strcmp(name, "export")) &&
			   a1 && !a2 && !cli_u32(a1, &s->ms)) {
			s->kind = name[0] == 's' ? H_SLEEP : name[0] == 'c' ? H_CPU : H_EXPORT;
		} else if (!strcmp(name, "fail") && a1 && !cli_double(a1, &s->prob) && s->prob >= 0 &&
			   s->prob <= 1 && (!a2 || !cli_u32(a2, &s->ms))) {
			s->kind = H_FAIL;
		} else if (!strcmp(name, "noop") || !strcmp(name, "sleep") || !strcmp(name, "cpu") ||
			   !strcmp(name, "export") || !strcmp(name, "fail")) {
			/* A known builtin with a wrong argument: say which rule. */
			cli_err("--handler %s: bad arguments in \"%s\" (noop takes none; sleep:MS, cpu:MS and "
				"export:MS take MS, an integer 0..4294967295; fail:PROB[:MS] takes PROB in 0..1)",
				type, eq + 1);
			return -1;
		} else {
			cli_err("--handler %s: unknown builtin \"%s\" (noop, sleep:MS, cpu:MS, fail:PROB[:MS], export:MS)",
				type, eq + 1);
			return -1;
		}
	} else {
		cli_err("--handler %s: SPEC must start with builtin: or exec: (got \"%s\")", type, rest);
		return -1;
	}
	if (jobq_worker_handle(w, type, handle, s)) {
		cli_err("--handler %s: %s", type, jobq_worker_errmsg(w));
		return -1;
	}
	h->n++;
	return 0;
}
