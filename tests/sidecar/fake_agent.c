/*
 * fake_agent - sends synthetic, deterministic agent frames to jobq-sidecar
 * (proto/jobq_agent.proto framing), so the sidecar is tested without the
 * kernel side. Every value is a function of (tenant, type, snapshot), which
 * the integration tests recompute and compare exactly.
 *
 *   counters  jobs.enqueued{tenant,type,priority}        (s+1)*(10+t+y)
 *             jobs.processed{tenant,type,status=success} (s+1)*(5+t+y)
 *   gauges    jobs.queue_depth{tenant,priority}         t+s
 *             jobs.oldest_job_age{tenant} ms            --starving-ms for
 *                                                       tenants in --starving, else 1000
 *   histogram jobs.wait_time{tenant,type}  scale 3, zero_count 1 (threshold 0),
 *             offset 10+t, buckets [s+1, 2, 3], sum 100*(s+1), min 0, max 40
 *             --bad-hist-count: count is one more than zero_count + sum(buckets)
 *   loss      ringbuf_full = 7
 *   spans     per snapshot, --spans pairs: job.enqueue (PRODUCER) and
 *             job.process (CONSUMER, parent-less, linked to the enqueue),
 *             the process span of odd pairs has an error status "boom".
 * Priority of tenant t: high, normal, low for t % 3 = 0, 1, 2. Tenant t is
 * named "tenant-<t>", except tenant 0 with --tenant0 NAME (metrics only).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto/jobq_agent.pb-c.h"

static const char *prio_name[3] = { "high", "normal", "low" };

struct opt {
	const char *socket, *agent_id, *starving, *tenant0;
	uint64_t start_ns;
	int tenants, types, snapshots, interval_ms, spans, version, hold_ms;
	int bad_utf8, overflow_key, raw_garbage, huge_frame, no_hello, bad_hist_count;
	double starving_ms;
};

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_frame(int fd, const Jobq__Agent__Frame *f)
{
	size_t n = jobq__agent__frame__get_packed_size(f);
	uint8_t *buf = malloc(n + 4);
	if (!buf)
		return -1;
	uint32_t be = htonl((uint32_t)n);
	memcpy(buf, &be, 4);
	jobq__agent__frame__pack(f, buf + 4);
	int rc = send_all(fd, buf, n + 4);
	free(buf);
	return rc;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p) {
		perror("strdup");
		exit(1);
	}
	return p;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (!p) {
		perror("calloc");
		exit(1);
	}
	return p;
}

static char *tenant_name(const struct opt *o, int t)
{
	char buf[256];
	if (t == 0 && o->tenant0)
		snprintf(buf, sizeof(buf), "%s", o->tenant0);
	else
		snprintf(buf, sizeof(buf), "tenant-%d%s", t, o->bad_utf8 && t == 0 ? "\xff" : "");
	return xstrdup(buf);
}

static char *type_name(int y)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "type-%d", y);
	return xstrdup(buf);
}

static int is_starving(const struct opt *o, int t)
{
	if (!o->starving)
		return 0;
	char want[32];
	snprintf(want, sizeof(want), "tenant-%d", t);
	char *list = xstrdup(o->starving), *save = NULL;
	int hit = 0;
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		hit |= !strcmp(tok, want);
	free(list);
	return hit;
}

static Jobq__Agent__SeriesKey *key(const struct opt *o, int t, int y, int prio, const char *status)
{
	Jobq__Agent__SeriesKey *k = xcalloc(1, sizeof(*k));
	jobq__agent__series_key__init(k);
	k->tenant = tenant_name(o, t);
	k->job_type = y >= 0 ? type_name(y) : xstrdup("");
	k->priority = xstrdup(prio ? prio_name[t % 3] : "");
	k->status = xstrdup(status ? status : "");
	k->queue = xstrdup("default");
	return k;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static Jobq__Agent__MetricSnapshot *snapshot(const struct opt *o, int s)
{
	Jobq__Agent__MetricSnapshot *m = xcalloc(1, sizeof(*m));
	jobq__agent__metric_snapshot__init(m);
	m->time_unix_nano = now_ns();
	size_t npairs = (size_t)o->tenants * (size_t)o->types;
	m->counters = xcalloc(2 * npairs + 1, sizeof(*m->counters));
	m->histograms = xcalloc(npairs, sizeof(*m->histograms));
	m->gauges = xcalloc(2 * (size_t)o->tenants, sizeof(*m->gauges));
	for (int t = 0; t < o->tenants; t++) {
		for (int y = 0; y < o->types; y++) {
			Jobq__Agent__Counter *c = xcalloc(1, sizeof(*c));
			jobq__agent__counter__init(c);
			c->name = xstrdup("jobs.enqueued");
			c->key = key(o, t, y, 1, NULL);
			c->value = (uint64_t)(s + 1) * (uint64_t)(10 + t + y);
			c->start_unix_ns = o->start_ns;
			m->counters[m->n_counters++] = c;

			c = xcalloc(1, sizeof(*c));
			jobq__agent__counter__init(c);
			c->name = xstrdup("jobs.processed");
			c->key = key(o, t, y, 0, "success");
			c->value = (uint64_t)(s + 1) * (uint64_t)(5 + t + y);
			c->start_unix_ns = o->start_ns;
			m->counters[m->n_counters++] = c;

			Jobq__Agent__ExpHistogram *h = xcalloc(1, sizeof(*h));
			jobq__agent__exp_histogram__init(h);
			h->name = xstrdup("jobs.wait_time");
			h->key = key(o, t, y, 0, NULL);
			h->start_unix_ns = o->start_ns;
			h->scale = 3;
			h->zero_count = 1;
			h->zero_threshold = 0;
			h->offset = 10 + t;
			h->n_bucket_counts = 3;
			h->bucket_counts = xcalloc(3, sizeof(uint64_t));
			h->bucket_counts[0] = (uint64_t)s + 1;
			h->bucket_counts[1] = 2;
			h->bucket_counts[2] = 3;
			h->count = 1 + (uint64_t)s + 1 + 2 + 3 + (o->bad_hist_count ? 1 : 0);
			h->sum = 100.0 * (s + 1);
			h->min = 0;
			h->max = 40;
			m->histograms[m->n_histograms++] = h;
		}
		Jobq__Agent__Gauge *g = xcalloc(1, sizeof(*g));
		jobq__agent__gauge__init(g);
		g->name = xstrdup("jobs.queue_depth");
		g->key = key(o, t, -1, 1, NULL);
		g->value = t + s;
		g->observed_unix_ns = m->time_unix_nano;
		m->gauges[m->n_gauges++] = g;

		g = xcalloc(1, sizeof(*g));
		jobq__agent__gauge__init(g);
		g->name = xstrdup("jobs.oldest_job_age");
		g->key = key(o, t, -1, 0, NULL);
		g->value = is_starving(o, t) ? o->starving_ms : 1000;
		g->observed_unix_ns = m->time_unix_nano;
		m->gauges[m->n_gauges++] = g;
	}
	if (o->overflow_key) {
		Jobq__Agent__Counter *c = xcalloc(1, sizeof(*c));
		jobq__agent__counter__init(c);
		c->name = xstrdup("jobs.enqueued");
		c->key = xcalloc(1, sizeof(*c->key));
		jobq__agent__series_key__init(c->key);
		c->key->overflow = 1;
		c->value = 99;
		c->start_unix_ns = o->start_ns;
		m->counters[m->n_counters++] = c;
	}
	m->losses = xcalloc(1, sizeof(*m->losses));
	Jobq__Agent__Loss *l = xcalloc(1, sizeof(*l));
	jobq__agent__loss__init(l);
	l->reason = xstrdup("ringbuf_full");
	l->count = 7;
	m->losses[m->n_losses++] = l;
	return m;
}

static Jobq__Agent__KeyValue *kv_s(const char *k, const char *v)
{
	Jobq__Agent__KeyValue *kv = xcalloc(1, sizeof(*kv));
	jobq__agent__key_value__init(kv);
	kv->key = xstrdup(k);
	kv->value_case = JOBQ__AGENT__KEY_VALUE__VALUE_STRING_VALUE;
	kv->string_value = xstrdup(v);
	return kv;
}

static Jobq__Agent__KeyValue *kv_i(const char *k, int64_t v)
{
	Jobq__Agent__KeyValue *kv = xcalloc(1, sizeof(*kv));
	jobq__agent__key_value__init(kv);
	kv->key = xstrdup(k);
	kv->value_case = JOBQ__AGENT__KEY_VALUE__VALUE_INT_VALUE;
	kv->int_value = v;
	return kv;
}

/* Deterministic ids: trace = 0x11.. with the pair number, spans 0xAA../0xBB... */
static ProtobufCBinaryData id_bytes(uint8_t fill, size_t len, int n)
{
	ProtobufCBinaryData d = { len, xcalloc(len, 1) };
	memset(d.data, fill, len);
	d.data[len - 2] = (uint8_t)(n >> 8);
	d.data[len - 1] = (uint8_t)n;
	return d;
}

static Jobq__Agent__SpanBatch *spans(const struct opt *o, int s)
{
	Jobq__Agent__SpanBatch *b = xcalloc(1, sizeof(*b));
	jobq__agent__span_batch__init(b);
	b->spans = xcalloc(2 * (size_t)o->spans, sizeof(*b->spans));
	b->dropped_spans = 3;
	uint64_t t0 = now_ns() - 50000000ull;
	for (int i = 0; i < o->spans; i++) {
		int n = s * o->spans + i;
		Jobq__Agent__Span *e = xcalloc(1, sizeof(*e)), *p = xcalloc(1, sizeof(*p));
		jobq__agent__span__init(e);
		jobq__agent__span__init(p);
		e->trace_id = id_bytes(0x11, 16, n);
		e->span_id = id_bytes(0xaa, 8, n);
		e->name = xstrdup("job.enqueue");
		e->kind = JOBQ__AGENT__SPAN_KIND__SPAN_KIND_PRODUCER;
		e->start_unix_ns = t0 + (uint64_t)n * 1000;
		e->end_unix_ns = e->start_unix_ns + 500;
		e->flags = 1;
		e->attributes = xcalloc(4, sizeof(*e->attributes));
		e->attributes[e->n_attributes++] = kv_s("tenant.id", o->bad_utf8 ? "tenant-0\xff" : "tenant-0");
		e->attributes[e->n_attributes++] = kv_s("job.type", "type-0");
		e->attributes[e->n_attributes++] = kv_i("job.id", 1000 + n);
		e->attributes[e->n_attributes++] = kv_s("job.queue", "default");

		p->trace_id = id_bytes(0x22, 16, n);
		p->span_id = id_bytes(0xbb, 8, n);
		p->name = xstrdup("job.process");
		p->kind = JOBQ__AGENT__SPAN_KIND__SPAN_KIND_CONSUMER;
		p->start_unix_ns = e->end_unix_ns + 1000;
		p->end_unix_ns = p->start_unix_ns + 7000;
		p->flags = 1;
		p->attributes = xcalloc(3, sizeof(*p->attributes));
		p->attributes[p->n_attributes++] = kv_s("tenant.id", "tenant-0");
		p->attributes[p->n_attributes++] = kv_i("job.id", 1000 + n);
		p->attributes[p->n_attributes++] = kv_s("job.queue", "default");
		p->links = xcalloc(1, sizeof(*p->links));
		Jobq__Agent__SpanLink *l = xcalloc(1, sizeof(*l));
		jobq__agent__span_link__init(l);
		l->trace_id = id_bytes(0x11, 16, n);
		l->span_id = id_bytes(0xaa, 8, n);
		l->flags = 1;
		p->links[p->n_links++] = l;
		if (i % 2) {
			p->status_error = 1;
			p->status_message = xstrdup("boom");
		}
		b->spans[b->n_spans++] = e;
		b->spans[b->n_spans++] = p;
	}
	return b;
}

int main(int argc, char **argv)
{
	struct opt o = { .agent_id = "fake-agent", .tenants = 2, .types = 2, .snapshots = 1,
			 .interval_ms = 100, .version = 1, .starving_ms = 600000 };
	static const struct option lo[] = {
		{ "socket", 1, 0, 'S' }, { "agent-id", 1, 0, 'a' }, { "start-ns", 1, 0, 's' },
		{ "tenants", 1, 0, 't' }, { "types", 1, 0, 'y' }, { "snapshots", 1, 0, 'n' },
		{ "interval-ms", 1, 0, 'i' }, { "spans", 1, 0, 'p' }, { "version", 1, 0, 'v' },
		{ "hold-ms", 1, 0, 'H' }, { "bad-utf8", 0, 0, 'u' }, { "overflow-key", 0, 0, 'o' },
		{ "starving", 1, 0, 'x' }, { "starving-ms", 1, 0, 'X' }, { "garbage", 0, 0, 'g' },
		{ "huge-frame", 0, 0, 'G' }, { "no-hello", 0, 0, 'N' }, { "bad-hist-count", 0, 0, 'B' },
		{ "tenant0", 1, 0, 'T' }, { 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'S': o.socket = optarg; break;
		case 'a': o.agent_id = optarg; break;
		case 's': o.start_ns = strtoull(optarg, NULL, 10); break;
		case 't': o.tenants = atoi(optarg); break;
		case 'y': o.types = atoi(optarg); break;
		case 'n': o.snapshots = atoi(optarg); break;
		case 'i': o.interval_ms = atoi(optarg); break;
		case 'p': o.spans = atoi(optarg); break;
		case 'v': o.version = atoi(optarg); break;
		case 'H': o.hold_ms = atoi(optarg); break;
		case 'u': o.bad_utf8 = 1; break;
		case 'o': o.overflow_key = 1; break;
		case 'x': o.starving = optarg; break;
		case 'X': o.starving_ms = atof(optarg); break;
		case 'g': o.raw_garbage = 1; break;
		case 'G': o.huge_frame = 1; break;
		case 'N': o.no_hello = 1; break;
		case 'B': o.bad_hist_count = 1; break;
		case 'T': o.tenant0 = optarg; break;
		default: fprintf(stderr, "fake_agent: bad option\n"); return 2;
		}
	}
	if (!o.socket) {
		fprintf(stderr, "fake_agent: --socket is required\n");
		return 2;
	}
	if (!o.start_ns)
		o.start_ns = now_ns();

	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", o.socket);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "fake_agent: connect %s: %s\n", o.socket, strerror(errno));
		return 1;
	}
	if (o.huge_frame) {
		uint32_t be = htonl(17u << 20); /* above the 16 MiB limit */
		return send_all(fd, &be, 4) ? 1 : 0;
	}
	if (o.raw_garbage) {
		static const uint8_t g[] = { 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff };
		return send_all(fd, g, sizeof(g)) ? 1 : 0;
	}

	Jobq__Agent__Hello hello = JOBQ__AGENT__HELLO__INIT;
	hello.agent_id = (char *)o.agent_id;
	hello.host_name = "fake-host";
	hello.agent_pid = 4242;
	hello.target = "pid:4242";
	hello.agent_start_unix_ns = o.start_ns;
	hello.agent_version = "fake-1";
	Jobq__Agent__Frame f = JOBQ__AGENT__FRAME__INIT;
	f.version = (uint32_t)o.version;
	if (!o.no_hello) {
		f.body_case = JOBQ__AGENT__FRAME__BODY_HELLO;
		f.hello = &hello;
		if (send_frame(fd, &f)) {
			fprintf(stderr, "fake_agent: sending hello: %s\n", strerror(errno));
			return 1;
		}
	}
	for (int s = 0; s < o.snapshots; s++) {
		Jobq__Agent__Frame m = JOBQ__AGENT__FRAME__INIT;
		m.version = (uint32_t)o.version;
		m.body_case = JOBQ__AGENT__FRAME__BODY_METRICS;
		m.metrics = snapshot(&o, s);
		int rc = send_frame(fd, &m);
		/* The tests compare exported timestamps with these, exactly. */
		printf("snapshot %d %llu\n", s, (unsigned long long)m.metrics->time_unix_nano);
		fflush(stdout);
		protobuf_c_message_free_unpacked(&m.metrics->base, NULL);
		if (rc) {
			fprintf(stderr, "fake_agent: sending snapshot: %s\n", strerror(errno));
			return 1;
		}
		if (o.spans) {
			Jobq__Agent__Frame sp = JOBQ__AGENT__FRAME__INIT;
			sp.version = (uint32_t)o.version;
			sp.body_case = JOBQ__AGENT__FRAME__BODY_SPANS;
			sp.spans = spans(&o, s);
			rc = send_frame(fd, &sp);
			protobuf_c_message_free_unpacked(&sp.spans->base, NULL);
			if (rc) {
				fprintf(stderr, "fake_agent: sending spans: %s\n", strerror(errno));
				return 1;
			}
		}
		if (s + 1 < o.snapshots) {
			struct timespec ts = { o.interval_ms / 1000, (o.interval_ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	if (o.hold_ms > 0) {
		struct timespec ts = { o.hold_ms / 1000, (o.hold_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
	close(fd);
	return 0;
}
