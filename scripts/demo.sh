#!/usr/bin/env bash
# The noisy-tenant demo: one tenant floods the queue with a massive export
# while ten small tenants send light traffic at mixed priorities. Unchanged
# `jobq worker` processes run the jobs; jobq-agent observes them through the
# kernel and jobq-sidecar exports what it sees. Ends with a per-tenant report.
#
# Environment:
#   JOBQ_DEMO_SECONDS   how long the load runs (default 60)
#   JOBQ_DEMO_WORKERS   worker processes (default 3)
#   JOBQ_DEMO_HEADLESS  1: no live table (for tests)
#   JOBQ_DEMO_LIVE      1: the agent's live table even when stdout is not a terminal
#   JOBQ_DEMO_OUT       directory for logs and the OTLP file (default: a temp dir)
#   JOBQ_REDIS_URL      use this Redis instead of starting one: the demo then
#                       runs on a queue of its own (demo-<time>-<pid>) and
#                       deletes that queue's keys when it ends
#   OTEL_EXPORTER_OTLP_ENDPOINT  also export to this collector
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$here/build}
secs=${JOBQ_DEMO_SECONDS:-60}
nworkers=${JOBQ_DEMO_WORKERS:-3}
headless=${JOBQ_DEMO_HEADLESS:-0}
out=${JOBQ_DEMO_OUT:-$(mktemp -d /tmp/jobq-demo.XXXXXX)}
mkdir -p "$out"
queue=demo
flood=${JOBQ_DEMO_FLOOD:-3000}

log() { printf 'demo: %s\n' "$*" >&2; }

# Stop in data-flow order so nothing observed is lost: load, then workers
# (they finish or release in-flight jobs), then the agent (sends its final
# cumulative snapshot), then the sidecar (final flush), then Redis.
stop_pids() {
	local p
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "$@"; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}
load_pids=() worker_pids=() agent_pids=() sidecar_pids=() redis_pids=()
own_redis=0 queue_dropped=0
cleanup() {
	stop_pids "${load_pids[@]}"
	stop_pids "${worker_pids[@]}"
	stop_pids "${agent_pids[@]}"
	stop_pids "${sidecar_pids[@]}"
	stop_pids "${redis_pids[@]}"
	load_pids=() worker_pids=() agent_pids=() sidecar_pids=() redis_pids=()
	# Opened to the sidecar (it runs as nobody) while it ran; closed again.
	[ -d "${out:-}" ] && chmod 0755 "$out" 2>/dev/null || true
}
trap 'cleanup; drop_queue; log "interrupted: logs, job logs and what was exported so far are in $out"; exit 130' INT TERM
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- Redis ---------------------------------------------------------------
if [ -z "${JOBQ_REDIS_URL:-}" ]; then
	port=$(free_port)
	mkdir -p "$out/redis"
	redis-server --port "$port" --bind 127.0.0.1 --dir "$out/redis" --save '' \
		--appendonly no --daemonize no >"$out/redis.log" 2>&1 &
	redis_pids+=($!)
	own_redis=1
	export JOBQ_REDIS_URL="redis://127.0.0.1:$port"
	for _ in $(seq 100); do
		redis-cli -p "$port" ping >/dev/null 2>&1 && break
		sleep 0.05
	done
	log "started redis-server on 127.0.0.1:$port (data in $out/redis)"
else
	# Someone else's Redis: a fresh queue, so neither old jobs nor old
	# tenant settings leak into the scenario, removed at the end.
	queue="demo-$(date +%s)-$$"
	command -v redis-cli >/dev/null || { log "redis-cli is needed with JOBQ_REDIS_URL"; exit 1; }
	log "using Redis at $(printf %s "$JOBQ_REDIS_URL" | sed -E 's#//[^@/]*@#//***@#'), queue $queue"
fi
drop_queue() {
	# Only for an external Redis; our own redis-server dies with its data.
	[ "$own_redis" = 0 ] && [ "$queue_dropped" = 0 ] || return 0
	queue_dropped=1
	local n cli=(redis-cli -u "$JOBQ_REDIS_URL")
	case $JOBQ_REDIS_URL in unix://*)
		local path=${JOBQ_REDIS_URL#unix://}
		cli=(redis-cli -s "${path%%\?*}") ;;
	esac
	n=$("${cli[@]}" --scan --pattern "jobq:{$queue}:*" 2>/dev/null |
		xargs -r -n 500 "${cli[@]}" unlink 2>/dev/null |
		awk '{ s += $1 } END { print s + 0 }')
	log "deleted the $n keys of queue $queue"
}
jobq() { "$B/jobq" --queue "$queue" "$@"; }

# --- sidecar -------------------------------------------------------------
sock="$out/sidecar.sock"
otlp_file="$out/otlp.jsonl"
export OTEL_METRIC_EXPORT_INTERVAL=${OTEL_METRIC_EXPORT_INTERVAL:-5000}
export OTEL_SERVICE_NAME=${OTEL_SERVICE_NAME:-jobq-demo}
# The flood's enqueue alone makes $flood job.enqueue spans in a moment: a
# span queue larger than the SDK default (2048) keeps them all.
export OTEL_BSP_MAX_QUEUE_SIZE=${OTEL_BSP_MAX_QUEUE_SIZE:-65536}
export OTEL_BSP_SCHEDULE_DELAY=${OTEL_BSP_SCHEDULE_DELAY:-1000}
prom_port=$(free_port)
sidecar_args=(--listen "$sock" --prom-listen "127.0.0.1:$prom_port"
	--starvation-threshold-s "${JOBQ_DEMO_STARVATION_S:-20}")
if [ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ]; then
	log "sidecar exports OTLP/HTTP to $OTEL_EXPORTER_OTLP_ENDPOINT"
	otlp_file=
else
	sidecar_args+=(--otlp-file "$otlp_file")
fi
# The sidecar drops root (to nobody) before any network I/O: let it write here.
chmod 0777 "$out"
"$B/jobq-sidecar" "${sidecar_args[@]}" >"$out/sidecar.log" 2>&1 &
sidecar_pids+=($!)
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

# --- workers -------------------------------------------------------------
jobq tenant set bigcorp --weight 1 >/dev/null
worker_args=(--concurrency 4 --cap 3
	--handler export=builtin:export:40
	--handler email=builtin:sleep:5
	--handler report=builtin:fail:0.1:20
	--handler thumbnail=builtin:cpu:3)
start_worker() {
	"$B/jobq" --queue "$queue" worker "${worker_args[@]}" --job-log "$out/jobs-$1.log" >"$out/worker-$1.log" 2>&1 &
	worker_pids+=($!)
}
for i in $(seq "$nworkers"); do start_worker "$i"; done
log "started $nworkers workers (pids ${worker_pids[*]})"

# --- agent ---------------------------------------------------------------
# Attached to the shared library: every worker process, present and future,
# before any job is enqueued. On a terminal the agent also draws the live
# per-tenant table (--top with --sidecar: one agent both shows and exports).
observed=0
live=0
[ "$headless" != 1 ] && [ -t 1 ] && live=1
[ "${JOBQ_DEMO_LIVE:-0}" = 1 ] && live=1
agent_args=(--lib "$B/libjobq.so" --sidecar "$sock" --interval 1000)
if [ "$(id -u)" -ne 0 ]; then
	log "not root: the eBPF agent needs root (or CAP_SYS_ADMIN+CAP_BPF+CAP_PERFMON) to attach."
	log "running the workload unobserved; per-tenant figures come from the job logs."
else
	if [ "$live" = 1 ]; then
		"$B/jobq-agent" "${agent_args[@]}" --top 2>"$out/agent.log" &
	else
		"$B/jobq-agent" "${agent_args[@]}" >"$out/agent.log" 2>&1 &
	fi
	agent_pid=$!
	agent_pids+=("$agent_pid")
	for _ in $(seq 200); do
		grep -q "attached" "$out/agent.log" 2>/dev/null && break
		kill -0 "$agent_pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$agent_pid" 2>/dev/null && grep -q "attached" "$out/agent.log"; then
		observed=1
	else
		log "the agent did not attach; running the workload unobserved:"
		cat "$out/agent.log" >&2
	fi
fi

# --- load ----------------------------------------------------------------
small=(acme globex initech umbrella hooli stark wayne wonka tyrell cyberdyne)
log "bigcorp enqueues a massive export (and a few urgent high-priority jobs); ${#small[@]} small tenants send steady traffic for ${secs}s"
jobq enqueue --tenant bigcorp --type export --priority low --count "$flood" >/dev/null
python3 "$here/demo/load.py" --seconds "$secs" --tenants "${small[@]}" \
	--urgent-tenant bigcorp --jobq "$B/jobq" --queue "$queue" --summary "$out/enqueued.json" \
	>"$out/load.log" 2>&1 &
load_pid=$!
load_pids+=("$load_pid")

end=$(( $(date +%s) + secs )) tick=0
while [ "$(date +%s)" -lt "$end" ]; do
	sleep 1
	tick=$((tick + 1))
	# Without the agent's live table, show the queue's own view every 5 s.
	if [ "$headless" != 1 ] && [ "$live" = 0 ] && [ $((tick % 5)) = 0 ]; then
		jobq stats | head -n 15
	fi
done
wait "$load_pid" || true

# Let the small tenants' last jobs finish (bounded), then stop everything.
for _ in $(seq 100); do
	busy=$(jobq stats --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(t["in_flight"]+sum(t["depth"].values()) for t in d if t["tenant_id"]!="bigcorp"))')
	[ "$busy" = 0 ] && break
	sleep 0.2
done
sleep 2 # one more agent interval and sidecar export
# The workers stop first (finishing or releasing what they hold), so what
# is left in the queue is what never ran: the report counts it.
stop_pids "${worker_pids[@]}"
worker_pids=()
jobq stats --json >"$out/final-stats.json" 2>>"$out/load.log" || rm -f "$out/final-stats.json"
cleanup
drop_queue
python3 "$here/demo/report.py" --job-logs "$out"/jobs-*.log ${otlp_file:+--otlp "$otlp_file"} \
	--starvation-s "${JOBQ_DEMO_STARVATION_S:-20}" --final-stats "$out/final-stats.json" \
	--enqueued "$out/enqueued.json" --flood-tenant bigcorp --flood "$flood"
log "logs, job logs and the OTLP export are in $out"
if [ -n "$otlp_file" ]; then
	# The sidecar writes it 0640 as root's file; it is demo output, readable by all.
	chmod 0644 "$otlp_file" 2>/dev/null || true
	log "OTLP JSON lines (what the sidecar would send to a collector): $otlp_file"
else
	log "metrics and spans were exported to the collector at $OTEL_EXPORTER_OTLP_ENDPOINT"
fi
log "Prometheus text was served at http://127.0.0.1:$prom_port/metrics while the demo ran"
