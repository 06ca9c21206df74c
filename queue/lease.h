/* lease.h - consumer-side transitions (not installed): lease, settle
 * (ack/fail/release/dead), renew, reap and stats, each one script call.
 * Every operation comes as append (queue the command, for pipelining) +
 * parse (interpret its reply), plus a synchronous wrapper. The worker
 * pipelines them; tests drive them directly. */
#ifndef JOBQ_LEASE_H
#define JOBQ_LEASE_H

#include "queue/internal.h"

#define JOBQ_TOKEN_MAX 47

struct jobq_lease {
	struct jobq_job job;          /* strings point into this allocation */
	char token[JOBQ_TOKEN_MAX + 1];
	char cost_est[32];            /* ms charged at lease, echoed to ack.lua */
	int malformed;                /* document failed client-side checks */
	char reason[JOBQ_ERROR_MAX + 1];
	/* Worker bookkeeping: its lists and the handler's outcome. */
	struct jobq_lease *next;
	size_t held_idx;
	int settling;                 /* queued for settling: no more renewals */
	int prefetched;               /* leased ahead of a free slot (marked pf) */
	int started;                  /* a handler took it (under the worker's mu) */
	int start_sent;               /* its start is recorded in Redis */
	int outcome;                  /* enum jobq_outcome */
	double duration_ms;
	uint32_t delay_ms;
	char error[JOBQ_ERROR_MAX + 1];
};

void jobq_lease_free(struct jobq_lease *l);

struct jobq_lease_params {
	uint32_t max;             /* jobs to lease, >= 1 */
	uint32_t lease_ms;
	uint32_t aging_ms;
	double default_cost_ms;   /* estimate for a tenant without history */
	/* How many of the max jobs are leased ahead of a free slot: the last
	 * ones leased (by index, >= max - prefetch) are marked prefetched
	 * until reported started (jobq__start_append); an expired lease gives
	 * such a job its attempt back. Capped tenants are never prefetched. */
	uint32_t prefetch;
};

int jobq__lease_append(struct jobq *q, const struct jobq_lease_params *p);
/* Stores up to cap leases in out (p: the parameters they were leased
 * with); malformed documents the script found are already dead-lettered
 * (probe fired, logged). *next_due_ms: ms until the earliest delayed job
 * is due, -1 if none. Consumes r. */
int jobq__lease_parse(struct jobq *q, redisReply *r, const struct jobq_lease_params *p,
		      struct jobq_lease **out, size_t cap, size_t *n, int64_t *next_due_ms);
int jobq_lease(struct jobq *q, const struct jobq_lease_params *p, struct jobq_lease **out,
	       size_t cap, size_t *n, int64_t *next_due_ms);

enum jobq_outcome { JOBQ_OUT_OK, JOBQ_OUT_FAIL, JOBQ_OUT_RELEASE, JOBQ_OUT_DEAD };
enum jobq_settled {
	JOBQ_SETTLED_PENDING,
	JOBQ_SETTLED_OK,
	JOBQ_SETTLED_STALE,    /* lease no longer ours: nothing changed */
	JOBQ_SETTLED_RETRY,
	JOBQ_SETTLED_DEAD,
	JOBQ_SETTLED_RELEASED,
};

struct jobq_settle {
	struct jobq_lease *l;
	enum jobq_outcome outcome;
	double duration_ms;       /* actual handler time, charged to the tenant */
	uint32_t delay_ms;        /* retry delay if the job is retried */
	char error[JOBQ_ERROR_MAX + 1];
	enum jobq_settled result; /* out */
};

/* Per-job overhead (ms) added to every charged duration, so no-op jobs
 * still advance their tenant's virtual time. */
#define JOBQ_JOB_OVERHEAD_MS "0.05"

int jobq__settle_append(struct jobq *q, const struct jobq_settle *s, size_t n);
/* Sets s[i].result; fires retry/dead_letter probes. Consumes r. */
int jobq__settle_parse(struct jobq *q, redisReply *r, struct jobq_settle *s, size_t n);
int jobq_settle(struct jobq *q, struct jobq_settle *s, size_t n);

/* Records that prefetched leases have started (start.lua). */
int jobq__start_append(struct jobq *q, struct jobq_lease *const *l, size_t n);
int jobq__start_parse(struct jobq *q, redisReply *r);

int jobq__renew_append(struct jobq *q, struct jobq_lease *const *l, size_t n, uint32_t lease_ms);
/* *lost counts leases no longer held. Consumes r. */
int jobq__renew_parse(struct jobq *q, redisReply *r, size_t n, size_t *lost);

int jobq__reap_append(struct jobq *q, uint32_t max);
/* Fires reap / dead_letter probes; *n counts the records (returned or
 * dead-lettered jobs). Consumes r. */
int jobq__reap_parse(struct jobq *q, redisReply *r, size_t *n);
int jobq_reap(struct jobq *q, uint32_t max, size_t *n);

int jobq__stats_append(struct jobq *q, uint32_t max);
/* Records that cannot be reported (a tenant id over 64 bytes, empty or
 * with a NUL, a field that is not a number) are skipped and counted in *skipped;
 * q's message then names the first. Consumes r. */
int jobq__stats_parse(struct jobq *q, redisReply *r, struct jobq_tenant_stats **out, size_t *n,
		      size_t *skipped);
/* Fires the depth probe once per tenant. */
void jobq__fire_depth(const struct jobq *q, const struct jobq_tenant_stats *st, size_t n);

#endif
