"""agentlib.py - shared helpers of the jobq-agent integration tests.

Runs the real agent and real probe-firing processes; computes the exact
histogram boundaries independently (integer 8th roots) to place the
truth in buckets.
"""
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("JOBQ_BUILD") or os.path.dirname(os.path.dirname(HERE))
AGENT = os.path.join(BUILD, "jobq-agent")
EMITTER = os.path.join(BUILD, "tests", "bpf", "probe_emitter")
OTHER = os.path.join(BUILD, "tests", "bpf", "other_probes")
LIB_EMITTER = os.path.join(BUILD, "tests", "bpf", "lib_emitter")
LIBJOBQ = os.path.join(BUILD, "tests", "bpf", "libjobq_emitter.so")

INDEX_MIN = -80
NBUCKETS = 296


def skip(why):
    print("\n*** SKIP: %s ***\n" % why, file=sys.stderr)
    sys.exit(77)


def require_bpf():
    if os.geteuid() != 0:
        skip("needs root to load BPF programs (run `make test` as root)")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        skip("kernel has no BTF (/sys/kernel/btf/vmlinux missing)")


class Failure(Exception):
    pass


class Skipped(Exception):
    """One test cannot run here (printed with its reason, never a pass)."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def iroot8(n):
    """floor(n ** (1/8)) exactly, for a non-negative integer n."""
    x = int(round(n ** 0.125)) if n < (1 << 1000) else 1 << (n.bit_length() // 8)
    while x ** 8 > n:
        x -= 1
    while (x + 1) ** 8 <= n:
        x += 1
    return x


def bound_ns(i):
    """floor(1e6 * 2^(i/8)) exactly."""
    if i >= 0:
        return iroot8(10 ** 48 * 2 ** i)
    # floor(B) for B^8 = 1e48 / 2^-i: largest x with x^8 * 2^-i <= 1e48
    x = iroot8(10 ** 48 // 2 ** (-i))
    while (x + 1) ** 8 * 2 ** (-i) <= 10 ** 48:
        x += 1
    while x ** 8 * 2 ** (-i) > 10 ** 48:
        x -= 1
    return x


BOUNDS = [bound_ns(INDEX_MIN + k) for k in range(NBUCKETS + 1)]


def bucket_pos(v_ns):
    """Position of the bucket holding v ns (-1: zero bucket)."""
    if v_ns <= BOUNDS[0]:
        return -1
    lo, hi = 0, NBUCKETS
    if v_ns > BOUNDS[hi]:
        return NBUCKETS - 1
    while hi - lo > 1:  # BOUNDS[lo] < v <= BOUNDS[hi]
        mid = (lo + hi) // 2
        if BOUNDS[mid] < v_ns:
            lo = mid
        else:
            hi = mid
    return lo


def exact_quantile(values, q):
    """The value of rank ceil(q*n) (1-based), as the histogram read-back."""
    s = sorted(values)
    rank = max(1, -(-int(q * len(s) * 1000000) // 1000000))
    return s[min(rank, len(s)) - 1]


def check_quantiles(h, lows, highs, what):
    """Each true value lies in [low_i, high_i], so the true q-quantile lies
    between the q-quantiles of the lows and of the highs: the exported
    quantile bucket must be within one bucket of that range."""
    for q in (0.5, 0.9, 0.99):
        lo = bucket_pos(exact_quantile(lows, q))
        hi = bucket_pos(exact_quantile(highs, q))
        got = hist_quantile_pos(h, q)
        check(lo - 1 <= got <= hi + 1, "%s p%d: bucket %d, truth buckets %d..%d" %
              (what, int(q * 100), got, lo, hi))


def hist_quantile_pos(h, q):
    total = h["count"]
    rank = max(1, -(-int(q * total * 1000000) // 1000000))
    cum = h["zero_count"]
    if cum >= rank:
        return -1
    for j, c in enumerate(h["bucket_counts"]):
        cum += c
        if cum >= rank:
            return h["offset"] - INDEX_MIN + j
    raise Failure("histogram %s counts do not add up" % h["name"])


def parse_truth(text):
    jobs, other = [], []
    for line in text.splitlines():
        f = line.split("\t")
        if f[0] == "job":
            jobs.append({
                "id": int(f[1]), "tenant": f[2], "type": f[3], "prio": int(f[4]),
                "status": f[5], "attempt": int(f[6]), "wait_ns": int(f[7]),
                "wait_hi": int(f[8]), "dur_lo": int(f[9]), "dur_hi": int(f[10]),
                "trace_hi": int(f[11]), "trace_lo": int(f[12]), "span_id": int(f[13]),
                "parent_span_id": int(f[14]), "trace_flags": int(f[15]), "queue": f[16],
            })
        else:
            other.append(f)
    return jobs, other


PRIO = ["high", "normal", "low"]


def counter_map(snap):
    """Counters by (name, queue, tenant, type, priority, status): a series
    missing its queue (key absent) is keyed by None and never matches."""
    out = {}
    for c in snap["counters"]:
        key = (c["name"], c.get("queue"), c["tenant"], c["job_type"], c["priority"], c["status"])
        out[key] = out.get(key, 0) + c["value"]
    return out


def truth_counters(jobs, other):
    """The same keys as counter_map(), from the emitter's truth lines."""
    out = {}

    def add(k):
        out[k] = out.get(k, 0) + 1
    for j in jobs:
        p = PRIO[j["prio"]]
        add(("jobs.enqueued", j["queue"], j["tenant"], j["type"], p, ""))
        add(("jobs.started", j["queue"], j["tenant"], j["type"], p, ""))
        add(("jobs.processed", j["queue"], j["tenant"], j["type"], p, j["status"]))
    for f in other:
        if f[0] == "retry":
            add(("jobs.retried", f[3], f[1], f[2], "", "retry"))
        elif f[0] == "dead":
            add(("jobs.dead_lettered", f[3], f[1], f[2], "", "dead_letter"))
        elif f[0] == "reap":
            add(("jobs.reaped", f[3], f[1], f[2], "", ""))
    return out


class Agent:
    """A running jobq-agent; stop() sends SIGINT and returns (rc, out, err)."""

    def __init__(self, args, env=None, preexec=None, cmd_prefix=None):
        cmd = (cmd_prefix or []) + [AGENT] + args
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env, text=True)

    def wait_attached(self, timeout=20):
        """Reads stderr until the agent says it attached."""
        deadline = time.time() + timeout
        lines = []
        while time.time() < deadline:
            line = self.p.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "attached" in line:
                self.attach_log = "".join(lines)
                return
        self.p.kill()
        raise Failure("agent did not attach: %s" % "".join(lines))

    def link_ids(self):
        return link_ids_of(self.p.pid)

    def stop(self, sig=signal.SIGINT, timeout=30):
        self.p.send_signal(sig)
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise Failure("agent did not exit within %ds of signal %d" % (timeout, sig))
        return self.p.returncode, out, err


def run_agent_once(args, timeout=30, cmd_prefix=None):
    p = subprocess.run((cmd_prefix or []) + [AGENT] + args, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def link_ids_of(pid):
    """Ids of the BPF links process pid holds open (from /proc/PID/fdinfo):
    exactly this agent's links, whatever else runs on the machine."""
    ids = set()
    d = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                for line in f:
                    if line.startswith("link_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass  # fd closed meanwhile
    return ids


def live_link_ids():
    """Ids of every BPF link in the kernel (bpftool link list)."""
    p = subprocess.run(["bpftool", "-j", "link", "list"], capture_output=True, text=True)
    if p.returncode != 0:
        raise Failure("bpftool link list: %s" % p.stderr)
    return {l["id"] for l in json.loads(p.stdout or "[]")}


def links_left(ids, timeout=5):
    """Those of ids still alive, after up to timeout s for the kernel to
    release them. Only the agent's own links are looked at: other jobq
    agents (other tests, other users of a shared machine) may be attached
    at the same time."""
    deadline = time.time() + timeout
    while True:
        left = ids & live_link_ids()
        if not left or time.time() > deadline:
            return sorted(left)
        time.sleep(0.1)


def main(tests):
    require_bpf()
    failed = skipped = 0
    for t in tests:
        start = time.time()
        try:
            t()
            print("ok   %s (%.1fs)" % (t.__name__, time.time() - start))
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (t.__name__, e))
        except Skipped as e:
            skipped += 1
            print("SKIP %s: %s" % (t.__name__, e))
    if skipped:
        print("%d test(s) skipped (see SKIP lines)" % skipped)
    sys.exit(1 if failed else 0)
