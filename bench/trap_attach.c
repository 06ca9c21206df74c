/*
 * trap_attach - attaches an empty program (bpf/bench_trap.bpf.c) to the
 * jobq:start and jobq:finish probes of a binary (every process, pid -1),
 * prints "attached" and holds the links until SIGINT/SIGTERM. The agent
 * benchmark's baseline: what the trap alone costs.
 *
 *   trap_attach BINARY
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "bpf/bench_trap.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static const char *const probes[] = { "start", "finish" };
	struct sigaction sa = { .sa_handler = on_signal };
	struct bpf_link *links[2] = { NULL, NULL };
	struct bench_trap_bpf *skel;
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: trap_attach BINARY\n");
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	skel = bench_trap_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "trap_attach: load: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		links[i] = bpf_program__attach_usdt(skel->progs.bench_trap, -1, argv[1], "jobq",
						    probes[i], NULL);
		if (!links[i]) {
			fprintf(stderr, "trap_attach: attach jobq:%s in %s: %s\n", probes[i], argv[1],
				strerror(errno));
			goto cleanup;
		}
	}
	fprintf(stderr, "trap_attach: attached\n");
	while (!stop)
		pause();
	rc = 0;
cleanup:
	for (int i = 1; i >= 0; i--)
		bpf_link__destroy(links[i]);
	bench_trap_bpf__destroy(skel);
	return rc;
}
