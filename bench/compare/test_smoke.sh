#!/usr/bin/env bash
# Smoke run of bench-compare on tiny sizes: every scenario, every peer that
# can be installed, one run each. Asserts only that each scenario ran and
# produced sane, non-zero figures (compare.py --check), never a time.
# Exit 77 (skip) only when a peer truly cannot be installed.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
out=$(mktemp -d /tmp/bench-compare-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT

if ! bench/compare/install-peers.sh; then
	echo "SKIP: bench/compare: a peer (BullMQ, RQ, Celery, Sidekiq or gnuplot) cannot be installed" \
		"from this machine's package sources; see the messages above" >&2
	exit 77
fi
scenarios=throughput,noisy,scaling
if [ "$(id -u)" -eq 0 ]; then
	scenarios=$scenarios,overhead
else
	echo "bench/compare smoke: not root, the overhead scenario (jobq-agent) is left out" >&2
fi
/usr/bin/python3 bench/compare/compare.py --build "$(cd "$BUILD" && pwd)" --out "$out" \
	--size smoke --scenarios "$scenarios" --check || exit 1
# Every system that ran has a throughput row and a wait plot.
for s in jobq BullMQ RQ Celery Sidekiq; do
	grep -q "^| $s |" "$out/results.md" || { echo "FAIL: no throughput row for $s" >&2; exit 1; }
done
n=$(ls "$out"/waits-*.png 2>/dev/null | wc -l)
[ "$n" -ge 5 ] || { echo "FAIL: expected >= 5 wait plots, found $n" >&2; exit 1; }
echo "bench/compare smoke: 1 passed, 0 failed"
