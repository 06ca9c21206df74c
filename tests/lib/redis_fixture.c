/* redis_fixture.c - see redis_fixture.h. */
#include "tests/lib/redis_fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* 1 if a PING on the port answers +PONG. */
static int pong(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char buf[16] = { 0 };
	struct pollfd p;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;

	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && write(fd, "PING\r\n", 6) == 6) {
		p.fd = fd, p.events = POLLIN;
		if (poll(&p, 1, 1000) == 1 && read(fd, buf, sizeof(buf) - 1) > 0)
			ok = !strncmp(buf, "+PONG", 5);
	}
	close(fd);
	return ok;
}

static int spawn(struct redis_fixture *f, char *err, size_t errlen)
{
	char port[16], log[300];
	pid_t parent = getpid(), pid;

	snprintf(port, sizeof(port), "%d", f->port);
	snprintf(log, sizeof(log), "%s/redis.log", f->dir);
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		/* Die with the test, whatever happens to it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
		       "--dir", f->dir, "--save", "", "--appendonly", "yes", "--daemonize", "no",
		       "--logfile", log, (char *)NULL);
		fprintf(stderr, "redis_fixture: exec redis-server: %s\n", strerror(errno));
		_exit(127);
	}
	f->pid = pid;
	for (int i = 0; i < 1000; i++) { /* up to ~10 s on a loaded machine */
		int st;

		if (pong(f->port))
			return 0;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			f->pid = 0;
			snprintf(err, errlen, "redis-server exited during start-up (status %d; see %s)",
				 WIFEXITED(st) ? WEXITSTATUS(st) : -1, log);
			return -1;
		}
		sleep_ms(10);
	}
	snprintf(err, errlen, "redis-server on port %d did not answer PING within 10 s", f->port);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	f->pid = 0;
	return -1;
}

int redis_fixture_start(struct redis_fixture *f, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");

	memset(f, 0, sizeof(*f));
	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		snprintf(err, errlen, "redis-server is not installed (scripts/deps.sh installs it)");
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "%s/jobq-redis-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir)) {
		snprintf(err, errlen, "mkdtemp %s: %s", f->dir, strerror(errno));
		f->dir[0] = '\0';
		return -1;
	}
	for (int tries = 0; tries < 5; tries++) { /* the free port may be taken meanwhile */
		f->port = free_port();
		if (f->port <= 0) {
			snprintf(err, errlen, "no free loopback port: %s", strerror(errno));
			continue;
		}
		if (spawn(f, err, errlen) == 0) {
			snprintf(f->url, sizeof(f->url), "redis://127.0.0.1:%d", f->port);
			return 0;
		}
	}
	redis_fixture_stop(f);
	return -1;
}

int redis_fixture_pause(struct redis_fixture *f)
{
	int st;

	if (!f->pid)
		return 0;
	kill(f->pid, SIGTERM); /* redis flushes the AOF and exits */
	for (int i = 0; i < 1000; i++) {
		if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
			f->pid = 0;
			return 0;
		}
		sleep_ms(10);
	}
	kill(f->pid, SIGKILL);
	waitpid(f->pid, &st, 0);
	f->pid = 0;
	return -1;
}

int redis_fixture_resume(struct redis_fixture *f, char *err, size_t errlen)
{
	for (int tries = 0; tries < 50; tries++) { /* port in TIME_WAIT is fine; retry if busy */
		if (spawn(f, err, errlen) == 0)
			return 0;
		sleep_ms(100);
	}
	return -1;
}

int redis_fixture_restart(struct redis_fixture *f, char *err, size_t errlen)
{
	if (redis_fixture_pause(f)) {
		snprintf(err, errlen, "redis-server did not stop on SIGTERM");
		return -1;
	}
	return redis_fixture_resume(f, err, errlen);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path) ? -1 : 0;
}

void redis_fixture_stop(struct redis_fixture *f)
{
	redis_fixture_pause(f);
	if (f->dir[0] && !getenv("REDIS_FIXTURE_KEEP"))
		nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	f->dir[0] = '\0';
}

int redis_fixture_skip(const char *why)
{
	fprintf(stderr, "\n*** SKIP: %s ***\n\n", why);
	return 77;
}
