/* starvation.c - queue starvation check (see starvation.h). */
#include "sidecar/starvation.h"

#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t sc_starvation_find(const struct sc_store *s, double threshold_ms, char *csv, size_t csvsz,
			  int *truncated)
{
	int m = sc_store_metric(s, SC_STARVATION_METRIC);
	size_t n = 0, cap = 0;
	*truncated = 0;
	if (csvsz)
		csv[0] = '\0';
	if (m < 0)
		return 0;
	for (int i = 0; i < SC_MAX_AGENTS; i++)
		if (s->agents[i].used)
			cap += s->agents[i].nseries[m];
	const char **t = cap ? malloc(cap * sizeof(*t)) : NULL;
	if (cap && !t)
		return 0;
	for (int i = 0; i < SC_MAX_AGENTS; i++) {
		if (!s->agents[i].used)
			continue;
		for (const struct sc_series *se = s->agents[i].series[m]; se; se = se->mnext)
			if (se->cur.gauge > threshold_ms && se->attr[SC_ATTR_TENANT][0])
				t[n++] = se->attr[SC_ATTR_TENANT];
	}
	if (n)
		qsort(t, n, sizeof(*t), cmp_str);
	size_t uniq = 0, len = 0;
	for (size_t i = 0; i < n; i++) {
		if (i && !strcmp(t[i], t[i - 1]))
			continue;
		uniq++;
		size_t l = strlen(t[i]);
		if (*truncated || len + (len ? 1 : 0) + l + 1 > csvsz) {
			*truncated = 1;
			continue;
		}
		if (len)
			csv[len++] = ',';
		memcpy(csv + len, t[i], l + 1);
		len += l;
	}
	free(t);
	return uniq;
}

sc_otlp_span *sc_starvation_span(struct sc_arena *a, const struct sc_store *s, double threshold_ms,
				 uint64_t start_ns, uint64_t end_ns, const uint8_t trace_id[16],
				 const uint8_t span_id[8])
{
	static char csv[SC_AFFECTED_TENANTS_MAX]; /* event loop only */
	int truncated;
	size_t n = sc_starvation_find(s, threshold_ms, csv, sizeof(csv), &truncated);

	sc_otlp_span *sp = sc_arena_alloc(a, sizeof(*sp));
	Opentelemetry__Proto__Trace__V1__Status *st = sc_arena_alloc(a, sizeof(*st));
	Opentelemetry__Proto__Common__V1__KeyValue **attrs = sc_arena_alloc(a, 2 * sizeof(*attrs));
	uint8_t *ids = sc_arena_alloc(a, 24);
	if (!sp || !st || !attrs || !ids)
		return NULL;
	opentelemetry__proto__trace__v1__span__init(sp);
	opentelemetry__proto__trace__v1__status__init(st);
	memcpy(ids, trace_id, 16);
	memcpy(ids + 16, span_id, 8);
	sp->trace_id.data = ids;
	sp->trace_id.len = 16;
	sp->span_id.data = ids + 16;
	sp->span_id.len = 8;
	sp->flags = 1; /* sampled */
	sp->name = "jobs.starvation_check";
	sp->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL;
	sp->start_time_unix_nano = start_ns;
	sp->end_time_unix_nano = end_ns;
	sp->status = st;
	if (!(attrs[0] = sc_kv_int(a, "jobs.starving_tenant_count", (int64_t)n)) ||
	    !(attrs[1] = sc_kv_int(a, "jobs.starvation_threshold_ms", (int64_t)threshold_ms)))
		return NULL;
	sp->attributes = attrs;
	sp->n_attributes = 2;
	if (n) {
		Opentelemetry__Proto__Trace__V1__Span__Event *ev = sc_arena_alloc(a, sizeof(*ev));
		Opentelemetry__Proto__Trace__V1__Span__Event **evs = sc_arena_alloc(a, sizeof(*evs));
		Opentelemetry__Proto__Common__V1__KeyValue **eattrs = sc_arena_alloc(a, 2 * sizeof(*eattrs));
		if (!ev || !evs || !eattrs)
			return NULL;
		opentelemetry__proto__trace__v1__span__event__init(ev);
		ev->name = "Queue starvation detected";
		ev->time_unix_nano = end_ns;
		if (!(eattrs[0] = sc_kv_str(a, "affected_tenants", csv)))
			return NULL;
		ev->n_attributes = 1;
		if (truncated) {
			if (!(eattrs[1] = sc_kv_int(a, "affected_tenants_omitted", 1)))
				return NULL;
			ev->n_attributes = 2;
		}
		ev->attributes = eattrs;
		evs[0] = ev;
		sp->events = evs;
		sp->n_events = 1;
	}
	return sp;
}
