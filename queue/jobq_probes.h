/*
 * jobq_probes.h - the USDT probe contract between libjobq and its observers.
 *
 * Provider "jobq". This header is the single definition of every probe's
 * name, argument order and meaning; bpf/ includes it for the constants and
 * docs/probes.md documents it with a bpftrace one-liner per probe. Changing
 * an argument's position or meaning bumps JOBQ_PROBES_VERSION.
 *
 * Arguments are scalars and NUL-terminated C strings only (libbpf reads at
 * most 12), so bpftrace one-liners work as well as the jobq agent.
 *
 * Every probe has an is-enabled semaphore (jobq_<name>_semaphore). Call
 * sites test JOBQ_PROBE_ENABLED(name) before preparing costly arguments, so
 * a process nobody observes pays a load and a predicted branch, and the
 * probe site itself is a single NOP.
 *
 * Common argument encodings
 *   tenant, type, queue  const char *, NUL-terminated, at most
 *                        JOBQ_TENANT_MAX / JOBQ_TYPE_MAX / JOBQ_QUEUE_MAX bytes
 *                        before the NUL (validated at enqueue).
 *   job_id               uint64, unique within one queue (Redis INCR).
 *   priority             int, enum jobq_probe_priority.
 *   *_unix_ns            uint64, CLOCK_REALTIME nanoseconds since the epoch.
 *   trace_hi, trace_lo   the W3C trace-id: bytes 0-7 and 8-15, each read as
 *                        a big-endian uint64. Both 0: the job has no trace.
 *   span_id              the job.enqueue span's id (8 bytes, as the W3C parent-id
 *                        a consumer sees) read as big-endian u64.
 *   parent_span_id       the parent-id of the producer's W3C traceparent (the
 *                        span job.enqueue is a child of), big-endian u64;
 *                        0 when the producer passed no traceparent.
 *   trace_flags          W3C trace-flags byte (bit 0 = sampled).
 *   attempt              1 for the first run, incremented by every retry.
 *   series_digest        uint64, jobq_series_digest(queue, tenant, type):
 *                        a name for the three strings that observers may
 *                        use as a cache key instead of reading the strings
 *                        on every hit (never 0; 0 means "not given").
 */
#ifndef JOBQ_PROBES_H
#define JOBQ_PROBES_H

/* 2: enqueue gained parent_span_id and trace_flags (args 9, 10).
 * 3: enqueue and start gained series_digest (arg 11). */
#define JOBQ_PROBES_VERSION 3

#define JOBQ_TENANT_MAX 64 /* bytes, without the NUL */
#define JOBQ_TYPE_MAX 64
#define JOBQ_QUEUE_MAX 64
#define JOBQ_ERROR_MAX 128 /* error text as passed to finish/retry/dead_letter */

enum jobq_probe_priority {
	JOBQ_PRIO_HIGH = 0,
	JOBQ_PRIO_NORMAL = 1,
	JOBQ_PRIO_LOW = 2,
	JOBQ_PRIO_COUNT = 3,
};

/* finish: how a handler run ended. */
enum jobq_probe_status {
	JOBQ_STATUS_SUCCESS = 0, /* acked */
	JOBQ_STATUS_FAILED = 1,  /* handler error; a retry or dead_letter probe follows */
	JOBQ_STATUS_RELEASED = 2, /* not run to completion: given back at shutdown */
};

/*
 * Probe                 Arguments (in order)
 * ------------------------------------------------------------------------
 * enqueue     (12)      queue, tenant, type, job_id, priority,
 *                       enqueued_unix_ns, trace_hi, trace_lo, span_id,
 *                       parent_span_id, trace_flags, series_digest
 *     Fired by the producer after Redis accepted the job. span_id is the
 *     job.enqueue span's id recorded in the job document; parent_span_id
 *     and trace_flags come from the producer's traceparent (0 and 01
 *     without one). Version 1 sites had the first 9 arguments only,
 *     version 2 sites the first 11.
 *
 * start       (12)      queue, tenant, type, job_id, priority,
 *                       enqueued_unix_ns, trace_hi, trace_lo, span_id,
 *                       attempt, trace_flags, series_digest
 *     Fired by the worker just before the handler runs. span_id/trace are
 *     the enqueue span's context carried in the job, so wait time and the
 *     span link never depend on the producer's host being observed.
 *     Version 2 sites had the first 11 arguments only.
 *     The series_digest of enqueue and start lets the jobq agent skip
 *     reading the three strings once it has seen them from this process
 *     (it keys its cache by pid too, so a process can only mislabel its
 *     own jobs by passing a wrong digest).
 *
 * finish      (8)       queue, tenant, type, job_id, priority, status,
 *                       attempt, error
 *     Fired by the worker right after the handler returned (same thread
 *     or not). error is "" on success. Pair with start by (pid, queue,
 *     job_id): job ids are unique only within a queue.
 *
 * retry       (7)       queue, tenant, type, job_id, attempt, delay_ms, error
 *     A failed job was scheduled again after delay_ms (attempt is the one
 *     that failed).
 *
 * dead_letter (6)       queue, tenant, type, job_id, attempt, reason
 *     A job left the queue for the dead-letter list: attempts exhausted,
 *     malformed document, or unknown type. tenant/type may be "?" when the
 *     document could not be parsed.
 *
 * reap        (5)       queue, tenant, type, job_id, attempt
 *     A lease expired (worker died or stalled) and the job was returned to
 *     its ready queue by this process's reaper.
 *
 * depth       (8)       queue, tenant, depth_high, depth_normal, depth_low,
 *                       oldest_enqueued_unix_ns, in_flight, delayed
 *     Periodic per-tenant report from a worker (every
 *     jobq_worker_opts.depth_report_ms) of the authoritative Redis state;
 *     oldest_enqueued_unix_ns is 0 when the tenant has nothing waiting.
 */

#ifndef __bpf__ /* BPF programs need the constants above only */

#include <stdint.h>
#include <string.h>

/*
 * The series_digest of enqueue and start: a 64-bit hash of the three strings
 * (each with its length, so ("ab", "c") and ("a", "bc") differ), eight
 * bytes a step. Not cryptographic: two distinct (queue, tenant, type) of
 * one process collide with probability ~n^2 / 2^65. Never 0.
 */
static inline uint64_t jobq_series_digest(const char *queue, const char *tenant,
					  const char *type)
{
	const char *str[3] = {queue, tenant, type};
	uint64_t h = UINT64_C(0x6a09e667f3bcc909);

	for (int k = 0; k < 3; k++) {
		const unsigned char *p = (const unsigned char *)str[k];
		size_t n = strlen(str[k]);
		uint64_t w;

		h = (h ^ n) * UINT64_C(0x9e3779b97f4a7c15);
		for (; n >= 8; p += 8, n -= 8) {
			memcpy(&w, p, 8);
			h = (h ^ w) * UINT64_C(0xbf58476d1ce4e5b9);
			h ^= h >> 31;
		}
		if (n) {
			w = 0;
			memcpy(&w, p, n);
			h = (h ^ w) * UINT64_C(0xbf58476d1ce4e5b9);
			h ^= h >> 31;
		}
	}
	h = (h ^ (h >> 32)) * UINT64_C(0x94d049bb133111eb);
	h ^= h >> 29;
	return h ? h : 1;
}

#ifdef JOBQ_PROBES_IMPL
/* Exactly one translation unit of a binary defines the semaphores. */
#define JOBQ_SEMAPHORE(name) \
	unsigned short jobq_##name##_semaphore __attribute__((section(".probes"), used))
#else
#define JOBQ_SEMAPHORE(name) extern unsigned short jobq_##name##_semaphore
#endif

#ifndef JOBQ_NO_PROBES
#define _SDT_HAS_SEMAPHORES 1
#ifndef STAP_SDT_ARG_CONSTRAINT
/* libbpf 1.1 rejects gcc's memory operands such as 8@(%r8,%rcx,8). */
#define STAP_SDT_ARG_CONSTRAINT nr
#endif
#include <sys/sdt.h>

JOBQ_SEMAPHORE(enqueue);
JOBQ_SEMAPHORE(start);
JOBQ_SEMAPHORE(finish);
JOBQ_SEMAPHORE(retry);
JOBQ_SEMAPHORE(dead_letter);
JOBQ_SEMAPHORE(reap);
JOBQ_SEMAPHORE(depth);

#define JOBQ_PROBE_ENABLED(name) __builtin_expect(jobq_##name##_semaphore != 0, 0)

#define JOBQ_PROBE_ENQUEUE(q, t, ty, id, pr, ens, th, tl, sp, par, fl, dig) \
	STAP_PROBE12(jobq, enqueue, q, t, ty, id, pr, ens, th, tl, sp, par, fl, dig)
#define JOBQ_PROBE_START(q, t, ty, id, pr, ens, th, tl, sp, att, fl, dig) \
	STAP_PROBE12(jobq, start, q, t, ty, id, pr, ens, th, tl, sp, att, fl, dig)
#define JOBQ_PROBE_FINISH(q, t, ty, id, pr, st, att, err) \
	STAP_PROBE8(jobq, finish, q, t, ty, id, pr, st, att, err)
#define JOBQ_PROBE_RETRY(q, t, ty, id, att, delay, err) \
	STAP_PROBE7(jobq, retry, q, t, ty, id, att, delay, err)
#define JOBQ_PROBE_DEAD_LETTER(q, t, ty, id, att, why) \
	STAP_PROBE6(jobq, dead_letter, q, t, ty, id, att, why)
#define JOBQ_PROBE_REAP(q, t, ty, id, att) \
	STAP_PROBE5(jobq, reap, q, t, ty, id, att)
#define JOBQ_PROBE_DEPTH(q, t, dh, dn, dl, old, infl, del) \
	STAP_PROBE8(jobq, depth, q, t, dh, dn, dl, old, infl, del)

#else /* JOBQ_NO_PROBES: a build without probes, for the overhead benchmark */
#define JOBQ_PROBE_ENABLED(name) 0
#define JOBQ_PROBE_ENQUEUE(...) ((void)0)
#define JOBQ_PROBE_START(...) ((void)0)
#define JOBQ_PROBE_FINISH(...) ((void)0)
#define JOBQ_PROBE_RETRY(...) ((void)0)
#define JOBQ_PROBE_DEAD_LETTER(...) ((void)0)
#define JOBQ_PROBE_REAP(...) ((void)0)
#define JOBQ_PROBE_DEPTH(...) ((void)0)
#endif

/* Argument counts, checked against `readelf -n` of the built library. */
#define JOBQ_PROBE_ARGC_ENQUEUE 12
#define JOBQ_PROBE_ARGC_START 12
#define JOBQ_PROBE_ARGC_FINISH 8
#define JOBQ_PROBE_ARGC_RETRY 7
#define JOBQ_PROBE_ARGC_DEAD_LETTER 6
#define JOBQ_PROBE_ARGC_REAP 5
#define JOBQ_PROBE_ARGC_DEPTH 8

#endif /* !__bpf__ */

#endif /* JOBQ_PROBES_H */
