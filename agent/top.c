/*
 * top.c - `jobq-agent --top` (see top.h).
 */
#include "agent/top.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/hist.h"

static struct top_row *row_for(struct top_row *rows, size_t *n, size_t max,
			       const char *tenant, int overflow)
{
	for (size_t i = 0; i < *n; i++)
		if (rows[i].overflow == overflow && !strcmp(rows[i].tenant, tenant))
			return &rows[i];
	if (*n == max)
		return NULL;
	memset(&rows[*n], 0, sizeof(rows[*n]));
	snprintf(rows[*n].tenant, sizeof(rows[*n].tenant), "%s", tenant);
	rows[*n].overflow = overflow;
	rows[*n].wait_p50_ms = rows[*n].wait_p99_ms = rows[*n].dur_p99_ms = -1;
	return &rows[(*n)++];
}

static double quantile_ms(const uint64_t *counts, uint64_t zero, double q)
{
	int pos = jobq_hist_quantile_pos(counts, zero, q);

	return pos == -2 ? -1 : jobq_hist_pos_ms(pos);
}

static int busiest_first(const void *a, const void *b)
{
	const struct top_row *x = a, *y = b;

	if (x->jobs_per_s != y->jobs_per_s)
		return x->jobs_per_s < y->jobs_per_s ? 1 : -1;
	return strcmp(x->tenant, y->tenant);
}

size_t top_rows(const struct snapshot *s, const struct top_row *prev, size_t nprev,
		double elapsed_s, struct top_row *rows, size_t max)
{
	size_t n = 0;
	/* Per-tenant merged histograms: [row][kind][bucket], plus zero counts. */
	uint64_t (*h)[JOBQ_H_COUNT][JOBQ_HIST_NBUCKETS] = calloc(max, sizeof(*h));
	uint64_t (*z)[JOBQ_H_COUNT] = calloc(max, sizeof(*z));

	if (!h || !z)
		goto out;
	for (size_t i = 0; i < s->ncounters; i++) {
		const struct snap_counter *c = &s->counters[i];
		struct top_row *r = row_for(rows, &n, max, c->key.s.tenant, c->key.s.overflow);

		if (!r)
			continue;
		if (c->key.metric == JOBQ_M_PROCESSED) {
			r->processed += c->value;
			if (c->key.status == JOBQ_STATUS_FAILED)
				r->failures += c->value;
		}
	}
	for (size_t i = 0; i < s->nhists; i++) {
		const struct snap_hist *sh = &s->hists[i];
		struct top_row *r = row_for(rows, &n, max, sh->key.s.tenant, sh->key.s.overflow);
		size_t ri;

		if (!r || sh->key.kind >= JOBQ_H_COUNT)
			continue;
		ri = (size_t)(r - rows);
		z[ri][sh->key.kind] += sh->val.zero_count;
		for (int b = 0; b < JOBQ_HIST_NBUCKETS; b++)
			h[ri][sh->key.kind][b] += sh->val.buckets[b];
	}
	for (size_t i = 0; i < s->ndepths; i++) {
		const struct snap_depth *d = &s->depths[i];
		struct top_row *r = row_for(rows, &n, max, d->key.tenant, d->key.overflow);
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
	for (size_t i = 0; i < n; i++) {
		struct top_row *r = &rows[i];

		r->wait_p50_ms = quantile_ms(h[i][JOBQ_H_WAIT], z[i][JOBQ_H_WAIT], 0.5);
		r->wait_p99_ms = quantile_ms(h[i][JOBQ_H_WAIT], z[i][JOBQ_H_WAIT], 0.99);
		r->dur_p99_ms = quantile_ms(h[i][JOBQ_H_DURATION], z[i][JOBQ_H_DURATION], 0.99);
		for (size_t p = 0; p < nprev && elapsed_s > 0; p++)
			if (prev[p].overflow == r->overflow && !strcmp(prev[p].tenant, r->tenant) &&
			    r->processed >= prev[p].processed)
				r->jobs_per_s = (double)(r->processed - prev[p].processed) / elapsed_s;
	}
	qsort(rows, n, sizeof(*rows), busiest_first);
out:
	free(h);
	free(z);
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

void top_print(FILE *out, const struct top_row *rows, size_t n, const uint64_t *losses,
	       const char *target)
{
	uint64_t total = 0;

	for (unsigned int r = 0; r < JOBQ_LOSS_COUNT; r++)
		if (r != JOBQ_LOSS_TENANT_OVERFLOW)
			total += losses[r];
	fprintf(out, "\033[H\033[2Jjobq-agent --top  %s   losses: %llu", target,
		(unsigned long long)total);
	for (unsigned int r = 0; r < JOBQ_LOSS_COUNT; r++)
		if (losses[r])
			fprintf(out, " %s=%llu", snap_loss_name(r), (unsigned long long)losses[r]);
	fprintf(out, "\n%-24s %9s %9s %9s %9s %9s %11s %9s\n", "TENANT", "JOBS/S", "WAIT p50",
		"WAIT p99", "DUR p99", "DEPTH", "OLDEST(ms)", "FAILED");
	for (size_t i = 0; i < n; i++) {
		const struct top_row *r = &rows[i];

		fprintf(out, "%-24.24s %9.1f", r->overflow ? "(overflow)" : r->tenant, r->jobs_per_s);
		ms(out, r->wait_p50_ms);
		ms(out, r->wait_p99_ms);
		ms(out, r->dur_p99_ms);
		fprintf(out, " %9llu %11.0f %9llu\n", (unsigned long long)r->depth, r->oldest_age_ms,
			(unsigned long long)r->failures);
	}
	fprintf(out, "(times in ms; Ctrl-C to detach)\n");
	fflush(out);
}

#define TOP_MAX_ROWS (JOBQ_DEFAULT_TENANT_CAP + 1)

struct top_state {
	struct top_row rows[2][TOP_MAX_ROWS];
	size_t n[2];
	int cur;
	uint64_t last_ns;
};

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
	prev = t->cur;
	t->cur ^= 1;
	t->n[t->cur] = top_rows(&a->snap, t->last_ns ? t->rows[prev] : NULL,
				t->last_ns ? t->n[prev] : 0, (double)(now - t->last_ns) / 1e9,
				t->rows[t->cur], TOP_MAX_ROWS);
	t->last_ns = now;
	top_print(out, t->rows[t->cur], t->n[t->cur], a->snap.losses, a->target.desc);
}

void agent_top_free(struct agent *a)
{
	free(a->top);
	a->top = NULL;
}
