/*
 * sidecar_bench - encode cost of jobq-sidecar's OTLP builder and encoders.
 *
 *   per data point: build + protobuf pack (and JSON) of a metrics request
 *                   from a store of T tenants x 5 types (jobs.enqueued,
 *                   jobs.processed, jobs.wait_time per pair; two gauges per
 *                   tenant), median of several runs;
 *   per span:       decode of agent SpanBatch frames + encode of the traces
 *                   request, direct (spans.c) and through protobuf-c (the
 *                   former path, tests/sidecar/traces_pbc.c), side by side;
 *   payload size:   bytes per series for growing series counts (linear
 *                   growth = constant bytes per series).
 * Prints figures only; the test suite asserts behaviour, not speed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/encode.h"
#include "sidecar/otlp.h"
#include "sidecar/otlp_json.h"
#include "sidecar/spans.h"
#include "tests/sidecar/traces_pbc.h"

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
		struct sc_metrics_cursor cur = { 0 };
		sc_metrics_req *req = sc_otlp_build_metrics(&a, s, id, NULL, 2, 0, &cur, &r.points);
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

/* n agent spans as the agent sends them (its own encoder, the agent's
 * attribute set; every 16th job failed), in frames of 512. */
static struct batch_bytes {
	uint8_t *p;
	size_t n;
} *agent_frames(size_t n, size_t *nframes)
{
	struct batch_bytes *f = calloc(n / 512 + 1, sizeof(*f));
	struct span *sp = calloc(512, sizeof(*sp));
	if (!f || !sp)
		die("out of memory");
	*nframes = 0;
	for (size_t done = 0; done < n;) {
		size_t k = 0;
		for (; k < 512 && done < n; k++, done++) {
			struct span *s = &sp[k];
			memset(s, 0, sizeof(*s));
			s->kind = done % 2 ? SPAN_PROCESS : SPAN_ENQUEUE;
			for (int i = 0; i < 16; i++)
				s->trace_id[i] = s->link_trace_id[i] = (uint8_t)(done + (size_t)i + 1);
			for (int i = 0; i < 8; i++)
				s->span_id[i] = s->link_span_id[i] = (uint8_t)(done * 7 + (size_t)i + 1);
			s->has_link = s->kind == SPAN_PROCESS;
			s->flags = 1;
			s->start_unix_ns = 1700000000000000000ull + done;
			s->end_unix_ns = s->start_unix_ns + 1000000;
			s->job_id = 1000 + done / 2;
			s->attempt = 1;
			s->priority = 1;
			s->wait_ns = 1500000;
			s->status = done % 32 == 31 ? JOBQ_STATUS_FAILED : JOBQ_STATUS_SUCCESS;
			snprintf(s->tenant, sizeof(s->tenant), "tenant-%zu", done % 10);
			snprintf(s->type, sizeof(s->type), "email");
			snprintf(s->queue, sizeof(s->queue), "default");
			if (s->status == JOBQ_STATUS_FAILED)
				snprintf(s->error, sizeof(s->error), "boom");
		}
		uint8_t *buf;
		size_t len;
		if (encode_spans(sp, k, 0, &buf, &len))
			die("encode_spans");
		/* The SpanBatch inside: skip the length prefix and the Frame's
		 * version (2 bytes) and spans tag + length. */
		const uint8_t *p = buf + 4 + 2 + 1;
		while (*p++ & 0x80)
			;
		f[*nframes].n = len - (size_t)(p - buf);
		f[*nframes].p = malloc(f[*nframes].n);
		if (!f[*nframes].p)
			die("out of memory");
		memcpy(f[*nframes].p, p, f[*nframes].n);
		(*nframes)++;
		free(buf);
	}
	free(sp);
	return f;
}

/* Per span: decode the frames and encode the traces request, both ways:
 * protobuf-c decode + OTLP tree + pack (the path before span_wire.c, kept
 * as tests/sidecar/traces_pbc.c), and the direct transcoding (spans.c). */
static void bench_spans(size_t n, const struct sc_identity *id, double *ns_pbc, double *ns_direct,
			size_t *bytes)
{
	struct sc_store *s = make_store(1, 1);
	size_t nf;
	struct batch_bytes *f = agent_frames(n, &nf);
	double t_pbc[7], t_dir[7];
	for (int run = 0; run < 7; run++) {
		struct sc_arena a;
		ProtobufCAllocator alloc;
		struct sc_pbc_batch *pb = calloc(nf, sizeof(*pb));
		size_t ns, ninv;
		if (!pb)
			die("out of memory");
		sc_arena_init(&a, 0);
		sc_arena_pb_allocator(&a, &alloc);
		double t0 = now_s();
		for (size_t i = 0; i < nf; i++) {
			pb[i].slot = 0;
			if (!(pb[i].batch = jobq__agent__span_batch__unpack(&alloc, f[i].n, f[i].p)))
				die("unpack");
		}
		sc_traces_req *req = sc_traces_pbc(&a, pb, nf, s, id, NULL, 0, &ns, &ninv);
		if (!req || ns != n)
			die("build traces");
		size_t len = protobuf_c_message_get_packed_size(&req->base);
		uint8_t *buf = malloc(len);
		if (!buf)
			die("out of memory");
		protobuf_c_message_pack(&req->base, buf);
		t_pbc[run] = (now_s() - t0) * 1e9 / (double)n;
		free(buf);
		free(pb);
		sc_arena_free(&a);

		struct sc_spanbuf sb;
		sc_spanbuf_init(&sb, n, n);
		sc_arena_init(&a, 0);
		t0 = now_s();
		for (size_t i = 0; i < nf; i++) {
			size_t refused;
			uint64_t dropped;
			if (sc_spanbuf_add(&sb, 0, f[i].p, f[i].n, &refused, &dropped) || refused)
				die("spanbuf");
		}
		if (sc_spanbuf_encode(&sb, &a, s, id, NULL, 0, &buf, bytes) || sb.nspans != n)
			die("encode traces");
		t_dir[run] = (now_s() - t0) * 1e9 / (double)n;
		free(buf);
		sc_arena_free(&a);
		sc_spanbuf_free(&sb);
	}
	qsort(t_pbc, 7, sizeof(double), cmp_d);
	qsort(t_dir, 7, sizeof(double), cmp_d);
	*ns_pbc = t_pbc[3];
	*ns_direct = t_dir[3];
	for (size_t i = 0; i < nf; i++)
		free(f[i].p);
	free(f);
	sc_store_free(s);
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
	double pbc, direct;
	bench_spans(2048, &id, &pbc, &direct, &sb);
	printf("  spans:   2048 agent spans, decode + encode: %.0f ns/span direct (span_wire.c), %.0f ns/span "
	       "protobuf-c path (%zu bytes, %.0f bytes/span)\n", direct, pbc, sb, (double)sb / 2048);

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
