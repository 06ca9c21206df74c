/* prom.c - Prometheus text endpoint (see prom.h). */
#include "sidecar/prom.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "sidecar/otlp.h"

static void put_name(struct sc_buf *o, const struct sc_metric *m, const char *suffix)
{
	for (const char *p = m->name; *p; p++) {
		char c = (*p == '.' || *p == '-' || *p == '/') ? '_' : *p;
		sc_buf_append(o, &c, 1);
	}
	if (!strcmp(m->unit, "ms"))
		sc_buf_puts(o, "_milliseconds");
	sc_buf_puts(o, suffix);
}

static void put_label_value(struct sc_buf *o, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sc_buf_printf(o, "\\%c", *v);
		else if (*v == '\n')
			sc_buf_puts(o, "\\n");
		else
			sc_buf_append(o, v, 1);
	}
}

static void put_labels(struct sc_buf *o, const struct sc_agent *ag, const struct sc_series *se,
		       const char *le)
{
	static const char *const names[SC_ATTR_COUNT] = {
		"tenant_id", "job_type", "job_priority", "job_status", "messaging_destination_name",
	};
	sc_buf_puts(o, "{jobq_agent=\"");
	put_label_value(o, ag->agent_id);
	sc_buf_puts(o, "\"");
	if (se->overflow)
		sc_buf_puts(o, ",otel_metric_overflow=\"true\"");
	for (int i = 0; i < SC_ATTR_COUNT; i++) {
		if (!se->attr[i][0])
			continue;
		sc_buf_printf(o, ",%s=\"", names[i]);
		put_label_value(o, se->attr[i]);
		sc_buf_puts(o, "\"");
	}
	if (le)
		sc_buf_printf(o, ",le=\"%s\"", le);
	sc_buf_puts(o, "}");
}

static void put_series(struct sc_buf *o, const struct sc_metric *m, const struct sc_agent *ag,
		       const struct sc_series *se)
{
	if (m->kind == SC_KIND_COUNTER) {
		put_name(o, m, "_total");
		put_labels(o, ag, se, NULL);
		sc_buf_printf(o, " %llu\n", (unsigned long long)se->cur.counter);
	} else if (m->kind == SC_KIND_GAUGE) {
		put_name(o, m, "");
		put_labels(o, ag, se, NULL);
		sc_buf_printf(o, " %.17g\n", se->cur.gauge);
	} else if (se->cur.hist) {
		uint64_t b[SC_N_EXPLICIT_BOUNDS + 1], cum = 0;
		sc_explicit_from_exp(se->cur.hist, b);
		for (int i = 0; i <= SC_N_EXPLICIT_BOUNDS; i++) {
			char le[32];
			cum += b[i];
			if (i < SC_N_EXPLICIT_BOUNDS)
				snprintf(le, sizeof(le), "%g", sc_explicit_bounds[i]);
			else
				snprintf(le, sizeof(le), "+Inf");
			put_name(o, m, "_bucket");
			put_labels(o, ag, se, le);
			sc_buf_printf(o, " %llu\n", (unsigned long long)cum);
		}
		put_name(o, m, "_sum");
		put_labels(o, ag, se, NULL);
		sc_buf_printf(o, " %.17g\n", se->cur.hist->sum);
		put_name(o, m, "_count");
		put_labels(o, ag, se, NULL);
		sc_buf_printf(o, " %llu\n", (unsigned long long)se->cur.hist->count);
	}
}

int sc_prom_render(const struct sc_store *s, const struct sc_stats *st, struct sc_buf *o)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };
	for (int m = 0; m < s->nmetrics; m++) {
		const struct sc_metric *mt = &s->metrics[m];
		sc_buf_puts(o, "# HELP ");
		put_name(o, mt, mt->kind == SC_KIND_COUNTER ? "_total" : "");
		sc_buf_printf(o, " %s\n# TYPE ", mt->description);
		put_name(o, mt, mt->kind == SC_KIND_COUNTER ? "_total" : "");
		sc_buf_printf(o, " %s\n", types[mt->kind]);
		for (int a = 0; a < SC_MAX_AGENTS; a++) {
			const struct sc_agent *ag = &s->agents[a];
			if (!ag->used)
				continue;
			for (const struct sc_series *se = ag->series[m]; se; se = se->mnext)
				put_series(o, mt, ag, se);
			if (ag->overflow[m])
				put_series(o, mt, ag, ag->overflow[m]);
		}
	}
	if (st) {
		sc_buf_puts(o, "# HELP jobq_sidecar_exported_total Items the collector accepted\n"
			       "# TYPE jobq_sidecar_exported_total counter\n");
		for (int sig = 0; sig < SC_SIGNAL_COUNT; sig++)
			sc_buf_printf(o, "jobq_sidecar_exported_total{signal=\"%s\"} %llu\n", sc_signal_names[sig],
				      (unsigned long long)atomic_load(&st->exported[sig]));
		sc_buf_puts(o, "# HELP jobq_sidecar_dropped_total Items given up, by reason\n"
			       "# TYPE jobq_sidecar_dropped_total counter\n");
		for (int sig = 0; sig < SC_SIGNAL_COUNT; sig++)
			for (int r = 0; r < SC_DROP_COUNT; r++)
				sc_buf_printf(o, "jobq_sidecar_dropped_total{signal=\"%s\",reason=\"%s\"} %llu\n",
					      sc_signal_names[sig], sc_drop_reason_names[r],
					      (unsigned long long)atomic_load(&st->dropped[sig][r]));
		sc_buf_puts(o, "# HELP jobq_sidecar_retries_total Export attempts retried\n"
			       "# TYPE jobq_sidecar_retries_total counter\n");
		for (int sig = 0; sig < SC_SIGNAL_COUNT; sig++)
			sc_buf_printf(o, "jobq_sidecar_retries_total{signal=\"%s\"} %llu\n", sc_signal_names[sig],
				      (unsigned long long)atomic_load(&st->retries[sig]));
		sc_buf_puts(o, "# HELP jobq_sidecar_queue_bytes Encoded requests waiting to be sent\n"
			       "# TYPE jobq_sidecar_queue_bytes gauge\n");
		for (int sig = 0; sig < SC_SIGNAL_COUNT; sig++)
			sc_buf_printf(o, "jobq_sidecar_queue_bytes{signal=\"%s\"} %llu\n", sc_signal_names[sig],
				      (unsigned long long)atomic_load(&st->queue_bytes[sig]));
		sc_buf_puts(o, "# HELP jobq_sidecar_queue_limit_bytes Configured bound of the request queue (--queue-bytes)\n"
			       "# TYPE jobq_sidecar_queue_limit_bytes gauge\n");
		for (int sig = 0; sig < SC_SIGNAL_COUNT; sig++)
			sc_buf_printf(o, "jobq_sidecar_queue_limit_bytes{signal=\"%s\"} %llu\n", sc_signal_names[sig],
				      (unsigned long long)atomic_load(&st->queue_limit[sig]));
		sc_buf_printf(o, "# HELP jobq_sidecar_agent_frames_rejected_total Agent frames refused (bad version, undecodable, too large)\n"
			      "# TYPE jobq_sidecar_agent_frames_rejected_total counter\n"
			      "jobq_sidecar_agent_frames_rejected_total %llu\n",
			      (unsigned long long)atomic_load(&st->agent_frames_rejected));
	}
	return o->overflow ? -1 : 0;
}

int sc_prom_addr_split(const char *addr, char *host, size_t hostsz, const char **port, char *err,
		       size_t errsz)
{
	const char *colon = strrchr(addr, ':');
	size_t plen;

	if (!colon || colon == addr || (size_t)(colon - addr) >= hostsz) {
		snprintf(err, errsz, "--prom-listen \"%s\": expected HOST:PORT", addr);
		return -1;
	}
	const char *h = addr;
	size_t hl = (size_t)(colon - addr);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = colon + 1;
	plen = strspn(*port, "0123456789");
	if (plen == 0 || plen > 5 || (*port)[plen] || atol(*port) > 65535) {
		snprintf(err, errsz, "--prom-listen \"%s\": the port must be a number from 0 to 65535",
			 addr);
		return -1;
	}
	return 0;
}

int sc_prom_listen(struct sc_prom *p, const char *addr, char *err, size_t errsz)
{
	char host[256];
	const char *port;
	memset(p, 0, sizeof(*p));
	p->lfd = -1;
	for (int i = 0; i < SC_PROM_MAX_CONNS; i++)
		p->conns[i].fd = -1;
	sc_buf_init(&p->out, 64u << 20);
	if (sc_prom_addr_split(addr, host, sizeof(host), &port, err, errsz))
		return -1;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(err, errsz, "--prom-listen \"%s\": %s (use a numeric address and port)", addr,
			 gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16)) {
		snprintf(err, errsz, "--prom-listen %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	p->lfd = fd;
	/* Port 0 asks the kernel for a free port: say which one it gave. */
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	char hs[64], ps[8];
	if (getsockname(fd, (struct sockaddr *)&sa, &sl) ||
	    getnameinfo((struct sockaddr *)&sa, sl, hs, sizeof(hs), ps, sizeof(ps), NI_NUMERICHOST | NI_NUMERICSERV))
		snprintf(p->bound, sizeof(p->bound), "%s", addr);
	else
		snprintf(p->bound, sizeof(p->bound), sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", hs, ps);
	return 0;
}

int sc_prom_pollfds(struct sc_prom *p, struct pollfd *fds, int max)
{
	int n = 0;
	if (p->lfd < 0 || max < 1 + SC_PROM_MAX_CONNS)
		return 0;
	fds[n++] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
	for (int i = 0; i < SC_PROM_MAX_CONNS; i++)
		if (p->conns[i].fd >= 0)
			fds[n++] = (struct pollfd){ .fd = p->conns[i].fd, .events = POLLIN };
	return n;
}

static void conn_close(struct sc_prom_conn *c)
{
	close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* peer gone or SO_SNDTIMEO hit: give up on this scrape */
		p += w;
		len -= (size_t)w;
	}
}

static void respond(struct sc_prom *p, struct sc_prom_conn *c, const struct sc_store *s,
		    const struct sc_stats *st)
{
	/* The answer is written blocking, bounded by a send timeout. */
	int fl = fcntl(c->fd, F_GETFL);
	struct timeval tv = { 2, 0 };
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return;
	char head[256];
	if (strncmp(c->req, "GET /metrics ", 13) && strncmp(c->req, "GET /metrics?", 13)) {
		static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n";
		write_all(c->fd, nf, sizeof(nf) - 1);
		return;
	}
	sc_buf_reset(&p->out);
	if (sc_prom_render(s, st, &p->out)) {
		static const char e[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		write_all(c->fd, e, sizeof(e) - 1);
		return;
	}
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
			  "Content-Length: %zu\r\nConnection: close\r\n\r\n", p->out.len);
	write_all(c->fd, head, (size_t)hl);
	write_all(c->fd, p->out.data, p->out.len);
}

void sc_prom_handle(struct sc_prom *p, const struct pollfd *fds, int n, const struct sc_store *s,
		    const struct sc_stats *st, int64_t now_ms)
{
	for (int k = 0; k < n; k++) {
		if (!fds[k].revents)
			continue;
		if (fds[k].fd == p->lfd) {
			int fd;
			while ((fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
				int i;
				for (i = 0; i < SC_PROM_MAX_CONNS && p->conns[i].fd >= 0; i++)
					;
				if (i == SC_PROM_MAX_CONNS) {
					close(fd); /* too many scrapers at once */
					continue;
				}
				p->conns[i] = (struct sc_prom_conn){ .fd = fd, .since_ms = now_ms };
			}
			continue;
		}
		for (int i = 0; i < SC_PROM_MAX_CONNS; i++) {
			struct sc_prom_conn *c = &p->conns[i];
			if (c->fd != fds[k].fd)
				continue;
			ssize_t r = recv(c->fd, c->req + c->len, sizeof(c->req) - 1 - c->len, 0);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (r <= 0) {
				conn_close(c);
				break;
			}
			c->len += (size_t)r;
			c->req[c->len] = '\0';
			if (strstr(c->req, "\r\n\r\n") || c->len == sizeof(c->req) - 1) {
				respond(p, c, s, st);
				conn_close(c);
			}
			break;
		}
	}
	/* Slow or silent clients do not keep a slot. */
	for (int i = 0; i < SC_PROM_MAX_CONNS; i++)
		if (p->conns[i].fd >= 0 && now_ms - p->conns[i].since_ms > 5000)
			conn_close(&p->conns[i]);
}

void sc_prom_close(struct sc_prom *p)
{
	for (int i = 0; i < SC_PROM_MAX_CONNS; i++)
		if (p->conns[i].fd >= 0)
			conn_close(&p->conns[i]);
	if (p->lfd >= 0)
		close(p->lfd);
	p->lfd = -1;
	sc_buf_free(&p->out);
}
