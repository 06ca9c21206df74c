/*
 * target.h - what the agent attaches to: the files holding jobq probes and
 * the pid filter, resolved from --pid / --bin / --lib, with clear errors
 * (no such pid, no such file, no jobq probes: here is what it has).
 */
#ifndef JOBQ_AGENT_TARGET_H
#define JOBQ_AGENT_TARGET_H

#include <limits.h>
#include <sys/types.h>

#define TARGET_MAX_PATHS 8

enum target_kind { TARGET_PID, TARGET_BIN, TARGET_LIB };

struct target {
	enum target_kind kind;
	pid_t pid;            /* TARGET_PID: that process; else -1 (every process) */
	char desc[PATH_MAX + 8]; /* "pid:123", "bin:/path", "lib:/path" (Hello.target) */
	size_t npaths;
	char paths[TARGET_MAX_PATHS][PATH_MAX]; /* files with jobq probes */
};

/* Whether arg is a process id (a decimal number in 1..INT_MAX). */
int target_pid_valid(const char *arg);

/*
 * Resolves arg (a pid for TARGET_PID, else a path) into t. --pid looks at
 * /proc/PID/exe and every libjobq*.so the process maps. Returns 0, or -1
 * with a message in err.
 */
int target_resolve(struct target *t, enum target_kind kind, const char *arg, char *err,
		   size_t errlen);

#endif
