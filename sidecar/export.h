/*
 * export.h - OTLP/HTTP delivery: one exporter thread per signal.
 *
 * The thread takes encoded requests from its sc_queue and POSTs them with
 * libcurl (Content-Type per protocol, Content-Encoding: gzip when on, the
 * configured headers, TLS peer and host verification with the optional CA
 * file, http/https only, no redirects). Each request gets the signal's
 * export timeout for all its attempts; the retry decisions come from
 * retry.h. Outcomes:
 *   2xx          exported; a partial_success's rejected items are counted
 *                (reason partial_success) and its error_message logged;
 *   retryable    retried within the deadline, then put back at the front of
 *                the queue for the next round (nothing is lost to a restart),
 *                which starts no earlier than the delay the policy chose (a
 *                Retry-After may reach past the deadline) and at least 1 s;
 *   other        dropped, counted (reason rejected), google.rpc.Status
 *                message logged. Never retried.
 * Response bodies are read up to SC_MAX_RESPONSE bytes, the rest discarded.
 * Shutdown is bounded: at the stop deadline an in-flight transfer is
 * aborted (it runs on a curl multi handle polled at least once a second
 * and woken by the stop), never waited for until its own timeout.
 */
#ifndef SC_EXPORT_H
#define SC_EXPORT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sidecar/buf.h"
#include "sidecar/config.h"
#include "sidecar/queue.h"
#include "sidecar/retry.h"
#include "sidecar/stats.h"

#define SC_MAX_REQUEST (64u << 20)
#define SC_MAX_RESPONSE (4u << 20)

typedef void (*sc_log_fn)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct sc_exporter {
	int signal;
	const struct sc_signal_config *cfg;
	struct sc_queue *q;
	struct sc_stats *st;
	struct sc_retry_policy policy;
	sc_log_fn log;
	pthread_t thread;
	atomic_bool stopping;
	_Atomic int64_t stop_deadline_ms; /* monotonic; valid once stopping */
	bool started;
	void *multi;  /* CURLM: transfers run on it so a stop deadline can cut them */
	bool broken;  /* libcurl state unusable: requests are dropped, counted */
};

/* gzip (RFC 1952) of in; returns 0 and a malloc'd *out, or -1. */
int sc_gzip(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen);

/* Partial success / error body parsing, protobuf or JSON by `json`.
 * Return 0 if the body was understood (fields may be empty/zero). */
int sc_parse_partial_success(int signal, bool json, const uint8_t *body, size_t len,
			     int64_t *rejected, char *msg, size_t msgsz);
int sc_parse_status_message(bool json, const uint8_t *body, size_t len, char *msg, size_t msgsz);

int sc_exporter_start(struct sc_exporter *e);
/* Lets the thread deliver what is queued until deadline_ms (monotonic ms);
 * at the deadline a request in flight is aborted, and it and the rest of
 * the queue are counted as shutdown drops. signal_stop only tells the
 * thread (so several exporters share one deadline); stop also joins it. */
void sc_exporter_signal_stop(struct sc_exporter *e, int64_t deadline_ms);
void sc_exporter_stop(struct sc_exporter *e, int64_t deadline_ms);

int64_t sc_now_mono_ms(void);

#endif
