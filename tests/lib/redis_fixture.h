/* redis_fixture.h - a real, private redis-server for one test program.
 *
 * redis_fixture_start() runs `redis-server` on a free 127.0.0.1 port in a
 * fresh mkdtemp directory with `--save '' --appendonly yes` (so a restart
 * keeps every job), waits until PING answers and fills in a redis:// URL.
 * The server dies with the test (PR_SET_PDEATHSIG) even if the test
 * crashes; redis_fixture_stop() stops it and removes the directory.
 *
 *   struct redis_fixture rf;
 *   char err[256];
 *   if (redis_fixture_start(&rf, err, sizeof(err)))
 *       return redis_fixture_skip(err);    // prints loudly, returns 77
 *   ... use rf.url ...
 *   redis_fixture_stop(&rf);
 */
#ifndef REDIS_FIXTURE_H
#define REDIS_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

struct redis_fixture {
	pid_t pid;        /* redis-server, 0 when stopped */
	int port;
	char dir[256];    /* data dir (redis.log, appendonlydir) */
	char url[64];     /* redis://127.0.0.1:<port> */
};

/* 0 on success; -1 with a reason in err (e.g. redis-server not installed). */
int redis_fixture_start(struct redis_fixture *f, char *err, size_t errlen);
/* Stops the server gracefully (SIGTERM, AOF flushed) and starts it again
 * on the same port and directory; waits for PING. */
int redis_fixture_restart(struct redis_fixture *f, char *err, size_t errlen);
/* Stops the server only (directory kept); redis_fixture_resume() restarts. */
int redis_fixture_pause(struct redis_fixture *f);
int redis_fixture_resume(struct redis_fixture *f, char *err, size_t errlen);
/* Stops the server and removes its directory. Safe to call twice. */
void redis_fixture_stop(struct redis_fixture *f);
/* Prints "SKIP: <why>" loudly to stderr and returns 77 (the skip code). */
int redis_fixture_skip(const char *why);

#endif
