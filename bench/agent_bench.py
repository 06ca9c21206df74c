#!/usr/bin/env python3
"""agent_bench - what the jobq probes and the jobq-agent cost, as ratios
from one run (run as root: `make bench`).

  1. probes compiled in, no agent:  no-op jobs/s  /  the same loop built
     with -DJOBQ_NO_PROBES                                 (target >= 0.995)
  2. CPU added per job with the agent attached (BPF programs + the agent's
     own CPU)  /  CPU added by an empty program on the same probes, i.e.
     the bare trap cost of the same number of probe hits     (target <= 1.5)
  3. the highest paced job rate at which nothing is lost for BENCH_SECONDS
     (default 60): no kernel loss, no dropped span, every span delivered
     to a sidecar over the socket; and the agent's CPU share at that rate.

The "worker" is tests/bpf/probe_emitter --bench: per job the jobq:start
and jobq:finish probes around the in-process work of a no-op job (format
and checksum the job document). Redis is left out on purpose: its ~95 us
round trip would hide every cost measured here.
Environment: BENCH_JOBS (default 2000000), BENCH_SECONDS (60),
BENCH_RATES ("50000 100000 150000 200000"), BENCH_REPEAT (7).
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
READER = os.path.join(BUILD, "tests", "bpf", "sidecar_reader")

JOBS = int(os.environ.get("BENCH_JOBS", "2000000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
RATES = [int(r) for r in os.environ.get("BENCH_RATES", "50000 100000 150000 200000").split()]
REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
RATIO_JOBS, RATIO_RUNS = 300000, 31
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


class AgentWithSidecar:
    def __init__(self, tmp):
        self.sock = os.path.join(tmp, "sidecar.sock")
        self.reader = subprocess.Popen([READER, "--summary", self.sock], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
        wait_line(self.reader, "listening")
        self.agent = subprocess.Popen([AGENT, "--bin", EMITTER, "--sidecar", self.sock],
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
    print("agent bench: %d jobs per run, best of %d, %d cpus, kernel %s" %
          (JOBS, REPEAT, os.cpu_count(), os.uname().release))

    # 1. probes compiled in (detached) vs a build without probes.
    # Rates from the process's own CPU time (not wall time), best of many
    # short interleaved runs: this VM's run-to-run noise (+-30%) dwarfs the
    # effect, and the least disturbed run of each build is the comparable one.
    base_rate, probe_rate, base_cpu = 0.0, 0.0, float("inf")
    for _ in range(RATIO_RUNS):
        c, _ = emit(NOPROBES, RATIO_JOBS)
        base_rate = max(base_rate, RATIO_JOBS / (c / 1e9))
        c, _ = emit(EMITTER, RATIO_JOBS)
        probe_rate = max(probe_rate, RATIO_JOBS / (c / 1e9))
        base_cpu = min(base_cpu, c / RATIO_JOBS)
    print("1. no-op jobs per CPU-second (best of %d runs of %d): no probes %.0f, probes "
          "compiled in (no agent) %.0f: ratio %.4f "
          "(target >= 0.995)" % (RATIO_RUNS, RATIO_JOBS, base_rate, probe_rate,
                                 probe_rate / base_rate))

    # 2a. bare trap: an empty program on the same two probes.
    trap = subprocess.Popen([TRAP, EMITTER], stderr=subprocess.PIPE, text=True)
    wait_line(trap, "attached")
    trap_cpu = min(emit(EMITTER, JOBS)[0] / JOBS for _ in range(REPEAT))
    trap.send_signal(2)
    trap.wait(timeout=30)
    trap_cost = trap_cpu - base_cpu

    # 2b. the agent (metrics + spans to a sidecar), same probes, same loop.
    with tempfile.TemporaryDirectory(prefix="jobq-bench-") as tmp:
        a = AgentWithSidecar(tmp)
        best = None
        for _ in range(REPEAT):
            c0 = a.cpu()
            cpu, _ = emit(EMITTER, JOBS)
            time.sleep(0.3)  # let the agent drain what this run produced
            agent_s = a.cpu() - c0
            added = (cpu / JOBS - base_cpu) + agent_s * 1e9 / JOBS
            if best is None or added < best[0]:
                best = (added, cpu / JOBS - base_cpu, agent_s * 1e9 / JOBS)
        summary, _ = a.stop()
    print("2. CPU per job: baseline %.1f ns; bare trap (2 probe hits) +%.1f ns; agent +%.1f ns "
          "(in-kernel %.1f + agent process %.1f): ratio %.2f (target <= 1.5)" %
          (base_cpu, trap_cost, best[0], best[1], best[2], best[0] / trap_cost))
    print("   (sidecar saw %d spans, %d dropped, %d kernel losses)" %
          (summary["spans"], summary["dropped_spans"], summary["losses"]))

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
