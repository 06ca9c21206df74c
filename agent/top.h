/*
 * top.h - the per-tenant rows of `jobq-agent --top`, computed from two
 * consecutive snapshots (pure), and their rendering as a terminal table.
 */
#ifndef JOBQ_AGENT_TOP_H
#define JOBQ_AGENT_TOP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/snapshot.h"

/* A row per (queue, tenant); the overflow row has no queue. */
struct top_row {
	char queue[JOBQ_STR_QUEUE];
	char tenant[JOBQ_STR_TENANT];
	int overflow;
	uint64_t processed;     /* cumulative, all statuses */
	double jobs_per_s;      /* since the previous snapshot */
	double wait_p50_ms, wait_p99_ms, dur_p99_ms; /* < 0: no data */
	uint64_t depth;         /* ready jobs, all priorities */
	double oldest_age_ms;   /* oldest waiting job at the last report */
	uint64_t failures;      /* handler runs that failed */
};

/*
 * Fills rows (at most max) from s, one per (queue, tenant); prev (NULL for
 * the first) gives rates over elapsed_s. Returns the number of rows,
 * busiest first.
 */
size_t top_rows(const struct snapshot *s, const struct top_row *prev, size_t nprev,
		double elapsed_s, struct top_row *rows, size_t max);

/* The most rows s can make (room for every one of them). */
size_t top_rows_max(const struct snapshot *s);

/* Prints the first limit rows (0: all), then "... N more tenants"; with a
 * QUEUE column when the rows name more than one queue. */
void top_print(FILE *out, const struct top_row *rows, size_t n, size_t limit,
	       const uint64_t *losses, const char *target);

#endif
