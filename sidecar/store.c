/* store.c - per-series cumulative state (see store.h). */
#include "sidecar/store.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/utf8.h"

const char *const sc_attr_names[SC_ATTR_COUNT] = {
	"tenant.id", "job.type", "job.priority", "job.status", "messaging.destination.name",
};

/* The seed's instruments; other names are accepted with a unit by kind. */
static const struct sc_metric known[] = {
	{ "jobs.enqueued", SC_KIND_COUNTER, "1", "Number of jobs enqueued", true, false },
	{ "jobs.started", SC_KIND_COUNTER, "1", "Number of jobs started", true, false },
	{ "jobs.processed", SC_KIND_COUNTER, "1", "Number of jobs processed", true, false },
	{ "jobs.reaped", SC_KIND_COUNTER, "1", "Number of expired leases returned to the queue", true, false },
	{ "jobs.retried", SC_KIND_COUNTER, "1", "Number of failed jobs scheduled again", true, false },
	{ "jobs.dead_lettered", SC_KIND_COUNTER, "1", "Number of jobs moved to the dead-letter list", true, false },
	{ "jobs.released", SC_KIND_COUNTER, "1", "Number of jobs given back unfinished at shutdown", true, false },
	{ "jobs.queue_depth", SC_KIND_GAUGE, "1", "Current number of jobs in queue per tenant", false, true },
	{ "jobs.oldest_job_age", SC_KIND_GAUGE, "ms", "Age of the oldest waiting job per tenant", false, false },
	{ "jobs.in_flight", SC_KIND_GAUGE, "1", "Jobs being processed", false, false },
	{ "jobs.delayed", SC_KIND_GAUGE, "1", "Jobs waiting for a retry", false, false },
	{ "jobs.duration", SC_KIND_HISTOGRAM, "ms", "Time to process a job", false, false },
	{ "jobs.wait_time", SC_KIND_HISTOGRAM, "ms", "Time a job spent waiting in the queue", false, false },
};

struct sc_store *sc_store_new(size_t cardinality_limit)
{
	struct sc_store *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cardinality_limit = cardinality_limit ? cardinality_limit : 2000;
	s->table_size = 1024;
	s->table = calloc(s->table_size, sizeof(*s->table));
	if (!s->table) {
		free(s);
		return NULL;
	}
	return s;
}

void sc_hist_free(struct sc_hist *h)
{
	free(h->buckets);
	h->buckets = NULL;
	h->nbuckets = 0;
}

static void series_free(struct sc_series *se, enum sc_kind kind)
{
	if (kind == SC_KIND_HISTOGRAM) {
		if (se->cur.hist)
			sc_hist_free(se->cur.hist);
		free(se->cur.hist);
		if (se->prev)
			sc_hist_free(&se->prev->hist);
	}
	free(se->prev);
	free(se);
}

static void unlink_hash(struct sc_store *s, struct sc_series *se)
{
	struct sc_series **pp = &s->table[se->hash & (s->table_size - 1)];
	while (*pp && *pp != se)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = se->hnext;
	s->nseries_total--;
}

static void agent_clear(struct sc_store *s, struct sc_agent *a)
{
	for (int m = 0; m < SC_MAX_METRICS; m++) {
		struct sc_series *se = a->series[m];
		while (se) {
			struct sc_series *next = se->mnext;
			unlink_hash(s, se);
			series_free(se, s->metrics[m].kind);
			se = next;
		}
		if (a->overflow[m])
			series_free(a->overflow[m], s->metrics[m].kind);
	}
	free(a->agent_id);
	free(a->host_name);
	free(a->target);
	free(a->version);
	for (int i = 0; i < a->nloss; i++)
		free(a->loss_reason[i]);
	memset(a, 0, sizeof(*a));
}

void sc_store_free(struct sc_store *s)
{
	if (!s)
		return;
	for (int i = 0; i < SC_MAX_AGENTS; i++)
		if (s->agents[i].used)
			agent_clear(s, &s->agents[i]);
	free(s->table);
	free(s);
}

/* malloc'd valid-UTF-8 copy of s (NULL is ""). */
static char *dup_utf8(const char *s)
{
	if (!s)
		s = "";
	size_t n = strlen(s);
	char *out = malloc(SC_UTF8_REPAIR_MAX(n) + 1);
	if (!out)
		return NULL;
	out[sc_utf8_repair(s, n, out)] = '\0';
	return out;
}

int sc_store_hello(struct sc_store *s, const Jobq__Agent__Hello *h)
{
	int free_slot = -1;
	for (int i = 0; i < SC_MAX_AGENTS; i++) {
		struct sc_agent *a = &s->agents[i];
		if (!a->used) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (a->start_ns == h->agent_start_unix_ns && !strcmp(a->agent_id, h->agent_id ? h->agent_id : "")) {
			/* Same agent process reconnecting: keep its series. Compare on
			 * the raw id; ours is the repaired copy, equal for valid text. */
			a->nconn++;
			return i;
		}
	}
	if (free_slot < 0)
		return -1;
	struct sc_agent *a = &s->agents[free_slot];
	a->agent_id = dup_utf8(h->agent_id);
	a->host_name = dup_utf8(h->host_name);
	a->target = dup_utf8(h->target);
	a->version = dup_utf8(h->agent_version);
	if (!a->agent_id || !a->host_name || !a->target || !a->version) {
		agent_clear(s, a);
		return -1;
	}
	a->used = true;
	a->nconn = 1;
	a->pid = h->agent_pid;
	a->start_ns = h->agent_start_unix_ns;
	return free_slot;
}

void sc_store_disconnected(struct sc_store *s, int slot)
{
	if (slot >= 0 && slot < SC_MAX_AGENTS && s->agents[slot].used && s->agents[slot].nconn > 0)
		s->agents[slot].nconn--;
}

void sc_store_after_export(struct sc_store *s)
{
	for (int i = 0; i < SC_MAX_AGENTS; i++) {
		struct sc_agent *a = &s->agents[i];
		if (a->used && a->nconn == 0)
			agent_clear(s, a); /* its last values went out in this export */
	}
}

int sc_store_metric(const struct sc_store *s, const char *name)
{
	for (int i = 0; i < s->nmetrics; i++)
		if (!strcmp(s->metrics[i].name, name))
			return i;
	return -1;
}

/* OTel instrument name syntax: a letter, then [A-Za-z0-9_.-/], <= 63 here. */
static bool valid_name(const char *n)
{
	if (!n || !isalpha((unsigned char)n[0]) || strlen(n) >= sizeof(((struct sc_metric *)0)->name))
		return false;
	for (const char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_.-/", *p))
			return false;
	return true;
}

static const char *const kind_names[] = { "counter", "gauge", "histogram" };

/* Counts one refused agent point under `reason` and remembers why. */
static void drop_point(struct sc_store *s, int slot, enum sc_drop_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void drop_point(struct sc_store *s, int slot, enum sc_drop_reason reason, const char *fmt, ...)
{
	if (reason == SC_DROP_METRIC_LIMIT)
		s->dropped_points_metric_limit++;
	else
		s->dropped_points_invalid++;
	if (s->st)
		atomic_fetch_add(&s->st->dropped[SC_SIGNAL_METRICS][reason], 1);
	int n = snprintf(s->last_drop, sizeof(s->last_drop), "agent %s: ",
			 s->agents[slot].agent_id ? s->agents[slot].agent_id : "?");
	if (n < 0 || (size_t)n >= sizeof(s->last_drop))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->last_drop + n, sizeof(s->last_drop) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* The metric's index, or -1 after counting the point as dropped: a bad
 * name or a kind that contradicts the name (invalid), or one name more
 * than SC_MAX_METRICS (metric_limit). */
static int metric_index(struct sc_store *s, int slot, const char *name, enum sc_kind kind)
{
	if (!valid_name(name)) {
		drop_point(s, slot, SC_DROP_INVALID, "metric name \"%.64s\" is not a valid instrument name",
			   name ? name : "");
		return -1;
	}
	int i = sc_store_metric(s, name);
	if (i >= 0) {
		if (s->metrics[i].kind == kind)
			return i;
		drop_point(s, slot, SC_DROP_INVALID, "%s sent as a %s, known as a %s", name, kind_names[kind],
			   kind_names[s->metrics[i].kind]);
		return -1;
	}
	if (s->nmetrics >= SC_MAX_METRICS) {
		drop_point(s, slot, SC_DROP_METRIC_LIMIT, "%s: more than %d metric names", name, SC_MAX_METRICS);
		return -1;
	}
	struct sc_metric *m = &s->metrics[s->nmetrics];
	bool found = false;
	for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
		if (!strcmp(known[k].name, name)) {
			if (known[k].kind != kind) {
				drop_point(s, slot, SC_DROP_INVALID, "%s sent as a %s, known as a %s", name,
					   kind_names[kind], kind_names[known[k].kind]);
				return -1;
			}
			*m = known[k];
			found = true;
		}
	}
	if (!found) {
		snprintf(m->name, sizeof(m->name), "%s", name);
		m->kind = kind;
		m->unit = kind == SC_KIND_HISTOGRAM ? "ms" : "1";
		m->description = "";
		m->monotonic = kind == SC_KIND_COUNTER;
		m->as_sum = false;
	}
	return s->nmetrics++;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ULL;
	return h;
}

static void key_strings(const Jobq__Agent__SeriesKey *k, const char *v[SC_ATTR_COUNT])
{
	v[SC_ATTR_TENANT] = k && k->tenant ? k->tenant : "";
	v[SC_ATTR_TYPE] = k && k->job_type ? k->job_type : "";
	v[SC_ATTR_PRIORITY] = k && k->priority ? k->priority : "";
	v[SC_ATTR_STATUS] = k && k->status ? k->status : "";
	v[SC_ATTR_QUEUE] = k && k->queue ? k->queue : "";
}

static uint64_t key_hash(int slot, int metric, const char *v[SC_ATTR_COUNT])
{
	uint64_t h = 1469598103934665603ULL;
	h = fnv(h, &slot, sizeof(slot));
	h = fnv(h, &metric, sizeof(metric));
	for (int i = 0; i < SC_ATTR_COUNT; i++)
		h = fnv(h, v[i], strlen(v[i]) + 1);
	return h;
}

/* Series are looked up by the raw (unrepaired) key bytes: the hash and the
 * comparison use what the agent sent; the stored copy is the repaired one,
 * and a repaired string keeps the raw bytes right after its NUL. */
struct series_alloc {
	struct sc_series se;
	char text[];
};

static const char *raw_attr(const struct sc_series *se, int i)
{
	return se->repaired & (1u << i) ? se->attr[i] + strlen(se->attr[i]) + 1 : se->attr[i];
}

static struct sc_series *series_find(struct sc_store *s, uint64_t h, const char *v[SC_ATTR_COUNT])
{
	for (struct sc_series *se = s->table[h & (s->table_size - 1)]; se; se = se->hnext) {
		if (se->hash != h)
			continue;
		int i;
		for (i = 0; i < SC_ATTR_COUNT; i++)
			if (strcmp(raw_attr(se, i), v[i]))
				break;
		if (i == SC_ATTR_COUNT)
			return se;
	}
	return NULL;
}

static int grow_table(struct sc_store *s)
{
	size_t n = s->table_size * 2;
	struct sc_series **t = calloc(n, sizeof(*t));
	if (!t)
		return -1;
	for (size_t i = 0; i < s->table_size; i++) {
		struct sc_series *se = s->table[i];
		while (se) {
			struct sc_series *next = se->hnext;
			se->hnext = t[se->hash & (n - 1)];
			t[se->hash & (n - 1)] = se;
			se = next;
		}
	}
	free(s->table);
	s->table = t;
	s->table_size = n;
	return 0;
}

static struct sc_series *series_new(const char *v[SC_ATTR_COUNT])
{
	/* Valid text (the normal case) is stored once; only a repaired string
	 * also keeps its raw bytes for lookups. */
	size_t total = 0;
	for (int i = 0; i < SC_ATTR_COUNT; i++) {
		size_t n = strlen(v[i]);
		total += sc_utf8_valid(v[i], n) ? n + 1 : SC_UTF8_REPAIR_MAX(n) + 1 + n + 1;
	}
	struct series_alloc *sa = calloc(1, sizeof(*sa) + total);
	if (!sa)
		return NULL;
	char *p = sa->text;
	for (int i = 0; i < SC_ATTR_COUNT; i++) {
		size_t n = strlen(v[i]);
		sa->se.attr[i] = p;
		if (sc_utf8_valid(v[i], n)) {
			memcpy(p, v[i], n + 1);
			p += n + 1;
			continue;
		}
		p += sc_utf8_repair(v[i], n, p);
		*p++ = '\0';
		sa->se.repaired |= (uint8_t)(1u << i);
		memcpy(p, v[i], n + 1);
		p += n + 1;
	}
	return &sa->se;
}

static struct sc_series *overflow_series(struct sc_agent *a, int m)
{
	if (!a->overflow[m]) {
		static const char *empty[SC_ATTR_COUNT] = { "", "", "", "", "" };
		struct sc_series *se = series_new(empty);
		if (!se)
			return NULL;
		se->overflow = true;
		a->overflow[m] = se;
	}
	return a->overflow[m];
}

/* The series for this key, created if the limit allows; else the
 * (agent, metric) overflow series, *folded set. NULL on ENOMEM. */
static struct sc_series *series_get(struct sc_store *s, int slot, int m,
				    const Jobq__Agent__SeriesKey *k, bool *folded)
{
	struct sc_agent *a = &s->agents[slot];
	const char *v[SC_ATTR_COUNT];

	*folded = false;
	if (k && k->overflow) {
		*folded = true;
		return overflow_series(a, m);
	}
	key_strings(k, v);
	uint64_t h = key_hash(slot, m, v);
	struct sc_series *se = series_find(s, h, v);
	if (se)
		return se;
	if (a->nseries[m] >= s->cardinality_limit) {
		*folded = true;
		return overflow_series(a, m);
	}
	if (s->nseries_total + 1 > s->table_size && grow_table(s))
		return NULL;
	se = series_new(v);
	if (!se)
		return NULL;
	se->hash = h;
	se->hnext = s->table[h & (s->table_size - 1)];
	s->table[h & (s->table_size - 1)] = se;
	se->mnext = a->series[m];
	a->series[m] = se;
	a->nseries[m]++;
	s->nseries_total++;
	return se;
}

int sc_hist_copy(struct sc_hist *dst, const struct sc_hist *src)
{
	uint64_t *b = NULL;
	if (src->nbuckets) {
		b = malloc(src->nbuckets * sizeof(*b));
		if (!b)
			return -1;
		memcpy(b, src->buckets, src->nbuckets * sizeof(*b));
	}
	free(dst->buckets);
	*dst = *src;
	dst->buckets = b;
	return 0;
}

/* floor(v / 2^by), also for negative indexes (>> on them is
 * implementation-defined in C). */
static int32_t shr_floor(int32_t v, int by)
{
	return v >= 0 ? v >> by : -(int32_t)(((uint32_t)(-(v + 1))) >> by) - 1;
}

/* Downscale by `by` steps: bucket i becomes bucket floor(i / 2^by). */
void sc_hist_downscale(struct sc_hist *h, int by)
{
	if (by <= 0)
		return;
	h->scale -= by;
	if (!h->nbuckets) {
		h->offset = shr_floor(h->offset, by);
		return;
	}
	int32_t lo = shr_floor(h->offset, by);
	int32_t hi = shr_floor(h->offset + (int32_t)h->nbuckets - 1, by);
	uint32_t n = (uint32_t)(hi - lo + 1);
	uint64_t *b = h->buckets; /* shrinks in place: new index <= old index */
	uint64_t tmp[SC_MAX_BUCKETS * 2];
	uint32_t old = h->nbuckets;
	memcpy(tmp, b, (old < SC_MAX_BUCKETS * 2 ? old : SC_MAX_BUCKETS * 2) * sizeof(*b));
	memset(b, 0, n * sizeof(*b));
	for (uint32_t i = 0; i < old && i < SC_MAX_BUCKETS * 2; i++)
		b[shr_floor(h->offset + (int32_t)i, by) - lo] += tmp[i];
	h->offset = lo;
	h->nbuckets = n;
}

int sc_hist_merge(struct sc_hist *dst, const struct sc_hist *src)
{
	if (dst->count == 0 && dst->nbuckets == 0 && dst->zero_count == 0)
		return sc_hist_copy(dst, src);
	struct sc_hist s2 = { 0 };
	if (sc_hist_copy(&s2, src))
		return -1;
	int scale = dst->scale < s2.scale ? dst->scale : s2.scale;
	sc_hist_downscale(dst, dst->scale - scale);
	sc_hist_downscale(&s2, s2.scale - scale);
	/* Keep the union of both ranges within SC_MAX_BUCKETS. */
	for (;;) {
		int32_t lo = dst->offset, hi = dst->offset + (int32_t)dst->nbuckets - 1;
		if (!dst->nbuckets) {
			lo = s2.offset;
			hi = s2.offset + (int32_t)s2.nbuckets - 1;
		}
		if (s2.nbuckets) {
			if (s2.offset < lo)
				lo = s2.offset;
			if (s2.offset + (int32_t)s2.nbuckets - 1 > hi)
				hi = s2.offset + (int32_t)s2.nbuckets - 1;
		}
		if (hi - lo + 1 <= SC_MAX_BUCKETS || (!dst->nbuckets && !s2.nbuckets)) {
			uint32_t n = dst->nbuckets || s2.nbuckets ? (uint32_t)(hi - lo + 1) : 0;
			uint64_t *b = n ? calloc(n, sizeof(*b)) : NULL;
			if (n && !b) {
				sc_hist_free(&s2);
				return -1;
			}
			for (uint32_t i = 0; i < dst->nbuckets; i++)
				b[dst->offset + (int32_t)i - lo] += dst->buckets[i];
			for (uint32_t i = 0; i < s2.nbuckets; i++)
				b[s2.offset + (int32_t)i - lo] += s2.buckets[i];
			free(dst->buckets);
			dst->buckets = b;
			dst->nbuckets = n;
			dst->offset = n ? lo : dst->offset;
			break;
		}
		sc_hist_downscale(dst, 1);
		sc_hist_downscale(&s2, 1);
	}
	if (s2.count) {
		dst->min = dst->count ? fmin(dst->min, s2.min) : s2.min;
		dst->max = dst->count ? fmax(dst->max, s2.max) : s2.max;
	}
	dst->count += s2.count;
	dst->zero_count += s2.zero_count;
	dst->sum += s2.sum;
	if (s2.zero_threshold > dst->zero_threshold)
		dst->zero_threshold = s2.zero_threshold;
	sc_hist_free(&s2);
	return 0;
}

/* A histogram from the wire, checked: the count identity must hold and the
 * bucket range must be sane, else the point is dropped as invalid. */
static int hist_from_wire(struct sc_hist *h, const Jobq__Agent__ExpHistogram *w, char *why, size_t whysz)
{
	uint64_t total = w->zero_count;
	for (size_t i = 0; i < w->n_bucket_counts; i++) {
		if (total + w->bucket_counts[i] < total) {
			snprintf(why, whysz, "bucket counts overflow 64 bits");
			return -1;
		}
		total += w->bucket_counts[i];
	}
	if (total != w->count) {
		snprintf(why, whysz, "count %llu != zero_count + sum(bucket_counts) = %llu",
			 (unsigned long long)w->count, (unsigned long long)total);
		return -1;
	}
	if (w->scale < -10 || w->scale > 20) {
		snprintf(why, whysz, "scale %d outside [-10, 20]", (int)w->scale);
		return -1;
	}
	if (w->n_bucket_counts > SC_MAX_BUCKETS * 2) {
		snprintf(why, whysz, "%zu buckets, more than %d", w->n_bucket_counts, SC_MAX_BUCKETS * 2);
		return -1;
	}
	if (!isfinite(w->sum)) {
		snprintf(why, whysz, "sum is not finite");
		return -1;
	}
	memset(h, 0, sizeof(*h));
	h->count = w->count;
	h->zero_count = w->zero_count;
	h->sum = w->sum;
	h->min = w->min;
	h->max = w->max;
	h->zero_threshold = w->zero_threshold;
	h->scale = w->scale;
	h->offset = w->offset;
	/* Trim empty buckets at both ends; they carry no information. */
	size_t lo = 0, hi = w->n_bucket_counts;
	while (lo < hi && !w->bucket_counts[lo])
		lo++;
	while (hi > lo && !w->bucket_counts[hi - 1])
		hi--;
	if (hi > lo) {
		h->buckets = malloc((hi - lo) * sizeof(uint64_t));
		if (!h->buckets)
			return -2;
		memcpy(h->buckets, w->bucket_counts + lo, (hi - lo) * sizeof(uint64_t));
		h->nbuckets = (uint32_t)(hi - lo);
		h->offset = w->offset + (int32_t)lo;
	}
	if (h->nbuckets > SC_MAX_BUCKETS) {
		int by = 0;
		while ((h->nbuckets + (1u << by) - 1) >> by > SC_MAX_BUCKETS - 1)
			by++;
		sc_hist_downscale(h, by);
	}
	return 0;
}

static void reset_overflow(struct sc_store *s, struct sc_agent *a)
{
	for (int m = 0; m < s->nmetrics; m++) {
		struct sc_series *se = a->overflow[m];
		if (!se)
			continue;
		if (s->metrics[m].kind == SC_KIND_HISTOGRAM) {
			if (se->cur.hist) {
				sc_hist_free(se->cur.hist);
				memset(se->cur.hist, 0, sizeof(*se->cur.hist));
			}
		} else {
			memset(&se->cur, 0, sizeof(se->cur));
		}
	}
}

void sc_store_snapshot_begin(struct sc_store *s, int slot)
{
	reset_overflow(s, &s->agents[slot]);
}

int sc_store_apply_counter(struct sc_store *s, int slot, const Jobq__Agent__Counter *c, uint64_t now)
{
	struct sc_agent *a = &s->agents[slot];
	bool folded;
	int m = metric_index(s, slot, c->name, SC_KIND_COUNTER);
	if (m < 0)
		return 0;
	struct sc_series *se = series_get(s, slot, m, c->key, &folded);
	if (!se)
		return -1;
	uint64_t start = c->start_unix_ns ? c->start_unix_ns : a->start_ns;
	if (folded) {
		s->folded_points++;
		se->cur.counter += c->value;
		if (!se->start_ns || start < se->start_ns)
			se->start_ns = start;
	} else {
		se->cur.counter = c->value;
		se->start_ns = start;
	}
	se->time_ns = now;
	return 0;
}

int sc_store_apply_gauge(struct sc_store *s, int slot, const Jobq__Agent__Gauge *g, uint64_t now)
{
	struct sc_agent *a = &s->agents[slot];
	bool folded;
	int m = metric_index(s, slot, g->name, SC_KIND_GAUGE);
	if (m < 0)
		return 0;
	if (!isfinite(g->value)) {
		drop_point(s, slot, SC_DROP_INVALID, "%s: gauge value %g is not finite", g->name, g->value);
		return 0;
	}
	struct sc_series *se = series_get(s, slot, m, g->key, &folded);
	if (!se)
		return -1;
	/* Folded gauges: a depth sums, an age keeps the worst. */
	if (folded && !s->metrics[m].as_sum)
		se->cur.gauge = fmax(se->cur.gauge, g->value);
	else if (folded)
		se->cur.gauge += g->value;
	else
		se->cur.gauge = g->value;
	s->folded_points += folded;
	/* A gauge-as-UpDownCounter is cumulative since the agent started. */
	se->start_ns = a->start_ns;
	se->time_ns = g->observed_unix_ns ? g->observed_unix_ns : now;
	return 0;
}

int sc_store_apply_histogram(struct sc_store *s, int slot, const Jobq__Agent__ExpHistogram *w, uint64_t now)
{
	struct sc_agent *a = &s->agents[slot];
	bool folded;
	int m = metric_index(s, slot, w->name, SC_KIND_HISTOGRAM);
	if (m < 0)
		return 0;
	struct sc_hist h;
	char why[128];
	int rc = hist_from_wire(&h, w, why, sizeof(why));
	if (rc == -2)
		return -1;
	if (rc) {
		drop_point(s, slot, SC_DROP_INVALID, "%s: %s", w->name, why);
		return 0;
	}
	struct sc_series *se = series_get(s, slot, m, w->key, &folded);
	if (!se || (!se->cur.hist && !(se->cur.hist = calloc(1, sizeof(*se->cur.hist))))) {
		sc_hist_free(&h);
		return -1;
	}
	uint64_t start = w->start_unix_ns ? w->start_unix_ns : a->start_ns;
	if (folded) {
		s->folded_points++;
		rc = sc_hist_merge(se->cur.hist, &h);
		sc_hist_free(&h);
		if (rc)
			return -1;
		if (!se->start_ns || start < se->start_ns)
			se->start_ns = start;
	} else {
		sc_hist_free(se->cur.hist);
		*se->cur.hist = h;
		se->start_ns = start;
	}
	se->time_ns = now;
	return 0;
}

int sc_store_apply_loss(struct sc_store *s, int slot, const Jobq__Agent__Loss *l)
{
	struct sc_agent *a = &s->agents[slot];
	const char *r = l->reason && *l->reason ? l->reason : "unknown";
	int j;
	for (j = 0; j < a->nloss; j++)
		if (!strcmp(a->loss_reason[j], r))
			break;
	if (j == a->nloss) {
		if (a->nloss >= 16)
			return 0; /* bounded; the first 16 reasons are kept */
		if (!(a->loss_reason[j] = dup_utf8(r)))
			return -1;
		a->nloss++;
	}
	a->loss_count[j] = l->count;
	return 0;
}

int sc_store_apply(struct sc_store *s, int slot, const Jobq__Agent__MetricSnapshot *ms)
{
	uint64_t now = ms->time_unix_nano;
	sc_store_snapshot_begin(s, slot);
	for (size_t i = 0; i < ms->n_counters; i++)
		if (sc_store_apply_counter(s, slot, ms->counters[i], now))
			return -1;
	for (size_t i = 0; i < ms->n_gauges; i++)
		if (sc_store_apply_gauge(s, slot, ms->gauges[i], now))
			return -1;
	for (size_t i = 0; i < ms->n_histograms; i++)
		if (sc_store_apply_histogram(s, slot, ms->histograms[i], now))
			return -1;
	for (size_t i = 0; i < ms->n_losses; i++)
		if (sc_store_apply_loss(s, slot, ms->losses[i]))
			return -1;
	return 0;
}

void sc_store_span_losses(struct sc_store *s, int slot, uint64_t cumulative)
{
	s->agents[slot].spans_dropped_by_agent = cumulative;
}
