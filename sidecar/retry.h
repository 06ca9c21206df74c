/*
 * retry.h - the OTLP/HTTP retry policy, as a pure function.
 *
 * Retryable: HTTP 429, 502, 503, 504, and transport failures (connection
 * refused/reset, timeouts). Never retried: any other status, including 400
 * and a 200 carrying partial_success. The delay is an exponential backoff
 * with jitter in [b/2, b), or the server's Retry-After (delta-seconds or an
 * HTTP-date, capped at max_retry_after_ms) when that is longer: the backoff
 * is the minimum, so "Retry-After: 0" cannot cause a retry storm. A retry
 * whose delay does not fit into the time left before the export deadline is
 * not attempted (SC_OUTCOME_GIVE_UP): the caller keeps the request queued
 * and must still not send it before delay_ms has passed -- a Retry-After
 * longer than the export timeout is honoured, not cut short.
 */
#ifndef SC_RETRY_H
#define SC_RETRY_H

#include <stdbool.h>
#include <stdint.h>

struct sc_retry_policy {
	int64_t initial_backoff_ms; /* first backoff (attempt 1) */
	int64_t max_backoff_ms;
	double multiplier;
	int64_t max_retry_after_ms; /* cap on a server-requested delay */
};

#define SC_RETRY_POLICY_DEFAULT { 1000, 5000, 1.5, 30000 }

enum sc_outcome {
	SC_OUTCOME_SUCCESS,    /* 2xx */
	SC_OUTCOME_RETRY,      /* wait delay_ms, then send again */
	SC_OUTCOME_GIVE_UP,    /* retryable, but not before the deadline: keep it,
				* and wait delay_ms before sending it again */
	SC_OUTCOME_PERMANENT,  /* not retryable: drop and count */
};

struct sc_attempt {
	long http_status;        /* 0 if no response was received */
	bool transport_error;    /* connect/send/receive failed or timed out */
	const char *retry_after; /* Retry-After header value or NULL */
	int attempt;             /* 1 for the first try */
	int64_t now_unix_ms;     /* to resolve an HTTP-date */
	int64_t remaining_ms;    /* until the export deadline */
	double jitter;           /* uniform in [0, 1), supplied by the caller */
};

struct sc_decision {
	enum sc_outcome outcome;
	/* RETRY and GIVE_UP: the earliest time of the next attempt, from now. */
	int64_t delay_ms;
	bool server_delay;       /* a usable Retry-After was part of the decision */
};

bool sc_retry_status_retryable(long http_status);

/* Parses Retry-After: delta-seconds or IMF-fixdate / RFC 850 / asctime.
 * Returns the delay in ms (>= 0, past dates give 0) or -1 if unparsable. */
int64_t sc_retry_after_ms(const char *value, int64_t now_unix_ms);

struct sc_decision sc_retry_decide(const struct sc_retry_policy *p, const struct sc_attempt *a);

#endif
