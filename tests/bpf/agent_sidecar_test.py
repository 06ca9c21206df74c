#!/usr/bin/env python3
"""agent_sidecar_test - jobq-agent's messages to the sidecar, decoded with
the generated protobuf-c code by a real socket peer (sidecar_reader):
Hello first, cumulative metric snapshots equal to the truth, and one
job.enqueue + one linked job.process span per job, ERROR on failures.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from agentlib import (BUILD, EMITTER, Agent, check, main, parse_truth, truth_counters)

READER = os.path.join(BUILD, "tests", "bpf", "sidecar_reader")
GROUPS = ["acme,email,0,30,1000,20,3", "globex,report,1,12,2000,200,4"]


class Reader:
    def __init__(self, path):
        # A file, not a pipe: a reader blocked writing to a full pipe would
        # lose output to the signal that stops it.
        self.out = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen([READER, path], stdout=self.out,
                                  stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 10
        while not os.path.exists(path):
            check(time.time() < deadline and self.p.poll() is None, "reader did not listen")
            time.sleep(0.02)

    def stop(self):
        self.p.terminate()
        _, err = self.p.communicate(timeout=20)
        self.out.seek(0)
        out = self.out.read()
        self.out.close()
        return [json.loads(l) for l in out.splitlines()], err


def hex16(v):
    return "%016x" % v


def run_emitter(groups):
    em = subprocess.run([EMITTER, "--wait-attach-ms", "20000"] + groups, capture_output=True,
                        text=True, timeout=60)
    check(em.returncode == 0, "emitter: %s" % em.stderr)
    return em.stdout


def counters_of(metrics):
    out = {}
    for c in metrics["counters"]:
        k = (c["name"], c["queue"], c["tenant"], c["job_type"], c["priority"], c["status"])
        out[k] = out.get(k, 0) + c["value"]
    return out


def check_frames(frames, truth, target):
    jobs, other = parse_truth(truth)
    kinds = [f["type"] for f in frames]
    check(kinds and kinds[0] == "connect" and kinds[1] == "hello",
          "want connect, hello first; got %s" % kinds[:3])
    check("error" not in kinds, "reader saw a bad frame: %s" % frames)
    check(frames[1]["target"] == target, "hello target %s" % frames[1]["target"])

    metrics = [f for f in frames if f["type"] == "metrics"]
    check(metrics, "no metric snapshot")
    last = metrics[-1]
    check(counters_of(last) == truth_counters(jobs, other),
          "sidecar counters differ: %s" % sorted(counters_of(last).items()))
    check(all(v == 0 for v in last["losses"].values()), "losses: %s" % last["losses"])
    hist = {(h["name"], h["queue"], h["tenant"], h["job_type"]): h for h in last["histograms"]}
    for h in hist.values():
        check(h["scale"] == 3 and h["zero_count"] + sum(h["bucket_counts"]) == h["count"],
              "bad histogram %s" % h)
    # SeriesKey.queue (messaging.destination.name) on every histogram too.
    for q, t, ty in {(j["queue"], j["tenant"], j["type"]) for j in jobs}:
        n = sum(1 for j in jobs if (j["queue"], j["tenant"], j["type"]) == (q, t, ty))
        for name in ("jobs.wait_time", "jobs.duration"):
            h = hist.get((name, q, t, ty))
            check(h is not None and h["count"] == n, "%s %s/%s/%s: %s, want %d values" %
                  (name, q, t, ty, h and h["count"], n))
    # Cumulative: counts never go down from one snapshot to the next.
    prev = {}
    for m in metrics:
        cur = counters_of(m)
        for k, v in prev.items():
            check(cur.get(k, 0) >= v, "counter %s went down" % (k,))
        prev = cur

    spans = [s for f in frames if f["type"] == "spans" for s in f["spans"]]
    check(all(f["dropped_spans"] == 0 for f in frames if f["type"] == "spans"),
          "spans dropped")
    enq = {s["attributes"]["job.id"]: s for s in spans if s["name"] == "job.enqueue"}
    proc = {s["attributes"]["job.id"]: s for s in spans if s["name"] == "job.process"}
    check(len(enq) == len(jobs) and len(proc) == len(jobs),
          "want %d enqueue and process spans, got %d and %d" % (len(jobs), len(enq), len(proc)))
    span_ids = set()
    for j in jobs:
        e, p = enq[j["id"]], proc[j["id"]]
        tid = hex16(j["trace_hi"]) + hex16(j["trace_lo"])
        check(e["kind"] == 4 and e["trace_id"] == tid and e["span_id"] == hex16(j["span_id"]),
              "job %d enqueue span ids %s/%s, want %s/%s" %
              (j["id"], e["trace_id"], e["span_id"], tid, hex16(j["span_id"])))
        parent = hex16(j["parent_span_id"]) if j["parent_span_id"] else ""
        check(e["parent_span_id"] == parent and e["flags"] == j["trace_flags"],
              "job %d enqueue span parent %r flags %d, want %r and %d" %
              (j["id"], e["parent_span_id"], e["flags"], parent, j["trace_flags"]))
        check(p["kind"] == 5 and p["flags"] == j["trace_flags"],
              "process span kind %d flags %d" % (p["kind"], p["flags"]))
        check(p["links"] == [{"trace_id": tid, "span_id": hex16(j["span_id"])}],
              "job %d process span links %s" % (j["id"], p["links"]))
        check(p["trace_id"] != tid and p["span_id"] not in span_ids and
              p["span_id"] != "0" * 16, "process span ids not fresh: %s" % p)
        span_ids.add(p["span_id"])
        a = p["attributes"]
        check(a["tenant.id"] == j["tenant"] and a["job.type"] == j["type"] and
              a["job.status"] == j["status"] and a["job.attempt"] == 1 and
              a["messaging.system"] == "jobq" and a["messaging.operation.type"] == "process" and
              a["messaging.destination.name"] == "default" and
              a["job.wait_time_ms"] >= j["wait_ns"] / 1e6 - 1,
              "job %d attributes %s" % (j["id"], a))
        check(e["attributes"]["messaging.operation.type"] == "create", "enqueue op type")
        check(p["start_unix_ns"] <= p["end_unix_ns"], "process span ends before it starts")
        if j["status"] == "failed":
            check(p["status_error"] and p["status_message"] == "boom: handler failed" and
                  p["events"] == [{"name": "exception", "attributes":
                                   {"exception.message": "boom: handler failed"}}],
                  "failed job %d span: %s" % (j["id"], p))
        else:
            check(not p["status_error"] and p["events"] == [], "ok job %d has error" % j["id"])


def check_emitter_through_sidecar(emitter_args):
    """An agent attached by binary exports to a sidecar socket while the
    emitter runs emitter_args: every span and metric checked (check_frames)."""
    tmp = tempfile.mkdtemp(prefix="jobq-agent-test-")
    try:
        sock = os.path.join(tmp, "sidecar.sock")
        rd = Reader(sock)
        ag = Agent(["--bin", EMITTER, "--sidecar", sock, "--interval", "200"])
        ag.wait_attached()
        truth = run_emitter(emitter_args)
        time.sleep(0.5)
        rc, _, err = ag.stop()
        check(rc == 0, "agent exit %d: %s" % (rc, err))
        frames, _ = rd.stop()
        check_frames(frames, truth, "bin:" + os.path.realpath(EMITTER))
    finally:
        shutil.rmtree(tmp)


def test_spans_and_metrics_reach_sidecar():
    check_emitter_through_sidecar(GROUPS)


def test_version1_enqueue_site_still_makes_root_enqueue_spans():
    # A libjobq of probe contract version 1 (9-argument enqueue: no parent,
    # no flags): enqueue spans as before (root, sampled), nothing lost.
    check_emitter_through_sidecar(["--v1-enqueue"] + GROUPS[:1])


def test_version2_sites_without_digest_still_make_named_spans():
    # A libjobq of probe contract version 2 (enqueue and start without the
    # series digest): the programs read the names for the span records on
    # every job; spans and metrics as with a version-3 site.
    check_emitter_through_sidecar(["--v2-sites"] + GROUPS)


def test_sidecar_down_at_start_gets_everything_once_up():
    tmp = tempfile.mkdtemp(prefix="jobq-agent-test-")
    try:
        sock = os.path.join(tmp, "sidecar.sock")
        ag = Agent(["--bin", EMITTER, "--sidecar", sock, "--interval", "200"])
        ag.wait_attached()
        truth = run_emitter(GROUPS[:1])
        time.sleep(0.5)
        check(ag.p.poll() is None, "agent died without a sidecar")
        rd = Reader(sock)
        time.sleep(6)  # reconnect backoff is capped at 5 s
        rc, _, err = ag.stop()
        check(rc == 0, "agent exit %d: %s" % (rc, err))
        frames, _ = rd.stop()
        check_frames(frames, truth, "bin:" + os.path.realpath(EMITTER))
    finally:
        shutil.rmtree(tmp)


def test_sidecar_dying_with_unread_spans_counts_them_and_reconnects():
    # A sidecar stops reading (hung, or slow), spans pile up in the socket
    # buffer, then it is killed and restarted. The spans it never read are
    # gone with it: they must come back as dropped_spans (and the
    # spans_dropped loss), never vanish; the new sidecar gets a Hello and
    # everything after.
    tmp = tempfile.mkdtemp(prefix="jobq-agent-test-")
    try:
        sock = os.path.join(tmp, "sidecar.sock")
        rd1 = Reader(sock)
        ag = Agent(["--bin", EMITTER, "--sidecar", sock, "--interval", "200"])
        ag.wait_attached()
        a = run_emitter(["acme,email,0,20,0,5,0"])
        time.sleep(1.0)  # all of A read and printed
        rd1.p.send_signal(signal.SIGSTOP)
        b = subprocess.run([EMITTER, "--wait-attach-ms", "20000", "--first-id", "1001",
                            "globex,report,1,30,0,5,0"], capture_output=True, text=True,
                           timeout=60).stdout
        time.sleep(0.5)  # B's spans sit unread in the socket
        rd1.p.kill()
        rd1.p.wait()
        rd1.out.seek(0)
        frames1 = [json.loads(l) for l in rd1.out.read().splitlines()]
        rd1.out.close()
        rd2 = Reader(sock)
        time.sleep(1.0)  # reconnect
        c = subprocess.run([EMITTER, "--wait-attach-ms", "20000", "--first-id", "2001",
                            "initech,email,2,10,0,5,0"], capture_output=True, text=True,
                           timeout=60).stdout
        time.sleep(0.6)
        rc, _, err = ag.stop()
        check(rc == 0, "agent exit %d: %s" % (rc, err))
        frames2, _ = rd2.stop()

        jobs = {n: parse_truth(t)[0] for n, t in (("a", a), ("b", b), ("c", c))}
        want = 2 * sum(len(j) for j in jobs.values())
        got = [s for f in frames1 + frames2 if f["type"] == "spans" for s in f["spans"]]
        ids = {s["attributes"]["job.id"] for s in got}
        check(ids == {j["id"] for n in ("a", "c") for j in jobs[n]},
              "spans received for jobs %s" % sorted(ids))
        kinds = [f["type"] for f in frames2]
        check(kinds[:2] == ["connect", "hello"], "restarted sidecar got %s first" % kinds[:3])
        dropped = [f["dropped_spans"] for f in frames2 if f["type"] == "spans"]
        check(dropped and dropped[-1] == want - len(got),
              "%d of %d spans received, dropped_spans %s: lost silently" %
              (len(got), want, dropped[-1:]))
        metrics = [f for f in frames2 if f["type"] == "metrics"]
        check(metrics[-1]["losses"].get("spans_dropped") == want - len(got),
              "spans_dropped loss %s, want %d" % (metrics[-1]["losses"].get("spans_dropped"),
                                                  want - len(got)))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main([test_spans_and_metrics_reach_sidecar,
          test_version1_enqueue_site_still_makes_root_enqueue_spans,
        test_version2_sites_without_digest_still_make_named_spans,
          test_sidecar_down_at_start_gets_everything_once_up,
          test_sidecar_dying_with_unread_spans_counts_them_and_reconnects])
