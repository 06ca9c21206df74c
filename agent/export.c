/*
 * export.c - what the agent sends the sidecar: a Hello on every new
 * connection, a cumulative MetricSnapshot every interval, SpanBatches as
 * spans finish. A sidecar that is down never stops the agent: snapshots
 * are cumulative (the next one carries everything), spans wait in the
 * builder's bounded queue, and what is dropped is counted.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/conn.h"
#include "agent/encode.h"
#include "agent/spans.h"

#define MAX_QUEUED_BYTES (32u << 20)
#define SPANS_PER_BATCH 512

static void send_hello(struct agent *a)
{
	char host[256] = "unknown", id[320];
	struct hello_info h;
	uint8_t *buf;
	size_t len;

	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(id, sizeof(id), "%s:%d:%llu", host, (int)getpid(),
		 (unsigned long long)a->start_unix_ns);
	h = (struct hello_info){
		.agent_id = id,
		.host_name = host,
		.agent_pid = (uint32_t)getpid(),
		.target = a->target.desc,
		.agent_start_unix_ns = a->start_unix_ns,
		.agent_version = JOBQ_AGENT_VERSION,
	};
	if (encode_hello(&h, &buf, &len) == 0)
		conn_send(a->sc, buf, len, 0);
}

/* Connects when due; a new connection starts with a Hello. */
static void tick(struct agent *a)
{
	static int was_up = 1;

	if (!a->sc)
		return;
	if (conn_tick(a->sc, agent_now_ns(CLOCK_MONOTONIC) / 1000000)) {
		fprintf(stderr, "jobq-agent: connected to sidecar %s\n", a->opts.sidecar);
		send_hello(a);
		was_up = 1;
	} else if (!conn_is_up(a->sc) && was_up) {
		fprintf(stderr, "jobq-agent: sidecar unavailable (%s); retrying\n",
			conn_error(a->sc));
		was_up = 0;
	}
	if (a->spans)
		span_builder_count_dropped(a->spans, conn_take_lost_spans(a->sc));
}

void agent_sidecar_open(struct agent *a)
{
	a->sc = conn_new(a->opts.sidecar, MAX_QUEUED_BYTES);
	if (!a->sc) {
		fprintf(stderr, "jobq-agent: --sidecar %s: path too long for a Unix socket\n",
			a->opts.sidecar);
		return;
	}
	tick(a);
}

void agent_sidecar_metrics(struct agent *a)
{
	uint8_t *buf;
	size_t len;

	tick(a);
	if (!a->sc || !conn_is_up(a->sc))
		return;
	if (encode_metrics(&a->snap, a->start_unix_ns, &buf, &len) != 0) {
		fprintf(stderr, "jobq-agent: metric snapshot too large to encode; skipped\n");
		return;
	}
	conn_send(a->sc, buf, len, 0); /* full queue: the next snapshot carries it all */
}

void agent_sidecar_spans(struct agent *a)
{
	tick(a);
	if (!a->sc || !a->spans || !conn_is_up(a->sc))
		return; /* spans wait in the builder's bounded queue */
	while (span_builder_queued(a->spans) && conn_queued(a->sc) < MAX_QUEUED_BYTES / 2) {
		const struct span *first;
		size_t n = span_builder_peek(a->spans, &first);
		uint8_t *buf;
		size_t len;

		if (n > SPANS_PER_BATCH)
			n = SPANS_PER_BATCH;
		/* Encoded where they lie in the builder's ring: no copy. */
		if (encode_spans(first, n, span_builder_dropped(a->spans), &buf, &len) != 0 ||
		    conn_send(a->sc, buf, len, n) != 0)
			span_builder_count_dropped(a->spans, n);
		span_builder_consume(a->spans, n);
	}
}

void agent_sidecar_flush(struct agent *a)
{
	uint64_t deadline = agent_now_ns(CLOCK_MONOTONIC) + 2000000000ull;

	while (a->sc && conn_is_up(a->sc) && conn_queued(a->sc) &&
	       agent_now_ns(CLOCK_MONOTONIC) < deadline) {
		struct timespec ts = { 0, 10000000 };

		conn_tick(a->sc, agent_now_ns(CLOCK_MONOTONIC) / 1000000);
		nanosleep(&ts, NULL);
	}
}

void agent_sidecar_wait(struct agent *a, long ms)
{
	uint64_t end = agent_now_ns(CLOCK_MONOTONIC) + (uint64_t)ms * 1000000ull;

	for (;;) {
		uint64_t now = agent_now_ns(CLOCK_MONOTONIC);
		struct pollfd p = { .fd = a->sc ? conn_fd(a->sc) : -1, .events = POLLOUT };
		int timeout;

		if (now >= end)
			return;
		timeout = (int)((end - now + 999999) / 1000000);
		if (p.fd < 0 || !conn_queued(a->sc))
			p.fd = -1; /* nothing to write: just sleep */
		if (poll(&p, 1, timeout) < 0) {
			if (errno == EINTR)
				return; /* a signal: let the loop look at it */
			continue;
		}
		if (p.revents)
			conn_tick(a->sc, now / 1000000);
	}
}

void agent_sidecar_close(struct agent *a)
{
	conn_free(a->sc);
	a->sc = NULL;
}
