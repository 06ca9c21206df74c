#!/usr/bin/env python3
"""The demo's closing report: answers the seed's questions per tenant from
the workers' job logs (the truth) and summarises what the sidecar exported.

Job log lines (jobq worker --job-log, one per handler run): whitespace-separated
  id tenant type priority enqueued_ns start_ns end_ns ok|fail attempt
"""
import argparse
import json
import os
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
    spans, links = {}, []
    enqueue_ids = set()  # (traceId, spanId) of every job.enqueue span
    flagged = set()  # tenants in the sidecar's "Queue starvation detected" events
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
                        if m["name"] not in LATEST_METRICS:
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
                        for ev in s.get("events", []):
                            if ev.get("name") == "Queue starvation detected":
                                tl = attrs(ev).get("affected_tenants", "")
                                flagged.update(t for t in tl.split(",") if t)
                        if s["name"] == "job.enqueue":
                            enqueue_ids.add((s.get("traceId"), s.get("spanId")))
                        elif s["name"] == "job.process":
                            links.append([(l.get("traceId"), l.get("spanId"))
                                          for l in s.get("links", [])])
    # A link counts only when the span it points to was exported too.
    linked = sum(1 for ls in links if any(l in enqueue_ids for l in ls))
    unlinked = len(links) - linked
    processed, waits, scale, losses = {}, {}, None, {}
    for (name, _, _), (_, dp) in latest.items():
        t = attrs(dp).get("tenant.id")
        if name in ("jobq.agent.lost", "jobq.sidecar.dropped.spans",
                    "jobq.sidecar.dropped.points"):
            n = int(dp.get("asInt", 0))
            if n:
                k = "%s{reason=%s}" % (name, attrs(dp).get("reason"))
                losses[k] = losses.get(k, 0) + n
            continue
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
    return {"flagged": sorted(flagged), "spans": spans, "linked": linked, "unlinked": unlinked, "processed": processed,
            "waits": waits, "scale": scale, "losses": losses}


LATEST_METRICS = ("jobs.processed", "jobs.wait_time", "jobq.agent.lost",
                  "jobq.sidecar.dropped.spans", "jobq.sidecar.dropped.points")


def read_enqueued(path, flood_tenant, flood):
    """Jobs enqueued per tenant: the load generator's summary plus the flood."""
    out = {}
    if path:
        try:
            with open(path) as f:
                out = {t: int(n) for t, n in json.load(f).items()}
        except (OSError, ValueError):
            pass
    if flood_tenant and flood:
        out[flood_tenant] = out.get(flood_tenant, 0) + flood
    return out


def read_left(path):
    """{tenant: (jobs never run, oldest one's wait in s)} from the queue's
    stats taken after the workers stopped: jobs still ready or delayed."""
    if not path or not os.path.exists(path):
        return {}
    with open(path) as f:
        stats = json.load(f)
    left = {}
    for t in stats:
        n = sum(t["depth"].values()) + t["delayed"] + t["in_flight"]
        if n:
            left[t["tenant_id"]] = (n, t.get("oldest_age_seconds") or 0.0)
    return left


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
    ap.add_argument("--enqueued", help="load generator summary: {tenant: jobs enqueued}")
    ap.add_argument("--flood-tenant")
    ap.add_argument("--flood", type=int, default=0, help="jobs the flood tenant enqueued")
    ap.add_argument("--final-stats", help="`jobq stats --json` once the workers had stopped")
    a = ap.parse_args()
    left = read_left(a.final_stats)
    enqueued = read_enqueued(a.enqueued, a.flood_tenant, a.flood)
    jobs = read_jobs(a.job_logs)
    otlp = otlp_summary(a.otlp) if a.otlp else None
    if not jobs:
        print("report: no finished jobs in the job logs", file=sys.stderr)
        return 1
    by_t = {}
    for j in jobs:
        by_t.setdefault(j["tenant"], []).append(j)

    print()
    print("Per-tenant report: job logs (the truth)" +
          (" beside what the eBPF agent exported" if otlp else ""))
    print("(wait = enqueue to start of each run, so a retry's backoff counts)")
    hdr = "%-11s %6s %6s %6s %9s %9s %9s" % (
        "tenant", "runs", "ok", "failed", "avg wait", "p99 wait", "max wait")
    if otlp:
        hdr += " | %9s %10s" % ("OTLP runs", "OTLP p99")
    print(hdr)
    print("-" * len(hdr))
    rows = sorted(by_t.items(), key=lambda kv: -len(kv[1]))
    for t, js in rows:
        waits = sorted((j["start"] - j["enq"]) / 1e6 for j in js)
        ok = sum(1 for j in js if j["status"] == "ok")
        o_runs, o_p99 = "-", "-"
        if otlp:
            if t in otlp["processed"]:
                o_runs = str(otlp["processed"][t])
            if t in otlp["waits"]:
                o_p99 = "<=%.1fms" % exp_quantile(otlp["waits"][t], otlp["scale"], 0.99)
        row = "%-11s %6d %6d %6d %7.1fms %7.1fms %7.1fms" % (
            t, len(js), ok, len(js) - ok, sum(waits) / len(waits), pct(waits, 0.99), waits[-1])
        if otlp:
            row += " | %9s %10s" % (o_runs, o_p99)
        print(row)

    if left:
        print("Not run when the demo ended (left in its queue, deleted with it; their waits "
              "are not in the table): " +
              ", ".join("%s %d jobs, the oldest waiting %.1f s" % (t, n, age)
                        for t, (n, age) in sorted(left.items(), key=lambda kv: -kv[1][0])))
    elif a.final_stats:
        print("Not run when the demo ended: none (every enqueued job ran)")

    print()
    if enqueued:
        # Tenants with equal counts are one group ("10 tenants 90 each"),
        # never some of them named and the rest summed up.
        groups = {}
        for t, n in enqueued.items():
            groups.setdefault(n, []).append(t)
        parts, shown, rest = [], 0, []
        for n in sorted(groups, reverse=True):
            names = sorted(groups[n])
            if shown >= 3:
                rest += [n] * len(names)
            elif len(names) <= 3 - shown:
                parts += ["%s (%d enqueued)" % (t, n) for t in names]
            else:
                parts.append("%d tenants %d each" % (len(names), n))
            shown += len(names)
        if rest:
            parts.append("the other %d tenants %s each" % (
                len(rest), "-".join(str(n) for n in sorted({min(rest), max(rest)}))))
        print("Which tenants generate the most jobs? " + "; ".join(parts))
    else:
        print("Which tenants generate the most jobs? (handler runs) " +
              ", ".join("%s (%d)" % (t, len(js)) for t, js in rows[:3]))
    flood_t = a.flood_tenant if a.flood_tenant in by_t else rows[0][0]
    small = [t for t in by_t if t != flood_t]

    def first_waits(tenants, prio=None):
        """Waits of first runs (a retry's wait includes its backoff)."""
        return sorted((j["start"] - j["enq"]) / 1e6 for t in tenants for j in by_t[t]
                      if j["attempt"] == 1 and (prio is None or j["priority"] == prio))

    flood_low = first_waits([flood_t], "low")
    if small:
        sw = first_waits(small)
        bw = flood_low or first_waits([flood_t])
        print("Is the flood starving the small tenants? First runs' wait: small tenants "
              "avg %.1f ms, p99 %.1f ms; %s's export avg %.1f ms, p99 %.1f ms" %
              (sum(sw) / len(sw), pct(sw, 0.99), flood_t, sum(bw) / len(bw), pct(bw, 0.99)))
    print("Are high-priority jobs processed first? (first runs' wait)")
    flood_high = first_waits([flood_t], "high")
    if flood_high and flood_low:
        verdict = ("yes" if pct(flood_high, 0.99) < pct(flood_low, 0.5) else
                   "NO: high-priority jobs waited as long as the backlog")
        print("    %s: %s - its %d high-priority jobs waited p50 %.1f ms, p99 %.1f ms behind "
              "its own backlog of low-priority exports (those waited p50 %.1f ms, p99 %.1f ms)"
              % (flood_t, verdict, len(flood_high), pct(flood_high, 0.5), pct(flood_high, 0.99),
                 pct(flood_low, 0.5), pct(flood_low, 0.99)))
    for p in ("high", "normal", "low"):
        w = first_waits(small, p)
        if w:
            print("    small tenants, %-6s p50 %6.1f ms, p99 %6.1f ms over %d jobs" %
                  (p, pct(w, 0.5), pct(w, 0.99), len(w)))
    if small:
        print("    (the small tenants have no backlog of their own: fair scheduling serves each "
              "as it arrives, so there is little for priority to reorder)")
    # A tenant whose oldest job waited past the threshold is flagged (as the
    # seed's check does); it is starved by others only if it also got less
    # than an equal share of worker time while it waited. A flooder waiting
    # behind its own backlog gets its share and more.
    busy = {t: sum(j["end"] - j["start"] for j in js) for t, js in by_t.items()}
    total_busy = sum(busy.values()) or 1
    fair = 1.0 / len(by_t)
    def oldest_wait_s(t):
        """The longest wait of a run, or of a job still waiting at the end."""
        ran = max(j["start"] - j["enq"] for j in by_t[t]) / 1e9
        return max(ran, left.get(t, (0, 0.0))[1])

    over = sorted(t for t in by_t if oldest_wait_s(t) > a.starvation_s)
    if otlp:
        over = sorted(set(over) | set(otlp["flagged"]))
        who = "the sidecar's starvation check flagged"
    else:
        who = "flagged by the job logs"
    starved = [t for t in over if t in by_t and busy[t] / total_busy < fair]
    print("Did any tenant starve? Tenants whose oldest job waited > %gs (the starvation threshold; %s): %s"
          % (a.starvation_s, who, ", ".join(over) or "none"))
    for t in (t for t in over if t in by_t):
        share = busy[t] / total_busy
        verdict = ("STARVED by other tenants" if t in starved else
                   "not starved: it waits behind its own backlog")
        print("    %s: oldest wait %.1f s, %.0f%% of worker time (an equal share is %.0f%%): %s"
              % (t, oldest_wait_s(t), 100 * share,
                 100 * fair, verdict))
    print("    starved by other tenants (flagged and less than an equal share of worker "
          "time): %s" % (", ".join(starved) if starved else "none"))

    if a.otlp:
        print()
        if otlp is None:
            print("OTLP: no file at %s (was the agent attached?)" % a.otlp)
        else:
            print("Spans exported: " +
                  (", ".join("%s %d" % kv for kv in sorted(otlp["spans"].items())) or "none"))
            print("job.process spans linked to an exported job.enqueue span: %d of %d"
                  % (otlp["linked"], otlp["linked"] + otlp["unlinked"]))
            print("Losses on the way (agent and sidecar counters): " +
                  (", ".join("%s %d" % kv for kv in sorted(otlp["losses"].items()))
                   if otlp["losses"] else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
