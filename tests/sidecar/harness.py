"""Shared plumbing of the sidecar integration tests: real processes only.

Every test starts its own OTLP peer (node, official schema), jobq-sidecar
and fake agents in a fresh temporary directory and stops them at the end.
Binaries come from $BUILD (default ./build). A test that cannot run exits
77 after saying why; a failed check raises AssertionError with what was
expected and what came.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BUILD = os.path.abspath(os.environ.get('BUILD', os.path.join(ROOT, 'build')))
# JOBQ_SIDECAR_BIN runs the tests against another build, e.g. build/san/jobq-sidecar.
SIDECAR = os.environ.get('JOBQ_SIDECAR_BIN') or os.path.join(BUILD, 'jobq-sidecar')
FAKE_AGENT = os.path.join(BUILD, 'tests', 'sidecar', 'fake_agent')
PEER = os.path.join(ROOT, 'tests', 'sidecar', 'peer', 'peer.js')
JSON_CHECK = os.path.join(ROOT, 'tests', 'sidecar', 'peer', 'otlp_json_check.js')

_procs = []
TMP = tempfile.mkdtemp(prefix='jobq-sidecar-test-')


def skip(why):
    """The whole program cannot run: say why and exit 77 (skipped)."""
    print('SKIP: ' + why, flush=True)
    sys.exit(77)


class Skipped(Exception):
    pass


def skip_test(why):
    """This test cannot run here. It is reported as SKIP, never as ok, and
    the program then exits 77 (run-tests.sh: skipped) unless a test failed."""
    raise Skipped(why)


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(TMP, ignore_errors=True)


atexit.register(_cleanup)


def need_tools():
    for b in (SIDECAR, FAKE_AGENT):
        if not os.access(b, os.X_OK):
            raise SystemExit('missing %s: run make first' % b)
    if not shutil.which('node'):
        skip('node is not installed: the OTLP test peer needs Node.js')
    rc = subprocess.run([os.path.join(ROOT, 'scripts', 'deps-npm.sh')]).returncode
    if rc != 0:
        skip('cannot install the pinned npm packages of the OTLP test peer')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=10.0, what='condition'):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError('timed out after %.1fs waiting for %s' % (timeout, what))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        raise AssertionError('%s: expected %r, got %r' % (what, want, got))


class Peer:
    """The loopback OTLP/HTTP peer; records() are the decoded requests."""

    def __init__(self, name, script=None, port=None, tls=None):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        self.out = os.path.join(self.dir, 'requests.jsonl')
        self.script = script
        self.port = port
        self.tls = tls  # (cert, key) files: serve HTTPS
        self.proc = None
        self.start()

    def start(self, script=None):
        if script is not None:
            self.script = script
        portfile = os.path.join(self.dir, 'port')
        if os.path.exists(portfile):
            os.unlink(portfile)
        args = ['node', PEER, '--port-file', portfile, '--out', self.out]
        if self.script is not None:
            sf = os.path.join(self.dir, 'script.json')
            with open(sf, 'w') as f:
                json.dump(self.script, f)
            args += ['--script', sf]
        if self.port:
            args += ['--port', str(self.port)]
        if self.tls:
            args += ['--tls-cert', self.tls[0], '--tls-key', self.tls[1]]
        self.proc = subprocess.Popen(args)
        _procs.append(self.proc)
        wait_until(lambda: os.path.exists(portfile), 20, 'the OTLP peer to listen')
        with open(portfile) as f:
            self.port = int(f.read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()

    @property
    def url(self):
        return '%s://127.0.0.1:%d' % ('https' if self.tls else 'http', self.port)

    def records(self, path=None):
        if not os.path.exists(self.out):
            return []
        with open(self.out) as f:
            recs = [json.loads(line) for line in f if line.strip()]
        return [r for r in recs if path is None or r['path'] == path]


class Sidecar:
    def __init__(self, name, env=None, args=(), peer=None, interval_ms=300, start=True):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, 'sidecar.sock')
        self.prom_port = free_port()
        self.log = os.path.join(self.dir, 'sidecar.log')
        self.env = {k: v for k, v in os.environ.items() if not k.startswith('OTEL_')}
        self.env['OTEL_METRIC_EXPORT_INTERVAL'] = str(interval_ms)
        self.env['OTEL_BSP_SCHEDULE_DELAY'] = '200'
        # Under ASan (JOBQ_SIDECAR_BIN=build/san/...), a small quarantine keeps
        # the RSS bounds meaningful; the normal build ignores this.
        self.env.setdefault('ASAN_OPTIONS', 'quarantine_size_mb=4')
        if peer:
            self.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = peer.url
        self.env.update(env or {})
        self.args = [SIDECAR, '--listen', self.sock, '--prom-listen',
                     '127.0.0.1:%d' % self.prom_port]
        if not peer and not any(k.startswith('OTEL_EXPORTER_OTLP') for k in self.env):
            # No collector in this test: write OTLP to a file, not to :4318.
            self.args += ['--otlp-file', os.path.join(self.dir, 'otlp.jsonl')]
        self.args += list(args)
        self.proc = None
        if start:
            self.start()

    def start(self):
        self.logf = open(self.log, 'a')
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=self.logf, stderr=self.logf)
        _procs.append(self.proc)
        wait_until(lambda: 'listening on' in self.logtext() or self.proc.poll() is not None, 10,
                   'the sidecar to listen')
        if self.proc.poll() is not None:
            raise AssertionError('sidecar exited early (%d): %s' % (self.proc.returncode, self.logtext()))

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops it; a clean exit (0, no sanitizer report) is part of every test."""
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.logf.close()
        log = self.logtext()
        for bad in ('AddressSanitizer', 'LeakSanitizer', 'runtime error:'):
            check(bad not in log, 'sanitizer report in the sidecar log:\n' + log[-3000:])
        check(rc == 0, 'sidecar exit status %d, log:\n%s' % (rc, log[-2000:]))
        return rc

    def logtext(self):
        if not os.path.exists(self.log):
            return ''
        with open(self.log) as f:
            return f.read()

    def agent(self, *args, check_rc=True):
        r = subprocess.run([FAKE_AGENT, '--socket', self.sock] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=60)
        if check_rc and r.returncode != 0:
            raise AssertionError('fake_agent failed (%d): %s' % (r.returncode, r.stderr))
        return r

    def agent_bg(self, *args):
        p = subprocess.Popen([FAKE_AGENT, '--socket', self.sock] + [str(a) for a in args])
        _procs.append(p)
        return p

    def scrape(self):
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % self.prom_port, timeout=5) as r:
            return r.read().decode()

    def prom_value(self, name, **labels):
        """Value of one sample of the sidecar's own /metrics, or None."""
        for line in self.scrape().splitlines():
            if not line.startswith(name + '{') and not line.startswith(name + ' '):
                continue
            if all(('%s="%s"' % kv) in line for kv in labels.items()):
                return float(line.rsplit(' ', 1)[1])
        return None

    def rss_kib(self):
        with open('/proc/%d/status' % self.proc.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        return None


# ---- helpers over decoded OTLP ----

def attrs(kvs):
    """OTLP KeyValue list -> dict of python values."""
    out = {}
    for kv in kvs or []:
        v = kv.get('value', {})
        if 'stringValue' in v:
            out[kv['key']] = v['stringValue']
        elif 'intValue' in v:
            out[kv['key']] = int(v['intValue'])
        elif 'boolValue' in v:
            out[kv['key']] = v['boolValue']
        elif 'doubleValue' in v:
            out[kv['key']] = v['doubleValue']
        else:
            out[kv['key']] = None
    return out


def check_raw_json(r):
    """An OTLP/JSON request must keep the encoding rules that the peer's
    lenient decoder would forgive (see peer/otlp_json_check.js)."""
    v = r.get('jsonViolations')
    check(not v, 'OTLP/JSON rules broken in a %s request: %s' % (r['path'], '; '.join((v or [])[:10])))


def otlp_json_file_violations(path):
    """Rule violations in an OTLP JSON lines file (the file exporter)."""
    r = subprocess.run(['node', JSON_CHECK, path], capture_output=True, text=True, timeout=60)
    check(r.returncode in (0, 1), 'otlp_json_check.js failed: %s' % r.stderr)
    return [l for l in r.stdout.splitlines() if l.strip()]


def metrics_of(records):
    """All (resource attrs, metric) pairs in decoded metrics requests."""
    res = []
    for r in records:
        body = r['body']
        check('decodeError' not in body, 'peer could not decode a request: %r' % body)
        check_raw_json(r)
        for rm in body.get('resourceMetrics', []):
            ra = attrs(rm.get('resource', {}).get('attributes'))
            for sm in rm.get('scopeMetrics', []):
                for m in sm.get('metrics', []):
                    res.append((ra, sm.get('scope', {}), m))
    return res


def spans_of(records):
    res = []
    for r in records:
        body = r['body']
        check('decodeError' not in body, 'peer could not decode a request: %r' % body)
        check_raw_json(r)
        for rs in body.get('resourceSpans', []):
            ra = attrs(rs.get('resource', {}).get('attributes'))
            for ss in rs.get('scopeSpans', []):
                for s in ss.get('spans', []):
                    res.append((ra, s))
    return res


def run_tests(tests):
    # SIDECAR_TESTS=name1,name2 runs only those (for debugging one test).
    only = [t for t in os.environ.get('SIDECAR_TESTS', '').split(',') if t]
    if only:
        tests = [t for t in tests if t.__name__ in only]
    need_tools()
    failed, skipped = 0, []
    for t in tests:
        start = time.monotonic()
        try:
            t()
            print('ok    %s (%.1fs)' % (t.__name__, time.monotonic() - start), flush=True)
        except Skipped as e:
            skipped.append(t.__name__)
            print('SKIP  %s: %s' % (t.__name__, e), flush=True)
        except AssertionError as e:
            failed += 1
            print('FAIL  %s: %s' % (t.__name__, e), flush=True)
    print('%d of %d failed, %d skipped%s' % (failed, len(tests), len(skipped),
                                            ' (%s)' % ', '.join(skipped) if skipped else ''))
    sys.exit(1 if failed else 77 if skipped else 0)
