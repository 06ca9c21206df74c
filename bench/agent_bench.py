#!/usr/bin/env python3
"""agent_bench - what the jobq probes and the jobq-agent cost, as ratios
from one run (run as root: `make bench`).

  1. probes compiled in, no agent:  no-op jobs/s  /  the same loop built
     with -DJOBQ_NO_PROBES                                 (target >= 0.995)
  2. CPU added per job with the agent attached (BPF programs + the agent's
     own CPU)  /  CPU added by an empty program on the same probes, i.e.
     the bare trap cost of the same number of probe hits     (target <= 1.5),
     paced at BENCH_COST_RATE (default 50000) jobs/s, metrics only and
     metrics + spans
  3. the highest paced job rate at which nothing is lost for BENCH_SECONDS
     (default 60): no kernel loss, no dropped span, every span delivered
     to a sidecar over the socket; and the agent's CPU share at that rate.

The "worker" is tests/bpf/probe_emitter --bench: per job the jobq:start
and jobq:finish probes around the in-process work of a no-op job (format
and checksum the job document). Redis is left out on purpose: its ~95 us
round trip would hide every cost measured here.
Environment: BENCH_SECONDS (60), BENCH_RATES ("50000 100000 150000 200000"),
BENCH_REPEAT (5), BENCH_COST_RATE (50000).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("JOBQ_BUILD", "build")
AGENT = os.path.join(BUILD, "jobq-agent")
EMITTER = os.path.join(BUILD, "tests", "bpf", "probe_emitter")
NOPROBES = os.path.join(BUILD, "tests", "bpf", "probe_emitter_noprobes")
TRAP = os.path.join(BUILD, "bench", "trap_attach")
WORKER = os.path.join(BUILD, "bench", "noop_worker")
WORKER_NP = os.path.join(BUILD, "bench", "noop_worker_noprobes")
JOBQ = os.path.join(BUILD, "jobq")
READER = os.path.join(BUILD, "tests", "bpf", "sidecar_reader")

SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
RATES = [int(r) for r in os.environ.get("BENCH_RATES", "50000 100000 150000 200000").split()]
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
RATIO_JOBS, RATIO_RUNS = 300000, 31
COST_RATE = int(os.environ.get("BENCH_COST_RATE", "50000"))
COST_SECONDS = 4
TICK = os.sysconf("SC_CLK_TCK")


def emit(prog, n, rate=0):
    args = [prog, "--bench", str(n)] + (["--rate", str(rate)] if rate else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    f = dict(kv.split("=") for kv in out.split()[1:])
    return int(f["cpu_ns"]), int(f["wall_ns"])


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def wait_line(p, word, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        if word in line:
            return
    p.kill()
    sys.exit("bench: %s did not report '%s'" % (p.args[0], word))


def real_worker_ratio():
    """The same ratio with the real libjobq worker against a private
    redis-server: N no-op jobs enqueued, then drained by a worker linked
    with the probes compiled in or without them, alternately."""
    import shutil
    import socket
    if not (os.path.exists(WORKER) and os.path.exists(WORKER_NP) and shutil.which("redis-server")):
        return None
    # Enough jobs that a run lasts ~0.5 s (process start-up and connecting
    # are then noise), alternating builds, medians: this VM's run-to-run
    # spread is far wider than the effect measured.
    n, rounds = 25000, 5
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="jobq-bench-redis-") as tmp:
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                  "--dir", tmp, "--save", "", "--appendonly", "no"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = "redis://127.0.0.1:%d" % port
        try:
            for _ in range(100):
                if subprocess.run([JOBQ, "--redis", url, "stats"], capture_output=True).returncode == 0:
                    break
                time.sleep(0.05)
            runs = {WORKER: ([], []), WORKER_NP: ([], [])}
            for _ in range(rounds):
                for prog in (WORKER_NP, WORKER):
                    subprocess.run([JOBQ, "--redis", url, "enqueue", "--tenant", "t", "--type",
                                    "noop", "--count", str(n)], check=True, capture_output=True)
                    out = subprocess.run([prog, url, str(n)], capture_output=True, text=True,
                                         check=True, timeout=300).stdout
                    f = dict(kv.split("=") for kv in out.split()[1:])
                    wall_rate = n / (int(f["wall_ns"]) / 1e9)
                    cpu_rate = n / (int(f["cpu_ns"]) / 1e9)
                    runs[prog][0].append(wall_rate)
                    runs[prog][1].append(cpu_rate)
        finally:
            redis.terminate()
            redis.wait(timeout=20)
    med = lambda v: sorted(v)[len(v) // 2]
    return ((med(runs[WORKER][0]), med(runs[WORKER][1])),
            (med(runs[WORKER_NP][0]), med(runs[WORKER_NP][1])), n, rounds)


class AgentWithSidecar:
    def __init__(self, tmp, extra=()):
        self.sock = os.path.join(tmp, "sidecar.sock")
        self.reader = subprocess.Popen([READER, "--summary", self.sock], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
        wait_line(self.reader, "listening")
        self.agent = subprocess.Popen([AGENT, "--bin", EMITTER, "--sidecar", self.sock] +
                                      list(extra),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True)
        wait_line(self.agent, "attached")

    def cpu(self):
        return proc_cpu_s(self.agent.pid)

    def stop(self):
        self.agent.send_signal(2)
        _, err = self.agent.communicate(timeout=60)
        time.sleep(0.5)
        self.reader.terminate()
        out, _ = self.reader.communicate(timeout=60)
        return json.loads(out.strip().splitlines()[-1]), err


def main():
    if os.geteuid() != 0:
        print("agent_bench: needs root to load BPF programs; skipped", file=sys.stderr)
        return 77
    print("agent bench: %d cpus, kernel %s" % (os.cpu_count(), os.uname().release))

    # 1. probes compiled in (detached) vs a build without probes.
    # Rates from the process's own CPU time (not wall time), best of many
    # short interleaved runs: this VM's run-to-run noise (+-30%) dwarfs the
    # effect, and the least disturbed run of each build is the comparable one.
    base_rate, probe_rate = 0.0, 0.0
    for _ in range(RATIO_RUNS):
        c, _ = emit(NOPROBES, RATIO_JOBS)
        base_rate = max(base_rate, RATIO_JOBS / (c / 1e9))
        c, _ = emit(EMITTER, RATIO_JOBS)
        probe_rate = max(probe_rate, RATIO_JOBS / (c / 1e9))
    print("1. no-op jobs per CPU-second (best of %d runs of %d): no probes %.0f, probes "
          "compiled in (no agent) %.0f: ratio %.4f "
          "(target >= 0.995)" % (RATIO_RUNS, RATIO_JOBS, base_rate, probe_rate,
                                 probe_rate / base_rate))

    real = real_worker_ratio()
    if real:
        (pw, pc), (nw, nc), n, rounds = real
        print("   real libjobq worker, no-op handler, private redis (median of %d x %d jobs): "
              "jobs/s %.0f vs %.0f without probes: ratio %.4f; per worker CPU-second "
              "%.0f vs %.0f: ratio %.4f" % (rounds, n, pw, nw, pw / nw, pc, nc, pc / nc))

    # 2. CPU added per job, paced at COST_RATE jobs/s (a rate the agent
    # sustains without loss, so no CPU goes to dropping), best of REPEAT.
    n = COST_RATE * COST_SECONDS

    def paced_cpu():
        return min(emit(EMITTER, n, COST_RATE)[0] / n for _ in range(REPEAT))

    base = paced_cpu()
    trap = subprocess.Popen([TRAP, EMITTER], stderr=subprocess.PIPE, text=True)
    wait_line(trap, "attached")
    trap_cost = paced_cpu() - base
    trap.send_signal(2)
    trap.wait(timeout=30)
    print("2. CPU per job at %d jobs/s (best of %d x %d jobs): baseline %.1f ns; bare trap "
          "(2 probe hits) +%.1f ns" % (COST_RATE, REPEAT, n, base, trap_cost))
    for label, extra in (("metrics only (--no-spans)", ["--no-spans"]),
                         ("metrics + spans to the sidecar", [])):
        with tempfile.TemporaryDirectory(prefix="jobq-bench-") as tmp:
            a = AgentWithSidecar(tmp, extra)
            best = None
            for _ in range(REPEAT):
                c0 = a.cpu()
                cpu, _ = emit(EMITTER, n, COST_RATE)
                time.sleep(0.2)  # let the agent drain what this run produced
                agent_ns = (a.cpu() - c0) * 1e9 / n
                kern = cpu / n - base
                if best is None or kern + agent_ns < best[0]:
                    best = (kern + agent_ns, kern, agent_ns)
            summary, _ = a.stop()
        print("   agent, %s: +%.1f ns (in the worker: %.1f, agent process: %.1f): "
              "ratio %.2f (target <= 1.5); losses %d, dropped spans %d" %
              (label, best[0], best[1], best[2], best[0] / trap_cost, summary["losses"],
               summary["dropped_spans"]))

    # 3. highest paced rate without any loss for SECONDS.
    best_rate = None
    for rate in RATES:
        with tempfile.TemporaryDirectory(prefix="jobq-bench-") as tmp:
            a = AgentWithSidecar(tmp)
            n = rate * SECONDS
            c0, t0 = a.cpu(), time.time()
            _, wall = emit(EMITTER, n, rate)
            time.sleep(0.3)
            agent_s, elapsed = a.cpu() - c0, time.time() - t0
            summary, _ = a.stop()
        achieved = n / (wall / 1e9)
        lossless = (summary["losses"] == 0 and summary["dropped_spans"] == 0 and
                    summary["spans"] == n)
        print("3. paced %d jobs/s for %ds: achieved %.0f jobs/s, spans delivered %d/%d, "
              "dropped %d, kernel losses %d, agent CPU %.1f%% of one CPU -> %s" %
              (rate, SECONDS, achieved, summary["spans"], n, summary["dropped_spans"],
               summary["losses"], 100 * agent_s / elapsed, "lossless" if lossless else "LOSS"))
        if not lossless or achieved < 0.98 * rate:
            break
        best_rate = (rate, 100 * agent_s / elapsed)
    if best_rate:
        print("   highest lossless rate: %d jobs/s (target >= 50000), agent CPU share %.1f%%" %
              best_rate)
    else:
        print("   no tested rate was lossless (lowest tried %d jobs/s)" % RATES[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
