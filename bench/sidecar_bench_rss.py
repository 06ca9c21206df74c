#!/usr/bin/env python3
"""RSS of a real jobq-sidecar process holding 10,000 tenants x 5 job types
from one fake agent (target <= 32 MiB), with the default cardinality limit
(2000 per metric: the rest folds into the overflow series) and with a limit
high enough to keep every series."""
import os
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get('BUILD', 'build')
SIDECAR = os.path.join(BUILD, 'jobq-sidecar')
AGENT = os.path.join(BUILD, 'tests', 'sidecar', 'fake_agent')


def status(pid, key):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])


def measure(limit):
    d = tempfile.mkdtemp(prefix='jobq-sidecar-bench-')
    sock = os.path.join(d, 's.sock')
    out = os.path.join(d, 'otlp.jsonl')
    env = dict(os.environ, OTEL_METRIC_EXPORT_INTERVAL='1000')
    args = [SIDECAR, '--listen', sock, '--prom-listen', 'off', '--otlp-file', out]
    if limit:
        args += ['--cardinality-limit', str(limit)]
    p = subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    base = status(p.pid, 'VmRSS')
    a = subprocess.Popen([AGENT, '--socket', sock, '--tenants', '10000', '--types', '5',
                          '--snapshots', '3', '--interval-ms', '1000', '--hold-ms', '2500'],
                         stdout=subprocess.DEVNULL)
    a.wait()
    rss, hwm = status(p.pid, 'VmRSS'), status(p.pid, 'VmHWM')
    size = os.path.getsize(out)
    p.terminate()
    p.wait()
    subprocess.run(['rm', '-rf', d])
    return base, rss, hwm, size


for limit, label in ((0, 'default limit 2000'), (100000, 'limit 100000, all series kept')):
    base, rss, hwm, size = measure(limit)
    print('sidecar RSS, 10,000 tenants x 5 types (%s): idle %.1f MiB, after 3 snapshots + exports '
          '%.1f MiB, peak %.1f MiB (target <= 32 MiB); %.1f MiB of OTLP JSON written'
          % (label, base / 1024, rss / 1024, hwm / 1024, size / 1048576))
sys.exit(0)
