/*
 * spans.c - span building from ring-buffer records (see spans.h).
 */
#include "agent/spans.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/*
 * Starts awaiting their finish: a compact open-addressing index (24-byte
 * slots, linear probing) over a pool of start records. The index is what a
 * lookup walks, so it is small and grows with the starts in flight (from
 * 64 slots, doubling at load 1/2, up to 2 x the limit: 3 MiB at 65536
 * starts), where slots of whole records (416 bytes) made every lookup a
 * cache and TLB miss in a 55 MiB table; pool entries are reused
 * last-freed-first, so the records of the jobs in flight stay hot and
 * untouched memory is never faulted in.
 */
struct slot {
	uint64_t job_id;
	uint32_t tgid, queue_id;
	uint32_t pool; /* index into pool + 1; 0: empty slot */
	uint32_t pad;
};

struct pooled {
	struct jobq_event start;
	uint64_t seq; /* insertion order, to evict the oldest */
};

struct victim {
	uint64_t job_id;
	uint32_t tgid, queue_id;
};

struct span_builder {
	struct slot *idx;       /* cap_idx slots, load <= 1/2 */
	size_t npend, cap_idx, max_idx, max_pend;
	struct pooled *pool;    /* max_pend records */
	uint32_t *free_pool;    /* stack of free pool entries */
	size_t nfree;
	struct victim *victims; /* scratch for evict_oldest, max_pend entries */
	uint64_t seq;
	struct span *q;         /* ring of finished spans */
	size_t qhead, qlen, cap_q;
	uint64_t rng[2];        /* xorshift128+ */
	uint64_t built, dropped;
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t next_rand(struct span_builder *b)
{
	uint64_t s1 = b->rng[0];
	const uint64_t s0 = b->rng[1];

	b->rng[0] = s0;
	s1 ^= s1 << 23;
	b->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return b->rng[1] + s0;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* A random non-zero id (all-zero ids are invalid in W3C/OTLP). */
static void random_id(struct span_builder *b, uint8_t *p, size_t len)
{
	uint64_t any;

	do {
		any = 0;
		for (size_t i = 0; i < len; i += 8) {
			uint64_t r = next_rand(b);

			put_be64(p + i, r);
			any |= r;
		}
	} while (!any);
}

struct span_builder *span_builder_new(size_t pending, size_t queued, uint64_t seed)
{
	struct span_builder *b = calloc(1, sizeof(*b));

	if (!b || pending == 0 || pending > UINT32_MAX / 2 || queued == 0)
		goto fail;
	b->max_pend = pending;
	b->max_idx = 64;
	while (b->max_idx < pending * 2) /* load factor <= 1/2 */
		b->max_idx *= 2;
	b->cap_idx = 64;
	b->idx = calloc(b->cap_idx, sizeof(*b->idx));
	/* malloc, not calloc: pool pages are touched only when used. */
	b->pool = malloc(pending * sizeof(*b->pool));
	b->free_pool = malloc(pending * sizeof(*b->free_pool));
	b->victims = calloc(pending, sizeof(*b->victims));
	b->q = calloc(queued, sizeof(*b->q));
	if (!b->idx || !b->pool || !b->free_pool || !b->victims || !b->q)
		goto fail;
	for (size_t i = 0; i < pending; i++) /* entry 0 on top */
		b->free_pool[i] = (uint32_t)(pending - 1 - i);
	b->nfree = pending;
	b->cap_q = queued;
	b->rng[0] = splitmix(&seed);
	b->rng[1] = splitmix(&seed);
	return b;
fail:
	span_builder_free(b);
	return NULL;
}

void span_builder_free(struct span_builder *b)
{
	if (!b)
		return;
	free(b->idx);
	free(b->pool);
	free(b->free_pool);
	free(b->victims);
	free(b->q);
	free(b);
}

/* Starts and finishes pair by (pid, queue, job id), as in the kernel: job
 * ids are unique only within a queue. */
static size_t slot_of(const struct span_builder *b, uint32_t tgid, uint32_t queue_id,
		      uint64_t job_id)
{
	uint64_t h = job_id * 0x9e3779b97f4a7c15ull ^ ((uint64_t)tgid << 32 | queue_id);

	h *= 0xbf58476d1ce4e5b9ull;
	return (size_t)(h ^ (h >> 29)) & (b->cap_idx - 1);
}

static struct slot *find(struct span_builder *b, uint32_t tgid, uint32_t queue_id,
			 uint64_t job_id)
{
	for (size_t i = slot_of(b, tgid, queue_id, job_id), n = 0; n < b->cap_idx;
	     i = (i + 1) & (b->cap_idx - 1), n++) {
		struct slot *p = &b->idx[i];

		if (!p->pool)
			return NULL;
		if (p->job_id == job_id && p->tgid == tgid && p->queue_id == queue_id)
			return p;
	}
	return NULL;
}

/* Doubles the index (at load 1/2, up to max_idx); 0, or -1 when out of
 * memory (the index then stays as it is, fuller). */
static int grow(struct span_builder *b)
{
	size_t cap = b->cap_idx * 2;
	struct slot *old = b->idx, *idx = calloc(cap, sizeof(*idx));

	if (!idx)
		return -1;
	b->idx = idx;
	b->cap_idx = cap;
	for (size_t i = 0; i < cap / 2; i++) {
		size_t j;

		if (!old[i].pool)
			continue;
		for (j = slot_of(b, old[i].tgid, old[i].queue_id, old[i].job_id); idx[j].pool;
		     j = (j + 1) & (cap - 1))
			;
		idx[j] = old[i];
	}
	free(old);
	return 0;
}

static struct pooled *pooled_of(struct span_builder *b, const struct slot *p)
{
	return &b->pool[p->pool - 1];
}

/* Frees the slot and its record; deletion with backward shift keeps probe
 * chains intact. */
static void remove_at(struct span_builder *b, struct slot *p)
{
	size_t i = (size_t)(p - b->idx), j = i;

	b->free_pool[b->nfree++] = p->pool - 1;
	b->idx[i].pool = 0;
	b->npend--;
	for (;;) {
		size_t home;

		j = (j + 1) & (b->cap_idx - 1);
		if (!b->idx[j].pool)
			return;
		home = slot_of(b, b->idx[j].tgid, b->idx[j].queue_id, b->idx[j].job_id);
		/* Move j into the hole i unless home lies cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			b->idx[i] = b->idx[j];
			b->idx[j].pool = 0;
			i = j;
		}
	}
}

/*
 * The table is full (starts whose finish never came: a killed worker, a
 * finish record lost to a full ring buffer). Evicts, oldest first, every
 * start not among the newest max_pend - max_pend/16 insertions: at least
 * one and usually max_pend/16 entries per scan of the pool, so a full
 * table costs O(1) amortised per start, not a whole scan per start (which
 * was ~1 ms at 65536 entries, a rate no worker fleet would survive).
 */
static void evict_oldest(struct span_builder *b)
{
	size_t batch = b->max_pend / 16 ? b->max_pend / 16 : 1, n = 0;
	uint64_t keep = b->max_pend - batch, cut = b->seq > keep ? b->seq - keep : 0;

	/* Distinct seqs all below b->seq: at most keep entries have seq >= cut.
	 * A full table has every pool entry in use. */
	for (size_t i = 0; i < b->cap_idx && n < b->max_pend; i++)
		if (b->idx[i].pool && pooled_of(b, &b->idx[i])->seq < cut)
			b->victims[n++] = (struct victim){ b->idx[i].job_id, b->idx[i].tgid,
							   b->idx[i].queue_id };
	/* Removal shifts entries, so look each victim up again. */
	for (size_t i = 0; i < n; i++) {
		struct slot *p = find(b, b->victims[i].tgid, b->victims[i].queue_id,
				      b->victims[i].job_id);

		if (p) {
			remove_at(b, p);
			b->dropped++;
		}
	}
}

/* What a start needs kept: everything before the error text (a start has
 * none); about half the record, copied on every start. */
#define START_SIZE offsetof(struct jobq_event, error)

static void add_start(struct span_builder *b, const struct jobq_event *e)
{
	struct slot *p = find(b, e->tgid, e->queue_id, e->job_id);
	struct pooled *r;
	size_t i;

	if (p) { /* the same job started again in this process: newest wins */
		r = pooled_of(b, p);
		memcpy(&r->start, e, START_SIZE);
		r->seq = b->seq++;
		return;
	}
	if (b->npend >= b->max_pend || !b->nfree)
		evict_oldest(b); /* a start whose finish never came */
	/* Grow before the insert would pass load 1/2. Out of memory, the
	 * table gets fuller; with no free slot left, the start is not kept
	 * (its finish then counts as dropped). */
	if ((b->npend + 1) * 2 > b->cap_idx && b->cap_idx < b->max_idx)
		grow(b);
	if (b->npend + 1 >= b->cap_idx)
		return;
	for (i = slot_of(b, e->tgid, e->queue_id, e->job_id); b->idx[i].pool;
	     i = (i + 1) & (b->cap_idx - 1))
		;
	b->idx[i] = (struct slot){ .job_id = e->job_id, .tgid = e->tgid, .queue_id = e->queue_id,
				   .pool = b->free_pool[--b->nfree] + 1 };
	r = pooled_of(b, &b->idx[i]);
	memcpy(&r->start, e, START_SIZE);
	r->seq = b->seq++;
	b->npend++;
}

/* Index of the n-th queued span (n <= cap_q): no division per span. */
static size_t ring_at(const struct span_builder *b, size_t n)
{
	size_t i = b->qhead + n;

	return i >= b->cap_q ? i - b->cap_q : i;
}

static struct span *enqueue_span(struct span_builder *b)
{
	struct span *s;

	if (b->qlen == b->cap_q) { /* full: drop the oldest */
		b->qhead = ring_at(b, 1);
		b->qlen--;
		b->dropped++;
	}
	s = &b->q[ring_at(b, b->qlen)];
	b->qlen++;
	b->built++;
	memset(s, 0, sizeof(*s));
	return s;
}

static void copy_strings(struct span *s, const struct jobq_event *e)
{
	memcpy(s->tenant, e->s.tenant, sizeof(s->tenant));
	memcpy(s->type, e->s.type, sizeof(s->type));
	memcpy(s->queue, e->s.queue, sizeof(s->queue));
	s->tenant[sizeof(s->tenant) - 1] = '\0';
	s->type[sizeof(s->type) - 1] = '\0';
	s->queue[sizeof(s->queue) - 1] = '\0';
}

static void add_enqueue(struct span_builder *b, const struct jobq_event *e, uint64_t offset)
{
	struct span *s;

	if (!(e->trace_hi | e->trace_lo) || !e->span_id)
		return; /* the job carries no trace context: nothing to name the span by */
	s = enqueue_span(b);
	s->kind = SPAN_ENQUEUE;
	put_be64(s->trace_id, e->trace_hi);
	put_be64(s->trace_id + 8, e->trace_lo);
	put_be64(s->span_id, e->span_id);
	if (e->parent_span_id) { /* a child of the producer's traceparent span */
		s->has_parent = 1;
		put_be64(s->parent_span_id, e->parent_span_id);
	}
	s->end_unix_ns = e->ktime_ns + offset;
	/* The probe fires once Redis accepted the job; the span starts at the
	 * enqueue time recorded in the job (when it is plausible). */
	s->start_unix_ns = e->enqueued_unix_ns && e->enqueued_unix_ns <= s->end_unix_ns
				   ? e->enqueued_unix_ns
				   : s->end_unix_ns;
	s->job_id = e->job_id;
	s->priority = e->priority;
	s->flags = e->trace_flags;
	copy_strings(s, e);
}

static void add_finish(struct span_builder *b, const struct jobq_event *e, uint64_t offset)
{
	struct slot *p = find(b, e->tgid, e->queue_id, e->job_id);
	const struct jobq_event *st;
	struct span *s;

	if (!p) {
		b->dropped++; /* started before we attached, or its start was lost */
		return;
	}
	st = &pooled_of(b, p)->start;
	s = enqueue_span(b);
	s->kind = SPAN_PROCESS;
	random_id(b, s->trace_id, sizeof(s->trace_id));
	random_id(b, s->span_id, sizeof(s->span_id));
	if ((st->trace_hi | st->trace_lo) && st->span_id) {
		s->has_link = 1;
		put_be64(s->link_trace_id, st->trace_hi);
		put_be64(s->link_trace_id + 8, st->trace_lo);
		put_be64(s->link_span_id, st->span_id);
	}
	s->flags = st->trace_flags;
	s->start_unix_ns = st->ktime_ns + offset;
	s->end_unix_ns = e->ktime_ns + offset;
	if (s->end_unix_ns < s->start_unix_ns)
		s->end_unix_ns = s->start_unix_ns;
	s->job_id = e->job_id;
	s->attempt = e->attempt ? e->attempt : st->attempt;
	s->priority = st->priority;
	s->status = e->status;
	s->wait_ns = (int64_t)(s->start_unix_ns - st->enqueued_unix_ns);
	if (s->wait_ns < 0)
		s->wait_ns = 0;
	copy_strings(s, st);
	if (e->status != JOBQ_STATUS_SUCCESS) { /* a success has no text (span zeroed) */
		memcpy(s->error, e->error, sizeof(s->error));
		s->error[sizeof(s->error) - 1] = '\0';
	}
	remove_at(b, p);
}

void span_builder_add(struct span_builder *b, const struct jobq_event *e, uint64_t offset_ns)
{
	switch (e->kind) {
	case JOBQ_EV_ENQUEUE:
		add_enqueue(b, e, offset_ns);
		break;
	case JOBQ_EV_START:
		add_start(b, e);
		break;
	case JOBQ_EV_FINISH:
		add_finish(b, e, offset_ns);
		break;
	default:
		break;
	}
}

size_t span_builder_take(struct span_builder *b, struct span *out, size_t max)
{
	size_t n = 0;

	while (n < max && b->qlen) {
		out[n++] = b->q[b->qhead];
		b->qhead = ring_at(b, 1);
		b->qlen--;
	}
	return n;
}

size_t span_builder_peek(const struct span_builder *b, const struct span **first)
{
	size_t to_end = b->cap_q - b->qhead;

	*first = &b->q[b->qhead];
	return b->qlen < to_end ? b->qlen : to_end;
}

void span_builder_consume(struct span_builder *b, size_t n)
{
	if (n > b->qlen)
		n = b->qlen;
	b->qhead = ring_at(b, n);
	b->qlen -= n;
}

size_t span_builder_queued(const struct span_builder *b)
{
	return b->qlen;
}

uint64_t span_builder_built(const struct span_builder *b)
{
	return b->built;
}

uint64_t span_builder_dropped(const struct span_builder *b)
{
	return b->dropped;
}

void span_builder_count_dropped(struct span_builder *b, uint64_t n)
{
	b->dropped += n;
}
