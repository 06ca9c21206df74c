#!/usr/bin/env python3
"""Resilience of jobq-sidecar's delivery: a long collector outage kept within
the queue bound with drops counted and recovery afterwards, a bounded
shutdown with a final flush, TLS verification, and OTEL_SDK_DISABLED.
Timing checks are bounds with wide margins, never absolute times."""
import os
import re
import shutil
import signal
import subprocess
import time

from test_delivery import M, data_points
from harness import TMP, Peer, Sidecar, check, eq, run_tests, skip_test, wait_until

M = '/v1/metrics'


def gaps(recs):
    return [(b['receivedMs'] - a['receivedMs']) / 1000.0 for a, b in zip(recs, recs[1:])]


def data_points(rec):
    """(metric, attrs, value) of the agent's counters in one decoded request."""
    out = []
    for rm in rec['body'].get('resourceMetrics', []):
        for sm in rm['scopeMetrics']:
            for m in sm['metrics']:
                if m['name'] == 'jobs.enqueued':
                    for p in m['sum']['dataPoints']:
                        out.append((p['timeUnixNano'], p['asInt']))
    return sorted(out)


def test_outage_keeps_memory_bounded_counts_drops_and_recovers():
    peer = Peer('outage')
    port = peer.port
    peer.stop()  # collector down from the start
    qb = 256 * 1024
    sc = Sidecar('outage', peer=peer, interval_ms=100,
                 args=['--queue-bytes', str(qb)], env={'OTEL_EXPORTER_OTLP_TIMEOUT': '1000'})
    agent = sc.agent_bg('--tenants', 200, '--types', 5, '--snapshots', 400, '--interval-ms', 25)
    time.sleep(2)
    rss1 = sc.rss_kib()
    wait_until(lambda: (sc.prom_value('jobq_sidecar_dropped_total', signal='metrics',
                                      reason='queue_full') or 0) > 0, 20, 'queue_full drops')
    time.sleep(4)
    rss2 = sc.rss_kib()
    qbytes = sc.prom_value('jobq_sidecar_queue_bytes', signal='metrics')
    check(qbytes is not None and qbytes <= qb, 'queue bytes %r within the %d limit' % (qbytes, qb))
    check(rss2 - rss1 < 8 * 1024, 'RSS grew %d KiB during the outage (bound 8 MiB)' % (rss2 - rss1))
    drops = sc.prom_value('jobq_sidecar_dropped_total', signal='metrics', reason='queue_full')
    check(drops > 0, 'drops counted')
    peer.port = port
    peer.start()  # the collector comes back on the same port
    wait_until(lambda: peer.records(M), 20, 'delivery after the outage')
    agent.wait()
    time.sleep(1.0)
    ok = sc.prom_value('jobq_sidecar_exported_total', signal='metrics')
    check(ok and ok > 0, 'exported after recovery')
    sc.stop()
    check('keeping the request queued' in sc.logtext(), 'outage logged')


def test_shutdown_flushes_within_its_bound():
    peer = Peer('flush')
    sc = Sidecar('flush', peer=peer, interval_ms=60000, args=['--shutdown-timeout-ms', '3000'])
    sc.agent('--tenants', 1, '--types', 1, '--hold-ms', 100)
    t0 = time.monotonic()
    eq(sc.stop(), 0, 'exit status')
    took = time.monotonic() - t0
    check(took < 5, 'shutdown took %.1fs (bound 3 s + slack)' % took)
    recs = peer.records(M)
    eq(len(recs), 1, 'the final flush sent the metrics once')
    check(data_points(recs[0]), 'the final flush carried the agent data')


def test_shutdown_is_bounded_when_the_collector_is_down():
    peer = Peer('flushdown')
    peer.stop()
    sc = Sidecar('flushdown', peer=peer, interval_ms=60000, args=['--shutdown-timeout-ms', '1500'])
    t0 = time.monotonic()
    eq(sc.stop(), 0, 'exit status')
    took = time.monotonic() - t0
    check(took < 4, 'shutdown took %.1fs with the collector down (bound 1.5 s + slack)' % took)
    check('could not be delivered within --shutdown-timeout-ms' in sc.logtext(), 'undelivered items reported at shutdown')


def test_shutdown_aborts_a_request_in_flight_at_its_deadline():
    # The collector holds the request for 9 s; the request's own timeout
    # is 10 s. SIGTERM with --shutdown-timeout-ms 1000 must not wait for it.
    bound_ms = 1000
    peer = Peer('inflight', script={M: [{'delayMs': 9000}]})
    sc = Sidecar('inflight', peer=peer, interval_ms=300, args=['--shutdown-timeout-ms', str(bound_ms)])
    sc.agent('--tenants', 1, '--types', 1, '--hold-ms', 100)
    wait_until(lambda: peer.records(M), 15, 'the request to reach the slow collector')
    t0 = time.monotonic()
    eq(sc.stop(), 0, 'exit status')
    took = time.monotonic() - t0
    check(took < bound_ms / 1000.0 + 1.0,
          'shutdown took %.2fs with a request in flight (bound %.1f s + 1 s slack)' % (took, bound_ms / 1000.0))
    log = sc.logtext()
    check('aborted at the shutdown deadline' in log, 'the abort is logged: ' + log[-800:])
    check(re.search(r'shutdown: \d+ metric data points could not be delivered within --shutdown-timeout-ms', log),
          'the undelivered items are counted and reported: ' + log[-800:])


def test_tls_verifies_the_collector_certificate():
    if not shutil.which('openssl'):
        skip_test('openssl is missing: cannot make a certificate, TLS verification NOT tested')
    d = os.path.join(TMP, 'tls')
    os.makedirs(d)
    # The sidecar reads the CA file after dropping root: let it in.
    os.chmod(TMP, 0o711)
    os.chmod(d, 0o755)
    cert, key = os.path.join(d, 'cert.pem'), os.path.join(d, 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
                    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
                    '-keyout', key, '-out', cert], check=True, capture_output=True)
    os.chmod(cert, 0o644)
    peer = Peer('tls', tls=(cert, key))
    # Trusted CA: delivered over TLS.
    sc = Sidecar('tls-ok', peer=peer, env={'OTEL_EXPORTER_OTLP_CERTIFICATE': cert})
    wait_until(lambda: peer.records(M), 15, 'a metrics request over TLS')
    sc.stop()
    # Unknown CA: refused by verification, nothing reaches the peer.
    n = len(peer.records())
    sc = Sidecar('tls-untrusted', peer=peer, env={'OTEL_EXPORTER_OTLP_TIMEOUT': '1500'})
    wait_until(lambda: 'keeping the request queued' in sc.logtext(), 15, 'a failed TLS export')
    sc.stop()
    eq(len(peer.records()), n, 'requests delivered without a trusted certificate')
    check('certificate' in sc.logtext().lower(), 'certificate error logged: ' + sc.logtext()[-500:])
    # Trusted CA but the wrong host name: refused too.
    sc = Sidecar('tls-host', env={'OTEL_EXPORTER_OTLP_CERTIFICATE': cert,
                                   'OTEL_EXPORTER_OTLP_ENDPOINT': 'https://localhost:%d' % peer.port,
                                   'OTEL_EXPORTER_OTLP_TIMEOUT': '1500'})
    wait_until(lambda: 'keeping the request queued' in sc.logtext(), 15, 'a failed TLS export')
    sc.stop()
    eq(len(peer.records()), n, 'requests delivered to a host the certificate does not name')


def test_sdk_disabled_sends_nothing_but_serves_prometheus():
    peer = Peer('disabled')
    sc = Sidecar('disabled', peer=peer, interval_ms=100, env={'OTEL_SDK_DISABLED': 'true'})
    sc.agent('--tenants', 1, '--types', 1, '--spans', 1, '--hold-ms', 800)
    eq(sc.prom_value('jobs_enqueued_total', tenant_id='tenant-0', job_type='type-0'), 10.0,
       '/metrics still served')
    sc.stop()
    eq(peer.records(), [], 'requests sent with OTEL_SDK_DISABLED=true')


def test_second_signal_ends_a_flush_to_a_dead_collector_at_once():
    # Ctrl-C waits up to --shutdown-timeout-ms for the final flush; a second
    # Ctrl-C ends it now, as the log line says, with the signal's status.
    peer = Peer('twice')
    peer.stop()
    sc = Sidecar('twice', peer=peer, interval_ms=60000, args=['--shutdown-timeout-ms', '20000'])
    sc.agent('--tenants', 1, '--types', 1, '--hold-ms', 100)
    sc.proc.send_signal(signal.SIGINT)
    wait_until(lambda: 'signal again to exit now' in sc.logtext(), 10, 'the first signal handled')
    t0 = time.monotonic()
    sc.proc.send_signal(signal.SIGINT)
    rc = sc.proc.wait(10)
    took = time.monotonic() - t0
    eq(rc, -signal.SIGINT, 'exit by the second SIGINT')
    check(took < 3, 'the second signal took %.1fs to end the sidecar (flush bound 20 s)' % took)


def test_span_buffer_full_is_counted_and_logged():
    # A batch of 10 spans (5 pairs) into a span buffer of 4: refused whole,
    # counted under buffer_full and said in the log (rate-limited), while
    # the metrics of the same snapshot still go out.
    peer = Peer('spanfull')
    sc = Sidecar('spanfull', peer=peer, interval_ms=200, env={'OTEL_BSP_MAX_QUEUE_SIZE': '4'})
    sc.agent('--tenants', 1, '--types', 1, '--spans', 5, '--hold-ms', 600)
    eq(sc.prom_value('jobq_sidecar_dropped_total', signal='traces', reason='buffer_full'), 10.0,
       'spans dropped as buffer_full')
    wait_until(lambda: 'dropped 10 spans since the last report: span buffer full' in sc.logtext(), 10,
               'the buffer_full log line')
    wait_until(lambda: peer.records(M), 10, 'the metrics of the same snapshot')
    sc.stop()


if __name__ == '__main__':
    run_tests([
        test_outage_keeps_memory_bounded_counts_drops_and_recovers,
        test_shutdown_flushes_within_its_bound,
        test_shutdown_is_bounded_when_the_collector_is_down,
        test_shutdown_aborts_a_request_in_flight_at_its_deadline,
        test_tls_verifies_the_collector_certificate,
        test_sdk_disabled_sends_nothing_but_serves_prometheus,
        test_span_buffer_full_is_counted_and_logged,
        test_second_signal_ends_a_flush_to_a_dead_collector_at_once,
    ])
