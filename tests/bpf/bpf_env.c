/*
 * bpf_env.c - see bpf_env.h.
 */
#include "tests/bpf/bpf_env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

static void skip(const char *test, const char *why)
{
	fprintf(stderr, "\n*** SKIP %s: %s ***\n\n", test, why);
	exit(77);
}

void bpf_env_require(const char *test)
{
	int fd;

	if (geteuid() != 0)
		skip(test, "needs root to load BPF programs (run `make test` as root)");
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		skip(test, "kernel has no BTF (/sys/kernel/btf/vmlinux missing)");
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "jobq_probe", 4, 8, 1, NULL);
	if (fd < 0) {
		if (errno == ENOSYS || errno == EPERM) {
			char why[160];

			snprintf(why, sizeof(why), "bpf() unavailable in this kernel/container: %s",
				 strerror(errno));
			skip(test, why);
		}
		/* Any other error is a real failure the test should show. */
		return;
	}
	close(fd);
}
