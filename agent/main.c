/*
 * jobq-agent - loads the jobq BPF programs, attaches them to the jobq USDT
 * probes of a process, a binary or libjobq, and exports what they gather:
 * a JSON snapshot (--json), a live table (--top), or metric snapshots and
 * spans to the sidecar over a Unix socket.
 *
 * Shape (libbpf-tools): options, privilege check, resolve target, open
 * skeleton, set const volatile knobs, load, attach, loop, and unwind
 * everything under one cleanup label. Links are destroyed on SIGINT/
 * SIGTERM so no uprobe stays behind; a SIGKILLed agent loses its fds and
 * the kernel detaches everything with them, leaving workers untouched.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "agent/hist.h"
#include "agent/inflight.h"
#include "agent/json.h"
#include "agent/maps.h"
#include "agent/snapshot.h"
#include "agent/target.h"
#include "bpf/jobq.skel.h"

_Static_assert(JOBQ_ARGC_ENQUEUE == JOBQ_PROBE_ARGC_ENQUEUE &&
		       JOBQ_ARGC_START == JOBQ_PROBE_ARGC_START &&
		       JOBQ_ARGC_FINISH == JOBQ_PROBE_ARGC_FINISH &&
		       JOBQ_ARGC_DEPTH == JOBQ_PROBE_ARGC_DEPTH,
	       "bpf/jobq.h argument counts disagree with queue/jobq_probes.h");

_Static_assert(JOBQ_SERIES_LIMIT <= 1 << 24, "series ids must fit jobq_inflight_slot.series_id");
_Static_assert(offsetof(struct jobq_series, queue) == 0 && sizeof(struct jobq_series) % 8 == 0,
	       "the series key's queue leads it, 8-aligned: hashed and compared by words");

#define TICK_MS 50 /* ring-buffer drain period: never a wakeup per record */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static const char usage[] =
	"usage: jobq-agent (--pid PID | --bin PATH | --lib PATH) [options]\n"
	"  --pid PID        the jobq probes of one process (its binary and mapped libjobq)\n"
	"  --bin PATH       every process running this binary, now and later\n"
	"  --lib PATH       every process mapping this libjobq, now and later\n"
	"  --sidecar PATH   sidecar Unix socket (default $JOBQ_SIDECAR_SOCKET or\n"
	"                   " JOBQ_AGENT_DEFAULT_SOCKET ")\n"
	"  --interval MS    metric snapshot period (default 1000)\n"
	"  --top            live per-tenant table on the terminal, a row per queue and\n"
	"                   tenant (a QUEUE column when there are several queues); a\n"
	"                   local view, with an explicit --sidecar it also exports\n"
	"  --json           print one JSON snapshot when stopped or after --duration\n"
	"  --duration S     run S seconds then exit (default: until SIGINT/SIGTERM)\n"
	"  --tenant-cap N   tenants tracked one by one; events of further tenants go\n"
	"                   to the overflow series (default 1024, at most 65536)\n"
	"  --types-per-tenant K  series per tenant, i.e. (queue, job type) pairs; a\n"
	"                   tenant's further pairs go to the overflow series (default\n"
	"                   4, at most 256); the series table holds tenant-cap x K\n"
	"                   series\n"
	"  --top-rows N     --top shows N rows (default: as many as the terminal\n"
	"                   fits, all when stdout is not a terminal), then \"N more\"\n"
	"  --queue NAME     observe only this queue (repeatable, up to 8); default: all\n"
	"                   queues of the processes reached\n"
	"  --inflight-max-age S  forget jobs started this long ago without a finish\n"
	"                   (default 3600; counted as expired_inflight)\n"
	"  --no-spans       metrics only (no ring buffer, no span building)\n"
	"  -v               libbpf diagnostics\n"
	"exit status: 0 done, 1 refused by the system (privileges, target, BPF), 2 usage\n";

static int verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || (level == LIBBPF_INFO && !verbose))
		return 0;
	if (level == LIBBPF_WARN && !verbose)
		return 0; /* the agent reports failures itself, with context */
	return vfprintf(stderr, fmt, ap);
}

static int parse_long(const char *opt, const char *s, long min, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	if (errno || end == s || *end || *out < min || *out > max) {
		fprintf(stderr, "jobq-agent: %s: '%s' is not a number in [%ld, %ld]\n", opt, s, min,
			max);
		return -1;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct agent_opts *o)
{
	enum { O_PID = 256, O_BIN, O_LIB, O_SIDECAR, O_INTERVAL, O_TOP, O_JSON, O_DURATION,
	       O_TENANT_CAP, O_TYPES, O_TOP_ROWS, O_INFLIGHT, O_QUEUE, O_NO_SPANS, O_HELP };
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, O_PID },
		{ "bin", required_argument, NULL, O_BIN },
		{ "lib", required_argument, NULL, O_LIB },
		{ "sidecar", required_argument, NULL, O_SIDECAR },
		{ "interval", required_argument, NULL, O_INTERVAL },
		{ "top", no_argument, NULL, O_TOP },
		{ "json", no_argument, NULL, O_JSON },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "tenant-cap", required_argument, NULL, O_TENANT_CAP },
		{ "types-per-tenant", required_argument, NULL, O_TYPES },
		{ "top-rows", required_argument, NULL, O_TOP_ROWS },
		{ "inflight-max-age", required_argument, NULL, O_INFLIGHT },
		{ "queue", required_argument, NULL, O_QUEUE },
		{ "no-spans", no_argument, NULL, O_NO_SPANS },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 },
	};
	const char *env = getenv("JOBQ_SIDECAR_SOCKET");
	long v;
	int c, ntargets = 0, sidecar_given = 0;

	memset(o, 0, sizeof(*o));
	o->interval_ms = 1000;
	o->tenant_cap = JOBQ_DEFAULT_TENANT_CAP;
	o->types_per_tenant = JOBQ_DEFAULT_TYPES_PER_TENANT;
	o->inflight_max_age_s = 3600;
	o->spans = 1;
	o->sidecar = env && *env ? env : JOBQ_AGENT_DEFAULT_SOCKET;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case O_PID:
			/* Its syntax is a usage error like any other (exit 2);
			 * whether the process exists is checked with the target. */
			if (!target_pid_valid(optarg)) {
				fprintf(stderr, "jobq-agent: --pid: '%s' is not a process id\n", optarg);
				return -1;
			}
			/* fall through */
		case O_BIN:
		case O_LIB:
			o->kind = c == O_PID ? TARGET_PID : c == O_BIN ? TARGET_BIN : TARGET_LIB;
			o->target_arg = optarg;
			ntargets++;
			break;
		case O_SIDECAR:
			o->sidecar = optarg;
			sidecar_given = 1;
			break;
		case O_INTERVAL:
			if (parse_long("--interval", optarg, 10, 3600000, &v))
				return -1;
			o->interval_ms = v;
			break;
		case O_TOP:
			o->top = 1;
			break;
		case O_JSON:
			o->json = 1;
			break;
		case O_DURATION:
			if (parse_long("--duration", optarg, 1, 86400 * 365, &v))
				return -1;
			o->duration_s = v;
			break;
		case O_TENANT_CAP:
			if (parse_long("--tenant-cap", optarg, 1, JOBQ_MAX_TENANT_CAP, &v))
				return -1;
			o->tenant_cap = (unsigned int)v;
			break;
		case O_TYPES:
			if (parse_long("--types-per-tenant", optarg, 1, JOBQ_MAX_TYPES_PER_TENANT, &v))
				return -1;
			o->types_per_tenant = (unsigned int)v;
			break;
		case O_TOP_ROWS:
			if (parse_long("--top-rows", optarg, 1, 1000000, &v))
				return -1;
			o->top_rows = v;
			break;
		case O_INFLIGHT:
			if (parse_long("--inflight-max-age", optarg, 1, 86400 * 30, &v))
				return -1;
			o->inflight_max_age_s = v;
			break;
		case O_QUEUE:
			if (!*optarg || strlen(optarg) > JOBQ_QUEUE_MAX) {
				fprintf(stderr, "jobq-agent: --queue: '%s' is not a queue name (1 to %d "
						"bytes)\n", optarg, JOBQ_QUEUE_MAX);
				return -1;
			}
			if (o->nqueues == JOBQ_MAX_QUEUE_FILTER) {
				fprintf(stderr, "jobq-agent: --queue: at most %d queues\n",
					JOBQ_MAX_QUEUE_FILTER);
				return -1;
			}
			o->queues[o->nqueues++] = optarg;
			break;
		case O_NO_SPANS:
			o->spans = 0;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
		case O_HELP:
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "jobq-agent: unexpected argument '%s'\n%s", argv[optind], usage);
		return -1;
	}
	if (ntargets != 1) {
		fprintf(stderr, "jobq-agent: give exactly one of --pid, --bin, --lib\n%s", usage);
		return -1;
	}
	if (o->json && o->top) {
		fprintf(stderr, "jobq-agent: --json and --top exclude each other\n");
		return -1;
	}
	o->max_series = jobq_series_table(o->tenant_cap, o->types_per_tenant);
	if (o->max_series > JOBQ_SERIES_LIMIT) {
		fprintf(stderr,
			"jobq-agent: --tenant-cap %u x --types-per-tenant %u needs a series table of "
			"%u series, more than the %u the agent allows (each series costs %zu bytes of "
			"kernel memory): lower --tenant-cap or --types-per-tenant\n",
			o->tenant_cap, o->types_per_tenant, o->max_series, JOBQ_SERIES_LIMIT,
			JOBQ_SERIES_KMEM);
		return -1;
	}
	/* --json and a bare --top are local views: no sidecar, no spans. --top
	 * with an explicit --sidecar is the live view of an exporting agent
	 * (make demo): one agent, so the probes pay once. */
	o->export = !o->json && (!o->top || sidecar_given);
	if (!o->export)
		o->spans = 0;
	return 0;
}

/*
 * Privileges. Loading the programs needs CAP_BPF + CAP_PERFMON (or
 * CAP_SYS_ADMIN, which the kernel accepts for both). Attaching uprobes
 * through perf_event_open needs CAP_SYS_ADMIN on kernels with the fix for
 * CVE-2025-38466 ("perf: Revert to requiring CAP_SYS_ADMIN for uprobes":
 * mainline 6.16, stable 5.10.240/5.15.189/6.1.146/6.6.99/6.12.39/6.15.7),
 * which is every kernel this agent is likely to meet; older ones let
 * CAP_PERFMON do. Which one a kernel is cannot be asked, so the check
 * before load lets CAP_BPF + CAP_PERFMON through and attach_all() turns
 * the kernel's EACCES/EPERM into the same clear message.
 */
struct caps {
	int bpf, perfmon, sysadmin;
};

#define CAPS_GRANT                                                                       \
	"  Run it as root (sudo jobq-agent ...), or grant CAP_SYS_ADMIN + CAP_BPF + CAP_PERFMON\n" \
	"  (CAP_SYS_ADMIN is required to attach uprobes on Linux >= 6.16 and on stable\n"       \
	"  kernels since July 2025, CVE-2025-38466; older kernels accept CAP_BPF +\n"           \
	"  CAP_PERFMON alone; --pid on another user's process also needs CAP_SYS_PTRACE):\n"    \
	"  sudo setcap cap_sys_admin,cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search,"   \
	"cap_sys_resource+ep $(command -v jobq-agent)\n"                                         \
	"  or in a systemd unit: AmbientCapabilities=CAP_SYS_ADMIN CAP_BPF CAP_PERFMON ...\n"

static int read_caps(struct caps *c)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) != 0) {
		fprintf(stderr, "jobq-agent: capget: %s\n", strerror(errno));
		return -1;
	}
#define HAS_CAP(n) ((data[(n) / 32].effective >> ((n) % 32)) & 1)
	c->bpf = HAS_CAP(39 /* CAP_BPF */);
	c->perfmon = HAS_CAP(38 /* CAP_PERFMON */);
	c->sysadmin = HAS_CAP(21 /* CAP_SYS_ADMIN */);
#undef HAS_CAP
	return 0;
}

/* " CAP_SYS_ADMIN CAP_BPF" ...: the capabilities of the three c lacks. */
static const char *caps_missing(const struct caps *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", c->sysadmin ? "" : " CAP_SYS_ADMIN", c->bpf ? "" : " CAP_BPF",
		 c->perfmon ? "" : " CAP_PERFMON");
	return buf;
}

/* Before anything is loaded: enough to load BPF at all? Say so up front
 * instead of letting the verifier or perf_event_open fail oddly. */
static int check_privileges(void)
{
	struct caps c;
	char miss[64];

	if (read_caps(&c))
		return -1;
	if ((c.bpf && c.perfmon) || c.sysadmin)
		return 0;
	fprintf(stderr,
		"jobq-agent: not enough privilege to load and attach BPF programs (uid %d, "
		"missing%s).\n" CAPS_GRANT,
		(int)geteuid(), caps_missing(&c, miss, sizeof(miss)));
	return -1;
}

/* The kernel refused a uprobe (perf_event_open: EACCES or EPERM). */
static void attach_denied(const char *probe, const char *path, int err)
{
	struct caps c = { 0 };
	char miss[64];

	read_caps(&c);
	fprintf(stderr, "jobq-agent: attach jobq:%s in %s: %s\n", probe, path, strerror(err));
	if (!c.sysadmin) {
		fprintf(stderr,
			"jobq-agent: this kernel requires CAP_SYS_ADMIN to attach uprobes; the agent "
			"has CAP_BPF and CAP_PERFMON but is missing%s.\n" CAPS_GRANT,
			caps_missing(&c, miss, sizeof(miss)));
	} else {
		fprintf(stderr,
			"jobq-agent: the kernel refused the uprobe although the agent has "
			"CAP_SYS_ADMIN: a security policy (kernel lockdown, SELinux/AppArmor, a "
			"container's seccomp profile blocking perf_event_open) forbids it here.\n");
	}
}

static const char *const probe_names[] = {
	"enqueue", "start", "finish", "retry", "dead_letter", "reap", "depth",
};

static struct bpf_program *probe_prog(struct jobq_bpf *skel, const char *name)
{
	if (!strcmp(name, "enqueue"))
		return skel->progs.jobq_enqueue;
	if (!strcmp(name, "start"))
		return skel->progs.jobq_start;
	if (!strcmp(name, "finish"))
		return skel->progs.jobq_finish;
	if (!strcmp(name, "retry"))
		return skel->progs.jobq_retry;
	if (!strcmp(name, "dead_letter"))
		return skel->progs.jobq_dead_letter;
	if (!strcmp(name, "reap"))
		return skel->progs.jobq_reap;
	return skel->progs.jobq_depth;
}

/*
 * Attaches every probe of every target file. A probe the file does not
 * have is skipped (an older libjobq may lack one); none at all is an error.
 */
static int attach_all(struct agent *a)
{
	size_t nprobes = sizeof(probe_names) / sizeof(probe_names[0]);

	for (size_t f = 0; f < a->target.npaths; f++) {
		for (size_t p = 0; p < nprobes; p++) {
			struct bpf_link *l;

			if (a->nlinks == AGENT_MAX_LINKS)
				break;
			l = bpf_program__attach_usdt(probe_prog(a->skel, probe_names[p]),
						     a->target.pid, a->target.paths[f], "jobq",
						     probe_names[p], NULL);
			if (!l) {
				int err = errno;

				if (err == ENOENT)
					continue;
				if (err == EACCES || err == EPERM) {
					attach_denied(probe_names[p], a->target.paths[f], err);
					return -1;
				}
				fprintf(stderr, "jobq-agent: attach jobq:%s in %s: %s\n",
					probe_names[p], a->target.paths[f], strerror(err));
				return -1;
			}
			a->links[a->nlinks++] = l;
		}
	}
	if (a->nlinks == 0) {
		fprintf(stderr, "jobq-agent: %s: no jobq probe could be attached\n",
			a->target.desc);
		return -1;
	}
	return 0;
}

uint64_t agent_now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC (bpf_ktime_get_ns), from the tightest of
 * a few bracketed readings. */
static uint64_t measure_offset(void)
{
	uint64_t best_gap = UINT64_MAX, off = 0;

	for (int i = 0; i < 5; i++) {
		uint64_t m0 = agent_now_ns(CLOCK_MONOTONIC);
		uint64_t r = agent_now_ns(CLOCK_REALTIME);
		uint64_t m1 = agent_now_ns(CLOCK_MONOTONIC);

		if (m1 - m0 < best_gap) {
			best_gap = m1 - m0;
			off = r - (m0 + (m1 - m0) / 2);
		}
	}
	return off;
}

static void update_offset(struct agent *a)
{
	a->offset_ns = measure_offset();
	a->skel->bss->realtime_offset_ns = a->offset_ns;
}

/* Frees in-flight slots of jobs that never finished (killed workers, lost
 * finish probes), so stale starts do not crowd the bounded table. */
static void expire_inflight(struct agent *a)
{
	a->agent_losses[JOBQ_LOSS_EXPIRED_INFLIGHT] +=
		inflight_expire(&a->expiry, a->inflight, JOBQ_INFLIGHT_SETS,
				agent_now_ns(CLOCK_MONOTONIC),
				(uint64_t)a->opts.inflight_max_age_s * 1000000000ull);
}

/* The in-flight table, mapped for expiry (BPF_F_MMAPABLE array). */
static int map_inflight(struct agent *a)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = (JOBQ_INFLIGHT_SETS * sizeof(struct jobq_inflight_set) + page - 1) / page * page;
	void *p;

	if (bpf_map__value_size(a->skel->maps.inflight) != sizeof(struct jobq_inflight_set)) {
		fprintf(stderr, "jobq-agent: internal error: in-flight table layout\n");
		return -1;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 bpf_map__fd(a->skel->maps.inflight), 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "jobq-agent: map the in-flight table: %s\n", strerror(errno));
		return -1;
	}
	a->inflight = p;
	a->inflight_len = len;
	if (inflight_expiry_init(&a->expiry, 4096)) {
		fprintf(stderr, "jobq-agent: out of memory\n");
		return -1;
	}
	return 0;
}

/* Overflow is kept and exported (the overflow series, otel.metric.overflow
 * = true, the tenant_overflow/type_overflow losses); say it on stderr too,
 * once per reason, with the option that avoids it. */
static void warn_overflow(struct agent *a)
{
	uint64_t *t = &a->warned_losses[JOBQ_LOSS_TENANT_OVERFLOW];
	uint64_t *ty = &a->warned_losses[JOBQ_LOSS_TYPE_OVERFLOW];

	if (a->snap.losses[JOBQ_LOSS_TENANT_OVERFLOW] && !*t) {
		*t = 1;
		fprintf(stderr,
			"jobq-agent: more tenants than --tenant-cap %u: the events of further "
			"tenants are counted in the overflow series (otel.metric.overflow=true, "
			"loss tenant_overflow)\n",
			a->opts.tenant_cap);
	}
	if (a->snap.losses[JOBQ_LOSS_TYPE_OVERFLOW] && !*ty) {
		*ty = 1;
		fprintf(stderr,
			"jobq-agent: a tenant has more (queue, job type) pairs than "
			"--types-per-tenant %u: the events of its further pairs are counted in the "
			"overflow series (otel.metric.overflow=true, loss type_overflow)\n",
			a->opts.types_per_tenant);
	}
}

int agent_snapshot(struct agent *a)
{
	struct snap_maps m = {
		.series = bpf_map__fd(a->skel->maps.series),
		.depths = bpf_map__fd(a->skel->maps.depths),
		.losses = bpf_map__fd(a->skel->maps.losses),
		.counters = a->counters,
		.hists = a->hists,
		.nseries = a->opts.max_series,
	};
	char err[256];

	/* In every snapshot, so span losses are seen even when no SpanBatch
	 * (which carries the same count) follows them. */
	a->agent_losses[JOBQ_LOSS_SPANS_DROPPED] = a->spans_dropped;
	if (snapshot_read(&a->snap, &m, a->offset_ns, a->agent_losses, err, sizeof(err))) {
		fprintf(stderr, "jobq-agent: %s\n", err);
		return -1;
	}
	warn_overflow(a);
	return 0;
}

/* The overflow series exists before any probe fires, at its fixed id: a
 * full series table then still has somewhere to put new series' data. */
static int insert_overflow_series(struct agent *a)
{
	struct jobq_series key;
	__u32 id = JOBQ_OVERFLOW_SERIES_ID;

	memset(&key, 0, sizeof(key));
	key.overflow = 1;
	if (bpf_map_update_elem(bpf_map__fd(a->skel->maps.series), &key, &id, BPF_NOEXIST)) {
		fprintf(stderr, "jobq-agent: create the overflow series: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* A BPF_F_MMAPABLE array of the series table's size, mapped read-only. */
static const void *map_series_array(struct bpf_map *m, size_t value_size, size_t *len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p;

	if (bpf_map__value_size(m) != value_size || !(bpf_map__map_flags(m) & BPF_F_MMAPABLE)) {
		fprintf(stderr, "jobq-agent: internal error: %s layout\n", bpf_map__name(m));
		return NULL;
	}
	*len = ((size_t)bpf_map__max_entries(m) * value_size + page - 1) / page * page;
	p = mmap(NULL, *len, PROT_READ, MAP_SHARED, bpf_map__fd(m), 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "jobq-agent: map %s: %s\n", bpf_map__name(m), strerror(errno));
		*len = 0;
		return NULL;
	}
	return p;
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

static int setup(struct agent *a)
{
	__u64 bounds[JOBQ_HIST_TABLE_SIZE];
	char err[4096];
	int e;

	if (target_resolve(&a->target, a->opts.kind, a->opts.target_arg, err, sizeof(err))) {
		fprintf(stderr, "jobq-agent: %s\n", err);
		return -1;
	}
	if (jobq_hist_table_fill(bounds)) {
		fprintf(stderr, "jobq-agent: internal error: histogram boundaries not exact\n");
		return -1;
	}
	a->skel = jobq_bpf__open();
	if (!a->skel) {
		fprintf(stderr, "jobq-agent: open BPF object: %s\n", strerror(errno));
		return -1;
	}
	memcpy((void *)a->skel->rodata->hist_bounds, bounds, sizeof(bounds));
	a->skel->rodata->emit_events = a->opts.spans;
	a->skel->rodata->max_series = a->opts.max_series;
	a->skel->rodata->types_per_tenant = a->opts.types_per_tenant;
	/* --queue: the names as the programs compare them, zero-padded. */
	a->skel->rodata->nqueues_selected = a->opts.nqueues;
	for (unsigned int i = 0; i < a->opts.nqueues; i++) {
		char name[JOBQ_QUEUE_BUF] = { 0 };

		memcpy(name, a->opts.queues[i], strlen(a->opts.queues[i]));
		memcpy((void *)a->skel->rodata->queues_selected[i], name, sizeof(name));
	}
	e = maps_configure(a->skel, a->opts.tenant_cap, a->opts.max_series, a->opts.spans);
	if (e) {
		fprintf(stderr, "jobq-agent: configure maps: %s\n", strerror(-e));
		return -1;
	}
	a->ncpus = libbpf_num_possible_cpus();
	if (a->ncpus <= 0) {
		fprintf(stderr, "jobq-agent: count possible CPUs: %s\n", strerror(-a->ncpus));
		return -1;
	}
	kmem_of_object(a->skel->obj, &a->kmem);
	e = jobq_bpf__load(a->skel);
	if (e) {
		fprintf(stderr, "jobq-agent: load BPF programs: %s%s\n", strerror(-e),
			verbose ? "" : " (run with -v for the verifier log)");
		if (e == -ENOMEM || e == -E2BIG)
			fprintf(stderr,
				"jobq-agent: the maps need %.1f MiB of kernel memory, of which the "
				"series table (%u series = --tenant-cap %u x --types-per-tenant %u) "
				"%.1f MiB: lower --tenant-cap or --types-per-tenant\n",
				mib(kmem_total(&a->kmem, (unsigned int)a->ncpus)), a->opts.max_series,
				a->opts.tenant_cap, a->opts.types_per_tenant,
				mib((uint64_t)a->opts.max_series * JOBQ_SERIES_KMEM));
		return -1;
	}
	if (insert_overflow_series(a) || map_inflight(a))
		return -1;
	a->counters = map_series_array(a->skel->maps.counters, sizeof(struct jobq_counters),
				       &a->counters_len);
	a->hists = map_series_array(a->skel->maps.hists, sizeof(struct jobq_hists),
				    &a->hists_len);
	if (!a->counters || !a->hists)
		return -1;
	update_offset(a);
	/* Bounded: a series has at most a few dozen non-zero counter cells. */
	if (snapshot_init(&a->snap, (size_t)a->opts.max_series * 32,
			  (size_t)a->opts.max_series * JOBQ_H_COUNT,
			  bpf_map__max_entries(a->skel->maps.depths))) {
		fprintf(stderr, "jobq-agent: out of memory\n");
		return -1;
	}
	if (a->opts.nqueues) {
		fprintf(stderr, "jobq-agent: observing only queue%s", a->opts.nqueues > 1 ? "s" : "");
		for (unsigned int i = 0; i < a->opts.nqueues; i++)
			fprintf(stderr, "%s'%s'", i ? ", " : " ", a->opts.queues[i]);
		fputc('\n', stderr);
	}
	if (attach_all(a))
		return -1;
	if (a->opts.spans && agent_spans_start(a))
		return -1;
	fprintf(stderr,
		"jobq-agent: attached %zu probes to %s (up to %u tenants x %u types: %u series; "
		"kernel memory of the maps %.1f MiB: %.1f MiB shared + %" PRIu64
		" bytes per CPU x %d CPUs)\n",
		a->nlinks, a->target.desc, a->opts.tenant_cap, a->opts.types_per_tenant,
		a->opts.max_series, mib(kmem_total(&a->kmem, (unsigned int)a->ncpus)),
		mib(a->kmem.shared), a->kmem.per_cpu, a->ncpus);
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL); /* EINTR: a signal, checked by the caller */
}

static int run(struct agent *a)
{
	uint64_t start = agent_now_ns(CLOCK_MONOTONIC), last_sec = start, last_snap = start;
	uint64_t end = a->opts.duration_s ? start + (uint64_t)a->opts.duration_s * 1000000000ull
					  : UINT64_MAX;

	while (!stop_signal) {
		uint64_t now;

		if (a->sc)
			agent_sidecar_wait(a, TICK_MS);
		else
			sleep_ms(TICK_MS);
		now = agent_now_ns(CLOCK_MONOTONIC);
		if (a->opts.spans)
			agent_spans_poll(a);
		if (now - last_sec >= 1000000000ull) {
			update_offset(a);
			expire_inflight(a);
			last_sec = now;
		}
		if (!a->opts.json && now - last_snap >= (uint64_t)a->opts.interval_ms * 1000000ull) {
			last_snap = now;
			if (agent_snapshot(a))
				return -1;
			if (a->opts.top)
				agent_top_render(a, stdout);
			if (a->opts.export)
				agent_sidecar_metrics(a);
		}
		if (now >= end)
			break;
	}
	if (a->opts.spans)
		agent_spans_poll(a); /* the last records */
	if (a->opts.json) {
		if (agent_snapshot(a))
			return -1;
		if (json_write_snapshot(stdout, &a->snap, a->target.desc, a->start_unix_ns,
					a->spans_built, a->spans_dropped, &a->kmem,
					(unsigned int)a->ncpus)) {
			fprintf(stderr, "jobq-agent: write snapshot: %s\n", strerror(errno));
			return -1;
		}
	} else if (a->opts.export) {
		if (agent_snapshot(a) == 0)
			agent_sidecar_metrics(a); /* final cumulative values */
		agent_sidecar_flush(a);
	}
	return 0;
}

/*
 * Exit codes (docs/agent.md): 0 done (also after SIGINT/SIGTERM), 1 the
 * system refused what was asked (privileges, target, BPF load or attach,
 * reading the maps), 2 usage error (options, values, limits), checked
 * before anything else.
 */
int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct agent a;
	int rc = 1;

	memset(&a, 0, sizeof(a));
	if (parse_args(argc, argv, &a.opts))
		return 2;
	libbpf_set_print(libbpf_print);
	if (check_privileges())
		return 1;
	a.start_unix_ns = agent_now_ns(CLOCK_REALTIME);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) {
		fprintf(stderr, "jobq-agent: sigaction: %s\n", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN); /* a vanished sidecar is an EPIPE, not a death */

	if (setup(&a))
		goto cleanup;
	if (a.opts.export)
		agent_sidecar_open(&a);
	if (run(&a))
		goto cleanup;
	rc = 0;
cleanup:
	agent_sidecar_close(&a);
	agent_spans_stop(&a);
	/* Links first: no probe fires into maps being torn down. */
	for (size_t i = a.nlinks; i > 0; i--)
		bpf_link__destroy(a.links[i - 1]);
	if (a.inflight)
		munmap(a.inflight, a.inflight_len);
	if (a.counters)
		munmap((void *)a.counters, a.counters_len);
	if (a.hists)
		munmap((void *)a.hists, a.hists_len);
	inflight_expiry_free(&a.expiry);
	jobq_bpf__destroy(a.skel);
	snapshot_free(&a.snap);
	agent_top_free(&a);
	if (stop_signal && rc == 0)
		fprintf(stderr, "jobq-agent: %s, detached\n", strsignal(stop_signal));
	return rc;
}
