/*
 * snapshot.c - read the BPF maps into a struct snapshot (see snapshot.h).
 */
#include "agent/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

int snapshot_init(struct snapshot *s, size_t max_counters, size_t max_hists,
		  size_t max_depths)
{
	memset(s, 0, sizeof(*s));
	s->counters = calloc(max_counters, sizeof(*s->counters));
	s->hists = calloc(max_hists, sizeof(*s->hists));
	s->depths = calloc(max_depths, sizeof(*s->depths));
	if (!s->counters || !s->hists || !s->depths) {
		snapshot_free(s);
		return -1;
	}
	s->max_counters = max_counters;
	s->max_hists = max_hists;
	s->max_depths = max_depths;
	return 0;
}

void snapshot_free(struct snapshot *s)
{
	free(s->counters);
	free(s->hists);
	free(s->depths);
	memset(s, 0, sizeof(*s));
}

static int ncpus(void)
{
	static int n;

	if (!n)
		n = libbpf_num_possible_cpus();
	return n;
}

static uint64_t load(const __u64 *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

void jobq_hist_decode(const struct jobq_hist_cells *k, struct jobq_hist_val *v)
{
	uint64_t n, inv;

	n = v->zero_count = load(&k->zero_count);
	for (int b = 0; b < JOBQ_HIST_NBUCKETS; b++)
		n += v->buckets[b] = load(&k->buckets[b]);
	v->count = n;
	v->sum_ns = load(&k->sum_ns);
	inv = load(&k->min_inv);
	v->max_ns = load(&k->max_ns);
	/* inv is 0 only before any value; with values counted that can only
	 * be a CPU that reorders stores (not x86-64): 0 is a safe bound. */
	v->min_ns = inv ? ~inv : 0;
	if (!n)
		v->sum_ns = v->min_ns = v->max_ns = 0;
}

/* One series' counters as non-zero counter entries. */
static void add_counters(struct snapshot *s, const struct jobq_series *key,
			 const struct jobq_counters *ctr)
{
	for (int m = 0; m < JOBQ_M_COUNT; m++)
		for (int p = 0; p < JOBQ_PRIO_SLOTS; p++)
			for (int st = 0; st < JOBQ_STATUS_SLOTS; st++) {
				uint64_t v = __atomic_load_n(&ctr->c[JOBQ_CTR_CELL(m, p, st)],
							     __ATOMIC_RELAXED);
				struct snap_counter *c;

				if (!v || s->ncounters == s->max_counters)
					continue;
				c = &s->counters[s->ncounters++];
				memset(c, 0, sizeof(*c));
				c->key.s = *key;
				c->key.metric = (__u8)m;
				c->key.priority = p < JOBQ_PRIO_COUNT ? (__u8)p : JOBQ_NO_PRIORITY;
				c->key.status = st < JOBQ_STATUS_SLOTS - 1 ? (__u8)st : JOBQ_NO_STATUS;
				c->value = v;
			}
}

static void add_hists(struct snapshot *s, const struct jobq_series *key,
		      const struct jobq_hists *hs)
{
	for (int k = 0; k < JOBQ_H_COUNT; k++) {
		struct snap_hist *h;

		if (s->nhists == s->max_hists)
			return;
		h = &s->hists[s->nhists];
		memset(h, 0, sizeof(*h));
		jobq_hist_decode(&hs->h[k], &h->val);
		if (!h->val.count)
			continue;
		h->key.s = *key;
		h->key.kind = (__u8)k;
		s->nhists++;
	}
}

/* Every series: its id from the series map, its values from the arrays. */
static int read_series(struct snapshot *s, const struct snap_maps *m, char *err,
		       size_t errlen)
{
	struct jobq_series key, next;
	void *prev = NULL;
	int r;

	s->ncounters = s->nhists = 0;
	while ((r = bpf_map_get_next_key(m->series, prev, &next)) == 0) {
		__u32 id;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(m->series, &key, &id))
			continue; /* cannot happen: series are never deleted */
		if (id >= m->nseries) {
			snprintf(err, errlen, "series id %u beyond the %u-entry arrays", id,
				 m->nseries);
			return -1;
		}
		add_counters(s, &key, &m->counters[id]);
		add_hists(s, &key, &m->hists[id]);
	}
	if (r && errno != ENOENT) {
		snprintf(err, errlen, "read series map: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int read_depths(struct snapshot *s, int fd, uint64_t offset, char *err, size_t errlen)
{
	struct jobq_depth_key key, next;
	void *prev = NULL;
	int r;

	s->ndepths = 0;
	while ((r = bpf_map_get_next_key(fd, prev, &next)) == 0) {
		struct snap_depth *d;

		key = next;
		prev = &key;
		if (s->ndepths == s->max_depths)
			break;
		d = &s->depths[s->ndepths];
		if (bpf_map_lookup_elem(fd, &key, &d->val))
			continue;
		d->key = key;
		d->observed_unix_ns = d->val.ktime_ns + offset;
		s->ndepths++;
	}
	if (r && errno != ENOENT) {
		snprintf(err, errlen, "read depth map: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int snapshot_read(struct snapshot *s, const struct snap_maps *m, uint64_t realtime_offset_ns,
		  const uint64_t agent_losses[JOBQ_LOSS_COUNT], char *err, size_t errlen)
{
	size_t n = (size_t)ncpus();
	struct timespec ts;
	uint64_t *lbuf;
	int rc = -1;

	if (ncpus() <= 0) {
		snprintf(err, errlen, "cannot count possible CPUs");
		return -1;
	}
	lbuf = calloc(n, sizeof(*lbuf));
	if (!lbuf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	s->time_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (read_series(s, m, err, errlen) ||
	    read_depths(s, m->depths, realtime_offset_ns, err, errlen))
		goto out;
	for (__u32 r = 0; r < JOBQ_LOSS_KERNEL_COUNT; r++) {
		s->losses[r] = 0;
		if (bpf_map_lookup_elem(m->losses, &r, lbuf)) {
			snprintf(err, errlen, "read loss map: %s", strerror(errno));
			goto out;
		}
		for (size_t c = 0; c < n; c++)
			s->losses[r] += lbuf[c];
	}
	for (int r = JOBQ_LOSS_KERNEL_COUNT; r < JOBQ_LOSS_COUNT; r++)
		s->losses[r] = agent_losses[r];
	rc = 0;
out:
	free(lbuf);
	return rc;
}

const char *snap_metric_name(unsigned int metric)
{
	static const char *const names[JOBQ_M_COUNT] = {
		[JOBQ_M_ENQUEUED] = "jobs.enqueued",
		[JOBQ_M_STARTED] = "jobs.started",
		[JOBQ_M_PROCESSED] = "jobs.processed",
		[JOBQ_M_RETRIED] = "jobs.retried",
		[JOBQ_M_DEAD_LETTERED] = "jobs.dead_lettered",
		[JOBQ_M_REAPED] = "jobs.reaped",
		[JOBQ_M_RELEASED] = "jobs.released",
	};

	return metric < JOBQ_M_COUNT ? names[metric] : "jobs.unknown";
}

const char *snap_priority_name(unsigned int prio)
{
	static const char *const names[JOBQ_PRIO_COUNT] = { "high", "normal", "low" };

	return prio < JOBQ_PRIO_COUNT ? names[prio] : "";
}

const char *snap_status_name(unsigned int metric, unsigned int status)
{
	switch (metric) {
	case JOBQ_M_PROCESSED:
		return status == JOBQ_STATUS_SUCCESS ? "success" : "failed";
	case JOBQ_M_RELEASED:
		return "released";
	case JOBQ_M_RETRIED:
		return "retry";
	case JOBQ_M_DEAD_LETTERED:
		return "dead_letter";
	default:
		return "";
	}
}

const char *snap_loss_name(unsigned int reason)
{
	static const char *const names[JOBQ_LOSS_COUNT] = {
		[JOBQ_LOSS_RINGBUF_FULL] = "ringbuf_full",
		[JOBQ_LOSS_MAP_FULL] = "map_full",
		[JOBQ_LOSS_UNMATCHED_FINISH] = "unmatched_finish",
		[JOBQ_LOSS_NEGATIVE_DELTA] = "negative_delta",
		[JOBQ_LOSS_HIST_CLAMP] = "histogram_clamp",
		[JOBQ_LOSS_TENANT_OVERFLOW] = "tenant_overflow",
		[JOBQ_LOSS_TYPE_OVERFLOW] = "type_overflow",
		[JOBQ_LOSS_READ_FAULT] = "read_fault",
		[JOBQ_LOSS_HIST_MINMAX] = "histogram_minmax",
		[JOBQ_LOSS_EXPIRED_INFLIGHT] = "expired_inflight",
		[JOBQ_LOSS_SPANS_DROPPED] = "spans_dropped",
	};

	return reason < JOBQ_LOSS_COUNT ? names[reason] : "unknown";
}

const char *snap_hist_name(unsigned int kind)
{
	return kind == JOBQ_H_WAIT ? "jobs.wait_time" : "jobs.duration";
}
