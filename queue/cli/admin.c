/* admin.c - `jobq stats`, `jobq dead`, `jobq tenant`. */
#include "queue/cli/cli.h"
#include "queue/cli/json.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A string from Redis as JSON (RFC 8259, valid UTF-8 whatever it holds:
 * names and reasons written by hand or by other clients may contain
 * control characters or invalid bytes). */
static void json_str(FILE *f, const char *s)
{
	char buf[6 * (JOBQ_ERROR_MAX + 1) + 3];

	json_quote(s, 1, buf, sizeof(buf));
	fputs(buf, f);
}

/* The same escaping without quotes, for the one-line-per-entry tables. */
static const char *shown(const char *s, char *buf, size_t cap)
{
	json_quote(s, 0, buf, cap);
	return buf;
}

/* s (valid UTF-8, as shown() makes it) left-aligned in width columns,
 * padded by characters rather than bytes so "café" lines up with "cafe";
 * a longer name is printed whole (an id is never cut) and pushes the row. */
static void cell(const char *s, int width)
{
	int chars = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		chars += (*p & 0xc0) != 0x80; /* continuation bytes do not count */
	fputs(s, stdout);
	for (; chars < width; chars++)
		putchar(' ');
}

int cmd_stats(const struct cli_global *g, int argc, char **argv)
{
	struct jobq_tenant_stats *st;
	int json = 0;
	size_t n, skipped = 0;
	struct jobq *q;
	uint64_t now;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--help")) {
			printf("usage: jobq stats [--json]\n");
			return 0;
		} else {
			cli_err("stats: unknown argument \"%s\"", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!(q = cli_connect(g)))
		return EXIT_RUNTIME;
	if (jobq_stats_ex(q, &st, &n, &skipped)) {
		cli_err("stats: %s", jobq_errmsg(q));
		jobq_close(q);
		return EXIT_RUNTIME;
	}
	if (skipped)
		cli_err("%s (%zu bad tenant records in all; the other tenants follow)", jobq_errmsg(q),
			skipped);
	now = now_ns();
	if (json) {
		printf("[");
		for (size_t i = 0; i < n; i++) {
			const struct jobq_tenant_stats *t = &st[i];
			double age = t->oldest_enqueued_unix_ns && now > t->oldest_enqueued_unix_ns
					     ? (double)(now - t->oldest_enqueued_unix_ns) / 1e9
					     : 0;

			printf("%s\n {\"tenant_id\": ", i ? "," : "");
			json_str(stdout, t->tenant);
			printf(", \"depth\": {\"high\": %" PRIu64 ", \"normal\": %" PRIu64 ", \"low\": %" PRIu64
			       "}, \"delayed\": %" PRIu64 ", \"in_flight\": %" PRIu64
			       ", \"oldest_enqueued_unix_ns\": %" PRIu64 ", \"oldest_age_seconds\": %.3f"
			       ", \"weight\": %g, \"cap\": %u}",
			       t->depth[0], t->depth[1], t->depth[2], t->delayed, t->in_flight,
			       t->oldest_enqueued_unix_ns, age, t->weight, t->cap);
		}
		printf("%s]\n", n ? "\n" : "");
	} else {
		printf("%-24s %8s %8s %8s %8s %8s %10s %7s %5s\n", "TENANT", "HIGH", "NORMAL", "LOW",
		       "DELAYED", "INFLIGHT", "OLDEST(s)", "WEIGHT", "CAP");
		for (size_t i = 0; i < n; i++) {
			const struct jobq_tenant_stats *t = &st[i];
			double age = t->oldest_enqueued_unix_ns && now > t->oldest_enqueued_unix_ns
					     ? (double)(now - t->oldest_enqueued_unix_ns) / 1e9
					     : 0;

			char name[6 * JOBQ_TENANT_MAX + 1];

			cell(shown(t->tenant, name, sizeof(name)), 24);
			printf(" %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %10.1f %7g %5u\n",
			       t->depth[0], t->depth[1], t->depth[2], t->delayed, t->in_flight, age, t->weight,
			       t->cap);
		}
	}
	free(st);
	jobq_close(q);
	return 0;
}

int cmd_dead(const struct cli_global *g, int argc, char **argv)
{
	struct jobq *q;
	int rc = 0;

	if (argc < 2 || !strcmp(argv[1], "--help")) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: jobq dead list [--max N] [--json] | jobq dead retry ID | jobq dead retry --all\n");
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "list")) {
		uint32_t max = 100;
		int json = 0;
		struct jobq_dead_entry *d;
		size_t n;

		for (int i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--json")) {
				json = 1;
			} else if (!strcmp(argv[i], "--max") && i + 1 < argc && !cli_u32(argv[i + 1], &max)) {
				i++;
			} else if (!strcmp(argv[i], "--max")) {
				cli_err("dead list: --max needs a count, an integer from 0 to 4294967295%s%s%s",
					i + 1 < argc ? " (got \"" : "", i + 1 < argc ? argv[i + 1] : "",
					i + 1 < argc ? "\")" : "");
				return EXIT_USAGE;
			} else {
				cli_err("dead list: unknown argument \"%s\" (usage: jobq dead list [--json] [--max N])",
					argv[i]);
				return EXIT_USAGE;
			}
		}
		if (!(q = cli_connect(g)))
			return EXIT_RUNTIME;
		if (jobq_dead_list(q, max, &d, &n)) {
			cli_err("dead list: %s", jobq_errmsg(q));
			jobq_close(q);
			return EXIT_RUNTIME;
		}
		if (json)
			printf("[");
		else
			printf("%-10s %-20s %-16s %8s  %s\n", "ID", "TENANT", "TYPE", "ATTEMPTS", "REASON");
		for (size_t i = 0; i < n; i++) {
			if (json) {
				printf("%s\n {\"id\": %" PRIu64 ", \"tenant_id\": ", i ? "," : "", d[i].id);
				json_str(stdout, d[i].tenant);
				printf(", \"type\": ");
				json_str(stdout, d[i].type);
				if (d[i].attempts == JOBQ_ATTEMPTS_UNKNOWN)
					printf(", \"attempts\": null");
				else
					printf(", \"attempts\": %u", d[i].attempts);
				printf(", \"failed_unix_ns\": %" PRIu64 ", \"reason\": ", d[i].failed_unix_ns);
				json_str(stdout, d[i].reason);
				printf("}");
			} else {
				char t[6 * JOBQ_TENANT_MAX + 1], ty[6 * JOBQ_TYPE_MAX + 1];
				char why[6 * JOBQ_ERROR_MAX + 1], att[12] = "?";

				if (d[i].attempts != JOBQ_ATTEMPTS_UNKNOWN)
					snprintf(att, sizeof(att), "%u", d[i].attempts);
				printf("%-10" PRIu64 " ", d[i].id);
				cell(shown(d[i].tenant, t, sizeof(t)), 20);
				putchar(' ');
				cell(shown(d[i].type, ty, sizeof(ty)), 16);
				printf(" %8s  %s\n", att, shown(d[i].reason, why, sizeof(why)));
			}
		}
		if (json)
			printf("%s]\n", n ? "\n" : "");
		free(d);
		jobq_close(q);
		return 0;
	}
	if (!strcmp(argv[1], "retry")) {
		uint64_t id = 0;
		size_t moved = 0, skipped = 0;

		if (argc != 3) {
			cli_err("usage: jobq dead retry ID | --all");
			return EXIT_USAGE;
		}
		if (strcmp(argv[2], "--all")) {
			char *end;

			id = strtoull(argv[2], &end, 10);
			if (*end || !id) {
				cli_err("dead retry: ID must be a positive integer (got \"%s\")", argv[2]);
				return EXIT_USAGE;
			}
		}
		if (!(q = cli_connect(g)))
			return EXIT_RUNTIME;
		if (id ? jobq_dead_retry(q, id, &moved) : jobq_dead_retry_all(q, &moved, &skipped)) {
			cli_err("dead retry: %s", jobq_errmsg(q));
			if (moved)
				cli_err("dead retry: %zu job%s requeued before the error", moved,
					moved == 1 ? " was" : "s were");
			rc = EXIT_RUNTIME;
		} else if (skipped) {
			printf("requeued %zu job%s, skipped %zu that cannot be requeued (still in the dead-letter list, see jobq dead list)\n",
			       moved, moved == 1 ? "" : "s", skipped);
		} else {
			printf("requeued %zu job%s\n", moved, moved == 1 ? "" : "s");
		}
		jobq_close(q);
		return rc;
	}
	cli_err("dead: unknown subcommand \"%s\" (list, retry)", argv[1]);
	return EXIT_USAGE;
}

int cmd_tenant(const struct cli_global *g, int argc, char **argv)
{
	double weight = 0;
	uint32_t cap = 0;
	int have_w = 0, have_c = 0, rc = 0;
	struct jobq *q;

	if (argc < 3 || strcmp(argv[1], "set")) {
		cli_err("usage: jobq tenant set TENANT [--weight W] [--cap N]");
		return EXIT_USAGE;
	}
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--weight") && i + 1 < argc) {
			if (cli_double(argv[++i], &weight) || !(weight > 0)) {
				cli_err("--weight must be a number > 0");
				return EXIT_USAGE;
			}
			have_w = 1;
		} else if (!strcmp(argv[i], "--cap") && i + 1 < argc) {
			if (cli_u32(argv[++i], &cap)) {
				cli_err("--cap must be an integer from 0 to 4294967295");
				return EXIT_USAGE;
			}
			have_c = 1;
		} else {
			cli_err("tenant set: bad argument \"%s\"", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!have_w && !have_c) {
		cli_err("tenant set: give --weight and/or --cap");
		return EXIT_USAGE;
	}
	if (!(q = cli_connect(g)))
		return EXIT_RUNTIME;
	if ((have_w && jobq_tenant_set_weight(q, argv[2], weight)) ||
	    (have_c && jobq_tenant_set_cap(q, argv[2], cap))) {
		cli_err("tenant set: %s", jobq_errmsg(q));
		rc = EXIT_RUNTIME;
	}
	jobq_close(q);
	return rc;
}
