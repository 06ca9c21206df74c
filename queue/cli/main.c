/* main.c - `jobq`: global options and subcommand dispatch. */
#include "queue/cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: jobq [--redis URL] [--queue NAME] COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  enqueue  add jobs (flags, --count N, or --stdin JSON lines)\n"
		"  worker   run jobs with fair scheduling across tenants\n"
		"  stats    per-tenant depth, age, in-flight (--json)\n"
		"  dead     list | retry ID | retry --all\n"
		"  tenant   set TENANT [--weight W] [--cap N]\n"
		"\n"
		"--redis defaults to $JOBQ_REDIS_URL, then redis://127.0.0.1:6379.\n"
		"Run `jobq COMMAND --help` for a command's options; see docs/cli.md.\n");
}

void cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("jobq: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_opt_error(const char *cmd, int c, int argc, char **argv, const struct option *opts)
{
	/* getopt_long has moved optind past the offending element, except for
	 * an unknown short option inside a group ("-xy"): name it by optopt. */
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	int len = (int)strcspn(arg, "=");

	if (c == ':') {
		cli_err("%s: option \"%s\" needs a value", cmd, arg);
	} else if (strncmp(arg, "--", 2) || (optopt && !strchr(arg, '='))) {
		cli_err("%s: unknown option \"-%c\"", cmd, optopt ? optopt : '?');
	} else if (optopt) {
		cli_err("%s: option \"%.*s\" takes no value", cmd, len, arg);
	} else {
		int matches = 0;

		for (const struct option *o = opts; o->name; o++)
			matches += len > 2 && !strncmp(o->name, arg + 2, (size_t)len - 2);
		if (matches > 1)
			cli_err("%s: option \"%.*s\" is ambiguous", cmd, len, arg);
		else
			cli_err("%s: unknown option \"%.*s\"", cmd, len, arg);
	}
	return EXIT_USAGE;
}

struct jobq *cli_connect(const struct cli_global *g)
{
	struct jobq_opts o;
	struct jobq *q;
	char err[256];

	jobq_opts_init(&o);
	o.redis_url = g->redis_url;
	o.queue = g->queue;
	if (jobq_connect(&o, &q, err, sizeof(err))) {
		cli_err("%s", err);
		return NULL;
	}
	return q;
}

int cli_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int cli_double(const char *s, double *out)
{
	char *end;

	if (!s || !*s)
		return -1;
	errno = 0;
	*out = strtod(s, &end);
	return *end || errno ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct cli_global g = { 0 };
	int i = 1;

	/* Global options come before the command. */
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("jobq %s\n", JOBQ_VERSION);
			return 0;
		} else if ((!strcmp(argv[i], "--redis") || !strcmp(argv[i], "--queue")) && i + 1 < argc) {
			*(argv[i][2] == 'r' ? &g.redis_url : &g.queue) = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "--redis=", 8)) {
			g.redis_url = argv[i++] + 8;
		} else if (!strncmp(argv[i], "--queue=", 8)) {
			g.queue = argv[i++] + 8;
		} else {
			cli_err("unknown or incomplete global option \"%s\"", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	argc -= i;
	argv += i;
	if (strcmp(argv[0], "help")) {
		/* A bad --queue or --redis (or $JOBQ_REDIS_URL) is a usage
		 * error: checked by the library's rules before any command. */
		struct jobq_opts o;
		char err[256];

		jobq_opts_init(&o);
		o.redis_url = g.redis_url;
		o.queue = g.queue;
		if (jobq_opts_check(&o, err, sizeof(err))) {
			/* Say where a bad URL came from when no --redis was given. */
			int from_env = !g.redis_url && getenv("JOBQ_REDIS_URL") && strstr(err, "redis URL");

			cli_err("%s%s", err, from_env ? " (from $JOBQ_REDIS_URL)" : "");
			return EXIT_USAGE;
		}
	}
	if (!strcmp(argv[0], "enqueue"))
		return cmd_enqueue(&g, argc, argv);
	if (!strcmp(argv[0], "worker"))
		return cmd_worker(&g, argc, argv);
	if (!strcmp(argv[0], "stats"))
		return cmd_stats(&g, argc, argv);
	if (!strcmp(argv[0], "dead"))
		return cmd_dead(&g, argc, argv);
	if (!strcmp(argv[0], "tenant"))
		return cmd_tenant(&g, argc, argv);
	if (!strcmp(argv[0], "help")) {
		usage(stdout);
		return 0;
	}
	cli_err("unknown command \"%s\"", argv[0]);
	usage(stderr);
	return EXIT_USAGE;
}
