/*
 * jobq_hist.h - the histogram bucket mapping, compiled into the BPF
 * programs AND into user space (agent, tests), so both sides index a value
 * with the very same code.
 *
 * Mapping: OTLP base-2 exponential histogram at scale 3 (base 2^(1/8),
 * relative error <= 2^(1/16) - 1 = 4.4%), unit milliseconds. Bucket index
 * i covers (2^(i/8), 2^((i+1)/8)] ms; an exact power of two is the upper
 * bound of the bucket below it.
 *
 * The kernel measures integer nanoseconds and 1e6 is not a power of two,
 * so the mapping is done exactly with a table of boundaries in ns:
 *   bounds[k] = floor(1e6 * 2^((JOBQ_HIST_INDEX_MIN + k) / 8))
 * for k = 0 .. JOBQ_HIST_NBUCKETS (computed exactly with integer
 * arithmetic by jobq_hist_table_fill() in agent/hist.c; the agent puts it
 * in the BPF program's read-only data before load). For an integer v,
 * v > 1e6*2^(i/8) <=> v > floor(1e6*2^(i/8)), hence
 *   v is in bucket (INDEX_MIN + k)  <=>  bounds[k] < v <= bounds[k+1].
 * Entries past JOBQ_HIST_NBUCKETS up to JOBQ_HIST_TABLE_SIZE are ~0, so a
 * fixed 9-step binary search never needs a bounds check.
 *
 * Supported range: (bounds[0], bounds[NBUCKETS]] = (976 ns, ~37.3 h].
 * Values <= bounds[0] go to the zero bucket (zero_threshold = 2^-10 ms);
 * values above the top are clamped into the top bucket by the caller and
 * counted as a loss.
 */
#ifndef JOBQ_HIST_H
#define JOBQ_HIST_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define JOBQ_HIST_SCALE 3
#define JOBQ_HIST_INDEX_MIN (-80) /* lowest bucket: (2^-10, 2^(-79/8)] ms */
#define JOBQ_HIST_NBUCKETS 296    /* indexes -80 .. 215; top ends at 2^27 ms */
#define JOBQ_HIST_TABLE_SIZE 512  /* >= NBUCKETS + 1, a power of two */
#define JOBQ_HIST_SEARCH_STEPS 9  /* log2(TABLE_SIZE) */
#define JOBQ_HIST_ZERO (-1)       /* result: value goes to zero_count */
#define JOBQ_HIST_ABOVE JOBQ_HIST_NBUCKETS /* result: above the top bucket */

/*
 * Position (0 .. NBUCKETS-1; bucket index = INDEX_MIN + position) of the
 * bucket holding v ns, or JOBQ_HIST_ZERO, or JOBQ_HIST_ABOVE.
 */
static inline __attribute__((always_inline)) int
jobq_hist_index(const volatile __u64 *bounds, __u64 v)
{
	unsigned int pos = 0;

	if (v <= bounds[0])
		return JOBQ_HIST_ZERO;
	/* Largest pos with bounds[pos] < v (bounds[0] < v holds). */
	for (unsigned int step = JOBQ_HIST_TABLE_SIZE / 2; step; step >>= 1) {
		unsigned int probe = (pos + step) & (JOBQ_HIST_TABLE_SIZE - 1);

		if (bounds[probe] < v)
			pos = probe;
	}
	if (pos >= JOBQ_HIST_NBUCKETS)
		return JOBQ_HIST_ABOVE;
	return (int)pos;
}

#endif /* JOBQ_HIST_H */
