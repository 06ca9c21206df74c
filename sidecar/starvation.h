/*
 * starvation.h - the seed's queue starvation check, on the agents' data.
 *
 * A tenant is starving when its jobs.oldest_job_age gauge (ms, reported by
 * the worker through the agent) exceeds the threshold. Every export interval
 * the sidecar emits a `jobs.starvation_check` span (INTERNAL, its own trace)
 * with `jobs.starving_tenant_count` and, when that is > 0, one event "Queue
 * starvation detected" whose `affected_tenants` is the sorted, comma-joined
 * list of tenant ids (deduplicated across agents and priorities).
 */
#ifndef SC_STARVATION_H
#define SC_STARVATION_H

#include <stddef.h>
#include <stdint.h>

#include "sidecar/arena.h"
#include "sidecar/otlp.h"
#include "sidecar/store.h"

#define SC_STARVATION_METRIC "jobs.oldest_job_age"
#define SC_AFFECTED_TENANTS_MAX 8192 /* bytes of the event attribute */

/* Sorted unique starving tenants joined by ',' into csv (truncated at a
 * tenant boundary if it does not fit; *truncated is then set). Returns the
 * number of starving tenants (all of them, even if truncated). */
size_t sc_starvation_find(const struct sc_store *s, double threshold_ms, char *csv, size_t csvsz,
			  int *truncated);

/* The check span, in the arena; NULL on exhaustion. */
sc_otlp_span *sc_starvation_span(struct sc_arena *a, const struct sc_store *s, double threshold_ms,
				 uint64_t start_ns, uint64_t end_ns, const uint8_t trace_id[16],
				 const uint8_t span_id[8]);

#endif
