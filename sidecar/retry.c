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

struct sc_decision sc_retry_decide(const struct sc_retry_policy *p, const struct sc_attempt *a)
{
	struct sc_decision d = { SC_OUTCOME_PERMANENT, 0 };

	if (!a->transport_error && a->http_status >= 200 && a->http_status < 300) {
		d.outcome = SC_OUTCOME_SUCCESS;
		return d;
	}
	if (!a->transport_error && !sc_retry_status_retryable(a->http_status))
		return d;

	int64_t delay = -1;
	if (!a->transport_error && a->retry_after) {
		delay = sc_retry_after_ms(a->retry_after, a->now_unix_ms);
		if (delay > p->max_retry_after_ms)
			delay = p->max_retry_after_ms;
	}
	if (delay < 0) {
		double b = (double)p->initial_backoff_ms;
		for (int i = 1; i < a->attempt && b < (double)p->max_backoff_ms; i++)
			b *= p->multiplier;
		if (b > (double)p->max_backoff_ms)
			b = (double)p->max_backoff_ms;
		/* Jitter in [b/2, b): spreads many sidecars after a collector restart. */
		double j = a->jitter < 0 ? 0 : a->jitter >= 1 ? 0.999999 : a->jitter;
		delay = (int64_t)(b / 2 + j * b / 2);
	}
	if (delay >= a->remaining_ms) {
		d.outcome = SC_OUTCOME_GIVE_UP;
		return d;
	}
	d.outcome = SC_OUTCOME_RETRY;
	d.delay_ms = delay;
	return d;
}
