/*
 * maps.h - the kernel maps of the jobq BPF object: their sizes, set from
 * the limits between open and load (the agent and the tests share this),
 * and the kernel memory they take, computed from the map definitions.
 */
#ifndef JOBQ_AGENT_MAPS_H
#define JOBQ_AGENT_MAPS_H

#include <stdint.h>

#include "bpf/jobq.h"

struct bpf_object;
struct jobq_bpf;

/* Kernel memory of one series: its counters and both histograms, one copy
 * shared by every CPU. */
#define JOBQ_SERIES_BYTES (sizeof(struct jobq_counters) + sizeof(struct jobq_hists))
/* ... and with its entry in the series map: the (queue, tenant, type) key
 * and the 4-byte id, stored 8-byte rounded (the docs' S x 5,912 B). */
#define JOBQ_SERIES_KMEM (JOBQ_SERIES_BYTES + sizeof(struct jobq_series) + 8)

/*
 * Sizes the maps of an opened (not yet loaded) skeleton: the series table
 * and the arrays indexed by series id hold max_series entries, the tenant
 * map tenant_cap; without spans the ring buffer is minimal. 0 or a
 * negative errno.
 */
int maps_configure(struct jobq_bpf *skel, unsigned int tenant_cap, unsigned int max_series,
		   int spans);

/* Kernel memory of an object's maps, in bytes: what every CPU shares, and
 * what each CPU has a copy of (per-CPU maps). */
struct kmem {
	uint64_t shared;
	uint64_t per_cpu;
};

/*
 * From the map definitions (valid before load, after maps_configure()):
 * each map's value_size x max_entries, key_size x max_entries more for hash
 * maps (their keys are stored too), a ring buffer's size; per-CPU maps
 * count their values in per_cpu. Rounded to 8 bytes as the kernel stores
 * them. The kernel's own bookkeeping (hash buckets and element headers,
 * page rounding) is not included.
 */
void kmem_of_object(const struct bpf_object *obj, struct kmem *k);

static inline uint64_t kmem_total(const struct kmem *k, unsigned int ncpus)
{
	return k->shared + k->per_cpu * ncpus;
}

#endif
