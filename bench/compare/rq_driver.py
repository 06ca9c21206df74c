"""rq_driver.py - the RQ side of bench/compare (plan and job-log formats:
see jobq_driver.c).

  python3 rq_driver.py enqueue REDIS_URL QUEUE < plan
  rq worker -u REDIS_URL -w rq.worker.SimpleWorker QUEUE...   (PYTHONPATH here)

Jobs are enqueued with Queue.enqueue_many in pipelined chunks of 1000 and
result_ttl=0 (no results kept). `work` is the job function; it appends to
$COMPARE_JOB_LOG when set.
"""
import os
import sys
import time

CHUNK = 1000
_log_fd = None


def log_run(tenant, enq_ns, start, end):
    """One O_APPEND write per finished job, shared by the Python peers."""
    global _log_fd
    path = os.environ.get("COMPARE_JOB_LOG")
    if not path:
        return
    if _log_fd is None:
        _log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(_log_fd, ("%s %d %d %d\n" % (tenant, enq_ns, start, end)).encode())


def work(tenant, enq_ns, ms):
    start = time.time_ns()
    if ms:
        time.sleep(ms / 1000.0)
    log_run(tenant, enq_ns, start, time.time_ns())


def read_plan(stream):
    """Yields (offset_ms, [(tenant, ms), ...]) groups of equal offset."""
    cur, group = None, []
    for n, line in enumerate(stream, 1):
        f = line.split()
        if len(f) != 3:
            sys.exit("plan line %d: expected \"offset_ms tenant work_ms\"" % n)
        off = int(f[0])
        if off != cur and group:
            yield cur, group
            group = []
        cur = off
        group.append((f[1], int(f[2])))
    if group:
        yield cur, group


def replay(plan, send):
    """Sleeps to each group's offset and calls send(group); returns
    (jobs, wall_ns from the first send to the end)."""
    t0 = time.monotonic()
    first, total = 0, 0
    for off, group in plan:
        delay = t0 + off / 1000.0 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if not first:
            first = time.monotonic_ns()
        send(group)
        total += len(group)
    return total, (time.monotonic_ns() - first) if first else 0


def main():
    from redis import Redis
    from rq import Queue

    import rq_driver  # the job function by its importable name, not __main__.work

    if len(sys.argv) != 4 or sys.argv[1] != "enqueue":
        sys.exit("usage: rq_driver.py enqueue REDIS_URL QUEUE < plan")
    q = Queue(sys.argv[3], connection=Redis.from_url(sys.argv[2]))

    def send(group):
        for i in range(0, len(group), CHUNK):
            now = time.time_ns()
            q.enqueue_many([Queue.prepare_data(rq_driver.work, args=(t, now, ms), result_ttl=0)
                            for t, ms in group[i:i + CHUNK]])

    total, wall = replay(read_plan(sys.stdin), send)
    print("enqueued=%d wall_ns=%d" % (total, wall))


if __name__ == "__main__":
    main()
