/*
 * stats.h - the sidecar's own counters, exported as jobq.sidecar.* metrics.
 *
 * Written by the event loop and the exporter threads, hence atomics. Every
 * item the sidecar gives up on is counted here under exactly one reason.
 */
#ifndef SC_STATS_H
#define SC_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "sidecar/config.h"

enum sc_drop_reason {
	SC_DROP_QUEUE_FULL,   /* oldest request evicted from the bounded queue */
	SC_DROP_REJECTED,     /* non-retryable HTTP status (400, 401, 413, ...) */
	SC_DROP_PARTIAL,      /* items the collector rejected in a partial success */
	SC_DROP_TOO_LARGE,    /* encoded request above the 64 MiB limit */
	SC_DROP_ENCODE,       /* out of memory while building a request */
	SC_DROP_BUFFER_FULL,  /* span buffer full before export */
	SC_DROP_INVALID,      /* malformed item from an agent (bad histogram, name, kind, value) */
	SC_DROP_SHUTDOWN,     /* still queued when the shutdown deadline passed */
	SC_DROP_METRIC_LIMIT, /* agent point of a metric name beyond SC_MAX_METRICS */
	SC_DROP_COUNT
};
extern const char *const sc_drop_reason_names[SC_DROP_COUNT];
extern const char *const sc_signal_names[SC_SIGNAL_COUNT];

struct sc_stats {
	_Atomic uint64_t exported[SC_SIGNAL_COUNT]; /* points / spans accepted */
	_Atomic uint64_t dropped[SC_SIGNAL_COUNT][SC_DROP_COUNT];
	_Atomic uint64_t retries[SC_SIGNAL_COUNT];
	_Atomic uint64_t requests_sent[SC_SIGNAL_COUNT]; /* HTTP attempts */
	_Atomic uint64_t queue_bytes[SC_SIGNAL_COUNT];   /* current */
	_Atomic uint64_t queue_limit[SC_SIGNAL_COUNT];
	_Atomic uint64_t agent_frames_rejected;
	uint64_t start_ns; /* sidecar start: start time of these cumulative sums */
};

#endif
