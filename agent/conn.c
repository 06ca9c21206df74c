/*
 * conn.c - non-blocking sidecar connection (see conn.h).
 */
#include "agent/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct frame {
	struct frame *next;
	uint8_t *buf;
	size_t len, off; /* off: bytes already written */
	size_t nspans;
};

struct conn {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	uint64_t next_try_ms, backoff_ms;
	struct frame *head, *tail;
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

static void disconnect(struct conn *c, const char *what, int err)
{
	snprintf(c->err, sizeof(c->err), "%s %s: %s", what, c->path, strerror(err));
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
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
		if (f->off == f->len) {
			c->head = f->next;
			if (!c->head)
				c->tail = NULL;
			free(f->buf);
			free(f);
		}
	}
}

int conn_tick(struct conn *c, uint64_t now_ms)
{
	int fresh = 0;

	if (c->fd < 0)
		fresh = try_connect(c, now_ms);
	flush(c);
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
