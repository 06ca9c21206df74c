/*
 * conn.c - non-blocking sidecar connection (see conn.h).
 */
#include "agent/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct frame {
	struct frame *next;
	uint8_t *buf;
	size_t len, off; /* off: bytes already written */
	size_t nspans;
	uint64_t end; /* in the sent list: stream offset just past the frame */
};

/*
 * A frame written to the socket is not yet read by the sidecar: it sits
 * in the socket buffer (up to 8 MiB) and dies with a sidecar that exits.
 * Frames carrying spans therefore stay in the sent list (buffer freed,
 * only their end offset and span count kept) until SIOCOUTQ shows the
 * peer has read past them; on a disconnect whose peer left data unread
 * (ECONNRESET), the spans of frames still in the list are counted lost.
 */
struct conn {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	uint64_t next_try_ms, backoff_ms;
	struct frame *head, *tail;
	struct frame *sent_head, *sent_tail;
	uint64_t sent_bytes; /* written on this connection */
	size_t queued, max_queued;
	uint64_t lost_spans;
	char err[160];
};

struct conn *conn_new(const char *path, size_t max_queued_bytes)
{
	struct conn *c;

	if (strlen(path) >= sizeof(c->path))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	strcpy(c->path, path);
	c->fd = -1;
	c->backoff_ms = 100;
	c->max_queued = max_queued_bytes;
	return c;
}

static void drop_queue(struct conn *c)
{
	while (c->head) {
		struct frame *f = c->head;

		c->head = f->next;
		c->lost_spans += f->nspans;
		free(f->buf);
		free(f);
	}
	c->tail = NULL;
	c->queued = 0;
}

/* Forgets sent frames ending at or before upto (read by the peer); with
 * lost, counts the spans of all of them instead. */
static void release_sent(struct conn *c, uint64_t upto, int lost)
{
	while (c->sent_head && (lost || c->sent_head->end <= upto)) {
		struct frame *f = c->sent_head;

		c->sent_head = f->next;
		if (lost)
			c->lost_spans += f->nspans;
		free(f);
	}
	if (!c->sent_head)
		c->sent_tail = NULL;
}

/* Releases the sent frames the peer has read. */
static void confirm_sent(struct conn *c)
{
	struct pollfd p;
	int outq;

	if (c->fd < 0 || !c->sent_head)
		return;
	if (ioctl(c->fd, SIOCOUTQ, &outq) != 0 || outq < 0) {
		release_sent(c, UINT64_MAX, 0); /* cannot tell: assume read */
		return;
	}
	/* A peer that closed purges what it did not read, which also empties
	 * our output queue: read the queue first, then make sure the peer was
	 * still there (it marks us shut down before purging). */
	p = (struct pollfd){ .fd = c->fd, .events = 0 };
	if (poll(&p, 1, 0) != 1 || !(p.revents & (POLLHUP | POLLERR))) {
		/* SIOCOUTQ counts buffer sizes, not bytes: an over-estimate of
		 * the unread bytes, so this never releases an unread frame. */
		uint64_t unread = (uint64_t)outq;

		release_sent(c, unread >= c->sent_bytes ? 0 : c->sent_bytes - unread, 0);
	}
}

static void disconnect(struct conn *c, const char *what, int err)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	snprintf(c->err, sizeof(c->err), "%s %s: %s", what, c->path, strerror(err));
	if (c->fd >= 0 && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		soerr = 0;
	/* The peer closing with unread data sets ECONNRESET on us (returned by
	 * the failing send or pending in SO_ERROR); a clean EPIPE means it had
	 * read everything. Anything else: we cannot tell, count them lost. */
	release_sent(c, UINT64_MAX, !(err == EPIPE && soerr != ECONNRESET));
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->sent_bytes = 0;
	/* A half-written frame would desynchronise the stream: a new
	 * connection starts clean with its own Hello. */
	drop_queue(c);
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	drop_queue(c);
	release_sent(c, UINT64_MAX, 0);
	free(c);
}

static int try_connect(struct conn *c, uint64_t now_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (now_ms < c->next_try_ms)
		return 0;
	strcpy(sa.sun_path, c->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(c->err, sizeof(c->err), "connect %s: %s", c->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		c->next_try_ms = now_ms + c->backoff_ms;
		c->backoff_ms = c->backoff_ms * 2 > 5000 ? 5000 : c->backoff_ms * 2;
		return 0;
	}
	/* A deep socket buffer rides out the sidecar's scheduling hiccups;
	 * as root the wmem_max cap does not apply (best effort either way). */
	{
		int sz = 8 << 20;

		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) != 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	c->fd = fd;
	c->backoff_ms = 100;
	c->err[0] = '\0';
	return 1;
}

static void flush(struct conn *c)
{
	while (c->fd >= 0 && c->head) {
		struct frame *f = c->head;
		ssize_t n = send(c->fd, f->buf + f->off, f->len - f->off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			disconnect(c, "send to", errno);
			return;
		}
		f->off += (size_t)n;
		c->queued -= (size_t)n;
		c->sent_bytes += (uint64_t)n;
		if (f->off == f->len) {
			c->head = f->next;
			if (!c->head)
				c->tail = NULL;
			free(f->buf);
			f->buf = NULL;
			if (!f->nspans) {
				free(f);
				continue;
			}
			f->next = NULL;
			f->end = c->sent_bytes;
			if (c->sent_tail)
				c->sent_tail->next = f;
			else
				c->sent_head = f;
			c->sent_tail = f;
		}
	}
}

/* The sidecar closed its end (noticed before anything more is handed to
 * this connection, so unsent data stays with the caller). */
static int peer_gone(const struct conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

int conn_tick(struct conn *c, uint64_t now_ms)
{
	int fresh = 0;

	if (c->fd >= 0 && peer_gone(c))
		disconnect(c, "closed by", EPIPE);
	if (c->fd < 0)
		fresh = try_connect(c, now_ms);
	flush(c);
	confirm_sent(c);
	return fresh && c->fd >= 0;
}

int conn_is_up(const struct conn *c)
{
	return c->fd >= 0;
}

int conn_send(struct conn *c, uint8_t *buf, size_t len, size_t nspans)
{
	struct frame *f;

	if (c->fd < 0 || c->queued + len > c->max_queued || !(f = calloc(1, sizeof(*f)))) {
		free(buf);
		return -1;
	}
	f->buf = buf;
	f->len = len;
	f->nspans = nspans;
	if (c->tail)
		c->tail->next = f;
	else
		c->head = f;
	c->tail = f;
	c->queued += len;
	flush(c);
	return 0;
}

int conn_fd(const struct conn *c)
{
	return c->fd;
}

size_t conn_queued(const struct conn *c)
{
	return c->queued;
}

uint64_t conn_take_lost_spans(struct conn *c)
{
	uint64_t n = c->lost_spans;

	c->lost_spans = 0;
	return n;
}

const char *conn_error(const struct conn *c)
{
	return c->err;
}
