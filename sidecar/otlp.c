/* otlp.c - OTLP request builder (see otlp.h). */
#include "sidecar/otlp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/utf8.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__Sum Sum;
typedef Opentelemetry__Proto__Metrics__V1__Gauge Gauge;
typedef Opentelemetry__Proto__Metrics__V1__Histogram Histogram;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogram ExpHistogram;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDP;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistDP;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ExpDP;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets Buckets;

#define TEMP_DELTA OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
#define TEMP_CUMULATIVE OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE

const double sc_explicit_bounds[SC_N_EXPLICIT_BOUNDS] = {
	0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000,
};

/* Allocate and run protobuf-c's initializer on arena memory. */
#define NEW(a, T, init) ({ T *p_ = sc_arena_alloc((a), sizeof(T)); \
	if (p_) { T t_ = init; *p_ = t_; } p_; })
#define NEWV(a, T, n) ((T *)sc_arena_alloc((a), sizeof(T) * ((n) ? (n) : 1)))

static char *str_utf8(struct sc_arena *a, const char *s)
{
	size_t n = strlen(s);
	if (sc_utf8_valid(s, n))
		return sc_arena_strndup(a, s, n);
	char *out = sc_arena_alloc(a, SC_UTF8_REPAIR_MAX(n) + 1);
	if (out)
		out[sc_utf8_repair(s, n, out)] = '\0';
	return out;
}

/* A KeyValue and its AnyValue in one allocation. */
struct kv_pair {
	KV kv;
	AnyValue v;
};

static KV *kv_new_raw(struct sc_arena *a, char *key)
{
	struct kv_pair *p = sc_arena_alloc(a, sizeof(*p));
	if (!p || !key)
		return NULL;
	KV kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	AnyValue v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	p->kv = kv;
	p->v = v;
	p->kv.key = key;
	p->kv.value = &p->v;
	return &p->kv;
}

static KV *kv_new(struct sc_arena *a, const char *k)
{
	return kv_new_raw(a, str_utf8(a, k));
}

KV *sc_kv_str(struct sc_arena *a, const char *k, const char *val)
{
	KV *kv = kv_new(a, k);
	if (!kv || !(kv->value->string_value = str_utf8(a, val)))
		return NULL;
	kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	return kv;
}

KV *sc_kv_int(struct sc_arena *a, const char *k, int64_t val)
{
	KV *kv = kv_new(a, k);
	if (!kv)
		return NULL;
	kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	kv->value->int_value = val;
	return kv;
}

KV *sc_kv_bool(struct sc_arena *a, const char *k, bool val)
{
	KV *kv = kv_new(a, k);
	if (!kv)
		return NULL;
	kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
	kv->value->bool_value = val;
	return kv;
}

KV *sc_kv_double(struct sc_arena *a, const char *k, double val)
{
	KV *kv = kv_new(a, k);
	if (!kv)
		return NULL;
	kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
	kv->value->double_value = val;
	return kv;
}

/* A growable KV list in the arena with a fixed maximum. */
struct kvs {
	KV **v;
	size_t n, max;
	bool failed;
};

static void kvs_init(struct sc_arena *a, struct kvs *l, size_t max)
{
	l->v = NEWV(a, KV *, max);
	l->n = 0;
	l->max = max;
	l->failed = !l->v;
}

static bool kvs_has(const struct kvs *l, const char *k)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i]->key, k))
			return true;
	return false;
}

static void kvs_add(struct kvs *l, KV *kv)
{
	if (!kv || l->failed)
		l->failed = true;
	else if (l->n < l->max && !kvs_has(l, kv->key))
		l->v[l->n++] = kv;
}

/* service.name, then OTEL_RESOURCE_ATTRIBUTES, then detected attributes
 * that the user did not set. */
Resource *sc_otlp_resource(struct sc_arena *a, const struct sc_identity *id,
			   const struct sc_agent *ag)
{
	const struct sc_config *c = id->cfg;
	Resource *r = NEW(a, Resource, OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT);
	struct kvs l;
	if (!r)
		return NULL;
	kvs_init(a, &l, (size_t)c->nresource + 12);
	kvs_add(&l, sc_kv_str(a, "service.name", c->service_name));
	for (int i = 0; i < c->nresource; i++)
		kvs_add(&l, sc_kv_str(a, c->resource_keys[i], c->resource_values[i]));
	if (ag) {
		kvs_add(&l, sc_kv_str(a, "host.name", ag->host_name[0] ? ag->host_name : id->host_name));
		kvs_add(&l, sc_kv_str(a, "service.instance.id", ag->agent_id));
		kvs_add(&l, sc_kv_str(a, "jobq.agent.id", ag->agent_id));
		/* Semantic conventions: the producing process, when known
		 * (jobq.agent.pid stays for existing queries). */
		if (ag->pid)
			kvs_add(&l, sc_kv_int(a, "process.pid", ag->pid));
		kvs_add(&l, sc_kv_int(a, "jobq.agent.pid", ag->pid));
		kvs_add(&l, sc_kv_str(a, "jobq.agent.target", ag->target));
		kvs_add(&l, sc_kv_str(a, "jobq.agent.version", ag->version));
	} else {
		kvs_add(&l, sc_kv_str(a, "host.name", id->host_name));
		kvs_add(&l, sc_kv_int(a, "process.pid", id->pid));
		kvs_add(&l, sc_kv_str(a, "process.executable.name", "jobq-sidecar"));
		kvs_add(&l, sc_kv_str(a, "jobq.sidecar.version", SC_VERSION));
	}
	if (l.failed)
		return NULL;
	r->attributes = l.v;
	r->n_attributes = l.n;
	return r;
}

Scope *sc_otlp_scope(struct sc_arena *a)
{
	Scope *s = NEW(a, Scope, OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT);
	if (s) {
		s->name = SC_SCOPE_NAME;
		s->version = SC_VERSION;
	}
	return s;
}

void sc_explicit_from_exp(const struct sc_hist *h, uint64_t out[SC_N_EXPLICIT_BOUNDS + 1])
{
	memset(out, 0, sizeof(uint64_t) * (SC_N_EXPLICIT_BOUNDS + 1));
	int b = 0;
	while (b < SC_N_EXPLICIT_BOUNDS && h->zero_threshold > sc_explicit_bounds[b])
		b++;
	out[b] += h->zero_count;
	for (uint32_t i = 0; i < h->nbuckets; i++) {
		if (!h->buckets[i])
			continue;
		/* Upper bound of bucket (offset+i) is 2^((index+1) / 2^scale). */
		double ub = exp2(ldexp((double)(h->offset + (int32_t)i + 1), -h->scale));
		b = 0;
		while (b < SC_N_EXPLICIT_BOUNDS && ub > sc_explicit_bounds[b])
			b++;
		out[b] += h->buckets[i];
	}
}

static KV **series_attrs(struct sc_arena *a, const struct sc_series *se, size_t *n)
{
	struct kvs l;
	kvs_init(a, &l, SC_ATTR_COUNT);
	if (se->overflow) {
		kvs_add(&l, sc_kv_bool(a, "otel.metric.overflow", true));
	} else {
		/* Store strings are valid UTF-8 already and outlive the request:
		 * point at them instead of copying (the hot path of an export). */
		for (int i = 0; i < SC_ATTR_COUNT; i++) {
			if (!se->attr[i][0])
				continue;
			KV *kv = kv_new_raw(a, (char *)sc_attr_names[i]);
			if (kv) {
				kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
				kv->value->string_value = (char *)se->attr[i];
			}
			kvs_add(&l, kv);
		}
	}
	*n = l.n;
	return l.failed ? NULL : l.v;
}

/* cur - prev into out (arena), both at the same scale. 1 if cur is a
 * continuation of prev, 0 if not (a reset), -1 out of memory. */
static int hist_subtract(struct sc_arena *a, const struct sc_hist *cur, const struct sc_hist *prev,
			 struct sc_hist *out)
{
	*out = *cur;
	out->count = cur->count - prev->count;
	out->zero_count = cur->zero_count - prev->zero_count;
	out->sum = cur->sum - prev->sum;
	out->buckets = cur->nbuckets ? NEWV(a, uint64_t, cur->nbuckets) : NULL;
	if (cur->nbuckets && !out->buckets)
		return -1;
	for (uint32_t i = 0; i < cur->nbuckets; i++)
		out->buckets[i] = cur->buckets[i];
	for (uint32_t j = 0; j < prev->nbuckets; j++) {
		int32_t idx = prev->offset + (int32_t)j - cur->offset;
		if (!prev->buckets[j])
			continue;
		if (idx < 0 || idx >= (int32_t)cur->nbuckets || out->buckets[idx] < prev->buckets[j])
			return 0;
		out->buckets[idx] -= prev->buckets[j];
	}
	/* min/max of the interval are unknown: leave them out. */
	out->min = NAN;
	out->max = NAN;
	return 1;
}

/* Delta of a cumulative histogram against the previous export. A series
 * whose range grew may have been downscaled since (the store keeps at most
 * SC_MAX_BUCKETS buckets): both sides are brought to the lower scale first,
 * which is exact (bucket i of scale s lies inside bucket floor(i/2) of
 * scale s-1). Returns 1, or 0 if cur is not a continuation of prev (the
 * caller reports the cumulative value as a fresh start), or -1 on ENOMEM. */
static int hist_delta(struct sc_arena *a, const struct sc_hist *cur, const struct sc_hist *prev,
		      struct sc_hist *out)
{
	if (cur->count < prev->count || cur->zero_count < prev->zero_count)
		return 0;
	if (cur->scale == prev->scale)
		return hist_subtract(a, cur, prev, out);
	struct sc_hist c2 = { 0 }, p2 = { 0 };
	int rc = -1;
	if (!sc_hist_copy(&c2, cur) && !sc_hist_copy(&p2, prev)) {
		int32_t scale = c2.scale < p2.scale ? c2.scale : p2.scale;
		sc_hist_downscale(&c2, c2.scale - scale);
		sc_hist_downscale(&p2, p2.scale - scale);
		rc = hist_subtract(a, &c2, &p2, out); /* copies the buckets into the arena */
	}
	sc_hist_free(&c2);
	sc_hist_free(&p2);
	return rc;
}

struct mb {
	struct sc_arena *a;
	const struct sc_store *s;
	const struct sc_identity *id;
	uint64_t now;
	size_t npoints;
	bool delta;
};

/* Delta temporality after a restart of this sidecar: a series that started
 * before it did was (in part) exported by its predecessor, so its first
 * observation here is only the baseline of the next delta and is not
 * exported itself -- as the collector's cumulativetodelta does. */
static bool baseline_only(const struct mb *b, const struct sc_series *se)
{
	return !se->exported && b->id->start_ns && se->start_ns < b->id->start_ns;
}

/* Data points in a Metric built here. */
static size_t metric_points(const Metric *mt)
{
	switch (mt->data_case) {
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: return mt->sum->n_data_points;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: return mt->gauge->n_data_points;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: return mt->histogram->n_data_points;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
		return mt->exponential_histogram->n_data_points;
	default: return 0;
	}
}

static Metric *metric_new(struct mb *b, const struct sc_metric *m)
{
	Metric *mt = NEW(b->a, Metric, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT);
	if (mt) {
		mt->name = (char *)m->name;
		mt->unit = (char *)m->unit;
		mt->description = (char *)m->description;
	}
	return mt;
}

static NumberDP *ndp_new(struct mb *b, struct sc_series *se)
{
	NumberDP *p = NEW(b->a, NumberDP, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT);
	if (!p || !(p->attributes = series_attrs(b->a, se, &p->n_attributes)))
		return NULL;
	p->time_unix_nano = se->time_ns;
	p->start_time_unix_nano = se->start_ns;
	return p;
}

static void set_double(NumberDP *p, double v)
{
	p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
	p->as_double = v;
}

static void set_int(NumberDP *p, uint64_t v)
{
	p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
	p->as_int = v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Number of series (with the overflow one) of one (agent, metric). */
static size_t count_series(const struct sc_agent *ag, int m)
{
	return ag->nseries[m] + (ag->overflow[m] != NULL);
}

/* Overflow series last, after the agent's own series. */
static struct sc_series *first_series(const struct sc_agent *ag, int m)
{
	return ag->series[m] ? ag->series[m] : ag->overflow[m];
}

static struct sc_series *next_series(const struct sc_agent *ag, int m, const struct sc_series *se)
{
	if (se == ag->overflow[m])
		return NULL;
	return se->mnext ? se->mnext : ag->overflow[m];
}

/* Series of (ag, m) from `start`, at most `budget` of them (k counts). */
#define FOR_SERIES(ag, m, se, start, k, budget) \
	for (se = (start); se && (k) < (budget); se = next_series(ag, m, se))

/* One Metric with the points of (ag, mi) from *from (NULL: the first), at
 * most `budget`; *from becomes the first series left out, or NULL. */
static Metric *build_metric(struct mb *b, struct sc_agent *ag, int mi, struct sc_series **from,
			    size_t budget)
{
	const struct sc_metric *m = &b->s->metrics[mi];
	size_t n = count_series(ag, mi), k = 0;
	struct sc_series *se, *start = *from ? *from : first_series(ag, mi);
	if (n > budget)
		n = budget;
	Metric *mt = metric_new(b, m);
	if (!mt)
		return NULL;

	if (m->kind == SC_KIND_COUNTER || (m->kind == SC_KIND_GAUGE && m->as_sum)) {
		Sum *sum = NEW(b->a, Sum, OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT);
		NumberDP **dps = NEWV(b->a, NumberDP *, n);
		if (!sum || !dps)
			return NULL;
		bool delta = b->delta && m->kind == SC_KIND_COUNTER;
		sum->is_monotonic = m->kind == SC_KIND_COUNTER;
		sum->aggregation_temporality = delta ? TEMP_DELTA : TEMP_CUMULATIVE;
		FOR_SERIES(ag, mi, se, start, k, budget) {
			if (delta && baseline_only(b, se)) {
				if (!se->prev && !(se->prev = calloc(1, sizeof(*se->prev))))
					return NULL;
				se->prev->counter = se->cur.counter;
				se->exported = true;
				se->last_export_ns = se->time_ns;
				continue;
			}
			NumberDP *p = ndp_new(b, se);
			if (!p)
				return NULL;
			if (m->kind == SC_KIND_GAUGE) {
				set_double(p, se->cur.gauge);
			} else if (delta) {
				if (!se->prev && !(se->prev = calloc(1, sizeof(*se->prev))))
					return NULL;
				if (se->exported && se->cur.counter >= se->prev->counter) {
					set_int(p, se->cur.counter - se->prev->counter);
					p->start_time_unix_nano = se->last_export_ns;
				} else {
					set_int(p, se->cur.counter);
				}
				se->prev->counter = se->cur.counter;
				se->exported = true;
				se->last_export_ns = se->time_ns;
			} else {
				set_int(p, se->cur.counter);
			}
			dps[k++] = p;
		}
		sum->data_points = dps;
		sum->n_data_points = k;
		mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
		mt->sum = sum;
	} else if (m->kind == SC_KIND_GAUGE) {
		Gauge *g = NEW(b->a, Gauge, OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT);
		NumberDP **dps = NEWV(b->a, NumberDP *, n);
		if (!g || !dps)
			return NULL;
		FOR_SERIES(ag, mi, se, start, k, budget) {
			NumberDP *p = ndp_new(b, se);
			if (!p)
				return NULL;
			p->start_time_unix_nano = 0; /* a gauge has no start */
			set_double(p, se->cur.gauge);
			dps[k++] = p;
		}
		g->data_points = dps;
		g->n_data_points = k;
		mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
		mt->gauge = g;
	} else {
		bool explicit = b->id->cfg->histogram == SC_HIST_EXPLICIT;
		void **dps = NEWV(b->a, void *, n);
		if (!dps)
			return NULL;
		FOR_SERIES(ag, mi, se, start, k, budget) {
			if (!se->cur.hist)
				continue; /* creation failed half-way (ENOMEM): nothing to show */
			struct sc_hist h = *se->cur.hist, d;
			uint64_t start = se->start_ns;
			if (b->delta) {
				if (!se->prev && !(se->prev = calloc(1, sizeof(*se->prev))))
					return NULL;
				bool baseline = baseline_only(b, se);
				int rc = se->exported ? hist_delta(b->a, se->cur.hist, &se->prev->hist, &d) : 0;
				if (rc < 0)
					return NULL;
				if (rc) {
					h = d;
					start = se->last_export_ns;
				}
				if (sc_hist_copy(&se->prev->hist, se->cur.hist))
					return NULL;
				se->exported = true;
				se->last_export_ns = se->time_ns;
				if (baseline)
					continue;
			}
			size_t nattr;
			KV **attrs = series_attrs(b->a, se, &nattr);
			if (!attrs)
				return NULL;
			if (explicit) {
				HistDP *p = NEW(b->a, HistDP, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT);
				uint64_t *bc = NEWV(b->a, uint64_t, SC_N_EXPLICIT_BOUNDS + 1);
				if (!p || !bc)
					return NULL;
				sc_explicit_from_exp(&h, bc);
				p->attributes = attrs;
				p->n_attributes = nattr;
				p->start_time_unix_nano = start;
				p->time_unix_nano = se->time_ns;
				p->count = h.count;
				p->sum__case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM__SUM;
				p->sum = h.sum;
				if (h.count && !isnan(h.min)) {
					p->min__case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN__MIN;
					p->min = h.min;
					p->max__case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MAX__MAX;
					p->max = h.max;
				}
				p->bucket_counts = bc;
				p->n_bucket_counts = SC_N_EXPLICIT_BOUNDS + 1;
				p->explicit_bounds = (double *)sc_explicit_bounds;
				p->n_explicit_bounds = SC_N_EXPLICIT_BOUNDS;
				dps[k++] = p;
			} else {
				ExpDP *p = NEW(b->a, ExpDP, OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT);
				Buckets *pos = NEW(b->a, Buckets, OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT);
				if (!p || !pos)
					return NULL;
				p->attributes = attrs;
				p->n_attributes = nattr;
				p->start_time_unix_nano = start;
				p->time_unix_nano = se->time_ns;
				p->count = h.count;
				p->sum__case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM__SUM;
				p->sum = h.sum;
				if (h.count && !isnan(h.min)) {
					p->min__case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__MIN__MIN;
					p->min = h.min;
					p->max__case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__MAX__MAX;
					p->max = h.max;
				}
				p->scale = h.scale;
				p->zero_count = h.zero_count;
				p->zero_threshold = h.zero_threshold;
				pos->offset = h.offset;
				pos->bucket_counts = h.buckets;
				pos->n_bucket_counts = h.nbuckets;
				p->positive = pos;
				dps[k++] = p;
			}
		}
		if (explicit) {
			Histogram *hg = NEW(b->a, Histogram, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT);
			if (!hg)
				return NULL;
			hg->aggregation_temporality = b->delta ? TEMP_DELTA : TEMP_CUMULATIVE;
			hg->data_points = (HistDP **)dps;
			hg->n_data_points = k;
			mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
			mt->histogram = hg;
		} else {
			ExpHistogram *eh = NEW(b->a, ExpHistogram, OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM__INIT);
			if (!eh)
				return NULL;
			eh->aggregation_temporality = b->delta ? TEMP_DELTA : TEMP_CUMULATIVE;
			eh->data_points = (ExpDP **)dps;
			eh->n_data_points = k;
			mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
			mt->exponential_histogram = eh;
		}
	}
	*from = se;
	b->npoints += k;
	return mt;
}

/* A cumulative monotonic Sum with one point per (label value) -- used for
 * the self-metrics and the agents' loss counters. */
static Metric *simple_sum(struct mb *b, const char *name, const char *unit, const char *desc, const char *label,
			  const char *const *values, const uint64_t *counts, size_t n,
			  const char *label2, const char *value2, uint64_t start, bool monotonic)
{
	Metric *mt = NEW(b->a, Metric, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT);
	Sum *sum = NEW(b->a, Sum, OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT);
	NumberDP **dps = NEWV(b->a, NumberDP *, n);
	if (!mt || !sum || !dps)
		return NULL;
	mt->name = (char *)name;
	mt->unit = (char *)unit;
	mt->description = (char *)desc;
	for (size_t i = 0; i < n; i++) {
		NumberDP *p = NEW(b->a, NumberDP, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT);
		struct kvs l;
		if (!p)
			return NULL;
		kvs_init(b->a, &l, 2);
		if (label2)
			kvs_add(&l, sc_kv_str(b->a, label2, value2));
		if (label)
			kvs_add(&l, sc_kv_str(b->a, label, values[i]));
		if (l.failed)
			return NULL;
		p->attributes = l.v;
		p->n_attributes = l.n;
		p->start_time_unix_nano = start;
		p->time_unix_nano = b->now;
		set_int(p, counts[i]);
		dps[i] = p;
	}
	sum->data_points = dps;
	sum->n_data_points = n;
	sum->is_monotonic = monotonic;
	sum->aggregation_temporality = TEMP_CUMULATIVE;
	mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
	mt->sum = sum;
	b->npoints += n;
	return mt;
}

static ResourceMetrics *rm_new(struct mb *b, const struct sc_agent *ag, size_t nmetrics,
			       Metric ***out)
{
	ResourceMetrics *rm = NEW(b->a, ResourceMetrics, OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT);
	ScopeMetrics *sm = NEW(b->a, ScopeMetrics, OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT);
	ScopeMetrics **sms = NEWV(b->a, ScopeMetrics *, 1);
	Metric **ms = NEWV(b->a, Metric *, nmetrics);
	if (!rm || !sm || !sms || !ms || !(rm->resource = sc_otlp_resource(b->a, b->id, ag)) ||
	    !(sm->scope = sc_otlp_scope(b->a)))
		return NULL;
	sms[0] = sm;
	rm->scope_metrics = sms;
	rm->n_scope_metrics = 1;
	sm->metrics = ms;
	*out = ms;
	return rm;
}

static ResourceMetrics *self_metrics(struct mb *b, const struct sc_stats *st)
{
	Metric **ms;
	ResourceMetrics *rm = rm_new(b, NULL, 5 * SC_SIGNAL_COUNT, &ms);
	if (!rm)
		return NULL;
	ScopeMetrics *sm = rm->scope_metrics[0];
	size_t k = 0;
	for (int sig = 0; sig < SC_SIGNAL_COUNT; sig++) {
		const char *sn = sc_signal_names[sig];
		uint64_t exp = atomic_load(&st->exported[sig]);
		uint64_t ret = atomic_load(&st->retries[sig]);
		uint64_t qb = atomic_load(&st->queue_bytes[sig]);
		uint64_t ql = atomic_load(&st->queue_limit[sig]);
		uint64_t drops[SC_DROP_COUNT];
		for (int r = 0; r < SC_DROP_COUNT; r++)
			drops[r] = atomic_load(&st->dropped[sig][r]);
		if (!(ms[k++] = simple_sum(b, sig ? "jobq.sidecar.exported.spans" : "jobq.sidecar.exported.points",
					   "1", "Items the collector accepted", NULL, NULL, &exp, 1, "signal", sn,
					   st->start_ns, true)) ||
		    !(ms[k++] = simple_sum(b, sig ? "jobq.sidecar.dropped.spans" : "jobq.sidecar.dropped.points",
					   "1", "Items given up, by reason", "reason", sc_drop_reason_names, drops,
					   SC_DROP_COUNT, "signal", sn, st->start_ns, true)) ||
		    !(ms[k++] = simple_sum(b, "jobq.sidecar.retries", "1", "Export attempts retried", NULL, NULL,
					   &ret, 1, "signal", sn, st->start_ns, true)) ||
		    !(ms[k++] = simple_sum(b, "jobq.sidecar.queue.bytes", "By", "Encoded requests waiting to be sent",
					   NULL, NULL, &qb, 1, "signal", sn, st->start_ns, false)) ||
		    !(ms[k++] = simple_sum(b, "jobq.sidecar.queue.limit", "By",
					   "Configured bound of the request queue (--queue-bytes)", NULL, NULL, &ql, 1,
					   "signal", sn, st->start_ns, false)))
			return NULL;
	}
	/* Self-metric names repeat per signal: merge the points of equal names
	 * into one Metric each, as OTLP expects one stream per name. */
	size_t out = 0;
	for (size_t i = 0; i < k; i++) {
		size_t j;
		for (j = 0; j < out; j++)
			if (!strcmp(ms[j]->name, ms[i]->name))
				break;
		if (j == out) {
			ms[out++] = ms[i];
			continue;
		}
		Sum *a = ms[j]->sum, *c = ms[i]->sum;
		NumberDP **dps = NEWV(b->a, NumberDP *, a->n_data_points + c->n_data_points);
		if (!dps)
			return NULL;
		memcpy(dps, a->data_points, a->n_data_points * sizeof(*dps));
		memcpy(dps + a->n_data_points, c->data_points, c->n_data_points * sizeof(*dps));
		a->data_points = dps;
		a->n_data_points += c->n_data_points;
	}
	sm->n_metrics = out;
	return rm;
}

sc_metrics_req *sc_otlp_build_metrics(struct sc_arena *a, struct sc_store *s,
				      const struct sc_identity *id, const struct sc_stats *st,
				      uint64_t now_ns, size_t max_points, struct sc_metrics_cursor *cur,
				      size_t *npoints)
{
	struct mb b = { a, s, id, now_ns, 0, id->cfg->temporality != SC_TEMPORALITY_CUMULATIVE };
	sc_metrics_req *req = NEW(a, sc_metrics_req,
				  OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT);
	ResourceMetrics **rms = NEWV(a, ResourceMetrics *, SC_MAX_AGENTS + 1);
	if (!req || !rms)
		return NULL;
	if (!max_points)
		max_points = SIZE_MAX;
	size_t nrm = 0;
	bool full = false;
	for (; cur->agent < SC_MAX_AGENTS && !full; cur->agent++, cur->metric = 0, cur->next = NULL) {
		struct sc_agent *ag = &s->agents[cur->agent];
		if (!ag->used)
			continue;
		Metric **ms = NULL;
		ResourceMetrics *rm = NULL;
		size_t k = 0;
		for (; cur->metric < s->nmetrics; cur->metric++, cur->next = NULL) {
			if (!count_series(ag, cur->metric))
				continue;
			if (b.npoints >= max_points) {
				full = true; /* resume at (agent, metric, next) */
				break;
			}
			if (!rm && !(rm = rm_new(&b, ag, (size_t)s->nmetrics + 2, &ms)))
				return NULL;
			Metric *mt = build_metric(&b, ag, cur->metric, &cur->next, max_points - b.npoints);
			if (!mt)
				return NULL;
			if (metric_points(mt)) /* all its series may be delta baselines */
				ms[k++] = mt;
			if (cur->next) {
				full = true; /* this metric continues in the next request */
				break;
			}
		}
		if (!full) {
			/* The agent is complete: its loss counters go with its last part. */
			if (!rm && (ag->nloss || ag->spans_dropped_by_agent) &&
			    !(rm = rm_new(&b, ag, (size_t)s->nmetrics + 2, &ms)))
				return NULL;
			if (ag->nloss &&
			    !(ms[k++] = simple_sum(&b, "jobq.agent.lost", "1", "Events the kernel side could not record",
						   "reason", (const char *const *)ag->loss_reason, ag->loss_count,
						   (size_t)ag->nloss, NULL, NULL, ag->start_ns, true)))
				return NULL;
			if (ag->spans_dropped_by_agent &&
			    !(ms[k++] = simple_sum(&b, "jobq.agent.spans.dropped", "1", "Spans the agent could not build or send",
						   NULL, NULL, &ag->spans_dropped_by_agent, 1, NULL, NULL,
						   ag->start_ns, true)))
				return NULL;
		}
		if (rm && k) {
			rm->scope_metrics[0]->n_metrics = k;
			rms[nrm++] = rm;
		}
		if (full)
			break; /* keep cur->agent: the loop increment must not run */
	}
	if (!full) {
		cur->done = true;
		if (st) {
			if (!(rms[nrm] = self_metrics(&b, st)))
				return NULL;
			nrm++;
		}
	}
	req->resource_metrics = rms;
	req->n_resource_metrics = nrm;
	*npoints = b.npoints;
	return req;
}
