/*
 * encode.c - snapshot and spans -> protobuf-c messages -> frames (see
 * encode.h). Messages point into the caller's data; only the arrays of
 * sub-messages are allocated here, and freed before returning.
 */
#include "agent/encode.h"

#include <stdlib.h>
#include <string.h>

#include "agent/hist.h"
#include "agent/wire.h"

int encode_hello(const struct hello_info *h, uint8_t **out, size_t *outlen)
{
	Jobq__Agent__Frame f = JOBQ__AGENT__FRAME__INIT;
	Jobq__Agent__Hello m = JOBQ__AGENT__HELLO__INIT;

	m.agent_id = (char *)h->agent_id;
	m.host_name = (char *)h->host_name;
	m.agent_pid = h->agent_pid;
	m.target = (char *)h->target;
	m.agent_start_unix_ns = h->agent_start_unix_ns;
	m.agent_version = (char *)h->agent_version;
	f.body_case = JOBQ__AGENT__FRAME__BODY_HELLO;
	f.hello = &m;
	return wire_encode(&f, out, outlen);
}

/* The series' attributes: tenant.id, job.type, messaging.destination.name
 * (the overflow series has none but otel.metric.overflow). */
static void series_key(Jobq__Agent__SeriesKey *k, const struct jobq_series *s)
{
	jobq__agent__series_key__init(k);
	k->tenant = (char *)s->tenant;
	k->job_type = (char *)s->type;
	k->queue = (char *)s->queue;
	k->overflow = s->overflow;
}

/* Gauges per depth report: depth by priority (3), oldest age, in flight,
 * delayed. */
#define GAUGES_PER_DEPTH 6

int encode_metrics(const struct snapshot *s, uint64_t start, uint8_t **out, size_t *outlen)
{
	Jobq__Agent__Frame f = JOBQ__AGENT__FRAME__INIT;
	Jobq__Agent__MetricSnapshot m = JOBQ__AGENT__METRIC_SNAPSHOT__INIT;
	size_t ng = s->ndepths * GAUGES_PER_DEPTH;
	Jobq__Agent__Counter *c = calloc(s->ncounters + 1, sizeof(*c));
	Jobq__Agent__Counter **cp = calloc(s->ncounters + 1, sizeof(*cp));
	Jobq__Agent__SeriesKey *keys = calloc(s->ncounters + s->nhists + ng + 1, sizeof(*keys));
	Jobq__Agent__Gauge *g = calloc(ng + 1, sizeof(*g));
	Jobq__Agent__Gauge **gp = calloc(ng + 1, sizeof(*gp));
	Jobq__Agent__ExpHistogram *h = calloc(s->nhists + 1, sizeof(*h));
	Jobq__Agent__ExpHistogram **hp = calloc(s->nhists + 1, sizeof(*hp));
	Jobq__Agent__Loss l[JOBQ_LOSS_COUNT], *lp[JOBQ_LOSS_COUNT];
	size_t k = 0;
	int rc = -1;

	if (!c || !cp || !keys || !g || !gp || !h || !hp)
		goto out;
	m.time_unix_nano = s->time_unix_ns;
	for (size_t i = 0; i < s->ncounters; i++) {
		const struct snap_counter *sc = &s->counters[i];

		jobq__agent__counter__init(&c[i]);
		series_key(&keys[k], &sc->key.s);
		keys[k].priority = (char *)snap_priority_name(sc->key.priority);
		keys[k].status = (char *)snap_status_name(sc->key.metric, sc->key.status);
		c[i].name = (char *)snap_metric_name(sc->key.metric);
		c[i].key = &keys[k++];
		c[i].value = sc->value;
		c[i].start_unix_ns = start;
		cp[i] = &c[i];
	}
	m.n_counters = s->ncounters;
	m.counters = cp;

	for (size_t i = 0; i < s->nhists; i++) {
		const struct jobq_hist_val *v = &s->hists[i].val;
		int lo = JOBQ_HIST_NBUCKETS, hi = -1;

		for (int b = 0; b < JOBQ_HIST_NBUCKETS; b++)
			if (v->buckets[b]) {
				lo = b < lo ? b : lo;
				hi = b;
			}
		jobq__agent__exp_histogram__init(&h[i]);
		series_key(&keys[k], &s->hists[i].key.s);
		h[i].name = (char *)snap_hist_name(s->hists[i].key.kind);
		h[i].key = &keys[k++];
		h[i].start_unix_ns = start;
		h[i].count = v->count;
		h[i].sum = (double)v->sum_ns / 1e6;
		h[i].min = (double)v->min_ns / 1e6;
		h[i].max = (double)v->max_ns / 1e6;
		h[i].scale = JOBQ_HIST_SCALE;
		h[i].zero_count = v->zero_count;
		h[i].zero_threshold = jobq_hist_lower_ms(0);
		h[i].offset = hi < 0 ? 0 : JOBQ_HIST_INDEX_MIN + lo;
		/* Points into the snapshot: __u64 and uint64_t share a size. */
		h[i].n_bucket_counts = hi < 0 ? 0 : (size_t)(hi - lo + 1);
		h[i].bucket_counts = hi < 0 ? NULL : (uint64_t *)(uintptr_t)&v->buckets[lo];
		hp[i] = &h[i];
	}
	m.n_histograms = s->nhists;
	m.histograms = hp;

	for (size_t i = 0; i < s->ndepths; i++) {
		const struct snap_depth *d = &s->depths[i];
		static const char *const names[GAUGES_PER_DEPTH] = {
			"jobs.queue_depth", "jobs.queue_depth", "jobs.queue_depth",
			"jobs.oldest_job_age", "jobs.in_flight", "jobs.delayed",
		};
		double age = d->val.oldest_enqueued_unix_ns &&
					     d->observed_unix_ns > d->val.oldest_enqueued_unix_ns
				     ? (double)(d->observed_unix_ns - d->val.oldest_enqueued_unix_ns) / 1e6
				     : 0.0;
		double vals[GAUGES_PER_DEPTH] = {
			(double)d->val.depth[0], (double)d->val.depth[1], (double)d->val.depth[2],
			age, (double)d->val.in_flight, (double)d->val.delayed,
		};

		for (int j = 0; j < GAUGES_PER_DEPTH; j++) {
			Jobq__Agent__Gauge *gg = &g[i * GAUGES_PER_DEPTH + (size_t)j];

			jobq__agent__gauge__init(gg);
			jobq__agent__series_key__init(&keys[k]);
			keys[k].tenant = (char *)d->key.tenant;
			keys[k].queue = (char *)d->key.queue;
			keys[k].overflow = d->key.overflow;
			if (j < JOBQ_PRIO_COUNT)
				keys[k].priority = (char *)snap_priority_name((unsigned int)j);
			gg->name = (char *)names[j];
			gg->key = &keys[k++];
			gg->value = vals[j];
			gg->observed_unix_ns = d->observed_unix_ns;
			gp[i * GAUGES_PER_DEPTH + (size_t)j] = gg;
		}
	}
	m.n_gauges = ng;
	m.gauges = gp;

	for (unsigned int r = 0; r < JOBQ_LOSS_COUNT; r++) {
		jobq__agent__loss__init(&l[r]);
		l[r].reason = (char *)snap_loss_name(r);
		l[r].count = s->losses[r];
		lp[r] = &l[r];
	}
	m.n_losses = JOBQ_LOSS_COUNT;
	m.losses = lp;

	f.body_case = JOBQ__AGENT__FRAME__BODY_METRICS;
	f.metrics = &m;
	rc = wire_encode(&f, out, outlen);
out:
	free(c);
	free(cp);
	free(keys);
	free(g);
	free(gp);
	free(h);
	free(hp);
	return rc;
}

/* Attributes per span at most (see fill_attrs). */
#define SPAN_ATTRS 12

static void kv_str(Jobq__Agent__KeyValue *kv, const char *key, const char *v)
{
	jobq__agent__key_value__init(kv);
	kv->key = (char *)key;
	kv->value_case = JOBQ__AGENT__KEY_VALUE__VALUE_STRING_VALUE;
	kv->string_value = (char *)v;
}

static void kv_int(Jobq__Agent__KeyValue *kv, const char *key, int64_t v)
{
	jobq__agent__key_value__init(kv);
	kv->key = (char *)key;
	kv->value_case = JOBQ__AGENT__KEY_VALUE__VALUE_INT_VALUE;
	kv->int_value = v;
}

static void kv_dbl(Jobq__Agent__KeyValue *kv, const char *key, double v)
{
	jobq__agent__key_value__init(kv);
	kv->key = (char *)key;
	kv->value_case = JOBQ__AGENT__KEY_VALUE__VALUE_DOUBLE_VALUE;
	kv->double_value = v;
}

static const char *status_name(const struct span *s)
{
	switch (s->status) {
	case JOBQ_STATUS_SUCCESS:
		return "success";
	case JOBQ_STATUS_FAILED:
		return "failed";
	default:
		return "released";
	}
}

/* Fills kv[] (and kp[] pointing at them) with the span's attributes. */
static size_t fill_attrs(const struct span *s, Jobq__Agent__KeyValue *kv,
			 Jobq__Agent__KeyValue **kp)
{
	size_t n = 0;

	kv_str(&kv[n++], "tenant.id", s->tenant);
	kv_str(&kv[n++], "job.type", s->type);
	kv_int(&kv[n++], "job.id", (int64_t)s->job_id);
	kv_str(&kv[n++], "job.priority", snap_priority_name(s->priority));
	kv_str(&kv[n++], "messaging.system", "jobq");
	kv_str(&kv[n++], "messaging.destination.name", s->queue);
	kv_int(&kv[n++], "messaging.message.id", (int64_t)s->job_id);
	if (s->kind == SPAN_ENQUEUE) {
		kv_str(&kv[n++], "messaging.operation.type", "create");
	} else {
		kv_str(&kv[n++], "messaging.operation.type", "process");
		kv_str(&kv[n++], "job.status", status_name(s));
		kv_int(&kv[n++], "job.attempt", s->attempt);
		kv_dbl(&kv[n++], "job.wait_time_ms", (double)s->wait_ns / 1e6);
	}
	for (size_t i = 0; i < n; i++)
		kp[i] = &kv[i];
	return n;
}

struct span_msgs {
	Jobq__Agent__Span span;
	Jobq__Agent__KeyValue kv[SPAN_ATTRS], *kp[SPAN_ATTRS];
	Jobq__Agent__SpanLink link, *linkp;
	Jobq__Agent__SpanEvent ev, *evp;
	Jobq__Agent__KeyValue ev_kv, *ev_kp;
};

int encode_spans_pbc(const struct span *spans, size_t n, uint64_t dropped, uint8_t **out,
		     size_t *outlen)
{
	Jobq__Agent__Frame f = JOBQ__AGENT__FRAME__INIT;
	Jobq__Agent__SpanBatch b = JOBQ__AGENT__SPAN_BATCH__INIT;
	struct span_msgs *m = calloc(n + 1, sizeof(*m));
	Jobq__Agent__Span **sp = calloc(n + 1, sizeof(*sp));
	int rc = -1;

	if (!m || !sp)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct span *s = &spans[i];
		Jobq__Agent__Span *o = &m[i].span;

		jobq__agent__span__init(o);
		o->trace_id.data = (uint8_t *)s->trace_id;
		o->trace_id.len = sizeof(s->trace_id);
		o->span_id.data = (uint8_t *)s->span_id;
		o->span_id.len = sizeof(s->span_id);
		if (s->has_parent) {
			o->parent_span_id.data = (uint8_t *)s->parent_span_id;
			o->parent_span_id.len = sizeof(s->parent_span_id);
		}
		o->start_unix_ns = s->start_unix_ns;
		o->end_unix_ns = s->end_unix_ns;
		o->flags = s->flags;
		o->n_attributes = fill_attrs(s, m[i].kv, m[i].kp);
		o->attributes = m[i].kp;
		if (s->kind == SPAN_ENQUEUE) {
			o->name = "job.enqueue";
			o->kind = JOBQ__AGENT__SPAN_KIND__SPAN_KIND_PRODUCER;
		} else {
			o->name = "job.process";
			o->kind = JOBQ__AGENT__SPAN_KIND__SPAN_KIND_CONSUMER;
			if (s->has_link) {
				jobq__agent__span_link__init(&m[i].link);
				m[i].link.trace_id.data = (uint8_t *)s->link_trace_id;
				m[i].link.trace_id.len = sizeof(s->link_trace_id);
				m[i].link.span_id.data = (uint8_t *)s->link_span_id;
				m[i].link.span_id.len = sizeof(s->link_span_id);
				m[i].link.flags = s->flags;
				m[i].linkp = &m[i].link;
				o->n_links = 1;
				o->links = &m[i].linkp;
			}
			if (s->status == JOBQ_STATUS_FAILED) {
				o->status_error = 1;
				o->status_message = (char *)(s->error[0] ? s->error : "job failed");
				jobq__agent__span_event__init(&m[i].ev);
				m[i].ev.name = "exception";
				m[i].ev.time_unix_nano = s->end_unix_ns;
				kv_str(&m[i].ev_kv, "exception.message", o->status_message);
				m[i].ev_kp = &m[i].ev_kv;
				m[i].ev.n_attributes = 1;
				m[i].ev.attributes = &m[i].ev_kp;
				m[i].evp = &m[i].ev;
				o->n_events = 1;
				o->events = &m[i].evp;
			}
		}
		sp[i] = o;
	}
	b.n_spans = n;
	b.spans = sp;
	b.dropped_spans = dropped;
	f.body_case = JOBQ__AGENT__FRAME__BODY_SPANS;
	f.spans = &b;
	rc = wire_encode(&f, out, outlen);
out:
	free(m);
	free(sp);
	return rc;
}

/*
 * encode_spans(): the same bytes as encode_spans_pbc() (tested), written
 * directly. protobuf-c walks its descriptors twice per message (size, then
 * pack) and strlen()s every string in both passes: ~40% of the agent's CPU
 * with spans. Field numbers and wire types are those of
 * proto/jobq_agent.proto (Frame, SpanBatch, Span, KeyValue, SpanEvent,
 * SpanLink); proto3 rules as protobuf-c applies them: a zero scalar, an
 * empty string or bytes field is left out, a set oneof member is written
 * even when zero, fields in field-number order.
 */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };

struct attr {
	const char *key;
	size_t klen;
	int kind; /* JOBQ__AGENT__KEY_VALUE__VALUE_*_VALUE */
	const char *s;
	size_t slen;
	int64_t i;
	double d;
};

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put_tag(uint8_t *p, unsigned int field, unsigned int wt)
{
	return put_varint(p, (uint64_t)field << 3 | wt);
}

/* A length-delimited field of len bytes: tag + length prefix + len. */
static size_t len_field(size_t len)
{
	return 1 + varint_len(len) + len; /* every field number here is < 16 */
}

static uint8_t *put_bytes(uint8_t *p, unsigned int field, const void *v, size_t len)
{
	p = put_tag(p, field, WT_LEN);
	p = put_varint(p, len);
	memcpy(p, v, len);
	return p + len;
}

static void attr_str(struct attr *a, const char *key, const char *v)
{
	*a = (struct attr){ .key = key, .klen = strlen(key),
			    .kind = JOBQ__AGENT__KEY_VALUE__VALUE_STRING_VALUE, .s = v,
			    .slen = strlen(v) };
}

static void attr_int(struct attr *a, const char *key, int64_t v)
{
	*a = (struct attr){ .key = key, .klen = strlen(key),
			    .kind = JOBQ__AGENT__KEY_VALUE__VALUE_INT_VALUE, .i = v };
}

static void attr_dbl(struct attr *a, const char *key, double v)
{
	*a = (struct attr){ .key = key, .klen = strlen(key),
			    .kind = JOBQ__AGENT__KEY_VALUE__VALUE_DOUBLE_VALUE, .d = v };
}

/* The span's attributes, in fill_attrs() order. */
static size_t span_attrs(const struct span *s, struct attr *a)
{
	size_t n = 0;

	attr_str(&a[n++], "tenant.id", s->tenant);
	attr_str(&a[n++], "job.type", s->type);
	attr_int(&a[n++], "job.id", (int64_t)s->job_id);
	attr_str(&a[n++], "job.priority", snap_priority_name(s->priority));
	attr_str(&a[n++], "messaging.system", "jobq");
	attr_str(&a[n++], "messaging.destination.name", s->queue);
	attr_int(&a[n++], "messaging.message.id", (int64_t)s->job_id);
	if (s->kind == SPAN_ENQUEUE) {
		attr_str(&a[n++], "messaging.operation.type", "create");
	} else {
		attr_str(&a[n++], "messaging.operation.type", "process");
		attr_str(&a[n++], "job.status", status_name(s));
		attr_int(&a[n++], "job.attempt", s->attempt);
		attr_dbl(&a[n++], "job.wait_time_ms", (double)s->wait_ns / 1e6);
	}
	return n;
}

/* KeyValue body size. */
static size_t kv_size(const struct attr *a)
{
	size_t n = a->klen ? len_field(a->klen) : 0;

	switch (a->kind) {
	case JOBQ__AGENT__KEY_VALUE__VALUE_STRING_VALUE:
		return n + len_field(a->slen);
	case JOBQ__AGENT__KEY_VALUE__VALUE_INT_VALUE:
		return n + 1 + varint_len((uint64_t)a->i);
	default:
		return n + 1 + 8;
	}
}

static uint8_t *put_kv(uint8_t *p, unsigned int field, const struct attr *a)
{
	uint64_t bits;

	p = put_tag(p, field, WT_LEN);
	p = put_varint(p, kv_size(a));
	if (a->klen)
		p = put_bytes(p, 1, a->key, a->klen);
	switch (a->kind) {
	case JOBQ__AGENT__KEY_VALUE__VALUE_STRING_VALUE:
		return put_bytes(p, 2, a->s, a->slen);
	case JOBQ__AGENT__KEY_VALUE__VALUE_INT_VALUE:
		p = put_tag(p, 3, WT_VARINT);
		return put_varint(p, (uint64_t)a->i);
	default:
		p = put_tag(p, 4, WT_I64);
		memcpy(&bits, &a->d, 8);
		for (int i = 0; i < 8; i++)
			*p++ = (uint8_t)(bits >> (8 * i));
		return p;
	}
}

/* What a span encodes to, computed once for both passes. */
struct span_plan {
	struct attr attrs[SPAN_ATTRS];
	size_t nattrs;
	const char *name;
	int kind;
	const char *status_message; /* NULL: not failed */
	struct attr ev_attr;
	size_t ev_size, link_size, size;
};

static void plan_span(const struct span *s, struct span_plan *pl)
{
	size_t n = 0;

	pl->nattrs = span_attrs(s, pl->attrs);
	pl->status_message = NULL;
	pl->ev_size = pl->link_size = 0;
	if (s->kind == SPAN_ENQUEUE) {
		pl->name = "job.enqueue";
		pl->kind = JOBQ__AGENT__SPAN_KIND__SPAN_KIND_PRODUCER;
	} else {
		pl->name = "job.process";
		pl->kind = JOBQ__AGENT__SPAN_KIND__SPAN_KIND_CONSUMER;
		if (s->has_link)
			pl->link_size = len_field(16) + len_field(8) +
					(s->flags ? 1 + varint_len(s->flags) : 0);
		if (s->status == JOBQ_STATUS_FAILED) {
			pl->status_message = s->error[0] ? s->error : "job failed";
			attr_str(&pl->ev_attr, "exception.message", pl->status_message);
			pl->ev_size = len_field(strlen("exception")) +
				      (s->end_unix_ns ? 1 + varint_len(s->end_unix_ns) : 0) +
				      len_field(kv_size(&pl->ev_attr));
		}
	}
	n += len_field(sizeof(s->trace_id)) + len_field(sizeof(s->span_id));
	if (s->has_parent)
		n += len_field(sizeof(s->parent_span_id));
	n += len_field(strlen(pl->name)) + 1 + varint_len((uint64_t)pl->kind);
	if (s->start_unix_ns)
		n += 1 + varint_len(s->start_unix_ns);
	if (s->end_unix_ns)
		n += 1 + varint_len(s->end_unix_ns);
	for (size_t i = 0; i < pl->nattrs; i++)
		n += len_field(kv_size(&pl->attrs[i]));
	if (pl->ev_size)
		n += len_field(pl->ev_size);
	if (pl->link_size)
		n += len_field(pl->link_size);
	if (pl->status_message)
		n += 2 + (pl->status_message[0] ? len_field(strlen(pl->status_message)) : 0);
	if (s->flags)
		n += 1 + varint_len(s->flags);
	pl->size = n;
}

static uint8_t *put_span(uint8_t *p, const struct span *s, const struct span_plan *pl)
{
	p = put_tag(p, 1, WT_LEN); /* SpanBatch.spans */
	p = put_varint(p, pl->size);
	p = put_bytes(p, 1, s->trace_id, sizeof(s->trace_id));
	p = put_bytes(p, 2, s->span_id, sizeof(s->span_id));
	if (s->has_parent)
		p = put_bytes(p, 3, s->parent_span_id, sizeof(s->parent_span_id));
	p = put_bytes(p, 4, pl->name, strlen(pl->name));
	p = put_tag(p, 5, WT_VARINT);
	p = put_varint(p, (uint64_t)pl->kind);
	if (s->start_unix_ns) {
		p = put_tag(p, 6, WT_VARINT);
		p = put_varint(p, s->start_unix_ns);
	}
	if (s->end_unix_ns) {
		p = put_tag(p, 7, WT_VARINT);
		p = put_varint(p, s->end_unix_ns);
	}
	for (size_t i = 0; i < pl->nattrs; i++)
		p = put_kv(p, 8, &pl->attrs[i]);
	if (pl->ev_size) {
		p = put_tag(p, 9, WT_LEN);
		p = put_varint(p, pl->ev_size);
		p = put_bytes(p, 1, "exception", strlen("exception"));
		if (s->end_unix_ns) {
			p = put_tag(p, 2, WT_VARINT);
			p = put_varint(p, s->end_unix_ns);
		}
		p = put_kv(p, 3, &pl->ev_attr);
	}
	if (pl->link_size) {
		p = put_tag(p, 10, WT_LEN);
		p = put_varint(p, pl->link_size);
		p = put_bytes(p, 1, s->link_trace_id, sizeof(s->link_trace_id));
		p = put_bytes(p, 2, s->link_span_id, sizeof(s->link_span_id));
		if (s->flags) {
			p = put_tag(p, 3, WT_VARINT);
			p = put_varint(p, s->flags);
		}
	}
	if (pl->status_message) {
		p = put_tag(p, 11, WT_VARINT);
		*p++ = 1;
		if (pl->status_message[0])
			p = put_bytes(p, 12, pl->status_message, strlen(pl->status_message));
	}
	if (s->flags) {
		p = put_tag(p, 13, WT_VARINT);
		p = put_varint(p, s->flags);
	}
	return p;
}

int encode_spans(const struct span *spans, size_t n, uint64_t dropped, uint8_t **out,
		 size_t *outlen)
{
	struct span_plan *pl = malloc((n ? n : 1) * sizeof(*pl));
	size_t batch = 0, frame;
	uint8_t *buf, *p;

	*out = NULL;
	*outlen = 0;
	if (!pl)
		return -1;
	for (size_t i = 0; i < n; i++) {
		plan_span(&spans[i], &pl[i]);
		batch += len_field(pl[i].size);
	}
	if (dropped)
		batch += 1 + varint_len(dropped);
	/* Frame: version (1), spans (4) -- a set oneof member, even empty. */
	frame = 1 + varint_len(JOBQ_AGENT_PROTO_VERSION) + len_field(batch);
	if (frame > JOBQ_AGENT_MAX_FRAME || !(buf = malloc(4 + frame))) {
		free(pl);
		return -1;
	}
	buf[0] = (uint8_t)(frame >> 24);
	buf[1] = (uint8_t)(frame >> 16);
	buf[2] = (uint8_t)(frame >> 8);
	buf[3] = (uint8_t)frame;
	p = put_tag(buf + 4, 1, WT_VARINT);
	p = put_varint(p, JOBQ_AGENT_PROTO_VERSION);
	p = put_tag(p, 4, WT_LEN);
	p = put_varint(p, batch);
	for (size_t i = 0; i < n; i++)
		p = put_span(p, &spans[i], &pl[i]);
	if (dropped) {
		p = put_tag(p, 2, WT_VARINT);
		p = put_varint(p, dropped);
	}
	free(pl);
	if ((size_t)(p - buf) != 4 + frame) { /* a sizing bug: never send it */
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = 4 + frame;
	return 0;
}
