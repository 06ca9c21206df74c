/* admin.c - stats and dead-letter inspection (not hot paths). */
#include "queue/lease.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATS_MAX_TENANTS 100000

int jobq_stats_ex(struct jobq *q, struct jobq_tenant_stats **out, size_t *n, size_t *skipped)
{
	char m[12];
	const char *argv[] = { m };
	redisReply *r;
	size_t sk = 0;
	int rc;

	*out = NULL;
	*n = 0;
	snprintf(m, sizeof(m), "%u", STATS_MAX_TENANTS);
	if ((rc = jobq__eval(q, JOBQ_S_STATS, 1, argv, NULL, &r)))
		return rc;
	rc = jobq__stats_parse(q, r, out, n, &sk);
	if (skipped)
		*skipped = sk;
	if (!rc && sk)
		jobq__log(JOBQ_LOG_WARN, "%s (%zu bad tenant records in all)", q->err, sk);
	return rc;
}

int jobq_stats(struct jobq *q, struct jobq_tenant_stats **out, size_t *n)
{
	return jobq_stats_ex(q, out, n, NULL);
}

int jobq_dead_list(struct jobq *q, size_t max, struct jobq_dead_entry **out, size_t *n)
{
	enum { PER = 6 };
	char m[24];
	const char *argv[] = { "list", m };
	struct jobq_dead_entry *d;
	redisReply *r;
	int rc;

	*out = NULL;
	*n = 0;
	if (max == 0)
		return JOBQ_OK;
	snprintf(m, sizeof(m), "%zu", max);
	if ((rc = jobq__eval(q, JOBQ_S_DEAD, 2, argv, NULL, &r)))
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % PER) {
		freeReplyObject(r);
		return jobq__fail(q, JOBQ_EPROTO, "dead list: unexpected reply");
	}
	d = calloc(r->elements / PER + 1, sizeof(*d));
	if (!d) {
		freeReplyObject(r);
		return jobq__fail(q, JOBQ_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < r->elements; i += PER) {
		redisReply **e = r->element + i;
		struct jobq_dead_entry *x = &d[*n];
		uint64_t att = 0;

		/* A garbage id in the list is reported as 0 rather than hidden. */
		if (jobq__reply_u64(e[0], &x->id))
			x->id = 0;
		if (jobq__reply_str(e[1], x->tenant, sizeof(x->tenant)))
			snprintf(x->tenant, sizeof(x->tenant), "?");
		if (jobq__reply_str(e[2], x->type, sizeof(x->type)))
			snprintf(x->type, sizeof(x->type), "?");
		/* An attempt that is not a count below UINT32_MAX is shown as
		 * unknown, never truncated. */
		if (jobq__reply_u64(e[3], &att) || att >= JOBQ_ATTEMPTS_UNKNOWN)
			x->attempts = JOBQ_ATTEMPTS_UNKNOWN;
		else
			x->attempts = (uint32_t)att;
		if (jobq__reply_u64(e[4], &x->failed_unix_ns))
			x->failed_unix_ns = 0;
		if (jobq__reply_str(e[5], x->reason, sizeof(x->reason)))
			snprintf(x->reason, sizeof(x->reason), "%.*s", JOBQ_ERROR_MAX, e[5]->str ? e[5]->str : "");
		(*n)++;
	}
	freeReplyObject(r);
	*out = d;
	return JOBQ_OK;
}

/* Reads dead.lua's retry reply: { moved, skipped[, looked at] }. */
static int retry_reply(struct jobq *q, redisReply *r, uint64_t v[3], size_t want)
{
	int rc = JOBQ_OK;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != want)
		rc = jobq__fail(q, JOBQ_EPROTO, "dead retry: unexpected reply");
	for (size_t i = 0; !rc && i < want; i++)
		if (jobq__reply_u64(r->element[i], &v[i]))
			rc = jobq__fail(q, JOBQ_EPROTO, "dead retry: unexpected reply");
	freeReplyObject(r);
	return rc;
}

int jobq_dead_retry_all(struct jobq *q, size_t *moved, size_t *skipped)
{
	enum { CHUNK = 1000 };
	char m[12], sk[24];
	const char *argv[] = { "retry", "all", m, sk };
	size_t total = 0, skip = 0;

	snprintf(m, sizeof(m), "%u", CHUNK);
	/* From the oldest entry on, a chunk per call; entries that cannot be
	 * requeued stay in place at the tail and later calls look past them. */
	for (;;) {
		uint64_t v[3];
		redisReply *r;
		int rc;

		snprintf(sk, sizeof(sk), "%zu", skip);
		if ((rc = jobq__eval(q, JOBQ_S_DEAD, 4, argv, NULL, &r)) ||
		    (rc = retry_reply(q, r, v, 3))) {
			if (moved)
				*moved = total;
			if (skipped)
				*skipped = skip;
			return rc;
		}
		total += (size_t)v[0];
		skip += (size_t)v[1];
		if (v[2] < CHUNK)
			break;
	}
	if (moved)
		*moved = total;
	if (skipped)
		*skipped = skip;
	return JOBQ_OK;
}

int jobq_dead_retry(struct jobq *q, uint64_t id, size_t *moved)
{
	char a[24];
	const char *argv[] = { "retry", a };
	uint64_t v[3];
	redisReply *r;
	int rc;

	if (!id)
		return jobq_dead_retry_all(q, moved, NULL);
	if (moved)
		*moved = 0;
	snprintf(a, sizeof(a), "%" PRIu64, id);
	if ((rc = jobq__eval(q, JOBQ_S_DEAD, 2, argv, NULL, &r)) || (rc = retry_reply(q, r, v, 2)))
		return rc;
	if (moved)
		*moved = (size_t)v[0];
	if (v[1])
		return jobq__fail(q, JOBQ_EINVAL,
				  "job %" PRIu64 " cannot be requeued (its document lacks tenant_id, type or priority); it stays in the dead-letter list",
				  id);
	if (!v[0])
		return jobq__fail(q, JOBQ_ENOTFOUND, "job %" PRIu64 " is not in the dead-letter list", id);
	return JOBQ_OK;
}
