#!/usr/bin/env python3
"""The integration tests' own honesty: a test that cannot run where it is
(no openssl for the TLS test, not root for the privilege drop) must be
reported as skipped -- its program exits 77 and prints SKIP with the reason --
never as passed."""
import os
import shutil
import subprocess
import sys

from harness import TMP, check, eq, run_tests

HERE = os.path.dirname(os.path.abspath(__file__))


def run_one(script, test, env=None, user=None):
    e = dict(os.environ)
    e.update(env or {})
    e['SIDECAR_TESTS'] = test
    cmd = [sys.executable, os.path.join(HERE, script)]
    if user is not None:
        cmd = ['setpriv', '--reuid=%d' % user, '--regid=%d' % user, '--clear-groups', '--'] + cmd
    r = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


def path_without(tool):
    """A PATH with every program of the current one except `tool`."""
    d = os.path.join(TMP, 'path-without-' + tool)
    os.makedirs(d, exist_ok=True)
    for p in os.environ.get('PATH', '').split(os.pathsep):
        if not os.path.isdir(p):
            continue
        for name in os.listdir(p):
            src = os.path.join(p, name)
            dst = os.path.join(d, name)
            if name != tool and not os.path.lexists(dst) and os.access(src, os.X_OK) and \
                    not os.path.isdir(src):
                os.symlink(src, dst)
    return d


def test_tls_test_is_skipped_not_passed_without_openssl():
    rc, out = run_one('test_resilience.py', 'test_tls_verifies_the_collector_certificate',
                      env={'PATH': path_without('openssl')})
    eq(rc, 77, 'exit status of the TLS test without openssl (77 = skipped); output:\n' + out[-1500:])
    check('SKIP  test_tls_verifies_the_collector_certificate: openssl is missing' in out,
          'the skip and its reason are printed: ' + out[-1500:])
    check('ok    test_tls_verifies_the_collector_certificate' not in out, 'reported as passed: ' + out[-1500:])


def test_root_only_test_is_skipped_not_passed_without_root():
    user = None
    if os.geteuid() == 0:
        if not shutil.which('setpriv'):
            raise AssertionError('running as root without setpriv: cannot run the test as another user')
        user = 65534  # nobody; it needs to read the tree and write its own temp dir
    rc, out = run_one('test_socket.py', 'test_drops_root_before_networking', user=user)
    if 'missing ' in out and 'run make first' in out:
        raise AssertionError('the build is not readable by an unprivileged user: ' + out[-500:])
    eq(rc, 77, 'exit status of the root-only test as non-root (77 = skipped); output:\n' + out[-1500:])
    check('SKIP  test_drops_root_before_networking: not root' in out, 'the skip is printed: ' + out[-1500:])


if __name__ == '__main__':
    run_tests([
        test_tls_test_is_skipped_not_passed_without_openssl,
        test_root_only_test_is_skipped_not_passed_without_root,
    ])
