/*
 * prom.h - Prometheus text exposition (format 0.0.4) of the store.
 *
 * Names: dots become underscores, unit "ms" adds _milliseconds, counters
 * end in _total. Labels: tenant_id, job_type, job_priority, job_status,
 * messaging_destination_name (when present), jobq_agent (the agent id, so
 * several agents never produce duplicate series) and
 * otel_metric_overflow="true" on overflow series. Histograms are classic
 * ones with the seed's boundaries (SC_EXPLICIT_BOUNDS, cumulative `le`),
 * derived from the exponential buckets as documented in otlp.h.
 *
 * The HTTP side is deliberately tiny: GET /metrics answered from the event
 * loop, one request per connection, bounded request size and count.
 */
#ifndef SC_PROM_H
#define SC_PROM_H

#include <poll.h>
#include <stdint.h>

#include "sidecar/buf.h"
#include "sidecar/stats.h"
#include "sidecar/store.h"

int sc_prom_render(const struct sc_store *s, const struct sc_stats *st, struct sc_buf *out);

#define SC_PROM_MAX_CONNS 8

struct sc_prom_conn {
	int fd;
	int64_t since_ms;
	size_t len;
	char req[4096];
};

struct sc_prom {
	int lfd;
	char bound[80]; /* the address listened on, port 0 resolved: "127.0.0.1:9464" */
	struct sc_prom_conn conns[SC_PROM_MAX_CONNS];
	struct sc_buf out;
};

/* addr is "HOST:PORT" (IPv4 or [IPv6]); err gets a reason on failure. */
int sc_prom_listen(struct sc_prom *p, const char *addr, char *err, size_t errsz);
/* Splits "HOST:PORT" (IPv6 as [ADDR]:PORT) into host (hostsz bytes) and the
 * port; -1 with a message in err unless PORT is a number from 0 to 65535
 * (getaddrinfo would take 99999 and bind port 99999 - 65536). */
int sc_prom_addr_split(const char *addr, char *host, size_t hostsz, const char **port, char *err,
		       size_t errsz);
int sc_prom_pollfds(struct sc_prom *p, struct pollfd *fds, int max);
void sc_prom_handle(struct sc_prom *p, const struct pollfd *fds, int n, const struct sc_store *s,
		    const struct sc_stats *st, int64_t now_ms);
void sc_prom_close(struct sc_prom *p);

#endif
