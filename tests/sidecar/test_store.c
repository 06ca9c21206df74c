/* test_store - series store: agents, restarts, cardinality overflow,
 * histogram merging and the count identity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sidecar/store.h"

static Jobq__Agent__Hello hello(const char *id, uint64_t start)
{
	Jobq__Agent__Hello h = JOBQ__AGENT__HELLO__INIT;
	h.agent_id = (char *)id;
	h.host_name = "h";
	h.target = "pid:1";
	h.agent_version = "1";
	h.agent_start_unix_ns = start;
	return h;
}

static Jobq__Agent__SeriesKey mkkey(const char *tenant, const char *type)
{
	Jobq__Agent__SeriesKey k = JOBQ__AGENT__SERIES_KEY__INIT;
	k.tenant = (char *)tenant;
	k.job_type = (char *)type;
	return k;
}

/* A snapshot with one jobs.enqueued counter per tenant name. */
static int apply_counters(struct sc_store *s, int slot, const char **tenants, const uint64_t *vals, size_t n,
			  uint64_t t)
{
	Jobq__Agent__Counter c[16], *cp[16];
	Jobq__Agent__SeriesKey k[16];
	for (size_t i = 0; i < n; i++) {
		jobq__agent__counter__init(&c[i]);
		k[i] = mkkey(tenants[i], "email");
		c[i].name = "jobs.enqueued";
		c[i].key = &k[i];
		c[i].value = vals[i];
		c[i].start_unix_ns = 5;
		cp[i] = &c[i];
	}
	Jobq__Agent__MetricSnapshot m = JOBQ__AGENT__METRIC_SNAPSHOT__INIT;
	m.time_unix_nano = t;
	m.counters = cp;
	m.n_counters = n;
	return sc_store_apply(s, slot, &m);
}

static const struct sc_series *find(const struct sc_store *s, int slot, const char *tenant)
{
	int m = sc_store_metric(s, "jobs.enqueued");
	for (const struct sc_series *se = s->agents[slot].series[m]; se; se = se->mnext)
		if (!strcmp(se->attr[SC_ATTR_TENANT], tenant))
			return se;
	return NULL;
}

static void test_counter_values_and_times(void **st)
{
	(void)st;
	struct sc_store *s = sc_store_new(10);
	Jobq__Agent__Hello h = hello("a", 100);
	int slot = sc_store_hello(s, &h);
	assert_true(slot >= 0);
	const char *t[] = { "acme", "globex" };
	assert_int_equal(apply_counters(s, slot, t, (uint64_t[]){ 3, 4 }, 2, 1000), 0);
	assert_int_equal(apply_counters(s, slot, t, (uint64_t[]){ 7, 9 }, 2, 2000), 0);
	const struct sc_series *se = find(s, slot, "globex");
	assert_non_null(se);
	assert_int_equal(se->cur.counter, 9);
	assert_int_equal(se->start_ns, 5);
	assert_int_equal(se->time_ns, 2000);
	assert_int_equal(s->agents[slot].nseries[sc_store_metric(s, "jobs.enqueued")], 2);
	sc_store_free(s);
}

static void test_same_agent_reconnect_keeps_series_restart_does_not(void **st)
{
	(void)st;
	struct sc_store *s = sc_store_new(10);
	Jobq__Agent__Hello h1 = hello("a", 100), h2 = hello("a", 200);
	int a = sc_store_hello(s, &h1);
	const char *t[] = { "acme" };
	apply_counters(s, a, t, (uint64_t[]){ 3 }, 1, 1);
	sc_store_disconnected(s, a);
	assert_int_equal(sc_store_hello(s, &h1), a); /* same process reconnecting */
	assert_non_null(find(s, a, "acme"));
	int b = sc_store_hello(s, &h2);               /* restarted: new series */
	assert_int_not_equal(a, b);
	assert_null(find(s, b, "acme"));
	sc_store_disconnected(s, a);
	sc_store_after_export(s); /* a's last export happened: freed */
	assert_false(s->agents[a].used);
	assert_true(s->agents[b].used);
	sc_store_free(s);
}

static void test_reconnect_before_the_old_connection_closes_keeps_the_agent(void **st)
{
	(void)st;
	struct sc_store *s = sc_store_new(10);
	Jobq__Agent__Hello h = hello("a", 100);
	int a = sc_store_hello(s, &h);
	const char *t[] = { "acme" };
	apply_counters(s, a, t, (uint64_t[]){ 3 }, 1, 1);
	/* The new connection's Hello comes before the old one's EOF. */
	assert_int_equal(sc_store_hello(s, &h), a);
	sc_store_disconnected(s, a); /* the old connection closes */
	sc_store_after_export(s);
	assert_true(s->agents[a].used);
	assert_non_null(find(s, a, "acme"));
	apply_counters(s, a, t, (uint64_t[]){ 4 }, 1, 2);
	assert_int_equal(find(s, a, "acme")->cur.counter, 4);
	/* The last connection goes: exported once more, then freed. */
	sc_store_disconnected(s, a);
	sc_store_disconnected(s, a); /* a stray extra call does not underflow */
	sc_store_after_export(s);
	assert_false(s->agents[a].used);
	sc_store_free(s);
}

static void test_cardinality_limit_folds_into_overflow(void **st)
{
	(void)st;
	struct sc_store *s = sc_store_new(2);
	Jobq__Agent__Hello h = hello("a", 1);
	int slot = sc_store_hello(s, &h);
	const char *t[] = { "t1", "t2", "t3", "t4" };
	apply_counters(s, slot, t, (uint64_t[]){ 1, 2, 3, 4 }, 4, 10);
	int m = sc_store_metric(s, "jobs.enqueued");
	assert_int_equal(s->agents[slot].nseries[m], 2);
	const struct sc_series *o = s->agents[slot].overflow[m];
	assert_non_null(o);
	assert_true(o->overflow);
	assert_int_equal(o->cur.counter, 3 + 4);
	/* Next snapshot: the overflow is recomputed, not accumulated twice. */
	apply_counters(s, slot, t, (uint64_t[]){ 1, 2, 5, 6 }, 4, 20);
	assert_int_equal(o->cur.counter, 5 + 6);
	assert_int_equal(s->agents[slot].nseries[m], 2);
	sc_store_free(s);
}

static void test_invalid_utf8_key_is_repaired(void **st)
{
	(void)st;
	struct sc_store *s = sc_store_new(10);
	Jobq__Agent__Hello h = hello("a\xff", 1);
	int slot = sc_store_hello(s, &h);
	const char *t[] = { "bad\xC3" };
	apply_counters(s, slot, t, (uint64_t[]){ 1 }, 1, 1);
	assert_non_null(find(s, slot, "bad\xEF\xBF\xBD"));
	assert_string_equal(s->agents[slot].agent_id, "a\xEF\xBF\xBD");
	/* The same raw key finds the same series again. */
	apply_counters(s, slot, t, (uint64_t[]){ 2 }, 1, 2);
	assert_int_equal(s->agents[slot].nseries[0], 1);
	sc_store_free(s);
}

static void test_histogram_count_identity_enforced(void **st)
{
	(void)st;
	struct sc_store *s = sc_store_new(10);
	Jobq__Agent__Hello h = hello("a", 1);
	int slot = sc_store_hello(s, &h);
	Jobq__Agent__SeriesKey k = mkkey("acme", "email");
	uint64_t b[] = { 0, 2, 3, 0 };
	Jobq__Agent__ExpHistogram w = JOBQ__AGENT__EXP_HISTOGRAM__INIT, *wp = &w;
	w.name = "jobs.wait_time";
	w.key = &k;
	w.scale = 3;
	w.zero_count = 1;
	w.offset = 4;
	w.bucket_counts = b;
	w.n_bucket_counts = 4;
	w.count = 6;
	Jobq__Agent__MetricSnapshot m = JOBQ__AGENT__METRIC_SNAPSHOT__INIT;
	m.histograms = &wp;
	m.n_histograms = 1;
	assert_int_equal(sc_store_apply(s, slot, &m), 0);
	int mi = sc_store_metric(s, "jobs.wait_time");
	const struct sc_series *se = s->agents[slot].series[mi];
	assert_non_null(se);
	/* Empty edge buckets trimmed: offset moves, identity holds. */
	assert_int_equal(se->cur.hist->offset, 5);
	assert_int_equal(se->cur.hist->nbuckets, 2);
	assert_int_equal(se->cur.hist->count, 6);
	w.count = 7; /* broken identity: dropped and counted */
	assert_int_equal(sc_store_apply(s, slot, &m), 0);
	assert_int_equal(s->dropped_points_invalid, 1);
	assert_int_equal(se->cur.hist->count, 6);
	sc_store_free(s);
}

static void test_hist_merge_downscales(void **st)
{
	(void)st;
	uint64_t b1[] = { 1, 1 }, b2[] = { 4 };
	struct sc_hist a = { 0 }, b = { 0 }, src1 = { .count = 3, .zero_count = 1, .sum = 10, .min = 1, .max = 5,
						       .scale = 3, .offset = 8, .nbuckets = 2, .buckets = b1 };
	struct sc_hist src2 = { .count = 4, .sum = 20, .min = 0.5, .max = 9, .scale = 2, .offset = 4,
				.nbuckets = 1, .buckets = b2 };
	assert_int_equal(sc_hist_merge(&a, &src1), 0);
	assert_int_equal(sc_hist_merge(&a, &src2), 0);
	/* Scale 3 buckets 8,9 become scale 2 bucket 4: all 6 values there. */
	assert_int_equal(a.scale, 2);
	assert_int_equal(a.offset, 4);
	assert_int_equal(a.nbuckets, 1);
	assert_int_equal(a.buckets[0], 6);
	assert_int_equal(a.count, 7);
	assert_int_equal(a.zero_count, 1);
	assert_true(a.min == 0.5 && a.max == 9 && a.sum == 30);
	uint64_t total = a.zero_count;
	for (uint32_t i = 0; i < a.nbuckets; i++)
		total += a.buckets[i];
	assert_int_equal(total, a.count);
	/* Far-apart ranges are downscaled until they fit SC_MAX_BUCKETS. */
	uint64_t b3[] = { 1 };
	struct sc_hist far = { .count = 1, .scale = 2, .offset = 4 + 4 * SC_MAX_BUCKETS, .nbuckets = 1, .buckets = b3 };
	assert_int_equal(sc_hist_merge(&a, &far), 0);
	assert_true(a.nbuckets <= SC_MAX_BUCKETS);
	assert_int_equal(a.count, 8);
	sc_hist_free(&a);
	sc_hist_free(&b);
}

static void test_hist_merge_negative_indexes_floor(void **st)
{
	(void)st;
	/* Scale 1 buckets -3..-1 at scale 0 are floor(i/2): -2, -1, -1. */
	uint64_t b1[] = { 1, 2, 4 }, b2[] = { 8 };
	struct sc_hist a = { 0 };
	struct sc_hist s1 = { .count = 7, .scale = 1, .offset = -3, .nbuckets = 3, .buckets = b1 };
	struct sc_hist s0 = { .count = 8, .scale = 0, .offset = -1, .nbuckets = 1, .buckets = b2 };
	assert_int_equal(sc_hist_merge(&a, &s1), 0);
	assert_int_equal(sc_hist_merge(&a, &s0), 0);
	assert_int_equal(a.scale, 0);
	assert_int_equal(a.offset, -2);
	assert_int_equal(a.nbuckets, 2);
	assert_int_equal(a.buckets[0], 1);
	assert_int_equal(a.buckets[1], 2 + 4 + 8);
	sc_hist_free(&a);
}

static void test_kind_mismatch_and_bad_names_are_dropped(void **st)
{
	(void)st;
	struct sc_store *s = sc_store_new(10);
	Jobq__Agent__Hello h = hello("a", 1);
	int slot = sc_store_hello(s, &h);
	Jobq__Agent__SeriesKey k = mkkey("acme", "");
	Jobq__Agent__Gauge g = JOBQ__AGENT__GAUGE__INIT, g2 = JOBQ__AGENT__GAUGE__INIT, *gp[2] = { &g, &g2 };
	g.name = "jobs.enqueued"; /* a counter name sent as a gauge */
	g.key = &k;
	g2.name = "9bad name";
	g2.key = &k;
	Jobq__Agent__MetricSnapshot m = JOBQ__AGENT__METRIC_SNAPSHOT__INIT;
	m.gauges = gp;
	m.n_gauges = 2;
	struct sc_stats stats = { 0 };
	s->st = &stats;
	assert_int_equal(sc_store_apply(s, slot, &m), 0);
	/* A wrong kind or a bad name is malformed input, not a limit. */
	assert_int_equal(s->dropped_points_invalid, 2);
	assert_int_equal(s->dropped_points_metric_limit, 0);
	assert_int_equal(atomic_load(&stats.dropped[SC_SIGNAL_METRICS][SC_DROP_INVALID]), 2);
	assert_non_null(strstr(s->last_drop, "9bad name"));
	assert_int_equal(s->nmetrics, 0);
	sc_store_free(s);
}

static void test_store_drops_reach_the_self_metrics_by_reason(void **st)
{
	(void)st;
	struct sc_store *s = sc_store_new(10);
	struct sc_stats stats = { 0 };
	s->st = &stats;
	Jobq__Agent__Hello h = hello("ag-x", 1);
	int slot = sc_store_hello(s, &h);
	Jobq__Agent__SeriesKey k = mkkey("acme", "");
	/* SC_MAX_METRICS + 3 distinct counter names: 3 over the limit. */
	char names[SC_MAX_METRICS + 3][32];
	Jobq__Agent__Counter c[SC_MAX_METRICS + 3], *cp[SC_MAX_METRICS + 3];
	for (int i = 0; i < SC_MAX_METRICS + 3; i++) {
		snprintf(names[i], sizeof(names[i]), "custom.c%d", i);
		jobq__agent__counter__init(&c[i]);
		c[i].name = names[i];
		c[i].key = &k;
		c[i].value = 1;
		cp[i] = &c[i];
	}
	/* And a histogram breaking count == zero_count + sum(buckets). */
	uint64_t b[] = { 2, 3 };
	Jobq__Agent__ExpHistogram w = JOBQ__AGENT__EXP_HISTOGRAM__INIT, *wp = &w;
	w.name = "jobs.wait_time";
	w.key = &k;
	w.zero_count = 1;
	w.bucket_counts = b;
	w.n_bucket_counts = 2;
	w.count = 7;
	Jobq__Agent__MetricSnapshot m = JOBQ__AGENT__METRIC_SNAPSHOT__INIT;
	m.counters = cp;
	m.n_counters = SC_MAX_METRICS + 3;
	assert_int_equal(sc_store_apply(s, slot, &m), 0);
	assert_int_equal(s->dropped_points_metric_limit, 3);
	assert_int_equal(atomic_load(&stats.dropped[SC_SIGNAL_METRICS][SC_DROP_METRIC_LIMIT]), 3);
	assert_non_null(strstr(s->last_drop, "agent ag-x: custom.c34: more than 32 metric names"));
	assert_string_equal(sc_drop_reason_names[SC_DROP_METRIC_LIMIT], "metric_limit");

	m.n_counters = 0;
	m.histograms = &wp;
	m.n_histograms = 1;
	assert_int_equal(sc_store_apply(s, slot, &m), 0); /* the histogram is metric 33: limit */
	assert_int_equal(s->dropped_points_metric_limit, 4);
	sc_store_free(s);

	s = sc_store_new(10);
	s->st = &stats;
	slot = sc_store_hello(s, &h);
	assert_int_equal(sc_store_apply(s, slot, &m), 0);
	assert_int_equal(s->dropped_points_invalid, 1);
	assert_int_equal(atomic_load(&stats.dropped[SC_SIGNAL_METRICS][SC_DROP_INVALID]), 1);
	assert_non_null(strstr(s->last_drop, "jobs.wait_time: count 7 != zero_count + sum(bucket_counts) = 6"));
	sc_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_values_and_times),
		cmocka_unit_test(test_same_agent_reconnect_keeps_series_restart_does_not),
		cmocka_unit_test(test_reconnect_before_the_old_connection_closes_keeps_the_agent),
		cmocka_unit_test(test_cardinality_limit_folds_into_overflow),
		cmocka_unit_test(test_invalid_utf8_key_is_repaired),
		cmocka_unit_test(test_histogram_count_identity_enforced),
		cmocka_unit_test(test_hist_merge_downscales),
		cmocka_unit_test(test_hist_merge_negative_indexes_floor),
		cmocka_unit_test(test_kind_mismatch_and_bad_names_are_dropped),
		cmocka_unit_test(test_store_drops_reach_the_self_metrics_by_reason),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
