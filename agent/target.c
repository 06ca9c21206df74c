/*
 * target.c - resolve the attach target (see target.h).
 */
#include "agent/target.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/stapsdt.h"

#define SDT_MAX 512

/* Appends path to t if it declares jobq probes; describes it in found. */
static int consider(struct target *t, const char *path, char *found, size_t flen, char *err,
		    size_t errlen)
{
	struct sdt_probe *p = NULL;
	char list[512];
	size_t used = strlen(found);
	int n = sdt_list(path, &p, SDT_MAX, err, errlen);

	if (n < 0)
		return -1;
	if (sdt_count_provider(p, (size_t)n, "jobq") > 0) {
		for (size_t i = 0; i < t->npaths; i++)
			if (!strcmp(t->paths[i], path))
				goto out;
		if (t->npaths < TARGET_MAX_PATHS)
			snprintf(t->paths[t->npaths++], PATH_MAX, "%s", path);
	} else if (used < flen) {
		sdt_describe(p, (size_t)n, list, sizeof(list));
		snprintf(found + used, flen - used, "\n  %s: %s", path, list);
	}
out:
	free(p);
	return 0;
}

static int is_libjobq(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libjobq", 7) && strstr(base, ".so") != NULL;
}

static int resolve_pid(struct target *t, const char *arg, char *found, size_t flen, char *err,
		       size_t errlen)
{
	char link[64], exe[PATH_MAX], line[PATH_MAX + 256];
	char *end;
	long pid;
	ssize_t len;
	FILE *maps;

	errno = 0;
	pid = strtol(arg, &end, 10);
	if (errno || *end || pid <= 0 || pid > INT_MAX) {
		snprintf(err, errlen, "--pid: '%s' is not a process id", arg);
		return -1;
	}
	t->pid = (pid_t)pid;
	snprintf(t->desc, sizeof(t->desc), "pid:%ld", pid);
	snprintf(link, sizeof(link), "/proc/%ld/exe", pid);
	len = readlink(link, exe, sizeof(exe) - 1);
	if (len < 0) {
		snprintf(err, errlen, "--pid %ld: %s", pid,
			 errno == ENOENT ? "no such process"
			 : errno == EACCES || errno == EPERM
				 ? "permission denied reading /proc/PID/exe: looking into another "
				   "user's process needs root or CAP_SYS_PTRACE"
				 : strerror(errno));
		return -1;
	}
	exe[len] = '\0';
	if (consider(t, exe, found, flen, err, errlen))
		return -1;

	snprintf(link, sizeof(link), "/proc/%ld/maps", pid);
	maps = fopen(link, "re");
	if (!maps) {
		snprintf(err, errlen, "--pid %ld: open %s: %s", pid, link, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), maps)) {
		char *path = strchr(line, '/');

		if (!path)
			continue;
		path[strcspn(path, "\n")] = '\0';
		if (is_libjobq(path) && consider(t, path, found, flen, err, errlen)) {
			fclose(maps);
			return -1;
		}
	}
	fclose(maps);
	return 0;
}

int target_resolve(struct target *t, enum target_kind kind, const char *arg, char *err,
		   size_t errlen)
{
	char found[2048] = "", real[PATH_MAX];

	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->pid = -1;
	if (kind == TARGET_PID) {
		if (resolve_pid(t, arg, found, sizeof(found), err, errlen))
			return -1;
	} else {
		if (!realpath(arg, real)) {
			snprintf(err, errlen, "%s %s: %s", kind == TARGET_BIN ? "--bin" : "--lib", arg,
				 strerror(errno));
			return -1;
		}
		snprintf(t->desc, sizeof(t->desc), "%s:%s", kind == TARGET_BIN ? "bin" : "lib",
			 real);
		if (consider(t, real, found, sizeof(found), err, errlen))
			return -1;
	}
	if (t->npaths == 0) {
		snprintf(err, errlen,
			 "%s has no 'jobq' USDT probes (is it linked with libjobq built with "
			 "probes?%s). Probes found:%s",
			 t->desc,
			 kind == TARGET_BIN ? " A program using the shared libjobq has its probes "
					      "in the library: attach with --lib PATH/libjobq.so"
					    : "",
			 found[0] ? found : " none (no libjobq mapped)");
		return -1;
	}
	return 0;
}
