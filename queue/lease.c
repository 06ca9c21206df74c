/* lease.c - consumer transitions; see lease.h. Reply layouts are
 * documented in the header comment of each queue/lua/<name>.lua. */
#include "queue/lease.h"

#include "queue/backoff.h"
#include "queue/validate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JREC 14 /* items in a dequeue "j" record */
#define DREC 6  /* items in a dequeue "d" record */

void jobq_lease_free(struct jobq_lease *l)
{
	free(l);
}

int jobq__lease_append(struct jobq *q, const struct jobq_lease_params *p)
{
	char max[12], lms[12], tok[40], aging[12], cost[32], imm[12];
	const char *argv[] = { max, lms, tok, aging, cost, imm };
	uint32_t m = p->max ? p->max : 1;

	snprintf(max, sizeof(max), "%u", m);
	snprintf(imm, sizeof(imm), "%u", p->prefetch < m ? m - p->prefetch : 0);
	snprintf(lms, sizeof(lms), "%u", p->lease_ms);
	snprintf(tok, sizeof(tok), "%016" PRIx64 "%08" PRIx64, jobq_random64(),
		 jobq_random64() & 0xffffffffu);
	snprintf(aging, sizeof(aging), "%u", p->aging_ms);
	snprintf(cost, sizeof(cost), "%.6f", p->default_cost_ms > 0 ? p->default_cost_ms : 1.0);
	return jobq__append_eval(q, JOBQ_S_DEQUEUE, 6, argv, NULL);
}

static int is_str(const redisReply *r)
{
	return r->type == REDIS_REPLY_STRING;
}

static void fire_dead(const struct jobq *q, const char *tenant, const char *type, uint64_t id,
		      uint32_t attempt, const char *why)
{
	if (JOBQ_PROBE_ENABLED(dead_letter))
		JOBQ_PROBE_DEAD_LETTER(q->queue, tenant, type, id, attempt, why);
}

/* Copies a name from a reply into dst, replacing it by "?" if unusable
 * (the dead_letter probe must get a bounded C string). */
static void safe_name(const redisReply *r, char *dst, size_t cap)
{
	char err[8];

	if (jobq__reply_str(r, dst, cap) || jobq_check_name("x", dst, cap - 1, err, sizeof(err)))
		snprintf(dst, cap, "?");
}

/* Decodes one "j" record into a fresh lease; client-side checks that fail
 * mark it malformed (the worker dead-letters it without running it). */
static struct jobq_lease *decode_job(struct jobq *q, redisReply **e)
{
	const redisReply *rt = e[3], *rty = e[4], *rp = e[5];
	struct jobq_lease *l;
	struct jobq_job *j;
	char *s, buf[64], err[160];
	size_t tl, tyl, pl;
	uint64_t v;

	if (!is_str(rt) || !is_str(rty) || !is_str(rp))
		return NULL;
	tl = (size_t)rt->len, tyl = (size_t)rty->len, pl = (size_t)rp->len;
	l = calloc(1, sizeof(*l) + tl + tyl + pl + 3);
	if (!l)
		return NULL;
	j = &l->job;
	s = (char *)(l + 1);
	memcpy(s, rt->str, tl), s[tl] = '\0', j->tenant = s, s += tl + 1;
	memcpy(s, rty->str, tyl), s[tyl] = '\0', j->type = s, s += tyl + 1;
	memcpy(s, rp->str, pl), s[pl] = '\0', j->payload = s, j->payload_len = pl;
	j->queue = q->queue;
	if (jobq__reply_u64(e[1], &j->id) || jobq__reply_str(e[2], l->token, sizeof(l->token)) ||
	    jobq__reply_str(e[13], l->cost_est, sizeof(l->cost_est)))
		goto bad_proto;
#define MALFORMED(...) do { l->malformed = 1; snprintf(l->reason, sizeof(l->reason), __VA_ARGS__); } while (0)
	if (jobq_check_name("tenant_id", j->tenant, JOBQ_TENANT_MAX, err, sizeof(err)) ||
	    strlen(j->tenant) != tl)
		MALFORMED("malformed job document: %.100s", err);
	else if (jobq_check_name("type", j->type, JOBQ_TYPE_MAX, err, sizeof(err)) ||
		 strlen(j->type) != tyl)
		MALFORMED("malformed job document: %.100s", err);
	if (jobq__reply_str(e[6], buf, sizeof(buf)) ||
	    jobq_priority_parse(buf, &j->priority))
		MALFORMED("malformed job document: priority");
	if (jobq__reply_u64(e[7], &j->enqueued_unix_ns))
		MALFORMED("malformed job document: enqueued_at_ns");
	if (jobq__reply_u64(e[8], &v) || v < 1 || v > UINT32_MAX)
		MALFORMED("malformed job document: attempt");
	else
		j->attempt = (uint32_t)v;
	if (jobq__reply_u64(e[9], &v) || v < 1 || v > UINT32_MAX)
		MALFORMED("malformed job document: max_attempts");
	else
		j->max_attempts = (uint32_t)v;
	if (jobq__reply_str(e[10], buf, sizeof(buf)) ||
	    (buf[0] && jobq_hex_decode(buf, strlen(buf), j->trace_id, 16)))
		MALFORMED("malformed job document: trace_id");
	if (jobq__reply_str(e[11], buf, sizeof(buf)) ||
	    (buf[0] && jobq_hex_decode(buf, strlen(buf), j->span_id, 8)))
		MALFORMED("malformed job document: span_id");
	if (jobq__reply_str(e[12], buf, sizeof(buf)) ||
	    (buf[0] && jobq_hex_decode(buf, strlen(buf), &j->trace_flags, 1)))
		MALFORMED("malformed job document: trace_flags");
#undef MALFORMED
	if (l->malformed) {
		/* Names must still be safe C strings for probes and logs. */
		if (strlen(j->tenant) != tl || jobq_check_name("t", j->tenant, JOBQ_TENANT_MAX, err, 8))
			j->tenant = "?";
		if (strlen(j->type) != tyl || jobq_check_name("t", j->type, JOBQ_TYPE_MAX, err, 8))
			j->type = "?";
	}
	return l;
bad_proto:
	free(l);
	return NULL;
}

int jobq__lease_parse(struct jobq *q, redisReply *r, const struct jobq_lease_params *p,
		      struct jobq_lease **out, size_t cap, size_t *n, int64_t *next_due_ms)
{
	uint32_t m = p->max ? p->max : 1;
	size_t imm = p->prefetch < m ? m - p->prefetch : 0;
	int rc = JOBQ_OK;
	size_t i;

	*n = 0;
	*next_due_ms = -1;
	if (r->type == REDIS_REPLY_ERROR) {
		rc = jobq__reply_error(q, r, "dequeue");
		goto out;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER) {
		rc = jobq__fail(q, JOBQ_EPROTO, "dequeue: unexpected reply");
		goto out;
	}
	*next_due_ms = r->element[0]->integer;
	for (i = 1; i < r->elements;) {
		redisReply **e = r->element + i;

		if (is_str(e[0]) && e[0]->len == 1 && e[0]->str[0] == 'j' && i + JREC <= r->elements) {
			struct jobq_lease *l;

			if (*n >= cap) {
				rc = jobq__fail(q, JOBQ_EPROTO, "dequeue: more jobs than requested");
				goto out;
			}
			l = decode_job(q, e);
			if (!l) {
				rc = jobq__fail(q, JOBQ_EPROTO, "dequeue: bad job record");
				goto out;
			}
			/* Records come in lease order; dequeue.lua marked the
			 * ones past the free slots as prefetched. */
			l->prefetched = *n >= imm;
			out[(*n)++] = l;
			i += JREC;
		} else if (is_str(e[0]) && e[0]->len == 1 && e[0]->str[0] == 'd' &&
			   i + DREC <= r->elements) {
			char tenant[JOBQ_TENANT_MAX + 1], type[JOBQ_TYPE_MAX + 1];
			char why[JOBQ_ERROR_MAX + 1];
			uint64_t id = 0, att = 0;

			safe_name(e[2], tenant, sizeof(tenant));
			safe_name(e[3], type, sizeof(type));
			if (jobq__reply_u64(e[1], &id) || jobq__reply_u64(e[4], &att) ||
			    jobq__reply_str(e[5], why, sizeof(why)))
				snprintf(why, sizeof(why), "malformed job document");
			jobq__log(JOBQ_LOG_WARN, "queue %s: job %" PRIu64 " dead-lettered: %s",
				  q->queue, id, why);
			fire_dead(q, tenant, type, id, (uint32_t)att, why);
			i += DREC;
		} else {
			rc = jobq__fail(q, JOBQ_EPROTO, "dequeue: unknown record");
			goto out;
		}
	}
out:
	if (rc) {
		for (i = 0; i < *n; i++)
			jobq_lease_free(out[i]);
		*n = 0;
	}
	freeReplyObject(r);
	return rc;
}

int jobq_lease(struct jobq *q, const struct jobq_lease_params *p, struct jobq_lease **out,
	       size_t cap, size_t *n, int64_t *next_due_ms)
{
	redisReply *r;
	int rc;

	*n = 0;
	for (int tries = 0; tries < 2; tries++) {
		if ((rc = jobq__lease_append(q, p)) || (rc = jobq__read(q, &r)))
			return rc;
		if (!jobq__is_noscript(r))
			return jobq__lease_parse(q, r, p, out, cap, n, next_due_ms);
		freeReplyObject(r);
		if ((rc = jobq__reconnect(q)))
			return rc;
	}
	return jobq__fail(q, JOBQ_EREDIS, "dequeue: NOSCRIPT after reload");
}

static const char *outcome_name(enum jobq_outcome o)
{
	switch (o) {
	case JOBQ_OUT_OK: return "ok";
	case JOBQ_OUT_FAIL: return "fail";
	case JOBQ_OUT_RELEASE: return "release";
	case JOBQ_OUT_DEAD: return "dead";
	}
	return "dead";
}

int jobq__settle_append(struct jobq *q, const struct jobq_settle *s, size_t n)
{
	enum { PER = 8 };
	const char **argv = malloc(sizeof(*argv) * (1 + PER * n));
	char (*num)[3][24] = malloc(sizeof(*num) * n);
	int rc;

	if (!argv || !num) {
		free(argv);
		free(num);
		return jobq__fail(q, JOBQ_ENOMEM, "out of memory");
	}
	argv[0] = JOBQ_JOB_OVERHEAD_MS;
	for (size_t i = 0; i < n; i++) {
		const char **a = argv + 1 + PER * i;

		snprintf(num[i][0], 24, "%" PRIu64, s[i].l->job.id);
		snprintf(num[i][1], 24, "%.4f", s[i].duration_ms > 0 ? s[i].duration_ms : 0.0);
		snprintf(num[i][2], 24, "%u", s[i].delay_ms);
		a[0] = num[i][0];
		a[1] = s[i].l->token;
		a[2] = outcome_name(s[i].outcome);
		a[3] = num[i][1];
		a[4] = num[i][2];
		a[5] = s[i].error;
		a[6] = s[i].l->job.tenant;
		a[7] = s[i].l->cost_est;
	}
	rc = jobq__append_eval(q, JOBQ_S_ACK, (int)(1 + PER * n), argv, NULL);
	free(argv);
	free(num);
	return rc;
}

int jobq__settle_parse(struct jobq *q, redisReply *r, struct jobq_settle *s, size_t n)
{
	int rc = JOBQ_OK;

	if (r->type == REDIS_REPLY_ERROR) {
		rc = jobq__reply_error(q, r, "ack");
		goto out;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
		rc = jobq__fail(q, JOBQ_EPROTO, "ack: unexpected reply");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *v = r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : "";
		const struct jobq_job *j = &s[i].l->job;

		if (!strcmp(v, "ok")) {
			s[i].result = JOBQ_SETTLED_OK;
		} else if (!strcmp(v, "stale")) {
			s[i].result = JOBQ_SETTLED_STALE;
			jobq__log(JOBQ_LOG_WARN, "queue %s: job %" PRIu64 ": lease lost before settling (stale)",
				  q->queue, j->id);
		} else if (!strcmp(v, "retry")) {
			s[i].result = JOBQ_SETTLED_RETRY;
			if (JOBQ_PROBE_ENABLED(retry))
				JOBQ_PROBE_RETRY(q->queue, j->tenant, j->type, j->id, j->attempt,
						 s[i].delay_ms, s[i].error);
		} else if (!strcmp(v, "dead")) {
			s[i].result = JOBQ_SETTLED_DEAD;
			jobq__log(JOBQ_LOG_INFO, "queue %s: job %" PRIu64 " dead-lettered: %s", q->queue,
				  j->id, s[i].error);
			fire_dead(q, j->tenant, j->type, j->id, j->attempt, s[i].error);
		} else if (!strcmp(v, "released")) {
			s[i].result = JOBQ_SETTLED_RELEASED;
		} else {
			rc = jobq__fail(q, JOBQ_EPROTO, "ack: unknown status \"%s\"", v);
			goto out;
		}
	}
out:
	freeReplyObject(r);
	return rc;
}

int jobq_settle(struct jobq *q, struct jobq_settle *s, size_t n)
{
	redisReply *r;
	int rc;

	if (n == 0)
		return JOBQ_OK;
	for (int tries = 0; tries < 2; tries++) {
		if ((rc = jobq__settle_append(q, s, n)) || (rc = jobq__read(q, &r)))
			return rc;
		if (!jobq__is_noscript(r))
			return jobq__settle_parse(q, r, s, n);
		freeReplyObject(r);
		if ((rc = jobq__reconnect(q)))
			return rc;
	}
	return jobq__fail(q, JOBQ_EREDIS, "ack: NOSCRIPT after reload");
}

int jobq__start_append(struct jobq *q, struct jobq_lease *const *l, size_t n)
{
	const char **argv = malloc(sizeof(*argv) * 2 * n);
	char (*ids)[24] = malloc(sizeof(*ids) * n);
	int rc;

	if (!argv || !ids) {
		free(argv);
		free(ids);
		return jobq__fail(q, JOBQ_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(ids[i], 24, "%" PRIu64, l[i]->job.id);
		argv[2 * i] = ids[i];
		argv[2 * i + 1] = l[i]->token;
	}
	rc = jobq__append_eval(q, JOBQ_S_START, (int)(2 * n), argv, NULL);
	free(argv);
	free(ids);
	return rc;
}

int jobq__start_parse(struct jobq *q, redisReply *r)
{
	int rc = JOBQ_OK;

	if (r->type == REDIS_REPLY_ERROR)
		rc = jobq__reply_error(q, r, "start");
	else if (r->type != REDIS_REPLY_INTEGER)
		rc = jobq__fail(q, JOBQ_EPROTO, "start: unexpected reply");
	freeReplyObject(r);
	return rc;
}

int jobq__renew_append(struct jobq *q, struct jobq_lease *const *l, size_t n, uint32_t lease_ms)
{
	const char **argv = malloc(sizeof(*argv) * (1 + 2 * n));
	char (*ids)[24] = malloc(sizeof(*ids) * n);
	char lms[12];
	int rc;

	if (!argv || !ids) {
		free(argv);
		free(ids);
		return jobq__fail(q, JOBQ_ENOMEM, "out of memory");
	}
	snprintf(lms, sizeof(lms), "%u", lease_ms);
	argv[0] = lms;
	for (size_t i = 0; i < n; i++) {
		snprintf(ids[i], 24, "%" PRIu64, l[i]->job.id);
		argv[1 + 2 * i] = ids[i];
		argv[2 + 2 * i] = l[i]->token;
	}
	rc = jobq__append_eval(q, JOBQ_S_RENEW, (int)(1 + 2 * n), argv, NULL);
	free(argv);
	free(ids);
	return rc;
}

int jobq__renew_parse(struct jobq *q, redisReply *r, size_t n, size_t *lost)
{
	int rc = JOBQ_OK;

	*lost = 0;
	if (r->type == REDIS_REPLY_ERROR)
		rc = jobq__reply_error(q, r, "renew");
	else if (r->type != REDIS_REPLY_ARRAY || r->elements != n)
		rc = jobq__fail(q, JOBQ_EPROTO, "renew: unexpected reply");
	else
		for (size_t i = 0; i < n; i++)
			*lost += r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 0;
	freeReplyObject(r);
	return rc;
}

int jobq__reap_append(struct jobq *q, uint32_t max)
{
	char m[12];
	const char *argv[] = { m };

	snprintf(m, sizeof(m), "%u", max ? max : 100);
	return jobq__append_eval(q, JOBQ_S_REAP, 1, argv, NULL);
}

int jobq__reap_parse(struct jobq *q, redisReply *r, size_t *n)
{
	int rc = JOBQ_OK;

	*n = 0;
	if (r->type == REDIS_REPLY_ERROR) {
		rc = jobq__reply_error(q, r, "reap");
		goto out;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 5) {
		rc = jobq__fail(q, JOBQ_EPROTO, "reap: unexpected reply");
		goto out;
	}
	for (size_t i = 0; i < r->elements; i += 5) {
		redisReply **e = r->element + i;
		char tenant[JOBQ_TENANT_MAX + 1], type[JOBQ_TYPE_MAX + 1];
		uint64_t id = 0, att = 0;
		char kind;

		safe_name(e[2], tenant, sizeof(tenant));
		safe_name(e[3], type, sizeof(type));
		if (jobq__reply_u64(e[1], &id) || jobq__reply_u64(e[4], &att))
			continue;
		if (att > UINT32_MAX)
			att = UINT32_MAX;
		kind = is_str(e[0]) && e[0]->len == 1 ? e[0]->str[0] : '?';
		if (kind == 'd' || kind == 's') {
			char why[64];

			if (kind == 'd')
				snprintf(why, sizeof(why), "lease expired on attempt %" PRIu64, att);
			else
				snprintf(why, sizeof(why), "lease expired too often before the job started");
			jobq__log(JOBQ_LOG_WARN, "queue %s: job %" PRIu64 " dead-lettered: %s", q->queue, id, why);
			fire_dead(q, tenant, type, id, (uint32_t)att, why);
		} else {
			jobq__log(JOBQ_LOG_INFO, "queue %s: job %" PRIu64 " lease expired%s; returned to its queue",
				  q->queue, id, kind == 'u' ? " before it started (attempt not counted)" : "");
			if (JOBQ_PROBE_ENABLED(reap))
				JOBQ_PROBE_REAP(q->queue, tenant, type, id, (uint32_t)att);
		}
		(*n)++;
	}
out:
	freeReplyObject(r);
	return rc;
}

int jobq_reap(struct jobq *q, uint32_t max, size_t *n)
{
	redisReply *r;
	const char *argv[1];
	char m[12];
	int rc;

	snprintf(m, sizeof(m), "%u", max ? max : 100);
	argv[0] = m;
	if ((rc = jobq__eval(q, JOBQ_S_REAP, 1, argv, NULL, &r)))
		return rc;
	return jobq__reap_parse(q, r, n);
}

int jobq__stats_append(struct jobq *q, uint32_t max)
{
	char m[12];
	const char *argv[] = { m };

	snprintf(m, sizeof(m), "%u", max);
	return jobq__append_eval(q, JOBQ_S_STATS, 1, argv, NULL);
}

/* Why stats record e (10 items) cannot be reported, or NULL; fills t. */
static const char *stats_record(redisReply **e, struct jobq_tenant_stats *t)
{
	uint64_t cap = 0, defcap = 0;

	/* Other odd bytes are shown escaped by the caller (jobq stats). */
	if (jobq__reply_str(e[0], t->tenant, sizeof(t->tenant)))
		return "tenant id longer than 64 bytes (or not a string)";
	if (strlen(t->tenant) != (size_t)e[0]->len || !t->tenant[0])
		return "tenant id empty or with a NUL byte";
	if (jobq__reply_u64(e[1], &t->depth[0]) || jobq__reply_u64(e[2], &t->depth[1]) ||
	    jobq__reply_u64(e[3], &t->depth[2]))
		return "depth is not a count";
	if (jobq__reply_u64(e[4], &t->oldest_enqueued_unix_ns))
		return "oldest enqueued_at_ns is not a number";
	if (jobq__reply_u64(e[5], &t->in_flight))
		return "inflight is not a count";
	if (jobq__reply_u64(e[6], &t->delayed))
		return "delayed is not a count";
	if (jobq__reply_double(e[7], &t->weight) || !(t->weight > 0) || t->weight > 1e300)
		return "weight is not a number > 0";
	if (jobq__reply_u64(e[8], &cap) || jobq__reply_u64(e[9], &defcap))
		return "cap is not a count";
	cap = cap ? cap : defcap;
	t->cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	return NULL;
}

int jobq__stats_parse(struct jobq *q, redisReply *r, struct jobq_tenant_stats **out, size_t *n,
		      size_t *skipped)
{
	enum { PER = 10 };
	struct jobq_tenant_stats *st = NULL;
	int rc = JOBQ_OK;

	*out = NULL;
	*n = 0;
	*skipped = 0;
	if (r->type == REDIS_REPLY_ERROR) {
		rc = jobq__reply_error(q, r, "stats");
		goto out;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements % PER) {
		rc = jobq__fail(q, JOBQ_EPROTO, "stats: unexpected reply");
		goto out;
	}
	st = calloc(r->elements / PER + 1, sizeof(*st));
	if (!st) {
		rc = jobq__fail(q, JOBQ_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < r->elements; i += PER) {
		redisReply **e = r->element + i;
		struct jobq_tenant_stats *t = &st[*n];
		const char *why = stats_record(e, t);

		if (!why) {
			(*n)++;
			continue;
		}
		/* One bad record must not hide every other tenant: skip it,
		 * count it, name the first in the message. */
		if ((*skipped)++ == 0) {
			const redisReply *name = e[0];
			int len = name->type == REDIS_REPLY_STRING ? (int)name->len : 0;
			char shown[48];
			int k = 0;

			for (int c = 0; c < len && k < (int)sizeof(shown) - 4; c++) {
				unsigned char ch = (unsigned char)name->str[c];

				shown[k++] = ch >= 0x20 && ch < 0x7f && ch != '"' ? (char)ch : '?';
			}
			if (len > k)
				shown[k++] = '.', shown[k++] = '.', shown[k++] = '.';
			shown[k] = '\0';
			jobq__fail(q, JOBQ_EPROTO, "stats: skipped bad record for tenant \"%s\": %s", shown,
				   why);
		}
		memset(t, 0, sizeof(*t));
	}
	*out = st;
	st = NULL;
out:
	free(st);
	freeReplyObject(r);
	return rc;
}

void jobq__fire_depth(const struct jobq *q, const struct jobq_tenant_stats *st, size_t n)
{
	for (size_t i = 0; i < n && JOBQ_PROBE_ENABLED(depth); i++)
		JOBQ_PROBE_DEPTH(q->queue, st[i].tenant, st[i].depth[0], st[i].depth[1], st[i].depth[2],
				 st[i].oldest_enqueued_unix_ns, st[i].in_flight, st[i].delayed);
}
