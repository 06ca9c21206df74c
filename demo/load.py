#!/usr/bin/env python3
"""Steady light traffic from small tenants for the demo: every tick each
tenant enqueues a few jobs of mixed types and priorities through the jobq
CLI (one process per tick and tenant batch, stdin JSON lines)."""
import argparse
import json
import random
import subprocess
import sys
import time

TYPES = [("email", 0.5), ("thumbnail", 0.3), ("report", 0.2)]
PRIOS = [("high", 0.2), ("normal", 0.6), ("low", 0.2)]


def pick(choices, rng):
    x, acc = rng.random(), 0.0
    for name, p in choices:
        acc += p
        if x < acc:
            return name
    return choices[-1][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--tenants", nargs="+", required=True)
    ap.add_argument("--jobq", required=True)
    ap.add_argument("--queue", default="demo")
    ap.add_argument("--rate", type=float, default=3.0, help="jobs/s per tenant")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--summary", help="write {tenant: jobs enqueued} as JSON here")
    ap.add_argument("--urgent-tenant",
                    help="also send this tenant's high-priority jobs (one type, every tick): "
                         "they queue behind its own backlog, so priority has work to reorder")
    ap.add_argument("--urgent-type", default="email")
    ap.add_argument("--urgent-rate", type=float, default=2.0, help="jobs/s")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    end = time.monotonic() + a.seconds
    sent = 0
    per_tenant = {t: 0 for t in a.tenants}
    if a.urgent_tenant:
        per_tenant.setdefault(a.urgent_tenant, 0)
    while time.monotonic() < end:
        tick = time.monotonic()
        lines = []
        for t in a.tenants:
            n = int(a.rate) + (1 if rng.random() < a.rate - int(a.rate) else 0)
            for _ in range(n):
                lines.append(json.dumps({"tenant_id": t, "type": pick(TYPES, rng),
                                         "priority": pick(PRIOS, rng),
                                         "payload": {"n": sent}}))
                sent += 1
                per_tenant[t] += 1
        if a.urgent_tenant:
            n = int(a.urgent_rate) + (1 if rng.random() < a.urgent_rate - int(a.urgent_rate) else 0)
            for _ in range(n):
                lines.append(json.dumps({"tenant_id": a.urgent_tenant, "type": a.urgent_type,
                                         "priority": "high", "payload": {"n": sent}}))
                sent += 1
                per_tenant[a.urgent_tenant] += 1
        r = subprocess.run([a.jobq, "--queue", a.queue, "enqueue", "--stdin"],
                           input="\n".join(lines) + "\n", text=True,
                           capture_output=True)
        if r.returncode != 0:
            print("load: enqueue failed: %s" % r.stderr.strip(), file=sys.stderr)
            return 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    print("load: enqueued %d jobs for %d tenants" % (sent, len(per_tenant)))
    if a.summary:
        with open(a.summary, "w") as f:
            json.dump(per_tenant, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
