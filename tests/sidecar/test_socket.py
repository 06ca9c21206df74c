#!/usr/bin/env python3
"""The agent socket and process hygiene of jobq-sidecar: socket mode 0660, a
stale socket replaced, a live one or a non-socket refused, bad frames
(unknown version, garbage, too large, no Hello) close only that connection
and are counted, several agents at once, and the privilege drop when
started as root."""
import os
import re
import socket
import stat
import subprocess
import urllib.request

from harness import FAKE_AGENT, SIDECAR, TMP, Sidecar, check, eq, run_tests, skip_test, wait_until


def test_socket_mode_is_0660():
    sc = Sidecar('mode')
    eq(stat.S_IMODE(os.stat(sc.sock).st_mode), 0o660, 'socket permissions')
    check(stat.S_ISSOCK(os.stat(sc.sock).st_mode), 'it is a socket')
    sc.stop()


def test_stale_socket_is_replaced():
    d = os.path.join(TMP, 'stale')
    os.makedirs(d)
    path = os.path.join(d, 'sidecar.sock')
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()  # nobody listens: stale
    sc = Sidecar('stale')  # uses the same path
    r = sc.agent('--tenants', 1, '--types', 1)
    eq(r.returncode, 0, 'agent connects to the new socket')
    sc.stop()


def test_live_socket_or_regular_file_is_not_replaced():
    sc = Sidecar('live')
    r = subprocess.run([SIDECAR, '--listen', sc.sock, '--prom-listen', 'off'], capture_output=True,
                       text=True, timeout=10)
    check(r.returncode != 0, 'a second sidecar on a live socket must fail')
    check('another sidecar is listening' in r.stderr, 'reason given: ' + r.stderr)
    sc.stop()
    f = os.path.join(TMP, 'not-a-socket')
    with open(f, 'w') as fh:
        fh.write('keep me')
    r = subprocess.run([SIDECAR, '--listen', f, '--prom-listen', 'off'], capture_output=True,
                       text=True, timeout=10)
    check(r.returncode != 0 and 'not a socket' in r.stderr, 'refuses a regular file: ' + r.stderr)
    eq(open(f).read(), 'keep me', 'the file is untouched')


def test_bad_frames_close_only_their_connection_and_are_counted():
    sc = Sidecar('frames')
    good = sc.agent_bg('--agent-id', 'good', '--snapshots', 40, '--interval-ms', 50)
    for args, msg in ((['--version', '2'], 'protocol version 2'),
                      (['--garbage'], 'undecodable frame'),
                      (['--huge-frame'], 'frame length outside'),
                      (['--no-hello'], 'first frame is not a Hello')):
        sc.agent(*args, check_rc=False)
        wait_until(lambda: msg in sc.logtext(), 5, 'log line "%s"' % msg)
    wait_until(lambda: sc.prom_value('jobq_sidecar_agent_frames_rejected_total') == 4.0, 5,
               '4 rejected frames counted')
    eq(good.poll(), None, 'the good agent is still connected')
    v = sc.prom_value('jobs_enqueued_total', jobq_agent='good', tenant_id='tenant-0', job_type='type-0')
    check(v is not None and v >= 10, 'the good agent\'s data still flows (%r)' % v)
    good.wait()
    sc.stop()


def test_several_agents_at_once():
    sc = Sidecar('multi')
    ps = [sc.agent_bg('--agent-id', 'agent-%d' % i, '--snapshots', 5, '--interval-ms', 30, '--hold-ms', 600)
          for i in range(5)]
    for i in range(5):
        wait_until(lambda: sc.prom_value('jobs_enqueued_total', jobq_agent='agent-%d' % i,
                                         tenant_id='tenant-1', job_type='type-1') == 60.0,
                   10, 'agent-%d data' % i)
    for p in ps:
        eq(p.wait(), 0, 'agent exit')
    sc.stop()


def test_reconnect_before_the_old_connection_closes_keeps_the_agent():
    # The same agent process (same id and start) opens a new connection and
    # says Hello while its old connection is still open; the old one closes
    # afterwards. Its series must live on, fed by the new connection.
    sc = Sidecar('reconnect', interval_ms=300)
    start = 1700000000000000000
    old = sc.agent_bg('--start-ns', start, '--tenants', 1, '--types', 1, '--hold-ms', 1000)
    wait_until(lambda: sc.prom_value('jobs_enqueued_total', jobq_agent='fake-agent', tenant_id='tenant-0') == 10.0,
               10, 'the first connection\'s data')
    new = sc.agent_bg('--start-ns', start, '--tenants', 1, '--types', 1, '--snapshots', 16,
                      '--interval-ms', 200)
    eq(old.wait(), 0, 'first connection exit')  # closes while the new one sends
    # > 2 export intervals after the old EOF, the new connection still feeds it.
    wait_until(lambda: sc.prom_value('jobs_enqueued_total', jobq_agent='fake-agent', tenant_id='tenant-0') == 160.0,
               15, 'the last snapshot of the new connection (160)')
    eq(new.wait(), 0, 'second connection exit')
    sc.stop()


def test_drops_root_before_networking():
    if os.geteuid() != 0:
        skip_test('not root: the privilege drop is NOT exercised')
    sc = Sidecar('priv')
    with open('/proc/%d/status' % sc.proc.pid) as f:
        uid = [l.split()[1:] for l in f if l.startswith('Uid:')][0]
    eq(uid, ['65534'] * 4, 'real, effective, saved and fs uid are nobody')
    sc.stop()
    r = subprocess.run([SIDECAR, '--listen', os.path.join(TMP, 'root.sock'), '--prom-listen', 'off',
                        '--user', 'root'], capture_output=True, text=True, timeout=10)
    check(r.returncode != 0 and 'refusing to run network code as root' in r.stderr,
          '--user root is refused: ' + r.stderr)
    r = subprocess.run([SIDECAR, '--listen', os.path.join(TMP, 'nouser.sock'), '--prom-listen', 'off',
                        '--user', 'no-such-user-jobq'], capture_output=True, text=True, timeout=10)
    check(r.returncode != 0 and 'does not exist' in r.stderr, 'unknown user is refused: ' + r.stderr)


def test_bad_options_fail_clearly():
    for args, msg in ((['--cardinality-limit', 'x'], 'expected a number'),
                      (['--prom-listen', 'nonsense'], 'expected HOST:PORT'),
                      # getaddrinfo takes 99999 and binds port 99999 - 65536
                      (['--prom-listen', '127.0.0.1:99999'], 'from 0 to 65535'),
                      (['--prom-listen', '127.0.0.1:http'], 'from 0 to 65535'),
                      (['--socket-mode', '999'], 'octal'),
                      (['extra'], 'unexpected argument')):
        r = subprocess.run([SIDECAR, '--listen', os.path.join(TMP, 'opt.sock')] + args,
                           capture_output=True, text=True, timeout=10)
        check(r.returncode == 2 and msg in r.stderr, '%s -> %d %r' % (args, r.returncode, r.stderr))


def test_prometheus_port_zero_logs_the_port_it_got():
    sc = Sidecar('promzero', args=['--prom-listen', '127.0.0.1:0'])  # the last one wins
    m = re.search(r'prometheus 127\.0\.0\.1:(\d+),', sc.logtext())
    check(m and int(m.group(1)) > 0, 'the log names the port bound: %s' % sc.logtext())
    with urllib.request.urlopen('http://127.0.0.1:%s/metrics' % m.group(1), timeout=5) as r:
        check(b'jobq_sidecar_exported_total' in r.read(), 'that port serves /metrics')
    sc.stop()


if __name__ == '__main__':
    _ = FAKE_AGENT
    run_tests([
        test_socket_mode_is_0660,
        test_stale_socket_is_replaced,
        test_live_socket_or_regular_file_is_not_replaced,
        test_bad_frames_close_only_their_connection_and_are_counted,
        test_several_agents_at_once,
        test_reconnect_before_the_old_connection_closes_keeps_the_agent,
        test_drops_root_before_networking,
        test_bad_options_fail_clearly,
        test_prometheus_port_zero_logs_the_port_it_got,
    ])
