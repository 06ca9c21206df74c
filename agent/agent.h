/*
 * agent.h - the jobq-agent process state shared by its modules:
 * main.c (options, load, attach, loop), events.c (ring buffer -> spans),
 * export.c (metrics and spans -> sidecar frames), top.c (--top).
 */
#ifndef JOBQ_AGENT_AGENT_H
#define JOBQ_AGENT_AGENT_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "agent/inflight.h"
#include "agent/maps.h"
#include "agent/snapshot.h"
#include "agent/target.h"

#define JOBQ_AGENT_DEFAULT_SOCKET "/run/jobq/sidecar.sock"
#define AGENT_MAX_LINKS 64
#define JOBQ_AGENT_VERSION "0.1.0"

struct agent_opts {
	enum target_kind kind;
	const char *target_arg;
	const char *sidecar;
	long interval_ms;
	long duration_s; /* 0: until a signal */
	unsigned int tenant_cap, types_per_tenant;
	unsigned int max_series; /* jobq_series_table(tenant_cap, types_per_tenant) */
	long top_rows;           /* --top rows shown; 0: fit the terminal */
	long inflight_max_age_s;
	const char *queues[JOBQ_MAX_QUEUE_FILTER]; /* --queue: only these; none: all */
	unsigned int nqueues;
	int top, json, spans;
	int export; /* send to the sidecar: not --json; with --top only when --sidecar is given */
};

struct jobq_bpf;
struct bpf_link;
struct ring_buffer;
struct span_builder;
struct conn;
struct top_state;

struct agent {
	struct agent_opts opts;
	struct target target;
	struct jobq_bpf *skel;
	struct bpf_link *links[AGENT_MAX_LINKS];
	size_t nlinks;
	uint64_t start_unix_ns;
	uint64_t offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	uint64_t agent_losses[JOBQ_LOSS_COUNT];
	struct snapshot snap;
	struct ring_buffer *rb;
	struct span_builder *spans;
	struct conn *sc;
	struct top_state *top;
	uint64_t spans_built, spans_dropped;
	uint64_t warned_losses[JOBQ_LOSS_COUNT]; /* overflow already reported on stderr */
	struct jobq_inflight_set *inflight; /* the kernel's in-flight table, mapped */
	size_t inflight_len;
	const struct jobq_counters *counters; /* the series arrays, mapped read-only */
	const struct jobq_hists *hists;
	size_t counters_len, hists_len;
	struct kmem kmem; /* kernel memory of the maps (agent/maps.h) */
	int ncpus;        /* possible CPUs: per-CPU maps have this many copies */
	struct inflight_expiry expiry;
};

uint64_t agent_now_ns(clockid_t clk);
/* Reads the maps into a->snap; 0 or -1 (logged). */
int agent_snapshot(struct agent *a);

/* events.c: ring-buffer consumption and span building. */
int agent_spans_start(struct agent *a);
void agent_spans_poll(struct agent *a);
void agent_spans_stop(struct agent *a);

/* export.c: the sidecar connection (never fatal: retried with backoff). */
void agent_sidecar_open(struct agent *a);
void agent_sidecar_metrics(struct agent *a);
/* Sends finished spans (kept, bounded, while the sidecar is down). */
void agent_sidecar_spans(struct agent *a);
void agent_sidecar_flush(struct agent *a);
/* Sleeps up to ms, writing queued frames whenever the socket takes them. */
void agent_sidecar_wait(struct agent *a, long ms);
void agent_sidecar_close(struct agent *a);

/* top.c */
void agent_top_render(struct agent *a, FILE *out);
void agent_top_free(struct agent *a);

#endif
