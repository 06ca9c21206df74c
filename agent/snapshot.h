/*
 * snapshot.h - one cumulative reading of the kernel maps (counters,
 * histograms summed over CPUs, depth reports, losses), the model every
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
	int series, counters, hists, depths, losses; /* map fds */
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

const char *snap_metric_name(unsigned int metric);     /* "jobs.enqueued", ... */
const char *snap_priority_name(unsigned int prio);     /* "high" ... or "" */
const char *snap_status_name(unsigned int metric, unsigned int status); /* "success" ... or "" */
const char *snap_loss_name(unsigned int reason);       /* "ringbuf_full", ... */
const char *snap_hist_name(unsigned int kind);         /* "jobs.wait_time" | "jobs.duration" */

#endif
