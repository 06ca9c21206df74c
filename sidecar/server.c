/* server.c - agents' Unix socket server (see server.h). */
#include "sidecar/server.h"
#include "sidecar/wire.h"

#include <errno.h>
#include <stdbool.h>
#include <malloc.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int sc_server_listen(struct sc_server *s, const char *path, mode_t mode, char *err, size_t errsz)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat stt;

	s->lfd = -1;
	for (int i = 0; i < SC_MAX_CONNS; i++)
		s->conns[i].fd = -1;
	if (!s->max_frame)
		s->max_frame = SC_MAX_FRAME;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errsz, "socket path \"%s\" is longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);

	if (lstat(path, &stt) == 0) {
		if (!S_ISSOCK(stt.st_mode)) {
			snprintf(err, errsz, "%s exists and is not a socket; not replacing it", path);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0) {
			snprintf(err, errsz, "socket: %s", strerror(errno));
			return -1;
		}
		int live = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		int cerr = errno;
		close(probe);
		if (live) {
			snprintf(err, errsz, "%s: another sidecar is listening there", path);
			return -1;
		}
		if (cerr != ECONNREFUSED) {
			snprintf(err, errsz, "%s: cannot tell whether it is stale: %s", path, strerror(cerr));
			return -1;
		}
		if (unlink(path) && errno != ENOENT) {
			snprintf(err, errsz, "removing stale socket %s: %s", path, strerror(errno));
			return -1;
		}
	}

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsz, "socket: %s", strerror(errno));
		return -1;
	}
	/* Create it with no access for others, then set the exact mode. */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int berr = errno;
	umask(old);
	if (rc) {
		snprintf(err, errsz, "bind %s: %s", path, strerror(berr));
		close(fd);
		return -1;
	}
	if (chmod(path, mode) || listen(fd, 16)) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	s->lfd = fd;
	return 0;
}

int sc_server_pollfds(struct sc_server *s, struct pollfd *fds, int max)
{
	int n = 0;
	if (s->lfd >= 0 && n < max)
		fds[n++] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
	for (int i = 0; i < SC_MAX_CONNS && n < max; i++)
		if (s->conns[i].fd >= 0)
			fds[n++] = (struct pollfd){ .fd = s->conns[i].fd, .events = POLLIN };
	return n;
}

static void conn_close(struct sc_server *s, struct sc_conn *c)
{
	close(c->fd);
	c->fd = -1;
	sc_frame_reader_free(&c->rd);
	if (c->slot >= 0)
		sc_store_disconnected(s->store, c->slot);
	c->slot = -1;
}

/* The top level of a Frame, read without decoding its body. */
struct frame_top {
	uint32_t version;
	int nbodies;           /* body fields seen (a oneof: the last one wins) */
	uint32_t body;         /* number of the last: 2 hello, 3 metrics, 4 spans */
	const uint8_t *data;   /* its bytes */
	size_t len;
};

/* -1 if anything is unusual (protobuf-c decides then). */
static int frame_top(const uint8_t *buf, size_t n, struct frame_top *t)
{
	const uint8_t *p = buf, *end = buf + n;
	struct sc_pb_field f;
	int r;

	memset(t, 0, sizeof(*t));
	while ((r = sc_pb_next(&p, end, &f)) == 1) {
		if (f.number == 1) {
			if (f.wire_type != SC_WT_VARINT)
				return -1;
			t->version = (uint32_t)f.varint;
		} else if (f.number >= 2 && f.number <= 4) {
			if (f.wire_type != SC_WT_LEN)
				return -1;
			t->nbodies++;
			t->body = f.number;
			t->data = f.data;
			t->len = f.len;
		}
	}
	return r;
}

/* Metric snapshots are applied element by element straight from the wire:
 * the decoded form of a 10^5-series snapshot would be several times the
 * frame. Returns 1 if the frame must go through the generic path (which
 * reports what is wrong), 0 when applied, -1 to close the connection. */
static int dispatch_metrics_streaming(struct sc_server *s, struct sc_conn *c, const struct frame_top *t)
{
	const uint8_t *p, *end, *snap = t->data;
	size_t snap_len = t->len;
	struct sc_pb_field f;
	int r;

	if (t->version != SC_AGENT_PROTO_VERSION || c->slot < 0)
		return 1; /* the generic path reports the problem */

	/* Pass 1: the snapshot time, wherever it is; the structure is checked. */
	uint64_t now = 0;
	for (p = snap, end = snap + snap_len; (r = sc_pb_next(&p, end, &f)) == 1;)
		if (f.number == 1 && f.wire_type == 0)
			now = f.varint;
	if (r < 0)
		return 1;

	/* Pass 2: each element alone. */
	sc_store_snapshot_begin(s->store, c->slot);
	for (p = snap; (r = sc_pb_next(&p, end, &f)) == 1;) {
		if (f.wire_type != 2 || f.number < 2 || f.number > 5)
			continue;
		ProtobufCMessage *m = NULL;
		int rc = 0;
		switch (f.number) {
		case 2: {
			Jobq__Agent__Counter *x = jobq__agent__counter__unpack(NULL, f.len, f.data);
			rc = x ? sc_store_apply_counter(s->store, c->slot, x, now) : -2;
			m = x ? &x->base : NULL;
			break;
		}
		case 3: {
			Jobq__Agent__Gauge *x = jobq__agent__gauge__unpack(NULL, f.len, f.data);
			rc = x ? sc_store_apply_gauge(s->store, c->slot, x, now) : -2;
			m = x ? &x->base : NULL;
			break;
		}
		case 4: {
			Jobq__Agent__ExpHistogram *x = jobq__agent__exp_histogram__unpack(NULL, f.len, f.data);
			rc = x ? sc_store_apply_histogram(s->store, c->slot, x, now) : -2;
			m = x ? &x->base : NULL;
			break;
		}
		case 5: {
			Jobq__Agent__Loss *x = jobq__agent__loss__unpack(NULL, f.len, f.data);
			rc = x ? sc_store_apply_loss(s->store, c->slot, x) : -2;
			m = x ? &x->base : NULL;
			break;
		}
		}
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		if (rc == -2) {
			s->log("agent %s: undecodable element in a snapshot; closing it",
			       s->store->agents[c->slot].agent_id);
			atomic_fetch_add(&s->st->agent_frames_rejected, 1);
			return -1;
		}
		if (rc) {
			s->log("agent %s: out of memory applying a snapshot", s->store->agents[c->slot].agent_id);
			return -1;
		}
	}
	return 0;
}

/* Counts a frame that closes its connection. */
static int rejected(struct sc_server *s)
{
	atomic_fetch_add(&s->st->agent_frames_rejected, 1);
	return -1;
}

static int undecodable(struct sc_server *s, size_t n)
{
	s->log("agent connection: undecodable frame of %zu bytes; closing it", n);
	return rejected(s);
}

static int bad_version(struct sc_server *s, uint32_t version)
{
	s->log("agent connection: protocol version %u, this sidecar speaks %d; closing it", version,
	       SC_AGENT_PROTO_VERSION);
	return rejected(s);
}

static int no_hello(struct sc_server *s)
{
	s->log("agent connection: first frame is not a Hello; closing it");
	return rejected(s);
}

/* A SpanBatch goes straight into the span buffer as OTLP bytes (spans.h).
 * The checks run in the order the decoded path had them: a batch that
 * protobuf-c would not decode, then the version, then the Hello. */
static int dispatch_spans(struct sc_server *s, struct sc_conn *c, uint32_t version, const uint8_t *batch,
			  size_t len, size_t n)
{
	struct sc_spanbuf_mark m = sc_spanbuf_mark(s->spans);
	size_t refused;
	uint64_t dropped;

	if (sc_spanbuf_add(s->spans, c->slot, batch, len, &refused, &dropped))
		return undecodable(s, n);
	if (version != SC_AGENT_PROTO_VERSION) {
		sc_spanbuf_rollback(s->spans, m);
		return bad_version(s, version);
	}
	if (c->slot < 0) {
		sc_spanbuf_rollback(s->spans, m);
		return no_hello(s);
	}
	sc_store_span_losses(s->store, c->slot, dropped);
	if (refused)
		atomic_fetch_add(&s->st->dropped[SC_SIGNAL_TRACES][SC_DROP_BUFFER_FULL], refused);
	return 0;
}

int sc_server_dispatch(struct sc_server *s, struct sc_conn *c, const uint8_t *buf, size_t n)
{
	struct frame_top t;
	bool scanned = frame_top(buf, n, &t) == 0, plain = scanned && t.nbodies == 1;

	/* The two frames an agent sends all the time, without protobuf-c. */
	if (plain && t.body == 4)
		return dispatch_spans(s, c, t.version, t.data, t.len, n);
	if (plain && t.body == 3) {
		int sr = dispatch_metrics_streaming(s, c, &t);
		if (sr <= 0) {
			if (n > (1u << 20))
				malloc_trim(0); /* give a big snapshot's transient memory back */
			return sr;
		}
	}

	/* Decode into an arena: a snapshot is ~10^5 small structs, and one
	 * arena returns them to the system at once (glibc would keep them). */
	struct sc_arena arena;
	ProtobufCAllocator alloc;
	sc_arena_init(&arena, 8 * (size_t)s->max_frame + (1u << 20));
	sc_arena_pb_allocator(&arena, &alloc);
	Jobq__Agent__Frame *f = jobq__agent__frame__unpack(&alloc, n, buf);
	int rc = 0;
	if (!f) {
		sc_arena_free(&arena);
		return undecodable(s, n);
	}
	if (f->version != SC_AGENT_PROTO_VERSION) {
		rc = bad_version(s, f->version);
	} else if (c->slot < 0 && f->body_case != JOBQ__AGENT__FRAME__BODY_HELLO) {
		rc = no_hello(s);
	} else if (f->body_case == JOBQ__AGENT__FRAME__BODY_HELLO) {
		if (c->slot >= 0)
			sc_store_disconnected(s->store, c->slot);
		c->slot = sc_store_hello(s->store, f->hello);
		if (c->slot < 0) {
			s->log("agent %s: too many agents (%d) or out of memory; closing it",
			       f->hello->agent_id, SC_MAX_AGENTS);
			rc = -1;
		}
	} else if (f->body_case == JOBQ__AGENT__FRAME__BODY_METRICS) {
		if (sc_store_apply(s->store, c->slot, f->metrics)) {
			s->log("agent %s: out of memory applying a snapshot", s->store->agents[c->slot].agent_id);
			rc = -1;
		}
	} else if (f->body_case == JOBQ__AGENT__FRAME__BODY_SPANS) {
		/* An unusual frame (several bodies, say) that protobuf-c took:
		 * its spans are the last SpanBatch, as the oneof says. */
		rc = scanned && t.body == 4 ? dispatch_spans(s, c, f->version, t.data, t.len, n) : undecodable(s, n);
	}
	sc_arena_free(&arena);
	if (n > (1u << 20))
		malloc_trim(0); /* give a big snapshot's transient memory back */
	return rc;
}

static void conn_read(struct sc_server *s, struct sc_conn *c)
{
	/* A bounded number of reads per wakeup, so one busy agent cannot
	 * starve the others or the export timers. */
	for (int rounds = 0; rounds < 64; rounds++) {
		/* Spans waiting for an export: let the event loop send them
		 * before reading more (they wait in the agent's bounded queue
		 * meanwhile), rather than refusing batches as buffer_full. */
		if (sc_spanbuf_due(s->spans))
			return;
		size_t avail;
		uint8_t *p = sc_frame_space(&c->rd, &avail);
		if (!p) {
			s->log("agent connection: out of memory for its frame buffer; closing it");
			conn_close(s, c);
			return;
		}
		ssize_t r = recv(c->fd, p, avail, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			conn_close(s, c); /* EOF or error: the agent went away */
			return;
		}
		sc_frame_commit(&c->rd, (size_t)r);
		const uint8_t *frame;
		size_t n;
		int st;
		while ((st = sc_frame_next(&c->rd, &frame, &n)) == SC_FRAME_READY) {
			if (sc_server_dispatch(s, c, frame, n)) {
				conn_close(s, c);
				return;
			}
		}
		if (st == SC_FRAME_NEED_MORE)
			sc_frame_shrink(&c->rd);
		if (st == SC_FRAME_ERROR) {
			s->log("agent connection: frame length outside 1..%zu; closing it", s->max_frame);
			atomic_fetch_add(&s->st->agent_frames_rejected, 1);
			conn_close(s, c);
			return;
		}
	}
}

void sc_server_handle(struct sc_server *s, const struct pollfd *fds, int n)
{
	for (int k = 0; k < n; k++) {
		if (!fds[k].revents)
			continue;
		if (fds[k].fd == s->lfd) {
			int fd;
			while ((fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
				int i;
				for (i = 0; i < SC_MAX_CONNS && s->conns[i].fd >= 0; i++)
					;
				if (i == SC_MAX_CONNS) {
					s->log("agent connection refused: %d connections already", SC_MAX_CONNS);
					close(fd);
					continue;
				}
				s->conns[i].fd = fd;
				s->conns[i].slot = -1;
				sc_frame_reader_init(&s->conns[i].rd, s->max_frame);
			}
			continue;
		}
		for (int i = 0; i < SC_MAX_CONNS; i++) {
			if (s->conns[i].fd == fds[k].fd) {
				conn_read(s, &s->conns[i]);
				break;
			}
		}
	}
}

void sc_server_report_drops(struct sc_server *s, int64_t now_ms)
{
	const struct sc_store *st = s->store;
	uint64_t spans = atomic_load(&s->st->dropped[SC_SIGNAL_TRACES][SC_DROP_BUFFER_FULL]);
	if (spans != s->span_drops_logged &&
	    (!s->span_drops_log_ms || now_ms - s->span_drops_log_ms >= SC_DROP_LOG_INTERVAL_MS)) {
		s->log("dropped %llu spans since the last report: span buffer full (%llu buffer_full in all; "
		       "the exporter cannot keep up: see jobq.sidecar.dropped.spans{reason=buffer_full})",
		       (unsigned long long)(spans - s->span_drops_logged), (unsigned long long)spans);
		s->span_drops_logged = spans;
		s->span_drops_log_ms = now_ms ? now_ms : 1;
	}
	uint64_t total = st->dropped_points_invalid + st->dropped_points_metric_limit;
	if (total == s->drops_logged)
		return;
	if (s->drops_log_ms && now_ms - s->drops_log_ms < SC_DROP_LOG_INTERVAL_MS)
		return;
	s->log("dropped %llu agent metric points since the last report (%llu invalid, %llu metric_limit in all); latest: %s",
	       (unsigned long long)(total - s->drops_logged), (unsigned long long)st->dropped_points_invalid,
	       (unsigned long long)st->dropped_points_metric_limit, st->last_drop);
	s->drops_logged = total;
	s->drops_log_ms = now_ms ? now_ms : 1;
}

void sc_server_close(struct sc_server *s)
{
	for (int i = 0; i < SC_MAX_CONNS; i++)
		if (s->conns[i].fd >= 0)
			conn_close(s, &s->conns[i]);
	if (s->lfd >= 0) {
		close(s->lfd);
		unlink(s->path);
	}
	s->lfd = -1;
}
