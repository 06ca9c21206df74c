/*
 * jobq.h - what the jobq BPF programs and the agent share: map keys and
 * values, ring-buffer records, constants. Nothing else.
 *
 * Every key is made only of byte arrays and naturally aligned integers
 * with explicit padding, and is zero-filled before the strings are read
 * into it: garbage after a NUL would split one series into many.
 */
#ifndef JOBQ_BPF_H
#define JOBQ_BPF_H

#include "queue/jobq_probes.h"
#include "bpf/jobq_hist.h"

#define JOBQ_STR_TENANT (JOBQ_TENANT_MAX + 1)
#define JOBQ_STR_TYPE (JOBQ_TYPE_MAX + 1)
#define JOBQ_STR_QUEUE (JOBQ_QUEUE_MAX + 1)
#define JOBQ_QUEUE_BUF ((JOBQ_STR_QUEUE + 7) / 8 * 8) /* a queue name, zero-padded */

/*
 * The queue identity in start/finish pairing keys (job ids are unique only
 * within a queue): the address of the queue-name argument, folded to 32
 * bits. libjobq passes one buffer per open queue to both probes of a job
 * (the job's `queue`, which points at its connection's name), so the
 * finish needs no string read to pair (~30 ns a job here); the ring
 * records carry it too, so the agent pairs by the same key. A finish whose
 * queue argument is another buffer than its start's pairs with nothing
 * (counted as unmatched_finish), never with another job. Two buffers of
 * one process folding to the same 32 bits with the same job id in flight
 * at once would still be mixed up (about 2^-32 per pair of queues).
 */
static inline __attribute__((always_inline)) __u32 jobq_queue_ref(__u64 queue_arg)
{
	return (__u32)(queue_arg ^ (queue_arg >> 32));
}
#define JOBQ_STR_ERROR (JOBQ_ERROR_MAX + 1)

/* Argument counts of the probes, visible to BPF (jobq_probes.h keeps its
 * JOBQ_PROBE_ARGC_* out of BPF builds); agent/main.c asserts they agree. */
#define JOBQ_ARGC_ENQUEUE 12
#define JOBQ_ARGC_ENQUEUE_V2 11 /* contract version 2: no series_digest */
#define JOBQ_ARGC_ENQUEUE_V1 9 /* contract version 1: no parent_span_id, trace_flags */
#define JOBQ_ARGC_START 12
#define JOBQ_ARGC_START_V2 11 /* contract version 2: no series_digest */
#define JOBQ_ARGC_FINISH 8
#define JOBQ_ARGC_DEPTH 8

/*
 * Limits, coherent by construction: at most tenant_cap tenants are
 * admitted (a tenant once, whatever the queues it is seen on), each with
 * at most types_per_tenant series, i.e. (queue, job type) pairs; the
 * series table holds them all plus the overflow series and a little slack
 * for ids two CPUs take for one new series at once (jobq_series_table()).
 * So an admitted tenant's (queue, type) within the allowance always gets
 * its own series; a tenant beyond the cap (tenant_overflow) or a (queue,
 * type) beyond the allowance (type_overflow) goes to the overflow series,
 * counted. The agent sizes the maps between open and load.
 */
#define JOBQ_DEFAULT_TENANT_CAP 1024
#define JOBQ_DEFAULT_TYPES_PER_TENANT 4
#define JOBQ_MAX_TENANT_CAP 65536
#define JOBQ_MAX_TYPES_PER_TENANT 256
#define JOBQ_SERIES_LIMIT 262144 /* largest series table the agent configures */
/* Series table size for a tenant cap and a per-tenant type allowance. */
#define JOBQ_SERIES_SLACK(n) ((n) / 64 > 16 ? (n) / 64 : 16)
#define jobq_series_table(cap, types) \
	((cap) * (types) + 1 + JOBQ_SERIES_SLACK((cap) * (types)))
#define JOBQ_MAX_SERIES \
	jobq_series_table(JOBQ_DEFAULT_TENANT_CAP, JOBQ_DEFAULT_TYPES_PER_TENANT)
/* The overflow series (tenant and type "", overflow = 1) has this id; the
 * agent inserts it into the series map before attaching. */
#define JOBQ_OVERFLOW_SERIES_ID 0
/* At most this many --queue NAME options (queues counted; 0: all). */
#define JOBQ_MAX_QUEUE_FILTER 8
#define JOBQ_MAX_DEPTHS 4096
#define JOBQ_MAX_INFLIGHT 65536

/*
 * (queue, tenant, job type): the same tenant and type on two queues, or in
 * two deployments on one host (--lib reaches every process mapping the
 * library), are two series. overflow = 1: the tenant cap or the tenant's
 * allowance was reached and the strings are empty (exported with
 * otel.metric.overflow=true; one overflow series for all queues).
 * The queue comes first, JOBQ_QUEUE_BUF bytes zero-padded (8-aligned, so
 * the key hashes and compares a word at a time).
 */
struct jobq_series {
	char queue[JOBQ_QUEUE_BUF];
	char tenant[JOBQ_STR_TENANT];
	char type[JOBQ_STR_TYPE];
	__u8 overflow;
	__u8 pad[5];
} __attribute__((aligned(8))); /* aligned: BPF copies it 8 bytes at a time */

enum jobq_metric {
	JOBQ_M_ENQUEUED = 0,   /* jobs.enqueued, by priority */
	JOBQ_M_STARTED,        /* jobs.started, by priority */
	JOBQ_M_PROCESSED,      /* jobs.processed, by priority and status */
	JOBQ_M_RETRIED,        /* jobs.retried (status "retry") */
	JOBQ_M_DEAD_LETTERED,  /* jobs.dead_lettered (status "dead_letter") */
	JOBQ_M_REAPED,         /* jobs.reaped */
	JOBQ_M_RELEASED,       /* jobs.released: given back unrun at shutdown */
	JOBQ_M_COUNT,
};

#define JOBQ_NO_PRIORITY 0xff /* probe carries no priority */
#define JOBQ_NO_STATUS 0xff

/*
 * Kernel layout: a hash map turns each (queue, tenant, type) into a small series
 * id on first sight (the only string-keyed lookup per event); counters and
 * histograms are arrays indexed by that id, one copy shared by every CPU
 * and updated with atomic instructions (bpf/jobq_update.h): per-CPU copies
 * made kernel memory grow with the CPU count (5.6 KiB a series per CPU,
 * 1.4 GiB for the default table on 64 CPUs). The arrays are BPF_F_MMAPABLE:
 * the agent reads them through a mapping. Ids are never reused.
 */
#define JOBQ_PRIO_SLOTS (JOBQ_PRIO_COUNT + 1)   /* last slot: no priority */
#define JOBQ_STATUS_SLOTS 4                     /* success, failed, released, none */

#define JOBQ_CTR_CELLS (JOBQ_M_COUNT * JOBQ_PRIO_SLOTS * JOBQ_STATUS_SLOTS)
/* Cell of (metric, priority slot, status slot) in jobq_counters.c. */
#define JOBQ_CTR_CELL(m, p, st) (((m) * JOBQ_PRIO_SLOTS + (p)) * JOBQ_STATUS_SLOTS + (st))

struct jobq_counters {
	__u64 c[JOBQ_CTR_CELLS];
};

/* A counter as user space exports it (key built from the arrays). */
struct jobq_ctr_key {
	struct jobq_series s;
	__u8 metric;   /* enum jobq_metric */
	__u8 priority; /* enum jobq_probe_priority or JOBQ_NO_PRIORITY */
	__u8 status;   /* enum jobq_probe_status or JOBQ_NO_STATUS */
	__u8 pad[5];
};

enum jobq_hist_kind {
	JOBQ_H_WAIT = 0,     /* jobs.wait_time: start wall time - enqueued_unix_ns */
	JOBQ_H_DURATION = 1, /* jobs.duration: finish - start, same process */
	JOBQ_H_COUNT,
};

struct jobq_hist_key {
	struct jobq_series s;
	__u8 kind; /* enum jobq_hist_kind */
	__u8 pad[7];
};

/*
 * A histogram as the kernel keeps it, shared by every CPU (atomic adds;
 * min/max by compare-and-swap, bpf/jobq_update.h). A zero-filled entry is
 * the empty histogram, so nothing needs initialising:
 *  - no count: it is zero_count + the sum of the buckets, which also keeps
 *    every snapshot self-consistent (and saves an atomic per value);
 *  - min_inv is ~min (bitwise not): 0 means no value yet, and the minimum
 *    is then kept, like max_ns, by raising a word, never by a first-value
 *    special case that two CPUs could both take.
 * The kernel writes max/min, then sum, then the bucket; the agent reads in
 * the reverse order (jobq_hist_decode() in agent/snapshot.c), so a value it
 * counts has its min/max and sum in what it read. Values in ns.
 */
struct jobq_hist_cells {
	__u64 sum_ns;
	__u64 max_ns;
	__u64 min_inv;
	__u64 zero_count;
	__u64 buckets[JOBQ_HIST_NBUCKETS];
};

/* Array value at a series id: both histograms of the series. */
struct jobq_hists {
	struct jobq_hist_cells h[JOBQ_H_COUNT];
};

/* A histogram as user space exports it: count includes zero_count;
 * min/max valid when count > 0. */
struct jobq_hist_val {
	__u64 count;
	__u64 sum_ns;
	__u64 min_ns;
	__u64 max_ns;
	__u64 zero_count;
	__u64 buckets[JOBQ_HIST_NBUCKETS];
};

/* Last depth report of one (queue, tenant). */
struct jobq_depth_key {
	char queue[JOBQ_STR_QUEUE];
	char tenant[JOBQ_STR_TENANT];
	__u8 overflow;
	__u8 pad[5];
} __attribute__((aligned(8)));

struct jobq_depth_val {
	__u64 depth[JOBQ_PRIO_COUNT];
	__u64 oldest_enqueued_unix_ns; /* 0: nothing waiting */
	__u64 in_flight;
	__u64 delayed;
	__u64 ktime_ns; /* when the probe fired */
};

/*
 * start -> finish pairing, by (pid, queue, job id): the finish may come
 * from another thread than the start, and job ids repeat across queues.
 * A set-associative table (an array of sets of JOBQ_INFLIGHT_WAYS slots,
 * BPF_F_MMAPABLE): jobq_inflight_set_of() picks a job's set, the tag
 * names it within the set; the start claims a free slot
 * with a compare-and-swap on the tag (or evicts the set's oldest, counted
 * as map_full), the finish finds its tag in the set and frees the slot the
 * same way, so no hash-map insert/delete (~330 ns a job here) and no lock.
 * The slot also keeps the series id, so the finish needs neither the
 * tenant/type strings nor the series lookup. The agent expires slots older
 * than --inflight-max-age through its mapping, with the same CAS.
 */
#define JOBQ_INFLIGHT_WAYS 4
#define JOBQ_INFLIGHT_SETS (JOBQ_MAX_INFLIGHT / JOBQ_INFLIGHT_WAYS) /* a power of two */

struct jobq_inflight_slot {
	__u64 tag;            /* 0: free; else jobq_inflight_tag() */
	__u64 start_ktime_ns;
	__u32 series_id : 24; /* < JOBQ_SERIES_LIMIT */
	__u32 why : 8;        /* the start's overflow loss reason + 1, counted at finish too */
	__u32 tgid;
};

struct jobq_inflight_set {
	struct jobq_inflight_slot w[JOBQ_INFLIGHT_WAYS];
};

/* The set of a job: consecutive ids of one (pid, queue) take consecutive
 * sets, so a worker's jobs touch a few hot cache lines, not a random line
 * of the 1.5 MiB table per start (a cache miss cost ~200 ns a start here);
 * other (pid, queue) streams start elsewhere. */
static inline __attribute__((always_inline)) __u32 jobq_inflight_set_of(__u32 tgid, __u32 queue_id,
									__u64 job_id)
{
	__u64 base = ((__u64)tgid << 32 | queue_id) * 0x9e3779b97f4a7c15ull;

	return (__u32)(job_id + (base >> 40)) & (JOBQ_INFLIGHT_SETS - 1);
}

/* Never 0. Distinct jobs in one set share a tag with probability ~2^-63. */
static inline __attribute__((always_inline)) __u64 jobq_inflight_tag(__u32 tgid, __u32 queue_id,
								     __u64 job_id)
{
	__u64 h = (job_id ^ ((__u64)tgid << 32 | queue_id)) * 0x9e3779b97f4a7c15ull;

	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 29;
	return h | 1;
}

/* Loss reasons, a per-CPU array indexed by these (8 bytes a reason a CPU). */
enum jobq_loss {
	JOBQ_LOSS_RINGBUF_FULL = 0,  /* bpf_ringbuf_reserve failed: a span record lost */
	JOBQ_LOSS_MAP_FULL,          /* a counter/histogram/depth/inflight insert failed */
	JOBQ_LOSS_UNMATCHED_FINISH,  /* finish without a start seen (no duration) */
	JOBQ_LOSS_NEGATIVE_DELTA,    /* wait or duration < 0: clamped to 0 */
	JOBQ_LOSS_HIST_CLAMP,        /* value above the top bucket, clamped into it */
	JOBQ_LOSS_TENANT_OVERFLOW,   /* event of a tenant beyond the cap (overflow key) */
	JOBQ_LOSS_TYPE_OVERFLOW,     /* event of an admitted tenant's type beyond the
				      * per-tenant allowance (overflow series) */
	JOBQ_LOSS_READ_FAULT,        /* a probe string argument could not be read */
	JOBQ_LOSS_HIST_MINMAX,       /* a histogram's min or max not updated: its
				      * compare-and-swap lost JOBQ_MINMAX_TRIES races
				      * in a row (the value is in count, sum, bucket) */
	JOBQ_LOSS_KERNEL_COUNT,
	/* counted by the agent, not in the kernel array */
	JOBQ_LOSS_EXPIRED_INFLIGHT = JOBQ_LOSS_KERNEL_COUNT,
	JOBQ_LOSS_SPANS_DROPPED,     /* spans not built or not delivered (= SpanBatch.dropped_spans) */
	JOBQ_LOSS_COUNT,
};

enum jobq_event_kind {
	JOBQ_EV_ENQUEUE = 1,
	JOBQ_EV_START = 2,
	JOBQ_EV_FINISH = 3,
};

/* Common head of every ring-buffer record (72 bytes). */
#define JOBQ_EVENT_HEADER                                                      \
	__u64 ktime_ns;                                                        \
	__u64 job_id;                                                          \
	__u64 enqueued_unix_ns; /* enqueue, start */                           \
	__u64 trace_hi;         /* enqueue, start: the enqueue span's context */ \
	__u64 trace_lo;                                                        \
	__u64 span_id;                                                         \
	__u64 parent_span_id;   /* enqueue: the producer's span, 0 if none */  \
	__u32 tgid;                                                            \
	__u32 attempt;          /* start, finish */                            \
	__u8 kind;              /* enum jobq_event_kind */                     \
	__u8 priority;                                                         \
	__u8 status;            /* finish */                                   \
	__u8 trace_flags;       /* enqueue, start */                           \
	__u32 queue_id          /* jobq_queue_ref() of the queue argument */

/*
 * A span-building event as the agent handles it. In the ring buffer an
 * enqueue or start record is its first JOBQ_EVENT_REC_SIZE bytes (no
 * error text); a finish record is a struct jobq_finish_rec (no strings but
 * the error: the agent takes them from the start), of which a successful
 * finish carries only the header (JOBQ_FINISH_REC_OK_SIZE bytes). Smaller records keep
 * the ring buffer's headroom for bursts. Strings are NUL-terminated; the
 * series carries the real queue and tenant even beyond the tenant cap.
 */
struct jobq_event {
	JOBQ_EVENT_HEADER;
	struct jobq_series s; /* with the queue name */
	char error[JOBQ_STR_ERROR]; /* finish; "" on success */
	__u8 pad1[7];
};

#define JOBQ_EVENT_REC_SIZE offsetof(struct jobq_event, error)

struct jobq_finish_rec {
	JOBQ_EVENT_HEADER;
	char error[JOBQ_STR_ERROR];
	__u8 pad1[7];
};

#define JOBQ_FINISH_REC_OK_SIZE offsetof(struct jobq_finish_rec, error)

#endif /* JOBQ_BPF_H */
