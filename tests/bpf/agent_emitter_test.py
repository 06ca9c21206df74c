#!/usr/bin/env python3
"""agent_emitter_test - jobq-agent against a real process firing the jobq
probes with known values (tests/bpf/probe_emitter.c), as root.

Each test names the behaviour it proves. Counts must equal the truth
exactly; histogram quantiles must be within one bucket of the exact
quantiles of the truth; no time is asserted absolutely.
"""
import bisect
import json
import os
import shutil
import signal
import subprocess
import time

from agentlib import (BOUNDS, EMITTER, INDEX_MIN, LIB_EMITTER, LIBJOBQ, NBUCKETS, OTHER, Agent,
                      Skipped, check, check_quantiles, counter_map, main, links_left, parse_truth,
                      run_agent_once, truth_counters)

GROUPS = [
    "acme,email,0,40,3000,50,4",     # 40 jobs, 3 ms handler, waited 50 ms, every 4th fails
    "acme,report,1,10,20000,1000,0",  # 10 jobs, 20 ms handler, waited 1 s
    "globex,email,2,25,0,5,5",        # 25 jobs, no sleep, waited 5 ms
]


def emitter(args, prog=EMITTER):
    return subprocess.Popen([prog, "--wait-attach-ms", "20000"] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(em, timeout=60):
    out, err = em.communicate(timeout=timeout)
    check(em.returncode == 0, "emitter exit %d: %s" % (em.returncode, err))
    return out


def check_snapshot(snap, truth_text):
    jobs, other = parse_truth(truth_text)
    got, want = counter_map(snap), truth_counters(jobs, other)
    check(got == want, "counters differ:\n want %s\n got  %s" % (sorted(want.items()),
                                                                 sorted(got.items())))
    for reason, n in snap["losses"].items():
        check(n == 0, "loss %s = %d, expected none" % (reason, n))

    hists = {(h["name"], h.get("queue"), h["tenant"], h["job_type"]): h
             for h in snap["histograms"]}
    series = sorted({(j["queue"], j["tenant"], j["type"]) for j in jobs})
    check(len(hists) == 2 * len(series), "want wait+duration for %s, got %s" %
          (series, sorted(hists)))
    for queue, tenant, typ in series:
        mine = [j for j in jobs if (j["queue"], j["tenant"], j["type"]) == (queue, tenant, typ)]
        what = "%s/%s/%s" % (queue, tenant, typ)
        for name, lows, highs in (
                ("jobs.wait_time", [j["wait_ns"] for j in mine], [j["wait_hi"] for j in mine]),
                ("jobs.duration", [j["dur_lo"] for j in mine], [j["dur_hi"] for j in mine])):
            h = hists.get((name, queue, tenant, typ))
            check(h is not None, "no %s histogram for %s: %s" % (name, what, sorted(hists)))
            check(h["count"] == len(mine), "%s %s count %d, want %d" %
                  (name, what, h["count"], len(mine)))
            check(h["zero_count"] + sum(h["bucket_counts"]) == h["count"],
                  "%s buckets do not add up to count" % name)
            check(h["min_ms"] <= h["max_ms"] and h["min_ms"] * len(mine) <= h["sum_ms"] + 1e-6
                  and h["sum_ms"] <= h["max_ms"] * len(mine) + 1e-6,
                  "%s min/sum/max inconsistent: %s" % (name, h))
            check_quantiles(h, lows, highs, "%s %s" % (name, what))
        # Durations: every job's kernel value lies in the bracket the
        # emitter measured around the probes (checked on min and max).
        d = hists[("jobs.duration", queue, tenant, typ)]
        lo = min(j["dur_lo"] for j in mine) / 1e6
        hi = max(j["dur_hi"] for j in mine) / 1e6
        check(d["min_ms"] >= lo - 1e-6 and d["max_ms"] <= hi + 1e-6,
              "duration min/max %.6f/%.6f outside the measured bracket [%.6f, %.6f]" %
              (d["min_ms"], d["max_ms"], lo, hi))
        # Waits: at least the producer-side wait, never absurdly more.
        w = hists[("jobs.wait_time", queue, tenant, typ)]
        wmin = min(j["wait_ns"] for j in mine) / 1e6
        check(w["min_ms"] >= wmin - 1.0, "wait min %.3f ms below truth %.3f ms" %
              (w["min_ms"], wmin))

    depths = {(d["queue"], d["tenant"]): d for d in snap["depths"]}
    last = {(f[1], f[2]): f for f in other if f[0] == "depth"}  # the last report wins
    for f in last.values():
        d = depths.get((f[1], f[2]))
        check(d is not None, "no depth report for %s/%s" % (f[1], f[2]))
        got = [d["depth_high"], d["depth_normal"], d["depth_low"], d["oldest_enqueued_unix_ns"],
               d["in_flight"], d["delayed"]]
        check(got == [int(x) for x in f[3:9]], "depth %s: got %s want %s" % (f[2], got, f[3:9]))


def test_attach_by_pid_counts_and_histograms_match_truth():
    em = emitter(GROUPS)
    time.sleep(0.2)
    ag = Agent(["--pid", str(em.pid), "--json"])
    ag.wait_attached()
    truth = finish(em)
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    check_snapshot(json.loads(out), truth)


def test_version2_sites_without_digest_read_the_names():
    # A libjobq of probe contract version 2 (11-argument enqueue and start:
    # no series digest): the programs read the three strings as before;
    # every counter and histogram exact.
    ag = Agent(["--bin", EMITTER, "--json"])
    ag.wait_attached()
    truth = finish(emitter(["--v2-sites"] + GROUPS))
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    check_snapshot(json.loads(out), truth)


def test_a_process_lying_in_its_digest_mislabels_only_its_own_jobs():
    # The series digest of enqueue and start stands for (queue, tenant, type)
    # once the kernel has read the strings of that process. A process
    # passing tenant "victim"'s digest with its own tenant "liar" must not
    # make another process's "victim" jobs count as "liar": the cache is
    # keyed by pid too. (Keyed by the digest alone, the honest process's
    # 20 jobs went to "liar".)
    ag = Agent(["--bin", EMITTER, "--json"])
    ag.wait_attached()
    truth = finish(emitter(["--lie-digest", "victim", "liar,email,1,30,0,5,0"]))
    truth += finish(emitter(["victim,email,1,20,0,5,0"]))
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    snap = json.loads(out)
    check_snapshot(snap, truth)
    started = {c["tenant"]: c["value"] for c in snap["counters"] if c["name"] == "jobs.started"}
    check(started == {"liar": 30, "victim": 20}, "jobs.started by tenant: %s" % started)


def test_same_job_id_in_two_queues_pairs_each_with_its_own_start():
    # Job ids are unique only within a queue: each job here has a twin of
    # the same id in another queue, started after it and finished before
    # it. Paired by (pid, job id) alone, the twin's start replaced the
    # job's and the job's finish found nothing (unmatched_finish, no
    # duration). Paired with the queue, every duration is exact.
    em = emitter(["--twin-queue", "other"] + GROUPS[:2])
    time.sleep(0.2)
    ag = Agent(["--pid", str(em.pid), "--json"])
    ag.wait_attached()
    truth = finish(em)
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    check_snapshot(json.loads(out), truth)


def test_same_tenant_and_type_on_two_queues_are_two_series():
    # The series key holds the queue: tenant "check", type "email" on queue
    # "default" (77 jobs) and on queue "q3" (10 jobs) are two series with
    # exact counts and histograms each, and --lib, which reaches every
    # process mapping the library, does not mix in an unrelated process
    # whose same tenant and type run on a third queue with far longer waits
    # and handlers. Before, the kernel keyed series by (tenant, type) only:
    # all of them were one series of 110 jobs without a queue.
    ag = Agent(["--lib", LIBJOBQ, "--json"])
    ag.wait_attached()
    ems = [emitter(["--queue", "default", "check,email,1,77,0,5,4"], prog=LIB_EMITTER),
           emitter(["--queue", "q3", "check,email,1,10,2000,20,0"], prog=LIB_EMITTER),
           emitter(["--queue", "unrelated", "check,email,1,23,100000,1500,3"],
                   prog=LIB_EMITTER)]
    truth = "".join(finish(em) for em in ems)
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    snap = json.loads(out)
    check_snapshot(snap, truth)  # every counter and histogram, exact per queue
    processed = {}
    for c in snap["counters"]:
        if c["name"] == "jobs.processed":
            k = (c.get("queue"), c["tenant"], c["job_type"])
            processed[k] = processed.get(k, 0) + c["value"]
    check(processed == {("default", "check", "email"): 77, ("q3", "check", "email"): 10,
                        ("unrelated", "check", "email"): 23},
          "jobs.processed by (queue, tenant, type): %s" % processed)
    hists = {(h["name"], h.get("queue")): h for h in snap["histograms"]}
    for q, n in (("default", 77), ("q3", 10), ("unrelated", 23)):
        for name in ("jobs.wait_time", "jobs.duration"):
            h = hists.get((name, q))
            check(h is not None and h["count"] == n,
                  "%s of queue %s: %s, want %d values" % (name, q, h and h["count"], n))
    # Nothing of the unrelated process (waits >= 1.5 s, handlers 100 ms)
    # in the first queue's series.
    check(hists[("jobs.wait_time", "default")]["max_ms"] < 1000 and
          hists[("jobs.duration", "default")]["max_ms"] < 50,
          "the unrelated process leaked into queue default: %s" %
          {n: (h["min_ms"], h["max_ms"]) for (n, q), h in hists.items() if q == "default"})


def test_queue_option_observes_only_the_named_queues():
    # --queue default --queue q3 with --lib: an unrelated process on a third
    # queue, run first, is not counted at all, not even as a tenant (cap 1:
    # its tenant would have taken the only slot), and loses nothing (its
    # finishes are no unmatched finishes); the named queues are exact.
    ag = Agent(["--lib", LIBJOBQ, "--json", "--queue", "default", "--queue", "q3",
                "--tenant-cap", "1"])
    ag.wait_attached()
    check("observing only queues 'default', 'q3'" in ag.attach_log,
          "the queue selection is not said at attach: %s" % ag.attach_log)
    finish(emitter(["--queue", "unrelated", "intruder,email,1,9,0,5,3"], prog=LIB_EMITTER))
    truth = "".join(finish(em) for em in (
        emitter(["--queue", "default", "check,email,1,20,0,5,4"], prog=LIB_EMITTER),
        emitter(["--queue", "q3", "check,email,1,10,0,20,0"], prog=LIB_EMITTER)))
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    snap = json.loads(out)
    check_snapshot(snap, truth)  # exact, and nothing else: no other queue, no loss
    check({d["queue"] for d in snap["depths"]} == {"default", "q3"},
          "depth reports of %s" % sorted({d["queue"] for d in snap["depths"]}))


def test_starts_without_finish_expire_and_are_counted():
    # Jobs of a worker killed mid-job never finish: their in-flight slots
    # are freed after --inflight-max-age and counted as expired_inflight,
    # exactly once each.
    ag = Agent(["--bin", EMITTER, "--json", "--inflight-max-age", "1", "--duration", "6"])
    ag.wait_attached()
    finish(emitter(["--no-finish", "gone,a,1,25,0,5,0"]))
    out, err = ag.p.communicate(timeout=30)
    check(ag.p.returncode == 0, "agent exit %d: %s" % (ag.p.returncode, err))
    losses = json.loads(out)["losses"]
    check(losses["expired_inflight"] == 25, "expired_inflight %d, want 25: %s" %
          (losses["expired_inflight"], losses))


def test_finish_with_another_queue_buffer_pairs_with_nothing_counted():
    # Start and finish pair by the queue argument's address (libjobq passes
    # one buffer per queue to both), so the finish reads no string. A
    # finish passing the name in another buffer must not pair with any
    # start: counted as unmatched_finish, its job still counted as
    # processed (by the names it carries), no duration recorded, and the
    # starts it left behind expire, counted.
    ag = Agent(["--bin", EMITTER, "--json", "--inflight-max-age", "1", "--duration", "6"])
    ag.wait_attached()
    truth = finish(emitter(["--finish-queue-copy", "copy,a,1,12,0,5,0"]))
    out, err = ag.p.communicate(timeout=30)
    check(ag.p.returncode == 0, "agent exit %d: %s" % (ag.p.returncode, err))
    snap = json.loads(out)
    jobs, other = parse_truth(truth)
    got, want = counter_map(snap), truth_counters(jobs, other)
    check(got == want, "counters differ:\n want %s\n got  %s" % (sorted(want.items()),
                                                                 sorted(got.items())))
    losses = snap["losses"]
    check(losses["unmatched_finish"] == 12 and losses["expired_inflight"] == 12,
          "unmatched_finish %d, expired_inflight %d, want 12 each: %s" %
          (losses["unmatched_finish"], losses["expired_inflight"], losses))
    durations = [h for h in snap["histograms"] if h["name"] == "jobs.duration" and h["count"]]
    check(not durations, "durations recorded from unpaired finishes: %s" % durations)


def test_attach_by_bin_reaches_process_started_after_attach():
    ag = Agent(["--bin", EMITTER, "--json"])
    ag.wait_attached()
    truth = finish(emitter(GROUPS[:2]))
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    check_snapshot(json.loads(out), truth)


def test_finish_on_another_thread_still_pairs_durations():
    em = emitter(["--finish-thread"] + GROUPS[:2])
    time.sleep(0.2)
    ag = Agent(["--pid", str(em.pid), "--json"])
    ag.wait_attached()
    truth = finish(em)
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    check_snapshot(json.loads(out), truth)


def test_attach_by_lib_reaches_running_and_later_processes():
    early = emitter(["early,email,0,20,1000,50,4"], prog=LIB_EMITTER)
    time.sleep(0.2)
    ag = Agent(["--lib", LIBJOBQ, "--json"])
    ag.wait_attached()
    truth = finish(early)
    late = emitter(["late,report,1,15,1000,20,5", "early,email,0,5,0,50,0"], prog=LIB_EMITTER)
    truth += finish(late)
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    check_snapshot(json.loads(out), truth)


def test_attach_by_pid_finds_probes_in_mapped_library():
    em = emitter(GROUPS[:1], prog=LIB_EMITTER)
    time.sleep(0.2)
    ag = Agent(["--pid", str(em.pid), "--json"])
    ag.wait_attached()
    truth = finish(em)
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    check_snapshot(json.loads(out), truth)


def test_attach_by_pid_when_libjobq_was_replaced_on_disk():
    # A worker keeps running the libjobq it loaded after a deploy replaced
    # the file (maps: "... libjobq_emitter.so (deleted)"; same for its
    # binary). --pid attaches to the inode the process maps, through
    # /proc/PID/map_files and /proc/PID/exe, instead of failing.
    import tempfile
    tmp = tempfile.mkdtemp(prefix="jobq-agent-deleted-")
    em = None
    try:
        lib = os.path.join(tmp, os.path.basename(LIBJOBQ))
        prog = os.path.join(tmp, "lib_emitter")
        shutil.copy(LIBJOBQ, lib)
        shutil.copy(LIB_EMITTER, prog)
        em = emitter(GROUPS[:1], prog=prog)
        time.sleep(0.3)
        for f in (lib, prog):  # a deploy: new files, new inodes
            os.unlink(f)
            shutil.copy(LIBJOBQ if f == lib else LIB_EMITTER, f)
        with open("/proc/%d/maps" % em.pid) as m:
            check("(deleted)" in m.read(), "the library is not shown as deleted")
        ag = Agent(["--pid", str(em.pid), "--json"])
        ag.wait_attached()
        truth = finish(em)
        rc, out, err = ag.stop()
        check(rc == 0, "agent exit %d: %s" % (rc, err))
        check("replaced on disk" in ag.attach_log and "map_files" in ag.attach_log,
              "no note about the deleted library: %s" % ag.attach_log)
        check_snapshot(json.loads(out), truth)
    finally:
        if em and em.poll() is None:
            em.kill()
            em.wait()
        shutil.rmtree(tmp)


def check_bracketed(h, lows, highs, what):
    """Every kernel value v_i lies in [lows[i], highs[i]] (clock readings
    around the probes): then count is exact, the sum, min and max lie
    between those of the lows and of the highs, and for every bucket
    boundary B the number of values <= B lies between #(highs <= B) and
    #(lows <= B). Checked for the zero bucket and all 296 buckets."""
    n = len(lows)
    check(h["count"] == n, "%s count %d, want %d" % (what, h["count"], n))
    check(h["zero_count"] + sum(h["bucket_counts"]) == n, "%s buckets do not add up" % what)
    got_sum = round(h["sum_ms"] * 1e6)
    check(sum(lows) - 1 <= got_sum <= sum(highs) + 1, "%s sum %d ns outside [%d, %d]" %
          (what, got_sum, sum(lows), sum(highs)))
    for name, got, lo, hi in (("min", h["min_ms"], min(lows), min(highs)),
                              ("max", h["max_ms"], max(lows), max(highs))):
        v = round(got * 1e6)
        check(lo - 1 <= v <= hi + 1, "%s %s %d ns outside [%d, %d]" % (what, name, v, lo, hi))
    per_pos = [0] * NBUCKETS
    for j, c in enumerate(h["bucket_counts"]):
        per_pos[h["offset"] - INDEX_MIN + j] += c
    slo, shi = sorted(lows), sorted(highs)
    cum = h["zero_count"]
    for p in range(-1, NBUCKETS):
        if p >= 0:
            cum += per_pos[p]
        bound = BOUNDS[p + 1]
        at_least = bisect.bisect_right(shi, bound)
        at_most = bisect.bisect_right(slo, bound)
        if p == NBUCKETS - 1:
            at_least = at_most = n  # the top bucket also takes clamped values
        check(at_least <= cum <= at_most,
              "%s: %d values <= %d ns (bucket position %d), truth between %d and %d" %
              (what, cum, bound, p, at_least, at_most))


def test_threads_on_two_cpus_record_one_series_exactly():
    # Counters and histograms are one copy shared by every CPU, updated
    # with atomics: two threads pinned to different CPUs fire the probes of
    # the same series as fast as they can, and nothing is lost. Counters
    # equal the truth exactly; each histogram's count is exact, and every
    # duration the kernel measured lies in the bracket the emitter's clock
    # readings put around its probes, checked bucket by bucket, sum, min
    # and max (the kernel's values themselves cannot be known exactly).
    ncpu = len(os.sched_getaffinity(0))
    if ncpu < 2:
        raise Skipped("needs two CPUs, this process may use %d" % ncpu)
    n = 30000
    em = emitter(["--threads", "2", "hot,t,1,%d,0,5,7" % n])
    time.sleep(0.2)
    ag = Agent(["--pid", str(em.pid), "--json"])
    ag.wait_attached()
    truth = finish(em)
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    snap = json.loads(out)
    jobs, other = parse_truth(truth)
    check(len(jobs) == 2 * n and len({j["id"] for j in jobs}) == 2 * n,
          "%d distinct jobs, want %d" % (len({j["id"] for j in jobs}), 2 * n))
    got, want = counter_map(snap), truth_counters(jobs, other)
    check(got == want, "counters differ:\n want %s\n got  %s" % (sorted(want.items()),
                                                                 sorted(got.items())))
    for reason, v in snap["losses"].items():
        check(v == 0, "loss %s = %d, expected none" % (reason, v))
    hists = {h["name"]: h for h in snap["histograms"] if h["tenant"] == "hot"}
    check_bracketed(hists["jobs.duration"], [j["dur_lo"] for j in jobs],
                    [j["dur_hi"] for j in jobs], "jobs.duration")
    w = hists["jobs.wait_time"]
    check(w["count"] == 2 * n and w["zero_count"] + sum(w["bucket_counts"]) == 2 * n,
          "jobs.wait_time count %d, want %d" % (w["count"], 2 * n))
    check_quantiles(w, [j["wait_ns"] for j in jobs], [j["wait_hi"] for j in jobs],
                    "jobs.wait_time")


PERCPU_TYPES = {"percpu_array", "percpu_hash", "lru_percpu_hash"}
HASH_TYPES = {"hash", "lru_hash"}


def possible_cpus():
    n = 0
    with open("/sys/devices/system/cpu/possible") as f:
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
    return n


def map_bytes(maps):
    """(shared, per CPU) bytes of maps as the kernel shows them (bpftool):
    value_size x max_entries, plus the keys of hash maps, a ring buffer's
    size; per-CPU maps' values once per CPU."""
    shared = per_cpu = 0
    r8 = lambda n: (n + 7) // 8 * 8
    for m in maps:
        n, key, val = m["max_entries"], r8(m["bytes_key"]), r8(m["bytes_value"])
        if m["type"] == "ringbuf":
            shared += n
        elif m["type"] in PERCPU_TYPES:
            per_cpu += val * n
            shared += key * n if m["type"] != "percpu_array" else 0
        elif m["type"] in HASH_TYPES:
            shared += (key + val) * n
        else:
            shared += val * n
    return shared, per_cpu


def test_kernel_memory_is_reported_and_does_not_grow_with_cpus():
    # The agent reports the kernel memory of its maps (--json
    # kernel_memory, and on stderr at attach). Recomputed here from the
    # maps the kernel holds for the agent (bpftool), it is the same; the
    # kernel's own accounting (bytes_memlock) is within 10% of it; and
    # for 64 CPUs it would exceed the figure for 2 CPUs only by the small
    # per-CPU maps: the series arrays are shared.
    ag = Agent(["--bin", EMITTER, "--json"])
    ag.wait_attached()
    ids = set()
    d = "/proc/%d/fdinfo" % ag.p.pid
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                ids.update(int(l.split()[1]) for l in f if l.startswith("map_id:"))
        except OSError:
            pass
    maps = []
    for i in sorted(ids):
        p = subprocess.run(["bpftool", "-j", "map", "show", "id", str(i)], capture_output=True,
                           text=True)
        check(p.returncode == 0, "bpftool map show id %d: %s" % (i, p.stderr))
        maps.append(json.loads(p.stdout))
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    km = json.loads(out)["kernel_memory"]
    shared, per_cpu = map_bytes(maps)
    ncpu = possible_cpus()
    check(km["cpus"] == ncpu and km["shared_bytes"] == shared and
          km["per_cpu_bytes"] == per_cpu and km["bytes"] == shared + per_cpu * ncpu,
          "reported %s, the kernel's maps say shared %d + %d per CPU x %d" %
          (km, shared, per_cpu, ncpu))
    memlock = sum(m.get("bytes_memlock", 0) for m in maps)
    check(km["bytes"] <= memlock <= km["bytes"] * 1.1,
          "kernel accounts %d bytes for the maps, the agent reports %d" % (memlock, km["bytes"]))
    types = {m["name"]: m["type"] for m in maps}
    check(types.get("counters") == "array" and types.get("hists") == "array",
          "series arrays are not shared arrays: %s" % types)
    at2, at64 = shared + 2 * per_cpu, shared + 64 * per_cpu
    check(per_cpu <= 1024 and at64 - at2 == 62 * per_cpu,
          "64 CPUs would take %d bytes more than 2 (%d per CPU)" % (at64 - at2, per_cpu))
    check("bytes per CPU" in ag.attach_log, "no kernel memory line at attach: %s" %
          ag.attach_log)


def last_frame(out):
    """The last table --top printed; off a terminal, tables follow one
    another (no escape sequences)."""
    check("\033" not in out, "escape sequences in --top output to a pipe: %r" % out[:200])
    return "jobq-agent --top" + out.split("jobq-agent --top")[-1]


def test_top_shows_a_row_per_tenant():
    ag = Agent(["--bin", EMITTER, "--top", "--interval", "200", "--duration", "3"])
    ag.wait_attached()
    finish(emitter(["acme,email,0,20,1000,50,4", "globex,report,1,5,0,5,0"]))
    out, err = ag.p.communicate(timeout=30)
    check(ag.p.returncode == 0, "agent --top exit %d: %s" % (ag.p.returncode, err))
    last = last_frame(out)
    check("WAIT p99" in last and "DUR p99" in last, "no table header in: %r" % last)
    rows = {l.split()[0]: l.split() for l in last.splitlines()[2:] if l and l[0] != "("}
    check(set(rows) == {"acme", "globex"}, "rows: %s" % rows)
    check(rows["acme"][-1] == "5", "acme failures column: %s" % rows["acme"])


def test_top_shows_a_queue_column_when_there_are_several_queues():
    # The same tenant on two queues: a row each, with the queue in a QUEUE
    # column (with one queue, as above, the table has no such column).
    ag = Agent(["--bin", EMITTER, "--top", "--interval", "200", "--duration", "3"])
    ag.wait_attached()
    finish(emitter(["--queue", "default", "check,email,0,7,0,5,1"]))
    finish(emitter(["--queue", "q3", "check,email,0,3,0,5,0"]))
    out, err = ag.p.communicate(timeout=30)
    check(ag.p.returncode == 0, "agent --top exit %d: %s" % (ag.p.returncode, err))
    last = last_frame(out).splitlines()
    check(last[1].split()[:2] == ["QUEUE", "TENANT"], "no QUEUE column: %s" % last[:2])
    rows = {tuple(l.split()[:2]): l.split() for l in last[2:] if l and l[0] not in "(."}
    check(set(rows) == {("default", "check"), ("q3", "check")}, "rows: %s" % sorted(rows))
    check(rows[("default", "check")][-1] == "7" and rows[("q3", "check")][-1] == "0",
          "failures per queue: %s" % rows)


def test_tenant_cap_sends_new_tenants_to_overflow_series():
    ag = Agent(["--bin", EMITTER, "--json", "--tenant-cap", "1"])
    ag.wait_attached()
    finish(emitter(["t1,a,1,3,0,5,0", "t2,a,1,4,0,5,0", "t3,b,1,5,0,5,0"]))
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    snap = json.loads(out)
    started = {(c["tenant"], c["overflow"]): c["value"] for c in snap["counters"]
               if c["name"] == "jobs.started"}
    check(started == {("t1", False): 3, ("", True): 9}, "started by tenant: %s" % started)
    # Every event of t2 and t3: enqueue, start, finish of 9 jobs, a reap
    # and a depth report each.
    check(snap["losses"]["tenant_overflow"] == 9 * 3 + 2 + 2,
          "tenant_overflow %d, want 31 (one per event)" % snap["losses"]["tenant_overflow"])


def test_more_tenants_than_the_cap_admitted_ones_exact_overflow_counted():
    # 400 tenants with 2 job types each against --tenant-cap 300: the series
    # table is sized for 300 x --types-per-tenant, so every admitted tenant
    # keeps both of its series with exact counts (before, the 1024-series
    # table filled at ~511 such tenants and admitted tenants' new types
    # vanished into the overflow series); the other 100 tenants are counted
    # in the overflow series, with tenant_overflow, and nothing else is lost.
    ntenants, cap = 400, 300
    groups = ["t%03d,%s,1,1,0,5,0" % (i, ty) for i in range(ntenants) for ty in ("a", "b")]
    ag = Agent(["--bin", EMITTER, "--json", "--tenant-cap", str(cap), "--types-per-tenant", "2"])
    ag.wait_attached()
    truth = finish(emitter(groups))
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    check("more tenants than --tenant-cap 300" in err, "overflow not reported on stderr: %s" % err)
    snap = json.loads(out)
    jobs, other = parse_truth(truth)
    admitted = {"t%03d" % i for i in range(cap)}
    got = {k: v for k, v in counter_map(snap).items() if k[2] in admitted}
    want = {k: v for k, v in truth_counters(jobs, other).items() if k[2] in admitted}
    check(got == want, "admitted tenants' counters differ:\n want %s\n got  %s" %
          (sorted(set(want.items()) - set(got.items()))[:5],
           sorted(set(got.items()) - set(want.items()))[:5]))
    started = [c for c in snap["counters"] if c["name"] == "jobs.started"]
    over = sum(c["value"] for c in started if c["overflow"])
    named = {c["tenant"] for c in started if not c["overflow"]}
    check(named == admitted, "%d named tenants, want the first %d" % (len(named), cap))
    check(over == 2 * (ntenants - cap) and sum(c["value"] for c in started) == 2 * ntenants,
          "overflow series started %d, want %d" % (over, 2 * (ntenants - cap)))
    check(all(c["tenant"] == "" for c in snap["counters"] if c["overflow"]),
          "overflow series carries a tenant name")
    losses = snap["losses"]
    # One per event of the 100 tenants beyond the cap: per type an enqueue,
    # start, finish and reap, and a depth report.
    want = (ntenants - cap) * 2 * 5
    check(losses["tenant_overflow"] == want, "tenant_overflow %d, want %d (one per event)" %
          (losses["tenant_overflow"], want))
    check(losses["map_full"] == 0 and losses["type_overflow"] == 0,
          "admitted tenants lost series: %s" % losses)


def test_types_beyond_the_allowance_go_to_overflow_counted():
    ag = Agent(["--bin", EMITTER, "--json", "--tenant-cap", "4", "--types-per-tenant", "2"])
    ag.wait_attached()
    finish(emitter(["a,x,1,2,0,5,0", "a,y,1,3,0,5,0", "a,z,1,4,0,5,0", "b,x,1,5,0,5,0"]))
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    check("more (queue, job type) pairs than --types-per-tenant 2" in err,
          "type overflow not reported on stderr: %s" % err)
    snap = json.loads(out)
    started = {(c["tenant"], c["job_type"], c["overflow"]): c["value"] for c in snap["counters"]
               if c["name"] == "jobs.started"}
    check(started == {("a", "x", False): 2, ("a", "y", False): 3, ("b", "x", False): 5,
                      ("", "", True): 4}, "started by series: %s" % started)
    # One per event of a/z: enqueue, start and finish of 4 jobs, a reap.
    check(snap["losses"]["type_overflow"] == 4 * 3 + 1 and
          snap["losses"]["tenant_overflow"] == 0 and snap["losses"]["map_full"] == 0,
          "losses: %s" % snap["losses"])


def test_a_tenant_is_admitted_once_and_its_allowance_counts_queue_type_pairs():
    # --tenant-cap 2 --types-per-tenant 2. Tenant a is seen on three queues
    # but admitted once: b still fits under the cap, c does not. a's
    # allowance is 2 (queue, type) pairs: (q1, x) and (q2, x) get their own
    # series, (q3, x) goes to the overflow series as type_overflow.
    ag = Agent(["--bin", EMITTER, "--json", "--tenant-cap", "2", "--types-per-tenant", "2"])
    ag.wait_attached()
    finish(emitter(["--queue", "q1", "a,x,1,2,0,5,0", "b,y,1,3,0,5,0"]))
    finish(emitter(["--queue", "q2", "a,x,1,4,0,5,0", "c,x,1,5,0,5,0"]))
    finish(emitter(["--queue", "q3", "a,x,1,6,0,5,0"]))
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    snap = json.loads(out)
    started = {(c["queue"], c["tenant"], c["job_type"], c["overflow"]): c["value"]
               for c in snap["counters"] if c["name"] == "jobs.started"}
    check(started == {("q1", "a", "x", False): 2, ("q1", "b", "y", False): 3,
                      ("q2", "a", "x", False): 4, ("", "", "", True): 5 + 6},
          "started by series: %s" % started)
    losses = snap["losses"]
    # c: enqueue, start, finish of 5 jobs, a reap and a depth report; a on
    # q3: enqueue, start, finish of 6 jobs and a reap.
    check(losses["tenant_overflow"] == 5 * 3 + 2 and losses["type_overflow"] == 6 * 3 + 1 and
          losses["map_full"] == 0, "losses: %s" % losses)
    check("more (queue, job type) pairs than --types-per-tenant 2" in err and
          "more tenants than --tenant-cap 2" in err, "overflow not reported: %s" % err)


def test_limits_that_cannot_fit_are_usage_errors():
    rc, _, err = run_agent_once(["--bin", EMITTER, "--json", "--tenant-cap", "65536",
                                 "--types-per-tenant", "256"])
    check(rc == 2 and "--tenant-cap 65536 x --types-per-tenant 256" in err and
          "lower --tenant-cap or --types-per-tenant" in err,
          "exit %d, unclear error for a series table too large: %s" % (rc, err))
    rc, _, err = run_agent_once(["--bin", EMITTER, "--json", "--tenant-cap", "1000000"])
    check(rc == 2 and "--tenant-cap" in err and "65536" in err,
          "exit %d for a tenant cap above the limit: %s" % (rc, err))


def test_top_shows_every_tenant_when_not_on_a_terminal():
    # The table used to stop at 1025 rows whatever the tenant cap.
    n = 1100
    ag = Agent(["--bin", EMITTER, "--top", "--interval", "500", "--duration", "4",
                "--tenant-cap", "1200", "--types-per-tenant", "1"])
    ag.wait_attached()
    finish(emitter(["t%04d,a,1,1,0,5,0" % i for i in range(n)]))
    out, err = ag.p.communicate(timeout=30)
    check(ag.p.returncode == 0, "agent --top exit %d: %s" % (ag.p.returncode, err))
    last = last_frame(out).splitlines()
    rows = {l.split()[0] for l in last[2:] if l and l[0] not in "(."}
    check(rows == {"t%04d" % i for i in range(n)}, "%d rows for %d tenants" % (len(rows), n))


def test_top_limits_rows_and_says_how_many_more():
    ag = Agent(["--bin", EMITTER, "--top", "--interval", "200", "--duration", "3",
                "--top-rows", "10"])
    ag.wait_attached()
    finish(emitter(["t%02d,a,1,1,0,5,0" % i for i in range(30)]))
    out, err = ag.p.communicate(timeout=30)
    check(ag.p.returncode == 0, "agent --top exit %d: %s" % (ag.p.returncode, err))
    last = last_frame(out).splitlines()
    rows = [l for l in last[2:] if l and l[0] not in "(."]
    check(len(rows) == 10 and "... 20 more tenants" in last[-2],
          "want 10 rows then '... 20 more tenants', got: %s" % last)


def test_enqueue_time_in_the_future_is_clamped_and_counted():
    # A producer whose clock runs 10 s ahead: wait would be negative. It is
    # recorded as 0 (zero bucket) and counted as negative_delta, never as a
    # huge unsigned value.
    ag = Agent(["--bin", EMITTER, "--json"])
    ag.wait_attached()
    finish(emitter(["skew,a,1,6,0,-10000,0", "fine,a,1,4,0,20,0"]))
    rc, out, err = ag.stop()
    check(rc == 0, "agent exit %d: %s" % (rc, err))
    snap = json.loads(out)
    check(snap["losses"]["negative_delta"] == 6, "negative_delta %d, want 6" %
          snap["losses"]["negative_delta"])
    check(snap["losses"]["histogram_clamp"] == 0, "a negative wait was clamped at the top")
    w = {h["tenant"]: h for h in snap["histograms"] if h["name"] == "jobs.wait_time"}
    check(w["skew"]["count"] == 6 and w["skew"]["zero_count"] == 6 and w["skew"]["max_ms"] == 0,
          "skewed waits not recorded as 0: %s" % w["skew"])
    check(w["fine"]["zero_count"] == 0 and w["fine"]["min_ms"] >= 19,
          "unskewed waits: %s" % w["fine"])


def test_detach_on_sigint_and_sigterm_leaves_no_uprobe():
    for sig in (signal.SIGINT, signal.SIGTERM):
        em = emitter(["a,b,1,1,0,5,0"])
        ag = Agent(["--pid", str(em.pid), "--json"])
        ag.wait_attached()
        ids = ag.link_ids()
        check(len(ids) >= 7, "expected our 7 links while attached, saw %s" % sorted(ids))
        finish(em)
        rc, _, err = ag.stop(sig)
        check(rc == 0, "agent exit %d after signal %d: %s" % (rc, sig, err))
        check(links_left(ids, timeout=0) == [], "links left after signal %d: %s" %
              (sig, links_left(ids)))


def test_agent_sigkill_leaves_worker_running():
    em = emitter(["a,b,1,150,10000,5,0"])  # ~1.5 s of jobs
    ag = Agent(["--pid", str(em.pid), "--json"])
    ag.wait_attached()
    time.sleep(0.3)
    ids = ag.link_ids()
    check(len(ids) >= 7, "expected our 7 links while attached, saw %s" % sorted(ids))
    ag.p.kill()
    ag.p.wait()
    truth = finish(em)
    jobs, _ = parse_truth(truth)
    check(len(jobs) == 150, "emitter finished %d of 150 jobs after agent SIGKILL" % len(jobs))
    check(links_left(ids) == [], "links left after SIGKILL: %s" % links_left(ids))


def test_target_without_jobq_probes_lists_what_it_found():
    rc, _, err = run_agent_once(["--bin", OTHER, "--json"])
    check(rc != 0, "agent accepted a binary without jobq probes")
    check("no 'jobq' USDT probes" in err and "otherprov:hello" in err and "otherprov:bye" in err,
          "error does not list the probes found: %s" % err)
    rc, _, err = run_agent_once(["--bin", "/bin/true", "--json"])
    check(rc != 0 and "no 'jobq' USDT probes" in err and "none" in err,
          "no-probe binary error unclear: %s" % err)


def test_missing_pid_is_a_clear_error():
    rc, _, err = run_agent_once(["--pid", "12x", "--json"])
    check(rc == 2 and "not a process id" in err, "exit %d, unclear error for a bad pid: %s" %
          (rc, err))
    rc, _, err = run_agent_once(["--pid", "4194303", "--json"])
    check(rc == 1 and "no such process" in err, "exit %d, unclear error for a missing pid: %s" %
          (rc, err))


def test_usage_errors_exit_2_runtime_errors_exit_1():
    # docs/agent.md "Exit codes": 2 for every usage error (checked before
    # privileges or targets), 1 when the system refuses what was asked.
    for args in (["--pid", "abc"], ["--pid", "0"], ["--pid", "-5"], ["--pid", ""],
                 ["--pid", "99999999999"], ["--bogus"], [], ["--pid", "1", "--bin", "/bin/true"],
                 ["--bin", EMITTER, "--json", "--top"], ["--bin", EMITTER, "--interval", "1"],
                 ["--bin", EMITTER, "--tenant-cap", "0"], ["--bin", EMITTER, "extra"],
                 ["--bin", EMITTER, "--duration", "x"], ["--bin", EMITTER, "--queue", ""],
                 ["--bin", EMITTER, "--queue", "q" * 65],
                 ["--bin", EMITTER] + ["--queue", "q"] * 9):
        rc, out, err = run_agent_once(args)
        check(rc == 2 and err.startswith("jobq-agent") or rc == 2 and "usage" in err,
              "%s: exit %d (want 2): %s" % (args, rc, err))
        check(out == "", "%s: usage error printed on stdout: %r" % (args, out))
        rc, _, err = run_agent_once(args, cmd_prefix=["setpriv", "--reuid=65534",
                                                      "--regid=65534", "--clear-groups",
                                                      "--inh-caps=-all"])
        check(rc == 2, "%s as non-root: exit %d (a usage error comes first): %s" %
              (args, rc, err))
    rc, _, err = run_agent_once(["--bin", "/nonexistent/jobq", "--json"])
    check(rc == 1 and "No such file" in err, "missing binary: exit %d: %s" % (rc, err))
    rc, out, _ = run_agent_once(["--help"])
    check(rc == 0 and "usage" in out, "--help: exit %d" % rc)


def test_non_root_gets_privilege_error():
    rc, _, err = run_agent_once(["--bin", EMITTER, "--json"],
                                cmd_prefix=["setpriv", "--reuid=65534", "--regid=65534",
                                            "--clear-groups", "--inh-caps=-all"])
    check(rc != 0, "non-root agent did not fail")
    check("CAP_BPF" in err and "root" in err, "privilege error unclear: %s" % err)


def test_bpf_perfmon_without_sys_admin_gets_clear_attach_error():
    # Root with only CAP_BPF + CAP_PERFMON left: enough to load, but kernels
    # with the CVE-2025-38466 fix refuse uprobes without CAP_SYS_ADMIN. The
    # agent must say what to grant and exit non-zero, leaving nothing behind.
    if not shutil.which("setpriv"):
        raise Skipped("setpriv (util-linux) is not installed")
    rc, _, err = run_agent_once(["--bin", EMITTER, "--json", "--duration", "1"],
                                cmd_prefix=["setpriv", "--bounding-set=-all,+bpf,+perfmon"])
    if rc == 0:
        raise Skipped("this kernel attaches uprobes with CAP_BPF+CAP_PERFMON alone")
    check(rc == 1, "exit %d, want 1: %s" % (rc, err))
    check("Permission denied" in err and "missing CAP_SYS_ADMIN" in err and
          "CAP_SYS_ADMIN + CAP_BPF + CAP_PERFMON" in err and "root" in err and
          "setcap cap_sys_admin,cap_bpf,cap_perfmon" in err,
          "attach permission error unclear: %s" % err)


CAPS = "cap_sys_admin,cap_bpf,cap_perfmon,cap_dac_read_search"


def as_nobody_with(caps):
    """A command prefix: what follows runs as nobody with caps (ambient)."""
    return ["capsh", "--caps=%s,cap_setuid,cap_setgid+eip" % caps, "--keep=1", "--user=nobody",
            "--addamb=%s" % caps, "--", "-c", 'exec "$0" "$@"']


def test_documented_capabilities_suffice_without_root():
    # The capabilities the error and docs/agent.md name, for a non-root uid:
    # attach by binary works; --pid on another user's process says it also
    # needs CAP_SYS_PTRACE.
    if not shutil.which("capsh"):
        raise Skipped("capsh (libcap2-bin) is not installed")
    if not os.access(EMITTER, os.R_OK) or os.stat(EMITTER).st_mode & 0o005 != 0o005:
        raise Skipped("%s is not readable by nobody" % EMITTER)
    pre = as_nobody_with(CAPS)
    a = Agent(["--bin", EMITTER, "--json"], cmd_prefix=pre)
    a.wait_attached()
    truth = finish(emitter(["capped,a,1,3,0,5,0"]))
    rc, out, err = a.stop()
    check(rc == 0, "agent with %s as nobody exit %d: %s" % (CAPS, rc, err))
    check_snapshot(json.loads(out), truth)

    em = emitter(["x,a,1,1,0,5,0"])
    try:
        rc, _, err = run_agent_once(["--pid", str(em.pid), "--json", "--duration", "1"],
                                    cmd_prefix=pre)
        check(rc == 1 and "CAP_SYS_PTRACE" in err,
              "--pid of a root process without CAP_SYS_PTRACE: exit %d: %s" % (rc, err))
    finally:
        em.kill()
        em.wait()


if __name__ == "__main__":
    main([
        test_attach_by_pid_counts_and_histograms_match_truth,
        test_version2_sites_without_digest_read_the_names,
        test_a_process_lying_in_its_digest_mislabels_only_its_own_jobs,
        test_same_job_id_in_two_queues_pairs_each_with_its_own_start,
        test_same_tenant_and_type_on_two_queues_are_two_series,
        test_queue_option_observes_only_the_named_queues,
        test_starts_without_finish_expire_and_are_counted,
        test_attach_by_bin_reaches_process_started_after_attach,
        test_finish_on_another_thread_still_pairs_durations,
        test_finish_with_another_queue_buffer_pairs_with_nothing_counted,
        test_threads_on_two_cpus_record_one_series_exactly,
        test_kernel_memory_is_reported_and_does_not_grow_with_cpus,
        test_attach_by_lib_reaches_running_and_later_processes,
        test_attach_by_pid_finds_probes_in_mapped_library,
        test_attach_by_pid_when_libjobq_was_replaced_on_disk,
        test_top_shows_a_row_per_tenant,
        test_top_shows_a_queue_column_when_there_are_several_queues,
        test_tenant_cap_sends_new_tenants_to_overflow_series,
        test_more_tenants_than_the_cap_admitted_ones_exact_overflow_counted,
        test_types_beyond_the_allowance_go_to_overflow_counted,
        test_a_tenant_is_admitted_once_and_its_allowance_counts_queue_type_pairs,
        test_limits_that_cannot_fit_are_usage_errors,
        test_top_shows_every_tenant_when_not_on_a_terminal,
        test_top_limits_rows_and_says_how_many_more,
        test_enqueue_time_in_the_future_is_clamped_and_counted,
        test_detach_on_sigint_and_sigterm_leaves_no_uprobe,
        test_agent_sigkill_leaves_worker_running,
        test_target_without_jobq_probes_lists_what_it_found,
        test_missing_pid_is_a_clear_error,
        test_usage_errors_exit_2_runtime_errors_exit_1,
        test_non_root_gets_privilege_error,
        test_bpf_perfmon_without_sys_admin_gets_clear_attach_error,
        test_documented_capabilities_suffice_without_root,
    ])
