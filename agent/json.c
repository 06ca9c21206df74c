/*
 * json.c - snapshot -> JSON (see json.h).
 */
#include "agent/json.h"

#include <inttypes.h>

#include "agent/hist.h"

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void series(FILE *f, const struct jobq_series *s)
{
	fputs("\"queue\":", f);
	json_str(f, s->queue);
	fputs(",\"tenant\":", f);
	json_str(f, s->tenant);
	fputs(",\"job_type\":", f);
	json_str(f, s->type);
	fprintf(f, ",\"overflow\":%s", s->overflow ? "true" : "false");
}

static void hist(FILE *f, const struct snap_hist *h)
{
	const struct jobq_hist_val *v = &h->val;
	int lo = JOBQ_HIST_NBUCKETS, hi = -1;

	for (int b = 0; b < JOBQ_HIST_NBUCKETS; b++) {
		if (v->buckets[b]) {
			if (b < lo)
				lo = b;
			hi = b;
		}
	}
	fputs("{\"name\":", f);
	json_str(f, snap_hist_name(h->key.kind));
	fputc(',', f);
	series(f, &h->key.s);
	fprintf(f,
		",\"count\":%" PRIu64 ",\"sum_ms\":%.6f,\"min_ms\":%.6f,\"max_ms\":%.6f,"
		"\"scale\":%d,\"zero_count\":%" PRIu64 ",\"zero_threshold_ms\":%.10g,"
		"\"offset\":%d,\"bucket_counts\":[",
		(uint64_t)v->count, (double)v->sum_ns / 1e6, (double)v->min_ns / 1e6,
		(double)v->max_ns / 1e6, JOBQ_HIST_SCALE, (uint64_t)v->zero_count,
		jobq_hist_lower_ms(0), hi < 0 ? 0 : JOBQ_HIST_INDEX_MIN + lo);
	for (int b = lo; b <= hi; b++)
		fprintf(f, "%s%" PRIu64, b > lo ? "," : "", (uint64_t)v->buckets[b]);
	fputs("]}", f);
}

int json_write_snapshot(FILE *f, const struct snapshot *s, const char *target,
			uint64_t agent_start_unix_ns, uint64_t spans_built, uint64_t spans_dropped,
			const struct kmem *km, unsigned int ncpus)
{
	fprintf(f, "{\"time_unix_nano\":%" PRIu64 ",\"agent_start_unix_ns\":%" PRIu64
		   ",\"target\":",
		s->time_unix_ns, agent_start_unix_ns);
	json_str(f, target);
	fputs(",\"counters\":[", f);
	for (size_t i = 0; i < s->ncounters; i++) {
		const struct snap_counter *c = &s->counters[i];

		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		json_str(f, snap_metric_name(c->key.metric));
		fputc(',', f);
		series(f, &c->key.s);
		fputs(",\"priority\":", f);
		json_str(f, snap_priority_name(c->key.priority));
		fputs(",\"status\":", f);
		json_str(f, snap_status_name(c->key.metric, c->key.status));
		fprintf(f, ",\"value\":%" PRIu64 "}", c->value);
	}
	fputs("],\"histograms\":[", f);
	for (size_t i = 0; i < s->nhists; i++) {
		if (i)
			fputc(',', f);
		hist(f, &s->hists[i]);
	}
	fputs("],\"depths\":[", f);
	for (size_t i = 0; i < s->ndepths; i++) {
		const struct snap_depth *d = &s->depths[i];

		fputs(i ? ",{\"queue\":" : "{\"queue\":", f);
		json_str(f, d->key.queue);
		fputs(",\"tenant\":", f);
		json_str(f, d->key.tenant);
		fprintf(f,
			",\"overflow\":%s,\"depth_high\":%" PRIu64 ",\"depth_normal\":%" PRIu64
			",\"depth_low\":%" PRIu64 ",\"oldest_enqueued_unix_ns\":%" PRIu64
			",\"in_flight\":%" PRIu64 ",\"delayed\":%" PRIu64
			",\"observed_unix_ns\":%" PRIu64 "}",
			d->key.overflow ? "true" : "false", (uint64_t)d->val.depth[0],
			(uint64_t)d->val.depth[1], (uint64_t)d->val.depth[2],
			(uint64_t)d->val.oldest_enqueued_unix_ns, (uint64_t)d->val.in_flight,
			(uint64_t)d->val.delayed, d->observed_unix_ns);
	}
	fputs("],\"losses\":{", f);
	for (unsigned int r = 0; r < JOBQ_LOSS_COUNT; r++)
		fprintf(f, "%s\"%s\":%" PRIu64, r ? "," : "", snap_loss_name(r), s->losses[r]);
	fprintf(f, "},\"spans_built\":%" PRIu64 ",\"spans_dropped\":%" PRIu64, spans_built,
		spans_dropped);
	fprintf(f,
		",\"kernel_memory\":{\"bytes\":%" PRIu64 ",\"shared_bytes\":%" PRIu64
		",\"per_cpu_bytes\":%" PRIu64 ",\"cpus\":%u}}\n",
		kmem_total(km, ncpus), km->shared, km->per_cpu, ncpus);
	fflush(f);
	return ferror(f) ? -1 : 0;
}
