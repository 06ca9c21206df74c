#!/usr/bin/env python3
"""OTLP/HTTP delivery of jobq-sidecar against a scripted peer: Retry-After
(seconds and HTTP-date) honoured, 400 and partial success never retried but
counted, closed connections and slow responses retried (see
test_resilience.py for outages, shutdown and TLS). Timing checks are bounds with wide
margins (the machine is noisy), never absolute times."""
import email.utils
import time

from harness import Peer, Sidecar, check, eq, run_tests, wait_until

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


def test_503_retry_after_seconds_is_honoured():
    peer = Peer('503', script={M: [{'status': 503, 'retryAfter': 2}]})
    sc = Sidecar('503', peer=peer, interval_ms=5000, args=['--shutdown-timeout-ms', '1000'])
    sc.agent('--hold-ms', 300)
    recs = wait_until(lambda: len(peer.records(M)) >= 2 and peer.records(M), 20, 'the retry')
    g = gaps(recs)[0]
    check(1.9 <= g <= 4.5, 'retry came %.2fs after the 503 with Retry-After: 2 (want 2..4.5 s)' % g)
    eq(data_points(recs[1]), data_points(recs[0]), 'the retry carries the same request')
    eq(sc.prom_value('jobq_sidecar_retries_total', signal='metrics'), 1.0, 'retries counted')
    sc.stop()


def test_retry_after_longer_than_the_export_timeout_is_honoured():
    # Retry-After: 20 under the default 10 s export timeout: the request
    # stays queued and nothing is sent to the collector for 20 s.
    peer = Peer('503long', script={M: [{'status': 503, 'retryAfter': 20}]})
    sc = Sidecar('503long', peer=peer, interval_ms=5000)
    sc.agent('--tenants', 1, '--types', 1, '--hold-ms', 300)
    recs = wait_until(lambda: len(peer.records(M)) >= 2 and peer.records(M), 40, 'the resend')
    g = gaps(recs)[0]
    check(19.5 <= g <= 26, 'resend %.2fs after a 503 with Retry-After: 20 (want 20..26 s)' % g)
    eq(data_points(recs[1]), data_points(recs[0]), 'the kept request is the one sent again')
    sc.stop()
    check('next attempt in 20000 ms (Retry-After)' in sc.logtext(), 'the wait is logged: ' + sc.logtext()[-600:])


def test_retry_after_zero_does_not_cause_a_retry_storm():
    # The backoff (1 s x 1.5^n, jitter [d/2, d)) is the floor of any
    # server-requested delay: consecutive attempts are >= 0.5 s apart.
    peer = Peer('503zero', script={M: [{'status': 503, 'retryAfter': 0}] * 500})
    sc = Sidecar('503zero', peer=peer, interval_ms=1000, args=['--shutdown-timeout-ms', '500'])
    wait_until(lambda: peer.records(M), 20, 'the first metrics request')
    window = 6.0
    time.sleep(window)
    recs = peer.records(M)
    t0 = recs[0]['receivedMs']
    inside = [r for r in recs if r['receivedMs'] - t0 <= window * 1000]
    sc.stop()
    bound = int(window / 0.5) + 1
    check(len(inside) <= bound, '%d requests in %.0f s with Retry-After: 0 (bound %d)' % (len(inside), window, bound))
    check(len(inside) >= 2, 'the request was retried (%d requests)' % len(inside))
    small = [x for x in gaps(inside) if x < 0.45]
    eq(small, [], 'gaps under the 0.5 s minimum delay')


def test_429_retry_after_http_date_is_honoured():
    when = email.utils.formatdate(time.time() + 7, usegmt=True)
    peer = Peer('429', script={M: [{'status': 429, 'retryAfter': when}]})
    sc = Sidecar('429', peer=peer, interval_ms=1000, env={'OTEL_EXPORTER_OTLP_TIMEOUT': '20000'})
    recs = wait_until(lambda: len(peer.records(M)) >= 2 and peer.records(M), 20, 'the retry')
    g = gaps(recs)[0]
    # The date was set 7 s ahead when the peer started; the 429 came about
    # 1 s later, so the wait is 5..7 s (whole seconds in HTTP dates).
    check(4.0 <= g <= 8.5, 'retry came %.2fs after the 429 (want about 5..7 s)' % g)
    sc.stop()


def test_400_is_not_retried_and_is_counted():
    peer = Peer('400', script={M: [{'status': 400, 'statusMessage': 'bad data: jobs.enqueued'}]})
    sc = Sidecar('400', peer=peer, interval_ms=3000)
    sc.agent('--tenants', 1, '--types', 1, '--hold-ms', 200)
    recs = wait_until(lambda: len(peer.records(M)) >= 2 and peer.records(M), 20, 'the next export')
    g = gaps(recs)[0]
    check(g >= 2.0, 'second request %.2fs after the 400: looks like a retry (want the next interval)' % g)
    dropped = sc.prom_value('jobq_sidecar_dropped_total', signal='metrics', reason='rejected')
    check(dropped and dropped > 0, 'rejected points counted (got %r)' % dropped)
    eq(sc.prom_value('jobq_sidecar_retries_total', signal='metrics'), 0.0, 'no retries')
    sc.stop()
    check('HTTP 400, not retryable' in sc.logtext() and 'bad data: jobs.enqueued' in sc.logtext(),
          'the Status message is logged: ' + sc.logtext()[-400:])


def test_partial_success_is_counted_not_retried():
    for js in (False, True):
        peer = Peer('partial%d' % js, script={M: [{'status': 200, 'json': js,
                                                    'partial': {'rejected': 3, 'message': 'three refused'}}]})
        env = {'OTEL_EXPORTER_OTLP_PROTOCOL': 'http/json'} if js else {}
        sc = Sidecar('partial%d' % js, peer=peer, interval_ms=3000, env=env)
        recs = wait_until(lambda: len(peer.records(M)) >= 2 and peer.records(M), 20, 'the next export')
        check(gaps(recs)[0] >= 2.0, 'partial success must not be retried')
        eq(sc.prom_value('jobq_sidecar_dropped_total', signal='metrics', reason='partial_success'), 3.0,
           'rejected data points counted')
        sc.stop()
        check('partial success, 3 rejected: three refused' in sc.logtext(), 'partial success logged')


def test_zero_timeouts_warn_and_use_the_defaults():
    # A 0 ms timeout used to be accepted and then nothing was ever sent.
    peer = Peer('timeout0')
    sc = Sidecar('timeout0', peer=peer, interval_ms=300,
                 env={'OTEL_EXPORTER_OTLP_TIMEOUT': '0', 'OTEL_METRIC_EXPORT_TIMEOUT': '0'})
    sc.agent('--tenants', 1, '--types', 1, '--spans', 1, '--hold-ms', 300)
    wait_until(lambda: peer.records(M) and peer.records('/v1/traces'), 15, 'metrics and traces delivered')
    sc.stop()
    log = sc.logtext()
    check('OTEL_EXPORTER_OTLP_TIMEOUT="0" is not a positive integer of milliseconds; using 10000' in log,
          'warning for OTEL_EXPORTER_OTLP_TIMEOUT=0: ' + log[-800:])
    check('OTEL_METRIC_EXPORT_TIMEOUT="0" is not a positive integer of milliseconds; using 30000' in log,
          'warning for OTEL_METRIC_EXPORT_TIMEOUT=0: ' + log[-800:])


def test_closed_connection_is_retried_with_backoff():
    peer = Peer('closed', script={M: [{'close': True}]})
    sc = Sidecar('closed', peer=peer, interval_ms=5000)
    recs = wait_until(lambda: len(peer.records(M)) >= 2 and peer.records(M), 20, 'the retry')
    g = gaps(recs)[0]
    check(0.4 <= g <= 3.0, 'retry %.2fs after a closed connection (backoff 0.5..1 s + noise)' % g)
    sc.stop()


def test_slow_response_times_out_and_request_is_kept():
    peer = Peer('slow', script={M: [{'delayMs': 6000}]})
    sc = Sidecar('slow', peer=peer, interval_ms=5000, env={'OTEL_EXPORTER_OTLP_TIMEOUT': '1500'})
    sc.agent('--tenants', 1, '--types', 1, '--hold-ms', 300)
    recs = wait_until(lambda: len(peer.records(M)) >= 2 and peer.records(M), 25, 'the resend')
    g = gaps(recs)[0]
    check(1.4 <= g <= 4.5, 'resend %.2fs after a request that hung (timeout 1.5 s, pause 1 s)' % g)
    eq(data_points(recs[1]), data_points(recs[0]), 'the same request is sent again')
    sc.stop()


if __name__ == '__main__':
    run_tests([
        test_503_retry_after_seconds_is_honoured,
        test_retry_after_longer_than_the_export_timeout_is_honoured,
        test_retry_after_zero_does_not_cause_a_retry_storm,
        test_429_retry_after_http_date_is_honoured,
        test_400_is_not_retried_and_is_counted,
        test_partial_success_is_counted_not_retried,
        test_zero_timeouts_warn_and_use_the_defaults,
        test_closed_connection_is_retried_with_backoff,
        test_slow_response_times_out_and_request_is_kept,
    ])
