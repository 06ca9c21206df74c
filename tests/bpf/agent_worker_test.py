#!/usr/bin/env python3
"""agent_worker_test - jobq-agent against the real thing: a private
redis-server, real `jobq worker` processes (builtin sleep/fail handlers,
--job-log for the truth) and jobs enqueued with the real `jobq enqueue`.

Proves, against the job logs: counts per tenant/type/priority/status equal
the truth exactly; p50/p90/p99 of wait and duration within one bucket of
the exact quantiles; one job.enqueue span per job and one job.process span
per handler run, linked to it, ERROR on failed runs; zero losses; attach by
library with two workers (one started after attach) and by pid; a SIGKILLed
agent leaves the workers processing.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from agentlib import (BUILD, Agent, Failure, check, check_quantiles, links_left, main)

JOBQ = os.path.join(BUILD, "jobq")
LIBJOBQ = os.path.join(BUILD, "libjobq.so")
READER = os.path.join(BUILD, "tests", "bpf", "sidecar_reader")
PRIO = ["high", "normal", "low"]

# The truth durations come from the handler's own clock, inside the probes'
# window; on a loaded 2-CPU runner a thread preempted between the handler's
# end and the finish probe adds ~1 ms, two buckets (at 9% each) of a 4 ms job.
# Handlers of >= 15 ms keep such jitter inside the one-bucket tolerance.
HANDLERS = ["--handler", "email=builtin:sleep:20", "--handler", "report=builtin:sleep:25",
            "--handler", "flaky=builtin:fail:0.5:15"]
# (tenant, type, priority, count, max_attempts[, queue]); queue "default"
# when not given.
WORKLOAD = [("acme", "email", "high", 60, 5), ("acme", "report", "normal", 12, 5),
            ("globex", "email", "low", 40, 5), ("globex", "flaky", "normal", 30, 2),
            ("initech", "flaky", "high", 20, 2)]


class Redis:
    def __init__(self, tmp):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        d = os.path.join(tmp, "redis")
        os.mkdir(d)
        if not shutil.which("redis-server"):
            raise Failure("redis-server is not installed (scripts/deps.sh installs it)")
        self.p = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind",
                                   "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "no"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = "redis://127.0.0.1:%d" % self.port
        deadline = time.time() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.time() > deadline:
                raise Failure("redis-server did not answer PING")
            time.sleep(0.05)

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=20)


class Env:
    """A temp dir with redis; workers and cleanup of everything started."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="jobq-agent-worker-")
        self.redis = Redis(self.tmp)
        self.workers = []

    def worker(self, name, queue="default"):
        log = os.path.join(self.tmp, "jobs-%s.log" % name)
        p = subprocess.Popen([JOBQ, "--redis", self.redis.url, "--queue", queue, "worker",
                              "--concurrency", "4", "--backoff-base-ms", "50", "--job-log", log] +
                             HANDLERS,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.workers.append((p, log, queue))
        return p

    def enqueue(self, tenant, typ, prio, count, attempts, queue="default", traceparent=None):
        tp = ["--traceparent", traceparent] if traceparent else []
        r = subprocess.run([JOBQ, "--redis", self.redis.url, "--queue", queue, "enqueue",
                            "--tenant", tenant, "--type", typ, "--priority", prio,
                            "--count", str(count), "--max-attempts", str(attempts)] + tp,
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "jobq enqueue: %s" % r.stderr)

    def runs(self):
        """Handler runs from the job logs, each with its worker's queue."""
        out = []
        for _, log, queue in self.workers:
            if os.path.exists(log):
                with open(log) as f:
                    for line in f:
                        p = line.split()
                        if len(p) == 9:
                            out.append({"id": int(p[0]), "tenant": p[1], "type": p[2],
                                        "prio": p[3], "enq": int(p[4]), "start": int(p[5]),
                                        "end": int(p[6]), "ok": p[7] == "ok",
                                        "attempt": int(p[8]), "queue": queue})
        return out

    def wait_done(self, workload, timeout=90):
        want = sum(w[3] for w in workload)
        attempts = {(queue_of(w), w[0], w[1]): w[4] for w in workload}
        deadline = time.time() + timeout
        while time.time() < deadline:
            runs = self.runs()
            done = {(r["queue"], r["id"]) for r in runs  # ids are unique within a queue
                    if r["ok"] or r["attempt"] >= attempts[(r["queue"], r["tenant"], r["type"])]}
            if len(done) >= want:
                return runs
            time.sleep(0.2)
        raise Failure("only %d of %d jobs finished in %ds" % (len(done), want, timeout))

    def close(self):
        for p, _, _ in self.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, _, _ in self.workers:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def queue_of(w):
    return w[5] if len(w) > 5 else "default"


def truth_counters(workload, runs):
    """Counters by (name, queue, tenant, type, priority, status)."""
    want = {}

    def add(k, n=1):
        want[k] = want.get(k, 0) + n
    for w in workload:
        tenant, typ, prio, count = w[:4]
        add(("jobs.enqueued", queue_of(w), tenant, typ, prio, ""), count)
    attempts = {(queue_of(w), w[0], w[1]): w[4] for w in workload}
    for r in runs:
        q = r["queue"]
        add(("jobs.started", q, r["tenant"], r["type"], r["prio"], ""))
        add(("jobs.processed", q, r["tenant"], r["type"], r["prio"],
             "success" if r["ok"] else "failed"))
        if not r["ok"]:
            last = r["attempt"] >= attempts[(q, r["tenant"], r["type"])]
            add(("jobs.dead_lettered", q, r["tenant"], r["type"], "", "dead_letter") if last
                else ("jobs.retried", q, r["tenant"], r["type"], "", "retry"))
    return want


def counters_of(counters):
    """The same keys from a snapshot (--json or a sidecar frame); a counter
    without a queue is keyed by None and matches nothing."""
    got = {}
    for c in counters:
        k = (c["name"], c.get("queue"), c["tenant"], c["job_type"], c["priority"], c["status"])
        got[k] = got.get(k, 0) + c["value"]
    return got


def hists_of(hists):
    return {(h["name"], h.get("queue"), h["tenant"], h["job_type"]): h for h in hists}


def check_hists(hists, runs):
    for queue, tenant, typ in sorted({(r["queue"], r["tenant"], r["type"]) for r in runs}):
        mine = [r for r in runs if (r["queue"], r["tenant"], r["type"]) == (queue, tenant, typ)]
        waits = [r["start"] - r["enq"] for r in mine]
        durs = [r["end"] - r["start"] for r in mine]
        what = "%s/%s/%s" % (queue, tenant, typ)
        for name, truth in (("jobs.wait_time", waits), ("jobs.duration", durs)):
            h = hists.get((name, queue, tenant, typ))
            check(h is not None, "no %s histogram for %s" % (name, what))
            check(h["count"] == len(mine), "%s %s count %d, want %d runs" %
                  (name, what, h["count"], len(mine)))
            check_quantiles(h, truth, truth, "%s %s" % (name, what))


def enqueue_all(env, workload):
    for w in workload:
        env.enqueue(*w[:5], queue=queue_of(w))


def test_lib_attach_two_workers_counts_quantiles_spans_exact():
    env = Env()
    rd = None
    try:
        sock = os.path.join(env.tmp, "sidecar.sock")
        out = open(os.path.join(env.tmp, "frames.jsonl"), "w+")
        rd = subprocess.Popen([READER, sock], stdout=out, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.02)
        env.worker("before")
        time.sleep(0.3)
        ag = Agent(["--lib", LIBJOBQ, "--sidecar", sock, "--interval", "300"])
        ag.wait_attached()
        env.worker("after")  # started after attach: reached too
        enqueue_all(env, WORKLOAD)
        runs = env.wait_done(WORKLOAD)
        time.sleep(1.5)  # a depth report and a snapshot after the last job
        rc, _, err = ag.stop()
        check(rc == 0, "agent exit %d: %s" % (rc, err))
        time.sleep(0.3)
        rd.terminate()
        rd.wait(timeout=20)
        out.seek(0)
        frames = [json.loads(l) for l in out if l.strip()]
        out.close()

        by_worker = {}
        for (p, log, _) in env.workers:
            with open(log) as f:
                by_worker[p.pid] = sum(1 for _ in f)
        check(all(n > 0 for n in by_worker.values()),
              "both workers should have run jobs: %s" % by_worker)

        metrics = [f for f in frames if f["type"] == "metrics"]
        check(metrics, "no metric snapshot reached the sidecar")
        last = metrics[-1]
        got, want = counters_of(last["counters"]), truth_counters(WORKLOAD, runs)
        check(got == want, "counters differ from the job logs:\n want %s\n got  %s" %
              (sorted(want.items()), sorted(got.items())))
        bad = {k: v for k, v in last["losses"].items() if v}
        check(not bad, "losses: %s" % bad)
        check_hists(hists_of(last["histograms"]), runs)
        gauges = {(g["name"], g["tenant"], g["priority"]) for g in last["gauges"]}
        for tenant in {w[0] for w in WORKLOAD}:
            check(("jobs.queue_depth", tenant, "high") in gauges,
                  "no queue depth gauge for %s" % tenant)

        spans = [s for f in frames if f["type"] == "spans" for s in f["spans"]]
        check(all(f["dropped_spans"] == 0 for f in frames if f["type"] == "spans"),
              "spans were dropped")
        enq = {}
        for s in spans:
            if s["name"] == "job.enqueue":
                enq[s["attributes"]["job.id"]] = s
        proc = {}
        for s in spans:
            if s["name"] == "job.process":
                proc[(s["attributes"]["job.id"], s["attributes"]["job.attempt"])] = s
        check(len(enq) == sum(w[3] for w in WORKLOAD),
              "%d enqueue spans for %d jobs" % (len(enq), sum(w[3] for w in WORKLOAD)))
        check(len(proc) == len(runs), "%d process spans for %d runs" % (len(proc), len(runs)))
        for r in runs:
            p = proc.get((r["id"], r["attempt"]))
            check(p is not None, "no process span for job %d attempt %d" % (r["id"], r["attempt"]))
            e = enq.get(r["id"])
            check(e is not None and e["kind"] == 4, "no enqueue span for job %d" % r["id"])
            check(p["kind"] == 5 and p["links"] == [{"trace_id": e["trace_id"],
                                                     "span_id": e["span_id"]}],
                  "job %d process span not linked to its enqueue span: %s vs %s" %
                  (r["id"], p["links"], (e["trace_id"], e["span_id"])))
            check(p["status_error"] == (not r["ok"]),
                  "job %d attempt %d: status_error %s, job log says %s" %
                  (r["id"], r["attempt"], p["status_error"], "ok" if r["ok"] else "fail"))
            if not r["ok"]:
                check([ev["name"] for ev in p["events"]] == ["exception"],
                      "failed run without exception event: %s" % p["events"])
    finally:
        if rd and rd.poll() is None:
            rd.kill()
        env.close()


def start_reader(env):
    sock = os.path.join(env.tmp, "sidecar.sock")
    out = open(os.path.join(env.tmp, "frames.jsonl"), "w+")
    rd = subprocess.Popen([READER, sock], stdout=out, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not os.path.exists(sock) and time.time() < deadline:
        time.sleep(0.02)
    return sock, rd, out


def stop_reader(rd, out):
    rd.terminate()
    rd.wait(timeout=20)
    out.seek(0)
    frames = [json.loads(l) for l in out if l.strip()]
    out.close()
    return frames


def test_traceparent_makes_enqueue_span_a_child_of_the_producer_span():
    # `jobq enqueue --traceparent`: job.enqueue continues the producer's
    # trace as a child of its span, with its flags (00 here: not the 01 a
    # job without traceparent gets); job.process links to job.enqueue.
    trace, parent, flags = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 0
    tp = "00-%s-%s-%02x" % (trace, parent, flags)
    env = Env()
    rd = None
    try:
        sock, rd, out = start_reader(env)
        env.worker("w")
        ag = Agent(["--lib", LIBJOBQ, "--sidecar", sock, "--interval", "300"])
        ag.wait_attached()
        work = [("acme", "email", "normal", 5, 1)]
        env.enqueue(*work[0], traceparent=tp)
        runs = env.wait_done(work)
        time.sleep(0.5)
        rc, _, err = ag.stop()
        check(rc == 0, "agent exit %d: %s" % (rc, err))
        time.sleep(0.3)
        frames = stop_reader(rd, out)
        spans = [s for f in frames if f["type"] == "spans" for s in f["spans"]]
        enq = {s["attributes"]["job.id"]: s for s in spans if s["name"] == "job.enqueue"}
        proc = {s["attributes"]["job.id"]: s for s in spans if s["name"] == "job.process"}
        check(len(enq) == 5 and len(proc) == 5 and len(runs) == 5,
              "%d enqueue and %d process spans for %d runs" % (len(enq), len(proc), len(runs)))
        for jid, e in enq.items():
            check(e["trace_id"] == trace and e["parent_span_id"] == parent and
                  e["flags"] == flags and e["span_id"] not in (parent, "0" * 16),
                  "job %d enqueue span trace %s parent %r flags %d span %s; want trace %s, "
                  "parent %s, flags %d, own span id" % (jid, e["trace_id"], e["parent_span_id"],
                                                        e["flags"], e["span_id"], trace, parent,
                                                        flags))
            p = proc.get(jid)
            check(p is not None and p["links"] == [{"trace_id": trace, "span_id": e["span_id"]}]
                  and p["flags"] == flags,
                  "job %d process span not linked to its enqueue span: %s" % (jid, p))
    finally:
        if rd and rd.poll() is None:
            rd.kill()
        env.close()


def test_same_tenant_and_type_on_two_queues_are_two_series():
    # A user's report: tenant "check" ran 77 jobs on queue "default" and 10
    # on queue "q3", and the agent exported one series of 87 with no queue
    # attribute; an unrelated worker on a third queue (another deployment
    # on the host: --lib reaches every process mapping libjobq) was added
    # in too. Every counter and histogram the agent sends carries its queue
    # (SeriesKey.queue: messaging.destination.name), with exact counts per
    # queue.
    env = Env()
    rd = None
    try:
        sock, rd, out = start_reader(env)
        env.worker("default", "default")
        env.worker("q3", "q3")
        env.worker("unrelated", "unrelated")
        ag = Agent(["--lib", LIBJOBQ, "--sidecar", sock, "--interval", "300"])
        ag.wait_attached()
        work = [("check", "email", "normal", 77, 5, "default"),
                ("check", "email", "normal", 10, 5, "q3"),
                ("check", "email", "normal", 15, 5, "unrelated")]
        enqueue_all(env, work)
        runs = env.wait_done(work)
        time.sleep(1.0)  # a snapshot after the last job
        rc, _, err = ag.stop()
        check(rc == 0, "agent exit %d: %s" % (rc, err))
        time.sleep(0.3)
        frames = stop_reader(rd, out)
        metrics = [f for f in frames if f["type"] == "metrics"]
        check(metrics, "no metric snapshot reached the sidecar")
        last = metrics[-1]
        got, want = counters_of(last["counters"]), truth_counters(work, runs)
        check(got == want, "counters differ from the job logs:\n want %s\n got  %s" %
              (sorted(want.items()), sorted(got.items())))
        processed = {}
        for c in last["counters"]:
            if c["name"] == "jobs.processed":
                processed[c["queue"]] = processed.get(c["queue"], 0) + c["value"]
        check(processed == {"default": 77, "q3": 10, "unrelated": 15},
              "jobs.processed by queue: %s" % processed)
        check(all(h["queue"] in ("default", "q3", "unrelated") for h in last["histograms"]),
              "a histogram without its queue: %s" %
              [(h["name"], h["queue"]) for h in last["histograms"]])
        check_hists(hists_of(last["histograms"]), runs)
        bad = {k: v for k, v in last["losses"].items() if v}
        check(not bad, "losses: %s" % bad)
    finally:
        if rd and rd.poll() is None:
            rd.kill()
        env.close()


def test_pid_attach_and_agent_sigkill_leaves_workers_processing():
    env = Env()
    try:
        w = env.worker("solo")
        time.sleep(0.3)
        ag = Agent(["--pid", str(w.pid), "--json"])
        ag.wait_attached()
        first = [("acme", "email", "high", 30, 5), ("globex", "report", "low", 6, 5)]
        enqueue_all(env, first)
        runs = env.wait_done(first)
        rc, out, err = ag.stop()
        check(rc == 0, "agent exit %d: %s" % (rc, err))
        snap = json.loads(out)
        got = counters_of(snap["counters"])
        want = truth_counters(first, runs)
        # The producer is another process: --pid sees the worker's probes only.
        want = {k: v for k, v in want.items() if k[0] != "jobs.enqueued"}
        check(got == want, "pid attach counters:\n want %s\n got  %s" %
              (sorted(want.items()), sorted(got.items())))
        check_hists(hists_of(snap["histograms"]), runs)

        # Attach again, SIGKILL the agent mid-run: the worker carries on.
        ag = Agent(["--pid", str(w.pid), "--json"])
        ag.wait_attached()
        more = [("acme", "email", "high", 40, 5)]
        enqueue_all(env, more)
        time.sleep(0.1)
        ids = ag.link_ids()
        check(len(ids) >= 7, "expected the agent's links while attached, saw %s" % sorted(ids))
        ag.p.kill()
        ag.p.wait()
        total = [("acme", "email", "high", 70, 5), ("globex", "report", "low", 6, 5)]
        runs = env.wait_done(total)
        check(w.poll() is None, "worker died after the agent was SIGKILLed")
        check(links_left(ids) == [], "links left after agent SIGKILL: %s" % links_left(ids))
        check(len({r["id"] for r in runs}) == 76, "jobs lost after agent SIGKILL")
    finally:
        env.close()


if __name__ == "__main__":
    for tool in (JOBQ, LIBJOBQ):
        if not os.path.exists(tool):
            print("\n*** SKIP: %s not built ***\n" % tool)
            raise SystemExit(77)
    main([test_lib_attach_two_workers_counts_quantiles_spans_exact,
          test_traceparent_makes_enqueue_span_a_child_of_the_producer_span,
          test_same_tenant_and_type_on_two_queues_are_two_series,
          test_pid_attach_and_agent_sigkill_leaves_workers_processing])
