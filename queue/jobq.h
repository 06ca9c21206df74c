/*
 * jobq.h - libjobq public API: a tenant-aware, fair, reliable job queue on
 * Redis. The only header users include. Nothing here knows about BPF or
 * OpenTelemetry; the library's observability surface is its USDT probes
 * (jobq_probes.h, docs/probes.md).
 *
 * Conventions
 *   - Functions return JOBQ_OK (0) or a negative enum jobq_err. When a
 *     handle exists, jobq_errmsg(handle) then holds a human-readable
 *     message naming the field or the Redis error; functions without a
 *     handle take an (err, errlen) buffer.
 *   - No function prints, calls exit() or installs signal handlers.
 *   - A struct jobq handle is one Redis connection: use it from one thread
 *     at a time. A worker opens its own connections.
 *   - Strings are NUL-terminated UTF-8. Tenant ids and job types are 1 to
 *     JOBQ_TENANT_MAX / JOBQ_TYPE_MAX bytes of valid UTF-8 without control
 *     characters.
 */
#ifndef JOBQ_H
#define JOBQ_H

#include <stddef.h>
#include <stdint.h>

#include "jobq_probes.h" /* limits and probe contract constants */

#ifdef __cplusplus
extern "C" {
#endif

#define JOBQ_VERSION "0.1.0"

enum jobq_err {
	JOBQ_OK = 0,
	JOBQ_EINVAL = -1,    /* bad argument; the message names the field */
	JOBQ_EREDIS = -2,    /* connection or I/O error talking to Redis */
	JOBQ_ENOMEM = -3,
	JOBQ_ESTALE = -4,    /* lease token no longer valid (job re-leased) */
	JOBQ_ENOTFOUND = -5, /* no such job / dead entry */
	JOBQ_EPROTO = -6,    /* Redis answered something unexpected */
	JOBQ_ETIMEDOUT = -7,
};

enum jobq_priority {
	JOBQ_HIGH = JOBQ_PRIO_HIGH,
	JOBQ_NORMAL = JOBQ_PRIO_NORMAL,
	JOBQ_LOW = JOBQ_PRIO_LOW,
};

const char *jobq_strerror(int err);
/* "high" | "normal" | "low"; NULL for an invalid value. */
const char *jobq_priority_name(enum jobq_priority p);
/* Parses "high"/"normal"/"low"; returns JOBQ_EINVAL otherwise. */
int jobq_priority_parse(const char *s, enum jobq_priority *out);

/* ---- connection ------------------------------------------------------ */

struct jobq_opts {
	/* redis://[user:password@]host[:port][/db], rediss is not supported,
	 * unix:///path/to/redis.sock[?db=N]. NULL: $JOBQ_REDIS_URL, then
	 * redis://127.0.0.1:6379. */
	const char *redis_url;
	const char *queue;          /* queue name, default "default" */
	int connect_timeout_ms;     /* default 2000 */
	int command_timeout_ms;     /* default 5000 */
	size_t max_payload;         /* bytes, default 1 MiB */
	int reconnect_max_ms;       /* reconnect backoff bound, default 5000 (below) */
};

void jobq_opts_init(struct jobq_opts *o);

struct jobq;

/* Connects and loads the Lua scripts. On failure *out is NULL and err
 * holds the reason (e.g. "connect 127.0.0.1:6379: Connection refused").
 *
 * Lost connections. Before each call on a handle (enqueue, stats, dead,
 * policy), a connection that Redis closed since the last call (restart,
 * idle timeout, CLIENT KILL) is noticed before anything is sent and
 * replaced, so the call goes through once Redis answers. If Redis does not
 * answer, the call retries the connect with backoff (50 ms doubling) for
 * at most reconnect_max_ms in all, then fails with JOBQ_EREDIS ("... gave
 * up after N attempts in M ms"); a bad URL, password or database fails at
 * once. A connection lost after a command was sent fails that call with a
 * message saying its outcome is unknown (an enqueue may have happened): a
 * job is never reported enqueued unless it was. A worker reconnects on its
 * own, backing off up to reconnect_max_ms between attempts. */
int jobq_connect(const struct jobq_opts *o, struct jobq **out, char *err, size_t errlen);
/* Checks what jobq_connect would check before connecting (the URL, from
 * o->redis_url or $JOBQ_REDIS_URL, and the queue name) without connecting:
 * JOBQ_OK, or JOBQ_EINVAL with the reason in err. (Appended in 0.1.0.) */
int jobq_opts_check(const struct jobq_opts *o, char *err, size_t errlen);
void jobq_close(struct jobq *q);
const char *jobq_errmsg(const struct jobq *q);
const char *jobq_queue_name(const struct jobq *q);

/* ---- producing ------------------------------------------------------- */

struct jobq_enqueue_opts {
	enum jobq_priority priority; /* default JOBQ_NORMAL */
	uint32_t delay_ms;           /* run no earlier than now + delay */
	uint32_t max_attempts;       /* default 5; 1 = no retry */
	/* W3C traceparent of the caller ("00-<32 hex>-<16 hex>-<2 hex>"), or
	 * NULL. The job.enqueue span becomes its child: same trace id, a new
	 * span id recorded in the job. Without one a new trace is started. */
	const char *traceparent;
};

void jobq_enqueue_opts_init(struct jobq_enqueue_opts *o);

struct jobq_new_job {
	const char *tenant;
	const char *type;
	const void *payload; /* opaque bytes, never exported as telemetry */
	size_t payload_len;
	struct jobq_enqueue_opts opts;
};

/* Validates, then enqueues atomically (one round trip). opts NULL means
 * defaults. *job_id (optional) receives the new id. */
int jobq_enqueue(struct jobq *q, const char *tenant, const char *type,
		 const void *payload, size_t payload_len,
		 const struct jobq_enqueue_opts *opts, uint64_t *job_id);

/* Checks a job as jobq_enqueue and jobq_enqueue_batch do (tenant id and
 * type, payload against this handle's max_payload, priority, traceparent)
 * without talking to Redis: JOBQ_OK, or JOBQ_EINVAL with jobq_errmsg(q)
 * naming the field. A producer that gathers jobs into batches can check
 * each as it arrives. (Appended in 0.1.0.) */
int jobq_check_job(struct jobq *q, const struct jobq_new_job *job);

/* Enqueues n jobs pipelined. All are validated first: an invalid job
 * enqueues nothing and the message names its index and field. ids
 * (optional) receives n ids; on any failure ids[i] is 0 for every job
 * not known to be enqueued. If Redis refuses some jobs (e.g. OOM, a key
 * of the wrong type) or the connection is lost partway, the call fails;
 * jobs are sent in pipelined groups of up to 256, so jobs after a refused
 * one in the same group may still be enqueued (check ids), and later
 * groups are not sent. The message says how many were enqueued and how
 * many were sent with an unknown outcome (connection lost before the
 * answer). A lost script cache (NOSCRIPT) is handled: the scripts are
 * reloaded and exactly the jobs that did not run are sent again. */
int jobq_enqueue_batch(struct jobq *q, const struct jobq_new_job *jobs, size_t n,
		       uint64_t *ids);

/* ---- tenant policy (stored in Redis, shared by every worker) -------- */

/* weight > 0 (default 1.0): share of worker time relative to others. */
int jobq_tenant_set_weight(struct jobq *q, const char *tenant, double weight);
/* cap >= 1 concurrent jobs across all workers; 0 = the queue default. */
int jobq_tenant_set_cap(struct jobq *q, const char *tenant, uint32_t cap);
/* Default per-tenant concurrency cap for the queue (0 = unlimited). */
int jobq_set_default_cap(struct jobq *q, uint32_t cap);

/* ---- consuming ------------------------------------------------------- */

struct jobq_job {
	uint64_t id;
	const char *queue;
	const char *tenant;
	const char *type;
	const void *payload;
	size_t payload_len;
	enum jobq_priority priority;
	uint64_t enqueued_unix_ns;
	uint32_t attempt;      /* 1 on the first run */
	uint32_t max_attempts;
	uint8_t trace_id[16];  /* all zero: no trace */
	uint8_t span_id[8];    /* the job.enqueue span */
	uint8_t trace_flags;
};

/* A handler returns 0 on success. Any other value fails the job: it is
 * retried with backoff, or dead-lettered once attempts are exhausted, with
 * the text written to err (or "handler returned N"). Handlers run on
 * worker threads, concurrently up to the worker's concurrency. */
typedef int (*jobq_handler_fn)(const struct jobq_job *job, void *user,
			       char *err, size_t errlen);

struct jobq_worker_opts {
	struct jobq_opts conn;      /* how the worker's connections connect */
	int concurrency;            /* handler threads, default 4 */
	uint32_t lease_ms;          /* lease length, renewed at half, default 30000 */
	uint32_t batch;             /* jobs leased per round trip, default 16 */
	uint32_t aging_ms;          /* lower priority waiting longer than this is
				     * served as if one level higher, default 10000 */
	uint32_t backoff_base_ms;   /* retry n waits base*2^(n-1) +-jitter, default 1000 */
	uint32_t backoff_max_ms;    /* default 300000 */
	uint32_t depth_report_ms;   /* jobq:depth probe period, default 1000 */
	uint32_t reap_interval_ms;  /* default 1000 */
	int release_on_stop;        /* stop: give leased-but-not-started jobs
				     * back at once (default 1) */
	/* Jobs leased ahead of free handler slots (default 0: lease only
	 * for free slots, so idle workers share the work and a newly active
	 * tenant waits behind nothing). Prefetch buys throughput for short
	 * jobs (fewer round trips per job). A prefetched job counts no
	 * attempt until a handler starts it: if the worker dies first, its
	 * expired lease gives the attempt back (bounded: after 10 such
	 * expiries the job is dead-lettered). Jobs of a tenant with a
	 * concurrency cap are never prefetched. (Appended in 0.1.0.) */
	uint32_t prefetch;
};

void jobq_worker_opts_init(struct jobq_worker_opts *o);

struct jobq_worker;

int jobq_worker_new(const struct jobq_worker_opts *o, struct jobq_worker **out,
		    char *err, size_t errlen);
/* type "*" registers the handler for every type without its own. A job
 * of a type with no handler fails its attempt ("no handler for type X on
 * this worker") and is retried with the normal backoff, so another worker
 * that has the handler can take it (e.g. during a rolling deploy); it is
 * dead-lettered only once max_attempts are used up, like any failure. */
int jobq_worker_handle(struct jobq_worker *w, const char *type, jobq_handler_fn fn,
		       void *user);
/* Runs until jobq_worker_stop(); returns JOBQ_OK after in-flight jobs
 * finished (or were released) or an error it could not recover from.
 * Lost Redis connections are retried with backoff, logged via the log
 * callback. Stopped while Redis is unreachable: JOBQ_OK if it held no job
 * (e.g. it never connected); otherwise it tries to settle its jobs for
 * 10 s, then returns JOBQ_EREDIS and jobq_worker_errmsg says how many were
 * not settled (they run again when their leases expire). */
int jobq_worker_run(struct jobq_worker *w);
/* Async-signal-safe: may be called from a SIGTERM/SIGINT handler. */
void jobq_worker_stop(struct jobq_worker *w);
void jobq_worker_free(struct jobq_worker *w);
const char *jobq_worker_errmsg(const struct jobq_worker *w);

/* Library log lines (reconnects, dead-lettered malformed jobs, ...). The
 * default discards them; the CLI prints them to stderr. */
enum jobq_log_level { JOBQ_LOG_ERROR, JOBQ_LOG_WARN, JOBQ_LOG_INFO, JOBQ_LOG_DEBUG };
typedef void (*jobq_log_fn)(enum jobq_log_level level, const char *msg, void *user);
void jobq_set_log(jobq_log_fn fn, void *user);

/* ---- stats and dead letters ----------------------------------------- */

struct jobq_tenant_stats {
	char tenant[JOBQ_TENANT_MAX + 1];
	uint64_t depth[3];            /* ready jobs by priority */
	uint64_t delayed;             /* waiting for a retry or delay */
	uint64_t in_flight;           /* leased */
	uint64_t oldest_enqueued_unix_ns; /* oldest ready job, 0 if none */
	double weight;
	uint32_t cap;                 /* 0 = unlimited */
};

/* Every tenant known to the queue. *out is malloc'd; free with free(). A
 * tenant record that cannot be reported (an id over JOBQ_TENANT_MAX bytes,
 * empty or holding a NUL, a stored weight or count that is not a number)
 * is skipped and logged; the other tenants are reported. Tenant ids are
 * returned as stored (another client may have written control
 * characters or bytes that are not UTF-8). */
int jobq_stats(struct jobq *q, struct jobq_tenant_stats **out, size_t *n);
/* jobq_stats that also counts the skipped records in *skipped (optional);
 * when it is not 0, jobq_errmsg(q) names the first and what is wrong. */
int jobq_stats_ex(struct jobq *q, struct jobq_tenant_stats **out, size_t *n, size_t *skipped);

#define JOBQ_ATTEMPTS_UNKNOWN UINT32_MAX

struct jobq_dead_entry {
	uint64_t id;
	char tenant[JOBQ_TENANT_MAX + 1];
	char type[JOBQ_TYPE_MAX + 1];
	uint32_t attempts;            /* JOBQ_ATTEMPTS_UNKNOWN: the stored value
				       * is not a count below it */
	uint64_t failed_unix_ns;
	char reason[JOBQ_ERROR_MAX + 1];
};

/* Newest first, at most max entries; *out malloc'd, free with free(). */
int jobq_dead_list(struct jobq *q, size_t max, struct jobq_dead_entry **out, size_t *n);
/* Moves a dead job back to its ready queue with attempts reset. id 0 =
 * all (see jobq_dead_retry_all); *moved (optional) counts them. A job
 * whose document cannot be requeued: JOBQ_EINVAL (it stays listed). */
int jobq_dead_retry(struct jobq *q, uint64_t id, size_t *moved);
/* Moves every dead job back to its ready queue, oldest first; entries that
 * cannot be requeued (document missing or lacking tenant_id, type or
 * priority) stay in the list and are counted in *skipped (both optional;
 * set also on error, to what was done before it). */
int jobq_dead_retry_all(struct jobq *q, size_t *moved, size_t *skipped);

#ifdef __cplusplus
}
#endif

#endif /* JOBQ_H */
