/*
 * store.h - per-series cumulative state fed by agent snapshots.
 *
 * A series is (agent, metric name, attributes). Agents are identified by
 * (Hello.agent_id, Hello.agent_start_unix_ns): a reconnect of the same agent
 * finds its series again, a restarted agent (new start time) gets new ones,
 * and a disconnected agent's series are exported one last time and freed.
 *
 * Bounds: at most SC_MAX_AGENTS agents and SC_MAX_METRICS metric names;
 * per (agent, metric) at most `cardinality_limit` attribute sets, past which
 * values fold into one series with only otel.metric.overflow=true (so do
 * the kernel's own overflow keys). Folding is recomputed from each complete
 * snapshot, so the overflow series stays cumulative without remembering
 * the folded series. Strings are repaired to valid UTF-8 on the way in.
 *
 * Not thread-safe: one thread (the sidecar's event loop) owns a store.
 */
#ifndef SC_STORE_H
#define SC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/jobq_agent.pb-c.h"
#include "sidecar/stats.h"

#define SC_MAX_AGENTS 64
#define SC_MAX_METRICS 32
#define SC_MAX_BUCKETS 320 /* per histogram; wider ones are downscaled */

enum sc_kind { SC_KIND_COUNTER, SC_KIND_GAUGE, SC_KIND_HISTOGRAM };

enum sc_attr { SC_ATTR_TENANT, SC_ATTR_TYPE, SC_ATTR_PRIORITY, SC_ATTR_STATUS, SC_ATTR_QUEUE,
	       SC_ATTR_COUNT };
extern const char *const sc_attr_names[SC_ATTR_COUNT]; /* "tenant.id", ... */

struct sc_hist {
	uint64_t count, zero_count;
	double sum, min, max, zero_threshold;
	int32_t scale, offset;
	uint32_t nbuckets;
	uint64_t *buckets; /* malloc'd, nbuckets long */
};

/* Current value: 8 bytes, so counters and gauges pay nothing for the
 * (rarer, larger) histograms, which live in their own allocation. */
union sc_value {
	uint64_t counter;
	double gauge;
	struct sc_hist *hist; /* histogram series only; never NULL once applied */
};

/* Last exported value, for delta temporality. */
union sc_prev {
	uint64_t counter;
	struct sc_hist hist;
};

struct sc_series {
	struct sc_series *hnext; /* hash chain */
	struct sc_series *mnext; /* list of one (agent, metric) */
	uint64_t hash;
	const char *attr[SC_ATTR_COUNT]; /* "" when absent; all in one allocation */
	bool overflow;
	uint8_t repaired; /* bit i: attr[i] was repaired; its raw bytes follow its NUL */
	uint64_t start_ns, time_ns;
	union sc_value cur;
	/* Delta temporality: what was exported last and when (allocated on
	 * the first delta export, so cumulative export pays nothing). */
	bool exported;
	uint64_t last_export_ns;
	union sc_prev *prev;
};

struct sc_metric {
	char name[64];
	enum sc_kind kind;
	const char *unit, *description;
	bool monotonic; /* counters; false for an UpDownCounter gauge */
	bool as_sum;    /* gauge exported as a non-monotonic Sum (jobs.queue_depth) */
};

struct sc_agent {
	bool used;
	/* Connections that sent this agent's Hello and are still open: a
	 * reconnecting agent may say Hello on its new connection before the
	 * old one's EOF is read, so a flag would free a live agent. */
	int nconn;
	char *agent_id, *host_name, *target, *version;
	uint32_t pid;
	uint64_t start_ns;
	struct sc_series *series[SC_MAX_METRICS];
	size_t nseries[SC_MAX_METRICS]; /* without the overflow series */
	struct sc_series *overflow[SC_MAX_METRICS];
	/* Kernel-side losses, cumulative, by reason (bounded list). */
	char *loss_reason[16];
	uint64_t loss_count[16];
	int nloss;
	uint64_t spans_dropped_by_agent;
};

struct sc_store {
	struct sc_agent agents[SC_MAX_AGENTS];
	struct sc_metric metrics[SC_MAX_METRICS];
	int nmetrics;
	size_t cardinality_limit;
	struct sc_series **table;
	size_t table_size, nseries_total;
	/* Points the store refused. Each is also counted in st (when set) as
	 * a metrics drop with reason invalid or metric_limit, so it reaches the
	 * self-metrics and /metrics; last_drop says why the latest one went
	 * (for a rate-limited log line). */
	uint64_t dropped_points_metric_limit;
	uint64_t dropped_points_invalid;
	char last_drop[256];
	struct sc_stats *st;
	uint64_t folded_points; /* values routed into an overflow series */
};

struct sc_store *sc_store_new(size_t cardinality_limit);
void sc_store_free(struct sc_store *s);

/* Registers (or finds again) the agent of a Hello; returns its slot, or -1
 * if SC_MAX_AGENTS agents are already known. */
int sc_store_hello(struct sc_store *s, const Jobq__Agent__Hello *h);
/* One connection of this agent closed (one call per successful Hello). */
void sc_store_disconnected(struct sc_store *s, int slot);
/* Applies one complete snapshot; returns 0 or -1 on out of memory. */
int sc_store_apply(struct sc_store *s, int slot, const Jobq__Agent__MetricSnapshot *m);
/* The same, one element at a time (the server decodes a big snapshot
 * element by element): begin, then each element with the snapshot's time.
 * Items the store refuses are counted, not errors; -1 is out of memory. */
void sc_store_snapshot_begin(struct sc_store *s, int slot);
int sc_store_apply_counter(struct sc_store *s, int slot, const Jobq__Agent__Counter *c, uint64_t now);
int sc_store_apply_gauge(struct sc_store *s, int slot, const Jobq__Agent__Gauge *g, uint64_t now);
int sc_store_apply_histogram(struct sc_store *s, int slot, const Jobq__Agent__ExpHistogram *w,
			     uint64_t now);
int sc_store_apply_loss(struct sc_store *s, int slot, const Jobq__Agent__Loss *l);
void sc_store_span_losses(struct sc_store *s, int slot, uint64_t cumulative_dropped);
/* Called after each export: frees agents without an open connection (their
 * last values went out in that export). */
void sc_store_after_export(struct sc_store *s);

/* Find a metric index by name, -1 if unknown. */
int sc_store_metric(const struct sc_store *s, const char *name);

/* Exported for tests: merge src into dst (downscaling as needed). */
int sc_hist_merge(struct sc_hist *dst, const struct sc_hist *src);
void sc_hist_free(struct sc_hist *h);
int sc_hist_copy(struct sc_hist *dst, const struct sc_hist *src);
/* Lowers h's scale by `by` (>= 0) steps, in place: bucket i becomes bucket
 * floor(i / 2^by). h must hold at most 2 * SC_MAX_BUCKETS buckets. */
void sc_hist_downscale(struct sc_hist *h, int by);

#endif
