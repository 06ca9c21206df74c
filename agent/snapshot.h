/*
 * snapshot.h - one cumulative reading of the kernel maps (counters and
 * histograms from the shared arrays, depth reports, losses summed over
 * CPUs), the model every
 * output (--json, --top, sidecar frames) is rendered from; plus the names
 * the outputs use for metrics, priorities, statuses and loss reasons.
 */
#ifndef JOBQ_AGENT_SNAPSHOT_H
#define JOBQ_AGENT_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "bpf/jobq.h"

struct snap_counter {
	struct jobq_ctr_key key;
	uint64_t value;
};

struct snap_hist {
	struct jobq_hist_key key;
	struct jobq_hist_val val;
};

struct snap_depth {
	struct jobq_depth_key key;
	struct jobq_depth_val val;
	uint64_t observed_unix_ns; /* val.ktime_ns converted to wall-clock */
};

struct snapshot {
	uint64_t time_unix_ns;
	struct snap_counter *counters;
	size_t ncounters, max_counters;
	struct snap_hist *hists;
	size_t nhists, max_hists;
	struct snap_depth *depths;
	size_t ndepths, max_depths;
	uint64_t losses[JOBQ_LOSS_COUNT];
};

struct snap_maps {
	int series, depths, losses; /* map fds */
	/* The arrays indexed by series id, mapped (BPF_F_MMAPABLE), nseries
	 * entries each: read in place while the kernel updates them. */
	const struct jobq_counters *counters;
	const struct jobq_hists *hists;
	uint32_t nseries;
};

/* Allocates room for at most these many entries (bounded memory): a
 * snapshot keeps the non-zero cells only. 0 or -1. */
int snapshot_init(struct snapshot *s, size_t max_counters, size_t max_hists,
		  size_t max_depths);
void snapshot_free(struct snapshot *s);

/*
 * Reads every map into s (replacing its contents). realtime_offset_ns
 * converts kernel times to wall-clock; agent_losses are the losses the
 * agent counts itself (JOBQ_LOSS_KERNEL_COUNT..). 0, or -1 with err.
 */
int snapshot_read(struct snapshot *s, const struct snap_maps *m, uint64_t realtime_offset_ns,
		  const uint64_t agent_losses[JOBQ_LOSS_COUNT], char *err, size_t errlen);

/*
 * A histogram as exported, from the kernel's cells (jobq.h, struct
 * jobq_hist_cells), possibly being updated meanwhile. Read in the reverse
 * of the kernel's write order (zero count and buckets, then the sum, then
 * min and max), so every value counted has its min/max and sum in what was
 * read: count = zero_count + the buckets (always consistent), min <= every
 * value counted <= max; the sum may already hold the few values being
 * recorded at that instant. Empty: all zero.
 */
void jobq_hist_decode(const struct jobq_hist_cells *k, struct jobq_hist_val *v);

const char *snap_metric_name(unsigned int metric);     /* "jobs.enqueued", ... */
const char *snap_priority_name(unsigned int prio);     /* "high" ... or "" */
const char *snap_status_name(unsigned int metric, unsigned int status); /* "success" ... or "" */
const char *snap_loss_name(unsigned int reason);       /* "ringbuf_full", ... */
const char *snap_hist_name(unsigned int kind);         /* "jobs.wait_time" | "jobs.duration" */

#endif
