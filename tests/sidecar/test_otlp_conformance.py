#!/usr/bin/env python3
"""What jobq-sidecar sends, decoded by the official OTLP schema (node peer):
exact names, units, attributes, temporality, start times, timestamps, bucket
counts, spans with kinds, links and status, resource, JSON and gzip paths,
explicit histograms, delta temporality, restarts, cardinality overflow,
UTF-8 repair, starvation check, env-var precedence and the file output."""
import json
import os
import re
import time
import urllib.request

from harness import (Peer, Sidecar, attrs, check, eq, metrics_of, otlp_json_file_violations, run_tests,
                     spans_of, wait_until, TMP)

START = 1700000000123456789  # agent start, ns: every cumulative series starts here


def snapshot_times(agent_stdout):
    return [int(l.split()[2]) for l in agent_stdout.splitlines() if l.startswith('snapshot ')]


def metric(recs, name, agent_id=None):
    """The metric `name` from the LAST request that has it (for one agent)."""
    found = None
    for ra, scope, m in metrics_of(recs):
        if m['name'] == name and (agent_id is None or ra.get('jobq.agent.id') == agent_id):
            found = (ra, scope, m)
    return found


def points(m):
    for kind in ('sum', 'gauge', 'histogram', 'exponentialHistogram'):
        if kind in m:
            return kind, m[kind], m[kind].get('dataPoints', [])
    raise AssertionError('metric %s has no data' % m['name'])


def run_agent_and_wait(sc, peer, *agent_args, name='jobs.enqueued', want=None):
    r = sc.agent(*agent_args)
    times = snapshot_times(r.stdout)

    def ready():
        f = metric(peer.records('/v1/metrics'), name)
        return f if f and (want is None or want(f)) else None
    wait_until(ready, 15, 'the metric %s at the peer' % name)
    return times


def test_metrics_protobuf_exact_values():
    peer = Peer('exact')
    sc = Sidecar('exact', peer=peer)
    # Two snapshots; the values of the second (s=1) must be what is exported.
    times = run_agent_and_wait(sc, peer, '--start-ns', START, '--tenants', 2, '--types', 2,
                               '--snapshots', 2, '--interval-ms', 20, '--hold-ms', 900,
                               want=lambda f: any(p.get('asInt') == '20' for p in points(f[2])[2]))
    recs = peer.records('/v1/metrics')
    eq(recs[-1]['contentType'], 'application/x-protobuf', 'content type')
    eq(recs[-1]['contentEncoding'], '', 'content encoding')

    ra, scope, m = metric(recs, 'jobs.enqueued')
    eq(ra.get('service.name'), 'jobq-worker', 'service.name')
    eq(ra.get('host.name'), 'fake-host', 'host.name from Hello')
    eq(ra.get('jobq.agent.id'), 'fake-agent', 'agent identity')
    eq(ra.get('jobq.agent.pid'), 4242, 'agent pid')
    eq(ra.get('process.pid'), 4242, 'process.pid (semantic conventions) of the agent')
    check('process.executable.name' not in ra, 'the sidecar\'s own process attributes on an agent resource')
    eq(ra.get('jobq.agent.target'), 'pid:4242', 'agent target')
    eq(scope.get('name'), 'jobq', 'scope name')
    eq(m.get('unit'), '1', 'jobs.enqueued unit')
    kind, data, dps = points(m)
    eq(kind, 'sum', 'jobs.enqueued kind')
    eq(data.get('isMonotonic'), True, 'jobs.enqueued monotonic')
    eq(data.get('aggregationTemporality'), 2, 'jobs.enqueued temporality (CUMULATIVE)')
    got = {}
    for p in dps:
        a = attrs(p['attributes'])
        got[(a['tenant.id'], a['job.type'])] = p
        eq(a.get('job.priority'), 'high' if a['tenant.id'] == 'tenant-0' else 'normal', 'job.priority')
        eq(a.get('messaging.destination.name'), 'default', 'queue attribute')
        eq(p['startTimeUnixNano'], str(START), 'start time = agent series start')
        eq(p['timeUnixNano'], str(times[1]), 'exact nanosecond timestamp of the snapshot')
    for t in range(2):
        for y in range(2):
            eq(got[('tenant-%d' % t, 'type-%d' % y)].get('asInt'), str(2 * (10 + t + y)),
               'jobs.enqueued tenant-%d type-%d' % (t, y))

    _, _, m = metric(recs, 'jobs.processed')
    for p in points(m)[2]:
        a = attrs(p['attributes'])
        eq(a.get('job.status'), 'success', 'job.status')
        t, y = int(a['tenant.id'][-1]), int(a['job.type'][-1])
        eq(p['asInt'], str(2 * (5 + t + y)), 'jobs.processed value')

    _, _, m = metric(recs, 'jobs.queue_depth')
    kind, data, dps = points(m)
    eq(kind, 'sum', 'queue_depth is an UpDownCounter (Sum)')
    eq(data.get('isMonotonic', False), False, 'queue_depth non-monotonic')
    eq(data.get('aggregationTemporality'), 2, 'queue_depth cumulative')
    for p in dps:
        a = attrs(p['attributes'])
        eq(set(a), {'tenant.id', 'job.priority', 'messaging.destination.name'}, 'queue_depth attributes')
        eq(p.get('asDouble'), float(int(a['tenant.id'][-1]) + 1), 'queue_depth value')

    _, _, m = metric(recs, 'jobs.oldest_job_age')
    eq(m.get('unit'), 'ms', 'oldest_job_age unit')
    eq(points(m)[0], 'gauge', 'oldest_job_age is a Gauge')

    _, _, m = metric(recs, 'jobs.wait_time')
    eq(m.get('unit'), 'ms', 'wait_time unit')
    kind, data, dps = points(m)
    eq(kind, 'exponentialHistogram', 'wait_time default aggregation')
    eq(data.get('aggregationTemporality'), 2, 'wait_time temporality')
    eq(len(dps), 4, 'wait_time series')
    for p in dps:
        a = attrs(p['attributes'])
        t = int(a['tenant.id'][-1])
        eq(p.get('scale'), 3, 'scale')
        eq(p.get('zeroCount'), '1', 'zero count')
        eq(p['positive'].get('offset', 0), 10 + t, 'bucket offset')
        eq(p['positive']['bucketCounts'], ['2', '2', '3'], 'bucket counts')
        eq(p['count'], '8', 'count')
        eq(int(p['count']), int(p['zeroCount']) + sum(int(b) for b in p['positive']['bucketCounts']),
           'count == zero_count + sum(buckets)')
        eq(p.get('sum'), 200.0, 'sum')
        eq(p.get('min'), 0.0, 'min')
        eq(p.get('max'), 40.0, 'max')
        eq(p['startTimeUnixNano'], str(START), 'histogram start time')

    _, _, m = metric(recs, 'jobq.agent.lost')
    dps = points(m)[2]
    eq([(attrs(p['attributes']).get('reason'), p['asInt']) for p in dps], [('ringbuf_full', '7')],
       'kernel losses exported by reason')

    selfm = {m['name']: m for _, _, m in metrics_of(recs[-1:])}
    for n in ('jobq.sidecar.exported.points', 'jobq.sidecar.dropped.points', 'jobq.sidecar.retries',
              'jobq.sidecar.queue.bytes', 'jobq.sidecar.queue.limit'):
        check(n in selfm, 'self-metric %s missing from %s' % (n, sorted(selfm)))
    for n in ('jobq.sidecar.queue.bytes', 'jobq.sidecar.queue.limit'):
        eq(selfm[n].get('unit'), 'By', '%s unit' % n)
        eq(points(selfm[n])[1].get('isMonotonic', False), False, '%s is an UpDownCounter' % n)
    for sig in ('metrics', 'traces'):
        eq(self_point(recs[-1:], 'jobq.sidecar.queue.limit', signal=sig), 16 << 20,
           'the configured queue limit (default --queue-bytes) for %s' % sig)
        eq(sc.prom_value('jobq_sidecar_queue_limit_bytes', signal=sig), float(16 << 20),
           '/metrics jobq_sidecar_queue_limit_bytes{signal="%s"}' % sig)
    eq(sc.stop(), 0, 'sidecar exit status after SIGTERM')


def test_spans_kinds_links_status_and_messaging_attributes():
    peer = Peer('spans')
    sc = Sidecar('spans', peer=peer)
    sc.agent('--spans', 2, '--hold-ms', 600)
    wait_until(lambda: len([s for _, s in spans_of(peer.records('/v1/traces'))
                            if s['name'].startswith('job.')]) >= 4, 15, '4 agent spans')
    spans = {}
    for ra, s in spans_of(peer.records('/v1/traces')):
        if s['name'].startswith('job.'):
            spans[(s['name'], s['spanId'])] = (ra, s)
    eq(len(spans), 4, 'agent spans exported once each')
    for i in range(2):
        ra, e = spans[('job.enqueue', 'aaaaaaaaaaaa%04x' % i)]
        eq(ra.get('jobq.agent.id'), 'fake-agent', 'span resource agent identity')
        eq(e['traceId'], '11' * 14 + '%04x' % i, 'enqueue trace id')
        eq(e.get('kind'), 4, 'job.enqueue kind PRODUCER')
        a = attrs(e['attributes'])
        eq(a.get('messaging.system'), 'jobq', 'messaging.system')
        eq(a.get('messaging.operation.type'), 'create', 'enqueue messaging.operation.type')
        eq(a.get('messaging.destination.name'), 'default', 'messaging.destination.name')
        eq(a.get('messaging.message.id'), str(1000 + i), 'messaging.message.id')
        eq(a.get('job.id'), 1000 + i, 'job.id kept')
        _, p = spans[('job.process', 'bbbbbbbbbbbb%04x' % i)]
        eq(p.get('kind'), 5, 'job.process kind CONSUMER')
        eq(attrs(p['attributes']).get('messaging.operation.type'), 'process', 'process op type')
        eq(len(p.get('links', [])), 1, 'one link')
        eq(p['links'][0]['traceId'], e['traceId'], 'link trace id = enqueue trace')
        eq(p['links'][0]['spanId'], e['spanId'], 'link span id = enqueue span')
        eq(int(p['endTimeUnixNano']) - int(p['startTimeUnixNano']), 7000, 'exact span duration (ns)')
        if i % 2:
            eq(p.get('status', {}).get('code'), 2, 'error status code')
            eq(p.get('status', {}).get('message'), 'boom', 'error status message')
        else:
            eq(p.get('status', {}).get('code', 0), 0, 'unset status')
    sc.stop()


def test_disconnected_agent_last_spans_keep_its_resource():
    # Spans wait for the batch delay (5 s) but the metrics export (300 ms)
    # comes first: the agent, gone by then, must still own its spans.
    peer = Peer('lastspans')
    sc = Sidecar('lastspans', peer=peer, interval_ms=300, env={'OTEL_BSP_SCHEDULE_DELAY': '5000'})
    sc.agent('--agent-id', 'short-lived', '--spans', 1)  # sends, then disconnects at once

    def agent_spans():
        return [(ra, s) for ra, s in spans_of(peer.records('/v1/traces')) if s['name'].startswith('job.')]
    wait_until(lambda: len(agent_spans()) >= 2, 15, 'the agent spans')
    eq(len(agent_spans()), 2, 'agent spans exported once each')
    for ra, s in agent_spans():
        eq(ra.get('jobq.agent.id'), 'short-lived', '%s resource: the agent identity' % s['name'])
        eq(ra.get('process.pid'), 4242, '%s resource process.pid' % s['name'])
        eq(ra.get('host.name'), 'fake-host', '%s resource host.name' % s['name'])
        check('process.executable.name' not in ra,
              '%s exported under the sidecar resource: %r' % (s['name'], ra))
    # Its metrics went out once more, under its resource too.
    m = metric(peer.records('/v1/metrics'), 'jobs.enqueued', agent_id='short-lived')
    check(m is not None, 'the disconnected agent\'s final metrics were exported')
    sc.stop()


def test_starvation_check_span_and_event():
    peer = Peer('starve')
    sc = Sidecar('starve', peer=peer, args=['--starvation-threshold-s', '300'])

    def checks():
        return [s for _, s in spans_of(peer.records('/v1/traces')) if s['name'] == 'jobs.starvation_check']
    wait_until(checks, 10, 'a starvation check without agents')
    eq(attrs(checks()[0]['attributes']).get('jobs.starving_tenant_count'), 0,
       'no agent data: 0 starving tenants')
    check(not checks()[0].get('events'), 'no event when nobody starves')
    sc.agent('--tenants', 5, '--types', 1, '--starving', 'tenant-3,tenant-1', '--starving-ms', 300001,
             '--hold-ms', 800)

    def with_event():
        for _, s in spans_of(peer.records('/v1/traces')):
            if s['name'] == 'jobs.starvation_check' and s.get('events'):
                return s
    s = wait_until(with_event, 15, 'a starvation check with an event')
    eq(s.get('kind'), 1, 'starvation check kind INTERNAL')
    eq(attrs(s['attributes']).get('jobs.starving_tenant_count'), 2, 'jobs.starving_tenant_count')
    eq(s['events'][0]['name'], 'Queue starvation detected', 'event name')
    eq(attrs(s['events'][0]['attributes']).get('affected_tenants'), 'tenant-1,tenant-3', 'affected_tenants')
    sc.stop()


def test_json_and_gzip_paths_decode_to_the_same_values():
    peer = Peer('jsongz')
    sc = Sidecar('jsongz', peer=peer, env={'OTEL_EXPORTER_OTLP_PROTOCOL': 'http/json',
                                           'OTEL_EXPORTER_OTLP_COMPRESSION': 'gzip'})
    run_agent_and_wait(sc, peer, '--start-ns', START, '--spans', 1, '--hold-ms', 600)
    wait_until(lambda: spans_of(peer.records('/v1/traces')), 10, 'spans over JSON')
    rec = peer.records('/v1/metrics')[-1]
    eq(rec['contentType'], 'application/json', 'content type')
    eq(rec['contentEncoding'], 'gzip', 'content encoding')
    # The raw bodies keep the OTLP/JSON rules (int64 as strings, integer
    # enums, hex ids, lowerCamelCase keys), which the decoder would forgive.
    for r in peer.records():
        eq(r.get('jsonViolations'), [], 'OTLP/JSON rule violations in a %s request' % r['path'])
    _, _, m = metric(peer.records('/v1/metrics'), 'jobs.enqueued')
    vals = sorted(p['asInt'] for p in points(m)[2])
    eq(vals, ['10', '11', '11', '12'], 'jobs.enqueued values over JSON')
    eq({p['startTimeUnixNano'] for p in points(m)[2]}, {str(START)}, 'start times over JSON')
    _, _, h = metric(peer.records('/v1/metrics'), 'jobs.wait_time')
    eq(points(h)[2][0]['positive']['bucketCounts'], ['1', '2', '3'], 'buckets over JSON')
    _, p = [x for x in spans_of(peer.records('/v1/traces')) if x[1]['name'] == 'job.process'][0]
    eq(p['links'][0]['spanId'], 'aaaaaaaaaaaa0000', 'hex span id over JSON')
    sc.stop()


def test_explicit_bucket_histogram_view():
    peer = Peer('explicit')
    sc = Sidecar('explicit', peer=peer, env={
        'OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION': 'explicit_bucket_histogram'})
    run_agent_and_wait(sc, peer, '--tenants', 1, '--types', 1, '--hold-ms', 600, name='jobs.wait_time')
    _, _, m = metric(peer.records('/v1/metrics'), 'jobs.wait_time')
    kind, data, dps = points(m)
    eq(kind, 'histogram', 'explicit aggregation kind')
    eq(data.get('aggregationTemporality'), 2, 'temporality')
    eq(dps[0]['explicitBounds'], [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000],
       'the seed\'s boundaries')
    # Exponential buckets 10..12 at scale 3 end at 2^(11/8)..2^(13/8) ms: all in (0, 5].
    eq(dps[0]['bucketCounts'], ['1', '6'] + ['0'] * 14, 'explicit bucket counts')
    eq(dps[0]['count'], '7', 'count')
    sc.stop()


def delta_points(recs, name='jobs.enqueued'):
    seq = []
    for ra, _, m in metrics_of(recs):
        if m['name'] == name:
            kind, data, dps = points(m)
            eq(data.get('aggregationTemporality'), 1, '%s temporality DELTA' % name)
            seq += dps
    return seq


def test_delta_temporality_is_contiguous_and_sums_to_the_cumulative():
    peer = Peer('delta')
    sc = Sidecar('delta', peer=peer, env={'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE': 'delta'})
    start = time.time_ns()  # an agent (and series) started after the sidecar
    sc.agent('--start-ns', start, '--tenants', 1, '--types', 1, '--snapshots', 3, '--interval-ms', 500,
             '--hold-ms', 700)
    time.sleep(0.5)
    seq = []
    for ra, _, m in metrics_of(peer.records('/v1/metrics')):
        if m['name'] == 'jobs.enqueued':
            kind, data, dps = points(m)
            eq(data.get('aggregationTemporality'), 1, 'counter temporality DELTA')
            seq += dps
        if m['name'] == 'jobs.queue_depth':
            eq(points(m)[1].get('aggregationTemporality'), 2, 'UpDownCounter stays CUMULATIVE')
        if m['name'] == 'jobs.wait_time':
            eq(points(m)[1].get('aggregationTemporality'), 1, 'histogram temporality DELTA')
    check(len(seq) >= 3, 'expected >= 3 delta points, got %d' % len(seq))
    eq(seq[0]['startTimeUnixNano'], str(start), 'first delta starts at the series start')
    for a, b in zip(seq, seq[1:]):
        eq(b['startTimeUnixNano'], a['timeUnixNano'], 'delta intervals are contiguous')
    eq(sum(int(p.get('asInt', 0)) for p in seq), 3 * 10, 'deltas sum to the final cumulative value')
    sc.stop()


def test_delta_after_a_sidecar_restart_does_not_re_report_the_past():
    # Series that started before this sidecar (as after a sidecar restart):
    # what was counted until the first observation was (in part) exported by
    # the previous sidecar. That observation is only the baseline.
    peer = Peer('delta-restart')
    sc = Sidecar('delta-restart', peer=peer, env={'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE': 'delta'})
    r = sc.agent('--start-ns', START, '--tenants', 1, '--types', 1, '--snapshots', 3, '--interval-ms', 500,
                 '--hold-ms', 700)
    times = snapshot_times(r.stdout)
    time.sleep(0.5)
    seq = delta_points(peer.records('/v1/metrics'))
    check(len(seq) >= 2, 'expected >= 2 delta points, got %d' % len(seq))
    check(all(p['startTimeUnixNano'] != str(START) for p in seq),
          'a delta point re-reports everything since the series start: %r' % seq[0])
    first = int(seq[0]['startTimeUnixNano'])
    check(first in times[:2], 'the first delta starts at an observed snapshot (%d not in %r)' % (first, times))
    baseline = 10 * (times.index(first) + 1)
    for a, b in zip(seq, seq[1:]):
        eq(b['startTimeUnixNano'], a['timeUnixNano'], 'delta intervals are contiguous')
    eq(sum(int(p.get('asInt', 0)) for p in seq), 30 - baseline, 'deltas sum to the growth after the baseline')
    hs = delta_points(peer.records('/v1/metrics'), 'jobs.wait_time')
    check(all(p['startTimeUnixNano'] != str(START) for p in hs), 'a histogram delta re-reports the past')
    eq(sum(int(p.get('count', 0)) for p in hs), 9 - (7 + times.index(first)), 'histogram deltas after the baseline')
    sc.stop()


def test_restarted_agent_starts_new_series():
    peer = Peer('restart')
    sc = Sidecar('restart', peer=peer)
    sc.agent('--start-ns', START, '--tenants', 1, '--types', 1, '--snapshots', 3, '--interval-ms', 10)
    wait_until(lambda: metric(peer.records('/v1/metrics'), 'jobs.enqueued'), 10, 'first agent data')
    start2 = START + 10**9
    agent2 = sc.agent_bg('--start-ns', start2, '--tenants', 1, '--types', 1, '--hold-ms', 2000)
    n0 = len(peer.records('/v1/metrics'))
    time.sleep(1.2)  # > 2 intervals: the old agent's last export is behind us
    last = peer.records('/v1/metrics')[-1]
    agent2.wait()
    check(len(peer.records('/v1/metrics')) > n0, 'exports went on')
    starts = set()
    for ra, _, m in metrics_of([last]):
        if m['name'] == 'jobs.enqueued':
            starts |= {p['startTimeUnixNano'] for p in points(m)[2]}
            eq([p['asInt'] for p in points(m)[2]], ['10'], 'restarted agent value, not 30 + 10')
    eq(starts, {str(start2)}, 'only the restarted agent\'s series remain, with its start time')
    sc.stop()


def test_cardinality_limit_folds_into_one_overflow_series():
    peer = Peer('card')
    sc = Sidecar('card', peer=peer, args=['--cardinality-limit', '3'])
    run_agent_and_wait(sc, peer, '--tenants', 2, '--types', 2, '--overflow-key', '--hold-ms', 600)
    _, _, m = metric(peer.records('/v1/metrics'), 'jobs.enqueued')
    dps = points(m)[2]
    eq(len(dps), 4, '3 series + 1 overflow series')
    over = [p for p in dps if attrs(p['attributes']).get('otel.metric.overflow') is True]
    eq(len(over), 1, 'exactly one overflow series')
    eq(attrs(over[0]['attributes']), {'otel.metric.overflow': True}, 'overflow series attributes')
    eq(sum(int(p['asInt']) for p in dps), 10 + 11 + 11 + 12 + 99, 'no value lost to folding')
    sc.stop()


def self_point(recs, name, **labels):
    """Value of the sidecar self-metric point name{labels} in the last request that has it."""
    val = None
    for ra, _, m in metrics_of(recs):
        if m['name'] != name:
            continue
        for p in points(m)[2]:
            a = attrs(p['attributes'])
            if all(a.get(k) == v for k, v in labels.items()):
                val = int(p['asInt'])
    return val


def test_invalid_histograms_are_dropped_counted_and_logged():
    peer = Peer('badhist')
    sc = Sidecar('badhist', peer=peer)
    # 2 snapshots x 4 histograms whose count is zero_count + sum(buckets) + 1.
    sc.agent('--tenants', 2, '--types', 2, '--snapshots', 2, '--interval-ms', 100, '--bad-hist-count',
             '--hold-ms', 400)
    want = 2 * 4
    wait_until(lambda: self_point(peer.records('/v1/metrics'), 'jobq.sidecar.dropped.points',
                                  signal='metrics', reason='invalid') == want, 15,
               'jobq.sidecar.dropped.points{reason=invalid} = %d in OTLP' % want)
    eq(sc.prom_value('jobq_sidecar_dropped_total', signal='metrics', reason='invalid'), float(want),
       '/metrics jobq_sidecar_dropped_total{reason="invalid"}')
    eq(self_point(peer.records('/v1/metrics'), 'jobq.sidecar.dropped.points', signal='metrics',
                  reason='metric_limit'), 0, 'metric_limit drops')
    check(metric(peer.records('/v1/metrics'), 'jobs.wait_time') is None, 'an invalid histogram was exported')
    check(metric(peer.records('/v1/metrics'), 'jobs.enqueued') is not None, 'the valid points still flow')
    sc.stop()
    lines = [l for l in sc.logtext().splitlines() if 'agent metric points since the last report' in l]
    eq(len(lines), 1, 'log lines about the drops within 10 s (rate-limited to one)')
    # Snapshot 0 (count 8 for 7) or, if both came in one read, snapshot 1 (9 for 8).
    check(re.search(r'agent fake-agent: jobs\.wait_time: count (8|9) != zero_count \+ sum\(bucket_counts\) = (7|8)$',
                    lines[0]), 'the reason is logged: ' + lines[0])


def test_invalid_utf8_is_repaired_in_protobuf_and_json():
    for proto in ('http/protobuf', 'http/json'):
        tag = proto.replace('/', '_')
        peer = Peer('utf8' + tag)
        sc = Sidecar('utf8' + tag, peer=peer, env={'OTEL_EXPORTER_OTLP_PROTOCOL': proto})
        run_agent_and_wait(sc, peer, '--tenants', 1, '--types', 1, '--bad-utf8', '--spans', 1, '--hold-ms', 600)
        wait_until(lambda: spans_of(peer.records('/v1/traces')), 10, 'spans')
        _, _, m = metric(peer.records('/v1/metrics'), 'jobs.enqueued')
        eq(attrs(points(m)[2][0]['attributes'])['tenant.id'], 'tenant-0\ufffd', proto + ' tenant.id repaired')
        e = [s for _, s in spans_of(peer.records('/v1/traces')) if s['name'] == 'job.enqueue'][0]
        eq(attrs(e['attributes'])['tenant.id'], 'tenant-0\ufffd', proto + ' span attribute repaired')
        if proto == 'http/json':
            check(all(r.get('validUtf8') for r in peer.records()), 'every JSON body is valid UTF-8')
        sc.stop()
        peer.stop()


def test_env_precedence_per_signal_over_generic():
    peer = Peer('env')
    sc = Sidecar('env', env={
        'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://127.0.0.1:9',  # wrong on purpose: per-signal wins
        'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT': peer.url + '/v1/metrics',
        'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT': peer.url + '/v1/traces',
        'OTEL_EXPORTER_OTLP_HEADERS': 'x-a=generic,x-b=2',
        'OTEL_EXPORTER_OTLP_METRICS_HEADERS': 'x-a=metrics%20only',
        'OTEL_RESOURCE_ATTRIBUTES': 'service.name=from-attrs,deployment.environment=test%20env',
        'OTEL_SERVICE_NAME': 'svc',
        'OTEL_EXPORTER_OTLP_COMPRESSION': 'zstd',
    })
    sc.agent('--spans', 1, '--hold-ms', 700)
    wait_until(lambda: peer.records('/v1/metrics') and spans_of(peer.records('/v1/traces')), 10,
               'both signals at the per-signal endpoints')
    mh = peer.records('/v1/metrics')[-1]['headers']
    th = peer.records('/v1/traces')[-1]['headers']
    eq((mh.get('x-a'), mh.get('x-b')), ('metrics only', None), 'metrics headers (per-signal replaces)')
    eq((th.get('x-a'), th.get('x-b')), ('generic', '2'), 'traces headers (generic)')
    eq(peer.records('/v1/metrics')[-1]['contentEncoding'], '', 'invalid compression falls back to none')
    ra = [ra for ra, _, m in metrics_of(peer.records('/v1/metrics')) if m['name'] == 'jobs.enqueued'][0]
    eq(ra.get('service.name'), 'svc', 'OTEL_SERVICE_NAME wins over OTEL_RESOURCE_ATTRIBUTES')
    eq(ra.get('deployment.environment'), 'test env', 'percent-decoded resource attribute')
    sc.stop()
    check('OTEL_EXPORTER_OTLP_COMPRESSION="zstd"' in sc.logtext(), 'warning for the invalid compression')


def test_otlp_file_output_json_lines():
    out = os.path.join(TMP, 'file-out.jsonl')
    sc = Sidecar('file', args=['--otlp-file', out])
    sc.agent('--spans', 1, '--hold-ms', 700)
    sc.stop()
    with open(out) as f:
        lines = [json.loads(l) for l in f]
    check(any('resourceMetrics' in l for l in lines), 'metrics lines in the file')
    spans = [s for l in lines for rs in l.get('resourceSpans', []) for ss in rs['scopeSpans'] for s in ss['spans']]
    e = [s for s in spans if s['name'] == 'job.enqueue'][0]
    eq(e['traceId'], '11' * 14 + '0000', 'hex trace id in the file')
    eq(e['kind'], 4, 'enum as integer')
    check(isinstance(e['startTimeUnixNano'], str), 'fixed64 as a decimal string')
    m = [m for l in lines for rm in l.get('resourceMetrics', []) for sm in rm['scopeMetrics']
         for m in sm['metrics'] if m['name'] == 'jobs.enqueued'][0]
    check('aggregationTemporality' in m['sum'] and 'dataPoints' in m['sum'], 'lowerCamelCase keys')
    # Every line against the official schema's rules, not just a few fields.
    eq(otlp_json_file_violations(out), [], 'OTLP/JSON rule violations in the file')


def test_raw_json_checker_catches_rule_violations():
    # The checker behind the two tests above must itself see each kind of
    # violation, in a file and in an HTTP body at the peer.
    bad = {'resourceSpans': [{'resource': {'attributes': [{'key': 'n', 'value': {'intValue': 5}}]},
                              'scopeSpans': [{'spans': [{
                                  'traceId': 'ESIzRFVmd4iZqrvM3e7/AA==', 'spanId': 'ABABABABABABABAB',
                                  'kind': 'SPAN_KIND_CONSUMER', 'start_time_unix_nano': '1',
                                  'endTimeUnixNano': 2, 'name': 'x'}]}]}]}
    want = ['intValue: 64-bit integer must be a decimal string', 'traceId must be 32 lowercase hex digits',
            'spanId must be 16 lowercase hex digits', 'enum SpanKind must be an integer',
            '"start_time_unix_nano" is not a lowerCamelCase field of Span',
            'endTimeUnixNano: 64-bit integer must be a decimal string']
    path = os.path.join(TMP, 'bad.jsonl')
    with open(path, 'w') as f:
        f.write(json.dumps(bad) + '\n')
    got = otlp_json_file_violations(path)
    for w in want:
        check(any(w in g for g in got), 'the checker misses "%s" in a file: %r' % (w, got))
    eq(len(got), len(want), 'violations found in the file')
    peer = Peer('rawjson')
    req = urllib.request.Request(peer.url + '/v1/traces', data=json.dumps(bad).encode(),
                                 headers={'Content-Type': 'application/json'})
    urllib.request.urlopen(req, timeout=10).read()
    rec = peer.records('/v1/traces')[0]
    for w in want:
        check(any(w in g for g in rec['jsonViolations']), 'the peer misses "%s": %r' % (w, rec['jsonViolations']))
    try:
        spans_of([rec])
    except AssertionError as e:
        check('OTLP/JSON rules broken' in str(e), 'unexpected failure: %s' % e)
    else:
        raise AssertionError('spans_of accepted a request that breaks the OTLP/JSON rules')
    peer.stop()


if __name__ == '__main__':
    run_tests([
        test_metrics_protobuf_exact_values,
        test_spans_kinds_links_status_and_messaging_attributes,
        test_disconnected_agent_last_spans_keep_its_resource,
        test_starvation_check_span_and_event,
        test_json_and_gzip_paths_decode_to_the_same_values,
        test_explicit_bucket_histogram_view,
        test_delta_temporality_is_contiguous_and_sums_to_the_cumulative,
        test_delta_after_a_sidecar_restart_does_not_re_report_the_past,
        test_restarted_agent_starts_new_series,
        test_cardinality_limit_folds_into_one_overflow_series,
        test_invalid_histograms_are_dropped_counted_and_logged,
        test_invalid_utf8_is_repaired_in_protobuf_and_json,
        test_env_precedence_per_signal_over_generic,
        test_otlp_file_output_json_lines,
        test_raw_json_checker_catches_rule_violations,
    ])
