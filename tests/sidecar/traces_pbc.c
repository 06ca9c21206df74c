/*
 * traces_pbc.c - the traces request as jobq-sidecar built it before
 * sidecar/span_wire.c: each SpanBatch decoded by protobuf-c, each span
 * converted into a tree of protobuf-c OTLP structs, packed by protobuf-c.
 * Kept (moved here unchanged in what it produces) as the reference that
 * tests/sidecar/test_spans.c compares the direct encoder with, byte for
 * byte, and that bench/sidecar_bench.c measures it against.
 */
#include "tests/sidecar/traces_pbc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/utf8.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event Event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link Link;
typedef Opentelemetry__Proto__Trace__V1__Status Status;

/* As in sidecar/otlp.c. */
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

static KV *kv_from_agent(struct sc_arena *a, const Jobq__Agent__KeyValue *in)
{
	/* Semantic conventions: messaging.message.id is a string. */
	if (in->value_case == JOBQ__AGENT__KEY_VALUE__VALUE_INT_VALUE && in->key &&
	    !strcmp(in->key, "messaging.message.id")) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%lld", (long long)in->int_value);
		return sc_kv_str(a, in->key, buf);
	}
	switch (in->value_case) {
	case JOBQ__AGENT__KEY_VALUE__VALUE_STRING_VALUE:
		return sc_kv_str(a, in->key, in->string_value ? in->string_value : "");
	case JOBQ__AGENT__KEY_VALUE__VALUE_INT_VALUE:
		return sc_kv_int(a, in->key, in->int_value);
	case JOBQ__AGENT__KEY_VALUE__VALUE_DOUBLE_VALUE:
		return sc_kv_double(a, in->key, in->double_value);
	case JOBQ__AGENT__KEY_VALUE__VALUE_BOOL_VALUE:
		return sc_kv_bool(a, in->key, in->bool_value);
	default:
		return sc_kv_str(a, in->key, "");
	}
}

static const Jobq__Agent__KeyValue *find_attr(const Jobq__Agent__Span *sp, const char *k)
{
	for (size_t i = 0; i < sp->n_attributes; i++)
		if (sp->attributes[i]->key && !strcmp(sp->attributes[i]->key, k))
			return sp->attributes[i];
	return NULL;
}

static bool id_ok(ProtobufCBinaryData d, size_t len)
{
	if (d.len != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (d.data[i])
			return true;
	return false; /* all-zero ids are invalid in W3C / OTLP */
}

/* Converts one agent span, adding the messaging semantic conventions. */
static Span *span_from_agent(struct sc_arena *a, const Jobq__Agent__Span *in)
{
	if (!id_ok(in->trace_id, 16) || !id_ok(in->span_id, 8) ||
	    (in->parent_span_id.len && !id_ok(in->parent_span_id, 8)))
		return (Span *)-1;
	Span *sp = NEW(a, Span, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT);
	Status *st = NEW(a, Status, OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT);
	if (!sp || !st)
		return NULL;
	sp->trace_id = in->trace_id;
	sp->span_id = in->span_id;
	sp->parent_span_id = in->parent_span_id;
	sp->flags = in->flags;
	sp->name = str_utf8(a, in->name && *in->name ? in->name : "job");
	sp->kind = (int)in->kind >= 0 && in->kind <= 5 ? (Opentelemetry__Proto__Trace__V1__Span__SpanKind)in->kind : 0;
	sp->start_time_unix_nano = in->start_unix_ns;
	sp->end_time_unix_nano = in->end_unix_ns;

	struct kvs l;
	kvs_init(a, &l, in->n_attributes + 5);
	for (size_t i = 0; i < in->n_attributes; i++)
		kvs_add(&l, kv_from_agent(a, in->attributes[i]));
	kvs_add(&l, sc_kv_str(a, "messaging.system", "jobq"));
	if (in->kind == JOBQ__AGENT__SPAN_KIND__SPAN_KIND_PRODUCER)
		kvs_add(&l, sc_kv_str(a, "messaging.operation.type", "create"));
	else if (in->kind == JOBQ__AGENT__SPAN_KIND__SPAN_KIND_CONSUMER)
		kvs_add(&l, sc_kv_str(a, "messaging.operation.type", "process"));
	const Jobq__Agent__KeyValue *q = find_attr(in, "job.queue");
	if (q && q->value_case == JOBQ__AGENT__KEY_VALUE__VALUE_STRING_VALUE)
		kvs_add(&l, sc_kv_str(a, "messaging.destination.name", q->string_value));
	const Jobq__Agent__KeyValue *jid = find_attr(in, "job.id");
	if (jid && jid->value_case == JOBQ__AGENT__KEY_VALUE__VALUE_INT_VALUE) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%lld", (long long)jid->int_value);
		kvs_add(&l, sc_kv_str(a, "messaging.message.id", buf));
	} else if (jid && jid->value_case == JOBQ__AGENT__KEY_VALUE__VALUE_STRING_VALUE) {
		kvs_add(&l, sc_kv_str(a, "messaging.message.id", jid->string_value));
	}
	if (l.failed || !sp->name)
		return NULL;
	sp->attributes = l.v;
	sp->n_attributes = l.n;

	if (in->n_events) {
		Event **ev = NEWV(a, Event *, in->n_events);
		if (!ev)
			return NULL;
		for (size_t i = 0; i < in->n_events; i++) {
			const Jobq__Agent__SpanEvent *ie = in->events[i];
			Event *e = NEW(a, Event, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT);
			if (!e || !(e->name = str_utf8(a, ie->name ? ie->name : "")))
				return NULL;
			e->time_unix_nano = ie->time_unix_nano;
			struct kvs el;
			kvs_init(a, &el, ie->n_attributes);
			for (size_t j = 0; j < ie->n_attributes; j++)
				kvs_add(&el, kv_from_agent(a, ie->attributes[j]));
			if (el.failed)
				return NULL;
			e->attributes = el.v;
			e->n_attributes = el.n;
			ev[i] = e;
		}
		sp->events = ev;
		sp->n_events = in->n_events;
	}
	if (in->n_links) {
		Link **lk = NEWV(a, Link *, in->n_links);
		size_t k = 0;
		if (!lk)
			return NULL;
		for (size_t i = 0; i < in->n_links; i++) {
			const Jobq__Agent__SpanLink *il = in->links[i];
			if (!id_ok(il->trace_id, 16) || !id_ok(il->span_id, 8)) {
				sp->dropped_links_count++;
				continue;
			}
			Link *li = NEW(a, Link, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT);
			if (!li)
				return NULL;
			li->trace_id = il->trace_id;
			li->span_id = il->span_id;
			li->flags = il->flags;
			lk[k++] = li;
		}
		sp->links = lk;
		sp->n_links = k;
	}
	if (in->status_error) {
		st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
		if (!(st->message = str_utf8(a, in->status_message ? in->status_message : "")))
			return NULL;
	}
	sp->status = st;
	return sp;
}

static ResourceSpans *rs_new(struct sc_arena *a, const struct sc_identity *id,
			     const struct sc_agent *ag, Span **spans, size_t n)
{
	ResourceSpans *rs = NEW(a, ResourceSpans, OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT);
	ScopeSpans *ss = NEW(a, ScopeSpans, OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT);
	ScopeSpans **sss = NEWV(a, ScopeSpans *, 1);
	if (!rs || !ss || !sss || !(rs->resource = sc_otlp_resource(a, id, ag)) || !(ss->scope = sc_otlp_scope(a)))
		return NULL;
	ss->spans = spans;
	ss->n_spans = n;
	sss[0] = ss;
	rs->scope_spans = sss;
	rs->n_scope_spans = 1;
	return rs;
}

sc_traces_req *sc_traces_pbc(struct sc_arena *a, const struct sc_pbc_batch *bs, size_t nb,
			     const struct sc_store *s, const struct sc_identity *id,
			     sc_otlp_span *const *extra, size_t nextra, size_t *nspans, size_t *ninvalid)
{
	size_t total = 0;
	for (size_t i = 0; i < nb; i++)
		total += bs[i].batch->n_spans;
	sc_traces_req *req = NEW(a, sc_traces_req,
				 OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT);
	ResourceSpans **rss = NEWV(a, ResourceSpans *, SC_MAX_AGENTS + 1);
	Span **all = NEWV(a, Span *, total);
	size_t per_agent[SC_MAX_AGENTS] = { 0 };
	if (!req || !rss || !all)
		return NULL;
	*nspans = *ninvalid = 0;

	/* Convert in arrival order, then group by agent with a counting sort. */
	int *slot_of = NEWV(a, int, total);
	size_t n = 0;
	if (!slot_of)
		return NULL;
	for (size_t bi = 0; bi < nb; bi++) {
		const Jobq__Agent__SpanBatch *batch = bs[bi].batch;
		for (size_t i = 0; i < batch->n_spans; i++) {
			Span *sp = span_from_agent(a, batch->spans[i]);
			if (sp == (Span *)-1) {
				(*ninvalid)++;
				continue;
			}
			if (!sp)
				return NULL;
			slot_of[n] = bs[bi].slot;
			all[n++] = sp;
			per_agent[bs[bi].slot]++;
		}
	}
	size_t nrs = 0;
	for (int slot = 0; slot < SC_MAX_AGENTS; slot++) {
		if (!per_agent[slot])
			continue;
		Span **mine = NEWV(a, Span *, per_agent[slot]);
		size_t k = 0;
		if (!mine)
			return NULL;
		for (size_t i = 0; i < n; i++)
			if (slot_of[i] == slot)
				mine[k++] = all[i];
		const struct sc_agent *ag = s->agents[slot].used ? &s->agents[slot] : NULL;
		if (!(rss[nrs++] = rs_new(a, id, ag, mine, k)))
			return NULL;
	}
	if (nextra) {
		if (!(rss[nrs++] = rs_new(a, id, NULL, (Span **)extra, nextra)))
			return NULL;
	}
	req->resource_spans = rss;
	req->n_resource_spans = nrs;
	*nspans = n + nextra;
	return req;
}
