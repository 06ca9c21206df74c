/* produce.c - enqueue (single and pipelined batch) and tenant policy. */
#include "queue/backoff.h"
#include "queue/internal.h"
#include "queue/validate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENQ_ARGC 11
#define BATCH_CHUNK 256 /* commands in flight per pipelined write */

void jobq_enqueue_opts_init(struct jobq_enqueue_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->priority = JOBQ_NORMAL;
	o->max_attempts = 5;
}

/* One validated job, encoded as enqueue.lua's ARGV. */
struct enq {
	const char *argv[ENQ_ARGC];
	size_t lens[ENQ_ARGC];
	char at[32], at_ns[24], trace[33], span[17], flags[3], maxa[12], delay[12];
	uint64_t ens;
	uint8_t trace_id[16], span_id[8], parent_id[8], trace_flags; /* parent 0: no traceparent */
	enum jobq_priority prio;
};

/* The one definition of a valid job (jobq_check_job, enqueue, batch):
 * names, payload size, priority, traceparent. A valid traceparent is
 * parsed into e when e is not NULL. */
static int check(struct jobq *q, const struct jobq_new_job *j, struct enq *e, const char *ctx)
{
	const struct jobq_enqueue_opts *o = &j->opts;
	uint8_t trace_id[16], parent_id[8], fl = 1;
	char err[160];

	if (jobq_check_name("tenant_id", j->tenant, JOBQ_TENANT_MAX, err, sizeof(err)) ||
	    jobq_check_name("type", j->type, JOBQ_TYPE_MAX, err, sizeof(err)))
		return jobq__fail(q, JOBQ_EINVAL, "%s%s", ctx, err);
	if (j->payload_len > q->o.max_payload)
		return jobq__fail(q, JOBQ_EINVAL, "%spayload is %zu bytes, over the limit of %zu",
				  ctx, j->payload_len, q->o.max_payload);
	if (j->payload_len && !j->payload)
		return jobq__fail(q, JOBQ_EINVAL, "%spayload is NULL with a non-zero length", ctx);
	if (!jobq_priority_name(o->priority))
		return jobq__fail(q, JOBQ_EINVAL, "%spriority must be high, normal or low (got %d)",
				  ctx, (int)o->priority);
	if (o->traceparent) {
		if (jobq_traceparent_parse(o->traceparent, trace_id, parent_id, &fl))
			return jobq__fail(q, JOBQ_EINVAL,
					  "%straceparent must be 00-<32 hex>-<16 hex>-<2 hex> (got \"%.80s\")",
					  ctx, o->traceparent);
		if (e) {
			memcpy(e->trace_id, trace_id, sizeof(trace_id));
			memcpy(e->parent_id, parent_id, sizeof(parent_id));
			e->trace_flags = fl;
		}
	}
	return JOBQ_OK;
}

int jobq_check_job(struct jobq *q, const struct jobq_new_job *job)
{
	if (!job)
		return jobq__fail(q, JOBQ_EINVAL, "job is NULL");
	return check(q, job, NULL, "");
}

static int prepare(struct jobq *q, const struct jobq_new_job *j, struct enq *e, const char *ctx)
{
	const struct jobq_enqueue_opts *o = &j->opts;
	uint8_t fl = 1;
	const char *pn;
	int rc;

	if ((rc = check(q, j, e, ctx)))
		return rc;
	pn = jobq_priority_name(o->priority);
	if (o->traceparent) {
		fl = e->trace_flags;
	} else {
		uint64_t a = jobq_random64() | 1, b = jobq_random64();

		memset(e->parent_id, 0, sizeof(e->parent_id));
		for (int i = 0; i < 8; i++) {
			e->trace_id[i] = (uint8_t)(a >> (56 - 8 * i));
			e->trace_id[8 + i] = (uint8_t)(b >> (56 - 8 * i));
		}
	}
	/* The job.enqueue span: a child of the caller's span, so a new id. */
	{
		uint64_t s = jobq_random64() | 1;

		for (int i = 0; i < 8; i++)
			e->span_id[i] = (uint8_t)(s >> (56 - 8 * i));
	}
	e->trace_flags = fl;
	e->prio = o->priority;
	e->ens = jobq__now_unix_ns();
	snprintf(e->at, sizeof(e->at), "%" PRIu64 ".%06" PRIu64, (uint64_t)(e->ens / 1000000000u),
		 (uint64_t)(e->ens % 1000000000u / 1000));
	snprintf(e->at_ns, sizeof(e->at_ns), "%" PRIu64, e->ens);
	jobq_hex_encode(e->trace_id, 16, e->trace);
	jobq_hex_encode(e->span_id, 8, e->span);
	jobq_hex_encode(&fl, 1, e->flags);
	snprintf(e->maxa, sizeof(e->maxa), "%u", o->max_attempts ? o->max_attempts : 5);
	snprintf(e->delay, sizeof(e->delay), "%u", o->delay_ms);
	e->argv[0] = j->tenant;
	e->argv[1] = j->type;
	e->argv[2] = j->payload_len ? (const char *)j->payload : "";
	e->argv[3] = pn;
	e->argv[4] = e->at;
	e->argv[5] = e->at_ns;
	e->argv[6] = e->trace;
	e->argv[7] = e->span;
	e->argv[8] = e->flags;
	e->argv[9] = e->maxa;
	e->argv[10] = e->delay;
	for (int i = 0; i < ENQ_ARGC; i++)
		e->lens[i] = i == 2 ? j->payload_len : strlen(e->argv[i]);
	return JOBQ_OK;
}

static void fire_enqueue(struct jobq *q, const struct jobq_new_job *j, const struct enq *e,
			 uint64_t id)
{
	if (JOBQ_PROBE_ENABLED(enqueue)) {
		JOBQ_PROBE_ENQUEUE(q->queue, j->tenant, j->type, id, (int)e->prio, e->ens,
				   jobq_be64(e->trace_id), jobq_be64(e->trace_id + 8),
				   jobq_be64(e->span_id), jobq_be64(e->parent_id), e->trace_flags,
				   jobq_series_digest(q->queue, j->tenant, j->type));
	}
}

static int id_of(struct jobq *q, redisReply *r, uint64_t *id)
{
	if (r->type != REDIS_REPLY_INTEGER || r->integer <= 0)
		return jobq__fail(q, JOBQ_EPROTO, "enqueue: unexpected reply type %d", r->type);
	*id = (uint64_t)r->integer;
	return JOBQ_OK;
}

int jobq_enqueue(struct jobq *q, const char *tenant, const char *type, const void *payload,
		 size_t payload_len, const struct jobq_enqueue_opts *opts, uint64_t *job_id)
{
	struct jobq_new_job j = { tenant, type, payload, payload_len, { 0 } };
	struct enq e;
	redisReply *r;
	uint64_t id = 0;
	int rc;

	if (opts)
		j.opts = *opts;
	else
		jobq_enqueue_opts_init(&j.opts);
	if ((rc = prepare(q, &j, &e, "")))
		return rc;
	if ((rc = jobq__eval(q, JOBQ_S_ENQUEUE, ENQ_ARGC, e.argv, e.lens, &r)))
		return rc;
	rc = id_of(q, r, &id);
	freeReplyObject(r);
	if (rc)
		return rc;
	fire_enqueue(q, &j, &e, id);
	if (job_id)
		*job_id = id;
	return JOBQ_OK;
}

/* Per-job state of a pipelined chunk. */
enum job_state { J_SEND, J_DONE, J_FAILED, J_UNKNOWN };

struct chunk {
	struct enq *e;
	enum job_state *st;
	size_t k;
	size_t enqueued, failed, unknown;
	int rc;                    /* first error */
	char err[JOBQ_ERRMSG_MAX]; /* its message */
};

static void chunk_fail(struct chunk *c, size_t i, enum job_state st, int rc, const char *msg)
{
	c->st[i] = st;
	*(st == J_UNKNOWN ? &c->unknown : &c->failed) += 1;
	if (!c->rc) {
		c->rc = rc;
		snprintf(c->err, sizeof(c->err), "%s", msg);
	}
}

/* Sends every job of the chunk still in J_SEND in one pipeline and reads
 * exactly as many replies. NOSCRIPT means the script did not run: the job
 * stays J_SEND (*noscript counts them). An I/O error drops the connection:
 * the job whose reply was lost and every later one become J_UNKNOWN (sent,
 * outcome unknown). */
static void send_chunk(struct jobq *q, const struct jobq_new_job *jobs, struct chunk *c,
		       uint64_t *ids, size_t *noscript)
{
	size_t sent = 0, i;
	int rc;

	*noscript = 0;
	for (i = 0; i < c->k; i++) {
		if (c->st[i] != J_SEND)
			continue;
		if ((rc = jobq__append_eval(q, JOBQ_S_ENQUEUE, ENQ_ARGC, c->e[i].argv, c->e[i].lens))) {
			/* Nothing of this pipeline was sent (see jobq__append_eval). */
			for (size_t j = 0; j < c->k; j++)
				if (c->st[j] == J_SEND)
					chunk_fail(c, j, J_FAILED, rc, q->err);
			return;
		}
		sent++;
	}
	for (i = 0; i < c->k && sent; i++) {
		redisReply *r;
		uint64_t id = 0;

		if (c->st[i] != J_SEND)
			continue;
		sent--;
		if ((rc = jobq__read(q, &r))) {
			/* The connection is gone: this reply and the rest are lost. */
			for (size_t j = i; j < c->k; j++)
				if (c->st[j] == J_SEND)
					chunk_fail(c, j, J_UNKNOWN, rc, q->err);
			return;
		}
		if (jobq__is_noscript(r)) {
			(*noscript)++;
		} else if (r->type == REDIS_REPLY_ERROR) {
			rc = jobq__reply_error(q, r, "enqueue");
			chunk_fail(c, i, J_FAILED, rc, q->err);
		} else if ((rc = id_of(q, r, &id))) {
			/* An answer that is not an id: the script may have run. */
			chunk_fail(c, i, J_UNKNOWN, rc, q->err);
		} else {
			c->st[i] = J_DONE;
			c->enqueued++;
			fire_enqueue(q, &jobs[i], &c->e[i], id);
			if (ids)
				ids[i] = id;
		}
		freeReplyObject(r);
	}
}

int jobq_enqueue_batch(struct jobq *q, const struct jobq_new_job *jobs, size_t n, uint64_t *ids)
{
	struct chunk c = { 0 };
	size_t done = 0, enqueued = 0, unknown = 0;
	int rc = JOBQ_OK;

	if (n == 0)
		return JOBQ_OK;
	if (!jobs)
		return jobq__fail(q, JOBQ_EINVAL, "jobs is NULL");
	/* Every failure below leaves ids[i] 0 for a job not known to be
	 * enqueued, an invalid batch included. */
	if (ids)
		memset(ids, 0, sizeof(*ids) * n);
	c.e = malloc(sizeof(*c.e) * (n < BATCH_CHUNK ? n : BATCH_CHUNK));
	c.st = malloc(sizeof(*c.st) * (n < BATCH_CHUNK ? n : BATCH_CHUNK));
	if (!c.e || !c.st) {
		rc = jobq__fail(q, JOBQ_ENOMEM, "out of memory");
		goto out;
	}
	/* Validate everything first: an invalid job enqueues nothing. */
	for (size_t i = 0; i < n; i++) {
		char ctx[40];

		snprintf(ctx, sizeof(ctx), "job %zu: ", i);
		if ((rc = check(q, &jobs[i], NULL, ctx)))
			goto out;
	}
	while (done < n && !c.rc) {
		size_t noscript = 0;

		c.k = n - done < BATCH_CHUNK ? n - done : BATCH_CHUNK;
		for (size_t i = 0; i < c.k; i++) {
			prepare(q, &jobs[done + i], &c.e[i], ""); /* validated above */
			c.st[i] = J_SEND;
		}
		c.enqueued = c.failed = c.unknown = 0;
		/* A dead connection is replaced (with backoff) before sending. */
		if ((rc = jobq__ensure(q))) {
			for (size_t i = 0; i < c.k; i++)
				chunk_fail(&c, i, J_FAILED, rc, q->err);
			break;
		}
		send_chunk(q, jobs + done, &c, ids ? ids + done : NULL, &noscript);
		if (noscript) {
			/* Redis lost its script cache (restart, SCRIPT FLUSH): those
			 * jobs did not run. Reload and send exactly them again. */
			jobq__log(JOBQ_LOG_INFO, "redis lost the scripts; reloading");
			if ((rc = jobq__load_scripts(q)) == JOBQ_OK)
				send_chunk(q, jobs + done, &c, ids ? ids + done : NULL, &noscript);
			for (size_t i = 0; i < c.k; i++)
				if (c.st[i] == J_SEND)
					chunk_fail(&c, i, J_FAILED, rc ? rc : JOBQ_EREDIS,
						   rc ? q->err : "enqueue: NOSCRIPT after reloading the scripts");
		}
		enqueued += c.enqueued;
		unknown += c.unknown;
		done += c.k;
	}
	rc = c.rc;
	if (rc) {
		/* Say exactly what happened; ids[] is 0 for every job not
		 * known to be enqueued. Later chunks were not sent. */
		if (unknown)
			jobq__fail(q, rc, "batch: %zu of %zu jobs enqueued, %zu sent with their outcome unknown (connection lost), the rest not enqueued: %s",
				   enqueued, n, unknown, c.err);
		else
			jobq__fail(q, rc, "batch: %zu of %zu jobs enqueued, the rest not: %s", enqueued, n,
				   c.err);
	}
out:
	free(c.e);
	free(c.st);
	return rc;
}

static int policy(struct jobq *q, const char *what, const char *tenant, const char *val)
{
	const char *argv[] = { what, tenant, val };
	redisReply *r;
	int rc;

	if (tenant[0] || strcmp(what, "default_cap")) {
		char err[160];

		if (jobq_check_name("tenant_id", tenant, JOBQ_TENANT_MAX, err, sizeof(err)))
			return jobq__fail(q, JOBQ_EINVAL, "%s", err);
	}
	if ((rc = jobq__eval(q, JOBQ_S_POLICY, 3, argv, NULL, &r)))
		return rc;
	freeReplyObject(r);
	return JOBQ_OK;
}

int jobq_tenant_set_weight(struct jobq *q, const char *tenant, double weight)
{
	char v[40];

	if (!(weight > 0) || weight > 1e6)
		return jobq__fail(q, JOBQ_EINVAL, "weight must be > 0 and <= 1e6");
	snprintf(v, sizeof(v), "%.17g", weight);
	return policy(q, "weight", tenant, v);
}

int jobq_tenant_set_cap(struct jobq *q, const char *tenant, uint32_t cap)
{
	char v[16];

	snprintf(v, sizeof(v), "%u", cap);
	return policy(q, "cap", tenant, v);
}

int jobq_set_default_cap(struct jobq *q, uint32_t cap)
{
	char v[16];

	snprintf(v, sizeof(v), "%u", cap);
	return policy(q, "default_cap", "", v);
}
