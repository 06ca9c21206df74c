// SPDX-License-Identifier: GPL-2.0
/*
 * jobq.bpf.c - USDT programs on the jobq:* probes (queue/jobq_probes.h).
 *
 * Aggregates in the kernel: per-series counters, wait-time and duration
 * histograms (exact OTLP scale-3 mapping, bpf/jobq_hist.h), the last depth
 * report per (queue, tenant), and, when emit_events is set, ring-buffer
 * records from which the agent builds spans. Every record that cannot be
 * kept is counted in `losses` by reason; nothing is dropped silently.
 *
 * Shared state and interleaving. The counters and histograms of a series
 * are one copy for all CPUs (BPF_MAP_TYPE_ARRAY), updated with atomic
 * instructions (bpf/jobq_update.h): kernel memory does not grow with the
 * CPU count, and two CPUs, or two threads on one CPU, recording into the
 * same series lose nothing (tested from two CPUs: hist_kernel_test, and
 * agent_emitter_test through the probes). Per-CPU are only the loss
 * counters (8 bytes a reason, also updated atomically, so no increment is
 * lost either) and the 256-byte register scratch of usdt_args(); the
 * scratch alone assumes that two of these programs never interleave on one
 * CPU:
 *  - The programs run only from uprobes, i.e. in the context of the task
 *    that hit the probe (the int3 trap), never from an interrupt or NMI,
 *    so an interrupt cannot start another of them halfway through one.
 *  - The kernel runs them from __uprobe_perf_func() ->
 *    bpf_prog_run_array_uprobe() under migrate_disable() and
 *    rcu_read_lock() (they are not sleepable): the task cannot move to
 *    another CPU mid-program, so the per-CPU pointers stay valid. But with
 *    PREEMPT_RCU neither disables preemption.
 *  - Whether they can be preempted is the kernel's preemption model. This
 *    kernel (6.18, PREEMPT_DYNAMIC, CONFIG_PREEMPT_NONE default, no
 *    preempt= on the command line: preempt=none) never preempts kernel
 *    code involuntarily, and the programs have no voluntary preemption
 *    point (no sleeping helper), so each runs to completion: the
 *    assumption holds.
 *  - Booted with preempt=full or preempt=lazy (or PREEMPT_RT), a program
 *    can be preempted on the return from an interrupt, and another thread
 *    on the same CPU can hit a jobq probe meanwhile: the preempted program
 *    would then read a register scratch the other one overwrote (wrong
 *    arguments, for the one event). The window is the copy and decoding of
 *    the arguments at the start of the program and needs a reschedule
 *    inside it, so it is rare, but it is not counted. Known and documented
 *    (docs/agent.md), not designed for (usdt_args.h keeps the 256-byte
 *    register copy off the 512-byte stack on purpose).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

#include "bpf/jobq.h"
#include "bpf/jobq_update.h"
#include "bpf/usdt_args.h"

/* Knobs set by the agent between open and load. */
const volatile __u64 hist_bounds[JOBQ_HIST_TABLE_SIZE]; /* jobq_hist.h */
const volatile bool emit_events = false;
const volatile __u32 max_series = JOBQ_MAX_SERIES; /* = the arrays' max_entries */
const volatile __u32 types_per_tenant = JOBQ_DEFAULT_TYPES_PER_TENANT;
/* --queue NAME: only these queues are observed (names zero-padded to
 * JOBQ_QUEUE_BUF bytes, as in the series key); 0: every queue. Read-only
 * data, so without --queue the verifier removes the comparison as dead
 * code (a load and a jump remain). */
const volatile __u32 nqueues_selected = 0;
const volatile __u64 queues_selected[JOBQ_MAX_QUEUE_FILTER][JOBQ_QUEUE_BUF / 8];

/* CLOCK_REALTIME - CLOCK_MONOTONIC in ns, kept current by the agent
 * (bss is mmap'd), so wait = ktime + offset - enqueued_unix_ns. */
volatile __u64 realtime_offset_ns;
__u32 next_series_id = JOBQ_OVERFLOW_SERIES_ID + 1; /* id 0: the overflow series */

/* (queue, tenant, type) -> series id, the index into counters and hists. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, JOBQ_MAX_SERIES);
	__type(key, struct jobq_series);
	__type(value, __u32);
} series SEC(".maps");

/* One copy for all CPUs, updated atomically; mapped by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, JOBQ_MAX_SERIES);
	__type(key, __u32);
	__type(value, struct jobq_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, JOBQ_MAX_SERIES);
	__type(key, __u32);
	__type(value, struct jobq_hists);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, JOBQ_MAX_DEPTHS);
	__type(key, struct jobq_depth_key);
	__type(value, struct jobq_depth_val);
} depths SEC(".maps");

/* Started jobs awaiting their finish (jobq.h: jobq_inflight_set). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, JOBQ_INFLIGHT_SETS);
	__type(key, __u32);
	__type(value, struct jobq_inflight_set);
} inflight SEC(".maps");

/* Admitted tenants -> how many series, i.e. (queue, type) pairs, they
 * hold; max_entries is the tenant cap. A tenant is admitted once, whatever
 * the queues it is seen on. Consulted only when a new series appears (and
 * by depth reports). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, JOBQ_DEFAULT_TENANT_CAP);
	__type(key, char[JOBQ_STR_TENANT]);
	__type(value, __u32);
} tenants SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, JOBQ_LOSS_KERNEL_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} losses SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 << 20);
} events SEC(".maps");

/* Per-CPU (no cache line shared between CPUs), but atomic all the same:
 * then no increment is lost even if a program is preempted mid-update. */
static __always_inline void loss(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&losses, &reason);

	if (v)
		__sync_fetch_and_add(v, 1);
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

/* The admitted tenant's series count, admitting it if the cap allows;
 * NULL beyond the cap (its data goes to the overflow series), counted. */
static __always_inline __u32 *admit_tenant(const char *tenant)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&tenants, tenant);
	long err;

	if (n)
		return n;
	err = bpf_map_update_elem(&tenants, tenant, &zero, BPF_NOEXIST);
	if (err == 0 || err == -17 /* EEXIST: raced with another CPU */) {
		n = bpf_map_lookup_elem(&tenants, tenant);
		if (n)
			return n;
	}
	loss(JOBQ_LOSS_TENANT_OVERFLOW);
	return NULL;
}

/*
 * The id of series s, created on first sight. The tenant cap and the
 * per-tenant allowance of (queue, type) pairs are applied then: beyond
 * either, the data goes to the overflow series (fixed id
 * JOBQ_OVERFLOW_SERIES_ID, inserted by the agent before attach), counted
 * as tenant_overflow or type_overflow on every event. The table is sized so that admitted tenants within their
 * allowance always fit (jobq.h); should it still be full (ids wasted by
 * races beyond the slack), the data goes to the overflow series too,
 * counted as map_full.
 */
static __always_inline int series_id_slow(const struct jobq_series *s, __u32 *why)
{
	__u32 *idp = bpf_map_lookup_elem(&series, s), id, *ntypes;
	long err;

	*why = 0;
	if (idp)
		return *idp;
	ntypes = admit_tenant(s->tenant);
	if (!ntypes) {
		*why = JOBQ_LOSS_TENANT_OVERFLOW + 1;
		return JOBQ_OVERFLOW_SERIES_ID;
	}
	if (*ntypes >= types_per_tenant ||
	    __sync_fetch_and_add(ntypes, 1) >= types_per_tenant) {
		loss(JOBQ_LOSS_TYPE_OVERFLOW);
		*why = JOBQ_LOSS_TYPE_OVERFLOW + 1;
		return JOBQ_OVERFLOW_SERIES_ID;
	}
	/* Check before taking an id: a full table must not keep advancing the
	 * counter (it would wrap and hand out ids of live series). */
	if (next_series_id >= max_series)
		goto full;
	id = __sync_fetch_and_add(&next_series_id, 1);
	if (id >= max_series)
		goto full;
	err = bpf_map_update_elem(&series, s, &id, BPF_NOEXIST);
	if (err == -17) { /* another CPU created it: use its id (ours is wasted) */
		__sync_fetch_and_add(ntypes, -1);
		idp = bpf_map_lookup_elem(&series, s);
		if (idp)
			return *idp;
	}
	if (err)
		goto full;
	return id;
full:
	loss(JOBQ_LOSS_MAP_FULL);
	*why = JOBQ_LOSS_MAP_FULL + 1;
	return JOBQ_OVERFLOW_SERIES_ID;
}

/*
 * (queue, tenant, type) -> series id without the hash map: a direct-mapped
 * cache indexed by our own 64-bit hash of the key (26 words), checked
 * against the whole key. The series hash map cost ~95 ns a lookup here
 * (jhash and memcmp, measured with the former 136-byte key); this ~25 ns
 * (also measured then). A decision never changes once made
 * (ids are never reused, tenants never leave, a full tenant map or a full
 * allowance stays full), so overflow decisions are cached too, with their
 * loss reason, counted on every hit as before. Entries are written by
 * whichever CPU missed: check is written last and must equal the key's
 * hash mixed with the id and reason read, and is read again after, so an
 * entry torn by two writers never validates (0 = being written).
 */
#define SERIES_CACHE 1024 /* entries, a power of two */

struct series_cache_ent {
	__u64 check;
	struct jobq_series key;
	__u32 sid;
	__u32 why; /* loss reason + 1 counted on every hit; 0: none */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SERIES_CACHE);
	__type(key, __u32);
	__type(value, struct series_cache_ent);
} series_cache SEC(".maps");

#define SERIES_WORDS (sizeof(struct jobq_series) / 8)

/* Two independent multiply chains (even and odd words), so the CPU runs
 * them side by side: half the latency of one chain over the 26 words. */
static __always_inline __u64 series_hash(const struct jobq_series *s)
{
	const __u64 *w = (const __u64 *)s;
	__u64 h0 = 0x84222325cbf29ce4ull, h1 = 0x9e3779b97f4a7c15ull, h;

	_Static_assert(SERIES_WORDS % 2 == 0, "the key is hashed in pairs of words");
	for (int i = 0; i < SERIES_WORDS; i += 2) {
		h0 = (h0 ^ w[i]) * 0x100000001b3ull;
		h1 = (h1 ^ w[i + 1]) * 0xbf58476d1ce4e5b9ull;
	}
	h = h0 ^ (h1 >> 32 | h1 << 32);
	return h ^ (h >> 29);
}

static __always_inline __u64 series_check(__u64 h, __u32 sid, __u32 why)
{
	return (h ^ (((__u64)why << 32 | sid) * 0x9e3779b97f4a7c15ull)) | 1;
}

/* The id of series s; *why: the loss reason + 1 counted for this event
 * (the overflow series' reasons), or 0. */
static __always_inline int series_id(const struct jobq_series *s, __u32 *whyp)
{
	__u64 h = series_hash(s), chk;
	__u32 idx = (__u32)h & (SERIES_CACHE - 1), sid, why;
	struct series_cache_ent *c = bpf_map_lookup_elem(&series_cache, &idx);
	const __u64 *want = (const __u64 *)s, *have;
	int id, same = 1;

	if (!c)
		return series_id_slow(s, whyp);
	chk = c->check;
	sid = c->sid;
	why = c->why;
	have = (const __u64 *)&c->key;
	for (int i = 0; i < SERIES_WORDS; i++)
		same &= have[i] == want[i];
	if (same && chk == series_check(h, sid, why) && c->check == chk) {
		if (why)
			loss(why - 1);
		*whyp = why;
		return sid;
	}
	id = series_id_slow(s, &why);
	*whyp = why;
	if (id < 0)
		return id;
	c->check = 0;
	__builtin_memcpy(&c->key, s, sizeof(*s));
	c->sid = id;
	c->why = why;
	c->check = series_check(h, id, why);
	return id;
}

/*
 * (pid, series digest) -> series id: lets an enqueue or start from a
 * version-3 site (queue/jobq_probes.h: series_digest) skip reading its
 * three strings and hashing the 208-byte key once its process has shown
 * them: those reads were half of what the start program cost. Direct-mapped like
 * series_cache, and keyed by the pid as well, so a process passing a
 * wrong digest mislabels its own jobs only. A queue that --queue leaves
 * out is cached as such (sid -1). The entry keeps the names too: span
 * records, which carry them, copy 208 bytes of kernel memory instead of
 * reading three user strings. Torn entries are rejected as in
 * series_cache: check written first (0) and last, read first and last
 * around the fields and the names (x86-64 keeps loads, and stores, in
 * order; the compiler is held by volatile accesses and barriers). A
 * reader racing a rewrite of its own entry gets the same names: one
 * (pid, digest) always stands for one set of strings, except in a lying
 * process, whose own span names only can then mix.
 */
#define DIGEST_CACHE 1024 /* entries, a power of two */
#define DIGEST_NOT_OBSERVED (-1)

struct digest_cache_ent {
	__u64 check;
	__u64 digest;
	__u32 tgid;
	__s32 sid;
	__u32 why;
	__u32 pad;
	struct jobq_series key; /* the names, copied into span records */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DIGEST_CACHE);
	__type(key, __u32);
	__type(value, struct digest_cache_ent);
} digest_cache SEC(".maps");

#define VOLATILE(x) (*(volatile typeof(x) *)&(x))

static __always_inline __u64 digest_check(__u64 digest, __u32 tgid, __s32 sid, __u32 why)
{
	return (digest ^ (((__u64)why << 32 | (__u32)sid) * 0x9e3779b97f4a7c15ull) ^
		((__u64)tgid * 0xc2b2ae3d27d4eb4full)) | 1;
}

static __always_inline struct digest_cache_ent *digest_ent(__u32 tgid, __u64 digest)
{
	__u32 idx = (__u32)(digest ^ (digest >> 32) ^ (tgid * 0x9e3779b9u)) & (DIGEST_CACHE - 1);

	return bpf_map_lookup_elem(&digest_cache, &idx);
}

/* 1 and *sid, *why (and the names in *key unless NULL) when this
 * process's digest is known; 0 otherwise. */
static __always_inline int digest_lookup(__u32 tgid, __u64 digest, int *sidp, __u32 *whyp,
					 struct jobq_series *key)
{
	struct digest_cache_ent *c = digest_ent(tgid, digest);
	__u64 chk;
	__s32 sid;
	__u32 why;

	if (!c)
		return 0;
	chk = VOLATILE(c->check);
	if (VOLATILE(c->digest) != digest || VOLATILE(c->tgid) != tgid)
		return 0;
	sid = VOLATILE(c->sid);
	why = VOLATILE(c->why);
	if (key)
		__builtin_memcpy(key, &c->key, sizeof(*key));
	asm volatile("" ::: "memory"); /* the copy before the second read of check */
	if (chk != digest_check(digest, tgid, sid, why) || VOLATILE(c->check) != chk)
		return 0;
	*sidp = sid;
	*whyp = why;
	return 1;
}

static __always_inline void digest_store(__u32 tgid, __u64 digest, int sid, __u32 why,
					 const struct jobq_series *key)
{
	struct digest_cache_ent *c = digest_ent(tgid, digest);

	if (!c)
		return;
	VOLATILE(c->check) = 0;
	asm volatile("" ::: "memory");
	VOLATILE(c->digest) = digest;
	VOLATILE(c->tgid) = tgid;
	VOLATILE(c->sid) = sid;
	VOLATILE(c->why) = why;
	if (key)
		__builtin_memcpy(&c->key, key, sizeof(*key));
	asm volatile("" ::: "memory");
	VOLATILE(c->check) = digest_check(digest, tgid, sid, why);
}

static __always_inline void count(int sid, __u32 metric, __u32 prio, __u32 status)
{
	__u32 key = sid, cell;
	struct jobq_counters *c = bpf_map_lookup_elem(&counters, &key);

	if (!c)
		return;
	if (prio >= JOBQ_PRIO_COUNT)
		prio = JOBQ_PRIO_COUNT; /* the "no priority" slot */
	if (status >= JOBQ_STATUS_SLOTS - 1)
		status = JOBQ_STATUS_SLOTS - 1;
	cell = JOBQ_CTR_CELL(metric, prio, status);
	jobq_counter_add(c, cell);
}

static __always_inline void record(int sid, __u8 kind, __u64 v_ns)
{
	__u32 key = sid;
	struct jobq_hists *hs = bpf_map_lookup_elem(&hists, &key);
	int r;

	if (!hs || kind >= JOBQ_H_COUNT)
		return;
	r = jobq_hist_add(&hs->h[kind], hist_bounds, v_ns);
	if (r & JOBQ_HIST_ADD_CLAMPED)
		loss(JOBQ_LOSS_HIST_CLAMP);
	if (r & JOBQ_HIST_ADD_MINMAX)
		loss(JOBQ_LOSS_HIST_MINMAX);
}

/* A ring-buffer record, or NULL (counted) when the buffer is full. The
 * consumer drains on a timer: never wake it per record. */
static __always_inline struct jobq_event *event_new(__u8 kind, __u64 now, __u64 job_id,
						    const struct jobq_series *s, __u32 queue_id)
{
	/* Only the record's size is reserved: no e->error here. */
	struct jobq_event *e = bpf_ringbuf_reserve(&events, JOBQ_EVENT_REC_SIZE, 0);

	if (!e) {
		loss(JOBQ_LOSS_RINGBUF_FULL);
		return NULL;
	}
	__builtin_memset(e, 0, offsetof(struct jobq_event, s));
	e->ktime_ns = now;
	e->job_id = job_id;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->kind = kind;
	e->queue_id = queue_id;
	__builtin_memcpy(&e->s, s, sizeof(e->s));
	return e;
}

static __always_inline void event_send(void *e)
{
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* Reads the queue name into q (JOBQ_QUEUE_BUF bytes, 8-aligned: a series
 * key's queue), zero-padded. */
static __always_inline void read_queue(char *q, const char *queue)
{
	__builtin_memset(q, 0, JOBQ_QUEUE_BUF);
	read_str(q, JOBQ_STR_QUEUE, queue);
}

/* Is the queue (a zero-padded JOBQ_QUEUE_BUF-byte name) observed? Every
 * queue without --queue; else one of the names given, compared whole. */
static __always_inline bool queue_selected(const char *queue)
{
	const __u64 *w = (const __u64 *)queue;

	if (!nqueues_selected)
		return true;
	for (int i = 0; i < JOBQ_MAX_QUEUE_FILTER; i++) {
		__u64 diff = 0;

		if (i >= nqueues_selected)
			break;
		for (int j = 0; j < JOBQ_QUEUE_BUF / 8; j++)
			diff |= w[j] ^ queues_selected[i][j];
		if (!diff)
			return true;
	}
	return false;
}

/* Reads tenant and type into a series key whose queue is read, zeroing
 * the rest; -1 (counted) when the tenant is unreadable. */
static __always_inline int read_names(struct jobq_series *s, const char *tenant, const char *type)
{
	__builtin_memset(s->tenant, 0, sizeof(*s) - offsetof(struct jobq_series, tenant));
	if (read_str(s->tenant, sizeof(s->tenant), tenant))
		return -1;
	read_str(s->type, sizeof(s->type), type);
	return 0;
}

/* Reads (queue, tenant, type) into a zeroed series key; -1 when the queue
 * is not observed (--queue) or the tenant is unreadable (counted). */
static __always_inline int read_series(struct jobq_series *s, const char *queue,
				       const char *tenant, const char *type)
{
	read_queue(s->queue, queue);
	if (!queue_selected(s->queue))
		return -1;
	return read_names(s, tenant, type);
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

/*
 * The series of an enqueue or start with (queue, tenant, type) in a[0..2]
 * and a series digest (0: the site has none): its id and overflow reason
 * in *sid and *why, and the names in *s (read, or copied from the digest
 * cache when names is set: span records carry them). -1 when the queue is
 * not observed (--queue) or the tenant is unreadable (counted).
 */
static __always_inline int probe_series(__u32 tgid, __u64 digest, const __u64 *a, bool names,
					struct jobq_series *s, int *sid, __u32 *why)
{
	if (digest && digest_lookup(tgid, digest, sid, why, names ? s : NULL)) {
		if (*sid == DIGEST_NOT_OBSERVED)
			return -1;
		if (*why) /* the overflow reason, counted on every event as series_id() does */
			loss(*why - 1);
		return 0;
	}
	read_queue(s->queue, STR(a[0]));
	if (!queue_selected(s->queue)) {
		if (digest)
			digest_store(tgid, digest, DIGEST_NOT_OBSERVED, 0, NULL);
		return -1;
	}
	if (read_names(s, STR(a[1]), STR(a[2])))
		return -1;
	*sid = series_id(s, why);
	if (*sid < 0)
		return -1;
	if (digest)
		digest_store(tgid, digest, *sid, *why, s);
	return 0;
}

SEC("usdt")
int jobq_enqueue(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns(), a[JOBQ_ARGC_ENQUEUE];
	struct jobq_series s;
	struct jobq_event *e;
	int sid, argc;
	__u32 tgid, why;

	/* queue, tenant, type, job_id, priority, enqueued_unix_ns, trace_hi,
	 * trace_lo, span_id, parent_span_id, trace_flags, series_digest. A
	 * version-1 site (9 arguments) has no parent and counts as sampled; a
	 * version-2 site (11) has no digest (0). */
	argc = usdt_args_min(ctx, a, JOBQ_ARGC_ENQUEUE_V1, JOBQ_ARGC_ENQUEUE);
	if (argc < 0) {
		loss(JOBQ_LOSS_READ_FAULT);
		return 0;
	}
	if (argc < JOBQ_ARGC_ENQUEUE_V2)
		a[10] = 1;
	tgid = bpf_get_current_pid_tgid() >> 32;
	if (probe_series(tgid, a[11], a, emit_events, &s, &sid, &why))
		return 0;
	if (emit_events &&
	    (e = event_new(JOBQ_EV_ENQUEUE, now, a[3], &s, jobq_queue_ref(a[0])))) {
		e->priority = a[4];
		e->enqueued_unix_ns = a[5];
		e->trace_hi = a[6];
		e->trace_lo = a[7];
		e->span_id = a[8];
		e->parent_span_id = a[9];
		e->trace_flags = a[10];
		event_send(e);
	}
	count(sid, JOBQ_M_ENQUEUED, a[4], JOBQ_NO_STATUS);
	return 0;
}

/* Remembers when the job (pid, queue, job id; not the thread: the finish
 * may come from another one) started, and its series. */
static __always_inline void inflight_start(__u32 tgid, __u32 queue_id, __u64 job_id, __u64 now,
					   int sid, __u32 why)
{
	__u32 idx = jobq_inflight_set_of(tgid, queue_id, job_id);
	__u64 tag = jobq_inflight_tag(tgid, queue_id, job_id);
	struct jobq_inflight_set *set = bpf_map_lookup_elem(&inflight, &idx);
	struct jobq_inflight_slot *slot = NULL;
	__u64 oldest = ~0ull, seen;
	int victim = 0;

	if (!set)
		return;
	/* The same job started again (its finish was lost): newest wins. */
#pragma unroll
	for (int w = 0; w < JOBQ_INFLIGHT_WAYS; w++)
		if (set->w[w].tag == tag)
			slot = &set->w[w];
	if (!slot) {
#pragma unroll
		for (int w = 0; w < JOBQ_INFLIGHT_WAYS; w++) {
			if (slot)
				break;
			if (!set->w[w].tag &&
			    __sync_val_compare_and_swap(&set->w[w].tag, 0, tag) == 0)
				slot = &set->w[w];
		}
	}
	if (!slot) { /* full set: evict its oldest start (a lost finish) */
#pragma unroll
		for (int w = 0; w < JOBQ_INFLIGHT_WAYS; w++) {
			if (set->w[w].start_ktime_ns < oldest) {
				oldest = set->w[w].start_ktime_ns;
				victim = w;
			}
		}
		seen = set->w[victim & (JOBQ_INFLIGHT_WAYS - 1)].tag;
		loss(JOBQ_LOSS_MAP_FULL);
		if (!seen || __sync_val_compare_and_swap(&set->w[victim & (JOBQ_INFLIGHT_WAYS - 1)].tag,
							  seen, tag) != seen)
			return; /* raced with another CPU: this start goes unpaired */
		slot = &set->w[victim & (JOBQ_INFLIGHT_WAYS - 1)];
	}
	slot->start_ktime_ns = now;
	slot->series_id = sid;
	slot->why = why;
	slot->tgid = tgid;
}

/* When the job started and its series (*sid), freeing its slot; 0 if
 * unknown (started before the agent attached, or evicted). */
static __always_inline __u64 inflight_finish(__u32 tgid, __u32 queue_id, __u64 job_id, int *sid,
					     __u32 *why)
{
	__u32 idx = jobq_inflight_set_of(tgid, queue_id, job_id);
	__u64 tag = jobq_inflight_tag(tgid, queue_id, job_id);
	struct jobq_inflight_set *set = bpf_map_lookup_elem(&inflight, &idx);
	__u64 start = 0;

	if (!set)
		return 0;
#pragma unroll
	for (int w = 0; w < JOBQ_INFLIGHT_WAYS; w++) {
		if (set->w[w].tag != tag)
			continue;
		start = set->w[w].start_ktime_ns;
		*sid = set->w[w].series_id;
		*why = set->w[w].why;
		/* Read before freeing; freed by whoever wins (the agent may be
		 * expiring it). */
		if (__sync_val_compare_and_swap(&set->w[w].tag, tag, 0) != tag)
			start = 0;
		break;
	}
	return start;
}

SEC("usdt")
int jobq_start(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns(), a[JOBQ_ARGC_START];
	struct jobq_series s;
	struct jobq_event *e;
	__u32 queue_id, tgid, why;
	__s64 wait;
	int sid;

	/* queue, tenant, type, job_id, priority, enqueued_unix_ns, trace_hi,
	 * trace_lo, span_id, attempt, trace_flags, series_digest; metrics
	 * need the first 6 and the digest (emit_events is read-only data: the
	 * verifier keeps one branch). A version-2 site has no digest (0). */
	if (usdt_args_min(ctx, a, emit_events ? JOBQ_ARGC_START_V2 : 6, JOBQ_ARGC_START) < 0) {
		loss(JOBQ_LOSS_READ_FAULT);
		return 0;
	}
	tgid = bpf_get_current_pid_tgid() >> 32;
	queue_id = jobq_queue_ref(a[0]);
	if (probe_series(tgid, a[11], a, emit_events, &s, &sid, &why))
		return 0;
	if (emit_events && (e = event_new(JOBQ_EV_START, now, a[3], &s, queue_id))) {
		e->priority = a[4];
		e->enqueued_unix_ns = a[5];
		e->trace_hi = a[6];
		e->trace_lo = a[7];
		e->span_id = a[8];
		e->attempt = a[9];
		e->trace_flags = a[10];
		event_send(e);
	}
	inflight_start(tgid, queue_id, a[3], now, sid, why);
	count(sid, JOBQ_M_STARTED, a[4], JOBQ_NO_STATUS);
	/* Wait from the producer's wall clock: valid across hosts and for
	 * jobs enqueued before the agent attached. */
	wait = (__s64)(now + realtime_offset_ns - a[5]);
	if (wait < 0) {
		loss(JOBQ_LOSS_NEGATIVE_DELTA);
		wait = 0;
	}
	record(sid, JOBQ_H_WAIT, (__u64)wait);
	return 0;
}

SEC("usdt")
int jobq_finish(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns(), a[JOBQ_ARGC_FINISH], start;
	struct jobq_series s;
	int sid = -1, status;
	__u32 queue_id, tgid, why = 0;
	__s64 dur;

	ARGS(ctx, a, JOBQ_ARGC_FINISH);
	/* queue, tenant, type, job_id, priority, status, attempt, error */
	status = (int)a[5];
	tgid = bpf_get_current_pid_tgid() >> 32;
	queue_id = jobq_queue_ref(a[0]);
	/* The series the start found (its queue passed --queue then): no
	 * string read. Without a start (attached mid-job, or evicted), the
	 * one the finish's own queue/tenant/type name. */
	start = inflight_finish(tgid, queue_id, a[3], &sid, &why);
	if (!start) {
		read_queue(s.queue, STR(a[0]));
		if (!queue_selected(s.queue))
			return 0;
		loss(JOBQ_LOSS_UNMATCHED_FINISH);
		if (read_names(&s, STR(a[1]), STR(a[2])) == 0)
			sid = series_id(&s, &why);
	} else if (why) { /* the start's overflow reason, counted for this event too */
		loss(why - 1);
	}
	if (emit_events) {
		/* The error text only when the job failed: a success is the
		 * 72-byte header (3x less ring buffer and copying). */
		struct jobq_finish_rec *f =
			status == JOBQ_STATUS_SUCCESS
				? bpf_ringbuf_reserve(&events, JOBQ_FINISH_REC_OK_SIZE, 0)
				: bpf_ringbuf_reserve(&events, sizeof(*f), 0);

		if (f) {
			__builtin_memset(f, 0, offsetof(struct jobq_finish_rec, error));
			f->ktime_ns = now;
			f->job_id = a[3];
			f->tgid = tgid;
			f->kind = JOBQ_EV_FINISH;
			f->queue_id = queue_id;
			f->priority = a[4];
			f->status = status;
			f->attempt = a[6];
			if (status != JOBQ_STATUS_SUCCESS)
				read_str(f->error, sizeof(f->error), STR(a[7]));
			event_send(f);
		} else {
			loss(JOBQ_LOSS_RINGBUF_FULL);
		}
	}
	if (sid < 0)
		return 0;
	count(sid, status == JOBQ_STATUS_RELEASED ? JOBQ_M_RELEASED : JOBQ_M_PROCESSED, a[4],
	      status);
	if (!start || status == JOBQ_STATUS_RELEASED)
		return 0;
	dur = (__s64)(now - start);
	if (dur < 0) {
		loss(JOBQ_LOSS_NEGATIVE_DELTA);
		dur = 0;
	}
	record(sid, JOBQ_H_DURATION, (__u64)dur);
	return 0;
}

static __always_inline int count_simple(const char *queue, const char *tenant, const char *type,
					__u8 metric)
{
	struct jobq_series s;
	int sid;
	__u32 why;

	if (read_series(&s, queue, tenant, type))
		return 0;
	sid = series_id(&s, &why);
	if (sid >= 0)
		count(sid, metric, JOBQ_NO_PRIORITY, JOBQ_NO_STATUS);
	return 0;
}

/* retry, dead_letter, reap: (queue, tenant, type, ...) -> one counter. */
SEC("usdt")
int jobq_retry(struct pt_regs *ctx)
{
	__u64 a[3];

	ARGS(ctx, a, 3);
	return count_simple(STR(a[0]), STR(a[1]), STR(a[2]), JOBQ_M_RETRIED);
}

SEC("usdt")
int jobq_dead_letter(struct pt_regs *ctx)
{
	__u64 a[3];

	ARGS(ctx, a, 3);
	return count_simple(STR(a[0]), STR(a[1]), STR(a[2]), JOBQ_M_DEAD_LETTERED);
}

SEC("usdt")
int jobq_reap(struct pt_regs *ctx)
{
	__u64 a[3];

	ARGS(ctx, a, 3);
	return count_simple(STR(a[0]), STR(a[1]), STR(a[2]), JOBQ_M_REAPED);
}

SEC("usdt")
int jobq_depth(struct pt_regs *ctx)
{
	__u64 a[JOBQ_ARGC_DEPTH];
	struct jobq_depth_key k;
	struct jobq_depth_val v;
	__u64 q[JOBQ_QUEUE_BUF / 8]; /* the queue name, zero-padded, for --queue */

	ARGS(ctx, a, JOBQ_ARGC_DEPTH);
	read_queue((char *)q, STR(a[0]));
	if (!queue_selected((const char *)q))
		return 0;
	/* queue, tenant, depth_high, depth_normal, depth_low,
	 * oldest_enqueued_unix_ns, in_flight, delayed */
	v = (struct jobq_depth_val){
		.depth = { a[2], a[3], a[4] },
		.oldest_enqueued_unix_ns = a[5],
		.in_flight = a[6],
		.delayed = a[7],
		.ktime_ns = bpf_ktime_get_ns(),
	};
	__builtin_memset(&k, 0, sizeof(k));
	if (read_str(k.tenant, sizeof(k.tenant), STR(a[1])))
		return 0;
	__builtin_memcpy(k.queue, q, sizeof(k.queue));
	if (!admit_tenant(k.tenant)) { /* beyond the cap: the overflow key of this queue */
		__builtin_memset(k.tenant, 0, sizeof(k.tenant));
		k.overflow = 1;
	}
	if (bpf_map_update_elem(&depths, &k, &v, BPF_ANY))
		loss(JOBQ_LOSS_MAP_FULL);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
