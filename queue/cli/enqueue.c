/* enqueue.c - `jobq enqueue`: one job, --count N copies, or JSON lines. */
#include "queue/cli/cli.h"
#include "queue/cli/json.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 1000        /* jobs per pipelined batch */
#define CHUNK_BYTES (16u << 20) /* ... or fewer: the lines a batch keeps, bounded */
#define LINE_MAX_BYTES (2u << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: jobq enqueue --tenant T --type TY [--payload P] [--priority high|normal|low]\n"
		"                    [--delay-ms MS] [--max-attempts N] [--traceparent TP] [--count N]\n"
		"       jobq enqueue --stdin   (one JSON object per line: tenant_id, type, payload,\n"
		"                               priority, delay_ms, max_attempts, traceparent)\n");
}

static int from_json(char *line, size_t n, size_t lineno, struct jobq_new_job *j, char *tpbuf)
{
	struct json_field f[16];
	char err[200];
	int nf = json_parse_object(line, n, f, 16, err, sizeof(err));
	const struct json_field *x;
	static const char *known[] = { "tenant_id", "type", "payload", "priority", "delay_ms",
				       "max_attempts", "traceparent", "id", "enqueued_at", NULL };

	if (nf < 0) {
		cli_err("stdin line %zu: %s", lineno, err);
		return -1;
	}
	for (int i = 0; i < nf; i++) {
		int ok = 0;

		for (int k = 0; known[k]; k++)
			ok |= !strcmp(f[i].key, known[k]);
		if (!ok) {
			cli_err("stdin line %zu: unknown field \"%s\"", lineno, f[i].key);
			return -1;
		}
	}
	jobq_enqueue_opts_init(&j->opts);
#define STRFIELD(name, dst)                                                                \
	if ((x = json_get(f, (size_t)nf, name))) {                                         \
		if (x->type != JSON_STRING) {                                              \
			cli_err("stdin line %zu: %s must be a string", lineno, name);      \
			return -1;                                                         \
		}                                                                          \
		if (strlen(x->str) != x->str_len) {                                        \
			cli_err("stdin line %zu: %s must not contain control characters "  \
				"(it holds a NUL, \\u0000)", lineno, name);               \
			return -1;                                                         \
		}                                                                          \
		dst = x->str;                                                              \
	}
	j->tenant = j->type = NULL;
	STRFIELD("tenant_id", j->tenant)
	STRFIELD("type", j->type)
	if (!j->tenant || !j->type) {
		cli_err("stdin line %zu: tenant_id and type are required", lineno);
		return -1;
	}
	if ((x = json_get(f, (size_t)nf, "priority"))) {
		const char *p = NULL;

		STRFIELD("priority", p)
		if (jobq_priority_parse(p, &j->opts.priority)) {
			cli_err("stdin line %zu: priority must be high, normal or low (got \"%s\")", lineno, p);
			return -1;
		}
	}
	if ((x = json_get(f, (size_t)nf, "traceparent"))) {
		const char *tp = NULL;

		STRFIELD("traceparent", tp)
		snprintf(tpbuf, 64, "%s", tp);
		j->opts.traceparent = tpbuf;
	}
#undef STRFIELD
	if ((x = json_get(f, (size_t)nf, "delay_ms"))) {
		char num[32];

		snprintf(num, sizeof(num), "%.*s", (int)x->raw_len, x->raw);
		if (x->type != JSON_NUMBER || cli_u32(num, &j->opts.delay_ms)) {
			cli_err("stdin line %zu: delay_ms must be an integer from 0 to 4294967295", lineno);
			return -1;
		}
	}
	if ((x = json_get(f, (size_t)nf, "max_attempts"))) {
		char num[32];

		snprintf(num, sizeof(num), "%.*s", (int)x->raw_len, x->raw);
		if (x->type != JSON_NUMBER || cli_u32(num, &j->opts.max_attempts) || !j->opts.max_attempts) {
			cli_err("stdin line %zu: max_attempts must be an integer >= 1", lineno);
			return -1;
		}
	}
	j->payload = "";
	j->payload_len = 0;
	if ((x = json_get(f, (size_t)nf, "payload"))) {
		/* A string payload is stored as its text; anything else as JSON. */
		if (x->type == JSON_STRING)
			j->payload = x->str, j->payload_len = x->str_len;
		else
			j->payload = x->raw, j->payload_len = x->raw_len;
	}
	return 0;
}

/* Enqueues jobs[0..n) (n <= CHUNK); *total counts every job enqueued,
 * including those of a batch that failed partway. */
static int enqueue_chunk(struct jobq *q, const struct jobq_new_job *jobs, size_t n,
			 uint64_t *total)
{
	static uint64_t ids[CHUNK];

	if (jobq_enqueue_batch(q, jobs, n, ids) == JOBQ_OK) {
		*total += n;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		*total += ids[i] != 0;
	return -1;
}

/* --stdin: lines are parsed and checked one by one (jobq_check_job, the
 * library's own rules) and enqueued in batches of CHUNK. Which lines were
 * enqueued is tracked exactly, as ranges of line numbers, from the ids
 * the library reports (0: not known to be enqueued). */
struct stdin_batch {
	struct jobq_new_job *jobs;
	char **lines;     /* the buffers the jobs point into */
	char (*tps)[64];
	size_t *lineno;
	uint64_t *ids;
	size_t n;
	size_t bytes;     /* of the lines kept */
	uint64_t total;   /* jobs enqueued in all */
	size_t (*ranges)[2]; /* enqueued lines: [first, last] */
	size_t nranges, rcap;
	int prev_enqueued; /* the previous job (in line order) was enqueued */
};

static int note_enqueued(struct stdin_batch *b, size_t lineno)
{
	if (b->prev_enqueued && b->nranges) {
		b->ranges[b->nranges - 1][1] = lineno;
		return 0;
	}
	if (b->nranges == b->rcap) {
		size_t cap = b->rcap ? 2 * b->rcap : 16;
		void *p = realloc(b->ranges, cap * sizeof(*b->ranges));

		if (!p)
			return -1;
		b->ranges = p;
		b->rcap = cap;
	}
	b->ranges[b->nranges][0] = b->ranges[b->nranges][1] = lineno;
	b->nranges++;
	return 0;
}

static void batch_clear(struct stdin_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->lines[i]);
	b->n = 0;
	b->bytes = 0;
}

/*
 * Reads one line of at most max bytes (without its newline) into a new
 * buffer. Memory stays bounded by max whatever the input: the rest of a
 * longer line is read and discarded, and *too_long is set. Returns the
 * length, or -1 at end of input (or on a read error: see ferror) with no
 * line, or -2 when out of memory.
 */
static ssize_t read_line(FILE *in, size_t max, char **out, int *too_long)
{
	size_t cap = 256, len = 0;
	char *buf = malloc(cap);
	int c = EOF;

	*out = NULL;
	*too_long = 0;
	if (!buf)
		return -2;
	while ((c = getc(in)) != EOF && c != '\n') {
		if (len == max) {
			*too_long = 1;
			continue; /* drain the line, keep nothing more */
		}
		if (len + 1 == cap) {
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			char *p = realloc(buf, ncap);

			if (!p) {
				free(buf);
				return -2;
			}
			buf = p;
			cap = ncap;
		}
		buf[len++] = (char)c;
	}
	if (c == EOF && len == 0 && !*too_long) {
		free(buf);
		return -1;
	}
	buf[len] = '\0';
	*out = buf;
	return (ssize_t)len;
}

static int flush(struct jobq *q, struct stdin_batch *b)
{
	int rc = 0;

	if (!b->n)
		return 0;
	if (jobq_enqueue_batch(q, b->jobs, b->n, b->ids) != JOBQ_OK) {
		if (b->n == 1)
			cli_err("stdin line %zu: %s", b->lineno[0], jobq_errmsg(q));
		else
			cli_err("stdin lines %zu..%zu: %s", b->lineno[0], b->lineno[b->n - 1],
				jobq_errmsg(q));
		rc = -1;
	}
	for (size_t i = 0; i < b->n; i++) {
		int ok = rc == 0 || b->ids[i] != 0;

		if (ok) {
			b->total++;
			if (note_enqueued(b, b->lineno[i])) {
				cli_err("out of memory");
				rc = -1;
			}
		}
		b->prev_enqueued = ok;
	}
	batch_clear(b);
	return rc;
}

/* After a failure: exactly which lines were enqueued, never more. */
static void report_enqueued(const struct stdin_batch *b)
{
	if (!b->total) {
		cli_err("no job was enqueued");
		return;
	}
	fprintf(stderr, "jobq: %" PRIu64 " job%s enqueued in all, from stdin line%s", b->total,
		b->total == 1 ? " was" : "s were", b->total == 1 ? "" : "s");
	for (size_t i = 0; i < b->nranges; i++) {
		fprintf(stderr, "%s%zu", i ? ", " : " ", b->ranges[i][0]);
		if (b->ranges[i][1] != b->ranges[i][0])
			fprintf(stderr, "..%zu", b->ranges[i][1]);
	}
	fputs("; no job of any other line is known to be enqueued\n", stderr);
}

static int from_stdin(struct jobq *q)
{
	struct stdin_batch b = { 0 };
	size_t lineno = 0;
	int rc = EXIT_RUNTIME, failed = 0;
	char *line = NULL;
	int too_long = 0;
	ssize_t len;

	b.jobs = calloc(CHUNK, sizeof(*b.jobs));
	b.lines = calloc(CHUNK, sizeof(*b.lines));
	b.tps = calloc(CHUNK, sizeof(*b.tps));
	b.lineno = calloc(CHUNK, sizeof(*b.lineno));
	b.ids = calloc(CHUNK, sizeof(*b.ids));
	if (!b.jobs || !b.lines || !b.tps || !b.lineno || !b.ids) {
		cli_err("out of memory");
		goto out;
	}
	while ((len = read_line(stdin, LINE_MAX_BYTES, &line, &too_long)) >= 0) {
		struct jobq_new_job *j = &b.jobs[b.n];

		lineno++;
		if (too_long) {
			cli_err("stdin line %zu: longer than %u bytes", lineno, LINE_MAX_BYTES);
			free(line);
			line = NULL;
			failed = 1;
			break;
		}
		while (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		/* Empty and whitespace-only lines (JSON whitespace) hold no job:
		 * skipped alike; they still count in line numbers. */
		if (strspn(line, " \t\r") == (size_t)len) {
			free(line);
			line = NULL;
			continue;
		}
		b.lines[b.n] = line; /* keep the buffer: fields point into it */
		b.lineno[b.n] = lineno;
		line = NULL;
		if (from_json(b.lines[b.n], (size_t)len, lineno, j, b.tps[b.n])) {
			free(b.lines[b.n]);
			failed = 1;
			break;
		}
		/* Checked before it joins a batch: a bad line stops here, and
		 * every line before it is enqueued. */
		if (jobq_check_job(q, j) != JOBQ_OK) {
			cli_err("stdin line %zu: %s", lineno, jobq_errmsg(q));
			free(b.lines[b.n]);
			failed = 1;
			break;
		}
		b.bytes += (size_t)len;
		if ((++b.n == CHUNK || b.bytes >= CHUNK_BYTES) && flush(q, &b))
			goto out;
	}
	if (!failed && len == -2) {
		cli_err("out of memory reading stdin line %zu", lineno + 1);
		failed = 1;
	}
	if (!failed && ferror(stdin)) {
		cli_err("reading stdin failed after line %zu", lineno);
		failed = 1;
	}
	if (flush(q, &b) || failed)
		goto out;
	printf("enqueued %" PRIu64 " job%s\n", b.total, b.total == 1 ? "" : "s");
	rc = 0;
out:
	if (rc && b.jobs)
		report_enqueued(&b);
	if (b.lines)
		batch_clear(&b);
	free(line);
	free(b.lines);
	free(b.jobs);
	free(b.tps);
	free(b.lineno);
	free(b.ids);
	free(b.ranges);
	return rc;
}

int cmd_enqueue(const struct cli_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, 0, 't' },  { "type", required_argument, 0, 'y' },
		{ "payload", required_argument, 0, 'p' }, { "priority", required_argument, 0, 'P' },
		{ "delay-ms", required_argument, 0, 'd' }, { "max-attempts", required_argument, 0, 'm' },
		{ "traceparent", required_argument, 0, 'T' }, { "count", required_argument, 0, 'n' },
		{ "stdin", no_argument, 0, 's' },         { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct jobq_new_job j = { 0 };
	uint32_t count = 1;
	int use_stdin = 0, c, rc = 0;
	struct jobq *q;

	jobq_enqueue_opts_init(&j.opts);
	j.payload = "";
	optind = 1;
	opterr = 0; /* our own messages, starting "jobq:" */
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 't': j.tenant = optarg; break;
		case 'y': j.type = optarg; break;
		case 'p': j.payload = optarg; j.payload_len = strlen(optarg); break;
		case 'P':
			if (jobq_priority_parse(optarg, &j.opts.priority)) {
				cli_err("--priority must be high, normal or low (got \"%s\")", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'd':
			if (cli_u32(optarg, &j.opts.delay_ms)) {
				cli_err("--delay-ms must be an integer from 0 to 4294967295");
				return EXIT_USAGE;
			}
			break;
		case 'm':
			if (cli_u32(optarg, &j.opts.max_attempts) || !j.opts.max_attempts) {
				cli_err("--max-attempts must be an integer >= 1");
				return EXIT_USAGE;
			}
			break;
		case 'T': j.opts.traceparent = optarg; break;
		case 'n':
			if (cli_u32(optarg, &count) || !count) {
				cli_err("--count must be an integer >= 1");
				return EXIT_USAGE;
			}
			break;
		case 's': use_stdin = 1; break;
		case 'h': usage(stdout); return 0;
		default:
			cli_opt_error("enqueue", c, argc, argv, opts);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_err("unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if (!use_stdin && (!j.tenant || !j.type)) {
		cli_err("--tenant and --type are required (or --stdin)");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!(q = cli_connect(g)))
		return EXIT_RUNTIME;
	if (use_stdin) {
		rc = from_stdin(q);
	} else if (count == 1) {
		uint64_t id;

		if (jobq_enqueue(q, j.tenant, j.type, j.payload, j.payload_len, &j.opts, &id)) {
			cli_err("%s", jobq_errmsg(q));
			rc = EXIT_RUNTIME;
		} else {
			printf("%" PRIu64 "\n", id);
		}
	} else {
		struct jobq_new_job *jobs = malloc(sizeof(*jobs) * CHUNK);
		uint64_t done = 0;

		if (!jobs) {
			cli_err("out of memory");
			rc = EXIT_RUNTIME;
		}
		for (size_t i = 0; jobs && i < CHUNK; i++)
			jobs[i] = j;
		while (jobs && done < count) {
			size_t k = count - done < CHUNK ? count - done : CHUNK;

			if (enqueue_chunk(q, jobs, k, &done)) {
				cli_err("%s", jobq_errmsg(q));
				cli_err("%" PRIu64 " of %" PRIu64 " jobs were enqueued", done, (uint64_t)count);
				rc = EXIT_RUNTIME;
				break;
			}
		}
		if (!rc)
			printf("enqueued %" PRIu64 " job%s\n", done, done == 1 ? "" : "s");
		free(jobs);
	}
	jobq_close(q);
	return rc;
}
