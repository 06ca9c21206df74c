#!/usr/bin/env python3
"""The demo's closing report: answers the seed's questions per tenant from
the workers' job logs (the truth) and summarises what the sidecar exported.

Job log lines (jobq worker --job-log, one per handler run): whitespace-separated
  id tenant type priority enqueued_ns start_ns end_ns ok|fail attempt
"""
import argparse
import json
import sys


def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(round(q * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def read_jobs(paths):
    jobs = []
    for p in paths:
        try:
            with open(p) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) < 9 or not parts[0].isdigit():
                        continue
                    jobs.append({
                        "id": int(parts[0]), "tenant": parts[1], "type": parts[2],
                        "priority": parts[3], "enq": int(parts[4]),
                        "start": int(parts[5]), "end": int(parts[6]),
                        "status": parts[7], "attempt": int(parts[8]),
                    })
        except FileNotFoundError:
            pass
    return jobs


def attrs(dp):
    return {a["key"]: next(iter(a["value"].values())) for a in dp.get("attributes", [])}


def otlp_summary(path):
    """What the sidecar wrote: spans by name, process spans with a link, and
    the latest cumulative point of every series (an agent's series may stop
    before the file ends): per tenant jobs.processed and the merged
    jobs.wait_time exponential histogram (index -> count, scale)."""
    spans, linked = {}, 0
    latest = {}  # (metric, instance, attrs) -> (time, datapoint)
    try:
        f = open(path)
    except OSError:
        return None
    with f:
        for line in f:
            try:
                req = json.loads(line)
            except ValueError:
                continue
            for rm in req.get("resourceMetrics", []):
                inst = attrs(rm.get("resource", {})).get("service.instance.id")
                for sm in rm.get("scopeMetrics", []):
                    for m in sm.get("metrics", []):
                        if m["name"] not in ("jobs.processed", "jobs.wait_time"):
                            continue
                        body = m.get("sum") or m.get("exponentialHistogram") or {}
                        for dp in body.get("dataPoints", []):
                            k = (m["name"], inst, tuple(sorted(attrs(dp).items())))
                            t = int(dp.get("timeUnixNano", 0))
                            if k not in latest or latest[k][0] <= t:
                                latest[k] = (t, dp)
            for rs in req.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        spans[s["name"]] = spans.get(s["name"], 0) + 1
                        if s["name"] == "job.process" and s.get("links"):
                            linked += 1
    processed, waits, scale = {}, {}, None
    for (name, _, _), (_, dp) in latest.items():
        t = attrs(dp).get("tenant.id")
        if name == "jobs.processed":
            processed[t] = processed.get(t, 0) + int(dp.get("asInt", 0))
            continue
        if "scale" not in dp:
            continue
        scale = dp["scale"]
        h = waits.setdefault(t, {"zero": 0, "b": {}})
        h["zero"] += int(dp.get("zeroCount", 0))
        pos = dp.get("positive", {})
        off = pos.get("offset", 0)
        for i, c in enumerate(pos.get("bucketCounts", [])):
            h["b"][off + i] = h["b"].get(off + i, 0) + int(c)
    return spans, linked, processed, waits, scale


def exp_quantile(h, scale, q):
    """Upper bound of the bucket holding quantile q (what a backend shows)."""
    total = h["zero"] + sum(h["b"].values())
    if total == 0:
        return float("nan")
    rank, acc = q * total, h["zero"]
    if acc >= rank:
        return 0.0
    for i in sorted(h["b"]):
        acc += h["b"][i]
        if acc >= rank:
            return 2.0 ** ((i + 1) / 2.0 ** scale)
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--job-logs", nargs="*", default=[])
    ap.add_argument("--otlp")
    ap.add_argument("--starvation-s", type=float, default=300)
    a = ap.parse_args()
    jobs = read_jobs(a.job_logs)
    otlp = otlp_summary(a.otlp) if a.otlp else None
    if not jobs:
        print("report: no finished jobs in the job logs", file=sys.stderr)
        return 1
    by_t = {}
    for j in jobs:
        by_t.setdefault(j["tenant"], []).append(j)

    print()
    print("Per-tenant report: job logs (the truth) beside what the eBPF agent exported")
    print("(wait = enqueue to start of each run, so a retry's backoff counts, as in the seed)")
    hdr = "%-11s %6s %6s %6s %9s %9s %9s | %9s %10s" % (
        "tenant", "runs", "ok", "failed", "avg wait", "p99 wait", "max wait",
        "OTLP runs", "OTLP p99")
    print(hdr)
    print("-" * len(hdr))
    rows = sorted(by_t.items(), key=lambda kv: -len(kv[1]))
    for t, js in rows:
        waits = sorted((j["start"] - j["enq"]) / 1e6 for j in js)
        ok = sum(1 for j in js if j["status"] == "ok")
        o_runs, o_p99 = "-", "-"
        if otlp:
            _, _, processed, owaits, scale = otlp
            if t in processed:
                o_runs = str(processed[t])
            if t in owaits:
                o_p99 = "<=%.1fms" % exp_quantile(owaits[t], scale, 0.99)
        print("%-11s %6d %6d %6d %7.1fms %7.1fms %7.1fms | %9s %10s" % (
            t, len(js), ok, len(js) - ok, sum(waits) / len(waits),
            pct(waits, 0.99), waits[-1], o_runs, o_p99))

    print()
    print("Which tenants generate the most jobs? " +
          ", ".join("%s (%d)" % (t, len(js)) for t, js in rows[:3]))
    small = [t for t, _ in rows[1:]] if len(rows) > 1 else []
    if small:
        sw = sorted((j["start"] - j["enq"]) / 1e6 for t in small for j in by_t[t]
                    if j["attempt"] == 1)
        bw = sorted((j["start"] - j["enq"]) / 1e6 for j in by_t[rows[0][0]] if j["attempt"] == 1)
        print("Is the flood starving the small tenants? First runs' wait: small tenants "
              "avg %.1f ms, p99 %.1f ms; %s avg %.1f ms, p99 %.1f ms" %
              (sum(sw) / len(sw), pct(sw, 0.99), rows[0][0], sum(bw) / len(bw), pct(bw, 0.99)))
    print("Are high-priority jobs processed first? average wait by priority:")
    for p in ("high", "normal", "low"):
        w = [(j["start"] - j["enq"]) / 1e6 for j in jobs
             if j["priority"] == p and j["tenant"] in small]
        if w:
            print("    %-6s %8.1f ms over %d jobs (small tenants)" % (p, sum(w) / len(w), len(w)))
    starving = [t for t, js in by_t.items()
                if max(j["start"] - j["enq"] for j in js) / 1e9 > a.starvation_s]
    print("Did any tenant starve (a job waited > %gs)? %s" % (
        a.starvation_s, ", ".join(starving) if starving else "no"))

    if a.otlp:
        print()
        if otlp is None:
            print("OTLP: no file at %s (was the agent attached?)" % a.otlp)
        else:
            spans, linked = otlp[0], otlp[1]
            print("Spans exported: " +
                  (", ".join("%s %d" % kv for kv in sorted(spans.items())) or "none") +
                  "; job.process spans linked to their job.enqueue: %d" % linked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
