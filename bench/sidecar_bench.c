/*
 * sidecar_bench - encode cost of jobq-sidecar's OTLP builder and encoders.
 *
 *   per data point: build + protobuf pack (and JSON) of a metrics request
 *                   from a store of T tenants x 5 types (jobs.enqueued,
 *                   jobs.processed, jobs.wait_time per pair; two gauges per
 *                   tenant), median of several runs;
 *   per span:       build + pack of a traces request of agent spans;
 *   payload size:   bytes per series for growing series counts (linear
 *                   growth = constant bytes per series).
 * Prints figures only; the test suite asserts behaviour, not speed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sidecar/otlp.h"
#include "sidecar/otlp_json.h"

static const char *noenv(void *c, const char *n)
{
	(void)c;
	(void)n;
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void die(const char *what)
{
	fprintf(stderr, "sidecar_bench: %s\n", what);
	exit(1);
}

static struct sc_store *make_store(int tenants, int types)
{
	struct sc_store *s = sc_store_new(1000000);
	Jobq__Agent__Hello h = JOBQ__AGENT__HELLO__INIT;
	h.agent_id = "bench";
	h.host_name = "h";
	h.target = "pid:1";
	h.agent_version = "1";
	h.agent_start_unix_ns = 1;
	if (!s || sc_store_hello(s, &h) != 0)
		die("store");
	size_t pairs = (size_t)tenants * (size_t)types;
	Jobq__Agent__Counter *c = calloc(2 * pairs, sizeof(*c));
	Jobq__Agent__Counter **cp = calloc(2 * pairs, sizeof(*cp));
	Jobq__Agent__ExpHistogram *w = calloc(pairs, sizeof(*w));
	Jobq__Agent__ExpHistogram **wp = calloc(pairs, sizeof(*wp));
	Jobq__Agent__Gauge *g = calloc(2 * (size_t)tenants, sizeof(*g));
	Jobq__Agent__Gauge **gp = calloc(2 * (size_t)tenants, sizeof(*gp));
	Jobq__Agent__SeriesKey *k = calloc(2 * pairs + (size_t)tenants, sizeof(*k));
	char (*tn)[32] = calloc((size_t)tenants, 32);
	static char ty[8][16];
	static uint64_t buckets[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	if (!c || !cp || !w || !wp || !g || !gp || !k || !tn)
		die("out of memory");
	size_t nc = 0, nw = 0, ng = 0, nk = 0;
	for (int y = 0; y < types; y++)
		snprintf(ty[y], sizeof(ty[y]), "type-%d", y);
	for (int t = 0; t < tenants; t++) {
		snprintf(tn[t], 32, "tenant-%05d", t);
		for (int y = 0; y < types; y++) {
			Jobq__Agent__SeriesKey *a = &k[nk++], *b = &k[nk++];
			jobq__agent__series_key__init(a);
			a->tenant = tn[t];
			a->job_type = ty[y];
			a->priority = "normal";
			*b = *a;
			b->status = "success";
			jobq__agent__counter__init(&c[nc]);
			c[nc].name = "jobs.enqueued";
			c[nc].key = a;
			c[nc].value = 1000 + (uint64_t)t;
			c[nc].start_unix_ns = 1;
			cp[nc] = &c[nc];
			nc++;
			jobq__agent__counter__init(&c[nc]);
			c[nc].name = "jobs.processed";
			c[nc].key = b;
			c[nc].value = 900 + (uint64_t)t;
			c[nc].start_unix_ns = 1;
			cp[nc] = &c[nc];
			nc++;
			jobq__agent__exp_histogram__init(&w[nw]);
			w[nw].name = "jobs.wait_time";
			w[nw].key = a;
			w[nw].scale = 3;
			w[nw].offset = 20;
			w[nw].bucket_counts = buckets;
			w[nw].n_bucket_counts = 12;
			w[nw].count = 78;
			w[nw].sum = 1234.5;
			w[nw].max = 99;
			wp[nw] = &w[nw];
			nw++;
		}
		Jobq__Agent__SeriesKey *d = &k[nk++];
		jobq__agent__series_key__init(d);
		d->tenant = tn[t];
		d->priority = "normal";
		for (int i = 0; i < 2; i++) {
			jobq__agent__gauge__init(&g[ng]);
			g[ng].name = i ? "jobs.oldest_job_age" : "jobs.queue_depth";
			g[ng].key = d;
			g[ng].value = t;
			gp[ng] = &g[ng];
			ng++;
		}
	}
	Jobq__Agent__MetricSnapshot m = JOBQ__AGENT__METRIC_SNAPSHOT__INIT;
	m.time_unix_nano = 1700000000000000000ull;
	m.counters = cp;
	m.n_counters = nc;
	m.histograms = wp;
	m.n_histograms = nw;
	m.gauges = gp;
	m.n_gauges = ng;
	if (sc_store_apply(s, 0, &m))
		die("apply");
	free(c), free(cp), free(w), free(wp), free(g), free(gp), free(k), free(tn);
	return s;
}

struct result {
	size_t points, bytes, json_bytes;
	double ns_pb, ns_json;
};

static struct result bench_metrics(int tenants, int types, const struct sc_identity *id, int runs)
{
	struct sc_store *s = make_store(tenants, types);
	struct result r = { 0 };
	double pb[16], js[16];
	struct sc_buf jb;
	sc_buf_init(&jb, 0);
	for (int i = 0; i < runs; i++) {
		struct sc_arena a;
		sc_arena_init(&a, 0);
		double t0 = now_s();
		sc_metrics_req *req = sc_otlp_build_metrics(&a, s, id, NULL, 2, &r.points);
		if (!req)
			die("build");
		r.bytes = protobuf_c_message_get_packed_size(&req->base);
		uint8_t *buf = malloc(r.bytes);
		if (!buf)
			die("out of memory");
		protobuf_c_message_pack(&req->base, buf);
		double t1 = now_s();
		sc_buf_reset(&jb);
		if (sc_otlp_json(&req->base, &jb))
			die("json");
		double t2 = now_s();
		r.json_bytes = jb.len;
		pb[i] = (t1 - t0) * 1e9 / (double)r.points;
		js[i] = ((t1 - t0) + (t2 - t1)) * 1e9 / (double)r.points;
		free(buf);
		sc_arena_free(&a);
	}
	qsort(pb, (size_t)runs, sizeof(double), cmp_d);
	qsort(js, (size_t)runs, sizeof(double), cmp_d);
	r.ns_pb = pb[runs / 2];
	r.ns_json = js[runs / 2];
	sc_buf_free(&jb);
	sc_store_free(s);
	return r;
}

static double bench_spans(size_t n, const struct sc_identity *id, size_t *bytes)
{
	struct sc_store *s = make_store(1, 1);
	double best[7];
	for (int run = 0; run < 7; run++) {
		struct sc_spanbuf sb;
		sc_spanbuf_init(&sb, n);
		Jobq__Agent__SpanBatch *b = calloc(1, sizeof(*b));
		if (!b)
			die("out of memory");
		jobq__agent__span_batch__init(b);
		b->spans = calloc(n, sizeof(*b->spans));
		for (size_t i = 0; i < n; i++) {
			Jobq__Agent__Span *sp = calloc(1, sizeof(*sp));
			Jobq__Agent__KeyValue **kv = calloc(3, sizeof(*kv));
			Jobq__Agent__SpanLink **ln = calloc(1, sizeof(*ln));
			if (!sp || !kv || !ln || !b->spans)
				die("out of memory");
			jobq__agent__span__init(sp);
			sp->trace_id = (ProtobufCBinaryData){ 16, calloc(16, 1) };
			sp->span_id = (ProtobufCBinaryData){ 8, calloc(8, 1) };
			sp->trace_id.data[0] = sp->span_id.data[0] = 1;
			sp->name = strdup("job.process");
			sp->kind = JOBQ__AGENT__SPAN_KIND__SPAN_KIND_CONSUMER;
			sp->start_unix_ns = 1;
			sp->end_unix_ns = 2;
			const char *keys[3] = { "tenant.id", "job.type", "job.queue" };
			for (int j = 0; j < 3; j++) {
				kv[j] = calloc(1, sizeof(**kv));
				jobq__agent__key_value__init(kv[j]);
				kv[j]->key = strdup(keys[j]);
				kv[j]->value_case = JOBQ__AGENT__KEY_VALUE__VALUE_STRING_VALUE;
				kv[j]->string_value = strdup("tenant-00042");
			}
			sp->attributes = kv;
			sp->n_attributes = 3;
			ln[0] = calloc(1, sizeof(**ln));
			jobq__agent__span_link__init(ln[0]);
			ln[0]->trace_id = (ProtobufCBinaryData){ 16, calloc(16, 1) };
			ln[0]->span_id = (ProtobufCBinaryData){ 8, calloc(8, 1) };
			ln[0]->trace_id.data[0] = ln[0]->span_id.data[0] = 2;
			sp->links = ln;
			sp->n_links = 1;
			b->spans[b->n_spans++] = sp;
		}
		struct sc_arena *ar = calloc(1, sizeof(*ar));
		if (!ar)
			die("out of memory");
		sc_arena_init(ar, 0);
		if (sc_spanbuf_add(&sb, 0, b, ar))
			die("spanbuf");
		struct sc_arena a;
		sc_arena_init(&a, 0);
		size_t ns, ninv;
		double t0 = now_s();
		sc_traces_req *req = sc_otlp_build_traces(&a, &sb, s, id, NULL, 0, &ns, &ninv);
		if (!req || ns != n)
			die("build traces");
		*bytes = protobuf_c_message_get_packed_size(&req->base);
		uint8_t *buf = malloc(*bytes);
		if (!buf)
			die("out of memory");
		protobuf_c_message_pack(&req->base, buf);
		best[run] = (now_s() - t0) * 1e9 / (double)n;
		free(buf);
		sc_arena_free(&a);
		sc_spanbuf_clear(&sb); /* frees the (empty) arena; the batch is ours */
		protobuf_c_message_free_unpacked(&b->base, NULL);
	}
	qsort(best, 7, sizeof(double), cmp_d);
	sc_store_free(s);
	return best[3];
}

int main(void)
{
	static struct sc_config cfg;
	struct sc_identity id = { .cfg = &cfg, .host_name = "bench", .pid = 1 };
	sc_config_load(&cfg, noenv, NULL, NULL, NULL);

	printf("sidecar encode cost (median of runs; build + pack, protobuf / +JSON)\n");
	struct result r = bench_metrics(2000, 5, &id, 7);
	printf("  metrics: %zu points (2000 tenants x 5 types): %.0f ns/point protobuf, %.0f ns/point protobuf+JSON\n",
	       r.points, r.ns_pb, r.ns_json);
	size_t sb;
	double ns = bench_spans(2048, &id, &sb);
	printf("  spans:   2048 spans: %.0f ns/span protobuf (%zu bytes, %.0f bytes/span)\n", ns, sb,
	       (double)sb / 2048);

	printf("payload size vs active series (tenants x 5 types; 3 series per pair + 2 per tenant)\n");
	int ts[] = { 10, 100, 1000, 10000 };
	double first = 0;
	for (int i = 0; i < 4; i++) {
		struct result p = bench_metrics(ts[i], 5, &id, 3);
		double per = (double)p.bytes / (double)p.points;
		if (!first)
			first = per;
		printf("  %6d tenants: %7zu points  %10zu bytes protobuf  %6.1f bytes/point (x%.2f of the smallest)  %10zu bytes JSON\n",
		       ts[i], p.points, p.bytes, per, per / first, p.json_bytes);
	}
	return 0;
}
