"""metrics.py - pure functions of bench/compare: job-log parsing, wait
percentiles, Jain's fairness index over backlogged tenants, the markdown
report, the gnuplot wait-distribution plots and the smoke sanity check.

A job log line is "tenant enq_ns start_ns end_ns" (unix ns, see
jobq_driver.c); wait = start - enq, worker time = end - start.
"""
import bisect
import math
import os
import shutil
import statistics
import subprocess


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def read_log(path):
    jobs = []
    with open(path) as f:
        for line in f:
            t, e, s, d = line.split()
            jobs.append((t, int(e), int(s), int(d)))
    return jobs


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    v = sorted(values)
    return v[max(0, math.ceil(q / 100.0 * len(v)) - 1)]


def p99_wait_ms(jobs, tenant):
    w = [(s - e) / 1e6 for t, e, s, _ in jobs if t == tenant]
    return percentile(w, 99) if w else 0.0


def throughput(jobs):
    """Jobs per second from the first enqueue to the last finish."""
    t0 = min(e for _, e, _, _ in jobs)
    t1 = max(d for _, _, _, d in jobs)
    return len(jobs) / ((t1 - t0) / 1e9)


def jain(xs):
    s, q = sum(xs), sum(x * x for x in xs)
    return s * s / (len(xs) * q) if q > 0 else 1.0


def _merged_waits(jobs):
    """Per tenant, the merged intervals during which it had a job waiting."""
    by = {}
    for t, e, s, _ in sorted(jobs, key=lambda j: j[1]):
        iv = by.setdefault(t, [])
        if iv and e <= iv[-1][1]:
            iv[-1][1] = max(iv[-1][1], s)
        else:
            iv.append([e, s])
    return by


def _covers(iv, starts, a, b):
    i = bisect.bisect_right(starts, a) - 1
    return i >= 0 and iv[i][1] >= b


def jain_backlogged(jobs, window_ms):
    """Mean Jain's index of the worker time received, per window, by the
    tenants backlogged (a job waiting) for the whole window, over the
    windows where at least two tenants were. Returns (index or None, the
    fraction of busy windows that qualified)."""
    w = int(window_ms * 1e6)
    t0 = min(s for _, _, s, _ in jobs)
    t1 = max(d for _, _, _, d in jobs)
    nwin = max(1, (t1 - t0) // w)
    work = [dict() for _ in range(nwin)]
    for t, _, s, d in jobs:
        for k in range(max(0, (s - t0) // w), min(nwin, (d - t0) // w + 1)):
            a, b = t0 + k * w, t0 + (k + 1) * w
            ov = min(b, d) - max(a, s)
            if ov > 0:
                work[k][t] = work[k].get(t, 0) + ov
    waits = _merged_waits(jobs)
    starts = {t: [x[0] for x in iv] for t, iv in waits.items()}
    idx, busy = [], 0
    for k in range(nwin):
        if not work[k]:
            continue
        busy += 1
        a, b = t0 + k * w, t0 + (k + 1) * w
        back = [t for t, iv in waits.items() if _covers(iv, starts[t], a, b)]
        if len(back) >= 2:
            idx.append(jain([work[k].get(t, 0) for t in back]))
    return (statistics.mean(idx) if idx else None), (len(idx) / busy if busy else 0.0)


def write_wait_cdfs(jobs, stem):
    """stem.dat: per tenant (gnuplot index blocks) the wait CDF; stem.gp:
    the script that plots it to stem.png."""
    tenants = sorted({t for t, _, _, _ in jobs}, key=lambda t: (t == "flood", t))
    with open(stem + ".dat", "w") as f:
        for t in tenants:
            w = sorted((s - e) / 1e6 for tt, e, s, _ in jobs if tt == t)
            f.write("# %s\n" % t)
            for i, v in enumerate(w):
                f.write("%.3f %.5f\n" % (max(v, 0.01), (i + 1) / len(w)))
            f.write("\n\n")
    name = os.path.basename(stem)[len("waits-"):]
    with open(stem + ".gp", "w") as f:
        f.write('set terminal pngcairo size 900,560 noenhanced\nset output "%s.png"\n' % stem)
        f.write('set title "%s: wait time per tenant under the flood"\n' % name)
        f.write('set logscale x\nset xlabel "wait (ms, log)"\nset ylabel "fraction of jobs"\n')
        f.write('set key bottom right\nset grid\n')
        f.write("plot " + ", \\\n  ".join(
            '"%s.dat" index %d with lines lw %d title "%s"'
            % (stem, i, 3 if t == "flood" else 1, t) for i, t in enumerate(tenants)) + "\n")


def plot(outdir, log):
    gp = shutil.which("gnuplot")
    scripts = sorted(f for f in os.listdir(outdir) if f.startswith("waits-") and f.endswith(".gp"))
    if not gp:
        if scripts:
            log("gnuplot not installed: no PNG plots (scripts left in %s)" % outdir)
        return
    for s in scripts:
        r = subprocess.run([gp, os.path.join(outdir, s)], capture_output=True, text=True)
        if r.returncode != 0:
            log("gnuplot %s: %s" % (s, r.stderr.strip()))


# ---- report ---------------------------------------------------------------

def _med(rows, k):
    v = [r[k] for r in rows if r[k] is not None]
    return statistics.median(v) if v else None


def cell(rows, k, fmt="%.0f"):
    v = [r[k] for r in rows if r[k] is not None]
    if not v:
        return "n/a"
    if len(v) == 1:
        return fmt % v[0]
    return (fmt + " [" + fmt + "–" + fmt + "]") % (statistics.median(v), min(v), max(v))


def report(cfg, res):
    out = ["# bench-compare results", "",
           "size `%s`, %d run(s) per figure (median [min–max]), worker concurrency %d for "
           "every system, one local redis-server." % (cfg.size, cfg.runs, cfg.concurrency), ""]
    for name, why in sorted(res["absent"].items()):
        out.append("- **%s: not installed** (%s); no figures for it." % (name, why))
    for name, note in res["notes"].items():
        out.append("- %s: %s" % (name, note))
    out.append("")
    if "throughput" in res:
        t = res["throughput"]
        out += ["## 1. Throughput: %d no-op jobs enqueued, then drained" % cfg.jobs, "",
                "| system | enqueue jobs/s | processing jobs/s | worker CPU µs/job | "
                "Redis CPU µs/job | jobq ÷ system (processing) | jobq-b128 ÷ system |",
                "|---|---|---|---|---|---|---|"]

        def ratio(of, name, rows):
            mine = _med(t.get(of, []), "proc")
            return "%.2f×" % (mine / _med(rows, "proc")) if mine and name != of else "—"

        for name, rows in t.items():
            out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                name, cell(rows, "enq"), cell(rows, "proc"), cell(rows, "cpu_us", "%.1f"),
                cell(rows, "redis_us", "%.1f"), ratio("jobq", name, rows),
                ratio("jobq-b128", name, rows)))
        out.append("")
    if "noisy" in res:
        out += ["## 2. Noisy neighbour: flood of %d × %d ms jobs at t=0, ten small tenants at "
                "%g jobs/s each for %g s" % (100 * int(cfg.noisy_rate * cfg.noisy_secs),
                                            cfg.work_ms, cfg.noisy_rate, cfg.noisy_secs), "",
                "| system (layout) | small tenants' p99 wait, flood (ms) | without flood (ms) | "
                "isolation ratio | Jain's index, ≥2 backlogged | windows counted | "
                "throughput jobs/s |",
                "|---|---|---|---|---|---|---|"]
        for name, rows in res["noisy"].items():
            out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                name, cell(rows, "p99_flood", "%.1f"), cell(rows, "p99_base", "%.1f"),
                cell(rows, "isolation", "%.1f"), cell(rows, "jain", "%.3f"),
                cell(rows, "jain_frac", "%.2f"), cell(rows, "tput")))
        out += ["", "p99 wait: the worst small tenant's 99th percentile of start − enqueue. "
                "Isolation ratio: that p99 with the flood ÷ without it. Jain's index: worker "
                "time per %d ms window among tenants that had a job waiting for the whole "
                "window, averaged over windows with ≥ 2 such tenants (1 = equal shares; n/a = "
                "never two tenants backlogged at once); 'windows counted' is the fraction of "
                "busy windows that qualified. Plots: `waits-<system>-<layout>.png`." % cfg.window_ms,
                ""]
    if "overhead" in res:
        o = res["overhead"]
        out += ["## 3. Observability overhead: CPU per no-op job (%d jobs)" % cfg.overhead_jobs, "",
                "| configuration | CPU µs/job (worker + agent + sidecar) | of which agent + "
                "sidecar | processing jobs/s |", "|---|---|---|---|"]
        for name, rows in o.items():
            out.append("| %s | %s | %s | %s |" % (name, cell(rows, "cpu_us", "%.1f"),
                                                  cell(rows, "extra_us", "%.1f"), cell(rows, "proc")))
        keys = list(o)
        if len(keys) == 4:
            a = _med(o[keys[1]], "cpu_us") - _med(o[keys[0]], "cpu_us")
            s = _med(o[keys[3]], "cpu_us") - _med(o[keys[2]], "cpu_us")
            out += ["", "Added CPU per job: jobq-agent + sidecar **%.1f µs**, OpenTelemetry JS "
                    "SDK **%.1f µs**; ratio agent ÷ SDK = **%s**." % (
                        a, s, "%.2f" % (a / s) if s > 0 else "n/a")]
        out.append("")
    elif "overhead_skipped" in res:
        out += ["## 3. Observability overhead", "", "skipped: " + res["overhead_skipped"], ""]
    if "scaling" in res:
        sc = res["scaling"]
        base = _med(sc[min(sc)], "redis_us") + _med(sc[min(sc)], "cpu_us")
        out += ["## 4. Scaling: jobq dispatch cost as active tenants grow", "",
                "| active tenants | jobs | worker CPU µs/job | Redis CPU µs/job | "
                "processing jobs/s | (worker+Redis) ÷ at %d tenants |" % min(sc),
                "|---|---|---|---|---|---|"]
        for nt, rows in sc.items():
            tot = _med(rows, "redis_us") + _med(rows, "cpu_us")
            out.append("| %d | %d | %s | %s | %s | %.2f |" % (
                nt, rows[0]["jobs"], cell(rows, "cpu_us", "%.1f"), cell(rows, "redis_us", "%.1f"),
                cell(rows, "proc"), tot / base))
        out.append("")
    return "\n".join(out) + "\n"


def check(res):
    """Sanity of a smoke run: every scenario ran, every figure is finite and
    positive. Never a bound on time."""
    bad = []

    def pos(where, v):
        if v is None or not (v > 0) or math.isinf(v):
            bad.append("%s = %r, expected a positive finite figure" % (where, v))

    for name, rows in res.get("throughput", {}).items():
        for r in rows:
            for k in ("enq", "proc", "cpu_us", "redis_us"):
                pos("throughput %s %s" % (name, k), r[k])
    for name, rows in res.get("noisy", {}).items():
        for r in rows:
            pos("noisy %s p99_flood" % name, r["p99_flood"])
            pos("noisy %s p99_base" % name, r["p99_base"])
            pos("noisy %s throughput" % name, r["tput"])
            if r["jain"] is not None and not 0 < r["jain"] <= 1.0 + 1e-9:
                bad.append("noisy %s Jain %r outside (0, 1]" % (name, r["jain"]))
    for name, rows in res.get("overhead", {}).items():
        for r in rows:
            pos("overhead %s cpu" % name, r["cpu_us"])
    for nt, rows in res.get("scaling", {}).items():
        for r in rows:
            pos("scaling %d cpu" % nt, r["cpu_us"])
    for s in ("throughput", "noisy", "scaling"):
        if not res.get(s):
            bad.append("scenario %s produced no figures" % s)
    return bad
