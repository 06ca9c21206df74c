/*
 * json.h - render a snapshot as one JSON document (jobq-agent --json).
 * Histogram values in ms as exported; buckets as OTLP offset + counts.
 */
#ifndef JOBQ_AGENT_JSON_H
#define JOBQ_AGENT_JSON_H

#include <stdio.h>

#include "agent/maps.h"
#include "agent/snapshot.h"

/* Writes s to f, with the kernel memory of the maps (km, for ncpus
 * CPUs); returns 0 or -1 (write error, errno set). */
int json_write_snapshot(FILE *f, const struct snapshot *s, const char *target,
			uint64_t agent_start_unix_ns, uint64_t spans_built, uint64_t spans_dropped,
			const struct kmem *km, unsigned int ncpus);

#endif
