/*
 * top.c - `jobq-agent --top` (see top.h).
 */
#include "agent/top.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/hist.h"

/* Rows by (queue, tenant, overflow): an open-addressing index over rows[],
 * so a snapshot of thousands of tenants is not a quadratic scan. The
 * overflow series has no queue; the overflow depth reports of every queue
 * join its row (queue ""). */
struct row_index {
	size_t *slot; /* row number + 1; 0: empty */
	size_t mask;
};

static int index_init(struct row_index *ix, size_t max)
{
	size_t cap = 16;

	while (cap < 2 * max)
		cap *= 2;
	ix->slot = calloc(cap, sizeof(*ix->slot));
	ix->mask = cap - 1;
	return ix->slot ? 0 : -1;
}

static uint64_t fnv(uint64_t h, const char *t)
{
	for (; *t; t++)
		h = (h ^ (unsigned char)*t) * 1099511628211ull;
	return (h ^ 0xff) * 1099511628211ull; /* the end of the string */
}

static size_t hash_row(const char *queue, const char *tenant, int overflow)
{
	uint64_t h = fnv(fnv(1469598103934665603ull ^ (uint64_t)overflow, queue), tenant);

	return (size_t)(h ^ (h >> 32));
}

/* The row of (queue, tenant, overflow) in rows, or NULL; *slotp: where it
 * goes. */
static struct top_row *index_find(const struct row_index *ix, const struct top_row *rows,
				  const char *queue, const char *tenant, int overflow,
				  size_t **slotp)
{
	if (overflow)
		queue = "";
	for (size_t i = hash_row(queue, tenant, overflow) & ix->mask;; i = (i + 1) & ix->mask) {
		size_t r = ix->slot[i];

		if (!r) {
			*slotp = &ix->slot[i];
			return NULL;
		}
		if (rows[r - 1].overflow == overflow && !strcmp(rows[r - 1].tenant, tenant) &&
		    !strcmp(rows[r - 1].queue, queue))
			return (struct top_row *)&rows[r - 1];
	}
}

static struct top_row *row_for(struct row_index *ix, struct top_row *rows, size_t *n,
			       size_t max, const char *queue, const char *tenant, int overflow)
{
	size_t *slot;
	struct top_row *r = index_find(ix, rows, queue, tenant, overflow, &slot);

	if (r)
		return r;
	if (*n == max)
		return NULL;
	r = &rows[*n];
	memset(r, 0, sizeof(*r));
	snprintf(r->queue, sizeof(r->queue), "%s", overflow ? "" : queue);
	snprintf(r->tenant, sizeof(r->tenant), "%s", tenant);
	r->overflow = overflow;
	r->wait_p50_ms = r->wait_p99_ms = r->dur_p99_ms = -1;
	*slot = ++*n;
	return r;
}

static double quantile_ms(const uint64_t *counts, uint64_t zero, double q)
{
	int pos = jobq_hist_quantile_pos(counts, zero, q);

	return pos == -2 ? -1 : jobq_hist_pos_ms(pos);
}

static int busiest_first(const void *a, const void *b)
{
	const struct top_row *x = a, *y = b;
	int c;

	if (x->jobs_per_s != y->jobs_per_s)
		return x->jobs_per_s < y->jobs_per_s ? 1 : -1;
	c = strcmp(x->tenant, y->tenant);
	return c ? c : strcmp(x->queue, y->queue);
}

size_t top_rows_max(const struct snapshot *s)
{
	return s->ncounters + s->nhists + s->ndepths;
}

size_t top_rows(const struct snapshot *s, const struct top_row *prev, size_t nprev,
		double elapsed_s, struct top_row *rows, size_t max)
{
	size_t n = 0;
	/* Per-row merged histograms: [row][kind][bucket], plus zero counts;
	 * allocated once the rows are known (a row per series at most). */
	uint64_t (*h)[JOBQ_H_COUNT][JOBQ_HIST_NBUCKETS] = NULL;
	uint64_t (*z)[JOBQ_H_COUNT] = NULL;
	struct row_index ix = { NULL, 0 }, pix = { NULL, 0 };

	if (index_init(&ix, max) || index_init(&pix, nprev))
		goto out;
	for (size_t p = 0; p < nprev; p++) {
		size_t *slot;

		if (!index_find(&pix, prev, prev[p].queue, prev[p].tenant, prev[p].overflow, &slot))
			*slot = p + 1;
	}
	for (size_t i = 0; i < s->ncounters; i++) {
		const struct snap_counter *c = &s->counters[i];
		struct top_row *r = row_for(&ix, rows, &n, max, c->key.s.queue, c->key.s.tenant,
					    c->key.s.overflow);

		if (!r)
			continue;
		if (c->key.metric == JOBQ_M_PROCESSED) {
			r->processed += c->value;
			if (c->key.status == JOBQ_STATUS_FAILED)
				r->failures += c->value;
		}
	}
	for (size_t i = 0; i < s->nhists; i++) /* rows only: merged below */
		row_for(&ix, rows, &n, max, s->hists[i].key.s.queue, s->hists[i].key.s.tenant,
			s->hists[i].key.s.overflow);
	for (size_t i = 0; i < s->ndepths; i++) {
		const struct snap_depth *d = &s->depths[i];
		struct top_row *r = row_for(&ix, rows, &n, max, d->key.queue, d->key.tenant,
					    d->key.overflow);
		double age;

		if (!r)
			continue;
		r->depth += d->val.depth[0] + d->val.depth[1] + d->val.depth[2];
		age = d->val.oldest_enqueued_unix_ns &&
				      d->observed_unix_ns > d->val.oldest_enqueued_unix_ns
			      ? (double)(d->observed_unix_ns - d->val.oldest_enqueued_unix_ns) / 1e6
			      : 0;
		if (age > r->oldest_age_ms)
			r->oldest_age_ms = age;
	}
	h = calloc(n ? n : 1, sizeof(*h));
	z = calloc(n ? n : 1, sizeof(*z));
	if (!h || !z) {
		n = 0;
		goto out;
	}
	for (size_t i = 0; i < s->nhists; i++) {
		const struct snap_hist *sh = &s->hists[i];
		size_t *slot, ri;
		const struct top_row *r = index_find(&ix, rows, sh->key.s.queue, sh->key.s.tenant,
						     sh->key.s.overflow, &slot);

		if (!r || sh->key.kind >= JOBQ_H_COUNT)
			continue;
		ri = (size_t)(r - rows);
		z[ri][sh->key.kind] += sh->val.zero_count;
		for (int b = 0; b < JOBQ_HIST_NBUCKETS; b++)
			h[ri][sh->key.kind][b] += sh->val.buckets[b];
	}
	for (size_t i = 0; i < n; i++) {
		struct top_row *r = &rows[i];

		r->wait_p50_ms = quantile_ms(h[i][JOBQ_H_WAIT], z[i][JOBQ_H_WAIT], 0.5);
		r->wait_p99_ms = quantile_ms(h[i][JOBQ_H_WAIT], z[i][JOBQ_H_WAIT], 0.99);
		r->dur_p99_ms = quantile_ms(h[i][JOBQ_H_DURATION], z[i][JOBQ_H_DURATION], 0.99);
		if (nprev && elapsed_s > 0) {
			size_t *slot;
			const struct top_row *p =
				index_find(&pix, prev, r->queue, r->tenant, r->overflow, &slot);

			if (p && r->processed >= p->processed)
				r->jobs_per_s = (double)(r->processed - p->processed) / elapsed_s;
		}
	}
	qsort(rows, n, sizeof(*rows), busiest_first);
out:
	free(h);
	free(z);
	free(ix.slot);
	free(pix.slot);
	return n;
}

static void ms(FILE *out, double v)
{
	if (v < 0)
		fprintf(out, " %9s", "-");
	else if (v < 10)
		fprintf(out, " %9.3f", v);
	else
		fprintf(out, " %9.1f", v);
}

/* More than one queue among the rows (the overflow row has none)? */
static int several_queues(const struct top_row *rows, size_t n)
{
	const char *first = NULL;

	for (size_t i = 0; i < n; i++) {
		if (rows[i].overflow)
			continue;
		if (!first)
			first = rows[i].queue;
		else if (strcmp(first, rows[i].queue))
			return 1;
	}
	return 0;
}

/* s left-aligned in a column of width characters: cut on a UTF-8
 * character boundary (a byte cut would print half a character) and padded
 * by characters, not bytes, so a tenant "café" lines up like "cafe".
 * Control bytes (the name reached us from a traced process) print as '?'
 * so they cannot move the cursor. Characters count as one column each;
 * East Asian wide ones still take two. */
static void put_cell(FILE *out, const char *s, int width)
{
	const unsigned char *p = (const unsigned char *)s;
	int chars = 0;

	while (*p && chars < width) {
		size_t len = 1;

		if (*p >= 0xc0)
			while (len < 4 && (p[len] & 0xc0) == 0x80)
				len++;
		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && *p < 0xc0)) /* control or stray */
			fputc('?', out);
		else
			fwrite(p, 1, len, out);
		p += len;
		chars++;
	}
	for (; chars < width; chars++)
		fputc(' ', out);
}

void top_print(FILE *out, const struct top_row *rows, size_t n, size_t limit,
	       const uint64_t *losses, const char *target)
{
	uint64_t total = 0;
	int queues = several_queues(rows, n);

	for (unsigned int r = 0; r < JOBQ_LOSS_COUNT; r++)
		if (r != JOBQ_LOSS_TENANT_OVERFLOW)
			total += losses[r];
	/* A terminal is redrawn in place; a pipe or file gets one table after
	 * another, a blank line apart, and no escape sequences. */
	fprintf(out, "%sjobq-agent --top  %s   losses: %llu",
		isatty(fileno(out)) ? "\033[H\033[2J" : "\n", target, (unsigned long long)total);
	for (unsigned int r = 0; r < JOBQ_LOSS_COUNT; r++)
		if (losses[r])
			fprintf(out, " %s=%llu", snap_loss_name(r), (unsigned long long)losses[r]);
	fputc('\n', out);
	if (queues) /* one queue: the column would say the same on every row */
		fprintf(out, "%-16s ", "QUEUE");
	fprintf(out, "%-24s %9s %9s %9s %9s %9s %11s %9s\n", "TENANT", "JOBS/S", "WAIT p50",
		"WAIT p99", "DUR p99", "DEPTH", "OLDEST(ms)", "FAILED");
	for (size_t i = 0; i < n && (!limit || i < limit); i++) {
		const struct top_row *r = &rows[i];

		if (queues) {
			put_cell(out, r->overflow ? "-" : r->queue, 16);
			fputc(' ', out);
		}
		put_cell(out, r->overflow ? "(overflow)" : r->tenant, 24);
		fprintf(out, " %9.1f", r->jobs_per_s);
		ms(out, r->wait_p50_ms);
		ms(out, r->wait_p99_ms);
		ms(out, r->dur_p99_ms);
		fprintf(out, " %9llu %11.0f %9llu\n", (unsigned long long)r->depth, r->oldest_age_ms,
			(unsigned long long)r->failures);
	}
	if (limit && n > limit)
		fprintf(out, "... %zu more %s%s (busiest first; --top-rows N shows more)\n",
			n - limit, queues ? "queue/tenant row" : "tenant", n - limit == 1 ? "" : "s");
	fprintf(out, "(times in ms; Ctrl-C to detach)\n");
	fflush(out);
}

struct top_state {
	struct top_row *rows[2];
	size_t n[2], max;
	int cur;
	uint64_t last_ns;
};

/* Rows shown: --top-rows, else what fits the terminal, else all. */
static size_t row_limit(const struct agent *a, FILE *out)
{
	struct winsize ws;

	if (a->opts.top_rows > 0)
		return (size_t)a->opts.top_rows;
	if (isatty(fileno(out)) && ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_row > 5)
		return (size_t)ws.ws_row - 5; /* header, column names, "more", footer, prompt */
	return 0;
}

void agent_top_render(struct agent *a, FILE *out)
{
	struct top_state *t = a->top;
	struct timespec ts;
	uint64_t now;
	int prev;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;

	if (!t && !(t = a->top = calloc(1, sizeof(*t)))) {
		fprintf(stderr, "jobq-agent: out of memory for --top\n");
		return;
	}
	/* Room for a row per (queue, tenant) of this snapshot: at most one per
	 * counter, histogram and depth report in it. Grown, never shrunk; the
	 * previous rows are kept for the rates. */
	if (top_rows_max(&a->snap) > t->max) {
		size_t max = top_rows_max(&a->snap) * 2;

		for (int i = 0; i < 2; i++) {
			struct top_row *r = realloc(t->rows[i], max * sizeof(*r));

			if (!r) {
				fprintf(stderr, "jobq-agent: out of memory for --top\n");
				agent_top_free(a);
				return;
			}
			t->rows[i] = r;
		}
		t->max = max;
	}
	prev = t->cur;
	t->cur ^= 1;
	t->n[t->cur] = top_rows(&a->snap, t->last_ns ? t->rows[prev] : NULL,
				t->last_ns ? t->n[prev] : 0, (double)(now - t->last_ns) / 1e9,
				t->rows[t->cur], t->max);
	t->last_ns = now;
	top_print(out, t->rows[t->cur], t->n[t->cur], row_limit(a, out), a->snap.losses,
		  a->target.desc);
}

void agent_top_free(struct agent *a)
{
	if (a->top) {
		free(a->top->rows[0]);
		free(a->top->rows[1]);
	}
	free(a->top);
	a->top = NULL;
}
