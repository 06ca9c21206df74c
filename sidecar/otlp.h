/*
 * otlp.h - builds OTLP metrics requests from the store, and the resources
 * and attributes the traces request (spans.h) and the starvation check use.
 *
 * The request trees are protobuf-c structs of our own opentelemetry .proto
 * files, allocated in an arena that dies after packing. Pure apart from the
 * clock and random ids passed in, so tests decode what it produces.
 *
 * Metrics (one request per export):
 *   - one ResourceMetrics per agent (service.name, host.name, the agent's
 *     identity from its Hello, OTEL_RESOURCE_ATTRIBUTES) and one for the
 *     sidecar itself (jobq.sidecar.* self-metrics);
 *   - counters: monotonic Sum; jobs.queue_depth: non-monotonic cumulative
 *     Sum; other gauges: Gauge; histograms: ExponentialHistogram, or
 *     Histogram with SC_EXPLICIT_BOUNDS (see sc_explicit_from_exp);
 *   - delta preference: counters and histograms become deltas against the
 *     previous export of the same series, start time = that export's time;
 *     a series that started before this sidecar (id->start_ns) only sets
 *     its baseline at its first export; a histogram downscaled between two
 *     exports is subtracted at the lower scale.
 */
#ifndef SC_OTLP_H
#define SC_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "proto/jobq_agent.pb-c.h"
#include "sidecar/arena.h"
#include "sidecar/config.h"
#include "sidecar/stats.h"
#include "sidecar/store.h"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest sc_metrics_req;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest sc_traces_req;
typedef Opentelemetry__Proto__Trace__V1__Span sc_otlp_span;

#define SC_SCOPE_NAME "jobq"
#define SC_VERSION "0.1.0"

/* The seed's (and OTel's default) explicit boundaries, in ms. */
#define SC_N_EXPLICIT_BOUNDS 15
extern const double sc_explicit_bounds[SC_N_EXPLICIT_BOUNDS];

struct sc_identity {
	const struct sc_config *cfg;
	char host_name[256];
	int pid;
	/* This sidecar's start (unix ns). With delta temporality, a series that
	 * started before it is not exported at its first observation, only
	 * used as the baseline (0: no such rule). */
	uint64_t start_ns;
};

/* Explicit-bucket view of an exponential histogram: each exponential bucket
 * goes to the explicit bucket that contains its upper bound, so a value can
 * land at most one exponential bucket width above its true explicit bucket
 * (at scale 3 that is a factor 2^(1/8) = 9%). The zero bucket goes to the
 * bucket containing zero_threshold. out has SC_N_EXPLICIT_BOUNDS+1 slots. */
void sc_explicit_from_exp(const struct sc_hist *h, uint64_t out[SC_N_EXPLICIT_BOUNDS + 1]);

/* Where the next metrics request of one export starts; zero it first. */
struct sc_metrics_cursor {
	int agent, metric;
	struct sc_series *next;
	bool done; /* set by the request that completed the export */
};

/* Builds one metrics request of at most max_points data points (0: no
 * limit) from *cur on, and advances *cur; call with a fresh arena until
 * cur->done, which the last request (with the self-metrics) sets. The
 * store must not change in between. *npoints gets the request's points.
 * For delta temporality it records what was exported in the store. NULL
 * on arena exhaustion. */
sc_metrics_req *sc_otlp_build_metrics(struct sc_arena *a, struct sc_store *s,
				      const struct sc_identity *id, const struct sc_stats *st,
				      uint64_t now_ns, size_t max_points, struct sc_metrics_cursor *cur,
				      size_t *npoints);

/* The resource of an agent's data (service.name, OTEL_RESOURCE_ATTRIBUTES,
 * host.name, the agent's identity from its Hello), or of the sidecar's own
 * (ag NULL), and the instrumentation scope (SC_SCOPE_NAME, SC_VERSION).
 * Also used by the traces request (spans.c). NULL on arena exhaustion. */
Opentelemetry__Proto__Resource__V1__Resource *sc_otlp_resource(struct sc_arena *a, const struct sc_identity *id,
							       const struct sc_agent *ag);
Opentelemetry__Proto__Common__V1__InstrumentationScope *sc_otlp_scope(struct sc_arena *a);

/* KeyValues in the arena, strings made valid UTF-8 (starvation check). */
Opentelemetry__Proto__Common__V1__KeyValue *sc_kv_str(struct sc_arena *a, const char *k, const char *v);
Opentelemetry__Proto__Common__V1__KeyValue *sc_kv_int(struct sc_arena *a, const char *k, int64_t v);
Opentelemetry__Proto__Common__V1__KeyValue *sc_kv_bool(struct sc_arena *a, const char *k, bool v);
Opentelemetry__Proto__Common__V1__KeyValue *sc_kv_double(struct sc_arena *a, const char *k, double v);

#endif
