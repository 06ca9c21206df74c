#!/usr/bin/python3
"""compare.py - jobq side by side with BullMQ, RQ, Celery and Sidekiq on one
local redis-server, same plans, same worker concurrency (bench/README.md).

Scenarios (each repeated --runs times; tables show median [min-max]):
  throughput  N no-op jobs enqueued, then drained: enqueue and processing
              jobs/s, worker and Redis CPU per job, jobq's ratio to each peer
  noisy       a flood tenant's backlog of 100x a small tenant's jobs (10 ms
              each) while ten small tenants send steady traffic: small
              tenants' p99 wait with/without the flood, Jain's index on
              worker time while >= 2 tenants are backlogged, throughput
  overhead    CPU per no-op job: jobq alone, jobq + jobq-agent + sidecar,
              BullMQ alone, BullMQ + the OpenTelemetry JS SDK in process
  scaling     jobq worker and Redis CPU per job as active tenants grow

CPU comes from each process's CPU-time clock (ns; plus reaped children's
utime+stime) for every process of the system under test, sampled from its first processed job to the drain, so
start-up is excluded. Nothing here asserts times; --check only asserts that
every scenario ran and produced sane, non-zero figures.
"""
import argparse
import http.server
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metrics  # noqa: E402
import peers  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
POLL_S = 0.01


# ---- processes and CPU --------------------------------------------------

def proc_tree(roots):
    """pids of roots and all their descendants (one /proc scan)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], list(roots)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_s(pids):
    """CPU seconds of pids: each process's own threads (live and exited) from
    its CPU-time clock, in nanoseconds (/proc ticks are 10 ms: too coarse
    for a short run), plus its reaped children's utime+stime (ticks)."""
    total = 0.0
    for p in pids:
        try:
            total += time.clock_gettime(((~p) << 3) | 2)  # clock_getcpuclockid(p)
            with open("/proc/%d/stat" % p) as f:
                v = f.read().rsplit(")", 1)[1].split()
            total += (int(v[13]) + int(v[14])) / TICK  # cutime + cstime
        except OSError:
            pass
    return total


def tree_cpu(roots):
    return cpu_s(proc_tree(roots))


class Redis:
    """One private redis-server on a free loopback port in a temp dir."""

    def __init__(self):
        import redis
        self.dir = tempfile.mkdtemp(prefix="bench-compare-redis-")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--logfile", os.path.join(self.dir, "log")])
        self.url = "redis://127.0.0.1:%d" % self.port
        self.r = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                self.r.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.025)
        raise RuntimeError("redis-server did not answer PING (log: %s/log)" % self.dir)

    def cpu(self):
        return cpu_s([self.proc.pid])

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Sink(http.server.BaseHTTPRequestHandler):
    """OTLP/HTTP endpoint that accepts and discards (its CPU is not counted)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def start_sink():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:%d" % srv.server_address[1]


# ---- one drain ----------------------------------------------------------

def drain(rd, peer, procs, queues, tenants, n, timeout, extra_pids=()):
    """Waits for the first processed job, then for the drain. Returns
    (jobs, wall_s, worker_cpu_s, extra_cpu_s, redis_cpu_s) over that window."""
    roots = [p.pid for p in procs]
    deadline = time.time() + timeout
    rem = n
    while rem >= n:
        if time.time() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError("%s: workers did not start processing" % peer.name)
        time.sleep(POLL_S)
        rem = peer.remaining(rd.r, queues, tenants)
    t0, c0, x0, r0 = time.monotonic(), tree_cpu(roots), tree_cpu(extra_pids), rd.cpu()
    first_rem = rem
    while rem > 0:
        if time.time() > deadline:
            raise RuntimeError("%s: %d jobs left after %ds" % (peer.name, rem, timeout))
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("%s: a worker exited early" % peer.name)
        time.sleep(POLL_S)
        rem = peer.remaining(rd.r, queues, tenants)
    return (first_rem, time.monotonic() - t0, tree_cpu(roots) - c0,
            tree_cpu(extra_pids) - x0, rd.cpu() - r0)


def noop_plan(n, tenants):
    return "".join("0 %s 0\n" % tenants[i % len(tenants)] for i in range(n))


# ---- scenario 1: throughput ----------------------------------------------

def throughput(cfg, rd, systems):
    tenants = ["t%d" % i for i in range(10)]
    plan = noop_plan(cfg.jobs, tenants)
    res = {}
    for peer in systems:
        rows = []
        for _ in range(cfg.runs):
            rd.r.flushall()
            q = peer.queues("fifo", tenants)
            n, enq_ns = peer.enqueue(plan, q)
            procs = peer.start(q, cfg.concurrency)
            try:
                jobs, wall, cpu, _, rcpu = drain(rd, peer, procs, q, tenants, n, cfg.timeout)
            finally:
                peer.stop(procs)
            rows.append({"enq": n / (enq_ns / 1e9), "proc": jobs / wall,
                         "cpu_us": cpu / jobs * 1e6, "redis_us": rcpu / jobs * 1e6})
            log("throughput %-8s enqueue %8.0f/s  process %8.0f/s  worker %6.1f us/job"
                % (peer.name, rows[-1]["enq"], rows[-1]["proc"], rows[-1]["cpu_us"]))
        res[peer.name] = rows
    return res


# ---- scenario 2: noisy neighbour ------------------------------------------

def noisy_plan(cfg, flood):
    """Ten small tenants, `rate` jobs/s each, staggered, for `secs`; with
    flood, tenant "flood" enqueues 100x a small tenant's total at t=0."""
    small = ["s%d" % i for i in range(10)]
    per = int(cfg.noisy_rate * cfg.noisy_secs)
    lines = []
    if flood:
        lines += [(0, "flood")] * (100 * per)
    gap = 1000.0 / cfg.noisy_rate
    for k in range(per):
        for i, t in enumerate(small):
            lines.append((int(k * gap + i * gap / len(small)), t))
    lines.sort(key=lambda x: x[0])
    return "".join("%d %s %d\n" % (o, t, cfg.work_ms) for o, t in lines), small + ["flood"], len(lines)


def run_logged(cfg, rd, peer, mode, flood, logdir):
    """One noisy-neighbour run; returns the parsed job log."""
    plan, tenants, n = noisy_plan(cfg, flood)
    rd.r.flushall()
    q = peer.queues(mode, tenants)
    path = os.path.join(logdir, "%s-%s-%s.log" % (peer.name, mode, "flood" if flood else "base"))
    if os.path.exists(path):
        os.unlink(path)
    procs = peer.start(q, cfg.concurrency, job_log=path, **peer.noisy_opts)
    try:
        time.sleep(cfg.warmup)  # let every worker connect before the plan starts
        peer.enqueue(plan, q)
        deadline = time.time() + cfg.timeout
        while metrics.count_lines(path) < n:
            if time.time() > deadline:
                raise RuntimeError("%s/%s: %d of %d jobs logged after %ds"
                                   % (peer.name, mode, metrics.count_lines(path), n, cfg.timeout))
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("%s/%s: a worker exited early" % (peer.name, mode))
            time.sleep(0.05)
    finally:
        peer.stop(procs)
    return metrics.read_log(path), path


def noisy(cfg, rd, systems, outdir):
    res = {}
    for peer in systems:
        for mode in (peer.modes if cfg.size != "smoke" else peer.modes[:1]):
            rows = []
            for i in range(cfg.runs):
                base, _ = run_logged(cfg, rd, peer, mode, False, outdir)
                jobs, path = run_logged(cfg, rd, peer, mode, True, outdir)
                small = ["s%d" % k for k in range(10)]
                p99f = max(metrics.p99_wait_ms(jobs, t) for t in small)
                p99b = max(metrics.p99_wait_ms(base, t) for t in small)
                jain, frac = metrics.jain_backlogged(jobs, cfg.window_ms)
                rows.append({"p99_flood": p99f, "p99_base": p99b,
                             "isolation": p99f / p99b if p99b > 0 else float("inf"),
                             "jain": jain, "jain_frac": frac,
                             "tput": metrics.throughput(jobs)})
                if i == 0:
                    metrics.write_wait_cdfs(jobs, os.path.join(outdir, "waits-%s-%s" % (peer.name, mode)))
                log("noisy %-8s %-10s p99 small %8.1f ms (no flood %6.1f)  Jain %s  %6.0f jobs/s"
                    % (peer.name, mode, p99f, p99b, "n/a" if jain is None else "%.3f" % jain,
                       rows[-1]["tput"]))
            res["%s (%s)" % (peer.name, mode)] = rows
    return res


# ---- scenario 3: observability overhead --------------------------------------

def overhead(cfg, rd, systems, outdir):
    sink, endpoint = start_sink()
    tenants = ["t%d" % i for i in range(10)]
    plan = noop_plan(cfg.overhead_jobs, tenants)
    res = {}
    for peer in systems:
        if peer.name == "jobq":
            variants = [("jobq, no agent", None), ("jobq + jobq-agent + sidecar", "agent")]
        elif peer.name == "BullMQ":
            variants = [("BullMQ, no SDK", None), ("BullMQ + OpenTelemetry JS SDK", "sdk")]
        else:
            continue
        for label, kind in variants:
            rows = []
            for _ in range(cfg.runs):
                rd.r.flushall()
                q = peer.queues("fifo", tenants)
                n, _ = peer.enqueue(plan, q)
                extra = []
                if kind == "agent":
                    extra = start_agent(cfg, outdir, endpoint)
                procs = peer.start(q, cfg.concurrency, otel=endpoint if kind == "sdk" else None)
                try:
                    jobs, wall, cpu, xcpu, rcpu = drain(rd, peer, procs, q, tenants, n,
                                                        cfg.timeout, [p.pid for p in extra])
                finally:
                    peer.stop(procs)
                    peer.stop(extra)
                rows.append({"cpu_us": (cpu + xcpu) / jobs * 1e6, "extra_us": xcpu / jobs * 1e6,
                             "proc": jobs / wall})
                log("overhead %-32s %6.1f us/job (agent+sidecar %5.1f)"
                    % (label, rows[-1]["cpu_us"], rows[-1]["extra_us"]))
            res[label] = rows
    sink.shutdown()
    return res


def start_agent(cfg, outdir, endpoint):
    """jobq-sidecar exporting to the sink + jobq-agent on build/libjobq.so."""
    sock = os.path.join(outdir, "sidecar.sock")
    env = dict(os.environ, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
    side = subprocess.Popen([os.path.join(cfg.build, "jobq-sidecar"), "--listen", sock,
                             "--prom-listen", "off", "--socket-mode", "0666"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.02)
    agent = subprocess.Popen([os.path.join(cfg.build, "jobq-agent"), "--lib",
                              os.path.join(cfg.build, "libjobq.so"), "--sidecar", sock],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        line = agent.stderr.readline()
        if not line or "attached" in line:
            break
    if agent.poll() is not None:
        side.terminate()
        raise RuntimeError("jobq-agent did not attach (needs root)")
    threading.Thread(target=agent.stderr.read, daemon=True).start()  # keep its pipe drained
    return [agent, side]


# ---- scenario 4: scaling ----------------------------------------------------

def scaling(cfg, rd):
    res = {}
    drv = os.path.join(cfg.build, "bench", "compare", "jobq_driver")
    for nt in cfg.tenant_counts:
        n = max(cfg.scale_jobs, nt)
        tenants = ["t%d" % i for i in range(nt)]
        plan = noop_plan(n, tenants)
        rows = []
        for _ in range(cfg.runs):
            rd.r.flushall()
            peers.Jobq(cfg.build, rd.url).enqueue(plan, ["bench"])
            r0 = rd.cpu()
            out = subprocess.run([drv, "worker", "--redis", rd.url, "--queue", "bench",
                                  "--concurrency", str(cfg.concurrency),
                                  "--expect", str(n)], capture_output=True, text=True,
                                 timeout=cfg.timeout)
            if out.returncode != 0:
                raise RuntimeError("jobq_driver worker: %s" % out.stderr.strip())
            f = dict(kv.split("=") for kv in out.stdout.split())
            rows.append({"cpu_us": int(f["cpu_ns"]) / n / 1e3,
                         "redis_us": (rd.cpu() - r0) / n * 1e6,
                         "proc": n / (int(f["wall_ns"]) / 1e9), "jobs": n})
            log("scaling %7d tenants: worker %6.1f us/job, redis %6.1f us/job, %7.0f jobs/s"
                % (nt, rows[-1]["cpu_us"], rows[-1]["redis_us"], rows[-1]["proc"]))
        res[nt] = rows
    return res


def log(msg):
    print("bench-compare: " + msg, file=sys.stderr, flush=True)


SIZES = {
    # name: jobs, runs, noisy_secs, noisy_rate, overhead_jobs, tenant_counts, scale_jobs
    "full": (100000, 3, 10, 5, 50000, (10, 100, 1000, 10000, 100000), 20000),
    "quick": (20000, 3, 6, 5, 20000, (10, 1000, 10000, 100000), 10000),
    "smoke": (3000, 1, 1.5, 4, 3000, (10, 1000), 2000),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", choices=SIZES, default="full")
    ap.add_argument("--scenarios", default="throughput,noisy,overhead,scaling")
    ap.add_argument("--systems", default="jobq,jobq-b128,BullMQ,RQ,Celery,Sidekiq")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--runs", type=int)
    ap.add_argument("--check", action="store_true", help="exit 1 unless every figure is sane")
    cfg = ap.parse_args()
    (cfg.jobs, runs, cfg.noisy_secs, cfg.noisy_rate, cfg.overhead_jobs, cfg.tenant_counts,
     cfg.scale_jobs) = SIZES[cfg.size]
    cfg.runs = cfg.runs or runs
    cfg.work_ms, cfg.window_ms = 10, 100
    cfg.warmup = 1.0 if cfg.size == "smoke" else 2.0
    cfg.timeout = 60 if cfg.size == "smoke" else 900
    os.makedirs(cfg.out, exist_ok=True)

    rd = Redis()
    want = cfg.systems.split(",")
    systems, absent = [], {}
    for cls in peers.ALL:
        if cls.name not in want:
            continue
        p = cls(cfg.build, rd.url)
        why = p.missing()
        if why:
            absent[p.name] = why
            log("%s is not installed: %s" % (p.name, why))
        else:
            systems.append(p)
    results = {"absent": absent, "notes": {p.name: p.note for p in systems}}
    try:
        sc = cfg.scenarios.split(",")
        if "throughput" in sc:
            results["throughput"] = throughput(cfg, rd, systems)
        if "noisy" in sc:
            results["noisy"] = noisy(cfg, rd, systems, cfg.out)
        if "overhead" in sc:
            if os.geteuid() == 0:
                results["overhead"] = overhead(cfg, rd, systems, cfg.out)
            else:
                results["overhead_skipped"] = "jobq-agent needs root"
        if "scaling" in sc:
            results["scaling"] = scaling(cfg, rd)
    finally:
        rd.close()
    md = metrics.report(cfg, results)
    with open(os.path.join(cfg.out, "results.md"), "w") as f:
        f.write(md)
    print(md)
    metrics.plot(cfg.out, log)
    if cfg.check:
        problems = metrics.check(results)
        for p in problems:
            log("CHECK FAILED: " + p)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    sys.exit(main())
