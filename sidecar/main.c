/*
 * jobq-sidecar - receives agent snapshots and spans on a Unix socket and
 * exports them as OTLP/HTTP (or OTLP JSON lines to a file) and as a
 * Prometheus text endpoint. Runs unprivileged: started as root it binds its
 * sockets, then switches to --user before any network connection exists.
 *
 * This file is the thin I/O shell: options, privilege drop, the poll()
 * event loop with its two timers (metrics interval, span batch delay), and
 * a bounded shutdown with a final flush. See docs/sidecar.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sidecar/arena.h"
#include "sidecar/buf.h"
#include "sidecar/config.h"
#include "sidecar/export.h"
#include "sidecar/otlp.h"
#include "sidecar/otlp_json.h"
#include "sidecar/prom.h"
#include "sidecar/queue.h"
#include "sidecar/server.h"
#include "sidecar/spans.h"
#include "sidecar/starvation.h"
#include "sidecar/stats.h"
#include "sidecar/store.h"

#define ARENA_LIMIT (512u << 20) /* one request's build; far above 64 MiB packed */
#define MAX_POINTS 10000          /* data points per metrics request (~1.3 MB) */

struct opts {
	const char *listen;
	mode_t socket_mode;
	const char *prom_listen;
	const char *otlp_file;
	const char *user;
	double starvation_threshold_s;
	size_t cardinality_limit;
	size_t queue_bytes;
	long shutdown_timeout_ms;
	long span_delay_ms;
	size_t span_queue;
	size_t span_batch;
};

static void logmsg(const char *fmt, ...)
{
	char ts[32], msg[1024];
	struct timespec now;
	struct tm tm;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One fprintf per line: stdio locks, so threads do not interleave. */
	fprintf(stderr, "%s.%03ldZ jobq-sidecar: %s\n", ts, now.tv_nsec / 1000000, msg);
}

static const char *real_getenv(void *ctx, const char *name)
{
	(void)ctx;
	return getenv(name);
}

static void warn_cb(void *ctx, const char *msg)
{
	(void)ctx;
	logmsg("warning: %s", msg);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: jobq-sidecar [options]\n"
		"  --listen PATH              agent socket (default $JOBQ_SIDECAR_SOCKET or /run/jobq/sidecar.sock)\n"
		"  --socket-mode OCTAL        agent socket permissions (default 0660)\n"
		"  --prom-listen HOST:PORT    Prometheus /metrics (default 127.0.0.1:9464, \"off\" to disable)\n"
		"  --otlp-file PATH           write OTLP JSON lines to PATH instead of OTLP/HTTP\n"
		"  --user NAME                user to run as when started as root (default nobody)\n"
		"  --starvation-threshold-s N oldest-job age that counts as starving (default 300)\n"
		"  --cardinality-limit N      series per metric and agent before overflow (default 2000)\n"
		"  --queue-bytes N            encoded requests kept per signal during outages (default 16 MiB)\n"
		"  --shutdown-timeout-ms N    bound on the final flush (default 5000)\n"
		"Standard OTEL_* variables configure the OTLP export; see docs/sidecar.md.\n");
}

static int parse_num(const char *opt, const char *v, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end || d < min || d > max) {
		fprintf(stderr, "jobq-sidecar: %s \"%s\": expected a number in [%g, %g]\n", opt, v, min, max);
		return -1;
	}
	*out = d;
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "listen", required_argument, 0, 'l' },
		{ "socket-mode", required_argument, 0, 'm' },
		{ "prom-listen", required_argument, 0, 'p' },
		{ "otlp-file", required_argument, 0, 'f' },
		{ "user", required_argument, 0, 'u' },
		{ "starvation-threshold-s", required_argument, 0, 's' },
		{ "cardinality-limit", required_argument, 0, 'c' },
		{ "queue-bytes", required_argument, 0, 'q' },
		{ "shutdown-timeout-ms", required_argument, 0, 't' },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 },
	};
	const char *env_sock = getenv("JOBQ_SIDECAR_SOCKET");
	*o = (struct opts){
		.listen = env_sock && *env_sock ? env_sock : "/run/jobq/sidecar.sock",
		.socket_mode = 0660,
		.prom_listen = "127.0.0.1:9464",
		.user = "nobody",
		.starvation_threshold_s = 300,
		.cardinality_limit = 2000,
		.queue_bytes = 16u << 20,
		.shutdown_timeout_ms = 5000,
		.span_delay_ms = 5000,
		.span_queue = 2048,
		.span_batch = 512,
	};
	int c;
	double d;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'l': o->listen = optarg; break;
		case 'm': {
			char *end;
			long m = strtol(optarg, &end, 8);
			if (*end || end == optarg || m < 0 || m > 0777) {
				fprintf(stderr, "jobq-sidecar: --socket-mode \"%s\": expected an octal mode\n", optarg);
				return -1;
			}
			o->socket_mode = (mode_t)m;
			break;
		}
		case 'p': o->prom_listen = optarg; break;
		case 'f': o->otlp_file = optarg; break;
		case 'u': o->user = optarg; break;
		case 's':
			if (parse_num("--starvation-threshold-s", optarg, 0, 1e9, &d))
				return -1;
			o->starvation_threshold_s = d;
			break;
		case 'c':
			if (parse_num("--cardinality-limit", optarg, 1, 1e7, &d))
				return -1;
			o->cardinality_limit = (size_t)d;
			break;
		case 'q':
			if (parse_num("--queue-bytes", optarg, 4096, 1e12, &d))
				return -1;
			o->queue_bytes = (size_t)d;
			break;
		case 't':
			if (parse_num("--shutdown-timeout-ms", optarg, 0, 3.6e6, &d))
				return -1;
			o->shutdown_timeout_ms = (long)d;
			break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("jobq-sidecar %s\n", SC_VERSION); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "jobq-sidecar: unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	if (strcmp(o->prom_listen, "off")) {
		char host[256], err[256];
		const char *port;

		if (sc_prom_addr_split(o->prom_listen, host, sizeof(host), &port, err, sizeof(err))) {
			fprintf(stderr, "jobq-sidecar: %s\n", err);
			return -1;
		}
	}
	/* Batch span processor knobs, as the OTel SDKs read them. */
	const char *v = getenv("OTEL_BSP_SCHEDULE_DELAY");
	if (v && *v) {
		if (parse_num("OTEL_BSP_SCHEDULE_DELAY", v, 1, 3.6e6, &d) == 0)
			o->span_delay_ms = (long)d;
		else
			logmsg("warning: OTEL_BSP_SCHEDULE_DELAY ignored; using %ld", o->span_delay_ms);
	}
	v = getenv("OTEL_BSP_MAX_QUEUE_SIZE");
	if (v && *v) {
		if (parse_num("OTEL_BSP_MAX_QUEUE_SIZE", v, 1, 1e7, &d) == 0)
			o->span_queue = (size_t)d;
		else
			logmsg("warning: OTEL_BSP_MAX_QUEUE_SIZE ignored; using %zu", o->span_queue);
	}
	v = getenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
	if (v && *v) {
		if (parse_num("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", v, 1, 1e7, &d) == 0)
			o->span_batch = (size_t)d;
		else
			logmsg("warning: OTEL_BSP_MAX_EXPORT_BATCH_SIZE ignored; using %zu", o->span_batch);
	}
	if (o->span_batch > o->span_queue) { /* as the SDKs do */
		logmsg("warning: OTEL_BSP_MAX_EXPORT_BATCH_SIZE %zu is above OTEL_BSP_MAX_QUEUE_SIZE; using %zu",
		       o->span_batch, o->span_queue);
		o->span_batch = o->span_queue;
	}
	return 0;
}

/* Drop root for good before any network connection is opened. */
static int drop_privileges(const char *user)
{
	if (geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		logmsg("started as root and user \"%s\" does not exist; refusing to run network code as root", user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		logmsg("--user %s is root; refusing to run network code as root", user);
		return -1;
	}
	if (setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid)) {
		logmsg("dropping privileges to %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		logmsg("privilege drop to %s did not stick; refusing to continue", user);
		return -1;
	}
	logmsg("running as %s (uid %u)", user, (unsigned)pw->pw_uid);
	return 0;
}

struct sidecar {
	struct opts o;
	struct sc_config cfg;
	struct sc_identity id;
	struct sc_stats st;
	struct sc_store *store;
	struct sc_spanbuf spans;
	struct sc_server srv;
	struct sc_prom prom;
	struct sc_queue q[SC_SIGNAL_COUNT];
	struct sc_exporter ex[SC_SIGNAL_COUNT];
	bool http; /* OTLP/HTTP export running */
	int64_t stop_at_ms; /* shutdown deadline (monotonic), set at SIGTERM/SIGINT */
	int file_fd;
	struct sc_buf json;
};

/* Hands an encoded (protobuf or JSON) request over: gzip if configured,
 * then the signal's queue. Takes body. */
static void deliver_body(struct sidecar *sc, int sig, uint8_t *body, size_t len, size_t items)
{
	const struct sc_signal_config *cfg = &sc->cfg.signal[sig];

	if (!sc->http) {
		free(body);
		return;
	}
	if (cfg->gzip) {
		uint8_t *z;
		size_t zl;
		if (sc_gzip(body, len, &z, &zl)) {
			free(body);
			atomic_fetch_add(&sc->st.dropped[sig][SC_DROP_ENCODE], items);
			return;
		}
		free(body);
		body = z;
		len = zl;
	}
	size_t evicted = sc_queue_push(&sc->q[sig], body, len, items);
	if (evicted)
		logmsg("%s queue full (%zu bytes): dropped the %zu oldest request(s)", sc_signal_names[sig],
		       sc->o.queue_bytes, evicted);
}

static bool wants_json(const struct sidecar *sc, int sig)
{
	return sc->file_fd >= 0 || (sc->http && sc->cfg.signal[sig].protocol == SC_PROTOCOL_JSON);
}

static void too_large(struct sidecar *sc, int sig, size_t len, size_t items)
{
	atomic_fetch_add(&sc->st.dropped[sig][SC_DROP_TOO_LARGE], items);
	logmsg("%s request of %zu bytes is above the %u byte limit; dropped %zu items", sc_signal_names[sig],
	       len, SC_MAX_REQUEST, items);
}

/* Encode a request for its destination and hand it over. */
static void deliver(struct sidecar *sc, int sig, const ProtobufCMessage *req, size_t items)
{
	uint8_t *body = NULL;
	size_t len = 0;

	if (wants_json(sc, sig)) {
		sc_buf_reset(&sc->json);
		if (sc_otlp_json(req, &sc->json) || sc_buf_append(&sc->json, "\n", 1)) {
			atomic_fetch_add(&sc->st.dropped[sig][SC_DROP_TOO_LARGE], items);
			logmsg("%s request larger than %u bytes as JSON; dropped %zu items", sc_signal_names[sig],
			       SC_MAX_REQUEST, items);
			return;
		}
		if (sc->file_fd >= 0) {
			const uint8_t *p = sc->json.data;
			size_t left = sc->json.len;
			while (left) {
				ssize_t w = write(sc->file_fd, p, left);
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0) {
					logmsg("writing %s: %s; dropped %zu %s items", sc->o.otlp_file, strerror(errno),
					       items, sc_signal_names[sig]);
					atomic_fetch_add(&sc->st.dropped[sig][SC_DROP_REJECTED], items);
					return;
				}
				p += w;
				left -= (size_t)w;
			}
			atomic_fetch_add(&sc->st.exported[sig], items);
			return;
		}
		len = sc->json.len - 1; /* no newline on the wire */
		body = malloc(len ? len : 1);
		if (body)
			memcpy(body, sc->json.data, len);
	} else {
		len = protobuf_c_message_get_packed_size(req);
		if (len > SC_MAX_REQUEST) {
			too_large(sc, sig, len, items);
			return;
		}
		body = malloc(len ? len : 1);
		if (body)
			protobuf_c_message_pack(req, body);
	}
	if (!body) {
		atomic_fetch_add(&sc->st.dropped[sig][SC_DROP_ENCODE], items);
		return;
	}
	deliver_body(sc, sig, body, len, items);
}

static void random_bytes(uint8_t *p, size_t n)
{
	do {
		if (getrandom(p, n, 0) != (ssize_t)n) {
			/* getrandom cannot fail for <= 256 bytes once seeded; be safe. */
			uint64_t x = now_ns();
			for (size_t i = 0; i < n; i++)
				p[i] = (uint8_t)(x >> ((i % 8) * 8)) ^ (uint8_t)i;
		}
	} while (!p[0] && !p[n - 1]); /* never all zero in practice */
}

/* The traces request is written as protobuf bytes around the pending
 * spans (spans.h); JSON is made from those bytes decoded. */
static void export_traces(struct sidecar *sc, sc_otlp_span **extra, size_t nextra, struct sc_arena *a)
{
	size_t nspans = sc->spans.nspans + nextra, ninvalid = sc->spans.ninvalid;
	uint8_t *body;
	size_t len;

	if (!nspans && !ninvalid)
		return;
	if (ninvalid) {
		atomic_fetch_add(&sc->st.dropped[SC_SIGNAL_TRACES][SC_DROP_INVALID], ninvalid);
		logmsg("dropped %zu agent spans with malformed trace or span ids", ninvalid);
	}
	if (!nspans || sc->cfg.sdk_disabled) {
		sc_spanbuf_clear(&sc->spans);
		return;
	}
	if (sc_spanbuf_encode(&sc->spans, a, sc->store, &sc->id, extra, nextra, &body, &len)) {
		atomic_fetch_add(&sc->st.dropped[SC_SIGNAL_TRACES][SC_DROP_ENCODE], nspans);
		logmsg("out of memory building a traces request; dropped %zu spans", nspans);
	} else if (len > SC_MAX_REQUEST) {
		too_large(sc, SC_SIGNAL_TRACES, len, nspans);
		free(body);
	} else if (wants_json(sc, SC_SIGNAL_TRACES)) {
		ProtobufCAllocator alloc;
		sc_arena_pb_allocator(a, &alloc);
		sc_traces_req *req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
			&alloc, len, body);
		free(body);
		if (req) {
			deliver(sc, SC_SIGNAL_TRACES, &req->base, nspans);
		} else {
			atomic_fetch_add(&sc->st.dropped[SC_SIGNAL_TRACES][SC_DROP_ENCODE], nspans);
			logmsg("out of memory building a traces request; dropped %zu spans", nspans);
		}
	} else {
		deliver_body(sc, SC_SIGNAL_TRACES, body, len, nspans);
	}
	sc_spanbuf_clear(&sc->spans);
}

static void export_all(struct sidecar *sc, bool with_metrics)
{
	struct sc_arena a;
	sc_arena_init(&a, ARENA_LIMIT);
	uint64_t t0 = now_ns();
	sc_otlp_span *check = NULL;

	if (with_metrics) {
		/* Requests of at most MAX_POINTS points each, so that none comes
		 * near the 64 MiB limit whatever the number of series. */
		struct sc_metrics_cursor cur = { 0 };
		while (!cur.done) {
			struct sc_arena ma;
			size_t npoints = 0;
			sc_arena_init(&ma, ARENA_LIMIT);
			sc_metrics_req *req = sc_otlp_build_metrics(&ma, sc->store, &sc->id, &sc->st, t0,
								    MAX_POINTS, &cur, &npoints);
			if (!req) {
				logmsg("out of memory building a metrics request; the rest of this interval is lost");
				atomic_fetch_add(&sc->st.dropped[SC_SIGNAL_METRICS][SC_DROP_ENCODE], 1);
				sc_arena_free(&ma);
				break;
			}
			if (!sc->cfg.sdk_disabled)
				deliver(sc, SC_SIGNAL_METRICS, &req->base, npoints);
			sc_arena_free(&ma);
		}
		uint8_t ids[24];
		random_bytes(ids, sizeof(ids));
		check = sc_starvation_span(&a, sc->store, sc->o.starvation_threshold_s * 1000.0, t0, now_ns(),
					   ids, ids + 16);
	}
	/* Spans before freeing anything: a disconnected agent's last spans
	 * still need its resource (identity from its Hello). */
	export_traces(sc, check ? &check : NULL, check ? 1 : 0, &a);
	if (with_metrics) {
		/* Its last metrics and spans are out: now it may go. The span
		 * buffer is empty here, so no pending span refers to a freed
		 * slot (which a new agent could reuse). */
		sc_store_after_export(sc->store);
	}
	sc_arena_free(&a);
	if (with_metrics) {
		/* The build's memory is free again: return it, and do not keep a
		 * JSON buffer sized for the largest request ever made. */
		if (sc->json.cap > (1u << 20)) {
			sc_buf_free(&sc->json);
			sc_buf_init(&sc->json, SC_MAX_REQUEST + 1);
		}
		malloc_trim(0);
	}
}

static int run(struct sidecar *sc)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		logmsg("signalfd: %s", strerror(errno));
		return -1;
	}

	int64_t now = sc_now_mono_ms();
	int64_t next_metrics = now + sc->cfg.export_interval_ms;
	int64_t next_spans = now + sc->o.span_delay_ms;
	bool stop = false;

	while (!stop) {
		struct pollfd fds[1 + SC_MAX_CONNS + 1 + 1 + SC_PROM_MAX_CONNS];
		int n = 0;
		fds[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		int nsrv = sc_server_pollfds(&sc->srv, fds + n, SC_MAX_CONNS + 1);
		n += nsrv;
		int nprom = sc_prom_pollfds(&sc->prom, fds + n, 1 + SC_PROM_MAX_CONNS);
		n += nprom;

		now = sc_now_mono_ms();
		int64_t wait = next_metrics < next_spans ? next_metrics - now : next_spans - now;
		if (wait < 0)
			wait = 0;
		if (sc->prom.lfd >= 0 && wait > 1000)
			wait = 1000; /* to time out idle scrapers */
		int rc = poll(fds, (nfds_t)n, (int)wait);
		if (rc < 0 && errno != EINTR) {
			logmsg("poll: %s", strerror(errno));
			break;
		}
		if (rc > 0) {
			if (fds[0].revents) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					logmsg("signal %u: flushing and exiting within %ld ms "
					       "(signal again to exit now, dropping what is queued)",
					       si.ssi_signo, sc->o.shutdown_timeout_ms);
					sc->stop_at_ms = sc_now_mono_ms() + sc->o.shutdown_timeout_ms;
					stop = true;
					/* A second Ctrl-C during a flush to an unreachable
					 * collector ends the process at once, as users expect;
					 * the exporter threads keep these signals blocked, so
					 * the default action runs on this thread. */
					if (signal(SIGINT, SIG_DFL) == SIG_ERR || signal(SIGTERM, SIG_DFL) == SIG_ERR ||
					    sigprocmask(SIG_UNBLOCK, &mask, NULL))
						logmsg("signal reset: %s (a second signal waits for the flush)",
						       strerror(errno));
				}
			}
			sc_server_handle(&sc->srv, fds + 1, nsrv);
		}
		now = sc_now_mono_ms();
		sc_server_report_drops(&sc->srv, now);
		sc_prom_handle(&sc->prom, fds + 1 + nsrv, rc > 0 ? nprom : 0, sc->store, &sc->st, now);

		if (now >= next_metrics) {
			export_all(sc, true);
			next_metrics += sc->cfg.export_interval_ms;
			if (next_metrics <= now) /* fell behind: do not burst */
				next_metrics = now + sc->cfg.export_interval_ms;
			next_spans = now + sc->o.span_delay_ms;
		} else if (now >= next_spans || sc_spanbuf_due(&sc->spans)) {
			export_all(sc, false);
			next_spans = now + sc->o.span_delay_ms;
		}
	}
	/* Final flush: whatever the agents sent last. */
	export_all(sc, true);
	close(sfd);
	return 0;
}

int main(int argc, char **argv)
{
	static struct sidecar sc;
	char err[512];
	int rc = 1;

	if (parse_args(argc, argv, &sc.o))
		return 2;
	/* Export requests (~200 KB for 512 spans) are allocated here and freed
	 * by an exporter thread; with glibc's defaults each one was trimmed
	 * or unmapped on free and page-faulted in again on the next export
	 * (~40 faults per request, ~8% of the CPU with spans). Keep up to
	 * 8 MiB of freed heap; malloc_trim() after each metrics export still
	 * gives it all back, and allocations above 4 MiB are still mmap'd. */
	if (!mallopt(M_MMAP_THRESHOLD, 4 << 20) || !mallopt(M_TRIM_THRESHOLD, 8 << 20))
		logmsg("warning: mallopt failed; using the allocator's defaults");
	sc_config_load(&sc.cfg, real_getenv, NULL, warn_cb, NULL);
	sc.file_fd = -1;
	sc.id.cfg = &sc.cfg;
	sc.id.pid = (int)getpid();
	if (gethostname(sc.id.host_name, sizeof(sc.id.host_name) - 1))
		snprintf(sc.id.host_name, sizeof(sc.id.host_name), "unknown");
	sc.st.start_ns = now_ns();
	sc.id.start_ns = sc.st.start_ns;
	sc_buf_init(&sc.json, SC_MAX_REQUEST + 1);
	sc_spanbuf_init(&sc.spans, sc.o.span_queue, sc.o.span_batch);

	/* Signals are read from a signalfd; block them before any thread. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		logmsg("signal setup: %s", strerror(errno));
		return 1;
	}

	if (!(sc.store = sc_store_new(sc.o.cardinality_limit))) {
		logmsg("out of memory");
		return 1;
	}
	sc.store->st = &sc.st; /* points it refuses are counted as metrics drops */
	sc.srv.store = sc.store;
	sc.srv.spans = &sc.spans;
	sc.srv.st = &sc.st;
	sc.srv.log = logmsg;
	sc.prom.lfd = -1;
	if (sc_server_listen(&sc.srv, sc.o.listen, sc.o.socket_mode, err, sizeof(err))) {
		logmsg("agent socket: %s", err);
		goto cleanup;
	}
	if (strcmp(sc.o.prom_listen, "off") && sc_prom_listen(&sc.prom, sc.o.prom_listen, err, sizeof(err))) {
		logmsg("prometheus endpoint: %s", err);
		goto cleanup;
	}
	if (sc.o.otlp_file) {
		sc.file_fd = open(sc.o.otlp_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (sc.file_fd < 0) {
			logmsg("--otlp-file %s: %s", sc.o.otlp_file, strerror(errno));
			goto cleanup;
		}
	}
	if (drop_privileges(sc.o.user))
		goto cleanup;

	if (sc.cfg.sdk_disabled)
		logmsg("OTEL_SDK_DISABLED=true: no OTLP export (Prometheus endpoint still served)");
	sc.http = !sc.o.otlp_file && !sc.cfg.sdk_disabled;
	if (sc.http) {
		CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);
		if (cc != CURLE_OK) {
			logmsg("libcurl: %s", curl_easy_strerror(cc));
			goto cleanup;
		}
		for (int sig = 0; sig < SC_SIGNAL_COUNT; sig++) {
			if (sc_queue_init(&sc.q[sig], sc.o.queue_bytes, &sc.st, sig)) {
				logmsg("queue init failed");
				goto cleanup;
			}
			sc.ex[sig] = (struct sc_exporter){
				.signal = sig,
				.cfg = &sc.cfg.signal[sig],
				.q = &sc.q[sig],
				.st = &sc.st,
				.policy = (struct sc_retry_policy)SC_RETRY_POLICY_DEFAULT,
				.log = logmsg,
			};
			if (sig == SC_SIGNAL_METRICS)
				sc.cfg.signal[sig].timeout_ms = sc.cfg.signal[sig].timeout_ms <
					sc.cfg.metric_export_timeout_ms ? sc.cfg.signal[sig].timeout_ms
									: sc.cfg.metric_export_timeout_ms;
			if (sc_exporter_start(&sc.ex[sig])) {
				logmsg("exporter thread: %s", strerror(errno));
				goto cleanup;
			}
			logmsg("exporting %s to %s (%s%s)", sc_signal_names[sig], sc.cfg.signal[sig].url,
			       sc.cfg.signal[sig].protocol == SC_PROTOCOL_JSON ? "http/json" : "http/protobuf",
			       sc.cfg.signal[sig].gzip ? ", gzip" : "");
		}
	}
	logmsg("listening on %s (mode %04o), prometheus %s, interval %ld ms", sc.o.listen,
	       (unsigned)sc.o.socket_mode, sc.prom.lfd >= 0 ? sc.prom.bound : "off",
	       sc.cfg.export_interval_ms);

	rc = run(&sc) ? 1 : 0;

cleanup:
	if (sc.http) {
		/* The bound runs from the signal (the final flush is inside it). */
		int64_t deadline = sc.stop_at_ms ? sc.stop_at_ms : sc_now_mono_ms() + sc.o.shutdown_timeout_ms;
		for (int sig = 0; sig < SC_SIGNAL_COUNT; sig++)
			sc_exporter_signal_stop(&sc.ex[sig], deadline);
		for (int sig = 0; sig < SC_SIGNAL_COUNT; sig++)
			sc_exporter_stop(&sc.ex[sig], deadline);
		for (int sig = 0; sig < SC_SIGNAL_COUNT; sig++) {
			uint64_t lost = atomic_load(&sc.st.dropped[sig][SC_DROP_SHUTDOWN]);
			if (lost)
				logmsg("shutdown: %llu %s could not be delivered within "
				       "--shutdown-timeout-ms (%ld ms); counted as dropped (reason shutdown)",
				       (unsigned long long)lost,
				       sig == SC_SIGNAL_TRACES ? "spans" : "metric data points",
				       sc.o.shutdown_timeout_ms);
			if (sc.q[sig].limit)
				sc_queue_destroy(&sc.q[sig]);
		}
		curl_global_cleanup();
	}
	sc_server_close(&sc.srv);
	sc_prom_close(&sc.prom);
	if (sc.file_fd >= 0)
		close(sc.file_fd);
	sc_spanbuf_free(&sc.spans);
	sc_store_free(sc.store);
	sc_buf_free(&sc.json);
	return rc;
}
