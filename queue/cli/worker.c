/* worker.c - `jobq worker`: run jobs with built-in or external handlers. */
#include "queue/cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct jobq_worker *g_worker;

static void on_signal(int sig)
{
	(void)sig;
	if (g_worker)
		jobq_worker_stop(g_worker); /* async-signal-safe */
}

static void log_stderr(enum jobq_log_level lvl, const char *msg, void *user)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	int verbose = *(int *)user;

	if (lvl == JOBQ_LOG_DEBUG && !verbose)
		return;
	fprintf(stderr, "jobq: %s: %s\n", names[lvl], msg);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: jobq worker --handler TYPE=SPEC [--handler ...] [options]\n"
		"  SPEC: builtin:noop | builtin:sleep:MS | builtin:cpu:MS | builtin:fail:PROB[:MS]\n"
		"        | builtin:export:MS | exec:/path/cmd   (TYPE \"*\" = any type)\n"
		"  --concurrency N      handler threads (default 4)\n"
		"  --cap N              default per-tenant concurrency cap (0 = unlimited)\n"
		"  --weights FILE       lines \"tenant weight [cap]\"\n"
		"  --batch N            jobs leased per round trip (default 16)\n"
		"  --prefetch N         jobs leased ahead of free slots (default 0)\n"
		"  --lease-ms MS        lease length (default 30000)\n"
		"  --aging-ms MS        priority aging (default 10000)\n"
		"  --backoff-base-ms MS retry backoff base (default 1000)\n"
		"  --exec-timeout-ms MS timeout for exec: handlers (default 60000)\n"
		"  --job-log FILE       append one line per finished job\n"
		"  --verbose            debug log lines\n");
}

static int load_weights(struct jobq *q, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int lineno = 0;

	if (!f) {
		cli_err("--weights %s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char tenant[128], extra[8];
		double weight;
		unsigned cap = 0;
		int n;

		lineno++;
		if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
			continue;
		n = sscanf(line, "%127s %lf %u %7s", tenant, &weight, &cap, extra);
		if (n < 2 || n > 3) {
			cli_err("--weights %s:%d: expected \"tenant weight [cap]\"", path, lineno);
			fclose(f);
			return -1;
		}
		if (jobq_tenant_set_weight(q, tenant, weight) ||
		    (n == 3 && jobq_tenant_set_cap(q, tenant, cap))) {
			cli_err("--weights %s:%d: %s", path, lineno, jobq_errmsg(q));
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

int cmd_worker(const struct cli_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "concurrency", required_argument, 0, 'c' }, { "cap", required_argument, 0, 'C' },
		{ "weights", required_argument, 0, 'w' },     { "handler", required_argument, 0, 'H' },
		{ "batch", required_argument, 0, 'b' },       { "lease-ms", required_argument, 0, 'l' },
		{ "aging-ms", required_argument, 0, 'a' },    { "exec-timeout-ms", required_argument, 0, 'x' },
		{ "backoff-base-ms", required_argument, 0, 'B' }, { "prefetch", required_argument, 0, 'p' },
		{ "job-log", required_argument, 0, 'j' },     { "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },              { 0, 0, 0, 0 },
	};
	struct jobq_worker_opts o;
	const char *weights = NULL, *job_log = NULL;
	const char *handlers[64];
	int nh = 0, c, rc = EXIT_RUNTIME, have_cap = 0;
	static int verbose;
	uint32_t cap = 0, v, exec_timeout = 60000;
	struct cli_handlers *hs = NULL;
	struct jobq_worker *w = NULL;
	struct jobq *q = NULL;
	char err[256];
	struct sigaction sa;

	jobq_worker_opts_init(&o);
	optind = 1;
	opterr = 0; /* our own messages, starting "jobq:" */
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (cli_u32(optarg, &v) || v < 1 || v > 1024) {
				cli_err("--concurrency must be 1..1024");
				return EXIT_USAGE;
			}
			o.concurrency = (int)v;
			break;
		case 'C':
			if (cli_u32(optarg, &cap)) {
				cli_err("--cap must be an integer from 0 to 4294967295");
				return EXIT_USAGE;
			}
			have_cap = 1;
			break;
		case 'w': weights = optarg; break;
		case 'H':
			if (nh == 64) {
				cli_err("too many --handler options");
				return EXIT_USAGE;
			}
			handlers[nh++] = optarg;
			break;
		case 'b':
			if (cli_u32(optarg, &o.batch) || o.batch < 1 || o.batch > 1024) {
				cli_err("--batch must be 1..1024");
				return EXIT_USAGE;
			}
			break;
		case 'l':
			if (cli_u32(optarg, &o.lease_ms) || o.lease_ms < 100) {
				cli_err("--lease-ms must be >= 100");
				return EXIT_USAGE;
			}
			break;
		case 'a':
			if (cli_u32(optarg, &o.aging_ms)) {
				cli_err("--aging-ms must be an integer from 0 to 4294967295");
				return EXIT_USAGE;
			}
			break;
		case 'B':
			if (cli_u32(optarg, &o.backoff_base_ms)) {
				cli_err("--backoff-base-ms must be an integer from 0 to 4294967295");
				return EXIT_USAGE;
			}
			break;
		case 'p':
			if (cli_u32(optarg, &o.prefetch) || o.prefetch > 4096) {
				cli_err("--prefetch must be 0..4096");
				return EXIT_USAGE;
			}
			break;
		case 'x':
			if (cli_u32(optarg, &exec_timeout) || !exec_timeout) {
				cli_err("--exec-timeout-ms must be >= 1");
				return EXIT_USAGE;
			}
			break;
		case 'j': job_log = optarg; break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default:
			cli_opt_error("worker", c, argc, argv, opts);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_err("unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if (!nh) {
		cli_err("at least one --handler TYPE=SPEC is required");
		usage(stderr);
		return EXIT_USAGE;
	}
	jobq_set_log(log_stderr, &verbose);
	o.conn.redis_url = g->redis_url;
	o.conn.queue = g->queue;
	if (jobq_worker_new(&o, &w, err, sizeof(err))) {
		cli_err("%s", err);
		return EXIT_USAGE;
	}
	if (!(hs = cli_handlers_new(job_log, exec_timeout)))
		goto out;
	for (int i = 0; i < nh; i++)
		if (cli_handlers_add(hs, w, handlers[i])) {
			rc = EXIT_USAGE;
			goto out;
		}
	/* Policy lives in Redis and is shared by every worker. */
	if ((have_cap || weights) && !(q = cli_connect(g)))
		goto out;
	if (have_cap && jobq_set_default_cap(q, cap)) {
		cli_err("--cap: %s", jobq_errmsg(q));
		goto out;
	}
	if (weights && load_weights(q, weights))
		goto out;
	jobq_close(q);
	q = NULL;

	g_worker = w;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL)) {
		cli_err("sigaction failed");
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if (jobq_worker_run(w)) {
		cli_err("worker: %s", jobq_worker_errmsg(w));
		goto out;
	}
	rc = 0;
out:
	g_worker = NULL;
	jobq_close(q);
	jobq_worker_free(w);
	cli_handlers_free(hs);
	return rc;
}
