/* test_otlp - OTLP builder, protobuf and JSON encoders, explicit-bucket
 * view, Prometheus rendering, starvation check, response parsing, gzip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sidecar/export.h"
#include "sidecar/otlp.h"
#include "sidecar/otlp_json.h"
#include "sidecar/prom.h"
#include "sidecar/starvation.h"

static struct sc_config cfg;
static struct sc_identity id;

static const char *noenv(void *c, const char *n)
{
	(void)c;
	(void)n;
	return NULL;
}

static int setup(void **st)
{
	(void)st;
	sc_config_load(&cfg, noenv, NULL, NULL, NULL);
	id.cfg = &cfg;
	snprintf(id.host_name, sizeof(id.host_name), "box");
	id.pid = 7;
	return 0;
}

/* One agent with a counter, a depth gauge, an age gauge and a histogram. */
static struct sc_store *fixture(void)
{
	struct sc_store *s = sc_store_new(100);
	Jobq__Agent__Hello h = JOBQ__AGENT__HELLO__INIT;
	h.agent_id = "ag";
	h.host_name = "worker-1";
	h.target = "pid:9";
	h.agent_version = "v";
	h.agent_pid = 9;
	h.agent_start_unix_ns = 111;
	int slot = sc_store_hello(s, &h);
	assert_int_equal(slot, 0);

	Jobq__Agent__SeriesKey k1 = JOBQ__AGENT__SERIES_KEY__INIT, k2 = JOBQ__AGENT__SERIES_KEY__INIT;
	k1.tenant = "acme";
	k1.job_type = "email";
	k1.priority = "high";
	k2.tenant = "globex";
	Jobq__Agent__Counter c = JOBQ__AGENT__COUNTER__INIT, *cp = &c;
	c.name = "jobs.enqueued";
	c.key = &k1;
	c.value = 42;
	c.start_unix_ns = 123456789012345678ull;
	Jobq__Agent__Gauge g1 = JOBQ__AGENT__GAUGE__INIT, g2 = JOBQ__AGENT__GAUGE__INIT, *gp[2] = { &g1, &g2 };
	g1.name = "jobs.queue_depth";
	g1.key = &k1;
	g1.value = 3;
	g2.name = "jobs.oldest_job_age";
	g2.key = &k2;
	g2.value = 400000; /* ms: above the 300 s default threshold */
	uint64_t b[] = { 2, 0, 5 };
	Jobq__Agent__ExpHistogram w = JOBQ__AGENT__EXP_HISTOGRAM__INIT, *wp = &w;
	w.name = "jobs.duration";
	w.key = &k1;
	w.start_unix_ns = 5;
	w.scale = 0; /* bucket i = (2^i, 2^(i+1)] */
	w.offset = 2; /* (4,8], (8,16], (16,32] */
	w.bucket_counts = b;
	w.n_bucket_counts = 3;
	w.zero_count = 1;
	w.count = 8;
	w.sum = 100;
	w.min = 0;
	w.max = 30;
	Jobq__Agent__MetricSnapshot m = JOBQ__AGENT__METRIC_SNAPSHOT__INIT;
	m.time_unix_nano = 1700000000000000001ull;
	m.counters = &cp;
	m.n_counters = 1;
	m.gauges = gp;
	m.n_gauges = 2;
	m.histograms = &wp;
	m.n_histograms = 1;
	assert_int_equal(sc_store_apply(s, slot, &m), 0);
	return s;
}

typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;

static const Metric *find_metric(const sc_metrics_req *r, const char *name)
{
	for (size_t i = 0; i < r->n_resource_metrics; i++)
		for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
			const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = r->resource_metrics[i]->scope_metrics[j];
			for (size_t k = 0; k < sm->n_metrics; k++)
				if (!strcmp(sm->metrics[k]->name, name))
					return sm->metrics[k];
		}
	return NULL;
}

static void test_metrics_round_trip_through_protobuf(void **st)
{
	(void)st;
	struct sc_store *s = fixture();
	struct sc_arena a;
	sc_arena_init(&a, 0);
	size_t np = 0;
	struct sc_metrics_cursor cur = { 0 };
	sc_metrics_req *req = sc_otlp_build_metrics(&a, s, &id, NULL, 2000, 0, &cur, &np);
	assert_true(cur.done);
	assert_non_null(req);
	assert_int_equal(np, 4);
	size_t len = protobuf_c_message_get_packed_size(&req->base);
	uint8_t *buf = malloc(len);
	assert_int_equal(protobuf_c_message_pack(&req->base, buf), len);
	sc_metrics_req *back = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(NULL, len, buf);
	assert_non_null(back);

	const Metric *m = find_metric(back, "jobs.enqueued");
	assert_non_null(m);
	assert_string_equal(m->unit, "1");
	assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
	assert_true(m->sum->is_monotonic);
	assert_int_equal(m->sum->aggregation_temporality, 2);
	assert_int_equal(m->sum->data_points[0]->as_int, 42);
	assert_int_equal(m->sum->data_points[0]->start_time_unix_nano, 123456789012345678ull);
	assert_int_equal(m->sum->data_points[0]->time_unix_nano, 1700000000000000001ull);
	assert_int_equal(m->sum->data_points[0]->n_attributes, 3);

	/* The agent's resource: process.pid from its Hello (semconv). */
	const Opentelemetry__Proto__Resource__V1__Resource *res = back->resource_metrics[0]->resource;
	int64_t pid = -1, agent_pid = -1;
	for (size_t i = 0; i < res->n_attributes; i++) {
		if (!strcmp(res->attributes[i]->key, "process.pid"))
			pid = res->attributes[i]->value->int_value;
		if (!strcmp(res->attributes[i]->key, "jobq.agent.pid"))
			agent_pid = res->attributes[i]->value->int_value;
	}
	assert_int_equal(pid, 9);
	assert_int_equal(agent_pid, 9);

	m = find_metric(back, "jobs.queue_depth");
	assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
	assert_false(m->sum->is_monotonic);
	assert_true(m->sum->data_points[0]->as_double == 3.0);
	assert_int_equal(m->sum->data_points[0]->start_time_unix_nano, 111);

	m = find_metric(back, "jobs.duration");
	assert_string_equal(m->unit, "ms");
	assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM);
	const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *p = m->exponential_histogram->data_points[0];
	assert_int_equal(p->count, 8);
	assert_int_equal(p->zero_count, 1);
	assert_int_equal(p->positive->offset, 2);
	assert_int_equal(p->positive->n_bucket_counts, 3);
	assert_int_equal(p->min__case, OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__MIN__MIN);
	assert_true(p->min == 0.0);

	protobuf_c_message_free_unpacked(&back->base, NULL);
	free(buf);
	sc_arena_free(&a);
	sc_store_free(s);
}

static void test_explicit_view_assigns_by_upper_bound(void **st)
{
	(void)st;
	uint64_t b[] = { 2, 0, 5 };
	struct sc_hist h = { .count = 8, .zero_count = 1, .scale = 0, .offset = 2, .nbuckets = 3, .buckets = b };
	uint64_t out[SC_N_EXPLICIT_BOUNDS + 1];
	sc_explicit_from_exp(&h, out);
	/* (4,8] -> le 10; (16,32] -> le 50; zero -> le 0. */
	assert_int_equal(out[0], 1);
	assert_int_equal(out[2], 2);
	assert_int_equal(out[4], 5);
	uint64_t total = 0;
	for (int i = 0; i <= SC_N_EXPLICIT_BOUNDS; i++)
		total += out[i];
	assert_int_equal(total, h.count);
	/* Beyond the last bound: +Inf bucket. */
	uint64_t b2[] = { 1 };
	struct sc_hist big = { .count = 1, .scale = 0, .offset = 20, .nbuckets = 1, .buckets = b2 };
	sc_explicit_from_exp(&big, out);
	assert_int_equal(out[SC_N_EXPLICIT_BOUNDS], 1);
}

static void test_json_follows_otlp_mapping(void **st)
{
	(void)st;
	struct sc_store *s = fixture();
	struct sc_arena a;
	sc_arena_init(&a, 0);
	size_t np;
	struct sc_metrics_cursor cur = { 0 };
	sc_metrics_req *req = sc_otlp_build_metrics(&a, s, &id, NULL, 2000, 0, &cur, &np);
	assert_true(cur.done);
	struct sc_buf out;
	sc_buf_init(&out, 0);
	assert_int_equal(sc_otlp_json(&req->base, &out), 0);
	sc_buf_append(&out, "", 1);
	const char *j = (const char *)out.data;
	assert_non_null(strstr(j, "\"resourceMetrics\":[{"));
	assert_non_null(strstr(j, "\"startTimeUnixNano\":\"123456789012345678\""));
	assert_non_null(strstr(j, "\"asInt\":\"42\""));
	assert_non_null(strstr(j, "\"aggregationTemporality\":2"));
	assert_non_null(strstr(j, "\"isMonotonic\":true"));
	assert_non_null(strstr(j, "\"zeroCount\":\"1\""));
	assert_non_null(strstr(j, "\"min\":0,")); /* a set oneof is written even when 0 */
	assert_non_null(strstr(j, "\"bucketCounts\":[\"2\",\"0\",\"5\"]"));
	assert_null(strstr(j, "\"data_points\""));  /* no snake_case keys */
	assert_null(strstr(j, "\"time_unix_nano\""));
	assert_non_null(strstr(j, "\"dataPoints\":["));
	sc_buf_free(&out);
	sc_arena_free(&a);
	sc_store_free(s);
}

static void test_json_ids_hex_strings_escaped(void **st)
{
	(void)st;
	uint8_t tid[16], sid[8];
	for (int i = 0; i < 16; i++)
		tid[i] = (uint8_t)(0xf0 + i);
	memset(sid, 0xab, 8);
	struct sc_arena a;
	sc_arena_init(&a, 0);
	struct sc_store *s = sc_store_new(10);
	sc_otlp_span *sp = sc_starvation_span(&a, s, 1, 10, 20, tid, sid);
	assert_non_null(sp);
	sp->name = "quote\" back\\ nl\n ctl\x01";
	struct sc_buf out;
	sc_buf_init(&out, 0);
	assert_int_equal(sc_otlp_json(&sp->base, &out), 0);
	sc_buf_append(&out, "", 1);
	const char *j = (const char *)out.data;
	assert_non_null(strstr(j, "\"traceId\":\"f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\""));
	assert_non_null(strstr(j, "\"spanId\":\"abababababababab\""));
	assert_non_null(strstr(j, "\"name\":\"quote\\\" back\\\\ nl\\n ctl\\u0001\""));
	assert_non_null(strstr(j, "\"kind\":1"));
	assert_non_null(strstr(j, "\"intValue\":\"0\""));
	/* A small limit makes the encoder fail instead of growing. */
	struct sc_buf small;
	sc_buf_init(&small, 16);
	assert_int_equal(sc_otlp_json(&sp->base, &small), -1);
	sc_buf_free(&small);
	sc_buf_free(&out);
	sc_arena_free(&a);
	sc_store_free(s);
}

static void test_starvation_lists_sorted_unique_tenants(void **st)
{
	(void)st;
	struct sc_store *s = fixture();
	char csv[64];
	int trunc;
	assert_int_equal(sc_starvation_find(s, 300000, csv, sizeof(csv), &trunc), 1);
	assert_string_equal(csv, "globex");
	assert_int_equal(sc_starvation_find(s, 500000, csv, sizeof(csv), &trunc), 0);
	assert_string_equal(csv, "");
	sc_store_free(s);
}

static void test_prometheus_text(void **st)
{
	(void)st;
	struct sc_store *s = fixture();
	struct sc_buf out;
	sc_buf_init(&out, 0);
	assert_int_equal(sc_prom_render(s, NULL, &out), 0);
	sc_buf_append(&out, "", 1);
	const char *t = (const char *)out.data;
	assert_non_null(strstr(t, "# TYPE jobs_enqueued_total counter\n"));
	assert_non_null(strstr(t, "jobs_enqueued_total{jobq_agent=\"ag\",tenant_id=\"acme\",job_type=\"email\",job_priority=\"high\"} 42\n"));
	assert_non_null(strstr(t, "# TYPE jobs_duration_milliseconds histogram\n"));
	assert_non_null(strstr(t, "jobs_duration_milliseconds_bucket{jobq_agent=\"ag\",tenant_id=\"acme\",job_type=\"email\",job_priority=\"high\",le=\"10\"} 3\n"));
	assert_non_null(strstr(t, "le=\"+Inf\"} 8\n"));
	assert_non_null(strstr(t, "jobs_duration_milliseconds_count{jobq_agent=\"ag\",tenant_id=\"acme\",job_type=\"email\",job_priority=\"high\"} 8\n"));
	sc_buf_free(&out);
	sc_store_free(s);
}

/* Value of the self-metric point name{signal, reason} in a request, or -1. */
static int64_t self_point(const sc_metrics_req *r, const char *name, const char *signal, const char *reason)
{
	const Metric *m = find_metric(r, name);
	if (!m)
		return -1;
	for (size_t i = 0; i < m->sum->n_data_points; i++) {
		const Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p = m->sum->data_points[i];
		int ok = 0;
		for (size_t j = 0; j < p->n_attributes; j++) {
			const char *k = p->attributes[j]->key, *v = p->attributes[j]->value->string_value;
			ok += !strcmp(k, "signal") && !strcmp(v, signal);
			ok += reason && !strcmp(k, "reason") && !strcmp(v, reason);
		}
		if (ok == (reason ? 2 : 1))
			return p->as_int;
	}
	return -1;
}

static void test_store_drops_are_self_metrics_in_otlp_and_prometheus(void **st)
{
	(void)st;
	struct sc_store *s = fixture();
	struct sc_stats stats = { 0 };
	s->st = &stats;
	/* An invalid histogram and a counter sent under a gauge's name. */
	Jobq__Agent__SeriesKey k = JOBQ__AGENT__SERIES_KEY__INIT;
	uint64_t b[] = { 1 };
	Jobq__Agent__ExpHistogram w = JOBQ__AGENT__EXP_HISTOGRAM__INIT, *wp = &w;
	w.name = "jobs.duration";
	w.key = &k;
	w.bucket_counts = b;
	w.n_bucket_counts = 1;
	w.count = 5;
	Jobq__Agent__Counter c = JOBQ__AGENT__COUNTER__INIT, *cp = &c;
	c.name = "jobs.queue_depth";
	c.key = &k;
	Jobq__Agent__MetricSnapshot m = JOBQ__AGENT__METRIC_SNAPSHOT__INIT;
	m.histograms = &wp;
	m.n_histograms = 1;
	m.counters = &cp;
	m.n_counters = 1;
	assert_int_equal(sc_store_apply(s, 0, &m), 0);
	atomic_store(&stats.dropped[SC_SIGNAL_METRICS][SC_DROP_METRIC_LIMIT], 3);

	struct sc_arena a;
	sc_arena_init(&a, 0);
	size_t np;
	struct sc_metrics_cursor cur = { 0 };
	sc_metrics_req *req = sc_otlp_build_metrics(&a, s, &id, &stats, 2000, 0, &cur, &np);
	assert_non_null(req);
	assert_int_equal(self_point(req, "jobq.sidecar.dropped.points", "metrics", "invalid"), 2);
	assert_int_equal(self_point(req, "jobq.sidecar.dropped.points", "metrics", "metric_limit"), 3);
	sc_arena_free(&a);

	struct sc_buf out;
	sc_buf_init(&out, 0);
	assert_int_equal(sc_prom_render(s, &stats, &out), 0);
	sc_buf_append(&out, "", 1);
	assert_non_null(strstr((const char *)out.data, "jobq_sidecar_dropped_total{signal=\"metrics\",reason=\"invalid\"} 2\n"));
	assert_non_null(strstr((const char *)out.data, "jobq_sidecar_dropped_total{signal=\"metrics\",reason=\"metric_limit\"} 3\n"));
	sc_buf_free(&out);
	sc_store_free(s);
}

static void test_delta_counters_subtract_previous_export(void **st)
{
	(void)st;
	struct sc_store *s = fixture();
	struct sc_config dcfg = cfg;
	struct sc_identity did = id;
	dcfg.temporality = SC_TEMPORALITY_DELTA;
	did.cfg = &dcfg;
	struct sc_arena a;
	sc_arena_init(&a, 0);
	size_t np;
	struct sc_metrics_cursor c1 = { 0 }, c2 = { 0 };
	sc_metrics_req *r1 = sc_otlp_build_metrics(&a, s, &did, NULL, 1, 0, &c1, &np);
	const Metric *m = find_metric(r1, "jobs.enqueued");
	assert_int_equal(m->sum->aggregation_temporality, 1);
	assert_int_equal(m->sum->data_points[0]->as_int, 42);
	sc_metrics_req *r2 = sc_otlp_build_metrics(&a, s, &did, NULL, 2, 0, &c2, &np);
	m = find_metric(r2, "jobs.enqueued");
	assert_int_equal(m->sum->data_points[0]->as_int, 0);
	assert_int_equal(m->sum->data_points[0]->start_time_unix_nano, 1700000000000000001ull);
	m = find_metric(r2, "jobs.duration");
	assert_int_equal(m->exponential_histogram->data_points[0]->count, 0);
	assert_int_equal(m->exponential_histogram->data_points[0]->min__case, 0); /* unknown for a delta */
	sc_arena_free(&a);
	sc_store_free(s);
}

/* A second snapshot for fixture(): jobs.enqueued{acme} = value (started at
 * counter_start) and jobs.duration{acme} as given, at time t. */
static void apply_more(struct sc_store *s, uint64_t t, uint64_t value, uint64_t counter_start,
		       int scale, int offset, uint64_t *b, size_t nb, uint64_t zero, double sum)
{
	Jobq__Agent__SeriesKey k1 = JOBQ__AGENT__SERIES_KEY__INIT;
	k1.tenant = "acme";
	k1.job_type = "email";
	k1.priority = "high";
	Jobq__Agent__Counter c = JOBQ__AGENT__COUNTER__INIT, *cp = &c;
	c.name = "jobs.enqueued";
	c.key = &k1;
	c.value = value;
	c.start_unix_ns = counter_start;
	Jobq__Agent__ExpHistogram w = JOBQ__AGENT__EXP_HISTOGRAM__INIT, *wp = &w;
	w.name = "jobs.duration";
	w.key = &k1;
	w.start_unix_ns = 5;
	w.scale = scale;
	w.offset = offset;
	w.bucket_counts = b;
	w.n_bucket_counts = nb;
	w.zero_count = zero;
	w.count = zero;
	for (size_t i = 0; i < nb; i++)
		w.count += b[i];
	w.sum = sum;
	Jobq__Agent__MetricSnapshot m = JOBQ__AGENT__METRIC_SNAPSHOT__INIT;
	m.time_unix_nano = t;
	m.counters = &cp;
	m.n_counters = 1;
	m.histograms = &wp;
	m.n_histograms = 1;
	assert_int_equal(sc_store_apply(s, 0, &m), 0);
}

static void test_delta_after_a_sidecar_restart_starts_from_a_baseline(void **st)
{
	(void)st;
	/* The agent's series started long before this sidecar did: what it
	 * counted until now was (mostly) exported by the previous sidecar. */
	struct sc_store *s = fixture(); /* enqueued 42 since 1973, duration count 8 since 5 ns */
	struct sc_config dcfg = cfg;
	struct sc_identity did = id;
	dcfg.temporality = SC_TEMPORALITY_DELTA;
	did.cfg = &dcfg;
	did.start_ns = 1600000000000000000ull;
	struct sc_arena a;
	sc_arena_init(&a, 0);
	size_t np;
	struct sc_metrics_cursor c1 = { 0 }, c2 = { 0 }, c3 = { 0 };
	sc_metrics_req *r1 = sc_otlp_build_metrics(&a, s, &did, NULL, 1, 0, &c1, &np);
	assert_non_null(r1);
	/* First observation: the baseline, not exported (no empty metric either). */
	assert_null(find_metric(r1, "jobs.enqueued"));
	assert_null(find_metric(r1, "jobs.duration"));
	assert_non_null(find_metric(r1, "jobs.queue_depth")); /* UpDownCounter: cumulative */
	assert_non_null(find_metric(r1, "jobs.oldest_job_age"));
	assert_int_equal(np, 2);

	uint64_t b[] = { 3, 0, 6 };
	apply_more(s, 1700000000000000002ull, 50, 123456789012345678ull, 0, 2, b, 3, 1, 130);
	sc_metrics_req *r2 = sc_otlp_build_metrics(&a, s, &did, NULL, 2, 0, &c2, &np);
	const Metric *m = find_metric(r2, "jobs.enqueued");
	assert_non_null(m);
	assert_int_equal(m->sum->aggregation_temporality, 1);
	assert_int_equal(m->sum->data_points[0]->as_int, 50 - 42);
	assert_int_equal(m->sum->data_points[0]->start_time_unix_nano, 1700000000000000001ull);
	assert_int_equal(m->sum->data_points[0]->time_unix_nano, 1700000000000000002ull);
	m = find_metric(r2, "jobs.duration");
	assert_non_null(m);
	const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *p = m->exponential_histogram->data_points[0];
	assert_int_equal(p->count, 10 - 8);
	assert_int_equal(p->zero_count, 0);
	assert_true(p->sum == 30);
	assert_int_equal(p->start_time_unix_nano, 1700000000000000001ull);

	/* The agent restarted under the same key (the value fell, the start is
	 * after this sidecar's): a fresh start, reported whole from its start. */
	apply_more(s, 1700000000000000003ull, 7, 1650000000000000000ull, 0, 2, b, 3, 1, 130);
	sc_metrics_req *r3 = sc_otlp_build_metrics(&a, s, &did, NULL, 3, 0, &c3, &np);
	m = find_metric(r3, "jobs.enqueued");
	assert_non_null(m);
	assert_int_equal(m->sum->n_data_points, 1);
	/* Same series key, restarted counter (7 < 50): a fresh start. */
	assert_int_equal(m->sum->data_points[0]->as_int, 7);
	assert_int_equal(m->sum->data_points[0]->start_time_unix_nano, 1650000000000000000ull);
	sc_arena_free(&a);
	sc_store_free(s);
}

static void test_delta_histogram_survives_a_scale_change(void **st)
{
	(void)st;
	struct sc_store *s = fixture(); /* duration: scale 0, offset 2, buckets 2 0 5, zero 1 */
	struct sc_config dcfg = cfg;
	struct sc_identity did = id;
	dcfg.temporality = SC_TEMPORALITY_DELTA;
	did.cfg = &dcfg;
	struct sc_arena a;
	sc_arena_init(&a, 0);
	size_t np;
	struct sc_metrics_cursor c1 = { 0 }, c2 = { 0 };
	sc_metrics_req *r1 = sc_otlp_build_metrics(&a, s, &did, NULL, 1, 0, &c1, &np);
	assert_int_equal(find_metric(r1, "jobs.duration")->exponential_histogram->data_points[0]->count, 8);

	/* The range grew and the agent downscaled to scale -1: the old
	 * (4,8],(8,16] are now (4,16]; (16,32] is in (16,64]. One more value
	 * in each, one in a new bucket (64,256]. */
	uint64_t b[] = { 2 + 0 + 1, 5 + 1, 1 };
	apply_more(s, 1700000000000000009ull, 42, 123456789012345678ull, -1, 1, b, 3, 1, 400);
	sc_metrics_req *r2 = sc_otlp_build_metrics(&a, s, &did, NULL, 2, 0, &c2, &np);
	const Metric *m = find_metric(r2, "jobs.duration");
	assert_int_equal(m->exponential_histogram->aggregation_temporality, 1);
	const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *p = m->exponential_histogram->data_points[0];
	assert_int_equal(p->count, 3); /* not the cumulative 11 */
	assert_int_equal(p->zero_count, 0);
	assert_int_equal(p->scale, -1);
	assert_true(p->sum == 300);
	assert_int_equal(p->start_time_unix_nano, 1700000000000000001ull);
	uint64_t total = p->zero_count;
	for (size_t i = 0; i < p->positive->n_bucket_counts; i++)
		total += p->positive->bucket_counts[i];
	assert_int_equal(total, p->count);
	assert_int_equal(p->positive->offset, 1);
	assert_int_equal(p->positive->n_bucket_counts, 3);
	assert_int_equal(p->positive->bucket_counts[0], 1);
	assert_int_equal(p->positive->bucket_counts[1], 1);
	assert_int_equal(p->positive->bucket_counts[2], 1);
	sc_arena_free(&a);
	sc_store_free(s);
}

static void test_requests_are_split_at_max_points(void **st)
{
	(void)st;
	struct sc_store *s = fixture();
	/* A second agent, so a request boundary also falls between agents. */
	Jobq__Agent__Hello h = JOBQ__AGENT__HELLO__INIT;
	h.agent_id = "ag2";
	h.agent_start_unix_ns = 1;
	int slot = sc_store_hello(s, &h);
	Jobq__Agent__SeriesKey k[3] = { JOBQ__AGENT__SERIES_KEY__INIT, JOBQ__AGENT__SERIES_KEY__INIT,
					 JOBQ__AGENT__SERIES_KEY__INIT };
	Jobq__Agent__Counter c[3], *cp[3];
	const char *tn[3] = { "x", "y", "z" };
	for (int i = 0; i < 3; i++) {
		k[i].tenant = (char *)tn[i];
		jobq__agent__counter__init(&c[i]);
		c[i].name = "jobs.enqueued";
		c[i].key = &k[i];
		c[i].value = (uint64_t)i + 1;
		cp[i] = &c[i];
	}
	Jobq__Agent__MetricSnapshot m = JOBQ__AGENT__METRIC_SNAPSHOT__INIT;
	m.counters = cp;
	m.n_counters = 3;
	assert_int_equal(sc_store_apply(s, slot, &m), 0);

	struct sc_metrics_cursor cur = { 0 };
	size_t total = 0, requests = 0, np;
	uint64_t sum_enqueued = 0;
	while (!cur.done) {
		struct sc_arena a;
		sc_arena_init(&a, 0);
		sc_metrics_req *r = sc_otlp_build_metrics(&a, s, &id, NULL, 5, 2, &cur, &np);
		assert_non_null(r);
		assert_true(np <= 2);
		total += np;
		requests++;
		for (size_t i = 0; i < r->n_resource_metrics; i++)
			for (size_t j = 0; j < r->resource_metrics[i]->scope_metrics[0]->n_metrics; j++) {
				const Metric *mt = r->resource_metrics[i]->scope_metrics[0]->metrics[j];
				if (!strcmp(mt->name, "jobs.enqueued"))
					for (size_t p = 0; p < mt->sum->n_data_points; p++)
						sum_enqueued += (uint64_t)mt->sum->data_points[p]->as_int;
			}
		sc_arena_free(&a);
		assert_true(requests < 10);
	}
	assert_int_equal(total, 4 + 3); /* every point exactly once */
	assert_int_equal(requests, 4);
	assert_int_equal(sum_enqueued, 42 + 1 + 2 + 3);
	sc_store_free(s);
}

static void test_response_parsing(void **st)
{
	(void)st;
	int64_t rej;
	char msg[64];
	const char *js = "{\"partialSuccess\":{\"rejectedDataPoints\":\"12\",\"errorMessage\":\"too old\"}}";
	assert_int_equal(sc_parse_partial_success(SC_SIGNAL_METRICS, true, (const uint8_t *)js, strlen(js), &rej,
						  msg, sizeof(msg)), 0);
	assert_int_equal(rej, 12);
	assert_string_equal(msg, "too old");
	/* protobuf: partial_success { rejected_spans: 5, error_message: "x" } */
	const uint8_t pb[] = { 0x0a, 0x05, 0x08, 0x05, 0x12, 0x01, 'x' };
	assert_int_equal(sc_parse_partial_success(SC_SIGNAL_TRACES, false, pb, sizeof(pb), &rej, msg, sizeof(msg)), 0);
	assert_int_equal(rej, 5);
	assert_string_equal(msg, "x");
	/* google.rpc.Status { code: 3, message: "bad" } */
	const uint8_t status[] = { 0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd' };
	assert_int_equal(sc_parse_status_message(false, status, sizeof(status), msg, sizeof(msg)), 0);
	assert_string_equal(msg, "bad");
	assert_int_equal(sc_parse_status_message(false, (const uint8_t *)"\xff\xff", 2, msg, sizeof(msg)), -1);
}

static void test_gzip_round_trip(void **st)
{
	(void)st;
	uint8_t in[10000], back[10000];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i % 17);
	uint8_t *z;
	size_t zl;
	assert_int_equal(sc_gzip(in, sizeof(in), &z, &zl), 0);
	assert_true(zl < sizeof(in) / 4);
	assert_int_equal(z[0], 0x1f); /* gzip magic */
	assert_int_equal(z[1], 0x8b);
	z_stream zs = { 0 };
	assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = z;
	zs.avail_in = (uInt)zl;
	zs.next_out = back;
	zs.avail_out = sizeof(back);
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	assert_int_equal(zs.total_out, sizeof(in));
	inflateEnd(&zs);
	assert_memory_equal(in, back, sizeof(in));
	free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_round_trip_through_protobuf),
		cmocka_unit_test(test_explicit_view_assigns_by_upper_bound),
		cmocka_unit_test(test_json_follows_otlp_mapping),
		cmocka_unit_test(test_json_ids_hex_strings_escaped),
		cmocka_unit_test(test_starvation_lists_sorted_unique_tenants),
		cmocka_unit_test(test_prometheus_text),
		cmocka_unit_test(test_store_drops_are_self_metrics_in_otlp_and_prometheus),
		cmocka_unit_test(test_delta_counters_subtract_previous_export),
		cmocka_unit_test(test_delta_after_a_sidecar_restart_starts_from_a_baseline),
		cmocka_unit_test(test_delta_histogram_survives_a_scale_change),
		cmocka_unit_test(test_requests_are_split_at_max_points),
		cmocka_unit_test(test_response_parsing),
		cmocka_unit_test(test_gzip_round_trip),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
