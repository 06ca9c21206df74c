/*
 * hist.h - user-space side of the histogram mapping (bpf/jobq_hist.h):
 * the exact boundary table the BPF programs index with, and reading
 * quantiles back out of exported buckets. Pure functions, no I/O.
 */
#ifndef JOBQ_AGENT_HIST_H
#define JOBQ_AGENT_HIST_H

#include <stdint.h>

#include "bpf/jobq_hist.h"

/*
 * Fills bounds[0 .. JOBQ_HIST_TABLE_SIZE) with
 *   bounds[k] = floor(1e6 * 2^((JOBQ_HIST_INDEX_MIN + k) / 8))  (k <= NBUCKETS)
 * computed exactly (x = floor(B) iff x^8 <= 1e48 * 2^i < (x+1)^8, checked
 * with multi-precision integers), and UINT64_MAX after. Returns 0, or -1
 * if the floating-point estimate was off by more than it can correct
 * (never expected; the caller must not load a wrong table).
 */
int jobq_hist_table_fill(__u64 bounds[JOBQ_HIST_TABLE_SIZE]);

/*
 * Exact comparison of v ns against the boundary of bucket index i, i.e.
 * the sign of v - 1e6 * 2^(i/8): -1, 0 or 1. The reference the unit test
 * checks jobq_hist_index() against.
 */
int jobq_hist_cmp_boundary(uint64_t v_ns, int index);

/* Upper bound in ms of the bucket at position pos: 2^((INDEX_MIN+pos+1)/8). */
double jobq_hist_upper_ms(int pos);
/* Lower bound in ms of the bucket at position pos. */
double jobq_hist_lower_ms(int pos);

/*
 * Position of the bucket holding the q-quantile (0 < q <= 1) of a
 * histogram with zero_count values in the zero bucket and counts[] per
 * position: the bucket where the cumulative count first reaches
 * ceil(q * total). Returns JOBQ_HIST_ZERO for the zero bucket, or -2 if
 * the histogram is empty.
 */
int jobq_hist_quantile_pos(const uint64_t counts[JOBQ_HIST_NBUCKETS], uint64_t zero_count,
			   double q);

/* A representative value in ms for a position (geometric bucket middle; 0
 * for JOBQ_HIST_ZERO), for display. */
double jobq_hist_pos_ms(int pos);

#endif /* JOBQ_AGENT_HIST_H */
