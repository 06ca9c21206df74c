/*
 * sidecar_reader.c - a minimal sidecar for the agent tests: listens on a
 * Unix socket, decodes every frame with the generated protobuf-c code
 * (through agent/wire.c's reader) and prints one JSON line per frame.
 * Serves connections one after another until SIGTERM/SIGINT.
 *
 *   sidecar_reader [--summary] SOCKET_PATH
 * --summary (benchmark): decode everything but print only one line at
 * exit: frames, spans, the last dropped_spans and losses.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/wire.h"

static volatile sig_atomic_t stop;
static int summary;
static uint64_t n_frames, n_spans, last_dropped;
static uint64_t loss_total;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void hex(ProtobufCBinaryData b)
{
	putchar('"');
	for (size_t i = 0; i < b.len; i++)
		printf("%02x", b.data[i]);
	putchar('"');
}

static void key(const Jobq__Agent__SeriesKey *k)
{
	printf("\"tenant\":");
	str(k ? k->tenant : "");
	printf(",\"job_type\":");
	str(k ? k->job_type : "");
	printf(",\"priority\":");
	str(k ? k->priority : "");
	printf(",\"status\":");
	str(k ? k->status : "");
	printf(",\"queue\":");
	str(k ? k->queue : "");
	printf(",\"overflow\":%s", k && k->overflow ? "true" : "false");
}

static void kv(const Jobq__Agent__KeyValue *a)
{
	str(a->key);
	putchar(':');
	switch (a->value_case) {
	case JOBQ__AGENT__KEY_VALUE__VALUE_STRING_VALUE:
		str(a->string_value);
		break;
	case JOBQ__AGENT__KEY_VALUE__VALUE_INT_VALUE:
		printf("%" PRId64, a->int_value);
		break;
	case JOBQ__AGENT__KEY_VALUE__VALUE_DOUBLE_VALUE:
		printf("%.17g", a->double_value);
		break;
	case JOBQ__AGENT__KEY_VALUE__VALUE_BOOL_VALUE:
		printf("%s", a->bool_value ? "true" : "false");
		break;
	default:
		printf("null");
	}
}

static void print_metrics(const Jobq__Agent__MetricSnapshot *m)
{
	printf("{\"type\":\"metrics\",\"time_unix_nano\":%" PRIu64 ",\"counters\":[",
	       m->time_unix_nano);
	for (size_t i = 0; i < m->n_counters; i++) {
		printf("%s{\"name\":", i ? "," : "");
		str(m->counters[i]->name);
		putchar(',');
		key(m->counters[i]->key);
		printf(",\"value\":%" PRIu64 ",\"start_unix_ns\":%" PRIu64 "}", m->counters[i]->value,
		       m->counters[i]->start_unix_ns);
	}
	printf("],\"gauges\":[");
	for (size_t i = 0; i < m->n_gauges; i++) {
		printf("%s{\"name\":", i ? "," : "");
		str(m->gauges[i]->name);
		putchar(',');
		key(m->gauges[i]->key);
		printf(",\"value\":%.17g}", m->gauges[i]->value);
	}
	printf("],\"histograms\":[");
	for (size_t i = 0; i < m->n_histograms; i++) {
		const Jobq__Agent__ExpHistogram *h = m->histograms[i];

		printf("%s{\"name\":", i ? "," : "");
		str(h->name);
		putchar(',');
		key(h->key);
		printf(",\"count\":%" PRIu64 ",\"sum\":%.17g,\"min\":%.17g,\"max\":%.17g,"
		       "\"scale\":%d,\"zero_count\":%" PRIu64 ",\"zero_threshold\":%.17g,"
		       "\"offset\":%d,\"start_unix_ns\":%" PRIu64 ",\"bucket_counts\":[",
		       h->count, h->sum, h->min, h->max, h->scale, h->zero_count, h->zero_threshold,
		       h->offset, h->start_unix_ns);
		for (size_t b = 0; b < h->n_bucket_counts; b++)
			printf("%s%" PRIu64, b ? "," : "", h->bucket_counts[b]);
		printf("]}");
	}
	printf("],\"losses\":{");
	for (size_t i = 0; i < m->n_losses; i++) {
		printf("%s", i ? "," : "");
		str(m->losses[i]->reason);
		printf(":%" PRIu64, m->losses[i]->count);
	}
	printf("}}\n");
}

static void print_spans(const Jobq__Agent__SpanBatch *b)
{
	printf("{\"type\":\"spans\",\"dropped_spans\":%" PRIu64 ",\"spans\":[", b->dropped_spans);
	for (size_t i = 0; i < b->n_spans; i++) {
		const Jobq__Agent__Span *s = b->spans[i];

		printf("%s{\"name\":", i ? "," : "");
		str(s->name);
		printf(",\"kind\":%d,\"trace_id\":", s->kind);
		hex(s->trace_id);
		printf(",\"span_id\":");
		hex(s->span_id);
		printf(",\"parent_span_id\":");
		hex(s->parent_span_id);
		printf(",\"flags\":%u", s->flags);
		printf(",\"start_unix_ns\":%" PRIu64 ",\"end_unix_ns\":%" PRIu64
		       ",\"status_error\":%s,\"status_message\":",
		       s->start_unix_ns, s->end_unix_ns, s->status_error ? "true" : "false");
		str(s->status_message);
		printf(",\"attributes\":{");
		for (size_t a = 0; a < s->n_attributes; a++) {
			printf("%s", a ? "," : "");
			kv(s->attributes[a]);
		}
		printf("},\"links\":[");
		for (size_t l = 0; l < s->n_links; l++) {
			printf("%s{\"trace_id\":", l ? "," : "");
			hex(s->links[l]->trace_id);
			printf(",\"span_id\":");
			hex(s->links[l]->span_id);
			printf("}");
		}
		printf("],\"events\":[");
		for (size_t e = 0; e < s->n_events; e++) {
			printf("%s{\"name\":", e ? "," : "");
			str(s->events[e]->name);
			printf(",\"attributes\":{");
			for (size_t a = 0; a < s->events[e]->n_attributes; a++) {
				printf("%s", a ? "," : "");
				kv(s->events[e]->attributes[a]);
			}
			printf("}}");
		}
		printf("]}");
	}
	printf("]}\n");
}

/* Reads frames until the peer closes; returns 0, or -1 on a bad frame. */
static int serve(int fd)
{
	static uint8_t buf[JOBQ_AGENT_MAX_FRAME + 4];
	size_t len = 0;
	int first = 1;

	while (!stop) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		size_t used = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : 0;
		len += (size_t)n;
		for (;;) {
			Jobq__Agent__Frame *f;
			size_t consumed;
			char err[160];
			enum wire_status st = wire_decode(buf + used, len - used, &consumed, &f, err,
							  sizeof(err));

			if (st == WIRE_NEED_MORE)
				break;
			if (st == WIRE_ERROR) {
				fprintf(stderr, "sidecar_reader: %s\n", err);
				return -1;
			}
			if (first && f->body_case != JOBQ__AGENT__FRAME__BODY_HELLO) {
				fprintf(stderr, "sidecar_reader: first frame is not a Hello\n");
				printf("{\"type\":\"error\",\"what\":\"first frame not hello\"}\n");
			}
			first = 0;
			n_frames++;
			if (summary) {
				if (f->body_case == JOBQ__AGENT__FRAME__BODY_SPANS) {
					n_spans += f->spans->n_spans;
					last_dropped = f->spans->dropped_spans;
				} else if (f->body_case == JOBQ__AGENT__FRAME__BODY_METRICS) {
					loss_total = 0;
					for (size_t i = 0; i < f->metrics->n_losses; i++)
						if (strcmp(f->metrics->losses[i]->reason, "tenant_overflow"))
							loss_total += f->metrics->losses[i]->count;
				}
				jobq__agent__frame__free_unpacked(f, NULL);
				used += consumed;
				continue;
			}
			switch (f->body_case) {
			case JOBQ__AGENT__FRAME__BODY_HELLO:
				printf("{\"type\":\"hello\",\"agent_id\":");
				str(f->hello->agent_id);
				printf(",\"target\":");
				str(f->hello->target);
				printf(",\"agent_pid\":%u,\"agent_start_unix_ns\":%" PRIu64 "}\n",
				       f->hello->agent_pid, f->hello->agent_start_unix_ns);
				break;
			case JOBQ__AGENT__FRAME__BODY_METRICS:
				print_metrics(f->metrics);
				break;
			case JOBQ__AGENT__FRAME__BODY_SPANS:
				print_spans(f->spans);
				break;
			default:
				printf("{\"type\":\"unknown\"}\n");
			}
			fflush(stdout);
			jobq__agent__frame__free_unpacked(f, NULL);
			used += consumed;
		}
		memmove(buf, buf + used, len - used);
		len -= used;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct sigaction act = { .sa_handler = on_signal };
	int lfd;

	if (argc == 3 && !strcmp(argv[1], "--summary")) {
		summary = 1;
		argv++;
		argc--;
	}
	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: sidecar_reader [--summary] SOCKET_PATH\n");
		return 2;
	}
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4)) {
		fprintf(stderr, "sidecar_reader: listen %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	fprintf(stderr, "sidecar_reader: listening\n");
	while (!stop) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "sidecar_reader: accept: %s\n", strerror(errno));
			return 1;
		}
		printf("{\"type\":\"connect\"}\n");
		fflush(stdout);
		if (serve(fd))
			printf("{\"type\":\"error\",\"what\":\"bad frame\"}\n");
		close(fd);
	}
	unlink(argv[1]);
	if (summary)
		printf("{\"frames\":%" PRIu64 ",\"spans\":%" PRIu64 ",\"dropped_spans\":%" PRIu64
		       ",\"losses\":%" PRIu64 "}\n",
		       n_frames, n_spans, last_dropped, loss_total);
	return 0;
}
