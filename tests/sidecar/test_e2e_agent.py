#!/usr/bin/env python3
"""End to end with the real kernel side: jobq-agent (root, BPF) attached to
the probe emitter of tests/bpf sends to jobq-sidecar, which exports to the
official-schema OTLP peer. The exported counters per (queue, tenant, type)
must equal the emitter's job log, the queue exported as
messaging.destination.name on counters and histograms alike; every job must
have a job.enqueue and a linked job.process span, and histograms must keep
count == zero + sum(buckets)."""
import os
import sys
import subprocess
import time

from harness import (BUILD, Peer, Sidecar, attrs, check, eq, metrics_of, run_tests, skip, spans_of,
                     wait_until)

os.environ.setdefault('JOBQ_BUILD', BUILD)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'bpf'))
import agentlib  # noqa: E402  (the bpf part's test helpers: agent, emitter, truth)

GROUPS = ['acme,email,0,30,1000,20,3', 'globex,report,1,12,2000,200,4']


def test_agent_to_collector_exact_counts_and_linked_spans():
    if os.geteuid() != 0:
        skip('needs root to load BPF programs for jobq-agent')
    for b in (agentlib.AGENT, agentlib.EMITTER):
        if not os.access(b, os.X_OK):
            skip('%s is not built (bpf part missing from this tree?)' % b)
    if not os.path.exists('/sys/kernel/btf/vmlinux'):
        skip('kernel has no BTF')
    peer = Peer('e2e')
    sc = Sidecar('e2e', peer=peer, interval_ms=300)
    ag = agentlib.Agent(['--bin', agentlib.EMITTER, '--sidecar', sc.sock, '--interval', '200'])
    ag.wait_attached()
    em = subprocess.run([agentlib.EMITTER, '--wait-attach-ms', '20000'] + GROUPS, capture_output=True,
                        text=True, timeout=60)
    check(em.returncode == 0, 'emitter: %s' % em.stderr)
    jobs, other = agentlib.parse_truth(em.stdout)
    truth = {k: v for k, v in agentlib.truth_counters(jobs, other).items()
             if k[0] in ('jobs.enqueued', 'jobs.started', 'jobs.processed')}

    def exported():
        last = {}
        for ra, _, m in metrics_of(peer.records('/v1/metrics')):
            if m['name'] not in ('jobs.enqueued', 'jobs.started', 'jobs.processed'):
                continue
            cur = {}
            for p in m['sum']['dataPoints']:
                a = attrs(p['attributes'])
                k = (m['name'], a.get('messaging.destination.name'), a.get('tenant.id', ''),
                     a.get('job.type', ''), a.get('job.priority', ''), a.get('job.status', ''))
                cur[k] = cur.get(k, 0) + int(p['asInt'])
            last.update({(m['name'],) + k[1:]: v for k, v in cur.items()})
        return last
    wait_until(lambda: exported() == truth, 20, 'exported counters equal to the job log')
    rc, _, err = ag.stop()
    check(rc == 0, 'agent exit %d: %s' % (rc, err))
    time.sleep(0.8)

    spans = [s for _, s in spans_of(peer.records('/v1/traces'))]
    enq = {attrs(s['attributes']).get('job.id'): s for s in spans if s['name'] == 'job.enqueue'}
    proc = {attrs(s['attributes']).get('job.id'): s for s in spans if s['name'] == 'job.process'}
    eq((len(enq), len(proc)), (len(jobs), len(jobs)), 'enqueue and process spans, one per job')
    for j in jobs:
        e, p = enq[j['id']], proc[j['id']]
        tid = '%016x%016x' % (j['trace_hi'], j['trace_lo'])
        eq((e['kind'], e['traceId'], e['spanId']), (4, tid, '%016x' % j['span_id']), 'enqueue span')
        eq(p['kind'], 5, 'process span kind')
        eq([(l['traceId'], l['spanId']) for l in p.get('links', [])], [(tid, '%016x' % j['span_id'])],
           'process span links to its enqueue span')
        eq(attrs(p['attributes']).get('messaging.message.id'), str(j['id']), 'message id as a string')
        eq(p.get('status', {}).get('code', 0), 2 if j['status'] == 'failed' else 0, 'status code')
    hists = set()
    for _, _, m in metrics_of(peer.records('/v1/metrics')):
        for p in m.get('exponentialHistogram', {}).get('dataPoints', []):
            a = attrs(p['attributes'])
            eq(int(p['count']), int(p.get('zeroCount', 0)) +
               sum(int(b) for b in p.get('positive', {}).get('bucketCounts', [])),
               '%s count identity' % m['name'])
            eq(a.get('messaging.destination.name'), 'default', '%s queue attribute' % m['name'])
            hists.add((m['name'], a.get('tenant.id'), a.get('job.type')))
    eq(len(hists), 2 * 2, 'wait and duration histograms of the two series')
    sc.stop()


if __name__ == '__main__':
    run_tests([test_agent_to_collector_exact_counts_and_linked_spans])
