/*
 * target.c - resolve the attach target (see target.h).
 */
#include "agent/target.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

#define DELETED " (deleted)"

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* Files already considered, by (dev, inode): a library is mapped several
 * times (one mapping per segment). */
struct seen {
	dev_t dev[TARGET_MAX_PATHS * 4];
	ino_t ino[TARGET_MAX_PATHS * 4];
	size_t n;
};

static int seen_before(struct seen *sn, const struct stat *st)
{
	for (size_t i = 0; i < sn->n; i++)
		if (sn->dev[i] == st->st_dev && sn->ino[i] == st->st_ino)
			return 1;
	if (sn->n < sizeof(sn->ino) / sizeof(sn->ino[0])) {
		sn->dev[sn->n] = st->st_dev;
		sn->ino[sn->n++] = st->st_ino;
	}
	return 0;
}

/*
 * A path that opens the very file a mapping of pid maps (inode ino):
 * its own path when that still is the file; else the same path seen from
 * the process's root (another mount namespace); else, for a file deleted
 * or replaced on disk since it was mapped ("(deleted)" in maps),
 * /proc/PID/map_files/START-END, which opens the mapped inode itself
 * (root: CAP_SYS_ADMIN). Uprobes attach to that inode, so they reach the
 * process. Returns 0 with out set, or -1.
 */
static int mapped_file_path(long pid, const char *range, unsigned long ino, const char *path,
			    char *out, size_t outlen, struct stat *st)
{
	char plain[PATH_MAX];
	size_t n = strlen(path);

	snprintf(plain, sizeof(plain), "%.*s", (int)(ends_with(path, DELETED) ? n - strlen(DELETED) : n),
		 path);
	if (!ends_with(path, DELETED)) {
		if (stat(plain, st) == 0 && st->st_ino == ino) {
			snprintf(out, outlen, "%s", plain);
			return 0;
		}
		snprintf(out, outlen, "/proc/%ld/root%s", pid, plain);
		if (stat(out, st) == 0 && st->st_ino == ino)
			return 0;
	}
	snprintf(out, outlen, "/proc/%ld/map_files/%s", pid, range);
	if (stat(out, st) == 0 && st->st_ino == ino)
		return 0;
	return -1;
}

int target_pid_valid(const char *arg)
{
	char *end;
	long pid;

	errno = 0;
	pid = strtol(arg, &end, 10);
	return !errno && end != arg && !*end && pid > 0 && pid <= INT_MAX &&
	       arg[strspn(arg, "0123456789")] == '\0';
}

static int resolve_pid(struct target *t, const char *arg, char *found, size_t flen, char *err,
		       size_t errlen)
{
	char link[64], exe[PATH_MAX], line[PATH_MAX + 256], use[PATH_MAX + 64];
	struct seen sn = { .n = 0 };
	struct stat st;
	char *end;
	long pid;
	ssize_t len;
	FILE *maps;

	if (!target_pid_valid(arg)) {
		snprintf(err, errlen, "--pid: '%s' is not a process id", arg);
		return -1;
	}
	pid = strtol(arg, &end, 10);
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
	/* The binary as the process runs it: /proc/PID/exe opens that inode
	 * even when the file on disk was replaced or deleted. */
	if (stat(link, &st) == 0) {
		struct stat on_disk;
		const char *path = exe;

		if (ends_with(exe, DELETED) || stat(exe, &on_disk) != 0 ||
		    on_disk.st_ino != st.st_ino || on_disk.st_dev != st.st_dev) {
			path = link;
			fprintf(stderr,
				"jobq-agent: pid %ld runs %s, replaced on disk or in another mount "
				"namespace: attaching through %s\n",
				pid, exe, link);
		}
		seen_before(&sn, &st);
		if (consider(t, path, found, flen, err, errlen))
			return -1;
	} else if (consider(t, exe, found, flen, err, errlen)) {
		return -1;
	}

	snprintf(link, sizeof(link), "/proc/%ld/maps", pid);
	maps = fopen(link, "re");
	if (!maps) {
		snprintf(err, errlen, "--pid %ld: open %s: %s", pid, link, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), maps)) {
		char range[64];
		unsigned long ino;
		char *path = strchr(line, '/');

		if (!path)
			continue;
		path[strcspn(path, "\n")] = '\0';
		if (!is_libjobq(path))
			continue;
		/* "start-end perms offset dev inode path" */
		if (sscanf(line, "%63s %*s %*s %*s %lu", range, &ino) != 2)
			continue;
		if (mapped_file_path(pid, range, ino, path, use, sizeof(use), &st)) {
			snprintf(err, errlen,
				 "--pid %ld maps %s, which can no longer be opened (not at that path, "
				 "not through /proc/%ld/root or /proc/%ld/map_files/%s): restart the "
				 "worker or attach with --lib to the library it should use",
				 pid, path, pid, pid, range);
			fclose(maps);
			return -1;
		}
		if (seen_before(&sn, &st))
			continue;
		if (strcmp(use, path))
			fprintf(stderr,
				"jobq-agent: pid %ld maps %s%s: attaching through %s\n", pid, path,
				ends_with(path, DELETED) ? ", replaced on disk since it was loaded"
							 : " from another mount namespace",
				use);
		if (consider(t, use, found, flen, err, errlen)) {
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
