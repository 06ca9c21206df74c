/* server.c - agents' Unix socket server (see server.h). */
#include "sidecar/server.h"

#include <errno.h>
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

int sc_server_dispatch(struct sc_server *s, struct sc_conn *c, const uint8_t *buf, size_t n)
{
	/* Decode into an arena: a snapshot is ~10^5 small structs, and one
	 * arena returns them to the system at once (glibc would keep them). */
	struct sc_arena *arena = malloc(sizeof(*arena));
	ProtobufCAllocator alloc;
	if (!arena) {
		s->log("agent connection: out of memory decoding a frame; closing it");
		return -1;
	}
	sc_arena_init(arena, 8 * (size_t)s->max_frame + (1u << 20));
	sc_arena_pb_allocator(arena, &alloc);
	Jobq__Agent__Frame *f = jobq__agent__frame__unpack(&alloc, n, buf);
	int rc = 0;
	if (!f) {
		s->log("agent connection: undecodable frame of %zu bytes; closing it", n);
		atomic_fetch_add(&s->st->agent_frames_rejected, 1);
		sc_arena_free(arena);
		free(arena);
		return -1;
	}
	if (f->version != SC_AGENT_PROTO_VERSION) {
		s->log("agent connection: protocol version %u, this sidecar speaks %d; closing it",
		       f->version, SC_AGENT_PROTO_VERSION);
		atomic_fetch_add(&s->st->agent_frames_rejected, 1);
		rc = -1;
	} else if (c->slot < 0 && f->body_case != JOBQ__AGENT__FRAME__BODY_HELLO) {
		s->log("agent connection: first frame is not a Hello; closing it");
		atomic_fetch_add(&s->st->agent_frames_rejected, 1);
		rc = -1;
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
		Jobq__Agent__SpanBatch *b = f->spans;
		sc_store_span_losses(s->store, c->slot, b->dropped_spans);
		/* The span buffer owns the batch and its arena from now on. */
		size_t refused = sc_spanbuf_add(s->spans, c->slot, b, arena);
		if (refused)
			atomic_fetch_add(&s->st->dropped[SC_SIGNAL_TRACES][SC_DROP_BUFFER_FULL], refused);
		return rc;
	}
	sc_arena_free(arena);
	free(arena);
	if (n > (1u << 20))
		malloc_trim(0); /* give a big snapshot's transient memory back */
	return rc;
}

static void conn_read(struct sc_server *s, struct sc_conn *c)
{
	/* A bounded number of reads per wakeup, so one busy agent cannot
	 * starve the others or the export timers. */
	for (int rounds = 0; rounds < 64; rounds++) {
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
