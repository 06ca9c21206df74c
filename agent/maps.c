/*
 * maps.c - sizes and kernel memory of the jobq maps (see maps.h).
 */
#include "agent/maps.h"

#include <bpf/libbpf.h>

#include "bpf/jobq.skel.h"

int maps_configure(struct jobq_bpf *skel, unsigned int tenant_cap, unsigned int max_series,
		   int spans)
{
	int e = bpf_map__set_max_entries(skel->maps.tenants, tenant_cap);

	if (!e)
		e = bpf_map__set_max_entries(skel->maps.series, max_series);
	if (!e)
		e = bpf_map__set_max_entries(skel->maps.counters, max_series);
	if (!e)
		e = bpf_map__set_max_entries(skel->maps.hists, max_series);
	if (!e && !spans) /* no spans: keep the ring buffer minimal */
		e = bpf_map__set_max_entries(skel->maps.events, 4096);
	return e;
}

static uint64_t round8(uint64_t n)
{
	return (n + 7) / 8 * 8;
}

void kmem_of_object(const struct bpf_object *obj, struct kmem *k)
{
	struct bpf_map *m;

	k->shared = k->per_cpu = 0;
	bpf_object__for_each_map(m, obj) {
		uint64_t n = bpf_map__max_entries(m);
		uint64_t key = round8(bpf_map__key_size(m)) * n;
		uint64_t val = round8(bpf_map__value_size(m)) * n;

		switch (bpf_map__type(m)) {
		case BPF_MAP_TYPE_RINGBUF:
		case BPF_MAP_TYPE_USER_RINGBUF:
			k->shared += n; /* max_entries is the size in bytes */
			break;
		case BPF_MAP_TYPE_PERCPU_ARRAY:
			k->per_cpu += val;
			break;
		case BPF_MAP_TYPE_PERCPU_HASH:
		case BPF_MAP_TYPE_LRU_PERCPU_HASH:
			k->shared += key;
			k->per_cpu += val;
			break;
		case BPF_MAP_TYPE_HASH:
		case BPF_MAP_TYPE_LRU_HASH:
			k->shared += key + val;
			break;
		default:
			k->shared += val;
			break;
		}
	}
}
