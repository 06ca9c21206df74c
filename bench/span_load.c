/*
 * span_load - drives jobq-sidecar with SpanBatch frames shaped exactly as
 * jobq-agent sends them (its own encode_spans(), the agent's attribute
 * set), at a steady rate: every 50 ms (the agent's drain tick) the spans of
 * that tick go out in frames of at most 512, like agent/export.c does.
 *
 *   span_load --socket PATH --rate SPANS_PER_S --seconds S [--tenants N]
 *
 * Every job yields a job.enqueue and a job.process span (linked, with a
 * parent for the enqueue span); one job in 16 fails with an error text.
 * Prints "spans=N" when done. Used by bench/sidecar_span_cpu.py to measure
 * the sidecar's CPU per span side by side.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent/encode.h"

#define TICK_MS 50
#define PER_FRAME 512

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void fill_ids(uint8_t *p, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	p[0] |= 1; /* never all zero */
}

/* The two spans of job j. */
static void make_job(struct span *s, uint64_t j, int tenants)
{
	uint64_t t = now_ns(CLOCK_REALTIME);
	struct span *e = &s[0], *p = &s[1];
	memset(s, 0, 2 * sizeof(*s));
	e->kind = SPAN_ENQUEUE;
	fill_ids(e->trace_id, 16, j * 3 + 1);
	fill_ids(e->span_id, 8, j * 3 + 2);
	fill_ids(e->parent_span_id, 8, j * 3 + 3);
	e->has_parent = 1;
	e->flags = 1;
	e->start_unix_ns = t - 2000000;
	e->end_unix_ns = t - 1990000;
	e->job_id = j + 1;
	e->priority = (uint8_t)(j % 3);
	snprintf(e->tenant, sizeof(e->tenant), "tenant-%llu", (unsigned long long)(j % (uint64_t)tenants));
	snprintf(e->type, sizeof(e->type), "type-%llu", (unsigned long long)(j % 5));
	snprintf(e->queue, sizeof(e->queue), "default");
	*p = *e;
	p->kind = SPAN_PROCESS; /* a trace of its own, linked to the enqueue */
	fill_ids(p->trace_id, 16, j * 3 + 4);
	fill_ids(p->span_id, 8, j * 3 + 5);
	p->has_parent = 0;
	memcpy(p->link_trace_id, e->trace_id, 16);
	memcpy(p->link_span_id, e->span_id, 8);
	p->has_link = 1;
	p->start_unix_ns = t - 1000000;
	p->end_unix_ns = t - 10000;
	p->attempt = 1;
	p->wait_ns = 990000 + (int64_t)(j % 1000);
	p->status = (j % 16 == 15) ? JOBQ_STATUS_FAILED : JOBQ_STATUS_SUCCESS;
	if (p->status == JOBQ_STATUS_FAILED)
		snprintf(p->error, sizeof(p->error), "boom: job %llu failed", (unsigned long long)j);
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	double rate = 20000, seconds = 5;
	int tenants = 10, c;
	static const struct option lo[] = {
		{ "socket", 1, 0, 'S' }, { "rate", 1, 0, 'r' }, { "seconds", 1, 0, 's' },
		{ "tenants", 1, 0, 't' }, { 0, 0, 0, 0 },
	};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'S': path = optarg; break;
		case 'r': rate = atof(optarg); break;
		case 's': seconds = atof(optarg); break;
		case 't': tenants = atoi(optarg); break;
		default: fprintf(stderr, "span_load: bad option\n"); return 2;
		}
	}
	if (!path || rate < 2 || seconds <= 0 || tenants < 1) {
		fprintf(stderr, "usage: span_load --socket PATH --rate SPANS_PER_S --seconds S [--tenants N]\n");
		return 2;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "span_load: connect %s: %s\n", path, strerror(errno));
		return 1;
	}
	struct hello_info h = { .agent_id = "span-load", .host_name = "bench", .agent_pid = (uint32_t)getpid(),
				.target = "pid:1", .agent_start_unix_ns = now_ns(CLOCK_REALTIME),
				.agent_version = "bench" };
	uint8_t *buf;
	size_t len;
	if (encode_hello(&h, &buf, &len) || send_all(fd, buf, len)) {
		fprintf(stderr, "span_load: hello failed\n");
		return 1;
	}
	free(buf);

	static struct span batch[PER_FRAME];
	uint64_t t0 = now_ns(CLOCK_MONOTONIC), total = 0, jobs = 0;
	uint64_t end = t0 + (uint64_t)(seconds * 1e9);
	for (uint64_t tick = 1;; tick++) {
		uint64_t due = t0 + tick * TICK_MS * 1000000ull;
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		if (due > now) {
			struct timespec ts = { (time_t)((due - now) / 1000000000ull), (long)((due - now) % 1000000000ull) };
			nanosleep(&ts, NULL);
		}
		/* Spans owed by now, sent whole jobs at a time. */
		uint64_t want = (uint64_t)(rate * (double)(due - t0) / 1e9) / 2 * 2;
		while (total < want) {
			size_t n = 0;
			while (n + 2 <= PER_FRAME && total + n < want)
				make_job(&batch[n], jobs++, tenants), n += 2;
			if (encode_spans(batch, n, 0, &buf, &len) || send_all(fd, buf, len)) {
				fprintf(stderr, "span_load: send failed: %s\n", strerror(errno));
				return 1;
			}
			free(buf);
			total += n;
		}
		if (due >= end)
			break;
	}
	close(fd);
	printf("spans=%llu\n", (unsigned long long)total);
	return 0;
}
