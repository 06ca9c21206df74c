#!/usr/bin/env python3
"""A real Prometheus server (Debian's `prometheus`) scrapes jobq-sidecar's
/metrics and answers a histogram_quantile query per tenant; each answer must
fall in the explicit bucket that holds the true median of that tenant's
synthetic wait times (see fake_agent.c for the data)."""
import json
import math
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

from harness import TMP, Sidecar, _procs, check, eq, free_port, run_tests, skip_test, wait_until

BOUNDS = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000]


def query(port, q):
    url = 'http://127.0.0.1:%d/api/v1/query?query=%s' % (port, urllib.parse.quote(q))
    with urllib.request.urlopen(url, timeout=5) as r:
        d = json.load(r)
    eq(d.get('status'), 'success', 'PromQL status for %s' % q)
    return d['data']['result']


def expected_bucket(t, s):
    """(lower, upper] explicit bucket of tenant t's median at snapshot s."""
    # zero bucket: 1 value at 0; exp buckets 10+t..12+t at scale 3 with
    # counts s+1, 2, 3; each goes to the explicit bucket of its upper bound.
    vals = [(0.0, 1)] + [(2 ** ((10 + t + k + 1) / 8.0), c) for k, c in enumerate([s + 1, 2, 3])]
    total = sum(c for _, c in vals)
    rank, seen = total / 2.0, 0
    for ub, c in vals:
        seen += c
        if seen >= rank:
            i = next(i for i, b in enumerate(BOUNDS) if ub <= b) if ub <= BOUNDS[-1] else len(BOUNDS)
            return (BOUNDS[i - 1] if i > 0 else -math.inf, BOUNDS[i] if i < len(BOUNDS) else math.inf)


def need_prometheus():
    if not shutil.which('prometheus') or not shutil.which('promtool'):
        subprocess.run(['scripts/deps.sh'], cwd=os.path.join(os.path.dirname(__file__), '..', '..'))
    if not shutil.which('prometheus') or not shutil.which('promtool'):
        skip_test('Debian package prometheus (prometheus, promtool) is not installed and could not be installed')


def start_prometheus(name, sc):
    """A real Prometheus scraping sc every second; returns (process, API port)
    once it has scraped jobs_enqueued_total."""
    d = os.path.join(TMP, name)
    os.makedirs(d)
    with open(os.path.join(d, 'prometheus.yml'), 'w') as f:
        f.write('global:\n  scrape_interval: 1s\nscrape_configs:\n'
                '  - job_name: jobq-sidecar\n    static_configs:\n'
                '      - targets: ["127.0.0.1:%d"]\n' % sc.prom_port)
    port = free_port()
    log = open(os.path.join(d, 'log'), 'w')
    p = subprocess.Popen(['prometheus', '--config.file', os.path.join(d, 'prometheus.yml'),
                          '--storage.tsdb.path', os.path.join(d, 'data'),
                          '--web.listen-address', '127.0.0.1:%d' % port], stdout=log, stderr=log)
    _procs.append(p)

    def scraped():
        try:
            return query(port, 'up{job="jobq-sidecar"} == 1 and on() count(jobs_wait_time_milliseconds_bucket) > 0')
        except OSError:
            return None
    wait_until(scraped, 60, 'Prometheus to scrape the sidecar')
    return p, port


def test_histogram_quantile_per_tenant():
    need_prometheus()
    sc = Sidecar('prom')
    tenants = [0, 12, 25, 40]  # medians land in different explicit buckets
    n = max(tenants) + 1
    agent = sc.agent_bg('--tenants', n, '--types', 1, '--snapshots', 1, '--hold-ms', 60000)
    p, port = start_prometheus('prometheus', sc)
    res = query(port, 'histogram_quantile(0.5, sum by (le, tenant_id) (jobs_wait_time_milliseconds_bucket))')
    got = {r['metric']['tenant_id']: float(r['value'][1]) for r in res}
    eq(len(got), n, 'one quantile per tenant')
    for t in tenants:
        lo, hi = expected_bucket(t, 0)
        v = got['tenant-%d' % t]
        check(lo < v <= hi, 'tenant-%d p50 = %g, want in (%g, %g]' % (t, v, lo, hi))
    c = query(port, 'sum(jobs_enqueued_total)')
    eq(float(c[0]['value'][1]), float(sum(10 + t for t in range(n))), 'counter total through Prometheus')
    p.terminate()
    p.wait()
    agent.kill()
    sc.stop()


def test_label_values_are_escaped():
    # Tenant ids are whatever producers send: quotes, backslashes and
    # newlines must be escaped as the text format says, so that the scrape
    # parses and the label values come back unchanged.
    need_prometheus()
    weird = 'say "hi"\\ back\\slash\nnew line \\n not-a-newline'
    sc = Sidecar('promesc')
    agent = sc.agent_bg('--tenant0', weird, '--tenants', 2, '--types', 1, '--hold-ms', 60000)
    wait_until(lambda: 'jobs_enqueued_total{' in sc.scrape(), 10, 'the agent data on /metrics')
    text = sc.scrape()
    esc = 'tenant_id="say \\"hi\\"\\\\ back\\\\slash\\nnew line \\\\n not-a-newline"'
    check(esc in text, 'escaped label %s not in:\n%s' % (esc, text[:1500]))
    r = subprocess.run(['promtool', 'check', 'metrics'], input=text, capture_output=True, text=True, timeout=30)
    out = (r.stdout + r.stderr).strip()
    check('error' not in out and r.returncode in (0, 3), 'promtool cannot parse /metrics (%d): %s' % (r.returncode, out))
    # Lint findings other than the documented ms unit of the seed's metrics are failures.
    other = [l for l in out.splitlines() if l.strip() and 'use base unit "seconds" instead of "milliseconds"' not in l]
    eq(other, [], 'promtool findings')
    p, port = start_prometheus('prometheus-esc', sc)
    got = query(port, 'jobs_enqueued_total')
    values = sorted(x['metric']['tenant_id'] for x in got)
    eq(values, sorted([weird, 'tenant-1']), 'tenant_id label values after a real scrape')
    one = query(port, 'jobs_enqueued_total{tenant_id=%s}' % json.dumps(weird))
    eq([float(x['value'][1]) for x in one], [10.0], 'the series selected by its exact tenant id')
    p.terminate()
    p.wait()
    agent.kill()
    agent.wait()
    sc.stop()


if __name__ == '__main__':
    run_tests([test_histogram_quantile_per_tenant, test_label_values_are_escaped])
