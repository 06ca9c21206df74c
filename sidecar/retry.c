/* retry.c - OTLP/HTTP retry policy (see retry.h). */
#include "sidecar/retry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool sc_retry_status_retryable(long s)
{
	return s == 429 || s == 502 || s == 503 || s == 504;
}

int64_t sc_retry_after_ms(const char *v, int64_t now_unix_ms)
{
	if (!v)
		return -1;
	while (isspace((unsigned char)*v))
		v++;
	if (isdigit((unsigned char)*v)) {
		char *end;
		errno = 0;
		unsigned long long s = strtoull(v, &end, 10);
		while (isspace((unsigned char)*end))
			end++;
		if (errno || *end)
			return -1;
		if (s > INT64_MAX / 1000)
			return INT64_MAX;
		return (int64_t)s * 1000;
	}
	/* curl_getdate is a pure parser of the three HTTP date formats. */
	time_t t = curl_getdate(v, NULL);
	if (t == (time_t)-1)
		return -1;
	int64_t ms = (int64_t)t * 1000 - now_unix_ms;
	return ms > 0 ? ms : 0;
}

/* Exponential backoff with jitter in [b/2, b) for this attempt. */
static int64_t backoff_ms(const struct sc_retry_policy *p, const struct sc_attempt *a)
{
	double b = (double)p->initial_backoff_ms;
	for (int i = 1; i < a->attempt && b < (double)p->max_backoff_ms; i++)
		b *= p->multiplier;
	if (b > (double)p->max_backoff_ms)
		b = (double)p->max_backoff_ms;
	/* Jitter in [b/2, b): spreads many sidecars after a collector restart. */
	double j = a->jitter < 0 ? 0 : a->jitter >= 1 ? 0.999999 : a->jitter;
	return (int64_t)(b / 2 + j * b / 2);
}

struct sc_decision sc_retry_decide(const struct sc_retry_policy *p, const struct sc_attempt *a)
{
	struct sc_decision d = { SC_OUTCOME_PERMANENT, 0, false };

	if (!a->transport_error && a->http_status >= 200 && a->http_status < 300) {
		d.outcome = SC_OUTCOME_SUCCESS;
		return d;
	}
	if (!a->transport_error && !sc_retry_status_retryable(a->http_status))
		return d;

	/* The backoff is also the floor of a server-requested delay, so that
	 * "Retry-After: 0" (or a date in the past) cannot make a retry storm;
	 * waiting longer than the server asked is always allowed. */
	int64_t delay = backoff_ms(p, a);
	if (!a->transport_error && a->retry_after) {
		int64_t ra = sc_retry_after_ms(a->retry_after, a->now_unix_ms);
		if (ra > p->max_retry_after_ms)
			ra = p->max_retry_after_ms;
		if (ra >= 0) {
			d.server_delay = true;
			if (ra > delay)
				delay = ra;
		}
	}
	d.delay_ms = delay;
	d.outcome = delay >= a->remaining_ms ? SC_OUTCOME_GIVE_UP : SC_OUTCOME_RETRY;
	return d;
}
