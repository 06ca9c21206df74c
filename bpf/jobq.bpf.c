// SPDX-License-Identifier: GPL-2.0
/*
 * jobq.bpf.c - USDT programs on the jobq:* probes (queue/jobq_probes.h).
 *
 * Aggregates in the kernel: per-series counters, wait-time and duration
 * histograms (exact OTLP scale-3 mapping, bpf/jobq_hist.h), the last depth
 * report per (queue, tenant), and, when emit_events is set, ring-buffer
 * records from which the agent builds spans. Every record that cannot be
 * kept is counted in `losses` by reason; nothing is dropped silently.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

#include "bpf/jobq.h"
#include "bpf/usdt_args.h"

/* Knobs set by the agent between open and load. */
const volatile __u64 hist_bounds[JOBQ_HIST_TABLE_SIZE]; /* jobq_hist.h */
const volatile bool emit_events = false;

/* CLOCK_REALTIME - CLOCK_MONOTONIC in ns, kept current by the agent
 * (bss is mmap'd), so wait = ktime + offset - enqueued_unix_ns. */
volatile __u64 realtime_offset_ns;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, JOBQ_MAX_COUNTERS);
	__type(key, struct jobq_ctr_key);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, JOBQ_MAX_HISTS);
	__type(key, struct jobq_hist_key);
	__type(value, struct jobq_hist_val);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, JOBQ_MAX_DEPTHS);
	__type(key, struct jobq_depth_key);
	__type(value, struct jobq_depth_val);
} depths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, JOBQ_MAX_INFLIGHT);
	__type(key, struct jobq_inflight_key);
	__type(value, struct jobq_inflight_val);
} inflight SEC(".maps");

/* Admitted tenants; max_entries is the tenant cap. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, JOBQ_DEFAULT_TENANT_CAP);
	__type(key, char[JOBQ_STR_TENANT]);
	__type(value, __u8);
} tenants SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, JOBQ_LOSS_KERNEL_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} losses SEC(".maps");

/* A zeroed histogram to insert new series from (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct jobq_hist_val);
} zero_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

static __always_inline void loss(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&losses, &reason);

	if (v)
		(*v)++;
}

/* Reads a probe string into a zeroed buffer; an unreadable one is counted
 * and left empty. */
static __always_inline int read_str(char *dst, __u32 size, const char *src)
{
	if (bpf_probe_read_user_str(dst, size, src) < 0) {
		dst[0] = '\0';
		loss(JOBQ_LOSS_READ_FAULT);
		return -1;
	}
	return 0;
}

/* Beyond the tenant cap, a new tenant's data goes to the overflow series. */
static __always_inline void admit_tenant(char *tenant, char *type, __u8 *overflow)
{
	__u8 one = 1;
	long err;

	if (bpf_map_lookup_elem(&tenants, tenant))
		return;
	err = bpf_map_update_elem(&tenants, tenant, &one, BPF_NOEXIST);
	if (err == 0 || err == -17 /* EEXIST: raced with another CPU */)
		return;
	__builtin_memset(tenant, 0, JOBQ_STR_TENANT);
	if (type)
		__builtin_memset(type, 0, JOBQ_STR_TYPE);
	*overflow = 1;
	loss(JOBQ_LOSS_TENANT_OVERFLOW);
}

static __always_inline void count(const struct jobq_series *s, __u8 metric, __u8 prio,
				  __u8 status)
{
	struct jobq_ctr_key k;
	__u64 zero = 0, *v;
	long err;

	__builtin_memset(&k, 0, sizeof(k));
	__builtin_memcpy(&k.s, s, sizeof(k.s));
	k.metric = metric;
	k.priority = prio;
	k.status = status;
	v = bpf_map_lookup_elem(&counters, &k);
	if (!v) {
		err = bpf_map_update_elem(&counters, &k, &zero, BPF_NOEXIST);
		if (err && err != -17) {
			loss(JOBQ_LOSS_MAP_FULL);
			return;
		}
		v = bpf_map_lookup_elem(&counters, &k);
		if (!v)
			return;
	}
	(*v)++;
}

static __always_inline void record(struct jobq_hist_key *k, __u8 kind, __u64 v_ns)
{
	struct jobq_hist_val *h;
	__u32 zero = 0;
	void *init;
	long err;
	int pos;

	k->kind = kind;
	h = bpf_map_lookup_elem(&hists, k);
	if (!h) {
		init = bpf_map_lookup_elem(&zero_hist, &zero);
		if (!init)
			return;
		err = bpf_map_update_elem(&hists, k, init, BPF_NOEXIST);
		if (err && err != -17) {
			loss(JOBQ_LOSS_MAP_FULL);
			return;
		}
		h = bpf_map_lookup_elem(&hists, k);
		if (!h)
			return;
	}
	h->count++;
	h->sum_ns += v_ns;
	if (h->count == 1 || v_ns < h->min_ns)
		h->min_ns = v_ns;
	if (v_ns > h->max_ns)
		h->max_ns = v_ns;
	pos = jobq_hist_index(hist_bounds, v_ns);
	if (pos == JOBQ_HIST_ZERO) {
		h->zero_count++;
		return;
	}
	if (pos >= JOBQ_HIST_NBUCKETS) {
		loss(JOBQ_LOSS_HIST_CLAMP);
		pos = JOBQ_HIST_NBUCKETS - 1;
	}
	if (pos >= 0 && pos < JOBQ_HIST_NBUCKETS)
		h->buckets[pos]++;
}

/* A ring-buffer record, or NULL (counted) when the buffer is full. The
 * consumer drains on a timer: never wake it per record. */
static __always_inline struct jobq_event *event_new(__u8 kind, __u64 now, __u64 job_id,
						    const struct jobq_series *s,
						    const char *queue)
{
	struct jobq_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		loss(JOBQ_LOSS_RINGBUF_FULL);
		return NULL;
	}
	__builtin_memset(e, 0, offsetof(struct jobq_event, s));
	e->ktime_ns = now;
	e->job_id = job_id;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->kind = kind;
	__builtin_memcpy(&e->s, s, sizeof(e->s));
	read_str(e->queue, sizeof(e->queue), queue);
	e->error[0] = '\0';
	return e;
}

static __always_inline void event_send(struct jobq_event *e)
{
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* Reads (tenant, type) into a zeroed histogram key. */
static __always_inline int read_series(struct jobq_hist_key *k, const char *tenant,
				       const char *type)
{
	__builtin_memset(k, 0, sizeof(*k));
	if (read_str(k->s.tenant, sizeof(k->s.tenant), tenant))
		return -1;
	read_str(k->s.type, sizeof(k->s.type), type);
	return 0;
}

/* Argument fetch failure: the probe site does not match the contract. */
#define ARGS(ctx, a, n)                          \
	do {                                     \
		if (usdt_args(ctx, a, n)) {      \
			loss(JOBQ_LOSS_READ_FAULT); \
			return 0;                \
		}                                \
	} while (0)
#define STR(x) ((const char *)(x))

SEC("usdt")
int jobq_enqueue(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns(), a[JOBQ_ARGC_ENQUEUE];
	struct jobq_hist_key k;
	struct jobq_event *e;
	const char *queue, *tenant, *type;
	__u64 job_id, enq_ns, trace_hi, trace_lo, span_id;
	int prio;

	ARGS(ctx, a, JOBQ_ARGC_ENQUEUE);
	queue = STR(a[0]), tenant = STR(a[1]), type = STR(a[2]);
	job_id = a[3], prio = (int)a[4], enq_ns = a[5];
	trace_hi = a[6], trace_lo = a[7], span_id = a[8];

	if (read_series(&k, tenant, type))
		return 0;
	if (emit_events && (e = event_new(JOBQ_EV_ENQUEUE, now, job_id, &k.s, queue))) {
		e->priority = prio;
		e->enqueued_unix_ns = enq_ns;
		e->trace_hi = trace_hi;
		e->trace_lo = trace_lo;
		e->span_id = span_id;
		event_send(e);
	}
	admit_tenant(k.s.tenant, k.s.type, &k.s.overflow);
	count(&k.s, JOBQ_M_ENQUEUED, prio, JOBQ_NO_STATUS);
	return 0;
}

SEC("usdt")
int jobq_start(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns(), a[JOBQ_ARGC_START];
	struct jobq_inflight_key ik = {};
	struct jobq_inflight_val iv = { .start_ktime_ns = now };
	struct jobq_hist_key k;
	struct jobq_event *e;
	const char *queue, *tenant, *type;
	__u64 job_id, enq_ns, trace_hi, trace_lo, span_id;
	__u32 attempt, flags;
	int prio;
	__s64 wait;

	ARGS(ctx, a, JOBQ_ARGC_START);
	queue = STR(a[0]), tenant = STR(a[1]), type = STR(a[2]);
	job_id = a[3], prio = (int)a[4], enq_ns = a[5];
	trace_hi = a[6], trace_lo = a[7], span_id = a[8];
	attempt = (__u32)a[9], flags = (__u32)a[10];

	if (read_series(&k, tenant, type))
		return 0;
	if (emit_events && (e = event_new(JOBQ_EV_START, now, job_id, &k.s, queue))) {
		e->priority = prio;
		e->enqueued_unix_ns = enq_ns;
		e->trace_hi = trace_hi;
		e->trace_lo = trace_lo;
		e->span_id = span_id;
		e->attempt = attempt;
		e->trace_flags = flags;
		event_send(e);
	}
	admit_tenant(k.s.tenant, k.s.type, &k.s.overflow);
	count(&k.s, JOBQ_M_STARTED, prio, JOBQ_NO_STATUS);

	ik.tgid = bpf_get_current_pid_tgid() >> 32;
	ik.job_id = job_id;
	if (bpf_map_update_elem(&inflight, &ik, &iv, BPF_ANY))
		loss(JOBQ_LOSS_MAP_FULL);

	/* Wait from the producer's wall clock: valid across hosts and for
	 * jobs enqueued before the agent attached. */
	wait = (__s64)(now + realtime_offset_ns - enq_ns);
	if (wait < 0) {
		loss(JOBQ_LOSS_NEGATIVE_DELTA);
		wait = 0;
	}
	record(&k, JOBQ_H_WAIT, (__u64)wait);
	return 0;
}

SEC("usdt")
int jobq_finish(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns(), a[JOBQ_ARGC_FINISH];
	struct jobq_inflight_key ik = {};
	struct jobq_inflight_val *iv;
	struct jobq_hist_key k;
	struct jobq_event *e;
	const char *queue, *tenant, *type, *error;
	__u64 job_id, start = 0;
	__u32 attempt;
	int prio, status;
	__s64 dur;

	ARGS(ctx, a, JOBQ_ARGC_FINISH);
	queue = STR(a[0]), tenant = STR(a[1]), type = STR(a[2]);
	job_id = a[3], prio = (int)a[4], status = (int)a[5];
	attempt = (__u32)a[6], error = STR(a[7]);

	if (read_series(&k, tenant, type))
		return 0;
	if (emit_events && (e = event_new(JOBQ_EV_FINISH, now, job_id, &k.s, queue))) {
		e->priority = prio;
		e->status = status;
		e->attempt = attempt;
		if (status != JOBQ_STATUS_SUCCESS)
			read_str(e->error, sizeof(e->error), error);
		event_send(e);
	}
	admit_tenant(k.s.tenant, k.s.type, &k.s.overflow);
	count(&k.s, status == JOBQ_STATUS_RELEASED ? JOBQ_M_RELEASED : JOBQ_M_PROCESSED, prio,
	      status);

	ik.tgid = bpf_get_current_pid_tgid() >> 32;
	ik.job_id = job_id;
	iv = bpf_map_lookup_elem(&inflight, &ik);
	if (!iv) {
		loss(JOBQ_LOSS_UNMATCHED_FINISH);
		return 0;
	}
	start = iv->start_ktime_ns;
	bpf_map_delete_elem(&inflight, &ik);
	if (status == JOBQ_STATUS_RELEASED)
		return 0;
	dur = (__s64)(now - start);
	if (dur < 0) {
		loss(JOBQ_LOSS_NEGATIVE_DELTA);
		dur = 0;
	}
	record(&k, JOBQ_H_DURATION, (__u64)dur);
	return 0;
}

static __always_inline int count_simple(const char *tenant, const char *type, __u8 metric)
{
	struct jobq_hist_key k;

	if (read_series(&k, tenant, type))
		return 0;
	admit_tenant(k.s.tenant, k.s.type, &k.s.overflow);
	count(&k.s, metric, JOBQ_NO_PRIORITY, JOBQ_NO_STATUS);
	return 0;
}

/* retry, dead_letter, reap: (queue, tenant, type, ...) -> one counter. */
SEC("usdt")
int jobq_retry(struct pt_regs *ctx)
{
	__u64 a[3];

	ARGS(ctx, a, 3);
	return count_simple(STR(a[1]), STR(a[2]), JOBQ_M_RETRIED);
}

SEC("usdt")
int jobq_dead_letter(struct pt_regs *ctx)
{
	__u64 a[3];

	ARGS(ctx, a, 3);
	return count_simple(STR(a[1]), STR(a[2]), JOBQ_M_DEAD_LETTERED);
}

SEC("usdt")
int jobq_reap(struct pt_regs *ctx)
{
	__u64 a[3];

	ARGS(ctx, a, 3);
	return count_simple(STR(a[1]), STR(a[2]), JOBQ_M_REAPED);
}

SEC("usdt")
int jobq_depth(struct pt_regs *ctx)
{
	__u64 a[JOBQ_ARGC_DEPTH];
	struct jobq_depth_key k;
	struct jobq_depth_val v;
	const char *queue, *tenant;

	ARGS(ctx, a, JOBQ_ARGC_DEPTH);
	queue = STR(a[0]), tenant = STR(a[1]);
	v = (struct jobq_depth_val){
		.depth = { a[2], a[3], a[4] },
		.oldest_enqueued_unix_ns = a[5],
		.in_flight = a[6],
		.delayed = a[7],
		.ktime_ns = bpf_ktime_get_ns(),
	};
	__builtin_memset(&k, 0, sizeof(k));
	if (read_str(k.tenant, sizeof(k.tenant), tenant))
		return 0;
	read_str(k.queue, sizeof(k.queue), queue);
	admit_tenant(k.tenant, NULL, &k.overflow);
	if (bpf_map_update_elem(&depths, &k, &v, BPF_ANY))
		loss(JOBQ_LOSS_MAP_FULL);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
