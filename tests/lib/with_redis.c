/* with-redis - run a command against a private redis-server.
 *
 *   with-redis CMD [ARGS...]
 *
 * Starts redis-server via tests/lib/redis_fixture, exports JOBQ_REDIS_URL,
 * REDIS_PORT and REDIS_DIR, runs CMD, stops the server and exits with
 * CMD's status (77 if redis-server cannot be started). Lets shell tests
 * and demos reuse the fixture. */
#include "tests/lib/redis_fixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct redis_fixture rf;
	char err[256], port[16];
	int st = 0, rc;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: with-redis CMD [ARGS...]\n");
		return 2;
	}
	if (redis_fixture_start(&rf, err, sizeof(err)))
		return redis_fixture_skip(err);
	snprintf(port, sizeof(port), "%d", rf.port);
	if (setenv("JOBQ_REDIS_URL", rf.url, 1) || setenv("REDIS_PORT", port, 1) ||
	    setenv("REDIS_DIR", rf.dir, 1)) {
		perror("with-redis: setenv");
		redis_fixture_stop(&rf);
		return 1;
	}
	signal(SIGINT, SIG_IGN); /* the child gets it; we clean up after */
	pid = fork();
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		execvp(argv[1], argv + 1);
		perror("with-redis: exec");
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid) {
		perror("with-redis: fork/wait");
		rc = 1;
	} else {
		rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	redis_fixture_stop(&rf);
	return rc;
}
