#!/usr/bin/env bash
# Python producer -> C worker: jobs enqueued by clients/python/jobq.py (same
# Lua script) are run by `jobq worker` with their tenant, type, priority,
# payload and trace id intact; invalid input raises ValueError naming the
# field. Runs against a private redis-server (tests/lib via with-redis).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || true)
if [ -z "$PY" ] || ! "$PY" -c 'import redis' 2>/dev/null; then
	echo "*** SKIP: python3 with the redis module (Debian python3-redis) is not available ***" >&2
	exit 77
fi
export PY BUILD
exec "$BUILD/tests/with-redis" bash -c '
set -eu
tmp=$(mktemp -d)
trap "rm -rf $tmp" EXIT
PYTHONPATH=clients/python "$PY" - <<PYEOF
import redis, jobq, os
q = jobq.JobQueue(redis.Redis.from_url(os.environ["JOBQ_REDIS_URL"]), queue="py")
ids = []
for i in range(30):
    ids.append(q.enqueue("tenant-%d" % (i % 3), "report", {"n": i},
                         priority=("high", "normal", "low")[i % 3]))
ids.append(q.enqueue("tenant-x", "echo", "hello from python",
                     traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
assert ids == sorted(ids) and len(set(ids)) == 31, ids
for args, field in [(("", "t", {}), "tenant_id"), (("a" * 65, "t", {}), "tenant_id"),
                    (("t", "", {}), "type"), (("t", "x\n", {}), "type")]:
    try:
        q.enqueue(*args)
        raise SystemExit("accepted invalid %s" % field)
    except ValueError as e:
        assert field in str(e), e
try:
    q.enqueue("t", "x", {}, priority="urgent")
    raise SystemExit("accepted priority urgent")
except ValueError as e:
    assert "priority" in str(e), e
# NaN and Infinity are not JSON: refused (json.dumps would write NaN),
# nothing enqueued.
r = redis.Redis.from_url(os.environ["JOBQ_REDIS_URL"])
seq = r.get("jobq:{py}:seq")
for bad in (float("nan"), {"v": float("inf")}, [1, float("-inf")]):
    try:
        q.enqueue("t", "x", bad)
        raise SystemExit("accepted payload %r" % (bad,))
    except ValueError as e:
        assert "payload must be valid JSON: NaN and Infinity are not allowed" in str(e), e
try:
    q.enqueue("t", "x", {1, 2})
    raise SystemExit("accepted a set as payload")
except ValueError as e:
    assert "payload must be bytes, str or a JSON-serializable value" in str(e), e
assert r.get("jobq:{py}:seq") == seq, "a refused payload was enqueued"
print("python producer enqueued", len(ids), "jobs")
PYEOF
cat >"$tmp/echo.sh" <<SH
#!/bin/sh
# exec handler: records its stdin (the payload) and environment
{ cat; echo " \$JOBQ_TENANT \$JOBQ_TYPE"; echo "\$JOBQ_TRACEPARENT"; } >"$tmp/echo.out"
SH
chmod +x "$tmp/echo.sh"
"$BUILD/jobq" --queue py worker --handler report=builtin:noop --handler "echo=exec:$tmp/echo.sh" \
	--job-log "$tmp/log" 2>"$tmp/err" &
w=$!
for i in $(seq 1 500); do
	[ "$(wc -l <"$tmp/log" 2>/dev/null || echo 0)" -ge 31 ] && break
	sleep 0.02
done
kill -TERM $w
wait $w || { echo "FAIL: worker exited non-zero"; cat "$tmp/err"; exit 1; }
n=$(wc -l <"$tmp/log")
[ "$n" -eq 31 ] || { echo "FAIL: worker ran $n jobs, want 31"; cat "$tmp/err"; exit 1; }
ok=$(awk "\$8 == \"ok\"" "$tmp/log" | wc -l)
[ "$ok" -eq 31 ] || { echo "FAIL: $ok of 31 jobs succeeded"; cat "$tmp/log"; exit 1; }
for t in 0 1 2; do
	c=$(awk -v t="tenant-$t" "\$2 == t && \$3 == \"report\"" "$tmp/log" | wc -l)
	[ "$c" -eq 10 ] || { echo "FAIL: tenant-$t ran $c report jobs, want 10"; exit 1; }
done
awk "\$2 == \"tenant-0\" && \$4 != \"high\" { bad = 1 } END { exit bad }" "$tmp/log" ||
	{ echo "FAIL: tenant-0 jobs lost their priority"; exit 1; }
grep -q "^hello from python tenant-x echo$" "$tmp/echo.out" ||
	{ echo "FAIL: exec handler saw: $(cat "$tmp/echo.out")"; exit 1; }
# The trace id survives Python -> Redis -> C worker: same trace, a new span
# (the job.enqueue span, child of the caller'"'"'s), flags kept.
tp=$(sed -n 2p "$tmp/echo.out")
echo "$tp" | grep -Eq "^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$" ||
	{ echo "FAIL: trace context not intact: JOBQ_TRACEPARENT=\"$tp\""; exit 1; }
[ "$(echo "$tp" | cut -d- -f3)" != 00f067aa0ba902b7 ] && [ "$(echo "$tp" | cut -d- -f3)" != 0000000000000000 ] ||
	{ echo "FAIL: span id is the caller'"'"'s or zero: $tp"; exit 1; }
echo "ok: 31 jobs from the Python producer ran in the C worker, trace context intact"
'
