/*
 * agent_unit_test.c - the agent's pure modules under ASan/UBSan: frame
 * codec (agent/wire.c), span building (agent/spans.c), message encoding
 * (agent/encode.c), histogram decoding (agent/snapshot.c), the --top rows
 * (agent/top.c), and the kernel memory of the maps (agent/maps.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/conn.h"
#include "agent/encode.h"
#include "agent/inflight.h"
#include "agent/maps.h"
#include "agent/snapshot.h"
#include "agent/spans.h"
#include "agent/top.h"
#include "agent/wire.h"
#include "bpf/jobq.skel.h"

/* ---- wire ---------------------------------------------------------------- */

static uint8_t *hello_frame(size_t *len)
{
	struct hello_info h = { "host:1:2", "host", 1, "pid:1", 2, "0.1.0" };
	uint8_t *buf;

	assert_int_equal(encode_hello(&h, &buf, len), 0);
	return buf;
}

static void wire_round_trip_and_partial_input(void **state)
{
	Jobq__Agent__Frame *f;
	size_t len, used;
	char err[128];
	uint8_t *buf = hello_frame(&len);

	(void)state;
	/* Big-endian length prefix of the rest. */
	assert_int_equal(((size_t)buf[0] << 24 | (size_t)buf[1] << 16 | (size_t)buf[2] << 8 | buf[3]),
			 len - 4);
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(wire_decode(buf, cut, &used, &f, err, sizeof(err)), WIRE_NEED_MORE);
	assert_int_equal(wire_decode(buf, len, &used, &f, err, sizeof(err)), WIRE_FRAME);
	assert_int_equal(used, len);
	assert_int_equal(f->version, JOBQ_AGENT_PROTO_VERSION);
	assert_int_equal(f->body_case, JOBQ__AGENT__FRAME__BODY_HELLO);
	assert_string_equal(f->hello->target, "pid:1");
	jobq__agent__frame__free_unpacked(f, NULL);
	free(buf);
}

static void wire_rejects_bad_length_and_unknown_version(void **state)
{
	uint8_t zero[8] = { 0, 0, 0, 0, 1, 2, 3, 4 };
	uint8_t huge[8] = { 0x01, 0x00, 0x00, 0x01, 1, 2, 3, 4 }; /* 16 MiB + 1 */
	Jobq__Agent__Frame fr = JOBQ__AGENT__FRAME__INIT, *f;
	size_t len, used;
	char err[128];
	uint8_t *buf;

	(void)state;
	assert_int_equal(wire_decode(zero, sizeof(zero), &used, &f, err, sizeof(err)), WIRE_ERROR);
	assert_non_null(strstr(err, "length 0"));
	assert_int_equal(wire_decode(huge, sizeof(huge), &used, &f, err, sizeof(err)), WIRE_ERROR);

	/* A frame from a future version: encode, then patch the version. */
	fr.version = 2;
	len = jobq__agent__frame__get_packed_size(&fr);
	buf = malloc(4 + len);
	assert_non_null(buf);
	buf[0] = buf[1] = buf[2] = 0;
	buf[3] = (uint8_t)len;
	jobq__agent__frame__pack(&fr, buf + 4);
	assert_int_equal(wire_decode(buf, 4 + len, &used, &f, err, sizeof(err)), WIRE_ERROR);
	assert_non_null(strstr(err, "version 2"));
	free(buf);
}

/* ---- spans --------------------------------------------------------------- */

static struct jobq_event ev(int kind, uint32_t tgid, uint64_t id, uint64_t kt)
{
	struct jobq_event e;

	memset(&e, 0, sizeof(e));
	e.kind = (uint8_t)kind;
	e.tgid = tgid;
	e.job_id = id;
	e.ktime_ns = kt;
	e.enqueued_unix_ns = 1000;
	e.trace_hi = 0x0102030405060708ull;
	e.trace_lo = 0x090a0b0c0d0e0f10ull;
	e.span_id = 0x1112131415161718ull;
	e.attempt = 1;
	e.trace_flags = 1;
	strcpy(e.s.tenant, "acme");
	strcpy(e.s.type, "email");
	strcpy(e.s.queue, "q");
	return e;
}

static const uint8_t trace[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t span8[8] = { 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18 };

static void enqueue_record_makes_producer_span_with_job_ids(void **state)
{
	struct span_builder *b = span_builder_new(4, 4, 1);
	struct jobq_event e = ev(JOBQ_EV_ENQUEUE, 7, 42, 500);
	struct span s;

	(void)state;
	assert_non_null(b);
	span_builder_add(b, &e, 10000);
	assert_int_equal(span_builder_take(b, &s, 1), 1);
	assert_int_equal(s.kind, SPAN_ENQUEUE);
	assert_memory_equal(s.trace_id, trace, 16);
	assert_memory_equal(s.span_id, span8, 8);
	assert_int_equal(s.start_unix_ns, 1000);
	assert_int_equal(s.end_unix_ns, 10500);
	span_builder_free(b);
}

static void start_and_finish_make_linked_consumer_span(void **state)
{
	struct span_builder *b = span_builder_new(4, 4, 1);
	struct jobq_event st = ev(JOBQ_EV_START, 7, 42, 2000), fin = ev(JOBQ_EV_FINISH, 7, 42, 5000);
	struct span s;

	(void)state;
	fin.status = JOBQ_STATUS_FAILED;
	strcpy(fin.error, "disk full");
	span_builder_add(b, &st, 100000);
	assert_int_equal(span_builder_queued(b), 0);
	span_builder_add(b, &fin, 100000);
	assert_int_equal(span_builder_take(b, &s, 1), 1);
	assert_int_equal(s.kind, SPAN_PROCESS);
	assert_true(s.has_link);
	assert_memory_equal(s.link_trace_id, trace, 16);
	assert_memory_equal(s.link_span_id, span8, 8);
	assert_memory_not_equal(s.trace_id, trace, 16);
	assert_int_equal(s.start_unix_ns, 102000);
	assert_int_equal(s.end_unix_ns, 105000);
	assert_int_equal(s.wait_ns, 102000 - 1000);
	assert_int_equal(s.status, JOBQ_STATUS_FAILED);
	assert_string_equal(s.error, "disk full");
	assert_int_equal(span_builder_dropped(b), 0);
	span_builder_free(b);
}

/* Job ids are unique only within a queue: the same id in two queues of one
 * process, both in flight, pairs with its own start. */
static void same_job_id_in_two_queues_pairs_by_queue(void **state)
{
	struct span_builder *b = span_builder_new(4, 4, 1);
	struct jobq_event a = ev(JOBQ_EV_START, 7, 42, 1000), c = ev(JOBQ_EV_START, 7, 42, 2000);
	struct jobq_event fc = ev(JOBQ_EV_FINISH, 7, 42, 3000), fa = ev(JOBQ_EV_FINISH, 7, 42, 9000);
	struct span s[2];

	(void)state;
	a.queue_id = fa.queue_id = 111;
	c.queue_id = fc.queue_id = 222;
	strcpy(c.s.queue, "other");
	span_builder_add(b, &a, 0);
	span_builder_add(b, &c, 0);
	span_builder_add(b, &fc, 0);
	span_builder_add(b, &fa, 0);
	assert_int_equal(span_builder_take(b, s, 2), 2);
	assert_string_equal(s[0].queue, "other");
	assert_int_equal(s[0].start_unix_ns, 2000);
	assert_int_equal(s[0].end_unix_ns, 3000);
	assert_string_equal(s[1].queue, "q");
	assert_int_equal(s[1].start_unix_ns, 1000);
	assert_int_equal(s[1].end_unix_ns, 9000);
	assert_int_equal(span_builder_dropped(b), 0);
	span_builder_free(b);
}

/* In-flight expiry through the mapping: a slot is freed only when two
 * scans in a row saw it too old with the same tag (a start claims the tag
 * before it writes its time); fresh and just-reclaimed slots stay. */
static void inflight_expiry_needs_two_sightings_of_the_same_tag(void **state)
{
	struct jobq_inflight_set sets[4];
	struct inflight_expiry x;
	const uint64_t age = 1000;

	(void)state;
	memset(sets, 0, sizeof(sets));
	assert_int_equal(inflight_expiry_init(&x, 8), 0);
	sets[0].w[1] = (struct jobq_inflight_slot){ .tag = 11, .start_ktime_ns = 100 };  /* old */
	sets[2].w[3] = (struct jobq_inflight_slot){ .tag = 23, .start_ktime_ns = 9500 }; /* fresh */
	sets[3].w[0] = (struct jobq_inflight_slot){ .tag = 30, .start_ktime_ns = 50 };   /* old */
	assert_int_equal(inflight_expire(&x, sets, 4, 10000, age), 0); /* first sighting */
	sets[3].w[0].tag = 31; /* freed and claimed by a new start, time not yet written */
	assert_int_equal(inflight_expire(&x, sets, 4, 10001, age), 1);
	assert_int_equal(sets[0].w[1].tag, 0);
	assert_int_equal(sets[2].w[3].tag, 23);
	assert_int_equal(sets[3].w[0].tag, 31);
	sets[3].w[0].start_ktime_ns = 9990; /* the new start's time lands */
	assert_int_equal(inflight_expire(&x, sets, 4, 10002, age), 0);
	assert_int_equal(sets[3].w[0].tag, 31);
	assert_int_equal(inflight_expire(&x, sets, 4, 20000, age), 0); /* both old now: seen */
	assert_int_equal(inflight_expire(&x, sets, 4, 20001, age), 2);
	inflight_expiry_free(&x);
}

static void finish_without_start_is_counted_not_built(void **state)
{
	struct span_builder *b = span_builder_new(4, 4, 1);
	struct jobq_event fin = ev(JOBQ_EV_FINISH, 7, 42, 5000);

	(void)state;
	span_builder_add(b, &fin, 0);
	assert_int_equal(span_builder_queued(b), 0);
	assert_int_equal(span_builder_dropped(b), 1);
	span_builder_free(b);
}

static void full_queue_drops_oldest_and_counts(void **state)
{
	struct span_builder *b = span_builder_new(4, 3, 1);
	struct span s[3];

	(void)state;
	for (uint64_t id = 1; id <= 5; id++) {
		struct jobq_event e = ev(JOBQ_EV_ENQUEUE, 7, id, 500);

		span_builder_add(b, &e, 0);
	}
	assert_int_equal(span_builder_dropped(b), 2);
	assert_int_equal(span_builder_take(b, s, 3), 3);
	assert_int_equal(s[0].job_id, 3);
	assert_int_equal(s[2].job_id, 5);
	span_builder_free(b);
}

/* A full start table evicts its oldest sixteenth in one go (one scan of
 * the table per max_pend/16 starts, not one per start); the newer starts
 * still pair. */
static void full_start_table_evicts_oldest_in_batches(void **state)
{
	enum { P = 1024, EXTRA = 50000 };
	struct span_builder *b = span_builder_new(P, 4, 5);
	struct span s;

	(void)state;
	for (uint64_t id = 0; id < P; id++) {
		struct jobq_event e = ev(JOBQ_EV_START, 9, id, id);

		span_builder_add(b, &e, 0);
	}
	assert_int_equal(span_builder_dropped(b), 0);
	{
		struct jobq_event e = ev(JOBQ_EV_START, 9, P, P);

		span_builder_add(b, &e, 0);
	}
	assert_int_equal(span_builder_dropped(b), P / 16); /* ids 0 .. P/16-1 */
	{
		struct jobq_event old = ev(JOBQ_EV_FINISH, 9, P / 16 - 1, P + 1);
		struct jobq_event kept = ev(JOBQ_EV_FINISH, 9, P / 16, P + 2);

		span_builder_add(b, &old, 0); /* evicted: counted, no span */
		assert_int_equal(span_builder_dropped(b), P / 16 + 1);
		span_builder_add(b, &kept, 0);
		assert_int_equal(span_builder_take(b, &s, 1), 1);
		assert_int_equal(s.job_id, P / 16);
	}
	/* Starts that never finish, far more than the table: every one beyond
	 * the table's size is eventually dropped and counted, none is lost
	 * track of, and the newest still pairs. */
	for (uint64_t id = P + 1; id < P + 1 + EXTRA; id++) {
		struct jobq_event e = ev(JOBQ_EV_START, 9, id, id);

		span_builder_add(b, &e, 0);
	}
	{
		struct jobq_event fin = ev(JOBQ_EV_FINISH, 9, P + EXTRA, P + EXTRA + 5);
		uint64_t before = span_builder_dropped(b);

		span_builder_add(b, &fin, 0);
		assert_int_equal(span_builder_dropped(b), before);
		assert_int_equal(span_builder_take(b, &s, 1), 1);
		assert_int_equal(s.job_id, P + EXTRA);
		/* starts seen = P + 1 + EXTRA; 2 finished, the rest dropped or pending */
		assert_true(span_builder_dropped(b) >= (uint64_t)(P + 1 + EXTRA) - 2 - P);
	}
	span_builder_free(b);
}

/* Interleaved starts and finishes across the hash table's wrap-around and
 * deletions: every pair must still match. */
static void many_interleaved_jobs_all_pair(void **state)
{
	enum { N = 20000, WINDOW = 100 };
	struct span_builder *b = span_builder_new(WINDOW + 1, N, 3); /* +1: start before finish */
	static struct span out[N];

	(void)state;
	for (uint64_t i = 0; i < N + WINDOW; i++) {
		if (i < N) {
			struct jobq_event e = ev(JOBQ_EV_START, (uint32_t)(i % 3), i, i);

			span_builder_add(b, &e, 0);
		}
		if (i >= WINDOW) {
			uint64_t j = i - WINDOW;
			struct jobq_event e = ev(JOBQ_EV_FINISH, (uint32_t)(j % 3), j, i + 1);

			span_builder_add(b, &e, 0);
		}
	}
	assert_int_equal(span_builder_dropped(b), 0);
	assert_int_equal(span_builder_take(b, out, N), N);
	for (uint64_t j = 0; j < N; j++) {
		assert_int_equal(out[j].job_id, j);
		assert_int_equal(out[j].end_unix_ns - out[j].start_unix_ns, WINDOW + 1);
	}
	span_builder_free(b);
}

/* peek + consume (what the exporter encodes in place) hand out every span
 * once, oldest first, across the ring's wrap-around, and never more than
 * are queued. */
static void peek_and_consume_walk_the_ring_in_order(void **state)
{
	enum { CAP = 7, N = 40 };
	struct span_builder *b = span_builder_new(4, CAP, 5);
	const struct span *first;
	uint64_t next_out = 0, next_in = 0;

	(void)state;
	assert_int_equal(span_builder_peek(b, &first), 0);
	while (next_out < N) {
		/* Queue 1-4 more spans (never overflowing), then take 0-3. */
		for (int k = 0; k < 1 + (int)(next_in % 4) && next_in < N &&
				span_builder_queued(b) < CAP;
		     k++, next_in++) {
			struct jobq_event s = ev(JOBQ_EV_START, 1, next_in, 10);
			struct jobq_event f = ev(JOBQ_EV_FINISH, 1, next_in, 20);

			span_builder_add(b, &s, 0);
			span_builder_add(b, &f, 0);
		}
		size_t n = span_builder_peek(b, &first), take = n < 3 ? n : 3;

		assert_true(n <= span_builder_queued(b));
		assert_true(n > 0 || span_builder_queued(b) == 0);
		for (size_t i = 0; i < take; i++)
			assert_int_equal(first[i].job_id, next_out + i);
		span_builder_consume(b, take);
		next_out += take;
	}
	assert_int_equal(span_builder_queued(b), 0);
	span_builder_consume(b, 5); /* more than queued: nothing happens */
	assert_int_equal(span_builder_peek(b, &first), 0);
	assert_int_equal(span_builder_dropped(b), 0);
	span_builder_free(b);
}

/* ---- conn ---------------------------------------------------------------- */

/* A listening socket standing in for the sidecar, and a connected conn. */
struct peer {
	char dir[64], path[128];
	int lfd, fd;
	struct conn *c;
};

static void peer_open(struct peer *p)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	strcpy(p->dir, "/tmp/jobq-conn-test-XXXXXX");
	assert_non_null(mkdtemp(p->dir));
	snprintf(p->path, sizeof(p->path), "%s/s", p->dir);
	strcpy(sa.sun_path, p->path);
	p->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(p->lfd, 4), 0);
	p->c = conn_new(p->path, 1 << 20);
	assert_non_null(p->c);
	assert_int_equal(conn_tick(p->c, 0), 1); /* connected */
	p->fd = accept(p->lfd, NULL, NULL);
	assert_true(p->fd >= 0);
}

static void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	close(p->lfd);
	conn_free(p->c);
	unlink(p->path);
	rmdir(p->dir);
}

static void send_frames(struct conn *c, size_t n, size_t len, size_t spans_each)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t *buf = malloc(len);

		assert_non_null(buf);
		memset(buf, (int)i, len);
		assert_int_equal(conn_send(c, buf, len, spans_each), 0);
	}
	assert_int_equal(conn_queued(c), 0); /* all in the socket buffer */
}

/* Spans written into the socket but never read by a sidecar that then
 * exits are counted as lost, not forgotten. */
static void sidecar_dying_with_unread_spans_counts_them(void **state)
{
	struct peer p;

	(void)state;
	peer_open(&p);
	send_frames(p.c, 3, 4096, 10);
	conn_tick(p.c, 1);
	assert_int_equal(conn_take_lost_spans(p.c), 0);
	close(p.fd); /* dies without reading */
	p.fd = -1;
	conn_tick(p.c, 2);
	assert_int_equal(conn_take_lost_spans(p.c), 30);
	peer_close(&p);
}

/* A sidecar that read everything before closing lost nothing; its going
 * away is noticed before anything else is handed to the connection. */
static void sidecar_reading_all_then_closing_loses_nothing(void **state)
{
	uint8_t buf[3 * 4096];
	size_t got = 0;
	struct peer p;

	(void)state;
	peer_open(&p);
	send_frames(p.c, 3, 4096, 10);
	while (got < sizeof(buf)) {
		ssize_t n = read(p.fd, buf + got, sizeof(buf) - got);

		assert_true(n > 0);
		got += (size_t)n;
	}
	conn_tick(p.c, 1);
	close(p.fd);
	p.fd = -1;
	/* Noticed without a send, and reconnected (the listener is still
	 * there: a restarted sidecar). */
	assert_int_equal(conn_tick(p.c, 2), 1);
	assert_int_equal(conn_take_lost_spans(p.c), 0);
	peer_close(&p);
}

/* Read in part: the spans of the unread frames are counted (SIOCOUTQ
 * over-estimates unread bytes, so at most the partly confirmed frame more). */
static void sidecar_dying_mid_stream_counts_unread_frames(void **state)
{
	uint8_t buf[4096];
	size_t got = 0;
	struct peer p;
	uint64_t lost;

	(void)state;
	peer_open(&p);
	send_frames(p.c, 4, 4096, 10);
	while (got < sizeof(buf)) { /* exactly the first frame */
		ssize_t n = read(p.fd, buf + got, sizeof(buf) - got);

		assert_true(n > 0);
		got += (size_t)n;
	}
	conn_tick(p.c, 1);
	close(p.fd);
	p.fd = -1;
	conn_tick(p.c, 2);
	lost = conn_take_lost_spans(p.c);
	assert_true(lost >= 30 && lost <= 40);
	peer_close(&p);
}

/* ---- encode -------------------------------------------------------------- */

static void process_span_encodes_link_error_and_attributes(void **state)
{
	struct span_builder *b = span_builder_new(4, 4, 1);
	struct jobq_event st = ev(JOBQ_EV_START, 7, 42, 2000), fin = ev(JOBQ_EV_FINISH, 7, 42, 5000);
	Jobq__Agent__Frame *f;
	const Jobq__Agent__Span *o;
	struct span s;
	size_t len, used;
	uint8_t *buf;
	char err[128];
	int found = 0;

	(void)state;
	fin.status = JOBQ_STATUS_FAILED;
	strcpy(fin.error, "boom");
	span_builder_add(b, &st, 0);
	span_builder_add(b, &fin, 0);
	assert_int_equal(span_builder_take(b, &s, 1), 1);
	assert_int_equal(encode_spans(&s, 1, 9, &buf, &len), 0);
	assert_int_equal(wire_decode(buf, len, &used, &f, err, sizeof(err)), WIRE_FRAME);
	assert_int_equal(f->spans->n_spans, 1);
	assert_int_equal(f->spans->dropped_spans, 9);
	o = f->spans->spans[0];
	assert_string_equal(o->name, "job.process");
	assert_int_equal(o->kind, JOBQ__AGENT__SPAN_KIND__SPAN_KIND_CONSUMER);
	assert_int_equal(o->n_links, 1);
	assert_memory_equal(o->links[0]->trace_id.data, trace, 16);
	assert_memory_equal(o->links[0]->span_id.data, span8, 8);
	assert_true(o->status_error);
	assert_string_equal(o->status_message, "boom");
	assert_int_equal(o->n_events, 1);
	assert_string_equal(o->events[0]->name, "exception");
	for (size_t i = 0; i < o->n_attributes; i++)
		if (!strcmp(o->attributes[i]->key, "tenant.id")) {
			assert_string_equal(o->attributes[i]->string_value, "acme");
			found = 1;
		}
	assert_true(found);
	jobq__agent__frame__free_unpacked(f, NULL);
	free(buf);
	span_builder_free(b);
}

/* A producer's traceparent: job.enqueue is its child (parent_span_id on
 * the wire) with the traceparent's flags; without one, no parent. */
static void enqueue_span_carries_producer_parent_and_flags(void **state)
{
	static const uint8_t parent[8] = { 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8 };
	struct span_builder *b = span_builder_new(4, 4, 1);
	struct jobq_event e = ev(JOBQ_EV_ENQUEUE, 7, 42, 500), root = ev(JOBQ_EV_ENQUEUE, 7, 43, 500);
	Jobq__Agent__Frame *f;
	struct span s[2];
	size_t len, used;
	uint8_t *buf;
	char err[128];

	(void)state;
	e.parent_span_id = 0xa1a2a3a4a5a6a7a8ull;
	e.trace_flags = 0;
	root.trace_flags = 3;
	span_builder_add(b, &e, 0);
	span_builder_add(b, &root, 0);
	assert_int_equal(span_builder_take(b, s, 2), 2);
	assert_true(s[0].has_parent);
	assert_memory_equal(s[0].parent_span_id, parent, 8);
	assert_int_equal(s[0].flags, 0);
	assert_false(s[1].has_parent);
	assert_int_equal(s[1].flags, 3);
	assert_int_equal(encode_spans(s, 2, 0, &buf, &len), 0);
	assert_int_equal(wire_decode(buf, len, &used, &f, err, sizeof(err)), WIRE_FRAME);
	assert_int_equal(f->spans->spans[0]->parent_span_id.len, 8);
	assert_memory_equal(f->spans->spans[0]->parent_span_id.data, parent, 8);
	assert_memory_equal(f->spans->spans[0]->trace_id.data, trace, 16);
	assert_int_equal(f->spans->spans[0]->flags, 0);
	assert_int_equal(f->spans->spans[1]->parent_span_id.len, 0);
	assert_int_equal(f->spans->spans[1]->flags, 3);
	jobq__agent__frame__free_unpacked(f, NULL);
	free(buf);
	span_builder_free(b);
}

/* encode_spans() writes its frames directly; the protobuf-c generated
 * code is the reference: the same bytes for every kind of span (enqueue
 * with and without parent, process with and without link, failed with and
 * without text, flags 0, empty strings, huge and negative values, an empty
 * batch, dropped 0 and not). */
static void direct_span_encoder_writes_the_protobuf_c_bytes(void **state)
{
	struct span sp[8];
	uint64_t x = 0x243f6a8885a308d3ull;

	(void)state;
	for (int round = 0; round < 200; round++) {
		size_t n = (size_t)(round % 9);
		uint8_t *a, *b;
		size_t alen, blen;

		for (size_t i = 0; i < n && i < 8; i++) {
			struct span *s = &sp[i];

			memset(s, 0, sizeof(*s));
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			s->kind = (x >> 7) & 1 ? SPAN_PROCESS : SPAN_ENQUEUE;
			for (int k = 0; k < 16; k++)
				s->trace_id[k] = s->link_trace_id[k] = (uint8_t)(x >> (k % 8 * 8));
			for (int k = 0; k < 8; k++)
				s->span_id[k] = s->parent_span_id[k] = s->link_span_id[k] =
					(uint8_t)(x >> (k * 8 + 3));
			s->has_parent = (x >> 9) & 1;
			s->has_link = (x >> 10) & 1;
			s->flags = (x >> 11) & 1 ? (uint8_t)(x >> 12) : 0;
			s->start_unix_ns = (x >> 20) & 1 ? 0 : x >> 1;
			s->end_unix_ns = (x >> 21) & 1 ? 0 : x;
			s->job_id = (x >> 22) & 1 ? x : (x >> 40);
			s->attempt = (uint32_t)(x >> 30);
			s->priority = (uint8_t)((x >> 33) % 5);
			s->status = (uint8_t)((x >> 35) % 3);
			s->wait_ns = (x >> 38) & 1 ? -(int64_t)(x >> 45) : (int64_t)(x >> 20);
			snprintf(s->tenant, sizeof(s->tenant), "%s", (x >> 50) & 1 ? "" : "tenant-é");
			snprintf(s->type, sizeof(s->type), "type%u", (unsigned)(x >> 52));
			snprintf(s->queue, sizeof(s->queue), "%s", (x >> 54) & 1 ? "q" : "");
			snprintf(s->error, sizeof(s->error), "%s", (x >> 56) & 1 ? "" : "disk full");
		}
		assert_int_equal(encode_spans(sp, n, round % 3 ? (uint64_t)round * 1000003 : 0, &a,
					      &alen), 0);
		assert_int_equal(encode_spans_pbc(sp, n, round % 3 ? (uint64_t)round * 1000003 : 0,
						  &b, &blen), 0);
		assert_int_equal(alen, blen);
		assert_memory_equal(a, b, alen);
		free(a);
		free(b);
	}
}

static void metric_snapshot_encodes_trimmed_buckets(void **state)
{
	struct snapshot s;
	Jobq__Agent__Frame *f;
	const Jobq__Agent__ExpHistogram *h;
	size_t len, used;
	uint8_t *buf;
	char err[128];

	(void)state;
	assert_int_equal(snapshot_init(&s, 2, 2, 2), 0);
	s.nhists = 1;
	strcpy(s.hists[0].key.s.tenant, "acme");
	s.hists[0].key.kind = JOBQ_H_WAIT;
	s.hists[0].val.count = 3;
	s.hists[0].val.zero_count = 1;
	s.hists[0].val.buckets[80] = 1; /* index 0: (1, 2^(1/8)] ms */
	s.hists[0].val.buckets[82] = 1;
	s.hists[0].val.sum_ns = 3000000;
	s.losses[JOBQ_LOSS_MAP_FULL] = 4;
	assert_int_equal(encode_metrics(&s, 77, &buf, &len), 0);
	assert_int_equal(wire_decode(buf, len, &used, &f, err, sizeof(err)), WIRE_FRAME);
	h = f->metrics->histograms[0];
	assert_string_equal(h->name, "jobs.wait_time");
	assert_int_equal(h->scale, 3);
	assert_int_equal(h->offset, 0);
	assert_int_equal(h->n_bucket_counts, 3);
	assert_int_equal(h->bucket_counts[0], 1);
	assert_int_equal(h->bucket_counts[1], 0);
	assert_int_equal(h->bucket_counts[2], 1);
	assert_int_equal(h->zero_count, 1);
	assert_int_equal(h->start_unix_ns, 77);
	assert_true(h->sum == 3.0);
	assert_int_equal(f->metrics->n_losses, JOBQ_LOSS_COUNT);
	assert_string_equal(f->metrics->losses[JOBQ_LOSS_MAP_FULL]->reason, "map_full");
	assert_int_equal(f->metrics->losses[JOBQ_LOSS_MAP_FULL]->count, 4);
	jobq__agent__frame__free_unpacked(f, NULL);
	free(buf);
	snapshot_free(&s);
}

/* Every counter and histogram carries its series' queue
 * (SeriesKey.queue, exported as messaging.destination.name): the same
 * tenant and type on two queues are two series, told apart by it. */
static void metric_snapshot_keys_carry_the_queue(void **state)
{
	struct snapshot s;
	uint8_t *buf;
	size_t len, used;
	Jobq__Agent__Frame *f;
	char err[128];
	static const char *const queues[2] = { "default", "q3" };

	(void)state;
	assert_int_equal(snapshot_init(&s, 2, 2, 1), 0);
	s.ncounters = s.nhists = 2;
	for (int i = 0; i < 2; i++) {
		struct jobq_series *k = &s.counters[i].key.s;

		strcpy(k->queue, queues[i]);
		strcpy(k->tenant, "check");
		strcpy(k->type, "email");
		s.counters[i].key.metric = JOBQ_M_PROCESSED;
		s.counters[i].key.priority = JOBQ_PRIO_NORMAL;
		s.counters[i].key.status = JOBQ_STATUS_SUCCESS;
		s.counters[i].value = i ? 10 : 77;
		s.hists[i].key.s = *k;
		s.hists[i].key.kind = JOBQ_H_DURATION;
		s.hists[i].val.count = s.hists[i].val.zero_count = s.counters[i].value;
	}
	assert_int_equal(encode_metrics(&s, 1, &buf, &len), 0);
	assert_int_equal(wire_decode(buf, len, &used, &f, err, sizeof(err)), WIRE_FRAME);
	assert_int_equal(f->metrics->n_counters, 2);
	assert_int_equal(f->metrics->n_histograms, 2);
	for (int i = 0; i < 2; i++) {
		const Jobq__Agent__SeriesKey *c = f->metrics->counters[i]->key;
		const Jobq__Agent__SeriesKey *h = f->metrics->histograms[i]->key;

		assert_string_equal(c->queue, queues[i]);
		assert_string_equal(c->tenant, "check");
		assert_string_equal(c->job_type, "email");
		assert_int_equal(f->metrics->counters[i]->value, i ? 10 : 77);
		assert_string_equal(h->queue, queues[i]);
		assert_string_equal(h->tenant, "check");
		assert_int_equal(f->metrics->histograms[i]->count, i ? 10 : 77);
	}
	jobq__agent__frame__free_unpacked(f, NULL);
	free(buf);
	snapshot_free(&s);
}

/* ---- kernel histograms ----------------------------------------------------- */

static void kernel_histogram_decodes_count_and_inverted_min(void **state)
{
	static struct jobq_hist_cells k;
	static struct jobq_hist_val v;

	(void)state;
	/* Zero-filled: the empty histogram. */
	memset(&v, 0xff, sizeof(v));
	jobq_hist_decode(&k, &v);
	assert_int_equal(v.count, 0);
	assert_int_equal(v.min_ns, 0);
	assert_int_equal(v.max_ns, 0);
	assert_int_equal(v.sum_ns, 0);
	/* 0 ns (zero bucket), 5 ms and 7 ms: count from the buckets, min kept
	 * as ~min (a value of 0 included). */
	k.zero_count = 1;
	k.buckets[100] = 1;
	k.buckets[102] = 1;
	k.sum_ns = 12000000;
	k.max_ns = 7000000;
	k.min_inv = ~0ull;
	jobq_hist_decode(&k, &v);
	assert_int_equal(v.count, 3);
	assert_int_equal(v.zero_count, 1);
	assert_int_equal(v.min_ns, 0);
	assert_int_equal(v.max_ns, 7000000);
	assert_int_equal(v.sum_ns, 12000000);
	assert_int_equal(v.buckets[100], 1);
	assert_int_equal(v.buckets[102], 1);
	k.zero_count = 0;
	k.sum_ns = 12000000;
	k.min_inv = ~5000000ull;
	jobq_hist_decode(&k, &v);
	assert_int_equal(v.count, 2);
	assert_int_equal(v.min_ns, 5000000);
}

/* ---- kernel memory of the maps -------------------------------------------- */

/* The maps of the real BPF object, sized as the agent sizes them. */
static void object_kmem(unsigned int tenant_cap, unsigned int types, int spans, struct kmem *k,
			uint64_t *series_arrays)
{
	struct jobq_bpf *skel = jobq_bpf__open();

	assert_non_null(skel);
	assert_int_equal(maps_configure(skel, tenant_cap, jobq_series_table(tenant_cap, types), spans),
			 0);
	kmem_of_object(skel->obj, k);
	/* The big per-series maps are plain arrays, one copy for all CPUs. */
	assert_int_equal(bpf_map__type(skel->maps.counters), BPF_MAP_TYPE_ARRAY);
	assert_int_equal(bpf_map__type(skel->maps.hists), BPF_MAP_TYPE_ARRAY);
	*series_arrays =
		(uint64_t)bpf_map__max_entries(skel->maps.hists) * bpf_map__value_size(skel->maps.hists) +
		(uint64_t)bpf_map__max_entries(skel->maps.counters) *
			bpf_map__value_size(skel->maps.counters);
	jobq_bpf__destroy(skel);
}

static void kernel_memory_does_not_grow_with_the_cpu_count(void **state)
{
	static const struct {
		unsigned int cap, types;
		int spans;
	} limits[] = {
		{ JOBQ_DEFAULT_TENANT_CAP, JOBQ_DEFAULT_TYPES_PER_TENANT, 1 },
		{ JOBQ_DEFAULT_TENANT_CAP, JOBQ_DEFAULT_TYPES_PER_TENANT, 0 },
		{ 65536, 3, 0 }, /* a large table: 199,681 series */
		{ 1, 1, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		unsigned int n = jobq_series_table(limits[i].cap, limits[i].types);
		uint64_t arrays, at2, at64;
		struct kmem k;

		object_kmem(limits[i].cap, limits[i].types, limits[i].spans, &k, &arrays);
		at2 = kmem_total(&k, 2);
		at64 = kmem_total(&k, 64);
		print_message("  %u x %u%s: %u series, %.2f MiB on 2 CPUs, %.2f MiB on 64 "
			      "(%llu bytes per CPU)\n",
			      limits[i].cap, limits[i].types, limits[i].spans ? " + spans" : "", n,
			      (double)at2 / 1048576.0, (double)at64 / 1048576.0,
			      (unsigned long long)k.per_cpu);
		/* Per CPU: only the loss counters and the register scratch,
		 * whatever the limits. */
		assert_int_equal(k.per_cpu, JOBQ_LOSS_KERNEL_COUNT * 8 + 256);
		assert_int_equal(at64 - at2, 62 * k.per_cpu);
		assert_true(at64 - at2 < 32 * 1024);
		/* The series arrays are counted once, at JOBQ_SERIES_BYTES a series. */
		assert_int_equal(arrays, (uint64_t)n * JOBQ_SERIES_BYTES);
		assert_true(k.shared >= arrays);
	}
	/* The default table: 5,696 bytes a series in the arrays, shared. */
	assert_int_equal(JOBQ_SERIES_BYTES, 5696);
	assert_int_equal(JOBQ_MAX_SERIES, 4161);
}

/* docs/agent.md's formula: S x 5,912 B, the arrays plus the series map's
 * entry (a 208-byte (queue, tenant, type) key and its 4-byte id, 8-byte
 * rounded): two tables of the same tenant cap differ by exactly that per
 * series; and the key is what the agent and the kernel share. */
static void kernel_memory_per_series_matches_the_formula(void **state)
{
	struct kmem k1, k4;
	uint64_t a1, a4;
	unsigned int s1 = jobq_series_table(1024, 1), s4 = jobq_series_table(1024, 4);

	(void)state;
	assert_int_equal(sizeof(struct jobq_series), 208);
	assert_int_equal(offsetof(struct jobq_series, queue), 0);
	assert_int_equal(sizeof(((struct jobq_series *)0)->queue), JOBQ_QUEUE_BUF);
	object_kmem(1024, 1, 0, &k1, &a1);
	object_kmem(1024, 4, 0, &k4, &a4);
	assert_int_equal(k4.shared - k1.shared, (uint64_t)(s4 - s1) * 5912);
	assert_int_equal(JOBQ_SERIES_KMEM, 5912);
}

/* ---- top ----------------------------------------------------------------- */

static void top_rows_rates_and_failures_per_tenant(void **state)
{
	struct snapshot s;
	struct top_row prev[4], rows[4];
	size_t n;

	(void)state;
	assert_int_equal(snapshot_init(&s, 4, 1, 1), 0);
	s.ncounters = 3;
	strcpy(s.counters[0].key.s.tenant, "a");
	s.counters[0].key.metric = JOBQ_M_PROCESSED;
	s.counters[0].key.status = JOBQ_STATUS_SUCCESS;
	s.counters[0].value = 100;
	s.counters[1] = s.counters[0];
	s.counters[1].key.status = JOBQ_STATUS_FAILED;
	s.counters[1].value = 10;
	strcpy(s.counters[2].key.s.tenant, "b");
	s.counters[2].key.metric = JOBQ_M_PROCESSED;
	s.counters[2].value = 5;
	n = top_rows(&s, NULL, 0, 0, prev, 4);
	assert_int_equal(n, 2);
	s.counters[0].value = 300;
	n = top_rows(&s, prev, 2, 2.0, rows, 4);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].tenant, "a"); /* busiest first */
	assert_true(rows[0].jobs_per_s == 100.0);
	assert_int_equal(rows[0].failures, 10);
	assert_true(rows[1].jobs_per_s == 0.0);
	assert_true(rows[0].wait_p50_ms < 0); /* no histogram: no data */
	snapshot_free(&s);
}

/* The same tenant on two queues: two rows, each with its own counts and
 * depth; the overflow depth reports of every queue join the one overflow
 * row; a QUEUE column only when more than one queue is seen. */
/* What top_print() draws for these rows, as a malloc'd string. */
static char *top_text(const struct top_row *rows, size_t n, const uint64_t *losses)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	assert_non_null(out);
	top_print(out, rows, n, 0, losses, "t");
	fclose(out);
	return text;
}

static void top_rows_per_queue_and_queue_column(void **state)
{
	struct snapshot s;
	struct top_row rows[8];
	char *text = NULL;
	size_t n;
	uint64_t losses[JOBQ_LOSS_COUNT] = { 0 };

	(void)state;
	assert_int_equal(snapshot_init(&s, 4, 1, 4), 0);
	s.ncounters = 2;
	for (int i = 0; i < 2; i++) {
		strcpy(s.counters[i].key.s.queue, i ? "q3" : "default");
		strcpy(s.counters[i].key.s.tenant, "check");
		s.counters[i].key.metric = JOBQ_M_PROCESSED;
		s.counters[i].key.status = JOBQ_STATUS_FAILED;
		s.counters[i].value = i ? 10 : 77;
	}
	s.ndepths = 3;
	strcpy(s.depths[0].key.queue, "q3");
	strcpy(s.depths[0].key.tenant, "check");
	s.depths[0].val.depth[1] = 5;
	strcpy(s.depths[1].key.queue, "default");
	s.depths[1].key.overflow = 1;
	s.depths[1].val.depth[0] = 1;
	strcpy(s.depths[2].key.queue, "q3");
	s.depths[2].key.overflow = 1;
	s.depths[2].val.depth[0] = 2;
	assert_true(top_rows_max(&s) <= 8);
	n = top_rows(&s, NULL, 0, 0, rows, 8);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		if (rows[i].overflow) {
			assert_string_equal(rows[i].queue, "");
			assert_int_equal(rows[i].depth, 3);
		} else if (!strcmp(rows[i].queue, "q3")) {
			assert_int_equal(rows[i].failures, 10);
			assert_int_equal(rows[i].depth, 5);
		} else {
			assert_string_equal(rows[i].queue, "default");
			assert_int_equal(rows[i].failures, 77);
			assert_int_equal(rows[i].depth, 0);
		}
	}
	text = top_text(rows, n, losses);
	assert_non_null(strstr(text, "QUEUE"));
	assert_non_null(strstr(text, "\nq3 "));
	assert_non_null(strstr(text, "\ndefault "));
	free(text);
	/* One queue: no QUEUE column. */
	s.ndepths = 0;
	strcpy(s.counters[1].key.s.queue, "default");
	strcpy(s.counters[1].key.s.tenant, "other");
	n = top_rows(&s, NULL, 0, 0, rows, 8);
	assert_int_equal(n, 2);
	text = top_text(rows, n, losses);
	assert_null(strstr(text, "QUEUE"));
	assert_non_null(strstr(text, "\ncheck "));
	free(text);
	/* Non-ASCII names pad by characters and are cut on a character
	 * boundary; control bytes cannot reach the terminal. */
	strcpy(s.counters[0].key.s.tenant, "caf\xc3\xa9\x1b[2J");
	for (int i = 0; i < 30; i++) /* 30 characters of 2 bytes: cut at 24 */
		memcpy(s.counters[1].key.s.tenant + 2 * i, "\xc3\xa9", 2);
	s.counters[1].key.s.tenant[60] = '\0';
	n = top_rows(&s, NULL, 0, 0, rows, 8);
	assert_int_equal(n, 2);
	text = top_text(rows, n, losses);
	{
		const char *cafe = strstr(text, "\ncaf\xc3\xa9?[2J");
		const char *acc = strstr(text, "\n\xc3\xa9");

		assert_non_null(cafe);
		assert_non_null(acc);
		/* 8 characters (9 bytes) + 16 spaces, then " %9.1f" of JOBS/S. */
		assert_memory_equal(cafe + 1 + 9, "                       0.0", 26);
		/* 24 whole characters of 2 bytes, then the same column. */
		assert_memory_equal(acc + 1 + 46, "\xc3\xa9       0.0", 12);
		assert_null(strchr(text, '\x1b')); /* not a terminal: no escape at all */
	}
	free(text);
	snapshot_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wire_round_trip_and_partial_input),
		cmocka_unit_test(wire_rejects_bad_length_and_unknown_version),
		cmocka_unit_test(enqueue_record_makes_producer_span_with_job_ids),
		cmocka_unit_test(start_and_finish_make_linked_consumer_span),
		cmocka_unit_test(same_job_id_in_two_queues_pairs_by_queue),
		cmocka_unit_test(peek_and_consume_walk_the_ring_in_order),
		cmocka_unit_test(inflight_expiry_needs_two_sightings_of_the_same_tag),
		cmocka_unit_test(finish_without_start_is_counted_not_built),
		cmocka_unit_test(full_queue_drops_oldest_and_counts),
		cmocka_unit_test(full_start_table_evicts_oldest_in_batches),
		cmocka_unit_test(many_interleaved_jobs_all_pair),
		cmocka_unit_test(sidecar_dying_with_unread_spans_counts_them),
		cmocka_unit_test(sidecar_reading_all_then_closing_loses_nothing),
		cmocka_unit_test(sidecar_dying_mid_stream_counts_unread_frames),
		cmocka_unit_test(process_span_encodes_link_error_and_attributes),
		cmocka_unit_test(enqueue_span_carries_producer_parent_and_flags),
		cmocka_unit_test(direct_span_encoder_writes_the_protobuf_c_bytes),
		cmocka_unit_test(metric_snapshot_encodes_trimmed_buckets),
		cmocka_unit_test(metric_snapshot_keys_carry_the_queue),
		cmocka_unit_test(kernel_histogram_decodes_count_and_inverted_min),
		cmocka_unit_test(kernel_memory_does_not_grow_with_the_cpu_count),
		cmocka_unit_test(kernel_memory_per_series_matches_the_formula),
		cmocka_unit_test(top_rows_rates_and_failures_per_tenant),
		cmocka_unit_test(top_rows_per_queue_and_queue_column),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
