#!/usr/bin/env bash
# `make bench` for queue/: figures from one run on this machine against a
# private local redis-server (started by tests/lib via with-redis).
#   1. no-op jobs/s through one worker process (median of 7 runs of 60,000
#      pre-filled jobs, batch 128, 2 handler threads), probes compiled in
#      with nobody attached vs a -DJOBQ_NO_PROBES build (runs alternate),
#      as jobs/s and as jobs per worker CPU-second (the worker's own CPU
#      is where compiled-in probes would cost; jobs/s moves with redis),
#      and Redis's CPU time per job (what bounds jobs/s: redis is single
#      threaded; it varies much less between runs than jobs/s does);
#   2. redis-benchmark EVALSHA of a trivial script, same server, and the
#      ratio of (1) to it;
#   3. the fairness scenario: small-tenant p99 wait with and without a
#      flood, and Jain's index over weight-normalised worker time.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
exec "$BUILD/tests/with-redis" bash -c '
set -eu
B=$BUILD/bench
median() { sort -n | awk "{ v[NR] = \$1 } END { print v[int((NR + 1) / 2)] }"; }
run() { "$1" throughput "$JOBQ_REDIS_URL" 60000 128 2 | tee "$tmp.run" | awk "/jobs_per_sec/ { print \$2 }"; cat "$tmp.run" >>"$tmp"; }
cpu() { awk "/worker_cpu_us_per_job/ { print \$2 }" "$tmp.run"; }
tmp=$(mktemp)
trap "rm -f $tmp $tmp.run" EXIT
echo "== jobq queue benchmark ($(nproc) vCPUs, redis $(redis-server --version | cut -d" " -f3), $(date -u +%FT%TZ), load average $(cut -d" " -f1-3 /proc/loadavg))"
p="" n="" pc="" nc=""
for i in 1 2 3 4 5 6 7; do
	p="$p $(run "$B/queue_bench")"
	pc="$pc $(cpu)"
	n="$n $(run "$B/queue_bench_noprobes")"
	nc="$nc $(cpu)"
done
P=$(echo $p | tr " " "\n" | median)
N=$(echo $n | tr " " "\n" | median)
echo "no-op jobs/s, one worker process (runs:$p): $P (target >= 30000)"
echo "no-op jobs/s, JOBQ_NO_PROBES build  (runs:$n): $N"
awk -v p="$P" -v n="$N" "BEGIN { printf \"probes compiled in, no agent / no probes, jobs/s (medians; moved by redis and scheduling): %.3f\n\", p / n }"
PC=$(echo $pc | tr " " "\n" | median)
NC=$(echo $nc | tr " " "\n" | median)
echo "worker CPU per no-op job (us, runs:$pc | no probes:$nc)"
awk -v p="$PC" -v n="$NC" "BEGIN { printf \"probes compiled in, no agent / no probes, jobs per worker CPU-second (medians): %.3f (run-to-run noise here is several %%; make bench-agent measures the probes finely against the 0.995 target)\n\", n / p }"
echo "enqueue jobs/s, one producer, pipelined batches of 1000: $(awk "/enqueue_per_sec/ { print \$2 }" "$tmp" | median)"
echo "redis CPU per no-op job (INFO cpu, all 14 runs): $(awk "/redis_cpu_us_per_job/ { print \$2 }" "$tmp" | median) us, i.e. at most $(awk "/redis_cpu_us_per_job/ { print \$2 }" "$tmp" | median | awk "{ printf \"%.0f\", 1e6 / \$1 }") jobs/s while redis has one CPU to itself"
sha=$(redis-cli -p "$REDIS_PORT" SCRIPT LOAD "return 1")
E=$(redis-benchmark -p "$REDIS_PORT" -n 200000 -q EVALSHA "$sha" 0 2>/dev/null | tr "\r" "\n" |
	sed -n "s/.*: \([0-9.]*\) requests per second.*/\1/p" | tail -1)
echo "redis-benchmark EVALSHA (trivial script, 50 clients) ops/s: $E"
awk -v p="$P" -v e="$E" "BEGIN { printf \"worker jobs/s / redis-benchmark EVALSHA ops/s: %.3f\n\", p / e }"
"$B/queue_bench" fairness "$JOBQ_REDIS_URL"
'
