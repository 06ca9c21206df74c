#!/usr/bin/env python3
"""The demo's closing report: answers the seed's questions per tenant from
the workers' job logs (the truth) and summarises what the sidecar exported.

Job log lines (jobq worker --job-log): whitespace-separated
  id tenant type priority enqueued_ns start_ns end_ns status attempt
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


def otlp_summary(path):
    """Counts what the sidecar wrote: metric points by name, spans by name,
    and process spans that carry a link."""
    points, spans, linked = {}, {}, 0
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
                for sm in rm.get("scopeMetrics", []):
                    for m in sm.get("metrics", []):
                        points[m["name"]] = points.get(m["name"], 0) + 1
            for rs in req.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        spans[s["name"]] = spans.get(s["name"], 0) + 1
                        if s["name"] == "job.process" and s.get("links"):
                            linked += 1
    return points, spans, linked


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--job-logs", nargs="*", default=[])
    ap.add_argument("--otlp")
    ap.add_argument("--starvation-s", type=float, default=300)
    a = ap.parse_args()
    jobs = read_jobs(a.job_logs)
    if not jobs:
        print("report: no finished jobs in the job logs", file=sys.stderr)
        return 1
    by_t = {}
    for j in jobs:
        by_t.setdefault(j["tenant"], []).append(j)

    print()
    print("Per-tenant report (from the workers' job logs)")
    hdr = "%-11s %7s %7s %6s %10s %10s %10s" % ("tenant", "jobs", "ok", "failed",
                                                 "avg wait", "p99 wait", "max wait")
    print(hdr)
    print("-" * len(hdr))
    rows = sorted(by_t.items(), key=lambda kv: -len(kv[1]))
    for t, js in rows:
        waits = sorted((j["start"] - j["enq"]) / 1e6 for j in js)
        ok = sum(1 for j in js if j["status"] == "success")
        print("%-11s %7d %7d %6d %8.1fms %8.1fms %8.1fms" % (
            t, len(js), ok, len(js) - ok, sum(waits) / len(waits),
            pct(waits, 0.99), waits[-1]))

    print()
    print("Which tenants generate the most jobs? " +
          ", ".join("%s (%d)" % (t, len(js)) for t, js in rows[:3]))
    small = [t for t, _ in rows[1:]] if len(rows) > 1 else []
    if small:
        sw = sorted((j["start"] - j["enq"]) / 1e6 for t in small for j in by_t[t])
        print("Small tenants' wait while the flood ran: avg %.1f ms, p99 %.1f ms" %
              (sum(sw) / len(sw), pct(sw, 0.99)))
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
        s = otlp_summary(a.otlp)
        print()
        if s is None:
            print("OTLP: no file at %s (was the agent attached?)" % a.otlp)
        else:
            points, spans, linked = s
            print("OTLP exported (%s):" % a.otlp)
            print("    metric data series written: " +
                  (", ".join("%s x%d" % kv for kv in sorted(points.items())) or "none"))
            print("    spans: " + (", ".join("%s %d" % kv for kv in sorted(spans.items())) or "none") +
                  "; job.process spans linked to their enqueue: %d" % linked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
