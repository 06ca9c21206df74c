/* admin.c - stats and dead-letter inspection (not hot paths). */
#include "queue/lease.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATS_MAX_TENANTS 100000

int jobq_stats(struct jobq *q, struct jobq_tenant_stats **out, size_t *n)
{
	char m[12];
	const char *argv[] = { m };
	redisReply *r;
	int rc;

	*out = NULL;
	*n = 0;
	snprintf(m, sizeof(m), "%u", STATS_MAX_TENANTS);
	if ((rc = jobq__eval(q, JOBQ_S_STATS, 1, argv, NULL, &r)))
		return rc;
	return jobq__stats_parse(q, r, out, n);
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
		if (jobq__reply_u64(e[3], &att) == 0)
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

int jobq_dead_retry(struct jobq *q, uint64_t id, size_t *moved)
{
	enum { CHUNK = 1000 };
	char a[24], m[12];
	const char *argv[] = { "retry", a, m };
	size_t total = 0;

	snprintf(m, sizeof(m), "%u", CHUNK);
	if (id)
		snprintf(a, sizeof(a), "%" PRIu64, id);
	else
		snprintf(a, sizeof(a), "all");
	for (;;) {
		redisReply *r;
		int rc = jobq__eval(q, JOBQ_S_DEAD, 3, argv, NULL, &r);

		if (rc)
			return rc;
		if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
			freeReplyObject(r);
			return jobq__fail(q, JOBQ_EPROTO, "dead retry: unexpected reply");
		}
		size_t k = (size_t)r->integer;

		total += k;
		freeReplyObject(r);
		/* "all" works from the tail in chunks until a chunk is short. */
		if (id || k < CHUNK)
			break;
	}
	if (moved)
		*moved = total;
	if (id && total == 0)
		return jobq__fail(q, JOBQ_ENOTFOUND, "job %" PRIu64 " is not in the dead-letter list", id);
	return JOBQ_OK;
}
